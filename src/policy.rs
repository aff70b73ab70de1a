//! The CI policy: which module paths are private, which proxies may serve modules (and see
//! private paths), severity overrides and accepted findings. Read from a TOML file
//! (`--policy`), extended by `--private` and by the Go environment (`--go-env`).
//!
//! Private patterns follow `go help private`: GOPRIVATE syntax, matched like the go command's
//! `module.MatchPrefixPatterns` (golang.org/x/mod), re-implemented here with `path.Match`.
//!
//! ```toml
//! private = ["*.corp.example", "example.test/private"]
//! allowed_proxies = ["https://proxy.corp.example", "http://127.0.0.1:8083"]
//! # Proxies that may see private paths without limiting who serves modules:
//! # private_proxies = ["https://athens.corp.example"]
//!
//! [severity]
//! proxy-fallback = "low"
//!
//! [[ignore]]
//! rule = "no-checksum-verification"
//! module = "example.test/*"
//! reason = "lab modules are pinned by go.sum"
//! until = 2027-01-31
//! ```

use crate::detect::{Finding, Rule, Severity, RULES};
use crate::gomod::goenv::{host_only, parse_goproxy, port_of, GoEnv};
use crate::gomod::path::split_url;
use crate::report::Report;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml::Spanned;

// ---------------------------------------------------------------------------------------------
// Go's path.Match and module.MatchPrefixPatterns

/// `path.Match` found a malformed pattern (Go's `path.ErrBadPattern`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadPattern;

/// Go's `path.Match(pattern, name)`: `*` matches any run of non-`/` characters, `?` one
/// non-`/` character, `[...]` a character class (`^` negates, `a-z` ranges), `\` escapes.
/// The whole name must match. A malformed pattern is an error (as in Go, also when the part
/// that is malformed comes after the point where the match failed).
pub fn path_match(pattern: &str, name: &str) -> Result<bool, BadPattern> {
    let mut pattern = pattern.as_bytes();
    let mut name = name.as_bytes();
    'pattern: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            // A trailing * matches the rest of the name unless it has a /.
            return Ok(!name.contains(&b'/'));
        }
        // Look for a match at the current position.
        let (t, ok) = match_chunk(chunk, name)?;
        // The last chunk must use up the name; otherwise the star may still match.
        if ok && (t.is_empty() || !pattern.is_empty()) {
            name = t;
            continue;
        }
        if star {
            // Look for a match skipping i+1 bytes; a star cannot skip a /.
            let mut i = 0;
            while i < name.len() && name[i] != b'/' {
                let (t, ok) = match_chunk(chunk, &name[i + 1..])?;
                if ok {
                    if pattern.is_empty() && !t.is_empty() {
                        i += 1;
                        continue;
                    }
                    name = t;
                    continue 'pattern;
                }
                i += 1;
            }
        }
        // Before failing, check that the rest of the pattern is well-formed.
        while !pattern.is_empty() {
            let (_, chunk, rest) = scan_chunk(pattern);
            pattern = rest;
            match_chunk(chunk, b"")?;
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

/// The leading stars, the chunk up to the next star outside a class, and the rest.
fn scan_chunk(mut pattern: &[u8]) -> (bool, &[u8], &[u8]) {
    let mut star = false;
    while pattern.first() == Some(&b'*') {
        pattern = &pattern[1..];
        star = true;
    }
    let mut in_range = false;
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            // A trailing backslash is reported by match_chunk.
            b'\\' if i + 1 < pattern.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => break,
            _ => {}
        }
        i += 1;
    }
    (star, &pattern[..i], &pattern[i..])
}

/// One UTF-8 character at the start of `b`: (code point, length); an invalid byte is
/// U+FFFD of length 1, as Go's utf8.DecodeRune has it.
fn decode_rune(b: &[u8]) -> (u32, usize) {
    let n = match b.first() {
        None => return (0xFFFD, 0),
        Some(&c) if c < 0x80 => return (u32::from(c), 1),
        Some(&c) if c >= 0xF0 => 4,
        Some(&c) if c >= 0xE0 => 3,
        Some(_) => 2,
    };
    match b
        .get(..n)
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| s.chars().next())
    {
        Some(c) => (u32::from(c), n),
        None => (0xFFFD, 1),
    }
}

/// Go's `getEsc`: one (possibly escaped) character of a class; the class must go on after it.
fn get_esc(chunk: &[u8]) -> Result<(u32, &[u8]), BadPattern> {
    let mut chunk = chunk;
    match chunk.first() {
        None | Some(b'-') | Some(b']') => return Err(BadPattern),
        Some(b'\\') => {
            chunk = &chunk[1..];
            if chunk.is_empty() {
                return Err(BadPattern);
            }
        }
        _ => {}
    }
    let (r, n) = decode_rune(chunk);
    let rest = &chunk[n..];
    if (r == 0xFFFD && n == 1) || rest.is_empty() {
        return Err(BadPattern);
    }
    Ok((r, rest))
}

/// Go's `matchChunk`: matches `chunk` (no stars) at the start of `s`; returns the rest of `s`
/// and whether it matched. Goes on through the chunk after a failure to report bad syntax.
fn match_chunk<'a>(mut chunk: &[u8], mut s: &'a [u8]) -> Result<(&'a [u8], bool), BadPattern> {
    let mut failed = false;
    while let Some(&c) = chunk.first() {
        if !failed && s.is_empty() {
            failed = true;
        }
        match c {
            b'[' => {
                let mut r = 0;
                if !failed {
                    let (rr, n) = decode_rune(s);
                    r = rr;
                    s = &s[n..];
                }
                chunk = &chunk[1..];
                let negated = chunk.first() == Some(&b'^');
                if negated {
                    chunk = &chunk[1..];
                }
                let mut matched = false;
                let mut ranges = 0;
                loop {
                    if chunk.first() == Some(&b']') && ranges > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let (lo, rest) = get_esc(chunk)?;
                    chunk = rest;
                    let mut hi = lo;
                    if chunk.first() == Some(&b'-') {
                        let (h, rest) = get_esc(&chunk[1..])?;
                        hi = h;
                        chunk = rest;
                    }
                    if lo <= r && r <= hi {
                        matched = true;
                    }
                    ranges += 1;
                }
                if matched == negated {
                    failed = true;
                }
            }
            b'?' => {
                if !failed {
                    if s[0] == b'/' {
                        failed = true;
                    }
                    let (_, n) = decode_rune(s);
                    s = &s[n..];
                }
                chunk = &chunk[1..];
            }
            _ => {
                if c == b'\\' {
                    chunk = &chunk[1..];
                    if chunk.is_empty() {
                        return Err(BadPattern);
                    }
                }
                if !failed {
                    if chunk[0] != s[0] {
                        failed = true;
                    }
                    s = &s[1..];
                }
                chunk = &chunk[1..];
            }
        }
    }
    if failed {
        Ok((&[], false))
    } else {
        Ok((s, true))
    }
}

/// golang.org/x/mod/module `MatchPrefixPatterns`: whether any of the comma-separated glob
/// patterns matches a prefix of `target` made of whole path elements (a pattern of N
/// elements is matched against the first N elements). Empty patterns are skipped, a trailing
/// `/` is ignored, and a malformed pattern matches nothing.
pub fn match_prefix_patterns(globs: &str, target: &str) -> bool {
    globs.split(',').any(|g| match_prefix(g, target))
}

/// One pattern of [`match_prefix_patterns`].
fn match_prefix(glob: &str, target: &str) -> bool {
    let glob = glob.strip_suffix('/').unwrap_or(glob);
    if glob.is_empty() {
        return false;
    }
    // A glob with N slashes is matched against the target up to its N+1'th slash.
    let mut n = glob.bytes().filter(|&b| b == b'/').count();
    let mut prefix = target;
    for (i, b) in target.bytes().enumerate() {
        if b == b'/' {
            if n == 0 {
                prefix = &target[..i];
                break;
            }
            n -= 1;
        }
    }
    if n > 0 {
        // Not enough path elements.
        return false;
    }
    path_match(glob, prefix).unwrap_or(false)
}

/// Splits a GOPRIVATE-style list into its patterns (empty ones dropped, as Go skips them).
fn split_patterns(list: &str) -> impl Iterator<Item = &str> {
    list.split(',')
        .filter(|p| !p.trim_end_matches('/').is_empty())
}

// ---------------------------------------------------------------------------------------------
// Proxy bases

/// A GOPROXY base (`https://proxy.corp.example/go`): scheme, host, port (the scheme's default
/// when not written) and path prefix. A base covers the URLs under its path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyBase {
    /// As written (with `https://` added when it had no scheme, as GOPROXY does).
    pub text: String,
    scheme: String,
    host: String,
    port: u16,
    /// Without a trailing `/`; empty for the root.
    path: String,
}

impl ProxyBase {
    pub fn parse(s: &str) -> Option<ProxyBase> {
        let s = s.trim();
        let text = if s.contains("://") {
            s.to_string()
        } else {
            format!("https://{s}")
        };
        let u = split_url(&text)?;
        let scheme = u.scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        let host = host_only(u.authority);
        if host.is_empty() || u.query.is_some() {
            return None;
        }
        let port = port_of(u.authority).unwrap_or(default_port);
        Some(ProxyBase {
            scheme,
            host,
            port,
            path: u.path.trim_end_matches('/').to_string(),
            text,
        })
    }

    /// Whether `base` (an exchange's GOPROXY or checksum-database base URL) is this base or
    /// under its path.
    pub fn covers(&self, base: &str) -> bool {
        let Some(b) = ProxyBase::parse(base) else {
            return false;
        };
        b.scheme == self.scheme
            && b.host == self.host
            && b.port == self.port
            && (self.path.is_empty()
                || b.path == self.path
                || b.path
                    .strip_prefix(&self.path)
                    .is_some_and(|r| r.starts_with('/')))
    }
}

// ---------------------------------------------------------------------------------------------
// What the detector needs

/// The part of the policy the detector applies while it sees exchanges: private module paths
/// and the proxies allowed to serve modules. The default is empty: the policy rules are off.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    /// Patterns of module paths that must not be requested from a proxy (outside
    /// `private_proxies`): the policy's and `--private` patterns, and GONOPROXY (else
    /// GOPRIVATE) of `--go-env`.
    pub no_proxy: Vec<String>,
    /// Patterns of module paths that must not be looked up in a checksum database: the
    /// policy's and `--private` patterns, and GONOSUMDB (else GOPRIVATE) of `--go-env`.
    pub no_sumdb: Vec<String>,
    /// The policy's allowed_proxies: the organisation's own proxies, which may see private
    /// module paths.
    pub private_proxies: Vec<ProxyBase>,
    /// Bases allowed to serve modules (the policy's allowed_proxies); `None` turns
    /// `unexpected-proxy` off.
    pub allowed: Option<Vec<ProxyBase>>,
    /// The GOPROXY entries of `--go-env`, when it sets GOPROXY: findings say whether the
    /// captured machine's environment named the proxy (it never makes a proxy allowed).
    pub env_goproxy: Option<Vec<ProxyBase>>,
}

impl Scope {
    /// The first pattern that makes `module` private for proxies.
    pub fn private_for_proxy(&self, module: &str) -> Option<&str> {
        first_match(&self.no_proxy, module)
    }
    /// The first pattern that makes `module` private for checksum databases.
    pub fn private_for_sumdb(&self, module: &str) -> Option<&str> {
        first_match(&self.no_sumdb, module)
    }
    /// `base` is one of the organisation's proxies (may see private paths).
    pub fn is_private_proxy(&self, base: &str) -> bool {
        self.private_proxies.iter().any(|p| p.covers(base))
    }
    /// `Some(false)` when an allow list is set and `base` is not on it.
    pub fn is_allowed(&self, base: &str) -> Option<bool> {
        self.allowed
            .as_ref()
            .map(|l| l.iter().any(|p| p.covers(base)))
    }
    /// Whether the GOPROXY of `--go-env` names `base`; `None` without it.
    pub fn in_env_goproxy(&self, base: &str) -> Option<bool> {
        self.env_goproxy
            .as_ref()
            .map(|l| l.iter().any(|p| p.covers(base)))
    }
}

fn first_match<'a>(patterns: &'a [String], module: &str) -> Option<&'a str> {
    patterns
        .iter()
        .find(|p| match_prefix(p, module))
        .map(String::as_str)
}

// ---------------------------------------------------------------------------------------------
// Dates (ignore entries expire)

/// A calendar date, `YYYY-MM-DD`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    pub year: u16,
    pub month: u8,
    pub day: u8,
}

impl Date {
    pub fn parse(s: &str) -> Option<Date> {
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<u16> {
            let t = s.get(r)?;
            t.bytes()
                .all(|c| c.is_ascii_digit())
                .then(|| t.parse().ok())?
        };
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        let days = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return None,
        };
        (1..=days).contains(&day).then_some(Date {
            year,
            month: month as u8,
            day: day as u8,
        })
    }

    /// Today in UTC, from the system clock (only the policy reads it: an ignore's `until`).
    pub fn today() -> Date {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos().min(i64::MAX as u128) as i64);
        let s = crate::time::Ts(nanos).rfc3339();
        Date::parse(s.get(..10).unwrap_or("")).unwrap_or(Date {
            year: 1970,
            month: 1,
            day: 1,
        })
    }
}

impl std::fmt::Display for Date {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

// ---------------------------------------------------------------------------------------------
// The policy

/// An `[[ignore]]` entry: findings of `rule` (about a module matching `module`) are accepted
/// until `until` (inclusive), for `reason`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ignore {
    pub rule: Rule,
    /// GOPRIVATE-style pattern; `None` or `*` match every finding of the rule, also those
    /// about no module.
    pub module: Option<String>,
    pub reason: String,
    pub until: Option<Date>,
    /// Line of the entry in the policy file.
    pub line: usize,
}

impl Ignore {
    pub fn active(&self, today: Date) -> bool {
        self.until.is_none_or(|u| today <= u)
    }

    pub fn matches(&self, f: &Finding) -> bool {
        if f.rule != self.rule {
            return false;
        }
        match self.module.as_deref() {
            None | Some("*") => true,
            Some(p) => f.module.as_deref().is_some_and(|m| match_prefix(p, m)),
        }
    }
}

/// A finding the policy accepted, as the reports list it (`capture.ignored_findings`).
#[derive(Clone, Debug, Serialize)]
pub struct Ignored {
    pub rule: Rule,
    /// After the policy's severity override.
    pub severity: Severity,
    pub module: Option<String>,
    pub version: Option<String>,
    pub message: String,
    /// The ignore entry's reason.
    pub reason: String,
    pub until: Option<String>,
}

/// The merged policy. Build it with [`Policy::load`].
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// The policy file, for messages.
    pub file: Option<PathBuf>,
    /// Private patterns of the file and of `--private`, one glob each.
    pub private: Vec<String>,
    /// The file's allowed_proxies (`None`: not set).
    pub allowed_proxies: Option<Vec<ProxyBase>>,
    /// The file's private_proxies: the organisation's own proxies, which may see private
    /// paths, without restricting which proxies may serve modules.
    pub private_proxies: Vec<ProxyBase>,
    pub severity: BTreeMap<Rule, Severity>,
    pub ignores: Vec<Ignore>,
    /// From `--go-env`: GOPRIVATE, GONOPROXY and GONOSUMDB (when set), GOPROXY's bases (when
    /// set; only named in messages).
    pub env_private: Vec<String>,
    pub env_no_proxy: Option<Vec<String>>,
    pub env_no_sumdb: Option<Vec<String>>,
    pub env_goproxy: Option<Vec<ProxyBase>>,
}

/// The policy file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    private: Option<Spanned<StringOrList>>,
    allowed_proxies: Option<Vec<Spanned<String>>>,
    private_proxies: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    severity: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    ignore: Vec<Spanned<IgnoreEntry>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StringOrList {
    One(String),
    List(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IgnoreEntry {
    rule: Spanned<String>,
    module: Option<Spanned<String>>,
    reason: Spanned<String>,
    until: Option<Spanned<toml::Value>>,
}

/// 1-based line and column of byte `at` in `text`.
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let before = text.get(..at.min(text.len())).unwrap_or("");
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Checks a private or ignore pattern: Go ignores malformed ones silently; a policy says so.
fn check_pattern(p: &str) -> Result<(), String> {
    let g = p.strip_suffix('/').unwrap_or(p);
    if path_match(g, "").is_err() {
        return Err(format!(
            "`{p}` is not a valid pattern (path.Match syntax: * ? [a-z] \\)"
        ));
    }
    if p.chars().any(char::is_whitespace) {
        return Err(format!(
            "`{p}` contains white space: module path patterns never do"
        ));
    }
    Ok(())
}

impl Policy {
    /// Parses a policy file. `name` is the file's name for messages; errors say
    /// `<name>: line L, column C: <what>`.
    pub fn from_toml(text: &str, name: &str) -> Result<Policy, String> {
        let at = |span: std::ops::Range<usize>, msg: String| {
            let (l, c) = line_col(text, span.start);
            format!("{name}: line {l}, column {c}: {msg}")
        };
        let file: PolicyFile = toml::from_str(text).map_err(|e| {
            let mut msg = e.message().trim().to_string();
            if msg.contains("missing field `reason`") {
                msg.push_str(": every [[ignore]] says why the finding is accepted");
            }
            match e.span() {
                Some(s) => at(s, msg),
                None => format!("{name}: {msg}"),
            }
        })?;
        let mut p = Policy {
            file: Some(PathBuf::from(name)),
            ..Policy::default()
        };
        if let Some(private) = file.private {
            let span = private.span();
            let list = match private.into_inner() {
                StringOrList::One(s) => vec![s],
                StringOrList::List(l) => l,
            };
            for item in &list {
                for pat in split_patterns(item) {
                    check_pattern(pat).map_err(|e| at(span.clone(), format!("private: {e}")))?;
                    p.private.push(pat.to_string());
                }
            }
        }
        let bases = |key: &str, list: Vec<Spanned<String>>| -> Result<Vec<ProxyBase>, String> {
            list.into_iter()
                .map(|item| {
                    ProxyBase::parse(item.get_ref()).ok_or_else(|| {
                        at(
                            item.span(),
                            format!(
                                "{key}: `{}` is not a proxy base URL (http:// or https://, host, optional port and path, no query)",
                                item.get_ref()
                            ),
                        )
                    })
                })
                .collect()
        };
        if let Some(list) = file.allowed_proxies {
            p.allowed_proxies = Some(bases("allowed_proxies", list)?);
        }
        if let Some(list) = file.private_proxies {
            p.private_proxies = bases("private_proxies", list)?;
        }
        for (rule, sev) in file.severity {
            let r = Rule::from_id(rule.get_ref()).ok_or_else(|| {
                at(
                    rule.span(),
                    format!(
                        "[severity]: unknown rule `{}` ({})",
                        rule.get_ref(),
                        known_rules()
                    ),
                )
            })?;
            let s = Severity::parse(sev.get_ref()).ok_or_else(|| {
                at(
                    sev.span(),
                    format!(
                        "[severity] {}: `{}` is not a severity (info, low, medium, high, critical)",
                        rule.get_ref(),
                        sev.get_ref()
                    ),
                )
            })?;
            p.severity.insert(r, s);
        }
        for entry in file.ignore {
            let (line, _) = line_col(text, entry.span().start);
            let e = entry.into_inner();
            let rule = Rule::from_id(e.rule.get_ref()).ok_or_else(|| {
                at(
                    e.rule.span(),
                    format!(
                        "[[ignore]]: unknown rule `{}` ({})",
                        e.rule.get_ref(),
                        known_rules()
                    ),
                )
            })?;
            let module = match e.module {
                Some(m) => {
                    check_pattern(m.get_ref())
                        .map_err(|err| at(m.span(), format!("[[ignore]] module: {err}")))?;
                    Some(m.into_inner())
                }
                None => None,
            };
            if e.reason.get_ref().trim().is_empty() {
                return Err(at(
                    e.reason.span(),
                    "[[ignore]]: the reason is empty; say why the finding is accepted".into(),
                ));
            }
            let until = match e.until {
                None => None,
                Some(u) => {
                    let text_date = match u.get_ref() {
                        toml::Value::String(s) => Some(s.clone()),
                        toml::Value::Datetime(d) if d.time.is_none() && d.offset.is_none() => {
                            Some(d.to_string())
                        }
                        _ => None,
                    };
                    let date = text_date.as_deref().and_then(Date::parse).ok_or_else(|| {
                        at(
                            u.span(),
                            "[[ignore]] until: expected a date, YYYY-MM-DD".into(),
                        )
                    })?;
                    Some(date)
                }
            };
            p.ignores.push(Ignore {
                rule,
                module,
                reason: e.reason.into_inner(),
                until,
                line,
            });
        }
        Ok(p)
    }

    /// The policy from the flags: the file (`--policy`), then `--private` patterns, then the
    /// Go environment (`--go-env`), merged as the README's "Policy" section says.
    pub fn load(
        file: Option<&Path>,
        private: &[String],
        env: Option<&GoEnv>,
    ) -> Result<Policy, String> {
        let mut p = match file {
            Some(path) => {
                let name = format!("--policy {}", path.display());
                let text = std::fs::read_to_string(path).map_err(|e| format!("{name}: {e}"))?;
                let mut p = Policy::from_toml(&text, &name)?;
                p.file = Some(path.to_path_buf());
                p
            }
            None => Policy::default(),
        };
        for list in private {
            for pat in split_patterns(list) {
                check_pattern(pat).map_err(|e| format!("--private {list}: {e}"))?;
                if !p.private.iter().any(|q| q == pat) {
                    p.private.push(pat.to_string());
                }
            }
        }
        if let Some(env) = env {
            p.add_go_env(env);
        }
        Ok(p)
    }

    /// GOPRIVATE, GONOPROXY, GONOSUMDB and GOPROXY of the captured machine. Go's rules: an
    /// empty GONOPROXY or GONOSUMDB is unset and defaults to GOPRIVATE; malformed patterns
    /// match nothing.
    pub fn add_go_env(&mut self, env: &GoEnv) {
        let list = |k: &str| -> Option<Vec<String>> {
            env.get(k)
                .filter(|v| !v.is_empty())
                .map(|v| split_patterns(v).map(str::to_string).collect())
        };
        self.env_private = list("GOPRIVATE").unwrap_or_default();
        self.env_no_proxy = list("GONOPROXY");
        self.env_no_sumdb = list("GONOSUMDB");
        self.env_goproxy = env.get("GOPROXY").filter(|v| !v.is_empty()).map(|v| {
            parse_goproxy(v)
                .iter()
                .filter_map(|e| ProxyBase::parse(&e.url))
                .collect()
        });
    }

    /// What the detector applies.
    pub fn scope(&self) -> Scope {
        let with = |env: &[String]| -> Vec<String> {
            let mut v = self.private.clone();
            for p in env {
                if !v.contains(p) {
                    v.push(p.clone());
                }
            }
            v
        };
        Scope {
            no_proxy: with(self.env_no_proxy.as_deref().unwrap_or(&self.env_private)),
            no_sumdb: with(self.env_no_sumdb.as_deref().unwrap_or(&self.env_private)),
            private_proxies: self
                .allowed_proxies
                .iter()
                .flatten()
                .chain(&self.private_proxies)
                .cloned()
                .collect(),
            allowed: self.allowed_proxies.clone(),
            env_goproxy: self.env_goproxy.clone(),
        }
    }

    /// Nothing to apply to findings (no severity override, no ignore).
    pub fn is_passive(&self) -> bool {
        self.severity.is_empty() && self.ignores.is_empty()
    }

    /// Applies the severity overrides, then removes the findings an active ignore entry
    /// accepts (returned, for the reports), and keeps the order reports use (most severe
    /// first, then by first packet). Call it once on the final findings, before `--fail-on`
    /// and before any output.
    pub fn apply(&self, findings: &mut Vec<Finding>, today: Date) -> Vec<Ignored> {
        let mut changed = false;
        for f in findings.iter_mut() {
            if let Some(&s) = self.severity.get(&f.rule) {
                changed |= f.severity != s;
                f.severity = s;
            }
        }
        let mut ignored = Vec::new();
        findings.retain(|f| {
            match self
                .ignores
                .iter()
                .find(|i| i.active(today) && i.matches(f))
            {
                Some(i) => {
                    ignored.push(Ignored {
                        rule: f.rule,
                        severity: f.severity,
                        module: f.module.clone(),
                        version: f.version.clone(),
                        message: f.message.clone(),
                        reason: i.reason.clone(),
                        until: i.until.map(|d| d.to_string()),
                    });
                    false
                }
                None => true,
            }
        });
        if changed {
            findings.sort_by(|a, b| {
                b.severity
                    .cmp(&a.severity)
                    .then(a.evidence.packet.cmp(&b.evidence.packet))
                    .then(a.rule.cmp(&b.rule))
            });
        }
        ignored
    }

    /// One finding as the policy shows it while a capture streams: `None` when an active
    /// ignore entry accepts it, else a copy with the severity override applied (the same
    /// decision [`Policy::apply`] makes at the end).
    pub fn view(&self, f: &Finding, today: Date) -> Option<Finding> {
        let mut f = f.clone();
        if let Some(&s) = self.severity.get(&f.rule) {
            f.severity = s;
        }
        let ignored = self
            .ignores
            .iter()
            .any(|i| i.active(today) && i.matches(&f));
        (!ignored).then_some(f)
    }

    /// [`Policy::apply`] on a report: its findings, and `capture.ignored_findings`.
    pub fn apply_report(&self, report: &mut Report, today: Date) {
        let ignored = self.apply(&mut report.findings, today);
        report.capture.ignored_findings = ignored;
    }

    /// Warnings for ignore entries past their date (their findings count again), for stderr.
    pub fn expired(&self, today: Date) -> Vec<String> {
        let file = self
            .file
            .as_ref()
            .map_or_else(|| "policy".to_string(), |f| f.display().to_string());
        self.ignores
            .iter()
            .filter(|i| !i.active(today))
            .map(|i| {
                format!(
                    "{file}: line {}: the ignore of {}{} expired on {}: those findings are reported again",
                    i.line,
                    i.rule.id(),
                    i.module
                        .as_deref()
                        .map(|m| format!(" for {m}"))
                        .unwrap_or_default(),
                    i.until.map(|d| d.to_string()).unwrap_or_default()
                )
            })
            .collect()
    }
}

fn known_rules() -> String {
    let ids: Vec<&str> = RULES.iter().map(|r| r.id).collect();
    format!("known rules: {}", ids.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Evidence;

    // golang.org/x/mod/module's module_test.go, TestMatchPrefixPatterns.
    #[test]
    fn match_prefix_patterns_matches_go() {
        let cases = [
            ("", "rsc.io/quote", false),
            ("/", "rsc.io/quote", false),
            ("*/quote", "rsc.io/quote", true),
            ("*/quo", "rsc.io/quote", false),
            ("*/quo??", "rsc.io/quote", true),
            ("*/quo*", "rsc.io/quote", true),
            ("*quo*", "rsc.io/quote", false),
            ("rsc.io", "rsc.io/quote", true),
            ("*.io", "rsc.io/quote", true),
            ("rsc.io/", "rsc.io/quote", true),
            ("rsc", "rsc.io/quote", false),
            ("rsc*", "rsc.io/quote", true),
            ("rsc.io", "rsc.io/quote/v3", true),
            ("*/quote", "rsc.io/quote/v3", true),
            ("*/quote/", "rsc.io/quote/v3", true),
            ("*/quote/*", "rsc.io/quote/v3", true),
            ("*/quote/*/", "rsc.io/quote/v3", true),
            ("*/v3", "rsc.io/quote/v3", false),
            ("*/*/v3", "rsc.io/quote/v3", true),
            ("*/*/*", "rsc.io/quote/v3", true),
            ("*/*/*/", "rsc.io/quote/v3", true),
            ("*/*/*", "rsc.io/quote", false),
            ("*/*/*/", "rsc.io/quote", false),
            ("*/*/*,,", "rsc.io/quote", false),
            ("*/*/*,,*/quote", "rsc.io/quote", true),
            (",,*/quote", "rsc.io/quote", true),
        ];
        for (globs, target, want) in cases {
            assert_eq!(
                match_prefix_patterns(globs, target),
                want,
                "MatchPrefixPatterns({globs:?}, {target:?})"
            );
        }
        // go help private's examples.
        assert!(match_prefix_patterns(
            "*.corp.example.com,rsc.io/private",
            "git.corp.example.com/xyzzy"
        ));
        assert!(match_prefix_patterns(
            "*.corp.example.com,rsc.io/private",
            "rsc.io/private/quux"
        ));
        assert!(!match_prefix_patterns("rsc.io/private", "rsc.io/privateer"));
        // Case matters, as in Go.
        assert!(!match_prefix_patterns(
            "example.test/hello",
            "example.test/Hello"
        ));
    }

    // Go's path/match_test.go matchTests (those path.Match shares with filepath.Match).
    #[test]
    fn path_match_matches_go() {
        let ok = |p, s, want: bool| {
            assert_eq!(path_match(p, s), Ok(want), "Match({p:?}, {s:?})");
        };
        let bad = |p, s| assert_eq!(path_match(p, s), Err(BadPattern), "Match({p:?}, {s:?})");
        ok("abc", "abc", true);
        ok("*", "abc", true);
        ok("*c", "abc", true);
        ok("a*", "a", true);
        ok("a*", "abc", true);
        ok("a*", "ab/c", false);
        ok("a*/b", "abc/b", true);
        ok("a*/b", "a/c/b", false);
        ok("a*b*c*d*e*/f", "axbxcxdxe/f", true);
        ok("a*b*c*d*e*/f", "axbxcxdxexxx/f", true);
        ok("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false);
        ok("a*b*c*d*e*/f", "axbxcxdxexxx/fff", false);
        ok("a*b?c*x", "abxbbxdbxebxczzx", true);
        ok("a*b?c*x", "abxbbxdbxebxczzy", false);
        ok("ab[c]", "abc", true);
        ok("ab[b-d]", "abc", true);
        ok("ab[e-g]", "abc", false);
        ok("ab[^c]", "abc", false);
        ok("ab[^b-d]", "abc", false);
        ok("ab[^e-g]", "abc", true);
        ok("a\\*b", "a*b", true);
        ok("a\\*b", "ab", false);
        ok("a?b", "a☺b", true);
        ok("a[^a]b", "a☺b", true);
        ok("a???b", "a☺b", false);
        ok("a[^a][^a][^a]b", "a☺b", false);
        ok("[a-ζ]*", "α", true);
        ok("*[a-ζ]", "A", false);
        ok("a?b", "a/b", false);
        ok("a*b", "a/b", false);
        ok("[\\]a]", "]", true);
        ok("[\\-]", "-", true);
        ok("[x\\-]", "x", true);
        ok("[x\\-]", "-", true);
        ok("[x\\-]", "z", false);
        ok("[\\-x]", "x", true);
        ok("[\\-x]", "-", true);
        ok("[\\-x]", "a", false);
        bad("[]a]", "]");
        bad("[-]", "-");
        bad("[x-]", "x");
        bad("[x-]", "-");
        bad("[x-]", "z");
        bad("[-x]", "x");
        bad("[-x]", "-");
        bad("[-x]", "a");
        bad("\\", "a");
        bad("[a-b-c]", "a");
        bad("[", "a");
        bad("[^", "a");
        bad("[^bc", "a");
        bad("a[", "a");
        bad("a[", "ab");
        bad("a[", "x");
        bad("a/b[", "x");
        ok("*x", "xxx", true);
    }

    #[test]
    fn proxy_bases_compare_origin_and_path_prefix() {
        let corp = ProxyBase::parse("https://proxy.corp.example/go/").unwrap();
        assert!(corp.covers("https://proxy.corp.example/go"));
        assert!(corp.covers("https://PROXY.corp.example:443/go/sumdb/sum.golang.org"));
        assert!(!corp.covers("https://proxy.corp.example/gopher"));
        assert!(!corp.covers("http://proxy.corp.example/go"));
        assert!(!corp.covers("https://proxy.corp.example:8443/go"));
        let lab = ProxyBase::parse("http://127.0.0.1:8083").unwrap();
        assert!(lab.covers("http://127.0.0.1:8083"));
        assert!(!lab.covers("http://127.0.0.1:8082"));
        // No scheme means https, as in GOPROXY.
        assert!(ProxyBase::parse("corp.example")
            .unwrap()
            .covers("https://corp.example/x"));
        assert_eq!(ProxyBase::parse("ftp://x"), None);
        assert_eq!(ProxyBase::parse("https://x/?a=1"), None);
        assert_eq!(ProxyBase::parse("https://"), None);
        assert!(ProxyBase::parse("http://[::1]:8081")
            .unwrap()
            .covers("http://[::1]:8081/p"));
    }

    const EXAMPLE: &str = r#"
# the lab's policy
private = ["*.corp.example", "example.test/private,example.test/Hello"]
allowed_proxies = ["https://proxy.corp.example", "http://127.0.0.1:8083"]

[severity]
proxy-fallback = "low"
no-checksum-verification = "high"

[[ignore]]
rule = "plaintext-module-fetch"
module = "example.test/Util"
reason = "the lab proxy is plain HTTP on loopback"
until = 2027-01-31

[[ignore]]
rule = "tls-certificate-hidden"
reason = "no key log in CI"
"#;

    #[test]
    fn example_policy_parses() {
        let p = Policy::from_toml(EXAMPLE, "p.toml").unwrap();
        assert_eq!(
            p.private,
            [
                "*.corp.example",
                "example.test/private",
                "example.test/Hello"
            ]
        );
        assert_eq!(p.allowed_proxies.as_ref().unwrap().len(), 2);
        assert_eq!(p.severity.get(&Rule::ProxyFallback), Some(&Severity::Low));
        assert_eq!(
            p.severity.get(&Rule::NoChecksumVerification),
            Some(&Severity::High)
        );
        assert_eq!(p.ignores.len(), 2);
        assert_eq!(p.ignores[0].rule, Rule::PlaintextModuleFetch);
        assert_eq!(p.ignores[0].until, Date::parse("2027-01-31"));
        assert_eq!(p.ignores[0].line, 10);
        assert_eq!(p.ignores[1].module, None);
        // A date as a string works too; a single string of patterns too.
        let p = Policy::from_toml(
            "private = \"a.test,b.test/x\"\n[[ignore]]\nrule = \"proxy-fallback\"\nreason = \"r\"\nuntil = \"2026-02-28\"\n",
            "p",
        )
        .unwrap();
        assert_eq!(p.private, ["a.test", "b.test/x"]);
        assert_eq!(p.ignores[0].until, Date::parse("2026-02-28"));
        assert!(Policy::from_toml("", "p").unwrap().is_passive());
    }

    #[test]
    fn policy_errors_name_the_file_line_and_what() {
        let err = |text: &str| Policy::from_toml(text, "p.toml").unwrap_err();
        let e = err("privat = [\"x\"]\n");
        assert!(
            e.starts_with("p.toml: line 1, column 1: ") && e.contains("privat"),
            "{e}"
        );
        let e = err("[severity]\nproxy-fallback = \"low\"\nno-such-rule = \"high\"\n");
        assert!(
            e.starts_with("p.toml: line 3,") && e.contains("unknown rule `no-such-rule`"),
            "{e}"
        );
        assert!(e.contains("proxy-fallback"), "lists the known rules: {e}");
        let e = err("[severity]\nproxy-fallback = \"urgent\"\n");
        assert!(
            e.starts_with("p.toml: line 2,") && e.contains("`urgent` is not a severity"),
            "{e}"
        );
        let e = err("[[ignore]]\nrule = \"proxy-fallback\"\n");
        assert!(
            e.contains("line 1") && e.contains("reason"),
            "reason is required: {e}"
        );
        let e = err("[[ignore]]\nrule = \"proxy-fallback\"\nreason = \" \"\n");
        assert!(e.contains("line 3") && e.contains("reason is empty"), "{e}");
        let e =
            err("[[ignore]]\nrule = \"proxy-fallback\"\nreason = \"r\"\nuntil = \"tomorrow\"\n");
        assert!(e.contains("line 4") && e.contains("YYYY-MM-DD"), "{e}");
        let e = err("[[ignore]]\nrule = \"proxy-fallback\"\nreason = \"r\"\nuntil = 2026-02-30\n");
        assert!(e.contains("line 4"), "{e}");
        let e = err("[[ignore]]\nrule = \"proxy-fallback\"\nreason = \"r\"\ncolour = 1\n");
        assert!(e.contains("line 4") && e.contains("colour"), "{e}");
        let e = err("private = [\"a[\"]\n");
        assert!(
            e.contains("line 1") && e.contains("not a valid pattern"),
            "{e}"
        );
        let e = err("allowed_proxies = [\"https://ok.test\", \"ftp://x\"]\n");
        assert!(
            e.contains("line 1, column 39") && e.contains("ftp://x"),
            "{e}"
        );
        let e = err("this is not toml");
        assert!(e.starts_with("p.toml: line 1"), "{e}");
        assert!(!e.contains('\n'), "one line: {e}");
    }

    #[test]
    fn flags_and_go_env_merge() {
        let env = GoEnv::parse(
            r#"{"GOPRIVATE":"*.corp.example","GONOSUMDB":"","GONOPROXY":"none","GOPROXY":"https://proxy.corp.example,direct"}"#,
        )
        .unwrap();
        let p = Policy::load(None, &["example.test/Hello,x.test".into()], Some(&env)).unwrap();
        let s = p.scope();
        // --private counts for both; GONOPROXY=none replaces GOPRIVATE for proxies only.
        assert_eq!(
            s.private_for_proxy("example.test/Hello/v2"),
            Some("example.test/Hello")
        );
        assert_eq!(s.private_for_proxy("git.corp.example/a"), None);
        assert_eq!(
            s.private_for_sumdb("git.corp.example/a"),
            Some("*.corp.example")
        );
        // GOPROXY never allows a proxy (a developer's setting must not silence the policy);
        // findings only say whether it named the proxy.
        assert_eq!(s.is_allowed("https://proxy.corp.example"), None);
        assert!(!s.is_private_proxy("https://proxy.corp.example"));
        assert_eq!(s.in_env_goproxy("https://proxy.corp.example"), Some(true));
        assert_eq!(s.in_env_goproxy("https://other.test"), Some(false));
        assert!(Policy::load(None, &["a[".into()], None)
            .unwrap_err()
            .starts_with("--private a[: "));
        // No policy at all: nothing is private, nothing is checked.
        let s = Policy::default().scope();
        assert_eq!(s.private_for_proxy("example.test/Hello"), None);
        assert_eq!(s.is_allowed("https://x.test"), None);
        // Only a file's allowed_proxies allows.
        let mut p =
            Policy::from_toml("allowed_proxies = [\"http://127.0.0.1:8083\"]", "p").unwrap();
        p.add_go_env(&env);
        let s = p.scope();
        assert_eq!(s.is_allowed("https://proxy.corp.example"), Some(false));
        assert!(s.is_private_proxy("http://127.0.0.1:8083"));
    }

    /// private_proxies may see private paths but do not turn the allow list on.
    #[test]
    fn private_proxies_see_private_paths_without_an_allow_list() {
        let p = Policy::from_toml(
            "private = [\"corp.lab.test\"]\nprivate_proxies = [\"http://127.0.0.1:8114\"]",
            "p",
        )
        .unwrap();
        let s = p.scope();
        assert!(s.is_private_proxy("http://127.0.0.1:8114"));
        assert!(!s.is_private_proxy("http://127.0.0.1:8113"));
        assert_eq!(s.is_allowed("http://127.0.0.1:8113"), None);
        let e = Policy::from_toml("private_proxies = [\"ftp://x\"]", "p").unwrap_err();
        assert!(e.contains("private_proxies: `ftp://x`"), "{e}");
    }

    fn finding(rule: Rule, module: Option<&str>, packet: u64) -> Finding {
        Finding {
            rule,
            severity: rule.severity(),
            message: "m".into(),
            module: module.map(str::to_string),
            version: None,
            evidence: Evidence {
                exchanges: vec![1],
                flows: vec![1],
                packet,
                time: crate::time::Ts(0),
            },
            process: None,
        }
    }

    #[test]
    fn apply_overrides_ignores_and_resorts() {
        let p = Policy::from_toml(EXAMPLE, "p.toml").unwrap();
        let mut f = vec![
            finding(Rule::PlaintextModuleFetch, Some("example.test/Hello"), 1),
            finding(Rule::PlaintextModuleFetch, Some("example.test/Util"), 2),
            finding(Rule::NoChecksumVerification, Some("example.test/Util"), 3),
            finding(Rule::ProxyFallback, None, 4),
            finding(Rule::TlsCertificateHidden, None, 5),
        ];
        let today = Date::parse("2026-06-01").unwrap();
        let ignored = p.apply(&mut f, today);
        let got: Vec<_> = f.iter().map(|f| (f.rule.id(), f.severity)).collect();
        assert_eq!(
            got,
            [
                ("plaintext-module-fetch", Severity::High),
                ("no-checksum-verification", Severity::High),
                ("proxy-fallback", Severity::Low),
            ]
        );
        assert_eq!(ignored.len(), 2);
        assert_eq!(ignored[0].reason, "the lab proxy is plain HTTP on loopback");
        assert_eq!(ignored[0].module.as_deref(), Some("example.test/Util"));
        assert_eq!(ignored[0].until.as_deref(), Some("2027-01-31"));
        assert_eq!(ignored[1].rule, Rule::TlsCertificateHidden);
        assert!(p.expired(today).is_empty());
        // Past `until` the finding is back, and a warning says so.
        let later = Date::parse("2027-02-01").unwrap();
        let mut f = vec![finding(
            Rule::PlaintextModuleFetch,
            Some("example.test/Util"),
            2,
        )];
        assert!(p.apply(&mut f, later).is_empty());
        assert_eq!(f.len(), 1);
        let w = p.expired(later);
        assert_eq!(w.len(), 1);
        assert!(
            w[0].contains("line 10") && w[0].contains("2027-01-31"),
            "{}",
            w[0]
        );
        // The last day still counts.
        let mut f = vec![finding(
            Rule::PlaintextModuleFetch,
            Some("example.test/Util"),
            2,
        )];
        assert_eq!(p.apply(&mut f, Date::parse("2027-01-31").unwrap()).len(), 1);
    }

    #[test]
    fn ignore_module_patterns() {
        let i = |m: Option<&str>| Ignore {
            rule: Rule::ProxyFallback,
            module: m.map(str::to_string),
            reason: "r".into(),
            until: None,
            line: 1,
        };
        let f = finding(Rule::ProxyFallback, Some("git.corp.example/a/b"), 1);
        let none = finding(Rule::ProxyFallback, None, 1);
        assert!(i(Some("*.corp.example")).matches(&f));
        assert!(i(Some("*")).matches(&f) && i(Some("*")).matches(&none));
        assert!(i(None).matches(&none));
        assert!(!i(Some("*.corp.example")).matches(&none));
        assert!(!i(Some("git.corp.example/a/bc")).matches(&f));
        assert!(!i(None).matches(&finding(Rule::RedirectLoop, None, 1)));
    }

    #[test]
    fn dates() {
        assert_eq!(
            Date::parse("2024-02-29").map(|d| d.to_string()).as_deref(),
            Some("2024-02-29")
        );
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-1-01",
            "24-01-01",
            "2024-01-00",
            "２０２４-01-01",
        ] {
            assert_eq!(Date::parse(bad), None, "{bad}");
        }
        assert!(Date::today() > Date::parse("2024-01-01").unwrap());
    }
}
