//! What a request is in Go terms: a GOPROXY operation, a checksum-database operation, go-get
//! discovery, git smart HTTP, or something else. See shared/docs/go-wire.md.

use super::path::{decode_element, percent_decode, split_url};
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Op {
    List,
    Info,
    Mod,
    Zip,
    Latest,
    /// The zip of module golang.org/toolchain: a Go toolchain download (Go 1.21+).
    Toolchain,
    /// Checksum database `/supported` (asked of each proxy before the sumdb).
    Supported,
    /// Checksum database `/lookup/<mod>@<ver>`.
    Lookup,
    /// Checksum database hash tile `/tile/8/L/N[.p/W]`.
    Tile,
    /// `?go-get=1` import-path discovery.
    GoGet,
    /// git smart HTTP (`info/refs?service=git-upload-pack`, `git-upload-pack`).
    Git,
    Other,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::List => "list",
            Op::Info => "info",
            Op::Mod => "mod",
            Op::Zip => "zip",
            Op::Latest => "latest",
            Op::Toolchain => "toolchain",
            Op::Supported => "supported",
            Op::Lookup => "lookup",
            Op::Tile => "tile",
            Op::GoGet => "go-get",
            Op::Git => "git",
            Op::Other => "other",
        }
    }
    /// GOPROXY protocol operations (module content).
    pub fn is_proxy(self) -> bool {
        matches!(
            self,
            Op::List | Op::Info | Op::Mod | Op::Zip | Op::Latest | Op::Toolchain
        )
    }
    pub fn is_sumdb(self) -> bool {
        matches!(self, Op::Supported | Op::Lookup | Op::Tile)
    }
    /// Requests that fetch or locate module source: proxy, go-get and VCS.
    pub fn is_module_fetch(self) -> bool {
        self.is_proxy() || matches!(self, Op::GoGet | Op::Git)
    }
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The module toolchain downloads come from (Go 1.21+ GOTOOLCHAIN switching).
pub const TOOLCHAIN_MODULE: &str = "golang.org/toolchain";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Classified {
    pub op: Op,
    /// Decoded module path (e.g. `example.test/Util`).
    pub module: Option<String>,
    /// Decoded version.
    pub version: Option<String>,
    /// The base the request was made against: for proxy ops the GOPROXY entry
    /// (`http://127.0.0.1:8081` or with a path prefix), for sumdb ops the checksum database URL
    /// (possibly `<proxy>/sumdb/<name>`), else scheme://authority.
    pub base: String,
    /// Checksum database name when reached through a proxy's `/sumdb/<name>/` path.
    pub sumdb_name: Option<String>,
}

/// Classifies a request by method and absolute URL.
pub fn classify(method: &str, url: &str) -> Classified {
    let other = |base: String| Classified {
        op: Op::Other,
        module: None,
        version: None,
        base,
        sumdb_name: None,
    };
    let Some(u) = split_url(url) else {
        return other(String::new());
    };
    let origin = format!("{}://{}", u.scheme, u.authority);
    if method.eq_ignore_ascii_case("CONNECT") {
        return other(origin);
    }
    let path = u.path;
    let query = u.query.unwrap_or("");

    // go-get discovery: GET https://<import path>?go-get=1
    if query.split('&').any(|kv| kv == "go-get=1") {
        let module = format!("{}{}", host_of(u.authority), path.trim_end_matches('/'));
        return Classified {
            op: Op::GoGet,
            module: Some(percent_decode(&module).unwrap_or(module)),
            version: None,
            base: origin,
            sumdb_name: None,
        };
    }
    // git smart HTTP
    if (path.ends_with("/info/refs") && query.contains("service=git-"))
        || path.ends_with("/git-upload-pack")
    {
        let repo = path
            .trim_end_matches("/info/refs")
            .trim_end_matches("/git-upload-pack");
        let repo = repo.trim_end_matches(".git");
        return Classified {
            op: Op::Git,
            module: Some(format!(
                "{}{}",
                host_of(u.authority),
                percent_decode(repo).unwrap_or(repo.to_string())
            )),
            version: None,
            base: origin,
            sumdb_name: None,
        };
    }
    if !query.is_empty() {
        // The go command sends no query string on proxy or sumdb requests.
        return other(origin);
    }
    if let Some(c) = classify_sumdb(&origin, path) {
        return c;
    }
    if let Some(c) = classify_proxy(&origin, path) {
        return c;
    }
    other(origin)
}

fn host_of(authority: &str) -> &str {
    // Import paths never carry the port; keep IPv6 brackets as they are.
    match authority.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':') => h,
        _ => authority,
    }
}

fn classify_sumdb(origin: &str, path: &str) -> Option<Classified> {
    let sumdb_name_of = |prefix: &str| -> Option<String> {
        // <proxy>/sumdb/<name>/...: the name is the path element after the last "sumdb".
        let idx = prefix.rfind("/sumdb/")?;
        let name = &prefix[idx + "/sumdb/".len()..];
        (!name.is_empty() && !name.contains('/')).then(|| name.to_string())
    };
    if let Some(prefix) = path.strip_suffix("/supported") {
        let name = sumdb_name_of(prefix)?;
        return Some(Classified {
            op: Op::Supported,
            module: None,
            version: None,
            base: format!("{origin}{prefix}"),
            sumdb_name: Some(name),
        });
    }
    if let Some(idx) = path.rfind("/lookup/") {
        let prefix = &path[..idx];
        let rest = &path[idx + "/lookup/".len()..];
        let (m, v) = rest.rsplit_once('@')?;
        return Some(Classified {
            op: Op::Lookup,
            module: Some(decode_element(m)),
            version: Some(decode_element(v)),
            base: format!("{origin}{prefix}"),
            sumdb_name: sumdb_name_of(prefix),
        });
    }
    if let Some(idx) = path.find("/tile/") {
        let prefix = &path[..idx];
        if is_tile_path(&path[idx + "/tile/".len()..]) {
            return Some(Classified {
                op: Op::Tile,
                module: None,
                version: None,
                base: format!("{origin}{prefix}"),
                sumdb_name: sumdb_name_of(prefix),
            });
        }
    }
    None
}

/// `H/L/N[.p/W]` or a data tile `H/data/N[.p/W]`, with N in 3-digit groups `x001/x234/567`
/// (golang.org/x/mod/sumdb/tlog ParseTilePath).
fn is_tile_path(s: &str) -> bool {
    let mut parts: Vec<&str> = s.split('/').collect();
    if parts.len() < 3 {
        return false;
    }
    if parts.len() >= 4 && parts[parts.len() - 2].ends_with(".p") {
        let w = parts[parts.len() - 1];
        if w.parse::<u16>().map_or(true, |w| w == 0 || w >= 256) {
            return false;
        }
        parts.pop();
        let last = parts.len() - 1;
        parts[last] = parts[last].trim_end_matches(".p");
    }
    let height_ok = parts[0].parse::<u8>().is_ok_and(|h| (1..=30).contains(&h));
    let level_ok = parts[1] == "data" || parts[1].parse::<u8>().is_ok();
    let n = &parts[2..];
    let groups_ok = n.iter().enumerate().all(|(i, g)| {
        let digits = if i + 1 < n.len() {
            g.strip_prefix('x')
        } else {
            Some(*g)
        };
        digits.is_some_and(|d| d.len() == 3 && d.bytes().all(|b| b.is_ascii_digit()))
    });
    height_ok && level_ok && groups_ok
}

fn classify_proxy(origin: &str, path: &str) -> Option<Classified> {
    let (prefix, op, version) = if let Some(idx) = path.rfind("/@v/") {
        let file = &path[idx + "/@v/".len()..];
        let (op, ver) = if file == "list" {
            (Op::List, None)
        } else if let Some(v) = file.strip_suffix(".info") {
            (Op::Info, Some(v))
        } else if let Some(v) = file.strip_suffix(".mod") {
            (Op::Mod, Some(v))
        } else if let Some(v) = file.strip_suffix(".zip") {
            (Op::Zip, Some(v))
        } else {
            return None;
        };
        (&path[..idx], op, ver)
    } else if let Some(p) = path.strip_suffix("/@latest") {
        (p, Op::Latest, None)
    } else {
        return None;
    };
    if version.is_some_and(|v| v.is_empty() || v.contains('/')) {
        return None;
    }
    let (base_path, module) = split_base_and_module(prefix)?;
    let module = decode_element(module);
    let op = if op == Op::Zip && module == TOOLCHAIN_MODULE {
        Op::Toolchain
    } else {
        op
    };
    Some(Classified {
        op,
        version: version.map(decode_element),
        module: Some(module),
        base: format!("{origin}{base_path}"),
        sumdb_name: None,
    })
}

/// Splits `/prefix/example.test/!util` into the GOPROXY base path and the escaped module path.
/// A module path's first element contains a dot (go help importpath), a base path's elements
/// normally do not, so the module starts at the first element with a dot.
fn split_base_and_module(prefix: &str) -> Option<(&str, &str)> {
    let trimmed = prefix.strip_prefix('/')?;
    let mut offset = 1;
    for elem in trimmed.split('/') {
        if elem.contains('.') {
            return Some((&prefix[..offset - 1], &prefix[offset..]));
        }
        offset += elem.len() + 1;
    }
    // No element with a dot: take the whole path as the module (a GOPROXY without prefix
    // serving a dotless path, which GOPRIVATE setups allow).
    (!trimmed.is_empty()).then_some(("", trimmed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(url: &str) -> Classified {
        classify("GET", url)
    }

    #[test]
    fn proxy_ops() {
        let x = c("http://127.0.0.1:8081/example.test/%21util/@v/v0.2.0.info");
        assert_eq!(x.op, Op::Info);
        assert_eq!(x.module.as_deref(), Some("example.test/Util"));
        assert_eq!(x.version.as_deref(), Some("v0.2.0"));
        assert_eq!(x.base, "http://127.0.0.1:8081");
        assert_eq!(c("http://h/example.test/hello/@v/list").op, Op::List);
        assert_eq!(c("http://h/example.test/hello/@v/v1.0.0.mod").op, Op::Mod);
        assert_eq!(c("http://h/example.test/hello/@v/v1.0.0.zip").op, Op::Zip);
        let l = c("http://h/goproxy/example.test/hello/@latest");
        assert_eq!(
            (l.op, l.base.as_str(), l.module.as_deref()),
            (Op::Latest, "http://h/goproxy", Some("example.test/hello"))
        );
        let t = c("https://proxy.example/golang.org/toolchain/@v/v0.0.1-go1.26.8.linux-amd64.zip");
        assert_eq!(t.op, Op::Toolchain);
        assert_eq!(t.version.as_deref(), Some("v0.0.1-go1.26.8.linux-amd64"));
        assert_eq!(c("http://h/example.test/hello/@v/v1.0.0.txt").op, Op::Other);
        assert_eq!(c("http://h/example.test/hello/@v/list?x=1").op, Op::Other);
    }

    #[test]
    fn sumdb_ops() {
        let s = c("http://127.0.0.1:8081/sumdb/sum.lab.test/supported");
        assert_eq!(
            (s.op, s.sumdb_name.as_deref()),
            (Op::Supported, Some("sum.lab.test"))
        );
        let l = c("http://127.0.0.1:8090/lookup/example.test/!util@v0.2.0");
        assert_eq!(l.op, Op::Lookup);
        assert_eq!(l.module.as_deref(), Some("example.test/Util"));
        assert_eq!(l.version.as_deref(), Some("v0.2.0"));
        assert_eq!(l.base, "http://127.0.0.1:8090");
        let p = c("http://127.0.0.1:8081/sumdb/sum.lab.test/lookup/example.test/hello@v1.1.0");
        assert_eq!(
            (p.op, p.base.as_str()),
            (Op::Lookup, "http://127.0.0.1:8081/sumdb/sum.lab.test")
        );
        for tile in [
            "tile/8/0/000.p/5",
            "tile/8/0/x001/x234/567",
            "tile/8/1/000.p/1",
            "tile/8/0/001",
            "tile/8/data/000.p/9",
        ] {
            assert_eq!(c(&format!("http://h/{tile}")).op, Op::Tile, "{tile}");
        }
        for bad in [
            "tile/8/0/1",
            "tile/8/0/000.p/256",
            "tile/8/0/000.p/0",
            "tile/x/0/000",
        ] {
            assert_eq!(c(&format!("http://h/{bad}")).op, Op::Other, "{bad}");
        }
    }

    #[test]
    fn discovery_and_git() {
        let g = c("https://example.test/Util?go-get=1");
        assert_eq!(
            (g.op, g.module.as_deref()),
            (Op::GoGet, Some("example.test/Util"))
        );
        let r = c("http://git.lab.test:8085/repo/x.git/info/refs?service=git-upload-pack");
        assert_eq!(
            (r.op, r.module.as_deref()),
            (Op::Git, Some("git.lab.test/repo/x"))
        );
        assert_eq!(
            classify("POST", "http://git.lab.test/repo/x.git/git-upload-pack").op,
            Op::Git
        );
        assert_eq!(classify("CONNECT", "http://h:443").op, Op::Other);
        assert_eq!(c("http://h/").op, Op::Other);
        assert_eq!(c("not a url").op, Op::Other);
    }
}
