//! Command-line definitions. Each flag is defined once, with a one-line help and a longer one.

use crate::gomod::goenv::{GoEnv, SumDb};
use crate::gomod::note::Verifier;
use crate::gomod::sumdb::{parse_go_sum, GoSumLimits};
use crate::pipeline::Config;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// `modtrace --version`: the version and what this build can do beyond analysing files.
#[cfg(all(feature = "live", target_os = "linux"))]
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (features: live capture, go-keys: the go process's TLS secrets)"
);
#[cfg(all(feature = "live", not(target_os = "linux")))]
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (features: live capture; go-keys needs Linux)"
);
#[cfg(not(feature = "live"))]
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (features: none: no live capture, no go-keys; rebuild with --features live)"
);

#[derive(Parser, Debug)]
#[command(
    name = "modtrace",
    version = VERSION,
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
    /// Capture live (needs root or cap_net_raw; built with the `live` feature) and stream
    /// exchanges, module journeys and findings as they happen
    #[command(
        long_about = "Capture live with libpcap and stream every HTTP exchange, module journey \
update and finding as it completes; Ctrl-C (or SIGTERM) stops, prints the summary and exits \
like analyze (0, or 1 when a finding at or above --fail-on was seen; 2 on an error).\n\n\
Needs the rights to capture: run it with sudo (it drops to the calling user, or --user, or \
nobody, right after opening the capture and the -w file), or give the binary the capabilities \
once: sudo setcap cap_net_raw,cap_net_admin=eip $(command -v modtrace). Built without the \
`live` feature (the default build) this command only says how to get it.\n\n\
With root on Linux 4.17 or later, the TLS secrets of the go commands found (PATH, the sudo \
caller's GOROOT, the usual install places, cached toolchains), of --go-binary programs and of \
Go programs that open connections are read from the processes (a uprobe on crypto/tls's \
writeKeyLog, through tracefs), so their HTTPS is decrypted like plain HTTP. Without root or \
tracefs one line says why and the capture goes on without them (--no-go-keys: off). To watch \
one command and only its traffic, `modtrace run -- COMMAND` is simpler.",
        after_help = "Examples:\n  sudo modtrace capture\n  sudo modtrace capture -i lo --process go -w build.pcapng\n  sudo modtrace capture --no-tui --format jsonl > events.jsonl"
    )]
    Capture(CaptureArgs),
    /// Run a command (e.g. `go mod download`) and watch its traffic, inside its HTTPS too
    /// (Linux, root; built with the `live` feature)
    #[command(
        long_about = "Run COMMAND as the user who ran sudo and watch what it puts on the network: only the traffic of COMMAND and its children (the go command, the git it runs) is analysed. The TLS secrets of every Go program among them are read from the process itself (a uprobe on crypto/tls's writeKeyLog, through tracefs), and git's come from SSLKEYLOGFILE, so the go command's own HTTPS to its proxies and checksum database is decrypted: every request is an exchange, every zip is hashed, every certificate (TLS 1.3 too) is checked.

In a terminal the TUI shows the modules as they are fetched while COMMAND runs, and stays until `q` (COMMAND's output is shown when the screen closes); otherwise, when COMMAND exits, the report is written in --format to standard output or -o, and COMMAND's output is its own. Exit status like analyze: 0, 1 when a finding at or above --fail-on was seen, 2 on an error; COMMAND's exit status is printed and is in the JSON report (capture.command).

Needs Linux, root (sudo) and the `live` build. Reading secrets from the go process needs Linux 4.17 or later with tracefs (mounted if it is not) and uprobes, and is refused, with one line saying why, in rootless containers and under kernel lockdown: the capture then goes on without them. `--no-go-keys` turns it off. Capture drops root right after opening; the probes are owned by a small helper process that keeps root, removes them when the run ends, and removes those of a run that was killed.",
        after_help = "Examples:\n  sudo modtrace run -- go mod download\n  sudo modtrace run --no-tui --format sarif -o modtrace.sarif -- go build ./...\n  sudo modtrace run -w build.pcapng --keylog-out build.keys -- go mod download -x\n  sudo modtrace run --go-binary /usr/local/bin/athens -- ./fetch-deps.sh"
    )]
    Run(RunArgs),
    /// The key helper of `capture` and `run` (internal: started by them, before root is dropped)
    #[command(name = "go-keys-helper", hide = true)]
    GoKeysHelper {
        #[arg(long, value_name = "DIR")]
        tracefs: Option<PathBuf>,
    },
    /// Replay captures in the TUI at their own pace (or faster), pausing and stepping
    #[command(
        long_about = "Replay capture files in the terminal UI at the pace they were recorded (scaled by --speed; `max` as fast as it goes): the modules pane fills as each module is fetched, the journey pane draws the selected module's path through proxies and mirrors (fallbacks, redirects, upstream requests, forward proxies), the findings pane counts by severity. Space pauses, `n` steps to the next finding, `.` one event, `+`/`-` change the speed, Enter opens the details, `?` lists every key, `q` quits.

For training, --pause-on-findings stops at each finding until you press space or `n`.",
        after_help = "Examples:
  modtrace replay captures/fallback-410.pcap --speed max
  modtrace replay captures/redirect-loop.pcap --speed 1 --pause-on-findings
  modtrace replay captures/connect-proxy-h2.pcapng --ca-file captures/lab-pki/lab-ca.pem"
    )]
    Replay(ReplayArgs),
    /// Training: replay the lessons' recordings in the TUI, act by act, with an explanation
    /// panel
    #[command(
        long_about = "Training: replay the recordings of the lessons (the five classic mistakes that make private module proxies dangerous, each as an unsafe and a safe half) in the terminal UI, one act after another: lesson 1 unsafe, lesson 1 safe, lesson 2 unsafe, ... starting at LESSON (lesson 1 without it; its safe half with --safe).

Each act replays its recording (captures/training/LESSON.HALF.pcapng, made by `sudo modtrace lab run LESSON --record captures/training/LESSON.pcapng`): it opens paused on the lesson's story and what happens in this half, space starts it, and it stops at every finding. At a finding the explanation panel says what was on the wire (servers, hashes), why it is dangerous and how to fix it (the texts of `modtrace explain`); at the end, what to point at. `]` goes to the next act, `[` back; space goes on, `n` runs to the next finding, J/K scroll the panel, Enter opens a finding or hop, `?` lists every key, `q` quits.

The recordings are analysed exactly like `modtrace analyze FILE --ca-file CAPTURES/lab-pki/lab-ca.pem --sumdb-key <the lab checksum database's key> --go-sum CAPTURES/training/lab.go.sum --policy CAPTURES/training/lab.policy.toml` (key logs embedded in the pcapng decrypt the TLS). Exit status 2 when the first act's recording is missing or this is not a terminal.",
        after_help = demo_after_help()
    )]
    Demo(DemoArgs),
    /// What a finding means and how to fix it (every rule without an argument)
    #[command(
        after_help = "Examples:\n  modtrace explain\n  modtrace explain plaintext-module-fetch"
    )]
    Explain {
        /// A rule id, as in the reports (e.g. plaintext-module-fetch)
        rule: Option<String>,
    },
    /// Shell completions, from this command line's own definition
    #[command(
        long_about = "Print the shell completion script for SHELL on standard output. Generated from the same definition as the command line itself, so it always knows every subcommand and flag of this build.",
        after_help = "Examples:\n  modtrace completions bash > ~/.local/share/bash-completion/completions/modtrace\n  modtrace completions zsh > ~/.zfunc/_modtrace\n  modtrace completions fish > ~/.config/fish/completions/modtrace.fish\n  modtrace completions powershell >> $PROFILE"
    )]
    Completions {
        /// The shell
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// The man page (roff), from this command line's own definition
    #[command(
        long_about = "Print modtrace's man page (roff) on standard output: every subcommand with its synopsis and every flag, generated from the same definition as the command line itself.",
        after_help = "Examples:\n  modtrace man | man -l -\n  modtrace man > ~/.local/share/man/man1/modtrace.1"
    )]
    Man,
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
    #[command(flatten)]
    pub report: ReportArgs,
    #[command(flatten)]
    pub opts: AnalysisOptions,
    /// Do not show a progress bar (it is shown only when stderr is a terminal)
    #[arg(long)]
    pub no_progress: bool,
    /// Do not hash module zips (faster triage of zip-heavy captures; no zip h1, so no
    /// checksum-mismatch or mirror-inconsistency for zips)
    #[arg(
        long,
        long_help = "Do not compute the h1: hash of module zips. Hashing inflates every file of every zip and dominates the run time on zip-heavy captures (about 8x on the bulk benchmark); without it modules have no `h1` and zips give no checksum-mismatch or mirror-inconsistency. .mod files, .info files and the checksum database are still checked."
    )]
    pub no_zip_hashes: bool,
}

/// How the report is written: shared by `analyze` and `run`.
#[derive(clap::Args, Debug, Clone)]
pub struct ReportArgs {
    /// Output format
    #[arg(long, short = 'F', value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Write the report to FILE instead of standard output
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Colour in text output: auto (only on a terminal), always, never
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
    /// SARIF: the Go module being built (its go.mod and go.sum): results also point at the
    /// matching go.mod / go.sum line
    #[arg(long, value_name = "DIR")]
    pub go_mod: Option<PathBuf>,
    /// ECS: also one document per HTTP exchange (event.kind event)
    #[arg(long)]
    pub ecs_events: bool,
    /// Text output only: show credentials and tokens instead of redacting them
    #[arg(
        long,
        long_help = "Text output only: show credentials and tokens as they were sent (Authorization and Proxy-Authorization values, URL passwords, token-like query parameters such as token, access_token, key, sig, X-Amz-Signature) instead of `***`. Every other format (json, jsonl, sarif, ecs) stays redacted even with this flag, so reports that leave the machine never carry secrets."
    )]
    pub show_secrets: bool,
}

impl ReportArgs {
    /// How to write the report; `files` are the capture files SARIF points at.
    pub fn format_options(&self, files: Vec<PathBuf>) -> crate::report::FormatOptions {
        use std::io::IsTerminal;
        let color = match self.color {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => {
                self.output.is_none()
                    && std::io::stdout().is_terminal()
                    && std::env::var_os("NO_COLOR").is_none()
            }
        };
        crate::report::FormatOptions {
            format: self.format.into(),
            color,
            show_secrets: self.show_secrets,
            files,
            go_mod: self.go_mod.clone(),
            ecs_events: self.ecs_events,
        }
    }

    /// Whether the report lists every exchange (so the analysis must keep them).
    pub fn needs_exchanges(&self) -> bool {
        matches!(self.format, Format::Json | Format::Jsonl | Format::Ecs)
            || (self.show_secrets && self.format == Format::Text)
    }
}

#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// Capture files (pcap, pcapng, .gz), merged by time
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Replay speed: 1, 2, 5 or 10 times the capture's pace, or max
    #[arg(long, short = 's', default_value = "1", value_parser = parse_speed, value_name = "1|2|5|10|max")]
    pub speed: crate::tui::Speed,
    /// Pause at every finding (press space to go on, `n` for the next finding)
    #[arg(long)]
    pub pause_on_findings: bool,
    #[command(flatten)]
    pub opts: AnalysisOptions,
}

/// `modtrace demo`'s examples and the lessons it knows, from the lessons themselves.
fn demo_after_help() -> String {
    let mut s = String::from("Lessons:\n");
    for l in crate::lesson::LESSONS {
        s.push_str(&format!("  {} {:<14} {}\n", l.number, l.name, l.title));
    }
    s.push_str(
        "\nExamples:\n  modtrace demo\n  modtrace demo proxy-order --safe\n  modtrace demo 4 --speed max\n  modtrace demo sumdb-off --dir /path/to/captures",
    );
    s
}

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// The lesson to start at, by name or number (default: lesson 1)
    #[arg(value_name = "LESSON")]
    pub lesson: Option<String>,
    /// Start at the lesson's safe half instead of its unsafe one
    #[arg(long)]
    pub safe: bool,
    /// Replay speed: 1, 2, 5 or 10 times the recording's pace, or max
    #[arg(long, short = 's', default_value = "1", value_parser = parse_speed, value_name = "1|2|5|10|max")]
    pub speed: crate::tui::Speed,
    /// The captures folder holding training/ and lab-pki/ (default: ./captures when it has
    /// training/, else the source tree's)
    #[arg(long, value_name = "CAPTURES")]
    pub dir: Option<PathBuf>,
}

impl DemoArgs {
    /// The lesson to start at; an unknown one is an error listing them.
    pub fn start(&self) -> Result<&'static crate::lesson::Lesson, String> {
        use crate::lesson::{find, LESSONS};
        let name = self.lesson.as_deref().unwrap_or("1");
        find(name).ok_or_else(|| {
            let known: Vec<String> = LESSONS
                .iter()
                .map(|l| format!("{} {}", l.number, l.name))
                .collect();
            format!(
                "demo: no lesson {name:?}; the lessons: {}",
                known.join(", ")
            )
        })
    }

    /// `--dir`, or ./captures when it has training/, or the source tree's captures.
    pub fn captures_dir(&self) -> PathBuf {
        if let Some(d) = &self.dir {
            return d.clone();
        }
        let here = PathBuf::from("captures");
        if here.join(crate::lesson::TRAINING_DIR).is_dir() {
            return here;
        }
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("captures")
    }
}

/// The analysis options the lessons are read with ([`crate::lesson::analysis_args`]),
/// parsed by the same flags as `analyze`: the demo analyses exactly like
/// `modtrace analyze FILE <those flags>`.
pub fn lesson_analysis_options(captures_dir: &std::path::Path) -> Result<AnalysisOptions, String> {
    #[derive(Parser, Debug)]
    #[command(no_binary_name = true)]
    struct LessonFlags {
        #[command(flatten)]
        opts: AnalysisOptions,
    }
    LessonFlags::try_parse_from(crate::lesson::analysis_args(captures_dir))
        .map(|f| f.opts)
        .map_err(|e| format!("the lessons' analysis flags: {e}"))
}

fn parse_speed(s: &str) -> Result<crate::tui::Speed, String> {
    crate::tui::Speed::parse(s)
        .ok_or_else(|| format!("{s:?}: expected 1, 2, 5, 10 (any positive factor) or max"))
}

/// The options of the analysis itself, shared by `analyze` and `capture`.
#[derive(clap::Args, Debug, Clone)]
pub struct AnalysisOptions {
    /// Exit 1 when a finding at or above this severity is found
    #[arg(long, value_enum, default_value_t = FailOn::High, value_name = "SEVERITY")]
    pub fail_on: FailOn,
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
    /// TLS key log (NSS format, as SSLKEYLOGFILE writes; repeatable): decrypts the sessions
    /// it has secrets for
    #[arg(
        long,
        value_name = "FILE",
        long_help = "TLS key log in the NSS format (what SSLKEYLOGFILE writes, and what the lab servers and many TLS servers and recording proxies can write; repeatable). Sessions whose client random it names are decrypted: TLS 1.3 (handshake and application traffic secrets, key updates) and TLS 1.2 (CLIENT_RANDOM master secrets), with AES-GCM and ChaCha20-Poly1305. Their HTTP/1.1 and HTTP/2 requests become exchanges like plaintext ones, and TLS 1.3 certificates are checked. Key logs embedded in a pcapng (Decryption Secrets Blocks) are used too. With `capture`, the file is also followed while capturing and embedded in the -w file."
    )]
    pub keylog: Vec<PathBuf>,
    /// Policy file (TOML): private module patterns, allowed proxies, severity overrides,
    /// ignored findings (README: CI usage, Policy)
    #[arg(
        long,
        value_name = "FILE",
        long_help = "Policy file (TOML; README: CI usage, Policy):\n  private = [\"*.corp.example\"]   module path patterns that must not reach a proxy or checksum database (GOPRIVATE syntax)\n  allowed_proxies = [\"https://proxy.corp.example\"]   GOPROXY bases allowed to serve modules (and to see private paths)\n  private_proxies = [\"https://athens.corp.example\"]   your own proxies, which may see private paths (no allow list)\n  [severity] proxy-fallback = \"low\"   severity overrides by rule id\n  [[ignore]] rule = \"...\", module = \"pattern\", reason = \"...\" (required), until = 2027-01-31   accepted findings, listed apart in the report\nOverrides and ignores apply before --fail-on and every output format. --private and --go-env add to the file's private patterns; an error in the file (unknown key, rule id or severity) exits 2 naming its line."
    )]
    pub policy: Option<PathBuf>,
    /// Private module path patterns (GOPRIVATE syntax: comma-separated globs; repeatable):
    /// requests for them to a proxy or checksum database are private-module-leak findings
    #[arg(
        long,
        value_name = "PATTERNS",
        long_help = "Private module path patterns, in GOPRIVATE syntax (comma-separated path.Match globs, each matching whole leading path elements: `*.corp.example` matches git.corp.example/x/y; repeatable). A private module requested from a proxy that is not in the policy's allowed_proxies or private_proxies, or looked up in a checksum database, is a private-module-leak finding. Added to the policy file's patterns and to GOPRIVATE (GONOPROXY, GONOSUMDB) from --go-env."
    )]
    pub private: Vec<String>,
    /// Threads that hash module zips while packets are read (default: one per core; 0:
    /// hash them on the packet path). Reports are the same for every value.
    #[arg(
        long,
        value_name = "N",
        long_help = "Worker threads that hash module zips (inflate every file, SHA-256, h1) while packets go on being read and parsed. Default: one per core. 0 hashes them on the packet path, one zip after another. Reports are byte-identical for every value: results are used in the order the exchanges arose."
    )]
    pub threads: Option<usize>,
}

impl AnalysisOptions {
    /// The analysis configuration from the flags: trust anchors, the Go environment, checksum
    /// database keys and go.sum files. Reads the files named (and runs `go env -json` for
    /// `--go-env auto`).
    pub fn config(&self) -> Result<Config, String> {
        let a = self;
        let mut cfg = Config {
            threads: a.threads.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
            }),
            ..Config::default()
        };
        for f in &a.ca_file {
            cfg.tls
                .trust
                .add_pem_file(f)
                .map_err(|e| format!("--ca-file {}: {e}", f.display()))?;
        }
        if a.system_roots {
            cfg.tls
                .trust
                .add_system_roots()
                .map_err(|e| format!("--system-roots: {e}"))?;
        }
        let mut go_env = None;
        if let Some(src) = &a.go_env {
            let text = if src == "auto" {
                let out = std::process::Command::new("go")
                    .args(["env", "-json"])
                    .output()
                    .map_err(|e| format!("--go-env auto: running `go env -json`: {e}"))?;
                if !out.status.success() {
                    return Err(format!(
                        "--go-env auto: `go env -json` failed: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    ));
                }
                String::from_utf8_lossy(&out.stdout).into_owned()
            } else {
                std::fs::read_to_string(src).map_err(|e| format!("--go-env {src}: {e}"))?
            };
            let env = GoEnv::parse(&text).map_err(|e| format!("--go-env {src}: {e}"))?;
            cfg.tls.go_hosts = env.trusted_hosts();
            if let SumDb::On { key: Some(k), .. } = env.gosumdb() {
                let v =
                    Verifier::parse(&k).map_err(|e| format!("--go-env {src}: GOSUMDB key: {e}"))?;
                cfg.sumdb_keys.push(v);
            }
            cfg.goproxy = env.goproxy();
            go_env = Some(env);
        }
        cfg.policy = crate::policy::Policy::load(a.policy.as_deref(), &a.private, go_env.as_ref())?;
        for k in &a.sumdb_key {
            let v = Verifier::parse(k).map_err(|e| format!("--sumdb-key {k}: {e}"))?;
            cfg.sumdb_keys.push(v);
        }
        // One verifier per name and key hash (the same key from GOSUMDB and a flag is fine).
        let mut seen = std::collections::HashSet::new();
        cfg.sumdb_keys
            .retain(|v| seen.insert((v.name.clone(), v.key_hash)));
        for f in &a.go_sum {
            let data = std::fs::read(f).map_err(|e| format!("--go-sum {}: {e}", f.display()))?;
            let sum = parse_go_sum(&data, &GoSumLimits::default());
            if sum.lines.is_empty() && !data.is_empty() {
                return Err(format!("--go-sum {}: no go.sum lines in it", f.display()));
            }
            let name = f.display().to_string();
            cfg.go_sum
                .extend(sum.lines.into_iter().map(|l| (l, name.clone())));
        }
        for f in &a.keylog {
            let data = std::fs::read(f).map_err(|e| format!("--keylog {}: {e}", f.display()))?;
            let before = cfg.keylog.len();
            cfg.keylog.add_text(&data);
            if cfg.keylog.len() == before && !data.is_empty() {
                return Err(format!(
                    "--keylog {}: no key log lines in it (expected `LABEL <client random hex> <secret hex>`, e.g. CLIENT_RANDOM or CLIENT_TRAFFIC_SECRET_0)",
                    f.display()
                ));
            }
        }
        Ok(cfg)
    }
}

#[derive(clap::Args, Debug)]
pub struct CaptureArgs {
    #[command(flatten)]
    pub live: LiveArgs,
    /// Stream text or JSON Lines instead of opening the TUI
    #[arg(long)]
    pub no_tui: bool,
    /// Format of the event stream on standard output
    #[arg(long, short = 'F', value_enum, default_value_t = StreamFormat::Text)]
    pub format: StreamFormat,
    /// User to run as once the capture is open (default: the user who ran sudo, else nobody)
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Keep only the connections of processes named NAME and of their children (Linux)
    #[arg(long, value_name = "NAME")]
    pub process: Option<String>,
    #[command(flatten)]
    pub keys: GoKeysArgs,
    #[command(flatten)]
    pub opts: AnalysisOptions,
}

/// What a live capture reads and keeps: shared by `capture` and `run`.
#[derive(clap::Args, Debug, Clone)]
pub struct LiveArgs {
    /// Interface to capture on (`any`: all interfaces, Linux)
    #[arg(long, short = 'i', default_value = "any", value_name = "IFACE|any")]
    pub interface: String,
    /// Capture filter (BPF, as tcpdump takes it); the default keeps TCP on any port (mirrors
    /// listen anywhere) and DNS
    #[arg(
        long,
        short = 'f',
        default_value = "tcp or port 53",
        value_name = "BPF"
    )]
    pub filter: String,
    /// Also write every captured packet to FILE as pcapng, as it arrives, with the TLS
    /// secrets seen (Decryption Secrets Blocks: `modtrace analyze FILE` and Wireshark decrypt
    /// it later)
    #[arg(long, short = 'w', value_name = "FILE.pcapng")]
    pub write: Option<PathBuf>,
    /// Bytes kept per packet (0: the whole packet, 262144)
    #[arg(long, short = 's', default_value_t = 262_144, value_name = "SNAPLEN")]
    pub snaplen: u32,
}

/// The go process key source (Linux, root): flags shared by `capture` and `run`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct GoKeysArgs {
    /// Also read the TLS secrets of this Go program (repeatable; e.g. a Go-written module
    /// proxy, to see its upstream leg)
    #[arg(
        long,
        value_name = "PATH",
        long_help = "Also read the TLS secrets of this Go program while it runs (repeatable): any Go binary, stripped or not, PIE or not, e.g. a company's Go-written module proxy, to see its upstream leg. The go command itself (the one on PATH, the sudo caller's `go env GOROOT`, the usual install places) and the toolchains in the caller's module cache are probed without this flag."
    )]
    pub go_binary: Vec<PathBuf>,
    /// Do not read TLS secrets from Go processes
    #[arg(long)]
    pub no_go_keys: bool,
    /// Also write every TLS secret seen to FILE (NSS key-log format, mode 0600, owned by the
    /// sudo caller), e.g. for Wireshark
    #[arg(long, value_name = "FILE")]
    pub keylog_out: Option<PathBuf>,
    /// Where tracefs is mounted (default: found in /proc/self/mountinfo, else mounted at
    /// /sys/kernel/tracing)
    #[arg(long, value_name = "DIR")]
    pub tracefs: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The command to run, with its arguments (after `--`)
    #[arg(required = true, trailing_var_arg = true, value_name = "COMMAND")]
    pub command: Vec<String>,
    #[command(flatten)]
    pub live: LiveArgs,
    /// Do not open the TUI: write the report when COMMAND exits
    #[arg(long)]
    pub no_tui: bool,
    #[command(flatten)]
    pub report: ReportArgs,
    /// User to run COMMAND as (default: the user who ran sudo; root without sudo)
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    #[command(flatten)]
    pub keys: GoKeysArgs,
    #[command(flatten)]
    pub opts: AnalysisOptions,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A readable summary per module, then findings
    Text,
    /// One JSON object: capture, exchanges, modules, findings (docs/report.md)
    Json,
    /// One JSON object per exchange and per finding, in time order (the live stream's form)
    Jsonl,
    /// SARIF 2.1.0 for code scanning (GitHub, GitLab): one result per finding
    Sarif,
    /// Elastic Common Schema NDJSON: one document per finding (and per exchange with
    /// --ecs-events), for Filebeat or Elastic Agent
    Ecs,
}

impl From<Format> for crate::report::ReportFormat {
    fn from(f: Format) -> Self {
        use crate::report::ReportFormat as R;
        match f {
            Format::Text => R::Text,
            Format::Json => R::Json,
            Format::Jsonl => R::Jsonl,
            Format::Sarif => R::Sarif,
            Format::Ecs => R::Ecs,
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum StreamFormat {
    /// One line per exchange and finding as they complete, then the text report
    Text,
    /// One JSON object per line: `exchange`, `journey`, `finding`, `tls`, then `summary`
    Jsonl,
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

impl FailOn {
    /// The lowest severity that makes the exit status 1; None for `never`.
    pub fn threshold(self) -> Option<crate::detect::Severity> {
        use crate::detect::Severity;
        match self {
            FailOn::Never => None,
            FailOn::Critical => Some(Severity::Critical),
            FailOn::High => Some(Severity::High),
            FailOn::Medium => Some(Severity::Medium),
            FailOn::Low => Some(Severity::Low),
            FailOn::Info => Some(Severity::Info),
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}
