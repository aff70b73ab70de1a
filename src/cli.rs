//! Command-line definitions. Each flag is defined once, with a one-line help and a longer one.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "modtrace",
    version,
    about = "Watch what the go command puts on the network when it fetches modules",
    long_about = "modtrace reads captures of go-command traffic (pcap, pcapng, gzip-compressed) and \
reports, for every module, where each piece came from and what was wrong with the way it \
travelled: plaintext fetches, redirect loops, checksum-database bypasses, credentials on the wire.",
    after_help = "Examples:\n  modtrace analyze captures/fallback-410.pcap\n  modtrace analyze build.pcapng --format json > report.json\n  modtrace analyze a.pcap b.pcap.gz --fail-on medium"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Analyse capture files and report module journeys and findings
    #[command(
        long_about = "Analyse one or more capture files (pcap or pcapng, optionally .gz; several \
files are merged by time) and report every module's journey and every finding.\n\n\
Exit status: 0 when nothing at or above --fail-on was found, 1 when something was, 2 on a usage \
or input error. A capture that is cut short is analysed as far as it goes, with a warning.",
        after_help = "Examples:\n  modtrace analyze captures/plaintext-proxy.pcap\n  tcpdump -i any -w build.pcapng & go mod download; kill %1; modtrace analyze build.pcapng --fail-on high"
    )]
    Analyze(AnalyzeArgs),
    /// Live capture (needs the `live` feature)
    #[command(disable_help_flag = true)]
    Capture {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        args: Vec<String>,
    },
    /// Loopback lab servers used to record captures (see captures/README.md)
    #[command(disable_help_flag = true)]
    Lab {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[derive(clap::Args, Debug)]
pub struct AnalyzeArgs {
    /// Capture files (pcap, pcapng, .gz), merged by time
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Output format
    #[arg(long, short = 'F', value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Exit 1 when a finding at or above this severity is found
    #[arg(long, value_enum, default_value_t = FailOn::High, value_name = "SEVERITY")]
    pub fail_on: FailOn,
    /// Write the report to FILE instead of standard output
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Colour in text output: auto (only on a terminal), always, never
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
    /// Do not show a progress bar (it is shown only when stderr is a terminal)
    #[arg(long)]
    pub no_progress: bool,
    /// Also trust the CA certificates in this PEM file (repeatable)
    #[arg(long, value_name = "PEM")]
    pub ca_file: Vec<PathBuf>,
    /// Also trust the system's root certificates (default: only the bundled public roots)
    #[arg(long)]
    pub system_roots: bool,
    /// The Go environment of the machine that was captured: the output of `go env -json`, or
    /// a go.env file (KEY=VALUE lines). `auto` runs `go env -json` here.
    #[arg(
        long,
        value_name = "FILE|auto",
        long_help = "The Go environment of the machine that was captured: the output of `go env -json`, or a go.env-style file (KEY=VALUE lines, like $GOROOT/go.env). `auto` runs `go env -json` on this machine. modtrace learns from it which hosts are the module proxies and the checksum database (GOPROXY, GOSUMDB), so that an invalid certificate from one of them is reported as tls-interception. Go's public defaults are always included."
    )]
    pub go_env: Option<String>,
    /// Also trust this checksum-database verifier key (`name+hash+key`, as in GOSUMDB;
    /// repeatable). Go's public key is built in.
    #[arg(long, value_name = "KEY")]
    pub sumdb_key: Vec<String>,
    /// A go.sum or go.work.sum file: its hashes are what downloads must match (repeatable)
    #[arg(long, value_name = "FILE")]
    pub go_sum: Vec<PathBuf>,
    /// Do not hash module zips (faster triage of zip-heavy captures; no zip h1, so no
    /// checksum-mismatch or mirror-inconsistency for zips)
    #[arg(
        long,
        long_help = "Do not compute the h1: hash of module zips. Hashing inflates every file of every zip and dominates the run time on zip-heavy captures (about 8x on the bulk benchmark); without it modules have no `h1` and zips give no checksum-mismatch or mirror-inconsistency. .mod files, .info files and the checksum database are still checked."
    )]
    pub no_zip_hashes: bool,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A readable summary per module, then findings
    Text,
    /// One JSON object: capture, exchanges, modules, findings (docs/report.md)
    Json,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    Critical,
    High,
    Medium,
    Low,
    Info,
    /// Always exit 0 after a successful analysis
    Never,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}
