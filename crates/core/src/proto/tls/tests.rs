//! Transcript tests: TLS byte streams in, events out. Real handshakes come from rustls client
//! and server connections run in memory (no network), with rcgen certificates; odd and old
//! formats are handcrafted.

use super::parser::content;
use super::*;
use crate::flow::Dir;
use crate::time::Ts;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};
use std::io::Write;
use std::sync::Arc;

/// Test certificates made with rcgen.
pub(crate) mod pki {
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    };

    pub struct Ca {
        pub der: Vec<u8>,
        pub pem: String,
        pub issuer: Issuer<'static, KeyPair>,
    }

    pub struct Leaf {
        pub der: Vec<u8>,
        pub key_der: Vec<u8>,
    }

    /// Validity 2024-01-01 .. 2030-01-01 unless given.
    pub fn ca(cn: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, cn);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "modtrace test");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.not_before = rcgen::date_time_ymd(2024, 1, 1);
        params.not_after = rcgen::date_time_ymd(2030, 1, 1);
        let cert = params.self_signed(&key).unwrap();
        Ca {
            der: cert.der().to_vec(),
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    pub fn leaf_params(
        names: &[&str],
        from: (i32, u8, u8),
        to: (i32, u8, u8),
    ) -> CertificateParams {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, names.first().copied().unwrap_or("leaf"));
        params.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
        params.not_after = rcgen::date_time_ymd(to.0, to.1, to.2);
        params
    }

    pub fn leaf(ca: &Ca, names: &[&str]) -> Leaf {
        leaf_valid(ca, names, (2024, 1, 1), (2030, 1, 1))
    }

    pub fn leaf_valid(ca: &Ca, names: &[&str], from: (i32, u8, u8), to: (i32, u8, u8)) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let cert = leaf_params(names, from, to)
            .signed_by(&key, &ca.issuer)
            .unwrap();
        Leaf {
            der: cert.der().to_vec(),
            key_der: key.serialize_der(),
        }
    }

    pub fn self_signed(names: &[&str], from: (i32, u8, u8), to: (i32, u8, u8)) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let cert = leaf_params(names, from, to).self_signed(&key).unwrap();
        Leaf {
            der: cert.der().to_vec(),
            key_der: key.serialize_der(),
        }
    }
}

/// One segment of a transcript: who sent it and the bytes.
type Segment = (Dir, Vec<u8>);

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

struct Setup {
    version: &'static rustls::SupportedProtocolVersion,
    /// The client trusts the CA that issued the server's certificate.
    client_trusts: bool,
    /// The server asks for a client certificate (and the client has one).
    mutual: bool,
    /// Client key shares X25519 first, server only P-256: a HelloRetryRequest in TLS 1.3.
    force_hrr: bool,
}

impl Setup {
    fn new(version: &'static rustls::SupportedProtocolVersion) -> Setup {
        Setup {
            version,
            client_trusts: true,
            mutual: false,
            force_hrr: false,
        }
    }
}

struct Handshake {
    segments: Vec<Segment>,
    /// Index of the segment that carries the client's request (None if the client failed).
    request_segment: Option<usize>,
    leaf_der: Vec<u8>,
    ca_der: Vec<u8>,
    client_error: Option<rustls::Error>,
}

/// Moves bytes both ways until neither side has anything to send; records each write_tls as a
/// segment. Returns the first error of each side.
fn pump(
    client: &mut ClientConnection,
    server: &mut ServerConnection,
    segments: &mut Vec<Segment>,
    errors: &mut (Option<rustls::Error>, Option<rustls::Error>),
) {
    for _ in 0..64 {
        let mut progressed = false;
        while client.wants_write() {
            let mut buf = Vec::new();
            client.write_tls(&mut buf).unwrap();
            if buf.is_empty() {
                break;
            }
            progressed = true;
            segments.push((Dir::ToServer, buf.clone()));
            if errors.1.is_none() {
                let mut rd = &buf[..];
                while !rd.is_empty() {
                    if server.read_tls(&mut rd).is_err() {
                        break;
                    }
                    if let Err(e) = server.process_new_packets() {
                        errors.1 = Some(e);
                        break;
                    }
                }
            }
        }
        while server.wants_write() {
            let mut buf = Vec::new();
            server.write_tls(&mut buf).unwrap();
            if buf.is_empty() {
                break;
            }
            progressed = true;
            segments.push((Dir::ToClient, buf.clone()));
            if errors.0.is_none() {
                let mut rd = &buf[..];
                while !rd.is_empty() {
                    if client.read_tls(&mut rd).is_err() {
                        break;
                    }
                    if let Err(e) = client.process_new_packets() {
                        errors.0 = Some(e);
                        break;
                    }
                }
            }
        }
        if !progressed {
            break;
        }
    }
}

fn handshake(setup: Setup) -> Handshake {
    let ca = pki::ca("modtrace test CA");
    let leaf = pki::leaf(&ca, &["localhost"]);
    let other_ca = pki::ca("someone else");
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(if setup.client_trusts {
            ca.der.clone()
        } else {
            other_ca.der.clone()
        }))
        .unwrap();

    let mut client_provider = rustls::crypto::ring::default_provider();
    let mut server_provider = rustls::crypto::ring::default_provider();
    if setup.force_hrr {
        use rustls::crypto::ring::kx_group::{SECP256R1, X25519};
        client_provider.kx_groups = vec![X25519, SECP256R1];
        server_provider.kx_groups = vec![SECP256R1];
    }
    let client_builder = ClientConfig::builder_with_provider(Arc::new(client_provider))
        .with_protocol_versions(&[setup.version])
        .unwrap()
        .with_root_certificates(roots);
    let client_leaf = pki::leaf(&ca, &["client.test"]);
    let mut client_config = if setup.mutual {
        client_builder
            .with_client_auth_cert(
                vec![CertificateDer::from(client_leaf.der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(client_leaf.key_der.clone())),
            )
            .unwrap()
    } else {
        client_builder.with_no_client_auth()
    };
    client_config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];

    let server_builder = ServerConfig::builder_with_provider(Arc::new(server_provider))
        .with_protocol_versions(&[setup.version])
        .unwrap();
    let server_builder = if setup.mutual {
        let mut client_roots = RootCertStore::empty();
        client_roots
            .add(CertificateDer::from(ca.der.clone()))
            .unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(client_roots),
            provider(),
        )
        .build()
        .unwrap();
        server_builder.with_client_cert_verifier(verifier)
    } else {
        server_builder.with_no_client_auth()
    };
    let mut server_config = server_builder
        .with_single_cert(
            vec![
                CertificateDer::from(leaf.der.clone()),
                CertificateDer::from(ca.der.clone()),
            ],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key_der.clone())),
        )
        .unwrap();
    server_config.alpn_protocols = vec![b"http/1.1".to_vec()];

    let mut client = ClientConnection::new(
        Arc::new(client_config),
        ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    let mut server = ServerConnection::new(Arc::new(server_config)).unwrap();
    let mut segments = Vec::new();
    let mut errors = (None, None);
    pump(&mut client, &mut server, &mut segments, &mut errors);
    let mut request_segment = None;
    if errors.0.is_none() && !client.is_handshaking() {
        client
            .writer()
            .write_all(b"GET /golang.org/x/mod/@v/list HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        request_segment = Some(segments.len());
        pump(&mut client, &mut server, &mut segments, &mut errors);
        server
            .writer()
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nv0.1.0\n")
            .unwrap();
        pump(&mut client, &mut server, &mut segments, &mut errors);
        client.send_close_notify();
        pump(&mut client, &mut server, &mut segments, &mut errors);
    }
    Handshake {
        segments,
        request_segment,
        leaf_der: leaf.der,
        ca_der: ca.der,
        client_error: errors.0,
    }
}

fn ts_of(i: usize) -> Ts {
    Ts(1_750_000_000_000_000_000 + i as i64 * 1_000_000)
}

/// Feeds each segment as `split` cuts it; packet = segment index + 1.
fn run_split(
    segments: &[Segment],
    split: impl Fn(&[u8]) -> Vec<Vec<u8>>,
) -> (Vec<TlsEvent>, TlsSession) {
    let mut conn = TlsConn::new(7);
    let mut out = Vec::new();
    for (i, (dir, bytes)) in segments.iter().enumerate() {
        for piece in split(bytes) {
            conn.on_data(*dir, ts_of(i), i as u64 + 1, &piece, &mut out);
        }
    }
    (out, conn.session().clone())
}

fn run(segments: &[Segment]) -> (Vec<TlsEvent>, TlsSession) {
    run_split(segments, |b| vec![b.to_vec()])
}

fn anomalies(events: &[TlsEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            TlsEvent::Anomaly { what, .. } => Some(what.clone()),
            _ => None,
        })
        .collect()
}

fn client_app_data_packet(events: &[TlsEvent]) -> Option<u64> {
    events.iter().find_map(|e| match e {
        TlsEvent::ClientAppData { packet, .. } => Some(*packet),
        _ => None,
    })
}

#[test]
fn tls13_handshake_transcript() {
    let hs = handshake(Setup::new(&rustls::version::TLS13));
    assert!(hs.client_error.is_none(), "{:?}", hs.client_error);
    let (events, s) = run(&hs.segments);
    assert!(anomalies(&events).is_empty(), "{:?}", anomalies(&events));
    let ch = s.client_hello.as_ref().expect("client hello");
    assert_eq!(ch.sni.as_deref(), Some("localhost"));
    assert_eq!(ch.alpn, vec!["h2".to_string(), "http/1.1".to_string()]);
    assert_eq!(ch.max_offered_version(), 0x0304);
    assert!(ch.extensions.contains(&0x002b) && !ch.cipher_suites.is_empty());
    assert!(!ch.signature_algorithms.is_empty() && !ch.supported_groups.is_empty());
    assert_eq!(ch.random.len(), 32);
    assert!(
        ch.ja4.starts_with("t13d") && ch.ja4.ends_with(&ch.ja4[ch.ja4.len() - 12..]),
        "{}",
        ch.ja4
    );
    assert_eq!(&ch.ja4[8..10], "h2");
    let sh = s.server_hello.as_ref().expect("server hello");
    assert_eq!(sh.version, 0x0304);
    assert_eq!(version_name(sh.version), "TLSv1.3");
    assert!(sh.is_tls13() && !sh.hello_retry_request);
    assert!(
        cipher_suite_name(sh.cipher_suite).starts_with("TLS_"),
        "{}",
        sh.cipher_suite
    );
    assert_eq!(sh.alpn, None, "TLS 1.3 ALPN is in EncryptedExtensions");
    assert!(s.certificates_hidden && s.certificates.is_empty());
    assert!(events
        .iter()
        .any(|e| matches!(e, TlsEvent::CertificatesHidden { .. })));
    assert!(s.handshake_complete);
    // The client's Finished is not application data; the request is.
    let req = hs.request_segment.unwrap() as u64 + 1;
    assert_eq!(client_app_data_packet(&events), Some(req));
    assert_eq!(s.client_app_data_after_handshake.map(|(_, p)| p), Some(req));
    assert!(s.app_data_records.to_server >= 2 && s.app_data_records.to_client >= 2);
    assert!(
        s.alerts.is_empty(),
        "TLS 1.3 close_notify is encrypted as type 23: {:?}",
        s.alerts
    );
    assert_eq!(s.tls13_client_alert_sized_record, None);
}

#[test]
fn tls12_handshake_transcript_extracts_the_chain() {
    let hs = handshake(Setup::new(&rustls::version::TLS12));
    assert!(hs.client_error.is_none(), "{:?}", hs.client_error);
    let (events, s) = run(&hs.segments);
    assert!(anomalies(&events).is_empty(), "{:?}", anomalies(&events));
    let sh = s.server_hello.as_ref().unwrap();
    assert_eq!(version_name(sh.version), "TLSv1.2");
    assert_eq!(sh.alpn.as_deref(), Some("http/1.1"));
    assert!(!s.certificates_hidden);
    assert_eq!(s.certificates, vec![hs.leaf_der.clone(), hs.ca_der.clone()]);
    assert!(events.iter().any(|e| matches!(e, TlsEvent::Certificates { dir: Dir::ToClient, chain, .. } if chain[0] == hs.leaf_der)));
    assert!(s.change_cipher_spec.to_server.is_some() && s.change_cipher_spec.to_client.is_some());
    assert!(s.handshake_complete && !s.certificate_request && !s.resumed);
    let req = hs.request_segment.unwrap() as u64 + 1;
    assert_eq!(client_app_data_packet(&events), Some(req));
    // close_notify after CCS is an encrypted alert (type 21).
    assert!(
        s.alerts
            .iter()
            .any(|a| a.dir == Dir::ToServer && a.encrypted && a.describe() == "encrypted"),
        "{:?}",
        s.alerts
    );
}

#[test]
fn one_byte_chunks_give_the_same_events() {
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let hs = handshake(Setup::new(version));
        let (whole, s1) = run(&hs.segments);
        let (bytes, s2) = run_split(&hs.segments, |b| b.iter().map(|x| vec![*x]).collect());
        assert_eq!(whole, bytes);
        assert_eq!(s1, s2);
    }
}

#[test]
fn client_hello_split_over_two_segments() {
    let hs = handshake(Setup::new(&rustls::version::TLS13));
    let first = &hs.segments[0].1;
    for cut in [1, 3, 5, 6, 9, first.len() / 2, first.len() - 1] {
        let mut segs = vec![
            (Dir::ToServer, first[..cut].to_vec()),
            (Dir::ToServer, first[cut..].to_vec()),
        ];
        segs.extend(hs.segments[1..].iter().cloned());
        let (events, s) = run(&segs);
        assert!(
            anomalies(&events).is_empty(),
            "cut {cut}: {:?}",
            anomalies(&events)
        );
        // The ClientHello completes with the second segment.
        assert!(
            matches!(events[0], TlsEvent::ClientHello { packet: 2, .. }),
            "cut {cut}: {:?}",
            events[0]
        );
        assert_eq!(s.client_hello.unwrap().sni.as_deref(), Some("localhost"));
    }
}

#[test]
fn several_records_in_one_chunk() {
    let hs = handshake(Setup::new(&rustls::version::TLS12));
    // rustls already writes several records per segment (e.g. CKE + CCS + Finished).
    let records_in = |b: &[u8]| {
        let (mut n, mut p) = (0, 0);
        while p + 5 <= b.len() {
            p += 5 + u16::from_be_bytes([b[p + 3], b[p + 4]]) as usize;
            n += 1;
        }
        n
    };
    assert!(hs.segments.iter().any(|(_, b)| records_in(b) >= 3));
    // Whole directions in one chunk each, the server's first: every record of a direction
    // shares one chunk.
    let server: Vec<u8> = hs
        .segments
        .iter()
        .filter(|(d, _)| *d == Dir::ToClient)
        .flat_map(|(_, b)| b.clone())
        .collect();
    let client: Vec<u8> = hs
        .segments
        .iter()
        .filter(|(d, _)| *d == Dir::ToServer)
        .flat_map(|(_, b)| b.clone())
        .collect();
    let (events, s) = run(&[(Dir::ToClient, server), (Dir::ToServer, client)]);
    assert!(anomalies(&events).is_empty(), "{:?}", anomalies(&events));
    assert_eq!(s.certificates, vec![hs.leaf_der, hs.ca_der]);
    assert!(s.client_hello.is_some() && s.server_hello.is_some());
    assert!(s.handshake_complete);
    assert_eq!(s.client_app_data_after_handshake.map(|(_, p)| p), Some(2));
}

#[test]
fn tls12_client_rejects_an_untrusted_certificate_with_a_cleartext_alert() {
    let hs = handshake(Setup {
        client_trusts: false,
        ..Setup::new(&rustls::version::TLS12)
    });
    assert!(hs.client_error.is_some());
    let mut conn = TlsConn::new(1);
    let mut events = Vec::new();
    for (i, (dir, b)) in hs.segments.iter().enumerate() {
        conn.on_data(*dir, ts_of(i), i as u64 + 1, b, &mut events);
    }
    conn.on_end(Dir::ToServer, ts_of(99), 100, false, &mut events);
    let s = conn.session();
    let alert = s
        .alerts
        .iter()
        .find(|a| a.dir == Dir::ToServer)
        .expect("client alert");
    assert!(!alert.encrypted);
    assert_eq!(alert.level, Some(2));
    assert_eq!(alert.describe(), "fatal unknown_ca");
    assert!(alert.is_certificate_rejection());
    assert!(
        !s.certificates.is_empty(),
        "the chain was seen before the alert"
    );
    assert_eq!(s.client_app_data_after_handshake, None);
    assert!(!s.handshake_complete);
    assert!(s.client_closed_before_app_data);
    assert!(events.iter().any(|e| matches!(
        e,
        TlsEvent::Closed {
            dir: Dir::ToServer,
            before_app_data: true,
            reset: false,
            ..
        }
    )));
}

#[test]
fn tls13_client_rejection_is_an_alert_sized_record() {
    let hs = handshake(Setup {
        client_trusts: false,
        ..Setup::new(&rustls::version::TLS13)
    });
    assert!(hs.client_error.is_some());
    let mut conn = TlsConn::new(1);
    let mut events = Vec::new();
    for (i, (dir, b)) in hs.segments.iter().enumerate() {
        conn.on_data(*dir, ts_of(i), i as u64 + 1, b, &mut events);
    }
    conn.on_end(Dir::ToServer, ts_of(99), 100, true, &mut events);
    let s = conn.session();
    assert!(s.tls13_client_alert_sized_record.is_some(), "{events:#?}");
    assert!(events
        .iter()
        .any(|e| matches!(e, TlsEvent::Tls13ClientAlertSized { .. })));
    assert!(!s.handshake_complete);
    assert_eq!(s.client_app_data_after_handshake, None);
    assert!(s.client_closed_before_app_data);
    assert_eq!(s.reset, Some(Dir::ToServer));
}

#[test]
fn tls12_mutual_tls_certificate_request_is_visible() {
    let hs = handshake(Setup {
        mutual: true,
        ..Setup::new(&rustls::version::TLS12)
    });
    assert!(hs.client_error.is_none(), "{:?}", hs.client_error);
    let (events, s) = run(&hs.segments);
    assert!(s.certificate_request);
    assert!(events
        .iter()
        .any(|e| matches!(e, TlsEvent::CertificateRequest { .. })));
    assert_eq!(s.client_certificates.len(), 1);
    assert_eq!(
        client_app_data_packet(&events),
        Some(hs.request_segment.unwrap() as u64 + 1)
    );
}

#[test]
fn tls13_mutual_tls_client_flight_is_not_application_data() {
    let hs = handshake(Setup {
        mutual: true,
        ..Setup::new(&rustls::version::TLS13)
    });
    assert!(hs.client_error.is_none(), "{:?}", hs.client_error);
    let (events, s) = run(&hs.segments);
    assert!(!s.certificate_request, "hidden in TLS 1.3");
    assert!(s.handshake_complete);
    assert_eq!(
        client_app_data_packet(&events),
        Some(hs.request_segment.unwrap() as u64 + 1)
    );
}

#[test]
fn tls13_hello_retry_request() {
    let hs = handshake(Setup {
        force_hrr: true,
        ..Setup::new(&rustls::version::TLS13)
    });
    assert!(hs.client_error.is_none(), "{:?}", hs.client_error);
    let (events, s) = run(&hs.segments);
    assert!(anomalies(&events).is_empty(), "{:?}", anomalies(&events));
    assert!(s.hello_retry_request);
    assert_eq!(s.client_hellos, 2);
    assert!(!s.server_hello.as_ref().unwrap().hello_retry_request);
    assert!(s.handshake_complete);
    assert_eq!(
        client_app_data_packet(&events),
        Some(hs.request_segment.unwrap() as u64 + 1)
    );
}

#[test]
fn server_that_answers_in_plain_http_is_an_anomaly_and_stops() {
    let hs = handshake(Setup::new(&rustls::version::TLS13));
    let segs = vec![
        hs.segments[0].clone(),
        (
            Dir::ToClient,
            b"HTTP/1.1 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
                .to_vec(),
        ),
    ];
    let (events, s) = run(&segs);
    let a = anomalies(&events);
    assert_eq!(a.len(), 1, "{a:?}");
    assert!(
        a[0].contains("not a TLS record") && a[0].contains("HTTP/"),
        "{}",
        a[0]
    );
    assert!(s.stopped.to_client && !s.stopped.to_server);
}

#[test]
fn gap_inside_application_data_keeps_sync() {
    let hs = handshake(Setup::new(&rustls::version::TLS12));
    let (_, full) = run(&hs.segments);
    let mut conn = TlsConn::new(1);
    let mut out = Vec::new();
    let req = hs.request_segment.unwrap();
    for (i, (dir, b)) in hs.segments.iter().enumerate() {
        if i == req {
            // Lose bytes inside the request record's body (after its 5-byte header).
            conn.on_data(*dir, ts_of(i), i as u64 + 1, &b[..8], &mut out);
            conn.on_gap(*dir, 10);
            conn.on_data(*dir, ts_of(i), i as u64 + 1, &b[18..], &mut out);
        } else {
            conn.on_data(*dir, ts_of(i), i as u64 + 1, b, &mut out);
        }
    }
    let s = conn.session();
    assert!(anomalies(&out).is_empty(), "{:?}", anomalies(&out));
    assert_eq!(s.app_data_records, full.app_data_records);
    assert_eq!(
        s.alerts, full.alerts,
        "the close_notify after the gap is still seen"
    );
    assert_eq!(s.gaps.to_server, 1);
}

/// Builds a record.
fn record(ct: u8, version: u16, body: &[u8]) -> Vec<u8> {
    let mut r = vec![ct];
    r.extend_from_slice(&version.to_be_bytes());
    r.extend_from_slice(&(body.len() as u16).to_be_bytes());
    r.extend_from_slice(body);
    r
}

#[test]
fn gap_across_records_resynchronises_on_a_plausible_header() {
    let app = |n: usize| record(content::APPLICATION_DATA, 0x0303, &vec![0x5a; n]);
    let hs = handshake(Setup::new(&rustls::version::TLS12));
    let req = hs.request_segment.unwrap();
    let mut conn = TlsConn::new(1);
    let mut out = Vec::new();
    for (i, (dir, b)) in hs.segments.iter().enumerate().take(req) {
        conn.on_data(*dir, ts_of(i), i as u64 + 1, b, &mut out);
    }
    let before = conn.session().app_data_records.to_client;
    // The server sends 3 records; a gap swallows the end of the first and the start of the
    // second; the rest of the second then the third arrive.
    let stream: Vec<u8> = [app(300), app(400), app(500)].concat();
    conn.on_data(Dir::ToClient, ts_of(50), 51, &stream[..100], &mut out);
    conn.on_gap(Dir::ToClient, 400);
    conn.on_data(Dir::ToClient, ts_of(51), 52, &stream[500..], &mut out);
    let s = conn.session();
    assert!(!s.stopped.to_client);
    // The first record's header and the third record are counted; the second was partly lost.
    assert_eq!(s.app_data_records.to_client, before + 2);
    // After the resync the next record header is read normally.
    conn.on_data(Dir::ToClient, ts_of(52), 53, &app(10), &mut out);
    assert_eq!(conn.session().app_data_records.to_client, before + 3);
}

#[test]
fn garbage_after_a_gap_stops_the_direction() {
    let mut conn = TlsConn::new(1);
    let mut out = Vec::new();
    conn.on_data(
        Dir::ToClient,
        Ts(0),
        1,
        &record(content::APPLICATION_DATA, 0x0303, &[1; 20]),
        &mut out,
    );
    conn.on_gap(Dir::ToClient, 5000);
    let garbage = vec![0xffu8; 100_000];
    for i in 0..4 {
        conn.on_data(Dir::ToClient, Ts(i), 2 + i as u64, &garbage, &mut out);
    }
    assert!(conn.session().stopped.to_client);
    assert!(anomalies(&out).iter().any(|a| a.contains("after a gap")));
}

fn hs_msg(t: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![t];
    m.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    m.extend_from_slice(body);
    m
}

fn ext(t: u16, data: &[u8]) -> Vec<u8> {
    let mut e = t.to_be_bytes().to_vec();
    e.extend_from_slice(&(data.len() as u16).to_be_bytes());
    e.extend_from_slice(data);
    e
}

fn u16s(v: &[u16]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_be_bytes()).collect()
}

fn vec16(b: &[u8]) -> Vec<u8> {
    let mut v = (b.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(b);
    v
}

fn client_hello_body(version: u16, ciphers: &[u16], exts: &[Vec<u8>]) -> Vec<u8> {
    let mut b = version.to_be_bytes().to_vec();
    b.extend_from_slice(&[0x11; 32]);
    b.push(0); // session id
    b.extend(vec16(&u16s(ciphers)));
    b.extend_from_slice(&[1, 0]); // null compression
    if !exts.is_empty() {
        b.extend(vec16(&exts.concat()));
    }
    b
}

fn server_hello_body(version: u16, cipher: u16, exts: &[Vec<u8>]) -> Vec<u8> {
    let mut b = version.to_be_bytes().to_vec();
    b.extend_from_slice(&[0x22; 32]);
    b.push(0);
    b.extend_from_slice(&cipher.to_be_bytes());
    b.push(0);
    if !exts.is_empty() {
        b.extend(vec16(&exts.concat()));
    }
    b
}

/// JA4.md's example lists put in a real ClientHello, GREASE added at the places Chrome puts
/// it: the parsed hello gives the published JA4.
#[test]
fn ja4_of_a_handcrafted_hello_matches_the_published_example() {
    let ciphers = [
        0x0a0a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013,
        0xc014, 0x009c, 0x009d, 0x002f, 0x0035,
    ];
    let sni = {
        let mut name = vec![0u8];
        name.extend(vec16(b"example.com"));
        vec16(&name)
    };
    let alpn = vec16(&[&[2u8][..], b"h2", &[8], b"http/1.1"].concat());
    let sigs = vec16(&u16s(&[
        0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
    ]));
    let versions = {
        let v = u16s(&[0x3a3a, 0x0304, 0x0303]);
        let mut b = vec![v.len() as u8];
        b.extend(v);
        b
    };
    let exts = vec![
        ext(0x2a2a, &[]),
        ext(0x001b, &[2, 0, 2]),
        ext(0x0000, &sni),
        ext(0x0033, &[0, 0]),
        ext(0x0010, &alpn),
        ext(0x4469, &[]),
        ext(0x0017, &[]),
        ext(0x002d, &[1, 1]),
        ext(0x000d, &sigs),
        ext(0x0005, &[1, 0, 0, 0, 0]),
        ext(0x0023, &[]),
        ext(0x0012, &[]),
        ext(0x002b, &versions),
        ext(0xff01, &[0]),
        ext(0x000b, &[1, 0]),
        ext(0x000a, &vec16(&u16s(&[0x4a4a, 0x001d, 0x0017]))),
        ext(0x0015, &[0; 7]),
        ext(0x5a5a, &[0]),
    ];
    let body = client_hello_body(0x0303, &ciphers, &exts);
    let seg = record(content::HANDSHAKE, 0x0301, &hs_msg(1, &body));
    let (events, s) = run(&[(Dir::ToServer, seg)]);
    assert!(anomalies(&events).is_empty());
    let ch = s.client_hello.unwrap();
    assert_eq!(ch.ja4, "t13d1516h2_8daaf6152771_e5627efa2ab1");
    assert_eq!(ch.sni.as_deref(), Some("example.com"));
    assert_eq!(ch.supported_groups, vec![0x4a4a, 0x001d, 0x0017]);
    assert_eq!(ch.extensions.len(), 18, "GREASE kept in the raw list");
    assert!(ch.malformed_extensions.is_empty());
}

#[test]
fn sslv3_and_tls10_versions_from_handcrafted_bytes() {
    for (v, name, ja4_version) in [
        (0x0300u16, "SSLv3", "s3"),
        (0x0301, "TLSv1.0", "10"),
        (0x0302, "TLSv1.1", "11"),
    ] {
        // Old clients send no extensions at all (RFC 5246 7.4.1.2 allows that).
        let ch = record(
            content::HANDSHAKE,
            v,
            &hs_msg(1, &client_hello_body(v, &[0x0035, 0x002f, 0x000a], &[])),
        );
        let sh = record(
            content::HANDSHAKE,
            v,
            &hs_msg(2, &server_hello_body(v, 0x0035, &[])),
        );
        let (events, s) = run(&[(Dir::ToServer, ch), (Dir::ToClient, sh)]);
        assert!(
            anomalies(&events).is_empty(),
            "{name}: {:?}",
            anomalies(&events)
        );
        let hello = s.client_hello.unwrap();
        assert_eq!(hello.max_offered_version(), v);
        assert_eq!(&hello.ja4[1..3], ja4_version);
        assert!(
            hello.ja4.starts_with(&format!("t{ja4_version}i0300")),
            "{}",
            hello.ja4
        );
        let server = s.server_hello.unwrap();
        assert_eq!(version_name(server.version), name);
        assert!(is_legacy_version(server.version));
        assert_eq!(
            cipher_suite_name(server.cipher_suite),
            "TLS_RSA_WITH_AES_256_CBC_SHA"
        );
    }
    assert!(!is_legacy_version(0x0303) && !is_legacy_version(0x0304));
    assert_eq!(version_name(0x7f1c), "TLSv1.3-draft28");
    assert_eq!(version_name(0x1234), "0x1234");
    assert_eq!(cipher_suite_name(0x1234), "0x1234");
    assert_eq!(alert_name(48), "unknown_ca");
    assert_eq!(alert_name(200), "alert-200");
}

#[test]
fn sslv2_compatible_client_hello_is_recognised() {
    // RFC 5246 E.2: msg_type 1, version 3.1, 3 cipher specs (one SSLv2-only), no session id,
    // a 16-byte challenge.
    let mut body = vec![1, 3, 1, 0, 9, 0, 0, 0, 16];
    body.extend_from_slice(&[0x00, 0x00, 0x2f, 0x07, 0x00, 0xc0, 0x00, 0x00, 0x35]);
    body.extend_from_slice(&[0xcc; 16]);
    let mut seg = vec![0x80 | (body.len() >> 8) as u8, body.len() as u8];
    seg.extend_from_slice(&body);
    assert_eq!(
        looks_like_tls_client(&seg),
        Some(HelloFormat::SslV2Compatible)
    );
    // Then the server answers with a normal TLS 1.0 ServerHello.
    let sh = record(
        content::HANDSHAKE,
        0x0301,
        &hs_msg(2, &server_hello_body(0x0301, 0x002f, &[])),
    );
    for split in [1usize, 3, seg.len()] {
        let (events, s) = run_split(
            &[(Dir::ToServer, seg.clone()), (Dir::ToClient, sh.clone())],
            |b| b.chunks(split).map(|c| c.to_vec()).collect(),
        );
        assert!(anomalies(&events).is_empty(), "{:?}", anomalies(&events));
        assert!(s.sslv2_client_hello);
        let ch = s.client_hello.unwrap();
        assert!(ch.sslv2_format);
        assert_eq!(ch.cipher_suites, vec![0x002f, 0x0035]);
        assert_eq!(ch.legacy_version, 0x0301);
        assert_eq!(&ch.random[16..], &[0xcc; 16]);
        assert!(ch.ja4.starts_with("t10i020000_"), "{}", ch.ja4);
        assert_eq!(s.server_hello.unwrap().version, 0x0301);
    }
}

#[test]
fn oversized_handshake_message_is_an_anomaly_not_growth() {
    // A Certificate message announcing 1 MiB, sent in maximal records.
    let mut msg = vec![11u8, 0x10, 0x00, 0x00];
    msg.extend(vec![0u8; 16_000]);
    let mut conn = TlsConn::new(1);
    let mut out = Vec::new();
    conn.on_data(
        Dir::ToClient,
        Ts(0),
        1,
        &record(content::HANDSHAKE, 0x0303, &msg),
        &mut out,
    );
    for i in 0..70 {
        conn.on_data(
            Dir::ToClient,
            Ts(i),
            2,
            &record(content::HANDSHAKE, 0x0303, &[0u8; 16_000]),
            &mut out,
        );
    }
    let a = anomalies(&out);
    assert_eq!(a.len(), 1, "{a:?}");
    assert!(a[0].contains("exceeds the limit"));
    // A ServerHelloDone right after the skipped message is parsed normally: still in sync.
    conn.on_data(
        Dir::ToClient,
        Ts(0),
        3,
        &record(content::HANDSHAKE, 0x0303, &hs_msg(14, &[])),
        &mut out,
    );
    assert_eq!(anomalies(&out).len(), 1);
    // A record longer than RFC 5246 allows: anomaly, skipped by length.
    let big = record(content::APPLICATION_DATA, 0x0303, &vec![0u8; 30_000]);
    conn.on_data(Dir::ToClient, Ts(0), 4, &big, &mut out);
    assert_eq!(anomalies(&out).len(), 2);
    assert!(!conn.session().stopped.to_client);
}

#[test]
fn alerts_in_the_clear_from_both_sides() {
    let ch = record(
        content::HANDSHAKE,
        0x0301,
        &hs_msg(1, &client_hello_body(0x0303, &[0xc02f], &[])),
    );
    // Server refuses: handshake_failure; client: a warning close_notify; then two alerts in one
    // record.
    let segs = vec![
        (Dir::ToServer, ch),
        (Dir::ToClient, record(content::ALERT, 0x0303, &[2, 40])),
        (
            Dir::ToServer,
            record(content::ALERT, 0x0303, &[1, 0, 2, 42]),
        ),
    ];
    let (events, s) = run(&segs);
    let described: Vec<(Dir, String)> = s.alerts.iter().map(|a| (a.dir, a.describe())).collect();
    assert_eq!(
        described,
        vec![
            (Dir::ToClient, "fatal handshake_failure".into()),
            (Dir::ToServer, "warning close_notify".into()),
            (Dir::ToServer, "fatal bad_certificate".into()),
        ]
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, TlsEvent::Alert { .. }))
            .count(),
        3
    );
}

/// xorshift64*: deterministic noise.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn random_bytes_truncation_and_mutation_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let real: Vec<Vec<Segment>> = [&rustls::version::TLS12, &rustls::version::TLS13]
        .into_iter()
        .map(|v| handshake(Setup::new(v)).segments)
        .collect();
    for round in 0..3000 {
        let mut conn = TlsConn::with_limits(
            round,
            TlsLimits {
                max_resync_scan: 4096,
                ..TlsLimits::default()
            },
        );
        let mut out = Vec::new();
        match round % 3 {
            0 => {
                // Pure noise, with a plausible first byte now and then.
                for i in 0..8 {
                    let n = rng.below(600);
                    let mut b: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                    if i == 0 && !b.is_empty() {
                        b[0] = 0x16;
                    }
                    let dir = if rng.next() & 1 == 0 {
                        Dir::ToServer
                    } else {
                        Dir::ToClient
                    };
                    conn.on_data(dir, Ts(i), i as u64, &b, &mut out);
                    if rng.below(5) == 0 {
                        conn.on_gap(dir, rng.next() % 70_000);
                    }
                }
            }
            _ => {
                // A real transcript, mutated: flipped bytes, truncated segments, gaps, odd cuts.
                let segs = &real[round as usize % 2];
                for (i, (dir, b)) in segs.iter().enumerate() {
                    let mut b = b.clone();
                    for _ in 0..rng.below(4) {
                        if !b.is_empty() {
                            let at = rng.below(b.len());
                            b[at] ^= 1 << rng.below(8);
                        }
                    }
                    if rng.below(6) == 0 {
                        b.truncate(rng.below(b.len() + 1));
                    }
                    let mut rest = &b[..];
                    while !rest.is_empty() {
                        let n = 1 + rng.below(rest.len());
                        conn.on_data(*dir, Ts(i as i64), i as u64, &rest[..n], &mut out);
                        rest = &rest[n..];
                    }
                    if rng.below(8) == 0 {
                        conn.on_gap(*dir, rng.next() % 3000);
                    }
                }
            }
        }
        conn.on_end(Dir::ToServer, Ts(0), 0, rng.next() & 1 == 0, &mut out);
        conn.on_end(Dir::ToClient, Ts(0), 0, false, &mut out);
        let s = conn.session();
        assert!(s.alerts.len() <= TlsLimits::default().max_alerts);
        assert!(s.anomaly_notes.len() <= TlsLimits::default().max_anomaly_notes);
        assert!(s.certificates.len() <= TlsLimits::default().max_certificates);
    }
}

#[test]
fn parsers_never_panic_on_truncated_messages() {
    let hs = handshake(Setup::new(&rustls::version::TLS12));
    // Every prefix of the ClientHello body parses or fails cleanly.
    let rec = &hs.segments[0].1;
    let body = &rec[9..];
    for n in 0..body.len() {
        let _ = parser::parse_client_hello(&body[..n], 0x0301);
        let _ = parser::parse_server_hello(&body[..n], 0x0303);
        let _ = parser::parse_certificate_list(&body[..n], n % 2 == 0, 4);
        let _ = parser::parse_sslv2_client_hello(&body[..n]);
    }
    assert!(parser::parse_client_hello(body, 0x0301).is_ok());
}

/// Regression: thousands of empty handshake messages in one record once cost a copy of the
/// rest of the buffer each (quadratic).
#[test]
fn many_small_handshake_messages_in_one_record_are_linear() {
    let body = vec![0u8; 16_000]; // 4000 HelloRequests (type 0, length 0)
    let mut conn = TlsConn::new(1);
    let mut out = Vec::new();
    let start = std::time::Instant::now();
    for i in 0..50 {
        conn.on_data(
            Dir::ToClient,
            Ts(i),
            1,
            &record(content::HANDSHAKE, 0x0303, &body),
            &mut out,
        );
    }
    assert!(out.is_empty(), "{:?}", out.first());
    assert!(
        start.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

/// Application data is skipped by length: `cargo test --release --lib
/// proto::tls::tests::bench_application_data -- --ignored --nocapture`.
#[test]
#[ignore]
fn bench_application_data() {
    let rec = record(content::APPLICATION_DATA, 0x0303, &vec![0x42; 16_384 + 17]);
    let stream: Vec<u8> = rec.iter().copied().cycle().take(256 << 20).collect();
    let mut conn = TlsConn::new(1);
    let mut out = Vec::new();
    let start = std::time::Instant::now();
    for (i, chunk) in stream.chunks(1448).enumerate() {
        conn.on_data(Dir::ToClient, Ts(i as i64), i as u64, chunk, &mut out);
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "{} records, {:.0} MB/s in 1448-byte chunks",
        conn.session().app_data_records.to_client,
        stream.len() as f64 / secs / 1e6
    );
    assert!(out.is_empty());
}

/// Regression: a chunk after a gap that starts exactly with a record header lost that header's
/// first byte.
#[test]
fn gap_ending_at_a_record_boundary_resumes_at_once() {
    let app = |n: usize| record(content::APPLICATION_DATA, 0x0303, &vec![0x5a; n]);
    let mut conn = TlsConn::new(1);
    let mut out = Vec::new();
    conn.on_data(Dir::ToClient, Ts(0), 1, &app(100), &mut out);
    conn.on_gap(Dir::ToClient, 1000);
    conn.on_data(
        Dir::ToClient,
        Ts(1),
        2,
        &[app(200), app(300)].concat(),
        &mut out,
    );
    conn.on_data(
        Dir::ToClient,
        Ts(2),
        3,
        &record(content::ALERT, 0x0303, &[1, 0]),
        &mut out,
    );
    let s = conn.session();
    assert_eq!(s.app_data_records.to_client, 3);
    assert_eq!(s.alerts.len(), 1, "{:?}", anomalies(&out));
    assert!(anomalies(&out).is_empty() && !s.stopped.to_client);
}
