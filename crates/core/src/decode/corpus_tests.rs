//! Reads every capture of the peer reference corpus (`../shared/peer`, see its MANIFEST.md)
//! through `CaptureReader` and `Decoder`. Skips, saying why, when the corpus is absent.

use super::{DefragLimits, Transport, TunnelStats};
use crate::decode::Decoder;
use crate::source::{CaptureReader, SourceError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn captures(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            captures(&path, out);
        } else {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if [".pcap", ".pcapng", ".pcap.gz", ".pcapng.gz"]
                .iter()
                .any(|e| name.ends_with(e))
            {
                out.push(path);
            }
        }
    }
}

#[test]
fn peer_corpus_reads_and_decodes_without_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/peer");
    if !dir.is_dir() {
        eprintln!("skipped: peer corpus not found at {}", dir.display());
        return;
    }
    let mut files = Vec::new();
    captures(&dir, &mut files);
    files.sort();
    let (mut frames, mut tcp, mut udp, mut truncated_files) = (0u64, 0u64, 0u64, 0u64);
    let mut unsupported: BTreeMap<u16, u64> = BTreeMap::new();
    let mut failures = Vec::new();
    let (mut undecodable, mut other, mut fragments, mut reassembled) = (0, 0, 0, 0);
    let mut tunnels = TunnelStats::default();
    for path in &files {
        let short = path
            .strip_prefix(&dir)
            .unwrap_or(path)
            .display()
            .to_string();
        let mut reader = match CaptureReader::open(path, 0) {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{short}: open: {e}"));
                continue;
            }
        };
        let mut decoder = Decoder::new(DefragLimits::default());
        loop {
            match reader.next_frame() {
                Ok(Some(frame)) => {
                    frames += 1;
                    match decoder.decode(&frame) {
                        Some(Transport::Tcp(_)) => tcp += 1,
                        Some(Transport::Udp(_)) => udp += 1,
                        None => {}
                    }
                }
                Ok(None) => break,
                Err(e @ SourceError::Corrupt { .. }) | Err(e @ SourceError::Io { .. }) => {
                    failures.push(format!("{short}: read: {e}"));
                    break;
                }
                Err(e) => {
                    failures.push(format!("{short}: {e}"));
                    break;
                }
            }
        }
        truncated_files += u64::from(reader.stats().truncated_file);
        let st = decoder.stats();
        for (link, n) in &st.unsupported_link {
            *unsupported.entry(*link).or_default() += n;
        }
        undecodable += st.undecodable;
        other += st.other_protocol;
        fragments += st.ipv4_fragments + decoder.ipv6_fragments();
        reassembled += st.ipv4_reassembled + decoder.ipv6_reassembled();
        let t = &st.tunnels;
        tunnels.ip_in_ip += t.ip_in_ip;
        tunnels.gre += t.gre;
        tunnels.gre_in_udp += t.gre_in_udp;
        tunnels.vxlan += t.vxlan;
        tunnels.geneve += t.geneve;
        tunnels.erspan += t.erspan;
        tunnels.malformed += t.malformed;
        tunnels.unsupported += t.unsupported;
        tunnels.too_deep += t.too_deep;
        // The corpus's tunnels (MANIFEST.md: Zeek core.tunnels.gre-over-udp, core.truncation).
        if short.ends_with("tunnels/gre-over-udp-4754.pcap") {
            // Every packet: GRE in UDP around IPv4 (DNS and HTTP), as Zeek's tunnel.log says.
            assert_eq!(
                (t.gre_in_udp, t.malformed, st.undecodable),
                (14, 0, 0),
                "{t:?}"
            );
        }
        if short.ends_with("trunc/mpls-6in6-6in6-4in6-trunc.pcap") {
            // IPv6 in IPv6, then IPv4 in IPv6 whose header is cut: Zeek's truncated_inner_IP.
            assert_eq!((t.ip_in_ip, st.undecodable), (2, 1), "{t:?}");
        }
        if std::env::var_os("MODTRACE_CORPUS_VERBOSE").is_some() {
            eprintln!(
                "{short}: packets {} undecodable {} other {} fragments {}/{} reassembled {}/{} dropped {} \
                 unsupported {:?} truncated_file {} tunnels {:?}",
                reader.stats().packets,
                st.undecodable,
                st.other_protocol,
                st.ipv4_fragments,
                decoder.ipv6_fragments(),
                st.ipv4_reassembled,
                decoder.ipv6_reassembled(),
                st.fragments_dropped,
                st.unsupported_link,
                reader.stats().truncated_file,
                st.tunnels
            );
        }
    }
    eprintln!(
        "peer corpus: {} files, {frames} frames, {tcp} TCP segments, {udp} UDP datagrams, \
         {undecodable} undecodable, {other} other protocol, {fragments} fragments \
         ({reassembled} reassembled), {truncated_files} cut-short files, \
         unsupported link types {unsupported:?}, tunnels {tunnels:?}",
        files.len()
    );
    for f in &failures {
        eprintln!("  {f}");
    }
    assert!(!files.is_empty(), "no captures under {}", dir.display());
    assert!(
        failures.is_empty(),
        "{} files failed: {failures:#?}",
        failures.len()
    );
}

/// Throughput of reading + decoding one file: `MODTRACE_BENCH_FILE=big.pcap cargo test
/// --release --lib decode::corpus_tests::bench -- --ignored --nocapture`.
#[test]
#[ignore]
fn bench_read_and_decode() {
    let Some(path) = std::env::var_os("MODTRACE_BENCH_FILE") else {
        eprintln!("skipped: set MODTRACE_BENCH_FILE to a capture");
        return;
    };
    let start = std::time::Instant::now();
    let mut reader = CaptureReader::open(Path::new(&path), 0).expect("open");
    let mut decoder = Decoder::new(DefragLimits::default());
    let (mut frames, mut payload) = (0u64, 0u64);
    while let Some(frame) = reader.next_frame().expect("read") {
        frames += 1;
        if let Some(Transport::Tcp(s)) = decoder.decode(&frame) {
            payload += s.payload.len() as u64;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let bytes = reader.file_position();
    eprintln!(
        "{frames} frames, {bytes} file bytes, {payload} TCP payload bytes in {secs:.3} s: \
         {:.0} MB/s, {:.1} M frames/s",
        bytes as f64 / secs / 1e6,
        frames as f64 / secs / 1e6
    );
}
