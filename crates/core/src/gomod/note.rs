//! Signed notes (golang.org/x/mod/sumdb/note): verifier keys, the note format, Ed25519
//! signature checks, and the checksum database's tree notes.
//!
//! A signed note is text ending in `\n`, a blank line, then signature lines
//! `— <name> <base64(4-byte key hash || signature)>\n` (U+2014 EM DASH, space). The signature
//! covers the text including its final newline, not the blank line.

use crate::gomod::tlog::{Hash, Tree};
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use sha2::{Digest, Sha256};

/// The go command's built-in key for sum.golang.org (cmd/go/internal/modfetch/key.go,
/// `knownGOSUMDB`): the one public key modtrace embeds.
pub const GO_SUMDB_KEY: &str =
    "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";

/// Algorithm byte of an Ed25519 verifier key (x/mod note: `algEd25519 = 1`).
pub const ALG_ED25519: u8 = 1;

/// First line of a checksum-database tree note (x/mod tlog `ParseTree`).
pub const TREE_NOTE_HEADER: &str = "go.sum database tree";

/// Limits on a note, from x/mod note `Open`.
#[derive(Clone, Debug)]
pub struct NoteLimits {
    /// Signature lines: Open refuses a note with more than 100 ("Avoid spending forever
    /// parsing a note with many signatures").
    pub max_signatures: usize,
}

impl Default for NoteLimits {
    fn default() -> Self {
        NoteLimits {
            max_signatures: 100,
        }
    }
}

/// Go's `base64.StdEncoding`: padding required, non-zero trailing bits accepted (it is not
/// `.Strict()`), and `\r` / `\n` skipped anywhere in the input.
const GO_STD_B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// Decodes base64 exactly as Go's `base64.StdEncoding.DecodeString` accepts it.
pub fn go_base64_decode(s: &str) -> Option<Vec<u8>> {
    if s.contains(['\r', '\n']) {
        let cleaned: String = s.chars().filter(|c| *c != '\r' && *c != '\n').collect();
        return GO_STD_B64.decode(cleaned).ok();
    }
    GO_STD_B64.decode(s).ok()
}

/// Standard base64 with padding, as Go encodes.
pub fn base64_encode(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// x/mod note `keyHash`: the first four bytes, big-endian, of SHA-256(name || "\n" || key),
/// where key is the algorithm byte followed by the public key.
pub fn key_hash(name: &str, key: &[u8]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update(key);
    let sum: [u8; 32] = h.finalize().into();
    u32::from_be_bytes([sum[0], sum[1], sum[2], sum[3]])
}

/// x/mod note `isValidName`: non-empty, no Unicode white space, no `+`. (A `&str` is valid
/// UTF-8 already; Go's `unicode.IsSpace` is the Unicode White_Space property, as
/// `char::is_whitespace`.)
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(char::is_whitespace) && !name.contains('+')
}

/// Why a verifier key was refused (x/mod note `NewVerifier` errors).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// `errVerifierID`: bad shape, name, hash digits, base64 or key length.
    #[error("malformed verifier id: {0}")]
    Malformed(&'static str),
    /// `errVerifierHash`: the 8 hex digits are not the key's hash.
    #[error("invalid verifier hash: key says {claimed:08x}, key data hashes to {computed:08x}")]
    BadHash { claimed: u32, computed: u32 },
    /// `errVerifierAlg`.
    #[error("unknown verifier algorithm {0}")]
    UnknownAlgorithm(u8),
}

/// A checksum-database verifier key `<name>+<hash>+<base64(0x01 || 32-byte key)>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verifier {
    pub name: String,
    pub key_hash: u32,
    /// The raw Ed25519 public key. It is not checked to be a curve point here: Go's
    /// `NewVerifier` does not either, and a key that is not one simply verifies nothing.
    pub public_key: [u8; 32],
}

impl Verifier {
    /// Parses a verifier key as x/mod note `NewVerifier` does: split at the first two `+`
    /// only, exactly 8 hex digits, the hash must match, algorithm 1 with a 32-byte key.
    pub fn parse(vkey: &str) -> Result<Verifier, KeyError> {
        let (name, rest) = vkey.split_once('+').unwrap_or((vkey, ""));
        let (hash16, key64) = rest.split_once('+').unwrap_or((rest, ""));
        if hash16.len() != 8 || !hash16.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(KeyError::Malformed("key hash is not 8 hex digits"));
        }
        let claimed = u32::from_str_radix(hash16, 16)
            .map_err(|_| KeyError::Malformed("key hash is not 8 hex digits"))?;
        let key = go_base64_decode(key64).ok_or(KeyError::Malformed("key is not base64"))?;
        if !is_valid_name(name) {
            return Err(KeyError::Malformed("invalid name"));
        }
        let Some((&alg, raw)) = key.split_first() else {
            return Err(KeyError::Malformed("empty key"));
        };
        let computed = key_hash(name, &key);
        if claimed != computed {
            return Err(KeyError::BadHash { claimed, computed });
        }
        if alg != ALG_ED25519 {
            return Err(KeyError::UnknownAlgorithm(alg));
        }
        let public_key: [u8; 32] = raw
            .try_into()
            .map_err(|_| KeyError::Malformed("Ed25519 key is not 32 bytes"))?;
        Ok(Verifier {
            name: name.to_string(),
            key_hash: claimed,
            public_key,
        })
    }

    /// The verifier for an Ed25519 public key (x/mod note `NewEd25519VerifierKey`).
    pub fn from_ed25519(name: &str, public_key: [u8; 32]) -> Result<Verifier, KeyError> {
        if !is_valid_name(name) {
            return Err(KeyError::Malformed("invalid name"));
        }
        let mut key = vec![ALG_ED25519];
        key.extend_from_slice(&public_key);
        Ok(Verifier {
            name: name.to_string(),
            key_hash: key_hash(name, &key),
            public_key,
        })
    }

    /// The encoded verifier key, `<name>+<hash>+<base64>`.
    pub fn encode(&self) -> String {
        let mut key = vec![ALG_ED25519];
        key.extend_from_slice(&self.public_key);
        format!(
            "{}+{:08x}+{}",
            self.name,
            self.key_hash,
            base64_encode(&key)
        )
    }

    /// The go command's key for sum.golang.org.
    pub fn go_sumdb() -> Verifier {
        // A constant checked by a unit test; never fails.
        Verifier::parse(GO_SUMDB_KEY).unwrap_or(Verifier {
            name: String::new(),
            key_hash: 0,
            public_key: [0; 32],
        })
    }

    /// Ed25519 verification of `sig` over `msg` with `verify_strict`: cofactorless and
    /// refusing a non-canonical S, as Go's `ed25519.Verify`; it also refuses small-order keys
    /// and R points, which Go accepts, so a signature made to pass under a deliberately weak
    /// key verifies in Go and not here (no real checksum-database key is weak).
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let Ok(sig): Result<[u8; 64], _> = sig.try_into() else {
            return false;
        };
        let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&self.public_key) else {
            return false;
        };
        key.verify_strict(msg, &ed25519_dalek::Signature::from_bytes(&sig))
            .is_ok()
    }
}

/// One signature line of a note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    pub name: String,
    pub key_hash: u32,
    /// The base64 text as it appeared (hash and signature).
    pub base64: String,
    /// The signature bytes after the 4-byte key hash.
    pub sig: Vec<u8>,
}

/// Why a note was refused as malformed (x/mod note `errMalformedNote`), with the reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("malformed note: {0}")]
    Malformed(&'static str),
    #[error("malformed note: more than {0} signatures")]
    TooManySignatures(usize),
    /// Two verifiers given for one name and key hash (x/mod `ambiguousVerifierError`).
    #[error("ambiguous key {name}+{key_hash:08x}")]
    AmbiguousKey { name: String, key_hash: u32 },
}

/// A syntactically valid signed note, not yet verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// The signed text, ending in `\n`, without the blank line.
    pub text: String,
    /// Every signature line, in order (duplicates included).
    pub signatures: Vec<Signature>,
}

/// Parses a signed note with x/mod note `Open`'s syntax rules: valid UTF-8, no ASCII control
/// character but `\n`, the last `\n\n` separates text from signatures, the signature block
/// ends in `\n`, each line is `— <valid name> <base64 of at least 5 bytes>`, at most
/// `limits.max_signatures` lines.
pub fn parse_note(msg: &[u8], limits: &NoteLimits) -> Result<Note, NoteError> {
    let text = std::str::from_utf8(msg).map_err(|_| NoteError::Malformed("not UTF-8"))?;
    if text.bytes().any(|b| b < 0x20 && b != b'\n') {
        return Err(NoteError::Malformed("control character"));
    }
    let split = text
        .rfind("\n\n")
        .ok_or(NoteError::Malformed("no blank line before signatures"))?;
    let (body, sigs) = (&text[..split + 1], &text[split + 2..]);
    if !sigs.ends_with('\n') {
        return Err(NoteError::Malformed(
            "signature block does not end in newline",
        ));
    }
    let mut signatures = Vec::new();
    for line in sigs.split_terminator('\n') {
        let rest = line.strip_prefix("— ").ok_or(NoteError::Malformed(
            "signature line does not start with \"— \"",
        ))?;
        let (name, b64) = rest.split_once(' ').unwrap_or((rest, ""));
        let raw = go_base64_decode(b64);
        let raw = match raw {
            Some(r) if is_valid_name(name) && !b64.is_empty() && r.len() >= 5 => r,
            _ => return Err(NoteError::Malformed("bad signature line")),
        };
        if signatures.len() >= limits.max_signatures {
            return Err(NoteError::TooManySignatures(limits.max_signatures));
        }
        let (h, sig) = raw.split_at(4);
        signatures.push(Signature {
            name: name.to_string(),
            key_hash: u32::from_be_bytes([h[0], h[1], h[2], h[3]]),
            base64: b64.to_string(),
            sig: sig.to_vec(),
        });
    }
    Ok(Note {
        text: body.to_string(),
        signatures,
    })
}

/// What became of one signature line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigStatus {
    /// A given verifier has this name and key hash and accepts the signature.
    Verified,
    /// A given verifier has this name and key hash and rejects the signature.
    Invalid,
    /// No given verifier has this name and key hash.
    UnknownKey,
    /// Ignored as x/mod note `Open` ignores it: a later signature by a key already seen, or a
    /// repeat of an identical unknown-key line.
    Duplicate,
}

/// The overall result, in x/mod note `Open`'s order of precedence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Open would return `InvalidSignatureError` for the first such key.
    SignatureInvalid { name: String, key_hash: u32 },
    /// Open succeeds: signed by these (name, key hash), in order.
    Verified { by: Vec<(String, u32)> },
    /// Open would return `UnverifiedNoteError`: only keys not given signed it.
    UnknownKey { keys: Vec<(String, u32)> },
}

/// A note with each signature judged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenedNote {
    pub note: Note,
    /// One per `note.signatures`, in the same order.
    pub status: Vec<SigStatus>,
}

impl OpenedNote {
    pub fn verdict(&self) -> Verdict {
        let pairs = |want: SigStatus| -> Vec<(String, u32)> {
            self.note
                .signatures
                .iter()
                .zip(&self.status)
                .filter(|(_, s)| **s == want)
                .map(|(sig, _)| (sig.name.clone(), sig.key_hash))
                .collect()
        };
        if let Some((name, key_hash)) = pairs(SigStatus::Invalid).into_iter().next() {
            return Verdict::SignatureInvalid { name, key_hash };
        }
        let by = pairs(SigStatus::Verified);
        if !by.is_empty() {
            return Verdict::Verified { by };
        }
        Verdict::UnknownKey {
            keys: pairs(SigStatus::UnknownKey),
        }
    }

    /// The verified text, if the verdict is `Verified`.
    pub fn verified_text(&self) -> Option<&str> {
        matches!(self.verdict(), Verdict::Verified { .. }).then_some(self.note.text.as_str())
    }
}

/// Parses and verifies a signed note against `verifiers` (x/mod note `Open`), keeping every
/// signature's outcome instead of stopping at the first invalid one.
pub fn open(
    msg: &[u8],
    verifiers: &[Verifier],
    limits: &NoteLimits,
) -> Result<OpenedNote, NoteError> {
    let note = parse_note(msg, limits)?;
    let mut status = Vec::with_capacity(note.signatures.len());
    let mut seen_known: Vec<(&str, u32)> = Vec::new();
    let mut seen_unknown: Vec<(&str, &str)> = Vec::new();
    for sig in &note.signatures {
        let mut matching = verifiers
            .iter()
            .filter(|v| v.name == sig.name && v.key_hash == sig.key_hash);
        let Some(v) = matching.next() else {
            let line = (sig.name.as_str(), sig.base64.as_str());
            if seen_unknown.contains(&line) {
                status.push(SigStatus::Duplicate);
            } else {
                seen_unknown.push(line);
                status.push(SigStatus::UnknownKey);
            }
            continue;
        };
        if matching.next().is_some() {
            return Err(NoteError::AmbiguousKey {
                name: sig.name.clone(),
                key_hash: sig.key_hash,
            });
        }
        let pair = (sig.name.as_str(), sig.key_hash);
        if seen_known.contains(&pair) {
            status.push(SigStatus::Duplicate);
            continue;
        }
        seen_known.push(pair);
        status.push(if v.verify(note.text.as_bytes(), &sig.sig) {
            SigStatus::Verified
        } else {
            SigStatus::Invalid
        });
    }
    Ok(OpenedNote { note, status })
}

/// Why a tree note's text is not a tree (x/mod tlog `errMalformedTree`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed tree note: {0}")]
pub struct TreeError(pub &'static str);

/// Parses a tree note's text `go.sum database tree\n<N>\n<base64 hash>\n[...]` (x/mod tlog
/// `ParseTree`; lines after the hash are ignored for forward compatibility).
pub fn parse_tree(text: &str) -> Result<Tree, TreeError> {
    let mut f = text.splitn(4, '\n');
    let (Some(header), Some(n), Some(hash), Some(_rest)) = (f.next(), f.next(), f.next(), f.next())
    else {
        return Err(TreeError("fewer than three lines"));
    };
    if header != TREE_NOTE_HEADER {
        return Err(TreeError("first line is not \"go.sum database tree\""));
    }
    let size = go_parse_int64(n)
        .filter(|n| *n >= 0)
        .ok_or(TreeError("tree size is not a number"))?;
    let hash: Hash = go_base64_decode(hash)
        .and_then(|h| h.try_into().ok())
        .ok_or(TreeError("root hash is not 32 bytes of base64"))?;
    Ok(Tree {
        size: size as u64,
        hash,
    })
}

/// The text of a tree note for a tree (x/mod tlog `FormatTree`).
pub fn format_tree(tree: &Tree) -> String {
    format!(
        "{TREE_NOTE_HEADER}\n{}\n{}\n",
        tree.size,
        base64_encode(&tree.hash)
    )
}

/// Go's `strconv.ParseInt(s, 10, 64)`: optional sign, at least one ASCII digit, in range.
pub fn go_parse_int64(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
#[path = "note_tests.rs"]
mod tests;
