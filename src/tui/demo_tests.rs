//! The demo: the acts in order and the act keys, what the explanation panel says (a finding's
//! own message, its rule's meaning and fix from RULES), and a snapshot of every act where the
//! demo first pauses: at its first finding, or at its end when it has none (100x30, with the
//! status frozen as in view_tests: rate 0, the capture's clock, the file name).

use super::*;
use crate::detect::rules::Rule;
use crate::pipeline::{Analyzer, Config};
use crate::source::MergedSource;
use crate::tui::app::{Action, App, Pane, DEMO_KEYS, KEYS};
use crate::tui::explain::{explanation, next_act_hint};
use crate::tui::feed::{config_with_embedded_keys, drain_updates, source_label};
use crate::tui::{view, Command, Speed, Status, Update};
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;

/// The captures folder the lessons' recordings are read from: the repository's (recorded by
/// `lab run --record` into captures/training). Relative, so that paths in the findings (the
/// go.sum's) and thus the snapshots are the same on every machine: `cargo test` runs in the
/// package's root.
fn demo_dir() -> PathBuf {
    PathBuf::from("captures")
}

/// The lessons' analysis configuration, as `modtrace demo` builds it.
fn config() -> Config {
    crate::cli::lesson_analysis_options(&demo_dir())
        .and_then(|o| o.config())
        .expect("the lessons' flags")
}

fn act_of(lesson: &str, kind: HalfKind) -> Act {
    Act {
        lesson: crate::lesson::find(lesson).expect("a lesson"),
        kind,
    }
}

fn demo_app(act: Act) -> App {
    let playlist = Playlist::starting_at(act.lesson, act.kind);
    App::for_demo(Status::default(), DemoState::of(&playlist))
}

/// The act replayed as the demo does (frame by frame, updates in order) until the frame that
/// brought the first finding, where the demo pauses; or to the end. Also whether it paused.
fn at_first_pause(act: Act) -> (App, bool) {
    let file = act.capture(&demo_dir());
    assert!(file.is_file(), "{}", act.missing_recording(&demo_dir()));
    let files = [file];
    let cfg = config_with_embedded_keys(&files, config()).unwrap();
    let mut src = MergedSource::open(&files).unwrap();
    let mut an = Analyzer::new(cfg);
    let mut app = demo_app(act);
    let mut out = Vec::new();
    let status = |an: &Analyzer, paused: bool, finished: bool| {
        let st = an.stats();
        Update::Status(Status {
            source: source_label(&files),
            packets: st.packets,
            bytes: st.bytes,
            clock: st.last,
            speed: Speed::Times(1),
            paused,
            finished,
            ..Status::default()
        })
    };
    while let Some(frame) = src.next_frame().unwrap() {
        an.on_frame(&frame);
        src.recycle(frame);
        drain_updates(&mut an, &mut out);
        let found = out.iter().any(|u| matches!(u, Update::Finding { .. }));
        for u in out.drain(..) {
            app.apply(u);
        }
        if found {
            app.apply(status(&an, true, false));
            return (app, true);
        }
    }
    an.finish();
    drain_updates(&mut an, &mut out);
    for u in out.drain(..) {
        app.apply(u);
    }
    app.apply(status(&an, false, true));
    (app, false)
}

fn render(app: &App, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| view::draw(app, f)).unwrap();
    if w == 0 {
        return String::new();
    }
    t.backend().to_string()
}

fn ch(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

/// The screen with the panel scrolled to its end (as J would), then back at its top.
fn panel_bottom(app: &App, w: u16, h: u16) -> String {
    app.scroll.panel.set(usize::MAX);
    let s = render(app, w, h);
    app.scroll.panel.set(0);
    s
}

/// The panel's text as one string (labels and paragraphs).
fn panel_text(app: &App) -> String {
    explanation(app)
        .iter()
        .map(|s| format!("{}: {}", s.label.unwrap_or("-"), s.text))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The act where it first pauses, checked and snapshotted.
fn snapshot_act(lesson: &str, kind: HalfKind) {
    let act = act_of(lesson, kind);
    let (app, paused) = at_first_pause(act);
    let screen = render(&app, 100, 30);
    // The header, as far as it fits on the panel's first line.
    let lead = format!(
        "Lesson {}/5 {} · {}",
        act.lesson.number,
        lesson,
        kind.as_str()
    );
    assert!(screen.contains(&lead), "{lead}:\n{screen}");
    let sections = explanation(&app);
    if paused {
        // Paused at a finding: its message, and its rule's meaning and fix.
        let Some(Subject::Finding(p)) = app.subject() else {
            panic!("paused without a finding subject: {:?}", app.subject());
        };
        let f = &app.findings[p];
        let text = f.rule.text();
        for (label, want) in [
            ("On the wire", f.message.as_str()),
            ("Why it is dangerous", text.meaning),
            ("Fix", text.fix),
        ] {
            assert!(
                sections
                    .iter()
                    .any(|s| s.label == Some(label) && s.text == want),
                "{label}: {want}\n{sections:?}"
            );
            // On screen, or further down the panel (J scrolls it).
            assert!(
                screen.contains(&format!("{label}:"))
                    || panel_bottom(&app, 100, 30).contains(&format!("{label}:")),
                "{label}:\n{screen}"
            );
        }
        assert!(screen.contains("PAUSED"), "{screen}");
    } else {
        // No finding in the whole act: the end, with what to look at.
        assert!(app.findings.is_empty());
        assert_eq!(app.subject(), Some(Subject::End));
        assert!(screen.contains("What to look at:"), "{screen}");
        let next = next_act_hint(app.demo.as_ref().unwrap());
        assert!(screen.contains(next), "{screen}");
    }
    let name = format!(
        "demo_{}_{}_{}_100x30",
        act.lesson.number,
        lesson.replace('-', "_"),
        kind.as_str()
    );
    insta::assert_snapshot!(name, screen);
}

#[test]
fn act_1_sumdb_off_unsafe() {
    snapshot_act("sumdb-off", HalfKind::Unsafe);
}
#[test]
fn act_2_sumdb_off_safe() {
    snapshot_act("sumdb-off", HalfKind::Safe);
}
#[test]
fn act_3_mitm_legs_unsafe() {
    snapshot_act("mitm-legs", HalfKind::Unsafe);
}
#[test]
fn act_4_mitm_legs_safe() {
    snapshot_act("mitm-legs", HalfKind::Safe);
}
#[test]
fn act_5_proxy_order_unsafe() {
    snapshot_act("proxy-order", HalfKind::Unsafe);
}
#[test]
fn act_6_proxy_order_safe() {
    snapshot_act("proxy-order", HalfKind::Safe);
}
#[test]
fn act_7_redirect_loop_unsafe() {
    snapshot_act("redirect-loop", HalfKind::Unsafe);
}
#[test]
fn act_8_redirect_loop_safe() {
    snapshot_act("redirect-loop", HalfKind::Safe);
}
#[test]
fn act_9_creds_on_wire_unsafe() {
    snapshot_act("creds-on-wire", HalfKind::Unsafe);
}
#[test]
fn act_10_creds_on_wire_safe() {
    snapshot_act("creds-on-wire", HalfKind::Safe);
}

#[test]
fn acts_alternate_halves_in_lesson_order() {
    let all = acts();
    assert_eq!(all.len(), 10);
    for (i, a) in all.iter().enumerate() {
        assert_eq!(usize::from(a.lesson.number), i / 2 + 1);
        let want = if i % 2 == 0 {
            HalfKind::Unsafe
        } else {
            HalfKind::Safe
        };
        assert_eq!(a.kind, want);
    }
    assert_eq!(
        all[0].header(),
        "Lesson 1/5 sumdb-off · unsafe · GOSUMDB=off"
    );
    assert_eq!(
        all[1].capture(Path::new("c")),
        PathBuf::from("c/training/sumdb-off.safe.pcapng")
    );
}

#[test]
fn the_playlist_starts_at_the_chosen_half_and_stops_at_both_ends() {
    let lesson = crate::lesson::find("3").unwrap();
    let mut p = Playlist::starting_at(lesson, HalfKind::Safe);
    assert_eq!(p.current(), act_of("proxy-order", HalfKind::Safe));
    assert_eq!(p.position(), (6, 10));
    assert!(p.step(ActMove::Next));
    assert_eq!(p.current(), act_of("redirect-loop", HalfKind::Unsafe));
    assert!(p.step(ActMove::Previous));
    assert!(p.step(ActMove::Previous));
    assert_eq!(p.current(), act_of("proxy-order", HalfKind::Unsafe));
    // To the first act, and no further.
    while p.step(ActMove::Previous) {}
    assert_eq!(p.position(), (1, 10));
    assert!(!p.step(ActMove::Previous));
    assert_eq!(p.current(), act_of("sumdb-off", HalfKind::Unsafe));
    while p.step(ActMove::Next) {}
    assert_eq!(p.current(), act_of("creds-on-wire", HalfKind::Safe));
    assert!(!p.step(ActMove::Next));
}

#[test]
fn act_keys_ask_the_loop_for_another_act_except_past_the_ends() {
    let mut first = demo_app(act_of("sumdb-off", HalfKind::Unsafe));
    assert_eq!(first.on_key(ch(']')), vec![Command::Act(ActMove::Next)]);
    assert!(first.on_key(ch('[')).is_empty());
    assert_eq!(first.note.as_deref(), Some("this is the first act"));
    let mut last = demo_app(act_of("creds-on-wire", HalfKind::Safe));
    assert_eq!(last.on_key(ch('[')), vec![Command::Act(ActMove::Previous)]);
    assert!(last.on_key(ch(']')).is_empty());
    assert_eq!(last.note.as_deref(), Some("this is the last act"));
    // The replay keys still work in a demo.
    assert_eq!(first.on_key(ch('n')), vec![Command::StepToFinding]);
    assert_eq!(first.on_key(ch(' ')), vec![Command::TogglePause]);
    // Outside a demo the act keys do nothing.
    let mut replay = App::new(Status::default());
    assert!(replay.on_key(ch(']')).is_empty() && replay.on_key(ch('[')).is_empty());
    assert_eq!(replay.act(Action::NextAct), Vec::new());
    assert!(replay.note.is_none());
}

#[test]
fn the_demo_keys_are_in_the_help_and_footer_only_in_a_demo() {
    let (mut app, _) = at_first_pause(act_of("sumdb-off", HalfKind::Unsafe));
    let screen = render(&app, 120, 40);
    let footer = screen.lines().nth(39).unwrap();
    assert!(footer.contains("] next act"), "{footer}");
    assert!(footer.contains("[ prev act"), "{footer}");
    app.on_key(ch('?'));
    let help = render(&app, 120, 40);
    for b in DEMO_KEYS.iter().chain(KEYS) {
        assert!(
            help.contains(b.help),
            "{} missing from the help:\n{help}",
            b.label
        );
    }
    // A plain replay shows none of them.
    let mut plain = App::new(Status::default());
    let screen = render(&plain, 200, 40);
    assert!(!screen.contains("next act"), "{screen}");
    plain.on_key(ch('?'));
    assert!(!render(&plain, 120, 40).contains("demo:"));
}

/// The panel's subject: the story before any finding, the finding the replay paused at (its
/// own message, its rule's meaning and fix), then the lesson's `show` text at the end.
#[test]
fn the_panel_tells_the_story_then_explains_each_finding_then_what_to_look_at() {
    let act = act_of("sumdb-off", HalfKind::Unsafe);
    let mut app = demo_app(act);
    // As the demo opens an act: paused before the first packet, on the story.
    app.apply(Update::Status(Status {
        source: "sumdb-off.unsafe.pcapng".into(),
        speed: Speed::Times(1),
        paused: true,
        ..Status::default()
    }));
    assert_eq!(app.subject(), Some(Subject::Intro));
    let text = panel_text(&app);
    assert!(text.contains(act.lesson.story), "{text}");
    assert!(text.contains(act.half().outcome), "{text}");
    assert!(text.contains("Press space to start"), "{text}");
    assert!(!text.contains("Why it is dangerous"), "{text}");
    let screen = render(&app, 100, 30);
    assert!(screen.contains("The story:"), "{screen}");
    insta::assert_snapshot!("demo_1_sumdb_off_unsafe_intro_100x30", screen);
    insta::assert_snapshot!("demo_1_sumdb_off_unsafe_intro_80x24", render(&app, 80, 24));

    // Every update of the act, one at a time: at each new finding, the panel explains it.
    let updates = crate::tui::feed::replay_to_end(&[act.capture(&demo_dir())], config()).unwrap();
    let mut explained = Vec::new();
    for u in updates {
        let finished = matches!(&u, Update::Status(s) if s.finished);
        let before = app.findings.len();
        app.apply(u);
        if finished {
            break; // the end: checked below
        }
        if app.findings.len() > before {
            let Some(Subject::Finding(p)) = app.subject() else {
                panic!("no finding subject: {:?}", app.subject());
            };
            assert_eq!(p, app.findings.len() - 1, "the newest finding");
            assert_eq!(
                app.selected_finding,
                Some(p),
                "selected in the Findings pane"
            );
            let f = &app.findings[p];
            let t = f.rule.text();
            let text = panel_text(&app);
            assert!(
                text.contains(&format!("On the wire: {}", f.message)),
                "{text}"
            );
            assert!(
                text.contains(&format!("Why it is dangerous: {}", t.meaning)),
                "{text}"
            );
            assert!(text.contains(&format!("Fix: {}", t.fix)), "{text}");
            assert!(!text.contains(act.lesson.story), "{text}");
            explained.push(f.rule);
        }
    }
    // The lesson's point: the tampered zips, explained by checksum-mismatch.
    assert!(explained.contains(&Rule::ChecksumMismatch), "{explained:?}");
    assert_eq!(app.subject(), Some(Subject::End));
    let text = panel_text(&app);
    assert!(text.contains(act.lesson.show), "{text}");
    assert!(text.contains("checksum-mismatch"), "{text}");
    assert!(text.contains("press ] for the next act"), "{text}");
    let screen = render(&app, 100, 30);
    assert!(
        screen.contains("FINISHED │ press ] for the next act"),
        "{screen}"
    );
    insta::assert_snapshot!("demo_1_sumdb_off_unsafe_end_100x30", screen);
    insta::assert_snapshot!("demo_1_sumdb_off_unsafe_end_80x24", render(&app, 80, 24));
}

/// Moving in the Findings pane explains the finding selected there.
#[test]
fn the_panel_explains_the_selected_finding() {
    let act = act_of("redirect-loop", HalfKind::Unsafe);
    let mut app = demo_app(act);
    let updates = crate::tui::feed::replay_to_end(&[act.capture(&demo_dir())], config()).unwrap();
    // All but the final status: still running, every finding in.
    for u in updates {
        if !matches!(&u, Update::Status(s) if s.finished) {
            app.apply(u);
        }
    }
    assert!(app.findings.len() >= 2);
    app.on_key(KeyEvent::new(KeyCode::BackTab, KeyModifiers::NONE));
    assert_eq!(app.focus, Pane::Findings);
    app.on_key(ch('g'));
    let first = app.selected_finding.unwrap();
    assert_eq!(app.subject(), Some(Subject::Finding(first)));
    app.on_key(ch('j'));
    let second = app.selected_finding.unwrap();
    assert_ne!(first, second);
    assert_eq!(app.subject(), Some(Subject::Finding(second)));
    let text = panel_text(&app);
    assert!(text.contains(&app.findings[second].message), "{text}");
}

/// J/K scroll the panel; the view keeps it within the text; a new subject starts at the top.
#[test]
fn the_panel_scrolls_and_starts_at_the_top_for_a_new_subject() {
    let (mut app, paused) = at_first_pause(act_of("sumdb-off", HalfKind::Unsafe));
    assert!(paused);
    for _ in 0..100 {
        app.on_key(ch('J'));
    }
    let screen = render(&app, 80, 24);
    let bottom = app.scroll.panel.get();
    assert!(bottom > 0 && bottom < 100, "clamped by the view: {bottom}");
    assert!(screen.contains("end"), "{screen}");
    // The header stays on screen while the text scrolls.
    assert!(screen.contains("Lesson 1/5 sumdb-off · unsafe"), "{screen}");
    app.on_key(ch('K'));
    assert_eq!(app.scroll.panel.get(), bottom - 1);
    // The end of the act: another subject, from the top.
    app.apply(Update::Status(Status {
        finished: true,
        ..app.status.clone()
    }));
    assert_eq!(app.scroll.panel.get(), 0);
}

/// An act whose recording is missing says so in the panel (the other acts stay reachable).
#[test]
fn an_unavailable_act_says_why_and_how_to_record_it() {
    let act = act_of("mitm-legs", HalfKind::Safe);
    let mut app = demo_app(act);
    let why = act.missing_recording(Path::new("/nowhere"));
    assert!(
        why.contains("/nowhere/training/mitm-legs.safe.pcapng"),
        "{why}"
    );
    assert!(
        why.contains("lab run mitm-legs --record /nowhere/training/mitm-legs.pcapng"),
        "{why}"
    );
    app.demo.as_mut().unwrap().unavailable = Some(why.clone());
    app.status.finished = true;
    assert_eq!(app.subject(), Some(Subject::Unavailable));
    assert!(panel_text(&app).contains(&why));
    let screen = render(&app, 100, 30);
    assert!(screen.contains("Not available:"), "{screen}");
    assert!(screen.contains("press ] for the next act"), "{screen}");
}

#[test]
fn tiny_and_odd_sizes_do_not_panic_in_a_demo() {
    let (mut app, _) = at_first_pause(act_of("sumdb-off", HalfKind::Unsafe));
    // Around the panel's own thresholds too (beside the panes from 150 columns).
    let demo_sizes = [(80, 12), (149, 40), (150, 40)];
    for &(w, h) in crate::tui::view::tests::ODD_SIZES.iter().chain(&demo_sizes) {
        render(&app, w, h);
        app.scroll.panel.set(usize::MAX);
        render(&app, w, h);
        app.help = true;
        render(&app, w, h);
        app.help = false;
    }
    // The narrow screen still shows the essentials of the pause.
    app.scroll.panel.set(0);
    let narrow = render(&app, 80, 24);
    insta::assert_snapshot!("demo_1_sumdb_off_unsafe_80x24", narrow.clone());
    for want in ["Lesson 1/5 sumdb-off · unsafe", "On the wire:", "PAUSED"] {
        assert!(narrow.contains(want), "{want}:\n{narrow}");
    }
    // A wide screen puts the panel beside the panes, with the whole explanation.
    let wide = render(&app, 160, 40);
    insta::assert_snapshot!("demo_1_sumdb_off_unsafe_160x40", wide.clone());
    for want in ["Why it is dangerous:", "Fix:", "Journey"] {
        assert!(wide.contains(want), "{want}:\n{wide}");
    }
}
