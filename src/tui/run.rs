//! The terminal loop: keys, updates and a tick merged into one loop; draw at most every
//! [`FRAME_INTERVAL`]. The terminal is restored on every way out (quit, error, panic).

use super::app::App;
use super::demo::{ActMove, DemoState, Playlist};
use super::feed::Replay;
use super::{view, Command, Speed, Status, Update, FRAME_INTERVAL};
use crate::pipeline::Config;
use ratatui::crossterm::event::{self, Event as TermEvent, KeyEventKind};
use std::collections::VecDeque;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::Instant;

/// Updates held while a live view is paused (the capture goes on); past this the oldest are
/// dropped and counted, so a long pause cannot grow memory without bound.
const MAX_HELD_UPDATES: usize = 200_000;

/// Where the screen's commands go.
pub trait Controller {
    fn command(&mut self, cmd: Command);
}

impl Controller for Replay {
    fn command(&mut self, cmd: Command) {
        Replay::command(self, cmd);
    }
}

/// A controller for a screen with nothing behind it (a demo act that could not be opened).
struct Nothing;

impl Controller for Nothing {
    fn command(&mut self, _: Command) {}
}

/// Why the screen's loop returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LoopEnd {
    Quit,
    /// Demo: on to another act.
    Act(ActMove),
}

/// Whether the TUI can run here: standard input and output are terminals.
pub fn has_terminal() -> bool {
    std::io::stdout().is_terminal() && std::io::stdin().is_terminal()
}

/// `modtrace replay`: the TUI over a replay of `files`.
pub fn replay(
    files: Vec<PathBuf>,
    cfg: Config,
    speed: Speed,
    pause_on_findings: bool,
) -> Result<(), String> {
    if !has_terminal() {
        return Err(
            "replay draws on a terminal and this is not one; `modtrace analyze FILE` prints the same analysis"
                .into(),
        );
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let label = super::feed::source_label(&files);
    let mut replay = Replay::spawn(files, cfg, speed, pause_on_findings, tx)?;
    let status = Status {
        source: label,
        speed,
        ..Status::default()
    };
    run(rx, status, &mut replay, false).map_err(|e| format!("terminal: {e}"))
}

/// Runs the screen until the user quits (or, `live`, until the sender hangs up and the user
/// quits). `live`: pause and step act on the screen (updates are held), not on the source.
pub fn run(
    rx: Receiver<Update>,
    status: Status,
    ctl: &mut dyn Controller,
    live: bool,
) -> std::io::Result<()> {
    let mut terminal = ratatui::try_init()?;
    let mut app = App::new(status);
    let result = ui_loop(&mut terminal, &mut app, rx, ctl, live).map(drop);
    ratatui::try_restore()?;
    result
}

/// `modtrace demo`: the lessons' recordings in `dir`, act after act from the playlist's
/// current one, each replayed at `speed` with a pause at every finding and the explanation
/// panel. `config` gives each act's analysis configuration (the lessons' flags; each act adds
/// the key log embedded in its recording).
pub fn demo(
    mut playlist: Playlist,
    dir: &Path,
    config: &dyn Fn() -> Result<Config, String>,
    speed: Speed,
) -> Result<(), String> {
    // What can be wrong before the screen opens, said plainly: the first act's recording,
    // the lessons' files (CA, go.sum, policy), then the terminal.
    let first = playlist.current();
    if !first.capture(dir).is_file() {
        return Err(format!("demo: {}", first.missing_recording(dir)));
    }
    config().map_err(|e| format!("demo: {e}"))?;
    if !has_terminal() {
        let mut cmd = format!("modtrace analyze {}", first.capture(dir).display());
        for a in crate::lesson::analysis_args(dir) {
            cmd.push(' ');
            cmd.push_str(&a);
        }
        return Err(format!(
            "demo draws on a terminal and this is not one; `{cmd}` prints the same analysis"
        ));
    }
    let mut terminal = ratatui::try_init().map_err(|e| format!("terminal: {e}"))?;
    let result = demo_acts(&mut terminal, &mut playlist, dir, config, speed);
    ratatui::try_restore().map_err(|e| format!("terminal: {e}"))?;
    result
}

/// One act after another, in the same terminal, until the user quits.
fn demo_acts(
    terminal: &mut ratatui::DefaultTerminal,
    playlist: &mut Playlist,
    dir: &Path,
    config: &dyn Fn() -> Result<Config, String>,
    speed: Speed,
) -> Result<(), String> {
    loop {
        let act = playlist.current();
        let file = act.capture(dir);
        // Each act starts paused on its story; space starts the replay.
        let status = Status {
            source: super::feed::source_label(std::slice::from_ref(&file)),
            speed,
            paused: true,
            ..Status::default()
        };
        let mut app = App::for_demo(status, DemoState::of(playlist));
        let (tx, rx) = std::sync::mpsc::channel();
        // A later act whose recording is missing or unreadable is said in its panel: the
        // other acts stay reachable.
        let replay = if file.is_file() {
            config().and_then(|cfg| Replay::spawn_paused(vec![file.clone()], cfg, speed, true, tx))
        } else {
            Err(act.missing_recording(dir))
        };
        let end = match replay {
            Ok(mut r) => ui_loop(terminal, &mut app, rx, &mut r, false),
            Err(why) => {
                if let Some(d) = app.demo.as_mut() {
                    d.unavailable = Some(why);
                }
                app.status.finished = true;
                ui_loop(terminal, &mut app, rx, &mut Nothing, false)
            }
        }
        .map_err(|e| format!("terminal: {e}"))?;
        // The act's replay stopped when it was dropped, at the end of the match.
        match end {
            LoopEnd::Quit => return Ok(()),
            LoopEnd::Act(m) => {
                playlist.step(m);
            }
        }
    }
}

fn ui_loop(
    terminal: &mut ratatui::DefaultTerminal,
    app: &mut App,
    rx: Receiver<Update>,
    ctl: &mut dyn Controller,
    live: bool,
) -> std::io::Result<LoopEnd> {
    let mut held: VecDeque<Update> = VecDeque::new();
    let mut dropped_while_paused = 0u64;
    // Live only: the screen is paused; `step` lets one event (or up to a finding) through.
    let mut paused = false;
    let mut step: Option<bool> = None; // Some(true): up to the next finding
    let mut dirty = true;
    let mut last_draw = Instant::now() - FRAME_INTERVAL;
    let mut sender_gone = false;
    loop {
        // 1. Updates (all that are waiting: the analysis never waits for the screen).
        if !sender_gone {
            loop {
                match rx.try_recv() {
                    Ok(u) => {
                        if live && (paused || !held.is_empty()) {
                            if held.len() >= MAX_HELD_UPDATES {
                                held.pop_front();
                                dropped_while_paused += 1;
                            }
                            held.push_back(u);
                        } else {
                            app.apply(u);
                        }
                        dirty = true;
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        sender_gone = true;
                        break;
                    }
                }
            }
        }
        if live {
            // Let held updates through: all when running, one event or up to a finding when
            // stepping.
            while let Some(u) = (!paused || step.is_some())
                .then(|| held.pop_front())
                .flatten()
            {
                let is_finding = matches!(u, Update::Finding { .. });
                let is_event = !matches!(u, Update::Status(_) | Update::Note(_));
                app.apply(u);
                dirty = true;
                match step {
                    Some(true) if is_finding => step = None,
                    Some(false) if is_event => step = None,
                    _ => {}
                }
            }
            if app.status.paused != paused {
                app.status.paused = paused;
                dirty = true;
            }
            if dropped_while_paused > 0 && held.is_empty() {
                app.apply(Update::Note(format!(
                    "{dropped_while_paused} updates dropped while paused"
                )));
                dropped_while_paused = 0;
            }
        }

        // 2. Draw, at most every FRAME_INTERVAL.
        if dirty && last_draw.elapsed() >= FRAME_INTERVAL {
            terminal.draw(|f| view::draw(app, f))?;
            last_draw = Instant::now();
            dirty = false;
        }

        // 3. Keys, waiting at most until the next frame is due.
        let wait = FRAME_INTERVAL.saturating_sub(last_draw.elapsed());
        let mut act_move = None;
        if event::poll(wait)? {
            match event::read()? {
                TermEvent::Key(k) if k.kind != KeyEventKind::Release => {
                    for cmd in app.on_key(k) {
                        match (live, cmd) {
                            (true, Command::TogglePause) => {
                                paused = !paused;
                                step = None;
                            }
                            (true, Command::Step) => {
                                paused = true;
                                step = Some(false);
                            }
                            (true, Command::StepToFinding) => {
                                paused = true;
                                step = Some(true);
                            }
                            (true, Command::SetSpeed(_)) => {}
                            (_, Command::Act(m)) => act_move = Some(m),
                            (_, c) => ctl.command(c),
                        }
                    }
                    dirty = true;
                }
                TermEvent::Resize(..) => dirty = true,
                _ => {}
            }
        }
        if app.quit {
            ctl.command(Command::Quit);
            return Ok(LoopEnd::Quit);
        }
        if let Some(m) = act_move {
            return Ok(LoopEnd::Act(m));
        }
        // Live: the capture stopped (SIGTERM, or a read error): the screen goes with it.
        if live && sender_gone && held.is_empty() {
            return Ok(LoopEnd::Quit);
        }
    }
}
