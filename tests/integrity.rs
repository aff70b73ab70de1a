//! Integrity from the wire, on the bundled captures of the real go command: h1 values equal
//! what the go command wrote into go.sum, the tampered zip's hashes equal the two values of the
//! go command's SECURITY ERROR, go.sum files and checksum-database keys are honoured.

mod common;
use common::*;
use serde_json::Value;
use std::collections::BTreeMap;

/// `go mod download -json` output: several JSON objects, one per module.
fn go_download(name: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(repo().join(format!("captures/{name}.go.json"))).unwrap();
    serde_json::Deserializer::from_str(&text)
        .into_iter::<Value>()
        .map(|v| v.unwrap())
        .collect()
}

fn findings(j: &Value, rule: &str) -> Vec<Value> {
    j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == rule)
        .cloned()
        .collect()
}

/// Captures where the go command's downloads crossed the wire in plaintext and succeeded.
const CLEAN: &[&str] = &[
    "plaintext-proxy",
    "fallback-410",
    "fallback-410-any",
    "mirror-basic-auth",
    "tls-mirror-selfsigned",
    "tls-mirror-expired",
    "goinsecure-goget",
    "sumdb-via-proxy",
    "sumdb-direct",
];

#[test]
fn h1_values_equal_the_go_sum_lines_of_the_recording() {
    for name in CLEAN {
        let j = analyze_json(
            &repo().join(format!("captures/{name}.pcap")),
            &["--sumdb-key", &lab_sumdb_vkey()],
        );
        let modules: BTreeMap<String, &Value> = j["modules"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["version"].is_string())
            .map(|m| {
                (
                    format!(
                        "{}@{}",
                        m["module"].as_str().unwrap(),
                        m["version"].as_str().unwrap()
                    ),
                    m,
                )
            })
            .collect();
        let downloads = go_download(name);
        assert!(!downloads.is_empty(), "{name}");
        for d in downloads {
            let key = format!(
                "{}@{}",
                d["Path"].as_str().unwrap(),
                d["Version"].as_str().unwrap()
            );
            let m = modules
                .get(&key)
                .unwrap_or_else(|| panic!("{name}: {key} not among the modules"));
            assert_eq!(m["h1"], d["Sum"], "{name}: {key} h1");
            assert_eq!(m["mod_h1"], d["GoModSum"], "{name}: {key} mod_h1");
        }
    }
}

#[test]
fn tampered_zip_gives_exactly_the_hashes_of_gos_security_error() {
    let j = analyze_json(
        &repo().join("captures/tamper-sumdb-on.pcap"),
        &["--sumdb-key", &lab_sumdb_vkey()],
    );
    let mismatches = findings(&j, "checksum-mismatch");
    let mut checked = 0;
    for d in go_download("tamper-sumdb-on") {
        let err = d["Error"]
            .as_str()
            .expect("the go command refused the module");
        assert!(err.contains("SECURITY ERROR"), "{err}");
        let value = |label: &str| -> String {
            let line = err
                .lines()
                .find(|l| l.trim_start().starts_with(label))
                .unwrap_or_else(|| panic!("{label} in {err}"));
            line.split_whitespace().last().unwrap().to_string()
        };
        let (downloaded, sumdb) = (value("downloaded:"), value("sum.lab.test:"));
        assert_ne!(downloaded, sumdb);
        let module = d["Path"].as_str().unwrap();
        let f = mismatches
            .iter()
            .find(|f| f["module"] == module && f["version"] == d["Version"])
            .unwrap_or_else(|| panic!("no checksum-mismatch for {module}: {mismatches:#?}"));
        let msg = f["message"].as_str().unwrap();
        assert!(msg.contains(&format!("downloaded: {downloaded}")), "{msg}");
        assert!(
            msg.contains("sum.lab.test") && msg.contains(&sumdb),
            "{msg}"
        );
        assert_eq!(f["severity"], "critical");
        checked += 1;
    }
    assert_eq!(checked, 2);
    assert_eq!(mismatches.len(), 2, "one per module");
}

#[test]
fn go_sum_of_the_true_hashes_catches_the_tampered_zip_with_the_sumdb_off() {
    let pcap = repo().join("captures/tamper-sumdb-off.pcap");
    let plain = analyze_json(&pcap, &[]);
    assert!(
        findings(&plain, "checksum-mismatch").is_empty(),
        "nothing to compare with"
    );
    assert_eq!(findings(&plain, "no-checksum-verification").len(), 2);
    let gosum = repo().join("captures/tamper-sumdb-off.true.go.sum");
    let j = analyze_json(&pcap, &["--go-sum", gosum.to_str().unwrap()]);
    let m = findings(&j, "checksum-mismatch");
    assert_eq!(m.len(), 2, "{m:#?}");
    for f in &m {
        assert!(
            f["message"].as_str().unwrap().contains("go.sum file"),
            "{f}"
        );
    }
    assert!(
        findings(&j, "no-checksum-verification").is_empty(),
        "go.sum holds the hashes"
    );
}

#[test]
fn sumdb_keys_decide_between_verified_unknown_and_invalid() {
    let pcap = repo().join("captures/sumdb-direct.pcap");
    let rules = |j: &Value| -> Vec<String> {
        let mut v: Vec<String> = j["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["rule"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v.dedup();
        v
    };
    let with_key = analyze_json(&pcap, &["--sumdb-key", &lab_sumdb_vkey()]);
    assert!(
        !rules(&with_key).iter().any(|r| r.starts_with("sumdb-")),
        "{:?}",
        rules(&with_key)
    );
    let without = analyze_json(&pcap, &[]);
    assert!(rules(&without).contains(&"sumdb-unknown-key".to_string()));
    // Another key under the same name: the note does not verify for the known key of its name.
    let wrong = modtrace::gomod::note::Verifier::from_ed25519("sum.lab.test", [42u8; 32])
        .unwrap()
        .encode();
    assert_ne!(wrong, lab_sumdb_vkey());
    let j = analyze_json(&pcap, &["--sumdb-key", &wrong]);
    let invalid = findings(&j, "sumdb-signature-invalid");
    assert!(!invalid.is_empty(), "{:?}", rules(&j));
    assert_eq!(invalid[0]["severity"], "critical");
    // And the go env's GOSUMDB key counts as given.
    let env = repo().join("captures/sumdb-direct.go-env.json");
    let j = analyze_json(&pcap, &["--go-env", env.to_str().unwrap()]);
    assert!(
        !rules(&j).iter().any(|r| r.starts_with("sumdb-")),
        "{:?}",
        rules(&j)
    );
}
