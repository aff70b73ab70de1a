//! Module path and version escaping on the wire, and the shape of GOPROXY, checksum-database,
//! go-get and git URLs. Pure functions over strings.

/// Percent-decodes `s` (RFC 3986 2.1). `None` for a malformed escape or a result that is not
/// UTF-8: the go command never sends either.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Go modules reference, "Module cache" / golang.org/x/mod/module.UnescapePath: each `!` plus
/// a lower-case letter stands for the upper-case letter; an upper-case letter or a `!` not
/// followed by a lower-case letter is invalid in an escaped path.
pub fn unescape_bang(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut bang = false;
    for c in s.chars() {
        if bang {
            if !c.is_ascii_lowercase() {
                return None;
            }
            out.push(c.to_ascii_uppercase());
            bang = false;
        } else if c == '!' {
            bang = true;
        } else if c.is_ascii_uppercase() {
            return None;
        } else {
            out.push(c);
        }
    }
    if bang {
        None
    } else {
        Some(out)
    }
}

/// The inverse of [`unescape_bang`] (module.EscapePath without validity checks).
pub fn escape_bang(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if c.is_ascii_uppercase() {
            out.push('!');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Decodes a module path or version as it appears in a URL path: percent-escapes first, then
/// `!` escaping (the go command percent-escapes the `!` in proxy URLs: `%21util`).
/// Falls back to the percent-decoded text when the `!` escaping is invalid, so that a
/// malformed request is still shown by the path it asked for.
pub fn decode_element(s: &str) -> String {
    let p = percent_decode(s).unwrap_or_else(|| s.to_string());
    unescape_bang(&p).unwrap_or(p)
}

/// An absolute URL split into the parts modtrace needs. Not a general URL parser: it keeps the
/// text as sent on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlParts<'a> {
    pub scheme: &'a str,
    /// host[:port], userinfo removed.
    pub authority: &'a str,
    pub userinfo: Option<&'a str>,
    /// Starts with `/` (or is empty).
    pub path: &'a str,
    pub query: Option<&'a str>,
}

pub fn split_url(url: &str) -> Option<UrlParts<'_>> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (auth_full, tail) = rest.split_at(end);
    let (userinfo, authority) = match auth_full.rsplit_once('@') {
        Some((u, a)) => (Some(u), a),
        None => (None, auth_full),
    };
    let tail = tail.split('#').next().unwrap_or("");
    let (path, query) = match tail.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (tail, None),
    };
    Some(UrlParts {
        scheme,
        authority,
        userinfo,
        path,
        query,
    })
}

/// Resolves a Location header value against the URL of the request it answered
/// (RFC 9110 10.2.2: it may be relative).
pub fn resolve_location(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_string();
    }
    let Some(parts) = split_url(base) else {
        return location.to_string();
    };
    if let Some(rest) = location.strip_prefix("//") {
        return format!("{}://{}", parts.scheme, rest);
    }
    if location.starts_with('/') {
        return format!("{}://{}{}", parts.scheme, parts.authority, location);
    }
    let dir = match parts.path.rfind('/') {
        Some(i) => &parts.path[..=i],
        None => "/",
    };
    format!("{}://{}{}{}", parts.scheme, parts.authority, dir, location)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Cases from golang.org/x/mod/module's module_test.go (escapeTests / badUnescape).
    #[test]
    fn bang_escaping_matches_go() {
        let cases = [
            (
                "ascii.com/abcdefghijklmnopqrstuvwxyz.-/~_0123456789",
                "ascii.com/abcdefghijklmnopqrstuvwxyz.-/~_0123456789",
            ),
            (
                "github.com/GoogleCloudPlatform/omega",
                "github.com/!google!cloud!platform/omega",
            ),
            ("example.test/Util", "example.test/!util"),
        ];
        for (path, esc) in cases {
            assert_eq!(escape_bang(path), esc);
            assert_eq!(unescape_bang(esc).as_deref(), Some(path));
        }
        for bad in [
            "github.com/GoogleCloudPlatform/omega",
            "github.com/!google!cloud!platform!/omega",
            "github.com/!0/x",
            "x!",
        ] {
            assert_eq!(unescape_bang(bad), None, "{bad}");
        }
    }

    #[test]
    fn percent_then_bang() {
        assert_eq!(decode_element("example.test/%21util"), "example.test/Util");
        assert_eq!(decode_element("v1.0.0-%21r%21c1"), "v1.0.0-RC1");
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%e2%80%94"), Some("\u{2014}".to_string()));
        assert_eq!(percent_decode("%ff"), None);
    }

    #[test]
    fn url_split_and_resolve() {
        let u = split_url("http://user:pw@127.0.0.1:8081/a/b?go-get=1#f").unwrap();
        assert_eq!(u.scheme, "http");
        assert_eq!(u.authority, "127.0.0.1:8081");
        assert_eq!(u.userinfo, Some("user:pw"));
        assert_eq!(u.path, "/a/b");
        assert_eq!(u.query, Some("go-get=1"));
        let base = "http://127.0.0.1:8081/example.test/%21util/@v/v0.2.0.info";
        assert_eq!(
            resolve_location(base, "http://127.0.0.1:8082/x"),
            "http://127.0.0.1:8082/x"
        );
        assert_eq!(resolve_location(base, "/y/z"), "http://127.0.0.1:8081/y/z");
        assert_eq!(resolve_location(base, "//h:1/q"), "http://h:1/q");
        assert_eq!(
            resolve_location(base, "v0.2.0.mod"),
            "http://127.0.0.1:8081/example.test/%21util/@v/v0.2.0.mod"
        );
    }
}
