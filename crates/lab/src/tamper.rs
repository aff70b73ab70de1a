//! The lab's tampering GOPROXY: serves the lab modules (or relays them from an upstream GOPROXY)
//! and changes what it serves, as a compromised or careless mirror would: one byte of one
//! file inside every module zip (the zip is rebuilt, so it stays a valid zip and only its h1:
//! hash changes), optionally one byte of the `.mod`, optionally the `Time` of the `.info`.
//!
//! One byte, and where: the last byte of the first file in the zip that is not the module's
//! go.mod (go.mod only when it is the only file; the go command compares that one with the
//! `.mod` file). A final `\n` becomes a space, so Go source stays valid Go; any other last byte
//! has its lowest bit flipped. The `.mod` body gets the same treatment, so it still parses.

use super::goproxy::ProxyRequest;
use super::http::Response;
use super::modules::write_zip;
use super::LabError;
use std::io::{Cursor, Read};

/// What a tampering server changes. The default changes every zip and nothing else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TamperPlan {
    /// Change one byte of one file in every `.zip` served (the h1: hash changes).
    pub zip: bool,
    /// Change one byte of every `.mod` served (the `/go.mod` h1: hash changes).
    pub go_mod: bool,
    /// Replace the `Time` of every `.info` (and `@latest`) body with this RFC 3339 time; the
    /// module's hashes do not cover `.info`, so this is a disagreement, not a forgery.
    pub info_time: Option<String>,
    /// Change `.zip` / `.mod` only for this module path (`None`: every module). `info_time`
    /// applies to every module regardless.
    pub only_module: Option<String>,
}

impl Default for TamperPlan {
    fn default() -> Self {
        TamperPlan {
            zip: true,
            go_mod: false,
            info_time: None,
            only_module: None,
        }
    }
}

impl TamperPlan {
    /// Parses the ARG of a `tamper` server spec: comma-separated `mod` (also the `.mod`),
    /// `nozip`, `time=<RFC 3339>`, `only=<module path>`; `upstream=...` is taken by the caller.
    pub fn parse_options<'a>(
        opts: impl IntoIterator<Item = &'a str>,
    ) -> Result<TamperPlan, String> {
        let mut plan = TamperPlan::default();
        for o in opts {
            match o.split_once('=') {
                None if o == "mod" => plan.go_mod = true,
                None if o == "nozip" => plan.zip = false,
                None if o.is_empty() => {}
                Some(("time", t)) if !t.is_empty() && !t.contains(['"', '\\']) => {
                    plan.info_time = Some(t.to_string())
                }
                Some(("only", m)) if !m.is_empty() => plan.only_module = Some(m.to_string()),
                _ => {
                    return Err(format!(
                        "tamper option {o:?}: use mod, nozip, time=<RFC 3339>, only=<module>, upstream=<NAME or URL>"
                    ))
                }
            }
        }
        Ok(plan)
    }

    fn touches(&self, module: &str) -> bool {
        self.only_module.as_deref().is_none_or(|m| m == module)
    }

    /// Applies the plan to a 200 answer for `req`; other answers pass unchanged. A body that
    /// cannot be tampered with as planned (not a zip, not JSON) is answered 502, so a broken
    /// tamperer never passes for an honest one.
    pub fn apply(&self, req: &ProxyRequest, resp: Response) -> Response {
        if resp.status != 200 {
            return resp;
        }
        let changed = match req {
            ProxyRequest::Zip { module, version } if self.zip && self.touches(module) => {
                tamper_zip(&resp.body, module, version).map(|t| t.zip)
            }
            ProxyRequest::Mod { module, .. } if self.go_mod && self.touches(module) => {
                Ok(flip_last_byte(&resp.body))
            }
            ProxyRequest::Info { .. } | ProxyRequest::Latest { .. } => match &self.info_time {
                Some(t) => restamp_info(&resp.body, t),
                None => return resp,
            },
            _ => return resp,
        };
        match changed {
            Ok(body) => Response { body, ..resp },
            Err(e) => Response::text(502, &format!("lab tamper: {e}\n")),
        }
    }
}

/// Changes one byte at the end of `data` (see the module comment); an empty body becomes one
/// newline.
pub fn flip_last_byte(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    match out.last_mut() {
        Some(b) if *b == b'\n' => *b = b' ',
        Some(b) => *b ^= 1,
        None => out.push(b'\n'),
    }
    out
}

/// A zip with one byte of one file changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TamperedZip {
    pub zip: Vec<u8>,
    /// The entry whose content changed.
    pub entry: String,
    /// Offset of the changed byte in that entry's content.
    pub offset: usize,
}

/// Limit on what the tamperer unpacks: the go command refuses module zips over 500 MiB
/// (modfetch), lab zips are KBs; 64 MiB of content stops a hostile upstream's zip bomb.
const MAX_UNPACKED: u64 = 64 << 20;

/// Rebuilds a module zip with one byte of one file changed: the first entry (in the zip's
/// order) other than `<module>@<version>/go.mod`, or that one if it is alone.
pub fn tamper_zip(zip: &[u8], module: &str, version: &str) -> Result<TamperedZip, LabError> {
    let bad = |e: String| LabError::Modules(format!("tamper {module}@{version}: {e}"));
    let mut archive = zip::ZipArchive::new(Cursor::new(zip)).map_err(|e| bad(e.to_string()))?;
    let mut entries: Vec<(String, Vec<u8>)> = Vec::with_capacity(archive.len());
    let mut total: u64 = 0;
    for i in 0..archive.len() {
        let f = archive.by_index(i).map_err(|e| bad(e.to_string()))?;
        let name = f.name().to_string();
        let mut data = Vec::new();
        f.take(MAX_UNPACKED.saturating_sub(total) + 1)
            .read_to_end(&mut data)
            .map_err(|e| bad(e.to_string()))?;
        total = total.saturating_add(data.len() as u64);
        if total > MAX_UNPACKED {
            return Err(bad(format!("more than {MAX_UNPACKED} bytes unpacked")));
        }
        entries.push((name, data));
    }
    // Zip entry names carry the module path unescaped (Go modules reference, "Module zip
    // files"), as the request's decoded path does.
    let go_mod = format!("{module}@{version}/go.mod");
    let pick = entries
        .iter()
        .position(|(n, _)| *n != go_mod && !n.ends_with('/'))
        .or_else(|| entries.iter().position(|(n, _)| !n.ends_with('/')))
        .ok_or_else(|| bad("no file to change".into()))?;
    let (entry, offset) = {
        let (name, data) = &mut entries[pick];
        let flipped = flip_last_byte(data);
        let offset = if data.is_empty() { 0 } else { data.len() - 1 };
        *data = flipped;
        (name.clone(), offset)
    };
    Ok(TamperedZip {
        zip: write_zip(&entries)?,
        entry,
        offset,
    })
}

/// The `.info` body with its Time replaced, written as the lab proxy writes `.info`
/// (`{"Version":..,"Time":..}\n`); a body without a string Version is an error.
pub fn restamp_info(body: &[u8], time: &str) -> Result<Vec<u8>, LabError> {
    let v: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| LabError::Modules(format!("tamper .info: {e}")))?;
    let version = v
        .get("Version")
        .and_then(|x| x.as_str())
        .ok_or_else(|| LabError::Modules("tamper .info: no Version".into()))?;
    let q = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    Ok(format!("{{\"Version\":{},\"Time\":{}}}\n", q(version), q(time)).into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::build_module_version;
    use modtrace_core::gomod::h1::{mod_h1, zip_h1};

    fn hello() -> crate::ModuleVersion {
        build_module_version(
            "example.test/Hello",
            "v1.1.0",
            &[
                (
                    "go.mod".into(),
                    b"module example.test/Hello\n\ngo 1.21\n".to_vec(),
                ),
                ("hello.go".into(), b"package hello\n".to_vec()),
                ("z.go".into(), b"package hello\n".to_vec()),
            ],
        )
        .unwrap()
    }

    #[test]
    fn zip_changes_one_byte_of_the_first_non_go_mod_file() {
        let mv = hello();
        let t = tamper_zip(&mv.zip, "example.test/Hello", "v1.1.0").unwrap();
        assert_eq!(t.entry, "example.test/Hello@v1.1.0/hello.go");
        assert_eq!(t.offset, 13);
        let mut a = zip::ZipArchive::new(Cursor::new(&t.zip)).unwrap();
        let mut s = String::new();
        a.by_name("example.test/Hello@v1.1.0/hello.go")
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "package hello ");
        assert_ne!(
            zip_h1(Cursor::new(&t.zip)).unwrap(),
            zip_h1(Cursor::new(&mv.zip)).unwrap()
        );
        assert_eq!(
            tamper_zip(&mv.zip, "example.test/Hello", "v1.1.0").unwrap(),
            t,
            "deterministic"
        );
        assert!(tamper_zip(b"not a zip", "m", "v1.0.0").is_err());
    }

    #[test]
    fn zip_with_only_go_mod_changes_go_mod() {
        let mv = build_module_version(
            "example.test/M",
            "v1.0.0",
            &[("go.mod".into(), b"module example.test/M\n".to_vec())],
        )
        .unwrap();
        let t = tamper_zip(&mv.zip, "example.test/M", "v1.0.0").unwrap();
        assert_eq!(t.entry, "example.test/M@v1.0.0/go.mod");
    }

    #[test]
    fn plan_applies_to_what_it_names() {
        let mv = hello();
        let zip_req = ProxyRequest::Zip {
            module: "example.test/Hello".into(),
            version: "v1.1.0".into(),
        };
        let mod_req = ProxyRequest::Mod {
            module: "example.test/Hello".into(),
            version: "v1.1.0".into(),
        };
        let info_req = ProxyRequest::Info {
            module: "example.test/Hello".into(),
            version: "v1.1.0".into(),
        };
        let ok = |b: &[u8]| Response::new(200, "x", b.to_vec());
        let plan = TamperPlan::default();
        assert_ne!(plan.apply(&zip_req, ok(&mv.zip)).body, mv.zip);
        assert_eq!(plan.apply(&mod_req, ok(&mv.go_mod)).body, mv.go_mod);
        assert_eq!(plan.apply(&info_req, ok(&mv.info)).body, mv.info);
        let nf = Response::text(404, "nope\n");
        assert_eq!(plan.apply(&zip_req, nf).body, b"nope\n");
        assert_eq!(plan.apply(&zip_req, ok(b"junk")).status, 502);

        let all = TamperPlan::parse_options(["mod", "time=2024-06-01T00:00:00Z"]).unwrap();
        let m = all.apply(&mod_req, ok(&mv.go_mod)).body;
        assert_eq!(m.len(), mv.go_mod.len());
        assert_ne!(mod_h1(&m), mod_h1(&mv.go_mod));
        assert_eq!(
            all.apply(&info_req, ok(&mv.info)).body,
            b"{\"Version\":\"v1.1.0\",\"Time\":\"2024-06-01T00:00:00Z\"}\n"
        );

        let only = TamperPlan::parse_options(["only=example.test/Util"]).unwrap();
        assert_eq!(only.apply(&zip_req, ok(&mv.zip)).body, mv.zip);
        let none = TamperPlan::parse_options(["nozip"]).unwrap();
        assert_eq!(none.apply(&zip_req, ok(&mv.zip)).body, mv.zip);
        assert!(TamperPlan::parse_options(["teapot"]).is_err());
        assert!(TamperPlan::parse_options(["time=\"x"]).is_err());
    }

    #[test]
    fn flip_keeps_length_and_changes_one_byte() {
        assert_eq!(flip_last_byte(b"a\n"), b"a ");
        assert_eq!(flip_last_byte(b"ab"), b"ac");
        assert_eq!(flip_last_byte(b""), b"\n");
    }
}
