//! Link, IP and transport decoding with IPv4/IPv6 defragmentation: frames of any link type in
//! the fuzz crate's frames format, through a decoder with small defragmentation limits so that
//! expiry, the set limit and the byte limit are all reached.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modtrace::decode::{Decoder, DefragLimits, Transport};
use modtrace::source::{Frame, LinkType};
use modtrace::time::Ts;

fuzz_target!(|data: &[u8]| {
    let (link, frames) = modtrace_fuzz::frames(data);
    let mut decoder = Decoder::new(DefragLimits {
        max_sets: 8,
        max_bytes: 16 << 10,
        timeout_ns: 1_000_000_000,
    });
    let mut ts = 0i64;
    for f in frames {
        ts += i64::from(f.step) * 100_000_000;
        // The high bit of the step marks a snaplen-truncated frame.
        let orig_len = if f.step & 0x80 != 0 {
            f.data.len() as u32 + 100
        } else {
            f.data.len() as u32
        };
        let frame = Frame {
            ts: Ts(ts),
            link: LinkType(link),
            data: f.data.to_vec(),
            orig_len,
            file: 0,
        };
        match decoder.decode(&frame) {
            Some(Transport::Tcp(seg)) => {
                assert!(seg.payload.len() <= u16::MAX as usize * 64);
            }
            Some(Transport::Udp(d)) => {
                assert!(d.payload.len() <= u16::MAX as usize * 64);
            }
            None => {}
        }
    }
    let _ = decoder.stats();
});
