//! One direction's HPACK context on its own: header blocks (items format) decoded in order, with
//! SETTINGS_HEADER_TABLE_SIZE changes sent and acknowledged in between (an item starting with
//! 0xff is a settings change: the next 4 bytes the size, then whether it is acknowledged).
#![no_main]

use libfuzzer_sys::fuzz_target;
use modtrace::proto::http2::hpack::{decode_integer, HeaderDecoder};

fuzz_target!(|data: &[u8]| {
    let mut dec = HeaderDecoder::new(4096, 8192, 4);
    for item in modtrace_fuzz::items(data) {
        if let [0xff, a, b, c, d, rest @ ..] = item {
            dec.settings_sent(u32::from_be_bytes([*a, *b, *c, *d]));
            if rest.first().is_some_and(|x| x & 1 == 1) {
                dec.settings_acked();
            }
            continue;
        }
        let _ = decode_integer(item, 5);
        if let Ok(list) = dec.decode(item) {
            assert!(dec.table_max() <= 4096, "table above the cap");
            let _ = list;
        }
    }
});
