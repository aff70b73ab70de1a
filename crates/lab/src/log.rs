//! The lab's request log: one JSON line per answered request, the ground truth a capture is
//! checked against (`{"server":..,"listen":..,"method":..,"target":..,"status":..,"bytes":..}`).

use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// One answered request. Field order is the JSON line's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// The server's name in its scenario or spec.
    pub server: String,
    /// The address it listens on, `127.0.0.1:PORT`.
    pub listen: String,
    pub method: String,
    /// The request target exactly as on the request line.
    pub target: String,
    pub status: u16,
    /// Body bytes of the response (0 for HEAD), written in one write right after logging.
    pub bytes: u64,
}

/// Entries kept by an in-memory log (tests and short runs); older ones are dropped past it.
pub const MEMORY_LOG_LIMIT: usize = 100_000;

enum Sink {
    File(File),
    Stderr,
    Memory {
        entries: Vec<LogEntry>,
        dropped: u64,
    },
}

/// Shared by all servers of a lab; cloning shares the sink.
#[derive(Clone)]
pub struct RequestLog {
    sink: Arc<Mutex<Sink>>,
}

impl RequestLog {
    /// Appends to `path` (created if missing). Each line goes out in one write, unbuffered, so a
    /// lab killed by a signal loses no answered request.
    pub fn to_file(path: &Path) -> std::io::Result<RequestLog> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(RequestLog {
            sink: Arc::new(Mutex::new(Sink::File(f))),
        })
    }

    pub fn to_stderr() -> RequestLog {
        RequestLog {
            sink: Arc::new(Mutex::new(Sink::Stderr)),
        }
    }

    pub fn in_memory() -> RequestLog {
        RequestLog {
            sink: Arc::new(Mutex::new(Sink::Memory {
                entries: Vec::new(),
                dropped: 0,
            })),
        }
    }

    pub fn record(&self, entry: LogEntry) {
        let mut sink = match self.sink.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        match &mut *sink {
            Sink::Memory { entries, dropped } => {
                if entries.len() >= MEMORY_LOG_LIMIT {
                    entries.remove(0);
                    *dropped = dropped.saturating_add(1);
                }
                entries.push(entry);
            }
            Sink::File(f) => {
                let _ = f.write_all(&line(&entry));
            }
            Sink::Stderr => {
                let _ = std::io::stderr().write_all(&line(&entry));
            }
        }
    }

    /// The entries of an in-memory log (empty for file and stderr logs).
    pub fn entries(&self) -> Vec<LogEntry> {
        match &*self.sink.lock().unwrap_or_else(|p| p.into_inner()) {
            Sink::Memory { entries, .. } => entries.clone(),
            _ => Vec::new(),
        }
    }
}

fn line(entry: &LogEntry) -> Vec<u8> {
    let mut v = serde_json::to_vec(entry).unwrap_or_default();
    v.push(b'\n');
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line_has_the_documented_field_order() {
        let e = LogEntry {
            server: "gone".into(),
            listen: "127.0.0.1:8082".into(),
            method: "GET".into(),
            target: "/example.test/%21util/@v/v0.2.0.info".into(),
            status: 410,
            bytes: 5,
        };
        assert_eq!(
            String::from_utf8(line(&e)).unwrap(),
            "{\"server\":\"gone\",\"listen\":\"127.0.0.1:8082\",\"method\":\"GET\",\"target\":\"/example.test/%21util/@v/v0.2.0.info\",\"status\":410,\"bytes\":5}\n"
        );
        let log = RequestLog::in_memory();
        log.record(e.clone());
        assert_eq!(log.entries(), vec![e]);
    }

    #[test]
    fn file_log_appends_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l.jsonl");
        let log = RequestLog::to_file(&p).unwrap();
        for status in [200, 404] {
            log.record(LogEntry {
                server: "p".into(),
                listen: "127.0.0.1:1".into(),
                method: "GET".into(),
                target: "/".into(),
                status,
                bytes: 0,
            });
        }
        let text = std::fs::read_to_string(&p).unwrap();
        let parsed: Vec<LogEntry> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            parsed.iter().map(|e| e.status).collect::<Vec<_>>(),
            vec![200, 404]
        );
    }
}
