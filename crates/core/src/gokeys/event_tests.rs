use super::*;

/// A line as the kernel prints it for the probe's arrays (print_type_x8: `0x%x`, no padding).
fn line(task: &str, event: &str, label: &[u8], random: &[u8; 32], secret: &[u8]) -> String {
    fn array(b: &[u8], n: usize) -> String {
        let mut v: Vec<u8> = b.to_vec();
        // Past the real length the probe reads whatever follows in memory.
        v.resize(n, 0x5a);
        let items: Vec<String> = v.iter().map(|x| format!("{x:#x}")).collect();
        format!("{{{}}}", items.join(","))
    }
    format!(
        "{task} [001] DBZff   172.997408: {event}: (0x70c3e0) lab={} labn={} cr={} crn=32 sec={} secn={}",
        array(label, LABEL_FETCH),
        label.len(),
        array(random, RANDOM_FETCH),
        array(secret, SECRET_FETCH),
        secret.len()
    )
}

fn ours(e: &str) -> bool {
    e.starts_with("wkl_")
}

/// Recorded trace_pipe text: the go command 1.26 fetching from the lab's h2-proxy-tls13 proxy
/// over TLS 1.3, read from a tracefs instance with record-tgid on and the probe line of
/// [`crate::gokeys::probe::probe_line`] (secrets of a lab session long closed). The first two
/// lines show a thread whose process the kernel had not recorded yet (`(-------)`). The
/// fourth line repeats the third, as the probe gives it when the goroutine stack grows in
/// writeKeyLog's prologue.
const RECORDED: &str = include_str!("testdata/trace_pipe.txt");

#[test]
fn recorded_events_give_the_four_tls13_secrets_per_session_once() {
    let mut dedupe = Dedupe::default();
    let mut keys = Vec::new();
    let mut dups = 0;
    for l in RECORDED.lines() {
        match parse_line(l, ours).unwrap() {
            TraceLine::Key(k) => {
                if dedupe.first(&k) {
                    keys.push(k);
                } else {
                    dups += 1;
                }
            }
            TraceLine::Lost(_) => panic!("lost events in the recording"),
            TraceLine::Other => {}
        }
    }
    assert!(!keys.is_empty());
    // The recording holds one duplicate (a stack growth in the prologue), added by hand
    // as the line after its original.
    assert_eq!(dups, 1);
    let mut per_session = std::collections::BTreeMap::<[u8; 32], Vec<String>>::new();
    for k in &keys {
        assert_eq!(k.secret.len(), 32, "{k:?}");
        per_session
            .entry(k.client_random)
            .or_default()
            .push(k.label.clone());
    }
    for labels in per_session.values() {
        let mut l = labels.clone();
        l.sort();
        assert_eq!(
            l,
            [
                "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
                "CLIENT_TRAFFIC_SECRET_0",
                "SERVER_HANDSHAKE_TRAFFIC_SECRET",
                "SERVER_TRAFFIC_SECRET_0"
            ]
        );
    }
    // The key-log lines are what the key-log parser takes.
    let text: String = keys.iter().map(|k| k.keylog_line()).collect();
    let mut log = crate::proto::tls::keylog::KeyLog::new();
    log.add_text(text.as_bytes());
    assert_eq!(log.len(), per_session.len());
    for random in per_session.keys() {
        assert!(log.get(random).is_some());
    }
}

#[test]
fn trims_to_the_lengths_go_passed() {
    let random = [7u8; 32];
    let l = line(
        "              go-3360   ",
        "wkl_1",
        b"CLIENT_RANDOM",
        &random,
        &[1u8; 48],
    );
    let TraceLine::Key(k) = parse_line(&l, ours).unwrap() else {
        panic!("not a key: {l}");
    };
    assert_eq!(k.label, "CLIENT_RANDOM");
    assert_eq!(k.client_random, random);
    assert_eq!(k.secret, vec![1u8; 48]);
    assert_eq!((k.tid, k.tgid), (3360, None));
    assert_eq!(k.event, "wkl_1");
    assert_eq!(
        k.keylog_line(),
        format!("CLIENT_RANDOM {} {}\n", "07".repeat(32), "01".repeat(48))
    );
    // A 32-byte secret: the 16 bytes the probe read past it are dropped.
    let l = line(
        "go-1",
        "wkl_1",
        b"CLIENT_TRAFFIC_SECRET_0",
        &random,
        &[2u8; 32],
    );
    let TraceLine::Key(k) = parse_line(&l, ours).unwrap() else {
        panic!()
    };
    assert_eq!(k.secret, vec![2u8; 32]);
    assert_eq!(k.label, "CLIENT_TRAFFIC_SECRET_0");
}

#[test]
fn task_column_forms() {
    let r = [0u8; 32];
    for (task, tid, tgid) in [
        ("go-3360", 3360, None),
        ("              go-3360    ", 3360, None),
        ("<...>-3362", 3362, None),
        ("go-3360 (   3358)", 3360, Some(3358)),
        ("my prog-42 (-------)", 42, None),
        ("a-b-c-77", 77, None),
    ] {
        let l = line(task, "wkl_2", b"CLIENT_RANDOM", &r, &[1; 48]);
        match parse_line(&l, ours) {
            Ok(TraceLine::Key(k)) => assert_eq!((k.tid, k.tgid), (tid, tgid), "{task}"),
            other => panic!("{task}: {other:?}"),
        }
    }
}

#[test]
fn refuses_cut_or_odd_events() {
    let r = [0u8; 32];
    let good = line("go-1", "wkl_1", b"CLIENT_RANDOM", &r, &[1; 48]);
    // A secret longer than the fetch (a future 64-byte secret) is refused, not cut.
    let long = good.replace("secn=48", "secn=64");
    assert_eq!(
        parse_line(&long, ours),
        Err(EventError::TooLong {
            field: "secret",
            len: 64,
            fetched: 48
        })
    );
    let lower = line("go-1", "wkl_1", b"client_random", &r, &[1; 48]);
    assert_eq!(parse_line(&lower, ours), Err(EventError::BadLabel));
    let empty = line("go-1", "wkl_1", b"CLIENT_RANDOM", &r, &[]);
    assert!(parse_line(&empty, ours).is_err());
    let short_array = good.replacen(",0x1}", "}", 1);
    assert!(parse_line(&short_array, ours).is_err());
    // Someone else's event in the instance, and other lines.
    let theirs = good.replace("wkl_1:", "other:");
    assert_eq!(parse_line(&theirs, ours), Ok(TraceLine::Other));
    assert_eq!(parse_line("", ours), Ok(TraceLine::Other));
    assert_eq!(
        parse_line("CPU:1 [LOST 12 EVENTS]", ours),
        Ok(TraceLine::Lost(12))
    );
}

#[test]
fn dedupe_forgets_oldest_beyond_its_memory() {
    let r = [0u8; 32];
    let mk = |i: u8| {
        let l = line("go-1", "wkl_1", b"CLIENT_RANDOM", &r, &[i; 48]);
        match parse_line(&l, ours) {
            Ok(TraceLine::Key(k)) => k,
            other => panic!("{other:?}"),
        }
    };
    let mut d = Dedupe::new(2);
    assert!(d.first(&mk(1)));
    assert!(!d.first(&mk(1)));
    assert!(d.first(&mk(2)));
    assert!(d.first(&mk(3)));
    // 1 fell out of the memory of two.
    assert!(d.first(&mk(1)));
    assert!(!d.first(&mk(3)));
}

#[test]
fn debug_never_shows_a_secret() {
    let r = [0xab; 32];
    let l = line("go-1", "wkl_1", b"CLIENT_RANDOM", &r, &[0xcd; 48]);
    let TraceLine::Key(k) = parse_line(&l, ours).unwrap() else {
        panic!()
    };
    let d = format!("{k:?}");
    assert!(!d.contains("cd") && !d.contains("205"), "{d}");
}

#[test]
fn random_lines_never_panic() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let good = line("go-1", "wkl_1", b"CLIENT_RANDOM", &[1; 32], &[2; 48]);
    let bytes = good.as_bytes();
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mut b = bytes.to_vec();
        let cut = (x as usize) % (b.len() + 1);
        b.truncate(cut);
        if !b.is_empty() {
            let i = (x >> 20) as usize % b.len();
            b[i] = (x >> 40) as u8 & 0x7f;
        }
        let s = String::from_utf8_lossy(&b);
        let _ = parse_line(&s, ours);
    }
}
