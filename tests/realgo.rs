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

/// A Go TLS client that dials twice a server whose certificate nothing trusts: the first
/// connection is abandoned in the middle of its handshake (closed as the server's first bytes
/// arrive, no alert: what the go command does with a dial it no longer needs), the second
/// verifies and refuses the certificate (Go sends an alert).
const TWO_DIALS_GO: &str = r#"package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// abandon closes the connection as soon as the server answers.
type abandon struct{ net.Conn }

func (a abandon) Read(b []byte) (int, error) {
	n, err := a.Conn.Read(b)
	if n > 0 {
		a.Conn.Close()
		return 0, errors.New("abandoned")
	}
	return n, err
}

func main() {
	addr := os.Args[1]
	cfg := &tls.Config{ServerName: "lab.test"}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	fmt.Println("first:", tls.Client(abandon{c}, cfg).Handshake())
	time.Sleep(200 * time.Millisecond)
	c2, err := tls.Dial("tcp", addr, cfg)
	fmt.Println("second:", err)
	if c2 != nil {
		c2.Close()
	}
	time.Sleep(200 * time.Millisecond)
}
"#;

/// Regression (CI failed twice on an extra tls-rejected): a client that closes without an
/// alert before finishing its handshake has decided nothing; one that sends the alert
/// refused. Recorded here with tcpdump against the lab's self-signed TLS 1.2 proxy.
#[test]
#[ignore = "needs root, go and tcpdump; run by .ci/run"]
fn an_abandoned_handshake_is_no_refusal() {
    let missing = missing_prerequisites();
    if !common::root::prerequisites_or_skip("real-go suite", &missing) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let prog = common::root::build_go(d, "twodials", TWO_DIALS_GO, &[]);
    let env = common::root::scenario_env("tls-proxy-rejected");
    let (serve, _) = common::root::start_lab("tls-proxy-rejected", &d.join("lab.jsonl"), None);
    let mut procs = common::root::Guard(vec![serve]);
    let pcap = d.join("two-dials.pcap");
    procs
        .0
        .push(common::root::start_tcpdump(&pcap, &env["PORTS"]));
    let addr = env["GOPROXY"].trim_start_matches("https://").to_string();
    let out = std::process::Command::new(&prog)
        .arg(&addr)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("first: abandoned"), "{said}");
    assert!(
        said.contains("second: tls: failed to verify certificate"),
        "{said}"
    );
    std::thread::sleep(std::time::Duration::from_secs(1));
    common::root::signal(&procs.0[1], "INT");
    assert!(
        common::root::wait_timeout(&mut procs.0[1], std::time::Duration::from_secs(10)).is_some()
    );
    drop(procs);

    let r = analyze_json(&pcap, &[]);
    let tls = r["tls"].as_array().unwrap();
    assert_eq!(tls.len(), 2, "two sessions: {tls:?}");
    let accepted: Vec<&serde_json::Value> = tls.iter().map(|t| &t["accepted"]).collect();
    assert_eq!(
        accepted,
        [&serde_json::Value::Null, &serde_json::Value::Bool(false)],
        "the abandoned dial decided nothing, the second refused"
    );
    let rejected: Vec<&serde_json::Value> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "tls-rejected")
        .collect();
    assert_eq!(rejected.len(), 1, "one refusal: {rejected:?}");
}
