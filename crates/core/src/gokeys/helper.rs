//! The privileged key helper (`modtrace go-keys-helper`, hidden): the one part of a capture
//! that keeps root after the capture drops it.
//!
//! A capture opens libpcap and its files as root and then drops root at once. Probes need
//! root for as long as the capture runs (new binaries can appear: a toolchain the go command
//! switches to, a process that opens a connection) and at its end (removing them), so they are
//! owned by this small process, started before the drop from the same executable. It only
//! defines probes on Go binaries, reads their events, and hands the secrets over its standard
//! output; it ends, removing everything it made, when its standard input closes (the capture
//! ended, or died: even SIGKILL closes the pipe), on SIGTERM/SIGINT/SIGHUP, or when the
//! capture's thread that started it dies (PR_SET_PDEATHSIG).
//!
//! Events are read from the instance's `trace_pipe` as text rather than through
//! perf_event_open: the text needs no unsafe ring-buffer mapping or per-CPU file handling, is
//! the same on every kernel since 4.17 and every architecture, and its parser is tested on
//! recorded lines ([`super::event`]). A few key events per TLS connection are far below the
//! rate where the text formatting costs anything.

use super::event::{parse_line, Dedupe, TraceLine};
use super::gobin;
use super::locate::Origin;
use super::probe::{abi_for, probe_line};
use super::protocol::{encode, Probed, Report, Request};
use super::tracefs::{group_name, remove_stale, Session, Tracefs};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// How long one wait for requests or events lasts; also the longest a secret waits in the
/// ring buffer, whatever the kernel's poll semantics of trace_pipe.
const POLL_MS: u16 = 100;
/// Binaries larger than this are not read (the go command is about 15 MB).
const MAX_BINARY_BYTES: u64 = 1 << 30;
/// Thread -> process ids remembered (threads live as long as the process, mostly).
const MAX_TIDS: usize = 4096;

/// Runs the helper; the process exit status.
pub fn main(tracefs: Option<PathBuf>) -> i32 {
    // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number; no pointers.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) };
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ] {
        let _ = signal_hook::flag::register(sig, Arc::clone(&stop));
    }
    let mut out = Out {
        w: std::io::stdout(),
        gone: false,
    };
    let fs = match Tracefs::locate(tracefs.as_deref()) {
        Ok(fs) => fs,
        Err(u) => {
            out.send(&Report::Unavailable { why: u.0 });
            return 0;
        }
    };
    let stale_removed = remove_stale(&fs);
    let tracefs_root = fs.root.clone();
    let group = group_name(std::process::id(), nonce());
    let session = match Session::create(fs, group.clone()) {
        Ok(s) => s,
        Err(u) => {
            out.send(&Report::Unavailable { why: u.0 });
            return 0;
        }
    };
    let pipe = match session.open_pipe() {
        Ok(p) => p,
        Err(e) => {
            let problems = session.close();
            out.send(&Report::Unavailable {
                why: format!("opening the trace pipe: {e}; {}", problems.join("; ")),
            });
            return 0;
        }
    };
    out.send(&Report::Started {
        tracefs: tracefs_root,
        group,
        stale_removed,
    });
    let mut h = Helper {
        session,
        probed: HashMap::new(),
        next_event: 1,
        dedupe: Dedupe::default(),
        tids: HashMap::new(),
        out,
        partial: Vec::new(),
    };
    h.serve(pipe, &stop);
    let problems = h.session.close();
    h.out.send(&Report::Closed { problems });
    0
}

/// A nonce for the group name: two runs in the same pid namespace never share a pid at the
/// same time, the nonce only guards against reuse after a crash.
fn nonce() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32).rotate_left(7))
        .unwrap_or(0);
    t ^ std::process::id().rotate_left(16)
}

struct Out {
    w: std::io::Stdout,
    /// The capture is gone: stop.
    gone: bool,
}

impl Out {
    fn send(&mut self, r: &Report) {
        if self.gone {
            return;
        }
        let mut w = self.w.lock();
        if w.write_all(encode(r).as_bytes())
            .and_then(|_| w.flush())
            .is_err()
        {
            self.gone = true;
        }
    }
}

struct Helper {
    session: Session,
    /// (device, inode) of each probed file -> its event.
    probed: HashMap<(u64, u64), String>,
    next_event: u32,
    dedupe: Dedupe,
    tids: HashMap<u32, u32>,
    out: Out,
    /// trace_pipe text after the last newline.
    partial: Vec<u8>,
}

impl Helper {
    /// Requests and events until standard input closes or a signal comes.
    fn serve(&mut self, mut pipe: std::fs::File, stop: &AtomicBool) {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let mut stdin = std::io::stdin();
        let mut requests: Vec<u8> = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if stop.load(Ordering::Relaxed) || self.out.gone {
                break;
            }
            let stdin_fd = stdin.as_fd();
            let pipe_fd = pipe.as_fd();
            let mut fds = [
                PollFd::new(stdin_fd, PollFlags::POLLIN),
                PollFd::new(pipe_fd, PollFlags::POLLIN),
            ];
            let ready = poll(&mut fds, PollTimeout::from(POLL_MS)).unwrap_or(0);
            let stdin_ready = ready > 0
                && fds[0].revents().is_some_and(|r| {
                    r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
                });
            // The pipe is read after every wake: poll on trace_pipe may wait for a watermark.
            self.drain(&mut pipe, &mut buf);
            if stdin_ready {
                match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => requests.extend_from_slice(&buf[..n]),
                }
                while let Some(end) = requests.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = requests.drain(..=end).collect();
                    self.request(&line);
                }
            }
        }
        // Secrets logged just before the end are still in the ring.
        self.drain(&mut pipe, &mut buf);
    }

    fn request(&mut self, line: &[u8]) {
        let req: Request = match serde_json::from_slice(line) {
            Ok(r) => r,
            Err(e) => {
                self.out.send(&Report::Warning {
                    what: format!("bad request: {e}"),
                });
                return;
            }
        };
        match req {
            Request::Probe { path, origin } => {
                if let Some(r) = self.probe(&path, &path, origin) {
                    self.out.send(&r);
                }
            }
            Request::ProbePid { pid } => {
                let exe = PathBuf::from(format!("/proc/{pid}/exe"));
                let Ok(real) = std::fs::read_link(&exe) else {
                    return;
                };
                if let Some(r) = self.probe(&exe, &real, Origin::Process) {
                    self.out.send(&r);
                }
            }
            Request::Follow { pids } => {
                if let Err(e) = self.session.follow_pids(&pids) {
                    self.out.send(&Report::Warning {
                        what: format!("following processes {pids:?}: {e}"),
                    });
                }
            }
            Request::Sync { id } => self.out.send(&Report::Synced { id }),
        }
    }

    /// Probes the file at `open` (shown as `shown`); None when it is probed already.
    fn probe(&mut self, open: &Path, shown: &Path, origin: Origin) -> Option<Report> {
        let refuse_as = |why: String, go_program: bool| {
            Some(Report::Refused {
                path: shown.to_path_buf(),
                origin,
                why,
                go_program,
            })
        };
        let refuse = |why: String| refuse_as(why, false);
        let meta = match std::fs::metadata(open) {
            Ok(m) => m,
            Err(e) => return refuse(e.to_string()),
        };
        let key = (meta.dev(), meta.ino());
        if self.probed.contains_key(&key) {
            return None;
        }
        if !meta.is_file() {
            return refuse("not a regular file".into());
        }
        if meta.len() > MAX_BINARY_BYTES {
            return refuse(format!("larger than {MAX_BINARY_BYTES} bytes"));
        }
        let data = match std::fs::read(open) {
            Ok(d) => d,
            Err(e) => return refuse(e.to_string()),
        };
        let bin = match gobin::read(&data) {
            Ok(b) => b,
            Err(e) => return refuse(e.to_string()),
        };
        let refuse = |why: String| refuse_as(why, true);
        let loc = match gobin::find_function(&data, gobin::WRITE_KEY_LOG) {
            Ok(l) => l,
            Err(e) => return refuse(e.to_string()),
        };
        let abi = match abi_for(&bin.arch, bin.go_version.as_ref()) {
            Ok(a) => a,
            Err(e) => return refuse(e.to_string()),
        };
        // The probe names the file by a path the kernel resolves to the same inode; a
        // deleted or renamed executable through /proc/<pid>/exe.
        let same_inode = |p: &Path| std::fs::metadata(p).is_ok_and(|m| (m.dev(), m.ino()) == key);
        let probe_path = if same_inode(shown) { shown } else { open };
        let event = format!("wkl_{}", self.next_event);
        let line = match probe_line(
            &self.session.group,
            &event,
            &probe_path.to_string_lossy(),
            loc.file_offset,
            abi,
        ) {
            Ok(l) => l,
            Err(e) => return refuse(e.to_string()),
        };
        if let Err(e) = self.session.add_probe(&event, &line) {
            return refuse(format!("the kernel refused the probe: {e}"));
        }
        self.next_event += 1;
        self.probed.insert(key, event.clone());
        Some(Report::Probed(Probed {
            path: shown.to_path_buf(),
            origin,
            event,
            go_version: bin
                .go_version
                .as_ref()
                .map(|v| v.text.clone())
                .unwrap_or_default(),
            arch: bin.arch.name().to_string(),
            abi: abi.name().to_string(),
            found_by: loc.found_by.name().to_string(),
            file_offset: loc.file_offset,
        }))
    }

    /// Reads what the trace pipe has (non-blocking) and reports each new secret.
    fn drain(&mut self, pipe: &mut std::fs::File, buf: &mut [u8]) {
        loop {
            match pipe.read(buf) {
                Ok(0) => break,
                Ok(n) => {
                    self.partial.extend_from_slice(&buf[..n]);
                    while let Some(end) = self.partial.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = self.partial.drain(..=end).collect();
                        self.event_line(&String::from_utf8_lossy(&line));
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break, // WouldBlock: empty for now
            }
        }
    }

    fn event_line(&mut self, line: &str) {
        let events = self.session.events();
        match parse_line(line.trim_end(), |e| events.iter().any(|x| x == e)) {
            Ok(TraceLine::Key(k)) => {
                if !self.dedupe.first(&k) {
                    return;
                }
                let pid = k.tgid.or_else(|| self.tgid_of(k.tid));
                self.out.send(&Report::Key {
                    event: k.event.clone(),
                    pid,
                    line: k.keylog_line(),
                });
            }
            Ok(TraceLine::Lost(n)) => self.out.send(&Report::Lost { events: n }),
            Ok(TraceLine::Other) => {}
            Err(e) => self.out.send(&Report::Warning {
                what: format!("a key event could not be used: {e}"),
            }),
        }
    }

    /// The process of a thread, from /proc/<tid>/status (`Tgid:`).
    fn tgid_of(&mut self, tid: u32) -> Option<u32> {
        if let Some(p) = self.tids.get(&tid) {
            return Some(*p);
        }
        let status = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
        let tgid = status
            .lines()
            .find_map(|l| l.strip_prefix("Tgid:"))
            .and_then(|v| v.trim().parse().ok())?;
        if self.tids.len() >= MAX_TIDS {
            self.tids.clear();
        }
        self.tids.insert(tid, tgid);
        Some(tgid)
    }
}
