//! A second opinion on decryption: tshark, given the same key log, sees the same request URIs
//! in each bundled TLS capture as modtrace does (HTTP/1.1 and HTTP/2, both legs of a tunnel).
//! Needs tshark; skipped with a message without it, except in CI (CI=true), where it fails.

mod common;
use common::*;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

fn tshark_available() -> bool {
    Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Every lab port in the capture's server log, for tshark's decode-as (lab servers listen on
/// ports tshark does not guess): TLS for the TLS servers, HTTP for the others.
fn decode_as(dir: &Path, name: &str, tls_ports: &[u16]) -> Vec<String> {
    let log = std::fs::read_to_string(dir.join(format!("{name}.lab.jsonl"))).unwrap();
    let mut ports = BTreeSet::new();
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        if let Some(p) = r["listen"]
            .as_str()
            .and_then(|l| l.rsplit(':').next())
            .and_then(|p| p.parse::<u16>().ok())
        {
            ports.insert(p);
        }
    }
    let mut args = Vec::new();
    for p in ports {
        // 443 and 80 are tshark's defaults already.
        if p == 443 || p == 80 {
            continue;
        }
        let proto = if tls_ports.contains(&p) {
            "tls"
        } else {
            "http"
        };
        args.push("-d".to_string());
        args.push(format!("tcp.port=={p},{proto}"));
    }
    args
}

fn modtrace_uris(j: &serde_json::Value) -> BTreeSet<String> {
    j["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            let url = x["url"].as_str().unwrap();
            if x["method"] == "CONNECT" || !url.contains("://") {
                url.to_string()
            } else {
                url.splitn(4, '/')
                    .nth(3)
                    .map(|p| format!("/{p}"))
                    .unwrap_or_else(|| "/".into())
            }
        })
        .collect()
}

#[test]
fn tshark_with_the_key_log_sees_the_same_request_uris() {
    if !tshark_available() {
        let msg = "tshark comparison needs tshark (apt-get install tshark)";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{msg}");
        }
        eprintln!("SKIPPED: {msg}");
        return;
    }
    let dir = repo().join("captures");
    let mut compared = 0;
    for e in EXPECTED.iter().filter(|e| !e.keyed.is_empty()) {
        let capture = ["pcap", "pcapng"]
            .iter()
            .map(|x| dir.join(format!("{}.{x}", e.name)))
            .find(|p| p.exists())
            .unwrap();
        let keys = dir.join(format!("{}.keys", e.name));
        // A pcapng carries its keys; tshark and modtrace both read them from it.
        let keylog = (capture.extension().is_some_and(|x| x == "pcap")).then_some(keys.as_path());
        let mut args = Vec::new();
        let k;
        if let Some(kl) = keylog {
            k = kl.to_str().unwrap().to_string();
            args.extend(["--keylog", k.as_str()]);
        }
        let j = analyze_json(&capture, &args);
        let ours = modtrace_uris(&j);
        let theirs = tshark_uris(&capture, keylog, &decode_as(&dir, e.name, e.tls_ports));
        assert!(!theirs.is_empty(), "{}: tshark saw no request", e.name);
        assert_eq!(ours, theirs, "{}: request URIs, modtrace vs tshark", e.name);
        compared += 1;
    }
    assert!(compared >= 4, "only {compared} keyed captures compared");
}
