//! Report sinks. The JSON report's names are documented in docs/report.md and kept stable.

pub mod ecs;
pub mod jsonl;
pub mod live;
pub mod sarif;
mod text;

/// A text report lists this many TLS sessions; the JSON report has them all.
pub const TEXT_TLS_SESSIONS: usize = 50;
pub use text::{write_text, write_text_with, TextOptions};

use crate::detect::tls::TlsRecord;
use crate::detect::Finding;
use crate::gomod::{Exchange, Journey};
use crate::pipeline::Outcome;
use crate::source::SourceStats;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Serialize)]
pub struct CaptureFile {
    pub path: String,
    pub format: &'static str,
    pub gzip: bool,
    pub packets: u64,
    /// The file ended in the middle of a record: analysed as far as it went.
    pub truncated: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct CaptureSummary {
    pub files: Vec<CaptureFile>,
    pub packets: u64,
    pub bytes: u64,
    pub first: Option<String>,
    pub last: Option<String>,
    pub link_types: Vec<String>,
    /// Packets cut short by the snaplen (used as far as they go).
    pub truncated_packets: u64,
    /// Packets that could not be decoded, or whose link type modtrace does not decode.
    pub undecodable_packets: u64,
    pub unsupported_link_types: BTreeMap<String, u64>,
    pub tcp: TcpSummary,
    /// HTTP exchanges seen (also when the report does not list them).
    pub http_exchanges: u64,
    /// TLS connections seen (the `tls` array lists them all with --format json).
    pub tls_sessions: u64,
    /// TLS sessions a key log opened.
    pub tls_decrypted: u64,
    /// The same TLS session seen again on another flow (the other leg of a tunnel), counted
    /// once in `tls_sessions`.
    pub tls_duplicates: u64,
    pub http_anomalies: u64,
    pub dns_messages: u64,
    /// Findings the policy's `[[ignore]]` entries accepted, with their reasons; they are not
    /// in `findings` (empty without a policy).
    pub ignored_findings: Vec<crate::policy::Ignored>,
    /// Live: what the go process key source did (which binaries were probed, how many secrets
    /// each gave, or why it could not work).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub go_keys: Option<crate::gokeys::GoKeysSummary>,
    /// `modtrace run`: the command that was run and how it ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandSummary>,
}

/// The command `modtrace run` ran (`capture.command`).
#[derive(Clone, Debug, Serialize)]
pub struct CommandSummary {
    pub argv: Vec<String>,
    /// The program that was executed (COMMAND found on PATH).
    pub program: String,
    pub pid: u32,
    /// The account it ran as.
    pub user: String,
    /// Its exit code, when it exited.
    pub exit_code: Option<i32>,
    /// The signal that ended it, when one did.
    pub signal: Option<i32>,
}

impl CommandSummary {
    /// `exited with status 0`, `was killed by signal 15`.
    pub fn outcome(&self) -> String {
        match (self.exit_code, self.signal) {
            (Some(c), _) => format!("exited with status {c}"),
            (None, Some(s)) => format!("was killed by signal {s}"),
            (None, None) => "did not finish".into(),
        }
    }
}

/// The report formats of `analyze` and `run`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportFormat {
    Text,
    Json,
    Jsonl,
    Sarif,
    Ecs,
}

/// How a report is written.
pub struct FormatOptions {
    pub format: ReportFormat,
    pub color: bool,
    pub show_secrets: bool,
    /// SARIF: the capture files (artifact locations) and the module being built.
    pub files: Vec<std::path::PathBuf>,
    pub go_mod: Option<std::path::PathBuf>,
    /// ECS: one document per exchange too.
    pub ecs_events: bool,
}

impl Report {
    /// The report in the chosen format.
    pub fn write_as(&self, o: &FormatOptions, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        match o.format {
            ReportFormat::Text => write_text_with(
                self,
                out,
                &TextOptions {
                    color: o.color,
                    show_secrets: o.show_secrets,
                },
            ),
            ReportFormat::Json => self.write_json(out),
            ReportFormat::Jsonl => jsonl::write_report(self, out),
            ReportFormat::Sarif => sarif::write(
                self,
                &sarif::SarifContext {
                    files: o.files.clone(),
                    go_mod: o.go_mod.clone(),
                },
                out,
            ),
            ReportFormat::Ecs => ecs::write(
                self,
                &ecs::EcsOptions {
                    events: o.ecs_events,
                },
                out,
            ),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct TcpSummary {
    pub flows: u64,
    /// Flows closed early to stay within the flow table's limit (a flood, or a very busy
    /// capture): their later packets start new flows picked up midstream.
    pub evicted: u64,
    pub midstream: u64,
    pub gaps: u64,
    pub gap_bytes: u64,
    pub retransmissions: u64,
    pub injections: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub capture: CaptureSummary,
    pub exchanges: Vec<Exchange>,
    pub modules: Vec<Journey>,
    pub findings: Vec<Finding>,
    /// One per TLS connection (docs/report.md).
    pub tls: Vec<TlsRecord>,
}

impl Report {
    /// The policy's severity overrides and ignores ([`Policy::apply`]): its findings, and
    /// `capture.ignored_findings`.
    pub fn apply_policy(&mut self, policy: &crate::policy::Policy, today: crate::time::Date) {
        self.capture.ignored_findings = policy.apply(&mut self.findings, today);
    }

    pub fn build(sources: &[SourceStats], o: Outcome) -> Report {
        let Outcome {
            exchanges,
            journeys: mut modules,
            findings,
            tls,
            stats: p,
            decode: d,
            flow: f,
        } = o;
        modules.sort_by(|a, b| a.module.cmp(&b.module).then(a.version.cmp(&b.version)));
        let unsupported: u64 = d.unsupported_link.values().sum();
        Report {
            capture: CaptureSummary {
                files: sources
                    .iter()
                    .map(|s| CaptureFile {
                        path: s.path.display().to_string(),
                        format: if s.pcapng { "pcapng" } else { "pcap" },
                        gzip: s.gzip,
                        packets: s.packets,
                        truncated: s.truncated_file,
                    })
                    .collect(),
                packets: p.packets,
                bytes: p.bytes,
                first: p.first.map(|t| t.rfc3339()),
                last: p.last.map(|t| t.rfc3339()),
                link_types: p.link_types.iter().map(|l| l.name()).collect(),
                truncated_packets: p.truncated_packets,
                undecodable_packets: d.undecodable + unsupported,
                unsupported_link_types: d
                    .unsupported_link
                    .iter()
                    .map(|(k, v)| (crate::source::LinkType(*k).name(), *v))
                    .collect(),
                tcp: TcpSummary {
                    flows: f.flows,
                    evicted: f.evicted,
                    midstream: f.midstream,
                    gaps: f.gaps,
                    gap_bytes: f.gap_bytes,
                    retransmissions: f.retransmissions,
                    injections: f.injections,
                },
                http_exchanges: p.exchanges,
                tls_sessions: p.tls_sessions,
                tls_decrypted: p.tls_decrypted,
                tls_duplicates: p.tls_duplicates,
                http_anomalies: p.http_anomalies,
                dns_messages: p.dns_messages,
                ignored_findings: Vec::new(),
                go_keys: None,
                command: None,
            },
            exchanges,
            modules,
            findings,
            tls,
        }
    }

    pub fn write_json(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        serde_json::to_writer_pretty(&mut *w, self)?;
        writeln!(w)
    }
}

#[cfg(test)]
mod tests {
    /// The analyser keeps at least the TLS sessions a text report lists.
    #[test]
    fn the_analyser_keeps_the_tls_sessions_a_text_report_lists() {
        let cfg = crate::pipeline::Config::default();
        assert!(cfg.keep_tls_sessions >= super::TEXT_TLS_SESSIONS);
    }
}
