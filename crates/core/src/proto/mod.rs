//! Application protocols over reassembled streams (HTTP/1.1) and datagrams (DNS). Sans-I/O:
//! each connection machine takes chunks and pushes what it learned; it owns no socket and no
//! clock.

pub mod dns;
pub mod http1;
pub mod http2;
pub mod tls;

use crate::flow::FlowId;
use crate::time::Ts;

/// Counts a connection machine's steps that consumed no input: a guard against a logic error
/// turning hostile input into an endless loop. More than `max` such steps in a row and the
/// machine must stop itself.
pub(crate) struct Stall {
    steps: u32,
    max: u32,
}

impl Stall {
    pub(crate) fn new(max: u32) -> Stall {
        Stall { steps: 0, max }
    }

    /// After a step that consumed `used` bytes: whether the machine is stuck.
    pub(crate) fn stuck(&mut self, used: usize) -> bool {
        if used == 0 {
            self.steps = self.steps.saturating_add(1);
            self.steps > self.max
        } else {
            self.steps = 0;
            false
        }
    }
}

/// A header as seen on the wire. Values that are not UTF-8 are kept with each invalid byte
/// written as `\xNN` (see [`escape_bytes`]), never lossily.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: String,
}

pub fn header<'h>(headers: &'h [Header], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

/// The content codings of a message, outermost last, lower-cased (RFC 9110 8.4), with
/// `identity` removed: HTTP/1 and HTTP/2 alike.
pub(crate) fn content_codings(headers: &[Header]) -> Vec<String> {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("content-encoding"))
        .flat_map(|h| h.value.split(','))
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty() && c != "identity")
        .collect()
}

/// UTF-8 text kept as is; every byte of an invalid sequence written as `\xNN`.
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: String,
    /// The request-target exactly as on the request line (origin-form `/a/b?c`, absolute-form
    /// `http://h/a` through a forward proxy, authority-form `h:443` for CONNECT).
    pub target: String,
    /// Minor version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub version: u8,
    pub headers: Vec<Header>,
    /// Time and number of the packet that carried the first byte of the request.
    pub ts: Ts,
    pub packet: u64,
    /// Body bytes as sent (after de-chunking).
    pub body_len: u64,
}

/// A message body. Only the first `HttpLimits::max_body_kept` decoded bytes are kept; `len`
/// counts them all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Body {
    /// Decoded bytes (chunked and gzip content-encoding removed), up to the keep limit.
    pub data: Vec<u8>,
    /// Decoded length.
    pub len: u64,
    /// Bytes on the wire (after de-chunking, before content decoding).
    pub wire_len: u64,
    /// The body ended as framed (Content-Length reached, last chunk, or close for
    /// read-to-close bodies) with no gap inside it.
    pub complete: bool,
    /// All decoded bytes are in `data` (none dropped by the keep limit).
    pub kept_all: bool,
    /// The content-encoding was gzip/deflate and could not be decoded (then `data` holds the
    /// raw bytes).
    pub decode_error: bool,
    /// Decoded bytes past `data` that were passed on as `HttpEvent::BodyOverflow` events
    /// (only with `HttpLimits::overflow_events`): `data` followed by them is the whole body.
    pub overflow: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub reason: String,
    pub version: u8,
    pub headers: Vec<Header>,
    /// Time and packet of the first byte of the status line.
    pub ts: Ts,
    pub packet: u64,
    /// Time and packet of the last byte of the body.
    pub end_ts: Ts,
    pub end_packet: u64,
    pub body: Body,
}

/// One request and its final (non-1xx) response, or an unanswered request (`response: None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpExchange {
    pub flow: FlowId,
    pub request: HttpRequest,
    pub response: Option<HttpResponse>,
}

// Exchanges dominate the stream and are moved once into the pipeline; boxing them would add an
// allocation per exchange for no gain.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpEvent {
    Exchange(HttpExchange),
    /// A CONNECT was answered 2xx: from here on the connection is a tunnel, not HTTP.
    TunnelOpened {
        flow: FlowId,
        authority: String,
        ts: Ts,
        packet: u64,
    },
    /// Bytes inside an open tunnel, passed through for a later layer (TLS).
    TunnelData {
        flow: FlowId,
        dir: crate::flow::Dir,
        ts: Ts,
        packet: u64,
        data: Vec<u8>,
    },
    /// Decoded response-body bytes past `HttpLimits::max_body_kept`, in order, for the
    /// response in progress on this flow (only with `HttpLimits::overflow_events`). The caller
    /// stores them (a temporary file) so that a large body is not held in memory; the
    /// `Exchange` that follows carries the count in `Body::overflow`.
    BodyOverflow {
        flow: FlowId,
        data: Vec<u8>,
    },
    /// Something that is not valid HTTP/1 where HTTP/1 was expected, or a limit hit.
    Anomaly {
        flow: FlowId,
        ts: Ts,
        what: String,
    },
}

/// Every HTTP/1 limit, with why.
#[derive(Clone, Debug)]
pub struct HttpLimits {
    /// Request/status line plus headers. Larger heads are an anomaly and stop parsing the
    /// connection (Go's net/http allows 1 MiB; real mirrors send a few KB).
    pub max_head_bytes: usize,
    /// Decoded body bytes kept per message, enough for list/.info/.mod bodies and go-get pages.
    /// Longer bodies are counted, not kept.
    pub max_body_kept: usize,
    /// Requests waiting for their response on one connection (pipelining).
    pub max_pending_requests: usize,
    /// gzip expansion allowed relative to the wire bytes before it counts as a compression bomb.
    pub max_gzip_ratio: u64,
    /// Pass response-body bytes past `max_body_kept` on as `HttpEvent::BodyOverflow` instead
    /// of dropping them (the analyzer spills them to a file to hash whole module zips).
    pub overflow_events: bool,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_head_bytes: 64 << 10,
            max_body_kept: 256 << 10,
            max_pending_requests: 64,
            max_gzip_ratio: 200,
            overflow_events: false,
        }
    }
}

/// The exchanges among `events` (test transcripts of HTTP/1 and HTTP/2 read them alike).
#[cfg(test)]
pub(crate) fn exchanges_of(events: &[HttpEvent]) -> Vec<&HttpExchange> {
    events
        .iter()
        .filter_map(|e| match e {
            HttpEvent::Exchange(x) => Some(x),
            _ => None,
        })
        .collect()
}

/// The anomaly texts among `events`.
#[cfg(test)]
pub(crate) fn anomalies_of(events: &[HttpEvent]) -> Vec<&str> {
    events
        .iter()
        .filter_map(|e| match e {
            HttpEvent::Anomaly { what, .. } => Some(what.as_str()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_codings_drop_identity_and_case() {
        let h = |v: &str| Header {
            name: "Content-Encoding".into(),
            value: v.into(),
        };
        assert_eq!(
            content_codings(&[h("GZIP, identity"), h("br")]),
            ["gzip", "br"]
        );
    }
}
