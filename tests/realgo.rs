//! The real-go suite: re-records every capture with the lab and the real go command into a
//! temporary directory and asserts the same findings as the bundled ones. Needs root (tcpdump),
//! go and tcpdump; run by .ci/run as `cargo test --release --test realgo -- --ignored`.

mod common;
use common::*;

fn missing_prerequisites() -> Vec<String> {
    let mut missing = Vec::new();
    let is_root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false);
    if !is_root {
        missing.push("root (tcpdump must capture on lo)".to_string());
    }
    for tool in ["go", "tcpdump"] {
        if std::process::Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map(|o| !o.status.success())
            .unwrap_or(true)
        {
            missing.push(tool.to_string());
        }
    }
    missing
}

#[test]
#[ignore = "needs root, go and tcpdump; run by .ci/run"]
fn rerecorded_captures_give_the_same_findings() {
    let missing = missing_prerequisites();
    if !missing.is_empty() {
        let msg = format!("real-go suite needs: {}", missing.join(", "));
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{msg}");
        }
        eprintln!("SKIPPED: {msg}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(repo().join("captures/record.sh"))
        .arg(dir.path())
        .status()
        .expect("run captures/record.sh");
    assert!(status.success(), "captures/record.sh failed");
    assert!(!EXPECTED.is_empty());
    for e in EXPECTED {
        check_capture(dir.path(), e);
    }
    // The go command's own account of the redirect loop.
    let out = std::fs::read_to_string(dir.path().join("redirect-loop.go.json")).unwrap_or_default()
        + &std::fs::read_to_string(dir.path().join("redirect-loop.go.stderr")).unwrap_or_default();
    assert!(
        out.contains("stopped after 10 redirects"),
        "go did not report the redirect limit: {out}"
    );
}
