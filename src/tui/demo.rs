//! `modtrace demo`: the training lessons ([`crate::lesson::LESSONS`]) replayed in the TUI,
//! one act after another (lesson 1 unsafe, lesson 1 safe, lesson 2 unsafe, ...), with a panel
//! that explains what is on the screen.
//!
//! Pure: the playlist of acts, the demo state an `App` carries, and what the explanation panel
//! is about ([`Subject`]). The panel's text is in `explain.rs`.

use crate::lesson::{Half, HalfKind, Lesson, LESSONS};
use std::path::{Path, PathBuf};

/// One act: a half of a lesson, replayed from its recording.
#[derive(Clone, Copy, Debug)]
pub struct Act {
    pub lesson: &'static Lesson,
    pub kind: HalfKind,
}

impl PartialEq for Act {
    fn eq(&self, other: &Act) -> bool {
        self.lesson.number == other.lesson.number && self.kind == other.kind
    }
}
impl Eq for Act {}

impl Act {
    pub fn half(&self) -> &'static Half {
        self.lesson.half(self.kind)
    }

    /// `Lesson 1/5 sumdb-off · unsafe · GOSUMDB=off`.
    pub fn header(&self) -> String {
        format!(
            "Lesson {}/{} {} · {} · {}",
            self.lesson.number,
            LESSONS.len(),
            self.lesson.name,
            self.kind.as_str(),
            self.half().setting
        )
    }

    /// The act's recording in the captures folder `dir`.
    pub fn capture(&self, dir: &Path) -> PathBuf {
        dir.join(self.lesson.capture_path(self.kind))
    }

    /// Why the act cannot be replayed: its recording is not in `dir`, and how to make it
    /// (`lab run --record FILE.pcapng` writes FILE.unsafe.pcapng and FILE.safe.pcapng).
    pub fn missing_recording(&self, dir: &Path) -> String {
        let stem = dir
            .join(crate::lesson::TRAINING_DIR)
            .join(format!("{}.pcapng", self.lesson.name));
        format!(
            "{}: no such recording (lesson {} {}, {} half); record the lesson with `sudo modtrace lab run {} --record {} --no-tui` (a build with the `live` feature; captures/README.md), or give --dir a captures folder that has it",
            self.capture(dir).display(),
            self.lesson.number,
            self.lesson.name,
            self.kind.as_str(),
            self.lesson.name,
            stem.display()
        )
    }
}

/// Which way `[` and `]` go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActMove {
    Next,
    Previous,
}

/// Every act of every lesson, in teaching order: each lesson's unsafe half, then its safe one.
pub fn acts() -> Vec<Act> {
    LESSONS
        .iter()
        .flat_map(|lesson| {
            HalfKind::BOTH
                .into_iter()
                .map(move |kind| Act { lesson, kind })
        })
        .collect()
}

/// The acts of the demo and the one playing.
#[derive(Clone, Debug)]
pub struct Playlist {
    acts: Vec<Act>,
    pos: usize,
}

impl Playlist {
    /// All the acts, starting at `lesson`'s `kind` half (`[` still goes back to earlier ones).
    pub fn starting_at(lesson: &Lesson, kind: HalfKind) -> Playlist {
        let acts = acts();
        let pos = acts
            .iter()
            .position(|a| a.lesson.number == lesson.number && a.kind == kind)
            .unwrap_or(0);
        Playlist { acts, pos }
    }

    pub fn current(&self) -> Act {
        self.acts[self.pos]
    }

    /// The current act's place: (1-based number, number of acts).
    pub fn position(&self) -> (usize, usize) {
        (self.pos + 1, self.acts.len())
    }

    /// Moves to the next or previous act; false (and no move) past either end.
    pub fn step(&mut self, m: ActMove) -> bool {
        let to = match m {
            ActMove::Next => self.pos + 1,
            ActMove::Previous => match self.pos.checked_sub(1) {
                Some(p) => p,
                None => return false,
            },
        };
        if to >= self.acts.len() {
            return false;
        }
        self.pos = to;
        true
    }
}

/// What an [`App`] knows of the demo: the act it shows and where that act is in the playlist.
#[derive(Clone, Debug)]
pub struct DemoState {
    pub act: Act,
    /// 1-based.
    pub number: usize,
    pub total: usize,
    /// The act could not be replayed (its recording is missing or unreadable): why.
    pub unavailable: Option<String>,
}

impl DemoState {
    pub fn of(playlist: &Playlist) -> DemoState {
        let (number, total) = playlist.position();
        DemoState {
            act: playlist.current(),
            number,
            total,
            unavailable: None,
        }
    }
    pub fn is_first(&self) -> bool {
        self.number <= 1
    }
    pub fn is_last(&self) -> bool {
        self.number >= self.total
    }
}

/// What the panel is about, from the app's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject {
    /// The act's recording could not be opened.
    Unavailable,
    /// Nothing found yet: the lesson's story.
    Intro,
    /// A finding (its position in [`App::findings`]): the selected one, which in a demo
    /// follows each new finding (the replay pauses there).
    Finding(usize),
    /// The replay is over: what to point at.
    End,
}

#[cfg(test)]
#[path = "demo_tests.rs"]
mod tests;
