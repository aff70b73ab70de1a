//! What the detector needs of the policy: private module paths and the proxies allowed to
//! serve modules. Built by `Policy::scope`; the detector only reads it.

use crate::gomod::pattern::{match_prefix, ProxyBase};

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
