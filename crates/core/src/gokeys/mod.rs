//! The go process as a key source: TLS secrets read from Go programs while they run.
//!
//! Go's crypto/tls passes every secret of every connection through
//! `crypto/tls.(*Config).writeKeyLog(label, clientRandom, secret)`, whether or not a
//! KeyLogWriter is set (../shared/docs/go-keys.md). An entry uprobe on that function, defined
//! through tracefs with fetch arguments taken from Go's ABI, hands the three byte strings to
//! modtrace, which turns them into key-log lines for the same path `--keylog` takes.
//!
//! - [`gobin`]: finds the function in a Go binary (ELF symbols, else the pclntab), its file
//!   offset, and the Go version and GOARCH (buildinfo). Pure: bytes in, values out.
#[cfg(all(feature = "live", target_os = "linux"))]
pub mod client;
pub mod event;
pub mod gobin;
#[cfg(all(feature = "live", target_os = "linux"))]
pub mod helper;
pub mod locate;
pub mod probe;
pub mod protocol;
#[cfg(target_os = "linux")]
pub mod tracefs;

use serde::Serialize;
use std::path::PathBuf;

/// What the go process key source did in a capture (`capture.go_keys` in the JSON report;
/// docs/report.md).
#[derive(Clone, Debug, Default, Serialize)]
pub struct GoKeysSummary {
    /// Probes were attached (false with `--no-go-keys` or when `unavailable`).
    pub enabled: bool,
    /// Why the key source could not work here (no rights, no tracefs, old kernel, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracefs: Option<PathBuf>,
    /// The uprobe group (and tracefs instance) of this run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Every probed binary, with the secrets it gave.
    pub binaries: Vec<ProbedBinary>,
    /// Binaries that could not be probed, and why.
    pub refused: Vec<RefusedBinary>,
    /// Secrets read (after dropping the duplicates a stack growth gives).
    pub secrets: u64,
    /// Key events the trace buffer lost.
    pub lost_events: u64,
    /// Events that could not be used.
    pub warnings: u64,
    /// Probes and instances of earlier, killed runs removed at the start.
    pub stale_removed: Vec<String>,
    /// What could not be removed at the end.
    pub cleanup_problems: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ProbedBinary {
    #[serde(flatten)]
    pub probed: protocol::Probed,
    pub secrets: u64,
}

impl std::ops::Deref for ProbedBinary {
    type Target = protocol::Probed;
    fn deref(&self) -> &protocol::Probed {
        &self.probed
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct RefusedBinary {
    pub path: PathBuf,
    pub origin: locate::Origin,
    pub why: String,
}

impl GoKeysSummary {
    /// Off by request (`--no-go-keys`).
    pub fn off() -> GoKeysSummary {
        GoKeysSummary {
            unavailable: Some("turned off (--no-go-keys)".into()),
            ..GoKeysSummary::default()
        }
    }

    /// One line for the text summary.
    pub fn line(&self) -> String {
        if let Some(why) = &self.unavailable {
            return format!("go process keys: off ({why})");
        }
        let per: Vec<String> = self
            .binaries
            .iter()
            .map(|b| {
                format!(
                    "{} ({}, {}): {} secret{}",
                    b.path.display(),
                    b.go_version,
                    b.origin.as_str(),
                    b.secrets,
                    if b.secrets == 1 { "" } else { "s" }
                )
            })
            .collect();
        format!(
            "go process keys: {} secrets from {} probed binar{}{}{}",
            self.secrets,
            self.binaries.len(),
            if self.binaries.len() == 1 { "y" } else { "ies" },
            if per.is_empty() {
                String::new()
            } else {
                format!(": {}", per.join("; "))
            },
            if self.lost_events > 0 {
                format!("; {} events lost", self.lost_events)
            } else {
                String::new()
            }
        )
    }
}
