//! The `h1:` hash (golang.org/x/mod/sumdb/dirhash `Hash1`) of module zips and `.mod` files,
//! computed exactly as the go command does.
//!
//! Hash1: for each file, sorted bytewise by name, the line `hex::encode(SHA-256(content)) + "  " +
//! name + "\n"`; the hash is `"h1:" + base64(SHA-256(all lines))`. Names with `\n` are refused.
//! For a zip (dirhash `HashZip`) the files are the zip's entries, directories included (Go's
//! `archive/zip` opens a `name/` entry as empty content), with a repeated name hashed once per
//! entry, each time with the content of the last entry of that name. For a `.mod` file
//! (modfetch `goModSum`) it is one file named `go.mod`.
//!
//! The zip is read by a reader written to follow Go's `archive/zip` (reader.go) rather than a
//! general zip crate: the hash must come out as Go's does on hostile zips too (raw name bytes,
//! no Unicode-path extra field, Go's end-of-directory search and base-offset repair, its size
//! and CRC checks, duplicate names kept).

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{BufReader, Read, Seek, SeekFrom};

/// The go command refuses a module zip larger than this (modfetch proxy.go `Zip`:
/// codehost.MaxZipFile, 500 MiB), and x/mod/zip bounds the extracted content by the same.
pub const MAX_ZIP_FILE: u64 = 500 << 20;

/// `h1:` hash of a 1-file tree holding an empty go.mod (modfetch `emptyGoModHash`): an old go
/// command bug wrote it into go.sum files, and the go command drops such lines.
pub const EMPTY_GO_MOD_H1: &str = "h1:G7mAYYxgmS0lVkHyy2hEOLQCFB0DlQFTMLWggykrydY=";

/// Limits on hashing a zip from the wire. Hitting one is an error (`TooLarge`,
/// `TooManyEntries`), never unbounded work.
#[derive(Clone, Debug)]
pub struct H1Limits {
    /// Zip bytes: the go command refuses a larger download (codehost.MaxZipFile), so no zip
    /// it hashed is larger.
    pub max_zip_bytes: u64,
    /// Declared uncompressed bytes of one entry. Go reads no more than an entry declares, so
    /// checking the declaration bounds the work; 500 MiB as x/mod/zip's MaxZipFile.
    pub max_entry_bytes: u64,
    /// Declared uncompressed bytes over all entries hashed: a zip bomb stops here. x/mod/zip
    /// refuses to extract more than 500 MiB, so a module the go command can use never needs more.
    pub max_total_bytes: u64,
    /// Central-directory entries. Real modules have at most tens of thousands of files; a
    /// million bounds the memory for names and offsets.
    pub max_entries: usize,
    /// Bytes of entry names kept (for sorting). 64 MiB is ~100 times what a huge module needs.
    pub max_name_bytes: usize,
    /// Declared uncompressed bytes hashed per byte of zip, past `expansion_allowance`: a zip
    /// bomb stops here long before `max_total_bytes`. DEFLATE expands at most ~1032 times, and
    /// entries may share one compressed body (Go's archive/zip does not forbid overlaps), so
    /// without it 64 KiB of zip made the reader inflate and hash 500 MiB (seconds of work).
    /// Source code compresses 3 to 10 times; 200 is HTTP's `max_gzip_ratio`.
    pub max_expansion_ratio: u64,
    /// Uncompressed bytes always allowed whatever the zip's size (tens of milliseconds of
    /// hashing), so that small, very compressible modules are still hashed.
    pub expansion_allowance: u64,
}

impl Default for H1Limits {
    fn default() -> Self {
        H1Limits {
            max_zip_bytes: MAX_ZIP_FILE,
            max_entry_bytes: MAX_ZIP_FILE,
            max_total_bytes: MAX_ZIP_FILE,
            max_entries: 1 << 20,
            max_name_bytes: 64 << 20,
            max_expansion_ratio: 200,
            expansion_allowance: 16 << 20,
        }
    }
}

/// Errors of Go's `archive/zip` reader, by name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ZipError {
    /// `zip.ErrFormat` ("zip: not a valid zip file"), with where it was found.
    #[error("zip: not a valid zip file ({0})")]
    Format(&'static str),
    /// `zip.ErrAlgorithm` with the compression method.
    #[error("zip: unsupported compression algorithm {0}")]
    Algorithm(u16),
    /// `zip.ErrChecksum`.
    #[error("zip: checksum error")]
    Checksum,
    /// `io.ErrUnexpectedEOF` / `io.EOF`: data ends early.
    #[error("unexpected EOF ({0})")]
    UnexpectedEof(&'static str),
    /// A corrupt DEFLATE stream (Go: `flate.CorruptInputError`).
    #[error("corrupt deflate stream: {0}")]
    Deflate(String),
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum H1Error {
    /// dirhash: "filenames with newlines are not supported".
    #[error("dirhash: filenames with newlines are not supported ({})", String::from_utf8_lossy(.0))]
    NewlineInName(Vec<u8>),
    #[error("{what} is over the limit of {limit} bytes")]
    TooLarge { what: &'static str, limit: u64 },
    #[error("zip has more than {0} entries")]
    TooManyEntries(usize),
    #[error(transparent)]
    Zip(#[from] ZipError),
    /// The caller's reader failed (not the zip's content).
    #[error("reading the body: {0}")]
    Io(String),
}

fn io_err(e: std::io::Error) -> H1Error {
    H1Error::Io(e.to_string())
}

/// Streams a reader into SHA-256.
fn sha256_reader(r: &mut dyn Read) -> std::io::Result<[u8; 32]> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => h.update(buf.get(..n).unwrap_or(&[])),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(h.finalize().into())
}

/// The Hash1 summary over `(name, SHA-256 of content)` pairs (dirhash `Hash1` once the
/// contents are hashed): names sorted bytewise; a name with `\n` is refused.
pub fn hash1_from_digests(mut files: Vec<(Vec<u8>, [u8; 32])>) -> Result<String, H1Error> {
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let mut h = Sha256::new();
    for (name, digest) in &files {
        if name.contains(&b'\n') {
            return Err(H1Error::NewlineInName(name.clone()));
        }
        h.update(hex::encode(digest).as_bytes());
        h.update(b"  ");
        h.update(name);
        h.update(b"\n");
    }
    use base64::Engine;
    let sum: [u8; 32] = h.finalize().into();
    Ok(format!(
        "h1:{}",
        base64::engine::general_purpose::STANDARD.encode(sum)
    ))
}

/// dirhash `Hash1` over `(name, content)` pairs.
pub fn hash1<N: AsRef<[u8]>, R: Read>(
    files: impl IntoIterator<Item = (N, R)>,
) -> Result<String, H1Error> {
    let mut digests = Vec::new();
    for (name, mut content) in files {
        let name = name.as_ref();
        if name.contains(&b'\n') {
            return Err(H1Error::NewlineInName(name.to_vec()));
        }
        digests.push((name.to_vec(), sha256_reader(&mut content).map_err(io_err)?));
    }
    hash1_from_digests(digests)
}

/// The `h1:` hash of a `.mod` body (modfetch `goModSum`: one file named `go.mod`).
pub fn mod_h1(body: &[u8]) -> String {
    let digest: [u8; 32] = Sha256::digest(body).into();
    // One fixed name without a newline: cannot fail.
    hash1_from_digests(vec![(b"go.mod".to_vec(), digest)]).unwrap_or_default()
}

/// One central-directory entry of a zip.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZipEntry {
    /// The name's bytes as stored (Go's `File.Name`: no charset conversion).
    pub name: Vec<u8>,
    pub method: u16,
    pub flags: u16,
    pub crc32: u32,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    /// Offset of the local header, base offset applied (Go's `headerOffset`, an int64).
    header_offset: i64,
}

/// A zip's `h1:` hash and what it was computed over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZipHash {
    pub h1: String,
    /// Entries in central-directory order, duplicates included.
    pub entries: Vec<ZipEntry>,
    /// Uncompressed bytes hashed (entries shadowed by a later duplicate are not read).
    pub bytes_hashed: u64,
}

/// The `h1:` hash of a module zip, as `go mod download` prints in `Sum`, with the default
/// limits.
pub fn zip_h1<R: Read + Seek>(reader: R) -> Result<String, H1Error> {
    hash_zip(reader, &H1Limits::default()).map(|z| z.h1)
}

/// The first entry not under `<module>@<version>/`: the go command refuses such a zip before
/// hashing it (modfetch `downloadZip`: "zip for %s has unexpected file %s").
pub fn unexpected_entry<'a>(
    entries: &'a [ZipEntry],
    module: &str,
    version: &str,
) -> Option<&'a [u8]> {
    let prefix = format!("{module}@{version}/");
    entries
        .iter()
        .find(|e| !e.name.starts_with(prefix.as_bytes()))
        .map(|e| e.name.as_slice())
}

/// Hashes a module zip read from `reader` (a spilled body: `std::fs::File` or a `Cursor`)
/// as dirhash `HashZip` does.
pub fn hash_zip<R: Read + Seek>(mut reader: R, limits: &H1Limits) -> Result<ZipHash, H1Error> {
    let size = reader.seek(SeekFrom::End(0)).map_err(io_err)?;
    if size > limits.max_zip_bytes {
        return Err(H1Error::TooLarge {
            what: "zip",
            limit: limits.max_zip_bytes,
        });
    }
    let mut z = ZipSource {
        r: &mut reader,
        size,
    };
    let entries = read_central_directory(&mut z, limits)?;
    // The work allowed for this zip: its size times the expansion ratio, at least the allowance.
    let max_total = size
        .saturating_mul(limits.max_expansion_ratio)
        .max(limits.expansion_allowance)
        .min(limits.max_total_bytes);

    // HashZip: zfiles[name] keeps the last entry of each name; Hash1 opens each listed name.
    let mut last: HashMap<&[u8], usize> = HashMap::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        last.insert(e.name.as_slice(), i);
    }
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by(|a, b| entries[*a].name.cmp(&entries[*b].name));
    let mut digest_of: HashMap<usize, [u8; 32]> = HashMap::new();
    let mut total: u64 = 0;
    let mut digests = Vec::with_capacity(entries.len());
    for i in order {
        let name = &entries[i].name;
        if name.contains(&b'\n') {
            return Err(H1Error::NewlineInName(name.clone()));
        }
        let src = *last.get(name.as_slice()).unwrap_or(&i);
        let digest = match digest_of.get(&src) {
            Some(d) => *d,
            None => {
                let e = &entries[src];
                if e.uncompressed_size > limits.max_entry_bytes {
                    return Err(H1Error::TooLarge {
                        what: "zip entry (uncompressed)",
                        limit: limits.max_entry_bytes,
                    });
                }
                total = total.saturating_add(e.uncompressed_size);
                if total > max_total {
                    return Err(H1Error::TooLarge {
                        what: if max_total < limits.max_total_bytes {
                            "zip content (uncompressed) for the zip's size"
                        } else {
                            "zip content (uncompressed)"
                        },
                        limit: max_total,
                    });
                }
                let d = z.hash_entry(e)?;
                digest_of.insert(src, d);
                d
            }
        };
        digests.push((name.clone(), digest));
    }
    let h1 = hash1_from_digests(digests)?;
    Ok(ZipHash {
        h1,
        entries,
        bytes_hashed: total,
    })
}

// --- Go archive/zip, reader side -------------------------------------------------------

const FILE_HEADER_SIGNATURE: u32 = 0x0403_4b50;
const DIRECTORY_HEADER_SIGNATURE: u32 = 0x0201_4b50;
const DIRECTORY_END_SIGNATURE: u32 = 0x0605_4b50;
const DIRECTORY64_LOC_SIGNATURE: u32 = 0x0706_4b50;
const DIRECTORY64_END_SIGNATURE: u32 = 0x0606_4b50;
const DATA_DESCRIPTOR_SIGNATURE: u32 = 0x0807_4b50;
const FILE_HEADER_LEN: usize = 30;
const DIRECTORY_HEADER_LEN: usize = 46;
const DIRECTORY_END_LEN: usize = 22;
const DIRECTORY64_LOC_LEN: usize = 20;
const DIRECTORY64_END_LEN: usize = 56;
const ZIP64_EXTRA_ID: u16 = 0x0001;
const METHOD_STORE: u16 = 0;
const METHOD_DEFLATE: u16 = 8;

fn le16(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2)
        .map_or(0, |s| u16::from_le_bytes([s[0], s[1]]))
}

fn le32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn le64(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8).map_or(0, |s| {
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        u64::from_le_bytes(a)
    })
}

/// Outcome of a Go `io.ReadFull`: all bytes, none (`io.EOF`), or some (`ErrUnexpectedEOF`).
enum Full {
    Ok,
    Eof,
    Partial,
}

fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> Result<Full, H1Error> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(buf.get_mut(got..).unwrap_or(&mut [])) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err(e)),
        }
    }
    Ok(if got == buf.len() {
        Full::Ok
    } else if got == 0 {
        Full::Eof
    } else {
        Full::Partial
    })
}

/// The zip body with Go's `ReaderAt` view: reads at an offset, short reads are errors.
struct ZipSource<'a, R: Read + Seek> {
    r: &'a mut R,
    size: u64,
}

impl<R: Read + Seek> ZipSource<'_, R> {
    /// `ReadAt` of exactly `buf.len()` bytes at `off` (Go: an error for a negative offset or a
    /// short read).
    fn read_at(&mut self, off: i64, buf: &mut [u8], what: &'static str) -> Result<(), H1Error> {
        let off = u64::try_from(off).map_err(|_| ZipError::Format(what))?;
        self.r.seek(SeekFrom::Start(off)).map_err(io_err)?;
        match read_full(self.r, buf)? {
            Full::Ok => Ok(()),
            _ => Err(ZipError::UnexpectedEof(what).into()),
        }
    }

    /// A reader over `len` bytes from `off` (Go's `io.NewSectionReader`); it ends early at the
    /// end of the body. None for an offset Go's `ReadAt` would refuse.
    fn section(&mut self, off: i64, len: u64) -> Result<std::io::Take<&mut R>, H1Error> {
        let off = u64::try_from(off).map_err(|_| ZipError::Format("negative data offset"))?;
        self.r.seek(SeekFrom::Start(off)).map_err(io_err)?;
        Ok((&mut *self.r).take(len))
    }

    /// dirhash opens the entry and hashes its content (archive/zip `File.Open` plus the
    /// `checksumReader` checks).
    fn hash_entry(&mut self, e: &ZipEntry) -> Result<[u8; 32], H1Error> {
        // findBodyOffset: the local header's signature and name/extra lengths.
        let mut lh = [0u8; FILE_HEADER_LEN];
        self.read_at(e.header_offset, &mut lh, "local file header")?;
        if le32(&lh, 0) != FILE_HEADER_SIGNATURE {
            return Err(ZipError::Format("local file header signature").into());
        }
        let body_offset =
            (FILE_HEADER_LEN + le16(&lh, 26) as usize + le16(&lh, 28) as usize) as i64;
        if e.name.last() == Some(&b'/') {
            // Directories read as empty; one declaring content fails with ErrFormat.
            if e.uncompressed_size != 0 {
                return Err(ZipError::Format("directory with data").into());
            }
            return Ok(Sha256::digest(b"").into());
        }
        if e.method != METHOD_STORE && e.method != METHOD_DEFLATE {
            return Err(ZipError::Algorithm(e.method).into());
        }
        let data_at = e.header_offset.wrapping_add(body_offset);
        // Go converts CompressedSize64 to int64; a negative length reads nothing.
        let csize = i64::try_from(e.compressed_size).map_or(0, |n| n.max(0) as u64);
        let declared = e.uncompressed_size;
        let mut hasher = Sha256::new();
        // crc32fast, not flate2::Crc: the zlib-rs backend computes it byte-wise there, a
        // tenth of h1's time on the bulk benchmark.
        let mut crc = crc32fast::Hasher::new();
        let mut nread: u64 = 0;
        {
            let section = self.section(data_at, csize)?;
            let mut src: Box<dyn Read + '_> = if e.method == METHOD_DEFLATE {
                Box::new(flate2::read::DeflateDecoder::new(section))
            } else {
                Box::new(section)
            };
            let mut buf = vec![0u8; 64 << 10];
            loop {
                let n = match src.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => {
                        return Err(ZipError::UnexpectedEof("deflate data").into())
                    }
                    Err(err) => return Err(ZipError::Deflate(err.to_string()).into()),
                };
                let chunk = buf.get(..n).unwrap_or(&[]);
                hasher.update(chunk);
                crc.update(chunk);
                nread = nread.saturating_add(n as u64);
                if nread > declared {
                    return Err(ZipError::Format("more data than the declared size").into());
                }
            }
        }
        if nread != declared {
            return Err(ZipError::UnexpectedEof("less data than the declared size").into());
        }
        let crc = crc.finalize();
        if e.flags & 0x8 != 0 {
            // readDataDescriptor: optional signature, then a CRC that must equal the central
            // directory's; the sizes are ignored.
            let mut dd = [0u8; 16];
            let at = data_at.wrapping_add(csize as i64);
            let mut s = self.section(at, 16)?;
            let got = match read_full(&mut s, &mut dd[..4])? {
                Full::Ok => {
                    let skip = if le32(&dd, 0) == DATA_DESCRIPTOR_SIGNATURE {
                        0
                    } else {
                        4
                    };
                    matches!(read_full(&mut s, &mut dd[skip..12])?, Full::Ok)
                }
                _ => false,
            };
            if !got {
                return Err(ZipError::UnexpectedEof("data descriptor").into());
            }
            // Either way the CRC is now in the first four bytes.
            if le32(&dd, 0) != e.crc32 || crc != e.crc32 {
                return Err(ZipError::Checksum.into());
            }
        } else if e.crc32 != 0 && crc != e.crc32 {
            return Err(ZipError::Checksum.into());
        }
        Ok(hasher.finalize().into())
    }
}

struct DirectoryEnd {
    records: u64,
    size: u64,
    offset: u64,
}

/// archive/zip `readDirectoryEnd`: the end record in the last 1 KiB, else the last 65 KiB;
/// zip64 records when a field is saturated; the base offset (bytes before the zip proper).
fn read_directory_end<R: Read + Seek>(
    z: &mut ZipSource<'_, R>,
) -> Result<(DirectoryEnd, i64), H1Error> {
    let size = z.size;
    let mut found: Option<(Vec<u8>, u64)> = None;
    for (i, want) in [1024u64, 65 * 1024].into_iter().enumerate() {
        let blen = want.min(size);
        let mut buf = vec![0u8; blen as usize];
        z.read_at((size - blen) as i64, &mut buf, "end of central directory")?;
        if let Some(p) = find_signature_in_block(&buf) {
            found = Some((buf.split_off(p), size - blen + p as u64));
            break;
        }
        if i == 1 || blen == size {
            return Err(ZipError::Format("no end of central directory record").into());
        }
    }
    let Some((b, mut end_offset)) = found else {
        return Err(ZipError::Format("no end of central directory record").into());
    };
    let mut d = DirectoryEnd {
        records: u64::from(le16(&b, 10)),
        size: u64::from(le32(&b, 12)),
        offset: u64::from(le32(&b, 16)),
    };
    // Go compares the directory size with 0xffff (sic) as well as the 32-bit markers.
    if d.records == 0xffff || d.size == 0xffff || d.offset == 0xffff_ffff {
        if let Some(p) = find_directory64_end(z, end_offset)? {
            end_offset = p;
            let mut e = [0u8; DIRECTORY64_END_LEN];
            z.read_at(p as i64, &mut e, "zip64 end of central directory")?;
            if le32(&e, 0) != DIRECTORY64_END_SIGNATURE {
                return Err(ZipError::Format("zip64 end of central directory signature").into());
            }
            d.records = le64(&e, 32);
            d.size = le64(&e, 40);
            d.offset = le64(&e, 48);
        }
    }
    if d.size > i64::MAX as u64 || d.offset > i64::MAX as u64 {
        return Err(ZipError::Format("directory size or offset out of range").into());
    }
    let mut base = (end_offset as i64)
        .wrapping_sub(d.size as i64)
        .wrapping_sub(d.offset as i64);
    let o = base.wrapping_add(d.offset as i64);
    if o < 0 || o as u64 >= size {
        return Err(ZipError::Format("directory offset outside the file").into());
    }
    // Go: when the records imply a base offset but a directory header sits where base 0
    // puts it, use base 0 (some writers get the base wrong).
    if base > 0 {
        let off = d.offset;
        if off <= size {
            let mut s = z.section(off as i64, size - off)?;
            if let Ok(Ok(_)) = read_directory_header(&mut s) {
                base = 0;
            }
        }
    }
    Ok((d, base))
}

/// archive/zip `findSignatureInBlock`: the last end record whose comment fits in the block.
fn find_signature_in_block(b: &[u8]) -> Option<usize> {
    let last = b.len().checked_sub(DIRECTORY_END_LEN)?;
    (0..=last).rev().find(|&i| {
        le32(b, i) == DIRECTORY_END_SIGNATURE
            && (le16(b, i + DIRECTORY_END_LEN - 2) as usize) + DIRECTORY_END_LEN + i <= b.len()
    })
}

/// archive/zip `findDirectory64End`: the zip64 locator just before the end record.
fn find_directory64_end<R: Read + Seek>(
    z: &mut ZipSource<'_, R>,
    end_offset: u64,
) -> Result<Option<u64>, H1Error> {
    let Some(loc) = end_offset.checked_sub(DIRECTORY64_LOC_LEN as u64) else {
        return Ok(None);
    };
    let mut b = [0u8; DIRECTORY64_LOC_LEN];
    z.read_at(loc as i64, &mut b, "zip64 locator")?;
    if le32(&b, 0) != DIRECTORY64_LOC_SIGNATURE || le32(&b, 4) != 0 || le32(&b, 16) != 1 {
        return Ok(None);
    }
    let p = le64(&b, 8);
    // Go converts to int64 and ignores a negative result.
    Ok((p <= i64::MAX as u64).then_some(p))
}

/// How reading one directory header ended: Go's `readDirectoryHeader` error kinds that the
/// directory loop tells apart.
enum HeaderEnd {
    /// `ErrFormat` or `io.ErrUnexpectedEOF`: the loop stops.
    Stop,
    /// `io.EOF` (no byte at all where a header or its names should be): fatal.
    Eof,
}

/// archive/zip `readDirectoryHeader`. Outer error: the caller's reader failed.
fn read_directory_header(r: &mut dyn Read) -> Result<Result<ZipEntry, HeaderEnd>, H1Error> {
    let mut h = [0u8; DIRECTORY_HEADER_LEN];
    match read_full(r, &mut h)? {
        Full::Ok => {}
        Full::Eof => return Ok(Err(HeaderEnd::Eof)),
        Full::Partial => return Ok(Err(HeaderEnd::Stop)),
    }
    if le32(&h, 0) != DIRECTORY_HEADER_SIGNATURE {
        return Ok(Err(HeaderEnd::Stop));
    }
    let flags = le16(&h, 8);
    let method = le16(&h, 10);
    let crc32 = le32(&h, 16);
    let csize32 = le32(&h, 20);
    let usize32 = le32(&h, 24);
    let name_len = le16(&h, 28) as usize;
    let extra_len = le16(&h, 30) as usize;
    let comment_len = le16(&h, 32) as usize;
    let offset32 = le32(&h, 42);
    let mut d = vec![0u8; name_len + extra_len + comment_len];
    if !d.is_empty() {
        match read_full(r, &mut d)? {
            Full::Ok => {}
            Full::Eof => return Ok(Err(HeaderEnd::Eof)),
            Full::Partial => return Ok(Err(HeaderEnd::Stop)),
        }
    }
    let name = d.get(..name_len).unwrap_or(&[]).to_vec();
    let extra = d.get(name_len..name_len + extra_len).unwrap_or(&[]);
    let mut e = ZipEntry {
        name,
        method,
        flags,
        crc32,
        compressed_size: u64::from(csize32),
        uncompressed_size: u64::from(usize32),
        header_offset: i64::from(offset32),
    };
    let mut need_usize = usize32 == u32::MAX;
    let mut need_csize = csize32 == u32::MAX;
    let mut need_offset = offset32 == u32::MAX;
    // Only the zip64 extra field matters for hashing (Go also reads timestamps from others).
    let mut x = extra;
    while x.len() >= 4 {
        let tag = le16(x, 0);
        let len = le16(x, 2) as usize;
        x = &x[4..];
        if x.len() < len {
            break;
        }
        let (mut field, rest) = x.split_at(len);
        x = rest;
        if tag != ZIP64_EXTRA_ID {
            continue;
        }
        for (need, slot) in [
            (&mut need_usize, 0usize),
            (&mut need_csize, 1),
            (&mut need_offset, 2),
        ] {
            if !*need {
                continue;
            }
            *need = false;
            if field.len() < 8 {
                return Ok(Err(HeaderEnd::Stop));
            }
            let v = le64(field, 0);
            field = &field[8..];
            match slot {
                0 => e.uncompressed_size = v,
                1 => e.compressed_size = v,
                _ => e.header_offset = v as i64, // Go: int64(uint64), wrapping
            }
        }
    }
    // An uncompressed size of 2^32-1 without zip64 is accepted (42.zip); the others are not.
    if need_csize || need_offset {
        return Ok(Err(HeaderEnd::Stop));
    }
    Ok(Ok(e))
}

/// archive/zip `Reader.init`: headers from the directory offset until one fails; the count
/// must agree with the end record's modulo 65536.
fn read_central_directory<R: Read + Seek>(
    z: &mut ZipSource<'_, R>,
    limits: &H1Limits,
) -> Result<Vec<ZipEntry>, H1Error> {
    let (end, base) = read_directory_end(z)?;
    let start = base.wrapping_add(end.offset as i64);
    let start = u64::try_from(start).map_err(|_| ZipError::Format("directory offset"))?;
    let size = z.size;
    let mut r = BufReader::new(z.section(start as i64, size.saturating_sub(start))?);
    let mut entries = Vec::new();
    let mut name_bytes = 0usize;
    loop {
        match read_directory_header(&mut r)? {
            Ok(mut e) => {
                if entries.len() >= limits.max_entries {
                    return Err(H1Error::TooManyEntries(limits.max_entries));
                }
                name_bytes = name_bytes.saturating_add(e.name.len());
                if name_bytes > limits.max_name_bytes {
                    return Err(H1Error::TooLarge {
                        what: "zip entry names",
                        limit: limits.max_name_bytes as u64,
                    });
                }
                e.header_offset = e.header_offset.wrapping_add(base);
                entries.push(e);
            }
            Err(HeaderEnd::Stop) => break,
            Err(HeaderEnd::Eof) => return Err(ZipError::UnexpectedEof("central directory").into()),
        }
    }
    if entries.len() as u16 != end.records as u16 {
        return Err(ZipError::Format("central directory entry count").into());
    }
    Ok(entries)
}

#[cfg(test)]
#[path = "h1_tests.rs"]
mod tests;
