//! NSS key logs (SSLKEYLOGFILE, pcapng Decryption Secrets Blocks): any text is counted line by
//! line, within the entry and note limits, and what is kept can be looked up.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modtrace::proto::tls::keylog::{KeyLog, KeyLogLimits};

fuzz_target!(|data: &[u8]| {
    let limits = KeyLogLimits {
        max_entries: 4,
        max_bad_line_notes: 2,
    };
    let mut log = KeyLog::with_limits(limits.clone());
    log.add_text(data);
    assert!(log.len() <= limits.max_entries);
    assert!(log.stats().bad_line_notes.len() <= limits.max_bad_line_notes);
    let mut other = KeyLog::new();
    other.add_text(data);
    log.merge(other);
    assert!(log.len() <= limits.max_entries);
    let _ = log.get(data.get(..32).unwrap_or(&[0; 32]));
});
