//! HTTP/2 with HPACK: one reassembled connection in the chunk format through `Http2Conn`, with
//! the default limits and with small ones (streams, header lists and blocks, frame payloads,
//! table size, held bytes), so that each limit is reached. Kept bodies stay within
//! `max_body_kept`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modtrace::proto::http2::{Http2Conn, Http2Limits};
use modtrace::proto::HttpLimits;

fn run(data: &[u8], limits: HttpLimits, h2: Http2Limits) {
    let max_body = limits.max_body_kept;
    modtrace_fuzz::drive_http(&mut Http2Conn::with_limits(1, limits, h2), data, max_body);
}

fuzz_target!(|data: &[u8]| {
    run(data, HttpLimits::default(), Http2Limits::default());
    run(
        data,
        HttpLimits {
            max_body_kept: 64,
            overflow_events: true,
            ..HttpLimits::default()
        },
        Http2Limits {
            max_streams: 3,
            max_header_list_size: 256,
            max_header_block_bytes: 512,
            max_frame_payload: 4096,
            max_hpack_table_size: 256,
            max_control_payload: 64,
            max_pending_settings: 2,
            max_held_bytes: 1024,
        },
    );
});
