use clap::Parser;
use modtrace::cli::{AnalyzeArgs, Cli, Command, Format};
use modtrace::pipeline::Analyzer;
use modtrace::report::Report;
use modtrace::source::MergedSource;
use modtrace::time::Date;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Analyze(a) => analyze(&a),
        Command::Lab { args } => modtrace::lab::cli(&args),
        #[cfg(feature = "live")]
        Command::Capture(c) => modtrace::capture::run(&c),
        #[cfg(feature = "live")]
        Command::Run(r) => modtrace::capture::run::main(&r),
        #[cfg(all(feature = "live", target_os = "linux"))]
        Command::GoKeysHelper { tracefs } => modtrace::gokeys::helper::main(tracefs),
        #[cfg(not(all(feature = "live", target_os = "linux")))]
        Command::GoKeysHelper { .. } => {
            eprintln!("modtrace: go-keys-helper: this build reads no TLS secrets from processes");
            2
        }
        #[cfg(not(feature = "live"))]
        Command::Run(_) => {
            eprintln!(
                "modtrace: run: this build has no live capture; rebuild with the `live` feature \
(needs libpcap-dev): cargo install --path . --features live"
            );
            2
        }
        Command::Replay(r) => replay(&r),
        Command::Demo(d) => demo(&d),
        Command::Explain { rule } => explain(rule.as_deref()),
        Command::Completions { shell } => {
            match modtrace::manual::completions(shell, &mut std::io::stdout()) {
                Ok(()) => 0,
                // A closed pipe (`| head`) is the reader's choice, not an error.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
                Err(e) => fail(format!("completions: {e}")),
            }
        }
        Command::Man => match modtrace::manual::man(&mut std::io::stdout()) {
            Ok(()) => 0,
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
            Err(e) => fail(format!("man: {e}")),
        },
        #[cfg(not(feature = "live"))]
        Command::Capture(_) => {
            eprintln!(
                "modtrace: capture: this build has no live capture; rebuild with the `live` feature \
(needs libpcap-dev): cargo install --path . --features live"
            );
            2
        }
    };
    ExitCode::from(code.clamp(0, 255) as u8)
}

fn fail(msg: impl std::fmt::Display) -> i32 {
    eprintln!("modtrace: {msg}");
    2
}

fn analyze(a: &AnalyzeArgs) -> i32 {
    for f in &a.files {
        if let Err(e) = std::fs::metadata(f) {
            return fail(format_args!("{}: {e}", f.display()));
        }
    }
    let mut src = match MergedSource::open(&a.files) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let total: u64 = a
        .files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let progress =
        (!a.no_progress && std::io::stderr().is_terminal() && total > 8 << 20).then(|| {
            let pb = indicatif::ProgressBar::new(total);
            pb.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {bytes}/{total_bytes} {wide_bar} {binary_bytes_per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            pb
        });

    let mut cfg = match a.opts.config() {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    cfg.hash_zips = !a.no_zip_hashes;
    // ECS documents carry the user agent; other reports need no headers.
    cfg.keep_headers = a.report.format == Format::Ecs;
    let today = Date::today();
    for w in cfg.policy.expired(today) {
        eprintln!("modtrace: warning: {w}");
    }
    if a.report.show_secrets && a.report.format != Format::Text {
        eprintln!(
            "modtrace: warning: --show-secrets applies to text output only; this report stays redacted"
        );
    }
    // pcapng files may carry their key logs (Decryption Secrets Blocks), possibly after the
    // packets: read them first.
    for f in &a.files {
        match modtrace::source::embedded_keylog(f) {
            Ok(k) => cfg.keylog.add_text(&k),
            Err(e) => return fail(e),
        }
    }
    let mut an = Analyzer::new(cfg);
    // --show-secrets reads the secrets from the exchanges' credentials.
    an.keep_exchanges(a.report.needs_exchanges());
    let mut n: u64 = 0;
    loop {
        match src.next_frame() {
            Ok(Some(frame)) => {
                an.on_frame(&frame);
                an.drain_events().for_each(drop);
                src.recycle(frame);
                n += 1;
                if n % 4096 == 0 {
                    if let Some(pb) = &progress {
                        pb.set_position(src.position());
                    }
                }
            }
            Ok(None) => break,
            Err(e) => {
                if let Some(pb) = &progress {
                    pb.finish_and_clear();
                }
                return fail(e);
            }
        }
    }
    if let Some(pb) = &progress {
        pb.finish_and_clear();
    }
    an.finish();
    let stats: Vec<_> = src.stats().into_iter().cloned().collect();
    for s in &stats {
        if s.truncated_file {
            eprintln!(
                "modtrace: warning: {}: capture is cut short; analysed as far as it goes",
                s.path.display()
            );
        }
    }
    // The policy's severity overrides and ignores, before any output and before --fail-on.
    let policy = an.policy().clone();
    let mut report = Report::build(&stats, an.into_outcome());
    report.apply_policy(&policy, today);

    let mut out: Box<dyn Write> = match &a.report.output {
        Some(p) => match std::fs::File::create(p) {
            Ok(f) => Box::new(std::io::BufWriter::new(f)),
            Err(e) => return fail(format_args!("{}: {e}", p.display())),
        },
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let res = report
        .write_as(&a.report.format_options(a.files.clone()), &mut out)
        .and_then(|_| out.flush());
    if let Err(e) = res {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            return 0;
        }
        return fail(format_args!("writing the report: {e}"));
    }
    match a.opts.fail_on.threshold() {
        Some(t) if report.findings.iter().any(|f| f.severity >= t) => 1,
        _ => 0,
    }
}

fn replay(a: &modtrace::cli::ReplayArgs) -> i32 {
    for f in &a.files {
        if let Err(e) = std::fs::metadata(f) {
            return fail(format_args!("{}: {e}", f.display()));
        }
    }
    let cfg = match a.opts.config() {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    match modtrace::tui::run::replay(a.files.clone(), cfg, a.speed, a.pause_on_findings) {
        Ok(()) => 0,
        Err(e) => fail(e),
    }
}

/// `modtrace demo`: the lessons' recordings in the TUI, with the lessons' analysis flags.
fn demo(a: &modtrace::cli::DemoArgs) -> i32 {
    use modtrace::lesson::HalfKind;
    use modtrace::tui::demo::Playlist;
    let lesson = match a.start() {
        Ok(l) => l,
        Err(e) => return fail(e),
    };
    let dir = a.captures_dir();
    let opts = match modtrace::cli::lesson_analysis_options(&dir) {
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    let kind = if a.safe {
        HalfKind::Safe
    } else {
        HalfKind::Unsafe
    };
    let playlist = Playlist::starting_at(lesson, kind);
    match modtrace::tui::run::demo(playlist, &dir, &|| opts.config(), a.speed) {
        Ok(()) => 0,
        Err(e) => fail(e),
    }
}

/// `modtrace explain [RULE]`: the rule texts, from the one table the reports, SARIF and the
/// README use.
fn explain(rule: Option<&str>) -> i32 {
    use modtrace::detect::rules::{Rule, RULES};
    let mut out = std::io::stdout().lock();
    let res = match rule {
        None => RULES.iter().try_for_each(|t| {
            writeln!(
                out,
                "{:<26} {:<8} {}",
                t.id,
                format!("{:?}", t.severity).to_lowercase(),
                t.title
            )
        }),
        Some(id) => match Rule::from_id(id) {
            Some(r) => {
                let t = r.text();
                writeln!(
                    out,
                    "{} ({}): {}\n\nWhat it means\n  {}\n\nFix\n  {}",
                    t.id,
                    format!("{:?}", t.severity).to_lowercase(),
                    t.title,
                    t.meaning,
                    t.fix
                )
            }
            None => {
                return fail(format_args!(
                    "explain: no rule {id:?}; `modtrace explain` lists them all"
                ))
            }
        },
    };
    match res {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => fail(e),
        _ => 0,
    }
}
