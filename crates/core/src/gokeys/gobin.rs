//! Go ELF binaries: where a function starts, its file offset for a uprobe, and the Go version
//! and build settings. Pure: the whole file's bytes in, values out; no I/O, no clock.
//!
//! - The function: `.symtab` when present (an exact name, a function symbol), else Go's own
//!   function table, `.gopclntab`, which survives `-ldflags=-s -w`
//!   (../shared/docs/go-keys.md, "Finding the function in a binary").
//! - The file offset: the PT_LOAD that holds the address, `vaddr - p_vaddr + p_offset`. A uprobe
//!   is keyed by (inode, offset), so PIE and ASLR do not matter.
//! - The Go version and build settings: the `.go.buildinfo` blob (debug/buildinfo).
//!
//! ELF headers, sections, segments and symbols are read with the `object` crate. No crate
//! parses the pclntab; the reader here follows Go's runtime/symtab.go (`pcHeader`, `_func`,
//! `moduledata`), internal/abi/symtab.go (the magics) and debug/gosym/pclntab.go (the layout of
//! each version). Every read is bounds-checked and every loop is bounded by the size of the
//! table it walks: a hostile or truncated file gives an error, never a panic.
//!
//! Not handled: binaries without section headers (Go's own tools need them too), and Go's
//! split text sections (`.text.1`, ... on very large arm64 and ppc64 binaries; debug/gosym
//! leaves this as a TODO as well).
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects
)]

use crate::wire::{u32_at, u64_at};
use object::elf;
use object::read::elf::{FileHeader, ProgramHeader, SectionHeader, Sym};
use object::Endianness;

/// The name the go-keys probe looks for: every TLS secret of every connection passes through it
/// (crypto/tls/common.go), whether or not a KeyLogWriter is set.
pub const WRITE_KEY_LOG: &str = "crypto/tls.(*Config).writeKeyLog";

/// The machine the binary was built for (ELF `e_machine`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    Amd64,
    Arm64,
    I386,
    Arm,
    /// Any other `e_machine` value.
    Other(u16),
}

impl Arch {
    fn from_machine(machine: u16) -> Arch {
        match machine {
            elf::EM_X86_64 => Arch::Amd64,
            elf::EM_AARCH64 => Arch::Arm64,
            elf::EM_386 => Arch::I386,
            elf::EM_ARM => Arch::Arm,
            other => Arch::Other(other),
        }
    }

    /// The GOARCH spelling (`amd64`, `arm64`, `386`, `arm`), `other` for anything else.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
            Arch::I386 => "386",
            Arch::Arm => "arm",
            Arch::Other(_) => "other",
        }
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Arch::Other(m) => write!(f, "ELF machine {m}"),
            a => f.write_str(a.name()),
        }
    }
}

/// Where the function's address came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FoundBy {
    /// The ELF symbol table.
    Symtab,
    /// Go's function table, `.gopclntab`.
    Pclntab,
}

impl FoundBy {
    pub fn name(self) -> &'static str {
        match self {
            FoundBy::Symtab => "symtab",
            FoundBy::Pclntab => "pclntab",
        }
    }
}

/// A Go toolchain version, as the buildinfo spells it (`go1.26.8`, `go1.21rc2`,
/// `devel go1.27-abcdef ...`). `major.minor.patch` compare as numbers; a pre-release (`rc2`)
/// or a devel build counts as patch 0 of its minor version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
    /// The text as found, for display.
    pub text: String,
}

impl GoVersion {
    /// Parses `go1.N[.P]` with an optional suffix (`rc2`, `beta1`, `-abcdef`, ` X:exp`), also
    /// after a leading `devel `. None for anything else.
    pub fn parse(text: &str) -> Option<GoVersion> {
        let t = text.trim();
        let t = t.strip_prefix("devel ").unwrap_or(t).trim_start();
        let token = t.split_whitespace().next()?;
        let rest = token.strip_prefix("go")?;
        let (major, rest) = leading_number(rest)?;
        let (minor, patch) = match rest.strip_prefix('.') {
            Some(r) => {
                let (minor, r) = leading_number(r)?;
                let patch = match r.strip_prefix('.') {
                    Some(p) => leading_number(p)?.0,
                    None => 0,
                };
                (minor, patch)
            }
            // `go1` alone was Go 1.0; anything else right after the major number is not a version.
            None if rest.is_empty() => (0, 0),
            None => return None,
        };
        if major == 0 {
            return None;
        }
        Some(GoVersion {
            major,
            minor,
            patch,
            text: text.to_string(),
        })
    }

    /// True when this version is `major.minor` or later (`at_least(1, 17)`: the register ABI).
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        (self.major, self.minor) >= (major, minor)
    }

    /// `(major, minor, patch)`, for ordering.
    pub fn triple(&self) -> (u32, u32, u32) {
        (self.major, self.minor, self.patch)
    }
}

/// A number at the start of `s` (at most 9 digits, so it fits) and what follows it.
fn leading_number(s: &str) -> Option<(u32, &str)> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 9 {
        return None;
    }
    let (num, rest) = s.split_at_checked(digits)?;
    Some((num.parse().ok()?, rest))
}

/// What [`read`] learns about a Go binary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoBinary {
    pub arch: Arch,
    /// ET_DYN: a position-independent executable (or a shared library).
    pub pie: bool,
    pub big_endian: bool,
    /// 4 or 8, from the ELF class.
    pub ptr_size: u8,
    /// A non-empty `.symtab` (absent with `-ldflags=-s`).
    pub has_symtab: bool,
    /// The `.gopclntab` format, when the section is there and its magic is known.
    pub pclntab: Option<PclntabVersion>,
    /// From the buildinfo; None when it is missing or unreadable.
    pub go_version: Option<GoVersion>,
    /// The GOARCH build setting, when present.
    pub goarch: Option<String>,
    /// Every `build` setting of the module info, in order (`-buildmode`, `CGO_ENABLED`, ...).
    pub settings: Vec<(String, String)>,
}

impl GoBinary {
    /// The value of build setting `key`, if recorded.
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.settings
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Where a function starts, in memory and in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FunctionLocation {
    /// Link-time virtual address of the first instruction (for a PIE, before the load bias).
    pub vaddr: u64,
    /// File offset of that instruction: what a uprobe wants.
    pub file_offset: u64,
    pub found_by: FoundBy,
}

/// The `.gopclntab` layouts, by header magic (internal/abi/symtab.go).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PclntabVersion {
    /// 0xfffffffb, Go 1.2-1.15: one table, absolute entry addresses.
    Go12,
    /// 0xfffffffa, Go 1.16-1.17: separate sub-tables, absolute entry addresses.
    Go116,
    /// 0xfffffff0, Go 1.18-1.19: 32-bit entry offsets from the start of Go's text.
    Go118,
    /// 0xfffffff1, Go 1.20 and later: as 1.18, `_func` gained `startLine`.
    Go120,
}

/// How the start of Go's text (`runtime.text`, the base of 1.18+ entry offsets) was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextStartFrom {
    /// The `runtime.text` symbol (cmd/internal/objfile does the same).
    RuntimeTextSymbol,
    /// The pcHeader field, written by Go 1.18-1.25 linkers (0 from Go 1.26 on).
    Header,
    /// `runtime.firstmoduledata.text`, what the Go runtime itself uses.
    Moduledata,
    /// The `.text` section's address (debug/gosym's default). Off when a C linker put code
    /// before Go's (cgo); only used when nothing better is found.
    TextSection,
}

/// What [`find_in_pclntab`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PclntabMatch {
    pub vaddr: u64,
    /// Up to the next function's entry.
    pub size: u64,
    pub version: PclntabVersion,
    /// The base of the entry offsets (Go 1.18+); None for older tables (absolute entries).
    pub text_start: Option<(u64, TextStartFrom)>,
    /// How many table entries carry the name (2 when an ABI wrapper exists).
    pub entries_with_name: usize,
}

/// Why a binary cannot be probed. Display gives a one-line reason for users.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GoBinError {
    #[error("not an ELF file")]
    NotElf,
    #[error("malformed ELF file: {0}")]
    BadElf(String),
    #[error("not a Go binary: no Go build info and no .gopclntab section")]
    NotGo,
    #[error("no symbol table and no .gopclntab section: the Go function table was removed")]
    NoFunctionTable,
    #[error("function {name} is not in this binary (not linked in?)")]
    FunctionNotFound { name: String },
    #[error(
        "unsupported .gopclntab magic {magic:#010x} (Go older than 1.2, or newer than this reader)"
    )]
    UnsupportedPclntab { magic: u32 },
    #[error("malformed .gopclntab: bad {field}")]
    BadPclntab { field: &'static str },
    #[error("{what} truncated at offset {offset:#x}")]
    Truncated { what: &'static str, offset: u64 },
    #[error("cannot tell where Go's text starts (no runtime.text, no .text section)")]
    NoTextStart,
    #[error("address {vaddr:#x} is in no loadable segment of the file")]
    AddressNotLoaded { vaddr: u64 },
}

/// Reads the architecture, the Go version and the build settings.
///
/// Fails when the file is not ELF, or has neither buildinfo nor a `.gopclntab` section.
/// An unreadable buildinfo leaves `go_version` None rather than failing.
pub fn read(data: &[u8]) -> Result<GoBinary, GoBinError> {
    let elf = Elf::parse(data, &[])?;
    let info = buildinfo(&elf);
    let pcln_section = elf.pclntab_section();
    if info.is_none() && pcln_section.is_none() {
        return Err(GoBinError::NotGo);
    }
    let pclntab = pcln_section
        .and_then(|s| elf.section_data(s))
        .and_then(|d| Pclntab::parse(d).ok())
        .map(|p| p.version);
    let (go_version, settings) = match info {
        Some(info) => (
            GoVersion::parse(&info.version),
            build_settings(&info.modinfo),
        ),
        None => (None, Vec::new()),
    };
    let goarch = settings
        .iter()
        .find(|(k, _)| k == "GOARCH")
        .map(|(_, v)| v.clone());
    Ok(GoBinary {
        arch: Arch::from_machine(elf.machine),
        pie: elf.e_type == elf::ET_DYN,
        big_endian: elf.big_endian,
        ptr_size: elf.ptr_size,
        has_symtab: elf.has_symtab,
        pclntab,
        go_version,
        goarch,
        settings,
    })
}

/// Finds function `name` (e.g. [`WRITE_KEY_LOG`]): `.symtab` first, else `.gopclntab`; then its
/// file offset.
pub fn find_function(data: &[u8], name: &str) -> Result<FunctionLocation, GoBinError> {
    let elf = Elf::parse(data, &[name, RUNTIME_TEXT])?;
    // cmd/link mangleABIName: when both ABIs of a function exist, .symtab keeps the plain name
    // for the ABIInternal one (the register ABI our fetch args assume) and calls the other
    // `NAME.abi0`, so an exact match is always the right entry.
    if let Some(vaddr) = elf.symbol(name).filter(|s| s.is_func).map(|s| s.value) {
        return Ok(FunctionLocation {
            vaddr,
            file_offset: elf.file_offset(vaddr)?,
            found_by: FoundBy::Symtab,
        });
    }
    let m = match pclntab_lookup(&elf, name) {
        Err(GoBinError::NoFunctionTable) if elf.has_symtab => {
            return Err(GoBinError::FunctionNotFound {
                name: name.to_string(),
            })
        }
        Err(GoBinError::NoFunctionTable) if buildinfo(&elf).is_none() => {
            return Err(GoBinError::NotGo)
        }
        other => other?,
    };
    Ok(FunctionLocation {
        vaddr: m.vaddr,
        file_offset: elf.file_offset(m.vaddr)?,
        found_by: FoundBy::Pclntab,
    })
}

/// Finds function `name` in `.gopclntab` only, ignoring the ELF symbol for the function itself
/// (the `runtime.text` symbol, when present, still anchors 1.18+ offsets). For tests and
/// diagnostics; [`find_function`] is what the probe uses.
///
/// When several entries carry the name (an ABI0 wrapper beside the ABIInternal body, both
/// listed under the plain name), the body wins: entries whose funcID says "wrapper" are dropped
/// (cmd/internal/obj/plist.go marks ABI wrappers `FuncIDWrapper`; its number differs between
/// Go versions, so it is read from `runtime.deferreturn`, which cmd/internal/objabi/funcid.go
/// maps to `FuncIDWrapper`, as in Go 1.19 and 1.26; if that gives 0 or nothing, no entry is
/// dropped), then the largest remaining entry (a wrapper is a short trampoline), then the
/// lowest address. For a Go function such as writeKeyLog the body is the ABIInternal entry,
/// the one `.symtab` names (29 of the 32 doubled names in the Go 1.26 go command, all picked
/// as `.symtab` does); for an assembly function the body is the ABI0 one, and `.symtab` names
/// its ABIInternal wrapper instead (the other 3).
pub fn find_in_pclntab(data: &[u8], name: &str) -> Result<PclntabMatch, GoBinError> {
    let elf = Elf::parse(data, &[RUNTIME_TEXT])?;
    pclntab_lookup(&elf, name)
}

const RUNTIME_TEXT: &str = "runtime.text";

/// At most this many same-named entries are compared; real binaries have one or two.
const MAX_SAME_NAME: usize = 16;

fn pclntab_lookup(elf: &Elf<'_>, name: &str) -> Result<PclntabMatch, GoBinError> {
    let section = elf.pclntab_section().ok_or(GoBinError::NoFunctionTable)?;
    let data = elf.section_data(section).ok_or(GoBinError::Truncated {
        what: ".gopclntab section",
        offset: section.offset,
    })?;
    let pcln = Pclntab::parse(data)?;
    let name = name.as_bytes();

    let mut same: Vec<Candidate> = Vec::new();
    let mut entries_with_name = 0usize;
    let mut wrapper_id: Option<u8> = None;
    for i in 0..pcln.nfunc {
        let f = pcln.func(i)?;
        let is_target = pcln.name_is(f, name);
        if is_target {
            entries_with_name = entries_with_name.saturating_add(1);
            if same.len() < MAX_SAME_NAME {
                same.push(Candidate {
                    index: i,
                    funcid: pcln.funcid(f),
                });
            }
        }
        if wrapper_id.is_none() && pcln.name_is(f, b"runtime.deferreturn") {
            // FuncIDNormal is 0 in every version: a 0 here would wrongly drop normal functions.
            wrapper_id = pcln.funcid(f).filter(|&id| id != 0);
        }
    }
    if same.is_empty() {
        return Err(GoBinError::FunctionNotFound {
            name: String::from_utf8_lossy(name).into_owned(),
        });
    }

    let mut best: Option<(u64, u64)> = None; // (raw entry, size)
    let keep_all = same.iter().all(|c| is_wrapper(c.funcid, wrapper_id));
    for c in &same {
        if !keep_all && is_wrapper(c.funcid, wrapper_id) {
            continue;
        }
        let entry = pcln.entry_raw(c.index)?;
        let next = pcln.entry_raw(c.index.saturating_add(1))?;
        let size = next.saturating_sub(entry);
        let better = match best {
            None => true,
            Some((b_entry, b_size)) => size > b_size || (size == b_size && entry < b_entry),
        };
        if better {
            best = Some((entry, size));
        }
    }
    let (entry, size) = best.ok_or(GoBinError::FunctionNotFound {
        name: String::from_utf8_lossy(name).into_owned(),
    })?;

    let text_start = if pcln.version >= PclntabVersion::Go118 {
        Some(text_start(elf, &pcln, section.addr).ok_or(GoBinError::NoTextStart)?)
    } else {
        None
    };
    let vaddr = match text_start {
        Some((base, _)) => base.checked_add(entry).ok_or(GoBinError::BadPclntab {
            field: "entry offset",
        })?,
        None => entry,
    };
    Ok(PclntabMatch {
        vaddr,
        size,
        version: pcln.version,
        text_start,
        entries_with_name,
    })
}

struct Candidate {
    index: usize,
    funcid: Option<u8>,
}

fn is_wrapper(funcid: Option<u8>, wrapper_id: Option<u8>) -> bool {
    matches!((funcid, wrapper_id), (Some(f), Some(w)) if f == w)
}

/// The base of Go 1.18+ entry offsets, `runtime.text`, from the best source at hand.
fn text_start(elf: &Elf<'_>, pcln: &Pclntab<'_>, pcln_addr: u64) -> Option<(u64, TextStartFrom)> {
    if let Some(sym) = elf.symbol(RUNTIME_TEXT) {
        return Some((sym.value, TextStartFrom::RuntimeTextSymbol));
    }
    // Go 1.18-1.25 linkers store runtime.text's address here (cmd/link pcln.go
    // generatePCHeader). debug/gosym ignores the field as "may be unrelocated"; an unrelocated
    // value is still right here, where every address is a link-time one. 0 (Go 1.26 no longer
    // writes the field; a linker could also leave a relocated word 0) falls through.
    if pcln.header_text != 0 {
        return Some((pcln.header_text, TextStartFrom::Header));
    }
    if let Some(text) = moduledata_text(elf, pcln, pcln_addr) {
        return Some((text, TextStartFrom::Moduledata));
    }
    elf.section(".text")
        .map(|s| (s.addr, TextStartFrom::TextSection))
}

/// `runtime.firstmoduledata.text`: the runtime's own base for entry offsets (runtime/symtab.go
/// `moduledata`, `textAddr`). The struct starts with the pcHeader pointer, then six slices
/// (funcnametab, cutab, filetab, pctab, pclntable, ftab: 3 words each), findfunctab, minpc,
/// maxpc, text: words 0, 1, 20, 21 and 22, unchanged from Go 1.16 to 1.26. A candidate counts
/// when its funcnametab pointer matches the header too and minpc/maxpc equal text plus the
/// first and last (sentinel) entry offsets. In a PIE these words are relocated at load time;
/// Go's linker and GNU ld also write the link-time values into the file (checked on Go 1.26,
/// internal and external linking), but a linker that left them 0 would make nothing match,
/// and the caller falls back to `.text`.
fn moduledata_text(elf: &Elf<'_>, pcln: &Pclntab<'_>, pcln_addr: u64) -> Option<u64> {
    const WORDS: usize = 23;
    let p = usize::from(pcln.ptr_size);
    let funcnametab_addr = pcln_addr.checked_add(pcln.funcname_off)?;
    let first = pcln.entry_raw(0).ok()?;
    let last = pcln.entry_raw(pcln.nfunc).ok()?;
    let span = p.checked_mul(WORDS)?;
    for seg in elf.segments.iter().filter(|s| s.flags & elf::PF_W != 0) {
        let Some(bytes) = elf.segment_data(seg) else {
            continue;
        };
        // Word-aligned in memory: the first aligned address at or after p_vaddr.
        let misalign = usize::try_from(seg.vaddr.checked_rem(p as u64)?).ok()?;
        let skip = p.checked_sub(misalign)?.checked_rem(p)?;
        let mut at = skip;
        while let Some(end) = at.checked_add(span) {
            let Some(words) = bytes.get(at..end) else {
                break;
            };
            let word = |w: usize| uint_at(words, w.checked_mul(p)?, p, pcln.big_endian);
            if word(0) == Some(pcln_addr) && word(1) == Some(funcnametab_addr) {
                if let (Some(minpc), Some(maxpc), Some(text)) = (word(20), word(21), word(22)) {
                    if text.checked_add(first) == Some(minpc)
                        && text.checked_add(last) == Some(maxpc)
                    {
                        return Some(text);
                    }
                }
            }
            at = at.checked_add(p)?;
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// ELF: what the rest needs, copied out of the `object` views.

#[derive(Clone, Copy, Debug)]
struct Segment {
    vaddr: u64,
    offset: u64,
    filesz: u64,
    flags: u32,
}

#[derive(Clone, Copy, Debug)]
struct Section {
    name: &'static str,
    addr: u64,
    offset: u64,
    size: u64,
    nobits: bool,
}

#[derive(Clone, Copy, Debug)]
struct Symbol {
    value: u64,
    is_func: bool,
}

/// The sections this module reads; no other name is compared.
const SECTIONS: [&str; 4] = [
    ".text",
    ".gopclntab",
    // PIE binaries of some Go versions (cmd/internal/objfile/elf.go tries it second).
    ".data.rel.ro.gopclntab",
    ".go.buildinfo",
];

struct Elf<'a> {
    data: &'a [u8],
    machine: u16,
    e_type: u16,
    big_endian: bool,
    ptr_size: u8,
    /// PT_LOAD only.
    segments: Vec<Segment>,
    sections: Vec<Section>,
    has_symtab: bool,
    /// The first defined symbol with nonzero value for each name asked for, in order.
    symbols: Vec<(String, Symbol)>,
}

impl<'a> Elf<'a> {
    /// Parses the headers and looks up the symbols named in `want`.
    fn parse(data: &'a [u8], want: &[&str]) -> Result<Elf<'a>, GoBinError> {
        if data.get(..4) != Some(&elf::ELFMAG[..]) {
            return Err(GoBinError::NotElf);
        }
        match data.get(4) {
            Some(&elf::ELFCLASS32) => parse_elf::<elf::FileHeader32<Endianness>>(data, want),
            Some(&elf::ELFCLASS64) => parse_elf::<elf::FileHeader64<Endianness>>(data, want),
            _ => Err(GoBinError::BadElf("unknown ELF class".to_string())),
        }
    }

    fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    fn pclntab_section(&self) -> Option<&Section> {
        self.section(".gopclntab")
            .or_else(|| self.section(".data.rel.ro.gopclntab"))
    }

    fn section_data(&self, s: &Section) -> Option<&'a [u8]> {
        if s.nobits {
            return None;
        }
        let start = usize::try_from(s.offset).ok()?;
        let end = start.checked_add(usize::try_from(s.size).ok()?)?;
        self.data.get(start..end)
    }

    fn segment_data(&self, s: &Segment) -> Option<&'a [u8]> {
        let start = usize::try_from(s.offset).ok()?;
        let end = start.checked_add(usize::try_from(s.filesz).ok()?)?;
        self.data.get(start..end)
    }

    fn symbol(&self, name: &str) -> Option<Symbol> {
        self.symbols
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| *s)
    }

    /// The PT_LOAD whose file-backed part holds `vaddr`.
    fn segment_of(&self, vaddr: u64) -> Option<&Segment> {
        self.segments.iter().find(|s| {
            vaddr
                .checked_sub(s.vaddr)
                .is_some_and(|delta| delta < s.filesz)
        })
    }

    /// `vaddr - p_vaddr + p_offset` for the PT_LOAD holding `vaddr`, checked to be in the file.
    fn file_offset(&self, vaddr: u64) -> Result<u64, GoBinError> {
        let seg = self
            .segment_of(vaddr)
            .ok_or(GoBinError::AddressNotLoaded { vaddr })?;
        let off = vaddr
            .checked_sub(seg.vaddr)
            .and_then(|d| d.checked_add(seg.offset))
            .ok_or(GoBinError::AddressNotLoaded { vaddr })?;
        if off >= self.data.len() as u64 {
            return Err(GoBinError::Truncated {
                what: "file",
                offset: off,
            });
        }
        Ok(off)
    }

    /// Up to `len` file bytes starting at `vaddr`, stopping at the end of its segment's file
    /// part (debug/buildinfo's DataReader).
    fn read_at(&self, vaddr: u64, len: u64) -> Option<&'a [u8]> {
        let seg = self.segment_of(vaddr)?;
        let delta = vaddr.checked_sub(seg.vaddr)?;
        let avail = seg.filesz.checked_sub(delta)?;
        let start = usize::try_from(seg.offset.checked_add(delta)?).ok()?;
        let n = usize::try_from(len.min(avail)).unwrap_or(usize::MAX);
        // A file cut short gives what is there; callers check lengths they need.
        let end = start.saturating_add(n).min(self.data.len());
        self.data.get(start..end)
    }
}

fn bad_elf(e: object::Error) -> GoBinError {
    GoBinError::BadElf(e.to_string())
}

fn parse_elf<'a, H: FileHeader<Endian = Endianness>>(
    data: &'a [u8],
    want: &[&str],
) -> Result<Elf<'a>, GoBinError> {
    let header = H::parse(data).map_err(bad_elf)?;
    let endian = header.endian().map_err(bad_elf)?;
    let mut segments = Vec::new();
    for ph in header.program_headers(endian, data).map_err(bad_elf)? {
        if ph.p_type(endian) == elf::PT_LOAD {
            segments.push(Segment {
                vaddr: ph.p_vaddr(endian).into(),
                offset: ph.p_offset(endian).into(),
                filesz: ph.p_filesz(endian).into(),
                flags: ph.p_flags(endian),
            });
        }
    }

    // Broken section headers are not fatal: the buildinfo can still be found through the
    // segments, and the function lookup reports what is missing.
    let shdrs = header.section_headers(endian, data).unwrap_or(&[]);
    let shstrtab = header
        .shstrndx(endian, data)
        .ok()
        .and_then(|i| shdrs.get(usize::try_from(i).ok()?))
        .and_then(|s| s.data(endian, data).ok())
        .unwrap_or(&[]);
    let mut sections = Vec::new();
    for sh in shdrs {
        let name_off = usize::try_from(sh.sh_name(endian)).unwrap_or(usize::MAX);
        if let Some(&name) = SECTIONS
            .iter()
            .find(|n| cstr_is(shstrtab, name_off, n.as_bytes()))
        {
            sections.push(Section {
                name,
                addr: sh.sh_addr(endian).into(),
                offset: sh.sh_offset(endian).into(),
                size: sh.sh_size(endian).into(),
                nobits: sh.sh_type(endian) == elf::SHT_NOBITS,
            });
        }
    }

    let mut has_symtab = false;
    let mut symbols: Vec<(String, Symbol)> = Vec::new();
    if let Some(symtab) = shdrs.iter().find(|s| s.sh_type(endian) == elf::SHT_SYMTAB) {
        let syms: &[H::Sym] = symtab.data_as_array(endian, data).unwrap_or(&[]);
        has_symtab = !syms.is_empty();
        let strtab = usize::try_from(symtab.sh_link(endian))
            .ok()
            .and_then(|i| shdrs.get(i))
            .and_then(|s| s.data(endian, data).ok())
            .unwrap_or(&[]);
        // Names are compared in place (no NUL search per symbol): linear in the table size.
        for sym in syms {
            if want.is_empty() || symbols.len() == want.len() {
                break;
            }
            let value: u64 = sym.st_value(endian).into();
            if value == 0 || sym.st_shndx(endian) == elf::SHN_UNDEF {
                continue;
            }
            let name_off = usize::try_from(sym.st_name(endian)).unwrap_or(usize::MAX);
            for w in want {
                if cstr_is(strtab, name_off, w.as_bytes()) && !symbols.iter().any(|(n, _)| n == w) {
                    let is_func = sym.st_type() == elf::STT_FUNC;
                    // For the function itself only a function symbol counts; keep looking.
                    if w == &RUNTIME_TEXT || is_func {
                        symbols.push((w.to_string(), Symbol { value, is_func }));
                    }
                }
            }
        }
    }

    Ok(Elf {
        data,
        machine: header.e_machine(endian),
        e_type: header.e_type(endian),
        big_endian: header.is_big_endian(),
        ptr_size: if header.is_type_64() { 8 } else { 4 },
        segments,
        sections,
        has_symtab,
        symbols,
    })
}

/// True when the NUL-terminated string at `off` in `table` is exactly `name`.
fn cstr_is(table: &[u8], off: usize, name: &[u8]) -> bool {
    let Some(end) = off.checked_add(name.len()) else {
        return false;
    };
    table.get(off..end) == Some(name) && table.get(end) == Some(&0)
}

// ---------------------------------------------------------------------------------------------
// .gopclntab

/// A parsed pcHeader and the sub-tables it points to (debug/gosym/pclntab.go parsePclnTab).
struct Pclntab<'a> {
    version: PclntabVersion,
    big_endian: bool,
    ptr_size: u8,
    nfunc: usize,
    /// `{entry, funcoff}` pairs then the end-of-text sentinel: exactly `(2*nfunc+1)` fields.
    functab: &'a [u8],
    /// What `funcoff` is relative to.
    funcdata: &'a [u8],
    /// What `_func.nameOff` is relative to.
    funcnametab: &'a [u8],
    /// Offset of funcnametab from the header (1.16+; 0 before).
    funcname_off: u64,
    /// The pcHeader's textStart field (1.18+; 0 before and from Go 1.26 on).
    header_text: u64,
}

const PCLNTAB_HEADER_LEN: usize = 8;

impl<'a> Pclntab<'a> {
    fn parse(data: &'a [u8]) -> Result<Pclntab<'a>, GoBinError> {
        let head = data
            .get(..PCLNTAB_HEADER_LEN)
            .ok_or(GoBinError::Truncated {
                what: ".gopclntab header",
                offset: 0,
            })?;
        let le = u32_at(head, 0, false).ok_or(GoBinError::BadPclntab { field: "magic" })?;
        let be = u32_at(head, 0, true).ok_or(GoBinError::BadPclntab { field: "magic" })?;
        // The magics read differently in the other byte order, so the match gives both the
        // version and the endianness (debug/gosym does the same).
        let (version, big_endian) = match (le, be) {
            (0xfffffffb, _) => (PclntabVersion::Go12, false),
            (_, 0xfffffffb) => (PclntabVersion::Go12, true),
            (0xfffffffa, _) => (PclntabVersion::Go116, false),
            (_, 0xfffffffa) => (PclntabVersion::Go116, true),
            (0xfffffff0, _) => (PclntabVersion::Go118, false),
            (_, 0xfffffff0) => (PclntabVersion::Go118, true),
            (0xfffffff1, _) => (PclntabVersion::Go120, false),
            (_, 0xfffffff1) => (PclntabVersion::Go120, true),
            _ => return Err(GoBinError::UnsupportedPclntab { magic: le }),
        };
        // Two zero pad bytes, the pc quantum (min instruction size) and the pointer size.
        if head.get(4..6) != Some(&[0, 0][..]) {
            return Err(GoBinError::BadPclntab {
                field: "header padding",
            });
        }
        if !matches!(head.get(6), Some(1 | 2 | 4)) {
            return Err(GoBinError::BadPclntab {
                field: "pc quantum",
            });
        }
        let ptr_size = match head.get(7) {
            Some(&p @ (4 | 8)) => p,
            _ => {
                return Err(GoBinError::BadPclntab {
                    field: "pointer size",
                })
            }
        };
        let p = usize::from(ptr_size);
        let word = |w: usize| -> Result<u64, GoBinError> {
            let off = w
                .checked_mul(p)
                .and_then(|o| o.checked_add(PCLNTAB_HEADER_LEN))
                .unwrap_or(usize::MAX);
            uint_at(data, off, p, big_endian).ok_or(GoBinError::Truncated {
                what: ".gopclntab header",
                offset: off as u64,
            })
        };
        let sub = |what: &'static str, off: u64| -> Result<&'a [u8], GoBinError> {
            usize::try_from(off)
                .ok()
                .and_then(|o| data.get(o..))
                .ok_or(GoBinError::Truncated { what, offset: off })
        };
        let nfunc = usize::try_from(word(0)?).map_err(|_| GoBinError::BadPclntab {
            field: "function count",
        })?;
        // 1.18+: {entryoff u32, funcoff u32}; before: two uintptrs (debug/gosym functabFieldSize).
        let field = if version >= PclntabVersion::Go118 {
            4
        } else {
            p
        };
        let functab_len = nfunc
            .checked_mul(2)
            .and_then(|n| n.checked_add(1))
            .and_then(|n| n.checked_mul(field))
            .ok_or(GoBinError::BadPclntab {
                field: "function count",
            })?;

        let (functab_at, funcdata, funcnametab, funcname_off, header_text) = match version {
            // runtime/symtab.go pcHeader: nfunc, nfiles, textStart, funcnameOffset, cuOffset,
            // filetabOffset, pctabOffset, pclnOffset; ftab starts the pclntable.
            PclntabVersion::Go118 | PclntabVersion::Go120 => {
                let funcname_off = word(3)?;
                let pcln_off = word(7)?;
                let funcdata = sub("pclntable", pcln_off)?;
                let at = usize::try_from(pcln_off).unwrap_or(usize::MAX);
                (
                    at,
                    funcdata,
                    sub("funcnametab", funcname_off)?,
                    funcname_off,
                    word(2)?,
                )
            }
            // Go 1.16 pcHeader: as above without textStart.
            PclntabVersion::Go116 => {
                let funcname_off = word(2)?;
                let pcln_off = word(6)?;
                let funcdata = sub("pclntable", pcln_off)?;
                let at = usize::try_from(pcln_off).unwrap_or(usize::MAX);
                (
                    at,
                    funcdata,
                    sub("funcnametab", funcname_off)?,
                    funcname_off,
                    0,
                )
            }
            // golang.org/s/go12symtab: the header, nfunc, then the functab; every offset is
            // from the start of the table.
            PclntabVersion::Go12 => (PCLNTAB_HEADER_LEN.saturating_add(p), data, data, 0, 0),
        };
        let functab = functab_at
            .checked_add(functab_len)
            .and_then(|end| data.get(functab_at..end))
            .ok_or(GoBinError::Truncated {
                what: "function table",
                offset: functab_at as u64,
            })?;
        Ok(Pclntab {
            version,
            big_endian,
            ptr_size,
            nfunc,
            functab,
            funcdata,
            funcnametab,
            funcname_off,
            header_text,
        })
    }

    fn field_size(&self) -> usize {
        if self.version >= PclntabVersion::Go118 {
            4
        } else {
            usize::from(self.ptr_size)
        }
    }

    fn functab_field(&self, index: usize) -> Result<u64, GoBinError> {
        let sz = self.field_size();
        let off = index.saturating_mul(sz);
        uint_at(self.functab, off, sz, self.big_endian).ok_or(GoBinError::Truncated {
            what: "function table",
            offset: off as u64,
        })
    }

    /// Entry of function `i` as stored: an offset from text start (1.18+) or an address.
    /// `i == nfunc` gives the end-of-text sentinel.
    fn entry_raw(&self, i: usize) -> Result<u64, GoBinError> {
        self.functab_field(i.saturating_mul(2))
    }

    /// Function `i`'s `_func` record, from its start to the end of the table.
    fn func(&self, i: usize) -> Result<&'a [u8], GoBinError> {
        let idx = i
            .checked_mul(2)
            .and_then(|n| n.checked_add(1))
            .unwrap_or(usize::MAX);
        let off = self.functab_field(idx)?;
        usize::try_from(off)
            .ok()
            .and_then(|o| self.funcdata.get(o..))
            .ok_or(GoBinError::Truncated {
                what: "function data",
                offset: off,
            })
    }

    /// Whether `_func.nameOff` points at exactly `name` in the funcname table.
    fn name_is(&self, f: &[u8], name: &[u8]) -> bool {
        // _func: entry (u32 offset since 1.18, else uintptr), then nameOff int32.
        let at = if self.version >= PclntabVersion::Go118 {
            4
        } else {
            usize::from(self.ptr_size)
        };
        let Some(off) = u32_at(f, at, self.big_endian) else {
            return false;
        };
        // A negative int32 is no name.
        i32::try_from(off)
            .ok()
            .and_then(|o| usize::try_from(o).ok())
            .is_some_and(|o| cstr_is(self.funcnametab, o, name))
    }

    /// `_func.funcID` where its place is known (1.16+; 1.2-1.15 moved it around).
    fn funcid(&self, f: &[u8]) -> Option<u8> {
        // After entry and nameOff: args, deferreturn, pcsp, pcfile, pcln, npcdata, cuOffset
        // (7 x 4 bytes), then startLine (4 bytes, 1.20+), then funcID.
        let at = match self.version {
            PclntabVersion::Go120 => 40,
            PclntabVersion::Go118 => 36,
            PclntabVersion::Go116 => usize::from(self.ptr_size).checked_add(32)?,
            PclntabVersion::Go12 => return None,
        };
        f.get(at).copied()
    }
}

// ---------------------------------------------------------------------------------------------
// .go.buildinfo (debug/buildinfo/buildinfo.go)

struct BuildInfo {
    version: String,
    modinfo: String,
}

const BUILDINFO_MAGIC: &[u8; 14] = b"\xff Go buildinf:";
const BUILDINFO_ALIGN: u64 = 16;
const BUILDINFO_HEADER_LEN: u64 = 32;

/// The version and module info strings, or None when absent or unreadable.
fn buildinfo(elf: &Elf<'_>) -> Option<BuildInfo> {
    let (start, size) = match elf.section(".go.buildinfo") {
        Some(s) => (s.addr, s.size),
        // debug/buildinfo DataStart: else the first writable, non-executable PT_LOAD, where the
        // linker puts the blob near the beginning.
        None => elf
            .segments
            .iter()
            .find(|s| s.flags & (elf::PF_X | elf::PF_W) == elf::PF_W)
            .map(|s| (s.vaddr, s.filesz))?,
    };
    let addr = search_magic(elf, start, size)?;
    let header = elf.read_at(addr, BUILDINFO_HEADER_LEN)?;
    let &ptr_size = header.get(14)?;
    let &flags = header.get(15)?;
    let header_end = addr.checked_add(BUILDINFO_HEADER_LEN)?;
    let (version, modinfo) = if flags & 0x2 != 0 {
        // Go 1.18+: two varint-length-prefixed strings right after the header.
        let (version, next) = varint_string(elf, header_end)?;
        let (modinfo, _) = varint_string(elf, next)?;
        (version, modinfo)
    } else {
        // Before: pointers to two Go string headers {ptr, len}, byte order from flags bit 0.
        let p = usize::from(ptr_size);
        if p != 4 && p != 8 {
            return None;
        }
        let big = flags & 0x1 != 0;
        let vers_ptr = uint_at(header, 16, p, big)?;
        let mod_ptr = uint_at(header, p.checked_add(16)?, p, big)?;
        (
            go_string(elf, vers_ptr, p, big)?,
            go_string(elf, mod_ptr, p, big).unwrap_or_default(),
        )
    };
    if version.is_empty() {
        return None;
    }
    Some(BuildInfo {
        version: String::from_utf8_lossy(version).into_owned(),
        modinfo: String::from_utf8_lossy(strip_sentinels(modinfo)).into_owned(),
    })
}

/// The first 16-byte-aligned magic in `[start, start+size)`.
fn search_magic(elf: &Elf<'_>, start: u64, size: u64) -> Option<u64> {
    let end = start.checked_add(size)?;
    let first = start
        .checked_add(BUILDINFO_ALIGN.checked_sub(1)?)?
        .checked_div(BUILDINFO_ALIGN)?
        .checked_mul(BUILDINFO_ALIGN)?;
    let skip = first.checked_sub(start)?;
    let bytes = elf.read_at(start, size)?;
    let bytes = bytes.get(usize::try_from(skip).ok()?..)?;
    let step = usize::try_from(BUILDINFO_ALIGN).ok()?;
    let header = usize::try_from(BUILDINFO_HEADER_LEN).ok()?;
    for (i, chunk) in bytes.chunks(step).enumerate() {
        if chunk.starts_with(BUILDINFO_MAGIC) {
            let at = first.checked_add(u64::try_from(i.checked_mul(step)?).ok()?)?;
            // The whole header must fit in the range (debug/buildinfo searchMagic).
            if end.checked_sub(at)? < header as u64 {
                return None;
            }
            return Some(at);
        }
    }
    None
}

/// A varint length then that many bytes, read through the segments; and the address after.
fn varint_string<'a>(elf: &Elf<'a>, addr: u64) -> Option<(&'a [u8], u64)> {
    let head = elf.read_at(addr, 10)?;
    let (len, n) = uvarint(head)?;
    let start = addr.checked_add(n as u64)?;
    let s = elf.read_at(start, len)?;
    if (s.len() as u64) < len {
        return None;
    }
    Some((s, start.checked_add(len)?))
}

/// A Go string header `{ptr, len}` at `addr`, and the bytes it points to.
fn go_string<'a>(elf: &Elf<'a>, addr: u64, p: usize, big: bool) -> Option<&'a [u8]> {
    let hdr = elf.read_at(addr, u64::try_from(p.checked_mul(2)?).ok()?)?;
    let ptr = uint_at(hdr, 0, p, big)?;
    let len = uint_at(hdr, p, p, big)?;
    let s = elf.read_at(ptr, len)?;
    ((s.len() as u64) == len).then_some(s)
}

/// The module info is framed by two 16-byte sentinels (cmd/go/internal/modload infoStart and
/// infoEnd); debug/buildinfo drops them, or the whole text when the framing is not there.
fn strip_sentinels(m: &[u8]) -> &[u8] {
    let n = m.len();
    if n >= 33 && n.checked_sub(17).and_then(|i| m.get(i)) == Some(&b'\n') {
        m.get(16..n.saturating_sub(16)).unwrap_or(&[])
    } else {
        &[]
    }
}

/// encoding/binary.Uvarint: the value and the bytes used; None when cut short or over 64 bits.
fn uvarint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for (i, &byte) in b.iter().enumerate().take(10) {
        let shift = u32::try_from(i.checked_mul(7)?).ok()?;
        if i == 9 && byte > 1 {
            return None;
        }
        v |= u64::from(byte & 0x7f).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            return Some((v, i.checked_add(1)?));
        }
    }
    None
}

/// The `build\tKEY=VALUE` lines of the module info (runtime/debug ParseBuildInfo). Keys and
/// values may be Go-quoted; a line that does not parse is skipped.
fn build_settings(modinfo: &str) -> Vec<(String, String)> {
    modinfo
        .lines()
        .filter_map(|line| line.strip_prefix("build\t"))
        .filter_map(|kv| {
            let (key, raw_value) = if kv.starts_with(['"', '`']) {
                let (key, used) = unquote_prefix(kv)?;
                (key, kv.get(used..)?.strip_prefix('=')?)
            } else {
                let (k, v) = kv.split_once('=')?;
                (k.to_string(), v)
            };
            if key.is_empty() {
                return None;
            }
            let value = if raw_value.starts_with(['"', '`']) {
                let (v, used) = unquote_prefix(raw_value)?;
                (used == raw_value.len()).then_some(v)?
            } else {
                raw_value.to_string()
            };
            Some((key, value))
        })
        .collect()
}

/// strconv.QuotedPrefix + Unquote for the forms strconv.Quote writes: the unquoted text and the
/// bytes the quoted form took.
fn unquote_prefix(s: &str) -> Option<(String, usize)> {
    let mut chars = s.char_indices();
    let (_, quote) = chars.next()?;
    if quote == '`' {
        let end = s.get(1..)?.find('`')?.checked_add(1)?;
        return Some((s.get(1..end)?.to_string(), end.checked_add(1)?));
    }
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, i.checked_add(1)?)),
            '\\' => {
                let (_, e) = chars.next()?;
                let simple = match e {
                    'a' => Some('\u{7}'),
                    'b' => Some('\u{8}'),
                    'f' => Some('\u{c}'),
                    'n' => Some('\n'),
                    'r' => Some('\r'),
                    't' => Some('\t'),
                    'v' => Some('\u{b}'),
                    '\\' | '"' | '\'' => Some(e),
                    _ => None,
                };
                if let Some(c) = simple {
                    out.push(c);
                    continue;
                }
                let digits = match e {
                    'x' => 2,
                    'u' => 4,
                    'U' => 8,
                    _ => return None,
                };
                let mut v: u32 = 0;
                for _ in 0..digits {
                    let d = chars.next()?.1.to_digit(16)?;
                    v = v.checked_mul(16)?.checked_add(d)?;
                }
                // \xNN is a byte; a lone high byte is not UTF-8, shown as U+FFFD.
                out.push(char::from_u32(v).unwrap_or(char::REPLACEMENT_CHARACTER));
            }
            c => out.push(c),
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Byte helpers: every read is a `get`.

/// A 4- or 8-byte unsigned integer.
fn uint_at(b: &[u8], off: usize, size: usize, big: bool) -> Option<u64> {
    match size {
        4 => u32_at(b, off, big).map(u64::from),
        8 => u64_at(b, off, big),
        _ => None,
    }
}

#[cfg(test)]
#[path = "gobin_tests.rs"]
mod tests;
