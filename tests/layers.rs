//! The shape of the house (ARCHITECTURE.md): which module may import which. Reads every file
//! of the three crates (src/, crates/core/src/, crates/lab/src/) and follows its `crate::`,
//! `super::`, `modtrace_core::` and `modtrace_lab::` paths (in `use` lines and inline), so a
//! test fails when a module imports against the allowed direction, or when two source files
//! import each other, directly or round a circle. The lab crate's modules are named as the
//! `modtrace` package re-exports them (`lab::server`), the analyser's from its root (`gomod`).
//!
//! A module's relative `use child::…` (a parent re-exporting its children) is not an import:
//! the parent owns its children. Test code (`*_tests.rs`, `tests.rs`, `#[cfg(test)]` items)
//! may import any layer: a test of a low layer may build its input with a higher one (the
//! lab's module builder, a policy's scope).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first. A module may import modules of lower layers only: not its own
/// layer's other modules, never a higher one. Keep in step with ARCHITECTURE.md.
const LAYERS: &[&[&str]] = &[
    &["time", "wire"],
    // Sources of bytes and keys, and data that needs nothing: capture files and live capture,
    // the go process's TLS secrets, process diagnostics, the training lessons.
    &["source", "gokeys", "proc", "lesson"],
    &["decode"],
    &["flow"],
    &["proto"],
    &["gomod"],
    &["redact"],
    &["detect"],
    &["policy"],
    &["pipeline"],
    // Sinks of the event stream.
    &["report"],
    &["tui"],
    &["lab"],
    &["cli"],
    // Completions and the man page, from cli's definition and the lab's.
    &["manual"],
    &["capture"],
];

struct SourceFile {
    path: PathBuf,
    /// Module path as the `modtrace` package names it (`["gomod", "h1"]`, `["lab", "server"]`);
    /// empty for the top lib.rs, main.rs and the analyser's lib.rs.
    module: Vec<String>,
    /// Where this file's `crate::` points (`["lab"]` in the lab crate, else empty).
    crate_root: Vec<String>,
    text: String,
}

/// The checkout (the `modtrace` package's directory): paths are shown from here.
fn checkout() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Each crate's source folder, and the module path its root has in the `modtrace` package.
const CRATES: &[(&str, &[&str])] = &[
    ("src", &[]),
    ("crates/core/src", &[]),
    ("crates/lab/src", &["lab"]),
];

fn read_sources() -> Vec<SourceFile> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    for (dir, mount) in CRATES {
        let root = checkout().join(dir);
        let mut paths = Vec::new();
        walk(&root, &mut paths);
        paths.sort();
        let crate_root: Vec<String> = mount.iter().map(|m| m.to_string()).collect();
        files.extend(paths.into_iter().map(|path| {
            let rel = path.strip_prefix(&root).unwrap().with_extension("");
            let mut module: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if module.last().is_some_and(|m| m == "mod") {
                module.pop();
            }
            if module == ["lib"] || module == ["main"] {
                module.clear();
            }
            let module = [crate_root.clone(), module].concat();
            let text = strip_test_code(&strip_comments(&std::fs::read_to_string(&path).unwrap()));
            SourceFile {
                path,
                module,
                crate_root: crate_root.clone(),
                text,
            }
        }));
    }
    files
        .into_iter()
        .filter(|f| {
            let name = f.path.file_stem().unwrap().to_string_lossy();
            !(name == "tests" || name.ends_with("_tests"))
        })
        .collect()
}

/// The text without `//` comments (doc comments name modules in links without importing them)
/// and without string literals' contents.
fn strip_comments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for line in s.lines() {
        let mut in_str = false;
        let mut prev = ' ';
        let mut kept = String::new();
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            if !in_str && c == '/' && chars.peek() == Some(&'/') {
                break;
            }
            if c == '"' && prev != '\\' && prev != '\'' {
                in_str = !in_str;
            }
            if !in_str {
                kept.push(c);
            }
            prev = c;
        }
        out.push_str(&kept);
        out.push('\n');
    }
    out
}

/// The text without its `#[cfg(test)]` items (a module, function or `use`): from the attribute
/// to the item's `;`, or to the `}` that closes its first `{`. Needs comments and strings
/// stripped first, so that braces balance.
fn strip_test_code(s: &str) -> String {
    const ATTR: &str = "#[cfg(test)]";
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find(ATTR) {
        out.push_str(&rest[..at]);
        let item = &rest[at + ATTR.len()..];
        let end = match (item.find(';'), item.find('{')) {
            (Some(semi), Some(open)) if semi < open => semi + 1,
            (Some(semi), None) => semi + 1,
            (_, Some(open)) => {
                let mut depth = 0usize;
                let mut close = item.len();
                for (i, b) in item.bytes().enumerate().skip(open) {
                    match b {
                        b'{' => depth += 1,
                        b'}' => {
                            depth -= 1;
                            if depth == 0 {
                                close = i + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                close
            }
            (None, None) => item.len(),
        };
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}

/// Every path the file names, as the `modtrace` package names modules: `crate::a::b`,
/// `super::…`, `modtrace_core::…` and `modtrace_lab::…` resolved, and `use crate::a::{b, c::d}`
/// expanded one level.
fn referenced_paths(f: &SourceFile) -> Vec<Vec<String>> {
    let t = &f.text;
    let bytes = t.as_bytes();
    let mut out = Vec::new();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut i = 0;
    while i < t.len() {
        let rest = &t[i..];
        let head = if rest.starts_with("crate::") {
            "crate"
        } else if rest.starts_with("super::") {
            "super"
        } else if rest.starts_with("modtrace_core::") {
            "modtrace_core"
        } else if rest.starts_with("modtrace_lab::") {
            "modtrace_lab"
        } else {
            i += rest.chars().next().map_or(1, char::len_utf8);
            continue;
        };
        if i > 0 && (is_ident(bytes[i - 1]) || bytes[i - 1] == b':') {
            i += head.len();
            continue;
        }
        // The path's segments, with `super` resolved against this file's module.
        let mut base: Vec<String> = match head {
            "crate" => f.crate_root.clone(),
            "modtrace_core" => Vec::new(),
            "modtrace_lab" => vec!["lab".to_string()],
            _ => f.module[..f.module.len().saturating_sub(1)].to_vec(),
        };
        let mut j = i + head.len();
        loop {
            if !t[j..].starts_with("::") {
                break;
            }
            j += 2;
            if t[j..].starts_with('{') {
                // A group: each item's first segments, one level deep.
                let end = t[j..].find('}').map_or(t.len(), |e| j + e);
                for item in t[j + 1..end].split([',', '{']) {
                    let item = item.split(" as ").next().unwrap_or("").trim();
                    if item.is_empty() || item == "self" || item == "*" {
                        continue;
                    }
                    let mut p = base.clone();
                    p.extend(item.split("::").map(|s| s.trim().to_string()));
                    out.push(p);
                }
                j = end;
                break;
            }
            let start = j;
            while j < t.len() && is_ident(bytes[j]) {
                j += 1;
            }
            let seg = &t[start..j];
            if seg.is_empty() {
                break;
            }
            if seg == "super" {
                base.pop();
            } else {
                base.push(seg.to_string());
            }
        }
        out.push(base);
        i = j.max(i + 1);
    }
    out
}

/// The source file that defines `path` (its longest prefix that is a module with a file).
fn file_of<'a>(files: &'a [SourceFile], path: &[String]) -> Option<&'a SourceFile> {
    (1..=path.len())
        .rev()
        .find_map(|n| files.iter().find(|f| f.module == path[..n]))
}

/// File -> the files it imports.
fn file_graph(files: &[SourceFile]) -> BTreeMap<PathBuf, BTreeSet<PathBuf>> {
    let mut g = BTreeMap::new();
    for f in files {
        let deps: BTreeSet<PathBuf> = referenced_paths(f)
            .iter()
            .filter_map(|p| file_of(files, p))
            .map(|d| d.path.clone())
            .filter(|d| *d != f.path)
            .collect();
        g.insert(f.path.clone(), deps);
    }
    g
}

/// The strongly connected components of more than one file (Tarjan).
fn circles(g: &BTreeMap<PathBuf, BTreeSet<PathBuf>>) -> Vec<Vec<PathBuf>> {
    struct State<'a> {
        g: &'a BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        index: BTreeMap<&'a PathBuf, usize>,
        low: BTreeMap<&'a PathBuf, usize>,
        stack: Vec<&'a PathBuf>,
        on_stack: BTreeSet<&'a PathBuf>,
        out: Vec<Vec<PathBuf>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a PathBuf) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in &s.g[v] {
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut c = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                c.push(w.clone());
                if w == v {
                    break;
                }
            }
            if c.len() > 1 {
                c.sort();
                s.out.push(c);
            }
        }
    }
    let mut s = State {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in g.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.out
}

fn layer_of(top: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&top))
}

#[test]
fn no_two_source_files_import_each_other_round_a_circle() {
    let files = read_sources();
    let g = file_graph(&files);
    let found = circles(&g);
    let root = checkout();
    let show: Vec<String> = found
        .iter()
        .map(|c| {
            c.iter()
                .map(|p| {
                    let deps: Vec<String> = g[p]
                        .iter()
                        .filter(|d| c.contains(d))
                        .map(|d| d.strip_prefix(&root).unwrap().display().to_string())
                        .collect();
                    format!(
                        "  {} -> {}",
                        p.strip_prefix(&root).unwrap().display(),
                        deps.join(", ")
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect();
    assert!(found.is_empty(), "import circles:\n{}", show.join("\n\n"));
}

#[test]
fn modules_import_only_lower_layers() {
    let files = read_sources();
    let mut wrong = BTreeSet::new();
    for f in &files {
        let Some(top) = f.module.first() else {
            continue; // lib.rs and main.rs wire everything
        };
        let from = layer_of(top).unwrap_or_else(|| {
            panic!("{top}: a top-level module that LAYERS (and ARCHITECTURE.md) lacks")
        });
        for p in referenced_paths(f) {
            let Some(to_top) = p.first() else { continue };
            if to_top == top || file_of(&files, &p).is_none() {
                continue;
            }
            let to = layer_of(to_top).expect("every module has a layer");
            if to >= from {
                wrong.insert(format!(
                    "{} imports {} ({} is layer {from}, {to_top} layer {to})",
                    f.path.strip_prefix(checkout()).unwrap().display(),
                    p.join("::"),
                    top
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers (tests/layers.rs LAYERS, ARCHITECTURE.md):\n{}",
        wrong.into_iter().collect::<Vec<_>>().join("\n")
    );
}

/// The checks themselves find what they must: a circle and an upward import.
#[test]
fn the_checks_see_a_circle_and_an_upward_import() {
    let file = |module: &[&str], text: &str| SourceFile {
        path: PathBuf::from(module.join("/")),
        module: module.iter().map(|s| s.to_string()).collect(),
        // The lab is a crate of its own: its `crate::` is `lab`.
        crate_root: if module.first() == Some(&"lab") {
            vec!["lab".to_string()]
        } else {
            Vec::new()
        },
        text: strip_test_code(&strip_comments(text)),
    };
    let files = vec![
        file(&["lab", "server"], "use super::connect::serve;\n"),
        file(&["lab", "connect"], "use crate::{server::Ctx, LAB_IP};\n"),
        file(&["lab"], "pub mod server;\n"),
        file(&["lab", "tamper"], "use modtrace_core::gomod::h1;\n"),
        file(&["gomod"], "pub mod h1;\n"),
        file(&["tui"], "let s = modtrace_lab::scenario::find(n);\n"),
        file(
            &["flow"],
            "// crate::report::Report in a comment\nlet r = crate::report::x();\n",
        ),
        file(
            &["report"],
            "pub struct Report;\n#[cfg(test)]\nmod tests {\n    use crate::flow::{a, b};\n}\n",
        ),
    ];
    let g = file_graph(&files);
    let c = circles(&g);
    assert_eq!(
        c,
        vec![vec![
            PathBuf::from("lab/connect"),
            PathBuf::from("lab/server")
        ]]
    );
    let flow_deps = &g[&PathBuf::from("flow")];
    assert!(flow_deps.contains(&PathBuf::from("report")));
    assert_eq!(
        flow_deps.len(),
        1,
        "the comment is no import: {flow_deps:?}"
    );
    assert!(
        g[&PathBuf::from("report")].is_empty(),
        "test code imports freely"
    );
    assert!(layer_of("flow") < layer_of("report"));
    // Paths into the other crates resolve to the modules the `modtrace` package names.
    assert!(g[&PathBuf::from("lab/tamper")].contains(&PathBuf::from("gomod")));
    assert!(g[&PathBuf::from("tui")].contains(&PathBuf::from("lab")));
}

/// The analyser's dependency tree holds none of the lab's async stack nor the UI's crates
/// (ARCHITECTURE.md, "Three crates"): `cargo tree -p modtrace-core -e no-dev`.
#[test]
fn the_analyser_depends_on_no_lab_or_ui_crate() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["tree", "--offline", "-p", "modtrace-core", "-e", "no-dev"])
        .args(["--prefix", "none", "-f", "{p}"])
        .current_dir(checkout())
        .output()
        .expect("running cargo tree");
    assert!(
        out.status.success(),
        "cargo tree: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    let names: BTreeSet<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(names.contains("rustls"), "not the analyser's tree:\n{tree}");
    let forbidden = [
        "tokio",
        "tokio-rustls",
        "h2",
        "rcgen",
        "ratatui",
        "crossterm",
        "clap",
    ];
    let found: Vec<&&str> = forbidden.iter().filter(|f| names.contains(**f)).collect();
    assert!(found.is_empty(), "the analyser depends on {found:?}");
}
