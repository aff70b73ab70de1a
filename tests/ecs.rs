//! `modtrace analyze --format ecs` (and `--format jsonl`) on bundled captures: every line is
//! one JSON document with the ECS fields docs/ci.md lists; and the lab's Basic-auth secret
//! appears in no output format at all.

mod common;

use base64::Engine;
use common::{modtrace, repo};
use serde_json::Value;

/// Runs `modtrace analyze ARGS` in the repository: (exit code, stdout, stderr).
fn analyze(args: &[&str]) -> (i32, String, String) {
    let out = modtrace()
        .current_dir(repo())
        .arg("analyze")
        .args(args)
        .output()
        .expect("run modtrace");
    let code = out.status.code().unwrap_or(-1);
    let stdout = String::from_utf8(out.stdout).expect("UTF-8 output");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(code == 0 || code == 1, "{args:?}: exit {code}: {stderr}");
    (code, stdout, stderr)
}

fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not one JSON object ({e}): {l}"))
        })
        .collect()
}

fn json_report(args: &[&str]) -> Value {
    let (_, out, _) = analyze(&[args, &["--format", "json"][..]].concat());
    serde_json::from_str(&out).unwrap()
}

/// `a.b.c` of a document, or panics naming the field.
fn field<'v>(doc: &'v Value, path: &str) -> &'v Value {
    let mut v = doc;
    for p in path.split('.') {
        v = v.get(p).unwrap_or_else(|| panic!("no {path} in {doc}"));
    }
    assert!(!v.is_null(), "{path} is null in {doc}");
    v
}

/// `2026-11-24T03:01:03.045687Z`: RFC 3339 in UTC.
fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && s.ends_with('Z')
        && s[..4].parse::<u32>().is_ok()
}

const SECRET: &str = "lab-secret-Zq7";

#[test]
fn ecs_documents_for_findings_and_exchanges() {
    let cap = "captures/mirror-basic-auth.pcap";
    let report = json_report(&[cap]);
    let findings = report["findings"].as_array().unwrap();
    let exchanges = report["exchanges"].as_array().unwrap();
    assert!(findings.len() >= 7 && exchanges.len() >= 12);

    let (code, out, _) = analyze(&[cap, "--format", "ecs", "--ecs-events"]);
    assert_eq!(code, 1, "high findings: --fail-on high by default");
    let docs = lines(&out);
    assert_eq!(docs.len(), findings.len() + exchanges.len());
    let alerts: Vec<&Value> = docs
        .iter()
        .filter(|d| d["event"]["kind"] == "alert")
        .collect();
    let events: Vec<&Value> = docs
        .iter()
        .filter(|d| d["event"]["kind"] == "event")
        .collect();
    assert_eq!(alerts.len(), findings.len());
    assert_eq!(events.len(), exchanges.len());

    let mut last = String::new();
    for d in &docs {
        let ts = field(d, "@timestamp").as_str().unwrap();
        assert!(is_rfc3339(ts), "{ts}");
        assert!(ts >= last.as_str(), "time order: {ts} after {last}");
        last = ts.to_string();
        assert_eq!(field(d, "ecs.version"), "8.11.0");
        assert_eq!(field(d, "event.module"), "modtrace");
        assert!(field(d, "event.category")
            .as_array()
            .unwrap()
            .contains(&"network".into()));
        assert!(!field(d, "event.type").as_array().unwrap().is_empty());
        // Every exchange of this capture is plain HTTP between two loopback ports.
        assert_eq!(field(d, "source.ip"), "127.0.0.1");
        assert!(field(d, "source.port").as_u64().unwrap() > 1024);
        assert_eq!(field(d, "destination.ip"), "127.0.0.1");
        let port = field(d, "destination.port").as_u64().unwrap();
        assert!(port == 8086 || port == 8087, "{port}");
        assert!(field(d, "url.original")
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:808"));
        assert!(field(d, "url.path").as_str().unwrap().starts_with('/'));
        assert_eq!(field(d, "url.scheme"), "http");
        assert_eq!(field(d, "url.domain"), "127.0.0.1");
        assert_eq!(field(d, "http.request.method"), "GET");
        assert_eq!(field(d, "http.response.status_code"), 200);
        assert!(!field(d, "message").as_str().unwrap().is_empty());
        assert!(!field(d, "modtrace.exchange_ids")
            .as_array()
            .unwrap()
            .is_empty());
    }

    for (a, f) in alerts.iter().zip(findings) {
        assert_eq!(field(a, "event.dataset"), "modtrace.finding");
        assert_eq!(
            field(a, "event.category"),
            &serde_json::json!(["network", "intrusion_detection"])
        );
        assert_eq!(field(a, "event.type"), &serde_json::json!(["info"]));
        let sev = match f["severity"].as_str().unwrap() {
            "critical" => 99,
            "high" => 73,
            "medium" => 47,
            "low" => 21,
            _ => 1,
        };
        assert_eq!(field(a, "event.severity"), sev);
        assert_eq!(field(a, "rule.id"), &f["rule"]);
        assert!(!field(a, "rule.name").as_str().unwrap().is_empty());
        assert!(!field(a, "rule.description").as_str().unwrap().is_empty());
        assert_eq!(field(a, "message"), &f["message"]);
        assert_eq!(
            field(a, "modtrace.exchange_ids"),
            &f["evidence"]["exchanges"]
        );
        assert_eq!(field(a, "modtrace.packet"), &f["evidence"]["packet"]);
        assert!(field(a, "modtrace.finding_id")
            .as_str()
            .unwrap()
            .contains(':'));
        assert_eq!(
            a.get("modtrace").and_then(|m| m.get("module")),
            f.get("module").filter(|m| !m.is_null())
        );
        if f["module"].is_string() {
            assert_eq!(field(a, "modtrace.version"), &f["version"]);
            assert!(field(a, "modtrace.op").is_string());
        }
    }
    let mut ids: Vec<&str> = alerts
        .iter()
        .map(|a| field(a, "modtrace.finding_id").as_str().unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), alerts.len(), "finding ids are unique");

    for e in &events {
        assert_eq!(field(e, "event.dataset"), "modtrace.exchange");
        assert_eq!(field(e, "event.outcome"), "success");
        let id = field(e, "modtrace.exchange_id").as_u64().unwrap();
        let x = exchanges
            .iter()
            .find(|x| x["id"] == id)
            .expect("its exchange");
        assert_eq!(field(e, "url.original"), &x["url"]);
        assert_eq!(field(e, "modtrace.op"), &x["op"]);
        assert_eq!(field(e, "@timestamp"), &x["start"]);
        assert!(
            field(e, "event.duration").as_u64().unwrap() > 0,
            "nanoseconds"
        );
        assert_eq!(field(e, "http.version"), "1.1");
        assert!(field(e, "user_agent.original").is_string());
        // The mirror's upstream leg carries the Basic credential: scheme and user only.
        if x["credential"].is_object() {
            assert_eq!(field(e, "modtrace.credential.scheme"), "Basic");
            assert_eq!(field(e, "modtrace.credential.user"), "mirror");
        }
    }
    assert!(events
        .iter()
        .any(|e| e["modtrace"].get("credential").is_some()));

    // Without --ecs-events: the alerts alone.
    let (_, out, _) = analyze(&[cap, "--format", "ecs"]);
    let only = lines(&out);
    assert_eq!(only.len(), findings.len());
    assert!(only.iter().all(|d| d["event"]["kind"] == "alert"));
}

#[test]
fn ecs_tls_fields_come_from_the_session_of_the_flow() {
    // A TLS 1.2 mirror whose self-signed certificate the mirror accepted: unverified-tls.
    let (_, out, _) = analyze(&[
        "captures/tls-mirror-selfsigned.pcap",
        "--format",
        "ecs",
        "--ecs-events",
    ]);
    let docs = lines(&out);
    let alert = docs
        .iter()
        .find(|d| d["rule"]["id"] == "unverified-tls")
        .expect("unverified-tls alert");
    assert_eq!(field(alert, "tls.version"), "1.2");
    assert_eq!(field(alert, "tls.version_protocol"), "tls");
    assert!(field(alert, "tls.cipher").is_string());
    assert!(field(alert, "tls.server.subject")
        .as_str()
        .unwrap()
        .contains("lab self-signed"));
    assert_eq!(
        field(alert, "tls.server.subject"),
        field(alert, "tls.server.issuer")
    );
    let hash = field(alert, "tls.server.hash.sha256").as_str().unwrap();
    assert!(
        hash.len() == 64
            && hash
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
    );
    assert_eq!(field(alert, "destination.ip"), "127.0.0.1");
    assert_eq!(field(alert, "network.protocol"), "tls");

    // HTTP/2 over TLS 1.3 opened with the key log: exchanges carry their session.
    let (_, out, _) = analyze(&[
        "captures/h2-proxy-tls13.pcap",
        "--keylog",
        "captures/h2-proxy-tls13.keys",
        "--ca-file",
        "captures/lab-pki/lab-ca.pem",
        "--format",
        "ecs",
        "--ecs-events",
    ]);
    let docs = lines(&out);
    let events: Vec<&Value> = docs
        .iter()
        .filter(|d| d["event"]["kind"] == "event")
        .collect();
    assert_eq!(events.len(), 6);
    for e in events {
        assert_eq!(field(e, "url.scheme"), "https");
        assert_eq!(field(e, "http.version"), "2");
        assert_eq!(field(e, "tls.version"), "1.3");
        assert_eq!(field(e, "tls.next_protocol"), "h2");
        assert!(field(e, "tls.server.subject")
            .as_str()
            .unwrap()
            .contains("lab valid"));
    }
}

#[test]
fn jsonl_report_is_every_exchange_and_finding_in_time_order() {
    for cap in [
        "captures/mirror-basic-auth.pcap",
        "captures/fallback-410.pcap",
    ] {
        let report = json_report(&[cap]);
        let n_ex = report["exchanges"].as_array().unwrap().len();
        let findings = report["findings"].as_array().unwrap();
        let (_, out, _) = analyze(&[cap, "--format", "jsonl"]);
        let docs = lines(&out);
        assert_eq!(docs.len(), n_ex + findings.len(), "{cap}: no summary line");
        let mut last = String::new();
        let (mut ex, mut fi) = (0, 0);
        for d in &docs {
            let t = match d["type"].as_str().unwrap() {
                "exchange" => {
                    ex += 1;
                    d["start"].as_str().unwrap()
                }
                "finding" => {
                    fi += 1;
                    let i = d["index"].as_u64().unwrap() as usize;
                    assert_eq!(d["rule"], findings[i]["rule"], "index into the report");
                    assert_eq!(d["message"], findings[i]["message"]);
                    d["evidence"]["time"].as_str().unwrap()
                }
                other => panic!("{cap}: unexpected type {other}"),
            };
            assert!(t >= last.as_str(), "{cap}: {t} after {last}");
            last = t.to_string();
        }
        assert_eq!((ex, fi), (n_ex, findings.len()));
        // A finding comes after the exchange that carried its first packet.
        for (pos, d) in docs
            .iter()
            .enumerate()
            .filter(|(_, d)| d["type"] == "finding")
        {
            let evidence = d["evidence"]["exchanges"].as_array().unwrap();
            if evidence.is_empty() {
                continue;
            }
            let at = docs
                .iter()
                .position(|x| {
                    x["type"] == "exchange"
                        && evidence.contains(&x["id"])
                        && x["packet"] == d["evidence"]["packet"]
                })
                .unwrap_or_else(|| panic!("{cap}: no exchange at the first packet of {d}"));
            assert!(at < pos, "{cap}: its first exchange before the finding {d}");
        }
    }
}

#[test]
fn no_output_format_carries_the_basic_auth_secret() {
    let b64 = base64::engine::general_purpose::STANDARD;
    let needles = [
        SECRET.to_string(),
        b64.encode(format!("mirror:{SECRET}")),
        b64.encode(SECRET),
        b64.encode(SECRET).trim_end_matches('=').to_string(),
    ];
    // The capture does hold it (as `Authorization: Basic ...`), or this test proves nothing.
    let pcap = std::fs::read(repo().join("captures/mirror-basic-auth.pcap")).unwrap();
    assert!(pcap
        .windows(needles[1].len())
        .any(|w| w == needles[1].as_bytes()));

    let keylog_run = [
        "captures/tls-mirror-selfsigned.pcap",
        "--keylog",
        "captures/tls-mirror-selfsigned.keys",
    ];
    for capture in [&["captures/mirror-basic-auth.pcap"][..], &keylog_run[..]] {
        for format in [
            &["--format", "text", "--color", "never"][..],
            &["--format", "json"],
            &["--format", "jsonl"],
            &["--format", "sarif"],
            &["--format", "ecs", "--ecs-events"],
        ] {
            let args = [capture, format].concat();
            let (_, out, err) = analyze(&args);
            assert!(!out.is_empty(), "{args:?}: some output");
            for n in &needles {
                assert!(!out.contains(n.as_str()), "{args:?}: stdout carries {n}");
                assert!(!err.contains(n.as_str()), "{args:?}: stderr carries {n}");
            }
        }
    }
}
