//! HTTP/2 frame layout (RFC 9113 4.1 and 6): the 9-byte frame header and the payload layouts
//! the connection machine needs. Pure: bytes in, values out; every read is bounds-checked.

/// RFC 9113 3.4: the client connection preface.
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// RFC 9113 4.1: length (24 bits), type, flags, reserved bit and stream id (31 bits).
pub const FRAME_HEADER_LEN: usize = 9;

/// RFC 9113 4.2: SETTINGS_MAX_FRAME_SIZE starts at 2^14 and may not exceed 2^24-1.
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 1 << 14;
pub const MAX_FRAME_SIZE_LIMIT: u32 = (1 << 24) - 1;

/// Frame flags (RFC 9113 6). The same bit means different things on different frame types.
pub mod flags {
    /// DATA, HEADERS: the last frame the sender sends on the stream.
    pub const END_STREAM: u8 = 0x01;
    /// SETTINGS, PING: an acknowledgement.
    pub const ACK: u8 = 0x01;
    /// HEADERS, PUSH_PROMISE, CONTINUATION: the header block ends in this frame.
    pub const END_HEADERS: u8 = 0x04;
    /// DATA, HEADERS, PUSH_PROMISE: a pad-length octet starts the payload.
    pub const PADDED: u8 = 0x08;
    /// HEADERS: stream dependency and weight (5 octets) precede the fragment.
    pub const PRIORITY: u8 = 0x20;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameType {
    Data,
    Headers,
    Priority,
    RstStream,
    Settings,
    PushPromise,
    Ping,
    Goaway,
    WindowUpdate,
    Continuation,
    /// RFC 9113 5.5: unknown types are ignored.
    Unknown(u8),
}

impl FrameType {
    pub fn from_u8(t: u8) -> FrameType {
        match t {
            0x0 => FrameType::Data,
            0x1 => FrameType::Headers,
            0x2 => FrameType::Priority,
            0x3 => FrameType::RstStream,
            0x4 => FrameType::Settings,
            0x5 => FrameType::PushPromise,
            0x6 => FrameType::Ping,
            0x7 => FrameType::Goaway,
            0x8 => FrameType::WindowUpdate,
            0x9 => FrameType::Continuation,
            other => FrameType::Unknown(other),
        }
    }

    pub fn to_u8(self) -> u8 {
        match self {
            FrameType::Data => 0x0,
            FrameType::Headers => 0x1,
            FrameType::Priority => 0x2,
            FrameType::RstStream => 0x3,
            FrameType::Settings => 0x4,
            FrameType::PushPromise => 0x5,
            FrameType::Ping => 0x6,
            FrameType::Goaway => 0x7,
            FrameType::WindowUpdate => 0x8,
            FrameType::Continuation => 0x9,
            FrameType::Unknown(t) => t,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            FrameType::Data => "DATA",
            FrameType::Headers => "HEADERS",
            FrameType::Priority => "PRIORITY",
            FrameType::RstStream => "RST_STREAM",
            FrameType::Settings => "SETTINGS",
            FrameType::PushPromise => "PUSH_PROMISE",
            FrameType::Ping => "PING",
            FrameType::Goaway => "GOAWAY",
            FrameType::WindowUpdate => "WINDOW_UPDATE",
            FrameType::Continuation => "CONTINUATION",
            FrameType::Unknown(_) => "unknown",
        }
    }

    /// RFC 9113 6: frames that belong to stream 0 (connection control) rather than a stream.
    pub fn is_connection_level(self) -> bool {
        matches!(
            self,
            FrameType::Settings | FrameType::Ping | FrameType::Goaway
        )
    }

    /// RFC 9113 6: frames that must name a stream.
    pub fn needs_stream(self) -> bool {
        matches!(
            self,
            FrameType::Data
                | FrameType::Headers
                | FrameType::Priority
                | FrameType::RstStream
                | FrameType::PushPromise
                | FrameType::Continuation
        )
    }

    /// The payload length a fixed-size frame must have (RFC 9113 6.3, 6.4, 6.7, 6.9).
    pub fn fixed_len(self) -> Option<u32> {
        match self {
            FrameType::Priority => Some(5),
            FrameType::RstStream | FrameType::WindowUpdate => Some(4),
            FrameType::Ping => Some(8),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    pub len: u32,
    pub kind: FrameType,
    pub flags: u8,
    /// The reserved bit is ignored (RFC 9113 4.1: "MUST be ignored when receiving").
    pub stream: u32,
}

impl FrameHeader {
    /// Parses the first 9 bytes of `b`; `None` when fewer are given.
    pub fn parse(b: &[u8]) -> Option<FrameHeader> {
        let h = b.get(..FRAME_HEADER_LEN)?;
        let (len, rest) = h.split_at(3);
        let len = u32::from_be_bytes([0, *len.first()?, *len.get(1)?, *len.get(2)?]);
        let kind = FrameType::from_u8(*rest.first()?);
        let flags = *rest.get(1)?;
        let stream = be_u32(rest.get(2..6)?)? & 0x7fff_ffff;
        Some(FrameHeader {
            len,
            kind,
            flags,
            stream,
        })
    }

    /// The 9 header bytes (for building frames).
    pub fn to_bytes(&self) -> [u8; FRAME_HEADER_LEN] {
        let l = self.len.to_be_bytes();
        let s = (self.stream & 0x7fff_ffff).to_be_bytes();
        [
            l[1],
            l[2],
            l[3],
            self.kind.to_u8(),
            self.flags,
            s[0],
            s[1],
            s[2],
            s[3],
        ]
    }

    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// Why a payload does not fit its frame type's layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadError {
    /// Fewer bytes than the fixed fields need.
    Truncated { need: usize, have: usize },
    /// RFC 9113 6.1, 6.2, 6.6: padding at least as long as the rest of the payload.
    PadTooLong { pad: usize, room: usize },
}

impl std::fmt::Display for PayloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PayloadError::Truncated { need, have } => {
                write!(f, "payload of {have} bytes, at least {need} needed")
            }
            PayloadError::PadTooLong { pad, room } => {
                write!(f, "{pad} bytes of padding in {room} bytes of payload")
            }
        }
    }
}

pub fn be_u32(b: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(..4)?.try_into().ok()?))
}

/// Removes the pad-length octet and the padding (RFC 9113 6.1) when PADDED is set.
pub fn strip_padding(flags: u8, payload: &[u8]) -> Result<&[u8], PayloadError> {
    if flags & self::flags::PADDED == 0 {
        return Ok(payload);
    }
    let (&pad, rest) = payload
        .split_first()
        .ok_or(PayloadError::Truncated { need: 1, have: 0 })?;
    let pad = usize::from(pad);
    let keep = rest
        .len()
        .checked_sub(pad)
        .ok_or(PayloadError::PadTooLong {
            pad,
            room: rest.len(),
        })?;
    rest.get(..keep).ok_or(PayloadError::PadTooLong {
        pad,
        room: rest.len(),
    })
}

/// RFC 9113 6.2: the header block fragment of a HEADERS payload (padding and the priority
/// fields removed).
pub fn headers_fragment(flags: u8, payload: &[u8]) -> Result<&[u8], PayloadError> {
    let body = strip_padding(flags, payload)?;
    if flags & self::flags::PRIORITY == 0 {
        return Ok(body);
    }
    body.get(5..).ok_or(PayloadError::Truncated {
        need: 5,
        have: body.len(),
    })
}

/// RFC 9113 6.6: the promised stream id and header block fragment of a PUSH_PROMISE payload.
pub fn push_promise(flags: u8, payload: &[u8]) -> Result<(u32, &[u8]), PayloadError> {
    let body = strip_padding(flags, payload)?;
    let promised = be_u32(body).ok_or(PayloadError::Truncated {
        need: 4,
        have: body.len(),
    })? & 0x7fff_ffff;
    Ok((promised, body.get(4..).unwrap_or(&[])))
}

/// RFC 9113 6.5.1: identifier/value pairs of 6 octets; a trailing partial pair is not returned.
pub fn settings(payload: &[u8]) -> impl Iterator<Item = (u16, u32)> + '_ {
    payload.chunks_exact(6).filter_map(|c| {
        let id = u16::from_be_bytes([*c.first()?, *c.get(1)?]);
        Some((id, be_u32(c.get(2..)?)?))
    })
}

/// RFC 9113 6.5.2 setting identifiers.
pub mod setting {
    pub const HEADER_TABLE_SIZE: u16 = 0x1;
    pub const ENABLE_PUSH: u16 = 0x2;
    pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
    pub const MAX_FRAME_SIZE: u16 = 0x5;
    pub const MAX_HEADER_LIST_SIZE: u16 = 0x6;
}

/// RFC 9113 6.8: last stream id, error code, debug data.
pub fn goaway(payload: &[u8]) -> Result<(u32, u32, &[u8]), PayloadError> {
    let truncated = PayloadError::Truncated {
        need: 8,
        have: payload.len(),
    };
    let last = be_u32(payload).ok_or(truncated)? & 0x7fff_ffff;
    let code = be_u32(payload.get(4..).unwrap_or(&[])).ok_or(truncated)?;
    Ok((last, code, payload.get(8..).unwrap_or(&[])))
}

/// RFC 9113 7 error code names.
pub fn error_code_name(code: u32) -> String {
    let name = match code {
        0x0 => "NO_ERROR",
        0x1 => "PROTOCOL_ERROR",
        0x2 => "INTERNAL_ERROR",
        0x3 => "FLOW_CONTROL_ERROR",
        0x4 => "SETTINGS_TIMEOUT",
        0x5 => "STREAM_CLOSED",
        0x6 => "FRAME_SIZE_ERROR",
        0x7 => "REFUSED_STREAM",
        0x8 => "CANCEL",
        0x9 => "COMPRESSION_ERROR",
        0xa => "CONNECT_ERROR",
        0xb => "ENHANCE_YOUR_CALM",
        0xc => "INADEQUATE_SECURITY",
        0xd => "HTTP_1_1_REQUIRED",
        other => return format!("error code 0x{other:x}"),
    };
    name.to_string()
}

/// Builds one frame (tests and fuzz seeds).
pub fn build(kind: FrameType, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX) & MAX_FRAME_SIZE_LIMIT;
    let mut out = FrameHeader {
        len,
        kind,
        flags,
        stream,
    }
    .to_bytes()
    .to_vec();
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_roundtrip_and_reserved_bit_ignored() {
        let h =
            FrameHeader::parse(&[0x00, 0x01, 0x02, 0x01, 0x25, 0x80, 0x00, 0x00, 0x03]).unwrap();
        assert_eq!(
            h,
            FrameHeader {
                len: 258,
                kind: FrameType::Headers,
                flags: 0x25,
                stream: 3
            }
        );
        assert!(h.has(flags::END_STREAM) && h.has(flags::END_HEADERS) && h.has(flags::PRIORITY));
        assert!(!h.has(flags::PADDED));
        assert_eq!(FrameHeader::parse(&h.to_bytes()), Some(h));
        assert_eq!(FrameHeader::parse(&[0; 8]), None);
        assert_eq!(
            FrameHeader::parse(&[0xff, 0xff, 0xff, 0xee, 0, 0, 0, 0, 0])
                .unwrap()
                .kind,
            FrameType::Unknown(0xee)
        );
    }

    #[test]
    fn headers_padding_and_priority() {
        // pad 2, priority 5 bytes, fragment "ab", padding "xx".
        let p = [2, 0x80, 0, 0, 1, 15, b'a', b'b', b'x', b'x'];
        assert_eq!(
            headers_fragment(flags::PADDED | flags::PRIORITY, &p),
            Ok(&b"ab"[..])
        );
        assert_eq!(headers_fragment(0, b"ab"), Ok(&b"ab"[..]));
        assert_eq!(
            headers_fragment(flags::PADDED, &[5, 1, 2]),
            Err(PayloadError::PadTooLong { pad: 5, room: 2 })
        );
        assert_eq!(
            headers_fragment(flags::PADDED, &[]),
            Err(PayloadError::Truncated { need: 1, have: 0 })
        );
        assert_eq!(
            headers_fragment(flags::PRIORITY, &[0, 0, 0]),
            Err(PayloadError::Truncated { need: 5, have: 3 })
        );
    }

    #[test]
    fn push_promise_goaway_settings() {
        assert_eq!(
            push_promise(0, &[0x80, 0, 0, 2, 0x82]),
            Ok((2, &[0x82][..]))
        );
        assert!(push_promise(0, &[0, 0]).is_err());
        assert_eq!(
            goaway(&[0, 0, 0, 5, 0, 0, 0, 1, b'd']),
            Ok((5, 1, &b"d"[..]))
        );
        assert!(goaway(&[0, 0, 0, 5, 0]).is_err());
        let s: Vec<_> = settings(&[0, 1, 0, 0, 0x10, 0, 0, 3, 0, 0, 0, 100, 9]).collect();
        assert_eq!(s, vec![(1, 4096), (3, 100)]);
        assert_eq!(error_code_name(8), "CANCEL");
        assert_eq!(error_code_name(0x42), "error code 0x42");
    }
}
