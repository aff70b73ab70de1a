//! Every bundled capture's whole JSON report, kept as a snapshot (tests/snapshots/), so that a
//! change to how the analyser works (threads, buffering, the order stages run in) that changes
//! any byte of any report fails here, not only one whose findings change. A change that is
//! meant to change reports shows its diff with `cargo insta review`.
//!
//! Each capture is analysed as a user would: with its key log and its recorded go env when it
//! has them, and, when it has a key log, once more without (what a capture alone shows). The
//! training recordings use the lesson flags (`lesson::analysis_args`).
//!
//! Each analysis runs twice, hashing zips on the packet path (`--threads 0`) and on four
//! worker threads (`--threads 4`): the JSON reports must both be the snapshot, and the JSON
//! Lines event streams must be the same, event for event.

mod common;
use common::*;
use std::path::Path;

/// Capture files under `dir`, sorted, as paths relative to the checkout.
fn captures_in(dir: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(repo().join(dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".pcap") || n.ends_with(".pcapng"))
        .map(|n| format!("{dir}/{n}"))
        .collect();
    v.sort();
    v
}

/// The JSON report and the exit status, as `modtrace analyze` gives them from the checkout,
/// the same with zips hashed on the packet path and on worker threads.
fn report(capture: &str, extra: &[String]) -> String {
    let inline = analyze(capture, "json", "0", extra);
    let threaded = analyze(capture, "json", "4", extra);
    assert!(
        inline == threaded,
        "{capture}: --threads 0 and 4 give different reports"
    );
    let events = analyze(capture, "jsonl", "0", extra);
    assert!(
        events == analyze(capture, "jsonl", "4", extra),
        "{capture}: --threads 0 and 4 give different event streams"
    );
    inline
}

fn analyze(capture: &str, format: &str, threads: &str, extra: &[String]) -> String {
    let out = modtrace()
        .current_dir(repo())
        .args(["analyze", capture, "--format", format, "--no-progress"])
        .args(["--threads", threads])
        .args(extra)
        .output()
        .unwrap();
    let code = out.status.code().unwrap_or(-1);
    assert!(
        code == 0 || code == 1,
        "{capture}: exit {code}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    format!("exit {code}\n{}", String::from_utf8_lossy(&out.stdout))
}

fn snapshot_name(capture: &str, variant: &str) -> String {
    let stem = Path::new(capture).file_name().unwrap().to_string_lossy();
    format!("{stem}{variant}")
}

#[test]
fn every_bundled_capture_gives_the_same_report() {
    let captures = captures_in("captures");
    assert!(captures.len() >= 15, "captures/ holds {}", captures.len());
    for capture in captures {
        let base = capture
            .trim_end_matches(".pcapng")
            .trim_end_matches(".pcap");
        let keys = format!("{base}.keys");
        let env = format!("{base}.go-env.json");
        let mut extra = Vec::new();
        if repo().join(&env).exists() {
            extra.extend(["--go-env".to_string(), env]);
        }
        insta::assert_snapshot!(snapshot_name(&capture, ""), report(&capture, &extra));
        if repo().join(&keys).exists() {
            extra.extend(["--keylog".to_string(), keys]);
            insta::assert_snapshot!(snapshot_name(&capture, ".keyed"), report(&capture, &extra));
        }
    }
}

#[test]
fn every_training_recording_gives_the_same_report() {
    let captures = captures_in("captures/training");
    assert!(!captures.is_empty());
    let args = training_args(Path::new("captures"));
    for capture in captures {
        insta::assert_snapshot!(snapshot_name(&capture, ""), report(&capture, &args));
    }
}
