//! [`Http2Conn`]: one HTTP/2 connection's state machine. Client bytes start with the preface
//! (RFC 9113 3.4) and carry requests; server bytes carry responses; each direction is a
//! sequence of frames (RFC 9113 4.1) read incrementally, with DATA payloads streamed into the
//! stream's body and header blocks held until END_HEADERS and decoded by that direction's HPACK
//! context. A stream's exchange is emitted when its response ends, when it is reset, when a
//! GOAWAY says it was never processed, or when the connection ends.
//!
//! After a gap, an HPACK failure or a framing error the direction stops: frames cannot be found
//! again reliably and the HPACK table is out of step with the encoder's anyway. A gap that ends
//! inside the DATA payload being read is the exception: the framing is known and only body
//! bytes were lost.

use super::frame::{self, flags, setting, FrameHeader, FrameType, FRAME_HEADER_LEN, PREFACE};
use super::hpack::{HeaderDecoder, HeaderList};
use super::message::{content_length, request_head, response_head, split_fields};
use super::Http2Limits;
use crate::flow::{Dir, FlowId};
use crate::proto::http1::{BodySink, SinkNote};
use crate::proto::{
    content_codings, escape_bytes, Body, HttpEvent, HttpExchange, HttpLimits, HttpRequest,
    HttpResponse, Stall,
};
use crate::time::Ts;
use std::collections::BTreeMap;

/// `HttpRequest::version` / `HttpResponse::version` for HTTP/2 (HTTP/1 puts its minor version
/// there, 0 or 1).
pub const HTTP2_VERSION: u8 = 2;

/// RFC 9113 7 error codes used here.
const NO_ERROR: u32 = 0x0;
const CANCEL: u32 = 0x8;

/// SETTINGS one endpoint sent (the latest value of each), RFC 9113 6.5.2.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerSettings {
    pub header_table_size: Option<u32>,
    pub enable_push: Option<u32>,
    pub max_concurrent_streams: Option<u32>,
    pub initial_window_size: Option<u32>,
    pub max_frame_size: Option<u32>,
    pub max_header_list_size: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Goaway {
    pub last_stream: u32,
    pub error_code: u32,
    pub ts: Ts,
}

/// What the connection saw, for summaries and detectors. Arrays are indexed by the sending
/// direction (`Dir::index`: 0 client, 1 server).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Http2Stats {
    /// The client sent the connection preface.
    pub preface_seen: bool,
    pub frames: [u64; 2],
    /// Streams opened by client HEADERS (tracked or not).
    pub streams: u64,
    /// Streams not followed because of `max_streams` or `max_held_bytes`.
    pub untracked_streams: u64,
    /// Streams promised by PUSH_PROMISE (server push, RFC 9113 8.4).
    pub pushed_streams: u64,
    pub resets: [u64; 2],
    pub settings: [PeerSettings; 2],
    pub goaway: [Option<Goaway>; 2],
}

/// How the payload of the frame being read is handled.
enum Payload {
    /// DATA, streamed into the stream's body. `need_pad_len`: PADDED and the pad-length octet
    /// is still to come; `data_left`: content bytes before the padding.
    Data { need_pad_len: bool, data_left: u32 },
    /// Held whole (header blocks, control frames), up to `cap` bytes.
    Buffer {
        buf: Vec<u8>,
        cap: usize,
        truncated: bool,
    },
    /// Unknown frame types (RFC 9113 5.5).
    Skip,
}

struct InFrame {
    hdr: FrameHeader,
    remaining: u32,
    payload: Payload,
}

enum ReadState {
    Preface {
        matched: usize,
    },
    Header {
        buf: [u8; FRAME_HEADER_LEN],
        have: usize,
    },
    Frame(InFrame),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum BlockKind {
    Headers,
    PushPromise { promised: u32 },
}

/// A header block waiting for END_HEADERS (RFC 9113 6.10).
struct Block {
    stream: u32,
    kind: BlockKind,
    end_stream: bool,
    buf: Vec<u8>,
    ts: Ts,
    packet: u64,
}

struct Reader {
    state: ReadState,
    stopped: bool,
    /// Chunk that carried the first byte of the current frame header.
    frame_ts: Ts,
    frame_packet: u64,
    last_ts: Ts,
    last_packet: u64,
    frames: u64,
    block: Option<Block>,
    warned_frame_size: bool,
}

impl Reader {
    fn new(client: bool) -> Reader {
        Reader {
            state: if client {
                ReadState::Preface { matched: 0 }
            } else {
                ReadState::Header {
                    buf: [0; FRAME_HEADER_LEN],
                    have: 0,
                }
            },
            stopped: false,
            frame_ts: Ts(0),
            frame_packet: 0,
            last_ts: Ts(0),
            last_packet: 0,
            frames: 0,
            block: None,
            warned_frame_size: false,
        }
    }

    /// Inside a frame (or the preface, or a header block) rather than between frames.
    fn mid_frame(&self) -> bool {
        self.block.is_some()
            || match &self.state {
                ReadState::Preface { matched } => *matched > 0,
                ReadState::Header { have, .. } => *have > 0,
                ReadState::Frame(_) => true,
            }
    }

    #[cfg(test)]
    fn held_bytes(&self) -> usize {
        let payload = match &self.state {
            ReadState::Frame(InFrame {
                payload: Payload::Buffer { buf, .. },
                ..
            }) => buf.capacity(),
            _ => 0,
        };
        payload.saturating_add(self.block.as_ref().map_or(0, |b| b.buf.capacity()))
    }
}

struct Stream {
    request: HttpRequest,
    request_ended: bool,
    is_head: bool,
    /// The final response, once its headers came.
    response: Option<HttpResponse>,
    sink: Option<BodySink>,
    content_length: Option<u64>,
    /// Bytes of `Http2Limits::max_held_bytes` this stream holds a claim on.
    reserved: usize,
    /// Overflow bytes dropped because another stream's overflow was being passed on.
    overflow_dropped: u64,
    warned_data: bool,
}

/// One HTTP/2 connection: bytes of both directions in, exchanges out.
pub struct Http2Conn {
    flow: FlowId,
    limits: HttpLimits,
    h2: Http2Limits,
    /// Indexed by `Dir::index` of the bytes they read.
    readers: [Reader; 2],
    /// HPACK contexts by the direction of the header blocks they decode.
    decoders: [HeaderDecoder; 2],
    streams: BTreeMap<u32, Stream>,
    /// Highest client-initiated stream id seen (RFC 9113 5.1.1: ids only grow).
    highest_stream: u32,
    /// SETTINGS_MAX_FRAME_SIZE advertised by each side (what it accepts), largest seen.
    max_frame_size: [u32; 2],
    /// Bytes claimed by open streams against `max_held_bytes`.
    held: usize,
    /// The stream whose body overflow is passed on as `BodyOverflow` (events carry no stream
    /// id, so only one at a time).
    overflow_owner: Option<u32>,
    warned_overflow: bool,
    warned_budget: bool,
    stats: Http2Stats,
    finished: bool,
}

/// The last packet seen in a direction.
fn r_packet(readers: &[Reader; 2], dir: Dir) -> u64 {
    readers.get(dir.index()).map_or(0, |r| r.last_packet)
}

fn anomaly(out: &mut Vec<HttpEvent>, flow: FlowId, ts: Ts, what: String) {
    out.push(HttpEvent::Anomaly { flow, ts, what });
}

fn dir_name(dir: Dir) -> &'static str {
    match dir {
        Dir::ToServer => "client-to-server",
        Dir::ToClient => "server-to-client",
    }
}

fn side_name(dir: Dir) -> &'static str {
    match dir {
        Dir::ToServer => "client",
        Dir::ToClient => "server",
    }
}

impl Http2Conn {
    /// A connection with the default [`Http2Limits`].
    pub fn new(flow: FlowId, limits: HttpLimits) -> Http2Conn {
        Http2Conn::with_limits(flow, limits, Http2Limits::default())
    }

    pub fn with_limits(flow: FlowId, limits: HttpLimits, h2: Http2Limits) -> Http2Conn {
        let decoder = || {
            HeaderDecoder::new(
                h2.max_hpack_table_size,
                h2.max_header_list_size,
                h2.max_pending_settings,
            )
        };
        Http2Conn {
            flow,
            limits,
            readers: [Reader::new(true), Reader::new(false)],
            decoders: [decoder(), decoder()],
            h2,
            streams: BTreeMap::new(),
            highest_stream: 0,
            max_frame_size: [frame::DEFAULT_MAX_FRAME_SIZE; 2],
            held: 0,
            overflow_owner: None,
            warned_overflow: false,
            warned_budget: false,
            stats: Http2Stats::default(),
            finished: false,
        }
    }

    /// A connection upgraded from HTTP/1.1 (`Upgrade: h2c`, RFC 7540 3.2, removed by RFC 9113
    /// but still seen): `request` was sent as HTTP/1.1 and is stream 1, answered in HTTP/2. The
    /// client still sends the preface; the server's bytes start right after the 101 head.
    pub fn after_upgrade(flow: FlowId, limits: HttpLimits, request: HttpRequest) -> Http2Conn {
        let mut c = Http2Conn::new(flow, limits);
        let reserved = request.headers.iter().fold(0usize, |n, h| {
            n.saturating_add(h.name.len())
                .saturating_add(h.value.len())
                .saturating_add(super::hpack::ENTRY_OVERHEAD)
        });
        c.held = reserved;
        c.highest_stream = 1;
        c.stats.streams = 1;
        let is_head = request.method.eq_ignore_ascii_case("HEAD");
        c.streams.insert(
            1,
            Stream {
                request,
                request_ended: true,
                is_head,
                response: None,
                sink: None,
                content_length: None,
                reserved,
                overflow_dropped: 0,
                warned_data: false,
            },
        );
        c
    }

    pub fn stats(&self) -> &Http2Stats {
        &self.stats
    }

    /// Streams being followed.
    pub fn open_streams(&self) -> usize {
        self.streams.len()
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
        if let Some(r) = self.readers.get_mut(dir.index()) {
            r.last_ts = ts;
            r.last_packet = packet;
        }
        self.feed(dir, ts, packet, data, out);
    }

    /// `len` bytes of this direction were never seen.
    pub fn on_gap(&mut self, dir: Dir, ts: Ts, len: u64, out: &mut Vec<HttpEvent>) {
        if self.finished || len == 0 {
            return;
        }
        let i = dir.index();
        let Some(r) = self.readers.get_mut(i) else {
            return;
        };
        if r.stopped {
            return;
        }
        // A gap that ends inside the DATA content being read (or exactly at its end): the
        // framing is known, only body bytes are missing.
        let mut in_data = None;
        if let ReadState::Frame(InFrame {
            hdr,
            remaining,
            payload:
                Payload::Data {
                    need_pad_len: false,
                    data_left,
                },
        }) = &mut r.state
        {
            if len <= u64::from(*data_left) {
                let n = u32::try_from(len).unwrap_or(u32::MAX);
                *remaining = remaining.saturating_sub(n);
                *data_left = data_left.saturating_sub(n);
                in_data = Some((hdr.stream, *remaining == 0));
            }
        }
        if let Some((stream, frame_done)) = in_data {
            self.data_gap(dir, stream, len);
            anomaly(
                out,
                self.flow,
                ts,
                format!(
                    "{len} bytes missing inside a DATA frame of stream {stream} ({}); its body is incomplete",
                    dir_name(dir)
                ),
            );
            if frame_done {
                let packet = r_packet(&self.readers, dir);
                let state = self.readers.get_mut(i).map(|r| {
                    std::mem::replace(
                        &mut r.state,
                        ReadState::Header {
                            buf: [0; FRAME_HEADER_LEN],
                            have: 0,
                        },
                    )
                });
                if let Some(ReadState::Frame(f)) = state {
                    self.on_frame(dir, f, ts, packet, out);
                }
            }
            return;
        }
        self.stop(
            dir,
            ts,
            format!(
                "{len} bytes missing; HTTP/2 frames cannot be found again reliably and the HPACK context is lost"
            ),
            out,
        );
    }

    /// This direction ended (FIN or RST). When the server's ends, no stream can be answered
    /// any more: they are all emitted.
    pub fn on_end(&mut self, dir: Dir, ts: Ts, packet: u64, out: &mut Vec<HttpEvent>) {
        if self.finished {
            return;
        }
        if let Some(r) = self.readers.get_mut(dir.index()) {
            if !r.stopped && r.mid_frame() {
                anomaly(
                    out,
                    self.flow,
                    ts,
                    format!("the {} closed inside an HTTP/2 frame", side_name(dir)),
                );
            }
            r.stopped = true;
            r.block = None;
            r.state = ReadState::Header {
                buf: [0; FRAME_HEADER_LEN],
                have: 0,
            };
        }
        if dir == Dir::ToClient {
            self.finish_all(ts, packet, out);
        }
    }

    /// The connection is gone: unanswered requests and partial responses are emitted (the
    /// latter with `complete: false`).
    pub fn finish(&mut self, _ts: Ts, out: &mut Vec<HttpEvent>) {
        if self.finished {
            return;
        }
        let (ts, packet) = self
            .readers
            .get(Dir::ToClient.index())
            .map_or((Ts(0), 0), |r| (r.last_ts, r.last_packet));
        self.finish_all(ts, packet, out);
        for r in self.readers.iter_mut() {
            r.stopped = true;
            r.block = None;
            r.state = ReadState::Header {
                buf: [0; FRAME_HEADER_LEN],
                have: 0,
            };
        }
        self.finished = true;
    }

    fn finish_all(&mut self, ts: Ts, packet: u64, out: &mut Vec<HttpEvent>) {
        let ids: Vec<u32> = self.streams.keys().copied().collect();
        for id in ids {
            self.finalize(id, false, ts, packet, out);
        }
    }

    /// Bytes held in buffers, tables aside (tests check they stay within the limits).
    #[cfg(test)]
    pub(crate) fn held_bytes(&self) -> usize {
        let readers: usize = self.readers.iter().map(Reader::held_bytes).sum();
        let bodies: usize = self
            .streams
            .values()
            .filter_map(|s| s.sink.as_ref())
            .map(BodySink::held_bytes)
            .sum();
        readers + bodies
    }

    // ----- reading frames -----

    fn feed(&mut self, dir: Dir, ts: Ts, packet: u64, data: &[u8], out: &mut Vec<HttpEvent>) {
        let mut rest = data;
        // Only a state change without input (preface given up) makes no progress; more than a
        // couple in a row would be a logic error, not input.
        let mut stall = Stall::new(4);
        while !rest.is_empty() {
            let used = self.step(dir, ts, packet, rest, out);
            if stall.stuck(used) {
                self.stop(dir, ts, "internal: no progress".into(), out);
                return;
            }
            rest = rest.get(used..).unwrap_or(&[]);
        }
    }

    /// Consumes a prefix of `input`; returns its length.
    fn step(
        &mut self,
        dir: Dir,
        ts: Ts,
        packet: u64,
        input: &[u8],
        out: &mut Vec<HttpEvent>,
    ) -> usize {
        let i = dir.index();
        let Some(r) = self.readers.get_mut(i) else {
            return input.len();
        };
        if r.stopped {
            return input.len();
        }
        let state = std::mem::replace(
            &mut r.state,
            ReadState::Header {
                buf: [0; FRAME_HEADER_LEN],
                have: 0,
            },
        );
        match state {
            ReadState::Preface { matched } => {
                let want = PREFACE.get(matched..).unwrap_or(&[]);
                let n = want.len().min(input.len());
                if input.get(..n) == want.get(..n) {
                    let matched = matched.saturating_add(n);
                    if matched >= PREFACE.len() {
                        self.stats.preface_seen = true;
                    } else {
                        r.state = ReadState::Preface { matched };
                    }
                    return n;
                }
                anomaly(
                    out,
                    self.flow,
                    ts,
                    "the client did not start with the HTTP/2 connection preface (RFC 9113 3.4); reading frames from its first byte (picked up midstream?)".into(),
                );
                // The bytes that matched so far are frame bytes after all.
                let prefix = PREFACE.get(..matched).unwrap_or(&[]);
                self.feed(dir, ts, packet, prefix, out);
                0
            }
            ReadState::Header { mut buf, have } => {
                if have == 0 {
                    r.frame_ts = ts;
                    r.frame_packet = packet;
                }
                let n = FRAME_HEADER_LEN.saturating_sub(have).min(input.len());
                if let (Some(dst), Some(src)) =
                    (buf.get_mut(have..have.saturating_add(n)), input.get(..n))
                {
                    dst.copy_from_slice(src);
                }
                let have = have.saturating_add(n);
                if have < FRAME_HEADER_LEN {
                    r.state = ReadState::Header { buf, have };
                    return n;
                }
                match FrameHeader::parse(&buf) {
                    Some(hdr) => self.on_frame_header(dir, hdr, ts, packet, out),
                    None => self.stop(dir, ts, "internal: short frame header".into(), out),
                }
                n
            }
            ReadState::Frame(mut f) => {
                let n = usize::try_from(f.remaining)
                    .unwrap_or(usize::MAX)
                    .min(input.len());
                let chunk = input.get(..n).unwrap_or(&[]);
                self.frame_bytes(dir, &mut f, chunk, ts, out);
                f.remaining = f
                    .remaining
                    .saturating_sub(u32::try_from(n).unwrap_or(u32::MAX));
                if f.remaining == 0 {
                    self.on_frame(dir, f, ts, packet, out);
                } else if let Some(r) = self.readers.get_mut(i) {
                    r.state = ReadState::Frame(f);
                }
                n
            }
        }
    }

    /// RFC 9113 4.1, 6: a whole frame header was read. Sets the reader up for the payload.
    fn on_frame_header(
        &mut self,
        dir: Dir,
        hdr: FrameHeader,
        ts: Ts,
        packet: u64,
        out: &mut Vec<HttpEvent>,
    ) {
        let i = dir.index();
        let flow = self.flow;
        let receiver_max = self
            .max_frame_size
            .get(dir.reverse().index())
            .copied()
            .unwrap_or(frame::DEFAULT_MAX_FRAME_SIZE);
        let Some(r) = self.readers.get_mut(i) else {
            return;
        };
        r.frames = r.frames.saturating_add(1);
        if let Some(n) = self.stats.frames.get_mut(i) {
            *n = n.saturating_add(1);
        }
        // After the preface the client is known to speak HTTP/2; otherwise the first frame must
        // look like one.
        let confirmed = dir == Dir::ToServer && self.stats.preface_seen;
        if r.frames == 1 && !confirmed && !plausible_first(&hdr, receiver_max) {
            let what = format!(
                "the {} bytes do not look like HTTP/2 frames (first frame: type {}, length {}, stream {})",
                side_name(dir),
                hdr.kind.to_u8(),
                hdr.len,
                hdr.stream
            );
            self.stop(dir, ts, what, out);
            return;
        }
        if hdr.len > self.h2.max_frame_payload {
            let what = format!(
                "{} frame of {} bytes over the {}-byte frame limit",
                hdr.kind.name(),
                hdr.len,
                self.h2.max_frame_payload
            );
            self.stop(dir, ts, what, out);
            return;
        }
        if hdr.len > receiver_max && !r.warned_frame_size {
            r.warned_frame_size = true;
            anomaly(
                out,
                flow,
                ts,
                format!(
                    "{} frame of {} bytes above the {}'s SETTINGS_MAX_FRAME_SIZE {} (RFC 9113 4.2)",
                    hdr.kind.name(),
                    hdr.len,
                    side_name(dir.reverse()),
                    receiver_max
                ),
            );
        }
        // RFC 9113 6.10: a header block is followed only by CONTINUATION on the same stream.
        match (&r.block, hdr.kind) {
            (Some(b), FrameType::Continuation) if b.stream == hdr.stream => {}
            (Some(b), _) => {
                let what = format!(
                    "{} frame on stream {} inside the header block of stream {} (RFC 9113 6.10)",
                    hdr.kind.name(),
                    hdr.stream,
                    b.stream
                );
                self.stop(dir, ts, what, out);
                return;
            }
            (None, FrameType::Continuation) => {
                let what = format!(
                    "CONTINUATION on stream {} without a header block to continue (RFC 9113 6.10)",
                    hdr.stream
                );
                self.stop(dir, ts, what, out);
                return;
            }
            (None, _) => {}
        }
        let len = usize::try_from(hdr.len).unwrap_or(usize::MAX);
        let payload = match hdr.kind {
            FrameType::Data => Payload::Data {
                need_pad_len: hdr.has(flags::PADDED),
                data_left: if hdr.has(flags::PADDED) { 0 } else { hdr.len },
            },
            FrameType::Headers | FrameType::PushPromise | FrameType::Continuation => {
                let held = r.block.as_ref().map_or(0, |b| b.buf.len());
                if held.saturating_add(len) > self.h2.max_header_block_bytes {
                    let what = format!(
                        "header block of stream {} over the {}-byte limit; it cannot be decoded",
                        hdr.stream, self.h2.max_header_block_bytes
                    );
                    self.stop(dir, ts, what, out);
                    return;
                }
                Payload::Buffer {
                    // Grown as bytes come, not sized by the (claimed) length.
                    buf: Vec::new(),
                    cap: len,
                    truncated: false,
                }
            }
            FrameType::Unknown(_) => Payload::Skip,
            _ => {
                let cap = len.min(self.h2.max_control_payload);
                Payload::Buffer {
                    buf: Vec::new(),
                    cap,
                    truncated: false,
                }
            }
        };
        let f = InFrame {
            hdr,
            remaining: hdr.len,
            payload,
        };
        if hdr.len == 0 {
            self.on_frame(dir, f, ts, packet, out);
        } else {
            r.state = ReadState::Frame(f);
        }
    }

    /// Payload bytes of the frame being read.
    fn frame_bytes(
        &mut self,
        dir: Dir,
        f: &mut InFrame,
        chunk: &[u8],
        ts: Ts,
        out: &mut Vec<HttpEvent>,
    ) {
        match &mut f.payload {
            Payload::Data {
                need_pad_len,
                data_left,
            } => {
                let mut chunk = chunk;
                if *need_pad_len {
                    let Some((&pad, tail)) = chunk.split_first() else {
                        return;
                    };
                    *need_pad_len = false;
                    chunk = tail;
                    let room = f.hdr.len.saturating_sub(1);
                    *data_left = match room.checked_sub(u32::from(pad)) {
                        Some(n) => n,
                        None => {
                            anomaly(
                                out,
                                self.flow,
                                ts,
                                format!(
                                    "DATA frame on stream {} with {pad} bytes of padding in {room} bytes (RFC 9113 6.1)",
                                    f.hdr.stream
                                ),
                            );
                            0
                        }
                    };
                }
                let take = usize::try_from(*data_left)
                    .unwrap_or(usize::MAX)
                    .min(chunk.len());
                if take > 0 {
                    *data_left = data_left.saturating_sub(u32::try_from(take).unwrap_or(0));
                    let stream = f.hdr.stream;
                    self.stream_data(dir, stream, chunk.get(..take).unwrap_or(&[]), ts, out);
                }
            }
            Payload::Buffer {
                buf,
                cap,
                truncated,
            } => {
                let room = cap.saturating_sub(buf.len()).min(chunk.len());
                buf.extend_from_slice(chunk.get(..room).unwrap_or(&[]));
                if room < chunk.len() {
                    *truncated = true;
                }
            }
            Payload::Skip => {}
        }
    }

    /// A whole frame was read.
    fn on_frame(&mut self, dir: Dir, f: InFrame, ts: Ts, packet: u64, out: &mut Vec<HttpEvent>) {
        let flow = self.flow;
        let hdr = f.hdr;
        let (payload, truncated) = match f.payload {
            Payload::Buffer { buf, truncated, .. } => (buf, truncated),
            Payload::Data { need_pad_len, .. } => {
                if need_pad_len {
                    anomaly(
                        out,
                        flow,
                        ts,
                        format!(
                            "padded DATA frame on stream {} without a pad length (RFC 9113 6.1)",
                            hdr.stream
                        ),
                    );
                }
                if hdr.stream == 0 {
                    anomaly(
                        out,
                        flow,
                        ts,
                        "DATA frame on stream 0 (RFC 9113 6.1)".into(),
                    );
                } else if hdr.has(flags::END_STREAM) {
                    self.end_stream(dir, hdr.stream, ts, packet, out);
                }
                return;
            }
            Payload::Skip => return,
        };
        if truncated {
            anomaly(
                out,
                flow,
                ts,
                format!(
                    "{} frame of {} bytes over the {}-byte control frame limit; the rest ignored",
                    hdr.kind.name(),
                    hdr.len,
                    self.h2.max_control_payload
                ),
            );
        }
        if let Some(want) = hdr.kind.fixed_len() {
            if hdr.len != want {
                anomaly(
                    out,
                    flow,
                    ts,
                    format!(
                        "{} frame of {} bytes, {want} expected (RFC 9113 FRAME_SIZE_ERROR)",
                        hdr.kind.name(),
                        hdr.len
                    ),
                );
                return;
            }
        }
        if hdr.kind.needs_stream() && hdr.stream == 0 {
            anomaly(
                out,
                flow,
                ts,
                format!("{} frame on stream 0 (RFC 9113 6)", hdr.kind.name()),
            );
            if !matches!(
                hdr.kind,
                FrameType::Headers | FrameType::PushPromise | FrameType::Continuation
            ) {
                return;
            }
            // A header block on stream 0 is still decoded below: it changes the HPACK table.
        }
        if hdr.kind.is_connection_level() && hdr.stream != 0 {
            anomaly(
                out,
                flow,
                ts,
                format!(
                    "{} frame on stream {} (RFC 9113 6: connection frames use stream 0)",
                    hdr.kind.name(),
                    hdr.stream
                ),
            );
            return;
        }
        match hdr.kind {
            FrameType::Headers => match frame::headers_fragment(hdr.flags, &payload) {
                Ok(fragment) => self.start_block(
                    dir,
                    hdr,
                    BlockKind::Headers,
                    fragment.to_vec(),
                    ts,
                    packet,
                    out,
                ),
                Err(e) => {
                    let what = format!("HEADERS frame on stream {}: {e}", hdr.stream);
                    self.stop(dir, ts, what, out);
                }
            },
            FrameType::PushPromise => match frame::push_promise(hdr.flags, &payload) {
                Ok((promised, fragment)) => self.start_block(
                    dir,
                    hdr,
                    BlockKind::PushPromise { promised },
                    fragment.to_vec(),
                    ts,
                    packet,
                    out,
                ),
                Err(e) => {
                    let what = format!("PUSH_PROMISE frame on stream {}: {e}", hdr.stream);
                    self.stop(dir, ts, what, out);
                }
            },
            FrameType::Continuation => {
                if let Some(b) = self
                    .readers
                    .get_mut(dir.index())
                    .and_then(|r| r.block.as_mut())
                {
                    b.buf.extend_from_slice(&payload);
                }
                if hdr.has(flags::END_HEADERS) {
                    self.complete_block(dir, ts, packet, out);
                }
            }
            FrameType::RstStream => {
                let code = frame::be_u32(&payload).unwrap_or(0);
                self.on_reset(dir, hdr.stream, code, ts, packet, out);
            }
            FrameType::Settings => self.on_settings(dir, hdr, &payload, ts, out),
            FrameType::Goaway => match frame::goaway(&payload) {
                Ok((last, code, debug)) => {
                    let debug = escape_bytes(debug.get(..200).unwrap_or(debug));
                    self.on_goaway(dir, last, code, &debug, ts, packet, out);
                }
                Err(e) => anomaly(out, flow, ts, format!("GOAWAY frame: {e}")),
            },
            FrameType::WindowUpdate => {
                if frame::be_u32(&payload).map(|v| v & 0x7fff_ffff) == Some(0) {
                    anomaly(
                        out,
                        flow,
                        ts,
                        format!("WINDOW_UPDATE of 0 on stream {} (RFC 9113 6.9)", hdr.stream),
                    );
                }
            }
            // PRIORITY is deprecated (RFC 9113 5.3.2) and PING carries nothing for us; their
            // sizes were checked above.
            FrameType::Priority | FrameType::Ping => {}
            FrameType::Data | FrameType::Unknown(_) => {}
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn start_block(
        &mut self,
        dir: Dir,
        hdr: FrameHeader,
        kind: BlockKind,
        fragment: Vec<u8>,
        ts: Ts,
        packet: u64,
        out: &mut Vec<HttpEvent>,
    ) {
        let Some(r) = self.readers.get_mut(dir.index()) else {
            return;
        };
        r.block = Some(Block {
            stream: hdr.stream,
            kind,
            // RFC 9113 6.2: END_STREAM on HEADERS ends the stream once the block is complete;
            // PUSH_PROMISE has no END_STREAM.
            end_stream: kind == BlockKind::Headers && hdr.has(flags::END_STREAM),
            buf: fragment,
            ts: r.frame_ts,
            packet: r.frame_packet,
        });
        if hdr.has(flags::END_HEADERS) {
            self.complete_block(dir, ts, packet, out);
        }
    }

    /// END_HEADERS: decodes the block with the direction's HPACK context and acts on it.
    fn complete_block(&mut self, dir: Dir, ts: Ts, packet: u64, out: &mut Vec<HttpEvent>) {
        let i = dir.index();
        let Some(block) = self.readers.get_mut(i).and_then(|r| r.block.take()) else {
            return;
        };
        let Some(decoder) = self.decoders.get_mut(i) else {
            return;
        };
        let list = match decoder.decode(&block.buf) {
            Ok(list) => list,
            Err(e) => {
                let what = format!("header block of stream {}: {e}", block.stream);
                self.stop(dir, ts, what, out);
                return;
            }
        };
        let flow = self.flow;
        if let Some((size, allowed)) = list.above_settings {
            anomaly(out, flow, ts, format!("HPACK dynamic table size update to {size} above the {}'s SETTINGS_HEADER_TABLE_SIZE {allowed} (RFC 7541 6.3)", side_name(dir.reverse())));
        }
        if list.truncated {
            anomaly(
                out,
                flow,
                ts,
                format!(
                    "header list of stream {} is {} bytes, over the {}-byte limit; {} field(s) kept",
                    block.stream,
                    list.size,
                    self.h2.max_header_list_size,
                    list.fields.len()
                ),
            );
        }
        if block.stream == 0 {
            return;
        }
        match (block.kind, dir) {
            (BlockKind::Headers, Dir::ToServer) => self.on_request_block(&block, &list, out),
            (BlockKind::Headers, Dir::ToClient) => {
                self.on_response_block(&block, &list, ts, packet, out)
            }
            (BlockKind::PushPromise { promised }, _) => {
                self.on_push(dir, block.stream, promised, &list, ts, out)
            }
        }
    }

    // ----- streams -----

    fn on_request_block(&mut self, block: &Block, list: &HeaderList, out: &mut Vec<HttpEvent>) {
        let (flow, id, ts) = (self.flow, block.stream, block.ts);
        if let Some(s) = self.streams.get_mut(&id) {
            // Trailers (RFC 9113 8.1): ignored, but they may end the request.
            if s.request_ended {
                anomaly(
                    out,
                    flow,
                    ts,
                    format!("HEADERS on stream {id} after the request ended (RFC 9113 5.1)"),
                );
            } else if block.end_stream {
                s.request_ended = true;
            } else {
                anomaly(
                    out,
                    flow,
                    ts,
                    format!("request trailers on stream {id} without END_STREAM (RFC 9113 8.1)"),
                );
            }
            return;
        }
        if id % 2 == 0 {
            anomaly(
                out,
                flow,
                ts,
                format!(
                    "client HEADERS on even stream {id} (RFC 9113 5.1.1: client streams are odd)"
                ),
            );
            return;
        }
        if id <= self.highest_stream {
            // Trailers of a stream already answered are normal; a new request on an old id is
            // not, but the two cannot be told apart once the stream is gone.
            if !block.end_stream {
                anomaly(
                    out,
                    flow,
                    ts,
                    format!("HEADERS on closed stream {id} (RFC 9113 5.1.1)"),
                );
            }
            return;
        }
        self.highest_stream = id;
        self.stats.streams = self.stats.streams.saturating_add(1);
        let head = request_head(list);
        if !head.problems.is_empty() {
            anomaly(
                out,
                flow,
                ts,
                format!("request on stream {id}: {}", head.problems.join("; ")),
            );
        }
        let request = HttpRequest {
            method: head.method,
            target: head.target,
            version: HTTP2_VERSION,
            headers: head.headers,
            ts,
            packet: block.packet,
            body_len: 0,
        };
        let reserved = list.size.min(self.h2.max_header_list_size);
        if self.streams.len() >= self.h2.max_streams.max(1)
            || self.held.saturating_add(reserved) > self.h2.max_held_bytes
        {
            self.stats.untracked_streams = self.stats.untracked_streams.saturating_add(1);
            let why = if self.streams.len() >= self.h2.max_streams.max(1) {
                format!("more than {} streams open", self.h2.max_streams)
            } else {
                format!("open streams hold over {} bytes", self.h2.max_held_bytes)
            };
            anomaly(
                out,
                flow,
                ts,
                format!(
                    "{why}; stream {id} ({} {}) not followed",
                    request.method, request.target
                ),
            );
            return;
        }
        self.held = self.held.saturating_add(reserved);
        let is_head = request.method.eq_ignore_ascii_case("HEAD");
        self.streams.insert(
            id,
            Stream {
                request,
                request_ended: block.end_stream,
                is_head,
                response: None,
                sink: None,
                content_length: None,
                reserved,
                overflow_dropped: 0,
                warned_data: false,
            },
        );
    }

    fn on_response_block(
        &mut self,
        block: &Block,
        list: &HeaderList,
        ts: Ts,
        packet: u64,
        out: &mut Vec<HttpEvent>,
    ) {
        let (flow, id) = (self.flow, block.stream);
        let client_ok = self
            .readers
            .get(Dir::ToServer.index())
            .is_some_and(|r| !r.stopped);
        let Some(s) = self.streams.get_mut(&id) else {
            // Even streams are pushed (counted at PUSH_PROMISE); lower odd ids were answered,
            // reset or not followed.
            if id % 2 == 1 && id > self.highest_stream && client_ok {
                anomaly(
                    out,
                    flow,
                    block.ts,
                    format!("response HEADERS on stream {id} with no request seen (midstream?)"),
                );
            }
            return;
        };
        if s.response.is_some() {
            // Trailers (RFC 9113 8.1): ignored; they end the response.
            if block.end_stream {
                self.finalize(id, true, ts, packet, out);
            } else {
                anomaly(
                    out,
                    flow,
                    block.ts,
                    format!("HEADERS on stream {id} after the response without END_STREAM (RFC 9113 8.1)"),
                );
            }
            return;
        }
        let head = response_head(list);
        let (status, problems) = (head.status, head.problems);
        if !problems.is_empty() {
            anomaly(
                out,
                flow,
                block.ts,
                format!("response on stream {id}: {}", problems.join("; ")),
            );
        }
        if (100..200).contains(&status) {
            // RFC 9113 8.1: interim responses come before the final one; 101 is not allowed.
            if status == 101 || block.end_stream {
                anomaly(
                    out,
                    flow,
                    block.ts,
                    format!(
                        "interim response {status} on stream {id}{} (RFC 9113 8.1, 8.6)",
                        if block.end_stream {
                            " with END_STREAM"
                        } else {
                            ""
                        }
                    ),
                );
            }
            if block.end_stream {
                self.finalize(id, false, ts, packet, out);
            }
            return;
        }
        let headers = head.headers;
        let codings = content_codings(&headers);
        let content_length = content_length(&headers);
        // The body claim: the whole keep limit unless a Content-Length of an unencoded body
        // says less.
        let want = match content_length {
            Some(n) if codings.is_empty() => usize::try_from(n)
                .map_or(self.limits.max_body_kept, |n| {
                    n.min(self.limits.max_body_kept)
                }),
            _ => self.limits.max_body_kept,
        };
        let header_bytes = list.size.min(self.h2.max_header_list_size);
        let room = self.h2.max_held_bytes.saturating_sub(self.held);
        let header_claim = header_bytes.min(room);
        let grant = want.min(room.saturating_sub(header_claim));
        if grant < want && !self.warned_budget {
            self.warned_budget = true;
            anomaly(out, flow, block.ts, format!("open streams hold close to {} bytes; the body of stream {id} keeps at most {grant} bytes", self.h2.max_held_bytes));
        }
        let claim = header_claim.saturating_add(grant);
        self.held = self.held.saturating_add(claim);
        let mut sink = BodySink::new(&codings, grant, self.limits.max_gzip_ratio);
        if self.limits.overflow_events {
            sink = sink.with_overflow();
        }
        s.reserved = s.reserved.saturating_add(claim);
        s.content_length = content_length;
        s.sink = Some(sink);
        s.response = Some(HttpResponse {
            status,
            reason: String::new(),
            version: HTTP2_VERSION,
            headers,
            ts: block.ts,
            packet: block.packet,
            end_ts: ts,
            end_packet: packet,
            body: Body::default(),
        });
        if block.end_stream {
            self.finalize(id, true, ts, packet, out);
        }
    }

    fn on_push(
        &mut self,
        dir: Dir,
        assoc: u32,
        promised: u32,
        list: &HeaderList,
        ts: Ts,
        out: &mut Vec<HttpEvent>,
    ) {
        let flow = self.flow;
        if dir == Dir::ToServer {
            anomaly(
                out,
                flow,
                ts,
                format!("PUSH_PROMISE from the client on stream {assoc} (RFC 9113 8.4: only servers push)"),
            );
            return;
        }
        self.stats.pushed_streams = self.stats.pushed_streams.saturating_add(1);
        let f = split_fields(list);
        let refused = self
            .stats
            .settings
            .get(Dir::ToServer.index())
            .and_then(|s| s.enable_push)
            == Some(0);
        anomaly(
            out,
            flow,
            ts,
            format!(
                "server push: stream {promised} promised on stream {assoc} for {} {}{}{}",
                f.method.as_deref().unwrap_or("?"),
                f.authority.as_deref().unwrap_or(""),
                f.path.as_deref().unwrap_or("?"),
                if refused {
                    " although the client sent SETTINGS_ENABLE_PUSH 0 (RFC 9113 8.4)"
                } else {
                    ""
                }
            ),
        );
    }

    /// Content bytes of a DATA frame.
    fn stream_data(&mut self, dir: Dir, id: u32, bytes: &[u8], ts: Ts, out: &mut Vec<HttpEvent>) {
        let flow = self.flow;
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        if dir == Dir::ToServer {
            s.request.body_len = s.request.body_len.saturating_add(bytes.len() as u64);
            return;
        }
        let Some(sink) = s.sink.as_mut() else {
            if !s.warned_data {
                s.warned_data = true;
                anomaly(
                    out,
                    flow,
                    ts,
                    format!("DATA on stream {id} before the response HEADERS (RFC 9113 8.1)"),
                );
            }
            return;
        };
        if let Some(note) = sink.write(bytes) {
            anomaly(out, flow, ts, self.sink_note(note));
        }
        self.pass_overflow(id, out);
    }

    /// `len` bytes of a DATA frame's content were lost.
    fn data_gap(&mut self, dir: Dir, id: u32, len: u64) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        match dir {
            Dir::ToServer => s.request.body_len = s.request.body_len.saturating_add(len),
            Dir::ToClient => {
                if let Some(sink) = s.sink.as_mut() {
                    sink.gap(len);
                }
            }
        }
    }

    /// Passes a stream's body overflow on, if it may (see `overflow_owner`).
    fn pass_overflow(&mut self, id: u32, out: &mut Vec<HttpEvent>) {
        let flow = self.flow;
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        let data = s
            .sink
            .as_mut()
            .map(BodySink::take_overflow)
            .unwrap_or_default();
        if data.is_empty() {
            return;
        }
        let may = s.overflow_dropped == 0 && self.overflow_owner.is_none_or(|o| o == id);
        if may {
            self.overflow_owner = Some(id);
            out.push(HttpEvent::BodyOverflow { flow, data });
        } else {
            s.overflow_dropped = s.overflow_dropped.saturating_add(data.len() as u64);
            if !self.warned_overflow {
                self.warned_overflow = true;
                anomaly(out, flow, s.request.ts, format!("body of stream {id} overflows while another stream's overflow is passed on; its overflow is dropped"));
            }
        }
    }

    fn sink_note(&self, note: SinkNote) -> String {
        match note {
            SinkNote::Bomb => format!(
                "response body expands over {}x its wire size (compression bomb); decoding stopped, raw bytes kept",
                self.limits.max_gzip_ratio
            ),
            SinkNote::DecodeError => {
                "response body content-encoding could not be decoded; raw bytes kept".to_string()
            }
        }
    }

    /// END_STREAM on a DATA frame.
    fn end_stream(&mut self, dir: Dir, id: u32, ts: Ts, packet: u64, out: &mut Vec<HttpEvent>) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        match dir {
            Dir::ToServer => s.request_ended = true,
            Dir::ToClient => {
                if s.response.is_some() {
                    self.finalize(id, true, ts, packet, out);
                }
            }
        }
    }

    fn on_reset(
        &mut self,
        dir: Dir,
        id: u32,
        code: u32,
        ts: Ts,
        packet: u64,
        out: &mut Vec<HttpEvent>,
    ) {
        if let Some(n) = self.stats.resets.get_mut(dir.index()) {
            *n = n.saturating_add(1);
        }
        if code != NO_ERROR && code != CANCEL {
            anomaly(
                out,
                self.flow,
                ts,
                format!(
                    "stream {id} reset by the {}: {}",
                    side_name(dir),
                    frame::error_code_name(code)
                ),
            );
        }
        self.finalize(id, false, ts, packet, out);
    }

    fn on_settings(
        &mut self,
        dir: Dir,
        hdr: FrameHeader,
        payload: &[u8],
        ts: Ts,
        out: &mut Vec<HttpEvent>,
    ) {
        let flow = self.flow;
        let i = dir.index();
        if hdr.has(flags::ACK) {
            if hdr.len != 0 {
                anomaly(
                    out,
                    flow,
                    ts,
                    "SETTINGS ACK with a payload (RFC 9113 6.5)".into(),
                );
            }
            // This side's encoder applied the peer's SETTINGS here.
            if let Some(d) = self.decoders.get_mut(i) {
                d.settings_acked();
            }
            return;
        }
        if hdr.len % 6 != 0 {
            anomaly(
                out,
                flow,
                ts,
                format!(
                    "SETTINGS frame of {} bytes, not a multiple of 6 (RFC 9113 6.5)",
                    hdr.len
                ),
            );
            return;
        }
        let mut problems = Vec::new();
        for (id, value) in frame::settings(payload) {
            let Some(s) = self.stats.settings.get_mut(i) else {
                return;
            };
            match id {
                setting::HEADER_TABLE_SIZE => {
                    s.header_table_size = Some(value);
                    // It bounds the table the peer's encoder uses for blocks sent to this side.
                    if let Some(d) = self.decoders.get_mut(dir.reverse().index()) {
                        d.settings_sent(value);
                    }
                    if usize::try_from(value).map_or(true, |v| v > self.h2.max_hpack_table_size) {
                        problems.push(format!("SETTINGS_HEADER_TABLE_SIZE {value} above the {}-byte HPACK table limit; blocks using a larger table cannot be decoded", self.h2.max_hpack_table_size));
                    }
                }
                setting::ENABLE_PUSH => {
                    s.enable_push = Some(value);
                    if value > 1 || (value == 1 && dir == Dir::ToClient) {
                        problems.push(format!(
                            "SETTINGS_ENABLE_PUSH {value} from the {} (RFC 9113 6.5.2)",
                            side_name(dir)
                        ));
                    }
                }
                setting::MAX_CONCURRENT_STREAMS => s.max_concurrent_streams = Some(value),
                setting::INITIAL_WINDOW_SIZE => {
                    s.initial_window_size = Some(value);
                    if value > 0x7fff_ffff {
                        problems.push(format!(
                            "SETTINGS_INITIAL_WINDOW_SIZE {value} above 2^31-1 (RFC 9113 6.5.2)"
                        ));
                    }
                }
                setting::MAX_FRAME_SIZE => {
                    s.max_frame_size = Some(value);
                    if (frame::DEFAULT_MAX_FRAME_SIZE..=frame::MAX_FRAME_SIZE_LIMIT)
                        .contains(&value)
                    {
                        if let Some(m) = self.max_frame_size.get_mut(i) {
                            *m = (*m).max(value);
                        }
                    } else {
                        problems.push(format!(
                            "SETTINGS_MAX_FRAME_SIZE {value} outside 2^14..2^24-1 (RFC 9113 6.5.2)"
                        ));
                    }
                }
                setting::MAX_HEADER_LIST_SIZE => s.max_header_list_size = Some(value),
                // RFC 9113 6.5.2: unknown settings are ignored.
                _ => {}
            }
        }
        if !problems.is_empty() {
            anomaly(
                out,
                flow,
                ts,
                format!("{} SETTINGS: {}", side_name(dir), problems.join("; ")),
            );
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_goaway(
        &mut self,
        dir: Dir,
        last: u32,
        code: u32,
        debug: &str,
        ts: Ts,
        packet: u64,
        out: &mut Vec<HttpEvent>,
    ) {
        if let Some(g) = self.stats.goaway.get_mut(dir.index()) {
            *g = Some(Goaway {
                last_stream: last,
                error_code: code,
                ts,
            });
        }
        if code != NO_ERROR {
            anomaly(
                out,
                self.flow,
                ts,
                format!(
                    "GOAWAY from the {}: {}, last stream {last}{}{}",
                    side_name(dir),
                    frame::error_code_name(code),
                    if debug.is_empty() { "" } else { ": " },
                    debug
                ),
            );
        }
        if dir == Dir::ToClient {
            // RFC 9113 6.8: client streams above `last` were not processed and get no answer.
            let unprocessed: Vec<u32> = self
                .streams
                .range(last.saturating_add(1)..)
                .filter(|(_, s)| s.response.is_none())
                .map(|(&id, _)| id)
                .collect();
            for id in unprocessed {
                self.finalize(id, false, ts, packet, out);
            }
        }
    }

    /// Emits a stream's exchange and forgets the stream. `complete`: the response ended as
    /// framed (END_STREAM).
    fn finalize(
        &mut self,
        id: u32,
        complete: bool,
        end_ts: Ts,
        end_packet: u64,
        out: &mut Vec<HttpEvent>,
    ) {
        // The last decoded bytes of an overflowing body go out before the exchange.
        let finished = self
            .streams
            .get_mut(&id)
            .map(|s| s.sink.as_mut().map(|sink| sink.finish(complete)));
        let Some(finished) = finished else {
            return;
        };
        self.pass_overflow(id, out);
        let Some(mut s) = self.streams.remove(&id) else {
            return;
        };
        self.held = self.held.saturating_sub(s.reserved);
        if self.overflow_owner == Some(id) {
            self.overflow_owner = None;
        }
        let flow = self.flow;
        let response = match s.response.take() {
            Some(mut r) => {
                let (mut body, note) = finished.unwrap_or_else(|| {
                    (
                        Body {
                            complete,
                            kept_all: true,
                            ..Body::default()
                        },
                        None,
                    )
                });
                if let Some(note) = note {
                    anomaly(out, flow, end_ts, self.sink_note(note));
                }
                // Dropped overflow was never passed on: the count must not claim it was.
                body.overflow = body.overflow.saturating_sub(s.overflow_dropped);
                if let Some(cl) = s.content_length {
                    let bodiless = s.is_head || r.status == 204 || r.status == 304;
                    if complete && !bodiless && cl != body.wire_len {
                        anomaly(out, flow, end_ts, format!("stream {id}: content-length {cl} but {} bytes of DATA (RFC 9113 8.1.1)", body.wire_len));
                    }
                }
                r.body = body;
                r.end_ts = end_ts;
                r.end_packet = end_packet;
                Some(r)
            }
            None => None,
        };
        out.push(HttpEvent::Exchange(HttpExchange {
            flow,
            request: s.request,
            response,
        }));
    }

    fn stop(&mut self, dir: Dir, ts: Ts, what: String, out: &mut Vec<HttpEvent>) {
        anomaly(
            out,
            self.flow,
            ts,
            format!("{what}; no longer reading {} HTTP/2 frames", dir_name(dir)),
        );
        if let Some(r) = self.readers.get_mut(dir.index()) {
            r.stopped = true;
            r.block = None;
            r.state = ReadState::Header {
                buf: [0; FRAME_HEADER_LEN],
                have: 0,
            };
        }
    }
}

/// The first frame of a direction, which tells HTTP/2 from garbage when the connection was
/// picked up midstream (a connection that starts properly begins with SETTINGS, RFC 9113 3.4).
fn plausible_first(hdr: &FrameHeader, receiver_max: u32) -> bool {
    if matches!(hdr.kind, FrameType::Unknown(_)) || hdr.len > receiver_max {
        return false;
    }
    if hdr.kind.is_connection_level() != (hdr.stream == 0) && hdr.kind != FrameType::WindowUpdate {
        return false;
    }
    if hdr.kind.needs_stream() && hdr.stream == 0 {
        return false;
    }
    if let Some(want) = hdr.kind.fixed_len() {
        if hdr.len != want {
            return false;
        }
    }
    hdr.kind != FrameType::Settings || hdr.len % 6 == 0
}
