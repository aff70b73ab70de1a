//! Policy end to end: private-module-leak and unexpected-proxy on bundled captures, severity
//! overrides and ignores in every output and in the exit status, policy errors (exit 2), and
//! redaction of secrets in every format (`--show-secrets` in text only).

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;

fn capture(name: &str) -> String {
    repo().join("captures").join(name).display().to_string()
}

fn analyze(args: &[&str]) -> Output {
    let mut a = vec!["analyze"];
    a.extend_from_slice(args);
    run(&a)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.extend_from_slice(&["--format", "json", "--fail-on", "never"]);
    let o = analyze(&a);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).expect("JSON report")
}

/// (rule, module, version) of every finding.
fn findings(j: &Value) -> Vec<(String, String, String)> {
    j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["module"].as_str().unwrap_or("-").to_string(),
                f["version"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect()
}

fn of_rule(j: &Value, rule: &str) -> Vec<(String, String)> {
    findings(j)
        .into_iter()
        .filter(|f| f.0 == rule)
        .map(|f| (f.1, f.2))
        .collect()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn private_module_leak_needs_private_patterns() {
    let pcap = capture("plaintext-proxy.pcap");
    let without = json(&[&pcap]);
    assert!(of_rule(&without, "private-module-leak").is_empty());
    assert!(of_rule(&without, "unexpected-proxy").is_empty());

    let with = json(&[&pcap, "--private", "example.test/Hello"]);
    assert_eq!(
        of_rule(&with, "private-module-leak"),
        [("example.test/Hello".to_string(), "v1.1.0".to_string())],
        "Hello leaked to the proxy, Util is not private"
    );
    let leak = with["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "private-module-leak")
        .unwrap();
    assert_eq!(leak["severity"], "high");
    // One finding per module and server: the info, mod and zip of Hello are its evidence.
    assert_eq!(leak["evidence"]["exchanges"].as_array().unwrap().len(), 3);
    assert!(leak["message"]
        .as_str()
        .unwrap()
        .contains("http://127.0.0.1:8081"));
    // The rest of the findings are what they were.
    let mut rest: Vec<_> = findings(&with)
        .into_iter()
        .filter(|f| f.0 != "private-module-leak")
        .collect();
    let mut before = findings(&without);
    rest.sort();
    before.sort();
    assert_eq!(rest, before);

    // GOPRIVATE-style prefixes and globs: `*.test` covers every example.test module; a
    // pattern must match whole path elements (example.test/Hell is not a prefix).
    let all = json(&[&pcap, "--private", "*.test"]);
    assert_eq!(of_rule(&all, "private-module-leak").len(), 2);
    let none = json(&[&pcap, "--private", "example.test/Hell,other.test"]);
    assert!(of_rule(&none, "private-module-leak").is_empty());
}

#[test]
fn allowed_proxies_exempt_leaks_and_define_unexpected_proxies() {
    let d = tempfile::tempdir().unwrap();
    let pcap = capture("plaintext-proxy.pcap");
    // The capture's proxy is the organisation's own: private paths may go there.
    let own = write(
        d.path(),
        "own.toml",
        "private = [\"example.test/Hello\"]\nallowed_proxies = [\"http://127.0.0.1:8081\"]\n",
    );
    let j = json(&[&pcap, "--policy", own.to_str().unwrap()]);
    assert!(
        of_rule(&j, "private-module-leak").is_empty(),
        "{:?}",
        findings(&j)
    );
    assert!(of_rule(&j, "unexpected-proxy").is_empty());
    // Another allow list: the capture's proxy is unexpected for every module it served, and
    // the private module leaked to it.
    let other = write(
        d.path(),
        "other.toml",
        "private = \"example.test/Hello\"\nallowed_proxies = [\"https://proxy.corp.example\"]\n",
    );
    let j = json(&[&pcap, "--policy", other.to_str().unwrap()]);
    let mut unexpected = of_rule(&j, "unexpected-proxy");
    unexpected.sort();
    assert_eq!(
        unexpected,
        [
            ("example.test/Hello".to_string(), "v1.1.0".to_string()),
            ("example.test/Util".to_string(), "v0.2.0".to_string())
        ]
    );
    assert_eq!(of_rule(&j, "private-module-leak").len(), 1);
    let sev: Vec<&str> = j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "unexpected-proxy")
        .map(|f| f["severity"].as_str().unwrap())
        .collect();
    assert_eq!(sev, ["medium", "medium"]);

    // A mirror and its upstream: the upstream serves the mirror, so both must be listed.
    let mirror = capture("mirror-basic-auth.pcap");
    let one = write(
        d.path(),
        "one.toml",
        "allowed_proxies = [\"http://127.0.0.1:8086\"]\n",
    );
    let j = json(&[&mirror, "--policy", one.to_str().unwrap()]);
    assert_eq!(
        of_rule(&j, "unexpected-proxy").len(),
        2,
        "{:?}",
        findings(&j)
    );
    assert!(j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "unexpected-proxy")
        .all(|f| f["message"].as_str().unwrap().contains("127.0.0.1:8087")));
    let both = write(
        d.path(),
        "both.toml",
        "allowed_proxies = [\"http://127.0.0.1:8086\", \"http://127.0.0.1:8087/\"]\n",
    );
    let j = json(&[&mirror, "--policy", both.to_str().unwrap()]);
    assert!(of_rule(&j, "unexpected-proxy").is_empty());
}

#[test]
fn go_env_private_patterns_follow_go_defaults() {
    let d = tempfile::tempdir().unwrap();
    let pcap = capture("plaintext-proxy.pcap");
    let env = |name: &str, vars: &str| {
        write(
            d.path(),
            name,
            &format!("{{\"GOPROXY\":\"http://127.0.0.1:8081\",\"GOSUMDB\":\"off\",{vars}}}"),
        )
    };
    // GOPRIVATE covers the proxy check when GONOPROXY is empty (Go's default).
    let e = env(
        "private.json",
        r#""GOPRIVATE":"example.test/Util","GONOPROXY":"","GONOSUMDB":"""#,
    );
    let j = json(&[&pcap, "--go-env", e.to_str().unwrap()]);
    assert_eq!(
        of_rule(&j, "private-module-leak"),
        [("example.test/Util".to_string(), "v0.2.0".to_string())]
    );
    // GOPROXY names the capture's proxy: nothing is unexpected.
    assert!(of_rule(&j, "unexpected-proxy").is_empty());
    // GONOPROXY=none: private modules may go through GOPROXY (`go help private`).
    let e = env(
        "noproxy.json",
        r#""GOPRIVATE":"example.test/Util","GONOPROXY":"none""#,
    );
    let j = json(&[&pcap, "--go-env", e.to_str().unwrap()]);
    assert!(of_rule(&j, "private-module-leak").is_empty());
    // --private adds to the environment's patterns whatever GONOPROXY says.
    let j = json(&[
        &pcap,
        "--go-env",
        e.to_str().unwrap(),
        "--private",
        "example.test/Hello",
    ]);
    assert_eq!(of_rule(&j, "private-module-leak").len(), 1);
    // GOPROXY never allows a proxy by itself; with an allow list, findings say whether the
    // captured machine's GOPROXY named the proxy.
    let e = env("goproxy.json", r#""GOPRIVATE":"""#);
    let pol = write(
        d.path(),
        "corp.toml",
        "allowed_proxies = [\"https://proxy.corp.example\"]\n",
    );
    let j = json(&[&pcap, "--go-env", e.to_str().unwrap()]);
    assert!(of_rule(&j, "unexpected-proxy").is_empty());
    let j = json(&[
        &pcap,
        "--go-env",
        e.to_str().unwrap(),
        "--policy",
        pol.to_str().unwrap(),
    ]);
    let msgs: Vec<&str> = j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "unexpected-proxy")
        .map(|f| f["message"].as_str().unwrap())
        .collect();
    assert_eq!(msgs.len(), 2);
    assert!(msgs
        .iter()
        .all(|m| m.ends_with("the GOPROXY of --go-env names it")));
}

#[test]
fn direct_fetches_after_go_get_are_neither_leaks_nor_proxies() {
    // GOPROXY=direct, GOINSECURE: go-get discovery over HTTPS, then the module's origin
    // answers the GOPROXY protocol itself (the `mod` VCS) over plain HTTP.
    let d = tempfile::tempdir().unwrap();
    let pol = write(
        d.path(),
        "p.toml",
        "private = [\"lab.test\"]\nallowed_proxies = []\n",
    );
    let keys = capture("goinsecure-goget.keys");
    let pcap = capture("goinsecure-goget.pcap");
    let j = json(&[&pcap, "--keylog", &keys, "--policy", pol.to_str().unwrap()]);
    assert!(
        of_rule(&j, "private-module-leak").is_empty(),
        "{:?}",
        findings(&j)
    );
    assert!(
        of_rule(&j, "unexpected-proxy").is_empty(),
        "{:?}",
        findings(&j)
    );
    // Without the key log the discovery is not seen: the origin looks like any proxy.
    let j = json(&[&pcap, "--policy", pol.to_str().unwrap()]);
    assert_eq!(
        of_rule(&j, "private-module-leak").len(),
        2,
        "{:?}",
        findings(&j)
    );
}

const POLICY: &str = r#"
private = ["example.test/Hello"]

[severity]
private-module-leak = "low"
no-checksum-verification = "high"

[[ignore]]
rule = "plaintext-module-fetch"
module = "example.test/*"
reason = "the lab proxy is plain HTTP on loopback"

[[ignore]]
rule = "no-checksum-verification"
module = "example.test/Util"
reason = "Util is pinned by go.sum"
until = 2999-12-31
"#;

#[test]
fn overrides_and_ignores_reach_every_output_and_the_exit_status() {
    let d = tempfile::tempdir().unwrap();
    let pcap = capture("plaintext-proxy.pcap");
    let p = write(d.path(), "policy.toml", POLICY);
    let p = p.to_str().unwrap();

    let j = json(&[&pcap, "--policy", p]);
    let got: Vec<(String, String)> = j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["severity"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("no-checksum-verification".into(), "high".into()),
            ("private-module-leak".into(), "low".into())
        ],
        "overridden, ignored, and sorted most severe first"
    );
    let ignored = j["capture"]["ignored_findings"].as_array().unwrap();
    assert_eq!(ignored.len(), 3);
    assert!(ignored
        .iter()
        .any(|i| i["rule"] == "no-checksum-verification"
            && i["module"] == "example.test/Util"
            && i["reason"] == "Util is pinned by go.sum"
            && i["until"] == "2999-12-31"));
    assert_eq!(
        ignored
            .iter()
            .filter(|i| i["rule"] == "plaintext-module-fetch")
            .count(),
        2
    );

    // Text: the same findings, the ignored ones in the footer with their reasons.
    let o = analyze(&[&pcap, "--policy", p, "--color", "never"]);
    let t = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "a high finding fails by default");
    assert!(t.contains("Findings (2: 1 high, 1 low)"), "{t}");
    assert!(t.contains("LOW      private-module-leak"), "{t}");
    assert!(t.contains("Ignored by the policy (3)"), "{t}");
    assert!(t.contains("plaintext-module-fetch example.test/Hello@v1.1.0: the lab proxy is plain HTTP on loopback"), "{t}");
    assert!(
        t.contains("Util is pinned by go.sum (until 2999-12-31)"),
        "{t}"
    );

    // Other machine formats see the overridden severities and no ignored finding (SARIF: none
    // that is not marked suppressed).
    let machine = |format: &str| -> Vec<Value> {
        let o = analyze(&[
            &pcap,
            "--policy",
            p,
            "--format",
            format,
            "--fail-on",
            "never",
        ]);
        assert_eq!(o.status.code(), Some(0), "{format}: {}", stderr(&o));
        let out = stdout(&o);
        if format == "sarif" {
            let v: Value = serde_json::from_str(&out).unwrap();
            return v["runs"][0]["results"].as_array().unwrap().clone();
        }
        out.lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .collect()
    };
    // JSON Lines is in time order.
    let mut jsonl: Vec<(String, String)> = machine("jsonl")
        .iter()
        .filter(|v| v["type"] == "finding")
        .map(|v| (v["rule"].to_string(), v["severity"].to_string()))
        .collect();
    jsonl.sort();
    assert_eq!(
        jsonl,
        [
            ("\"no-checksum-verification\"".into(), "\"high\"".into()),
            ("\"private-module-leak\"".into(), "\"low\"".into())
        ]
    );
    // SARIF keeps the accepted findings as suppressed results (kind external, the reason as
    // the justification), after the others.
    let results = machine("sarif");
    let (suppressed, open): (Vec<&Value>, Vec<&Value>) = results
        .iter()
        .partition(|v| v.get("suppressions").is_some());
    let mut accepted: Vec<(String, String)> = suppressed
        .iter()
        .map(|v| {
            let s = &v["suppressions"][0];
            assert_eq!(s["kind"], "external", "{v}");
            assert_eq!(s["status"], "accepted", "{v}");
            (
                v["ruleId"].as_str().unwrap_or("?").to_string(),
                s["justification"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect();
    accepted.sort();
    assert_eq!(accepted.len(), 3, "{accepted:?}");
    assert!(accepted.contains(&(
        "no-checksum-verification".into(),
        "Util is pinned by go.sum".into()
    )));
    assert_eq!(
        accepted
            .iter()
            .filter(|(r, _)| r == "plaintext-module-fetch")
            .count(),
        2
    );
    assert!(
        results
            .iter()
            .position(|v| v.get("suppressions").is_some())
            .is_some_and(|first| first == open.len()),
        "the suppressed results come last"
    );
    let sarif: Vec<(String, String)> = open
        .iter()
        .map(|v| {
            (
                v["ruleId"].as_str().unwrap_or("?").to_string(),
                v["properties"]["severity"]
                    .as_str()
                    .unwrap_or("?")
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(
        sarif,
        [
            ("no-checksum-verification".into(), "high".into()),
            ("private-module-leak".into(), "low".into())
        ]
    );
    let mut ecs: Vec<String> = machine("ecs")
        .iter()
        .map(|v| v["rule"]["id"].as_str().unwrap_or("?").to_string())
        .collect();
    ecs.sort();
    assert_eq!(ecs, ["no-checksum-verification", "private-module-leak"]);

    // Exit status: --fail-on sees the findings after the policy.
    let fail_on = |level: &str| {
        analyze(&[&pcap, "--policy", p, "--fail-on", level])
            .status
            .code()
    };
    assert_eq!(fail_on("high"), Some(1));
    assert_eq!(fail_on("critical"), Some(0));
    // Without the no-checksum-verification override nothing high is left.
    let lenient = write(
        d.path(),
        "lenient.toml",
        &POLICY.replace("no-checksum-verification = \"high\"\n", ""),
    );
    let o = analyze(&[
        &pcap,
        "--policy",
        lenient.to_str().unwrap(),
        "--fail-on",
        "high",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    // The same capture without a policy fails.
    assert_eq!(
        analyze(&[&pcap, "--fail-on", "high"]).status.code(),
        Some(1)
    );
}

#[test]
fn a_capture_without_high_findings_exits_zero_until_the_policy_raises_one() {
    // HTTPS with a verified certificate; only medium no-checksum-verification (GOSUMDB=off).
    let d = tempfile::tempdir().unwrap();
    let pcap = capture("tls13-verified.pcap");
    let keys = capture("tls13-verified.keys");
    let ca = repo().join("captures/lab-pki/lab-ca.pem");
    let base = [
        pcap.as_str(),
        "--keylog",
        keys.as_str(),
        "--ca-file",
        ca.to_str().unwrap(),
        "--fail-on",
        "high",
    ];
    let o = analyze(&base);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    // Private patterns that match nothing here change nothing.
    let p = write(d.path(), "p.toml", "private = [\"*.corp.example\"]\n");
    let mut args = base.to_vec();
    args.extend(["--policy", p.to_str().unwrap()]);
    assert_eq!(analyze(&args).status.code(), Some(0));
    // The organisation treats an unverified zip as high: the same capture fails.
    let p = write(
        d.path(),
        "strict.toml",
        "[severity]\nno-checksum-verification = \"high\"\n",
    );
    let mut args = base.to_vec();
    args.extend(["--policy", p.to_str().unwrap()]);
    let o = analyze(&args);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("Findings (2: 2 high)"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn expired_ignores_warn_and_count_again() {
    let d = tempfile::tempdir().unwrap();
    let pcap = capture("plaintext-proxy.pcap");
    let p = write(
        d.path(),
        "p.toml",
        "[[ignore]]\nrule = \"plaintext-module-fetch\"\nreason = \"temporary\"\nuntil = 2001-01-01\n",
    );
    let o = analyze(&[&pcap, "--policy", p.to_str().unwrap(), "--format", "json"]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("warning") && e.contains("line 1") && e.contains("expired on 2001-01-01"),
        "{e}"
    );
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(of_rule(&j, "plaintext-module-fetch").len(), 2);
    assert!(j["capture"]["ignored_findings"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[test]
fn bad_policies_exit_two_with_the_file_and_line() {
    let d = tempfile::tempdir().unwrap();
    let pcap = capture("plaintext-proxy.pcap");
    let cases: &[(&str, &str, &str)] = &[
        (
            "unknown-key.toml",
            "private = []\ncolor = \"red\"\n",
            "line 2",
        ),
        (
            "unknown-rule.toml",
            "[severity]\nno-such-rule = \"low\"\n",
            "unknown rule `no-such-rule`",
        ),
        (
            "bad-severity.toml",
            "[severity]\nproxy-fallback = \"urgent\"\n",
            "line 2",
        ),
        (
            "no-reason.toml",
            "[[ignore]]\nrule = \"proxy-fallback\"\n",
            "reason",
        ),
        (
            "bad-pattern.toml",
            "private = [\"example.test/[\"]\n",
            "not a valid pattern",
        ),
        (
            "garbage.toml",
            "\u{0}\u{1}PK\u{3}\u{4} not toml [[[",
            "line 1",
        ),
        ("binary.toml", "", ""),
    ];
    for (name, text, want) in cases {
        let p = d.path().join(name);
        if *name == "binary.toml" {
            std::fs::write(&p, [0xff, 0xfe, 0x00, 0x9c]).unwrap();
        } else {
            std::fs::write(&p, text).unwrap();
        }
        let o = analyze(&[&pcap, "--policy", p.to_str().unwrap()]);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{name}: {e}");
        assert!(e.starts_with("modtrace: --policy "), "{name}: {e}");
        assert!(e.contains(name) && e.contains(want), "{name}: {e}");
        assert_eq!(e.trim_end().lines().count(), 1, "{name}: one line: {e}");
        assert!(o.stdout.is_empty(), "{name}: no report");
    }
    let o = analyze(&[
        &pcap,
        "--policy",
        d.path().join("missing.toml").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("missing.toml"));
    let o = analyze(&[&pcap, "--private", "a[b"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).starts_with("modtrace: --private a[b: "),
        "{}",
        stderr(&o)
    );
}

#[test]
fn missing_or_garbage_captures_exit_two_with_a_policy_too() {
    let d = tempfile::tempdir().unwrap();
    let pol = write(d.path(), "p.toml", POLICY);
    let garbage = write(d.path(), "garbage.pcap", "this is not a capture\n");
    for f in [
        garbage.to_str().unwrap(),
        d.path().join("missing.pcap").to_str().unwrap(),
    ] {
        let o = analyze(&[f, "--policy", pol.to_str().unwrap(), "--fail-on", "info"]);
        assert_eq!(o.status.code(), Some(2), "{f}: {}", stderr(&o));
        assert!(stderr(&o).starts_with("modtrace: "), "{}", stderr(&o));
    }
}

/// The lab mirror's upstream credential: `mirror:lab-secret-Zq7`.
const LAB_SECRET: &str = "lab-secret-Zq7";
const LAB_SECRET_B64: &str = "bWlycm9yOmxhYi1zZWNyZXQtWnE3";

#[test]
fn secrets_are_redacted_in_every_format_and_shown_only_in_text_on_request() {
    let pcap = capture("mirror-basic-auth.pcap");
    for show in [false, true] {
        for format in ["text", "json", "jsonl", "sarif", "ecs"] {
            let mut args = vec![pcap.as_str(), "--format", format, "--fail-on", "never"];
            if show {
                args.push("--show-secrets");
            }
            if format == "ecs" {
                args.push("--ecs-events");
            }
            let o = analyze(&args);
            assert_eq!(o.status.code(), Some(0), "{format}: {}", stderr(&o));
            let out = stdout(&o);
            let leaked = out.contains(LAB_SECRET) || out.contains(LAB_SECRET_B64);
            if show && format == "text" {
                assert!(leaked, "--show-secrets shows the credential in text: {out}");
                assert!(out.contains("Basic bWlycm9yOmxhYi1zZWNyZXQtWnE3 (mirror:lab-secret-Zq7)  to 127.0.0.1:8087"), "{out}");
            } else {
                assert!(!leaked, "{format} (show-secrets {show}) leaks the secret");
            }
            if show && format != "text" {
                assert!(stderr(&o).contains("text output only"), "{format}");
            }
        }
    }
    // The credential is still named, with its user.
    let j = json(&[&pcap]);
    let c = j["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|x| x["credential"].as_object().cloned())
        .unwrap();
    assert_eq!(c["scheme"], "Basic");
    assert_eq!(c["user"], "mirror");
    assert_eq!(
        c.keys().map(String::as_str).collect::<Vec<_>>(),
        ["scheme", "source", "user"]
    );
}

/// A zip a proxy redirects to a presigned blob URL, then a request with a token in its query.
fn token_capture(dir: &Path) -> PathBuf {
    let p = dir.join("token.pcap");
    let blob = "/blob/x.zip?X-Amz-Credential=AKIDLAB&X-Amz-Signature=f00d";
    let mut frames = Vec::new();
    frames.extend(http_get(
        1_000_000,
        40001,
        ([127, 0, 0, 1], 8082),
        "127.0.0.1:8082",
        "/example.test/x/@v/v1.0.0.zip",
        "",
        "302 Found",
        &format!("Location: http://127.0.0.1:8090{blob}\r\n"),
        b"",
    ));
    frames.extend(http_get(
        2_000_000,
        40002,
        ([127, 0, 0, 1], 8090),
        "127.0.0.1:8090",
        blob,
        "",
        "200 OK",
        "Content-Type: application/zip\r\n",
        &[0x50; 100],
    ));
    frames.extend(http_get(
        3_000_000,
        40003,
        ([127, 0, 0, 1], 8083),
        "127.0.0.1:8083",
        "/example.test/y/@v/list?token=abc&x=1",
        "",
        "200 OK",
        "",
        b"v1.0.0\n",
    ));
    write_pcap(&p, &frames);
    p
}

#[test]
fn token_query_parameters_are_masked() {
    let d = tempfile::tempdir().unwrap();
    let p = token_capture(d.path());
    let p = p.to_str().unwrap();
    let j = json(&[p]);
    let x = j["exchanges"].as_array().unwrap();
    let blob = "http://127.0.0.1:8090/blob/x.zip?X-Amz-Credential=***&X-Amz-Signature=***";
    assert_eq!(x[0]["location"], blob);
    assert_eq!(x[1]["url"], blob);
    assert_eq!(
        x[2]["url"],
        "http://127.0.0.1:8083/example.test/y/@v/list?token=***&x=1"
    );
    assert_eq!(x[2]["credential"]["source"], "query");
    assert_eq!(x[2]["credential"]["scheme"], "token");
    let all = serde_json::to_string(&j).unwrap();
    for secret in ["abc", "AKIDLAB", "f00d"] {
        assert!(!all.contains(secret), "json has {secret}");
    }
    // The redirect is still followed: the blob request continues the zip's journey.
    assert_eq!(x[1]["redirect_from"], 1);
    assert_eq!(x[1]["op"], "zip");
    // A token sent over plain HTTP is a credential in plaintext.
    assert!(findings(&j)
        .iter()
        .any(|f| f.0 == "credentials-in-plaintext"));
    let text = stdout(&analyze(&[p, "--fail-on", "never"]));
    assert!(text.contains("X-Amz-Signature=***"), "{text}");
    assert!(
        !text.contains("abc") && !text.contains("f00d") && !text.contains("AKIDLAB"),
        "{text}"
    );
    // --show-secrets: the URLs as sent and the tokens, in text only.
    let text = stdout(&analyze(&[p, "--fail-on", "never", "--show-secrets"]));
    assert!(
        text.contains("query: token=abc  to 127.0.0.1:8083"),
        "{text}"
    );
    assert!(
        text.contains("blob/x.zip?X-Amz-Credential=AKIDLAB&X-Amz-Signature=f00d"),
        "{text}"
    );

    // A redirect by an allowed proxy: its blob store counts as the proxy.
    let pol = write(
        d.path(),
        "p.toml",
        "private = [\"example.test/x\"]\nallowed_proxies = [\"http://127.0.0.1:8082\", \"http://127.0.0.1:8083\"]\n",
    );
    let j = json(&[p, "--policy", pol.to_str().unwrap()]);
    assert!(
        of_rule(&j, "unexpected-proxy").is_empty(),
        "{:?}",
        findings(&j)
    );
    assert!(
        of_rule(&j, "private-module-leak").is_empty(),
        "{:?}",
        findings(&j)
    );
    // Not allowed: the proxy and its blob store both saw the private path; the blob store
    // served the zip.
    let pol = write(
        d.path(),
        "q.toml",
        "private = [\"example.test/x\"]\nallowed_proxies = [\"http://127.0.0.1:8083\"]\n",
    );
    let j = json(&[p, "--policy", pol.to_str().unwrap()]);
    assert_eq!(
        of_rule(&j, "private-module-leak").len(),
        2,
        "{:?}",
        findings(&j)
    );
    assert_eq!(
        of_rule(&j, "unexpected-proxy").len(),
        1,
        "{:?}",
        findings(&j)
    );
}
