//! Link, IP and transport decoding with etherparse: frames in, TCP segments and UDP datagrams
//! out. IPv4 fragments are reassembled in a bounded pool; tunnels are unwrapped, at most
//! [`MAX_ENCAP_DEPTH`] deep, so that flows are those inside them. Pure: no I/O, no clock.

use crate::source::{Frame, LinkType};
use crate::time::Ts;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// TCP header flags that matter to reassembly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpFlags {
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
    pub psh: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpSegment<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    /// Payload bytes as captured; shorter than the IP header said when the packet was cut by
    /// the snaplen (then `truncated` is set).
    pub payload: Cow<'a, [u8]>,
    /// Payload length the IP/TCP headers announced.
    pub wire_len: u32,
    pub truncated: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdpDatagram<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub payload: Cow<'a, [u8]>,
    pub truncated: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport<'a> {
    Tcp(TcpSegment<'a>),
    Udp(UdpDatagram<'a>),
}

/// Counters for what could not be (fully) decoded. Nothing here aborts analysis.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DecodeStats {
    /// Frames whose link type modtrace does not decode, by link type.
    pub unsupported_link: BTreeMap<u16, u64>,
    /// Frames that could not be decoded at all (bad headers).
    pub undecodable: u64,
    /// Frames decoded to IP but carrying neither TCP nor UDP (ICMP, ARP, ...).
    pub other_protocol: u64,
    pub ipv4_fragments: u64,
    pub ipv4_reassembled: u64,
    /// Fragment sets dropped because the pool was full or they timed out.
    pub fragments_dropped: u64,
    /// Tunnels unwrapped to the packet inside, and those that could not be.
    pub tunnels: TunnelStats,
}

/// Encapsulations met on the way to TCP or UDP. A frame nested two deep counts in both kinds;
/// flows are keyed by the innermost addresses and ports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TunnelStats {
    /// IPv4 or IPv6 directly in IPv4 or IPv6 (RFC 2003, RFC 4213, RFC 2473).
    pub ip_in_ip: u64,
    /// GRE over IP (protocol 47).
    pub gre: u64,
    /// GRE in UDP (RFC 8086, destination port 4754).
    pub gre_in_udp: u64,
    /// VXLAN (RFC 7348, destination port 4789).
    pub vxlan: u64,
    /// Geneve (RFC 8926, destination port 6081).
    pub geneve: u64,
    /// ERSPAN types I, II and III inside GRE (also counted as GRE).
    pub erspan: u64,
    /// Tunnel headers cut short or with a forbidden value: the inner packet was not reached.
    /// Over IP the frame is also `undecodable`; over UDP the datagram is passed on as it is
    /// (a registered port is a convention, not a type field).
    pub malformed: u64,
    /// Recognised but not decoded: GRE version 1 (PPTP, PPP that is MPPE-encrypted in
    /// practice), RFC 1701 source routing, Geneve or ERSPAN versions or frame types not known.
    pub unsupported: u64,
    /// Encapsulations past [`MAX_ENCAP_DEPTH`] deep, not followed.
    pub too_deep: u64,
}

/// Encapsulations followed inside one another (IP in IP, GRE, GRE or VXLAN or Geneve in UDP,
/// PKTAP; a VLAN or MPLS stack is bounded on its own): real traffic nests one or two deep,
/// a bound stops hostile recursion.
pub const MAX_ENCAP_DEPTH: u8 = 4;

/// Limits of the IPv4 fragment pool. Hitting one drops the oldest set and counts it.
#[derive(Clone, Debug)]
pub struct DefragLimits {
    /// Fragment sets in progress at once (a fragment flood must not grow memory).
    pub max_sets: usize,
    /// Bytes buffered over all sets.
    pub max_bytes: usize,
    /// A set not completed within this time (capture time) is dropped; RFC 791 suggests 15 s,
    /// Linux uses 30 s.
    pub timeout_ns: i64,
}

impl Default for DefragLimits {
    fn default() -> Self {
        DefragLimits {
            max_sets: 1024,
            max_bytes: 4 << 20,
            timeout_ns: 30_000_000_000,
        }
    }
}

#[cfg(test)]
mod corpus_tests;
mod defrag;
mod link;
mod tunnel;
pub use link::Decoder;

// Keep the signature visible here for readers of this module.
#[allow(dead_code)]
fn _signature_check(d: &mut Decoder, f: &Frame) {
    let _: Option<Transport<'_>> = d.decode(f);
    let _: &DecodeStats = d.stats();
    let _ = (LinkType::ETHERNET, Ts(0));
}
