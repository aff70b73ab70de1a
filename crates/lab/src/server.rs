//! The lab's server kinds and how a set of them is started: every listener bound first (so
//! servers can name each other, e.g. two redirectors pointing at each other), then one accept
//! thread per server and one thread per connection. Any kind but `connect` can be served over
//! TLS ([`TlsServerOptions`]): the connection thread then runs the rustls handshake first. A TLS
//! server named in [`LabOptions::http2`] also offers HTTP/2 ([`super::http2`]).

use super::goproxy::ModuleScope;
use super::handler::{
    handshake_note, serve_requests, serve_tls_requests, Handler, ServerCtx, TamperSource,
};
use super::http::{HttpBase, Limits};
use super::log::RequestLog;
use super::modules::ModuleStore;
use super::sumdb::{LabSigner, SumDb};
use super::tamper::TamperPlan;
use super::tls::{KeyLogWriter, Pki, TlsServerOptions, UpstreamVerify, ALPN_H2, ALPN_HTTP11};
use super::{LabError, LAB_IP};
use base64::Engine;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Basic-auth credentials between a mirror and its upstream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl Credentials {
    /// The lab's fixed credentials: invented for the lab, safe to publish in captures.
    pub fn lab_default() -> Credentials {
        Credentials {
            user: "mirror".into(),
            password: "lab-secret-Zq7".into(),
        }
    }

    /// RFC 7617 2: `Basic base64(user ":" password)`.
    pub fn authorization(&self) -> String {
        let raw = format!("{}:{}", self.user, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// Where a redirector points or a mirror fetches from: another server of the same lab by
/// name, or a base URL (`http[s]://127.0.0.1:PORT[/prefix]`, loopback only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Server(String),
    Base(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerKind {
    /// A GOPROXY serving the module store under `prefix` (`""` or `/something`); with `auth`,
    /// every request without exactly that Basic authorization gets 401.
    Proxy {
        prefix: String,
        auth: Option<Credentials>,
    },
    /// A GOPROXY (no auth, no prefix) serving only the modules `scope` admits; 404 for the
    /// others, as a proxy that never heard of them.
    ScopedProxy { scope: ModuleScope },
    /// Answers `status` (410, 404 or 500) to everything.
    Gone { status: u16 },
    /// Answers `status` (302) with `Location: <target base><same request target>`.
    Redirect { to: Target, status: u16 },
    /// Fetches the same request target from `upstream` with Basic auth and relays status, body,
    /// Content-Type and Location. An https:// upstream's certificate is checked as `verify`
    /// says.
    Mirror {
        upstream: Target,
        credentials: Credentials,
        verify: UpstreamVerify,
    },
    /// Go's remote import path discovery: `GET /<path>?go-get=1` answers an HTML page with
    /// `<meta name="go-import" content="<Host header><path> mod <repo_root>">` (vcs `mod`: the
    /// repo root speaks the GOPROXY protocol); anything else 404.
    GoGet { repo_root: String },
    /// A GOPROXY like `Proxy` (no auth) that also serves the lab checksum database under
    /// `<prefix>/sumdb/<name>/` (`supported` answers 200): the go command, given a GOSUMDB key
    /// without a URL, asks each proxy for that before going to the database directly.
    ProxyWithSumdb { prefix: String },
    /// The lab checksum database at the root: `/lookup/<mod>@<ver>`, `/tile/...`, `/latest`
    /// (see [`super::sumdb`]).
    SumDb,
    /// A GOPROXY that changes what it serves as `plan` says ([`super::tamper`]): the lab
    /// modules, or with `upstream` whatever that GOPROXY answers (fetched without credentials,
    /// one connection per request, an https:// upstream verified against the lab CA).
    Tamper {
        upstream: Option<Target>,
        plan: TamperPlan,
    },
    /// A forward proxy for HTTPS (RFC 9110 9.3.6), plain HTTP: `CONNECT host:port` for
    /// `lab.test` or `*.lab.test` and the port of another server of the same lab opens a TCP
    /// connection to 127.0.0.1:port (never another address) and relays bytes both ways until
    /// either side closes ([`super::connect`]). Other targets 403, other methods 405.
    Connect,
}

impl ServerKind {
    pub fn label(&self) -> &'static str {
        match self {
            ServerKind::Proxy { auth: None, .. } => "proxy",
            ServerKind::Proxy { auth: Some(_), .. } => "proxy-auth",
            ServerKind::ScopedProxy {
                scope: ModuleScope::Except(_),
            } => "proxy-except",
            ServerKind::ScopedProxy { .. } => "proxy-only",
            ServerKind::Gone { .. } => "gone",
            ServerKind::Redirect { .. } => "redirect",
            ServerKind::Mirror {
                verify: UpstreamVerify::LabCa,
                ..
            } => "mirror",
            ServerKind::Mirror {
                verify: UpstreamVerify::Nothing,
                ..
            } => "mirror-noverify",
            ServerKind::GoGet { .. } => "goget",
            ServerKind::ProxyWithSumdb { .. } => "proxy-sumdb",
            ServerKind::SumDb => "sumdb",
            ServerKind::Tamper { .. } => "tamper",
            ServerKind::Connect => "connect",
        }
    }

    /// Whether it serves from the module store (the checksum database hashes the store too).
    pub fn needs_modules(&self) -> bool {
        matches!(
            self,
            ServerKind::Proxy { .. }
                | ServerKind::ScopedProxy { .. }
                | ServerKind::ProxyWithSumdb { .. }
                | ServerKind::SumDb
                | ServerKind::Tamper { upstream: None, .. }
        )
    }

    /// Whether it needs the lab checksum database.
    pub fn needs_sumdb(&self) -> bool {
        matches!(self, ServerKind::ProxyWithSumdb { .. } | ServerKind::SumDb)
    }

    /// The server it takes answers from or sends clients to, if any.
    pub fn target(&self) -> Option<&Target> {
        match self {
            ServerKind::Redirect { to, .. } => Some(to),
            ServerKind::Mirror { upstream, .. } => Some(upstream),
            ServerKind::Tamper {
                upstream: Some(u), ..
            } => Some(u),
            _ => None,
        }
    }

    /// The lab server it names as redirect target or upstream, if any.
    pub fn refers_to(&self) -> Option<&str> {
        match self.target() {
            Some(Target::Server(n)) => Some(n),
            _ => None,
        }
    }
}

/// One server to start. Port 0 picks an ephemeral port (tests).
#[derive(Clone, Debug)]
pub struct ServerSpec {
    pub name: String,
    pub addr: SocketAddr,
    pub kind: ServerKind,
    /// Served over TLS with these options; `None`: plain HTTP.
    pub tls: Option<TlsServerOptions>,
}

/// A running server as started.
#[derive(Clone, Debug)]
pub struct ServerInfo {
    pub name: String,
    pub addr: SocketAddr,
    /// `http[s]://127.0.0.1:PORT[/prefix]`: what GOPROXY or another server should name.
    pub base_url: String,
    pub kind: ServerKind,
    pub tls: Option<TlsServerOptions>,
}

/// What TLS servers and the mirror's TLS client share: the certificates and the key log.
#[derive(Clone)]
pub struct TlsContext {
    pub pki: Arc<Pki>,
    /// Where every TLS server and client of the lab writes its secrets (NSS key log).
    pub key_log: Option<Arc<KeyLogWriter>>,
    /// Print one line per TLS handshake (version, suite, ALPN, SNI) or handshake failure to
    /// standard error.
    pub log_handshakes: bool,
}

impl TlsContext {
    fn key_log_dyn(&self) -> Option<Arc<dyn rustls::KeyLog>> {
        self.key_log.clone().map(|k| k as Arc<dyn rustls::KeyLog>)
    }
}

/// Settings of a lab beyond its [`ServerSpec`]s (a separate struct, so that spec literals
/// written before these existed stay valid).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabOptions {
    /// Names of TLS servers that offer HTTP/2: ALPN `h2` before `http/1.1`. A client that
    /// picks `h2` (the go command does) is served by [`super::http2`], one that picks `http/1.1`
    /// or offers no ALPN by the HTTP/1.1 code, as on any other TLS server.
    pub http2: Vec<String>,
}

/// A started set of servers; stops them when dropped.
pub struct Lab {
    servers: Vec<ServerInfo>,
    sumdb: Option<Arc<SumDb>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Lab {
    /// Binds every spec, resolves the references between them, and starts serving. TLS
    /// servers (if any) get a fresh in-memory PKI and no key log: see [`Lab::start_with`].
    pub fn start(
        specs: &[ServerSpec],
        store: Arc<ModuleStore>,
        log: RequestLog,
        limits: Limits,
    ) -> Result<Lab, LabError> {
        Self::start_with(specs, store, log, limits, None)
    }

    /// [`Lab::start`] with the PKI and key log TLS servers and the mirror's TLS client use.
    pub fn start_with(
        specs: &[ServerSpec],
        store: Arc<ModuleStore>,
        log: RequestLog,
        limits: Limits,
        tls: Option<TlsContext>,
    ) -> Result<Lab, LabError> {
        Self::start_with_options(specs, store, log, limits, tls, &LabOptions::default())
    }

    /// [`Lab::start_with`] plus [`LabOptions`] (which TLS servers offer HTTP/2).
    pub fn start_with_options(
        specs: &[ServerSpec],
        store: Arc<ModuleStore>,
        log: RequestLog,
        limits: Limits,
        tls: Option<TlsContext>,
        options: &LabOptions,
    ) -> Result<Lab, LabError> {
        check_specs(specs, options)?;
        // Every listener first, so that servers can name each other (two redirectors pointing
        // at each other).
        let (listeners, infos) = bind_all(specs)?;
        let sumdb = if specs.iter().any(|s| s.kind.needs_sumdb()) {
            Some(Arc::new(SumDb::from_store(&store, LabSigner::lab())?))
        } else {
            None
        };
        let tls = match tls {
            Some(t) => Some(t),
            None if needs_tls(specs, &infos) => Some(TlsContext {
                pki: Arc::new(Pki::generate()?),
                key_log: None,
                log_handshakes: false,
            }),
            None => None,
        };
        let parts = Parts {
            store: &store,
            sumdb: &sumdb,
            tls: &tls,
            infos: &infos,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let log_handshakes = tls.as_ref().is_some_and(|t| t.log_handshakes);
        // Every server's handler and TLS configuration before any thread starts, so that an
        // error leaves nothing running.
        let mut ctxs = Vec::with_capacity(specs.len());
        for (s, info) in specs.iter().zip(&infos) {
            let http2 = options.http2.contains(&s.name);
            ctxs.push(Arc::new(ServerCtx {
                name: info.name.clone(),
                listen: info.addr.to_string(),
                handler: parts.handler_for(s)?,
                log: log.clone(),
                limits: limits.clone(),
                stop: stop.clone(),
                active: AtomicUsize::new(0),
                tls: parts.server_tls(s, http2)?,
                http2,
                log_handshakes,
            }));
        }
        let mut threads = Vec::with_capacity(specs.len());
        for (listener, ctx) in listeners.into_iter().zip(ctxs) {
            let name = format!("lab-{}", ctx.name);
            let t = std::thread::Builder::new()
                .name(name)
                .spawn(move || accept_loop(listener, ctx))
                .map_err(|e| LabError::Config(format!("spawn: {e}")))?;
            threads.push(t);
        }
        Ok(Lab {
            servers: infos,
            sumdb,
            stop,
            threads,
        })
    }

    pub fn servers(&self) -> &[ServerInfo] {
        &self.servers
    }

    pub fn server(&self, name: &str) -> Option<&ServerInfo> {
        self.servers.iter().find(|s| s.name == name)
    }

    /// The checksum database the `sumdb` and `proxy-sumdb` servers serve, if one runs.
    pub fn sumdb(&self) -> Option<&Arc<SumDb>> {
        self.sumdb.as_ref()
    }

    /// Stops accepting, wakes the accept loops, and waits for them. Connections in progress
    /// finish their current request and close.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for s in &self.servers {
            // A connection to ourselves wakes the blocking accept().
            let _ = TcpStream::connect_timeout(&s.addr, std::time::Duration::from_secs(1));
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Names used once, the connect proxy without TLS, loopback only, HTTP/2 only over TLS.
fn check_specs(specs: &[ServerSpec], options: &LabOptions) -> Result<(), LabError> {
    let mut names = std::collections::HashSet::new();
    for s in specs {
        if !names.insert(s.name.as_str()) {
            return Err(LabError::Config(format!(
                "server name {:?} used twice",
                s.name
            )));
        }
        if s.kind == ServerKind::Connect && s.tls.is_some() {
            return Err(LabError::Config(format!(
                "{}: the connect proxy speaks plain HTTP only",
                s.name
            )));
        }
        if s.addr.ip() != LAB_IP {
            return Err(LabError::Config(format!(
                "{}: the lab binds 127.0.0.1 only, not {}",
                s.name,
                s.addr.ip()
            )));
        }
    }
    for n in &options.http2 {
        match specs.iter().find(|s| &s.name == n) {
            Some(s) if s.tls.is_some() => {}
            Some(_) => {
                return Err(LabError::Config(format!(
                    "{n}: HTTP/2 is offered over TLS only (ALPN); give the server +tls"
                )))
            }
            None => return Err(LabError::Config(format!("http2: no server named {n:?}"))),
        }
    }
    Ok(())
}

/// Binds every spec's listener and says where each server is.
fn bind_all(specs: &[ServerSpec]) -> Result<(Vec<TcpListener>, Vec<ServerInfo>), LabError> {
    let mut listeners = Vec::with_capacity(specs.len());
    let mut infos: Vec<ServerInfo> = Vec::with_capacity(specs.len());
    for s in specs {
        let l = TcpListener::bind(s.addr).map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
                " (the port is taken: stop what listens there)"
            } else {
                ""
            };
            LabError::Bind {
                addr: s.addr,
                cause: format!("{e}{hint}"),
            }
        })?;
        let addr = l.local_addr().map_err(|e| LabError::Bind {
            addr: s.addr,
            cause: e.to_string(),
        })?;
        let prefix = match &s.kind {
            ServerKind::Proxy { prefix, .. } | ServerKind::ProxyWithSumdb { prefix } => {
                normalize_prefix(prefix)
            }
            _ => String::new(),
        };
        let scheme = if s.tls.is_some() { "https" } else { "http" };
        infos.push(ServerInfo {
            name: s.name.clone(),
            addr,
            base_url: format!("{scheme}://{addr}{prefix}"),
            kind: s.kind.clone(),
            tls: s.tls,
        });
        listeners.push(l);
    }
    Ok((listeners, infos))
}

/// A target's base URL: another server of this lab by name, or a base as given.
fn resolve(infos: &[ServerInfo], t: &Target) -> Result<String, LabError> {
    match t {
        Target::Server(n) => infos
            .iter()
            .find(|i| &i.name == n)
            .map(|i| i.base_url.clone())
            .ok_or_else(|| LabError::Config(format!("no server named {n:?}"))),
        Target::Base(b) => {
            HttpBase::parse(b).map_err(LabError::Config)?;
            Ok(b.trim_end_matches('/').to_string())
        }
    }
}

/// Whether any server speaks TLS or fetches from an https upstream (a redirector only points).
fn needs_tls(specs: &[ServerSpec], infos: &[ServerInfo]) -> bool {
    specs.iter().any(|s| {
        s.tls.is_some()
            || matches!(
                s.kind.target(),
                Some(upstream) if !matches!(s.kind, ServerKind::Redirect { .. })
                    && resolve(infos, upstream).is_ok_and(|b| b.starts_with("https://"))
            )
    })
}

/// What the servers of one lab share while their handlers are made.
struct Parts<'a> {
    store: &'a Arc<ModuleStore>,
    sumdb: &'a Option<Arc<SumDb>>,
    tls: &'a Option<TlsContext>,
    infos: &'a [ServerInfo],
}

impl Parts<'_> {
    /// The TLS configuration of a server given `+tls` (ALPN `h2` too when it offers HTTP/2).
    fn server_tls(
        &self,
        s: &ServerSpec,
        http2: bool,
    ) -> Result<Option<Arc<rustls::ServerConfig>>, LabError> {
        let alpn: &[&[u8]] = if http2 {
            &[ALPN_H2, ALPN_HTTP11]
        } else {
            &[ALPN_HTTP11]
        };
        Ok(match (&s.tls, self.tls) {
            (Some(opts), Some(t)) => {
                Some(t.pki.server_config_alpn(*opts, t.key_log_dyn(), alpn)?)
            }
            _ => None,
        })
    }

    /// The TLS client a server uses towards an https upstream.
    fn upstream_tls(
        &self,
        base: &HttpBase,
        verify: UpstreamVerify,
    ) -> Result<Option<Arc<rustls::ClientConfig>>, LabError> {
        Ok(match (self.tls, base.https) {
            (Some(t), true) => Some(t.pki.client_config(verify, t.key_log_dyn())?),
            _ => None,
        })
    }

    /// What a server of this kind answers.
    fn handler_for(&self, s: &ServerSpec) -> Result<Handler, LabError> {
        let store = self.store;
        Ok(match &s.kind {
            ServerKind::Proxy { prefix, auth } => Handler::Proxy {
                store: store.clone(),
                prefix: normalize_prefix(prefix),
                authorization: auth.as_ref().map(Credentials::authorization),
                sumdb: None,
                scope: ModuleScope::All,
            },
            ServerKind::ScopedProxy { scope } => Handler::Proxy {
                store: store.clone(),
                prefix: String::new(),
                authorization: None,
                sumdb: None,
                scope: scope.clone(),
            },
            ServerKind::ProxyWithSumdb { prefix } => Handler::Proxy {
                store: store.clone(),
                prefix: normalize_prefix(prefix),
                authorization: None,
                sumdb: self.sumdb.clone(),
                scope: ModuleScope::All,
            },
            ServerKind::SumDb => Handler::SumDb {
                db: self
                    .sumdb
                    .clone()
                    .ok_or_else(|| LabError::Config("no checksum database".into()))?,
            },
            ServerKind::Tamper { upstream, plan } => Handler::Tamper {
                source: match upstream {
                    None => TamperSource::Store(store.clone()),
                    Some(u) => {
                        let base =
                            HttpBase::parse(&resolve(self.infos, u)?).map_err(LabError::Config)?;
                        let tls = self.upstream_tls(&base, UpstreamVerify::LabCa)?;
                        TamperSource::Upstream { base, tls }
                    }
                },
                plan: plan.clone(),
            },
            ServerKind::Gone { status } => Handler::Gone { status: *status },
            ServerKind::Redirect { to, status } => Handler::Redirect {
                to_base: resolve(self.infos, to)?,
                status: *status,
            },
            ServerKind::Mirror {
                upstream,
                credentials,
                verify,
            } => {
                let upstream =
                    HttpBase::parse(&resolve(self.infos, upstream)?).map_err(LabError::Config)?;
                let tls = self.upstream_tls(&upstream, *verify)?;
                Handler::Mirror {
                    upstream,
                    authorization: credentials.authorization(),
                    tls,
                }
            }
            ServerKind::GoGet { repo_root } => {
                if !(repo_root.starts_with("http://") || repo_root.starts_with("https://"))
                    || repo_root.contains(['"', '<', '>', '&', ' '])
                {
                    return Err(LabError::Config(format!(
                        "{}: the go-get repo root must be an http:// or https:// URL, not \
                        {repo_root:?}",
                        s.name
                    )));
                }
                Handler::GoGet {
                    repo_root: repo_root.trim_end_matches('/').to_string(),
                }
            }
            ServerKind::Connect => Handler::Connect {
                ports: self
                    .infos
                    .iter()
                    .filter(|i| i.name != s.name)
                    .map(|i| i.addr.port())
                    .collect(),
            },
        })
    }
}

/// `""` or `/a/b` (leading slash, no trailing one).
fn normalize_prefix(p: &str) -> String {
    let p = p.trim_matches('/');
    if p.is_empty() {
        String::new()
    } else {
        format!("/{p}")
    }
}

fn accept_loop(listener: TcpListener, ctx: Arc<ServerCtx>) {
    for stream in listener.incoming() {
        if ctx.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        if ctx.active.load(Ordering::SeqCst) >= ctx.limits.max_connections {
            continue; // dropped: closes the connection
        }
        ctx.active.fetch_add(1, Ordering::SeqCst);
        let c = ctx.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("lab-{}-conn", ctx.name))
            .spawn(move || {
                serve_connection(stream, &c);
                c.active.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            ctx.active.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

fn serve_connection(stream: TcpStream, ctx: &Arc<ServerCtx>) {
    let _ = stream.set_read_timeout(Some(ctx.limits.idle_timeout));
    let _ = stream.set_write_timeout(Some(ctx.limits.idle_timeout));
    let _ = stream.set_nodelay(true);
    if let Handler::Connect { ports } = &ctx.handler {
        super::connect::serve_connect(stream, ctx, ports);
        return;
    }
    let Some(cfg) = &ctx.tls else {
        let mut stream = stream;
        serve_requests(&mut stream, ctx);
        return;
    };
    if ctx.http2 {
        // The handshake runs under tokio (the h2 crate is async); an http/1.1 client is
        // handed back to serve_tls_requests below.
        super::http2::serve_tls(stream, ctx, cfg.clone());
        return;
    }
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    let conn = match rustls::ServerConnection::new(cfg.clone()) {
        Ok(c) => c,
        Err(e) => {
            ctx.note(&format!("tls {}: from {peer}: {e}", ctx.name));
            return;
        }
    };
    let mut tls = rustls::StreamOwned::new(conn, stream);
    // The handshake is driven here rather than inside the first read, so its outcome (and a
    // client's refusal: an alert, or a close) can be reported.
    while tls.conn.is_handshaking() {
        match tls.conn.complete_io(&mut tls.sock) {
            Ok((0, 0)) => {
                ctx.note(&format!(
                    "tls {}: from {peer}: closed during the handshake",
                    ctx.name
                ));
                return;
            }
            Ok(_) => {}
            Err(e) => {
                ctx.note(&format!(
                    "tls {}: from {peer}: handshake failed: {e}",
                    ctx.name
                ));
                return;
            }
        }
    }
    ctx.note(&handshake_note(&ctx.name, &peer, &tls.conn));
    serve_tls_requests(&mut tls, ctx);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_authorization_matches_rfc7617_example() {
        // RFC 7617 2: Aladdin / open sesame.
        let c = Credentials {
            user: "Aladdin".into(),
            password: "open sesame".into(),
        };
        assert_eq!(c.authorization(), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    }

    #[test]
    fn refuses_non_loopback_and_duplicate_names() {
        let store = Arc::new(ModuleStore::default());
        let spec = |name: &str, ip: &str| ServerSpec {
            name: name.into(),
            addr: format!("{ip}:0").parse().unwrap(),
            kind: ServerKind::Gone { status: 410 },
            tls: None,
        };
        assert!(matches!(
            Lab::start(
                &[spec("a", "0.0.0.0")],
                store.clone(),
                RequestLog::in_memory(),
                Limits::default()
            ),
            Err(LabError::Config(_))
        ));
        assert!(matches!(
            Lab::start(
                &[spec("a", "127.0.0.1"), spec("a", "127.0.0.1")],
                store.clone(),
                RequestLog::in_memory(),
                Limits::default()
            ),
            Err(LabError::Config(_))
        ));
        let bad_ref = ServerSpec {
            name: "r".into(),
            addr: "127.0.0.1:0".parse().unwrap(),
            kind: ServerKind::Redirect {
                to: Target::Server("nobody".into()),
                status: 302,
            },
            tls: None,
        };
        assert!(Lab::start(
            &[bad_ref],
            store,
            RequestLog::in_memory(),
            Limits::default()
        )
        .is_err());
    }
}
