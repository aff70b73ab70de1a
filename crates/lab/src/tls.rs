//! TLS for the lab: a lab CA and leaf certificates of four kinds (rcgen), rustls server and
//! client configurations, an NSS key log writer, and the deliberately non-verifying client a
//! misconfigured mirror uses.
//!
//! The lab CA is for the lab only: its key sits in a file next to the recordings, so anyone can
//! mint certificates under it. Trust it through `SSL_CERT_FILE` for one go command, never in a
//! system store.

use super::LabError;
use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, KeyLog, ServerConfig, SignatureScheme};
use std::collections::HashSet;
use std::fs::File;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The DNS name in the lab's leaf certificates (besides the IP SAN 127.0.0.1); the netns
/// scenarios resolve it to 127.0.0.1 through their own hosts file.
pub const LAB_HOST: &str = "lab.test";
/// The only name in the wrong-name certificate: neither `lab.test` nor 127.0.0.1.
pub const WRONG_HOST: &str = "other.test";
/// ALPN the lab's TLS servers and the mirror's client offer by default: HTTP/1.1 only
/// (RFC 7301; `h2` makes the go command speak HTTP/2).
pub const ALPN_HTTP11: &[u8] = b"http/1.1";
/// ALPN of HTTP/2 over TLS (RFC 9113 3.2), offered before `http/1.1` by the TLS servers named
/// in [`super::LabOptions::http2`].
pub const ALPN_H2: &[u8] = b"h2";

/// Which leaf certificate a TLS server presents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CertKind {
    /// Signed by the lab CA, names `lab.test` and 127.0.0.1, valid 2024..2049.
    Valid,
    /// Its own issuer (not a CA), same names and dates as Valid.
    SelfSigned,
    /// Signed by the lab CA, same names, but valid only during 2020.
    Expired,
    /// Signed by the lab CA, valid dates, but for `other.test` only.
    WrongName,
}

impl CertKind {
    pub const ALL: [CertKind; 4] = [
        CertKind::Valid,
        CertKind::SelfSigned,
        CertKind::Expired,
        CertKind::WrongName,
    ];

    pub fn label(self) -> &'static str {
        match self {
            CertKind::Valid => "valid",
            CertKind::SelfSigned => "self-signed",
            CertKind::Expired => "expired",
            CertKind::WrongName => "wrong-name",
        }
    }

    pub fn parse(s: &str) -> Option<CertKind> {
        CertKind::ALL.into_iter().find(|k| k.label() == s)
    }

    fn index(self) -> usize {
        match self {
            CertKind::Valid => 0,
            CertKind::SelfSigned => 1,
            CertKind::Expired => 2,
            CertKind::WrongName => 3,
        }
    }

    /// Fixed serial numbers, so a certificate in a capture says which kind it is.
    fn serial(self) -> u64 {
        0x10 + self.index() as u64
    }
}

/// TLS versions a server accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsVersions {
    Tls12,
    Tls13,
    /// 1.2 and 1.3 (the client picks 1.3 if it can).
    Both,
}

impl TlsVersions {
    pub fn label(self) -> &'static str {
        match self {
            TlsVersions::Tls12 => "tls12",
            TlsVersions::Tls13 => "tls13",
            TlsVersions::Both => "tls",
        }
    }

    pub fn parse(s: &str) -> Option<TlsVersions> {
        match s {
            "tls12" => Some(TlsVersions::Tls12),
            "tls13" => Some(TlsVersions::Tls13),
            "tls" => Some(TlsVersions::Both),
            _ => None,
        }
    }

    fn rustls(self) -> &'static [&'static rustls::SupportedProtocolVersion] {
        static TLS12: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS12];
        static TLS13: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
        static BOTH: [&rustls::SupportedProtocolVersion; 2] =
            [&rustls::version::TLS13, &rustls::version::TLS12];
        match self {
            TlsVersions::Tls12 => &TLS12,
            TlsVersions::Tls13 => &TLS13,
            TlsVersions::Both => &BOTH,
        }
    }
}

/// How a server is served over TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlsServerOptions {
    pub cert: CertKind,
    pub versions: TlsVersions,
}

impl TlsServerOptions {
    /// `tls12`, `tls13-expired`, `tls-self-signed`...: versions, then optionally `-` and a
    /// certificate kind (default valid).
    pub fn parse(s: &str) -> Option<TlsServerOptions> {
        let (v, c) = match s.split_once('-') {
            Some((v, c)) => (v, CertKind::parse(c)?),
            None => (s, CertKind::Valid),
        };
        Some(TlsServerOptions {
            cert: c,
            versions: TlsVersions::parse(v)?,
        })
    }

    pub fn label(&self) -> String {
        format!("{}-{}", self.versions.label(), self.cert.label())
    }
}

/// How the mirror checks an https:// upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpstreamVerify {
    /// webpki verification against the lab CA only (and the name in the upstream URL).
    LabCa,
    /// No certificate check at all (handshake signatures are still checked, so the session
    /// is real): the misconfiguration some captures demonstrate.
    Nothing,
}

/// One generated certificate and its key, DER and PEM.
pub struct Leaf {
    pub cert_der: CertificateDer<'static>,
    pub cert_pem: String,
    key_pkcs8: Vec<u8>,
    key_pem: String,
}

impl Leaf {
    fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_pkcs8.clone()))
    }
}

/// The lab CA and one leaf of each [`CertKind`].
pub struct Pki {
    pub ca: Leaf,
    leaves: Vec<Leaf>,
}

/// File names inside a PKI folder.
pub const CA_CERT_FILE: &str = "lab-ca.pem";
pub const CA_KEY_FILE: &str = "lab-ca.key";

pub fn leaf_cert_file(kind: CertKind) -> String {
    format!("leaf-{}.pem", kind.label())
}

pub fn leaf_key_file(kind: CertKind) -> String {
    format!("leaf-{}.key", kind.label())
}

fn pki_err(what: &str, e: impl std::fmt::Display) -> LabError {
    LabError::Config(format!("pki: {what}: {e}"))
}

fn dn(cn: &str) -> DistinguishedName {
    let mut d = DistinguishedName::new();
    d.push(DnType::OrganizationName, "modtrace lab");
    d.push(DnType::CommonName, cn);
    d
}

/// The CA's parameters are rebuilt from code, so a CA loaded from its key file issues with the
/// same subject and key identifier method as when it was made.
fn ca_params() -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = dn("modtrace lab CA (lab use only)");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = date_time_ymd(2019, 1, 1);
    p.not_after = date_time_ymd(2049, 1, 1);
    p.serial_number = Some(SerialNumber::from(1u64));
    p
}

fn leaf_params(kind: CertKind) -> Result<CertificateParams, LabError> {
    let mut p = CertificateParams::default();
    let dns = |n: &str| -> Result<SanType, LabError> {
        Ok(SanType::DnsName(
            n.to_string().try_into().map_err(|e| pki_err(n, e))?,
        ))
    };
    p.subject_alt_names = match kind {
        CertKind::WrongName => vec![dns(WRONG_HOST)?],
        _ => vec![
            dns(LAB_HOST)?,
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        ],
    };
    let cn = match kind {
        CertKind::WrongName => format!("{WRONG_HOST} (lab wrong-name)"),
        k => format!("{LAB_HOST} (lab {})", k.label()),
    };
    p.distinguished_name = dn(&cn);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.use_authority_key_identifier_extension = kind != CertKind::SelfSigned;
    (p.not_before, p.not_after) = match kind {
        CertKind::Expired => (date_time_ymd(2020, 1, 1), date_time_ymd(2021, 1, 1)),
        _ => (date_time_ymd(2024, 1, 1), date_time_ymd(2049, 1, 1)),
    };
    p.serial_number = Some(SerialNumber::from(kind.serial()));
    Ok(p)
}

fn leaf_from(cert: rcgen::Certificate, key: &KeyPair) -> Leaf {
    Leaf {
        cert_pem: cert.pem(),
        cert_der: cert.der().clone(),
        key_pkcs8: key.serialize_der(),
        key_pem: key.serialize_pem(),
    }
}

fn make_leaf(kind: CertKind, issuer: &Issuer<'_, KeyPair>) -> Result<Leaf, LabError> {
    let key = KeyPair::generate().map_err(|e| pki_err("key", e))?;
    let params = leaf_params(kind)?;
    let cert = match kind {
        CertKind::SelfSigned => params.self_signed(&key),
        _ => params.signed_by(&key, issuer),
    }
    .map_err(|e| pki_err(kind.label(), e))?;
    Ok(leaf_from(cert, &key))
}

fn load_leaf(cert_path: &Path, key_path: &Path) -> Result<Leaf, LabError> {
    let cert_pem = std::fs::read_to_string(cert_path)
        .map_err(|e| pki_err(&cert_path.display().to_string(), e))?;
    let key_pem = std::fs::read_to_string(key_path)
        .map_err(|e| pki_err(&key_path.display().to_string(), e))?;
    let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
        .map_err(|e| pki_err(&cert_path.display().to_string(), e))?;
    let key =
        KeyPair::from_pem(&key_pem).map_err(|e| pki_err(&key_path.display().to_string(), e))?;
    Ok(Leaf {
        cert_der,
        cert_pem,
        key_pkcs8: key.serialize_der(),
        key_pem,
    })
}

fn write_file(path: &Path, text: &str) -> Result<(), LabError> {
    std::fs::write(path, text).map_err(|e| pki_err(&path.display().to_string(), e))
}

impl Pki {
    /// A fresh CA and leaves, in memory (ECDSA P-256 keys from ring's random generator).
    pub fn generate() -> Result<Pki, LabError> {
        let ca_key = KeyPair::generate().map_err(|e| pki_err("CA key", e))?;
        let params = ca_params();
        let ca_cert = params.self_signed(&ca_key).map_err(|e| pki_err("CA", e))?;
        let ca = leaf_from(ca_cert, &ca_key);
        let issuer = Issuer::new(params, ca_key);
        let leaves = CertKind::ALL
            .iter()
            .map(|k| make_leaf(*k, &issuer))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Pki { ca, leaves })
    }

    /// Loads the PKI in `dir`, creating what is missing: a missing CA (cert or key) means a
    /// new CA and new leaves; a missing leaf is issued by the existing CA. Returns the PKI and
    /// whether anything was created.
    pub fn load_or_create(dir: &Path) -> Result<(Pki, bool), LabError> {
        std::fs::create_dir_all(dir).map_err(|e| pki_err(&dir.display().to_string(), e))?;
        let ca_cert = dir.join(CA_CERT_FILE);
        let ca_key = dir.join(CA_KEY_FILE);
        let new_ca = !(ca_cert.is_file() && ca_key.is_file());
        let mut created = new_ca;
        let (ca, issuer) = if !new_ca {
            let ca = load_leaf(&ca_cert, &ca_key)?;
            let key = KeyPair::from_pem(&ca.key_pem).map_err(|e| pki_err("CA key", e))?;
            (ca, Issuer::new(ca_params(), key))
        } else {
            let key = KeyPair::generate().map_err(|e| pki_err("CA key", e))?;
            let params = ca_params();
            let cert = params.self_signed(&key).map_err(|e| pki_err("CA", e))?;
            let ca = leaf_from(cert, &key);
            write_file(&ca_cert, &ca.cert_pem)?;
            write_file(&ca_key, &ca.key_pem)?;
            (ca, Issuer::new(params, key))
        };
        let mut leaves = Vec::with_capacity(CertKind::ALL.len());
        for kind in CertKind::ALL {
            let cp = dir.join(leaf_cert_file(kind));
            let kp = dir.join(leaf_key_file(kind));
            let leaf = if !new_ca && cp.is_file() && kp.is_file() {
                load_leaf(&cp, &kp)?
            } else {
                created = true;
                let leaf = make_leaf(kind, &issuer)?;
                write_file(&cp, &leaf.cert_pem)?;
                write_file(&kp, &leaf.key_pem)?;
                leaf
            };
            leaves.push(leaf);
        }
        Ok((Pki { ca, leaves }, created))
    }

    pub fn leaf(&self, kind: CertKind) -> &Leaf {
        // `leaves` holds one per kind in CertKind::ALL order (both constructors).
        &self.leaves[kind.index()]
    }

    pub fn ca_cert_pem(&self) -> &str {
        &self.ca.cert_pem
    }

    /// A root store holding only the lab CA.
    pub fn lab_roots(&self) -> Result<rustls::RootCertStore, LabError> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(self.ca.cert_der.clone())
            .map_err(|e| pki_err("lab CA as a root", e))?;
        Ok(roots)
    }

    /// A server configuration presenting `opts.cert` (the leaf alone: a CA-signed leaf
    /// chains to the lab CA, which the client must already hold) for `opts.versions`, ALPN
    /// `http/1.1` only, writing secrets to `key_log`.
    pub fn server_config(
        &self,
        opts: TlsServerOptions,
        key_log: Option<Arc<dyn KeyLog>>,
    ) -> Result<Arc<ServerConfig>, LabError> {
        self.server_config_alpn(opts, key_log, &[ALPN_HTTP11])
    }

    /// [`Pki::server_config`] offering these ALPN protocols, in the server's order of
    /// preference (rustls picks the first of them the client also offers).
    pub fn server_config_alpn(
        &self,
        opts: TlsServerOptions,
        key_log: Option<Arc<dyn KeyLog>>,
        alpn: &[&[u8]],
    ) -> Result<Arc<ServerConfig>, LabError> {
        let leaf = self.leaf(opts.cert);
        let mut cfg = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(opts.versions.rustls())
            .map_err(|e| pki_err("server versions", e))?
            .with_no_client_auth()
            .with_single_cert(vec![leaf.cert_der.clone()], leaf.key())
            .map_err(|e| pki_err("server certificate", e))?;
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        if let Some(k) = key_log {
            cfg.key_log = k;
        }
        Ok(Arc::new(cfg))
    }

    /// The mirror's client: TLS 1.2 and 1.3, ALPN `http/1.1`, no session resumption (every
    /// connection a full handshake with its certificate on the wire, as with Go's net/http,
    /// which keeps no session cache by default).
    pub fn client_config(
        &self,
        verify: UpstreamVerify,
        key_log: Option<Arc<dyn KeyLog>>,
    ) -> Result<Arc<ClientConfig>, LabError> {
        let builder = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(TlsVersions::Both.rustls())
            .map_err(|e| pki_err("client versions", e))?;
        let mut cfg = match verify {
            UpstreamVerify::LabCa => builder
                .with_root_certificates(self.lab_roots()?)
                .with_no_client_auth(),
            UpstreamVerify::Nothing => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate {
                    algorithms: provider().signature_verification_algorithms,
                }))
                .with_no_client_auth(),
        };
        cfg.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
        cfg.resumption = rustls::client::Resumption::disabled();
        if let Some(k) = key_log {
            cfg.key_log = k;
        }
        Ok(Arc::new(cfg))
    }
}

/// ring, named explicitly so that another crypto feature turned on elsewhere in the crate does
/// not make the process-default provider ambiguous.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Accepts every certificate (DANGEROUS, on purpose: the mirror misconfiguration the
/// tls-mirror-* captures show). The handshake signatures are still verified, so the peer must
/// hold the key of the certificate it shows; only the certificate itself goes unchecked.
#[derive(Debug)]
struct AcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Lines a key log remembers to drop duplicates (the mirror's client and the lab's server log
/// the same session's secrets). Lab runs have a few dozen sessions of at most 5 lines; past
/// this, lines are still written, only no longer de-duplicated.
pub const KEY_LOG_DEDUP_LIMIT: usize = 100_000;

/// An NSS key log (`LABEL <client random hex> <secret hex>` per line), the format tshark's
/// `tls.keylog_file` reads. Shared by every TLS server and client of a lab.
pub struct KeyLogWriter {
    path: Option<PathBuf>,
    state: Mutex<KeyLogState>,
}

struct KeyLogState {
    file: Option<File>,
    seen: HashSet<String>,
    lines: Vec<String>,
    written: usize,
}

impl std::fmt::Debug for KeyLogWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyLogWriter")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl KeyLogWriter {
    /// Appends to `path` (created if missing); each line is one unbuffered write.
    pub fn to_file(path: &Path) -> std::io::Result<Arc<KeyLogWriter>> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Arc::new(KeyLogWriter {
            path: Some(path.to_path_buf()),
            state: Mutex::new(KeyLogState {
                file: Some(f),
                seen: HashSet::new(),
                lines: Vec::new(),
                written: 0,
            }),
        }))
    }

    /// Keeps lines in memory only (tests).
    pub fn in_memory() -> Arc<KeyLogWriter> {
        Arc::new(KeyLogWriter {
            path: None,
            state: Mutex::new(KeyLogState {
                file: None,
                seen: HashSet::new(),
                lines: Vec::new(),
                written: 0,
            }),
        })
    }

    /// Lines logged so far (in memory: the first [`KEY_LOG_DEDUP_LIMIT`]).
    pub fn lines(&self) -> Vec<String> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .lines
            .clone()
    }

    /// Number of distinct lines written.
    pub fn count(&self) -> usize {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).written
    }
}

/// One NSS key log line (without newline).
pub fn key_log_line(label: &str, client_random: &[u8], secret: &[u8]) -> String {
    format!(
        "{label} {} {}",
        hex::encode(client_random),
        hex::encode(secret)
    )
}

impl KeyLog for KeyLogWriter {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        let line = key_log_line(label, client_random, secret);
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.seen.len() < KEY_LOG_DEDUP_LIMIT {
            if !st.seen.insert(line.clone()) {
                return;
            }
            st.lines.push(line.clone());
        }
        st.written = st.written.saturating_add(1);
        if let Some(f) = &mut st.file {
            let _ = f.write_all(format!("{line}\n").as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_and_label() {
        assert_eq!(
            TlsServerOptions::parse("tls12-self-signed"),
            Some(TlsServerOptions {
                cert: CertKind::SelfSigned,
                versions: TlsVersions::Tls12
            })
        );
        assert_eq!(
            TlsServerOptions::parse("tls13"),
            Some(TlsServerOptions {
                cert: CertKind::Valid,
                versions: TlsVersions::Tls13
            })
        );
        assert_eq!(
            TlsServerOptions::parse("tls-wrong-name").unwrap().label(),
            "tls-wrong-name"
        );
        assert_eq!(TlsServerOptions::parse("tls11"), None);
        assert_eq!(TlsServerOptions::parse("tls12-bogus"), None);
    }

    #[test]
    fn key_log_lines_are_nss_format_and_deduplicated() {
        let k = KeyLogWriter::in_memory();
        k.log("CLIENT_RANDOM", &[0xab, 0x01], &[0xff]);
        k.log("CLIENT_RANDOM", &[0xab, 0x01], &[0xff]);
        k.log("SERVER_TRAFFIC_SECRET_0", &[0x00], &[0x10, 0x20]);
        assert_eq!(
            k.lines(),
            vec![
                "CLIENT_RANDOM ab01 ff".to_string(),
                "SERVER_TRAFFIC_SECRET_0 00 1020".to_string()
            ]
        );
        assert_eq!(k.count(), 2);
    }

    #[test]
    fn pki_folder_is_created_then_reloaded_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let (a, created) = Pki::load_or_create(dir.path()).unwrap();
        assert!(created);
        for k in CertKind::ALL {
            assert!(dir.path().join(leaf_cert_file(k)).is_file());
            assert!(dir.path().join(leaf_key_file(k)).is_file());
        }
        let (b, created) = Pki::load_or_create(dir.path()).unwrap();
        assert!(!created);
        assert_eq!(a.ca.cert_der, b.ca.cert_der);
        assert_eq!(
            a.leaf(CertKind::Expired).cert_der,
            b.leaf(CertKind::Expired).cert_der
        );
        // A lost leaf is re-issued by the same CA; the others stay.
        std::fs::remove_file(dir.path().join(leaf_key_file(CertKind::WrongName))).unwrap();
        let (c, created) = Pki::load_or_create(dir.path()).unwrap();
        assert!(created);
        assert_eq!(c.ca.cert_der, a.ca.cert_der);
        assert_eq!(
            c.leaf(CertKind::Valid).cert_der,
            a.leaf(CertKind::Valid).cert_der
        );
        assert_ne!(
            c.leaf(CertKind::WrongName).cert_der,
            a.leaf(CertKind::WrongName).cert_der
        );
        // Configurations build from loaded keys.
        c.server_config(
            TlsServerOptions {
                cert: CertKind::WrongName,
                versions: TlsVersions::Both,
            },
            None,
        )
        .unwrap();
        c.client_config(UpstreamVerify::LabCa, None).unwrap();
    }
}
