//! Handshake messages reassembled from record bodies (RFC 8446 5.1), one per direction of the
//! clear record layer and one per decrypted direction: the same buffer for both.

use crate::proto::tls::parser;

/// Handshake messages reassembled from record bodies, in the clear or decrypted: a message may
/// span records and a record may carry several (RFC 8446 5.1). A message over the limit is
/// skipped by its length (the limit's reason: `TlsLimits::max_handshake_message`).
#[derive(Clone, Debug, Default)]
pub(super) struct HandshakeStream {
    /// Bytes not yet forming a whole message; the first `pos` of them are already read.
    /// Messages are read at `pos` and the buffer is drained once per record ([`Self::compact`]),
    /// so many small messages in one record cost linear time, not a copy of the rest each.
    buf: Vec<u8>,
    pos: usize,
    /// Bytes still to drop (the rest of an over-limit message).
    skip: usize,
}

/// The next item of a [`HandshakeStream`].
pub(super) enum Handshake {
    Message {
        msg_type: u8,
        body: Vec<u8>,
    },
    /// A message over the limit: the buffer was dropped and its rest will be skipped.
    TooBig {
        msg_type: u8,
        len: usize,
    },
}

impl HandshakeStream {
    /// Appends a record's handshake bytes, after the rest of a skipped message.
    pub(super) fn push(&mut self, data: &[u8]) {
        let n = self.skip.min(data.len());
        self.skip = self.skip.saturating_sub(n);
        self.buf.extend_from_slice(data.get(n..).unwrap_or(&[]));
    }

    /// The next whole message, or `None` until more bytes come.
    pub(super) fn next(&mut self, max_msg: usize) -> Option<Handshake> {
        let (msg_type, len) = self
            .buf
            .get(self.pos..)
            .and_then(parser::parse_handshake_header)?;
        let available = self.buf.len().saturating_sub(self.pos);
        if len > max_msg {
            self.skip = len.saturating_sub(available.saturating_sub(4));
            self.clear();
            return Some(Handshake::TooBig { msg_type, len });
        }
        let total = len.saturating_add(4);
        if available < total {
            return None;
        }
        let body = self
            .buf
            .get(self.pos.saturating_add(4)..self.pos.saturating_add(total))
            .unwrap_or(&[])
            .to_vec();
        self.pos = self.pos.saturating_add(total);
        Some(Handshake::Message { msg_type, body })
    }

    /// Drops the bytes already read.
    pub(super) fn compact(&mut self) {
        let read = self.pos.min(self.buf.len());
        self.buf.drain(..read);
        self.pos = 0;
    }

    /// Drops everything buffered; whether unread bytes were there.
    pub(super) fn clear(&mut self) -> bool {
        let unread = self.buf.len() > self.pos;
        self.buf.clear();
        self.pos = 0;
        unread
    }

    /// Drops everything and its memory (a stopped direction).
    pub(super) fn release(&mut self) {
        self.buf = Vec::new();
        self.pos = 0;
    }
}
