//! pcap / pcapng / gzip file reading and the time-ordered merge of several files.
//!
//! Streaming with a bounded buffer: one record at a time is parsed out of a buffer that starts at
//! [`ReaderLimits::buffer_bytes`] and grows only for a record bigger than that, up to
//! [`ReaderLimits::max_record_bytes`]. pcapng blocks are parsed with pcap-parser's block parsers;
//! the buffer is ours (not pcap-parser's `PcapReaderIterator`) so that a cut-short file, a
//! record bigger than the buffer and a clean end can be told apart exactly. Legacy pcap records
//! are 16 fixed bytes plus data and are read directly, which also covers the byte-swapped
//! "modified" (Kuznetzov) variant pcap-parser does not accept.

use super::{Frame, LinkType, SourceError, SourceStats};
use crate::time::Ts;
use crate::wire::{array_at, u16_at, u32_at};
use flate2::read::MultiGzDecoder;
use pcap_parser::pcapng::Block;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fs::File;
use std::io::{self, Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Memory limits of one reader. Hitting one stops the file with `SourceError::Corrupt` (a record
/// too big) or drops what does not fit (interfaces, key log), never grows memory further.
#[derive(Clone, Debug)]
pub struct ReaderLimits {
    /// Initial read buffer: holds many ordinary packets, so refills are 64 KiB reads.
    pub buffer_bytes: usize,
    /// Largest record (pcap record header + data, or whole pcapng block) accepted. tcpdump and
    /// Wireshark cap the snaplen at 262144 bytes (libpcap MAXIMUM_SNAPLEN); the rest leaves room
    /// for record headers and pcapng options. Anything larger is treated as corruption, as
    /// libpcap does ("invalid packet capture length").
    pub max_record_bytes: usize,
    /// pcapng interfaces remembered per section; each is a few bytes, but a hostile file could
    /// declare millions. Packets on interfaces beyond this are skipped (`skipped_records`).
    pub max_interfaces: usize,
    /// TLS key log bytes kept from Decryption Secrets Blocks. One NSS key log line is ~200 bytes,
    /// so 4 MiB is ~20k sessions; more is dropped (`keylog_dropped_bytes`).
    pub max_keylog_bytes: usize,
}

impl Default for ReaderLimits {
    fn default() -> Self {
        ReaderLimits {
            buffer_bytes: 64 << 10,
            max_record_bytes: (256 << 10) + (16 << 10),
            max_interfaces: 4096,
            max_keylog_bytes: 4 << 20,
        }
    }
}

/// pcapng block types (draft-ietf-opsawg-pcapng section 10.1).
const NG_SHB: u32 = 0x0A0D_0D0A;
const NG_OBSOLETE_PACKET: u32 = 0x0000_0002;
/// Byte-order magic of a pcapng Section Header Block, as read little-endian.
const NG_BOM: u32 = 0x1A2B_3C4D;
/// Decryption Secrets Block type for a TLS key log ("TLSK").
const DSB_TLS_KEY_LOG: u32 = 0x544C_534B;
/// IDB option code of if_tsoffset (seconds added to every timestamp).
const IF_TSOFFSET: u16 = 14;

/// Legacy pcap file header layout (pcap-savefile(5)).
const PCAP_HEADER_LEN: usize = 24;

#[derive(Clone, Copy, Debug)]
struct PcapFormat {
    big_endian: bool,
    nanos: bool,
    /// 16, or 24 for the "modified" format (extra ifindex/protocol/pkt_type/pad fields).
    record_header_len: usize,
    link: LinkType,
}

#[derive(Clone, Copy, Debug)]
struct Interface {
    link: LinkType,
    /// Timestamp units per second (if_tsresol; default 10^6).
    units_per_sec: u64,
    /// Seconds added to every timestamp (if_tsoffset).
    offset_secs: i64,
    /// 0 means no limit.
    snaplen: u32,
}

#[derive(Debug)]
struct NgState {
    big_endian: bool,
    interfaces: Vec<Interface>,
    /// Simple Packet Blocks carry no timestamp: they get the last one seen in the file.
    last_ts: Ts,
}

#[derive(Debug)]
enum Format {
    Pcap(PcapFormat),
    PcapNg(NgState),
}

/// Counts bytes read from the underlying file (compressed bytes for gzip), for progress.
struct CountingReader<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// A growable window over the input stream: `buf[start..end]` holds unparsed bytes.
struct InputBuffer {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// The stream has returned end of file.
    eof: bool,
    /// The (gzip) stream itself ended early.
    cut_short: bool,
}

impl InputBuffer {
    fn new(capacity: usize) -> InputBuffer {
        InputBuffer {
            buf: vec![0; capacity.max(PCAP_HEADER_LEN)],
            start: 0,
            end: 0,
            eof: false,
            cut_short: false,
        }
    }

    fn data(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or(&[])
    }

    fn consume(&mut self, n: usize) {
        self.start = self.start.saturating_add(n).min(self.end);
    }

    /// Reads until at least `at_least` unparsed bytes are buffered or the stream ends. The
    /// caller has checked `at_least` against the record limit.
    fn fill(&mut self, reader: &mut dyn Read, at_least: usize) -> io::Result<()> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if at_least > self.buf.len() {
            self.buf.resize(at_least, 0);
        }
        while self.end < at_least && !self.eof {
            let space = match self.buf.get_mut(self.end..) {
                Some(s) if !s.is_empty() => s,
                _ => break,
            };
            match reader.read(space) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // flate2 reports a gzip stream cut short as UnexpectedEof.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    self.eof = true;
                    self.cut_short = true;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Reads one capture file, streaming (bounded memory whatever the file size).
pub struct CaptureReader {
    stats: SourceStats,
    limits: ReaderLimits,
    reader: Box<dyn Read + Send>,
    input: InputBuffer,
    format: Format,
    file_index: usize,
    /// Bytes of the file read so far (compressed for gzip).
    raw_read: Arc<AtomicU64>,
    /// Bytes of the (decompressed) stream parsed so far.
    consumed: u64,
    finished: bool,
    /// Records skipped because they could not be attributed (pcapng packet on an undeclared
    /// interface, or on one past `max_interfaces`).
    skipped_records: u64,
    keylog_dropped_bytes: u64,
    /// Link type of the previous packet, to update `stats.link_types` only on change.
    last_link: Option<LinkType>,
    /// A frame buffer given back by the consumer (`recycle`), reused for the next frame so
    /// the hot path does not allocate and fault in fresh pages per packet.
    spare: Vec<u8>,
}

/// What one step of parsing found at the head of the buffer.
enum Record<'a> {
    Packet {
        len: usize,
        ts: Ts,
        link: LinkType,
        data: &'a [u8],
        orig_len: u32,
    },
    /// A record that carries no packet (or a packet that cannot be attributed).
    Skip {
        len: usize,
    },
    /// The record needs this many bytes from the buffer head.
    NeedMore {
        at_least: usize,
    },
    Corrupt(String),
}

impl CaptureReader {
    /// Opens `path`; detects pcap vs pcapng and gzip by magic bytes, not by name.
    pub fn open(path: &Path, file_index: usize) -> Result<CaptureReader, SourceError> {
        Self::open_with_limits(path, file_index, ReaderLimits::default())
    }

    pub fn open_with_limits(
        path: &Path,
        file_index: usize,
        limits: ReaderLimits,
    ) -> Result<CaptureReader, SourceError> {
        let file = File::open(path).map_err(|err| SourceError::Io {
            path: path.to_path_buf(),
            err,
        })?;
        Self::from_reader(file, path, file_index, limits)
    }

    /// Reads a capture from any byte stream (a pipe, standard input); `name` is used in stats
    /// and errors. Detection is the same as for [`CaptureReader::open`].
    pub fn from_reader(
        mut stream: impl Read + Send + 'static,
        name: &Path,
        file_index: usize,
        limits: ReaderLimits,
    ) -> Result<CaptureReader, SourceError> {
        let path = name;
        let mut magic = [0u8; 2];
        let got = read_up_to(&mut stream, &mut magic).map_err(|err| SourceError::Io {
            path: path.to_path_buf(),
            err,
        })?;
        // RFC 1952 2.3.1: ID1 = 0x1f, ID2 = 0x8b.
        let gzip = got == 2 && magic == [0x1f, 0x8b];
        let raw_read = Arc::new(AtomicU64::new(got as u64));
        let counted = CountingReader {
            inner: stream,
            count: Arc::clone(&raw_read),
        };
        // Put the peeked bytes back in front.
        let head = io::Cursor::new(magic).take(got as u64).chain(counted);
        let mut reader: Box<dyn Read + Send> = if gzip {
            // Multi-member: `cat a.gz b.gz` and bgzip-style files are one stream.
            Box::new(MultiGzDecoder::new(head))
        } else {
            Box::new(head)
        };
        let mut input = InputBuffer::new(limits.buffer_bytes);
        fill_or_error(&mut input, reader.as_mut(), PCAP_HEADER_LEN, path, gzip)?;
        let not_a_capture = || SourceError::NotACapture {
            path: path.to_path_buf(),
        };
        let head = input.data();
        let magic_le = u32_at(head, 0, false).ok_or_else(not_a_capture)?;
        let mut stats = SourceStats {
            path: path.to_path_buf(),
            gzip,
            ..Default::default()
        };
        let mut consumed = 0u64;
        let format = if magic_le == NG_SHB {
            // The byte-order magic decides the section's endianness; without it this is not
            // pcapng (the block type alone is only 4 bytes).
            let bom = u32_at(head, 8, false).ok_or_else(not_a_capture)?;
            let big_endian = if bom == NG_BOM {
                false
            } else if bom == NG_BOM.swap_bytes() {
                true
            } else {
                return Err(not_a_capture());
            };
            stats.pcapng = true;
            Format::PcapNg(NgState {
                big_endian,
                interfaces: Vec::new(),
                last_ts: Ts(0),
            })
        } else {
            // pcap-savefile(5) magics, as read little-endian; swapped means big-endian file.
            let (big_endian, nanos, record_header_len) = match magic_le {
                0xA1B2_C3D4 => (false, false, 16),
                0xD4C3_B2A1 => (true, false, 16),
                0xA1B2_3C4D => (false, true, 16),
                0x4D3C_B2A1 => (true, true, 16),
                0xA1B2_CD34 => (false, false, 24),
                0x34CD_B2A1 => (true, false, 24),
                _ => return Err(not_a_capture()),
            };
            let mut finished = false;
            let link = match u32_at(head, 20, big_endian) {
                Some(network) => {
                    // LINKTYPE_ values live in the low 16 bits; the upper bits carry FCS
                    // information (tcpdump.org linktypes, "LinkType and additional information").
                    LinkType((network & 0xFFFF) as u16)
                }
                None => {
                    // A pcap magic but the file header is cut short.
                    stats.truncated_file = true;
                    finished = true;
                    LinkType(0)
                }
            };
            if !finished {
                input.consume(PCAP_HEADER_LEN);
                consumed = PCAP_HEADER_LEN as u64;
            }
            let fmt = PcapFormat {
                big_endian,
                nanos,
                record_header_len,
                link,
            };
            return Ok(CaptureReader {
                stats,
                limits,
                reader,
                input,
                format: Format::Pcap(fmt),
                file_index,
                raw_read,
                consumed,
                finished,
                skipped_records: 0,
                keylog_dropped_bytes: 0,
                last_link: None,
                spare: Vec::new(),
            });
        };
        Ok(CaptureReader {
            stats,
            limits,
            reader,
            input,
            format,
            file_index,
            raw_read,
            consumed,
            finished: false,
            skipped_records: 0,
            keylog_dropped_bytes: 0,
            last_link: None,
            spare: Vec::new(),
        })
    }

    /// Next frame, or `Ok(None)` at the end (or at a cut-short end: see `stats().truncated_file`).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
        loop {
            if self.finished {
                return Ok(None);
            }
            let data = self.input.data();
            let record = match &mut self.format {
                Format::Pcap(fmt) => parse_pcap_record(fmt, data, &self.limits),
                Format::PcapNg(ng) => parse_ng_block(
                    ng,
                    data,
                    &self.limits,
                    &mut self.stats,
                    &mut self.skipped_records,
                    &mut self.keylog_dropped_bytes,
                ),
            };
            match record {
                Record::Packet {
                    len,
                    ts,
                    link,
                    data,
                    orig_len,
                } => {
                    let mut buf = std::mem::take(&mut self.spare);
                    buf.clear();
                    buf.extend_from_slice(data);
                    let frame = Frame {
                        ts,
                        link,
                        data: buf,
                        orig_len,
                        file: self.file_index,
                    };
                    self.input.consume(len);
                    self.consumed += len as u64;
                    self.count(&frame);
                    return Ok(Some(frame));
                }
                Record::Skip { len } => {
                    self.input.consume(len);
                    self.consumed += len as u64;
                }
                Record::NeedMore { at_least } => {
                    if at_least > self.limits.max_record_bytes {
                        self.finished = true;
                        return Err(self.corrupt(format!(
                            "record of {at_least} bytes exceeds the {} byte limit",
                            self.limits.max_record_bytes
                        )));
                    }
                    if self.input.eof {
                        // A clean end is an empty buffer at a record boundary.
                        self.stats.truncated_file |=
                            !self.input.data().is_empty() || self.input.cut_short;
                        self.finished = true;
                        return Ok(None);
                    }
                    let gzip = self.stats.gzip;
                    let path = self.stats.path.clone();
                    if let Err(e) =
                        fill_or_error(&mut self.input, self.reader.as_mut(), at_least, &path, gzip)
                    {
                        self.finished = true;
                        return Err(e);
                    }
                }
                Record::Corrupt(what) => {
                    self.finished = true;
                    return Err(self.corrupt(what));
                }
            }
        }
    }

    fn count(&mut self, frame: &Frame) {
        self.stats.packets += 1;
        self.stats.bytes += frame.data.len() as u64;
        if frame.is_truncated() {
            self.stats.truncated_packets += 1;
        }
        if self.last_link != Some(frame.link) {
            self.last_link = Some(frame.link);
            if !self.stats.link_types.contains(&frame.link) {
                self.stats.link_types.push(frame.link);
            }
        }
    }

    fn corrupt(&self, what: String) -> SourceError {
        SourceError::Corrupt {
            path: self.stats.path.clone(),
            what,
        }
    }

    pub fn stats(&self) -> &SourceStats {
        &self.stats
    }

    /// Gives a frame's buffer back for reuse by the next `next_frame`.
    pub fn recycle(&mut self, frame: Frame) {
        if frame.data.capacity() > self.spare.capacity() {
            self.spare = frame.data;
        }
    }

    /// Bytes of the (possibly compressed) file consumed so far, for progress bars.
    pub fn file_position(&self) -> u64 {
        if self.stats.gzip {
            self.raw_read.load(Ordering::Relaxed)
        } else {
            self.consumed
        }
    }

    /// Records skipped: pcapng packets on an undeclared interface (or one past the limit).
    pub fn skipped_records(&self) -> u64 {
        self.skipped_records
    }

    /// Key log bytes not kept because of `ReaderLimits::max_keylog_bytes`.
    pub fn keylog_dropped_bytes(&self) -> u64 {
        self.keylog_dropped_bytes
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(buf.get_mut(n..).unwrap_or(&mut [])) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn fill_or_error(
    input: &mut InputBuffer,
    reader: &mut dyn Read,
    at_least: usize,
    path: &Path,
    gzip: bool,
) -> Result<(), SourceError> {
    input.fill(reader, at_least).map_err(|err| {
        if gzip
            && matches!(
                err.kind(),
                io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData
            )
        {
            SourceError::Corrupt {
                path: path.to_path_buf(),
                what: format!("gzip: {err}"),
            }
        } else {
            SourceError::Io {
                path: path.to_path_buf(),
                err,
            }
        }
    })
}

/// One legacy pcap record: ts_sec, ts_usec/nsec, caplen, origlen (+8 bytes in the modified
/// format), then caplen bytes.
fn parse_pcap_record<'a>(fmt: &PcapFormat, data: &'a [u8], limits: &ReaderLimits) -> Record<'a> {
    let hdr = fmt.record_header_len;
    let be = fmt.big_endian;
    let (Some(sec), Some(frac), Some(caplen), Some(orig_len)) = (
        u32_at(data, 0, be),
        u32_at(data, 4, be),
        u32_at(data, 8, be),
        u32_at(data, 12, be),
    ) else {
        return Record::NeedMore { at_least: hdr };
    };
    if data.len() < hdr {
        return Record::NeedMore { at_least: hdr };
    }
    let total = (caplen as usize).saturating_add(hdr);
    if total > limits.max_record_bytes {
        return Record::Corrupt(format!(
            "packet capture length {caplen} exceeds the {} byte limit",
            limits.max_record_bytes
        ));
    }
    let Some(packet) = data.get(hdr..total) else {
        return Record::NeedMore { at_least: total };
    };
    // ts_sec is unsigned in current libpcap (pcap-savefile(5)); a fraction out of range (seen
    // in fuzzed files) just adds, as tcpdump prints it.
    let frac_ns = if fmt.nanos {
        frac as i64
    } else {
        frac as i64 * 1000
    };
    let ts = Ts((sec as i64) * 1_000_000_000 + frac_ns);
    Record::Packet {
        len: total,
        ts,
        link: fmt.link,
        data: packet,
        orig_len,
    }
}

/// Converts a pcapng timestamp in interface units to nanoseconds since the epoch.
fn ng_timestamp(iface: &Interface, high: u32, low: u32) -> Ts {
    let units = ((high as u64) << 32) | low as u64;
    let per_sec = iface.units_per_sec.max(1);
    let secs = units / per_sec;
    let frac = units % per_sec;
    let nanos = ((frac as u128) * 1_000_000_000 / per_sec as u128) as i64;
    let secs = i64::try_from(secs)
        .unwrap_or(i64::MAX)
        .saturating_add(iface.offset_secs);
    Ts(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
}

/// if_tsresol (pcapng 4.2): high bit clear = 10^-n, set = 2^-n seconds. Invalid values (more
/// than a u64 can count) fall back to the default microseconds.
fn units_per_sec(tsresol: u8) -> u64 {
    let exp = (tsresol & 0x7F) as u32;
    let value = if tsresol & 0x80 == 0 {
        10u64.checked_pow(exp)
    } else {
        1u64.checked_shl(exp)
    };
    match value {
        Some(v) if exp < 64 => v,
        _ => 1_000_000,
    }
}

/// One pcapng block. Non-packet blocks update `ng` / `stats` and are skipped.
fn parse_ng_block<'a>(
    ng: &mut NgState,
    data: &'a [u8],
    limits: &ReaderLimits,
    stats: &mut SourceStats,
    skipped: &mut u64,
    keylog_dropped: &mut u64,
) -> Record<'a> {
    // Generic block: type (4), total length (4), body, total length (4).
    let Some(raw_type) = u32_at(data, 0, false) else {
        return Record::NeedMore { at_least: 12 };
    };
    let is_shb = raw_type == NG_SHB;
    let big_endian = if is_shb {
        match u32_at(data, 8, false) {
            None => return Record::NeedMore { at_least: 12 },
            Some(NG_BOM) => false,
            Some(b) if b == NG_BOM.swap_bytes() => true,
            Some(_) => return Record::Corrupt("section header with a bad byte-order magic".into()),
        }
    } else {
        ng.big_endian
    };
    let Some(block_len) = u32_at(data, 4, big_endian) else {
        return Record::NeedMore { at_least: 12 };
    };
    let block_len = block_len as usize;
    if block_len < 12 {
        return Record::Corrupt(format!(
            "block length {block_len} below the 12-byte minimum"
        ));
    }
    if block_len > limits.max_record_bytes {
        return Record::NeedMore {
            at_least: block_len,
        };
    }
    let Some(block) = data.get(..block_len) else {
        return Record::NeedMore {
            at_least: block_len,
        };
    };
    let parsed = if is_shb {
        pcap_parser::pcapng::parse_sectionheaderblock(block).map(|(_, b)| Block::SectionHeader(b))
    } else if big_endian {
        pcap_parser::pcapng::parse_block_be(block).map(|(_, b)| b)
    } else {
        pcap_parser::pcapng::parse_block_le(block).map(|(_, b)| b)
    };
    let block = match parsed {
        Ok(b) => b,
        Err(_) => {
            let block_type = if big_endian {
                raw_type.swap_bytes()
            } else {
                raw_type
            };
            return Record::Corrupt(format!("malformed pcapng block of type {block_type:#x}"));
        }
    };
    let skip = Record::Skip { len: block_len };
    match block {
        Block::SectionHeader(shb) => {
            // A new section restarts interface numbering (pcapng 4.1).
            ng.big_endian = shb.big_endian();
            ng.interfaces.clear();
            skip
        }
        Block::InterfaceDescription(idb) => {
            if ng.interfaces.len() < limits.max_interfaces {
                // pcap-parser reads if_tsoffset little-endian whatever the section: re-read it.
                let offset_secs = idb
                    .options
                    .iter()
                    .find(|o| o.code.0 == IF_TSOFFSET)
                    .and_then(|o| array_at::<8>(&o.value, 0))
                    .map(|b| {
                        if ng.big_endian {
                            i64::from_be_bytes(b)
                        } else {
                            i64::from_le_bytes(b)
                        }
                    })
                    .unwrap_or(0);
                ng.interfaces.push(Interface {
                    link: LinkType(idb.linktype.0 as u16),
                    units_per_sec: units_per_sec(idb.if_tsresol),
                    offset_secs,
                    snaplen: idb.snaplen,
                });
            } else {
                // Keep numbering right: later interfaces stay unknown, their packets skipped.
                ng.interfaces.truncate(limits.max_interfaces);
            }
            skip
        }
        Block::EnhancedPacket(epb) => {
            let Some(iface) = ng.interfaces.get(epb.if_id as usize).copied() else {
                *skipped += 1;
                return skip;
            };
            let caplen = (epb.caplen as usize).min(epb.data.len());
            let packet = epb.data.get(..caplen).unwrap_or(&[]);
            let ts = ng_timestamp(&iface, epb.ts_high, epb.ts_low);
            ng.last_ts = ts;
            Record::Packet {
                len: block_len,
                ts,
                link: iface.link,
                data: packet,
                orig_len: epb.origlen,
            }
        }
        Block::SimplePacket(spb) => {
            // pcapng 4.4: interface 0; captured length = min(original length, snaplen), the
            // rest of the body is padding.
            let Some(iface) = ng.interfaces.first().copied() else {
                *skipped += 1;
                return skip;
            };
            let mut caplen = (spb.origlen as usize).min(spb.data.len());
            if iface.snaplen != 0 {
                caplen = caplen.min(iface.snaplen as usize);
            }
            let packet = spb.data.get(..caplen).unwrap_or(&[]);
            Record::Packet {
                len: block_len,
                ts: ng.last_ts,
                link: iface.link,
                data: packet,
                orig_len: spb.origlen,
            }
        }
        Block::DecryptionSecrets(dsb) => {
            if dsb.secrets_type.0 == DSB_TLS_KEY_LOG {
                let secrets = dsb.data.get(..dsb.secrets_len as usize).unwrap_or(dsb.data);
                append_keylog(
                    &mut stats.keylog,
                    secrets,
                    limits.max_keylog_bytes,
                    keylog_dropped,
                );
            }
            skip
        }
        Block::Unknown(ub) => {
            let block_type = if big_endian {
                ub.block_type.swap_bytes()
            } else {
                ub.block_type
            };
            if block_type != NG_OBSOLETE_PACKET {
                return skip;
            }
            // Obsolete Packet Block (pcapng appendix A): interface id u16, drops count u16,
            // timestamp high/low, captured length, packet length, data.
            let body = ub.data;
            let fields = (
                u16_at(body, 0, big_endian),
                u32_at(body, 4, big_endian),
                u32_at(body, 8, big_endian),
                u32_at(body, 12, big_endian),
                u32_at(body, 16, big_endian),
            );
            let (Some(if_id), Some(high), Some(low), Some(caplen), Some(orig_len)) = fields else {
                return Record::Corrupt("packet block shorter than its header".into());
            };
            let Some(iface) = ng.interfaces.get(if_id as usize).copied() else {
                *skipped += 1;
                return skip;
            };
            let rest = body.get(20..).unwrap_or(&[]);
            let packet = rest.get(..caplen as usize).unwrap_or(rest);
            let ts = ng_timestamp(&iface, high, low);
            ng.last_ts = ts;
            Record::Packet {
                len: block_len,
                ts,
                link: iface.link,
                data: packet,
                orig_len,
            }
        }
        _ => skip,
    }
}

/// Appends one DSB's key log text, keeping lines of consecutive blocks apart.
fn append_keylog(keylog: &mut Vec<u8>, secrets: &[u8], max: usize, dropped: &mut u64) {
    let needs_newline = keylog.last().is_some_and(|&b| b != b'\n');
    let want = secrets.len() + usize::from(needs_newline);
    if keylog.len().saturating_add(want) > max {
        *dropped += secrets.len() as u64;
        return;
    }
    if needs_newline {
        keylog.push(b'\n');
    }
    keylog.extend_from_slice(secrets);
}

/// Several capture files merged into one stream ordered by timestamp (stable: ties go to the
/// earlier file).
/// The key log text of a pcapng's Decryption Secrets Blocks, wherever they are in the file
/// (a capture writer may add them at the end, after the packets they open), read in a first
/// pass so that the analysis has the keys before the sessions. Empty for pcap files, which
/// have no such blocks (not read further than their header).
pub fn embedded_keylog(path: &Path) -> Result<Vec<u8>, SourceError> {
    let mut r = CaptureReader::open(path, 0)?;
    if !r.stats().pcapng {
        return Ok(Vec::new());
    }
    // An uncompressed file: only the block headers and the secrets are read, packets are
    // skipped by their length. Anything unexpected, and gzip, take the full read below, which
    // says what is wrong as the analysis would.
    if let Ok(file) = File::open(path) {
        if let Some(keylog) = pcapng_secrets(file, &ReaderLimits::default()) {
            return Ok(keylog);
        }
    }
    while let Some(frame) = r.next_frame()? {
        r.recycle(frame);
    }
    Ok(std::mem::take(&mut r.stats.keylog))
}

/// The TLS key log of a pcapng's Decryption Secrets Blocks, walking block headers and seeking
/// past every other block. `None` when the stream is not a well-formed uncompressed pcapng to
/// its end (the caller reads it the slow way then).
fn pcapng_secrets<R: Read + Seek>(stream: R, limits: &ReaderLimits) -> Option<Vec<u8>> {
    const NG_DSB: u32 = 0x0000_000A;
    let mut r = io::BufReader::with_capacity(64 << 10, stream);
    let mut keylog = Vec::new();
    let mut dropped = 0u64;
    let mut big_endian = false;
    let mut head = [0u8; 12];
    loop {
        // The next block: its type and total length, and for a section header its byte order.
        match read_up_to(&mut r, &mut head[..8]).ok()? {
            0 => return Some(keylog),
            8 => {}
            _ => return None,
        }
        let raw_type = u32::from_le_bytes(head[..4].try_into().ok()?);
        if raw_type == NG_SHB {
            r.read_exact(&mut head[8..12]).ok()?;
            big_endian = match u32::from_le_bytes(head[8..12].try_into().ok()?) {
                NG_BOM => false,
                b if b.swap_bytes() == NG_BOM => true,
                _ => return None,
            };
        }
        let word = |b: &[u8]| -> Option<u32> {
            let w: [u8; 4] = b.try_into().ok()?;
            Some(if big_endian {
                u32::from_be_bytes(w)
            } else {
                u32::from_le_bytes(w)
            })
        };
        let block_type = word(&head[..4])?;
        let total = word(&head[4..8])? as usize;
        // What the full reader would call corrupt, it reports.
        if total < 12 || total % 4 != 0 || total > limits.max_record_bytes {
            return None;
        }
        let read_so_far = if raw_type == NG_SHB { 12 } else { 8 };
        if block_type == NG_DSB {
            let mut body = vec![0u8; total.checked_sub(read_so_far)?];
            r.read_exact(&mut body).ok()?;
            let secrets_type = word(body.get(..4)?)?;
            let secrets_len = word(body.get(4..8)?)? as usize;
            // The data, padded, before the trailing length (as the full reader reads it).
            let data = body.get(8..body.len().checked_sub(4)?)?;
            if secrets_type == DSB_TLS_KEY_LOG {
                let secrets = data.get(..secrets_len).unwrap_or(data);
                append_keylog(&mut keylog, secrets, limits.max_keylog_bytes, &mut dropped);
            }
        } else {
            let skip = i64::try_from(total.checked_sub(read_so_far)?).ok()?;
            r.seek_relative(skip).ok()?;
        }
    }
}

pub struct MergedSource {
    readers: Vec<CaptureReader>,
    /// One pending frame per reader at most: the merge is streaming.
    pending: Vec<Option<Frame>>,
    /// (timestamp, file index) of each pending frame, smallest first.
    heap: BinaryHeap<Reverse<(Ts, usize)>>,
    /// Readers that have ended (or failed) and are not pulled again.
    done: Vec<bool>,
    primed: bool,
    /// Errors of failed files not yet returned (one is returned per call).
    errors: VecDeque<SourceError>,
}

impl MergedSource {
    pub fn open(paths: &[impl AsRef<Path>]) -> Result<MergedSource, SourceError> {
        let mut readers = Vec::new();
        for (i, p) in paths.iter().enumerate() {
            readers.push(CaptureReader::open(p.as_ref(), i)?);
        }
        let n = readers.len();
        Ok(MergedSource {
            readers,
            pending: (0..n).map(|_| None).collect(),
            heap: BinaryHeap::with_capacity(n),
            done: vec![false; n],
            primed: false,
            errors: VecDeque::new(),
        })
    }

    /// Pulls the next frame of reader `i` into `pending`. A reader that fails is marked done
    /// and its error queued.
    fn pull(&mut self, i: usize) {
        let (Some(reader), Some(done)) = (self.readers.get_mut(i), self.done.get_mut(i)) else {
            return;
        };
        if *done {
            return;
        }
        match reader.next_frame() {
            Ok(Some(frame)) => {
                self.heap.push(Reverse((frame.ts, i)));
                if let Some(slot) = self.pending.get_mut(i) {
                    *slot = Some(frame);
                }
            }
            Ok(None) => *done = true,
            Err(e) => {
                *done = true;
                self.errors.push_back(e);
            }
        }
    }

    /// Next frame in timestamp order. An error from one file is returned once (no frame is lost
    /// for it); calling again continues with the other files.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
        if !self.primed {
            self.primed = true;
            for i in 0..self.readers.len() {
                self.pull(i);
            }
        }
        if let Some(e) = self.errors.pop_front() {
            return Err(e);
        }
        // (ts, index) ordering makes ties go to the lower file index.
        let Some(Reverse((_, i))) = self.heap.pop() else {
            return Ok(None);
        };
        let frame = self.pending.get_mut(i).and_then(Option::take);
        self.pull(i);
        Ok(frame)
    }

    pub fn stats(&self) -> Vec<&SourceStats> {
        self.readers.iter().map(|r| r.stats()).collect()
    }

    /// Gives a frame's buffer back to the reader it came from, for reuse.
    pub fn recycle(&mut self, frame: Frame) {
        if let Some(r) = self.readers.get_mut(frame.file) {
            r.recycle(frame);
        }
    }

    /// Sum of `file_position()` over the readers.
    pub fn position(&self) -> u64 {
        self.readers.iter().map(|r| r.file_position()).sum()
    }

    /// The paths, in input order.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.readers
            .iter()
            .map(|r| r.stats().path.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A frame's identifying parts: (ns timestamp, link, data, orig_len, file).
    fn parts(f: &Frame) -> (i64, u16, Vec<u8>, u32, usize) {
        (f.ts.0, f.link.0, f.data.clone(), f.orig_len, f.file)
    }

    fn read_all(r: &mut CaptureReader) -> Vec<Frame> {
        let mut out = Vec::new();
        while let Some(f) = r.next_frame().expect("no error") {
            out.push(f);
        }
        out
    }

    fn write_temp(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn from_bytes(bytes: Vec<u8>) -> Result<CaptureReader, SourceError> {
        CaptureReader::from_reader(
            io::Cursor::new(bytes),
            Path::new("mem"),
            0,
            ReaderLimits::default(),
        )
    }

    /// A legacy pcap written by pcap-file (an independent writer).
    fn pcap_file_bytes(
        big: bool,
        nanos: bool,
        link: u32,
        pkts: &[(u64, u32, &[u8], u32)],
    ) -> Vec<u8> {
        use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
        let header = PcapHeader {
            datalink: pcap_file::DataLink::from(link),
            ts_resolution: if nanos {
                pcap_file::TsResolution::NanoSecond
            } else {
                pcap_file::TsResolution::MicroSecond
            },
            endianness: if big {
                pcap_file::Endianness::Big
            } else {
                pcap_file::Endianness::Little
            },
            ..Default::default()
        };
        let mut w = PcapWriter::with_header(Vec::new(), header).unwrap();
        for &(secs, nanos_part, data, orig) in pkts {
            let ts = std::time::Duration::new(secs, nanos_part);
            w.write_packet(&PcapPacket::new(ts, orig, data)).unwrap();
        }
        w.into_writer()
    }

    /// Hand-built pcapng blocks (draft-ietf-opsawg-pcapng), in either byte order.
    struct Ng {
        big: bool,
        out: Vec<u8>,
    }

    impl Ng {
        fn new(big: bool) -> Ng {
            let mut ng = Ng {
                big,
                out: Vec::new(),
            };
            ng.shb();
            ng
        }
        fn u16(&self, v: u16) -> [u8; 2] {
            if self.big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        }
        fn u32(&self, v: u32) -> [u8; 4] {
            if self.big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        }
        fn block(&mut self, ty: u32, body: &[u8]) {
            let mut body = body.to_vec();
            while body.len() % 4 != 0 {
                body.push(0);
            }
            let len = (body.len() + 12) as u32;
            let (t, l) = (self.u32(ty), self.u32(len));
            self.out.extend_from_slice(&t);
            self.out.extend_from_slice(&l);
            self.out.extend_from_slice(&body);
            self.out.extend_from_slice(&l);
        }
        fn shb(&mut self) {
            let mut body = Vec::new();
            body.extend_from_slice(&self.u32(0x1A2B_3C4D));
            body.extend_from_slice(&self.u16(1));
            body.extend_from_slice(&self.u16(0));
            body.extend_from_slice(&[0xFF; 8]); // section length unknown
            self.block(0x0A0D_0D0A, &body);
        }
        /// An IDB with optional if_tsresol and if_tsoffset options.
        fn idb(&mut self, link: u16, snaplen: u32, tsresol: Option<u8>, tsoffset: Option<i64>) {
            let mut body = Vec::new();
            body.extend_from_slice(&self.u16(link));
            body.extend_from_slice(&self.u16(0));
            body.extend_from_slice(&self.u32(snaplen));
            if let Some(r) = tsresol {
                body.extend_from_slice(&self.u16(9));
                body.extend_from_slice(&self.u16(1));
                body.extend_from_slice(&[r, 0, 0, 0]);
            }
            if let Some(o) = tsoffset {
                body.extend_from_slice(&self.u16(14));
                body.extend_from_slice(&self.u16(8));
                let b = if self.big {
                    o.to_be_bytes()
                } else {
                    o.to_le_bytes()
                };
                body.extend_from_slice(&b);
            }
            if tsresol.is_some() || tsoffset.is_some() {
                body.extend_from_slice(&[0; 4]); // opt_endofopt
            }
            self.block(1, &body);
        }
        fn epb(&mut self, if_id: u32, ts_units: u64, data: &[u8], orig_len: u32) {
            let mut body = Vec::new();
            body.extend_from_slice(&self.u32(if_id));
            body.extend_from_slice(&self.u32((ts_units >> 32) as u32));
            body.extend_from_slice(&self.u32(ts_units as u32));
            body.extend_from_slice(&self.u32(data.len() as u32));
            body.extend_from_slice(&self.u32(orig_len));
            body.extend_from_slice(data);
            self.block(6, &body);
        }
        fn spb(&mut self, data: &[u8]) {
            let mut body = self.u32(data.len() as u32).to_vec();
            body.extend_from_slice(data);
            self.block(3, &body);
        }
        fn obsolete_packet(&mut self, if_id: u16, ts_units: u64, data: &[u8]) {
            let mut body = Vec::new();
            body.extend_from_slice(&self.u16(if_id));
            body.extend_from_slice(&self.u16(0));
            body.extend_from_slice(&self.u32((ts_units >> 32) as u32));
            body.extend_from_slice(&self.u32(ts_units as u32));
            body.extend_from_slice(&self.u32(data.len() as u32));
            body.extend_from_slice(&self.u32(data.len() as u32));
            body.extend_from_slice(data);
            self.block(2, &body);
        }
        fn dsb(&mut self, secrets_type: u32, secrets: &[u8]) {
            let mut body = Vec::new();
            body.extend_from_slice(&self.u32(secrets_type));
            body.extend_from_slice(&self.u32(secrets.len() as u32));
            body.extend_from_slice(secrets);
            self.block(10, &body);
        }
    }

    const SEC: i64 = 1_000_000_000;

    #[test]
    fn pcap_micro_and_nano_both_byte_orders() {
        for big in [false, true] {
            for nanos in [false, true] {
                let frac = if nanos { 123_456_789 } else { 123_456_000 };
                let bytes = pcap_file_bytes(
                    big,
                    nanos,
                    1,
                    &[
                        (1_700_000_000, frac, b"abcdef", 6),
                        (1_700_000_001, 0, b"xyz", 60),
                    ],
                );
                let mut r = from_bytes(bytes.clone()).unwrap();
                let frames = read_all(&mut r);
                let what = format!("big={big} nanos={nanos}");
                assert_eq!(frames.len(), 2, "{what}");
                assert_eq!(
                    parts(&frames[0]),
                    (
                        1_700_000_000 * SEC + frac as i64,
                        1,
                        b"abcdef".to_vec(),
                        6,
                        0
                    ),
                    "{what}"
                );
                assert_eq!(
                    parts(&frames[1]),
                    (1_700_000_001 * SEC, 1, b"xyz".to_vec(), 60, 0)
                );
                let st = r.stats();
                assert_eq!(
                    (st.packets, st.bytes, st.truncated_packets),
                    (2, 9, 1),
                    "{what}"
                );
                assert_eq!(st.link_types, vec![LinkType::ETHERNET]);
                assert!(!st.truncated_file && !st.pcapng && !st.gzip);
                assert_eq!(r.file_position(), bytes.len() as u64);
            }
        }
    }

    #[test]
    fn pcap_modified_format_has_24_byte_records() {
        let mut b = Vec::new();
        b.extend_from_slice(&0xA1B2_CD34u32.to_le_bytes());
        b.extend_from_slice(&[
            2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0, 101, 0, 0, 0,
        ]);
        for v in [7u32, 500_000, 3, 3, 0, 0] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(b"IP!");
        let frames = read_all(&mut from_bytes(b).unwrap());
        assert_eq!(
            parts(&frames[0]),
            (7 * SEC + 500_000_000, 101, b"IP!".to_vec(), 3, 0)
        );
    }

    #[test]
    fn pcapng_two_interfaces_of_different_link_and_tsresol() {
        for big in [false, true] {
            let mut ng = Ng::new(big);
            ng.idb(1, 0, None, None); // Ethernet, microseconds (default)
            ng.idb(276, 0, Some(9), Some(100)); // SLL2, nanoseconds, +100 s
            ng.idb(101, 0, Some(0x80 | 10), None); // raw, 2^-10 s
            ng.epb(0, 1_700_000_000_250_000, b"eth", 3);
            ng.epb(1, 1_700_000_000_123_456_789, b"sll2!", 10);
            ng.epb(2, (5 << 10) | 512, b"raw", 3);
            let mut r = from_bytes(ng.out).unwrap();
            let frames = read_all(&mut r);
            assert_eq!(frames.len(), 3);
            assert_eq!(
                parts(&frames[0]),
                (1_700_000_000 * SEC + 250_000_000, 1, b"eth".to_vec(), 3, 0)
            );
            assert_eq!(
                parts(&frames[1]),
                (
                    1_700_000_100 * SEC + 123_456_789,
                    276,
                    b"sll2!".to_vec(),
                    10,
                    0
                )
            );
            assert_eq!(
                parts(&frames[2]),
                (5 * SEC + 500_000_000, 101, b"raw".to_vec(), 3, 0)
            );
            let st = r.stats();
            assert!(st.pcapng);
            assert_eq!(
                st.link_types,
                vec![LinkType(1), LinkType(276), LinkType(101)]
            );
            assert_eq!(st.truncated_packets, 1);
        }
    }

    #[test]
    fn pcapng_simple_and_obsolete_packet_blocks() {
        let mut ng = Ng::new(false);
        ng.idb(1, 4, None, None); // snaplen 4
        ng.epb(0, 2_000_000, b"first", 5);
        ng.spb(b"simple"); // cut to the snaplen, timestamp of the previous packet
        ng.obsolete_packet(0, 3_000_000, b"old");
        ng.epb(7, 0, b"nowhere", 7); // undeclared interface: skipped
        let mut r = from_bytes(ng.out).unwrap();
        let frames = read_all(&mut r);
        assert_eq!(frames.len(), 3);
        assert_eq!(parts(&frames[1]), (2 * SEC, 1, b"simp".to_vec(), 6, 0));
        assert_eq!(parts(&frames[2]), (3 * SEC, 1, b"old".to_vec(), 3, 0));
        assert_eq!(r.skipped_records(), 1);
    }

    #[test]
    fn pcapng_new_section_restarts_interfaces_and_byte_order() {
        let mut ng = Ng::new(false);
        ng.idb(1, 0, None, None);
        ng.epb(0, 1_000_000, b"le", 2);
        let mut be = Ng::new(true);
        be.idb(101, 0, None, None);
        be.epb(0, 2_000_000, b"be", 2);
        ng.out.extend_from_slice(&be.out);
        let frames = read_all(&mut from_bytes(ng.out).unwrap());
        assert_eq!(parts(&frames[0]), (SEC, 1, b"le".to_vec(), 2, 0));
        assert_eq!(parts(&frames[1]), (2 * SEC, 101, b"be".to_vec(), 2, 0));
    }

    #[test]
    fn pcapng_dsb_keylog_collected() {
        let line1 = b"CLIENT_RANDOM 0011 2233";
        let line2 = b"CLIENT_HANDSHAKE_TRAFFIC_SECRET aa bb\n";
        let mut ng = Ng::new(false);
        ng.dsb(0x544C_534B, line1);
        ng.idb(1, 0, None, None);
        ng.epb(0, 0, b"p", 1);
        ng.dsb(0x5353_4844, b"ssh secrets are not TLS"); // another secrets type: ignored
        ng.dsb(0x544C_534B, line2);
        let mut r = from_bytes(ng.out).unwrap();
        assert_eq!(read_all(&mut r).len(), 1);
        let mut want = line1.to_vec();
        want.push(b'\n');
        want.extend_from_slice(line2);
        assert_eq!(r.stats().keylog, want);
    }

    /// The header walk of the key pre-pass reads what the full reader reads, in either byte
    /// order and with the limit, and gives up (for the full read) on what is not a whole file.
    #[test]
    fn pcapng_secrets_walk_reads_what_the_full_reader_reads() {
        for big in [false, true] {
            let mut ng = Ng::new(big);
            ng.dsb(0x544C_534B, b"CLIENT_RANDOM 0011 2233");
            ng.idb(1, 0, None, None);
            ng.epb(0, 0, &[7u8; 1500], 1);
            ng.dsb(0x5353_4844, b"ssh secrets are not TLS");
            ng.epb(0, 1, b"p", 1);
            ng.dsb(0x544C_534B, b"CLIENT_HANDSHAKE_TRAFFIC_SECRET aa bb\n");
            let mut r = from_bytes(ng.out.clone()).unwrap();
            read_all(&mut r);
            let walked = pcapng_secrets(io::Cursor::new(&ng.out), &ReaderLimits::default());
            assert_eq!(
                walked.as_ref(),
                Some(&r.stats().keylog),
                "big endian: {big}"
            );
            assert!(walked.is_some_and(|k| k.starts_with(b"CLIENT_RANDOM")));
            // Cut inside a block: not a whole file.
            let cut = &ng.out[..ng.out.len() - 6];
            assert_eq!(
                pcapng_secrets(io::Cursor::new(cut), &ReaderLimits::default()),
                None
            );
        }
        let mut ng = Ng::new(false);
        ng.dsb(0x544C_534B, &[b'k'; 40]);
        ng.dsb(0x544C_534B, &[b'k'; 40]);
        let limits = ReaderLimits {
            max_keylog_bytes: 60,
            ..ReaderLimits::default()
        };
        let walked = pcapng_secrets(io::Cursor::new(&ng.out), &limits).unwrap();
        assert_eq!(walked.len(), 40);
    }

    /// The bundled pcapng recordings (whose key logs are embedded) give the same key log by
    /// either read.
    #[test]
    fn bundled_pcapng_secrets_are_the_same_either_way() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../captures");
        let mut with_keys = 0;
        for dir in [root.clone(), root.join("training")] {
            for e in std::fs::read_dir(&dir).unwrap() {
                let path = e.unwrap().path();
                if path.extension().is_none_or(|x| x != "pcapng") {
                    continue;
                }
                let mut r = CaptureReader::open(&path, 0).unwrap();
                read_all(&mut r);
                let walked = pcapng_secrets(File::open(&path).unwrap(), &ReaderLimits::default());
                assert_eq!(
                    walked.as_ref(),
                    Some(&r.stats().keylog),
                    "{}",
                    path.display()
                );
                with_keys += usize::from(!r.stats().keylog.is_empty());
            }
        }
        assert!(with_keys >= 3, "{with_keys} recordings with embedded keys");
    }

    #[test]
    fn keylog_limit_drops_and_counts() {
        let mut ng = Ng::new(false);
        ng.dsb(0x544C_534B, &[b'k'; 40]);
        ng.dsb(0x544C_534B, &[b'k'; 40]);
        let limits = ReaderLimits {
            max_keylog_bytes: 60,
            ..ReaderLimits::default()
        };
        let mut r =
            CaptureReader::from_reader(io::Cursor::new(ng.out), Path::new("m"), 0, limits).unwrap();
        assert!(r.next_frame().unwrap().is_none());
        assert_eq!(r.stats().keylog.len(), 40);
        assert_eq!(r.keylog_dropped_bytes(), 40);
    }

    #[test]
    fn empty_pcapng_is_a_valid_capture() {
        let mut r = from_bytes(Ng::new(false).out).unwrap();
        assert!(r.next_frame().unwrap().is_none());
        assert!(!r.stats().truncated_file);
        assert!(r.stats().pcapng);
        assert_eq!(r.stats().packets, 0);
    }

    #[test]
    fn gzip_of_pcap_and_pcapng_detected_by_magic() {
        let dir = tempfile::tempdir().unwrap();
        let pcap = pcap_file_bytes(false, false, 1, &[(1, 0, b"one", 3), (2, 0, b"two", 3)]);
        let mut ng = Ng::new(false);
        ng.idb(1, 0, None, None);
        ng.epb(0, 1_000_000, b"one", 3);
        ng.epb(0, 2_000_000, b"two", 3);
        for (name, plain) in [("a.capture", pcap), ("b.bin", ng.out)] {
            let gz = gzip(&plain);
            let path = write_temp(&dir, name, &gz);
            let mut r = CaptureReader::open(&path, 3).unwrap();
            let frames = read_all(&mut r);
            assert_eq!(
                frames.iter().map(parts).collect::<Vec<_>>(),
                vec![
                    (SEC, 1, b"one".to_vec(), 3, 3),
                    (2 * SEC, 1, b"two".to_vec(), 3, 3)
                ]
            );
            assert!(r.stats().gzip);
            assert!(!r.stats().truncated_file);
            // Progress counts compressed bytes.
            assert_eq!(r.file_position(), gz.len() as u64);
        }
    }

    #[test]
    fn gzip_cut_short_is_a_truncated_file() {
        let pcap = pcap_file_bytes(
            false,
            false,
            1,
            &[(1, 0, &[7u8; 200], 200), (2, 0, &[9u8; 200], 200)],
        );
        let gz = gzip(&pcap);
        let mut r = from_bytes(gz[..gz.len() - 12].to_vec()).unwrap();
        let frames = read_all(&mut r);
        assert!(frames.len() <= 2);
        assert!(r.stats().truncated_file);
    }

    #[test]
    fn file_cut_mid_record_returns_earlier_packets() {
        let pcap = pcap_file_bytes(
            true,
            true,
            1,
            &[(1, 0, b"complete", 8), (2, 0, b"cut-short", 9)],
        );
        for cut in [pcap.len() - 3, pcap.len() - 9 - 10] {
            let mut r = from_bytes(pcap[..cut].to_vec()).unwrap();
            let frames = read_all(&mut r);
            assert_eq!(frames.len(), 1);
            assert_eq!(frames[0].data, b"complete");
            assert!(r.stats().truncated_file);
            assert!(r.next_frame().unwrap().is_none());
        }
        let mut ng = Ng::new(false);
        ng.idb(1, 0, None, None);
        ng.epb(0, 0, b"complete", 8);
        ng.epb(0, 0, b"cut-short", 9);
        let cut = ng.out.len() - 5;
        let mut r = from_bytes(ng.out[..cut].to_vec()).unwrap();
        assert_eq!(read_all(&mut r).len(), 1);
        assert!(r.stats().truncated_file);
        // A pcap header cut short is a truncated capture with no packets.
        let mut r = from_bytes(pcap[..10].to_vec()).unwrap();
        assert!(r.next_frame().unwrap().is_none());
        assert!(r.stats().truncated_file);
    }

    #[test]
    fn not_a_capture() {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in [
            (
                "text.pcap",
                b"GET / HTTP/1.1\r\nHost: example\r\n\r\n".to_vec(),
            ),
            ("empty.pcap", Vec::new()),
            ("one.pcap", vec![0xD4]),
            (
                "badbom.pcapng",
                vec![0x0A, 0x0D, 0x0D, 0x0A, 28, 0, 0, 0, 1, 2, 3, 4, 0, 0, 0, 0],
            ),
            ("zip.gz", gzip(b"just some text, compressed")),
        ] {
            let path = write_temp(&dir, name, &bytes);
            match CaptureReader::open(&path, 0) {
                Err(SourceError::NotACapture { path: p }) => assert_eq!(p, path),
                Err(e) => panic!("{name}: {e}"),
                Ok(_) => panic!("{name}: accepted"),
            }
        }
        match CaptureReader::open(&dir.path().join("missing"), 0) {
            Err(SourceError::Io { .. }) => {}
            _ => panic!("missing file must be an I/O error"),
        }
    }

    #[test]
    fn record_bigger_than_buffer_grows_then_limit_is_corrupt() {
        let big = vec![0x55u8; 5000];
        let pcap = pcap_file_bytes(false, false, 1, &[(1, 0, &big, 5000), (2, 0, b"after", 5)]);
        let small = ReaderLimits {
            buffer_bytes: 64,
            max_record_bytes: 6000,
            ..ReaderLimits::default()
        };
        let mut r =
            CaptureReader::from_reader(io::Cursor::new(pcap.clone()), Path::new("m"), 0, small)
                .unwrap();
        let frames = read_all(&mut r);
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].data, big);
        let tiny = ReaderLimits {
            buffer_bytes: 64,
            max_record_bytes: 1000,
            ..ReaderLimits::default()
        };
        let mut r =
            CaptureReader::from_reader(io::Cursor::new(pcap), Path::new("m"), 0, tiny).unwrap();
        assert!(matches!(r.next_frame(), Err(SourceError::Corrupt { .. })));
        // A reader that failed stays finished.
        assert!(r.next_frame().unwrap().is_none());
        // A hostile pcapng block length is refused without allocating it.
        let mut ng = Ng::new(false);
        ng.out
            .extend_from_slice(&[6, 0, 0, 0, 0xF0, 0xFF, 0xFF, 0x7F, 0, 0, 0, 0]);
        assert!(matches!(
            from_bytes(ng.out).unwrap().next_frame(),
            Err(SourceError::Corrupt { .. })
        ));
    }

    #[test]
    fn merge_two_files_interleaved_by_time() {
        let dir = tempfile::tempdir().unwrap();
        let a = pcap_file_bytes(
            false,
            false,
            1,
            &[(1, 0, b"a1", 2), (3, 0, b"a3", 2), (5, 0, b"a5", 2)],
        );
        let mut ng = Ng::new(false);
        ng.idb(101, 0, None, None);
        for (t, d) in [(2u64, b"b2"), (3, b"b3"), (4, b"b4")] {
            ng.epb(0, t * 1_000_000, d, 2);
        }
        let pa = write_temp(&dir, "a.pcap", &a);
        let pb = write_temp(&dir, "b.pcapng.gz", &gzip(&ng.out));
        let mut m = MergedSource::open(&[&pa, &pb]).unwrap();
        let mut got = Vec::new();
        while let Some(f) = m.next_frame().unwrap() {
            got.push((String::from_utf8(f.data.clone()).unwrap(), f.file));
        }
        let want: Vec<(String, usize)> = [
            ("a1", 0),
            ("b2", 1),
            ("a3", 0),
            ("b3", 1),
            ("b4", 1),
            ("a5", 0),
        ]
        .iter()
        .map(|(s, i)| (s.to_string(), *i))
        .collect();
        assert_eq!(got, want);
        let stats = m.stats();
        assert_eq!(stats.len(), 2);
        assert_eq!(stats[0].packets + stats[1].packets, 6);
        assert!(m.position() > 0);
    }

    #[test]
    fn merge_reports_a_failing_file_once_and_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let good = pcap_file_bytes(false, false, 1, &[(1, 0, b"g1", 2), (2, 0, b"g2", 2)]);
        let mut bad = pcap_file_bytes(false, false, 1, &[(1, 0, b"b1", 2)]);
        // A second record claiming a 100 MB capture length.
        bad.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 6]);
        let pg = write_temp(&dir, "g.pcap", &good);
        let pb = write_temp(&dir, "b.pcap", &bad);
        let mut m = MergedSource::open(&[&pg, &pb]).unwrap();
        let mut data = Vec::new();
        let mut errors = 0;
        loop {
            match m.next_frame() {
                Ok(Some(f)) => data.push(f.data),
                Ok(None) => break,
                Err(SourceError::Corrupt { .. }) => errors += 1,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(errors, 1);
        assert_eq!(data, vec![b"g1".to_vec(), b"b1".to_vec(), b"g2".to_vec()]);
    }

    /// xorshift64 (Marsaglia 2003): deterministic test input without a dependency.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn readers_can_move_to_another_thread() {
        fn assert_send<T: Send>() {}
        assert_send::<CaptureReader>();
        assert_send::<MergedSource>();
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let pcap = pcap_file_bytes(false, false, 1, &[(1, 0, b"abc", 3)]);
        let mut ng = Ng::new(false);
        ng.idb(1, 0, Some(9), None);
        ng.epb(0, 5, b"abcd", 4);
        ng.dsb(0x544C_534B, b"x");
        let prefixes: [&[u8]; 4] = [&[], &pcap[..24], &ng.out[..28], &ng.out];
        for round in 0..3000 {
            let len = (xorshift(&mut seed) % 300) as usize;
            let mut bytes = prefixes[round % prefixes.len()].to_vec();
            if round % 8 == 0 {
                // Mutate a valid file instead of appending noise.
                bytes = ng.out.clone();
                let at = (xorshift(&mut seed) as usize) % bytes.len();
                bytes[at] = xorshift(&mut seed) as u8;
            }
            for _ in 0..len {
                bytes.push(xorshift(&mut seed) as u8);
            }
            let limits = ReaderLimits {
                buffer_bytes: 32,
                max_record_bytes: 4096,
                ..ReaderLimits::default()
            };
            if let Ok(mut r) =
                CaptureReader::from_reader(io::Cursor::new(bytes), Path::new("r"), 0, limits)
            {
                for _ in 0..1000 {
                    match r.next_frame() {
                        Ok(Some(_)) => {}
                        Ok(None) | Err(_) => break,
                    }
                }
            }
        }
    }
}
