//! Go's module path patterns and proxy bases: `path.Match` and golang.org/x/mod's
//! `MatchPrefixPatterns` (GOPRIVATE, GONOPROXY, GONOSUMDB syntax, see `go help private`),
//! re-implemented byte for byte, and GOPROXY bases with the URLs they cover.

use super::goenv::{host_only, port_of};
use super::path::split_url;

/// `path.Match` found a malformed pattern (Go's `path.ErrBadPattern`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadPattern;

/// Go's `path.Match(pattern, name)`: `*` matches any run of non-`/` characters, `?` one
/// non-`/` character, `[...]` a character class (`^` negates, `a-z` ranges), `\` escapes.
/// The whole name must match. A malformed pattern is an error (as in Go, also when the part
/// that is malformed comes after the point where the match failed).
pub fn path_match(pattern: &str, name: &str) -> Result<bool, BadPattern> {
    let mut pattern = pattern.as_bytes();
    let mut name = name.as_bytes();
    'pattern: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            // A trailing * matches the rest of the name unless it has a /.
            return Ok(!name.contains(&b'/'));
        }
        // Look for a match at the current position.
        let (t, ok) = match_chunk(chunk, name)?;
        // The last chunk must use up the name; otherwise the star may still match.
        if ok && (t.is_empty() || !pattern.is_empty()) {
            name = t;
            continue;
        }
        if star {
            // Look for a match skipping i+1 bytes; a star cannot skip a /.
            let mut i = 0;
            while i < name.len() && name[i] != b'/' {
                let (t, ok) = match_chunk(chunk, &name[i + 1..])?;
                if ok {
                    if pattern.is_empty() && !t.is_empty() {
                        i += 1;
                        continue;
                    }
                    name = t;
                    continue 'pattern;
                }
                i += 1;
            }
        }
        // Before failing, check that the rest of the pattern is well-formed.
        while !pattern.is_empty() {
            let (_, chunk, rest) = scan_chunk(pattern);
            pattern = rest;
            match_chunk(chunk, b"")?;
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

/// The leading stars, the chunk up to the next star outside a class, and the rest.
fn scan_chunk(mut pattern: &[u8]) -> (bool, &[u8], &[u8]) {
    let mut star = false;
    while pattern.first() == Some(&b'*') {
        pattern = &pattern[1..];
        star = true;
    }
    let mut in_range = false;
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            // A trailing backslash is reported by match_chunk.
            b'\\' if i + 1 < pattern.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => break,
            _ => {}
        }
        i += 1;
    }
    (star, &pattern[..i], &pattern[i..])
}

/// One UTF-8 character at the start of `b`: (code point, length); an invalid byte is
/// U+FFFD of length 1, as Go's utf8.DecodeRune has it.
fn decode_rune(b: &[u8]) -> (u32, usize) {
    let n = match b.first() {
        None => return (0xFFFD, 0),
        Some(&c) if c < 0x80 => return (u32::from(c), 1),
        Some(&c) if c >= 0xF0 => 4,
        Some(&c) if c >= 0xE0 => 3,
        Some(_) => 2,
    };
    match b
        .get(..n)
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| s.chars().next())
    {
        Some(c) => (u32::from(c), n),
        None => (0xFFFD, 1),
    }
}

/// Go's `getEsc`: one (possibly escaped) character of a class; the class must go on after it.
fn get_esc(chunk: &[u8]) -> Result<(u32, &[u8]), BadPattern> {
    let mut chunk = chunk;
    match chunk.first() {
        None | Some(b'-') | Some(b']') => return Err(BadPattern),
        Some(b'\\') => {
            chunk = &chunk[1..];
            if chunk.is_empty() {
                return Err(BadPattern);
            }
        }
        _ => {}
    }
    let (r, n) = decode_rune(chunk);
    let rest = &chunk[n..];
    if (r == 0xFFFD && n == 1) || rest.is_empty() {
        return Err(BadPattern);
    }
    Ok((r, rest))
}

/// Go's `matchChunk`: matches `chunk` (no stars) at the start of `s`; returns the rest of `s`
/// and whether it matched. Goes on through the chunk after a failure to report bad syntax.
fn match_chunk<'a>(mut chunk: &[u8], mut s: &'a [u8]) -> Result<(&'a [u8], bool), BadPattern> {
    let mut failed = false;
    while let Some(&c) = chunk.first() {
        if !failed && s.is_empty() {
            failed = true;
        }
        match c {
            b'[' => {
                let mut r = 0;
                if !failed {
                    let (rr, n) = decode_rune(s);
                    r = rr;
                    s = &s[n..];
                }
                chunk = &chunk[1..];
                let negated = chunk.first() == Some(&b'^');
                if negated {
                    chunk = &chunk[1..];
                }
                let mut matched = false;
                let mut ranges = 0;
                loop {
                    if chunk.first() == Some(&b']') && ranges > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let (lo, rest) = get_esc(chunk)?;
                    chunk = rest;
                    let mut hi = lo;
                    if chunk.first() == Some(&b'-') {
                        let (h, rest) = get_esc(&chunk[1..])?;
                        hi = h;
                        chunk = rest;
                    }
                    if lo <= r && r <= hi {
                        matched = true;
                    }
                    ranges += 1;
                }
                if matched == negated {
                    failed = true;
                }
            }
            b'?' => {
                if !failed {
                    if s[0] == b'/' {
                        failed = true;
                    }
                    let (_, n) = decode_rune(s);
                    s = &s[n..];
                }
                chunk = &chunk[1..];
            }
            _ => {
                if c == b'\\' {
                    chunk = &chunk[1..];
                    if chunk.is_empty() {
                        return Err(BadPattern);
                    }
                }
                if !failed {
                    if chunk[0] != s[0] {
                        failed = true;
                    }
                    s = &s[1..];
                }
                chunk = &chunk[1..];
            }
        }
    }
    if failed {
        Ok((&[], false))
    } else {
        Ok((s, true))
    }
}

/// golang.org/x/mod/module `MatchPrefixPatterns`: whether any of the comma-separated glob
/// patterns matches a prefix of `target` made of whole path elements (a pattern of N
/// elements is matched against the first N elements). Empty patterns are skipped, a trailing
/// `/` is ignored, and a malformed pattern matches nothing.
pub fn match_prefix_patterns(globs: &str, target: &str) -> bool {
    globs.split(',').any(|g| match_prefix(g, target))
}

/// One pattern of [`match_prefix_patterns`].
pub fn match_prefix(glob: &str, target: &str) -> bool {
    let glob = glob.strip_suffix('/').unwrap_or(glob);
    if glob.is_empty() {
        return false;
    }
    // A glob with N slashes is matched against the target up to its N+1'th slash.
    let mut n = glob.bytes().filter(|&b| b == b'/').count();
    let mut prefix = target;
    for (i, b) in target.bytes().enumerate() {
        if b == b'/' {
            if n == 0 {
                prefix = &target[..i];
                break;
            }
            n -= 1;
        }
    }
    if n > 0 {
        // Not enough path elements.
        return false;
    }
    path_match(glob, prefix).unwrap_or(false)
}

/// Splits a GOPRIVATE-style list into its patterns (empty ones dropped, as Go skips them).
pub fn split_patterns(list: &str) -> impl Iterator<Item = &str> {
    list.split(',')
        .filter(|p| !p.trim_end_matches('/').is_empty())
}

// ---------------------------------------------------------------------------------------------
// Proxy bases

/// A GOPROXY base (`https://proxy.corp.example/go`): scheme, host, port (the scheme's default
/// when not written) and path prefix. A base covers the URLs under its path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyBase {
    /// As written (with `https://` added when it had no scheme, as GOPROXY does).
    pub text: String,
    scheme: String,
    host: String,
    port: u16,
    /// Without a trailing `/`; empty for the root.
    path: String,
}

impl ProxyBase {
    pub fn parse(s: &str) -> Option<ProxyBase> {
        let s = s.trim();
        let text = if s.contains("://") {
            s.to_string()
        } else {
            format!("https://{s}")
        };
        let u = split_url(&text)?;
        let scheme = u.scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        let host = host_only(u.authority);
        if host.is_empty() || u.query.is_some() {
            return None;
        }
        let port = port_of(u.authority).unwrap_or(default_port);
        Some(ProxyBase {
            scheme,
            host,
            port,
            path: u.path.trim_end_matches('/').to_string(),
            text,
        })
    }

    /// Whether `base` (an exchange's GOPROXY or checksum-database base URL) is this base or
    /// under its path.
    pub fn covers(&self, base: &str) -> bool {
        let Some(b) = ProxyBase::parse(base) else {
            return false;
        };
        b.scheme == self.scheme
            && b.host == self.host
            && b.port == self.port
            && (self.path.is_empty()
                || b.path == self.path
                || b.path
                    .strip_prefix(&self.path)
                    .is_some_and(|r| r.starts_with('/')))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // golang.org/x/mod/module's module_test.go, TestMatchPrefixPatterns.
    #[test]
    fn match_prefix_patterns_matches_go() {
        let cases = [
            ("", "rsc.io/quote", false),
            ("/", "rsc.io/quote", false),
            ("*/quote", "rsc.io/quote", true),
            ("*/quo", "rsc.io/quote", false),
            ("*/quo??", "rsc.io/quote", true),
            ("*/quo*", "rsc.io/quote", true),
            ("*quo*", "rsc.io/quote", false),
            ("rsc.io", "rsc.io/quote", true),
            ("*.io", "rsc.io/quote", true),
            ("rsc.io/", "rsc.io/quote", true),
            ("rsc", "rsc.io/quote", false),
            ("rsc*", "rsc.io/quote", true),
            ("rsc.io", "rsc.io/quote/v3", true),
            ("*/quote", "rsc.io/quote/v3", true),
            ("*/quote/", "rsc.io/quote/v3", true),
            ("*/quote/*", "rsc.io/quote/v3", true),
            ("*/quote/*/", "rsc.io/quote/v3", true),
            ("*/v3", "rsc.io/quote/v3", false),
            ("*/*/v3", "rsc.io/quote/v3", true),
            ("*/*/*", "rsc.io/quote/v3", true),
            ("*/*/*/", "rsc.io/quote/v3", true),
            ("*/*/*", "rsc.io/quote", false),
            ("*/*/*/", "rsc.io/quote", false),
            ("*/*/*,,", "rsc.io/quote", false),
            ("*/*/*,,*/quote", "rsc.io/quote", true),
            (",,*/quote", "rsc.io/quote", true),
        ];
        for (globs, target, want) in cases {
            assert_eq!(
                match_prefix_patterns(globs, target),
                want,
                "MatchPrefixPatterns({globs:?}, {target:?})"
            );
        }
        // go help private's examples.
        assert!(match_prefix_patterns(
            "*.corp.example.com,rsc.io/private",
            "git.corp.example.com/xyzzy"
        ));
        assert!(match_prefix_patterns(
            "*.corp.example.com,rsc.io/private",
            "rsc.io/private/quux"
        ));
        assert!(!match_prefix_patterns("rsc.io/private", "rsc.io/privateer"));
        // Case matters, as in Go.
        assert!(!match_prefix_patterns(
            "example.test/hello",
            "example.test/Hello"
        ));
    }

    // Go's path/match_test.go matchTests (those path.Match shares with filepath.Match).
    #[test]
    fn path_match_matches_go() {
        let ok = |p, s, want: bool| {
            assert_eq!(path_match(p, s), Ok(want), "Match({p:?}, {s:?})");
        };
        let bad = |p, s| assert_eq!(path_match(p, s), Err(BadPattern), "Match({p:?}, {s:?})");
        ok("abc", "abc", true);
        ok("*", "abc", true);
        ok("*c", "abc", true);
        ok("a*", "a", true);
        ok("a*", "abc", true);
        ok("a*", "ab/c", false);
        ok("a*/b", "abc/b", true);
        ok("a*/b", "a/c/b", false);
        ok("a*b*c*d*e*/f", "axbxcxdxe/f", true);
        ok("a*b*c*d*e*/f", "axbxcxdxexxx/f", true);
        ok("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false);
        ok("a*b*c*d*e*/f", "axbxcxdxexxx/fff", false);
        ok("a*b?c*x", "abxbbxdbxebxczzx", true);
        ok("a*b?c*x", "abxbbxdbxebxczzy", false);
        ok("ab[c]", "abc", true);
        ok("ab[b-d]", "abc", true);
        ok("ab[e-g]", "abc", false);
        ok("ab[^c]", "abc", false);
        ok("ab[^b-d]", "abc", false);
        ok("ab[^e-g]", "abc", true);
        ok("a\\*b", "a*b", true);
        ok("a\\*b", "ab", false);
        ok("a?b", "a☺b", true);
        ok("a[^a]b", "a☺b", true);
        ok("a???b", "a☺b", false);
        ok("a[^a][^a][^a]b", "a☺b", false);
        ok("[a-ζ]*", "α", true);
        ok("*[a-ζ]", "A", false);
        ok("a?b", "a/b", false);
        ok("a*b", "a/b", false);
        ok("[\\]a]", "]", true);
        ok("[\\-]", "-", true);
        ok("[x\\-]", "x", true);
        ok("[x\\-]", "-", true);
        ok("[x\\-]", "z", false);
        ok("[\\-x]", "x", true);
        ok("[\\-x]", "-", true);
        ok("[\\-x]", "a", false);
        bad("[]a]", "]");
        bad("[-]", "-");
        bad("[x-]", "x");
        bad("[x-]", "-");
        bad("[x-]", "z");
        bad("[-x]", "x");
        bad("[-x]", "-");
        bad("[-x]", "a");
        bad("\\", "a");
        bad("[a-b-c]", "a");
        bad("[", "a");
        bad("[^", "a");
        bad("[^bc", "a");
        bad("a[", "a");
        bad("a[", "ab");
        bad("a[", "x");
        bad("a/b[", "x");
        ok("*x", "xxx", true);
    }

    #[test]
    fn proxy_bases_compare_origin_and_path_prefix() {
        let corp = ProxyBase::parse("https://proxy.corp.example/go/").unwrap();
        assert!(corp.covers("https://proxy.corp.example/go"));
        assert!(corp.covers("https://PROXY.corp.example:443/go/sumdb/sum.golang.org"));
        assert!(!corp.covers("https://proxy.corp.example/gopher"));
        assert!(!corp.covers("http://proxy.corp.example/go"));
        assert!(!corp.covers("https://proxy.corp.example:8443/go"));
        let lab = ProxyBase::parse("http://127.0.0.1:8083").unwrap();
        assert!(lab.covers("http://127.0.0.1:8083"));
        assert!(!lab.covers("http://127.0.0.1:8082"));
        // No scheme means https, as in GOPROXY.
        assert!(ProxyBase::parse("corp.example")
            .unwrap()
            .covers("https://corp.example/x"));
        assert_eq!(ProxyBase::parse("ftp://x"), None);
        assert_eq!(ProxyBase::parse("https://x/?a=1"), None);
        assert_eq!(ProxyBase::parse("https://"), None);
        assert!(ProxyBase::parse("http://[::1]:8081")
            .unwrap()
            .covers("http://[::1]:8081/p"));
    }
}
