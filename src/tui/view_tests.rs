//! Snapshots of every view on the bundled captures (TestBackend, fixed sizes; the replay's
//! status is frozen: rate 0, the capture's own clock in UTC, file names only), key handling
//! through the app's state, and sizes from 0x0 up.

use super::*;
use crate::gomod::{Exchange, Tracker};
use crate::pipeline::Config;
use crate::tui::app::{App, Detail, Pane};
use crate::tui::feed::replay_to_end;
use crate::tui::{Command, Speed, Status, Update};
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::Terminal;
use std::path::PathBuf;

fn capture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("captures")
        .join(name)
}

fn updates_of(name: &str) -> Vec<Update> {
    let mut cfg = Config::default();
    // The lab's CA, as `--ca-file` would give it: the proxy's certificate validates.
    cfg.tls
        .trust
        .add_pem_file(&capture("lab-pki/lab-ca.pem"))
        .unwrap();
    replay_to_end(&[capture(name)], cfg).unwrap()
}

fn app_from(updates: Vec<Update>) -> App {
    let mut app = App::new(Status::default());
    for u in updates {
        app.apply(u);
    }
    app
}

fn app_of(name: &str) -> App {
    app_from(updates_of(name))
}

fn render(app: &App, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| draw(app, f)).unwrap();
    if w == 0 {
        // TestBackend cannot print a zero-width buffer.
        return String::new();
    }
    t.backend().to_string()
}

fn key(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

fn ch(c: char) -> KeyEvent {
    key(KeyCode::Char(c))
}

fn typed(app: &mut App, s: &str) {
    for c in s.chars() {
        app.on_key(ch(c));
    }
}

fn snap(name: &str, app: &App) {
    insta::assert_snapshot!(format!("{name}_120x40"), render(app, 120, 40));
    insta::assert_snapshot!(format!("{name}_80x24"), render(app, 80, 24));
}

#[test]
fn fallback_410_main_view() {
    let app = app_of("fallback-410.pcap");
    assert_eq!(app.rows.len(), 2);
    assert_eq!(app.findings.len(), 12);
    snap("fallback_410", &app);
    // The narrow layout still shows the essentials.
    let narrow = render(&app, 80, 24);
    assert!(narrow.contains("example.test/Hello@v1.1.0"), "{narrow}");
    assert!(narrow.contains("example.test/Util@v0.2.0"), "{narrow}");
    assert!(narrow.contains("fallback after #0"), "{narrow}");
    assert!(narrow.contains("http "), "{narrow}");
    assert!(narrow.contains("fb3"), "{narrow}");
    assert!(narrow.contains("FINISHED"), "{narrow}");
}

#[test]
fn refused_then_fallback_journey() {
    // GOPROXY="http://127.0.0.1:8125|http://127.0.0.1:8126", nothing on 8125: every request
    // first meets a refused connection, then goes to the second entry.
    let app = app_of("pipe-after-refused.pcap");
    assert_eq!(app.rows.len(), 2);
    let shape: Vec<(bool, Option<String>)> = app
        .tree
        .iter()
        .map(|l| {
            let cause = match &l.hop.after {
                Some(crate::gomod::HopLink::Fallback { from, cause }) => {
                    Some(format!("{from}:{cause}"))
                }
                _ => None,
            };
            (l.hop.failed.is_some(), cause)
        })
        .collect();
    assert_eq!(
        shape,
        [
            (true, None),
            (false, Some("0:refused".into())),
            (true, None),
            (false, Some("2:refused".into())),
            (true, None),
            (false, Some("4:refused".into())),
        ]
    );
    snap("pipe_after_refused", &app);
    let wide = render(&app, 120, 40);
    assert!(wide.contains("refused"), "{wide}");
    assert!(wide.contains("(no request sent)"), "{wide}");
    assert!(wide.contains("fallback after #0 (refused)"), "{wide}");
    assert!(wide.contains("127.0.0.1:8125"), "{wide}");

    // Enter on the failed hop says what failed and what came next.
    let mut app = app;
    app.on_key(key(KeyCode::Tab));
    app.on_key(key(KeyCode::Enter));
    assert!(
        matches!(app.detail, Some(Detail::Attempt(_))),
        "{:?}",
        app.detail
    );
    let detail = render(&app, 120, 40);
    assert!(detail.contains("Failed connection (flow"), "{detail}");
    assert!(detail.contains("answered the SYN with a RST"), "{detail}");
    assert!(detail.contains("next"), "{detail}");
    insta::assert_snapshot!("pipe_after_refused_attempt_detail_120x40", detail);
}

#[test]
fn redirect_loop_is_drawn_as_a_loop() {
    let app = app_of("redirect-loop.pcap");
    let loops: Vec<(usize, Option<usize>)> =
        app.tree.iter().map(|l| (l.number, l.returns_to)).collect();
    assert_eq!(
        &loops[..4],
        &[(0, None), (1, None), (2, Some(0)), (3, Some(1))]
    );
    assert_eq!(loops[9], (9, Some(1)));
    snap("redirect_loop", &app);
    let narrow = render(&app, 80, 24);
    assert!(narrow.contains("↺ #0"), "{narrow}");
    assert!(narrow.contains("rd9"), "{narrow}");
}

#[test]
fn mirror_upstream_hops_nest_under_the_hop_they_served() {
    let app = app_of("mirror-basic-auth.pcap");
    let shape: Vec<(usize, usize)> = app.tree.iter().map(|l| (l.depth, l.number)).collect();
    assert_eq!(shape, [(0, 0), (1, 0), (0, 1), (1, 0), (0, 2), (1, 0)]);
    assert_eq!(app.tree[1].asked_by.as_deref(), Some("127.0.0.1:8086"));
    snap("mirror_basic_auth", &app);
}

#[test]
fn connect_proxy_h2_shows_the_forward_proxy_and_verified_tls() {
    let app = app_of("connect-proxy-h2.pcapng");
    let row = &app.rows[0];
    assert_eq!(
        app.tls_mark(row),
        Some(crate::tui::app::TlsMark::Verified),
        "the session validates with the lab CA"
    );
    snap("connect_proxy_h2", &app);
    let wide = render(&app, 120, 40);
    assert!(
        wide.contains("via 127.0.0.1:8110 → lab.test:8109"),
        "{wide}"
    );
    assert!(wide.contains("tls✓"), "{wide}");
}

#[test]
fn tampered_zip_and_checksum_database_marks() {
    let app = app_of("tamper-sumdb-on.pcap");
    for r in &app.rows {
        assert!(r.h1_mismatch, "{}: checksum-mismatch names it", r.label);
        assert!(r.sumdb_lookup_ok, "{}: its lookup was answered", r.label);
    }
    snap("tamper_sumdb_on", &app);
    let narrow = render(&app, 80, 24);
    assert!(
        narrow.contains("h1✗") && narrow.contains("CRITICAL"),
        "{narrow}"
    );
}

#[test]
fn hop_detail_shows_headers_without_secrets_and_the_route() {
    let mut app = app_of("mirror-basic-auth.pcap");
    app.on_key(key(KeyCode::Tab));
    app.on_key(ch('g'));
    app.on_key(ch('j')); // the mirror's upstream request, with its credential
    app.on_key(key(KeyCode::Enter));
    assert!(matches!(app.detail, Some(Detail::Exchange(_))));
    snap("hop_detail_upstream", &app);
    let wide = render(&app, 120, 40);
    assert!(wide.contains("Basic mirror:***"), "{wide}");
    assert!(!wide.contains("bWlycm9y"), "{wide}");
    assert!(wide.contains("none: plain HTTP"), "{wide}");
    app.on_key(key(KeyCode::Esc));
    assert_eq!(app.detail, None);
}

#[test]
fn hop_detail_shows_the_tls_session_and_its_chain() {
    let mut app = app_of("connect-proxy-h2.pcapng");
    app.on_key(key(KeyCode::Enter)); // modules -> journey
    assert_eq!(app.focus, Pane::Journey);
    app.on_key(key(KeyCode::Enter));
    insta::assert_snapshot!("hop_detail_tls_120x40", render(&app, 120, 40));
    let wide = render(&app, 120, 40);
    assert!(wide.contains("certificate valid"), "{wide}");
    assert!(wide.contains("CN=modtrace lab CA"), "{wide}");
    assert!(wide.contains("decrypted"), "{wide}");
    assert!(wide.contains("HTTP/2"), "{wide}");
    // Scrolling reaches the end of the chain and stops there.
    for _ in 0..100 {
        app.on_key(ch('j'));
    }
    insta::assert_snapshot!("hop_detail_tls_scrolled_80x24", render(&app, 80, 24));
    let bottom = app.scroll.detail.get();
    app.on_key(ch('k'));
    assert_eq!(app.scroll.detail.get(), bottom - 1);
}

#[test]
fn finding_detail_explains_the_rule() {
    let mut app = app_of("fallback-410.pcap");
    app.on_key(key(KeyCode::BackTab));
    assert_eq!(app.focus, Pane::Findings);
    app.on_key(key(KeyCode::Enter));
    let Some(Detail::Finding(p)) = app.detail else {
        panic!("no finding detail: {:?}", app.detail);
    };
    // Most severe first: the first row is a high one.
    assert_eq!(app.findings[p].severity, Severity::High);
    snap("finding_detail", &app);
    let wide = render(&app, 120, 40);
    assert!(wide.contains("Module fetched over plain HTTP"), "{wide}");
    assert!(wide.contains("What it means"), "{wide}");
    assert!(wide.contains("Fix"), "{wide}");
    app.on_key(key(KeyCode::Esc));
    assert_eq!(app.detail, None);
}

#[test]
fn help_lists_every_key_and_any_key_closes_it() {
    let mut app = app_of("fallback-410.pcap");
    assert!(app.on_key(ch('?')).is_empty());
    assert!(app.help);
    snap("help", &app);
    let wide = render(&app, 120, 40);
    for b in KEYS {
        assert!(wide.contains(b.help), "{} missing from the help", b.label);
    }
    // 'q' closes the help; it does not quit.
    assert!(app.on_key(ch('q')).is_empty());
    assert!(!app.help && !app.quit);
}

#[test]
fn the_footer_is_the_key_table() {
    let app = app_of("fallback-410.pcap");
    let wide = render(&app, 200, 40);
    let footer = wide.lines().nth(39).unwrap();
    for b in KEYS.iter().filter(|b| !b.hint.is_empty()) {
        assert!(
            footer.contains(&format!("{} {}", b.label, b.hint)),
            "{footer}"
        );
    }
}

#[test]
fn filter_typing_applies_on_enter_and_esc_cancels() {
    let mut app = app_of("fallback-410.pcap");
    app.on_key(ch('/'));
    typed(&mut app, "utix");
    app.on_key(key(KeyCode::Backspace));
    typed(&mut app, "l");
    assert_eq!(app.filter_input.as_deref(), Some("util"));
    insta::assert_snapshot!("filter_typing_80x24", render(&app, 80, 24));
    // Esc cancels the typing: no filter.
    app.on_key(key(KeyCode::Esc));
    assert_eq!(
        (app.filter_input.as_deref(), app.filter.as_deref()),
        (None, None)
    );
    assert_eq!(app.visible_rows.len(), 2);
    // Typed keys are text, not commands.
    app.on_key(ch('/'));
    assert!(app.on_key(ch('q')).is_empty() && !app.quit);
    app.on_key(key(KeyCode::Backspace));
    typed(&mut app, "Util");
    app.on_key(key(KeyCode::Enter));
    assert_eq!(app.filter.as_deref(), Some("util"));
    assert_eq!(app.visible_rows, vec![1]);
    assert_eq!(app.selected_row, Some(1));
    // Findings: those naming the module.
    assert_eq!(app.visible_findings.len(), 6);
    snap("filter_util", &app);
    assert!(render(&app, 80, 24).contains("filter: util"));
    // A server matches too.
    app.on_key(ch('/'));
    for _ in 0..4 {
        app.on_key(key(KeyCode::Backspace));
    }
    typed(&mut app, "8083");
    app.on_key(key(KeyCode::Enter));
    assert_eq!(app.visible_rows.len(), 2);
    // And a rule id.
    app.on_key(ch('/'));
    for _ in 0..4 {
        app.on_key(key(KeyCode::Backspace));
    }
    typed(&mut app, "proxy-fallback");
    app.on_key(key(KeyCode::Enter));
    assert_eq!(app.visible_findings.len(), 6);
    // Esc with no detail open clears the filter.
    app.on_key(key(KeyCode::Esc));
    assert_eq!(app.filter, None);
    assert_eq!(app.visible_findings.len(), 12);
}

#[test]
fn findings_only_narrows_the_modules() {
    // Without Util's findings, only Hello has some.
    let updates: Vec<Update> = updates_of("fallback-410.pcap")
        .into_iter()
        .filter(|u| {
            !matches!(u, Update::Finding { finding, .. }
                if finding.module.as_deref() == Some("example.test/Util"))
        })
        .collect();
    let mut app = app_from(updates);
    assert_eq!(app.visible_rows.len(), 2);
    app.on_key(ch('j'));
    assert_eq!(app.selected_row, Some(1));
    app.on_key(ch('f'));
    assert!(app.findings_only);
    assert_eq!(app.visible_rows, vec![0]);
    assert_eq!(
        app.selected_row,
        Some(0),
        "the selection moves to a listed row"
    );
    snap("findings_only", &app);
    app.on_key(ch('f'));
    assert_eq!(app.visible_rows.len(), 2);
}

#[test]
fn replay_keys_send_commands() {
    let mut app = app_of("fallback-410.pcap");
    assert_eq!(app.on_key(ch(' ')), vec![Command::TogglePause]);
    assert_eq!(app.on_key(ch('.')), vec![Command::Step]);
    assert_eq!(app.on_key(ch('n')), vec![Command::StepToFinding]);
    assert_eq!(app.status.speed, Speed::Max);
    assert_eq!(
        app.on_key(ch('-')),
        vec![Command::SetSpeed(Speed::Times(10))]
    );
    assert_eq!(
        app.on_key(ch('-')),
        vec![Command::SetSpeed(Speed::Times(5))]
    );
    assert_eq!(
        app.on_key(ch('+')),
        vec![Command::SetSpeed(Speed::Times(10))]
    );
    assert_eq!(
        app.on_key(ch('w')),
        vec![Command::WriteReport(PathBuf::from("modtrace-report.json"))]
    );
    // A key release (some terminals report them) does nothing.
    let mut release = ch(' ');
    release.kind = KeyEventKind::Release;
    assert!(app.on_key(release).is_empty());
    assert!(!app.quit);
    assert_eq!(app.on_key(ch('q')), vec![Command::Quit]);
    assert!(app.quit);
    let mut app = App::new(Status::default());
    assert_eq!(
        app.on_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
        vec![Command::Quit]
    );
    assert!(app.quit);
}

#[test]
fn paused_status_and_notes_show_in_the_status_bar() {
    let mut app = app_of("fallback-410.pcap");
    app.apply(Update::Status(Status {
        source: "fallback-410.pcap".into(),
        packets: 20,
        bytes: 3000,
        rate: 2048.0,
        clock: Some(crate::time::Ts(1_795_489_258_390_000_000)),
        speed: Speed::Times(2),
        paused: true,
        ..Status::default()
    }));
    app.apply(Update::Note(
        "report written to modtrace-report.json".into(),
    ));
    let s = render(&app, 120, 40);
    let bar = s.lines().nth(38).unwrap();
    for want in [
        "fallback-410.pcap",
        "20 packets, 2.9 KiB",
        "2.0 KiB/s",
        "2x",
        "PAUSED",
        "report written",
    ] {
        assert!(bar.contains(want), "{want}: {bar}");
    }
    assert!(!bar.contains("2026-"), "time of day only: {bar}");
    app.apply(Update::Status(Status {
        live: true,
        drops: Some(3),
        ..Status::default()
    }));
    let bar = render(&app, 120, 40).lines().nth(38).unwrap().to_string();
    assert!(bar.contains("LIVE") && bar.contains("3 dropped"), "{bar}");
}

#[test]
fn tab_and_movement_follow_the_focus() {
    let mut app = app_of("fallback-410.pcap");
    assert_eq!(app.focus, Pane::Modules);
    assert_eq!(app.selected_row, Some(0));
    app.on_key(key(KeyCode::Down));
    assert_eq!(app.selected_row, Some(1));
    assert!(app.tree[0].hop.url.contains("%21util"));
    app.on_key(key(KeyCode::Down));
    assert_eq!(app.selected_row, Some(1), "stays on the last row");
    app.on_key(ch('k'));
    assert_eq!(app.selected_row, Some(0));
    app.on_key(key(KeyCode::Tab));
    assert_eq!(app.focus, Pane::Journey);
    app.on_key(key(KeyCode::End));
    assert_eq!(app.selected_line, 5);
    app.on_key(key(KeyCode::Home));
    assert_eq!(app.selected_line, 0);
    app.on_key(key(KeyCode::Tab));
    assert_eq!(app.focus, Pane::Findings);
    let first = app.selected_finding;
    app.on_key(ch('j'));
    assert_ne!(app.selected_finding, first);
    app.on_key(key(KeyCode::Tab));
    assert_eq!(app.focus, Pane::Modules);
    // Tab does not move focus under the detail view.
    app.on_key(key(KeyCode::Tab));
    app.on_key(key(KeyCode::Enter));
    assert!(app.detail.is_some());
    app.on_key(key(KeyCode::Tab));
    assert_eq!(app.focus, Pane::Journey);
}

/// Terminal sizes a screen must survive: empty, one cell, around the layout's thresholds, very
/// wide or tall, the usual ones.
pub(crate) const ODD_SIZES: &[(u16, u16)] = &[
    (0, 0),
    (1, 1),
    (10, 3),
    (29, 7),
    (30, 8),
    (31, 9),
    (40, 10),
    (200, 2),
    (3, 60),
    (80, 24),
    (250, 70),
];

#[test]
fn tiny_and_odd_sizes_do_not_panic() {
    let mut app = app_of("mirror-basic-auth.pcap");
    for &(w, h) in ODD_SIZES {
        render(&app, w, h);
        app.help = true;
        render(&app, w, h);
        app.help = false;
        app.detail = Some(Detail::Exchange(1));
        render(&app, w, h);
        app.detail = Some(Detail::Finding(0));
        render(&app, w, h);
        app.detail = Some(Detail::Exchange(999_999));
        render(&app, w, h);
        app.detail = None;
        app.filter_input = Some("x".into());
        render(&app, w, h);
        app.filter_input = None;
    }
    // An empty app too.
    let empty = App::new(Status::default());
    for (w, h) in [(0, 0), (10, 3), (80, 24)] {
        render(&empty, w, h);
    }
    insta::assert_snapshot!("empty_80x24", render(&empty, 80, 24));
    insta::assert_snapshot!("tiny_10x3", render(&app, 10, 3));
}

#[test]
fn resizing_keeps_the_selection_visible() {
    let mut app = app_of("redirect-loop.pcap");
    app.on_key(key(KeyCode::Tab));
    app.on_key(key(KeyCode::End));
    let tall = render(&app, 120, 40);
    assert!(tall.contains("#9 "), "{tall}");
    let short = render(&app, 80, 12);
    assert!(short.contains("#9 "), "{short}");
    let tall = render(&app, 120, 40);
    assert!(tall.contains("#9 "), "{tall}");
}

#[test]
fn header_values_never_show_secrets() {
    assert_eq!(
        safe_header_value("Authorization", "Basic mirror:***"),
        "Basic mirror:***"
    );
    assert_eq!(
        safe_header_value("authorization", "Bearer ***"),
        "Bearer ***"
    );
    // Not in the redacted form: the value goes.
    assert_eq!(
        safe_header_value("Authorization", "Basic bWlycm9yOmxhYi1zZWNyZXQ="),
        "Basic ***"
    );
    assert_eq!(
        safe_header_value("Proxy-Authorization", "Bearer abc.def"),
        "Bearer ***"
    );
    assert_eq!(
        safe_header_value("Authorization", "Basic a b:***"),
        "Basic ***"
    );
    assert_eq!(
        safe_header_value("Cookie", "session=s3cret; theme=***"),
        "session=***; theme=***"
    );
    assert_eq!(
        safe_header_value("Set-Cookie", "id=abc; Path=/; HttpOnly"),
        "id=***; Path=/; HttpOnly"
    );
    assert_eq!(safe_header_value("Host", "lab.test"), "lab.test");
}

#[test]
fn control_characters_from_the_wire_are_shown_escaped() {
    assert_eq!(clean("a\x1b[2Jb"), "a\\u{1b}[2Jb");
    assert_eq!(clean("plain"), "plain");
    assert_eq!(fit("abcdef", 4), "abc…");
    assert_eq!(fit("abc", 4), "abc");
    assert_eq!(wrap("aaa bbb ccc", 8), ["aaa bbb", "ccc"]);
    assert_eq!(wrap(&"x".repeat(20), 8).len(), 3);
    assert_eq!(human_bytes(1023), "1023 B");
    assert_eq!(human_bytes(6977), "6.8 KiB");
}

// ---- Synthetic journeys: order independence and 10,000 modules ----

fn exchange(id: u64, module: usize, file: &str, status: u16, port: u16) -> Exchange {
    let url = format!("http://127.0.0.1:{port}/example.test/m{module}/@v/v1.0.0.{file}");
    let c = crate::gomod::classify("GET", &url);
    let start = crate::time::Ts(1_000_000 * id as i64);
    Exchange {
        id,
        method: "GET".into(),
        url,
        status: Some(status),
        client: "127.0.0.1:40000".parse().unwrap(),
        server: format!("127.0.0.1:{port}").parse().unwrap(),
        server_name: None,
        host: None,
        scheme: "http".into(),
        op: c.op,
        module: c.module,
        version: c.version,
        bytes: 100 + id,
        location: None,
        start,
        duration_ms: Some(0.5),
        flow: id,
        packet: id * 4,
        base: c.base,
        credential: None,
        redirect_from: None,
        via: None,
        complete: true,
        h1: None,
        sha256: None,
        process: None,
        end: crate::time::Ts(start.0 + 500_000),
        request_headers: Vec::new(),
        response_headers: Vec::new(),
        http_version: "HTTP/1.1",
    }
}

/// Updates as the feed sends them for `modules` modules of three hops each (a 410 then a
/// fallback 200 for the info).
fn synthetic(modules: usize) -> Vec<Update> {
    let mut t = Tracker::new();
    let mut out = Vec::new();
    let mut id = 0;
    for m in 0..modules {
        for (file, status, port) in [("info", 410, 8082), ("info", 200, 8083), ("zip", 200, 8083)] {
            id += 1;
            let mut x = exchange(id, m, file, status, port);
            let o = t.on_exchange(&mut x);
            out.push(Update::Exchange(Box::new(x)));
            if let Some(ji) = o.journey {
                out.push(Update::Journey {
                    index: ji,
                    journey: Box::new(t.journeys()[ji].clone()),
                });
            }
        }
    }
    out
}

#[test]
fn a_finding_before_its_journey_is_filed_under_it() {
    let updates = synthetic(2);
    let mut f = updates_of("fallback-410.pcap")
        .into_iter()
        .find_map(|u| match u {
            Update::Finding { finding, .. } => Some(finding),
            _ => None,
        })
        .unwrap();
    f.module = None;
    f.evidence.exchanges = vec![5]; // module 1's second hop
    let mut app = App::new(Status::default());
    app.apply(Update::Finding {
        index: 0,
        finding: f.clone(),
    });
    for u in updates {
        app.apply(u);
    }
    assert_eq!(app.rows.len(), 2);
    assert!(app.rows[0].findings.is_empty());
    assert_eq!(app.rows[1].findings, vec![0]);
    assert_eq!(app.rows[1].fallbacks, 1);
    // Sent again with more evidence: still one finding, now on both rows.
    f.evidence.exchanges.push(1);
    app.apply(Update::Finding {
        index: 0,
        finding: f,
    });
    assert_eq!(app.findings.len(), 1);
    assert_eq!(app.counts.iter().sum::<usize>(), 1);
    assert_eq!(app.rows[0].findings, vec![0]);
}

/// 10,000 modules: applying their updates and drawing stays cheap. Prints the time per frame
/// (`cargo test --lib tui::view -- --nocapture ten_thousand`); asserts nothing about time.
#[test]
fn ten_thousand_modules() {
    let updates = synthetic(10_000);
    let n = updates.len();
    let start = std::time::Instant::now();
    let mut app = App::new(Status::default());
    for u in updates {
        app.apply(u);
    }
    let applied = start.elapsed();
    assert_eq!(app.rows.len(), 10_000);
    assert_eq!(app.visible_rows.len(), 10_000);
    let mut t = Terminal::new(TestBackend::new(120, 40)).unwrap();
    // Somewhere in the middle, with the findings-only filter and a text filter switched on
    // and off.
    for _ in 0..5000 {
        app.on_key(ch('j'));
    }
    let frames = 50;
    let start = std::time::Instant::now();
    for i in 0..frames {
        app.on_key(ch(if i % 2 == 0 { 'j' } else { 'k' }));
        t.draw(|f| draw(&app, f)).unwrap();
    }
    let per_frame = start.elapsed() / frames;
    let start = std::time::Instant::now();
    app.on_key(ch('/'));
    typed(&mut app, "m9999");
    app.on_key(key(KeyCode::Enter));
    let refilter = start.elapsed();
    assert_eq!(app.visible_rows.len(), 1);
    // The same frame with two modules, for comparison.
    let small = app_of("fallback-410.pcap");
    let start = std::time::Instant::now();
    for _ in 0..frames {
        t.draw(|f| draw(&small, f)).unwrap();
    }
    let small_frame = start.elapsed() / frames;
    eprintln!(
        "10,000 modules: {n} updates applied in {applied:?}; {per_frame:?} per 120x40 frame \
         (2 modules: {small_frame:?}); filter applied in {refilter:?}"
    );
    t.draw(|f| draw(&app, f)).unwrap();
    let screen = t.backend().to_string();
    assert!(screen.contains("example.test/m9999"), "{screen}");
    assert!(screen.contains("Modules 1 of 10000"), "{screen}");
}
