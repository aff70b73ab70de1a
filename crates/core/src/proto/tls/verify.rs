//! Certificate chain validation at the capture's time, and certificate details.
//!
//! [`TrustStore::validate`] runs rustls' `WebPkiServerVerifier` (ring provider, passed
//! explicitly) on the chain the server sent, for the SNI name or the server address, at the
//! packet's time. Results are cached per (chain, name, day) and the chain's validity windows,
//! so a capture with thousands of handshakes of one chain validates it once.
//!
//! The only I/O of the TLS module is here, in the constructors that read a CA file
//! ([`TrustStore::add_pem_file`]) or the system's roots ([`TrustStore::add_system_roots`]).

use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, RootCertStore};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use x509_parser::asn1_rs::Tag;
use x509_parser::objects::{oid2abbrev, oid_registry};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
use x509_parser::public_key::PublicKey;
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

use crate::time::Ts;

/// The name a chain must be valid for: the SNI, or the server's address when the client sent
/// none (Go sends no SNI for an IP literal, RFC 6066 3).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ServerNameInput {
    Dns(String),
    Ip(IpAddr),
}

impl fmt::Display for ServerNameInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerNameInput::Dns(n) => f.write_str(n),
            ServerNameInput::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

impl ServerNameInput {
    /// The SNI when the client sent one, else the server's address.
    pub fn from_sni_or_ip(sni: Option<&str>, server: IpAddr) -> ServerNameInput {
        match sni {
            Some(name) if !name.is_empty() => ServerNameInput::Dns(name.to_string()),
            _ => ServerNameInput::Ip(server),
        }
    }

    fn to_server_name(&self) -> Result<ServerName<'static>, String> {
        match self {
            ServerNameInput::Dns(n) => ServerName::try_from(n.clone())
                .map_err(|e| format!("{n:?} is not a valid DNS name: {e}")),
            ServerNameInput::Ip(ip) => Ok(ServerName::IpAddress((*ip).into())),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ValidationStatus {
    Valid,
    Invalid,
}

/// Why a chain is not valid. `as_str` gives the kebab-case name used in reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    Expired,
    NotYetValid,
    UnknownIssuer,
    /// Unknown issuer, and the leaf is self-issued (subject == issuer) with a signature that
    /// its own key verifies (or that cannot be checked).
    SelfSigned,
    NameMismatch,
    BadSignature,
    UnsupportedAlgorithm,
    /// A certificate is not valid DER X.509.
    BadEncoding,
    /// The server sent no certificate.
    NoCertificate,
    /// Anything else rustls reports (the text is in `detail`).
    Other,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Expired => "expired",
            Reason::NotYetValid => "not-yet-valid",
            Reason::UnknownIssuer => "unknown-issuer",
            Reason::SelfSigned => "self-signed",
            Reason::NameMismatch => "name-mismatch",
            Reason::BadSignature => "bad-signature",
            Reason::UnsupportedAlgorithm => "unsupported-algorithm",
            Reason::BadEncoding => "bad-encoding",
            Reason::NoCertificate => "no-certificate",
            Reason::Other => "other",
        }
    }

    fn is_time(self) -> bool {
        matches!(self, Reason::Expired | Reason::NotYetValid)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of validating one chain for one name at one time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Validation {
    pub status: ValidationStatus,
    /// The main reason (`None` when valid). Trust problems (unknown issuer, self-signed, bad
    /// signature, unsupported algorithm) come before time problems, which come before a name
    /// mismatch.
    pub reason: Option<Reason>,
    /// Further problems found (e.g. `expired` behind `self-signed`, `name-mismatch` behind
    /// `unknown-issuer`).
    pub also: Vec<Reason>,
    /// rustls' text for the main reason, or what was checked.
    pub detail: String,
}

impl Validation {
    pub fn is_valid(&self) -> bool {
        self.status == ValidationStatus::Valid
    }
    fn invalid(reason: Reason, detail: String) -> Validation {
        Validation {
            status: ValidationStatus::Invalid,
            reason: Some(reason),
            also: Vec::new(),
            detail,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    #[error("{path}: {what}")]
    Pem { path: PathBuf, what: String },
    #[error("{path}: no certificate in the file")]
    NoCertificates { path: PathBuf },
    #[error("{path}: certificate {index} is not a usable trust anchor: {what}")]
    BadAnchor {
        path: PathBuf,
        index: usize,
        what: String,
    },
    #[error("system trust store: {0}")]
    System(String),
}

/// Validation cache bound: distinct (chain, name, day) entries kept; the oldest is dropped
/// past it. A capture rarely has more than a few hundred distinct chains.
const CACHE_ENTRIES: usize = 4096;
/// Results kept per entry (one per combination of certificates' time states within a day).
const CACHE_RESULTS_PER_ENTRY: usize = 4;

#[derive(Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    chain: [u8; 32],
    name: ServerNameInput,
    day: i64,
}

struct CacheEntry {
    /// Each certificate's (notBefore, notAfter) in Unix seconds.
    windows: Vec<(i64, i64)>,
    /// Results by the certificates' time states (before/inside/after each window).
    results: Vec<(Vec<u8>, Validation)>,
}

#[derive(Default)]
struct Cache {
    map: HashMap<CacheKey, CacheEntry>,
    order: VecDeque<CacheKey>,
    hits: u64,
    misses: u64,
}

/// Trust anchors and a validation cache. `bundled()` is the default: webpki-roots (Mozilla's
/// list), the same on every machine, so reports are reproducible.
pub struct TrustStore {
    roots: RootCertStore,
    /// Where anchors came from, e.g. `bundled webpki-roots (146)`, for reports.
    sources: Vec<String>,
    verifier: Mutex<Option<Arc<WebPkiServerVerifier>>>,
    cache: Mutex<Cache>,
}

impl fmt::Debug for TrustStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustStore")
            .field("roots", &self.roots.len())
            .field("sources", &self.sources)
            .finish()
    }
}

impl TrustStore {
    /// No anchors at all (every chain is then `unknown-issuer`); add some with
    /// [`add_pem_file`](Self::add_pem_file).
    pub fn empty() -> TrustStore {
        TrustStore {
            roots: RootCertStore::empty(),
            sources: Vec::new(),
            verifier: Mutex::new(None),
            cache: Mutex::new(Cache::default()),
        }
    }

    /// The Mozilla roots bundled in webpki-roots.
    pub fn bundled() -> TrustStore {
        let mut store = TrustStore::empty();
        store
            .roots
            .extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        store.sources.push(format!(
            "bundled webpki-roots ({})",
            webpki_roots::TLS_SERVER_ROOTS.len()
        ));
        store
    }

    /// Adds every certificate of a PEM file as a trust anchor (`--ca-file`). Returns how many.
    /// Reads the file: the one I/O of this module besides `add_system_roots`.
    pub fn add_pem_file(&mut self, path: &Path) -> Result<usize, TrustError> {
        let bytes = std::fs::read(path).map_err(|err| TrustError::Io {
            path: path.to_path_buf(),
            err,
        })?;
        let mut added = 0usize;
        for (index, cert) in CertificateDer::pem_slice_iter(&bytes).enumerate() {
            let cert = cert.map_err(|e| TrustError::Pem {
                path: path.to_path_buf(),
                what: e.to_string(),
            })?;
            self.roots.add(cert).map_err(|e| TrustError::BadAnchor {
                path: path.to_path_buf(),
                index,
                what: e.to_string(),
            })?;
            added = added.saturating_add(1);
        }
        if added == 0 {
            return Err(TrustError::NoCertificates {
                path: path.to_path_buf(),
            });
        }
        self.sources.push(format!("{} ({added})", path.display()));
        self.changed();
        Ok(added)
    }

    /// Adds the operating system's roots (`--system-roots`, rustls-native-certs: on Linux the
    /// distribution bundle, or `SSL_CERT_FILE` / `SSL_CERT_DIR`). Returns how many were added.
    pub fn add_system_roots(&mut self) -> Result<usize, TrustError> {
        let found = rustls_native_certs::load_native_certs();
        if found.certs.is_empty() {
            let why = found
                .errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; ");
            return Err(TrustError::System(if why.is_empty() {
                "no certificates found".into()
            } else {
                why
            }));
        }
        let (added, _ignored) = self.roots.add_parsable_certificates(found.certs);
        self.sources.push(format!("system roots ({added})"));
        self.changed();
        Ok(added)
    }

    pub fn len(&self) -> usize {
        self.roots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }

    pub fn sources(&self) -> &[String] {
        &self.sources
    }

    /// (hits, misses) of the validation cache.
    pub fn cache_stats(&self) -> (u64, u64) {
        self.cache
            .lock()
            .map(|c| (c.hits, c.misses))
            .unwrap_or((0, 0))
    }

    fn changed(&mut self) {
        if let Ok(mut v) = self.verifier.lock() {
            *v = None;
        }
        if let Ok(mut c) = self.cache.lock() {
            c.map.clear();
            c.order.clear();
        }
    }

    fn verifier(&self) -> Result<Arc<WebPkiServerVerifier>, String> {
        let mut slot = self
            .verifier
            .lock()
            .map_err(|_| "verifier lock poisoned".to_string())?;
        if let Some(v) = slot.as_ref() {
            return Ok(v.clone());
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let built =
            WebPkiServerVerifier::builder_with_provider(Arc::new(self.roots.clone()), provider)
                .build()
                .map_err(|e| format!("no usable trust anchors: {e}"))?;
        *slot = Some(built.clone());
        Ok(built)
    }

    /// Validates `chain` (leaf first, as the server sent it) for `name` at the capture time
    /// `at`.
    pub fn validate(&self, chain: &[Vec<u8>], name: &ServerNameInput, at: Ts) -> Validation {
        if chain.is_empty() {
            return Validation::invalid(
                Reason::NoCertificate,
                "the server sent no certificate".into(),
            );
        }
        let mut hasher = Sha256::new();
        for cert in chain {
            hasher.update((cert.len() as u64).to_be_bytes());
            hasher.update(cert);
        }
        let key = CacheKey {
            chain: hasher.finalize().into(),
            name: name.clone(),
            day: at.secs().div_euclid(86_400),
        };
        if let Ok(mut cache) = self.cache.lock() {
            let cached = cache.map.get(&key).and_then(|entry| {
                let states = time_states(&entry.windows, at);
                entry
                    .results
                    .iter()
                    .find(|(s, _)| *s == states)
                    .map(|(_, v)| v.clone())
            });
            if let Some(v) = cached {
                cache.hits = cache.hits.saturating_add(1);
                return v;
            }
            cache.misses = cache.misses.saturating_add(1);
        }
        let result = self.validate_uncached(chain, name, at);
        if let Ok(mut cache) = self.cache.lock() {
            let cache = &mut *cache;
            if !cache.map.contains_key(&key) {
                if cache.map.len() >= CACHE_ENTRIES {
                    if let Some(old) = cache.order.pop_front() {
                        cache.map.remove(&old);
                    }
                }
                let windows = chain.iter().map(|c| validity_window(c)).collect();
                cache.map.insert(
                    key.clone(),
                    CacheEntry {
                        windows,
                        results: Vec::new(),
                    },
                );
                cache.order.push_back(key.clone());
            }
            if let Some(entry) = cache.map.get_mut(&key) {
                if entry.results.len() < CACHE_RESULTS_PER_ENTRY {
                    let states = time_states(&entry.windows, at);
                    entry.results.push((states, result.clone()));
                }
            }
        }
        result
    }

    fn validate_uncached(&self, chain: &[Vec<u8>], name: &ServerNameInput, at: Ts) -> Validation {
        let server_name = match name.to_server_name() {
            Ok(n) => n,
            Err(e) => return Validation::invalid(Reason::NameMismatch, e),
        };
        let verifier = match self.verifier() {
            Ok(v) => v,
            Err(e) => return Validation::invalid(Reason::UnknownIssuer, e),
        };
        let Some((leaf, rest)) = chain.split_first() else {
            return Validation::invalid(
                Reason::NoCertificate,
                "the server sent no certificate".into(),
            );
        };
        let leaf_der = CertificateDer::from(leaf.as_slice());
        let intermediates: Vec<CertificateDer<'_>> = rest
            .iter()
            .map(|c| CertificateDer::from(c.as_slice()))
            .collect();
        let verify_at = |t: i64| {
            verifier.verify_server_cert(&leaf_der, &intermediates, &server_name, &[], unix_time(t))
        };
        let err = match verify_at(at.secs()) {
            Ok(_) => {
                return Validation {
                    status: ValidationStatus::Valid,
                    reason: None,
                    also: Vec::new(),
                    detail: format!("valid for {name} at {}", at.rfc3339()),
                }
            }
            Err(e) => e,
        };
        let mut reason = reason_of(&err);
        let mut detail = err.to_string();
        let mut also = Vec::new();
        // webpki checks time before trust: look behind an expiry by validating again inside
        // the leaf's validity, so an expired self-signed certificate says `self-signed` first.
        if reason.is_time() {
            if let Some(mid) = leaf_midpoint(leaf) {
                if let Err(e2) = verify_at(mid) {
                    let r2 = reason_of(&e2);
                    if !r2.is_time() && r2 != Reason::NameMismatch {
                        also.push(reason);
                        reason = r2;
                        detail = format!("{e2} (also: {detail})");
                    }
                }
            }
        }
        if reason == Reason::UnknownIssuer && is_self_signed(leaf) {
            reason = Reason::SelfSigned;
            detail = format!("self-signed certificate: {detail}");
        }
        // webpki checks the name last: check it on its own so a mismatch behind another
        // problem is still reported.
        if reason != Reason::NameMismatch && !name_matches(leaf, &server_name) {
            also.push(Reason::NameMismatch);
        }
        Validation {
            status: ValidationStatus::Invalid,
            reason: Some(reason),
            also,
            detail,
        }
    }
}

fn unix_time(secs: i64) -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(secs).unwrap_or(0)))
}

fn reason_of(err: &rustls::Error) -> Reason {
    #[allow(deprecated)]
    match err {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => Reason::Expired,
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                Reason::NotYetValid
            }
            CertificateError::UnknownIssuer => Reason::UnknownIssuer,
            CertificateError::BadSignature => Reason::BadSignature,
            CertificateError::UnsupportedSignatureAlgorithm
            | CertificateError::UnsupportedSignatureAlgorithmContext { .. }
            | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
                Reason::UnsupportedAlgorithm
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                Reason::NameMismatch
            }
            CertificateError::BadEncoding => Reason::BadEncoding,
            _ => Reason::Other,
        },
        _ => Reason::Other,
    }
}

fn name_matches(leaf: &[u8], name: &ServerName<'_>) -> bool {
    let der = CertificateDer::from(leaf);
    match webpki::EndEntityCert::try_from(&der) {
        Ok(ee) => ee.verify_is_valid_for_subject_name(name).is_ok(),
        Err(_) => true, // unparsable: reported as bad-encoding, not as a name problem
    }
}

/// The middle of the certificate's validity, in Unix seconds.
fn leaf_midpoint(der: &[u8]) -> Option<i64> {
    let (nb, na) = validity_window(der);
    if nb == i64::MIN || na == i64::MAX || na < nb {
        return None;
    }
    Some(nb.saturating_add(na.saturating_sub(nb) / 2))
}

/// (notBefore, notAfter) in Unix seconds; the widest window when the DER does not parse.
fn validity_window(der: &[u8]) -> (i64, i64) {
    match X509Certificate::from_der(der) {
        Ok((_, c)) => (
            c.validity().not_before.timestamp(),
            c.validity().not_after.timestamp(),
        ),
        Err(_) => (i64::MIN, i64::MAX),
    }
}

/// Per certificate: 0 before its window, 1 inside, 2 after.
fn time_states(windows: &[(i64, i64)], at: Ts) -> Vec<u8> {
    let t = at.secs();
    windows
        .iter()
        .map(|(nb, na)| {
            if t < *nb {
                0
            } else if t > *na {
                2
            } else {
                1
            }
        })
        .collect()
}

/// Subject == issuer, and the signature verifies with the certificate's own key (or cannot be
/// checked here: an algorithm ring lacks, such as ML-DSA or P-521).
fn is_self_signed(der: &[u8]) -> bool {
    match X509Certificate::from_der(der) {
        Ok((_, c)) => self_signed(&c),
        Err(_) => false,
    }
}

fn self_signed(c: &X509Certificate<'_>) -> bool {
    c.subject().as_raw() == c.issuer().as_raw()
        && !matches!(
            c.verify_signature(None),
            Err(x509_parser::error::X509Error::SignatureVerificationError)
        )
}

/// What a report shows about one certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CertInfo {
    /// RFC 4514-style, as x509-parser prints it (in DER order, e.g. `C=US, O=Let's Encrypt,
    /// CN=R3`).
    pub subject: String,
    pub issuer: String,
    /// subjectAltName DNS names and IP addresses, in order.
    pub sans: Vec<String>,
    /// RFC 3339, UTC.
    pub not_before: String,
    pub not_after: String,
    /// The serial number's bytes in hex (as encoded, so a leading 00 stays).
    pub serial: String,
    /// `rsa`, `rsa-pss`, `ecdsa`, `ed25519`, `ed448`, `dsa`, `ml-dsa`, else `oid:...`.
    pub key_type: String,
    pub key_bits: usize,
    /// e.g. `sha256WithRSAEncryption`, `ecdsa-with-SHA256`, else the dotted OID.
    pub signature_algorithm: String,
    /// SHA-256 of the DER, hex.
    pub sha256: String,
    /// Subject == issuer and the signature verifies with its own key (or cannot be checked).
    pub self_signed: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CertError {
    #[error("not a DER X.509 certificate: {0}")]
    Parse(String),
}

/// Details of one DER certificate.
pub fn cert_details(der: &[u8]) -> Result<CertInfo, CertError> {
    let (_, c) = X509Certificate::from_der(der).map_err(|e| CertError::Parse(e.to_string()))?;
    let mut sans = Vec::new();
    if let Ok(Some(san)) = c.subject_alternative_name() {
        for gn in &san.value.general_names {
            match gn {
                GeneralName::DNSName(n) => sans.push((*n).to_string()),
                GeneralName::IPAddress(b) => {
                    if let Ok(v4) = <[u8; 4]>::try_from(*b) {
                        sans.push(IpAddr::from(v4).to_string());
                    } else if let Ok(v6) = <[u8; 16]>::try_from(*b) {
                        sans.push(IpAddr::from(v6).to_string());
                    }
                }
                _ => {}
            }
        }
    }
    let spki = c.public_key();
    let key_oid = spki.algorithm.algorithm.to_id_string();
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|o| o.to_id_string());
    let (key_type, key_bits) = match key_oid.as_str() {
        "1.2.840.113549.1.1.1" | "1.2.840.113549.1.1.10" => {
            let bits = match spki.parsed() {
                Ok(PublicKey::RSA(rsa)) => bit_len(rsa.modulus),
                _ => 0,
            };
            (
                if key_oid.ends_with(".10") {
                    "rsa-pss"
                } else {
                    "rsa"
                }
                .to_string(),
                bits,
            )
        }
        "1.2.840.10045.2.1" => {
            let bits = match curve.as_deref() {
                Some("1.2.840.10045.3.1.7") => 256,
                Some("1.3.132.0.34") => 384,
                Some("1.3.132.0.35") => 521,
                _ => spki.parsed().map(|k| k.key_size()).unwrap_or(0),
            };
            ("ecdsa".to_string(), bits)
        }
        "1.3.101.112" => ("ed25519".to_string(), 256),
        "1.3.101.113" => ("ed448".to_string(), 456),
        "1.2.840.10040.4.1" => (
            "dsa".to_string(),
            spki.parsed().map(|k| k.key_size()).unwrap_or(0),
        ),
        "2.16.840.1.101.3.4.3.17" | "2.16.840.1.101.3.4.3.18" | "2.16.840.1.101.3.4.3.19" => {
            ("ml-dsa".to_string(), 0)
        }
        other => (format!("oid:{other}"), 0),
    };
    let sig_oid = c.signature_algorithm.algorithm.to_id_string();
    let signature_algorithm = match sig_oid.as_str() {
        "1.2.840.113549.1.1.4" => "md5WithRSAEncryption",
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption",
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption",
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption",
        "1.2.840.113549.1.1.10" => "rsassa-pss",
        "1.2.840.10045.4.1" => "ecdsa-with-SHA1",
        "1.2.840.10045.4.3.1" => "ecdsa-with-SHA224",
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512",
        "1.3.101.112" => "ed25519",
        "1.3.101.113" => "ed448",
        other => other,
    }
    .to_string();
    Ok(CertInfo {
        subject: name_text(c.subject()),
        issuer: name_text(c.issuer()),
        sans,
        not_before: crate::time::rfc3339_secs(c.validity().not_before.timestamp()),
        not_after: crate::time::rfc3339_secs(c.validity().not_after.timestamp()),
        serial: hex::encode(c.raw_serial()),
        key_type,
        key_bits,
        signature_algorithm,
        sha256: hex::encode(Sha256::digest(der)),
        self_signed: self_signed(&c),
    })
}

/// The text of a name attribute: string types as text (UTF-8, else Latin-1 for the 8-bit ones:
/// old certificates put Latin-1 in T61String), BMPString as UTF-16, UniversalString as UTF-32,
/// anything else as uppercase hex (as x509-parser does).
pub(crate) fn attribute_text(attr: &AttributeTypeAndValue<'_>) -> String {
    let value = attr.attr_value();
    let data = value.data;
    match value.tag() {
        Tag::BmpString => {
            let units: Vec<u16> = data
                .chunks_exact(2)
                .map(|c| match c {
                    [a, b] => u16::from_be_bytes([*a, *b]),
                    _ => 0xfffd,
                })
                .collect();
            String::from_utf16_lossy(&units)
        }
        Tag::UniversalString => data
            .chunks_exact(4)
            .map(|c| match c {
                [a, b, c, d] => {
                    char::from_u32(u32::from_be_bytes([*a, *b, *c, *d])).unwrap_or('\u{fffd}')
                }
                _ => '\u{fffd}',
            })
            .collect(),
        Tag::NumericString
        | Tag::VisibleString
        | Tag::PrintableString
        | Tag::GeneralString
        | Tag::GraphicString
        | Tag::T61String
        | Tag::VideotexString
        | Tag::Utf8String
        | Tag::Ia5String => match std::str::from_utf8(data) {
            Ok(s) => s.to_string(),
            Err(_) => data.iter().map(|b| char::from(*b)).collect(),
        },
        _ => data.iter().map(|b| format!("{b:02X}")).collect(),
    }
}

/// A name as x509-parser prints it (`C=US, O=Let's Encrypt, CN=R3`); when x509-parser gives up
/// on a value (a T61String that is not UTF-8), the same form built leniently.
fn name_text(name: &X509Name<'_>) -> String {
    let printed = name.to_string();
    if !printed.starts_with("<X509Error") {
        return printed;
    }
    name.iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(|attr| {
                    let key = oid2abbrev(attr.attr_type(), oid_registry())
                        .map(str::to_string)
                        .unwrap_or_else(|_| attr.attr_type().to_id_string());
                    format!("{key}={}", attribute_text(attr))
                })
                .collect::<Vec<_>>()
                .join(" + ")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Bits of a big-endian unsigned integer (leading zero bytes and bits not counted).
fn bit_len(be: &[u8]) -> usize {
    let trimmed: &[u8] = match be.iter().position(|b| *b != 0) {
        Some(i) => be.get(i..).unwrap_or(&[]),
        None => &[],
    };
    match trimmed.first() {
        Some(first) => trimmed
            .len()
            .saturating_sub(1)
            .saturating_mul(8)
            .saturating_add(8usize.saturating_sub(first.leading_zeros() as usize)),
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::tls::tests::pki;

    /// Unix seconds of a UTC date at noon.
    fn at(y: i32, m: u32, d: u32) -> Ts {
        // Days from civil (Howard Hinnant), enough for test dates.
        let y = if m <= 2 { y - 1 } else { y } as i64;
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m as i64 + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d as i64 - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        Ts::from_secs_nanos(days * 86_400 + 43_200, 0)
    }

    fn dns(n: &str) -> ServerNameInput {
        ServerNameInput::Dns(n.to_string())
    }

    fn store_with(ca: &pki::Ca) -> TrustStore {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, &ca.pem).unwrap();
        let mut store = TrustStore::bundled();
        assert_eq!(store.add_pem_file(&path).unwrap(), 1);
        store
    }

    #[test]
    fn dates_helper_is_right() {
        assert_eq!(at(2025, 6, 1).rfc3339(), "2025-06-01T12:00:00.000000Z");
        assert_eq!(at(2024, 2, 29).rfc3339(), "2024-02-29T12:00:00.000000Z");
    }

    #[test]
    fn valid_with_a_ca_added_from_a_pem_file() {
        let ca = pki::ca("Test Root");
        let leaf = pki::leaf(&ca, &["proxy.example"]);
        let store = store_with(&ca);
        assert!(store.len() > 100, "bundled roots plus the file");
        assert!(
            store.sources().iter().any(|s| s.contains("ca.pem (1)")),
            "{:?}",
            store.sources()
        );
        let v = store.validate(
            std::slice::from_ref(&leaf.der),
            &dns("proxy.example"),
            at(2025, 6, 1),
        );
        assert!(v.is_valid(), "{v:?}");
        assert_eq!((v.reason, v.also.len()), (None, 0));
        // The CA sent along as well: still valid.
        let v = store.validate(&[leaf.der, ca.der], &dns("proxy.example"), at(2025, 6, 1));
        assert!(v.is_valid(), "{v:?}");
    }

    #[test]
    fn expired_and_not_yet_valid() {
        let ca = pki::ca("Test Root");
        let leaf = pki::leaf_valid(&ca, &["proxy.example"], (2024, 1, 1), (2025, 1, 1));
        let store = store_with(&ca);
        let v = store.validate(
            std::slice::from_ref(&leaf.der),
            &dns("proxy.example"),
            at(2025, 6, 1),
        );
        assert_eq!(v.reason, Some(Reason::Expired), "{v:?}");
        assert_eq!(v.status, ValidationStatus::Invalid);
        let v = store.validate(&[leaf.der], &dns("proxy.example"), at(2023, 6, 1));
        assert_eq!(v.reason, Some(Reason::NotYetValid), "{v:?}");
    }

    #[test]
    fn unknown_issuer_also_reports_the_name() {
        let ca = pki::ca("Corporate Interception CA");
        let leaf = pki::leaf(&ca, &["proxy.golang.org"]);
        let store = TrustStore::bundled();
        let v = store.validate(
            &[leaf.der.clone(), ca.der.clone()],
            &dns("proxy.golang.org"),
            at(2025, 6, 1),
        );
        assert_eq!(v.reason, Some(Reason::UnknownIssuer), "{v:?}");
        assert!(v.also.is_empty());
        let v = store.validate(&[leaf.der, ca.der], &dns("sum.golang.org"), at(2025, 6, 1));
        assert_eq!(v.reason, Some(Reason::UnknownIssuer));
        assert_eq!(v.also, vec![Reason::NameMismatch]);
    }

    #[test]
    fn self_signed_even_when_also_expired() {
        let leaf = pki::self_signed(&["mirror.internal"], (2024, 1, 1), (2030, 1, 1));
        let store = TrustStore::bundled();
        let v = store.validate(
            std::slice::from_ref(&leaf.der),
            &dns("mirror.internal"),
            at(2025, 6, 1),
        );
        assert_eq!(v.reason, Some(Reason::SelfSigned), "{v:?}");
        assert!(v.detail.contains("self-signed"));
        let v = store.validate(
            std::slice::from_ref(&leaf.der),
            &dns("mirror.internal"),
            at(2031, 6, 1),
        );
        assert_eq!(v.reason, Some(Reason::SelfSigned), "{v:?}");
        assert_eq!(v.also, vec![Reason::Expired]);
        assert!(cert_details(&leaf.der).unwrap().self_signed);
    }

    #[test]
    fn name_mismatch() {
        let ca = pki::ca("Test Root");
        let leaf = pki::leaf(&ca, &["proxy.example", "*.cdn.example"]);
        let store = store_with(&ca);
        let v = store.validate(
            std::slice::from_ref(&leaf.der),
            &dns("other.example"),
            at(2025, 6, 1),
        );
        assert_eq!(v.reason, Some(Reason::NameMismatch), "{v:?}");
        assert!(store
            .validate(
                std::slice::from_ref(&leaf.der),
                &dns("a.cdn.example"),
                at(2025, 6, 1)
            )
            .is_valid());
        let v = store.validate(&[leaf.der], &dns("not a name!"), at(2025, 6, 1));
        assert_eq!(v.reason, Some(Reason::NameMismatch));
    }

    #[test]
    fn bad_signature_when_a_signature_byte_flips() {
        let ca = pki::ca("Test Root");
        let mut der = pki::leaf(&ca, &["proxy.example"]).der;
        // The DER ends with the ECDSA signature's s value.
        *der.last_mut().unwrap() ^= 0x01;
        let v = store_with(&ca).validate(&[der], &dns("proxy.example"), at(2025, 6, 1));
        assert_eq!(v.reason, Some(Reason::BadSignature), "{v:?}");
    }

    #[test]
    fn unsupported_algorithm_ecdsa_with_sha224() {
        let ca = pki::ca("Test Root");
        let mut der = pki::leaf(&ca, &["proxy.example"]).der;
        // ecdsa-with-SHA256 (1.2.840.10045.4.3.2) -> ecdsa-with-SHA224 (...4.3.1), which webpki
        // does not implement; same length, in the TBS and the outer signatureAlgorithm.
        let oid = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
        let mut patched = 0;
        let mut i = 0;
        while i + oid.len() <= der.len() {
            if der[i..i + oid.len()] == oid {
                der[i + oid.len() - 1] = 0x01;
                patched += 1;
            }
            i += 1;
        }
        assert_eq!(patched, 2);
        let v = store_with(&ca).validate(&[der.clone()], &dns("proxy.example"), at(2025, 6, 1));
        assert_eq!(v.reason, Some(Reason::UnsupportedAlgorithm), "{v:?}");
        assert_eq!(
            cert_details(&der).unwrap().signature_algorithm,
            "ecdsa-with-SHA224"
        );
    }

    #[test]
    fn ip_address_names() {
        let ca = pki::ca("Test Root");
        let leaf = pki::leaf(&ca, &["127.0.0.1", "::1"]);
        let store = store_with(&ca);
        let ip = |s: &str| ServerNameInput::Ip(s.parse().unwrap());
        assert!(store
            .validate(
                std::slice::from_ref(&leaf.der),
                &ip("127.0.0.1"),
                at(2025, 6, 1)
            )
            .is_valid());
        assert!(store
            .validate(std::slice::from_ref(&leaf.der), &ip("::1"), at(2025, 6, 1))
            .is_valid());
        let v = store.validate(
            std::slice::from_ref(&leaf.der),
            &ip("10.0.0.1"),
            at(2025, 6, 1),
        );
        assert_eq!(v.reason, Some(Reason::NameMismatch), "{v:?}");
        assert_eq!(
            cert_details(&leaf.der).unwrap().sans,
            vec!["127.0.0.1", "::1"]
        );
    }

    #[test]
    fn empty_chain_and_garbage() {
        let store = TrustStore::bundled();
        let v = store.validate(&[], &dns("proxy.golang.org"), at(2025, 6, 1));
        assert_eq!(v.reason, Some(Reason::NoCertificate));
        assert!(!v.detail.is_empty());
        let v = store.validate(
            &[vec![0x30, 0x03, 0x01, 0x01, 0xff]],
            &dns("proxy.golang.org"),
            at(2025, 6, 1),
        );
        assert_eq!(v.reason, Some(Reason::BadEncoding), "{v:?}");
        assert!(cert_details(&[0x30, 0x00]).is_err());
    }

    #[test]
    fn empty_store_says_unknown_issuer() {
        let ca = pki::ca("Test Root");
        let leaf = pki::leaf(&ca, &["proxy.example"]);
        let v = TrustStore::empty().validate(&[leaf.der], &dns("proxy.example"), at(2025, 6, 1));
        assert_eq!(v.reason, Some(Reason::UnknownIssuer), "{v:?}");
    }

    #[test]
    fn cache_validates_a_chain_once() {
        let ca = pki::ca("Test Root");
        let leaf = pki::leaf_valid(&ca, &["proxy.example"], (2024, 1, 1), (2025, 1, 1));
        let store = store_with(&ca);
        let chain = vec![leaf.der.clone(), ca.der.clone()];
        let name = dns("proxy.example");
        let t0 = at(2024, 12, 31);
        for i in 0..10_000 {
            let v = store.validate(
                &chain,
                &name,
                Ts(t0.0 - 40_000_000_000_000 + i * 1_000_000_000),
            );
            assert!(v.is_valid());
        }
        assert_eq!(store.cache_stats(), (9_999, 1));
        // The same day, after notAfter (2025-01-01T00:00:00Z): a new result, cached separately.
        let late = at(2025, 1, 1);
        let v = store.validate(&chain, &name, late);
        assert_eq!(v.reason, Some(Reason::Expired));
        assert_eq!(store.cache_stats().1, 2);
        // Another name is another entry.
        assert!(!store.validate(&chain, &dns("x.example"), t0).is_valid());
        assert_eq!(store.cache_stats().1, 3);
    }

    #[test]
    fn cert_details_fields() {
        let ca = pki::ca("Test Root");
        let leaf = pki::leaf_valid(
            &ca,
            &["proxy.example", "10.1.2.3"],
            (2024, 1, 1),
            (2025, 1, 1),
        );
        let info = cert_details(&leaf.der).unwrap();
        assert_eq!(info.subject, "CN=proxy.example");
        assert_eq!(info.issuer, "CN=Test Root, O=modtrace test");
        assert_eq!(info.sans, vec!["proxy.example", "10.1.2.3"]);
        assert_eq!(info.not_before, "2024-01-01T00:00:00Z");
        assert_eq!(info.not_after, "2025-01-01T00:00:00Z");
        assert_eq!((info.key_type.as_str(), info.key_bits), ("ecdsa", 256));
        assert_eq!(info.signature_algorithm, "ecdsa-with-SHA256");
        assert_eq!(info.sha256, hex::encode(Sha256::digest(&leaf.der)));
        assert!(!info.serial.is_empty() && info.serial.chars().all(|c| c.is_ascii_hexdigit()));
        assert!(!info.self_signed);
        let ca_info = cert_details(&ca.der).unwrap();
        assert!(ca_info.self_signed);
        let json = serde_json::to_value(&info).unwrap();
        assert_eq!(json["key_type"], "ecdsa");
    }

    #[test]
    fn year_9999_and_pre_1970_dates() {
        assert_eq!(
            crate::time::rfc3339_secs(253_402_300_799),
            "9999-12-31T23:59:59Z"
        );
        assert_eq!(crate::time::rfc3339_secs(-86_400), "1969-12-31T00:00:00Z");
        assert_eq!(crate::time::rfc3339_secs(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn rsa_bit_length() {
        assert_eq!(bit_len(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(bit_len(&[0x01, 0x00]), 9);
        assert_eq!(bit_len(&[0x00]), 0);
        assert_eq!(bit_len(&[]), 0);
    }

    #[test]
    fn reasons_are_kebab_case() {
        for r in [
            Reason::Expired,
            Reason::NotYetValid,
            Reason::UnknownIssuer,
            Reason::SelfSigned,
            Reason::NameMismatch,
            Reason::BadSignature,
            Reason::UnsupportedAlgorithm,
            Reason::BadEncoding,
            Reason::NoCertificate,
            Reason::Other,
        ] {
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
            assert!(r
                .as_str()
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '-'));
        }
    }

    #[test]
    fn system_roots_load_or_say_why() {
        let mut store = TrustStore::empty();
        match store.add_system_roots() {
            Ok(n) => {
                assert!(n > 0 && store.len() == n);
                assert!(store.sources()[0].starts_with("system roots"));
            }
            Err(e) => assert!(e.to_string().starts_with("system trust store:"), "{e}"),
        }
    }

    #[test]
    fn name_input_from_sni_or_ip() {
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(
            ServerNameInput::from_sni_or_ip(Some("proxy.golang.org"), ip),
            dns("proxy.golang.org")
        );
        assert_eq!(
            ServerNameInput::from_sni_or_ip(None, ip),
            ServerNameInput::Ip(ip)
        );
        assert_eq!(
            ServerNameInput::from_sni_or_ip(Some(""), ip).to_string(),
            "192.0.2.1"
        );
    }

    #[test]
    fn ca_file_errors() {
        let mut store = TrustStore::empty();
        assert!(matches!(
            store.add_pem_file(Path::new("/nonexistent/ca.pem")),
            Err(TrustError::Io { .. })
        ));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.pem");
        std::fs::write(&path, "not a pem file\n").unwrap();
        assert!(matches!(
            store.add_pem_file(&path),
            Err(TrustError::NoCertificates { .. })
        ));
        assert!(store.is_empty());
    }
}
