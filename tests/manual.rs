//! `modtrace completions` and `modtrace man` come from the command line's own definition: every
//! subcommand and every flag of it is in the completion script of each shell and in the man
//! page; bash completes `modtrace ana` to `analyze`; `man -l` renders the page. bash and man are
//! needed for the last two; without them those skip with a message, except in CI (CI=true).

mod common;
use common::*;
use std::io::Write;
use std::process::{Command, Stdio};

/// Every visible subcommand path (`["lab", "run"]`) and every visible long flag of each.
fn subcommands_and_flags() -> (Vec<Vec<String>>, Vec<String>) {
    fn walk(
        cmd: &clap::Command,
        path: &[String],
        subs: &mut Vec<Vec<String>>,
        flags: &mut Vec<String>,
    ) {
        for a in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
            if let Some(long) = a.get_long() {
                flags.push(format!("--{long}"));
            }
        }
        for s in cmd
            .get_subcommands()
            .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        {
            let mut p = path.to_vec();
            p.push(s.get_name().to_string());
            subs.push(p.clone());
            walk(s, &p, subs, flags);
        }
    }
    let mut cmd = modtrace::manual::command();
    cmd.build();
    let (mut subs, mut flags) = (Vec::new(), Vec::new());
    walk(&cmd, &[], &mut subs, &mut flags);
    flags.sort();
    flags.dedup();
    (subs, flags)
}

fn stdout_of(args: &[&str]) -> String {
    let out = run(args);
    assert!(out.status.success(), "modtrace {args:?}: {:?}", out);
    String::from_utf8(out.stdout).unwrap()
}

fn required(tool: &str, what: &str) -> bool {
    let here = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !here {
        let msg = format!("{what} needs {tool}");
        assert!(std::env::var("CI").map_or(true, |v| v != "true"), "{msg}");
        eprintln!("skipped: {msg}");
    }
    here
}

#[test]
fn every_subcommand_and_flag_is_in_each_completion_script_and_the_man_page() {
    let (subs, flags) = subcommands_and_flags();
    // The lab's own subcommands are in (grafted from crates/lab).
    assert!(subs.iter().any(|s| s == &["lab", "run"]), "{subs:?}");
    assert!(flags.iter().any(|f| f == "--threads"), "{flags:?}");
    let man = stdout_of(&["man"]);
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let script = stdout_of(&["completions", shell]);
        for s in &subs {
            let name = s.last().unwrap();
            assert!(
                script.contains(name.as_str()),
                "{shell} lacks subcommand {s:?}"
            );
        }
        for f in &flags {
            // fish names long flags without their dashes (`-l threads`).
            let found = script.contains(f.as_str())
                || (shell == "fish" && script.contains(&format!("-l {}", &f[2..])));
            assert!(found, "{shell} completions lack {f}");
        }
    }
    for s in &subs {
        let heading = format!(".SH \"MODTRACE {}\"", s.join(" ").to_uppercase());
        assert!(man.contains(&heading), "the man page lacks {heading}");
    }
    for f in &flags {
        // roff escapes every '-'.
        let roff = f.replace('-', "\\-");
        assert!(man.contains(&roff), "the man page lacks {f}");
    }
}

#[test]
fn bash_completes_ana_to_analyze() {
    if !required("bash", "the bash completion test") {
        return;
    }
    let script = stdout_of(&["completions", "bash"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("modtrace.bash");
    std::fs::write(&file, script).unwrap();
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {}; COMP_WORDS=(modtrace ana); COMP_CWORD=1; COMP_LINE='modtrace ana'; \
             COMP_POINT=12; _modtrace modtrace ana modtrace; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            file.display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let words: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(words, ["analyze"], "{out:?}");
}

#[test]
fn man_renders_the_page_with_every_subcommand() {
    if !required("man", "the man page test") {
        return;
    }
    let page = stdout_of(&["man"]);
    let mut child = Command::new("man")
        .args(["-l", "-"])
        .env("MANWIDTH", "100")
        .env("MAN_KEEP_FORMATTING", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "man -l: {out:?}");
    let text = plain(&String::from_utf8_lossy(&out.stdout));
    assert!(text.contains("modtrace(1)"), "{text}");
    let (subs, _) = subcommands_and_flags();
    for s in subs {
        let heading = format!("MODTRACE {}", s.join(" ").to_uppercase());
        assert!(text.contains(&heading), "man -l shows no {heading}");
    }
    assert!(
        String::from_utf8_lossy(&out.stderr).trim().is_empty(),
        "man -l warns: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The text without man's overstrike (`X\x08X` bold, `_\x08X` underline), as `col -b` gives.
fn plain(s: &str) -> String {
    let mut out: Vec<char> = Vec::with_capacity(s.len());
    for c in s.chars() {
        if c == '\u{8}' {
            out.pop();
            continue;
        }
        // After a backspace the next character replaces the one removed.
        out.push(c);
    }
    out.into_iter().collect()
}

#[test]
fn version_says_which_features_the_build_has() {
    let v = stdout_of(&["--version"]);
    assert!(v.starts_with(&format!("modtrace {}", env!("CARGO_PKG_VERSION"))));
    if cfg!(feature = "live") {
        assert!(v.contains("live capture"), "{v}");
    } else {
        assert!(v.contains("no live capture"), "{v}");
    }
}
