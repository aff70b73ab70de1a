//! TLS on the wire, sans-I/O: records, cleartext handshake messages, alerts, the JA4
//! fingerprint of the ClientHello, and certificate chain validation. (Owned by the TLS work
//! item.)
//!
//! - [`parser`]: pure parsers (record header, ClientHello, ServerHello, Certificate, the
//!   SSLv2-compatible ClientHello) and JA4.
//! - [`state`]: [`TlsConn`], one per TCP flow: reassembled stream chunks in, [`TlsEvent`]s out,
//!   and a [`TlsSession`] summary kept up to date.
//! - [`verify`]: [`TrustStore`] (bundled webpki roots, `--ca-file`, `--system-roots`),
//!   chain validation at the capture's time, and [`cert_details`].
//!
//! Nothing here reads a clock or a socket: time is the packet's [`Ts`]. The only I/O is in the
//! `TrustStore` constructors that read a CA file or the system roots.

// House style: no indexing, unwrap or unchecked arithmetic on wire data outside tests.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::arithmetic_side_effects
    )
)]

use crate::flow::{Dir, FlowId};
use crate::time::Ts;

pub mod decrypt;
pub mod keylog;
pub mod keys;
pub mod parser;
pub mod state;
pub mod verify;

#[cfg(test)]
mod corpus_tests;
#[cfg(test)]
mod keyed_tests;
#[cfg(test)]
mod tests;

pub use parser::{looks_like_tls_client, HelloFormat};
pub use state::TlsConn;
pub use verify::{
    cert_details, CertError, CertInfo, Reason, ServerNameInput, TrustError, TrustStore, Validation,
    ValidationStatus,
};

/// A value per direction of a flow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PerDir<T> {
    pub to_server: T,
    pub to_client: T,
}

impl<T> PerDir<T> {
    pub fn get(&self, dir: Dir) -> &T {
        match dir {
            Dir::ToServer => &self.to_server,
            Dir::ToClient => &self.to_client,
        }
    }
    pub fn get_mut(&mut self, dir: Dir) -> &mut T {
        match dir {
            Dir::ToServer => &mut self.to_server,
            Dir::ToClient => &mut self.to_client,
        }
    }
}

/// Every TLS limit, with why. Hitting one is an anomaly (event + count), never growth.
#[derive(Clone, Debug)]
pub struct TlsLimits {
    /// Record body bytes. RFC 5246 6.2.3 allows a TLSCiphertext of 2^14 + 2048 bytes (RFC 8446
    /// 5.2 allows only 2^14 + 256). A longer record is an anomaly; it is skipped by its length
    /// (never buffered) and the stream stays in sync.
    pub max_record: usize,
    /// One handshake message (reassembled across records). Real certificate chains are a few
    /// KB, rarely above 16 KB; 64 KiB leaves room for long chains while a hostile 16 MiB length
    /// cannot make us buffer. A longer message is an anomaly and is skipped by its length.
    pub max_handshake_message: usize,
    /// Certificates kept from one Certificate message (a chain longer than this is kept
    /// truncated and counted; real chains have 2 to 4).
    pub max_certificates: usize,
    /// Alerts kept per session (a peer looping alerts must not grow memory).
    pub max_alerts: usize,
    /// Anomaly descriptions kept per session (all are counted).
    pub max_anomaly_notes: usize,
    /// Bytes scanned for a plausible record header after a gap before the direction is given
    /// up. 256 KiB covers the rest of several maximal records.
    pub max_resync_scan: usize,
    /// TLS 1.3: the most records the client's encrypted handshake flight is taken to span
    /// (Certificate, CertificateVerify, Finished with client authentication; RFC 8446 4.4).
    pub max_tls13_client_flight: u32,
    /// Live capture: a session whose secrets are not in the key log yet keeps its records
    /// until they come (a server writes its key log line during the handshake; modtrace reads
    /// the file a moment later). Off for files, whose key logs are complete from the start.
    pub wait_for_keys: bool,
    /// Record bytes kept per session while waiting for its secrets. 1 MiB covers the
    /// handshake and the first requests and answers of a module download.
    pub max_key_wait_bytes: usize,
}

impl Default for TlsLimits {
    fn default() -> Self {
        TlsLimits {
            max_record: (1 << 14) + 2048,
            max_handshake_message: 64 << 10,
            max_certificates: 16,
            max_alerts: 32,
            max_anomaly_notes: 16,
            max_resync_scan: 256 << 10,
            max_tls13_client_flight: 3,
            wait_for_keys: false,
            max_key_wait_bytes: 1 << 20,
        }
    }
}

/// A ClientHello as sent (RFC 8446 4.1.2, RFC 5246 7.4.1.2), or the SSLv2-compatible form
/// (RFC 5246 E.2, `sslv2_format`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientHello {
    /// Version in the record header that carried it (0x0002 for the SSLv2 format).
    pub record_version: u16,
    /// `legacy_version` (the `client_version` of TLS 1.2 and earlier).
    pub legacy_version: u16,
    /// The supported_versions extension (RFC 8446 4.2.1) as offered, GREASE included; empty
    /// when absent.
    pub supported_versions: Vec<u16>,
    /// The first host_name of the server_name extension (RFC 6066 3), bytes that are not
    /// UTF-8 written `\xNN`.
    pub sni: Option<String>,
    /// ALPN protocol names (RFC 7301) in order, escaped like `sni`.
    pub alpn: Vec<String>,
    pub cipher_suites: Vec<u16>,
    pub compression_methods: Vec<u8>,
    /// Extension types in the order sent, GREASE included.
    pub extensions: Vec<u16>,
    /// signature_algorithms (RFC 8446 4.2.3) in the order sent.
    pub signature_algorithms: Vec<u16>,
    /// supported_groups (RFC 8446 4.2.7, RFC 8422 5.1.1) in the order sent.
    pub supported_groups: Vec<u16>,
    /// 32 bytes; for the SSLv2 format the challenge, left-padded with zeros (RFC 5246 E.2).
    pub random: Vec<u8>,
    pub session_id: Vec<u8>,
    /// Extensions whose content did not decode (their type is still in `extensions`).
    pub malformed_extensions: Vec<u16>,
    /// The SSLv2-compatible ClientHello format (RFC 5246 E.2; RFC 6176 forbids SSLv2 itself).
    pub sslv2_format: bool,
    /// FoxIO JA4, e.g. `t13d1516h2_8daaf6152771_e5627efa2ab1`.
    pub ja4: String,
    /// JA4_r: the same before hashing (sorted lists in clear).
    pub ja4_r: String,
}

impl ClientHello {
    /// The highest version offered: the largest non-GREASE value of supported_versions, else
    /// `legacy_version` (RFC 8446 4.2.1).
    pub fn max_offered_version(&self) -> u16 {
        self.supported_versions
            .iter()
            .copied()
            .filter(|v| !parser::is_grease(*v))
            .max()
            .unwrap_or(self.legacy_version)
    }
}

/// A ServerHello (RFC 8446 4.1.3) or HelloRetryRequest (RFC 8446 4.1.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerHello {
    pub record_version: u16,
    pub legacy_version: u16,
    /// The version chosen: supported_versions (RFC 8446 4.2.1) when present, else
    /// `legacy_version`.
    pub version: u16,
    pub cipher_suite: u16,
    pub compression_method: u8,
    /// ALPN selected in the ServerHello (TLS 1.2 and earlier; in TLS 1.3 it is in the
    /// encrypted EncryptedExtensions and so not visible).
    pub alpn: Option<String>,
    pub random: Vec<u8>,
    pub session_id: Vec<u8>,
    pub extensions: Vec<u16>,
    /// The special random of RFC 8446 4.1.3: this is a HelloRetryRequest.
    pub hello_retry_request: bool,
    /// The last 8 bytes of the random are the RFC 8446 4.1.3 downgrade sentinel
    /// (`DOWNGRD\x01` or `DOWNGRD\x00`): a TLS 1.3 server chose an older version.
    pub downgrade_sentinel: bool,
    pub malformed_extensions: Vec<u16>,
}

impl ServerHello {
    /// TLS 1.3 (final or a draft): everything after this message is encrypted.
    pub fn is_tls13(&self) -> bool {
        is_tls13_version(self.version)
    }
}

/// One alert record's content (RFC 8446 6, RFC 5246 7.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    /// Who sent it.
    pub dir: Dir,
    pub ts: Ts,
    pub packet: u64,
    /// 1 warning, 2 fatal; `None` when encrypted.
    pub level: Option<u8>,
    pub description: Option<u8>,
    /// A record of type 21 sent after the sender's ChangeCipherSpec (TLS 1.2 and earlier):
    /// level and description are encrypted. (TLS 1.3 hides alerts as type 23 records, which
    /// are not counted here.)
    pub encrypted: bool,
}

impl Alert {
    /// `fatal unknown_ca`, `warning close_notify`, `encrypted`.
    pub fn describe(&self) -> String {
        match (self.level, self.description) {
            (Some(l), Some(d)) => format!("{} {}", alert_level_name(l), alert_name(d)),
            _ => "encrypted".to_string(),
        }
    }
    /// A description that says the sender refused the peer's certificate (RFC 8446 6.2).
    pub fn is_certificate_rejection(&self) -> bool {
        matches!(self.description, Some(42..=46) | Some(48) | Some(116))
    }
}

/// What a flow told about its TLS session so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsSession {
    /// The first ClientHello (a second one follows a HelloRetryRequest; see `client_hellos`).
    pub client_hello: Option<ClientHello>,
    pub client_hellos: u32,
    /// The ServerHello that fixed the version (not a HelloRetryRequest).
    pub server_hello: Option<ServerHello>,
    pub hello_retry_request: bool,
    /// The server's chain in the order sent (leaf first), DER. TLS 1.2 and earlier only.
    pub certificates: Vec<Vec<u8>>,
    /// Certificates of the server chain beyond `TlsLimits::max_certificates` (not kept).
    pub certificates_dropped: usize,
    /// The client's chain (mutual TLS, TLS 1.2 and earlier).
    pub client_certificates: Vec<Vec<u8>>,
    /// TLS 1.3 was negotiated: the Certificate message is encrypted (RFC 8446 4.4.2), so
    /// whether and which certificate the server sent is not visible.
    pub certificates_hidden: bool,
    /// The server asked for a client certificate (CertificateRequest, TLS 1.2 and earlier).
    pub certificate_request: bool,
    /// An abbreviated handshake: TLS 1.2 session resumption (the server echoed a non-empty
    /// session id, RFC 5246 7.3 / RFC 5077 3.4) or TLS 1.3 PSK (pre_shared_key in the
    /// ServerHello, RFC 8446 4.2.11). No certificate is sent then.
    pub resumed: bool,
    /// Alerts from both sides, in order, up to `TlsLimits::max_alerts`.
    pub alerts: Vec<Alert>,
    pub alerts_dropped: u64,
    /// First ChangeCipherSpec per direction.
    pub change_cipher_spec: PerDir<Option<(Ts, u64)>>,
    /// Records of type 23 and their body bytes per direction. In TLS 1.3 these include the
    /// encrypted handshake messages (RFC 8446 5.2 hides the real type).
    pub app_data_records: PerDir<u64>,
    pub app_data_bytes: PerDir<u64>,
    /// Time and packet of the client's first application-data record after its handshake
    /// ended (see [`state`] for the rule): the client accepted the server.
    pub client_app_data_after_handshake: Option<(Ts, u64)>,
    /// TLS 1.3: the client's first encrypted record after the ServerHello was 19 bytes, the
    /// size of an encrypted alert (2 bytes + inner type + 16-byte AEAD tag), where a Finished
    /// was expected. A strong hint that the client refused the handshake.
    pub tls13_client_alert_sized_record: Option<(Ts, u64)>,
    /// The client closed (FIN or RST) before any application data after its handshake.
    pub client_closed_before_app_data: bool,
    /// The server closed (FIN or RST) before the client sent application data.
    pub server_closed_before_client_app_data: bool,
    /// The first side that sent a RST, if any.
    pub reset: Option<Dir>,
    /// Both Finished messages were sent (TLS 1.2: an encrypted handshake record after each
    /// side's ChangeCipherSpec; TLS 1.3: the client's encrypted flight ended).
    pub handshake_complete: bool,
    pub handshake_complete_at: Option<(Ts, u64)>,
    /// Gaps per direction and bytes lost in them.
    pub gaps: PerDir<u64>,
    /// Parsing of a direction stopped (not TLS, or no plausible record header after a gap).
    pub stopped: PerDir<bool>,
    /// The ClientHello came in the SSLv2-compatible format.
    pub sslv2_client_hello: bool,
    /// The server answered in SSLv2 (a SERVER-HELLO with a 2-byte header).
    pub sslv2_server_hello: bool,
    pub anomalies: u64,
    /// The first few anomaly descriptions (`TlsLimits::max_anomaly_notes`).
    pub anomaly_notes: Vec<String>,
    /// What key-log decryption did (all zero without a key log).
    pub decryption: Decryption,
}

/// What key-log decryption did for one session ([`TlsConn::on_data_keyed`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decryption {
    /// A key log was given when the ServerHello was read, so keys were looked up.
    pub attempted: bool,
    /// Why the session could not be decrypted (no secrets for its client random, an
    /// unsupported suite or version); `None` when it could.
    pub unavailable: Option<String>,
    /// Protected records decrypted, per direction.
    pub decrypted: PerDir<u64>,
    /// Protected records that did not authenticate under the logged keys (tls-decrypt-failed).
    pub failed: PerDir<u64>,
    /// Protected records not tried: after a gap (TLS sequence numbers no longer match), an
    /// over-long record, or no keys for that phase in the key log.
    pub skipped: PerDir<u64>,
    /// The first failure: direction, time, packet and what went wrong.
    pub first_failure: Option<(Dir, Ts, u64, String)>,
    /// Application-data plaintext bytes, per direction.
    pub plaintext_bytes: PerDir<u64>,
    /// TLS 1.3: the ALPN protocol in the decrypted EncryptedExtensions.
    pub alpn_selected: Option<String>,
    /// TLS 1.3: the server's Certificate message was decrypted.
    pub certificates_decrypted: bool,
}

impl Decryption {
    /// The session's application data was decrypted (at least one record).
    pub fn active(&self) -> bool {
        self.attempted && self.unavailable.is_none()
    }
    pub fn failed_total(&self) -> u64 {
        self.failed.to_server.saturating_add(self.failed.to_client)
    }
    pub fn decrypted_total(&self) -> u64 {
        self.decrypted
            .to_server
            .saturating_add(self.decrypted.to_client)
    }
}

impl TlsSession {
    /// The negotiated version: the ServerHello's, else `None`.
    pub fn version(&self) -> Option<u16> {
        self.server_hello.as_ref().map(|s| s.version)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsEvent {
    ClientHello {
        flow: FlowId,
        ts: Ts,
        packet: u64,
        hello: Box<ClientHello>,
    },
    ServerHello {
        flow: FlowId,
        ts: Ts,
        packet: u64,
        hello: Box<ServerHello>,
    },
    /// A Certificate message in the clear (TLS 1.2 and earlier): from the server (its chain)
    /// or, with `dir == ToServer`, the client's.
    Certificates {
        flow: FlowId,
        dir: Dir,
        ts: Ts,
        packet: u64,
        chain: Vec<Vec<u8>>,
    },
    /// The server asked for a client certificate (TLS 1.2 and earlier: visible).
    CertificateRequest {
        flow: FlowId,
        ts: Ts,
        packet: u64,
    },
    /// TLS 1.3 hid the certificate: the ServerHello chose TLS 1.3.
    CertificatesHidden {
        flow: FlowId,
        ts: Ts,
        packet: u64,
    },
    Alert {
        flow: FlowId,
        alert: Alert,
    },
    ChangeCipherSpec {
        flow: FlowId,
        dir: Dir,
        ts: Ts,
        packet: u64,
    },
    HandshakeComplete {
        flow: FlowId,
        ts: Ts,
        packet: u64,
    },
    /// The client's first application-data record after its handshake ended.
    ClientAppData {
        flow: FlowId,
        ts: Ts,
        packet: u64,
    },
    /// TLS 1.3: a 19-byte encrypted record where the client's Finished was expected (see
    /// [`TlsSession::tls13_client_alert_sized_record`]).
    Tls13ClientAlertSized {
        flow: FlowId,
        ts: Ts,
        packet: u64,
    },
    /// A side sent FIN (`reset: false`) or RST. `before_app_data`: the client had not sent
    /// application data after its handshake.
    Closed {
        flow: FlowId,
        dir: Dir,
        ts: Ts,
        packet: u64,
        reset: bool,
        before_app_data: bool,
    },
    /// Decrypted application data (key log), in order per direction: the bytes of the
    /// protocol inside (HTTP/1.1 or HTTP/2).
    Plaintext {
        flow: FlowId,
        dir: Dir,
        ts: Ts,
        packet: u64,
        data: Vec<u8>,
    },
    /// Decryption of a direction stopped (a gap in the TCP stream, or an over-long record):
    /// the plaintext has a hole of unknown size here.
    PlaintextGap {
        flow: FlowId,
        dir: Dir,
        ts: Ts,
    },
    /// Not valid TLS where TLS was expected, or a limit hit.
    Anomaly {
        flow: FlowId,
        dir: Dir,
        ts: Ts,
        what: String,
    },
}

/// TLS 1.3 final, an IETF draft (0x7fNN) or Facebook's draft variant (0xfb17, 0xfb1a).
pub fn is_tls13_version(v: u16) -> bool {
    v == 0x0304 || v >> 8 == 0x7f || v == 0xfb17 || v == 0xfb1a
}

/// A version older than TLS 1.2 (RFC 8996 deprecates TLS 1.0 and 1.1; RFC 7568 SSL 3.0).
pub fn is_legacy_version(v: u16) -> bool {
    v < 0x0303 && v != 0
}

/// `SSLv2`, `SSLv3`, `TLSv1.0`, `TLSv1.1`, `TLSv1.2`, `TLSv1.3`, `TLSv1.3-draft28`; else
/// `0x1234`.
pub fn version_name(v: u16) -> String {
    match v {
        0x0002 | 0x0200 => "SSLv2".into(),
        0x0300 => "SSLv3".into(),
        0x0301 => "TLSv1.0".into(),
        0x0302 => "TLSv1.1".into(),
        0x0303 => "TLSv1.2".into(),
        0x0304 => "TLSv1.3".into(),
        v if v >> 8 == 0x7f => format!("TLSv1.3-draft{}", v & 0xff),
        _ => format!("0x{v:04x}"),
    }
}

/// IANA names of the common cipher suites (TLS Cipher Suites registry); others as `0x1234`.
pub fn cipher_suite_name(cs: u16) -> String {
    let name = match cs {
        0x1301 => "TLS_AES_128_GCM_SHA256",
        0x1302 => "TLS_AES_256_GCM_SHA384",
        0x1303 => "TLS_CHACHA20_POLY1305_SHA256",
        0x1304 => "TLS_AES_128_CCM_SHA256",
        0x1305 => "TLS_AES_128_CCM_8_SHA256",
        0xc02b => "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        0xc02c => "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        0xc02f => "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        0xc030 => "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        0xcca8 => "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        0xcca9 => "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        0xccaa => "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        0xc009 => "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
        0xc00a => "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
        0xc013 => "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
        0xc014 => "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
        0xc023 => "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
        0xc024 => "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
        0xc027 => "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
        0xc028 => "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
        0xc007 => "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
        0xc011 => "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
        0xc012 => "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
        0x009c => "TLS_RSA_WITH_AES_128_GCM_SHA256",
        0x009d => "TLS_RSA_WITH_AES_256_GCM_SHA384",
        0x009e => "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
        0x009f => "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
        0x002f => "TLS_RSA_WITH_AES_128_CBC_SHA",
        0x0035 => "TLS_RSA_WITH_AES_256_CBC_SHA",
        0x003c => "TLS_RSA_WITH_AES_128_CBC_SHA256",
        0x003d => "TLS_RSA_WITH_AES_256_CBC_SHA256",
        0x0033 => "TLS_DHE_RSA_WITH_AES_128_CBC_SHA",
        0x0039 => "TLS_DHE_RSA_WITH_AES_256_CBC_SHA",
        0x0088 => "TLS_DHE_RSA_WITH_CAMELLIA_256_CBC_SHA",
        0x000a => "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
        0x0004 => "TLS_RSA_WITH_RC4_128_MD5",
        0x0005 => "TLS_RSA_WITH_RC4_128_SHA",
        0x00ff => "TLS_EMPTY_RENEGOTIATION_INFO_SCSV",
        0x5600 => "TLS_FALLBACK_SCSV",
        v if parser::is_grease(v) => "GREASE",
        v => return format!("0x{v:04x}"),
    };
    name.to_string()
}

/// `warning`, `fatal`, else the number.
pub fn alert_level_name(level: u8) -> String {
    match level {
        1 => "warning".into(),
        2 => "fatal".into(),
        n => format!("level-{n}"),
    }
}

/// RFC 8446 6 and RFC 5246 7.2 (plus RFC 7301, RFC 8446 B.2, draft-ietf-tls-esni) alert
/// names; others as `alert-N`.
pub fn alert_name(description: u8) -> String {
    let name = match description {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        21 => "decryption_failed",
        22 => "record_overflow",
        30 => "decompression_failure",
        40 => "handshake_failure",
        41 => "no_certificate",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        49 => "access_denied",
        50 => "decode_error",
        51 => "decrypt_error",
        60 => "export_restriction",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        100 => "no_renegotiation",
        109 => "missing_extension",
        110 => "unsupported_extension",
        111 => "certificate_unobtainable",
        112 => "unrecognized_name",
        113 => "bad_certificate_status_response",
        114 => "bad_certificate_hash_value",
        115 => "unknown_psk_identity",
        116 => "certificate_required",
        120 => "no_application_protocol",
        121 => "ech_required",
        n => return format!("alert-{n}"),
    };
    name.to_string()
}
