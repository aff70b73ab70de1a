//! The demo's explanation panel: what it says about the app's state ([`App::subject`]): the
//! lesson's story, a finding's own message with its rule's meaning and fix, or what to point at
//! when the act ends. The stories come from the lessons; what a finding means and how to fix it
//! come from [`crate::detect::rules::RULES`] (the texts `modtrace explain` and the SARIF help
//! print), never written here.

use super::app::App;
use super::demo::{DemoState, Subject};
use crate::detect::Finding;

/// How a section of the panel is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    Plain,
    /// What was seen on the wire.
    Wire,
    /// Why it is dangerous.
    Danger,
    /// How to fix it.
    Fix,
    /// What to do next in the TUI.
    Hint,
}

/// One paragraph of the panel: an optional label, then its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    pub label: Option<&'static str>,
    pub text: String,
    pub tone: Tone,
}

fn section(label: &'static str, text: impl Into<String>, tone: Tone) -> Section {
    Section {
        label: Some(label),
        text: text.into(),
        tone,
    }
}

fn hint(text: impl Into<String>) -> Section {
    Section {
        label: None,
        text: text.into(),
        tone: Tone::Hint,
    }
}

/// What to press at the end of an act.
pub fn next_act_hint(demo: &DemoState) -> &'static str {
    if demo.is_last() {
        "last act: [ goes back, q quits"
    } else {
        "press ] for the next act"
    }
}

/// The panel's paragraphs, below its header; empty outside a demo.
pub fn explanation(app: &App) -> Vec<Section> {
    let (Some(demo), Some(subject)) = (app.demo.as_ref(), app.subject()) else {
        return Vec::new();
    };
    let act = demo.act;
    let half = act.half();
    match subject {
        Subject::Unavailable => vec![
            section(
                "Not available",
                demo.unavailable.clone().unwrap_or_default(),
                Tone::Danger,
            ),
            section("The story", act.lesson.story, Tone::Plain),
            hint(format!(
                "{} · [ previous act · q quits",
                next_act_hint(demo)
            )),
        ],
        Subject::Intro => vec![
            section("The story", act.lesson.story, Tone::Plain),
            section("This half", half.outcome, Tone::Plain),
            hint(if app.status.paused && app.status.packets == 0 {
                "Press space to start the replay. It stops at each finding: space goes on, n runs to the next one."
            } else {
                "The replay stops at each finding: space goes on, n runs to the next one."
            }),
        ],
        Subject::Finding(p) => match app.findings.get(p) {
            Some(f) => finding_sections(app, p, f),
            None => Vec::new(),
        },
        Subject::End => {
            let mut out = vec![
                section("What to look at", act.lesson.show, Tone::Plain),
                section("This half", half.outcome, Tone::Plain),
            ];
            let found = if app.findings.is_empty() {
                "none: nothing on the wire to report".to_string()
            } else {
                // Rule ids in order of first appearance (at most one per rule).
                let mut ids: Vec<&str> = Vec::new();
                for f in &app.findings {
                    if !ids.contains(&f.rule.id()) {
                        ids.push(f.rule.id());
                    }
                }
                format!(
                    "{} ({}); Tab to the Findings pane, Enter explains each",
                    app.findings.len(),
                    ids.join(", ")
                )
            };
            out.push(section("Findings", found, Tone::Plain));
            out.push(hint(next_act_hint(demo)));
            out
        }
    }
}

fn finding_sections(app: &App, pos: usize, f: &Finding) -> Vec<Section> {
    let text = f.rule.text();
    let mut out = vec![
        Section {
            label: None,
            text: format!(
                "Finding {} of {} so far: {} {} · {}",
                pos + 1,
                app.findings.len(),
                f.severity.as_str().to_uppercase(),
                text.id,
                text.title
            ),
            tone: Tone::Plain,
        },
        section("On the wire", f.message.as_str(), Tone::Wire),
        section("Why it is dangerous", text.meaning, Tone::Danger),
        section("Fix", text.fix, Tone::Fix),
    ];
    out.push(hint(if app.status.paused {
        "Paused: space goes on, n runs to the next finding, ] skips to the next act."
    } else {
        "n stops at the next finding; ] skips to the next act."
    }));
    out
}
