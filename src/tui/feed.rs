//! The analysis side of the TUI: turns the analyzer's events into owned [`Update`]s, and runs
//! a replay on its own thread at the capture's pace (scaled), pausing and stepping on the
//! screen's [`Command`]s.

use super::{Command, Speed, Status, Update};
use crate::pipeline::{Analyzer, Config, Event};
use crate::report::Report;
use crate::source::{embedded_keylog, MergedSource, SourceStats};
use crate::time::Ts;
use std::path::PathBuf;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The analyzer's events since the last call, as owned updates (journeys and findings are
/// copied as they stand now).
pub fn drain_updates(an: &mut Analyzer, out: &mut Vec<Update>) {
    let events: Vec<Event> = an.drain_events().collect();
    for ev in events {
        match ev {
            Event::Exchange(x) => out.push(Update::Exchange(x)),
            Event::Tls(t) => out.push(Update::Tls(t)),
            Event::Journey(index) => {
                if let Some(j) = an.journeys().get(index) {
                    out.push(Update::Journey {
                        index,
                        journey: Box::new(j.clone()),
                    });
                }
            }
            Event::Finding(index) => {
                // As the policy shows it (severity overrides, ignores), like the reports.
                let today = crate::time::Date::today();
                if let Some(f) = an
                    .findings()
                    .get(index)
                    .and_then(|f| an.policy().view(f, today))
                {
                    out.push(Update::Finding {
                        index,
                        finding: Box::new(f),
                    });
                }
            }
        }
    }
}

/// The analysis configuration plus the key logs embedded in the files (read first: a
/// writer may put them after the packets).
pub fn config_with_embedded_keys(files: &[PathBuf], mut cfg: Config) -> Result<Config, String> {
    // The detail view shows headers.
    cfg.keep_headers = true;
    for f in files {
        let k = embedded_keylog(f).map_err(|e| e.to_string())?;
        cfg.keylog.add_text(&k);
    }
    Ok(cfg)
}

/// The label of the source in the status bar.
pub fn source_label(files: &[PathBuf]) -> String {
    files
        .iter()
        .map(|f| {
            f.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| f.display().to_string())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The whole capture at once, for tests and snapshots: every update in order, then the final
/// status.
pub fn replay_to_end(files: &[PathBuf], cfg: Config) -> Result<Vec<Update>, String> {
    let cfg = config_with_embedded_keys(files, cfg)?;
    let mut src = MergedSource::open(files).map_err(|e| e.to_string())?;
    let mut an = Analyzer::new(cfg);
    let mut out = Vec::new();
    while let Some(frame) = src.next_frame().map_err(|e| e.to_string())? {
        an.on_frame(&frame);
        drain_updates(&mut an, &mut out);
        src.recycle(frame);
    }
    an.finish();
    drain_updates(&mut an, &mut out);
    let st = an.stats();
    out.push(Update::Status(Status {
        source: source_label(files),
        live: false,
        packets: st.packets,
        bytes: st.bytes,
        rate: 0.0,
        drops: None,
        clock: st.last,
        speed: Speed::Max,
        paused: false,
        finished: true,
    }));
    Ok(out)
}

/// Replay state shared between the screen and the replay thread.
#[derive(Debug)]
struct Control {
    paused: bool,
    speed: Speed,
    /// Pause at every new finding (training).
    pause_on_findings: bool,
    step: Option<StepUntil>,
    quit: bool,
    report: Option<PathBuf>,
    /// Set by any command, so the pacing re-anchors its clock.
    changed: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StepUntil {
    Event,
    Finding,
}

/// A running replay: send it the screen's commands; it stops when dropped.
pub struct Replay {
    control: Arc<(Mutex<Control>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Replay {
    /// Starts replaying `files` on a thread; updates go to `tx`.
    pub fn spawn(
        files: Vec<PathBuf>,
        cfg: Config,
        speed: Speed,
        pause_on_findings: bool,
        tx: Sender<Update>,
    ) -> Result<Replay, String> {
        Replay::start(files, cfg, speed, pause_on_findings, false, tx)
    }

    /// Like [`Replay::spawn`], but paused before the first packet until the screen's first
    /// [`Command::TogglePause`] (a demo act starts on its story).
    pub fn spawn_paused(
        files: Vec<PathBuf>,
        cfg: Config,
        speed: Speed,
        pause_on_findings: bool,
        tx: Sender<Update>,
    ) -> Result<Replay, String> {
        Replay::start(files, cfg, speed, pause_on_findings, true, tx)
    }

    fn start(
        files: Vec<PathBuf>,
        cfg: Config,
        speed: Speed,
        pause_on_findings: bool,
        paused: bool,
        tx: Sender<Update>,
    ) -> Result<Replay, String> {
        let cfg = config_with_embedded_keys(&files, cfg)?;
        let src = MergedSource::open(&files).map_err(|e| e.to_string())?;
        let control = Arc::new((
            Mutex::new(Control {
                paused,
                speed,
                pause_on_findings,
                step: None,
                quit: false,
                report: None,
                changed: false,
            }),
            Condvar::new(),
        ));
        let c = Arc::clone(&control);
        let label = source_label(&files);
        let thread = std::thread::spawn(move || run_replay(src, cfg, label, &c, &tx));
        Ok(Replay {
            control,
            thread: Some(thread),
        })
    }

    pub fn command(&self, cmd: Command) {
        let (lock, cv) = &*self.control;
        let Ok(mut c) = lock.lock() else {
            return;
        };
        match cmd {
            Command::TogglePause => {
                c.paused = !c.paused;
                c.step = None;
            }
            Command::Step => {
                c.paused = true;
                c.step = Some(StepUntil::Event);
            }
            Command::StepToFinding => {
                c.paused = true;
                c.step = Some(StepUntil::Finding);
            }
            Command::SetSpeed(s) => c.speed = s,
            Command::WriteReport(p) => c.report = Some(p),
            // The screen's loop changes acts; nothing to do here.
            Command::Act(_) => return,
            Command::Quit => c.quit = true,
        }
        c.changed = true;
        cv.notify_all();
    }
}

impl Drop for Replay {
    fn drop(&mut self) {
        self.command(Command::Quit);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// How often the status bar is refreshed while replaying.
const STATUS_EVERY: Duration = Duration::from_millis(100);
/// The longest sleep between checks of the controls while pacing.
const PACE_SLICE: Duration = Duration::from_millis(20);

fn run_replay(
    mut src: MergedSource,
    cfg: Config,
    label: String,
    control: &Arc<(Mutex<Control>, Condvar)>,
    tx: &Sender<Update>,
) {
    let (lock, cv) = &**control;
    let mut an = Analyzer::new(cfg);
    let mut out = Vec::new();
    // Pacing anchor: this wall time corresponds to this capture time.
    let mut anchor: Option<(Instant, Ts)> = None;
    let mut last_status = Instant::now();
    let mut rate = RateMeter::default();
    let mut finished = false;
    // Findings sent so far: the analyzer numbers them in order, and sends one again when its
    // evidence grows; only a higher index is a new finding to pause at.
    let mut findings_sent = 0usize;
    let status = |an: &Analyzer, c: &Control, rate: f64, finished: bool| {
        let st = an.stats();
        Update::Status(Status {
            source: label.clone(),
            live: false,
            packets: st.packets,
            bytes: st.bytes,
            rate,
            drops: None,
            clock: st.last,
            speed: c.speed,
            paused: c.paused,
            finished,
        })
    };
    loop {
        // Controls: wait while paused (unless stepping), write a report when asked.
        let (speed, stepping) = {
            let Ok(mut c) = lock.lock() else {
                return;
            };
            loop {
                if c.quit {
                    return;
                }
                if let Some(path) = c.report.take() {
                    let note = write_report(&an, &src, &path);
                    if tx.send(Update::Note(note)).is_err() {
                        return;
                    }
                }
                if c.changed {
                    c.changed = false;
                    anchor = None;
                    if tx.send(status(&an, &c, rate.rate(), finished)).is_err() {
                        return;
                    }
                }
                if finished || (c.paused && c.step.is_none()) {
                    c = match cv.wait_timeout(c, Duration::from_millis(200)) {
                        Ok((g, _)) => g,
                        Err(_) => return,
                    };
                    continue;
                }
                break;
            }
            (c.speed, c.step)
        };

        let frame = match src.next_frame() {
            Ok(Some(f)) => f,
            Ok(None) | Err(_) => {
                an.finish();
                drain_updates(&mut an, &mut out);
                for u in out.drain(..) {
                    if tx.send(u).is_err() {
                        return;
                    }
                }
                finished = true;
                if let Ok(mut c) = lock.lock() {
                    c.step = None;
                    if tx.send(status(&an, &c, 0.0, true)).is_err() {
                        return;
                    }
                    c.changed = false;
                }
                continue;
            }
        };
        // Pace: wait until the frame's capture time, scaled, has come (not while stepping).
        if let (Speed::Times(n), None) = (speed, stepping) {
            let (wall0, ts0) = *anchor.get_or_insert((Instant::now(), frame.ts));
            let capture_ns = u64::try_from(frame.ts.0.saturating_sub(ts0.0)).unwrap_or(0);
            let due = wall0 + Duration::from_nanos(capture_ns / u64::from(n.max(1)));
            while Instant::now() < due {
                std::thread::sleep((due - Instant::now()).min(PACE_SLICE));
                if lock.lock().map(|c| c.changed || c.quit).unwrap_or(true) {
                    break;
                }
            }
        }
        rate.add(frame.data.len() as u64);
        an.on_frame(&frame);
        src.recycle(frame);
        // Pauses and steps end on what this frame produced, zip hashes included.
        an.settle();
        drain_updates(&mut an, &mut out);
        let mut new_finding = false;
        for u in &out {
            if let Update::Finding { index, .. } = u {
                if *index >= findings_sent {
                    new_finding = true;
                    findings_sent = index + 1;
                }
            }
        }
        let any = !out.is_empty();
        for u in out.drain(..) {
            if tx.send(u).is_err() {
                return;
            }
        }
        // Steps end, and training pauses, on what this frame produced.
        if let Ok(mut c) = lock.lock() {
            let done = match c.step {
                Some(StepUntil::Event) => any,
                Some(StepUntil::Finding) => new_finding,
                None => false,
            };
            if done {
                c.step = None;
                c.changed = true;
            }
            if new_finding && c.pause_on_findings && !c.paused {
                c.paused = true;
                c.changed = true;
            }
        }
        if last_status.elapsed() >= STATUS_EVERY {
            last_status = Instant::now();
            if let Ok(c) = lock.lock() {
                if tx.send(status(&an, &c, rate.rate(), false)).is_err() {
                    return;
                }
            }
        }
    }
}

fn write_report(an: &Analyzer, src: &MergedSource, path: &std::path::Path) -> String {
    let stats: Vec<SourceStats> = src.stats().into_iter().cloned().collect();
    let report = Report::build(&stats, an.snapshot_outcome());
    let result = std::fs::File::create(path).and_then(|f| {
        let mut w = std::io::BufWriter::new(f);
        report.write_json(&mut w)?;
        std::io::Write::flush(&mut w)
    });
    match result {
        Ok(()) => format!("report written to {}", path.display()),
        Err(e) => format!("writing {}: {e}", path.display()),
    }
}

/// Input bytes per second over about the last second.
#[derive(Debug, Default)]
pub struct RateMeter {
    window_start: Option<Instant>,
    bytes: u64,
    last_rate: f64,
}

impl RateMeter {
    pub fn add(&mut self, n: u64) {
        let start = *self.window_start.get_or_insert_with(Instant::now);
        self.bytes = self.bytes.saturating_add(n);
        let el = start.elapsed();
        if el >= Duration::from_secs(1) {
            self.last_rate = self.bytes as f64 / el.as_secs_f64();
            self.bytes = 0;
            self.window_start = Some(Instant::now());
        }
    }
    pub fn rate(&self) -> f64 {
        self.last_rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Finding;
    use std::sync::mpsc::channel;

    fn capture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("captures")
            .join(name)
    }

    fn findings_in(updates: &[Update]) -> usize {
        updates
            .iter()
            .filter_map(|u| match u {
                Update::Finding { index, .. } => Some(*index),
                _ => None,
            })
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    }

    #[test]
    fn replay_to_end_gives_the_report_s_findings() {
        let updates = replay_to_end(&[capture("fallback-410.pcap")], Config::default()).unwrap();
        assert_eq!(findings_in(&updates), 12);
        assert!(matches!(
            updates.last(),
            Some(Update::Status(Status { finished: true, .. }))
        ));
    }

    /// The screen shows findings as the policy does: ignored ones not at all, overrides applied.
    #[test]
    fn updates_follow_the_policy() {
        let policy = crate::policy::Policy::from_toml(
            "[severity]\nproxy-fallback = \"high\"\n[[ignore]]\nrule = \"plaintext-module-fetch\"\nreason = \"lab\"\n",
            "test.toml",
        )
        .unwrap();
        let cfg = Config {
            policy,
            ..Config::default()
        };
        let updates = replay_to_end(&[capture("fallback-410.pcap")], cfg).unwrap();
        let findings: Vec<&Finding> = updates
            .iter()
            .filter_map(|u| match u {
                Update::Finding { finding, .. } => Some(finding.as_ref()),
                _ => None,
            })
            .collect();
        assert!(!findings.is_empty());
        assert!(findings
            .iter()
            .all(|f| f.rule.id() != "plaintext-module-fetch"));
        assert!(findings
            .iter()
            .filter(|f| f.rule.id() == "proxy-fallback")
            .all(|f| f.severity == crate::detect::Severity::High));
    }

    /// A replay of fallback-410.pcap with the default analysis, started `paused` or not.
    fn fallback_replay(
        speed: Speed,
        pause_on_findings: bool,
        paused: bool,
    ) -> (Replay, std::sync::mpsc::Receiver<Update>) {
        let (tx, rx) = channel();
        let files = vec![capture("fallback-410.pcap")];
        let cfg = Config::default();
        let r = if paused {
            Replay::spawn_paused(files, cfg, speed, pause_on_findings, tx)
        } else {
            Replay::spawn(files, cfg, speed, pause_on_findings, tx)
        };
        (r.unwrap(), rx)
    }

    /// Paused at each finding, stepping with `n` walks them one by one; `max` needs no wall time.
    #[test]
    fn pause_on_findings_and_step_to_the_next() {
        let (r, rx) = fallback_replay(Speed::Max, true, false);
        let mut seen = std::collections::BTreeSet::new();
        let mut paused_with = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            assert!(Instant::now() < deadline, "replay stuck: {seen:?}");
            match rx.recv_timeout(Duration::from_secs(5)).expect("updates") {
                Update::Finding { index, .. } => {
                    seen.insert(index);
                }
                Update::Status(s) if s.finished => break,
                Update::Status(s) if s.paused => {
                    paused_with.push(seen.len());
                    r.command(Command::StepToFinding);
                }
                _ => {}
            }
        }
        assert_eq!(seen.len(), 12);
        // It paused after the first finding, and again after each step.
        assert!(
            paused_with.first().is_some_and(|n| *n >= 1),
            "{paused_with:?}"
        );
        assert!(paused_with.windows(2).all(|w| w[0] <= w[1]));
        assert!(paused_with.len() >= 2, "{paused_with:?}");
    }

    /// A finding sent again (more evidence) is no new finding: each pause, and each `n`, brings
    /// at least one finding not seen before (a demo's panel explains a new one each time).
    #[test]
    fn pauses_come_with_new_findings_only() {
        for name in [
            "fallback-410.pcap",
            "redirect-loop.pcap",
            "mirror-basic-auth.pcap",
        ] {
            let (tx, rx) = channel();
            let r = Replay::spawn(vec![capture(name)], Config::default(), Speed::Max, true, tx)
                .unwrap();
            let mut seen = std::collections::BTreeSet::new();
            let mut at_last_pause = 0;
            // A step shows as paused at once (the command's own status): a pause counts once
            // findings came after it.
            let mut findings_since_command = false;
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                assert!(Instant::now() < deadline, "{name}: replay stuck");
                match rx.recv_timeout(Duration::from_secs(5)).expect("updates") {
                    Update::Finding { index, .. } => {
                        seen.insert(index);
                        findings_since_command = true;
                    }
                    Update::Status(s) if s.finished => break,
                    Update::Status(s) if s.paused && findings_since_command => {
                        findings_since_command = false;
                        assert!(
                            seen.len() > at_last_pause,
                            "{name}: paused without a new finding ({} seen)",
                            seen.len()
                        );
                        at_last_pause = seen.len();
                        r.command(Command::StepToFinding);
                    }
                    _ => {}
                }
            }
        }
    }

    /// Started paused, nothing is read until the first TogglePause.
    #[test]
    fn spawn_paused_waits_for_the_first_toggle() {
        let (r, rx) = fallback_replay(Speed::Max, false, true);
        assert!(
            rx.recv_timeout(Duration::from_millis(300)).is_err(),
            "nothing before the first toggle"
        );
        r.command(Command::TogglePause);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            assert!(Instant::now() < deadline, "did not finish");
            if let Update::Status(s) = rx.recv_timeout(Duration::from_secs(5)).expect("updates") {
                if s.finished {
                    assert!(s.packets > 0);
                    break;
                }
            }
        }
    }

    #[test]
    fn scaled_speed_takes_the_capture_s_time_and_quit_stops_it() {
        // The capture spans ~15 ms: at 1x the replay takes at least that long.
        let start = Instant::now();
        let (r, rx) = fallback_replay(Speed::Times(1), false, false);
        let last_clock = loop {
            if let Update::Status(s) = rx.recv_timeout(Duration::from_secs(10)).expect("updates") {
                if s.finished {
                    break s.clock;
                }
            }
        };
        let took = start.elapsed();
        let first = replay_to_end(&[capture("fallback-410.pcap")], Config::default()).unwrap();
        let span = first
            .iter()
            .find_map(|u| match u {
                Update::Exchange(x) => Some(x.start),
                _ => None,
            })
            .zip(last_clock)
            .map(|(a, b)| Duration::from_nanos(u64::try_from(b.0 - a.0).unwrap_or(0)))
            .unwrap();
        assert!(took >= span, "took {took:?}, capture spans {span:?}");
        drop(r); // joins the thread
    }
}
