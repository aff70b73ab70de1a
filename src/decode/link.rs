//! Frames to TCP segments and UDP datagrams: link layers, encapsulations, IP (etherparse's lax
//! slices, which accept snaplen-truncated packets), fragment reassembly, and the fixed TCP/UDP
//! headers (RFC 9293 3.1, RFC 768).
//!
//! Link and encapsulation headers are fixed layouts read here with bounds-checked `get`; IP is
//! left to etherparse (`LaxIpSlice`) because of IPv4 options, IPv6 extension header chains and
//! length fallbacks. Pure: no I/O, no clock; time is the frame's timestamp.

use super::defrag::{DefragPool, DefragResult, FragKey};
use super::{DecodeStats, DefragLimits, TcpFlags, TcpSegment, Transport, UdpDatagram};
use crate::source::Frame;
use crate::time::Ts;
use etherparse::{IpNumber, Ipv6ExtensionsSlice, LaxIpSlice, LenSource};
use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};

/// Nested encapsulations followed (IP-in-IP, GRE, PKTAP, VLAN/MPLS stacks count separately):
/// real traffic nests one or two deep; a bound stops hostile recursion.
const MAX_ENCAP_DEPTH: u8 = 4;
/// VLAN tags, MPLS labels or SNAP headers followed in one Ethernet payload.
const MAX_ETHER_LAYERS: usize = 8;
/// IPv6 extension headers walked before a Fragment header (RFC 8200 4.1 order has at most 3).
const MAX_IPV6_EXTS: usize = 8;

/// IEEE 802 EtherTypes.
mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const IPV6: u16 = 0x86DD;
    pub const VLAN: u16 = 0x8100;
    pub const QINQ: u16 = 0x88A8;
    /// Pre-standard QinQ tags still seen on some switches.
    pub const QINQ_OLD: u16 = 0x9100;
    pub const QINQ_OLD2: u16 = 0x9200;
    pub const MPLS: u16 = 0x8847;
    pub const MPLS_MULTICAST: u16 = 0x8848;
    pub const PPPOE_SESSION: u16 = 0x8864;
    /// Transparent Ethernet bridging (Ethernet inside GRE).
    pub const TEB: u16 = 0x6558;
    /// Values up to 1500 are an IEEE 802.3 length, not a type.
    pub const MAX_8023_LEN: u16 = 1500;
}

/// IP protocol numbers (IANA).
mod proto {
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const IPIP: u8 = 4;
    pub const IPV6: u8 = 41;
    pub const GRE: u8 = 47;
}

/// Where the link layer led.
enum Net<'a> {
    /// An IPv4 or IPv6 packet (the version nibble decides).
    Ip(&'a [u8]),
    /// Decoded, but not IP (ARP, LLDP, ...).
    NotIp,
    /// A header too short or inconsistent.
    Bad,
    /// A link type not decoded here.
    Unsupported,
}

/// Where the IP layer led.
enum Outcome<'a> {
    Transport(Transport<'a>),
    Other,
    Bad,
    /// A fragment kept for reassembly (or one that cannot be used).
    Pending,
}

pub struct Decoder {
    stats: DecodeStats,
    pool: DefragPool,
    ipv6_fragments: u64,
    ipv6_reassembled: u64,
}

impl Decoder {
    pub fn new(limits: DefragLimits) -> Decoder {
        Decoder {
            stats: DecodeStats::default(),
            pool: DefragPool::new(limits),
            ipv6_fragments: 0,
            ipv6_reassembled: 0,
        }
    }

    /// Decodes one frame down to TCP or UDP. `None` when the frame carries neither or cannot be
    /// decoded (counted in `stats`), or is a fragment still waiting for the rest of its set.
    pub fn decode<'a>(&mut self, frame: &'a Frame) -> Option<Transport<'a>> {
        if !self.pool.is_empty() {
            self.pool.expire(frame.ts);
        }
        // Bytes the snaplen cut off: the length of a packet whose headers do not say it.
        let missing = (frame.orig_len as usize).saturating_sub(frame.data.len());
        let outcome = match link_to_net(frame.link.0, &frame.data, 0) {
            Net::Unsupported => {
                *self.stats.unsupported_link.entry(frame.link.0).or_insert(0) += 1;
                return None;
            }
            Net::NotIp => Outcome::Other,
            Net::Bad => Outcome::Bad,
            Net::Ip(ip) => self.decode_ip(frame.ts, ip, missing, 0),
        };
        self.stats.fragments_dropped = self.pool.dropped;
        match outcome {
            Outcome::Transport(t) => Some(t),
            Outcome::Other => {
                self.stats.other_protocol += 1;
                None
            }
            Outcome::Bad => {
                self.stats.undecodable += 1;
                None
            }
            Outcome::Pending => None,
        }
    }

    pub fn stats(&self) -> &DecodeStats {
        &self.stats
    }

    /// IPv6 fragments seen (`DecodeStats` counts IPv4 ones; drops of both are in
    /// `fragments_dropped`).
    pub fn ipv6_fragments(&self) -> u64 {
        self.ipv6_fragments
    }

    /// IPv6 datagrams reassembled from fragments.
    pub fn ipv6_reassembled(&self) -> u64 {
        self.ipv6_reassembled
    }

    fn decode_ip<'a>(&mut self, ts: Ts, ip: &'a [u8], missing: usize, depth: u8) -> Outcome<'a> {
        let Ok((slice, stop)) = LaxIpSlice::from_slice(ip) else {
            return Outcome::Bad;
        };
        if stop.is_some() {
            // An extension header (IPv6) or authentication header cut short or malformed.
            return Outcome::Bad;
        }
        match slice {
            LaxIpSlice::Ipv4(v4) => {
                let header = v4.header();
                let src = IpAddr::V4(header.source_addr());
                let dst = IpAddr::V4(header.destination_addr());
                let payload = v4.payload();
                if payload.fragmented {
                    self.stats.ipv4_fragments += 1;
                    if payload.incomplete {
                        // Cut by the snaplen: its bytes cannot complete a datagram; the set
                        // will time out and be counted.
                        return Outcome::Pending;
                    }
                    let key = FragKey {
                        src,
                        dst,
                        id: u32::from(header.identification()),
                        proto: header.protocol().0,
                    };
                    let offset = usize::from(header.fragments_offset().byte_offset());
                    let more = header.more_fragments();
                    return match self.pool.insert(key, ts, offset, more, payload.payload) {
                        DefragResult::Complete(data) => {
                            self.stats.ipv4_reassembled += 1;
                            owned_transport(src, dst, payload.ip_number.0, data)
                        }
                        DefragResult::Pending | DefragResult::Dropped => Outcome::Pending,
                    };
                }
                let announced = match (payload.len_source, payload.incomplete) {
                    (LenSource::Ipv4HeaderTotalLen, _) => payload.payload.len(),
                    (_, true) => {
                        let auth = v4.extensions().auth.map_or(0, |a| a.slice().len());
                        usize::from(header.total_len())
                            .saturating_sub(header.slice().len())
                            .saturating_sub(auth)
                    }
                    // total_len below the header size: 0 from TSO/BIG TCP captures.
                    _ => payload.payload.len().saturating_add(missing),
                };
                self.transport(
                    ts,
                    src,
                    dst,
                    payload.ip_number.0,
                    payload.payload,
                    announced,
                    missing,
                    depth,
                )
            }
            LaxIpSlice::Ipv6(v6) => {
                let header = v6.header();
                let src = IpAddr::V6(header.source_addr());
                let dst = IpAddr::V6(header.destination_addr());
                let payload = v6.payload();
                if payload.fragmented {
                    self.ipv6_fragments += 1;
                    if payload.incomplete {
                        return Outcome::Pending;
                    }
                    let end = 40usize.saturating_add(usize::from(header.payload_length()));
                    let Some(frag) =
                        ipv6_fragment(ip.get(..end).unwrap_or(ip), header.next_header().0)
                    else {
                        return Outcome::Bad;
                    };
                    // RFC 8200 4.5 keys on (source, destination, identification); the next
                    // header is included too since it is the same in every fragment in practice
                    // and tells what the reassembled payload starts with.
                    let key = FragKey {
                        src,
                        dst,
                        id: frag.id,
                        proto: frag.next_header,
                    };
                    return match self.pool.insert(key, ts, frag.offset, frag.more, frag.data) {
                        DefragResult::Complete(mut data) => {
                            self.ipv6_reassembled += 1;
                            // The fragmentable part may start with more extension headers.
                            let (_, next, rest, err) = Ipv6ExtensionsSlice::from_slice_lax(
                                IpNumber(frag.next_header),
                                &data,
                            );
                            if err.is_some() {
                                return Outcome::Bad;
                            }
                            let skip = data.len() - rest.len();
                            let next = next.0;
                            data.drain(..skip);
                            owned_transport(src, dst, next, data)
                        }
                        DefragResult::Pending | DefragResult::Dropped => Outcome::Pending,
                    };
                }
                let announced = match (payload.len_source, payload.incomplete) {
                    (LenSource::Ipv6HeaderPayloadLen, _) => payload.payload.len(),
                    (_, true) => usize::from(header.payload_length())
                        .saturating_sub(v6.extensions().slice().len()),
                    // Payload length 0: a jumbogram (RFC 2675) or a TSO capture.
                    _ => payload.payload.len().saturating_add(missing),
                };
                self.transport(
                    ts,
                    src,
                    dst,
                    payload.ip_number.0,
                    payload.payload,
                    announced,
                    missing,
                    depth,
                )
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn transport<'a>(
        &mut self,
        ts: Ts,
        src: IpAddr,
        dst: IpAddr,
        protocol: u8,
        payload: &'a [u8],
        announced: usize,
        missing: usize,
        depth: u8,
    ) -> Outcome<'a> {
        match protocol {
            proto::TCP | proto::UDP => match parse_l4(protocol, payload, announced) {
                Some(l4) => {
                    let bytes = payload.get(l4.start..l4.end).unwrap_or(&[]);
                    Outcome::Transport(l4.into_transport(src, dst, Cow::Borrowed(bytes)))
                }
                None => Outcome::Bad,
            },
            // RFC 2003 IPv4-in-IPv4, RFC 4213 IPv6-in-IPv4 (and the IPv6 equivalents).
            proto::IPIP | proto::IPV6 if depth < MAX_ENCAP_DEPTH => {
                self.decode_ip(ts, payload, missing, depth + 1)
            }
            proto::GRE if depth < MAX_ENCAP_DEPTH => match gre(payload) {
                Net::Ip(ip) => self.decode_ip(ts, ip, missing, depth + 1),
                Net::Bad => Outcome::Bad,
                Net::NotIp | Net::Unsupported => Outcome::Other,
            },
            _ => Outcome::Other,
        }
    }
}

/// A reassembled datagram's transport; its payload is owned.
fn owned_transport(src: IpAddr, dst: IpAddr, protocol: u8, mut data: Vec<u8>) -> Outcome<'static> {
    if protocol != proto::TCP && protocol != proto::UDP {
        return Outcome::Other;
    }
    let len = data.len();
    match parse_l4(protocol, &data, len) {
        Some(l4) => {
            data.truncate(l4.end);
            data.drain(..l4.start.min(data.len()));
            Outcome::Transport(l4.into_transport(src, dst, Cow::Owned(data)))
        }
        None => Outcome::Bad,
    }
}

fn be16(data: &[u8], at: usize) -> Option<u16> {
    let b = data.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

fn be32(data: &[u8], at: usize) -> Option<u32> {
    let b = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn le32(data: &[u8], at: usize) -> Option<u32> {
    let b = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Link layer to network layer, by LINKTYPE_ value (tcpdump.org/linktypes.html).
fn link_to_net(link: u16, data: &[u8], depth: u8) -> Net<'_> {
    match link {
        1 => ethernet(data),
        // LINKTYPE_NULL: 4-byte address family in the capturing host's byte order. A value
        // with high bits set was written by a host of the other byte order.
        0 => match le32(data, 0) {
            Some(le) => {
                let family = if le & 0xFFFF_0000 != 0 {
                    le.swap_bytes()
                } else {
                    le
                };
                loopback_family(family, data.get(4..).unwrap_or(&[]))
            }
            None => Net::Bad,
        },
        // LINKTYPE_LOOP (OpenBSD): the same family, network byte order.
        108 => match be32(data, 0) {
            Some(family) => loopback_family(family, data.get(4..).unwrap_or(&[])),
            None => Net::Bad,
        },
        // LINKTYPE_RAW, and DLT_RAW as numbered on some BSDs (12, 14).
        101 | 12 | 14 => Net::Ip(data),
        228 => ip_of_version(data, 4),
        229 => ip_of_version(data, 6),
        113 => linux_sll(data),
        276 => linux_sll2(data),
        239 => nflog(data),
        258 => pktap(data, depth),
        _ => Net::Unsupported,
    }
}

fn ip_of_version(data: &[u8], version: u8) -> Net<'_> {
    match data.first() {
        Some(b) if b >> 4 == version => Net::Ip(data),
        _ => Net::Bad,
    }
}

/// BSD address families in loopback headers: AF_INET is 2 everywhere; AF_INET6 is 24
/// (NetBSD, OpenBSD, BSD/OS), 28 (FreeBSD, DragonFly), 30 (Darwin), 10 (Linux), 23 (Windows).
fn loopback_family(family: u32, payload: &[u8]) -> Net<'_> {
    match family {
        2 | 10 | 23 | 24 | 28 | 30 => Net::Ip(payload),
        _ => Net::NotIp,
    }
}

/// Ethernet II: destination (6), source (6), EtherType (2). The FCS, if captured, and padding
/// are excluded later by the IP length.
fn ethernet(data: &[u8]) -> Net<'_> {
    match (be16(data, 12), data.get(14..)) {
        (Some(et), Some(payload)) => ether_payload(et, payload),
        _ => Net::Bad,
    }
}

/// Follows VLAN tags (802.1Q, 802.1ad, old QinQ), MPLS labels (RFC 3032), PPPoE sessions
/// (RFC 2516) and 802.2 SNAP headers down to IP.
fn ether_payload(mut et: u16, mut data: &[u8]) -> Net<'_> {
    for _ in 0..MAX_ETHER_LAYERS {
        match et {
            ethertype::IPV4 | ethertype::IPV6 => return Net::Ip(data),
            ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_OLD | ethertype::QINQ_OLD2 => {
                // Tag control information (2), then the inner EtherType (2).
                match (be16(data, 2), data.get(4..)) {
                    (Some(next), Some(rest)) => {
                        et = next;
                        data = rest;
                    }
                    _ => return Net::Bad,
                }
            }
            ethertype::MPLS | ethertype::MPLS_MULTICAST => {
                // 4-byte label stack entries until the bottom-of-stack bit.
                let mut rest = data;
                let mut bottom = false;
                for _ in 0..MAX_ETHER_LAYERS {
                    let Some(entry) = rest.get(..4) else {
                        return Net::Bad;
                    };
                    bottom = entry[2] & 1 == 1;
                    rest = rest.get(4..).unwrap_or(&[]);
                    if bottom {
                        break;
                    }
                }
                if !bottom {
                    return Net::Bad;
                }
                // No type field after MPLS: RFC 4928 says guess IP by the first nibble.
                return match rest.first().map(|b| b >> 4) {
                    Some(4) | Some(6) => Net::Ip(rest),
                    _ => Net::NotIp,
                };
            }
            ethertype::PPPOE_SESSION => {
                // version/type (1), code (1), session id (2), length (2), PPP protocol (2).
                return match (be16(data, 6), data.get(8..)) {
                    // RFC 1332 IPv4 0x0021, RFC 5072 IPv6 0x0057.
                    (Some(0x0021), Some(ip)) | (Some(0x0057), Some(ip)) => Net::Ip(ip),
                    (Some(_), Some(_)) => Net::NotIp,
                    _ => Net::Bad,
                };
            }
            len if len <= ethertype::MAX_8023_LEN => {
                // 802.3 length: 802.2 LLC; only SNAP (AA AA 03, OUI, EtherType) carries IP.
                match (data.get(..3), be16(data, 6), data.get(8..)) {
                    (Some([0xAA, 0xAA, 0x03]), Some(next), Some(rest)) => {
                        et = next;
                        data = rest;
                    }
                    _ => return Net::NotIp,
                }
            }
            _ => return Net::NotIp,
        }
    }
    Net::Bad
}

/// Linux cooked capture v1 (LINKTYPE_LINUX_SLL): packet type (2), ARPHRD type (2), address
/// length (2), address (8), protocol (2).
fn linux_sll(data: &[u8]) -> Net<'_> {
    match (be16(data, 2), be16(data, 14), data.get(16..)) {
        (Some(hatype), Some(protocol), Some(payload)) => sll_protocol(hatype, protocol, payload),
        _ => Net::Bad,
    }
}

/// Linux cooked capture v2 (LINKTYPE_LINUX_SLL2): protocol (2), reserved (2), interface index
/// (4), ARPHRD type (2), packet type (1), address length (1), address (8).
fn linux_sll2(data: &[u8]) -> Net<'_> {
    match (be16(data, 0), be16(data, 8), data.get(20..)) {
        (Some(protocol), Some(hatype), Some(payload)) => sll_protocol(hatype, protocol, payload),
        _ => Net::Bad,
    }
}

fn sll_protocol(hatype: u16, protocol: u16, payload: &[u8]) -> Net<'_> {
    // ARPHRD_NETLINK (824) carries netlink messages, whose protocol field is not an EtherType.
    if hatype == 824 {
        return Net::NotIp;
    }
    match protocol {
        // Values below 0x0600 are Linux packet types (ETH_P_802_2 = 4, ...), not EtherTypes;
        // 802.2 frames can still hold SNAP.
        0x0004 => ether_payload(0, payload),
        p if p <= ethertype::MAX_8023_LEN => Net::NotIp,
        p => ether_payload(p, payload),
    }
}

/// LINKTYPE_NFLOG: family (1), version (1), resource id (2), then TLVs of length (2) and type
/// (2) in the capturing host's byte order, each padded to 4 bytes. NFULA_PAYLOAD (9) holds the
/// IP packet.
fn nflog(data: &[u8]) -> Net<'_> {
    let mut pos = 4usize;
    if data.len() < pos {
        return Net::Bad;
    }
    while pos < data.len() {
        let (Some(h), Some(rest)) = (data.get(pos..pos + 4), data.get(pos..)) else {
            return Net::Bad;
        };
        let le = (
            u16::from_le_bytes([h[0], h[1]]),
            u16::from_le_bytes([h[2], h[3]]),
        );
        let be = (
            u16::from_be_bytes([h[0], h[1]]),
            u16::from_be_bytes([h[2], h[3]]),
        );
        let fits = |len: u16| len >= 4 && usize::from(len) <= rest.len();
        let (len, ty) = if fits(le.0) { le } else { be };
        if !fits(len) {
            return Net::Bad;
        }
        let len = usize::from(len);
        // The top two bits are netlink flags (NLA_F_NESTED, NLA_F_NET_BYTEORDER).
        if ty & 0x3FFF == 9 {
            return rest.get(4..len).map_or(Net::Bad, Net::Ip);
        }
        pos = pos.saturating_add((len + 3) & !3);
    }
    Net::NotIp
}

/// LINKTYPE_PKTAP (Apple): header length (4), next type (4), inner DLT (4), ... in host
/// (little-endian) order, then the frame with the inner link type.
fn pktap(data: &[u8], depth: u8) -> Net<'_> {
    let (Some(header_len), Some(dlt)) = (le32(data, 0), le32(data, 8)) else {
        return Net::Bad;
    };
    let Some(inner) = data.get(header_len as usize..) else {
        return Net::Bad;
    };
    if header_len < 12 || depth >= MAX_ENCAP_DEPTH || dlt == 258 {
        return Net::Bad;
    }
    // pth_dlt holds a DLT_ value; those that differ from LINKTYPE_ (raw IP) map here.
    let link = match dlt {
        12 | 14 => 101,
        d => u16::try_from(d).unwrap_or(u16::MAX),
    };
    match link_to_net(link, inner, depth + 1) {
        Net::Unsupported => Net::NotIp,
        net => net,
    }
}

/// GRE (RFC 2784, RFC 2890 key and sequence): flags and version (2), protocol (2), then the
/// optional checksum+reserved, key and sequence words.
fn gre(data: &[u8]) -> Net<'_> {
    let (Some(flags), Some(protocol)) = (be16(data, 0), be16(data, 2)) else {
        return Net::Bad;
    };
    if flags & 0x0007 != 0 {
        // Version 1 is PPTP's enhanced GRE, carrying PPP.
        return Net::NotIp;
    }
    let words = [0x8000u16, 0x2000, 0x1000]
        .iter()
        .filter(|bit| flags & **bit != 0)
        .count();
    let Some(payload) = data.get(4 + 4 * words..) else {
        return Net::Bad;
    };
    match protocol {
        ethertype::TEB => ethernet(payload),
        p => ether_payload(p, payload),
    }
}

struct Ipv6Fragment<'a> {
    id: u32,
    offset: usize,
    more: bool,
    next_header: u8,
    data: &'a [u8],
}

/// Walks the IPv6 extension headers of `ip` (a whole IPv6 packet, cut to its payload length)
/// to the Fragment header (RFC 8200 4.5): the fragment's data is everything after it.
fn ipv6_fragment(ip: &[u8], first: u8) -> Option<Ipv6Fragment<'_>> {
    let mut next = first;
    let mut pos = 40usize;
    for _ in 0..MAX_IPV6_EXTS {
        match next {
            // Hop-by-hop, routing, destination options, mobility, HIP, shim6: length in 8-byte
            // units not counting the first 8 (RFC 8200 4.3-4.6).
            0 | 43 | 60 | 135 | 139 | 140 => {
                next = *ip.get(pos)?;
                let len = (usize::from(*ip.get(pos + 1)?) + 1) * 8;
                pos = pos.checked_add(len)?;
            }
            // Authentication header: length in 4-byte units minus 2 (RFC 4302 2.2).
            51 => {
                next = *ip.get(pos)?;
                let len = (usize::from(*ip.get(pos + 1)?) + 2) * 4;
                pos = pos.checked_add(len)?;
            }
            44 => {
                let next_header = *ip.get(pos)?;
                let offset_flags = be16(ip, pos + 2)?;
                let id = be32(ip, pos + 4)?;
                return Some(Ipv6Fragment {
                    id,
                    offset: usize::from(offset_flags >> 3) * 8,
                    more: offset_flags & 1 == 1,
                    next_header,
                    data: ip.get(pos + 8..)?,
                });
            }
            _ => return None,
        }
    }
    None
}

/// A parsed TCP or UDP header and where its payload lies in the IP payload.
struct L4 {
    src_port: u16,
    dst_port: u16,
    tcp: Option<(u32, u32, TcpFlags)>,
    start: usize,
    end: usize,
    wire_len: u32,
    truncated: bool,
}

impl L4 {
    fn into_transport<'a>(self, src: IpAddr, dst: IpAddr, payload: Cow<'a, [u8]>) -> Transport<'a> {
        let src = SocketAddr::new(src, self.src_port);
        let dst = SocketAddr::new(dst, self.dst_port);
        match self.tcp {
            Some((seq, ack, flags)) => Transport::Tcp(TcpSegment {
                src,
                dst,
                seq,
                ack,
                flags,
                payload,
                wire_len: self.wire_len,
                truncated: self.truncated,
            }),
            None => Transport::Udp(UdpDatagram {
                src,
                dst,
                payload,
                truncated: self.truncated,
            }),
        }
    }
}

/// Parses the TCP (RFC 9293 3.1) or UDP (RFC 768) header at the start of an IP payload of
/// which `announced` bytes were on the wire (`payload` may be shorter: snaplen).
fn parse_l4(protocol: u8, payload: &[u8], announced: usize) -> Option<L4> {
    let src_port = be16(payload, 0)?;
    let dst_port = be16(payload, 2)?;
    let announced = announced.max(payload.len());
    if protocol == proto::TCP {
        let seq = be32(payload, 4)?;
        let ack = be32(payload, 8)?;
        let header_len = usize::from(payload.get(12)? >> 4) * 4;
        let bits = *payload.get(13)?;
        if header_len < 20 {
            return None;
        }
        let flags = TcpFlags {
            fin: bits & 0x01 != 0,
            syn: bits & 0x02 != 0,
            rst: bits & 0x04 != 0,
            psh: bits & 0x08 != 0,
            ack: bits & 0x10 != 0,
        };
        let wire = announced.checked_sub(header_len)?;
        let start = if payload.len() >= header_len {
            header_len
        } else if announced > payload.len() {
            // Options cut by the snaplen: the segment is known, its payload is not.
            payload.len()
        } else {
            return None;
        };
        let end = payload.len();
        Some(L4 {
            src_port,
            dst_port,
            tcp: Some((seq, ack, flags)),
            start,
            end,
            wire_len: u32::try_from(wire).unwrap_or(u32::MAX),
            truncated: end - start < wire,
        })
    } else {
        let udp_len = usize::from(be16(payload, 4)?);
        if payload.len() < 8 {
            return None;
        }
        // A length of 0 (RFC 2675 jumbogram) or one below the header says nothing.
        let wire = if udp_len >= 8 {
            udp_len - 8
        } else {
            announced - 8
        };
        let end = 8 + wire.min(payload.len() - 8);
        Some(L4 {
            src_port,
            dst_port,
            tcp: None,
            start: 8,
            end,
            wire_len: u32::try_from(wire).unwrap_or(u32::MAX),
            truncated: end - 8 < wire,
        })
    }
}
