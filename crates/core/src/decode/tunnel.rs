//! Tunnel headers, stripped down to the frame or packet they carry: GRE (RFC 2784, with RFC
//! 2890's key and sequence number), GRE in UDP (RFC 8086), VXLAN (RFC 7348), Geneve (RFC 8926)
//! and ERSPAN types I, II and III inside GRE (draft-foschiano-erspan-03).
//!
//! Pure parsers on bytes in smoltcp's `wire` style: every read is bounds-checked, an error says
//! what was wrong, nothing panics. They only remove a header; `link.rs` decodes what is inside,
//! counts, and bounds the nesting (`MAX_ENCAP_DEPTH`). Checksums (GRE's C bit) are not checked,
//! as nowhere else in decoding: checksum offloading leaves them wrong in captures.

#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::arithmetic_side_effects
)]

use crate::wire::{be16, be32};
use std::fmt;

/// UDP destination ports (IANA) that announce an encapsulation. Only the destination port
/// counts: the source port of each is a hash of the inner flow, for ECMP entropy (RFC 8086
/// 3.2, RFC 7348 5, RFC 8926 3.3), and both tunnel ends listen on the registered port.
pub(super) mod udp_port {
    pub const GRE_IN_UDP: u16 = 4754;
    pub const VXLAN: u16 = 4789;
    pub const GENEVE: u16 = 6081;
}

/// Protocol types (EtherTypes) in GRE and Geneve headers that are not a bare network layer.
pub(super) mod protocol {
    /// Transparent Ethernet Bridging: an Ethernet frame (GRE, NVGRE RFC 7637, Geneve).
    pub const TEB: u16 = 0x6558;
    /// ERSPAN type I (no ERSPAN header) and type II (an 8-byte one).
    pub const ERSPAN_1_2: u16 = 0x88BE;
    /// ERSPAN type III.
    pub const ERSPAN_3: u16 = 0x22EB;
}

/// The encapsulation a header belongs to, for errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encap {
    Gre,
    Vxlan,
    Geneve,
    Erspan,
}

impl Encap {
    pub fn name(self) -> &'static str {
        match self {
            Encap::Gre => "GRE",
            Encap::Vxlan => "VXLAN",
            Encap::Geneve => "Geneve",
            Encap::Erspan => "ERSPAN",
        }
    }
}

/// Why an encapsulation header could not be removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TunnelError {
    /// The header, with the optional fields or options it announces, runs past the bytes
    /// there are (a snaplen cut, or a length that lies).
    Truncated {
        encap: Encap,
        need: usize,
        have: usize,
    },
    /// A field holds a value its specification rules out.
    BadField { encap: Encap, name: &'static str },
    /// Well formed, but not decoded here (PPTP's GRE version 1, RFC 1701 routing, a version
    /// of the header published after this parser).
    Unsupported { encap: Encap, what: &'static str },
}

impl fmt::Display for TunnelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TunnelError::Truncated { encap, need, have } => write!(
                f,
                "{} header needs {need} bytes, {have} there",
                encap.name()
            ),
            TunnelError::BadField { encap, name } => write!(f, "{} bad {name}", encap.name()),
            TunnelError::Unsupported { encap, what } => {
                write!(f, "{} {what} not decoded", encap.name())
            }
        }
    }
}

/// What an encapsulation carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Inner<'a> {
    /// An Ethernet II frame, from its destination address.
    Ethernet(&'a [u8]),
    /// An IPv4 or IPv6 packet; its version nibble tells which.
    Ip(&'a [u8]),
    /// A payload named by its EtherType, as after an Ethernet header (IPv4, IPv6, MPLS, ...).
    EtherType(u16, &'a [u8]),
}

/// `data` split after `len` header bytes, or `Truncated`.
fn split(data: &[u8], len: usize, encap: Encap) -> Result<(&[u8], &[u8]), TunnelError> {
    match (data.get(..len), data.get(len..)) {
        (Some(header), Some(rest)) => Ok((header, rest)),
        _ => Err(TunnelError::Truncated {
            encap,
            need: len,
            have: data.len(),
        }),
    }
}

/// GRE flag bits of the first 16-bit word (RFC 2784 2.1, RFC 2890 2, RFC 1701 2.1).
mod gre_flag {
    pub const CHECKSUM: u16 = 0x8000;
    /// RFC 1701's routing present bit: RFC 2784 2.3 makes bits 1-5 reserved and says a
    /// receiver that does not implement RFC 1701 discards the packet.
    pub const ROUTING: u16 = 0x4000;
    pub const KEY: u16 = 0x2000;
    pub const SEQUENCE: u16 = 0x1000;
    pub const VERSION: u16 = 0x0007;
}

/// A GRE header (RFC 2784 2.1; RFC 2890 2 adds the key and sequence number):
///
/// ```text
/// |C| |K|S| Reserved0 | Ver |  Protocol Type  |
/// |  Checksum (if C)        | Reserved1 (if C) |
/// |              Key (if K)                    |
/// |        Sequence Number (if S)              |
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct GreHeader {
    /// The EtherType of the payload.
    pub protocol: u16,
    pub key: Option<u32>,
    pub sequence: Option<u32>,
    /// Bytes of the header, optional words included.
    pub len: usize,
}

impl GreHeader {
    /// The header at the start of `data`, and the payload after it.
    pub fn parse(data: &[u8]) -> Result<(GreHeader, &[u8]), TunnelError> {
        let encap = Encap::Gre;
        let (Some(flags), Some(protocol)) = (be16(data, 0), be16(data, 2)) else {
            return Err(TunnelError::Truncated {
                encap,
                need: 4,
                have: data.len(),
            });
        };
        match flags & gre_flag::VERSION {
            0 => {}
            // RFC 2637 4.1: PPTP's enhanced GRE carries PPP, in practice MPPE-encrypted.
            1 => {
                return Err(TunnelError::Unsupported {
                    encap,
                    what: "version 1 (PPTP)",
                })
            }
            // RFC 2784 2.3.1: the version MUST be 0.
            _ => {
                return Err(TunnelError::BadField {
                    encap,
                    name: "version",
                })
            }
        }
        if flags & gre_flag::ROUTING != 0 {
            return Err(TunnelError::Unsupported {
                encap,
                what: "source routing (RFC 1701)",
            });
        }
        let word = |bit: u16| if flags & bit != 0 { 4usize } else { 0 };
        let key_at = 4usize.saturating_add(word(gre_flag::CHECKSUM));
        let seq_at = key_at.saturating_add(word(gre_flag::KEY));
        let len = seq_at.saturating_add(word(gre_flag::SEQUENCE));
        let (_, payload) = split(data, len, encap)?;
        let header = GreHeader {
            protocol,
            key: (flags & gre_flag::KEY != 0)
                .then(|| be32(data, key_at))
                .flatten(),
            sequence: (flags & gre_flag::SEQUENCE != 0)
                .then(|| be32(data, seq_at))
                .flatten(),
            len,
        };
        Ok((header, payload))
    }

    /// True when the payload starts with an ERSPAN header (or is ERSPAN type I).
    pub fn is_erspan(&self) -> bool {
        matches!(self.protocol, protocol::ERSPAN_1_2 | protocol::ERSPAN_3)
    }

    /// What the payload carries, by protocol type; ERSPAN's own header is removed too.
    pub fn inner<'a>(&self, payload: &'a [u8]) -> Result<Inner<'a>, TunnelError> {
        match self.protocol {
            protocol::TEB => Ok(Inner::Ethernet(payload)),
            // draft-foschiano-erspan-03 4.1, 4.2: type I has no header of its own and is sent
            // without a GRE sequence number; type II always has one (Wireshark's
            // packet-erspan.c tells them apart the same way).
            protocol::ERSPAN_1_2 if self.sequence.is_none() => Ok(Inner::Ethernet(payload)),
            protocol::ERSPAN_1_2 => erspan2(payload),
            protocol::ERSPAN_3 => erspan3(payload),
            p => Ok(Inner::EtherType(p, payload)),
        }
    }
}

/// ERSPAN type II (draft-foschiano-erspan-03 4.2): 8 bytes, then the mirrored Ethernet frame.
///
/// ```text
/// |  Ver  |   VLAN    | COS | En|T|  Session ID  |
/// |      Reserved     |         Index            |
/// ```
pub(super) fn erspan2(data: &[u8]) -> Result<Inner<'_>, TunnelError> {
    let (header, frame) = split(data, 8, Encap::Erspan)?;
    match header.first().map(|b| b >> 4) {
        Some(1) => Ok(Inner::Ethernet(frame)),
        _ => Err(TunnelError::Unsupported {
            encap: Encap::Erspan,
            what: "version in a type II header",
        }),
    }
}

/// ERSPAN type III (draft-foschiano-erspan-03 4.3): 12 bytes, then an 8-byte platform-specific
/// subheader when the O bit is set, then the mirrored frame: Ethernet (frame type 0) or IP (2).
///
/// ```text
/// |  Ver  |   VLAN    | COS |BSO|T|  Session ID  |
/// |                 Timestamp                    |
/// |      SGT      |P|   FT    | Hw ID |D|Gra|O   |
/// ```
pub(super) fn erspan3(data: &[u8]) -> Result<Inner<'_>, TunnelError> {
    let encap = Encap::Erspan;
    let (header, rest) = split(data, 12, encap)?;
    if header.first().map(|b| b >> 4) != Some(2) {
        return Err(TunnelError::Unsupported {
            encap,
            what: "version in a type III header",
        });
    }
    let (Some(&b10), Some(&b11)) = (header.get(10), header.get(11)) else {
        return Err(TunnelError::Truncated {
            encap,
            need: 12,
            have: data.len(),
        });
    };
    let frame = if b11 & 0x01 != 0 {
        split(rest, 8, encap)
            .map_err(|_| TunnelError::Truncated {
                encap,
                need: 20,
                have: data.len(),
            })?
            .1
    } else {
        rest
    };
    match (b10 >> 2) & 0x1F {
        0 => Ok(Inner::Ethernet(frame)),
        2 => Ok(Inner::Ip(frame)),
        _ => Err(TunnelError::Unsupported {
            encap,
            what: "frame type",
        }),
    }
}

/// VXLAN (RFC 7348 5): flags (1: the I bit says the VNI is valid), reserved (3), VNI (3),
/// reserved (1), then an Ethernet frame.
pub(super) fn vxlan(data: &[u8]) -> Result<Inner<'_>, TunnelError> {
    let (header, frame) = split(data, 8, Encap::Vxlan)?;
    // RFC 7348 5: the I flag MUST be 1; the other bits are reserved and ignored on receipt.
    match header.first() {
        Some(flags) if flags & 0x08 != 0 => Ok(Inner::Ethernet(frame)),
        _ => Err(TunnelError::BadField {
            encap: Encap::Vxlan,
            name: "flags (I bit clear)",
        }),
    }
}

/// Geneve (RFC 8926 3.4): version (2 bits) and options length (6, in 4-byte words), O and C
/// bits, reserved (6), protocol type (2), VNI (3), reserved (1), options, then the payload
/// named by the protocol type (usually 0x6558, Ethernet).
pub(super) fn geneve(data: &[u8]) -> Result<Inner<'_>, TunnelError> {
    let encap = Encap::Geneve;
    let (Some(&first), Some(protocol)) = (data.first(), be16(data, 2)) else {
        return Err(TunnelError::Truncated {
            encap,
            need: 8,
            have: data.len(),
        });
    };
    // RFC 8926 3.4: a packet of an unknown version MUST be dropped.
    if first >> 6 != 0 {
        return Err(TunnelError::Unsupported {
            encap,
            what: "version",
        });
    }
    let options = usize::from(first & 0x3F).saturating_mul(4);
    let (_, payload) = split(data, 8usize.saturating_add(options), encap)?;
    Ok(match protocol {
        protocol::TEB => Inner::Ethernet(payload),
        p => Inner::EtherType(p, payload),
    })
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::arithmetic_side_effects
)]
mod tests {
    use super::*;

    const ETH: &[u8] = &[
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x90, 0x00,
    ];

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    #[test]
    fn gre_plain_and_with_every_optional_word() {
        let p = cat(&[&[0x00, 0x00, 0x08, 0x00], b"IP"]);
        let (h, rest) = GreHeader::parse(&p).unwrap();
        assert_eq!(
            (h.protocol, h.key, h.sequence, h.len),
            (0x0800, None, None, 4)
        );
        assert_eq!(rest, b"IP");
        assert_eq!(h.inner(rest).unwrap(), Inner::EtherType(0x0800, b"IP"));
        // C, K and S: checksum + reserved, key 7, sequence 9.
        let p = cat(&[
            &[0xB0, 0x00, 0x86, 0xDD],
            &[0xAB, 0xCD, 0, 0],
            &[0, 0, 0, 7],
            &[0, 0, 0, 9],
            b"v6",
        ]);
        let (h, rest) = GreHeader::parse(&p).unwrap();
        assert_eq!((h.key, h.sequence, h.len), (Some(7), Some(9), 16));
        assert_eq!(h.inner(rest).unwrap(), Inner::EtherType(0x86DD, b"v6"));
        // Transparent Ethernet bridging.
        let p = cat(&[&[0x20, 0x00, 0x65, 0x58, 0, 0, 0x01, 0x00], ETH]);
        let (h, rest) = GreHeader::parse(&p).unwrap();
        assert_eq!(h.inner(rest).unwrap(), Inner::Ethernet(ETH));
    }

    #[test]
    fn gre_truncated_unsupported_and_bad() {
        assert_eq!(
            GreHeader::parse(&[0x00, 0x00, 0x08]),
            Err(TunnelError::Truncated {
                encap: Encap::Gre,
                need: 4,
                have: 3
            })
        );
        // K and S announced, only the key there.
        assert_eq!(
            GreHeader::parse(&[0x30, 0x00, 0x08, 0x00, 0, 0, 0, 1]),
            Err(TunnelError::Truncated {
                encap: Encap::Gre,
                need: 12,
                have: 8
            })
        );
        // PPTP (version 1, K and A bits, PPP) and RFC 1701 routing are not decoded.
        assert!(matches!(
            GreHeader::parse(&[0x30, 0x81, 0x88, 0x0B, 0, 4, 0, 1, 0, 0, 0, 1]),
            Err(TunnelError::Unsupported { .. })
        ));
        assert!(matches!(
            GreHeader::parse(&[0x40, 0x00, 0x08, 0x00, 0, 0, 0, 0]),
            Err(TunnelError::Unsupported { .. })
        ));
        assert!(matches!(
            GreHeader::parse(&[0x00, 0x02, 0x08, 0x00]),
            Err(TunnelError::BadField {
                name: "version",
                ..
            })
        ));
    }

    #[test]
    fn erspan_types_one_two_and_three() {
        // Type I: GRE without a sequence number, the frame right after it.
        let p = cat(&[&[0x00, 0x00, 0x88, 0xBE], ETH]);
        let (h, rest) = GreHeader::parse(&p).unwrap();
        assert!(h.is_erspan());
        assert_eq!(h.inner(rest).unwrap(), Inner::Ethernet(ETH));
        // Type II, as scapy's ERSPAN test builds it (GRE()/ERSPAN_II()/Ether(...)).
        let p = cat(&[
            &[0x10, 0x00, 0x88, 0xBE, 0, 0, 0, 0],
            &[0x10, 0, 0, 0, 0, 0, 0, 0],
            ETH,
        ]);
        let (h, rest) = GreHeader::parse(&p).unwrap();
        assert_eq!(h.inner(rest).unwrap(), Inner::Ethernet(ETH));
        // Type III, Ethernet, without and with the platform-specific subheader.
        let e3 = [0x20, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x00, 0x00];
        let p = cat(&[&[0x10, 0x00, 0x22, 0xEB, 0, 0, 0, 1], &e3, ETH]);
        let (h, rest) = GreHeader::parse(&p).unwrap();
        assert!(h.is_erspan());
        assert_eq!(h.inner(rest).unwrap(), Inner::Ethernet(ETH));
        let mut with_o = e3;
        with_o[11] = 0x01;
        let p = cat(&[&with_o, &[0xAA; 8], ETH]);
        assert_eq!(erspan3(&p).unwrap(), Inner::Ethernet(ETH));
        // Frame type 2: IP.
        let mut ip = e3;
        ip[10] = 2 << 2;
        let p = cat(&[&ip, &[0x45, 0]]);
        assert_eq!(erspan3(&p).unwrap(), Inner::Ip(&[0x45, 0]));
    }

    #[test]
    fn erspan_truncated_and_unknown() {
        assert!(matches!(
            erspan2(&[0x10, 0, 0, 0]),
            Err(TunnelError::Truncated {
                need: 8,
                have: 4,
                ..
            })
        ));
        assert!(matches!(
            erspan2(&[0x20, 0, 0, 0, 0, 0, 0, 0]),
            Err(TunnelError::Unsupported { .. })
        ));
        let mut with_o = [0x20, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x01];
        assert!(matches!(
            erspan3(&cat(&[&with_o, &[0; 7]])),
            Err(TunnelError::Truncated {
                need: 20,
                have: 19,
                ..
            })
        ));
        with_o[10] = 3 << 2;
        with_o[11] = 0;
        assert!(matches!(
            erspan3(&with_o),
            Err(TunnelError::Unsupported {
                what: "frame type",
                ..
            })
        ));
        assert!(matches!(
            erspan3(&[0x20; 11]),
            Err(TunnelError::Truncated { need: 12, .. })
        ));
    }

    #[test]
    fn vxlan_header() {
        // RFC 7348 5: flags 0x08, VNI 0x123456.
        let p = cat(&[&[0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0], ETH]);
        assert_eq!(vxlan(&p).unwrap(), Inner::Ethernet(ETH));
        // Reserved flag bits are ignored; the I bit is required.
        let p = cat(&[&[0xFF, 0, 0, 0, 0, 0, 1, 0], ETH]);
        assert_eq!(vxlan(&p).unwrap(), Inner::Ethernet(ETH));
        assert!(matches!(
            vxlan(&[0x00, 0, 0, 0, 0, 0, 1, 0]),
            Err(TunnelError::BadField { .. })
        ));
        assert!(matches!(
            vxlan(&[0x08, 0, 0, 0, 0, 0, 1]),
            Err(TunnelError::Truncated {
                need: 8,
                have: 7,
                ..
            })
        ));
    }

    #[test]
    fn geneve_header_and_options() {
        let p = cat(&[&[0x00, 0x00, 0x65, 0x58, 0, 0, 0x0A, 0], ETH]);
        assert_eq!(geneve(&p).unwrap(), Inner::Ethernet(ETH));
        // Two words of options (one TLV: class, type, length 1), then IPv4 by its EtherType.
        let p = cat(&[
            &[0x02, 0x00, 0x08, 0x00, 0, 0, 0x0A, 0],
            &[0x01, 0x02, 0x03, 0x01, 0xDE, 0xAD, 0xBE, 0xEF],
            &[0x45],
        ]);
        assert_eq!(geneve(&p).unwrap(), Inner::EtherType(0x0800, &[0x45]));
        // The O (control) bit does not change the layout.
        let p = cat(&[&[0x00, 0x80, 0x65, 0x58, 0, 0, 0x0A, 0], ETH]);
        assert_eq!(geneve(&p).unwrap(), Inner::Ethernet(ETH));
        // Options longer than the packet; the largest length (63 words) on a short packet.
        assert!(matches!(
            geneve(&[0x02, 0x00, 0x65, 0x58, 0, 0, 0x0A, 0, 1, 2, 3, 4]),
            Err(TunnelError::Truncated {
                need: 16,
                have: 12,
                ..
            })
        ));
        assert!(matches!(
            geneve(&[0x3F, 0, 0x65, 0x58, 0, 0, 0, 0]),
            Err(TunnelError::Truncated { need: 260, .. })
        ));
        assert!(matches!(
            geneve(&[0x00, 0x00]),
            Err(TunnelError::Truncated { .. })
        ));
        assert!(matches!(
            geneve(&[0x40, 0x00, 0x65, 0x58, 0, 0, 0, 0]),
            Err(TunnelError::Unsupported {
                what: "version",
                ..
            })
        ));
    }

    #[test]
    fn errors_read_as_sentences() {
        let e = GreHeader::parse(&[0x10, 0, 0x08, 0]).unwrap_err();
        assert_eq!(e.to_string(), "GRE header needs 8 bytes, 4 there");
        let e = vxlan(&[0; 8]).unwrap_err();
        assert_eq!(e.to_string(), "VXLAN bad flags (I bit clear)");
    }
}
