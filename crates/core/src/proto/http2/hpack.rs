//! One direction's HPACK decoding context (RFC 7541) on top of loona-hpack, with the limits
//! and the table-size bookkeeping HTTP/2 adds (RFC 9113 4.3, 6.5.2).
//!
//! Each direction of a connection has its own context: header blocks sent by the client are
//! decoded with one table, those sent by the server with the other. The decoding side's
//! SETTINGS_HEADER_TABLE_SIZE bounds the table its peer's encoder may use; a smaller value takes
//! effect when the encoder acknowledges the SETTINGS (its SETTINGS ACK marks where in its byte
//! stream it applied them), and the encoder then signals its table size with a dynamic table
//! size update at the start of a block (RFC 7541 4.2, 6.3). Like nghttp2's
//! `nghttp2_hd_inflate_change_table_size`, a decrease shrinks the table at once (evicting), an
//! increase waits for the encoder's size update.

use loona_hpack::decoder::DecoderError;
use std::collections::VecDeque;

/// RFC 9113 6.5.2: SETTINGS_HEADER_TABLE_SIZE starts at 4096 octets.
pub const DEFAULT_TABLE_SIZE: usize = 4096;

/// RFC 7541 4.1: each entry counts its name and value lengths plus 32; RFC 9113 6.5.2 counts a
/// header list the same way.
pub const ENTRY_OVERHEAD: usize = 32;

/// A decoded header block. Fields past the list-size limit are decoded (the table must follow
/// the encoder) but not kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderList {
    /// Name and value as on the wire (HPACK strings are octets, RFC 7541 5.2).
    pub fields: Vec<(Vec<u8>, Vec<u8>)>,
    /// RFC 9113 6.5.2 size of the whole list, kept fields or not.
    pub size: usize,
    /// Some fields were dropped by the list-size limit.
    pub truncated: bool,
    /// Dynamic table size updates at the start of the block, in order (RFC 7541 6.3).
    pub size_updates: Vec<usize>,
    /// A size update above the decoding side's SETTINGS_HEADER_TABLE_SIZE (RFC 7541 6.3: a
    /// decoding error for an endpoint; decoded anyway here, within the table-size cap).
    pub above_settings: Option<(usize, usize)>,
}

/// Why a block could not be decoded. The context is then out of step with the encoder's and
/// no later block of the direction can be trusted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HpackError {
    /// A dynamic table size update above the table-size cap (`Http2Limits::max_hpack_table_size`).
    TableSizeOverCap { size: usize, cap: usize },
    /// The block is not valid HPACK (index out of range, truncated integer or string, bad
    /// Huffman code, size update at the end).
    Invalid(String),
}

impl std::fmt::Display for HpackError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HpackError::TableSizeOverCap { size, cap } => write!(
                f,
                "HPACK dynamic table size update to {size} above the {cap}-byte limit"
            ),
            HpackError::Invalid(e) => write!(f, "invalid HPACK block: {e}"),
        }
    }
}

fn describe(e: &DecoderError) -> String {
    e.to_string()
}

pub struct HeaderDecoder {
    decoder: loona_hpack::Decoder<'static>,
    /// Largest table size accepted at all (the limit); loona-hpack refuses size updates above it.
    cap: usize,
    /// Fields kept per block (RFC 9113 6.5.2 size).
    max_list: usize,
    /// The table's current maximum size as the encoder last signalled it (or as shrunk by an
    /// acknowledged SETTINGS).
    table_max: usize,
    /// The decoding side's acknowledged SETTINGS_HEADER_TABLE_SIZE.
    settings_max: usize,
    /// SETTINGS_HEADER_TABLE_SIZE values sent by the decoding side and not yet acknowledged by
    /// the encoder, oldest first (bounded by `max_pending`).
    pending: VecDeque<usize>,
    max_pending: usize,
}

impl HeaderDecoder {
    pub fn new(cap: usize, max_list: usize, max_pending: usize) -> HeaderDecoder {
        let mut decoder = loona_hpack::Decoder::new();
        decoder.set_max_allowed_table_size(cap);
        let table_max = DEFAULT_TABLE_SIZE.min(cap);
        // Never above the allowed size: loona-hpack asserts that.
        decoder.set_max_table_size(table_max);
        HeaderDecoder {
            decoder,
            cap,
            max_list,
            table_max,
            settings_max: DEFAULT_TABLE_SIZE,
            pending: VecDeque::new(),
            max_pending: max_pending.max(1),
        }
    }

    /// The decoding side sent SETTINGS_HEADER_TABLE_SIZE = `size`.
    pub fn settings_sent(&mut self, size: u32) {
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        if self.pending.len() >= self.max_pending {
            // Too many unacknowledged SETTINGS: treat the oldest as applied (conservative: a
            // decrease still shrinks the table).
            self.settings_acked();
        }
        self.pending.push_back(size);
    }

    /// The encoder acknowledged the oldest outstanding SETTINGS.
    pub fn settings_acked(&mut self) {
        let Some(size) = self.pending.pop_front() else {
            return;
        };
        self.settings_max = size;
        if size < self.table_max {
            // RFC 7541 4.2: the encoder must shrink to at most this; evict now like nghttp2.
            self.table_max = size.min(self.cap);
            self.decoder.set_max_table_size(self.table_max);
        }
    }

    /// The current maximum table size.
    pub fn table_max(&self) -> usize {
        self.table_max
    }

    /// Decodes one complete header block.
    pub fn decode(&mut self, block: &[u8]) -> Result<HeaderList, HpackError> {
        let mut list = HeaderList::default();
        // Size updates come first in a block (RFC 7541 4.2); read them to check them against
        // the cap and the settings before loona-hpack applies them.
        let mut at = 0usize;
        while let Some(&b) = block.get(at) {
            if b & 0xe0 != 0x20 {
                break;
            }
            let Some((size, used)) = decode_integer(block.get(at..).unwrap_or(&[]), 5) else {
                return Err(HpackError::Invalid(
                    "truncated dynamic table size update".into(),
                ));
            };
            if size > self.cap {
                return Err(HpackError::TableSizeOverCap {
                    size,
                    cap: self.cap,
                });
            }
            let allowed = self
                .pending
                .iter()
                .copied()
                .fold(self.settings_max, usize::max);
            if size > allowed && list.above_settings.is_none() {
                list.above_settings = Some((size, allowed));
            }
            list.size_updates.push(size);
            at = at.saturating_add(used);
        }
        let max_list = self.max_list;
        let HeaderList {
            fields,
            size,
            truncated,
            ..
        } = &mut list;
        let r = self.decoder.decode_with_cb(block, |name, value| {
            let field = name
                .len()
                .saturating_add(value.len())
                .saturating_add(ENTRY_OVERHEAD);
            *size = size.saturating_add(field);
            if *size > max_list {
                *truncated = true;
            } else {
                fields.push((name.into_owned(), value.into_owned()));
            }
        });
        match r {
            Ok(()) => {
                if let Some(&last) = list.size_updates.last() {
                    self.table_max = last;
                }
                Ok(list)
            }
            // Only reachable for a size update that is not at the start of the block.
            Err(DecoderError::InvalidMaxDynamicSize) => Err(HpackError::Invalid(format!(
                "dynamic table size update above the {}-byte limit",
                self.cap
            ))),
            Err(e) => Err(HpackError::Invalid(describe(&e))),
        }
    }
}

/// RFC 7541 5.1 integer with an N-bit prefix: `(value, bytes used)`, or `None` when truncated or
/// longer than 5 continuation bytes (values fit in 32 bits).
pub fn decode_integer(buf: &[u8], prefix: u8) -> Option<(usize, usize)> {
    let mask = u8::try_from((1u16 << prefix.min(8)).saturating_sub(1)).unwrap_or(u8::MAX);
    let first = buf.first()? & mask;
    if first < mask {
        return Some((usize::from(first), 1));
    }
    let mut value = usize::from(mask);
    for (i, &b) in buf.iter().skip(1).take(5).enumerate() {
        let shift = u32::try_from(i).ok()?.checked_mul(7)?;
        let part = usize::from(b & 0x7f).checked_shl(shift)?;
        value = value.checked_add(part)?;
        if b & 0x80 == 0 {
            return Some((value, i.checked_add(2)?));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_examples_rfc7541_c1() {
        // C.1.1: 10 in a 5-bit prefix; C.1.2: 1337 in a 5-bit prefix; C.1.3: 42 at an octet
        // boundary.
        assert_eq!(decode_integer(&[0x0a], 5), Some((10, 1)));
        assert_eq!(decode_integer(&[0x1f, 0x9a, 0x0a], 5), Some((1337, 3)));
        assert_eq!(decode_integer(&[0x2a], 8), Some((42, 1)));
        assert_eq!(decode_integer(&[0x1f, 0x9a], 5), None);
        assert_eq!(
            decode_integer(&[0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], 5),
            None
        );
        assert_eq!(decode_integer(&[], 5), None);
    }

    #[test]
    fn size_update_over_cap_is_refused_before_decoding() {
        let mut d = HeaderDecoder::new(1024, 1 << 16, 4);
        // 001xxxxx, 5-bit prefix: 2048 = 31 + 2017, 2017 = 0x61 | 0x0f << 7.
        let block = [0x3f, 0xe1, 0x0f, 0x82];
        assert_eq!(
            d.decode(&block),
            Err(HpackError::TableSizeOverCap {
                size: 2048,
                cap: 1024
            })
        );
    }

    #[test]
    fn size_update_above_settings_is_flagged_but_decoded() {
        let mut d = HeaderDecoder::new(65536, 1 << 16, 4);
        // 8192 = 31 + 8161: 8161 = 0x1fe1 -> 0xe1 0x3f
        let l = d.decode(&[0x3f, 0xe1, 0x3f, 0x82]).unwrap();
        assert_eq!(l.size_updates, vec![8192]);
        assert_eq!(l.above_settings, Some((8192, 4096)));
        assert_eq!(l.fields, vec![(b":method".to_vec(), b"GET".to_vec())]);
        assert_eq!(d.table_max(), 8192);
        // Once the decoding side allowed it, no flag.
        d.settings_sent(8192);
        d.settings_acked();
        let l = d.decode(&[0x3f, 0xe1, 0x3f, 0x82]).unwrap();
        assert_eq!(l.above_settings, None);
    }

    #[test]
    fn acknowledged_decrease_shrinks_the_table() {
        let mut d = HeaderDecoder::new(65536, 1 << 16, 4);
        // Literal with incremental indexing, new name "a" value "b" (entry of 34 octets).
        let l = d.decode(&[0x40, 0x01, b'a', 0x01, b'b']).unwrap();
        assert_eq!(l.fields, vec![(b"a".to_vec(), b"b".to_vec())]);
        assert_eq!(d.decode(&[0xbe]).unwrap().fields.len(), 1);
        d.settings_sent(0);
        // Not yet acknowledged: the entry is still there.
        assert_eq!(d.decode(&[0xbe]).unwrap().fields.len(), 1);
        d.settings_acked();
        assert_eq!(d.table_max(), 0);
        assert!(matches!(d.decode(&[0xbe]), Err(HpackError::Invalid(_))));
    }

    #[test]
    fn list_size_limit_drops_fields_but_keeps_decoding() {
        let mut d = HeaderDecoder::new(4096, 79, 4);
        // Three indexed fields: :method GET (42), :path / (38), :scheme http (43).
        let l = d.decode(&[0x82, 0x84, 0x86]).unwrap();
        assert_eq!(l.fields.len(), 1);
        assert!(l.truncated);
        assert_eq!(l.size, 42 + 38 + 43);
    }
}
