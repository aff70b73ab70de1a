//! Frames to TCP segments and UDP datagrams: link layers, encapsulations, IP (etherparse's lax
//! slices, which accept snaplen-truncated packets), fragment reassembly, and the fixed TCP/UDP
//! headers (RFC 9293 3.1, RFC 768).
//!
//! Link and encapsulation headers are fixed layouts read here with bounds-checked `get`; tunnel
//! headers (GRE, VXLAN, Geneve, ERSPAN) are parsed in `tunnel.rs`, and unwrapped here, where the
//! IP protocol or the UDP destination port names them. IP is left to etherparse (`LaxIpSlice`)
//! because of IPv4 options, IPv6 extension header chains and length fallbacks. Pure: no I/O, no
//! clock; time is the frame's timestamp.

use super::defrag::{DefragPool, DefragResult, FragKey};
use super::tunnel::{self, GreHeader, Inner, TunnelError};
use super::{
    DecodeStats, DefragLimits, TcpFlags, TcpSegment, Transport, UdpDatagram, MAX_ENCAP_DEPTH,
};
use crate::source::Frame;
use crate::time::Ts;
use crate::wire::{be16, be32, le16, le32};
use etherparse::{IpNumber, Ipv6ExtensionsSlice, LaxIpSlice, LenSource};
use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};

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
                    if l4.tcp.is_none() {
                        if let Some(inner) = self.udp_tunnel(ts, l4.dst_port, bytes, missing, depth)
                        {
                            return inner;
                        }
                    }
                    Outcome::Transport(l4.into_transport(src, dst, Cow::Borrowed(bytes)))
                }
                None => Outcome::Bad,
            },
            // Past the nesting bound nothing is left to decode: a frame built to recurse.
            proto::IPIP | proto::IPV6 | proto::GRE if depth >= MAX_ENCAP_DEPTH => {
                self.stats.tunnels.too_deep += 1;
                Outcome::Bad
            }
            // RFC 2003 IPv4-in-IPv4, RFC 4213 IPv6-in-IPv4 (and the IPv6 equivalents).
            proto::IPIP | proto::IPV6 => {
                self.stats.tunnels.ip_in_ip += 1;
                self.decode_ip(ts, payload, missing, depth + 1)
            }
            proto::GRE => match self.unwrap_gre(payload, false) {
                Ok(inner) => self.decode_inner(ts, inner, missing, depth),
                Err(e) => self.tunnel_failed(e),
            },
            _ => Outcome::Other,
        }
    }

    /// A UDP datagram to the port of an encapsulation (GRE in UDP, VXLAN, Geneve): the
    /// outcome of what it carries, or `None` to pass the datagram on as it is (another port,
    /// a header that does not parse, or the nesting limit; the last two are counted).
    fn udp_tunnel<'a>(
        &mut self,
        ts: Ts,
        dst_port: u16,
        data: &'a [u8],
        missing: usize,
        depth: u8,
    ) -> Option<Outcome<'a>> {
        if !matches!(
            dst_port,
            tunnel::udp_port::GRE_IN_UDP | tunnel::udp_port::VXLAN | tunnel::udp_port::GENEVE
        ) {
            return None;
        }
        if depth >= MAX_ENCAP_DEPTH {
            self.stats.tunnels.too_deep += 1;
            return None;
        }
        let unwrapped = match dst_port {
            tunnel::udp_port::GRE_IN_UDP => self.unwrap_gre(data, true),
            tunnel::udp_port::VXLAN => {
                tunnel::vxlan(data).inspect(|_| self.stats.tunnels.vxlan += 1)
            }
            _ => tunnel::geneve(data).inspect(|_| self.stats.tunnels.geneve += 1),
        };
        match unwrapped {
            Ok(inner) => Some(self.decode_inner(ts, inner, missing, depth)),
            Err(e) => {
                self.tunnel_failed(e);
                None
            }
        }
    }

    /// Removes a GRE header (and an ERSPAN one after it), counting each.
    fn unwrap_gre<'a>(&mut self, data: &'a [u8], in_udp: bool) -> Result<Inner<'a>, TunnelError> {
        let (header, payload) = GreHeader::parse(data)?;
        if in_udp {
            self.stats.tunnels.gre_in_udp += 1;
        } else {
            self.stats.tunnels.gre += 1;
        }
        let inner = header.inner(payload)?;
        if header.is_erspan() {
            self.stats.tunnels.erspan += 1;
        }
        Ok(inner)
    }

    /// Counts a tunnel header that could not be removed; the outcome when nothing else is left.
    fn tunnel_failed(&mut self, e: TunnelError) -> Outcome<'static> {
        match e {
            TunnelError::Truncated { .. } | TunnelError::BadField { .. } => {
                self.stats.tunnels.malformed += 1;
                Outcome::Bad
            }
            TunnelError::Unsupported { .. } => {
                self.stats.tunnels.unsupported += 1;
                Outcome::Other
            }
        }
    }

    /// Decodes what a tunnel at `depth` carries, one level deeper.
    fn decode_inner<'a>(
        &mut self,
        ts: Ts,
        inner: Inner<'a>,
        missing: usize,
        depth: u8,
    ) -> Outcome<'a> {
        let net = match inner {
            Inner::Ethernet(frame) => ethernet(frame),
            Inner::Ip(ip) => Net::Ip(ip),
            Inner::EtherType(et, payload) => ether_payload(et, payload),
        };
        match net {
            Net::Ip(ip) => self.decode_ip(ts, ip, missing, depth + 1),
            Net::Bad => Outcome::Bad,
            Net::NotIp | Net::Unsupported => Outcome::Other,
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
        104 => cisco_hdlc(data),
        226 => ipnet(data),
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
                    // Label (20 bits), traffic class (3), bottom of stack (1), TTL (8).
                    let (Some(exp_s), true) = (rest.get(2), rest.len() >= 4) else {
                        return Net::Bad;
                    };
                    bottom = exp_s & 1 == 1;
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
                // version/type (1), code (1), session id (2), length (2), then PPP.
                return ppp(data.get(6..).unwrap_or(&[]));
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

/// A PPP protocol field then its payload. The field is 1 byte when compressed (RFC 1661 6.5:
/// protocol numbers are odd in their low byte, even in their high byte).
fn ppp(data: &[u8]) -> Net<'_> {
    let (protocol, payload) = match data.first() {
        Some(b) if b & 1 == 1 => (u16::from(*b), data.get(1..)),
        Some(_) => match be16(data, 0) {
            Some(p) => (p, data.get(2..)),
            None => return Net::Bad,
        },
        None => return Net::Bad,
    };
    match (protocol, payload) {
        // RFC 1332 IPv4 0x0021, RFC 5072 IPv6 0x0057.
        (0x0021 | 0x0057, Some(ip)) => Net::Ip(ip),
        (_, Some(_)) => Net::NotIp,
        (_, None) => Net::Bad,
    }
}

/// Cisco HDLC (LINKTYPE_C_HDLC): address (1), control (1), EtherType (2).
fn cisco_hdlc(data: &[u8]) -> Net<'_> {
    match (be16(data, 2), data.get(4..)) {
        (Some(et), Some(payload)) if et > ethertype::MAX_8023_LEN => ether_payload(et, payload),
        (Some(_), Some(_)) => Net::NotIp,
        _ => Net::Bad,
    }
}

/// Solaris ipnet (LINKTYPE_IPNET): version (1), family (1: 2 IPv4, 26 IPv6), hardware type
/// (2), packet length (4), interface index (4), group interface index (4), source and
/// destination zone (4 + 4); 24 bytes in all.
fn ipnet(data: &[u8]) -> Net<'_> {
    match (data.get(1), data.get(24..)) {
        (Some(2 | 26), Some(ip)) => Net::Ip(ip),
        (Some(_), Some(_)) => Net::NotIp,
        _ => Net::Bad,
    }
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
        let (Some(le), Some(be), Some(rest)) = (
            le16(data, pos).zip(le16(data, pos + 2)),
            be16(data, pos).zip(be16(data, pos + 2)),
            data.get(pos..),
        ) else {
            return Net::Bad;
        };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::LinkType;
    use etherparse::{IpFragOffset, Ipv4Header, PacketBuilder, TcpHeader, VlanId};

    const CLIENT: [u8; 4] = [192, 168, 1, 10];
    const SERVER: [u8; 4] = [10, 0, 0, 80];
    const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];
    const BODY: &[u8] = b"GET /golang.org/x/mod/@v/list HTTP/1.1\r\n";

    fn frame(link: u16, data: Vec<u8>) -> Frame {
        let orig_len = data.len() as u32;
        Frame {
            ts: Ts(0),
            link: LinkType(link),
            data,
            orig_len,
            file: 0,
        }
    }

    fn at(ts_ns: i64, link: u16, data: Vec<u8>) -> Frame {
        Frame {
            ts: Ts(ts_ns),
            ..frame(link, data)
        }
    }

    fn decoder() -> Decoder {
        Decoder::new(DefragLimits::default())
    }

    /// Raw IPv4 + TCP (seq 1000, ack 2000, PSH|ACK) carrying `payload`.
    fn ipv4_tcp(payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ipv4(CLIENT, SERVER, 64)
            .tcp(51000, 80, 1000, 65535)
            .ack(2000)
            .psh();
        let mut out = Vec::new();
        b.write(&mut out, payload).unwrap();
        out
    }

    fn ipv6_tcp(payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ipv6(
            [0x20, 0x01, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
            64,
        )
        .tcp(51000, 443, 1000, 65535)
        .ack(2000)
        .psh();
        let mut out = Vec::new();
        b.write(&mut out, payload).unwrap();
        out
    }

    fn tcp(t: Option<Transport<'_>>) -> TcpSegment<'_> {
        match t {
            Some(Transport::Tcp(s)) => s,
            other => panic!("expected TCP, got {other:?}"),
        }
    }

    fn assert_v4_segment(s: &TcpSegment<'_>, payload: &[u8]) {
        assert_eq!(s.src, "192.168.1.10:51000".parse().unwrap());
        assert_eq!(s.dst, "10.0.0.80:80".parse().unwrap());
        assert_eq!((s.seq, s.ack), (1000, 2000));
        assert_eq!(
            s.flags,
            TcpFlags {
                ack: true,
                psh: true,
                ..TcpFlags::default()
            }
        );
        assert_eq!(&s.payload[..], payload);
        assert_eq!(s.wire_len as usize, payload.len());
        assert!(!s.truncated);
    }

    fn ethernet_frame(ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut out = MAC_B.to_vec();
        out.extend_from_slice(&MAC_A);
        out.extend_from_slice(&ethertype.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn ethernet_ipv4_tcp() {
        let mut out = Vec::new();
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv4(CLIENT, SERVER, 64)
            .tcp(51000, 80, 1000, 65535)
            .ack(2000)
            .psh()
            .write(&mut out, BODY)
            .unwrap();
        let f = frame(1, out);
        let mut d = decoder();
        assert_v4_segment(&tcp(d.decode(&f)), BODY);
        assert!(matches!(tcp(d.decode(&f)).payload, Cow::Borrowed(_)));
    }

    #[test]
    fn ethernet_padding_and_fcs_do_not_leak_into_payload() {
        // 2 bytes of TCP payload: the frame is padded to the 60-byte minimum, plus an FCS.
        let mut data = ethernet_frame(0x0800, &ipv4_tcp(b"hi"));
        data.resize(60, 0);
        data.extend_from_slice(&[0xDE, 0xAD, 0xBE, 0xEF]);
        let f = frame(1, data);
        assert_v4_segment(&tcp(decoder().decode(&f)), b"hi");
    }

    #[test]
    fn single_and_double_vlan() {
        let mut single = Vec::new();
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .single_vlan(VlanId::try_new(42).unwrap())
            .ipv4(CLIENT, SERVER, 64)
            .tcp(51000, 80, 1000, 65535)
            .ack(2000)
            .psh()
            .write(&mut single, BODY)
            .unwrap();
        let mut double = Vec::new();
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .double_vlan(VlanId::try_new(100).unwrap(), VlanId::try_new(200).unwrap())
            .ipv4(CLIENT, SERVER, 64)
            .tcp(51000, 80, 1000, 65535)
            .ack(2000)
            .psh()
            .write(&mut double, BODY)
            .unwrap();
        assert_eq!(&double[12..14], &[0x88, 0xA8]); // 802.1ad outer tag
        let mut d = decoder();
        for data in [single, double] {
            let f = frame(1, data);
            assert_v4_segment(&tcp(d.decode(&f)), BODY);
        }
    }

    #[test]
    fn linux_sll_v1_and_v2() {
        // SLL: packet type 0 (to us), ARPHRD_ETHER, address length 6, address, protocol.
        let mut sll = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x08, 0x00];
        sll.extend_from_slice(&ipv4_tcp(BODY));
        // SLL2: protocol, reserved, ifindex, ARPHRD_ETHER, packet type, address length, address.
        let mut sll2 = vec![
            0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 4, 6, 2, 0, 0, 0, 0, 1, 0, 0,
        ];
        sll2.extend_from_slice(&ipv4_tcp(BODY));
        let mut d = decoder();
        assert_v4_segment(&tcp(d.decode(&frame(113, sll))), BODY);
        assert_v4_segment(&tcp(d.decode(&frame(276, sll2))), BODY);
        // SLL2 carrying IPv6.
        let mut sll2v6 = vec![
            0x86, 0xDD, 0, 0, 0, 0, 0, 2, 0, 1, 4, 6, 2, 0, 0, 0, 0, 1, 0, 0,
        ];
        sll2v6.extend_from_slice(&ipv6_tcp(BODY));
        let f = frame(276, sll2v6);
        let s = tcp(d.decode(&f));
        assert_eq!(s.dst, "[fe80::2]:443".parse().unwrap());
        assert_eq!(&s.payload[..], BODY);
    }

    #[test]
    fn raw_ip_link_types() {
        let mut d = decoder();
        for link in [101, 12, 14, 228] {
            assert_v4_segment(&tcp(d.decode(&frame(link, ipv4_tcp(BODY)))), BODY);
        }
        for link in [101, 229] {
            let f = frame(link, ipv6_tcp(BODY));
            let s = tcp(d.decode(&f));
            assert_eq!(s.src, "[2001:db8::1]:51000".parse().unwrap());
            assert_eq!(&s.payload[..], BODY);
        }
        // LINKTYPE_IPV4 with an IPv6 packet inside is not decodable.
        assert!(d.decode(&frame(228, ipv6_tcp(BODY))).is_none());
        assert_eq!(d.stats().undecodable, 1);
    }

    #[test]
    fn bsd_null_and_openbsd_loop() {
        let mut d = decoder();
        // NULL: host byte order, either way round.
        for family in [2u32.to_le_bytes(), 2u32.to_be_bytes()] {
            let mut data = family.to_vec();
            data.extend_from_slice(&ipv4_tcp(BODY));
            assert_v4_segment(&tcp(d.decode(&frame(0, data))), BODY);
        }
        for v6 in [24u32, 28, 30] {
            let mut data = v6.to_le_bytes().to_vec();
            data.extend_from_slice(&ipv6_tcp(BODY));
            assert_eq!(&tcp(d.decode(&frame(0, data))).payload[..], BODY);
        }
        // LOOP: network byte order.
        let mut data = 24u32.to_be_bytes().to_vec();
        data.extend_from_slice(&ipv6_tcp(BODY));
        assert_eq!(&tcp(d.decode(&frame(108, data))).payload[..], BODY);
        let mut data = 2u32.to_be_bytes().to_vec();
        data.extend_from_slice(&ipv4_tcp(BODY));
        assert_v4_segment(&tcp(d.decode(&frame(108, data))), BODY);
        // An unknown family is not IP.
        let mut data = 7u32.to_le_bytes().to_vec();
        data.extend_from_slice(&ipv4_tcp(BODY));
        assert!(d.decode(&frame(0, data)).is_none());
        assert_eq!(d.stats().other_protocol, 1);
    }

    #[test]
    fn nflog_payload_tlv() {
        let ip = ipv4_tcp(BODY);
        let mut data = vec![2, 0, 0, 0]; // AF_INET, version 0, resource id 0
                                         // NFULA_PACKET_HDR (1), 8 bytes, little-endian host.
        data.extend_from_slice(&[8, 0, 1, 0, 0x08, 0x00, 3, 0]);
        // NFULA_PAYLOAD (9).
        let len = (ip.len() + 4) as u16;
        data.extend_from_slice(&len.to_le_bytes());
        data.extend_from_slice(&9u16.to_le_bytes());
        data.extend_from_slice(&ip);
        assert_v4_segment(&tcp(decoder().decode(&frame(239, data))), BODY);
    }

    #[test]
    fn mpls_pppoe_snap_gre_and_ip_in_ip() {
        let ip = ipv4_tcp(BODY);
        let mut d = decoder();
        // Two MPLS labels, the second bottom of stack.
        let mut mpls = vec![0, 1, 0x00, 64, 0, 2, 0x01, 64];
        mpls.extend_from_slice(&ip);
        assert_v4_segment(
            &tcp(d.decode(&frame(1, ethernet_frame(0x8847, &mpls)))),
            BODY,
        );
        // PPPoE session, PPP protocol IPv4.
        let mut pppoe = vec![0x11, 0, 0, 1, 0, 0, 0x00, 0x21];
        pppoe.extend_from_slice(&ip);
        assert_v4_segment(
            &tcp(d.decode(&frame(1, ethernet_frame(0x8864, &pppoe)))),
            BODY,
        );
        // PPPoE with a compressed (1-byte) PPP protocol field.
        let mut pfc = vec![0x11, 0, 0, 1, 0, 0, 0x21];
        pfc.extend_from_slice(&ip);
        assert_v4_segment(
            &tcp(d.decode(&frame(1, ethernet_frame(0x8864, &pfc)))),
            BODY,
        );
        // Cisco HDLC and Solaris ipnet.
        let mut chdlc = vec![0x0F, 0x00, 0x08, 0x00];
        chdlc.extend_from_slice(&ip);
        assert_v4_segment(&tcp(d.decode(&frame(104, chdlc))), BODY);
        let mut ipnet = vec![1, 2, 0, 0, 0, 0, 0, 0];
        ipnet.extend_from_slice(&[0; 16]);
        ipnet.extend_from_slice(&ip);
        assert_v4_segment(&tcp(d.decode(&frame(226, ipnet))), BODY);
        // 802.3 length + LLC SNAP.
        let mut snap = vec![0xAA, 0xAA, 0x03, 0, 0, 0, 0x08, 0x00];
        snap.extend_from_slice(&ip);
        assert_v4_segment(
            &tcp(d.decode(&frame(1, ethernet_frame(snap.len() as u16, &snap)))),
            BODY,
        );
        // GRE with a key, around IPv4.
        let mut gre = vec![0x20, 0x00, 0x08, 0x00, 0, 0, 0, 7];
        gre.extend_from_slice(&ip);
        let outer = {
            let mut h = Ipv4Header::new(
                gre.len() as u16,
                64,
                IpNumber(47),
                [1, 1, 1, 1],
                [2, 2, 2, 2],
            )
            .unwrap();
            h.header_checksum = h.calc_header_checksum();
            let mut v = h.to_bytes().to_vec();
            v.extend_from_slice(&gre);
            v
        };
        assert_v4_segment(&tcp(d.decode(&frame(101, outer))), BODY);
        // IPv4 in IPv4.
        let mut h =
            Ipv4Header::new(ip.len() as u16, 64, IpNumber(4), [1, 1, 1, 1], [2, 2, 2, 2]).unwrap();
        h.header_checksum = h.calc_header_checksum();
        let mut ipip = h.to_bytes().to_vec();
        ipip.extend_from_slice(&ip);
        assert_v4_segment(&tcp(d.decode(&frame(101, ipip))), BODY);
    }

    /// IPv6 header + hop-by-hop (8 bytes) + destination options (8 bytes) + TCP.
    fn ipv6_with_extension_headers(payload: &[u8]) -> Vec<u8> {
        let tcp_header = {
            let mut h = TcpHeader::new(40000, 80, 7, 1024);
            h.syn = false;
            h.ack = true;
            h.acknowledgment_number = 9;
            h.to_bytes().to_vec()
        };
        let payload_len = 8 + 8 + tcp_header.len() + payload.len();
        let mut p = vec![0x60, 0, 0, 0];
        p.extend_from_slice(&(payload_len as u16).to_be_bytes());
        p.push(0); // next header: hop-by-hop
        p.push(64);
        p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        // Hop-by-hop: next = destination options (60), length 0, PadN of 4.
        p.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]);
        // Destination options: next = TCP, length 0, PadN of 4.
        p.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]);
        p.extend_from_slice(&tcp_header);
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn ipv6_tcp_behind_hop_by_hop_and_destination_options() {
        let f = frame(229, ipv6_with_extension_headers(b"payload"));
        let s = tcp(decoder().decode(&f));
        assert_eq!(s.src, "[2001:db8::1]:40000".parse().unwrap());
        assert_eq!(s.dst, "[2001:db8::2]:80".parse().unwrap());
        assert_eq!((s.seq, s.ack, s.flags.ack), (7, 9, true));
        assert_eq!(&s.payload[..], b"payload");
        assert_eq!(s.wire_len, 7);
    }

    #[test]
    fn snaplen_truncated_tcp_keeps_partial_payload() {
        let body = vec![b'x'; 1000];
        let full = ethernet_frame(0x0800, &ipv4_tcp(&body));
        let orig_len = full.len() as u32;
        let f = Frame {
            data: full[..100].to_vec(),
            orig_len,
            ..frame(1, Vec::new())
        };
        let s = tcp(decoder().decode(&f));
        assert_eq!(s.payload.len(), 100 - 14 - 20 - 20);
        assert_eq!(s.wire_len, 1000);
        assert!(s.truncated);
        // Cut inside the TCP header options: the segment is still reported, without payload.
        let mut with_options = Vec::new();
        let mut th = TcpHeader::new(51000, 80, 1, 100);
        th.set_options(&[etherparse::TcpOptionElement::MaximumSegmentSize(1460)])
            .unwrap();
        let mut ih = Ipv4Header::new(
            (th.header_len() + 10) as u16,
            64,
            IpNumber::TCP,
            CLIENT,
            SERVER,
        )
        .unwrap();
        ih.header_checksum = ih.calc_header_checksum();
        with_options.extend_from_slice(&ih.to_bytes());
        with_options.extend_from_slice(&th.to_bytes());
        with_options.extend_from_slice(&[0; 10]);
        let cut = Frame {
            data: with_options[..42].to_vec(),
            orig_len: with_options.len() as u32,
            ..frame(101, Vec::new())
        };
        let s = tcp(decoder().decode(&cut));
        assert!(s.payload.is_empty() && s.truncated);
        assert_eq!(s.wire_len, 10);
        // Same for IPv6.
        let v6 = ipv6_tcp(&body);
        let f = Frame {
            data: v6[..200].to_vec(),
            orig_len: v6.len() as u32,
            ..frame(229, Vec::new())
        };
        let s = tcp(decoder().decode(&f));
        assert_eq!(
            (s.payload.len(), s.wire_len, s.truncated),
            (200 - 40 - 20, 1000, true)
        );
    }

    #[test]
    fn udp_datagram_and_its_truncation() {
        let mut out = Vec::new();
        PacketBuilder::ipv4(CLIENT, [8, 8, 8, 8], 64)
            .udp(5353, 53)
            .write(&mut out, b"dns query")
            .unwrap();
        let mut d = decoder();
        match d.decode(&frame(101, out.clone())) {
            Some(Transport::Udp(u)) => {
                assert_eq!(u.src, "192.168.1.10:5353".parse().unwrap());
                assert_eq!(u.dst, "8.8.8.8:53".parse().unwrap());
                assert_eq!(&u.payload[..], b"dns query");
                assert!(!u.truncated);
            }
            other => panic!("{other:?}"),
        }
        let f = Frame {
            data: out[..31].to_vec(),
            orig_len: out.len() as u32,
            ..frame(101, Vec::new())
        };
        match d.decode(&f) {
            Some(Transport::Udp(u)) => assert!(u.truncated && &u.payload[..] == b"dns"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unsupported_link_other_protocol_and_garbage_are_counted() {
        let mut d = decoder();
        assert!(d.decode(&frame(147, ipv4_tcp(BODY))).is_none());
        assert!(d.decode(&frame(147, vec![])).is_none());
        assert!(d.decode(&frame(9999, vec![1, 2, 3])).is_none());
        // ARP, and ICMP inside IPv4.
        assert!(d
            .decode(&frame(1, ethernet_frame(0x0806, &[0; 28])))
            .is_none());
        let mut icmp = Vec::new();
        PacketBuilder::ipv4(CLIENT, SERVER, 64)
            .icmpv4_echo_request(1, 1)
            .write(&mut icmp, b"ping")
            .unwrap();
        assert!(d.decode(&frame(101, icmp)).is_none());
        // Garbage: bad version nibble, short Ethernet, TCP with a data offset below 5.
        assert!(d
            .decode(&frame(1, ethernet_frame(0x0800, &[0x75; 40])))
            .is_none());
        assert!(d.decode(&frame(1, vec![1, 2, 3])).is_none());
        let mut bad_tcp = ipv4_tcp(b"");
        bad_tcp[32] = 0x20;
        assert!(d.decode(&frame(101, bad_tcp)).is_none());
        let st = d.stats();
        assert_eq!(st.unsupported_link.get(&147), Some(&2));
        assert_eq!(st.unsupported_link.get(&9999), Some(&1));
        assert_eq!(st.other_protocol, 2);
        assert_eq!(st.undecodable, 3);
    }

    /// Splits the IPv4 packet `ip` (20-byte header) into fragments at the given payload
    /// offsets (multiples of 8).
    fn fragment(ip: &[u8], id: u16, cuts: &[usize]) -> Vec<Vec<u8>> {
        let header = Ipv4Header::from_slice(ip).unwrap().0;
        let payload = &ip[20..];
        let mut bounds = vec![0];
        bounds.extend_from_slice(cuts);
        bounds.push(payload.len());
        bounds
            .windows(2)
            .map(|w| {
                let mut h = header.clone();
                h.identification = id;
                h.more_fragments = w[1] != payload.len();
                h.fragment_offset = IpFragOffset::try_new((w[0] / 8) as u16).unwrap();
                h.set_payload_len(w[1] - w[0]).unwrap();
                h.header_checksum = h.calc_header_checksum();
                let mut v = h.to_bytes().to_vec();
                v.extend_from_slice(&payload[w[0]..w[1]]);
                v
            })
            .collect()
    }

    fn body(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn ipv4_fragments_in_order_and_out_of_order() {
        let data = body(3000);
        let ip = ipv4_tcp(&data);
        for order in [[0usize, 1, 2], [2, 0, 1], [1, 2, 0]] {
            let frags = fragment(&ip, 77, &[1480, 2960]);
            let frames: Vec<Frame> = order
                .iter()
                .map(|&i| frame(101, frags[i].clone()))
                .collect();
            let mut d = decoder();
            assert!(d.decode(&frames[0]).is_none());
            assert!(d.decode(&frames[1]).is_none());
            let s = tcp(d.decode(&frames[2]));
            assert_v4_segment(&s, &data);
            assert!(matches!(s.payload, Cow::Owned(_)));
            let st = d.stats();
            assert_eq!(
                (st.ipv4_fragments, st.ipv4_reassembled, st.fragments_dropped),
                (3, 1, 0)
            );
        }
    }

    #[test]
    fn ipv4_duplicate_and_overlapping_fragments() {
        let data = body(64);
        let ip = ipv4_tcp(&data);
        let frags = fragment(&ip, 5, &[40]);
        // An overlapping fragment with different bytes for offsets 32..48 of the payload.
        let mut overlap = fragment(&ip, 5, &[32, 48])[1].clone();
        let n = overlap.len();
        overlap[20..n].fill(0xEE);
        let mut d = decoder();
        assert!(d.decode(&frame(101, frags[0].clone())).is_none());
        assert!(d.decode(&frame(101, frags[0].clone())).is_none()); // exact duplicate
        assert!(d.decode(&frame(101, overlap)).is_none());
        let f = frame(101, frags[1].clone());
        let s = tcp(d.decode(&f));
        // First received wins: bytes 32..40 come from the first fragment, 40..48 from the
        // overlapping one (it arrived before the last fragment).
        let mut want = data.clone();
        want[32 - 20..48 - 20].copy_from_slice(&[0xEE; 16]);
        want[32 - 20..40 - 20].copy_from_slice(&data[12..20]);
        assert_eq!(&s.payload[..], &want[..]);
        assert_eq!(d.stats().ipv4_reassembled, 1);
    }

    #[test]
    fn incomplete_fragment_set_expires_by_capture_time() {
        let ip = ipv4_tcp(&body(100));
        let frags = fragment(&ip, 9, &[64]);
        let limits = DefragLimits {
            timeout_ns: 30 * 1_000_000_000,
            ..DefragLimits::default()
        };
        let mut d = Decoder::new(limits);
        assert!(d.decode(&at(0, 101, frags[0].clone())).is_none());
        // 31 s later (any frame): the set is gone, so the last fragment alone cannot complete.
        d.decode(&at(31_000_000_000, 101, ipv4_tcp(b"unrelated")));
        assert_eq!(d.stats().fragments_dropped, 1);
        assert!(d
            .decode(&at(31_000_000_001, 101, frags[1].clone()))
            .is_none());
        assert_eq!(d.stats().ipv4_reassembled, 0);
        // Within the timeout it completes.
        let mut d = Decoder::new(DefragLimits::default());
        d.decode(&at(0, 101, frags[0].clone()));
        assert!(d
            .decode(&at(29_000_000_000, 101, frags[1].clone()))
            .is_some());
    }

    #[test]
    fn fragment_pool_limit_evicts_oldest() {
        let limits = DefragLimits {
            max_sets: 2,
            ..DefragLimits::default()
        };
        let mut d = Decoder::new(limits);
        let ip = ipv4_tcp(&body(100));
        let sets: Vec<Vec<Vec<u8>>> = (1..=3).map(|id| fragment(&ip, id, &[64])).collect();
        for s in &sets {
            assert!(d.decode(&frame(101, s[0].clone())).is_none());
        }
        assert_eq!(d.stats().fragments_dropped, 1);
        // Sets 2 and 3 still complete; set 1 was evicted, its last fragment alone does not.
        assert!(d.decode(&frame(101, sets[1][1].clone())).is_some());
        assert!(d.decode(&frame(101, sets[2][1].clone())).is_some());
        assert!(d.decode(&frame(101, sets[0][1].clone())).is_none());
        assert_eq!(d.stats().ipv4_reassembled, 2);
        // A byte limit too small for any set drops every one and counts it.
        let mut d = Decoder::new(DefragLimits {
            max_bytes: 16,
            ..DefragLimits::default()
        });
        assert!(d.decode(&frame(101, sets[0][0].clone())).is_none());
        assert_eq!(d.stats().fragments_dropped, 1);
    }

    #[test]
    fn ipv6_fragments_reassembled() {
        let full = ipv6_tcp(&body(2000));
        let (header, payload) = full.split_at(40);
        let mut frames = Vec::new();
        for (start, end) in [(0usize, 1232usize), (1232, payload.len())] {
            let more = end != payload.len();
            let mut p = header.to_vec();
            p[4..6].copy_from_slice(&((end - start + 8) as u16).to_be_bytes());
            p[6] = 44; // fragment header next
            p.push(6); // TCP
            p.push(0);
            p.extend_from_slice(&(((start / 8) as u16) << 3 | u16::from(more)).to_be_bytes());
            p.extend_from_slice(&0xABCD_0123u32.to_be_bytes());
            p.extend_from_slice(&payload[start..end]);
            frames.push(frame(229, p));
        }
        let mut d = decoder();
        assert!(d.decode(&frames[1]).is_none());
        let s = tcp(d.decode(&frames[0]));
        assert_eq!(&s.payload[..], &body(2000)[..]);
        assert_eq!(s.dst.port(), 443);
        assert_eq!((d.ipv6_fragments(), d.ipv6_reassembled()), (2, 1));
    }

    const OUTER_A: [u8; 4] = [198, 51, 100, 1];
    const OUTER_B: [u8; 4] = [198, 51, 100, 2];

    /// IPv4 from OUTER_A to OUTER_B with the given protocol around `payload`.
    fn outer_ip(protocol: u8, payload: &[u8]) -> Vec<u8> {
        let mut h = Ipv4Header::new(
            payload.len() as u16,
            64,
            IpNumber(protocol),
            OUTER_A,
            OUTER_B,
        )
        .unwrap();
        h.header_checksum = h.calc_header_checksum();
        let mut v = h.to_bytes().to_vec();
        v.extend_from_slice(payload);
        v
    }

    /// IPv4 + UDP from OUTER_A:40000 to OUTER_B:`port` around `payload`.
    fn outer_udp(port: u16, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ipv4(OUTER_A, OUTER_B, 64)
            .udp(40000, port)
            .write(&mut out, payload)
            .unwrap();
        out
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    /// The header of each encapsulation, around `inner`: (name, link type, frame).
    fn every_encapsulation(inner_ip: &[u8]) -> Vec<(&'static str, u16, Vec<u8>)> {
        let eth = ethernet_frame(0x0800, inner_ip);
        let mut vlan = vec![0x00, 0x2A, 0x08, 0x00];
        vlan.extend_from_slice(inner_ip);
        let eth_vlan = ethernet_frame(0x8100, &vlan);
        // ERSPAN III: version 2, session 1, no subheader, frame type 0 (Ethernet).
        let erspan3 = [0x20, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        vec![
            (
                "gre-ipv4",
                101,
                outer_ip(47, &cat(&[&[0, 0, 0x08, 0], inner_ip])),
            ),
            (
                "gre-key-seq-teb-vlan",
                101,
                outer_ip(
                    47,
                    &cat(&[&[0x30, 0, 0x65, 0x58, 0, 0, 0, 5, 0, 0, 0, 1], &eth_vlan]),
                ),
            ),
            (
                "erspan1",
                1,
                ethernet_frame(0x0800, &outer_ip(47, &cat(&[&[0, 0, 0x88, 0xBE], &eth]))),
            ),
            (
                "erspan2",
                1,
                ethernet_frame(
                    0x0800,
                    &outer_ip(
                        47,
                        &cat(&[
                            &[0x10, 0, 0x88, 0xBE, 0, 0, 0, 9],
                            &[0x10, 0x2A, 0x00, 0x01, 0, 0, 0, 3],
                            &eth,
                        ]),
                    ),
                ),
            ),
            (
                "erspan3",
                101,
                outer_ip(
                    47,
                    &cat(&[&[0x10, 0, 0x22, 0xEB, 0, 0, 0, 9], &erspan3, &eth]),
                ),
            ),
            (
                "gre-in-udp",
                101,
                outer_udp(4754, &cat(&[&[0, 0, 0x08, 0], inner_ip])),
            ),
            (
                "vxlan",
                1,
                ethernet_frame(
                    0x0800,
                    &outer_udp(4789, &cat(&[&[0x08, 0, 0, 0, 0, 0, 0x2A, 0], &eth])),
                ),
            ),
            (
                "geneve-options",
                101,
                outer_udp(
                    6081,
                    &cat(&[
                        &[0x02, 0, 0x65, 0x58, 0, 0, 0x2A, 0],
                        &[0x01, 0x02, 0x03, 0x01, 0xDE, 0xAD, 0xBE, 0xEF],
                        &eth,
                    ]),
                ),
            ),
            (
                "geneve-ipv4",
                101,
                outer_udp(6081, &cat(&[&[0, 0, 0x08, 0x00, 0, 0, 0x2A, 0], inner_ip])),
            ),
        ]
    }

    #[test]
    fn every_tunnel_gives_the_inner_segment() {
        let mut d = decoder();
        for (name, link, data) in every_encapsulation(&ipv4_tcp(BODY)) {
            let f = frame(link, data);
            let s = tcp(d.decode(&f));
            assert_v4_segment(&s, BODY);
            assert!(matches!(s.payload, Cow::Borrowed(_)), "{name}");
        }
        let t = &d.stats().tunnels;
        assert_eq!(
            (t.gre, t.erspan, t.gre_in_udp, t.vxlan, t.geneve, t.ip_in_ip),
            (5, 3, 1, 1, 2, 0)
        );
        assert_eq!((t.malformed, t.unsupported, t.too_deep), (0, 0, 0));
        assert_eq!((d.stats().undecodable, d.stats().other_protocol), (0, 0));
        // IPv6 inside VXLAN, and ARP inside VXLAN (not IP: counted as another protocol).
        let v6 = ethernet_frame(0x86DD, &ipv6_tcp(BODY));
        let f = frame(
            101,
            outer_udp(4789, &cat(&[&[0x08, 0, 0, 0, 0, 0, 1, 0], &v6])),
        );
        assert_eq!(tcp(d.decode(&f)).dst, "[fe80::2]:443".parse().unwrap());
        let arp = ethernet_frame(0x0806, &[0; 28]);
        let f = frame(
            101,
            outer_udp(4789, &cat(&[&[0x08, 0, 0, 0, 0, 0, 1, 0], &arp])),
        );
        assert!(d.decode(&f).is_none());
        assert_eq!((d.stats().tunnels.vxlan, d.stats().other_protocol), (3, 1));
    }

    #[test]
    fn snaplen_cut_inside_a_tunnel_keeps_the_inner_length() {
        let body = vec![b'x'; 1000];
        for (name, link, data) in every_encapsulation(&ipv4_tcp(&body)) {
            let f = Frame {
                data: data[..data.len() - 900].to_vec(),
                orig_len: data.len() as u32,
                ..frame(link, Vec::new())
            };
            let s = tcp(decoder().decode(&f));
            assert_eq!(
                (s.payload.len(), s.wire_len, s.truncated),
                (100, 1000, true),
                "{name}"
            );
        }
    }

    #[test]
    fn truncated_and_unsupported_tunnel_headers_are_counted() {
        let mut d = decoder();
        // GRE over IP announcing a key and a sequence number, cut after the key: undecodable.
        assert!(d
            .decode(&frame(101, outer_ip(47, &[0x30, 0, 0x08, 0, 0, 0, 0, 1])))
            .is_none());
        // ERSPAN II header cut short inside a whole GRE header.
        assert!(d
            .decode(&frame(
                101,
                outer_ip(47, &[0x10, 0, 0x88, 0xBE, 0, 0, 0, 1, 0x10])
            ))
            .is_none());
        // PPTP's GRE version 1 and RFC 1701 routing: another protocol.
        let pptp = [
            0x30, 0x81, 0x88, 0x0B, 0, 4, 0, 1, 0, 0, 0, 1, 0xFF, 0x03, 0, 0x21,
        ];
        assert!(d.decode(&frame(101, outer_ip(47, &pptp))).is_none());
        assert!(d
            .decode(&frame(101, outer_ip(47, &[0x40, 0, 0x08, 0, 0, 0, 0, 0])))
            .is_none());
        let st = d.stats();
        assert_eq!((st.tunnels.malformed, st.tunnels.unsupported), (2, 2));
        assert_eq!((st.undecodable, st.other_protocol), (2, 2));
        assert_eq!(
            st.tunnels.gre, 1,
            "the GRE header before the cut ERSPAN one"
        );
        // Over UDP, a header that does not parse leaves the datagram as it came: a port is
        // not a type field.
        let mut d = decoder();
        for payload in [&[0x00, 0, 0, 0, 0, 0, 1, 0][..], &[0x08, 0, 0]] {
            match d.decode(&frame(101, outer_udp(4789, payload))) {
                Some(Transport::Udp(u)) => {
                    assert_eq!(u.dst, "198.51.100.2:4789".parse().unwrap());
                    assert_eq!(&u.payload[..], payload);
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            d.decode(&frame(
                101,
                outer_udp(6081, &[0x40, 0, 0x65, 0x58, 0, 0, 0, 0])
            )),
            Some(Transport::Udp(_))
        ));
        let t = &d.stats().tunnels;
        assert_eq!(
            (t.malformed, t.unsupported, t.vxlan, t.geneve),
            (2, 1, 0, 0)
        );
        assert_eq!(d.stats().undecodable, 0);
        // A tunnel header that is whole around an inner packet that is not.
        let f = frame(101, outer_udp(4789, &[0x08, 0, 0, 0, 0, 0, 1, 0, 0xAA]));
        assert!(d.decode(&f).is_none());
        assert_eq!((d.stats().tunnels.vxlan, d.stats().undecodable), (1, 1));
    }

    #[test]
    fn tunnel_nesting_stops_at_the_limit() {
        // GRE in IPv4, `n` times around the segment.
        let nest_gre = |n: usize| {
            let mut p = ipv4_tcp(BODY);
            for _ in 0..n {
                p = outer_ip(47, &cat(&[&[0, 0, 0x08, 0], &p]));
            }
            p
        };
        let mut d = decoder();
        let limit = usize::from(MAX_ENCAP_DEPTH);
        assert_v4_segment(&tcp(d.decode(&frame(101, nest_gre(limit)))), BODY);
        assert!(d.decode(&frame(101, nest_gre(limit + 1))).is_none());
        let st = d.stats();
        assert_eq!((st.tunnels.gre, st.tunnels.too_deep), (2 * limit as u64, 1));
        assert_eq!(st.undecodable, 1);
        // IP in IP and VXLAN mixed, one past the limit: the innermost datagram reached is
        // passed on as UDP (its tunnel is not followed).
        let mut p = outer_udp(
            4789,
            &cat(&[
                &[0x08, 0, 0, 0, 0, 0, 1, 0],
                &ethernet_frame(0x0800, &ipv4_tcp(BODY)),
            ]),
        );
        for _ in 0..limit {
            p = outer_ip(4, &p);
        }
        let mut d = decoder();
        match d.decode(&frame(101, p)) {
            Some(Transport::Udp(u)) => assert_eq!(u.dst.port(), 4789),
            other => panic!("{other:?}"),
        }
        let t = &d.stats().tunnels;
        assert_eq!((t.ip_in_ip, t.vxlan, t.too_deep), (limit as u64, 0, 1));
    }

    /// xorshift64 (Marsaglia 2003): deterministic test input without a dependency.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn random_frames_never_panic() {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let links = [
            0u16, 1, 12, 14, 101, 104, 108, 113, 226, 228, 229, 239, 258, 276, 147,
        ];
        let mut seeds = vec![
            ethernet_frame(0x0800, &ipv4_tcp(BODY)),
            ipv4_tcp(BODY),
            ipv6_with_extension_headers(BODY),
            ethernet_frame(0x8100, &[0, 1, 0x86, 0xDD]),
        ];
        seeds.extend(
            every_encapsulation(&ipv4_tcp(BODY))
                .into_iter()
                .map(|e| e.2),
        );
        seeds.extend(fragment(&ipv4_tcp(&body(300)), 3, &[64, 128]));
        let limits = DefragLimits {
            max_sets: 8,
            max_bytes: 1 << 16,
            timeout_ns: 1_000,
        };
        let mut d = Decoder::new(limits);
        let mut frames = 0u64;
        for round in 0..5000u64 {
            let link = links[(xorshift(&mut seed) % links.len() as u64) as usize];
            let mut data = if round % 2 == 0 {
                let s = &seeds[(xorshift(&mut seed) % seeds.len() as u64) as usize];
                let mut v = s.clone();
                for _ in 0..(xorshift(&mut seed) % 4) {
                    let i = (xorshift(&mut seed) as usize) % v.len();
                    v[i] = xorshift(&mut seed) as u8;
                }
                let keep = (xorshift(&mut seed) as usize) % (v.len() + 1);
                v.truncate(keep.max(v.len() / 2));
                v
            } else {
                (0..xorshift(&mut seed) % 128)
                    .map(|_| xorshift(&mut seed) as u8)
                    .collect()
            };
            if link != 1 && round % 3 == 0 && !data.is_empty() {
                data[0] = 0x45; // push the random bytes through the IPv4 parser
            }
            let orig_len = data.len() as u32 + (xorshift(&mut seed) % 3) as u32 * 100;
            let f = Frame {
                ts: Ts(round as i64 * 100),
                link: LinkType(link),
                data,
                orig_len,
                file: 0,
            };
            let _ = d.decode(&f);
            frames += 1;
        }
        assert_eq!(frames, 5000);
    }
}
