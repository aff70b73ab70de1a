//! The Sigma rules of docs/sigma against modtrace's own ECS alerts. A small evaluator of the
//! Sigma subset the rules use (a detection is a map of fields, or a list of such maps; a list
//! of values means any of them; the modifiers contains, startswith, endswith, gt, gte, lt,
//! lte; `and`, `or`, `not` and parentheses in the condition) runs on the ECS NDJSON that
//! `analyze --format ecs` writes for bundled captures. Each rule must fire on the captures
//! that show its attack and on no clean capture; every high or critical modtrace rule belongs
//! to exactly one Sigma rule. Anything outside the subset fails the test rather than being
//! guessed at. sigma-cli's own validation and conversion run in .ci/run
//! (scripts/sigma-check.sh).

mod common;
use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use yaml_rust2::{Yaml, YamlLoader};

/// One Sigma rule, as far as matching goes.
struct SigmaRule {
    file: String,
    level: String,
    detections: BTreeMap<String, Detection>,
    condition: Condition,
}

/// A detection: any of its maps matches when all fields of that map match.
struct Detection(Vec<Vec<FieldTest>>);

struct FieldTest {
    path: String,
    op: Op,
    /// Any of these.
    values: Vec<Yaml>,
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Equals,
    Contains,
    StartsWith,
    EndsWith,
    Gt,
    Gte,
    Lt,
    Lte,
}

#[derive(Debug)]
enum Condition {
    Detection(String),
    Not(Box<Condition>),
    And(Vec<Condition>),
    Or(Vec<Condition>),
}

fn sigma_dir() -> PathBuf {
    repo().join("docs/sigma")
}

fn load_rules() -> Vec<SigmaRule> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(sigma_dir())
        .expect("docs/sigma")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    files.iter().map(|p| parse_rule(p)).collect()
}

fn parse_rule(path: &Path) -> SigmaRule {
    let file = path.file_name().unwrap().to_string_lossy().into_owned();
    let text = std::fs::read_to_string(path).unwrap();
    let docs = YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert_eq!(docs.len(), 1, "{file}: one YAML document per rule");
    let doc = &docs[0];
    let level = doc["level"].as_str().expect("level").to_string();
    let detection = doc["detection"].as_hash().expect("detection map");
    let mut detections = BTreeMap::new();
    let mut condition = None;
    for (k, v) in detection {
        let name = k.as_str().expect("detection name");
        if name == "condition" {
            let text = v.as_str().expect("one condition string");
            condition = Some(parse_condition(text).unwrap_or_else(|e| panic!("{file}: {e}")));
            continue;
        }
        let maps = match v {
            Yaml::Hash(_) => vec![v],
            Yaml::Array(a) => a.iter().collect(),
            _ => panic!("{file}: detection {name} is neither a map nor a list of maps"),
        };
        let maps = maps
            .into_iter()
            .map(|m| field_tests(&file, m))
            .collect::<Vec<_>>();
        detections.insert(name.to_string(), Detection(maps));
    }
    let condition = condition.unwrap_or_else(|| panic!("{file}: no condition"));
    SigmaRule {
        file,
        level,
        detections,
        condition,
    }
}

fn field_tests(file: &str, map: &Yaml) -> Vec<FieldTest> {
    let map = map
        .as_hash()
        .unwrap_or_else(|| panic!("{file}: keyword lists are outside the subset"));
    map.iter()
        .map(|(k, v)| {
            let key = k.as_str().expect("field name");
            let mut parts = key.split('|');
            let path = parts.next().unwrap().to_string();
            let op = match parts.next() {
                None => Op::Equals,
                Some("contains") => Op::Contains,
                Some("startswith") => Op::StartsWith,
                Some("endswith") => Op::EndsWith,
                Some("gt") => Op::Gt,
                Some("gte") => Op::Gte,
                Some("lt") => Op::Lt,
                Some("lte") => Op::Lte,
                Some(m) => panic!("{file}: modifier {m} is outside the subset"),
            };
            assert!(
                parts.next().is_none(),
                "{file}: modifier chains are outside the subset"
            );
            let values = match v {
                Yaml::Array(a) => a.clone(),
                other => vec![other.clone()],
            };
            for v in &values {
                if let Yaml::String(s) = v {
                    assert!(
                        !s.contains(['*', '?']),
                        "{file}: wildcards are outside the subset ({s})"
                    );
                }
            }
            FieldTest { path, op, values }
        })
        .collect()
}

/// `or` binds loosest, then `and`, then `not`; parentheses group.
fn parse_condition(text: &str) -> Result<Condition, String> {
    let spaced = text.replace('(', " ( ").replace(')', " ) ");
    let tokens: Vec<&str> = spaced.split_whitespace().collect();
    let mut at = 0;
    let c = parse_or(&tokens, &mut at)?;
    if at != tokens.len() {
        return Err(format!("condition {text:?}: unexpected {:?}", tokens[at]));
    }
    Ok(c)
}

fn parse_or(t: &[&str], at: &mut usize) -> Result<Condition, String> {
    let mut parts = vec![parse_and(t, at)?];
    while t.get(*at) == Some(&"or") {
        *at += 1;
        parts.push(parse_and(t, at)?);
    }
    Ok(if parts.len() == 1 {
        parts.pop().unwrap()
    } else {
        Condition::Or(parts)
    })
}

fn parse_and(t: &[&str], at: &mut usize) -> Result<Condition, String> {
    let mut parts = vec![parse_not(t, at)?];
    while t.get(*at) == Some(&"and") {
        *at += 1;
        parts.push(parse_not(t, at)?);
    }
    Ok(if parts.len() == 1 {
        parts.pop().unwrap()
    } else {
        Condition::And(parts)
    })
}

fn parse_not(t: &[&str], at: &mut usize) -> Result<Condition, String> {
    match t.get(*at).copied() {
        Some("not") => {
            *at += 1;
            Ok(Condition::Not(Box::new(parse_not(t, at)?)))
        }
        Some("(") => {
            *at += 1;
            let c = parse_or(t, at)?;
            if t.get(*at) != Some(&")") {
                return Err("unclosed parenthesis".into());
            }
            *at += 1;
            Ok(c)
        }
        Some(name)
            if !["and", "or", ")", "of", "1", "all", "them"].contains(&name)
                && !name.contains(['*', '|']) =>
        {
            *at += 1;
            Ok(Condition::Detection(name.to_string()))
        }
        other => Err(format!("{other:?} is outside the subset")),
    }
}

impl SigmaRule {
    fn matches(&self, event: &Value) -> bool {
        self.eval(&self.condition, event)
    }

    fn eval(&self, c: &Condition, event: &Value) -> bool {
        match c {
            Condition::Detection(name) => {
                let d = self
                    .detections
                    .get(name)
                    .unwrap_or_else(|| panic!("{}: no detection {name}", self.file));
                d.0.iter()
                    .any(|map| map.iter().all(|test| test.matches(event)))
            }
            Condition::Not(c) => !self.eval(c, event),
            Condition::And(cs) => cs.iter().all(|c| self.eval(c, event)),
            Condition::Or(cs) => cs.iter().any(|c| self.eval(c, event)),
        }
    }
}

impl FieldTest {
    fn matches(&self, event: &Value) -> bool {
        // ECS documents nest objects; a flattened key ("event.module") counts too.
        let found = lookup(event, &self.path);
        let candidates: Vec<&Value> = match found {
            Some(Value::Array(a)) => a.iter().collect(),
            Some(v) => vec![v],
            None => Vec::new(),
        };
        self.values.iter().any(|want| match want {
            Yaml::Null => candidates.is_empty() || candidates.iter().all(|v| v.is_null()),
            _ => candidates
                .iter()
                .any(|got| value_matches(self.op, want, got)),
        })
    }
}

fn lookup<'a>(event: &'a Value, path: &str) -> Option<&'a Value> {
    if let Some(v) = event.get(path) {
        return Some(v);
    }
    let mut v = event;
    for part in path.split('.') {
        v = v.get(part)?;
    }
    Some(v)
}

fn value_matches(op: Op, want: &Yaml, got: &Value) -> bool {
    let number = |y: &Yaml| match y {
        Yaml::Integer(i) => Some(*i as f64),
        Yaml::Real(_) => y.as_f64(),
        _ => None,
    };
    match op {
        Op::Gt | Op::Gte | Op::Lt | Op::Lte => {
            let (Some(w), Some(g)) = (number(want), got.as_f64()) else {
                return false;
            };
            match op {
                Op::Gt => g > w,
                Op::Gte => g >= w,
                Op::Lt => g < w,
                _ => g <= w,
            }
        }
        _ => {
            // Sigma compares strings without regard to case.
            let w = match want {
                Yaml::String(s) => s.to_lowercase(),
                Yaml::Integer(i) => i.to_string(),
                Yaml::Boolean(b) => b.to_string(),
                other => panic!("value {other:?} is outside the subset"),
            };
            let g = match got {
                Value::String(s) => s.to_lowercase(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return false,
            };
            match op {
                Op::Equals => g == w,
                Op::Contains => g.contains(&w),
                Op::StartsWith => g.starts_with(&w),
                _ => g.ends_with(&w),
            }
        }
    }
}

/// The ECS NDJSON of one analysis.
fn ecs(capture: &Path, extra: &[String]) -> Vec<Value> {
    let mut args = vec![
        "analyze".to_string(),
        capture.display().to_string(),
        "--format".into(),
        "ecs".into(),
        "--fail-on".into(),
        "never".into(),
    ];
    args.extend(extra.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "analyze {}: {}",
        capture.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("ECS line"))
        .collect()
}

/// The rule ids of the alerts a Sigma rule selects.
fn fired(rule: &SigmaRule, events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| rule.matches(e))
        .map(|e| e["rule"]["id"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// A plain-HTTP module download whose response a device on the path raced with a forged
/// copy of its last bytes.
fn injected_capture(dir: &Path, inject: bool) -> PathBuf {
    let p = dir.join(if inject {
        "injected.pcap"
    } else {
        "intact.pcap"
    });
    let mut c = Conn::new(([127, 0, 0, 1], 41001), ([127, 0, 0, 1], 8081), 1_000_000);
    c.send(
        true,
        b"GET /example.test/%21hello/@v/v1.1.0.mod HTTP/1.1\r\nHost: 127.0.0.1:8081\r\n\
          User-Agent: Go-http-client/1.1\r\nAccept-Encoding: gzip\r\n\r\n",
    );
    let body = b"module example.test/Hello\n";
    let mut resp = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    resp.extend_from_slice(body);
    c.send(false, &resp);
    if inject {
        c.resend(false, 8, b"evil.tk\n");
    }
    c.close();
    write_pcap(&p, &c.frames);
    p
}

/// A checksum-database key of the lab's name that did not sign its notes.
fn wrong_sumdb_key() -> String {
    modtrace::gomod::note::Verifier::from_ed25519("sum.lab.test", [42u8; 32])
        .unwrap()
        .encode()
}

struct Case {
    capture: PathBuf,
    args: Vec<String>,
}

impl Case {
    fn new(capture: PathBuf, args: &[String]) -> Case {
        Case {
            capture,
            args: args.to_vec(),
        }
    }
    fn bundled(name: &str, args: &[String]) -> Case {
        Case::new(repo().join("captures").join(name), args)
    }
    fn label(&self) -> String {
        format!(
            "{} {}",
            self.capture.file_name().unwrap().to_string_lossy(),
            self.args.join(" ")
        )
    }
}

/// Per Sigma rule file: the captures that show its attack, and its own near misses (the same
/// scene done safely), on top of the clean captures every rule must stay silent on.
fn cases(dir: &Path) -> BTreeMap<&'static str, (Vec<Case>, Vec<Case>)> {
    let none: &[String] = &[];
    let arg = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    BTreeMap::from([
        (
            "modtrace_plaintext_module_traffic.yml",
            (
                vec![
                    Case::bundled("plaintext-proxy.pcap", none),
                    Case::bundled("sumdb-direct.pcap", none),
                ],
                vec![],
            ),
        ),
        (
            "modtrace_credentials_in_plaintext.yml",
            (
                vec![
                    Case::bundled("mirror-basic-auth.pcap", none),
                    Case::bundled("training/creds-on-wire.unsafe.pcapng", none),
                ],
                vec![Case::bundled("training/creds-on-wire.safe.pcapng", none)],
            ),
        ),
        (
            "modtrace_redirect_abuse.yml",
            (
                vec![
                    Case::bundled("redirect-loop.pcap", none),
                    Case::bundled("training/redirect-loop.unsafe.pcapng", none),
                ],
                vec![Case::bundled("training/redirect-loop.safe.pcapng", none)],
            ),
        ),
        (
            "modtrace_tls_trust.yml",
            (
                vec![
                    Case::bundled("tls-mirror-selfsigned.pcap", none),
                    Case::bundled("tls-mirror-expired.pcap", none),
                ],
                vec![],
            ),
        ),
        (
            "modtrace_module_integrity.yml",
            (
                vec![
                    Case::bundled("tamper-sumdb-on.pcap", none),
                    Case::bundled("mirrors-disagree.pcap", none),
                ],
                vec![Case::bundled("sumdb-via-proxy.pcap", none)],
            ),
        ),
        (
            "modtrace_sumdb_integrity.yml",
            (
                vec![Case::bundled(
                    "sumdb-direct.pcap",
                    &arg(&["--sumdb-key", &wrong_sumdb_key()]),
                )],
                vec![Case::bundled(
                    "sumdb-direct.pcap",
                    &arg(&["--sumdb-key", &lab_sumdb_vkey()]),
                )],
            ),
        ),
        (
            "modtrace_private_module_leak.yml",
            (
                vec![Case::bundled(
                    "plaintext-proxy.pcap",
                    &arg(&["--private", "example.test/Hello"]),
                )],
                vec![Case::bundled(
                    "plaintext-proxy.pcap",
                    &arg(&["--private", "corp.test"]),
                )],
            ),
        ),
        (
            "modtrace_tcp_injection.yml",
            (
                vec![Case::new(injected_capture(dir, true), none)],
                vec![Case::new(injected_capture(dir, false), none)],
            ),
        ),
    ])
}

/// Captures of the lab where nothing is wrong: verified TLS (1.3, and HTTP/2) and a client
/// that refused a bad certificate. They only give info findings.
const CLEAN: &[&str] = &[
    "tls13-verified.pcap",
    "h2-proxy-tls13.pcap",
    "tls-proxy-rejected.pcap",
];

#[test]
fn every_sigma_rule_fires_on_its_attack_and_on_no_clean_capture() {
    let dir = tempfile::tempdir().unwrap();
    let rules = load_rules();
    let mut cases = cases(dir.path());
    let files: Vec<&str> = rules.iter().map(|r| r.file.as_str()).collect();
    assert_eq!(
        files,
        cases.keys().copied().collect::<Vec<_>>(),
        "every rule in docs/sigma has its cases here, and every case its rule"
    );
    let clean: Vec<(String, Vec<Value>)> = CLEAN
        .iter()
        .map(|name| {
            let events = ecs(&repo().join("captures").join(name), &[]);
            assert!(
                events.iter().all(|e| e["modtrace"]["severity"] == "info"),
                "{name} is clean: only info findings"
            );
            (name.to_string(), events)
        })
        .collect();
    for rule in &rules {
        let (attacks, near_misses) = cases.remove(rule.file.as_str()).unwrap();
        for case in &attacks {
            let events = ecs(&case.capture, &case.args);
            let hits = fired(rule, &events);
            assert!(
                !hits.is_empty(),
                "{} does not fire on {}; its alerts: {:?}",
                rule.file,
                case.label(),
                events.iter().map(|e| &e["rule"]["id"]).collect::<Vec<_>>()
            );
            // Each hit is a high or critical alert, as the rule's level promises.
            for e in events.iter().filter(|e| rule.matches(e)) {
                let sev = e["modtrace"]["severity"].as_str().unwrap();
                assert!(["high", "critical"].contains(&sev), "{}: {sev}", rule.file);
            }
        }
        for case in &near_misses {
            let hits = fired(rule, &ecs(&case.capture, &case.args));
            assert!(
                hits.is_empty(),
                "{} fires on {}: {hits:?}",
                rule.file,
                case.label()
            );
        }
        for (name, events) in &clean {
            let hits = fired(rule, events);
            assert!(
                hits.is_empty(),
                "{} fires on clean {name}: {hits:?}",
                rule.file
            );
        }
        assert!(
            ["high", "critical"].contains(&rule.level.as_str()),
            "{}: level {}",
            rule.file,
            rule.level
        );
    }
}

/// Each high or critical modtrace rule is selected by exactly one Sigma rule, so a new rule
/// id cannot go without one; medium and lower ones by none.
#[test]
fn every_high_or_critical_rule_has_exactly_one_sigma_rule() {
    use modtrace::detect::{Severity, RULES};
    let rules = load_rules();
    for r in RULES {
        let alert = serde_json::json!({
            "event": {
                "module": "modtrace",
                "kind": "alert",
                "severity": modtrace::report::ecs::severity_number(r.severity),
            },
            "rule": { "id": r.id },
            "modtrace": { "severity": r.severity.as_str() },
        });
        let selecting: Vec<&str> = rules
            .iter()
            .filter(|s| s.matches(&alert))
            .map(|s| s.file.as_str())
            .collect();
        if r.severity >= Severity::High {
            assert_eq!(selecting.len(), 1, "{}: {selecting:?}", r.id);
        } else {
            assert!(selecting.is_empty(), "{}: {selecting:?}", r.id);
        }
        // Nor does any rule fire on the same alert from another product.
        let mut other = alert.clone();
        other["event"]["module"] = "zeek".into();
        assert!(rules.iter().all(|s| !s.matches(&other)), "{}", r.id);
    }
}

#[test]
fn the_matcher_follows_sigma_semantics() {
    let rule = |detection: &str| {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.yml");
        std::fs::write(
            &p,
            format!("title: t\nlevel: high\ndetection:\n{detection}"),
        )
        .unwrap();
        parse_rule(&p)
    };
    let e = serde_json::json!({
        "event": { "module": "modtrace", "severity": 73 },
        "rule": { "id": "plaintext-sumdb" },
        "url.original": "http://127.0.0.1:8081/x",
        "tags": ["a", "b"],
    });
    let r = rule("  a:\n    rule.id: PLAINTEXT-SUMDB\n  condition: a\n");
    assert!(r.matches(&e), "case-insensitive equality");
    let r =
        rule("  a:\n    rule.id|startswith: plain\n    event.severity|gte: 74\n  condition: a\n");
    assert!(!r.matches(&e), "all fields of a map must match");
    let r = rule("  a:\n    - rule.id: x\n    - event.severity|gt: 72\n  condition: a\n");
    assert!(r.matches(&e), "a list of maps is any of them");
    let r = rule(
        "  a:\n    url.original|contains: ':8081/'\n  b:\n    tags: b\n  condition: a and not b\n",
    );
    assert!(!r.matches(&e), "flattened keys and arrays; not");
    let r = rule(
        "  a:\n    missing: null\n  b:\n    rule.id|endswith: sumdb\n  condition: (a and b) or a\n",
    );
    assert!(r.matches(&e), "null is absence; parentheses");
    let unsupported = std::panic::catch_unwind(|| rule("  a:\n    x|re: y\n  condition: a\n"));
    assert!(unsupported.is_err(), "unknown modifiers are refused");
    let unsupported = std::panic::catch_unwind(|| rule("  a:\n    x: y\n  condition: 1 of a*\n"));
    assert!(unsupported.is_err(), "aggregate conditions are refused");
}
