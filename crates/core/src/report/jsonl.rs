//! The JSON Lines event stream of `modtrace capture --format jsonl`: one object per line, each
//! with a `type` (`exchange`, `journey`, `finding`, `tls`, then one `summary` when the capture
//! stops), written and flushed as the event happens so a reader (`jq`, a CI step) sees it at
//! once. The objects carry the same fields as the JSON report's entries (docs/report.md);
//! `journey` and `finding` lines also carry an `index`: a later line with the same index is a
//! newer state of the same journey or finding.

use crate::detect::tls::TlsRecord;
use crate::detect::Finding;
use crate::gomod::{Exchange, Journey};
use serde::Serialize;
use std::io::{self, Write};

#[derive(Serialize)]
struct Line<'a, T: Serialize> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<usize>,
    #[serde(flatten)]
    value: &'a T,
}

pub struct JsonlSink<W: Write> {
    out: W,
    lines: u64,
}

impl<W: Write> JsonlSink<W> {
    pub fn new(out: W) -> JsonlSink<W> {
        JsonlSink { out, lines: 0 }
    }

    /// Lines written so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    fn line<T: Serialize>(
        &mut self,
        kind: &'static str,
        index: Option<usize>,
        value: &T,
    ) -> io::Result<()> {
        let mut buf = serde_json::to_vec(&Line { kind, index, value }).map_err(io::Error::other)?;
        buf.push(b'\n');
        // One write per line, then a flush: a reader never sees half an object.
        self.out.write_all(&buf)?;
        self.out.flush()?;
        self.lines += 1;
        Ok(())
    }

    pub fn exchange(&mut self, ex: &Exchange) -> io::Result<()> {
        self.line("exchange", None, ex)
    }

    /// A module journey gained a hop; `index` identifies the journey across updates.
    pub fn journey(&mut self, index: usize, j: &Journey) -> io::Result<()> {
        self.line("journey", Some(index), j)
    }

    /// A finding was raised or changed; `index` identifies it across updates.
    pub fn finding(&mut self, index: usize, f: &Finding) -> io::Result<()> {
        self.line("finding", Some(index), f)
    }

    pub fn tls(&mut self, t: &TlsRecord) -> io::Result<()> {
        self.line("tls", None, t)
    }

    /// The last line: any object (its fields are flattened next to `"type":"summary"`).
    pub fn summary<T: Serialize>(&mut self, s: &T) -> io::Result<()> {
        self.line("summary", None, s)
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// `analyze --format jsonl`: one line per exchange (`"type":"exchange"`) and per finding
/// (`"type":"finding"`, `index` = its position in the JSON report's `findings`), the live
/// stream's shapes, merged in time order: an exchange at its start, a finding at its
/// evidence time (its first packet's), an exchange before a finding of the same instant.
/// No `summary` line: a file has no capture session to summarise, and `--format json` has
/// the capture totals.
pub fn write_report(report: &super::Report, out: &mut dyn Write) -> io::Result<()> {
    let mut order: Vec<(crate::time::Ts, u8, usize)> = report
        .exchanges
        .iter()
        .enumerate()
        .map(|(i, e)| (e.start, 0, i))
        .chain(
            report
                .findings
                .iter()
                .enumerate()
                .map(|(i, f)| (f.evidence.time, 1, i)),
        )
        .collect();
    order.sort();
    // The live sink's lines, without its flush per line: a file's report goes out at once.
    let mut buf = Vec::new();
    for (_, kind, i) in order {
        buf.clear();
        let written = if kind == 0 {
            let value = &report.exchanges[i];
            serde_json::to_writer(
                &mut buf,
                &Line {
                    kind: "exchange",
                    index: None,
                    value,
                },
            )
        } else {
            let value = &report.findings[i];
            serde_json::to_writer(
                &mut buf,
                &Line {
                    kind: "finding",
                    index: Some(i),
                    value,
                },
            )
        };
        written.map_err(io::Error::other)?;
        buf.push(b'\n');
        out.write_all(&buf)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{Evidence, Rule};
    use crate::gomod::journey::tests::ex;
    use crate::gomod::Tracker;
    use crate::time::Ts;

    /// Counts flushes, to show every line is flushed on its own.
    struct Flushes {
        data: Vec<u8>,
        flushed_at: Vec<usize>,
    }
    impl Write for Flushes {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.data.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            self.flushed_at.push(self.data.len());
            Ok(())
        }
    }

    fn lines(bytes: &[u8]) -> Vec<serde_json::Value> {
        std::str::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
            .collect()
    }

    #[test]
    fn each_event_is_one_flushed_line_with_its_type() {
        let mut sink = JsonlSink::new(Flushes {
            data: Vec::new(),
            flushed_at: Vec::new(),
        });
        let mut e = ex(
            7,
            "127.0.0.1:40000",
            "127.0.0.1:8081",
            "http://127.0.0.1:8081/example.test/hello/@v/v1.1.0.zip",
            200,
            1,
            2,
        );
        e.process = Some("go".into());
        sink.exchange(&e).unwrap();
        let mut t = Tracker::new();
        let out = t.on_exchange(&mut e);
        let ji = out.journey.unwrap();
        t.note_process(ji, "go");
        t.note_process(ji, "git");
        t.note_process(ji, "go");
        sink.journey(ji, &t.journeys()[ji]).unwrap();
        let f = Finding {
            rule: Rule::PlaintextModuleFetch,
            severity: Rule::PlaintextModuleFetch.severity(),
            message: "m\nwith a newline".into(),
            module: e.module.clone(),
            version: e.version.clone(),
            evidence: Evidence {
                exchanges: vec![7],
                flows: vec![7],
                packet: 70,
                time: Ts(1_000_000),
            },
            process: Some("go".into()),
        };
        sink.finding(3, &f).unwrap();
        sink.summary(&serde_json::json!({"packets": 12, "exit_code": 1}))
            .unwrap();
        assert_eq!(sink.lines(), 4);
        let w = sink.into_inner();
        let v = lines(&w.data);
        assert_eq!(v.len(), 4, "a newline inside a message stays escaped");
        let ends: Vec<usize> = w
            .data
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .map(|(i, _)| i + 1)
            .collect();
        assert_eq!(w.flushed_at, ends, "flushed after every line");

        assert_eq!(v[0]["type"], "exchange");
        assert_eq!(v[0]["id"], 7);
        assert_eq!(v[0]["op"], "zip");
        assert_eq!(v[0]["module"], "example.test/hello");
        assert_eq!(v[0]["process"], "go");
        assert!(v[0].get("index").is_none());
        assert!(v[0].get("end").is_none(), "skipped fields stay skipped");

        assert_eq!(v[1]["type"], "journey");
        assert_eq!(v[1]["index"], ji);
        assert_eq!(v[1]["version"], "v1.1.0");
        assert_eq!(v[1]["process"], "go, git");
        assert_eq!(v[1]["journey"][0]["exchange"], 7);

        assert_eq!(v[2]["type"], "finding");
        assert_eq!(v[2]["index"], 3);
        assert_eq!(v[2]["rule"], "plaintext-module-fetch");
        assert_eq!(v[2]["severity"], "high");
        assert_eq!(v[2]["message"], "m\nwith a newline");
        assert_eq!(v[2]["evidence"]["packet"], 70);

        assert_eq!(v[3]["type"], "summary");
        assert_eq!(v[3]["exit_code"], 1);
        // "type" comes first, so `grep '^{"type":"finding"'` works on the stream.
        assert!(std::str::from_utf8(&w.data)
            .unwrap()
            .lines()
            .all(|l| l.starts_with("{\"type\":\"")));
    }

    #[test]
    fn a_failed_write_is_an_error_not_a_panic() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut sink = JsonlSink::new(Broken);
        let err = sink
            .summary(&serde_json::json!({"x": 1}))
            .expect_err("broken pipe");
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
        assert_eq!(sink.lines(), 0);
    }
}
