//! TCP reassembly driven by an arbitrary segment sequence (the `arbitrary` crate): a few
//! endpoints, sequence numbers near a per-direction base (so segments overlap, leave holes and
//! repeat with other bytes) or anywhere, any flags, truncated segments, time that pauses and
//! steps back. The flow table's limits are small so that every limit is reached; after each
//! segment the table stays within them, and the events keep the flow lifecycle.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use modtrace::decode::{TcpFlags, TcpSegment};
use modtrace::flow::{FlowEvent, FlowId, FlowTable, Limits};
use modtrace::time::Ts;
use std::borrow::Cow;
use std::collections::HashMap;
use std::net::SocketAddr;

const HOSTS: [&str; 4] = [
    "10.0.0.1:40000",
    "10.0.0.2:443",
    "10.0.0.3:8080",
    "[::1]:50000",
];
const BASES: [u32; 4] = [0, u32::MAX - 3000, 1 << 31, 12345];

#[derive(Arbitrary, Debug)]
struct Segment {
    from: u8,
    to: u8,
    /// Offset from the pair's base, or (with `anywhere`) the sequence number itself.
    seq: u16,
    ack: u16,
    anywhere: bool,
    syn: bool,
    ack_flag: bool,
    fin: bool,
    rst: bool,
    psh: bool,
    /// Bytes on the wire beyond those captured (snaplen truncation).
    cut: Option<u16>,
    /// Milliseconds since the previous segment; negative steps back (merged captures).
    dt: i16,
    payload: Vec<u8>,
}

#[derive(Arbitrary, Debug)]
struct Input {
    per_flow_buffer: u16,
    global_buffer: u16,
    max_flows: u8,
    segments: Vec<Segment>,
}

fuzz_target!(|input: Input| {
    let limits = Limits {
        per_flow_buffer: usize::from(input.per_flow_buffer),
        global_buffer: usize::from(input.global_buffer),
        idle_timeout_ns: 50_000_000,
        max_flows: usize::from(input.max_flows % 8) + 1,
    };
    let hosts: Vec<SocketAddr> = HOSTS.iter().map(|h| h.parse().unwrap()).collect();
    let mut table = FlowTable::new(limits.clone());
    let mut all = Vec::new();
    let mut ts = 0i64;
    for (i, s) in input.segments.iter().enumerate() {
        let a = usize::from(s.from) % hosts.len();
        let b = (a + 1 + usize::from(s.to) % (hosts.len() - 1)) % hosts.len();
        let base = BASES[(a * 3 + b) % BASES.len()];
        let seq = if s.anywhere {
            u32::from(s.seq) << 16 | u32::from(s.ack)
        } else {
            base.wrapping_add(u32::from(s.seq))
        };
        let ack = BASES[(b * 3 + a) % BASES.len()].wrapping_add(u32::from(s.ack));
        let wire_len = s.payload.len() as u32 + s.cut.map_or(0, u32::from);
        let seg = TcpSegment {
            src: hosts[a],
            dst: hosts[b],
            seq,
            ack,
            flags: TcpFlags {
                syn: s.syn,
                ack: s.ack_flag,
                fin: s.fin,
                rst: s.rst,
                psh: s.psh,
            },
            payload: Cow::Borrowed(&s.payload),
            wire_len,
            truncated: s.cut.is_some(),
        };
        ts += i64::from(s.dt) * 1_000_000;
        let mut out = Vec::new();
        table.on_tcp(Ts(ts), i as u64 + 1, &seg, &mut out);
        all.extend(out);
        assert!(
            table.buffered_bytes() <= limits.global_buffer,
            "global buffer exceeded"
        );
        assert!(
            table.tracked() <= limits.max_flows,
            "too many flows tracked"
        );
    }
    let mut out = Vec::new();
    table.finish(Ts(ts), &mut out);
    all.extend(out);
    assert_eq!(table.buffered_bytes(), 0, "bytes held after finish");
    assert_eq!(table.tracked(), 0, "flows tracked after finish");
    check_lifecycle(&all);
});

/// Every flow is opened once, closed once, and has no event outside that span.
fn check_lifecycle(events: &[FlowEvent]) {
    let mut closed: HashMap<FlowId, bool> = HashMap::new();
    for ev in events {
        let id = ev.flow();
        match ev {
            FlowEvent::Opened(_) => assert!(closed.insert(id, false).is_none(), "opened twice"),
            FlowEvent::Closed { .. } => {
                let c = closed.get_mut(&id).expect("closed before opened");
                assert!(!*c, "closed twice");
                *c = true;
            }
            _ => assert_eq!(
                closed.get(&id),
                Some(&false),
                "event outside the flow's life"
            ),
        }
    }
    assert!(closed.values().all(|c| *c), "a flow never closed");
}
