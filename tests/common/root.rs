//! Helpers of the suites that need root (live capture, `modtrace run`, the key helper): the
//! unprivileged account, processes that are always stopped, the lab's scenarios.

use super::*;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The unprivileged account captures drop to and the go command runs as.
pub const NOBODY: u32 = 65534;

/// A temporary folder that nobody can reach: the go directories and key logs live below it.
pub fn tempdir_for_nobody() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let st = Command::new("chmod")
        .args(["755", dir.path().to_str().unwrap()])
        .status()
        .unwrap();
    assert!(st.success());
    dir
}

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}

pub fn which(tool: &str) -> Option<PathBuf> {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// Skips (prints why) outside CI, fails in CI (CI=true).
pub fn prerequisites_or_skip(suite: &str, missing: &[String]) -> bool {
    if missing.is_empty() {
        return true;
    }
    let msg = format!("{suite} needs: {}", missing.join(", "));
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}");
    }
    eprintln!("SKIPPED: {msg}");
    false
}

/// `modtrace lab env NAME` as a map (KEY='VALUE' lines).
pub fn scenario_env(name: &str) -> BTreeMap<String, String> {
    let out = run(&["lab", "env", name]);
    assert!(out.status.success(), "lab env {name}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            Some((k.to_string(), v.trim_matches('\'').to_string()))
        })
        .collect()
}

pub fn wait_timeout(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn signal_pid(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status();
}

pub fn signal(child: &Child, sig: &str) {
    signal_pid(child.id(), sig);
}

/// Processes a test started, stopped on every exit path (a failed assertion too).
pub struct Guard(pub Vec<Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        for c in &mut self.0 {
            if let Ok(None) = c.try_wait() {
                signal(c, "TERM");
                if wait_timeout(c, Duration::from_secs(5)).is_none() {
                    let _ = c.kill();
                    let _ = c.wait();
                }
            }
        }
    }
}

pub fn uids_of(pid: u32) -> Option<Vec<u32>> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    Some(
        line.split_whitespace()
            .skip(1)
            .filter_map(|v| v.parse().ok())
            .collect(),
    )
}

pub fn chown_nobody(p: &Path) {
    let st = Command::new("chown")
        .args(["-R", &format!("{NOBODY}:{NOBODY}"), p.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(st.success());
}

/// `modtrace lab serve --scenario NAME` logging to `log` (TLS servers with the bundled lab
/// PKI, their secrets to `keylog` when given), once every server listens; its GOPROXY line.
pub fn start_lab(name: &str, log: &Path, keylog: Option<&Path>) -> (Child, String) {
    let mut serve_cmd = modtrace();
    serve_cmd
        .args([
            "lab",
            "serve",
            "--scenario",
            name,
            "--timeout",
            "300",
            "--log",
        ])
        .arg(log)
        .arg("--pki")
        .arg(repo().join("captures/lab-pki"));
    if let Some(k) = keylog {
        serve_cmd.arg("--keylog").arg(k);
    }
    let mut serve = serve_cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .stdin(Stdio::null())
        .spawn()
        .expect("start lab serve");
    let out = serve.stdout.take().unwrap();
    let mut goproxy = None;
    for line in BufReader::new(out).lines() {
        let line = line.unwrap();
        if let Some(g) = line.strip_prefix("GOPROXY=") {
            goproxy = Some(g.to_string());
            break;
        }
    }
    (serve, goproxy.expect("lab servers started"))
}

/// The go command's environment for a scenario, as captures/record.sh sets it: every Go
/// variable explicit, a private HOME, GOPATH, module cache and build cache under `d`.
pub fn go_env(d: &Path, go: &Path, env: &BTreeMap<String, String>) -> Vec<(String, String)> {
    let go_bin_dir = go.parent().unwrap().display().to_string();
    let mut v: Vec<(String, String)> = [
        ("PATH", format!("{go_bin_dir}:/usr/local/bin:/usr/bin:/bin")),
        ("HOME", d.join("home").display().to_string()),
        ("GOPATH", d.join("gopath").display().to_string()),
        ("GOMODCACHE", d.join("gopath/pkg/mod").display().to_string()),
        ("GOCACHE", d.join("cache").display().to_string()),
        ("GOENV", "off".into()),
        ("GOPROXY", env["GOPROXY"].clone()),
        ("GOSUMDB", env["GOSUMDB"].clone()),
        ("GONOSUMDB", String::new()),
        ("GOPRIVATE", String::new()),
        ("GONOPROXY", String::new()),
        ("GOINSECURE", env["GOINSECURE"].clone()),
        ("GOFLAGS", "-modcacherw".into()),
        ("GOTOOLCHAIN", "local".into()),
        ("HTTP_PROXY", String::new()),
        ("HTTPS_PROXY", env["HTTPS_PROXY"].clone()),
        ("NO_PROXY", String::new()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if env.get("TRUST_LAB_CA").is_some_and(|v| v == "1") {
        v.push((
            "SSL_CERT_FILE".into(),
            repo()
                .join("captures/lab-pki/lab-ca.pem")
                .display()
                .to_string(),
        ));
    }
    v
}

/// Starts tcpdump on lo for `ports` (space-separated), the way the lab notes say (immediate
/// mode, a large buffer); returns once it listens. Stop it with SIGINT.
pub fn start_tcpdump(file: &Path, ports: &str) -> std::process::Child {
    let filter: Vec<String> = ports
        .split_whitespace()
        .map(|p| format!("tcp port {p}"))
        .collect();
    let err = file.with_extension("err");
    let child = Command::new("tcpdump")
        .args([
            "-i",
            "lo",
            "-s",
            "0",
            "-U",
            "--immediate-mode",
            "-B",
            "65536",
            "-w",
        ])
        .arg(file)
        .arg(filter.join(" or "))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("tcpdump");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&err)
        .unwrap_or_default()
        .contains("listening on")
    {
        assert!(Instant::now() < deadline, "tcpdump did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The lab notes: a moment after it says so before the traffic.
    std::thread::sleep(Duration::from_millis(500));
    child
}

/// Builds the Go program `source` (package main, standard library only) in `dir` with the
/// go on PATH and `flags`, offline (GOPROXY=off, GOTOOLCHAIN=local); the binary's path.
pub fn build_go(dir: &Path, name: &str, source: &str, flags: &[&str]) -> PathBuf {
    let src = dir.join(format!("{name}-src"));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("main.go"), source).unwrap();
    std::fs::write(src.join("go.mod"), format!("module {name}\n\ngo 1.19\n")).unwrap();
    let out_path = dir.join(name);
    let out = Command::new(which("go").unwrap())
        .arg("build")
        .args(flags)
        .arg("-o")
        .arg(&out_path)
        .arg(".")
        .current_dir(&src)
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "")
        .env("GOPROXY", "off")
        .env("GOCACHE", dir.join("cache"))
        .env("GOPATH", dir.join("gopath"))
        .env("HOME", dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "go build {name} {flags:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out_path
}
