//! SARIF 2.1.0 output (`analyze --format sarif`) for code scanning: one run, every rule of
//! [`RULES`] in the driver, one result per finding. SARIF knows files and lines, not packets:
//! a result points at the capture file with the evidence packet in the location's
//! properties, and with `--go-mod DIR` also at the require line of DIR/go.mod (or the hash
//! line of DIR/go.sum) of the module it names. docs/ci.md describes the mapping.

use super::Report;
use crate::detect::{Finding, Severity, RULES};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

/// Where the findings point: the capture files, and the Go module being built.
pub struct SarifContext {
    pub files: Vec<PathBuf>,
    pub go_mod: Option<PathBuf>,
}

pub const SCHEMA_URI: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

/// go.mod and go.sum are read up to this size: enough for any real module, bounded for a
/// hostile one.
const GO_FILE_LIMIT: u64 = 16 << 20;

/// SARIF level of a severity: critical/high are errors, medium warnings, low/info notes.
pub fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// GitHub's `security-severity` (0.0-10.0, as a string): critical >= 9.0, high 7.0-8.9,
/// medium 4.0-6.9, low 0.1-3.9 in GitHub's bands.
pub fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "1.0",
    }
}

/// `plaintext-module-fetch` -> `PlaintextModuleFetch`.
pub fn camel_case(id: &str) -> String {
    id.split('-')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// A stable identity per finding, the same across runs over captures of the same traffic:
/// a hash of rule, module, version and the message with every digit removed (ports, packet
/// numbers and counts change from one recording to the next), then `:N`, the occurrence of
/// that hash among the findings (1-based, in report order), so that findings differing only
/// in numbers (the same module from two servers) stay apart, as CodeQL does with its
/// `primaryLocationLineHash`.
pub fn fingerprints(findings: &[Finding]) -> Vec<String> {
    let mut seen: HashMap<String, u32> = HashMap::new();
    findings
        .iter()
        .map(|f| {
            let mut h = Sha256::new();
            h.update(f.rule.id().as_bytes());
            h.update([0]);
            h.update(f.module.as_deref().unwrap_or("").as_bytes());
            h.update([0]);
            h.update(f.version.as_deref().unwrap_or("").as_bytes());
            h.update([0]);
            let text: String = f.message.chars().filter(|c| !c.is_ascii_digit()).collect();
            h.update(text.as_bytes());
            let hex = hex::encode(&h.finalize()[..16]);
            let n = seen.entry(hex.clone()).or_insert(0);
            *n += 1;
            format!("{hex}:{n}")
        })
        .collect()
}

/// A path as a SARIF URI: relative paths stay relative (`./` dropped, so `--go-mod .` gives
/// `go.mod` as code scanning expects), absolute ones become `file://` URIs; every byte
/// outside RFC 3986's unreserved set and `/` is percent-encoded.
pub fn path_uri(p: &Path) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut absolute = false;
    for c in p.components() {
        match c {
            Component::RootDir => absolute = true,
            Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => parts.push("..".into()),
            Component::Normal(s) => parts.push(percent_encode(&s.to_string_lossy())),
        }
    }
    let joined = parts.join("/");
    if absolute {
        format!("file:///{joined}")
    } else {
        joined
    }
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Markdown for GitHub: characters that would start emphasis, a link or an HTML tag are
/// escaped outside `code` spans (a fix like `/sumdb/<name>/` would otherwise lose `<name>`).
fn markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut in_code = false;
    for c in text.chars() {
        if c == '`' {
            in_code = !in_code;
            out.push(c);
        } else if !in_code && matches!(c, '\\' | '*' | '_' | '<' | '>' | '[' | ']') {
            out.push('\\');
            out.push(c);
        } else {
            out.push(c);
        }
    }
    out
}

fn rules_json() -> Vec<Value> {
    RULES
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "name": camel_case(r.id),
                "shortDescription": { "text": r.title },
                "fullDescription": { "text": r.meaning },
                "help": {
                    "text": format!("{}\n\nFix: {}", r.meaning, r.fix),
                    "markdown": format!("{}\n\n**Fix:** {}", markdown(r.meaning), markdown(r.fix)),
                },
                "defaultConfiguration": { "level": level(r.severity) },
                "properties": {
                    "security-severity": security_severity(r.severity),
                    "severity": r.severity.as_str(),
                    "tags": ["security", "supply-chain"],
                },
            })
        })
        .collect()
}

/// One line of a go.mod or go.sum that names a module.
#[derive(Debug, PartialEq, Eq)]
struct GoLine {
    /// 1-based.
    line: usize,
    version_matches: bool,
}

fn unquote(tok: &str) -> &str {
    let t = tok.trim();
    for q in ['"', '`'] {
        if let Some(inner) = t.strip_prefix(q).and_then(|s| s.strip_suffix(q)) {
            return inner;
        }
    }
    t
}

/// The require line of `module` in a go.mod text: the one with `version` if there is one,
/// else the first naming the path.
fn find_require(go_mod: &str, module: &str, version: Option<&str>) -> Option<GoLine> {
    let mut in_block = false;
    let mut best: Option<GoLine> = None;
    for (i, raw) in go_mod.lines().enumerate() {
        let line = raw.split("//").next().unwrap_or("").trim();
        let rest = if in_block {
            if line.starts_with(')') {
                in_block = false;
                continue;
            }
            line
        } else if let Some(r) = line.strip_prefix("require") {
            let r = r.trim_start();
            if r.starts_with('(') {
                in_block = true;
                continue;
            }
            if r.len() == line.len() - "require".len() {
                // `requirefoo`: not the keyword.
                continue;
            }
            r
        } else {
            continue;
        };
        let mut toks = rest.split_whitespace();
        let (Some(path), ver) = (toks.next(), toks.next()) else {
            continue;
        };
        if unquote(path) != module {
            continue;
        }
        let version_matches = version.is_some() && ver.map(unquote) == version;
        let hit = GoLine {
            line: i + 1,
            version_matches,
        };
        if version_matches {
            return Some(hit);
        }
        best.get_or_insert(hit);
    }
    best
}

/// The go.sum line `module version h1:...` (the zip's, not `/go.mod`'s) of module@version;
/// without a version the first zip line of the module.
fn find_sum(go_sum: &str, module: &str, version: Option<&str>) -> Option<GoLine> {
    go_sum.lines().enumerate().find_map(|(i, l)| {
        let mut toks = l.split_whitespace();
        let (Some(m), Some(v), Some(h)) = (toks.next(), toks.next(), toks.next()) else {
            return None;
        };
        let ok = m == module
            && !v.ends_with("/go.mod")
            && h.starts_with("h1:")
            && version.is_none_or(|want| v == want);
        ok.then_some(GoLine {
            line: i + 1,
            version_matches: version.is_some(),
        })
    })
}

fn read_bounded(p: &Path) -> io::Result<String> {
    let mut buf = Vec::new();
    std::fs::File::open(p)?
        .take(GO_FILE_LIMIT)
        .read_to_end(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Byte ranges (offset, length) of the records of the given 1-based packet numbers in an
/// uncompressed pcap or pcapng file, in one pass over the record headers. Packets are
/// counted as modtrace's reader counts them (pcap records; pcapng Enhanced, Simple and
/// obsolete Packet Blocks). A number past the end, or a file that is not one of those, is
/// left out.
fn packet_ranges(path: &Path, wanted: &[u64]) -> HashMap<u64, (u64, u64)> {
    let mut found = HashMap::new();
    let Some(&last) = wanted.iter().max() else {
        return found;
    };
    let Ok(file) = std::fs::File::open(path) else {
        return found;
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut r = io::BufReader::new(file);
    let mut head = [0u8; 24];
    if r.read_exact(&mut head).is_err() {
        return found;
    }
    let magic = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    let u32_at = |b: &[u8], at: usize, be: bool| {
        let a = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if be {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        }
    };
    let mut n: u64 = 0;
    match magic {
        // pcap, microsecond or nanosecond, either byte order; 16-byte record headers.
        0xa1b2_c3d4 | 0xa1b2_3c4d | 0xd4c3_b2a1 | 0x4d3c_b2a1 => {
            let be = matches!(magic, 0xd4c3_b2a1 | 0x4d3c_b2a1);
            let mut off: u64 = 24;
            let mut rec = [0u8; 16];
            while n < last && r.read_exact(&mut rec).is_ok() {
                n += 1;
                let size = 16 + u64::from(u32_at(&rec, 8, be));
                if off + size > len {
                    break;
                }
                if wanted.binary_search(&n).is_ok() {
                    found.insert(n, (off, size));
                }
                if r.seek_relative(size as i64 - 16).is_err() {
                    break;
                }
                off += size;
            }
        }
        // pcapng: blocks of (type, total length, ..., total length).
        0x0a0d_0d0a => {
            if r.seek_relative(-24).is_err() {
                return found;
            }
            let mut off: u64 = 0;
            let mut be = false;
            let mut bh = [0u8; 12];
            while n < last && r.read_exact(&mut bh).is_ok() {
                let le_type = u32_at(&bh, 0, false);
                if le_type == 0x0a0d_0d0a {
                    // The byte-order magic decides this section's byte order.
                    be = u32_at(&bh, 8, false) != 0x1a2b_3c4d;
                }
                let btype = u32_at(&bh, 0, be);
                let size = u64::from(u32_at(&bh, 4, be));
                if size < 12 || off + size > len {
                    break;
                }
                if matches!(btype, 2 | 3 | 6) {
                    n += 1;
                    if wanted.binary_search(&n).is_ok() {
                        found.insert(n, (off, size));
                    }
                }
                if r.seek_relative(size as i64 - 12).is_err() {
                    break;
                }
                off += size;
            }
        }
        _ => {}
    }
    found
}

/// run.artifacts, built as results refer to them.
struct Artifacts {
    list: Vec<Value>,
    index: HashMap<String, usize>,
}

impl Artifacts {
    fn add(&mut self, uri: String, mime: &str, roles: &[&str], length: Option<u64>) -> usize {
        if let Some(&i) = self.index.get(&uri) {
            return i;
        }
        let mut a = json!({
            "location": { "uri": uri },
            "roles": roles,
            "mimeType": mime,
        });
        if let Some(n) = length {
            a["length"] = json!(n);
        }
        self.list.push(a);
        self.index.insert(uri, self.list.len() - 1);
        self.list.len() - 1
    }
}

fn capture_mime(report: &Report, i: usize, p: &Path) -> &'static str {
    let (format, gzip) = match report.capture.files.get(i) {
        Some(f) => (f.format, f.gzip),
        None => {
            let name = p.to_string_lossy();
            let gz = name.ends_with(".gz");
            let ng = name.trim_end_matches(".gz").ends_with(".pcapng");
            (if ng { "pcapng" } else { "pcap" }, gz)
        }
    };
    match (gzip, format) {
        (true, _) => "application/gzip",
        (false, "pcapng") => "application/x-pcapng",
        _ => "application/vnd.tcpdump.pcap",
    }
}

/// The go.mod/go.sum of `--go-mod DIR`, read once.
struct GoModule {
    go_mod: Option<(String, String)>,
    go_sum: Option<(String, String)>,
}

impl GoModule {
    fn load(dir: &Path, notes: &mut Vec<Value>) -> GoModule {
        let mut read = |name: &str| {
            let p = dir.join(name);
            match read_bounded(&p) {
                Ok(t) => Some((path_uri(&p), t)),
                Err(e) => {
                    notes.push(json!({
                        "level": "warning",
                        "message": { "text": format!("--go-mod: {}: {e}", p.display()) },
                    }));
                    None
                }
            }
        };
        GoModule {
            go_mod: read("go.mod"),
            go_sum: read("go.sum"),
        }
    }

    /// (uri, 1-based line) for a module: its go.mod require line, else its go.sum line.
    fn locate(&self, module: &str, version: Option<&str>) -> Option<(&str, usize)> {
        let req = self
            .go_mod
            .as_ref()
            .and_then(|(u, t)| find_require(t, module, version).map(|l| (u.as_str(), l)));
        let sum = self
            .go_sum
            .as_ref()
            .and_then(|(u, t)| find_sum(t, module, version).map(|l| (u.as_str(), l)));
        match (req, sum) {
            // go.sum pins this exact version when go.mod requires another one.
            (Some(r), Some(s)) if !r.1.version_matches && s.1.version_matches => {
                Some((s.0, s.1.line))
            }
            (Some(r), _) => Some((r.0, r.1.line)),
            (None, s) => s.map(|(u, l)| (u, l.line)),
        }
    }
}

pub fn write(report: &Report, ctx: &SarifContext, out: &mut dyn Write) -> io::Result<()> {
    let log = build(report, ctx);
    serde_json::to_writer_pretty(&mut *out, &log).map_err(io::Error::other)?;
    writeln!(out)
}

/// The SARIF log as a JSON value.
pub fn build(report: &Report, ctx: &SarifContext) -> Value {
    let mut notes: Vec<Value> = Vec::new();
    let mut artifacts = Artifacts {
        list: Vec::new(),
        index: HashMap::new(),
    };
    // Capture files first, in the order given: a result's capture is artifacts[0] (the
    // packet numbers are over the merged input, so which file a packet came from cannot be
    // told from the report when there are several).
    let captures: Vec<(String, usize)> = ctx
        .files
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let uri = path_uri(p);
            let len = std::fs::metadata(p).ok().map(|m| m.len());
            let idx = artifacts.add(
                uri.clone(),
                capture_mime(report, i, p),
                &["analysisTarget", "referencedOnCommandLine"],
                len,
            );
            (uri, idx)
        })
        .collect();
    for f in report.capture.files.iter().filter(|f| f.truncated) {
        notes.push(json!({
            "level": "warning",
            "message": { "text": format!("{}: capture is cut short; analysed as far as it goes", f.path) },
        }));
    }
    let go = ctx.go_mod.as_deref().map(|d| GoModule::load(d, &mut notes));
    // The findings, then those a policy accepted: code scanning shows the latter as suppressed
    // (kind external, with the ignore's reason) instead of losing them.
    let all: Vec<(&crate::detect::Finding, Option<&crate::policy::Ignored>)> = report
        .findings
        .iter()
        .map(|f| (f, None))
        .chain(
            report
                .capture
                .ignored_findings
                .iter()
                .map(|i| (&*i.finding, Some(i))),
        )
        .collect();
    // The evidence packet's bytes as the region, when the packet numbers are those of one
    // uncompressed file.
    let regions = match (&ctx.files[..], report.capture.files.first()) {
        ([one], Some(f)) if !f.gzip && report.capture.files.len() == 1 => {
            let mut wanted: Vec<u64> = all.iter().map(|(f, _)| f.evidence.packet).collect();
            wanted.sort_unstable();
            wanted.dedup();
            packet_ranges(one, &wanted)
        }
        _ => HashMap::new(),
    };
    // Over both lists at once: a finding's fingerprint is the same whether or not it is
    // accepted, as long as the findings before it are.
    let prints = fingerprints(&all.iter().map(|(f, _)| (*f).clone()).collect::<Vec<_>>());

    let results: Vec<Value> = all
        .iter()
        .zip(&prints)
        .map(|((f, ignored), print)| {
            let rule_index = RULES.iter().position(|r| r.rule == f.rule).unwrap_or(0);
            let mut locations = Vec::new();
            // In the repository first: code scanning shows a result at its first location.
            if let (Some(go), Some(m)) = (&go, &f.module) {
                if let Some((uri, line)) = go.locate(m, f.version.as_deref()) {
                    let idx = artifacts.add(
                        uri.to_string(),
                        "text/plain",
                        &["referencedOnCommandLine"],
                        None,
                    );
                    locations.push(json!({
                        "physicalLocation": {
                            "artifactLocation": { "uri": uri, "index": idx },
                            "region": { "startLine": line },
                        },
                    }));
                }
            }
            if let Some((uri, idx)) = captures.first() {
                let mut loc = json!({
                    "physicalLocation": {
                        "artifactLocation": { "uri": uri, "index": idx },
                    },
                    "properties": { "packet": f.evidence.packet },
                });
                if let Some((off, len)) = regions.get(&f.evidence.packet) {
                    loc["physicalLocation"]["region"] =
                        json!({ "byteOffset": off, "byteLength": len });
                }
                locations.push(loc);
            }
            if let (Some(m), Some(fq)) = (&f.module, crate::gomod::label_of(&f.module, &f.version))
            {
                for l in &mut locations {
                    l["logicalLocations"] = json!([{
                        "name": m,
                        "fullyQualifiedName": fq,
                        "kind": "module",
                    }]);
                }
            }
            let mut props = Map::new();
            props.insert("severity".into(), json!(f.severity.as_str()));
            if let Some(m) = &f.module {
                props.insert("module".into(), json!(m));
            }
            if let Some(v) = &f.version {
                props.insert("version".into(), json!(v));
            }
            props.insert("packet".into(), json!(f.evidence.packet));
            props.insert("time".into(), json!(f.evidence.time.rfc3339()));
            props.insert("exchanges".into(), json!(f.evidence.exchanges));
            props.insert("flows".into(), json!(f.evidence.flows));
            if let Some(p) = &f.process {
                props.insert("process".into(), json!(p));
            }
            let mut result = json!({
                "ruleId": f.rule.id(),
                "ruleIndex": rule_index,
                "level": level(f.severity),
                "message": { "text": f.message },
                "locations": locations,
                "partialFingerprints": {
                    "modtraceFinding/v1": print,
                    // Ours, so upload-sarif does not try to hash lines of a binary capture.
                    "primaryLocationLineHash": print,
                },
                "properties": props,
            });
            if let Some(i) = ignored {
                let mut suppression = json!({
                    "kind": "external",
                    "status": "accepted",
                    "justification": i.reason,
                });
                if let Some(until) = &i.until {
                    suppression["properties"] = json!({ "until": until });
                }
                result["suppressions"] = json!([suppression]);
            }
            result
        })
        .collect();

    let mut invocation = json!({ "executionSuccessful": true });
    if !notes.is_empty() {
        invocation["toolExecutionNotifications"] = Value::Array(notes);
    }
    let c = &report.capture;
    json!({
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "modtrace",
                    "version": env!("CARGO_PKG_VERSION"),
                    "semanticVersion": env!("CARGO_PKG_VERSION"),
                    "rules": rules_json(),
                },
            },
            "invocations": [invocation],
            "artifacts": artifacts.list,
            "results": results,
            "columnKind": "unicodeCodePoints",
            "properties": {
                "capture": {
                    "packets": c.packets,
                    "first": c.first,
                    "last": c.last,
                    "http_exchanges": c.http_exchanges,
                    "tls_sessions": c.tls_sessions,
                },
            },
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{Evidence, Rule};
    use crate::time::Ts;

    fn finding(rule: Rule, module: Option<&str>, version: Option<&str>, msg: &str) -> Finding {
        Finding {
            rule,
            severity: rule.severity(),
            message: msg.into(),
            module: module.map(Into::into),
            version: version.map(Into::into),
            evidence: Evidence {
                exchanges: vec![1],
                flows: vec![1],
                packet: 4,
                time: Ts(0),
            },
            process: None,
        }
    }

    #[test]
    fn names_levels_and_scores() {
        assert_eq!(camel_case("plaintext-module-fetch"), "PlaintextModuleFetch");
        assert_eq!(camel_case("tls-decrypt-failed"), "TlsDecryptFailed");
        assert_eq!(level(Severity::Critical), "error");
        assert_eq!(level(Severity::High), "error");
        assert_eq!(level(Severity::Medium), "warning");
        assert_eq!(level(Severity::Low), "note");
        assert_eq!(level(Severity::Info), "note");
        let scores: Vec<f64> = Severity::ALL
            .iter()
            .map(|s| security_severity(*s).parse().unwrap())
            .collect();
        assert!(scores.windows(2).all(|w| w[0] < w[1]), "{scores:?}");
        assert!(scores[4] >= 9.0 && (7.0..9.0).contains(&scores[3]));
    }

    #[test]
    fn uris_are_relative_as_given_and_encoded() {
        assert_eq!(path_uri(Path::new("captures/a.pcap")), "captures/a.pcap");
        assert_eq!(path_uri(Path::new("./go.mod")), "go.mod");
        assert_eq!(path_uri(Path::new("a b/x#1.pcap")), "a%20b/x%231.pcap");
        assert_eq!(path_uri(Path::new("c:d.pcap")), "c%3Ad.pcap");
        assert_eq!(path_uri(Path::new("/tmp/x.pcap")), "file:///tmp/x.pcap");
        assert_eq!(path_uri(Path::new("../m/go.sum")), "../m/go.sum");
    }

    #[test]
    fn markdown_escapes_outside_code_only() {
        assert_eq!(
            markdown("serves /sumdb/<name>/ and `a_b<c>` *x*"),
            "serves /sumdb/\\<name\\>/ and `a_b<c>` \\*x\\*"
        );
    }

    #[test]
    fn fingerprints_ignore_numbers_but_keep_findings_apart() {
        let a = finding(
            Rule::PlaintextModuleFetch,
            Some("example.test/Hello"),
            Some("v1.1.0"),
            "x requested from 127.0.0.1:8086 (client 127.0.0.1:56276)",
        );
        let b = finding(
            Rule::PlaintextModuleFetch,
            Some("example.test/Hello"),
            Some("v1.1.0"),
            "x requested from 127.0.0.1:8087 (client 127.0.0.1:43028)",
        );
        let again = finding(
            Rule::PlaintextModuleFetch,
            Some("example.test/Hello"),
            Some("v1.1.0"),
            "x requested from 127.0.0.1:8086 (client 127.0.0.1:60001)",
        );
        let other = finding(
            Rule::PlaintextModuleFetch,
            Some("example.test/Hello"),
            Some("v1.2.0"),
            "x requested from 127.0.0.1:8086 (client 127.0.0.1:56276)",
        );
        let p = fingerprints(&[a.clone(), b]);
        assert_ne!(p[0], p[1], "two servers, two results");
        assert!(p[0].ends_with(":1") && p[1].ends_with(":2"));
        assert_eq!(
            p[0].split(':').next(),
            p[1].split(':').next(),
            "same hash, told apart by occurrence"
        );
        assert_eq!(fingerprints(&[again])[0], p[0], "stable across runs");
        assert_ne!(fingerprints(&[other])[0], p[0], "the version counts");
        assert_eq!(fingerprints(&[a])[0].len(), 32 + 2);
    }

    const GO_MOD: &str = "module example.test/app\n\ngo 1.22\n\nrequire example.test/Hello v1.1.0\n\nrequire (\n\t\"example.test/Util\" v0.1.0 // indirect\n\texample.test/Other v1.0.0\n)\n\nrequirex example.test/Util v0.2.0\n";
    const GO_SUM: &str = "example.test/Hello v1.1.0 h1:abc=\nexample.test/Hello v1.1.0/go.mod h1:def=\nexample.test/Util v0.1.0/go.mod h1:x=\nexample.test/Util v0.2.0/go.mod h1:y=\nexample.test/Util v0.2.0 h1:z=\n";

    #[test]
    fn go_mod_require_lines_single_and_block() {
        let hello = find_require(GO_MOD, "example.test/Hello", Some("v1.1.0")).unwrap();
        assert_eq!(hello.line, 5);
        assert!(hello.version_matches);
        // Quoted path inside a block, other version: found, but not an exact match.
        let util = find_require(GO_MOD, "example.test/Util", Some("v0.2.0")).unwrap();
        assert_eq!(util.line, 8);
        assert!(!util.version_matches);
        assert_eq!(
            find_require(GO_MOD, "example.test/Other", None)
                .unwrap()
                .line,
            9
        );
        assert_eq!(find_require(GO_MOD, "example.test/app", None), None);
        assert_eq!(find_require("", "x", None), None);
    }

    #[test]
    fn go_sum_zip_line_not_go_mod_line() {
        assert_eq!(
            find_sum(GO_SUM, "example.test/Util", Some("v0.2.0"))
                .unwrap()
                .line,
            5
        );
        assert_eq!(
            find_sum(GO_SUM, "example.test/Hello", None).unwrap().line,
            1
        );
        assert_eq!(find_sum(GO_SUM, "example.test/Util", Some("v0.1.0")), None);
        assert_eq!(find_sum("garbage\n\u{0}\n", "x", None), None);
    }

    #[test]
    fn go_module_prefers_the_line_with_this_version() {
        let g = GoModule {
            go_mod: Some(("go.mod".into(), GO_MOD.into())),
            go_sum: Some(("go.sum".into(), GO_SUM.into())),
        };
        assert_eq!(
            g.locate("example.test/Hello", Some("v1.1.0")),
            Some(("go.mod", 5))
        );
        // go.mod requires v0.1.0, go.sum has v0.2.0's hash: the go.sum line is the one.
        assert_eq!(
            g.locate("example.test/Util", Some("v0.2.0")),
            Some(("go.sum", 5))
        );
        assert_eq!(
            g.locate("example.test/Other", Some("v9.0.0")),
            Some(("go.mod", 9))
        );
        assert_eq!(g.locate("example.test/None", None), None);
    }

    #[test]
    fn packet_ranges_of_pcap_and_pcapng_records() {
        let dir = tempfile::tempdir().unwrap();
        // pcap, little-endian microseconds: records of 10, 0 and 5 bytes.
        let mut pcap = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
        pcap.extend_from_slice(&[0; 8]);
        pcap.extend_from_slice(&65535u32.to_le_bytes());
        pcap.extend_from_slice(&1u32.to_le_bytes());
        for n in [10u32, 0, 5] {
            pcap.extend_from_slice(&[0; 8]);
            pcap.extend_from_slice(&n.to_le_bytes());
            pcap.extend_from_slice(&n.to_le_bytes());
            pcap.extend(std::iter::repeat_n(0xaa, n as usize));
        }
        let p = dir.path().join("a.pcap");
        std::fs::write(&p, &pcap).unwrap();
        let r = packet_ranges(&p, &[1, 3, 4]);
        assert_eq!(r.get(&1), Some(&(24, 26)));
        assert_eq!(r.get(&3), Some(&(24 + 26 + 16, 21)));
        assert_eq!(r.get(&4), None, "past the end");
        assert_eq!(packet_ranges(&p, &[]), HashMap::new());

        // pcapng, big-endian section: SHB, IDB, a secrets block, EPB, SPB.
        let block = |t: u32, body: &[u8]| {
            let len = 12 + body.len() as u32;
            let mut b = t.to_be_bytes().to_vec();
            b.extend_from_slice(&len.to_be_bytes());
            b.extend_from_slice(body);
            b.extend_from_slice(&len.to_be_bytes());
            b
        };
        let mut ng = block(
            0x0a0d_0d0a,
            &[
                0x1a, 0x2b, 0x3c, 0x4d, 0, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            ],
        );
        ng.extend(block(1, &[0, 1, 0, 0, 0, 0, 0, 0]));
        ng.extend(block(10, &[0; 12]));
        let epb_at = ng.len() as u64;
        ng.extend(block(6, &[0; 24]));
        let spb_at = ng.len() as u64;
        ng.extend(block(3, &[0; 8]));
        let p = dir.path().join("b.pcapng");
        std::fs::write(&p, &ng).unwrap();
        let r = packet_ranges(&p, &[1, 2]);
        assert_eq!(r.get(&1), Some(&(epb_at, 36)));
        assert_eq!(r.get(&2), Some(&(spb_at, 20)));

        // Neither format, or cut short: nothing.
        std::fs::write(&p, b"not a capture at all, no").unwrap();
        assert!(packet_ranges(&p, &[1]).is_empty());
        std::fs::write(&p, &pcap[..24 + 16 + 4]).unwrap();
        assert!(packet_ranges(&p, &[1]).is_empty());
    }
}
