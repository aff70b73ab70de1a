//! Transcripts: bytes in, events out. Frames are built by hand; header blocks come from
//! loona-hpack's encoder or, for RFC 7541 appendix C, from the RFC's bytes.

use super::frame::{build, flags, setting, FrameType};
use super::hpack::HeaderDecoder;
use super::*;
use crate::flow::{Dir, FlowId};
use crate::proto::{header, HttpEvent, HttpExchange, HttpLimits};
use crate::time::Ts;
use flate2::write::GzEncoder;
use flate2::Compression;
use loona_hpack::Encoder;
use std::io::Write;

const FLOW: FlowId = 9;

fn ts(packet: u64) -> Ts {
    Ts(packet as i64 * 1_000_000)
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Drives one connection; every chunk is one packet, numbered from 1, at `packet` ms.
struct T {
    conn: Http2Conn,
    out: Vec<HttpEvent>,
    packet: u64,
}

impl T {
    fn new() -> T {
        T::with(HttpLimits::default(), Http2Limits::default())
    }
    fn with(limits: HttpLimits, h2: Http2Limits) -> T {
        T {
            conn: Http2Conn::with_limits(FLOW, limits, h2),
            out: Vec::new(),
            packet: 0,
        }
    }
    fn send(&mut self, dir: Dir, data: &[u8]) -> &mut T {
        self.packet += 1;
        self.conn
            .on_data(dir, ts(self.packet), self.packet, data, &mut self.out);
        self
    }
    fn c(&mut self, data: &[u8]) -> &mut T {
        self.send(Dir::ToServer, data)
    }
    fn s(&mut self, data: &[u8]) -> &mut T {
        self.send(Dir::ToClient, data)
    }
    fn gap(&mut self, dir: Dir, len: u64) -> &mut T {
        self.conn.on_gap(dir, ts(self.packet), len, &mut self.out);
        self
    }
    fn finish(&mut self) -> &mut T {
        self.conn.finish(ts(self.packet + 1), &mut self.out);
        self
    }
    fn exchanges(&self) -> Vec<&HttpExchange> {
        crate::proto::exchanges_of(&self.out)
    }
    fn anomalies(&self) -> Vec<&str> {
        crate::proto::anomalies_of(&self.out)
    }
    fn has_anomaly(&self, part: &str) -> bool {
        self.anomalies().iter().any(|a| a.contains(part))
    }
}

fn block(enc: &mut Encoder<'static>, fields: &[(&str, &str)]) -> Vec<u8> {
    enc.encode(fields.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())))
}

fn headers(stream: u32, fl: u8, block: &[u8]) -> Vec<u8> {
    build(FrameType::Headers, fl, stream, block)
}

fn data(stream: u32, fl: u8, bytes: &[u8]) -> Vec<u8> {
    build(FrameType::Data, fl, stream, bytes)
}

fn settings(pairs: &[(u16, u32)]) -> Vec<u8> {
    let mut p = Vec::new();
    for (id, v) in pairs {
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&v.to_be_bytes());
    }
    build(FrameType::Settings, 0, 0, &p)
}

fn settings_ack() -> Vec<u8> {
    build(FrameType::Settings, flags::ACK, 0, &[])
}

fn rst(stream: u32, code: u32) -> Vec<u8> {
    build(FrameType::RstStream, 0, stream, &code.to_be_bytes())
}

fn goaway(last: u32, code: u32) -> Vec<u8> {
    let mut p = last.to_be_bytes().to_vec();
    p.extend_from_slice(&code.to_be_bytes());
    build(FrameType::Goaway, 0, 0, &p)
}

const EH: u8 = flags::END_HEADERS;
const ES: u8 = flags::END_STREAM;

fn get(enc: &mut Encoder<'static>, path: &str) -> Vec<u8> {
    block(
        enc,
        &[
            (":method", "GET"),
            (":scheme", "https"),
            (":authority", "proxy.golang.org"),
            (":path", path),
            ("user-agent", "Go-http-client/2.0"),
            ("accept-encoding", "gzip"),
        ],
    )
}

fn client_start() -> Vec<u8> {
    let mut v = PREFACE.to_vec();
    v.extend(settings(&[
        (setting::ENABLE_PUSH, 0),
        (setting::INITIAL_WINDOW_SIZE, 4 << 20),
    ]));
    v
}

fn server_start() -> Vec<u8> {
    let mut v = settings(&[(setting::MAX_CONCURRENT_STREAMS, 250)]);
    v.extend(settings_ack());
    v
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// One GET on stream 1 answered with a body in three DATA frames.
fn simple_transcript() -> (Vec<u8>, Vec<u8>) {
    let (mut ce, mut se) = (Encoder::new(), Encoder::new());
    let mut client = client_start();
    client.extend(headers(
        1,
        EH | ES,
        &get(&mut ce, "/golang.org/x/mod/@v/list"),
    ));
    client.extend(settings_ack());
    let mut server = server_start();
    server.extend(headers(
        1,
        EH,
        &block(
            &mut se,
            &[
                (":status", "200"),
                ("content-type", "text/plain; charset=UTF-8"),
            ],
        ),
    ));
    server.extend(data(1, 0, b"v0.1.0\n"));
    server.extend(data(1, 0, b"v0.2.0\n"));
    server.extend(data(1, ES, b"v0.3.0\n"));
    (client, server)
}

fn check_simple(t: &T) {
    assert_eq!(t.anomalies(), Vec::<&str>::new());
    let x = t.exchanges();
    assert_eq!(x.len(), 1);
    let (q, r) = (&x[0].request, x[0].response.as_ref().unwrap());
    assert_eq!(x[0].flow, FLOW);
    assert_eq!(
        (q.method.as_str(), q.target.as_str(), q.version),
        ("GET", "/golang.org/x/mod/@v/list", 2)
    );
    assert_eq!(header(&q.headers, "host"), Some("proxy.golang.org"));
    assert_eq!(header(&q.headers, "user-agent"), Some("Go-http-client/2.0"));
    assert!(q.headers.iter().all(|h| !h.name.starts_with(':')));
    assert_eq!((r.status, r.version), (200, 2));
    assert_eq!(
        header(&r.headers, "content-type"),
        Some("text/plain; charset=UTF-8")
    );
    assert_eq!(r.body.data, b"v0.1.0\nv0.2.0\nv0.3.0\n");
    assert_eq!((r.body.len, r.body.wire_len), (21, 21));
    assert!(r.body.complete && r.body.kept_all && !r.body.decode_error);
}

#[test]
fn get_and_response_whole() {
    let (client, server) = simple_transcript();
    let mut t = T::new();
    t.c(&client).s(&server);
    check_simple(&t);
    assert!(t.conn.stats().preface_seen);
    assert_eq!(t.conn.open_streams(), 0);
    // Request at the client's packet, response start and end at the server's.
    let x = t.exchanges()[0];
    assert_eq!(
        (x.request.packet, x.response.as_ref().unwrap().end_packet),
        (1, 2)
    );
}

#[test]
fn get_and_response_split_at_every_byte() {
    let (client, server) = simple_transcript();
    let mut t = T::new();
    for b in &client {
        t.c(std::slice::from_ref(b));
    }
    for b in &server {
        t.s(std::slice::from_ref(b));
    }
    check_simple(&t);
    // The request began in the packet carrying the first byte of its HEADERS frame.
    let x = t.exchanges()[0];
    let headers_at = (PREFACE.len() + 9 + 12) as u64 + 1;
    assert_eq!(x.request.packet, headers_at);
    assert_eq!(x.response.as_ref().unwrap().end_packet, t.packet);
}

#[test]
fn split_at_every_server_boundary_with_interleaving() {
    // The client's request first, then the server's bytes cut at every point with the client's
    // SETTINGS ACK in between (as on the wire: it answers the server's SETTINGS).
    let (client, server) = simple_transcript();
    let ack_at = client.len() - 9;
    for cut in 0..=server.len() {
        let mut t = T::new();
        t.c(&client[..ack_at]);
        t.s(&server[..cut]);
        t.c(&client[ack_at..]);
        t.s(&server[cut..]);
        check_simple(&t);
    }
}

#[test]
fn interleaved_streams() {
    let (mut ce, mut se) = (Encoder::new(), Encoder::new());
    let mut client = client_start();
    client.extend(headers(1, EH | ES, &get(&mut ce, "/a/@v/list")));
    client.extend(headers(3, EH | ES, &get(&mut ce, "/b/@v/list")));
    let mut server = server_start();
    server.extend(headers(3, EH, &block(&mut se, &[(":status", "200")])));
    server.extend(headers(1, EH, &block(&mut se, &[(":status", "404")])));
    server.extend(data(3, 0, b"b1 "));
    server.extend(data(1, 0, b"a1 "));
    server.extend(data(3, 0, b"b2 "));
    server.extend(data(1, ES, b"a2"));
    server.extend(data(3, ES, b"b3"));
    let mut t = T::new();
    t.c(&client).s(&server);
    assert_eq!(t.anomalies(), Vec::<&str>::new());
    let x = t.exchanges();
    assert_eq!(x.len(), 2);
    // Stream 1 ended first.
    assert_eq!(x[0].request.target, "/a/@v/list");
    let r = x[0].response.as_ref().unwrap();
    assert_eq!((r.status, r.body.data.as_slice()), (404, &b"a1 a2"[..]));
    assert_eq!(x[1].request.target, "/b/@v/list");
    let r = x[1].response.as_ref().unwrap();
    assert_eq!((r.status, r.body.data.as_slice()), (200, &b"b1 b2 b3"[..]));
    assert_eq!(t.conn.stats().streams, 2);
}

#[test]
fn continuation_carries_the_rest_of_the_block() {
    let mut ce = Encoder::new();
    let b = get(&mut ce, "/rsc.io/quote/@v/v1.5.2.mod");
    let (a, rest) = b.split_at(3);
    let (m, z) = rest.split_at(rest.len() / 2);
    let mut client = client_start();
    client.extend(headers(1, ES, a));
    client.extend(build(FrameType::Continuation, 0, 1, m));
    client.extend(build(FrameType::Continuation, EH, 1, z));
    let mut se = Encoder::new();
    let mut server = server_start();
    server.extend(headers(1, EH | ES, &block(&mut se, &[(":status", "204")])));
    let mut t = T::new();
    t.c(&client).s(&server);
    assert_eq!(t.anomalies(), Vec::<&str>::new());
    let x = t.exchanges();
    assert_eq!(x.len(), 1);
    assert_eq!(x[0].request.target, "/rsc.io/quote/@v/v1.5.2.mod");
    assert_eq!(x[0].response.as_ref().unwrap().status, 204);
}

#[test]
fn continuation_interrupted_stops_the_direction() {
    let mut ce = Encoder::new();
    let b = get(&mut ce, "/x");
    let mut client = client_start();
    client.extend(headers(1, ES, &b[..2]));
    // RFC 9113 6.10: only CONTINUATION on stream 1 may follow.
    client.extend(build(FrameType::Ping, 0, 0, &[0; 8]));
    client.extend(build(FrameType::Continuation, EH, 1, &b[2..]));
    client.extend(headers(3, EH | ES, &get(&mut ce, "/y")));
    let mut t = T::new();
    t.c(&client).finish();
    assert!(t.has_anomaly("inside the header block of stream 1 (RFC 9113 6.10)"));
    assert!(t.has_anomaly("no longer reading client-to-server HTTP/2 frames"));
    assert!(t.exchanges().is_empty());

    // CONTINUATION on another stream, and CONTINUATION with no block.
    let mut c2 = client_start();
    c2.extend(headers(1, 0, &b[..2]));
    c2.extend(build(FrameType::Continuation, EH, 3, &b[2..]));
    let mut t = T::new();
    t.c(&c2);
    assert!(t.has_anomaly("CONTINUATION frame on stream 3 inside the header block of stream 1"));
    let mut c3 = client_start();
    c3.extend(build(FrameType::Continuation, EH, 1, &b));
    let mut t = T::new();
    t.c(&c3);
    assert!(t.has_anomaly("without a header block to continue"));
}

#[test]
fn padding_and_priority_are_removed() {
    let mut ce = Encoder::new();
    let b = get(&mut ce, "/padded");
    // HEADERS: pad length 4, stream dependency + weight, fragment, 4 bytes of padding.
    let mut p = vec![4, 0, 0, 0, 0, 16];
    p.extend_from_slice(&b);
    p.extend_from_slice(&[0; 4]);
    let mut client = client_start();
    client.extend(headers(1, EH | ES | flags::PADDED | flags::PRIORITY, &p));
    let mut se = Encoder::new();
    let mut server = server_start();
    server.extend(headers(1, EH, &block(&mut se, &[(":status", "200")])));
    // DATA with 3 bytes of padding, then with a pad length of 0, then padding only.
    server.extend(data(1, flags::PADDED, &[3, b'a', b'b', 0, 0, 0]));
    server.extend(data(1, flags::PADDED, &[0, b'c']));
    server.extend(data(1, flags::PADDED | ES, &[2, 0, 0]));
    let mut t = T::new();
    for b in client.iter() {
        t.c(std::slice::from_ref(b));
    }
    for b in server.iter() {
        t.s(std::slice::from_ref(b));
    }
    assert_eq!(t.anomalies(), Vec::<&str>::new());
    let x = t.exchanges();
    assert_eq!(x[0].request.target, "/padded");
    let r = x[0].response.as_ref().unwrap();
    assert_eq!((r.body.data.as_slice(), r.body.wire_len), (&b"abc"[..], 3));
    assert!(r.body.complete);
}

#[test]
fn padding_longer_than_the_frame() {
    let (mut ce, mut se) = (Encoder::new(), Encoder::new());
    let mut client = client_start();
    client.extend(headers(1, EH | ES, &get(&mut ce, "/p")));
    let mut server = server_start();
    server.extend(headers(1, EH, &block(&mut se, &[(":status", "200")])));
    server.extend(data(1, flags::PADDED | ES, &[9, b'a']));
    let mut t = T::new();
    t.c(&client).s(&server);
    assert!(t.has_anomaly("9 bytes of padding in 1 bytes (RFC 9113 6.1)"));
    let x = t.exchanges();
    assert_eq!(x[0].response.as_ref().unwrap().body.wire_len, 0);
    // A padded HEADERS frame whose padding is too long cannot be decoded: the direction stops.
    let mut c2 = client_start();
    c2.extend(headers(1, EH | ES | flags::PADDED, &[200, 0x82]));
    let mut t = T::new();
    t.c(&c2);
    assert!(t.has_anomaly("200 bytes of padding in 1 bytes of payload"));
}

#[test]
fn rst_stream_mid_response() {
    let (mut ce, mut se) = (Encoder::new(), Encoder::new());
    let mut client = client_start();
    client.extend(headers(1, EH | ES, &get(&mut ce, "/m/@v/v1.0.0.zip")));
    client.extend(headers(3, EH | ES, &get(&mut ce, "/m/@v/v1.0.0.info")));
    let mut server = server_start();
    server.extend(headers(1, EH, &block(&mut se, &[(":status", "200")])));
    server.extend(data(1, 0, b"PK\x03\x04partial"));
    server.extend(rst(1, 0x2));
    // The client cancels stream 3 before any answer.
    let mut t = T::new();
    t.c(&client).s(&server).c(&rst(3, 0x8));
    let x = t.exchanges();
    assert_eq!(x.len(), 2);
    let r = x[0].response.as_ref().unwrap();
    assert_eq!(x[0].request.target, "/m/@v/v1.0.0.zip");
    assert_eq!(r.body.data, b"PK\x03\x04partial");
    assert!(!r.body.complete);
    assert_eq!(x[1].request.target, "/m/@v/v1.0.0.info");
    assert!(x[1].response.is_none());
    assert_eq!(
        t.anomalies(),
        vec!["stream 1 reset by the server: INTERNAL_ERROR"]
    );
    assert_eq!(t.conn.stats().resets, [1, 1]);
    // DATA after the reset is ignored quietly.
    t.s(&data(1, ES, b"late"));
    assert_eq!(t.exchanges().len(), 2);
    assert_eq!(t.anomalies().len(), 1);
}

#[test]
fn goaway_reports_unprocessed_streams() {
    let (mut ce, mut se) = (Encoder::new(), Encoder::new());
    let mut client = client_start();
    for (id, p) in [(1, "/a"), (3, "/b"), (5, "/c")] {
        client.extend(headers(id, EH | ES, &get(&mut ce, p)));
    }
    let mut t = T::new();
    t.c(&client).s(&server_start());
    t.s(&headers(1, EH | ES, &block(&mut se, &[(":status", "200")])));
    t.s(&goaway(3, 0));
    // Stream 5 was not processed (RFC 9113 6.8): reported at once, unanswered.
    let x = t.exchanges();
    assert_eq!(x.len(), 2);
    assert_eq!(
        (x[1].request.target.as_str(), x[1].response.is_none()),
        ("/c", true)
    );
    assert_eq!(t.anomalies(), Vec::<&str>::new());
    assert_eq!(
        t.conn.stats().goaway[1].map(|g| (g.last_stream, g.error_code)),
        Some((3, 0))
    );
    t.s(&headers(3, EH | ES, &block(&mut se, &[(":status", "200")])));
    let x = t.exchanges();
    assert_eq!((x.len(), x[2].request.target.as_str()), (3, "/b"));
    // A GOAWAY with an error is an anomaly.
    t.s(&goaway(3, 0xb));
    assert!(t.has_anomaly("GOAWAY from the server: ENHANCE_YOUR_CALM, last stream 3"));
}

#[test]
fn settings_table_size_applies_at_the_ack() {
    // The server indexes a field; the client then allows no dynamic table. Until the server
    // acknowledges, the entry may still be used; after the ACK it is gone (RFC 7541 4.2).
    let (mut ce, mut se) = (Encoder::new(), Encoder::new());
    let mut t = T::new();
    let mut client = client_start();
    client.extend(headers(1, EH | ES, &get(&mut ce, "/1")));
    client.extend(headers(3, EH | ES, &get(&mut ce, "/3")));
    client.extend(headers(5, EH | ES, &get(&mut ce, "/5")));
    t.c(&client).s(&server_start());
    t.s(&headers(
        1,
        EH | ES,
        &block(&mut se, &[(":status", "200"), ("x-served-by", "mirror-1")]),
    ));
    t.c(&settings(&[(setting::HEADER_TABLE_SIZE, 0)]));
    // Still usable: index 62 is x-served-by.
    t.s(&headers(3, EH | ES, &[0x88, 0xbe]));
    assert_eq!(t.anomalies(), Vec::<&str>::new());
    let x = t.exchanges();
    assert_eq!(
        header(&x[1].response.as_ref().unwrap().headers, "x-served-by"),
        Some("mirror-1")
    );
    t.s(&settings_ack());
    // After the ACK the table is empty: a compliant encoder signals size 0 first (0x20).
    t.s(&headers(5, EH | ES, &[0x20, 0x88, 0xbe]));
    assert!(t.has_anomaly("header block of stream 5: invalid HPACK block"));
    assert!(t.has_anomaly("no longer reading server-to-client HTTP/2 frames"));
}

#[test]
fn settings_table_size_above_the_cap() {
    let mut ce = Encoder::new();
    let h2 = Http2Limits {
        max_hpack_table_size: 1024,
        ..Http2Limits::default()
    };
    let mut t = T::with(HttpLimits::default(), h2);
    let mut client = client_start();
    client.extend(settings(&[(setting::HEADER_TABLE_SIZE, 65536)]));
    client.extend(headers(1, EH | ES, &get(&mut ce, "/1")));
    t.c(&client).s(&server_start());
    assert!(t.has_anomaly("SETTINGS_HEADER_TABLE_SIZE 65536 above the 1024-byte HPACK table limit"));
    // The server grows its table to 65536 (a size update 0x3f e1 ff 03): over the cap.
    t.s(&headers(1, EH | ES, &[0x3f, 0xe1, 0xff, 0x03, 0x88]));
    assert!(t.has_anomaly("HPACK dynamic table size update to 65536 above the 1024-byte limit"));
}

#[test]
fn gzip_content_encoding_is_decoded() {
    let body = b"module golang.org/x/mod\n\ngo 1.22\n".repeat(20);
    let z = gzip(&body);
    let (mut ce, mut se) = (Encoder::new(), Encoder::new());
    let mut client = client_start();
    client.extend(headers(
        1,
        EH | ES,
        &get(&mut ce, "/golang.org/x/mod/@v/v0.20.0.mod"),
    ));
    let mut server = server_start();
    server.extend(headers(
        1,
        EH,
        &block(&mut se, &[(":status", "200"), ("content-encoding", "gzip")]),
    ));
    let (a, b) = z.split_at(z.len() / 2);
    server.extend(data(1, 0, a));
    server.extend(data(1, ES, b));
    let mut t = T::new();
    t.c(&client).s(&server);
    assert_eq!(t.anomalies(), Vec::<&str>::new());
    let r = t.exchanges()[0].response.clone().unwrap();
    assert_eq!(r.body.data, body);
    assert_eq!(
        (r.body.len, r.body.wire_len),
        (body.len() as u64, z.len() as u64)
    );
    assert!(r.body.complete && !r.body.decode_error);
}

#[test]
fn trailers_and_interim_responses() {
    let (mut ce, mut se) = (Encoder::new(), Encoder::new());
    let mut client = client_start();
    // A POST with a body and request trailers.
    client.extend(headers(
        1,
        EH,
        &block(
            &mut ce,
            &[
                (":method", "POST"),
                (":scheme", "http"),
                (":authority", "h"),
                (":path", "/up"),
            ],
        ),
    ));
    client.extend(data(1, 0, b"0123456789"));
    client.extend(headers(1, EH | ES, &block(&mut ce, &[("x-checksum", "1")])));
    let mut server = server_start();
    server.extend(headers(1, EH, &block(&mut se, &[(":status", "100")])));
    server.extend(headers(1, EH, &block(&mut se, &[(":status", "201")])));
    server.extend(data(1, 0, b"ok"));
    server.extend(headers(
        1,
        EH | ES,
        &block(&mut se, &[("grpc-status", "0")]),
    ));
    let mut t = T::new();
    t.c(&client).s(&server);
    assert_eq!(t.anomalies(), Vec::<&str>::new());
    let x = t.exchanges();
    assert_eq!(x.len(), 1);
    assert_eq!(
        (x[0].request.method.as_str(), x[0].request.body_len),
        ("POST", 10)
    );
    assert_eq!(header(&x[0].request.headers, "host"), Some("h"));
    let r = x[0].response.as_ref().unwrap();
    assert_eq!((r.status, r.body.data.as_slice()), (201, &b"ok"[..]));
    assert!(r.body.complete);
    assert_eq!(header(&r.headers, "grpc-status"), None);
}

#[test]
fn host_header_kept_and_mismatch_reported() {
    let mut ce = Encoder::new();
    let mut client = client_start();
    client.extend(headers(
        1,
        EH | ES,
        &block(
            &mut ce,
            &[
                (":method", "GET"),
                (":scheme", "https"),
                (":authority", "proxy.golang.org"),
                (":path", "/"),
                ("host", "evil.example"),
            ],
        ),
    ));
    client.extend(headers(
        3,
        EH | ES,
        &block(
            &mut ce,
            &[(":method", "CONNECT"), (":authority", "sum.golang.org:443")],
        ),
    ));
    let mut t = T::new();
    t.c(&client).finish();
    assert!(t.has_anomaly("Host evil.example differs from :authority proxy.golang.org"));
    let x = t.exchanges();
    assert_eq!(header(&x[0].request.headers, "host"), Some("evil.example"));
    assert!(x[0].response.is_none());
    // CONNECT: the target is the authority (RFC 9113 8.5).
    assert_eq!(
        (x[1].request.method.as_str(), x[1].request.target.as_str()),
        ("CONNECT", "sum.golang.org:443")
    );
}

#[test]
fn server_push_is_counted_and_keeps_hpack_in_step() {
    let (mut ce, mut se) = (Encoder::new(), Encoder::new());
    let mut client = client_start();
    client.extend(headers(1, EH | ES, &get(&mut ce, "/index")));
    let mut server = server_start();
    // The promise's block indexes x-pushed in the server's table...
    let mut pp = 2u32.to_be_bytes().to_vec();
    pp.extend(block(
        &mut se,
        &[
            (":method", "GET"),
            (":scheme", "https"),
            (":authority", "proxy.golang.org"),
            (":path", "/style.css"),
            ("x-pushed", "yes"),
        ],
    ));
    server.extend(build(FrameType::PushPromise, EH, 1, &pp));
    // ...which the response then refers to.
    server.extend(headers(
        1,
        EH,
        &block(&mut se, &[(":status", "200"), ("x-pushed", "yes")]),
    ));
    server.extend(headers(2, EH, &block(&mut se, &[(":status", "200")])));
    server.extend(data(2, ES, b"pushed body"));
    server.extend(data(1, ES, b"index"));
    let mut t = T::new();
    t.c(&client).s(&server);
    assert_eq!(t.conn.stats().pushed_streams, 1);
    assert_eq!(
        t.anomalies(),
        vec!["server push: stream 2 promised on stream 1 for GET proxy.golang.org/style.css although the client sent SETTINGS_ENABLE_PUSH 0 (RFC 9113 8.4)"]
    );
    let x = t.exchanges();
    assert_eq!(x.len(), 1);
    let r = x[0].response.as_ref().unwrap();
    assert_eq!(header(&r.headers, "x-pushed"), Some("yes"));
    assert_eq!(r.body.data, b"index");
}

#[test]
fn unanswered_requests_at_finish() {
    let mut ce = Encoder::new();
    let mut client = client_start();
    client.extend(headers(1, EH | ES, &get(&mut ce, "/a")));
    client.extend(headers(3, EH | ES, &get(&mut ce, "/b")));
    let mut se = Encoder::new();
    let mut t = T::new();
    t.c(&client);
    t.s(&server_start());
    t.s(&headers(3, EH, &block(&mut se, &[(":status", "200")])));
    t.s(&data(3, 0, b"part"));
    t.finish();
    let x = t.exchanges();
    assert_eq!(x.len(), 2);
    assert!(x[0].response.is_none());
    let r = x[1].response.as_ref().unwrap();
    assert_eq!(
        (r.body.data.as_slice(), r.body.complete),
        (&b"part"[..], false)
    );
    // Nothing after finish.
    t.c(&headers(5, EH | ES, &get(&mut ce, "/c"))).finish();
    assert_eq!(t.exchanges().len(), 2);
}

#[test]
fn server_end_emits_open_streams() {
    let mut ce = Encoder::new();
    let mut client = client_start();
    client.extend(headers(1, EH | ES, &get(&mut ce, "/a")));
    let mut t = T::new();
    t.c(&client).s(&server_start()[..5]);
    t.conn.on_end(Dir::ToClient, ts(9), 9, &mut t.out);
    assert!(t.has_anomaly("the server closed inside an HTTP/2 frame"));
    let x = t.exchanges();
    assert_eq!(x.len(), 1);
    assert!(x[0].response.is_none());
}

#[test]
fn gap_stops_the_direction() {
    let (client, server) = simple_transcript();
    let mut t = T::new();
    t.c(&client)
        .s(&server[..20])
        .gap(Dir::ToClient, 30)
        .s(&server[50..])
        .finish();
    assert!(t.has_anomaly("30 bytes missing; HTTP/2 frames cannot be found again reliably"));
    let x = t.exchanges();
    assert_eq!(x.len(), 1);
    assert!(x[0].response.is_none());
}

#[test]
fn gap_inside_data_keeps_the_framing() {
    let (mut ce, mut se) = (Encoder::new(), Encoder::new());
    let mut client = client_start();
    client.extend(headers(1, EH | ES, &get(&mut ce, "/z")));
    let mut server = server_start();
    server.extend(headers(1, EH, &block(&mut se, &[(":status", "200")])));
    let d = data(1, ES, b"0123456789");
    let mut t = T::new();
    t.c(&client)
        .s(&server)
        .s(&d[..12])
        .gap(Dir::ToClient, 4)
        .s(&d[16..]);
    assert!(t.has_anomaly("4 bytes missing inside a DATA frame of stream 1"));
    let x = t.exchanges();
    assert_eq!(x.len(), 1);
    let r = x[0].response.as_ref().unwrap();
    assert_eq!((r.body.wire_len, r.body.complete), (10, false));
    assert_eq!(r.body.data, b"012");
    // A gap up to the end of the frame: END_STREAM still ends the response, and the next
    // frame is read.
    let mut client = client_start();
    client.extend(headers(1, EH | ES, &get(&mut ce, "/y")));
    client.extend(headers(3, EH | ES, &get(&mut ce, "/w")));
    let mut server = server_start();
    server.extend(headers(1, EH, &block(&mut se, &[(":status", "200")])));
    let mut t = T::new();
    t.c(&client).s(&server).s(&d[..12]).gap(Dir::ToClient, 7);
    t.s(&headers(3, EH | ES, &block(&mut se, &[(":status", "204")])));
    assert_eq!(t.anomalies().len(), 1);
    let x = t.exchanges();
    assert_eq!(x.len(), 2);
    assert_eq!(x[0].response.as_ref().unwrap().body.wire_len, 10);
    assert!(!x[0].response.as_ref().unwrap().body.complete);
    assert_eq!(x[1].response.as_ref().unwrap().status, 204);
}

#[test]
fn midstream_without_preface() {
    // The client's bytes start at a frame: parsed, with an anomaly.
    let (mut ce, mut se) = (Encoder::new(), Encoder::new());
    let mut client = settings(&[]);
    client.extend(headers(1, EH | ES, &get(&mut ce, "/mid")));
    let mut t = T::new();
    t.c(&client[..3]).c(&client[3..]);
    t.s(&headers(1, EH | ES, &block(&mut se, &[(":status", "200")])));
    assert!(t.has_anomaly("did not start with the HTTP/2 connection preface"));
    assert!(!t.conn.stats().preface_seen);
    assert_eq!(t.exchanges().len(), 1);
    // Starting in the middle of the preface's look-alike "PRI * HTTP/1.1" is not HTTP/2.
    let mut t = T::new();
    t.c(b"PRI * HTTP/1.1\r\n\r\n");
    assert!(t.has_anomaly("do not look like HTTP/2 frames"));
    // Nor is an HTTP/1 response on the server side.
    let mut t = T::new();
    t.s(b"HTTP/1.1 200 OK\r\n\r\n");
    assert!(t.has_anomaly("the server bytes do not look like HTTP/2 frames"));
}

#[test]
fn response_without_request_and_even_client_stream() {
    let (mut ce, mut se) = (Encoder::new(), Encoder::new());
    let mut t = T::new();
    let mut client = client_start();
    client.extend(headers(2, EH | ES, &get(&mut ce, "/even")));
    t.c(&client).s(&server_start());
    t.s(&headers(7, EH | ES, &block(&mut se, &[(":status", "200")])));
    assert!(t.has_anomaly("client HEADERS on even stream 2"));
    assert!(t.has_anomaly("response HEADERS on stream 7 with no request seen"));
    assert!(t.exchanges().is_empty());
}

#[test]
fn unknown_frames_skipped_and_fixed_sizes_checked() {
    let (client, server) = simple_transcript();
    let mut t = T::new();
    let mut c = client[..PREFACE.len()].to_vec();
    c.extend(build(FrameType::Unknown(0xfa), 0xff, 1, &[1; 100]));
    c.extend(&client[PREFACE.len()..]);
    c.extend(build(FrameType::WindowUpdate, 0, 0, &[0, 1, 0, 0]));
    c.extend(build(FrameType::Priority, 0, 1, &[0, 0, 0, 3, 7]));
    t.c(&c).s(&server);
    check_simple(&t);
    t.c(&build(FrameType::Ping, 0, 0, &[0; 7]));
    assert!(t.has_anomaly("PING frame of 7 bytes, 8 expected"));
    t.c(&build(FrameType::WindowUpdate, 0, 1, &[0, 0, 0, 0]));
    assert!(t.has_anomaly("WINDOW_UPDATE of 0 on stream 1"));
}

// ----- limits -----

#[test]
fn max_streams_limit() {
    let mut ce = Encoder::new();
    let h2 = Http2Limits {
        max_streams: 2,
        ..Http2Limits::default()
    };
    let mut t = T::with(HttpLimits::default(), h2);
    let mut client = client_start();
    for id in [1, 3, 5] {
        client.extend(headers(id, EH | ES, &get(&mut ce, &format!("/{id}"))));
    }
    t.c(&client).finish();
    assert!(t.has_anomaly("more than 2 streams open; stream 5 (GET /5) not followed"));
    assert_eq!(t.exchanges().len(), 2);
    assert_eq!(t.conn.stats().untracked_streams, 1);
}

#[test]
fn header_list_size_limit_truncates() {
    let mut ce = Encoder::new();
    let h2 = Http2Limits {
        max_header_list_size: 300,
        ..Http2Limits::default()
    };
    let mut t = T::with(HttpLimits::default(), h2);
    let big = "x".repeat(400);
    let mut client = client_start();
    client.extend(headers(
        1,
        EH | ES,
        &block(
            &mut ce,
            &[
                (":method", "GET"),
                (":scheme", "https"),
                (":authority", "h"),
                (":path", "/"),
                ("cookie", &big),
                ("after", "1"),
            ],
        ),
    ));
    // The cookie is still in the HPACK table: the next block refers to it.
    client.extend(headers(
        3,
        EH | ES,
        &block(
            &mut ce,
            &[
                (":method", "GET"),
                (":scheme", "https"),
                (":authority", "h"),
                (":path", "/2"),
                ("cookie", &big),
            ],
        ),
    ));
    t.c(&client).finish();
    assert!(t.has_anomaly("over the 300-byte limit; 4 field(s) kept"));
    let x = t.exchanges();
    assert_eq!(x.len(), 2);
    assert_eq!(header(&x[0].request.headers, "cookie"), None);
    assert_eq!(x[1].request.target, "/2");
}

#[test]
fn header_block_limit_stops_a_continuation_flood() {
    let h2 = Http2Limits {
        max_header_block_bytes: 4096,
        ..Http2Limits::default()
    };
    let mut t = T::with(HttpLimits::default(), h2);
    let mut client = client_start();
    client.extend(headers(1, 0, &[0x82]));
    t.c(&client);
    let cont = build(FrameType::Continuation, 0, 1, &[0x40; 1000]);
    for _ in 0..100 {
        t.c(&cont);
        assert!(t.conn.held_bytes() <= 4096 + 1000);
    }
    assert!(t.has_anomaly("header block of stream 1 over the 4096-byte limit"));
    assert_eq!(t.anomalies().len(), 1);
    assert_eq!(t.conn.held_bytes(), 0);
}

#[test]
fn frame_payload_limit_and_advertised_max_frame_size() {
    let h2 = Http2Limits {
        max_frame_payload: 1 << 16,
        ..Http2Limits::default()
    };
    let (client, server) = simple_transcript();
    let mut t = T::with(HttpLimits::default(), h2);
    t.c(&client).s(&server);
    // Over the receiver's default SETTINGS_MAX_FRAME_SIZE (16384): reported, still read.
    t.s(&data(1, 0, &vec![0; 20000]));
    assert!(
        t.has_anomaly("DATA frame of 20000 bytes above the client's SETTINGS_MAX_FRAME_SIZE 16384")
    );
    // Over the limit: the direction stops.
    let h = frame::FrameHeader {
        len: 1 << 20,
        kind: FrameType::Data,
        flags: 0,
        stream: 1,
    }
    .to_bytes();
    t.s(&h);
    assert!(t.has_anomaly("DATA frame of 1048576 bytes over the 65536-byte frame limit"));
}

#[test]
fn large_data_frames_are_streamed_not_held() {
    let (mut ce, mut se) = (Encoder::new(), Encoder::new());
    let limits = HttpLimits {
        max_body_kept: 1000,
        ..HttpLimits::default()
    };
    let mut t = T::with(limits, Http2Limits::default());
    let mut client = client_start();
    client.extend(settings(&[(setting::MAX_FRAME_SIZE, (1 << 24) - 1)]));
    client.extend(headers(1, EH | ES, &get(&mut ce, "/big.zip")));
    t.c(&client).s(&server_start());
    t.s(&headers(1, EH, &block(&mut se, &[(":status", "200")])));
    let big = data(1, ES, &vec![7u8; 4 << 20]);
    for c in big.chunks(1460) {
        t.s(c);
        assert!(t.conn.held_bytes() <= 1000 + 64, "{}", t.conn.held_bytes());
    }
    assert_eq!(t.anomalies(), Vec::<&str>::new());
    let r = t.exchanges()[0].response.clone().unwrap();
    assert_eq!(
        (r.body.len, r.body.data.len(), r.body.kept_all),
        (4 << 20, 1000, false)
    );
}

#[test]
fn held_bytes_budget_limits_kept_bodies() {
    let (mut ce, mut se) = (Encoder::new(), Encoder::new());
    let limits = HttpLimits {
        max_body_kept: 1000,
        ..HttpLimits::default()
    };
    let h2 = Http2Limits {
        max_held_bytes: 2500,
        ..Http2Limits::default()
    };
    let mut t = T::with(limits, h2);
    let mut client = client_start();
    for id in [1, 3, 5] {
        client.extend(headers(id, EH | ES, &get(&mut ce, &format!("/{id}"))));
    }
    t.c(&client).s(&server_start());
    for id in [1, 3, 5] {
        t.s(&headers(id, EH, &block(&mut se, &[(":status", "200")])));
    }
    for id in [1, 3, 5] {
        t.s(&data(id, ES, &[b'a'; 1000]));
    }
    assert!(t.has_anomaly("open streams hold close to 2500 bytes"));
    let kept: Vec<usize> = t
        .exchanges()
        .iter()
        .map(|x| x.response.as_ref().unwrap().body.data.len())
        .collect();
    assert!(kept.iter().sum::<usize>() <= 2500, "{kept:?}");
    assert_eq!(kept[0], 1000);
    assert!(kept[2] < 1000);
    // All claims are released when the streams end.
    t.c(&headers(7, EH | ES, &get(&mut ce, "/7")));
    t.s(&headers(7, EH, &block(&mut se, &[(":status", "200")])));
    t.s(&data(7, ES, &[b'b'; 1000]));
    assert_eq!(
        t.exchanges()[3].response.as_ref().unwrap().body.data.len(),
        1000
    );
}

#[test]
fn overflow_events_for_one_stream_at_a_time() {
    let (mut ce, mut se) = (Encoder::new(), Encoder::new());
    let limits = HttpLimits {
        max_body_kept: 4,
        overflow_events: true,
        ..HttpLimits::default()
    };
    let mut t = T::with(limits, Http2Limits::default());
    let mut client = client_start();
    client.extend(headers(1, EH | ES, &get(&mut ce, "/1.zip")));
    client.extend(headers(3, EH | ES, &get(&mut ce, "/3.zip")));
    t.c(&client).s(&server_start());
    t.s(&headers(1, EH, &block(&mut se, &[(":status", "200")])));
    t.s(&headers(3, EH, &block(&mut se, &[(":status", "200")])));
    t.s(&data(1, 0, b"aaaaAAAA"));
    t.s(&data(3, 0, b"bbbbBBBB"));
    t.s(&data(1, ES, b"aa"));
    t.s(&data(3, ES, b"bb"));
    let overflow: Vec<u8> = t
        .out
        .iter()
        .filter_map(|e| match e {
            HttpEvent::BodyOverflow { data, .. } => Some(data.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(overflow, b"AAAAaa");
    let x = t.exchanges();
    let (a, b) = (
        &x[0].response.as_ref().unwrap().body,
        &x[1].response.as_ref().unwrap().body,
    );
    assert_eq!(
        (a.data.as_slice(), a.overflow, a.len),
        (&b"aaaa"[..], 6, 10)
    );
    // Stream 3's overflow was dropped: its count says nothing was passed on.
    assert_eq!(
        (b.data.as_slice(), b.overflow, b.len),
        (&b"bbbb"[..], 0, 10)
    );
    assert!(
        t.has_anomaly("body of stream 3 overflows while another stream's overflow is passed on")
    );
}

#[test]
fn after_upgrade_answers_stream_1() {
    let mut se = Encoder::new();
    let request = crate::proto::HttpRequest {
        method: "GET".into(),
        target: "/robots.txt".into(),
        version: 1,
        headers: vec![],
        ts: ts(1),
        packet: 1,
        body_len: 0,
    };
    let mut conn = Http2Conn::after_upgrade(FLOW, HttpLimits::default(), request);
    let mut out = Vec::new();
    let mut server = server_start();
    server.extend(headers(1, EH, &block(&mut se, &[(":status", "200")])));
    server.extend(data(1, ES, b"User-agent: *\n"));
    conn.on_data(Dir::ToServer, ts(2), 2, &client_start(), &mut out);
    conn.on_data(Dir::ToClient, ts(3), 3, &server, &mut out);
    let x: Vec<_> = out
        .iter()
        .filter_map(|e| match e {
            HttpEvent::Exchange(x) => Some(x),
            _ => None,
        })
        .collect();
    assert_eq!(x.len(), 1);
    assert_eq!(x[0].request.target, "/robots.txt");
    assert_eq!(
        x[0].response.as_ref().unwrap().body.data,
        b"User-agent: *\n"
    );
}

#[test]
fn looks_like_preface_prefixes() {
    assert!(looks_like_preface(
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00"
    ));
    assert!(looks_like_preface(b"PRI * HT"));
    assert!(!looks_like_preface(b"PRI * HTTP/1.1"));
    assert!(!looks_like_preface(b"GET / HTTP/1.1\r\n"));
    assert!(!looks_like_preface(b""));
}

// ----- RFC 7541 appendix C -----

fn fields(list: &[(&str, &str)]) -> Vec<(Vec<u8>, Vec<u8>)> {
    list.iter()
        .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect()
}

const C3: [&str; 3] = [
    "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
    "8286 84be 5808 6e6f 2d63 6163 6865",
    "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
];
const C4: [&str; 3] = [
    "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
    "8286 84be 5886 a8eb 1064 9cbf",
    "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
];
const C5: [&str; 3] = [
    "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
    "4803 3330 37c1 c0bf",
    "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31",
];
const C6: [&str; 3] = [
    "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
    "4883 640e ffc1 c0bf",
    "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
];

fn c3_lists() -> [Vec<(Vec<u8>, Vec<u8>)>; 3] {
    [
        fields(&[
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            (":authority", "www.example.com"),
        ]),
        fields(&[
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            (":authority", "www.example.com"),
            ("cache-control", "no-cache"),
        ]),
        fields(&[
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/index.html"),
            (":authority", "www.example.com"),
            ("custom-key", "custom-value"),
        ]),
    ]
}

const DATE_21: &str = "Mon, 21 Oct 2013 20:13:21 GMT";
const DATE_22: &str = "Mon, 21 Oct 2013 20:13:22 GMT";
const COOKIE: &str = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";

fn c5_lists() -> [Vec<(Vec<u8>, Vec<u8>)>; 3] {
    [
        fields(&[
            (":status", "302"),
            ("cache-control", "private"),
            ("date", DATE_21),
            ("location", "https://www.example.com"),
        ]),
        fields(&[
            (":status", "307"),
            ("cache-control", "private"),
            ("date", DATE_21),
            ("location", "https://www.example.com"),
        ]),
        fields(&[
            (":status", "200"),
            ("cache-control", "private"),
            ("date", DATE_22),
            ("location", "https://www.example.com"),
            ("content-encoding", "gzip"),
            ("set-cookie", COOKIE),
        ]),
    ]
}

fn decoder() -> HeaderDecoder {
    let l = Http2Limits::default();
    HeaderDecoder::new(
        l.max_hpack_table_size,
        l.max_header_list_size,
        l.max_pending_settings,
    )
}

#[test]
fn rfc7541_c3_c4_requests() {
    for blocks in [C3, C4] {
        let mut d = decoder();
        for (b, want) in blocks.iter().zip(c3_lists()) {
            assert_eq!(d.decode(&hex(b)).unwrap().fields, want);
        }
        // The dynamic table after C.3.3 / C.4.3: custom-key, cache-control, :authority.
        assert_eq!(
            d.decode(&[0xbe, 0xbf, 0xc0]).unwrap().fields,
            fields(&[
                ("custom-key", "custom-value"),
                ("cache-control", "no-cache"),
                (":authority", "www.example.com")
            ])
        );
        assert!(d.decode(&[0xc1]).is_err());
    }
}

#[test]
fn rfc7541_c5_c6_responses_with_eviction() {
    for blocks in [C5, C6] {
        let mut d = decoder();
        // The decoding side allows 256 octets; applied when the encoder acknowledges.
        d.settings_sent(256);
        d.settings_acked();
        for (b, want) in blocks.iter().zip(c5_lists()) {
            assert_eq!(d.decode(&hex(b)).unwrap().fields, want);
        }
        // C.5.3's table: set-cookie, content-encoding, date (215 octets); the rest evicted.
        assert_eq!(
            d.decode(&[0xbe, 0xbf, 0xc0]).unwrap().fields,
            fields(&[
                ("set-cookie", COOKIE),
                ("content-encoding", "gzip"),
                ("date", DATE_22)
            ])
        );
        assert!(d.decode(&[0xc1]).is_err());
    }
}

/// Appendix C through the connection: requests on streams 1, 3, 5 of the client, responses
/// with the client's SETTINGS_HEADER_TABLE_SIZE of 256 acknowledged by the server.
#[test]
fn rfc7541_appendix_c_through_the_connection() {
    for (reqs, resps) in [(C3, C5), (C4, C6)] {
        let mut t = T::new();
        let mut client = PREFACE.to_vec();
        client.extend(settings(&[(setting::HEADER_TABLE_SIZE, 256)]));
        for (k, b) in reqs.iter().enumerate() {
            client.extend(headers(1 + 2 * k as u32, EH | ES, &hex(b)));
        }
        let mut server = settings(&[]);
        server.extend(settings_ack());
        for (k, b) in resps.iter().enumerate() {
            server.extend(headers(1 + 2 * k as u32, EH | ES, &hex(b)));
        }
        t.c(&client).c(&settings_ack()).s(&server);
        assert_eq!(t.anomalies(), Vec::<&str>::new());
        let x = t.exchanges();
        assert_eq!(x.len(), 3);
        let targets: Vec<&str> = x.iter().map(|x| x.request.target.as_str()).collect();
        assert_eq!(targets, ["/", "/", "/index.html"]);
        assert!(x
            .iter()
            .all(|x| header(&x.request.headers, "host") == Some("www.example.com")));
        assert_eq!(
            header(&x[1].request.headers, "cache-control"),
            Some("no-cache")
        );
        assert_eq!(
            header(&x[2].request.headers, "custom-key"),
            Some("custom-value")
        );
        let statuses: Vec<u16> = x
            .iter()
            .map(|x| x.response.as_ref().unwrap().status)
            .collect();
        assert_eq!(statuses, [302, 307, 200]);
        for (x, want) in x.iter().zip(c5_lists()) {
            let got: Vec<(Vec<u8>, Vec<u8>)> = x
                .response
                .as_ref()
                .unwrap()
                .headers
                .iter()
                .map(|h| (h.name.clone().into_bytes(), h.value.clone().into_bytes()))
                .collect();
            assert_eq!(got, want[1..].to_vec());
        }
        // The table was shrunk to 256 at the ACK: index 65 is gone.
        t.c(&headers(7, EH | ES, &[0x82, 0x84]));
        t.s(&headers(7, EH | ES, &[0x88, 0xc1]));
        assert!(t.has_anomaly("header block of stream 7: invalid HPACK block"));
    }
}

// ----- hostile input -----

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn small_limits() -> (HttpLimits, Http2Limits) {
    (
        HttpLimits {
            max_body_kept: 512,
            overflow_events: true,
            ..HttpLimits::default()
        },
        Http2Limits {
            max_streams: 8,
            max_header_list_size: 1024,
            max_header_block_bytes: 2048,
            max_hpack_table_size: 1024,
            max_control_payload: 64,
            max_pending_settings: 2,
            max_held_bytes: 4096,
            ..Http2Limits::default()
        },
    )
}

/// Runs chunks through a connection, checking the memory bound after each.
fn run_hostile(chunks: &[(Dir, Vec<u8>)], rng: &mut XorShift, gap_one_in: usize) -> Vec<HttpEvent> {
    let (limits, h2) = small_limits();
    let bound = 2 * h2.max_header_block_bytes + 2 * h2.max_held_bytes + 2 * h2.max_control_payload;
    let mut conn = Http2Conn::with_limits(FLOW, limits, h2);
    let mut out = Vec::new();
    for (k, (dir, c)) in chunks.iter().enumerate() {
        let k = k as u64;
        match rng.below(gap_one_in) {
            0 => conn.on_gap(*dir, ts(k), rng.below(50) as u64 + 1, &mut out),
            _ => conn.on_data(*dir, ts(k), k, c, &mut out),
        }
        assert!(
            conn.held_bytes() <= bound,
            "{} > {bound}",
            conn.held_bytes()
        );
        assert!(conn.open_streams() <= 8);
    }
    conn.finish(ts(1000), &mut out);
    assert_eq!(conn.open_streams(), 0);
    out
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for round in 0..3000 {
        let mut chunks = Vec::new();
        for _ in 0..rng.below(8) + 1 {
            let dir = if rng.below(2) == 0 {
                Dir::ToServer
            } else {
                Dir::ToClient
            };
            let mut c = Vec::new();
            if round % 2 == 0 && chunks.is_empty() {
                c.extend_from_slice(PREFACE);
            }
            // Random frames with plausible headers, so the parser gets past the first frame.
            for _ in 0..rng.below(6) {
                let len = rng.below(64);
                let kind = FrameType::from_u8(rng.below(11) as u8);
                let stream = rng.below(8) as u32;
                c.extend(build(kind, rng.next() as u8, stream, &rng.bytes(len)));
            }
            let tail = rng.below(16);
            c.extend(rng.bytes(tail));
            chunks.push((dir, c));
        }
        run_hostile(&chunks, &mut rng, 20);
    }
}

#[test]
fn mutated_transcripts_never_panic() {
    let mut rng = XorShift(0x1234_5678_9abc_def1);
    let (client, server) = simple_transcript();
    let mut ce = Encoder::new();
    let mut extra = headers(3, EH, &get(&mut ce, "/more"));
    extra.extend(data(3, flags::PADDED, &[2, b'x', 0, 0]));
    let request_end = client.len() - 9;
    let mut answered = 0;
    for _ in 0..10000 {
        let mut c = client.clone();
        c.extend(&extra);
        let mut s = server.clone();
        for _ in 0..rng.below(4) + 1 {
            let target = if rng.below(2) == 0 { &mut c } else { &mut s };
            let at = rng.below(target.len());
            match rng.below(3) {
                0 => target[at] ^= 1 << rng.below(8),
                1 => target[at] = rng.next() as u8,
                _ => {
                    let n = rng.below(8);
                    target.splice(at..at, rng.bytes(n));
                }
            }
        }
        let mut chunks = Vec::new();
        let (mut ci, mut si) = (0, 0);
        while ci < c.len() || si < s.len() {
            let n = rng.below(40) + 1;
            // The server answers after the request came (as on the wire); then the directions
            // interleave at random.
            let server_may = si < s.len() && ci >= request_end.min(c.len());
            if server_may && (rng.below(2) == 0 || ci >= c.len()) {
                let e = (si + n).min(s.len());
                chunks.push((Dir::ToClient, s[si..e].to_vec()));
                si = e;
            } else {
                let e = (ci + n).min(c.len());
                chunks.push((Dir::ToServer, c[ci..e].to_vec()));
                ci = e;
            }
        }
        let out = run_hostile(&chunks, &mut rng, 500);
        answered += out
            .iter()
            .any(|e| matches!(e, HttpEvent::Exchange(x) if x.response.is_some()))
            as usize;
    }
    // The mutations leave many transcripts readable: the deep paths were exercised.
    assert!(answered > 3000, "{answered}");
}

#[test]
fn hpack_random_blocks_never_panic_and_stay_within_limits() {
    let mut rng = XorShift(0xdead_beef_cafe_f00d);
    let mut d = HeaderDecoder::new(1024, 512, 2);
    for i in 0..20000 {
        if i % 500 == 0 {
            d = HeaderDecoder::new(1024, 512, 2);
        }
        let n = rng.below(64);
        let mut b = rng.bytes(n);
        // Bias towards valid representations: literal names with small lengths.
        if i % 3 == 0 && !b.is_empty() {
            b[0] = 0x40;
        }
        if let Ok(list) = d.decode(&b) {
            let kept: usize = list
                .fields
                .iter()
                .map(|(n, v)| n.len() + v.len() + 32)
                .sum();
            assert!(kept <= 512);
            assert!(list.size_updates.iter().all(|&s| s <= 1024));
            assert!(d.table_max() <= 1024);
        }
        if i % 7 == 0 {
            d.settings_sent(rng.next() as u32);
        }
        if i % 11 == 0 {
            d.settings_acked();
        }
    }
}
