//! Keyed decryption fed arbitrary records: a fixed key log, a ClientHello and ServerHello
//! written by the harness (TLS 1.3, a TLS 1.3 draft or TLS 1.2, any supported suite), then an
//! arbitrary sequence of records (the `arbitrary` crate) that the harness seals with the keys
//! the key log gives (early, handshake or application keys of either side, key updates, TLS 1.2
//! after a ChangeCipherSpec), records in the clear, raw bytes, gaps and ends. So the fuzzer
//! chooses the *plaintext* of protected records, and what `TlsConn` does after decryption
//! (phase switches, KeyUpdate, the TLS 1.3 Certificate, alerts, plaintext events) is reached,
//! not only the authentication failure every mutated ciphertext ends in.
#![no_main]

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes128Gcm, Aes256Gcm};
use arbitrary::Arbitrary;
use chacha20poly1305::ChaCha20Poly1305;
use libfuzzer_sys::fuzz_target;
use modtrace::flow::Dir;
use modtrace::proto::tls::keylog::KeyLog;
use modtrace::proto::tls::keys::{
    tls12_key_block, tls12_suite, tls13_next_traffic_secret, tls13_suite, tls13_traffic_keys,
    AeadAlg, CipherSuite, HashAlg,
};
use modtrace::proto::tls::TlsConn;
use modtrace::time::Ts;
use std::sync::OnceLock;

/// Client randoms of the fixed key log: which secrets each one has.
const R_SHA256: [u8; 32] = [0x11; 32];
const R_SHA384: [u8; 32] = [0x22; 32];
const R_TLS12: [u8; 32] = [0x33; 32];
/// Only the application secrets (a key log written after the handshake).
const R_APP_ONLY: [u8; 32] = [0x44; 32];
const SERVER_RANDOM: [u8; 32] = [0x55; 32];

const TLS13_LABELS: [&str; 5] = [
    "CLIENT_EARLY_TRAFFIC_SECRET",
    "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
    "SERVER_HANDSHAKE_TRAFFIC_SECRET",
    "CLIENT_TRAFFIC_SECRET_0",
    "SERVER_TRAFFIC_SECRET_0",
];

/// The fixed secret of a label: its index repeated, `len` bytes.
fn secret(label_index: usize, len: usize) -> Vec<u8> {
    vec![0xa0 + label_index as u8; len]
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn keylog() -> &'static KeyLog {
    static K: OnceLock<KeyLog> = OnceLock::new();
    K.get_or_init(|| {
        let mut text = String::new();
        for (random, len, labels) in [
            (R_SHA256, 32, 0..5),
            (R_SHA384, 48, 0..5),
            (R_APP_ONLY, 32, 3..5),
        ] {
            for i in labels {
                let line = format!(
                    "{} {} {}\n",
                    TLS13_LABELS[i],
                    hex(&random),
                    hex(&secret(i, len))
                );
                text.push_str(&line);
            }
        }
        text.push_str(&format!(
            "CLIENT_RANDOM {} {}\n",
            hex(&R_TLS12),
            hex(&secret(7, 48))
        ));
        KeyLog::parse(&text)
    })
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Version {
    Tls13,
    /// draft 28 (header as additional data) or draft 23 (none).
    Draft28,
    Draft23,
    Tls12,
}

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
enum KeySet {
    Early,
    Handshake,
    Application,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Inner {
    Handshake,
    ApplicationData,
    Alert,
    Other(u8),
}

#[derive(Arbitrary, Debug)]
enum Rec {
    /// A protected record whose plaintext is `data` (TLS 1.3: with inner type and `pad` zeros).
    Sealed {
        to_client: bool,
        keys: KeySet,
        inner: Inner,
        pad: u8,
        data: Vec<u8>,
    },
    /// A protected handshake message (type and body, the 4-byte header written here).
    SealedMessage {
        to_client: bool,
        keys: KeySet,
        msg_type: u8,
        body: Vec<u8>,
    },
    /// A protected Certificate message (TLS 1.3 layout, RFC 8446 4.4.2) holding these DER
    /// blobs, so the nested lengths are right and the chain is read.
    SealedCertificate {
        to_client: bool,
        keys: KeySet,
        certs: Vec<Vec<u8>>,
    },
    /// A record in the clear: ChangeCipherSpec, an alert, a handshake record, anything.
    Clear {
        to_client: bool,
        content_type: u8,
        data: Vec<u8>,
    },
    /// The sender moves to its next application secret (after sending a KeyUpdate).
    Rekey {
        to_client: bool,
    },
    Raw {
        to_client: bool,
        bytes: Vec<u8>,
    },
    Gap {
        to_client: bool,
        len: u16,
    },
    End {
        to_client: bool,
        reset: bool,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    version: Version,
    suite: u8,
    /// Sessions with only application secrets in the key log (TLS 1.3).
    app_only: bool,
    /// Record bytes are handed over split at this point (reassembly chunking).
    split: u8,
    records: Vec<Rec>,
}

enum Aead {
    Aes128(Box<Aes128Gcm>),
    Aes256(Box<Aes256Gcm>),
    ChaCha(Box<ChaCha20Poly1305>),
}

impl Aead {
    fn new(alg: AeadAlg, key: &[u8]) -> Aead {
        match alg {
            AeadAlg::Aes128Gcm => Aead::Aes128(Box::new(Aes128Gcm::new_from_slice(key).unwrap())),
            AeadAlg::Aes256Gcm => Aead::Aes256(Box::new(Aes256Gcm::new_from_slice(key).unwrap())),
            AeadAlg::ChaCha20Poly1305 => {
                Aead::ChaCha(Box::new(ChaCha20Poly1305::new_from_slice(key).unwrap()))
            }
        }
    }

    fn seal(&self, nonce: [u8; 12], aad: &[u8], buf: &mut Vec<u8>) {
        match self {
            Aead::Aes128(c) => c.encrypt_in_place(&nonce.into(), aad, buf),
            Aead::Aes256(c) => c.encrypt_in_place(&nonce.into(), aad, buf),
            Aead::ChaCha(c) => c.encrypt_in_place(&nonce.into(), aad, buf),
        }
        .unwrap();
    }
}

/// The sender's side of one direction under one key set.
struct Sealer {
    aead: Aead,
    iv: Vec<u8>,
    seq: u64,
    /// TLS 1.3: the traffic secret (for key updates).
    secret: Vec<u8>,
}

fn xor_nonce(iv: &[u8], seq: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n.copy_from_slice(iv);
    for (a, b) in n[4..].iter_mut().zip(seq.to_be_bytes()) {
        *a ^= b;
    }
    n
}

fn record(content_type: u8, version: u16, body: &[u8]) -> Vec<u8> {
    let mut r = vec![content_type];
    r.extend_from_slice(&version.to_be_bytes());
    r.extend_from_slice(&(body.len().min(u16::MAX as usize) as u16).to_be_bytes());
    r.extend_from_slice(body);
    r
}

fn handshake_message(msg_type: u8, body: &[u8]) -> Vec<u8> {
    let len = body.len().min(0xff_ffff) as u32;
    let mut m = vec![msg_type];
    m.extend_from_slice(&len.to_be_bytes()[1..]);
    m.extend_from_slice(body);
    m
}

fn client_hello(random: &[u8; 32], suite: u16, version: u16) -> Vec<u8> {
    let mut b = vec![0x03, 0x03];
    b.extend_from_slice(random);
    b.push(0); // session id
    b.extend_from_slice(&2u16.to_be_bytes());
    b.extend_from_slice(&suite.to_be_bytes());
    b.extend_from_slice(&[1, 0]); // compression: null
    let mut ext = Vec::new();
    // server_name "proxy.golang.org"
    let host = b"proxy.golang.org";
    ext.extend_from_slice(&0u16.to_be_bytes());
    ext.extend_from_slice(&(host.len() as u16 + 5).to_be_bytes());
    ext.extend_from_slice(&(host.len() as u16 + 3).to_be_bytes());
    ext.push(0);
    ext.extend_from_slice(&(host.len() as u16).to_be_bytes());
    ext.extend_from_slice(host);
    if version != 0x0303 {
        // supported_versions
        ext.extend_from_slice(&0x002bu16.to_be_bytes());
        ext.extend_from_slice(&3u16.to_be_bytes());
        ext.push(2);
        ext.extend_from_slice(&version.to_be_bytes());
    }
    b.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    b.extend_from_slice(&ext);
    record(22, 0x0301, &handshake_message(1, &b))
}

fn server_hello(suite: u16, version: u16) -> Vec<u8> {
    let mut b = vec![0x03, 0x03];
    b.extend_from_slice(&SERVER_RANDOM);
    b.push(0);
    b.extend_from_slice(&suite.to_be_bytes());
    b.push(0);
    let mut ext = Vec::new();
    if version != 0x0303 {
        ext.extend_from_slice(&0x002bu16.to_be_bytes());
        ext.extend_from_slice(&2u16.to_be_bytes());
        ext.extend_from_slice(&version.to_be_bytes());
    }
    b.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    b.extend_from_slice(&ext);
    record(22, 0x0303, &handshake_message(2, &b))
}

struct Session {
    tls13: bool,
    header_aad: bool,
    suite: CipherSuite,
    /// [dir][keyset]: dir 0 client, 1 server; keyset 0 early, 1 handshake, 2 application.
    sealers: [[Option<Sealer>; 3]; 2],
}

impl Session {
    fn new(version: u16, suite: CipherSuite, random: &[u8; 32]) -> Session {
        let mut sealers: [[Option<Sealer>; 3]; 2] = Default::default();
        if version == 0x0303 {
            let block = tls12_key_block(suite, &secret(7, 48), &SERVER_RANDOM, random).unwrap();
            for (d, keys) in [(0, block.client_write), (1, block.server_write)] {
                sealers[d][2] = Some(Sealer {
                    aead: Aead::new(suite.aead, &keys.key),
                    iv: keys.iv,
                    seq: 0,
                    secret: Vec::new(),
                });
            }
        } else {
            let len = match suite.hash {
                HashAlg::Sha256 => 32,
                HashAlg::Sha384 => 48,
            };
            // (dir, keyset, label index)
            for (d, k, label) in [(0, 0, 0), (0, 1, 1), (1, 1, 2), (0, 2, 3), (1, 2, 4)] {
                let s = secret(label, len);
                let keys = tls13_traffic_keys(suite, &s).unwrap();
                sealers[d][k] = Some(Sealer {
                    aead: Aead::new(suite.aead, &keys.key),
                    iv: keys.iv,
                    seq: 0,
                    secret: s,
                });
            }
        }
        Session {
            tls13: version != 0x0303,
            header_aad: version != 0x7f17,
            suite,
            sealers,
        }
    }

    /// A protected record of `content_type` (TLS 1.2) carrying `plain` (TLS 1.3: already with
    /// its inner type and padding).
    fn seal(&mut self, dir: usize, keys: KeySet, content_type: u8, mut plain: Vec<u8>) -> Vec<u8> {
        let k = if self.tls13 {
            match keys {
                KeySet::Early => 0,
                KeySet::Handshake => 1,
                KeySet::Application => 2,
            }
        } else {
            2
        };
        let (tls13, header_aad) = (self.tls13, self.header_aad);
        let gcm12 = !tls13 && self.suite.aead != AeadAlg::ChaCha20Poly1305;
        let Some(s) = self.sealers[dir][k].as_mut() else {
            return Vec::new();
        };
        let seq = s.seq;
        s.seq += 1;
        plain.truncate(16 << 10);
        let sealed_len = plain.len() + 16 + if gcm12 { 8 } else { 0 };
        if tls13 {
            let aad = if header_aad {
                let mut a = vec![23, 3, 3];
                a.extend_from_slice(&(sealed_len as u16).to_be_bytes());
                a
            } else {
                Vec::new()
            };
            s.aead.seal(xor_nonce(&s.iv, seq), &aad, &mut plain);
            return record(23, 0x0303, &plain);
        }
        // RFC 5246 6.2.3.3: seq_num + type + version + length of the plaintext.
        let mut aad = seq.to_be_bytes().to_vec();
        aad.push(content_type);
        aad.extend_from_slice(&0x0303u16.to_be_bytes());
        aad.extend_from_slice(&(plain.len() as u16).to_be_bytes());
        if gcm12 {
            let mut nonce = [0u8; 12];
            nonce[..4].copy_from_slice(&s.iv);
            nonce[4..].copy_from_slice(&seq.to_be_bytes());
            s.aead.seal(nonce, &aad, &mut plain);
            let mut body = seq.to_be_bytes().to_vec();
            body.extend_from_slice(&plain);
            record(content_type, 0x0303, &body)
        } else {
            s.aead.seal(xor_nonce(&s.iv, seq), &aad, &mut plain);
            record(content_type, 0x0303, &plain)
        }
    }

    fn rekey(&mut self, dir: usize) {
        if !self.tls13 {
            return;
        }
        let suite = self.suite;
        if let Some(s) = self.sealers[dir][2].as_mut() {
            let next = tls13_next_traffic_secret(suite.hash, &s.secret).unwrap();
            let keys = tls13_traffic_keys(suite, &next).unwrap();
            *s = Sealer {
                aead: Aead::new(suite.aead, &keys.key),
                iv: keys.iv,
                seq: 0,
                secret: next,
            };
        }
    }
}

fn dir(to_client: bool) -> (usize, Dir) {
    if to_client {
        (1, Dir::ToClient)
    } else {
        (0, Dir::ToServer)
    }
}

fn inner_type(inner: Inner) -> u8 {
    match inner {
        Inner::Handshake => 22,
        Inner::ApplicationData => 23,
        Inner::Alert => 21,
        Inner::Other(t) => t,
    }
}

fuzz_target!(|input: Input| {
    const TLS13_SUITES: [u16; 3] = [0x1301, 0x1302, 0x1303];
    const TLS12_SUITES: [u16; 4] = [0xc02f, 0xc030, 0xcca8, 0x009c];
    let version = match input.version {
        Version::Tls13 => 0x0304,
        Version::Draft28 => 0x7f1c,
        Version::Draft23 => 0x7f17,
        Version::Tls12 => 0x0303,
    };
    let (suite, random) = if version == 0x0303 {
        let id = TLS12_SUITES[usize::from(input.suite) % TLS12_SUITES.len()];
        (tls12_suite(id).unwrap(), R_TLS12)
    } else {
        let id = TLS13_SUITES[usize::from(input.suite) % TLS13_SUITES.len()];
        let s = tls13_suite(id).unwrap();
        let random = match (input.app_only, s.hash) {
            (true, HashAlg::Sha256) => R_APP_ONLY,
            (_, HashAlg::Sha256) => R_SHA256,
            (_, HashAlg::Sha384) => R_SHA384,
        };
        (s, random)
    };
    let mut session = Session::new(version, suite, &random);
    let mut conn = TlsConn::new(1);
    let mut out = Vec::new();
    let keys = Some(keylog());
    let mut packet = 0u64;
    let split = usize::from(input.split);
    let mut feed = |conn: &mut TlsConn, out: &mut Vec<_>, d: Dir, bytes: &[u8]| {
        let at = split.min(bytes.len());
        for piece in [&bytes[..at], &bytes[at..]] {
            if !piece.is_empty() {
                packet += 1;
                conn.on_data_keyed(d, Ts(packet as i64), packet, piece, keys, out);
            }
        }
    };
    let mut ends = 0u64;
    feed(
        &mut conn,
        &mut out,
        Dir::ToServer,
        &client_hello(&random, suite.id, version),
    );
    feed(
        &mut conn,
        &mut out,
        Dir::ToClient,
        &server_hello(suite.id, version),
    );
    for rec in &input.records {
        match rec {
            Rec::Sealed {
                to_client,
                keys: k,
                inner,
                pad,
                data,
            } => {
                let (i, d) = dir(*to_client);
                let mut plain = data.clone();
                let ct = inner_type(*inner);
                if session.tls13 {
                    plain.push(ct);
                    plain.extend(std::iter::repeat_n(0, usize::from(*pad % 32)));
                }
                let r = session.seal(i, *k, ct, plain);
                feed(&mut conn, &mut out, d, &r);
            }
            Rec::SealedMessage {
                to_client,
                keys: k,
                msg_type,
                body,
            } => {
                let (i, d) = dir(*to_client);
                let mut plain = handshake_message(*msg_type, body);
                if session.tls13 {
                    plain.push(22);
                }
                let r = session.seal(i, *k, 22, plain);
                feed(&mut conn, &mut out, d, &r);
            }
            Rec::SealedCertificate {
                to_client,
                keys: k,
                certs,
            } => {
                let (i, d) = dir(*to_client);
                let mut list = Vec::new();
                for der in certs {
                    let der = &der[..der.len().min(0xffff)];
                    list.extend_from_slice(&(der.len() as u32).to_be_bytes()[1..]);
                    list.extend_from_slice(der);
                    list.extend_from_slice(&[0, 0]); // no extensions
                }
                let mut body = vec![0]; // empty certificate_request_context
                body.extend_from_slice(&(list.len() as u32).to_be_bytes()[1..]);
                body.extend_from_slice(&list);
                let mut plain = handshake_message(11, &body);
                if session.tls13 {
                    plain.push(22);
                }
                let r = session.seal(i, *k, 22, plain);
                feed(&mut conn, &mut out, d, &r);
            }
            Rec::Clear {
                to_client,
                content_type,
                data,
            } => {
                let (_, d) = dir(*to_client);
                feed(&mut conn, &mut out, d, &record(*content_type, 0x0303, data));
            }
            Rec::Rekey { to_client } => session.rekey(dir(*to_client).0),
            Rec::Raw { to_client, bytes } => feed(&mut conn, &mut out, dir(*to_client).1, bytes),
            Rec::Gap { to_client, len } => conn.on_gap(dir(*to_client).1, u64::from(*len)),
            Rec::End { to_client, reset } => {
                ends += 1;
                conn.on_end(dir(*to_client).1, Ts(0), ends, *reset, &mut out);
            }
        }
    }
    let _ = conn.session();
});
