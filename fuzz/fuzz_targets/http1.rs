//! HTTP/1 both directions: one reassembled connection in the chunk format (requests, responses,
//! gaps, ends in any order) through `Http1Conn`, with the default limits and with small ones
//! (body overflow events on). Kept bodies stay within `max_body_kept`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modtrace::proto::http1::Http1Conn;
use modtrace::proto::HttpLimits;

fn run(data: &[u8], limits: HttpLimits) {
    let max_body = limits.max_body_kept;
    modtrace_fuzz::drive_http(&mut Http1Conn::new(1, limits), data, max_body);
}

fuzz_target!(|data: &[u8]| {
    run(data, HttpLimits::default());
    run(
        data,
        HttpLimits {
            max_head_bytes: 512,
            max_body_kept: 64,
            max_pending_requests: 2,
            max_gzip_ratio: 4,
            overflow_events: true,
        },
    );
});
