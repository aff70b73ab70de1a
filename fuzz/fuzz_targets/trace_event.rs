//! The uprobe trace_pipe event parser (`parse_line`): every line of the input, with events named
//! `wkl_*` taken as ours, and the duplicate filter the key helper puts after it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modtrace::gokeys::event::{parse_line, Dedupe, TraceLine};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut dedupe = Dedupe::new(4);
    for line in text.lines() {
        if let Ok(TraceLine::Key(k)) = parse_line(line, |e| e.starts_with("wkl_")) {
            assert!(k.secret.len() <= modtrace::gokeys::event::SECRET_FETCH);
            let _ = k.keylog_line();
            let _ = dedupe.first(&k);
        }
    }
});
