//! Sources of frames: pcap and pcapng files (optionally gzip-compressed), several merged by
//! time. Live capture (feature `live`) will live here too. This is the only pipeline stage that
//! touches files.

use crate::time::Ts;
use std::path::PathBuf;

/// A link-layer type as numbered by tcpdump.org's LINKTYPE_ registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkType(pub u16);

impl LinkType {
    pub const NULL: LinkType = LinkType(0); // BSD loopback, host-order u32 family
    pub const ETHERNET: LinkType = LinkType(1);
    pub const RAW: LinkType = LinkType(101); // raw IPv4 or IPv6
    pub const LOOP: LinkType = LinkType(108); // OpenBSD loopback, network-order family
    pub const LINUX_SLL: LinkType = LinkType(113);
    pub const IPV4: LinkType = LinkType(228);
    pub const IPV6: LinkType = LinkType(229);
    pub const LINUX_SLL2: LinkType = LinkType(276);

    /// A short name for reports, e.g. `ethernet`, `linux-sll2`; `linktype-N` when unknown.
    pub fn name(self) -> String {
        match self.0 {
            0 => "null".into(),
            1 => "ethernet".into(),
            12 | 14 | 101 => "raw".into(),
            104 => "c-hdlc".into(),
            226 => "ipnet".into(),
            239 => "nflog".into(),
            258 => "pktap".into(),
            108 => "loop".into(),
            113 => "linux-sll".into(),
            228 => "ipv4".into(),
            229 => "ipv6".into(),
            276 => "linux-sll2".into(),
            n => format!("linktype-{n}"),
        }
    }
}

/// One captured frame, owned. `data` may be shorter than `orig_len` (snaplen truncation).
#[derive(Clone, Debug)]
pub struct Frame {
    pub ts: Ts,
    pub link: LinkType,
    pub data: Vec<u8>,
    /// Length of the packet on the wire.
    pub orig_len: u32,
    /// Index of the input file this frame came from (in the order given).
    pub file: usize,
}

impl Frame {
    pub fn is_truncated(&self) -> bool {
        (self.data.len() as u64) < self.orig_len as u64
    }
}

/// Errors that stop reading a file. A file that ends in the middle of a record is not an error:
/// it is reported through [`SourceStats::truncated_file`] and reading stops there.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    #[error("{path}: not a pcap or pcapng file")]
    NotACapture { path: PathBuf },
    #[error("{path}: corrupt capture: {what}")]
    Corrupt { path: PathBuf, what: String },
}

/// Per-file counters, kept by each reader.
#[derive(Clone, Debug, Default)]
pub struct SourceStats {
    pub path: PathBuf,
    pub packets: u64,
    /// Bytes of captured packet data (not file bytes).
    pub bytes: u64,
    /// Packets whose captured length is below their original length.
    pub truncated_packets: u64,
    /// Set when the file ended in the middle of a record (a cut-short capture).
    pub truncated_file: bool,
    pub link_types: Vec<LinkType>,
    pub gzip: bool,
    pub pcapng: bool,
    /// TLS key log text found in pcapng Decryption Secrets Blocks (NSS key log format).
    pub keylog: Vec<u8>,
}

mod file;
#[cfg(feature = "live")]
pub mod live;
pub mod pcapng;
pub mod spill;
pub use file::{embedded_keylog, CaptureReader, MergedSource, ReaderLimits};
