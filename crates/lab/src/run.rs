//! `modtrace lab list` and `modtrace lab run`: a training lesson (or any lab scenario that
//! needs no network namespace) live on 127.0.0.1: its servers, the real go command with a
//! private GOPATH, and, when this binary can capture (feature `live`, root or cap_net_raw), a
//! recording that is then replayed in the TUI (or reported, without a terminal).
//!
//! The recording is a child `modtrace capture` process, so its privilege drop and pcapng
//! writing are the ones `capture` has; the go command runs as the sudo caller when there is
//! one. Everything this starts is stopped on every way out, Ctrl-C included.

use super::scenario::{self, GoOutcome, Scenario};
use super::server::{Lab, LabOptions};
use super::{default_modules_dir, Limits, ModuleStore, Pki, RequestLog};
use clap::Args;
use modtrace_core::lesson::{self, HalfKind, Lesson, LESSONS};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The go command gets this long before it is stopped (a lab run takes a few seconds).
const GO_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the capture gets to open its interface and write the pcapng header.
const CAPTURE_START_TIMEOUT: Duration = Duration::from_secs(10);
/// Time after go exits before the capture stops: the last FIN/ACKs reach the capture.
const CAPTURE_TAIL: Duration = Duration::from_millis(700);

#[derive(Args, Debug)]
pub struct RunArgs {
    /// A lesson (name or number, see `modtrace lab list`) or a lab scenario (`lab scenarios`)
    pub name: String,
    /// Run one half of a lesson only
    #[arg(long, value_name = "unsafe|safe")]
    pub only: Option<String>,
    /// The go command to run (default: `go` on PATH, then /usr/local/go/bin/go)
    #[arg(long, value_name = "PATH")]
    pub go: Option<PathBuf>,
    /// Keep the recording in FILE.pcapng (a lesson's two halves go to FILE.unsafe.pcapng and
    /// FILE.safe.pcapng), with the go command's output beside it (.go.json, .go.stderr,
    /// .go.exit) and the servers' request log (.lab.jsonl); TLS secrets are embedded in the
    /// pcapng. Needs the `live` feature and the rights to capture; fails without them
    #[arg(long, value_name = "FILE.pcapng")]
    pub record: Option<PathBuf>,
    /// Do not run the go command: start the servers, print the environment to paste into
    /// another terminal, and wait for Ctrl-C
    #[arg(long)]
    pub no_go: bool,
    /// Do not record, even when this binary could
    #[arg(long, conflicts_with = "record")]
    pub no_capture: bool,
    /// After recording, print the report instead of opening the TUI
    #[arg(long)]
    pub no_tui: bool,
    /// Lab PKI folder (default: captures/lab-pki of the source checkout, the CA the bundled
    /// captures chain to; else a fresh one in a temporary folder)
    #[arg(long, value_name = "DIR")]
    pub pki: Option<PathBuf>,
    /// Module trees to serve (default: ./lab/modules, else the source checkout's)
    #[arg(long, value_name = "DIR")]
    pub modules: Option<PathBuf>,
}

pub const RUN_AFTER_HELP: &str = "\
Examples:
  modtrace lab list
  modtrace lab run sumdb-off                 # both halves: servers + the real go command
  modtrace lab run sumdb-off --only safe
  modtrace lab run proxy-order --no-go       # servers only; paste the printed command
  sudo modtrace lab run sumdb-off            # (feature live) records, then opens the TUI
  sudo modtrace lab run 1 --record captures/training/sumdb-off.pcapng --no-tui
Without the rights to capture, watch from another terminal first:
  sudo modtrace capture -i lo";

/// One scenario to run, and the lesson half it is (if any).
struct Part {
    lesson: Option<&'static Lesson>,
    half: Option<HalfKind>,
    scenario: &'static Scenario,
}

impl Part {
    fn title(&self) -> String {
        match (self.lesson, self.half) {
            (Some(l), Some(h)) => format!(
                "lesson {} {} · {} half · {}",
                l.number,
                l.name,
                h.as_str(),
                l.half(h).setting
            ),
            _ => format!("scenario {}", self.scenario.name),
        }
    }
}

/// `lab list`: the lessons, their halves and the scenarios they run.
pub fn list() -> String {
    let mut out = String::new();
    for l in LESSONS {
        out.push_str(&format!("{} {:<14} {}\n", l.number, l.name, l.title));
        for k in HalfKind::BOTH {
            let h = l.half(k);
            out.push_str(&format!(
                "    {:<7} {:<22} {}\n",
                k.as_str(),
                h.scenario,
                h.setting
            ));
        }
    }
    out.push_str(
        "\nRun one: modtrace lab run NAME (both halves), --only unsafe|safe; replay its recording: modtrace demo NAME\n",
    );
    out
}

fn parts(name: &str, only: Option<&str>) -> Result<Vec<Part>, String> {
    let only = match only {
        Some(o) => Some(
            HalfKind::parse(o).ok_or_else(|| format!("--only {o:?}: expected unsafe or safe"))?,
        ),
        None => None,
    };
    if let Some(l) = lesson::find(name) {
        return Ok(HalfKind::BOTH
            .into_iter()
            .filter(|k| only.is_none_or(|o| o == *k))
            .map(|k| Part {
                lesson: Some(l),
                half: Some(k),
                scenario: scenario::of_half(l.half(k)),
            })
            .collect());
    }
    let Some(s) = scenario::find(name) else {
        return Err(format!(
            "no lesson or scenario {name:?} (see `modtrace lab list` and `modtrace lab scenarios`)"
        ));
    };
    if only.is_some() {
        return Err(format!(
            "--only is for lessons; {name} is a single scenario"
        ));
    }
    if !s.netns_hosts.is_empty() {
        return Err(format!(
            "{name} needs a network namespace of its own (it resolves {}): record it with captures/record.sh",
            s.netns_hosts.join(" ")
        ));
    }
    Ok(vec![Part {
        lesson: None,
        half: None,
        scenario: s,
    }])
}

/// `x.pcapng` -> `x.unsafe.pcapng` when a run has several parts.
fn part_path(record: &Path, part: &Part, several: bool) -> PathBuf {
    let Some(h) = part.half.filter(|_| several) else {
        return record.to_path_buf();
    };
    let name = record
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let new = match name.rsplit_once('.') {
        Some((stem, ext)) => format!("{stem}.{}.{ext}", h.as_str()),
        None => format!("{name}.{}", h.as_str()),
    };
    record.with_file_name(new)
}

/// The recording's companion files: `x.pcapng` -> `x.go.stderr` etc.
fn side_path(capture: &Path, suffix: &str) -> PathBuf {
    let name = capture
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name.strip_suffix(".pcapng").unwrap_or(&name);
    capture.with_file_name(format!("{stem}.{suffix}"))
}

/// The go command's environment: nothing inherited but what is named here.
fn go_env(s: &Scenario, dirs: &GoDirs, go: &Path, ca: &Path) -> Vec<(String, String)> {
    let mut path = go
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    path.push_str(":/usr/local/bin:/usr/bin:/bin");
    let d = |p: &Path| p.display().to_string();
    let mut env: Vec<(String, String)> = [
        ("PATH", path),
        ("HOME", d(&dirs.home)),
        ("GOPATH", d(&dirs.gopath)),
        ("GOMODCACHE", d(&dirs.gopath.join("pkg/mod"))),
        ("GOCACHE", d(&dirs.cache)),
        ("GOENV", "off".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    env.extend(trainee_env(s, ca));
    env
}

/// The settings that make the scenario, as a trainee sets them (GOMODCACHE aside).
fn trainee_env(s: &Scenario, ca: &Path) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("GOPROXY", s.goproxy_value()),
        ("GOSUMDB", s.gosumdb_value()),
        ("GONOSUMDB", String::new()),
        ("GOPRIVATE", s.goprivate.to_string()),
        ("GONOPROXY", s.gonoproxy.to_string()),
        ("GOINSECURE", s.goinsecure.to_string()),
        ("GOFLAGS", "-modcacherw".into()),
        ("GOTOOLCHAIN", "local".into()),
        ("HTTP_PROXY", String::new()),
        ("HTTPS_PROXY", s.https_proxy_value()),
        ("NO_PROXY", String::new()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if s.trust_lab_ca {
        env.push(("SSL_CERT_FILE".into(), ca.display().to_string()));
    }
    env
}

/// The command a trainee pastes into another terminal (a POSIX shell).
pub fn paste_command(s: &Scenario, ca: &Path) -> String {
    let q = |v: &str| {
        if !v.is_empty()
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_./:,=+@".contains(&b))
        {
            v.to_string()
        } else {
            format!("'{}'", v.replace('\'', "'\\''"))
        }
    };
    let vars: Vec<String> = trainee_env(s, ca)
        .iter()
        .map(|(k, v)| format!("{k}={}", q(v)))
        .collect();
    format!(
        "cd \"$(mktemp -d)\" && env {} GOMODCACHE=\"$PWD/modcache\" go mod download -x {}",
        vars.join(" "),
        s.downloads.join(" ")
    )
}

struct GoDirs {
    home: PathBuf,
    gopath: PathBuf,
    cache: PathBuf,
    work: PathBuf,
}

/// Who the go command runs as: the sudo caller when root came from sudo.
fn sudo_caller() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let uid = std::env::var("SUDO_UID").ok()?.parse().ok()?;
    let gid = std::env::var("SUDO_GID").ok()?.parse().ok()?;
    (uid != 0).then_some((uid, gid))
}

fn chown_to(path: &Path, owner: Option<(u32, u32)>) {
    if let Some((uid, gid)) = owner {
        let _ = std::os::unix::fs::chown(path, Some(uid), Some(gid));
    }
}

fn find_go(explicit: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(p) = explicit {
        return if p.is_file() {
            Ok(p.to_path_buf())
        } else {
            Err(format!("--go {}: no such file", p.display()))
        };
    }
    let on_path: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("go")).collect())
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain([
            PathBuf::from("/usr/local/go/bin/go"),
            PathBuf::from("/usr/lib/go/bin/go"),
        ])
        .find(|p| p.is_file())
        .ok_or_else(|| {
            "no go command on PATH (sudo resets PATH: pass --go \"$(command -v go)\", or --no-go to start the servers only)".to_string()
        })
}

/// The default PKI: the one the bundled captures chain to, when this runs from the checkout.
fn default_pki(work: &Path) -> PathBuf {
    let checkout = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../captures/lab-pki"
    ));
    let here = PathBuf::from("captures/lab-pki");
    [here, checkout]
        .into_iter()
        .find(|p| p.join(super::tls::CA_CERT_FILE).is_file())
        .unwrap_or_else(|| work.join("lab-pki"))
}

fn start_lab(
    s: &Scenario,
    store: &Arc<ModuleStore>,
    log: &Path,
    pki: &Path,
    keylog: Option<&Path>,
) -> Result<Lab, String> {
    let log = RequestLog::to_file(log).map_err(|e| format!("log {}: {e}", log.display()))?;
    let tls = if s.uses_tls() {
        let pki = Pki::load_or_create(pki).map_err(|e| e.to_string())?.0;
        Some(super::tls_context(pki, keylog, false)?)
    } else {
        None
    };
    let options: LabOptions = s.lab_options();
    Lab::start_with_options(
        &s.specs(false),
        Arc::clone(store),
        log,
        Limits::default(),
        tls,
        &options,
    )
    .map_err(|e| format!("{}: {e}", s.name))
}

/// A child `modtrace capture` writing a pcapng of the scenario's ports on lo.
struct Recorder {
    child: Child,
    file: PathBuf,
    err: PathBuf,
}

impl Recorder {
    fn start(s: &Scenario, file: &Path, work: &Path) -> Result<Recorder, String> {
        if !cfg!(feature = "live") {
            return Err("this modtrace was built without live capture (cargo build --release --features live; needs libpcap-dev)".into());
        }
        let exe = std::env::current_exe().map_err(|e| format!("finding modtrace itself: {e}"))?;
        let ports: Vec<String> = s.ports().iter().map(|p| format!("port {p}")).collect();
        let filter = format!("tcp and host 127.0.0.1 and ({})", ports.join(" or "));
        let err = work.join("capture.err");
        let child = Command::new(exe)
            .args(["capture", "-i", s.interface, "-f", &filter, "--no-tui"])
            .args(["--format", "jsonl", "-w"])
            .arg(file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&err).map_err(|e| format!("{}: {e}", err.display()))?)
            .spawn()
            .map_err(|e| format!("starting the capture: {e}"))?;
        let mut r = Recorder {
            child,
            file: file.to_path_buf(),
            err,
        };
        // The capture says so once it is open, its key source ready and root dropped.
        let start = Instant::now();
        loop {
            if std::fs::read_to_string(&r.err).is_ok_and(|t| t.contains("modtrace: capturing on")) {
                // Give the reading thread a moment to start.
                std::thread::sleep(Duration::from_millis(300));
                return Ok(r);
            }
            if let Ok(Some(_)) = r.child.try_wait() {
                return Err(r.error_text());
            }
            if start.elapsed() > CAPTURE_START_TIMEOUT {
                r.stop();
                return Err(format!("the capture did not start: {}", r.error_text()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn error_text(&self) -> String {
        let text = std::fs::read_to_string(&self.err).unwrap_or_default();
        let line = text
            .lines()
            .rfind(|l| l.contains("modtrace"))
            .unwrap_or(text.trim());
        line.trim_start_matches("modtrace: capture: ").to_string()
    }

    /// SIGINT, as Ctrl-C would: the capture flushes the pcapng and exits.
    fn stop(&mut self) -> bool {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.success() || st.code() == Some(1);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        false
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

/// What the go command did.
struct GoRun {
    exit: Option<i32>,
    stdout: String,
    stderr: String,
    timed_out: bool,
}

impl GoRun {
    /// Whether it did what the scenario says it does; `Err` names the difference.
    fn check(&self, expect: GoOutcome) -> Result<(), String> {
        let errors = self.stdout.contains("\"Error\"");
        match expect {
            GoOutcome::Success if self.exit == Some(0) && !errors => Ok(()),
            GoOutcome::Success => Err(format!(
                "the scenario expects go to succeed; it exited {}",
                self.exit_text()
            )),
            GoOutcome::ErrorContains(t)
                if self.exit != Some(0) && (self.stdout.contains(t) || self.stderr.contains(t)) =>
            {
                Ok(())
            }
            GoOutcome::ErrorContains(t) => Err(format!(
                "the scenario expects go to fail with {t:?}; it exited {}",
                self.exit_text()
            )),
        }
    }

    fn exit_text(&self) -> String {
        match (self.exit, self.timed_out) {
            (_, true) => "(stopped after the timeout)".into(),
            (Some(c), _) => c.to_string(),
            (None, _) => "(killed by a signal)".into(),
        }
    }

    /// One line per module from `go mod download -json`, and go's error text.
    fn summary(&self) -> Vec<String> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Module {
            path: String,
            version: String,
            error: Option<String>,
            sum: Option<String>,
        }
        let mut lines = Vec::new();
        for m in serde_json::Deserializer::from_str(&self.stdout)
            .into_iter::<Module>()
            .map_while(Result::ok)
        {
            match (m.error, m.sum) {
                (Some(e), _) => {
                    lines.push(format!("{}@{}: error:", m.path, m.version));
                    lines.extend(e.lines().map(|l| format!("    {l}")));
                }
                (None, Some(sum)) => {
                    lines.push(format!("{}@{}: downloaded, {sum}", m.path, m.version))
                }
                (None, None) => lines.push(format!("{}@{}: downloaded", m.path, m.version)),
            }
        }
        lines.extend(
            self.stderr
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string),
        );
        lines
    }
}

fn run_go(
    s: &Scenario,
    go: &Path,
    dirs: &GoDirs,
    ca: &Path,
    owner: Option<(u32, u32)>,
    stop: &AtomicBool,
) -> Result<GoRun, String> {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(go);
    cmd.args(["mod", "download", "-json"])
        .args(s.downloads)
        .current_dir(&dirs.work)
        .env_clear()
        .envs(go_env(s, dirs, go, ca))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some((uid, gid)) = owner {
        cmd.uid(uid).gid(gid);
    }
    let mut child = cmd.spawn().map_err(|e| format!("{}: {e}", go.display()))?;
    // Read both pipes on threads: go's output never blocks it.
    let read = |r: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut r) = r {
                let _ = r.read_to_string(&mut s);
            }
            s
        })
    };
    let out = read(child.stdout.take().map(|r| Box::new(r) as _));
    let err = read(child.stderr.take().map(|r| Box::new(r) as _));
    let start = Instant::now();
    let mut timed_out = false;
    let status = loop {
        if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
            break st;
        }
        if stop.load(Ordering::Relaxed) || start.elapsed() > GO_TIMEOUT {
            timed_out = !stop.load(Ordering::Relaxed);
            let _ = child.kill();
            break child.wait().map_err(|e| e.to_string())?;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Ok(GoRun {
        exit: status.code(),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        timed_out,
    })
}

/// The files every lesson is analysed with, laid out like captures/ ([`lesson::analysis_args`]).
fn write_profile(dir: &Path, pki: &Path, modules: &Path) -> Result<(), String> {
    let io = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
    let training = dir.join(lesson::TRAINING_DIR);
    std::fs::create_dir_all(&training).map_err(|e| io(&training, e))?;
    let pki_dir = dir.join("lab-pki");
    if pki_dir != pki {
        std::fs::create_dir_all(&pki_dir).map_err(|e| io(&pki_dir, e))?;
        let ca = pki.join(super::tls::CA_CERT_FILE);
        std::fs::copy(&ca, pki_dir.join(super::tls::CA_CERT_FILE)).map_err(|e| io(&ca, e))?;
    }
    let wanted: Vec<String> = lesson::LESSON_MODULES
        .iter()
        .map(|m| m.to_string())
        .collect();
    let sum = super::go_sum(modules, &wanted)?;
    for (name, text) in [
        (lesson::LAB_GO_SUM_FILE, sum.as_str()),
        (lesson::LAB_POLICY_FILE, lesson::LAB_POLICY),
    ] {
        let p = training.join(name);
        std::fs::write(&p, text).map_err(|e| io(&p, e))?;
    }
    Ok(())
}

/// Entry point of `lab run`: the process exit status.
pub fn run(a: RunArgs) -> Result<i32, String> {
    let parts = parts(&a.name, a.only.as_deref())?;
    let go = if a.no_go {
        None
    } else {
        Some(find_go(a.go.as_deref())?)
    };
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while stopping ends the process at once.
        signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&stop))
            .and_then(|_| signal_hook::flag::register(sig, Arc::clone(&stop)))
            .map_err(|e| format!("installing the signal handler: {e}"))?;
    }
    let modules = a.modules.clone().unwrap_or_else(default_modules_dir);
    let store = Arc::new(ModuleStore::load(&modules).map_err(|e| e.to_string())?);
    let work = tempfile::Builder::new()
        .prefix("modtrace-lab-")
        .tempdir()
        .map_err(|e| format!("temporary folder: {e}"))?;
    let pki = a.pki.clone().unwrap_or_else(|| default_pki(work.path()));
    Pki::load_or_create(&pki).map_err(|e| format!("lab PKI {}: {e}", pki.display()))?;
    let ca = std::fs::canonicalize(pki.join(super::tls::CA_CERT_FILE))
        .map_err(|e| format!("lab CA in {}: {e}", pki.display()))?;

    if a.no_go {
        return serve_until_stopped(&parts, &store, work.path(), &pki, &ca, &stop);
    }
    let go = go.expect("go found above");
    let owner = sudo_caller();
    let several = parts.len() > 1;
    // Where recordings go when --record is not given: kept after the run, for replay.
    let keep_dir = std::env::temp_dir().join("modtrace-lab");
    let mut all_as_expected = true;
    let mut recordings: Vec<(PathBuf, &Part)> = Vec::new();
    let mut capture_hint_given = false;
    for (i, part) in parts.iter().enumerate() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let s = part.scenario;
        println!("\n== {} ({})", part.title(), s.name);
        if let (Some(l), Some(h)) = (part.lesson, part.half) {
            if i == 0 {
                println!("{}\n", wrap(l.story, 96));
            }
            println!("expected: {}", l.half(h).outcome);
        } else {
            println!("{}", wrap(s.summary, 96));
        }
        let pw = work.path().join(format!("part{i}"));
        let dirs = GoDirs {
            home: pw.join("home"),
            gopath: pw.join("gopath"),
            cache: pw.join("cache"),
            work: pw.join("work"),
        };
        for d in [&pw, &dirs.home, &dirs.gopath, &dirs.cache, &dirs.work] {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
            chown_to(d, owner);
        }
        let keys = s.uses_tls().then(|| pw.join("keys"));
        let lab_log = pw.join("lab.jsonl");
        let lab = start_lab(s, &store, &lab_log, &pki, keys.as_deref())?;
        print_servers(&lab);
        let only = match (part.lesson, part.half) {
            (Some(l), Some(h)) => format!("{} --only {}", l.name, h.as_str()),
            _ => s.name.to_string(),
        };
        println!(
            "  to type it yourself: `modtrace lab run {only} --no-go`, then in another terminal:"
        );
        println!("    {}", paste_command(s, &ca));

        // Record when asked, or when this binary can.
        let raw = pw.join("capture.pcapng");
        let mut recorder = if a.no_capture {
            None
        } else {
            match Recorder::start(s, &raw, &pw) {
                Ok(r) => {
                    println!("  recording lo (ports {})", ports_text(s));
                    Some(r)
                }
                Err(e) if a.record.is_some() => {
                    return Err(format!("--record: cannot capture: {e}"));
                }
                Err(e) => {
                    if !capture_hint_given {
                        println!("  not recording: {e}");
                        println!("  to watch it, start `sudo modtrace capture -i lo` in another terminal first, or replay the bundled recording: modtrace demo {}", part.lesson.map_or(s.name, |l| l.name));
                        capture_hint_given = true;
                    }
                    None
                }
            }
        };

        println!("  running: go mod download -json {}", s.downloads.join(" "));
        let result = run_go(s, &go, &dirs, &ca, owner, &stop);
        if recorder.is_some() {
            std::thread::sleep(CAPTURE_TAIL);
        }
        let recorded = recorder.as_mut().map(Recorder::stop).unwrap_or(false);
        drop(lab);
        let go_run = result?;
        println!("  go exited {}:", go_run.exit_text());
        for l in go_run.summary() {
            println!("    {l}");
        }
        match go_run.check(s.expect) {
            Ok(()) => println!("  as the scenario expects"),
            Err(e) => {
                println!("  UNEXPECTED: {e}");
                all_as_expected = false;
            }
        }

        if let Some(r) = recorder.take().filter(|_| recorded) {
            let dest = match &a.record {
                Some(f) => part_path(f, part, several),
                None => keep_dir.join(lesson::TRAINING_DIR).join(demo_name(part)),
            };
            if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .map_err(|e| format!("{}: {e}", parent.display()))?;
            }
            let keyed = keys
                .as_ref()
                .filter(|k| std::fs::metadata(k).is_ok_and(|m| m.len() > 0));
            match keyed {
                // TLS secrets first in the file, so tshark decrypts it too.
                Some(k) => {
                    super::embed_keys(&r.file, k, &dest)?;
                }
                None => {
                    std::fs::copy(&r.file, &dest)
                        .map_err(|e| format!("{}: {e}", dest.display()))?;
                }
            }
            if a.record.is_some() {
                let exit = go_run.exit.map_or("signal".into(), |c| c.to_string());
                for (suffix, text) in [
                    ("go.json", go_run.stdout.as_str()),
                    ("go.stderr", go_run.stderr.as_str()),
                    ("go.exit", &format!("{exit}\n")),
                ] {
                    let p = side_path(&dest, suffix);
                    std::fs::write(&p, text).map_err(|e| format!("{}: {e}", p.display()))?;
                    chown_to(&p, owner);
                }
                let p = side_path(&dest, "lab.jsonl");
                std::fs::copy(&lab_log, &p).map_err(|e| format!("{}: {e}", p.display()))?;
                chown_to(&p, owner);
            }
            chown_to(&dest, owner);
            println!("  recording: {}", dest.display());
            // The demo reads KEEP/training/LESSON.HALF.pcapng.
            let demo_copy = keep_dir.join(lesson::TRAINING_DIR).join(demo_name(part));
            if demo_copy != dest {
                std::fs::create_dir_all(keep_dir.join(lesson::TRAINING_DIR))
                    .and_then(|_| std::fs::copy(&dest, &demo_copy))
                    .map_err(|e| format!("{}: {e}", demo_copy.display()))?;
            }
            recordings.push((dest, part));
        }
    }

    // The analysis of what was recorded: the demo TUI (a lesson) or the replay TUI when there
    // is a terminal, else the report of each recording.
    if !recordings.is_empty() && !stop.load(Ordering::Relaxed) {
        write_profile(&keep_dir, &pki, &modules)?;
        let args = lesson::analysis_args(&keep_dir);
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        // The TUI's own test (tui::run::has_terminal): both ends of the terminal.
        let tui = !a.no_tui && std::io::stdout().is_terminal() && std::io::stdin().is_terminal();
        let first = &recordings[0];
        if tui {
            // Let the trainer talk about go's output first: the TUI takes the whole screen.
            print!("\npress Enter to replay the recording in the TUI, paused at each finding (q there comes back) ");
            let _ = std::io::stdout().flush();
            let _ = std::io::stdin().read_line(&mut String::new());
            let mut cmd = Command::new(&exe);
            match (first.1.lesson, first.1.half) {
                (Some(l), Some(h)) => {
                    cmd.args(["demo", l.name, "--dir"]).arg(&keep_dir);
                    if h == HalfKind::Safe {
                        cmd.arg("--safe");
                    }
                }
                _ => {
                    cmd.arg("replay")
                        .arg(&first.0)
                        .args(["--speed", "1", "--pause-on-findings"])
                        .args(&args);
                }
            }
            let st = cmd.status().map_err(|e| format!("running modtrace: {e}"))?;
            if st.code() == Some(2) {
                all_as_expected = false;
            }
        } else {
            for (file, part) in &recordings {
                println!("\n== findings: {} ({})", part.title(), part.scenario.name);
                Command::new(&exe)
                    .arg("analyze")
                    .arg(file)
                    .args(&args)
                    .status()
                    .map_err(|e| format!("running modtrace: {e}"))?;
            }
        }
        println!();
        for (file, _) in &recordings {
            println!(
                "again: modtrace analyze {} {}",
                file.display(),
                args.join(" ")
            );
        }
        if let Some(l) = first.1.lesson {
            println!(
                "with the explanations: modtrace demo {} --dir {}",
                l.name,
                keep_dir.display()
            );
        }
    }
    if stop.load(Ordering::Relaxed) {
        println!("\nstopped; every server is down");
        return Ok(130);
    }
    Ok(if all_as_expected { 0 } else { 1 })
}

fn print_servers(lab: &Lab) {
    for sv in lab.servers() {
        println!(
            "  server {:<9} {:<16} {}",
            sv.name,
            sv.kind.label(),
            sv.base_url
        );
    }
}

/// A recording's name in the demo's layout: `LESSON.HALF.pcapng` (or `SCENARIO.pcapng`).
fn demo_name(part: &Part) -> String {
    match (part.lesson, part.half) {
        (Some(l), Some(h)) => format!("{}.{}.pcapng", l.name, h.as_str()),
        _ => format!("{}.pcapng", part.scenario.name),
    }
}

fn ports_text(s: &Scenario) -> String {
    s.ports()
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// `--no-go`: every part's servers at once, the commands to paste, until Ctrl-C.
fn serve_until_stopped(
    parts: &[Part],
    store: &Arc<ModuleStore>,
    work: &Path,
    pki: &Path,
    ca: &Path,
    stop: &AtomicBool,
) -> Result<i32, String> {
    let mut labs = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let s = part.scenario;
        let lab = start_lab(s, store, &work.join(format!("lab{i}.jsonl")), pki, None)?;
        println!("\n== {} ({})", part.title(), s.name);
        print_servers(&lab);
        println!("  paste into another terminal:");
        println!("    {}", paste_command(s, ca));
        labs.push(lab);
    }
    println!("\nservers on 127.0.0.1 until Ctrl-C; watch with: sudo modtrace capture -i lo");
    let _ = std::io::stdout().flush();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(labs);
    println!("stopped; every server is down");
    Ok(0)
}

/// Wraps prose at `width` columns (words kept whole).
fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut col = 0;
    for w in text.split_whitespace() {
        if col > 0 && col + 1 + w.len() > width {
            out.push('\n');
            col = 0;
        } else if col > 0 {
            out.push(' ');
            col += 1;
        }
        out.push_str(w);
        col += w.len();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lessons_run_both_halves_and_scenarios_one() {
        let p = parts("sumdb-off", None).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].scenario.name, "tamper-sumdb-off");
        assert_eq!(p[1].scenario.name, "tamper-sumdb-on");
        let p = parts("1", Some("safe")).unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].half, Some(HalfKind::Safe));
        assert_eq!(parts("redirect-once", None).unwrap().len(), 1);
        assert!(parts("redirect-once", Some("safe")).is_err());
        assert!(parts("goinsecure-goget", None)
            .err()
            .unwrap()
            .contains("network namespace"));
        assert!(parts("nope", None).is_err());
        assert!(parts("1", Some("both")).is_err());
    }

    #[test]
    fn record_paths_name_the_half() {
        let p = parts("sumdb-off", None).unwrap();
        let f = Path::new("out/x.pcapng");
        assert_eq!(part_path(f, &p[0], true), Path::new("out/x.unsafe.pcapng"));
        assert_eq!(part_path(f, &p[1], true), Path::new("out/x.safe.pcapng"));
        assert_eq!(part_path(f, &p[1], false), f);
        assert_eq!(
            side_path(Path::new("out/x.safe.pcapng"), "go.exit"),
            Path::new("out/x.safe.go.exit")
        );
    }

    /// What a trainee pastes sets every variable the go command reads for modules, with a
    /// fresh module cache, and quotes what a shell would split.
    #[test]
    fn paste_command_sets_everything() {
        let ca = Path::new("/tmp/pki/lab-ca.pem");
        let s = scenario::find("tamper-sumdb-on").unwrap();
        let c = paste_command(s, ca);
        for v in [
            "GOPROXY=http://127.0.0.1:8103",
            "GONOSUMDB=''",
            "GOPRIVATE=''",
            "GONOPROXY=''",
            "GOINSECURE=''",
            "GOFLAGS=-modcacherw",
            "GOTOOLCHAIN=local",
            "GOMODCACHE=\"$PWD/modcache\"",
            "go mod download -x example.test/Hello@v1.1.0 example.test/Util@v0.2.0",
        ] {
            assert!(c.contains(v), "{v} not in {c}");
        }
        assert!(c.contains("GOSUMDB='sum.lab.test+"), "{c}");
        assert!(!c.contains("SSL_CERT_FILE"));
        let t = paste_command(scenario::find("mirror-tls-verified").unwrap(), ca);
        assert!(t.contains("SSL_CERT_FILE=/tmp/pki/lab-ca.pem"), "{t}");
        let o = paste_command(scenario::find("proxy-order-safe").unwrap(), ca);
        assert!(
            o.contains("GOPROXY=http://127.0.0.1:8116,http://127.0.0.1:8115")
                && o.contains("GOPRIVATE=corp.lab.test")
                && o.contains("GONOPROXY=none"),
            "{o}"
        );
    }

    #[test]
    fn go_results_are_checked_against_the_scenario() {
        let ok = GoRun {
            exit: Some(0),
            stdout: "{\"Path\":\"a.test/x\",\"Version\":\"v1.0.0\",\"Sum\":\"h1:abc=\"}".into(),
            stderr: String::new(),
            timed_out: false,
        };
        assert!(ok.check(GoOutcome::Success).is_ok());
        assert!(ok
            .check(GoOutcome::ErrorContains("SECURITY ERROR"))
            .is_err());
        assert_eq!(ok.summary(), vec!["a.test/x@v1.0.0: downloaded, h1:abc="]);
        let bad = GoRun {
            exit: Some(1),
            stdout: "{\"Path\":\"a.test/x\",\"Version\":\"v1.0.0\",\"Error\":\"verifying a.test/x@v1.0.0: checksum mismatch\\nSECURITY ERROR\"}".into(),
            stderr: String::new(),
            timed_out: false,
        };
        assert!(bad
            .check(GoOutcome::ErrorContains("SECURITY ERROR"))
            .is_ok());
        assert!(bad.check(GoOutcome::Success).is_err());
        assert_eq!(bad.summary().len(), 3);
    }

    #[test]
    fn list_names_every_lesson_and_half() {
        let l = list();
        for lesson in LESSONS {
            assert!(l.contains(lesson.name));
            assert!(l.contains(lesson.unsafe_half.scenario));
            assert!(l.contains(lesson.safe_half.scenario));
        }
    }
}
