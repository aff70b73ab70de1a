//! Detectors: annotated exchanges and flow events in, findings with stable rule ids out.
//! Findings about the same thing are aggregated (one finding, growing evidence), keyed by what
//! the rule is about (a module at a server, a redirect chain, a credential on a leg).

pub mod rules;

pub use rules::{Rule, Severity, RULES};

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
        Evidence { exchanges: vec![ex.id], flows: vec![ex.flow], packet: ex.packet, time: ex.start }
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
}

fn mv(module: &Option<String>, version: &Option<String>) -> String {
    match (module, version) {
        (Some(m), Some(v)) => format!("{m}@{v}"),
        (Some(m), None) => m.clone(),
        _ => "(no module)".into(),
    }
}

impl Detector {
    pub fn new() -> Detector {
        Detector::default()
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
            self.raise_at(key, ex, || Finding {
                rule: Rule::PlaintextModuleFetch,
                severity: Rule::PlaintextModuleFetch.severity(),
                message: format!(
                    "{target} requested over plain HTTP from {} ({}, client {}): anyone on this leg can read and replace it",
                    ex.base, ex.server, ex.client
                ),
                module: ex.module.clone(),
                version: ex.version.clone(),
                evidence: Evidence::of(ex),
            });
        }
        if plain && ex.op.is_sumdb() {
            let key = format!("psd|{}", ex.base);
            self.raise_at(key, ex, || Finding {
                rule: Rule::PlaintextSumdb,
                severity: Rule::PlaintextSumdb.severity(),
                message: format!("checksum database {} reached over plain HTTP (server {}, client {})", ex.base, ex.server, ex.client),
                module: None,
                version: None,
                evidence: Evidence::of(ex),
            });
        }
        if let Some(c) = &ex.credential {
            if plain {
                let user = c.user.as_deref().unwrap_or("-");
                let key = format!("cred|{}|{}|{}|{}", ex.client.ip(), ex.server, c.scheme, user);
                self.raise_at(key, ex, || Finding {
                    rule: Rule::CredentialsInPlaintext,
                    severity: Rule::CredentialsInPlaintext.severity(),
                    message: format!(
                        "{} credentials (user {user}, in {}) sent over plain HTTP from {} to {} ({}); the secret is not shown",
                        c.scheme,
                        c.source,
                        ex.client.ip(),
                        ex.server,
                        ex.base
                    ),
                    module: ex.module.clone(),
                    version: ex.version.clone(),
                    evidence: Evidence::of(ex),
                });
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
                        self.zips.push(ZipSeen { module: m.clone(), version: v.clone(), evidence: Evidence::of(ex) });
                    }
                }
            }
        }
        if let Some(from) = t.fallback_from {
            let key = format!("fb|{from}|{}", ex.id);
            self.raise_at(key, ex, || Finding {
                rule: Rule::ProxyFallback,
                severity: Rule::ProxyFallback.severity(),
                message: format!("{} of {target}: fell back to {} after a 404/410 from the previous GOPROXY entry (exchange {from})", ex.op, ex.base),
                module: ex.module.clone(),
                version: ex.version.clone(),
                evidence: Evidence { exchanges: vec![from, ex.id], flows: vec![ex.flow], packet: ex.packet, time: ex.start },
            });
        }
        if let Some(ci) = t.chain {
            let chain = tracker.chain(ci);
            let first = chain.exchanges.first().copied().unwrap_or(ex.id);
            let what = mv(&chain.module, &chain.version);
            if chain.revisits || bounces(chain) {
                let key = format!("loop|{first}");
                let origins = chain.origins().join(" <-> ");
                self.raise_at(key, ex, || Finding {
                    rule: Rule::RedirectLoop,
                    severity: Rule::RedirectLoop.severity(),
                    message: format!("redirect loop for {} of {what} between {origins}", chain.op),
                    module: chain.module.clone(),
                    version: chain.version.clone(),
                    evidence: Evidence::of(ex),
                });
            }
            if chain.redirects >= 10 {
                let key = format!("limit|{first}");
                self.raise_at(key, ex, || Finding {
                    rule: Rule::RedirectLimit,
                    severity: Rule::RedirectLimit.severity(),
                    message: format!(
                        "{} of {what}: 10 redirects in a row; the go command stops here (\"stopped after 10 redirects\")",
                        chain.op
                    ),
                    module: chain.module.clone(),
                    version: chain.version.clone(),
                    evidence: Evidence::of(ex),
                });
            }
            if let Some(loc) = ex.location.as_deref() {
                if ex.url.starts_with("https://") && loc.starts_with("http://") {
                    let key = format!("insecure|{}", ex.id);
                    self.raise_at(key, ex, || Finding {
                        rule: Rule::InsecureRedirect,
                        severity: Rule::InsecureRedirect.severity(),
                        message: format!("{} redirected from {} to plain-HTTP {loc}", ex.server, ex.url),
                        module: ex.module.clone(),
                        version: ex.version.clone(),
                        evidence: Evidence::of(ex),
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
    }

    fn raise_at(&mut self, key: String, ex: &Exchange, make: impl FnOnce() -> Finding) {
        let i = match self.keys.get(&key) {
            Some(&i) => {
                self.findings[i].evidence.add(ex);
                i
            }
            None => {
                self.findings.push(make());
                self.keys.insert(key, self.findings.len() - 1);
                self.findings.len() - 1
            }
        };
        if !self.touched.contains(&i) {
            self.touched.push(i);
        }
    }

    /// A retransmission carried different bytes than the original.
    pub fn on_injection(&mut self, flow: FlowId, packet: u64, ts: Ts, what: String) {
        let key = format!("inj|{flow}");
        if let Some(&i) = self.keys.get(&key) {
            self.touched.push(i);
            return;
        }
        self.findings.push(Finding {
            rule: Rule::TcpInjection,
            severity: Rule::TcpInjection.severity(),
            message: what,
            module: None,
            version: None,
            evidence: Evidence { exchanges: Vec::new(), flows: vec![flow], packet, time: ts },
        });
        self.keys.insert(key, self.findings.len() - 1);
        self.touched.push(self.findings.len() - 1);
    }

    /// End of capture: rules that need to have seen everything.
    pub fn finish(&mut self) {
        for z in std::mem::take(&mut self.zips) {
            if self.lookups.contains(&(z.module.clone(), z.version.clone())) {
                continue;
            }
            self.findings.push(Finding {
                rule: Rule::NoChecksumVerification,
                severity: Rule::NoChecksumVerification.severity(),
                message: format!(
                    "{}@{} zip downloaded with no checksum-database lookup anywhere in the capture: the checksum database was bypassed, unless go.sum already held the hash",
                    z.module, z.version
                ),
                module: Some(z.module),
                version: Some(z.version),
                evidence: z.evidence,
            });
            self.touched.push(self.findings.len() - 1);
        }
    }

    pub fn into_findings(self) -> Vec<Finding> {
        let mut f = self.findings;
        // Most severe first, then by first packet: stable for reports and tests.
        f.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.evidence.packet.cmp(&b.evidence.packet)).then(a.rule.cmp(&b.rule)));
        f
    }
}

/// A chain that keeps going between the same two origins (A -> B -> A ...) bounces even when
/// the URLs differ each time.
fn bounces(chain: &crate::gomod::Chain) -> bool {
    let origins = chain.origins();
    chain.redirects >= 3 && origins.len() <= 2 && chain.urls.len() > origins.len() + 1
}
