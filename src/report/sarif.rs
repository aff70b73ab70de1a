//! SARIF 2.1.0 output (placeholder: being written).

use super::Report;
use std::io::{self, Write};
use std::path::PathBuf;

/// Where the findings point: the capture files, and the Go module being built.
pub struct SarifContext {
    pub files: Vec<PathBuf>,
    pub go_mod: Option<PathBuf>,
}

pub fn write(_report: &Report, _ctx: &SarifContext, _out: &mut dyn Write) -> io::Result<()> {
    Err(io::Error::other("--format sarif is not built yet"))
}
