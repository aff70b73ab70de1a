//! The peer corpus' cleartext HTTP/2 captures (`../shared/peer`, MANIFEST.md section 2.2 and
//! `derived/http2_headers.tshark.tsv`) through source -> decode -> flow -> [`Http2Conn`],
//! compared with Suricata's and TShark's expectations. Skips, saying why, when the corpus is
//! absent.

use super::*;
use crate::decode::{Decoder, DefragLimits, Transport};
use crate::flow::{Dir, FlowEvent, FlowId, FlowTable, Limits};
use crate::proto::{header, HttpEvent, HttpExchange, HttpLimits, HttpRequest};
use crate::source::MergedSource;
use crate::time::Ts;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn peer_file(rel: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/peer")
        .join(rel);
    if p.is_file() {
        Some(p)
    } else {
        eprintln!("skipped: {} not present", p.display());
        None
    }
}

enum Chunk {
    Data(Dir, Ts, u64, Vec<u8>),
    Gap(Dir, Ts, u64),
    End(Dir, Ts, u64),
}

/// Every TCP flow of a capture as the flow layer delivers it.
fn tcp_flows(path: &Path) -> BTreeMap<FlowId, Vec<Chunk>> {
    let mut source = MergedSource::open(&[path]).expect("open capture");
    let mut decoder = Decoder::new(DefragLimits::default());
    let mut table = FlowTable::new(Limits::default());
    let mut flows: BTreeMap<FlowId, Vec<Chunk>> = BTreeMap::new();
    let mut events = Vec::new();
    let (mut packet, mut last) = (0u64, Ts(0));
    let take = |events: &mut Vec<FlowEvent>, flows: &mut BTreeMap<FlowId, Vec<Chunk>>| {
        for ev in events.drain(..) {
            let flow = ev.flow();
            let chunk = match ev {
                FlowEvent::Data {
                    dir,
                    ts,
                    packet,
                    data,
                    ..
                } => Chunk::Data(dir, ts, packet, data),
                FlowEvent::Gap { dir, ts, len, .. } => Chunk::Gap(dir, ts, len),
                FlowEvent::Fin {
                    dir, ts, packet, ..
                }
                | FlowEvent::Reset {
                    dir, ts, packet, ..
                } => Chunk::End(dir, ts, packet),
                _ => continue,
            };
            flows.entry(flow).or_default().push(chunk);
        }
    };
    while let Some(frame) = source.next_frame().expect("read capture") {
        packet += 1;
        last = frame.ts;
        if let Some(Transport::Tcp(seg)) = decoder.decode(&frame) {
            table.on_tcp(frame.ts, packet, &seg, &mut events);
        }
        take(&mut events, &mut flows);
        source.recycle(frame);
    }
    table.finish(last, &mut events);
    take(&mut events, &mut flows);
    flows
}

fn run(conn: &mut Http2Conn, chunks: &[Chunk]) -> Vec<HttpEvent> {
    let mut out = Vec::new();
    let mut last = Ts(0);
    for c in chunks {
        match c {
            Chunk::Data(dir, ts, packet, data) => {
                conn.on_data(*dir, *ts, *packet, data, &mut out);
                last = *ts;
            }
            Chunk::Gap(dir, ts, len) => conn.on_gap(*dir, *ts, *len, &mut out),
            Chunk::End(dir, ts, packet) => conn.on_end(*dir, *ts, *packet, &mut out),
        }
    }
    conn.finish(last, &mut out);
    out
}

fn exchanges(out: &[HttpEvent]) -> Vec<&HttpExchange> {
    out.iter()
        .filter_map(|e| match e {
            HttpEvent::Exchange(x) => Some(x),
            _ => None,
        })
        .collect()
}

fn anomalies(out: &[HttpEvent]) -> Vec<&str> {
    out.iter()
        .filter_map(|e| match e {
            HttpEvent::Anomaly { what, .. } => Some(what.as_str()),
            _ => None,
        })
        .collect()
}

fn client_bytes(chunks: &[Chunk]) -> Vec<u8> {
    chunks
        .iter()
        .filter_map(|c| match c {
            Chunk::Data(Dir::ToServer, _, _, d) => Some(d.as_slice()),
            _ => None,
        })
        .flatten()
        .copied()
        .collect()
}

/// The HTTP/2 flows of a prior-knowledge capture, run through Http2Conn.
fn h2_flows(rel: &str) -> Option<Vec<(Vec<HttpEvent>, Http2Stats)>> {
    let path = peer_file(rel)?;
    let mut found = Vec::new();
    for chunks in tcp_flows(&path).values() {
        if !client_bytes(chunks).starts_with(PREFACE) {
            continue;
        }
        let mut conn = Http2Conn::new(1, HttpLimits::default());
        let out = run(&mut conn, chunks);
        found.push((out, conn.stats().clone()));
    }
    Some(found)
}

/// Suricata-verify http2-keywords (MANIFEST 2.2): nghttp2 0.5.2 to localhost:3000, stream 1
/// GET /doc/manual/html/index.html, status 200, length 22617; TShark sees streams 1..11 with
/// GETs for theme.css, jquery.js, underscore.js, doctools.js, theme.js.
#[test]
fn suricata_http2_keywords() {
    let Some(flows) = h2_flows("suricata/tests/http2-keywords/input.pcap") else {
        return;
    };
    assert_eq!(flows.len(), 1);
    let (out, stats) = &flows[0];
    assert_eq!(anomalies(out), Vec::<&str>::new());
    assert!(stats.preface_seen);
    // Suricata: the server's SETTINGS_MAX_CONCURRENT_STREAMS 100, the client's
    // SETTINGS_INITIAL_WINDOW_SIZE 65535, and a GOAWAY NO_ERROR from the client.
    assert_eq!(stats.settings[1].max_concurrent_streams, Some(100));
    assert_eq!(stats.settings[0].initial_window_size, Some(65535));
    assert_eq!(stats.goaway[0].map(|g| g.error_code), Some(0));
    let x = exchanges(out);
    let index = x
        .iter()
        .find(|x| x.request.target == "/doc/manual/html/index.html")
        .expect("stream 1 exchange");
    let q = &index.request;
    assert_eq!((q.method.as_str(), q.version), ("GET", 2));
    assert_eq!(header(&q.headers, "host"), Some("localhost:3000"));
    assert_eq!(header(&q.headers, "user-agent"), Some("nghttp2/0.5.2-DEV"));
    let r = index.response.as_ref().expect("answered");
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len, 22617);
    assert!(r.body.complete);
    let mut targets: Vec<&str> = x.iter().map(|x| x.request.target.as_str()).collect();
    targets.sort();
    for t in [
        "/doc/manual/html/_static/css/theme.css",
        "/doc/manual/html/_static/jquery.js",
        "/doc/manual/html/_static/underscore.js",
        "/doc/manual/html/_static/doctools.js",
        "/doc/manual/html/_static/js/theme.js",
    ] {
        assert!(targets.contains(&t), "{t} missing from {targets:?}");
    }
    assert!(x
        .iter()
        .all(|x| header(&x.request.headers, "host") == Some("localhost:3000")));
}

/// Wireshark packet-h2-14_headers.pcapng: the same nghttp2 session (draft 14 preface is the
/// final one), TShark's HEADERS table lists the same paths.
#[test]
fn wireshark_h2_14_headers() {
    let Some(flows) = h2_flows("wireshark/test/captures/packet-h2-14_headers.pcapng") else {
        return;
    };
    assert_eq!(flows.len(), 1);
    let x = exchanges(&flows[0].0);
    let index = x
        .iter()
        .find(|x| x.request.target == "/doc/manual/html/index.html")
        .expect("index");
    assert_eq!(index.response.as_ref().map(|r| r.status), Some(200));
    assert!(x
        .iter()
        .any(|x| x.request.target == "/doc/manual/html/_static/js/theme.js"));
}

/// Suricata-verify http2-keywords2: HTTP/1.1 `Upgrade: h2c` for /robots.txt, 101, then HTTP/2:
/// stream 1 answers the upgraded request (200), stream 3 GET /humans.txt (404, its block
/// starting with a table size update to 4096). The HTTP/1 part is split off by hand here.
#[test]
fn suricata_http2_keywords2_upgrade() {
    let Some(path) = peer_file("suricata/tests/http2-keywords2/input.pcap") else {
        return;
    };
    let flows = tcp_flows(&path);
    let mut seen = false;
    for chunks in flows.values() {
        let client = client_bytes(chunks);
        let Some(head_end) = find(&client, b"\r\n\r\n") else {
            continue;
        };
        if !client.starts_with(b"GET /robots.txt") {
            continue;
        }
        seen = true;
        let server: Vec<u8> = chunks
            .iter()
            .filter_map(|c| match c {
                Chunk::Data(Dir::ToClient, _, _, d) => Some(d.as_slice()),
                _ => None,
            })
            .flatten()
            .copied()
            .collect();
        assert!(server.starts_with(b"HTTP/1.1 101"));
        let server_h2 = find(&server, b"\r\n\r\n").unwrap() + 4;
        let request = HttpRequest {
            method: "GET".into(),
            target: "/robots.txt".into(),
            version: 1,
            headers: vec![],
            ts: Ts(0),
            packet: 1,
            body_len: 0,
        };
        let mut conn = Http2Conn::after_upgrade(1, HttpLimits::default(), request);
        let mut out = Vec::new();
        // Alternate the directions in chunks so that SETTINGS and their ACKs interleave.
        let c = &client[head_end + 4..];
        let s = &server[server_h2..];
        for k in 0..c.len().max(s.len()).div_ceil(100) {
            let (a, b) = (k * 100, (k + 1) * 100);
            if a < c.len() {
                conn.on_data(Dir::ToServer, Ts(0), 2, &c[a..b.min(c.len())], &mut out);
            }
            if a < s.len() {
                conn.on_data(Dir::ToClient, Ts(0), 3, &s[a..b.min(s.len())], &mut out);
            }
        }
        conn.finish(Ts(0), &mut out);
        assert_eq!(anomalies(&out), Vec::<&str>::new());
        let x = exchanges(&out);
        let robots = x
            .iter()
            .find(|x| x.request.target == "/robots.txt")
            .unwrap();
        assert_eq!(robots.response.as_ref().map(|r| r.status), Some(200));
        let humans = x
            .iter()
            .find(|x| x.request.target == "/humans.txt")
            .unwrap();
        assert_eq!(header(&humans.request.headers, "host"), Some("nghttp2.org"));
        assert_eq!(humans.response.as_ref().map(|r| r.status), Some(404));
        // Suricata: the server's SETTINGS_HEADER_TABLE_SIZE 8192, the client's ENABLE_PUSH 0.
        assert_eq!(conn.stats().settings[1].header_table_size, Some(8192));
        assert_eq!(conn.stats().settings[0].enable_push, Some(0));
    }
    assert!(seen, "no upgrade flow found");
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
