//! DNS messages over UDP and TCP (RFC 1035), so servers can be shown by name.
//! (Owned by the http1+dns work item.)

use std::net::{Ipv4Addr, Ipv6Addr};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsQuestion {
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

/// Parses one DNS message (the UDP payload, or one length-prefixed TCP message without its
/// prefix).
pub fn parse_message(buf: &[u8]) -> Result<DnsMessage, DnsError> {
    Err(DnsError::Truncated { need: 12, have: buf.len() })
}

/// DNS over TCP: 2-byte length framing per direction (RFC 1035 4.2.2).
#[derive(Default)]
pub struct DnsTcpConn {}

impl DnsTcpConn {
    pub fn on_data(&mut self, dir: crate::flow::Dir, data: &[u8], out: &mut Vec<DnsMessage>) {
        let _ = (dir, data, out);
    }
    /// Bytes were lost in this direction: drop the partial message.
    pub fn on_gap(&mut self, dir: crate::flow::Dir) {
        let _ = dir;
    }
}
