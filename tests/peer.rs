//! The public peer corpus (../shared/peer: captures from the Zeek, Suricata, Wireshark and
//! tcpdump test suites with their published results): every capture analysed without panic and
//! with bounded memory, every link type decoded or counted as unsupported, and our HTTP
//! exchanges compared with Zeek's published http.log (method, host, uri, status).
//! Skips with a message outside CI when ../shared is absent; fails in CI.

mod common;
use modtrace::pipeline::{Analyzer, Config};
use modtrace::report::Report;
use modtrace::source::MergedSource;
use std::path::{Path, PathBuf};

fn peer_dir() -> Option<PathBuf> {
    let d = common::repo().join("../shared/peer");
    if d.join("MANIFEST.md").exists() {
        return Some(d);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true but the peer corpus is missing at {}", d.display());
    }
    eprintln!(
        "SKIPPED: peer corpus not found at {} (it lives in the shared folder beside the repo)",
        d.display()
    );
    None
}

fn captures_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            captures_under(&p, out);
        } else {
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            if n.ends_with(".pcap")
                || n.ends_with(".pcapng")
                || n.ends_with(".pcap.gz")
                || n.ends_with(".pcapng.gz")
                || n.ends_with(".cap")
            {
                out.push(p);
            }
        }
    }
}

fn analyze(path: &Path) -> Option<Report> {
    analyze_with_keys(path, None)
}

/// `analyze`, with the TLS secrets of a key log (NSS format) when given.
fn analyze_with_keys(path: &Path, keylog: Option<&Path>) -> Option<Report> {
    let mut src = MergedSource::open(&[path]).ok()?;
    let mut cfg = Config::default();
    if let Some(k) = keylog {
        cfg.keylog.add_text(&std::fs::read(k).ok()?);
    }
    let mut an = Analyzer::new(cfg);
    while let Ok(Some(f)) = src.next_frame() {
        an.on_frame(&f);
        an.drain_events().for_each(drop);
    }
    an.finish();
    let stats: Vec<_> = src.stats().into_iter().cloned().collect();
    Some(Report::build(&stats, an.into_outcome()))
}

fn vm_hwm_kb() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[test]
fn whole_corpus_analyses_without_panic_and_link_types_are_accounted() {
    let Some(dir) = peer_dir() else { return };
    let mut files = Vec::new();
    captures_under(&dir, &mut files);
    assert!(files.len() > 100, "corpus has {} captures", files.len());
    let (mut analysed, mut rejected, mut packets, mut undecodable) = (0, 0, 0u64, 0u64);
    let mut unsupported = std::collections::BTreeMap::<String, u64>::new();
    for f in &files {
        match analyze(f) {
            Some(r) => {
                analysed += 1;
                packets += r.capture.packets;
                undecodable += r.capture.undecodable_packets;
                for lt in &r.capture.link_types {
                    assert!(
                        // Link types modtrace decodes have names; others must be counted.
                        !lt.starts_with("linktype-")
                            || r.capture.unsupported_link_types.contains_key(lt),
                        "{}: link type {lt} neither decoded nor counted as unsupported",
                        f.display()
                    );
                }
                for (k, v) in &r.capture.unsupported_link_types {
                    *unsupported.entry(k.clone()).or_default() += v;
                }
            }
            None => rejected += 1,
        }
    }
    eprintln!(
        "peer corpus: {} files, {analysed} analysed, {rejected} not captures, {packets} packets, {undecodable} undecodable; unsupported link types: {unsupported:?}",
        files.len()
    );
    assert!(
        analysed as f64 >= files.len() as f64 * 0.95,
        "most peer files open"
    );
    if let Some(kb) = vm_hwm_kb() {
        eprintln!("peak RSS of the test process: {kb} kB");
        assert!(
            kb < 256 * 1024,
            "memory stays bounded over the corpus: {kb} kB"
        );
    }
}

/// (method, host, uri, status) rows of a Zeek http.log; `-` for unset. Reads whole logs
/// (`#fields` header) and the column subsets of `btest-diff-cut` (a plain header line of
/// names; a column left out reads `-`, as unset).
fn zeek_http_rows(path: &Path) -> Option<Vec<[String; 4]>> {
    let text = std::fs::read_to_string(path).ok()?;
    let (header, rows): (&str, Vec<&str>) = match text.matches("#fields").count() {
        1 => (
            text.lines()
                .find(|l| l.starts_with("#fields"))?
                .split_once('\t')?
                .1,
            text.lines()
                .filter(|l| !l.starts_with('#') && !l.is_empty())
                .collect(),
        ),
        0 => {
            let mut lines = text
                .lines()
                .filter(|l| !l.starts_with('#') && !l.is_empty());
            (lines.next()?, lines.collect())
        }
        _ => return None, // several pcaps concatenated: not comparable one to one
    };
    let fields: Vec<&str> = header.split('\t').collect();
    let col = |n: &str| fields.iter().position(|f| *f == n);
    // Without a uri column there is nothing to compare.
    let (m, h, u, s) = (
        col("method"),
        col("host"),
        Some(col("uri")?),
        col("status_code"),
    );
    Some(
        rows.iter()
            .map(|l| {
                let v: Vec<&str> = l.split('\t').collect();
                // `(empty)` is Zeek's empty string (the `#empty_field` header).
                let g = |i: Option<usize>| match i.and_then(|i| v.get(i).copied()) {
                    Some("(empty)") => String::new(),
                    Some(x) => x.to_string(),
                    None => "-".to_string(),
                };
                [g(m), g(h), g(u), g(s)]
            })
            .collect(),
    )
}

/// The request target in an exchange's `url`: its path and query, empty when it has none
/// (an empty target, `OPTIONS  HTTP/1.1`); a `url` that is not a URL (CONNECT's authority,
/// `*`) is the target itself.
fn uri_of(url: &str) -> String {
    match url.split_once("://") {
        Some((_, rest)) => match rest.find('/') {
            Some(i) => rest[i..].to_string(),
            None => String::new(),
        },
        None => url.to_string(),
    }
}

#[test]
fn http_exchanges_agree_with_zeek_http_log() {
    let Some(dir) = peer_dir() else { return };
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.md")).unwrap();
    let section = manifest
        .split("### 2.1")
        .nth(1)
        .unwrap()
        .split("\n### ")
        .next()
        .unwrap();
    let mut pairs: Vec<(String, String)> = Vec::new();
    for line in section.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() > 3 && cells[1].ends_with(".pcap") && !cells[2].is_empty() {
            let p = (cells[1].to_string(), cells[2].to_string());
            if !pairs.contains(&p) {
                pairs.push(p);
            }
        }
    }
    assert!(pairs.len() >= 10, "manifest rows: {pairs:?}");
    let (mut total, mut matched) = (0usize, 0usize);
    // Rows where Zeek parsed a request line (method known): the like-for-like comparison.
    let (mut parsed_total, mut parsed_matched) = (0usize, 0usize);
    let mut report = Vec::new();
    // Rows (method host uri status) on one side with no partner on the other.
    let mut disagree = Vec::new();
    for (pcap, baseline) in &pairs {
        let Some(rows) = zeek_http_rows(&dir.join("zeek/Baseline").join(baseline).join("http.log"))
        else {
            continue;
        };
        // Zeek decrypted the TLS traces whose secrets its test gave (peer/MANIFEST.md,
        // zeek/keylogs): compare like with like.
        let stem = Path::new(pcap).file_stem().unwrap().to_string_lossy();
        let keys = dir.join(format!("zeek/keylogs/{stem}.nss-keylog.txt"));
        let keys = keys.exists().then_some(keys.as_path());
        let Some(r) = analyze_with_keys(&dir.join("zeek/Traces").join(pcap), keys) else {
            report.push(format!("{pcap}: could not open"));
            total += rows.len();
            continue;
        };
        let mut ours: Vec<[String; 4]> = r
            .exchanges
            .iter()
            .map(|e| {
                [
                    e.method.clone(),
                    e.host.clone().unwrap_or("-".into()),
                    uri_of(&e.url),
                    e.status.map_or("-".into(), |s| s.to_string()),
                ]
            })
            .collect();
        let mut m = 0;
        // Rows with a parsed request first, so that a wildcard row (`-` method) cannot take the
        // exchange a specific row needs.
        let mut rows = rows;
        rows.sort_by_key(|z| z[0] == "-");
        for z in &rows {
            // Zeek writes `-` for what it did not see, and 0 for a status it could not parse.
            let pos = ours.iter().position(|o| {
                (z[0] == "-" || o[0] == z[0])
                    && (z[1] == "-" || o[1] == z[1])
                    && (z[2] == "-" || o[2] == z[2])
                    && (z[3] == "-" || z[3] == "0" || o[3] == z[3])
            });
            if z[0] != "-" {
                parsed_total += 1;
            }
            if let Some(i) = pos {
                ours.remove(i);
                m += 1;
                if z[0] != "-" {
                    parsed_matched += 1;
                }
            } else {
                let parsed = if z[0] == "-" { "" } else { " (request parsed)" };
                disagree.push(format!("{pcap}: Zeek {}{parsed}", z.join(" ")));
            }
        }
        for o in &ours {
            disagree.push(format!("{pcap}: ours {}", o.join(" ")));
        }
        report.push(format!(
            "{pcap}: {m}/{} Zeek rows matched, {} exchanges of ours unmatched",
            rows.len(),
            ours.len()
        ));
        total += rows.len();
        matched += m;
    }
    let pct = 100.0 * matched as f64 / total.max(1) as f64;
    let parsed_pct = 100.0 * parsed_matched as f64 / parsed_total.max(1) as f64;
    eprintln!(
        "agreement with Zeek http.log: {matched}/{total} rows ({pct:.1}%); rows with a request line Zeek parsed: {parsed_matched}/{parsed_total} ({parsed_pct:.1}%)\n  {}\nrows without a partner ({}):\n  {}",
        report.join("\n  "),
        disagree.len(),
        disagree.join("\n  ")
    );
    // Issue 15's acceptance: 95% of the rows whose request Zeek parsed. Rows without one are
    // Zeek logging a response to bytes it could not read as a request (methods.pcap) or a
    // column subset without a method; they are kept in the overall floor (measured: 75%).
    assert!(
        parsed_pct >= 95.0,
        "agreement with Zeek on parsed requests fell to {parsed_pct:.1}%"
    );
    assert!(pct >= 70.0, "agreement with Zeek fell to {pct:.1}%");
}

/// GRE in UDP (RFC 8086, port 4754) around DNS and HTTP: Zeek's http.log row for it, on the
/// inner addresses (core.tunnels.gre-over-udp conn.log), and the server named by the DNS
/// answer that crossed the same tunnel.
#[test]
fn gre_in_udp_tunnel_gives_zeeks_http_row() {
    let Some(dir) = peer_dir() else { return };
    let r = analyze(&dir.join("zeek/Traces/tunnels/gre-over-udp-4754.pcap")).unwrap();
    let got: Vec<_> = r
        .exchanges
        .iter()
        .map(|e| {
            (
                e.method.as_str(),
                e.host.as_deref(),
                e.url.as_str(),
                e.status,
                e.client.to_string(),
                e.server.to_string(),
                e.server_name.as_deref(),
                e.location.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [(
            "GET",
            Some("zeek.org"),
            "http://zeek.org/",
            Some(301),
            "172.17.0.2:36518".to_string(),
            "192.0.78.150:80".to_string(),
            Some("zeek.org"),
            Some("https://zeek.org/"),
        )]
    );
    assert_eq!(r.capture.undecodable_packets, 0);
    assert_eq!(r.capture.tcp.flows, 1, "one TCP flow, inside the tunnel");
}

/// Decryption against the peers' published expectations (peer/MANIFEST.md, "key material"):
/// the requests each capture holds, read with its key log (or its pcapng DSB), with no record
/// that fails to authenticate.
#[test]
fn peer_tls_captures_decrypt_to_their_published_requests() {
    let Some(peer) = peer_dir() else {
        return;
    };
    /// Capture, key log (None: in the pcapng), expected (method, url, status) in order.
    type Case = (
        &'static str,
        Option<&'static str>,
        &'static [(&'static str, &'static str, u64)],
    );
    let cases: &[Case] = &[
        // RFC 8448 traces: a full handshake, then PSK resumption with 0-RTT (/early).
        (
            "wireshark/test/captures/tls13-rfc8446.pcap",
            Some("wireshark/test/keys/tls13-rfc8446.keys"),
            &[
                ("GET", "https://10.9.0.2:443/first", 200),
                ("GET", "https://10.9.0.2:443/early", 200),
                ("GET", "https://10.9.0.2:443/second", 200),
            ],
        ),
        (
            "wireshark/test/captures/tls12-dsb.pcapng",
            None,
            &[
                ("HEAD", "https://example.com/", 200),
                ("HEAD", "https://example.net/", 200),
            ],
        ),
        (
            "wireshark/test/captures/http2-data-reassembly.pcap",
            Some("wireshark/test/keys/http2-data-reassembly.keys"),
            &[("GET", "https://172.16.5.10:8443/wireshark.png", 200)],
        ),
        (
            "zeek/Traces/tls/tls12-decryption.pcap",
            Some("zeek/keylogs/tls12-decryption.nss-keylog.txt"),
            &[("GET", "https://heise.de/", 301)],
        ),
    ];
    for (capture, keys, want) in cases {
        let mut args = vec![
            "analyze".to_string(),
            peer.join(capture).display().to_string(),
            "--format".into(),
            "json".into(),
            "--fail-on".into(),
            "never".into(),
        ];
        if let Some(k) = keys {
            args.push("--keylog".into());
            args.push(peer.join(k).display().to_string());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = common::run(&args);
        assert_eq!(out.status.code(), Some(0), "{capture}");
        let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let got: Vec<(String, String, u64)> = j["exchanges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| {
                (
                    x["method"].as_str().unwrap().to_string(),
                    x["url"].as_str().unwrap().to_string(),
                    x["status"].as_u64().unwrap_or(0),
                )
            })
            .collect();
        let want: Vec<(String, String, u64)> = want
            .iter()
            .map(|(m, u, s)| (m.to_string(), u.to_string(), *s))
            .collect();
        assert_eq!(got, want, "{capture}");
        for t in j["tls"].as_array().unwrap() {
            assert_eq!(t["decryption"]["records_failed"], 0, "{capture}: {t}");
            assert!(t["decryption"]["records_decrypted"].as_u64().unwrap() > 0);
        }
        // The 16 GETs tshark sees in the Zeek stream capture are checked by count.
    }
    let out = common::run(&[
        "analyze",
        &peer
            .join("zeek/Traces/tls/tls-1.2-stream-keylog.pcap")
            .display()
            .to_string(),
        "--keylog",
        &peer
            .join("zeek/keylogs/tls-1.2-stream-keylog.nss-keylog.txt")
            .display()
            .to_string(),
        "--format",
        "json",
        "--fail-on",
        "never",
    ]);
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let gets = j["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| {
            x["method"] == "GET"
                && x["url"]
                    .as_str()
                    .unwrap()
                    .starts_with("https://www.heise.de/")
        })
        .count();
    assert_eq!(gets, 16, "tls-1.2-stream-keylog: tshark sees 16 GETs");
}
