//! The lab proxy's module store: source trees under `lab/modules/<module path>@<version>/`
//! (module path not escaped in the folder name), turned at startup into the four GOPROXY
//! artefacts (list entry, `.info`, `.mod`, `.zip`).
//!
//! Go modules reference, "Module proxies" and "Module zip files": zip entries are
//! `<module>@<version>/<file>`, file names unescaped; the `.mod` file is the tree's go.mod.

use super::LabError;
use std::collections::BTreeMap;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

/// The fixed commit time every `.info` announces: captures stay byte-reproducible on the
/// server side (no clock in the answers).
pub const INFO_TIME: &str = "2024-01-01T00:00:00Z";

/// Limits on the trees the store loads. The lab's modules are tiny; these only stop a
/// mistaken `--modules /` from reading a whole disk into memory.
#[derive(Clone, Debug)]
pub struct StoreLimits {
    /// Files per module tree. Go's own limit is on size, not count; 10 000 is far above any
    /// lab module.
    pub max_files_per_module: usize,
    /// Bytes of source per module tree (uncompressed). Go refuses zips over 500 MiB
    /// (modfetch); lab modules are a few KB, so 16 MiB is generous.
    pub max_bytes_per_module: u64,
    /// Directory depth searched for `<path>@<version>` folders (module paths have few
    /// elements).
    pub max_depth: usize,
}

impl Default for StoreLimits {
    fn default() -> Self {
        StoreLimits {
            max_files_per_module: 10_000,
            max_bytes_per_module: 16 << 20,
            max_depth: 16,
        }
    }
}

/// One module version, ready to serve.
#[derive(Clone, Debug)]
pub struct ModuleVersion {
    pub path: String,
    pub version: String,
    /// The `.info` body: `{"Version":..,"Time":..}`.
    pub info: Vec<u8>,
    /// The `.mod` body: the tree's go.mod verbatim.
    pub go_mod: Vec<u8>,
    /// The `.zip` body, built deterministically (sorted entries, fixed 1980 timestamps).
    pub zip: Vec<u8>,
    /// Entry names in the zip, sorted (`<mod>@<ver>/<file>`).
    pub zip_entries: Vec<String>,
}

/// All modules found under a directory.
#[derive(Clone, Debug, Default)]
pub struct ModuleStore {
    modules: BTreeMap<String, Vec<ModuleVersion>>,
}

impl ModuleStore {
    /// Loads every `<path>@<version>` tree under `dir` with the default limits.
    pub fn load(dir: &Path) -> Result<ModuleStore, LabError> {
        Self::load_with(dir, &StoreLimits::default())
    }

    pub fn load_with(dir: &Path, limits: &StoreLimits) -> Result<ModuleStore, LabError> {
        let mut roots = Vec::new();
        find_version_roots(dir, dir, 0, limits, &mut roots)?;
        let mut store = ModuleStore::default();
        for (rel, root) in roots {
            let (path, version) = match rel.rsplit_once('@') {
                Some((p, v)) if !p.is_empty() && v.starts_with('v') => {
                    (p.to_string(), v.to_string())
                }
                _ => {
                    return Err(LabError::Modules(format!(
                        "{}: folder name must be <module path>@<version>",
                        root.display()
                    )))
                }
            };
            let mv = build_version(&path, &version, &root, limits)?;
            store.insert(mv);
        }
        Ok(store)
    }

    /// Adds (or replaces) one version; keeps each module's versions in semver order.
    pub fn insert(&mut self, mv: ModuleVersion) {
        let list = self.modules.entry(mv.path.clone()).or_default();
        list.retain(|v| v.version != mv.version);
        list.push(mv);
        list.sort_by(|a, b| semver_cmp(&a.version, &b.version));
    }

    pub fn get(&self, path: &str, version: &str) -> Option<&ModuleVersion> {
        self.modules
            .get(path)?
            .iter()
            .find(|v| v.version == version)
    }

    /// Versions of a module in ascending semver order (the `@v/list` body lines).
    pub fn versions(&self, path: &str) -> Option<Vec<&str>> {
        Some(
            self.modules
                .get(path)?
                .iter()
                .map(|v| v.version.as_str())
                .collect(),
        )
    }

    /// The highest release version, else the highest pre-release (`@latest`).
    pub fn latest(&self, path: &str) -> Option<&ModuleVersion> {
        let list = self.modules.get(path)?;
        list.iter()
            .rev()
            .find(|v| !v.version.contains('-'))
            .or_else(|| list.last())
    }

    /// `(module path, version)` of everything loaded, sorted.
    pub fn all(&self) -> Vec<(&str, &str)> {
        self.modules
            .values()
            .flat_map(|l| l.iter().map(|v| (v.path.as_str(), v.version.as_str())))
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.modules.is_empty()
    }
}

/// Walks `dir` for folders whose name contains `@`: each is one module version root, named by
/// its path relative to `base` with `/` separators.
fn find_version_roots(
    base: &Path,
    dir: &Path,
    depth: usize,
    limits: &StoreLimits,
    out: &mut Vec<(String, PathBuf)>,
) -> Result<(), LabError> {
    if depth > limits.max_depth {
        return Ok(());
    }
    for entry in sorted_entries(dir)? {
        if !entry.is_dir() {
            continue;
        }
        let name = entry.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.contains('@') {
            let rel = entry.strip_prefix(base).map_err(|_| {
                LabError::Modules(format!("{}: outside {}", entry.display(), base.display()))
            })?;
            let rel: Vec<&str> = rel.iter().filter_map(|c| c.to_str()).collect();
            out.push((rel.join("/"), entry.clone()));
        } else {
            find_version_roots(base, &entry, depth + 1, limits, out)?;
        }
    }
    Ok(())
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, LabError> {
    let rd =
        std::fs::read_dir(dir).map_err(|e| LabError::Modules(format!("{}: {e}", dir.display())))?;
    let mut v = Vec::new();
    for e in rd {
        let e = e.map_err(|e| LabError::Modules(format!("{}: {e}", dir.display())))?;
        v.push(e.path());
    }
    v.sort();
    Ok(v)
}

/// Collects the regular files of a tree as (relative name with `/`, path), sorted bytewise by
/// name: Go's zip creation sorts too, and a fixed order keeps the zip deterministic.
fn collect_files(
    root: &Path,
    dir: &Path,
    limits: &StoreLimits,
    out: &mut Vec<(String, PathBuf)>,
) -> Result<(), LabError> {
    for entry in sorted_entries(dir)? {
        let meta = std::fs::symlink_metadata(&entry)
            .map_err(|e| LabError::Modules(format!("{}: {e}", entry.display())))?;
        if meta.is_dir() {
            collect_files(root, &entry, limits, out)?;
        } else if meta.is_file() {
            if out.len() >= limits.max_files_per_module {
                return Err(LabError::Modules(format!(
                    "{}: more than {} files",
                    root.display(),
                    limits.max_files_per_module
                )));
            }
            let rel = entry.strip_prefix(root).unwrap_or(&entry);
            let rel: Vec<&str> = rel.iter().filter_map(|c| c.to_str()).collect();
            out.push((rel.join("/"), entry.clone()));
        }
        // Symlinks are skipped: Go's module zips hold regular files only.
    }
    Ok(())
}

/// Reads a tree and builds its artefacts. The go.mod must name the module the folder names,
/// as the go command checks (`go.mod has post-v1 module path` and friends).
fn build_version(
    path: &str,
    version: &str,
    root: &Path,
    limits: &StoreLimits,
) -> Result<ModuleVersion, LabError> {
    let mut files = Vec::new();
    collect_files(root, root, limits, &mut files)?;
    files.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut contents = Vec::with_capacity(files.len());
    let mut total: u64 = 0;
    for (name, p) in files {
        let data =
            std::fs::read(&p).map_err(|e| LabError::Modules(format!("{}: {e}", p.display())))?;
        total = total.saturating_add(data.len() as u64);
        if total > limits.max_bytes_per_module {
            return Err(LabError::Modules(format!(
                "{}: more than {} bytes",
                root.display(),
                limits.max_bytes_per_module
            )));
        }
        contents.push((name, data));
    }
    let go_mod = contents
        .iter()
        .find(|(n, _)| n == "go.mod")
        .map(|(_, d)| d.clone())
        .ok_or_else(|| LabError::Modules(format!("{}: no go.mod", root.display())))?;
    let declared = module_directive(&go_mod);
    if declared.as_deref() != Some(path) {
        return Err(LabError::Modules(format!(
            "{}: go.mod declares module {:?}, folder says {path:?}",
            root.display(),
            declared.unwrap_or_default()
        )));
    }
    build_module_version(path, version, &contents)
}

/// Builds the artefacts of one module version from `(file name, content)` pairs (names relative
/// to the module root, `/`-separated). One of them must be `go.mod`.
pub fn build_module_version(
    path: &str,
    version: &str,
    files: &[(String, Vec<u8>)],
) -> Result<ModuleVersion, LabError> {
    let mut files: Vec<&(String, Vec<u8>)> = files.iter().collect();
    files.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let go_mod = files
        .iter()
        .find(|(n, _)| n == "go.mod")
        .map(|(_, d)| d.clone())
        .ok_or_else(|| LabError::Modules(format!("{path}@{version}: no go.mod")))?;
    let prefix = format!("{path}@{version}/");
    let entries: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|(name, data)| (format!("{prefix}{name}"), data.clone()))
        .collect();
    let zip = write_zip(&entries)?;
    let entries: Vec<String> = entries.into_iter().map(|(n, _)| n).collect();
    // Field order as proxy.golang.org writes it; serde_json quotes the version.
    let quoted = serde_json::to_string(version)
        .map_err(|e| LabError::Modules(format!("info {path}@{version}: {e}")))?;
    let info = format!("{{\"Version\":{quoted},\"Time\":\"{INFO_TIME}\"}}\n").into_bytes();
    Ok(ModuleVersion {
        path: path.to_string(),
        version: version.to_string(),
        info,
        go_mod,
        zip,
        zip_entries: entries,
    })
}

/// Writes a zip of `(entry name, content)` pairs in the given order, the way the lab builds
/// every module zip: deflate, fixed 1980 timestamp, mode 0644. The zip bytes (and so go's h1:
/// hash of the download, which covers names and contents only, and the capture's bytes) do not
/// depend on the checkout.
pub fn write_zip(entries: &[(String, Vec<u8>)]) -> Result<Vec<u8>, LabError> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o644);
    for (entry, data) in entries {
        w.start_file(entry.as_str(), opts)
            .map_err(|e| LabError::Modules(format!("zip {entry}: {e}")))?;
        w.write_all(data)
            .map_err(|e| LabError::Modules(format!("zip {entry}: {e}")))?;
    }
    Ok(w.finish()
        .map_err(|e| LabError::Modules(format!("zip: {e}")))?
        .into_inner())
}

/// The path named by a go.mod's `module` directive (first one, quotes removed).
fn module_directive(go_mod: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(go_mod).ok()?;
    text.lines().find_map(|l| {
        let rest = l.trim().strip_prefix("module")?;
        if !rest.starts_with([' ', '\t']) {
            return None;
        }
        let rest = rest.split("//").next()?.trim().trim_matches('"');
        Some(rest.to_string())
    })
}

// The lab decodes requests with the same escaping code the analyzer uses (Go modules
// reference, "Module path escaping"; RFC 3986 2.1 percent-decoding).
pub use modtrace_core::gomod::path::{
    escape_bang as escape_path, percent_decode, unescape_bang as unescape_path,
};

/// Semantic version order for `vMAJOR.MINOR.PATCH[-pre][+build]` (semver.org 11): numeric
/// core, a pre-release sorts before its release, identifiers compared numerically when both
/// are numbers. Anything unparsable sorts first, by string.
pub fn semver_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    fn parse(v: &str) -> Option<([u64; 3], Option<&str>)> {
        let v = v.strip_prefix('v')?;
        let v = v.split('+').next()?;
        let (core, pre) = match v.split_once('-') {
            Some((c, p)) => (c, Some(p)),
            None => (v, None),
        };
        let mut nums = [0u64; 3];
        let mut parts = core.split('.');
        for n in nums.iter_mut() {
            *n = parts.next()?.parse().ok()?;
        }
        if parts.next().is_some() {
            return None;
        }
        Some((nums, pre))
    }
    match (parse(a), parse(b)) {
        (None, None) => a.cmp(b),
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some((ca, pa)), Some((cb, pb))) => ca.cmp(&cb).then_with(|| match (pa, pb) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(x), Some(y)) => {
                let mut xi = x.split('.');
                let mut yi = y.split('.');
                loop {
                    match (xi.next(), yi.next()) {
                        (None, None) => return Ordering::Equal,
                        (None, Some(_)) => return Ordering::Less,
                        (Some(_), None) => return Ordering::Greater,
                        (Some(p), Some(q)) => {
                            let o = match (p.parse::<u64>(), q.parse::<u64>()) {
                                (Ok(m), Ok(n)) => m.cmp(&n),
                                (Ok(_), Err(_)) => Ordering::Less,
                                (Err(_), Ok(_)) => Ordering::Greater,
                                (Err(_), Err(_)) => p.cmp(q),
                            };
                            if o != Ordering::Equal {
                                return o;
                            }
                        }
                    }
                }
            }
        }),
    }
}

#[cfg(test)]
#[path = "modules_h1_tests.rs"]
mod h1_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering;

    #[test]
    fn escape_round_trip_matches_go_examples() {
        // golang.org/x/mod/module/module_test.go escape cases.
        assert_eq!(
            escape_path("github.com/GoogleCloudPlatform/omega"),
            "github.com/!google!cloud!platform/omega"
        );
        assert_eq!(escape_path("example.test/Util"), "example.test/!util");
        assert_eq!(
            unescape_path("example.test/!util").as_deref(),
            Some("example.test/Util")
        );
        assert_eq!(
            unescape_path("example.test/Util"),
            None,
            "bare upper case is invalid"
        );
        assert_eq!(
            unescape_path("example.test/!Util"),
            None,
            "! before upper case is invalid"
        );
        assert_eq!(
            unescape_path("example.test/util!"),
            None,
            "trailing ! is invalid"
        );
    }

    #[test]
    fn percent_decode_handles_go_wire_form() {
        assert_eq!(
            percent_decode("/example.test/%21util/@v/list").as_deref(),
            Some("/example.test/!util/@v/list")
        );
        assert_eq!(percent_decode("%2"), None);
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%ff"), None, "not UTF-8");
    }

    #[test]
    fn semver_orders_prereleases_first() {
        assert_eq!(semver_cmp("v0.2.0", "v0.10.0"), Ordering::Less);
        assert_eq!(semver_cmp("v1.0.0-rc.1", "v1.0.0"), Ordering::Less);
        assert_eq!(semver_cmp("v1.0.0-rc.2", "v1.0.0-rc.10"), Ordering::Less);
        assert_eq!(semver_cmp("v1.0.0-alpha", "v1.0.0-alpha.1"), Ordering::Less);
        assert_eq!(semver_cmp("v1.0.0+meta", "v1.0.0"), Ordering::Equal);
    }

    #[test]
    fn module_directive_reads_first_module_line() {
        assert_eq!(
            module_directive(b"// c\nmodule example.test/Util // x\n\ngo 1.21\n").as_deref(),
            Some("example.test/Util")
        );
        assert_eq!(
            module_directive(b"module \"example.test/Q\"\n").as_deref(),
            Some("example.test/Q")
        );
        assert_eq!(module_directive(b"modulex a\n"), None);
    }

    #[test]
    fn zip_is_deterministic_and_prefixed() {
        let files = vec![
            ("util.go".to_string(), b"package util\n".to_vec()),
            (
                "go.mod".to_string(),
                b"module example.test/Util\n\ngo 1.21\n".to_vec(),
            ),
        ];
        let a = build_module_version("example.test/Util", "v0.2.0", &files).unwrap();
        let b = build_module_version("example.test/Util", "v0.2.0", &files).unwrap();
        assert_eq!(a.zip, b.zip);
        assert_eq!(
            a.zip_entries,
            vec![
                "example.test/Util@v0.2.0/go.mod",
                "example.test/Util@v0.2.0/util.go"
            ]
        );
        let mut ar = zip::ZipArchive::new(Cursor::new(a.zip)).unwrap();
        assert_eq!(ar.len(), 2);
        let mut s = String::new();
        std::io::Read::read_to_string(
            &mut ar.by_name("example.test/Util@v0.2.0/util.go").unwrap(),
            &mut s,
        )
        .unwrap();
        assert_eq!(s, "package util\n");
        assert_eq!(
            a.info,
            b"{\"Version\":\"v0.2.0\",\"Time\":\"2024-01-01T00:00:00Z\"}\n".to_vec()
        );
    }

    #[test]
    fn latest_prefers_release_over_prerelease() {
        let gm = |p: &str| vec![("go.mod".to_string(), format!("module {p}\n").into_bytes())];
        let mut s = ModuleStore::default();
        for v in ["v1.1.0", "v1.2.0-rc.1", "v1.0.0"] {
            s.insert(build_module_version("example.test/M", v, &gm("example.test/M")).unwrap());
        }
        assert_eq!(
            s.versions("example.test/M").unwrap(),
            vec!["v1.0.0", "v1.1.0", "v1.2.0-rc.1"]
        );
        assert_eq!(s.latest("example.test/M").unwrap().version, "v1.1.0");
        assert!(s.get("example.test/M", "v9.0.0").is_none());
    }
}
