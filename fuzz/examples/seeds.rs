//! Writes the seed corpora of the fuzz targets (`fuzz/seeds/<target>/`) from the bundled
//! captures and the public peer captures, in each target's input format:
//!
//! ```sh
//! cd fuzz && cargo run --example seeds -- ../captures ../../shared/peer seeds
//! ```
//!
//! Peer files are read here and never copied: what is written from them is derived and small
//! (a few frames re-written as a new pcap, the first blocks of a pcapng, one flow's first
//! kilobytes, single DNS messages, the first lines of a key log). Bundled captures (already in
//! the repository) are used whole for `capture_file` and `pipeline`. The TLS sessions of both
//! are decrypted with their key logs so that the HTTP/1, HTTP/2 and HPACK seeds include what
//! travelled inside TLS. `gobin` seeds come from the crafted binaries of the gobin unit tests
//! (`write_gobin_fuzz_seeds`), not from here.

use modtrace::decode::{Decoder, DefragLimits, Transport};
use modtrace::flow::{Dir, FlowEvent, FlowTable, Limits};
use modtrace::proto::http1::{looks_like_request, Http1Conn};
use modtrace::proto::http2::{looks_like_preface, Http2Conn};
use modtrace::proto::tls::keylog::KeyLog;
use modtrace::proto::tls::{looks_like_tls_client, TlsConn, TlsEvent};
use modtrace::proto::{HttpEvent, HttpExchange, HttpLimits};
use modtrace::source::{CaptureReader, Frame};
use modtrace::time::Ts;
use modtrace_fuzz::{push_data, push_end, push_frame, push_gap, push_item};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// No seed is longer than the campaign's -max_len.
const MAX_SEED: usize = 64 << 10;
/// Seeds derived from one flow or one peer capture are cut here.
const MAX_DERIVED: usize = 16 << 10;

struct Out {
    dir: PathBuf,
    written: BTreeMap<String, usize>,
}

impl Out {
    fn put(&mut self, target: &str, bytes: &[u8]) {
        if bytes.is_empty() || bytes.len() > MAX_SEED {
            return;
        }
        let dir = self.dir.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        // FNV-1a: the same seed from two sources is written once.
        let h = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
        });
        std::fs::write(dir.join(format!("seed-{h:016x}")), bytes).unwrap();
        *self.written.entry(target.to_string()).or_default() += 1;
    }
}

fn files(root: &Path, exts: &[&str], out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(root) else {
        return;
    };
    let mut entries: Vec<_> = rd.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files(&p, exts, out);
        } else if p
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| exts.contains(&e))
        {
            out.push(p);
        }
    }
}

fn read_frames(path: &Path) -> Vec<Frame> {
    let Ok(mut r) = CaptureReader::open(path, 0) else {
        return Vec::new();
    };
    let mut v = Vec::new();
    while let Ok(Some(f)) = r.next_frame() {
        v.push(f);
    }
    v
}

/// A nanosecond pcap of `frames` (all of one link type), each cut to `cut` bytes.
fn pcap_of(frames: &[&Frame], cut: usize) -> Option<Vec<u8>> {
    let link = frames.first()?.link;
    if frames.iter().any(|f| f.link != link) {
        return None;
    }
    let mut b = Vec::new();
    b.extend_from_slice(&0xa1b2_3c4du32.to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&4u16.to_le_bytes());
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(&262_144u32.to_le_bytes());
    b.extend_from_slice(&u32::from(link.0).to_le_bytes());
    for f in frames {
        let data = &f.data[..f.data.len().min(cut)];
        let ns = f.ts.0.max(0);
        b.extend_from_slice(&((ns / 1_000_000_000) as u32).to_le_bytes());
        b.extend_from_slice(&((ns % 1_000_000_000) as u32).to_le_bytes());
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(&f.orig_len.to_le_bytes());
        b.extend_from_slice(data);
    }
    Some(b)
}

/// The first `n` blocks of a little-endian pcapng (its section header, interfaces, secrets
/// and first packets), at most `max` bytes.
fn pcapng_prefix(bytes: &[u8], n: usize, max: usize) -> Option<Vec<u8>> {
    if bytes.get(..4)? != [0x0a, 0x0d, 0x0d, 0x0a] || bytes.get(8..12)? != [0x4d, 0x3c, 0x2b, 0x1a]
    {
        return None;
    }
    let mut at = 0;
    for _ in 0..n {
        let len = u32::from_le_bytes(bytes.get(at + 4..at + 8)?.try_into().ok()?) as usize;
        if len < 12 || at + len > bytes.len() || at + len > max {
            break;
        }
        at += len;
    }
    (at > 0).then(|| bytes[..at].to_vec())
}

/// One TCP flow as the flow table handed it on.
#[derive(Default)]
struct Flow {
    server_port: u16,
    /// Chunk-format bytes, cut at MAX_DERIVED.
    chunks: Vec<u8>,
    events: Vec<(Dir, Option<Vec<u8>>)>,
    first_client: Vec<u8>,
}

fn flows_of(frames: &[Frame], dns: &mut Vec<Vec<u8>>) -> Vec<Flow> {
    let mut decoder = Decoder::new(DefragLimits::default());
    let mut table = FlowTable::new(Limits::default());
    let mut flows: BTreeMap<u64, Flow> = BTreeMap::new();
    let mut events = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        match decoder.decode(f) {
            Some(Transport::Tcp(seg)) => table.on_tcp(f.ts, i as u64 + 1, &seg, &mut events),
            Some(Transport::Udp(d)) => {
                if (d.src.port() == 53 || d.dst.port() == 53) && dns.len() < 64 {
                    dns.push(d.payload.to_vec());
                }
            }
            None => {}
        }
    }
    table.finish(Ts(i64::MAX), &mut events);
    for ev in events {
        let flow = flows.entry(ev.flow()).or_default();
        match ev {
            FlowEvent::Opened(info) => flow.server_port = info.server.port(),
            FlowEvent::Data { dir, data, .. } => {
                if dir == Dir::ToServer && flow.first_client.len() < 64 {
                    flow.first_client.extend_from_slice(&data);
                }
                if flow.chunks.len() < MAX_DERIVED {
                    push_data(&mut flow.chunks, dir, &data);
                }
                flow.events.push((dir, Some(data)));
            }
            FlowEvent::Gap { dir, len, .. } => {
                push_gap(&mut flow.chunks, dir, len.min(u64::from(u32::MAX)) as u32);
                flow.events.push((dir, None));
            }
            FlowEvent::Fin { dir, .. } | FlowEvent::Reset { dir, .. } => {
                push_end(&mut flow.chunks, dir)
            }
            _ => {}
        }
    }
    flows.into_values().collect()
}

/// The decrypted streams of a TLS flow (chunk format), when the key log opens it.
fn decrypt(events: &[(Dir, Option<Vec<u8>>)], keys: &KeyLog) -> Option<Vec<u8>> {
    let mut conn = TlsConn::new(1);
    let mut out = Vec::new();
    for (i, (dir, data)) in events.iter().enumerate() {
        match data {
            Some(d) => conn.on_data_keyed(*dir, Ts(i as i64), i as u64, d, Some(keys), &mut out),
            None => conn.on_gap(*dir, 1),
        }
    }
    let mut inner = Vec::new();
    for ev in out {
        match ev {
            TlsEvent::Plaintext { dir, data, .. } => push_data(&mut inner, dir, &data),
            TlsEvent::PlaintextGap { dir, .. } => push_gap(&mut inner, dir, 1),
            _ => {}
        }
    }
    (!inner.is_empty()).then_some(inner)
}

/// The exchanges of an HTTP/1 or HTTP/2 stream in chunk format.
fn exchanges(chunks: &[u8], h2: bool) -> Vec<HttpExchange> {
    let limits = HttpLimits {
        max_body_kept: 4 << 20,
        ..HttpLimits::default()
    };
    let mut h1 = Http1Conn::new(1, limits.clone());
    let mut h2c = Http2Conn::new(1, limits);
    let mut out = Vec::new();
    for (i, c) in modtrace_fuzz::chunks(chunks).into_iter().enumerate() {
        let ts = Ts(i as i64);
        match c {
            modtrace_fuzz::Chunk::Data(d, b) if h2 => h2c.on_data(d, ts, 0, b, &mut out),
            modtrace_fuzz::Chunk::Data(d, b) => h1.on_data(d, ts, 0, b, &mut out),
            modtrace_fuzz::Chunk::Gap(d, n) if h2 => h2c.on_gap(d, ts, n, &mut out),
            modtrace_fuzz::Chunk::Gap(d, n) => h1.on_gap(d, ts, n, &mut out),
            modtrace_fuzz::Chunk::End(d) if h2 => h2c.on_end(d, ts, 0, &mut out),
            modtrace_fuzz::Chunk::End(d) => h1.on_end(d, ts, 0, &mut out),
        }
    }
    h1.finish(Ts(i64::MAX), &mut out);
    h2c.finish(Ts(i64::MAX), &mut out);
    out.into_iter()
        .filter_map(|e| match e {
            HttpEvent::Exchange(x) => Some(x),
            _ => None,
        })
        .collect()
}

/// HPACK header blocks of one direction of an HTTP/2 stream, in the items format.
fn header_blocks(chunks: &[u8], dir: Dir) -> Vec<u8> {
    let mut stream = Vec::new();
    for c in modtrace_fuzz::chunks(chunks) {
        if let modtrace_fuzz::Chunk::Data(d, b) = c {
            if d == dir {
                stream.extend_from_slice(b);
            }
        }
    }
    let mut rest = stream
        .strip_prefix(modtrace::proto::http2::PREFACE)
        .unwrap_or(&stream);
    let mut items = Vec::new();
    let mut block = Vec::new();
    while rest.len() >= 9 {
        let len = (usize::from(rest[0]) << 16) | (usize::from(rest[1]) << 8) | usize::from(rest[2]);
        let (kind, flags) = (rest[3], rest[4]);
        let Some(payload) = rest.get(9..9 + len) else {
            break;
        };
        rest = &rest[9 + len..];
        let mut p = payload;
        if kind == 1 {
            if flags & 0x8 != 0 {
                let pad = usize::from(*p.first().unwrap_or(&0));
                p = p.get(1..p.len().saturating_sub(pad)).unwrap_or(&[]);
            }
            if flags & 0x20 != 0 {
                p = p.get(5..).unwrap_or(&[]);
            }
            block = p.to_vec();
        } else if kind == 9 {
            block.extend_from_slice(p);
        } else {
            continue;
        }
        if flags & 0x4 != 0 {
            push_item(&mut items, &block);
        }
    }
    items
}

fn zips() -> Vec<Vec<u8>> {
    use zip::write::SimpleFileOptions;
    let mut out = Vec::new();
    for (method, dup, dir) in [
        (zip::CompressionMethod::Deflated, false, false),
        (zip::CompressionMethod::Stored, true, true),
    ] {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = SimpleFileOptions::default().compression_method(method);
        let p = "example.com/m@v1.0.0/";
        if dir {
            w.add_directory(format!("{p}sub"), opts).unwrap();
        }
        w.start_file(format!("{p}go.mod"), opts).unwrap();
        w.write_all(b"module example.com/m\n\ngo 1.22\n").unwrap();
        w.start_file(format!("{p}m.go"), opts).unwrap();
        w.write_all(b"package m\n\nfunc F() int { return 1 }\n")
            .unwrap();
        if dup {
            // The zip crate refuses a repeated name; a case variant is the nearest.
            w.start_file(format!("{p}M.go"), opts).unwrap();
            w.write_all(b"package m\n").unwrap();
        }
        out.push(w.finish().unwrap().into_inner());
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, captures, peer, out_dir] = &args[..] else {
        eprintln!("usage: seeds CAPTURES_DIR PEER_DIR OUT_DIR");
        std::process::exit(2);
    };
    let (captures, peer) = (Path::new(captures), Path::new(peer));
    let mut out = Out {
        dir: PathBuf::from(out_dir),
        written: BTreeMap::new(),
    };

    // Key logs: the bundled captures' and the peer corpus's, for decryption here only.
    let mut key_files = Vec::new();
    files(captures, &["keys"], &mut key_files);
    let bundled_keys = key_files.len();
    files(peer, &["keys", "txt"], &mut key_files);
    let mut keys = KeyLog::new();
    for (i, k) in key_files.iter().enumerate() {
        let name = k.file_name().unwrap().to_string_lossy();
        if i >= bundled_keys && !(name.contains("keylog") || name.ends_with(".keys")) {
            continue;
        }
        let text = std::fs::read(k).unwrap();
        keys.add_text(&text);
        if i < bundled_keys {
            out.put("keylog", &text);
        } else {
            // Peer key logs: the first lines only.
            let head: Vec<&[u8]> = text.split(|&b| b == b'\n').take(4).collect();
            out.put("keylog", &head.join(&b'\n'));
        }
    }

    let mut caps = Vec::new();
    files(captures, &["pcap", "pcapng"], &mut caps);
    let bundled = caps.len();
    files(peer, &["pcap", "pcapng", "cap", "trace"], &mut caps);
    let mut sumdb_pairs: Vec<Vec<u8>> = Vec::new();
    for (i, path) in caps.iter().enumerate() {
        let is_bundled = i < bundled;
        let bytes = std::fs::read(path).unwrap();
        let frames = read_frames(path);
        if is_bundled {
            out.put("capture_file", &bytes);
            out.put("pipeline", &bytes);
        } else {
            let few: Vec<&Frame> = frames.iter().take(8).collect();
            if let Some(p) = pcap_of(&few, 2048) {
                out.put("capture_file", &p);
            }
            if let Some(p) = pcapng_prefix(&bytes, 8, MAX_DERIVED) {
                out.put("capture_file", &p);
            }
            let more: Vec<&Frame> = frames.iter().take(40).collect();
            if let Some(p) = pcap_of(&more, 1600).filter(|p| p.len() <= 48 << 10) {
                out.put("pipeline", &p);
            }
        }
        // link_decode: the first frames and a sample of the rest, per link type.
        let mut by_link: BTreeMap<u16, Vec<&Frame>> = BTreeMap::new();
        for f in &frames {
            by_link.entry(f.link.0).or_default().push(f);
        }
        for (link, fs) in by_link {
            let step = (fs.len() / 8).max(1);
            let pick = fs
                .iter()
                .take(8)
                .chain(fs.iter().skip(8).step_by(step).take(8));
            let mut seed = link.to_le_bytes().to_vec();
            for f in pick {
                push_frame(&mut seed, 1, &f.data[..f.data.len().min(1500)]);
            }
            out.put("link_decode", &seed);
        }

        let mut dns = Vec::new();
        for flow in flows_of(&frames, &mut dns) {
            let first = &flow.first_client;
            let mut inner: Option<(Vec<u8>, bool)> = None;
            if flow.server_port == 53 {
                out.put("dns", &flow.chunks);
            } else if looks_like_tls_client(first).is_some() {
                out.put("tls", &flow.chunks);
                if let Some(plain) = decrypt(&flow.events, &keys) {
                    let h2 = plain.get(3..).is_some_and(looks_like_preface);
                    inner = Some((plain, h2));
                }
            } else if first.starts_with(b"CONNECT ") {
                out.put("http1", &flow.chunks);
                // The TLS inside the tunnel: each direction after its HTTP head.
                let mut skip = [true, true];
                let mut events = Vec::new();
                for (dir, data) in &flow.events {
                    let Some(d) = data else { continue };
                    let s = &mut skip[dir.index()];
                    if *s {
                        if let Some(at) = d.windows(4).position(|w| w == b"\r\n\r\n") {
                            *s = false;
                            if at + 4 < d.len() {
                                events.push((*dir, Some(d[at + 4..].to_vec())));
                            }
                        }
                    } else {
                        events.push((*dir, Some(d.clone())));
                    }
                }
                if let Some(plain) = decrypt(&events, &keys) {
                    let h2 = plain.get(3..).is_some_and(looks_like_preface);
                    inner = Some((plain, h2));
                }
            } else if looks_like_preface(first) {
                inner = Some((flow.chunks.clone(), true));
            } else if looks_like_request(first) {
                inner = Some((flow.chunks.clone(), false));
            }
            let Some((plain, h2)) = inner else { continue };
            let cut = &plain[..plain.len().min(MAX_DERIVED * 2)];
            if h2 {
                out.put("http2", cut);
                for dir in [Dir::ToServer, Dir::ToClient] {
                    out.put("hpack", &header_blocks(&plain, dir));
                }
            } else {
                out.put("http1", cut);
            }
            for x in exchanges(&plain, h2) {
                let Some(resp) = &x.response else { continue };
                let target = &x.request.target;
                let body = &resp.body.data;
                if target.ends_with(".zip") && resp.status == 200 && resp.body.kept_all {
                    out.put("zip_h1", body);
                }
                if target.contains("/lookup/")
                    || target.ends_with("/latest")
                    || target.contains("/tile/")
                {
                    let mut pair = Vec::new();
                    push_item(&mut pair, target.as_bytes());
                    push_item(&mut pair, body);
                    out.put("sumdb", &pair);
                    sumdb_pairs.push(pair);
                    if target.ends_with("/latest") {
                        out.put("note", body);
                    } else if let Some(at) = body.windows(2).position(|w| w == b"\n\n") {
                        if target.contains("/lookup/") {
                            out.put("note", &body[at + 2..]);
                        }
                    }
                }
            }
        }
        for m in dns.iter().take(8) {
            out.put("dns", m);
        }
    }
    // All the checksum-database answers of the bundled captures together: records, tree
    // heads and tiles that check against each other.
    let mut all = Vec::new();
    for p in &sumdb_pairs {
        if all.len() + p.len() <= MAX_SEED {
            all.extend_from_slice(p);
        }
    }
    out.put("sumdb", &all);
    let mut sums = Vec::new();
    files(captures, &["sum"], &mut sums);
    for s in sums {
        let mut pair = Vec::new();
        push_item(&mut pair, b"go.sum");
        push_item(&mut pair, &std::fs::read(s).unwrap());
        out.put("sumdb", &pair);
    }

    for z in zips() {
        out.put("zip_h1", &z);
    }
    out.put(
        "note",
        include_str!("../../captures/lab-sumdb.vkey").as_bytes(),
    );

    // Policies: the TOML examples of the README and the training lessons' policy.
    let readme = std::fs::read_to_string(captures.join("../README.md")).unwrap_or_default();
    for block in readme.split("```toml\n").skip(1) {
        if let Some((toml, _)) = block.split_once("```") {
            out.put("policy", toml.as_bytes());
        }
    }
    let mut tomls = Vec::new();
    files(captures, &["toml"], &mut tomls);
    for t in tomls {
        out.put("policy", &std::fs::read(t).unwrap());
    }

    let mut envs = Vec::new();
    files(captures, &["json"], &mut envs);
    for e in envs
        .iter()
        .filter(|e| e.to_string_lossy().ends_with(".go-env.json"))
        .take(2)
    {
        out.put("goenv", &std::fs::read(e).unwrap());
    }
    out.put(
        "goenv",
        b"# go.env\nGOPROXY=https://proxy.golang.org,direct\nGOSUMDB=sum.golang.org\nGOPRIVATE='*.corp.example'\nexport GONOSUMDB=\"corp.example/x\"\n",
    );

    let trace =
        std::fs::read_to_string(captures.join("../crates/core/src/gokeys/testdata/trace_pipe.txt"))
            .unwrap_or_default();
    out.put("trace_event", trace.as_bytes());
    for line in trace.lines() {
        out.put("trace_event", line.as_bytes());
    }

    for (target, n) in &out.written {
        println!("{target}: {n} seeds written");
    }
}
