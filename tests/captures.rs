//! The bundled captures give exactly their documented findings (captures/README.md).

mod common;
use common::*;

#[test]
fn every_bundled_capture_gives_its_documented_findings() {
    assert!(!EXPECTED.is_empty());
    for e in EXPECTED {
        check_capture(&repo().join("captures"), e);
    }
}

/// The README's "Expected findings" list of each capture (`- \`rule subject\`` lines, with an
/// optional `×N`) is exactly what the tests assert; so is its "Expected findings with the key
/// log" list for captures that have keys (the first keyed analysis).
#[test]
fn captures_readme_lists_the_same_findings() {
    let readme = std::fs::read_to_string(repo().join("captures/README.md")).unwrap();
    for e in EXPECTED {
        let section = readme
            .split("\n## ")
            .find(|s| s.starts_with(&format!("`{}`", e.name)))
            .unwrap_or_else(|| panic!("captures/README.md has no section for {}", e.name));
        let plain = documented_list(section, "Expected findings")
            .unwrap_or_else(|| panic!("{}: no Expected findings", e.name));
        assert_eq!(
            plain,
            sorted(e.findings),
            "captures/README.md section {}",
            e.name
        );
        let keyed = documented_list(section, "Expected findings with the key log");
        match e.keyed.first() {
            Some(v) => assert_eq!(
                keyed.unwrap_or_else(|| panic!("{}: no keyed list", e.name)),
                sorted(v.findings),
                "captures/README.md section {} with the key log",
                e.name
            ),
            None => assert!(keyed.is_none(), "{}: a keyed list but no keys", e.name),
        }
    }
}

fn sorted(items: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = items.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// The `- \`...\`` items under the `### <heading>` of a section (up to the next heading).
fn documented_list(section: &str, heading: &str) -> Option<Vec<String>> {
    let list = section.split("\n### ").find(|part| {
        part.lines().next().is_some_and(|h| {
            h.starts_with(heading) && !h[heading.len()..].trim_start().starts_with("with")
        })
    })?;
    let mut documented = Vec::new();
    for line in list.lines().filter(|l| l.starts_with("- `")) {
        let item = line[3..].split('`').next().unwrap().to_string();
        let times = line
            .split('×')
            .nth(1)
            .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        for _ in 0..times {
            documented.push(item.clone());
        }
    }
    documented.sort();
    Some(documented)
}

/// Proxy chains: through the CONNECT proxy every hop has `via`, the session seen on both legs
/// is one; in the insecure-mirror capture each of go's requests to the mirror has the
/// mirror's decrypted request to its upstream as an `upstream` hop.
#[test]
fn proxy_chains_are_drawn_whole() {
    let dir = repo().join("captures");
    let j = analyze_json(&dir.join("connect-proxy-h2.pcapng"), &[]);
    assert_eq!(j["capture"]["tls_duplicates"], 1);
    assert_eq!(j["tls"].as_array().unwrap().len(), 1);
    assert_eq!(j["tls"][0]["via"], "127.0.0.1:8110");
    assert_eq!(j["tls"][0]["server"], "127.0.0.1:8109");
    let mut hops = 0;
    for m in j["modules"].as_array().unwrap() {
        for h in m["journey"].as_array().unwrap() {
            assert_eq!(h["via"], "127.0.0.1:8110", "{h}");
            assert_eq!(h["scheme"], "https");
            assert_eq!(h["server"], "127.0.0.1:8109");
            hops += 1;
        }
    }
    assert_eq!(hops, 6);
    let gets = j["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["method"] == "GET")
        .count();
    assert_eq!(gets, 6, "each request once, not once per leg");

    for name in ["tls-mirror-selfsigned", "tls-mirror-expired"] {
        let keys = dir.join(format!("{name}.keys"));
        let j = analyze_json(
            &dir.join(format!("{name}.pcap")),
            &["--keylog", keys.to_str().unwrap()],
        );
        let mut linked = 0;
        for m in j["modules"].as_array().unwrap() {
            for h in m["journey"].as_array().unwrap() {
                assert_eq!(h["scheme"], "http", "{name}: go -> mirror is plain");
                let up = h["upstream"].as_array().unwrap();
                assert_eq!(up.len(), 1, "{name}: {h}");
                assert_eq!(up[0]["scheme"], "https");
                assert_eq!(up[0]["op"], h["op"]);
                linked += 1;
            }
        }
        assert_eq!(linked, 6, "{name}");
        // Without the keys the upstream leg is opaque: no hops to link.
        let j = analyze_json(&dir.join(format!("{name}.pcap")), &[]);
        assert!(j["modules"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|m| m["journey"].as_array().unwrap())
            .all(|h| h["upstream"].as_array().unwrap().is_empty()));
    }
}

/// The lesson recordings (captures/training, made by `modtrace lab run LESSON --record`) give
/// exactly their documented findings with the lessons' analysis flags, and hold what the go
/// command did: SECURITY ERROR only in the sumdb-on half of lesson 1.
#[test]
fn every_lesson_recording_gives_its_documented_findings() {
    let captures = repo().join("captures");
    let args = training_args(&captures);
    assert_eq!(TRAINING.len(), 10);
    for e in TRAINING {
        check_training(&captures.join("training"), &args, e);
    }
}

/// captures/README.md documents each lesson half's findings exactly as the tests assert them.
#[test]
fn training_readme_lists_the_same_findings() {
    let readme = std::fs::read_to_string(repo().join("captures/README.md")).unwrap();
    for e in TRAINING {
        let section = readme
            .split("\n## ")
            .find(|s| {
                s.starts_with("Lesson ")
                    && s.lines()
                        .next()
                        .unwrap()
                        .contains(&format!("`{}`", e.lesson))
            })
            .unwrap_or_else(|| panic!("captures/README.md has no section for lesson {}", e.lesson));
        let heading = match e.half {
            "unsafe" => "Unsafe half: expected findings",
            _ => "Safe half: expected findings",
        };
        let listed = documented_list(section, heading)
            .unwrap_or_else(|| panic!("lesson {}: no {heading}", e.lesson));
        assert_eq!(
            listed,
            sorted(e.findings),
            "captures/README.md lesson {} {}",
            e.lesson,
            e.half
        );
    }
}
