//! `modtrace run [options] -- COMMAND [ARGS...]`: the dev-box workflow. Starts COMMAND as the
//! user who ran sudo, reads the TLS secrets of the Go programs among it and its children,
//! captures only their traffic, and reports when COMMAND exits (or shows the TUI).
//!
//! Sequence, with root: the capture handle, the files and the key helper with its probes
//! (COMMAND's binary among them); COMMAND is started held at a gate (a pipe it reads before
//! exec) until the helper follows its pid, so not one of its secrets is missed; then this
//! process drops root like `capture` and analyses.

use super::engine::{close_writer, Engine, EngineSetup, FlowFilter, LiveParams, Opened, Output};
use super::{fail_code, go_keys_plan, live_stats, privileges, sudo_caller, summary_lines, Caller};
use crate::cli::{Format, RunArgs};
use crate::gokeys::locate::{self, Origin};
use crate::report::CommandSummary;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long the capture goes on after COMMAND exits: its last packets (FIN, ACK) and secrets
/// are still on their way through libpcap's and the key helper's buffers.
const LINGER: Duration = Duration::from_millis(500);
/// How long COMMAND gets to end after SIGTERM when the user quits the screen first.
const TERM_GRACE: Duration = Duration::from_secs(5);

pub fn main(a: &RunArgs) -> i32 {
    match run(a) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("modtrace: run: {msg}");
            2
        }
    }
}

/// Who COMMAND runs as: `--user`, the sudo caller, or this process's own user.
fn command_user(user: Option<&str>) -> Result<Option<Caller>, String> {
    if let Some(name) = user {
        let u = nix::unistd::User::from_name(name)
            .map_err(|e| format!("--user {name}: {e}"))?
            .ok_or_else(|| format!("--user {name}: no such user"))?;
        if !nix::unistd::geteuid().is_root() {
            return Err(format!(
                "--user {name}: switching users needs root (run with sudo)"
            ));
        }
        return Ok(Some(Caller {
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
            name: u.name,
            home: u.dir,
        }));
    }
    Ok(sudo_caller().filter(|_| nix::unistd::geteuid().is_root()))
}

/// COMMAND's program and the PATH it runs with. sudo's secure_path misses the user's go:
/// then the user's go command is found where [`locate`] looks, and its folder leads PATH.
fn resolve_program(program: &str, path: Option<&str>) -> Result<(PathBuf, Option<String>), String> {
    if let Some(p) = locate::which(program, path) {
        return Ok((p, None));
    }
    if program == "go" {
        let env = locate::UserEnv {
            path: path.map(str::to_string),
            home: sudo_caller()
                .map(|c| c.home)
                .or_else(|| std::env::var_os("HOME").map(PathBuf::from)),
            ..Default::default()
        };
        if let Some((go, _)) = locate::go_binaries(&env)
            .into_iter()
            .find(|(_, o)| *o == Origin::GoCommand)
        {
            let dir = go.parent().map(Path::to_path_buf).unwrap_or_default();
            let new_path = match path {
                Some(p) => format!("{}:{p}", dir.display()),
                None => dir.display().to_string(),
            };
            return Ok((go, Some(new_path)));
        }
    }
    Err(format!(
        "{program}: command not found (sudo resets PATH: give its full path)"
    ))
}

/// A private folder (0700) for COMMAND's SSLKEYLOGFILE and, under the TUI, its output, with
/// those files made in advance (0600): all owned by the account modtrace drops to, which
/// reads them and removes the folder at the end. COMMAND runs as that account too, or as
/// root, who can write them anyway.
fn private_dir(owner: (u32, u32)) -> Result<tempfile::TempDir, String> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let d = tempfile::Builder::new()
        .prefix("modtrace-run.")
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()
        .map_err(|e| format!("creating a private folder: {e}"))?;
    let (uid, gid) = (
        Some(nix::unistd::Uid::from_raw(owner.0)),
        Some(nix::unistd::Gid::from_raw(owner.1)),
    );
    for name in PRIVATE_FILES {
        let p = d.path().join(name);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&p)
            .map_err(|e| format!("{}: {e}", p.display()))?;
        nix::unistd::chown(&p, uid, gid).map_err(|e| format!("chown {}: {e}", p.display()))?;
    }
    nix::unistd::chown(d.path(), uid, gid)
        .map_err(|e| format!("chown {}: {e}", d.path().display()))?;
    Ok(d)
}

/// The files of the private folder: git's key log, COMMAND's output under the TUI.
const PRIVATE_FILES: [&str; 3] = ["sslkeylog.txt", "stdout", "stderr"];

/// COMMAND, started and held before exec: its pid is known, its program has not run yet.
struct HeldCommand {
    pid: u32,
    gate: OwnedFd,
    spawner: std::thread::JoinHandle<io::Result<Child>>,
}

impl HeldCommand {
    /// Lets COMMAND exec.
    fn release(self) -> Result<Child, String> {
        {
            let mut f = std::fs::File::from(self.gate);
            let _ = f.write_all(b"1");
        }
        self.spawner
            .join()
            .map_err(|_| "starting the command failed".to_string())?
            .map_err(|e| format!("starting the command: {e}"))
    }
}

/// Starts COMMAND held before exec (the child waits on a pipe in `pre_exec`). std's spawn
/// returns only once the child has exec'd, so it runs on a thread of its own; the child
/// writes its pid on a second pipe before it waits.
fn spawn_held(
    program: &Path,
    args: &[String],
    env: &[(String, String)],
    user: Option<&Caller>,
    tui_output: Option<(&Path, &Path)>,
) -> Result<HeldCommand, String> {
    use nix::fcntl::OFlag;
    let (gate_r, gate_w) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    let (pid_r, pid_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    let mut cmd = std::process::Command::new(program);
    cmd.args(args).envs(env.iter().map(|(k, v)| (k, v)));
    match tui_output {
        Some((out, err)) => {
            // Made in advance by private_dir; opened here before the user is switched.
            let f = |p: &Path| {
                std::fs::OpenOptions::new()
                    .write(true)
                    .truncate(true)
                    .open(p)
                    .map_err(|e| format!("{}: {e}", p.display()))
            };
            cmd.stdin(Stdio::null()).stdout(f(out)?).stderr(f(err)?);
        }
        None => {
            cmd.stdin(Stdio::inherit())
                .stdout(Stdio::inherit())
                .stderr(Stdio::inherit());
        }
    }
    let ids = match user {
        Some(c) => {
            let name = std::ffi::CString::new(c.name.clone()).unwrap_or_default();
            let groups: Vec<libc::gid_t> =
                nix::unistd::getgrouplist(&name, nix::unistd::Gid::from_raw(c.gid))
                    .map(|g| g.into_iter().map(|g| g.as_raw()).collect())
                    .unwrap_or_else(|_| vec![c.gid]);
            Some((c.uid, c.gid, groups))
        }
        None => None,
    };
    let (gate_fd, gate_w_fd) = (gate_r.as_raw_fd(), gate_w.as_raw_fd());
    let (pid_fd, pid_r_fd) = (pid_w.as_raw_fd(), pid_r.as_raw_fd());
    // SAFETY: the closure runs in the child between fork and exec and calls only
    // async-signal-safe functions (close, getpid, write, read, setgroups, setgid, setuid).
    // The four descriptors stay open in the parent until the child's pid has been read (or
    // the spawn failed), so their numbers are the pipes' in the child.
    unsafe {
        cmd.pre_exec(move || {
            libc::close(gate_w_fd);
            libc::close(pid_r_fd);
            let me = libc::getpid().to_ne_bytes();
            libc::write(pid_fd, me.as_ptr().cast(), me.len());
            libc::close(pid_fd);
            let mut b = [0u8; 1];
            // Held here until the key helper follows this pid and the capture runs. EOF (the
            // capture gave up, or died) means: do not run at all.
            let n = loop {
                let n = libc::read(gate_fd, b.as_mut_ptr().cast(), 1);
                if n >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                    break n;
                }
            };
            libc::close(gate_fd);
            if n != 1 {
                return Err(io::Error::from_raw_os_error(libc::ECANCELED));
            }
            if let Some((uid, gid, groups)) = &ids {
                if libc::setgroups(groups.len(), groups.as_ptr()) != 0
                    || libc::setgid(*gid) != 0
                    || libc::setuid(*uid) != 0
                {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let spawner = std::thread::spawn(move || cmd.spawn());
    let mut pid_file = std::fs::File::from(pid_r);
    let mut buf = [0u8; 4];
    // The pid arrives once the child is forked; a spawn that fails before that ends the
    // thread (the parent's write end is still open, so the read would wait for ever).
    let pid = loop {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let mut fds = [PollFd::new(pid_file.as_fd(), PollFlags::POLLIN)];
        if poll(&mut fds, PollTimeout::from(50u16)).unwrap_or(0) > 0 {
            use std::io::Read;
            pid_file
                .read_exact(&mut buf)
                .map_err(|e| format!("starting {}: {e}", program.display()))?;
            break i32::from_ne_bytes(buf) as u32;
        }
        if spawner.is_finished() {
            return match spawner.join() {
                Ok(Err(e)) => Err(format!("starting {}: {e}", program.display())),
                _ => Err(format!("starting {}: it ended at once", program.display())),
            };
        }
    };
    drop(pid_w);
    drop(gate_r);
    Ok(HeldCommand {
        pid,
        gate: gate_w,
        spawner,
    })
}

fn run(a: &RunArgs) -> Result<i32, String> {
    // Signals from the very start: before COMMAND runs, Ctrl-C cancels it.
    let stop = Arc::new(AtomicBool::new(false));
    let command_pid = Arc::new(AtomicU32::new(0));
    forward_signals(Arc::clone(&command_pid), Arc::clone(&stop))?;
    let tui = !a.no_tui && crate::tui::run::has_terminal();
    let (program_name, args) = a
        .command
        .split_first()
        .ok_or("no command given (modtrace run -- COMMAND ...)")?;
    let user = command_user(a.user.as_deref())?;
    let command_user_name = user
        .as_ref()
        .map_or_else(current_user_name, |c| c.name.clone());
    let our_path = std::env::var("PATH").ok();
    let (program, child_path) = resolve_program(program_name, our_path.as_deref())?;
    // The account modtrace drops to: COMMAND's user, or nobody when COMMAND runs as root.
    let drop_target = match &user {
        Some(c) => (c.uid, c.gid),
        None if nix::unistd::geteuid().is_root() => {
            let t = privileges::target(None, None, None)?;
            (t.uid, t.gid)
        }
        None => (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        ),
    };
    let dir = private_dir(drop_target)?;
    let sslkeylog = dir.path().join("sslkeylog.txt");
    let mut follow = a.opts.keylog.clone();
    follow.push(sslkeylog.clone());
    let command_binary = std::fs::canonicalize(&program).unwrap_or_else(|_| program.clone());

    // With root: capture, files, key helper (probing COMMAND's binary too).
    let mut opened = Opened::open(&LiveParams {
        live: &a.live,
        keylog_out: a.keys.keylog_out.as_deref(),
        follow_keylogs: follow,
        go_keys: go_keys_plan(&a.keys, vec![(command_binary, Origin::Command)], true),
    })?;

    // COMMAND's environment: ours (what sudo kept), the user's identity and home, the key log.
    let mut env: Vec<(String, String)> = Vec::new();
    if let Some(c) = &user {
        env.push(("HOME".into(), c.home.display().to_string()));
        env.push(("USER".into(), c.name.clone()));
        env.push(("LOGNAME".into(), c.name.clone()));
    }
    if let Some(p) = &child_path {
        env.push(("PATH".into(), p.clone()));
    }
    env.push(("SSLKEYLOGFILE".into(), sslkeylog.display().to_string()));
    let out_files = (dir.path().join("stdout"), dir.path().join("stderr"));
    let held = spawn_held(
        &program,
        args,
        &env,
        user.as_ref(),
        tui.then_some((out_files.0.as_path(), out_files.1.as_path())),
    )?;
    let pid = held.pid;
    if let Some(g) = opened.go_keys() {
        g.follow(vec![pid]);
        g.sync(Duration::from_secs(5));
    }

    // The report file is opened now, like -w, and handed to the user with the drop.
    let report_file = match &a.report.output {
        Some(p) => Some(std::fs::File::create(p).map_err(|e| format!("-o {}: {e}", p.display()))?),
        None => None,
    };
    // Drop root to COMMAND's user (nobody when COMMAND runs as root).
    let written: Vec<&Path> = [
        a.live.write.as_deref(),
        a.keys.keylog_out.as_deref(),
        a.report.output.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect();
    let drop_to = user.as_ref().map(|c| c.name.as_str());
    let was_root = nix::unistd::geteuid().is_root();
    if let Err(e) = privileges::drop(drop_to, &written) {
        return Err(format!("refusing to go on: could not drop privileges: {e}"));
    }
    let root = Arc::new(AtomicU32::new(pid));
    let filter = if user.is_none() && was_root {
        eprintln!(
            "modtrace: run: {program_name} runs as root and modtrace, which drops root, cannot tell its connections from other processes': every connection is analysed (run modtrace with sudo from your account, or pass --user)"
        );
        FlowFilter::All
    } else {
        FlowFilter::Tree(Arc::clone(&root))
    };

    let status: Arc<Mutex<Option<ExitStatus>>> = Arc::new(Mutex::new(None));
    let screen_note = Arc::new(Mutex::new(String::new()));
    // COMMAND runs once the packet reader does; its end stops the capture (after LINGER).
    let watcher: Arc<Mutex<Option<std::thread::JoinHandle<()>>>> = Arc::new(Mutex::new(None));
    let start_error: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let release = {
        let stop = Arc::clone(&stop);
        let status = Arc::clone(&status);
        let note = Arc::clone(&screen_note);
        let name = program_name.clone();
        let watcher = Arc::clone(&watcher);
        let start_error = Arc::clone(&start_error);
        let command_pid = Arc::clone(&command_pid);
        move || {
            if stop.load(Ordering::Relaxed) {
                // Interrupted before it ran: it never will (the gate closes unopened).
                if let Ok(mut s) = start_error.lock() {
                    *s = Some("interrupted before the command started".into());
                }
                return;
            }
            command_pid.store(pid, Ordering::Relaxed);
            let mut child = match held.release() {
                Ok(c) => c,
                Err(e) => {
                    if let Ok(mut s) = start_error.lock() {
                        *s = Some(e);
                    }
                    stop.store(true, Ordering::Relaxed);
                    return;
                }
            };
            let t = std::thread::spawn(move || {
                let st = child.wait().ok();
                if let Ok(mut n) = note.lock() {
                    *n = format!(
                        "{name} {}; q quits",
                        st.map(|s| short_status(&s))
                            .unwrap_or_else(|| "ended".into())
                    );
                }
                if let Ok(mut s) = status.lock() {
                    *s = st;
                }
                std::thread::sleep(LINGER);
                stop.store(true, Ordering::Relaxed);
            });
            if let Ok(mut w) = watcher.lock() {
                *w = Some(t);
            }
        }
    };

    let output = if tui { Output::Tui } else { Output::Quiet };
    let keep_exchanges = a.report.needs_exchanges();
    let source = opened.describe();
    let mut engine = Engine::new(
        opened,
        EngineSetup {
            opts: &a.opts,
            filter,
            output,
            interface: &a.live.interface,
            label: Some(run_label(&a.command)),
            stop: Arc::clone(&stop),
            keep_exchanges,
        },
    )?;
    engine.on_started = Some(Box::new(release));
    if tui {
        engine.hold_screen = Some(screen_note);
    } else {
        eprintln!(
            "modtrace: running {} as {} (pid {pid}), capturing on {source}; the report follows when it exits",
            a.command.join(" "),
            command_user_name,
        );
    }
    let stats = live_stats(&a.live);
    let ended = engine.run(stats)?;
    let (mut f, writer, mut notes) = (ended.finished, ended.writer, ended.notes);
    if let Some(e) = start_error.lock().ok().and_then(|mut e| e.take()) {
        return Err(e);
    }
    // The user quit the screen (or a second Ctrl-C) before COMMAND ended: end it.
    let watcher = watcher.lock().ok().and_then(|mut w| w.take());
    if let Some(watcher) = watcher {
        if !watcher.is_finished() {
            // SAFETY: kill with a pid we started and a signal number.
            unsafe { libc::kill(pid as i32, libc::SIGTERM) };
            let deadline = std::time::Instant::now() + TERM_GRACE;
            while !watcher.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if !watcher.is_finished() {
                // SAFETY: as above.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
        }
        let _ = watcher.join();
    }
    if let Some(w) = writer {
        notes.extend(close_writer(w));
    }
    // COMMAND's output, held while the screen was up.
    if tui {
        for (file, to_stderr) in [(&out_files.0, false), (&out_files.1, true)] {
            if let Ok(bytes) = std::fs::read(file) {
                let _ = if to_stderr {
                    io::stderr().write_all(&bytes)
                } else {
                    io::stdout().write_all(&bytes)
                };
            }
        }
    }
    let exit = status.lock().ok().and_then(|s| *s);
    let command = CommandSummary {
        argv: a.command.clone(),
        program: program.display().to_string(),
        pid,
        user: command_user_name.clone(),
        exit_code: exit.and_then(|s| s.code()),
        signal: exit.and_then(|s| s.signal()),
    };
    for note in notes.iter().chain(&f.read_error) {
        eprintln!("modtrace: run: {note}");
    }
    eprintln!(
        "modtrace: run: {} {}",
        a.command.join(" "),
        command.outcome()
    );
    f.report.capture.command = Some(command);
    let code = fail_code(&f.report, a.opts.fail_on);
    let mut out: Box<dyn Write> = match report_file {
        Some(f) => Box::new(io::BufWriter::new(f)),
        None => Box::new(io::BufWriter::new(io::stdout().lock())),
    };
    let res = f
        .report
        .write_as(
            &a.report
                .format_options(a.live.write.iter().cloned().collect()),
            &mut out,
        )
        .and_then(|_| {
            if a.report.format == Format::Text {
                writeln!(out, "\n{}", summary_lines(&f.kernel, &f.processes))
            } else {
                Ok(())
            }
        })
        .and_then(|_| out.flush());
    if let Err(e) = res {
        if e.kind() != io::ErrorKind::BrokenPipe {
            return Err(format!("writing the report: {e}"));
        }
    }
    if f.read_error.is_some() {
        return Ok(2);
    }
    Ok(code)
}

/// The status bar's source: `run:go mod download` (the command, cut to fit beside the
/// counters and the note).
fn run_label(argv: &[String]) -> String {
    const MAX: usize = 16;
    let cmd = argv.join(" ");
    match cmd.char_indices().nth(MAX) {
        Some((cut, _)) => format!("run:{}…", &cmd[..cut]),
        None => format!("run:{cmd}"),
    }
}

fn current_user_name() -> String {
    let uid = nix::unistd::getuid();
    nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| format!("uid {uid}"))
}

/// `exited 1`, `killed by signal 9`: short, for the status bar.
fn short_status(s: &ExitStatus) -> String {
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exited {c}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => "ended".into(),
    }
}

/// SIGINT and SIGTERM go on to COMMAND once it runs (Ctrl-C in the terminal reaches it
/// directly too); the capture ends when COMMAND does. Before COMMAND runs a signal cancels
/// the run. A second signal stops the capture at once, a third ends modtrace.
fn forward_signals(pid: Arc<AtomicU32>, stop: Arc<AtomicBool>) -> Result<(), String> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .map_err(|e| format!("installing the signal handler: {e}"))?;
    std::thread::spawn(move || {
        let mut count = 0;
        for sig in signals.forever() {
            count += 1;
            let target = pid.load(Ordering::Relaxed);
            match count {
                // SAFETY: kill with a pid we started and the signal we got.
                1 if target != 0 => unsafe {
                    libc::kill(target as i32, sig);
                },
                1 | 2 => stop.store(true, Ordering::Relaxed),
                _ => std::process::exit(130),
            }
        }
    });
    Ok(())
}
