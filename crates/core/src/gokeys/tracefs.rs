//! tracefs: uprobe events in an instance of their own (Documentation/trace/ftrace.rst,
//! "Instances"; Documentation/trace/uprobetracer.rst).
//!
//! Probes are global to the host (every process running the probed inode hits them), so each
//! run names its group `modtrace_<pid>_<nonce>` and reads its events from a tracefs instance
//! of the same name: the global trace buffer, and anyone else's tracing, stay untouched.
//! A run that was killed leaves its group and instance behind; the next run removes those
//! whose process is gone ([`remove_stale`]).
//!
//! The text parsers (mountinfo, README, uprobe_events) are pure and tested on bytes; the rest
//! writes to tracefs and needs root (CAP_SYS_ADMIN).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Prefix of every group and instance this program creates.
pub const PREFIX: &str = "modtrace_";
/// Per-CPU ring of the instance. A key event is about 160 bytes in the ring: 512 KiB holds
/// thousands, far more than arrive between two reads.
const BUFFER_KB: u32 = 512;
/// Where tracefs is mounted when nothing has mounted it (the kernel's own mount point).
const DEFAULT_MOUNT: &str = "/sys/kernel/tracing";

/// The mount point of a tracefs in /proc/self/mountinfo (proc(5): field 5 is the mount
/// point, the filesystem type follows the ` - ` separator). The kernel's own place wins when
/// tracefs is mounted at several.
pub fn tracefs_in_mountinfo(text: &str) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = Vec::new();
    for line in text.lines() {
        let Some((fields, after)) = line.split_once(" - ") else {
            continue;
        };
        if after.split_whitespace().next() != Some("tracefs") {
            continue;
        }
        if let Some(mount) = fields.split_whitespace().nth(4) {
            found.push(PathBuf::from(unescape_mount(mount)));
        }
    }
    found
        .iter()
        .find(|p| p.as_os_str() == DEFAULT_MOUNT)
        .or_else(|| found.first())
        .cloned()
}

/// mountinfo escapes space, tab, newline and backslash as octal (`\040`).
fn unescape_mount(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            if let Some(v) = s
                .get(i + 1..i + 4)
                .and_then(|o| u8::from_str_radix(o, 8).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether the kernel's tracefs README says uprobe fetch arguments can be arrays
/// (`<type>\[<array-size>\]`, Linux 4.17).
pub fn readme_has_arrays(readme: &str) -> bool {
    readme.contains("<array-size>")
}

/// Whether the README lists uprobe events at all (CONFIG_UPROBE_EVENTS).
pub fn readme_has_uprobes(readme: &str) -> bool {
    readme.contains("uprobe_events")
}

/// The (group, event) pairs in `uprobe_events` text (`p:group/event /path:0x... args`).
pub fn probes_in(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let def = l.split_whitespace().next()?;
            let (_, name) = def.split_once(':')?;
            let (g, e) = name.split_once('/')?;
            Some((g.to_string(), e.to_string()))
        })
        .collect()
}

/// The process id in one of our names: `modtrace_<pid>_<nonce>`.
pub fn owner_pid(name: &str) -> Option<u32> {
    name.strip_prefix(PREFIX)?.split('_').next()?.parse().ok()
}

/// A fresh group name for this process.
pub fn group_name(pid: u32, nonce: u32) -> String {
    format!("{PREFIX}{pid}_{nonce:08x}")
}

/// Why the go process key source cannot work here: one line for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable(pub String);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tracefs mount.
#[derive(Debug)]
pub struct Tracefs {
    pub root: PathBuf,
    /// Mounted by this process: unmounted again at the end.
    pub mounted_here: bool,
}

impl Tracefs {
    /// `explicit` (a test or an unusual system), else the mounted tracefs, else a new mount
    /// at /sys/kernel/tracing. Checks that uprobe events with array arguments can be defined.
    pub fn locate(explicit: Option<&Path>) -> Result<Tracefs, Unavailable> {
        let fs = match explicit {
            Some(p) => Tracefs {
                root: p.to_path_buf(),
                mounted_here: false,
            },
            None => match std::fs::read_to_string("/proc/self/mountinfo")
                .ok()
                .and_then(|t| tracefs_in_mountinfo(&t))
            {
                Some(root) => Tracefs {
                    root,
                    mounted_here: false,
                },
                None => mount_tracefs()?,
            },
        };
        fs.check()?;
        Ok(fs)
    }

    fn check(&self) -> Result<(), Unavailable> {
        let root = self.root.display();
        let readme = match std::fs::read_to_string(self.root.join("README")) {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Unavailable(format!("no tracefs at {root}")))
            }
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                return Err(Unavailable(format!(
                    "tracefs at {root}: permission denied{}",
                    rights_hint()
                )))
            }
            Err(e) => return Err(Unavailable(format!("tracefs at {root}: {e}"))),
        };
        if !readme_has_uprobes(&readme) || !self.root.join("uprobe_events").exists() {
            return Err(Unavailable(
                "this kernel has no uprobe events (CONFIG_UPROBE_EVENTS)".into(),
            ));
        }
        if !readme_has_arrays(&readme) {
            return Err(Unavailable(
                "this kernel cannot fetch byte arrays in uprobe events (needs Linux 4.17 or later)"
                    .into(),
            ));
        }
        // Writing nothing still checks the rights (and kernel lockdown) at open.
        if let Err(e) = OpenOptions::new()
            .append(true)
            .open(self.root.join("uprobe_events"))
        {
            return Err(Unavailable(format!(
                "{root}/uprobe_events: {e}{}",
                rights_hint()
            )));
        }
        Ok(())
    }

    pub fn uprobe_events(&self) -> PathBuf {
        self.root.join("uprobe_events")
    }

    pub fn instances(&self) -> PathBuf {
        self.root.join("instances")
    }

    /// Unmounts tracefs if this process mounted it.
    pub fn release(&self) {
        if self.mounted_here {
            if let Ok(c) = std::ffi::CString::new(self.root.as_os_str().as_encoded_bytes()) {
                // SAFETY: a valid NUL-terminated path; umount2 only reads it.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
    }
}

/// Why root is needed, when we are not root; kernel lockdown when we are.
fn rights_hint() -> String {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return " (reading TLS secrets from the go process needs root: run with sudo)".into();
    }
    match std::fs::read_to_string("/sys/kernel/security/lockdown") {
        Ok(l) if l.contains("[confidentiality]") || l.contains("[integrity]") => {
            format!(" (kernel lockdown is on: {})", l.trim())
        }
        _ => String::new(),
    }
}

fn mount_tracefs() -> Result<Tracefs, Unavailable> {
    let target = Path::new(DEFAULT_MOUNT);
    if !target.is_dir() {
        return Err(Unavailable(format!(
            "tracefs is not mounted and {DEFAULT_MOUNT} does not exist (no tracefs in this kernel?)"
        )));
    }
    let c = |s: &str| std::ffi::CString::new(s).unwrap_or_default();
    let (src, dir, fstype) = (c("tracefs"), c(DEFAULT_MOUNT), c("tracefs"));
    // SAFETY: valid NUL-terminated strings; no data argument.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            dir.as_ptr(),
            fstype.as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        let e = io::Error::last_os_error();
        return Err(Unavailable(format!(
            "tracefs is not mounted and mounting it at {DEFAULT_MOUNT} failed: {e}{}",
            match rights_hint() {
                h if !h.is_empty() => h,
                _ if e.raw_os_error() == Some(libc::EPERM) => {
                    " (needs CAP_SYS_ADMIN in the host's user namespace: root, not a rootless container)"
                        .to_string()
                }
                h => h,
            }
        )));
    }
    Ok(Tracefs {
        root: target.to_path_buf(),
        mounted_here: true,
    })
}

/// Writes one command to `uprobe_events` (append: opening it with O_TRUNC would delete every
/// probe on the host). The kernel's reason for a refused line is in `error_log`.
pub fn write_uprobe_events(fs: &Tracefs, line: &str) -> Result<(), String> {
    let res = OpenOptions::new()
        .append(true)
        .open(fs.uprobe_events())
        .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()));
    res.map_err(|e| {
        let detail = std::fs::read_to_string(fs.root.join("error_log"))
            .ok()
            .and_then(|l| {
                l.lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .map(str::to_string)
            })
            .map(|l| format!(" ({})", l.trim()))
            .unwrap_or_default();
        format!("{e}{detail}")
    })
}

fn write_file(p: &Path, what: &str) -> io::Result<()> {
    OpenOptions::new()
        .write(true)
        .open(p)
        .and_then(|mut f| f.write_all(what.as_bytes()))
}

/// This run's probes and the instance their events go to.
pub struct Session {
    pub fs: Tracefs,
    pub group: String,
    instance: PathBuf,
    events: Vec<String>,
}

impl Session {
    /// Creates the instance `group` (its own ring buffer, record-tgid on).
    pub fn create(fs: Tracefs, group: String) -> Result<Session, Unavailable> {
        let instance = fs.instances().join(&group);
        if let Err(e) = std::fs::create_dir(&instance) {
            return Err(Unavailable(format!(
                "creating the tracefs instance {}: {e}",
                instance.display()
            )));
        }
        // Best effort: older kernels keep record-tgid global-only; the pid is then read
        // from /proc/<tid>/status.
        let _ = write_file(&instance.join("options/record-tgid"), "1");
        let _ = write_file(&instance.join("buffer_size_kb"), &BUFFER_KB.to_string());
        // Wake a reader at the first event, not when the ring is half full (the default).
        let _ = write_file(&instance.join("buffer_percent"), "0");
        Ok(Session {
            fs,
            group,
            instance,
            events: Vec::new(),
        })
    }

    /// Defines `event` with `line` and enables it in this run's instance only.
    pub fn add_probe(&mut self, event: &str, line: &str) -> Result<(), String> {
        write_uprobe_events(&self.fs, line)?;
        self.events.push(event.to_string());
        let enable = self.enable_file(event);
        write_file(&enable, "1").map_err(|e| format!("enabling {}: {e}", enable.display()))
    }

    /// The instance's switch for one of this run's events.
    fn enable_file(&self, event: &str) -> PathBuf {
        self.instance
            .join("events")
            .join(&self.group)
            .join(event)
            .join("enable")
    }

    /// Only these processes, and what they fork (threads and children, `options/event-fork`),
    /// produce events.
    pub fn follow_pids(&self, pids: &[u32]) -> io::Result<()> {
        write_file(&self.instance.join("options/event-fork"), "1")?;
        let list: Vec<String> = pids.iter().map(u32::to_string).collect();
        write_file(&self.instance.join("set_event_pid"), &list.join(" "))
    }

    /// The instance's trace_pipe, non-blocking (it is polled together with the commands).
    pub fn open_pipe(&self) -> io::Result<File> {
        use std::os::unix::fs::OpenOptionsExt;
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(self.instance.join("trace_pipe"))
    }

    pub fn events(&self) -> &[String] {
        &self.events
    }

    /// Removes everything this run created; the problems met, if any. The trace_pipe must be
    /// closed first (an open reader keeps the instance busy).
    pub fn close(self) -> Vec<String> {
        let mut problems = Vec::new();
        for e in &self.events {
            let _ = write_file(&self.enable_file(e), "0");
        }
        if let Err(e) = remove_instance(&self.instance) {
            problems.push(format!("removing {}: {e}", self.instance.display()));
        }
        for e in &self.events {
            if let Err(why) =
                write_uprobe_events(&self.fs, &super::probe::remove_line(&self.group, e))
            {
                problems.push(format!("removing probe {}/{e}: {why}", self.group));
            }
        }
        self.fs.release();
        problems
    }
}

/// rmdir of an instance can fail with EBUSY for a moment after its last reader closed.
fn remove_instance(dir: &Path) -> io::Result<()> {
    let mut last = Ok(());
    for _ in 0..50 {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => last = Err(e),
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    last
}

/// Whether the modtrace process `pid` still runs (a reused pid of another program does not
/// count, nor a zombie nobody has reaped yet).
fn modtrace_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // `pid (comm) state ...`: the name ends at the last `)` (proc(5)).
    let Some((head, rest)) = stat.rsplit_once(')') else {
        return false;
    };
    let name = head.split_once('(').map_or("", |(_, n)| n);
    let state = rest.split_whitespace().next().unwrap_or("");
    name == "modtrace" && !matches!(state, "Z" | "X" | "x")
}

/// Removes the instances and probes of earlier runs whose process is gone (killed with
/// SIGKILL, or a crash); returns their names.
pub fn remove_stale(fs: &Tracefs) -> Vec<String> {
    remove_stale_with(fs, modtrace_alive)
}

pub fn remove_stale_with(fs: &Tracefs, alive: impl Fn(u32) -> bool) -> Vec<String> {
    let mut removed = Vec::new();
    let stale = |name: &str| owner_pid(name).is_some_and(|pid| !alive(pid));
    if let Ok(dir) = std::fs::read_dir(fs.instances()) {
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(PREFIX) && stale(&name) && remove_instance(&entry.path()).is_ok() {
                removed.push(format!("instance {name}"));
            }
        }
    }
    let mut text = String::new();
    if File::open(fs.uprobe_events())
        .and_then(|mut f| f.read_to_string(&mut text))
        .is_ok()
    {
        for (group, event) in probes_in(&text) {
            if !(group.starts_with(PREFIX) && stale(&group)) {
                continue;
            }
            // Enabled nowhere now that its instance is gone; disabled at the top level too,
            // in case.
            let _ = write_file(
                &fs.root
                    .join("events")
                    .join(&group)
                    .join(&event)
                    .join("enable"),
                "0",
            );
            if write_uprobe_events(fs, &super::probe::remove_line(&group, &event)).is_ok() {
                removed.push(format!("probe {group}/{event}"));
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_tracefs_in_mountinfo() {
        let text = "\
22 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
35 22 0:12 / /sys/kernel/debug/tracing rw,relatime shared:15 - tracefs tracefs rw
36 22 0:12 / /sys/kernel/tracing rw,nosuid,nodev,noexec,relatime shared:16 - tracefs tracefs rw
";
        assert_eq!(
            tracefs_in_mountinfo(text),
            Some(PathBuf::from("/sys/kernel/tracing"))
        );
        let other = "40 1 0:12 / /tmp/my\\040trace rw - tracefs nodev rw\n";
        assert_eq!(
            tracefs_in_mountinfo(other),
            Some(PathBuf::from("/tmp/my trace"))
        );
        assert_eq!(
            tracefs_in_mountinfo("22 1 0:21 / /sys rw - sysfs sysfs rw\n"),
            None
        );
        assert_eq!(tracefs_in_mountinfo("garbage\n\\\n - \n"), None);
    }

    #[test]
    fn readme_features() {
        // From a 6.x README (kernel/trace/trace.c readme_msg).
        let new = "  uprobe_events\t\t- Create/append/remove/show the userspace dynamic events\n\
\t     type: s8/16/32/64, u8/16/32/64, x8/16/32/64, char, string, symbol,\n\
\t           symstr, %pd/%pD, <type>\\[<array-size>\\]\n";
        assert!(readme_has_uprobes(new) && readme_has_arrays(new));
        // 4.14: no arrays.
        let old = "  uprobe_events\t\t- Add/remove/show the userspace dynamic events\n\
\t     type: s8/16/32/64, u8/16/32/64, x8/16/32/64, string\n";
        assert!(readme_has_uprobes(old) && !readme_has_arrays(old));
    }

    #[test]
    fn names_and_stale_probes() {
        let g = group_name(4242, 0xdead);
        assert_eq!(g, "modtrace_4242_0000dead");
        assert_eq!(owner_pid(&g), Some(4242));
        assert_eq!(owner_pid("modtrace_x_1"), None);
        assert_eq!(owner_pid("other_1_2"), None);
        let text = "p:modtrace_4242_0000dead/wkl_1 /usr/local/go/bin/go:0x000000000030c3e0 lab=+0(%bx):x8[31]\n\
p:uprobes/other /bin/bash:0x1\n";
        assert_eq!(
            probes_in(text),
            [
                ("modtrace_4242_0000dead".to_string(), "wkl_1".to_string()),
                ("uprobes".to_string(), "other".to_string())
            ]
        );
    }

    /// A fake tracefs folder: the instance of a dead run is removed, a live one's is kept.
    #[test]
    fn stale_instances_of_dead_runs_are_removed() {
        let d = tempfile::tempdir().unwrap();
        let fs = Tracefs {
            root: d.path().to_path_buf(),
            mounted_here: false,
        };
        std::fs::create_dir_all(fs.instances().join("modtrace_1_00000001")).unwrap();
        std::fs::create_dir_all(fs.instances().join("modtrace_2_00000002")).unwrap();
        std::fs::create_dir_all(fs.instances().join("someone_else")).unwrap();
        std::fs::write(fs.uprobe_events(), "").unwrap();
        let removed = remove_stale_with(&fs, |pid| pid == 2);
        assert_eq!(removed, ["instance modtrace_1_00000001"]);
        assert!(fs.instances().join("modtrace_2_00000002").exists());
        assert!(fs.instances().join("someone_else").exists());
    }
}
