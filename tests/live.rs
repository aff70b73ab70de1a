//! Live capture with the real go command: `modtrace capture -i lo -w T --no-tui --format
//! jsonl` around `go mod download` against the lab (a plaintext proxy, then a 410 fallback
//! chain). Needs root, go, libpcap and a build with `--features live`; run by .ci/run as
//! `cargo test --release --features live --test live -- --ignored --nocapture`. Missing
//! prerequisites fail under CI=true and skip elsewhere.

mod common;
use common::root::{self, *};
use common::tmux::Session;
use common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[cfg(not(feature = "live"))]
#[test]
fn capture_without_the_feature_says_how_to_get_it() {
    let out = run(&["capture", "-i", "lo"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--features live"), "{err}");
    assert!(err.contains("libpcap-dev"), "{err}");
}

fn missing_prerequisites() -> Vec<String> {
    let mut missing = Vec::new();
    if !cfg!(feature = "live") {
        missing.push("a build with --features live".to_string());
    }
    if !is_root() {
        missing.push("root (capturing on lo, running go as nobody)".to_string());
    }
    if which("go").is_none() {
        missing.push("go".to_string());
    }
    missing
}

/// The lab's ports are fixed: one test at a time runs lab servers.
static LAB: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Skips (prints why) outside CI, fails in CI.
fn prerequisites_or_skip() -> bool {
    root::prerequisites_or_skip("live suite", &missing_prerequisites())
}

struct Run {
    lines: Vec<serde_json::Value>,
    /// The scenario's server ports: other traffic on lo (another suite) is not ours.
    ports: Vec<u16>,
    lab_log: String,
    pcapng: PathBuf,
    capture_exit: Option<i32>,
    capture_stderr: String,
}

/// One capture around one scenario. `sudo`: simulate `sudo` by nobody (SUDO_UID/SUDO_GID);
/// else `--user nobody`. A TLS scenario's servers use the bundled lab PKI (go trusts its CA)
/// and write their key log to `keys.log` in the scenario's folder; with `keylog` naming that
/// file the capture decrypts as the lab writes it.
fn capture_scenario(
    dir: &Path,
    name: &str,
    sudo: bool,
    keylog: Option<&Path>,
    extra: &[&str],
) -> Run {
    let env = scenario_env(name);
    let d = dir.join(name);
    for sub in ["home", "gopath", "cache", "work"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    let tls = env.get("USES_TLS").is_some_and(|v| v == "1");
    let ca = d.join("lab-ca.pem");
    if tls {
        std::fs::copy(repo().join("captures/lab-pki/lab-ca.pem"), &ca).unwrap();
    }
    chown_nobody(&d);
    let lab_log = d.join("lab.jsonl");
    let mut guard = Guard(Vec::new());

    let keys = d.join("keys.log");
    let (serve, goproxy) = start_lab(name, &lab_log, tls.then_some(keys.as_path()));
    guard.0.push(serve);
    assert_eq!(goproxy, env["GOPROXY"]);

    let pcapng = d.join("live.pcapng");
    let events = d.join("events.jsonl");
    let errfile = d.join("capture.err");
    let mut cmd = modtrace();
    cmd.args(["capture", "-i", "lo", "--no-tui", "--format", "jsonl", "-w"])
        .arg(&pcapng)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&events).unwrap())
        .stderr(std::fs::File::create(&errfile).unwrap());
    if let Some(k) = keylog {
        cmd.arg("--keylog").arg(k);
    }
    cmd.args(extra);
    if sudo {
        cmd.env("SUDO_UID", NOBODY.to_string())
            .env("SUDO_GID", NOBODY.to_string());
    } else {
        cmd.args(["--user", "nobody"])
            .env_remove("SUDO_UID")
            .env_remove("SUDO_GID");
    }
    let started = Instant::now();
    let capture = cmd.spawn().expect("start modtrace capture");
    let pid = capture.id();
    guard.0.push(capture);
    // Within a second of its start the capture runs without root.
    let mut dropped = false;
    while started.elapsed() < Duration::from_secs(1) {
        if let Some(u) = uids_of(pid) {
            if !u.is_empty() && u.iter().all(|u| *u != 0) {
                assert!(u.iter().all(|u| *u == NOBODY), "uids {u:?}");
                dropped = true;
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let err_now = std::fs::read_to_string(&errfile).unwrap_or_default();
    assert!(
        dropped,
        "{name}: capture still runs as root (or died) 1 s after its start: {err_now}"
    );
    // Ready once it says so (after the drop).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&errfile)
        .unwrap_or_default()
        .contains("capturing on lo")
    {
        assert!(Instant::now() < deadline, "{name}: capture did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));

    run_go(&d, name, &env, tls.then_some(ca.as_path()));

    std::thread::sleep(Duration::from_secs(1));
    let capture = &mut guard.0[1];
    signal(capture, "INT");
    let status = wait_timeout(capture, Duration::from_secs(20))
        .unwrap_or_else(|| panic!("{name}: capture did not stop on SIGINT"));
    drop(guard); // stops the lab servers; their log is complete (written per response)

    let text = std::fs::read_to_string(&events).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    Run {
        lines,
        ports: env["PORTS"]
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .collect(),
        lab_log: std::fs::read_to_string(&lab_log).unwrap(),
        pcapng,
        capture_exit: status.code(),
        capture_stderr: std::fs::read_to_string(&errfile).unwrap_or_default(),
    }
}

/// The go command, as captures/record.sh runs it, as nobody; `ca`: the only trusted root.
fn run_go(d: &Path, name: &str, env: &BTreeMap<String, String>, ca: Option<&Path>) {
    let go = which("go").unwrap();
    let mut go_cmd = Command::new(&go);
    go_cmd
        .current_dir(d.join("work"))
        .env_clear()
        .envs(go_env(d, &go, env))
        .args(["mod", "download", "-json"])
        .args(env["DOWNLOADS"].split_whitespace());
    if let Some(ca) = ca {
        go_cmd.env("SSL_CERT_FILE", ca);
    }
    {
        use std::os::unix::process::CommandExt;
        go_cmd.uid(NOBODY).gid(NOBODY);
    }
    let go_out = go_cmd.output().expect("run go");
    let go_text = String::from_utf8_lossy(&go_out.stdout).to_string()
        + &String::from_utf8_lossy(&go_out.stderr);
    assert!(
        go_out.status.success() && !go_text.contains("\"Error\""),
        "{name}: go mod download failed: {go_text}"
    );
}

fn of_type<'a>(lines: &'a [serde_json::Value], t: &str) -> Vec<&'a serde_json::Value> {
    lines.iter().filter(|l| l["type"] == t).collect()
}

/// Every request the lab servers logged is an exchange of `modtrace analyze FILE`.
/// Whether an exchange's server is one of the scenario's.
fn ours(e: &serde_json::Value, ports: &[u16]) -> bool {
    e["server"]
        .as_str()
        .and_then(|s| s.rsplit(':').next()?.parse::<u16>().ok())
        .is_some_and(|p| ports.contains(&p))
}

fn analyze_lists_every_logged_request(name: &str, r: &Run) {
    let (pcapng, lab_log) = (&r.pcapng, &r.lab_log);
    let out = run(&[
        "analyze",
        pcapng.to_str().unwrap(),
        "--format",
        "json",
        "--fail-on",
        "never",
    ]);
    assert_eq!(out.status.code(), Some(0), "{name}: analyze of the -w file");
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["capture"]["files"][0]["format"], "pcapng");
    let mut on_wire: Vec<(String, String)> = j["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| ours(e, &r.ports))
        .map(|e| {
            let url = e["url"].as_str().unwrap();
            let server = e["server"].as_str().unwrap().to_string();
            let path = url
                .split_once("://")
                .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_string()))
                .unwrap_or_default();
            (server, path)
        })
        .collect();
    let mut logged: Vec<(String, String)> = lab_log
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["listen"].as_str().unwrap().to_string(),
                v["target"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(!logged.is_empty(), "{name}: the lab logged no request");
    on_wire.sort();
    logged.sort();
    assert_eq!(
        logged, on_wire,
        "{name}: server log vs analyze of the -w file"
    );
}

fn check_stream(name: &str, r: &Run, expected_rules: &[&str]) {
    let lines = &r.lines;
    assert!(
        !lines.is_empty(),
        "{name}: no events; stderr: {}",
        r.capture_stderr
    );
    let last = lines.last().unwrap();
    assert_eq!(
        last["type"], "summary",
        "{name}: the stream ends with the summary"
    );
    assert_eq!(last["run_as"]["uid"], NOBODY);
    for l in lines {
        let t = l["type"].as_str().unwrap();
        assert!(
            ["exchange", "journey", "finding", "tls", "summary"].contains(&t),
            "{t}"
        );
    }
    let findings: Vec<&str> = of_type(lines, "finding")
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    for rule in expected_rules {
        assert!(
            findings.contains(rule),
            "{name}: no {rule} in the stream: {findings:?}"
        );
    }
    let dropped = last["kernel"]["dropped"].as_u64().unwrap()
        + last["kernel"]["if_dropped"].as_u64().unwrap();
    assert_eq!(
        dropped > 0,
        findings.contains(&"capture-drops"),
        "{name}: capture-drops exactly when the kernel dropped packets"
    );
    // Exit status like analyze: findings of high severity (plaintext) give 1.
    assert_eq!(r.capture_exit, Some(1), "{name}: {}", r.capture_stderr);
    assert_eq!(last["exit_code"], 1);

    // Attribution: the go command made every exchange. Each one modtrace attributed is
    // attributed to go (at least one is); a connection it could not attribute is one that
    // closed before its SYN could be looked up (the summary counts those), as a zip
    // connection can on loopback, within milliseconds.
    let exchanges: Vec<&serde_json::Value> = of_type(lines, "exchange")
        .into_iter()
        .filter(|e| ours(e, &r.ports))
        .collect();
    assert!(!exchanges.is_empty(), "{name}: no exchange streamed");
    let procs = &last["processes"];
    let unattributed: Vec<&&serde_json::Value> = exchanges
        .iter()
        .filter(|e| e["process"].is_null())
        .collect();
    for e in &exchanges {
        assert!(
            e["process"] == "go" || e["process"].is_null(),
            "{name}: exchange {} {} attributed to {}",
            e["id"],
            e["url"],
            e["process"]
        );
    }
    assert!(
        exchanges.iter().any(|e| e["process"] == "go"),
        "{name}: no exchange attributed to go (summary {procs})"
    );
    if !unattributed.is_empty() {
        let flows: std::collections::BTreeSet<u64> = unattributed
            .iter()
            .map(|e| e["flow"].as_u64().unwrap())
            .collect();
        assert!(
            procs["ended_before_lookup"].as_u64().unwrap() >= flows.len() as u64,
            "{name}: {} connections without a process, {procs}",
            flows.len()
        );
        eprintln!(
            "{name}: {} of {} exchanges on connections that closed before their lookup",
            unattributed.len(),
            exchanges.len()
        );
    }
    assert!(procs["resolved"].as_u64().unwrap() >= 1);
    // The latest state of each journey and the plaintext findings name go.
    let mut latest = BTreeMap::new();
    for j in of_type(lines, "journey") {
        let hops = j["journey"].as_array().unwrap();
        if hops.iter().all(|h| ours(h, &r.ports)) {
            latest.insert(j["index"].as_u64().unwrap(), j);
        }
    }
    assert!(!latest.is_empty());
    for j in latest.values() {
        let p = j["process"].as_str().unwrap_or("");
        assert!(
            p.split(", ").all(|n| n == "go"),
            "{name}: journey process {p}"
        );
    }
    assert!(latest.values().any(|j| j["process"] == "go"));
    let pmf: Vec<&serde_json::Value> = of_type(lines, "finding")
        .into_iter()
        .filter(|f| {
            f["rule"] == "plaintext-module-fetch"
                && r.ports
                    .iter()
                    .any(|p| f["message"].as_str().unwrap().contains(&format!(":{p}")))
        })
        .collect();
    assert!(pmf.iter().any(|f| f["process"] == "go"), "{name}: {pmf:?}");
    assert!(pmf
        .iter()
        .all(|f| f["process"] == "go" || f["process"].is_null()));
}

#[test]
#[ignore = "needs root, go and a --features live build; run by .ci/run"]
fn live_capture_of_the_go_command() {
    let _lab = LAB.lock().unwrap_or_else(|e| e.into_inner());
    if !prerequisites_or_skip() {
        return;
    }
    let dir = tempdir_for_nobody();

    // Without the rights to capture: a clear message, exit 2.
    {
        use std::os::unix::process::CommandExt;
        let out = modtrace()
            .args(["capture", "-i", "lo", "--no-tui"])
            .uid(NOBODY)
            .gid(NOBODY)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains("sudo") && err.contains("setcap cap_net_raw,cap_net_admin"),
            "{err}"
        );
    }

    // A key log to embed (nobody reads it after the drop).
    let keylog = dir.path().join("keys.log");
    let keys = "CLIENT_RANDOM 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n";
    std::fs::write(&keylog, keys).unwrap();

    // 1. sudo by nobody: drops to SUDO_UID/SUDO_GID.
    let r = capture_scenario(dir.path(), "plaintext-proxy", true, Some(&keylog), &[]);
    check_stream(
        "plaintext-proxy",
        &r,
        &["plaintext-module-fetch", "no-checksum-verification"],
    );
    analyze_lists_every_logged_request("plaintext-proxy", &r);
    // The -w file belongs to the user, and holds the key log in a Decryption Secrets Block
    // (type 0x0000000A, secrets type "TLSK") ahead of the packets of the second before it.
    {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(&r.pcapng).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (NOBODY, NOBODY));
        let bytes = std::fs::read(&r.pcapng).unwrap();
        assert_eq!(&bytes[..4], &[0x0a, 0x0d, 0x0d, 0x0a], "pcapng SHB");
        let needle = [&10u32.to_le_bytes()[..], &[0, 0, 0, 0][..]].concat();
        let dsb = bytes
            .windows(keys.len())
            .position(|w| w == keys.as_bytes())
            .expect("key log in the file");
        assert_eq!(&bytes[dsb - 8..dsb - 4], &0x544c534bu32.to_le_bytes()[..]);
        assert_eq!(&bytes[dsb - 16..dsb - 12], &needle[..4]);
        assert!(
            r.capture_stderr
                .contains("1 TLS secret embedded in the -w file"),
            "{}",
            r.capture_stderr
        );
    }

    // 2. --user nobody, the fallback chain.
    let r = capture_scenario(dir.path(), "fallback-410", false, None, &[]);
    check_stream(
        "fallback-410",
        &r,
        &[
            "plaintext-module-fetch",
            "proxy-fallback",
            "no-checksum-verification",
        ],
    );
    analyze_lists_every_logged_request("fallback-410", &r);

    // 3. HTTP/2 over TLS 1.3 with the key log the lab server writes as it goes: decrypted
    // live, every request the server logged streams as an https exchange.
    let name = "h2-proxy-tls13";
    let keys = dir.path().join(name).join("keys.log");
    let ca = repo().join("captures/lab-pki/lab-ca.pem");
    let r = capture_scenario(
        dir.path(),
        name,
        true,
        Some(&keys),
        &["--ca-file", ca.to_str().unwrap()],
    );
    let streamed: Vec<String> = of_type(&r.lines, "exchange")
        .iter()
        .filter(|e| ours(e, &r.ports))
        .map(|e| {
            assert_eq!(e["scheme"], "https", "{e}");
            let url = e["url"].as_str().unwrap();
            url.splitn(4, '/').nth(3).map(|p| format!("/{p}")).unwrap()
        })
        .collect();
    let mut logged: Vec<String> = r
        .lab_log
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["target"].as_str().unwrap().to_string()
        })
        .collect();
    let mut streamed_sorted = streamed.clone();
    streamed_sorted.sort();
    logged.sort();
    assert_eq!(
        streamed_sorted, logged,
        "{name}: streamed exchanges vs the server log; stderr: {}",
        r.capture_stderr
    );
    let tls = of_type(&r.lines, "tls");
    assert!(
        tls.iter().any(
            |t| t["decryption"]["records_decrypted"].as_u64().unwrap_or(0) > 0
                && t["validation"]["status"] == "valid"
        ),
        "{name}: no decrypted, validated session: {tls:?}"
    );
    // Medium findings only (no checksum database): exit 0 with --fail-on high.
    assert_eq!(r.capture_exit, Some(0), "{}", r.capture_stderr);
}

/// In a terminal (tmux, 120x40) `modtrace capture` opens the TUI: the modules arrive live
/// while the go command runs, `q` stops the capture, restores the terminal and prints the
/// summary, with analyze's exit status (1: plaintext fetches are high).
#[test]
#[ignore = "needs root, go, tmux and a --features live build; run by .ci/run"]
fn live_capture_in_a_terminal_opens_the_tui() {
    let _lab = LAB.lock().unwrap_or_else(|e| e.into_inner());
    if !prerequisites_or_skip() {
        return;
    }
    if which("tmux").is_none() {
        let msg = "live TUI test needs tmux";
        assert!(!std::env::var("CI").is_ok_and(|v| v == "true"), "{msg}");
        eprintln!("SKIPPED: {msg}");
        return;
    }
    let dir = tempdir_for_nobody();
    let name = "plaintext-proxy";
    let env = scenario_env(name);
    let d = dir.path().join(name);
    for sub in ["home", "gopath", "cache", "work"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    chown_nobody(&d);
    let (serve, _) = start_lab(name, &d.join("lab.jsonl"), None);
    let _guard = Guard(vec![serve]);

    let bin = env!("CARGO_BIN_EXE_modtrace");
    let cmd = format!(
        "sh -c '{bin} capture -i lo -f \"tcp port 8081\" --user nobody; echo EXITED $?; sleep 60'"
    );
    let term = Session::start("live", &cmd);
    term.wait_for("LIVE");
    run_go(&d, name, &env, None);
    let screen = term.wait_for("example.test/Util@v0.2.0");
    assert!(screen.contains("example.test/Hello@v1.1.0"), "{screen}");
    assert!(screen.contains("plaintext-module-fetch"), "{screen}");
    term.keys("q");
    let after = term.wait_for("EXITED");
    assert!(after.contains("EXITED 1"), "{after}");
    // The summary is printed on the restored terminal; the TUI is gone.
    assert!(after.contains("modtrace report"), "{after}");
    assert!(!after.contains("Journey example.test"), "{after}");
}
