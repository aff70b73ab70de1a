//! modtrace: Go module traffic analysis.
//!
//! One streaming pipeline, each stage a module with a narrow typed interface:
//! `source` -> `decode` -> `flow` -> `proto` -> `gomod` -> `detect` -> sinks (`report`).
//! Only `source` (and `lab`) touch files or sockets; nothing from `decode` to `detect` reads a
//! clock: time is the packet's timestamp.

#[cfg(feature = "live")]
pub mod capture;
pub mod cli;
pub mod decode;
pub mod detect;
pub mod flow;
pub mod gokeys;
pub mod gomod;
pub mod lab;
pub mod lesson;
pub mod pipeline;
pub mod policy;
pub mod proc;
pub mod proto;
pub mod redact;
pub mod report;
pub mod source;
pub mod time;
pub mod tui;
pub mod wire;
