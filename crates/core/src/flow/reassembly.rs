//! Per-direction TCP stream reassembly: sequence numbers become 64-bit stream offsets, in-order
//! bytes are delivered at once, out-of-order pieces are held (non-overlapping, sorted) until
//! their hole fills or is declared a gap, and bytes that overlap what was already received are
//! compared with it (same bytes: a retransmission; different bytes: an injection, first wins).

use super::{Dir, FlowEvent, FlowId, FlowStats, Limits};
use crate::time::Ts;
use std::collections::BTreeMap;

/// Recently delivered bytes kept per direction to compare retransmissions against. 64 KiB is
/// the largest unscaled TCP window (RFC 9293 3.1: 16-bit window field) and the largest
/// TSO/loopback super-segment, so a retransmission of anything the sender may still have
/// unacknowledged in a classic window is compared. Older overlaps are counted, not compared.
pub const RETRANSMIT_TAIL_PER_DIR: usize = 64 << 10;

/// Compare-tail bytes over all flows. Without it `Limits::max_flows` (65,536) busy flows would
/// hold 8 GiB of tails. Past it tails stop growing; their older overlaps are only counted.
pub const RETRANSMIT_TAIL_GLOBAL: usize = 64 << 20;

/// Out-of-order pieces held per direction. `Limits::per_flow_buffer` counts bytes only; this
/// bounds the per-piece overhead (map node, allocation) a flood of 1-byte segments would cost.
/// Hitting it is handled like the byte limit: the hole becomes a gap.
pub const MAX_HELD_PIECES_PER_DIR: usize = 4096;

/// A segment starting further ahead of the next expected byte than this is in no possible
/// window (RFC 7323 2.3: the scaled window is at most 2^30 bytes); it is dropped, not held.
pub const MAX_AHEAD: u64 = 1 << 30;

/// Once its ring has wrapped, a compare tail grows only by at least this much (or up to its
/// cap), so that rotating the ring to grow it is not repeated for every small segment.
const TAIL_MIN_GROWTH: usize = 4096;

/// Counters and budgets shared by every stream of one flow table.
pub(super) struct Shared {
    pub limits: Limits,
    pub stats: FlowStats,
    /// Out-of-order bytes held over all flows (against `Limits::global_buffer`).
    pub held_total: usize,
    /// Compare-tail bytes allocated over all flows (against `tail_global`).
    pub tail_total: usize,
    pub tail_per_dir: usize,
    pub tail_global: usize,
}

impl Shared {
    pub fn new(limits: Limits, tail_per_dir: usize, tail_global: usize) -> Shared {
        Shared {
            limits,
            stats: FlowStats::default(),
            held_total: 0,
            tail_total: 0,
            tail_per_dir,
            tail_global,
        }
    }
}

/// Where one direction's events go while a segment is processed. In-order bytes gathered for
/// the current packet are emitted as one `Data` before any other event (and when dropped).
pub(super) struct Ctx<'a> {
    flow: FlowId,
    dir: Dir,
    ts: Ts,
    packet: u64,
    shared: &'a mut Shared,
    out: &'a mut Vec<FlowEvent>,
    pending: Vec<u8>,
}

impl<'a> Ctx<'a> {
    pub fn new(
        flow: FlowId,
        dir: Dir,
        ts: Ts,
        packet: u64,
        shared: &'a mut Shared,
        out: &'a mut Vec<FlowEvent>,
    ) -> Ctx<'a> {
        Ctx {
            flow,
            dir,
            ts,
            packet,
            shared,
            out,
            pending: Vec::new(),
        }
    }

    fn push_data(&mut self, bytes: &[u8]) {
        if self.pending.is_empty() {
            self.pending = bytes.to_vec();
        } else {
            self.pending.extend_from_slice(bytes);
        }
    }

    /// Like `push_data`, but takes over the allocation when nothing is pending yet.
    fn push_owned(&mut self, bytes: Vec<u8>) {
        if self.pending.is_empty() {
            self.pending = bytes;
        } else {
            self.pending.extend_from_slice(&bytes);
        }
    }

    fn flush_data(&mut self) {
        if !self.pending.is_empty() {
            let data = std::mem::take(&mut self.pending);
            self.out.push(FlowEvent::Data {
                flow: self.flow,
                dir: self.dir,
                ts: self.ts,
                packet: self.packet,
                data,
            });
        }
    }

    fn emit(&mut self, ev: FlowEvent) {
        self.flush_data();
        self.out.push(ev);
    }

    /// A gap directly after another gap of the same direction (nothing delivered between) is
    /// one hole to the reader: it is merged into the previous event.
    fn gap(&mut self, len: u64) {
        self.flush_data();
        self.shared.stats.gap_bytes = self.shared.stats.gap_bytes.saturating_add(len);
        if let Some(FlowEvent::Gap {
            flow,
            dir,
            len: prev,
            ..
        }) = self.out.last_mut()
        {
            if *flow == self.flow && *dir == self.dir {
                *prev = prev.saturating_add(len);
                return;
            }
        }
        self.shared.stats.gaps += 1;
        self.out.push(FlowEvent::Gap {
            flow: self.flow,
            dir: self.dir,
            ts: self.ts,
            len,
        });
    }

    fn injection(&mut self, seq: u32, len: u64) {
        self.shared.stats.injections += 1;
        let ev = FlowEvent::Injection {
            flow: self.flow,
            dir: self.dir,
            ts: self.ts,
            packet: self.packet,
            seq,
            len: u32::try_from(len).unwrap_or(u32::MAX),
        };
        self.emit(ev);
    }

    pub fn fin(&mut self) {
        let ev = FlowEvent::Fin {
            flow: self.flow,
            dir: self.dir,
            ts: self.ts,
            packet: self.packet,
        };
        self.emit(ev);
    }

    /// Emits the pending data. Also done on drop; calling it makes the order explicit.
    pub fn finish(mut self) {
        self.flush_data();
    }
}

impl Drop for Ctx<'_> {
    fn drop(&mut self) {
        self.flush_data();
    }
}

/// An out-of-order piece waiting for its hole to fill.
enum Held {
    Bytes(Vec<u8>),
    /// Bytes the headers announced but the snaplen cut: they become a gap when reached.
    Lost(u64),
}

impl Held {
    fn len(&self) -> u64 {
        match self {
            Held::Bytes(v) => v.len() as u64,
            Held::Lost(n) => *n,
        }
    }
    /// Bytes this piece holds in memory (what the buffer limits count).
    fn held_bytes(&self) -> usize {
        match self {
            Held::Bytes(v) => v.len(),
            Held::Lost(_) => 0,
        }
    }
}

/// A borrowed piece of the current segment, before it is delivered or held.
#[derive(Clone, Copy)]
enum Piece<'s> {
    Bytes(&'s [u8]),
    Lost(u64),
}

impl<'s> Piece<'s> {
    fn len(&self) -> u64 {
        match self {
            Piece::Bytes(b) => b.len() as u64,
            Piece::Lost(n) => *n,
        }
    }
    fn held_bytes(&self) -> usize {
        match self {
            Piece::Bytes(b) => b.len(),
            Piece::Lost(_) => 0,
        }
    }
    /// The piece without its first `n` bytes.
    fn skip(self, n: u64) -> Piece<'s> {
        match self {
            Piece::Bytes(b) => Piece::Bytes(
                b.get(usize::try_from(n).unwrap_or(usize::MAX)..)
                    .unwrap_or(&[]),
            ),
            Piece::Lost(len) => Piece::Lost(len.saturating_sub(n)),
        }
    }
}

/// The current segment placed in stream offsets: captured bytes cover
/// `[start, cap_end)`, the snaplen-cut rest up to the segment's end is lost.
struct Span<'s> {
    start: i64,
    cap_end: i64,
    captured: &'s [u8],
}

impl<'s> Span<'s> {
    /// Captured bytes of `[from, to)` (clipped to what was captured).
    fn bytes(&self, from: i64, to: i64) -> &'s [u8] {
        let to = to.min(self.cap_end);
        if from >= to {
            return &[];
        }
        let a = usize::try_from(from.saturating_sub(self.start)).unwrap_or(0);
        let b = usize::try_from(to.saturating_sub(self.start)).unwrap_or(0);
        self.captured.get(a..b).unwrap_or(&[])
    }
}

/// What a segment's overlaps with already received bytes showed.
#[derive(Default)]
struct Overlap {
    overlapped: bool,
    injected: bool,
}

/// One direction of a connection.
#[derive(Default)]
pub(super) struct HalfStream {
    started: bool,
    finished: bool,
    /// Stream offset of the next byte to deliver (0 = first byte after the SYN, or the first
    /// byte seen for a connection picked up midstream).
    next: u64,
    /// Sequence number of `next`.
    next_seq: u32,
    /// Out-of-order pieces by start offset: non-overlapping, each starting after `next`.
    held: BTreeMap<u64, Held>,
    held_bytes: usize,
    tail: Tail,
}

impl HalfStream {
    /// Sets the sequence number of stream offset 0; later calls do nothing.
    pub fn start(&mut self, seq: u32) {
        if !self.started {
            self.started = true;
            self.next_seq = seq;
        }
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Out-of-order bytes held now.
    #[cfg(test)]
    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    fn next_i(&self) -> i64 {
        i64::try_from(self.next).unwrap_or(i64::MAX)
    }

    /// Stream offset of `seq`: within 2^31 of `next`, either side (RFC 9293 3.4: sequence
    /// comparisons are modulo 2^32), so wraparound is handled. May be negative (before the start).
    fn offset_of(&self, seq: u32) -> i64 {
        let delta = seq.wrapping_sub(self.next_seq) as i32;
        self.next_i().saturating_add(i64::from(delta))
    }

    /// Sequence number of stream offset `off`.
    fn seq_at(&self, off: u64) -> u32 {
        self.next_seq
            .wrapping_add(off.wrapping_sub(self.next) as u32)
    }

    fn advance(&mut self, n: u64) {
        self.next = self.next.saturating_add(n);
        self.next_seq = self.next_seq.wrapping_add(n as u32);
    }

    /// Feeds the payload of one segment: `captured` bytes starting at `data_seq`, out of
    /// `total` the headers announced (more when the snaplen cut the packet).
    pub fn on_segment(&mut self, ctx: &mut Ctx<'_>, data_seq: u32, captured: &[u8], total: u64) {
        if !self.started || total == 0 {
            return;
        }
        let start = self.offset_of(data_seq);
        let end = start.saturating_add(i64::try_from(total).unwrap_or(i64::MAX));
        let cap_end = start.saturating_add(captured.len() as i64).min(end);
        let span = Span {
            start,
            cap_end,
            captured,
        };
        let next = self.next_i();
        let mut seen = Overlap::default();

        // Bytes below `next` were delivered (or declared a gap) already: compare what the tail
        // still holds. Bytes before offset 0 precede the stream and are ignored.
        let old_lo = start.max(0);
        let old_hi = end.min(next);
        if old_lo < old_hi {
            seen.overlapped = true;
            let cmp_lo = old_lo.max(i64::try_from(self.tail.start()).unwrap_or(i64::MAX));
            let cmp_hi = old_hi.min(cap_end);
            if cmp_lo < cmp_hi {
                let bytes = span.bytes(cmp_lo, cmp_hi);
                if let Some((first, last)) = self.tail.diff(cmp_lo as u64, bytes) {
                    let at = (cmp_lo as u64).saturating_add(first);
                    ctx.injection(self.seq_at(at), last - first + 1);
                    seen.injected = true;
                }
            }
        }

        // Bytes at or after `next`: compare with held pieces where they overlap, deliver or
        // hold the rest. Nothing is accepted after the FIN.
        if !self.finished && end > next {
            let lo = start.max(next);
            if (lo - next) as u64 <= MAX_AHEAD {
                self.place_new(ctx, &span, lo, end, &mut seen);
            }
        }

        if !seen.injected && seen.overlapped {
            ctx.shared.stats.retransmissions += 1;
        }
    }

    /// Places `[lo, hi)` of the segment (all at or after `next`).
    fn place_new(
        &mut self,
        ctx: &mut Ctx<'_>,
        span: &Span<'_>,
        lo: i64,
        hi: i64,
        seen: &mut Overlap,
    ) {
        if self.held.is_empty() {
            self.place_range(ctx, span, lo, hi);
            return;
        }
        // Split against held pieces: covered parts are compared (first wins), uncovered parts
        // are placed afterwards (placing may drain the map).
        let (ulo, uhi) = (lo as u64, hi as u64);
        let mut uncovered: Vec<(u64, u64)> = Vec::new();
        let mut pos = ulo;
        if let Some((&s, h)) = self.held.range(..=pos).next_back() {
            let h_end = s.saturating_add(h.len());
            if h_end > pos {
                let to = h_end.min(uhi);
                self.compare_held(ctx, span, s, h, pos, to, seen);
                pos = to;
            }
        }
        while pos < uhi {
            match self.held.range(pos..uhi).next() {
                None => {
                    uncovered.push((pos, uhi));
                    break;
                }
                Some((&s, h)) => {
                    if s > pos {
                        uncovered.push((pos, s));
                    }
                    let to = s.saturating_add(h.len()).min(uhi);
                    self.compare_held(ctx, span, s, h, s, to, seen);
                    pos = to;
                }
            }
        }
        for (a, b) in uncovered {
            self.place_range(ctx, span, a as i64, b as i64);
        }
    }

    /// Compares `[from, to)` of the segment with the held piece at `s` covering it.
    #[allow(clippy::too_many_arguments)]
    fn compare_held(
        &self,
        ctx: &mut Ctx<'_>,
        span: &Span<'_>,
        s: u64,
        held: &Held,
        from: u64,
        to: u64,
        seen: &mut Overlap,
    ) {
        seen.overlapped = true;
        let Held::Bytes(v) = held else { return };
        let new = span.bytes(from as i64, to as i64);
        let a = usize::try_from(from - s).unwrap_or(usize::MAX);
        let old = v.get(a..).unwrap_or(&[]);
        let old = old.get(..new.len()).unwrap_or(old);
        if let Some((first, last)) = diff_range(old.iter().copied(), new) {
            ctx.injection(self.seq_at(from.saturating_add(first)), last - first + 1);
            seen.injected = true;
        }
    }

    /// Places the uncovered range `[lo, hi)`: its captured part, then its lost part.
    fn place_range(&mut self, ctx: &mut Ctx<'_>, span: &Span<'_>, lo: i64, hi: i64) {
        let cap_hi = span.cap_end.clamp(lo, hi);
        if cap_hi > lo {
            self.place_piece(ctx, lo as u64, Piece::Bytes(span.bytes(lo, cap_hi)));
        }
        if hi > cap_hi {
            self.place_piece(ctx, cap_hi as u64, Piece::Lost((hi - cap_hi) as u64));
        }
    }

    /// Delivers `piece` if it is next, else holds it; when holding it would break a limit, the
    /// earliest hole is declared a gap (and what follows delivered) until it fits or is next.
    fn place_piece(&mut self, ctx: &mut Ctx<'_>, mut at: u64, mut piece: Piece<'_>) {
        loop {
            if at < self.next {
                piece = piece.skip(self.next - at);
                at = self.next;
            }
            if piece.len() == 0 {
                return;
            }
            if at == self.next {
                self.deliver(ctx, piece);
                self.drain(ctx);
                return;
            }
            let bytes = piece.held_bytes();
            let limits = &ctx.shared.limits;
            let fits = self.held.len() < MAX_HELD_PIECES_PER_DIR
                && self.held_bytes.saturating_add(bytes) <= limits.per_flow_buffer
                && ctx.shared.held_total.saturating_add(bytes) <= limits.global_buffer;
            if fits {
                let held = match piece {
                    Piece::Bytes(b) => Held::Bytes(b.to_vec()),
                    Piece::Lost(n) => Held::Lost(n),
                };
                self.held.insert(at, held);
                self.held_bytes += bytes;
                ctx.shared.held_total += bytes;
                return;
            }
            ctx.shared.stats.buffer_limit_hits += 1;
            let target = match self.held.keys().next() {
                Some(&h) if h < at => h,
                _ => at,
            };
            self.skip_to(ctx, target);
            self.drain(ctx);
        }
    }

    fn deliver(&mut self, ctx: &mut Ctx<'_>, piece: Piece<'_>) {
        match piece {
            Piece::Bytes(b) => {
                ctx.push_data(b);
                self.tail.push(b, ctx.shared);
                self.advance(b.len() as u64);
            }
            Piece::Lost(n) => self.skip_to(ctx, self.next.saturating_add(n)),
        }
    }

    /// Delivers held pieces that have become next.
    fn drain(&mut self, ctx: &mut Ctx<'_>) {
        while let Some(entry) = self.held.first_entry() {
            let s = *entry.key();
            if s > self.next {
                break;
            }
            let held = entry.remove();
            let n = held.held_bytes();
            self.held_bytes -= n;
            ctx.shared.held_total -= n;
            let end = s.saturating_add(held.len());
            if end <= self.next {
                continue;
            }
            let skip = self.next - s;
            match held {
                Held::Bytes(v) if skip == 0 => {
                    self.tail.push(&v, ctx.shared);
                    self.advance(v.len() as u64);
                    ctx.push_owned(v);
                }
                Held::Bytes(v) => {
                    self.deliver(ctx, Piece::Bytes(v.get(skip as usize..).unwrap_or(&[])))
                }
                Held::Lost(_) => self.skip_to(ctx, end),
            }
        }
    }

    /// Declares `[next, target)` a gap.
    fn skip_to(&mut self, ctx: &mut Ctx<'_>, target: u64) {
        if target > self.next {
            let len = target - self.next;
            ctx.gap(len);
            self.advance(len);
            self.tail.reset(self.next);
        }
    }

    /// The peer acknowledged up to `ack`. Acknowledged bytes in a hole were received by the
    /// peer but never captured: wait no longer, declare them a gap (RFC 9293 3.4: ACK is the
    /// next sequence number the receiver expects, so everything before it arrived).
    pub fn on_peer_ack(&mut self, ctx: &mut Ctx<'_>, ack: u32) {
        if !self.started || self.finished || self.held.is_empty() {
            return;
        }
        let acked = self.offset_of(ack);
        if acked <= self.next_i() {
            return;
        }
        let acked = acked as u64;
        while let Some(&first) = self.held.keys().next() {
            if acked <= self.next {
                break;
            }
            self.skip_to(ctx, acked.min(first));
            self.drain(ctx);
        }
    }

    /// A FIN at `fin_seq`: whatever is missing before it becomes a gap, held pieces before it
    /// are delivered, then `Fin`. Anything held beyond the FIN is not stream data and is dropped.
    pub fn on_fin(&mut self, ctx: &mut Ctx<'_>, fin_seq: u32) {
        if !self.started || self.finished {
            return;
        }
        let fin = self.offset_of(fin_seq);
        while let Some(&first) = self.held.keys().next() {
            if first as i64 >= fin {
                break;
            }
            self.skip_to(ctx, first);
            self.drain(ctx);
        }
        if fin > self.next_i() {
            self.skip_to(ctx, fin as u64);
        }
        self.finished = true;
        self.drop_held(ctx.shared);
        ctx.fin();
    }

    /// Connection end (RST, idle, eviction, end of capture): holes become gaps, held pieces
    /// are delivered.
    pub fn flush(&mut self, ctx: &mut Ctx<'_>) {
        while let Some(&first) = self.held.keys().next() {
            self.skip_to(ctx, first);
            self.drain(ctx);
        }
    }

    fn drop_held(&mut self, shared: &mut Shared) {
        shared.held_total -= self.held_bytes;
        self.held_bytes = 0;
        self.held.clear();
    }

    /// Returns everything this stream accounted in the shared budgets.
    pub fn release(&mut self, shared: &mut Shared) {
        self.drop_held(shared);
        self.tail.release(shared);
    }
}

/// First and last index where `old` and `new` differ (over the shorter of the two).
fn diff_range(old: impl Iterator<Item = u8>, new: &[u8]) -> Option<(u64, u64)> {
    let mut first = None;
    let mut last = 0;
    for (i, (a, b)) in old.zip(new.iter()).enumerate() {
        if a != *b {
            first.get_or_insert(i as u64);
            last = i as u64;
        }
    }
    first.map(|f| (f, last))
}

/// The last bytes delivered in one direction, in a ring that grows on demand up to
/// `Shared::tail_per_dir` while `Shared::tail_global` allows.
#[derive(Default)]
struct Tail {
    buf: Vec<u8>,
    /// Index of the oldest valid byte.
    head: usize,
    /// Valid bytes.
    len: usize,
    /// Stream offset just past the newest byte (always the stream's `next`).
    end: u64,
}

impl Tail {
    /// Stream offset of the oldest byte held.
    fn start(&self) -> u64 {
        self.end - self.len as u64
    }

    fn reset(&mut self, end: u64) {
        self.head = 0;
        self.len = 0;
        self.end = end;
    }

    fn push(&mut self, data: &[u8], shared: &mut Shared) {
        self.end = self.end.saturating_add(data.len() as u64);
        let cap = self.buf.len();
        let needed = self.len.saturating_add(data.len());
        if needed > cap && cap < shared.tail_per_dir {
            let want = needed.max(cap.saturating_mul(2)).min(shared.tail_per_dir);
            let grow = (want - cap).min(shared.tail_global.saturating_sub(shared.tail_total));
            if grow > 0 && (self.head == 0 || grow >= (want - cap).min(TAIL_MIN_GROWTH)) {
                // Growing appends at the end of the buffer: make the valid bytes start at 0.
                self.buf.rotate_left(self.head);
                self.head = 0;
                self.buf.resize(cap + grow, 0);
                shared.tail_total += grow;
            }
        }
        let cap = self.buf.len();
        if cap == 0 {
            return;
        }
        if data.len() >= cap {
            let from = data.len() - cap;
            self.buf.copy_from_slice(data.get(from..).unwrap_or(&[]));
            self.head = 0;
            self.len = cap;
            return;
        }
        let write = (self.head + self.len) % cap;
        let first = (cap - write).min(data.len());
        let (a, b) = data.split_at(first);
        if let Some(dst) = self.buf.get_mut(write..write + first) {
            dst.copy_from_slice(a);
        }
        if let Some(dst) = self.buf.get_mut(..b.len()) {
            dst.copy_from_slice(b);
        }
        self.len += data.len();
        if self.len > cap {
            self.head = (self.head + (self.len - cap)) % cap;
            self.len = cap;
        }
    }

    /// Compares `new` with the stored bytes from offset `at` (the caller keeps
    /// `[at, at + new.len())` within `[start, end)`). Returns the first and last differing
    /// index, or None when equal.
    fn diff(&self, at: u64, new: &[u8]) -> Option<(u64, u64)> {
        let cap = self.buf.len();
        if cap == 0 || new.is_empty() || at < self.start() {
            return None;
        }
        let rel = usize::try_from(at - self.start()).unwrap_or(usize::MAX);
        if rel.saturating_add(new.len()) > self.len {
            return None;
        }
        let idx = (self.head + rel) % cap;
        let first_len = (cap - idx).min(new.len());
        let a = self.buf.get(idx..idx + first_len).unwrap_or(&[]);
        let b = self.buf.get(..new.len() - first_len).unwrap_or(&[]);
        let (na, nb) = new.split_at(first_len);
        if a == na && b == nb {
            return None;
        }
        diff_range(a.iter().chain(b.iter()).copied(), new)
    }

    fn release(&mut self, shared: &mut Shared) {
        shared.tail_total -= self.buf.len();
        self.buf = Vec::new();
        self.head = 0;
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(per_dir: usize, global: usize) -> Shared {
        Shared::new(Limits::default(), per_dir, global)
    }

    #[test]
    fn tail_ring_wraps_and_compares_across_the_seam() {
        let mut sh = shared(8, 1 << 20);
        let mut t = Tail::default();
        t.push(b"abcde", &mut sh);
        t.push(b"fghij", &mut sh);
        // Capacity 8: holds "cdefghij", offsets 2..10.
        assert_eq!(t.start(), 2);
        assert_eq!(t.diff(2, b"cdefghij"), None);
        assert_eq!(t.diff(5, b"fXhij"), Some((1, 1)));
        assert_eq!(t.diff(1, b"bc"), None, "before the tail: not comparable");
        t.push(b"0123456789", &mut sh);
        assert_eq!(t.start(), 12);
        assert_eq!(t.diff(12, b"23456789"), None);
        assert_eq!(t.diff(12, b"2345678X"), Some((7, 7)));
        assert_eq!(sh.tail_total, 8);
        t.release(&mut sh);
        assert_eq!(sh.tail_total, 0);
    }

    #[test]
    fn tail_growth_stops_at_the_global_budget() {
        let mut sh = shared(1 << 10, 100);
        let mut a = Tail::default();
        let mut b = Tail::default();
        a.push(&[1; 80], &mut sh);
        b.push(&[2; 80], &mut sh);
        assert_eq!(a.buf.len(), 80);
        assert_eq!(b.buf.len(), 20, "only what the global budget had left");
        assert_eq!(b.start(), 60);
        assert_eq!(b.diff(60, &[2; 20]), None);
        assert_eq!(sh.tail_total, 100);
    }

    #[test]
    fn tail_growth_after_wrap_keeps_order() {
        let stream: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        let mut sh = shared(1 << 20, 4096);
        let mut t = Tail::default();
        t.push(&stream[..4000], &mut sh);
        // Takes the last 96 bytes of budget, then wraps.
        t.push(&stream[4000..4200], &mut sh);
        assert_eq!((t.buf.len(), t.len, t.start()), (4096, 4096, 104));
        assert_ne!(t.head, 0);
        // Wrapped: a growth smaller than TAIL_MIN_GROWTH is refused.
        sh.tail_global += 10;
        t.push(&stream[4200..4210], &mut sh);
        assert_eq!((t.buf.len(), t.start()), (4096, 114));
        sh.tail_global = 1 << 20;
        t.push(&stream[4210..5000], &mut sh);
        assert_eq!((t.buf.len(), t.start()), (8192, 114));
        assert_eq!(t.diff(114, &stream[114..5000]), None);
        assert_eq!(t.diff(4990, b"x"), Some((0, 0)));
    }
}
