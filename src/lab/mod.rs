//! The lab: loopback HTTP servers (GOPROXY, fallback, redirecting mirrors, a mirror with an
//! upstream, go-get discovery) used to record captures of the real go command. Binds 127.0.0.1
//! only. (Owned by the lab work item.)
//!
//! HTTP/1.1 on std::net with a thread per connection, plain or over rustls (TLS 1.2 and/or 1.3,
//! certificates from a lab CA, NSS key log): the go command's traffic to the lab is a few dozen
//! small requests, and threads keep the servers simple and inspectable.
//! Every answered request is logged as one JSON line ([`log::LogEntry`]), the ground truth a
//! capture is checked against.

pub mod http;
pub mod log;
pub mod modules;
pub mod scenario;
pub mod server;
pub mod sumdb;
pub mod tamper;
pub mod tls;

pub use http::Limits;
pub use log::{LogEntry, RequestLog};
pub use modules::{ModuleStore, ModuleVersion};
pub use scenario::{Scenario, SCENARIOS};
pub use server::{Credentials, Lab, ServerInfo, ServerKind, ServerSpec, Target, TlsContext};
pub use sumdb::{LabSigner, SumDb, SumRecord, LAB_SUMDB_NAME};
pub use tamper::{TamperPlan, TamperedZip};
pub use tls::{CertKind, KeyLogWriter, Pki, TlsServerOptions, TlsVersions, UpstreamVerify};

use clap::{Args, Parser, Subcommand};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

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
Every server binds 127.0.0.1 only and logs each answered request as one JSON line:
{\"server\":NAME,\"listen\":\"127.0.0.1:PORT\",\"method\":..,\"target\":..,\"status\":..,\"bytes\":..}

Server kinds (SPEC is [NAME=]KIND[+TLS]:127.0.0.1:PORT[:ARG]):
  proxy       GOPROXY serving --modules (lab/modules/<module path>@<version>/ trees);
              ARG: optional path prefix (/mod)
  proxy-auth  the same, but 401 without Basic auth --user/--password
  gone        answers ARG (410, default, or 404) to everything
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

TLS (any kind): +tls12, +tls13 or +tls (both), optionally followed by -valid (default),
-self-signed, -expired or -wrong-name: the certificate the server presents (see `lab pki`).
ALPN offers http/1.1 only. Every TLS server and the mirror's TLS client write their secrets
to --keylog (NSS key log format: tshark -o tls.keylog_file:FILE).

`serve` prints one `server NAME KIND URL` line per server, `SUMDB_KEY=<verifier key>` when a
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
  modtrace lab sumdb-key            # GOSUMDB=\"$(modtrace lab sumdb-key) http://127.0.0.1:8102\"
  modtrace lab go-sum example.test/Hello@v1.1.0
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

/// Shell assignments describing a scenario, single-quoted (no value holds a quote).
pub fn env_assignments(s: &Scenario) -> String {
    let q = |v: &str| format!("'{}'", v.replace('\'', "'\\''"));
    let ports: Vec<String> = s.ports().iter().map(u16::to_string).collect();
    let expect = match s.expect {
        scenario::GoOutcome::Success => "",
        scenario::GoOutcome::ErrorContains(t) => t,
    };
    let tls_ports: Vec<String> = s.tls_ports().iter().map(u16::to_string).collect();
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
        ("GOINSECURE", s.goinsecure.to_string()),
        ("TRUST_LAB_CA", flag(s.trust_lab_ca)),
        ("NETNS_HOSTS", s.netns_hosts.join(" ")),
        ("EXPECT_REQUESTS", flag(s.expect_requests)),
        ("EXPECT_ERROR", expect.to_string()),
    ]
    .iter()
    .map(|(k, v)| format!("{k}={}\n", q(v)))
    .collect()
}

/// Parses `[NAME=]KIND[+TLS]:IP:PORT[:ARG]`.
pub fn parse_spec(spec: &str, creds: &Credentials) -> Result<ServerSpec, String> {
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
        "proxy-auth" => ServerKind::Proxy {
            prefix: arg.unwrap_or("").to_string(),
            auth: Some(creds.clone()),
        },
        "gone" => {
            let status = match arg {
                None | Some("") | Some("410") => 410,
                Some("404") => 404,
                Some(o) => return Err(format!("{spec}: gone answers 410 or 404, not {o}")),
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
        other => {
            return Err(format!(
                "{spec}: unknown kind {other:?} (proxy, proxy-auth, gone, redirect, mirror, mirror-noverify, goget, proxy-sumdb, sumdb, tamper)"
            ))
        }
    };
    let name = name.unwrap_or_else(|| format!("{}-{}", kind.label(), addr.port()));
    Ok(ServerSpec {
        name,
        addr,
        kind,
        tls,
    })
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
    // A checksum database is GOSUMDB's business, never a GOPROXY entry.
    let mut entries: Vec<&str> = servers
        .iter()
        .filter(|s| !is_referenced(s) && s.kind != ServerKind::SumDb)
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
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/lab/modules"))
    }
}

fn serve(a: ServeArgs) -> Result<(), String> {
    let creds = Credentials {
        user: a.user.clone(),
        password: a.password.clone(),
    };
    let (specs, goproxy_fixed) = match &a.scenario {
        Some(name) => {
            let s = scenario::find(name)
                .ok_or_else(|| format!("no scenario {name:?} (see `modtrace lab scenarios`)"))?;
            let mut specs = s.specs(false);
            for sp in &mut specs {
                match &mut sp.kind {
                    ServerKind::Mirror { credentials, .. } => *credentials = creds.clone(),
                    ServerKind::Proxy { auth: Some(c), .. } => *c = creds.clone(),
                    _ => {}
                }
            }
            (specs, Some(s.goproxy_value()))
        }
        None => (
            a.specs
                .iter()
                .map(|s| parse_spec(s, &creds))
                .collect::<Result<Vec<_>, _>>()?,
            None,
        ),
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
        let key_log = match &a.keylog {
            Some(p) => {
                Some(KeyLogWriter::to_file(p).map_err(|e| format!("keylog {}: {e}", p.display()))?)
            }
            None => None,
        };
        Some(TlsContext {
            pki: Arc::new(pki),
            key_log,
            log_handshakes: true,
        })
    } else {
        None
    };
    let mut lab = Lab::start_with(&specs, Arc::new(store), log, Limits::default(), tls)
        .map_err(|e| e.to_string())?;
    let goproxy = goproxy_fixed.unwrap_or_else(|| default_goproxy(lab.servers()));
    {
        let mut out = std::io::stdout().lock();
        for s in lab.servers() {
            let _ = writeln!(out, "server {} {} {}", s.name, s.kind.label(), s.base_url);
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

    #[test]
    fn parses_specs() {
        let c = Credentials::lab_default();
        let s = parse_spec("a=redirect:127.0.0.1:8094:b", &c).unwrap();
        assert_eq!(s.name, "a");
        assert_eq!(s.addr, "127.0.0.1:8094".parse().unwrap());
        assert_eq!(
            s.kind,
            ServerKind::Redirect {
                to: Target::Server("b".into()),
                status: 302
            }
        );
        let m = parse_spec("mirror:127.0.0.1:8096:http://127.0.0.1:8097/mod", &c).unwrap();
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
        let t = parse_spec("u=proxy+tls12-self-signed:127.0.0.1:8089", &c).unwrap();
        assert_eq!(
            t.tls,
            Some(TlsServerOptions {
                cert: CertKind::SelfSigned,
                versions: TlsVersions::Tls12
            })
        );
        assert_eq!(t.kind.label(), "proxy");
        let n = parse_spec("mirror-noverify:127.0.0.1:8088:https://127.0.0.1:8089", &c).unwrap();
        assert!(matches!(
            n.kind,
            ServerKind::Mirror {
                verify: UpstreamVerify::Nothing,
                ..
            }
        ));
        assert_eq!(
            parse_spec("goget+tls:127.0.0.1:443:http://lab.test", &c)
                .unwrap()
                .kind,
            ServerKind::GoGet {
                repo_root: "http://lab.test".into()
            }
        );
        assert!(parse_spec("goget:127.0.0.1:443", &c).is_err());
        assert!(parse_spec("proxy+ssl3:127.0.0.1:1", &c).is_err());
        assert_eq!(
            parse_spec("gone:127.0.0.1:1:404", &c).unwrap().kind,
            ServerKind::Gone { status: 404 }
        );
        assert_eq!(
            parse_spec("gone:127.0.0.1:1", &c).unwrap().kind,
            ServerKind::Gone { status: 410 }
        );
        assert!(parse_spec("gone:127.0.0.1:1:500", &c).is_err());
        assert_eq!(
            parse_spec("sumdb:127.0.0.1:8102", &c).unwrap().kind,
            ServerKind::SumDb
        );
        assert!(parse_spec("sumdb:127.0.0.1:8102:x", &c).is_err());
        assert_eq!(
            parse_spec("proxy-sumdb:127.0.0.1:8100", &c).unwrap().kind,
            ServerKind::ProxyWithSumdb {
                prefix: String::new()
            }
        );
        assert_eq!(
            parse_spec("tamper:127.0.0.1:8105", &c).unwrap().kind,
            ServerKind::Tamper {
                upstream: None,
                plan: TamperPlan::default()
            }
        );
        assert_eq!(
            parse_spec(
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
        assert!(parse_spec("tamper:127.0.0.1:1:bogus", &c).is_err());
        assert!(parse_spec("tamper:127.0.0.1:1:upstream=", &c).is_err());
        assert!(parse_spec("redirect:127.0.0.1:1", &c).is_err());
        assert!(parse_spec("teapot:127.0.0.1:1", &c).is_err());
        assert!(parse_spec("proxy:localhost:1", &c).is_err());
        assert!(parse_spec("proxy", &c).is_err());
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
