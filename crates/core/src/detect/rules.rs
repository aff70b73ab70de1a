//! Every rule modtrace has: stable id, default severity, and the texts that explain it. These
//! texts are the one place the meaning and the fix of a finding are written; the README table,
//! reports and later `explain`/SARIF help all read them from here.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
    pub fn parse(s: &str) -> Option<Severity> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s))
    }
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    PlaintextModuleFetch,
    PlaintextSumdb,
    RedirectLoop,
    RedirectLimit,
    InsecureRedirect,
    NoChecksumVerification,
    ProxyFallback,
    CredentialsInPlaintext,
    TcpInjection,
    UnverifiedTls,
    TlsRejected,
    TlsInterception,
    LegacyTls,
    TlsCertificateHidden,
    InsecureFallback,
    ChecksumMismatch,
    SumdbSignatureInvalid,
    SumdbUnknownKey,
    SumdbFork,
    SumdbProofMismatch,
    MirrorInconsistency,
    CaptureDrops,
    TlsDecryptFailed,
    PrivateModuleLeak,
    UnexpectedProxy,
}

pub struct RuleText {
    pub rule: Rule,
    pub id: &'static str,
    pub severity: Severity,
    pub title: &'static str,
    /// What it means on the wire and why it is dangerous.
    pub meaning: &'static str,
    /// The fix, in a Go developer's terms.
    pub fix: &'static str,
}

pub const RULES: &[RuleText] = &[
    RuleText {
        rule: Rule::PlaintextModuleFetch,
        id: "plaintext-module-fetch",
        severity: Severity::High,
        title: "Module fetched over plain HTTP",
        meaning: "A GOPROXY, go-get or VCS request for a module travelled over plain HTTP, on the go command's own leg or on a mirror's leg to its upstream. Anyone on the path can read which modules are used and replace their content; only the checksum database or go.sum would catch a changed zip.",
        fix: "Serve the GOPROXY (and the mirror's upstream) over HTTPS and use https:// entries in GOPROXY. Remove the module's pattern from GOINSECURE. Keep GOSUMDB on so a changed zip is refused.",
    },
    RuleText {
        rule: Rule::PlaintextSumdb,
        id: "plaintext-sumdb",
        severity: Severity::High,
        title: "Checksum database traffic over plain HTTP",
        meaning: "Checksum-database lookups or tiles travelled over plain HTTP. Signed tree heads still protect the records, but the module paths being verified are visible to anyone on the path, and a path that withholds answers can stall verification.",
        fix: "Point GOSUMDB at an https:// URL (or at a proxy reached over HTTPS that serves /sumdb/<name>/).",
    },
    RuleText {
        rule: Rule::RedirectLoop,
        id: "redirect-loop",
        severity: Severity::High,
        title: "Redirect loop between mirrors",
        meaning: "A chain of redirects came back to a URL it had already asked for, or bounced between the same servers. The go command follows it until it gives up after 10 redirects, so the module cannot be fetched, and each hop exposes the request again.",
        fix: "Fix the mirrors' redirect configuration so each module URL ends at one server that answers it; check GOPROXY lists each mirror once.",
    },
    RuleText {
        rule: Rule::RedirectLimit,
        id: "redirect-limit",
        severity: Severity::Medium,
        title: "Redirect chain reached the go command's limit of 10",
        meaning: "A chain of 10 redirects: the go command stops there (\"stopped after 10 redirects\") and the fetch fails.",
        fix: "Shorten the redirect chain between mirrors; point GOPROXY at the final server directly.",
    },
    RuleText {
        rule: Rule::InsecureRedirect,
        id: "insecure-redirect",
        severity: Severity::High,
        title: "Redirect from HTTPS to plain HTTP",
        meaning: "A server reached over HTTPS redirected to a plain-HTTP URL. The go command refuses such redirects, so the fetch fails; other clients would downgrade the module fetch to plaintext.",
        fix: "Make the mirror redirect to https:// URLs only.",
    },
    RuleText {
        rule: Rule::NoChecksumVerification,
        id: "no-checksum-verification",
        severity: Severity::Medium,
        title: "Module zip with no checksum-database lookup",
        meaning: "A module zip was downloaded and no checksum-database lookup for that module@version appears anywhere in the capture. Either go.sum already held its hash (then this is fine), or the checksum database was bypassed (GOSUMDB=off, GONOSUMDB or GOPRIVATE matching) and nothing checked that the zip is the one everyone else got.",
        fix: "Keep GOSUMDB on for public modules; commit go.sum; limit GONOSUMDB/GOPRIVATE to your private module paths. For private modules, run a private checksum database or rely on committed go.sum files.",
    },
    RuleText {
        rule: Rule::ProxyFallback,
        id: "proxy-fallback",
        severity: Severity::Info,
        title: "GOPROXY fallback to the next entry",
        meaning: "A GOPROXY entry failed and the go command asked the next entry in the list for the same file. After 404 or 410 that is the list working as meant (info): normal for a private proxy followed by a public one, but the module path was sent to both. After any other error (a 5xx, a refused or reset connection, a failed TLS handshake, no answer) only a `|` separator goes on (low): whoever can make the first proxy fail on the network, without breaking any TLS, diverts every request to the next entry, e.g. from the company proxy to a public one. A failed connection carries no module path, so the attempt is inferred from the request that followed it.",
        fix: "If the module is private, set GOPRIVATE/GONOPROXY so its path never goes to the later proxies. Use `,` rather than `|` after a proxy that must not be bypassed, so the go command stops on its errors instead of going elsewhere; fix or monitor the entry that failed.",
    },
    RuleText {
        rule: Rule::CredentialsInPlaintext,
        id: "credentials-in-plaintext",
        severity: Severity::High,
        title: "Credentials sent over plain HTTP",
        meaning: "An Authorization header or credentials in the URL were sent over plain HTTP: anyone on the path can read and reuse them. modtrace shows the scheme and user only, never the secret.",
        fix: "Send credentials over HTTPS only: serve the proxy or upstream over TLS, and rotate the exposed credential. GOAUTH/.netrc entries should name https:// hosts.",
    },
    RuleText {
        rule: Rule::TcpInjection,
        id: "tcp-injection",
        severity: Severity::High,
        title: "Retransmitted TCP bytes differ from the original",
        meaning: "A TCP segment overlapped bytes already sent on the connection but carried different content. Endpoints keep one version and drop the other, so this is how off-path injection shows (or a badly broken middlebox).",
        fix: "Find who is on the path: compare with a capture taken at the other end, move module traffic to TLS so injected bytes are rejected.",
    },
    RuleText {
        rule: Rule::UnverifiedTls,
        id: "unverified-tls",
        severity: Severity::High,
        title: "TLS certificate accepted without verification",
        meaning: "A server presented a certificate chain that does not validate (expired, self-signed, unknown issuer, wrong name, ...) and the client went on to send application data anyway: it did not verify the server. Anyone able to intercept that leg can impersonate the server with a certificate of their own.",
        fix: "Make the client verify: remove the host from GOINSECURE; in a mirror, turn certificate verification back on (no InsecureSkipVerify / verify=false) and give it the right CA bundle; renew expired certificates and issue them for the name clients use.",
    },
    RuleText {
        rule: Rule::TlsRejected,
        id: "tls-rejected",
        severity: Severity::Info,
        title: "Invalid TLS certificate refused by the client",
        meaning: "A server presented a certificate chain that does not validate and the client refused it with an alert (such as bad_certificate or unknown_ca; in TLS 1.3 without a key log, an encrypted record of an alert's size). A client that merely closes before finishing its handshake decides nothing and gives no finding. The client did its job: this is an attack or a misconfiguration that was blocked, and the fetch failed.",
        fix: "If the server is yours, give it a certificate from a CA the clients trust, for the name they use. If it is not, find who is intercepting the connection.",
    },
    RuleText {
        rule: Rule::TlsInterception,
        id: "tls-interception",
        severity: Severity::Critical,
        title: "Go proxy or checksum database behind a certificate the public roots reject",
        meaning: "A host that the Go environment names as its GOPROXY or GOSUMDB (or one of Go's public defaults) presented a certificate chain that does not validate against the public roots. Either a TLS-intercepting middlebox or a man in the middle sits between the go command and its module sources, or a private CA is in use for them.",
        fix: "Find the interception point (corporate proxy, malware). If a private CA is intended, document it and pass it to modtrace with --ca-file; never work around it with GOINSECURE or GOFLAGS=-insecure.",
    },
    RuleText {
        rule: Rule::LegacyTls,
        id: "legacy-tls",
        severity: Severity::Medium,
        title: "SSL 3.0 or TLS 1.0/1.1 negotiated",
        meaning: "A connection negotiated SSL 3.0, TLS 1.0 or TLS 1.1, which RFC 8996 and RFC 7568 deprecate: known attacks weaken their confidentiality and integrity.",
        fix: "Configure the server (or the mirror's client) for TLS 1.2 or 1.3 only.",
    },
    RuleText {
        rule: Rule::TlsCertificateHidden,
        id: "tls-certificate-hidden",
        severity: Severity::Info,
        title: "TLS 1.3 certificates could not be checked",
        meaning: "TLS 1.3 encrypts the server's certificate, so modtrace could not check whether these sessions were verified. Given a key log it can.",
        fix: "Nothing is wrong on the wire. To check the certificates, capture with a key log from the server side or a recording proxy and pass it to modtrace.",
    },
    RuleText {
        rule: Rule::InsecureFallback,
        id: "insecure-fallback",
        severity: Severity::High,
        title: "HTTPS failed, then plain HTTP to the same host",
        meaning: "A TLS connection to a host failed or was refused, and the same client then sent a plain-HTTP request to that host: what the go command does for GOINSECURE paths. Whoever broke the TLS connection can now answer in plaintext.",
        fix: "Remove the path from GOINSECURE and fix the server's TLS; GOINSECURE is for lab use only.",
    },
    RuleText {
        rule: Rule::ChecksumMismatch,
        id: "checksum-mismatch",
        severity: Severity::Critical,
        title: "Downloaded module does not match its checksum",
        meaning: "The h1: hash of a downloaded zip or .mod file differs from what the checksum database's record, a go.sum file, or another server's copy of the same module@version says. This is the go command's SECURITY ERROR: the module was changed on the way or at the server (a tampering proxy or mirror), or the server serves different content than everyone else gets.",
        fix: "Do not use the module cache entry: `go clean -modcache`. Find which server served the changed bytes (the finding names it) and stop using it; keep GOSUMDB on and go.sum committed so the go command refuses such zips.",
    },
    RuleText {
        rule: Rule::SumdbSignatureInvalid,
        id: "sumdb-signature-invalid",
        severity: Severity::Critical,
        title: "Checksum-database note with an invalid signature",
        meaning: "A signed tree note carried a signature by a known checksum-database key that does not verify: the note was forged or altered on the way.",
        fix: "Treat the checksum database answers on this path as hostile; find who changes them. Check that GOSUMDB names the right key.",
    },
    RuleText {
        rule: Rule::SumdbUnknownKey,
        id: "sumdb-unknown-key",
        severity: Severity::Medium,
        title: "Checksum-database note signed only by unknown keys",
        meaning: "A signed tree note was signed only by keys modtrace was not given, so it could not be checked. Either a private checksum database is in use (give its key with --sumdb-key or --go-env) or someone answers in the database's place.",
        fix: "Pass the database's verifier key to modtrace (--sumdb-key name+hash+key, or --go-env with GOSUMDB set); if the key is not one you expect, find who runs that database.",
    },
    RuleText {
        rule: Rule::SumdbFork,
        id: "sumdb-fork",
        severity: Severity::Critical,
        title: "Two different checksum-database trees of the same size",
        meaning: "Two signed tree heads of one checksum database claim the same number of records with different root hashes: the log forked, which a transparent log must never do. Someone is showing different clients different histories.",
        fix: "Report it to the checksum database's operator with both notes; stop trusting it until explained.",
    },
    RuleText {
        rule: Rule::SumdbProofMismatch,
        id: "sumdb-proof-mismatch",
        severity: Severity::Critical,
        title: "Checksum-database record missing from its tile",
        meaning: "A record returned by a lookup does not match the leaf hash at its position in the hash tile that covers it: the record is not in the log the database signed.",
        fix: "Treat the lookup answer as forged; find who changed it between the database and the client.",
    },
    RuleText {
        rule: Rule::MirrorInconsistency,
        id: "mirror-inconsistency",
        severity: Severity::High,
        title: "Two servers served different bytes for the same module file",
        meaning: "Two servers answered different bytes for the same .info, .mod, .zip or list of one module@version. A module version is immutable: one of them is stale, broken or tampered with.",
        fix: "Compare both copies (modtrace names the servers and the hashes); fix or remove the mirror that differs from the origin.",
    },
    RuleText {
        rule: Rule::CaptureDrops,
        id: "capture-drops",
        severity: Severity::Medium,
        title: "The kernel dropped packets during the live capture",
        meaning: "During `modtrace capture` the kernel dropped packets because modtrace did not read them fast enough (pcap statistics). TCP streams have gaps where they fell, so exchanges, module journeys and findings may be missing or incomplete: the analysis is not the whole story.",
        fix: "Capture less: a narrower -f filter (e.g. the proxy's port), a smaller -s snaplen, --process go, or -i on the one interface the traffic uses; or analyse a -w file afterwards with modtrace analyze.",
    },
    RuleText {
        rule: Rule::TlsDecryptFailed,
        id: "tls-decrypt-failed",
        severity: Severity::Info,
        title: "TLS records did not decrypt with the key log",
        meaning: "The key log had secrets for this session, but some of its records did not authenticate under them: the key log belongs to another run, the capture is damaged, or someone altered records on the wire (the peer would have refused them). modtrace reports what it could read and never guesses at the rest, so exchanges in those records are missing.",
        fix: "Give the key log written during the same capture (--keylog, or a pcapng with its Decryption Secrets Block), and check the capture for damage. If the key log is right, treat the altered records as an attack on that connection.",
    },
    RuleText {
        rule: Rule::PrivateModuleLeak,
        id: "private-module-leak",
        severity: Severity::High,
        title: "Private module path sent to a proxy or checksum database",
        meaning: "A module whose path matches the private patterns (the policy's `private`, --private, or GOPRIVATE, GONOPROXY and GONOSUMDB from --go-env) was requested from a GOPROXY that is not one of the policy's allowed_proxies, or looked up in a checksum database. With GOPRIVATE set the go command fetches such modules straight from their origin and asks no proxy and no checksum database about them; here the private path itself (repository, product or customer names) went to a server outside your control, and a public proxy could even answer with someone else's module of that name. Requests to a proxy listed in the policy's allowed_proxies or private_proxies (your own proxies) are not leaks. Only reported when private patterns are given.",
        fix: "Set GOPRIVATE to your private path patterns on every machine and in CI (`go env -w GOPRIVATE=*.corp.example`), so the go command skips proxies and the checksum database for them. If private modules are meant to come through your own proxy, list it in private_proxies (or allowed_proxies), put it first in GOPROXY and set GONOPROXY=none. Treat the leaked path names as public.",
    },
    RuleText {
        rule: Rule::UnexpectedProxy,
        id: "unexpected-proxy",
        severity: Severity::Medium,
        title: "Module served by a proxy outside the allowed list",
        meaning: "A module's .info, .mod or .zip was served (200) by a GOPROXY base that is not in the policy's allowed_proxies. The build took code from a server nobody approved: a personal GOPROXY setting, a forgotten mirror, or someone answering in the proxy's place. A request an allowed proxy redirected (to its blob store) counts as that proxy's. Only reported when an allow list is given.",
        fix: "Point GOPROXY at the allowed proxies only (`go env -w GOPROXY=https://proxy.corp.example`), also in CI images and GOFLAGS. If the server is legitimate, add it to allowed_proxies; when the capture includes a mirror's own requests to its upstream, list that upstream too.",
    },
];

impl Rule {
    pub fn text(self) -> &'static RuleText {
        // RULES holds every Rule exactly once (tested below).
        RULES.iter().find(|t| t.rule == self).unwrap_or(&RULES[0])
    }
    pub fn id(self) -> &'static str {
        self.text().id
    }
    pub fn severity(self) -> Severity {
        self.text().severity
    }
    pub fn from_id(id: &str) -> Option<Rule> {
        RULES.iter().find(|t| t.id == id).map(|t| t.rule)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_has_one_text_with_a_kebab_id() {
        let all = [
            Rule::PlaintextModuleFetch,
            Rule::PlaintextSumdb,
            Rule::RedirectLoop,
            Rule::RedirectLimit,
            Rule::InsecureRedirect,
            Rule::NoChecksumVerification,
            Rule::ProxyFallback,
            Rule::CredentialsInPlaintext,
            Rule::TcpInjection,
            Rule::UnverifiedTls,
            Rule::TlsRejected,
            Rule::TlsInterception,
            Rule::LegacyTls,
            Rule::TlsCertificateHidden,
            Rule::InsecureFallback,
            Rule::ChecksumMismatch,
            Rule::SumdbSignatureInvalid,
            Rule::SumdbUnknownKey,
            Rule::SumdbFork,
            Rule::SumdbProofMismatch,
            Rule::MirrorInconsistency,
            Rule::CaptureDrops,
            Rule::TlsDecryptFailed,
            Rule::PrivateModuleLeak,
            Rule::UnexpectedProxy,
        ];
        assert_eq!(RULES.len(), all.len());
        for r in all {
            let t = r.text();
            assert_eq!(t.rule, r);
            assert_eq!(Rule::from_id(t.id), Some(r));
            assert!(
                t.id.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
                "{}",
                t.id
            );
            assert_eq!(
                serde_json::to_value(r).unwrap(),
                serde_json::Value::String(t.id.into())
            );
            assert!(!t.meaning.is_empty() && !t.fix.is_empty());
        }
    }
}
