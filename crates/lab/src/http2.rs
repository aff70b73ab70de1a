//! HTTP/2 on the lab's TLS servers that offer it (ALPN `h2` before `http/1.1`, RFC 9113 3.2):
//! the h2 crate on a small tokio runtime owned by the connection's thread. The handshake runs
//! under tokio-rustls with the server's own configuration (same certificate, same key log); a
//! client that picks `http/1.1` (or no ALPN) is handed back, with the rustls session, to the
//! blocking HTTP/1.1 loop every other server uses. Each HTTP/2 request is answered by the same
//! code as an HTTP/1.1 one and logged the same way: target = `:path`, just before the
//! response HEADERS go out.

use super::handler::{handshake_note, serve_tls_requests, ServerCtx};
use super::http::{Request, Response};
use super::log::LogEntry;
use super::tls::ALPN_H2;
use bytes::Bytes;
use std::io;
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};

/// Streams a client may have open at once on one connection: the go command fetches a few
/// in parallel; RFC 9113 6.5.2 advises not to go below 100.
pub const MAX_CONCURRENT_STREAMS: u32 = 100;
/// Answers computed at once per connection (each on a blocking thread, since a mirror's may
/// wait on its upstream); more streams queue. Bounds the threads one client can make the lab
/// spawn, whatever MAX_CONCURRENT_STREAMS allows.
pub const MAX_BLOCKING_ANSWERS: usize = 4;

/// One TLS connection of a server that offers h2: handshake, then HTTP/2 or HTTP/1.1 by ALPN.
pub(super) fn serve_tls(stream: TcpStream, ctx: &Arc<ServerCtx>, cfg: Arc<rustls::ServerConfig>) {
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .max_blocking_threads(MAX_BLOCKING_ANSWERS)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            ctx.note(&format!("tls {}: from {peer}: no runtime: {e}", ctx.name));
            return;
        }
    };
    let idle = ctx.limits.idle_timeout;
    let handshake = rt.block_on(async {
        stream.set_nonblocking(true)?;
        let tcp = tokio::net::TcpStream::from_std(stream)?;
        let accept = tokio_rustls::TlsAcceptor::from(cfg).accept(tcp);
        match tokio::time::timeout(idle, accept).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "timed out")),
        }
    });
    let tls = match handshake {
        Ok(t) => t,
        // The words of the blocking path, so tls.log reads the same for both.
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            ctx.note(&format!(
                "tls {}: from {peer}: closed during the handshake",
                ctx.name
            ));
            return;
        }
        Err(e) => {
            ctx.note(&format!(
                "tls {}: from {peer}: handshake failed: {e}",
                ctx.name
            ));
            return;
        }
    };
    ctx.note(&handshake_note(&ctx.name, &peer, tls.get_ref().1));
    if tls.get_ref().1.alpn_protocol() == Some(ALPN_H2) {
        rt.block_on(serve_h2(tls, ctx.clone(), peer));
        return;
    }
    // HTTP/1.1: back to blocking IO. rustls holds whatever it already read off the socket,
    // so no byte is lost on the way.
    let (tcp, conn) = tls.into_inner();
    let std_tcp = {
        let _in_runtime = rt.enter();
        tcp.into_std()
    };
    let Ok(std_tcp) = std_tcp else { return };
    if std_tcp.set_nonblocking(false).is_err() {
        return;
    }
    let _ = std_tcp.set_read_timeout(Some(idle));
    let _ = std_tcp.set_write_timeout(Some(idle));
    let mut tls = rustls::StreamOwned::new(conn, std_tcp);
    serve_tls_requests(&mut tls, ctx);
}

/// HTTP/2 on an established connection until the client closes it, goes idle past the lab's
/// idle timeout, or the lab stops (then GOAWAY, and streams in flight get the same time to
/// finish).
async fn serve_h2<T>(io: T, ctx: Arc<ServerCtx>, peer: String)
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let idle = ctx.limits.idle_timeout;
    let handshake = h2::server::Builder::new()
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .max_header_list_size(u32::try_from(ctx.limits.max_request_head).unwrap_or(u32::MAX))
        .handshake::<_, Bytes>(io);
    let mut conn = match tokio::time::timeout(idle, handshake).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            ctx.note(&format!("h2 {}: from {peer}: preface: {e}", ctx.name));
            return;
        }
        Err(_) => return,
    };
    loop {
        match tokio::time::timeout(idle, conn.accept()).await {
            Ok(Some(Ok((req, respond)))) => {
                tokio::spawn(answer_stream(req, respond, ctx.clone()));
            }
            Ok(Some(Err(e))) => {
                if !e.is_io() {
                    ctx.note(&format!("h2 {}: from {peer}: {e}", ctx.name));
                }
                return;
            }
            Ok(None) => return,
            Err(_) => break,
        }
        if ctx.stop.load(Ordering::SeqCst) {
            break;
        }
    }
    conn.graceful_shutdown();
    let _ = tokio::time::timeout(idle, async {
        while let Some(Ok(_)) = conn.accept().await {}
    })
    .await;
}

/// The lab's view of an HTTP/2 request: target = `:path` as sent (`:authority` for a
/// CONNECT), `:authority` first among the headers as `host` (RFC 9113 8.3.1: it plays the
/// Host header's part).
pub fn lab_request(parts: &http::request::Parts) -> Request {
    let target = match parts.uri.path_and_query() {
        Some(p) if parts.method != http::Method::CONNECT => p.as_str().to_string(),
        _ => parts
            .uri
            .authority()
            .map(|a| a.as_str().to_string())
            .unwrap_or_default(),
    };
    let mut headers = Vec::with_capacity(parts.headers.len() + 1);
    if let Some(a) = parts.uri.authority() {
        headers.push(("host".to_string(), a.as_str().as_bytes().to_vec()));
    }
    for (n, v) in &parts.headers {
        headers.push((n.as_str().to_string(), v.as_bytes().to_vec()));
    }
    Request {
        method: parts.method.as_str().to_string(),
        target,
        minor: 1,
        headers,
    }
}

/// The response HEADERS of a lab answer (names lower-cased by `http`, as HTTP/2 requires)
/// with its Content-Length.
fn response_head(resp: &Response) -> Result<http::Response<()>, http::Error> {
    let mut b = http::Response::builder().status(resp.status);
    for (n, v) in &resp.headers {
        b = b.header(n.as_str(), v.as_str());
    }
    b.header(http::header::CONTENT_LENGTH, resp.body.len())
        .body(())
}

async fn answer_stream(
    req: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    ctx: Arc<ServerCtx>,
) {
    let (parts, mut body) = req.into_parts();
    let lab_req = lab_request(&parts);
    // GOPROXY requests carry no body; one is read (bounded) and dropped, its window returned.
    let mut received = 0usize;
    let mut too_large = false;
    while let Some(chunk) = body.data().await {
        let Ok(chunk) = chunk else { return };
        received = received.saturating_add(chunk.len());
        let _ = body.flow_control().release_capacity(chunk.len());
        if received > ctx.limits.max_request_body {
            too_large = true;
            break;
        }
    }
    let resp = if too_large {
        Response::text(413, "413 Content Too Large\n")
    } else {
        // The answer may block (a mirror's upstream fetch): off the runtime's thread, so
        // other streams of the connection go on.
        let (c, r) = (ctx.clone(), lab_req.clone());
        tokio::task::spawn_blocking(move || c.answer(&r))
            .await
            .unwrap_or_else(|_| Response::text(500, "500 lab handler failed\n"))
    };
    let (resp, head) = match response_head(&resp) {
        Ok(h) => (resp, h),
        Err(_) => {
            let r = Response::text(500, "500 unsendable response head\n");
            match response_head(&r) {
                Ok(h) => (r, h),
                Err(_) => return,
            }
        }
    };
    let head_only = lab_req.method == "HEAD";
    ctx.log.record(LogEntry {
        server: ctx.name.clone(),
        listen: ctx.listen.clone(),
        method: lab_req.method.clone(),
        target: lab_req.target.clone(),
        status: resp.status,
        bytes: if head_only { 0 } else { resp.body.len() as u64 },
    });
    let end = head_only || resp.body.is_empty();
    let Ok(mut send) = respond.send_response(head, end) else {
        return;
    };
    if !end {
        send_body(&mut send, Bytes::from(resp.body)).await;
    }
}

/// DATA frames as flow control allows (RFC 9113 5.2); the last one ends the stream.
async fn send_body(send: &mut h2::SendStream<Bytes>, mut body: Bytes) {
    while !body.is_empty() {
        send.reserve_capacity(body.len());
        match std::future::poll_fn(|cx| send.poll_capacity(cx)).await {
            Some(Ok(0)) => tokio::task::yield_now().await,
            Some(Ok(n)) => {
                let chunk = body.split_to(n.min(body.len()));
                if send.send_data(chunk, body.is_empty()).is_err() {
                    return;
                }
            }
            Some(Err(_)) | None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        default_modules_dir, CertKind, KeyLogWriter, Lab, LabOptions, Limits, ModuleStore, Pki,
        RequestLog, ServerKind, ServerSpec, TlsContext, TlsServerOptions, TlsVersions,
        UpstreamVerify,
    };
    use rustls::pki_types::ServerName;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// A lab with one TLS 1.3 proxy `p` offering h2, its PKI and key log.
    fn h2_lab(log: &RequestLog) -> (Lab, Arc<Pki>, Arc<KeyLogWriter>) {
        let pki = Arc::new(Pki::generate().unwrap());
        let keys = KeyLogWriter::in_memory();
        let store = Arc::new(ModuleStore::load(&default_modules_dir()).unwrap());
        let spec = ServerSpec {
            name: "p".into(),
            addr: "127.0.0.1:0".parse().unwrap(),
            kind: ServerKind::Proxy {
                prefix: String::new(),
                auth: None,
            },
            tls: Some(TlsServerOptions {
                cert: CertKind::Valid,
                versions: TlsVersions::Tls13,
            }),
        };
        let lab = Lab::start_with_options(
            &[spec],
            store,
            log.clone(),
            Limits::default(),
            Some(TlsContext {
                pki: pki.clone(),
                key_log: Some(keys.clone()),
                log_handshakes: false,
            }),
            &LabOptions {
                http2: vec!["p".into()],
            },
        )
        .unwrap();
        (lab, pki, keys)
    }

    async fn read_body(mut body: h2::RecvStream) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.unwrap();
            out.extend_from_slice(&chunk);
            body.flow_control().release_capacity(chunk.len()).unwrap();
        }
        out
    }

    #[test]
    fn h2_requests_are_answered_and_logged_like_http1() {
        let log = RequestLog::in_memory();
        let (lab, pki, keys) = h2_lab(&log);
        let addr = lab.server("p").unwrap().addr;
        let mut cfg = (*pki.client_config(UpstreamVerify::LabCa, None).unwrap()).clone();
        cfg.alpn_protocols = vec![ALPN_H2.to_vec(), b"http/1.1".to_vec()];
        let store = ModuleStore::load(&default_modules_dir()).unwrap();
        let zip = store
            .get("example.test/Util", "v0.2.0")
            .unwrap()
            .zip
            .clone();
        let info = "/example.test/%21util/@v/v0.2.0.info";
        let zip_path = "/example.test/%21util/@v/v0.2.0.zip";
        let answers = runtime().block_on(async {
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            let name = ServerName::try_from("lab.test").unwrap();
            let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
                .connect(name, tcp)
                .await
                .unwrap();
            assert_eq!(tls.get_ref().1.alpn_protocol(), Some(ALPN_H2));
            let (client, conn) = h2::client::handshake(tls).await.unwrap();
            tokio::spawn(async move {
                let _ = conn.await;
            });
            let mut answers = Vec::new();
            // Two at once (as go fetches zips), then a 404 and a HEAD.
            let mut pending = Vec::new();
            for path in [info, zip_path, "/example.test/%21nope/@v/list"] {
                let req = http::Request::get(format!("https://lab.test:{}{path}", addr.port()))
                    .body(())
                    .unwrap();
                let (resp, _) = client.clone().send_request(req, true).unwrap();
                pending.push(resp);
            }
            let head = http::Request::head(format!("https://lab.test{info}"))
                .body(())
                .unwrap();
            pending.push(client.clone().send_request(head, true).unwrap().0);
            for resp in pending {
                let resp = resp.await.unwrap();
                let status = resp.status().as_u16();
                let len = resp
                    .headers()
                    .get("content-length")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<usize>().ok());
                let body = read_body(resp.into_body()).await;
                answers.push((status, len, body));
            }
            answers
        });
        assert_eq!(answers[0].0, 200);
        assert!(String::from_utf8_lossy(&answers[0].2).contains("\"v0.2.0\""));
        assert_eq!(answers[1], (200, Some(zip.len()), zip.clone()));
        assert_eq!(answers[2].0, 404);
        assert_eq!(answers[3].0, 200);
        assert_eq!(
            answers[3].1,
            Some(answers[0].2.len()),
            "HEAD says the length"
        );
        assert!(answers[3].2.is_empty(), "HEAD has no body");

        let mut entries = log.entries();
        entries.sort_by(|a, b| (&a.method, &a.target).cmp(&(&b.method, &b.target)));
        let listen = addr.to_string();
        let got: Vec<(&str, &str, &str, u16, u64)> = entries
            .iter()
            .map(|e| {
                assert_eq!(e.listen, listen);
                (
                    e.server.as_str(),
                    e.method.as_str(),
                    e.target.as_str(),
                    e.status,
                    e.bytes,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "p",
                    "GET",
                    "/example.test/%21nope/@v/list",
                    404,
                    answers[2].2.len() as u64
                ),
                ("p", "GET", info, 200, answers[0].2.len() as u64),
                ("p", "GET", zip_path, 200, zip.len() as u64),
                ("p", "HEAD", info, 200, 0),
            ]
        );
        // TLS 1.3: five secrets for the one session.
        assert_eq!(keys.count(), 5, "{:?}", keys.lines());
    }

    #[test]
    fn an_http1_client_of_an_h2_server_gets_http1() {
        let log = RequestLog::in_memory();
        let (lab, pki, _) = h2_lab(&log);
        let base = crate::http::HttpBase::parse(&lab.server("p").unwrap().base_url).unwrap();
        // The mirror's client offers http/1.1 only.
        let client = pki.client_config(UpstreamVerify::LabCa, None).unwrap();
        let target = "/example.test/%21hello/@v/v1.1.0.mod";
        let r =
            crate::http::fetch_tls(&base, target, &[], &Limits::default(), Some(&client)).unwrap();
        assert_eq!(r.status, 200);
        assert!(String::from_utf8_lossy(&r.body).contains("module example.test/Hello"));
        let e = log.entries();
        assert_eq!(e.len(), 1);
        assert_eq!(
            (e[0].method.as_str(), e[0].target.as_str()),
            ("GET", target)
        );
    }

    #[test]
    fn send_body_follows_flow_control() {
        let body = Bytes::from((0..200_000u32).map(|i| i as u8).collect::<Vec<u8>>());
        let want = body.clone();
        let got = runtime().block_on(async move {
            let (server_io, client_io) = tokio::io::duplex(4096);
            tokio::spawn(async move {
                let mut conn = h2::server::handshake(server_io).await.unwrap();
                let (_req, mut respond) = conn.accept().await.unwrap().unwrap();
                let mut send = respond
                    .send_response(http::Response::new(()), false)
                    .unwrap();
                tokio::spawn(async move { send_body(&mut send, body).await });
                while let Some(Ok(_)) = conn.accept().await {}
            });
            // A 1000-byte stream window: the body needs many WINDOW_UPDATEs.
            let (client, conn) = h2::client::Builder::new()
                .initial_window_size(1000)
                .handshake::<_, Bytes>(client_io)
                .await
                .unwrap();
            tokio::spawn(async move {
                let _ = conn.await;
            });
            let req = http::Request::get("https://lab.test/x").body(()).unwrap();
            let resp = client
                .clone()
                .send_request(req, true)
                .unwrap()
                .0
                .await
                .unwrap();
            read_body(resp.into_body()).await
        });
        assert_eq!(got.len(), want.len());
        assert!(got == want, "bytes differ");
    }

    #[test]
    fn lab_request_takes_path_and_authority() {
        let req = http::Request::get("https://lab.test:8109/example.test/%21util/@v/list?x=1")
            .header("user-agent", "Go-http-client/2.0")
            .body(())
            .unwrap();
        let (parts, ()) = req.into_parts();
        let r = lab_request(&parts);
        assert_eq!(r.method, "GET");
        assert_eq!(r.target, "/example.test/%21util/@v/list?x=1");
        assert_eq!(r.header("host"), Some(&b"lab.test:8109"[..]));
        assert_eq!(r.header("User-Agent"), Some(&b"Go-http-client/2.0"[..]));
    }
}
