//! The lab servers in-process on 127.0.0.1 with ephemeral ports, checked with a plain std
//! TcpStream client. Needs no go, tcpdump or root.

use modtrace::lab::{
    scenario, CertKind, Credentials, KeyLogWriter, Lab, LabSigner, Limits, LogEntry, ModuleStore,
    Pki, RequestLog, ServerKind, ServerSpec, TamperPlan, Target, TlsContext, TlsServerOptions,
    TlsVersions, UpstreamVerify,
};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
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
        tls: None,
    }
}

fn tls_spec(name: &str, kind: ServerKind, versions: TlsVersions, cert: CertKind) -> ServerSpec {
    ServerSpec {
        tls: Some(TlsServerOptions { cert, versions }),
        ..spec(name, kind)
    }
}

fn proxy_kind() -> ServerKind {
    ServerKind::Proxy {
        prefix: String::new(),
        auth: None,
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
fn read_resp<S: Read>(s: &mut S) -> Resp {
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

fn get_on<S: Read + Write>(s: &mut S, target: &str, extra: &str) -> Resp {
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
                    verify: UpstreamVerify::LabCa,
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
    assert_eq!(lab.server("mirror").unwrap().kind.label(), "mirror");

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
                verify: UpstreamVerify::LabCa,
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
        // The server go talks to first: the first GOPROXY entry, or (direct mode) the first
        // server, the go-get one.
        let first = lab
            .server(sc.goproxy[0])
            .unwrap_or_else(|| &lab.servers()[0]);
        let (target, want) = match sc.name {
            "redirect-loop" => ("/example.test/%21util/@v/v0.2.0.info", 302),
            "fallback-410" | "fallback-410-any" => ("/example.test/%21util/@v/v0.2.0.info", 410),
            "pipe-after-500" | "comma-after-500" => ("/example.test/%21util/@v/v0.2.0.info", 500),
            "proxies-then-direct" => ("/lab.test/%21util/@v/v0.2.0.info", 404),
            "goinsecure-goget" => ("/Util?go-get=1", 200),
            _ => ("/example.test/%21util/@v/v0.2.0.info", 200),
        };
        let r = if first.tls.is_some() {
            tls_get(first.addr, &accept_any_client(), "lab.test", target).0
        } else {
            get(first.addr, target)
        };
        assert_eq!(r.status, want, "{}", sc.name);
        assert!(!wait_entries(&log, 1).is_empty(), "{}: logged", sc.name);
    }
}

// ---- Checksum database and tampering proxy ----

/// Splits a lookup body as x/mod tlog `ParseRecord`: id line, record text up to and including
/// the newline before the first blank line, then the signed tree note.
fn parse_lookup(body: &[u8]) -> (u64, String, String) {
    let text = std::str::from_utf8(body).expect("lookup body is UTF-8");
    let (id, rest) = text.split_once('\n').expect("id line");
    let i = rest.find("\n\n").expect("blank line after the record");
    (
        id.parse().expect("numeric id"),
        rest[..i + 1].to_string(),
        rest[i + 2..].to_string(),
    )
}

fn integrity_lab(log: &RequestLog) -> Lab {
    Lab::start(
        &[
            spec("proxy", proxy_kind()),
            spec("sumdb", ServerKind::SumDb),
            spec(
                "proxy-sumdb",
                ServerKind::ProxyWithSumdb {
                    prefix: String::new(),
                },
            ),
            spec(
                "tamper",
                ServerKind::Tamper {
                    upstream: None,
                    plan: TamperPlan::default(),
                },
            ),
        ],
        store(),
        log.clone(),
        Limits::default(),
    )
    .unwrap()
}

#[test]
fn sumdb_lookup_verifies_with_the_printed_key_and_matches_what_the_proxy_serves() {
    use modtrace::gomod::h1::{mod_h1, zip_h1};
    use modtrace::gomod::note::{open, parse_tree, NoteLimits, Verdict, Verifier};
    use modtrace::gomod::tlog::{parse_tile_path, record_hash, TileLimits, TileSet};

    let log = RequestLog::in_memory();
    let lab = integrity_lab(&log);
    let db = lab.server("sumdb").unwrap().addr;
    let proxy = lab.server("proxy").unwrap().addr;

    // The key `modtrace lab sumdb-key` prints (and record.sh writes to lab-sumdb.vkey).
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_modtrace"))
        .args(["lab", "sumdb-key"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let vkey = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(vkey, LabSigner::lab().verifier_key());
    assert_eq!(vkey, lab.sumdb().unwrap().verifier_key());
    let verifier = Verifier::parse(&vkey).expect("GOSUMDB verifier key form");
    assert_eq!(verifier.name, "sum.lab.test");

    let mut tree_seen = None;
    for (module, escaped, version) in [
        ("example.test/Hello", "example.test/!hello", "v1.1.0"),
        ("example.test/Util", "example.test/!util", "v0.2.0"),
    ] {
        // The go command sends `!` literally in lookups.
        let r = get(db, &format!("/lookup/{escaped}@{version}"));
        assert_eq!(r.status, 200, "{module}");
        let (id, record, signed) = parse_lookup(&r.body);
        let opened = open(
            signed.as_bytes(),
            std::slice::from_ref(&verifier),
            &NoteLimits::default(),
        )
        .expect("a well-formed note");
        assert!(
            matches!(opened.verdict(), Verdict::Verified { .. }),
            "{module}: note verifies with the printed key: {:?}",
            opened.verdict()
        );
        let tree = parse_tree(opened.verified_text().unwrap()).unwrap();
        assert_eq!(
            tree.size, 6,
            "six lab module versions (corp.lab.test/Billing among them)"
        );
        if let Some(t) = tree_seen {
            assert_eq!(t, tree, "one tree for every lookup");
        }
        tree_seen = Some(tree);

        // The record's hashes are those of the bytes the proxy serves.
        let esc_wire = escaped.replace('!', "%21");
        let zip = get(proxy, &format!("/{esc_wire}/@v/{version}.zip")).body;
        let gomod = get(proxy, &format!("/{esc_wire}/@v/{version}.mod")).body;
        let want = format!(
            "{module} {version} {}\n{module} {version}/go.mod {}\n",
            zip_h1(std::io::Cursor::new(&zip)).unwrap(),
            mod_h1(&gomod)
        );
        assert_eq!(record, want, "{module}");

        // The hash tile holds the record's leaf at its index, and the tiles give the tree.
        let tile_path = format!("tile/8/0/000.p/{}", tree.size);
        let t = get(db, &format!("/{tile_path}"));
        assert_eq!(t.status, 200);
        assert_eq!(t.body.len() as u64, 32 * tree.size);
        let at = usize::try_from(id).unwrap() * 32;
        assert_eq!(t.body[at..at + 32], record_hash(record.as_bytes()));
        let mut set = TileSet::new(TileLimits::default());
        set.insert(parse_tile_path(&tile_path).unwrap(), &t.body)
            .unwrap();
        set.check_tree(8, &tree)
            .expect("tile gives the signed root");
        set.check_record(8, &tree, id, record.as_bytes())
            .expect("record is in the signed tree");
    }
    // What the go command never asks but the x/mod server answers.
    assert_eq!(
        get(db, "/latest").body,
        lab.sumdb().unwrap().signed_tree().as_bytes()
    );
    assert_eq!(get(db, "/lookup/example.test/!nope@v1.0.0").status, 404);
    assert_eq!(get(db, "/tile/8/0/000.p/7").status, 404, "beyond the tree");
    assert_eq!(get(db, "/example.test/%21util/@v/v0.2.0.info").status, 404);
}

#[test]
fn proxy_serves_the_sumdb_under_its_sumdb_path_and_modules_as_usual() {
    let log = RequestLog::in_memory();
    let lab = integrity_lab(&log);
    let p = lab.server("proxy-sumdb").unwrap();
    let db = lab.server("sumdb").unwrap().addr;
    assert_eq!(p.kind.label(), "proxy-sumdb");
    let mut s = connect(p.addr);
    // What the go command asks first when GOSUMDB has no URL.
    let sup = get_on(&mut s, "/sumdb/sum.lab.test/supported", "");
    assert_eq!(sup.status, 200);
    assert!(sup.body.is_empty());
    assert_eq!(
        get_on(&mut s, "/sumdb/sum.golang.org/supported", "").status,
        404,
        "another database: go would go there directly"
    );
    let via = get_on(
        &mut s,
        "/sumdb/sum.lab.test/lookup/example.test/!util@v0.2.0",
        "",
    );
    assert_eq!(via.status, 200);
    assert_eq!(
        via.body,
        get(db, "/lookup/example.test/!util@v0.2.0").body,
        "the same answer as the database at its own base"
    );
    let tile = get_on(&mut s, "/sumdb/sum.lab.test/tile/8/0/000.p/5", "");
    assert_eq!(tile.body, get(db, "/tile/8/0/000.p/5").body);
    assert_eq!(
        get_on(&mut s, "/example.test/%21util/@v/v0.2.0.info", "").status,
        200
    );
    // A plain proxy has no sumdb path.
    let plain = lab.server("proxy").unwrap().addr;
    assert_eq!(get(plain, "/sumdb/sum.lab.test/supported").status, 404);
}

/// Entries of a zip as (name, content), in the zip's order.
fn zip_entries(zip: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut ar = zip::ZipArchive::new(std::io::Cursor::new(zip)).expect("a valid zip");
    (0..ar.len())
        .map(|i| {
            let mut f = ar.by_index(i).unwrap();
            let mut data = Vec::new();
            f.read_to_end(&mut data).expect("entry reads (CRC checked)");
            (f.name().to_string(), data)
        })
        .collect()
}

#[test]
fn tamper_zip_differs_in_exactly_one_byte_of_content_and_is_still_a_valid_zip() {
    use modtrace::gomod::h1::zip_h1;
    let log = RequestLog::in_memory();
    let lab = integrity_lab(&log);
    let honest = lab.server("proxy").unwrap().addr;
    let tamper = lab.server("tamper").unwrap().addr;
    assert_eq!(lab.server("tamper").unwrap().kind.label(), "tamper");
    for m in [
        "example.test/%21hello/@v/v1.1.0",
        "example.test/%21util/@v/v0.2.0",
    ] {
        let a = get(honest, &format!("/{m}.zip"));
        let b = get(tamper, &format!("/{m}.zip"));
        assert_eq!((a.status, b.status), (200, 200));
        assert_eq!(b.header("content-type"), Some("application/zip"));
        let (ea, eb) = (zip_entries(&a.body), zip_entries(&b.body));
        assert_eq!(
            ea.iter().map(|e| &e.0).collect::<Vec<_>>(),
            eb.iter().map(|e| &e.0).collect::<Vec<_>>(),
            "same entries"
        );
        let mut changed = Vec::new();
        for ((name, x), (_, y)) in ea.iter().zip(&eb) {
            assert_eq!(x.len(), y.len(), "{name}: same length");
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                if p != q {
                    changed.push((name.clone(), i));
                }
            }
        }
        assert_eq!(
            changed.len(),
            1,
            "{m}: exactly one byte changed: {changed:?}"
        );
        assert!(
            !changed[0].0.ends_with("/go.mod"),
            "the module's go.mod is left alone"
        );
        let ha = zip_h1(std::io::Cursor::new(&a.body)).unwrap();
        let hb = zip_h1(std::io::Cursor::new(&b.body)).unwrap();
        assert_ne!(ha, hb, "{m}: the h1 changes");
        // Everything else as the honest proxy serves it (the default plan).
        for ext in ["info", "mod"] {
            assert_eq!(
                get(tamper, &format!("/{m}.{ext}")).body,
                get(honest, &format!("/{m}.{ext}")).body,
                "{m}.{ext}"
            );
        }
        // Deterministic: the same tampered bytes every time (captures stay reproducible).
        assert_eq!(get(tamper, &format!("/{m}.zip")).body, b.body);
    }
    assert_eq!(
        get(tamper, "/example.test/%21nope/@v/v1.0.0.zip").status,
        404
    );
}

#[test]
fn disagreeing_mirror_restamps_info_and_tampers_one_zip_without_credentials() {
    use std::net::TcpListener;
    // mirrors-disagree as data: mirror relays upstream.
    let sc = scenario::find("mirrors-disagree").unwrap();
    let log = RequestLog::in_memory();
    let lab = Lab::start(&sc.specs(true), store(), log.clone(), Limits::default()).unwrap();
    let mirror = lab.server("mirror").unwrap().addr;
    let upstream = lab.server("upstream").unwrap().addr;
    for (m, zip_differs) in [
        ("example.test/%21hello/@v/v1.1.0", true),
        ("example.test/%21util/@v/v0.2.0", false),
    ] {
        let mi = get(mirror, &format!("/{m}.info"));
        let ui = get(upstream, &format!("/{m}.info"));
        assert_ne!(mi.body, ui.body, "{m}.info differs");
        assert_eq!(mi.body.len(), ui.body.len());
        let mv: serde_json::Value = serde_json::from_slice(&mi.body).unwrap();
        let uv: serde_json::Value = serde_json::from_slice(&ui.body).unwrap();
        assert_eq!(mv["Version"], uv["Version"]);
        assert_eq!(mv["Time"], scenario::MIRROR_INFO_TIME);
        assert_eq!(
            get(mirror, &format!("/{m}.mod")).body,
            get(upstream, &format!("/{m}.mod")).body
        );
        let (mz, uz) = (
            get(mirror, &format!("/{m}.zip")).body,
            get(upstream, &format!("/{m}.zip")).body,
        );
        assert_eq!(mz != uz, zip_differs, "{m}.zip");
    }
    // Each of the six mirror answers was fetched from upstream (plus the six direct asks).
    let entries = wait_entries(&log, 18);
    assert_eq!(entries.len(), 18);
    assert_eq!(entries.iter().filter(|e| e.server == "mirror").count(), 6);
    assert_eq!(
        entries.iter().filter(|e| e.server == "upstream").count(),
        12
    );

    // The relay sends no Authorization (so no credentials-in-plaintext in the capture).
    let spy = TcpListener::bind("127.0.0.1:0").unwrap();
    let spy_addr = spy.local_addr().unwrap();
    let seen = std::thread::spawn(move || {
        let (mut c, _) = spy.accept().unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = c.read(&mut b).unwrap();
            assert!(n > 0);
            head.extend_from_slice(&b[..n]);
        }
        c.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .unwrap();
        String::from_utf8_lossy(&head).into_owned()
    });
    let relay = Lab::start(
        &[spec(
            "t",
            ServerKind::Tamper {
                upstream: Some(Target::Base(format!("http://{spy_addr}"))),
                plan: TamperPlan::default(),
            },
        )],
        Arc::new(ModuleStore::default()),
        RequestLog::in_memory(),
        Limits::default(),
    )
    .unwrap();
    let r = get(
        relay.server("t").unwrap().addr,
        "/example.test/%21util/@v/v0.2.0.zip",
    );
    assert_eq!(r.status, 404, "upstream status relayed");
    let head = seen.join().unwrap();
    assert!(head.starts_with("GET /example.test/%21util/@v/v0.2.0.zip HTTP/1.1\r\n"));
    assert!(
        !head.to_ascii_lowercase().contains("authorization"),
        "{head}"
    );
}

// ---- TLS ----

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client trusting only the lab CA, offering `versions` and ALPN http/1.1 (like the go
/// command's GOPROXY client given SSL_CERT_FILE).
fn lab_ca_client(
    pki: &Pki,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<rustls::ClientConfig> {
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(pki.lab_roots().unwrap())
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(cfg)
}

/// Records the certificate a server presents and accepts it (like GOINSECURE's client).
#[derive(Debug, Default)]
struct Recorder {
    seen: std::sync::Mutex<Vec<CertificateDer<'static>>>,
}

impl rustls::client::danger::ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        self.seen
            .lock()
            .unwrap()
            .push(end_entity.clone().into_owned());
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            m,
            c,
            d,
            &provider().signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            m,
            c,
            d,
            &provider().signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn recording_client(rec: Arc<Recorder>) -> Arc<rustls::ClientConfig> {
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(rec)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(cfg)
}

fn accept_any_client() -> Arc<rustls::ClientConfig> {
    recording_client(Arc::new(Recorder::default()))
}

type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// Connects and completes the handshake; the error is rustls's.
fn tls_connect(
    addr: SocketAddr,
    cfg: &Arc<rustls::ClientConfig>,
    name: &str,
) -> Result<TlsStream, rustls::Error> {
    let name = ServerName::try_from(name.to_string()).unwrap();
    let conn = rustls::ClientConnection::new(cfg.clone(), name).unwrap();
    let mut s = rustls::StreamOwned::new(conn, connect(addr));
    while s.conn.is_handshaking() {
        if let Err(e) = s.conn.complete_io(&mut s.sock) {
            return Err(e
                .get_ref()
                .and_then(|i| i.downcast_ref::<rustls::Error>())
                .cloned()
                .unwrap_or_else(|| rustls::Error::General(e.to_string())));
        }
    }
    Ok(s)
}

/// One GET over TLS: the response, the negotiated version and the ALPN protocol.
fn tls_get(
    addr: SocketAddr,
    cfg: &Arc<rustls::ClientConfig>,
    name: &str,
    target: &str,
) -> (Resp, rustls::ProtocolVersion, Option<Vec<u8>>) {
    let mut s = tls_connect(addr, cfg, name).expect("handshake");
    let v = s.conn.protocol_version().unwrap();
    let alpn = s.conn.alpn_protocol().map(<[u8]>::to_vec);
    let host = if name == "127.0.0.1" {
        "127.0.0.1"
    } else {
        name
    };
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: lab-test\r\n\r\n"
    )
    .unwrap();
    s.flush().unwrap();
    (read_resp(&mut s), v, alpn)
}

fn start_tls_lab(
    specs: &[ServerSpec],
) -> (
    Lab,
    Arc<Pki>,
    Arc<KeyLogWriter>,
    RequestLog,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    let pki = Arc::new(Pki::generate().unwrap());
    let keys = KeyLogWriter::to_file(&dir.path().join("lab.keys")).unwrap();
    let log = RequestLog::in_memory();
    let lab = Lab::start_with(
        specs,
        store(),
        log.clone(),
        Limits::default(),
        Some(TlsContext {
            pki: pki.clone(),
            key_log: Some(keys.clone()),
            log_handshakes: false,
        }),
    )
    .unwrap();
    (lab, pki, keys, log, dir)
}

const UTIL_INFO: &str = "/example.test/%21util/@v/v0.2.0.info";

#[test]
fn tls_proxy_negotiates_the_configured_versions_and_writes_a_key_log() {
    let (lab, pki, keys, log, dir) = start_tls_lab(&[
        tls_spec("v12", proxy_kind(), TlsVersions::Tls12, CertKind::Valid),
        tls_spec("v13", proxy_kind(), TlsVersions::Tls13, CertKind::Valid),
        tls_spec("both", proxy_kind(), TlsVersions::Both, CertKind::Valid),
    ]);
    let v12 = lab.server("v12").unwrap();
    assert!(
        v12.base_url.starts_with("https://127.0.0.1:"),
        "{}",
        v12.base_url
    );
    let all = lab_ca_client(&pki, rustls::ALL_VERSIONS);
    let only12 = lab_ca_client(&pki, &[&rustls::version::TLS12]);
    let only13 = lab_ca_client(&pki, &[&rustls::version::TLS13]);
    use rustls::ProtocolVersion::{TLSv1_2, TLSv1_3};
    for (server, client, want) in [
        ("v12", &all, TLSv1_2),
        ("v13", &all, TLSv1_3),
        ("both", &all, TLSv1_3),
        ("both", &only12, TLSv1_2),
    ] {
        // Both the IP SAN and the DNS SAN verify against the lab CA.
        for name in ["127.0.0.1", "lab.test"] {
            let (r, v, alpn) = tls_get(lab.server(server).unwrap().addr, client, name, UTIL_INFO);
            assert_eq!(r.status, 200, "{server} {name}");
            assert_eq!(v, want, "{server} {name}");
            assert_eq!(
                alpn.as_deref(),
                Some(&b"http/1.1"[..]),
                "only http/1.1, even when h2 is offered"
            );
        }
    }
    // A version the server does not speak: the handshake fails.
    assert!(tls_connect(lab.server("v12").unwrap().addr, &only13, "127.0.0.1").is_err());
    assert!(tls_connect(lab.server("v13").unwrap().addr, &only12, "127.0.0.1").is_err());

    // Over TLS the request log is still the ground truth: 8 requests answered.
    assert_eq!(wait_entries(&log, 8).len(), 8);
    // Key log: TLS 1.2 sessions give CLIENT_RANDOM, 1.3 sessions the traffic secrets; file
    // and memory agree, each line `LABEL <64 hex> <hex>`.
    let file = std::fs::read_to_string(dir.path().join("lab.keys")).unwrap();
    let lines: Vec<&str> = file.lines().collect();
    assert_eq!(lines.len(), keys.count());
    let count = |label: &str| {
        lines
            .iter()
            .filter(|l| l.starts_with(&format!("{label} ")))
            .count()
    };
    assert_eq!(count("CLIENT_RANDOM"), 4, "{file}");
    assert_eq!(count("CLIENT_TRAFFIC_SECRET_0"), 4, "{file}");
    assert_eq!(count("SERVER_HANDSHAKE_TRAFFIC_SECRET"), 4, "{file}");
    for l in &lines {
        let f: Vec<&str> = l.split(' ').collect();
        assert_eq!(f.len(), 3, "{l}");
        assert_eq!(f[1].len(), 64, "client random is 32 bytes: {l}");
        assert!(f[2].bytes().all(|b| b.is_ascii_hexdigit()), "{l}");
    }
}

#[test]
fn tls_servers_present_the_configured_certificate_kinds() {
    let (lab, pki, _keys, _log, _dir) = start_tls_lab(&[
        tls_spec("valid", proxy_kind(), TlsVersions::Tls12, CertKind::Valid),
        tls_spec(
            "self",
            proxy_kind(),
            TlsVersions::Tls12,
            CertKind::SelfSigned,
        ),
        tls_spec(
            "expired",
            proxy_kind(),
            TlsVersions::Tls13,
            CertKind::Expired,
        ),
        tls_spec(
            "wrong",
            proxy_kind(),
            TlsVersions::Both,
            CertKind::WrongName,
        ),
    ]);
    let verifying = lab_ca_client(&pki, rustls::ALL_VERSIONS);
    use rustls::CertificateError as C;
    for (server, kind) in [
        ("valid", CertKind::Valid),
        ("self", CertKind::SelfSigned),
        ("expired", CertKind::Expired),
        ("wrong", CertKind::WrongName),
    ] {
        let addr = lab.server(server).unwrap().addr;
        // What the server presents: exactly that leaf, alone.
        let rec = Arc::new(Recorder::default());
        let (r, _, _) = tls_get(addr, &recording_client(rec.clone()), "127.0.0.1", UTIL_INFO);
        assert_eq!(
            r.status, 200,
            "{server}: served once the certificate is accepted"
        );
        let seen = rec.seen.lock().unwrap().clone();
        assert_eq!(seen, vec![pki.leaf(kind).cert_der.clone()], "{server}");
        // What a client trusting the lab CA makes of it.
        let verdict = tls_connect(addr, &verifying, "127.0.0.1").map(|_| ());
        match kind {
            CertKind::Valid => assert!(verdict.is_ok(), "{server}: {verdict:?}"),
            CertKind::SelfSigned => assert!(
                matches!(
                    verdict,
                    Err(rustls::Error::InvalidCertificate(C::UnknownIssuer))
                ),
                "{server}: {verdict:?}"
            ),
            CertKind::Expired => assert!(
                matches!(
                    verdict,
                    Err(rustls::Error::InvalidCertificate(
                        C::Expired | C::ExpiredContext { .. }
                    ))
                ),
                "{server}: {verdict:?}"
            ),
            CertKind::WrongName => assert!(
                matches!(
                    verdict,
                    Err(rustls::Error::InvalidCertificate(
                        C::NotValidForName | C::NotValidForNameContext { .. }
                    ))
                ),
                "{server}: {verdict:?}"
            ),
        }
    }
    // The wrong-name certificate is fine for the name it does carry.
    assert!(tls_connect(lab.server("wrong").unwrap().addr, &verifying, "other.test").is_ok());
    // The self-signed leaf is its own issuer; the others are issued by the lab CA.
    assert!(pki.ca_cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
}

#[test]
fn non_verifying_mirror_relays_from_a_self_signed_upstream_and_a_verifying_one_refuses() {
    let creds = Credentials::lab_default();
    let mirror = |verify| ServerKind::Mirror {
        upstream: Target::Server("upstream".into()),
        credentials: Credentials::lab_default(),
        verify,
    };
    let (lab, _pki, keys, log, _dir) = start_tls_lab(&[
        spec("careless", mirror(UpstreamVerify::Nothing)),
        spec("careful", mirror(UpstreamVerify::LabCa)),
        tls_spec(
            "upstream",
            ServerKind::Proxy {
                prefix: String::new(),
                auth: Some(creds.clone()),
            },
            TlsVersions::Tls12,
            CertKind::SelfSigned,
        ),
    ]);
    assert_eq!(
        lab.server("careless").unwrap().kind.label(),
        "mirror-noverify"
    );
    let zip = get(
        lab.server("careless").unwrap().addr,
        "/example.test/%21util/@v/v0.2.0.zip",
    );
    assert_eq!(zip.status, 200);
    assert_eq!(
        zip.body,
        store().get("example.test/Util", "v0.2.0").unwrap().zip
    );
    let refused = get(lab.server("careful").unwrap().addr, UTIL_INFO);
    assert_eq!(refused.status, 502);
    let text = String::from_utf8_lossy(&refused.body);
    assert!(text.contains("certificate"), "{text}");
    let e = wait_entries(&log, 3);
    let by = |srv: &str| {
        e.iter()
            .filter(|x| x.server == srv)
            .map(|x| x.status)
            .collect::<Vec<_>>()
    };
    // The upstream saw the careless mirror's request (with its credentials: 200) and never a
    // request from the careful one.
    assert_eq!(by("upstream"), vec![200]);
    assert_eq!(by("careless"), vec![200]);
    assert_eq!(by("careful"), vec![502]);
    // Client and server of one session log the same secret once; the refused handshake
    // never reached the master secret.
    let lines = keys.lines();
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("CLIENT_RANDOM "))
            .count(),
        1,
        "{lines:?}"
    );
}

#[test]
fn verifying_mirror_relays_from_a_lab_ca_upstream() {
    let (lab, _pki, _keys, _log, _dir) = start_tls_lab(&[
        spec(
            "m",
            ServerKind::Mirror {
                upstream: Target::Server("u".into()),
                credentials: Credentials::lab_default(),
                verify: UpstreamVerify::LabCa,
            },
        ),
        tls_spec("u", proxy_kind(), TlsVersions::Tls13, CertKind::Valid),
    ]);
    assert_eq!(get(lab.server("m").unwrap().addr, UTIL_INFO).status, 200);
}

#[test]
fn goget_page_carries_the_go_import_meta_tag() {
    let (lab, _pki, _keys, log, _dir) = start_tls_lab(&[tls_spec(
        "goget",
        ServerKind::GoGet {
            repo_root: "http://lab.test/".into(),
        },
        TlsVersions::Tls12,
        CertKind::SelfSigned,
    )]);
    let addr = lab.server("goget").unwrap().addr;
    let any = accept_any_client();
    let (r, v, _) = tls_get(addr, &any, "lab.test", "/Hello?go-get=1");
    assert_eq!(v, rustls::ProtocolVersion::TLSv1_2);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let page = String::from_utf8(r.body).unwrap();
    assert!(
        page.contains(r#"<meta name="go-import" content="lab.test/Hello mod http://lab.test">"#),
        "{page}"
    );
    // Without ?go-get=1: 404; a Host with a port: the port is not part of the import path.
    assert_eq!(tls_get(addr, &any, "lab.test", "/Hello").0.status, 404);
    let mut s = tls_connect(addr, &any, "lab.test").unwrap();
    let r = get_on(&mut s, "/Util?go-get=1", "").body; // Host: lab (from get_on)
    assert!(String::from_utf8_lossy(&r).contains(r#"content="lab/Util mod http://lab.test""#));
    let mut s = tls_connect(addr, &any, "lab.test").unwrap();
    write!(
        s,
        "GET /x/y?go-get=1 HTTP/1.1\r\nHost: lab.test:443\r\n\r\n"
    )
    .unwrap();
    let r = read_resp(&mut s);
    assert!(
        String::from_utf8_lossy(&r.body).contains(r#"content="lab.test/x/y mod http://lab.test""#)
    );
    // Markup in the path is refused rather than echoed.
    assert_eq!(
        tls_get(addr, &any, "lab.test", "/%22%3E?go-get=1").0.status,
        400
    );
    assert_eq!(wait_entries(&log, 5).len(), 5);
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
