//! Spill files: response bodies too large to hold in memory (module zips up to the go
//! command's 500 MiB limit) go to an anonymous temporary file, so that memory stays bounded
//! whatever the capture holds. Lives in `source` because this stage is the one that touches
//! files.

use std::fs::File;
use std::io::{self, Cursor, Read, Seek, SeekFrom, Write};

/// The go command refuses module zips larger than this (cmd/go/internal/modfetch).
pub const MAX_SPILL: u64 = 500 << 20;

/// Bytes of one body past what the parser kept in memory.
pub struct Spill {
    file: Option<File>,
    len: u64,
    /// More than `MAX_SPILL` arrived: the body is not stored whole.
    pub too_large: bool,
    /// The temporary file could not be created or written.
    pub failed: bool,
}

impl Default for Spill {
    fn default() -> Self {
        Spill::new()
    }
}

impl Spill {
    pub fn new() -> Spill {
        Spill {
            file: None,
            len: 0,
            too_large: false,
            failed: false,
        }
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn write(&mut self, data: &[u8]) {
        if self.too_large || self.failed {
            return;
        }
        if self.len.saturating_add(data.len() as u64) > MAX_SPILL {
            self.too_large = true;
            self.file = None;
            return;
        }
        if self.file.is_none() {
            match tempfile::tempfile() {
                Ok(f) => self.file = Some(f),
                Err(_) => {
                    self.failed = true;
                    return;
                }
            }
        }
        if let Some(f) = &mut self.file {
            if f.write_all(data).is_err() {
                self.failed = true;
                self.file = None;
                return;
            }
        }
        self.len += data.len() as u64;
    }

    /// The whole body: `head` (kept in memory by the parser) followed by the spilled bytes.
    /// `None` when the spill is incomplete.
    pub fn reader<'a>(&'a mut self, head: &'a [u8]) -> Option<BodyReader<'a>> {
        if self.too_large || self.failed {
            return None;
        }
        let file = match &mut self.file {
            Some(f) => {
                f.seek(SeekFrom::Start(0)).ok()?;
                Some(f)
            }
            None => None,
        };
        Some(BodyReader {
            head: Cursor::new(head),
            file,
            file_len: self.len,
            pos: 0,
        })
    }
}

/// `head` then the spill file, as one seekable stream (what a zip reader needs).
pub struct BodyReader<'a> {
    head: Cursor<&'a [u8]>,
    file: Option<&'a mut File>,
    file_len: u64,
    pos: u64,
}

impl BodyReader<'_> {
    fn head_len(&self) -> u64 {
        self.head.get_ref().len() as u64
    }
    fn total(&self) -> u64 {
        self.head_len()
            + if self.file.is_some() {
                self.file_len
            } else {
                0
            }
    }
}

impl Read for BodyReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let hl = self.head_len();
        let n = if self.pos < hl {
            self.head.set_position(self.pos);
            self.head.read(buf)?
        } else {
            match &mut self.file {
                Some(f) => {
                    f.seek(SeekFrom::Start(self.pos - hl))?;
                    let room = (self.file_len - (self.pos - hl)).min(buf.len() as u64) as usize;
                    f.read(&mut buf[..room])?
                }
                None => 0,
            }
        };
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for BodyReader<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let total = self.total() as i128;
        let target: i128 = match to {
            SeekFrom::Start(n) => n as i128,
            SeekFrom::End(d) => total + d as i128,
            SeekFrom::Current(d) => self.pos as i128 + d as i128,
        };
        if target < 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before start",
            ));
        }
        self.pos = target as u64;
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_and_spill_read_as_one_stream() {
        let mut s = Spill::new();
        s.write(b"world");
        s.write(b"!");
        let mut r = s.reader(b"hello ").unwrap();
        let mut all = String::new();
        r.read_to_string(&mut all).unwrap();
        assert_eq!(all, "hello world!");
        r.seek(SeekFrom::End(-6)).unwrap();
        let mut tail = String::new();
        r.read_to_string(&mut tail).unwrap();
        assert_eq!(tail, "world!");
        r.seek(SeekFrom::Start(3)).unwrap();
        let mut b = [0u8; 5];
        r.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"lo wo");
    }

    #[test]
    fn no_spill_is_just_the_head() {
        let mut s = Spill::new();
        let mut r = s.reader(b"abc").unwrap();
        let mut v = Vec::new();
        r.read_to_end(&mut v).unwrap();
        assert_eq!(v, b"abc");
    }
}
