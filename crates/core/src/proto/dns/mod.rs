//! DNS messages over UDP and TCP (RFC 1035), so servers can be shown by name.
//! (Owned by the http1+dns work item.)
//!
//! Only what naming needs is decoded: the header, the questions, and the answer records (A,
//! AAAA and CNAME data; other types by their type number). Authority and additional records are
//! not read. Every read is bounds-checked; name decompression counts pointer jumps and the
//! name length (Suricata `rust/src/dns/parser.rs` `dns_parse_name` style), so hostile pointers
//! cannot loop.

// House style: no indexing, unwrap or unchecked arithmetic on wire data outside tests.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::arithmetic_side_effects
    )
)]

use std::net::{Ipv4Addr, Ipv6Addr};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsQuestion {
    /// Presentation form without the trailing dot (`proxy.golang.org`), as cased on the wire;
    /// `.` for the root. Bytes outside letters, digits, `-` and `_` are written `\DDD`, a dot
    /// inside a label `\.` (RFC 1035 5.1).
    pub name: String,
    pub qtype: u16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Cname(String),
    Other { rtype: u16 },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsRecord {
    pub name: String,
    pub ttl: u32,
    pub data: RData,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsMessage {
    pub id: u16,
    pub response: bool,
    pub rcode: u8,
    pub questions: Vec<DnsQuestion>,
    pub answers: Vec<DnsRecord>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    #[error("truncated: need {need} bytes, have {have}")]
    Truncated { need: usize, have: usize },
    #[error("bad field {name}")]
    BadField { name: &'static str },
}

/// RFC 1035 types decoded here.
pub const TYPE_A: u16 = 1;
pub const TYPE_CNAME: u16 = 5;
pub const TYPE_AAAA: u16 = 28;

/// Every DNS limit, with why.
mod limits {
    /// Compression pointers followed in one name. A legitimate name needs one or two; 64 is far
    /// above any real message and stops a loop at once (Suricata caps pointer hops similarly).
    pub const MAX_POINTER_JUMPS: usize = 64;
    /// RFC 1035 3.1: a name is at most 255 octets on the wire (labels plus length bytes).
    pub const MAX_NAME_WIRE_LEN: usize = 255;
}

mod field {
    use std::ops::Range;
    pub const ID: Range<usize> = 0..2;
    pub const FLAGS: Range<usize> = 2..4;
    pub const QDCOUNT: Range<usize> = 4..6;
    pub const ANCOUNT: Range<usize> = 6..8;
    pub const HEADER_LEN: usize = 12;
}

fn truncated(need: usize, have: usize) -> DnsError {
    DnsError::Truncated { need, have }
}

fn bytes(msg: &[u8], at: usize, len: usize) -> Result<&[u8], DnsError> {
    let end = at
        .checked_add(len)
        .ok_or(DnsError::BadField { name: "offset" })?;
    msg.get(at..end).ok_or(truncated(end, msg.len()))
}

fn u16_at(msg: &[u8], at: usize) -> Result<u16, DnsError> {
    let b = bytes(msg, at, 2)?;
    Ok(u16::from_be_bytes([
        b.first().copied().unwrap_or(0),
        b.get(1).copied().unwrap_or(0),
    ]))
}

fn u32_at(msg: &[u8], at: usize) -> Result<u32, DnsError> {
    Ok(u32::from(u16_at(msg, at)?) << 16 | u32::from(u16_at(msg, at.saturating_add(2))?))
}

/// Reads the (possibly compressed, RFC 1035 4.1.4) name at `at`. Returns the name and the
/// offset just after its in-place bytes.
fn read_name(msg: &[u8], at: usize) -> Result<(String, usize), DnsError> {
    let mut name = String::new();
    let mut pos = at;
    let mut after: Option<usize> = None;
    let mut jumps = 0usize;
    let mut wire_len = 1usize; // the root label's zero byte
    loop {
        let len = *msg
            .get(pos)
            .ok_or(truncated(pos.saturating_add(1), msg.len()))?;
        match len & 0xC0 {
            0x00 if len == 0 => {
                let end = after.unwrap_or(pos.saturating_add(1));
                if name.is_empty() {
                    name.push('.');
                }
                return Ok((name, end));
            }
            0x00 => {
                let label = bytes(msg, pos.saturating_add(1), usize::from(len))?;
                wire_len = wire_len.saturating_add(usize::from(len) + 1);
                if wire_len > limits::MAX_NAME_WIRE_LEN {
                    return Err(DnsError::BadField {
                        name: "name length",
                    });
                }
                if !name.is_empty() {
                    name.push('.');
                }
                push_label(&mut name, label);
                pos = pos.saturating_add(1 + usize::from(len));
            }
            0xC0 => {
                let low = *msg
                    .get(pos.saturating_add(1))
                    .ok_or(truncated(pos.saturating_add(2), msg.len()))?;
                if after.is_none() {
                    after = Some(pos.saturating_add(2));
                }
                jumps = jumps.saturating_add(1);
                if jumps > limits::MAX_POINTER_JUMPS {
                    return Err(DnsError::BadField {
                        name: "name pointer loop",
                    });
                }
                pos = usize::from(u16::from(len & 0x3F) << 8 | u16::from(low));
            }
            // 0x40 (extended label types, RFC 6891 deprecated them) and 0x80 are not names.
            _ => {
                return Err(DnsError::BadField {
                    name: "name label type",
                })
            }
        }
    }
}

/// RFC 1035 5.1 presentation form of one label.
fn push_label(out: &mut String, label: &[u8]) {
    for &b in label {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' => out.push(char::from(b)),
            b'.' => out.push_str("\\."),
            _ => out.push_str(&format!("\\{b:03}")),
        }
    }
}

/// Parses one DNS message (the UDP payload, or one length-prefixed TCP message without its
/// prefix).
pub fn parse_message(buf: &[u8]) -> Result<DnsMessage, DnsError> {
    if buf.len() < field::HEADER_LEN {
        return Err(truncated(field::HEADER_LEN, buf.len()));
    }
    let id = u16_at(buf, field::ID.start)?;
    let flags = u16_at(buf, field::FLAGS.start)?;
    let qdcount = u16_at(buf, field::QDCOUNT.start)?;
    let ancount = u16_at(buf, field::ANCOUNT.start)?;
    let mut pos = field::HEADER_LEN;
    // Counts come from the wire: vectors grow as records parse, never sized from them.
    let mut questions = Vec::new();
    for _ in 0..qdcount {
        let (name, next) = read_name(buf, pos)?;
        let qtype = u16_at(buf, next)?;
        let _qclass = u16_at(buf, next.saturating_add(2))?;
        pos = next.saturating_add(4);
        questions.push(DnsQuestion { name, qtype });
    }
    let mut answers = Vec::new();
    for _ in 0..ancount {
        let (name, next) = read_name(buf, pos)?;
        let rtype = u16_at(buf, next)?;
        let ttl = u32_at(buf, next.saturating_add(4))?;
        let rdlength = usize::from(u16_at(buf, next.saturating_add(8))?);
        let rdata_at = next.saturating_add(10);
        let rdata = bytes(buf, rdata_at, rdlength)?;
        let data = match rtype {
            TYPE_A => {
                let b: [u8; 4] = rdata
                    .try_into()
                    .map_err(|_| DnsError::BadField { name: "A rdlength" })?;
                RData::A(Ipv4Addr::from(b))
            }
            TYPE_AAAA => {
                let b: [u8; 16] = rdata.try_into().map_err(|_| DnsError::BadField {
                    name: "AAAA rdlength",
                })?;
                RData::Aaaa(Ipv6Addr::from(b))
            }
            TYPE_CNAME => {
                let (target, end) = read_name(buf, rdata_at)?;
                if end > rdata_at.saturating_add(rdlength) {
                    return Err(DnsError::BadField {
                        name: "CNAME rdlength",
                    });
                }
                RData::Cname(target)
            }
            _ => RData::Other { rtype },
        };
        pos = rdata_at.saturating_add(rdlength);
        answers.push(DnsRecord { name, ttl, data });
    }
    Ok(DnsMessage {
        id,
        response: flags & 0x8000 != 0,
        rcode: (flags & 0x000F) as u8,
        questions,
        answers,
    })
}

/// One direction of a DNS-over-TCP stream.
#[derive(Default)]
struct TcpDir {
    /// A message (with its 2-byte length) split over chunks; at most 2 + 65535 bytes.
    partial: Vec<u8>,
    /// After a gap: each chunk start is taken as a message start until a message parses; a
    /// failure drops the rest of the chunk, a message not complete in its chunk is dropped at
    /// the next one (best effort: a message spanning chunks right after a gap is lost).
    resync: bool,
}

/// DNS over TCP: 2-byte length framing per direction (RFC 1035 4.2.2).
#[derive(Default)]
pub struct DnsTcpConn {
    dirs: [TcpDir; 2],
}

impl DnsTcpConn {
    pub fn on_data(&mut self, dir: crate::flow::Dir, data: &[u8], out: &mut Vec<DnsMessage>) {
        let Some(d) = self.dirs.get_mut(dir.index()) else {
            return;
        };
        if d.resync {
            // Still unsure where messages start: a candidate that did not complete within its
            // chunk is given up for this chunk's start.
            d.partial.clear();
        }
        let mut input = data;
        while !input.is_empty() {
            let parsed = if d.partial.is_empty() {
                // Whole messages straight from the chunk, no copy.
                let Ok(len) = u16_at(input, 0) else {
                    d.partial.extend_from_slice(input);
                    return;
                };
                let total = 2 + usize::from(len);
                let Some(msg) = input.get(2..total) else {
                    d.partial.extend_from_slice(input);
                    return;
                };
                input = input.get(total..).unwrap_or(&[]);
                parse_message(msg)
            } else {
                let have = d.partial.len();
                let need = match u16_at(&d.partial, 0) {
                    Ok(len) => 2 + usize::from(len),
                    Err(_) => 2,
                };
                let take = need.saturating_sub(have).min(input.len());
                d.partial
                    .extend_from_slice(input.get(..take).unwrap_or(&[]));
                input = input.get(take..).unwrap_or(&[]);
                let need = match u16_at(&d.partial, 0) {
                    Ok(len) => 2 + usize::from(len),
                    Err(_) => continue,
                };
                if d.partial.len() < need {
                    continue;
                }
                let r = parse_message(d.partial.get(2..).unwrap_or(&[]));
                d.partial.clear();
                r
            };
            match parsed {
                Ok(m) => {
                    d.resync = false;
                    out.push(m);
                }
                // Probably not at a message start after all: wait for the next chunk.
                Err(_) if d.resync => return,
                // The framing is independent of the content: go on with the next message.
                Err(_) => {}
            }
        }
    }

    /// Bytes were lost in this direction: drop the partial message.
    pub fn on_gap(&mut self, dir: crate::flow::Dir) {
        if let Some(d) = self.dirs.get_mut(dir.index()) {
            d.partial = Vec::new();
            d.resync = true;
        }
    }
}

#[cfg(test)]
mod tests;
