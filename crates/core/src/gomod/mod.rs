//! Go proxy and checksum-database semantics: classify exchanges, decode module paths, follow
//! redirect chains and group the attempts of each module@version into a journey.

pub mod classify;
pub mod goenv;
pub mod h1;
pub mod integrity;
pub mod journey;
pub mod note;
pub mod path;
pub mod pattern;
pub mod sumdb;
pub mod tlog;

pub use classify::{classify, Classified, Op};
pub use journey::{Chain, Hop, HopLink, Journey, TrackOutcome, Tracker};

use crate::flow::FlowId;
use crate::time::Ts;
use serde::Serialize;
use std::net::SocketAddr;

/// What replaces a secret, in a [`Credential`]'s debug output and in redacted URLs and texts
/// (`crate::redact`).
pub const MASK: &str = "***";

/// A credential seen on the wire. Reports show its scheme and user only; the secret is kept
/// in fields that are never serialised (and hidden from `Debug`), for the text report's
/// `--show-secrets`.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct Credential {
    /// `Basic`, `Bearer`, ... or `userinfo` for credentials in the URL, or the name of the
    /// first secret query parameter (`token`, `X-Amz-Signature`, ...).
    pub scheme: String,
    /// The user name when the scheme carries one (Basic, URL userinfo).
    pub user: Option<String>,
    /// Header or place it was found: `authorization`, `proxy-authorization`, `url` (userinfo),
    /// `query`.
    pub source: String,
    /// The secret as sent: the header's value, the URL's `user:password`, or the secret query
    /// parameters (`token=abc&sig=def`). Text output with `--show-secrets` only.
    #[serde(skip)]
    pub secret: Option<String>,
    /// The exchange's URL as sent, when redaction changed it (userinfo password or secret query
    /// parameters). Text output with `--show-secrets` only.
    #[serde(skip)]
    pub raw_url: Option<String>,
}

impl std::fmt::Debug for Credential {
    // Debug output ends up in logs and test failures: never the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mask = |o: &Option<String>| o.as_ref().map(|_| MASK);
        f.debug_struct("Credential")
            .field("scheme", &self.scheme)
            .field("user", &self.user)
            .field("source", &self.source)
            .field("secret", &mask(&self.secret))
            .field("raw_url", &mask(&self.raw_url))
            .finish()
    }
}

/// One HTTP request and its response (or none), annotated with its Go meaning. This is the
/// unit of the event stream that reports and the TUI consume; field names are the JSON report's
/// (docs/report.md).
#[derive(Clone, Debug, Serialize)]
pub struct Exchange {
    /// Sequential in order of completion, from 1; findings refer to exchanges by it.
    pub id: u64,
    pub method: String,
    /// Absolute URL as requested on the wire, secrets redacted (userinfo password, token-like
    /// query parameters: `crate::redact::url`); for CONNECT the authority `host:port`, for
    /// `OPTIONS *` (asterisk-form) the target `*`.
    pub url: String,
    pub status: Option<u16>,
    #[serde(serialize_with = "ser_addr")]
    pub client: SocketAddr,
    #[serde(serialize_with = "ser_addr")]
    pub server: SocketAddr,
    /// Name of the server from DNS answers in the capture, when there were any.
    pub server_name: Option<String>,
    /// The Host header.
    pub host: Option<String>,
    pub scheme: String,
    pub op: Op,
    pub module: Option<String>,
    pub version: Option<String>,
    /// Response body bytes on the wire (after de-chunking).
    pub bytes: u64,
    /// Location header of a 3xx, resolved against the request URL, secrets redacted.
    pub location: Option<String>,
    #[serde(serialize_with = "ser_ts")]
    pub start: Ts,
    pub duration_ms: Option<f64>,
    pub flow: FlowId,
    /// Number of the packet that carried the first byte of the request.
    pub packet: u64,
    /// GOPROXY base or checksum-database URL the request was made against.
    pub base: String,
    pub credential: Option<Credential>,
    /// The exchange whose redirect led to this request.
    pub redirect_from: Option<u64>,
    /// The forward proxy the request went through (CONNECT tunnel), "ip:port".
    pub via: Option<String>,
    /// The response body ended as framed, with nothing missing.
    pub complete: bool,
    /// h1: hash of the body, for a whole .zip or .mod answered 200 (the go.sum value).
    pub h1: Option<String>,
    /// SHA-256 of the (decoded) body of a whole module file answered 200, hex.
    pub sha256: Option<String>,
    /// The local process that owned the connection (live capture on Linux), e.g. `go`; null
    /// when unknown (always, for files).
    pub process: Option<String>,
    #[serde(skip)]
    pub end: Ts,
    /// Request and response headers as sent, secrets redacted ([`crate::redact`]): for the
    /// TUI's detail view (not in the JSON report).
    #[serde(skip)]
    pub request_headers: Vec<crate::proto::Header>,
    #[serde(skip)]
    pub response_headers: Vec<crate::proto::Header>,
    /// `HTTP/1.1`, `HTTP/2`.
    #[serde(skip)]
    pub http_version: &'static str,
}

/// `module@version`, or the module alone when the version is unknown (a list or `@latest`
/// request): how every report and screen names a module.
pub fn module_label(module: &str, version: Option<&str>) -> String {
    match version {
        Some(v) => format!("{module}@{v}"),
        None => module.to_string(),
    }
}

/// The module an exchange (or finding) is about, if any: [`module_label`].
pub fn label_of(module: &Option<String>, version: &Option<String>) -> Option<String> {
    module
        .as_deref()
        .map(|m| module_label(m, version.as_deref()))
}

pub fn ser_addr<S: serde::Serializer>(a: &SocketAddr, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(a)
}

pub fn ser_ts<S: serde::Serializer>(t: &Ts, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.rfc3339())
}
