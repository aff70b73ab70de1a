//! The layer stack inside one TCP flow, each layer hosting its child (as mitmproxy's layers
//! do): plain HTTP/1, DNS over TCP, or TLS; inside TLS, once a key log opens it, HTTP/1 or
//! HTTP/2; a CONNECT tunnel of an HTTP/1 proxy hosts a TLS session of its own. `mod.rs` wires
//! the stages and turns what the layers read into exchanges.

use super::Config;
use crate::flow::{Dir, FlowId, FlowInfo};
use crate::proto::dns::DnsTcpConn;
use crate::proto::http1::{looks_like_request, Http1Conn};
use crate::proto::http2::Http2Conn;
use crate::proto::tls::keylog::KeyLog;
use crate::proto::tls::{looks_like_tls_client, TlsConn, TlsEvent};
use crate::proto::{HttpEvent, HttpLimits};
use crate::time::Ts;
use std::net::SocketAddr;

/// Per-flow application state, chosen from the first bytes.
pub(super) enum Conn {
    Unknown,
    Http(Box<Http1Conn>),
    DnsTcp(Box<DnsTcpConn>),
    Tls(Box<SecureConn>),
    /// Not a protocol modtrace parses (yet): bytes are counted only.
    Opaque,
}

pub(super) struct FlowCtx {
    pub(super) info: FlowInfo,
    pub(super) conn: Conn,
    pub(super) process: Option<String>,
    /// The HTTP/1 connection became a CONNECT tunnel.
    pub(super) tunnel: Option<Box<Tunnel>>,
    /// Which side ended the connection first (FIN or RST): true for the server. A client
    /// that closes a connection it did not need has not seen it fail.
    pub(super) ended_by_server: Option<bool>,
}

impl FlowCtx {
    /// A TLS session of this flow waits for its secrets (live key log).
    pub(super) fn waits_for_keys(&self) -> bool {
        let direct = match &self.conn {
            Conn::Tls(sc) => sc.tls.waits_for_keys(),
            _ => false,
        };
        direct
            || self
                .tunnel
                .as_ref()
                .and_then(|t| t.secure.as_ref())
                .is_some_and(|sc| sc.tls.waits_for_keys())
    }
}

/// A TLS session and, once a key log opens it, the protocol inside.
pub(super) struct SecureConn {
    pub(super) tls: TlsConn,
    /// Time and packet of the server's Certificate message (validation time).
    pub(super) cert_at: Option<(Ts, u64)>,
    pub(super) app: AppConn,
    /// Another flow carried the same session first (same client random: both legs of a
    /// tunnel, or a TCP relay): this copy is not analysed again.
    pub(super) duplicate_of: Option<FlowId>,
}

/// The protocol in decrypted application data: HTTP/2 when the client starts with the
/// connection preface (RFC 9113 3.4), HTTP/1.1 when it starts with a request.
pub(super) enum AppConn {
    Undecided,
    H1(Box<Http1Conn>),
    H2(Box<Http2Conn>),
    Other,
}

/// RFC 9113 3.4: the client connection preface.
pub(super) const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// An open CONNECT tunnel (RFC 9110 9.3.6) through a forward proxy.
pub(super) struct Tunnel {
    /// The CONNECT authority, `host:port`.
    pub(super) authority: String,
    /// The TLS session inside; `None` before the client's first bytes or when they are not
    /// TLS (`opaque`).
    pub(super) secure: Option<Box<SecureConn>>,
    pub(super) opaque: bool,
    /// Where the proxy's outbound leg went, when the capture shows that leg (it carries the
    /// same TLS session).
    pub(super) outbound: Option<SocketAddr>,
}

/// Where an HTTP exchange was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Layer {
    /// Plain HTTP on the TCP flow.
    Plain,
    /// Decrypted TLS on the TCP flow.
    Tls,
    /// Decrypted TLS inside the flow's CONNECT tunnel.
    Tunnel,
}

impl SecureConn {
    pub(super) fn new(flow: FlowId, wait_for_keys: bool) -> SecureConn {
        let limits = crate::proto::tls::TlsLimits {
            wait_for_keys,
            ..Default::default()
        };
        SecureConn {
            tls: TlsConn::with_limits(flow, limits),
            cert_at: None,
            app: AppConn::Undecided,
            duplicate_of: None,
        }
    }

    /// Stream bytes of one direction; returns the client random when the ClientHello went by.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_data(
        &mut self,
        keys: Option<&KeyLog>,
        dir: Dir,
        ts: Ts,
        packet: u64,
        data: &[u8],
        limits: &HttpLimits,
        tls_events: &mut Vec<TlsEvent>,
        he: &mut Vec<HttpEvent>,
    ) -> Option<Vec<u8>> {
        tls_events.clear();
        self.tls
            .on_data_keyed(dir, ts, packet, data, keys, tls_events);
        self.on_tls_events(limits, tls_events, he)
    }

    /// The key log grew: a session waiting for its secrets decrypts what it kept.
    pub(super) fn retry_keys(
        &mut self,
        keys: &KeyLog,
        last: bool,
        limits: &HttpLimits,
        tls_events: &mut Vec<TlsEvent>,
        he: &mut Vec<HttpEvent>,
    ) {
        tls_events.clear();
        self.tls.retry_keys(keys, last, tls_events);
        self.on_tls_events(limits, tls_events, he);
    }

    pub(super) fn on_tls_events(
        &mut self,
        limits: &HttpLimits,
        tls_events: &mut Vec<TlsEvent>,
        he: &mut Vec<HttpEvent>,
    ) -> Option<Vec<u8>> {
        let mut random = None;
        for ev in tls_events.drain(..) {
            match ev {
                TlsEvent::ClientHello { hello, .. } => random = Some(hello.random),
                TlsEvent::Certificates {
                    dir: Dir::ToClient,
                    ts,
                    packet,
                    ..
                } => {
                    self.cert_at.get_or_insert((ts, packet));
                }
                TlsEvent::Plaintext {
                    dir,
                    ts,
                    packet,
                    data,
                    ..
                } => self.on_plaintext(dir, ts, packet, &data, limits, he),
                TlsEvent::PlaintextGap { dir, ts, .. } => self.on_app_gap(dir, ts, he),
                _ => {}
            }
        }
        random
    }

    pub(super) fn on_plaintext(
        &mut self,
        dir: Dir,
        ts: Ts,
        packet: u64,
        data: &[u8],
        limits: &HttpLimits,
        he: &mut Vec<HttpEvent>,
    ) {
        if let AppConn::Undecided = self.app {
            let flow = self.tls.flow();
            let s = self.tls.session();
            let alpn_h2 = s.decryption.alpn_selected.as_deref() == Some("h2")
                || s.server_hello.as_ref().and_then(|h| h.alpn.as_deref()) == Some("h2");
            let preface = data.starts_with(H2_PREFACE) || H2_PREFACE.starts_with(data);
            self.app = if dir == Dir::ToServer && preface {
                AppConn::H2(Box::new(Http2Conn::new(flow, limits.clone())))
            } else if (dir == Dir::ToServer && looks_like_request(data))
                || (dir == Dir::ToClient && data.starts_with(b"HTTP/1."))
            {
                AppConn::H1(Box::new(Http1Conn::new(flow, limits.clone())))
            } else if alpn_h2 {
                AppConn::H2(Box::new(Http2Conn::new(flow, limits.clone())))
            } else {
                AppConn::Other
            };
        }
        match &mut self.app {
            AppConn::H1(h) => h.on_data(dir, ts, packet, data, he),
            AppConn::H2(h) => h.on_data(dir, ts, packet, data, he),
            AppConn::Undecided | AppConn::Other => {}
        }
    }

    /// Decryption of a direction stopped: the plaintext lost bytes (how many is unknown).
    pub(super) fn on_app_gap(&mut self, dir: Dir, ts: Ts, he: &mut Vec<HttpEvent>) {
        match &mut self.app {
            AppConn::H1(h) => h.on_gap(dir, ts, 1, he),
            AppConn::H2(h) => h.on_gap(dir, ts, 1, he),
            AppConn::Undecided | AppConn::Other => {}
        }
    }

    pub(super) fn on_gap(&mut self, dir: Dir, ts: Ts, len: u64, he: &mut Vec<HttpEvent>) {
        let decrypting = self.tls.session().decryption.active();
        self.tls.on_gap(dir, len);
        if decrypting {
            self.on_app_gap(dir, ts, he);
        }
    }

    pub(super) fn on_end(
        &mut self,
        dir: Dir,
        ts: Ts,
        packet: u64,
        reset: bool,
        tls_events: &mut Vec<TlsEvent>,
        he: &mut Vec<HttpEvent>,
    ) {
        tls_events.clear();
        self.tls.on_end(dir, ts, packet, reset, tls_events);
        match &mut self.app {
            AppConn::H1(h) => h.on_end(dir, ts, packet, he),
            AppConn::H2(h) => h.on_end(dir, ts, packet, he),
            AppConn::Undecided | AppConn::Other => {}
        }
    }

    pub(super) fn finish(&mut self, ts: Ts, he: &mut Vec<HttpEvent>) {
        match &mut self.app {
            AppConn::H1(h) => h.finish(ts, he),
            AppConn::H2(h) => h.finish(ts, he),
            AppConn::Undecided | AppConn::Other => {}
        }
    }
}

pub(super) fn pick_protocol(
    info: &FlowInfo,
    dir: Dir,
    data: &[u8],
    cfg: &Config,
    flow: FlowId,
) -> Conn {
    let limits = &cfg.http;
    if info.server.port() == 53 || info.client.port() == 53 {
        return Conn::DnsTcp(Box::default());
    }
    if dir == Dir::ToServer && looks_like_tls_client(data).is_some() {
        return Conn::Tls(Box::new(SecureConn::new(flow, cfg.wait_for_keys)));
    }
    let http = match dir {
        Dir::ToServer => looks_like_request(data),
        // Picked up midstream with the server talking first.
        Dir::ToClient => data.starts_with(b"HTTP/1."),
    };
    if http {
        Conn::Http(Box::new(Http1Conn::new(flow, limits.clone())))
    } else {
        Conn::Opaque
    }
}
