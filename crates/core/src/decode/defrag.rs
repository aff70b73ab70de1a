//! A bounded IP fragment pool (IPv4, RFC 791 section 3.2; IPv6, RFC 8200 section 4.5).
//!
//! Written here rather than using etherparse's `IpDefragPool` because that pool has no limits:
//! every set is kept until completed. Here the number of sets, the bytes buffered and a set's
//! age (capture time) are capped; hitting a cap drops the oldest set and counts it.
//!
//! Overlap policy: first wins. Bytes already received are kept and a later fragment only fills
//! the holes (exact duplicates, common with retransmitting middleboxes, change nothing). This
//! is the BSD policy Suricata uses by default; Linux (since 4.19) instead discards a datagram
//! whose fragments overlap, so an overlapping set here may not match what a Linux host saw.

use super::DefragLimits;
use crate::time::Ts;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

/// Largest reassembled payload: the IPv4 total length and IPv6 payload length are 16 bits.
const MAX_DATAGRAM: usize = 65_535;

/// Received ranges tracked per set. Contiguous fragments merge into one range, so a real
/// datagram (at most 45 fragments on a 1500-byte MTU) stays far below this even out of order;
/// a set needing more is a fragmentation attack and is dropped.
const MAX_RANGES_PER_SET: usize = 128;

/// Identifies the fragments of one datagram (RFC 791: source, destination, protocol,
/// identification; RFC 8200: source, destination, identification).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FragKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub id: u32,
    pub proto: u8,
}

#[derive(Debug)]
pub(crate) enum DefragResult {
    /// All fragments are in: the reassembled payload (after the IP header).
    Complete(Vec<u8>),
    /// Waiting for more fragments.
    Pending,
    /// The set was dropped (inconsistent, too big, or over a limit); counted in `dropped`.
    Dropped,
}

#[derive(Debug)]
struct FragSet {
    seq: u64,
    first_seen: Ts,
    data: Vec<u8>,
    /// Received byte ranges [start, end), sorted, disjoint and not adjacent.
    have: Vec<(usize, usize)>,
    /// Payload length, known once the last fragment (more-fragments clear) arrived.
    total: Option<usize>,
}

#[derive(Debug)]
pub(crate) struct DefragPool {
    limits: DefragLimits,
    sets: HashMap<FragKey, FragSet>,
    /// Sets by arrival order: the first entry is the oldest, evicted first.
    order: BTreeMap<u64, FragKey>,
    next_seq: u64,
    /// Bytes of reassembly buffers over all sets.
    bytes: usize,
    /// Sets dropped (pool full, byte limit, timeout, inconsistent or oversized).
    pub dropped: u64,
}

impl DefragPool {
    pub fn new(limits: DefragLimits) -> DefragPool {
        DefragPool {
            limits,
            sets: HashMap::new(),
            order: BTreeMap::new(),
            next_seq: 0,
            bytes: 0,
            dropped: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.sets.len()
    }

    #[cfg(test)]
    pub fn buffered_bytes(&self) -> usize {
        self.bytes
    }

    /// Drops sets older than the timeout at capture time `now`.
    pub fn expire(&mut self, now: Ts) {
        while let Some((_, key)) = self.order.first_key_value() {
            let key = *key;
            let expired = self
                .sets
                .get(&key)
                .is_none_or(|s| now.0.saturating_sub(s.first_seen.0) > self.limits.timeout_ns);
            if !expired {
                break;
            }
            self.drop_set(&key);
        }
    }

    fn drop_set(&mut self, key: &FragKey) {
        if let Some(set) = self.sets.remove(key) {
            self.order.remove(&set.seq);
            self.bytes = self.bytes.saturating_sub(set.data.len());
            self.dropped += 1;
        }
    }

    /// Drops the oldest set other than `keep`; false when there is none.
    fn evict_oldest_except(&mut self, keep: &FragKey) -> bool {
        let victim = self.order.values().find(|k| *k != keep).copied();
        match victim {
            Some(k) => {
                self.drop_set(&k);
                true
            }
            None => false,
        }
    }

    /// Adds one fragment: `offset` in bytes from the start of the payload, `more` the
    /// more-fragments flag, `data` the fragment's payload.
    pub fn insert(
        &mut self,
        key: FragKey,
        now: Ts,
        offset: usize,
        more: bool,
        data: &[u8],
    ) -> DefragResult {
        let end = offset.saturating_add(data.len());
        if end > MAX_DATAGRAM {
            // RFC 791: a datagram cannot exceed 65535 bytes ("ping of death" otherwise).
            if self.sets.contains_key(&key) {
                self.drop_set(&key);
            } else {
                self.dropped += 1;
            }
            return DefragResult::Dropped;
        }
        if !self.sets.contains_key(&key) {
            if self.limits.max_sets == 0 {
                self.dropped += 1;
                return DefragResult::Dropped;
            }
            while self.sets.len() >= self.limits.max_sets {
                if !self.evict_oldest_except(&key) {
                    break;
                }
            }
            let seq = self.next_seq;
            self.next_seq += 1;
            self.order.insert(seq, key);
            self.sets.insert(
                key,
                FragSet {
                    seq,
                    first_seen: now,
                    data: Vec::new(),
                    have: Vec::new(),
                    total: None,
                },
            );
        }

        // Consistency: one last fragment, and nothing beyond it.
        let Some(set) = self.sets.get_mut(&key) else {
            return DefragResult::Dropped;
        };
        let max_end = set.have.last().map_or(0, |r| r.1);
        let consistent = if more {
            set.total.is_none_or(|t| end <= t)
        } else {
            set.total.is_none_or(|t| t == end) && max_end <= end
        };
        if !consistent {
            self.drop_set(&key);
            return DefragResult::Dropped;
        }
        if !more {
            set.total = Some(end);
        }

        // Memory: make room by evicting older sets; a set that alone exceeds the limit goes.
        let grow = end.saturating_sub(set.data.len());
        while self.bytes.saturating_add(grow) > self.limits.max_bytes {
            if !self.evict_oldest_except(&key) {
                self.drop_set(&key);
                return DefragResult::Dropped;
            }
        }
        let Some(set) = self.sets.get_mut(&key) else {
            return DefragResult::Dropped;
        };
        if grow > 0 {
            set.data.reserve_exact(grow);
            set.data.resize(end, 0);
            self.bytes += grow;
        }

        if !data.is_empty() {
            copy_holes(set, offset, data);
            if !add_range(&mut set.have, offset, end) {
                self.drop_set(&key);
                return DefragResult::Dropped;
            }
        }

        let complete = matches!((set.total, set.have.as_slice()), (Some(t), [(0, e)]) if *e == t);
        if complete {
            if let Some(mut set) = self.sets.remove(&key) {
                self.order.remove(&set.seq);
                self.bytes = self.bytes.saturating_sub(set.data.len());
                if let Some(t) = set.total {
                    set.data.truncate(t);
                }
                return DefragResult::Complete(set.data);
            }
        }
        DefragResult::Pending
    }
}

/// Copies the parts of `data` (at `offset`) that fall in holes: first received wins.
fn copy_holes(set: &mut FragSet, offset: usize, data: &[u8]) {
    let end = offset + data.len();
    let mut cursor = offset;
    let copy = |from: usize, to: usize, buf: &mut Vec<u8>| {
        if let (Some(dst), Some(src)) =
            (buf.get_mut(from..to), data.get(from - offset..to - offset))
        {
            dst.copy_from_slice(src);
        }
    };
    for &(s, e) in &set.have {
        if e <= cursor {
            continue;
        }
        if s >= end {
            break;
        }
        if s > cursor {
            copy(cursor, s, &mut set.data);
        }
        cursor = cursor.max(e);
        if cursor >= end {
            break;
        }
    }
    if cursor < end {
        copy(cursor, end, &mut set.data);
    }
}

/// Adds [start, end) to the sorted range list, merging; false when over the range limit.
fn add_range(have: &mut Vec<(usize, usize)>, start: usize, end: usize) -> bool {
    let pos = have.partition_point(|r| r.0 < start);
    have.insert(pos, (start, end));
    let mut merged: usize = 0;
    for i in 1..have.len() {
        let (Some(&cur), Some(prev)) = (have.get(i), have.get(merged)) else {
            break;
        };
        if cur.0 <= prev.1 {
            if let Some(prev) = have.get_mut(merged) {
                prev.1 = prev.1.max(cur.1);
            }
        } else {
            merged += 1;
            if let Some(slot) = have.get_mut(merged) {
                *slot = cur;
            }
        }
    }
    have.truncate(merged + 1);
    have.len() <= MAX_RANGES_PER_SET
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn key(id: u32) -> FragKey {
        FragKey {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            id,
            proto: 17,
        }
    }

    fn limits() -> DefragLimits {
        DefragLimits {
            max_sets: 4,
            max_bytes: 1 << 16,
            timeout_ns: 1_000,
        }
    }

    #[test]
    fn ranges_merge_adjacent_and_overlapping() {
        let mut have = Vec::new();
        assert!(add_range(&mut have, 16, 24));
        assert!(add_range(&mut have, 0, 8));
        assert_eq!(have, vec![(0, 8), (16, 24)]);
        assert!(add_range(&mut have, 8, 16));
        assert_eq!(have, vec![(0, 24)]);
        assert!(add_range(&mut have, 4, 40));
        assert_eq!(have, vec![(0, 40)]);
    }

    #[test]
    fn out_of_order_completes_with_right_bytes() {
        let mut pool = DefragPool::new(limits());
        let k = key(1);
        assert!(matches!(
            pool.insert(k, Ts(0), 8, false, b"world!"),
            DefragResult::Pending
        ));
        match pool.insert(k, Ts(1), 0, true, b"hello, w") {
            DefragResult::Complete(v) => assert_eq!(v, b"hello, wworld!"),
            other => panic!("{other:?}"),
        }
        assert!(pool.is_empty());
        assert_eq!(pool.buffered_bytes(), 0);
    }

    #[test]
    fn overlap_keeps_first_bytes() {
        let mut pool = DefragPool::new(limits());
        let k = key(2);
        pool.insert(k, Ts(0), 0, true, b"AAAAAAAA");
        // Overlaps the first 8 bytes with different content, and adds 8 new ones.
        pool.insert(k, Ts(0), 0, true, b"BBBBBBBBCCCCCCCC");
        match pool.insert(k, Ts(0), 16, false, b"DD") {
            DefragResult::Complete(v) => assert_eq!(v, b"AAAAAAAACCCCCCCCDD"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn two_last_fragments_disagreeing_drop_the_set() {
        let mut pool = DefragPool::new(limits());
        let k = key(3);
        pool.insert(k, Ts(0), 8, false, b"12345678");
        assert!(matches!(
            pool.insert(k, Ts(0), 24, false, b"x"),
            DefragResult::Dropped
        ));
        assert_eq!(pool.dropped, 1);
        assert!(pool.is_empty());
    }

    #[test]
    fn oversized_datagram_is_dropped() {
        let mut pool = DefragPool::new(limits());
        assert!(matches!(
            pool.insert(key(4), Ts(0), 65_528, false, &[0u8; 16]),
            DefragResult::Dropped
        ));
        assert_eq!(pool.dropped, 1);
        assert!(pool.is_empty());
    }

    #[test]
    fn byte_limit_evicts_oldest() {
        let mut pool = DefragPool::new(DefragLimits {
            max_sets: 10,
            max_bytes: 100,
            timeout_ns: 1,
        });
        pool.insert(key(1), Ts(0), 0, true, &[1u8; 60]);
        pool.insert(key(2), Ts(0), 0, true, &[2u8; 60]);
        assert_eq!(pool.len(), 1);
        assert_eq!(pool.dropped, 1);
        assert!(pool.buffered_bytes() <= 100);
        // A single set bigger than the limit is dropped itself.
        assert!(matches!(
            pool.insert(key(3), Ts(0), 0, true, &[3u8; 200]),
            DefragResult::Dropped
        ));
    }

    #[test]
    fn too_many_holes_drop_the_set() {
        let mut pool = DefragPool::new(DefragLimits {
            max_sets: 1,
            max_bytes: 1 << 20,
            timeout_ns: 1,
        });
        let k = key(5);
        let mut last = DefragResult::Pending;
        for i in 0..(MAX_RANGES_PER_SET + 1) {
            last = pool.insert(k, Ts(0), i * 16, true, &[0u8; 8]);
        }
        assert!(matches!(last, DefragResult::Dropped));
        assert!(pool.is_empty());
    }
}
