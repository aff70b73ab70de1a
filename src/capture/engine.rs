//! The live pipeline shared by `capture` and `run`: what is opened with root, the packet
//! reader thread, the analysis loop, and the end (the -w file's secrets, the report).
//!
//! Order matters for safety: [`Opened::open`] runs with the rights the process started with
//! (libpcap, the -w and --keylog-out files, the key helper); the caller then drops root
//! ([`super::privileges::drop`]) before [`Engine`] parses a single packet.

use super::keys::KeySources;
use crate::cli::{AnalysisOptions, StreamFormat};
use crate::decode::{Decoder, DefragLimits, Transport};
use crate::gokeys::locate::Origin;
use crate::gokeys::GoKeysSummary;
use crate::pipeline::{Analyzer, Event, FlowOwner};
use crate::proc::Attributor;
use crate::report::jsonl::JsonlSink;
use crate::report::Report;
use crate::source::live::{KernelStats, LiveOptions, LiveSource};
use crate::source::pcapng::PcapngWriter;
use crate::source::{Frame, SourceStats};
use serde::Serialize;
use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the -w file is flushed and the kernel drop counters are read.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(1);
/// Frames queued between the reading thread and the analysis. Past this the reader waits
/// and the kernel buffer fills (drops are counted and reported); loopback frames can be 64 KiB
/// (TSO), so this bounds the queue at 128 MiB at worst.
const QUEUE_FRAMES: usize = 2048;
/// Buffer of the -w file between flushes.
const WRITE_BUFFER_BYTES: usize = 1 << 20;
/// How long the initial probes may take before the capture goes on without waiting.
const PROBE_SYNC_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the live status bar is refreshed.
const STATUS_EVERY: Duration = Duration::from_millis(100);

/// What a live pipeline opens and where it writes.
pub struct LiveParams<'a> {
    pub live: &'a crate::cli::LiveArgs,
    pub keylog_out: Option<&'a Path>,
    /// Key-log files followed as they grow (--keylog; run's SSLKEYLOGFILE).
    pub follow_keylogs: Vec<PathBuf>,
    /// The go process key source: None when turned off.
    pub go_keys: Option<GoKeysPlan>,
}

/// What the key helper probes at the start.
pub struct GoKeysPlan {
    /// A tracefs mount other than the one found (tests, unusual systems).
    pub tracefs: Option<PathBuf>,
    pub binaries: Vec<(PathBuf, Origin)>,
    /// Also probe the executables of processes that open connections.
    pub probe_processes: bool,
}

pub enum Msg {
    Frame(Frame),
    Kernel(KernelStats),
    /// New secrets are waiting (from the key helper).
    Wake,
    /// The packet reader stopped.
    End,
}

/// Opened with root.
pub struct Opened {
    pub src: LiveSource,
    pub writer: Option<Writer>,
    pub keys: KeySources,
    pub probe_processes: bool,
    tx: SyncSender<Msg>,
    rx: Receiver<Msg>,
}

impl Opened {
    /// The capture handle, then the -w file, the --keylog-out file and the key helper (with
    /// its first probes in place), all with the rights the process started with.
    pub fn open(p: &LiveParams) -> Result<Opened, String> {
        let live_opts = LiveOptions {
            interface: p.live.interface.clone(),
            filter: p.live.filter.clone(),
            snaplen: p.live.snaplen,
            ..LiveOptions::default()
        };
        let src = LiveSource::open(&live_opts).map_err(|e| e.to_string())?;
        let writer = match p.live.write.as_deref() {
            Some(path) => {
                let f = File::create(path).map_err(|e| format!("-w {}: {e}", path.display()))?;
                let w = PcapngWriter::new(
                    BufWriter::with_capacity(WRITE_BUFFER_BYTES, f),
                    &format!("modtrace {} (live capture)", env!("CARGO_PKG_VERSION")),
                    Some(&p.live.interface),
                    if p.live.snaplen == 0 {
                        262_144
                    } else {
                        p.live.snaplen
                    },
                )
                .map_err(|e| format!("-w {}: {e}", path.display()))?;
                Some(w)
            }
            None => None,
        };
        let mut keys = KeySources::new(&p.follow_keylogs, writer.is_some());
        if let Some(out) = p.keylog_out {
            keys.write_to(out)?;
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE_FRAMES);
        let mut probe_processes = false;
        match &p.go_keys {
            None => keys.set_go(Err(GoKeysSummary::off())),
            Some(plan) => {
                let wake_tx = tx.clone();
                let wake = Box::new(move || {
                    // Never blocks: a full queue wakes the loop anyway.
                    let _ = wake_tx.try_send(Msg::Wake);
                });
                match crate::gokeys::client::GoKeys::start(plan.tracefs.as_deref(), wake) {
                    Ok((mut g, rx)) => {
                        for (path, origin) in &plan.binaries {
                            g.probe(path, *origin);
                        }
                        g.sync(PROBE_SYNC_TIMEOUT);
                        probe_processes = plan.probe_processes;
                        keys.set_go(Ok((g, rx)));
                    }
                    Err(why) => {
                        eprintln!(
                            "modtrace: go process keys: off: {why}; capturing without them (HTTPS of the go command stays encrypted)"
                        );
                        keys.set_go(Err(GoKeysSummary {
                            unavailable: Some(why),
                            ..GoKeysSummary::default()
                        }));
                    }
                }
            }
        }
        for n in keys.notes() {
            eprintln!("modtrace: go process keys: {n}");
        }
        Ok(Opened {
            src,
            writer,
            keys,
            probe_processes,
            tx,
            rx,
        })
    }

    /// The key helper, when it runs.
    pub fn go_keys(&mut self) -> Option<&mut crate::gokeys::client::GoKeys> {
        self.keys.go_mut()
    }

    /// `lo (ethernet)`.
    pub fn describe(&self) -> String {
        format!("{} ({})", self.src.interface(), self.src.link().name())
    }
}

/// The -w file's writer.
type Writer = PcapngWriter<BufWriter<File>>;
/// What the packet reader takes: the capture, the -w file, the queue both ways.
type Parts = (LiveSource, Option<Writer>, SyncSender<Msg>, Receiver<Msg>);

/// How the analysis runs after the drop.
pub struct EngineSetup<'a> {
    pub opts: &'a AnalysisOptions,
    pub filter: FlowFilter,
    pub output: Output,
    pub interface: &'a str,
    /// What the status bar calls the source (default `live:IFACE`).
    pub label: Option<String>,
    pub stop: Arc<AtomicBool>,
    /// Keep every exchange for the report (`run` with JSON formats); a capture that may run
    /// for hours does not.
    pub keep_exchanges: bool,
}

/// What the end of the capture leaves besides the report.
pub struct Ended {
    pub finished: Finished,
    /// The -w file, to be closed by the caller.
    pub writer: Option<Writer>,
    /// Lines for the user.
    pub notes: Vec<String>,
}

/// Which connections are analysed.
pub enum FlowFilter {
    All,
    /// Processes with this name and their children (`--process`).
    Named(String),
    /// The process tree under this pid (`run`; 0 until the command is started).
    Tree(Arc<AtomicU32>),
}

/// Where events go while capturing.
pub enum Output {
    Stream(StreamFormat),
    Tui,
    /// Nothing until the end (`run` without a terminal writes its report then).
    Quiet,
}

/// The analysis side of a live capture, after the drop.
pub struct Engine {
    pub an: Analyzer,
    /// Taken by [`Engine::run`].
    parts: Option<Parts>,
    pub keys: KeySources,
    attribution: Arc<Mutex<Attributor>>,
    /// Owners of new connections, for the key helper to probe.
    owners: Arc<Mutex<Vec<u32>>>,
    owners_sent: HashSet<u32>,
    probe_processes: bool,
    sink: Sink,
    screen: Option<std::thread::JoinHandle<io::Result<()>>>,
    commands: Receiver<crate::tui::Command>,
    pub stop: Arc<AtomicBool>,
    source_label: String,
    /// `run`: the screen stays after the capture stopped, until the user quits, showing this
    /// note (the command's exit status), read when the capture stops.
    pub hold_screen: Option<Arc<Mutex<String>>>,
    /// Called once the packet reader runs (`run` lets its command go then).
    pub on_started: Option<Box<dyn FnOnce()>>,
}

/// What the end of a live capture leaves.
pub struct Finished {
    pub report: Report,
    pub kernel: KernelStats,
    pub processes: Processes,
    pub go_keys: GoKeysSummary,
    pub read_error: Option<String>,
}

#[derive(Clone, Copy, Default, Serialize)]
pub struct Processes {
    /// Connections whose local process was found, and not.
    pub resolved: u64,
    pub unresolved: u64,
    /// Of the unresolved: closed before their first packet could be looked up.
    pub ended_before_lookup: u64,
}

impl Engine {
    /// The analysis, its key sources and its output; files named by the options are read as
    /// the user the process now runs as.
    pub fn new(opened: Opened, setup: EngineSetup) -> Result<Engine, String> {
        let EngineSetup {
            opts,
            filter,
            output,
            interface,
            label,
            stop,
            keep_exchanges,
        } = setup;
        let Opened {
            src,
            writer,
            keys,
            probe_processes,
            tx,
            rx,
        } = opened;
        let tui = matches!(output, Output::Tui);
        let mut cfg = opts.config()?;
        // The key logs are followed as they grow (a server writes a line per session).
        cfg.keylog = Default::default();
        // Sessions wait a moment for secrets only when some can come.
        cfg.wait_for_keys = keys.expects_secrets();
        cfg.keep_headers = tui;
        let mut an = Analyzer::new(cfg);
        // A capture may run for hours: the summary needs no exchange list.
        an.keep_exchanges(keep_exchanges);
        let attribution = Arc::new(Mutex::new(Attributor::new("/proc")));
        let owners = Arc::new(Mutex::new(Vec::new()));
        if cfg!(target_os = "linux") {
            let attr = Arc::clone(&attribution);
            let seen = Arc::clone(&owners);
            an.set_flow_owner_lookup(Box::new(move |info| {
                let Ok(mut attr) = attr.lock() else {
                    return FlowOwner {
                        process: None,
                        keep: matches!(filter, FlowFilter::All),
                    };
                };
                // A connection that started during the capture was looked up by the reading
                // thread at its SYN; others (already open at the start) are looked up now.
                let owner = if info.saw_syn {
                    attr.prefetched_owner(info.client, info.server)
                } else {
                    attr.connection_owner(info.client, info.server)
                };
                if let (Some(o), Ok(mut s)) = (&owner, seen.lock()) {
                    if s.len() < 1024 {
                        s.push(o.pid);
                    }
                }
                let keep = match &filter {
                    FlowFilter::All => true,
                    FlowFilter::Named(name) => {
                        owner.as_ref().is_some_and(|o| o.descends_from(name))
                    }
                    FlowFilter::Tree(root) => {
                        let root = root.load(Ordering::Relaxed);
                        root != 0 && owner.as_ref().is_some_and(|o| o.ancestors.contains(&root))
                    }
                };
                FlowOwner {
                    process: owner.map(|o| o.name),
                    keep,
                }
            }));
        } else if !matches!(filter, FlowFilter::All) {
            return Err("following processes needs Linux (/proc)".into());
        }
        let (cmd_tx, commands) = std::sync::mpsc::channel::<crate::tui::Command>();
        let source_label = label.unwrap_or_else(|| format!("live:{interface}"));
        let mut screen = None;
        let sink = match output {
            Output::Tui => {
                let (tx, rx) = std::sync::mpsc::channel();
                let status = crate::tui::Status {
                    source: source_label.clone(),
                    live: true,
                    ..Default::default()
                };
                let mut ctl = LiveControl {
                    commands: cmd_tx,
                    stop: Arc::clone(&stop),
                };
                screen = Some(std::thread::spawn(move || {
                    crate::tui::run::run(rx, status, &mut ctl, true)
                }));
                Sink::Tui {
                    tx,
                    rate: crate::tui::feed::RateMeter::default(),
                    last_status: Instant::now(),
                }
            }
            Output::Stream(StreamFormat::Text) => Sink::Text {
                out: io::stdout(),
                shown: HashSet::new(),
            },
            Output::Stream(StreamFormat::Jsonl) => Sink::Jsonl(JsonlSink::new(io::stdout())),
            Output::Quiet => Sink::Quiet,
        };
        let mut e = Engine {
            an,
            parts: Some((src, writer, tx, rx)),
            keys,
            attribution,
            owners,
            owners_sent: HashSet::new(),
            probe_processes,
            sink,
            screen,
            commands,
            stop,
            source_label,
            hold_screen: None,
            on_started: None,
        };
        e.keys.poll(&mut e.an, true);
        Ok(e)
    }

    /// Starts the packet reader and analyses until it stops (the `stop` flag, or standard
    /// output closing), then finishes: the key helper's last secrets, the flows, the report.
    pub fn run(mut self, stats: SourceStats) -> Result<Ended, String> {
        let (src, writer, tx, rx) = self.parts.take().ok_or("the capture ran already")?;
        // Packets are read (and written to -w, and their connections' owners looked up) on
        // their own thread, so a slow moment of the analysis delays neither: a connection is
        // attributed while its socket still exists, and the kernel buffer is emptied at once.
        let (secrets_tx, secrets_rx) = std::sync::mpsc::channel();
        self.keys.forward_to(secrets_tx);
        let reader = {
            let stop = Arc::clone(&self.stop);
            let attr = cfg!(target_os = "linux").then(|| Arc::clone(&self.attribution));
            std::thread::spawn(move || {
                read_packets(src, writer, stats, &stop, &tx, attr, secrets_rx)
            })
        };
        if let Some(f) = self.on_started.take() {
            f();
        }
        let mut kernel = KernelStats::default();
        let mut last_notes = Instant::now();
        for msg in &rx {
            match msg {
                Msg::Frame(frame) => {
                    self.sink.count(frame.data.len());
                    self.an.on_frame(&frame)
                }
                Msg::Kernel(k) => {
                    if k.dropped + k.if_dropped > kernel.dropped + kernel.if_dropped {
                        self.an
                            .on_capture_drops(k.dropped + k.if_dropped, k.received);
                    }
                    kernel = k;
                }
                Msg::Wake => {}
                Msg::End => break,
            }
            // A TLS server or the go process logs its secrets during the handshake: look
            // often, so that the session's records wait briefly (`TlsLimits::wait_for_keys`).
            self.keys.poll(&mut self.an, false);
            self.probe_new_owners();
            if last_notes.elapsed() >= HOUSEKEEPING_EVERY {
                last_notes = Instant::now();
                for n in self.keys.notes() {
                    self.say(format!("go process keys: {n}"));
                }
            }
            // The screen's requests (`w`: the report so far).
            while let Ok(cmd) = self.commands.try_recv() {
                if let crate::tui::Command::WriteReport(path) = cmd {
                    let note = write_live_report(&self.an, &self.source_label, &path);
                    self.sink.note(note);
                }
            }
            self.sink.status(&self.an, &kernel, &self.source_label);
            if !self.sink.emit(&mut self.an) {
                // Standard output is gone (`| head`): nobody is listening any more.
                self.stop.store(true, Ordering::Relaxed);
                break;
            }
        }
        self.stop.store(true, Ordering::Relaxed);
        drop(rx);
        let ReaderEnd {
            writer,
            stats,
            kernel: last_kernel,
            write_error,
            read_error,
            secrets,
            mut secrets_written,
        } = reader
            .join()
            .map_err(|_| "the packet reader failed".to_string())?;
        // Secrets the writer had no time for, and those still to come, go at the end.
        let mut late = self.keys.take_unforwarded();
        while let Ok(k) = secrets.try_recv() {
            late.extend_from_slice(&k);
        }
        // Stopped: last counters, the last secrets, flush the flows, then the rest of the
        // stream.
        if let Some(k) = last_kernel {
            if k.dropped + k.if_dropped > kernel.dropped + kernel.if_dropped {
                self.an
                    .on_capture_drops(k.dropped + k.if_dropped, k.received);
            }
            kernel = k;
        }
        let go_keys = self.keys.finish(&mut self.an);
        self.an.finish();
        self.sink.emit(&mut self.an);
        let mut notes: Vec<String> = self
            .keys
            .notes()
            .into_iter()
            .map(|n| format!("go process keys: {n}"))
            .collect();
        notes.extend(write_error);
        let processes = self
            .attribution
            .lock()
            .map(|a| Processes {
                resolved: a.resolved,
                unresolved: a.unresolved,
                ended_before_lookup: a.ended_before_lookup,
            })
            .unwrap_or_default();
        let policy = self.an.policy().clone();
        let today = crate::time::Date::today();
        for w in policy.expired(today) {
            eprintln!("modtrace: warning: {w}");
        }
        late.extend(self.keys.take_unforwarded());
        let clock = self.an.stats().last;
        let hold = self
            .hold_screen
            .as_ref()
            .map(|n| n.lock().map(|n| n.clone()).unwrap_or_default());
        let Engine {
            an,
            sink,
            screen,
            source_label,
            ..
        } = self;
        let mut report = Report::build(std::slice::from_ref(&stats), an.into_outcome());
        if let Some(file) = report.capture.files.first_mut() {
            file.format = if stats.pcapng { "pcapng" } else { "live" };
        }
        report.apply_policy(&policy, today);
        report.capture.go_keys = Some(go_keys.clone());
        let finished = Finished {
            report,
            kernel,
            processes,
            go_keys,
            read_error,
        };
        let mut writer = writer;
        if let Some(w) = writer.as_mut() {
            match w.write_keylog(&late) {
                Ok(true) => secrets_written += lines(&late),
                Ok(false) => {}
                Err(e) => notes.push(format!("-w: writing the TLS secrets: {e}")),
            }
            if secrets_written > 0 {
                notes.push(format!(
                    "{secrets_written} TLS secret{} embedded in the -w file (modtrace analyze and Wireshark decrypt it without a key file)",
                    if secrets_written == 1 { "" } else { "s" }
                ));
            }
        }
        // The screen stays until the user quits; the capture is over.
        let screen_end = ScreenEnd { sink, screen };
        notes.extend(screen_end.close(hold, &finished, &source_label, clock));
        Ok(Ended {
            finished,
            writer,
            notes,
        })
    }

    /// Asks the key helper to probe the executables of new connection owners.
    fn probe_new_owners(&mut self) {
        if !self.probe_processes {
            return;
        }
        let pids: Vec<u32> = self
            .owners
            .lock()
            .map(|mut o| std::mem::take(&mut *o))
            .unwrap_or_default();
        for pid in pids {
            if self.owners_sent.len() < 4096 && self.owners_sent.insert(pid) {
                if let Some(g) = self.keys.go_mut() {
                    g.probe_pid(pid);
                }
            }
        }
    }

    /// A line for the user: the status bar in the TUI, stderr otherwise.
    pub fn say(&mut self, line: String) {
        match &mut self.sink {
            Sink::Tui { .. } => self.sink.note(line),
            _ => eprintln!("modtrace: {line}"),
        }
    }
}

/// The screen's end: it closes when the user quits (the capture has stopped; live, the
/// status says so).
struct ScreenEnd {
    sink: Sink,
    screen: Option<std::thread::JoinHandle<io::Result<()>>>,
}

impl ScreenEnd {
    /// `hold`: keep the screen, marked finished with this note, until the user quits;
    /// otherwise it closes with the capture.
    fn close(
        self,
        hold: Option<String>,
        f: &Finished,
        source: &str,
        clock: Option<crate::time::Ts>,
    ) -> Vec<String> {
        let ScreenEnd { sink, screen } = self;
        if let (Some(note), Sink::Tui { tx, .. }) = (hold, &sink) {
            let _ = tx.send(crate::tui::Update::Status(crate::tui::Status {
                source: source.to_string(),
                live: true,
                packets: f.report.capture.packets,
                bytes: f.report.capture.bytes,
                drops: Some(f.kernel.dropped + f.kernel.if_dropped),
                clock,
                speed: crate::tui::Speed::Max,
                finished: true,
                ..Default::default()
            }));
            let _ = tx.send(crate::tui::Update::Note(note));
            if let Some(t) = screen {
                let res = t.join();
                drop(sink);
                return screen_result(res);
            }
        }
        drop(sink);
        match screen {
            Some(t) => screen_result(t.join()),
            None => Vec::new(),
        }
    }
}

fn screen_result(res: std::thread::Result<io::Result<()>>) -> Vec<String> {
    match res {
        Ok(Ok(())) => Vec::new(),
        Ok(Err(e)) => vec![format!("terminal: {e}")],
        Err(_) => vec!["the screen failed".into()],
    }
}

struct ReaderEnd {
    writer: Option<Writer>,
    stats: SourceStats,
    /// The kernel counters when the capture stopped.
    kernel: Option<KernelStats>,
    write_error: Option<String>,
    read_error: Option<String>,
    /// Handed back so that no secret sent to the writer is lost.
    secrets: Receiver<Vec<u8>>,
    /// Key-log lines written to the -w file so far.
    secrets_written: u64,
}

/// The reading thread: packets from libpcap to the -w file and to the analysis, until `stop`
/// (or the analysis hangs up). A TCP SYN's connection owner is looked up on the spot.
fn read_packets(
    mut src: LiveSource,
    writer: Option<Writer>,
    mut stats: SourceStats,
    stop: &AtomicBool,
    tx: &SyncSender<Msg>,
    attribution: Option<Arc<Mutex<Attributor>>>,
    secrets: Receiver<Vec<u8>>,
) -> ReaderEnd {
    let mut decoder = Decoder::new(DefragLimits::default());
    let mut writer = writer.map(DelayedWriter::new);
    let mut write_error = None;
    let mut read_error = None;
    let mut last_housekeeping = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        // Secrets first: they go ahead of the packets still waiting.
        while let Ok(k) = secrets.try_recv() {
            if let Some(w) = writer.as_mut() {
                if let Err(e) = w.secrets(&k) {
                    write_error = Some(format!("-w: {e}: writing stopped"));
                    writer = None;
                }
            }
        }
        if let Some(w) = writer.as_mut() {
            if let Err(e) = w.release(false) {
                write_error = Some(format!("-w: {e}: writing stopped"));
                writer = None;
            }
        }
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
                    w.push(frame.clone());
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
    // Stopped: what the kernel already holds is still read (a bounded moment), so that a
    // Ctrl-C right after the traffic loses none of it.
    if read_error.is_none() {
        let until = Instant::now() + DRAIN_AFTER_STOP;
        while Instant::now() < until {
            match src.next_frame() {
                Ok(Some(frame)) => {
                    count(&mut stats, &frame);
                    if let Some(w) = writer.as_mut() {
                        w.push(frame.clone());
                    }
                    if tx.send(Msg::Frame(frame)).is_err() {
                        break;
                    }
                }
                _ => break,
            }
        }
    }
    while let Ok(k) = secrets.try_recv() {
        if let Some(w) = writer.as_mut() {
            if let Err(e) = w.secrets(&k) {
                write_error = Some(format!("-w: {e}: writing stopped"));
                writer = None;
            }
        }
    }
    let _ = tx.send(Msg::End);
    let mut secrets_written = 0;
    let writer = writer.and_then(|w| match w.finish() {
        Ok((w, n)) => {
            secrets_written = n;
            Some(w)
        }
        Err(e) => {
            write_error = Some(format!("-w: {e}: writing stopped"));
            None
        }
    });
    ReaderEnd {
        kernel: src.stats(),
        writer,
        secrets_written,
        stats,
        write_error,
        read_error,
        secrets,
    }
}

/// After a stop, the packets already captured are read for at most this long.
const DRAIN_AFTER_STOP: Duration = Duration::from_millis(500);
/// Packets wait this long before they are written to -w...
const WRITE_DELAY: Duration = Duration::from_secs(1);
/// ...or until this many bytes wait.
const WRITE_DELAY_BYTES: usize = 32 << 20;

/// The -w file, with each secret written ahead of the packets it decrypts. Wireshark reads a
/// pcapng in one pass and decrypts a session only with secrets from a Decryption Secrets
/// Block that comes before its handshake; the go process logs a secret after the packet that
/// let it derive it, and the key helper reads it within a tenth of a second. So packets wait
/// a second (bounded in bytes) and a secret is written as soon as it arrives.
struct DelayedWriter {
    w: Writer,
    /// Key-log lines written.
    secrets: u64,
    queue: std::collections::VecDeque<(Instant, Frame)>,
    queued_bytes: usize,
}

impl DelayedWriter {
    fn new(w: Writer) -> DelayedWriter {
        DelayedWriter {
            w,
            secrets: 0,
            queue: std::collections::VecDeque::new(),
            queued_bytes: 0,
        }
    }

    fn push(&mut self, f: Frame) {
        self.queued_bytes += f.data.len();
        self.queue.push_back((Instant::now(), f));
    }

    fn secrets(&mut self, k: &[u8]) -> io::Result<()> {
        // Too large for one block (64 MiB of secrets): left out, like an empty one.
        if self.w.write_keylog(k)? {
            self.secrets += lines(k);
        }
        Ok(())
    }

    /// Writes the packets that waited long enough (all of them with `all`).
    fn release(&mut self, all: bool) -> io::Result<()> {
        while let Some((t, f)) = self.queue.front() {
            if !all && t.elapsed() < WRITE_DELAY && self.queued_bytes <= WRITE_DELAY_BYTES {
                break;
            }
            self.w.write_frame(f)?;
            self.queued_bytes -= f.data.len();
            self.queue.pop_front();
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }

    fn finish(mut self) -> io::Result<(Writer, u64)> {
        self.release(true)?;
        Ok((self.w, self.secrets))
    }
}

fn lines(k: &[u8]) -> u64 {
    k.iter().filter(|b| **b == b'\n').count() as u64
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

/// Flushes the -w file to disk.
pub fn close_writer(w: Writer) -> Option<String> {
    w.into_inner()
        .and_then(|b| b.into_inner().map_err(|e| e.into_error())?.sync_all())
        .err()
        .map(|e| format!("-w: {e}"))
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
        last_status: Instant,
    },
    Quiet,
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

fn write_live_report(an: &Analyzer, source: &str, path: &Path) -> String {
    let stats = SourceStats {
        path: PathBuf::from(source),
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
    fn status(&mut self, an: &Analyzer, kernel: &KernelStats, source: &str) {
        if let Sink::Tui {
            tx,
            rate,
            last_status,
        } = self
        {
            if last_status.elapsed() < STATUS_EVERY {
                return;
            }
            *last_status = Instant::now();
            let st = an.stats();
            let _ = tx.send(crate::tui::Update::Status(crate::tui::Status {
                source: source.to_string(),
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
        let today = crate::time::Date::today();
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
                Sink::Tui { .. } | Sink::Quiet => Ok(()),
                Sink::Text { out, shown } => {
                    let line = match &ev {
                        Event::Exchange(x) => Some(crate::report::live::exchange(x)),
                        Event::Finding(i) if shown.insert(*i) => an
                            .findings()
                            .get(*i)
                            .and_then(|f| an.policy().view(f, today))
                            .map(|f| crate::report::live::finding(&f)),
                        Event::Tls(t) => Some(crate::report::live::tls(t)),
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
