//! The peer corpus' TLS captures (`../shared/peer`, MANIFEST.md section 3) through
//! source -> decode -> flow -> [`TlsConn`], compared with the TShark/OpenSSL table
//! `derived/tls_handshakes.tshark-openssl.tsv` (SNI, version, leaf subject and issuer) and with
//! Zeek's `validation_status` for a few connections. Skips, saying why, when the corpus is
//! absent.

use super::*;
use crate::decode::{Decoder, DefragLimits, Transport};
use crate::flow::{FlowEvent, FlowInfo, FlowTable, Limits};
use crate::source::MergedSource;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use x509_parser::prelude::{FromDer, X509Certificate};

fn peer_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/peer");
    dir.is_dir().then_some(dir)
}

/// One TLS flow of a capture, after the whole capture was read.
struct TlsFlow {
    info: FlowInfo,
    session: TlsSession,
}

/// Reads a capture and runs a TlsConn on every flow whose client starts with TLS.
fn tls_flows(path: &Path) -> Vec<TlsFlow> {
    let mut source = MergedSource::open(&[path]).expect("open capture");
    let mut decoder = Decoder::new(DefragLimits::default());
    let mut table = FlowTable::new(Limits::default());
    let mut infos: HashMap<u64, FlowInfo> = HashMap::new();
    let mut conns: HashMap<u64, (TlsConn, Vec<TlsEvent>)> = HashMap::new();
    let mut not_tls: std::collections::HashSet<u64> = Default::default();
    let mut fevents = Vec::new();
    let (mut packet, mut last) = (0u64, crate::time::Ts(0));
    let mut handle = |fevents: &mut Vec<FlowEvent>,
                      infos: &mut HashMap<u64, FlowInfo>,
                      conns: &mut HashMap<u64, (TlsConn, Vec<TlsEvent>)>| {
        for ev in fevents.drain(..) {
            match ev {
                FlowEvent::Opened(info) => {
                    infos.insert(info.id, info);
                }
                FlowEvent::Data {
                    flow,
                    dir,
                    ts,
                    packet,
                    data,
                } => {
                    if !conns.contains_key(&flow)
                        && !not_tls.contains(&flow)
                        && dir == Dir::ToServer
                    {
                        if looks_like_tls_client(&data).is_some() {
                            conns.insert(flow, (TlsConn::new(flow), Vec::new()));
                        } else {
                            not_tls.insert(flow);
                        }
                    }
                    if let Some((c, out)) = conns.get_mut(&flow) {
                        c.on_data(dir, ts, packet, &data, out);
                    }
                }
                FlowEvent::Gap { flow, dir, len, .. } => {
                    if let Some((c, _)) = conns.get_mut(&flow) {
                        c.on_gap(dir, len);
                    }
                }
                FlowEvent::Fin {
                    flow,
                    dir,
                    ts,
                    packet,
                }
                | FlowEvent::Reset {
                    flow,
                    dir,
                    ts,
                    packet,
                } => {
                    let reset = matches!(ev, FlowEvent::Reset { .. });
                    if let Some((c, out)) = conns.get_mut(&flow) {
                        c.on_end(dir, ts, packet, reset, out);
                    }
                }
                _ => {}
            }
        }
    };
    while let Some(frame) = source.next_frame().expect("read capture") {
        packet += 1;
        last = frame.ts;
        if let Some(Transport::Tcp(seg)) = decoder.decode(&frame) {
            table.on_tcp(frame.ts, packet, &seg, &mut fevents);
        }
        handle(&mut fevents, &mut infos, &mut conns);
        source.recycle(frame);
    }
    table.finish(last, &mut fevents);
    handle(&mut fevents, &mut infos, &mut conns);
    let mut flows: Vec<TlsFlow> = conns
        .into_iter()
        .filter_map(|(id, (c, events))| {
            // Every event agrees with the summary.
            let hellos = events
                .iter()
                .filter(|e| matches!(e, TlsEvent::ClientHello { .. }))
                .count();
            assert_eq!(hellos as u32, c.session().client_hellos);
            Some(TlsFlow {
                info: infos.get(&id)?.clone(),
                session: c.session().clone(),
            })
        })
        .collect();
    flows.sort_by_key(|f| f.info.id);
    flows
}

/// OpenSSL's RFC 2253 one-line form (`-nameopt RFC2253`): RDNs last to first, short names,
/// `,+"\<>;` escaped, bytes above 0x7f as `\XX`.
fn rfc2253(name: &x509_parser::x509::X509Name<'_>) -> String {
    let short = |oid: &str| -> Option<&'static str> {
        Some(match oid {
            "2.5.4.3" => "CN",
            "2.5.4.6" => "C",
            "2.5.4.7" => "L",
            "2.5.4.8" => "ST",
            "2.5.4.9" => "street",
            "2.5.4.10" => "O",
            "2.5.4.11" => "OU",
            "2.5.4.5" => "serialNumber",
            "2.5.4.17" => "postalCode",
            "2.5.4.15" => "businessCategory",
            "2.5.4.12" => "title",
            "2.5.4.4" => "SN",
            "2.5.4.42" => "GN",
            "2.5.4.13" => "description",
            "1.2.840.113549.1.9.1" => "emailAddress",
            "0.9.2342.19200300.100.1.25" => "DC",
            "0.9.2342.19200300.100.1.1" => "UID",
            "1.3.6.1.4.1.311.60.2.1.3" => "jurisdictionC",
            "1.3.6.1.4.1.311.60.2.1.2" => "jurisdictionST",
            "1.3.6.1.4.1.311.60.2.1.1" => "jurisdictionL",
            "2.5.29.17" => "subjectAltName",
            _ => return None,
        })
    };
    let mut rdns = Vec::new();
    for rdn in name.iter_rdn() {
        let mut parts = Vec::new();
        for attr in rdn.iter() {
            let oid = attr.attr_type().to_id_string();
            let key = short(&oid).map(str::to_string).unwrap_or(oid);
            let value = super::verify::attribute_text(attr);
            let mut escaped = String::new();
            for (i, c) in value.chars().enumerate() {
                if ",+\"\\<>;".contains(c) || (i == 0 && (c == '#' || c == ' ')) {
                    escaped.push('\\');
                    escaped.push(c);
                } else if (c as u32) > 0x7f {
                    let mut buf = [0u8; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        escaped.push_str(&format!("\\{b:02X}"));
                    }
                } else {
                    escaped.push(c);
                }
            }
            parts.push(format!("{key}={escaped}"));
        }
        rdns.push(parts.join("+"));
    }
    rdns.reverse();
    rdns.join(",")
}

struct Expected {
    pcap: String,
    sni: String,
    version: String,
    certs: String,
    subject: String,
    issuer: String,
}

fn expected_rows(dir: &Path) -> Vec<Expected> {
    let text = std::fs::read_to_string(dir.join("derived/tls_handshakes.tshark-openssl.tsv"))
        .unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            Some(Expected {
                pcap: f.first()?.to_string(),
                sni: f.get(2)?.to_string(),
                version: f.get(3)?.to_string(),
                certs: f.get(6)?.to_string(),
                subject: f.get(7)?.to_string(),
                issuer: f.get(8)?.to_string(),
            })
        })
        .collect()
}

/// The table's version text for our numeric version: `TLSv1.2`, drafts as `0x7f1c`.
fn tshark_version(v: Option<u16>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v >> 8 == 0x7f => format!("0x{v:04x}"),
        Some(v) => version_name(v),
    }
}

#[test]
fn peer_corpus_tls_agrees_with_tshark_and_openssl() {
    let Some(dir) = peer_dir() else {
        eprintln!("skipped: peer corpus not found (../shared/peer)");
        return;
    };
    let rows = expected_rows(&dir);
    assert!(
        !rows.is_empty(),
        "no rows in derived/tls_handshakes.tshark-openssl.tsv"
    );
    let mut pcaps: Vec<String> = rows.iter().map(|r| r.pcap.clone()).collect();
    pcaps.dedup();
    let (mut total, mut sni_ok, mut ver_ok) = (0usize, 0usize, 0usize);
    let (mut cert_rows, mut subj_ok, mut iss_ok, mut count_ok) = (0usize, 0usize, 0usize, 0usize);
    let (mut flows_total, mut anomalies, mut unmatched) = (0usize, 0u64, 0usize);
    let mut notes = Vec::new();
    let (mut complete, mut accepted, mut hidden, mut with_alerts) = (0, 0, 0, 0);
    for pcap in &pcaps {
        let path = dir.join(pcap);
        if !path.exists() {
            notes.push(format!("{pcap}: missing"));
            continue;
        }
        let flows = tls_flows(&path);
        flows_total += flows.len();
        anomalies += flows.iter().map(|f| f.session.anomalies).sum::<u64>();
        for f in &flows {
            for note in &f.session.anomaly_notes {
                notes.push(format!("{pcap} flow {}: anomaly: {note}", f.info.id));
            }
        }
        for f in &flows {
            let s = &f.session;
            complete += usize::from(s.handshake_complete);
            accepted += usize::from(s.client_app_data_after_handshake.is_some());
            hidden += usize::from(s.certificates_hidden);
            with_alerts += usize::from(!s.alerts.is_empty());
            // Every certificate the corpus carries in the clear gives details.
            for der in s.certificates.iter().chain(&s.client_certificates) {
                match cert_details(der) {
                    Ok(info) => assert!(
                        !info.subject.starts_with("<X509Error"),
                        "{pcap}: {}",
                        info.subject
                    ),
                    Err(e) => notes.push(format!("{pcap}: cert_details: {e}")),
                }
            }
        }
        // Our rows, in the table's terms.
        let ours: Vec<(String, String, String, String, String, bool)> = flows
            .iter()
            .filter(|f| f.session.client_hello.is_some())
            .map(|f| {
                let s = &f.session;
                let sni = s
                    .client_hello
                    .as_ref()
                    .and_then(|c| c.sni.clone())
                    .unwrap_or_else(|| "-".into());
                let (subject, issuer) =
                    match s.certificates.first().map(|d| X509Certificate::from_der(d)) {
                        Some(Ok((_, c))) => (rfc2253(c.subject()), rfc2253(c.issuer())),
                        _ => ("-".into(), "-".into()),
                    };
                (
                    sni,
                    tshark_version(s.version()),
                    s.certificates.len().to_string(),
                    subject,
                    issuer,
                    s.certificates_hidden,
                )
            })
            .collect();
        let mut used = vec![false; ours.len()];
        let my_rows: Vec<&Expected> = rows.iter().filter(|r| &r.pcap == pcap).collect();
        // First pass: pair rows with a flow that agrees on everything; then the rest by score.
        let exact = |o: &(String, String, String, String, String, bool), r: &Expected| {
            o.0 == r.sni
                && o.1 == r.version
                && o.2 == r.certs
                && o.3 == r.subject
                && o.4 == r.issuer
        };
        let mut pairs: Vec<(usize, Option<usize>)> = Vec::new();
        let mut pending = Vec::new();
        for (ri, row) in my_rows.iter().enumerate() {
            match ours
                .iter()
                .enumerate()
                .position(|(i, o)| !used[i] && exact(o, row))
            {
                Some(i) => {
                    used[i] = true;
                    pairs.push((ri, Some(i)));
                }
                None => pending.push(ri),
            }
        }
        for ri in pending {
            let row = my_rows[ri];
            let best = ours
                .iter()
                .enumerate()
                .filter(|(i, _)| !used[*i])
                .max_by_key(|(_, o)| {
                    2 * usize::from(o.0 == row.sni)
                        + 2 * usize::from(o.1 == row.version)
                        + usize::from(o.3 == row.subject)
                        + usize::from(o.4 == row.issuer)
                })
                .map(|(i, _)| i);
            if let Some(i) = best {
                used[i] = true;
            }
            pairs.push((ri, best));
        }
        for (ri, best) in pairs {
            let row = my_rows[ri];
            total += 1;
            let Some(i) = best else {
                unmatched += 1;
                notes.push(format!(
                    "{pcap}: no TLS flow for row sni={} version={}",
                    row.sni, row.version
                ));
                continue;
            };
            let o = &ours[i];
            sni_ok += usize::from(o.0 == row.sni);
            ver_ok += usize::from(o.1 == row.version);
            if o.0 != row.sni || o.1 != row.version {
                notes.push(format!(
                    "{pcap}: sni {} vs {}, version {} vs {}",
                    o.0, row.sni, o.1, row.version
                ));
            }
            // Certificates: only where they are on the wire in the clear (TShark decrypted the
            // TLS 1.3 ones with key logs).
            if !o.5 && row.version != "-" {
                cert_rows += 1;
                count_ok += usize::from(o.2 == row.certs);
                subj_ok += usize::from(o.3 == row.subject);
                iss_ok += usize::from(o.4 == row.issuer);
                if o.3 != row.subject || o.4 != row.issuer || o.2 != row.certs {
                    notes.push(format!(
                        "{pcap}: certs {} vs {}; subject {:?} vs {:?}; issuer {:?} vs {:?}",
                        o.2, row.certs, o.3, row.subject, o.4, row.issuer
                    ));
                }
            }
        }
    }
    eprintln!(
        "peer TLS: {} captures, {flows_total} TLS flows, {total} table rows ({unmatched} without a flow): \
         SNI {sni_ok}/{total}, version {ver_ok}/{total}; cleartext chains {cert_rows}: count {count_ok}, \
         leaf subject {subj_ok}, issuer {iss_ok}; {anomalies} anomalies; handshake complete {complete}, \
         client application data after the handshake {accepted}, certificates hidden (TLS 1.3) {hidden}, \
         with alerts {with_alerts}",
        pcaps.len()
    );
    for n in &notes {
        eprintln!("  {n}");
    }
    // Floors at the measured agreement (see the notes above for every difference).
    assert!(sni_ok * 100 >= total * 95, "SNI agreement {sni_ok}/{total}");
    assert!(
        ver_ok * 100 >= total * 95,
        "version agreement {ver_ok}/{total}"
    );
    // Measured: 118/119 SNI (the POP3 STARTTLS capture is not TLS from its first byte),
    // 117/119 versions (that one, and a flow TShark took for a retransmission after a port
    // reuse and did not dissect: its ClientKeyExchange shows the ServerHello we read was
    // real), 98/98 chains.
    assert_eq!(
        (subj_ok, iss_ok, count_ok),
        (cert_rows, cert_rows, cert_rows),
        "chains"
    );
    assert_eq!(anomalies, 0);
}

/// suricata-verify `ja4-tls/test.yaml`: `tls.ja4 = t12i1810s1_27d4652c4487_06a4338d0495`.
#[test]
fn peer_corpus_ja4_matches_suricata() {
    let Some(dir) = peer_dir() else {
        eprintln!("skipped: peer corpus not found (../shared/peer)");
        return;
    };
    let flows = tls_flows(&dir.join("suricata/tests/ja4-tls/input.pcap"));
    let ja4: Vec<String> = flows
        .iter()
        .filter_map(|f| f.session.client_hello.as_ref().map(|c| c.ja4.clone()))
        .collect();
    assert_eq!(
        ja4,
        vec!["t12i1810s1_27d4652c4487_06a4338d0495".to_string()]
    );
}

/// Zeek `validate-certs` (MANIFEST 3.1), at packet time, with the bundled roots. Zeek does not
/// check the host name, so "ok" is compared with valid-or-only-a-name-mismatch.
#[test]
fn peer_corpus_validation_compared_with_zeek() {
    let Some(dir) = peer_dir() else {
        eprintln!("skipped: peer corpus not found (../shared/peer)");
        return;
    };
    let store = TrustStore::bundled();
    // (pcap, server address, Zeek's status)
    let cases = [
        (
            "zeek/Traces/tls/google-cert-repeat.pcap",
            "142.250.179.196",
            "ok",
        ),
        (
            "zeek/Traces/tls/tls-expired-cert.pcap",
            "87.98.220.10",
            "certificate has expired",
        ),
        (
            "zeek/Traces/tls/tls-expired-cert.pcap",
            "122.1.240.204",
            "ok",
        ),
        (
            "zeek/Traces/tls/missing-intermediate.pcap",
            "128.32.169.140",
            "unable to get local issuer certificate",
        ),
        (
            "zeek/Traces/tls/missing-intermediate.pcap",
            "72.167.102.91",
            "ok",
        ),
        (
            "zeek/Traces/tls/CVE-2015-3194.pcap",
            "104.236.167.107",
            "certificate signature failure",
        ),
        (
            "zeek/Traces/tls/signed_certificate_timestamp.pcap",
            "",
            "ok",
        ),
        (
            "zeek/Traces/tls/signed_certificate_timestamp-2.pcap",
            "",
            "ok",
        ),
    ];
    let (mut compared, mut agree) = (0, 0);
    let mut google_ok = 0;
    for (pcap, server, zeek) in cases {
        for f in tls_flows(&dir.join(pcap)) {
            if !server.is_empty() && f.info.server.ip().to_string() != server {
                continue;
            }
            if f.session.certificates.is_empty() {
                continue;
            }
            let name = match f.session.client_hello.as_ref().and_then(|c| c.sni.clone()) {
                Some(sni) => ServerNameInput::Dns(sni),
                None => ServerNameInput::Ip(f.info.server.ip()),
            };
            let v = store.validate(&f.session.certificates, &name, f.info.first_ts);
            let trust_ok =
                v.is_valid() || (v.reason == Some(Reason::NameMismatch) && v.also.is_empty());
            let ours = match v.reason {
                _ if trust_ok => "ok",
                Some(Reason::Expired) => "certificate has expired",
                Some(Reason::UnknownIssuer) => "unable to get local issuer certificate",
                Some(Reason::BadSignature) | Some(Reason::UnsupportedAlgorithm) => {
                    "certificate signature failure"
                }
                _ => "other",
            };
            compared += 1;
            agree += usize::from(ours == zeek);
            if pcap.contains("google-cert-repeat") && trust_ok {
                google_ok += 1;
            }
            eprintln!(
                "{pcap} {} -> {name}: ours {:?} {:?} also {:?} ({}); Zeek: {zeek}",
                f.info.server,
                v.status,
                v.reason.map(|r| r.as_str()),
                v.also,
                v.detail
            );
        }
    }
    eprintln!("validation agreement with Zeek: {agree}/{compared}");
    // Measured 12/16: the differences are the trust store's age (Zeek's test roots are from
    // 2014-2021; webpki-roots follows today's Mozilla list, without AddTrust, VeriSign G5 or
    // the DigiCert G1 roots) and a v1 certificate rustls rejects before any signature check.
    assert!(compared >= 16, "only {compared} connections compared");
    assert!(agree >= 12, "agreement {agree}/{compared}");
    // GTS Root R1 is in the bundled roots: the 2021 Google chains validate.
    assert_eq!(google_ok, 8, "google-cert-repeat: {google_ok}/8 valid");
}
