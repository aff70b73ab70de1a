//! HTTP/2 with HPACK: one reassembled connection in the chunk format through `Http2Conn`, with
//! the default limits and with small ones (streams, header lists and blocks, frame payloads,
//! table size, held bytes), so that each limit is reached. Kept bodies stay within
//! `max_body_kept`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modtrace::proto::http2::{Http2Conn, Http2Limits};
use modtrace::proto::{HttpEvent, HttpLimits};
use modtrace::time::Ts;
use modtrace_fuzz::Chunk;

fn run(data: &[u8], limits: HttpLimits, h2: Http2Limits) {
    let max_body = limits.max_body_kept;
    let mut conn = Http2Conn::with_limits(1, limits, h2);
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
