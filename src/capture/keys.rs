//! A live capture's TLS secrets: where they come from (key-log files followed as they grow,
//! the go process through the key helper) and where they go (the analysis, `--keylog-out`,
//! and the `-w` file's Decryption Secrets Block).

use crate::gokeys::client::{GoKeys, KeyDelivery};
use crate::gokeys::GoKeysSummary;
use crate::pipeline::Analyzer;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender};
use std::time::{Duration, Instant};

/// How often the key-log files are looked at for new lines (one stat per look).
const KEYLOG_POLL_EVERY: Duration = Duration::from_millis(50);

pub struct KeySources {
    files: KeyLogFollower,
    last_file_poll: Instant,
    go: Option<(GoKeys, Receiver<KeyDelivery>)>,
    /// The summary when the go process key source is off or could not start.
    go_off: Option<GoKeysSummary>,
    out: Option<(PathBuf, File)>,
    out_error: Option<String>,
    /// The -w file's writer, while it runs: secrets go ahead of the packets they decrypt.
    forward: Option<Sender<Vec<u8>>>,
    /// Secrets the writer did not get (it had stopped), for a last block at the end.
    unforwarded: Vec<u8>,
    /// Whether there is a -w file at all.
    collect: bool,
}

impl KeySources {
    pub fn new(files: &[PathBuf], collect: bool) -> KeySources {
        KeySources {
            files: KeyLogFollower::new(files),
            last_file_poll: Instant::now() - KEYLOG_POLL_EVERY,
            go: None,
            go_off: None,
            out: None,
            out_error: None,
            forward: None,
            unforwarded: Vec::new(),
            collect,
        }
    }

    /// `--keylog-out FILE`: created now (mode 0600, before root is dropped; the drop hands it
    /// to the user), every secret appended as it arrives.
    pub fn write_to(&mut self, path: &Path) -> Result<(), String> {
        use std::os::unix::fs::OpenOptionsExt;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| format!("--keylog-out {}: {e}", path.display()))?;
        self.out = Some((path.to_path_buf(), f));
        Ok(())
    }

    pub fn set_go(&mut self, go: Result<(GoKeys, Receiver<KeyDelivery>), GoKeysSummary>) {
        match go {
            Ok(g) => self.go = Some(g),
            Err(s) => self.go_off = Some(s),
        }
    }

    /// Whether any secret can come: a key-log file is followed or the go processes are probed.
    pub fn expects_secrets(&self) -> bool {
        self.go.is_some() || !self.files.files.is_empty()
    }

    pub fn go_mut(&mut self) -> Option<&mut GoKeys> {
        self.go.as_mut().map(|(g, _)| g)
    }

    /// Lines for the user from the key helper.
    pub fn notes(&self) -> Vec<String> {
        let mut v = self
            .go
            .as_ref()
            .map(|(g, _)| g.take_notes())
            .unwrap_or_default();
        if let Some(e) = &self.out_error {
            v.push(e.clone());
        }
        v
    }

    /// New secrets to the analysis (files at most every 50 ms unless `now`).
    pub fn poll(&mut self, an: &mut Analyzer, now: bool) {
        let mut new = Vec::new();
        if let Some((_, rx)) = &self.go {
            while let Ok(k) = rx.try_recv() {
                new.extend_from_slice(k.line.as_bytes());
            }
        }
        if now || self.last_file_poll.elapsed() >= KEYLOG_POLL_EVERY {
            self.last_file_poll = Instant::now();
            new.extend(self.files.poll());
        }
        if new.is_empty() {
            return;
        }
        an.add_keylog(&new);
        if let Some((path, f)) = &mut self.out {
            if let Err(e) = f.write_all(&new).and_then(|_| f.flush()) {
                self.out_error = Some(format!("--keylog-out {}: {e}: not written", path.display()));
                self.out = None;
            }
        }
        if self.collect {
            let sent = self
                .forward
                .as_ref()
                .is_some_and(|f| f.send(new.clone()).is_ok());
            if !sent {
                self.forward = None;
                self.unforwarded.extend_from_slice(&new);
            }
        }
    }

    /// Secrets go to the -w file's writer from now on.
    pub fn forward_to(&mut self, tx: Sender<Vec<u8>>) {
        if self.collect {
            if !self.unforwarded.is_empty() {
                let _ = tx.send(std::mem::take(&mut self.unforwarded));
            }
            self.forward = Some(tx);
        }
    }

    /// Stops the key helper (its last secrets go to the analysis) and says what it did.
    pub fn finish(&mut self, an: &mut Analyzer) -> GoKeysSummary {
        let summary = match self.go.as_mut() {
            Some((g, _)) => g.stop(),
            None => self.go_off.clone().unwrap_or_else(GoKeysSummary::off),
        };
        self.poll(an, true);
        summary
    }

    /// Secrets the -w file's writer did not get (it had stopped): for a last block.
    pub fn take_unforwarded(&mut self) -> Vec<u8> {
        self.forward = None;
        std::mem::take(&mut self.unforwarded)
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
