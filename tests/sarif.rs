//! `modtrace analyze --format sarif` on bundled captures: every log validates against the
//! official OASIS SARIF 2.1.0 schema (tests/sarif-schema-2.1.0.json, draft-04), and its
//! results are the findings of `--format json`, one for one.

mod common;

use common::{modtrace, repo};
use modtrace::detect::RULES;
use serde_json::Value;
use std::collections::HashSet;
use std::path::Path;
use std::sync::OnceLock;

fn validator() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| {
        let text = std::fs::read_to_string(repo().join("tests/sarif-schema-2.1.0.json"))
            .expect("tests/sarif-schema-2.1.0.json");
        let schema: Value = serde_json::from_str(&text).expect("schema is JSON");
        assert_eq!(
            schema["id"],
            "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
        );
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft4)
            .should_validate_formats(true)
            .build(&schema)
            .expect("the SARIF schema compiles")
    })
}

/// Schema errors of a SARIF log, one line each (empty when valid).
fn schema_errors(log: &Value) -> Vec<String> {
    validator()
        .iter_errors(log)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// Runs `modtrace analyze ARGS` in the repository; (exit code, stdout as JSON).
fn analyze(args: &[&str], dir: &Path) -> (i32, Value) {
    let out = modtrace()
        .current_dir(dir)
        .arg("analyze")
        .args(args)
        .output()
        .expect("run modtrace");
    let code = out.status.code().unwrap_or(-1);
    assert!(
        code == 0 || code == 1,
        "modtrace analyze {args:?}: exit {code}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "modtrace analyze {args:?}: not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (code, v)
}

fn level_of(severity: &str) -> &'static str {
    match severity {
        "critical" | "high" => "error",
        "medium" => "warning",
        "low" | "info" => "note",
        other => panic!("severity {other}"),
    }
}

fn sumdb_key() -> String {
    std::fs::read_to_string(repo().join("captures/lab-sumdb.vkey"))
        .unwrap()
        .trim()
        .to_string()
}

/// Bundled captures and extra arguments, with the findings each must give (at least).
fn cases() -> Vec<(Vec<String>, usize)> {
    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        (s(&["captures/fallback-410.pcap"]), 1),
        (s(&["captures/mirror-basic-auth.pcap"]), 7),
        (
            s(&["captures/tamper-sumdb-on.pcap", "--sumdb-key", &sumdb_key()]),
            1,
        ),
        (s(&["captures/plaintext-proxy.pcap"]), 1),
        (s(&["captures/mirrors-disagree.pcap"]), 10),
        (s(&["captures/connect-proxy-h2.pcapng"]), 3),
        (s(&["captures/tls13-verified.pcap"]), 1),
    ]
}

#[test]
fn sarif_of_bundled_captures_validates_and_matches_json_findings() {
    let root = repo();
    for (args, at_least) in cases() {
        let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
        let (json_code, json) = analyze(&[&a[..], &["--format", "json"][..]].concat(), &root);
        a.extend(["--format", "sarif"]);
        let (code, log) = analyze(&a, &root);
        let errors = schema_errors(&log);
        assert!(
            errors.is_empty(),
            "{args:?}: schema errors:\n{}",
            errors.join("\n")
        );
        assert_eq!(code, json_code, "{args:?}: same exit code as --format json");

        assert_eq!(log["version"], "2.1.0");
        let runs = log["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 1, "one run");
        let run = &runs[0];
        let driver = &run["tool"]["driver"];
        assert_eq!(driver["name"], "modtrace");
        assert_eq!(driver["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(driver["rules"].as_array().unwrap().len(), RULES.len());
        assert_eq!(run["invocations"][0]["executionSuccessful"], true);

        let findings = json["findings"].as_array().unwrap();
        let results = run["results"].as_array().unwrap();
        assert!(
            findings.len() >= at_least,
            "{args:?}: {} findings",
            findings.len()
        );
        assert_eq!(
            results.len(),
            findings.len(),
            "{args:?}: one result per finding"
        );
        let capture = args[0].as_str();
        let mut prints = HashSet::new();
        for (r, f) in results.iter().zip(findings) {
            assert_eq!(r["ruleId"], f["rule"], "{args:?}");
            assert_eq!(
                r["level"],
                level_of(f["severity"].as_str().unwrap()),
                "{args:?}"
            );
            assert_eq!(r["message"]["text"], f["message"]);
            let idx = r["ruleIndex"].as_u64().unwrap() as usize;
            assert_eq!(
                driver["rules"][idx]["id"], r["ruleId"],
                "ruleIndex points at the rule"
            );
            // Without --go-mod the one location is the capture, with the evidence packet.
            let locs = r["locations"].as_array().unwrap();
            assert_eq!(locs.len(), 1);
            let pl = &locs[0]["physicalLocation"];
            assert_eq!(
                pl["artifactLocation"]["uri"], capture,
                "relative path as given"
            );
            let ai = pl["artifactLocation"]["index"].as_u64().unwrap() as usize;
            assert_eq!(run["artifacts"][ai]["location"]["uri"], capture);
            assert_eq!(locs[0]["properties"]["packet"], f["evidence"]["packet"]);
            assert!(
                pl["region"]["byteLength"].as_u64().unwrap() > 16,
                "the packet's record"
            );
            match (f["module"].as_str(), f["version"].as_str()) {
                (Some(m), v) => {
                    let ll = &locs[0]["logicalLocations"][0];
                    let fq = v.map_or(m.to_string(), |v| format!("{m}@{v}"));
                    assert_eq!(ll["fullyQualifiedName"], fq.as_str());
                    assert_eq!(ll["kind"], "module");
                }
                (None, _) => assert!(locs[0].get("logicalLocations").is_none()),
            }
            let fp = r["partialFingerprints"]["modtraceFinding/v1"]
                .as_str()
                .unwrap();
            assert!(
                prints.insert(fp.to_string()),
                "{args:?}: fingerprint {fp} twice"
            );
        }
    }
}

/// Findings a policy accepts stay in the log as suppressed results (kind external, the ignore's
/// reason as the justification): the log still validates, and each suppressed result keeps
/// the fingerprint it has without the policy, so code scanning matches the alert it closes.
#[test]
fn findings_a_policy_accepts_are_suppressed_results_that_validate() {
    let root = repo();
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "[[ignore]]\nrule = \"plaintext-module-fetch\"\nmodule = \"example.test/Hello\"\n\
         reason = \"the lab proxy is plain HTTP on loopback\"\nuntil = 2999-12-31\n",
    )
    .unwrap();
    let cap = "captures/plaintext-proxy.pcap";
    let (_, plain) = analyze(&[cap, "--format", "sarif", "--fail-on", "never"], &root);
    let (_, log) = analyze(
        &[
            cap,
            "--format",
            "sarif",
            "--fail-on",
            "never",
            "--policy",
            policy.to_str().unwrap(),
        ],
        &root,
    );
    let errors = schema_errors(&log);
    assert!(errors.is_empty(), "schema errors:\n{}", errors.join("\n"));
    let results = log["runs"][0]["results"].as_array().unwrap();
    let suppressed: Vec<&Value> = results
        .iter()
        .filter(|r| r.get("suppressions").is_some())
        .collect();
    assert!(!suppressed.is_empty(), "{results:?}");
    for r in &suppressed {
        assert_eq!(r["ruleId"], "plaintext-module-fetch");
        let s = &r["suppressions"][0];
        assert_eq!(s["kind"], "external");
        assert_eq!(s["status"], "accepted");
        assert_eq!(
            s["justification"],
            "the lab proxy is plain HTTP on loopback"
        );
        assert_eq!(s["properties"]["until"], "2999-12-31");
    }
    // The same results as without the policy, fingerprints included; only the marks differ.
    let prints = |rs: &[Value]| -> HashSet<String> {
        rs.iter()
            .map(|r| r["partialFingerprints"]["modtraceFinding/v1"].to_string())
            .collect()
    };
    let without = plain["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), without.len());
    assert_eq!(prints(results), prints(without));
}

#[test]
fn every_rule_is_described_with_its_fix_and_github_severity() {
    let (_, log) = analyze(
        &["captures/fallback-410.pcap", "--format", "sarif"],
        &repo(),
    );
    let rules = log["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .unwrap();
    for (r, t) in rules.iter().zip(RULES) {
        assert_eq!(r["id"], t.id);
        let camel: String =
            t.id.split('-')
                .map(|p| p[..1].to_uppercase() + &p[1..])
                .collect();
        assert_eq!(r["name"], camel.as_str());
        assert_eq!(r["shortDescription"]["text"], t.title);
        assert_eq!(r["fullDescription"]["text"], t.meaning);
        let help = r["help"]["text"].as_str().unwrap();
        assert!(help.starts_with(t.meaning) && help.ends_with(&format!("Fix: {}", t.fix)));
        assert!(r["help"]["markdown"].as_str().unwrap().contains("**Fix:**"));
        let (level, score) = match t.severity.as_str() {
            "critical" => ("error", 9.5),
            "high" => ("error", 8.0),
            "medium" => ("warning", 5.5),
            "low" => ("note", 3.0),
            _ => ("note", 1.0),
        };
        assert_eq!(r["defaultConfiguration"]["level"], level, "{}", t.id);
        let s: f64 = r["properties"]["security-severity"]
            .as_str()
            .expect("a string, as GitHub reads it")
            .parse()
            .unwrap();
        assert_eq!(s, score, "{}", t.id);
        assert_eq!(
            r["properties"]["tags"],
            serde_json::json!(["security", "supply-chain"])
        );
    }
}

#[test]
fn the_validator_is_not_vacuous() {
    let (_, log) = analyze(
        &["captures/mirror-basic-auth.pcap", "--format", "sarif"],
        &repo(),
    );
    assert!(schema_errors(&log).is_empty());
    let mut bad = log.clone();
    bad["runs"][0]["results"][0]["level"] = "fatal".into();
    assert!(!schema_errors(&bad).is_empty(), "level outside the enum");
    let mut bad = log.clone();
    bad["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] =
        0.into();
    assert!(!schema_errors(&bad).is_empty(), "startLine starts at 1");
    let mut bad = log;
    bad["runs"][0]["tool"]["driver"]["informationUrl"] = "x".into();
    assert!(!schema_errors(&bad).is_empty(), "unknown property");
}

#[test]
fn go_mod_points_module_results_at_the_require_and_go_sum_lines() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("go.mod"),
        "module example.test/app\n\ngo 1.22\n\nrequire (\n\texample.test/Hello v1.1.0\n\texample.test/Other v1.0.0 // indirect\n)\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("go.sum"),
        "example.test/Hello v1.1.0 h1:hN/VGKYrHSCNtaxK2rqHGjUJjwQpKok0ukbrR/AycQk=\nexample.test/Hello v1.1.0/go.mod h1:+QYzkm9a7NM+kajY6P3eW6uevRCSPwOaLtKHakx9v4s=\nexample.test/Util v0.2.0 h1:be5MhvjQb2tDq8e2ogEUAKrozTz4B6lNS0hJ/N8ZyVI=\nexample.test/Util v0.2.0/go.mod h1:5o9bMNbiHgK2G6gB5Om4QCcY9HwKMU8qG2pCt7YQMgQ=\n",
    )
    .unwrap();
    // Run inside the module with `--go-mod .`, as a CI job does: URIs relative to it.
    let capture = repo().join("captures/plaintext-proxy.pcap");
    let (_, log) = analyze(
        &[
            capture.to_str().unwrap(),
            "--format",
            "sarif",
            "--go-mod",
            ".",
        ],
        dir.path(),
    );
    let errors = schema_errors(&log);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    let run = &log["runs"][0];
    let mut seen = HashSet::new();
    for r in run["results"].as_array().unwrap() {
        let Some(fq) = r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"].as_str()
        else {
            continue;
        };
        let first = &r["locations"][0]["physicalLocation"];
        let (uri, line) = match fq {
            // go.mod requires Hello: its require line; Util only in go.sum: its zip line.
            "example.test/Hello@v1.1.0" => ("go.mod", 6),
            "example.test/Util@v0.2.0" => ("go.sum", 3),
            other => panic!("unexpected module {other}"),
        };
        assert_eq!(first["artifactLocation"]["uri"], uri, "{fq}");
        assert_eq!(first["region"]["startLine"], line, "{fq}");
        let ai = first["artifactLocation"]["index"].as_u64().unwrap() as usize;
        assert_eq!(run["artifacts"][ai]["location"]["uri"], uri);
        // The capture stays as the second location, with its packet.
        let second = &r["locations"][1];
        assert!(second["physicalLocation"]["artifactLocation"]["uri"]
            .as_str()
            .unwrap()
            .starts_with("file:///"));
        assert!(second["properties"]["packet"].as_u64().unwrap() > 0);
        seen.insert(fq.to_string());
    }
    assert_eq!(seen.len(), 2, "both modules located: {seen:?}");
}

#[test]
fn a_missing_go_mod_is_a_warning_in_the_log_not_a_failure() {
    let root = repo();
    let (code_plain, _) = analyze(
        &["captures/plaintext-proxy.pcap", "--format", "sarif"],
        &root,
    );
    let (code, log) = analyze(
        &[
            "captures/plaintext-proxy.pcap",
            "--format",
            "sarif",
            "--go-mod",
            "no/such/dir",
        ],
        &root,
    );
    assert_eq!(code, code_plain);
    assert!(schema_errors(&log).is_empty());
    let notes = log["runs"][0]["invocations"][0]["toolExecutionNotifications"]
        .as_array()
        .expect("notifications");
    assert!(notes.iter().any(|n| n["level"] == "warning"
        && n["message"]["text"]
            .as_str()
            .unwrap()
            .contains("no/such/dir/go.mod")));
    for r in log["runs"][0]["results"].as_array().unwrap() {
        assert_eq!(r["locations"].as_array().unwrap().len(), 1);
    }
}

#[test]
fn fingerprints_do_not_change_with_ports_or_packet_numbers() {
    // fallback-410 and fallback-410-any are the same scenario recorded twice (lo and any):
    // other client ports and packet numbers, the same findings.
    let root = repo();
    let prints = |cap: &str| -> Vec<(String, String)> {
        let (_, log) = analyze(&[cap, "--format", "sarif"], &root);
        log["runs"][0]["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["ruleId"].as_str().unwrap().to_string(),
                    r["partialFingerprints"]["modtraceFinding/v1"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                )
            })
            .collect()
    };
    let mut a = prints("captures/fallback-410.pcap");
    let mut b = prints("captures/fallback-410-any.pcap");
    assert!(!a.is_empty());
    a.sort();
    b.sort();
    assert_eq!(a, b);
}

/// Second opinions, when the tools are here: Python's jsonschema (Draft 4) and the SARIF
/// multitool's `validate` (set MODTRACE_SARIF_MULTITOOL to its binary).
#[test]
fn other_validators_agree_when_installed() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.sarif");
    let (_, log) = analyze(
        &["captures/mirror-basic-auth.pcap", "--format", "sarif"],
        &repo(),
    );
    std::fs::write(&file, serde_json::to_vec_pretty(&log).unwrap()).unwrap();
    let schema = repo().join("tests/sarif-schema-2.1.0.json");
    let py = std::process::Command::new("python3")
        .args([
            "-c",
            "import json,sys,jsonschema\n\
             s=json.load(open(sys.argv[1])); d=json.load(open(sys.argv[2]))\n\
             jsonschema.Draft4Validator(s).validate(d); print('python jsonschema: valid')",
        ])
        .arg(&schema)
        .arg(&file)
        .output();
    match py {
        Ok(o) if o.status.success() => {}
        Ok(o) if String::from_utf8_lossy(&o.stderr).contains("No module named") => {
            eprintln!("skipped: Python's jsonschema is not installed")
        }
        Ok(o) => panic!("python jsonschema: {}", String::from_utf8_lossy(&o.stderr)),
        Err(_) => eprintln!("skipped: no python3"),
    }
    if let Some(tool) = std::env::var_os("MODTRACE_SARIF_MULTITOOL") {
        let o = std::process::Command::new(tool)
            .arg("validate")
            .arg(&file)
            .arg("-o")
            .arg(dir.path().join("validation.sarif"))
            .output()
            .expect("run the SARIF multitool");
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "multitool: {text}");
        assert!(!text.contains(": error "), "multitool errors:\n{text}");
    } else {
        eprintln!("skipped: MODTRACE_SARIF_MULTITOOL not set");
    }
}
