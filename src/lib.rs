//! modtrace: Go module traffic analysis.
//!
//! This package holds what a user touches: the command line (`cli`), the TUI (`tui`) and live
//! capture (`capture`). The analyser is crates/core and the lab crates/lab (ARCHITECTURE.md);
//! both are re-exported here under the paths they always had (`modtrace::gomod`,
//! `modtrace::lab`), so the binary, the tests and the docs name one crate.

pub use modtrace_core::{
    decode, detect, flow, gokeys, gomod, lesson, pipeline, policy, proc, proto, redact, report,
    source, time, wire,
};
pub use modtrace_lab as lab;

#[cfg(feature = "live")]
pub mod capture;
pub mod cli;
pub mod manual;
pub mod tui;
