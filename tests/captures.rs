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
/// optional `×N`) is exactly what the tests assert.
#[test]
fn captures_readme_lists_the_same_findings() {
    let readme = std::fs::read_to_string(repo().join("captures/README.md")).unwrap();
    for e in EXPECTED {
        let section = readme
            .split("\n## ")
            .find(|s| s.starts_with(&format!("`{}`", e.name)))
            .unwrap_or_else(|| panic!("captures/README.md has no section for {}", e.name));
        let list = section
            .split("### Expected findings")
            .nth(1)
            .unwrap_or_else(|| panic!("{}: no Expected findings", e.name));
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
        let mut want: Vec<String> = e.findings.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(documented, want, "captures/README.md section {}", e.name);
    }
}
