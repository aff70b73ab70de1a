//! The analyze command end to end on synthetic captures: exit codes, JSON names, errors.

mod common;
use common::*;
use serde_json::Value;

fn json_of(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("bad JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn json_report_has_the_documented_names() {
    let d = tempfile::tempdir().unwrap();
    let p = fallback_capture(d.path());
    let out = run(&[
        "analyze",
        p.to_str().unwrap(),
        "--format",
        "json",
        "--fail-on",
        "never",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j = json_of(&out);
    for k in [
        "files",
        "packets",
        "bytes",
        "first",
        "last",
        "link_types",
        "truncated_packets",
        "undecodable_packets",
    ] {
        assert!(j["capture"].get(k).is_some(), "capture.{k}");
    }
    assert_eq!(j["capture"]["link_types"], serde_json::json!(["ethernet"]));
    let ex = j["exchanges"].as_array().unwrap();
    assert_eq!(ex.len(), 2);
    let e0 = &ex[0];
    assert_eq!(
        e0["url"],
        "http://127.0.0.1:8082/example.test/%21util/@v/v0.2.0.zip"
    );
    assert_eq!(e0["status"], 410);
    assert_eq!(e0["client"], "127.0.0.1:40001");
    assert_eq!(e0["server"], "127.0.0.1:8082");
    assert_eq!(e0["op"], "zip");
    assert_eq!(e0["module"], "example.test/Util");
    assert_eq!(e0["version"], "v0.2.0");
    assert_eq!(e0["scheme"], "http");
    assert_eq!(e0["host"], "127.0.0.1:8082");
    assert!(e0["start"].as_str().unwrap().ends_with('Z'));
    for k in ["method", "bytes", "location", "duration_ms", "flow"] {
        assert!(e0.get(k).is_some(), "exchange.{k}");
    }
    assert_eq!(ex[1]["bytes"], 3000);
    let m = &j["modules"][0];
    assert_eq!(m["module"], "example.test/Util");
    assert_eq!(m["journey"][1]["after"]["kind"], "fallback");
    for k in ["op", "url", "server", "status", "scheme", "via", "upstream"] {
        assert!(m["journey"][0].get(k).is_some(), "hop.{k}");
    }
    assert!(m.get("h1").is_some() && m.get("mod_h1").is_some());
    let rules: Vec<&str> = j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    for r in [
        "plaintext-module-fetch",
        "credentials-in-plaintext",
        "no-checksum-verification",
        "proxy-fallback",
    ] {
        assert!(rules.contains(&r), "{r} in {rules:?}");
    }
    let f = &j["findings"][0];
    for k in [
        "rule", "severity", "message", "module", "version", "evidence",
    ] {
        assert!(f.get(k).is_some(), "finding.{k}");
    }
    assert!(f["evidence"]["packet"].as_u64().unwrap() >= 1);
}

#[test]
fn basic_auth_secret_never_printed() {
    let d = tempfile::tempdir().unwrap();
    let p = fallback_capture(d.path());
    for fmt in ["text", "json"] {
        let out = run(&["analyze", p.to_str().unwrap(), "--format", fmt]);
        let all = [out.stdout.clone(), out.stderr.clone()].concat();
        let s = String::from_utf8_lossy(&all);
        assert!(!s.contains("lab-secret-Zq7"), "{fmt} leaks the password");
        assert!(
            !s.contains("bWlycm9yOmxhYi1zZWNyZXQtWnE3"),
            "{fmt} leaks the header"
        );
        assert!(s.contains("mirror"), "{fmt} names the user");
    }
}

#[test]
fn exit_codes_follow_fail_on() {
    let d = tempfile::tempdir().unwrap();
    let p = fallback_capture(d.path());
    let p = p.to_str().unwrap();
    assert_eq!(
        run(&["analyze", p]).status.code(),
        Some(1),
        "high findings, default --fail-on high"
    );
    assert_eq!(
        run(&["analyze", p, "--fail-on", "critical"]).status.code(),
        Some(0)
    );
    assert_eq!(
        run(&["analyze", p, "--fail-on", "never"]).status.code(),
        Some(0)
    );
    // A capture with no Go traffic is clean.
    let clean = d.path().join("clean.pcap");
    write_pcap(
        &clean,
        &http_get(
            0,
            40000,
            ([127, 0, 0, 1], 80),
            "example.test",
            "/index.html",
            "",
            "200 OK",
            "",
            b"hi",
        ),
    );
    let out = run(&["analyze", clean.to_str().unwrap(), "--fail-on", "info"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn input_errors_exit_2_with_one_line() {
    let d = tempfile::tempdir().unwrap();
    let missing = d.path().join("nope.pcap");
    let out = run(&["analyze", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("modtrace: ") && err.trim_end().lines().count() == 1,
        "{err}"
    );
    let garbage = d.path().join("garbage.pcap");
    std::fs::write(&garbage, b"this is not a capture at all, just text\n").unwrap();
    let out = run(&["analyze", garbage.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a pcap or pcapng"));
    assert_eq!(run(&["analyze"]).status.code(), Some(2), "usage error");
    assert_eq!(
        run(&["analyze", "--format", "yaml", "x"]).status.code(),
        Some(2)
    );
}

#[test]
fn truncated_capture_is_analysed_with_a_warning() {
    let d = tempfile::tempdir().unwrap();
    let p = fallback_capture(d.path());
    let bytes = std::fs::read(&p).unwrap();
    let cut = d.path().join("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() - 700]).unwrap();
    let out = run(&["analyze", cut.to_str().unwrap(), "--format", "json"]);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("cut short"));
    let j = json_of(&out);
    assert_eq!(j["capture"]["files"][0]["truncated"], true);
    assert!(
        !j["exchanges"].as_array().unwrap().is_empty(),
        "the first exchange survives the cut"
    );
}

#[test]
fn gzip_and_several_files_merge_by_time() {
    use std::io::Write;
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("a.pcap");
    let b = d.path().join("b.pcap");
    write_pcap(
        &a,
        &http_get(
            5_000_000,
            40010,
            ([127, 0, 0, 1], 8081),
            "127.0.0.1:8081",
            "/example.test/hello/@v/v1.1.0.mod",
            "",
            "200 OK",
            "",
            b"module example.test/hello\n",
        ),
    );
    write_pcap(
        &b,
        &http_get(
            1_000_000,
            40011,
            ([127, 0, 0, 1], 8081),
            "127.0.0.1:8081",
            "/example.test/hello/@v/v1.1.0.info",
            "",
            "200 OK",
            "",
            b"{}",
        ),
    );
    let gz = d.path().join("b.pcap.gz");
    let mut e = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::default(),
    );
    e.write_all(&std::fs::read(&b).unwrap()).unwrap();
    e.finish().unwrap();
    let out = run(&[
        "analyze",
        a.to_str().unwrap(),
        gz.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let j = json_of(&out);
    let ops: Vec<&str> = j["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["op"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["info", "mod"], "merged by time, not by file order");
    assert_eq!(j["capture"]["files"][1]["gzip"], true);
}

#[test]
fn readme_documents_every_rule_and_starts_with_the_two_commands() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    for r in modtrace::detect::RULES {
        assert!(
            readme.contains(&format!("| `{}` | {} |", r.id, r.severity)),
            "README lacks rule {}",
            r.id
        );
    }
    let first_block = readme
        .split("```sh")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    assert!(
        first_block.contains("cargo run --release -- analyze captures/"),
        "{first_block}"
    );
    assert!(first_block.contains("cargo test"));
    let capture = first_block
        .split_whitespace()
        .find(|w| w.starts_with("captures/"))
        .unwrap();
    assert!(repo().join(capture).exists(), "{capture} is bundled");
    // The newcomer's command passes: run it as written (the binary cargo would run).
    let line = first_block
        .lines()
        .find(|l| l.contains("cargo run"))
        .unwrap();
    let args: Vec<&str> = line
        .split(" -- ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .collect();
    let out = modtrace().args(&args).current_dir(repo()).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("proxy-fallback"));
}

/// A key log whose secrets are wrong for their session: every record fails to authenticate,
/// is counted and reported (tls-decrypt-failed), and nothing is guessed (no exchange). A key
/// log without any line is refused with a clear message.
#[test]
fn wrong_secrets_give_tls_decrypt_failed_and_no_exchanges() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(repo().join("captures/tls13-verified.keys")).unwrap();
    // Same labels and client random, every secret's last hex digit changed.
    let bad: String = good
        .lines()
        .map(|l| {
            let mut s = l.to_string();
            let last = s.pop().unwrap();
            s.push(if last == '0' { '1' } else { '0' });
            s + "\n"
        })
        .collect();
    let keys = dir.path().join("wrong.keys");
    std::fs::write(&keys, bad).unwrap();
    let cap = repo().join("captures/tls13-verified.pcap");
    let out = run(&[
        "analyze",
        cap.to_str().unwrap(),
        "--keylog",
        keys.to_str().unwrap(),
        "--format",
        "json",
        "--fail-on",
        "never",
    ]);
    let j = json_of(&out);
    let rules: Vec<&str> = j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert!(rules.contains(&"tls-decrypt-failed"), "{rules:?}");
    assert!(j["exchanges"].as_array().unwrap().is_empty());
    let d = &j["tls"][0]["decryption"];
    assert!(d["records_failed"].as_u64().unwrap() > 0, "{d}");
    assert_eq!(d["records_decrypted"], 0);

    // The right key log: no failure.
    let out = run(&[
        "analyze",
        cap.to_str().unwrap(),
        "--keylog",
        repo()
            .join("captures/tls13-verified.keys")
            .to_str()
            .unwrap(),
        "--format",
        "json",
        "--fail-on",
        "never",
    ]);
    let j = json_of(&out);
    assert_eq!(j["tls"][0]["decryption"]["records_failed"], 0);
    assert_eq!(j["exchanges"].as_array().unwrap().len(), 6);

    // Not a key log at all.
    let junk = dir.path().join("junk.keys");
    std::fs::write(&junk, "hello\n").unwrap();
    let out = run(&[
        "analyze",
        cap.to_str().unwrap(),
        "--keylog",
        junk.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no key log lines"));
}

/// The README's TUI key table lists every key binding of the app (the same table the footer
/// and `?` use).
#[test]
fn readme_lists_every_tui_key() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    for b in modtrace::tui::app::KEYS
        .iter()
        .chain(modtrace::tui::app::DEMO_KEYS)
    {
        assert!(
            readme.contains(&format!("| `{}` | {} |", b.label, b.help)),
            "README lacks the TUI key {} ({})",
            b.label,
            b.help
        );
    }
}

/// `modtrace explain RULE` prints the meaning and fix of every rule modtrace has; an unknown
/// id exits 2; without an id every rule is listed.
#[test]
fn explain_has_a_text_for_every_rule() {
    use modtrace::detect::rules::RULES;
    assert!(RULES.len() >= 20);
    let list = run(&["explain"]);
    assert_eq!(list.status.code(), Some(0));
    let list = String::from_utf8_lossy(&list.stdout);
    for t in RULES {
        assert!(
            !t.meaning.trim().is_empty() && !t.fix.trim().is_empty(),
            "{}",
            t.id
        );
        assert!(list.contains(t.id), "explain lists {}", t.id);
        let out = run(&["explain", t.id]);
        assert_eq!(out.status.code(), Some(0), "{}", t.id);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(t.meaning) && text.contains(t.fix), "{}", t.id);
    }
    let bad = run(&["explain", "no-such-rule"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("modtrace explain"));
}
