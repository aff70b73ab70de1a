//! The flow table: TCP segments to flows (keyed by the unordered endpoint pair), client/server
//! roles, per-direction reassembly, FIN/RST/idle/eviction closing, port reuse.
//!
//! A closed flow leaves a small tombstone (ids and ISNs, no buffers) until it idles out or is
//! evicted, so the last ACK, a retransmitted FIN or a late RST do not open a new flow; a SYN
//! with a new ISN on the same ports does (port reuse). Tombstones count towards
//! `Limits::max_flows` and are evicted like flows (silently: their Closed was already emitted).
//!
//! Least-recently-active order is a BTreeMap filed lazily: an entry is refiled only when it
//! reaches the old end and turns out to have seen packets since, so eviction and the idle sweep
//! are amortised O(log n) per packet, with no per-packet index update.

use super::reassembly::{Ctx, HalfStream, Shared, RETRANSMIT_TAIL_GLOBAL, RETRANSMIT_TAIL_PER_DIR};
use super::{CloseReason, Dir, FlowEvent, FlowId, FlowInfo, FlowStats, Limits};
use crate::decode::TcpSegment;
use crate::time::Ts;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

/// One end of a flow, packed: the family, the address (IPv4 in the first 4 bytes) and the
/// port. 19 bytes against a `SocketAddr`'s 32: the flow table's buckets hold two, and a flood
/// keeps up to `Limits::max_flows` entries in twice as many buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct End {
    v6: bool,
    ip: [u8; 16],
    port: [u8; 2],
}

impl End {
    fn of(a: SocketAddr) -> End {
        let mut ip = [0u8; 16];
        let v6 = match a.ip() {
            std::net::IpAddr::V4(v4) => {
                ip[..4].copy_from_slice(&v4.octets());
                false
            }
            std::net::IpAddr::V6(v6) => {
                ip = v6.octets();
                true
            }
        };
        End {
            v6,
            ip,
            port: a.port().to_be_bytes(),
        }
    }

    fn addr(&self) -> SocketAddr {
        let port = u16::from_be_bytes(self.port);
        if self.v6 {
            SocketAddr::from((self.ip, port))
        } else {
            SocketAddr::from(([self.ip[0], self.ip[1], self.ip[2], self.ip[3]], port))
        }
    }
}

/// The unordered endpoint pair, lower end first.
type FlowKey = (End, End);

fn flow_key(a: SocketAddr, b: SocketAddr) -> FlowKey {
    let (a, b) = (End::of(a), End::of(b));
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

/// A SYN alone: no ACK, FIN, RST or payload.
fn is_bare_syn(seg: &TcpSegment<'_>) -> bool {
    let f = seg.flags;
    f.syn && !f.ack && !f.fin && !f.rst && seg.payload.is_empty() && !seg.truncated
}

/// Idle flows are looked for at most this often (capture time): the sweep walks the oldest
/// entries only, but once per packet would still be wasted work.
const SWEEP_INTERVAL_NS: i64 = 1_000_000_000;

struct Entry {
    id: FlowId,
    client: SocketAddr,
    /// Newest packet time seen (never moves backwards, so the index below stays valid).
    last_seen: Ts,
    /// Time under which the entry is filed in `FlowTable::by_age` (<= `last_seen`; refreshed
    /// lazily when the entry reaches the old end of the index).
    indexed: Ts,
    /// ISN of each direction's SYN, to tell a retransmitted SYN from a new connection.
    isn: [Option<u32>; 2],
    state: State,
}

/// What a flow is now.
enum State {
    /// Only the client's SYNs so far: a connection attempt, or one packet of a SYN flood or
    /// a scan. Nothing is allocated for its streams, and `Opened` is not said, until another
    /// packet comes or the entry ends (then `Opened` and `Closed` together): a flood of a
    /// million SYNs costs the table's entries, not a million stream pairs and flow contexts.
    Syn {
        first_ts: Ts,
        first_packet: u64,
    },
    Live(Box<Live>),
    /// Closed: a tombstone.
    Closed,
}

impl State {
    fn is_open(&self) -> bool {
        !matches!(self, State::Closed)
    }

    #[cfg(test)]
    fn live(&self) -> Option<&Live> {
        match self {
            State::Live(l) => Some(l),
            _ => None,
        }
    }
}

impl Entry {
    /// The flow as `Opened` says it (a flow still in `State::Syn`).
    fn info(&self, key: &FlowKey, first_ts: Ts, first_packet: u64) -> FlowInfo {
        FlowInfo {
            id: self.id,
            client: self.client,
            server: if key.0.addr() == self.client {
                key.1.addr()
            } else {
                key.0.addr()
            },
            first_ts,
            first_packet,
            saw_syn: true,
        }
    }

    /// The server's SYN was seen, or the flow began midstream (its client is a guess then,
    /// and the server did speak).
    fn answered(&self) -> bool {
        self.isn[Dir::ToClient.index()].is_some() || self.isn[Dir::ToServer.index()].is_none()
    }

    fn dir_of(&self, src: SocketAddr) -> Dir {
        if src == self.client {
            Dir::ToServer
        } else {
            Dir::ToClient
        }
    }

    /// A SYN from `dir` with sequence number `seq` starts a new connection on these ports
    /// when the old one is closed, or half-closed (a FIN whose counterpart the capture
    /// missed), and the ISN is not the one already seen (that would be a retransmitted SYN).
    fn is_port_reuse(&self, dir: Dir, seq: u32) -> bool {
        if self.isn[dir.index()] == Some(seq) {
            return false;
        }
        match &self.state {
            State::Closed => true,
            State::Syn { .. } => false,
            State::Live(live) => live.streams.iter().any(HalfStream::is_finished),
        }
    }
}

enum Lookup {
    Found,
    Missing,
    /// The entry ends (with this reason) and a new flow takes its key.
    Replace(CloseReason),
}

#[derive(Default)]
struct Live {
    streams: [HalfStream; 2],
}

pub struct FlowTable {
    shared: Shared,
    /// Boxed entries keep the table's buckets small: it holds up to `Limits::max_flows`
    /// entries and grows to twice that in buckets as flows come and go (a flood of SYNs).
    flows: HashMap<FlowKey, Box<Entry>>,
    /// Every entry (live or tombstone) by `(indexed, id)`: the least recently active is first.
    by_age: BTreeMap<(Ts, FlowId), FlowKey>,
    next_id: FlowId,
    last_sweep: Option<Ts>,
    last_packet: u64,
}

impl FlowTable {
    pub fn new(limits: Limits) -> FlowTable {
        FlowTable::with_tail_limits(limits, RETRANSMIT_TAIL_PER_DIR, RETRANSMIT_TAIL_GLOBAL)
    }

    /// Like `new`, with other sizes for the retransmission-compare tails (per direction and
    /// over all flows) than `RETRANSMIT_TAIL_PER_DIR` / `RETRANSMIT_TAIL_GLOBAL`.
    pub fn with_tail_limits(limits: Limits, tail_per_dir: usize, tail_global: usize) -> FlowTable {
        FlowTable {
            shared: Shared::new(limits, tail_per_dir, tail_global),
            flows: HashMap::new(),
            by_age: BTreeMap::new(),
            next_id: 1,
            last_sweep: None,
            last_packet: 0,
        }
    }

    /// Feeds one TCP segment (packet number `packet`, 1-based) and appends what it caused.
    /// Also expires idle flows relative to `ts`, at most once per second of capture time.
    pub fn on_tcp(&mut self, ts: Ts, packet: u64, seg: &TcpSegment<'_>, out: &mut Vec<FlowEvent>) {
        self.last_packet = packet;
        self.sweep_if_due(ts, packet, out);
        let key = flow_key(seg.src, seg.dst);
        let idle_ns = self.shared.limits.idle_timeout_ns;
        let found = match self.flows.get(&key) {
            None => Lookup::Missing,
            Some(e) => {
                if ts.0.saturating_sub(e.last_seen.0) > idle_ns {
                    Lookup::Replace(CloseReason::Idle)
                } else if seg.flags.syn && e.is_port_reuse(e.dir_of(seg.src), seg.seq) {
                    // The old connection ended with a FIN (ours or the one the capture
                    // missed); when it is a tombstone nothing is emitted.
                    Lookup::Replace(CloseReason::Fin)
                } else {
                    Lookup::Found
                }
            }
        };
        match found {
            Lookup::Found => {}
            Lookup::Missing => self.open(key, ts, packet, seg, out),
            Lookup::Replace(reason) => {
                self.remove(&key, ts, packet, reason, out);
                self.open(key, ts, packet, seg, out);
            }
        }
        self.process(&key, ts, packet, seg, out);
    }

    /// End of input: flushes what is buffered (holes become gaps) and closes every flow.
    pub fn finish(&mut self, ts: Ts, out: &mut Vec<FlowEvent>) {
        let mut live: Vec<(FlowId, FlowKey)> = self
            .flows
            .iter()
            .filter(|(_, e)| e.state.is_open())
            .map(|(k, e)| (e.id, *k))
            .collect();
        live.sort_unstable_by_key(|(id, _)| *id);
        for (_, key) in live {
            self.remove(&key, ts, self.last_packet, CloseReason::End, out);
        }
        self.flows.clear();
        self.by_age.clear();
    }

    pub fn stats(&self) -> &FlowStats {
        &self.shared.stats
    }

    /// Bytes currently held in out-of-order buffers (for tests of the limits).
    pub fn buffered_bytes(&self) -> usize {
        self.shared.held_total
    }

    /// Flows (live or closed tombstones) in the table now.
    pub fn tracked(&self) -> usize {
        self.flows.len()
    }

    /// The most out-of-order bytes any one direction holds now.
    #[cfg(test)]
    pub(super) fn max_held_per_dir(&self) -> usize {
        self.flows
            .values()
            .filter_map(|e| e.state.live())
            .flat_map(|l| l.streams.iter().map(HalfStream::held_bytes))
            .max()
            .unwrap_or(0)
    }

    fn open(
        &mut self,
        key: FlowKey,
        ts: Ts,
        packet: u64,
        seg: &TcpSegment<'_>,
        out: &mut Vec<FlowEvent>,
    ) {
        while self.flows.len() >= self.shared.limits.max_flows.max(1) {
            match self.least_recent() {
                Some(old) => self.remove(&old, ts, packet, CloseReason::Evicted, out),
                None => break,
            }
        }
        let (client, server, saw_syn) = roles(seg);
        let id = self.next_id;
        self.next_id += 1;
        self.shared.stats.flows += 1;
        if !saw_syn {
            self.shared.stats.midstream += 1;
        }
        let state = if is_bare_syn(seg) {
            State::Syn {
                first_ts: ts,
                first_packet: packet,
            }
        } else {
            out.push(FlowEvent::Opened(FlowInfo {
                id,
                client,
                server,
                first_ts: ts,
                first_packet: packet,
                saw_syn,
            }));
            State::Live(Box::default())
        };
        self.flows.insert(
            key,
            Box::new(Entry {
                id,
                client,
                last_seen: ts,
                indexed: ts,
                isn: [None; 2],
                state,
            }),
        );
        self.by_age.insert((ts, id), key);
    }

    fn process(
        &mut self,
        key: &FlowKey,
        ts: Ts,
        packet: u64,
        seg: &TcpSegment<'_>,
        out: &mut Vec<FlowEvent>,
    ) {
        let Some(e) = self.flows.get_mut(key) else {
            return;
        };
        if ts > e.last_seen {
            e.last_seen = ts;
        }
        let dir = e.dir_of(seg.src);
        if seg.flags.syn && e.isn[dir.index()].is_none() {
            e.isn[dir.index()] = Some(seg.seq);
        }
        let id = e.id;
        if let State::Syn {
            first_ts,
            first_packet,
        } = e.state
        {
            if dir == Dir::ToServer && is_bare_syn(seg) {
                // Another SYN of the attempt (a retransmission): still nothing to keep.
                return;
            }
            // Something else: the flow is said, and its streams begin with the SYN seen.
            out.push(FlowEvent::Opened(e.info(key, first_ts, first_packet)));
            let mut live = Box::<Live>::default();
            if let Some(isn) = e.isn[Dir::ToServer.index()] {
                live.streams[Dir::ToServer.index()].start(isn.wrapping_add(1));
            }
            e.state = State::Live(live);
        }
        // A tombstone absorbs late packets of its closed connection.
        let State::Live(live) = &mut e.state else {
            return;
        };
        let [to_server, to_client] = &mut live.streams;
        let (own, peer) = match dir {
            Dir::ToServer => (to_server, to_client),
            Dir::ToClient => (to_client, to_server),
        };
        let flags = seg.flags;
        // RFC 9293 3.4: the SYN occupies one sequence number; data starts after it.
        let data_seq = if flags.syn {
            own.start(seg.seq.wrapping_add(1));
            if flags.ack {
                // A SYN-ACK acknowledges the client's SYN: the client's data starts at its ack.
                peer.start(seg.ack);
            }
            seg.seq.wrapping_add(1)
        } else {
            own.start(seg.seq);
            if flags.ack && e.isn[dir.index()].is_some() {
                // This side sent the SYN, so its ACK acknowledges the peer's SYN: the peer's
                // data starts there even when the capture missed the SYN-ACK.
                peer.start(seg.ack);
            }
            seg.seq
        };
        let captured: &[u8] = &seg.payload;
        let total = if seg.truncated {
            u64::from(seg.wire_len).max(captured.len() as u64)
        } else {
            captured.len() as u64
        };
        let shared = &mut self.shared;
        if flags.ack {
            // The ACK tells what the sender received of the other direction; it was sent
            // before this segment's data, so its gaps come first.
            let mut ctx = Ctx::new(id, dir.reverse(), ts, packet, shared, out);
            peer.on_peer_ack(&mut ctx, seg.ack);
            ctx.finish();
        }
        let mut closed = None;
        {
            let mut ctx = Ctx::new(id, dir, ts, packet, shared, out);
            // RFC 1122 4.2.2.12, RFC 9293 3.5.3: data on a RST is diagnostic text, not
            // stream bytes.
            if !flags.rst {
                own.on_segment(&mut ctx, data_seq, captured, total);
                if flags.fin {
                    own.on_fin(&mut ctx, data_seq.wrapping_add(total as u32));
                }
            } else {
                own.flush(&mut ctx);
            }
            ctx.finish();
        }
        if flags.rst {
            let mut ctx = Ctx::new(id, dir.reverse(), ts, packet, shared, out);
            peer.flush(&mut ctx);
            ctx.finish();
            out.push(FlowEvent::Reset {
                flow: id,
                dir,
                ts,
                packet,
            });
            closed = Some(CloseReason::Reset);
        } else if own.is_finished() && peer.is_finished() {
            closed = Some(CloseReason::Fin);
        }
        if let Some(reason) = closed {
            if let State::Live(mut live) = std::mem::replace(&mut e.state, State::Closed) {
                for s in live.streams.iter_mut() {
                    s.release(shared);
                }
            }
            out.push(FlowEvent::Closed {
                flow: id,
                ts,
                reason,
                answered: e.answered(),
                last_seen: e.last_seen,
            });
        }
    }

    /// Removes the entry at `key`; a live flow is flushed and closed with `reason` first.
    fn remove(
        &mut self,
        key: &FlowKey,
        ts: Ts,
        packet: u64,
        reason: CloseReason,
        out: &mut Vec<FlowEvent>,
    ) {
        let Some(e) = self.flows.remove(key) else {
            return;
        };
        self.by_age.remove(&(e.indexed, e.id));
        let (answered, last_seen) = (e.answered(), e.last_seen);
        match e.state {
            State::Closed => return,
            State::Syn {
                first_ts,
                first_packet,
            } => out.push(FlowEvent::Opened(e.info(key, first_ts, first_packet))),
            State::Live(mut live) => {
                for dir in [Dir::ToServer, Dir::ToClient] {
                    let stream = &mut live.streams[dir.index()];
                    let mut ctx = Ctx::new(e.id, dir, ts, packet, &mut self.shared, out);
                    stream.flush(&mut ctx);
                    ctx.finish();
                    stream.release(&mut self.shared);
                }
            }
        }
        if reason == CloseReason::Evicted {
            self.shared.stats.evicted += 1;
        }
        out.push(FlowEvent::Closed {
            flow: e.id,
            ts,
            reason,
            answered,
            last_seen,
        });
    }

    /// The least recently active entry. Entries are filed by the time they were last
    /// indexed; one found to have seen packets since is refiled (each refiling follows at
    /// least one packet of that flow, so this is amortised O(log n) per packet).
    fn least_recent(&mut self) -> Option<FlowKey> {
        loop {
            let (&(indexed, id), &key) = self.by_age.first_key_value()?;
            match self.flows.get_mut(&key) {
                Some(e) if e.id == id => {
                    if e.last_seen == indexed {
                        return Some(key);
                    }
                    self.by_age.pop_first();
                    e.indexed = e.last_seen;
                    self.by_age.insert((e.last_seen, id), key);
                }
                _ => {
                    // Cannot happen (every removal unfiles its entry); do not loop on it.
                    self.by_age.pop_first();
                }
            }
        }
    }

    /// Closes flows with no packet for `idle_timeout_ns`, at most once per second of capture
    /// time; tombstones that old are dropped silently.
    fn sweep_if_due(&mut self, ts: Ts, packet: u64, out: &mut Vec<FlowEvent>) {
        if let Some(last) = self.last_sweep {
            if ts.0.saturating_sub(last.0) < SWEEP_INTERVAL_NS {
                return;
            }
        }
        self.last_sweep = Some(ts);
        let cutoff = ts.0.saturating_sub(self.shared.limits.idle_timeout_ns);
        while let Some((&(indexed, id), &key)) = self.by_age.first_key_value() {
            if indexed.0 >= cutoff {
                break;
            }
            match self.flows.get_mut(&key) {
                Some(e) if e.id == id => {
                    if e.last_seen.0 < cutoff {
                        self.remove(&key, ts, packet, CloseReason::Idle, out);
                    } else {
                        self.by_age.pop_first();
                        e.indexed = e.last_seen;
                        self.by_age.insert((e.last_seen, id), key);
                    }
                }
                _ => {
                    self.by_age.pop_first();
                }
            }
        }
    }
}

/// Client, server and whether the handshake was seen, from a flow's first segment.
fn roles(seg: &TcpSegment<'_>) -> (SocketAddr, SocketAddr, bool) {
    if seg.flags.syn {
        // RFC 9293 3.5: the active opener sends SYN; the passive side answers SYN-ACK.
        return if seg.flags.ack {
            (seg.dst, seg.src, true)
        } else {
            (seg.src, seg.dst, true)
        };
    }
    let (sp, dp) = (seg.src.port(), seg.dst.port());
    // RFC 6335 6: ports below 1024 are system (well-known) ports a server listens on; Linux's
    // ephemeral range is 32768-60999, IANA's 49152-65535: a client port is usually >= 32768.
    let src_is_client = if (sp < 1024) != (dp < 1024) || (sp >= 32768) != (dp >= 32768) {
        sp > dp
    } else {
        true
    };
    if src_is_client {
        (seg.src, seg.dst, false)
    } else {
        (seg.dst, seg.src, false)
    }
}
