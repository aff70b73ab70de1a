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

use crate::detect::{Finding, Rule, Scope, Severity, RULES};
use crate::gomod::goenv::{parse_goproxy, GoEnv};
use crate::gomod::pattern::{match_prefix, path_match, split_patterns, ProxyBase};
use crate::time::Date;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml::Spanned;

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
    /// The finding itself, for formats that keep accepted findings as such (SARIF's
    /// suppressions); the other reports show the summary above.
    #[serde(skip)]
    pub finding: Box<Finding>,
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
                        finding: Box::new(f.clone()),
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
}
