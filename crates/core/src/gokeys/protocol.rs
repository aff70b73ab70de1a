//! What the capture and its privileged key helper say to each other: one JSON object per line
//! on the helper's standard input (requests) and output (reports). A private pipe between two
//! processes of the same program: the secrets cross it and nothing else sees them.

use super::locate::Origin;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// From the capture to the helper.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "kebab-case")]
pub enum Request {
    /// Probe this binary (if it is a Go program not probed yet).
    Probe { path: PathBuf, origin: Origin },
    /// Probe the executable of this process, if it is a Go program not probed yet.
    ProbePid { pid: u32 },
    /// From now on only these processes and their descendants give secrets.
    Follow { pids: Vec<u32> },
    /// Answer `Synced { id }` once every earlier request is done.
    Sync { id: u64 },
}

/// One probed binary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probed {
    pub path: PathBuf,
    pub origin: Origin,
    /// The uprobe event name its secrets arrive under.
    pub event: String,
    pub go_version: String,
    pub arch: String,
    /// `register` or `stack`.
    pub abi: String,
    /// `symtab` or `pclntab`.
    pub found_by: String,
    pub file_offset: u64,
}

/// From the helper to the capture.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "report", rename_all = "kebab-case")]
pub enum Report {
    /// Ready: the instance exists, probes can be added.
    Started {
        tracefs: PathBuf,
        group: String,
        /// Probes and instances of earlier runs that were killed, removed now.
        stale_removed: Vec<String>,
    },
    /// The key source cannot work here; the helper exits after this.
    Unavailable {
        why: String,
    },
    Probed(Probed),
    /// A binary that cannot be probed, and why.
    Refused {
        path: PathBuf,
        origin: Origin,
        why: String,
        /// It is a Go program (just not one that can be probed).
        go_program: bool,
    },
    /// One secret, as a key-log line (NSS format, with its newline).
    Key {
        event: String,
        pid: Option<u32>,
        line: String,
    },
    /// The ring buffer overflowed: this many events were lost.
    Lost {
        events: u64,
    },
    /// An event that could not be used, or a request that failed.
    Warning {
        what: String,
    },
    Synced {
        id: u64,
    },
    /// Cleaned up; what could not be removed, if anything.
    Closed {
        problems: Vec<String>,
    },
}

/// One line (with its newline) for the pipe.
pub fn encode<T: Serialize>(msg: &T) -> String {
    let mut s = serde_json::to_string(msg).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_reports_round_trip() {
        let reqs = [
            Request::Probe {
                path: "/usr/local/go/bin/go".into(),
                origin: Origin::GoCommand,
            },
            Request::ProbePid { pid: 42 },
            Request::Follow { pids: vec![1, 2] },
            Request::Sync { id: 7 },
        ];
        for r in reqs {
            let line = encode(&r);
            assert!(line.ends_with('\n') && !line.trim_end().contains('\n'));
            assert_eq!(serde_json::from_str::<Request>(&line).unwrap(), r);
        }
        let rep = Report::Key {
            event: "wkl_1".into(),
            pid: Some(9),
            line: "CLIENT_RANDOM 00 11\n".into(),
        };
        let line = encode(&rep);
        assert!(!line.trim_end().contains('\n'), "one line: {line}");
        assert_eq!(serde_json::from_str::<Report>(&line).unwrap(), rep);
        assert_eq!(
            encode(&Request::Sync { id: 1 }),
            "{\"request\":\"sync\",\"id\":1}\n"
        );
    }
}
