//! The whole pipeline from bytes to findings, as `modtrace analyze` runs it (src/main.rs
//! `analyze`): a capture file's bytes through the `source` reader (its Decryption Secrets
//! Blocks first, as embedded_keylog does), then every frame through `Analyzer` with the key
//! log of the bundled captures and module zips hashed, then the outcome, the report and the
//! policy applied to it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modtrace::pipeline::{Analyzer, Config};
use modtrace::source::{CaptureReader, ReaderLimits};
use std::io::Cursor;
use std::path::Path;

fn reader(data: &[u8]) -> Option<CaptureReader> {
    CaptureReader::from_reader(
        Cursor::new(data.to_vec()),
        Path::new("fuzz.pcap"),
        0,
        ReaderLimits::default(),
    )
    .ok()
}

fuzz_target!(|data: &[u8]| {
    let Some(mut first) = reader(data) else {
        return;
    };
    // embedded_keylog: secrets anywhere in a pcapng count from the start.
    let mut embedded = Vec::new();
    if first.stats().pcapng {
        while let Ok(Some(f)) = first.next_frame() {
            first.recycle(f);
        }
        embedded = first.stats().keylog.clone();
    }
    let mut cfg = Config::default();
    cfg.keylog.add_text(modtrace_fuzz::CAPTURE_KEYS.as_bytes());
    cfg.keylog.add_text(&embedded);
    let mut an = Analyzer::new(cfg);
    an.keep_exchanges(true);
    let Some(mut src) = reader(data) else {
        return;
    };
    while let Ok(Some(frame)) = src.next_frame() {
        an.on_frame(&frame);
        an.drain_events().for_each(drop);
        src.recycle(frame);
    }
    an.finish();
    an.drain_events().for_each(drop);
    let stats = vec![src.stats().clone()];
    let policy = an.policy().clone();
    let mut report = modtrace::report::Report::build(&stats, an.into_outcome());
    report.apply_policy(&policy, modtrace::time::Date::parse("2026-01-01").unwrap());
});
