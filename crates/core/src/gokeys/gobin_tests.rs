//! Tests of the Go binary reader: crafted ELF files for every pclntab layout, byte order and
//! word size; the go binaries of this machine; binaries built here by both toolchains
//! (default, stripped, PIE, externally linked); and hostile input (random, mutated, cut short).
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects
)]

use super::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

// ---------------------------------------------------------------------------------------------
// Versions, settings, small decoders

#[test]
fn go_versions() {
    let v = |t: &str| GoVersion::parse(t).map(|v| v.triple());
    assert_eq!(v("go1.26.8"), Some((1, 26, 8)));
    assert_eq!(v("go1.19.8"), Some((1, 19, 8)));
    assert_eq!(v("go1.21rc2"), Some((1, 21, 0)));
    assert_eq!(v("go1.22.0"), Some((1, 22, 0)));
    assert_eq!(v("go1.19"), Some((1, 19, 0)));
    assert_eq!(v("go1"), Some((1, 0, 0)));
    assert_eq!(v("go1.20.1 X:boringcrypto"), Some((1, 20, 1)));
    assert_eq!(
        v("devel go1.27-abcdef Tue Mar 3 10:00:00 2026 +0000"),
        Some((1, 27, 0))
    );
    assert_eq!(
        GoVersion::parse("devel go1.27-abcdef Tue ...")
            .unwrap()
            .text,
        "devel go1.27-abcdef Tue ..."
    );
    for garbage in [
        "",
        "go",
        "go.1",
        "gox1.2",
        "1.22.0",
        "go0.5",
        "goa.b",
        "go1.x",
        "go1.2.",
        "go1.99999999999",
        "devel",
        "devel +abcdef",
        "\u{0}\u{ff}",
        "go1x",
    ] {
        assert_eq!(v(garbage), None, "{garbage:?}");
    }
    let new = GoVersion::parse("go1.17").unwrap();
    assert!(new.at_least(1, 17) && new.at_least(1, 12) && !new.at_least(1, 18));
    assert!(GoVersion::parse("go1.21rc2").unwrap().at_least(1, 21));
    assert!(GoVersion::parse("go2.0.0").unwrap().at_least(1, 99));
}

#[test]
fn build_settings_as_runtime_debug_parses_them() {
    let info = "path\texample.com/x\n\
                mod\texample.com/x\t(devel)\t\n\
                build\t-buildmode=pie\n\
                build\t-ldflags=\"-s -w\"\n\
                build\tCGO_ENABLED=0\n\
                build\tGOARCH=arm64\n\
                build\tDefaultGODEBUG=tlskyber=0,x509sha1=1\n\
                build\t\"we=ird\"=`raw \"v\"`\n\
                build\tESC=\"a\\tb\\x41\\u00e9\\\"\"\n\
                build\tEMPTY=\n\
                build\tnoequals\n\
                build\t=nokey\n\
                build\tBAD=\"unterminated\n\
                dep\tgolang.org/x/net\tv0.1.0\th1:abc=\n";
    let s = build_settings(info);
    let want: Vec<(String, String)> = [
        ("-buildmode", "pie"),
        ("-ldflags", "-s -w"),
        ("CGO_ENABLED", "0"),
        ("GOARCH", "arm64"),
        ("DefaultGODEBUG", "tlskyber=0,x509sha1=1"),
        ("we=ird", "raw \"v\""),
        ("ESC", "a\tbAé\""),
        ("EMPTY", ""),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(s, want);
}

#[test]
fn uvarint_and_module_framing() {
    assert_eq!(uvarint(&[0x00]), Some((0, 1)));
    assert_eq!(uvarint(&[0x7f]), Some((127, 1)));
    assert_eq!(uvarint(&[0x80, 0x01]), Some((128, 2)));
    assert_eq!(uvarint(&[0x80]), None);
    assert_eq!(uvarint(&[]), None);
    let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
    assert_eq!(uvarint(&max), Some((u64::MAX, 10)));
    let over = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
    assert_eq!(uvarint(&over), None);
    assert_eq!(uvarint(&[0x80; 11]), None);

    let framed = [&[b'S'; 16][..], b"path\tx\n", &[b'E'; 16][..]].concat();
    assert_eq!(strip_sentinels(&framed), b"path\tx\n");
    assert_eq!(strip_sentinels(b"path\tx\n"), b"");
    assert_eq!(strip_sentinels(&[b'S'; 40]), b"");
}

#[test]
fn every_error_is_one_line() {
    let all = [
        GoBinError::NotElf,
        GoBinError::BadElf("Invalid ELF header size or alignment".into()),
        GoBinError::NotGo,
        GoBinError::NoFunctionTable,
        GoBinError::FunctionNotFound {
            name: WRITE_KEY_LOG.into(),
        },
        GoBinError::UnsupportedPclntab { magic: 0xfffffff2 },
        GoBinError::BadPclntab {
            field: "pc quantum",
        },
        GoBinError::Truncated {
            what: "function table",
            offset: 0x40,
        },
        GoBinError::NoTextStart,
        GoBinError::AddressNotLoaded { vaddr: 0x1234 },
    ];
    for e in all {
        let line = e.to_string();
        assert!(!line.is_empty() && !line.contains('\n'), "{line:?}");
    }
    assert_eq!(
        GoBinError::UnsupportedPclntab { magic: 0xfffffff2 }.to_string(),
        "unsupported .gopclntab magic 0xfffffff2 (Go older than 1.2, or newer than this reader)"
    );
}

// ---------------------------------------------------------------------------------------------
// Crafted ELF files

/// A minimal ELF file: one PT_LOAD maps the whole file at `base`, so a section at file offset
/// `o` is at address `base + o`; section headers, then `.symtab`/`.strtab` if symbols are given.
struct Synth {
    class64: bool,
    big: bool,
    machine: u16,
    e_type: u16,
    seg_flags: u32,
    base: u64,
    /// (name, file offset, contents)
    sections: Vec<(&'static str, usize, Vec<u8>)>,
    /// (name, value, st_type)
    symbols: Vec<(String, u64, u8)>,
    section_headers: bool,
}

fn put(out: &mut Vec<u8>, v: u64, size: usize, big: bool) {
    let b = v.to_le_bytes();
    let mut bytes = b[..size].to_vec();
    if big {
        bytes.reverse();
    }
    out.extend_from_slice(&bytes);
}

impl Synth {
    fn new(class64: bool, big: bool, machine: u16) -> Synth {
        Synth {
            class64,
            big,
            machine,
            e_type: elf::ET_EXEC,
            seg_flags: elf::PF_R | elf::PF_W | elf::PF_X,
            base: 0x40_0000,
            sections: Vec::new(),
            symbols: Vec::new(),
            section_headers: true,
        }
    }

    fn addr(&self, offset: usize) -> u64 {
        self.base + offset as u64
    }

    fn word(&self) -> usize {
        if self.class64 {
            8
        } else {
            4
        }
    }

    fn build(&self) -> Vec<u8> {
        let (big, w) = (self.big, self.word());
        let mut file = vec![0u8; 0x1000];
        for (_, off, data) in &self.sections {
            if file.len() < off + data.len() {
                file.resize(off + data.len(), 0);
            }
            file[*off..off + data.len()].copy_from_slice(data);
        }
        // Section table: null, the given sections, then .symtab, .strtab, .shstrtab.
        let mut shstrtab = vec![0u8];
        let mut shdrs: Vec<(u32, u32, u64, u64, u64, u32, u64)> = vec![(0, 0, 0, 0, 0, 0, 0)];
        let name = |n: &str, shstrtab: &mut Vec<u8>| {
            let at = shstrtab.len() as u32;
            shstrtab.extend_from_slice(n.as_bytes());
            shstrtab.push(0);
            at
        };
        for (n, off, data) in &self.sections {
            let nm = name(n, &mut shstrtab);
            shdrs.push((
                nm,
                elf::SHT_PROGBITS,
                self.addr(*off),
                *off as u64,
                data.len() as u64,
                0,
                0,
            ));
        }
        if !self.symbols.is_empty() {
            let mut strtab = vec![0u8];
            let mut syms = vec![0u8; if self.class64 { 24 } else { 16 }];
            for (n, value, ty) in &self.symbols {
                let st_name = strtab.len() as u64;
                strtab.extend_from_slice(n.as_bytes());
                strtab.push(0);
                if self.class64 {
                    put(&mut syms, st_name, 4, big);
                    syms.push((elf::STB_GLOBAL << 4) | ty);
                    syms.push(0);
                    put(&mut syms, 1, 2, big);
                    put(&mut syms, *value, 8, big);
                    put(&mut syms, 0, 8, big);
                } else {
                    put(&mut syms, st_name, 4, big);
                    put(&mut syms, *value, 4, big);
                    put(&mut syms, 0, 4, big);
                    syms.push((elf::STB_GLOBAL << 4) | ty);
                    syms.push(0);
                    put(&mut syms, 1, 2, big);
                }
            }
            let strtab_index = shdrs.len() as u32 + 1;
            let at = file.len().next_multiple_of(8);
            file.resize(at, 0);
            file.extend_from_slice(&syms);
            let nm = name(".symtab", &mut shstrtab);
            shdrs.push((
                nm,
                elf::SHT_SYMTAB,
                0,
                at as u64,
                syms.len() as u64,
                strtab_index,
                if self.class64 { 24 } else { 16 },
            ));
            let at = file.len();
            file.extend_from_slice(&strtab);
            let nm = name(".strtab", &mut shstrtab);
            shdrs.push((nm, elf::SHT_STRTAB, 0, at as u64, strtab.len() as u64, 0, 0));
        }
        let nm = name(".shstrtab", &mut shstrtab);
        let at = file.len();
        file.extend_from_slice(&shstrtab);
        shdrs.push((
            nm,
            elf::SHT_STRTAB,
            0,
            at as u64,
            shstrtab.len() as u64,
            0,
            0,
        ));
        let shstrndx = shdrs.len() - 1;
        let shoff = file.len().next_multiple_of(8);
        file.resize(shoff, 0);
        if self.section_headers {
            for (nm, ty, addr, off, size, link, entsize) in &shdrs {
                put(&mut file, u64::from(*nm), 4, big);
                put(&mut file, u64::from(*ty), 4, big);
                put(&mut file, 0, w, big); // flags
                put(&mut file, *addr, w, big);
                put(&mut file, *off, w, big);
                put(&mut file, *size, w, big);
                put(&mut file, u64::from(*link), 4, big);
                put(&mut file, 0, 4, big); // info
                put(&mut file, 1, w, big); // addralign
                put(&mut file, *entsize, w, big);
            }
        }
        let filesz = file.len() as u64;

        // ELF header and the one program header, at offset 0.
        let mut h = vec![0x7f, b'E', b'L', b'F'];
        h.push(if self.class64 {
            elf::ELFCLASS64
        } else {
            elf::ELFCLASS32
        });
        h.push(if big {
            elf::ELFDATA2MSB
        } else {
            elf::ELFDATA2LSB
        });
        h.push(1);
        h.resize(16, 0);
        put(&mut h, u64::from(self.e_type), 2, big);
        put(&mut h, u64::from(self.machine), 2, big);
        put(&mut h, 1, 4, big);
        put(&mut h, self.base, w, big); // entry
        let ehsize = if self.class64 { 64 } else { 52 };
        put(&mut h, ehsize, w, big); // phoff
        put(
            &mut h,
            if self.section_headers {
                shoff as u64
            } else {
                0
            },
            w,
            big,
        );
        put(&mut h, 0, 4, big); // flags
        put(&mut h, ehsize, 2, big);
        put(&mut h, if self.class64 { 56 } else { 32 }, 2, big);
        put(&mut h, 1, 2, big); // phnum
        put(&mut h, if self.class64 { 64 } else { 40 }, 2, big);
        put(
            &mut h,
            if self.section_headers {
                shdrs.len() as u64
            } else {
                0
            },
            2,
            big,
        );
        put(
            &mut h,
            if self.section_headers {
                shstrndx as u64
            } else {
                0
            },
            2,
            big,
        );
        assert_eq!(h.len() as u64, ehsize);
        put(&mut h, u64::from(elf::PT_LOAD), 4, big);
        if self.class64 {
            put(&mut h, u64::from(self.seg_flags), 4, big);
            for v in [0, self.base, self.base, filesz, filesz, 0x1000] {
                put(&mut h, v, 8, big);
            }
        } else {
            for v in [0, self.base, self.base, filesz, filesz] {
                put(&mut h, v, 4, big);
            }
            put(&mut h, u64::from(self.seg_flags), 4, big);
            put(&mut h, 0x1000, 4, big);
        }
        file[..h.len()].copy_from_slice(&h);
        file
    }
}

struct SynthFunc {
    name: &'static str,
    /// An offset from text start for 1.18+ tables, an address before.
    entry: u64,
    funcid: u8,
}

/// A `.gopclntab` in the layout of `version` and the offset of its funcname table.
fn synth_pclntab(
    version: PclntabVersion,
    ptr: usize,
    big: bool,
    funcs: &[SynthFunc],
    end: u64,
    header_text: u64,
) -> (Vec<u8>, u64) {
    let magic: u32 = match version {
        PclntabVersion::Go12 => 0xfffffffb,
        PclntabVersion::Go116 => 0xfffffffa,
        PclntabVersion::Go118 => 0xfffffff0,
        PclntabVersion::Go120 => 0xfffffff1,
    };
    let mut t = Vec::new();
    put(&mut t, u64::from(magic), 4, big);
    t.extend_from_slice(&[0, 0, 1, ptr as u8]);
    let n = funcs.len() as u64;
    // The function record: entry, nameOff, 7 u32 fields, [startLine], funcID, flag, pad, nfuncdata.
    let record = |t: &mut Vec<u8>, f: &SynthFunc, name_off: u64, entry_size: usize| {
        put(t, f.entry, entry_size, big);
        put(t, name_off, 4, big);
        for _ in 0..7 {
            put(t, 0, 4, big);
        }
        if version == PclntabVersion::Go120 {
            put(t, 0, 4, big);
        }
        t.extend_from_slice(&[f.funcid, 0, 0, 0]);
    };
    let mut names = Vec::new();
    let mut name_offs = Vec::new();
    for f in funcs {
        name_offs.push(names.len() as u64);
        names.extend_from_slice(f.name.as_bytes());
        names.push(0);
    }
    match version {
        PclntabVersion::Go118 | PclntabVersion::Go120 | PclntabVersion::Go116 => {
            let words = if version == PclntabVersion::Go116 {
                7
            } else {
                8
            };
            let funcname_off = (8 + words * ptr) as u64;
            let pcln_off = (funcname_off + names.len() as u64).next_multiple_of(8);
            let field = if version == PclntabVersion::Go116 {
                ptr
            } else {
                4
            };
            let rec_len = if version == PclntabVersion::Go120 {
                44
            } else {
                40
            } - 4
                + field;
            let functab_len = (2 * funcs.len() + 1) * field;
            let mut header = vec![n, 0];
            if version != PclntabVersion::Go116 {
                header.push(header_text);
            }
            header.extend([funcname_off, pcln_off, pcln_off, pcln_off, pcln_off]);
            for v in header {
                put(&mut t, v, ptr, big);
            }
            t.extend_from_slice(&names);
            t.resize(pcln_off as usize, 0);
            for (i, f) in funcs.iter().enumerate() {
                put(&mut t, f.entry, field, big);
                put(&mut t, (functab_len + i * rec_len) as u64, field, big);
            }
            put(&mut t, end, field, big);
            for (f, off) in funcs.iter().zip(&name_offs) {
                record(&mut t, f, *off, field);
            }
            (t, funcname_off)
        }
        PclntabVersion::Go12 => {
            put(&mut t, n, ptr, big);
            let functab_at = 8 + ptr;
            let functab_len = (2 * funcs.len() + 1) * ptr;
            let records_at = functab_at + functab_len + 4;
            let rec_len = 40 - 4 + ptr;
            let names_at = records_at + funcs.len() * rec_len;
            for (i, f) in funcs.iter().enumerate() {
                put(&mut t, f.entry, ptr, big);
                put(&mut t, (records_at + i * rec_len) as u64, ptr, big);
            }
            put(&mut t, end, ptr, big);
            put(&mut t, 0, 4, big); // filetab offset
            for (f, off) in funcs.iter().zip(&name_offs) {
                record(&mut t, f, names_at as u64 + off, ptr);
            }
            t.extend_from_slice(&names);
            (t, 0)
        }
    }
}

/// Go 1.18+ buildinfo: the header then the two strings inline.
fn synth_buildinfo_inline(version: &str, modinfo: &str) -> Vec<u8> {
    let mut b = BUILDINFO_MAGIC.to_vec();
    b.extend_from_slice(&[8, 0x2]);
    b.resize(32, 0);
    for s in [version.as_bytes(), &framed(modinfo)] {
        let mut n = s.len();
        while n >= 0x80 {
            b.push((n as u8) | 0x80);
            n >>= 7;
        }
        b.push(n as u8);
        b.extend_from_slice(s);
    }
    b
}

/// Before Go 1.18: the header points to two Go string headers; `addr` is where `b` will be.
fn synth_buildinfo_pointers(
    addr: u64,
    ptr: usize,
    big: bool,
    version: &str,
    modinfo: &str,
) -> Vec<u8> {
    let modinfo = framed(modinfo);
    let mut b = BUILDINFO_MAGIC.to_vec();
    b.extend_from_slice(&[ptr as u8, u8::from(big)]);
    let hdrs = 0x20u64;
    let vers_at = 0x40u64;
    let mod_at = vers_at + version.len() as u64;
    put(&mut b, addr + hdrs, ptr, big);
    put(&mut b, addr + hdrs + 2 * ptr as u64, ptr, big);
    b.resize(hdrs as usize, 0);
    for (at, len) in [(vers_at, version.len()), (mod_at, modinfo.len())] {
        put(&mut b, addr + at, ptr, big);
        put(&mut b, len as u64, ptr, big);
    }
    b.resize(vers_at as usize, 0);
    b.extend_from_slice(version.as_bytes());
    b.extend_from_slice(&modinfo);
    b
}

/// cmd/go/internal/modload infoStart and infoEnd around the module info.
fn framed(modinfo: &str) -> Vec<u8> {
    if modinfo.is_empty() {
        return Vec::new();
    }
    let start = b"0w\xaf\x0c\x92t\x08\x02A\xe1\xc1\x07\xe6\xd6\x18\xe6";
    let end = b"\xf92C1\x86\x18 r\x00\x82B\x10A\x16\xd8\xf2";
    [&start[..], modinfo.as_bytes(), &end[..]].concat()
}

const TEXT_OFF: usize = 0x1000;
const PCLN_OFF: usize = 0x2000;
const BUILDINFO_OFF: usize = 0x4000;
const MODULEDATA_OFF: usize = 0x5000;

/// Go's text starts 0x100 into `.text`, as when a C linker puts its start-up code first.
const GO_TEXT_DELTA: u64 = 0x100;

/// A crafted Go binary: writeKeyLog at text start + 0x240, and a few neighbours.
struct Case {
    class64: bool,
    big: bool,
    version: PclntabVersion,
    /// Write the pcHeader textStart field (1.18-1.25 linkers).
    header_text: bool,
    moduledata: bool,
    symbols: bool,
}

impl Case {
    fn ptr(&self) -> usize {
        if self.class64 {
            8
        } else {
            4
        }
    }

    fn synth(&self) -> Synth {
        let machine = match (self.class64, self.big) {
            (true, false) => elf::EM_X86_64,
            (false, false) => elf::EM_386,
            (true, true) => elf::EM_PPC64,
            (false, true) => elf::EM_MIPS,
        };
        Synth::new(self.class64, self.big, machine)
    }

    fn text_start(&self) -> u64 {
        self.synth().addr(TEXT_OFF) + GO_TEXT_DELTA
    }

    fn expected(&self) -> u64 {
        self.text_start() + 0x240
    }

    fn funcs(&self) -> Vec<SynthFunc> {
        let rel = self.version >= PclntabVersion::Go118;
        let base = if rel { 0 } else { self.text_start() };
        [
            ("runtime.text.stub", 0x0, 0u8),
            ("runtime.deferreturn", 0x80, 23),
            ("crypto/tls.(*Config).writeKeyLogX", 0x200, 0),
            (WRITE_KEY_LOG, 0x240, 0),
            ("main.main", 0x400, 0),
        ]
        .into_iter()
        .map(|(name, off, funcid)| SynthFunc {
            name,
            entry: base + off,
            funcid,
        })
        .collect()
    }

    fn build_with(&self, funcs: &[SynthFunc]) -> Vec<u8> {
        let mut s = self.synth();
        let rel = self.version >= PclntabVersion::Go118;
        let end = if rel {
            0x600
        } else {
            self.text_start() + 0x600
        };
        let header_text = if self.header_text {
            self.text_start()
        } else {
            0
        };
        let (pcln, funcname_off) =
            synth_pclntab(self.version, self.ptr(), self.big, funcs, end, header_text);
        s.sections.push((".text", TEXT_OFF, vec![0xcc; 0x800]));
        s.sections.push((".gopclntab", PCLN_OFF, pcln));
        let bi = if self.version >= PclntabVersion::Go118 {
            synth_buildinfo_inline("go1.22.0", "path\tx\nbuild\tGOARCH=amd64\n")
        } else {
            let at = s.addr(BUILDINFO_OFF);
            synth_buildinfo_pointers(
                at,
                self.ptr(),
                self.big,
                "go1.16.15",
                "path\tx\nbuild\tGOARCH=amd64\n",
            )
        };
        s.sections.push((".go.buildinfo", BUILDINFO_OFF, bi));
        if self.moduledata {
            let p = self.ptr();
            let mut md = Vec::new();
            let mut words = vec![0u64; 24];
            words[0] = s.addr(PCLN_OFF);
            words[1] = s.addr(PCLN_OFF) + funcname_off;
            words[20] = self.text_start() + funcs[0].entry;
            words[21] = self.text_start() + end;
            words[22] = self.text_start();
            // A decoy first: the pcHeader pointer alone is not enough.
            for v in [s.addr(PCLN_OFF), 0, 0] {
                put(&mut md, v, p, self.big);
            }
            for v in words {
                put(&mut md, v, p, self.big);
            }
            s.sections.push((".noptrdata", MODULEDATA_OFF, md));
        }
        if self.symbols {
            s.symbols = vec![
                ("runtime.text".to_string(), self.text_start(), elf::STT_FUNC),
                (WRITE_KEY_LOG.to_string(), self.expected(), elf::STT_FUNC),
            ];
        }
        s.build()
    }

    fn build(&self) -> Vec<u8> {
        self.build_with(&self.funcs())
    }
}

const ALL_VERSIONS: [PclntabVersion; 4] = [
    PclntabVersion::Go12,
    PclntabVersion::Go116,
    PclntabVersion::Go118,
    PclntabVersion::Go120,
];

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for version in ALL_VERSIONS {
        for class64 in [true, false] {
            for big in [false, true] {
                out.push(Case {
                    class64,
                    big,
                    version,
                    header_text: version >= PclntabVersion::Go118,
                    moduledata: false,
                    symbols: false,
                });
            }
        }
    }
    out
}

#[test]
fn crafted_tables_of_every_layout_byte_order_and_word_size() {
    for c in cases() {
        let what = format!("{:?} 64-bit={} big={}", c.version, c.class64, c.big);
        let data = c.build();
        let bin = read(&data).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(bin.big_endian, c.big, "{what}");
        assert_eq!(bin.ptr_size as usize, c.ptr(), "{what}");
        assert_eq!(bin.pclntab, Some(c.version), "{what}");
        assert!(!bin.has_symtab && !bin.pie, "{what}");
        assert_eq!(bin.goarch.as_deref(), Some("amd64"), "{what}");
        let m = find_in_pclntab(&data, WRITE_KEY_LOG).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(m.vaddr, c.expected(), "{what}");
        assert_eq!(m.size, 0x1c0, "{what}");
        assert_eq!(m.entries_with_name, 1, "{what}");
        if c.version >= PclntabVersion::Go118 {
            assert_eq!(
                m.text_start,
                Some((c.text_start(), TextStartFrom::Header)),
                "{what}"
            );
        } else {
            assert_eq!(m.text_start, None, "{what}");
        }
        let loc = find_function(&data, WRITE_KEY_LOG).unwrap();
        assert_eq!(loc.found_by, FoundBy::Pclntab);
        assert_eq!(loc.vaddr, c.expected());
        assert_eq!(loc.file_offset, c.expected() - 0x40_0000, "{what}");
        // A name that is a prefix or an extension of another is not it.
        for near in [
            "crypto/tls.(*Config).writeKeyLo",
            "crypto/tls.(*Config).writeKeyLogXY",
        ] {
            assert!(
                matches!(
                    find_function(&data, near),
                    Err(GoBinError::FunctionNotFound { .. })
                ),
                "{what} {near}"
            );
        }
    }
}

#[test]
fn crafted_architectures_and_pie() {
    let c = &cases()[4]; // Go116, 64-bit, little-endian
    for (machine, arch) in [
        (elf::EM_X86_64, Arch::Amd64),
        (elf::EM_AARCH64, Arch::Arm64),
        (elf::EM_386, Arch::I386),
        (elf::EM_ARM, Arch::Arm),
        (elf::EM_RISCV, Arch::Other(elf::EM_RISCV)),
    ] {
        let mut data = c.build();
        data[18..20].copy_from_slice(&machine.to_le_bytes());
        data[16..18].copy_from_slice(&elf::ET_DYN.to_le_bytes());
        let bin = read(&data).unwrap();
        assert_eq!(bin.arch, arch);
        assert!(bin.pie);
    }
    assert_eq!(Arch::Other(243).to_string(), "ELF machine 243");
    assert_eq!(Arch::I386.to_string(), "386");
}

#[test]
fn text_start_sources_in_order() {
    let base = Case {
        class64: true,
        big: false,
        version: PclntabVersion::Go120,
        header_text: false,
        moduledata: false,
        symbols: false,
    };
    let from = |c: &Case| {
        let m = find_in_pclntab(&c.build(), WRITE_KEY_LOG).unwrap();
        (m.vaddr, m.text_start.unwrap().1)
    };
    // Go 1.26 and stripped: only `.text`, which is off when C code comes first.
    let section = base.synth().addr(TEXT_OFF);
    assert_eq!(from(&base), (section + 0x240, TextStartFrom::TextSection));
    // runtime.firstmoduledata gives the real start.
    let md = Case {
        moduledata: true,
        ..base
    };
    assert_eq!(from(&md), (md.expected(), TextStartFrom::Moduledata));
    // Go 1.18-1.25 header field.
    let hdr = Case {
        header_text: true,
        ..md
    };
    assert_eq!(from(&hdr), (hdr.expected(), TextStartFrom::Header));
    // The runtime.text symbol beats everything (and find_function uses the function's own).
    let sym = Case {
        symbols: true,
        ..hdr
    };
    assert_eq!(
        from(&sym),
        (sym.expected(), TextStartFrom::RuntimeTextSymbol)
    );
    let loc = find_function(&sym.build(), WRITE_KEY_LOG).unwrap();
    assert_eq!((loc.vaddr, loc.found_by), (sym.expected(), FoundBy::Symtab));
    // Moduledata on big-endian 32-bit too.
    let md32 = Case {
        class64: false,
        big: true,
        ..md
    };
    assert_eq!(from(&md32), (md32.expected(), TextStartFrom::Moduledata));
    // A moduledata whose minpc does not match is ignored.
    let mut data = md.build();
    let minpc_at = MODULEDATA_OFF + 3 * 8 + 20 * 8;
    data[minpc_at] ^= 1;
    let m = find_in_pclntab(&data, WRITE_KEY_LOG).unwrap();
    assert_eq!(m.text_start.unwrap().1, TextStartFrom::TextSection);
}

#[test]
fn symtab_first_and_only_function_symbols() {
    let c = Case {
        class64: true,
        big: false,
        version: PclntabVersion::Go120,
        header_text: true,
        moduledata: false,
        symbols: false,
    };
    let mut s = c.synth();
    s.sections.push((".text", TEXT_OFF, vec![0xcc; 0x800]));
    s.symbols = vec![
        (WRITE_KEY_LOG.to_string(), 0, elf::STT_FUNC), // zero: skipped
        (WRITE_KEY_LOG.to_string(), 0x40_1500, elf::STT_OBJECT), // not a function
        (format!("{WRITE_KEY_LOG}.abi0"), 0x40_1600, elf::STT_FUNC),
        (WRITE_KEY_LOG.to_string(), 0x40_1700, elf::STT_FUNC),
    ];
    let data = s.build();
    let loc = find_function(&data, WRITE_KEY_LOG).unwrap();
    assert_eq!(
        loc,
        FunctionLocation {
            vaddr: 0x40_1700,
            file_offset: 0x1700,
            found_by: FoundBy::Symtab
        }
    );
    // Neither buildinfo nor pclntab: not a Go binary, for read; the symbol is still found.
    assert_eq!(read(&data), Err(GoBinError::NotGo));
    assert_eq!(
        find_function(&data, "main.main"),
        Err(GoBinError::FunctionNotFound {
            name: "main.main".into()
        })
    );
    s.symbols.clear();
    assert_eq!(
        find_function(&s.build(), "main.main"),
        Err(GoBinError::NotGo)
    );
}

#[test]
fn duplicate_entries_pick_the_body() {
    let c = Case {
        class64: true,
        big: false,
        version: PclntabVersion::Go120,
        header_text: true,
        moduledata: false,
        symbols: false,
    };
    let f = |name, entry, funcid| SynthFunc {
        name,
        entry,
        funcid,
    };
    // The ABI0 wrapper (funcID 23 like runtime.deferreturn) is larger here: still not chosen.
    let funcs = [
        f("runtime.deferreturn", 0x0, 23),
        f(WRITE_KEY_LOG, 0x40, 0),
        f("x.y", 0x80, 0),
        f(WRITE_KEY_LOG, 0x100, 23),
    ];
    let m = find_in_pclntab(&c.build_with(&funcs), WRITE_KEY_LOG).unwrap();
    assert_eq!((m.vaddr, m.entries_with_name), (c.text_start() + 0x40, 2));
    // Without runtime.deferreturn the wrapper id is unknown: the larger entry wins.
    let funcs = [
        f("runtime.deferreturnX", 0x0, 23),
        f(WRITE_KEY_LOG, 0x40, 0),
        f("x.y", 0x80, 0),
        f(WRITE_KEY_LOG, 0x100, 23),
    ];
    let m = find_in_pclntab(&c.build_with(&funcs), WRITE_KEY_LOG).unwrap();
    assert_eq!(m.vaddr, c.text_start() + 0x100);
    // Both wrappers (reflect.callMethod in Go 1.26): the larger; equal sizes: the lower address.
    let funcs = [
        f("runtime.deferreturn", 0x0, 23),
        f(WRITE_KEY_LOG, 0x40, 23),
        f(WRITE_KEY_LOG, 0x80, 23),
        f("x.y", 0xc0, 0),
    ];
    let m = find_in_pclntab(&c.build_with(&funcs), WRITE_KEY_LOG).unwrap();
    assert_eq!(m.vaddr, c.text_start() + 0x40);
    // A deferreturn with funcID 0 says nothing: both kept, the larger wins.
    let funcs = [
        f("runtime.deferreturn", 0x0, 0),
        f(WRITE_KEY_LOG, 0x40, 0),
        f("x.y", 0x80, 0),
        f(WRITE_KEY_LOG, 0x100, 7),
    ];
    let m = find_in_pclntab(&c.build_with(&funcs), WRITE_KEY_LOG).unwrap();
    assert_eq!(m.vaddr, c.text_start() + 0x100);
}

#[test]
fn buildinfo_both_formats_and_without_section_headers() {
    let mods =
        "path\texample.com/x\nbuild\t-buildmode=exe\nbuild\tCGO_ENABLED=1\nbuild\tGOARCH=386\n";
    for (class64, big) in [(true, false), (false, true), (false, false), (true, true)] {
        let ptr = if class64 { 8 } else { 4 };
        let mut s = Synth::new(class64, big, elf::EM_386);
        let at = s.addr(BUILDINFO_OFF);
        s.sections.push((
            ".go.buildinfo",
            BUILDINFO_OFF,
            synth_buildinfo_pointers(at, ptr, big, "go1.17.13", mods),
        ));
        let bin = read(&s.build()).unwrap();
        assert_eq!(bin.go_version.as_ref().unwrap().triple(), (1, 17, 13));
        assert_eq!(bin.goarch.as_deref(), Some("386"));
        assert_eq!(bin.setting("CGO_ENABLED"), Some("1"));
        assert_eq!(bin.setting("-buildmode"), Some("exe"));
        assert_eq!(bin.pclntab, None);
    }
    // Inline format, found without section headers in the writable segment, 16-byte aligned
    // after a misaligned decoy.
    let mut s = Synth::new(true, false, elf::EM_AARCH64);
    s.seg_flags = elf::PF_R | elf::PF_W;
    s.section_headers = false;
    let mut blob = vec![0u8; 0x18];
    blob[1..15].copy_from_slice(BUILDINFO_MAGIC);
    blob.resize(0x20, 0);
    blob.extend(synth_buildinfo_inline(
        "devel go1.27-abcdef Tue Mar 3 2026",
        &format!(
            "path\tx\nbuild\t-ldflags=\"-s -w\"\nbuild\tGOARCH=arm64\n{}",
            "dep\ty\tv1.0.0\th1:x=\n".repeat(20)
        ),
    ));
    s.sections.push(("ignored", BUILDINFO_OFF, blob));
    let bin = read(&s.build()).unwrap();
    assert_eq!(bin.arch, Arch::Arm64);
    assert_eq!(bin.go_version.as_ref().unwrap().triple(), (1, 27, 0));
    assert_eq!(bin.setting("-ldflags"), Some("-s -w"));
    assert_eq!(bin.goarch.as_deref(), Some("arm64"));
    // No module info (GOPATH mode builds): a version, no settings.
    let mut s = Synth::new(true, false, elf::EM_X86_64);
    s.sections.push((
        ".go.buildinfo",
        BUILDINFO_OFF,
        synth_buildinfo_inline("go1.20", ""),
    ));
    let bin = read(&s.build()).unwrap();
    assert_eq!(bin.go_version.unwrap().text, "go1.20");
    assert!(bin.settings.is_empty() && bin.goarch.is_none());
    // A string running past the end of its segment: no version, and no other Go sign.
    let mut s = Synth::new(true, false, elf::EM_X86_64);
    let mut blob = BUILDINFO_MAGIC.to_vec();
    blob.extend_from_slice(&[8, 2]);
    blob.resize(32, 0);
    blob.extend_from_slice(&[0xff, 0xff, 0x03, b'g', b'o']);
    s.sections.push((".go.buildinfo", BUILDINFO_OFF, blob));
    assert_eq!(read(&s.build()), Err(GoBinError::NotGo));
}

#[test]
fn crafted_errors() {
    assert_eq!(read(b""), Err(GoBinError::NotElf));
    assert_eq!(read(b"MZ\x90\x00"), Err(GoBinError::NotElf));
    assert_eq!(
        find_function(b"\x7fELF", WRITE_KEY_LOG),
        Err(GoBinError::BadElf("unknown ELF class".into()))
    );
    assert!(matches!(
        read(b"\x7fELF\x02\x01\x01\x00"),
        Err(GoBinError::BadElf(_))
    ));

    let c = Case {
        class64: true,
        big: false,
        version: PclntabVersion::Go120,
        header_text: true,
        moduledata: false,
        symbols: false,
    };
    let good = c.build();
    let pcln = |data: &mut Vec<u8>, at: usize, bytes: &[u8]| {
        data[PCLN_OFF + at..PCLN_OFF + at + bytes.len()].copy_from_slice(bytes)
    };
    // An unknown magic is named.
    let mut d = good.clone();
    pcln(&mut d, 0, &0xfffffff2u32.to_le_bytes());
    assert_eq!(
        find_function(&d, WRITE_KEY_LOG),
        Err(GoBinError::UnsupportedPclntab { magic: 0xfffffff2 })
    );
    assert_eq!(read(&d).unwrap().pclntab, None);
    // Bad header bytes.
    for (at, byte, field) in [
        (4, 1, "header padding"),
        (6, 3, "pc quantum"),
        (7, 2, "pointer size"),
    ] {
        let mut d = good.clone();
        d[PCLN_OFF + at] = byte;
        assert_eq!(
            find_in_pclntab(&d, WRITE_KEY_LOG),
            Err(GoBinError::BadPclntab { field })
        );
    }
    // A huge function count: the table would run past the section.
    for n in [1u64 << 40, u64::MAX, 1 << 28] {
        let mut d = good.clone();
        pcln(&mut d, 8, &n.to_le_bytes());
        let e = find_in_pclntab(&d, WRITE_KEY_LOG).unwrap_err();
        assert!(
            matches!(
                e,
                GoBinError::Truncated {
                    what: "function table",
                    ..
                } | GoBinError::BadPclntab { .. }
            ),
            "{n}: {e:?}"
        );
    }
    // A funcnametab offset past the end.
    let mut d = good.clone();
    pcln(&mut d, 8 + 3 * 8, &0x7fff_0000u64.to_le_bytes());
    assert_eq!(
        find_in_pclntab(&d, WRITE_KEY_LOG),
        Err(GoBinError::Truncated {
            what: "funcnametab",
            offset: 0x7fff_0000
        })
    );
    // A funcoff past the end.
    let mut d = good.clone();
    let pcln_off = u64::from_le_bytes(d[PCLN_OFF + 64..PCLN_OFF + 72].try_into().unwrap()) as usize;
    pcln(&mut d, pcln_off + 4, &0x00ff_0000u32.to_le_bytes());
    assert_eq!(
        find_in_pclntab(&d, WRITE_KEY_LOG),
        Err(GoBinError::Truncated {
            what: "function data",
            offset: 0x00ff_0000
        })
    );
    // The section cut short (its header says more than the file has).
    let d = &good[..PCLN_OFF + 40];
    assert!(matches!(
        find_function(d, WRITE_KEY_LOG),
        Err(GoBinError::NotGo | GoBinError::BadElf(_) | GoBinError::Truncated { .. })
    ));
    // An address outside every segment.
    let elf = Elf::parse(&good, &[]).unwrap();
    assert_eq!(
        elf.file_offset(0x10),
        Err(GoBinError::AddressNotLoaded { vaddr: 0x10 })
    );
    assert_eq!(
        elf.file_offset(u64::MAX),
        Err(GoBinError::AddressNotLoaded { vaddr: u64::MAX })
    );
    // 1.18+ without any text start source.
    let mut s = c.synth();
    let (t, _) = synth_pclntab(PclntabVersion::Go120, 8, false, &c.funcs(), 0x600, 0);
    s.sections.push((".gopclntab", PCLN_OFF, t));
    assert_eq!(
        find_function(&s.build(), WRITE_KEY_LOG),
        Err(GoBinError::NoTextStart)
    );
}

// ---------------------------------------------------------------------------------------------
// Hostile input

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        match self.below(4) {
            0 => 0,
            1 => 0xff,
            _ => self.next() as u8,
        }
    }
}

fn exercise(data: &[u8]) {
    let _ = read(data);
    let _ = find_function(data, WRITE_KEY_LOG);
    let _ = find_in_pclntab(data, WRITE_KEY_LOG);
}

/// The real go binary when present, else a crafted one: hostile-input tests run everywhere.
fn fuzz_subjects() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = cases()
        .into_iter()
        .step_by(3)
        .map(|c| {
            (
                format!("crafted {:?} 64-bit={} big={}", c.version, c.class64, c.big),
                Case {
                    moduledata: true,
                    symbols: c.version == PclntabVersion::Go116,
                    ..c
                }
                .build(),
            )
        })
        .collect();
    for p in [GO_126, GO_119] {
        if let Ok(d) = std::fs::read(p) {
            out.push((p.to_string(), d));
        }
    }
    out
}

/// Writes the crafted binaries of [`fuzz_subjects`] (not the real go binaries, which are
/// megabytes) as seeds of the `gobin` fuzz target:
/// `MODTRACE_FUZZ_SEEDS=fuzz/seeds/gobin cargo test --lib write_gobin_fuzz_seeds -- --ignored`.
#[test]
#[ignore = "writes fuzz seeds; run by hand"]
fn write_gobin_fuzz_seeds() {
    let dir = std::env::var("MODTRACE_FUZZ_SEEDS").expect("MODTRACE_FUZZ_SEEDS=<dir>");
    std::fs::create_dir_all(&dir).unwrap();
    let crafted = fuzz_subjects()
        .into_iter()
        .filter(|(_, d)| d.len() <= 64 << 10);
    for (i, (_, data)) in crafted.enumerate() {
        std::fs::write(Path::new(&dir).join(format!("crafted-{i}")), data).unwrap();
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut buf = Vec::new();
    for i in 0..3000 {
        buf.clear();
        let len = rng.below(if i % 10 == 0 { 8192 } else { 256 });
        buf.extend((0..len).map(|_| rng.byte()));
        if i % 2 == 0 && len >= 20 {
            // An ELF ident and plausible sizes, so the parse goes deeper.
            buf[..7].copy_from_slice(&[
                0x7f,
                b'E',
                b'L',
                b'F',
                1 + (i % 4 == 0) as u8,
                1 + (i % 3 == 0) as u8,
                1,
            ]);
        }
        exercise(&buf);
    }
}

#[test]
fn mutations_never_panic() {
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    for (name, data) in fuzz_subjects() {
        // The first 64 KiB, mutated in a few places each round.
        let mut prefix = data[..data.len().min(64 * 1024)].to_vec();
        for _ in 0..1000 {
            let saved = prefix.clone();
            for _ in 0..1 + rng.below(8) {
                let at = rng.below(prefix.len());
                prefix[at] = rng.byte();
            }
            exercise(&prefix);
            prefix = saved;
        }
        // The whole file, mutated where the structure is: ELF header, program and section
        // headers, the pclntab header and function table, the buildinfo.
        let mut whole = data.clone();
        let elf = Elf::parse(&data, &[]).unwrap();
        let p = usize::from(elf.ptr_size);
        let shoff =
            uint_at(&data, if p == 8 { 40 } else { 32 }, p, elf.big_endian).unwrap() as usize;
        let mut spots = vec![
            (0usize, 64usize),
            (64, 512),
            (shoff.min(data.len() - 1), 4096),
        ];
        for s in [".gopclntab", ".data.rel.ro.gopclntab", ".go.buildinfo"] {
            if let Some(sec) = elf.section(s) {
                spots.push((sec.offset as usize, 512));
            }
        }
        for round in 0..(if data.len() > 1 << 20 { 250 } else { 1000 }) {
            let (start, len) = spots[round % spots.len()];
            let mut touched = Vec::new();
            for _ in 0..1 + rng.below(4) {
                let at = (start + rng.below(len)).min(whole.len() - 1);
                touched.push((at, whole[at]));
                whole[at] = rng.byte();
            }
            exercise(&whole);
            for (at, b) in touched.into_iter().rev() {
                whole[at] = b;
            }
        }
        assert_eq!(whole, data, "{name}: restored");
    }
}

#[test]
fn truncations_never_panic() {
    for (name, data) in fuzz_subjects() {
        let mut lens: Vec<usize> = (0..300).collect();
        let step = (data.len() / 300).max(1);
        lens.extend((0..data.len()).step_by(step).map(|n| n + 7));
        for n in lens.into_iter().filter(|&n| n <= data.len()) {
            exercise(&data[..n]);
        }
        // Cut short, never wrongly found: the result, if any, is the whole file's.
        let whole = find_function(&data, WRITE_KEY_LOG).ok();
        let cut = find_function(&data[..data.len() / 2], WRITE_KEY_LOG).ok();
        assert!(cut.is_none() || cut == whole, "{name}");
    }
}

// ---------------------------------------------------------------------------------------------
// The go binaries of this machine

const GO_126: &str = "/usr/local/go/bin/go";
const GO_119: &str = "/usr/lib/go-1.19/bin/go";

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Missing prerequisites skip a test, except in CI where they fail it.
fn skip(msg: &str) {
    if in_ci() {
        panic!("{msg} (CI=true: required)");
    }
    eprintln!("SKIPPED: {msg}");
}

fn real(path: &str) -> Option<Vec<u8>> {
    match std::fs::read(path) {
        Ok(d) => Some(d),
        Err(e) => {
            skip(&format!("{path}: {e}"));
            None
        }
    }
}

/// The file offset by `readelf -lW`'s LOAD lines, when readelf is installed.
fn readelf_offset(path: &Path, vaddr: u64) -> Option<u64> {
    let out = Command::new("readelf").arg("-lW").arg(path).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap();
    text.lines()
        .filter(|l| l.trim_start().starts_with("LOAD"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .map(|f| (hex(f[1]), hex(f[2]), hex(f[4])))
        .find(|&(_, va, filesz)| va <= vaddr && vaddr < va + filesz)
        .map(|(off, va, _)| vaddr - va + off)
}

/// `go tool nm`'s address for `name`, when `go` runs. Outside any module, no toolchain
/// switch, no proxy; the user's cache keeps the nm tool Go 1.26 builds on first use.
fn nm(go: &str, path: &Path, name: &str) -> Option<u64> {
    let out = Command::new(go)
        .current_dir("/")
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOFLAGS", "")
        .env("GOWORK", "off")
        .args(["tool", "nm"])
        .arg(path)
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() >= 3 && f[2..].join(" ") == name).then(|| u64::from_str_radix(f[0], 16).unwrap())
    })
}

/// The text start every source gives, for the agreement checks.
fn text_starts(data: &[u8]) -> (Option<u64>, u64, Option<u64>, Option<u64>) {
    let elf = Elf::parse(data, &[RUNTIME_TEXT]).unwrap();
    let s = elf.pclntab_section().unwrap();
    let p = Pclntab::parse(elf.section_data(s).unwrap()).unwrap();
    (
        elf.symbol(RUNTIME_TEXT).map(|s| s.value),
        p.header_text,
        moduledata_text(&elf, &p, s.addr),
        elf.section(".text").map(|s| s.addr),
    )
}

#[test]
fn go_1_26_of_this_machine() {
    let Some(data) = real(GO_126) else { return };
    let bin = read(&data).unwrap();
    let v = bin.go_version.as_ref().unwrap();
    assert!(
        v.text.starts_with("go1.26") && v.triple() >= (1, 26, 0),
        "{v:?}"
    );
    assert_eq!(
        (bin.arch, bin.pie, bin.big_endian, bin.ptr_size),
        (Arch::Amd64, false, false, 8)
    );
    assert_eq!(bin.goarch.as_deref(), Some("amd64"));
    assert!(bin.has_symtab);
    assert_eq!(bin.pclntab, Some(PclntabVersion::Go120));

    let loc = find_function(&data, WRITE_KEY_LOG).unwrap();
    assert_eq!(loc.found_by, FoundBy::Symtab);
    // The table agrees with the symbol.
    let m = find_in_pclntab(&data, WRITE_KEY_LOG).unwrap();
    assert_eq!((m.vaddr, m.entries_with_name), (loc.vaddr, 1));
    assert!(m.size > 64, "{m:?}");
    // Go 1.26 leaves the header field 0; runtime.text, moduledata and .text agree here.
    let (sym, header, md, section) = text_starts(&data);
    assert_eq!(header, 0);
    assert!(
        sym.is_some() && md == sym && section == sym,
        "{sym:x?} {md:x?} {section:x?}"
    );
    eprintln!(
        "{GO_126}: {WRITE_KEY_LOG} at {:#x}, file offset {:#x}",
        loc.vaddr, loc.file_offset
    );
    if let Some(off) = readelf_offset(Path::new(GO_126), loc.vaddr) {
        assert_eq!(off, loc.file_offset);
    }
    match nm(GO_126, Path::new(GO_126), WRITE_KEY_LOG) {
        Some(a) => assert_eq!(a, loc.vaddr, "go tool nm"),
        None => skip("go tool nm gave no answer"),
    }
    // The wrapper rule agrees with .symtab for every Go function that has an ABI0 wrapper.
    let tl = nm(GO_126, Path::new(GO_126), "runtime.newproc").unwrap();
    assert_eq!(find_in_pclntab(&data, "runtime.newproc").unwrap().vaddr, tl);
    assert_eq!(
        find_in_pclntab(&data, "runtime.newproc")
            .unwrap()
            .entries_with_name,
        2
    );
}

#[test]
fn go_1_19_of_this_machine_is_stripped() {
    let Some(data) = real(GO_119) else { return };
    let bin = read(&data).unwrap();
    let v = bin.go_version.as_ref().unwrap();
    assert!(
        v.text.starts_with("go1.19") && v.triple() >= (1, 19, 0),
        "{v:?}"
    );
    assert_eq!((bin.arch, bin.pie, bin.ptr_size), (Arch::Amd64, false, 8));
    assert_eq!(bin.goarch.as_deref(), Some("amd64"));
    assert!(!bin.has_symtab);
    assert_eq!(bin.pclntab, Some(PclntabVersion::Go118));
    let loc = find_function(&data, WRITE_KEY_LOG).unwrap();
    assert_eq!(loc.found_by, FoundBy::Pclntab);
    let m = find_in_pclntab(&data, WRITE_KEY_LOG).unwrap();
    assert_eq!(m.text_start.unwrap().1, TextStartFrom::Header);
    // Header field, moduledata and .text agree (internal linking).
    let (sym, header, md, section) = text_starts(&data);
    assert_eq!((sym, Some(header), md), (None, section, section));
    eprintln!(
        "{GO_119}: {WRITE_KEY_LOG} at {:#x}, file offset {:#x}",
        loc.vaddr, loc.file_offset
    );
    if let Some(off) = readelf_offset(Path::new(GO_119), loc.vaddr) {
        assert_eq!(off, loc.file_offset);
    }
    // Go's own reader (debug/gosym, as cmd/internal/objfile sets it up) says the same.
    let Some(lab) = lab() else { return };
    match lab.oracle.get(GO_119) {
        Some(o) => assert_eq!(o.gosym, Some(loc.vaddr), "debug/gosym"),
        None => skip("no debug/gosym oracle (needs the Go 1.26 toolchain)"),
    }
}

// ---------------------------------------------------------------------------------------------
// Binaries built here

const PROGRAM: &str = r#"package main

import (
	"crypto/tls"
	"net/http"
)

func main() {
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{}}}
	if r, err := c.Get("https://127.0.0.1:1/"); err == nil {
		r.Body.Close()
	}
}
"#;

/// Go's view: the ELF symbol, runtime.text, and debug/gosym's answer with the text start
/// cmd/internal/objfile would use (runtime.text, else the `.text` section).
const ORACLE: &str = r#"package main

import (
	"debug/elf"
	"debug/gosym"
	"fmt"
	"os"
)

func main() {
	for _, path := range os.Args[2:] {
		fmt.Printf("%s\t%s\n", path, lookup(path, os.Args[1]))
	}
}

func lookup(path, name string) string {
	f, err := elf.Open(path)
	if err != nil {
		return "- - -"
	}
	defer f.Close()
	sym, rtext := "-", "-"
	var textStart uint64
	if s := f.Section(".text"); s != nil {
		textStart = s.Addr
	}
	if syms, err := f.Symbols(); err == nil {
		for _, s := range syms {
			if s.Name == name && elf.ST_TYPE(s.Info) == elf.STT_FUNC {
				sym = fmt.Sprintf("%x", s.Value)
			}
			if s.Name == "runtime.text" {
				rtext = fmt.Sprintf("%x", s.Value)
				textStart = s.Value
			}
		}
	}
	gs := "-"
	sec := f.Section(".gopclntab")
	if sec == nil {
		sec = f.Section(".data.rel.ro.gopclntab")
	}
	if sec != nil {
		if data, err := sec.Data(); err == nil {
			if tab, err := gosym.NewTable(nil, gosym.NewLineTable(data, textStart)); err == nil {
				if fn := tab.LookupFunc(name); fn != nil {
					gs = fmt.Sprintf("%x", fn.Entry)
				}
			}
		}
	}
	return sym + " " + rtext + " " + gs
}
"#;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Default,
    Stripped,
    Pie,
    PieStripped,
    /// CGO_ENABLED=1 -ldflags=-linkmode=external: the C linker puts its start-up code first.
    External,
    ExternalStripped,
}

impl Kind {
    fn file(self) -> &'static str {
        match self {
            Kind::Default => "default",
            Kind::Stripped => "stripped",
            Kind::Pie => "pie",
            Kind::PieStripped => "pie-stripped",
            Kind::External => "external",
            Kind::ExternalStripped => "external-stripped",
        }
    }

    fn args(self) -> &'static [&'static str] {
        match self {
            Kind::Default => &[],
            Kind::Stripped => &["-ldflags=-s -w"],
            Kind::Pie => &["-buildmode=pie"],
            Kind::PieStripped => &["-buildmode=pie", "-ldflags=-s -w"],
            Kind::External => &["-ldflags=-linkmode=external"],
            Kind::ExternalStripped => &["-ldflags=-linkmode=external -s -w"],
        }
    }

    fn cgo(self) -> bool {
        matches!(self, Kind::External | Kind::ExternalStripped)
    }

    /// The unstripped build of the same kind.
    fn unstripped(self) -> Kind {
        match self {
            Kind::Stripped => Kind::Default,
            Kind::PieStripped => Kind::Pie,
            Kind::ExternalStripped => Kind::External,
            k => k,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Oracle {
    symtab: Option<u64>,
    runtime_text: Option<u64>,
    gosym: Option<u64>,
}

struct Built {
    kind: Kind,
    data: Vec<u8>,
    nm: Option<u64>,
    oracle: Option<Oracle>,
}

struct Toolchain {
    go: &'static str,
    version: String,
    builds: Vec<Built>,
    /// Kinds not built, and why.
    missing: Vec<(Kind, String)>,
}

impl Toolchain {
    fn get(&self, kind: Kind) -> Option<&Built> {
        self.builds.iter().find(|b| b.kind == kind)
    }

    fn why_missing(&self, kind: Kind) -> &str {
        self.missing
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or("?", |(_, w)| w.as_str())
    }
}

struct Lab {
    toolchains: Vec<Toolchain>,
    /// debug/gosym's answers for the go binaries of this machine.
    oracle: HashMap<String, Oracle>,
}

/// The Go build cache: beside the test binary (`target/debug/gobin-gocache`), so that runs
/// after the first reuse the compiled standard libraries (a cold run compiles Go 1.26's twice,
/// about 75 CPU seconds) and `cargo clean` removes it; a fresh directory if that fails. It only
/// ever holds what these offline builds put there.
fn go_cache(tmp: &Path) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("gobin-gocache")))
        .filter(|d| std::fs::create_dir_all(d).is_ok())
        .unwrap_or_else(|| tmp.join("gocache"))
}

fn go_env(cmd: &mut Command, home: &Path, cache: &Path, cgo: bool) {
    // Nothing from the developer's environment (GOARCH, GOFLAGS, GOPROXY...) and no network.
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("GOPATH", home.join("gopath"))
        .env("GOCACHE", cache)
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "")
        .env("GOPROXY", "off")
        .env("GOENV", "off")
        .env("GOWORK", "off")
        .env("CGO_ENABLED", if cgo { "1" } else { "0" });
}

fn go_build(
    go: &str,
    (home, cache): (&Path, &Path),
    src: &Path,
    out: &Path,
    cgo: bool,
    args: &[&str],
) -> Result<(), String> {
    let mut cmd = Command::new(go);
    cmd.current_dir(src)
        .arg("build")
        .arg("-o")
        .arg(out)
        .args(args)
        .arg(".");
    go_env(&mut cmd, home, cache, cgo);
    let o = cmd.output().map_err(|e| format!("{go} build: {e}"))?;
    if o.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{go} build {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        ))
    }
}

fn write_module(dir: &Path, source: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("go.mod"),
        "module example.com/keylogprobe\n\ngo 1.19\n",
    )
    .unwrap();
    std::fs::write(dir.join("main.go"), source).unwrap();
}

fn parse_oracle(out: &str) -> HashMap<String, Oracle> {
    let hex = |s: &str| u64::from_str_radix(s, 16).ok();
    out.lines()
        .filter_map(|l| {
            let (path, rest) = l.split_once('\t')?;
            let f: Vec<&str> = rest.split(' ').collect();
            Some((
                path.to_string(),
                Oracle {
                    symtab: hex(f.first()?),
                    runtime_text: hex(f.get(1)?),
                    gosym: hex(f.get(2)?),
                },
            ))
        })
        .collect()
}

/// Builds the test program with every toolchain present, in parallel, once per test run;
/// keeps the bytes and Go's own answers, and removes the temporary directory.
fn lab() -> Option<&'static Lab> {
    static LAB: OnceLock<Option<Lab>> = OnceLock::new();
    LAB.get_or_init(build_lab).as_ref()
}

fn build_lab() -> Option<Lab> {
    let present: Vec<&'static str> = [GO_126, GO_119]
        .into_iter()
        .filter(|g| Path::new(g).exists())
        .collect();
    if present.is_empty() {
        return None;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cc = Command::new("sh")
        .args(["-c", "command -v gcc || command -v cc"])
        .output()
        .is_ok_and(|o| o.status.success());
    let oracle_bin = tmp.path().join("oracle");
    let cache = go_cache(tmp.path());

    // With an empty cache, Go 1.26 compiles its standard library twice (plain, and -shared for
    // the PIE: about 25 s each on two cores, in parallel); Debian's Go 1.19 ships its standard
    // library compiled, so its builds, cgo ones included, are mostly links. Steps in one chain
    // run in order.
    let chains: Vec<(&'static str, Vec<Step>)> = present
        .iter()
        .flat_map(|&go| {
            let mut first = vec![Step::Build(Kind::Default), Step::Build(Kind::Stripped)];
            let mut out = Vec::new();
            if go == GO_126 {
                // debug/gosym of Go 1.26 reads every pclntab version; after the default build,
                // most of its packages are cached.
                first.push(Step::Oracle);
                out.push((
                    go,
                    vec![Step::Build(Kind::Pie), Step::Build(Kind::PieStripped)],
                ));
            } else if cc {
                // An external link needs cgo: a rebuild with Go 1.26 (about 15 s more), a link
                // with Debian's Go 1.19. Its moduledata is checked where `.text` is wrong.
                first.extend([
                    Step::Build(Kind::External),
                    Step::Build(Kind::ExternalStripped),
                ]);
            }
            out.insert(0, (go, first));
            out
        })
        .collect();

    let built: Vec<(&'static str, Vec<(Kind, PathBuf)>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = chains
            .into_iter()
            .map(|(go, steps)| {
                let gotmp = tmp.path().join(format!("go{}", go.len()));
                let src = gotmp.join("src");
                let oracle_bin = oracle_bin.clone();
                let cache = cache.clone();
                let h = scope.spawn(move || {
                    let mut done = Vec::new();
                    for step in steps {
                        match step {
                            Step::Build(k) => {
                                let out = gotmp.join(k.file());
                                if !src.exists() {
                                    write_module(&src, PROGRAM);
                                }
                                go_build(go, (&gotmp, &cache), &src, &out, k.cgo(), k.args())?;
                                done.push((k, out));
                            }
                            Step::Oracle => {
                                let osrc = gotmp.join("oracle-src");
                                write_module(&osrc, ORACLE);
                                go_build(go, (&gotmp, &cache), &osrc, &oracle_bin, false, &[])?;
                            }
                        }
                    }
                    Ok::<_, String>(done)
                });
                (go, h)
            })
            .collect();
        handles
            .into_iter()
            .map(|(go, h)| (go, h.join().unwrap().unwrap_or_else(|e| panic!("{e}"))))
            .collect()
    });

    let mut all_paths: Vec<PathBuf> = present.iter().map(PathBuf::from).collect();
    all_paths.extend(
        built
            .iter()
            .flat_map(|(_, v)| v.iter().map(|(_, p)| p.clone())),
    );
    let oracles = if oracle_bin.exists() {
        let o = Command::new(&oracle_bin)
            .arg(WRITE_KEY_LOG)
            .args(&all_paths)
            .output()
            .unwrap();
        parse_oracle(&String::from_utf8_lossy(&o.stdout))
    } else {
        HashMap::new()
    };
    let mut toolchains: Vec<Toolchain> = Vec::new();
    for (go, paths) in built {
        let idx = match toolchains.iter().position(|t| t.go == go) {
            Some(i) => i,
            None => {
                let version = Command::new(go)
                    .args(["env", "GOVERSION"])
                    .output()
                    .unwrap();
                let mut missing = Vec::new();
                if go == GO_126 {
                    missing.push((
                        Kind::External,
                        "not built with Go 1.26, to save time".into(),
                    ));
                } else if !cc {
                    missing.push((Kind::External, "no C compiler (gcc or cc)".into()));
                }
                if go != GO_126 {
                    missing.push((Kind::Pie, "not built with Go 1.19, to save time".into()));
                }
                toolchains.push(Toolchain {
                    go,
                    version: String::from_utf8_lossy(&version.stdout).trim().to_string(),
                    builds: Vec::new(),
                    missing,
                });
                toolchains.len() - 1
            }
        };
        for (kind, p) in paths {
            // `go tool nm` of Go 1.26 is built on first use (about 25 s with an empty cache);
            // Go 1.19 ships it. The oracle reads the same symbols through debug/elf.
            let nm = (kind == kind.unstripped() && go == GO_119)
                .then(|| nm(go, &p, WRITE_KEY_LOG))
                .flatten();
            toolchains[idx].builds.push(Built {
                kind,
                data: std::fs::read(&p).unwrap(),
                nm,
                oracle: oracles.get(&p.display().to_string()).cloned(),
            });
        }
    }
    let oracle = present
        .iter()
        .filter_map(|p| Some((p.to_string(), oracles.get(*p)?.clone())))
        .collect();
    Some(Lab { toolchains, oracle })
}

enum Step {
    Build(Kind),
    /// Build the debug/gosym oracle.
    Oracle,
}

/// Go's own answers for an unstripped build: `go tool nm` (Go 1.19 builds), the ELF symbol
/// through debug/elf and the entry through debug/gosym (the oracle, built with Go 1.26).
fn agrees_with_go(b: &Built, vaddr: u64, what: &str) {
    let o = b.oracle.clone().unwrap_or_default();
    let answers: Vec<(&str, u64)> = [
        ("go tool nm", b.nm),
        ("debug/elf", o.symtab),
        ("debug/gosym", o.gosym),
    ]
    .into_iter()
    .filter_map(|(who, a)| Some((who, a?)))
    .collect();
    if answers.is_empty() {
        eprintln!(
            "SKIPPED: {what} {:?}: no answer from Go's tools to compare with",
            b.kind
        );
    }
    for (who, a) in answers {
        assert_eq!(a, vaddr, "{what} {:?}: {who}", b.kind);
    }
}

/// Each toolchain's builds, or a skip (a failure in CI) when a toolchain is missing.
fn toolchains() -> Vec<&'static Toolchain> {
    for go in [GO_126, GO_119] {
        if !Path::new(go).exists() {
            skip(&format!("{go} not installed"));
        }
    }
    lab()
        .map(|l| l.toolchains.iter().collect())
        .unwrap_or_default()
}

#[test]
fn built_default_and_stripped() {
    for tc in toolchains() {
        let what = &tc.version;
        let d = tc.get(Kind::Default).unwrap();
        let s = tc.get(Kind::Stripped).unwrap();
        let bin = read(&d.data).unwrap();
        assert_eq!(
            bin.go_version.as_ref().map(|v| v.text.as_str()),
            Some(what.as_str())
        );
        assert_eq!(bin.arch, Arch::Amd64);
        assert_eq!(bin.goarch.as_deref(), Some("amd64"));
        assert_eq!(bin.setting("CGO_ENABLED"), Some("0"));
        // Go 1.19 records -buildmode only when given; later versions always.
        assert!(
            matches!(bin.setting("-buildmode"), None | Some("exe")),
            "{what}"
        );
        assert!(bin.has_symtab && !bin.pie);
        let loc = find_function(&d.data, WRITE_KEY_LOG).unwrap();
        assert_eq!(loc.found_by, FoundBy::Symtab);
        agrees_with_go(d, loc.vaddr, what);
        let m = find_in_pclntab(&d.data, WRITE_KEY_LOG).unwrap();
        assert_eq!(m.vaddr, loc.vaddr, "{what}: pclntab vs symtab");
        let (sym, header, md, section) = text_starts(&d.data);
        assert!(md == sym && section == sym, "{what}");
        assert!(header == 0 || Some(header) == sym, "{what}");

        let sbin = read(&s.data).unwrap();
        assert!(!sbin.has_symtab, "{what}: -s leaves no .symtab");
        assert_eq!(sbin.setting("-ldflags"), Some("-s -w"));
        let sloc = find_function(&s.data, WRITE_KEY_LOG).unwrap();
        assert_eq!(sloc.found_by, FoundBy::Pclntab);
        // Stripping only drops what follows the loaded segments: same address, same code.
        assert_eq!(sloc.vaddr, loc.vaddr, "{what}");
        let code =
            |data: &[u8], l: &FunctionLocation| data[l.file_offset as usize..][..32].to_vec();
        assert_eq!(code(&s.data, &sloc), code(&d.data, &loc), "{what}");
        if let Some(o) = &s.oracle {
            assert_eq!(o.gosym, Some(sloc.vaddr), "{what}: debug/gosym");
        }
        eprintln!(
            "{what}: default and stripped at {:#x} (offset {:#x})",
            loc.vaddr, loc.file_offset
        );
    }
}

#[test]
fn built_pie() {
    for tc in toolchains() {
        let what = &tc.version;
        let (Some(p), Some(ps)) = (tc.get(Kind::Pie), tc.get(Kind::PieStripped)) else {
            eprintln!("{what}: no PIE build ({})", tc.why_missing(Kind::Pie));
            continue;
        };
        let bin = read(&p.data).unwrap();
        assert!(bin.pie, "{what}: ET_DYN");
        assert_eq!(bin.setting("-buildmode"), Some("pie"));
        let loc = find_function(&p.data, WRITE_KEY_LOG).unwrap();
        assert_eq!(loc.found_by, FoundBy::Symtab);
        assert_ne!(loc.file_offset, loc.vaddr, "{what}");
        agrees_with_go(p, loc.vaddr, what);
        assert_eq!(
            find_in_pclntab(&p.data, WRITE_KEY_LOG).unwrap().vaddr,
            loc.vaddr
        );
        let sloc = find_function(&ps.data, WRITE_KEY_LOG).unwrap();
        assert_eq!(sloc.found_by, FoundBy::Pclntab);
        assert_eq!(
            (sloc.vaddr, sloc.file_offset),
            (loc.vaddr, loc.file_offset),
            "{what}"
        );
        eprintln!(
            "{what}: PIE at {:#x} (offset {:#x}), stripped text start from {:?}",
            loc.vaddr,
            loc.file_offset,
            find_in_pclntab(&ps.data, WRITE_KEY_LOG).unwrap().text_start
        );
    }
}

#[test]
fn built_with_the_c_linker() {
    for tc in toolchains() {
        let what = &tc.version;
        let (Some(e), Some(es)) = (tc.get(Kind::External), tc.get(Kind::ExternalStripped)) else {
            eprintln!(
                "{what}: no externally linked build ({})",
                tc.why_missing(Kind::External)
            );
            continue;
        };
        let loc = find_function(&e.data, WRITE_KEY_LOG).unwrap();
        agrees_with_go(e, loc.vaddr, what);
        let (sym, _, md, section) = text_starts(&e.data);
        // The C start-up code comes first: `.text` is not where Go's text starts.
        assert!(
            section < sym && md == sym,
            "{what}: {section:x?} {sym:x?} {md:x?}"
        );
        let m = find_in_pclntab(&es.data, WRITE_KEY_LOG).unwrap();
        assert_eq!(
            m.vaddr, loc.vaddr,
            "{what}: stripped, through {:?}",
            m.text_start
        );
        assert_ne!(m.text_start.unwrap().1, TextStartFrom::TextSection);
        let sloc = find_function(&es.data, WRITE_KEY_LOG).unwrap();
        assert_eq!(
            (sloc.found_by, sloc.file_offset),
            (FoundBy::Pclntab, loc.file_offset)
        );
        if let Some(o) = &es.oracle {
            // debug/gosym with `.text` (cmd/internal/objfile without symbols): right only when
            // the header still says where text starts.
            eprintln!(
                "{what}: stripped external link: ours {:#x} via {:?}, debug/gosym {:x?}",
                m.vaddr, m.text_start, o.gosym
            );
        }
    }
}
