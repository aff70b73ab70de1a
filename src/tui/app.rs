//! The TUI's state: what the analysis reported so far and where the user is. Pure: updates
//! and keys in, commands out; no I/O, no clock.
//!
//! Sized for captures with many modules: an update touches only what it names (one row, one
//! finding), lists keep their order incrementally, and the view draws only the rows on screen.

use super::demo::{ActMove, DemoState, Subject};
use super::{Command, Status, Update};
use crate::detect::tls::TlsRecord;
use crate::detect::{Finding, Rule, Severity};
use crate::flow::FlowId;
use crate::gomod::{Exchange, Hop, HopLink, Journey, Op};
use crate::time::Ts;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Where `w` writes the report (the working directory, like `-o` without a path would).
pub const REPORT_FILE: &str = "modtrace-report.json";

/// Exchanges kept whole (with headers) for the detail view; older ones are dropped.
pub const MAX_FULL_EXCHANGES: usize = 20_000;
/// Exchanges kept as a hop line's numbers (bytes, time, flow); older ones are dropped.
pub const MAX_HOP_INFO: usize = 1_000_000;
/// TLS sessions kept, by flow.
pub const MAX_TLS_RECORDS: usize = 100_000;
/// Journeys with more hops than this are drawn flat: nesting upstream hops is quadratic.
pub const MAX_NESTED_HOPS: usize = 512;
/// Longest filter text and status note kept.
const MAX_FILTER_CHARS: usize = 200;
const MAX_NOTE_CHARS: usize = 500;

/// The panes Tab cycles through, top to bottom.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Pane {
    #[default]
    Modules,
    Journey,
    Findings,
}

impl Pane {
    fn next(self) -> Pane {
        match self {
            Pane::Modules => Pane::Journey,
            Pane::Journey => Pane::Findings,
            Pane::Findings => Pane::Modules,
        }
    }
    fn prev(self) -> Pane {
        self.next().next()
    }
}

/// What the detail overlay shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detail {
    /// A hop: the exchange with this id.
    Exchange(u64),
    /// A hop that is a connection which failed before any request: its flow.
    Attempt(u64),
    /// A finding: its position in [`App::findings`].
    Finding(usize),
}

/// What a hop line needs of its exchange, kept for far more exchanges than whole ones.
#[derive(Clone, Copy, Debug)]
pub struct HopInfo {
    pub bytes: u64,
    pub duration_ms: Option<f64>,
    pub flow: FlowId,
    pub packet: u64,
    pub start: Ts,
    pub end: Ts,
    pub client: SocketAddr,
}

/// The TLS verdict of a module's sessions, least worrying first (a row shows the worst).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsMark {
    /// The chain validated.
    Verified,
    /// TLS 1.3 without a key log: the certificates could not be checked.
    Hidden,
    /// The chain did not validate and the client refused it (or may have).
    Refused,
    /// The chain did not validate and the client went on anyway.
    Unverified,
}

impl TlsMark {
    pub fn of(t: &TlsRecord) -> TlsMark {
        match &t.validation {
            Some(v) if v.is_valid() => TlsMark::Verified,
            Some(_) if t.accepted == Some(true) => TlsMark::Unverified,
            Some(_) => TlsMark::Refused,
            None => TlsMark::Hidden,
        }
    }
}

/// One module@version: its journey as last sent, and what its marks are made of.
#[derive(Debug)]
pub struct ModuleRow {
    pub journey: Box<Journey>,
    /// `module@version`.
    pub label: String,
    /// Some hop (or upstream hop) went over plain HTTP.
    pub plaintext: bool,
    /// A checksum-database lookup for it was answered 200.
    pub sumdb_lookup_ok: bool,
    pub fallbacks: usize,
    pub redirects: usize,
    /// Positions in [`App::findings`] of the findings about it, in arrival order.
    pub findings: Vec<usize>,
    pub worst: Option<Severity>,
    /// Its findings by severity, indexed by `Severity as usize`.
    pub severities: [usize; 5],
    /// A checksum-mismatch or mirror-inconsistency finding names it.
    pub h1_mismatch: bool,
    /// A checksum-database finding (a note or record that did not verify) names it.
    pub sumdb_finding: bool,
    /// Lower-case text the filter looks in: label, servers, rule ids of its findings.
    search: String,
}

/// One line of the journey tree: a hop, at its depth (upstream hops are deeper).
#[derive(Clone, Debug)]
pub struct TreeLine {
    pub depth: usize,
    /// `#n` as the text report numbers it: position among its siblings.
    pub number: usize,
    /// The hop, with its upstream hops moved to their own lines.
    pub hop: Hop,
    /// Who asked: `None` for the go command, else the server of the hop this one served.
    pub asked_by: Option<String>,
    /// The hop's URL was already asked for earlier in its redirect chain, by hop `#n`.
    pub returns_to: Option<usize>,
}

/// Scroll positions the view keeps between frames (like ratatui's `ListState`), so a list does
/// not jump while the selection moves inside the window. Only the view writes them.
#[derive(Debug, Default)]
pub struct Scroll {
    pub modules: Cell<usize>,
    pub journey: Cell<usize>,
    pub findings: Cell<usize>,
    /// The detail overlay's first line, clamped by the view to what there is.
    pub detail: Cell<usize>,
    /// The demo's explanation panel's first line (J/K), clamped by the view; back to the top
    /// when the panel's subject changes.
    pub panel: Cell<usize>,
    /// Rows of each pane in the last frame (for page up/down).
    pub page: Cell<usize>,
}

/// What a key does. The key table below maps keys to these; the footer and `?` read it too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    NextPane,
    PrevPane,
    Open,
    Close,
    Filter,
    FindingsOnly,
    Pause,
    Step,
    StepToFinding,
    Faster,
    Slower,
    WriteReport,
    Help,
    Quit,
    /// Demo only: the next or previous act.
    NextAct,
    PrevAct,
    /// Demo only: scroll the explanation panel.
    PanelDown,
    PanelUp,
}

/// A key as the table names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    Code(KeyCode),
    Ctrl(char),
}

impl Key {
    fn matches(self, ev: &KeyEvent) -> bool {
        let ctrl = ev.modifiers.contains(KeyModifiers::CONTROL);
        match self {
            Key::Code(c) => !ctrl && ev.code == c,
            Key::Ctrl(c) => ctrl && ev.code == KeyCode::Char(c),
        }
    }
}

/// One row of the key table.
#[derive(Debug)]
pub struct Binding {
    pub keys: &'static [Key],
    /// How the keys are written in the footer and the help.
    pub label: &'static str,
    pub action: Action,
    /// A word or two for the footer; empty keeps it out of the footer.
    pub hint: &'static str,
    /// The help overlay's line.
    pub help: &'static str,
}

/// Every key the screen knows, in the order the help lists them.
pub const KEYS: &[Binding] = &[
    Binding {
        keys: &[Key::Code(KeyCode::Char('q')), Key::Ctrl('c')],
        label: "q",
        action: Action::Quit,
        hint: "quit",
        help: "quit (also Ctrl-C)",
    },
    Binding {
        keys: &[Key::Code(KeyCode::Char('?'))],
        label: "?",
        action: Action::Help,
        hint: "help",
        help: "this help (any key closes it)",
    },
    Binding {
        keys: &[Key::Code(KeyCode::Tab)],
        label: "Tab",
        action: Action::NextPane,
        hint: "pane",
        help: "next pane",
    },
    Binding {
        keys: &[Key::Code(KeyCode::BackTab)],
        label: "S-Tab",
        action: Action::PrevPane,
        hint: "",
        help: "previous pane",
    },
    Binding {
        keys: &[Key::Code(KeyCode::Up), Key::Code(KeyCode::Char('k'))],
        label: "↑/k",
        action: Action::Up,
        hint: "",
        help: "up (scrolls the detail view)",
    },
    Binding {
        keys: &[Key::Code(KeyCode::Down), Key::Code(KeyCode::Char('j'))],
        label: "↓/j",
        action: Action::Down,
        hint: "move",
        help: "down",
    },
    Binding {
        keys: &[Key::Code(KeyCode::PageUp)],
        label: "PgUp",
        action: Action::PageUp,
        hint: "",
        help: "page up",
    },
    Binding {
        keys: &[Key::Code(KeyCode::PageDown)],
        label: "PgDn",
        action: Action::PageDown,
        hint: "",
        help: "page down",
    },
    Binding {
        keys: &[Key::Code(KeyCode::Home), Key::Code(KeyCode::Char('g'))],
        label: "Home/g",
        action: Action::Top,
        hint: "",
        help: "first row",
    },
    Binding {
        keys: &[Key::Code(KeyCode::End), Key::Code(KeyCode::Char('G'))],
        label: "End/G",
        action: Action::Bottom,
        hint: "",
        help: "last row",
    },
    Binding {
        keys: &[Key::Code(KeyCode::Enter)],
        label: "Enter",
        action: Action::Open,
        hint: "detail",
        help: "open the hop or finding",
    },
    Binding {
        keys: &[Key::Code(KeyCode::Esc)],
        label: "Esc",
        action: Action::Close,
        hint: "back",
        help: "close detail / clear filter",
    },
    Binding {
        keys: &[Key::Code(KeyCode::Char('/'))],
        label: "/",
        action: Action::Filter,
        hint: "filter",
        help: "filter: module, rule, server",
    },
    Binding {
        keys: &[Key::Code(KeyCode::Char('f'))],
        label: "f",
        action: Action::FindingsOnly,
        hint: "with findings",
        help: "only modules with findings",
    },
    Binding {
        keys: &[Key::Code(KeyCode::Char(' '))],
        label: "space",
        action: Action::Pause,
        hint: "pause",
        help: "pause / resume the replay",
    },
    Binding {
        keys: &[Key::Code(KeyCode::Char('.'))],
        label: ".",
        action: Action::Step,
        hint: "step",
        help: "step to the next event",
    },
    Binding {
        keys: &[Key::Code(KeyCode::Char('n'))],
        label: "n",
        action: Action::StepToFinding,
        hint: "next finding",
        help: "run to the next finding",
    },
    Binding {
        keys: &[Key::Code(KeyCode::Char('+')), Key::Code(KeyCode::Char('='))],
        label: "+",
        action: Action::Faster,
        hint: "",
        help: "faster (1x 2x 5x 10x max)",
    },
    Binding {
        keys: &[Key::Code(KeyCode::Char('-'))],
        label: "-",
        action: Action::Slower,
        hint: "",
        help: "slower",
    },
    Binding {
        keys: &[Key::Code(KeyCode::Char('w'))],
        label: "w",
        action: Action::WriteReport,
        hint: "report",
        help: "write modtrace-report.json",
    },
];

/// The keys `modtrace demo` adds, listed first in its footer and help.
pub const DEMO_KEYS: &[Binding] = &[
    Binding {
        keys: &[Key::Code(KeyCode::Char(']'))],
        label: "]",
        action: Action::NextAct,
        hint: "next act",
        help: "demo: next act",
    },
    Binding {
        keys: &[Key::Code(KeyCode::Char('['))],
        label: "[",
        action: Action::PrevAct,
        hint: "prev act",
        help: "demo: previous act",
    },
    Binding {
        keys: &[Key::Code(KeyCode::Char('J'))],
        label: "J",
        action: Action::PanelDown,
        hint: "",
        help: "demo: scroll explanation down",
    },
    Binding {
        keys: &[Key::Code(KeyCode::Char('K'))],
        label: "K",
        action: Action::PanelUp,
        hint: "",
        help: "demo: scroll explanation up",
    },
];

/// The keys the screen knows: the demo's first when it is one, then [`KEYS`].
pub fn bindings(demo: bool) -> impl Iterator<Item = &'static Binding> {
    DEMO_KEYS.iter().filter(move |_| demo).chain(KEYS.iter())
}

/// The action of `ev` by the key table (with the demo's keys in a demo).
pub fn action_of(ev: &KeyEvent, demo: bool) -> Option<Action> {
    bindings(demo)
        .find(|b| b.keys.iter().any(|k| k.matches(ev)))
        .map(|b| b.action)
}

/// Everything the screen shows, and the user's place in it.
#[derive(Debug, Default)]
pub struct App {
    pub status: Status,
    /// The user asked to quit.
    pub quit: bool,
    /// The last note for the status bar.
    pub note: Option<String>,

    /// Modules in order of first appearance.
    pub rows: Vec<ModuleRow>,
    row_of_journey: HashMap<usize, usize>,
    row_of_label: HashMap<String, usize>,
    /// Exchange id -> the row whose journey it is a hop of.
    exchange_row: HashMap<u64, usize>,
    /// The longest label, in characters (the name column's width).
    pub label_width: usize,
    /// Rows the modules pane lists (filter, findings only), ascending.
    pub visible_rows: Vec<usize>,

    /// Findings in order of arrival.
    pub findings: Vec<Finding>,
    finding_pos: HashMap<usize, usize>,
    /// How many evidence exchanges of each finding were already filed under rows.
    finding_filed: Vec<usize>,
    findings_by_exchange: HashMap<u64, Vec<usize>>,
    findings_by_label: HashMap<String, Vec<usize>>,
    /// Findings the findings pane lists, most severe first, then in order of arrival.
    pub visible_findings: Vec<usize>,
    /// Findings by severity, indexed by `Severity as usize`.
    pub counts: [usize; 5],

    hop_info: HashMap<u64, HopInfo>,
    hop_info_order: VecDeque<u64>,
    exchanges: HashMap<u64, Box<Exchange>>,
    exchange_order: VecDeque<u64>,
    tls: HashMap<FlowId, Box<TlsRecord>>,
    tls_order: VecDeque<FlowId>,

    pub focus: Pane,
    /// The selected module (a row index).
    pub selected_row: Option<usize>,
    /// The journey tree of the selected module.
    pub tree: Vec<TreeLine>,
    pub selected_line: usize,
    /// The selected finding (a position in `findings`).
    pub selected_finding: Option<usize>,
    pub detail: Option<Detail>,
    pub help: bool,
    /// The applied filter, lower case.
    pub filter: Option<String>,
    /// The filter being typed.
    pub filter_input: Option<String>,
    pub findings_only: bool,
    pub scroll: Scroll,
    /// `modtrace demo`: the act shown, for the explanation panel and the act keys.
    pub demo: Option<DemoState>,
}

fn label_of(module: &str, version: Option<&str>) -> String {
    crate::gomod::module_label(module, version)
}

/// `host:port` of a URL (the authority; a CONNECT URL is one already).
pub fn authority(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    // Userinfo (already redacted) is not part of where the request went.
    let a = &rest[..end];
    a.rsplit_once('@').map_or(a, |(_, h)| h)
}

/// Every hop of a journey, upstream hops included.
fn walk<'a>(hops: &'a [Hop], f: &mut dyn FnMut(&'a Hop)) {
    for h in hops {
        f(h);
        walk(&h.upstream, f);
    }
}

fn sev_key(f: &Finding, pos: usize) -> (std::cmp::Reverse<Severity>, usize) {
    (std::cmp::Reverse(f.severity), pos)
}

impl App {
    /// The demo panel's subject; None outside a demo.
    pub fn subject(&self) -> Option<Subject> {
        let demo = self.demo.as_ref()?;
        Some(if demo.unavailable.is_some() {
            Subject::Unavailable
        } else if self.status.finished {
            Subject::End
        } else if self.findings.is_empty() {
            Subject::Intro
        } else {
            let p = self
                .selected_finding
                .filter(|&p| p < self.findings.len())
                .unwrap_or(self.findings.len() - 1);
            Subject::Finding(p)
        })
    }

    pub fn new(status: Status) -> App {
        App {
            status,
            ..App::default()
        }
    }

    /// An app for one act of `modtrace demo`.
    pub fn for_demo(status: Status, demo: DemoState) -> App {
        App {
            status,
            demo: Some(demo),
            ..App::default()
        }
    }

    /// One update from the analysis side.
    pub fn apply(&mut self, update: Update) {
        let subject = self.subject();
        self.apply_update(update);
        self.panel_follows(subject);
    }

    /// The explanation panel starts at its top when what it explains changes.
    fn panel_follows(&self, before: Option<Subject>) {
        if self.demo.is_some() && self.subject() != before {
            self.scroll.panel.set(0);
        }
    }

    fn apply_update(&mut self, update: Update) {
        match update {
            Update::Status(s) => self.status = s,
            Update::Note(n) => self.note = Some(n.chars().take(MAX_NOTE_CHARS).collect()),
            Update::Exchange(x) => self.on_exchange(x),
            Update::Tls(t) => self.on_tls(t),
            Update::Journey { index, journey } => self.on_journey(index, journey),
            Update::Finding { index, finding } => self.on_finding(index, *finding),
        }
    }

    fn on_exchange(&mut self, x: Box<Exchange>) {
        let info = HopInfo {
            bytes: x.bytes,
            duration_ms: x.duration_ms,
            flow: x.flow,
            packet: x.packet,
            start: x.start,
            end: x.end,
            client: x.client,
        };
        if self.hop_info.insert(x.id, info).is_none() {
            self.hop_info_order.push_back(x.id);
            if self.hop_info_order.len() > MAX_HOP_INFO {
                if let Some(old) = self.hop_info_order.pop_front() {
                    self.hop_info.remove(&old);
                }
            }
        }
        let id = x.id;
        if self.exchanges.insert(id, x).is_none() {
            self.exchange_order.push_back(id);
            if self.exchange_order.len() > MAX_FULL_EXCHANGES {
                if let Some(old) = self.exchange_order.pop_front() {
                    self.exchanges.remove(&old);
                }
            }
        }
    }

    fn on_tls(&mut self, t: Box<TlsRecord>) {
        let flow = t.flow;
        if self.tls.insert(flow, t).is_none() {
            self.tls_order.push_back(flow);
            if self.tls_order.len() > MAX_TLS_RECORDS {
                if let Some(old) = self.tls_order.pop_front() {
                    self.tls.remove(&old);
                }
            }
        }
    }

    fn on_journey(&mut self, index: usize, journey: Box<Journey>) {
        let label = label_of(&journey.module, journey.version.as_deref());
        let row = match self.row_of_journey.get(&index) {
            Some(&r) => r,
            None => {
                let r = self.rows.len();
                self.rows.push(ModuleRow {
                    // Filled in below, with the marks.
                    journey: Box::new(Journey {
                        module: String::new(),
                        version: None,
                        journey: Vec::new(),
                        h1: None,
                        mod_h1: None,
                        process: None,
                    }),
                    label: label.clone(),
                    plaintext: false,
                    sumdb_lookup_ok: false,
                    fallbacks: 0,
                    redirects: 0,
                    findings: Vec::new(),
                    worst: None,
                    severities: [0; 5],
                    h1_mismatch: false,
                    sumdb_finding: false,
                    search: String::new(),
                });
                self.row_of_journey.insert(index, r);
                self.label_width = self.label_width.max(label.chars().count());
                self.row_of_label.entry(label.clone()).or_insert(r);
                r
            }
        };
        // Marks that come from the hops themselves.
        let (mut plaintext, mut lookup_ok, mut fallbacks, mut redirects) = (false, false, 0, 0);
        let mut search = label.to_lowercase();
        let mut new_exchanges = Vec::new();
        walk(&journey.journey, &mut |h| {
            plaintext |= h.scheme == "http";
            lookup_ok |= h.op == Op::Lookup && h.status == Some(200);
            match h.after {
                Some(HopLink::Fallback { .. }) => fallbacks += 1,
                Some(HopLink::Redirect { .. }) => redirects += 1,
                None => {}
            }
            for s in [h.server.to_string(), authority(&h.url).to_lowercase()] {
                if !search.contains(&s) {
                    search.push(' ');
                    search.push_str(&s);
                }
            }
            if let Some(v) = &h.via {
                if !search.contains(v.as_str()) {
                    search.push(' ');
                    search.push_str(v);
                }
            }
            new_exchanges.extend(h.exchange);
        });
        {
            let r = &mut self.rows[row];
            r.journey = journey;
            r.plaintext = plaintext;
            r.sumdb_lookup_ok = lookup_ok;
            r.fallbacks = fallbacks;
            r.redirects = redirects;
            // Rule ids of its findings stay searchable.
            for &p in &r.findings {
                let id = self.findings[p].rule.id();
                if !search.contains(id) {
                    search.push(' ');
                    search.push_str(id);
                }
            }
            r.search = search;
        }
        // Findings that arrived before their exchanges were known to be this module's.
        let mut attach = Vec::new();
        if let Some(ps) = self.findings_by_label.get(&label) {
            attach.extend(ps.iter().copied());
        }
        for x in new_exchanges {
            if self.exchange_row.insert(x, row) != Some(row) {
                if let Some(ps) = self.findings_by_exchange.get(&x) {
                    attach.extend(ps.iter().copied());
                }
            }
        }
        for p in attach {
            self.attach(row, p);
        }
        self.reveal_row(row);
        if self.selected_row == Some(row) {
            self.rebuild_tree();
        } else if self.selected_row.is_none() {
            self.select_row(self.visible_rows.first().copied());
        }
    }

    fn on_finding(&mut self, index: usize, finding: Finding) {
        let (pos, is_new) = match self.finding_pos.get(&index) {
            Some(&p) => {
                let old = self.findings[p].severity;
                if old != finding.severity {
                    let key = sev_key(&self.findings[p], p);
                    if let Ok(i) = self
                        .visible_findings
                        .binary_search_by_key(&key, |&q| sev_key(&self.findings[q], q))
                    {
                        self.visible_findings.remove(i);
                    }
                    self.counts[old as usize] = self.counts[old as usize].saturating_sub(1);
                    self.counts[finding.severity as usize] += 1;
                }
                self.findings[p] = finding;
                (p, false)
            }
            None => {
                let p = self.findings.len();
                self.counts[finding.severity as usize] += 1;
                self.findings.push(finding);
                self.finding_filed.push(0);
                self.finding_pos.insert(index, p);
                (p, true)
            }
        };
        let f = &self.findings[pos];
        let mut rows = Vec::new();
        if let Some(m) = &f.module {
            let label = label_of(m, f.version.as_deref());
            let list = self.findings_by_label.entry(label.clone()).or_default();
            if !list.contains(&pos) {
                list.push(pos);
            }
            rows.extend(self.row_of_label.get(&label).copied());
        }
        // Evidence only grows: file the exchanges not filed before.
        let filed = self.finding_filed[pos].min(f.evidence.exchanges.len());
        for &x in &f.evidence.exchanges[filed..] {
            let list = self.findings_by_exchange.entry(x).or_default();
            if !list.contains(&pos) {
                list.push(pos);
            }
            rows.extend(self.exchange_row.get(&x).copied());
        }
        self.finding_filed[pos] = f.evidence.exchanges.len();
        rows.sort_unstable();
        rows.dedup();
        for r in rows {
            self.attach(r, pos);
        }
        // Into the findings list, at its place by severity, if the filter lets it.
        if self.finding_matches(pos) {
            let key = sev_key(&self.findings[pos], pos);
            if let Err(i) = self
                .visible_findings
                .binary_search_by_key(&key, |&q| sev_key(&self.findings[q], q))
            {
                self.visible_findings.insert(i, pos);
            }
        }
        // A demo explains the finding it paused at: the selection follows new findings.
        if self.demo.is_some() && is_new && self.finding_matches(pos) {
            self.selected_finding = Some(pos);
        }
        if self.selected_finding.is_none() {
            self.selected_finding = self.visible_findings.first().copied();
        }
    }

    /// Files finding `pos` under row `row`.
    fn attach(&mut self, row: usize, pos: usize) {
        let Some(f) = self.findings.get(pos) else {
            return;
        };
        let r = &mut self.rows[row];
        if r.findings.contains(&pos) {
            return;
        }
        r.findings.push(pos);
        r.worst = r.worst.max(Some(f.severity));
        r.severities[f.severity as usize] += 1;
        r.h1_mismatch |= matches!(f.rule, Rule::ChecksumMismatch | Rule::MirrorInconsistency);
        r.sumdb_finding |= matches!(
            f.rule,
            Rule::SumdbSignatureInvalid
                | Rule::SumdbUnknownKey
                | Rule::SumdbFork
                | Rule::SumdbProofMismatch
        );
        let id = f.rule.id();
        if !r.search.contains(id) {
            r.search.push(' ');
            r.search.push_str(id);
        }
        self.reveal_row(row);
    }

    fn row_matches(&self, row: usize) -> bool {
        let r = &self.rows[row];
        (!self.findings_only || !r.findings.is_empty())
            && self.filter.as_ref().is_none_or(|f| r.search.contains(f))
    }

    fn finding_matches(&self, pos: usize) -> bool {
        let Some(filter) = &self.filter else {
            return true;
        };
        let f = &self.findings[pos];
        f.rule.id().contains(filter.as_str())
            || f.module.as_ref().is_some_and(|m| {
                label_of(m, f.version.as_deref())
                    .to_lowercase()
                    .contains(filter)
            })
            || f.message.to_lowercase().contains(filter)
    }

    /// A row that now matches joins the list (a row only gains hops and findings, so one
    /// that matched never stops matching).
    fn reveal_row(&mut self, row: usize) {
        if !self.row_matches(row) {
            return;
        }
        if let Err(i) = self.visible_rows.binary_search(&row) {
            self.visible_rows.insert(i, row);
        }
        if self.selected_row.is_none() {
            self.select_row(Some(row));
        }
    }

    /// Recomputes both lists after the filter or the findings-only switch changed.
    fn refilter(&mut self) {
        self.visible_rows = (0..self.rows.len())
            .filter(|&r| self.row_matches(r))
            .collect();
        let mut v: Vec<usize> = (0..self.findings.len())
            .filter(|&p| self.finding_matches(p))
            .collect();
        v.sort_by_key(|&p| sev_key(&self.findings[p], p));
        self.visible_findings = v;
        let keep = self
            .selected_row
            .filter(|r| self.visible_rows.binary_search(r).is_ok());
        self.select_row(keep.or_else(|| self.visible_rows.first().copied()));
        if !self
            .selected_finding
            .is_some_and(|p| self.visible_findings.contains(&p))
        {
            self.selected_finding = self.visible_findings.first().copied();
        }
    }

    fn select_row(&mut self, row: Option<usize>) {
        if self.selected_row != row {
            self.selected_row = row;
            self.selected_line = 0;
            self.scroll.journey.set(0);
        }
        self.rebuild_tree();
    }

    /// Position of the selected module in the visible list.
    pub fn selected_row_pos(&self) -> Option<usize> {
        self.selected_row
            .and_then(|r| self.visible_rows.binary_search(&r).ok())
    }

    /// Position of the selected finding in the visible list.
    pub fn selected_finding_pos(&self) -> Option<usize> {
        let p = self.selected_finding?;
        let key = sev_key(self.findings.get(p)?, p);
        self.visible_findings
            .binary_search_by_key(&key, |&q| sev_key(&self.findings[q], q))
            .ok()
    }

    pub fn hop_info(&self, exchange: u64) -> Option<&HopInfo> {
        self.hop_info.get(&exchange)
    }

    pub fn exchange(&self, id: u64) -> Option<&Exchange> {
        self.exchanges.get(&id).map(|b| &**b)
    }

    pub fn tls_of_flow(&self, flow: FlowId) -> Option<&TlsRecord> {
        self.tls.get(&flow).map(|b| &**b)
    }

    /// The TLS session an exchange went over, when it was one and has ended.
    pub fn tls_of_exchange(&self, exchange: u64) -> Option<&TlsRecord> {
        self.tls_of_flow(self.hop_info(exchange)?.flow)
    }

    /// The worst TLS verdict over a row's https hops (looked up when drawn: sessions are
    /// summarised when their flow ends, after the hops).
    pub fn tls_mark(&self, row: &ModuleRow) -> Option<TlsMark> {
        let mut worst = None;
        walk(&row.journey.journey, &mut |h| {
            if h.scheme == "https" {
                if let Some(t) = h.exchange.and_then(|x| self.tls_of_exchange(x)) {
                    worst = worst.max(Some(TlsMark::of(t)));
                }
            }
        });
        worst
    }

    /// Findings whose evidence names this exchange.
    pub fn findings_of_exchange(&self, exchange: u64) -> &[usize] {
        self.findings_by_exchange
            .get(&exchange)
            .map_or(&[], |v| v.as_slice())
    }

    /// The journey tree of the selected row, hop selection kept on the same exchange.
    fn rebuild_tree(&mut self) {
        let keep = self
            .tree
            .get(self.selected_line)
            .and_then(|l| l.hop.exchange);
        self.tree = match self.selected_row.and_then(|r| self.rows.get(r)) {
            Some(r) => tree_lines(&r.journey.journey, &|x| self.hop_info.get(&x).copied()),
            None => Vec::new(),
        };
        if let Some(x) = keep {
            if let Some(i) = self.tree.iter().position(|l| l.hop.exchange == Some(x)) {
                self.selected_line = i;
            }
        }
        self.selected_line = self.selected_line.min(self.tree.len().saturating_sub(1));
    }

    /// One key; returns what the analysis side must do.
    pub fn on_key(&mut self, key: KeyEvent) -> Vec<Command> {
        if key.kind == KeyEventKind::Release {
            return Vec::new();
        }
        let ctrl_c = Key::Ctrl('c').matches(&key);
        if ctrl_c {
            self.quit = true;
            return vec![Command::Quit];
        }
        if self.help {
            self.help = false;
            return Vec::new();
        }
        if let Some(mut input) = self.filter_input.take() {
            match key.code {
                KeyCode::Enter => {
                    let f = input.trim().to_lowercase();
                    self.filter = (!f.is_empty()).then_some(f);
                    self.refilter();
                    return Vec::new();
                }
                KeyCode::Esc => return Vec::new(),
                KeyCode::Backspace => {
                    input.pop();
                }
                KeyCode::Char(c)
                    if !key.modifiers.contains(KeyModifiers::CONTROL)
                        && input.chars().count() < MAX_FILTER_CHARS =>
                {
                    input.push(c);
                }
                _ => {}
            }
            self.filter_input = Some(input);
            return Vec::new();
        }
        let Some(action) = action_of(&key, self.demo.is_some()) else {
            return Vec::new();
        };
        self.act(action)
    }

    /// Does what a key's action says.
    pub fn act(&mut self, action: Action) -> Vec<Command> {
        let subject = self.subject();
        let cmds = self.act_on(action);
        self.panel_follows(subject);
        cmds
    }

    fn act_on(&mut self, action: Action) -> Vec<Command> {
        let page = self.scroll.page.get().max(1);
        match action {
            Action::NextAct | Action::PrevAct => {
                let Some(d) = &self.demo else {
                    return Vec::new();
                };
                let (m, at_end) = if action == Action::NextAct {
                    (ActMove::Next, d.is_last())
                } else {
                    (ActMove::Previous, d.is_first())
                };
                if at_end {
                    self.note = Some(
                        if m == ActMove::Next {
                            "this is the last act"
                        } else {
                            "this is the first act"
                        }
                        .into(),
                    );
                    return Vec::new();
                }
                return vec![Command::Act(m)];
            }
            Action::PanelDown | Action::PanelUp => {
                let s = &self.scroll.panel;
                s.set(if action == Action::PanelDown {
                    s.get().saturating_add(1)
                } else {
                    s.get().saturating_sub(1)
                });
            }
            Action::Quit => {
                self.quit = true;
                return vec![Command::Quit];
            }
            Action::Help => self.help = true,
            Action::Pause => return vec![Command::TogglePause],
            Action::Step => return vec![Command::Step],
            Action::StepToFinding => return vec![Command::StepToFinding],
            Action::Faster | Action::Slower => {
                let s = if action == Action::Faster {
                    self.status.speed.faster()
                } else {
                    self.status.speed.slower()
                };
                // Shown at once; the replay's next status confirms it.
                self.status.speed = s;
                return vec![Command::SetSpeed(s)];
            }
            Action::WriteReport => {
                self.note = Some(format!("writing {REPORT_FILE} ..."));
                return vec![Command::WriteReport(PathBuf::from(REPORT_FILE))];
            }
            Action::Filter => {
                self.filter_input = Some(self.filter.clone().unwrap_or_default());
            }
            Action::FindingsOnly => {
                self.findings_only = !self.findings_only;
                self.refilter();
            }
            Action::Close => {
                if self.detail.take().is_none() && self.filter.take().is_some() {
                    self.refilter();
                }
            }
            Action::Open if self.detail.is_none() => match self.focus {
                Pane::Modules => self.focus = Pane::Journey,
                Pane::Journey => {
                    self.detail = self.tree.get(self.selected_line).and_then(|l| {
                        match (&l.hop.failed, l.hop.exchange) {
                            (Some(f), _) => Some(Detail::Attempt(f.flow)),
                            (None, x) => x.map(Detail::Exchange),
                        }
                    });
                }
                Pane::Findings => self.detail = self.selected_finding.map(Detail::Finding),
            },
            Action::Open => {}
            Action::NextPane | Action::PrevPane if self.detail.is_none() => {
                self.focus = if action == Action::NextPane {
                    self.focus.next()
                } else {
                    self.focus.prev()
                };
            }
            Action::NextPane | Action::PrevPane => {}
            Action::Up => self.move_by(-1),
            Action::Down => self.move_by(1),
            Action::PageUp => self.move_by(-(page as isize)),
            Action::PageDown => self.move_by(page as isize),
            Action::Top => self.move_by(isize::MIN),
            Action::Bottom => self.move_by(isize::MAX),
        }
        Vec::new()
    }

    /// Moves the selection of the focused pane (or scrolls the detail view).
    fn move_by(&mut self, delta: isize) {
        let step = |pos: usize, len: usize| -> usize {
            if len == 0 {
                return 0;
            }
            pos.saturating_add_signed(delta).min(len - 1)
        };
        if self.detail.is_some() {
            let s = &self.scroll.detail;
            s.set(s.get().saturating_add_signed(delta));
            return;
        }
        match self.focus {
            Pane::Modules => {
                let pos = self.selected_row_pos().unwrap_or(0);
                let next = self
                    .visible_rows
                    .get(step(pos, self.visible_rows.len()))
                    .copied();
                self.select_row(next);
            }
            Pane::Journey => self.selected_line = step(self.selected_line, self.tree.len()),
            Pane::Findings => {
                let pos = self.selected_finding_pos().unwrap_or(0);
                self.selected_finding = self
                    .visible_findings
                    .get(step(pos, self.visible_findings.len()))
                    .copied();
            }
        }
    }
}

/// The journey as a tree: hops in the order they started, a mirror's own requests under the
/// hop they served (the same rule as the report's, on the numbers the exchanges carried).
pub fn tree_lines(hops: &[Hop], info: &dyn Fn(u64) -> Option<HopInfo>) -> Vec<TreeLine> {
    let mut lines = Vec::new();
    if hops.iter().any(|h| !h.upstream.is_empty()) {
        // Already nested (a final journey): draw it as it is.
        push_nested(hops, 0, None, &mut lines);
        mark_loops(&mut lines);
        return lines;
    }
    let n = hops.len();
    // A failed connection has no exchange: its own start orders it.
    let key = |i: usize| {
        let start = match hops[i].exchange {
            Some(x) => info(x).map_or(Ts(i64::MAX), |x| x.start),
            None => hops[i].start(),
        };
        (start, hops[i].exchange)
    };
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| key(i));
    let mut parent: Vec<Option<usize>> = vec![None; n];
    if n <= MAX_NESTED_HOPS {
        let infos: Vec<Option<HopInfo>> = hops.iter().map(|h| h.exchange.and_then(info)).collect();
        for b in 0..n {
            let (Some(ib), None) = (infos[b], &hops[b].after) else {
                continue;
            };
            let mut best: Option<usize> = None;
            for a in 0..n {
                let Some(ia) = infos[a] else {
                    continue;
                };
                let (ha, hb) = (&hops[a], &hops[b]);
                if a != b
                    && ha.op == hb.op
                    && ha.server.ip() == ib.client.ip()
                    && ha.server != hb.server
                    && ia.start <= ib.start
                    && ib.end <= ia.end
                    && best.is_none_or(|x| infos[x].is_some_and(|ix| ix.start < ia.start))
                {
                    best = Some(a);
                }
            }
            parent[b] = best;
        }
        // A cycle (equal spans) would lose hops: keep such hops at the top.
        for b in 0..n {
            let mut p = parent[b];
            let mut steps = 0;
            while let Some(x) = p {
                steps += 1;
                if x == b || steps > n {
                    parent[b] = None;
                    break;
                }
                p = parent[x];
            }
        }
    }
    // Top-level numbers, in start order; links point at them.
    let mut number = vec![None; n];
    let mut next = 0;
    for &i in &order {
        if parent[i].is_none() {
            number[i] = Some(next);
            next += 1;
        }
    }
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &i in &order {
        if let Some(p) = parent[i] {
            children[p].push(i);
        }
    }
    struct Ctx<'a> {
        hops: &'a [Hop],
        children: &'a [Vec<usize>],
        number: &'a [Option<usize>],
    }
    fn push(
        c: &Ctx,
        i: usize,
        depth: usize,
        n: usize,
        asked_by: Option<String>,
        out: &mut Vec<TreeLine>,
    ) {
        let mut hop = c.hops[i].clone();
        hop.upstream.clear();
        hop.after = match hop.after {
            Some(HopLink::Fallback { from, cause }) => c
                .number
                .get(from)
                .copied()
                .flatten()
                .map(|f| HopLink::Fallback { from: f, cause }),
            Some(HopLink::Redirect { from }) => c
                .number
                .get(from)
                .copied()
                .flatten()
                .map(|f| HopLink::Redirect { from: f }),
            None => None,
        };
        let server = authority(&hop.url).to_string();
        out.push(TreeLine {
            depth,
            number: n,
            hop,
            asked_by,
            returns_to: None,
        });
        for (k, &ch) in c.children[i].iter().enumerate() {
            push(c, ch, depth + 1, k, Some(server.clone()), out);
        }
    }
    let ctx = Ctx {
        hops,
        children: &children,
        number: &number,
    };
    for &i in &order {
        if let (None, Some(num)) = (parent[i], number[i]) {
            push(&ctx, i, 0, num, None, &mut lines);
        }
    }
    mark_loops(&mut lines);
    lines
}

fn push_nested(hops: &[Hop], depth: usize, asked_by: Option<&str>, out: &mut Vec<TreeLine>) {
    for (n, h) in hops.iter().enumerate() {
        let mut hop = h.clone();
        hop.upstream.clear();
        out.push(TreeLine {
            depth,
            number: n,
            hop,
            asked_by: asked_by.map(str::to_string),
            returns_to: None,
        });
        push_nested(&h.upstream, depth + 1, Some(authority(&h.url)), out);
    }
}

/// A redirect whose URL its chain already asked for is a loop: note the hop it returns to
/// (the first one with that URL).
fn mark_loops(lines: &mut [TreeLine]) {
    let top: Vec<usize> = (0..lines.len()).filter(|&i| lines[i].depth == 0).collect();
    let by_number: HashMap<usize, usize> = top.iter().map(|&i| (lines[i].number, i)).collect();
    for &i in &top {
        let mut back = match lines[i].hop.after {
            Some(HopLink::Redirect { from }) => Some(from),
            _ => None,
        };
        let mut first = None;
        let mut steps = 0;
        while let Some(num) = back {
            steps += 1;
            let Some(&j) = by_number.get(&num) else {
                break;
            };
            if steps > top.len() || j == i {
                break;
            }
            if lines[j].hop.url == lines[i].hop.url {
                first = Some(num);
            }
            back = match lines[j].hop.after {
                Some(HopLink::Redirect { from }) => Some(from),
                _ => None,
            };
        }
        lines[i].returns_to = first;
    }
}
