//! HTTP/1 message framing read incrementally, one direction at a time: a head (start line and
//! header block) accumulated across chunks, a body's length or chunked framing (RFC 9112 6, 7),
//! and resynchronisation to the next start line after a gap or junk. The connection state that
//! pairs requests with responses is in `mod.rs`; the pure parsers in `parser.rs`.

// House style: no indexing, unwrap or unchecked arithmetic on wire data outside tests.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::arithmetic_side_effects
    )
)]

use super::parser::{self, Check, Framing, Scan, StartKind, MAX_CHUNK_LINE};
use crate::time::Ts;

/// Capacity kept in an idle head buffer between messages; a larger one is freed, so thousands
/// of idle connections do not each hold a max-size head buffer.
const IDLE_BUFFER_CAPACITY: usize = 4096;

/// Where a message body is in its framing.
pub(super) enum BodyState {
    Length { remaining: u64 },
    Chunked { at: ChunkAt, line: Vec<u8> },
    ToClose,
}

pub(super) enum ChunkAt {
    Size,
    Data {
        remaining: u64,
    },
    /// The CRLF after chunk data.
    DataEnd {
        saw_cr: bool,
    },
    /// Trailer lines after the last chunk, until an empty line (RFC 9112 7.1.2).
    Trailer {
        line_len: usize,
        total: usize,
    },
}

pub(super) enum BodyStep {
    More,
    Done,
    /// The framing broke; resynchronise. `line_start`: the next byte starts a line.
    Bad {
        what: &'static str,
        line_start: bool,
    },
}

impl BodyState {
    pub(super) fn new(framing: Framing) -> Option<BodyState> {
        match framing {
            Framing::Length(n) if n > 0 => Some(BodyState::Length { remaining: n }),
            Framing::Chunked => Some(BodyState::Chunked {
                at: ChunkAt::Size,
                line: Vec::new(),
            }),
            Framing::ToClose => Some(BodyState::ToClose),
            Framing::Length(_) | Framing::None | Framing::Tunnel => None,
        }
    }

    /// Consumes body bytes from `input`, passing de-chunked content to `sink`. Returns the bytes
    /// used and whether the body ended.
    pub(super) fn consume(
        &mut self,
        input: &[u8],
        max_trailer: usize,
        sink: &mut dyn FnMut(&[u8]),
    ) -> (usize, BodyStep) {
        let mut i = 0usize;
        loop {
            let rest = input.get(i..).unwrap_or(&[]);
            match self {
                BodyState::Length { remaining } => {
                    let n = usize::try_from(*remaining).map_or(rest.len(), |r| r.min(rest.len()));
                    if n > 0 {
                        sink(rest.get(..n).unwrap_or(&[]));
                    }
                    *remaining = remaining.saturating_sub(n as u64);
                    i = i.saturating_add(n);
                    return (
                        i,
                        if *remaining == 0 {
                            BodyStep::Done
                        } else {
                            BodyStep::More
                        },
                    );
                }
                BodyState::ToClose => {
                    if !rest.is_empty() {
                        sink(rest);
                    }
                    return (input.len(), BodyStep::More);
                }
                BodyState::Chunked { at, line } => {
                    if rest.is_empty() {
                        return (i, BodyStep::More);
                    }
                    match at {
                        ChunkAt::Size => match rest.iter().position(|&b| b == b'\n') {
                            None => {
                                if line.len().saturating_add(rest.len()) > MAX_CHUNK_LINE {
                                    let what = "chunk-size line longer than 4096 bytes";
                                    return (
                                        input.len(),
                                        BodyStep::Bad {
                                            what,
                                            line_start: false,
                                        },
                                    );
                                }
                                line.extend_from_slice(rest);
                                return (input.len(), BodyStep::More);
                            }
                            Some(lf) => {
                                i = i.saturating_add(lf).saturating_add(1);
                                if line.len().saturating_add(lf) > MAX_CHUNK_LINE {
                                    let what = "chunk-size line longer than 4096 bytes";
                                    return (
                                        i,
                                        BodyStep::Bad {
                                            what,
                                            line_start: true,
                                        },
                                    );
                                }
                                line.extend_from_slice(rest.get(..lf).unwrap_or(&[]));
                                let size = parser::parse_chunk_size_line(line);
                                line.clear();
                                match size {
                                    None => {
                                        let what = "invalid chunk-size line";
                                        return (
                                            i,
                                            BodyStep::Bad {
                                                what,
                                                line_start: true,
                                            },
                                        );
                                    }
                                    Some(0) => {
                                        *at = ChunkAt::Trailer {
                                            line_len: 0,
                                            total: 0,
                                        }
                                    }
                                    Some(n) => *at = ChunkAt::Data { remaining: n },
                                }
                            }
                        },
                        ChunkAt::Data { remaining } => {
                            let n = usize::try_from(*remaining)
                                .map_or(rest.len(), |r| r.min(rest.len()));
                            sink(rest.get(..n).unwrap_or(&[]));
                            *remaining = remaining.saturating_sub(n as u64);
                            i = i.saturating_add(n);
                            if *remaining == 0 {
                                *at = ChunkAt::DataEnd { saw_cr: false };
                            }
                        }
                        ChunkAt::DataEnd { saw_cr } => match rest.first() {
                            Some(b'\r') if !*saw_cr => {
                                *saw_cr = true;
                                i = i.saturating_add(1);
                            }
                            Some(b'\n') => {
                                *at = ChunkAt::Size;
                                i = i.saturating_add(1);
                            }
                            _ => {
                                let what = "chunk data not followed by CRLF";
                                return (
                                    i,
                                    BodyStep::Bad {
                                        what,
                                        line_start: true,
                                    },
                                );
                            }
                        },
                        ChunkAt::Trailer { line_len, total } => {
                            for (k, &b) in rest.iter().enumerate() {
                                *total = total.saturating_add(1);
                                if *total > max_trailer {
                                    let what = "trailer section larger than max_head_bytes";
                                    return (
                                        i.saturating_add(k).saturating_add(1),
                                        BodyStep::Bad {
                                            what,
                                            line_start: false,
                                        },
                                    );
                                }
                                match b {
                                    b'\n' if *line_len == 0 => {
                                        return (
                                            i.saturating_add(k).saturating_add(1),
                                            BodyStep::Done,
                                        )
                                    }
                                    b'\n' => *line_len = 0,
                                    b'\r' => {}
                                    _ => *line_len = line_len.saturating_add(1),
                                }
                            }
                            return (input.len(), BodyStep::More);
                        }
                    }
                }
            }
        }
    }
}

/// Accumulates a message head (start line and header block) from one direction.
#[derive(Default)]
pub(super) struct HeadReader {
    pub(super) buf: Vec<u8>,
    /// `buf.len()` when the start line was last checked: it is checked again only when an LF
    /// arrives or the buffer doubled, so byte-by-byte arrival stays linear.
    pub(super) checked_len: usize,
    /// The start line was checked complete: index past its LF.
    pub(super) line_end: Option<usize>,
    /// Where the search for the empty line resumes.
    pub(super) search_from: usize,
    /// Chunk that carried `buf[0]`.
    pub(super) ts: Ts,
    pub(super) packet: u64,
}

impl HeadReader {
    pub(super) fn reset(&mut self) {
        self.buf.clear();
        if self.buf.capacity() > IDLE_BUFFER_CAPACITY {
            self.buf = Vec::new();
        }
        self.checked_len = 0;
        self.line_end = None;
        self.search_from = 0;
    }

    pub(super) fn start(&mut self, ts: Ts, packet: u64) {
        self.ts = ts;
        self.packet = packet;
    }
}

/// What [`HeadReader::read`] came to. `used` counts the input bytes taken, blank lines before
/// the head (RFC 9112 2.2) included; the reader is reset for the next head unless `More`.
pub(super) enum HeadRead {
    /// Everything was taken; no whole head yet.
    More { used: usize },
    /// A whole head, and the chunk that carried its first byte.
    Complete {
        head: Vec<u8>,
        ts: Ts,
        packet: u64,
        used: usize,
    },
    /// The bytes do not start a message. `skipped` blank bytes came first; scanning may resume
    /// `resume` bytes after them (not a line start). `earlier` holds what earlier chunks had put
    /// in the head, from the chunk at `ts`/`packet` (an HTTP/0.9 answer is those bytes).
    NotStart {
        skipped: usize,
        resume: usize,
        earlier: Vec<u8>,
        ts: Ts,
        packet: u64,
    },
    /// Over `max_head_bytes`.
    TooBig,
}

impl HeadReader {
    /// Reads a head at a message start: skips blank lines before it, then adds to it (one
    /// side of a connection calls this for its own reader; both sides read heads alike).
    pub(super) fn read(
        &mut self,
        ts: Ts,
        packet: u64,
        input: &[u8],
        kind: StartKind,
        max_head: usize,
    ) -> HeadRead {
        let mut skipped = 0;
        if self.buf.is_empty() {
            skipped = input
                .iter()
                .take_while(|&&b| b == b'\r' || b == b'\n')
                .count();
            if skipped == input.len() {
                return HeadRead::More { used: skipped };
            }
            self.start(ts, packet);
        }
        let rest = input.get(skipped..).unwrap_or(&[]);
        match head_step(self, rest, kind, max_head) {
            HeadStep::NeedMore => HeadRead::More { used: input.len() },
            HeadStep::TooBig => HeadRead::TooBig,
            HeadStep::NotStart { resume, old_len } => {
                let mut earlier = std::mem::take(&mut self.buf);
                earlier.truncate(old_len);
                let (ts, packet) = (self.ts, self.packet);
                self.reset();
                HeadRead::NotStart {
                    skipped,
                    resume,
                    earlier,
                    ts,
                    packet,
                }
            }
            HeadStep::Complete { consumed } => {
                let head = std::mem::take(&mut self.buf);
                let (ts, packet) = (self.ts, self.packet);
                self.reset();
                HeadRead::Complete {
                    head,
                    ts,
                    packet,
                    used: skipped.saturating_add(consumed),
                }
            }
        }
    }
}

pub(super) enum HeadStep {
    /// Everything was taken; the head is not complete.
    NeedMore,
    /// The head is `buf[..]`; `consumed` bytes of the input belonged to it.
    Complete { consumed: usize },
    /// The bytes do not start a message. `old_len` bytes in the buffer came from earlier
    /// chunks; scanning may resume at `resume` in the input (not a line start).
    NotStart { resume: usize, old_len: usize },
    /// Over `max_head_bytes`.
    TooBig,
}

/// Adds `input` to the head being read and says whether it is complete. The caller skips
/// leading CR/LF before a head (RFC 9112 2.2) and calls `start` on an empty buffer.
pub(super) fn head_step(
    r: &mut HeadReader,
    input: &[u8],
    kind: StartKind,
    max_head: usize,
) -> HeadStep {
    let old = r.buf.len();
    let room = max_head.saturating_add(1).saturating_sub(old);
    let take = input.len().min(room);
    let added = input.get(..take).unwrap_or(&[]);
    r.buf.extend_from_slice(added);
    if r.line_end.is_none() {
        let due = r.checked_len == 0
            || added.contains(&b'\n')
            || r.buf.len() >= r.checked_len.saturating_mul(2);
        if !due {
            return if r.buf.len() > max_head {
                HeadStep::TooBig
            } else {
                HeadStep::NeedMore
            };
        }
        r.checked_len = r.buf.len();
        let line = match kind {
            StartKind::Request => match parser::check_request_line(&r.buf, false) {
                Check::Yes(l) => Check::Yes((l.end, l.version.is_none())),
                Check::Maybe => Check::Maybe,
                Check::No => Check::No,
            },
            StartKind::Response => match parser::check_status_line(&r.buf, max_head) {
                Check::Yes(l) => Check::Yes((l.end, false)),
                Check::Maybe => Check::Maybe,
                Check::No => Check::No,
            },
        };
        match line {
            Check::No => {
                return HeadStep::NotStart {
                    resume: usize::from(old == 0),
                    old_len: old,
                }
            }
            Check::Maybe => {
                return if r.buf.len() > max_head {
                    HeadStep::TooBig
                } else {
                    HeadStep::NeedMore
                };
            }
            Check::Yes((end, simple)) => {
                // A version-less request line is HTTP/0.9 (the request is that one line) unless
                // header lines follow it in the same bytes, as malformed HTTP/1 clients send.
                if simple && matches!(r.buf.get(end), None | Some(b'\r') | Some(b'\n')) {
                    // An empty line right after it is consumed with it.
                    let blank = match (r.buf.get(end), r.buf.get(end.saturating_add(1))) {
                        (Some(b'\n'), _) => 1,
                        (Some(b'\r'), Some(b'\n')) => 2,
                        _ => 0,
                    };
                    let end = end.saturating_add(blank);
                    r.buf.truncate(end);
                    return HeadStep::Complete {
                        consumed: end.saturating_sub(old),
                    };
                }
                r.line_end = Some(end);
                r.search_from = end.saturating_sub(1);
            }
        }
    }
    match parser::find_head_end(&r.buf, r.search_from) {
        Some(end) => {
            r.buf.truncate(end);
            HeadStep::Complete {
                consumed: end.saturating_sub(old),
            }
        }
        None => {
            r.search_from = r.buf.len().saturating_sub(2);
            if r.buf.len() > max_head {
                HeadStep::TooBig
            } else {
                HeadStep::NeedMore
            }
        }
    }
}

/// One direction's reading state shared by both sides.
#[derive(Default)]
pub(super) struct Side {
    pub(super) head: HeadReader,
    /// While resynchronising: the next byte starts a line (right after a gap or an LF).
    pub(super) line_start: bool,
    pub(super) last_ts: Ts,
    pub(super) last_packet: u64,
}

pub(super) enum ResyncStep {
    /// Bytes used, still looking.
    Skipped(usize),
    /// A start line begins after `usize` bytes of the input (or is already in the head
    /// buffer, with its line complete): switch to reading a head.
    Start(usize),
}

impl ResyncStep {
    /// The input bytes the step used, whatever it found.
    pub(super) fn used(&self) -> usize {
        match *self {
            ResyncStep::Skipped(n) | ResyncStep::Start(n) => n,
        }
    }
}

/// Looks for the next start line after a gap or junk, keeping at most one partial candidate
/// line in the head buffer.
pub(super) fn resync_step(
    side: &mut Side,
    ts: Ts,
    packet: u64,
    input: &[u8],
    kind: StartKind,
    max_head: usize,
) -> ResyncStep {
    let r = &mut side.head;
    if !r.buf.is_empty() {
        // A candidate line started in an earlier chunk: complete it, up to its LF.
        let upto = input
            .iter()
            .position(|&b| b == b'\n')
            .map_or(input.len(), |p| p.saturating_add(1));
        let room = max_head.saturating_add(1).saturating_sub(r.buf.len());
        let take = upto.min(room);
        let added = input.get(..take).unwrap_or(&[]);
        r.buf.extend_from_slice(added);
        let has_lf = added.last() == Some(&b'\n');
        if !has_lf && r.buf.len() <= max_head && r.buf.len() < r.checked_len.saturating_mul(2) {
            return ResyncStep::Skipped(take);
        }
        r.checked_len = r.buf.len();
        let verdict = match kind {
            StartKind::Request => match parser::check_request_line(&r.buf, true) {
                Check::Yes(l) if l.version.is_some() => Check::Yes(l.end),
                Check::Yes(_) => Check::No,
                Check::Maybe => Check::Maybe,
                Check::No => Check::No,
            },
            StartKind::Response => match parser::check_status_line(&r.buf, max_head) {
                Check::Yes(l) => Check::Yes(l.end),
                Check::Maybe => Check::Maybe,
                Check::No => Check::No,
            },
        };
        return match verdict {
            Check::Yes(end) => {
                r.line_end = Some(end);
                r.search_from = end.saturating_sub(1);
                ResyncStep::Start(take)
            }
            Check::Maybe if r.buf.len() <= max_head => ResyncStep::Skipped(take),
            Check::Maybe | Check::No => {
                r.reset();
                side.line_start = has_lf;
                ResyncStep::Skipped(take)
            }
        };
    }
    match parser::scan_for_start(input, side.line_start, kind, max_head) {
        Scan::Found(i) => {
            side.line_start = false;
            ResyncStep::Start(i)
        }
        Scan::Partial(i) => {
            r.reset();
            r.buf.extend_from_slice(input.get(i..).unwrap_or(&[]));
            r.checked_len = r.buf.len();
            r.start(ts, packet);
            ResyncStep::Skipped(input.len())
        }
        Scan::NotFound => {
            side.line_start = input.last() == Some(&b'\n');
            ResyncStep::Skipped(input.len())
        }
    }
}
