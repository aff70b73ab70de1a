//! Pure TLS parsers: bytes in, values out. Every read is bounds-checked through [`Reader`];
//! nothing here panics on hostile input, allocates beyond its input, or keeps state.
//!
//! Formats: RFC 8446 (TLS 1.3) 4.1.2-4.1.4, 4.2, 4.4.2, 5.1; RFC 5246 (TLS 1.2) 6.2, 7.4;
//! RFC 5246 E.2 (SSLv2-compatible ClientHello); RFC 6066 3 (server_name); RFC 7301 (ALPN).
//! JA4: FoxIO `technical_details/JA4.md`.

use super::{ClientHello, ServerHello};
use crate::proto::escape_bytes;
use sha2::{Digest, Sha256};

/// Record content types (RFC 8446 B.1, RFC 6520 for heartbeat).
pub mod content {
    pub const CHANGE_CIPHER_SPEC: u8 = 20;
    pub const ALERT: u8 = 21;
    pub const HANDSHAKE: u8 = 22;
    pub const APPLICATION_DATA: u8 = 23;
    pub const HEARTBEAT: u8 = 24;
}

/// Handshake message types (RFC 8446 B.3, RFC 5246 7.4).
pub mod handshake {
    pub const HELLO_REQUEST: u8 = 0;
    pub const CLIENT_HELLO: u8 = 1;
    pub const SERVER_HELLO: u8 = 2;
    pub const NEW_SESSION_TICKET: u8 = 4;
    pub const ENCRYPTED_EXTENSIONS: u8 = 8;
    pub const CERTIFICATE: u8 = 11;
    pub const SERVER_KEY_EXCHANGE: u8 = 12;
    pub const CERTIFICATE_REQUEST: u8 = 13;
    pub const SERVER_HELLO_DONE: u8 = 14;
    pub const CERTIFICATE_VERIFY: u8 = 15;
    pub const CLIENT_KEY_EXCHANGE: u8 = 16;
    pub const FINISHED: u8 = 20;
    pub const CERTIFICATE_STATUS: u8 = 22;
}

/// Extension types used here (IANA TLS ExtensionType registry).
pub mod ext {
    pub const SERVER_NAME: u16 = 0;
    pub const SUPPORTED_GROUPS: u16 = 10;
    pub const SIGNATURE_ALGORITHMS: u16 = 13;
    pub const ALPN: u16 = 16;
    pub const PRE_SHARED_KEY: u16 = 41;
    pub const SUPPORTED_VERSIONS: u16 = 43;
}

/// RFC 8446 4.1.3: a ServerHello with this random is a HelloRetryRequest
/// (SHA-256 of "HelloRetryRequest").
pub const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// RFC 8446 4.1.3 downgrade sentinels: the last 8 bytes of a ServerHello random.
const DOWNGRADE_TLS12: [u8; 8] = *b"DOWNGRD\x01";
const DOWNGRADE_TLS11: [u8; 8] = *b"DOWNGRD\x00";

/// RFC 8701: GREASE values are 0x?a?a with both bytes equal.
pub fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("truncated: need {need} bytes, have {have}")]
    Truncated { need: usize, have: usize },
    #[error("bad field {name}")]
    BadField { name: &'static str },
}

/// A bounds-checked cursor. Every read returns `Truncated` instead of panicking.
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Reader<'a> {
        Reader { data, pos: 0 }
    }
    pub fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], ParseError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(ParseError::Truncated { need: n, have: 0 })?;
        let out = self.data.get(self.pos..end).ok_or(ParseError::Truncated {
            need: n,
            have: self.remaining(),
        })?;
        self.pos = end;
        Ok(out)
    }
    pub fn u8(&mut self) -> Result<u8, ParseError> {
        let b = self.bytes(1)?;
        b.first()
            .copied()
            .ok_or(ParseError::Truncated { need: 1, have: 0 })
    }
    pub fn u16(&mut self) -> Result<u16, ParseError> {
        let b = self.bytes(2)?;
        match b {
            [a, b] => Ok(u16::from_be_bytes([*a, *b])),
            _ => Err(ParseError::Truncated {
                need: 2,
                have: b.len(),
            }),
        }
    }
    pub fn u24(&mut self) -> Result<usize, ParseError> {
        let b = self.bytes(3)?;
        match b {
            [a, b, c] => Ok(usize::from(*a) << 16 | usize::from(*b) << 8 | usize::from(*c)),
            _ => Err(ParseError::Truncated {
                need: 3,
                have: b.len(),
            }),
        }
    }
    /// A vector with a 1-byte length prefix.
    pub fn vec8(&mut self) -> Result<&'a [u8], ParseError> {
        let n = self.u8()?;
        self.bytes(usize::from(n))
    }
    /// A vector with a 2-byte length prefix.
    pub fn vec16(&mut self) -> Result<&'a [u8], ParseError> {
        let n = self.u16()?;
        self.bytes(usize::from(n))
    }
    /// A vector with a 3-byte length prefix.
    pub fn vec24(&mut self) -> Result<&'a [u8], ParseError> {
        let n = self.u24()?;
        self.bytes(n)
    }
}

/// A list of big-endian u16 values; an odd trailing byte is an error.
fn u16_list(data: &[u8], name: &'static str) -> Result<Vec<u16>, ParseError> {
    if data.len() % 2 != 0 {
        return Err(ParseError::BadField { name });
    }
    Ok(data
        .chunks_exact(2)
        .map(|c| match c {
            [a, b] => u16::from_be_bytes([*a, *b]),
            _ => 0,
        })
        .collect())
}

/// The 5-byte TLS record header (RFC 8446 5.1, RFC 5246 6.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    pub content_type: u8,
    pub version: u16,
    pub len: u16,
}

pub const RECORD_HEADER_LEN: usize = 5;

pub fn parse_record_header(b: &[u8]) -> Option<RecordHeader> {
    match b.get(..RECORD_HEADER_LEN)? {
        [t, v0, v1, l0, l1] => Some(RecordHeader {
            content_type: *t,
            version: u16::from_be_bytes([*v0, *v1]),
            len: u16::from_be_bytes([*l0, *l1]),
        }),
        _ => None,
    }
}

impl RecordHeader {
    /// A known content type and an SSL 3.0 .. TLS 1.3 record version (major 3, minor 0..=4;
    /// RFC 8446 5.1: the record version is 0x0303, or 0x0301 on a first ClientHello).
    pub fn is_plausible(&self) -> bool {
        (content::CHANGE_CIPHER_SPEC..=content::HEARTBEAT).contains(&self.content_type)
            && self.version >> 8 == 3
            && self.version & 0xff <= 4
    }
}

/// How a client's first bytes announce TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HelloFormat {
    /// A handshake record: 0x16 0x03 0x00..=0x04.
    Record,
    /// The SSLv2-compatible ClientHello (RFC 5246 E.2): 2-byte length with the high bit set,
    /// msg_type 1, version 0x0002 or 0x03NN.
    SslV2Compatible,
}

/// Whether the first bytes a client sent start a TLS handshake. Needs 3 bytes for a TLS record
/// and 5 for the SSLv2 format; returns `None` on fewer.
pub fn looks_like_tls_client(data: &[u8]) -> Option<HelloFormat> {
    match data {
        [0x16, 0x03, minor, ..] if *minor <= 4 => Some(HelloFormat::Record),
        [b0, _, 0x01, 0x00, 0x02, ..] | [b0, _, 0x01, 0x03, 0..=4, ..] if b0 & 0x80 != 0 => {
            Some(HelloFormat::SslV2Compatible)
        }
        _ => None,
    }
}

/// Length of an SSLv2 2-byte-header record body (RFC 5246 E.2: msg_length, high bit set).
pub fn sslv2_record_len(b0: u8, b1: u8) -> Option<usize> {
    if b0 & 0x80 == 0 {
        return None;
    }
    Some(usize::from(b0 & 0x7f) << 8 | usize::from(b1))
}

/// Handshake message header: type and 24-bit length (RFC 8446 4).
pub fn parse_handshake_header(b: &[u8]) -> Option<(u8, usize)> {
    match b.get(..4)? {
        [t, a, b, c] => Some((
            *t,
            usize::from(*a) << 16 | usize::from(*b) << 8 | usize::from(*c),
        )),
        _ => None,
    }
}

/// Parses a ClientHello body (after the 4-byte handshake header).
pub fn parse_client_hello(body: &[u8], record_version: u16) -> Result<ClientHello, ParseError> {
    let mut r = Reader::new(body);
    let legacy_version = r.u16()?;
    let random = r.bytes(32)?.to_vec();
    let session_id = r.vec8()?.to_vec();
    let cipher_suites = u16_list(r.vec16()?, "cipher_suites")?;
    let compression_methods = r.vec8()?.to_vec();
    let mut hello = ClientHello {
        record_version,
        legacy_version,
        supported_versions: Vec::new(),
        sni: None,
        alpn: Vec::new(),
        cipher_suites,
        compression_methods,
        extensions: Vec::new(),
        signature_algorithms: Vec::new(),
        supported_groups: Vec::new(),
        random,
        session_id,
        malformed_extensions: Vec::new(),
        sslv2_format: false,
        ja4: String::new(),
        ja4_r: String::new(),
    };
    let mut first_alpn: Option<Vec<u8>> = None;
    // RFC 5246 7.4.1.2: extensions may be absent (SSL 3.0 and early TLS clients).
    if !r.is_empty() {
        let mut exts = Reader::new(r.vec16()?);
        while !exts.is_empty() {
            let typ = exts.u16()?;
            let data = exts.vec16()?;
            hello.extensions.push(typ);
            let ok = match typ {
                ext::SERVER_NAME => parse_sni(data).map(|s| hello.sni = s),
                ext::ALPN => parse_alpn(data).map(|list| {
                    first_alpn = list.first().map(|p| p.to_vec());
                    hello.alpn = list.iter().map(|p| escape_bytes(p)).collect();
                }),
                ext::SUPPORTED_VERSIONS => Reader::new(data)
                    .vec8()
                    .and_then(|v| u16_list(v, "supported_versions"))
                    .map(|v| hello.supported_versions = v),
                ext::SIGNATURE_ALGORITHMS => Reader::new(data)
                    .vec16()
                    .and_then(|v| u16_list(v, "signature_algorithms"))
                    .map(|v| hello.signature_algorithms = v),
                ext::SUPPORTED_GROUPS => Reader::new(data)
                    .vec16()
                    .and_then(|v| u16_list(v, "supported_groups"))
                    .map(|v| hello.supported_groups = v),
                _ => Ok(()),
            };
            if ok.is_err() {
                hello.malformed_extensions.push(typ);
            }
        }
    }
    let (ja4, ja4_r) = ja4(&Ja4Input {
        version: hello.max_offered_version(),
        sni: hello.extensions.contains(&ext::SERVER_NAME),
        ciphers: &hello.cipher_suites,
        extensions: &hello.extensions,
        first_alpn: first_alpn.as_deref(),
        signature_algorithms: &hello.signature_algorithms,
    });
    hello.ja4 = ja4;
    hello.ja4_r = ja4_r;
    Ok(hello)
}

/// RFC 6066 3: the first host_name entry of a ServerNameList.
fn parse_sni(data: &[u8]) -> Result<Option<String>, ParseError> {
    let mut list = Reader::new(Reader::new(data).vec16()?);
    while !list.is_empty() {
        let name_type = list.u8()?;
        let name = list.vec16()?;
        if name_type == 0 {
            return Ok(Some(escape_bytes(name)));
        }
    }
    Ok(None)
}

/// RFC 7301 3.1: ProtocolNameList.
fn parse_alpn(data: &[u8]) -> Result<Vec<&[u8]>, ParseError> {
    let mut list = Reader::new(Reader::new(data).vec16()?);
    let mut out = Vec::new();
    while !list.is_empty() {
        out.push(list.vec8()?);
    }
    Ok(out)
}

/// Parses a ServerHello or HelloRetryRequest body (after the 4-byte handshake header).
///
/// TLS 1.3 drafts before -22 used a shorter ServerHello: version, random, cipher suite,
/// extensions (no session id, no compression; draft-ietf-tls-tls13-21 4.1.3).
pub fn parse_server_hello(body: &[u8], record_version: u16) -> Result<ServerHello, ParseError> {
    let mut r = Reader::new(body);
    let legacy_version = r.u16()?;
    let random = r.bytes(32)?.to_vec();
    let early_draft = legacy_version >> 8 == 0x7f && legacy_version & 0xff < 22;
    let session_id = if early_draft {
        Vec::new()
    } else {
        r.vec8()?.to_vec()
    };
    let cipher_suite = r.u16()?;
    let compression_method = if early_draft { 0 } else { r.u8()? };
    let mut hello = ServerHello {
        record_version,
        legacy_version,
        version: legacy_version,
        cipher_suite,
        compression_method,
        alpn: None,
        hello_retry_request: random.as_slice() == HRR_RANDOM.as_slice(),
        downgrade_sentinel: random
            .get(24..32)
            .is_some_and(|tail| tail == DOWNGRADE_TLS12 || tail == DOWNGRADE_TLS11),
        random,
        session_id,
        extensions: Vec::new(),
        malformed_extensions: Vec::new(),
    };
    if !r.is_empty() {
        let mut exts = Reader::new(r.vec16()?);
        while !exts.is_empty() {
            let typ = exts.u16()?;
            let data = exts.vec16()?;
            hello.extensions.push(typ);
            let ok = match typ {
                // RFC 8446 4.2.1: the server's supported_versions is one selected_version.
                ext::SUPPORTED_VERSIONS => Reader::new(data).u16().map(|v| hello.version = v),
                // RFC 7301 3.1: the server's list has exactly one name.
                ext::ALPN => {
                    parse_alpn(data).map(|l| hello.alpn = l.first().map(|p| escape_bytes(p)))
                }
                _ => Ok(()),
            };
            if ok.is_err() {
                hello.malformed_extensions.push(typ);
            }
        }
    }
    Ok(hello)
}

/// The ALPN protocol a TLS 1.3 server chose, from its (decrypted) EncryptedExtensions body
/// (RFC 8446 4.3.1: a list of extensions; RFC 7301 3.1: exactly one name). `None` when absent
/// or malformed.
pub fn parse_encrypted_extensions_alpn(body: &[u8]) -> Option<String> {
    let mut exts = Reader::new(Reader::new(body).vec16().ok()?);
    while !exts.is_empty() {
        let typ = exts.u16().ok()?;
        let data = exts.vec16().ok()?;
        if typ == ext::ALPN {
            return parse_alpn(data).ok()?.first().map(|p| escape_bytes(p));
        }
    }
    None
}

/// A Certificate message body: the DER certificates in order, at most `max` kept, plus how
/// many were dropped. `tls13` selects the RFC 8446 4.4.2 layout (request context, per-entry
/// extensions) over RFC 5246 7.4.2 (a plain list), so a decrypted TLS 1.3 Certificate can be
/// read too.
pub fn parse_certificate_list(
    body: &[u8],
    tls13: bool,
    max: usize,
) -> Result<(Vec<Vec<u8>>, usize), ParseError> {
    let mut r = Reader::new(body);
    if tls13 {
        r.vec8()?; // certificate_request_context
    }
    let mut list = Reader::new(r.vec24()?);
    let (mut certs, mut dropped) = (Vec::new(), 0usize);
    while !list.is_empty() {
        let der = list.vec24()?;
        if tls13 {
            list.vec16()?; // per-certificate extensions
        }
        if certs.len() < max {
            certs.push(der.to_vec());
        } else {
            dropped = dropped.saturating_add(1);
        }
    }
    Ok((certs, dropped))
}

/// Parses an SSLv2-compatible ClientHello (RFC 5246 E.2) from the record body (after the
/// 2-byte header): msg_type 1, version, cipher_spec_length, session_id_length,
/// challenge_length, cipher_specs (3 bytes each), session_id, challenge.
///
/// The cipher specs whose first byte is 0 are TLS cipher suites (RFC 5246 E.2) and become
/// `cipher_suites`. There are no extensions. JA4 is computed with the hello's version
/// (`s2` for 0x0002), no SNI, those suites and no extensions: JA4 does not define the SSLv2
/// form, this is modtrace's reading of it.
pub fn parse_sslv2_client_hello(body: &[u8]) -> Result<ClientHello, ParseError> {
    let mut r = Reader::new(body);
    if r.u8()? != 1 {
        return Err(ParseError::BadField {
            name: "sslv2 msg_type",
        });
    }
    let version = r.u16()?;
    let spec_len = usize::from(r.u16()?);
    let sid_len = usize::from(r.u16()?);
    let challenge_len = usize::from(r.u16()?);
    if spec_len % 3 != 0 {
        return Err(ParseError::BadField {
            name: "sslv2 cipher_spec_length",
        });
    }
    let specs = r.bytes(spec_len)?;
    let session_id = r.bytes(sid_len)?.to_vec();
    let challenge = r.bytes(challenge_len)?;
    let cipher_suites: Vec<u16> = specs
        .chunks_exact(3)
        .filter_map(|c| match c {
            [0, a, b] => Some(u16::from_be_bytes([*a, *b])),
            _ => None,
        })
        .collect();
    // RFC 5246 E.2: the challenge is right-aligned in the 32-byte random.
    let mut random = vec![0u8; 32usize.saturating_sub(challenge.len())];
    random.extend_from_slice(
        challenge
            .get(challenge.len().saturating_sub(32)..)
            .unwrap_or(&[]),
    );
    let (ja4, ja4_r) = ja4(&Ja4Input {
        version,
        sni: false,
        ciphers: &cipher_suites,
        extensions: &[],
        first_alpn: None,
        signature_algorithms: &[],
    });
    Ok(ClientHello {
        record_version: 0x0002,
        legacy_version: version,
        supported_versions: Vec::new(),
        sni: None,
        alpn: Vec::new(),
        cipher_suites,
        compression_methods: vec![0],
        extensions: Vec::new(),
        signature_algorithms: Vec::new(),
        supported_groups: Vec::new(),
        random,
        session_id,
        malformed_extensions: Vec::new(),
        sslv2_format: true,
        ja4,
        ja4_r,
    })
}

/// What JA4 reads from a ClientHello.
pub struct Ja4Input<'a> {
    /// Highest supported_versions value (GREASE ignored), else the hello's legacy_version.
    pub version: u16,
    pub sni: bool,
    pub ciphers: &'a [u16],
    pub extensions: &'a [u16],
    pub first_alpn: Option<&'a [u8]>,
    pub signature_algorithms: &'a [u16],
}

/// FoxIO JA4 (`technical_details/JA4.md`) for TLS over TCP: returns (JA4, JA4_r).
///
/// GREASE (RFC 8701) is ignored everywhere, signature algorithms included ("ignore GREASE
/// values anywhere"). Counts are capped at 99. An empty list hashes to `000000000000`.
pub fn ja4(input: &Ja4Input<'_>) -> (String, String) {
    let version = match input.version {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0002 | 0x0200 => "s2",
        0x0100 => "s1",
        0xfeff => "d1",
        0xfefd => "d2",
        0xfefc => "d3",
        _ => "00",
    };
    let mut ciphers: Vec<u16> = input
        .ciphers
        .iter()
        .copied()
        .filter(|c| !is_grease(*c))
        .collect();
    let exts_all: Vec<u16> = input
        .extensions
        .iter()
        .copied()
        .filter(|e| !is_grease(*e))
        .collect();
    let cipher_count = ciphers.len().min(99);
    let ext_count = exts_all.len().min(99);
    let mut exts: Vec<u16> = exts_all
        .into_iter()
        .filter(|e| *e != ext::SERVER_NAME && *e != ext::ALPN)
        .collect();
    ciphers.sort_unstable();
    exts.sort_unstable();
    let sigs: Vec<u16> = input
        .signature_algorithms
        .iter()
        .copied()
        .filter(|s| !is_grease(*s))
        .collect();
    let alpn = ja4_alpn(input.first_alpn);
    let a = format!(
        "t{version}{}{cipher_count:02}{ext_count:02}{alpn}",
        if input.sni { 'd' } else { 'i' }
    );
    let hex_list = |l: &[u16]| {
        l.iter()
            .map(|v| format!("{v:04x}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let b_raw = hex_list(&ciphers);
    let mut c_raw = hex_list(&exts);
    if !sigs.is_empty() {
        c_raw.push('_');
        c_raw.push_str(&hex_list(&sigs));
    }
    let hash12 = |s: &str| -> String {
        if s.is_empty() {
            return "000000000000".to_string();
        }
        let digest = Sha256::digest(s.as_bytes());
        hex::encode(digest.get(..6).unwrap_or(&[]))
    };
    (
        format!("{a}_{}_{}", hash12(&b_raw), hash12(&c_raw)),
        format!("{a}_{b_raw}_{c_raw}"),
    )
}

/// JA4's two ALPN characters: first and last character of the first ALPN value when both are
/// ASCII alphanumerics, else first and last hex digit of the value; `00` when absent or empty.
fn ja4_alpn(first: Option<&[u8]>) -> String {
    let Some(v) = first else { return "00".into() };
    let (Some(f), Some(l)) = (v.first(), v.last()) else {
        return "00".into();
    };
    if f.is_ascii_alphanumeric() && l.is_ascii_alphanumeric() {
        return format!("{}{}", char::from(*f), char::from(*l));
    }
    let hex = hex::encode(v);
    let (Some(hf), Some(hl)) = (hex.chars().next(), hex.chars().last()) else {
        return "00".into();
    };
    format!("{hf}{hl}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(l: &str) -> Vec<u16> {
        l.split(',')
            .map(|s| u16::from_str_radix(s, 16).unwrap())
            .collect()
    }

    /// FoxIO JA4.md "Example" and the FoxIO Rust test `test_client_stats_into_out`: lists in
    /// their original order, GREASE already removed.
    #[test]
    fn ja4_published_example() {
        let ciphers =
            strs("1301,1302,1303,c02b,c02f,c02c,c030,cca9,cca8,c013,c014,009c,009d,002f,0035");
        let exts =
            strs("001b,0000,0033,0010,4469,0017,002d,000d,0005,0023,0012,002b,ff01,000b,000a,0015");
        let sigs = strs("0403,0804,0401,0503,0805,0501,0806,0601");
        let (ja4_hash, raw) = ja4(&Ja4Input {
            version: 0x0304,
            sni: true,
            ciphers: &ciphers,
            extensions: &exts,
            first_alpn: Some(b"h2"),
            signature_algorithms: &sigs,
        });
        assert_eq!(ja4_hash, "t13d1516h2_8daaf6152771_e5627efa2ab1");
        assert_eq!(
            raw,
            "t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,\
             cca9_0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01_0403,\
             0804,0401,0503,0805,0501,0806,0601"
        );
        // JA4.md: without signature algorithms the string ends without '_': 6d807ffa2a79.
        let (no_sigs, _) = ja4(&Ja4Input {
            version: 0x0304,
            sni: true,
            ciphers: &ciphers,
            extensions: &exts,
            first_alpn: Some(b"h2"),
            signature_algorithms: &[],
        });
        assert!(no_sigs.ends_with("_6d807ffa2a79"), "{no_sigs}");
    }

    #[test]
    fn ja4_grease_is_ignored_and_empty_lists_are_zeros() {
        let (with_grease, _) = ja4(&Ja4Input {
            version: 0x0303,
            sni: false,
            ciphers: &[0x0a0a, 0xc02f],
            extensions: &[0x1a1a, 0x000d],
            first_alpn: None,
            signature_algorithms: &[0x2a2a, 0x0403],
        });
        let (without, _) = ja4(&Ja4Input {
            version: 0x0303,
            sni: false,
            ciphers: &[0xc02f],
            extensions: &[0x000d],
            first_alpn: None,
            signature_algorithms: &[0x0403],
        });
        assert_eq!(with_grease, without);
        assert!(with_grease.starts_with("t12i010100_"), "{with_grease}");
        let (empty, _) = ja4(&Ja4Input {
            version: 0x9999,
            sni: false,
            ciphers: &[],
            extensions: &[],
            first_alpn: None,
            signature_algorithms: &[],
        });
        assert_eq!(empty, "t00i000000_000000000000_000000000000");
    }

    /// JA4.md "ALPN Extension Value": the hex rule for non-alphanumeric bytes.
    #[test]
    fn ja4_alpn_characters() {
        assert_eq!(ja4_alpn(Some(b"h2")), "h2");
        assert_eq!(ja4_alpn(Some(b"http/1.1")), "h1");
        assert_eq!(ja4_alpn(Some(b"x")), "xx");
        assert_eq!(ja4_alpn(Some(&[0xab])), "ab");
        assert_eq!(ja4_alpn(Some(&[0xab, 0xcd])), "ad");
        assert_eq!(ja4_alpn(Some(&[0x30, 0xab])), "3b");
        assert_eq!(ja4_alpn(Some(&[0x30, 0x31, 0xab, 0xcd])), "3d");
        assert_eq!(ja4_alpn(Some(&[0x30, 0xab, 0xcd, 0x31])), "01");
        assert_eq!(ja4_alpn(Some(b"")), "00");
        assert_eq!(ja4_alpn(None), "00");
    }

    #[test]
    fn grease_values() {
        for v in [0x0a0a, 0x1a1a, 0xfafa, 0xeaea] {
            assert!(is_grease(v), "{v:04x}");
        }
        for v in [0x0a1a, 0x0303, 0x1301, 0x0a0b] {
            assert!(!is_grease(v), "{v:04x}");
        }
    }

    #[test]
    fn first_bytes_recognised() {
        assert_eq!(
            looks_like_tls_client(&[0x16, 0x03, 0x01, 0x02, 0x00]),
            Some(HelloFormat::Record)
        );
        assert_eq!(
            looks_like_tls_client(&[0x16, 0x03, 0x00]),
            Some(HelloFormat::Record)
        );
        assert_eq!(looks_like_tls_client(&[0x16, 0x03, 0x05]), None);
        assert_eq!(looks_like_tls_client(b"GET / HTTP/1.1"), None);
        assert_eq!(
            looks_like_tls_client(&[0x80, 0x2e, 0x01, 0x03, 0x01]),
            Some(HelloFormat::SslV2Compatible)
        );
        assert_eq!(
            looks_like_tls_client(&[0x80, 0x2e, 0x01, 0x00, 0x02]),
            Some(HelloFormat::SslV2Compatible)
        );
        assert_eq!(looks_like_tls_client(&[0x80, 0x2e, 0x04, 0x00, 0x02]), None);
        assert_eq!(looks_like_tls_client(&[0x16]), None);
    }

    #[test]
    fn reader_never_reads_past_the_end() {
        let mut r = Reader::new(&[0x00, 0x05, 1, 2]);
        assert_eq!(r.vec16(), Err(ParseError::Truncated { need: 5, have: 2 }));
        let mut r = Reader::new(&[0xff, 0xff, 0xff]);
        assert!(r.vec24().is_err());
        assert!(Reader::new(&[]).u8().is_err());
    }

    #[test]
    fn certificate_list_both_layouts() {
        // RFC 5246: u24 list length, then u24-prefixed DER entries.
        let tls12 = [0, 0, 8, 0, 0, 2, 0xaa, 0xbb, 0, 0, 0];
        assert_eq!(
            parse_certificate_list(&tls12, false, 16).unwrap(),
            (vec![vec![0xaa, 0xbb], vec![]], 0)
        );
        // RFC 8446: context, list, each entry followed by u16 extensions.
        let tls13 = [0, 0, 0, 7, 0, 0, 2, 0xaa, 0xbb, 0, 0];
        assert_eq!(
            parse_certificate_list(&tls13, true, 16).unwrap(),
            (vec![vec![0xaa, 0xbb]], 0)
        );
        assert_eq!(parse_certificate_list(&tls12, false, 1).unwrap().1, 1);
        assert!(parse_certificate_list(&[0, 0, 9, 0, 0, 2, 0xaa], false, 16).is_err());
    }

    #[test]
    fn server_hello_hrr_and_downgrade() {
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&HRR_RANDOM);
        body.extend_from_slice(&[0, 0x13, 0x01, 0, 0, 6, 0, 0x2b, 0, 2, 0x03, 0x04]);
        let sh = parse_server_hello(&body, 0x0303).unwrap();
        assert!(sh.hello_retry_request);
        assert_eq!(sh.version, 0x0304);
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&[7u8; 24]);
        body.extend_from_slice(b"DOWNGRD\x01");
        body.extend_from_slice(&[0, 0xc0, 0x2f, 0]);
        let sh = parse_server_hello(&body, 0x0303).unwrap();
        assert!(sh.downgrade_sentinel && !sh.hello_retry_request);
        assert_eq!((sh.version, sh.cipher_suite), (0x0303, 0xc02f));
    }
}
