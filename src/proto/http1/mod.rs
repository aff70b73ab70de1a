//! HTTP/1.x over a reassembled TCP connection, with httparse. (Owned by the http1 work item.)

use super::{HttpEvent, HttpLimits};
use crate::flow::{Dir, FlowId};
use crate::time::Ts;

/// One connection's HTTP/1 state machine: requests from the client, responses from the server,
/// matched in order (keep-alive, pipelining).
pub struct Http1Conn {
    _flow: FlowId,
    _limits: HttpLimits,
}

impl Http1Conn {
    pub fn new(flow: FlowId, limits: HttpLimits) -> Http1Conn {
        Http1Conn { _flow: flow, _limits: limits }
    }

    pub fn on_data(&mut self, dir: Dir, ts: Ts, packet: u64, data: &[u8], out: &mut Vec<HttpEvent>) {
        let _ = (dir, ts, packet, data, out);
    }

    /// `len` bytes of this direction were never seen.
    pub fn on_gap(&mut self, dir: Dir, ts: Ts, len: u64, out: &mut Vec<HttpEvent>) {
        let _ = (dir, ts, len, out);
    }

    /// This direction ended (FIN or RST): completes read-to-close bodies.
    pub fn on_end(&mut self, dir: Dir, ts: Ts, packet: u64, out: &mut Vec<HttpEvent>) {
        let _ = (dir, ts, packet, out);
    }

    /// The connection is gone: emits pending requests as unanswered exchanges and partial
    /// responses with `complete: false`.
    pub fn finish(&mut self, ts: Ts, out: &mut Vec<HttpEvent>) {
        let _ = (ts, out);
    }
}

/// True when `data` starts like an HTTP/1 request (a known method token and a space), used to
/// pick the protocol of a flow from its first client bytes.
pub fn looks_like_request(data: &[u8]) -> bool {
    const METHODS: &[&[u8]] = &[
        b"GET ", b"POST ", b"HEAD ", b"PUT ", b"DELETE ", b"OPTIONS ", b"CONNECT ", b"PATCH ",
        b"TRACE ", b"PROPFIND ",
    ];
    METHODS.iter().any(|m| data.starts_with(m) || (data.len() < m.len() && m.starts_with(data) && !data.is_empty()))
}
