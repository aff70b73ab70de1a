//! The pcap and pcapng readers (gzip too, by magic), Decryption Secrets Blocks included: any
//! bytes give frames, a clean end, a cut-short end or one error, within the reader's limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modtrace::source::{CaptureReader, ReaderLimits};
use std::io::Cursor;
use std::path::Path;

fn read_all(data: &[u8], limits: ReaderLimits) {
    let max_record = limits.max_record_bytes;
    let max_keylog = limits.max_keylog_bytes;
    let Ok(mut r) =
        CaptureReader::from_reader(Cursor::new(data.to_vec()), Path::new("fuzz"), 0, limits)
    else {
        return;
    };
    let mut frames = 0u64;
    loop {
        match r.next_frame() {
            Ok(Some(frame)) => {
                assert!(
                    frame.data.len() <= max_record,
                    "frame above the record limit"
                );
                frames += 1;
                r.recycle(frame);
            }
            Ok(None) => break,
            Err(_) => {
                // An error ends the file: the reader says so once and stays ended.
                assert!(matches!(r.next_frame(), Ok(None)));
                break;
            }
        }
    }
    assert_eq!(r.stats().packets, frames);
    assert!(r.stats().keylog.len() <= max_keylog);
}

fuzz_target!(|data: &[u8]| {
    read_all(data, ReaderLimits::default());
    // Small limits: refills at every record, records over the limit, interfaces and key log
    // bytes dropped.
    read_all(
        data,
        ReaderLimits {
            buffer_bytes: 32,
            max_record_bytes: 4096,
            max_interfaces: 2,
            max_keylog_bytes: 300,
        },
    );
});
