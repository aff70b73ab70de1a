//! HTTP/2 (RFC 9113) over one reassembled connection, as a sans-I/O machine that emits the same
//! [`HttpEvent`](super::HttpEvent)s as HTTP/1 (one `Exchange` per stream), so later stages do
//! not care how a request travelled. Cleartext with prior knowledge (the client starts with
//! the connection preface) as-is; behind TLS the caller feeds the decrypted records.
//!
//! - `frame`: the frame header and payload layouts (pure).
//! - `hpack`: one direction's HPACK context (loona-hpack, which does not panic on hostile
//!   blocks) with the table-size bookkeeping of SETTINGS_HEADER_TABLE_SIZE.
//! - `message`: a decoded header block to a request or response head (RFC 9113 8.3; pure).
//! - `conn`: [`Http2Conn`], the per-connection machine: preface, frames, CONTINUATION, streams,
//!   bodies (gzip decoded by the HTTP/1 body sink), resets, GOAWAY, limits.
//!
//! In the emitted [`HttpRequest`](super::HttpRequest) and [`HttpResponse`](super::HttpResponse),
//! `version` is [`HTTP2_VERSION`] (2) for HTTP/2; for HTTP/1 it holds the minor version (0 or
//! 1), so 2 is never ambiguous.

// House style: no indexing, unwrap or unchecked arithmetic on wire data outside tests.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::arithmetic_side_effects
    )
)]

mod conn;
#[cfg(test)]
mod corpus_tests;
pub mod frame;
pub mod hpack;
mod message;
#[cfg(test)]
mod tests;

pub use conn::{Goaway, Http2Conn, Http2Stats, PeerSettings, HTTP2_VERSION};
pub use frame::PREFACE;

/// True when `data` starts with the client connection preface (or is a prefix of it), to pick
/// HTTP/2 for a flow from its first client bytes.
pub fn looks_like_preface(data: &[u8]) -> bool {
    !data.is_empty()
        && if data.len() >= PREFACE.len() {
            data.starts_with(PREFACE)
        } else {
            PREFACE.starts_with(data)
        }
}

/// Every HTTP/2 limit, with why. Hitting one emits an `HttpEvent::Anomaly` and truncates,
/// drops or stops; memory never grows past them. (Body limits are `HttpLimits`'.)
#[derive(Clone, Debug)]
pub struct Http2Limits {
    /// Streams with a request or response in progress tracked at once; further new streams are
    /// not followed. Go's server advertises 250 (x/net/http2 `defaultMaxStreams`), RFC 9113
    /// 6.5.2 recommends at least 100.
    pub max_streams: usize,
    /// Decoded header list kept per header block, counted as RFC 9113 6.5.2 does (name, value
    /// and 32 per field). Later fields are decoded (the HPACK table must follow the encoder) but
    /// dropped. Same size as HTTP/1's `max_head_bytes`; Go module traffic sends well under 4 KiB.
    pub max_header_list_size: usize,
    /// Encoded header block (HEADERS or PUSH_PROMISE plus its CONTINUATIONs) held until
    /// END_HEADERS: HPACK decodes whole blocks only. A larger block cannot be decoded, so the
    /// direction stops (the CONTINUATION flood of 2024, VU#421644, is this without a bound).
    pub max_header_block_bytes: usize,
    /// Largest frame payload accepted before the framing is taken for garbage (the direction
    /// stops). 2^24-1 is the most a 24-bit length can say and the ceiling of
    /// SETTINGS_MAX_FRAME_SIZE (RFC 9113 4.2); DATA and unknown frames are streamed, not held,
    /// so large frames cost no memory. Frames above the receiver's advertised
    /// SETTINGS_MAX_FRAME_SIZE are reported separately.
    pub max_frame_payload: u32,
    /// HPACK dynamic table size accepted per direction (size updates above it cannot be
    /// followed: the direction stops). Go and nghttp2 use 4096; browsers 65536.
    pub max_hpack_table_size: usize,
    /// Payload kept of a control frame (SETTINGS, GOAWAY debug data, ...); the rest is skipped.
    /// A SETTINGS frame holds at most a few dozen bytes in practice.
    pub max_control_payload: usize,
    /// SETTINGS frames awaiting their ACK remembered per direction (for the table size they
    /// set); endpoints have one or two outstanding.
    pub max_pending_settings: usize,
    /// Header lists and kept body bytes of all open streams of one connection together; a
    /// response that would go over keeps fewer body bytes, a request is not followed. Without it
    /// `max_streams` concurrent bodies could each hold `HttpLimits::max_body_kept`.
    pub max_held_bytes: usize,
}

impl Default for Http2Limits {
    fn default() -> Self {
        Http2Limits {
            max_streams: 256,
            max_header_list_size: 64 << 10,
            max_header_block_bytes: 256 << 10,
            max_frame_payload: frame::MAX_FRAME_SIZE_LIMIT,
            max_hpack_table_size: 64 << 10,
            max_control_payload: 16 << 10,
            max_pending_settings: 8,
            max_held_bytes: 8 << 20,
        }
    }
}
