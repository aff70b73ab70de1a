//! [`TlsConn`]: one TCP flow's TLS, sans-I/O. Reassembled stream chunks in, [`TlsEvent`]s out,
//! a [`TlsSession`] summary kept up to date.
//!
//! Record layer (RFC 8446 5.1, RFC 5246 6.2): records may be split across chunks and several
//! may share one; handshake messages may span records and several may share one (RFC 8446
//! 5.1). Only records that are read in the clear are buffered (handshake, alert, CCS), each up
//! to `TlsLimits::max_record`; application data and encrypted records are skipped by length
//! without copying.
//!
//! Encryption (what is no longer readable):
//! - TLS 1.2 and earlier: a side's records after its ChangeCipherSpec (RFC 5246 7.1). Its next
//!   handshake record is its Finished; an alert record (type 21) is an encrypted alert.
//! - TLS 1.3: everything after the ServerHello except ChangeCipherSpec (middlebox
//!   compatibility, RFC 8446 D.4) goes in type-23 records (RFC 8446 5.2); the real content type
//!   is hidden, so alerts are not visible as alerts.
//!
//! "The client sent application data after its handshake" (the client accepted the server):
//! - TLS 1.2 and earlier: a type-23 record from the client after the client's ChangeCipherSpec
//!   (its Finished is a type-22 record after CCS, RFC 5246 7.4.9).
//! - TLS 1.3: the client's encrypted records after the server's ServerHello begin with its
//!   handshake flight (RFC 8446 2, 4.4: [Certificate, CertificateVerify,] Finished). The flight
//!   ends with the first record no longer than a Finished record (4-byte header + Hash.length
//!   (RFC 8446 4.4.4) + 1 inner type byte + AEAD tag: 53 bytes for SHA-256 suites, 69 for
//!   TLS_AES_256_GCM_SHA384, 45 for CCM_8), or at the end of the chunk in which a flight record
//!   ends (a client writes its flight at once; rustls puts Certificate, CertificateVerify and
//!   Finished in one record, other stacks may use one record per message), or after
//!   `TlsLimits::max_tls13_client_flight` records. The next type-23 record is application
//!   data. Limitation: with client authentication, a flight whose records reach the server in
//!   several TCP segments may end early, so its last records count as application data. A
//!   first record of exactly 19 bytes (11 with CCM_8) is the size of an encrypted alert
//!   (2 + 1 + AEAD tag) and is reported as such, not as a Finished. 0-RTT early data (type-23
//!   records before the ServerHello) is not "after the handshake".
//!
//! After a gap inside a record of known length, parsing stays in sync (the rest of that record
//! is skipped). A gap that crosses a record boundary loses sync: the direction resumes only at
//! a plausible record header (known type, same record version as before, length within
//! limits) confirmed by the following header (or by ending exactly at the chunk end); a
//! candidate that cannot be confirmed yet is followed tentatively (its contents are not
//! interpreted) and dropped if the header after it is not plausible. After
//! `TlsLimits::max_resync_scan` bytes without one the direction is given up (`stopped`).

mod handshake_stream;
mod keyed;

use handshake_stream::{Handshake, HandshakeStream};
use keyed::{DecDir, DecryptState};

use super::keylog::KeyLog;
use super::parser::{self, content, ext, handshake, RecordHeader, RECORD_HEADER_LEN};
use super::{Alert, PerDir, TlsEvent, TlsLimits, TlsSession};
use crate::flow::{Dir, FlowId};
use crate::time::Ts;

/// Where the record layer of one direction is.
#[derive(Clone, Debug, Default)]
enum RecordState {
    /// Between records; `header` holds up to 4 bytes of the next header.
    #[default]
    Header,
    /// Collecting the body of a record read in the clear.
    Body { header: RecordHeader },
    /// Collecting the body of an SSLv2-format record (2-byte header, RFC 5246 E.2).
    Sslv2Body { len: usize },
    /// Skipping the rest of a record (`remaining` bytes) without reading it.
    Skip { remaining: usize },
    /// Lost sync after a gap: scanning for a plausible record header.
    Resync,
    /// Given up: bytes are ignored.
    Stopped,
}

#[derive(Clone, Debug, Default)]
struct DirState {
    record: RecordState,
    /// Partial record header (fewer than 5 bytes).
    header: Vec<u8>,
    /// Body of the record being collected.
    body: Vec<u8>,
    /// The handshake messages of the records in the clear.
    hs: HandshakeStream,
    /// The handshake stream lost bytes (a gap): its messages are no longer parsed.
    hs_broken: bool,
    /// Records from this side are encrypted from here on.
    encrypted: bool,
    /// TLS 1.2: this side sent its encrypted Finished (first type-22 record after its CCS).
    finished: bool,
    /// The record version of the last record read (the resync check wants the same one).
    last_version: Option<u16>,
    /// Any record seen (the first may be in the SSLv2 format).
    seen_record: bool,
    /// Where resynchronisation after a gap stands.
    sync: SyncState,
    resync_scanned: usize,
    ended: bool,
}

/// Resynchronisation after a gap (module documentation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum SyncState {
    #[default]
    Normal,
    /// The scan chose the next header but could not confirm it: its record is skipped
    /// uninterpreted.
    Candidate,
    /// The header after the candidate decides: plausible confirms, anything else rescans.
    Confirming,
}

/// TLS 1.3 client flight tracking (see the module documentation).
#[derive(Clone, Debug, Default)]
struct Tls13ClientFlight {
    records: u32,
    done: bool,
}

/// One flow's TLS. Create it when the client's first bytes look like TLS
/// ([`super::looks_like_tls_client`]) and feed it every chunk of both directions in order.
#[derive(Clone, Debug)]
pub struct TlsConn {
    flow: FlowId,
    limits: TlsLimits,
    dirs: PerDir<DirState>,
    session: TlsSession,
    flight: Tls13ClientFlight,
    decrypt: DecryptState,
    dec: PerDir<DecDir>,
    /// TLS 1.3 0-RTT: the client's protected records before the ServerHello (its early
    /// data), kept (up to `EARLY_DATA_KEPT` bytes) to be decrypted first once keys are known.
    early: Vec<(Ts, u64, RecordHeader, Vec<u8>)>,
    early_bytes: usize,
}

/// What to do with a record once its header is known.
enum Plan {
    Collect,
    Skip,
}

impl TlsConn {
    pub fn new(flow: FlowId) -> TlsConn {
        TlsConn::with_limits(flow, TlsLimits::default())
    }

    pub fn with_limits(flow: FlowId, limits: TlsLimits) -> TlsConn {
        TlsConn {
            flow,
            limits,
            dirs: PerDir::default(),
            session: TlsSession::default(),
            flight: Tls13ClientFlight::default(),
            decrypt: DecryptState::Idle,
            dec: PerDir::default(),
            early: Vec::new(),
            early_bytes: 0,
        }
    }

    pub fn session(&self) -> &TlsSession {
        &self.session
    }

    pub fn flow(&self) -> FlowId {
        self.flow
    }

    /// In-order stream bytes of one direction.
    pub fn on_data(&mut self, dir: Dir, ts: Ts, packet: u64, data: &[u8], out: &mut Vec<TlsEvent>) {
        self.on_data_keyed(dir, ts, packet, data, None, out);
    }

    /// [`TlsConn::on_data`] with a key log: once the ServerHello is read, the session's
    /// secrets are looked up by client random (once; the key log given with the first record
    /// after the ServerHello counts). With keys, every later record of both directions is
    /// decrypted: application data comes out as [`TlsEvent::Plaintext`], a TLS 1.3 server's
    /// Certificate message fills [`TlsSession::certificates`] like a TLS 1.2 one, alerts are
    /// read, and a record that does not authenticate is counted in
    /// [`super::Decryption::failed`], never guessed at.
    pub fn on_data_keyed(
        &mut self,
        dir: Dir,
        ts: Ts,
        packet: u64,
        data: &[u8],
        keys: Option<&KeyLog>,
        out: &mut Vec<TlsEvent>,
    ) {
        let mut rest = data;
        let mut stalls = 0u8;
        if let (DecryptState::Waiting(_), Some(k)) = (&self.decrypt, keys) {
            self.retry_keys(k, false, out);
        }
        while !rest.is_empty() {
            if matches!(self.decrypt, DecryptState::Pending) {
                self.look_up_keys(keys);
                self.replay_early(out);
            }
            let state = std::mem::take(&mut self.dirs.get_mut(dir).record);
            let (next, used) = match state {
                RecordState::Stopped => (RecordState::Stopped, rest.len()),
                RecordState::Skip { remaining } => {
                    let n = remaining.min(rest.len());
                    (skip_state(remaining.saturating_sub(n)), n)
                }
                RecordState::Resync => self.resync(dir, ts, rest, out),
                RecordState::Header => self.read_header(dir, ts, packet, rest, out),
                RecordState::Body { header } => {
                    let len = usize::from(header.len);
                    match self.collect(dir, len, rest) {
                        (Some(body), n) => {
                            if self.collecting(dir) {
                                self.on_protected_record(dir, ts, packet, header, &body, out);
                            } else if self.early_candidate(dir, &header) {
                                self.keep_early(ts, packet, header, body);
                            } else {
                                self.on_record(dir, ts, packet, header, &body, out);
                            }
                            (RecordState::Header, n)
                        }
                        (None, n) => (RecordState::Body { header }, n),
                    }
                }
                RecordState::Sslv2Body { len } => match self.collect(dir, len, rest) {
                    (Some(body), n) => {
                        self.on_sslv2_record(dir, ts, packet, &body, out);
                        (RecordState::Header, n)
                    }
                    (None, n) => (RecordState::Sslv2Body { len }, n),
                },
            };
            // The handlers may have stopped the direction meanwhile: that wins.
            let d = self.dirs.get_mut(dir);
            if !matches!(d.record, RecordState::Stopped) {
                d.record = next;
            }
            // Only the resync scan may consume nothing (a header right at the start); the
            // header read that follows always consumes. Guard against a loop all the same.
            if used == 0 {
                stalls = stalls.saturating_add(1);
                if stalls > 2 {
                    break;
                }
            } else {
                stalls = 0;
            }
            rest = rest.get(used..).unwrap_or(&[]);
        }
        // TLS 1.3: the client's flight ends with the chunk in which one of its records ended.
        if dir == Dir::ToServer && self.flight.records > 0 && !self.flight.done {
            let d = self.dirs.get(dir);
            if matches!(d.record, RecordState::Header) && d.header.is_empty() {
                self.flight.done = true;
                self.handshake_complete(ts, packet, out);
            }
        }
    }

    /// Adds up to the missing part of a `len`-byte body from `rest`; returns the whole body once
    /// complete, and the bytes used.
    fn collect(&mut self, dir: Dir, len: usize, rest: &[u8]) -> (Option<Vec<u8>>, usize) {
        let d = self.dirs.get_mut(dir);
        let n = len.saturating_sub(d.body.len()).min(rest.len());
        d.body.extend_from_slice(rest.get(..n).unwrap_or(&[]));
        if d.body.len() >= len {
            (Some(std::mem::take(&mut d.body)), n)
        } else {
            (None, n)
        }
    }

    /// `len` bytes of one direction were never seen.
    pub fn on_gap(&mut self, dir: Dir, len: u64) {
        *self.session.gaps.get_mut(dir) = self.session.gaps.get(dir).saturating_add(1);
        // Records were lost: the direction's sequence numbers no longer match. The caller
        // tells the protocol inside about the gap (it sees FlowEvent::Gap too).
        if matches!(
            self.decrypt,
            DecryptState::Active(_) | DecryptState::Waiting(_)
        ) {
            self.dec.get_mut(dir).broken = true;
        }
        let d = self.dirs.get_mut(dir);
        let lost = usize::try_from(len).unwrap_or(usize::MAX);
        let next = match std::mem::take(&mut d.record) {
            RecordState::Stopped => RecordState::Stopped,
            // A gap inside a record of known length: skip the rest of it and stay in sync.
            RecordState::Skip { remaining } if remaining >= lost => {
                skip_state(remaining.saturating_sub(lost))
            }
            RecordState::Body { header }
                if usize::from(header.len).saturating_sub(d.body.len()) >= lost =>
            {
                let left = usize::from(header.len)
                    .saturating_sub(d.body.len())
                    .saturating_sub(lost);
                d.body.clear();
                if header.content_type == content::HANDSHAKE {
                    // The handshake stream has a hole: its messages are no longer parsed.
                    d.hs_broken = true;
                    d.hs.clear();
                }
                skip_state(left)
            }
            RecordState::Sslv2Body { len: total } if total.saturating_sub(d.body.len()) >= lost => {
                let left = total.saturating_sub(d.body.len()).saturating_sub(lost);
                d.body.clear();
                skip_state(left)
            }
            _ => {
                d.body.clear();
                d.header.clear();
                d.hs.clear();
                d.hs_broken = true;
                d.sync = SyncState::Normal;
                d.resync_scanned = 0;
                RecordState::Resync
            }
        };
        d.record = next;
    }

    /// The direction ended: FIN (`reset == false`) or RST from the side sending `dir`.
    pub fn on_end(&mut self, dir: Dir, ts: Ts, packet: u64, reset: bool, out: &mut Vec<TlsEvent>) {
        let d = self.dirs.get_mut(dir);
        if d.ended && !reset {
            return;
        }
        d.ended = true;
        let partial = match &d.record {
            RecordState::Header => !d.header.is_empty(),
            RecordState::Body { .. } | RecordState::Sslv2Body { .. } | RecordState::Skip { .. } => {
                true
            }
            _ => false,
        };
        if partial {
            self.anomaly(dir, ts, "stream ended inside a record".to_string(), out);
        }
        if reset && self.session.reset.is_none() {
            self.session.reset = Some(dir);
        }
        let before_app_data = self.session.client_app_data_after_handshake.is_none();
        if before_app_data {
            match dir {
                Dir::ToServer => self.session.client_closed_before_app_data = true,
                Dir::ToClient => self.session.server_closed_before_client_app_data = true,
            }
        }
        out.push(TlsEvent::Closed {
            flow: self.flow,
            dir,
            ts,
            packet,
            reset,
            before_app_data,
        });
    }

    fn anomaly(&mut self, dir: Dir, ts: Ts, what: String, out: &mut Vec<TlsEvent>) {
        self.session.anomalies = self.session.anomalies.saturating_add(1);
        if self.session.anomaly_notes.len() < self.limits.max_anomaly_notes {
            self.session.anomaly_notes.push(what.clone());
        }
        out.push(TlsEvent::Anomaly {
            flow: self.flow,
            dir,
            ts,
            what,
        });
    }

    fn stop(&mut self, dir: Dir) {
        let d = self.dirs.get_mut(dir);
        d.record = RecordState::Stopped;
        d.body = Vec::new();
        d.hs.release();
        *self.session.stopped.get_mut(dir) = true;
    }

    /// A header that may start a record after a gap: plausible, the record version seen
    /// before, a length within limits.
    fn plausible_after_gap(&self, dir: Dir, h: &RecordHeader) -> bool {
        h.is_plausible()
            && self
                .dirs
                .get(dir)
                .last_version
                .is_none_or(|v| v == h.version)
            && h.len > 0
            && usize::from(h.len) <= self.limits.max_record
    }

    /// Reads (part of) a record header from `rest`. Returns the next state and bytes used.
    fn read_header(
        &mut self,
        dir: Dir,
        ts: Ts,
        packet: u64,
        rest: &[u8],
        out: &mut Vec<TlsEvent>,
    ) -> (RecordState, usize) {
        let d = self.dirs.get_mut(dir);
        let take = RECORD_HEADER_LEN
            .saturating_sub(d.header.len())
            .min(rest.len());
        d.header.extend_from_slice(rest.get(..take).unwrap_or(&[]));
        // RFC 5246 E.2: a first "record" with the high bit set is an SSLv2-format message with
        // a 2-byte header.
        if !d.seen_record && d.header.len() >= 2 {
            if let (Some(&b0), Some(&b1)) = (d.header.first(), d.header.get(1)) {
                if let Some(len) = parser::sslv2_record_len(b0, b1) {
                    d.seen_record = true;
                    // Bytes taken beyond the 2-byte header are body.
                    d.body = d.header.get(2..).unwrap_or(&[]).to_vec();
                    d.header.clear();
                    if len > self.limits.max_record {
                        self.anomaly(
                            dir,
                            ts,
                            format!("{}: SSLv2 record of {len} bytes", dir_name(dir)),
                            out,
                        );
                        self.stop(dir);
                        return (RecordState::Stopped, rest.len());
                    }
                    if self.dirs.get(dir).body.len() >= len {
                        let mut body = std::mem::take(&mut self.dirs.get_mut(dir).body);
                        let extra = body.split_off(len);
                        self.on_sslv2_record(dir, ts, packet, &body, out);
                        // Give back the bytes that belong to the next record.
                        return (RecordState::Header, take.saturating_sub(extra.len()));
                    }
                    return (RecordState::Sslv2Body { len }, take);
                }
            }
        }
        if d.header.len() < RECORD_HEADER_LEN {
            return (RecordState::Header, take);
        }
        let hdr_bytes = std::mem::take(&mut d.header);
        let Some(header) = parser::parse_record_header(&hdr_bytes) else {
            return (RecordState::Header, take);
        };
        let len = usize::from(header.len);
        match self.dirs.get(dir).sync {
            SyncState::Candidate => {
                // Unconfirmed: skip its body without reading it; the next header decides.
                let d = self.dirs.get_mut(dir);
                d.sync = SyncState::Confirming;
                return (skip_state(len), take);
            }
            SyncState::Confirming => {
                if !self.plausible_after_gap(dir, &header) {
                    // The candidate was not a record: scan again (from the byte after the one
                    // where this false header began in this chunk).
                    let d = self.dirs.get_mut(dir);
                    d.sync = SyncState::Normal;
                    d.resync_scanned = 0;
                    return (RecordState::Resync, 1);
                }
                self.dirs.get_mut(dir).sync = SyncState::Normal;
            }
            SyncState::Normal => {
                if !header.is_plausible() {
                    let d = self.dirs.get(dir);
                    let what = if !d.seen_record {
                        format!(
                            "{}: not a TLS record (first bytes {})",
                            dir_name(dir),
                            describe_bytes(&hdr_bytes)
                        )
                    } else {
                        format!(
                            "{}: invalid record header (type {}, version 0x{:04x}, length {})",
                            dir_name(dir),
                            header.content_type,
                            header.version,
                            header.len
                        )
                    };
                    self.anomaly(dir, ts, what, out);
                    self.stop(dir);
                    return (RecordState::Stopped, rest.len());
                }
            }
        }
        let d = self.dirs.get_mut(dir);
        d.seen_record = true;
        d.last_version = Some(header.version);
        if len > self.limits.max_record {
            self.anomaly(
                dir,
                ts,
                format!("{}: record of {len} bytes exceeds the limit", dir_name(dir)),
                out,
            );
            self.break_decryption(dir, ts, out);
            if header.content_type == content::HANDSHAKE {
                let d = self.dirs.get_mut(dir);
                d.hs_broken = true;
                d.hs.clear();
            }
            return (skip_state(len), take);
        }
        match self.on_record_header(dir, ts, packet, header, out) {
            Plan::Skip => (skip_state(len), take),
            Plan::Collect if len == 0 => {
                if self.collecting(dir) {
                    self.on_protected_record(dir, ts, packet, header, &[], out);
                } else {
                    self.on_record(dir, ts, packet, header, &[], out);
                }
                (RecordState::Header, take)
            }
            Plan::Collect => {
                self.dirs.get_mut(dir).body.clear();
                (RecordState::Body { header }, take)
            }
        }
    }

    /// After a gap: scans `rest` for a plausible record header, confirmed by the header that
    /// follows it or by ending exactly at the end of `rest`; one that runs past `rest` becomes a
    /// candidate. Returns the next state and the bytes consumed (up to the header found, or all
    /// of `rest`).
    fn resync(
        &mut self,
        dir: Dir,
        ts: Ts,
        rest: &[u8],
        out: &mut Vec<TlsEvent>,
    ) -> (RecordState, usize) {
        let mut i = 0usize;
        while let Some(h) = rest.get(i..).and_then(parser::parse_record_header) {
            if self.plausible_after_gap(dir, &h) {
                let end = i
                    .saturating_add(RECORD_HEADER_LEN)
                    .saturating_add(usize::from(h.len));
                let verdict = if end == rest.len() {
                    Some(SyncState::Normal)
                } else if end > rest.len() {
                    Some(SyncState::Candidate)
                } else {
                    match rest.get(end..).and_then(parser::parse_record_header) {
                        Some(next) if self.plausible_after_gap(dir, &next) => {
                            Some(SyncState::Normal)
                        }
                        Some(_) => None,
                        // Fewer than 5 bytes follow: cannot confirm, follow it tentatively.
                        None => Some(SyncState::Candidate),
                    }
                };
                if let Some(sync) = verdict {
                    let d = self.dirs.get_mut(dir);
                    d.sync = sync;
                    d.resync_scanned = 0;
                    return (RecordState::Header, i);
                }
            }
            i = i.saturating_add(1);
        }
        // A header split across chunks is missed here; the next one is found instead.
        let d = self.dirs.get_mut(dir);
        d.resync_scanned = d.resync_scanned.saturating_add(rest.len());
        if d.resync_scanned > self.limits.max_resync_scan {
            self.anomaly(
                dir,
                ts,
                format!(
                    "{}: no TLS record header found after a gap; stopped",
                    dir_name(dir)
                ),
                out,
            );
            self.stop(dir);
            return (RecordState::Stopped, rest.len());
        }
        (RecordState::Resync, rest.len())
    }

    /// Decides, from the header alone, what the record is; handles the records that are not
    /// read (application data, encrypted records).
    fn on_record_header(
        &mut self,
        dir: Dir,
        ts: Ts,
        packet: u64,
        header: RecordHeader,
        out: &mut Vec<TlsEvent>,
    ) -> Plan {
        let len = usize::from(header.len);
        let d = self.dirs.get(dir);
        let encrypted = d.encrypted;
        // With keys (or waiting for them), protected records are read whole to be decrypted
        // (one direction's records all go through its decryptor, in order, for the sequence
        // numbers).
        let decrypting = self.collecting(dir) || self.early_candidate(dir, &header);
        let skip_unless_decrypting = if decrypting {
            Plan::Collect
        } else {
            Plan::Skip
        };
        match header.content_type {
            content::APPLICATION_DATA => {
                self.on_app_data(dir, ts, packet, len, out);
                skip_unless_decrypting
            }
            content::HEARTBEAT => skip_unless_decrypting,
            // Decrypted, the alert is reported with its content (`on_protected_record`).
            content::ALERT if encrypted && len != 2 && decrypting => Plan::Collect,
            // RFC 5246 7.2 / RFC 8446 6: a 2-byte alert record is always in the clear (an
            // encrypted one carries a MAC or tag).
            content::ALERT if encrypted && len != 2 => {
                self.push_encrypted_alert(dir, ts, packet, out);
                Plan::Skip
            }
            content::HANDSHAKE if encrypted => {
                self.on_encrypted_handshake(dir, ts, packet, out);
                skip_unless_decrypting
            }
            _ => Plan::Collect,
        }
    }

    fn on_app_data(&mut self, dir: Dir, ts: Ts, packet: u64, len: usize, out: &mut Vec<TlsEvent>) {
        let s = &mut self.session;
        *s.app_data_records.get_mut(dir) = s.app_data_records.get(dir).saturating_add(1);
        *s.app_data_bytes.get_mut(dir) = s
            .app_data_bytes
            .get(dir)
            .saturating_add(u64::try_from(len).unwrap_or(u64::MAX));
        if dir != Dir::ToServer || s.client_app_data_after_handshake.is_some() {
            return;
        }
        let tls13 = s.server_hello.as_ref().is_some_and(|h| h.is_tls13());
        if tls13 {
            if !self.flight.done {
                self.tls13_client_flight_record(ts, packet, len, out);
                return;
            }
        } else if s.server_hello.is_none() || s.change_cipher_spec.to_server.is_none() {
            // TLS 1.2 and earlier: application data counts after the client's CCS (and its
            // Finished). Without a ServerHello the version is unknown: no conclusion.
            return;
        }
        self.session.client_app_data_after_handshake = Some((ts, packet));
        out.push(TlsEvent::ClientAppData {
            flow: self.flow,
            ts,
            packet,
        });
    }

    /// TLS 1.3: one client type-23 record during its handshake flight (module docs).
    fn tls13_client_flight_record(
        &mut self,
        ts: Ts,
        packet: u64,
        len: usize,
        out: &mut Vec<TlsEvent>,
    ) {
        let suite = self
            .session
            .server_hello
            .as_ref()
            .map(|h| h.cipher_suite)
            .unwrap_or(0x1301);
        let finished_len = tls13_finished_record_len(suite);
        self.flight.records = self.flight.records.saturating_add(1);
        if self.flight.records == 1 && len == tls13_alert_record_len(suite) {
            // An encrypted alert's size where a Finished was expected.
            self.flight.records = 0;
            if self.session.tls13_client_alert_sized_record.is_none() {
                self.session.tls13_client_alert_sized_record = Some((ts, packet));
                out.push(TlsEvent::Tls13ClientAlertSized {
                    flow: self.flow,
                    ts,
                    packet,
                });
            }
            return;
        }
        if len <= finished_len || self.flight.records >= self.limits.max_tls13_client_flight {
            self.flight.done = true;
            self.handshake_complete(ts, packet, out);
        }
    }

    fn on_encrypted_handshake(&mut self, dir: Dir, ts: Ts, packet: u64, out: &mut Vec<TlsEvent>) {
        let tls13 = self
            .session
            .server_hello
            .as_ref()
            .is_some_and(|h| h.is_tls13());
        if tls13 {
            return;
        }
        let d = self.dirs.get_mut(dir);
        if d.finished {
            return; // renegotiation or post-handshake messages
        }
        d.finished = true;
        if self.dirs.to_server.finished && self.dirs.to_client.finished {
            self.handshake_complete(ts, packet, out);
        }
    }

    fn handshake_complete(&mut self, ts: Ts, packet: u64, out: &mut Vec<TlsEvent>) {
        if self.session.handshake_complete {
            return;
        }
        self.session.handshake_complete = true;
        self.session.handshake_complete_at = Some((ts, packet));
        out.push(TlsEvent::HandshakeComplete {
            flow: self.flow,
            ts,
            packet,
        });
    }

    /// An alert whose content is encrypted (no keys, or it did not decrypt).
    fn push_encrypted_alert(&mut self, dir: Dir, ts: Ts, packet: u64, out: &mut Vec<TlsEvent>) {
        self.push_alert(
            Alert {
                dir,
                ts,
                packet,
                level: None,
                description: None,
                encrypted: true,
            },
            out,
        );
    }

    /// The (level, description) pairs of an alert record read in the clear or decrypted;
    /// false when the body is not whole pairs (empty, or an odd byte left).
    fn push_clear_alerts(
        &mut self,
        dir: Dir,
        ts: Ts,
        packet: u64,
        body: &[u8],
        out: &mut Vec<TlsEvent>,
    ) -> bool {
        let mut pairs = body.chunks_exact(2);
        for pair in pairs.by_ref() {
            if let [level, description] = pair {
                self.push_alert(
                    Alert {
                        dir,
                        ts,
                        packet,
                        level: Some(*level),
                        description: Some(*description),
                        encrypted: false,
                    },
                    out,
                );
            }
        }
        pairs.remainder().is_empty() && !body.is_empty()
    }

    fn push_alert(&mut self, alert: Alert, out: &mut Vec<TlsEvent>) {
        if self.session.alerts.len() < self.limits.max_alerts {
            self.session.alerts.push(alert.clone());
        } else {
            self.session.alerts_dropped = self.session.alerts_dropped.saturating_add(1);
        }
        out.push(TlsEvent::Alert {
            flow: self.flow,
            alert,
        });
    }

    /// A complete record that is read in the clear.
    fn on_record(
        &mut self,
        dir: Dir,
        ts: Ts,
        packet: u64,
        header: RecordHeader,
        body: &[u8],
        out: &mut Vec<TlsEvent>,
    ) {
        match header.content_type {
            content::CHANGE_CIPHER_SPEC => {
                if self.session.change_cipher_spec.get(dir).is_none() {
                    *self.session.change_cipher_spec.get_mut(dir) = Some((ts, packet));
                }
                // RFC 5246 7.1: records after CCS are encrypted. Only once a TLS 1.2 (or
                // older) ServerHello is known: in TLS 1.3 CCS is a no-op for middleboxes (RFC
                // 8446 D.4), which a client may send before the ServerHello or after a
                // HelloRetryRequest, ahead of a cleartext second ClientHello.
                let tls12 = self
                    .session
                    .server_hello
                    .as_ref()
                    .is_some_and(|h| !h.is_tls13());
                if tls12 {
                    self.dirs.get_mut(dir).encrypted = true;
                }
                out.push(TlsEvent::ChangeCipherSpec {
                    flow: self.flow,
                    dir,
                    ts,
                    packet,
                });
            }
            content::ALERT => {
                let whole_pairs = self.push_clear_alerts(dir, ts, packet, body, out);
                if !whole_pairs {
                    self.anomaly(
                        dir,
                        ts,
                        format!("{}: alert record of {} bytes", dir_name(dir), body.len()),
                        out,
                    );
                }
            }
            content::HANDSHAKE => {
                self.on_handshake_bytes(dir, ts, packet, header.version, body, out)
            }
            _ => {}
        }
    }

    /// Appends a cleartext handshake record's body to the handshake stream and parses every
    /// complete message in it.
    fn on_handshake_bytes(
        &mut self,
        dir: Dir,
        ts: Ts,
        packet: u64,
        record_version: u16,
        body: &[u8],
        out: &mut Vec<TlsEvent>,
    ) {
        let max_msg = self.limits.max_handshake_message;
        let d = self.dirs.get_mut(dir);
        if d.hs_broken {
            return;
        }
        d.hs.push(body);
        loop {
            match self.dirs.get_mut(dir).hs.next(max_msg) {
                None => break,
                Some(Handshake::TooBig { msg_type, len }) => {
                    self.anomaly(
                        dir,
                        ts,
                        format!(
                            "{}: handshake message type {msg_type} of {len} bytes exceeds the limit",
                            dir_name(dir)
                        ),
                        out,
                    );
                    break;
                }
                Some(Handshake::Message { msg_type, body }) => {
                    self.on_handshake_message(
                        dir,
                        ts,
                        packet,
                        record_version,
                        msg_type,
                        &body,
                        out,
                    );
                }
            }
            // A TLS 1.3 ServerHello switches to encryption: what follows in the same record
            // would be a protocol violation (RFC 8446 5.1) and is not parsed.
            if self.dirs.get(dir).encrypted {
                if self.dirs.get_mut(dir).hs.clear() {
                    self.anomaly(
                        dir,
                        ts,
                        format!("{}: handshake data after a key change", dir_name(dir)),
                        out,
                    );
                }
                break;
            }
        }
        self.dirs.get_mut(dir).hs.compact();
    }

    #[allow(clippy::too_many_arguments)]
    fn on_handshake_message(
        &mut self,
        dir: Dir,
        ts: Ts,
        packet: u64,
        record_version: u16,
        msg_type: u8,
        body: &[u8],
        out: &mut Vec<TlsEvent>,
    ) {
        let flow = self.flow;
        match (dir, msg_type) {
            (Dir::ToServer, handshake::CLIENT_HELLO) => {
                match parser::parse_client_hello(body, record_version) {
                    Ok(hello) => self.on_client_hello(ts, packet, hello, out),
                    Err(e) => self.anomaly(dir, ts, format!("ClientHello: {e}"), out),
                }
            }
            (Dir::ToClient, handshake::SERVER_HELLO) => {
                match parser::parse_server_hello(body, record_version) {
                    Ok(hello) => {
                        if hello.hello_retry_request {
                            self.session.hello_retry_request = true;
                        } else {
                            let resumed = if hello.is_tls13() {
                                hello.extensions.contains(&ext::PRE_SHARED_KEY)
                            } else {
                                !hello.session_id.is_empty()
                                    && self
                                        .session
                                        .client_hello
                                        .as_ref()
                                        .is_some_and(|c| c.session_id == hello.session_id)
                            };
                            self.session.resumed = resumed;
                            if hello.is_tls13() {
                                // RFC 8446 2: all handshake messages after the ServerHello are
                                // encrypted, both ways.
                                self.dirs.to_client.encrypted = true;
                                self.dirs.to_server.encrypted = true;
                                self.session.certificates_hidden = true;
                            }
                            if self.session.server_hello.is_none() {
                                self.session.server_hello = Some(hello.clone());
                                if matches!(self.decrypt, DecryptState::Idle) {
                                    self.decrypt = DecryptState::Pending;
                                }
                            }
                        }
                        let tls13 = hello.is_tls13() && !hello.hello_retry_request;
                        out.push(TlsEvent::ServerHello {
                            flow,
                            ts,
                            packet,
                            hello: Box::new(hello),
                        });
                        if tls13 {
                            out.push(TlsEvent::CertificatesHidden { flow, ts, packet });
                        }
                    }
                    Err(e) => self.anomaly(dir, ts, format!("ServerHello: {e}"), out),
                }
            }
            (_, handshake::CERTIFICATE) => self.on_certificate(dir, ts, packet, body, false, out),
            (Dir::ToClient, handshake::CERTIFICATE_REQUEST)
                if !self.session.certificate_request =>
            {
                self.session.certificate_request = true;
                out.push(TlsEvent::CertificateRequest { flow, ts, packet });
            }
            (Dir::ToClient, handshake::CLIENT_HELLO) | (Dir::ToServer, handshake::SERVER_HELLO) => {
                self.anomaly(
                    dir,
                    ts,
                    format!(
                        "{}: handshake type {msg_type} from the wrong side",
                        dir_name(dir)
                    ),
                    out,
                );
            }
            _ => {}
        }
    }

    /// A Certificate message (RFC 5246 7.4.2; `tls13`: RFC 8446 4.4.2, decrypted).
    fn on_certificate(
        &mut self,
        dir: Dir,
        ts: Ts,
        packet: u64,
        body: &[u8],
        tls13: bool,
        out: &mut Vec<TlsEvent>,
    ) {
        let flow = self.flow;
        {
            {
                match parser::parse_certificate_list(body, tls13, self.limits.max_certificates) {
                    Ok((chain, dropped)) => {
                        match dir {
                            Dir::ToClient if self.session.certificates.is_empty() => {
                                self.session.certificates = chain.clone();
                                self.session.certificates_dropped = dropped;
                            }
                            Dir::ToServer if self.session.client_certificates.is_empty() => {
                                self.session.client_certificates = chain.clone();
                            }
                            _ => {}
                        }
                        if dropped > 0 {
                            self.anomaly(
                                dir,
                                ts,
                                format!(
                                    "{}: {dropped} certificates beyond the limit",
                                    dir_name(dir)
                                ),
                                out,
                            );
                        }
                        out.push(TlsEvent::Certificates {
                            flow,
                            dir,
                            ts,
                            packet,
                            chain,
                        });
                    }
                    Err(e) => self.anomaly(dir, ts, format!("Certificate: {e}"), out),
                }
            }
        }
    }

    fn on_client_hello(
        &mut self,
        ts: Ts,
        packet: u64,
        hello: super::ClientHello,
        out: &mut Vec<TlsEvent>,
    ) {
        self.session.client_hellos = self.session.client_hellos.saturating_add(1);
        if hello.sslv2_format {
            self.session.sslv2_client_hello = true;
        }
        if self.session.client_hello.is_none() {
            self.session.client_hello = Some(hello.clone());
        }
        out.push(TlsEvent::ClientHello {
            flow: self.flow,
            ts,
            packet,
            hello: Box::new(hello),
        });
    }

    /// A whole SSLv2-format record (RFC 5246 E.2).
    fn on_sslv2_record(
        &mut self,
        dir: Dir,
        ts: Ts,
        packet: u64,
        body: &[u8],
        out: &mut Vec<TlsEvent>,
    ) {
        match dir {
            Dir::ToServer => match parser::parse_sslv2_client_hello(body) {
                Ok(hello) => self.on_client_hello(ts, packet, hello, out),
                Err(e) => {
                    self.anomaly(dir, ts, format!("SSLv2 ClientHello: {e}"), out);
                    self.stop(dir);
                }
            },
            Dir::ToClient => {
                // An SSLv2 SERVER-HELLO (msg_type 4) is SSL 2.0 itself, which modtrace does not
                // parse (RFC 6176 prohibits it); anything else is not TLS.
                let what = if body.first() == Some(&4) {
                    self.session.sslv2_server_hello = true;
                    "to-client: SSLv2 SERVER-HELLO (SSL 2.0 is not parsed)".to_string()
                } else {
                    format!(
                        "to-client: not a TLS record (SSLv2-style header, {} bytes)",
                        body.len()
                    )
                };
                self.anomaly(dir, ts, what, out);
                self.stop(dir);
            }
        }
    }
}

fn skip_state(len: usize) -> RecordState {
    if len == 0 {
        RecordState::Header
    } else {
        RecordState::Skip { remaining: len }
    }
}

/// RFC 8446 5.2, 4.4.4: bytes of a TLS 1.3 record carrying only a Finished, without padding:
/// handshake header (4) + verify_data (Hash.length) + inner content type (1) + AEAD tag.
pub fn tls13_finished_record_len(cipher_suite: u16) -> usize {
    let hash = if cipher_suite == 0x1302 { 48 } else { 32 };
    4usize
        .saturating_add(hash)
        .saturating_add(1)
        .saturating_add(tls13_tag_len(cipher_suite))
}

/// RFC 8446 5.2, 6: bytes of a TLS 1.3 record carrying only an alert, without padding: level
/// and description (2) + inner content type (1) + AEAD tag (19 for the usual suites).
pub fn tls13_alert_record_len(cipher_suite: u16) -> usize {
    3usize.saturating_add(tls13_tag_len(cipher_suite))
}

/// AEAD tag length: 8 for TLS_AES_128_CCM_8_SHA256 (RFC 8446 B.4, RFC 6655), else 16.
fn tls13_tag_len(cipher_suite: u16) -> usize {
    if cipher_suite == 0x1305 {
        8
    } else {
        16
    }
}

fn dir_name(dir: Dir) -> &'static str {
    match dir {
        Dir::ToServer => "to-server",
        Dir::ToClient => "to-client",
    }
}

/// `48 54 54 50 "HTTP"`: hex and the printable text of a few bytes, for anomaly notes.
fn describe_bytes(b: &[u8]) -> String {
    let hex: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
    let text: String = b
        .iter()
        .map(|&x| {
            if x.is_ascii_graphic() || x == b' ' {
                char::from(x)
            } else {
                '.'
            }
        })
        .collect();
    format!("{} \"{text}\"", hex.join(" "))
}
