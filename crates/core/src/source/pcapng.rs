//! A pcapng writer for live captures (`capture -w`): a Section Header Block, one Interface
//! Description Block per link type as it first appears, an Enhanced Packet Block per frame, and
//! on close the TLS key log as a Decryption Secrets Block. The pcap crate's savefiles are
//! classic pcap (one link type, no secrets), hence this. Block layouts: the pcapng
//! specification (draft-ietf-opsawg-pcapng), sections 4.1 (SHB), 4.2 (IDB), 4.3 (EPB), 4.7
//! (DSB). Everything is written little-endian; readers detect the byte order from the SHB.

use super::{Frame, LinkType};
use std::io::{self, Write};

const SHB_TYPE: u32 = 0x0A0D_0D0A;
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;
const IDB_TYPE: u32 = 0x0000_0001;
const EPB_TYPE: u32 = 0x0000_0006;
const DSB_TYPE: u32 = 0x0000_000A;
/// DSB secrets type for an NSS TLS key log ("TLSK", pcapng 4.7.1).
pub const SECRETS_TLS_KEYLOG: u32 = 0x544c_534b;

const OPT_END: u16 = 0;
const SHB_USERAPPL: u16 = 4;
const IF_NAME: u16 = 2;
const IF_TSRESOL: u16 = 9;

/// Limits of what one block may hold.
#[derive(Clone, Debug)]
pub struct WriterLimits {
    /// A key log larger than this is not embedded (the block length field is 32 bits, and
    /// modtrace's own reader keeps 4 MiB of key log: 64 MiB is far past any real session log
    /// and still a size Wireshark loads).
    pub max_keylog_bytes: usize,
}

impl Default for WriterLimits {
    fn default() -> Self {
        WriterLimits {
            max_keylog_bytes: 64 << 20,
        }
    }
}

/// Writes pcapng to `out` as frames arrive. Buffering and flushing are the caller's (wrap a
/// file in a `BufWriter`, call [`PcapngWriter::flush`] regularly).
pub struct PcapngWriter<W: Write> {
    out: W,
    /// Link type of each interface written so far; the index is the interface id.
    interfaces: Vec<LinkType>,
    interface_name: Option<String>,
    snaplen: u32,
    limits: WriterLimits,
    packets: u64,
}

/// Option bytes: code, length, value padded to 32 bits.
fn push_option(buf: &mut Vec<u8>, code: u16, value: &[u8]) {
    buf.extend_from_slice(&code.to_le_bytes());
    // Option values here are short constants or names; longer ones are cut to fit the field.
    let value = &value[..value.len().min(u16::MAX as usize - 3)];
    buf.extend_from_slice(&(value.len() as u16).to_le_bytes());
    buf.extend_from_slice(value);
    pad(buf);
}

fn pad(buf: &mut Vec<u8>) {
    while buf.len() % 4 != 0 {
        buf.push(0);
    }
}

impl<W: Write> PcapngWriter<W> {
    /// Starts a section; `app` goes into the SHB's shb_userappl option, `interface_name` into
    /// each IDB's if_name, `snaplen` into each IDB.
    pub fn new(
        mut out: W,
        app: &str,
        interface_name: Option<&str>,
        snaplen: u32,
    ) -> io::Result<PcapngWriter<W>> {
        let mut body = Vec::with_capacity(64);
        body.extend_from_slice(&BYTE_ORDER_MAGIC.to_le_bytes());
        body.extend_from_slice(&1u16.to_le_bytes()); // major version
        body.extend_from_slice(&0u16.to_le_bytes()); // minor version
        body.extend_from_slice(&(-1i64).to_le_bytes()); // section length: not known
        push_option(&mut body, SHB_USERAPPL, app.as_bytes());
        push_option(&mut body, OPT_END, &[]);
        write_block(&mut out, SHB_TYPE, &body)?;
        Ok(PcapngWriter {
            out,
            interfaces: Vec::new(),
            interface_name: interface_name.map(str::to_string),
            snaplen,
            limits: WriterLimits::default(),
            packets: 0,
        })
    }

    pub fn with_limits(mut self, limits: WriterLimits) -> PcapngWriter<W> {
        self.limits = limits;
        self
    }

    /// Packets written so far.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    fn interface_id(&mut self, link: LinkType) -> io::Result<u32> {
        if let Some(i) = self.interfaces.iter().position(|l| *l == link) {
            return Ok(i as u32);
        }
        let mut body = Vec::with_capacity(32);
        body.extend_from_slice(&link.0.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes()); // reserved
        body.extend_from_slice(&self.snaplen.to_le_bytes());
        if let Some(name) = &self.interface_name {
            push_option(&mut body, IF_NAME, name.as_bytes());
        }
        // Timestamps in nanoseconds (10^-9 s), modtrace's own resolution.
        push_option(&mut body, IF_TSRESOL, &[9]);
        push_option(&mut body, OPT_END, &[]);
        write_block(&mut self.out, IDB_TYPE, &body)?;
        self.interfaces.push(link);
        Ok(self.interfaces.len() as u32 - 1)
    }

    /// Appends one frame (an IDB first when its link type is new).
    pub fn write_frame(&mut self, frame: &Frame) -> io::Result<()> {
        let caplen = u32::try_from(frame.data.len())
            .ok()
            .filter(|l| *l < u32::MAX - 64)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
        let id = self.interface_id(frame.link)?;
        // Before 1970 cannot be written (the field is unsigned): clamp to 0.
        let ts = u64::try_from(frame.ts.0).unwrap_or(0);
        let mut head = [0u8; 20];
        head[0..4].copy_from_slice(&id.to_le_bytes());
        head[4..8].copy_from_slice(&((ts >> 32) as u32).to_le_bytes());
        head[8..12].copy_from_slice(&(ts as u32).to_le_bytes());
        head[12..16].copy_from_slice(&caplen.to_le_bytes());
        head[16..20].copy_from_slice(&frame.orig_len.max(caplen).to_le_bytes());
        let padding = (4 - frame.data.len() % 4) % 4;
        let total = 12 + 20 + caplen + padding as u32;
        self.out.write_all(&EPB_TYPE.to_le_bytes())?;
        self.out.write_all(&total.to_le_bytes())?;
        self.out.write_all(&head)?;
        self.out.write_all(&frame.data)?;
        self.out.write_all(&[0u8; 3][..padding])?;
        self.out.write_all(&total.to_le_bytes())?;
        self.packets += 1;
        Ok(())
    }

    /// Appends a TLS key log (NSS format) as a Decryption Secrets Block. Returns false (and
    /// writes nothing) when it is empty or over `WriterLimits::max_keylog_bytes`.
    pub fn write_keylog(&mut self, secrets: &[u8]) -> io::Result<bool> {
        if secrets.is_empty() || secrets.len() > self.limits.max_keylog_bytes {
            return Ok(false);
        }
        let mut body = Vec::with_capacity(secrets.len() + 12);
        body.extend_from_slice(&SECRETS_TLS_KEYLOG.to_le_bytes());
        body.extend_from_slice(&(secrets.len() as u32).to_le_bytes());
        body.extend_from_slice(secrets);
        pad(&mut body);
        write_block(&mut self.out, DSB_TYPE, &body)?;
        Ok(true)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn get_ref(&self) -> &W {
        &self.out
    }

    /// Flushes and hands back the output.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// type, total length, body (already padded), total length.
fn write_block(out: &mut impl Write, ty: u32, body: &[u8]) -> io::Result<()> {
    let total = u32::try_from(body.len() + 12)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "block too large"))?;
    out.write_all(&ty.to_le_bytes())?;
    out.write_all(&total.to_le_bytes())?;
    out.write_all(body)?;
    out.write_all(&total.to_le_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::CaptureReader;
    use crate::time::Ts;

    fn frame(ts: Ts, link: LinkType, data: &[u8], orig_len: u32) -> Frame {
        Frame {
            ts,
            link,
            data: data.to_vec(),
            orig_len,
            file: 0,
        }
    }

    fn read_back(bytes: Vec<u8>) -> (Vec<Frame>, crate::source::SourceStats) {
        let mut r = CaptureReader::from_reader(
            std::io::Cursor::new(bytes),
            std::path::Path::new("mem.pcapng"),
            0,
            crate::source::ReaderLimits::default(),
        )
        .expect("a pcapng the reader accepts");
        let mut frames = Vec::new();
        while let Some(f) = r.next_frame().expect("no read error") {
            frames.push(f);
        }
        (frames, r.stats().clone())
    }

    #[test]
    fn frames_of_two_link_types_and_a_keylog_read_back() {
        let mut w = PcapngWriter::new(Vec::new(), "modtrace test", Some("any"), 262_144).unwrap();
        let t1 = Ts::from_secs_nanos(1_795_488_132, 123_456_789);
        let t2 = Ts::from_secs_nanos(1_795_488_133, 1);
        // Odd lengths exercise the padding; the second frame was cut by the snaplen.
        w.write_frame(&frame(t1, LinkType::LINUX_SLL2, &[1, 2, 3, 4, 5], 5))
            .unwrap();
        w.write_frame(&frame(t2, LinkType::ETHERNET, &[9; 7], 1500))
            .unwrap();
        w.write_frame(&frame(t2, LinkType::LINUX_SLL2, &[6; 4], 4))
            .unwrap();
        let keys = b"CLIENT_RANDOM 00112233 4455\n";
        assert!(w.write_keylog(keys).unwrap());
        assert_eq!(w.packets(), 3);
        let bytes = w.into_inner().unwrap();
        let (frames, stats) = read_back(bytes);
        assert_eq!(frames.len(), 3);
        assert!(stats.pcapng);
        assert_eq!(frames[0].ts, t1, "nanosecond timestamps survive");
        assert_eq!(frames[0].link, LinkType::LINUX_SLL2);
        assert_eq!(frames[0].data, [1, 2, 3, 4, 5]);
        assert_eq!(frames[1].link, LinkType::ETHERNET);
        assert_eq!((frames[1].data.len(), frames[1].orig_len), (7, 1500));
        assert!(frames[1].is_truncated());
        assert_eq!(frames[2].link, LinkType::LINUX_SLL2);
        assert_eq!(frames[2].data, [6; 4]);
        assert_eq!(stats.keylog, keys, "the DSB lands in SourceStats::keylog");
        let mut links = stats.link_types.clone();
        links.sort();
        assert_eq!(links, [LinkType::ETHERNET, LinkType::LINUX_SLL2]);
    }

    #[test]
    fn one_idb_per_link_type_and_blocks_are_aligned() {
        let mut w = PcapngWriter::new(Vec::new(), "x", None, 65_535).unwrap();
        for n in 0..5u8 {
            w.write_frame(&frame(Ts(1), LinkType::ETHERNET, &vec![n; n as usize], 0))
                .unwrap();
        }
        let bytes = w.into_inner().unwrap();
        // Walk the blocks: every length is a multiple of 4 and repeated at the block's end.
        let (mut at, mut idbs, mut epbs) = (0usize, 0, 0);
        while at < bytes.len() {
            let ty = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
            let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
            assert_eq!(len % 4, 0);
            assert_eq!(
                &bytes[at + len - 4..at + len],
                &(len as u32).to_le_bytes()[..]
            );
            idbs += (ty == IDB_TYPE) as u32;
            epbs += (ty == EPB_TYPE) as u32;
            at += len;
        }
        assert_eq!(at, bytes.len());
        assert_eq!((idbs, epbs), (1, 5));
        // orig_len 0 is raised to the captured length (a frame is never longer than it was).
        let (frames, _) = read_back(bytes);
        assert_eq!(frames[4].orig_len, 4);
        assert!(!frames[4].is_truncated());
    }

    #[test]
    fn empty_or_oversized_keylog_is_not_written() {
        let mut w = PcapngWriter::new(Vec::new(), "x", None, 100)
            .unwrap()
            .with_limits(WriterLimits {
                max_keylog_bytes: 8,
            });
        let before = w.get_ref().len();
        assert!(!w.write_keylog(b"").unwrap());
        assert!(!w.write_keylog(b"123456789").unwrap());
        assert_eq!(w.get_ref().len(), before);
        assert!(w.write_keylog(b"12345678").unwrap());
        let (frames, stats) = read_back(w.into_inner().unwrap());
        assert!(frames.is_empty());
        assert_eq!(stats.keylog, b"12345678");
    }
}
