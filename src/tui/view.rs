//! Drawing: the app's state onto a frame. Never changes the state.

use super::app::App;
use ratatui::Frame;

pub fn draw(_app: &App, _frame: &mut Frame) {}
