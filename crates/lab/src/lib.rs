//! The lab: loopback HTTP servers (GOPROXY, fallback, redirecting mirrors, a mirror with an
//! upstream, go-get discovery) used to record captures of the real go command. Binds 127.0.0.1
//! only. (Owned by the lab work item.)
//!
//! HTTP/1.1 on std::net with a thread per connection, plain or over rustls (TLS 1.2 and/or 1.3,
//! certificates from a lab CA, NSS key log): the go command's traffic to the lab is a few dozen
//! small requests, and threads keep the servers simple and inspectable. A TLS server may also
//! offer HTTP/2 ([`http2`]: the h2 crate on a per-connection tokio runtime), and a CONNECT proxy
//! ([`connect`]) tunnels an HTTPS_PROXY client to the lab's own servers.
//! Every answered request is logged as one JSON line ([`log::LogEntry`]), the ground truth a
//! capture is checked against.

pub mod connect;
pub mod goproxy;
mod handler;
pub mod http;
pub mod http2;
pub mod log;
pub mod modules;
pub mod run;
pub mod scenario;
pub mod server;
pub mod sumdb;
pub mod tamper;
pub mod tls;

pub use goproxy::ModuleScope;
pub use http::Limits;
pub use log::{LogEntry, RequestLog};
pub use modules::{ModuleStore, ModuleVersion};
pub use scenario::{Scenario, SCENARIOS};
pub use server::{
    Credentials, Lab, LabOptions, ServerInfo, ServerKind, ServerSpec, Target, TlsContext,
};
pub use sumdb::{LabSigner, SumDb, SumRecord, LAB_SUMDB_NAME};
pub use tamper::{TamperPlan, TamperedZip};
pub use tls::{CertKind, KeyLogWriter, Pki, TlsServerOptions, TlsVersions, UpstreamVerify};

use clap::{Args, Parser, Subcommand};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The only address the lab binds: loopback, never another interface.
pub const LAB_IP: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("modules: {0}")]
    Modules(String),
    #[error("{0}")]
    Config(String),
    #[error("cannot listen on {addr}: {cause}")]
    Bind { addr: SocketAddr, cause: String },
}

const LAB_LONG_ABOUT: &str = "\
Loopback HTTP servers for recording (and training on) the go command's module traffic.

Training: `lab list` shows the five lessons (a mistake that makes private module proxies
dangerous, each as an unsafe and a safe scenario); `lab run LESSON` starts a lesson's servers,
runs the real go command both ways with a private GOPATH and module cache, prints what go said
and, when this binary can capture (feature live, root), records each half and opens it in the
TUI; `modtrace demo LESSON` replays the bundled recordings. See `modtrace lab run --help`.

Every server binds 127.0.0.1 only and logs each answered request as one JSON line:
{\"server\":NAME,\"listen\":\"127.0.0.1:PORT\",\"method\":..,\"target\":..,\"status\":..,\"bytes\":..}

Server kinds (SPEC is [NAME=]KIND[+TLS[+h2]]:127.0.0.1:PORT[:ARG]):
  proxy       GOPROXY serving --modules (lab/modules/<module path>@<version>/ trees);
              ARG: optional path prefix (/mod)
  proxy-auth  the same, but 401 without Basic auth --user/--password
  proxy-only  a proxy serving only the modules under ARG (a module path prefix, e.g.
              corp.lab.test): a company's private proxy; 404 for the rest
  proxy-except  a proxy serving every module but those under ARG: a public-style mirror
  gone        answers ARG (410, default, 404 or 500) to everything
  redirect    302 to ARG + the same request target; ARG: a server NAME or http[s]://127.0.0.1:PORT
  mirror      fetches the same target from ARG (a NAME or base) with Basic auth --user/--password
              and relays status and body; an https:// upstream is verified against the lab CA
  mirror-noverify  the same, but an https:// upstream's certificate is NOT checked at all
  goget       answers GET /<path>?go-get=1 with <meta name=\"go-import\" content=\"<Host><path>
              mod ARG\">; ARG: the repo root URL (a GOPROXY base, e.g. http://lab.test)
  proxy-sumdb a proxy that also serves the lab checksum database under /sumdb/sum.lab.test/
              (supported, lookup, tile, latest); ARG: optional path prefix
  sumdb       the lab checksum database at the root: /lookup/<mod>@<ver>, /tile/8/L/N[.p/W],
              /latest; signed with the fixed lab key (`lab sumdb-key` prints its verifier key)
  tamper      a GOPROXY that changes one byte of one file in every .zip it serves (the zip
              stays valid, its h1: changes); ARG: comma-separated options: mod (the .mod too),
              nozip, time=RFC3339 (rewrite .info Time), only=MODULE (zip/mod of that module
              only), upstream=NAME|http://... (relay that GOPROXY instead of the lab modules)
  connect     a CONNECT proxy (plain HTTP only; for HTTPS_PROXY=http://127.0.0.1:PORT):
              `CONNECT lab.test:P` (or a name under lab.test) where P is the port of another
              server of the same lab opens 127.0.0.1:P (never another address) and relays
              bytes both ways until either side closes; other targets 403, other methods 405;
              every CONNECT is logged (method CONNECT, target host:port)

TLS (any kind but connect): +tls12, +tls13 or +tls (both), optionally followed by -valid
(default), -self-signed, -expired or -wrong-name: the certificate the server presents (see
`lab pki`). ALPN offers http/1.1 only, unless +h2 follows (proxy+tls13+h2): then h2 first,
and a client that picks h2 (the go command does) speaks HTTP/2, logged like HTTP/1.1 (target =
:path). Every TLS server and the mirror's TLS client write their secrets to --keylog (NSS key
log format: tshark -o tls.keylog_file:FILE).

`serve` prints one `server NAME KIND URL` line per server (and `closed NAME URL` per GOPROXY
entry of the scenario that nothing listens on), `SUMDB_KEY=<verifier key>` when a
checksum database runs, then `GOPROXY=...` (the servers that no other server points at, in
order, checksum databases left out) once all listen, and runs until SIGINT/SIGTERM (each log
line is written when its response is sent, so a kill loses nothing), --timeout, or with
--until-stdin-eof until standard input closes.

Examples:
  modtrace lab serve --scenario fallback-410 --log /tmp/lab.jsonl
  modtrace lab serve --log lab.jsonl gone:127.0.0.1:8092 proxy:127.0.0.1:8093
  modtrace lab serve a=redirect:127.0.0.1:8094:b b=redirect:127.0.0.1:8095:a
  modtrace lab pki /tmp/pki
  modtrace lab serve --pki /tmp/pki --keylog /tmp/k.keys proxy+tls13:127.0.0.1:8093
  modtrace lab serve --pki /tmp/pki m=mirror-noverify:127.0.0.1:8088:u u=proxy+tls12-self-signed:127.0.0.1:8089
  modtrace lab serve s=sumdb:127.0.0.1:8102 proxy:127.0.0.1:8101
  modtrace lab serve m=tamper:127.0.0.1:8106:upstream=u,only=example.test/Hello u=proxy:127.0.0.1:8107
  modtrace lab serve --pki /tmp/pki --keylog /tmp/k.keys p=proxy+tls13+h2:127.0.0.1:8109 c=connect:127.0.0.1:8110
      # HTTPS_PROXY=http://127.0.0.1:8110 GOPROXY=https://lab.test:8109 SSL_CERT_FILE=/tmp/pki/lab-ca.pem
  modtrace lab embed-keys capture.pcap k.keys capture.pcapng   # key log as a pcapng DSB
  modtrace lab sumdb-key            # GOSUMDB=\"$(modtrace lab sumdb-key) http://127.0.0.1:8102\"
  modtrace lab go-sum example.test/Hello@v1.1.0
  modtrace lab list                   # the training lessons
  modtrace lab run sumdb-off          # a lesson live, both halves, with the real go command
  modtrace lab scenarios
  eval \"$(modtrace lab env redirect-loop)\"   # what captures/record.sh does";

#[derive(Parser, Debug)]
#[command(name = "modtrace lab", about = "Loopback GOPROXY servers for captures and training", long_about = LAB_LONG_ABOUT)]
struct LabCli {
    #[command(subcommand)]
    cmd: LabCmd,
}

#[derive(Subcommand, Debug)]
enum LabCmd {
    /// List the training lessons: five mistakes, each as an unsafe and a safe scenario
    List,
    /// Run a lesson (both halves) or a scenario live on 127.0.0.1: its servers, the real go
    /// command, and a recording when this binary can capture
    #[command(after_help = run::RUN_AFTER_HELP)]
    Run(run::RunArgs),
    /// Start a scenario's servers or servers given as SPECs
    Serve(ServeArgs),
    /// List the scenarios: name, ports, summary
    Scenarios,
    /// Print a scenario's settings as shell assignments (GOPROXY, GOSUMDB, DOWNLOADS, ...)
    Env {
        /// Scenario name (see `modtrace lab scenarios`)
        name: String,
    },
    /// Create (or complete) a lab PKI in DIR: lab-ca.pem/.key and leaf-KIND.pem/.key for KIND
    /// valid, self-signed, expired, wrong-name; existing files are kept
    Pki {
        /// Folder for the PEM files
        dir: PathBuf,
    },
    /// Print the lab checksum database's verifier key (GOSUMDB form: name+hash+key)
    SumdbKey,
    /// Copy a capture (pcap or pcapng) into a pcapng with a TLS key log embedded as a
    /// Decryption Secrets Block, ahead of the packets (Wireshark/tshark and `modtrace analyze`
    /// then decrypt without a separate key file)
    EmbedKeys {
        /// The capture to copy
        input: PathBuf,
        /// NSS key log (`CLIENT_RANDOM ...`, `CLIENT_TRAFFIC_SECRET_0 ...` lines)
        keys: PathBuf,
        /// The pcapng to write (replaced if it exists; must not be the input)
        output: PathBuf,
    },
    /// Print the true go.sum lines of lab modules (the hashes of what the honest lab proxy
    /// serves)
    GoSum {
        /// Module trees (default: ./lab/modules, else the source checkout's lab/modules)
        #[arg(long, value_name = "DIR")]
        modules: Option<PathBuf>,
        /// module@version, as many as wanted
        #[arg(value_name = "MODULE@VERSION", required = true)]
        modules_versions: Vec<String>,
    },
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// Start this scenario's servers on their fixed ports
    #[arg(long, conflicts_with = "specs")]
    scenario: Option<String>,
    /// Servers to start: [NAME=]KIND:127.0.0.1:PORT[:ARG]
    #[arg(value_name = "SPEC", required_unless_present = "scenario")]
    specs: Vec<String>,
    /// Append request log lines to FILE (default: standard error)
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
    /// Module trees to serve (default: ./lab/modules, else the source checkout's lab/modules)
    #[arg(long, value_name = "DIR")]
    modules: Option<PathBuf>,
    /// Basic-auth user between mirror and proxy-auth
    #[arg(long, default_value = "mirror")]
    user: String,
    /// Basic-auth password between mirror and proxy-auth (a lab credential, not a secret)
    #[arg(long, default_value = "lab-secret-Zq7")]
    password: String,
    /// Exit after SECS seconds (a safety net for scripts)
    #[arg(long, value_name = "SECS")]
    timeout: Option<u64>,
    /// Also exit when standard input reaches EOF
    #[arg(long)]
    until_stdin_eof: bool,
    /// Lab PKI folder (see `lab pki`; created or completed if needed). Without it TLS servers
    /// use a fresh in-memory CA that nothing can trust
    #[arg(long, value_name = "DIR")]
    pki: Option<PathBuf>,
    /// Append the TLS secrets of every TLS server and client to FILE (NSS key log)
    #[arg(long, value_name = "FILE")]
    keylog: Option<PathBuf>,
}

/// Entry point of `modtrace lab ...` (arguments after `lab`). Returns the process exit code.
/// `modtrace lab`'s command line as a clap command named `lab`, for the completions and the man
/// page of the whole tool (the `modtrace` binary passes `lab`'s arguments through unparsed).
pub fn command() -> clap::Command {
    <LabCli as clap::CommandFactory>::command().name("lab")
}

pub fn cli(args: &[String]) -> i32 {
    let parsed = LabCli::try_parse_from(
        std::iter::once("modtrace lab".to_string()).chain(args.iter().cloned()),
    );
    let cli = match parsed {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return e.exit_code();
        }
    };
    let result = match cli.cmd {
        LabCmd::List => {
            print!("{}", run::list());
            Ok(())
        }
        LabCmd::Run(a) => {
            return match run::run(a) {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("modtrace: lab run: {e}");
                    2
                }
            }
        }
        LabCmd::Serve(a) => serve(a),
        LabCmd::Scenarios => {
            for s in SCENARIOS {
                let ports: Vec<String> = s.ports().iter().map(u16::to_string).collect();
                println!("{:<20} ports {:<10} {}", s.name, ports.join(","), s.summary);
            }
            Ok(())
        }
        LabCmd::Pki { dir } => match Pki::load_or_create(&dir) {
            Ok((_, created)) => {
                println!(
                    "{} {}",
                    if created { "created" } else { "kept" },
                    dir.join(tls::CA_CERT_FILE).display()
                );
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        },
        LabCmd::SumdbKey => {
            println!("{}", LabSigner::lab().verifier_key());
            Ok(())
        }
        LabCmd::EmbedKeys {
            input,
            keys,
            output,
        } => embed_keys(&input, &keys, &output).map(|(packets, key_bytes)| {
            println!(
                "{}: {packets} packets, {key_bytes} bytes of key log",
                output.display()
            )
        }),
        LabCmd::GoSum {
            modules,
            modules_versions,
        } => go_sum(
            &modules.unwrap_or_else(default_modules_dir),
            &modules_versions,
        )
        .map(|text| print!("{text}")),
        LabCmd::Env { name } => match scenario::find(&name) {
            Some(s) => {
                print!("{}", env_assignments(s));
                Ok(())
            }
            None => Err(format!(
                "no scenario {name:?} (see `modtrace lab scenarios`)"
            )),
        },
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("modtrace: lab: {e}");
            2
        }
    }
}

/// The go.sum lines (x/mod sumdb record form: `<mod> <ver> h1:..` then `<mod> <ver>/go.mod
/// h1:..`) of `module@version`s in the store under `dir`, sorted as go writes go.sum.
pub fn go_sum(dir: &std::path::Path, wanted: &[String]) -> Result<String, String> {
    let store = ModuleStore::load(dir).map_err(|e| e.to_string())?;
    let mut pairs = Vec::new();
    for w in wanted {
        let (m, v) = w
            .rsplit_once('@')
            .ok_or_else(|| format!("{w:?}: expected module@version"))?;
        pairs.push((m.to_string(), v.to_string()));
    }
    pairs.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| modules::semver_cmp(&a.1, &b.1)));
    pairs.dedup();
    let mut out = String::new();
    for (m, v) in pairs {
        out.push_str(&sumdb::store_record(&store, &m, &v).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

/// Largest key log `embed-keys` takes: what modtrace's own reader keeps of a DSB
/// ([`modtrace_core::source::ReaderLimits::max_keylog_bytes`]), so every embedded line is read back.
pub const EMBED_KEYS_MAX_BYTES: usize = 4 << 20;

/// Writes `output`: a pcapng with the key log `keys` in a Decryption Secrets Block right
/// after the section header, then every frame of `input` (link types and timestamps kept;
/// the interface snaplen is 262144, tcpdump's `-s 0`). The block comes first because
/// tshark reads a file in one pass and uses secrets only for packets after them. Returns
/// (packets, key log bytes).
pub fn embed_keys(input: &Path, keys: &Path, output: &Path) -> Result<(u64, usize), String> {
    use modtrace_core::source::pcapng::PcapngWriter;
    use modtrace_core::source::CaptureReader;
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same(input, output) || same(keys, output) {
        return Err(format!(
            "{}: the output must be a new file",
            output.display()
        ));
    }
    let secrets = std::fs::read(keys).map_err(|e| format!("key log {}: {e}", keys.display()))?;
    check_key_log(&secrets).map_err(|e| format!("key log {}: {e}", keys.display()))?;
    if secrets.len() > EMBED_KEYS_MAX_BYTES {
        return Err(format!(
            "key log {}: {} bytes, over the {EMBED_KEYS_MAX_BYTES} a reader keeps",
            keys.display(),
            secrets.len()
        ));
    }
    let mut reader = CaptureReader::open(input, 0).map_err(|e| e.to_string())?;
    let file = std::fs::File::create(output).map_err(|e| format!("{}: {e}", output.display()))?;
    let write_err = |e: std::io::Error| format!("{}: {e}", output.display());
    let mut w = PcapngWriter::new(
        std::io::BufWriter::new(file),
        concat!("modtrace ", env!("CARGO_PKG_VERSION"), " lab embed-keys"),
        None,
        262_144,
    )
    .map_err(write_err)?;
    if !w.write_keylog(&secrets).map_err(write_err)? {
        return Err(format!("key log {}: not embedded", keys.display()));
    }
    while let Some(frame) = reader.next_frame().map_err(|e| e.to_string())? {
        w.write_frame(&frame).map_err(write_err)?;
        reader.recycle(frame);
    }
    let packets = w.packets();
    w.into_inner().map_err(write_err)?;
    Ok((packets, secrets.len()))
}

/// An NSS key log: text lines `LABEL <hex client random> <hex secret>` (comments `#` and
/// blank lines allowed), at least one of them.
fn check_key_log(text: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(text).map_err(|_| "not text".to_string())?;
    let mut lines = 0usize;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        let hex = |f: &str| !f.is_empty() && f.bytes().all(|b| b.is_ascii_hexdigit());
        if fields.len() != 3 || !hex(fields[1]) || !hex(fields[2]) {
            return Err(format!("line {}: not `LABEL CLIENT_RANDOM SECRET`", i + 1));
        }
        lines += 1;
    }
    if lines == 0 {
        return Err("no key lines".into());
    }
    Ok(())
}

/// Shell assignments describing a scenario, single-quoted (no value holds a quote).
pub fn env_assignments(s: &Scenario) -> String {
    let q = |v: &str| format!("'{}'", v.replace('\'', "'\\''"));
    let ports: Vec<String> = s.ports().iter().map(u16::to_string).collect();
    let expect = match s.expect {
        scenario::GoOutcome::Success => "",
        scenario::GoOutcome::ErrorContains(t) => t,
    };
    let tls_ports: Vec<String> = s.tls_ports().iter().map(u16::to_string).collect();
    let connect_ports: Vec<String> = s.connect_ports().iter().map(u16::to_string).collect();
    let closed_ports: Vec<String> = s.closed_ports().iter().map(u16::to_string).collect();
    let flag = |b: bool| if b { "1" } else { "0" }.to_string();
    [
        ("SCENARIO", s.name.to_string()),
        ("SUMMARY", s.summary.to_string()),
        ("GOPROXY", s.goproxy_value()),
        ("GOSUMDB", s.gosumdb_value()),
        ("USES_LAB_SUMDB", flag(s.uses_lab_sumdb())),
        ("SUMDB_KEY", LabSigner::lab().verifier_key()),
        ("TRUE_GO_SUM", flag(s.tampers())),
        ("DOWNLOADS", s.downloads.join(" ")),
        ("INTERFACE", s.interface.to_string()),
        ("PORTS", ports.join(" ")),
        ("TLS_PORTS", tls_ports.join(" ")),
        ("USES_TLS", flag(s.uses_tls())),
        ("USES_HTTP2", flag(s.uses_http2())),
        ("HTTPS_PROXY", s.https_proxy_value()),
        ("EMBED_KEYS", flag(s.embed_keys)),
        ("CONNECT_PORTS", connect_ports.join(" ")),
        ("CLOSED_PORTS", closed_ports.join(" ")),
        ("GOINSECURE", s.goinsecure.to_string()),
        ("GOPRIVATE", s.goprivate.to_string()),
        ("GONOPROXY", s.gonoproxy.to_string()),
        ("TRUST_LAB_CA", flag(s.trust_lab_ca)),
        ("NETNS_HOSTS", s.netns_hosts.join(" ")),
        ("EXPECT_REQUESTS", flag(s.expect_requests)),
        ("EXPECT_ERROR", expect.to_string()),
    ]
    .iter()
    .map(|(k, v)| format!("{k}={}\n", q(v)))
    .collect()
}

/// Parses `[NAME=]KIND[+TLS[+h2]]:IP:PORT[:ARG]`: the spec, and whether its TLS offers HTTP/2
/// (for [`LabOptions::http2`]).
pub fn parse_spec(spec: &str, creds: &Credentials) -> Result<(ServerSpec, bool), String> {
    let (name, rest) = match spec.split_once('=') {
        Some((n, r)) if !n.contains(':') => (Some(n.to_string()), r),
        _ => (None, spec),
    };
    let mut parts = rest.splitn(4, ':');
    let kind = parts.next().unwrap_or("");
    let ip = parts
        .next()
        .ok_or_else(|| format!("{spec}: expected KIND:127.0.0.1:PORT[:ARG]"))?;
    let port = parts
        .next()
        .ok_or_else(|| format!("{spec}: expected KIND:127.0.0.1:PORT[:ARG]"))?;
    let arg = parts.next();
    let (kind, http2) = match kind.strip_suffix("+h2") {
        Some(k) if k.contains('+') => (k, true),
        Some(_) => return Err(format!("{spec}: +h2 needs TLS first (e.g. proxy+tls13+h2)")),
        None => (kind, false),
    };
    let (kind, tls) = match kind.split_once('+') {
        Some((k, t)) => (
            k,
            Some(TlsServerOptions::parse(t).ok_or_else(|| {
                format!("{spec}: bad TLS option {t:?} (tls12, tls13 or tls, then optionally -valid, -self-signed, -expired or -wrong-name)")
            })?),
        ),
        None => (kind, None),
    };
    let addr: SocketAddr = format!("{ip}:{port}")
        .parse()
        .map_err(|_| format!("{spec}: bad address {ip}:{port}"))?;
    let target = |a: Option<&str>| -> Result<Target, String> {
        match a {
            Some(a) if a.starts_with("http://") || a.starts_with("https://") => {
                Ok(Target::Base(a.to_string()))
            }
            Some(a) if !a.is_empty() => Ok(Target::Server(a.to_string())),
            _ => Err(format!(
                "{spec}: {kind} needs a server NAME or http:// base as ARG"
            )),
        }
    };
    let kind = match kind {
        "proxy-sumdb" => ServerKind::ProxyWithSumdb {
            prefix: arg.unwrap_or("").to_string(),
        },
        "sumdb" => {
            if arg.is_some_and(|a| !a.is_empty()) {
                return Err(format!("{spec}: sumdb takes no ARG"));
            }
            ServerKind::SumDb
        }
        "tamper" => {
            let mut upstream = None;
            let mut opts = Vec::new();
            for o in arg.unwrap_or("").split(',') {
                match o.strip_prefix("upstream=") {
                    Some(u) => upstream = Some(target(Some(u))?),
                    None => opts.push(o),
                }
            }
            ServerKind::Tamper {
                upstream,
                plan: TamperPlan::parse_options(opts).map_err(|e| format!("{spec}: {e}"))?,
            }
        }
        "proxy" => ServerKind::Proxy {
            prefix: arg.unwrap_or("").to_string(),
            auth: None,
        },
        "proxy-only" | "proxy-except" => {
            let p = arg
                .filter(|a| !a.is_empty() && !a.starts_with('/') && !a.ends_with('/'))
                .ok_or_else(|| format!("{spec}: {kind} needs a module path prefix as ARG"))?
                .to_string();
            ServerKind::ScopedProxy {
                scope: if kind == "proxy-only" {
                    ModuleScope::Only(p)
                } else {
                    ModuleScope::Except(p)
                },
            }
        }
        "proxy-auth" => ServerKind::Proxy {
            prefix: arg.unwrap_or("").to_string(),
            auth: Some(creds.clone()),
        },
        "gone" => {
            let status = match arg {
                None | Some("") | Some("410") => 410,
                Some("404") => 404,
                Some("500") => 500,
                Some(o) => return Err(format!("{spec}: gone answers 410, 404 or 500, not {o}")),
            };
            ServerKind::Gone { status }
        }
        "redirect" => ServerKind::Redirect {
            to: target(arg)?,
            status: 302,
        },
        "mirror" | "mirror-noverify" => ServerKind::Mirror {
            upstream: target(arg)?,
            credentials: creds.clone(),
            verify: if kind == "mirror" {
                UpstreamVerify::LabCa
            } else {
                UpstreamVerify::Nothing
            },
        },
        "goget" => match arg {
            Some(a) if a.starts_with("http://") || a.starts_with("https://") => ServerKind::GoGet {
                repo_root: a.to_string(),
            },
            _ => return Err(format!("{spec}: goget needs the repo root URL as ARG")),
        },
        "connect" => {
            if arg.is_some_and(|a| !a.is_empty()) {
                return Err(format!("{spec}: connect takes no ARG"));
            }
            if tls.is_some() {
                return Err(format!("{spec}: the connect proxy speaks plain HTTP only"));
            }
            ServerKind::Connect
        }
        other => {
            return Err(format!(
                "{spec}: unknown kind {other:?} (proxy, proxy-auth, gone, redirect, mirror, mirror-noverify, goget, proxy-sumdb, sumdb, tamper, connect)"
            ))
        }
    };
    let name = name.unwrap_or_else(|| format!("{}-{}", kind.label(), addr.port()));
    Ok((
        ServerSpec {
            name,
            addr,
            kind,
            tls,
        },
        http2,
    ))
}

/// GOPROXY for ad-hoc specs: the servers no other server points at, in order (for a loop
/// where every server is pointed at, the first one).
pub fn default_goproxy(servers: &[ServerInfo]) -> String {
    let is_referenced = |s: &ServerInfo| {
        servers.iter().any(|o| match o.kind.target() {
            Some(Target::Server(n)) => n == &s.name,
            Some(Target::Base(b)) => b.trim_end_matches('/') == s.base_url,
            None => false,
        })
    };
    // A checksum database is GOSUMDB's business, a CONNECT proxy HTTPS_PROXY's: never GOPROXY
    // entries.
    let mut entries: Vec<&str> = servers
        .iter()
        .filter(|s| !is_referenced(s) && !matches!(s.kind, ServerKind::SumDb | ServerKind::Connect))
        .map(|s| s.base_url.as_str())
        .collect();
    if entries.is_empty() {
        entries.extend(servers.first().map(|s| s.base_url.as_str()));
    }
    entries.join(",")
}

/// Where the module trees are when `--modules` is not given.
pub fn default_modules_dir() -> PathBuf {
    let here = PathBuf::from("lab/modules");
    if here.is_dir() {
        here
    } else {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../lab/modules"))
    }
}

/// The TLS side of a lab: its PKI, and the key log file every TLS server and client appends
/// to (if any); `log_handshakes` prints a `tls ...` line per handshake on stderr.
pub fn tls_context(
    pki: Pki,
    keylog: Option<&Path>,
    log_handshakes: bool,
) -> Result<TlsContext, String> {
    let key_log = match keylog {
        Some(p) => {
            Some(KeyLogWriter::to_file(p).map_err(|e| format!("keylog {}: {e}", p.display()))?)
        }
        None => None,
    };
    Ok(TlsContext {
        pki: Arc::new(pki),
        key_log,
        log_handshakes,
    })
}

fn serve(a: ServeArgs) -> Result<(), String> {
    let creds = Credentials {
        user: a.user.clone(),
        password: a.password.clone(),
    };
    let mut closed = Vec::new();
    let (specs, options, goproxy_fixed) = match &a.scenario {
        Some(name) => {
            let s = scenario::find(name)
                .ok_or_else(|| format!("no scenario {name:?} (see `modtrace lab scenarios`)"))?;
            // Closed GOPROXY entries: nothing is started there, and nothing else may listen.
            for sv in s
                .servers
                .iter()
                .filter(|sv| sv.def == scenario::ServerDef::Closed)
            {
                let addr = SocketAddr::new(LAB_IP, sv.port);
                if std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() {
                    return Err(format!(
                        "{addr} is taken, but {} of scenario {name} must refuse connections",
                        sv.name
                    ));
                }
                closed.push(format!("closed {} http://{addr}", sv.name));
            }
            let mut specs = s.specs(false);
            for sp in &mut specs {
                match &mut sp.kind {
                    ServerKind::Mirror { credentials, .. } => *credentials = creds.clone(),
                    ServerKind::Proxy { auth: Some(c), .. } => *c = creds.clone(),
                    _ => {}
                }
            }
            (specs, s.lab_options(), Some(s.goproxy_value()))
        }
        None => {
            let mut specs = Vec::with_capacity(a.specs.len());
            let mut options = LabOptions::default();
            for text in &a.specs {
                let (spec, http2) = parse_spec(text, &creds)?;
                if http2 {
                    options.http2.push(spec.name.clone());
                }
                specs.push(spec);
            }
            (specs, options, None)
        }
    };
    let needs_modules = specs.iter().any(|s| s.kind.needs_modules());
    let store = if needs_modules {
        let dir = a.modules.clone().unwrap_or_else(default_modules_dir);
        let store = ModuleStore::load(&dir).map_err(|e| e.to_string())?;
        if store.is_empty() {
            return Err(format!(
                "{}: no <module>@<version> folders found",
                dir.display()
            ));
        }
        store
    } else {
        ModuleStore::default()
    };
    let log = match &a.log {
        Some(p) => RequestLog::to_file(p).map_err(|e| format!("log {}: {e}", p.display()))?,
        None => RequestLog::to_stderr(),
    };
    let needs_tls = specs.iter().any(|s| s.tls.is_some())
        || specs.iter().any(|s| {
            !matches!(s.kind, ServerKind::Redirect { .. })
                && matches!(s.kind.target(), Some(Target::Base(b)) if b.starts_with("https://"))
        });
    let tls = if needs_tls || a.pki.is_some() || a.keylog.is_some() {
        let pki = match &a.pki {
            Some(dir) => Pki::load_or_create(dir).map_err(|e| e.to_string())?.0,
            None => {
                eprintln!(
                    "modtrace: lab: no --pki: TLS servers use a fresh in-memory CA nothing trusts"
                );
                Pki::generate().map_err(|e| e.to_string())?
            }
        };
        Some(tls_context(pki, a.keylog.as_deref(), true)?)
    } else {
        None
    };
    let mut lab = Lab::start_with_options(
        &specs,
        Arc::new(store),
        log,
        Limits::default(),
        tls,
        &options,
    )
    .map_err(|e| e.to_string())?;
    let goproxy = goproxy_fixed.unwrap_or_else(|| default_goproxy(lab.servers()));
    {
        let mut out = std::io::stdout().lock();
        for s in lab.servers() {
            let _ = writeln!(out, "server {} {} {}", s.name, s.kind.label(), s.base_url);
        }
        for c in &closed {
            let _ = writeln!(out, "{c}");
        }
        if let Some(db) = lab.sumdb() {
            let _ = writeln!(out, "SUMDB_KEY={}", db.verifier_key());
        }
        let _ = writeln!(out, "GOPROXY={goproxy}");
        let _ = out.flush();
    }
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    if a.until_stdin_eof {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
            let _ = tx.send(());
        });
    }
    // `tx` stays alive here, so recv() only returns on a send (stdin EOF) or never.
    match a.timeout {
        Some(secs) => {
            let _ = rx.recv_timeout(Duration::from_secs(secs));
        }
        None => {
            let _ = rx.recv();
        }
    }
    drop(tx);
    lab.stop();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_only(text: &str, c: &Credentials) -> Result<ServerSpec, String> {
        parse_spec(text, c).map(|(s, _)| s)
    }

    #[test]
    fn parses_specs() {
        let c = Credentials::lab_default();
        let s = spec_only("a=redirect:127.0.0.1:8094:b", &c).unwrap();
        assert_eq!(s.name, "a");
        assert_eq!(s.addr, "127.0.0.1:8094".parse().unwrap());
        assert_eq!(
            s.kind,
            ServerKind::Redirect {
                to: Target::Server("b".into()),
                status: 302
            }
        );
        let m = spec_only("mirror:127.0.0.1:8096:http://127.0.0.1:8097/mod", &c).unwrap();
        assert_eq!(m.name, "mirror-8096");
        assert_eq!(
            m.kind,
            ServerKind::Mirror {
                upstream: Target::Base("http://127.0.0.1:8097/mod".into()),
                credentials: c.clone(),
                verify: UpstreamVerify::LabCa,
            }
        );
        assert_eq!(m.tls, None);
        let t = spec_only("u=proxy+tls12-self-signed:127.0.0.1:8089", &c).unwrap();
        assert_eq!(
            t.tls,
            Some(TlsServerOptions {
                cert: CertKind::SelfSigned,
                versions: TlsVersions::Tls12
            })
        );
        assert_eq!(t.kind.label(), "proxy");
        let n = spec_only("mirror-noverify:127.0.0.1:8088:https://127.0.0.1:8089", &c).unwrap();
        assert!(matches!(
            n.kind,
            ServerKind::Mirror {
                verify: UpstreamVerify::Nothing,
                ..
            }
        ));
        assert_eq!(
            spec_only("goget+tls:127.0.0.1:443:http://lab.test", &c)
                .unwrap()
                .kind,
            ServerKind::GoGet {
                repo_root: "http://lab.test".into()
            }
        );
        assert!(spec_only("goget:127.0.0.1:443", &c).is_err());
        assert!(spec_only("proxy+ssl3:127.0.0.1:1", &c).is_err());
        assert_eq!(
            spec_only("gone:127.0.0.1:1:404", &c).unwrap().kind,
            ServerKind::Gone { status: 404 }
        );
        assert_eq!(
            spec_only("gone:127.0.0.1:1", &c).unwrap().kind,
            ServerKind::Gone { status: 410 }
        );
        assert_eq!(
            spec_only("gone:127.0.0.1:1:500", &c).unwrap().kind,
            ServerKind::Gone { status: 500 }
        );
        assert!(spec_only("gone:127.0.0.1:1:503", &c).is_err());
        assert_eq!(
            spec_only("sumdb:127.0.0.1:8102", &c).unwrap().kind,
            ServerKind::SumDb
        );
        assert!(spec_only("sumdb:127.0.0.1:8102:x", &c).is_err());
        assert_eq!(
            spec_only("proxy-sumdb:127.0.0.1:8100", &c).unwrap().kind,
            ServerKind::ProxyWithSumdb {
                prefix: String::new()
            }
        );
        assert_eq!(
            spec_only("tamper:127.0.0.1:8105", &c).unwrap().kind,
            ServerKind::Tamper {
                upstream: None,
                plan: TamperPlan::default()
            }
        );
        assert_eq!(
            spec_only(
                "tamper:127.0.0.1:8106:upstream=http://127.0.0.1:8107,mod,time=2024-06-01T12:00:00Z,only=example.test/Hello",
                &c
            )
            .unwrap()
            .kind,
            ServerKind::Tamper {
                upstream: Some(Target::Base("http://127.0.0.1:8107".into())),
                plan: TamperPlan {
                    zip: true,
                    go_mod: true,
                    info_time: Some("2024-06-01T12:00:00Z".into()),
                    only_module: Some("example.test/Hello".into()),
                }
            }
        );
        assert!(spec_only("tamper:127.0.0.1:1:bogus", &c).is_err());
        assert!(spec_only("tamper:127.0.0.1:1:upstream=", &c).is_err());
        assert!(spec_only("redirect:127.0.0.1:1", &c).is_err());
        assert!(spec_only("teapot:127.0.0.1:1", &c).is_err());
        assert!(spec_only("proxy:localhost:1", &c).is_err());
        assert!(spec_only("proxy", &c).is_err());
        // HTTP/2 and the connect proxy.
        let (h2, http2) = parse_spec("p=proxy+tls13+h2:127.0.0.1:8109", &c).unwrap();
        assert!(http2);
        assert_eq!(
            h2.tls,
            Some(TlsServerOptions {
                cert: CertKind::Valid,
                versions: TlsVersions::Tls13
            })
        );
        assert!(!parse_spec("p=proxy+tls13:127.0.0.1:8109", &c).unwrap().1);
        assert!(
            parse_spec("proxy+h2:127.0.0.1:1", &c).is_err(),
            "h2 needs TLS"
        );
        assert_eq!(
            spec_only("connect:127.0.0.1:8110", &c).unwrap().kind,
            ServerKind::Connect
        );
        assert!(spec_only("connect+tls13:127.0.0.1:1", &c).is_err());
        assert!(spec_only("connect:127.0.0.1:1:x", &c).is_err());
    }

    #[test]
    fn default_goproxy_skips_referenced_servers() {
        let info = |name: &str, port: u16, kind: ServerKind| ServerInfo {
            name: name.into(),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            base_url: format!("http://127.0.0.1:{port}"),
            kind,
            tls: None,
        };
        let gone = info("g", 1, ServerKind::Gone { status: 410 });
        let proxy = info(
            "p",
            2,
            ServerKind::Proxy {
                prefix: String::new(),
                auth: None,
            },
        );
        assert_eq!(
            default_goproxy(&[gone, proxy.clone()]),
            "http://127.0.0.1:1,http://127.0.0.1:2"
        );
        let m = info(
            "m",
            3,
            ServerKind::Mirror {
                upstream: Target::Server("p".into()),
                credentials: Credentials::lab_default(),
                verify: UpstreamVerify::LabCa,
            },
        );
        assert_eq!(default_goproxy(&[m, proxy]), "http://127.0.0.1:3");
        let a = info(
            "a",
            4,
            ServerKind::Redirect {
                to: Target::Server("b".into()),
                status: 302,
            },
        );
        let b = info(
            "b",
            5,
            ServerKind::Redirect {
                to: Target::Server("a".into()),
                status: 302,
            },
        );
        assert_eq!(default_goproxy(&[a, b]), "http://127.0.0.1:4");
        let g = info("g", 6, ServerKind::Gone { status: 410 });
        let r = info(
            "r",
            7,
            ServerKind::Redirect {
                to: Target::Base("http://127.0.0.1:6/".into()),
                status: 302,
            },
        );
        assert_eq!(
            default_goproxy(&[g, r]),
            "http://127.0.0.1:7",
            "a base URL naming a lab server counts too"
        );
        let s = info("s", 8, ServerKind::SumDb);
        let t = info(
            "t",
            9,
            ServerKind::Tamper {
                upstream: Some(Target::Server("p".into())),
                plan: TamperPlan::default(),
            },
        );
        let p = info(
            "p",
            10,
            ServerKind::Proxy {
                prefix: String::new(),
                auth: None,
            },
        );
        assert_eq!(
            default_goproxy(&[s, t, p]),
            "http://127.0.0.1:9",
            "a sumdb is no GOPROXY entry; a tamperer's upstream is referenced"
        );
    }

    #[test]
    fn env_lists_what_record_sh_reads() {
        let e = env_assignments(scenario::find("redirect-loop").unwrap());
        assert!(e.contains("GOPROXY='http://127.0.0.1:8084'\n"), "{e}");
        assert!(
            e.contains("EXPECT_ERROR='stopped after 10 redirects'\n"),
            "{e}"
        );
        assert!(e.contains("PORTS='8084 8085'\n"), "{e}");
        assert!(
            e.contains("DOWNLOADS='example.test/Hello@v1.1.0 example.test/Util@v0.2.0'\n"),
            "{e}"
        );
        assert!(e.contains("USES_TLS='0'\n"), "{e}");
        let g = env_assignments(scenario::find("goinsecure-goget").unwrap());
        for want in [
            "GOPROXY='direct'\n",
            "GOINSECURE='lab.test'\n",
            "NETNS_HOSTS='lab.test'\n",
            "PORTS='80 443'\n",
            "TLS_PORTS='443'\n",
            "USES_TLS='1'\n",
        ] {
            assert!(g.contains(want), "{want} in {g}");
        }
        let r = env_assignments(scenario::find("tls-proxy-rejected").unwrap());
        assert!(r.contains("EXPECT_REQUESTS='0'\n"), "{r}");
        assert!(r.contains("GOPROXY='https://127.0.0.1:8092'\n"), "{r}");
        let v = env_assignments(scenario::find("tls13-verified").unwrap());
        assert!(v.contains("TRUST_LAB_CA='1'\n"), "{v}");
        assert!(v.contains("GOSUMDB='off'\n"), "{v}");
        assert!(v.contains("USES_LAB_SUMDB='0'\n"), "{v}");
        let key = LabSigner::lab().verifier_key();
        let d = env_assignments(scenario::find("sumdb-direct").unwrap());
        assert!(
            d.contains(&format!("GOSUMDB='{key} http://127.0.0.1:8102'\n")),
            "{d}"
        );
        assert!(d.contains(&format!("SUMDB_KEY='{key}'\n")), "{d}");
        assert!(d.contains("USES_LAB_SUMDB='1'\n"), "{d}");
        assert!(d.contains("TRUE_GO_SUM='0'\n"), "{d}");
        let p = env_assignments(scenario::find("sumdb-via-proxy").unwrap());
        assert!(p.contains(&format!("GOSUMDB='{key}'\n")), "{p}");
        let t = env_assignments(scenario::find("tamper-sumdb-off").unwrap());
        assert!(t.contains("TRUE_GO_SUM='1'\n"), "{t}");
        assert!(t.contains("PORTS='8105'\n"), "{t}");
        assert!(t.contains("HTTPS_PROXY=''\n"), "{t}");
        assert!(t.contains("EMBED_KEYS='0'\n"), "{t}");
        let c = env_assignments(scenario::find("connect-proxy-h2").unwrap());
        for want in [
            "GOPROXY='https://lab.test:8109'\n",
            "HTTPS_PROXY='http://127.0.0.1:8110'\n",
            "EMBED_KEYS='1'\n",
            "USES_HTTP2='1'\n",
            "TLS_PORTS='8109'\n",
            "PORTS='8109 8110'\n",
            "TRUST_LAB_CA='1'\n",
            "CONNECT_PORTS='8110'\n",
        ] {
            assert!(c.contains(want), "{want} in {c}");
        }
        assert!(c.contains("CLOSED_PORTS=''\n"), "{c}");
        let refused = env_assignments(scenario::find("pipe-after-refused").unwrap());
        for want in [
            "GOPROXY='http://127.0.0.1:8125|http://127.0.0.1:8126'\n",
            "PORTS='8125 8126'\n",
            "CLOSED_PORTS='8125'\n",
            "EXPECT_REQUESTS='1'\n",
        ] {
            assert!(refused.contains(want), "{want} in {refused}");
        }
    }

    #[test]
    fn go_sum_prints_the_true_lines_sorted() {
        let dir = default_modules_dir();
        let text = go_sum(
            &dir,
            &[
                "example.test/Util@v0.2.0".to_string(),
                "example.test/Hello@v1.1.0".to_string(),
            ],
        )
        .unwrap();
        // The hashes captures/README.md lists for the honest lab proxy (go mod download's Sum
        // and GoModSum).
        assert_eq!(
            text,
            "example.test/Hello v1.1.0 h1:hN/VGKYrHSCNtaxK2rqHGjUJjwQpKok0ukbrR/AycQk=\n\
             example.test/Hello v1.1.0/go.mod h1:+QYzkm9a7NM+kajY6P3eW6uevRCSPwOaLtKHakx9v4s=\n\
             example.test/Util v0.2.0 h1:be5MhvjQb2tDq8e2ogEUAKrozTz4B6lNS0hJ/N8ZyVI=\n\
             example.test/Util v0.2.0/go.mod h1:5o9bMNbiHgK2G6gB5Om4QCcY9HwKMU8qG2pCt7YQMgQ=\n"
        );
        assert!(go_sum(&dir, &["example.test/Util@v9.9.9".to_string()]).is_err());
        assert!(go_sum(&dir, &["nonsense".to_string()]).is_err());
    }

    #[test]
    fn embed_keys_puts_the_key_log_before_the_packets() {
        use modtrace_core::source::pcapng::PcapngWriter;
        use modtrace_core::source::{CaptureReader, Frame, LinkType};
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.pcapng");
        let mut w = PcapngWriter::new(Vec::new(), "test", Some("lo"), 262_144).unwrap();
        for (i, data) in [&[1u8, 2, 3][..], &[4u8; 61][..]].iter().enumerate() {
            w.write_frame(&Frame {
                ts: modtrace_core::time::Ts::from_secs_nanos(1_700_000_000 + i as i64, 1000),
                link: LinkType::ETHERNET,
                data: data.to_vec(),
                orig_len: data.len() as u32,
                file: 0,
            })
            .unwrap();
        }
        std::fs::write(&input, w.into_inner().unwrap()).unwrap();
        let keys = dir.path().join("k.keys");
        let text = "# lab\nCLIENT_RANDOM 00ff 11aa\nSERVER_TRAFFIC_SECRET_0 ab cd\n";
        std::fs::write(&keys, text).unwrap();
        let out = dir.path().join("out.pcapng");
        assert_eq!(embed_keys(&input, &keys, &out).unwrap(), (2, text.len()));
        let bytes = std::fs::read(&out).unwrap();
        // The block after the section header is the DSB (type 0x0A), before any IDB or EPB.
        let shb_len = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
        assert_eq!(&bytes[shb_len..shb_len + 4], &0x0Au32.to_le_bytes());
        let mut r = CaptureReader::open(&out, 0).unwrap();
        let mut frames = Vec::new();
        while let Some(f) = r.next_frame().unwrap() {
            frames.push(f);
        }
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[1].data, vec![4u8; 61]);
        assert_eq!(
            frames[1].ts,
            modtrace_core::time::Ts::from_secs_nanos(1_700_000_001, 1000)
        );
        assert_eq!(r.stats().keylog, text.as_bytes());

        // Refusals: not a key log, no key line, writing over the input.
        std::fs::write(&keys, "CLIENT_RANDOM zz 11\n").unwrap();
        assert!(embed_keys(&input, &keys, &out).is_err());
        std::fs::write(&keys, "# nothing\n").unwrap();
        assert!(embed_keys(&input, &keys, &out).is_err());
        std::fs::write(&keys, text).unwrap();
        assert!(embed_keys(&input, &keys, &input).is_err());
        assert!(embed_keys(&dir.path().join("missing.pcap"), &keys, &out).is_err());
    }

    #[test]
    fn help_exits_zero_and_bad_args_two() {
        let help = LabCli::try_parse_from(["modtrace lab", "--help"]).unwrap_err();
        assert_eq!(help.exit_code(), 0);
        assert!(help.to_string().contains("proxy-auth"));
        assert_eq!(
            cli(&["serve".to_string(), "teapot:127.0.0.1:1".to_string()]),
            2
        );
        assert_eq!(cli(&["env".to_string(), "nope".to_string()]), 2);
    }
}
