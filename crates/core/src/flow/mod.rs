//! The flow table and TCP reassembly (written here: no crate does this well). Segments in,
//! ordered per-direction byte streams out, with gaps, FIN/RST and retransmissions that carry
//! different bytes (an injection signal) reported as events. Pure: time is the packet's.

use crate::time::Ts;
use std::net::SocketAddr;

pub type FlowId = u64;

/// Direction of data within a flow. The client is the side that sent the first SYN; for a
/// connection picked up midstream it is the side with the higher (ephemeral-looking) port, or
/// the sender of the first segment when the ports do not tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dir {
    ToServer,
    ToClient,
}

impl Dir {
    pub fn index(self) -> usize {
        match self {
            Dir::ToServer => 0,
            Dir::ToClient => 1,
        }
    }
    pub fn reverse(self) -> Dir {
        match self {
            Dir::ToServer => Dir::ToClient,
            Dir::ToClient => Dir::ToServer,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowInfo {
    pub id: FlowId,
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub first_ts: Ts,
    /// 1-based number of the first packet of the flow in the (merged) capture.
    pub first_packet: u64,
    /// False when the connection was picked up midstream (no SYN seen).
    pub saw_syn: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    Fin,
    Reset,
    /// No packet for `Limits::idle_timeout_ns`.
    Idle,
    /// Evicted to keep within `Limits::max_flows`.
    Evicted,
    /// End of the capture.
    End,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlowEvent {
    Opened(FlowInfo),
    /// In-order bytes. `packet` is the number of the packet that completed them.
    Data {
        flow: FlowId,
        dir: Dir,
        ts: Ts,
        packet: u64,
        data: Vec<u8>,
    },
    /// Bytes that were never seen (lost, not captured, or dropped by a limit). Parsing resumes
    /// after them where it can.
    Gap {
        flow: FlowId,
        dir: Dir,
        ts: Ts,
        len: u64,
    },
    Fin {
        flow: FlowId,
        dir: Dir,
        ts: Ts,
        packet: u64,
    },
    Reset {
        flow: FlowId,
        dir: Dir,
        ts: Ts,
        packet: u64,
    },
    /// A segment overlapped bytes already received with different content.
    Injection {
        flow: FlowId,
        dir: Dir,
        ts: Ts,
        packet: u64,
        seq: u32,
        len: u32,
    },
    Closed {
        flow: FlowId,
        ts: Ts,
        reason: CloseReason,
        /// The server answered the SYN (or the flow was picked up midstream): false for a
        /// refused connection (RST to the SYN) and one nobody answered.
        answered: bool,
        /// The flow's last packet (an idle or end close comes later than it).
        last_seen: Ts,
    },
}

impl FlowEvent {
    pub fn flow(&self) -> FlowId {
        match self {
            FlowEvent::Opened(i) => i.id,
            FlowEvent::Data { flow, .. }
            | FlowEvent::Gap { flow, .. }
            | FlowEvent::Fin { flow, .. }
            | FlowEvent::Reset { flow, .. }
            | FlowEvent::Injection { flow, .. }
            | FlowEvent::Closed { flow, .. } => *flow,
        }
    }
}

/// Every limit of the flow table. Hitting one never grows memory: it truncates (a Gap event),
/// evicts (a Closed event) and counts in `FlowStats`.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Out-of-order bytes held per direction waiting for a hole to fill. Past it the hole is
    /// declared a gap. 1 MiB covers a 64 KB loopback super-segment lost ahead of a window.
    pub per_flow_buffer: usize,
    /// Out-of-order bytes held over all flows.
    pub global_buffer: usize,
    /// A flow with no packet for this long (capture time) is closed.
    pub idle_timeout_ns: i64,
    /// Flows tracked at once; the least recently active is evicted past it.
    pub max_flows: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_flow_buffer: 1 << 20,
            global_buffer: 16 << 20,
            idle_timeout_ns: 300_000_000_000,
            max_flows: 65_536,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlowStats {
    pub flows: u64,
    pub midstream: u64,
    pub gaps: u64,
    pub gap_bytes: u64,
    pub retransmissions: u64,
    pub injections: u64,
    pub evicted: u64,
    pub buffer_limit_hits: u64,
}

mod reassembly;
mod table;
#[cfg(test)]
mod tests;
pub use table::FlowTable;
