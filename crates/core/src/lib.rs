//! modtrace's analyser: Go module traffic from packets to findings and reports.
//!
//! One streaming pipeline, each stage a module with a narrow typed interface:
//! `source` -> `decode` -> `flow` -> `proto` -> `gomod` -> `detect` -> sinks (`report`).
//! Only `source`, `gokeys` and `proc` touch files, sockets or processes; nothing from `decode`
//! to `detect` reads a clock: time is the packet's timestamp. The lab (crates/lab) and the
//! user interfaces (the `modtrace` package: cli, tui, capture) build on this crate; it depends
//! on neither (ARCHITECTURE.md).

pub mod decode;
pub mod detect;
pub mod flow;
pub mod gokeys;
pub mod gomod;
pub mod lesson;
pub mod pipeline;
pub mod policy;
pub mod proc;
pub mod proto;
pub mod redact;
pub mod report;
pub mod source;
pub mod time;
pub mod wire;
