//! The capture's side of the key helper ([`super::helper`]): starts it (before root is
//! dropped), asks it to probe binaries, and receives the secrets on a thread of its own, so
//! that neither side ever waits for the other for long.

use super::locate::Origin;
use super::protocol::{encode, Report, Request};
use super::{GoKeysSummary, ProbedBinary, RefusedBinary};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The hidden subcommand that runs the helper.
pub const HELPER_COMMAND: &str = "go-keys-helper";
/// How long the helper may take to say it is ready (it reads tracefs and removes stale probes).
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long it may take to clean up at the end.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// One secret from the go process.
#[derive(Clone)]
pub struct KeyDelivery {
    /// The NSS key-log line, with its newline.
    pub line: String,
    /// The process that logged it.
    pub pid: Option<u32>,
}

#[derive(Default)]
struct State {
    summary: GoKeysSummary,
    started: Option<Result<(), String>>,
    synced: u64,
    /// Lines for the user (a binary that cannot be probed, lost events), said once each.
    notes: Vec<String>,
    closed: bool,
}

type Shared = Arc<(Mutex<State>, Condvar)>;

/// A running key helper.
pub struct GoKeys {
    child: Child,
    stdin: Option<ChildStdin>,
    shared: Shared,
    reader: Option<std::thread::JoinHandle<()>>,
    next_sync: u64,
}

impl GoKeys {
    /// Starts the helper (this executable, `go-keys-helper`) and waits until it is ready.
    /// `wake` is called after each secret is queued on the returned receiver (it must not
    /// block). Err: the one line that says why keys cannot be read here.
    pub fn start(
        tracefs: Option<&Path>,
        wake: Box<dyn Fn() + Send>,
    ) -> Result<(GoKeys, Receiver<KeyDelivery>), String> {
        let exe = std::env::current_exe().map_err(|e| format!("finding this program: {e}"))?;
        let mut cmd = Command::new(exe);
        cmd.arg(HELPER_COMMAND);
        if let Some(t) = tracefs {
            cmd.arg("--tracefs").arg(t);
        }
        {
            use std::os::unix::process::CommandExt;
            // Its own process group: Ctrl-C in the terminal is the capture's to handle; the
            // helper ends when the capture closes its pipe.
            cmd.process_group(0);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("starting the key helper: {e}"))?;
        let stdout = child.stdout.take().ok_or("the key helper has no output")?;
        let stdin = child.stdin.take();
        let shared: Shared = Arc::new((Mutex::new(State::default()), Condvar::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || read_reports(stdout, &shared, &tx, &*wake))
        };
        let mut keys = GoKeys {
            child,
            stdin,
            shared,
            reader: Some(reader),
            next_sync: 0,
        };
        let started = keys.wait(START_TIMEOUT, |s| s.started.clone());
        match started {
            Some(Ok(())) => Ok((keys, rx)),
            Some(Err(why)) => {
                keys.stop();
                Err(why)
            }
            None => {
                keys.stop();
                Err("the key helper did not start in time".into())
            }
        }
    }

    fn send(&mut self, r: &Request) {
        if let Some(w) = self.stdin.as_mut() {
            if w.write_all(encode(r).as_bytes())
                .and_then(|_| w.flush())
                .is_err()
            {
                self.stdin = None;
            }
        }
    }

    pub fn probe(&mut self, path: &Path, origin: Origin) {
        self.send(&Request::Probe {
            path: path.to_path_buf(),
            origin,
        });
    }

    pub fn probe_pid(&mut self, pid: u32) {
        self.send(&Request::ProbePid { pid });
    }

    /// Only these processes and their descendants give secrets from now on.
    pub fn follow(&mut self, pids: Vec<u32>) {
        self.send(&Request::Follow { pids });
    }

    /// Waits until the helper has done every request sent so far.
    pub fn sync(&mut self, timeout: Duration) -> bool {
        self.next_sync += 1;
        let id = self.next_sync;
        self.send(&Request::Sync { id });
        self.wait(timeout, |s| (s.synced >= id || s.closed).then_some(()))
            .is_some()
    }

    fn wait<T>(&self, timeout: Duration, done: impl Fn(&State) -> Option<T>) -> Option<T> {
        let (lock, cv) = &*self.shared;
        let deadline = Instant::now() + timeout;
        let mut st = lock.lock().ok()?;
        loop {
            if let Some(v) = done(&st) {
                return Some(v);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            st = cv.wait_timeout(st, left).ok()?.0;
        }
    }

    /// Lines for the user since the last call.
    pub fn take_notes(&self) -> Vec<String> {
        self.shared
            .0
            .lock()
            .map(|mut s| std::mem::take(&mut s.notes))
            .unwrap_or_default()
    }

    pub fn summary(&self) -> GoKeysSummary {
        self.shared
            .0
            .lock()
            .map(|s| s.summary.clone())
            .unwrap_or_default()
    }

    /// Ends the helper (it removes its probes and instance) and returns the summary. The
    /// secrets it read last are on the receiver when this returns.
    pub fn stop(&mut self) -> GoKeysSummary {
        self.stdin = None; // EOF: the helper drains its ring, cleans up and says Closed
        let closed = self.wait(STOP_TIMEOUT, |s| s.closed.then_some(()));
        if closed.is_none() {
            // It did not answer: make sure it goes (its probes are removed by the next run).
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        let mut summary = self.summary();
        if closed.is_none() {
            summary.cleanup_problems.push(
                "the key helper did not finish in time; the next run removes what it left".into(),
            );
        }
        summary
    }
}

impl Drop for GoKeys {
    fn drop(&mut self) {
        if self.reader.is_some() {
            self.stop();
        }
    }
}

fn read_reports(
    stdout: std::process::ChildStdout,
    shared: &Shared,
    tx: &Sender<KeyDelivery>,
    wake: &dyn Fn(),
) {
    let (lock, cv) = &**shared;
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let Ok(report) = serde_json::from_str::<Report>(&line) else {
            continue;
        };
        if let Report::Key { line, pid, event } = report {
            if let Ok(mut st) = lock.lock() {
                st.summary.secrets += 1;
                if let Some(b) = st.summary.binaries.iter_mut().find(|b| b.event == event) {
                    b.secrets += 1;
                }
            }
            let _ = tx.send(KeyDelivery { line, pid });
            wake();
            continue;
        }
        let Ok(mut st) = lock.lock() else { break };
        apply(&mut st, report);
        cv.notify_all();
    }
    if let Ok(mut st) = lock.lock() {
        st.closed = true;
        if st.started.is_none() {
            st.started = Some(Err("the key helper ended before it was ready".into()));
        }
    }
    cv.notify_all();
}

fn apply(st: &mut State, report: Report) {
    match report {
        Report::Started {
            tracefs,
            group,
            stale_removed,
        } => {
            st.summary.enabled = true;
            st.summary.tracefs = Some(tracefs);
            st.summary.group = Some(group);
            if !stale_removed.is_empty() {
                st.notes.push(format!(
                    "removed what an earlier run that was killed left in tracefs: {}",
                    stale_removed.join(", ")
                ));
            }
            st.summary.stale_removed = stale_removed;
            st.started = Some(Ok(()));
        }
        Report::Unavailable { why } => {
            st.summary.unavailable = Some(why.clone());
            st.started = Some(Err(why));
        }
        Report::Probed(p) => st.summary.binaries.push(ProbedBinary {
            probed: p,
            secrets: 0,
        }),
        Report::Refused {
            path,
            origin,
            why,
            go_program,
        } => {
            // Not every program is Go: say so only for binaries the user or the go command
            // lookup named, and for Go programs that cannot be probed.
            if go_program || matches!(origin, Origin::GoBinaryFlag | Origin::GoCommand) {
                st.notes.push(format!(
                    "cannot read TLS secrets from {}: {why}",
                    path.display()
                ));
            }
            st.summary.refused.push(RefusedBinary { path, origin, why });
        }
        Report::Key { .. } => {}
        Report::Lost { events } => {
            st.summary.lost_events += events;
            st.notes.push(format!(
                "{events} key events were lost (the trace buffer overflowed): some sessions stay encrypted"
            ));
        }
        Report::Warning { what } => {
            st.summary.warnings += 1;
            if st.summary.warnings <= 5 {
                st.notes.push(what);
            }
        }
        Report::Synced { id } => st.synced = st.synced.max(id),
        Report::Closed { problems } => {
            st.summary.cleanup_problems.extend(problems);
            st.closed = true;
        }
    }
}
