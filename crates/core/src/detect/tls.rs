//! TLS sessions as the report shows them, and what they mean: whose certificate nobody
//! verified, which client refused one, which proxy's TLS was intercepted.

use crate::flow::{Dir, FlowId, FlowInfo};
use crate::gomod::goenv::host_only;
use crate::proto::tls::{
    cert_details, cipher_suite_name, is_legacy_version, is_tls13_version, version_name, CertInfo,
    ServerNameInput, TlsSession, TrustStore, Validation,
};
use crate::time::Ts;
use serde::Serialize;

/// What modtrace checks TLS against.
pub struct TlsPolicy {
    /// Trust anchors for validation: the bundled public roots plus `--ca-file`/`--system-roots`.
    pub trust: TrustStore,
    /// The bundled public roots alone: tls-interception asks whether a Go proxy or checksum
    /// database presented a chain the public roots accept.
    pub public: TrustStore,
    /// Hosts and ports the Go environment names as its proxies and checksum database (with
    /// Go's public defaults), host in lower case.
    pub go_hosts: Vec<(String, u16)>,
}

impl Default for TlsPolicy {
    fn default() -> Self {
        let env = crate::gomod::goenv::GoEnv::default();
        TlsPolicy {
            trust: TrustStore::bundled(),
            public: TrustStore::bundled(),
            go_hosts: env.trusted_hosts(),
        }
    }
}

/// Key-log decryption of one session, for the report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TlsDecryption {
    /// Why the session could not be decrypted (e.g. no secrets for its client random).
    pub unavailable: Option<String>,
    pub records_decrypted: u64,
    /// Records that did not authenticate under the logged keys (tls-decrypt-failed).
    pub records_failed: u64,
    /// Records not tried: after a gap, or no secret for that phase.
    pub records_skipped: u64,
    pub plaintext_bytes_to_server: u64,
    pub plaintext_bytes_to_client: u64,
    /// The first failure: `to-server`/`to-client`, packet and error.
    pub first_failure: Option<String>,
    #[serde(skip)]
    pub first_failure_packet: Option<u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TlsRecord {
    pub flow: FlowId,
    #[serde(serialize_with = "crate::gomod::ser_addr")]
    pub client: std::net::SocketAddr,
    #[serde(serialize_with = "crate::gomod::ser_addr")]
    pub server: std::net::SocketAddr,
    pub sni: Option<String>,
    /// ALPN protocols the client offered.
    pub alpn: Vec<String>,
    /// The protocol the server chose, when visible (TLS 1.2 and earlier).
    pub alpn_selected: Option<String>,
    pub version: Option<String>,
    pub cipher: Option<String>,
    pub ja4: Option<String>,
    /// The server's chain as sent (leaf first); empty when hidden (TLS 1.3) or not seen.
    pub certificates: Vec<CertInfo>,
    /// TLS 1.3: certificates are encrypted and cannot be checked without a key log.
    pub certificates_hidden: bool,
    /// The server asked for a client certificate (mutual TLS).
    pub client_certificate_requested: bool,
    pub validation: Option<Validation>,
    /// Whether the client went on after the handshake (true), refused (false), or neither
    /// can be told (null).
    pub accepted: Option<bool>,
    /// Plaintext alerts, as `<sender>: <level> <description>`.
    pub alerts: Vec<String>,
    pub handshake_complete: bool,
    pub bytes_to_server: u64,
    pub bytes_to_client: u64,
    #[serde(serialize_with = "crate::gomod::ser_ts")]
    pub start: Ts,
    /// First packet of the flow.
    pub packet: u64,
    /// The host a Go environment names as proxy or checksum database, when this is one.
    pub go_host: Option<String>,
    /// The forward proxy the session went through (CONNECT tunnel), "ip:port".
    pub via: Option<String>,
    /// What the key log did for this session; null without a key log.
    pub decryption: Option<TlsDecryption>,
    /// Validation against the public roots alone, when it differs from `validation` and the
    /// server is a Go host (the evidence of tls-interception).
    #[serde(skip)]
    pub public_validation: Option<Validation>,
    #[serde(skip)]
    pub version_code: Option<u16>,
    #[serde(skip)]
    pub cert_ts: Ts,
    #[serde(skip)]
    pub cert_packet: u64,
}

impl TlsRecord {
    /// The name the client asked for: the SNI, else the server's address.
    pub fn name(&self) -> String {
        self.sni
            .clone()
            .unwrap_or_else(|| self.server.ip().to_string())
    }
    pub fn leaf(&self) -> Option<&CertInfo> {
        self.certificates.first()
    }
    pub fn is_tls13(&self) -> bool {
        self.certificates_hidden
    }
    pub fn legacy(&self) -> bool {
        self.version_code.is_some_and(is_legacy_version)
    }

    /// What the chain check says: the one verdict every sink words (text report, live text,
    /// TUI), so that they cannot disagree.
    pub fn certificate_check(&self) -> CertificateCheck<'_> {
        match (&self.validation, self.certificates_hidden) {
            (Some(v), _) if v.is_valid() => CertificateCheck::Valid,
            (Some(v), _) => CertificateCheck::Invalid(v),
            (None, true) => CertificateCheck::Hidden,
            (None, false) => CertificateCheck::NotSeen,
        }
    }

    /// What the client did after the server's certificate, in words.
    pub fn client_verdict(&self) -> &'static str {
        match self.accepted {
            Some(true) => "client went on",
            Some(false) => "client refused",
            None => "client outcome unknown",
        }
    }
}

/// The verdict on a session's certificate chain ([`TlsRecord::certificate_check`]).
#[derive(Clone, Copy, Debug)]
pub enum CertificateCheck<'a> {
    Valid,
    Invalid(&'a Validation),
    /// TLS 1.3 without the session's secrets: the certificate travels encrypted.
    Hidden,
    NotSeen,
}

impl CertificateCheck<'_> {
    /// One line: `certificate valid`, `certificate INVALID (reason)`, `certificate hidden (TLS
    /// 1.3)`, `no certificate seen`.
    pub fn short(&self) -> String {
        match self {
            CertificateCheck::Valid => "certificate valid".into(),
            CertificateCheck::Invalid(v) => format!(
                "certificate INVALID ({})",
                v.reason.map_or("?", |r| r.as_str())
            ),
            CertificateCheck::Hidden => "certificate hidden (TLS 1.3)".into(),
            CertificateCheck::NotSeen => "no certificate seen".into(),
        }
    }
}

/// Builds the record of one TLS flow (at its end) and validates its chain at `cert_at`, the
/// time and packet of the Certificate message.
pub fn summarize(
    info: &FlowInfo,
    s: &TlsSession,
    cert_at: Option<(Ts, u64)>,
    policy: &TlsPolicy,
) -> TlsRecord {
    let ch = s.client_hello.as_ref();
    let sh = s.server_hello.as_ref();
    let sni = ch.and_then(|c| c.sni.clone());
    let name = match &sni {
        Some(n) => ServerNameInput::Dns(n.clone()),
        None => ServerNameInput::Ip(info.server.ip()),
    };
    let (cert_ts, cert_packet) = cert_at.unwrap_or((info.first_ts, info.first_packet));
    let certificates: Vec<CertInfo> = s
        .certificates
        .iter()
        .filter_map(|d| cert_details(d).ok())
        .collect();
    let validation = (!s.certificates.is_empty())
        .then(|| policy.trust.validate(&s.certificates, &name, cert_ts));
    let host = sni
        .clone()
        .map(|n| n.to_ascii_lowercase())
        .unwrap_or_else(|| host_only(&info.server.ip().to_string()));
    let port = info.server.port();
    let go_host = policy
        .go_hosts
        .iter()
        .find(|(h, p)| *h == host && *p == port)
        .map(|(h, p)| format!("{h}:{p}"));
    let public_validation = match (&go_host, &validation) {
        (Some(_), Some(v)) if v.is_valid() => {
            Some(policy.public.validate(&s.certificates, &name, cert_ts))
        }
        (Some(_), Some(v)) => Some(v.clone()),
        _ => None,
    };
    // Refusing a certificate is said with an alert (RFC 8446 6.2, RFC 5246 7.2.2; the go
    // command always sends one): in the clear, decrypted, or an encrypted TLS 1.3 record of an
    // alert's size. A client that closes or resets without one before finishing its own
    // handshake has decided nothing (a dial it no longer needed, a timeout): unknown.
    let client_refused = s
        .alerts
        .iter()
        .any(|a| a.dir == Dir::ToServer && a.is_certificate_rejection())
        || s.tls13_client_alert_sized_record.is_some();
    // A client that refuses the certificate says so instead of finishing its handshake (RFC
    // 8446 4.4.2.4, RFC 5246 7.2.2): a finished client handshake without a certificate alert
    // is an acceptance, even when the connection then closed unused (an idle connection of a
    // client's pool).
    let client_finished = s.handshake_complete
        && !s
            .alerts
            .iter()
            .any(|a| a.dir == Dir::ToServer && a.is_certificate_rejection());
    let accepted = if s.client_app_data_after_handshake.is_some() || client_finished {
        Some(true)
    } else if client_refused {
        Some(false)
    } else {
        None
    };
    let alerts = s
        .alerts
        .iter()
        .map(|a| {
            format!(
                "{}: {}",
                if a.dir == Dir::ToServer {
                    "client"
                } else {
                    "server"
                },
                a.describe()
            )
        })
        .collect();
    TlsRecord {
        flow: info.id,
        client: info.client,
        server: info.server,
        sni,
        alpn: ch.map(|c| c.alpn.clone()).unwrap_or_default(),
        alpn_selected: sh
            .and_then(|h| h.alpn.clone())
            .or_else(|| s.decryption.alpn_selected.clone()),
        version: sh.map(|h| version_name(h.version)),
        version_code: sh.map(|h| h.version),
        cipher: sh.map(|h| cipher_suite_name(h.cipher_suite)),
        ja4: ch.map(|c| c.ja4.clone()),
        certificates,
        // A key log opens a TLS 1.3 Certificate message: then the chain is validated as a
        // TLS 1.2 one.
        certificates_hidden: (s.certificates_hidden
            || sh.is_some_and(|h| is_tls13_version(h.version)))
            && !s.decryption.certificates_decrypted
            // A decrypted resumption has no Certificate message: nothing is hidden.
            && !(s.resumed && s.decryption.active()),
        client_certificate_requested: s.certificate_request,
        validation,
        accepted,
        alerts,
        handshake_complete: s.handshake_complete,
        bytes_to_server: s.app_data_bytes.to_server,
        bytes_to_client: s.app_data_bytes.to_client,
        start: info.first_ts,
        packet: info.first_packet,
        go_host,
        via: None,
        decryption: s
            .decryption
            .attempted
            .then(|| decryption_summary(&s.decryption)),
        public_validation,
        cert_ts,
        cert_packet,
    }
}

fn decryption_summary(d: &crate::proto::tls::Decryption) -> TlsDecryption {
    TlsDecryption {
        unavailable: d.unavailable.clone(),
        records_decrypted: d.decrypted_total(),
        records_failed: d.failed_total(),
        records_skipped: d.skipped.to_server.saturating_add(d.skipped.to_client),
        plaintext_bytes_to_server: d.plaintext_bytes.to_server,
        plaintext_bytes_to_client: d.plaintext_bytes.to_client,
        first_failure: d.first_failure.as_ref().map(|(dir, _, packet, why)| {
            let side = if *dir == Dir::ToServer {
                "to-server"
            } else {
                "to-client"
            };
            format!("{side} record in packet {packet}: {why}")
        }),
        first_failure_packet: d.first_failure.as_ref().map(|f| f.2),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::proto::tls::{Reason, ValidationStatus};

    /// A TLS record as `summarize` would make it: TLS 1.2, one self-signed leaf.
    pub(crate) fn record(
        flow: FlowId,
        server: &str,
        valid: bool,
        accepted: Option<bool>,
    ) -> TlsRecord {
        let leaf = CertInfo {
            subject: "CN=lab.test".into(),
            issuer: "CN=lab.test".into(),
            sans: vec!["lab.test".into()],
            not_before: "2026-01-01T00:00:00Z".into(),
            not_after: "2027-01-01T00:00:00Z".into(),
            serial: "11".into(),
            key_type: "ecdsa".into(),
            key_bits: 256,
            signature_algorithm: "ecdsa-with-SHA256".into(),
            sha256: "ab".repeat(32),
            self_signed: true,
        };
        let validation = Validation {
            status: if valid {
                ValidationStatus::Valid
            } else {
                ValidationStatus::Invalid
            },
            reason: (!valid).then_some(Reason::SelfSigned),
            also: Vec::new(),
            detail: String::new(),
        };
        TlsRecord {
            flow,
            client: "10.0.0.1:50000".parse().unwrap(),
            server: server.parse().unwrap(),
            sni: Some("lab.test".into()),
            alpn: vec!["http/1.1".into()],
            alpn_selected: None,
            version: Some("TLSv1.2".into()),
            version_code: Some(0x0303),
            cipher: None,
            ja4: None,
            certificates: vec![leaf],
            certificates_hidden: false,
            client_certificate_requested: false,
            validation: Some(validation),
            accepted,
            alerts: Vec::new(),
            handshake_complete: accepted == Some(true),
            bytes_to_server: 0,
            bytes_to_client: 0,
            start: Ts(1_000_000_000),
            packet: 1,
            go_host: None,
            via: None,
            decryption: None,
            public_validation: None,
            cert_ts: Ts(1_000_000_000),
            cert_packet: 4,
        }
    }

    #[test]
    fn summarize_judges_acceptance_from_the_session() {
        use crate::flow::FlowInfo;
        use crate::proto::tls::{Alert, TlsSession};
        let info = FlowInfo {
            id: 7,
            client: "127.0.0.1:40000".parse().unwrap(),
            server: "127.0.0.1:8092".parse().unwrap(),
            first_ts: Ts(5),
            first_packet: 1,
            saw_syn: true,
        };
        let policy = TlsPolicy {
            go_hosts: vec![("127.0.0.1".into(), 8092)],
            ..TlsPolicy::default()
        };
        let mut s = TlsSession::default();
        s.alerts.push(Alert {
            dir: Dir::ToServer,
            ts: Ts(6),
            packet: 5,
            level: Some(2),
            description: Some(42),
            encrypted: false,
        });
        let r = summarize(&info, &s, None, &policy);
        assert_eq!(
            r.accepted,
            Some(false),
            "bad_certificate from the client is a refusal"
        );
        assert_eq!(r.go_host.as_deref(), Some("127.0.0.1:8092"));
        assert!(r.validation.is_none(), "no chain, nothing validated");
        let mut s = TlsSession {
            client_app_data_after_handshake: Some((Ts(9), 9)),
            ..TlsSession::default()
        };
        s.alerts.push(Alert {
            dir: Dir::ToClient,
            ts: Ts(6),
            packet: 5,
            level: Some(1),
            description: Some(0),
            encrypted: false,
        });
        assert_eq!(summarize(&info, &s, None, &policy).accepted, Some(true));
        assert_eq!(
            summarize(&info, &TlsSession::default(), None, &policy).accepted,
            None
        );
        // A finished handshake, then closed unused (an idle pooled connection): accepted.
        let idle = TlsSession {
            handshake_complete: true,
            client_closed_before_app_data: true,
            ..TlsSession::default()
        };
        assert_eq!(summarize(&info, &idle, None, &policy).accepted, Some(true));
        // Not finished and closed (or reset) without an alert: nothing was decided (the go
        // command abandons a second dial it no longer needs in the middle of its handshake).
        let closed = TlsSession {
            client_closed_before_app_data: true,
            ..TlsSession::default()
        };
        assert_eq!(summarize(&info, &closed, None, &policy).accepted, None);
        let reset = TlsSession {
            client_closed_before_app_data: true,
            reset: Some(Dir::ToServer),
            ..TlsSession::default()
        };
        assert_eq!(summarize(&info, &reset, None, &policy).accepted, None);
        // With the alert the go command sends when it refuses: refused.
        let mut refused = closed.clone();
        refused.alerts.push(Alert {
            dir: Dir::ToServer,
            ts: Ts(7),
            packet: 6,
            level: Some(2),
            description: Some(42), // bad_certificate
            encrypted: false,
        });
        assert_eq!(
            summarize(&info, &refused, None, &policy).accepted,
            Some(false)
        );
        let other_port = FlowInfo {
            server: "127.0.0.1:8089".parse().unwrap(),
            ..info
        };
        assert_eq!(
            summarize(&other_port, &s, None, &policy).go_host,
            None,
            "same host, other port"
        );
    }
}
