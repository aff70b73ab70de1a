//! What the modtrace fuzz targets share: the byte formats their inputs are read in, and the
//! writers `examples/seeds.rs` uses to turn the bundled captures into seeds of those formats.
//!
//! - **Chunks** (the stream targets: `http1`, `http2`, `tls`, `dns`): one reassembled TCP
//!   connection as the flow table hands it on. Each chunk is a tag byte, then for data a
//!   little-endian u16 length and that many bytes (fewer at the end of the input), for a gap a
//!   little-endian u32 length, for an end nothing. Tag bit 0 is the direction (0 to the
//!   server, 1 to the client), bits 1-2 the kind (0 and 3 data, 1 gap, 2 end: FIN or RST).
//! - **Frames** (`link_decode`): a little-endian u16 link type, then frames, each a time step
//!   byte (in 100 ms), a little-endian u16 length and the frame's bytes.
//! - **Items** (`sumdb`): byte strings, each a little-endian u16 length and its bytes.

use modtrace::flow::Dir;
use modtrace::proto::HttpEvent;
use modtrace::time::Ts;

/// One event of a reassembled connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chunk<'a> {
    Data(Dir, &'a [u8]),
    Gap(Dir, u64),
    End(Dir),
}

fn dir_of(tag: u8) -> Dir {
    if tag & 1 == 0 {
        Dir::ToServer
    } else {
        Dir::ToClient
    }
}

fn dir_bit(dir: Dir) -> u8 {
    match dir {
        Dir::ToServer => 0,
        Dir::ToClient => 1,
    }
}

/// Splits `n` bytes off the front of `data` (fewer if it is shorter).
fn take<'a>(data: &mut &'a [u8], n: usize) -> &'a [u8] {
    let (head, tail) = data.split_at(n.min(data.len()));
    *data = tail;
    head
}

fn take_u16(data: &mut &[u8]) -> u16 {
    let b = take(data, 2);
    u16::from_le_bytes([
        b.first().copied().unwrap_or(0),
        b.get(1).copied().unwrap_or(0),
    ])
}

fn take_u32(data: &mut &[u8]) -> u32 {
    let b = take(data, 4);
    let mut a = [0u8; 4];
    a[..b.len()].copy_from_slice(b);
    u32::from_le_bytes(a)
}

/// The chunks of a chunk-format input.
pub fn chunks(mut data: &[u8]) -> Vec<Chunk<'_>> {
    let mut out = Vec::new();
    while let Some((&tag, rest)) = data.split_first() {
        data = rest;
        let dir = dir_of(tag);
        match (tag >> 1) & 3 {
            1 => out.push(Chunk::Gap(dir, u64::from(take_u32(&mut data)))),
            2 => out.push(Chunk::End(dir)),
            _ => {
                let len = usize::from(take_u16(&mut data));
                out.push(Chunk::Data(dir, take(&mut data, len)));
            }
        }
    }
    out
}

/// Appends `data` of direction `dir` as chunks of at most 64 KiB.
pub fn push_data(out: &mut Vec<u8>, dir: Dir, data: &[u8]) {
    for piece in data.chunks(u16::MAX as usize) {
        out.push(dir_bit(dir));
        out.extend_from_slice(&(piece.len() as u16).to_le_bytes());
        out.extend_from_slice(piece);
    }
}

pub fn push_gap(out: &mut Vec<u8>, dir: Dir, len: u32) {
    out.push(dir_bit(dir) | 2);
    out.extend_from_slice(&len.to_le_bytes());
}

pub fn push_end(out: &mut Vec<u8>, dir: Dir) {
    out.push(dir_bit(dir) | 4);
}

/// One frame of a frames-format input: time step (100 ms units) and bytes.
pub struct RawFrame<'a> {
    pub step: u8,
    pub data: &'a [u8],
}

/// The link type and frames of a frames-format input.
pub fn frames(mut data: &[u8]) -> (u16, Vec<RawFrame<'_>>) {
    let link = take_u16(&mut data);
    let mut out = Vec::new();
    while let Some((&step, rest)) = data.split_first() {
        data = rest;
        let len = usize::from(take_u16(&mut data));
        out.push(RawFrame {
            step,
            data: take(&mut data, len),
        });
    }
    (link, out)
}

pub fn push_frame(out: &mut Vec<u8>, step: u8, frame: &[u8]) {
    let frame = &frame[..frame.len().min(u16::MAX as usize)];
    out.push(step);
    out.extend_from_slice(&(frame.len() as u16).to_le_bytes());
    out.extend_from_slice(frame);
}

/// The byte strings of an items-format input.
pub fn items(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let len = usize::from(take_u16(&mut data));
        out.push(take(&mut data, len));
    }
    out
}

pub fn push_item(out: &mut Vec<u8>, item: &[u8]) {
    let item = &item[..item.len().min(u16::MAX as usize)];
    out.extend_from_slice(&(item.len() as u16).to_le_bytes());
    out.extend_from_slice(item);
}

/// The NSS key log the keyed targets use: every secret of the bundled captures, so that the
/// TLS sessions in their seeds decrypt (`tls`, `pipeline`).
pub const CAPTURE_KEYS: &str = concat!(
    include_str!("../../captures/connect-proxy-h2.keys"),
    include_str!("../../captures/goinsecure-goget.keys"),
    include_str!("../../captures/h2-proxy-tls13.keys"),
    include_str!("../../captures/tls-mirror-expired.keys"),
    include_str!("../../captures/tls-mirror-selfsigned.keys"),
    include_str!("../../captures/tls13-verified.keys"),
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_round_trip() {
        let mut b = Vec::new();
        push_data(&mut b, Dir::ToServer, b"GET / HTTP/1.1\r\n\r\n");
        push_gap(&mut b, Dir::ToClient, 70_000);
        push_data(&mut b, Dir::ToClient, b"HTTP/1.1 200 OK\r\n");
        push_end(&mut b, Dir::ToClient);
        assert_eq!(
            chunks(&b),
            [
                Chunk::Data(Dir::ToServer, b"GET / HTTP/1.1\r\n\r\n"),
                Chunk::Gap(Dir::ToClient, 70_000),
                Chunk::Data(Dir::ToClient, b"HTTP/1.1 200 OK\r\n"),
                Chunk::End(Dir::ToClient),
            ]
        );
    }

    #[test]
    fn frames_and_items_round_trip() {
        let mut b = 1u16.to_le_bytes().to_vec();
        push_frame(&mut b, 3, b"abc");
        push_frame(&mut b, 0, b"");
        let (link, f) = frames(&b);
        assert_eq!(link, 1);
        assert_eq!(f.len(), 2);
        assert_eq!((f[0].step, f[0].data), (3, &b"abc"[..]));
        let mut i = Vec::new();
        push_item(&mut i, b"tile/8/0/000");
        push_item(&mut i, b"");
        assert_eq!(items(&i), [&b"tile/8/0/000"[..], b""]);
    }
}

/// The HTTP connection machines (`Http1Conn`, `Http2Conn`) as the stream targets drive them.
pub trait HttpMachine {
    fn data(&mut self, dir: Dir, ts: Ts, packet: u64, bytes: &[u8], out: &mut Vec<HttpEvent>);
    fn gap(&mut self, dir: Dir, ts: Ts, len: u64, out: &mut Vec<HttpEvent>);
    fn end(&mut self, dir: Dir, ts: Ts, packet: u64, out: &mut Vec<HttpEvent>);
    fn finish(&mut self, ts: Ts, out: &mut Vec<HttpEvent>);
}

macro_rules! http_machine {
    ($t:ty) => {
        impl HttpMachine for $t {
            fn data(&mut self, dir: Dir, ts: Ts, p: u64, b: &[u8], out: &mut Vec<HttpEvent>) {
                self.on_data(dir, ts, p, b, out)
            }
            fn gap(&mut self, dir: Dir, ts: Ts, len: u64, out: &mut Vec<HttpEvent>) {
                self.on_gap(dir, ts, len, out)
            }
            fn end(&mut self, dir: Dir, ts: Ts, p: u64, out: &mut Vec<HttpEvent>) {
                self.on_end(dir, ts, p, out)
            }
            fn finish(&mut self, ts: Ts, out: &mut Vec<HttpEvent>) {
                <$t>::finish(self, ts, out)
            }
        }
    };
}
http_machine!(modtrace::proto::http1::Http1Conn);
http_machine!(modtrace::proto::http2::Http2Conn);

/// Feeds one connection in the chunk format to `conn` (a microsecond per chunk) and checks
/// that no kept response body is over `max_body_kept`.
pub fn drive_http(conn: &mut impl HttpMachine, data: &[u8], max_body_kept: usize) {
    let mut out = Vec::new();
    for (i, c) in chunks(data).into_iter().enumerate() {
        let (ts, packet) = (Ts(i as i64 * 1000), i as u64 + 1);
        match c {
            Chunk::Data(dir, bytes) => conn.data(dir, ts, packet, bytes, &mut out),
            Chunk::Gap(dir, len) => conn.gap(dir, ts, len, &mut out),
            Chunk::End(dir) => conn.end(dir, ts, packet, &mut out),
        }
    }
    conn.finish(Ts(i64::MAX), &mut out);
    for ev in &out {
        if let HttpEvent::Exchange(x) = ev {
            if let Some(r) = &x.response {
                assert!(
                    r.body.data.len() <= max_body_kept,
                    "body kept past the limit"
                );
            }
        }
    }
}

/// Go's checksum-database key and the lab's (captures/lab-sumdb.vkey).
pub fn sumdb_verifiers() -> &'static [modtrace::gomod::note::Verifier] {
    use modtrace::gomod::note::Verifier;
    static V: std::sync::OnceLock<Vec<Verifier>> = std::sync::OnceLock::new();
    V.get_or_init(|| {
        let mut v = vec![Verifier::go_sumdb()];
        if let Ok(lab) = Verifier::parse(include_str!("../../captures/lab-sumdb.vkey").trim()) {
            v.push(lab);
        }
        v
    })
}
