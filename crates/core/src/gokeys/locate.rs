//! Which Go binaries to probe: the go command the invoking user would run, the toolchains
//! GOTOOLCHAIN switching execs from their module cache, and those named on the command line.
//!
//! `sudo` resets PATH (secure_path) and HOME, so root's view is not the user's: the user's
//! own install places and `go env` run as the user count too.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Why a binary is probed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// A go command on PATH or in a usual install place.
    GoCommand,
    /// A toolchain in the module cache (`golang.org/toolchain@*/bin/go`).
    Toolchain,
    /// `--go-binary PATH`.
    GoBinaryFlag,
    /// The program `modtrace run` starts.
    Command,
    /// The executable of a process that opened a connection during the capture.
    Process,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::GoCommand => "go command",
            Origin::Toolchain => "toolchain",
            Origin::GoBinaryFlag => "--go-binary",
            Origin::Command => "command",
            Origin::Process => "process",
        }
    }
}

/// What locating needs to know about the user.
#[derive(Clone, Debug, Default)]
pub struct UserEnv {
    /// PATH as the user has it (or as this process has it).
    pub path: Option<String>,
    /// The user's home directory.
    pub home: Option<PathBuf>,
    /// `go env GOROOT` and `go env GOMODCACHE` as the user would get them, when known.
    pub goroot: Option<PathBuf>,
    pub gomodcache: Option<PathBuf>,
}

/// The usual install places of the go command, beyond PATH (go.dev/doc/install, Debian's
/// golang-go, snap, `golang.org/dl` wrappers in ~/sdk).
fn install_places(home: Option<&Path>) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = [
        "/usr/local/go/bin/go",
        "/usr/lib/go/bin/go",
        "/usr/bin/go",
        "/snap/go/current/bin/go",
        "/opt/go/bin/go",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    // Debian and Ubuntu keep each version apart: /usr/lib/go-1.22/bin/go.
    v.extend(glob_dirs(Path::new("/usr/lib"), "go-", "bin/go"));
    if let Some(h) = home {
        v.push(h.join("go/bin/go"));
        v.push(h.join(".local/go/bin/go"));
        v.extend(glob_dirs(&h.join("sdk"), "go", "bin/go"));
    }
    v
}

/// `dir/<prefix>*/<rest>` for every entry of `dir` whose name starts with `prefix`, sorted.
fn glob_dirs(dir: &Path, prefix: &str, rest: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .map(|e| e.path().join(rest))
        .collect();
    v.sort();
    v
}

/// Every go command and cached toolchain the user could run, existing files only, each once
/// (by canonical path), PATH's first.
pub fn go_binaries(env: &UserEnv) -> Vec<(PathBuf, Origin)> {
    let mut candidates: Vec<(PathBuf, Origin)> = Vec::new();
    if let Some(path) = &env.path {
        for dir in std::env::split_paths(path) {
            candidates.push((dir.join("go"), Origin::GoCommand));
        }
    }
    if let Some(root) = &env.goroot {
        candidates.push((root.join("bin/go"), Origin::GoCommand));
    }
    for p in install_places(env.home.as_deref()) {
        candidates.push((p, Origin::GoCommand));
    }
    let modcache = env
        .gomodcache
        .clone()
        .or_else(|| env.home.as_ref().map(|h| h.join("go/pkg/mod")));
    if let Some(mc) = modcache {
        for t in glob_dirs(&mc.join("golang.org"), "toolchain@", "bin/go") {
            candidates.push((t, Origin::Toolchain));
        }
    }
    dedupe_existing(candidates)
}

/// Keeps regular files, each canonical path once, in order.
pub fn dedupe_existing(candidates: Vec<(PathBuf, Origin)>) -> Vec<(PathBuf, Origin)> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (p, origin) in candidates {
        let Ok(real) = std::fs::canonicalize(&p) else {
            continue;
        };
        if real.is_file() && seen.insert(real.clone()) {
            out.push((real, origin));
        }
    }
    out
}

/// Finds `program` as execvp would, in `path` (a name with a slash is taken as it is).
pub fn which(program: &str, path: Option<&str>) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program));
    }
    let path = path?;
    std::env::split_paths(path)
        .map(|d| d.join(program))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The values of `go env -json GOROOT GOMODCACHE` output.
pub fn parse_go_env(json: &str) -> (Option<PathBuf>, Option<PathBuf>) {
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    let get = |k: &str| {
        v.get(k)
            .and_then(|s| s.as_str())
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
    };
    (get("GOROOT"), get("GOMODCACHE"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_go_binaries_in_path_goroot_home_and_module_cache() {
        let d = tempfile::tempdir().unwrap();
        let mk = |p: &Path| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"\x7fELF").unwrap();
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        let home = d.path().join("home");
        let in_path = d.path().join("bin/go");
        let sdk = home.join("sdk/go1.25.1/bin/go");
        let tc = home.join("go/pkg/mod/golang.org/toolchain@v0.0.1-go1.27.0.linux-amd64/bin/go");
        let root = d.path().join("goroot/bin/go");
        for p in [&in_path, &sdk, &tc, &root] {
            mk(p);
        }
        // A symlink to a binary already listed is not listed twice.
        std::os::unix::fs::symlink(&in_path, d.path().join("bin/go2")).unwrap();
        std::fs::create_dir_all(d.path().join("bin2")).unwrap();
        std::os::unix::fs::symlink(&in_path, d.path().join("bin2/go")).unwrap();
        let env = UserEnv {
            path: Some(format!(
                "{}:{}",
                d.path().join("bin").display(),
                d.path().join("bin2").display()
            )),
            home: Some(home.clone()),
            goroot: Some(d.path().join("goroot")),
            gomodcache: None,
        };
        let found = go_binaries(&env);
        let ours: Vec<_> = found
            .iter()
            .filter(|(p, _)| p.starts_with(d.path().canonicalize().unwrap()))
            .collect();
        let canon = |p: &Path| p.canonicalize().unwrap();
        assert_eq!(
            ours.iter()
                .map(|(p, o)| (p.clone(), *o))
                .collect::<Vec<_>>(),
            vec![
                (canon(&in_path), Origin::GoCommand),
                (canon(&root), Origin::GoCommand),
                (canon(&sdk), Origin::GoCommand),
                (canon(&tc), Origin::Toolchain),
            ]
        );
        assert_eq!(
            which("go", env.path.as_deref()),
            Some(d.path().join("bin/go"))
        );
        assert_eq!(which("./x", None), Some(PathBuf::from("./x")));
        assert_eq!(which("nonexistent-modtrace-cmd", env.path.as_deref()), None);
    }

    #[test]
    fn go_env_json() {
        let (r, m) = parse_go_env(r#"{"GOROOT":"/usr/local/go","GOMODCACHE":""}"#);
        assert_eq!(r, Some(PathBuf::from("/usr/local/go")));
        assert_eq!(m, None);
        assert_eq!(parse_go_env("not json"), (None, None));
    }
}
