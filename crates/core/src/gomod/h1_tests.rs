use super::*;
use std::io::{Cursor, Write};

/// Go's dirhash_test.go TestHash1 / TestHashZip expectations, computed independently.
const XYZ_ABC_H1: &str = "h1:EP6WfDoQTSk9klnxcjriWJOGztueJUywHNmWeq+efB8=";
const PREFIX_XYZ_ABC_H1: &str = "h1:rLyfpGMAgqOnGE2aKOY5Xb6cOc0/YQhPjHBHBwkblhs=";

fn hex_sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// A zip built byte by byte (stored entries), to make what zip writers refuse to make.
#[derive(Default)]
struct RawZip {
    body: Vec<u8>,
    central: Vec<u8>,
    count: u16,
}

struct RawEntry<'a> {
    name: &'a [u8],
    data: &'a [u8],
    method: u16,
    flags: u16,
    /// CRC in the central directory (None: the real one).
    crc: Option<u32>,
    /// Uncompressed size declared (None: data length).
    usize: Option<u32>,
    extra: &'a [u8],
    /// Data descriptor after the data (with signature), holding this CRC.
    descriptor_crc: Option<u32>,
}

impl<'a> RawEntry<'a> {
    fn stored(name: &'a [u8], data: &'a [u8]) -> Self {
        RawEntry {
            name,
            data,
            method: 0,
            flags: 0,
            crc: None,
            usize: None,
            extra: &[],
            descriptor_crc: None,
        }
    }
}

fn crc_of(b: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(b);
    c.sum()
}

impl RawZip {
    fn add(&mut self, e: RawEntry) -> &mut Self {
        let offset = self.body.len() as u32;
        let crc = e.crc.unwrap_or_else(|| crc_of(e.data));
        let usize = e.usize.unwrap_or(e.data.len() as u32);
        let b = &mut self.body;
        b.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        b.extend_from_slice(&20u16.to_le_bytes());
        b.extend_from_slice(&e.flags.to_le_bytes());
        b.extend_from_slice(&e.method.to_le_bytes());
        b.extend_from_slice(&[0; 4]); // time, date
        let local_crc = if e.descriptor_crc.is_some() { 0 } else { crc };
        b.extend_from_slice(&local_crc.to_le_bytes());
        b.extend_from_slice(&(e.data.len() as u32).to_le_bytes());
        b.extend_from_slice(&usize.to_le_bytes());
        b.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(e.name);
        b.extend_from_slice(e.data);
        if let Some(dc) = e.descriptor_crc {
            b.extend_from_slice(&0x0807_4b50u32.to_le_bytes());
            b.extend_from_slice(&dc.to_le_bytes());
            b.extend_from_slice(&(e.data.len() as u32).to_le_bytes());
            b.extend_from_slice(&usize.to_le_bytes());
        }
        let c = &mut self.central;
        c.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        c.extend_from_slice(&20u16.to_le_bytes());
        c.extend_from_slice(&20u16.to_le_bytes());
        c.extend_from_slice(&e.flags.to_le_bytes());
        c.extend_from_slice(&e.method.to_le_bytes());
        c.extend_from_slice(&[0; 4]);
        c.extend_from_slice(&crc.to_le_bytes());
        c.extend_from_slice(&(e.data.len() as u32).to_le_bytes());
        c.extend_from_slice(&usize.to_le_bytes());
        c.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
        c.extend_from_slice(&(e.extra.len() as u16).to_le_bytes());
        c.extend_from_slice(&0u16.to_le_bytes()); // comment
        c.extend_from_slice(&[0; 8]); // disk, internal, external attrs
        c.extend_from_slice(&offset.to_le_bytes());
        c.extend_from_slice(e.name);
        c.extend_from_slice(e.extra);
        self.count += 1;
        self
    }

    fn finish(&self) -> Vec<u8> {
        let mut out = self.body.clone();
        let dir_offset = out.len() as u32;
        out.extend_from_slice(&self.central);
        out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&self.count.to_le_bytes());
        out.extend_from_slice(&self.count.to_le_bytes());
        out.extend_from_slice(&(self.central.len() as u32).to_le_bytes());
        out.extend_from_slice(&dir_offset.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }
}

fn h(zip: &[u8]) -> Result<String, H1Error> {
    zip_h1(Cursor::new(zip))
}

fn expected(files: &[(&[u8], &[u8])]) -> String {
    hash1(files.iter().map(|(n, d)| (*n, *d))).unwrap()
}

#[test]
fn hash1_matches_x_mod_test_vector() {
    // dirhash TestHash1: files "xyz", "abc" holding "data for <name>", listed unsorted.
    let got = hash1([("xyz", &b"data for xyz"[..]), ("abc", &b"data for abc"[..])]).unwrap();
    assert_eq!(got, XYZ_ABC_H1);
    assert!(matches!(
        hash1([("xyz", &b""[..]), ("a\nbc", &b""[..])]),
        Err(H1Error::NewlineInName(_))
    ));
}

#[test]
fn zip_h1_matches_x_mod_hash_zip_vector() {
    // dirhash TestHashZip: a zip (written by a zip library, deflated) with prefix/xyz and
    // prefix/abc, in that order.
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    w.start_file("prefix/xyz", opts).unwrap();
    w.write_all(b"data for xyz").unwrap();
    w.start_file("prefix/abc", opts).unwrap();
    w.write_all(b"data for abc").unwrap();
    let zip = w.finish().unwrap().into_inner();
    assert_eq!(h(&zip).unwrap(), PREFIX_XYZ_ABC_H1);
    // The same content stored instead of deflated hashes the same.
    let mut raw = RawZip::default();
    raw.add(RawEntry::stored(b"prefix/xyz", b"data for xyz"))
        .add(RawEntry::stored(b"prefix/abc", b"data for abc"));
    assert_eq!(h(&raw.finish()).unwrap(), PREFIX_XYZ_ABC_H1);
}

#[test]
fn mod_h1_of_empty_go_mod_is_gos_constant() {
    assert_eq!(mod_h1(b""), EMPTY_GO_MOD_H1);
    assert_eq!(
        mod_h1(b"module x\n"),
        expected(&[(b"go.mod", b"module x\n")])
    );
}

#[test]
fn directories_are_hashed_as_empty_files() {
    let mut raw = RawZip::default();
    raw.add(RawEntry::stored(b"m@v1.0.0/dir/", b""))
        .add(RawEntry::stored(b"m@v1.0.0/dir/a.go", b"package a\n"));
    let want = expected(&[
        (b"m@v1.0.0/dir/", b""),
        (b"m@v1.0.0/dir/a.go", b"package a\n"),
    ]);
    assert_eq!(h(&raw.finish()).unwrap(), want);
    // A directory entry that declares content fails as in Go (ErrFormat on read).
    let mut raw = RawZip::default();
    raw.add(RawEntry::stored(b"m@v1.0.0/dir/", b"x"));
    assert!(matches!(
        h(&raw.finish()),
        Err(H1Error::Zip(ZipError::Format(_)))
    ));
}

#[test]
fn duplicate_names_hash_twice_with_the_last_content() {
    let mut raw = RawZip::default();
    raw.add(RawEntry::stored(b"m@v/a", b"first"))
        .add(RawEntry::stored(b"m@v/b", b"bee"))
        .add(RawEntry::stored(b"m@v/a", b"second"));
    let lines = format!(
        "{}  m@v/a\n{}  m@v/a\n{}  m@v/b\n",
        hex_sha(b"second"),
        hex_sha(b"second"),
        hex_sha(b"bee")
    );
    use base64::Engine;
    let want = format!(
        "h1:{}",
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(lines.as_bytes()))
    );
    let zh = hash_zip(Cursor::new(raw.finish()), &H1Limits::default()).unwrap();
    assert_eq!(zh.h1, want);
    assert_eq!(zh.entries.len(), 3);
    // A shadowed entry is never read: its corruption does not matter (Go never opens it).
    let mut raw = RawZip::default();
    raw.add(RawEntry {
        crc: Some(1),
        ..RawEntry::stored(b"m@v/a", b"first")
    })
    .add(RawEntry::stored(b"m@v/b", b"bee"))
    .add(RawEntry::stored(b"m@v/a", b"second"));
    assert_eq!(h(&raw.finish()).unwrap(), want);
}

#[test]
fn names_are_raw_bytes_and_unicode_path_fields_are_ignored() {
    // Not UTF-8, no UTF-8 flag: the zip crate would decode CP437; Go hashes the bytes.
    let mut raw = RawZip::default();
    raw.add(RawEntry::stored(b"m@v/\x81.go", b"x"));
    let zh = hash_zip(Cursor::new(raw.finish()), &H1Limits::default()).unwrap();
    assert_eq!(zh.entries[0].name, b"m@v/\x81.go");
    assert_eq!(zh.h1, expected(&[(b"m@v/\x81.go", b"x")]));
    // Info-ZIP Unicode Path extra field (0x7075) naming another file: Go ignores it.
    let mut up = vec![0x75, 0x70];
    let other = b"m@v/evil.go";
    up.extend_from_slice(&((5 + other.len()) as u16).to_le_bytes());
    up.push(1);
    up.extend_from_slice(&crc_of(b"m@v/a.go").to_le_bytes());
    up.extend_from_slice(other);
    let mut raw = RawZip::default();
    raw.add(RawEntry {
        extra: &up,
        ..RawEntry::stored(b"m@v/a.go", b"x")
    });
    assert_eq!(h(&raw.finish()).unwrap(), expected(&[(b"m@v/a.go", b"x")]));
}

#[test]
fn prefix_bytes_before_the_zip_are_skipped_via_the_base_offset() {
    let mut raw = RawZip::default();
    raw.add(RawEntry::stored(b"m@v/a", b"aaa"))
        .add(RawEntry::stored(b"m@v/b", b"bbb"));
    let zip = raw.finish();
    let mut prefixed = b"#!/bin/sh\nexit 0\n".repeat(7);
    prefixed.extend_from_slice(&zip);
    assert_eq!(h(&prefixed).unwrap(), h(&zip).unwrap());
}

#[test]
fn data_descriptor_crc_is_checked() {
    let data = b"package main\n";
    let mut raw = RawZip::default();
    raw.add(RawEntry {
        flags: 0x8,
        descriptor_crc: Some(crc_of(data)),
        ..RawEntry::stored(b"m@v/main.go", data)
    });
    assert_eq!(
        h(&raw.finish()).unwrap(),
        expected(&[(b"m@v/main.go", data)])
    );
    let mut raw = RawZip::default();
    raw.add(RawEntry {
        flags: 0x8,
        descriptor_crc: Some(crc_of(data) ^ 1),
        ..RawEntry::stored(b"m@v/main.go", data)
    });
    assert_eq!(h(&raw.finish()), Err(H1Error::Zip(ZipError::Checksum)));
}

#[test]
fn corrupt_zips_fail_like_archive_zip() {
    let one = |e: RawEntry| {
        let mut r = RawZip::default();
        r.add(e);
        r.finish()
    };
    assert_eq!(
        h(&one(RawEntry {
            crc: Some(0xdead),
            ..RawEntry::stored(b"m@v/a", b"data")
        })),
        Err(H1Error::Zip(ZipError::Checksum))
    );
    // CRC 0 in the directory and no descriptor: Go does not check.
    assert!(h(&one(RawEntry {
        crc: Some(0),
        ..RawEntry::stored(b"m@v/a", b"data")
    }))
    .is_ok());
    assert!(matches!(
        h(&one(RawEntry {
            usize: Some(2),
            ..RawEntry::stored(b"m@v/a", b"data")
        })),
        Err(H1Error::Zip(ZipError::Format(_)))
    ));
    assert!(matches!(
        h(&one(RawEntry {
            usize: Some(9),
            ..RawEntry::stored(b"m@v/a", b"data")
        })),
        Err(H1Error::Zip(ZipError::UnexpectedEof(_)))
    ));
    assert_eq!(
        h(&one(RawEntry {
            method: 99,
            ..RawEntry::stored(b"m@v/a", b"data")
        })),
        Err(H1Error::Zip(ZipError::Algorithm(99)))
    );
    assert!(matches!(
        h(&one(RawEntry {
            method: 8,
            ..RawEntry::stored(b"m@v/a", b"\xff\xff\xff\xff")
        })),
        Err(H1Error::Zip(_))
    ));
    assert!(matches!(h(b""), Err(H1Error::Zip(ZipError::Format(_)))));
    assert!(matches!(h(b"PK\x05\x06"), Err(H1Error::Zip(_))));
    // Entry count in the end record disagrees with the directory.
    let mut z = one(RawEntry::stored(b"m@v/a", b"data"));
    let n = z.len();
    z[n - 12] = 2;
    z[n - 14] = 2;
    assert!(matches!(h(&z), Err(H1Error::Zip(ZipError::Format(_)))));
    // Truncated anywhere: an error, never a panic or a hash.
    let good = one(RawEntry::stored(b"m@v/a", b"data"));
    for cut in 0..good.len() {
        assert!(h(&good[..cut]).is_err(), "cut at {cut}");
    }
    // An empty zip (end record only) hashes the empty list, as Go does.
    let empty = RawZip::default().finish();
    assert_eq!(h(&empty).unwrap(), hash1_from_digests(vec![]).unwrap());
}

#[test]
fn zip_bombs_stop_at_the_limits() {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let zeros = vec![0u8; 4 << 20];
    for i in 0..4 {
        w.start_file(format!("m@v/zeros{i}"), opts).unwrap();
        w.write_all(&zeros).unwrap();
    }
    let zip = w.finish().unwrap().into_inner();
    assert!(zip.len() < 100_000);
    let limits = H1Limits {
        max_total_bytes: 10 << 20,
        ..H1Limits::default()
    };
    assert_eq!(
        hash_zip(Cursor::new(&zip), &limits).map(|z| z.h1),
        Err(H1Error::TooLarge {
            what: "zip content (uncompressed)",
            limit: 10 << 20
        })
    );
    let limits = H1Limits {
        max_entry_bytes: 1 << 20,
        ..H1Limits::default()
    };
    assert!(matches!(
        hash_zip(Cursor::new(&zip), &limits),
        Err(H1Error::TooLarge { .. })
    ));
    let limits = H1Limits {
        max_zip_bytes: 1000,
        ..H1Limits::default()
    };
    assert!(matches!(
        hash_zip(Cursor::new(&zip), &limits),
        Err(H1Error::TooLarge { what: "zip", .. })
    ));
    let limits = H1Limits {
        max_entries: 3,
        ..H1Limits::default()
    };
    assert_eq!(
        hash_zip(Cursor::new(&zip), &limits).map(|z| z.h1),
        Err(H1Error::TooManyEntries(3))
    );
    // Within the limits it hashes (16 MiB of zeros).
    let zh = hash_zip(Cursor::new(&zip), &H1Limits::default()).unwrap();
    assert_eq!(zh.bytes_hashed, 16 << 20);
}

/// Regression (fuzzing, zip_h1: a libFuzzer timeout): 63 KB of zip whose eight
/// central-directory entries share one DEFLATE body of 62 MiB of zeros made the reader inflate
/// and hash 496 MiB, over a second of work, under `max_total_bytes`. The expansion limit
/// (`max_expansion_ratio`, `expansion_allowance`) refuses it before inflating anything.
#[test]
fn zip_bomb_of_overlapping_entries_stops_at_the_expansion_limit() {
    use std::io::Read;
    let gz = include_bytes!("testdata/zip-bomb-overlapping-entries.zip.gz");
    let mut zip = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut zip)
        .unwrap();
    assert_eq!(zip.len(), 63_826);
    assert_eq!(
        hash_zip(Cursor::new(&zip), &H1Limits::default()),
        Err(H1Error::TooLarge {
            what: "zip content (uncompressed) for the zip's size",
            limit: 16 << 20,
        })
    );
    // The ratio counts past the allowance: 200 times the zip's size when that is larger.
    let limits = H1Limits {
        expansion_allowance: 0,
        ..H1Limits::default()
    };
    assert_eq!(
        hash_zip(Cursor::new(&zip), &limits),
        Err(H1Error::TooLarge {
            what: "zip content (uncompressed) for the zip's size",
            limit: 63_826 * 200,
        })
    );
}

#[test]
fn unexpected_entry_names_the_stray_file() {
    let mut raw = RawZip::default();
    raw.add(RawEntry::stored(b"m@v1.0.0/a.go", b"x"))
        .add(RawEntry::stored(b"other@v1.0.0/b.go", b"y"));
    let zh = hash_zip(Cursor::new(raw.finish()), &H1Limits::default()).unwrap();
    assert_eq!(
        unexpected_entry(&zh.entries, "m", "v1.0.0"),
        Some(&b"other@v1.0.0/b.go"[..])
    );
}

#[test]
fn spilled_file_reader_works() {
    let mut raw = RawZip::default();
    raw.add(RawEntry::stored(b"prefix/xyz", b"data for xyz"))
        .add(RawEntry::stored(b"prefix/abc", b"data for abc"));
    let mut f = tempfile::tempfile().unwrap();
    f.write_all(&raw.finish()).unwrap();
    assert_eq!(zip_h1(f).unwrap(), PREFIX_XYZ_ABC_H1);
}
