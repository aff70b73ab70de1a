//! Decryption of the peer corpus' TLS captures with their key logs (`../shared/peer`,
//! MANIFEST.md section 4, `wireshark/EXPECTED.md`), through source -> decode -> flow ->
//! [`TlsConn`] for the session and records split here from the reassembled streams. The
//! expected plaintext is what Wireshark's and Zeek's test suites assert. Skips, saying why,
//! when the corpus is absent.

use super::*;
use crate::decode::{Decoder, DefragLimits, Transport};
use crate::flow::{FlowEvent, FlowTable, Limits};
use crate::proto::tls::{looks_like_tls_client, TlsConn, TlsEvent};
use crate::source::MergedSource;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

fn peer_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/peer");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipped: peer corpus not found (../shared/peer)");
        None
    }
}

/// One TLS flow of a capture: its session and both reassembled byte streams.
struct Flow {
    session: TlsSession,
    streams: [Vec<u8>; 2],
    gaps: bool,
}

/// Reads a capture; returns its TLS flows in order of their first packet and the key log text
/// of its Decryption Secrets Blocks.
fn read_capture(path: &Path) -> (Vec<Flow>, Vec<u8>) {
    let mut source = MergedSource::open(&[path]).expect("open capture");
    let mut decoder = Decoder::new(DefragLimits::default());
    let mut table = FlowTable::new(Limits::default());
    let mut flows: BTreeMap<u64, (TlsConn, Flow)> = BTreeMap::new();
    let mut not_tls = HashSet::new();
    let mut events = Vec::new();
    let mut tls_events = Vec::new();
    let mut handle = |events: &mut Vec<FlowEvent>| {
        for ev in events.drain(..) {
            match ev {
                FlowEvent::Data {
                    flow,
                    dir,
                    ts,
                    packet,
                    data,
                } => {
                    if !flows.contains_key(&flow) && !not_tls.contains(&flow) {
                        if dir == Dir::ToServer && looks_like_tls_client(&data).is_some() {
                            let f = Flow {
                                session: TlsSession::default(),
                                streams: [vec![], vec![]],
                                gaps: false,
                            };
                            flows.insert(flow, (TlsConn::new(flow), f));
                        } else {
                            not_tls.insert(flow);
                        }
                    }
                    if let Some((conn, f)) = flows.get_mut(&flow) {
                        conn.on_data(dir, ts, packet, &data, &mut tls_events);
                        f.streams[dir.index()].extend_from_slice(&data);
                    }
                }
                FlowEvent::Gap { flow, .. } => {
                    if let Some((_, f)) = flows.get_mut(&flow) {
                        f.gaps = true;
                    }
                }
                _ => {}
            }
        }
        tls_events.retain(|e: &TlsEvent| !matches!(e, TlsEvent::Alert { .. }));
    };
    let mut last = crate::time::Ts(0);
    let mut packet = 0u64;
    while let Some(frame) = source.next_frame().expect("read capture") {
        packet += 1;
        last = frame.ts;
        if let Some(Transport::Tcp(seg)) = decoder.decode(&frame) {
            table.on_tcp(frame.ts, packet, &seg, &mut events);
        }
        handle(&mut events);
        source.recycle(frame);
    }
    table.finish(last, &mut events);
    handle(&mut events);
    let keylog: Vec<u8> = source
        .stats()
        .iter()
        .flat_map(|s| s.keylog.clone())
        .collect();
    let flows = flows
        .into_values()
        .map(|(conn, mut f)| {
            f.session = conn.session().clone();
            f
        })
        .collect();
    (flows, keylog)
}

/// What decrypting one flow gave.
#[derive(Default, Debug)]
struct Decrypted {
    /// Application data per direction (to-server, to-client), concatenated.
    app: [Vec<u8>; 2],
    /// Decrypted handshake message types per direction, in order (first byte of each record).
    handshake_records: [Vec<u8>; 2],
    failed: [u64; 2],
    decrypted: [u64; 2],
}

/// Splits each stream into records and feeds them to the session's decryptors.
fn decrypt_flow(flow: &Flow, keylog: &KeyLog) -> Result<Decrypted, NoDecryption> {
    let mut sd = session_decryptors(&flow.session, keylog)?;
    let mut out = Decrypted::default();
    for dir in [Dir::ToServer, Dir::ToClient] {
        let i = dir.index();
        let mut rest = flow.streams[i].as_slice();
        while rest.len() >= 5 {
            let len = u16::from_be_bytes([rest[3], rest[4]]) as usize;
            if rest.len() < 5 + len {
                break;
            }
            let (t, v) = (rest[0], u16::from_be_bytes([rest[1], rest[2]]));
            let body = &rest[5..5 + len];
            rest = &rest[5 + len..];
            match sd.get_mut(dir).decrypt(t, v, body) {
                Ok(Some(plain)) => {
                    out.decrypted[i] += 1;
                    match plain.content_type {
                        23 => out.app[i].extend_from_slice(&plain.data),
                        22 => out.handshake_records[i]
                            .push(plain.data.first().copied().unwrap_or(0xff)),
                        _ => {}
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    assert!(e.is_failure() || e == DecryptError::NoKeys);
                    out.failed[i] += 1;
                }
            }
        }
    }
    Ok(out)
}

fn keylog_file(path: &Path) -> KeyLog {
    KeyLog::parse(&std::fs::read_to_string(path).expect("read key log"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Wireshark `test_tls13_rfc8446`: TLS 1.3 AES-128-GCM, the second connection resumed with
/// 0-RTT early data.
#[test]
fn wireshark_tls13_rfc8446() {
    let Some(peer) = peer_dir() else { return };
    let (flows, _) = read_capture(&peer.join("wireshark/test/captures/tls13-rfc8446.pcap"));
    let keylog = keylog_file(&peer.join("wireshark/test/keys/tls13-rfc8446.keys"));
    assert_eq!(flows.len(), 2);
    let first = decrypt_flow(&flows[0], &keylog).unwrap();
    assert_eq!(first.failed, [0, 0]);
    // The server's flight: EncryptedExtensions first (in the record that starts the flight).
    assert_eq!(first.handshake_records[1].first(), Some(&8));
    assert!(
        text(&first.app[0]).starts_with("GET /first HTTP/1.1\r\n"),
        "{}",
        text(&first.app[0])
    );
    let resp = text(&first.app[1]);
    assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
    assert!(
        resp.ends_with("\r\n\r\nRequest for /first, version TLSv1.3, Early data: no\n"),
        "{resp}"
    );

    let second = decrypt_flow(&flows[1], &keylog).unwrap();
    assert_eq!(second.failed, [0, 0]);
    let req = text(&second.app[0]);
    assert!(req.starts_with("GET /early HTTP/1.1\r\n"), "{req}");
    assert!(req.contains("GET /second HTTP/1.1\r\n"), "{req}");
    let resp = text(&second.app[1]);
    assert!(
        resp.contains("\r\n\r\nRequest for /early, version TLSv1.3, Early data: yes\n"),
        "{resp}"
    );
    assert!(
        resp.ends_with("\r\n\r\nRequest for /second, version TLSv1.3, Early data: yes\n"),
        "{resp}"
    );

    // Without CLIENT_EARLY_TRAFFIC_SECRET: the 0-RTT request stays encrypted (failures are
    // counted), the rest decrypts (Wireshark `test_tls13_rfc8446_noearly`).
    let noearly = keylog_file(&peer.join("wireshark/test/keys/tls13-rfc8446-noearly.keys"));
    let second = decrypt_flow(&flows[1], &noearly).unwrap();
    let req = text(&second.app[0]);
    assert!(!req.contains("/early"), "{req}");
    assert!(req.starts_with("GET /second HTTP/1.1\r\n"), "{req}");
    assert!(second.failed[0] > 0);
    assert_eq!(second.failed[1], 0);
    assert!(text(&second.app[1]).contains("Request for /early, version TLSv1.3, Early data: yes\n"));
}

/// Wireshark `test_tls13_chacha20poly1305`: TLS 1.3 draft 20, ChaCha20-Poly1305.
#[test]
fn wireshark_tls13_draft20_chacha20() {
    let Some(peer) = peer_dir() else { return };
    let (flows, _) =
        read_capture(&peer.join("wireshark/test/captures/tls13-20-chacha20poly1305.pcap"));
    let keylog = keylog_file(&peer.join("wireshark/test/keys/tls13-20-chacha20poly1305.keys"));
    assert!(!flows.is_empty());
    let mut served = 0;
    for flow in &flows {
        assert_eq!(flow.session.version(), Some(0x7f14));
        assert_eq!(
            flow.session.server_hello.as_ref().unwrap().cipher_suite,
            0x1303
        );
        let d = decrypt_flow(flow, &keylog).unwrap();
        assert_eq!(d.failed, [0, 0]);
        if d.app[0].is_empty() {
            continue;
        }
        assert!(
            text(&d.app[0]).starts_with("GET / HTTP/1.1\r\n"),
            "{}",
            text(&d.app[0])
        );
        let resp = text(&d.app[1]);
        assert!(resp.starts_with("HTTP/1.0 200 ok\r\n"), "{resp}");
        assert!(resp.contains("TLS13-CHACHA20-POLY1305-SHA256"), "{resp}");
        served += 1;
    }
    assert!(served >= 1);
}

/// Wireshark `test_tls12_chacha20poly1305`: seven TLS 1.2 ChaCha20-Poly1305 connections
/// (ECDHE, DHE, RSA-PSK, DHE-PSK, ECDHE-PSK, PSK key exchanges).
#[test]
fn wireshark_tls12_chacha20() {
    let Some(peer) = peer_dir() else { return };
    let (flows, _) =
        read_capture(&peer.join("wireshark/test/captures/tls12-chacha20poly1305.pcap"));
    let keylog = keylog_file(&peer.join("wireshark/test/keys/tls12-chacha20poly1305.keys"));
    let ciphers = [
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
        "DHE-RSA-CHACHA20-POLY1305",
        "RSA-PSK-CHACHA20-POLY1305",
        "DHE-PSK-CHACHA20-POLY1305",
        "ECDHE-PSK-CHACHA20-POLY1305",
        "PSK-CHACHA20-POLY1305",
    ];
    assert_eq!(flows.len(), ciphers.len());
    for (flow, cipher) in flows.iter().zip(ciphers) {
        let d = decrypt_flow(flow, &keylog).unwrap();
        assert_eq!(d.failed, [0, 0], "{cipher}");
        // Each side's first protected record is its Finished (type 20).
        assert_eq!(d.handshake_records[0].first(), Some(&20));
        assert_eq!(d.handshake_records[1].first(), Some(&20));
        assert!(
            text(&d.app[0]).starts_with("GET / HTTP/1.1\r\n"),
            "{}",
            text(&d.app[0])
        );
        let resp = text(&d.app[1]);
        assert!(
            resp.contains(&format!("Cipher is {cipher}")),
            "{cipher}: {resp}"
        );
    }
}

/// Wireshark `test_tls12_dsb`: the secrets come from the pcapng Decryption Secrets Blocks;
/// the same secrets as the separate key files.
#[test]
fn wireshark_tls12_dsb() {
    let Some(peer) = peer_dir() else { return };
    let (flows, dsb) = read_capture(&peer.join("wireshark/test/captures/tls12-dsb.pcapng"));
    let mut keylog = KeyLog::new();
    keylog.add_text(&dsb);
    assert_eq!(keylog.len(), 2);
    assert_eq!(keylog.stats().bad_lines, 0);
    let mut files = keylog_file(&peer.join("wireshark/test/keys/tls12-dsb-1.keys"));
    files.merge(keylog_file(
        &peer.join("wireshark/test/keys/tls12-dsb-2.keys"),
    ));
    assert_eq!(files.len(), 2);
    assert_eq!(flows.len(), 2);
    for (flow, host) in flows.iter().zip(["example.com", "example.net"]) {
        let random = &flow.session.client_hello.as_ref().unwrap().random;
        assert_eq!(keylog.get(random), files.get(random));
        let d = decrypt_flow(flow, &keylog).unwrap();
        assert_eq!(d.failed, [0, 0]);
        let req = text(&d.app[0]);
        assert!(req.starts_with("HEAD / HTTP/1.1\r\n"), "{req}");
        assert!(req.contains(&format!("\r\nHost: {host}\r\n")), "{req}");
        assert!(
            text(&d.app[1]).starts_with("HTTP/1.1 200 OK\r\n"),
            "{}",
            text(&d.app[1])
        );
    }
}

/// Zeek `scripts.policy.protocols.ssl.decryption`: TLS 1.2 ECDHE-RSA-AES256-GCM-SHA384.
#[test]
fn zeek_tls12_aes256_gcm() {
    let Some(peer) = peer_dir() else { return };
    let (flows, _) = read_capture(&peer.join("zeek/Traces/tls/tls12-decryption.pcap"));
    let keylog = keylog_file(&peer.join("zeek/keylogs/tls12-decryption.nss-keylog.txt"));
    assert_eq!(flows.len(), 1);
    assert_eq!(
        flows[0].session.server_hello.as_ref().unwrap().cipher_suite,
        0xc030
    );
    let d = decrypt_flow(&flows[0], &keylog).unwrap();
    assert_eq!(d.failed, [0, 0]);
    let req = text(&d.app[0]);
    assert!(
        req.starts_with("GET / HTTP/1.1\r\nHost: heise.de\r\n"),
        "{req}"
    );
    assert!(req.contains("Firefox/78.0"), "{req}");
    let resp = text(&d.app[1]);
    assert!(
        resp.starts_with("HTTP/1.1 301 Moved Permanently\r\n"),
        "{resp}"
    );
    assert!(
        resp.contains("\r\nLocation: https://www.heise.de/\r\n"),
        "{resp}"
    );
}

/// Zeek `decryption-keylog`: 16 requests on one TLS 1.2 connection (TShark's list).
#[test]
fn zeek_tls12_stream_keylog() {
    let Some(peer) = peer_dir() else { return };
    let (flows, _) = read_capture(&peer.join("zeek/Traces/tls/tls-1.2-stream-keylog.pcap"));
    let keylog = keylog_file(&peer.join("zeek/keylogs/tls-1.2-stream-keylog.nss-keylog.txt"));
    let expected: Vec<String> =
        std::fs::read_to_string(peer.join("derived/http1_transactions.tshark.tsv"))
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("zeek/Traces/tls/tls-1.2-stream-keylog.pcap"))
            .map(|l| format!("GET {} HTTP/1.1", l.split('\t').nth(5).unwrap()))
            .collect();
    assert_eq!(expected.len(), 16);
    let mut got = vec![];
    for flow in &flows {
        let Ok(d) = decrypt_flow(flow, &keylog) else {
            continue;
        };
        assert_eq!(d.failed, [0, 0]);
        got.extend(
            text(&d.app[0])
                .split("\r\n")
                .filter(|l| l.starts_with("GET "))
                .map(str::to_string),
        );
    }
    assert_eq!(got, expected);
}

/// The Illustrated TLS 1.3 Connection: TLS_AES_256_GCM_SHA384, "ping" and "pong".
#[test]
fn illustrated_tls13_aes256_gcm() {
    let Some(peer) = peer_dir() else { return };
    let dir = peer.join("illustrated-tls/illustrated-tls13/captures");
    let (flows, _) = read_capture(&dir.join("capture.pcap"));
    let keylog = keylog_file(&dir.join("keylog.txt"));
    assert_eq!(flows.len(), 1);
    assert_eq!(
        flows[0].session.server_hello.as_ref().unwrap().cipher_suite,
        0x1302
    );
    let d = decrypt_flow(&flows[0], &keylog).unwrap();
    assert_eq!(d.failed, [0, 0]);
    assert_eq!(d.app, [b"ping".to_vec(), b"pong".to_vec()]);
    // Server flight: EncryptedExtensions, Certificate, CertificateVerify, Finished, each in
    // its own record here; then two NewSessionTickets under the application keys.
    assert_eq!(d.handshake_records[1], vec![8, 11, 15, 20, 4, 4]);
    assert_eq!(d.handshake_records[0], vec![20]);
}

/// Wireshark `test_http2_data_reassembly`: TLS 1.2 with ALPN h2; the client's first
/// application bytes are the HTTP/2 connection preface (RFC 9113 3.4).
#[test]
fn wireshark_tls12_http2_preface() {
    let Some(peer) = peer_dir() else { return };
    let (flows, _) = read_capture(&peer.join("wireshark/test/captures/http2-data-reassembly.pcap"));
    let keylog = keylog_file(&peer.join("wireshark/test/keys/http2-data-reassembly.keys"));
    assert_eq!(flows.len(), 1);
    let d = decrypt_flow(&flows[0], &keylog).unwrap();
    assert_eq!(d.failed, [0, 0]);
    assert!(d.app[0].starts_with(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
    assert!(d.app[1].windows(3).any(|w| w == b"PNG"));
}

/// A capture decrypted with another capture's key log finds nothing, and one flipped byte in
/// a real record is a counted failure while the rest still decrypts.
#[test]
fn wrong_keys_and_a_flipped_byte() {
    let Some(peer) = peer_dir() else { return };
    let (flows, _) = read_capture(&peer.join("zeek/Traces/tls/tls12-decryption.pcap"));
    let other = keylog_file(&peer.join("wireshark/test/keys/tls12-chacha20poly1305.keys"));
    assert!(matches!(
        decrypt_flow(&flows[0], &other),
        Err(NoDecryption::NotInKeyLog)
    ));
    let keylog = keylog_file(&peer.join("zeek/keylogs/tls12-decryption.nss-keylog.txt"));
    // Flip a byte inside the client's last record.
    let mut flow = Flow {
        session: flows[0].session.clone(),
        streams: flows[0].streams.clone(),
        gaps: flows[0].gaps,
    };
    let n = flow.streams[0].len();
    flow.streams[0][n - 3] ^= 0x80;
    let d = decrypt_flow(&flow, &keylog).unwrap();
    assert_eq!(d.failed, [1, 0]);
    assert!(text(&d.app[0]).starts_with("GET / HTTP/1.1\r\n"));
}
