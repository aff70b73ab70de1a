//! HTTP/1 both directions: one reassembled connection in the chunk format (requests, responses,
//! gaps, ends in any order) through `Http1Conn`, with the default limits and with small ones
//! (body overflow events on). Kept bodies stay within `max_body_kept`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modtrace::proto::http1::Http1Conn;
use modtrace::proto::{HttpEvent, HttpLimits};
use modtrace::time::Ts;
use modtrace_fuzz::Chunk;

fn run(data: &[u8], limits: HttpLimits) {
    let max_body = limits.max_body_kept;
    let mut conn = Http1Conn::new(1, limits);
    let mut out = Vec::new();
    for (i, c) in modtrace_fuzz::chunks(data).into_iter().enumerate() {
        let (ts, packet) = (Ts(i as i64 * 1000), i as u64 + 1);
        match c {
            Chunk::Data(dir, bytes) => conn.on_data(dir, ts, packet, bytes, &mut out),
            Chunk::Gap(dir, len) => conn.on_gap(dir, ts, len, &mut out),
            Chunk::End(dir) => conn.on_end(dir, ts, packet, &mut out),
        }
    }
    conn.finish(Ts(i64::MAX), &mut out);
    for ev in &out {
        if let HttpEvent::Exchange(x) = ev {
            if let Some(r) = &x.response {
                assert!(r.body.data.len() <= max_body, "body kept past the limit");
            }
        }
    }
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
