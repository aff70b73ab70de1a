//! The GOPROXY protocol as the lab serves it (Go modules reference, "GOPROXY protocol"): what
//! a request asks for ([`ProxyRequest`], [`parse_proxy_target`]), the answers from a module
//! store, which modules a scoped proxy serves, and the go-get page.

use super::http::{Request, Response};
use super::modules::{percent_decode, unescape_path, ModuleStore};

/// Which modules of the store a [`ServerKind::ScopedProxy`] serves, by module path prefix
/// (whole path elements, as GOPRIVATE matches): a company's private proxy has only its own
/// modules, a public mirror everything but them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModuleScope {
    All,
    Only(String),
    Except(String),
}

impl ModuleScope {
    pub fn serves(&self, module: &str) -> bool {
        let under = |p: &str| {
            module == p
                || module
                    .strip_prefix(p)
                    .is_some_and(|rest| rest.starts_with('/'))
        };
        match self {
            ModuleScope::All => true,
            ModuleScope::Only(p) => under(p),
            ModuleScope::Except(p) => !under(p),
        }
    }
}

/// Bytes allowed in the import path a go-get page names: the module path characters of
/// golang.org/x/mod/module (letters, digits, `-._~/`, plus `+` and `!`), so the page cannot
/// carry markup.
fn is_import_path_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/' | b'+' | b'!')
}

/// The go-get page: `GET /<path>?go-get=1` (cmd/go/internal/vcs, repoRootForImportDynamic)
/// with the import prefix `<host><path>`, the host taken from the Host header without port
/// (import paths carry no port).
pub fn goget_answer(req: &Request, repo_root: &str) -> Response {
    let (path, query) = match req.target.split_once('?') {
        Some((p, q)) => (p, q),
        None => (req.target.as_str(), ""),
    };
    if !query.split('&').any(|kv| kv == "go-get=1") {
        return Response::text(404, "not found: this lab server only answers ?go-get=1\n");
    }
    let host = req
        .header("host")
        .map(|h| String::from_utf8_lossy(h).into_owned())
        .unwrap_or_default();
    let host = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h.to_string(),
        _ => host,
    };
    let prefix = format!("{host}{}", path.trim_end_matches('/'));
    if host.is_empty() || path.len() < 2 || !prefix.bytes().all(is_import_path_byte) {
        return Response::text(400, "bad request: need a Host header and an import path\n");
    }
    let body = format!(
        "<!DOCTYPE html>\n<html><head>\n<meta name=\"go-import\" content=\"{prefix} mod {repo_root}\">\n</head><body>go get {prefix}</body></html>\n"
    );
    Response::new(200, "text/html; charset=utf-8", body.into_bytes())
}

/// What a GOPROXY request asks for (Go modules reference, "GOPROXY protocol").
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProxyRequest {
    List { module: String },
    Info { module: String, version: String },
    Mod { module: String, version: String },
    Zip { module: String, version: String },
    Latest { module: String },
}

impl ProxyRequest {
    pub fn module(&self) -> &str {
        match self {
            ProxyRequest::List { module }
            | ProxyRequest::Info { module, .. }
            | ProxyRequest::Mod { module, .. }
            | ProxyRequest::Zip { module, .. }
            | ProxyRequest::Latest { module } => module,
        }
    }
}

/// Parses a request target under `prefix`: percent-decoding first, then `!`-unescaping of the
/// module path and version (the order go-wire.md gives). `None` for anything else.
pub fn parse_proxy_target(prefix: &str, target: &str) -> Option<ProxyRequest> {
    let path = target.split('?').next()?;
    let rest = path.strip_prefix(prefix)?;
    if !rest.starts_with('/') {
        return None;
    }
    let decoded = percent_decode(rest)?;
    let decoded = decoded.strip_prefix('/')?;
    if let Some(m) = decoded.strip_suffix("/@latest") {
        return Some(ProxyRequest::Latest {
            module: unescape_path(m)?,
        });
    }
    let (m, file) = decoded.rsplit_once("/@v/")?;
    let module = unescape_path(m)?;
    if module.is_empty() {
        return None;
    }
    if file == "list" {
        return Some(ProxyRequest::List { module });
    }
    let (ver, ext) = file.rsplit_once('.')?;
    let version = unescape_path(ver)?;
    if version.is_empty() || version.contains('/') {
        return None;
    }
    match ext {
        "info" => Some(ProxyRequest::Info { module, version }),
        "mod" => Some(ProxyRequest::Mod { module, version }),
        "zip" => Some(ProxyRequest::Zip { module, version }),
        _ => None,
    }
}

pub(super) fn proxy_answer(
    store: &ModuleStore,
    prefix: &str,
    scope: &ModuleScope,
    target: &str,
) -> Response {
    let not_found = || {
        Response::text(
            404,
            "not found: unknown module or version in this lab proxy\n",
        )
    };
    let Some(req) = parse_proxy_target(prefix, target) else {
        return not_found();
    };
    if !scope.serves(req.module()) {
        return not_found();
    }
    match req {
        ProxyRequest::List { module } => match store.versions(&module) {
            Some(vs) => {
                let body: String = vs.iter().map(|v| format!("{v}\n")).collect();
                Response::new(200, "text/plain; charset=utf-8", body.into_bytes())
            }
            None => not_found(),
        },
        ProxyRequest::Latest { module } => match store.latest(&module) {
            Some(v) => Response::new(200, "application/json", v.info.clone()),
            None => not_found(),
        },
        ProxyRequest::Info { module, version } => match store.get(&module, &version) {
            Some(v) => Response::new(200, "application/json", v.info.clone()),
            None => not_found(),
        },
        ProxyRequest::Mod { module, version } => match store.get(&module, &version) {
            Some(v) => Response::new(200, "text/plain; charset=utf-8", v.go_mod.clone()),
            None => not_found(),
        },
        ProxyRequest::Zip { module, version } => match store.get(&module, &version) {
            Some(v) => Response::new(200, "application/zip", v.zip.clone()),
            None => not_found(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_scopes_match_whole_path_elements() {
        let only = ModuleScope::Only("corp.lab.test".into());
        assert!(only.serves("corp.lab.test/Billing"));
        assert!(only.serves("corp.lab.test"));
        assert!(!only.serves("corp.lab.testing/x"));
        assert!(!only.serves("example.test/Hello"));
        let except = ModuleScope::Except("corp.lab.test".into());
        assert!(!except.serves("corp.lab.test/Billing"));
        assert!(except.serves("corp.lab.testing/x"));
        assert!(ModuleScope::All.serves("anything"));
    }

    #[test]
    fn parses_escaped_proxy_targets() {
        let m = "example.test/Util".to_string();
        assert_eq!(
            parse_proxy_target("", "/example.test/%21util/@v/v0.2.0.info"),
            Some(ProxyRequest::Info {
                module: m.clone(),
                version: "v0.2.0".into()
            })
        );
        assert_eq!(
            parse_proxy_target("", "/example.test/!util/@v/list"),
            Some(ProxyRequest::List { module: m.clone() })
        );
        assert_eq!(
            parse_proxy_target("", "/example.test/%21util/@latest"),
            Some(ProxyRequest::Latest { module: m.clone() })
        );
        assert_eq!(
            parse_proxy_target("/mod", "/mod/example.test/%21util/@v/v0.2.0.zip"),
            Some(ProxyRequest::Zip {
                module: m.clone(),
                version: "v0.2.0".into()
            })
        );
        assert_eq!(
            parse_proxy_target("", "/example.test/!util/@v/v1.0.0-!r!c.mod"),
            Some(ProxyRequest::Mod {
                module: m,
                version: "v1.0.0-RC".into()
            })
        );
        assert_eq!(
            parse_proxy_target("", "/example.test/Util/@v/list"),
            None,
            "unescaped upper case"
        );
        assert_eq!(
            parse_proxy_target("/mod", "/example.test/!util/@v/list"),
            None,
            "prefix missing"
        );
        assert_eq!(
            parse_proxy_target("/mod", "/modx/a/@v/list"),
            None,
            "prefix is a path element"
        );
        assert_eq!(parse_proxy_target("", "/a/@v/v1.0.0.tar"), None);
        assert_eq!(
            parse_proxy_target("", "/sumdb/sum.golang.org/supported"),
            None
        );
        assert_eq!(parse_proxy_target("", "/a/@v/%zz.info"), None);
    }

    fn request(target: &str, host: Option<&str>) -> Request {
        Request {
            method: "GET".into(),
            target: target.into(),
            minor: 1,
            headers: host
                .map(|h| vec![("Host".to_string(), h.as_bytes().to_vec())])
                .unwrap_or_default(),
        }
    }

    #[test]
    fn goget_page_names_host_and_path_as_import_prefix() {
        let page = |t: &str, h: Option<&str>| goget_answer(&request(t, h), "http://lab.test");
        let ok = page("/Hello?go-get=1", Some("lab.test:443"));
        assert_eq!(ok.status, 200);
        assert!(String::from_utf8_lossy(&ok.body)
            .contains("<meta name=\"go-import\" content=\"lab.test/Hello mod http://lab.test\">"));
        let deep = page("/a/b/?x=1&go-get=1", Some("lab.test"));
        assert!(String::from_utf8_lossy(&deep.body).contains("content=\"lab.test/a/b mod "));
        assert_eq!(page("/Hello", Some("lab.test")).status, 404);
        assert_eq!(page("/Hello?go-get=10", Some("lab.test")).status, 404);
        assert_eq!(page("/Hello?go-get=1", None).status, 400);
        assert_eq!(page("/?go-get=1", Some("lab.test")).status, 400);
        assert_eq!(page("/a\"b?go-get=1", Some("lab.test")).status, 400);
        assert_eq!(page("/a?go-get=1", Some("x<y")).status, 400);
    }
}
