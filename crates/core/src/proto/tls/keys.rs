//! Key schedules: from a logged secret to the AEAD key and IV of one direction.
//!
//! - TLS 1.3 (RFC 8446 7.1, 7.2, 7.3): `HKDF-Expand-Label`, `[sender]_write_key` /
//!   `[sender]_write_iv` from a traffic secret, and the KeyUpdate step
//!   `application_traffic_secret_N+1 = HKDF-Expand-Label(secret, "traffic upd", "", Hash.length)`.
//!   The key log already holds the traffic secrets, so nothing before them (ECDHE, transcript
//!   hashes) is computed here.
//! - TLS 1.2 (RFC 5246 5, 6.3): the PRF (P_SHA256 or P_SHA384) and the key block
//!   `PRF(master_secret, "key expansion", server_random + client_random)`. The key log holds
//!   the master secret; the extended master secret (RFC 7627 4) changes only how that master
//!   secret was derived (from the session hash), not the key block, so it needs nothing here.
//!
//! AEAD suites only: AES-128-GCM, AES-256-GCM (RFC 5288, RFC 8446 B.4) and
//! ChaCha20-Poly1305 (RFC 7905, RFC 8446 B.4). CBC, CCM, RC4 and 3DES suites are not
//! supported ([`KeyError::UnsupportedSuite`]).

use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Sha256, Sha384};

/// The hash of a suite (TLS 1.3 HKDF hash, TLS 1.2 PRF hash).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashAlg {
    Sha256,
    Sha384,
}

impl HashAlg {
    /// Hash.length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
        }
    }
}

/// The record protection algorithm of a suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AeadAlg {
    Aes128Gcm,
    Aes256Gcm,
    ChaCha20Poly1305,
}

impl AeadAlg {
    pub fn key_len(self) -> usize {
        match self {
            AeadAlg::Aes128Gcm => 16,
            AeadAlg::Aes256Gcm | AeadAlg::ChaCha20Poly1305 => 32,
        }
    }
}

/// Bytes of every AEAD nonce used here (RFC 8446 5.3: iv_length 12; RFC 5288 3; RFC 7905 2).
pub const NONCE_LEN: usize = 12;
/// Bytes of every AEAD tag used here (GCM and Poly1305).
pub const TAG_LEN: usize = 16;
/// TLS 1.2 AES-GCM: the implicit part of the nonce from the key block (RFC 5288 3: `salt`).
pub const GCM_FIXED_IV_LEN: usize = 4;
/// TLS 1.2 AES-GCM: the explicit part sent before each record's ciphertext (RFC 5288 3).
pub const GCM_EXPLICIT_NONCE_LEN: usize = 8;

/// A cipher suite this module can decrypt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CipherSuite {
    /// IANA TLS Cipher Suites registry value.
    pub id: u16,
    pub aead: AeadAlg,
    pub hash: HashAlg,
}

/// The TLS 1.3 suites of RFC 8446 B.4 that are AEADs supported here (CCM suites are not).
pub fn tls13_suite(id: u16) -> Option<CipherSuite> {
    let (aead, hash) = match id {
        0x1301 => (AeadAlg::Aes128Gcm, HashAlg::Sha256),
        0x1302 => (AeadAlg::Aes256Gcm, HashAlg::Sha384),
        0x1303 => (AeadAlg::ChaCha20Poly1305, HashAlg::Sha256),
        _ => return None,
    };
    Some(CipherSuite { id, aead, hash })
}

/// The TLS 1.2 AEAD suites supported here, whatever their key exchange (ECDHE, DHE, RSA, PSK:
/// the key block depends only on the master secret, which the key log gives). AES-GCM:
/// RFC 5288, RFC 5289, RFC 5487, RFC 8442 (the PRF hash is the suite's, RFC 5288 3); ChaCha20:
/// RFC 7905 (all SHA-256).
pub fn tls12_suite(id: u16) -> Option<CipherSuite> {
    let (aead, hash) = match id {
        // *_WITH_AES_128_GCM_SHA256: RSA, DHE_RSA, DH_RSA, DHE_DSS, DH_DSS, DH_anon, PSK,
        // DHE_PSK, RSA_PSK, ECDHE_ECDSA, ECDH_ECDSA, ECDHE_RSA, ECDH_RSA, ECDHE_PSK.
        0x009c | 0x009e | 0x00a0 | 0x00a2 | 0x00a4 | 0x00a6 | 0x00a8 | 0x00aa | 0x00ac | 0xc02b
        | 0xc02d | 0xc02f | 0xc031 | 0xd001 => (AeadAlg::Aes128Gcm, HashAlg::Sha256),
        // *_WITH_AES_256_GCM_SHA384, same key exchanges.
        0x009d | 0x009f | 0x00a1 | 0x00a3 | 0x00a5 | 0x00a7 | 0x00a9 | 0x00ab | 0x00ad | 0xc02c
        | 0xc02e | 0xc030 | 0xc032 | 0xd002 => (AeadAlg::Aes256Gcm, HashAlg::Sha384),
        // *_WITH_CHACHA20_POLY1305_SHA256: ECDHE_RSA, ECDHE_ECDSA, DHE_RSA, PSK, ECDHE_PSK,
        // DHE_PSK, RSA_PSK.
        0xcca8..=0xccae => (AeadAlg::ChaCha20Poly1305, HashAlg::Sha256),
        _ => return None,
    };
    Some(CipherSuite { id, aead, hash })
}

/// Why keys could not be derived.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("cipher suite 0x{0:04x} is not supported for decryption")]
    UnsupportedSuite(u16),
    #[error("version 0x{0:04x} is not supported for decryption")]
    UnsupportedVersion(u16),
    #[error("{what} is {have} bytes, expected {need}")]
    BadLength {
        what: &'static str,
        need: usize,
        have: usize,
    },
    /// KeyUpdate asked of a TLS 1.2 decryptor (RFC 8446 4.6.3 is TLS 1.3 only).
    #[error("key update is TLS 1.3 only")]
    NotTls13,
}

/// RFC 8446 7.1: `HKDF-Expand-Label(Secret, Label, Context, Length)` with the `"tls13 "`
/// prefix. `secret` must be at least Hash.length (RFC 5869 2.3: a PRK).
pub fn hkdf_expand_label(
    hash: HashAlg,
    secret: &[u8],
    label: &[u8],
    context: &[u8],
    len: usize,
) -> Result<Vec<u8>, KeyError> {
    const PREFIX: &[u8] = b"tls13 ";
    let too_long = |what| KeyError::BadLength {
        what,
        need: 255,
        have: usize::MAX,
    };
    // struct { uint16 length; opaque label<7..255>; opaque context<0..255>; } HkdfLabel
    let out_len = u16::try_from(len).map_err(|_| too_long("output"))?;
    let label_len =
        u8::try_from(PREFIX.len().saturating_add(label.len())).map_err(|_| too_long("label"))?;
    let context_len = u8::try_from(context.len()).map_err(|_| too_long("context"))?;
    let mut info = Vec::with_capacity(label.len().saturating_add(context.len()).saturating_add(10));
    info.extend_from_slice(&out_len.to_be_bytes());
    info.push(label_len);
    info.extend_from_slice(PREFIX);
    info.extend_from_slice(label);
    info.push(context_len);
    info.extend_from_slice(context);
    let mut out = vec![0u8; len];
    let bad_secret = KeyError::BadLength {
        what: "secret",
        need: hash.output_len(),
        have: secret.len(),
    };
    let expanded = match hash {
        HashAlg::Sha256 => Hkdf::<Sha256>::from_prk(secret)
            .map_err(|_| bad_secret.clone())?
            .expand(&info, &mut out),
        HashAlg::Sha384 => Hkdf::<Sha384>::from_prk(secret)
            .map_err(|_| bad_secret.clone())?
            .expand(&info, &mut out),
    };
    // HKDF-Expand gives at most 255 * Hash.length bytes (RFC 5869 2.3).
    expanded.map_err(|_| KeyError::BadLength {
        what: "output",
        need: hash.output_len().saturating_mul(255),
        have: len,
    })?;
    Ok(out)
}

/// One direction's record protection key and IV. For TLS 1.3 and TLS 1.2 ChaCha20 the IV is
/// the 12-byte per-connection IV XORed with the sequence number (RFC 8446 5.3, RFC 7905 2);
/// for TLS 1.2 AES-GCM it is the 4-byte salt before each record's explicit nonce (RFC 5288 3).
#[derive(Clone, PartialEq, Eq)]
pub struct TrafficKeys {
    pub key: Vec<u8>,
    pub iv: Vec<u8>,
}

impl std::fmt::Debug for TrafficKeys {
    // Keys stay out of logs and panic messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "TrafficKeys {{ key: {} bytes, iv: {} bytes }}",
            self.key.len(),
            self.iv.len()
        )
    }
}

/// Checks that a TLS 1.3 secret has the suite's Hash.length (a secret logged for another
/// suite, or a truncated line, must not be expanded into plausible-looking keys).
fn check_secret_len(hash: HashAlg, secret: &[u8]) -> Result<(), KeyError> {
    if secret.len() != hash.output_len() {
        return Err(KeyError::BadLength {
            what: "traffic secret",
            need: hash.output_len(),
            have: secret.len(),
        });
    }
    Ok(())
}

/// RFC 8446 7.3: `write_key = HKDF-Expand-Label(Secret, "key", "", key_length)`,
/// `write_iv = HKDF-Expand-Label(Secret, "iv", "", iv_length)`.
pub fn tls13_traffic_keys(suite: CipherSuite, secret: &[u8]) -> Result<TrafficKeys, KeyError> {
    check_secret_len(suite.hash, secret)?;
    Ok(TrafficKeys {
        key: hkdf_expand_label(suite.hash, secret, b"key", b"", suite.aead.key_len())?,
        iv: hkdf_expand_label(suite.hash, secret, b"iv", b"", NONCE_LEN)?,
    })
}

/// RFC 8446 7.2: the traffic secret after a KeyUpdate.
pub fn tls13_next_traffic_secret(hash: HashAlg, secret: &[u8]) -> Result<Vec<u8>, KeyError> {
    check_secret_len(hash, secret)?;
    hkdf_expand_label(hash, secret, b"traffic upd", b"", hash.output_len())
}

/// RFC 5246 5: `PRF(secret, label, seed) = P_<hash>(secret, label + seed)`, `len` bytes.
pub fn tls12_prf(hash: HashAlg, secret: &[u8], label: &[u8], seed: &[u8], len: usize) -> Vec<u8> {
    match hash {
        HashAlg::Sha256 => p_hash::<Hmac<Sha256>>(secret, label, seed, len),
        HashAlg::Sha384 => p_hash::<Hmac<Sha384>>(secret, label, seed, len),
    }
}

/// RFC 5246 5: `A(0) = seed`, `A(i) = HMAC(secret, A(i-1))`, output
/// `HMAC(secret, A(1) + seed) + HMAC(secret, A(2) + seed) + ...` cut to `len`.
fn p_hash<M: Mac + KeyInit + Clone>(
    secret: &[u8],
    label: &[u8],
    seed: &[u8],
    len: usize,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    // HMAC takes a key of any length (RFC 2104 2), so this never fails.
    let Ok(keyed) = <M as KeyInit>::new_from_slice(secret) else {
        return out;
    };
    let mut a = {
        let mut m = keyed.clone();
        m.update(label);
        m.update(seed);
        m.finalize().into_bytes()
    };
    while out.len() < len {
        let mut m = keyed.clone();
        m.update(&a);
        m.update(label);
        m.update(seed);
        let block = m.finalize().into_bytes();
        let want = len.saturating_sub(out.len()).min(block.len());
        out.extend_from_slice(block.get(..want).unwrap_or_default());
        let mut m = keyed.clone();
        m.update(&a);
        a = m.finalize().into_bytes();
    }
    out
}

/// The parts of a TLS 1.2 key block an AEAD suite uses (RFC 5246 6.3; AEAD suites have no MAC
/// keys, RFC 5246 6.2.3.3).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Tls12KeyBlock {
    pub client_write: TrafficKeys,
    pub server_write: TrafficKeys,
}

/// RFC 5246 6.3: `key_block = PRF(master_secret, "key expansion", server_random +
/// client_random)`, cut into client_write_key, server_write_key, client_write_IV,
/// server_write_IV (fixed_iv_length 4 for AES-GCM, RFC 5288 3; 12 for ChaCha20, RFC 7905 2).
pub fn tls12_key_block(
    suite: CipherSuite,
    master_secret: &[u8],
    server_random: &[u8],
    client_random: &[u8],
) -> Result<Tls12KeyBlock, KeyError> {
    if master_secret.len() != super::keylog::MASTER_SECRET_LEN {
        return Err(KeyError::BadLength {
            what: "master secret",
            need: super::keylog::MASTER_SECRET_LEN,
            have: master_secret.len(),
        });
    }
    for (what, random) in [
        ("server random", server_random),
        ("client random", client_random),
    ] {
        if random.len() != 32 {
            return Err(KeyError::BadLength {
                what,
                need: 32,
                have: random.len(),
            });
        }
    }
    let key_len = suite.aead.key_len();
    let iv_len = match suite.aead {
        AeadAlg::Aes128Gcm | AeadAlg::Aes256Gcm => GCM_FIXED_IV_LEN,
        AeadAlg::ChaCha20Poly1305 => NONCE_LEN,
    };
    let mut seed = Vec::with_capacity(64);
    seed.extend_from_slice(server_random);
    seed.extend_from_slice(client_random);
    let total = key_len.saturating_add(iv_len).saturating_mul(2);
    let block = tls12_prf(suite.hash, master_secret, b"key expansion", &seed, total);
    let mut parts = Vec::with_capacity(4);
    let mut rest = block.as_slice();
    for n in [key_len, key_len, iv_len, iv_len] {
        let (part, tail) = rest.split_at_checked(n).unwrap_or((rest, &[]));
        parts.push(part.to_vec());
        rest = tail;
    }
    let [ck, sk, civ, siv]: [Vec<u8>; 4] = parts.try_into().unwrap_or_default();
    Ok(Tls12KeyBlock {
        client_write: TrafficKeys { key: ck, iv: civ },
        server_write: TrafficKeys { key: sk, iv: siv },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::tls::keylog::decode_hex;

    pub(crate) fn h(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        decode_hex(&s).unwrap()
    }

    /// RFC 8448 3 (Simple 1-RTT Handshake): the server and client handshake traffic secrets
    /// and the keys and IVs the RFC derives from them.
    #[test]
    fn rfc8448_handshake_keys() {
        let suite = tls13_suite(0x1301).unwrap();
        let s_hs = h("b6 7b 7d 69 0c c1 6c 4e 75 e5 42 13 cb 2d 37 b4 e9 c9 12 bc de d9 10 5d 42 be fd 59 d3 91 ad 38");
        let keys = tls13_traffic_keys(suite, &s_hs).unwrap();
        assert_eq!(
            keys.key,
            h("3f ce 51 60 09 c2 17 27 d0 f2 e4 e8 6e e4 03 bc")
        );
        assert_eq!(keys.iv, h("5d 31 3e b2 67 12 76 ee 13 00 0b 30"));
        let c_hs = h("b3 ed db 12 6e 06 7f 35 a7 80 b3 ab f4 5e 2d 8f 3b 1a 95 07 38 f5 2e 96 00 74 6a 0e 27 a5 5a 21");
        let keys = tls13_traffic_keys(suite, &c_hs).unwrap();
        assert_eq!(
            keys.key,
            h("db fa a6 93 d1 76 2c 5b 66 6a f5 d9 50 25 8d 01")
        );
        assert_eq!(keys.iv, h("5b d3 c7 1b 83 6e 0b 76 bb 73 26 5f"));
    }

    /// RFC 8448 3: application traffic keys of both sides.
    #[test]
    fn rfc8448_application_keys() {
        let suite = tls13_suite(0x1301).unwrap();
        let s_ap = h("a1 1a f9 f0 55 31 f8 56 ad 47 11 6b 45 a9 50 32 82 04 b4 f4 4b fb 6b 3a 4b 4f 1f 3f cb 63 16 43");
        let keys = tls13_traffic_keys(suite, &s_ap).unwrap();
        assert_eq!(
            keys.key,
            h("9f 02 28 3b 6c 9c 07 ef c2 6b b9 f2 ac 92 e3 56")
        );
        assert_eq!(keys.iv, h("cf 78 2b 88 dd 83 54 9a ad f1 e9 84"));
        let c_ap = h("9e 40 64 6c e7 9a 7f 9d c0 5a f8 88 9b ce 65 52 87 5a fa 0b 06 df 00 87 f7 92 eb b7 c1 75 04 a5");
        let keys = tls13_traffic_keys(suite, &c_ap).unwrap();
        assert_eq!(
            keys.key,
            h("17 42 2d da 59 6e d5 d9 ac d8 90 e3 c6 3f 50 51")
        );
        assert_eq!(keys.iv, h("5b 78 92 3d ee 08 57 90 33 e5 23 d9"));
    }

    /// RFC 8448 3 shows the HkdfLabel bytes: `00 10 09 "tls13 key" 00` for the key.
    #[test]
    fn expand_label_is_rfc8446_hkdf_expand() {
        let secret = [7u8; 32];
        let mut direct = [0u8; 16];
        Hkdf::<Sha256>::from_prk(&secret)
            .unwrap()
            .expand(&h("00 10 09 74 6c 73 31 33 20 6b 65 79 00"), &mut direct)
            .unwrap();
        assert_eq!(
            hkdf_expand_label(HashAlg::Sha256, &secret, b"key", b"", 16).unwrap(),
            direct
        );
        // "traffic upd" is the same construction with Hash.length output.
        let mut upd = [0u8; 32];
        let mut info = vec![0x00, 0x20, 17];
        info.extend_from_slice(b"tls13 traffic upd");
        info.push(0);
        Hkdf::<Sha256>::from_prk(&secret)
            .unwrap()
            .expand(&info, &mut upd)
            .unwrap();
        assert_eq!(
            tls13_next_traffic_secret(HashAlg::Sha256, &secret).unwrap(),
            upd
        );
    }

    #[test]
    fn secret_of_the_wrong_length_is_refused() {
        let sha384 = tls13_suite(0x1302).unwrap();
        assert_eq!(
            tls13_traffic_keys(sha384, &[1u8; 32]),
            Err(KeyError::BadLength {
                what: "traffic secret",
                need: 48,
                have: 32
            })
        );
        assert!(tls13_next_traffic_secret(HashAlg::Sha256, &[1u8; 48]).is_err());
        assert!(hkdf_expand_label(HashAlg::Sha256, &[1u8; 31], b"key", b"", 16).is_err());
        assert!(hkdf_expand_label(HashAlg::Sha256, &[1u8; 32], b"key", b"", 255 * 32 + 1).is_err());
        let gcm = tls12_suite(0xc02f).unwrap();
        assert!(tls12_key_block(gcm, &[0u8; 47], &[0u8; 32], &[0u8; 32]).is_err());
        assert!(tls12_key_block(gcm, &[0u8; 48], &[0u8; 31], &[0u8; 32]).is_err());
    }

    /// The TLS 1.2 PRF test vector for P_SHA256 published on the IETF TLS list (and used by
    /// many implementations' tests): 100 bytes.
    #[test]
    fn tls12_prf_sha256_vector() {
        let out = tls12_prf(
            HashAlg::Sha256,
            &h("9bbe436ba940f017b17652849a71db35"),
            b"test label",
            &h("a0ba9f936cda311827a6f796ffd5198c"),
            100,
        );
        assert_eq!(
            out,
            h(
                "e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a
               6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab
               4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff701
               87347b66"
            )
        );
    }

    /// The companion P_SHA384 vector: 148 bytes.
    #[test]
    fn tls12_prf_sha384_vector() {
        let out = tls12_prf(
            HashAlg::Sha384,
            &h("b80b733d6ceefcdc71566ea48e5567df"),
            b"test label",
            &h("cd665cf6a8447dd6ff8b27555edb7465"),
            148,
        );
        assert_eq!(
            out,
            h(
                "7b0c18e9ced410ed1804f2cfa34a336a1c14dffb4900bb5fd7942107e81c83cd
               e9ca0faa60be9fe34f82b1233c9146a0e534cb400fed2700884f9dc236f80edd
               8bfa961144c9e8d792eca722a7b32fc3d416d473ebc2c5fd4abfdad05d918425
               9b5bf8cd4d90fa0d31e2dec479e4f1a26066f2eea9a69236a3e52655c9e9aee6
               91c8f3a26854308d5eaa3be85e0990703d73e56f"
            )
        );
    }

    #[test]
    fn tls12_key_block_layout() {
        let ms = [0x42u8; 48];
        let (sr, cr) = ([1u8; 32], [2u8; 32]);
        let mut seed = sr.to_vec();
        seed.extend_from_slice(&cr);
        // AES-128-GCM: 16 + 16 + 4 + 4 bytes in that order.
        let gcm = tls12_suite(0xc02f).unwrap();
        let block = tls12_prf(HashAlg::Sha256, &ms, b"key expansion", &seed, 40);
        let kb = tls12_key_block(gcm, &ms, &sr, &cr).unwrap();
        assert_eq!(kb.client_write.key, block[0..16]);
        assert_eq!(kb.server_write.key, block[16..32]);
        assert_eq!(kb.client_write.iv, block[32..36]);
        assert_eq!(kb.server_write.iv, block[36..40]);
        // AES-256-GCM uses the SHA-384 PRF: 32 + 32 + 4 + 4.
        let gcm256 = tls12_suite(0xc030).unwrap();
        let block = tls12_prf(HashAlg::Sha384, &ms, b"key expansion", &seed, 72);
        let kb = tls12_key_block(gcm256, &ms, &sr, &cr).unwrap();
        assert_eq!(kb.server_write.key, block[32..64]);
        assert_eq!(kb.server_write.iv, block[68..72]);
        // ChaCha20: 32 + 32 + 12 + 12.
        let chacha = tls12_suite(0xcca8).unwrap();
        let block = tls12_prf(HashAlg::Sha256, &ms, b"key expansion", &seed, 88);
        let kb = tls12_key_block(chacha, &ms, &sr, &cr).unwrap();
        assert_eq!(kb.client_write.iv, block[64..76]);
        assert_eq!(kb.server_write.iv, block[76..88]);
    }

    #[test]
    fn suite_tables() {
        assert_eq!(tls13_suite(0x1303).unwrap().aead, AeadAlg::ChaCha20Poly1305);
        assert_eq!(tls13_suite(0x1304), None); // CCM
        assert_eq!(tls12_suite(0xc02c).unwrap().hash, HashAlg::Sha384);
        assert_eq!(tls12_suite(0xccab).unwrap().aead, AeadAlg::ChaCha20Poly1305);
        assert_eq!(tls12_suite(0xc013), None); // CBC
        assert_eq!(tls12_suite(0x1301), None);
    }
}
