//! Transcripts: chunks in, events out.

use super::*;
use crate::proto::{header, HttpExchange};
use flate2::write::GzEncoder;
use flate2::Compression;
use std::io::Write;

const FLOW: FlowId = 7;

/// Drives one connection; every chunk is one packet, numbered from 1, at `packet` ms.
struct T {
    conn: Http1Conn,
    out: Vec<HttpEvent>,
    packet: u64,
}

fn ts(packet: u64) -> Ts {
    Ts(packet as i64 * 1_000_000)
}

impl T {
    fn new() -> T {
        T::with(HttpLimits::default())
    }
    fn with(limits: HttpLimits) -> T {
        T {
            conn: Http1Conn::new(FLOW, limits),
            out: Vec::new(),
            packet: 0,
        }
    }
    fn c(&mut self, data: &[u8]) -> &mut T {
        self.packet += 1;
        self.conn.on_data(
            Dir::ToServer,
            ts(self.packet),
            self.packet,
            data,
            &mut self.out,
        );
        self
    }
    fn s(&mut self, data: &[u8]) -> &mut T {
        self.packet += 1;
        self.conn.on_data(
            Dir::ToClient,
            ts(self.packet),
            self.packet,
            data,
            &mut self.out,
        );
        self
    }
    fn gap(&mut self, dir: Dir, len: u64) -> &mut T {
        self.conn.on_gap(dir, ts(self.packet), len, &mut self.out);
        self
    }
    fn end(&mut self, dir: Dir) -> &mut T {
        self.packet += 1;
        self.conn
            .on_end(dir, ts(self.packet), self.packet, &mut self.out);
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
    /// (target, status) of every exchange, in order.
    fn pairs(&self) -> Vec<(String, Option<u16>)> {
        self.exchanges()
            .iter()
            .map(|x| {
                (
                    x.request.target.clone(),
                    x.response.as_ref().map(|r| r.status),
                )
            })
            .collect()
    }
}

fn pairs(list: &[(&str, Option<u16>)]) -> Vec<(String, Option<u16>)> {
    list.iter().map(|(t, s)| (t.to_string(), *s)).collect()
}

fn resp(x: &HttpExchange) -> &HttpResponse {
    x.response.as_ref().expect("a response")
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

const GET_A: &[u8] = b"GET /a HTTP/1.1\r\nHost: proxy.golang.org\r\n\r\n";
const OK_5: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

#[test]
fn simple_get_200_content_length() {
    let mut t = T::new();
    t.c(GET_A).s(OK_5);
    let x = t.exchanges();
    assert_eq!(x.len(), 1);
    let (q, r) = (&x[0].request, resp(x[0]));
    assert_eq!(x[0].flow, FLOW);
    assert_eq!(
        (
            q.method.as_str(),
            q.target.as_str(),
            q.version,
            q.packet,
            q.ts
        ),
        ("GET", "/a", 1, 1, ts(1))
    );
    assert_eq!(header(&q.headers, "host"), Some("proxy.golang.org"));
    assert_eq!(
        (
            r.status,
            r.reason.as_str(),
            r.version,
            r.packet,
            r.end_packet
        ),
        (200, "OK", 1, 2, 2)
    );
    assert_eq!(r.body.data, b"hello");
    assert_eq!(
        (
            r.body.len,
            r.body.wire_len,
            r.body.complete,
            r.body.kept_all,
            r.body.decode_error
        ),
        (5, 5, true, true, false)
    );
    assert!(t.anomalies().is_empty(), "{:?}", t.anomalies());
    // Nothing more at finish.
    t.finish();
    assert_eq!(t.exchanges().len(), 1);
}

#[test]
fn keep_alive_three_exchanges() {
    let mut t = T::new();
    for i in 1..=3 {
        t.c(format!("GET /{i} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes());
        t.s(format!("HTTP/1.1 20{i} OK\r\nContent-Length: 1\r\n\r\n{i}").as_bytes());
    }
    assert_eq!(
        t.pairs(),
        pairs(&[("/1", Some(201)), ("/2", Some(202)), ("/3", Some(203))])
    );
    assert_eq!(resp(t.exchanges()[2]).body.data, b"3");
    assert!(t.anomalies().is_empty());
}

#[test]
fn pipelined_requests_in_one_chunk() {
    let mut t = T::new();
    t.c(b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\nHEAD /3 HTTP/1.1\r\nHost: h\r\n\r\n");
    assert!(t.exchanges().is_empty());
    t.s(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\naaHTTP/1.1 404 Not Found\r\nContent-Length: 1\r\n\r\nbHTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
    assert_eq!(
        t.pairs(),
        pairs(&[("/1", Some(200)), ("/2", Some(404)), ("/3", Some(200))])
    );
    let x = t.exchanges();
    assert_eq!(
        (
            resp(x[0]).body.data.as_slice(),
            resp(x[1]).body.data.as_slice()
        ),
        (&b"aa"[..], &b"b"[..])
    );
    assert_eq!(resp(x[2]).body.len, 0);
    assert!(t.anomalies().is_empty());
}

#[test]
fn chunked_response_with_extensions_and_trailers_byte_by_byte() {
    let mut t = T::new();
    t.c(GET_A);
    let wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=\"v\"\r\nhello\r\n6 ; x\r\n world\r\n0\r\nX-Trailer: t\r\nX-Other: u\r\n\r\n";
    for b in wire.iter() {
        assert!(t.exchanges().is_empty());
        t.s(std::slice::from_ref(b));
    }
    let x = t.exchanges();
    assert_eq!(x.len(), 1);
    let r = resp(x[0]);
    assert_eq!(r.body.data, b"hello world");
    assert_eq!((r.body.wire_len, r.body.complete), (11, true));
    // First byte of the status line is the second packet; the last byte is the last packet.
    assert_eq!((r.packet, r.end_packet), (2, 1 + wire.len() as u64));
    assert!(t.anomalies().is_empty(), "{:?}", t.anomalies());
    // The connection continues after the trailers.
    t.c(GET_A).s(OK_5);
    assert_eq!(t.exchanges().len(), 2);
}

#[test]
fn chunked_request_body_counted() {
    let mut t = T::new();
    t.c(b"POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
    t.c(GET_A);
    t.s(OK_5).s(OK_5);
    let x = t.exchanges();
    assert_eq!(t.pairs(), pairs(&[("/up", Some(200)), ("/a", Some(200))]));
    assert_eq!(x[0].request.body_len, 5);
}

#[test]
fn gzip_body_decoded() {
    let z = gzip(b"v1.0.0\nv1.1.0\n");
    let mut t = T::new();
    t.c(b"GET /m/@v/list HTTP/1.1\r\nAccept-Encoding: gzip\r\n\r\n");
    let mut wire = format!(
        "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
        z.len()
    )
    .into_bytes();
    wire.extend_from_slice(&z);
    t.s(&wire);
    let r = resp(t.exchanges()[0]);
    assert_eq!(r.body.data, b"v1.0.0\nv1.1.0\n");
    assert_eq!(
        (r.body.len, r.body.wire_len, r.body.decode_error),
        (14, z.len() as u64, false)
    );
}

#[test]
fn chunked_and_x_gzip_decoded() {
    let z = gzip(b"module example.com/m\n\ngo 1.22\n");
    let mut wire =
        b"HTTP/1.1 200 OK\r\nContent-Encoding: x-gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    for piece in z.chunks(7) {
        wire.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        wire.extend_from_slice(piece);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"0\r\n\r\n");
    let mut t = T::new();
    t.c(GET_A);
    for part in wire.chunks(5) {
        t.s(part);
    }
    let r = resp(t.exchanges()[0]);
    assert_eq!(r.body.data, b"module example.com/m\n\ngo 1.22\n");
    assert_eq!(
        (r.body.wire_len, r.body.complete, r.body.decode_error),
        (z.len() as u64, true, false)
    );
}

#[test]
fn bad_gzip_keeps_raw_bytes() {
    let mut t = T::new();
    t.c(GET_A)
        .s(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 9\r\n\r\nnot gzip!");
    let r = resp(t.exchanges()[0]);
    assert!(r.body.decode_error);
    assert_eq!(r.body.data, b"not gzip!");
    assert!(t
        .anomalies()
        .iter()
        .any(|a| a.contains("could not be decoded")));
}

#[test]
fn head_response_has_no_body() {
    let mut t = T::new();
    t.c(b"HEAD /a HTTP/1.1\r\n\r\n")
        .s(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n");
    assert_eq!(t.pairs(), pairs(&[("/a", Some(200))]));
    let r = resp(t.exchanges()[0]);
    assert_eq!((r.body.len, r.body.complete), (0, true));
    // The next response is read as a response, not as the HEAD's body.
    t.c(GET_A).s(OK_5);
    assert_eq!(t.pairs(), pairs(&[("/a", Some(200)), ("/a", Some(200))]));
}

#[test]
fn not_modified_304_and_no_content_204() {
    let mut t = T::new();
    t.c(b"GET /x HTTP/1.1\r\nIf-None-Match: \"e\"\r\n\r\n")
        .s(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\nETag: \"e\"\r\n\r\n");
    t.c(b"DELETE /y HTTP/1.1\r\n\r\n")
        .s(b"HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n");
    t.c(GET_A).s(OK_5);
    assert_eq!(
        t.pairs(),
        pairs(&[("/x", Some(304)), ("/y", Some(204)), ("/a", Some(200))])
    );
    assert!(t.anomalies().is_empty());
}

#[test]
fn continue_100_then_200() {
    let mut t = T::new();
    t.c(b"POST /upload HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    t.s(b"HTTP/1.1 100 Continue\r\n\r\n");
    assert!(t.exchanges().is_empty());
    t.c(b"data");
    t.s(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    let x = t.exchanges();
    assert_eq!(t.pairs(), pairs(&[("/upload", Some(200))]));
    assert_eq!(x[0].request.body_len, 4);
    // The final response's first byte came in packet 4 (the 1xx ones are skipped).
    assert_eq!(resp(x[0]).packet, 4);
}

#[test]
fn read_to_close_completed_by_on_end() {
    let mut t = T::new();
    t.c(b"GET /old HTTP/1.0\r\n\r\n");
    t.s(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nfirst ")
        .s(b"second");
    assert!(t.exchanges().is_empty());
    t.end(Dir::ToClient);
    let x = t.exchanges();
    assert_eq!(x.len(), 1);
    assert_eq!(x[0].request.version, 0);
    let r = resp(x[0]);
    assert_eq!(r.body.data, b"first second");
    assert!(r.body.complete);
    assert_eq!(r.end_packet, 4);
    t.finish();
    assert_eq!(t.exchanges().len(), 1);
}

#[test]
fn connect_200_then_tunnel_data() {
    let mut t = T::new();
    t.c(b"CONNECT proxy.golang.org:443 HTTP/1.1\r\nHost: proxy.golang.org:443\r\n\r\n");
    // A client that does not wait: the ClientHello is held until the answer.
    t.c(b"\x16\x03\x01\x00\x05hello");
    t.s(b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x03\x00\x02sh");
    t.c(b"\x17\x03\x03\x00\x01x");
    let x = t.exchanges();
    assert_eq!(x.len(), 1);
    assert_eq!(
        (x[0].request.method.as_str(), x[0].request.target.as_str()),
        ("CONNECT", "proxy.golang.org:443")
    );
    assert_eq!(resp(x[0]).status, 200);
    let tail: Vec<(Dir, u64, Vec<u8>)> = t
        .out
        .iter()
        .filter_map(|e| match e {
            HttpEvent::TunnelData {
                dir, packet, data, ..
            } => Some((*dir, *packet, data.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        tail,
        vec![
            (Dir::ToServer, 2, b"\x16\x03\x01\x00\x05hello".to_vec()),
            (Dir::ToClient, 3, b"\x16\x03\x03\x00\x02sh".to_vec()),
            (Dir::ToServer, 4, b"\x17\x03\x03\x00\x01x".to_vec()),
        ]
    );
    let opened = t.out.iter().position(|e| matches!(e, HttpEvent::TunnelOpened { authority, .. } if authority == "proxy.golang.org:443"));
    let exchange = t
        .out
        .iter()
        .position(|e| matches!(e, HttpEvent::Exchange(_)));
    let data = t
        .out
        .iter()
        .position(|e| matches!(e, HttpEvent::TunnelData { .. }));
    assert!(exchange < opened && opened < data, "{:?}", t.out);
    assert!(t.anomalies().is_empty());
}

#[test]
fn connect_407_then_normal_request() {
    let mut t = T::new();
    t.c(b"CONNECT h:443 HTTP/1.1\r\n\r\n");
    t.c(b"GET http://h/a HTTP/1.1\r\nHost: h\r\n\r\n");
    t.s(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\nContent-Length: 3\r\n\r\nno!");
    t.s(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    assert_eq!(
        t.pairs(),
        pairs(&[("h:443", Some(407)), ("http://h/a", Some(200))])
    );
    assert!(!t.out.iter().any(|e| matches!(
        e,
        HttpEvent::TunnelOpened { .. } | HttpEvent::TunnelData { .. }
    )));
}

#[test]
fn switching_protocols_101_ends_http() {
    let mut t = T::new();
    t.c(b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
    t.s(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello");
    t.c(b"\x81\x85\x00\x00\x00\x00hello")
        .s(b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(t.pairs(), pairs(&[("/ws", Some(101))]));
    t.finish();
    assert_eq!(t.exchanges().len(), 1);
    assert!(t.anomalies().is_empty());
}

#[test]
fn unanswered_request_at_finish() {
    let mut t = T::new();
    t.c(GET_A).s(OK_5).c(b"GET /b HTTP/1.1\r\n\r\n");
    t.finish();
    assert_eq!(t.pairs(), pairs(&[("/a", Some(200)), ("/b", None)]));
}

#[test]
fn truncated_body_at_finish() {
    let mut t = T::new();
    t.c(GET_A)
        .s(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhel");
    assert!(t.exchanges().is_empty());
    t.finish();
    let r = resp(t.exchanges()[0]);
    assert_eq!(
        (r.body.data.as_slice(), r.body.complete, r.end_packet),
        (&b"hel"[..], false, 2)
    );
}

#[test]
fn server_close_inside_content_length_body_is_incomplete() {
    let mut t = T::new();
    t.c(GET_A)
        .s(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhel")
        .end(Dir::ToClient);
    let r = resp(t.exchanges()[0]);
    assert!(!r.body.complete);
}

#[test]
fn gap_in_content_length_body_keeps_framing() {
    let mut t = T::new();
    t.c(b"GET /1 HTTP/1.0\r\n\r\n").s(OK_5);
    t.c(b"GET /2 HTTP/1.0\r\n\r\n")
        .s(b"HTTP/1.0 200 OK\r\nContent-Length: 42\r\n\r\n0123456789abcd");
    t.gap(Dir::ToClient, 14).s(b"0123456789abcd");
    t.c(b"GET /3 HTTP/1.0\r\n\r\n").s(OK_5);
    assert_eq!(
        t.pairs(),
        pairs(&[("/1", Some(200)), ("/2", Some(200)), ("/3", Some(200))])
    );
    let r = resp(t.exchanges()[1]);
    assert_eq!(
        (r.body.wire_len, r.body.complete, r.body.data.as_slice()),
        (42, false, &b"0123456789abcd"[..])
    );
    assert!(resp(t.exchanges()[2]).body.complete);
}

#[test]
fn gap_in_chunked_body_then_resync_on_next_response() {
    let mut t = T::new();
    t.c(GET_A)
        .s(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123");
    t.gap(Dir::ToClient, 100);
    // The rest of some chunk, then the next response in the same segment.
    t.s(b"tail of a chunk\r\n0\r\n\r\n");
    t.c(b"GET /b HTTP/1.1\r\n\r\n");
    t.s(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(t.pairs(), pairs(&[("/a", Some(200)), ("/b", Some(404))]));
    let first = resp(t.exchanges()[0]);
    assert!(!first.body.complete);
    assert_eq!(first.body.data, b"0123");
    assert!(t
        .anomalies()
        .iter()
        .any(|a| a.contains("chunked response body")));
}

#[test]
fn gap_in_chunked_request_body_then_resync_on_next_request() {
    let mut t = T::new();
    t.c(b"POST /1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n100\r\nxx");
    t.gap(Dir::ToServer, 300);
    t.c(b"yy\r\n0\r\n\r\nGET /2 HTTP/1.1\r\n\r\n");
    // The answer to the lost POST arrives after /2 was sent; a non-pipelining client: it is
    // the answer to /2 only if it started after /2 arrived, which it did.
    t.s(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(t.pairs(), pairs(&[("/2", Some(200))]));
    assert!(t
        .anomalies()
        .iter()
        .any(|a| a.contains("chunked request body")));
}

#[test]
fn response_to_request_lost_in_gap_is_dropped() {
    let mut t = T::new();
    t.c(GET_A).s(OK_5);
    // A whole request lost; its response arrives before the next request.
    t.gap(Dir::ToServer, 40);
    t.s(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlost");
    t.c(b"GET /c HTTP/1.1\r\n\r\n")
        .s(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(t.pairs(), pairs(&[("/a", Some(200)), ("/c", Some(201))]));
    assert!(t.anomalies().iter().any(|a| a.contains("lost in a gap")));
}

#[test]
fn gap_swallowing_a_whole_response_does_not_mispair() {
    let mut t = T::new();
    t.c(b"GET /1 HTTP/1.1\r\n\r\n");
    // The whole response to /1 is lost.
    t.gap(Dir::ToClient, 60);
    t.c(b"GET /2 HTTP/1.1\r\n\r\n");
    t.s(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(t.pairs(), pairs(&[("/1", None), ("/2", Some(202))]));
}

#[test]
fn midstream_server_first() {
    let mut t = T::new();
    // Picked up in the middle of a response body, then a whole response to an unseen request.
    t.s(b"rest of a body\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc");
    t.c(b"GET /seen HTTP/1.1\r\n\r\n")
        .s(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    assert_eq!(t.pairs(), pairs(&[("/seen", Some(200))]));
    assert_eq!(resp(t.exchanges()[0]).body.data, b"ok");
    let a = t.anomalies();
    assert!(
        a.iter().any(|a| a.contains("not an HTTP/1 status line")),
        "{a:?}"
    );
    assert!(a.iter().any(|a| a.contains("no request seen")), "{a:?}");
}

#[test]
fn midstream_client_inside_a_body() {
    let mut t = T::new();
    t.c(b"GET-ish junk from a body\r\nmore\r\nGET /real HTTP/1.1\r\nHost: h\r\n\r\n");
    t.s(OK_5);
    assert_eq!(t.pairs(), pairs(&[("/real", Some(200))]));
}

#[test]
fn absolute_form_target_and_location_kept() {
    let mut t = T::new();
    t.c(b"GET http://proxy.example/github.com/a/b/@v/list HTTP/1.1\r\nHost: proxy.example\r\n\r\n");
    t.s(b"HTTP/1.1 302 Found\r\nLocation: https://mirror.example/github.com/a/b/@v/list?x=1\r\nContent-Length: 0\r\n\r\n");
    let x = t.exchanges();
    assert_eq!(
        x[0].request.target,
        "http://proxy.example/github.com/a/b/@v/list"
    );
    assert_eq!(
        header(&resp(x[0]).headers, "location"),
        Some("https://mirror.example/github.com/a/b/@v/list?x=1")
    );
}

#[test]
fn non_utf8_bytes_escaped_never_lossy() {
    let mut t = T::new();
    t.c(b"GET /caf\xe9 HTTP/1.1\r\nX-Name: caf\xe9 \xc3\xa9\r\n\r\n");
    t.s(b"HTTP/1.1 200 \xff\xfe\r\nContent-Length: 0\r\n\r\n");
    let x = t.exchanges();
    assert_eq!(x[0].request.target, "/caf\\xe9");
    assert_eq!(header(&x[0].request.headers, "x-name"), Some("caf\\xe9 é"));
    assert_eq!(resp(x[0]).reason, "\\xff\\xfe");
}

#[test]
fn lenient_heads_bare_lf_obs_fold_space_before_colon() {
    let mut t = T::new();
    t.c(b"GET /lf HTTP/1.1\nHost: h\n\n");
    t.s(b"HTTP/1.1 200 OK\nX-Folded: a\n\tb\nContent-Length : 2\n\nok");
    let x = t.exchanges();
    let r = resp(x[0]);
    assert_eq!(header(&r.headers, "x-folded"), Some("a b"));
    assert_eq!(r.body.data, b"ok");
}

#[test]
fn oversized_head_is_an_anomaly_and_stops_parsing() {
    let limits = HttpLimits {
        max_head_bytes: 1024,
        ..HttpLimits::default()
    };
    let mut t = T::with(limits);
    t.c(GET_A);
    let mut big = b"HTTP/1.1 200 OK\r\n".to_vec();
    while big.len() < 2000 {
        big.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    t.s(&big);
    assert!(t.anomalies().iter().any(|a| a.contains("max_head_bytes")));
    assert!(t.conn.held_bytes() <= 1025);
    t.s(b"\r\n").c(GET_A).s(OK_5).finish();
    // The request seen before the limit is reported unanswered; nothing after is parsed.
    assert_eq!(t.pairs(), pairs(&[("/a", None)]));
}

#[test]
fn gzip_bomb_capped() {
    let z = gzip(&vec![b'A'; 8 << 20]);
    let mut t = T::with(HttpLimits {
        max_body_kept: 4096,
        ..HttpLimits::default()
    });
    t.c(GET_A);
    let mut wire = format!(
        "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
        z.len()
    )
    .into_bytes();
    wire.extend_from_slice(&z);
    for part in wire.chunks(1460) {
        t.s(part);
        assert!(t.conn.held_bytes() <= 2 * 4096 + 64 * 1024);
    }
    let r = resp(t.exchanges()[0]);
    assert!(r.body.decode_error);
    assert!(r.body.data.len() <= 4096);
    assert!(t.anomalies().iter().any(|a| a.contains("compression bomb")));
}

#[test]
fn http10_request_and_close_delimited_response() {
    let mut t = T::new();
    t.c(b"GET / HTTP/1.0\r\nUser-Agent: old\r\n\r\n")
        .s(b"HTTP/1.0 200 OK\r\n\r\n<html>")
        .finish();
    let x = t.exchanges();
    assert_eq!((x[0].request.version, resp(x[0]).version), (0, 0));
    assert_eq!(resp(x[0]).body.data, b"<html>");
    assert!(resp(x[0]).body.complete);
}

#[test]
fn http09_simple_request_and_bare_response() {
    // Zeek http/no-version.pcap: a request line with no version, answered without a status
    // line.
    let mut t = T::new();
    t.c(b"GET /cgi-bin/formmail.pl?x=1 \r\n\r\n")
        .s(b"<HTML>404</HTML>\n")
        .end(Dir::ToClient);
    let x = t.exchanges();
    assert_eq!(x.len(), 1);
    assert_eq!(
        (x[0].request.target.as_str(), x[0].request.version),
        ("/cgi-bin/formmail.pl?x=1", 0)
    );
    let r = resp(x[0]);
    assert_eq!(
        (r.status, r.body.data.as_slice()),
        (0, &b"<HTML>404</HTML>\n"[..])
    );
}

#[test]
fn body_longer_than_content_length_then_next_request() {
    // Zeek http/no_crlf.pcap: POST bodies carry bytes past their Content-Length.
    let mut t = T::new();
    t.c(b"POST /1 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcEXTRA\x00\x00\x00");
    t.s(OK_5);
    t.c(b"POST /2 HTTP/1.1\r\nContent-Length: 1\r\n\r\nz")
        .s(OK_5);
    assert_eq!(t.pairs(), pairs(&[("/1", Some(200)), ("/2", Some(200))]));
}

#[test]
fn too_many_pending_requests_reports_oldest_without_mispairing() {
    let mut t = T::with(HttpLimits {
        max_pending_requests: 2,
        ..HttpLimits::default()
    });
    t.c(b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\n");
    t.s(b"HTTP/1.1 201 A\r\nContent-Length: 0\r\n\r\nHTTP/1.1 202 B\r\nContent-Length: 0\r\n\r\nHTTP/1.1 203 C\r\nContent-Length: 0\r\n\r\n");
    // /1 was reported unanswered when /3 came; the first response is still /1's and dropped.
    assert_eq!(
        t.pairs(),
        pairs(&[("/1", None), ("/2", Some(202)), ("/3", Some(203))])
    );
}

#[test]
fn request_head_split_everywhere() {
    let wire = b"GET /split HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n";
    for cut in 1..wire.len() {
        let mut t = T::new();
        t.c(&wire[..cut]).c(&wire[cut..]).s(OK_5);
        assert_eq!(t.pairs(), pairs(&[("/split", Some(200))]), "cut at {cut}");
        assert_eq!(t.exchanges()[0].request.packet, 1);
        assert!(t.anomalies().is_empty());
    }
}

/// xorshift64*: deterministic pseudo-random bytes for the fuzz loop.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[test]
fn random_bytes_never_panic_and_stay_bounded() {
    const PIECES: &[&[u8]] = &[
        b"GET /x HTTP/1.1\r\n",
        b"HTTP/1.1 200 OK\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"CONNECT h:443 HTTP/1.1\r\n\r\n",
        b"Content-Length: 5\r\n",
        b"Content-Length: 99999999999\r\n",
        b"Transfer-Encoding: chunked\r\n",
        b"Content-Encoding: gzip\r\n",
        b"Connection: upgrade\r\nUpgrade: x\r\n",
        b"\r\n",
        b"5\r\nhello\r\n",
        b"0\r\n\r\n",
        b"fffffffffffffffff\r\n",
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00",
        b"HTTP/1.1 101 Switching\r\n\r\n",
        b"GET /09\r\n",
    ];
    let limits = HttpLimits {
        max_head_bytes: 300,
        max_body_kept: 64,
        max_pending_requests: 4,
        max_gzip_ratio: 10,
        overflow_events: false,
    };
    let bound = 2 * (limits.max_head_bytes + 1)
        + 2 * limits.max_body_kept
        + MAX_CHUNK_LINE
        + limits.max_head_bytes;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..400 {
        let mut conn = Http1Conn::new(round, limits.clone());
        let mut out = Vec::new();
        let mut packet = 0;
        for _ in 0..60 {
            packet += 1;
            let dir = if rng.below(2) == 0 {
                Dir::ToServer
            } else {
                Dir::ToClient
            };
            let mut data = Vec::new();
            for _ in 0..=rng.below(4) {
                if rng.below(3) == 0 {
                    for _ in 0..rng.below(40) {
                        data.push(rng.next() as u8);
                    }
                } else {
                    data.extend_from_slice(PIECES[rng.below(PIECES.len() as u64) as usize]);
                }
            }
            match rng.below(20) {
                0 => conn.on_gap(dir, ts(packet), rng.below(5000), &mut out),
                1 => conn.on_end(dir, ts(packet), packet, &mut out),
                _ => conn.on_data(dir, ts(packet), packet, &data, &mut out),
            }
            assert!(
                conn.held_bytes() <= bound,
                "round {round}: {} bytes held",
                conn.held_bytes()
            );
            assert!(conn.queue.len() <= 2 * limits.max_pending_requests + 2);
        }
        conn.finish(ts(packet + 1), &mut out);
        for e in &out {
            if let HttpEvent::Exchange(x) = e {
                if let Some(r) = &x.response {
                    assert!(r.body.data.len() <= limits.max_body_kept);
                }
            }
        }
    }
}

#[test]
fn methods_pcap_oddities() {
    // Zeek http/methods.pcap: each of these is one connection; Zeek logs the method and uri.
    let cases: &[(&[u8], &str, &str)] = &[
        (
            b"OPTIONS HTTP/1.1\r\nHost: www.google.com\r\n\r\n",
            "OPTIONS",
            "",
        ),
        (b"GET / HTTP/1.\r\nHost: www.google.com\r\n\r\n", "GET", "/"),
        (
            b"GET /HTTP/1.1\r\nHost: www.google.com\r\n\r\n",
            "GET",
            "/HTTP/1.1",
        ),
        (
            b"CCM_POST / HTTP/1.1\r\nHost: www.google.com\r\n\r\n",
            "CCM_POST",
            "/",
        ),
    ];
    for (req, method, target) in cases {
        assert!(looks_like_request(req));
        let mut t = T::new();
        t.c(req)
            .s(b"HTTP/1.0 400 Bad Request\r\nContent-Length: 3\r\n\r\nbad")
            .finish();
        let x = t.exchanges();
        assert_eq!(x.len(), 1, "{}", String::from_utf8_lossy(req));
        assert_eq!(
            (x[0].request.method.as_str(), x[0].request.target.as_str()),
            (*method, *target)
        );
        assert_eq!(
            header(&x[0].request.headers, "host"),
            Some("www.google.com")
        );
        assert_eq!(resp(x[0]).status, 400);
        assert!(t.anomalies().is_empty(), "{:?}", t.anomalies());
    }
    assert!(!looks_like_request(b"GET/ HTTP/1.1\r\n"));
    assert!(!looks_like_request(b"\x16\x03\x01"));
    assert!(!looks_like_request(b"EHLO mail\r\n"));
}

#[test]
fn invalid_chunk_size_keeps_request_and_finds_smuggled_one() {
    // Zeek http/261 chunk_2pow64_overflow: the chunk size overflows 64 bits.
    let mut t = T::new();
    t.c(b"POST / HTTP/1.1\r\nHost: target\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: target\r\n\r\n");
    t.finish();
    assert_eq!(t.pairs(), pairs(&[("/", None), ("/smuggled", None)]));
    assert!(t
        .anomalies()
        .iter()
        .any(|a| a.contains("invalid chunk-size line")));
}

/// What an exchange says apart from timing.
fn summary(out: &[HttpEvent]) -> Vec<String> {
    out.iter()
        .filter_map(|e| match e {
            HttpEvent::Exchange(x) => Some(format!(
                "{} {} v{} body={} -> {:?}",
                x.request.method,
                x.request.target,
                x.request.version,
                x.request.body_len,
                x.response.as_ref().map(|r| (
                    r.status,
                    crate::proto::escape_bytes(&r.body.data),
                    r.body.len,
                    r.body.wire_len,
                    r.body.complete,
                    r.body.decode_error
                ))
            )),
            HttpEvent::TunnelData { dir, data, .. } => Some(format!("tunnel {dir:?} {data:?}")),
            _ => None,
        })
        .collect()
}

#[test]
fn any_chunking_gives_the_same_exchanges() {
    let z = gzip(b"line one\nline two\n");
    let mut gz_resp = format!(
        "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
        z.len()
    )
    .into_bytes();
    gz_resp.extend_from_slice(&z);
    let phases: Vec<(Dir, Vec<u8>)> = vec![
        (Dir::ToServer, b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nPOST /2 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n".to_vec()),
        (Dir::ToClient, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwxyz\r\n0\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\nContent-Length: 2\n\nok".to_vec()),
        (Dir::ToServer, b"HEAD /3 HTTP/1.1\r\n\r\nGET /4 HTTP/1.1\r\n\r\n".to_vec()),
        (Dir::ToClient, [&b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"[..], &gz_resp].concat()),
        (Dir::ToServer, b"CONNECT h:443 HTTP/1.1\r\n\r\n\x16\x03\x01".to_vec()),
        (Dir::ToClient, b"HTTP/1.1 200 OK\r\n\r\n\x16\x03\x03".to_vec()),
    ];
    let run = |rng: Option<&mut Rng>| -> Vec<String> {
        let mut conn = Http1Conn::new(1, HttpLimits::default());
        let mut out = Vec::new();
        let mut packet = 0;
        let mut rng = rng;
        for (dir, bytes) in &phases {
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                let n = match rng.as_deref_mut() {
                    Some(r) => 1 + r.below(rest.len() as u64) as usize,
                    None => rest.len(),
                };
                packet += 1;
                conn.on_data(*dir, ts(packet), packet, &rest[..n], &mut out);
                rest = &rest[n..];
            }
        }
        conn.finish(ts(packet + 1), &mut out);
        // Tunnel bytes may come in other chunks: join them per direction.
        let mut s = summary(&out);
        s.retain(|l| !l.starts_with("tunnel"));
        let tunnel: Vec<u8> = out
            .iter()
            .filter_map(|e| match e {
                HttpEvent::TunnelData { data, .. } => Some(data.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        s.push(format!("tunnel bytes {tunnel:?}"));
        s
    };
    let reference = run(None);
    assert_eq!(reference.len(), 6, "{reference:#?}");
    assert!(reference[3].contains("line one"), "{reference:#?}");
    let mut rng = Rng(42);
    for _ in 0..300 {
        assert_eq!(run(Some(&mut rng)), reference);
    }
}

#[test]
fn mutated_transcripts_never_panic() {
    let base: Vec<(Dir, &[u8])> = vec![
        (Dir::ToServer, b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nPOST /2 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
        (Dir::ToClient, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: deflate\r\n\r\n4\r\nwxyz\r\n0\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"),
        (Dir::ToServer, b"CONNECT h:443 HTTP/1.1\r\n\r\n"),
        (Dir::ToClient, b"HTTP/1.1 407 No\r\nContent-Length: 0\r\n\r\n"),
    ];
    let limits = HttpLimits {
        max_head_bytes: 200,
        max_body_kept: 16,
        max_pending_requests: 2,
        max_gzip_ratio: 5,
        overflow_events: true,
    };
    let mut rng = Rng(7);
    for round in 0..3000 {
        let mut conn = Http1Conn::new(round, limits.clone());
        let mut out = Vec::new();
        let mut packet = 0;
        for (dir, bytes) in &base {
            let mut v = bytes.to_vec();
            for _ in 0..rng.below(4) {
                let i = rng.below(v.len() as u64) as usize;
                v[i] = rng.next() as u8;
            }
            let mut rest = &v[..];
            while !rest.is_empty() {
                let n = 1 + rng.below(rest.len() as u64) as usize;
                packet += 1;
                if rng.below(30) == 0 {
                    conn.on_gap(*dir, ts(packet), rng.below(50), &mut out);
                }
                conn.on_data(*dir, ts(packet), packet, &rest[..n], &mut out);
                rest = &rest[n..];
            }
        }
        conn.finish(ts(packet + 1), &mut out);
    }
}

/// A body past the keep limit is passed on in order as BodyOverflow events (chunked and
/// gzip-decoded too), so the caller can spill it: kept bytes + overflow = the whole body.
#[test]
fn overflow_events_carry_the_rest_of_a_large_body() {
    let limits = HttpLimits {
        max_body_kept: 16,
        overflow_events: true,
        ..HttpLimits::default()
    };
    let body: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
    for (encoding, wire) in [
        ("", body.clone()),
        ("Content-Encoding: gzip\r\n", gzip(&body)),
    ] {
        let mut conn = Http1Conn::new(1, limits.clone());
        let mut out = Vec::new();
        conn.on_data(
            Dir::ToServer,
            Ts(1),
            1,
            b"GET /x.zip HTTP/1.1\r\nHost: h\r\n\r\n",
            &mut out,
        );
        let mut resp =
            format!("HTTP/1.1 200 OK\r\n{encoding}Transfer-Encoding: chunked\r\n\r\n").into_bytes();
        for c in wire.chunks(700) {
            resp.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
            resp.extend_from_slice(c);
            resp.extend_from_slice(b"\r\n");
        }
        resp.extend_from_slice(b"0\r\n\r\n");
        for (i, piece) in resp.chunks(333).enumerate() {
            conn.on_data(Dir::ToClient, Ts(2), 2 + i as u64, piece, &mut out);
        }
        let mut whole = Vec::new();
        let mut exchange = None;
        for e in out {
            match e {
                HttpEvent::BodyOverflow { flow, data } => {
                    assert_eq!(flow, 1);
                    assert!(exchange.is_none(), "overflow comes before its exchange");
                    whole.extend_from_slice(&data);
                }
                HttpEvent::Exchange(x) => exchange = Some(x),
                _ => {}
            }
        }
        let b = exchange.unwrap().response.unwrap().body;
        assert_eq!(b.data.len(), 16);
        assert_eq!(b.overflow, body.len() as u64 - 16, "{encoding}");
        let mut all = b.data.clone();
        all.extend_from_slice(&whole);
        assert_eq!(all, body, "{encoding}");
        assert!(b.complete && !b.kept_all);
    }
}
