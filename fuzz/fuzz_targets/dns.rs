//! DNS: the input as one message (UDP), then the same bytes as a TCP connection in the chunk
//! format (2-byte length framing per direction, gaps and resynchronisation).
#![no_main]

use libfuzzer_sys::fuzz_target;
use modtrace::proto::dns::{parse_message, DnsTcpConn};
use modtrace_fuzz::Chunk;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = parse_message(data) {
        // Names are bounded (RFC 1035 2.3.4: 255 octets, here as text with escapes).
        for q in &m.questions {
            assert!(q.name.len() <= 4 * 255, "question name too long");
        }
    }
    let mut conn = DnsTcpConn::default();
    let mut out = Vec::new();
    for c in modtrace_fuzz::chunks(data) {
        match c {
            Chunk::Data(dir, bytes) => conn.on_data(dir, bytes, &mut out),
            Chunk::Gap(dir, _) => conn.on_gap(dir),
            Chunk::End(_) => {}
        }
    }
});
