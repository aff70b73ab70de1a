//! `modtrace capture` (cargo feature `live`): capture live, stream events as they complete,
//! print a summary when stopped (Ctrl-C or SIGTERM) and exit like `analyze`.
//!
//! Order matters for safety: the capture handle and the `-w` file are opened with the rights
//! the process was started with, then root is dropped at once (to the sudo caller, `--user` or
//! nobody; supplementary groups and capabilities cleared) before any packet is parsed. If the
//! drop cannot be done and checked, the command stops there.

use crate::cli::{CaptureArgs, StreamFormat};
use crate::decode::{Decoder, DefragLimits, Transport};
use crate::pipeline::{Analyzer, Event, FlowOwner};
use crate::proc::Attributor;
use crate::report::jsonl::JsonlSink;
use crate::report::{write_text, CaptureSummary, Report};
use crate::source::live::{KernelStats, LiveOptions, LiveSource};
use crate::source::pcapng::PcapngWriter;
use crate::source::{Frame, SourceStats};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the -w file is flushed and the kernel drop counters are read.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(1);
/// How often the --keylog files are looked at for new lines (one stat per look).
const KEYLOG_POLL_EVERY: Duration = Duration::from_millis(50);
/// Frames queued between the reading thread and the analysis. Past this the reader waits
/// and the kernel buffer fills (drops are counted and reported); loopback frames can be 64 KiB
/// (TSO), so this bounds the queue at 128 MiB at worst.
const QUEUE_FRAMES: usize = 2048;
/// Buffer of the -w file between flushes.
const WRITE_BUFFER_BYTES: usize = 1 << 20;

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

fn capture(a: &CaptureArgs) -> Result<i32, String> {
    // In a terminal, the TUI (unless --no-tui); elsewhere the event stream.
    let tui = !a.no_tui && crate::tui::run::has_terminal();
    let live_opts = LiveOptions {
        interface: a.interface.clone(),
        filter: a.filter.clone(),
        snaplen: a.snaplen,
        ..LiveOptions::default()
    };
    // With the rights the process started with: the capture handle, then the -w file.
    let src = LiveSource::open(&live_opts).map_err(|e| e.to_string())?;
    let writer = match &a.write {
        Some(p) => {
            let f = File::create(p).map_err(|e| format!("-w {}: {e}", p.display()))?;
            let w = PcapngWriter::new(
                BufWriter::with_capacity(WRITE_BUFFER_BYTES, f),
                &format!("modtrace {} (live capture)", env!("CARGO_PKG_VERSION")),
                Some(&a.interface),
                if a.snaplen == 0 { 262_144 } else { a.snaplen },
            )
            .map_err(|e| format!("-w {}: {e}", p.display()))?;
            Some(w)
        }
        None => None,
    };
    let run_as = privileges::drop(a.user.as_deref(), a.write.as_deref())
        .map_err(|e| format!("refusing to go on: could not drop privileges: {e}"))?;

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while stopping ends the process at once.
        signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&stop))
            .and_then(|_| signal_hook::flag::register(sig, Arc::clone(&stop)))
            .map_err(|e| format!("installing the signal handler: {e}"))?;
    }

    // Files named by the analysis options are read as the user modtrace now runs as.
    let mut cfg = a.opts.config()?;
    // The key logs are followed as they grow (a server writes a line per session).
    cfg.keylog = Default::default();
    cfg.wait_for_keys = !a.opts.keylog.is_empty();
    cfg.keep_headers = tui;
    let mut keylogs = KeyLogFollower::new(&a.opts.keylog);
    let mut an = Analyzer::new(cfg);
    an.add_keylog(&keylogs.poll());
    // A capture may run for hours: the summary needs no exchange list.
    an.keep_exchanges(false);
    let attribution = Arc::new(Mutex::new(Attributor::new("/proc")));
    if cfg!(target_os = "linux") {
        let attr = Arc::clone(&attribution);
        let want = a.process.clone();
        an.set_flow_owner_lookup(Box::new(move |info| {
            let Ok(mut attr) = attr.lock() else {
                return FlowOwner {
                    process: None,
                    keep: want.is_none(),
                };
            };
            // A connection that started during the capture was looked up by the reading
            // thread at its SYN; others (already open at the start) are looked up now.
            let owner = if info.saw_syn {
                attr.prefetched_owner(info.client, info.server)
            } else {
                attr.connection_owner(info.client, info.server)
            };
            let keep = match &want {
                None => true,
                Some(name) => owner.as_ref().is_some_and(|o| o.descends_from(name)),
            };
            FlowOwner {
                process: owner.map(|o| o.name),
                keep,
            }
        }));
    } else if a.process.is_some() {
        return Err("--process needs Linux (/proc)".into());
    }

    eprintln!(
        "modtrace: capturing on {} ({}), filter {:?}{}{}; running as {} (uid {}); Ctrl-C stops",
        src.interface(),
        src.link().name(),
        a.filter,
        a.write
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

    let color = a.format == StreamFormat::Text
        && io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none();
    let (cmd_tx, cmd_rx) = std::sync::mpsc::channel::<crate::tui::Command>();
    let mut screen = None;
    let mut sink = match a.format {
        _ if tui => {
            let (tx, rx) = std::sync::mpsc::channel();
            let status = crate::tui::Status {
                source: format!("live:{}", a.interface),
                live: true,
                ..Default::default()
            };
            let mut ctl = LiveControl {
                commands: cmd_tx.clone(),
                stop: Arc::clone(&stop),
            };
            screen = Some(std::thread::spawn(move || {
                crate::tui::run::run(rx, status, &mut ctl, true)
            }));
            Sink::Tui {
                tx,
                rate: crate::tui::feed::RateMeter::default(),
                last_status: std::time::Instant::now(),
                interface: a.interface.clone(),
            }
        }
        StreamFormat::Text => Sink::Text {
            out: io::stdout(),
            shown: HashSet::new(),
        },
        StreamFormat::Jsonl => Sink::Jsonl(JsonlSink::new(io::stdout())),
    };
    drop(cmd_tx);
    let stats = SourceStats {
        path: a
            .write
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("live:{}", a.interface))),
        pcapng: a.write.is_some(),
        ..SourceStats::default()
    };
    // Packets are read (and written to -w, and their connections' owners looked up) on their
    // own thread, so a slow moment of the analysis delays neither: a connection is attributed
    // while its socket still exists, and the kernel buffer is emptied at once.
    let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE_FRAMES);
    let reader = {
        let stop = Arc::clone(&stop);
        let attr = cfg!(target_os = "linux").then(|| Arc::clone(&attribution));
        std::thread::spawn(move || read_packets(src, writer, stats, &stop, &tx, attr))
    };
    let mut kernel = KernelStats::default();
    let mut last_key_poll = std::time::Instant::now();
    for msg in &rx {
        // A server writes its key log line during the handshake: look often, so that the
        // session's records wait briefly (sessions keep them, `TlsLimits::wait_for_keys`).
        if !a.opts.keylog.is_empty() && last_key_poll.elapsed() >= KEYLOG_POLL_EVERY {
            last_key_poll = std::time::Instant::now();
            let new_keys = keylogs.poll();
            if !new_keys.is_empty() {
                an.add_keylog(&new_keys);
            }
        }
        match msg {
            Msg::Frame(frame) => {
                sink.count(frame.data.len());
                an.on_frame(&frame)
            }
            Msg::Kernel(k) => {
                if k.dropped + k.if_dropped > kernel.dropped + kernel.if_dropped {
                    an.on_capture_drops(k.dropped + k.if_dropped, k.received);
                }
                kernel = k;
            }
        }
        // The screen's requests (`w`: the report so far).
        while let Ok(cmd) = cmd_rx.try_recv() {
            if let crate::tui::Command::WriteReport(path) = cmd {
                let note = write_live_report(&an, &a.interface, &path);
                sink.note(note);
            }
        }
        sink.status(&an, &kernel);
        if !sink.emit(&mut an) {
            // Standard output is gone (`| head`): nobody is listening any more.
            stop.store(true, Ordering::Relaxed);
            break;
        }
    }
    drop(rx);
    let ReaderEnd {
        writer,
        stats,
        kernel: last_kernel,
        mut write_error,
        read_error,
    } = reader
        .join()
        .map_err(|_| "the packet reader failed".to_string())?;
    // Stopped: last counters, flush the flows, then the rest of the stream and the summary.
    if let Some(k) = last_kernel {
        if k.dropped + k.if_dropped > kernel.dropped + kernel.if_dropped {
            an.on_capture_drops(k.dropped + k.if_dropped, k.received);
        }
        kernel = k;
    }
    // Secrets written since the last look still open the sessions that wait for them.
    let new_keys = keylogs.poll();
    if !new_keys.is_empty() {
        an.add_keylog(&new_keys);
    }
    an.finish();
    sink.emit(&mut an);
    // The screen closes with the capture (it restores the terminal before the summary).
    if let Sink::Tui { tx, .. } = &mut sink {
        drop(std::mem::replace(tx, std::sync::mpsc::channel().0));
    }
    if let Some(t) = screen {
        match t.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("modtrace: capture: terminal: {e}"),
            Err(_) => eprintln!("modtrace: capture: the screen failed"),
        }
    }

    let mut keylog_note = None;
    if let Some(mut w) = writer {
        for k in &a.opts.keylog {
            keylog_note = Some(match std::fs::read(k) {
                Ok(secrets) => match w.write_keylog(&secrets) {
                    Ok(true) => format!("embedded the key log {}", k.display()),
                    Ok(false) => format!(
                        "key log {} is empty or too large: not embedded",
                        k.display()
                    ),
                    Err(e) => format!("writing the key log: {e}"),
                },
                Err(e) => format!("--keylog {}: {e}: not embedded", k.display()),
            });
        }
        if let Err(e) = w
            .into_inner()
            .and_then(|b| b.into_inner().map_err(|e| e.into_error())?.sync_all())
        {
            write_error = Some(e.to_string());
        }
    }
    for note in [&keylog_note, &write_error, &read_error]
        .into_iter()
        .flatten()
    {
        eprintln!("modtrace: capture: {note}");
    }

    let (resolved, unresolved, ended_before_lookup) = attribution
        .lock()
        .map(|a| (a.resolved, a.unresolved, a.ended_before_lookup))
        .unwrap_or((0, 0, 0));
    // The policy's severity overrides and ignores, before the summary and --fail-on.
    let policy = an.policy().clone();
    let today = crate::policy::Date::today();
    for w in policy.expired(today) {
        eprintln!("modtrace: warning: {w}");
    }
    let mut report = Report::build(&[stats], an.into_outcome());
    policy.apply_report(&mut report, today);
    if let Some(f) = report.capture.files.first_mut() {
        f.format = if a.write.is_some() { "pcapng" } else { "live" };
    }
    let code = match a.opts.fail_on.threshold() {
        Some(t) if report.findings.iter().any(|f| f.severity >= t) => 1,
        _ => 0,
    };
    let summary = Summary {
        interface: &a.interface,
        filter: &a.filter,
        written: a.write.as_deref(),
        run_as: &run_as,
        kernel,
        processes: Processes {
            resolved,
            unresolved,
            ended_before_lookup,
        },
        modules: report.modules.len(),
        findings: severity_counts(&report),
        exit_code: if read_error.is_some() { 2 } else { code },
        capture: &report.capture,
    };
    let res = match &mut sink {
        Sink::Jsonl(j) => j.summary(&summary),
        Sink::Text { .. } | Sink::Tui { .. } => {
            let stdout = io::stdout();
            let mut out = stdout.lock();
            writeln!(out)
                .and_then(|_| write_text(&report, &mut out, color))
                .and_then(|_| {
                    writeln!(
                        out,
                        "\nkernel: {} packets received, {} dropped{}; processes: {} connections attributed, {} not ({} closed before they could be looked up)",
                        kernel.received,
                        kernel.dropped + kernel.if_dropped,
                        if kernel.dropped + kernel.if_dropped > 0 {
                            " (see capture-drops)"
                        } else {
                            ""
                        },
                        resolved,
                        unresolved,
                        ended_before_lookup
                    )
                })
                .and_then(|_| out.flush())
        }
    };
    if let Err(e) = res {
        if e.kind() != io::ErrorKind::BrokenPipe {
            eprintln!("modtrace: capture: writing the summary: {e}");
            return Ok(2);
        }
    }
    if read_error.is_some() {
        return Ok(2);
    }
    Ok(code)
}

enum Msg {
    Frame(Frame),
    Kernel(KernelStats),
}

struct ReaderEnd {
    writer: Option<PcapngWriter<BufWriter<File>>>,
    stats: SourceStats,
    /// The kernel counters when the capture stopped.
    kernel: Option<KernelStats>,
    write_error: Option<String>,
    read_error: Option<String>,
}

/// The reading thread: packets from libpcap to the -w file and to the analysis, until `stop`
/// (or the analysis hangs up). A TCP SYN's connection owner is looked up on the spot.
fn read_packets(
    mut src: LiveSource,
    mut writer: Option<PcapngWriter<BufWriter<File>>>,
    mut stats: SourceStats,
    stop: &AtomicBool,
    tx: &SyncSender<Msg>,
    attribution: Option<Arc<Mutex<Attributor>>>,
) -> ReaderEnd {
    let mut decoder = Decoder::new(DefragLimits::default());
    let mut write_error = None;
    let mut read_error = None;
    let mut last_housekeeping = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        match src.next_frame() {
            Ok(Some(frame)) => {
                // First of all: a short connection can end within a millisecond of its SYN.
                if let Some(attr) = &attribution {
                    if let Some(Transport::Tcp(seg)) = decoder.decode(&frame) {
                        if seg.flags.syn && !seg.flags.ack {
                            if let Ok(mut a) = attr.lock() {
                                a.prefetch(seg.src, seg.dst);
                            }
                        }
                    }
                }
                count(&mut stats, &frame);
                if let Some(w) = writer.as_mut() {
                    if let Err(e) = w.write_frame(&frame) {
                        write_error = Some(format!("-w: {e}: writing stopped"));
                        writer = None;
                    }
                }
                if tx.send(Msg::Frame(frame)).is_err() {
                    break;
                }
            }
            Ok(None) => {}
            Err(e) => {
                read_error = Some(e.to_string());
                break;
            }
        }
        if last_housekeeping.elapsed() >= HOUSEKEEPING_EVERY {
            last_housekeeping = Instant::now();
            if let Some(w) = writer.as_mut() {
                if let Err(e) = w.flush() {
                    write_error = Some(format!("-w: {e}: writing stopped"));
                    writer = None;
                }
            }
            if let Some(k) = src.stats() {
                if tx.send(Msg::Kernel(k)).is_err() {
                    break;
                }
            }
        }
    }
    ReaderEnd {
        kernel: src.stats(),
        writer,
        stats,
        write_error,
        read_error,
    }
}

fn count(stats: &mut SourceStats, f: &Frame) {
    stats.packets += 1;
    stats.bytes += f.data.len() as u64;
    if f.is_truncated() {
        stats.truncated_packets += 1;
    }
    if !stats.link_types.contains(&f.link) {
        stats.link_types.push(f.link);
    }
}

fn severity_counts(r: &Report) -> BTreeMap<&'static str, usize> {
    let mut m = BTreeMap::new();
    for f in &r.findings {
        *m.entry(f.severity.as_str()).or_insert(0) += 1;
    }
    m
}

#[derive(Serialize)]
struct Processes {
    /// Connections whose local process was found, and not.
    resolved: u64,
    unresolved: u64,
    /// Of the unresolved: closed before their first packet could be looked up.
    ended_before_lookup: u64,
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

enum Sink {
    Text {
        out: io::Stdout,
        /// Findings already printed (a finding that gains evidence is not printed again).
        shown: HashSet<usize>,
    },
    Jsonl(JsonlSink<io::Stdout>),
    /// The TUI, on its own thread.
    Tui {
        tx: std::sync::mpsc::Sender<crate::tui::Update>,
        rate: crate::tui::feed::RateMeter,
        last_status: std::time::Instant,
        interface: String,
    },
}

/// The screen's controls in live mode: quit stops the capture, `w` asks the analysis loop for
/// the report (pause and step act on the screen itself).
struct LiveControl {
    commands: std::sync::mpsc::Sender<crate::tui::Command>,
    stop: Arc<AtomicBool>,
}

impl crate::tui::run::Controller for LiveControl {
    fn command(&mut self, cmd: crate::tui::Command) {
        if cmd == crate::tui::Command::Quit {
            self.stop.store(true, Ordering::Relaxed);
        }
        let _ = self.commands.send(cmd);
    }
}

/// How often the live status bar is refreshed.
const STATUS_EVERY: Duration = Duration::from_millis(100);

fn write_live_report(an: &Analyzer, interface: &str, path: &std::path::Path) -> String {
    let stats = SourceStats {
        path: PathBuf::from(format!("live:{interface}")),
        ..SourceStats::default()
    };
    let report = Report::build(&[stats], an.snapshot_outcome());
    let result = File::create(path).and_then(|f| {
        let mut w = BufWriter::new(f);
        report.write_json(&mut w)?;
        w.flush()
    });
    match result {
        // A long capture keeps no exchange list: the report has modules and findings.
        Ok(()) => format!(
            "report written to {} (live: exchanges are not kept)",
            path.display()
        ),
        Err(e) => format!("writing {}: {e}", path.display()),
    }
}

impl Sink {
    fn count(&mut self, bytes: usize) {
        if let Sink::Tui { rate, .. } = self {
            rate.add(bytes as u64);
        }
    }

    fn note(&mut self, note: String) {
        if let Sink::Tui { tx, .. } = self {
            let _ = tx.send(crate::tui::Update::Note(note));
        }
    }

    /// The status bar, at most every STATUS_EVERY.
    fn status(&mut self, an: &Analyzer, kernel: &KernelStats) {
        if let Sink::Tui {
            tx,
            rate,
            last_status,
            interface,
        } = self
        {
            if last_status.elapsed() < STATUS_EVERY {
                return;
            }
            *last_status = std::time::Instant::now();
            let st = an.stats();
            let _ = tx.send(crate::tui::Update::Status(crate::tui::Status {
                source: format!("live:{interface}"),
                live: true,
                packets: st.packets,
                bytes: st.bytes,
                rate: rate.rate(),
                drops: Some(kernel.dropped + kernel.if_dropped),
                clock: st.last,
                speed: crate::tui::Speed::Max,
                paused: false,
                finished: false,
            }));
        }
    }

    /// Writes the analyzer's pending events; false when standard output is closed (or the
    /// screen quit).
    fn emit(&mut self, an: &mut Analyzer) -> bool {
        if let Sink::Tui { tx, .. } = self {
            let mut updates = Vec::new();
            crate::tui::feed::drain_updates(an, &mut updates);
            return updates.into_iter().all(|u| tx.send(u).is_ok());
        }
        let events: Vec<Event> = an.drain_events().collect();
        // Findings as the policy shows them (overrides, ignores), like the final report.
        let today = crate::policy::Date::today();
        for ev in events {
            let res = match self {
                Sink::Jsonl(j) => match &ev {
                    Event::Exchange(x) => j.exchange(x),
                    Event::Journey(i) => match an.journeys().get(*i) {
                        Some(jr) => j.journey(*i, jr),
                        None => Ok(()),
                    },
                    Event::Finding(i) => match an
                        .findings()
                        .get(*i)
                        .and_then(|f| an.policy().view(f, today))
                    {
                        Some(f) => j.finding(*i, &f),
                        None => Ok(()),
                    },
                    Event::Tls(t) => j.tls(t),
                },
                Sink::Tui { .. } => Ok(()),
                Sink::Text { out, shown } => {
                    let line = match &ev {
                        Event::Exchange(x) => Some(text::exchange(x)),
                        Event::Finding(i) if shown.insert(*i) => an
                            .findings()
                            .get(*i)
                            .and_then(|f| an.policy().view(f, today))
                            .map(|f| text::finding(&f)),
                        Event::Tls(t) => Some(text::tls(t)),
                        Event::Finding(_) | Event::Journey(_) => None,
                    };
                    match line {
                        Some(l) => {
                            let mut o = out.lock();
                            writeln!(o, "{l}").and_then(|_| o.flush())
                        }
                        None => Ok(()),
                    }
                }
            };
            if res.is_err() {
                return false;
            }
        }
        true
    }
}

/// One-line renderings for the text stream.
mod text {
    use crate::detect::tls::TlsRecord;
    use crate::detect::Finding;
    use crate::gomod::Exchange;
    use crate::time::Ts;

    fn clock(t: Ts) -> String {
        // hh:mm:ss.mmm of the RFC 3339 form (UTC).
        let s = t.rfc3339();
        s.get(11..23).unwrap_or(&s).to_string()
    }

    fn owner(p: &Option<String>) -> String {
        p.as_ref().map(|p| format!(" [{p}]")).unwrap_or_default()
    }

    pub fn exchange(x: &Exchange) -> String {
        let what = match (&x.module, &x.version) {
            (Some(m), Some(v)) => format!(" {} {m}@{v}", x.op.as_str()),
            (Some(m), None) => format!(" {} {m}", x.op.as_str()),
            _ => String::new(),
        };
        format!(
            "{} {} {} {}{} ({} B{}){}",
            clock(x.start),
            x.status.map_or("---".into(), |s| s.to_string()),
            x.method,
            x.url,
            what,
            x.bytes,
            x.duration_ms
                .map(|d| format!(", {d:.1} ms"))
                .unwrap_or_default(),
            owner(&x.process)
        )
    }

    pub fn finding(f: &Finding) -> String {
        format!(
            "{} !! {} {}: {}{}",
            clock(f.evidence.time),
            f.severity.as_str().to_uppercase(),
            f.rule.id(),
            f.message,
            owner(&f.process)
        )
    }

    pub fn tls(t: &TlsRecord) -> String {
        let check = match (&t.validation, t.certificates_hidden) {
            (Some(v), _) if v.is_valid() => "certificate valid".to_string(),
            (Some(v), _) => format!(
                "certificate INVALID ({})",
                v.reason.map_or("?", |r| r.as_str())
            ),
            (None, true) => "certificate hidden (TLS 1.3)".into(),
            (None, false) => "no certificate seen".into(),
        };
        format!(
            "{} tls {} -> {} sni={} {}: {check}",
            clock(t.start),
            t.client,
            t.server,
            t.sni.as_deref().unwrap_or("-"),
            t.version.as_deref().unwrap_or("?"),
        )
    }
}

/// Dropping root after the capture is open.
pub mod privileges {
    use super::RunAs;
    use nix::unistd::{self, Gid, Uid, User};
    use std::path::Path;

    /// The account to run as: `--user`, else the sudo caller (SUDO_UID/SUDO_GID, when not
    /// root), else `nobody`.
    pub fn target(
        user: Option<&str>,
        sudo_uid: Option<&str>,
        sudo_gid: Option<&str>,
    ) -> Result<RunAs, String> {
        if let Some(name) = user {
            let u = User::from_name(name)
                .map_err(|e| format!("--user {name}: {e}"))?
                .ok_or_else(|| format!("--user {name}: no such user"))?;
            return Ok(RunAs {
                uid: u.uid.as_raw(),
                gid: u.gid.as_raw(),
                user: u.name,
            });
        }
        if let (Some(uid), Some(gid)) = (sudo_uid, sudo_gid) {
            let uid: u32 = uid
                .trim()
                .parse()
                .map_err(|_| format!("SUDO_UID={uid:?} is not a number"))?;
            let gid: u32 = gid
                .trim()
                .parse()
                .map_err(|_| format!("SUDO_GID={gid:?} is not a number"))?;
            if uid != 0 {
                let name = User::from_uid(Uid::from_raw(uid))
                    .ok()
                    .flatten()
                    .map(|u| u.name)
                    .unwrap_or_else(|| format!("uid {uid}"));
                return Ok(RunAs {
                    uid,
                    gid,
                    user: name,
                });
            }
        }
        let u = User::from_name("nobody")
            .map_err(|e| format!("looking up nobody: {e}"))?
            .ok_or("there is no user nobody here; pass --user NAME")?;
        Ok(RunAs {
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
            user: u.name,
        })
    }

    /// Drops root (or, started unprivileged with file capabilities, the capabilities) and
    /// checks the result. `written` (the -w file) is handed to the new owner first.
    pub fn drop(user: Option<&str>, written: Option<&Path>) -> Result<RunAs, String> {
        if unistd::geteuid().is_root() {
            let sudo_uid = std::env::var("SUDO_UID").ok();
            let sudo_gid = std::env::var("SUDO_GID").ok();
            let to = target(user, sudo_uid.as_deref(), sudo_gid.as_deref())?;
            if to.uid == 0 {
                return Err(format!("user {} is root", to.user));
            }
            let (uid, gid) = (Uid::from_raw(to.uid), Gid::from_raw(to.gid));
            if let Some(p) = written {
                unistd::chown(p, Some(uid), Some(gid))
                    .map_err(|e| format!("chown {}: {e}", p.display()))?;
            }
            // While CAP_SETPCAP is still held: empty the bounding set, so nothing this process
            // runs later (`go env` for --go-env auto) can gain capabilities back.
            caps::clear(None, caps::CapSet::Bounding)
                .map_err(|e| format!("clearing the capability bounding set: {e}"))?;
            unistd::setgroups(&[]).map_err(|e| format!("setgroups: {e}"))?;
            unistd::setresgid(gid, gid, gid).map_err(|e| format!("setresgid: {e}"))?;
            unistd::setresuid(uid, uid, uid).map_err(|e| format!("setresuid: {e}"))?;
            clear_capabilities()?;
            check(&to, true)?;
            Ok(to)
        } else {
            if let Some(u) = user {
                return Err(format!(
                    "--user {u}: switching users needs root (run with sudo)"
                ));
            }
            // Started by a user with file capabilities (setcap): keep the user, drop the
            // capabilities now that the handle is open.
            clear_capabilities()?;
            let uid = unistd::getuid().as_raw();
            let to = RunAs {
                uid,
                gid: unistd::getgid().as_raw(),
                user: User::from_uid(Uid::from_raw(uid))
                    .ok()
                    .flatten()
                    .map(|u| u.name)
                    .unwrap_or_else(|| format!("uid {uid}")),
            };
            check(&to, false)?;
            Ok(to)
        }
    }

    fn clear_capabilities() -> Result<(), String> {
        use caps::CapSet;
        for set in [
            CapSet::Ambient,
            CapSet::Inheritable,
            CapSet::Effective,
            CapSet::Permitted,
        ] {
            caps::clear(None, set).map_err(|e| format!("clearing {set:?} capabilities: {e}"))?;
        }
        Ok(())
    }

    /// Verifies the drop took: ids, groups, capabilities, and that root cannot be regained.
    fn check(to: &RunAs, was_root: bool) -> Result<(), String> {
        let uid = unistd::getresuid().map_err(|e| format!("getresuid: {e}"))?;
        let gid = unistd::getresgid().map_err(|e| format!("getresgid: {e}"))?;
        let ids = [uid.real, uid.effective, uid.saved];
        if ids.iter().any(|u| u.as_raw() != to.uid || u.is_root()) {
            return Err(format!("still running with uids {ids:?}"));
        }
        let gids = [gid.real, gid.effective, gid.saved];
        if was_root && gids.iter().any(|g| g.as_raw() != to.gid) {
            return Err(format!("still running with gids {gids:?}"));
        }
        if was_root {
            let groups = unistd::getgroups().map_err(|e| format!("getgroups: {e}"))?;
            if groups.iter().any(|g| g.as_raw() != to.gid) {
                return Err(format!("supplementary groups left: {groups:?}"));
            }
            if unistd::setuid(Uid::from_raw(0)).is_ok() {
                return Err("setuid(0) still succeeds".into());
            }
        }
        for set in [caps::CapSet::Effective, caps::CapSet::Permitted] {
            let left = caps::read(None, set).map_err(|e| format!("reading {set:?}: {e}"))?;
            if !left.is_empty() {
                return Err(format!("{set:?} capabilities left: {left:?}"));
            }
        }
        Ok(())
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn sudo_caller_then_nobody() {
            let t = target(None, Some("1234"), Some("99")).unwrap();
            assert_eq!((t.uid, t.gid), (1234, 99));
            // sudo run by root names root: not a user to drop to, so nobody.
            let n = target(None, Some("0"), Some("0")).unwrap();
            assert_ne!(n.uid, 0);
            assert_eq!(n.user, "nobody");
            let n = target(None, None, None).unwrap();
            assert_eq!(n.user, "nobody");
            assert!(target(None, Some("x"), Some("1")).is_err());
        }

        #[test]
        fn explicit_user_wins_and_must_exist() {
            let t = target(Some("nobody"), Some("1234"), Some("99")).unwrap();
            assert_eq!(t.user, "nobody");
            assert_ne!(t.uid, 1234);
            let e = target(Some("modtrace-no-such-user"), None, None).unwrap_err();
            assert!(e.contains("no such user"), "{e}");
        }
    }
}

/// Reads what key log files gained since the last look, whole lines only.
struct KeyLogFollower {
    files: Vec<(PathBuf, u64, Vec<u8>)>,
}

impl KeyLogFollower {
    fn new(paths: &[PathBuf]) -> KeyLogFollower {
        KeyLogFollower {
            files: paths.iter().map(|p| (p.clone(), 0, Vec::new())).collect(),
        }
    }

    /// New complete lines of every file (a file that shrank is read again from the start).
    fn poll(&mut self) -> Vec<u8> {
        use std::io::{Read, Seek, SeekFrom};
        let mut out = Vec::new();
        for (path, offset, partial) in &mut self.files {
            let Ok(mut f) = File::open(&*path) else {
                continue;
            };
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            if len < *offset {
                *offset = 0;
                partial.clear();
            }
            if len == *offset || f.seek(SeekFrom::Start(*offset)).is_err() {
                continue;
            }
            let mut buf = Vec::new();
            // Bounded: a key log line is ~200 bytes; 16 MiB per look is thousands of sessions.
            if f.take(16 << 20).read_to_end(&mut buf).is_err() {
                continue;
            }
            *offset = offset.saturating_add(buf.len() as u64);
            partial.extend_from_slice(&buf);
            if let Some(end) = partial.iter().rposition(|&b| b == b'\n') {
                out.extend(partial.drain(..=end));
            }
        }
        out
    }
}
