//! Elastic Common Schema NDJSON output (placeholder: being written).

use super::Report;
use std::io::{self, Write};

pub struct EcsOptions {
    /// Also one document per exchange.
    pub events: bool,
}

pub fn write(_report: &Report, _opts: &EcsOptions, _out: &mut dyn Write) -> io::Result<()> {
    Err(io::Error::other("--format ecs is not built yet"))
}
