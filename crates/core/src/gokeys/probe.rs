//! Where writeKeyLog's arguments are at its entry, by Go ABI, and the `uprobe_events` line that
//! fetches them (Documentation/trace/uprobetracer.rst).
//!
//! `func (c *Config) writeKeyLog(label string, clientRandom, secret []byte) error` (Go >= 1.12;
//! crypto/tls/common.go). Its arguments, after the receiver, are three words, three words and
//! three words (string: ptr, len; slice: ptr, len, cap); the register ABI assigns them to
//! integer registers in order (internal/abi, cmd/compile/abi-internal.md), the stack ABI lays
//! them out above the return address.

use super::event::{LABEL_FETCH, RANDOM_FETCH, SECRET_FETCH};
use super::gobin::{Arch, GoVersion};
use std::fmt;

/// How a Go function receives its arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Abi {
    /// ABIInternal on amd64 (Go >= 1.17): RAX, RBX, RCX, RDI, RSI, R8, R9, R10, R11.
    RegisterAmd64,
    /// ABIInternal on arm64 (Go >= 1.18): R0-R15.
    RegisterArm64,
    /// ABI0: every argument on the stack, word `$stack1` onwards ($stack0 is the return
    /// address on amd64 and 386; arm and arm64 keep a word for the saved link register
    /// there). `word` is the pointer size in bytes.
    Stack { word: u8 },
}

impl Abi {
    pub fn name(self) -> &'static str {
        match self {
            Abi::RegisterAmd64 | Abi::RegisterArm64 => "register",
            Abi::Stack { .. } => "stack",
        }
    }
}

/// Why a binary cannot be probed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AbiRefusal {
    NoVersion,
    /// Before Go 1.12 writeKeyLog took (clientRandom, masterSecret): TLS 1.2 only, another
    /// signature.
    TooOld(String),
    Arch(String),
}

impl fmt::Display for AbiRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AbiRefusal::NoVersion => {
                write!(
                    f,
                    "no Go version in the binary (no .go.buildinfo): the ABI is unknown"
                )
            }
            AbiRefusal::TooOld(v) => write!(
                f,
                "{v} is older than Go 1.12, whose writeKeyLog has another signature"
            ),
            AbiRefusal::Arch(a) => write!(
                f,
                "architecture {a} is not supported (amd64, arm64, 386 and arm are)"
            ),
        }
    }
}

/// The ABI writeKeyLog's body uses in a binary of this architecture and Go version.
pub fn abi_for(arch: &Arch, version: Option<&GoVersion>) -> Result<Abi, AbiRefusal> {
    let v = version.ok_or(AbiRefusal::NoVersion)?;
    let at_least = |minor: u32| v.major > 1 || (v.major == 1 && v.minor >= minor);
    if !at_least(12) {
        return Err(AbiRefusal::TooOld(v.text.clone()));
    }
    match arch {
        Arch::Amd64 if at_least(17) => Ok(Abi::RegisterAmd64),
        Arch::Arm64 if at_least(18) => Ok(Abi::RegisterArm64),
        Arch::Amd64 | Arch::Arm64 => Ok(Abi::Stack { word: 8 }),
        // 386 and arm still use ABI0 (Go 1.26).
        Arch::I386 | Arch::Arm => Ok(Abi::Stack { word: 4 }),
        other => Err(AbiRefusal::Arch(format!("{other:?}"))),
    }
}

/// The fetch arguments: label, client random and secret as byte arrays, each with its length.
/// Names are what [`super::event`] parses.
pub fn fetch_args(abi: Abi) -> String {
    let (lab, labn, cr, crn, sec, secn, len_type) = match abi {
        Abi::RegisterAmd64 => (
            "%bx".to_string(),
            "%cx".to_string(),
            "%di".to_string(),
            "%si".to_string(),
            "%r9".to_string(),
            "%r10".to_string(),
            "u64",
        ),
        Abi::RegisterArm64 => (
            "%x1".to_string(),
            "%x2".to_string(),
            "%x3".to_string(),
            "%x4".to_string(),
            "%x6".to_string(),
            "%x7".to_string(),
            "u64",
        ),
        // Receiver at 1; label 2, 3; clientRandom 4, 5 (cap 6); secret 7, 8 (cap 9).
        Abi::Stack { word } => (
            "$stack2".to_string(),
            "$stack3".to_string(),
            "$stack4".to_string(),
            "$stack5".to_string(),
            "$stack7".to_string(),
            "$stack8".to_string(),
            if word == 4 { "u32" } else { "u64" },
        ),
    };
    format!(
        "lab=+0({lab}):x8[{LABEL_FETCH}] labn={labn}:{len_type} \
cr=+0({cr}):x8[{RANDOM_FETCH}] crn={crn}:{len_type} \
sec=+0({sec}):x8[{SECRET_FETCH}] secn={secn}:{len_type}"
    )
}

/// Why a probe line cannot be written for a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadPath(pub String);

impl fmt::Display for BadPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the path {:?} has white space or is not absolute: uprobe_events cannot name it",
            self.0
        )
    }
}

/// The `uprobe_events` line defining entry probe `group/event` at `offset` in `path`.
/// uprobe_events splits on white space, so such a path cannot be written.
pub fn probe_line(
    group: &str,
    event: &str,
    path: &str,
    offset: u64,
    abi: Abi,
) -> Result<String, BadPath> {
    if !path.starts_with('/') || path.chars().any(char::is_whitespace) {
        return Err(BadPath(path.to_string()));
    }
    Ok(format!(
        "p:{group}/{event} {path}:{offset:#x} {}",
        fetch_args(abi)
    ))
}

/// The line that removes a probe.
pub fn remove_line(group: &str, event: &str) -> String {
    format!("-:{group}/{event}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str, minor: u32) -> GoVersion {
        GoVersion {
            major: 1,
            minor,
            patch: 0,
            text: text.into(),
        }
    }

    #[test]
    fn abi_by_arch_and_version() {
        assert_eq!(
            abi_for(&Arch::Amd64, Some(&v("go1.26.8", 26))),
            Ok(Abi::RegisterAmd64)
        );
        assert_eq!(
            abi_for(&Arch::Amd64, Some(&v("go1.17", 17))),
            Ok(Abi::RegisterAmd64)
        );
        assert_eq!(
            abi_for(&Arch::Amd64, Some(&v("go1.16.15", 16))),
            Ok(Abi::Stack { word: 8 })
        );
        assert_eq!(
            abi_for(&Arch::Arm64, Some(&v("go1.18", 18))),
            Ok(Abi::RegisterArm64)
        );
        // arm64 got the register ABI one release after amd64.
        assert_eq!(
            abi_for(&Arch::Arm64, Some(&v("go1.17.13", 17))),
            Ok(Abi::Stack { word: 8 })
        );
        assert_eq!(
            abi_for(&Arch::I386, Some(&v("go1.26", 26))),
            Ok(Abi::Stack { word: 4 })
        );
        assert_eq!(
            abi_for(&Arch::Arm, Some(&v("go1.26", 26))),
            Ok(Abi::Stack { word: 4 })
        );
        assert_eq!(
            abi_for(&Arch::Amd64, Some(&v("go1.11.13", 11))),
            Err(AbiRefusal::TooOld("go1.11.13".into()))
        );
        assert_eq!(abi_for(&Arch::Amd64, None), Err(AbiRefusal::NoVersion));
        assert!(matches!(
            abi_for(&Arch::Other(8), Some(&v("go1.26", 26))),
            Err(AbiRefusal::Arch(_))
        ));
        for r in [
            AbiRefusal::NoVersion,
            AbiRefusal::TooOld("go1.10".into()),
            AbiRefusal::Arch("mips".into()),
        ] {
            assert!(!r.to_string().is_empty());
        }
    }

    #[test]
    fn probe_lines_per_abi() {
        assert_eq!(
            probe_line(
                "modtrace_1_ab",
                "wkl_1",
                "/usr/local/go/bin/go",
                0x30c3e0,
                Abi::RegisterAmd64
            )
            .unwrap(),
            "p:modtrace_1_ab/wkl_1 /usr/local/go/bin/go:0x30c3e0 \
lab=+0(%bx):x8[31] labn=%cx:u64 cr=+0(%di):x8[32] crn=%si:u64 sec=+0(%r9):x8[48] secn=%r10:u64"
        );
        assert_eq!(
            probe_line("g", "e", "/go", 0x10, Abi::RegisterArm64).unwrap(),
            "p:g/e /go:0x10 \
lab=+0(%x1):x8[31] labn=%x2:u64 cr=+0(%x3):x8[32] crn=%x4:u64 sec=+0(%x6):x8[48] secn=%x7:u64"
        );
        assert_eq!(
            probe_line("g", "e", "/go", 0x10, Abi::Stack { word: 8 }).unwrap(),
            "p:g/e /go:0x10 \
lab=+0($stack2):x8[31] labn=$stack3:u64 cr=+0($stack4):x8[32] crn=$stack5:u64 \
sec=+0($stack7):x8[48] secn=$stack8:u64"
        );
        assert!(probe_line("g", "e", "/go", 0x10, Abi::Stack { word: 4 })
            .unwrap()
            .contains("secn=$stack8:u32"));
        assert_eq!(
            probe_line("g", "e", "/my go/bin/go", 1, Abi::RegisterAmd64),
            Err(BadPath("/my go/bin/go".into()))
        );
        assert!(probe_line("g", "e", "go", 1, Abi::RegisterAmd64).is_err());
        assert_eq!(remove_line("g", "e"), "-:g/e");
    }
}
