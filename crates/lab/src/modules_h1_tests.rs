//! The lab's module builder against the analyser's h1 (crates/core gomod/h1.rs): what the lab
//! serves must hash as the go command printed it, and must never make the hasher panic. These
//! lived in gomod's h1 tests until the lab became a crate of its own, which the analyser cannot
//! depend on.

use modtrace_core::gomod::h1::{hash_zip, mod_h1, unexpected_entry, zip_h1, H1Limits};
use std::io::{Cursor, Read};

fn h(zip: &[u8]) -> Result<String, modtrace_core::gomod::h1::H1Error> {
    zip_h1(Cursor::new(zip))
}

/// The checkout's root (this crate is crates/lab).
fn checkout() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The go command's own output for the lab's modules: every `Sum` / `GoModSum` in the
/// captures' `go mod download -json` output must be what we compute from the zip and `.mod`
/// the lab serves for that module (crates/lab/src/modules.rs `build_module_version`).
#[test]
fn lab_modules_hash_as_the_go_command_printed() {
    let root = checkout();
    let store = crate::modules::ModuleStore::load(&root.join("lab/modules")).unwrap();
    let mut checked = 0;
    let mut names: Vec<_> = std::fs::read_dir(root.join("captures"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".go.json"))
        // Tampering scenarios ship the true hashes beside them: go printed tampered ones.
        .filter(|p| {
            !p.with_file_name(
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .replace(".go.json", ".true.go.sum"),
            )
            .exists()
        })
        .collect();
    names.sort();
    assert!(names.iter().any(|p| p.ends_with("plaintext-proxy.go.json")));
    for path in names {
        let text = std::fs::read_to_string(&path).unwrap();
        for v in serde_json::Deserializer::from_str(&text).into_iter::<serde_json::Value>() {
            let v = v.unwrap();
            let (Some(sum), Some(mod_sum)) = (v["Sum"].as_str(), v["GoModSum"].as_str()) else {
                continue;
            };
            let (m, ver) = (v["Path"].as_str().unwrap(), v["Version"].as_str().unwrap());
            let mv = store
                .get(m, ver)
                .unwrap_or_else(|| panic!("{m}@{ver} not in lab/modules"));
            // Rebuild through the lab's builder too, from the files the zip holds.
            let prefix = format!("{m}@{ver}/");
            let files: Vec<(String, Vec<u8>)> = {
                let mut a = zip::ZipArchive::new(Cursor::new(&mv.zip)).unwrap();
                (0..a.len())
                    .map(|i| {
                        let mut f = a.by_index(i).unwrap();
                        let mut d = Vec::new();
                        f.read_to_end(&mut d).unwrap();
                        (f.name().strip_prefix(&prefix).unwrap().to_string(), d)
                    })
                    .collect()
            };
            let built = crate::modules::build_module_version(m, ver, &files).unwrap();
            for zip in [&mv.zip, &built.zip] {
                let zh = hash_zip(Cursor::new(zip), &H1Limits::default()).unwrap();
                assert_eq!(zh.h1, sum, "{m}@{ver} zip ({})", path.display());
                assert_eq!(unexpected_entry(&zh.entries, m, ver), None);
            }
            assert_eq!(mod_h1(&mv.go_mod), mod_sum, "{m}@{ver} .mod");
            checked += 1;
        }
    }
    assert!(checked >= 4, "only {checked} module hashes checked");
}

#[test]
fn random_and_mutated_zips_never_panic() {
    let root = checkout();
    let store = crate::modules::ModuleStore::load(&root.join("lab/modules")).unwrap();
    let seed_zip = store
        .get("example.test/Hello", "v1.1.0")
        .unwrap()
        .zip
        .clone();
    let mut x: u64 = 0x853c49e6748fea9b;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut ok = 0;
    for round in 0..3000 {
        let mut z = seed_zip.clone();
        if round % 4 == 0 {
            z = (0..next() % 400).map(|_| next() as u8).collect();
            z.extend_from_slice(b"PK\x05\x06");
            z.extend((0..next() % 30).map(|_| next() as u8));
        } else {
            for _ in 0..(next() % 3 + 1) {
                let i = (next() % z.len() as u64) as usize;
                z[i] = next() as u8;
            }
        }
        if h(&z).is_ok() {
            ok += 1;
        }
    }
    assert!(ok > 0);
}
