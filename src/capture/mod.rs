//! `modtrace capture` and `modtrace run` (cargo feature `live`): capture live, with the TLS
//! secrets of Go processes, and report.
//!
//! Order matters for safety: the capture handle, the `-w` and `--keylog-out` files and the key
//! helper are opened with the rights the process was started with ([`engine::Opened`]), then
//! root is dropped at once (to the sudo caller, `--user` or nobody; supplementary groups and
//! capabilities cleared, [`privileges`]) before any packet is parsed. If the drop cannot be
//! done and checked, the command stops there. The key helper keeps root for the probes alone
//! ([`crate::gokeys::helper`]).

pub mod engine;
mod keys;
pub mod privileges;
pub mod run;

use crate::cli::{CaptureArgs, GoKeysArgs, LiveArgs, StreamFormat};
use crate::gokeys::locate::{self, Origin, UserEnv};
use crate::report::{write_text, CaptureSummary, Report};
use crate::source::live::KernelStats;
use crate::source::SourceStats;
use engine::{Engine, EngineSetup, FlowFilter, GoKeysPlan, LiveParams, Opened, Output, Processes};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Runs the command; returns the exit status (0, 1 by --fail-on, 2 on an error).
pub fn run(a: &CaptureArgs) -> i32 {
    match capture(a) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("modtrace: capture: {msg}");
            2
        }
    }
}

/// Who the process runs as after the drop.
#[derive(Clone, Debug, Serialize)]
pub struct RunAs {
    pub uid: u32,
    pub gid: u32,
    pub user: String,
}

/// The go binaries to probe at the start: the user's go commands and toolchains, then
/// `--go-binary` (and `extra`, e.g. run's command). None with `--no-go-keys`.
pub fn go_keys_plan(
    args: &GoKeysArgs,
    extra: Vec<(PathBuf, Origin)>,
    probe_processes: bool,
) -> Option<GoKeysPlan> {
    if args.no_go_keys {
        return None;
    }
    let mut binaries = locate::go_binaries(&invoking_user_env());
    binaries.extend(extra);
    binaries.extend(
        args.go_binary
            .iter()
            .map(|p| (p.clone(), Origin::GoBinaryFlag)),
    );
    Some(GoKeysPlan {
        tracefs: args.tracefs.clone(),
        binaries,
        probe_processes,
    })
}

/// The invoking user's view for finding go binaries: under sudo the caller's home and
/// `go env` (run as the caller), PATH as this process has it (sudo's secure_path misses the
/// user's own; the usual places cover those).
fn invoking_user_env() -> UserEnv {
    let path = std::env::var("PATH").ok();
    let caller = sudo_caller();
    let home = caller
        .as_ref()
        .map(|c| c.home.clone())
        .or_else(|| std::env::var_os("HOME").map(PathBuf::from));
    let mut env = UserEnv {
        path,
        home,
        ..UserEnv::default()
    };
    // The user's go command tells its GOROOT and module cache (toolchains live there).
    if let Some((go, _)) = locate::go_binaries(&env).into_iter().next() {
        let mut cmd = std::process::Command::new(&go);
        cmd.args(["env", "-json", "GOROOT", "GOMODCACHE"])
            .env("GOTOOLCHAIN", "local")
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        if let Some(h) = &env.home {
            cmd.env("HOME", h).current_dir(h);
        }
        if let Some(c) = &caller {
            use std::os::unix::process::CommandExt;
            cmd.uid(c.uid).gid(c.gid);
        }
        if let Ok(out) = cmd.output() {
            let (root, cache) = locate::parse_go_env(&String::from_utf8_lossy(&out.stdout));
            env.goroot = root;
            env.gomodcache = cache;
        }
    }
    env
}

/// The account that ran sudo (not root).
#[derive(Clone, Debug)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    pub name: String,
    pub home: PathBuf,
}

pub fn sudo_caller() -> Option<Caller> {
    let uid: u32 = std::env::var("SUDO_UID").ok()?.trim().parse().ok()?;
    let gid: u32 = std::env::var("SUDO_GID").ok()?.trim().parse().ok()?;
    if uid == 0 {
        return None;
    }
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten();
    Some(Caller {
        uid,
        gid,
        name: user
            .as_ref()
            .map(|u| u.name.clone())
            .unwrap_or_else(|| format!("uid {uid}")),
        home: user.map(|u| u.dir).unwrap_or_else(|| PathBuf::from("/")),
    })
}

/// Installs the SIGINT/SIGTERM handlers: the first sets `stop`, a second ends the process.
fn stop_on_signals() -> Result<Arc<AtomicBool>, String> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while stopping ends the process at once.
        signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&stop))
            .and_then(|_| signal_hook::flag::register(sig, Arc::clone(&stop)))
            .map_err(|e| format!("installing the signal handler: {e}"))?;
    }
    Ok(stop)
}

fn capture(a: &CaptureArgs) -> Result<i32, String> {
    // Ctrl-C during the start (the key helper can take a moment) stops cleanly too.
    let stop = stop_on_signals()?;
    // In a terminal, the TUI (unless --no-tui); elsewhere the event stream.
    let tui = !a.no_tui && crate::tui::run::has_terminal();
    // With the rights the process started with: the capture handle, the files, the probes.
    let opened = Opened::open(&LiveParams {
        live: &a.live,
        keylog_out: a.keys.keylog_out.as_deref(),
        follow_keylogs: a.opts.keylog.clone(),
        go_keys: go_keys_plan(&a.keys, Vec::new(), true),
    })?;
    let written: Vec<&Path> = [a.live.write.as_deref(), a.keys.keylog_out.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    let run_as = privileges::drop(a.user.as_deref(), &written)
        .map_err(|e| format!("refusing to go on: could not drop privileges: {e}"))?;

    let source = opened.describe();
    let filter = match &a.process {
        Some(name) => FlowFilter::Named(name.clone()),
        None => FlowFilter::All,
    };
    let output = if tui {
        Output::Tui
    } else {
        Output::Stream(a.format)
    };
    let engine = Engine::new(
        opened,
        EngineSetup {
            opts: &a.opts,
            filter,
            output,
            interface: &a.live.interface,
            label: None,
            stop: Arc::clone(&stop),
            keep_exchanges: false,
        },
    )?;
    eprintln!(
        "modtrace: capturing on {source}, filter {:?}{}{}; running as {} (uid {}); Ctrl-C stops",
        a.live.filter,
        a.live
            .write
            .as_ref()
            .map(|p| format!(", writing {}", p.display()))
            .unwrap_or_default(),
        a.process
            .as_ref()
            .map(|p| format!(", only process {p} and its children"))
            .unwrap_or_default(),
        run_as.user,
        run_as.uid,
    );
    let stats = live_stats(&a.live);
    let ended = engine.run(stats)?;
    let (mut f, writer, mut notes) = (ended.finished, ended.writer, ended.notes);
    if let Some(w) = writer {
        notes.extend(engine::close_writer(w));
    }
    for note in notes.iter().chain(&f.read_error) {
        eprintln!("modtrace: capture: {note}");
    }
    let code = fail_code(&f.report, a.opts.fail_on);
    let color = a.format == StreamFormat::Text
        && io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none();
    let summary = Summary {
        interface: &a.live.interface,
        filter: &a.live.filter,
        written: a.live.write.as_deref(),
        run_as: &run_as,
        kernel: f.kernel,
        processes: f.processes,
        modules: f.report.modules.len(),
        findings: severity_counts(&f.report),
        exit_code: if f.read_error.is_some() { 2 } else { code },
        capture: &f.report.capture,
    };
    let res = match a.format {
        StreamFormat::Jsonl if !tui => {
            crate::report::jsonl::JsonlSink::new(io::stdout()).summary(&summary)
        }
        _ => {
            let stdout = io::stdout();
            let mut out = stdout.lock();
            writeln!(out)
                .and_then(|_| write_text(&f.report, &mut out, color))
                .and_then(|_| writeln!(out, "\n{}", summary_lines(&f.kernel, &f.processes)))
                .and_then(|_| out.flush())
        }
    };
    f.report.capture.go_keys = None;
    if let Err(e) = res {
        if e.kind() != io::ErrorKind::BrokenPipe {
            eprintln!("modtrace: capture: writing the summary: {e}");
            return Ok(2);
        }
    }
    if f.read_error.is_some() {
        return Ok(2);
    }
    Ok(code)
}

/// The source's counters to fill: the -w file, or `live:IFACE`.
pub fn live_stats(live: &LiveArgs) -> SourceStats {
    SourceStats {
        path: live
            .write
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("live:{}", live.interface))),
        pcapng: live.write.is_some(),
        ..SourceStats::default()
    }
}

/// The kernel and process lines of the text summary.
pub fn summary_lines(kernel: &KernelStats, p: &Processes) -> String {
    format!(
        "kernel: {} packets received, {} dropped{}; processes: {} connections attributed, {} not ({} closed before they could be looked up)",
        kernel.received,
        kernel.dropped + kernel.if_dropped,
        if kernel.dropped + kernel.if_dropped > 0 {
            " (see capture-drops)"
        } else {
            ""
        },
        p.resolved,
        p.unresolved,
        p.ended_before_lookup
    )
}

/// 1 when a finding is at or above the threshold.
pub fn fail_code(r: &Report, fail_on: crate::cli::FailOn) -> i32 {
    match fail_on.threshold() {
        Some(t) if r.findings.iter().any(|f| f.severity >= t) => 1,
        _ => 0,
    }
}

fn severity_counts(r: &Report) -> BTreeMap<&'static str, usize> {
    let mut m = BTreeMap::new();
    for f in &r.findings {
        *m.entry(f.severity.as_str()).or_insert(0) += 1;
    }
    m
}

/// The last JSON line (`"type":"summary"`).
#[derive(Serialize)]
struct Summary<'a> {
    interface: &'a str,
    filter: &'a str,
    written: Option<&'a Path>,
    run_as: &'a RunAs,
    kernel: KernelStats,
    processes: Processes,
    modules: usize,
    /// Count of findings per severity.
    findings: BTreeMap<&'static str, usize>,
    exit_code: i32,
    capture: &'a CaptureSummary,
}
