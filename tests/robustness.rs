//! No panic on bad input: truncated, bit-flipped and random files, in-process (many) and
//! through the binary (exit status 0, 1 or 2, never a crash).

mod common;
use common::*;
use modtrace::pipeline::{Analyzer, Config};
use modtrace::source::MergedSource;

struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Seeds: the bundled captures plus a synthetic one.
fn seeds(dir: &std::path::Path) -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    let syn = fallback_capture(dir);
    v.push(std::fs::read(&syn).unwrap());
    if let Ok(rd) = std::fs::read_dir(repo().join("captures")) {
        let mut paths: Vec<_> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
            .collect();
        paths.sort();
        for p in paths {
            v.push(std::fs::read(p).unwrap());
        }
    }
    v
}

fn analyze_in_process(path: &std::path::Path) {
    let Ok(mut src) = MergedSource::open(&[path]) else {
        return;
    };
    let mut an = Analyzer::new(Config::default());
    while let Ok(Some(f)) = src.next_frame() {
        an.on_frame(&f);
        an.drain_events().for_each(drop);
    }
    an.finish();
    let _ = an.into_outcome();
}

#[test]
fn mutated_captures_never_panic_in_process() {
    let d = tempfile::tempdir().unwrap();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let p = d.path().join("m.pcap");
    for seed in seeds(d.path()) {
        for round in 0..60 {
            let mut b = seed.clone();
            match round % 3 {
                0 => {
                    // bit flips
                    for _ in 0..1 + rng.next() % 16 {
                        let i = (rng.next() as usize) % b.len();
                        b[i] ^= 1 << (rng.next() % 8);
                    }
                }
                1 => {
                    // truncation
                    let n = (rng.next() as usize) % b.len();
                    b.truncate(n.max(1));
                }
                _ => {
                    // a run of random bytes somewhere after the header
                    let start = 24 + (rng.next() as usize) % b.len().saturating_sub(24).max(1);
                    for x in b.iter_mut().skip(start).take(64) {
                        *x = rng.next() as u8;
                    }
                }
            }
            std::fs::write(&p, &b).unwrap();
            analyze_in_process(&p);
        }
    }
}

#[test]
fn random_files_never_panic_in_process() {
    let d = tempfile::tempdir().unwrap();
    let mut rng = XorShift(42);
    let p = d.path().join("r.bin");
    for i in 0..300 {
        let len = (rng.next() % 4096) as usize;
        let mut b: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // Half of them get a valid pcap or pcapng magic so the parsers go deeper.
        match i % 3 {
            0 if len >= 4 => b[..4].copy_from_slice(&0xa1b2c3d4u32.to_le_bytes()),
            1 if len >= 4 => b[..4].copy_from_slice(&0x0a0d0d0au32.to_le_bytes()),
            _ => {}
        }
        std::fs::write(&p, &b).unwrap();
        analyze_in_process(&p);
    }
}

#[test]
fn binary_exits_cleanly_on_bad_files() {
    let d = tempfile::tempdir().unwrap();
    let mut rng = XorShift(7);
    let seed = seeds(d.path()).remove(0);
    for i in 0..24 {
        let mut b = seed.clone();
        if i % 2 == 0 {
            for _ in 0..8 {
                let j = (rng.next() as usize) % b.len();
                b[j] = rng.next() as u8;
            }
        } else {
            b.truncate((rng.next() as usize) % b.len());
        }
        let p = d.path().join(format!("bad{i}.pcap"));
        std::fs::write(&p, &b).unwrap();
        let out = run(&["analyze", p.to_str().unwrap(), "--format", "json"]);
        let code = out.status.code();
        assert!(
            matches!(code, Some(0..=2)),
            "exit {code:?} on case {i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if code != Some(2) {
            serde_json::from_slice::<serde_json::Value>(&out.stdout)
                .expect("valid JSON whenever analysis ran");
        }
    }
}
