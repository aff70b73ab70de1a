//! The shell completions and the man page, generated from the one clap definition (`cli`) and
//! the lab's own (`lab::command`), so that neither can drift from the command line.

use crate::cli::Cli;
use clap::CommandFactory;
use std::io::{self, Write};

/// The whole command line: `modtrace`'s, with `lab`'s own subcommands grafted in (the binary
/// passes `lab`'s arguments through unparsed, so its definition lives in the lab).
pub fn command() -> clap::Command {
    Cli::command().mut_subcommand("lab", |_| crate::lab::command())
}

/// `modtrace completions SHELL`. Generated in memory first: clap_complete panics when its
/// writer fails (`| head`).
pub fn completions(shell: clap_complete::Shell, out: &mut dyn Write) -> io::Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command(), "modtrace", &mut script);
    out.write_all(&script)
}

/// `modtrace man`: one page, the tool's own sections, then a section per subcommand (nested
/// ones too) with its synopsis, description and options.
pub fn man(out: &mut dyn Write) -> io::Result<()> {
    let mut cmd = command();
    cmd.build();
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut page)?;
    // The subcommands are sections of this page, not pages of their own.
    let mut page = String::from_utf8_lossy(&page).into_owned();
    page = page.replace("modtrace\\-help(1)", "modtrace help");
    for sub in visible_subcommands(&cmd) {
        let name = sub.get_name();
        page = page.replace(
            &format!("modtrace\\-{}(1)", name.replace('-', "\\-")),
            &format!("modtrace {name} (below)"),
        );
    }
    out.write_all(page.as_bytes())?;
    for sub in visible_subcommands(&cmd) {
        subcommand_section(&sub, &format!("modtrace {}", sub.get_name()), out)?;
    }
    Ok(())
}

fn visible_subcommands(cmd: &clap::Command) -> Vec<clap::Command> {
    cmd.get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        .cloned()
        .collect()
}

fn subcommand_section(cmd: &clap::Command, path: &str, out: &mut dyn Write) -> io::Result<()> {
    let man = clap_mangen::Man::new(cmd.clone().name(path.to_string()).bin_name(path));
    let mut parts = Vec::new();
    man.render_synopsis_section(&mut parts)?;
    man.render_description_section(&mut parts)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut parts)?;
    }
    // The subcommand is one section of the page: its own sections become subsections.
    writeln!(out, ".SH \"{}\"", path.to_uppercase())?;
    let text = String::from_utf8_lossy(&parts);
    for line in text.lines() {
        match line.strip_prefix(".SH ") {
            Some(heading) => writeln!(out, ".SS {heading}")?,
            None => writeln!(out, "{line}")?,
        }
    }
    for sub in visible_subcommands(cmd) {
        subcommand_section(&sub, &format!("{path} {}", sub.get_name()), out)?;
    }
    Ok(())
}
