//! The lab's checksum database: a signed Merkle tree over the go.sum records of the lab
//! modules, served as golang.org/x/mod/sumdb's server does (`/lookup/<mod>@<ver>`,
//! `/tile/H/L/N[.p/W]`, `/tile/H/data/N[.p/W]`, `/latest`), at a server's root or under a
//! proxy's `/sumdb/<name>/` path (with `/supported`).
//!
//! The record hashes come from `modtrace_core::gomod::h1` over the very zips and `.mod` files the lab
//! proxy serves, so the go command accepts them; hashing and tile paths come from
//! `modtrace_core::gomod::tlog`, the note text and verifier keys from `modtrace_core::gomod::note`. What is
//! here is what a verifier never needs: the signing key, building the tree, and signing.
//!
//! The key is derived from a fixed seed so every recording signs with the same key and prints
//! the same verifier key: a lab key, published on purpose, never to be trusted outside a lab run.

use super::http::Response;
use super::modules::{percent_decode, unescape_path, ModuleStore};
use super::LabError;
use ed25519_dalek::{Signer, SigningKey};
use modtrace_core::gomod::h1::{mod_h1, zip_h1};
use modtrace_core::gomod::note::{base64_encode, format_tree, Verifier, ALG_ED25519};
use modtrace_core::gomod::tlog::{
    node_hash, parse_tile_path, record_hash, tree_hash_from_leaves, Hash, Tile, TileLevel, Tree,
    HASH_SIZE,
};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Cursor;

/// The lab checksum database's name (the host part of its verifier key; the go command names
/// it in its `checksum mismatch` text as `<name>: h1:...`).
pub const LAB_SUMDB_NAME: &str = "sum.lab.test";

/// What the lab key is derived from: SHA-256 of this text is the Ed25519 seed. Changing it
/// changes the verifier key every capture was recorded with.
const LAB_KEY_SEED_TEXT: &str = "modtrace lab checksum database signing key, lab use only";

/// A note signer (x/mod note `Signer`) with an Ed25519 key.
#[derive(Clone)]
pub struct LabSigner {
    name: String,
    key: SigningKey,
    verifier: Verifier,
}

impl std::fmt::Debug for LabSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The private key stays out of debug output even though it is a lab key.
        f.debug_struct("LabSigner")
            .field("verifier", &self.verifier.encode())
            .finish()
    }
}

impl LabSigner {
    /// A signer named `name` with the Ed25519 key whose seed is `seed`.
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<LabSigner, LabError> {
        let key = SigningKey::from_bytes(&seed);
        let verifier = Verifier::from_ed25519(name, key.verifying_key().to_bytes())
            .map_err(|e| LabError::Config(format!("sumdb key {name:?}: {e}")))?;
        Ok(LabSigner {
            name: name.to_string(),
            key,
            verifier,
        })
    }

    /// The lab's signer: `sum.lab.test` with the key derived from the fixed seed.
    pub fn lab() -> LabSigner {
        let seed: [u8; 32] = Sha256::digest(LAB_KEY_SEED_TEXT.as_bytes()).into();
        // The name is a valid constant (a unit test checks it), so this cannot fail; the
        // fallback only keeps the signature infallible.
        Self::from_seed(LAB_SUMDB_NAME, seed).unwrap_or_else(|_| LabSigner {
            name: LAB_SUMDB_NAME.to_string(),
            key: SigningKey::from_bytes(&seed),
            verifier: Verifier {
                name: LAB_SUMDB_NAME.to_string(),
                key_hash: 0,
                public_key: [0; 32],
            },
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// The verifier key in GOSUMDB form, `<name>+<8 hex>+<base64(0x01 || key)>`.
    pub fn verifier_key(&self) -> String {
        self.verifier.encode()
    }

    /// The private key in x/mod note's encoding (`PRIVATE+KEY+<name>+<hash>+<base64(0x01 ||
    /// seed)>`), for `note.NewSigner` or Go's sumdb tooling.
    pub fn signer_key(&self) -> String {
        let mut k = vec![ALG_ED25519];
        k.extend_from_slice(&self.key.to_bytes());
        format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            self.verifier.key_hash,
            base64_encode(&k)
        )
    }

    /// Signs a note text (x/mod note `Sign`): the text, which must end in `\n`, then a blank
    /// line, then `— <name> <base64(key hash || signature)>\n`.
    pub fn sign_note(&self, text: &str) -> Result<String, LabError> {
        if !text.ends_with('\n') {
            return Err(LabError::Config(
                "note text must end in a newline".to_string(),
            ));
        }
        let sig = self.key.sign(text.as_bytes()).to_bytes();
        let mut raw = self.verifier.key_hash.to_be_bytes().to_vec();
        raw.extend_from_slice(&sig);
        Ok(format!("{text}\n— {} {}\n", self.name, base64_encode(&raw)))
    }
}

/// The two go.sum lines of one module version (x/mod sumdb: a record is exactly these).
pub fn gosum_record(path: &str, version: &str, zip_h1: &str, mod_h1: &str) -> String {
    format!("{path} {version} {zip_h1}\n{path} {version}/go.mod {mod_h1}\n")
}

/// The go.sum lines for what `store` serves for `path@version`, hashed as the go command
/// hashes a download.
pub fn store_record(store: &ModuleStore, path: &str, version: &str) -> Result<String, LabError> {
    let mv = store
        .get(path, version)
        .ok_or_else(|| LabError::Modules(format!("{path}@{version}: not in the lab modules")))?;
    let zh = zip_h1(Cursor::new(&mv.zip))
        .map_err(|e| LabError::Modules(format!("{path}@{version}: zip hash: {e}")))?;
    Ok(gosum_record(path, version, &zh, &mod_h1(&mv.go_mod)))
}

/// One record of the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SumRecord {
    pub path: String,
    pub version: String,
    /// The go.sum lines (ends in `\n`).
    pub text: String,
}

/// A complete, signed checksum database held in memory.
#[derive(Debug)]
pub struct SumDb {
    signer: LabSigner,
    records: Vec<SumRecord>,
    index: BTreeMap<(String, String), u64>,
    /// `levels[k][n]`: the hash of the complete subtree over records `n*2^k .. (n+1)*2^k`
    /// (x/mod tlog's stored hashes, by level). Level 0 holds the record hashes.
    levels: Vec<Vec<Hash>>,
    tree: Tree,
    signed_tree: String,
}

impl SumDb {
    /// A database with one record per module version in `store`, in the store's order
    /// (module path, then semver), signed by `signer`.
    pub fn from_store(store: &ModuleStore, signer: LabSigner) -> Result<SumDb, LabError> {
        let mut records = Vec::new();
        for (path, version) in store.all() {
            records.push(SumRecord {
                path: path.to_string(),
                version: version.to_string(),
                text: store_record(store, path, version)?,
            });
        }
        Self::from_records(records, signer)
    }

    /// A database over the given records (ids in order from 0).
    pub fn from_records(records: Vec<SumRecord>, signer: LabSigner) -> Result<SumDb, LabError> {
        if records.is_empty() {
            // x/mod tlog: the empty tree is never signed by a real sumdb, and the go command
            // cannot look anything up in it.
            return Err(LabError::Config(
                "checksum database needs at least one record".into(),
            ));
        }
        let mut index = BTreeMap::new();
        for (i, r) in records.iter().enumerate() {
            if index
                .insert((r.path.clone(), r.version.clone()), i as u64)
                .is_some()
            {
                return Err(LabError::Config(format!(
                    "checksum database: {}@{} twice",
                    r.path, r.version
                )));
            }
        }
        let leaves: Vec<Hash> = records
            .iter()
            .map(|r| record_hash(r.text.as_bytes()))
            .collect();
        let tree = Tree {
            size: records.len() as u64,
            hash: tree_hash_from_leaves(&leaves),
        };
        let mut levels = vec![leaves];
        while let Some(below) = levels.last() {
            if below.len() < 2 {
                break;
            }
            let up: Vec<Hash> = below
                .chunks_exact(2)
                .map(|p| node_hash(&p[0], &p[1]))
                .collect();
            levels.push(up);
        }
        let signed_tree = signer.sign_note(&format_tree(&tree))?;
        Ok(SumDb {
            signer,
            records,
            index,
            levels,
            tree,
            signed_tree,
        })
    }

    pub fn name(&self) -> &str {
        self.signer.name()
    }

    pub fn signer(&self) -> &LabSigner {
        &self.signer
    }

    pub fn verifier_key(&self) -> String {
        self.signer.verifier_key()
    }

    pub fn tree(&self) -> Tree {
        self.tree
    }

    pub fn records(&self) -> &[SumRecord] {
        &self.records
    }

    /// The signed tree note (`/latest`, and the tail of every lookup).
    pub fn signed_tree(&self) -> &str {
        &self.signed_tree
    }

    /// Record id and text of `path@version`.
    pub fn lookup(&self, path: &str, version: &str) -> Option<(u64, &SumRecord)> {
        let id = *self.index.get(&(path.to_string(), version.to_string()))?;
        Some((id, self.records.get(usize::try_from(id).ok()?)?))
    }

    /// A lookup body as x/mod sumdb's server writes it (tlog `FormatRecord` then the signed
    /// tree): `<id>\n<record>\n<signed note>`.
    pub fn lookup_body(&self, path: &str, version: &str) -> Option<String> {
        let (id, r) = self.lookup(path, version)?;
        Some(format!("{id}\n{}\n{}", r.text, self.signed_tree))
    }

    /// A tile's body, or None when the tree does not hold all of it. Hash tiles
    /// (`tile/H/L/N[.p/W]`) hold the hashes at level `L*H`, numbers `N*2^H .. N*2^H+W-1`
    /// (x/mod tlog tile.go); data tiles hold `FormatRecord(id, text)` of each record.
    pub fn tile(&self, tile: &Tile) -> Option<Vec<u8>> {
        let first = tile.n.checked_mul(tile.full_width())?;
        let width = u64::from(tile.width);
        let end = first.checked_add(width)?;
        match tile.level {
            TileLevel::Hashes(l) => {
                let level = usize::from(l).checked_mul(usize::from(tile.height))?;
                let row = self.levels.get(level)?;
                let hashes = row.get(usize::try_from(first).ok()?..usize::try_from(end).ok()?)?;
                let mut out = Vec::with_capacity(hashes.len() * HASH_SIZE);
                for h in hashes {
                    out.extend_from_slice(h);
                }
                Some(out)
            }
            TileLevel::Data => {
                let recs = self
                    .records
                    .get(usize::try_from(first).ok()?..usize::try_from(end).ok()?)?;
                let mut out = Vec::new();
                for (i, r) in recs.iter().enumerate() {
                    out.extend_from_slice(format!("{}\n{}\n", first + i as u64, r.text).as_bytes());
                }
                Some(out)
            }
        }
    }

    /// Answers a request path relative to the database's base (`/lookup/...`, `/tile/...`,
    /// `/latest`), as x/mod sumdb `Server.ServeHTTP`: 404 for what it does not hold, 400 for
    /// a malformed lookup.
    pub fn answer(&self, path: &str) -> Response {
        const TEXT: &str = "text/plain; charset=UTF-8";
        let not_found = || Response::text(404, "not found\n");
        // net/http hands the server a percent-decoded path; the go command sends `!` as is.
        let Some(path) = percent_decode(path.split('?').next().unwrap_or("")) else {
            return Response::text(400, "bad request: malformed escape\n");
        };
        if path == "/latest" {
            return Response::new(200, TEXT, self.signed_tree.as_bytes().to_vec());
        }
        if let Some(m) = path.strip_prefix("/lookup/") {
            let Some((epath, evers)) = m.split_once('@') else {
                return Response::text(400, "bad request: missing @version\n");
            };
            let (Some(p), Some(v)) = (unescape_path(epath), unescape_path(evers)) else {
                return Response::text(400, "bad request: malformed module path or version\n");
            };
            return match self.lookup_body(&p, &v) {
                Some(body) => Response::new(200, TEXT, body.into_bytes()),
                None => not_found(),
            };
        }
        if let Some(t) = path.strip_prefix('/') {
            if t.starts_with("tile/") {
                return match parse_tile_path(t).ok().and_then(|tile| self.tile(&tile)) {
                    Some(body) => Response::new(200, "application/octet-stream", body),
                    None => not_found(),
                };
            }
        }
        not_found()
    }

    /// Answers a path under a proxy's `<prefix>/sumdb/`: `<name>/supported` is 200 with an
    /// empty body (what the go command asks each proxy first), `<name>/...` the database;
    /// another name is 404, so the go command would go to that database directly.
    pub fn answer_under_proxy(&self, rest: &str) -> Response {
        let rest = rest.split('?').next().unwrap_or("");
        let Some(sub) = rest
            .strip_prefix(self.name())
            .filter(|s| s.starts_with('/'))
        else {
            return Response::text(404, "not found: no such checksum database here\n");
        };
        if sub == "/supported" {
            return Response::new(200, "text/plain; charset=UTF-8", Vec::new());
        }
        self.answer(sub)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use modtrace_core::gomod::note::{open, parse_tree, NoteLimits, Verdict};
    use modtrace_core::gomod::tlog::{TileLimits, TileSet};

    fn records(n: usize) -> Vec<SumRecord> {
        (0..n)
            .map(|i| {
                let path = format!("example.test/m{i:04}");
                SumRecord {
                    text: gosum_record(
                        &path,
                        "v1.0.0",
                        &format!("h1:{i}="),
                        &format!("h1:{i}mod="),
                    ),
                    path,
                    version: "v1.0.0".into(),
                }
            })
            .collect()
    }

    #[test]
    fn lab_key_is_fixed_and_verifies_its_notes() {
        let s = LabSigner::lab();
        let vkey = s.verifier_key();
        assert!(vkey.starts_with("sum.lab.test+"), "{vkey}");
        assert_eq!(vkey, LabSigner::lab().verifier_key(), "deterministic");
        let v = Verifier::parse(&vkey).unwrap();
        let signed = s.sign_note("hello\n").unwrap();
        assert!(signed.starts_with("hello\n\n— sum.lab.test "), "{signed}");
        let opened = open(signed.as_bytes(), &[v], &NoteLimits::default()).unwrap();
        assert!(matches!(opened.verdict(), Verdict::Verified { .. }));
        assert!(s.sign_note("no newline").is_err());
        assert!(s.signer_key().starts_with("PRIVATE+KEY+sum.lab.test+"));
        let other = LabSigner::from_seed("sum.lab.test", [7; 32]).unwrap();
        let forged = other.sign_note("hello\n").unwrap();
        let o = open(
            forged.as_bytes(),
            &[Verifier::parse(&vkey).unwrap()],
            &NoteLimits::default(),
        )
        .unwrap();
        assert!(
            !matches!(o.verdict(), Verdict::Verified { .. }),
            "another key's note must not verify under the lab key"
        );
    }

    #[test]
    fn lookup_body_has_id_record_blank_line_and_note() {
        let db = SumDb::from_records(records(3), LabSigner::lab()).unwrap();
        let body = db.lookup_body("example.test/m0001", "v1.0.0").unwrap();
        let want_rec =
            "example.test/m0001 v1.0.0 h1:1=\nexample.test/m0001 v1.0.0/go.mod h1:1mod=\n";
        assert_eq!(body, format!("1\n{want_rec}\n{}", db.signed_tree()));
        let opened = open(
            db.signed_tree().as_bytes(),
            std::slice::from_ref(db.signer().verifier()),
            &NoteLimits::default(),
        )
        .unwrap();
        let tree = parse_tree(opened.verified_text().unwrap()).unwrap();
        assert_eq!(tree, db.tree());
        assert_eq!(tree.size, 3);
        assert!(db.lookup_body("example.test/m0001", "v9.0.0").is_none());
        assert!(SumDb::from_records(Vec::new(), LabSigner::lab()).is_err());
        let mut dup = records(2);
        dup.push(dup[0].clone());
        assert!(SumDb::from_records(dup, LabSigner::lab()).is_err());
    }

    #[test]
    fn answers_paths_like_the_x_mod_server() {
        let mut recs = records(2);
        recs.push(SumRecord {
            path: "example.test/Util".into(),
            version: "v0.2.0".into(),
            text: gosum_record("example.test/Util", "v0.2.0", "h1:a=", "h1:b="),
        });
        let db = SumDb::from_records(recs, LabSigner::lab()).unwrap();
        let r = db.answer("/lookup/example.test/!util@v0.2.0");
        assert_eq!(r.status, 200);
        assert!(r.body.starts_with(b"2\nexample.test/Util v0.2.0 h1:a=\n"));
        assert_eq!(
            db.answer("/lookup/example.test/%21util@v0.2.0").body,
            r.body,
            "percent-escaped ! too"
        );
        assert_eq!(db.answer("/lookup/example.test/Util@v0.2.0").status, 400);
        assert_eq!(db.answer("/lookup/example.test/util").status, 400);
        assert_eq!(db.answer("/lookup/example.test/!util@v0.3.0").status, 404);
        assert_eq!(db.answer("/latest").body, db.signed_tree().as_bytes());
        let t = db.answer("/tile/8/0/000.p/3");
        assert_eq!(t.status, 200);
        assert_eq!(t.body.len(), 3 * 32);
        assert_eq!(
            db.answer("/tile/8/0/000.p/4").status,
            404,
            "beyond the tree"
        );
        assert_eq!(db.answer("/tile/8/0/000").status, 404, "no full tile yet");
        assert_eq!(db.answer("/tile/8/0/0.p/3").status, 404, "not canonical");
        assert_eq!(db.answer("/tile/8/1/000.p/1").status, 404);
        let d = db.answer("/tile/8/data/000.p/2");
        assert_eq!(d.status, 200);
        assert!(d.body.starts_with(b"0\nexample.test/m0000 v1.0.0 h1:0=\n"));
        assert_eq!(db.answer("/nothing").status, 404);
        assert_eq!(db.answer_under_proxy("sum.lab.test/supported").status, 200);
        assert!(db
            .answer_under_proxy("sum.lab.test/supported")
            .body
            .is_empty());
        assert_eq!(
            db.answer_under_proxy("sum.lab.test/latest").body,
            db.signed_tree().as_bytes()
        );
        assert_eq!(
            db.answer_under_proxy("sum.golang.org/supported").status,
            404
        );
        assert_eq!(db.answer_under_proxy("sum.lab.testx/supported").status, 404);
    }

    /// Over 256 records the tree spans full level-0 tiles and a level-1 tile; the hashes the
    /// tiles hold must give the signed tree hash and every record's leaf (checked with the
    /// verifier side, `modtrace_core::gomod::tlog::TileSet`).
    #[test]
    fn tiles_over_256_records_are_consistent_with_the_tree() {
        for n in [1usize, 5, 256, 257, 600] {
            let db = SumDb::from_records(records(n), LabSigner::lab()).unwrap();
            let tree = db.tree();
            let mut set = TileSet::new(TileLimits::default());
            let full = n / 256;
            for i in 0..full {
                let path = Tile {
                    height: 8,
                    level: TileLevel::Hashes(0),
                    n: i as u64,
                    width: 256,
                }
                .path();
                let t = parse_tile_path(&path).unwrap();
                set.insert(t, &db.tile(&t).unwrap()).unwrap();
            }
            if n % 256 != 0 {
                let t = Tile {
                    height: 8,
                    level: TileLevel::Hashes(0),
                    n: full as u64,
                    width: (n % 256) as u32,
                };
                set.insert(t, &db.tile(&t).unwrap()).unwrap();
            }
            if full > 0 {
                let t = Tile {
                    height: 8,
                    level: TileLevel::Hashes(1),
                    n: 0,
                    width: full as u32,
                };
                let body = db.tile(&t).unwrap();
                // Level-1 entry i is the root of level-0 tile i.
                for i in 0..full {
                    let lvl0 = Tile {
                        height: 8,
                        level: TileLevel::Hashes(0),
                        n: i as u64,
                        width: 256,
                    };
                    let leaves: Vec<Hash> = db
                        .tile(&lvl0)
                        .unwrap()
                        .chunks(32)
                        .map(|c| c.try_into().unwrap())
                        .collect();
                    assert_eq!(&body[i * 32..i * 32 + 32], &tree_hash_from_leaves(&leaves));
                }
                set.insert(t, &body).unwrap();
            }
            assert_eq!(set.tree_hash(8, tree.size).unwrap(), tree.hash, "n={n}");
            set.check_tree(8, &tree).unwrap();
            for id in [0, n / 2, n - 1] {
                let text = db.records()[id].text.as_bytes().to_vec();
                assert_eq!(
                    db.levels[0][id],
                    record_hash(&text),
                    "leaf at the record's index"
                );
                set.check_record(8, &tree, id as u64, &text).unwrap();
                assert!(set.check_record(8, &tree, id as u64, b"forged\n").is_err());
            }
        }
    }
}
