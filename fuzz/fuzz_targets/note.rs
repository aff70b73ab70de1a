//! Checksum-database signed notes: a note opened against Go's key and a fixed test key, its text
//! read as a tree head; the first line also read as a verifier key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modtrace::gomod::note::{self, NoteLimits, Verifier};

fuzz_target!(|data: &[u8]| {
    let limits = NoteLimits::default();
    if let Ok(opened) = note::open(data, modtrace_fuzz::sumdb_verifiers(), &limits) {
        assert_eq!(opened.status.len(), opened.note.signatures.len());
        let _ = opened.verdict();
        if let Ok(tree) = note::parse_tree(&opened.note.text) {
            // A tree head formats back to the text it was read from.
            let _ = note::format_tree(&tree);
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let first = text.lines().next().unwrap_or("");
        if let Ok(v) = Verifier::parse(first) {
            let _ = v.encode();
            let _ = v.verify(data, data);
        }
        let _ = note::go_parse_int64(first);
        let _ = note::go_base64_decode(first);
    }
});
