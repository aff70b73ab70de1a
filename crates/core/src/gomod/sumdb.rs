//! Checksum-database response bodies (golang.org/x/mod/sumdb client.go, tlog note.go) and
//! go.sum files.
//!
//! - `/lookup/<mod>@<ver>`: `<record id>\n<record text>\n<signed tree note>`, where the record
//!   text is the go.sum lines up to the first blank line. Only that text is the record: the
//!   go command before the 2026 fix took every line of the whole body that began with
//!   `<mod> <ver>`, note included.
//! - `/latest` (not asked by the go command) and the tree note of a lookup: a signed note whose
//!   text is `go.sum database tree\n<N>\n<base64 hash>\n`.
//! - `/tile/H/L/N[.p/W]`: W*32 bytes of hashes.
//! - `<proxy>/sumdb/<name>/supported`: only the status matters.

use crate::gomod::note::{self, NoteError, NoteLimits, OpenedNote, TreeError, Verifier};
use crate::gomod::tlog::{self, Hash, Tile, TileError, TileLevel, Tree, HASH_SIZE};

/// One go.sum line: `<module> <version>[/go.mod] <hash>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoSumLine {
    pub module: String,
    /// Without the `/go.mod` suffix.
    pub version: String,
    /// The line is for the `.mod` file (`<version>/go.mod`), not the zip.
    pub go_mod: bool,
    /// `h1:...` (or another algorithm's hash, kept as written).
    pub hash: String,
}

impl GoSumLine {
    /// Splits a line into its three fields as the go command does (`strings.Fields`: any
    /// Unicode white space). None unless there are exactly three.
    pub fn parse(line: &str) -> Option<GoSumLine> {
        let mut f = line.split(char::is_whitespace).filter(|s| !s.is_empty());
        let (module, version, hash) = (f.next()?, f.next()?, f.next()?);
        if f.next().is_some() {
            return None;
        }
        let (version, go_mod) = match version.strip_suffix("/go.mod") {
            Some(v) => (v, true),
            None => (version, false),
        };
        Some(GoSumLine {
            module: module.to_string(),
            version: version.to_string(),
            go_mod,
            hash: hash.to_string(),
        })
    }

    /// The version field as written: `v1.2.3` or `v1.2.3/go.mod`.
    pub fn version_field(&self) -> String {
        if self.go_mod {
            format!("{}/go.mod", self.version)
        } else {
            self.version.clone()
        }
    }
}

impl std::fmt::Display for GoSumLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.module, self.version_field(), self.hash)
    }
}

/// Why a lookup body was refused (x/mod tlog `ParseRecord`: "malformed record data").
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed record data: {0}")]
pub struct LookupError(pub &'static str);

/// A parsed `/lookup` response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lookup {
    /// The record's number in the log (Go's ParseInt: may be negative, which no tree holds).
    pub record_id: i64,
    /// The record text: everything after the id line up to and including the newline before
    /// the first blank line. Its RFC 6962 leaf hash is what the tiles must hold.
    pub record_text: String,
    /// The record's lines that have three fields.
    pub lines: Vec<GoSumLine>,
    /// Record lines without exactly three fields.
    pub malformed_lines: usize,
    /// What followed the blank line: the signed tree note.
    pub tree_note: Vec<u8>,
}

impl Lookup {
    /// The hash the record gives for `module version` (zip) or `module version/go.mod`.
    pub fn hash_for(&self, module: &str, version: &str, go_mod: bool) -> Option<&str> {
        self.lines
            .iter()
            .find(|l| l.module == module && l.version == version && l.go_mod == go_mod)
            .map(|l| l.hash.as_str())
    }

    /// The record's leaf hash (RFC 6962), to check against a level-0 tile.
    pub fn leaf_hash(&self) -> Hash {
        tlog::record_hash(self.record_text.as_bytes())
    }
}

/// Parses a `/lookup` body as x/mod tlog `ParseRecord`: a decimal id line, then the record
/// text up to the first blank line (valid UTF-8, no control character but newline), then the
/// rest (the tree note).
pub fn parse_lookup(body: &[u8]) -> Result<Lookup, LookupError> {
    let nl = body
        .iter()
        .position(|&b| b == b'\n')
        .ok_or(LookupError("no id line"))?;
    let id_text = std::str::from_utf8(body.get(..nl).unwrap_or(&[]))
        .map_err(|_| LookupError("record id is not a number"))?;
    let record_id =
        note::go_parse_int64(id_text).ok_or(LookupError("record id is not a number"))?;
    let rest = body.get(nl + 1..).unwrap_or(&[]);
    let blank = rest
        .windows(2)
        .position(|w| w == b"\n\n")
        .ok_or(LookupError("no blank line after the record"))?;
    let text = rest.get(..blank + 1).unwrap_or(&[]);
    let tree_note = rest.get(blank + 2..).unwrap_or(&[]).to_vec();
    // isValidRecordText: UTF-8, no control characters but '\n', ends in '\n' (and no blank
    // line, which the first-blank-line split already ensures).
    let record_text =
        std::str::from_utf8(text).map_err(|_| LookupError("record text is not UTF-8"))?;
    if record_text.bytes().any(|b| b < 0x20 && b != b'\n') {
        return Err(LookupError("control character in record text"));
    }
    let mut lines = Vec::new();
    let mut malformed_lines = 0;
    for line in record_text.split_terminator('\n') {
        match GoSumLine::parse(line) {
            Some(l) => lines.push(l),
            None => malformed_lines += 1,
        }
    }
    Ok(Lookup {
        record_id,
        record_text: record_text.to_string(),
        lines,
        malformed_lines,
        tree_note,
    })
}

/// Lines after the record text (in the tree note) that the go command before the 2026 fix
/// would have taken as go.sum lines for `module version`: it matched the prefix
/// `<module> <version>` on every line of the whole body. Any such line is an attack on old
/// clients (or a server bug).
pub fn lines_outside_record(body: &[u8], module: &str, version: &str) -> Vec<String> {
    let Ok(l) = parse_lookup(body) else {
        return Vec::new();
    };
    let prefix = format!("{module} {version}");
    String::from_utf8_lossy(&l.tree_note)
        .split('\n')
        .filter(|line| line.starts_with(&prefix))
        .map(str::to_string)
        .collect()
}

/// A signed tree head: the note with each signature judged, and the tree its text names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeHead {
    pub note: OpenedNote,
    pub tree: Tree,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TreeHeadError {
    #[error(transparent)]
    Note(#[from] NoteError),
    #[error(transparent)]
    Tree(#[from] TreeError),
}

/// Opens a signed tree note (a lookup's `tree_note` or a `/latest` body) and parses its tree,
/// whatever the signatures' verdict (a fork shows in unverified heads too; trust needs
/// `head.note.verdict()` to be `Verified`).
pub fn open_tree_head(
    msg: &[u8],
    verifiers: &[Verifier],
    limits: &NoteLimits,
) -> Result<TreeHead, TreeHeadError> {
    let note = note::open(msg, verifiers, limits)?;
    let tree = note::parse_tree(&note.note.text)?;
    Ok(TreeHead { note, tree })
}

/// What the go command does after `GET <proxy>/sumdb/<name>/supported` (modfetch sumdb.go,
/// design 25530 "proxying a checksum database").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SupportedAnswer {
    /// 200: all checksum-database requests go through this proxy, never directly.
    ProxiesSumdb,
    /// 404 or 410: ask the next proxy, or the database directly after the last one.
    TryNext,
    /// Anything else: the database is treated as unavailable.
    Unavailable,
}

pub fn supported_answer(status: u16) -> SupportedAnswer {
    match status {
        200 => SupportedAnswer::ProxiesSumdb,
        404 | 410 => SupportedAnswer::TryNext,
        _ => SupportedAnswer::Unavailable,
    }
}

/// Parses a tile request path (anything before `tile/` is the database base) and checks the
/// response body's length: W*32 bytes for a hash tile. A full tile answering a partial
/// request is cut to the partial width, as the go command's client does when a partial tile
/// is gone (sumdb client.go `readTile`).
pub fn tile_response<'a>(path: &str, body: &'a [u8]) -> Result<(Tile, &'a [u8]), TileError> {
    let at = path
        .rfind("tile/")
        .ok_or_else(|| TileError::BadPath(path.to_string()))?;
    let tile = tlog::parse_tile_path(path.get(at..).unwrap_or(""))?;
    if tile.level == TileLevel::Data {
        return Ok((tile, body));
    }
    let want = tile.hash_bytes();
    if body.len() as u64 == want {
        return Ok((tile, body));
    }
    Err(TileError::WrongLength {
        path: tile.path(),
        have: body.len(),
        want: usize::try_from(want).unwrap_or(usize::MAX),
    })
}

/// The first `width` hashes of a full tile's body (client.go: `data[:len(data)/full.W*tile.W]`).
pub fn cut_full_tile(full_body: &[u8], full_width: u64, width: u32) -> Option<&[u8]> {
    let per = (full_body.len() as u64).checked_div(full_width)?;
    if per != HASH_SIZE as u64 {
        return None;
    }
    full_body.get(..usize::try_from(per * u64::from(width)).ok()?)
}

/// Limits on a go.sum file given with `--go-sum`.
#[derive(Clone, Debug)]
pub struct GoSumLimits {
    /// Lines kept. Big monorepos have tens of thousands; four million bounds memory on a
    /// wrong file (a capture given by mistake).
    pub max_lines: usize,
}

impl Default for GoSumLimits {
    fn default() -> Self {
        GoSumLimits {
            max_lines: 4_000_000,
        }
    }
}

/// A parsed go.sum or go.work.sum.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GoSum {
    pub lines: Vec<GoSumLine>,
    /// 1-based line numbers of lines without exactly three fields (the go command stops with
    /// "malformed go.sum ... wrong number of fields").
    pub malformed: Vec<usize>,
    /// Lines holding the old empty-go.mod hash, which the go command drops.
    pub dropped_empty_go_mod: usize,
    /// Lines (or malformed-line numbers) not kept because of `GoSumLimits::max_lines`.
    pub truncated: usize,
}

impl GoSum {
    /// The hashes recorded for `module version` (zip) or its go.mod.
    pub fn hashes_for<'a>(
        &'a self,
        module: &'a str,
        version: &'a str,
        go_mod: bool,
    ) -> impl Iterator<Item = &'a str> + 'a {
        self.lines
            .iter()
            .filter(move |l| l.module == module && l.version == version && l.go_mod == go_mod)
            .map(|l| l.hash.as_str())
    }

    pub fn contains(&self, module: &str, version: &str, go_mod: bool) -> bool {
        self.hashes_for(module, version, go_mod).next().is_some()
    }
}

/// Parses go.sum / go.work.sum content as modfetch `readGoSum`: lines split at `\n`, blank
/// lines skipped, three fields each, the empty-go.mod hash dropped.
pub fn parse_go_sum(data: &[u8], limits: &GoSumLimits) -> GoSum {
    let mut out = GoSum::default();
    for (i, raw) in data.split(|&b| b == b'\n').enumerate() {
        let line = String::from_utf8_lossy(raw);
        if line.split(char::is_whitespace).all(str::is_empty) {
            continue;
        }
        match GoSumLine::parse(&line) {
            Some(l) if l.hash == crate::gomod::h1::EMPTY_GO_MOD_H1 => out.dropped_empty_go_mod += 1,
            Some(l) => {
                if out.lines.len() >= limits.max_lines {
                    out.truncated += 1;
                } else {
                    out.lines.push(l);
                }
            }
            None if out.malformed.len() < limits.max_lines => out.malformed.push(i + 1),
            None => out.truncated += 1,
        }
    }
    out
}

#[cfg(test)]
#[path = "sumdb_tests.rs"]
mod tests;
