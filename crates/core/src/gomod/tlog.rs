//! The checksum database's transparency log (golang.org/x/mod/sumdb/tlog): RFC 6962 hashing,
//! hash-tile paths and contents, and tree hashes / record checks computed from the tiles a
//! capture holds.
//!
//! Hashes are addressed by `(level, n)`: the `n`-th hash at `level` is the root of the complete
//! subtree over records `n * 2^level .. (n+1) * 2^level`. A hash tile `tile/H/L/N` holds the
//! hashes at level `L*H`, numbers `N*2^H .. N*2^H + W - 1` (x/mod tlog tile.go); the go command's
//! client uses H = 8.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// A SHA-256 hash of a record or of a tree node.
pub type Hash = [u8; 32];

/// Bytes per hash in a tile.
pub const HASH_SIZE: usize = 32;

/// Tile height used by sum.golang.org and the go command (x/mod sumdb client.go: tileHeight 8).
pub const SUMDB_TILE_HEIGHT: u8 = 8;

/// Highest tile height ParseTilePath accepts (x/mod tlog: `1 ≤ H ≤ 30`).
pub const MAX_TILE_HEIGHT: u8 = 30;

/// RFC 6962 2.1: leaf hash = SHA-256(0x00 || record).
pub fn record_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(data);
    h.finalize().into()
}

/// RFC 6962 2.1: interior node = SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// A signed tree head's content: the number of records and the root hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tree {
    pub size: u64,
    pub hash: Hash,
}

/// The largest power of two strictly below `n` (n >= 2), where RFC 6962 2.1 splits a tree.
fn split_point(n: u64) -> u64 {
    1u64 << (63 - n.saturating_sub(1).max(1).leading_zeros())
}

/// RFC 6962 2.1 Merkle Tree Hash over leaf hashes. The empty tree has the all-zero hash, as in
/// x/mod tlog `TreeHash(0, ...)` (RFC 6962 would say SHA-256 of nothing; the sumdb never signs
/// an empty tree).
pub fn tree_hash_from_leaves(leaves: &[Hash]) -> Hash {
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves {
            [] => [0u8; 32],
            [one] => *one,
            _ => {
                let k = split_point(leaves.len() as u64) as usize;
                let (l, r) = leaves.split_at(k);
                node_hash(&mth(l), &mth(r))
            }
        }
    }
    mth(leaves)
}

/// Which rows a tile holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TileLevel {
    /// Hashes at tree level `L * H` (`tile/H/L/...`).
    Hashes(u8),
    /// Record data (`tile/H/data/...`); the go command never asks for these.
    Data,
}

/// One tile (x/mod tlog `Tile`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tile {
    /// Height H: a full tile has 2^H entries.
    pub height: u8,
    pub level: TileLevel,
    /// Number of the tile within its level.
    pub n: u64,
    /// Entries present, 1..=2^H; below 2^H the path has `.p/W`.
    pub width: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TileError {
    #[error("malformed tile path {0:?}")]
    BadPath(String),
    #[error("tile {path}: body is {have} bytes, want {want}")]
    WrongLength {
        path: String,
        have: usize,
        want: usize,
    },
    #[error("tile {path}: differs from an earlier copy in the hashes both hold")]
    Conflict { path: String },
    #[error("tile {path}: not a hash tile")]
    NotHashTile { path: String },
}

impl Tile {
    /// Entries in a full tile of this height.
    pub fn full_width(&self) -> u64 {
        1u64 << self.height.min(MAX_TILE_HEIGHT)
    }

    pub fn is_partial(&self) -> bool {
        u64::from(self.width) != self.full_width()
    }

    /// The tile's path (x/mod tlog `Tile.Path`): `tile/H/L/NNN[.p/W]`, N written as 3-digit
    /// groups with an `x` before every group but the last (`x001/x234/567`).
    pub fn path(&self) -> String {
        let mut n = self.n;
        let mut groups = vec![format!("{:03}", n % 1000)];
        while n >= 1000 {
            n /= 1000;
            groups.push(format!("x{:03}", n % 1000));
        }
        groups.reverse();
        let level = match self.level {
            TileLevel::Hashes(l) => l.to_string(),
            TileLevel::Data => "data".to_string(),
        };
        let partial = if self.is_partial() {
            format!(".p/{}", self.width)
        } else {
            String::new()
        };
        format!(
            "tile/{}/{}/{}{}",
            self.height,
            level,
            groups.join("/"),
            partial
        )
    }

    /// Bytes a hash tile of this width holds.
    pub fn hash_bytes(&self) -> u64 {
        u64::from(self.width).saturating_mul(HASH_SIZE as u64)
    }

    /// First record (level 0 / data tiles) or first hash number (higher levels) it covers.
    fn first(&self) -> Option<u64> {
        self.n.checked_mul(self.full_width())
    }
}

/// Parses a tile path such as `tile/8/0/x001/x234/067.p/5` (x/mod tlog `ParseTilePath`): the
/// path must be exactly what [`Tile::path`] gives back, so `tile/3/5/123/456/078` (groups
/// without `x`) is refused, and so is N above `i64::MAX`. Level numbers above 255 are refused too (Go accepts any `int` there,
/// but levels past 63 cannot hold a hash of a 2^63-record tree).
pub fn parse_tile_path(path: &str) -> Result<Tile, TileError> {
    let bad = || TileError::BadPath(path.to_string());
    let mut f: Vec<&str> = path.split('/').collect();
    if f.len() < 4 || f.first() != Some(&"tile") {
        return Err(bad());
    }
    let height: u8 = parse_small(f.get(1).copied().ok_or_else(bad)?).ok_or_else(bad)?;
    if !(1..=MAX_TILE_HEIGHT).contains(&height) {
        return Err(bad());
    }
    let level = match f.get(2).copied() {
        Some("data") => TileLevel::Data,
        Some(l) => TileLevel::Hashes(parse_small(l).ok_or_else(bad)?),
        None => return Err(bad()),
    };
    let full = 1u64 << height;
    let mut width = full;
    let n_last = f.len() - 2;
    if let Some(dot_p) = f.get(n_last).and_then(|s| s.strip_suffix(".p")) {
        let w: u64 = f
            .last()
            .and_then(|s| parse_small::<u64>(s))
            .ok_or_else(bad)?;
        if w == 0 || w >= full {
            return Err(bad());
        }
        width = w;
        f[n_last] = dot_p;
        f.pop();
    }
    let mut n: u64 = 0;
    for s in f.get(3..).unwrap_or(&[]) {
        let digits = s.strip_prefix('x').unwrap_or(s);
        let g: u64 = parse_small(digits).ok_or_else(bad)?;
        if g >= 1000 {
            return Err(bad());
        }
        n = n
            .checked_mul(1000)
            .and_then(|n| n.checked_add(g))
            .ok_or_else(bad)?;
    }
    // Go keeps N in an int64; a larger N wraps there and fails its round-trip check.
    if n > i64::MAX as u64 {
        return Err(bad());
    }
    let t = Tile {
        height,
        level,
        n,
        width: u32::try_from(width).map_err(|_| bad())?,
    };
    if t.path() != path {
        return Err(bad());
    }
    Ok(t)
}

/// Decimal digits only (the round trip through `Tile::path` rejects signs and leading zeros
/// where Go's `strconv.Atoi` would accept them first).
fn parse_small<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Whether a level-0 hash tile or a data tile holds record `record`.
pub fn tile_covers(tile: &Tile, record: u64) -> bool {
    if !matches!(tile.level, TileLevel::Hashes(0) | TileLevel::Data) {
        return false;
    }
    match tile.first() {
        Some(first) => record >= first && record - first < u64::from(tile.width),
        None => false,
    }
}

/// The leaf hash of record `record` from a level-0 hash tile's body, when the tile holds it
/// and the body is long enough (x/mod tlog `HashFromTile` for a level-0 index).
pub fn leaf_in_tile(tile_data: &[u8], tile: &Tile, record: u64) -> Option<Hash> {
    if tile.level != TileLevel::Hashes(0) || !tile_covers(tile, record) {
        return None;
    }
    if (tile_data.len() as u64) < tile.hash_bytes() {
        return None;
    }
    let i = usize::try_from(record - tile.first()?).ok()?;
    let at = i.checked_mul(HASH_SIZE)?;
    tile_data.get(at..at + HASH_SIZE)?.try_into().ok()
}

/// Where hash `(level, n)` lives in a tiling of height `h`: the tile (with the width needed to
/// hold it) and the range of tile entries whose subtree hash it is (x/mod tlog
/// `tileForIndex`). None when the numbers overflow.
pub fn tile_for_hash(h: u8, level: u32, n: u64) -> Option<(Tile, u64, u64)> {
    if !(1..=MAX_TILE_HEIGHT).contains(&h) {
        return None;
    }
    let hh = u32::from(h);
    let tile_level = level / hh;
    let within = level - tile_level * hh; // levels inside the tile, < h
    let span = 1u64 << within; // tile entries under one hash at `level`
    let first_entry = n.checked_mul(span)?; // entry number at the tile's base level
    let tile_n = first_entry >> hh;
    let start = first_entry - (tile_n << hh);
    let end = start + span;
    let tile = Tile {
        height: h,
        level: TileLevel::Hashes(u8::try_from(tile_level).ok()?),
        n: tile_n,
        width: u32::try_from(end).ok()?,
    };
    Some((tile, start, end))
}

/// x/mod tlog `tileHash`: the root over a power-of-two run of tile entries.
fn hash_of_entries(data: &[u8]) -> Option<Hash> {
    if data.len() == HASH_SIZE {
        return data.try_into().ok();
    }
    if data.len() < 2 * HASH_SIZE || data.len() % (2 * HASH_SIZE) != 0 {
        return None;
    }
    let (l, r) = data.split_at(data.len() / 2);
    Some(node_hash(&hash_of_entries(l)?, &hash_of_entries(r)?))
}

/// Limits on tile bookkeeping; a capture may hold many tiles and a hostile server may send
/// junk, so memory and work are bounded.
#[derive(Clone, Debug)]
pub struct TileLimits {
    /// Distinct tiles kept. A lookup needs at most ~2 tiles per level (8 levels for 2^64
    /// records at H=8); 100 000 tiles (800 MB of full tiles at worst) is far beyond any capture
    /// of the go command, whose cache keeps tiles between runs.
    pub max_tiles: usize,
    /// Node hashes computed when a hash must be derived from lower tiles instead of read
    /// directly. 1 << 22 (about a second of SHA-256) lets a tree head be checked from level-0
    /// tiles alone up to ~4 million records.
    pub max_hash_ops: u64,
}

impl Default for TileLimits {
    fn default() -> Self {
        TileLimits {
            max_tiles: 100_000,
            max_hash_ops: 1 << 22,
        }
    }
}

/// Why a hash could not be computed from the tiles at hand.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// No tile (nor lower tiles) provides hash (level, n); `tile` is the one the go command
    /// would have fetched for it.
    #[error("hash at level {level} number {n} not in the captured tiles (needs {tile})")]
    Missing { level: u32, n: u64, tile: String },
    #[error("gave up after {0} node hashes (TileLimits::max_hash_ops)")]
    TooMuchWork(u64),
    #[error("record {record} is not in a tree of {size} records")]
    RecordOutOfRange { record: u64, size: u64 },
    #[error("tiles give tree hash {computed}, the signed tree head says {signed}")]
    Mismatch { computed: String, signed: String },
}

/// What [`TileSet::insert`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inserted {
    New,
    /// Wider than the copy kept so far, and agreeing with it: replaced.
    Extended,
    /// No wider than the copy kept, and agreeing with it.
    Same,
    /// Over TileLimits::max_tiles: not kept.
    Dropped,
}

/// The hash tiles seen in a capture, keyed by (height, level, number), keeping the widest copy.
#[derive(Clone, Debug, Default)]
pub struct TileSet {
    tiles: BTreeMap<(u8, u8, u64), Vec<u8>>,
    limits: TileLimits,
}

impl TileSet {
    pub fn new(limits: TileLimits) -> TileSet {
        TileSet {
            tiles: BTreeMap::new(),
            limits,
        }
    }

    pub fn len(&self) -> usize {
        self.tiles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tiles.is_empty()
    }

    /// Adds a hash tile's body. The body must be exactly W*32 bytes. A copy that disagrees with
    /// one seen before in the entries both hold is a [`TileError::Conflict`] (two different
    /// logs were served: a fork or an inconsistent mirror); the first copy is kept.
    pub fn insert(&mut self, tile: Tile, data: &[u8]) -> Result<Inserted, TileError> {
        let TileLevel::Hashes(level) = tile.level else {
            return Err(TileError::NotHashTile { path: tile.path() });
        };
        let want = tile.hash_bytes();
        if data.len() as u64 != want {
            return Err(TileError::WrongLength {
                path: tile.path(),
                have: data.len(),
                want: usize::try_from(want).unwrap_or(usize::MAX),
            });
        }
        let key = (tile.height, level, tile.n);
        if let Some(old) = self.tiles.get_mut(&key) {
            let common = old.len().min(data.len());
            if old.get(..common) != data.get(..common) {
                return Err(TileError::Conflict { path: tile.path() });
            }
            if data.len() > old.len() {
                *old = data.to_vec();
                return Ok(Inserted::Extended);
            }
            return Ok(Inserted::Same);
        }
        if self.tiles.len() >= self.limits.max_tiles {
            return Ok(Inserted::Dropped);
        }
        self.tiles.insert(key, data.to_vec());
        Ok(Inserted::New)
    }

    /// The body kept for a tile's coordinates (the widest seen), if any.
    pub fn get(&self, height: u8, level: u8, n: u64) -> Option<&[u8]> {
        self.tiles.get(&(height, level, n)).map(|v| v.as_slice())
    }

    /// Hash `(level, n)` from the tiles of height `h`: read from the tile that holds it, or
    /// else derived from the two hashes below it, down to tiles that exist.
    pub fn read_hash(&self, h: u8, level: u32, n: u64) -> Result<Hash, ProofError> {
        let mut ops = 0u64;
        self.read_hash_counted(h, level, n, &mut ops)
    }

    fn read_hash_counted(
        &self,
        h: u8,
        level: u32,
        n: u64,
        ops: &mut u64,
    ) -> Result<Hash, ProofError> {
        let missing = |tile: String| ProofError::Missing { level, n, tile };
        let Some((tile, start, end)) = tile_for_hash(h, level, n) else {
            return Err(missing(String::from("(out of range)")));
        };
        let TileLevel::Hashes(tl) = tile.level else {
            return Err(missing(tile.path()));
        };
        if let Some(data) = self.get(h, tl, tile.n) {
            let byte = |i: u64| usize::try_from(i).ok()?.checked_mul(HASH_SIZE);
            if let Some(run) = byte(start).zip(byte(end)).and_then(|(s, e)| data.get(s..e)) {
                *ops = ops.saturating_add(end - start);
                if *ops > self.limits.max_hash_ops {
                    return Err(ProofError::TooMuchWork(*ops));
                }
                return hash_of_entries(run).ok_or_else(|| missing(tile.path()));
            }
        }
        // Not stored at its own tile level: build it from the level below (which, at a tile
        // boundary, is the top row of the tile level below).
        if level == 0 {
            return Err(missing(tile.path()));
        }
        *ops = ops.saturating_add(1);
        if *ops > self.limits.max_hash_ops {
            return Err(ProofError::TooMuchWork(*ops));
        }
        let left_n = n.checked_mul(2).ok_or_else(|| missing(tile.path()))?;
        let l = self
            .read_hash_counted(h, level - 1, left_n, ops)
            .map_err(|e| match e {
                ProofError::Missing { .. } => missing(tile.path()),
                other => other,
            })?;
        let r = self
            .read_hash_counted(h, level - 1, left_n + 1, ops)
            .map_err(|e| match e {
                ProofError::Missing { .. } => missing(tile.path()),
                other => other,
            })?;
        Ok(node_hash(&l, &r))
    }

    /// Hash of records `[lo, hi)`, where `lo` is a multiple of a power of two at least
    /// `hi - lo`: the complete subtrees of that range, combined right to left (x/mod tlog
    /// `subTreeIndex` / `subTreeHash`).
    fn range_hash(&self, h: u8, lo: u64, hi: u64, ops: &mut u64) -> Result<Hash, ProofError> {
        let mut parts = Vec::new();
        let mut lo = lo;
        while lo < hi {
            let level = 63 - (hi - lo).leading_zeros(); // largest 2^level <= hi - lo
            let k = 1u64 << level;
            parts.push(self.read_hash_counted(h, level, lo >> level, ops)?);
            lo += k;
        }
        let mut it = parts.into_iter().rev();
        let Some(mut acc) = it.next() else {
            return Ok([0u8; 32]);
        };
        for left in it {
            acc = node_hash(&left, &acc);
        }
        Ok(acc)
    }

    /// The root hash of the tree of `size` records, from the tiles (x/mod tlog `TreeHash`
    /// over a `TileHashReader`). Comparing it with a signed tree head authenticates the tiles;
    /// computing an older head's size from a newer head's tiles is the go command's fork check
    /// (sumdb client.go `checkTrees`).
    pub fn tree_hash(&self, h: u8, size: u64) -> Result<Hash, ProofError> {
        let mut ops = 0;
        self.range_hash(h, 0, size, &mut ops)
    }

    /// The root hash implied by record `record` having leaf hash `leaf` in a tree of `size`
    /// records, with every other hash on its RFC 6962 audit path taken from the tiles.
    pub fn record_root(
        &self,
        h: u8,
        size: u64,
        record: u64,
        leaf: &Hash,
    ) -> Result<Hash, ProofError> {
        let mut ops = 0;
        self.node_root(h, size, 0, record, leaf, &mut ops)
    }

    /// The root hash implied by hash `(level, n)` being `node`, a complete subtree inside the
    /// tree of `size` records, with the rest of its RFC 6962 2.1.1 audit path from the tiles.
    fn node_root(
        &self,
        h: u8,
        size: u64,
        level: u32,
        n: u64,
        node: &Hash,
        ops: &mut u64,
    ) -> Result<Hash, ProofError> {
        let span = 1u64.checked_shl(level).filter(|_| level < 64);
        let first = span.and_then(|s| n.checked_mul(s));
        let (Some(span), Some(first)) = (span, first) else {
            return Err(ProofError::RecordOutOfRange { record: n, size });
        };
        if first.checked_add(span).is_none_or(|end| end > size) {
            return Err(ProofError::RecordOutOfRange {
                record: first,
                size,
            });
        }
        // Walk down from [0, size) to the node, hashing the side not taken. Every split point
        // is a multiple of a power of two >= span, so the node never straddles one.
        let mut path = Vec::new(); // (sibling hash, sibling is on the left)
        let (mut lo, mut hi) = (0u64, size);
        while hi - lo > span {
            let k = split_point(hi - lo);
            if first < lo + k {
                path.push((self.range_hash(h, lo + k, hi, ops)?, false));
                hi = lo + k;
            } else {
                path.push((self.range_hash(h, lo, lo + k, ops)?, true));
                lo += k;
            }
        }
        let mut acc = *node;
        for (sibling, sibling_left) in path.into_iter().rev() {
            acc = if sibling_left {
                node_hash(&sibling, &acc)
            } else {
                node_hash(&acc, &sibling)
            };
        }
        Ok(acc)
    }

    /// Checks a hash tile's entries against the signed `tree` (what x/mod tlog's
    /// `TileHashReader` does before trusting a tile): the entries inside the tree are cut into
    /// complete subtrees and each one's audit path, from the other tiles, must lead to the
    /// signed root. Entries beyond the tree's size are not judged. A tile whose coordinates
    /// are not in the set is checked against `data`.
    pub fn check_tile(&self, tree: &Tree, tile: &Tile, data: &[u8]) -> Result<(), ProofError> {
        let h = tile.height;
        let TileLevel::Hashes(tl) = tile.level else {
            return Err(ProofError::Missing {
                level: 0,
                n: tile.n,
                tile: tile.path(),
            });
        };
        let base = u32::from(tl) * u32::from(h);
        let row_len = if base >= 64 { 0 } else { tree.size >> base }; // hashes in the row
        let first = tile.n.saturating_mul(tile.full_width());
        let width = u64::from(tile.width)
            .min(row_len.saturating_sub(first))
            .min(data.len() as u64 / HASH_SIZE as u64);
        let mut ops = 0;
        let mut s = 0u64;
        while s < width {
            // Largest aligned power-of-two run starting at s and ending by width.
            let align = if s == 0 { 63 } else { s.trailing_zeros() };
            let fit = 63 - (width - s).leading_zeros();
            let j = align.min(fit);
            let run_len = 1u64 << j;
            let bytes = data
                .get((s as usize) * HASH_SIZE..((s + run_len) as usize) * HASH_SIZE)
                .unwrap_or(&[]);
            let node = hash_of_entries(bytes).ok_or_else(|| ProofError::Missing {
                level: base + j,
                n: (first + s) >> j,
                tile: tile.path(),
            })?;
            let root = self.node_root(h, tree.size, base + j, (first + s) >> j, &node, &mut ops)?;
            if root != tree.hash {
                return Err(ProofError::Mismatch {
                    computed: b64(&root),
                    signed: b64(&tree.hash),
                });
            }
            s += run_len;
        }
        Ok(())
    }

    /// Checks that `record_text` is record number `record` of the signed `tree`, using the
    /// tiles (what the go command's sumdb client does before trusting a lookup, client.go
    /// `checkRecord`).
    pub fn check_record(
        &self,
        h: u8,
        tree: &Tree,
        record: u64,
        record_text: &[u8],
    ) -> Result<(), ProofError> {
        let got = self.record_root(h, tree.size, record, &record_hash(record_text))?;
        if got == tree.hash {
            Ok(())
        } else {
            Err(ProofError::Mismatch {
                computed: b64(&got),
                signed: b64(&tree.hash),
            })
        }
    }

    /// Checks the signed `tree` against the tiles: the root the tiles give must be its hash.
    pub fn check_tree(&self, h: u8, tree: &Tree) -> Result<(), ProofError> {
        let got = self.tree_hash(h, tree.size)?;
        if got == tree.hash {
            Ok(())
        } else {
            Err(ProofError::Mismatch {
                computed: b64(&got),
                signed: b64(&tree.hash),
            })
        }
    }
}

fn b64(h: &Hash) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(h)
}

#[cfg(test)]
#[path = "tlog_tests.rs"]
mod tests;
