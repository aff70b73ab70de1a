//! Failed connections in the journeys, end to end on synthetic captures: a refused SYN, then
//! the same request to the next GOPROXY entry (`|`), with and without the Go environment.

mod common;
use common::*;
use etherparse::PacketBuilder;
use serde_json::Value;
use std::path::Path;

/// SYN from the client, RST+ACK from a port nothing listens on.
fn refused(client: ([u8; 4], u16), server: ([u8; 4], u16), t: u64) -> Vec<(u64, Vec<u8>)> {
    let mut frames = Vec::new();
    let mut syn = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4(client.0, server.0, 64)
        .tcp(client.1, server.1, 7000, 65535)
        .syn()
        .write(&mut syn, &[])
        .unwrap();
    frames.push((t, syn));
    let mut rst = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1])
        .ipv4(server.0, client.0, 64)
        .tcp(server.1, client.1, 0, 0)
        .rst()
        .ack(7001)
        .write(&mut rst, &[])
        .unwrap();
    frames.push((t + 50, rst));
    frames
}

fn capture(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("refused.pcap");
    let mut frames = refused(([127, 0, 0, 1], 40010), ([127, 0, 0, 1], 8122), 1_000_000);
    frames.extend(http_get(
        1_001_000,
        40011,
        ([127, 0, 0, 1], 8123),
        "127.0.0.1:8123",
        "/example.test/%21hello/@v/v1.1.0.info",
        "",
        "200 OK",
        "Content-Type: application/json\r\n",
        br#"{"Version":"v1.1.0","Time":"2024-01-01T00:00:00Z"}"#,
    ));
    write_pcap(&p, &frames);
    p
}

fn hops(j: &Value) -> Vec<Value> {
    j["modules"][0]["journey"].as_array().unwrap().clone()
}

fn fallbacks(j: &Value) -> Vec<(String, String)> {
    j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "proxy-fallback")
        .map(|f| {
            (
                f["severity"].as_str().unwrap().to_string(),
                f["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_refused_connection_is_the_attempt_before_the_fallback() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = capture(dir.path());
    let j = analyze_json(&pcap, &[]);
    let h = hops(&j);
    assert_eq!(h.len(), 2, "{h:#?}");
    assert_eq!(h[0]["exchange"], Value::Null);
    assert_eq!(h[0]["op"], "info");
    assert_eq!(h[0]["url"], "127.0.0.1:8122");
    assert_eq!(h[0]["failed"]["failure"], "refused");
    assert_eq!(h[0]["failed"]["inferred"], true);
    assert_eq!(h[1]["after"]["kind"], "fallback");
    assert_eq!(h[1]["after"]["from"], 0);
    assert_eq!(h[1]["after"]["cause"], "refused");
    assert!(h[1].get("failed").is_none(), "only failed hops carry it");
    let fb = fallbacks(&j);
    assert_eq!(fb.len(), 1, "{fb:?}");
    assert_eq!(fb[0].0, "low");
    assert!(
        fb[0].1.contains("127.0.0.1:8122 was refused"),
        "{}",
        fb[0].1
    );

    // The text report shows it in the journey.
    let out = run(&["analyze", pcap.to_str().unwrap(), "--fail-on", "never"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("#0  info    refused - 127.0.0.1:8122  (no request sent; inferred)"),
        "{text}"
    );
    assert!(text.contains("(fallback after #0: refused)"), "{text}");
}

#[test]
fn the_go_environment_decides_whether_a_failure_belongs_to_the_walk() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = capture(dir.path());
    let env = |goproxy: &str| {
        let p = dir.path().join("go.env");
        std::fs::write(&p, format!("GOPROXY={goproxy}\nGOSUMDB=off\n")).unwrap();
        p
    };
    // `|`: the entry is named, and the finding says the list has `|` there.
    let pipe = env("http://127.0.0.1:8122|http://127.0.0.1:8123");
    let j = analyze_json(&pcap, &["--go-env", pipe.to_str().unwrap()]);
    let h = hops(&j);
    assert_eq!(h[0]["url"], "http://127.0.0.1:8122");
    assert_eq!(h[0]["scheme"], "http");
    assert!(fallbacks(&j)[0].1.contains("GOPROXY has `|` there"));
    // `,`: the go command does not go on after a refused connection; the failure is not
    // part of this walk.
    let comma = env("http://127.0.0.1:8122,http://127.0.0.1:8123");
    let j = analyze_json(&pcap, &["--go-env", comma.to_str().unwrap()]);
    assert_eq!(hops(&j).len(), 1);
    assert!(fallbacks(&j).is_empty());
    // Not an entry of the list at all.
    let other = env("http://127.0.0.1:8123");
    let j = analyze_json(&pcap, &["--go-env", other.to_str().unwrap()]);
    assert_eq!(hops(&j).len(), 1);
}

/// docs/report.md shows the first two hops of pipe-after-refused.pcap: they are what the
/// analysis gives.
#[test]
fn the_documented_journey_is_the_capture_s() {
    let doc = std::fs::read_to_string(repo().join("docs/report.md")).unwrap();
    let block = doc
        .split("The first two hops of `captures/pipe-after-refused.pcap`")
        .nth(1)
        .and_then(|rest| rest.split("```json").nth(1))
        .and_then(|rest| rest.split("```").next())
        .expect("the example in docs/report.md");
    let documented: Value = serde_json::from_str(block).unwrap();
    let j = analyze_json(&repo().join("captures/pipe-after-refused.pcap"), &[]);
    assert_eq!(Value::Array(hops(&j)[..2].to_vec()), documented);
}

/// The go command's own refused TLS handshakes (tls-proxy-rejected.pcap: it sent
/// bad_certificate to a self-signed proxy, twice) merged with a synthetic next entry that
/// answered right after each: every failed handshake is the attempt before one request.
#[test]
fn a_failed_tls_handshake_is_the_attempt_before_the_next_entry() {
    let dir = tempfile::tempdir().unwrap();
    let next = dir.path().join("next.pcap");
    // 2026-11-24T03:26:11Z, then .640 s and .651 s: after each failed handshake (.635, .650).
    let t0: u64 = 1_795_490_771 * 1_000_000;
    let mut frames = Vec::new();
    for (k, (ms, file)) in [(640u64, "info"), (651, "mod")].into_iter().enumerate() {
        frames.extend(http_get(
            t0 + ms * 1000,
            40100 + k as u16,
            ([127, 0, 0, 1], 8093),
            "127.0.0.1:8093",
            &format!("/example.test/%21hello/@v/v1.1.0.{file}"),
            "",
            "200 OK",
            "",
            b"{}",
        ));
    }
    write_pcap(&next, &frames);
    let rejected = repo().join("captures/tls-proxy-rejected.pcap");
    let out = run(&[
        "analyze",
        rejected.to_str().unwrap(),
        next.to_str().unwrap(),
        "--format",
        "json",
        "--fail-on",
        "never",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    let h = hops(&j);
    let shape: Vec<(String, String)> = h
        .iter()
        .map(|h| {
            (
                h["op"].as_str().unwrap().to_string(),
                h["failed"]["failure"]
                    .as_str()
                    .map_or(h["status"].to_string(), str::to_string),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            ("info".into(), "tls-failed".into()),
            ("info".into(), "200".into()),
            ("mod".into(), "tls-failed".into()),
            ("mod".into(), "200".into()),
        ]
    );
    assert_eq!(
        h[0]["url"], "https://127.0.0.1:8092",
        "a ClientHello says https"
    );
    assert_eq!(
        h[0]["failed"]["detail"],
        "alert client: fatal bad_certificate"
    );
    assert_eq!(h[1]["after"]["cause"], "tls-failed");
    assert_eq!(h[3]["after"]["from"], 2);
    let fb = fallbacks(&j);
    assert_eq!(fb.len(), 2);
    assert!(fb[0].1.contains("failed its TLS handshake"), "{}", fb[0].1);
}
