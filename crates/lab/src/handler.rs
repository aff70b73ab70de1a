//! The lab's request handler: what each server kind answers ([`ServerCtx::answer`], whatever
//! HTTP version carried the request) and the HTTP/1.1 request loop on a plain or TLS stream.
//! `server.rs` starts the servers and picks plain, TLS, HTTP/2 or CONNECT per connection;
//! `http2.rs` and `connect.rs` call back into [`ServerCtx`].

use super::goproxy::{goget_answer, parse_proxy_target, proxy_answer, ModuleScope};
use super::http::{
    self, fetch_tls, read_request, write_response, HttpBase, Limits, ReadOutcome, Request, Response,
};
use super::log::{LogEntry, RequestLog};
use super::modules::ModuleStore;
use super::sumdb::SumDb;
use super::tamper::TamperPlan;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

pub(super) enum Handler {
    Proxy {
        store: Arc<ModuleStore>,
        prefix: String,
        authorization: Option<String>,
        /// Served under `<prefix>/sumdb/` too.
        sumdb: Option<Arc<SumDb>>,
        scope: ModuleScope,
    },
    SumDb {
        db: Arc<SumDb>,
    },
    Tamper {
        source: TamperSource,
        plan: TamperPlan,
    },
    Gone {
        status: u16,
    },
    Redirect {
        to_base: String,
        status: u16,
    },
    Mirror {
        upstream: HttpBase,
        authorization: String,
        tls: Option<Arc<rustls::ClientConfig>>,
    },
    GoGet {
        repo_root: String,
    },
    Connect {
        /// Ports a CONNECT may open on 127.0.0.1: the other servers of the lab.
        ports: Vec<u16>,
    },
}

/// Where a tampering server gets what it changes.
pub(super) enum TamperSource {
    Store(Arc<ModuleStore>),
    Upstream {
        base: HttpBase,
        tls: Option<Arc<rustls::ClientConfig>>,
    },
}

/// One server as its connection threads (and [`super::http2`], [`super::connect`]) see it.
pub(super) struct ServerCtx {
    pub(super) name: String,
    pub(super) listen: String,
    pub(super) handler: Handler,
    pub(super) log: RequestLog,
    pub(super) limits: Limits,
    pub(super) stop: Arc<AtomicBool>,
    pub(super) active: AtomicUsize,
    pub(super) tls: Option<Arc<rustls::ServerConfig>>,
    /// TLS offers `h2` (the configuration's ALPN list says so too).
    pub(super) http2: bool,
    pub(super) log_handshakes: bool,
}

/// Who ended a connection's request loop.
pub(super) enum Ended {
    /// The client closed, reset or went idle.
    Peer,
    /// The server answered with `Connection: close` (or could not write).
    Server,
}

/// The `tls.log` line of a finished handshake: version, suite, ALPN, SNI.
pub(super) fn handshake_note(name: &str, peer: &str, conn: &rustls::ServerConnection) -> String {
    format!(
        "tls {name}: from {peer}: {} {} alpn={} sni={}",
        conn.protocol_version()
            .map(|v| format!("{v:?}"))
            .unwrap_or_default(),
        conn.negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()))
            .unwrap_or_default(),
        conn.alpn_protocol()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .unwrap_or_else(|| "-".into()),
        conn.server_name().unwrap_or("-"),
    )
}

/// HTTP/1.1 on a TLS connection after its handshake.
pub(super) fn serve_tls_requests(
    tls: &mut rustls::StreamOwned<rustls::ServerConnection, TcpStream>,
    ctx: &ServerCtx,
) {
    if let Ended::Server = serve_requests(tls, ctx) {
        // RFC 8446 6.1: close_notify before closing the write side.
        tls.conn.send_close_notify();
        let _ = tls.conn.complete_io(&mut tls.sock);
    }
}

pub(super) fn serve_requests<S: Read + Write>(stream: &mut S, ctx: &ServerCtx) -> Ended {
    let mut buf = Vec::new();
    loop {
        let (req, resp, close) = match read_request(stream, &mut buf, &ctx.limits) {
            ReadOutcome::Closed => return Ended::Peer,
            ReadOutcome::Bad(status) => (
                None,
                Response::text(status, &format!("{}\n", http::reason(status))),
                true,
            ),
            ReadOutcome::Request(req) => {
                let resp = ctx.answer(&req);
                let close = !req.wants_keep_alive() || ctx.stop.load(Ordering::SeqCst);
                (Some(req), resp, close)
            }
        };
        let head_only = req.as_ref().is_some_and(|r| r.method == "HEAD");
        // Logged just before the response goes out, so the log is causal across servers: a
        // request caused by an answer (a fallback, a redirect hop, a mirror's upstream fetch
        // finishing before the mirror answers) is always logged after that answer.
        if let Some(req) = &req {
            ctx.log.record(LogEntry {
                server: ctx.name.clone(),
                listen: ctx.listen.clone(),
                method: req.method.clone(),
                target: req.target.clone(),
                status: resp.status,
                bytes: if head_only { 0 } else { resp.body.len() as u64 },
            });
        }
        let sent = write_response(stream, &resp, head_only, close);
        if close || sent.is_err() {
            return Ended::Server;
        }
    }
}

impl ServerCtx {
    pub(super) fn note(&self, text: &str) {
        if self.log_handshakes {
            eprintln!("{text}");
        }
    }

    /// The response to one request, whatever HTTP version carried it (the HTTP/1.1 loop
    /// below, [`super::http2`], or a non-CONNECT request to the connect proxy).
    pub(super) fn answer(&self, req: &Request) -> Response {
        if let Handler::Connect { .. } = self.handler {
            return connect_only();
        }
        if req.method != "GET" && req.method != "HEAD" {
            return Response::text(405, "only GET and HEAD\n").with_header("Allow", "GET, HEAD");
        }
        match &self.handler {
            Handler::Gone { status } => Response::text(
                *status,
                &format!(
                    "{}: this lab server answers {status} to everything\n",
                    http::reason(*status)
                ),
            ),
            Handler::Redirect { to_base, status } => {
                let location = format!("{to_base}{}", req.target);
                Response::text(*status, "").with_header("Location", &location)
            }
            Handler::Proxy {
                store,
                prefix,
                authorization,
                sumdb,
                scope,
            } => {
                if let Some(db) = sumdb {
                    let path = req.target.split('?').next().unwrap_or("");
                    if let Some(rest) = path
                        .strip_prefix(prefix.as_str())
                        .and_then(|p| p.strip_prefix("/sumdb/"))
                    {
                        return db.answer_under_proxy(rest);
                    }
                }
                if let Some(want) = authorization {
                    if req.header("authorization") != Some(want.as_bytes()) {
                        return Response::text(
                            401,
                            "401 Unauthorized: this lab proxy needs Basic auth\n",
                        )
                        .with_header("WWW-Authenticate", "Basic realm=\"modtrace-lab\"");
                    }
                }
                proxy_answer(store, prefix, scope, &req.target)
            }
            Handler::GoGet { repo_root } => goget_answer(req, repo_root),
            Handler::Connect { .. } => connect_only(),
            Handler::SumDb { db } => db.answer(&req.target),
            Handler::Tamper { source, plan } => {
                let resp = match source {
                    TamperSource::Store(store) => {
                        proxy_answer(store, "", &ModuleScope::All, &req.target)
                    }
                    TamperSource::Upstream { base, tls } => {
                        match fetch_tls(base, &req.target, &[], &self.limits, tls.as_ref()) {
                            Ok(up) => relayed(up),
                            Err(e) => {
                                return Response::text(
                                    502,
                                    &format!("lab tamper: upstream {}: {e}\n", base.addr),
                                )
                            }
                        }
                    }
                };
                match parse_proxy_target("", &req.target) {
                    Some(pr) => plan.apply(&pr, resp),
                    None => resp,
                }
            }
            Handler::Mirror {
                upstream,
                authorization,
                tls,
            } => {
                match fetch_tls(
                    upstream,
                    &req.target,
                    &[("Authorization", authorization)],
                    &self.limits,
                    tls.as_ref(),
                ) {
                    Ok(up) => relayed(up),
                    Err(e) => Response::text(
                        502,
                        &format!("lab mirror: upstream {}: {e}\n", upstream.addr),
                    ),
                }
            }
        }
    }
}

/// What the connect proxy answers to anything but CONNECT.
fn connect_only() -> Response {
    Response::text(405, "this lab server is a CONNECT proxy only\n").with_header("Allow", "CONNECT")
}

/// An upstream answer as a mirror relays it: status, body, Content-Type and Location.
fn relayed(up: http::UpstreamResponse) -> Response {
    let mut resp = Response {
        status: up.status,
        headers: Vec::new(),
        body: up.body,
    };
    for (n, v) in &up.headers {
        if n.eq_ignore_ascii_case("content-type") || n.eq_ignore_ascii_case("location") {
            resp.headers.push((n.clone(), v.clone()));
        }
    }
    resp
}
