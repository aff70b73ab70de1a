//! Minimal HTTP/1.1 for the lab (RFC 9112): reading requests off a keep-alive connection with
//! httparse, writing responses with Content-Length, and a one-shot client for the mirror's
//! upstream fetches, over plain TCP or rustls (https:// upstreams). Loopback only.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

/// Every limit the lab's HTTP code enforces, with why.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Bytes of one request head. The go command's requests are under 1 KiB; 16 KiB leaves room
    /// for hand-made clients and stops a client that never ends its head.
    pub max_request_head: usize,
    /// Header fields per request or upstream response (httparse needs a fixed array).
    pub max_headers: usize,
    /// Request body bytes read and discarded (the GOPROXY protocol only has GETs).
    pub max_request_body: usize,
    /// Idle time on a kept-alive connection before the server closes it. The go command keeps
    /// idle connections 90 s (net/http DefaultTransport); closing earlier is allowed (RFC 9112
    /// 9.6) and bounds the threads a stuck client holds.
    pub idle_timeout: Duration,
    /// Connections served at once per server; more are closed on accept. The go command opens a
    /// handful; 64 stops a runaway client from spawning threads without end.
    pub max_connections: usize,
    /// Bytes of an upstream response the mirror buffers. Lab modules are KBs; the go command
    /// itself refuses zips over 500 MiB, the mirror need not go near that.
    pub max_upstream_response: usize,
    /// Connect, read and write timeout of the mirror's upstream fetches.
    pub upstream_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_head: 16 * 1024,
            max_headers: 64,
            max_request_body: 1 << 20,
            idle_timeout: Duration::from_secs(30),
            max_connections: 64,
            max_upstream_response: 64 << 20,
            upstream_timeout: Duration::from_secs(10),
        }
    }
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// The request target exactly as on the request line.
    pub target: String,
    /// HTTP/1.x minor version.
    pub minor: u8,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Request {
    /// First value of a header, case-insensitively (RFC 9110 5.1).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// RFC 9112 9.3: HTTP/1.1 persists unless `close`; HTTP/1.0 only with `keep-alive`.
    pub fn wants_keep_alive(&self) -> bool {
        let conn = self
            .header("connection")
            .map(|v| String::from_utf8_lossy(v).to_ascii_lowercase());
        let has = |t: &str| {
            conn.as_deref()
                .is_some_and(|c| c.split(',').any(|x| x.trim() == t))
        };
        if self.minor >= 1 {
            !has("close")
        } else {
            has("keep-alive")
        }
    }
}

/// A response to write.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
        }
    }

    pub fn text(status: u16, body: &str) -> Response {
        Response::new(
            status,
            "text/plain; charset=utf-8",
            body.as_bytes().to_vec(),
        )
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// What reading the next request produced.
#[derive(Debug)]
pub enum ReadOutcome {
    Request(Request),
    /// The client closed (or went idle past the timeout) between requests.
    Closed,
    /// Unparsable or over a limit: answer this status and close.
    Bad(u16),
}

/// Reads the next request from `stream`, keeping bytes after it in `buf` (pipelining).
pub fn read_request<S: Read>(stream: &mut S, buf: &mut Vec<u8>, limits: &Limits) -> ReadOutcome {
    let mut chunk = [0u8; 4096];
    loop {
        let mut headers = vec![httparse::EMPTY_HEADER; limits.max_headers];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(buf) {
            Ok(httparse::Status::Complete(head_len)) => {
                let request = Request {
                    method: req.method.unwrap_or("").to_string(),
                    target: req.path.unwrap_or("").to_string(),
                    minor: req.version.unwrap_or(1),
                    headers: req
                        .headers
                        .iter()
                        .map(|h| (h.name.to_string(), h.value.to_vec()))
                        .collect(),
                };
                buf.drain(..head_len);
                if request.header("transfer-encoding").is_some() {
                    // No GOPROXY request has a body; chunked bodies are not worth parsing here.
                    return ReadOutcome::Bad(501);
                }
                let body_len = match request.header("content-length") {
                    None => 0,
                    Some(v) => match std::str::from_utf8(v)
                        .ok()
                        .and_then(|s| s.trim().parse::<usize>().ok())
                    {
                        Some(n) => n,
                        None => return ReadOutcome::Bad(400),
                    },
                };
                if body_len > limits.max_request_body {
                    return ReadOutcome::Bad(413);
                }
                if let Err(status) = discard_body(stream, buf, body_len) {
                    return ReadOutcome::Bad(status);
                }
                return ReadOutcome::Request(request);
            }
            Ok(httparse::Status::Partial) => {
                if buf.len() > limits.max_request_head {
                    return ReadOutcome::Bad(431);
                }
            }
            Err(httparse::Error::TooManyHeaders) => return ReadOutcome::Bad(431),
            Err(_) => return ReadOutcome::Bad(400),
        }
        match stream.read(&mut chunk) {
            Ok(0) => {
                return if buf.is_empty() {
                    ReadOutcome::Closed
                } else {
                    ReadOutcome::Bad(400)
                }
            }
            Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or(&[])),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // Idle timeout or reset: nothing to answer.
            Err(_) => return ReadOutcome::Closed,
        }
    }
}

/// Drops `len` body bytes: first from `buf`, then from the stream.
fn discard_body<S: Read>(stream: &mut S, buf: &mut Vec<u8>, len: usize) -> Result<(), u16> {
    let from_buf = len.min(buf.len());
    buf.drain(..from_buf);
    let mut left = len - from_buf;
    let mut chunk = [0u8; 4096];
    while left > 0 {
        let want = left.min(chunk.len());
        match stream.read(chunk.get_mut(..want).unwrap_or(&mut [])) {
            Ok(0) => return Err(400),
            Ok(n) => left = left.saturating_sub(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(400),
        }
    }
    Ok(())
}

/// RFC 9110 15: reason phrases for the codes the lab sends or relays.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        410 => "Gone",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// Writes a response with Content-Length (no Date header: nothing in the answers depends on a
/// clock). Returns the body bytes sent (0 for HEAD).
pub fn write_response<W: Write>(
    w: &mut W,
    resp: &Response,
    head_only: bool,
    close: bool,
) -> io::Result<u64> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
    for (n, v) in &resp.headers {
        head.push_str(n);
        head.push_str(": ");
        head.push_str(v);
        head.push_str("\r\n");
    }
    head.push_str(&format!("Content-Length: {}\r\n", resp.body.len()));
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    // One write for head and body: fewer, fuller segments on the wire.
    let mut out = head.into_bytes();
    if !head_only {
        out.extend_from_slice(&resp.body);
    }
    w.write_all(&out)?;
    w.flush()?;
    Ok(if head_only { 0 } else { resp.body.len() as u64 })
}

/// A parsed `http[s]://HOST:PORT[/prefix]` base. Only IP literals on loopback: the lab never
/// resolves names nor leaves the machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpBase {
    pub addr: SocketAddr,
    /// Path prefix without trailing slash (`""` or `/mod`).
    pub prefix: String,
    /// `https://`: the fetch runs over TLS (the caller gives the client configuration).
    pub https: bool,
}

impl HttpBase {
    pub fn parse(base: &str) -> Result<HttpBase, String> {
        let (rest, https) = match (base.strip_prefix("http://"), base.strip_prefix("https://")) {
            (Some(r), _) => (r, false),
            (_, Some(r)) => (r, true),
            _ => {
                return Err(format!(
                    "{base}: only http:// and https:// bases are supported"
                ))
            }
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (rest.get(..i).unwrap_or(""), rest.get(i..).unwrap_or("")),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(format!(
                "{base}: userinfo in the base is not supported; use --user/--password"
            ));
        }
        let addr: SocketAddr = authority
            .parse()
            .map_err(|_| format!("{base}: host must be IP:PORT"))?;
        if !is_loopback(addr.ip()) {
            return Err(format!("{base}: the lab only talks to loopback addresses"));
        }
        Ok(HttpBase {
            addr,
            prefix: path.trim_end_matches('/').to_string(),
            https,
        })
    }
}

pub fn is_loopback(ip: IpAddr) -> bool {
    ip.is_loopback()
}

/// A response from the upstream.
#[derive(Clone, Debug)]
pub struct UpstreamResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// One GET over a fresh connection (`Connection: close`), with optional extra headers. The
/// response is read to EOF (bounded) and framed by Content-Length when present. Plain http://
/// only: see [`fetch_tls`] for https://.
pub fn fetch(
    base: &HttpBase,
    target: &str,
    extra_headers: &[(&str, &str)],
    limits: &Limits,
) -> Result<UpstreamResponse, String> {
    fetch_tls(base, target, extra_headers, limits, None)
}

/// [`fetch`], over TLS with `tls` when the base is https:// (the server name checked is the
/// base's IP address; rustls sends no SNI for an IP, RFC 6066 3). A TLS failure (certificate
/// refused, alert) comes back as the error text.
pub fn fetch_tls(
    base: &HttpBase,
    target: &str,
    extra_headers: &[(&str, &str)],
    limits: &Limits,
    tls: Option<&std::sync::Arc<rustls::ClientConfig>>,
) -> Result<UpstreamResponse, String> {
    let s = TcpStream::connect_timeout(&base.addr, limits.upstream_timeout)
        .map_err(|e| format!("connect {}: {e}", base.addr))?;
    s.set_read_timeout(Some(limits.upstream_timeout))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(limits.upstream_timeout))
        .map_err(|e| e.to_string())?;
    if !base.https {
        let mut s = s;
        return exchange(&mut s, base, target, extra_headers, limits);
    }
    let cfg = tls.ok_or_else(|| format!("{}: https upstream without a TLS client", base.addr))?;
    let name = rustls::pki_types::ServerName::IpAddress(base.addr.ip().into());
    let conn = rustls::ClientConnection::new(cfg.clone(), name)
        .map_err(|e| format!("tls to {}: {e}", base.addr))?;
    let mut tls_stream = rustls::StreamOwned::new(conn, s);
    // Drive the handshake first, so a refused certificate reads as a TLS error.
    while tls_stream.conn.is_handshaking() {
        match tls_stream.conn.complete_io(&mut tls_stream.sock) {
            Ok((0, 0)) => return Err(format!("tls to {}: closed during the handshake", base.addr)),
            Ok(_) => {}
            Err(e) => return Err(format!("tls to {}: {e}", base.addr)),
        }
    }
    let r = exchange(&mut tls_stream, base, target, extra_headers, limits);
    tls_stream.conn.send_close_notify();
    let _ = tls_stream.conn.complete_io(&mut tls_stream.sock);
    r
}

/// Writes the request and reads the response on an open stream.
fn exchange<S: Read + Write>(
    s: &mut S,
    base: &HttpBase,
    target: &str,
    extra_headers: &[(&str, &str)],
    limits: &Limits,
) -> Result<UpstreamResponse, String> {
    let mut req = format!(
        "GET {}{} HTTP/1.1\r\nHost: {}\r\nUser-Agent: modtrace-lab-mirror/{}\r\n",
        base.prefix,
        target,
        base.addr,
        env!("CARGO_PKG_VERSION")
    );
    for (n, v) in extra_headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("Connection: close\r\n\r\n");
    s.write_all(req.as_bytes())
        .and_then(|()| s.flush())
        .map_err(|e| format!("send to {}: {e}", base.addr))?;
    let mut raw = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            // A TLS peer that closes without close_notify: what was read so far is all.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Ok(n) => {
                raw.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
                if raw.len() > limits.max_upstream_response {
                    return Err(format!(
                        "response from {} over {} bytes",
                        base.addr, limits.max_upstream_response
                    ));
                }
                if let Some(done) = complete_response(&raw, limits) {
                    return done;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read from {}: {e}", base.addr)),
        }
    }
    match complete_response(&raw, limits) {
        Some(r) => r,
        None => parse_response(&raw, true, limits),
    }
}

/// `Some` once `raw` holds a whole Content-Length-framed response.
fn complete_response(raw: &[u8], limits: &Limits) -> Option<Result<UpstreamResponse, String>> {
    match parse_response(raw, false, limits) {
        Err(e) if e == "partial" => None,
        other => Some(other),
    }
}

/// Parses a response; with `at_eof` a response without Content-Length ends at EOF.
fn parse_response(raw: &[u8], at_eof: bool, limits: &Limits) -> Result<UpstreamResponse, String> {
    let mut headers = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(raw) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if !at_eof => return Err("partial".into()),
        Ok(httparse::Status::Partial) => {
            return Err("upstream closed before the end of the response head".into())
        }
        Err(e) => return Err(format!("bad upstream response: {e}")),
    };
    let status = resp.code.unwrap_or(502);
    let hdrs: Vec<(String, String)> = resp
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let get = |n: &str| {
        hdrs.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.as_str())
    };
    if get("transfer-encoding").is_some() {
        return Err("chunked upstream responses are not supported".into());
    }
    let rest = raw.get(head_len..).unwrap_or(&[]);
    let body = match get("content-length") {
        Some(v) => {
            let n: usize = v
                .trim()
                .parse()
                .map_err(|_| format!("bad upstream Content-Length {v:?}"))?;
            match rest.get(..n) {
                Some(b) => b.to_vec(),
                None if !at_eof => return Err("partial".into()),
                None => return Err("upstream closed before the end of the body".into()),
            }
        }
        None if !at_eof => return Err("partial".into()),
        None => rest.to_vec(),
    };
    Ok(UpstreamResponse {
        status,
        headers: hdrs,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn reads_pipelined_requests_and_keeps_the_rest() {
        let raw =
            b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
        let mut s = Cursor::new(raw.to_vec());
        let mut buf = Vec::new();
        let l = Limits::default();
        let ReadOutcome::Request(a) = read_request(&mut s, &mut buf, &l) else {
            panic!("first")
        };
        assert_eq!(
            (a.method.as_str(), a.target.as_str(), a.minor),
            ("GET", "/a", 1)
        );
        assert!(a.wants_keep_alive());
        let ReadOutcome::Request(b) = read_request(&mut s, &mut buf, &l) else {
            panic!("second")
        };
        assert_eq!((b.target.as_str(), b.minor), ("/b", 0));
        assert!(b.wants_keep_alive());
        assert!(matches!(
            read_request(&mut s, &mut buf, &l),
            ReadOutcome::Closed
        ));
    }

    #[test]
    fn connection_close_and_http10_default_close() {
        let mut buf =
            b"GET / HTTP/1.1\r\nConnection: Keep-Alive, close\r\n\r\nGET / HTTP/1.0\r\n\r\n"
                .to_vec();
        let l = Limits::default();
        let mut empty = Cursor::new(Vec::new());
        let ReadOutcome::Request(a) = read_request(&mut empty, &mut buf, &l) else {
            panic!()
        };
        assert!(!a.wants_keep_alive());
        let ReadOutcome::Request(b) = read_request(&mut empty, &mut buf, &l) else {
            panic!()
        };
        assert!(!b.wants_keep_alive());
    }

    #[test]
    fn skips_request_body_and_rejects_bad_input() {
        let l = Limits::default();
        let mut buf = Vec::new();
        let mut s = Cursor::new(
            b"POST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /y HTTP/1.1\r\n\r\n".to_vec(),
        );
        let ReadOutcome::Request(_) = read_request(&mut s, &mut buf, &l) else {
            panic!()
        };
        let ReadOutcome::Request(y) = read_request(&mut s, &mut buf, &l) else {
            panic!()
        };
        assert_eq!(y.target, "/y");
        let mut bad = Cursor::new(b"GET /\x01 HTTP/1.1\r\n\r\n".to_vec());
        assert!(matches!(
            read_request(&mut bad, &mut Vec::new(), &l),
            ReadOutcome::Bad(400)
        ));
        let mut trunc = Cursor::new(b"GET / HTTP/1.1\r\nHost".to_vec());
        assert!(matches!(
            read_request(&mut trunc, &mut Vec::new(), &l),
            ReadOutcome::Bad(400)
        ));
        let small = Limits {
            max_request_head: 8,
            ..Limits::default()
        };
        let mut long = Cursor::new(b"GET /0123456789 HTTP/1.1\r\n".to_vec());
        assert!(matches!(
            read_request(&mut long, &mut Vec::new(), &small),
            ReadOutcome::Bad(431)
        ));
        let mut chunked =
            Cursor::new(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec());
        assert!(matches!(
            read_request(&mut chunked, &mut Vec::new(), &l),
            ReadOutcome::Bad(501)
        ));
    }

    #[test]
    fn writes_head_and_body_with_length() {
        let mut out = Vec::new();
        let n = write_response(&mut out, &Response::text(410, "gone\n"), false, true).unwrap();
        assert_eq!(n, 5);
        assert_eq!(
            out,
            b"HTTP/1.1 410 Gone\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 5\r\nConnection: close\r\n\r\ngone\n".to_vec()
        );
        let mut head = Vec::new();
        assert_eq!(
            write_response(&mut head, &Response::text(200, "x"), true, false).unwrap(),
            0
        );
        assert!(head.ends_with(b"Content-Length: 1\r\n\r\n"));
    }

    #[test]
    fn base_parsing_is_loopback_only() {
        let b = HttpBase::parse("http://127.0.0.1:8087/mod/").unwrap();
        assert_eq!(b.addr, "127.0.0.1:8087".parse().unwrap());
        assert_eq!(b.prefix, "/mod");
        assert!(HttpBase::parse("http://10.0.0.1:80").is_err());
        let tls = HttpBase::parse("https://127.0.0.1:8443").unwrap();
        assert!(tls.https && !b.https);
        assert!(HttpBase::parse("ftp://127.0.0.1:80").is_err());
        assert!(HttpBase::parse("http://example.test:80").is_err());
        assert!(HttpBase::parse("http://u:p@127.0.0.1:80").is_err());
    }

    #[test]
    fn upstream_response_framing() {
        let l = Limits::default();
        let full = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        assert!(complete_response(&full[..full.len() - 1], &l).is_none());
        let r = complete_response(full, &l).unwrap().unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]));
        let eof = parse_response(b"HTTP/1.1 404 Not Found\r\n\r\nno", true, &l).unwrap();
        assert_eq!((eof.status, eof.body.as_slice()), (404, &b"no"[..]));
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab", true, &l).is_err()
        );
    }
}
