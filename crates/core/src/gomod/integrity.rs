//! The chain of trust, recomputed from the wire: h1 hashes of downloaded zips and .mod files,
//! checksum-database records and signed tree heads, tiles, go.sum files, and the same file
//! from several servers. Bodies in, hashes and integrity events out; pure apart from reading
//! the body it is handed.

use super::classify::Op;
use super::h1::{hash_zip, mod_h1, H1Limits};
use super::note::{NoteLimits, Verdict, Verifier};
use super::sumdb::{open_tree_head, parse_lookup, tile_response, GoSumLine};
use super::tlog::{leaf_in_tile, tile_covers, Hash, Tile, TileLevel};
use super::Exchange;
use sha2::{Digest as _, Sha256};
use std::collections::{HashMap, VecDeque};
use std::io::{Read, Seek, SeekFrom};

/// Level-0 tiles kept to check later lookups against (each at most 8 KiB).
const MAX_TILES: usize = 256;
/// Lookup records kept to check later tiles against.
const MAX_RECORDS: usize = 65_536;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IntegrityEvent {
    /// A download's h1 differs from what another source says.
    ChecksumMismatch {
        module: String,
        version: String,
        go_mod: bool,
        downloaded: String,
        downloaded_from: String,
        expected: String,
        expected_from: String,
        exchanges: Vec<u64>,
    },
    /// Two servers answered different bytes for the same file.
    MirrorInconsistency {
        module: String,
        version: Option<String>,
        op: Op,
        a: String,
        b: String,
        exchanges: Vec<u64>,
    },
    SignatureInvalid {
        name: String,
        key_hash: u32,
        base: String,
        exchange: u64,
    },
    UnknownKey {
        names: Vec<String>,
        base: String,
        exchange: u64,
    },
    /// Two signed tree heads of one size with different hashes.
    Fork {
        name: String,
        size: u64,
        exchanges: Vec<u64>,
    },
    /// A record absent from the tile that covers it.
    ProofMismatch {
        module: String,
        version: String,
        record_id: u64,
        exchanges: Vec<u64>,
    },
}

/// (module, version, is go.mod): what a go.sum line is about.
type FileKey = (String, String, bool);
/// (h1, server base, exchange id).
type Download = (String, String, u64);

struct Expectation {
    h1: String,
    from: String,
    exchange: Option<u64>,
}

struct Record {
    base: String,
    id: u64,
    leaf: Hash,
    module: String,
    version: String,
    exchange: u64,
}

/// Body hashes of one file (module@version op) per server, for mirror-inconsistency.
struct Served {
    sha256: String,
    base: String,
    exchange: u64,
}

/// A module file's hashes ([`Integrity::digest`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Digest {
    /// A zip's h1; `None` when it could not be hashed (not a zip, over a limit).
    Zip(Option<String>),
    /// Any other module file: the SHA-256 of its bytes (`None` when unreadable) and, for a
    /// .mod file, its h1 (`None` otherwise).
    File {
        sha256: Option<String>,
        mod_h1: Option<String>,
    },
}

pub struct Integrity {
    verifiers: Vec<Verifier>,
    /// (module, version, is go.mod) -> what the sumdb or a go.sum file says.
    expected: HashMap<FileKey, Vec<Expectation>>,
    /// (module, version, is go.mod) -> each download's (h1, server base, exchange).
    downloads: HashMap<FileKey, Vec<Download>>,
    served: HashMap<(String, Option<String>, Op), Vec<Served>>,
    /// (sumdb name, tree size) -> (root hash, exchange).
    heads: HashMap<(String, u64), (Hash, u64)>,
    records: VecDeque<Record>,
    tiles: VecDeque<(String, Tile, Vec<u8>, u64)>,
    /// Module@versions a go.sum file holds.
    go_sum: std::collections::HashSet<(String, String)>,
    /// Checks already reported, so one mismatch is one event.
    reported: std::collections::HashSet<String>,
    h1_limits: H1Limits,
    note_limits: NoteLimits,
    /// Hash module zips (inflate every file and SHA-256 it). On by default; off trades the
    /// zip checks for speed on zip-heavy captures.
    pub hash_zips: bool,
}

/// Where a body's bytes are: whole in memory, or the parser's head followed by a spill file.
pub trait BodySource: Read + Seek {}
impl<T: Read + Seek> BodySource for T {}

impl Integrity {
    /// `verifiers`: checksum-database keys (Go's built-in one plus those given);
    /// `go_sum`: lines from go.sum files, with the file they came from.
    pub fn new(verifiers: Vec<Verifier>, go_sum: Vec<(GoSumLine, String)>) -> Integrity {
        let mut i = Integrity {
            verifiers,
            expected: HashMap::new(),
            downloads: HashMap::new(),
            served: HashMap::new(),
            heads: HashMap::new(),
            records: VecDeque::new(),
            tiles: VecDeque::new(),
            go_sum: Default::default(),
            reported: Default::default(),
            h1_limits: H1Limits::default(),
            note_limits: NoteLimits::default(),
            hash_zips: true,
        };
        for (l, file) in go_sum {
            i.go_sum.insert((l.module.clone(), l.version.clone()));
            i.expected
                .entry((l.module, l.version, l.go_mod))
                .or_default()
                .push(Expectation {
                    h1: l.hash,
                    from: format!("go.sum file {file}"),
                    exchange: None,
                });
        }
        i
    }

    /// A verifier key for this checksum-database name was given.
    fn knows(&self, name: &str) -> bool {
        self.verifiers.iter().any(|v| v.name == name)
    }

    /// A go.sum file given holds this module@version.
    pub fn in_go_sum(&self, module: &str, version: &str) -> bool {
        self.go_sum
            .contains(&(module.to_string(), version.to_string()))
    }

    /// Hashes what `ex` carried (when it was answered 200 and received whole) and checks it
    /// against everything seen so far. Sets `ex.h1` for zips and .mod files. The same as
    /// [`Integrity::digest`] followed by [`Integrity::on_digested`].
    pub fn on_exchange(
        &mut self,
        ex: &mut Exchange,
        body: Option<&mut dyn BodySource>,
        out: &mut Vec<IntegrityEvent>,
    ) {
        let Some(body) = body else { return };
        let digest = self
            .wants_digest(ex)
            .then(|| Self::digest(ex.op, &mut *body, &self.h1_limits));
        self.on_digested(ex, digest, Some(body), out);
    }

    /// Whether `ex`'s body is a module file to hash: the slow part of the checks, which
    /// [`Integrity::digest`] does apart from them (on another thread when there is one).
    pub fn wants_digest(&self, ex: &Exchange) -> bool {
        ex.status == Some(200)
            && ex.complete
            && ex.module.is_some()
            && match ex.op {
                Op::Zip | Op::Toolchain => self.hash_zips,
                Op::Mod | Op::Info | Op::List | Op::Latest => true,
                _ => false,
            }
    }

    /// The limits [`Integrity::digest`] hashes zips within.
    pub fn h1_limits(&self) -> &H1Limits {
        &self.h1_limits
    }

    /// Hashes a module file's body: a zip's h1, else the SHA-256 of the bytes and, for a
    /// .mod file, its h1. Pure: the body in, the digest out.
    pub fn digest(op: Op, body: &mut dyn BodySource, limits: &H1Limits) -> Digest {
        if matches!(op, Op::Zip | Op::Toolchain) {
            if body.seek(SeekFrom::Start(0)).is_err() {
                return Digest::Zip(None);
            }
            return Digest::Zip(hash_zip(&mut *body, limits).ok().map(|z| z.h1));
        }
        let sha256 = sha256_of(body);
        let mod_h1 = (op == Op::Mod && sha256.is_some())
            .then(|| {
                let mut v = Vec::new();
                (body.seek(SeekFrom::Start(0)).is_ok()
                    && body.take(16 << 20).read_to_end(&mut v).is_ok())
                .then(|| mod_h1(&v))
            })
            .flatten();
        Digest::File { sha256, mod_h1 }
    }

    /// The checks of `ex` once its module file is hashed (`digest`: `None` when it is not a
    /// module file to hash, see [`Integrity::wants_digest`]). Checksum-database lookups and
    /// tiles are read from `body` here: they are small, and the checks need their order.
    pub fn on_digested(
        &mut self,
        ex: &mut Exchange,
        digest: Option<Digest>,
        body: Option<&mut dyn BodySource>,
        out: &mut Vec<IntegrityEvent>,
    ) {
        if ex.status != Some(200) || !ex.complete {
            return;
        }
        if let Some(d) = digest {
            self.on_module_file(ex, d, out);
            return;
        }
        let Some(body) = body else { return };
        match ex.op {
            Op::Lookup => self.on_lookup(ex, body, out),
            Op::Tile => self.on_tile(ex, body, out),
            _ => {}
        }
    }

    fn on_module_file(&mut self, ex: &mut Exchange, digest: Digest, out: &mut Vec<IntegrityEvent>) {
        let Some(module) = ex.module.clone() else {
            return;
        };
        // A zip is compared by its h1 (what the go command trusts: two zips that differ only
        // in compression are the same module), every other file by its bytes.
        let (sha, mod_h1) = match digest {
            Digest::Zip(Some(h1)) => (h1, None),
            Digest::File {
                sha256: Some(sha),
                mod_h1,
            } => {
                ex.sha256 = Some(sha.clone());
                (sha, mod_h1)
            }
            Digest::Zip(None) | Digest::File { sha256: None, .. } => return,
        };
        // The same file from two servers must be the same bytes (a proxy serves what the
        // origin published; .info and list may legitimately differ only in what a mirror adds).
        let key = (module.clone(), ex.version.clone(), ex.op);
        let served = self.served.entry(key).or_default();
        if let Some(other) = served.iter().find(|s| s.base != ex.base && s.sha256 != sha) {
            let id = format!("mi|{module}|{:?}|{}", ex.version, ex.op);
            if self.reported.insert(id) {
                out.push(IntegrityEvent::MirrorInconsistency {
                    module: module.clone(),
                    version: ex.version.clone(),
                    op: ex.op,
                    a: format!("{} ({})", other.base, short(&other.sha256)),
                    b: format!("{} ({})", ex.base, short(&sha)),
                    exchanges: vec![other.exchange, ex.id],
                });
            }
        }
        if !served.iter().any(|s| s.base == ex.base && s.sha256 == sha) {
            served.push(Served {
                sha256: sha.clone(),
                base: ex.base.clone(),
                exchange: ex.id,
            });
        }
        let Some(version) = ex.version.clone() else {
            return;
        };
        let (h1, go_mod) = match ex.op {
            Op::Zip | Op::Toolchain => (sha.clone(), false),
            Op::Mod => match mod_h1 {
                Some(h) => (h, true),
                None => return,
            },
            _ => return,
        };
        ex.h1 = Some(h1.clone());
        let k = (module.clone(), version.clone(), go_mod);
        // Against the sumdb and go.sum files.
        if let Some(exps) = self.expected.get(&k) {
            if let Some(e) = exps.iter().find(|e| e.h1 != h1) {
                let mut exchanges = vec![ex.id];
                exchanges.extend(e.exchange);
                let ev = IntegrityEvent::ChecksumMismatch {
                    module: module.clone(),
                    version: version.clone(),
                    go_mod,
                    downloaded: h1.clone(),
                    downloaded_from: ex.base.clone(),
                    expected: e.h1.clone(),
                    expected_from: e.from.clone(),
                    exchanges,
                };
                self.report_mismatch(&k, ev, out);
            }
        }
        // Against the same file from another server.
        let downloads = self.downloads.entry(k.clone()).or_default();
        if let Some((other, base, exchange)) = downloads
            .iter()
            .find(|(o, b, _)| *o != h1 && *b != ex.base)
            .cloned()
        {
            let ev = IntegrityEvent::ChecksumMismatch {
                module,
                version,
                go_mod,
                downloaded: h1.clone(),
                downloaded_from: ex.base.clone(),
                expected: other,
                expected_from: base,
                exchanges: vec![exchange, ex.id],
            };
            self.report_mismatch(&k, ev, out);
        }
        let downloads = self.downloads.entry(k).or_default();
        if !downloads.iter().any(|(o, b, _)| *o == h1 && *b == ex.base) {
            downloads.push((h1, ex.base.clone(), ex.id));
        }
    }

    fn report_mismatch(&mut self, k: &FileKey, ev: IntegrityEvent, out: &mut Vec<IntegrityEvent>) {
        if self.reported.insert(format!("cm|{}|{}|{}", k.0, k.1, k.2)) {
            out.push(ev);
        }
    }

    fn on_lookup(
        &mut self,
        ex: &mut Exchange,
        body: &mut dyn BodySource,
        out: &mut Vec<IntegrityEvent>,
    ) {
        let Some(bytes) = read_small(body, 1 << 20) else {
            return;
        };
        let Ok(lookup) = parse_lookup(&bytes) else {
            return;
        };
        let head = open_tree_head(&lookup.tree_note, &self.verifiers, &self.note_limits).ok();
        // The database's name is the one its note is signed under (what the go command
        // prints in its SECURITY ERROR); else the proxy path's or the host's.
        let name = head
            .as_ref()
            .and_then(|h| h.note.note.signatures.first())
            .map(|s| s.name.clone())
            .unwrap_or_else(|| sumdb_name(ex));
        let mut trusted = false;
        if let Some(h) = &head {
            match h.note.verdict() {
                Verdict::Verified { .. } => trusted = true,
                Verdict::SignatureInvalid { name, key_hash } => {
                    if self
                        .reported
                        .insert(format!("sig|{name}|{key_hash}|{}", ex.id))
                    {
                        out.push(IntegrityEvent::SignatureInvalid {
                            name,
                            key_hash,
                            base: ex.base.clone(),
                            exchange: ex.id,
                        });
                    }
                }
                // Signed under a name modtrace has a key for, but not by that key: the note
                // does not verify for the known key of its name (a key swap is a forgery as
                // far as the client is concerned).
                Verdict::UnknownKey { keys } if keys.iter().any(|(n, _)| self.knows(n)) => {
                    let (name, key_hash) = keys
                        .iter()
                        .find(|(n, _)| self.knows(n))
                        .cloned()
                        .unwrap_or_default();
                    if self
                        .reported
                        .insert(format!("sig|{name}|{key_hash}|{}", ex.base))
                    {
                        out.push(IntegrityEvent::SignatureInvalid {
                            name,
                            key_hash,
                            base: ex.base.clone(),
                            exchange: ex.id,
                        });
                    }
                }
                Verdict::UnknownKey { keys } => {
                    let names: Vec<String> =
                        keys.iter().map(|(n, h)| format!("{n}+{h:08x}")).collect();
                    if self
                        .reported
                        .insert(format!("unk|{}|{}", ex.base, names.join(",")))
                    {
                        out.push(IntegrityEvent::UnknownKey {
                            names,
                            base: ex.base.clone(),
                            exchange: ex.id,
                        });
                    }
                }
            }
            self.on_tree_head(&name, h.tree.size, h.tree.hash, ex.id, out);
        }
        // The record's h1 values are what the go command trusts when the note verifies. When
        // it cannot be verified (no key given) the disagreement between record and download
        // is still reported, saying the record itself is unverified.
        {
            let unverified = if trusted { "" } else { ", note NOT verified" };
            for l in &lookup.lines {
                let k = (l.module.clone(), l.version.clone(), l.go_mod);
                let from = format!(
                    "{name} (checksum database lookup, exchange {}{unverified})",
                    ex.id
                );
                let entry = self.expected.entry(k.clone()).or_default();
                if !entry.iter().any(|e| e.h1 == l.hash) {
                    entry.push(Expectation {
                        h1: l.hash.clone(),
                        from: from.clone(),
                        exchange: Some(ex.id),
                    });
                }
                // A download seen before the lookup is checked now.
                if let Some((h1, base, dex)) = self
                    .downloads
                    .get(&k)
                    .and_then(|d| d.iter().find(|(h, _, _)| *h != l.hash))
                    .cloned()
                {
                    let ev = IntegrityEvent::ChecksumMismatch {
                        module: l.module.clone(),
                        version: l.version.clone(),
                        go_mod: l.go_mod,
                        downloaded: h1,
                        downloaded_from: base,
                        expected: l.hash.clone(),
                        expected_from: from,
                        exchanges: vec![dex, ex.id],
                    };
                    self.report_mismatch(&k, ev, out);
                }
            }
        }
        let (Some(m), Some(v)) = (ex.module.clone(), ex.version.clone()) else {
            return;
        };
        let Ok(id) = u64::try_from(lookup.record_id) else {
            return;
        };
        let rec = Record {
            base: ex.base.clone(),
            id,
            leaf: lookup.leaf_hash(),
            module: m,
            version: v,
            exchange: ex.id,
        };
        for (base, tile, data, tex) in &self.tiles {
            if *base == rec.base && tile_covers(tile, id) {
                if let Some(leaf) = leaf_in_tile(data, tile, id) {
                    if leaf != rec.leaf {
                        out.push(IntegrityEvent::ProofMismatch {
                            module: rec.module.clone(),
                            version: rec.version.clone(),
                            record_id: id,
                            exchanges: vec![*tex, ex.id],
                        });
                    }
                }
            }
        }
        self.records.push_back(rec);
        if self.records.len() > MAX_RECORDS {
            self.records.pop_front();
        }
    }

    fn on_tree_head(
        &mut self,
        name: &str,
        size: u64,
        hash: Hash,
        exchange: u64,
        out: &mut Vec<IntegrityEvent>,
    ) {
        match self.heads.get(&(name.to_string(), size)) {
            Some((h, other)) if *h != hash => {
                if self.reported.insert(format!("fork|{name}|{size}")) {
                    out.push(IntegrityEvent::Fork {
                        name: name.to_string(),
                        size,
                        exchanges: vec![*other, exchange],
                    });
                }
            }
            Some(_) => {}
            None => {
                self.heads
                    .insert((name.to_string(), size), (hash, exchange));
            }
        }
    }

    fn on_tile(
        &mut self,
        ex: &mut Exchange,
        body: &mut dyn BodySource,
        out: &mut Vec<IntegrityEvent>,
    ) {
        let Some(bytes) = read_small(body, 1 << 20) else {
            return;
        };
        let path = super::path::split_url(&ex.url)
            .map(|u| u.path.to_string())
            .unwrap_or_default();
        let Ok((tile, data)) = tile_response(&path, &bytes) else {
            return;
        };
        if tile.level != TileLevel::Hashes(0) {
            return;
        }
        for r in &self.records {
            if r.base == ex.base && tile_covers(&tile, r.id) {
                if let Some(leaf) = leaf_in_tile(data, &tile, r.id) {
                    if leaf != r.leaf && self.reported.insert(format!("proof|{}|{}", r.id, ex.id)) {
                        out.push(IntegrityEvent::ProofMismatch {
                            module: r.module.clone(),
                            version: r.version.clone(),
                            record_id: r.id,
                            exchanges: vec![r.exchange, ex.id],
                        });
                    }
                }
            }
        }
        self.tiles
            .push_back((ex.base.clone(), tile, data.to_vec(), ex.id));
        if self.tiles.len() > MAX_TILES {
            self.tiles.pop_front();
        }
    }
}

/// The checksum database's name: from a proxy's `/sumdb/<name>` path, else the host.
fn sumdb_name(ex: &Exchange) -> String {
    if let Some(i) = ex.base.rfind("/sumdb/") {
        return ex.base[i + "/sumdb/".len()..].to_string();
    }
    super::path::split_url(&ex.base)
        .map(|u| super::goenv::host_only(u.authority))
        .unwrap_or_else(|| ex.base.clone())
}

fn short(hash: &str) -> String {
    // `h1:...` whole, a SHA-256 cut to 16 hex digits.
    if hash.starts_with("h1:") {
        hash.to_string()
    } else {
        format!("sha256 {}", hash.get(..16).unwrap_or(hash))
    }
}

fn sha256_of(body: &mut dyn BodySource) -> Option<String> {
    body.seek(SeekFrom::Start(0)).ok()?;
    let mut h = Sha256::new();
    let mut buf = [0u8; 64 << 10];
    loop {
        let n = body.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Some(hex::encode(h.finalize()))
}

fn read_small(body: &mut dyn BodySource, max: u64) -> Option<Vec<u8>> {
    body.seek(SeekFrom::Start(0)).ok()?;
    let mut v = Vec::new();
    body.take(max).read_to_end(&mut v).ok()?;
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gomod::classify;
    use crate::gomod::journey::tests::ex;
    use crate::gomod::note::base64_encode;
    use crate::gomod::tlog::record_hash;
    use ed25519_dalek::{Signer, SigningKey};
    use std::io::Cursor;

    const SEED: [u8; 32] = [9; 32];

    fn verifier() -> Verifier {
        Verifier::from_ed25519(
            "sum.test",
            SigningKey::from_bytes(&SEED).verifying_key().to_bytes(),
        )
        .unwrap()
    }

    fn tree_note(size: u64, hash: &Hash) -> String {
        let text = format!("go.sum database tree\n{size}\n{}\n", base64_encode(hash));
        let sig = SigningKey::from_bytes(&SEED).sign(text.as_bytes());
        let mut raw = verifier().key_hash.to_be_bytes().to_vec();
        raw.extend_from_slice(&sig.to_bytes());
        format!("{text}\n— sum.test {}\n", base64_encode(&raw))
    }

    fn lookup_exchange(id: u64, module: &str, version: &str) -> Exchange {
        let mut e = ex(
            id,
            "10.0.0.1:1",
            "10.0.0.3:80",
            &format!("http://sum.test/lookup/{module}@{version}"),
            200,
            id as i64,
            id as i64,
        );
        e.complete = true;
        e
    }

    fn feed(i: &mut Integrity, e: &mut Exchange, body: &[u8]) -> Vec<IntegrityEvent> {
        let mut out = Vec::new();
        let mut c = Cursor::new(body.to_vec());
        i.on_exchange(e, Some(&mut c), &mut out);
        out
    }

    #[test]
    fn record_h1_versus_downloaded_mod() {
        let mut i = Integrity::new(vec![verifier()], Vec::new());
        let record = "example.test/x v1.0.0 h1:AAAA\nexample.test/x v1.0.0/go.mod h1:BBBB\n";
        let body = format!("5\n{record}\n{}", tree_note(6, &[1; 32]));
        let mut l = lookup_exchange(1, "example.test/x", "v1.0.0");
        assert!(feed(&mut i, &mut l, body.as_bytes()).is_empty());
        let mut m = ex(
            2,
            "10.0.0.1:2",
            "10.0.0.2:80",
            "http://proxy.test/example.test/x/@v/v1.0.0.mod",
            200,
            3,
            4,
        );
        let out = feed(&mut i, &mut m, b"module example.test/x\n");
        assert_eq!(
            m.h1.as_deref(),
            Some(mod_h1(b"module example.test/x\n").as_str())
        );
        match &out[..] {
            [IntegrityEvent::ChecksumMismatch {
                go_mod: true,
                expected,
                expected_from,
                exchanges,
                ..
            }] => {
                assert_eq!(expected, "h1:BBBB");
                assert!(expected_from.starts_with("sum.test"), "{expected_from}");
                assert_eq!(exchanges, &[2, 1]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unverified_note_is_not_trusted_and_says_so() {
        let mut i = Integrity::new(Vec::new(), Vec::new());
        let body = format!(
            "5\nexample.test/x v1.0.0 h1:AAAA\n\n{}",
            tree_note(6, &[1; 32])
        );
        let out = feed(
            &mut i,
            &mut lookup_exchange(1, "example.test/x", "v1.0.0"),
            body.as_bytes(),
        );
        assert!(
            matches!(&out[..], [IntegrityEvent::UnknownKey { .. }]),
            "{out:?}"
        );
        // One byte changed in the signed text: the known key's signature no longer verifies.
        let mut i = Integrity::new(vec![verifier()], Vec::new());
        let tampered = tree_note(6, &[1; 32]).replacen("\n6\n", "\n7\n", 1);
        let body = format!("5\nexample.test/x v1.0.0 h1:AAAA\n\n{tampered}");
        let out = feed(
            &mut i,
            &mut lookup_exchange(1, "example.test/x", "v1.0.0"),
            body.as_bytes(),
        );
        assert!(
            matches!(&out[..], [IntegrityEvent::SignatureInvalid { .. }]),
            "{out:?}"
        );
    }

    #[test]
    fn fork_and_proof_mismatch() {
        let mut i = Integrity::new(vec![verifier()], Vec::new());
        let rec_a = "example.test/a v1.0.0 h1:AAAA\n";
        let a = format!("0\n{rec_a}\n{}", tree_note(2, &[1; 32]));
        assert!(feed(
            &mut i,
            &mut lookup_exchange(1, "example.test/a", "v1.0.0"),
            a.as_bytes()
        )
        .is_empty());
        let b = format!(
            "1\nexample.test/b v1.0.0 h1:BBBB\n\n{}",
            tree_note(2, &[2; 32])
        );
        let out = feed(
            &mut i,
            &mut lookup_exchange(2, "example.test/b", "v1.0.0"),
            b.as_bytes(),
        );
        assert!(
            matches!(&out[..], [IntegrityEvent::Fork { size: 2, .. }]),
            "{out:?}"
        );
        // A tile whose leaf 0 is not record 0's hash.
        let mut tile = ex(
            3,
            "10.0.0.1:3",
            "10.0.0.3:80",
            "http://sum.test/tile/8/0/000.p/2",
            200,
            5,
            6,
        );
        assert_eq!(tile.op, classify::Op::Tile);
        let mut data = [7u8; 64].to_vec();
        let out = feed(&mut i, &mut tile, &data);
        let ids: Vec<u64> = out
            .iter()
            .map(|e| match e {
                IntegrityEvent::ProofMismatch { record_id, .. } => *record_id,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(ids, [0, 1], "both records are absent from the tile");
        // The right leaf: no finding.
        let mut i2 = Integrity::new(vec![verifier()], Vec::new());
        feed(
            &mut i2,
            &mut lookup_exchange(1, "example.test/a", "v1.0.0"),
            a.as_bytes(),
        );
        data[..32].copy_from_slice(&record_hash(rec_a.as_bytes()));
        assert!(feed(&mut i2, &mut tile, &data).is_empty());
    }

    #[test]
    fn same_file_different_bytes_from_two_servers() {
        let mut i = Integrity::new(Vec::new(), Vec::new());
        let mut a = ex(
            1,
            "10.0.0.1:1",
            "10.0.0.2:80",
            "http://a.test/example.test/x/@v/v1.0.0.info",
            200,
            1,
            2,
        );
        let mut b = ex(
            2,
            "10.0.0.1:2",
            "10.0.0.3:80",
            "http://b.test/example.test/x/@v/v1.0.0.info",
            200,
            3,
            4,
        );
        assert!(feed(&mut i, &mut a, br#"{"Version":"v1.0.0"}"#).is_empty());
        let out = feed(
            &mut i,
            &mut b,
            br#"{"Version":"v1.0.0","Time":"2020-01-01T00:00:00Z"}"#,
        );
        assert!(
            matches!(
                &out[..],
                [IntegrityEvent::MirrorInconsistency {
                    op: classify::Op::Info,
                    ..
                }]
            ),
            "{out:?}"
        );
        // The same bytes from a third server are fine.
        let mut c = ex(
            3,
            "10.0.0.1:3",
            "10.0.0.4:80",
            "http://c.test/example.test/x/@v/v1.0.0.info",
            200,
            5,
            6,
        );
        assert!(feed(&mut i, &mut c, br#"{"Version":"v1.0.0"}"#).is_empty());
    }
}
