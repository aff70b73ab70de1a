//! HTTP/1.x over a reassembled TCP connection. (Owned by the http1 work item.)
//!
//! Sans-I/O: [`Http1Conn`] takes the two byte streams of one connection (with gaps and ends as
//! the flow layer reports them) and pushes [`HttpEvent`]s. Client bytes are requests, server
//! bytes responses, matched in order (keep-alive and pipelining). Framing follows RFC 9112 6;
//! heads are parsed leniently in `parser`, bodies are streamed through `body` (only
//! `max_body_kept` decoded bytes are kept).
//!
//! Pairing a response with its request uses arrival order only while both streams are intact.
//! After a gap that may have swallowed whole messages, a response is paired only when the
//! pairing is certain or the client is not pipelining (a non-pipelining client sends a request
//! only after the previous answer, so the newest request seen before the response is the one
//! answered); otherwise it is dropped with an Anomaly rather than mis-paired.

// House style: no indexing, unwrap or unchecked arithmetic on wire data outside tests.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::arithmetic_side_effects
    )
)]

mod body;
mod framing;
mod parser;
#[cfg(test)]
mod tests;

use super::{Body, HttpEvent, HttpExchange, HttpLimits, HttpRequest, HttpResponse, Stall};
use crate::flow::{Dir, FlowId};
use crate::time::Ts;
pub(crate) use body::{BodySink, SinkNote};
use framing::{resync_step, BodyState, BodyStep, HeadRead, HeadReader, ResyncStep, Side};
#[cfg(test)]
use parser::MAX_CHUNK_LINE;
use parser::{Check, Framing, StartKind};
use std::collections::VecDeque;

/// A request whose final response has not started yet.
struct Pending {
    seq: u64,
    request: HttpRequest,
    is_head: bool,
    is_connect: bool,
    /// HTTP/0.9 simple request: the answer is the bare body (RFC 1945 4.1).
    simple: bool,
}

/// One entry of the queue of requests waiting for a response, in arrival order.
enum Slot {
    Request(Box<Pending>),
    /// Zero or more requests lost in a gap of the client stream (their number is unknown);
    /// `packet` is the last client packet before the gap.
    Lost {
        packet: u64,
    },
    /// Requests already reported unanswered to stay within `max_pending_requests`; their
    /// responses are still due, in order, and are dropped when they come.
    Evicted(u64),
}

impl Slot {
    /// Packet number at which the slot's request arrived (for "was it sent before this
    /// response?").
    fn packet(&self) -> u64 {
        match self {
            Slot::Request(p) => p.request.packet,
            Slot::Lost { packet } => *packet,
            Slot::Evicted(_) => 0,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Http,
    /// CONNECT answered 2xx: bytes are passed through as TunnelData.
    Tunnel,
    /// 101 Switching Protocols: no longer HTTP/1; bytes are ignored.
    Opaque,
    /// A limit was hit: the connection is no longer parsed.
    Stopped,
}

/// Client bytes held while a CONNECT or an Upgrade request waits for its answer: they are
/// tunnel data if the answer switches protocols, more requests otherwise.
struct Hold {
    seq: u64,
    chunks: Vec<(Ts, u64, Vec<u8>)>,
    bytes: usize,
}

enum ClientState {
    Head,
    Body {
        seq: u64,
        state: BodyState,
        then_hold: bool,
    },
    Hold(Box<Hold>),
    Resync,
    Ended,
}

/// A response being received.
struct InFlight {
    /// `None`: a response to no known request, followed for its framing only.
    pending: Option<Box<Pending>>,
    response: HttpResponse,
    sink: BodySink,
    state: BodyState,
}

enum ServerState {
    Head,
    Body(Box<InFlight>),
    Resync,
    Ended,
}

/// One connection's HTTP/1 state machine: requests from the client, responses from the server,
/// matched in order (keep-alive, pipelining).
pub struct Http1Conn {
    flow: FlowId,
    limits: HttpLimits,
    mode: Mode,
    client: Side,
    client_state: ClientState,
    server: Side,
    server_state: ServerState,
    queue: VecDeque<Slot>,
    /// Seen with intact streams: several requests were sent before the first was answered.
    /// Until then the client is assumed not to pipeline (Go's net/http does not).
    pipelined: bool,
    /// Whole responses may have been lost (server gap or junk): pair only when certain.
    server_desync: bool,
    next_seq: u64,
    finished: bool,
}

/// Steps without progress before the machine stops itself: a guard against a logic error
/// turning hostile input into an endless loop.
const MAX_STALLED_STEPS: u32 = 8;

impl Http1Conn {
    pub fn new(flow: FlowId, limits: HttpLimits) -> Http1Conn {
        // The start of each stream is a line start, for the midstream scan.
        let side = || Side {
            line_start: true,
            ..Side::default()
        };
        Http1Conn {
            flow,
            limits,
            mode: Mode::Http,
            client: side(),
            client_state: ClientState::Head,
            server: side(),
            server_state: ServerState::Head,
            queue: VecDeque::new(),
            pipelined: false,
            server_desync: false,
            next_seq: 0,
            finished: false,
        }
    }

    pub fn on_data(
        &mut self,
        dir: Dir,
        ts: Ts,
        packet: u64,
        data: &[u8],
        out: &mut Vec<HttpEvent>,
    ) {
        if self.finished || data.is_empty() {
            return;
        }
        match dir {
            Dir::ToServer => self.client_data(ts, packet, data, out),
            Dir::ToClient => self.server_data(ts, packet, data, out),
        }
    }

    /// `len` bytes of this direction were never seen.
    pub fn on_gap(&mut self, dir: Dir, ts: Ts, len: u64, out: &mut Vec<HttpEvent>) {
        if self.finished || len == 0 {
            return;
        }
        match self.mode {
            Mode::Http => {}
            Mode::Tunnel => {
                let what = format!("{len} bytes missing inside the tunnel ({})", dir_name(dir));
                self.anomaly(out, ts, what);
                return;
            }
            Mode::Opaque | Mode::Stopped => return,
        }
        match dir {
            Dir::ToServer => self.client_gap(ts, len, out),
            Dir::ToClient => self.server_gap(ts, len, out),
        }
    }

    /// This direction ended (FIN or RST): completes read-to-close bodies.
    pub fn on_end(&mut self, dir: Dir, ts: Ts, packet: u64, out: &mut Vec<HttpEvent>) {
        if self.finished {
            return;
        }
        match dir {
            Dir::ToClient => {
                let state = std::mem::replace(&mut self.server_state, ServerState::Ended);
                match state {
                    ServerState::Body(f) => {
                        let complete = matches!(f.state, BodyState::ToClose);
                        self.finish_response(f, complete, ts, packet, out);
                    }
                    ServerState::Head
                        if !self.server.head.buf.is_empty() && self.mode == Mode::Http =>
                    {
                        self.anomaly(out, ts, "the server closed inside a response head".into());
                    }
                    _ => {}
                }
                self.server.head.reset();
            }
            Dir::ToServer => {
                match self.client_state {
                    // The answer to a CONNECT/Upgrade can still come.
                    ClientState::Hold(_) => return,
                    ClientState::Head
                        if !self.client.head.buf.is_empty() && self.mode == Mode::Http =>
                    {
                        self.anomaly(out, ts, "the client closed inside a request head".into());
                    }
                    _ => {}
                }
                self.client_state = ClientState::Ended;
                self.client.head.reset();
            }
        }
    }

    /// The connection is gone: emits pending requests as unanswered exchanges and partial
    /// responses with `complete: false`.
    pub fn finish(&mut self, ts: Ts, out: &mut Vec<HttpEvent>) {
        if self.finished {
            return;
        }
        let state = std::mem::replace(&mut self.server_state, ServerState::Ended);
        if let ServerState::Body(f) = state {
            // Closing the connection is what ends a read-to-close body.
            let complete = matches!(f.state, BodyState::ToClose);
            let (end_ts, end_packet) = (self.server.last_ts, self.server.last_packet);
            self.finish_response(f, complete, end_ts, end_packet, out);
        }
        if self.mode == Mode::Http
            && matches!(self.client_state, ClientState::Head)
            && !self.client.head.buf.is_empty()
        {
            self.anomaly(out, ts, "connection ended inside a request head".into());
        }
        while let Some(slot) = self.queue.pop_front() {
            if let Slot::Request(p) = slot {
                self.emit(out, p.request, None);
            }
        }
        self.client_state = ClientState::Ended;
        self.client.head = HeadReader::default();
        self.server.head = HeadReader::default();
        self.finished = true;
    }

    // ----- client side -----

    fn client_data(&mut self, ts: Ts, packet: u64, data: &[u8], out: &mut Vec<HttpEvent>) {
        self.side_data(Dir::ToServer, ts, packet, data, out);
    }

    /// One step of the client side on `input`: the bytes it used, or `None` when the rest of
    /// the input is not the client side's to read (held, tunnelled, ended).
    fn client_step(
        &mut self,
        ts: Ts,
        packet: u64,
        input: &[u8],
        out: &mut Vec<HttpEvent>,
    ) -> Option<usize> {
        Some(match &mut self.client_state {
            ClientState::Ended => return None,
            ClientState::Hold(_) => {
                self.hold_client(ts, packet, input, out);
                return None;
            }
            ClientState::Resync => {
                let max_head = self.limits.max_head_bytes;
                let step = resync_step(
                    &mut self.client,
                    ts,
                    packet,
                    input,
                    StartKind::Request,
                    max_head,
                );
                if let ResyncStep::Start(_) = step {
                    self.client_state = ClientState::Head;
                }
                step.used()
            }
            ClientState::Head => self.client_head(ts, packet, input, out),
            ClientState::Body { .. } => self.client_body(ts, input, out),
        })
    }

    /// Bytes of one direction: each side's steps until the input is used up, the connection
    /// leaves HTTP (a tunnel, opaque bytes, a stop), or the side makes no progress.
    fn side_data(&mut self, dir: Dir, ts: Ts, packet: u64, data: &[u8], out: &mut Vec<HttpEvent>) {
        let side = match dir {
            Dir::ToServer => &mut self.client,
            Dir::ToClient => &mut self.server,
        };
        side.last_ts = ts;
        side.last_packet = packet;
        // A segment often starts a message (one write per message): when resynchronising,
        // the start of each chunk is a candidate too (the strict start-line check keeps false
        // positives rare).
        side.line_start = true;
        let mut input = data;
        let mut stall = Stall::new(MAX_STALLED_STEPS);
        while !input.is_empty() {
            match self.mode {
                Mode::Http => {}
                Mode::Tunnel => {
                    self.tunnel_data(out, dir, ts, packet, input);
                    return;
                }
                Mode::Opaque | Mode::Stopped => return,
            }
            let step = match dir {
                Dir::ToServer => self.client_step(ts, packet, input, out),
                Dir::ToClient => self.server_step(ts, packet, input, out),
            };
            let Some(used) = step else { return };
            if stall.stuck(used) {
                let side = match dir {
                    Dir::ToServer => "client",
                    Dir::ToClient => "server",
                };
                let why = format!("HTTP/1 parser made no progress on {side} data; parsing stopped");
                self.stop(out, ts, why);
                return;
            }
            input = input.get(used..).unwrap_or(&[]);
        }
    }

    fn client_head(
        &mut self,
        ts: Ts,
        packet: u64,
        input: &[u8],
        out: &mut Vec<HttpEvent>,
    ) -> usize {
        let max = self.limits.max_head_bytes;
        match self
            .client
            .head
            .read(ts, packet, input, StartKind::Request, max)
        {
            HeadRead::More { used } => used,
            HeadRead::TooBig => {
                let what = format!(
                    "request head over max_head_bytes ({max}); connection no longer parsed"
                );
                self.stop(out, ts, what);
                input.len()
            }
            HeadRead::NotStart {
                skipped, resume, ..
            } => {
                self.anomaly(out, ts, "client bytes at a message start are not an HTTP/1 request line; skipping to the next request".into());
                self.client.line_start = false;
                self.client_state = ClientState::Resync;
                // The server may answer what it received here: its answer must not be paired
                // with a later request.
                self.push_lost(self.client.last_packet, out);
                skipped.saturating_add(resume)
            }
            HeadRead::Complete {
                head,
                ts: head_ts,
                packet: head_packet,
                used,
            } => {
                self.on_request_head(&head, head_ts, head_packet, ts, out);
                used
            }
        }
    }

    fn on_request_head(
        &mut self,
        head: &[u8],
        head_ts: Ts,
        head_packet: u64,
        ts: Ts,
        out: &mut Vec<HttpEvent>,
    ) {
        let Some(h) = parser::parse_request_head(head) else {
            // Unreachable in practice: the start line was checked before.
            self.anomaly(
                out,
                ts,
                "unparsable request head; skipping to the next request".into(),
            );
            self.client_state = ClientState::Resync;
            self.push_lost(head_packet, out);
            return;
        };
        if h.bad_lines > 0 {
            self.anomaly(
                out,
                ts,
                format!(
                    "request head has {} malformed header line(s), ignored",
                    h.bad_lines
                ),
            );
        }
        let simple = h.version.is_none();
        let decision = if simple {
            parser::FramingDecision {
                framing: Framing::None,
                anomaly: None,
            }
        } else {
            parser::request_framing(&h.headers)
        };
        if let Some(what) = decision.anomaly {
            self.anomaly(out, ts, what.into());
        }
        let is_connect = h.method.eq_ignore_ascii_case("CONNECT");
        // RFC 9110 7.8: Upgrade is only acted on with "Connection: upgrade".
        let upgrade = !is_connect
            && super::header(&h.headers, "upgrade").is_some()
            && parser::header_has_token(&h.headers, "connection", "upgrade");
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        let pending = Pending {
            seq,
            is_head: h.method.eq_ignore_ascii_case("HEAD"),
            is_connect,
            simple,
            request: HttpRequest {
                method: h.method,
                target: h.target,
                version: h.version.unwrap_or(0),
                headers: h.headers,
                ts: head_ts,
                packet: head_packet,
                body_len: 0,
            },
        };
        self.push_request(pending, ts, out);
        let then_hold = is_connect || upgrade;
        self.client_state = match BodyState::new(decision.framing) {
            Some(state) => ClientState::Body {
                seq,
                state,
                then_hold,
            },
            None => Self::after_request(seq, then_hold),
        };
    }

    fn after_request(seq: u64, then_hold: bool) -> ClientState {
        if then_hold {
            ClientState::Hold(Box::new(Hold {
                seq,
                chunks: Vec::new(),
                bytes: 0,
            }))
        } else {
            ClientState::Head
        }
    }

    fn client_body(&mut self, ts: Ts, input: &[u8], out: &mut Vec<HttpEvent>) -> usize {
        let max_trailer = self.limits.max_head_bytes;
        let ClientState::Body {
            seq,
            state,
            then_hold,
        } = &mut self.client_state
        else {
            return 0;
        };
        let (seq, then_hold) = (*seq, *then_hold);
        let mut counted = 0u64;
        let (used, step) = state.consume(input, max_trailer, &mut |d| {
            counted = counted.saturating_add(d.len() as u64)
        });
        self.add_request_body(seq, counted);
        match step {
            BodyStep::More => {}
            BodyStep::Done => self.client_state = Self::after_request(seq, then_hold),
            BodyStep::Bad { what, line_start } => {
                self.anomaly(
                    out,
                    ts,
                    format!("request body: {what}; skipping to the next request"),
                );
                // The request itself was seen whole (a smuggling attempt shows up here as the
                // request plus what the resynchronisation finds in its "body"); what follows
                // may hold requests the server answers, so pairing turns careful.
                let packet = self.client.last_packet;
                self.push_lost(packet, out);
                self.client_state = ClientState::Resync;
                self.client.line_start = line_start;
            }
        }
        used
    }

    fn hold_client(&mut self, ts: Ts, packet: u64, input: &[u8], out: &mut Vec<HttpEvent>) {
        let max = self.limits.max_head_bytes;
        let ClientState::Hold(h) = &mut self.client_state else {
            return;
        };
        if h.bytes.saturating_add(input.len()) > max {
            let what = format!(
                "client sent over {max} bytes before the answer to its CONNECT/Upgrade request; they are skipped"
            );
            self.anomaly(out, ts, what);
            self.client_state = ClientState::Resync;
            self.client.line_start = false;
            self.push_lost(packet, out);
            return;
        }
        h.bytes = h.bytes.saturating_add(input.len());
        h.chunks.push((ts, packet, input.to_vec()));
    }

    /// The answer to request `seq` did not switch protocols: held client bytes are requests.
    fn release_hold(&mut self, seq: u64, out: &mut Vec<HttpEvent>) {
        if !matches!(&self.client_state, ClientState::Hold(h) if h.seq == seq) {
            return;
        }
        let ClientState::Hold(h) = std::mem::replace(&mut self.client_state, ClientState::Head)
        else {
            return;
        };
        for (ts, packet, data) in h.chunks {
            self.client_data(ts, packet, &data, out);
        }
    }

    fn client_gap(&mut self, ts: Ts, len: u64, out: &mut Vec<HttpEvent>) {
        let last_packet = self.client.last_packet;
        match &mut self.client_state {
            ClientState::Ended => return,
            ClientState::Body {
                seq,
                state: BodyState::Length { remaining },
                then_hold,
            } if len <= *remaining => {
                // Inside a Content-Length body: framing survives, only bytes are missing.
                let (seq, then_hold) = (*seq, *then_hold);
                *remaining = remaining.saturating_sub(len);
                let done = *remaining == 0;
                self.add_request_body(seq, len);
                self.anomaly(out, ts, format!("{len} bytes missing in a request body"));
                if done {
                    self.client_state = Self::after_request(seq, then_hold);
                }
                return;
            }
            ClientState::Body {
                seq,
                state: BodyState::Length { remaining },
                ..
            } => {
                let (seq, remaining) = (*seq, *remaining);
                self.add_request_body(seq, remaining);
                self.anomaly(out, ts, format!("{len} bytes missing at the end of a request body and after it; skipping to the next request"));
            }
            ClientState::Body { seq, .. } => {
                let seq = *seq;
                self.anomaly(out, ts, format!("{len} bytes missing in a chunked request body; request dropped, skipping to the next request"));
                self.lose_request(seq);
            }
            ClientState::Head => {
                let what = if self.client.head.buf.is_empty() {
                    format!("{len} bytes missing between requests; skipping to the next request")
                } else {
                    format!("{len} bytes missing in a request head; request lost, skipping to the next request")
                };
                self.anomaly(out, ts, what);
            }
            ClientState::Hold(_) => {
                self.anomaly(
                    out,
                    ts,
                    format!("{len} bytes missing after a CONNECT/Upgrade request"),
                );
            }
            ClientState::Resync => {}
        }
        self.push_lost(last_packet, out);
        self.client.head.reset();
        self.client.line_start = true;
        self.client_state = ClientState::Resync;
    }

    // ----- server side -----

    fn server_data(&mut self, ts: Ts, packet: u64, data: &[u8], out: &mut Vec<HttpEvent>) {
        self.side_data(Dir::ToClient, ts, packet, data, out);
    }

    /// One step of the server side on `input`: the bytes it used, or `None` once it ended.
    fn server_step(
        &mut self,
        ts: Ts,
        packet: u64,
        input: &[u8],
        out: &mut Vec<HttpEvent>,
    ) -> Option<usize> {
        Some(match &mut self.server_state {
            ServerState::Ended => return None,
            ServerState::Resync => {
                let max_head = self.limits.max_head_bytes;
                let step = resync_step(
                    &mut self.server,
                    ts,
                    packet,
                    input,
                    StartKind::Response,
                    max_head,
                );
                if let ResyncStep::Start(_) = step {
                    self.server_state = ServerState::Head;
                }
                step.used()
            }
            ServerState::Head => self.server_head(ts, packet, input, out),
            ServerState::Body(_) => self.server_body(ts, packet, input, out),
        })
    }

    fn server_head(
        &mut self,
        ts: Ts,
        packet: u64,
        input: &[u8],
        out: &mut Vec<HttpEvent>,
    ) -> usize {
        let max = self.limits.max_head_bytes;
        match self
            .server
            .head
            .read(ts, packet, input, StartKind::Response, max)
        {
            HeadRead::More { used } => used,
            HeadRead::TooBig => {
                let what = format!(
                    "response head over max_head_bytes ({max}); connection no longer parsed"
                );
                self.stop(out, ts, what);
                input.len()
            }
            HeadRead::NotStart {
                skipped,
                resume,
                earlier,
                ts: head_ts,
                packet: head_packet,
            } => {
                if matches!(self.queue.front(), Some(Slot::Request(p)) if p.simple)
                    && !self.server_desync
                {
                    // RFC 1945 6: an HTTP/0.9 request is answered with the bare entity body.
                    self.start_simple_response(head_ts, head_packet, &earlier, out);
                    return skipped;
                }
                self.anomaly(out, ts, "server bytes at a message start are not an HTTP/1 status line; skipping to the next response".into());
                self.server.line_start = false;
                self.server_state = ServerState::Resync;
                // What was skipped may have been a response: later ones are paired with care.
                self.server_desync = true;
                skipped.saturating_add(resume)
            }
            HeadRead::Complete {
                head,
                ts: head_ts,
                packet: head_packet,
                used,
            } => {
                self.on_response_head(&head, head_ts, head_packet, ts, packet, out);
                used
            }
        }
    }

    fn start_simple_response(
        &mut self,
        head_ts: Ts,
        head_packet: u64,
        earlier: &[u8],
        out: &mut Vec<HttpEvent>,
    ) {
        let pending = self.pair_response(head_packet, head_ts, out);
        let response = HttpResponse {
            status: 0,
            reason: String::new(),
            version: 0,
            headers: Vec::new(),
            ts: head_ts,
            packet: head_packet,
            end_ts: head_ts,
            end_packet: head_packet,
            body: Body::default(),
        };
        let mut sink = match pending {
            Some(_) => BodySink::new(&[], self.limits.max_body_kept, self.limits.max_gzip_ratio),
            None => BodySink::discard(),
        };
        sink.write(earlier);
        self.server_state = ServerState::Body(Box::new(InFlight {
            pending,
            response,
            sink,
            state: BodyState::ToClose,
        }));
    }

    fn on_response_head(
        &mut self,
        head: &[u8],
        head_ts: Ts,
        head_packet: u64,
        ts: Ts,
        packet: u64,
        out: &mut Vec<HttpEvent>,
    ) {
        let Some(h) = parser::parse_response_head(head) else {
            self.anomaly(
                out,
                ts,
                "unparsable response head; skipping to the next response".into(),
            );
            self.server_state = ServerState::Resync;
            self.server_desync = true;
            return;
        };
        if h.bad_lines > 0 {
            self.anomaly(
                out,
                ts,
                format!(
                    "response head has {} malformed header line(s), ignored",
                    h.bad_lines
                ),
            );
        }
        // RFC 9110 15.2: 1xx responses are interim; the final response follows. 101 is final
        // for HTTP/1 on this connection.
        if (100..200).contains(&h.status) && h.status != 101 {
            return;
        }
        let pending = self.pair_response(head_packet, ts, out);
        let (is_head, is_connect) = pending
            .as_ref()
            .map_or((false, false), |p| (p.is_head, p.is_connect));
        let decision = parser::response_framing(is_head, is_connect, h.status, &h.headers);
        if let Some(what) = decision.anomaly {
            self.anomaly(out, ts, what.into());
        }
        let codings = super::content_codings(&h.headers);
        let response = HttpResponse {
            status: h.status,
            reason: h.reason,
            version: h.version,
            headers: h.headers,
            ts: head_ts,
            packet: head_packet,
            end_ts: ts,
            end_packet: packet,
            body: Body {
                complete: true,
                kept_all: true,
                ..Body::default()
            },
        };
        if h.status == 101 {
            if let Some(p) = pending {
                self.emit(out, p.request, Some(response));
            }
            // RFC 9110 15.2.2: after the empty line the connection speaks another protocol.
            self.mode = Mode::Opaque;
            return;
        }
        let seq = pending.as_ref().map(|p| p.seq);
        match decision.framing {
            Framing::Tunnel => {
                let Some(p) = pending else { return };
                let authority = p.request.target.clone();
                self.emit(out, p.request, Some(response));
                out.push(HttpEvent::TunnelOpened {
                    flow: self.flow,
                    authority,
                    ts,
                    packet,
                });
                self.mode = Mode::Tunnel;
                self.open_tunnel_client(out);
            }
            framing => match BodyState::new(framing) {
                None => {
                    if let Some(p) = pending {
                        self.emit(out, p.request, Some(response));
                    }
                    if let Some(seq) = seq {
                        self.release_hold(seq, out);
                    }
                }
                Some(state) => {
                    let sink = match pending {
                        Some(_) => {
                            let sink = BodySink::new(
                                &codings,
                                self.limits.max_body_kept,
                                self.limits.max_gzip_ratio,
                            );
                            if self.limits.overflow_events {
                                sink.with_overflow()
                            } else {
                                sink
                            }
                        }
                        None => BodySink::discard(),
                    };
                    self.server_state = ServerState::Body(Box::new(InFlight {
                        pending,
                        response,
                        sink,
                        state,
                    }));
                    if let Some(seq) = seq {
                        self.release_hold(seq, out);
                    }
                }
            },
        }
    }

    /// The tunnel is open: client bytes held since the CONNECT go out as tunnel data.
    fn open_tunnel_client(&mut self, out: &mut Vec<HttpEvent>) {
        let state = std::mem::replace(&mut self.client_state, ClientState::Ended);
        match state {
            ClientState::Hold(h) => {
                for (ts, packet, data) in h.chunks {
                    self.tunnel_data(out, Dir::ToServer, ts, packet, &data);
                }
            }
            ClientState::Head if !self.client.head.buf.is_empty() => {
                let data = std::mem::take(&mut self.client.head.buf);
                let (ts, packet) = (self.client.head.ts, self.client.head.packet);
                self.tunnel_data(out, Dir::ToServer, ts, packet, &data);
            }
            _ => {}
        }
        self.client.head.reset();
    }

    fn server_body(
        &mut self,
        ts: Ts,
        packet: u64,
        input: &[u8],
        out: &mut Vec<HttpEvent>,
    ) -> usize {
        let max_trailer = self.limits.max_head_bytes;
        let ServerState::Body(f) = &mut self.server_state else {
            return 0;
        };
        let f = &mut **f;
        let mut note = None;
        let (used, step) = f.state.consume(input, max_trailer, &mut |d| {
            if let Some(n) = f.sink.write(d) {
                note = note.or(Some(n));
            }
        });
        let overflow = f.sink.take_overflow();
        if !overflow.is_empty() {
            out.push(HttpEvent::BodyOverflow {
                flow: self.flow,
                data: overflow,
            });
        }
        if let Some(n) = note {
            self.sink_anomaly(out, ts, n);
        }
        match step {
            BodyStep::More => {}
            BodyStep::Done => {
                if let ServerState::Body(f) =
                    std::mem::replace(&mut self.server_state, ServerState::Head)
                {
                    self.finish_response(f, true, ts, packet, out);
                }
            }
            BodyStep::Bad { what, line_start } => {
                self.anomaly(
                    out,
                    ts,
                    format!("response body: {what}; skipping to the next response"),
                );
                if let ServerState::Body(f) =
                    std::mem::replace(&mut self.server_state, ServerState::Resync)
                {
                    self.finish_response(f, false, ts, packet, out);
                }
                self.server.line_start = line_start;
                self.server_desync = true;
            }
        }
        used
    }

    fn server_gap(&mut self, ts: Ts, len: u64, out: &mut Vec<HttpEvent>) {
        let (end_ts, end_packet) = (self.server.last_ts, self.server.last_packet);
        match &mut self.server_state {
            ServerState::Ended => return,
            ServerState::Body(f) => match &mut f.state {
                BodyState::Length { remaining } if len < *remaining => {
                    // Inside a Content-Length body: count it and keep the framing.
                    *remaining = remaining.saturating_sub(len);
                    f.sink.gap(len);
                    self.anomaly(out, ts, format!("{len} bytes missing in a response body"));
                    return;
                }
                BodyState::Length { remaining } if len == *remaining => {
                    f.sink.gap(len);
                    self.anomaly(
                        out,
                        ts,
                        format!("{len} bytes missing at the end of a response body"),
                    );
                    if let ServerState::Body(f) =
                        std::mem::replace(&mut self.server_state, ServerState::Head)
                    {
                        self.finish_response(f, false, end_ts, end_packet, out);
                    }
                    return;
                }
                BodyState::ToClose => {
                    f.sink.gap(len);
                    self.anomaly(out, ts, format!("{len} bytes missing in a response body"));
                    return;
                }
                BodyState::Length { remaining } => {
                    let remaining = *remaining;
                    f.sink.gap(remaining);
                    self.anomaly(out, ts, format!("{len} bytes missing at the end of a response body and after it; skipping to the next response"));
                    if let ServerState::Body(f) =
                        std::mem::replace(&mut self.server_state, ServerState::Resync)
                    {
                        self.finish_response(f, false, end_ts, end_packet, out);
                    }
                }
                BodyState::Chunked { .. } => {
                    self.anomaly(out, ts, format!("{len} bytes missing in a chunked response body; skipping to the next response"));
                    if let ServerState::Body(f) =
                        std::mem::replace(&mut self.server_state, ServerState::Resync)
                    {
                        self.finish_response(f, false, end_ts, end_packet, out);
                    }
                }
            },
            ServerState::Head => {
                let what = if self.server.head.buf.is_empty() {
                    format!("{len} bytes missing between responses; skipping to the next response")
                } else {
                    format!("{len} bytes missing in a response head; response lost, skipping to the next response")
                };
                self.anomaly(out, ts, what);
            }
            ServerState::Resync => {}
        }
        self.server.head.reset();
        self.server.line_start = true;
        self.server_state = ServerState::Resync;
        self.server_desync = true;
    }

    fn finish_response(
        &mut self,
        f: Box<InFlight>,
        complete: bool,
        end_ts: Ts,
        end_packet: u64,
        out: &mut Vec<HttpEvent>,
    ) {
        let InFlight {
            pending,
            mut response,
            mut sink,
            ..
        } = *f;
        let (body, note) = sink.finish(complete);
        let overflow = sink.take_overflow();
        if !overflow.is_empty() {
            out.push(HttpEvent::BodyOverflow {
                flow: self.flow,
                data: overflow,
            });
        }
        if let Some(n) = note {
            self.sink_anomaly(out, end_ts, n);
        }
        if let Some(p) = pending {
            response.body = body;
            response.end_ts = end_ts;
            response.end_packet = end_packet;
            self.emit(out, p.request, Some(response));
        }
    }

    fn sink_anomaly(&mut self, out: &mut Vec<HttpEvent>, ts: Ts, note: SinkNote) {
        let what = match note {
            SinkNote::Bomb => format!(
                "response body expands over {}x its wire size (compression bomb); decoding stopped, raw bytes kept",
                self.limits.max_gzip_ratio
            ),
            SinkNote::DecodeError => "response body content-encoding could not be decoded; raw bytes kept".to_string(),
        };
        self.anomaly(out, ts, what);
    }

    // ----- pairing -----

    fn push_request(&mut self, pending: Pending, ts: Ts, out: &mut Vec<HttpEvent>) {
        let max = self.limits.max_pending_requests.max(1);
        let waiting = self
            .queue
            .iter()
            .filter(|s| matches!(s, Slot::Request(_)))
            .count();
        if waiting >= max {
            if let Some(i) = self
                .queue
                .iter()
                .position(|s| matches!(s, Slot::Request(_)))
            {
                let merge =
                    i > 0 && matches!(self.queue.get(i.saturating_sub(1)), Some(Slot::Evicted(_)));
                let slot = if merge {
                    if let Some(Slot::Evicted(n)) = self.queue.get_mut(i.saturating_sub(1)) {
                        *n = n.saturating_add(1);
                    }
                    self.queue.remove(i)
                } else {
                    self.queue
                        .get_mut(i)
                        .map(|s| std::mem::replace(s, Slot::Evicted(1)))
                };
                if let Some(Slot::Request(p)) = slot {
                    self.anomaly(out, ts, format!("more than {max} requests waiting for a response; the oldest is reported unanswered"));
                    self.emit(out, p.request, None);
                }
            }
        }
        self.queue.push_back(Slot::Request(Box::new(pending)));
        self.bound_queue(out);
    }

    /// Requests may have been lost in a gap of the client stream.
    fn push_lost(&mut self, packet: u64, out: &mut Vec<HttpEvent>) {
        if !matches!(self.queue.back(), Some(Slot::Lost { .. })) {
            self.queue.push_back(Slot::Lost { packet });
        }
        self.bound_queue(out);
    }

    /// Keeps the queue bounded even with many gap markers: past twice the pending limit the
    /// oldest slot goes (reported unanswered if it was a request) and pairing turns careful.
    fn bound_queue(&mut self, out: &mut Vec<HttpEvent>) {
        let max_slots = self
            .limits
            .max_pending_requests
            .max(1)
            .saturating_mul(2)
            .saturating_add(2);
        while self.queue.len() > max_slots {
            if let Some(Slot::Request(p)) = self.queue.pop_front() {
                self.emit(out, p.request, None);
            }
            self.server_desync = true;
        }
    }

    /// A chunked request body lost framing: the request is dropped (its response, if any,
    /// must not pair with another request).
    fn lose_request(&mut self, seq: u64) {
        let packet = self.client.last_packet;
        for slot in self.queue.iter_mut() {
            if matches!(slot, Slot::Request(p) if p.seq == seq) {
                *slot = Slot::Lost { packet };
                return;
            }
        }
    }

    fn add_request_body(&mut self, seq: u64, n: u64) {
        if n == 0 {
            return;
        }
        for slot in self.queue.iter_mut().rev() {
            if let Slot::Request(p) = slot {
                if p.seq == seq {
                    p.request.body_len = p.request.body_len.saturating_add(n);
                    return;
                }
            }
        }
        if let ServerState::Body(f) = &mut self.server_state {
            if let Some(p) = &mut f.pending {
                if p.seq == seq {
                    p.request.body_len = p.request.body_len.saturating_add(n);
                }
            }
        }
    }

    /// Picks the request a final response starting at `packet` answers, or `None` when it
    /// answers no request we can name (midstream start, lost request, or an ambiguous pairing
    /// after a gap). Requests whose answers were evidently lost are reported unanswered.
    fn pair_response(
        &mut self,
        packet: u64,
        ts: Ts,
        out: &mut Vec<HttpEvent>,
    ) -> Option<Box<Pending>> {
        // Candidates: requests that arrived before the response started.
        let candidates = self
            .queue
            .iter()
            .take_while(|s| s.packet() <= packet)
            .count();
        if candidates == 0 {
            self.anomaly(out, ts, "response to no request seen on this connection (midstream or lost request); dropped".into());
            return None;
        }
        let prefix = || self.queue.iter().take(candidates);
        let requests = prefix().filter(|s| matches!(s, Slot::Request(_))).count();
        let has_lost = prefix().any(|s| matches!(s, Slot::Lost { .. }));
        let front_is_lost = matches!(self.queue.front(), Some(Slot::Lost { .. }));
        if !self.server_desync && !front_is_lost {
            // Both streams intact up to the oldest waiting request: arrival order holds (a
            // client-side loss after it does not change which request is oldest).
            if !has_lost && requests >= 2 {
                // Several requests were out before this first answer: the client pipelines.
                self.pipelined = true;
            }
            return self.pop_answered();
        }
        if candidates == 1 && requests == 1 {
            self.server_desync = false;
            return self.pop_answered();
        }
        if self.pipelined {
            self.anomaly(out, ts, "response after a gap on a pipelining connection cannot be paired for sure; dropped".into());
            return None;
        }
        // Not pipelining: a request is sent only after the previous answer, so the newest
        // request sent before this response is the one answered and older ones lost their
        // answers in a gap. If the newest is a gap marker, the answer is to a lost request.
        if matches!(
            self.queue.get(candidates.saturating_sub(1)),
            Some(Slot::Lost { .. })
        ) {
            self.anomaly(
                out,
                ts,
                "response to a request lost in a gap; dropped".into(),
            );
            return None;
        }
        let mut unanswered = 0u64;
        for _ in 0..candidates.saturating_sub(1) {
            if let Some(Slot::Request(p)) = self.queue.pop_front() {
                unanswered = unanswered.saturating_add(1);
                self.emit(out, p.request, None);
            }
        }
        if unanswered > 0 {
            self.anomaly(out, ts, format!("{unanswered} request(s) whose responses were lost in a gap reported unanswered"));
        }
        self.server_desync = false;
        self.pop_answered()
    }

    /// Takes the front of the queue as answered.
    fn pop_answered(&mut self) -> Option<Box<Pending>> {
        match self.queue.front_mut() {
            Some(Slot::Evicted(n)) if *n > 1 => {
                *n = n.saturating_sub(1);
                None
            }
            Some(Slot::Evicted(_)) | Some(Slot::Lost { .. }) => {
                self.queue.pop_front();
                None
            }
            Some(Slot::Request(_)) => match self.queue.pop_front() {
                Some(Slot::Request(p)) => Some(p),
                _ => None,
            },
            None => None,
        }
    }

    /// Bytes this connection holds in buffers (tests check they stay within the limits).
    #[cfg(test)]
    fn held_bytes(&self) -> usize {
        let hold = match &self.client_state {
            ClientState::Hold(h) => h.bytes,
            ClientState::Body {
                state: BodyState::Chunked { line, .. },
                ..
            } => line.len(),
            _ => 0,
        };
        let body = match &self.server_state {
            ServerState::Body(f) => {
                f.sink.held_bytes()
                    + if let BodyState::Chunked { line, .. } = &f.state {
                        line.len()
                    } else {
                        0
                    }
            }
            _ => 0,
        };
        self.client.head.buf.len() + self.server.head.buf.len() + hold + body
    }

    // ----- output -----

    fn emit(
        &mut self,
        out: &mut Vec<HttpEvent>,
        request: HttpRequest,
        response: Option<HttpResponse>,
    ) {
        out.push(HttpEvent::Exchange(HttpExchange {
            flow: self.flow,
            request,
            response,
        }));
    }

    fn anomaly(&self, out: &mut Vec<HttpEvent>, ts: Ts, what: String) {
        out.push(HttpEvent::Anomaly {
            flow: self.flow,
            ts,
            what,
        });
    }

    fn tunnel_data(&self, out: &mut Vec<HttpEvent>, dir: Dir, ts: Ts, packet: u64, data: &[u8]) {
        if !data.is_empty() {
            out.push(HttpEvent::TunnelData {
                flow: self.flow,
                dir,
                ts,
                packet,
                data: data.to_vec(),
            });
        }
    }

    fn stop(&mut self, out: &mut Vec<HttpEvent>, ts: Ts, what: String) {
        self.anomaly(out, ts, what);
        self.mode = Mode::Stopped;
        self.client.head = HeadReader::default();
        self.server.head = HeadReader::default();
        if let ClientState::Hold(_) = self.client_state {
            self.client_state = ClientState::Ended;
        }
    }
}

fn dir_name(dir: Dir) -> &'static str {
    match dir {
        Dir::ToServer => "client to server",
        Dir::ToClient => "server to client",
    }
}

/// True when `data` starts like an HTTP/1 request (a known method token and a space, or a
/// complete request line with any method token, e.g. `CCM_POST / HTTP/1.1`), used to pick the
/// protocol of a flow from its first client bytes.
pub fn looks_like_request(data: &[u8]) -> bool {
    if matches!(parser::check_request_line(data, false), Check::Yes(l) if l.version.is_some()) {
        return true;
    }
    const METHODS: &[&[u8]] = &[
        b"GET ",
        b"POST ",
        b"HEAD ",
        b"PUT ",
        b"DELETE ",
        b"OPTIONS ",
        b"CONNECT ",
        b"PATCH ",
        b"TRACE ",
        b"PROPFIND ",
    ];
    METHODS.iter().any(|m| {
        data.starts_with(m) || (data.len() < m.len() && m.starts_with(data) && !data.is_empty())
    })
}
