//! Record decryption with secrets from a key log, pure: records in, plaintext out.
//!
//! - [`RecordDecryptor`]: one direction under one set of keys. It holds the per-record
//!   sequence number (RFC 8446 5.3, RFC 5246 6.1), builds the nonce and the additional data
//!   (TLS 1.3: the record header, RFC 8446 5.2; TLS 1.2: `seq_num + type + version + length`,
//!   RFC 5246 6.2.3.3) and strips the TLS 1.3 inner content type and padding (RFC 8446 5.4).
//! - [`DirectionDecryptor`]: one direction of a connection from its first record on: which
//!   records are in the clear and which keys protect the others (see "Phases" below).
//! - [`session_decryptors`]: both directions from a [`TlsSession`] (randoms, version, suite)
//!   and a [`KeyLog`].
//!
//! A record that does not authenticate is an error value (the caller counts it and reports
//! tls-decrypt-failed), never a guess at its content. **After a failure the sequence number
//! still advances**: records arrive in order from TCP reassembly and the sender used one
//! sequence number per record it sent, so the next record has the next number whether or not
//! this one could be read (a corrupted record must not make every later one fail too). A
//! record lost in a reassembly gap is not seen at all, so after a gap inside the protected
//! stream the numbers no longer match and every later record fails: the caller should stop
//! decrypting a direction after a gap.
//!
//! # Phases (where the keys change)
//! TLS 1.2 (RFC 5246 7.1): a side's records are in the clear up to and including its
//! ChangeCipherSpec; every later record is protected by the key block (its first is the
//! Finished). Renegotiation is not followed: records after a second ChangeCipherSpec fail.
//!
//! TLS 1.3 (RFC 8446 2, 4.4, 5): records of a type other than application_data (23) are in the
//! clear (ClientHello, ServerHello, the middlebox-compatibility ChangeCipherSpec of D.4, an
//! alert sent before keys). Protected records of each side go through up to three key sets:
//! 1. client only, with 0-RTT: `CLIENT_EARLY_TRAFFIC_SECRET` until the client's
//!    EndOfEarlyData (type 5);
//! 2. `*_HANDSHAKE_TRAFFIC_SECRET` for the encrypted handshake flight: the server's
//!    EncryptedExtensions, [CertificateRequest,] Certificate, CertificateVerify, Finished; the
//!    client's [Certificate, CertificateVerify,] Finished. **A side's Finished (type 20) ends
//!    its handshake flight**: the next record of that side is under `*_TRAFFIC_SECRET_0`
//!    (RFC 8446 5.1 says the Finished ends its record, so no record mixes keys);
//! 3. `*_TRAFFIC_SECRET_N`: application data, NewSessionTicket, alerts; a KeyUpdate (type 24)
//!    moves that side to secret N+1 from its next record (RFC 8446 4.6.3, 7.2).
//!
//! [`DirectionDecryptor`] follows this by reading the handshake message types in the
//! decrypted handshake records (headers only; bodies are never buffered). When a switch point
//! was missed (the record holding the Finished did not decrypt, the key log lacks the
//! handshake or early secret, or the server refused 0-RTT and the client went on with its
//! handshake keys), a record that fails under the current keys is tried once under the next
//! keys at their next sequence number; the AEAD tag makes that a proof, not a guess.
//!
//! Supported: TLS 1.3 (0x0304, and drafts 20-28, whose "tls13 " labels are the final ones;
//! drafts before 25 authenticate no record header) with TLS_AES_128_GCM_SHA256,
//! TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256; TLS 1.2 (0x0303) with the AES-GCM and
//! ChaCha20-Poly1305 suites of [`super::keys::tls12_suite`]. Not supported: CBC, CCM and stream
//! suites, TLS 1.1 and earlier, SSLv3.

use super::keylog::{KeyLog, Secrets};
use super::keys::{
    tls12_key_block, tls12_suite, tls13_next_traffic_secret, tls13_suite, tls13_traffic_keys,
    AeadAlg, CipherSuite, KeyError, TrafficKeys, GCM_EXPLICIT_NONCE_LEN, GCM_FIXED_IV_LEN,
    NONCE_LEN, TAG_LEN,
};
use super::parser::{content, handshake};
use super::{is_tls13_version, TlsSession};
use crate::flow::Dir;
use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes128Gcm, Aes256Gcm};
use chacha20poly1305::ChaCha20Poly1305;

/// RFC 8446 5.2: a TLSCiphertext fragment is at most 2^14 + 256 bytes.
pub const TLS13_MAX_CIPHERTEXT: usize = (1 << 14) + 256;
/// RFC 5246 6.2.3: a TLSCiphertext fragment is at most 2^14 + 2048 bytes.
pub const TLS12_MAX_CIPHERTEXT: usize = (1 << 14) + 2048;

/// Handshake message types that move a direction to its next keys (RFC 8446 B.3).
const END_OF_EARLY_DATA: u8 = 5;
const KEY_UPDATE: u8 = 24;

/// A decrypted record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plain {
    /// The real content type: TLS 1.3's inner type (RFC 8446 5.4), else the record's.
    pub content_type: u8,
    /// The plaintext, TLS 1.3 padding and inner type removed.
    pub data: Vec<u8>,
}

/// Why a record gave no plaintext.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecryptError {
    /// TLS 1.3: a record of this type is never protected (RFC 8446 5); read it as it is. No
    /// sequence number is used. Not a failure.
    #[error("record of type {content_type} is not protected")]
    NotProtected { content_type: u8 },
    /// Shorter than the nonce, tag and (TLS 1.3) inner content type.
    #[error("protected record of {have} bytes is shorter than {need}")]
    TooShort { need: usize, have: usize },
    /// Longer than the protocol allows (RFC 8446 5.2, RFC 5246 6.2.3).
    #[error("protected record of {len} bytes exceeds {max}")]
    RecordOverflow { len: usize, max: usize },
    /// The AEAD tag did not verify: wrong keys, a changed byte, or records out of step.
    #[error("record {seq} did not authenticate")]
    AuthenticationFailed { seq: u64 },
    /// TLS 1.3: the plaintext was all zeros, no inner content type (RFC 8446 5.4).
    #[error("record {seq} has no inner content type")]
    MissingContentType { seq: u64 },
    /// 2^64 records under one key (RFC 8446 5.3 forbids wrapping).
    #[error("sequence number exhausted")]
    SequenceExhausted,
    /// The key log has no secret for the keys this record needs.
    #[error("no keys for this record")]
    NoKeys,
}

impl DecryptError {
    /// A record that should have decrypted and did not (tls-decrypt-failed); `NotProtected`
    /// and `NoKeys` are not failures of the record.
    pub fn is_failure(&self) -> bool {
        !matches!(
            self,
            DecryptError::NotProtected { .. } | DecryptError::NoKeys
        )
    }
}

/// An AEAD instance, boxed: the expanded AES key schedules are large.
#[derive(Clone)]
enum Cipher {
    Aes128(Box<Aes128Gcm>),
    Aes256(Box<Aes256Gcm>),
    ChaCha(Box<ChaCha20Poly1305>),
}

impl Cipher {
    fn new(aead: AeadAlg, key: &[u8]) -> Result<Cipher, KeyError> {
        let bad = |_| KeyError::BadLength {
            what: "key",
            need: aead.key_len(),
            have: key.len(),
        };
        Ok(match aead {
            AeadAlg::Aes128Gcm => {
                Cipher::Aes128(Box::new(Aes128Gcm::new_from_slice(key).map_err(bad)?))
            }
            AeadAlg::Aes256Gcm => {
                Cipher::Aes256(Box::new(Aes256Gcm::new_from_slice(key).map_err(bad)?))
            }
            AeadAlg::ChaCha20Poly1305 => Cipher::ChaCha(Box::new(
                ChaCha20Poly1305::new_from_slice(key).map_err(bad)?,
            )),
        })
    }

    /// `ciphertext || tag` to plaintext; `None` when the tag does not verify.
    fn open(&self, nonce: [u8; NONCE_LEN], aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        let mut buf = sealed.to_vec();
        let ok = match self {
            Cipher::Aes128(c) => c.decrypt_in_place(&nonce.into(), aad, &mut buf),
            Cipher::Aes256(c) => c.decrypt_in_place(&nonce.into(), aad, &mut buf),
            Cipher::ChaCha(c) => c.decrypt_in_place(&nonce.into(), aad, &mut buf),
        };
        ok.ok().map(|()| buf)
    }

    #[cfg(test)]
    fn seal(&self, nonce: [u8; NONCE_LEN], aad: &[u8], plain: &[u8]) -> Vec<u8> {
        let mut buf = plain.to_vec();
        match self {
            Cipher::Aes128(c) => c.encrypt_in_place(&nonce.into(), aad, &mut buf),
            Cipher::Aes256(c) => c.encrypt_in_place(&nonce.into(), aad, &mut buf),
            Cipher::ChaCha(c) => c.encrypt_in_place(&nonce.into(), aad, &mut buf),
        }
        .unwrap();
        buf
    }
}

/// How the nonce and additional data are built.
#[derive(Clone)]
enum Framing {
    /// RFC 8446 5.2-5.3. `header_aad`: the record header is the additional data (final and
    /// drafts 25+; drafts 20-24 used none). `secret` is kept for KeyUpdate.
    Tls13 {
        iv: [u8; NONCE_LEN],
        header_aad: bool,
        secret: Vec<u8>,
    },
    /// RFC 5288 3: nonce = salt (4, from the key block) || explicit nonce (first 8 bytes of
    /// the record).
    Tls12Gcm { salt: [u8; GCM_FIXED_IV_LEN] },
    /// RFC 7905 2: nonce = IV (12, from the key block) XOR the sequence number, nothing
    /// explicit in the record.
    Tls12ChaCha { iv: [u8; NONCE_LEN] },
}

/// One direction's record protection under one set of keys (see the module documentation).
#[derive(Clone)]
pub struct RecordDecryptor {
    suite: CipherSuite,
    framing: Framing,
    cipher: Cipher,
    /// Sequence number of the next record; `None` once 2^64 records were used.
    seq: Option<u64>,
    key_updates: u32,
}

impl std::fmt::Debug for RecordDecryptor {
    // No key material in debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordDecryptor")
            .field("suite", &format_args!("0x{:04x}", self.suite.id))
            .field("tls13", &matches!(self.framing, Framing::Tls13 { .. }))
            .field("seq", &self.seq)
            .field("key_updates", &self.key_updates)
            .finish()
    }
}

/// `iv` XOR the 64-bit sequence number left-padded to the IV length (RFC 8446 5.3, RFC 7905 2).
fn xor_nonce(iv: &[u8; NONCE_LEN], seq: u64) -> [u8; NONCE_LEN] {
    let mut nonce = *iv;
    for (n, s) in nonce
        .iter_mut()
        .skip(NONCE_LEN.saturating_sub(8))
        .zip(seq.to_be_bytes())
    {
        *n ^= s;
    }
    nonce
}

/// Which TLS 1.3 versions are decrypted, and whether their record header is the additional
/// data: final (0x0304) and drafts 25-28 yes, drafts 20-24 no (draft-ietf-tls-tls13-25 5.2
/// added it). Drafts before 20 used other labels; other variants are not supported.
fn tls13_header_aad(version: u16) -> Option<bool> {
    match version {
        0x0304 => Some(true),
        0x7f19..=0x7f1c => Some(true),
        0x7f14..=0x7f18 => Some(false),
        _ => None,
    }
}

impl RecordDecryptor {
    /// TLS 1.3 (or a supported draft) with the traffic secret of one direction and phase
    /// (handshake, application N, or early). `version` is the negotiated one.
    pub fn tls13(version: u16, suite_id: u16, traffic_secret: &[u8]) -> Result<Self, KeyError> {
        let header_aad = tls13_header_aad(version).ok_or(KeyError::UnsupportedVersion(version))?;
        let suite = tls13_suite(suite_id).ok_or(KeyError::UnsupportedSuite(suite_id))?;
        let TrafficKeys { key, iv } = tls13_traffic_keys(suite, traffic_secret)?;
        Ok(RecordDecryptor {
            suite,
            cipher: Cipher::new(suite.aead, &key)?,
            framing: Framing::Tls13 {
                iv: fixed_iv(&iv)?,
                header_aad,
                secret: traffic_secret.to_vec(),
            },
            seq: Some(0),
            key_updates: 0,
        })
    }

    /// TLS 1.2 with one direction's key and fixed IV from the key block
    /// ([`super::keys::tls12_key_block`]).
    pub fn tls12(suite_id: u16, keys: &TrafficKeys) -> Result<Self, KeyError> {
        let suite = tls12_suite(suite_id).ok_or(KeyError::UnsupportedSuite(suite_id))?;
        let framing = match suite.aead {
            AeadAlg::Aes128Gcm | AeadAlg::Aes256Gcm => Framing::Tls12Gcm {
                salt: keys
                    .iv
                    .as_slice()
                    .try_into()
                    .map_err(|_| KeyError::BadLength {
                        what: "GCM fixed IV",
                        need: GCM_FIXED_IV_LEN,
                        have: keys.iv.len(),
                    })?,
            },
            AeadAlg::ChaCha20Poly1305 => Framing::Tls12ChaCha {
                iv: fixed_iv(&keys.iv)?,
            },
        };
        Ok(RecordDecryptor {
            suite,
            cipher: Cipher::new(suite.aead, &keys.key)?,
            framing,
            seq: Some(0),
            key_updates: 0,
        })
    }

    pub fn suite(&self) -> CipherSuite {
        self.suite
    }

    pub fn is_tls13(&self) -> bool {
        matches!(self.framing, Framing::Tls13 { .. })
    }

    /// Sequence number of the next record (0 after construction and after a key update).
    pub fn sequence(&self) -> Option<u64> {
        self.seq
    }

    /// Key updates applied so far.
    pub fn key_updates(&self) -> u32 {
        self.key_updates
    }

    /// Decrypts the body (`payload`, after the 5-byte header) of the next record of this
    /// direction. `content_type` and `record_version` are the header's. The sequence number
    /// advances for every protected record, including one that fails (module documentation);
    /// a TLS 1.3 record of a type other than application_data is [`DecryptError::NotProtected`]
    /// and uses no number.
    pub fn decrypt(
        &mut self,
        content_type: u8,
        record_version: u16,
        payload: &[u8],
    ) -> Result<Plain, DecryptError> {
        if self.is_tls13() && content_type != content::APPLICATION_DATA {
            return Err(DecryptError::NotProtected { content_type });
        }
        let seq = self.seq.ok_or(DecryptError::SequenceExhausted)?;
        self.seq = seq.checked_add(1);
        self.open(seq, content_type, record_version, payload)
    }

    /// Like [`decrypt`](Self::decrypt), but the sequence number advances only when the record
    /// authenticates: used to test whether a record is already under these keys.
    fn try_decrypt(
        &mut self,
        content_type: u8,
        record_version: u16,
        payload: &[u8],
    ) -> Result<Plain, DecryptError> {
        if self.is_tls13() && content_type != content::APPLICATION_DATA {
            return Err(DecryptError::NotProtected { content_type });
        }
        let seq = self.seq.ok_or(DecryptError::SequenceExhausted)?;
        let plain = self.open(seq, content_type, record_version, payload)?;
        self.seq = seq.checked_add(1);
        Ok(plain)
    }

    fn open(
        &self,
        seq: u64,
        content_type: u8,
        record_version: u16,
        payload: &[u8],
    ) -> Result<Plain, DecryptError> {
        let (max, min) = match self.framing {
            // At least the inner content type byte and the tag.
            Framing::Tls13 { .. } => (TLS13_MAX_CIPHERTEXT, TAG_LEN.saturating_add(1)),
            Framing::Tls12Gcm { .. } => (
                TLS12_MAX_CIPHERTEXT,
                GCM_EXPLICIT_NONCE_LEN.saturating_add(TAG_LEN),
            ),
            Framing::Tls12ChaCha { .. } => (TLS12_MAX_CIPHERTEXT, TAG_LEN),
        };
        if payload.len() > max {
            return Err(DecryptError::RecordOverflow {
                len: payload.len(),
                max,
            });
        }
        if payload.len() < min {
            return Err(DecryptError::TooShort {
                need: min,
                have: payload.len(),
            });
        }
        let failed = DecryptError::AuthenticationFailed { seq };
        match &self.framing {
            Framing::Tls13 { iv, header_aad, .. } => {
                // RFC 8446 5.2: additional_data = opaque_type || legacy_record_version || length.
                let len = u16::try_from(payload.len()).map_err(|_| failed.clone())?;
                let mut aad = Vec::with_capacity(5);
                if *header_aad {
                    aad.push(content_type);
                    aad.extend_from_slice(&record_version.to_be_bytes());
                    aad.extend_from_slice(&len.to_be_bytes());
                }
                let mut inner = self
                    .cipher
                    .open(xor_nonce(iv, seq), &aad, payload)
                    .ok_or(failed)?;
                // RFC 8446 5.4: the content type is the last non-zero byte; zeros after it are
                // padding.
                let end = inner
                    .iter()
                    .rposition(|&b| b != 0)
                    .ok_or(DecryptError::MissingContentType { seq })?;
                let inner_type = inner.get(end).copied().unwrap_or_default();
                inner.truncate(end);
                Ok(Plain {
                    content_type: inner_type,
                    data: inner,
                })
            }
            Framing::Tls12Gcm { salt } => {
                let (explicit, sealed) = payload
                    .split_at_checked(GCM_EXPLICIT_NONCE_LEN)
                    .ok_or(failed.clone())?;
                let mut nonce = [0u8; NONCE_LEN];
                for (n, b) in nonce.iter_mut().zip(salt.iter().chain(explicit)) {
                    *n = *b;
                }
                let aad = tls12_aad(seq, content_type, record_version, sealed.len())
                    .ok_or(failed.clone())?;
                let data = self.cipher.open(nonce, &aad, sealed).ok_or(failed)?;
                Ok(Plain { content_type, data })
            }
            Framing::Tls12ChaCha { iv } => {
                let aad = tls12_aad(seq, content_type, record_version, payload.len())
                    .ok_or(failed.clone())?;
                let data = self
                    .cipher
                    .open(xor_nonce(iv, seq), &aad, payload)
                    .ok_or(failed)?;
                Ok(Plain { content_type, data })
            }
        }
    }

    /// TLS 1.3 KeyUpdate (RFC 8446 4.6.3, 7.2): the next traffic secret, its key and IV, and
    /// sequence number 0. Call it after decrypting a record that ends with a KeyUpdate of this
    /// direction ([`DirectionDecryptor`] does).
    pub fn update_keys(&mut self) -> Result<(), KeyError> {
        let Framing::Tls13 { iv, secret, .. } = &mut self.framing else {
            return Err(KeyError::NotTls13);
        };
        let next = tls13_next_traffic_secret(self.suite.hash, secret)?;
        let TrafficKeys { key, iv: next_iv } = tls13_traffic_keys(self.suite, &next)?;
        self.cipher = Cipher::new(self.suite.aead, &key)?;
        *iv = fixed_iv(&next_iv)?;
        *secret = next;
        self.seq = Some(0);
        self.key_updates = self.key_updates.saturating_add(1);
        Ok(())
    }

    /// Test support: the record body the sender would write for `plain` at the next sequence
    /// number (TLS 1.3: no padding; TLS 1.2 GCM: explicit nonce = sequence number, as OpenSSL
    /// and Go do).
    #[cfg(test)]
    pub(crate) fn seal(&mut self, content_type: u8, record_version: u16, plain: &[u8]) -> Vec<u8> {
        let seq = self.seq.unwrap();
        self.seq = seq.checked_add(1);
        match &self.framing {
            Framing::Tls13 { iv, header_aad, .. } => {
                let mut inner = plain.to_vec();
                inner.push(content_type);
                let len = (inner.len() + TAG_LEN) as u16;
                let mut aad = vec![];
                if *header_aad {
                    aad.push(content::APPLICATION_DATA);
                    aad.extend_from_slice(&record_version.to_be_bytes());
                    aad.extend_from_slice(&len.to_be_bytes());
                }
                self.cipher.seal(xor_nonce(iv, seq), &aad, &inner)
            }
            Framing::Tls12Gcm { salt } => {
                let mut nonce = [0u8; NONCE_LEN];
                nonce[..4].copy_from_slice(salt);
                nonce[4..].copy_from_slice(&seq.to_be_bytes());
                let aad =
                    tls12_aad(seq, content_type, record_version, plain.len() + TAG_LEN).unwrap();
                let mut out = seq.to_be_bytes().to_vec();
                out.extend(self.cipher.seal(nonce, &aad, plain));
                out
            }
            Framing::Tls12ChaCha { iv } => {
                let aad =
                    tls12_aad(seq, content_type, record_version, plain.len() + TAG_LEN).unwrap();
                self.cipher.seal(xor_nonce(iv, seq), &aad, plain)
            }
        }
    }
}

/// RFC 5246 6.2.3.3: `additional_data = seq_num + TLSCompressed.type + TLSCompressed.version +
/// TLSCompressed.length`, the length being the plaintext's (`sealed` minus the tag).
fn tls12_aad(seq: u64, content_type: u8, version: u16, sealed_len: usize) -> Option<Vec<u8>> {
    let plain_len = u16::try_from(sealed_len.checked_sub(TAG_LEN)?).ok()?;
    let mut aad = Vec::with_capacity(13);
    aad.extend_from_slice(&seq.to_be_bytes());
    aad.push(content_type);
    aad.extend_from_slice(&version.to_be_bytes());
    aad.extend_from_slice(&plain_len.to_be_bytes());
    Some(aad)
}

fn fixed_iv(iv: &[u8]) -> Result<[u8; NONCE_LEN], KeyError> {
    iv.try_into().map_err(|_| KeyError::BadLength {
        what: "IV",
        need: NONCE_LEN,
        have: iv.len(),
    })
}

/// Handshake message boundaries in a stream of decrypted handshake bytes: the 4-byte headers
/// are read (RFC 8446 4), bodies are skipped by length, never buffered.
#[derive(Clone, Debug, Default)]
struct HandshakeScanner {
    header: [u8; 4],
    header_len: usize,
    body_left: usize,
}

impl HandshakeScanner {
    /// Feeds handshake bytes; calls `done` with the type of every message that completes.
    fn push(&mut self, mut data: &[u8], mut done: impl FnMut(u8)) {
        while !data.is_empty() {
            if self.header_len < 4 {
                let want = 4usize.saturating_sub(self.header_len);
                let (take, rest) = data.split_at_checked(want).unwrap_or((data, &[]));
                for (slot, b) in self.header.iter_mut().skip(self.header_len).zip(take) {
                    *slot = *b;
                }
                self.header_len = self.header_len.saturating_add(take.len());
                data = rest;
                if self.header_len < 4 {
                    return;
                }
                let [kind, a, b, c] = self.header;
                self.body_left = usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c);
                if self.body_left == 0 {
                    self.header_len = 0;
                    done(kind);
                }
                continue;
            }
            let skip = self.body_left.min(data.len());
            data = data.get(skip..).unwrap_or_default();
            self.body_left = self.body_left.saturating_sub(skip);
            if self.body_left == 0 {
                self.header_len = 0;
                let [kind, ..] = self.header;
                done(kind);
            }
        }
    }
}

/// Where a direction's protected records are (module documentation, "Phases").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// TLS 1.2: before this side's ChangeCipherSpec; records are in the clear.
    Clear,
    /// TLS 1.3 client: 0-RTT data under the early traffic secret.
    Early,
    /// TLS 1.3: the encrypted handshake flight.
    Handshake,
    /// Application data (TLS 1.3 traffic secret N; TLS 1.2 after ChangeCipherSpec).
    Application,
}

/// Counters of one direction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirectionStats {
    /// Records decrypted.
    pub decrypted: u64,
    /// Protected records that did not decrypt ([`DecryptError::is_failure`]).
    pub failed: u64,
    /// Records in the clear.
    pub clear: u64,
    /// Protected records for which the key log had no keys.
    pub no_keys: u64,
    /// TLS 1.3 key updates followed.
    pub key_updates: u64,
}

/// One direction of a connection, fed every record of that direction in order from its first
/// (the ClientHello or ServerHello included): says which records are in the clear, decrypts
/// the others under the right keys, and follows the key changes (module documentation).
#[derive(Clone, Debug)]
pub struct DirectionDecryptor {
    tls13: bool,
    phase: Phase,
    early: Option<RecordDecryptor>,
    handshake: Option<RecordDecryptor>,
    application: Option<RecordDecryptor>,
    scanner: HandshakeScanner,
    stats: DirectionStats,
}

impl DirectionDecryptor {
    /// TLS 1.2: records in the clear until this side's ChangeCipherSpec, then `keys`.
    pub fn tls12(keys: RecordDecryptor) -> Self {
        DirectionDecryptor {
            tls13: false,
            phase: Phase::Clear,
            early: None,
            handshake: None,
            application: Some(keys),
            scanner: HandshakeScanner::default(),
            stats: DirectionStats::default(),
        }
    }

    /// TLS 1.3 with whichever keys the key log gave. Starts in [`Phase::Early`] when there
    /// are early keys (client side with 0-RTT), else [`Phase::Handshake`].
    pub fn tls13(
        early: Option<RecordDecryptor>,
        handshake: Option<RecordDecryptor>,
        application: Option<RecordDecryptor>,
    ) -> Self {
        DirectionDecryptor {
            tls13: true,
            phase: if early.is_some() {
                Phase::Early
            } else {
                Phase::Handshake
            },
            early,
            handshake,
            application,
            scanner: HandshakeScanner::default(),
            stats: DirectionStats::default(),
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn stats(&self) -> &DirectionStats {
        &self.stats
    }

    /// The decryptor for application data (TLS 1.3 `*_TRAFFIC_SECRET_N`, TLS 1.2 key block).
    pub fn application(&self) -> Option<&RecordDecryptor> {
        self.application.as_ref()
    }

    /// TLS 1.3: the handshake traffic decryptor.
    pub fn handshake(&self) -> Option<&RecordDecryptor> {
        self.handshake.as_ref()
    }

    /// TLS 1.3 client: the 0-RTT decryptor.
    pub fn early(&self) -> Option<&RecordDecryptor> {
        self.early.as_ref()
    }

    /// The next record of this direction (header fields and body). `Ok(None)`: the record is
    /// in the clear, read it as it is. `Err`: see [`DecryptError::is_failure`].
    pub fn decrypt(
        &mut self,
        content_type: u8,
        record_version: u16,
        payload: &[u8],
    ) -> Result<Option<Plain>, DecryptError> {
        let result = if self.tls13 {
            self.decrypt_tls13(content_type, record_version, payload)
        } else {
            self.decrypt_tls12(content_type, record_version, payload)
        };
        match &result {
            Ok(Some(_)) => self.stats.decrypted = self.stats.decrypted.saturating_add(1),
            Ok(None) => self.stats.clear = self.stats.clear.saturating_add(1),
            Err(DecryptError::NoKeys) => self.stats.no_keys = self.stats.no_keys.saturating_add(1),
            Err(e) if e.is_failure() => self.stats.failed = self.stats.failed.saturating_add(1),
            Err(_) => {}
        }
        result
    }

    fn decrypt_tls12(
        &mut self,
        content_type: u8,
        record_version: u16,
        payload: &[u8],
    ) -> Result<Option<Plain>, DecryptError> {
        if self.phase == Phase::Clear {
            // RFC 5246 7.1: the records after this side's ChangeCipherSpec are protected.
            if content_type == content::CHANGE_CIPHER_SPEC {
                self.phase = Phase::Application;
            }
            return Ok(None);
        }
        let keys = self.application.as_mut().ok_or(DecryptError::NoKeys)?;
        keys.decrypt(content_type, record_version, payload)
            .map(Some)
    }

    fn decrypt_tls13(
        &mut self,
        content_type: u8,
        record_version: u16,
        payload: &[u8],
    ) -> Result<Option<Plain>, DecryptError> {
        // RFC 8446 5: only application_data records are protected.
        if content_type != content::APPLICATION_DATA {
            return Ok(None);
        }
        let (current, next) = match self.phase {
            Phase::Early => (&mut self.early, Some(&mut self.handshake)),
            Phase::Handshake => (&mut self.handshake, Some(&mut self.application)),
            Phase::Clear | Phase::Application => (&mut self.application, None),
        };
        let attempt = match current.as_mut() {
            Some(keys) => keys.decrypt(content_type, record_version, payload),
            None => Err(DecryptError::NoKeys),
        };
        let (plain, phase) = match attempt {
            Ok(plain) => (plain, self.phase),
            Err(err) => {
                // A missed switch point: the record may be under the next keys already.
                let retry = next
                    .and_then(|keys| keys.as_mut())
                    .map(|keys| keys.try_decrypt(content_type, record_version, payload));
                match retry {
                    Some(Ok(plain)) => {
                        let phase = match self.phase {
                            Phase::Early => Phase::Handshake,
                            _ => Phase::Application,
                        };
                        self.phase = phase;
                        self.scanner = HandshakeScanner::default();
                        (plain, phase)
                    }
                    _ => return Err(err),
                }
            }
        };
        if plain.content_type == content::HANDSHAKE {
            let mut ends_phase = false;
            let mut key_updates = 0u32;
            self.scanner.push(&plain.data, |kind| match (phase, kind) {
                (Phase::Early, END_OF_EARLY_DATA) | (Phase::Handshake, handshake::FINISHED) => {
                    ends_phase = true
                }
                (Phase::Application, KEY_UPDATE) => key_updates = key_updates.saturating_add(1),
                _ => {}
            });
            if ends_phase {
                self.phase = match phase {
                    Phase::Early => Phase::Handshake,
                    _ => Phase::Application,
                };
                self.scanner = HandshakeScanner::default();
            }
            for _ in 0..key_updates {
                let updated = self.application.as_mut().map(|keys| keys.update_keys());
                if let Some(Err(_)) = updated {
                    // Cannot happen with a secret that already derived keys; without keys the
                    // next records report NoKeys rather than fail one by one.
                    self.application = None;
                }
                self.stats.key_updates = self.stats.key_updates.saturating_add(1);
            }
        }
        Ok(Some(plain))
    }
}

/// Both directions of one connection.
#[derive(Clone, Debug)]
pub struct SessionDecryptors {
    /// The negotiated version (ServerHello).
    pub version: u16,
    pub cipher_suite: u16,
    pub to_server: DirectionDecryptor,
    pub to_client: DirectionDecryptor,
}

impl SessionDecryptors {
    pub fn get_mut(&mut self, dir: Dir) -> &mut DirectionDecryptor {
        match dir {
            Dir::ToServer => &mut self.to_server,
            Dir::ToClient => &mut self.to_client,
        }
    }
}

/// Why a session cannot be decrypted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NoDecryption {
    #[error("no ClientHello seen")]
    NoClientHello,
    #[error("no ServerHello seen")]
    NoServerHello,
    #[error("the key log has no secrets for this connection's client random")]
    NotInKeyLog,
    #[error("the key log has no {0}")]
    MissingSecret(&'static str),
    #[error(transparent)]
    Keys(#[from] KeyError),
}

/// Both directions' decryptors for a session whose ClientHello and ServerHello were seen, from
/// the secrets logged under its client random.
///
/// TLS 1.3: early (client, when `CLIENT_EARLY_TRAFFIC_SECRET` is logged), handshake and
/// application decryptors from the logged traffic secrets; any may be missing (those records
/// then report [`DecryptError::NoKeys`]), but not all four handshake and application secrets.
/// TLS 1.2: the key block from the `CLIENT_RANDOM` master secret and both randoms.
pub fn session_decryptors(
    session: &TlsSession,
    keylog: &KeyLog,
) -> Result<SessionDecryptors, NoDecryption> {
    let client_hello = session
        .client_hello
        .as_ref()
        .ok_or(NoDecryption::NoClientHello)?;
    let server_hello = session
        .server_hello
        .as_ref()
        .ok_or(NoDecryption::NoServerHello)?;
    let version = server_hello.version;
    let suite = server_hello.cipher_suite;
    let secrets = keylog
        .get(&client_hello.random)
        .ok_or(NoDecryption::NotInKeyLog)?;
    let (to_server, to_client) = if is_tls13_version(version) {
        tls13_directions(version, suite, secrets)?
    } else if version == 0x0303 {
        let master = secrets
            .master_secret
            .as_deref()
            .ok_or(NoDecryption::MissingSecret("CLIENT_RANDOM master secret"))?;
        let cs = tls12_suite(suite).ok_or(KeyError::UnsupportedSuite(suite))?;
        let block = tls12_key_block(cs, master, &server_hello.random, &client_hello.random)?;
        (
            DirectionDecryptor::tls12(RecordDecryptor::tls12(suite, &block.client_write)?),
            DirectionDecryptor::tls12(RecordDecryptor::tls12(suite, &block.server_write)?),
        )
    } else {
        return Err(KeyError::UnsupportedVersion(version).into());
    };
    Ok(SessionDecryptors {
        version,
        cipher_suite: suite,
        to_server,
        to_client,
    })
}

fn tls13_directions(
    version: u16,
    suite: u16,
    secrets: &Secrets,
) -> Result<(DirectionDecryptor, DirectionDecryptor), NoDecryption> {
    // Version and suite first, so that they are reported rather than a missing secret.
    tls13_header_aad(version).ok_or(KeyError::UnsupportedVersion(version))?;
    tls13_suite(suite).ok_or(KeyError::UnsupportedSuite(suite))?;
    let make = |secret: &Option<Vec<u8>>| -> Result<Option<RecordDecryptor>, KeyError> {
        secret
            .as_deref()
            .map(|s| RecordDecryptor::tls13(version, suite, s))
            .transpose()
    };
    let c_hs = make(&secrets.client_handshake_traffic_secret)?;
    let s_hs = make(&secrets.server_handshake_traffic_secret)?;
    let c_ap = make(&secrets.client_traffic_secret_0)?;
    let s_ap = make(&secrets.server_traffic_secret_0)?;
    if c_hs.is_none() && s_hs.is_none() && c_ap.is_none() && s_ap.is_none() {
        return Err(NoDecryption::MissingSecret("TLS 1.3 traffic secret"));
    }
    // An early secret of another suite (0-RTT refused) fails to derive: no early keys then.
    let early = make(&secrets.client_early_traffic_secret).unwrap_or(None);
    Ok((
        DirectionDecryptor::tls13(early, c_hs, c_ap),
        DirectionDecryptor::tls13(None, s_hs, s_ap),
    ))
}

#[cfg(test)]
#[path = "decrypt_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "decrypt_corpus_tests.rs"]
mod corpus_tests;
