//! The lab's CONNECT proxy (RFC 9110 9.3.6), plain HTTP: the tunnel a client with
//! `HTTPS_PROXY=http://127.0.0.1:PORT` asks for. It opens tunnels to lab servers only: the host
//! must be `lab.test` or a name under it, the port one of another server of the same lab, and
//! the connection always goes to 127.0.0.1 (the name is never resolved). So a capture on `lo`
//! shows both legs: client -> proxy (the CONNECT, then the TLS inside the tunnel) and proxy ->
//! server (the same TLS bytes).

use super::handler::ServerCtx;
use super::http::{read_request, write_response, ReadOutcome, Request, Response};
use super::log::LogEntry;
use super::tls::LAB_HOST;
use super::LAB_IP;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why a CONNECT target is refused (answered 403).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not `host:port` in authority form (RFC 9110 9.3.6), or an IP literal.
    Malformed,
    /// A host outside `lab.test`.
    Host(String),
    /// A port no other server of this lab listens on.
    Port(u16),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Malformed => write!(f, "the CONNECT target must be {LAB_HOST}:PORT"),
            Refusal::Host(h) => write!(
                f,
                "{h}: this lab proxy only tunnels to {LAB_HOST} and names under it"
            ),
            Refusal::Port(p) => write!(f, "port {p}: no other server of this lab listens there"),
        }
    }
}

/// Whether `host` (already lower case) is `lab.test` or a DNS name under it.
fn is_lab_host(host: &str) -> bool {
    let under = match host.strip_suffix(LAB_HOST) {
        Some("") => return true,
        Some(rest) => match rest.strip_suffix('.') {
            Some(labels) if !labels.is_empty() => labels,
            _ => return false,
        },
        None => return false,
    };
    // RFC 1123 labels: letters, digits, inner hyphens, 1 to 63 bytes.
    under.split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

/// The port a CONNECT to `authority` may open on 127.0.0.1, given the ports of the lab's other
/// servers.
pub fn connect_target(authority: &str, ports: &[u16]) -> Result<u16, Refusal> {
    let (host, port) = authority.rsplit_once(':').ok_or(Refusal::Malformed)?;
    if host.is_empty()
        || port.is_empty()
        || port.len() > 5
        || !port.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(Refusal::Malformed);
    }
    let port: u16 = port.parse().map_err(|_| Refusal::Malformed)?;
    if host.starts_with('[') || host.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err(Refusal::Malformed);
    }
    let host = host.to_ascii_lowercase();
    if !is_lab_host(&host) {
        return Err(Refusal::Host(host));
    }
    if port == 0 || !ports.contains(&port) {
        return Err(Refusal::Port(port));
    }
    Ok(port)
}

/// The connect proxy's side of one client connection: requests until a CONNECT succeeds, then
/// the tunnel until either side closes.
pub(super) fn serve_connect(mut client: TcpStream, ctx: &ServerCtx, ports: &[u16]) {
    let mut buf = Vec::new();
    loop {
        let req = match read_request(&mut client, &mut buf, &ctx.limits) {
            ReadOutcome::Closed => return,
            ReadOutcome::Bad(status) => {
                let resp = Response::text(status, &format!("{}\n", super::http::reason(status)));
                let _ = write_response(&mut client, &resp, false, true);
                return;
            }
            ReadOutcome::Request(r) => r,
        };
        let resp = if req.method != "CONNECT" {
            ctx.answer(&req)
        } else {
            match connect_target(&req.target, ports) {
                Err(why) => Response::text(403, &format!("403 Forbidden: {why}\n")),
                Ok(port) => {
                    let addr = SocketAddr::new(LAB_IP, port);
                    match TcpStream::connect_timeout(&addr, ctx.limits.upstream_timeout) {
                        Ok(upstream) => {
                            tunnel(client, upstream, &req, &buf, ctx);
                            return;
                        }
                        Err(e) => Response::text(502, &format!("lab connect: {addr}: {e}\n")),
                    }
                }
            }
        };
        let head_only = req.method == "HEAD";
        log(
            ctx,
            &req,
            resp.status,
            if head_only { 0 } else { resp.body.len() },
        );
        let close = !req.wants_keep_alive() || ctx.stop.load(Ordering::SeqCst);
        if write_response(&mut client, &resp, head_only, close).is_err() || close {
            return;
        }
    }
}

fn log(ctx: &ServerCtx, req: &Request, status: u16, bytes: usize) {
    ctx.log.record(LogEntry {
        server: ctx.name.clone(),
        listen: ctx.listen.clone(),
        method: req.method.clone(),
        target: req.target.clone(),
        status,
        bytes: bytes as u64,
    });
}

/// Answers 200 (logged first, like every lab answer) and relays. `early` holds bytes the client
/// sent after the CONNECT head without waiting for the answer.
fn tunnel(
    mut client: TcpStream,
    upstream: TcpStream,
    req: &Request,
    early: &[u8],
    ctx: &ServerCtx,
) {
    log(ctx, req, 200, 0);
    // RFC 9110 9.3.6: no Content-Length or Transfer-Encoding in a 2xx answer to CONNECT.
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .is_err()
    {
        return;
    }
    let mut up = upstream;
    if !early.is_empty() && up.write_all(early).is_err() {
        return;
    }
    relay(client, up, ctx.limits.idle_timeout);
}

/// Copies bytes both ways until both directions have ended. An end of stream is passed on as a
/// half-close (shutdown of the write side), an error or `idle` without traffic in either
/// direction ends both.
pub fn relay(client: TcpStream, upstream: TcpStream, idle: Duration) {
    let _ = upstream.set_nodelay(true);
    for s in [&client, &upstream] {
        // Reads wake up at least this often to check the shared idle clock.
        let _ = s.set_read_timeout(Some(idle.min(Duration::from_secs(1))));
        let _ = s.set_write_timeout(Some(idle));
    }
    let (Ok(client2), Ok(upstream2)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let start = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    let last2 = last.clone();
    let up_thread = std::thread::Builder::new()
        .name("lab-connect-relay".into())
        .spawn(move || pump(client2, upstream2, start, &last2, idle));
    pump(upstream, client, start, &last, idle);
    if let Ok(t) = up_thread {
        let _ = t.join();
    }
}

/// One direction of the tunnel. `last` is the time of the latest traffic in either direction
/// (ms since `start`), so a direction that is quiet while the other carries a download stays.
fn pump(mut from: TcpStream, mut to: TcpStream, start: Instant, last: &AtomicU64, idle: Duration) {
    let now = || u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match from.read(&mut chunk) {
            Ok(0) => {
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => {
                last.store(now(), Ordering::Relaxed);
                if to.write_all(chunk.get(..n).unwrap_or(&[])).is_err() {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) && now().saturating_sub(last.load(Ordering::Relaxed))
                    < u64::try_from(idle.as_millis()).unwrap_or(u64::MAX) => {}
            Err(_) => break,
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_targets_only_lab_hosts_and_lab_ports() {
        let ports = [8109, 8111];
        assert_eq!(connect_target("lab.test:8109", &ports), Ok(8109));
        assert_eq!(connect_target("LAB.Test:8111", &ports), Ok(8111));
        assert_eq!(connect_target("mirror.lab.test:8109", &ports), Ok(8109));
        assert_eq!(connect_target("a-1.b.lab.test:8109", &ports), Ok(8109));
        for other in [
            "example.test:8109",
            "evillab.test:8109",
            "lab.test.example:8109",
            "localhost:8109",
            ".lab.test:8109",
            "a..lab.test:8109",
            "-a.lab.test:8109",
            "a_b.lab.test:8109",
        ] {
            assert!(
                matches!(connect_target(other, &ports), Err(Refusal::Host(_))),
                "{other}"
            );
        }
        // Addresses are never accepted, loopback or not: the proxy picks the address itself.
        for addr in [
            "127.0.0.1:8109",
            "10.0.0.1:8109",
            "[::1]:8109",
            "lab.test",
            "lab.test:",
            ":8109",
            "lab.test:80a",
            "lab.test:999999",
            "lab.test:+8109",
            "user@lab.test:8109",
        ] {
            assert!(
                matches!(
                    connect_target(addr, &ports),
                    Err(Refusal::Malformed | Refusal::Host(_))
                ),
                "{addr}"
            );
        }
        assert_eq!(
            connect_target("lab.test:22", &ports),
            Err(Refusal::Port(22))
        );
        assert_eq!(connect_target("lab.test:0", &ports), Err(Refusal::Port(0)));
        assert_eq!(
            connect_target("lab.test:8109", &[]),
            Err(Refusal::Port(8109))
        );
    }

    /// Sends `head` on a fresh connection to `addr`; returns the status and what followed
    /// the response head (already read).
    fn ask(addr: SocketAddr, head: &str) -> (TcpStream, u16, String) {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(head.as_bytes()).unwrap();
        let mut got = Vec::new();
        let mut b = [0u8; 1];
        while !got.ends_with(b"\r\n\r\n") {
            assert_eq!(s.read(&mut b).unwrap(), 1, "answer ends early: {got:?}");
            got.push(b[0]);
        }
        let head = String::from_utf8(got).unwrap();
        let status = head[9..12].parse().unwrap();
        (s, status, head)
    }

    #[test]
    fn connect_proxy_tunnels_to_lab_servers_only_and_logs_each_connect() {
        use crate::{
            default_modules_dir, Lab, Limits, ModuleStore, RequestLog, ServerKind, ServerSpec,
        };
        let store = Arc::new(ModuleStore::load(&default_modules_dir()).unwrap());
        let log = RequestLog::in_memory();
        let spec = |name: &str, kind| ServerSpec {
            name: name.into(),
            addr: "127.0.0.1:0".parse().unwrap(),
            kind,
            tls: None,
        };
        let lab = Lab::start(
            &[
                spec(
                    "p",
                    ServerKind::Proxy {
                        prefix: String::new(),
                        auth: None,
                    },
                ),
                spec("c", ServerKind::Connect),
            ],
            store,
            log.clone(),
            Limits::default(),
        )
        .unwrap();
        let p = lab.server("p").unwrap().addr.port();
        let c = lab.server("c").unwrap().addr;

        let (mut tunnel, status, head) = ask(
            c,
            &format!("CONNECT lab.test:{p} HTTP/1.1\r\nHost: lab.test:{p}\r\n\r\n"),
        );
        assert_eq!(status, 200, "{head}");
        assert!(
            !head.to_ascii_lowercase().contains("content-length"),
            "{head}"
        );
        tunnel
            .write_all(
                b"GET /example.test/%21util/@v/v0.2.0.info HTTP/1.1\r\nHost: lab.test\r\nConnection: close\r\n\r\n",
            )
            .unwrap();
        let mut answer = String::new();
        tunnel.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        assert!(answer.contains("\"v0.2.0\""), "{answer}");

        let refused = [
            format!("127.0.0.1:{p}"),
            format!("example.test:{p}"),
            format!("lab.test:{}", c.port()), // itself
            "lab.test:1".to_string(),
        ];
        for target in &refused {
            let (_, status, head) = ask(
                c,
                &format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n"),
            );
            assert_eq!(status, 403, "{target}: {head}");
        }
        let (_, status, head) = ask(
            c,
            "GET http://lab.test/ HTTP/1.1\r\nHost: lab.test\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(status, 405, "{head}");
        assert!(head.contains("Allow: CONNECT"), "{head}");

        let mut entries = log.entries();
        entries.retain(|e| e.server == "c");
        let got: Vec<(String, String, u16)> = entries
            .into_iter()
            .map(|e| (e.method, e.target, e.status))
            .collect();
        let mut want = vec![("CONNECT".to_string(), format!("lab.test:{p}"), 200)];
        for t in &refused {
            want.push(("CONNECT".into(), t.clone(), 403));
        }
        want.push(("GET".into(), "http://lab.test/".into(), 405));
        assert_eq!(got, want);
        assert!(log
            .entries()
            .iter()
            .any(|e| e.server == "p" && e.target == "/example.test/%21util/@v/v0.2.0.info"));
    }

    #[test]
    fn relay_passes_bytes_both_ways_and_half_closes() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let server_addr = l.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).unwrap(); // ends at the client's half-close
            s.write_all(&got.iter().rev().copied().collect::<Vec<_>>())
                .unwrap();
        });
        let front = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let front_addr = front.local_addr().unwrap();
        let proxy = std::thread::spawn(move || {
            let (c, _) = front.accept().unwrap();
            let up = TcpStream::connect(server_addr).unwrap();
            relay(c, up, Duration::from_secs(5));
        });
        let mut c = TcpStream::connect(front_addr).unwrap();
        c.write_all(b"abc").unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let mut back = Vec::new();
        c.read_to_end(&mut back).unwrap();
        assert_eq!(back, b"cba");
        server.join().unwrap();
        proxy.join().unwrap();
    }
}
