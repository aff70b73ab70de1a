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
        assert_eq!(plain, sorted(e.findings), "captures/README.md section {}", e.name);
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
    let list = section
        .split("\n### ")
        .find(|part| {
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
