//! The NSS key log format: what `SSLKEYLOGFILE` makes NSS, OpenSSL, BoringSSL, rustls and Go's
//! `crypto/tls` (`Config.KeyLogWriter`) write, and what pcapng Decryption Secrets Blocks of type
//! `TLSK` carry (pcapng spec 4.7; Wireshark `packet-tls-utils.c` `ssl_load_keyfile`).
//!
//! One secret per line: `<LABEL> <client random, 64 hex> <secret, hex>`, `#` comments and blank
//! lines in between (the NSS "Key Log Format" page, draft-ietf-tls-keylogfile). Labels:
//! - `CLIENT_RANDOM`: the TLS 1.2 (and earlier) master secret, 48 bytes (RFC 5246 8.1). With
//!   the extended master secret (RFC 7627) only the way the master secret was computed changes
//!   (session hash instead of the randoms); the line still holds the finished master secret,
//!   so decryption does not need to know which was used.
//! - `CLIENT_HANDSHAKE_TRAFFIC_SECRET`, `SERVER_HANDSHAKE_TRAFFIC_SECRET`,
//!   `CLIENT_TRAFFIC_SECRET_0`, `SERVER_TRAFFIC_SECRET_0`, `EXPORTER_SECRET`,
//!   `CLIENT_EARLY_TRAFFIC_SECRET`, `EARLY_EXPORTER_SECRET`: TLS 1.3 secrets (RFC 8446 7.1), each
//!   Hash.length long (32 or 48 bytes for the RFC 8446 B.4 suites).
//! - Other labels (`RSA`, `PMS_CLIENT_RANDOM`, `ECH_SECRET`, ...) are counted as unsupported,
//!   not as bad.
//!
//! Parsing never fails: a bad line is counted (and the first few described), the rest is used.
//! The only input is text already in memory: reading the file is the caller's business.

use std::collections::HashMap;

/// Bytes of a ClientHello random (RFC 8446 4.1.2), the key of every key log line.
pub const CLIENT_RANDOM_LEN: usize = 32;
/// Bytes of a TLS 1.2 master secret (RFC 5246 8.1).
pub const MASTER_SECRET_LEN: usize = 48;

/// Every key log limit, with why. Hitting one counts and drops, never grows memory.
#[derive(Clone, Debug)]
pub struct KeyLogLimits {
    /// Connections (distinct client randoms) kept. One entry is at most ~450 bytes (seven
    /// 48-byte secrets plus map overhead), so 200 000 entries stay under ~90 MB; a capture
    /// rarely holds that many TLS connections, and a key log that keeps growing across
    /// months of browsing is truncated (counted) instead of exhausting memory.
    pub max_entries: usize,
    /// Descriptions of bad lines kept (all are counted).
    pub max_bad_line_notes: usize,
}

impl Default for KeyLogLimits {
    fn default() -> Self {
        KeyLogLimits {
            max_entries: 200_000,
            max_bad_line_notes: 8,
        }
    }
}

/// The secrets logged for one connection (one client random). TLS 1.3 secrets are kept as
/// logged: their length is the suite's Hash.length, checked when keys are derived.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Secrets {
    /// `CLIENT_RANDOM`: TLS 1.2 and earlier master secret (48 bytes).
    pub master_secret: Option<Vec<u8>>,
    /// `CLIENT_HANDSHAKE_TRAFFIC_SECRET` (RFC 8446 7.1 `client_handshake_traffic_secret`).
    pub client_handshake_traffic_secret: Option<Vec<u8>>,
    /// `SERVER_HANDSHAKE_TRAFFIC_SECRET`.
    pub server_handshake_traffic_secret: Option<Vec<u8>>,
    /// `CLIENT_TRAFFIC_SECRET_0` (`client_application_traffic_secret_0`).
    pub client_traffic_secret_0: Option<Vec<u8>>,
    /// `SERVER_TRAFFIC_SECRET_0`.
    pub server_traffic_secret_0: Option<Vec<u8>>,
    /// `EXPORTER_SECRET` (`exporter_master_secret`). Kept, not used for decryption.
    pub exporter_secret: Option<Vec<u8>>,
    /// `CLIENT_EARLY_TRAFFIC_SECRET` (0-RTT data, RFC 8446 2.3).
    pub client_early_traffic_secret: Option<Vec<u8>>,
    /// `EARLY_EXPORTER_SECRET` (`early_exporter_master_secret`). Kept, not used.
    pub early_exporter_secret: Option<Vec<u8>>,
}

/// The labels this module keeps (NSS key log format).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Label {
    ClientRandom,
    ClientHandshakeTrafficSecret,
    ServerHandshakeTrafficSecret,
    ClientTrafficSecret0,
    ServerTrafficSecret0,
    ExporterSecret,
    ClientEarlyTrafficSecret,
    EarlyExporterSecret,
}

impl Label {
    /// The label as written in the file; `None` for labels not kept here.
    pub fn parse(label: &str) -> Option<Label> {
        Some(match label {
            "CLIENT_RANDOM" => Label::ClientRandom,
            "CLIENT_HANDSHAKE_TRAFFIC_SECRET" => Label::ClientHandshakeTrafficSecret,
            "SERVER_HANDSHAKE_TRAFFIC_SECRET" => Label::ServerHandshakeTrafficSecret,
            "CLIENT_TRAFFIC_SECRET_0" => Label::ClientTrafficSecret0,
            "SERVER_TRAFFIC_SECRET_0" => Label::ServerTrafficSecret0,
            "EXPORTER_SECRET" => Label::ExporterSecret,
            "CLIENT_EARLY_TRAFFIC_SECRET" => Label::ClientEarlyTrafficSecret,
            "EARLY_EXPORTER_SECRET" => Label::EarlyExporterSecret,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Label::ClientRandom => "CLIENT_RANDOM",
            Label::ClientHandshakeTrafficSecret => "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
            Label::ServerHandshakeTrafficSecret => "SERVER_HANDSHAKE_TRAFFIC_SECRET",
            Label::ClientTrafficSecret0 => "CLIENT_TRAFFIC_SECRET_0",
            Label::ServerTrafficSecret0 => "SERVER_TRAFFIC_SECRET_0",
            Label::ExporterSecret => "EXPORTER_SECRET",
            Label::ClientEarlyTrafficSecret => "CLIENT_EARLY_TRAFFIC_SECRET",
            Label::EarlyExporterSecret => "EARLY_EXPORTER_SECRET",
        }
    }

    /// Whether a secret of `len` bytes can carry this label: 48 for the master secret
    /// (RFC 5246 8.1); the SHA-256 or SHA-384 Hash.length for TLS 1.3 secrets (RFC 8446 7.1,
    /// B.4: every defined TLS 1.3 suite uses one of the two).
    fn accepts_len(self, len: usize) -> bool {
        match self {
            Label::ClientRandom => len == MASTER_SECRET_LEN,
            _ => len == 32 || len == 48,
        }
    }
}

impl Secrets {
    fn slot(&mut self, label: Label) -> &mut Option<Vec<u8>> {
        match label {
            Label::ClientRandom => &mut self.master_secret,
            Label::ClientHandshakeTrafficSecret => &mut self.client_handshake_traffic_secret,
            Label::ServerHandshakeTrafficSecret => &mut self.server_handshake_traffic_secret,
            Label::ClientTrafficSecret0 => &mut self.client_traffic_secret_0,
            Label::ServerTrafficSecret0 => &mut self.server_traffic_secret_0,
            Label::ExporterSecret => &mut self.exporter_secret,
            Label::ClientEarlyTrafficSecret => &mut self.client_early_traffic_secret,
            Label::EarlyExporterSecret => &mut self.early_exporter_secret,
        }
    }

    /// The secret logged under `label`.
    pub fn get(&self, label: Label) -> Option<&[u8]> {
        match label {
            Label::ClientRandom => self.master_secret.as_deref(),
            Label::ClientHandshakeTrafficSecret => self.client_handshake_traffic_secret.as_deref(),
            Label::ServerHandshakeTrafficSecret => self.server_handshake_traffic_secret.as_deref(),
            Label::ClientTrafficSecret0 => self.client_traffic_secret_0.as_deref(),
            Label::ServerTrafficSecret0 => self.server_traffic_secret_0.as_deref(),
            Label::ExporterSecret => self.exporter_secret.as_deref(),
            Label::ClientEarlyTrafficSecret => self.client_early_traffic_secret.as_deref(),
            Label::EarlyExporterSecret => self.early_exporter_secret.as_deref(),
        }
    }
}

/// What reading key logs found, over every text added.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyLogStats {
    /// Lines seen, blank and comment lines included.
    pub lines: u64,
    /// Secrets stored (a repeated identical line is counted once).
    pub secrets: u64,
    /// Lines that are not `LABEL HEX HEX` with valid lengths and hex.
    pub bad_lines: u64,
    /// Well-formed lines with a label not kept here (`RSA`, `PMS_CLIENT_RANDOM`, ...).
    pub unsupported_lines: u64,
    /// A second, different secret for a label and client random already known: the first
    /// one is kept (a key log is appended to; the first line was written by the handshake).
    pub conflicting_lines: u64,
    /// Secrets dropped because `KeyLogLimits::max_entries` connections were already known.
    pub dropped_over_limit: u64,
    /// The first bad lines, `line N: why` (numbered within the text they came from).
    pub bad_line_notes: Vec<String>,
}

/// Secrets of many connections, by client random. Build with [`KeyLog::parse`] or
/// [`KeyLog::add_text`] (a key log file, a pcapng Decryption Secrets Block's text) and
/// [`KeyLog::merge`].
#[derive(Clone, Debug, Default)]
pub struct KeyLog {
    limits: KeyLogLimits,
    entries: HashMap<[u8; CLIENT_RANDOM_LEN], Secrets>,
    stats: KeyLogStats,
}

impl KeyLog {
    pub fn new() -> KeyLog {
        KeyLog::default()
    }

    pub fn with_limits(limits: KeyLogLimits) -> KeyLog {
        KeyLog {
            limits,
            ..KeyLog::default()
        }
    }

    /// A key log from one text. Never fails: see [`KeyLog::stats`] for what was skipped.
    pub fn parse(text: &str) -> KeyLog {
        let mut log = KeyLog::new();
        log.add_text(text.as_bytes());
        log
    }

    /// Adds the lines of one text (bytes, because a Decryption Secrets Block is not promised
    /// to be UTF-8; a line that is not ASCII is a bad line). `\n` and `\r\n` line ends.
    pub fn add_text(&mut self, text: &[u8]) {
        for (index, raw) in text.split(|&b| b == b'\n').enumerate() {
            let line = raw.strip_suffix(b"\r").unwrap_or(raw);
            self.stats.lines = self.stats.lines.saturating_add(1);
            if let Err(why) = self.add_line(line) {
                self.stats.bad_lines = self.stats.bad_lines.saturating_add(1);
                if self.stats.bad_line_notes.len() < self.limits.max_bad_line_notes {
                    let number = index.saturating_add(1);
                    self.stats
                        .bad_line_notes
                        .push(format!("line {number}: {why}"));
                }
            }
        }
        // A text ending in a newline has an empty last piece that is not a line.
        if text.last() == Some(&b'\n') || text.is_empty() {
            self.stats.lines = self.stats.lines.saturating_sub(1);
        }
    }

    /// One line without its line end. `Err` says why a line is bad.
    fn add_line(&mut self, line: &[u8]) -> Result<(), &'static str> {
        let Ok(line) = std::str::from_utf8(line) else {
            return Err("not ASCII");
        };
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return Ok(());
        }
        let mut fields = line.split_ascii_whitespace();
        let (Some(label), Some(random_hex), Some(secret_hex), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err("not three fields");
        };
        let Some(label) = Label::parse(label) else {
            // Only a plausible label (upper case, digits, `_`) counts as unsupported; other
            // text is garbage.
            if label
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
            {
                self.stats.unsupported_lines = self.stats.unsupported_lines.saturating_add(1);
                return Ok(());
            }
            return Err("unknown label");
        };
        let random = decode_hex(random_hex).ok_or("client random is not hex")?;
        let random: [u8; CLIENT_RANDOM_LEN] = random
            .try_into()
            .map_err(|_| "client random is not 32 bytes")?;
        let secret = decode_hex(secret_hex).ok_or("secret is not hex")?;
        if !label.accepts_len(secret.len()) {
            return Err(match label {
                Label::ClientRandom => "master secret is not 48 bytes",
                _ => "TLS 1.3 secret is not 32 or 48 bytes",
            });
        }
        self.insert(random, label, secret);
        Ok(())
    }

    /// Stores one secret, keeping the first of two different values.
    fn insert(&mut self, random: [u8; CLIENT_RANDOM_LEN], label: Label, secret: Vec<u8>) {
        if !self.entries.contains_key(&random) && self.entries.len() >= self.limits.max_entries {
            self.stats.dropped_over_limit = self.stats.dropped_over_limit.saturating_add(1);
            return;
        }
        let slot = self.entries.entry(random).or_default().slot(label);
        match slot {
            Some(old) if *old == secret => {}
            Some(_) => {
                self.stats.conflicting_lines = self.stats.conflicting_lines.saturating_add(1)
            }
            None => {
                *slot = Some(secret);
                self.stats.secrets = self.stats.secrets.saturating_add(1);
            }
        }
    }

    /// Adds every secret of `other` (as if its lines were added here) and its counters.
    pub fn merge(&mut self, other: KeyLog) {
        let KeyLog { entries, stats, .. } = other;
        self.stats.lines = self.stats.lines.saturating_add(stats.lines);
        self.stats.bad_lines = self.stats.bad_lines.saturating_add(stats.bad_lines);
        self.stats.unsupported_lines = self
            .stats
            .unsupported_lines
            .saturating_add(stats.unsupported_lines);
        self.stats.conflicting_lines = self
            .stats
            .conflicting_lines
            .saturating_add(stats.conflicting_lines);
        self.stats.dropped_over_limit = self
            .stats
            .dropped_over_limit
            .saturating_add(stats.dropped_over_limit);
        for note in stats.bad_line_notes {
            if self.stats.bad_line_notes.len() < self.limits.max_bad_line_notes {
                self.stats.bad_line_notes.push(note);
            }
        }
        // Sorted so that which entries a full log keeps does not depend on hash order.
        let mut entries: Vec<_> = entries.into_iter().collect();
        entries.sort_by_key(|entry| entry.0);
        const LABELS: [Label; 8] = [
            Label::ClientRandom,
            Label::ClientHandshakeTrafficSecret,
            Label::ServerHandshakeTrafficSecret,
            Label::ClientTrafficSecret0,
            Label::ServerTrafficSecret0,
            Label::ExporterSecret,
            Label::ClientEarlyTrafficSecret,
            Label::EarlyExporterSecret,
        ];
        for (random, mut secrets) in entries {
            for label in LABELS {
                if let Some(secret) = secrets.slot(label).take() {
                    self.insert(random, label, secret);
                }
            }
        }
    }

    /// The secrets of the connection whose ClientHello carried `client_random`.
    pub fn get(&self, client_random: &[u8]) -> Option<&Secrets> {
        let key: &[u8; CLIENT_RANDOM_LEN] = client_random.try_into().ok()?;
        self.entries.get(key)
    }

    /// Connections (client randoms) known.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn stats(&self) -> &KeyLogStats {
        &self.stats
    }
}

/// Hex digits (either case) to bytes; `None` for an odd length or a non-hex digit.
pub fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    let digits = hex.as_bytes();
    if digits.len() % 2 != 0 {
        return None;
    }
    digits
        .chunks_exact(2)
        .map(|pair| match pair {
            [hi, lo] => Some(hex_value(*hi)? << 4 | hex_value(*lo)?),
            _ => None,
        })
        .collect()
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|v| u8::try_from(v).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const R1: &str = "2635fafc16c49a3e997ef714c303806dc8dbf634a2005b0e0186521c4ad6f9df";
    const R2: &str = "b67947da9d3e4b2ce8acffa975e30aa7ef90f7ec0d39de78db392f38b9a9a41d";
    const S32: &str = "3a497c91f6e130fbc18fc9f773b92bb0d538dfedc30e964cde0676396f24d0df";
    const MS: &str = "cc38e78182b9dfd74ef3103d79bbc99cfc9b4dad209ed209062b5481e63353128da7571b13cfd4d3a5ae7d0520fb346d";

    fn bytes(hex: &str) -> Vec<u8> {
        decode_hex(hex).unwrap()
    }

    #[test]
    fn every_label_is_stored_by_client_random() {
        let text = format!(
            "# SSL/TLS secrets log file, generated by OpenSSL\n\
             CLIENT_HANDSHAKE_TRAFFIC_SECRET {R1} {S32}\n\
             SERVER_HANDSHAKE_TRAFFIC_SECRET {R1} {S32}\n\
             CLIENT_TRAFFIC_SECRET_0 {R1} {S32}\n\
             SERVER_TRAFFIC_SECRET_0 {R1} {S32}\n\
             EXPORTER_SECRET {R1} {S32}\n\
             CLIENT_EARLY_TRAFFIC_SECRET {R1} {S32}\n\
             EARLY_EXPORTER_SECRET {R1} {S32}\n\
             \n\
             CLIENT_RANDOM {R2} {MS}\n"
        );
        let log = KeyLog::parse(&text);
        assert_eq!(log.len(), 2);
        let s = log.get(&bytes(R1)).unwrap();
        for label in [
            Label::ClientHandshakeTrafficSecret,
            Label::ServerHandshakeTrafficSecret,
            Label::ClientTrafficSecret0,
            Label::ServerTrafficSecret0,
            Label::ExporterSecret,
            Label::ClientEarlyTrafficSecret,
            Label::EarlyExporterSecret,
        ] {
            assert_eq!(s.get(label), Some(&bytes(S32)[..]), "{label:?}");
        }
        assert_eq!(s.master_secret, None);
        let s2 = log.get(&bytes(R2)).unwrap();
        assert_eq!(s2.master_secret.as_deref(), Some(&bytes(MS)[..]));
        assert_eq!(s2.client_traffic_secret_0, None);
        let st = log.stats();
        assert_eq!((st.lines, st.secrets, st.bad_lines), (10, 8, 0));
    }

    #[test]
    fn bad_lines_are_counted_not_fatal() {
        let text = format!(
            "CLIENT_RANDOM {R2}\n\
             CLIENT_RANDOM {R2} {MS} extra\n\
             CLIENT_RANDOM {R2} {}\n\
             CLIENT_RANDOM {} {MS}\n\
             CLIENT_RANDOM zz{} {MS}\n\
             CLIENT_TRAFFIC_SECRET_0 {R1} {}\n\
             lowercase_label {R1} {S32}\n\
             RSA 0011223344556677 {MS}\n\
             \u{e9}\n\
             CLIENT_RANDOM {R2} {MS}\r\n",
            &MS[..94],
            &R2[..62],
            &R2[2..],
            &S32[..40],
        );
        let log = KeyLog::parse(&text);
        let st = log.stats();
        assert_eq!(st.lines, 10);
        assert_eq!(st.bad_lines, 8);
        assert_eq!(st.unsupported_lines, 1);
        assert_eq!(st.secrets, 1);
        assert_eq!(log.len(), 1);
        assert_eq!(st.bad_line_notes.len(), 8);
        assert_eq!(st.bad_line_notes[0], "line 1: not three fields");
        assert_eq!(
            st.bad_line_notes[2],
            "line 3: master secret is not 48 bytes"
        );
        assert_eq!(
            st.bad_line_notes[3],
            "line 4: client random is not 32 bytes"
        );
        assert_eq!(st.bad_line_notes[4], "line 5: client random is not hex");
        assert_eq!(
            st.bad_line_notes[5],
            "line 6: TLS 1.3 secret is not 32 or 48 bytes"
        );
        assert_eq!(st.bad_line_notes[6], "line 7: unknown label");
        // The CRLF line parsed, with upper-case hex accepted too.
        let upper = KeyLog::parse(&format!("CLIENT_RANDOM {} {MS}", R2.to_uppercase()));
        assert_eq!(
            upper.get(&bytes(R2)).unwrap().master_secret.as_deref(),
            Some(&bytes(MS)[..])
        );
    }

    #[test]
    fn merge_keeps_first_and_counts_conflicts() {
        let mut a = KeyLog::parse(&format!("CLIENT_RANDOM {R2} {MS}\n"));
        let other_ms = MS.replace("cc38", "0000");
        let b = KeyLog::parse(&format!(
            "CLIENT_RANDOM {R2} {other_ms}\nCLIENT_RANDOM {R2} {MS}\nSERVER_TRAFFIC_SECRET_0 {R1} {S32}\n"
        ));
        // b alone: its second line conflicts with its first.
        assert_eq!(b.stats().conflicting_lines, 1);
        a.merge(b);
        assert_eq!(a.len(), 2);
        assert_eq!(
            a.get(&bytes(R2)).unwrap().master_secret.as_deref(),
            Some(&bytes(MS)[..])
        );
        assert_eq!(
            a.get(&bytes(R1))
                .unwrap()
                .server_traffic_secret_0
                .as_deref(),
            Some(&bytes(S32)[..])
        );
        // One conflict inside b, one more when b's first value met a's.
        assert_eq!(a.stats().conflicting_lines, 2);
        assert_eq!(a.stats().lines, 4);
        // The same line twice is not a conflict.
        let twice = KeyLog::parse(&format!("CLIENT_RANDOM {R2} {MS}\nCLIENT_RANDOM {R2} {MS}"));
        assert_eq!(
            (twice.stats().conflicting_lines, twice.stats().secrets),
            (0, 1)
        );
    }

    #[test]
    fn entry_limit_drops_and_counts() {
        let mut log = KeyLog::with_limits(KeyLogLimits {
            max_entries: 1,
            max_bad_line_notes: 0,
        });
        log.add_text(format!("CLIENT_RANDOM {R2} {MS}\nSERVER_TRAFFIC_SECRET_0 {R1} {S32}\nCLIENT_TRAFFIC_SECRET_0 {R2} {S32}\nbad\n").as_bytes());
        assert_eq!(log.len(), 1);
        assert_eq!(log.stats().dropped_over_limit, 1);
        // A new secret of a known connection is still kept.
        assert!(log
            .get(&bytes(R2))
            .unwrap()
            .client_traffic_secret_0
            .is_some());
        assert_eq!(log.stats().bad_lines, 1);
        assert!(log.stats().bad_line_notes.is_empty());
    }

    #[test]
    fn get_with_wrong_length_random_is_none() {
        let log = KeyLog::parse(&format!("CLIENT_RANDOM {R2} {MS}"));
        assert!(log.get(&bytes(R2)[..31]).is_none());
        assert!(log.get(&[]).is_none());
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            let mut text = Vec::new();
            for _ in 0..(state % 300) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let pick = [b'C', b'_', b' ', b'\n', b'a', b'0', b'#', 0xff, b'\r'];
                text.push(pick[(state % pick.len() as u64) as usize]);
            }
            let mut log = KeyLog::new();
            log.add_text(&text);
            assert_eq!(log.len(), 0);
        }
    }
}
