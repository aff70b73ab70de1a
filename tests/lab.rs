//! The lab servers in-process on 127.0.0.1 with ephemeral ports, checked with a plain std
//! TcpStream client. Needs no go, tcpdump or root.

use modtrace::lab::{
    scenario, Credentials, Lab, Limits, LogEntry, ModuleStore, RequestLog, ServerKind, ServerSpec,
    Target,
};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

fn store() -> Arc<ModuleStore> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("lab/modules");
    Arc::new(ModuleStore::load(&dir).expect("load lab/modules"))
}

fn spec(name: &str, kind: ServerKind) -> ServerSpec {
    ServerSpec {
        name: name.into(),
        addr: "127.0.0.1:0".parse().unwrap(),
        kind,
    }
}

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, n: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one Content-Length-framed response from a kept-alive connection.
fn read_resp(s: &mut TcpStream) -> Resp {
    let mut raw = Vec::new();
    let mut b = [0u8; 4096];
    loop {
        let mut h = [httparse::EMPTY_HEADER; 32];
        let mut r = httparse::Response::new(&mut h);
        if let httparse::Status::Complete(n) = r.parse(&raw).expect("response head") {
            let headers: Vec<(String, String)> = r
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_string(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect();
            let status = r.code.unwrap();
            let len: usize = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .map(|(_, v)| v.parse().unwrap())
                .expect("content-length");
            while raw.len() < n + len {
                let k = s.read(&mut b).unwrap();
                assert!(k > 0, "closed mid-body");
                raw.extend_from_slice(&b[..k]);
            }
            return Resp {
                status,
                headers,
                body: raw[n..n + len].to_vec(),
            };
        }
        let k = s.read(&mut b).unwrap();
        assert!(k > 0, "closed before the response head");
        raw.extend_from_slice(&b[..k]);
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

fn get_on(s: &mut TcpStream, target: &str, extra: &str) -> Resp {
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: lab\r\nUser-Agent: lab-test\r\n{extra}\r\n"
    )
    .unwrap();
    read_resp(s)
}

fn get(addr: SocketAddr, target: &str) -> Resp {
    get_on(&mut connect(addr), target, "")
}

/// Waits until the log has `n` entries (a server logs right before writing its response).
fn wait_entries(log: &RequestLog, n: usize) -> Vec<LogEntry> {
    for _ in 0..200 {
        let e = log.entries();
        if e.len() >= n {
            return e;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    log.entries()
}

#[test]
fn proxy_serves_escaped_upper_case_module_on_one_connection() {
    let log = RequestLog::in_memory();
    let lab = Lab::start(
        &[spec(
            "proxy",
            ServerKind::Proxy {
                prefix: String::new(),
                auth: None,
            },
        )],
        store(),
        log.clone(),
        Limits::default(),
    )
    .unwrap();
    let addr = lab.server("proxy").unwrap().addr;
    assert_eq!(addr.ip().to_string(), "127.0.0.1");
    let mut s = connect(addr);
    // The go command's wire form: `!` percent-escaped.
    let list = get_on(&mut s, "/example.test/%21util/@v/list", "");
    assert_eq!(list.status, 200);
    assert_eq!(list.body, b"v0.1.0\nv0.2.0\n");
    let info = get_on(&mut s, "/example.test/%21util/@v/v0.2.0.info", "");
    assert_eq!(info.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&info.body).unwrap();
    assert_eq!(v["Version"], "v0.2.0");
    assert!(v["Time"].is_string());
    let latest = get_on(&mut s, "/example.test/!util/@latest", "");
    assert_eq!(latest.body, info.body);
    let m = get_on(&mut s, "/example.test/%21hello/@v/v1.1.0.mod", "");
    assert_eq!(m.status, 200);
    assert!(String::from_utf8_lossy(&m.body).starts_with("module example.test/Hello\n"));
    let z = get_on(&mut s, "/example.test/%21hello/@v/v1.1.0.zip", "");
    assert_eq!(z.status, 200);
    assert_eq!(z.header("content-type"), Some("application/zip"));
    let mut ar = zip::ZipArchive::new(std::io::Cursor::new(z.body.clone())).expect("valid zip");
    let names: Vec<String> = (0..ar.len())
        .map(|i| ar.by_index(i).unwrap().name().to_string())
        .collect();
    assert!(!names.is_empty());
    for n in &names {
        assert!(
            n.starts_with("example.test/Hello@v1.1.0/"),
            "entry {n} lacks the module@version prefix"
        );
        assert!(!n.ends_with('/'), "directory entry {n}");
    }
    let mut gomod = String::new();
    ar.by_name("example.test/Hello@v1.1.0/go.mod")
        .unwrap()
        .read_to_string(&mut gomod)
        .unwrap();
    assert_eq!(
        gomod.as_bytes(),
        m.body.as_slice(),
        "zip go.mod and .mod agree"
    );
    // Unknown module, unknown version, unescaped upper case: 404.
    assert_eq!(
        get_on(&mut s, "/example.test/%21nope/@v/list", "").status,
        404
    );
    assert_eq!(
        get_on(&mut s, "/example.test/%21util/@v/v9.9.9.info", "").status,
        404
    );
    assert_eq!(get_on(&mut s, "/example.test/Util/@v/list", "").status, 404);
    drop(s);

    let entries = wait_entries(&log, 8);
    assert_eq!(entries.len(), 8);
    assert_eq!(
        entries[0].target, "/example.test/%21util/@v/list",
        "target logged exactly as on the request line"
    );
    assert_eq!(entries[4].bytes, z.body.len() as u64);
    assert_eq!(entries[4].target, "/example.test/%21hello/@v/v1.1.0.zip");
    assert!(entries
        .iter()
        .all(|e| e.server == "proxy" && e.listen == addr.to_string() && e.method == "GET"));
    assert_eq!(
        entries.iter().map(|e| e.status).collect::<Vec<_>>(),
        vec![200, 200, 200, 200, 200, 404, 404, 404]
    );
}

#[test]
fn zip_is_identical_across_loads() {
    let a = store();
    let b = store();
    for (m, v) in a.all() {
        assert_eq!(
            a.get(m, v).unwrap().zip,
            b.get(m, v).unwrap().zip,
            "{m}@{v}"
        );
    }
    assert!(a.get("example.test/Util", "v0.2.0").is_some());
    assert!(a.get("example.test/Hello", "v1.1.0").is_some());
}

#[test]
fn proxy_with_prefix_serves_only_under_it() {
    let log = RequestLog::in_memory();
    let lab = Lab::start(
        &[spec(
            "p",
            ServerKind::Proxy {
                prefix: "/mod/".into(),
                auth: None,
            },
        )],
        store(),
        log,
        Limits::default(),
    )
    .unwrap();
    let p = lab.server("p").unwrap();
    assert!(p.base_url.ends_with("/mod"), "{}", p.base_url);
    assert_eq!(
        get(p.addr, "/mod/example.test/%21util/@v/v0.2.0.mod").status,
        200
    );
    assert_eq!(
        get(p.addr, "/example.test/%21util/@v/v0.2.0.mod").status,
        404
    );
}

#[test]
fn gone_answers_410_or_404_to_everything() {
    let log = RequestLog::in_memory();
    let lab = Lab::start(
        &[
            spec("gone", ServerKind::Gone { status: 410 }),
            spec("nf", ServerKind::Gone { status: 404 }),
        ],
        store(),
        log.clone(),
        Limits::default(),
    )
    .unwrap();
    let gone = lab.server("gone").unwrap().addr;
    let mut s = connect(gone);
    assert_eq!(
        get_on(&mut s, "/example.test/%21util/@v/v0.2.0.info", "").status,
        410
    );
    assert_eq!(
        get_on(&mut s, "/anything", "").status,
        410,
        "keep-alive: second request on the same connection"
    );
    assert_eq!(get(lab.server("nf").unwrap().addr, "/x").status, 404);
    let e = wait_entries(&log, 3);
    assert_eq!(
        e.iter()
            .filter(|x| x.server == "gone" && x.status == 410)
            .count(),
        2
    );
    assert_eq!(
        e.iter()
            .filter(|x| x.server == "nf" && x.status == 404)
            .count(),
        1
    );
}

#[test]
fn redirect_pair_loops_on_the_same_path() {
    let log = RequestLog::in_memory();
    let lab = Lab::start(
        &[
            spec(
                "a",
                ServerKind::Redirect {
                    to: Target::Server("b".into()),
                    status: 302,
                },
            ),
            spec(
                "b",
                ServerKind::Redirect {
                    to: Target::Server("a".into()),
                    status: 302,
                },
            ),
        ],
        store(),
        log.clone(),
        Limits::default(),
    )
    .unwrap();
    let a = lab.server("a").unwrap().clone();
    let b = lab.server("b").unwrap().clone();
    let path = "/example.test/%21util/@v/v0.2.0.info";
    // Follow like a client would, 10 times, and see it alternate between the two bases.
    let mut url = format!("{}{path}", a.base_url);
    let mut seen = Vec::new();
    for _ in 0..10 {
        let rest = url.strip_prefix("http://").unwrap();
        let (host, target) = rest.split_at(rest.find('/').unwrap());
        let r = get(host.parse().unwrap(), target);
        assert_eq!(r.status, 302);
        seen.push(host.to_string());
        url = r.header("location").expect("Location").to_string();
    }
    assert_eq!(
        url,
        format!("{}{path}", a.base_url),
        "after an even number of hops the next one is a again"
    );
    assert_eq!(seen[0], a.addr.to_string());
    assert_eq!(seen[1], b.addr.to_string());
    assert_eq!(seen[2], a.addr.to_string());
    let e = wait_entries(&log, 10);
    assert_eq!(e.len(), 10);
    assert!(e.iter().all(|x| x.status == 302 && x.target == path));
}

#[test]
fn mirror_relays_with_basic_auth_and_upstream_refuses_without() {
    let log = RequestLog::in_memory();
    let creds = Credentials::lab_default();
    let lab = Lab::start(
        &[
            spec(
                "mirror",
                ServerKind::Mirror {
                    upstream: Target::Server("upstream".into()),
                    credentials: creds.clone(),
                },
            ),
            spec(
                "upstream",
                ServerKind::Proxy {
                    prefix: String::new(),
                    auth: Some(creds.clone()),
                },
            ),
        ],
        store(),
        log.clone(),
        Limits::default(),
    )
    .unwrap();
    let mirror = lab.server("mirror").unwrap().addr;
    let upstream = lab.server("upstream").unwrap().addr;

    // Without credentials the upstream refuses.
    let refused = get(upstream, "/example.test/%21util/@v/v0.2.0.info");
    assert_eq!(refused.status, 401);
    assert!(refused
        .header("www-authenticate")
        .unwrap()
        .starts_with("Basic"));
    let wrong = get_on(
        &mut connect(upstream),
        "/example.test/%21util/@v/v0.2.0.info",
        "Authorization: Basic bWlycm9yOndyb25n\r\n",
    );
    assert_eq!(wrong.status, 401);
    // With them it serves.
    let ok = get_on(
        &mut connect(upstream),
        "/example.test/%21util/@v/v0.2.0.info",
        &format!("Authorization: {}\r\n", creds.authorization()),
    );
    assert_eq!(ok.status, 200);

    // Through the mirror (no credentials from the client): relayed 200, same body; 404 relayed.
    let mut s = connect(mirror);
    let via = get_on(&mut s, "/example.test/%21util/@v/v0.2.0.info", "");
    assert_eq!(via.status, 200);
    assert_eq!(via.body, ok.body);
    let zip = get_on(&mut s, "/example.test/%21util/@v/v0.2.0.zip", "");
    assert_eq!(zip.status, 200);
    assert_eq!(zip.header("content-type"), Some("application/zip"));
    assert_eq!(
        zip.body,
        store().get("example.test/Util", "v0.2.0").unwrap().zip
    );
    assert_eq!(
        get_on(&mut s, "/example.test/%21nope/@v/list", "").status,
        404
    );

    let e = wait_entries(&log, 9);
    let by = |srv: &str| {
        e.iter()
            .filter(|x| x.server == srv)
            .map(|x| (x.target.clone(), x.status))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        by("mirror"),
        vec![
            ("/example.test/%21util/@v/v0.2.0.info".to_string(), 200),
            ("/example.test/%21util/@v/v0.2.0.zip".to_string(), 200),
            ("/example.test/%21nope/@v/list".to_string(), 404)
        ]
    );
    // Upstream: 401, 401, 200 from the direct requests, then the mirror's three, authorized.
    assert_eq!(
        by("upstream").iter().map(|x| x.1).collect::<Vec<_>>(),
        vec![401, 401, 200, 200, 200, 404]
    );
}

#[test]
fn mirror_reports_502_when_upstream_is_down() {
    // Bind and drop a listener to get a port where nothing listens.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let log = RequestLog::in_memory();
    let lab = Lab::start(
        &[spec(
            "m",
            ServerKind::Mirror {
                upstream: Target::Base(format!("http://{dead}")),
                credentials: Credentials::lab_default(),
            },
        )],
        store(),
        log,
        Limits::default(),
    )
    .unwrap();
    assert_eq!(get(lab.server("m").unwrap().addr, "/x/@v/list").status, 502);
}

#[test]
fn every_scenario_starts_on_ephemeral_ports_and_answers() {
    for sc in scenario::SCENARIOS {
        let log = RequestLog::in_memory();
        let lab = Lab::start(&sc.specs(true), store(), log.clone(), Limits::default())
            .unwrap_or_else(|e| panic!("{}: {e}", sc.name));
        let first = lab.server(sc.goproxy[0]).unwrap().addr;
        let r = get(first, "/example.test/%21util/@v/v0.2.0.info");
        let want = match sc.name {
            "redirect-loop" => 302,
            "fallback-410" | "fallback-410-any" => 410,
            _ => 200,
        };
        assert_eq!(r.status, want, "{}", sc.name);
        assert!(!wait_entries(&log, 1).is_empty(), "{}: logged", sc.name);
    }
}

#[test]
fn lab_stops_and_frees_its_ports() {
    let log = RequestLog::in_memory();
    let mut lab = Lab::start(
        &[spec("g", ServerKind::Gone { status: 410 })],
        store(),
        log,
        Limits::default(),
    )
    .unwrap();
    let addr = lab.server("g").unwrap().addr;
    lab.stop();
    // The listener is closed: a new one can bind the same port.
    std::net::TcpListener::bind(addr).expect("port free after stop");
}
