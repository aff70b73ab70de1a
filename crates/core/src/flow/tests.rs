//! Flow table transcripts: synthetic segments in, events out (rendered one line per event).

use super::*;
use crate::decode::{TcpFlags, TcpSegment};
use std::borrow::Cow;
use std::collections::HashMap;

const C: &str = "10.0.0.1:40000";
const S: &str = "10.0.0.2:443";
const MS: i64 = 1_000_000;

fn seg(
    src: &str,
    dst: &str,
    seq: u32,
    ack: u32,
    flags: &str,
    payload: &[u8],
) -> TcpSegment<'static> {
    let mut f = TcpFlags::default();
    for ch in flags.chars() {
        match ch {
            'S' => f.syn = true,
            'A' => f.ack = true,
            'F' => f.fin = true,
            'R' => f.rst = true,
            'P' => f.psh = true,
            _ => panic!("flag {ch}"),
        }
    }
    TcpSegment {
        src: src.parse().unwrap(),
        dst: dst.parse().unwrap(),
        seq,
        ack,
        flags: f,
        payload: Cow::Owned(payload.to_vec()),
        wire_len: payload.len() as u32,
        truncated: false,
    }
}

fn truncated(mut s: TcpSegment<'static>, wire_len: u32) -> TcpSegment<'static> {
    s.wire_len = wire_len;
    s.truncated = true;
    s
}

fn arrow(dir: &Dir) -> &'static str {
    match dir {
        Dir::ToServer => ">",
        Dir::ToClient => "<",
    }
}

fn render(ev: &FlowEvent) -> String {
    match ev {
        FlowEvent::Opened(i) => format!(
            "{} open {} -> {}{}",
            i.id,
            i.client,
            i.server,
            if i.saw_syn { "" } else { " midstream" }
        ),
        FlowEvent::Data {
            flow,
            dir,
            packet,
            data,
            ..
        } => {
            format!(
                "{flow} data {} {:?} #{packet}",
                arrow(dir),
                String::from_utf8_lossy(data)
            )
        }
        FlowEvent::Gap { flow, dir, len, .. } => format!("{flow} gap {} {len}", arrow(dir)),
        FlowEvent::Fin { flow, dir, .. } => format!("{flow} fin {}", arrow(dir)),
        FlowEvent::Reset { flow, dir, .. } => format!("{flow} rst {}", arrow(dir)),
        FlowEvent::Injection {
            flow,
            dir,
            seq,
            len,
            packet,
            ..
        } => {
            format!("{flow} inject {} seq={seq} len={len} #{packet}", arrow(dir))
        }
        FlowEvent::Closed { flow, reason, .. } => format!("{flow} closed {reason:?}"),
    }
}

struct Harness {
    table: FlowTable,
    packet: u64,
    all: Vec<FlowEvent>,
}

impl Harness {
    fn new(limits: Limits) -> Harness {
        Harness {
            table: FlowTable::new(limits),
            packet: 0,
            all: Vec::new(),
        }
    }
    fn feed_at(&mut self, ts_ns: i64, s: TcpSegment<'_>) -> Vec<String> {
        self.packet += 1;
        let mut out = Vec::new();
        self.table.on_tcp(Ts(ts_ns), self.packet, &s, &mut out);
        self.all.extend(out.iter().cloned());
        out.iter().map(render).collect()
    }
    /// Packets 1 ms apart.
    fn feed(&mut self, s: TcpSegment<'_>) -> Vec<String> {
        let ts = (self.packet as i64 + 1) * MS;
        self.feed_at(ts, s)
    }
    fn finish(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        self.table
            .finish(Ts((self.packet as i64 + 1) * MS), &mut out);
        self.all.extend(out.iter().cloned());
        check_lifecycle(&self.all);
        assert_eq!(self.table.buffered_bytes(), 0);
        out.iter().map(render).collect()
    }
    /// Three-way handshake: client ISN `c`, server ISN `s`.
    fn handshake(&mut self, c: u32, s: u32) -> Vec<String> {
        let mut ev = self.feed(seg(C, S, c, 0, "S", b""));
        ev.extend(self.feed(seg(S, C, s, c.wrapping_add(1), "SA", b"")));
        ev.extend(self.feed(seg(C, S, c.wrapping_add(1), s.wrapping_add(1), "A", b"")));
        ev
    }
    fn stats(&self) -> &FlowStats {
        self.table.stats()
    }
}

/// Every flow's events start with Opened and end with exactly one Closed.
fn check_lifecycle(events: &[FlowEvent]) {
    let mut state: HashMap<FlowId, bool> = HashMap::new(); // id -> closed
    for ev in events {
        let id = ev.flow();
        match ev {
            FlowEvent::Opened(_) => {
                assert!(state.insert(id, false).is_none(), "flow {id} opened twice");
            }
            FlowEvent::Closed { .. } => {
                let closed = state
                    .get_mut(&id)
                    .unwrap_or_else(|| panic!("flow {id} closed before opened"));
                assert!(!*closed, "flow {id} closed twice");
                *closed = true;
            }
            _ => {
                let closed = state
                    .get(&id)
                    .unwrap_or_else(|| panic!("flow {id}: event before Opened: {ev:?}"));
                assert!(!closed, "flow {id}: event after Closed: {ev:?}");
            }
        }
    }
    for (id, closed) in state {
        assert!(closed, "flow {id} never closed");
    }
    // Ids are assigned sequentially from 1.
    let mut ids: Vec<FlowId> = events
        .iter()
        .filter_map(|e| {
            if let FlowEvent::Opened(i) = e {
                Some(i.id)
            } else {
                None
            }
        })
        .collect();
    let n = ids.len() as u64;
    ids.sort_unstable();
    assert_eq!(ids, (1..=n).collect::<Vec<_>>());
}

#[test]
fn handshake_data_both_ways_and_fin_both_ways() {
    let mut h = Harness::new(Limits::default());
    assert_eq!(
        h.handshake(1000, 5000),
        ["1 open 10.0.0.1:40000 -> 10.0.0.2:443"]
    );
    assert_eq!(
        h.feed(seg(C, S, 1001, 5001, "PA", b"GET /")),
        [r#"1 data > "GET /" #4"#]
    );
    assert_eq!(
        h.feed(seg(S, C, 5001, 1006, "PA", b"HTTP/1.1 200")),
        [r#"1 data < "HTTP/1.1 200" #5"#]
    );
    assert_eq!(h.feed(seg(C, S, 1006, 5013, "FA", b"")), ["1 fin >"]);
    assert_eq!(
        h.feed(seg(S, C, 5013, 1007, "FA", b"")),
        ["1 fin <", "1 closed Fin"]
    );
    // The last ACK belongs to the closed connection: no new flow.
    assert!(h.feed(seg(C, S, 1007, 5014, "A", b"")).is_empty());
    assert!(h.finish().is_empty());
    let st = h.stats();
    assert_eq!(
        (st.flows, st.midstream, st.gaps, st.retransmissions),
        (1, 0, 0, 0)
    );
}

#[test]
fn fin_carrying_data_and_half_close() {
    let mut h = Harness::new(Limits::default());
    h.handshake(1, 100);
    assert_eq!(
        h.feed(seg(C, S, 2, 101, "FPA", b"bye")),
        [r#"1 data > "bye" #4"#, "1 fin >"]
    );
    // The server keeps sending after the client's FIN (half close).
    assert_eq!(
        h.feed(seg(S, C, 101, 6, "PA", b"more")),
        [r#"1 data < "more" #5"#]
    );
    // Data after the FIN is not stream data.
    assert!(h.feed(seg(C, S, 6, 105, "PA", b"late")).is_empty());
    assert_eq!(
        h.feed(seg(S, C, 105, 6, "FA", b"")),
        ["1 fin <", "1 closed Fin"]
    );
    h.finish();
}

#[test]
fn sequence_wraparound() {
    let mut h = Harness::new(Limits::default());
    let isn = u32::MAX - 2;
    h.handshake(isn, 7);
    // Data starts at ISN+1 = u32::MAX-1 and runs across 0.
    assert_eq!(
        h.feed(seg(C, S, u32::MAX - 1, 8, "PA", b"abcdef")),
        [r#"1 data > "abcdef" #4"#]
    );
    // Out of order across the wrapped space: 7.. before 4..
    assert!(h.feed(seg(C, S, 7, 8, "PA", b"mno")).is_empty());
    assert_eq!(h.table.buffered_bytes(), 3);
    assert_eq!(
        h.feed(seg(C, S, 4, 8, "PA", b"jkl")),
        [r#"1 data > "jklmno" #6"#]
    );
    // A retransmission from before the wrap is recognised as old.
    assert!(h.feed(seg(C, S, u32::MAX, 8, "PA", b"bc")).is_empty());
    assert_eq!(h.stats().retransmissions, 1);
    assert_eq!(h.feed(seg(C, S, 10, 8, "FA", b"")), ["1 fin >"]);
    h.finish();
}

#[test]
fn out_of_order_then_fill() {
    let mut h = Harness::new(Limits::default());
    h.handshake(1000, 5000);
    assert!(h.feed(seg(C, S, 1011, 5001, "PA", b"!!")).is_empty());
    assert!(h.feed(seg(C, S, 1006, 5001, "PA", b"world")).is_empty());
    assert_eq!(h.table.buffered_bytes(), 7);
    assert_eq!(
        h.feed(seg(C, S, 1001, 5001, "PA", b"hello")),
        [r#"1 data > "helloworld!!" #6"#]
    );
    assert_eq!(h.table.buffered_bytes(), 0);
    assert_eq!(h.stats().gaps, 0);
    h.finish();
}

#[test]
fn duplicate_retransmission_is_counted_not_delivered() {
    let mut h = Harness::new(Limits::default());
    h.handshake(1000, 5000);
    h.feed(seg(C, S, 1001, 5001, "PA", b"hello"));
    assert!(h.feed(seg(C, S, 1001, 5001, "PA", b"hello")).is_empty());
    // Also a duplicate of a held out-of-order segment.
    assert!(h.feed(seg(C, S, 1010, 5001, "PA", b"xyz")).is_empty());
    assert!(h.feed(seg(C, S, 1010, 5001, "PA", b"xyz")).is_empty());
    assert_eq!(h.table.buffered_bytes(), 3);
    assert_eq!(h.stats().retransmissions, 2);
    assert_eq!(h.stats().injections, 0);
    h.finish();
}

#[test]
fn retransmission_with_different_bytes_is_an_injection_and_first_wins() {
    let mut h = Harness::new(Limits::default());
    h.handshake(1000, 5000);
    h.feed(seg(C, S, 1001, 5001, "PA", b"hello"));
    assert_eq!(
        h.feed(seg(C, S, 1001, 5001, "PA", b"jello")),
        ["1 inject > seq=1001 len=1 #5"]
    );
    // The stream continues after the original bytes.
    assert_eq!(
        h.feed(seg(C, S, 1006, 5001, "PA", b" world")),
        [r#"1 data > " world" #6"#]
    );
    assert_eq!((h.stats().injections, h.stats().retransmissions), (1, 0));
    h.finish();
}

#[test]
fn overlapping_partial_retransmission_with_different_bytes() {
    let mut h = Harness::new(Limits::default());
    h.handshake(1000, 5000);
    h.feed(seg(C, S, 1001, 5001, "PA", b"hello"));
    // Overlaps "lo" (1004..1006) with "lP": 'P' at 1005 differs; "wor" is new.
    assert_eq!(
        h.feed(seg(C, S, 1004, 5001, "PA", b"lPwor")),
        ["1 inject > seq=1005 len=1 #5", r#"1 data > "wor" #5"#]
    );
    // Overlap with a held piece: "world!" held at 1012; a segment covering 1009..1018 differs
    // at 1013..1014 of the held part; the held bytes win.
    assert!(h.feed(seg(C, S, 1012, 5001, "PA", b"world!")).is_empty());
    assert_eq!(
        h.feed(seg(C, S, 1009, 5001, "PA", b"ld wXXld!")),
        ["1 inject > seq=1013 len=2 #7", r#"1 data > "ld world!" #7"#]
    );
    assert_eq!(h.stats().injections, 2);
    h.finish();
}

#[test]
fn gap_declared_when_peer_acks_past_hole() {
    let mut h = Harness::new(Limits::default());
    h.handshake(1000, 5000);
    assert_eq!(
        h.feed(seg(S, C, 5001, 1001, "PA", b"AAAA")),
        [r#"1 data < "AAAA" #4"#]
    );
    // 5005..5009 never captured; 5009..5013 held.
    assert!(h.feed(seg(S, C, 5009, 1001, "PA", b"CCCC")).is_empty());
    // An ACK of 5005 says nothing new.
    assert!(h.feed(seg(C, S, 1001, 5005, "A", b"")).is_empty());
    // The client acknowledges everything: the hole was lost by the capture.
    assert_eq!(
        h.feed(seg(C, S, 1001, 5013, "A", b"")),
        ["1 gap < 4", r#"1 data < "CCCC" #7"#]
    );
    assert_eq!((h.stats().gaps, h.stats().gap_bytes), (1, 4));
    assert_eq!(h.table.buffered_bytes(), 0);
    h.finish();
}

#[test]
fn ack_into_the_middle_of_a_hole_declares_only_the_acked_part() {
    let mut h = Harness::new(Limits::default());
    h.handshake(1000, 5000);
    h.feed(seg(S, C, 5001, 1001, "PA", b"AAAA"));
    assert!(h.feed(seg(S, C, 5009, 1001, "PA", b"CCCC")).is_empty());
    assert_eq!(h.feed(seg(C, S, 1001, 5007, "A", b"")), ["1 gap < 2"]);
    // The rest of the hole arrives: its first half falls in the gap (counted as a
    // retransmission, nothing to compare), the second half fills the hole.
    assert_eq!(
        h.feed(seg(S, C, 5005, 1001, "PA", b"BBbb")),
        [r#"1 data < "bbCCCC" #7"#]
    );
    assert_eq!(h.stats().retransmissions, 1);
    h.finish();
}

#[test]
fn gap_on_per_flow_buffer_limit() {
    let mut h = Harness::new(Limits {
        per_flow_buffer: 10,
        ..Limits::default()
    });
    h.handshake(1000, 5000);
    // 1001..1003 missing.
    assert!(h.feed(seg(C, S, 1003, 5001, "PA", b"aaaa")).is_empty());
    assert!(h.feed(seg(C, S, 1007, 5001, "PA", b"bbbb")).is_empty());
    assert_eq!(h.table.buffered_bytes(), 8);
    assert_eq!(
        h.feed(seg(C, S, 1011, 5001, "PA", b"cccc")),
        ["1 gap > 2", r#"1 data > "aaaabbbbcccc" #6"#]
    );
    let st = h.stats();
    assert_eq!((st.buffer_limit_hits, st.gaps, st.gap_bytes), (1, 1, 2));
    assert_eq!(h.table.buffered_bytes(), 0);
    // A hole with a later hole behind it: only as much is skipped as is needed.
    assert!(h.feed(seg(C, S, 1017, 5001, "PA", b"dddd")).is_empty()); // hole 1015..1017
    assert!(h.feed(seg(C, S, 1023, 5001, "PA", b"eeee")).is_empty()); // hole 1021..1023
    assert_eq!(
        h.feed(seg(C, S, 1029, 5001, "PA", b"ffff")),
        ["1 gap > 2", r#"1 data > "dddd" #9"#]
    );
    assert_eq!(h.table.buffered_bytes(), 8);
    h.finish();
}

#[test]
fn global_buffer_limit_across_two_flows() {
    let mut h = Harness::new(Limits {
        per_flow_buffer: 100,
        global_buffer: 10,
        ..Limits::default()
    });
    const C2: &str = "10.0.0.3:40001";
    h.handshake(1000, 5000);
    h.feed(seg(C2, S, 1, 0, "S", b""));
    // Flow 1 holds 8 bytes.
    assert!(h.feed(seg(C, S, 1003, 5001, "PA", b"aaaabbbb")).is_empty());
    // Flow 2 cannot hold 4 more: it declares its own hole a gap at once. (It is said open
    // with its first packet after the SYN.)
    assert_eq!(
        h.feed(seg(C2, S, 4, 0, "PA", b"xxxx")),
        [
            "2 open 10.0.0.3:40001 -> 10.0.0.2:443",
            "2 gap > 2",
            r#"2 data > "xxxx" #6"#
        ]
    );
    assert_eq!(h.table.buffered_bytes(), 8);
    assert_eq!(h.stats().buffer_limit_hits, 1);
    // Flow 1 is still waiting for its hole.
    assert_eq!(
        h.feed(seg(C, S, 1001, 5001, "PA", b"..")),
        [r#"1 data > "..aaaabbbb" #7"#]
    );
    h.finish();
}

#[test]
fn midstream_pickup_ports_tell_the_client() {
    let mut h = Harness::new(Limits::default());
    // The server (port 443) speaks first in the capture.
    assert_eq!(
        h.feed(seg(S, C, 7000, 3000, "PA", b"HTTP/1.1")),
        [
            "1 open 10.0.0.1:40000 -> 10.0.0.2:443 midstream",
            r#"1 data < "HTTP/1.1" #1"#
        ]
    );
    assert_eq!(
        h.feed(seg(C, S, 3000, 7008, "PA", b"GET")),
        [r#"1 data > "GET" #2"#]
    );
    // Ephemeral vs. listening port above 1024.
    assert_eq!(
        h.feed(seg("10.0.0.2:8080", "10.0.0.1:50000", 1, 1, "A", b"")),
        ["2 open 10.0.0.1:50000 -> 10.0.0.2:8080 midstream"]
    );
    assert_eq!(h.stats().midstream, 2);
    h.finish();
}

#[test]
fn midstream_pickup_ports_do_not_tell() {
    let mut h = Harness::new(Limits::default());
    let (a, b) = ("10.0.0.1:5000", "10.0.0.2:6000");
    // Both ports registered-range: the first sender is the client.
    assert_eq!(
        h.feed(seg(b, a, 10, 20, "PA", b"hi")),
        [
            "1 open 10.0.0.2:6000 -> 10.0.0.1:5000 midstream",
            r#"1 data > "hi" #1"#
        ]
    );
    assert_eq!(
        h.feed(seg(a, b, 20, 12, "PA", b"yo")),
        [r#"1 data < "yo" #2"#]
    );
    assert_eq!(h.finish(), ["1 closed End"]);
    let info = match &h.all[0] {
        FlowEvent::Opened(i) => i.clone(),
        e => panic!("{e:?}"),
    };
    assert!(!info.saw_syn);
    assert_eq!(info.first_packet, 1);
}

#[test]
fn syn_ack_first_sets_roles_and_client_start() {
    let mut h = Harness::new(Limits::default());
    assert_eq!(
        h.feed(seg(S, C, 5000, 1001, "SA", b"")),
        ["1 open 10.0.0.1:40000 -> 10.0.0.2:443"]
    );
    // Client data at the SYN-ACK's ack is in order.
    assert_eq!(
        h.feed(seg(C, S, 1001, 5001, "PA", b"x")),
        [r#"1 data > "x" #2"#]
    );
    h.finish();
}

#[test]
fn rst_closes_after_flushing_holes() {
    let mut h = Harness::new(Limits::default());
    h.handshake(1000, 5000);
    assert!(h.feed(seg(S, C, 5003, 1001, "PA", b"tail")).is_empty());
    assert_eq!(
        h.feed(seg(C, S, 1001, 0, "R", b"diagnostic")),
        [
            "1 gap < 2",
            r#"1 data < "tail" #5"#,
            "1 rst >",
            "1 closed Reset"
        ]
    );
    // Late packets of the reset connection are absorbed.
    assert!(h.feed(seg(S, C, 5007, 1001, "PA", b"late")).is_empty());
    assert!(h.feed(seg(S, C, 5007, 1001, "R", b"")).is_empty());
    assert!(h.finish().is_empty());
    assert_eq!(h.stats().flows, 1);
}

#[test]
fn fin_after_a_hole_declares_the_gap_first() {
    let mut h = Harness::new(Limits::default());
    h.handshake(1000, 5000);
    assert!(h.feed(seg(S, C, 5005, 1001, "PA", b"held")).is_empty());
    assert_eq!(
        h.feed(seg(S, C, 5012, 1001, "FA", b"")),
        ["1 gap < 4", r#"1 data < "held" #5"#, "1 gap < 3", "1 fin <"]
    );
    h.finish();
}

#[test]
fn idle_timeout_closes_and_a_later_packet_opens_a_new_flow() {
    let sec = 1_000_000_000;
    let mut h = Harness::new(Limits {
        idle_timeout_ns: 10 * sec,
        ..Limits::default()
    });
    h.feed_at(0, seg(C, S, 1000, 0, "S", b""));
    h.feed_at(sec, seg(C, S, 1003, 0, "PA", b"late")); // held behind a hole
    h.feed_at(2 * sec, seg("10.0.0.9:40000", S, 1, 0, "S", b""));
    // 20 s later: the same key. Flow 1 closes idle (its hole flushed), flow 2 (idle too, a
    // SYN alone: said open only now) is closed by the sweep first, then flow 3 opens
    // midstream.
    assert_eq!(
        h.feed_at(25 * sec, seg(C, S, 2000, 0, "PA", b"new")),
        [
            "1 gap > 2",
            r#"1 data > "late" #4"#,
            "1 closed Idle",
            "2 open 10.0.0.9:40000 -> 10.0.0.2:443",
            "2 closed Idle",
            "3 open 10.0.0.1:40000 -> 10.0.0.2:443 midstream",
            r#"3 data > "new" #4"#
        ]
    );
    h.finish();
}

#[test]
fn idle_check_on_own_key_between_sweeps() {
    let sec = 1_000_000_000;
    let mut h = Harness::new(Limits {
        idle_timeout_ns: 10 * sec,
        ..Limits::default()
    });
    h.feed_at(0, seg(C, S, 1000, 0, "S", b""));
    // A sweep runs at 9.5 s (nothing idle yet, nothing said: flow 2 is a SYN alone); at
    // 10.2 s no sweep is due, yet flow 1 has been idle 10.2 s: its own packet finds that.
    assert!(h
        .feed_at(9 * sec + sec / 2, seg("10.0.0.9:1", S, 1, 0, "S", b""))
        .is_empty());
    let ev = h.feed_at(10 * sec + sec / 5, seg(C, S, 1001, 0, "PA", b"x"));
    assert_eq!(ev[0], "1 open 10.0.0.1:40000 -> 10.0.0.2:443");
    assert_eq!(ev[1], "1 closed Idle");
    assert_eq!(ev[2], "3 open 10.0.0.1:40000 -> 10.0.0.2:443 midstream");
    h.finish();
}

#[test]
fn max_flows_evicts_the_least_recently_active() {
    let mut h = Harness::new(Limits {
        max_flows: 2,
        ..Limits::default()
    });
    let (a, b, c) = ("10.0.0.1:40001", "10.0.0.1:40002", "10.0.0.1:40003");
    h.feed(seg(a, S, 1, 0, "S", b""));
    h.feed(seg(b, S, 1, 0, "S", b""));
    h.feed(seg(a, S, 2, 0, "PA", b"x"));
    // Flow 2, a SYN alone, is said open only as it is evicted; flow 3, a SYN alone too, is
    // not said yet.
    assert_eq!(
        h.feed(seg(c, S, 1, 0, "S", b"")),
        ["2 open 10.0.0.1:40002 -> 10.0.0.2:443", "2 closed Evicted"]
    );
    assert_eq!(h.stats().evicted, 1);
    assert_eq!(h.table.tracked(), 2);
    // Flow 1 is still live.
    assert_eq!(h.feed(seg(a, S, 3, 0, "PA", b"y")), [r#"1 data > "y" #5"#]);
    assert_eq!(
        h.finish(),
        [
            "1 closed End",
            "3 open 10.0.0.1:40003 -> 10.0.0.2:443",
            "3 closed End"
        ]
    );
}

#[test]
fn port_reuse_with_a_new_syn_after_close() {
    let mut h = Harness::new(Limits::default());
    h.handshake(1000, 5000);
    h.feed(seg(C, S, 1001, 5001, "FA", b""));
    assert_eq!(
        h.feed(seg(S, C, 5001, 1002, "FA", b"")),
        ["1 fin <", "1 closed Fin"]
    );
    // A retransmitted SYN of the old connection is absorbed.
    assert!(h.feed(seg(C, S, 1000, 0, "S", b"")).is_empty());
    // A SYN with a new ISN is a new connection on the same ports (said open with its next
    // packet).
    assert!(h.feed(seg(C, S, 90_000, 0, "S", b"")).is_empty());
    assert_eq!(
        h.feed(seg(C, S, 90_001, 0, "PA", b"again")),
        [
            "2 open 10.0.0.1:40000 -> 10.0.0.2:443",
            r#"2 data > "again" #8"#
        ]
    );
    assert_eq!(h.finish(), ["2 closed End"]);
    assert_eq!(h.stats().flows, 2);
}

#[test]
fn port_reuse_after_reset_and_after_half_close() {
    let mut h = Harness::new(Limits::default());
    h.handshake(1000, 5000);
    h.feed(seg(S, C, 5001, 1001, "RA", b""));
    assert!(h.feed(seg(C, S, 7000, 0, "S", b"")).is_empty());
    // Flow 2 half-closed (the server's FIN was not captured); a new SYN closes it.
    assert_eq!(
        h.feed(seg(C, S, 7001, 0, "FA", b"")),
        ["2 open 10.0.0.1:40000 -> 10.0.0.2:443", "2 fin >"]
    );
    assert_eq!(h.feed(seg(C, S, 8000, 0, "S", b"")), ["2 closed Fin"]);
    // A SYN with another ISN on a flow that has seen only a SYN is not a new connection.
    assert!(h.feed(seg(C, S, 123, 0, "S", b"")).is_empty());
    assert_eq!(
        h.finish(),
        ["3 open 10.0.0.1:40000 -> 10.0.0.2:443", "3 closed End"]
    );
}

#[test]
fn truncated_payload_gives_data_then_gap() {
    let mut h = Harness::new(Limits::default());
    h.handshake(1000, 5000);
    assert_eq!(
        h.feed(truncated(seg(S, C, 5001, 1001, "PA", b"HTTP"), 10)),
        [r#"1 data < "HTTP" #4"#, "1 gap < 6"]
    );
    assert_eq!(
        h.feed(seg(S, C, 5011, 1001, "PA", b"next")),
        [r#"1 data < "next" #5"#]
    );
    // Out of order: a truncated segment held, then its hole filled.
    assert!(h
        .feed(truncated(seg(S, C, 5017, 1001, "PA", b"ab"), 5))
        .is_empty());
    assert_eq!(
        h.feed(seg(S, C, 5015, 1001, "PA", b"..")),
        [r#"1 data < "..ab" #7"#, "1 gap < 3"]
    );
    assert_eq!(
        h.feed(seg(S, C, 5022, 1001, "PA", b"z")),
        [r#"1 data < "z" #8"#]
    );
    assert_eq!((h.stats().gaps, h.stats().gap_bytes), (2, 9));
    h.finish();
}

#[test]
fn finish_flushes_holes_as_gaps_in_flow_order() {
    let mut h = Harness::new(Limits::default());
    const C2: &str = "10.0.0.3:40001";
    h.handshake(1000, 5000);
    h.feed(seg(C2, S, 1, 0, "S", b""));
    h.feed(seg(C2, S, 5, 0, "PA", b"two"));
    h.feed(seg(C, S, 1004, 5001, "PA", b"one"));
    assert_eq!(h.table.buffered_bytes(), 6);
    assert_eq!(
        h.finish(),
        [
            "1 gap > 3",
            r#"1 data > "one" #6"#,
            "1 closed End",
            "2 gap > 3",
            r#"2 data > "two" #6"#,
            "2 closed End"
        ]
    );
    assert_eq!(h.table.tracked(), 0);
}

/// Deterministic xorshift64.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn random_segments_never_panic_and_stay_within_limits() {
    let limits = Limits {
        per_flow_buffer: 3000,
        global_buffer: 8000,
        idle_timeout_ns: 50 * MS,
        max_flows: 5,
    };
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut h = Harness::new(limits.clone());
    let hosts = [
        "10.0.0.1:40000",
        "10.0.0.2:443",
        "10.0.0.3:8080",
        "[::1]:50000",
    ];
    // Each direction keeps its own sequence base, so most segments land near each other.
    let bases = [
        0u32,
        u32::MAX - 3000,
        1 << 31,
        12345,
        7,
        u32::MAX - 10,
        99_999,
        1 << 30,
    ];
    let payload: Vec<u8> = (0..4000u32).map(|i| (i % 256) as u8).collect();
    let mut ts = 0i64;
    for _ in 0..20_000 {
        let ai = rng.below(hosts.len() as u64) as usize;
        let bi = (ai + 1 + rng.below(hosts.len() as u64 - 1) as usize) % hosts.len();
        let (a, b) = (hosts[ai], hosts[bi]);
        let base = bases[(ai * 3 + bi) % bases.len()];
        // Mostly near a base (overlaps, holes, retransmissions), sometimes anywhere.
        let seq = if rng.below(10) == 0 {
            rng.next() as u32
        } else {
            base.wrapping_add(rng.below(6000) as u32)
        };
        let ack = if rng.below(10) == 0 {
            rng.next() as u32
        } else {
            base.wrapping_add(rng.below(6000) as u32)
        };
        let len = match rng.below(4) {
            0 => 0,
            1 => rng.below(8) as usize,
            _ => rng.below(1500) as usize,
        };
        let off = rng.below(2000) as usize;
        let mut body = payload[off..off + len].to_vec();
        if rng.below(20) == 0 && !body.is_empty() {
            body[0] ^= 0xff;
        }
        let bits = rng.next();
        let flags = TcpFlags {
            syn: bits & 0x1f == 0,
            ack: bits & 0x300 != 0,
            fin: (bits >> 10) & 0x1f == 0,
            rst: (bits >> 15) & 0x3f == 0,
            psh: bits & 0x10000 != 0,
        };
        let mut s = seg(a, b, seq, ack, "", &body);
        s.flags = flags;
        if rng.below(15) == 0 {
            s.truncated = true;
            s.wire_len = len as u32 + rng.below(3000) as u32;
        }
        if rng.below(500) == 0 {
            ts += 60 * MS; // a pause: flows idle out
        } else if rng.below(30) != 0 {
            ts += rng.below(3 * MS as u64) as i64;
        } else {
            ts -= rng.below(MS as u64) as i64; // merged captures can step back
        }
        h.packet += 1;
        let mut out = Vec::new();
        h.table.on_tcp(Ts(ts), h.packet, &s, &mut out);
        h.all.extend(out);
        assert!(h.table.buffered_bytes() <= limits.global_buffer);
        assert!(h.table.max_held_per_dir() <= limits.per_flow_buffer);
        assert!(h.table.tracked() <= limits.max_flows);
    }
    h.finish();
    let closes = h.all.iter().filter_map(|e| match e {
        FlowEvent::Closed { reason, .. } => Some(*reason),
        _ => None,
    });
    let mut by_reason = std::collections::BTreeMap::new();
    for r in closes {
        *by_reason.entry(format!("{r:?}")).or_insert(0u32) += 1;
    }
    // Every way of closing was exercised.
    assert_eq!(by_reason.len(), 5, "{by_reason:?}");
    let st = h.stats().clone();
    assert!(
        st.flows > 10 && st.gaps > 0 && st.retransmissions > 0 && st.injections > 0,
        "{st:?}"
    );
    assert!(st.buffer_limit_hits > 0 && st.evicted > 0, "{st:?}");
}

#[test]
fn random_reordering_and_duplicates_reassemble_exactly() {
    let mut rng = Rng(42);
    for round in 0..20 {
        let isn = if round % 2 == 0 {
            u32::MAX - 5000
        } else {
            rng.next() as u32
        };
        let stream: Vec<u8> = (0..50_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        // Cut into random segments, then shuffle locally (reordering within a window) and
        // duplicate some, with overlapping re-cuts.
        let mut segs: Vec<(usize, usize)> = Vec::new();
        let mut at = 0;
        while at < stream.len() {
            let len = (1 + rng.below(1400) as usize).min(stream.len() - at);
            segs.push((at, len));
            if rng.below(8) == 0 {
                let back = rng.below(at as u64 + 1) as usize;
                let l = (1 + rng.below(3000) as usize).min(stream.len() - back);
                segs.push((back, l));
            }
            at += len;
        }
        for i in 0..segs.len() {
            let j = (i + rng.below(6) as usize).min(segs.len() - 1);
            segs.swap(i, j);
        }
        let mut h = Harness::new(Limits::default());
        h.feed(seg(C, S, isn, 0, "S", b""));
        for (off, len) in segs {
            let seq = isn.wrapping_add(1).wrapping_add(off as u32);
            h.feed(seg(C, S, seq, 0, "PA", &stream[off..off + len]));
        }
        h.finish();
        let mut got = Vec::new();
        for ev in &h.all {
            match ev {
                FlowEvent::Data { data, .. } => got.extend_from_slice(data),
                FlowEvent::Gap { .. } | FlowEvent::Injection { .. } => {
                    panic!("round {round}: {ev:?}")
                }
                _ => {}
            }
        }
        assert!(
            got == stream,
            "round {round}: {} of {} bytes",
            got.len(),
            stream.len()
        );
        assert_eq!(h.stats().injections, 0);
    }
}

#[test]
fn missed_syn_ack_server_stream_starts_at_the_clients_ack() {
    let mut h = Harness::new(Limits::default());
    h.feed(seg(C, S, 1000, 0, "S", b""));
    // The SYN-ACK was not captured; the handshake's ACK tells where the server's data starts.
    h.feed(seg(C, S, 1001, 5001, "A", b""));
    assert!(h.feed(seg(S, C, 5003, 1001, "PA", b"BB")).is_empty());
    assert_eq!(
        h.feed(seg(S, C, 5001, 1001, "PA", b"AA")),
        [r#"1 data < "AABB" #4"#]
    );
    h.finish();
}

/// Throughput of the in-order path (run: cargo test --release --lib flow::tests::throughput
/// -- --ignored --nocapture).
#[test]
#[ignore]
fn throughput() {
    let mut table = FlowTable::new(Limits::default());
    let body = vec![0x5au8; 1448];
    let flows = 16u32;
    let n = 400_000u32;
    let mut segs = Vec::new();
    for f in 0..flows {
        let c = format!("10.0.0.1:{}", 40000 + f);
        segs.push(seg(&c, S, 0, 0, "S", b""));
    }
    for i in 0..n {
        let f = i % flows;
        let c = format!("10.0.0.1:{}", 40000 + f);
        let k = i / flows;
        if i % 3 == 0 {
            segs.push(seg(S, &c, 0, 1 + k * 1448, "A", b""));
        }
        segs.push(seg(&c, S, 1 + k * 1448, 0, "PA", &body));
    }
    let start = std::time::Instant::now();
    let mut out = Vec::new();
    let mut bytes = 0usize;
    for (i, s) in segs.iter().enumerate() {
        table.on_tcp(Ts(i as i64 * 1000), i as u64 + 1, s, &mut out);
        for ev in out.drain(..) {
            if let FlowEvent::Data { data, .. } = ev {
                bytes += data.len();
            }
        }
    }
    let dt = start.elapsed();
    assert_eq!(bytes, n as usize * 1448);
    eprintln!(
        "{} segments, {} MB in {:?}: {:.0} MB/s, {:.0} ns/segment",
        segs.len(),
        bytes >> 20,
        dt,
        bytes as f64 / dt.as_secs_f64() / 1e6,
        dt.as_nanos() as f64 / segs.len() as f64
    );
}

#[test]
fn overlaps_older_than_the_compare_tail_are_counted_not_compared() {
    let mut h = Harness::new(Limits::default());
    h.table = FlowTable::with_tail_limits(Limits::default(), 8, 1 << 20);
    h.handshake(1000, 5000);
    h.feed(seg(C, S, 1001, 5001, "PA", b"0123456789abcdefghij"));
    // Bytes 1001..1013 fell out of the 8-byte tail: different bytes there are not comparable.
    assert!(h.feed(seg(C, S, 1001, 5001, "PA", b"XXXXX")).is_empty());
    assert_eq!((h.stats().retransmissions, h.stats().injections), (1, 0));
    // The last 8 bytes are still compared.
    assert_eq!(
        h.feed(seg(C, S, 1016, 5001, "PA", b"fgHij")),
        ["1 inject > seq=1018 len=1 #6"]
    );
    h.finish();
}

#[test]
fn held_piece_count_limit_declares_a_gap() {
    use super::reassembly::MAX_HELD_PIECES_PER_DIR;
    let mut h = Harness::new(Limits::default());
    h.handshake(1000, 5000);
    // One-byte pieces with one-byte holes between them: each is held until the count limit.
    for i in 0..MAX_HELD_PIECES_PER_DIR as u32 {
        assert!(h.feed(seg(C, S, 1002 + 2 * i, 5001, "PA", b"x")).is_empty());
    }
    assert_eq!(h.table.buffered_bytes(), MAX_HELD_PIECES_PER_DIR);
    let n = MAX_HELD_PIECES_PER_DIR as u32;
    let ev = h.feed(seg(C, S, 1002 + 2 * n, 5001, "PA", b"y"));
    // The first hole (1001) is declared; the first held byte delivered; the new piece fits.
    assert_eq!(ev, ["1 gap > 1", r#"1 data > "x" #4100"#]);
    assert_eq!(h.table.buffered_bytes(), MAX_HELD_PIECES_PER_DIR);
    assert_eq!(h.stats().buffer_limit_hits, 1);
    h.finish();
}
