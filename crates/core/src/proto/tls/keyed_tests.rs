//! [`TlsConn::on_data_keyed`] on real sessions: a rustls client and server talk in memory, the
//! server logs its secrets (NSS key log), and the bytes each side put on the wire are fed to a
//! `TlsConn` as TCP reassembly would. The plaintext that comes out must be exactly what the
//! peers wrote, for TLS 1.3 and TLS 1.2 with each supported suite.

use super::keylog::KeyLog;
use super::{TlsConn, TlsEvent};
use crate::flow::Dir;
use crate::time::Ts;
use rustls::crypto::ring as provider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, ServerConfig, ServerConnection};
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

#[derive(Debug, Default)]
struct MemoryKeyLog(Mutex<String>);

impl rustls::KeyLog for MemoryKeyLog {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        if let Ok(mut s) = self.0.lock() {
            s.push_str(&format!("{label} {} {}\n", hex(client_random), hex(secret)));
        }
    }
}

struct Pki {
    ca: CertificateDer<'static>,
    leaf: CertificateDer<'static>,
    key: Vec<u8>,
}

fn pki() -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["mirror.test".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    Pki {
        ca: ca.der().clone(),
        leaf: leaf.der().clone(),
        key: leaf_key.serialize_der(),
    }
}

/// What a session put on the wire, in order, and the server's key log.
struct Wire {
    chunks: Vec<(Dir, Vec<u8>)>,
    keylog: String,
}

/// Runs a handshake, then the client sends `request`, the server answers `response`.
fn session(
    versions: &[&'static rustls::SupportedProtocolVersion],
    suite: rustls::SupportedCipherSuite,
    alpn: &[&[u8]],
    request: &[u8],
    response: &[u8],
) -> Wire {
    let pki = pki();
    let mut prov = provider::default_provider();
    prov.cipher_suites = vec![suite];
    let prov = Arc::new(prov);
    let log = Arc::new(MemoryKeyLog::default());
    let mut scfg = ServerConfig::builder_with_provider(prov.clone())
        .with_protocol_versions(versions)
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![pki.leaf.clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.key.clone())),
        )
        .unwrap();
    scfg.key_log = log.clone();
    scfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca.clone()).unwrap();
    let mut ccfg = ClientConfig::builder_with_provider(prov)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    ccfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    ccfg.resumption = rustls::client::Resumption::disabled();
    let mut client =
        ClientConnection::new(Arc::new(ccfg), ServerName::try_from("mirror.test").unwrap())
            .unwrap();
    let mut server = ServerConnection::new(Arc::new(scfg)).unwrap();
    let mut chunks = Vec::new();
    let mut sent_request = false;
    let mut sent_response = false;
    let mut got = Vec::new();
    for _ in 0..50 {
        if !client.is_handshaking() && !sent_request {
            client.writer().write_all(request).unwrap();
            sent_request = true;
        }
        let mut buf = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut buf).unwrap();
        }
        if !buf.is_empty() {
            server.read_tls(&mut buf.as_slice()).unwrap();
            server.process_new_packets().unwrap();
            chunks.push((Dir::ToServer, buf));
        }
        let mut tmp = [0u8; 4096];
        while let Ok(n) = server.reader().read(&mut tmp) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&tmp[..n]);
        }
        if got.len() >= request.len() && !sent_response {
            server.writer().write_all(response).unwrap();
            sent_response = true;
        }
        let mut buf = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut buf).unwrap();
        }
        if !buf.is_empty() {
            client.read_tls(&mut buf.as_slice()).unwrap();
            client.process_new_packets().unwrap();
            chunks.push((Dir::ToClient, buf));
        }
        if sent_response && !server.wants_write() && !client.wants_write() {
            break;
        }
    }
    assert_eq!(got, request, "the server got the request");
    let keylog = log.0.lock().unwrap().clone();
    Wire { chunks, keylog }
}

/// Feeds the wire to a TlsConn; returns it, the plaintext per direction and every event.
fn replay(wire: &Wire, keys: Option<&KeyLog>) -> (TlsConn, [Vec<u8>; 2], Vec<TlsEvent>) {
    let mut conn = TlsConn::new(1);
    let mut events = Vec::new();
    for (i, (dir, bytes)) in wire.chunks.iter().enumerate() {
        // Split every chunk in two at an odd place, as segments would.
        let cut = bytes.len() / 3;
        let packet = u64::try_from(i).unwrap() + 1;
        for part in [&bytes[..cut], &bytes[cut..]] {
            conn.on_data_keyed(*dir, Ts(0), packet, part, keys, &mut events);
        }
    }
    let mut plain = [Vec::new(), Vec::new()];
    for ev in &events {
        if let TlsEvent::Plaintext { dir, data, .. } = ev {
            plain[usize::from(*dir == Dir::ToClient)].extend_from_slice(data);
        }
    }
    (conn, plain, events)
}

/// Plaintext bytes in the events, both directions.
fn plaintext_len(events: &[TlsEvent]) -> usize {
    events
        .iter()
        .filter_map(|e| match e {
            TlsEvent::Plaintext { data, .. } => Some(data.len()),
            _ => None,
        })
        .sum()
}

const REQUEST: &[u8] = b"GET /example.test/hello/@v/list HTTP/1.1\r\nHost: mirror.test\r\n\r\n";

fn response() -> Vec<u8> {
    // Longer than one record (16 KiB), so several records are decrypted in order.
    let body = "v1.0.0\n".repeat(5000);
    format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[test]
fn tls13_sessions_decrypt_to_the_exact_plaintext_and_show_the_certificate() {
    for suite in [
        provider::cipher_suite::TLS13_AES_128_GCM_SHA256,
        provider::cipher_suite::TLS13_AES_256_GCM_SHA384,
        provider::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
    ] {
        let resp = response();
        let wire = session(&[&rustls::version::TLS13], suite, &[b"h2"], REQUEST, &resp);
        let keys = KeyLog::parse(&wire.keylog);
        let (conn, plain, events) = replay(&wire, Some(&keys));
        let name = format!("{:?}", suite.suite());
        assert_eq!(plain[0], REQUEST, "{name}: request plaintext");
        assert_eq!(plain[1], resp, "{name}: response plaintext");
        let s = conn.session();
        assert!(s.decryption.active(), "{name}: {:?}", s.decryption);
        assert_eq!(s.decryption.failed_total(), 0, "{name}");
        // The encrypted Certificate was read: the chain is known, not hidden.
        assert!(!s.certificates_hidden, "{name}");
        assert_eq!(s.certificates.len(), 1, "{name}");
        assert!(s.decryption.certificates_decrypted);
        assert_eq!(s.decryption.alpn_selected.as_deref(), Some("h2"), "{name}");
        assert!(events.iter().any(|e| matches!(
            e,
            TlsEvent::Certificates {
                dir: Dir::ToClient,
                ..
            }
        )));

        // Without keys: no plaintext, the certificate stays hidden.
        let (conn, plain, _) = replay(&wire, None);
        assert!(plain[0].is_empty() && plain[1].is_empty());
        assert!(conn.session().certificates_hidden);
        assert!(!conn.session().decryption.attempted);
    }
}

#[test]
fn tls12_ecdhe_sessions_decrypt_with_the_master_secret() {
    for suite in [
        provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ] {
        let resp = response();
        let wire = session(&[&rustls::version::TLS12], suite, &[], REQUEST, &resp);
        // rustls uses the extended master secret (RFC 7627) when both offer it.
        assert!(wire.keylog.starts_with("CLIENT_RANDOM "), "{}", wire.keylog);
        let keys = KeyLog::parse(&wire.keylog);
        let (conn, plain, _) = replay(&wire, Some(&keys));
        let name = format!("{:?}", suite.suite());
        assert_eq!(plain[0], REQUEST, "{name}");
        assert_eq!(plain[1], resp, "{name}");
        let d = &conn.session().decryption;
        assert_eq!(d.failed_total(), 0, "{name}");
        // Finished both ways plus the application records.
        assert!(
            d.decrypted.to_server >= 2 && d.decrypted.to_client >= 3,
            "{d:?}"
        );
    }
}

#[test]
fn a_tampered_record_is_counted_and_yields_no_plaintext() {
    let resp = response();
    let mut wire = session(
        &[&rustls::version::TLS13],
        provider::cipher_suite::TLS13_AES_128_GCM_SHA256,
        &[],
        REQUEST,
        &resp,
    );
    // Flip a byte in the last bytes the server sent (inside its last application record).
    let last = wire
        .chunks
        .iter_mut()
        .rev()
        .find(|(d, _)| *d == Dir::ToClient)
        .unwrap();
    let n = last.1.len();
    last.1[n - 20] ^= 0x40;
    let keys = KeyLog::parse(&wire.keylog);
    let (conn, plain, _) = replay(&wire, Some(&keys));
    let d = &conn.session().decryption;
    assert_eq!(d.failed.to_client, 1, "{d:?}");
    assert_eq!(d.failed.to_server, 0);
    assert!(d.first_failure.is_some());
    assert_eq!(plain[0], REQUEST);
    // Everything up to the bad record, nothing of it: a strict prefix of the response.
    assert!(plain[1].len() < resp.len() && resp.starts_with(&plain[1]));
}

#[test]
fn keys_of_another_session_are_reported_unavailable() {
    let resp = response();
    let suite = provider::cipher_suite::TLS13_AES_128_GCM_SHA256;
    let a = session(&[&rustls::version::TLS13], suite, &[], REQUEST, &resp);
    let b = session(&[&rustls::version::TLS13], suite, &[], REQUEST, &resp);
    let keys = KeyLog::parse(&b.keylog);
    let (conn, plain, _) = replay(&a, Some(&keys));
    let d = &conn.session().decryption;
    assert!(d.attempted);
    assert!(d.unavailable.as_deref().unwrap().contains("client random"));
    assert!(plain[0].is_empty() && plain[1].is_empty());
    assert!(conn.session().certificates_hidden);
}

#[test]
fn a_gap_stops_decryption_of_that_direction_only() {
    let resp = response();
    let wire = session(
        &[&rustls::version::TLS13],
        provider::cipher_suite::TLS13_AES_128_GCM_SHA256,
        &[],
        REQUEST,
        &resp,
    );
    let keys = KeyLog::parse(&wire.keylog);
    let mut conn = TlsConn::new(1);
    let mut events = Vec::new();
    let last_server = wire
        .chunks
        .iter()
        .rposition(|(d, _)| *d == Dir::ToClient)
        .unwrap();
    for (i, (dir, bytes)) in wire.chunks.iter().enumerate() {
        if i == last_server {
            // The response's bytes are lost, but for the last 100.
            conn.on_gap(*dir, u64::try_from(bytes.len() - 100).unwrap());
            conn.on_data_keyed(
                *dir,
                Ts(0),
                9,
                &bytes[bytes.len() - 100..],
                Some(&keys),
                &mut events,
            );
        } else {
            conn.on_data_keyed(*dir, Ts(0), 1, bytes, Some(&keys), &mut events);
        }
    }
    let d = &conn.session().decryption;
    assert_eq!(d.failed_total(), 0, "nothing guessed after the gap: {d:?}");
    assert!(d.decrypted.to_server > 0);
    let to_client_plain: usize = events
        .iter()
        .filter_map(|e| match e {
            TlsEvent::Plaintext {
                dir: Dir::ToClient,
                data,
                ..
            } => Some(data.len()),
            _ => None,
        })
        .sum();
    assert!(to_client_plain < resp.len());
}

#[test]
fn mutated_sessions_with_keys_never_panic() {
    let resp = response();
    let wire = session(
        &[&rustls::version::TLS13],
        provider::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
        &[b"h2"],
        REQUEST,
        &resp,
    );
    let keys = KeyLog::parse(&wire.keylog);
    // xorshift: deterministic mutations (flips, truncations) of every chunk.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..200 {
        let mut conn = TlsConn::new(1);
        let mut events = Vec::new();
        for (dir, bytes) in &wire.chunks {
            let mut b = bytes.clone();
            for _ in 0..(next() % 4) {
                let i = usize::try_from(next() % b.len() as u64).unwrap();
                b[i] ^= u8::try_from(next() % 255 + 1).unwrap();
            }
            if next() % 5 == 0 {
                b.truncate(usize::try_from(next() % b.len() as u64).unwrap());
            }
            conn.on_data_keyed(*dir, Ts(0), 1, &b, Some(&keys), &mut events);
            if next() % 7 == 0 {
                conn.on_gap(*dir, next() % 100);
            }
        }
        // Whatever was decrypted authenticated: it is a prefix of what was sent.
        let plain: Vec<u8> = events
            .iter()
            .filter_map(|e| match e {
                TlsEvent::Plaintext {
                    dir: Dir::ToClient,
                    data,
                    ..
                } => Some(data.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        assert!(plain.len() <= resp.len());
    }
}

#[test]
fn waiting_for_keys_decrypts_the_kept_records_once_they_come() {
    let resp = response();
    let wire = session(
        &[&rustls::version::TLS13],
        provider::cipher_suite::TLS13_AES_256_GCM_SHA384,
        &[],
        REQUEST,
        &resp,
    );
    let full = KeyLog::parse(&wire.keylog);
    // Another session's keys only, as a live key log before this session's line is read.
    let other = session(
        &[&rustls::version::TLS13],
        provider::cipher_suite::TLS13_AES_256_GCM_SHA384,
        &[],
        REQUEST,
        &resp,
    );
    let early = KeyLog::parse(&other.keylog);
    let limits = super::TlsLimits {
        wait_for_keys: true,
        ..super::TlsLimits::default()
    };
    let mut conn = TlsConn::with_limits(1, limits.clone());
    let mut events = Vec::new();
    let half = wire.chunks.len() / 2;
    for (dir, bytes) in &wire.chunks[..half] {
        conn.on_data_keyed(*dir, Ts(0), 1, bytes, Some(&early), &mut events);
    }
    assert!(conn.session().decryption.unavailable.is_some());
    for (dir, bytes) in &wire.chunks[half..] {
        conn.on_data_keyed(*dir, Ts(0), 2, bytes, Some(&full), &mut events);
    }
    let mut plain = [Vec::new(), Vec::new()];
    for ev in &events {
        if let TlsEvent::Plaintext { dir, data, .. } = ev {
            plain[usize::from(*dir == Dir::ToClient)].extend_from_slice(data);
        }
    }
    assert_eq!(plain[0], REQUEST);
    assert_eq!(plain[1], resp);
    assert!(conn.session().decryption.active());
    assert!(
        !conn.session().certificates_hidden,
        "{:?} {}",
        conn.session().decryption,
        conn.session().certificates.len()
    );

    // Only the handshake secrets so far (a live key log mid-write): still waiting, and the
    // application data is not lost when the rest comes.
    let partial = KeyLog::parse(
        &wire
            .keylog
            .lines()
            .filter(|l| l.contains("HANDSHAKE"))
            .map(|l| format!("{l}\n"))
            .collect::<String>(),
    );
    let mut conn = TlsConn::with_limits(1, limits.clone());
    let mut events = Vec::new();
    for (dir, bytes) in &wire.chunks {
        conn.on_data_keyed(*dir, Ts(0), 1, bytes, Some(&partial), &mut events);
    }
    assert!(!events
        .iter()
        .any(|e| matches!(e, TlsEvent::Plaintext { .. })));
    conn.retry_keys(&full, false, &mut events);
    assert_eq!(plaintext_len(&events), REQUEST.len() + resp.len());

    // The keys come only after the last record: retry_keys (called before summarising)
    // still decrypts everything kept.
    let mut conn = TlsConn::with_limits(1, limits.clone());
    let mut events = Vec::new();
    for (dir, bytes) in &wire.chunks {
        conn.on_data_keyed(*dir, Ts(0), 1, bytes, Some(&early), &mut events);
    }
    assert!(!events
        .iter()
        .any(|e| matches!(e, TlsEvent::Plaintext { .. })));
    conn.retry_keys(&full, true, &mut events);
    assert_eq!(plaintext_len(&events), REQUEST.len() + resp.len());

    // Over the limit: given up, reported, nothing kept.
    let mut conn = TlsConn::with_limits(
        1,
        super::TlsLimits {
            max_key_wait_bytes: 4096,
            ..limits
        },
    );
    let mut events = Vec::new();
    for (dir, bytes) in &wire.chunks {
        conn.on_data_keyed(*dir, Ts(0), 1, bytes, Some(&early), &mut events);
    }
    conn.retry_keys(&full, true, &mut events);
    assert!(!events
        .iter()
        .any(|e| matches!(e, TlsEvent::Plaintext { .. })));
    assert!(conn
        .session()
        .decryption
        .unavailable
        .as_deref()
        .unwrap()
        .contains("first 4096 bytes"));
}
