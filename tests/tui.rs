//! The TUI in a real terminal: `modtrace replay` inside tmux (120x40) shows the modules, the
//! 410 -> 200 fallbacks and the plaintext marks, pauses on findings when asked, and `q` leaves
//! the terminal clean; `modtrace demo` explains the finding it paused at and moves between
//! acts. Needs tmux; .ci/run runs it (`--ignored`), CI=true makes tmux mandatory.

mod common;
use common::tmux::{tmux_available, Session};
use common::*;
use std::time::{Duration, Instant};

fn skip_without_tmux() -> bool {
    if tmux_available() {
        return false;
    }
    let msg = "TUI suite needs tmux (apt-get install tmux)";
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}");
    }
    eprintln!("SKIPPED: {msg}");
    true
}

#[test]
#[ignore = "needs tmux; run by .ci/run"]
fn replay_in_a_real_terminal_shows_the_fallback_and_quits_cleanly() {
    if skip_without_tmux() {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_modtrace");
    let cap = repo().join("captures/fallback-410.pcap");
    let s = Session::start(
        "replay",
        &format!(
            "sh -c '{bin} replay {} --speed max; echo EXITED $?; sleep 60'",
            cap.display()
        ),
    );
    let screen = s.wait_for("FINISHED");
    for want in [
        "example.test/Hello@v1.1.0",
        "example.test/Util@v0.2.0",
        "fallback after #0",
        " 410 ",
        " 200 ",
        "http",
        "plaintext-module-fetch",
    ] {
        assert!(screen.contains(want), "no {want:?}:\n{screen}");
    }
    // Help, then back; then down to Util's journey.
    s.keys("?");
    s.wait_for("Keys (");
    // Any key closes the help. (Escape followed at once by another key would reach the app
    // as one Alt-key: wait for the help to go first.)
    s.keys("Escape");
    let deadline = Instant::now() + Duration::from_secs(15);
    while s.pane().contains("Keys (") {
        assert!(Instant::now() < deadline, "help did not close");
        std::thread::sleep(Duration::from_millis(100));
    }
    s.keys("j");
    s.wait_for("Journey example.test/Util@v0.2.0");
    s.keys("q");
    let after = s.wait_for("EXITED 0");
    // The alternate screen is gone: nothing of the TUI is left on the terminal.
    assert!(!after.contains("Modules"), "{after}");
    assert!(!after.contains("FINISHED"), "{after}");
}

#[test]
#[ignore = "needs tmux; run by .ci/run"]
fn replay_pauses_on_each_finding_for_training() {
    if skip_without_tmux() {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_modtrace");
    let cap = repo().join("captures/redirect-loop.pcap");
    let s = Session::start(
        "pause",
        &format!(
            "sh -c '{bin} replay {} --speed max --pause-on-findings; echo EXITED $?; sleep 60'",
            cap.display()
        ),
    );
    let first = s.wait_for("PAUSED");
    let n1 = findings_count(&first).expect("findings pane");
    assert!(n1 >= 1, "paused at a finding:\n{first}");
    // `n`: on to the next finding(s), paused again.
    s.keys("n");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let p = s.pane();
        if findings_count(&p).is_some_and(|n| n > n1) && p.contains("PAUSED") {
            break;
        }
        assert!(Instant::now() < deadline, "n did not step:\n{p}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // space: run to the end (pausing again at each new finding; space each time).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let p = s.pane();
        if p.contains("FINISHED") {
            break;
        }
        assert!(Instant::now() < deadline, "did not finish:\n{p}");
        if p.contains("PAUSED") {
            s.keys("Space");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let end = s.pane();
    assert!(end.contains("redirect-loop"), "{end}");
    s.keys("q");
    s.wait_for("EXITED 0");
}

/// Without a terminal, replay says what to use instead (exit 2).
#[test]
fn replay_without_a_terminal_says_to_use_analyze() {
    let cap = repo().join("captures/fallback-410.pcap");
    let out = run(&["replay", cap.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("modtrace analyze"), "{err}");
}

/// `modtrace demo sumdb-off` on the lessons' recordings: it starts paused on the lesson's
/// story; space starts it; paused at the first finding, the panel explains it; `n` on to the
/// tampered zips, explained with checksum-mismatch's own texts; `]` to the lesson's safe half;
/// `q` quits.
#[test]
#[ignore = "needs tmux; run by .ci/run"]
fn demo_explains_each_finding_and_goes_to_the_next_act() {
    if skip_without_tmux() {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_modtrace");
    let dir = repo().join("captures");
    let s = Session::start(
        "demo",
        &format!(
            "sh -c '{bin} demo sumdb-off --dir {}; echo EXITED $?; sleep 60'",
            dir.display()
        ),
    );
    let intro = s.wait_for("Press space to start");
    for want in [
        "The story: GOSUMDB=off is a common answer",
        "PAUSED",
        "act 1/10",
    ] {
        assert!(intro.contains(want), "no {want:?}:\n{intro}");
    }
    s.keys("Space");
    let first = s.wait_for("Why it is dangerous:");
    for want in [
        "PAUSED",
        "Lesson 1/5 sumdb-off",
        "GOSUMDB=off",
        "act 1/10",
        "On the wire:",
        "Why it is dangerous:",
        "Fix:",
    ] {
        assert!(first.contains(want), "no {want:?}:\n{first}");
    }
    // `n` from finding to finding until the panel explains a tampered zip (checksum-mismatch's
    // meaning and fix, as `modtrace explain checksum-mismatch` prints them).
    let meaning = "Why it is dangerous: The h1: hash of a downloaded zip";
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut shown = explained_count(&first);
    let screen = loop {
        let p = s.pane();
        if p.contains(meaning) && p.contains("PAUSED") {
            break p;
        }
        assert!(
            Instant::now() < deadline,
            "no checksum-mismatch explained:\n{p}"
        );
        assert!(
            !p.contains("FINISHED"),
            "ended before checksum-mismatch:\n{p}"
        );
        // One `n` per pause: wait for the panel to explain the next finding before another.
        if p.contains("PAUSED") && explained_count(&p) == shown {
            s.keys("n");
            let step_deadline = Instant::now() + Duration::from_secs(10);
            while explained_count(&s.pane()) == shown && !s.pane().contains("FINISHED") {
                assert!(
                    Instant::now() < step_deadline,
                    "n did not step:\n{}",
                    s.pane()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
            shown = explained_count(&s.pane());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    for want in [
        "checksum-mismatch",
        "Fix: Do not use the module cache entry",
        "127.0.0.1:",
        "h1:",
    ] {
        assert!(screen.contains(want), "no {want:?}:\n{screen}");
    }
    // The next act: the same lesson's safe half, from its start.
    s.keys("]");
    let next = s.wait_for("act 2/10");
    for want in [
        "GOSUMDB=<the checksum database's key and URL>",
        "Press space to start",
    ] {
        assert!(next.contains(want), "no {want:?}:\n{next}");
    }
    assert!(next.contains("sumdb-off.safe.pcapng"), "{next}");
    s.keys("q");
    let after = s.wait_for("EXITED 0");
    assert!(!after.contains("Modules"), "{after}");
}

/// N of the panel's `Finding N of M so far` (0 before any).
fn explained_count(pane: &str) -> u32 {
    pane.split("Finding ")
        .filter_map(|rest| {
            let (n, tail) = rest.split_once(' ')?;
            tail.starts_with("of ").then(|| n.parse().ok()).flatten()
        })
        .next()
        .unwrap_or(0)
}

/// Without its first recording, demo names the file and how to record it (exit 2).
#[test]
fn demo_without_the_recording_names_it_and_how_to_record_it() {
    let d = tempfile::tempdir().unwrap();
    let out = run(&[
        "demo",
        "proxy-order",
        "--safe",
        "--dir",
        d.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "training/proxy-order.safe.pcapng",
        "sudo modtrace lab run proxy-order --record",
        "--dir",
    ] {
        assert!(err.contains(want), "no {want:?}: {err}");
    }
}

/// Without a terminal, demo says which analysis prints the same (exit 2); an unknown lesson
/// lists the lessons.
#[test]
fn demo_without_a_terminal_or_with_an_unknown_lesson_says_what_to_do() {
    let dir = repo().join("captures");
    let out = run(&["demo", "--dir", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not one"), "{err}");
    for want in [
        "modtrace analyze",
        "sumdb-off.unsafe.pcapng",
        "--go-sum",
        "--policy",
    ] {
        assert!(err.contains(want), "no {want:?}: {err}");
    }
    let out = run(&["demo", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("1 sumdb-off") && err.contains("5 creds-on-wire"),
        "{err}"
    );
}

/// N of the findings pane's title `Findings N: ...`.
fn findings_count(pane: &str) -> Option<u32> {
    let rest = pane.split("Findings ").nth(1)?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}
