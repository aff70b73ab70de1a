//! The go process key source end to end: `modtrace run -- go mod download` against the lab's
//! HTTPS scenarios with no server key log, Go programs given with --go-binary (stripped, PIE),
//! what is left in tracefs after every way a run can end, and what happens without tracefs or
//! rights. Needs root, tracefs with uprobes, go (and Debian's golang-go for the second
//! toolchain), tshark and editcap, and a build with `--features live`; run by .ci/run as
//! `cargo test --release --features live --test gokeys -- --ignored --nocapture`. Missing
//! prerequisites fail under CI=true and skip elsewhere.

mod common;
use common::root::{self, *};
use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Debian's golang-go: another build (stripped, pclntab only) and another version.
const DEBIAN_GO: &str = "/usr/lib/go-1.19/bin/go";
/// The scenarios: TLS 1.3 with h2, a TLS 1.2-only server, CONNECT through HTTPS_PROXY, and the
/// checksum database over https.
const SCENARIOS: &[&str] = &[
    "h2-proxy-tls13",
    "tls12-verified",
    "connect-proxy-h2",
    "sumdb-https",
];

/// The lab's ports are fixed, and probes are global: one test at a time.
static LAB: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn missing_prerequisites() -> Vec<String> {
    let mut missing = Vec::new();
    if !cfg!(feature = "live") {
        missing.push("a build with --features live".to_string());
    }
    if !is_root() {
        missing.push("root (uprobes, capturing on lo)".to_string());
    }
    for tool in ["go", "tshark", "tcpdump"] {
        if which(tool).is_none() {
            missing.push(tool.to_string());
        }
    }
    if !Path::new(DEBIAN_GO).exists() {
        missing.push(format!(
            "Debian's golang-go ({DEBIAN_GO}: apt-get install golang-go)"
        ));
    }
    missing
}

fn prerequisites_or_skip() -> bool {
    let ok = root::prerequisites_or_skip("go-keys suite", &missing_prerequisites());
    if ok {
        tracefs();
    }
    ok
}

/// The suite's prerequisites and `tool` for one test.
fn prerequisites_and_tool_or_skip(tool: &str) -> bool {
    prerequisites_or_skip()
        && root::prerequisites_or_skip(
            &format!("this go-keys test ({tool})"),
            &which(tool).map_or(vec![tool.to_string()], |_| Vec::new()),
        )
}

/// A folder for nobody with go's folders, and the scenario's lab servers (the lab's PKI, no
/// server key log).
struct Lab {
    dir: tempfile::TempDir,
    env: BTreeMap<String, String>,
    _servers: Guard,
}

fn lab(name: &str) -> Lab {
    let dir = tempdir_for_nobody();
    for sub in ["home", "gopath", "cache"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
    }
    chown_nobody(dir.path());
    let (serve, _) = start_lab(name, &dir.path().join("lab.jsonl"), None);
    Lab {
        env: scenario_env(name),
        dir,
        _servers: Guard(vec![serve]),
    }
}

/// The tracefs the key helper uses. Probes outlive a mount, so the test mounts tracefs when
/// nothing has, to see them (the helper then finds this mount).
fn tracefs() -> PathBuf {
    let mounted = || {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        info.lines().find_map(|line| {
            let (fields, after) = line.split_once(" - ")?;
            after
                .starts_with("tracefs ")
                .then(|| PathBuf::from(fields.split_whitespace().nth(4).unwrap()))
        })
    };
    if let Some(p) = mounted() {
        return p;
    }
    let st = Command::new("mount")
        .args(["-t", "tracefs", "tracefs", "/sys/kernel/tracing"])
        .status()
        .unwrap();
    assert!(st.success(), "mounting tracefs");
    mounted().expect("tracefs mounted")
}

/// Probes and instances of modtrace runs now in tracefs.
fn leftovers() -> Vec<String> {
    let fs = tracefs();
    let mut v: Vec<String> = std::fs::read_to_string(fs.join("uprobe_events"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(":modtrace_"))
        .map(str::to_string)
        .collect();
    if let Ok(d) = std::fs::read_dir(fs.join("instances")) {
        v.extend(
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("modtrace_")),
        );
    }
    v
}

/// One `modtrace run` of a scenario, its report and what the lab saw.
struct RunResult {
    dir: PathBuf,
    report: Value,
    stderr: String,
    go_stdout: String,
    exit: Option<i32>,
    lab_log: String,
    server_keys: PathBuf,
    env: BTreeMap<String, String>,
}

/// The flags that check certificates and checksum-database notes like the lab expects.
fn analysis_flags() -> Vec<String> {
    let key = String::from_utf8(run(&["lab", "sumdb-key"]).stdout).unwrap();
    vec![
        "--ca-file".into(),
        repo()
            .join("captures/lab-pki/lab-ca.pem")
            .display()
            .to_string(),
        "--sumdb-key".into(),
        key.trim().to_string(),
    ]
}

/// `modtrace run -i lo --no-tui -w D/run.pcapng --format json -o D/report.json -- GO mod
/// download -json ...` as `sudo` by nobody would (SUDO_UID), with the scenario's Go
/// environment; the lab's servers write their key log, which modtrace is not given.
fn run_scenario(base: &Path, name: &str, go: &Path, extra: &[&str]) -> RunResult {
    let env = scenario_env(name);
    let d = base.join(format!(
        "{name}-{}",
        go.display().to_string().replace('/', "_")
    ));
    for sub in ["home", "gopath", "cache"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    chown_nobody(&d);
    let lab_log = d.join("lab.jsonl");
    let server_keys = d.join("server.keys");
    let (serve, goproxy) = start_lab(name, &lab_log, Some(&server_keys));
    let mut guard = Guard(vec![serve]);
    assert_eq!(goproxy, env["GOPROXY"]);
    guard
        .0
        .push(start_tcpdump(&d.join("tcpdump.pcap"), &env["PORTS"]));
    let report = d.join("report.json");
    let go_stdout = d.join("go.out");
    let mut cmd = modtrace();
    cmd.args(["run", "-i", "lo", "--no-tui", "--format", "json", "-o"])
        .arg(&report)
        .arg("-w")
        .arg(d.join("run.pcapng"))
        .arg("--keylog-out")
        .arg(d.join("run.keys"))
        .args(analysis_flags())
        .args(extra)
        .arg("--")
        .arg(go)
        .args(["mod", "download", "-json"])
        .args(env["DOWNLOADS"].split_whitespace())
        .env_clear()
        .envs(go_env(&d, go, &env))
        .env("SUDO_UID", NOBODY.to_string())
        .env("SUDO_GID", NOBODY.to_string())
        .current_dir(&d)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&go_stdout).unwrap())
        .stderr(Stdio::piped());
    let out = cmd.output().expect("modtrace run");
    std::thread::sleep(Duration::from_millis(500));
    signal(&guard.0[1], "INT");
    assert!(wait_timeout(&mut guard.0[1], Duration::from_secs(10)).is_some());
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report: Value = serde_json::from_slice(&std::fs::read(&report).unwrap_or_default())
        .unwrap_or_else(|e| panic!("{name}: no JSON report ({e}): {stderr}"));
    RunResult {
        report,
        stderr,
        go_stdout: std::fs::read_to_string(&go_stdout).unwrap(),
        exit: out.status.code(),
        lab_log: std::fs::read_to_string(&lab_log).unwrap(),
        server_keys,
        env,
        dir: d,
    }
}

/// The request path of an exchange (the URL's path and query; CONNECT: its target).
fn target_of(x: &Value) -> String {
    let url = x["url"].as_str().unwrap();
    if x["method"] == "CONNECT" || !url.contains("://") {
        return url.to_string();
    }
    url.splitn(4, '/')
        .nth(3)
        .map(|p| format!("/{p}"))
        .unwrap_or_else(|| "/".into())
}

/// (method, target, status) of every request the lab logged, and of every exchange.
fn requests(lab_log: &str) -> Vec<(String, String, u64)> {
    let mut v: Vec<_> = lab_log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let r: Value = serde_json::from_str(l).unwrap();
            (
                r["method"].as_str().unwrap().to_string(),
                r["target"].as_str().unwrap().to_string(),
                r["status"].as_u64().unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

fn exchanges(report: &Value) -> Vec<(String, String, u64)> {
    let mut v: Vec<_> = report["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["method"].as_str().unwrap().to_string(),
                target_of(x),
                x["status"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    v.sort();
    v
}

/// (rule, module@version) of every finding.
fn findings(report: &Value) -> Vec<(String, String)> {
    let mut v: Vec<_> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                format!(
                    "{}@{}",
                    f["module"].as_str().unwrap_or("-"),
                    f["version"].as_str().unwrap_or("-")
                ),
            )
        })
        .collect();
    v.sort();
    v
}

/// go's own hashes: `Path@Version` -> (Sum, GoModSum), from `go mod download -json`.
fn go_sums(stdout: &str) -> BTreeMap<String, (String, String)> {
    let mut out = BTreeMap::new();
    let mut de = serde_json::Deserializer::from_str(stdout).into_iter::<Value>();
    while let Some(Ok(m)) = de.next() {
        assert!(m.get("Error").is_none(), "go: {m}");
        out.insert(
            format!(
                "{}@{}",
                m["Path"].as_str().unwrap(),
                m["Version"].as_str().unwrap()
            ),
            (
                m["Sum"].as_str().unwrap().to_string(),
                m["GoModSum"].as_str().unwrap().to_string(),
            ),
        );
    }
    out
}

/// Checks one run: every logged request is an https exchange, every module's h1 is go's,
/// the findings are the keyed analysis's, and the go binary gave secrets.
fn check_run(name: &str, go: &Path, r: &RunResult) {
    let what = format!("{name} with {}", go.display());
    assert_eq!(r.exit, Some(0), "{what}: exit status; {}", r.stderr);
    assert_eq!(r.report["capture"]["command"]["exit_code"], 0, "{what}");
    assert!(
        r.stderr.contains("exited with status 0"),
        "{what}: the command's status is printed: {}",
        r.stderr
    );
    // Every request the lab logged, as an exchange over https (CONNECT is the proxy's).
    assert_eq!(
        exchanges(&r.report),
        requests(&r.lab_log),
        "{what}: exchanges"
    );
    for x in r.report["exchanges"].as_array().unwrap() {
        if x["method"] != "CONNECT" {
            assert_eq!(x["scheme"], "https", "{what}: {x}");
            assert_eq!(x["process"], "go", "{what}: {x}");
        }
    }
    // The same hashes as go.
    let sums = go_sums(&r.go_stdout);
    assert_eq!(
        sums.len(),
        r.env["DOWNLOADS"].split_whitespace().count(),
        "{what}"
    );
    for m in r.report["modules"].as_array().unwrap() {
        let key = format!(
            "{}@{}",
            m["module"].as_str().unwrap(),
            m["version"].as_str().unwrap()
        );
        let (sum, gomod) = &sums[&key];
        assert_eq!(m["h1"].as_str(), Some(sum.as_str()), "{what}: {key} zip");
        assert_eq!(
            m["mod_h1"].as_str(),
            Some(gomod.as_str()),
            "{what}: {key} go.mod"
        );
    }
    assert_eq!(
        r.report["modules"].as_array().unwrap().len(),
        sums.len(),
        "{what}"
    );
    // The secrets came from the go binary that ran.
    let keys = &r.report["capture"]["go_keys"];
    assert_eq!(keys["enabled"], true, "{what}: {keys}");
    let real = std::fs::canonicalize(go).unwrap();
    let probed = keys["binaries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| Path::new(b["path"].as_str().unwrap()) == real)
        .unwrap_or_else(|| panic!("{what}: {} not probed: {keys}", real.display()));
    assert!(probed["secrets"].as_u64().unwrap() > 0, "{what}: {probed}");
    assert_eq!(probed["abi"], "register", "{what}");
    // The same findings as the analysis of the same traffic, recorded by tcpdump, with the
    // servers' key log and no secret from the go process.
    let plain = r.dir.join("tcpdump.pcap");
    let mut args: Vec<String> = analysis_flags();
    args.push("--keylog".into());
    args.push(r.server_keys.display().to_string());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let keyed = analyze_json(&plain, &args);
    assert!(
        keyed["capture"]["tls_decrypted"].as_u64().unwrap() > 0,
        "{what}: the keyed analysis decrypts"
    );
    assert_eq!(findings(&r.report), findings(&keyed), "{what}: findings");
    let unkeyed = analyze_json(&plain, &[]);
    assert!(
        unkeyed["exchanges"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["method"] == "CONNECT"),
        "{what}: without any key the capture shows no request"
    );
    // The secrets written with --keylog-out are the go process's: they open the sessions.
    let keys_out = r.dir.join("run.keys");
    let meta = std::fs::metadata(&keys_out).unwrap();
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{what}");
        assert_eq!(
            meta.uid(),
            NOBODY,
            "{what}: --keylog-out belongs to the sudo caller"
        );
    }
    let with_out = analyze_json(&plain, &["--keylog", keys_out.to_str().unwrap()]);
    assert_eq!(
        exchanges(&with_out),
        exchanges(&keyed),
        "{what}: --keylog-out"
    );
}

#[test]
#[ignore = "needs root, tracefs, go, Debian's golang-go, tshark; run by .ci/run"]
fn run_sees_inside_the_go_command_https_without_a_server_key_log() {
    if !prerequisites_or_skip() {
        return;
    }
    let _lab = LAB.lock().unwrap_or_else(|e| e.into_inner());
    let base = tempdir_for_nobody();
    let go = which("go").unwrap();
    for go in [go.as_path(), Path::new(DEBIAN_GO)] {
        for name in SCENARIOS {
            let r = run_scenario(base.path(), name, go, &[]);
            check_run(name, go, &r);
            // The -w file decrypts in tshark with nothing else: the same request URIs.
            if *name == "h2-proxy-tls13" || *name == "tls12-verified" {
                let ours: std::collections::BTreeSet<String> = exchanges(&r.report)
                    .into_iter()
                    .map(|(_, t, _)| t)
                    .collect();
                let decode: Vec<String> = r.env["TLS_PORTS"]
                    .split_whitespace()
                    .flat_map(|p| ["-d".to_string(), format!("tcp.port=={p},tls")])
                    .collect();
                assert_eq!(
                    tshark_uris(&r.dir.join("run.pcapng"), None, &decode),
                    ours,
                    "{name}: tshark on the -w file, no key file"
                );
            }
            assert!(leftovers().is_empty(), "{name}: left {:?}", leftovers());
        }
    }
}

/// A Go program that fetches URLs over TLS (no module needed: the standard library).
const FETCH_GO: &str = r#"package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
)

func main() {
	for _, u := range os.Args[1:] {
		r, err := http.Get(u)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
		fmt.Println(u, r.Status)
	}
}
"#;

/// Builds FETCH_GO with `flags`; the binary's path.
fn build_fetch(dir: &Path, name: &str, flags: &[&str]) -> PathBuf {
    build_go(dir, name, FETCH_GO, flags)
}

#[test]
#[ignore = "needs root, tracefs, go; run by .ci/run"]
fn go_binary_reads_stripped_and_pie_programs() {
    if !prerequisites_or_skip() {
        return;
    }
    let _lab = LAB.lock().unwrap_or_else(|e| e.into_inner());
    let base = tempdir_for_nobody();
    let d = base.path();
    let stripped = build_fetch(d, "fetch-stripped", &["-ldflags=-s -w"]);
    let pie = build_fetch(d, "fetch-pie", &["-buildmode=pie"]);
    chown_nobody(d);
    let env = scenario_env("h2-proxy-tls13");
    let log = d.join("lab.jsonl");
    let (serve, _) = start_lab("h2-proxy-tls13", &log, Some(&d.join("server.keys")));
    let _guard = Guard(vec![serve]);
    let base_url = &env["GOPROXY"];
    let urls = [
        format!("{base_url}/example.test/%21hello/@v/list"),
        format!("{base_url}/example.test/%21util/@v/list"),
    ];
    let script = format!(
        "{} {} && {} {}",
        stripped.display(),
        urls[0],
        pie.display(),
        urls[1]
    );
    let report = d.join("report.json");
    let out = modtrace()
        .args([
            "run",
            "-i",
            "lo",
            "--no-tui",
            "--format",
            "json",
            "--fail-on",
            "never",
            "-o",
        ])
        .arg(&report)
        .args(analysis_flags())
        .arg("--go-binary")
        .arg(&stripped)
        .arg("--go-binary")
        .arg(&pie)
        .args(["--", "sh", "-c", &script])
        .env("SSL_CERT_FILE", repo().join("captures/lab-pki/lab-ca.pem"))
        .env("SUDO_UID", NOBODY.to_string())
        .env("SUDO_GID", NOBODY.to_string())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.matches("200 OK").count(),
        2,
        "both programs fetched: {stdout}"
    );
    let r: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let binaries = r["capture"]["go_keys"]["binaries"].as_array().unwrap();
    for (bin, found_by) in [(&stripped, "pclntab"), (&pie, "symtab")] {
        let b = binaries
            .iter()
            .find(|b| Path::new(b["path"].as_str().unwrap()) == bin.as_path())
            .unwrap_or_else(|| panic!("{} not probed: {binaries:?}", bin.display()));
        assert_eq!(b["origin"], "go-binary-flag", "{b}");
        assert_eq!(b["found_by"], found_by, "{b}");
        assert!(b["secrets"].as_u64().unwrap() >= 4, "{b}");
    }
    let mut got: Vec<String> = r["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["url"].as_str().unwrap().to_string())
        .collect();
    got.sort();
    let mut want = urls.to_vec();
    want.sort();
    assert_eq!(got, want, "both programs' requests, decrypted");
    // The sh that ran them is not Go: refused quietly, not an error line.
    assert!(
        !stderr.contains("cannot read TLS secrets from /usr/bin/dash"),
        "{stderr}"
    );
    assert!(leftovers().is_empty(), "left {:?}", leftovers());
}

/// Starts `modtrace run -- sleep 30` (probes in place for the go commands) and waits until
/// its probes are in tracefs; the child and the helper's pid.
fn start_long_run(d: &Path, extra: &[&str]) -> (std::process::Child, u32) {
    let child = modtrace()
        .args(["run", "-i", "lo", "--no-tui", "--format", "json", "-o"])
        .arg(d.join("report.json"))
        .args(extra)
        .args(["--", "sleep", "30"])
        .env("SUDO_UID", NOBODY.to_string())
        .env("SUDO_GID", NOBODY.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(d.join("stderr")).unwrap())
        .spawn()
        .unwrap();
    let children = |pid: u32| -> Vec<u32> {
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    };
    let exe_of = |pid: u32| {
        std::fs::read_link(format!("/proc/{pid}/exe"))
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    };
    // Running: the probes are in tracefs and the command has exec'd sleep.
    let deadline = Instant::now() + Duration::from_secs(20);
    while leftovers().iter().filter(|l| l.starts_with("p:")).count() == 0
        || !children(child.id())
            .into_iter()
            .any(|c| exe_of(c).ends_with("/sleep"))
    {
        assert!(Instant::now() < deadline, "the run did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let helper = children(child.id())
        .into_iter()
        .find(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains("go-keys-helper"))
        })
        .expect("the key helper");
    (child, helper)
}

#[test]
#[ignore = "needs root, tracefs, go; run by .ci/run"]
fn nothing_is_left_in_tracefs_however_a_run_ends() {
    if !prerequisites_or_skip() {
        return;
    }
    let _lab = LAB.lock().unwrap_or_else(|e| e.into_inner());
    let base = tempdir_for_nobody();
    assert!(
        leftovers().is_empty(),
        "left before the test: {:?}",
        leftovers()
    );
    // Normal exit.
    let out = modtrace()
        .args(["run", "-i", "lo", "--no-tui", "--", "true"])
        .env("SUDO_UID", NOBODY.to_string())
        .env("SUDO_GID", NOBODY.to_string())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        leftovers().is_empty(),
        "after a normal exit: {:?}",
        leftovers()
    );
    // SIGINT and SIGTERM: forwarded to the command, which ends; the report is written.
    for sig in ["INT", "TERM"] {
        let (mut child, _) = start_long_run(base.path(), &[]);
        signal(&child, sig);
        let st = wait_timeout(&mut child, Duration::from_secs(20)).expect("run ends");
        assert!(st.code().is_some(), "SIG{sig}: {st:?}");
        assert!(leftovers().is_empty(), "after SIG{sig}: {:?}", leftovers());
        let r: Value =
            serde_json::from_slice(&std::fs::read(base.path().join("report.json")).unwrap())
                .unwrap();
        assert!(
            r["capture"]["command"]["signal"].as_i64().is_some(),
            "SIG{sig}: {r}"
        );
    }
    // SIGKILL of modtrace alone: the helper sees its pipe close and cleans up.
    let (mut child, helper) = start_long_run(base.path(), &[]);
    signal(&child, "KILL");
    let _ = child.wait();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{helper}")).exists() || !leftovers().is_empty() {
        assert!(
            Instant::now() < deadline,
            "helper of a killed run: {:?}",
            leftovers()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // SIGKILL of both: probes stay, and the next run removes them.
    let (mut child, helper) = start_long_run(base.path(), &[]);
    signal_pid(helper, "KILL");
    signal(&child, "KILL");
    let _ = child.wait();
    std::thread::sleep(Duration::from_millis(300));
    let left = leftovers();
    assert!(!left.is_empty(), "a killed helper leaves its probes");
    let out = modtrace()
        .args([
            "run", "-i", "lo", "--no-tui", "--format", "json", "--", "true",
        ])
        .env("SUDO_UID", NOBODY.to_string())
        .env("SUDO_GID", NOBODY.to_string())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("removed what an earlier run that was killed left"),
        "{stderr}"
    );
    assert!(
        leftovers().is_empty(),
        "after the next run: {:?}",
        leftovers()
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        !r["capture"]["go_keys"]["stale_removed"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{r}"
    );
}

#[test]
#[ignore = "needs root, go; run by .ci/run"]
fn without_tracefs_or_rights_the_capture_goes_on() {
    if !prerequisites_or_skip() {
        return;
    }
    let _lab = LAB.lock().unwrap_or_else(|e| e.into_inner());
    let base = tempdir_for_nobody();
    let go = which("go").unwrap();
    // plaintext-proxy gives high findings: exit 1 with and without the key source.
    let with = run_scenario(base.path(), "plaintext-proxy", &go, &[]);
    let without = run_scenario(
        &base.path().join("x"),
        "plaintext-proxy",
        &go,
        &["--tracefs", "/nonexistent/tracefs"],
    );
    assert_eq!(with.exit, Some(1), "{}", with.stderr);
    assert_eq!(without.exit, with.exit, "{}", without.stderr);
    let lines: Vec<&str> = without
        .stderr
        .lines()
        .filter(|l| l.contains("go process keys"))
        .collect();
    assert_eq!(
        lines,
        ["modtrace: go process keys: off: no tracefs at /nonexistent/tracefs; capturing without them (HTTPS of the go command stays encrypted)"],
        "{}",
        without.stderr
    );
    assert_eq!(findings(&with.report), findings(&without.report));
    assert_eq!(
        without.report["capture"]["go_keys"]["unavailable"],
        "no tracefs at /nonexistent/tracefs"
    );
    // The key helper without rights (as nobody): it says why, in one report, and ends.
    let out = modtrace()
        .arg("go-keys-helper")
        .stdin(Stdio::null())
        .uid_nobody()
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let r: Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(r["report"], "unavailable", "{r}");
    assert!(r["why"].as_str().unwrap().contains("run with sudo"), "{r}");
    // --no-go-keys: no probe at all.
    let off = run_scenario(
        &base.path().join("y"),
        "plaintext-proxy",
        &go,
        &["--no-go-keys"],
    );
    assert_eq!(off.exit, with.exit);
    assert_eq!(off.report["capture"]["go_keys"]["enabled"], false);
    assert!(
        !off.stderr.contains("go process keys: off"),
        "{}",
        off.stderr
    );
}

trait UidNobody {
    fn uid_nobody(&mut self) -> &mut Self;
}

impl UidNobody for Command {
    fn uid_nobody(&mut self) -> &mut Self {
        use std::os::unix::process::CommandExt;
        self.uid(NOBODY).gid(NOBODY)
    }
}

/// In a terminal (tmux, 120x40) `modtrace run` shows the modules while the command runs, stays
/// with the command's exit status until `q`, then prints the command's own output and the
/// report on the restored terminal.
#[test]
#[ignore = "needs root, tracefs, go, tmux; run by .ci/run"]
fn run_in_a_terminal_shows_the_tui_until_q() {
    if !prerequisites_and_tool_or_skip("tmux") {
        return;
    }
    let _lab = LAB.lock().unwrap_or_else(|e| e.into_inner());
    let lab = lab("h2-proxy-tls13");
    let (d, env) = (lab.dir.path(), &lab.env);
    let go = which("go").unwrap();
    let vars: Vec<String> = go_env(d, &go, env)
        .into_iter()
        .map(|(k, v)| format!("{k}='{v}'"))
        .collect();
    let cmd = format!(
        "sh -c \"env {} SUDO_UID={NOBODY} SUDO_GID={NOBODY} {} run -i lo --ca-file {} -- go mod download -json {}; echo EXITED \\$?; sleep 60\"",
        vars.join(" "),
        env!("CARGO_BIN_EXE_modtrace"),
        repo().join("captures/lab-pki/lab-ca.pem").display(),
        env["DOWNLOADS"]
    );
    std::fs::write(d.join("cmd.txt"), &cmd).unwrap();
    let term = common::tmux::Session::start("run", &cmd);
    let screen = term.wait_for("q quits");
    if !screen.contains("go exited 0; q quits") {
        term.keys("q");
        panic!("{screen}\n{}", term.wait_for("EXITED"));
    }
    for m in ["example.test/Hello@v1.1.0", "example.test/Util@v0.2.0"] {
        let row = screen
            .lines()
            .find(|l| l.contains(m))
            .unwrap_or_else(|| panic!("{m} not on screen:\n{screen}"));
        assert!(row.contains("tls✓") && row.contains("h1✓"), "{row}");
    }
    assert!(screen.contains("FINISHED"), "{screen}");
    assert!(screen.contains("run:go mod download …"), "{screen}");
    term.keys("q");
    let after = term.wait_for("EXITED");
    // Medium findings only: exit 0 at --fail-on high.
    assert!(after.contains("EXITED 0"), "{after}");
    assert!(after.contains("modtrace report"), "{after}");
    assert!(!after.contains("Journey example.test"), "{after}");
    assert!(leftovers().is_empty(), "left {:?}", leftovers());
}

/// Other TLS stacks among COMMAND's children log their keys through SSLKEYLOGFILE, which
/// `run` sets to a file it follows: libcurl (what git uses for HTTPS) as curl itself here.
#[test]
#[ignore = "needs root, curl; run by .ci/run"]
fn run_follows_sslkeylogfile_of_other_tls_stacks() {
    if !prerequisites_and_tool_or_skip("curl") {
        return;
    }
    let _lab = LAB.lock().unwrap_or_else(|e| e.into_inner());
    let lab = lab("h2-proxy-tls13");
    let (d, env) = (lab.dir.path(), &lab.env);
    let ca = repo().join("captures/lab-pki/lab-ca.pem");
    let url = format!("{}/example.test/%21hello/@v/list", env["GOPROXY"]);
    let report = d.join("report.json");
    let out = modtrace()
        .args(["run", "-i", "lo", "--no-tui", "--format", "json", "-o"])
        .arg(&report)
        .args(analysis_flags())
        .args(["--", "curl", "-s", "--cacert"])
        .arg(&ca)
        .arg(&url)
        .env("SUDO_UID", NOBODY.to_string())
        .env("SUDO_GID", NOBODY.to_string())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "v1.1.0");
    let r: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let x = r["exchanges"].as_array().unwrap();
    assert_eq!(x.len(), 1, "{x:?}");
    assert_eq!(x[0]["url"], url.as_str());
    assert_eq!(x[0]["scheme"], "https");
    assert_eq!(x[0]["process"], "curl");
    assert_eq!(x[0]["status"], 200);
    // Not from the go process: curl is no Go program.
    assert_eq!(
        r["capture"]["go_keys"]["secrets"], 0,
        "{}",
        r["capture"]["go_keys"]
    );
}

/// `capture` probes the executable of a Go program that opens a connection, when no probe
/// covers it yet (best effort: its later connections and runs are decrypted).
#[test]
#[ignore = "needs root, tracefs, go; run by .ci/run"]
fn capture_probes_go_programs_that_open_connections() {
    if !prerequisites_or_skip() {
        return;
    }
    let _lab = LAB.lock().unwrap_or_else(|e| e.into_inner());
    let lab = lab("h2-proxy-tls13");
    let d = lab.dir.path();
    let prog = build_fetch(d, "fetch-later", &["-ldflags=-s -w"]);
    chown_nobody(d);
    let events = d.join("events.jsonl");
    let err = d.join("capture.err");
    let mut capture = modtrace()
        .args(["capture", "-i", "lo", "-f", "tcp port 8108", "--no-tui"])
        .args(["--format", "jsonl"])
        .args(analysis_flags())
        .env("SUDO_UID", NOBODY.to_string())
        .env("SUDO_GID", NOBODY.to_string())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&events).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&err)
        .unwrap_or_default()
        .contains("capturing on")
    {
        assert!(Instant::now() < deadline, "capture did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let fetch = |path: &str| {
        let out = Command::new(&prog)
            .arg(format!("{}{path}", lab.env["GOPROXY"]))
            .env("SSL_CERT_FILE", repo().join("captures/lab-pki/lab-ca.pem"))
            .uid_nobody()
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // Its first connection makes modtrace probe it; the second run is decrypted.
    fetch("/example.test/%21hello/@v/list");
    std::thread::sleep(Duration::from_millis(1500));
    fetch("/example.test/%21util/@v/list");
    std::thread::sleep(Duration::from_millis(1000));
    signal(&capture, "INT");
    wait_timeout(&mut capture, Duration::from_secs(20)).expect("capture stops");
    let lines: Vec<Value> = std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary = lines
        .iter()
        .find(|l| l["type"] == "summary")
        .expect("summary");
    let binaries = summary["capture"]["go_keys"]["binaries"]
        .as_array()
        .unwrap();
    let probed = binaries
        .iter()
        .find(|b| Path::new(b["path"].as_str().unwrap()) == prog.as_path())
        .unwrap_or_else(|| panic!("not probed: {binaries:?}"));
    assert_eq!(probed["origin"], "process", "{probed}");
    assert_eq!(probed["found_by"], "pclntab", "{probed}");
    assert!(probed["secrets"].as_u64().unwrap() >= 4, "{probed}");
    let urls: Vec<&str> = lines
        .iter()
        .filter(|l| l["type"] == "exchange")
        .filter_map(|l| l["url"].as_str())
        .collect();
    assert!(
        urls.iter()
            .any(|u| u.ends_with("/example.test/%21util/@v/list")),
        "the second run is decrypted: {urls:?}"
    );
}
