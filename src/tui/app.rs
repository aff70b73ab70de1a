//! The TUI's state: what the analysis reported so far and where the user is. Pure: updates
//! and keys in, commands out; no I/O, no clock.

use super::{Command, Status, Update};
use ratatui::crossterm::event::KeyEvent;

/// Everything the screen shows, and the user's place in it.
#[derive(Debug, Default)]
pub struct App {
    pub status: Status,
    /// The user asked to quit.
    pub quit: bool,
}

impl App {
    pub fn new(status: Status) -> App {
        App {
            status,
            quit: false,
        }
    }

    /// One update from the analysis side.
    pub fn apply(&mut self, update: Update) {
        if let Update::Status(s) = update {
            self.status = s;
        }
    }

    /// One key; returns what the analysis side must do.
    pub fn on_key(&mut self, _key: KeyEvent) -> Vec<Command> {
        Vec::new()
    }
}
