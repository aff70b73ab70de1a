//! The terminal UI: each module's path through the chain of proxies and mirrors, live
//! (`modtrace capture`), in replay (`modtrace replay`) and in training (`modtrace demo`, the
//! lessons' recordings act by act with an explanation panel: [`demo`]).
//!
//! One loop merges three things into updates of one [`app::App`]: keys, [`Update`]s from the
//! analysis side and a tick; it draws at most [`FRAME_INTERVAL`] apart, from the app's state
//! only (`view::draw` never changes it). The analysis runs on its own thread ([`feed`]) and
//! sends owned copies of what it learned, so capture and replay never wait for the screen; the
//! screen sends [`Command`]s back (pause, step, speed, write the report).

pub mod app;
pub mod demo;
pub mod explain;
pub mod feed;
pub mod run;
pub mod view;

use crate::detect::tls::TlsRecord;
use crate::detect::Finding;
use crate::gomod::{Exchange, Journey};
use crate::time::Ts;
use std::path::PathBuf;
use std::time::Duration;

/// At most about 20 frames a second.
pub const FRAME_INTERVAL: Duration = Duration::from_millis(50);

/// What the analysis side tells the screen, in order. Indices are those of the analyzer
/// (a journey or finding that changes is sent again with the same index).
#[derive(Clone, Debug)]
pub enum Update {
    Exchange(Box<Exchange>),
    Journey {
        index: usize,
        journey: Box<Journey>,
    },
    Finding {
        index: usize,
        finding: Box<Finding>,
    },
    Tls(Box<TlsRecord>),
    Status(Status),
    /// A line for the status bar (e.g. "report written to ...").
    Note(String),
}

/// The source and the replay clock, for the status bar.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Status {
    /// The file names, or `live:IFACE`.
    pub source: String,
    pub live: bool,
    pub packets: u64,
    pub bytes: u64,
    /// Bytes per second of input over the last second of wall time.
    pub rate: f64,
    /// Packets the kernel dropped (live only).
    pub drops: Option<u64>,
    /// Capture time of the last packet read.
    pub clock: Option<Ts>,
    pub speed: Speed,
    pub paused: bool,
    /// The input is exhausted (replay) or the capture stopped.
    pub finished: bool,
}

/// Replay pace: capture time scaled, or as fast as it goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Speed {
    Times(u32),
    #[default]
    Max,
}

/// The speeds `+` and `-` step through.
pub const SPEEDS: [Speed; 5] = [
    Speed::Times(1),
    Speed::Times(2),
    Speed::Times(5),
    Speed::Times(10),
    Speed::Max,
];

impl Speed {
    pub fn parse(s: &str) -> Option<Speed> {
        match s {
            "max" => Some(Speed::Max),
            n => n
                .trim_end_matches('x')
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .map(Speed::Times),
        }
    }
    pub fn label(self) -> String {
        match self {
            Speed::Times(n) => format!("{n}x"),
            Speed::Max => "max".into(),
        }
    }
    pub fn faster(self) -> Speed {
        let i = SPEEDS.iter().position(|s| *s == self).unwrap_or(0);
        SPEEDS[(i + 1).min(SPEEDS.len() - 1)]
    }
    pub fn slower(self) -> Speed {
        let i = SPEEDS.iter().position(|s| *s == self).unwrap_or(0);
        SPEEDS[i.saturating_sub(1)]
    }
}

/// What the screen asks of the analysis side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    TogglePause,
    /// While paused: go on until the next event, then pause again.
    Step,
    /// While paused: go on until the next finding, then pause again.
    StepToFinding,
    SetSpeed(Speed),
    /// Write the JSON report of everything so far to this file.
    WriteReport(PathBuf),
    /// Demo: leave this act for the next or previous one (the screen's loop handles it: a
    /// replay ignores it).
    Act(demo::ActMove),
    Quit,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speeds_parse_and_step() {
        assert_eq!(Speed::parse("1"), Some(Speed::Times(1)));
        assert_eq!(Speed::parse("10x"), Some(Speed::Times(10)));
        assert_eq!(Speed::parse("max"), Some(Speed::Max));
        assert_eq!(Speed::parse("0"), None);
        assert_eq!(Speed::parse("fast"), None);
        assert_eq!(Speed::Times(1).faster(), Speed::Times(2));
        assert_eq!(Speed::Max.faster(), Speed::Max);
        assert_eq!(Speed::Times(1).slower(), Speed::Times(1));
        assert_eq!(Speed::Max.slower(), Speed::Times(10));
    }
}
