//! Drawing: the app's state onto a frame. Never changes the state (only the scroll positions
//! it keeps for the next frame, as ratatui's `ListState` would).
//!
//! Three panes stacked (modules, the selected module's journey, findings), a status bar and a
//! footer of keys; the detail view and the help are overlays. Lists draw only the rows in
//! their window, so a frame costs the same with ten modules or ten thousand. `modtrace demo`
//! adds the explanation panel, below the panes (or beside them on a wide screen).

use super::app::{bindings, App, Detail, Pane, TlsMark, TreeLine};
// The snapshot tests check the help and footer against the key table.
#[cfg(test)]
use super::app::KEYS;
use super::explain::{self, Section, Tone};
use crate::detect::tls::TlsRecord;
use crate::detect::{Finding, Severity};
use crate::gomod::HopLink;
use crate::lesson::HalfKind;
use crate::time::Ts;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, List, ListItem, ListState, Paragraph};
use ratatui::Frame;
use std::cell::Cell;

/// Below this the panes do not fit: only the status line is drawn.
const MIN_WIDTH: u16 = 30;
const MIN_HEIGHT: u16 = 8;
/// Width of the marks after a module's name (without the findings counts).
const MARKS_WIDTH: usize = 30;
/// Evidence exchanges listed in a finding's detail.
const DETAIL_EXCHANGES: usize = 20;
/// From this width the demo's panel goes beside the panes instead of below them.
const SIDE_PANEL_WIDTH: u16 = 150;
/// Rows the three panes keep at least under the demo's panel (a border and a row each).
const PANES_MIN_HEIGHT: u16 = 9;

pub fn draw(app: &App, frame: &mut Frame) {
    let area = frame.area();
    if area.width == 0 || area.height == 0 {
        return;
    }
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        frame.render_widget(Paragraph::new(status_line(app)), area);
        return;
    }
    let [body, status, footer] = Layout::vertical([
        Constraint::Min(0),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let panes = match demo_split(app, body) {
        Some((panes, panel)) => {
            draw_demo_panel(app, frame, panel);
            panes
        }
        None => body,
    };
    let [modules, journey, findings] = Layout::vertical([
        Constraint::Percentage(30),
        Constraint::Percentage(40),
        Constraint::Percentage(30),
    ])
    .areas(panes);
    draw_modules(app, frame, modules);
    draw_journey(app, frame, journey);
    draw_findings(app, frame, findings);
    frame.render_widget(
        Paragraph::new(status_line(app)).style(Style::new().add_modifier(Modifier::REVERSED)),
        status,
    );
    frame.render_widget(Paragraph::new(footer_line(app)), footer);
    if let Some(d) = app.detail {
        draw_detail(app, frame, body, d);
    }
    if app.help {
        draw_help(frame, area, app.demo.is_some());
    }
}

/// The panes' area and the demo panel's, in a demo: the panel below the panes, as high as its
/// text needs up to about three fifths of the body (the panes keep a row each), or beside them
/// on a wide screen.
fn demo_split(app: &App, body: Rect) -> Option<(Rect, Rect)> {
    app.demo.as_ref()?;
    if body.width >= SIDE_PANEL_WIDTH {
        // Two fifths, in u32: a u16 product could overflow on an absurdly wide terminal.
        let w = u16::try_from((u32::from(body.width) * 2 / 5).clamp(50, 80)).unwrap_or(80);
        let [panes, panel] =
            Layout::horizontal([Constraint::Min(0), Constraint::Length(w)]).areas(body);
        return Some((panes, panel));
    }
    let (head, text) = panel_text(app, usize::from(body.width.saturating_sub(2)));
    let needed = u16::try_from(head.len() + text.len() + 2).unwrap_or(u16::MAX);
    let h = body.height;
    let three_fifths = u16::try_from(u32::from(h) * 3 / 5).unwrap_or(u16::MAX);
    let max = h
        .saturating_sub(PANES_MIN_HEIGHT)
        .min(three_fifths.max(14))
        .max(h / 2);
    let panel_h = needed.min(max).max(5.min(h));
    let [panes, panel] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(panel_h)]).areas(body);
    Some((panes, panel))
}

/// The panel's lines at `width`: the act's header (always shown), then the explanation (it
/// scrolls).
fn panel_text(app: &App, width: usize) -> (Vec<Line<'static>>, Vec<Line<'static>>) {
    let Some(d) = &app.demo else {
        return (Vec::new(), Vec::new());
    };
    let head_style = match d.act.kind {
        HalfKind::Unsafe => bad(),
        HalfKind::Safe => good().add_modifier(Modifier::BOLD),
    };
    let head = wrap(&clean(&d.act.header()), width)
        .into_iter()
        .map(|l| Line::styled(l, head_style))
        .collect();
    let mut text = Vec::new();
    for s in explain::explanation(app) {
        section_lines(&s, width, &mut text);
    }
    (head, text)
}

/// A section wrapped to `width`, its label coloured by its tone.
fn section_lines(s: &Section, width: usize, out: &mut Vec<Line<'static>>) {
    let label_style = match s.tone {
        Tone::Plain | Tone::Hint => bold(),
        Tone::Wire => Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        Tone::Danger => bad(),
        Tone::Fix => good().add_modifier(Modifier::BOLD),
    };
    let text_style = if s.tone == Tone::Hint {
        dim()
    } else {
        Style::new()
    };
    let label = s.label.map(|l| format!("{l}:"));
    let whole = match &label {
        Some(l) => format!("{l} {}", s.text),
        None => s.text.clone(),
    };
    for (i, l) in wrap(&clean(&whole), width).into_iter().enumerate() {
        match &label {
            Some(lb) if i == 0 && l.starts_with(lb.as_str()) => {
                let rest = l[lb.len()..].to_string();
                out.push(Line::from(vec![
                    Span::styled(lb.clone(), label_style),
                    Span::styled(rest, text_style),
                ]));
            }
            _ => out.push(Line::styled(l, text_style)),
        }
    }
}

fn draw_demo_panel(app: &App, frame: &mut Frame, area: Rect) {
    let Some(d) = &app.demo else {
        return;
    };
    let mut block = Block::bordered()
        .border_style(Style::new().fg(Color::Yellow))
        .title(Line::styled(
            fit(
                &format!(" {} ", d.act.lesson.title),
                usize::from(area.width).saturating_sub(14),
            ),
            bold(),
        ))
        .title(Line::styled(format!(" act {}/{} ", d.number, d.total), dim()).right_aligned());
    let inner = block.inner(area);
    let (head, text) = panel_text(app, usize::from(inner.width));
    let height = usize::from(inner.height);
    // The header stays; the explanation scrolls below it (J/K).
    let head_h = head.len().min(height);
    let text_h = height - head_h;
    let max = text.len().saturating_sub(text_h);
    let off = app.scroll.panel.get().min(max);
    app.scroll.panel.set(off);
    if max > 0 {
        let below = max - off;
        let what = if below > 0 {
            format!(" J/K scroll · {below} more ↓ ")
        } else {
            " J/K scroll · end ".to_string()
        };
        block =
            block.title_bottom(Line::styled(what, Style::new().fg(Color::Yellow)).right_aligned());
    }
    let mut lines: Vec<Line> = head.into_iter().take(head_h).collect();
    lines.extend(text.into_iter().skip(off).take(text_h));
    frame.render_widget(Clear, area);
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// Wire text on the screen: control characters (escape sequences) shown, never sent.
fn clean(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// At most `width` characters, an ellipsis marking a cut.
fn fit(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn pad(s: &str, width: usize) -> String {
    let n = s.chars().count();
    format!("{s}{}", " ".repeat(width.saturating_sub(n)))
}

pub fn severity_style(s: Severity) -> Style {
    match s {
        Severity::Critical => Style::new().fg(Color::Magenta).add_modifier(Modifier::BOLD),
        Severity::High => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        Severity::Medium => Style::new().fg(Color::Yellow),
        Severity::Low => Style::new().fg(Color::Cyan),
        Severity::Info => Style::new().fg(Color::DarkGray),
    }
}

fn short_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "crit",
        Severity::High => "high",
        Severity::Medium => "med",
        Severity::Low => "low",
        Severity::Info => "info",
    }
}

fn dim() -> Style {
    Style::new().fg(Color::DarkGray)
}
fn good() -> Style {
    Style::new().fg(Color::Green)
}
fn bad() -> Style {
    Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
}
fn bold() -> Style {
    Style::new().add_modifier(Modifier::BOLD)
}

fn pane_block<'a>(title: Vec<Span<'a>>, focused: bool) -> Block<'a> {
    let border = if focused {
        Style::new().fg(Color::Cyan)
    } else {
        dim()
    };
    Block::bordered()
        .border_style(border)
        .title(Line::from(title))
}

/// The first row of a window of `height` rows over `len` rows that shows `selected`, moved as
/// little as possible from last frame's.
fn window(offset: &Cell<usize>, selected: usize, height: usize, len: usize) -> usize {
    let height = height.max(1);
    let mut off = offset.get().min(len.saturating_sub(height));
    if selected < off {
        off = selected;
    } else if selected >= off + height {
        off = selected + 1 - height;
    }
    offset.set(off);
    off
}

/// Draws `items` (the window's rows) with the selected one highlighted.
fn render_window(
    frame: &mut Frame,
    area: Rect,
    block: Block,
    items: Vec<ListItem>,
    selected: Option<usize>,
    focused: bool,
) {
    let highlight = if focused {
        Style::new().add_modifier(Modifier::REVERSED)
    } else {
        Style::new().bg(Color::DarkGray)
    };
    let list = List::new(items).block(block).highlight_style(highlight);
    let mut state = ListState::default().with_selected(selected);
    frame.render_stateful_widget(list, area, &mut state);
}

fn draw_modules(app: &App, frame: &mut Frame, area: Rect) {
    let focused = app.focus == Pane::Modules && app.detail.is_none();
    let mut title = vec![Span::styled(
        format!(" Modules {} ", app.visible_rows.len()),
        bold(),
    )];
    if app.visible_rows.len() != app.rows.len() {
        title.push(Span::raw(format!("of {} ", app.rows.len())));
    }
    if app.findings_only {
        title.push(Span::styled(
            "· with findings ",
            Style::new().fg(Color::Yellow),
        ));
    }
    if let Some(f) = &app.filter {
        title.push(Span::styled(
            format!("· filter: {} ", clean(f)),
            Style::new().fg(Color::Cyan),
        ));
    }
    let block = pane_block(title, focused);
    let inner = block.inner(area);
    let height = usize::from(inner.height);
    if focused {
        app.scroll.page.set(height);
    }
    let width = usize::from(inner.width);
    // Names as wide as the longest, marks right after; long names are cut to leave the marks.
    let name_width = app
        .label_width
        .min(width.saturating_sub(MARKS_WIDTH + 1))
        .max(12);
    let sel = app.selected_row_pos();
    let off = window(
        &app.scroll.modules,
        sel.unwrap_or(0),
        height,
        app.visible_rows.len(),
    );
    let end = (off + height).min(app.visible_rows.len());
    let items: Vec<ListItem> = app.visible_rows[off..end]
        .iter()
        .map(|&r| ListItem::new(module_line(app, r, name_width)))
        .collect();
    if items.is_empty() {
        let text = if app.rows.is_empty() {
            "no Go module traffic seen yet"
        } else {
            "no module matches"
        };
        frame.render_widget(Paragraph::new(Span::styled(text, dim())).block(block), area);
        return;
    }
    render_window(frame, area, block, items, sel.map(|s| s - off), focused);
}

fn module_line(app: &App, r: usize, name_width: usize) -> Line<'static> {
    let row = &app.rows[r];
    let mut spans = vec![Span::raw(pad(
        &fit(&clean(&row.label), name_width),
        name_width,
    ))];
    spans.push(Span::raw(" "));
    spans.push(if row.plaintext {
        Span::styled("http", bad())
    } else {
        Span::raw("    ")
    });
    spans.push(Span::raw(" "));
    spans.push(match app.tls_mark(row) {
        Some(TlsMark::Verified) => Span::styled("tls✓", good()),
        Some(TlsMark::Hidden) => Span::styled("tls?", dim()),
        Some(TlsMark::Refused) => Span::styled("tls✗", Style::new().fg(Color::Yellow)),
        Some(TlsMark::Unverified) => Span::styled("tls!", bad()),
        None => Span::raw("    "),
    });
    spans.push(Span::raw(" "));
    spans.push(if row.sumdb_finding {
        Span::styled("sum!", bad())
    } else if row.sumdb_lookup_ok {
        Span::styled("sum✓", good())
    } else {
        Span::styled("sum-", dim())
    });
    spans.push(Span::raw(" "));
    spans.push(if row.h1_mismatch {
        Span::styled("h1✗", bad())
    } else if row.journey.h1.is_some() {
        Span::styled("h1✓", good())
    } else {
        Span::styled("h1-", dim())
    });
    spans.push(Span::raw(" "));
    spans.push(if row.fallbacks > 0 {
        Span::styled(
            pad(&format!("fb{}", row.fallbacks), 4),
            Style::new().fg(Color::Yellow),
        )
    } else {
        Span::raw("    ")
    });
    spans.push(Span::raw(" "));
    spans.push(if row.redirects > 0 {
        Span::styled(
            pad(&format!("rd{}", row.redirects), 4),
            Style::new().fg(Color::Cyan),
        )
    } else {
        Span::raw("    ")
    });
    spans.push(Span::raw(" "));
    for s in Severity::ALL.iter().rev() {
        let n = row.severities[*s as usize];
        if n > 0 {
            spans.push(Span::styled(
                format!("{n} {} ", short_severity(*s)),
                severity_style(*s),
            ));
        }
    }
    Line::from(spans)
}

fn draw_journey(app: &App, frame: &mut Frame, area: Rect) {
    let focused = app.focus == Pane::Journey && app.detail.is_none();
    let row = app.selected_row.and_then(|r| app.rows.get(r));
    let mut title = vec![Span::styled(" Journey ", bold())];
    if let Some(r) = row {
        title.push(Span::raw(format!("{} ", clean(&r.label))));
    }
    let block = pane_block(title, focused);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(row) = row else {
        frame.render_widget(
            Paragraph::new(Span::styled("no module selected", dim())),
            inner,
        );
        return;
    };
    let mut list_area = inner;
    if row.journey.h1.is_some() || row.journey.mod_h1.is_some() {
        let [head, rest] =
            Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(inner);
        let text = format!(
            "zip {}  go.mod {}",
            row.journey.h1.as_deref().map_or("-".into(), clean),
            row.journey.mod_h1.as_deref().map_or("-".into(), clean)
        );
        frame.render_widget(Paragraph::new(Span::styled(text, dim())), head);
        list_area = rest;
    }
    let height = usize::from(list_area.height);
    if focused {
        app.scroll.page.set(height);
    }
    let off = window(
        &app.scroll.journey,
        app.selected_line,
        height,
        app.tree.len(),
    );
    let end = (off + height).min(app.tree.len());
    let items: Vec<ListItem> = app.tree[off..end]
        .iter()
        .map(|l| ListItem::new(hop_line(app, l)))
        .collect();
    let list = List::new(items).highlight_style(if focused {
        Style::new().add_modifier(Modifier::REVERSED)
    } else {
        Style::new()
    });
    let sel = (!app.tree.is_empty()).then(|| app.selected_line - off);
    let mut state = ListState::default().with_selected(sel);
    frame.render_stateful_widget(list, list_area, &mut state);
}

pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

fn duration(ms: Option<f64>) -> String {
    match ms {
        Some(ms) if ms >= 1000.0 => format!("{:.2}s", ms / 1000.0),
        Some(ms) if ms >= 0.0 => format!("{ms:.1}ms"),
        _ => "-".into(),
    }
}

fn status_style(status: Option<u16>) -> Style {
    match status {
        Some(200..=299) => good(),
        Some(300..=399) => Style::new().fg(Color::Cyan),
        Some(_) => Style::new().fg(Color::Yellow),
        None => dim(),
    }
}

/// One hop: `#1 info 200 http 92 B 0.4 ms fallback after #0 → 127.0.0.1:8083`.
fn hop_line(app: &App, l: &TreeLine) -> Line<'static> {
    let h = &l.hop;
    let info = h.exchange.and_then(|x| app.hop_info(x));
    let mut spans = Vec::new();
    if l.depth > 0 {
        spans.push(Span::styled(
            format!("{}└ ", "  ".repeat(l.depth - 1)),
            dim(),
        ));
    }
    spans.push(Span::raw(format!("#{:<2} {:<6} ", l.number, h.op.as_str())));
    spans.push(match &h.failed {
        // A connection that failed before any request: how, where the status would be.
        Some(f) => Span::styled(f.failure.as_str().to_string(), bad()),
        None => Span::styled(
            format!("{:>3}", h.status.map_or("---".into(), |s| s.to_string())),
            status_style(h.status),
        ),
    });
    spans.push(Span::raw(" "));
    spans.push(if h.scheme == "http" {
        Span::styled("http ", bad())
    } else if h.scheme.is_empty() {
        Span::raw(pad("-", 5))
    } else {
        Span::raw(pad(&clean(&h.scheme), 5))
    });
    if h.failed.is_some() {
        spans.push(Span::styled("(no request sent)  ", dim()));
    } else {
        spans.push(Span::raw(format!(
            "{:>8} {:>6}  ",
            info.map_or("-".into(), |i| human_bytes(i.bytes)),
            duration(info.and_then(|i| i.duration_ms)),
        )));
    }
    match &h.after {
        Some(HopLink::Fallback { from, cause }) if cause == "404" || cause == "410" => {
            spans.push(Span::styled(
                format!("fallback after #{from}"),
                Style::new().fg(Color::Yellow),
            ))
        }
        Some(HopLink::Fallback { from, cause }) => spans.push(Span::styled(
            format!("fallback after #{from} ({cause})"),
            Style::new().fg(Color::Yellow),
        )),
        Some(HopLink::Redirect { from }) => spans.push(Span::styled(
            format!("redirected from #{from}"),
            Style::new().fg(Color::Cyan),
        )),
        None => {}
    }
    if let Some(n) = l.returns_to {
        spans.push(Span::styled(format!(" ↺ #{n}"), bad()));
    }
    if h.after.is_some() || l.returns_to.is_some() {
        spans.push(Span::raw("  "));
    }
    // client -> [forward proxy] -> server; an upstream hop starts at the mirror that asked.
    let from = match &l.asked_by {
        Some(m) => format!("{} → ", clean(m)),
        None => "→ ".into(),
    };
    let via = h
        .via
        .as_deref()
        .map_or(String::new(), |v| format!("via {} → ", clean(v)));
    let authority = super::app::authority(&h.url);
    spans.push(Span::raw(format!("{from}{via}{}", clean(authority))));
    // The rest of the URL, for the wide screen (the path names the module already).
    if let Some((_, rest)) = h.url.split_once(authority) {
        spans.push(Span::styled(clean(rest), dim()));
    }
    Line::from(spans)
}

/// Findings listed, by severity (all of them unless a filter hides some).
fn counts_spans(app: &App) -> Vec<Span<'static>> {
    let mut counts = app.counts;
    if app.visible_findings.len() != app.findings.len() {
        counts = [0; 5];
        for &p in &app.visible_findings {
            counts[app.findings[p].severity as usize] += 1;
        }
    }
    let mut out = Vec::new();
    for s in Severity::ALL.iter().rev() {
        let n = counts[*s as usize];
        if n > 0 {
            if !out.is_empty() {
                out.push(Span::raw(", "));
            }
            out.push(Span::styled(format!("{n} {s}"), severity_style(*s)));
        }
    }
    out
}

fn draw_findings(app: &App, frame: &mut Frame, area: Rect) {
    let focused = app.focus == Pane::Findings && app.detail.is_none();
    let mut title = vec![Span::styled(
        format!(" Findings {}", app.visible_findings.len()),
        bold(),
    )];
    if app.visible_findings.len() != app.findings.len() {
        title.push(Span::raw(format!(" of {}", app.findings.len())));
    }
    let counts = counts_spans(app);
    if !counts.is_empty() {
        title.push(Span::raw(": "));
        title.extend(counts);
    }
    title.push(Span::raw(" "));
    let block = pane_block(title, focused);
    let inner = block.inner(area);
    let height = usize::from(inner.height);
    if focused {
        app.scroll.page.set(height);
    }
    let sel = app.selected_finding_pos();
    let off = window(
        &app.scroll.findings,
        sel.unwrap_or(0),
        height,
        app.visible_findings.len(),
    );
    let end = (off + height).min(app.visible_findings.len());
    let items: Vec<ListItem> = app.visible_findings[off..end]
        .iter()
        .map(|&p| ListItem::new(finding_line(&app.findings[p])))
        .collect();
    if items.is_empty() {
        let text = if app.findings.is_empty() {
            "none yet"
        } else {
            "no finding matches"
        };
        frame.render_widget(Paragraph::new(Span::styled(text, dim())).block(block), area);
        return;
    }
    render_window(frame, area, block, items, sel.map(|s| s - off), focused);
}

fn finding_line(f: &Finding) -> Line<'static> {
    Line::from(vec![
        Span::styled(
            format!("{:<8} ", f.severity.as_str().to_uppercase()),
            severity_style(f.severity),
        ),
        Span::styled(format!("{}  ", f.rule.id()), bold()),
        Span::raw(clean(&f.message)),
    ])
}

/// Time of day of a capture timestamp, UTC.
fn clock(ts: Ts) -> String {
    let s = ts.rfc3339();
    s.split_once('T').map_or(s.clone(), |(_, t)| t.to_string())
}

fn status_line(app: &App) -> Line<'static> {
    let s = &app.status;
    // Most important first: a narrow screen cuts from the right.
    let mut parts: Vec<Span> = vec![Span::raw(" ")];
    parts.push(if s.finished {
        Span::styled("FINISHED", bold())
    } else if s.paused {
        Span::styled(
            "PAUSED",
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        )
    } else if s.live {
        Span::styled("LIVE", good())
    } else {
        Span::raw("replaying")
    });
    let sep = || Span::raw(" │ ");
    // A demo act over: what next, before anything a narrow screen would cut.
    if let (true, Some(d)) = (s.finished, &app.demo) {
        parts.push(sep());
        parts.push(Span::styled(
            explain::next_act_hint(d),
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        ));
    }
    if let Some(f) = &app.filter {
        parts.push(sep());
        parts.push(Span::styled(
            format!("filter: {}", clean(f)),
            Style::new().fg(Color::Cyan),
        ));
    }
    if !s.live {
        parts.push(sep());
        parts.push(Span::raw(s.speed.label()));
    }
    parts.push(sep());
    parts.push(Span::raw(s.clock.map_or("--:--:--".into(), clock)));
    parts.push(sep());
    parts.push(Span::styled(
        clean(if s.source.is_empty() { "-" } else { &s.source }),
        bold(),
    ));
    parts.push(sep());
    parts.push(Span::raw(format!(
        "{} packets, {}",
        s.packets,
        human_bytes(s.bytes)
    )));
    parts.push(sep());
    parts.push(Span::raw(format!(
        "{}/s",
        human_bytes(s.rate.max(0.0) as u64)
    )));
    if let Some(d) = s.drops {
        parts.push(sep());
        parts.push(if d > 0 {
            Span::styled(format!("{d} dropped"), bad())
        } else {
            Span::raw("0 dropped")
        });
    }
    if let Some(n) = &app.note {
        parts.push(sep());
        parts.push(Span::raw(clean(n)));
    }
    Line::from(parts)
}

fn footer_line(app: &App) -> Line<'static> {
    if let Some(input) = &app.filter_input {
        return Line::from(vec![
            Span::styled("/", bold()),
            Span::raw(clean(input)),
            Span::styled("▏", Style::new().fg(Color::Cyan)),
            Span::styled("  Enter apply · Esc cancel · empty clears", dim()),
        ]);
    }
    let mut spans = Vec::new();
    for b in bindings(app.demo.is_some()).filter(|b| !b.hint.is_empty()) {
        spans.push(Span::styled(
            b.label,
            Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
        ));
        spans.push(Span::raw(format!(" {}  ", b.hint)));
    }
    Line::from(spans)
}

/// A rectangle of at most `w` x `h` in the middle of `area`.
fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

/// Words of `text` in lines of at most `width` characters (long words are cut).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(8);
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in text.split_whitespace() {
        let mut word: Vec<char> = word.chars().collect();
        while word.len() > width {
            if !cur.is_empty() {
                lines.push(std::mem::take(&mut cur));
            }
            lines.push(word.drain(..width).collect());
        }
        let word: String = word.into_iter().collect();
        let n = cur.chars().count();
        if n > 0 && n + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(&word);
    }
    if !cur.is_empty() || lines.is_empty() {
        lines.push(cur);
    }
    lines
}

/// Lines of a detail view, built for one width.
struct Doc {
    lines: Vec<Line<'static>>,
    width: usize,
}

impl Doc {
    fn heading(&mut self, s: &str) {
        if !self.lines.is_empty() {
            self.lines.push(Line::raw(""));
        }
        self.lines.push(Line::styled(s.to_string(), bold()));
    }
    fn line(&mut self, spans: Vec<Span<'static>>) {
        self.lines.push(Line::from(spans));
    }
    /// `text` wrapped, each line indented.
    fn text(&mut self, indent: usize, text: &str, style: Style) {
        for l in wrap(&clean(text), self.width.saturating_sub(indent)) {
            self.lines
                .push(Line::styled(format!("{}{l}", " ".repeat(indent)), style));
        }
    }
    fn field(&mut self, indent: usize, name: &str, value: &str) {
        self.field_w(indent, 9, name, value);
    }
    /// `name` in a column of `width`, then `value` wrapped beside it.
    fn field_w(&mut self, indent: usize, width: usize, name: &str, value: &str) {
        let lead = format!("{}{name:<width$} ", " ".repeat(indent));
        let rest = wrap(
            &clean(value),
            self.width.saturating_sub(lead.chars().count()),
        );
        for (i, l) in rest.into_iter().enumerate() {
            let head = if i == 0 {
                Span::styled(lead.clone(), dim())
            } else {
                Span::raw(" ".repeat(lead.chars().count()))
            };
            self.lines.push(Line::from(vec![head, Span::raw(l)]));
        }
    }
}

/// Header values as shown: credentials only as `Scheme user:***` / `Scheme ***`, cookies only
/// as `name=***`, whatever the capture side did (the exchange's headers are redacted already;
/// this makes sure nothing else reaches the screen).
pub fn safe_header_value(name: &str, value: &str) -> String {
    let lower = name.to_ascii_lowercase();
    if lower == "authorization" || lower == "proxy-authorization" {
        let v = value.trim();
        let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
        let scheme = fit(scheme, 20);
        let rest = rest.trim();
        let user_ok = rest
            .strip_suffix(":***")
            .is_some_and(|u| !u.is_empty() && !u.contains([' ', ':']));
        return if rest == "***" || user_ok {
            format!("{scheme} {rest}")
        } else {
            format!("{scheme} ***")
        };
    }
    let redact = |kv: &str| -> String {
        let kv = kv.trim();
        match kv.split_once('=') {
            Some((k, "***")) => format!("{k}=***"),
            Some((k, _)) => format!("{}=***", k.trim()),
            None => "***".into(),
        }
    };
    if lower == "cookie" {
        return value.split(';').map(redact).collect::<Vec<_>>().join("; ");
    }
    if lower == "set-cookie" {
        let mut parts = value.splitn(2, ';');
        let first = redact(parts.next().unwrap_or(""));
        return match parts.next() {
            Some(rest) => format!("{first};{rest}"),
            None => first,
        };
    }
    value.to_string()
}

fn draw_detail(app: &App, frame: &mut Frame, body: Rect, d: Detail) {
    let area = body;
    let title = match d {
        Detail::Exchange(x) => format!(" Exchange {x} "),
        Detail::Attempt(flow) => format!(" Failed connection (flow {flow}) "),
        Detail::Finding(p) => format!(
            " Finding: {} ",
            app.findings.get(p).map_or("?", |f| f.rule.id())
        ),
    };
    let block = Block::bordered()
        .border_style(Style::new().fg(Color::Cyan))
        .title(Line::styled(title, bold()))
        .title_bottom(Line::styled(" Esc closes · ↑↓ PgUp PgDn scroll ", dim()));
    let inner = block.inner(area);
    let mut doc = Doc {
        lines: Vec::new(),
        width: usize::from(inner.width),
    };
    match d {
        Detail::Exchange(x) => exchange_detail(app, x, &mut doc),
        Detail::Attempt(flow) => attempt_detail(app, flow, &mut doc),
        Detail::Finding(p) => finding_detail(app, p, &mut doc),
    }
    let height = usize::from(inner.height);
    let max = doc.lines.len().saturating_sub(height);
    let off = app.scroll.detail.get().min(max);
    app.scroll.detail.set(off);
    app.scroll.page.set(height);
    let shown: Vec<Line> = doc.lines.into_iter().skip(off).take(height).collect();
    frame.render_widget(Clear, area);
    frame.render_widget(Paragraph::new(shown).block(block), area);
}

fn exchange_detail(app: &App, id: u64, doc: &mut Doc) {
    let line = app.tree.iter().find(|l| l.hop.exchange == Some(id));
    let Some(x) = app.exchange(id) else {
        doc.text(
            0,
            &format!(
                "Exchange {id}: its headers are no longer kept (the last {} exchanges are).",
                super::app::MAX_FULL_EXCHANGES
            ),
            dim(),
        );
        if let Some(l) = line {
            doc.field(0, "url", &l.hop.url);
        }
        return;
    };
    doc.line(vec![
        Span::styled(format!("{} ", clean(&x.method)), bold()),
        Span::raw(clean(&x.url)),
    ]);
    let what = match crate::gomod::label_of(&x.module, &x.version) {
        Some(mv) => format!("{} of {mv}", x.op),
        None => x.op.to_string(),
    };
    doc.field(
        0,
        "what",
        &format!(
            "{what}; {} {}; {} bytes; {}",
            x.http_version,
            x.status.map_or("no response".into(), |s| s.to_string()),
            x.bytes,
            duration(x.duration_ms)
        ),
    );
    let server = match &x.server_name {
        Some(n) => format!("{} ({n})", x.server),
        None => x.server.to_string(),
    };
    let route = match &x.via {
        Some(v) => format!("client {} → forward proxy {v} → {server}", x.client),
        None => format!("client {} → {server}", x.client),
    };
    doc.field(0, "route", &route);
    doc.field(
        0,
        "evidence",
        &format!(
            "exchange {}, flow {}, packet {}, at {}",
            x.id,
            x.flow,
            x.packet,
            x.start.rfc3339()
        ),
    );
    if let Some(l) = line {
        match &l.hop.after {
            Some(HopLink::Fallback { from, cause }) if cause == "404" || cause == "410" => doc
                .field(
                    0,
                    "link",
                    &format!("fallback after #{from}: the GOPROXY entry before answered {cause}"),
                ),
            Some(HopLink::Fallback { from, cause }) => doc.field(
                0,
                "link",
                &format!(
                    "fallback after #{from} ({cause}): only a `|` in GOPROXY goes on after that"
                ),
            ),
            Some(HopLink::Redirect { from }) => {
                doc.field(0, "link", &format!("redirected from #{from}"))
            }
            None => {}
        }
        if let Some(n) = l.returns_to {
            doc.field(
                0,
                "loop",
                &format!("↺ this URL was already asked for by #{n} in this redirect chain"),
            );
        }
        if let Some(m) = &l.asked_by {
            doc.field(0, "upstream", &format!("asked by the mirror at {m}"));
        }
    }
    if let Some(loc) = &x.location {
        doc.field(0, "location", loc);
    }
    if let Some(c) = &x.credential {
        doc.field(
            0,
            "auth",
            &format!(
                "{}{}, in {} (the secret is not kept)",
                c.scheme,
                c.user
                    .as_deref()
                    .map_or(String::new(), |u| format!(", user {u}")),
                c.source
            ),
        );
    }
    if let Some(h) = &x.h1 {
        doc.field(0, "h1", h);
    }
    if let Some(h) = &x.sha256 {
        doc.field(0, "sha256", h);
    }
    if !x.complete {
        doc.field(
            0,
            "body",
            "incomplete: the response ended before its framing said",
        );
    }
    if let Some(p) = &x.process {
        doc.field(0, "process", p);
    }
    for (title, headers) in [
        ("Request headers", &x.request_headers),
        ("Response headers", &x.response_headers),
    ] {
        doc.heading(title);
        if headers.is_empty() {
            doc.text(2, "(none)", dim());
        }
        for h in headers {
            let v = safe_header_value(&h.name, &h.value);
            let lead = format!("  {}: ", clean(&h.name));
            let n = lead.chars().count();
            for (i, l) in wrap(&clean(&v), doc.width.saturating_sub(n))
                .into_iter()
                .enumerate()
            {
                let head = if i == 0 {
                    Span::styled(lead.clone(), Style::new().fg(Color::Cyan))
                } else {
                    Span::raw(" ".repeat(n))
                };
                doc.line(vec![head, Span::raw(l)]);
            }
        }
    }
    doc.heading("TLS");
    match app.tls_of_flow(x.flow) {
        Some(t) => tls_detail(t, doc),
        None if x.scheme == "http" => doc.text(2, "none: plain HTTP", bad()),
        None => doc.text(
            2,
            "the session is summarised when its connection ends",
            dim(),
        ),
    }
    let fs = app.findings_of_exchange(id);
    if !fs.is_empty() {
        doc.heading("Findings with this exchange as evidence");
        for &p in fs {
            if let Some(f) = app.findings.get(p) {
                let mut l = finding_line(f);
                l.spans.insert(0, Span::raw("  "));
                doc.lines.push(l);
            }
        }
    }
}

fn tls_detail(t: &TlsRecord, doc: &mut Doc) {
    let alpn = if t.alpn.is_empty() {
        "-".into()
    } else {
        t.alpn.join(",")
    };
    doc.field(
        2,
        "session",
        &format!(
            "{} → {} sni {} · {} · {} · alpn {}{}",
            t.client,
            t.server,
            t.sni.as_deref().unwrap_or("-"),
            t.version.as_deref().unwrap_or("?"),
            t.cipher.as_deref().unwrap_or("?"),
            alpn,
            t.alpn_selected
                .as_deref()
                .map_or(String::new(), |a| format!(" (chose {a})"))
        ),
    );
    use crate::detect::tls::CertificateCheck;
    let verdict = t.client_verdict();
    // The TUI has room for every reason, the validator's detail, and why it is hidden.
    let (check, style) = match t.certificate_check() {
        c @ CertificateCheck::Valid => (c.short(), good()),
        CertificateCheck::Invalid(v) => {
            let mut r = v.reason.map_or("?".to_string(), |r| r.as_str().to_string());
            for a in &v.also {
                r.push_str(", ");
                r.push_str(a.as_str());
            }
            (format!("certificate INVALID ({r}): {}", v.detail), bad())
        }
        CertificateCheck::Hidden => ("certificate hidden (TLS 1.3, no key log)".into(), dim()),
        c @ CertificateCheck::NotSeen => (c.short(), dim()),
    };
    let lead = format!("  {:<9} ", "check");
    for (i, l) in wrap(
        &clean(&format!("{check}; {verdict}")),
        doc.width.saturating_sub(lead.len()),
    )
    .into_iter()
    .enumerate()
    {
        let head = if i == 0 {
            Span::styled(lead.clone(), dim())
        } else {
            Span::raw(" ".repeat(lead.len()))
        };
        doc.line(vec![head, Span::styled(l, style)]);
    }
    if let Some(via) = &t.via {
        doc.field(
            2,
            "via",
            &format!("through the forward proxy {via} (CONNECT)"),
        );
    }
    if let Some(h) = &t.go_host {
        doc.field(2, "go host", h);
    }
    if t.client_certificate_requested {
        doc.field(2, "mTLS", "the server asked for a client certificate");
    }
    match &t.decryption {
        Some(d) => match &d.unavailable {
            Some(why) => doc.field(2, "decrypt", &format!("not decrypted: {why}")),
            None => {
                let mut s = format!(
                    "{} records, {} bytes to server, {} to client",
                    d.records_decrypted, d.plaintext_bytes_to_server, d.plaintext_bytes_to_client
                );
                if d.records_failed > 0 {
                    s.push_str(&format!(
                        "; {} FAILED ({})",
                        d.records_failed,
                        d.first_failure.as_deref().unwrap_or("-")
                    ));
                }
                if d.records_skipped > 0 {
                    s.push_str(&format!("; {} skipped", d.records_skipped));
                }
                doc.field(2, "decrypted", &s);
            }
        },
        None => doc.field(2, "decrypt", "no key log"),
    }
    if !t.alerts.is_empty() {
        doc.field(2, "alerts", &t.alerts.join("; "));
    }
    doc.field(
        2,
        "evidence",
        &format!(
            "flow {}, first packet {}, at {}",
            t.flow,
            t.packet,
            t.start.rfc3339()
        ),
    );
    if t.certificates.is_empty() {
        return;
    }
    doc.line(vec![Span::styled(
        format!("  certificate chain ({}, leaf first)", t.certificates.len()),
        bold(),
    )]);
    for (i, c) in t.certificates.iter().enumerate() {
        doc.line(vec![Span::styled(format!("   [{i}]"), dim())]);
        doc.field_w(4, 7, "subject", &c.subject);
        doc.field_w(4, 7, "issuer", &c.issuer);
        doc.field_w(
            4,
            7,
            "valid",
            &format!("{} to {}", c.not_before, c.not_after),
        );
        if !c.sans.is_empty() {
            doc.field_w(4, 7, "names", &c.sans.join(", "));
        }
        doc.field_w(4, 7, "sha256", &c.sha256);
    }
}

/// A connection that failed before any request: what failed, and what the go command did
/// next (the request whose journey it joined).
fn attempt_detail(app: &App, flow: u64, doc: &mut Doc) {
    use crate::gomod::journey::AttemptFailure as F;
    let Some((i, l)) = app
        .tree
        .iter()
        .enumerate()
        .find(|(_, l)| l.hop.failed.as_ref().is_some_and(|f| f.flow == flow))
    else {
        doc.text(
            0,
            &format!("Flow {flow} is no longer in this journey."),
            dim(),
        );
        return;
    };
    let Some(f) = &l.hop.failed else {
        return;
    };
    let what = match f.failure {
        F::Refused => "refused: the server answered the SYN with a RST (nothing listens there)",
        F::Reset => "reset by the server after connecting, before any request",
        F::Closed => "closed by the server after connecting, before any request",
        F::TlsFailed => "the TLS handshake failed or the client refused the certificate",
        F::NoAnswer => "no answer to the SYN",
    };
    doc.line(vec![
        Span::styled(format!("{} ", f.failure.as_str()), bad()),
        Span::raw(clean(&l.hop.url)),
    ]);
    doc.field(0, "failure", what);
    if let Some(d) = &f.detail {
        doc.field(0, "detail", d);
    }
    doc.field(0, "server", &l.hop.server.to_string());
    doc.field(
        0,
        "evidence",
        &format!("flow {flow}; no request was sent on it"),
    );
    let next = app.tree[i + 1..].iter().find(
        |n| matches!(&n.hop.after, Some(HopLink::Fallback { from, .. }) if *from == l.number),
    );
    if let Some(n) = next {
        doc.field(
            0,
            "next",
            &format!(
                "#{} {} {} {}",
                n.number,
                n.hop.op,
                n.hop.status.map_or("---".into(), |s| s.to_string()),
                clean(&n.hop.url)
            ),
        );
    }
    doc.lines.push(Line::raw(""));
    doc.text(
        0,
        &format!(
            "Inferred: a failed connection carries no module path. It is the {} the go command \
            then asked of the next GOPROXY entry (same host, in order, within 60 s; with \
            --go-env, only across a `|` of the list). Only `|` goes on after such a failure: \
            whoever can make this entry fail diverts the request to the next one.",
            l.hop.op
        ),
        Style::new(),
    );
}

fn finding_detail(app: &App, pos: usize, doc: &mut Doc) {
    let Some(f) = app.findings.get(pos) else {
        return;
    };
    let text = f.rule.text();
    doc.line(vec![
        Span::styled(
            format!("{} ", f.severity.as_str().to_uppercase()),
            severity_style(f.severity),
        ),
        Span::styled(format!("{}  ", text.id), bold()),
        Span::raw(text.title),
    ]);
    doc.lines.push(Line::raw(""));
    doc.text(0, &f.message, Style::new());
    doc.lines.push(Line::raw(""));
    if let Some(mv) = crate::gomod::label_of(&f.module, &f.version) {
        doc.field(0, "module", &mv);
    }
    if let Some(p) = &f.process {
        doc.field(0, "process", p);
    }
    let ev = &f.evidence;
    doc.field(
        0,
        "evidence",
        &format!("first packet {} at {}", ev.packet, ev.time.rfc3339()),
    );
    let mut ids: Vec<String> = ev
        .exchanges
        .iter()
        .take(DETAIL_EXCHANGES * 5)
        .map(u64::to_string)
        .collect();
    if ev.exchanges.len() > ids.len() {
        ids.push(format!("+{}", ev.exchanges.len() - ids.len()));
    }
    if !ids.is_empty() {
        doc.field(0, "exchanges", &ids.join(", "));
    }
    if !ev.flows.is_empty() {
        let flows: Vec<String> = ev.flows.iter().take(50).map(u64::to_string).collect();
        doc.field(0, "flows", &flows.join(", "));
    }
    for &x in ev.exchanges.iter().take(DETAIL_EXCHANGES) {
        if let Some(e) = app.exchange(x) {
            doc.line(vec![
                Span::styled(format!("  {x:>5} "), dim()),
                Span::raw(format!("{} ", clean(&e.method))),
                Span::styled(
                    format!("{} ", e.status.map_or("---".into(), |s| s.to_string())),
                    status_style(e.status),
                ),
                Span::raw(format!("packet {} ", e.packet)),
                Span::raw(clean(&e.url)),
            ]);
        }
    }
    doc.heading("What it means");
    doc.text(2, text.meaning, Style::new());
    doc.heading("Fix");
    doc.text(2, text.fix, Style::new());
}

fn draw_help(frame: &mut Frame, area: Rect, demo: bool) {
    const COLUMN: usize = 38;
    let keys: Vec<&super::app::Binding> = bindings(demo).collect();
    let w = area.width.saturating_sub(2).min(100);
    // Two columns of keys when they fit, so 80x24 shows the whole table.
    let columns = if usize::from(w).saturating_sub(2) >= 2 * COLUMN {
        2
    } else {
        1
    };
    let per_column = keys.len().div_ceil(columns);
    let key_spans = |b: &super::app::Binding| {
        vec![
            Span::styled(
                format!(" {:<7}", b.label),
                Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
            ),
            Span::raw(pad(b.help, COLUMN - 8)),
        ]
    };
    let mut lines: Vec<Line> = Vec::new();
    for i in 0..per_column {
        let mut spans = Vec::new();
        for c in 0..columns {
            if let Some(b) = keys.get(c * per_column + i) {
                spans.extend(key_spans(b));
            }
        }
        lines.push(Line::from(spans));
    }
    lines.push(Line::raw(""));
    let legend = "Marks: http a hop over plain HTTP; tls✓ certificate valid, tls! invalid and \
                  the client went on, tls✗ invalid and refused, tls? hidden (TLS 1.3); sum✓ \
                  checksum-database lookup answered, sum! a checksum-database finding; h1✓ zip \
                  hash known, h1✗ checksum mismatch; fbN fallbacks, rdN redirects; then the \
                  findings by severity. In a journey, ↺ #n marks a redirect back to the URL \
                  hop #n asked for.";
    for l in wrap(legend, usize::from(w).saturating_sub(3)) {
        lines.push(Line::styled(format!(" {l}"), dim()));
    }
    let h = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
    let rect = centered(area, w, h);
    let block = Block::bordered()
        .border_style(Style::new().fg(Color::Cyan))
        .title(Line::styled(" Keys (any key closes) ", bold()));
    frame.render_widget(Clear, rect);
    frame.render_widget(Paragraph::new(lines).block(block), rect);
}

#[cfg(test)]
#[path = "view_tests.rs"]
pub(crate) mod tests;
