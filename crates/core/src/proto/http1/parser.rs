//! Pure HTTP/1 parsing: start lines, header blocks, chunk-size lines, body framing decisions,
//! and the "does this still look like HTTP/1" checks used at message starts and to
//! resynchronise after a gap (Suricata `dns.rs` idea: check the data still looks like the
//! protocol before parsing again).
//!
//! Start lines and header blocks are parsed here by hand rather than with `httparse::Request`:
//! a passive observer must keep what real peers send, and httparse rejects a request-target
//! that is not UTF-8 (`Error::Token`), HTTP/0.9 simple requests, obs-fold in requests, and drops
//! a non-UTF-8 reason phrase. httparse still parses chunk-size lines.

use crate::proto::{escape_bytes, Header};
use std::ops::Range;

/// Longest method token accepted at a message start (the longest registered method,
/// `UPDATEREDIRECTREF`, has 17 characters).
const MAX_METHOD_LEN: usize = 24;

/// Longest chunk-size line (size, extensions, CRLF). Go's `net/http/internal/chunked.go` uses
/// `maxLineLength = 4096` for the same line.
pub(crate) const MAX_CHUNK_LINE: usize = 4096;

/// Methods accepted when resynchronising (after a gap or midstream) and for HTTP/0.9 simple
/// requests, where a bare token is too weak a signal. IANA HTTP Method Registry, common subset.
pub(crate) const KNOWN_METHODS: &[&[u8]] = &[
    b"GET",
    b"HEAD",
    b"POST",
    b"PUT",
    b"DELETE",
    b"CONNECT",
    b"OPTIONS",
    b"TRACE",
    b"PATCH",
    b"PROPFIND",
    b"PROPPATCH",
    b"MKCOL",
    b"COPY",
    b"MOVE",
    b"LOCK",
    b"UNLOCK",
    b"SEARCH",
    b"REPORT",
    b"MKACTIVITY",
    b"CHECKOUT",
    b"MERGE",
    b"PURGE",
];

/// Outcome of checking whether bytes start a message line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Check<T> {
    /// The line is complete and well formed.
    Yes(T),
    /// So far consistent; the line is not complete yet.
    Maybe,
    /// Not a start line.
    No,
}

/// A request line: ranges index the buffer that was checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RequestLine {
    pub method: Range<usize>,
    pub target: Range<usize>,
    /// Minor version of `HTTP/1.x`, or `None` for an HTTP/0.9 simple request (no version).
    pub version: Option<u8>,
    /// Index just past the line's LF.
    pub end: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StatusLine {
    pub version: u8,
    pub status: u16,
    pub reason: Range<usize>,
    /// Index just past the line's LF.
    pub end: usize,
}

/// RFC 9110 5.6.2 tchar.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// A request-target byte: anything visible, including bytes >= 0x80 (kept and escaped later),
/// but no controls, space or DEL.
fn is_target_byte(b: u8) -> bool {
    b > 0x20 && b != 0x7f
}

pub(crate) fn is_known_method(m: &[u8]) -> bool {
    KNOWN_METHODS.contains(&m)
}

/// `buf[i..]` is CRLF or LF (RFC 9112 2.2: a recipient MAY recognise a bare LF as a line
/// terminator). Returns the index past the LF.
fn line_end_at(buf: &[u8], i: usize) -> Check<usize> {
    match buf.get(i) {
        None => Check::Maybe,
        Some(b'\n') => Check::Yes(i.saturating_add(1)),
        Some(b'\r') => match buf.get(i.saturating_add(1)) {
            None => Check::Maybe,
            Some(b'\n') => Check::Yes(i.saturating_add(2)),
            Some(_) => Check::No,
        },
        Some(_) => Check::No,
    }
}

fn skip_spaces(buf: &[u8], mut i: usize) -> usize {
    while matches!(buf.get(i), Some(b' ') | Some(b'\t')) {
        i = i.saturating_add(1);
    }
    i
}

/// Compares `buf[i..]` with `lit`: `Yes(i + lit.len())` on a full match, `Maybe` when the buffer
/// ends inside a matching prefix.
fn expect_literal(buf: &[u8], i: usize, lit: &[u8]) -> Check<usize> {
    let rest = buf.get(i..).unwrap_or(&[]);
    if rest.len() >= lit.len() {
        if rest.get(..lit.len()) == Some(lit) {
            Check::Yes(i.saturating_add(lit.len()))
        } else {
            Check::No
        }
    } else if lit.starts_with(rest) {
        Check::Maybe
    } else {
        Check::No
    }
}

/// Does `buf` start with a request line (RFC 9112 3)? `known_method_only` requires a method
/// from [`KNOWN_METHODS`] and a well-formed version (used when resynchronising). Otherwise it
/// is lenient like Zeek (http/methods.pcap): several spaces between the parts, bare LF,
/// non-UTF-8 bytes in the target, an empty target (`OPTIONS HTTP/1.1`), a version without its
/// minor digit (`HTTP/1.`, read as 0). HTTP/0.9 simple requests (`GET /x` with no version,
/// RFC 1945 4.1) always require a known method.
pub(crate) fn check_request_line(buf: &[u8], known_method_only: bool) -> Check<RequestLine> {
    let lenient = !known_method_only;
    let mut i = 0usize;
    while let Some(&b) = buf.get(i) {
        if !is_tchar(b) {
            break;
        }
        i = i.saturating_add(1);
        if i > MAX_METHOD_LEN {
            return Check::No;
        }
    }
    let method = 0..i;
    let method_bytes = buf.get(method.clone()).unwrap_or(&[]);
    if buf.get(i).is_none() {
        // The buffer ends inside the method.
        if known_method_only && !KNOWN_METHODS.iter().any(|m| m.starts_with(method_bytes)) {
            return Check::No;
        }
        return Check::Maybe;
    }
    if i == 0 || buf.get(i) != Some(&b' ') {
        return Check::No;
    }
    let known = is_known_method(method_bytes);
    if known_method_only && !known {
        return Check::No;
    }
    i = skip_spaces(buf, i);
    if lenient {
        // An empty target: the version follows the method directly.
        if let Check::Yes((minor, end)) = version_to_line_end(buf, i, true) {
            return Check::Yes(RequestLine {
                method,
                target: i..i,
                version: Some(minor),
                end,
            });
        }
    }
    let t0 = i;
    while let Some(&b) = buf.get(i) {
        if !is_target_byte(b) {
            break;
        }
        i = i.saturating_add(1);
    }
    let target = t0..i;
    match buf.get(i) {
        None => return Check::Maybe,
        Some(b' ') | Some(b'\t') | Some(b'\r') | Some(b'\n') if i > t0 => {}
        Some(_) => return Check::No,
    }
    i = skip_spaces(buf, i);
    match buf.get(i) {
        None => return Check::Maybe,
        Some(b'\r') | Some(b'\n') => {
            // HTTP/0.9 simple request: method SP target CRLF.
            if !known {
                return Check::No;
            }
            return match line_end_at(buf, i) {
                Check::Yes(end) => Check::Yes(RequestLine {
                    method,
                    target,
                    version: None,
                    end,
                }),
                Check::Maybe => Check::Maybe,
                Check::No => Check::No,
            };
        }
        Some(_) => {}
    }
    match version_to_line_end(buf, i, lenient) {
        Check::Yes((minor, end)) => Check::Yes(RequestLine {
            method,
            target,
            version: Some(minor),
            end,
        }),
        Check::Maybe => Check::Maybe,
        Check::No => Check::No,
    }
}

/// `HTTP/1.x`, optional spaces, then the line end, at `i`. Returns the minor version and the
/// index past the LF. `lenient` accepts a missing minor digit (read as 0).
fn version_to_line_end(buf: &[u8], i: usize, lenient: bool) -> Check<(u8, usize)> {
    let mut i = match expect_literal(buf, i, b"HTTP/1.") {
        Check::Yes(j) => j,
        Check::Maybe => return Check::Maybe,
        Check::No => return Check::No,
    };
    let minor = match buf.get(i) {
        None => return Check::Maybe,
        Some(d) if d.is_ascii_digit() => {
            i = i.saturating_add(1);
            d.saturating_sub(b'0')
        }
        Some(b'\r') | Some(b'\n') | Some(b' ') if lenient => 0,
        Some(_) => return Check::No,
    };
    i = skip_spaces(buf, i);
    match line_end_at(buf, i) {
        Check::Yes(end) => Check::Yes((minor, end)),
        Check::Maybe => Check::Maybe,
        Check::No => Check::No,
    }
}

/// Does `buf` start with a status line (RFC 9112 4: `HTTP/1.x NNN reason`)? Lenient: no
/// reason, several spaces, bare LF, any bytes in the reason.
pub(crate) fn check_status_line(buf: &[u8], max_line: usize) -> Check<StatusLine> {
    let mut i = match expect_literal(buf, 0, b"HTTP/1.") {
        Check::Yes(j) => j,
        Check::Maybe => return Check::Maybe,
        Check::No => return Check::No,
    };
    let version = match buf.get(i) {
        None => return Check::Maybe,
        Some(d) if d.is_ascii_digit() => d.saturating_sub(b'0'),
        Some(_) => return Check::No,
    };
    i = i.saturating_add(1);
    match buf.get(i) {
        None => return Check::Maybe,
        Some(b' ') => {}
        Some(_) => return Check::No,
    }
    i = skip_spaces(buf, i);
    let mut status: u16 = 0;
    for _ in 0..3 {
        match buf.get(i) {
            None => return Check::Maybe,
            Some(d) if d.is_ascii_digit() => {
                status = status
                    .saturating_mul(10)
                    .saturating_add(u16::from(d.saturating_sub(b'0')));
                i = i.saturating_add(1);
            }
            Some(_) => return Check::No,
        }
    }
    match buf.get(i) {
        None => return Check::Maybe,
        Some(b' ') | Some(b'\t') | Some(b'\r') | Some(b'\n') => {}
        Some(_) => return Check::No,
    }
    let r0 = skip_spaces(buf, i);
    let rest = buf.get(r0..).unwrap_or(&[]);
    match rest.iter().position(|&b| b == b'\n') {
        None => {
            if buf.len() > max_line {
                Check::No
            } else {
                Check::Maybe
            }
        }
        Some(lf) => {
            let end = r0.saturating_add(lf).saturating_add(1);
            let mut r1 = r0.saturating_add(lf);
            if r1 > r0 && buf.get(r1.saturating_sub(1)) == Some(&b'\r') {
                r1 = r1.saturating_sub(1);
            }
            while r1 > r0 && matches!(buf.get(r1.saturating_sub(1)), Some(b' ') | Some(b'\t')) {
                r1 = r1.saturating_sub(1);
            }
            Check::Yes(StatusLine {
                version,
                status,
                reason: r0..r1,
                end,
            })
        }
    }
}

/// Which start line a resynchronisation looks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StartKind {
    Request,
    Response,
}

/// Result of scanning for the start of a message after a gap or in the middle of a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Scan {
    /// A complete, plausible start line begins at this index.
    Found(usize),
    /// A plausible start line may begin at this index but is not complete: keep from here.
    Partial(usize),
    /// Nothing here; the bytes can be dropped.
    NotFound,
}

/// Looks for a start line beginning at a line start: index 0 when `first_is_line_start`, or
/// just after any LF. Requests need a known method and an `HTTP/1.x` version (HTTP/0.9 too
/// weak a signal here); responses `HTTP/1.x NNN`.
pub(crate) fn scan_for_start(
    buf: &[u8],
    first_is_line_start: bool,
    kind: StartKind,
    max_line: usize,
) -> Scan {
    let mut cand = if first_is_line_start {
        Some(0)
    } else {
        next_line_start(buf, 0)
    };
    while let Some(i) = cand {
        let rest = buf.get(i..).unwrap_or(&[]);
        if rest.is_empty() {
            return Scan::NotFound;
        }
        let check = match kind {
            StartKind::Request => match check_request_line(rest, true) {
                Check::Yes(l) if l.version.is_some() => Check::Yes(()),
                Check::Yes(_) | Check::No => Check::No,
                Check::Maybe if rest.len() > max_line => Check::No,
                Check::Maybe => Check::Maybe,
            },
            StartKind::Response => match check_status_line(rest, max_line) {
                Check::Yes(_) => Check::Yes(()),
                Check::Maybe => Check::Maybe,
                Check::No => Check::No,
            },
        };
        match check {
            Check::Yes(()) => return Scan::Found(i),
            Check::Maybe => return Scan::Partial(i),
            Check::No => cand = next_line_start(buf, i),
        }
    }
    Scan::NotFound
}

/// Index just after the first LF at or after `from` (always > `from`).
fn next_line_start(buf: &[u8], from: usize) -> Option<usize> {
    let rest = buf.get(from..)?;
    let lf = rest.iter().position(|&b| b == b'\n')?;
    Some(from.saturating_add(lf).saturating_add(1))
}

/// Finds the end of a header block: the index just past the empty line that ends it. Searches
/// LFs from `from` (callers pass where the last search stopped, minus 2, so a CRLF split over
/// chunks is still found).
pub(crate) fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    loop {
        let rest = buf.get(i..)?;
        let lf = i.saturating_add(rest.iter().position(|&b| b == b'\n')?);
        match buf.get(lf.saturating_add(1)) {
            Some(b'\n') => return Some(lf.saturating_add(2)),
            Some(b'\r') if buf.get(lf.saturating_add(2)) == Some(&b'\n') => {
                return Some(lf.saturating_add(3))
            }
            _ => i = lf.saturating_add(1),
        }
    }
}

/// Header lines after the start line, up to the empty line (or the end of `block`).
/// RFC 9112 5.2: obs-fold (a line starting with SP/HTAB) continues the previous value and is
/// replaced by one SP. Lines without a colon are counted in `bad_lines` and skipped. Spaces
/// before the colon are tolerated (RFC 9112 5.1 says reject; real servers send them).
pub(crate) fn parse_header_block(block: &[u8]) -> (Vec<Header>, usize) {
    let mut raw: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut bad_lines = 0usize;
    for line in block.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if matches!(line.first(), Some(b' ') | Some(b'\t')) {
            match raw.last_mut() {
                Some((_, value)) => {
                    let cont = trim_ows(line);
                    if !cont.is_empty() {
                        if !value.is_empty() {
                            value.push(b' ');
                        }
                        value.extend_from_slice(cont);
                    }
                }
                None => bad_lines = bad_lines.saturating_add(1),
            }
            continue;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            bad_lines = bad_lines.saturating_add(1);
            continue;
        };
        let name = trim_ows(line.get(..colon).unwrap_or(&[]));
        if name.is_empty() {
            bad_lines = bad_lines.saturating_add(1);
            continue;
        }
        let value = trim_ows(line.get(colon.saturating_add(1)..).unwrap_or(&[]));
        raw.push((name.to_vec(), value.to_vec()));
    }
    let headers = raw
        .into_iter()
        .map(|(n, v)| Header {
            name: escape_bytes(&n),
            value: escape_bytes(&v),
        })
        .collect();
    (headers, bad_lines)
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let Some((b' ' | b'\t', rest)) = s.split_first() {
        s = rest;
    }
    while let Some((b' ' | b'\t', rest)) = s.split_last() {
        s = rest;
    }
    s
}

/// A parsed request head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RequestHead {
    pub method: String,
    pub target: String,
    /// `None` for HTTP/0.9.
    pub version: Option<u8>,
    pub headers: Vec<Header>,
    pub bad_lines: usize,
}

/// Parses a complete request head (`head` ends with the empty line, or is just the line for
/// HTTP/0.9).
pub(crate) fn parse_request_head(head: &[u8]) -> Option<RequestHead> {
    let Check::Yes(line) = check_request_line(head, false) else {
        return None;
    };
    // A version-less line may still be followed by header lines (Zeek reads them too).
    let (headers, bad_lines) = parse_header_block(head.get(line.end..).unwrap_or(&[]));
    Some(RequestHead {
        method: escape_bytes(head.get(line.method).unwrap_or(&[])),
        target: escape_bytes(head.get(line.target).unwrap_or(&[])),
        version: line.version,
        headers,
        bad_lines,
    })
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ResponseHead {
    pub version: u8,
    pub status: u16,
    pub reason: String,
    pub headers: Vec<Header>,
    pub bad_lines: usize,
}

pub(crate) fn parse_response_head(head: &[u8]) -> Option<ResponseHead> {
    let Check::Yes(line) = check_status_line(head, head.len()) else {
        return None;
    };
    let (headers, bad_lines) = parse_header_block(head.get(line.end..).unwrap_or(&[]));
    Some(ResponseHead {
        version: line.version,
        status: line.status,
        reason: escape_bytes(head.get(line.reason).unwrap_or(&[])),
        headers,
        bad_lines,
    })
}

/// Parses a chunk-size line (without its LF; a trailing CR is allowed) with
/// `httparse::parse_chunk_size`. Lenient: leading spaces and a bare-LF line end (httparse wants
/// CRLF), which servers send. An empty size (httparse reads it as 0) is rejected.
pub(crate) fn parse_chunk_size_line(line: &[u8]) -> Option<u64> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut start = 0;
    while matches!(line.get(start), Some(b' ') | Some(b'\t')) {
        start = start.saturating_add(1);
    }
    let line = line.get(start..)?;
    if !line.first()?.is_ascii_hexdigit() {
        return None;
    }
    let mut with_crlf = Vec::with_capacity(line.len().saturating_add(2));
    with_crlf.extend_from_slice(line);
    with_crlf.extend_from_slice(b"\r\n");
    match httparse::parse_chunk_size(&with_crlf) {
        Ok(httparse::Status::Complete((_, size))) => Some(size),
        _ => None,
    }
}

/// How a message body is delimited (RFC 9112 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    None,
    Length(u64),
    Chunked,
    /// Read until the server closes (responses only).
    ToClose,
    /// CONNECT answered 2xx: the connection becomes a tunnel.
    Tunnel,
}

/// The transfer codings listed in all Transfer-Encoding fields, in order, lower-cased.
fn transfer_codings(headers: &[Header]) -> Option<Vec<String>> {
    let mut codings = Vec::new();
    let mut seen = false;
    for h in headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("transfer-encoding"))
    {
        seen = true;
        codings.extend(
            h.value
                .split(',')
                .map(|c| c.trim().to_ascii_lowercase())
                .filter(|c| !c.is_empty()),
        );
    }
    seen.then_some(codings)
}

/// The Content-Length, if every Content-Length field (and every comma-separated element) holds
/// the same decimal value (RFC 9112 6.3 item 5). `Err(())` when present but invalid.
fn content_length(headers: &[Header]) -> Result<Option<u64>, ()> {
    let mut value: Option<u64> = None;
    for h in headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("content-length"))
    {
        for part in h.value.split(',') {
            let part = part.trim();
            if part.is_empty() || part.len() > 19 || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(());
            }
            let n: u64 = part.parse().map_err(|_| ())?;
            match value {
                Some(v) if v != n => return Err(()),
                _ => value = Some(n),
            }
        }
    }
    Ok(value)
}

/// A framing decision plus an anomaly worth reporting about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FramingDecision {
    pub framing: Framing,
    pub anomaly: Option<&'static str>,
}

/// Request body framing, RFC 9112 6.3 items 3-6: chunked last coding, else Content-Length,
/// else no body.
pub(crate) fn request_framing(headers: &[Header]) -> FramingDecision {
    let cl = content_length(headers);
    if let Some(codings) = transfer_codings(headers) {
        let anomaly = if cl != Ok(None) {
            Some("request has both Transfer-Encoding and Content-Length (RFC 9112 6.1, a smuggling signal)")
        } else {
            None
        };
        if codings.last().map(String::as_str) == Some("chunked") {
            return FramingDecision {
                framing: Framing::Chunked,
                anomaly,
            };
        }
        // RFC 9112 6.3 item 4: the server answers 400 and closes; whatever follows is not
        // framed, and the start-of-message check will notice.
        return FramingDecision {
            framing: Framing::None,
            anomaly: Some("request Transfer-Encoding does not end with chunked (RFC 9112 6.3)"),
        };
    }
    match cl {
        Ok(Some(n)) if n > 0 => FramingDecision {
            framing: Framing::Length(n),
            anomaly: None,
        },
        Ok(_) => FramingDecision {
            framing: Framing::None,
            anomaly: None,
        },
        Err(()) => FramingDecision {
            framing: Framing::None,
            anomaly: Some("request has an invalid Content-Length (RFC 9112 6.3 item 5)"),
        },
    }
}

/// Response body framing, RFC 9112 6.3.
pub(crate) fn response_framing(
    request_is_head: bool,
    request_is_connect: bool,
    status: u16,
    headers: &[Header],
) -> FramingDecision {
    // Item 1: HEAD, 1xx, 204, 304 have no body whatever the headers say.
    if request_is_head || (100..200).contains(&status) || status == 204 || status == 304 {
        return FramingDecision {
            framing: Framing::None,
            anomaly: None,
        };
    }
    // Item 2: a 2xx to CONNECT switches to a tunnel.
    if request_is_connect && (200..300).contains(&status) {
        return FramingDecision {
            framing: Framing::Tunnel,
            anomaly: None,
        };
    }
    let cl = content_length(headers);
    if let Some(codings) = transfer_codings(headers) {
        let anomaly = if cl != Ok(None) {
            Some("response has both Transfer-Encoding and Content-Length (RFC 9112 6.1)")
        } else {
            None
        };
        // Item 3: chunked last => chunked; otherwise read until close.
        let framing = if codings.last().map(String::as_str) == Some("chunked") {
            Framing::Chunked
        } else {
            Framing::ToClose
        };
        return FramingDecision { framing, anomaly };
    }
    match cl {
        Ok(Some(0)) => FramingDecision {
            framing: Framing::None,
            anomaly: None,
        },
        Ok(Some(n)) => FramingDecision {
            framing: Framing::Length(n),
            anomaly: None,
        },
        // Item 7: no length => read until close.
        Ok(None) => FramingDecision {
            framing: Framing::ToClose,
            anomaly: None,
        },
        // Item 5: invalid Content-Length is unrecoverable for a client; the best an observer
        // can do is read until close.
        Err(()) => FramingDecision {
            framing: Framing::ToClose,
            anomaly: Some("response has an invalid Content-Length (RFC 9112 6.3 item 5)"),
        },
    }
}

/// True when a comma-separated header (e.g. Connection) lists `token`.
pub(crate) fn header_has_token(headers: &[Header], name: &str, token: &str) -> bool {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(name))
        .flat_map(|h| h.value.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_line_forms() {
        let Check::Yes(l) = check_request_line(b"GET /a?b HTTP/1.1\r\n", false) else {
            panic!()
        };
        assert_eq!(
            (l.method, l.target, l.version, l.end),
            (0..3, 4..8, Some(1), 19)
        );
        // Bare LF and several spaces.
        let Check::Yes(l) = check_request_line(b"GET  /x  HTTP/1.0\n", false) else {
            panic!()
        };
        assert_eq!((l.target, l.version, l.end), (5..7, Some(0), 18));
        // HTTP/0.9 needs a known method.
        let Check::Yes(l) = check_request_line(b"GET /x\r\n", false) else {
            panic!()
        };
        assert_eq!(l.version, None);
        assert_eq!(check_request_line(b"FOO /x\r\n", false), Check::No);
        // Unknown methods are fine in sync, not when resynchronising.
        assert!(matches!(
            check_request_line(b"FOO /x HTTP/1.1\r\n", false),
            Check::Yes(_)
        ));
        assert_eq!(check_request_line(b"FOO /x HTTP/1.1\r\n", true), Check::No);
        // Partial lines.
        assert_eq!(check_request_line(b"GE", true), Check::Maybe);
        assert_eq!(check_request_line(b"GET /x HTT", false), Check::Maybe);
        assert_eq!(
            check_request_line(b"GET /x HTTP/1.1\r", false),
            Check::Maybe
        );
        assert_eq!(check_request_line(b"", false), Check::Maybe);
        // Not HTTP.
        assert_eq!(
            check_request_line(b"\x16\x03\x01\x02\x00", false),
            Check::No
        );
        assert_eq!(check_request_line(b"T / HTTP\r\n", false), Check::No);
        // Zeek http/methods.pcap oddities, accepted in sync but not when resynchronising.
        let Check::Yes(l) = check_request_line(b"OPTIONS HTTP/1.1\r\n", false) else {
            panic!()
        };
        assert_eq!((l.target.len(), l.version), (0, Some(1)));
        let Check::Yes(l) = check_request_line(b"GET / HTTP/1.\r\n", false) else {
            panic!()
        };
        assert_eq!((l.target, l.version), (4..5, Some(0)));
        assert_eq!(check_request_line(b"GET / HTTP/1.\r\n", true), Check::No);
        assert_eq!(check_request_line(b"GET/ HTTP/1.1\r\n", false), Check::No);
        assert_eq!(check_request_line(b"GET /x HTTP/2.0\r\n", false), Check::No);
        assert_eq!(check_request_line(b"XY", true), Check::No);
    }

    #[test]
    fn status_line_forms() {
        let Check::Yes(s) = check_status_line(b"HTTP/1.1 404 Not Found\r\n", 100) else {
            panic!()
        };
        assert_eq!((s.version, s.status, s.reason, s.end), (1, 404, 13..22, 24));
        let Check::Yes(s) = check_status_line(b"HTTP/1.0 200\n", 100) else {
            panic!()
        };
        assert_eq!((s.status, s.reason.len(), s.end), (200, 0, 13));
        assert_eq!(check_status_line(b"HTTP/1.1 20", 100), Check::Maybe);
        assert_eq!(check_status_line(b"HTTP/1.1 200 OK", 100), Check::Maybe);
        assert_eq!(check_status_line(b"HTTP/1.1 200 OK", 10), Check::No);
        assert_eq!(check_status_line(b"HTTP/1.1 2x0 OK\r\n", 100), Check::No);
        assert_eq!(check_status_line(b"<html>", 100), Check::No);
    }

    #[test]
    fn scan_finds_line_starts_only() {
        let buf = b"junk GET / HTTP/1.1\r\nmore\r\nGET /b HTTP/1.1\r\n";
        assert_eq!(
            scan_for_start(buf, true, StartKind::Request, 1000),
            Scan::Found(27)
        );
        assert_eq!(
            scan_for_start(b"GET /b HTTP/1.1\r\n", true, StartKind::Request, 1000),
            Scan::Found(0)
        );
        assert_eq!(
            scan_for_start(b"GET /b HTTP/1.1\r\n", false, StartKind::Request, 1000),
            Scan::NotFound
        );
        assert_eq!(
            scan_for_start(b"xx\nGET /lo", false, StartKind::Request, 1000),
            Scan::Partial(3)
        );
        assert_eq!(
            scan_for_start(
                b"body\r\nHTTP/1.1 200 OK\r\n",
                false,
                StartKind::Response,
                1000
            ),
            Scan::Found(6)
        );
        assert_eq!(
            scan_for_start(b"\n\n\n", false, StartKind::Response, 1000),
            Scan::NotFound
        );
        assert_eq!(
            scan_for_start(b"", true, StartKind::Response, 1000),
            Scan::NotFound
        );
    }

    #[test]
    fn head_end_with_crlf_and_lf() {
        assert_eq!(
            find_head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r\nrest", 0),
            Some(24)
        );
        assert_eq!(find_head_end(b"GET / HTTP/1.1\nA: b\n\nrest", 0), Some(21));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nA: b\r\n", 0), None);
    }

    #[test]
    fn header_block_is_lenient() {
        let (h, bad) = parse_header_block(b"Host: a\r\nX-Fold: one\r\n  two\r\nBad line\r\nName : v \r\nV: \xff\r\n\r\nIgnored: yes\r\n");
        assert_eq!(bad, 1);
        let pairs: Vec<(&str, &str)> = h
            .iter()
            .map(|h| (h.name.as_str(), h.value.as_str()))
            .collect();
        assert_eq!(
            pairs,
            vec![
                ("Host", "a"),
                ("X-Fold", "one two"),
                ("Name", "v"),
                ("V", "\\xff")
            ]
        );
    }

    #[test]
    fn chunk_size_lines() {
        assert_eq!(parse_chunk_size_line(b"1a"), Some(26));
        assert_eq!(parse_chunk_size_line(b"1A;name=value\r"), Some(26));
        assert_eq!(parse_chunk_size_line(b"  5 \r"), Some(5));
        assert_eq!(parse_chunk_size_line(b"\r"), None);
        assert_eq!(parse_chunk_size_line(b"zz\r"), None);
        // 2^64: 17 hex digits overflow (Zeek http/261 chunk_2pow64_overflow).
        assert_eq!(parse_chunk_size_line(b"10000000000000000\r"), None);
    }

    #[test]
    fn framing_rules() {
        let h = |pairs: &[(&str, &str)]| -> Vec<Header> {
            pairs
                .iter()
                .map(|(n, v)| Header {
                    name: n.to_string(),
                    value: v.to_string(),
                })
                .collect()
        };
        let cl = h(&[("Content-Length", "10")]);
        assert_eq!(
            response_framing(true, false, 200, &cl).framing,
            Framing::None
        );
        assert_eq!(
            response_framing(false, false, 304, &cl).framing,
            Framing::None
        );
        assert_eq!(
            response_framing(false, false, 204, &cl).framing,
            Framing::None
        );
        assert_eq!(
            response_framing(false, true, 200, &cl).framing,
            Framing::Tunnel
        );
        assert_eq!(
            response_framing(false, true, 407, &cl).framing,
            Framing::Length(10)
        );
        assert_eq!(
            response_framing(false, false, 200, &h(&[])).framing,
            Framing::ToClose
        );
        let te = h(&[
            ("Transfer-Encoding", "gzip, chunked"),
            ("Content-Length", "3"),
        ]);
        let d = response_framing(false, false, 200, &te);
        assert_eq!(d.framing, Framing::Chunked);
        assert!(d.anomaly.is_some());
        assert_eq!(
            response_framing(false, false, 200, &h(&[("Transfer-Encoding", "gzip")])).framing,
            Framing::ToClose
        );
        assert_eq!(
            response_framing(false, false, 200, &h(&[("Content-Length", "5, 5")])).framing,
            Framing::Length(5)
        );
        let bad = response_framing(false, false, 200, &h(&[("Content-Length", "5, 6")]));
        assert_eq!(
            (bad.framing, bad.anomaly.is_some()),
            (Framing::ToClose, true)
        );
        assert_eq!(request_framing(&h(&[])).framing, Framing::None);
        assert_eq!(request_framing(&cl).framing, Framing::Length(10));
        assert_eq!(
            request_framing(&h(&[("transfer-encoding", "Chunked")])).framing,
            Framing::Chunked
        );
    }
}
