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

#[test]
fn captures_readme_lists_the_same_findings() {
    let readme = std::fs::read_to_string(repo().join("captures/README.md")).unwrap();
    for e in EXPECTED {
        let section = readme.split("\n## ").find(|s| s.starts_with(&format!("`{}`", e.name)) || s.starts_with(e.name)).unwrap_or_else(|| panic!("captures/README.md has no section for {}", e.name));
        for f in e.findings {
            let rule = f.split(' ').next().unwrap();
            assert!(section.contains(rule), "README section {} does not name {rule}", e.name);
        }
    }
}
