//! The key-log side of [`TlsConn`]: a session's secrets looked up by client random, records
//! decrypted with them (or kept until they come, `TlsLimits::wait_for_keys`), TLS 1.3 early
//! data kept until the keys are known, and what the decrypted handshake says (the server's
//! Certificate in TLS 1.3). The record layer that calls it is in mod.rs.

use super::handshake_stream::{Handshake, HandshakeStream};
use super::TlsConn;
use crate::flow::Dir;
use crate::proto::tls::decrypt::{
    session_decryptors, DecryptError, NoDecryption, Plain, SessionDecryptors,
};
use crate::proto::tls::keylog::KeyLog;
use crate::proto::tls::parser::{self, content, handshake, RecordHeader};
use crate::proto::tls::TlsEvent;
use crate::time::Ts;

/// RFC 8446 4.2.10: early data is limited by the server's max_early_data_size; 64 KiB keeps
/// the requests a client sends at once.
pub(super) const EARLY_DATA_KEPT: usize = 64 << 10;
/// RFC 8446 4.2.10: the early_data extension.
const EXT_EARLY_DATA: u16 = 42;

/// Key-log decryption of the connection (see [`TlsConn::on_data_keyed`]).
#[derive(Clone, Debug, Default)]
pub(super) enum DecryptState {
    /// No ServerHello yet.
    #[default]
    Idle,
    /// The ServerHello is known: keys are looked up before the next record is read.
    Pending,
    Active(Box<SessionDecryptors>),
    /// `TlsLimits::wait_for_keys`: the key log has no secrets for this session yet; records
    /// are kept until they come (or the limit is hit).
    Waiting(Box<KeyWait>),
    /// Looked up and not available (see [`super::Decryption::unavailable`]), or no key log.
    Off,
}

/// Records kept while waiting for a session's secrets, in the order they came.
#[derive(Clone, Debug, Default)]
pub(super) struct KeyWait {
    pub(super) records: Vec<(Dir, Ts, u64, RecordHeader, Vec<u8>)>,
    pub(super) bytes: usize,
}

/// Per-direction decryption state.
#[derive(Clone, Debug, Default)]
pub(super) struct DecDir {
    /// Records were lost (gap, over-long record): sequence numbers no longer match, so the
    /// direction is not decrypted any more.
    pub(super) broken: bool,
    /// The handshake messages of the decrypted records.
    pub(super) hs: HandshakeStream,
}

impl TlsConn {
    /// The session waits for its secrets (`TlsLimits::wait_for_keys`).
    pub fn waits_for_keys(&self) -> bool {
        matches!(self.decrypt, DecryptState::Waiting(_))
    }

    /// Directions are decrypted while keys are active and no record of theirs was lost.
    pub(super) fn decrypting(&self, dir: Dir) -> bool {
        matches!(self.decrypt, DecryptState::Active(_)) && !self.dec.get(dir).broken
    }

    /// TLS 1.3 0-RTT: a client record of type 23 before the ServerHello, from a client that
    /// offered early data (RFC 8446 4.2.10), while keys might still come.
    pub(super) fn early_candidate(&self, dir: Dir, header: &RecordHeader) -> bool {
        dir == Dir::ToServer
            && header.content_type == content::APPLICATION_DATA
            && matches!(self.decrypt, DecryptState::Idle)
            && self.session.server_hello.is_none()
            && self
                .session
                .client_hello
                .as_ref()
                .is_some_and(|c| c.extensions.contains(&EXT_EARLY_DATA))
    }

    pub(super) fn keep_early(&mut self, ts: Ts, packet: u64, header: RecordHeader, body: Vec<u8>) {
        if self.early_bytes.saturating_add(body.len()) <= EARLY_DATA_KEPT {
            self.early_bytes = self.early_bytes.saturating_add(body.len());
            self.early.push((ts, packet, header, body));
        }
    }

    /// Keys are known: the kept early data goes through the client's decryptor first (it
    /// was the client's first protected data).
    pub(super) fn replay_early(&mut self, out: &mut Vec<TlsEvent>) {
        let early = std::mem::take(&mut self.early);
        self.early_bytes = 0;
        match &mut self.decrypt {
            DecryptState::Waiting(wait) => {
                let mut records: Vec<_> = early
                    .into_iter()
                    .map(|(ts, packet, h, body)| (Dir::ToServer, ts, packet, h, body))
                    .collect();
                wait.bytes = wait
                    .bytes
                    .saturating_add(records.iter().map(|r| r.4.len()).sum::<usize>());
                records.append(&mut wait.records);
                wait.records = records;
            }
            DecryptState::Active(_) => {
                for (ts, packet, header, body) in early {
                    self.on_protected_record(Dir::ToServer, ts, packet, header, &body, out);
                }
            }
            _ => {}
        }
    }

    /// Records are read whole: to be decrypted now, or once the keys come.
    pub(super) fn collecting(&self, dir: Dir) -> bool {
        matches!(
            self.decrypt,
            DecryptState::Active(_) | DecryptState::Waiting(_)
        ) && !self.dec.get(dir).broken
    }

    /// While waiting for keys (`TlsLimits::wait_for_keys`): looks the session up again in
    /// `keys` and, when its secrets are there now, decrypts the records kept so far. The
    /// caller calls it when the key log grew, and before it summarises the session.
    ///
    /// `last`: the session is about to be summarised, so secrets that are only partly there
    /// are used as they are (before that, a live key log may still be writing the rest).
    pub fn retry_keys(&mut self, keys: &KeyLog, last: bool, out: &mut Vec<TlsEvent>) {
        if !matches!(self.decrypt, DecryptState::Waiting(_)) {
            return;
        }
        let known = self
            .session
            .client_hello
            .as_ref()
            .is_some_and(|c| keys.get(&c.random).is_some());
        if !known || !(last || self.secrets_complete(keys)) {
            return;
        }
        let DecryptState::Waiting(wait) = std::mem::replace(&mut self.decrypt, DecryptState::Off)
        else {
            return;
        };
        match session_decryptors(&self.session, keys) {
            Ok(d) => {
                self.session.decryption.unavailable = None;
                self.decrypt = DecryptState::Active(Box::new(d));
            }
            Err(e) => {
                self.session.decryption.unavailable = Some(e.to_string());
                return;
            }
        }
        // The kept records were handled as without keys when they came (clear ones read,
        // encrypted alerts counted); now only their decryption is left.
        for (dir, ts, packet, header, body) in wait.records {
            let DecryptState::Active(keys) = &mut self.decrypt else {
                return;
            };
            let result = keys
                .get_mut(dir)
                .decrypt(header.content_type, header.version, &body);
            match result {
                Ok(None) => {}
                Ok(Some(plain)) => {
                    let stats = &mut self.session.decryption;
                    *stats.decrypted.get_mut(dir) = stats.decrypted.get(dir).saturating_add(1);
                    self.on_plain(dir, ts, packet, plain, out);
                }
                Err(e) => self.count_decrypt_error(dir, ts, packet, &e),
            }
        }
    }

    /// The key log has every secret this session's version needs: TLS 1.3 the four
    /// handshake and traffic secrets, TLS 1.2 the master secret.
    pub(super) fn secrets_complete(&self, keys: &KeyLog) -> bool {
        let Some(secrets) = self
            .session
            .client_hello
            .as_ref()
            .and_then(|c| keys.get(&c.random))
        else {
            return false;
        };
        if self
            .session
            .server_hello
            .as_ref()
            .is_some_and(|h| h.is_tls13())
        {
            secrets.client_handshake_traffic_secret.is_some()
                && secrets.server_handshake_traffic_secret.is_some()
                && secrets.client_traffic_secret_0.is_some()
                && secrets.server_traffic_secret_0.is_some()
        } else {
            secrets.master_secret.is_some()
        }
    }

    pub(super) fn count_decrypt_error(&mut self, dir: Dir, ts: Ts, packet: u64, e: &DecryptError) {
        let stats = &mut self.session.decryption;
        if e.is_failure() {
            *stats.failed.get_mut(dir) = stats.failed.get(dir).saturating_add(1);
            if stats.first_failure.is_none() {
                stats.first_failure = Some((dir, ts, packet, e.to_string()));
            }
        } else {
            *stats.skipped.get_mut(dir) = stats.skipped.get(dir).saturating_add(1);
        }
    }

    /// Whether a record is read as it is without keys (handshake, alert and CCS records
    /// before this side's encryption starts).
    pub(super) fn readable_in_clear(&self, dir: Dir, header: &RecordHeader) -> bool {
        let encrypted = self.dirs.get(dir).encrypted;
        match header.content_type {
            content::APPLICATION_DATA | content::HEARTBEAT => false,
            content::HANDSHAKE => !encrypted,
            content::ALERT => !encrypted || header.len == 2,
            _ => true,
        }
    }

    /// Looks the session's secrets up, once, after the ServerHello.
    pub(super) fn look_up_keys(&mut self, keys: Option<&KeyLog>) {
        let Some(keys) = keys.filter(|k| !k.is_empty()) else {
            // Live, the key log may still be empty: the first session waits for it too.
            self.decrypt = if self.limits.wait_for_keys {
                self.session.decryption.attempted = true;
                self.session.decryption.unavailable = Some(NoDecryption::NotInKeyLog.to_string());
                DecryptState::Waiting(Box::default())
            } else {
                DecryptState::Off
            };
            return;
        };
        self.session.decryption.attempted = true;
        if self.limits.wait_for_keys && !self.secrets_complete(keys) {
            // A live key log may hold only the first of the session's lines yet.
            self.session.decryption.unavailable = Some(NoDecryption::NotInKeyLog.to_string());
            self.decrypt = DecryptState::Waiting(Box::default());
            return;
        }
        match session_decryptors(&self.session, keys) {
            Ok(d) => self.decrypt = DecryptState::Active(Box::new(d)),
            Err(e) => {
                self.session.decryption.unavailable = Some(e.to_string());
                self.decrypt = if e == NoDecryption::NotInKeyLog && self.limits.wait_for_keys {
                    DecryptState::Waiting(Box::default())
                } else {
                    DecryptState::Off
                };
            }
        }
    }

    /// A record of this direction could not be read whole: stop decrypting the direction.
    pub(super) fn break_decryption(&mut self, dir: Dir, ts: Ts, out: &mut Vec<TlsEvent>) {
        if self.collecting(dir) {
            let active = self.decrypting(dir);
            self.dec.get_mut(dir).broken = true;
            if !active {
                return;
            }
            out.push(TlsEvent::PlaintextGap {
                flow: self.flow,
                dir,
                ts,
            });
        }
    }

    /// A whole record of a direction being decrypted: records in the clear go on to
    /// [`TlsConn::on_record`], protected ones are decrypted.
    pub(super) fn on_protected_record(
        &mut self,
        dir: Dir,
        ts: Ts,
        packet: u64,
        header: RecordHeader,
        body: &[u8],
        out: &mut Vec<TlsEvent>,
    ) {
        if let DecryptState::Waiting(wait) = &mut self.decrypt {
            // Kept for when the keys come; meanwhile read as without keys.
            let max = self.limits.max_key_wait_bytes;
            if wait.bytes.saturating_add(body.len()) <= max {
                wait.bytes = wait.bytes.saturating_add(body.len());
                wait.records.push((dir, ts, packet, header, body.to_vec()));
            } else {
                self.decrypt = DecryptState::Off;
                self.session.decryption.unavailable = Some(format!(
                    "the key log had no secrets for this connection's client random within its first {max} bytes"
                ));
            }
            if self.readable_in_clear(dir, &header) {
                self.on_record(dir, ts, packet, header, body, out);
            } else if header.content_type == content::ALERT {
                self.push_encrypted_alert(dir, ts, packet, out);
            }
            return;
        }
        let DecryptState::Active(keys) = &mut self.decrypt else {
            return self.on_record(dir, ts, packet, header, body, out);
        };
        let result = keys
            .get_mut(dir)
            .decrypt(header.content_type, header.version, body);
        match result {
            Ok(None) => self.on_record(dir, ts, packet, header, body, out),
            Ok(Some(plain)) => {
                let stats = &mut self.session.decryption;
                *stats.decrypted.get_mut(dir) = stats.decrypted.get(dir).saturating_add(1);
                self.on_plain(dir, ts, packet, plain, out);
            }
            Err(e) => {
                self.count_decrypt_error(dir, ts, packet, &e);
                if header.content_type == content::ALERT {
                    // Still an alert, as without keys.
                    self.push_encrypted_alert(dir, ts, packet, out);
                }
            }
        }
    }

    /// A decrypted record.
    pub(super) fn on_plain(
        &mut self,
        dir: Dir,
        ts: Ts,
        packet: u64,
        plain: Plain,
        out: &mut Vec<TlsEvent>,
    ) {
        match plain.content_type {
            content::APPLICATION_DATA => {
                let stats = &mut self.session.decryption;
                let n = u64::try_from(plain.data.len()).unwrap_or(u64::MAX);
                *stats.plaintext_bytes.get_mut(dir) =
                    stats.plaintext_bytes.get(dir).saturating_add(n);
                if !plain.data.is_empty() {
                    out.push(TlsEvent::Plaintext {
                        flow: self.flow,
                        dir,
                        ts,
                        packet,
                        data: plain.data,
                    });
                }
            }
            content::HANDSHAKE => self.on_decrypted_handshake(dir, ts, packet, &plain.data, out),
            content::ALERT => {
                self.push_clear_alerts(dir, ts, packet, &plain.data, out);
            }
            _ => {}
        }
    }

    /// Decrypted handshake bytes (TLS 1.3's encrypted flight, post-handshake messages, a TLS
    /// 1.2 Finished): the messages that say something about the peer are read.
    pub(super) fn on_decrypted_handshake(
        &mut self,
        dir: Dir,
        ts: Ts,
        packet: u64,
        data: &[u8],
        out: &mut Vec<TlsEvent>,
    ) {
        let max_msg = self.limits.max_handshake_message;
        let tls13 = self
            .session
            .server_hello
            .as_ref()
            .is_some_and(|h| h.is_tls13());
        let d = self.dec.get_mut(dir);
        d.hs.push(data);
        let mut messages = Vec::new();
        // An over-limit message is skipped by its length, as in the clear.
        while let Some(Handshake::Message { msg_type, body }) = d.hs.next(max_msg) {
            if matches!(
                msg_type,
                handshake::CERTIFICATE
                    | handshake::ENCRYPTED_EXTENSIONS
                    | handshake::CERTIFICATE_REQUEST
            ) {
                messages.push((msg_type, body));
            }
        }
        d.hs.compact();
        for (msg_type, body) in messages {
            match (dir, msg_type) {
                (Dir::ToClient, handshake::ENCRYPTED_EXTENSIONS) => {
                    self.session.decryption.alpn_selected =
                        parser::parse_encrypted_extensions_alpn(&body);
                }
                (_, handshake::CERTIFICATE) => {
                    if dir == Dir::ToClient && self.session.certificates.is_empty() {
                        self.session.decryption.certificates_decrypted = true;
                        self.session.certificates_hidden = false;
                    }
                    self.on_certificate(dir, ts, packet, &body, tls13, out);
                }
                (Dir::ToClient, handshake::CERTIFICATE_REQUEST)
                    if !self.session.certificate_request =>
                {
                    self.session.certificate_request = true;
                    out.push(TlsEvent::CertificateRequest {
                        flow: self.flow,
                        ts,
                        packet,
                    });
                }
                _ => {}
            }
        }
    }
}
