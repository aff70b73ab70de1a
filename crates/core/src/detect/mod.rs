//! Detectors: annotated exchanges and flow events in, findings with stable rule ids out.
//! Findings about the same thing are aggregated (one finding, growing evidence), keyed by what
//! the rule is about (a module at a server, a redirect chain, a credential on a leg).

pub mod rules;
pub mod scope;
pub mod tls;

pub use rules::{Rule, Severity, RULES};
pub use scope::Scope;

use crate::flow::FlowId;
use crate::gomod::{Exchange, Op, TrackOutcome, Tracker};
use crate::time::Ts;
use serde::Serialize;
use std::collections::{HashMap, HashSet};

#[derive(Clone, Debug, Serialize)]
pub struct Evidence {
    /// Exchange ids, in the order they were seen.
    pub exchanges: Vec<u64>,
    pub flows: Vec<FlowId>,
    /// 1-based number of the first packet involved.
    pub packet: u64,
    #[serde(serialize_with = "crate::gomod::ser_ts")]
    pub time: Ts,
}

impl Evidence {
    fn of(ex: &Exchange) -> Evidence {
        Evidence {
            exchanges: vec![ex.id],
            flows: vec![ex.flow],
            packet: ex.packet,
            time: ex.start,
        }
    }
    fn add(&mut self, ex: &Exchange) {
        if !self.exchanges.contains(&ex.id) {
            self.exchanges.push(ex.id);
        }
        if !self.flows.contains(&ex.flow) {
            self.flows.push(ex.flow);
        }
        if ex.packet < self.packet {
            self.packet = ex.packet;
            self.time = ex.start;
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    pub rule: Rule,
    pub severity: Severity,
    pub message: String,
    pub module: Option<String>,
    pub version: Option<String>,
    pub evidence: Evidence,
    /// The local processes that owned the connections in the evidence (live capture on
    /// Linux), comma-separated, e.g. `go`; null when unknown (always, for files).
    pub process: Option<String>,
}

impl Finding {
    /// A finding of `rule` at the rule's own severity (a policy may change it later), about no
    /// module, with no owning process yet (live capture adds it).
    pub fn new(rule: Rule, message: String, evidence: Evidence) -> Finding {
        Finding {
            rule,
            severity: rule.severity(),
            message,
            module: None,
            version: None,
            evidence,
            process: None,
        }
    }

    /// The finding is about `module` at `version` (either may be unknown).
    pub fn about(mut self, module: Option<String>, version: Option<String>) -> Finding {
        self.module = module;
        self.version = version;
        self
    }
}

/// A zip download waiting for the end of the capture to see whether any lookup covered it.
struct ZipSeen {
    module: String,
    version: String,
    evidence: Evidence,
}

#[derive(Default)]
pub struct Detector {
    findings: Vec<Finding>,
    /// Aggregation key -> index into `findings`.
    keys: HashMap<String, usize>,
    lookups: HashSet<(String, String)>,
    zips: Vec<ZipSeen>,
    zip_index: HashMap<(String, String), usize>,
    /// Indices of findings created or grown by the last call, for streaming sinks.
    touched: Vec<usize>,
    /// TLS 1.3 sessions whose certificates were hidden (one finding per capture).
    hidden_tls: Option<Evidence>,
    hidden_count: u64,
    /// (client ip, host) -> when an HTTPS attempt to it failed: a plain-HTTP request that
    /// follows is an insecure fallback.
    failed_https: HashMap<(std::net::IpAddr, String), Evidence>,
    /// Module@versions whose hashes a go.sum file given to modtrace holds.
    go_sum: HashSet<(String, String)>,
    /// Private module paths and allowed proxies (`--policy`, `--private`, `--go-env`); empty:
    /// private-module-leak and unexpected-proxy are off.
    scope: Scope,
    /// Redirects answered by an allowed base (or by a request such a redirect led to):
    /// exchange id -> (the base may see private paths, the base may serve modules). The
    /// request that follows counts as that base's (its blob store). Bounded by
    /// MAX_POLICY_REDIRECTS, oldest forgotten first.
    policy_redirects: HashMap<u64, (bool, bool)>,
    policy_redirect_order: std::collections::VecDeque<u64>,
    /// (client ip, go-get import path) -> the host that answered the discovery: GOPROXY-
    /// protocol requests for that module to that host afterwards are a direct fetch from the
    /// module's origin (the `mod` VCS of a go-import tag), not a proxy. Bounded by
    /// MAX_POLICY_REDIRECTS, oldest forgotten first.
    go_get_origins: HashMap<(std::net::IpAddr, String), String>,
    go_get_order: std::collections::VecDeque<(std::net::IpAddr, String)>,
}

/// Bound on remembered redirects of allowed proxies, and on remembered go-get origins.
const MAX_POLICY_REDIRECTS: usize = 4096;

fn mv(module: &Option<String>, version: &Option<String>) -> String {
    crate::gomod::label_of(module, version).unwrap_or_else(|| "(no module)".into())
}

impl Detector {
    pub fn new() -> Detector {
        Detector::default()
    }

    /// Module@versions a go.sum file holds: their zips were verifiable without the sumdb.
    pub fn set_go_sum(&mut self, go_sum: HashSet<(String, String)>) {
        self.go_sum = go_sum;
    }

    /// Private module paths and allowed proxies: turns on private-module-leak (when there are
    /// private patterns) and unexpected-proxy (when there is an allow list).
    pub fn set_scope(&mut self, scope: Scope) {
        self.scope = scope;
    }

    /// What the integrity checks found on `ex`.
    pub fn on_integrity(&mut self, ev: crate::gomod::integrity::IntegrityEvent, ex: &Exchange) {
        use crate::gomod::integrity::IntegrityEvent as E;
        let evidence = |exchanges: Vec<u64>| Evidence {
            exchanges,
            flows: vec![ex.flow],
            packet: ex.packet,
            time: ex.start,
        };
        let (rule, message, module, version, ev_ex) = match ev {
            E::ChecksumMismatch {
                module,
                version,
                go_mod,
                downloaded,
                downloaded_from,
                expected,
                expected_from,
                exchanges,
            } => {
                let what = if go_mod {
                    format!("{module}@{version}/go.mod")
                } else {
                    format!("{module}@{version}")
                };
                (
                    Rule::ChecksumMismatch,
                    format!(
                        "verifying {what}: checksum mismatch: downloaded: \
                            {downloaded} (from {downloaded_from}); {expected_from}: \
                            {expected}. SECURITY ERROR: this download is not the module \
                            everyone else gets"
                    ),
                    Some(module),
                    Some(version),
                    exchanges,
                )
            }
            E::MirrorInconsistency {
                module,
                version,
                op,
                a,
                b,
                exchanges,
            } => (
                Rule::MirrorInconsistency,
                format!(
                    "{op} of {}: {a} and {b} served different bytes",
                    mv(&Some(module.clone()), &version)
                ),
                Some(module),
                version,
                exchanges,
            ),
            E::SignatureInvalid {
                name,
                key_hash,
                base,
                exchange,
            } => (
                Rule::SumdbSignatureInvalid,
                format!(
                    "signed tree note from {base}: the signature by \
                    {name}+{key_hash:08x} does not verify"
                ),
                None,
                None,
                vec![exchange],
            ),
            E::UnknownKey {
                names,
                base,
                exchange,
            } => (
                Rule::SumdbUnknownKey,
                format!(
                    "signed tree note from {base} is signed only by keys modtrace \
                    was not given: {}",
                    names.join(", ")
                ),
                None,
                None,
                vec![exchange],
            ),
            E::Fork {
                name,
                size,
                exchanges,
            } => (
                Rule::SumdbFork,
                format!(
                    "checksum database {name}: two signed tree heads of size \
                    {size} with different hashes"
                ),
                None,
                None,
                exchanges,
            ),
            E::ProofMismatch {
                module,
                version,
                record_id,
                exchanges,
            } => (
                Rule::SumdbProofMismatch,
                format!(
                    "record {record_id} for {module}@{version} is not the leaf \
                    the covering tile holds"
                ),
                Some(module),
                Some(version),
                exchanges,
            ),
        };
        self.findings.push(
            Finding::new(rule, crate::redact::text(&message), evidence(ev_ex))
                .about(module, version),
        );
        self.touched.push(self.findings.len() - 1);
    }

    /// Finding indices created or changed since the last call.
    pub fn take_touched(&mut self) -> Vec<usize> {
        std::mem::take(&mut self.touched)
    }

    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    pub fn on_exchange(&mut self, ex: &Exchange, t: &TrackOutcome, tracker: &Tracker) {
        let plain = ex.scheme == "http";
        let target = mv(&ex.module, &ex.version);

        if plain && ex.op.is_module_fetch() {
            let key = format!("pmf|{target}|{}", ex.server);
            self.raise_at(key, ex, || {
                Finding::new(
                    Rule::PlaintextModuleFetch,
                    format!(
                        "{target} requested over plain HTTP from {} ({}, client {}): \
                        anyone on this leg can read and replace it",
                        ex.base, ex.server, ex.client
                    ),
                    Evidence::of(ex),
                )
                .about(ex.module.clone(), ex.version.clone())
            });
        }
        if plain && ex.op.is_sumdb() {
            let key = format!("psd|{}", ex.base);
            self.raise_at(key, ex, || {
                Finding::new(
                    Rule::PlaintextSumdb,
                    format!(
                        "checksum database {} reached over plain HTTP (server {}, client {})",
                        ex.base, ex.server, ex.client
                    ),
                    Evidence::of(ex),
                )
            });
        }
        if let Some(c) = &ex.credential {
            if plain {
                let user = c.user.as_deref().unwrap_or("-");
                let key = format!(
                    "cred|{}|{}|{}|{}",
                    ex.client.ip(),
                    ex.server,
                    c.scheme,
                    user
                );
                self.raise_at(key, ex, || {
                    // One finding per leg and user, whatever modules went over it.
                    Finding::new(
                        Rule::CredentialsInPlaintext,
                        format!(
                            "{} credentials (user {user}, in {}) sent over plain HTTP \
                            from {} to {} ({}); the secret is not shown",
                            c.scheme,
                            c.source,
                            ex.client.ip(),
                            ex.server,
                            ex.base
                        ),
                        Evidence::of(ex),
                    )
                });
            }
        }
        if plain && !self.failed_https.is_empty() {
            let host = crate::gomod::goenv::host_only(
                ex.host.as_deref().unwrap_or(&ex.server.ip().to_string()),
            );
            if let Some(failed) = self
                .failed_https
                .get(&(ex.client.ip(), host.clone()))
                .cloned()
            {
                if failed.time <= ex.start {
                    let key = format!("insecure-fb|{}|{host}", ex.client.ip());
                    self.raise_at(key, ex, || {
                        Finding::new(
                            Rule::InsecureFallback,
                            format!(
                            "HTTPS to {host} failed (flow {}), then {} sent {} {} over plain HTTP",
                            failed.flows.first().copied().unwrap_or(0),
                            ex.client.ip(),
                            ex.method,
                            ex.url
                        ),
                            Evidence {
                                exchanges: vec![ex.id],
                                flows: [failed.flows.clone(), vec![ex.flow]].concat(),
                                packet: failed.packet,
                                time: failed.time,
                            },
                        )
                        .about(ex.module.clone(), ex.version.clone())
                    });
                }
            }
        }
        if ex.op == Op::Lookup {
            if let (Some(m), Some(v)) = (&ex.module, &ex.version) {
                self.lookups.insert((m.clone(), v.clone()));
            }
        }
        if matches!(ex.op, Op::Zip | Op::Toolchain) && ex.status == Some(200) {
            if let (Some(m), Some(v)) = (&ex.module, &ex.version) {
                let k = (m.clone(), v.clone());
                match self.zip_index.get(&k) {
                    Some(&i) => self.zips[i].evidence.add(ex),
                    None => {
                        self.zip_index.insert(k, self.zips.len());
                        self.zips.push(ZipSeen {
                            module: m.clone(),
                            version: v.clone(),
                            evidence: Evidence::of(ex),
                        });
                    }
                }
            }
        }
        if let Some(fb) = &t.fallback {
            self.on_fallback(fb);
        }
        if let Some(ci) = t.chain {
            let chain = tracker.chain(ci);
            let first = chain.exchanges.first().copied().unwrap_or(ex.id);
            let what = mv(&chain.module, &chain.version);
            if chain.revisits || bounces(chain) {
                let key = format!("loop|{first}");
                let origins = chain.origins().join(" <-> ");
                self.raise_at(key, ex, || {
                    Finding::new(
                        Rule::RedirectLoop,
                        format!("redirect loop for {} of {what} between {origins}", chain.op),
                        Evidence::of(ex),
                    )
                    .about(chain.module.clone(), chain.version.clone())
                });
            }
            if chain.redirects >= 10 {
                let key = format!("limit|{first}");
                self.raise_at(key, ex, || {
                    Finding::new(
                        Rule::RedirectLimit,
                        format!(
                            "{} of {what}: 10 redirects in a row; the go command stops \
                            here (\"stopped after 10 redirects\")",
                            chain.op
                        ),
                        Evidence::of(ex),
                    )
                    .about(chain.module.clone(), chain.version.clone())
                });
            }
            if let Some(loc) = ex.location.as_deref() {
                if ex.url.starts_with("https://") && loc.starts_with("http://") {
                    let key = format!("insecure|{}", ex.id);
                    self.raise_at(key, ex, || {
                        Finding::new(
                            Rule::InsecureRedirect,
                            format!(
                                "{} redirected from {} to plain-HTTP {loc}",
                                ex.server, ex.url
                            ),
                            Evidence::of(ex),
                        )
                        .about(ex.module.clone(), ex.version.clone())
                    });
                }
            }
            // Every exchange of a looping chain is evidence of the loop.
            for key in [format!("loop|{first}"), format!("limit|{first}")] {
                if let Some(&i) = self.keys.get(&key) {
                    self.findings[i].evidence.add(ex);
                }
            }
        }
        self.check_policy(ex);
    }

    /// private-module-leak and unexpected-proxy (README "Policy").
    fn check_policy(&mut self, ex: &Exchange) {
        let scope = &self.scope;
        if scope.no_proxy.is_empty() && scope.no_sumdb.is_empty() && scope.allowed.is_none() {
            return;
        }
        let host_of = |url: &str| {
            crate::gomod::path::split_url(url)
                .map(|u| crate::gomod::goenv::host_only(u.authority))
                .unwrap_or_default()
        };
        if ex.op == Op::GoGet && ex.status == Some(200) {
            if let Some(m) = &ex.module {
                let k = (ex.client.ip(), m.clone());
                if self
                    .go_get_origins
                    .insert(k.clone(), host_of(&ex.base))
                    .is_none()
                {
                    self.go_get_order.push_back(k);
                }
                while self.go_get_order.len() > MAX_POLICY_REDIRECTS {
                    if let Some(old) = self.go_get_order.pop_front() {
                        self.go_get_origins.remove(&old);
                    }
                }
            }
            return;
        }
        // The module's origin after go-get discovery (GOPROXY=direct, GOPRIVATE): a direct
        // fetch, which is what GOPRIVATE asks for.
        let direct = ex.op.is_proxy()
            && ex.module.as_deref().is_some_and(|m| {
                let host = host_of(&ex.base);
                let mut prefix = m;
                loop {
                    if self
                        .go_get_origins
                        .get(&(ex.client.ip(), prefix.to_string()))
                        .is_some_and(|h| *h == host)
                    {
                        return true;
                    }
                    match prefix.rsplit_once('/') {
                        Some((p, _)) => prefix = p,
                        None => return false,
                    }
                }
            });
        if direct {
            return;
        }
        let env_note = |base: &str| match scope.in_env_goproxy(base) {
            Some(true) => "; the GOPROXY of --go-env names it",
            Some(false) => "; the GOPROXY of --go-env does not name it",
            None => "",
        };
        // A request an allowed base redirected belongs to that base.
        let (via_private, via_allowed) = ex
            .redirect_from
            .and_then(|id| self.policy_redirects.get(&id).copied())
            .unwrap_or((false, false));
        let private_proxy = via_private || scope.is_private_proxy(&ex.base);
        let allowed = scope.is_allowed(&ex.base).map(|a| a || via_allowed);
        let target = mv(&ex.module, &ex.version);
        let unexpected_note = env_note(&ex.base);
        if let Some(m) = ex.module.as_deref() {
            let leak = if ex.op.is_proxy() && !private_proxy {
                scope.private_for_proxy(m).map(|pat| {
                    format!(
                        "{target} matches the private pattern `{pat}` but was \
                            requested from the proxy {} ({}, client {}): \
                            GOPRIVATE/GONOPROXY did not keep the private path from it{}",
                        ex.base,
                        ex.server,
                        ex.client,
                        env_note(&ex.base)
                    )
                })
            } else if ex.op == Op::Lookup {
                scope.private_for_sumdb(m).map(|pat| {
                    format!(
                        "{target} matches the private pattern `{pat}` but was looked \
                            up in the checksum database {} ({}, client {}): \
                            GOPRIVATE/GONOSUMDB did not keep the private path from it",
                        ex.base, ex.server, ex.client
                    )
                })
            } else {
                None
            };
            if let Some(message) = leak {
                let key = format!("leak|{m}|{}", ex.base);
                self.raise_at(key.clone(), ex, || {
                    Finding::new(Rule::PrivateModuleLeak, message, Evidence::of(ex))
                        .about(ex.module.clone(), ex.version.clone())
                });
                self.fill_version(&key, ex);
            }
            let served = matches!(ex.op, Op::Info | Op::Mod | Op::Zip | Op::Toolchain)
                && ex.status == Some(200);
            if served && allowed == Some(false) {
                let key = format!("unexp|{m}|{}", ex.base);
                self.raise_at(key.clone(), ex, || {
                    Finding::new(
                        Rule::UnexpectedProxy,
                        format!(
                            "{target} served by {} ({}, client {}), which is not an \
                            allowed proxy{unexpected_note}",
                            ex.base, ex.server, ex.client
                        ),
                        Evidence::of(ex),
                    )
                    .about(ex.module.clone(), ex.version.clone())
                });
                self.fill_version(&key, ex);
            }
        }
        let redirect = ex.location.is_some()
            && ex
                .status
                .is_some_and(|s| (300..400).contains(&s) && s != 304);
        if redirect && (private_proxy || allowed == Some(true)) {
            self.policy_redirects
                .insert(ex.id, (private_proxy, allowed == Some(true)));
            self.policy_redirect_order.push_back(ex.id);
            while self.policy_redirect_order.len() > MAX_POLICY_REDIRECTS {
                if let Some(old) = self.policy_redirect_order.pop_front() {
                    self.policy_redirects.remove(&old);
                }
            }
        }
    }

    /// A finding keyed per module (not version) takes the first version seen.
    fn fill_version(&mut self, key: &str, ex: &Exchange) {
        if let Some(f) = self.keys.get(key).and_then(|&i| self.findings.get_mut(i)) {
            if f.version.is_none() {
                f.version.clone_from(&ex.version);
            }
        }
    }

    /// The go command went on to the next GOPROXY entry. After 404/410 that is the list
    /// working as meant (info); after any other error only a `|` separator goes on, and then
    /// whoever can make the first entry fail (refuse, reset, break TLS, answer 500) decides
    /// which proxy serves every module (low).
    pub fn on_fallback(&mut self, fb: &crate::gomod::journey::Fallback) {
        use crate::gomod::journey::FallbackFrom;
        let target = mv(&fb.module, &fb.version);
        let (key, what, evidence) = match &fb.from {
            FallbackFrom::Exchange { id, base, status } => (
                format!("fb|{id}|{}", fb.exchange),
                match status {
                    Some(404 | 410) => {
                        format!("after a 404/410 from the previous GOPROXY entry (exchange {id})")
                    }
                    Some(s) => format!("after HTTP {s} from {base} (exchange {id})"),
                    None => format!("after {base} did not answer (exchange {id})"),
                },
                Evidence {
                    exchanges: vec![*id, fb.exchange],
                    flows: vec![fb.flow],
                    packet: fb.packet,
                    time: fb.time,
                },
            ),
            FallbackFrom::Failed {
                flow,
                packet,
                time,
                target: to,
                failure,
            } => (
                format!("fbx|{flow}|{}", fb.exchange),
                format!(
                    "after the connection to {to} {} (flow {flow}, no request sent; \
                    inferred from order and time)",
                    failure.describe()
                ),
                Evidence {
                    exchanges: vec![fb.exchange],
                    flows: vec![*flow, fb.flow],
                    packet: *packet,
                    time: *time,
                },
            ),
        };
        let not_found = fb.after_not_found();
        let message = if not_found {
            // Kept word for word: reports of 404/410 fallbacks are unchanged.
            format!("{} of {target}: fell back to {} {what}", fb.op, fb.base)
        } else {
            let list = match fb.pipe {
                Some(true) => "GOPROXY has `|` there",
                _ => "only a `|` separator in GOPROXY goes on after that",
            };
            format!(
                "{} of {target}: fell back to {} {what}; {list}, so anyone who can make the \
                earlier entry fail on the network diverts every request to the next one",
                fb.op, fb.base
            )
        };
        self.raise(
            key,
            |_| {},
            || {
                let mut f = Finding::new(Rule::ProxyFallback, message, evidence)
                    .about(fb.module.clone(), fb.version.clone());
                if !not_found {
                    f.severity = Severity::Low;
                }
                f
            },
        );
    }

    fn raise_at(&mut self, key: String, ex: &Exchange, make: impl FnOnce() -> Finding) {
        self.raise(key, |f| f.evidence.add(ex), make);
    }

    /// The finding under `key`: grown by `grow` when it exists, else made by `make`.
    fn raise(
        &mut self,
        key: String,
        grow: impl FnOnce(&mut Finding),
        make: impl FnOnce() -> Finding,
    ) {
        let i = match self.keys.get(&key) {
            Some(&i) => {
                grow(&mut self.findings[i]);
                i
            }
            None => {
                let mut f = make();
                // Messages quote URLs: their secrets are masked like the exchanges' own.
                f.message = crate::redact::text(&f.message);
                self.findings.push(f);
                self.keys.insert(key, self.findings.len() - 1);
                self.findings.len() - 1
            }
        };
        if !self.touched.contains(&i) {
            self.touched.push(i);
        }
    }

    fn raise_tls(
        &mut self,
        key: String,
        r: &tls::TlsRecord,
        make: impl FnOnce(Evidence) -> Finding,
    ) {
        let ev = Evidence {
            exchanges: Vec::new(),
            flows: vec![r.flow],
            packet: r.cert_packet.max(1),
            time: r.cert_ts,
        };
        let i = match self.keys.get(&key) {
            Some(&i) => {
                let e = &mut self.findings[i].evidence;
                if !e.flows.contains(&r.flow) {
                    e.flows.push(r.flow);
                }
                i
            }
            None => {
                self.findings.push(make(ev));
                self.keys.insert(key, self.findings.len() - 1);
                self.findings.len() - 1
            }
        };
        if !self.touched.contains(&i) {
            self.touched.push(i);
        }
    }

    /// A TLS flow ended: its certificate checks and version.
    pub fn on_tls(&mut self, r: &tls::TlsRecord) {
        let leaf = r.leaf();
        let (subject, issuer, fp) = leaf.map_or(("-", "-", "-"), |c| {
            (c.subject.as_str(), c.issuer.as_str(), c.sha256.as_str())
        });
        let name = r.name();
        if let Some(v) = r.validation.as_ref().filter(|v| !v.is_valid()) {
            let reason = v.reason.map_or("invalid", |x| x.as_str());
            let key = format!("{}|{}|{}|{}", r.client.ip(), r.server, name, fp);
            // The same chain is either accepted (nobody verified it) or refused (blocked).
            let outcome = match r.accepted {
                Some(true) => Some((
                    Rule::UnverifiedTls,
                    "unv",
                    "accepted an invalid certificate from",
                )),
                Some(false) => Some((Rule::TlsRejected, "rej", "refused the certificate of")),
                None => None,
            };
            if let Some((rule, tag, verb)) = outcome {
                let message = format!(
                    "{} {verb} {} (SNI {}): {reason}; subject {subject}, issuer \
                        {issuer}, sha256 {fp}",
                    r.client.ip(),
                    r.server,
                    r.sni.as_deref().unwrap_or("none")
                );
                self.raise_tls(format!("{tag}|{key}"), r, |ev| {
                    Finding::new(rule, message, ev)
                });
            }
        }
        if let (Some(host), Some(pv)) = (&r.go_host, &r.public_validation) {
            if !pv.is_valid() {
                let reason = pv.reason.map_or("invalid", |x| x.as_str());
                self.raise_tls(format!("icpt|{host}|{fp}"), r, |ev| {
                    Finding::new(
                        Rule::TlsInterception,
                        format!(
                            "{host}, named by the Go environment as a proxy or checksum \
                            database, presented a certificate the public roots reject \
                            ({reason}): subject {subject}, issuer {issuer}, sha256 {fp}"
                        ),
                        ev,
                    )
                });
            }
        }
        if r.legacy() {
            let version = r.version.clone().unwrap_or_default();
            self.raise_tls(format!("legacy|{}|{}", r.client.ip(), r.server), r, |ev| {
                Finding::new(
                    Rule::LegacyTls,
                    format!(
                        "{} negotiated {version} with {} ({name})",
                        r.client.ip(),
                        r.server
                    ),
                    ev,
                )
            });
        }
        if let Some(d) = r.decryption.as_ref().filter(|d| d.records_failed > 0) {
            let message = format!(
                "{} of {} records of the session {} -> {} ({name}) did not \
                    decrypt with the logged secrets; first: {}",
                d.records_failed,
                d.records_failed.saturating_add(d.records_decrypted),
                r.client,
                r.server,
                d.first_failure.as_deref().unwrap_or("-")
            );
            let packet = d.first_failure_packet.unwrap_or(r.packet);
            self.raise_tls(format!("decrypt|{}", r.flow), r, |mut ev| {
                ev.packet = packet;
                Finding::new(Rule::TlsDecryptFailed, message, ev)
            });
        }
        if r.is_tls13() && r.certificates_hidden && r.certificates.is_empty() {
            self.hidden_count += 1;
            let ev = self.hidden_tls.get_or_insert_with(|| Evidence {
                exchanges: Vec::new(),
                flows: Vec::new(),
                packet: r.packet,
                time: r.start,
            });
            if ev.flows.len() < 64 {
                ev.flows.push(r.flow);
            }
        }
        if !r.handshake_complete || r.accepted == Some(false) {
            let host = r
                .sni
                .clone()
                .unwrap_or_else(|| r.server.ip().to_string())
                .to_ascii_lowercase();
            self.failed_https
                .entry((r.client.ip(), host))
                .or_insert(Evidence {
                    exchanges: Vec::new(),
                    flows: vec![r.flow],
                    packet: r.packet,
                    time: r.start,
                });
        }
    }

    /// A retransmission carried different bytes than the original.
    pub fn on_injection(&mut self, flow: FlowId, packet: u64, ts: Ts, what: String) {
        let key = format!("inj|{flow}");
        if let Some(&i) = self.keys.get(&key) {
            self.touched.push(i);
            return;
        }
        self.findings.push(Finding::new(
            Rule::TcpInjection,
            what,
            Evidence {
                exchanges: Vec::new(),
                flows: vec![flow],
                packet,
                time: ts,
            },
        ));
        self.keys.insert(key, self.findings.len() - 1);
        self.touched.push(self.findings.len() - 1);
    }

    /// The kernel dropped packets during a live capture (pcap statistics): one finding, its
    /// message updated as the count grows. `packet`/`ts` are those of the last packet read
    /// when the drops were noticed.
    pub fn on_capture_drops(&mut self, dropped: u64, received: u64, packet: u64, ts: Ts) {
        let message = format!(
            "the kernel dropped {dropped} of {received} packets before \
                modtrace could read them: exchanges, journeys and findings \
                may be missing or incomplete"
        );
        if let Some(&i) = self.keys.get("drops") {
            if let Some(f) = self.findings.get_mut(i) {
                if f.message != message {
                    f.message = message;
                    self.touched.push(i);
                }
            }
            return;
        }
        self.findings.push(Finding::new(
            Rule::CaptureDrops,
            message,
            Evidence {
                exchanges: Vec::new(),
                flows: Vec::new(),
                packet,
                time: ts,
            },
        ));
        self.keys.insert("drops".into(), self.findings.len() - 1);
        self.touched.push(self.findings.len() - 1);
    }

    /// Sets the owning processes of finding `i` (live capture; see `Finding::process`).
    pub fn set_process(&mut self, i: usize, process: Option<String>) {
        if let Some(f) = self.findings.get_mut(i) {
            f.process = process;
        }
    }

    /// End of capture: rules that need to have seen everything.
    pub fn finish(&mut self) {
        if let Some(ev) = self.hidden_tls.take() {
            self.findings.push(Finding::new(
                Rule::TlsCertificateHidden,
                format!(
                    "{} TLS 1.3 session(s) whose certificates are encrypted: \
                        modtrace cannot tell whether they were verified without a \
                        key log",
                    self.hidden_count
                ),
                ev,
            ));
            self.touched.push(self.findings.len() - 1);
        }
        for z in std::mem::take(&mut self.zips) {
            // A lookup anywhere, or a go.sum file given, verified (or could verify) the zip.
            let k = (z.module.clone(), z.version.clone());
            if self.lookups.contains(&k) || self.go_sum.contains(&k) {
                continue;
            }
            self.findings.push(
                Finding::new(
                    Rule::NoChecksumVerification,
                    format!(
                        "{}@{} zip downloaded with no checksum-database lookup \
                        anywhere in the capture: the checksum database was bypassed, \
                        unless go.sum already held the hash",
                        z.module, z.version
                    ),
                    z.evidence,
                )
                .about(Some(z.module), Some(z.version)),
            );
            self.touched.push(self.findings.len() - 1);
        }
    }

    pub fn into_findings(self) -> Vec<Finding> {
        let mut f = self.findings;
        // Most severe first, then by first packet: stable for reports and tests.
        f.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then(a.evidence.packet.cmp(&b.evidence.packet))
                .then(a.rule.cmp(&b.rule))
        });
        f
    }
}

/// A chain that keeps going between the same two origins (A -> B -> A ...) bounces even when
/// the URLs differ each time.
fn bounces(chain: &crate::gomod::Chain) -> bool {
    let origins = chain.origins();
    chain.redirects >= 3 && origins.len() <= 2 && chain.urls.len() > origins.len() + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gomod::journey::tests::ex;
    use crate::gomod::Credential;

    fn run(exchanges: Vec<Exchange>) -> Vec<Finding> {
        let mut t = Tracker::new();
        let mut d = Detector::new();
        for mut e in exchanges {
            let o = t.on_exchange(&mut e);
            d.on_exchange(&e, &o, &t);
        }
        d.finish();
        d.into_findings()
    }

    fn rules(f: &[Finding]) -> Vec<&'static str> {
        let mut v: Vec<_> = f.iter().map(|f| f.rule.id()).collect();
        v.sort();
        v
    }

    #[test]
    fn plaintext_fetch_aggregates_per_module_and_server() {
        let base = "http://127.0.0.1:8081/example.test/%21util/@v/v0.2.0";
        let f = run(vec![
            ex(
                1,
                "127.0.0.1:40000",
                "127.0.0.1:8081",
                &format!("{base}.info"),
                200,
                0,
                1,
            ),
            ex(
                2,
                "127.0.0.1:40000",
                "127.0.0.1:8081",
                &format!("{base}.mod"),
                200,
                1,
                2,
            ),
            ex(
                3,
                "127.0.0.1:40000",
                "127.0.0.1:8081",
                &format!("{base}.zip"),
                200,
                2,
                3,
            ),
        ]);
        assert_eq!(
            rules(&f),
            ["no-checksum-verification", "plaintext-module-fetch"]
        );
        let p = f
            .iter()
            .find(|f| f.rule == Rule::PlaintextModuleFetch)
            .unwrap();
        assert_eq!(p.evidence.exchanges, [1, 2, 3]);
        assert_eq!(p.module.as_deref(), Some("example.test/Util"));
        assert_eq!(p.evidence.packet, 10);
    }

    #[test]
    fn https_with_lookup_is_clean() {
        let f = run(vec![
            ex(
                1,
                "10.0.0.1:40000",
                "10.0.0.2:443",
                "https://proxy.test/example.test/x/@v/v1.0.0.zip",
                200,
                0,
                1,
            ),
            ex(
                2,
                "10.0.0.1:40001",
                "10.0.0.3:443",
                "https://sum.test/lookup/example.test/x@v1.0.0",
                200,
                1,
                2,
            ),
        ]);
        assert!(f.is_empty(), "{f:#?}");
    }

    #[test]
    fn plaintext_sumdb_and_fallback() {
        let f = run(vec![
            ex(
                1,
                "10.0.0.1:1",
                "10.0.0.2:80",
                "http://a.test/example.test/x/@v/v1.0.0.zip",
                404,
                0,
                1,
            ),
            ex(
                2,
                "10.0.0.1:2",
                "10.0.0.3:443",
                "https://b.test/example.test/x/@v/v1.0.0.zip",
                200,
                1,
                2,
            ),
            ex(
                3,
                "10.0.0.1:3",
                "10.0.0.4:80",
                "http://sum.test/lookup/example.test/x@v1.0.0",
                200,
                2,
                3,
            ),
        ]);
        assert_eq!(
            rules(&f),
            [
                "plaintext-module-fetch",
                "plaintext-sumdb",
                "proxy-fallback"
            ]
        );
        let fb = f.iter().find(|f| f.rule == Rule::ProxyFallback).unwrap();
        assert_eq!(fb.evidence.exchanges, [1, 2]);
        assert_eq!(
            fb.severity,
            Severity::Info,
            "404/410: the list working as meant"
        );
    }

    #[test]
    fn fallback_after_an_error_is_low_and_names_the_separator() {
        let f = run(vec![
            ex(
                1,
                "10.0.0.1:1",
                "10.0.0.2:443",
                "https://a.test/example.test/x/@v/v1.0.0.zip",
                503,
                0,
                1,
            ),
            ex(
                2,
                "10.0.0.1:2",
                "10.0.0.3:443",
                "https://b.test/example.test/x/@v/v1.0.0.zip",
                200,
                1,
                2,
            ),
        ]);
        let fb = f.iter().find(|f| f.rule == Rule::ProxyFallback).unwrap();
        assert_eq!(fb.severity, Severity::Low);
        assert!(
            fb.message.contains("after HTTP 503 from https://a.test"),
            "{}",
            fb.message
        );
        assert!(fb.message.contains("`|`"), "{}", fb.message);
        assert_eq!(fb.evidence.exchanges, [1, 2]);
    }

    #[test]
    fn fallback_after_a_refused_connection_points_at_it() {
        use crate::gomod::journey::{Attempt, AttemptFailure};
        let mut t = Tracker::new();
        let mut d = Detector::new();
        let refused = Attempt {
            flow: 7,
            client: "10.0.0.1:5".parse().unwrap(),
            server: "10.0.0.2:8080".parse().unwrap(),
            server_name: None,
            start: Ts(0),
            last: Ts(1_000),
            packet: 70,
            failure: AttemptFailure::Refused,
            tls: false,
            process: None,
            detail: None,
        };
        assert!(t.on_failed_attempt(refused).is_none());
        let mut e = ex(
            2,
            "10.0.0.1:6",
            "10.0.0.3:443",
            "https://b.test/example.test/x/@v/v1.0.0.info",
            200,
            1,
            2,
        );
        let o = t.on_exchange(&mut e);
        d.on_exchange(&e, &o, &t);
        let fb = d
            .findings()
            .iter()
            .find(|f| f.rule == Rule::ProxyFallback)
            .expect("proxy-fallback");
        assert_eq!(fb.severity, Severity::Low);
        assert!(
            fb.message
                .contains("connection to 10.0.0.2:8080 was refused (flow 7"),
            "{}",
            fb.message
        );
        assert_eq!(fb.evidence.flows, [7, e.flow]);
        assert_eq!(fb.evidence.packet, 70);
        assert_eq!(fb.module.as_deref(), Some("example.test/x"));
    }

    #[test]
    fn credentials_never_carry_the_secret() {
        let mut e = ex(
            1,
            "127.0.0.1:5",
            "127.0.0.1:8087",
            "http://127.0.0.1:8087/example.test/x/@v/list",
            200,
            0,
            1,
        );
        e.credential = Some(Credential {
            scheme: "Basic".into(),
            user: Some("mirror".into()),
            source: "authorization".into(),
            secret: Some("Basic bWlycm9yOmxhYi1zZWNyZXQ=".into()),
            raw_url: None,
        });
        let f = run(vec![e]);
        let c = f
            .iter()
            .find(|f| f.rule == Rule::CredentialsInPlaintext)
            .unwrap();
        assert!(c.message.contains("mirror") && c.message.contains("Basic"));
        assert_eq!(c.severity, Severity::High);
    }

    #[test]
    fn redirect_loop_and_limit_once_per_chain() {
        let a = "http://127.0.0.1:8084/example.test/x/@v/v1.0.0.info";
        let b = "http://127.0.0.1:8085/example.test/x/@v/v1.0.0.info";
        let mut v = Vec::new();
        for i in 0..10u64 {
            let (url, srv, loc) = if i % 2 == 0 {
                (a, "127.0.0.1:8084", b)
            } else {
                (b, "127.0.0.1:8085", a)
            };
            let mut e = ex(i + 1, "127.0.0.1:40000", srv, url, 302, i as i64, i as i64);
            e.location = Some(loc.into());
            v.push(e);
        }
        let f = run(v);
        assert_eq!(f.iter().filter(|f| f.rule == Rule::RedirectLoop).count(), 1);
        assert_eq!(
            f.iter().filter(|f| f.rule == Rule::RedirectLimit).count(),
            1
        );
        let l = f.iter().find(|f| f.rule == Rule::RedirectLoop).unwrap();
        assert_eq!(
            l.evidence.exchanges.len(),
            9,
            "every exchange after the loop closed is evidence"
        );
        // Nine redirects are not the go command's limit.
        let mut v = Vec::new();
        for i in 0..9u64 {
            let url = format!("http://127.0.0.1:8084/example.test/x/@v/v1.0.{i}.info");
            let mut e = ex(
                i + 1,
                "127.0.0.1:40000",
                "127.0.0.1:8084",
                &url,
                302,
                i as i64,
                i as i64,
            );
            e.location = Some(format!(
                "http://127.0.0.1:8084/example.test/x/@v/v1.0.{}.info",
                i + 1
            ));
            v.push(e);
        }
        let f = run(v);
        assert!(!f.iter().any(|f| f.rule == Rule::RedirectLimit));
    }

    #[test]
    fn https_to_http_redirect() {
        let mut e = ex(
            1,
            "10.0.0.1:1",
            "10.0.0.2:443",
            "https://m.test/example.test/x/@v/v1.0.0.mod",
            301,
            0,
            1,
        );
        e.location = Some("http://m.test/example.test/x/@v/v1.0.0.mod".into());
        let f = run(vec![e]);
        assert!(f.iter().any(|f| f.rule == Rule::InsecureRedirect), "{f:#?}");
    }
}

#[cfg(test)]
mod policy_tests {
    use super::*;
    use crate::gomod::journey::tests::ex;
    use crate::policy::Policy;

    fn run(policy: &str, exchanges: Vec<Exchange>) -> Vec<Finding> {
        let mut t = Tracker::new();
        let mut d = Detector::new();
        d.set_scope(Policy::from_toml(policy, "p").unwrap().scope());
        for mut e in exchanges {
            let o = t.on_exchange(&mut e);
            d.on_exchange(&e, &o, &t);
        }
        d.finish();
        d.into_findings()
            .into_iter()
            .filter(|f| matches!(f.rule, Rule::PrivateModuleLeak | Rule::UnexpectedProxy))
            .collect()
    }

    fn get(id: u64, server: &str, url: &str, status: u16) -> Exchange {
        ex(
            id,
            "10.0.0.1:40000",
            server,
            url,
            status,
            id as i64,
            id as i64,
        )
    }

    #[test]
    fn private_paths_at_a_proxy_or_sumdb_leak_once_per_module_and_server() {
        let v = vec![
            get(
                1,
                "10.0.0.2:443",
                "https://proxy.test/corp.example/x/@v/list",
                200,
            ),
            get(
                2,
                "10.0.0.2:443",
                "https://proxy.test/corp.example/x/@v/v1.0.0.info",
                404,
            ),
            get(
                3,
                "10.0.0.3:443",
                "https://sum.test/lookup/corp.example/x@v1.0.0",
                200,
            ),
            get(
                4,
                "10.0.0.2:443",
                "https://proxy.test/public.example/y/@v/v1.0.0.info",
                200,
            ),
            // Tiles carry no module path: nothing leaks through them.
            get(5, "10.0.0.3:443", "https://sum.test/tile/8/0/000", 200),
        ];
        let f = run("private = \"corp.example\"", v);
        assert_eq!(f.len(), 2, "{f:#?}");
        let proxy = &f[0];
        assert_eq!(proxy.rule, Rule::PrivateModuleLeak);
        assert_eq!(proxy.evidence.exchanges, [1, 2]);
        assert_eq!(proxy.module.as_deref(), Some("corp.example/x"));
        assert_eq!(
            proxy.version.as_deref(),
            Some("v1.0.0"),
            "first version seen"
        );
        assert!(
            proxy.message.contains("`corp.example`")
                && proxy.message.contains("https://proxy.test")
        );
        assert!(f[1].message.contains("checksum database https://sum.test"));
        assert!(run(
            "",
            vec![get(
                1,
                "10.0.0.2:443",
                "https://proxy.test/corp.example/x/@v/list",
                200
            )]
        )
        .is_empty());
    }

    #[test]
    fn allowed_proxies_and_their_redirects() {
        let pol =
            "private = [\"corp.example\"]\nallowed_proxies = [\"https://proxy.corp.test/go\"]";
        let mut redirect = get(
            1,
            "10.0.0.2:443",
            "https://proxy.corp.test/go/corp.example/x/@v/v1.0.0.zip",
            302,
        );
        redirect.location = Some("https://blob.test/z?sig=***".into());
        let blob = get(2, "10.0.0.4:443", "https://blob.test/z?sig=***", 200);
        let other = get(
            3,
            "10.0.0.5:443",
            "https://other.test/public.example/y/@v/v1.0.0.mod",
            200,
        );
        let failed = get(
            4,
            "10.0.0.5:443",
            "https://other.test/public.example/y/@v/v1.0.1.mod",
            404,
        );
        let f = run(pol, vec![redirect, blob, other, failed]);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].rule, Rule::UnexpectedProxy);
        assert_eq!(f[0].evidence.exchanges, [3], "404 served nothing");
        assert_eq!(f[0].severity, Severity::Medium);
        // The same path under another prefix of the host is not the allowed proxy.
        let f = run(
            pol,
            vec![get(
                1,
                "10.0.0.2:443",
                "https://proxy.corp.test/gopher/corp.example/x/@v/list",
                200,
            )],
        );
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].rule, Rule::PrivateModuleLeak);
    }

    #[test]
    fn direct_fetch_after_go_get_is_not_a_proxy() {
        let pol = "private = [\"corp.example\"]\nallowed_proxies = []";
        let goget = get(1, "10.0.0.2:443", "https://corp.example/x?go-get=1", 200);
        let info = get(
            2,
            "10.0.0.2:80",
            "http://corp.example/corp.example/x/@v/v1.0.0.info",
            200,
        );
        // Another host answering the proxy protocol for it is still a proxy.
        let elsewhere = get(
            3,
            "10.0.0.3:443",
            "https://proxy.test/corp.example/x/@v/v1.0.0.info",
            200,
        );
        let f = run(pol, vec![goget, info, elsewhere]);
        let ids: Vec<_> = f
            .iter()
            .map(|f| (f.rule, f.evidence.exchanges.clone()))
            .collect();
        assert_eq!(
            ids,
            [
                (Rule::PrivateModuleLeak, vec![3]),
                (Rule::UnexpectedProxy, vec![3])
            ]
        );
    }
}

#[cfg(test)]
mod tls_tests {
    use super::tls::tests::record;
    use super::*;
    use crate::gomod::journey::tests::ex;

    fn rules_of(d: Detector) -> Vec<&'static str> {
        let mut v: Vec<_> = d.into_findings().iter().map(|f| f.rule.id()).collect();
        v.sort();
        v
    }

    #[test]
    fn invalid_chain_accepted_refused_or_unknown() {
        let mut d = Detector::new();
        d.on_tls(&record(1, "10.0.0.2:443", false, Some(true)));
        d.on_tls(&record(2, "10.0.0.2:443", false, Some(true)));
        d.on_tls(&record(3, "10.0.0.3:443", false, Some(false)));
        d.on_tls(&record(4, "10.0.0.4:443", false, None));
        d.on_tls(&record(5, "10.0.0.5:443", true, Some(true)));
        d.finish();
        let f = d.into_findings();
        let unv: Vec<_> = f.iter().filter(|f| f.rule == Rule::UnverifiedTls).collect();
        assert_eq!(unv.len(), 1, "one per client, server, name and leaf");
        assert_eq!(unv[0].evidence.flows, [1, 2]);
        assert!(unv[0].message.contains("self-signed") && unv[0].message.contains("CN=lab.test"));
        assert_eq!(f.iter().filter(|f| f.rule == Rule::TlsRejected).count(), 1);
        assert_eq!(
            f.len(),
            2,
            "an unknown outcome and a valid chain raise nothing: {f:#?}"
        );
    }

    #[test]
    fn interception_legacy_and_hidden() {
        let mut d = Detector::new();
        let mut r = record(1, "10.0.0.2:443", false, Some(false));
        r.go_host = Some("proxy.lab.test:443".into());
        r.public_validation = r.validation.clone();
        d.on_tls(&r);
        let mut old = record(2, "10.0.0.6:443", true, Some(true));
        old.version_code = Some(0x0301);
        old.version = Some("TLSv1.0".into());
        d.on_tls(&old);
        for flow in [3, 4] {
            let mut h = record(flow, "10.0.0.7:443", true, None);
            h.certificates.clear();
            h.validation = None;
            h.certificates_hidden = true;
            d.on_tls(&h);
        }
        d.finish();
        assert_eq!(
            rules_of(d),
            [
                "legacy-tls",
                "tls-certificate-hidden",
                "tls-interception",
                "tls-rejected"
            ]
        );
    }

    #[test]
    fn insecure_fallback_after_failed_https() {
        let mut d = Detector::new();
        let t = Tracker::new();
        d.on_tls(&record(1, "10.0.0.2:443", false, Some(false)));
        let mut e = ex(
            1,
            "10.0.0.1:50001",
            "10.0.0.2:80",
            "http://lab.test/Hello?go-get=1",
            200,
            2_000,
            2_001,
        );
        e.host = Some("lab.test".into());
        d.on_exchange(&e, &TrackOutcome::default(), &t);
        let f = d.into_findings();
        let fb = f
            .iter()
            .find(|f| f.rule == Rule::InsecureFallback)
            .expect("insecure-fallback");
        assert_eq!(fb.evidence.flows, [1, 1]);
        // Plain HTTP to a host whose HTTPS worked is no fallback.
        let mut d = Detector::new();
        d.on_tls(&record(1, "10.0.0.2:443", true, Some(true)));
        d.on_exchange(&e, &TrackOutcome::default(), &t);
        assert!(!d
            .findings()
            .iter()
            .any(|f| f.rule == Rule::InsecureFallback));
    }
}
