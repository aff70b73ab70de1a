//! A response body being received: counts wire bytes, removes gzip/deflate content codings as
//! the bytes stream in (flate2 write-side decoders, fed in small steps so no step can expand
//! far), keeps only the first `max_body_kept` decoded bytes, and stops at a compression bomb.

use crate::proto::Body;
use flate2::write::{DeflateDecoder, MultiGzDecoder, ZlibDecoder};
use std::io::Write;

/// Compressed bytes handed to a decoder per `write` call. flate2's writer decodes into a 32 KiB
/// buffer per call, so output per step stays near 32 KiB whatever the ratio, and the bomb check
/// runs between steps.
const DECODE_STEP: usize = 4096;

/// Content codings stacked on one body that are decoded (`gzip, gzip` exists in the wild:
/// suricata-verify bug-2511). More layers are kept raw.
const MAX_CODING_LAYERS: usize = 3;

enum Layer {
    Gzip(MultiGzDecoder<Vec<u8>>),
    Zlib(ZlibDecoder<Vec<u8>>),
    RawDeflate(DeflateDecoder<Vec<u8>>),
    /// `deflate` is meant to be zlib (RFC 9110 8.4.1.2) but servers send raw deflate too
    /// (Zeek http/missing-zlib-header.pcap); the first two bytes tell which.
    DeflateSniff(Vec<u8>),
}

/// Why decoding stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Corrupt,
    Bomb,
}

impl Layer {
    fn for_coding(coding: &str) -> Option<Layer> {
        match coding {
            "gzip" | "x-gzip" => Some(Layer::Gzip(MultiGzDecoder::new(Vec::new()))),
            "deflate" => Some(Layer::DeflateSniff(Vec::new())),
            _ => None,
        }
    }

    /// Decodes `input`, passing output on to `next` as it is produced.
    fn feed(
        &mut self,
        input: &[u8],
        next: &mut dyn FnMut(&[u8]) -> Result<(), Stop>,
    ) -> Result<(), Stop> {
        if let Layer::DeflateSniff(held) = self {
            held.extend_from_slice(input);
            if held.len() < 2 {
                return Ok(());
            }
            let held = std::mem::take(held);
            *self = Layer::deflate_for(&held);
            return self.feed(&held, next);
        }
        for step in input.chunks(DECODE_STEP) {
            let mut rest = step;
            while !rest.is_empty() {
                let n = self.write_some(rest)?;
                self.drain(next)?;
                if n == 0 {
                    // The stream ended; trailing bytes after it are ignored.
                    return Ok(());
                }
                rest = rest.get(n..).unwrap_or(&[]);
            }
        }
        Ok(())
    }

    /// RFC 1950 2.2: a zlib stream starts with CMF (method 8 = deflate) and FLG, and
    /// CMF*256+FLG is a multiple of 31.
    fn deflate_for(first: &[u8]) -> Layer {
        let cmf = first.first().copied().unwrap_or(0);
        let flg = first.get(1).copied().unwrap_or(0);
        if cmf & 0x0f == 8 && u16::from_be_bytes([cmf, flg]) % 31 == 0 {
            Layer::Zlib(ZlibDecoder::new(Vec::new()))
        } else {
            Layer::RawDeflate(DeflateDecoder::new(Vec::new()))
        }
    }

    fn write_some(&mut self, input: &[u8]) -> Result<usize, Stop> {
        let r = match self {
            Layer::Gzip(d) => d.write(input),
            Layer::Zlib(d) => d.write(input),
            Layer::RawDeflate(d) => d.write(input),
            Layer::DeflateSniff(_) => return Ok(input.len()),
        };
        r.map_err(|_| Stop::Corrupt)
    }

    fn output(&mut self) -> Option<&mut Vec<u8>> {
        match self {
            Layer::Gzip(d) => Some(d.get_mut()),
            Layer::Zlib(d) => Some(d.get_mut()),
            Layer::RawDeflate(d) => Some(d.get_mut()),
            Layer::DeflateSniff(_) => None,
        }
    }

    /// Hands what the decoder wrote so far to `next`, reusing the buffer.
    fn drain(&mut self, next: &mut dyn FnMut(&[u8]) -> Result<(), Stop>) -> Result<(), Stop> {
        let Some(out) = self.output() else {
            return Ok(());
        };
        if out.is_empty() {
            return Ok(());
        }
        let mut produced = std::mem::take(out);
        let r = next(&produced);
        produced.clear();
        if let Some(out) = self.output() {
            *out = produced;
        }
        r
    }

    /// End of input: flushes the decoder; an error means the stream was cut or corrupt.
    fn finish(&mut self, next: &mut dyn FnMut(&[u8]) -> Result<(), Stop>) -> Result<(), Stop> {
        if let Layer::DeflateSniff(held) = self {
            let held = std::mem::take(held);
            if held.is_empty() {
                return Ok(());
            }
            *self = Layer::deflate_for(&held);
            self.feed(&held, next)?;
        }
        let r = match self {
            Layer::Gzip(d) => d.try_finish(),
            Layer::Zlib(d) => d.try_finish(),
            Layer::RawDeflate(d) => d.try_finish(),
            Layer::DeflateSniff(_) => Ok(()),
        };
        self.drain(next)?;
        r.map_err(|_| Stop::Corrupt)
    }
}

/// Feeds `input` through `layers` (innermost decoding first) into `out`.
fn feed_layers(
    layers: &mut [Layer],
    input: &[u8],
    out: &mut dyn FnMut(&[u8]) -> Result<(), Stop>,
) -> Result<(), Stop> {
    match layers.split_first_mut() {
        None => out(input),
        Some((first, rest)) => first.feed(input, &mut |produced| feed_layers(rest, produced, out)),
    }
}

fn finish_layers(
    layers: &mut [Layer],
    out: &mut dyn FnMut(&[u8]) -> Result<(), Stop>,
) -> Result<(), Stop> {
    let Some((first, rest)) = layers.split_first_mut() else {
        return Ok(());
    };
    first.finish(&mut |produced| feed_layers(rest, produced, out))?;
    finish_layers(rest, out)
}

enum Mode {
    /// Bytes are the content (no coding, or one we do not decode).
    Identity,
    Decoding(Vec<Layer>),
    /// A gap: the rest cannot be decoded or kept contiguously; only wire bytes are counted.
    Stopped,
    /// Framing only (a response nobody asked for): count, keep nothing.
    Discard,
}

/// What the sink noticed that deserves an Anomaly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SinkNote {
    Bomb,
    DecodeError,
}

pub(crate) struct BodySink {
    body: Body,
    mode: Mode,
    /// Raw bytes kept while decoding, to fall back to when decoding fails.
    raw: Vec<u8>,
    max_kept: usize,
    max_ratio: u64,
    gap: bool,
    /// When set, decoded bytes past `max_kept` are collected here for the caller to pass on
    /// (`HttpEvent::BodyOverflow`) instead of being dropped.
    overflow: Option<Vec<u8>>,
}

impl BodySink {
    /// Passes decoded bytes past the keep limit on (`take_overflow`) instead of dropping them.
    pub(crate) fn with_overflow(mut self) -> BodySink {
        self.overflow = Some(Vec::new());
        self
    }

    /// Decoded bytes past the keep limit since the last call (empty unless `with_overflow`).
    pub(crate) fn take_overflow(&mut self) -> Vec<u8> {
        self.overflow
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// A sink for a body with the given content codings (outermost last, `identity` removed).
    pub(crate) fn new(codings: &[String], max_kept: usize, max_ratio: u64) -> BodySink {
        let layers: Option<Vec<Layer>> = if codings.is_empty() || codings.len() > MAX_CODING_LAYERS
        {
            None
        } else {
            // Decode the last-applied coding first (RFC 9110 8.4).
            codings.iter().rev().map(|c| Layer::for_coding(c)).collect()
        };
        let mode = match layers {
            Some(l) if !l.is_empty() => Mode::Decoding(l),
            _ => Mode::Identity,
        };
        BodySink {
            body: Body::default(),
            mode,
            raw: Vec::new(),
            max_kept,
            max_ratio,
            gap: false,
            overflow: None,
        }
    }

    /// Counts bytes only.
    pub(crate) fn discard() -> BodySink {
        BodySink {
            body: Body::default(),
            mode: Mode::Discard,
            raw: Vec::new(),
            max_kept: 0,
            max_ratio: 0,
            gap: false,
            overflow: None,
        }
    }

    /// Bytes held in memory (for the bounded-memory tests).
    #[cfg(test)]
    pub(crate) fn held_bytes(&self) -> usize {
        self.body.data.len() + self.raw.len()
    }

    /// Body bytes after de-chunking.
    pub(crate) fn write(&mut self, data: &[u8]) -> Option<SinkNote> {
        let n = data.len() as u64;
        self.body.wire_len = self.body.wire_len.saturating_add(n);
        match &mut self.mode {
            Mode::Discard | Mode::Stopped => None,
            Mode::Identity => {
                let passed = keep(
                    &mut self.body.data,
                    data,
                    self.max_kept,
                    self.overflow.as_mut(),
                );
                self.body.overflow = self.body.overflow.saturating_add(passed);
                self.body.len = self.body.len.saturating_add(n);
                None
            }
            Mode::Decoding(layers) => {
                let _ = keep(&mut self.raw, data, self.max_kept, None);
                let (body, max_kept, max_ratio) = (&mut self.body, self.max_kept, self.max_ratio);
                let overflow = &mut self.overflow;
                let r = feed_layers(layers, data, &mut |out| {
                    emit(body, out, max_kept, max_ratio, overflow.as_mut())
                });
                match r {
                    Ok(()) => None,
                    Err(stop) => Some(self.fail(stop)),
                }
            }
        }
    }

    /// Decoding failed: fall back to the raw bytes (the `Body::decode_error` contract).
    fn fail(&mut self, stop: Stop) -> SinkNote {
        self.mode = Mode::Identity;
        self.body.data = std::mem::take(&mut self.raw);
        self.body.len = self.body.wire_len;
        self.body.decode_error = true;
        match stop {
            Stop::Bomb => SinkNote::Bomb,
            Stop::Corrupt => SinkNote::DecodeError,
        }
    }

    /// `len` body bytes were never seen.
    pub(crate) fn gap(&mut self, len: u64) {
        self.body.wire_len = self.body.wire_len.saturating_add(len);
        self.gap = true;
        if !matches!(self.mode, Mode::Discard) {
            self.mode = Mode::Stopped;
            self.raw = Vec::new();
        }
    }

    /// The body ended; `complete` when it ended as framed. A gap always makes it incomplete.
    /// With `with_overflow`, call `take_overflow` after it for the last decoded bytes.
    pub(crate) fn finish(&mut self, complete: bool) -> (Body, Option<SinkNote>) {
        let complete = complete && !self.gap;
        let mut note = None;
        if let Mode::Decoding(layers) = &mut self.mode {
            let (body, max_kept, max_ratio) = (&mut self.body, self.max_kept, self.max_ratio);
            let overflow = &mut self.overflow;
            let r = finish_layers(layers, &mut |out| {
                emit(body, out, max_kept, max_ratio, overflow.as_mut())
            });
            match r {
                Ok(()) => {}
                Err(Stop::Bomb) => note = Some(self.fail(Stop::Bomb)),
                // A cut-off stream is expected when the body itself was cut off.
                Err(Stop::Corrupt) if complete && self.body.wire_len > 0 => {
                    note = Some(self.fail(Stop::Corrupt))
                }
                Err(Stop::Corrupt) => {}
            }
        }
        self.mode = Mode::Stopped;
        let mut body = std::mem::take(&mut self.body);
        body.complete = complete;
        body.kept_all = body.data.len() as u64 == body.len;
        (body, note)
    }
}

/// Keeps what fits under `max_kept`; the rest goes to `overflow` when given (returning how
/// many bytes went there), else is dropped.
fn keep(dst: &mut Vec<u8>, data: &[u8], max_kept: usize, overflow: Option<&mut Vec<u8>>) -> u64 {
    let room = max_kept.saturating_sub(dst.len()).min(data.len());
    let (kept, rest) = data.split_at(room);
    dst.extend_from_slice(kept);
    match overflow {
        Some(o) => {
            o.extend_from_slice(rest);
            rest.len() as u64
        }
        None => 0,
    }
}

/// Decoded output: counted, kept up to the limit, and checked against the expansion limit
/// (Suricata http2 "compression bomb" idea: decoded size relative to wire size).
fn emit(
    body: &mut Body,
    out: &[u8],
    max_kept: usize,
    max_ratio: u64,
    overflow: Option<&mut Vec<u8>>,
) -> Result<(), Stop> {
    body.len = body.len.saturating_add(out.len() as u64);
    if body.len > body.wire_len.saturating_mul(max_ratio) {
        return Err(Stop::Bomb);
    }
    let passed = keep(&mut body.data, out, max_kept, overflow);
    body.overflow = body.overflow.saturating_add(passed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
    use flate2::Compression;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn codings(c: &[&str]) -> Vec<String> {
        c.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn identity_keeps_up_to_limit() {
        let mut s = BodySink::new(&[], 4, 100);
        s.write(b"hello");
        s.write(b" world");
        let (b, note) = s.finish(true);
        assert_eq!(
            (b.data.as_slice(), b.len, b.wire_len, b.kept_all, b.complete),
            (&b"hell"[..], 11, 11, false, true)
        );
        assert_eq!(note, None);
    }

    #[test]
    fn gzip_decoded_across_byte_writes() {
        let z = gzip(b"module example.com/m\n");
        let mut s = BodySink::new(&codings(&["gzip"]), 1000, 100);
        for b in &z {
            assert_eq!(s.write(std::slice::from_ref(b)), None);
        }
        let (b, note) = s.finish(true);
        assert_eq!(note, None);
        assert_eq!(b.data, b"module example.com/m\n");
        assert_eq!(
            (b.len, b.wire_len, b.decode_error, b.kept_all),
            (21, z.len() as u64, false, true)
        );
    }

    #[test]
    fn deflate_zlib_and_raw() {
        let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
        z.write_all(b"zlib body").unwrap();
        let mut s = BodySink::new(&codings(&["deflate"]), 100, 100);
        s.write(&z.finish().unwrap());
        assert_eq!(s.finish(true).0.data, b"zlib body");

        let mut r = DeflateEncoder::new(Vec::new(), Compression::default());
        r.write_all(b"raw body").unwrap();
        let mut s = BodySink::new(&codings(&["deflate"]), 100, 100);
        s.write(&r.finish().unwrap());
        let (b, note) = s.finish(true);
        assert_eq!((b.data.as_slice(), note), (&b"raw body"[..], None));
    }

    #[test]
    fn stacked_gzip() {
        let twice = gzip(&gzip(b"inner"));
        let mut s = BodySink::new(&codings(&["gzip", "gzip"]), 100, 100);
        s.write(&twice);
        assert_eq!(s.finish(true).0.data, b"inner");
    }

    #[test]
    fn bad_gzip_keeps_raw() {
        let mut s = BodySink::new(&codings(&["gzip"]), 100, 100);
        let note = s.write(b"this is not gzip at all");
        let (b, end_note) = s.finish(true);
        assert_eq!(note.or(end_note), Some(SinkNote::DecodeError));
        assert!(b.decode_error);
        assert_eq!(b.data, b"this is not gzip at all");
        assert_eq!(b.len, b.wire_len);
    }

    #[test]
    fn truncated_gzip_is_error_only_when_body_complete() {
        let z = gzip(b"some text that is long enough to matter");
        let cut = &z[..z.len() - 6];
        let mut s = BodySink::new(&codings(&["gzip"]), 100, 100);
        s.write(cut);
        assert!(s.finish(true).0.decode_error);
        let mut s = BodySink::new(&codings(&["gzip"]), 100, 100);
        s.write(cut);
        let (b, note) = s.finish(false);
        assert!(!b.decode_error && !b.complete && note.is_none());
    }

    #[test]
    fn bomb_stops_decoding() {
        let z = gzip(&vec![0u8; 4 << 20]);
        assert!(z.len() < 8 << 10);
        let mut s = BodySink::new(&codings(&["gzip"]), 1 << 10, 100);
        let mut note = None;
        for c in z.chunks(1000) {
            note = note.or(s.write(c));
        }
        let (b, end_note) = s.finish(true);
        assert_eq!(note.or(end_note), Some(SinkNote::Bomb));
        assert!(b.decode_error);
        assert_eq!(b.len, z.len() as u64);
        assert!(b.data.len() <= 1 << 10);
    }

    #[test]
    fn gap_stops_and_marks_incomplete() {
        let mut s = BodySink::new(&[], 100, 100);
        s.write(b"abc");
        s.gap(10);
        s.write(b"def");
        let (b, _) = s.finish(true);
        assert_eq!(
            (b.data.as_slice(), b.wire_len, b.complete),
            (&b"abc"[..], 16, false)
        );
    }
}
