//! Secrets never leave modtrace: what is redacted in headers and URLs before any sink sees
//! them. The scheme and the user stay (they say what kind of credential went where); the
//! secret does not. Only the text report's `--show-secrets` shows them, from the copies kept
//! in [`crate::gomod::Credential`]'s unserialised fields.

use crate::gomod::path::{percent_decode, split_url};
use crate::gomod::Credential;
use crate::proto::Header;
use base64::Engine;

pub use crate::gomod::MASK;

/// Query parameters whose values are secrets, compared case-insensitively after
/// percent-decoding: bearer tokens and API keys, passwords, and the signatures and credentials
/// of presigned object-store URLs (S3 `X-Amz-*`, GCS `X-Goog-*`, Azure SAS `sig`).
const SECRET_PARAMS: &[&str] = &[
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "auth",
    "authorization",
    "key",
    "apikey",
    "api_key",
    "password",
    "passwd",
    "pwd",
    "secret",
    "client_secret",
    "sig",
    "signature",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "x-goog-signature",
    "x-goog-credential",
];

/// Name endings that mark a secret too (`private_token`, `deploy-key`, `upload_signature`).
const SECRET_SUFFIXES: &[&str] = &[
    "_token",
    "-token",
    "_key",
    "-key",
    "_secret",
    "-secret",
    "_password",
    "-password",
    "_signature",
    "-signature",
];

/// Whether the query parameter `name` (as on the wire) carries a secret.
pub fn is_secret_param(name: &str) -> bool {
    let decoded = percent_decode(name).unwrap_or_else(|| name.to_string());
    let lower = decoded.to_ascii_lowercase();
    SECRET_PARAMS.contains(&lower.as_str()) || SECRET_SUFFIXES.iter().any(|s| lower.ends_with(s))
}

/// A URL with its secrets masked, and what was masked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedactedUrl {
    /// The URL to show: `user:***@` for a userinfo password, `name=***` for secret query
    /// parameters; everything else as sent.
    pub url: String,
    /// The userinfo's user, as in the URL (still percent-encoded), when there was userinfo.
    pub user: Option<String>,
    /// The userinfo had a password (masked).
    pub password: bool,
    /// Names of the query parameters whose values were masked, in order.
    pub params: Vec<String>,
}

impl RedactedUrl {
    /// Something was masked.
    pub fn changed(&self) -> bool {
        self.password || !self.params.is_empty()
    }
}

/// Masks the userinfo password and the secret query parameters of an absolute URL. Text that
/// is not an absolute URL (a CONNECT authority) is returned as it is.
pub fn url_parts(raw: &str) -> RedactedUrl {
    let mut out = RedactedUrl {
        url: raw.to_string(),
        user: None,
        password: false,
        params: Vec::new(),
    };
    let Some(parts) = split_url(raw) else {
        return out;
    };
    let mut url = String::with_capacity(raw.len());
    url.push_str(parts.scheme);
    url.push_str("://");
    if let Some(ui) = parts.userinfo {
        let user = match ui.split_once(':') {
            Some((u, _)) => {
                out.password = true;
                url.push_str(u);
                url.push(':');
                url.push_str(MASK);
                u
            }
            None => {
                url.push_str(ui);
                ui
            }
        };
        url.push('@');
        out.user = Some(user.to_string());
    }
    // The rest of the text from the authority on, as sent (split_url drops nothing else).
    let after_scheme = &raw[parts.scheme.len() + 3..];
    let rest = match parts.userinfo {
        Some(ui) => after_scheme.get(ui.len() + 1..).unwrap_or(""),
        None => after_scheme,
    };
    match rest.split_once('?') {
        Some((head, tail)) => {
            url.push_str(head);
            url.push('?');
            let (query, fragment) = match tail.split_once('#') {
                Some((q, f)) => (q, Some(f)),
                None => (tail, None),
            };
            let mut first = true;
            for pair in query.split('&') {
                if !first {
                    url.push('&');
                }
                first = false;
                match pair.split_once('=') {
                    Some((name, value)) if !value.is_empty() && is_secret_param(name) => {
                        url.push_str(name);
                        url.push('=');
                        url.push_str(MASK);
                        out.params.push(name.to_string());
                    }
                    _ => url.push_str(pair),
                }
            }
            if let Some(f) = fragment {
                url.push('#');
                url.push_str(f);
            }
        }
        None => url.push_str(rest),
    }
    out.url = url;
    out
}

/// [`url_parts`]' URL only.
pub fn url(raw: &str) -> String {
    url_parts(raw).url
}

/// Free text (a finding message) with every `http://` or `https://` URL in it redacted. A URL
/// runs to the next white space or quote; what follows a secret value up to there is masked
/// with it (over-masking is the safe side).
pub fn text(s: &str) -> String {
    if !s.contains("://") {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    loop {
        let next = [rest.find("http://"), rest.find("https://")]
            .into_iter()
            .flatten()
            .min();
        let Some(start) = next else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`'))
            .unwrap_or(tail.len());
        out.push_str(&url(&tail[..end]));
        rest = &tail[end..];
    }
}

/// Headers whose values carry a credential (RFC 9110 11.6.2, 11.7.2; RFC 6265 4.1, 4.2).
const CREDENTIAL_HEADERS: &[&str] = &["authorization", "proxy-authorization"];
const COOKIE_HEADERS: &[&str] = &["cookie", "set-cookie"];
/// Headers whose values are URLs, which can carry tokens (a redirect to a presigned URL).
const URL_HEADERS: &[&str] = &["location", "content-location", "referer"];

/// The value to show for header `name`: `Basic mirror:***`, `Bearer ***`, `session=***`;
/// other headers unchanged.
pub fn header_value(name: &str, value: &str) -> String {
    let lower = name.to_ascii_lowercase();
    if CREDENTIAL_HEADERS.contains(&lower.as_str()) {
        let v = value.trim();
        let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            let user = base64::engine::general_purpose::STANDARD
                .decode(rest.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .map(|s| s.split(':').next().unwrap_or("").to_string());
            return match user {
                Some(u) => format!("{scheme} {u}:***"),
                None => format!("{scheme} ***"),
            };
        }
        return format!("{scheme} ***");
    }
    if COOKIE_HEADERS.contains(&lower.as_str()) {
        // Names stay, values go; Set-Cookie attributes after the first `;` are not secret.
        let mut parts = value.split(';');
        let first = parts.next().unwrap_or("");
        let redact = |kv: &str| match kv.split_once('=') {
            Some((k, _)) => format!("{}=***", k.trim()),
            None => "***".to_string(),
        };
        if lower == "set-cookie" {
            let rest: Vec<&str> = parts.collect();
            let mut out = redact(first);
            for r in rest {
                out.push(';');
                out.push_str(r);
            }
            return out;
        }
        return value.split(';').map(redact).collect::<Vec<_>>().join("; ");
    }
    if URL_HEADERS.contains(&lower.as_str()) {
        return url(value);
    }
    value.to_string()
}

/// A header list with every secret redacted.
pub fn headers(list: &[Header]) -> Vec<Header> {
    list.iter()
        .map(|h| Header {
            name: h.name.clone(),
            value: header_value(&h.name, &h.value),
        })
        .collect()
}

/// Redacts a request URL ([`url_parts`]: userinfo password, secret query
/// parameters) and reports the credential it carried: `userinfo` with its user, else the first
/// secret query parameter. The secret and the URL as sent are kept in the credential's
/// unserialised fields, for the text report's --show-secrets.
pub fn redact_url(url: &str) -> (String, Option<Credential>) {
    let r = crate::redact::url_parts(url);
    let raw_url = r.changed().then(|| url.to_string());
    let cred = if let Some(user) = &r.user {
        let secret = split_url(url)
            .and_then(|p| p.userinfo)
            .filter(|_| r.password)
            .map(str::to_string);
        Some(Credential {
            scheme: "userinfo".into(),
            user: Some(percent_decode(user).unwrap_or_else(|| user.clone())),
            source: "url".into(),
            secret,
            raw_url,
        })
    } else if let Some(first) = r.params.first() {
        let secret = split_url(url).and_then(|p| p.query).map(|q| {
            q.split('&')
                .filter(|kv| kv.split_once('=').is_some_and(|(k, _)| is_secret_param(k)))
                .collect::<Vec<_>>()
                .join("&")
        });
        Some(Credential {
            scheme: first.clone(),
            user: None,
            source: "query".into(),
            secret,
            raw_url,
        })
    } else {
        None
    };
    (r.url, cred)
}

/// The scheme and, for Basic, the user of an Authorization value; never the secret.
pub fn parse_authorization(value: &str, source: &str) -> Credential {
    let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    let user = if scheme.eq_ignore_ascii_case("basic") {
        base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .map(|s| s.split(':').next().unwrap_or("").to_string())
    } else {
        None
    };
    Credential {
        scheme: scheme.to_string(),
        user,
        source: source.to_string(),
        secret: Some(value.to_string()),
        raw_url: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_keep_scheme_and_user_only() {
        // "mirror:lab-secret" in base64
        let v = header_value("Authorization", "Basic bWlycm9yOmxhYi1zZWNyZXQ=");
        assert_eq!(v, "Basic mirror:***");
        assert!(!v.contains("bWlycm9y") && !v.contains("lab-secret"));
        assert_eq!(
            header_value("proxy-authorization", "Bearer abc.def"),
            "Bearer ***"
        );
        assert_eq!(header_value("Authorization", "Basic %%%"), "Basic ***");
        assert_eq!(header_value("Authorization", "token"), "token ***");
        assert_eq!(
            header_value("Cookie", "session=s3cret; theme=dark"),
            "session=***; theme=***"
        );
        assert_eq!(
            header_value("Set-Cookie", "id=abc; Path=/; HttpOnly"),
            "id=***; Path=/; HttpOnly"
        );
        assert_eq!(
            header_value("User-Agent", "Go-http-client/1.1"),
            "Go-http-client/1.1"
        );
        assert_eq!(
            header_value(
                "Location",
                "https://blob.test/z.zip?X-Amz-Signature=abc&a=1"
            ),
            "https://blob.test/z.zip?X-Amz-Signature=***&a=1"
        );
    }

    #[test]
    fn token_query_parameters_are_masked_and_the_rest_kept() {
        let r = url_parts("http://127.0.0.1:8081/x/@v/list?token=abc&x=1");
        assert_eq!(r.url, "http://127.0.0.1:8081/x/@v/list?token=***&x=1");
        assert_eq!(r.params, ["token"]);
        assert!(r.changed() && !r.password && r.user.is_none());
        // Case-insensitive, percent-encoded names, suffixes, presigned URLs.
        assert_eq!(
            url("https://h/p?Access_Token=s3&api%5Fkey=k&PRIVATE_TOKEN=t&go-get=1#frag"),
            "https://h/p?Access_Token=***&api%5Fkey=***&PRIVATE_TOKEN=***&go-get=1#frag"
        );
        assert_eq!(
            url("https://b.test/o?X-Amz-Credential=AKIA%2F1&X-Amz-Signature=ff&X-Goog-Signature=1&sig=2"),
            "https://b.test/o?X-Amz-Credential=***&X-Amz-Signature=***&X-Goog-Signature=***&sig=***"
        );
        // Names that only look alike, empty values and bare names stay.
        assert_eq!(
            url("https://h/p?monkey=1&keyboard=2&token=&key"),
            "https://h/p?monkey=1&keyboard=2&token=&key"
        );
        assert!(!url_parts("https://h/p?a=1").changed());
        assert_eq!(url("127.0.0.1:443"), "127.0.0.1:443");
    }

    #[test]
    fn userinfo_password_is_masked_and_user_kept() {
        let r = url_parts("http://bob:hunter2@127.0.0.1:8081/x?key=k2");
        assert_eq!(r.url, "http://bob:***@127.0.0.1:8081/x?key=***");
        assert_eq!((r.user.as_deref(), r.password), (Some("bob"), true));
        let r = url_parts("https://bob@h/x");
        assert_eq!(r.url, "https://bob@h/x");
        assert!(!r.changed());
        // An `@` in the path is not userinfo.
        assert_eq!(url("https://h/a@b?token=1"), "https://h/a@b?token=***");
    }

    #[test]
    fn urls_inside_text_are_redacted() {
        let t = text("HTTPS to h failed, then GET http://u:pw@h/x?token=abc&x=1 over plain HTTP (see https://h/y?sig=z)");
        assert_eq!(
            t,
            "HTTPS to h failed, then GET http://u:***@h/x?token=***&x=1 over plain HTTP (see https://h/y?sig=***"
        );
        assert!(!t.contains("pw") && !t.contains("abc"));
        assert_eq!(text("no url here"), "no url here");
    }

    #[test]
    fn userinfo_is_redacted_and_user_kept() {
        let raw = "http://bob:hunter2@127.0.0.1:8081/x/@v/list";
        let (u, c) = redact_url(raw);
        assert_eq!(u, "http://bob:***@127.0.0.1:8081/x/@v/list");
        assert!(!u.contains("hunter2"));
        let c = c.unwrap();
        assert_eq!(c.user.as_deref(), Some("bob"));
        assert_eq!(c.secret.as_deref(), Some("bob:hunter2"));
        assert_eq!(c.raw_url.as_deref(), Some(raw));
        // Neither the JSON nor Debug output shows the secret.
        let json = serde_json::to_string(&c).unwrap();
        let debug = format!("{c:?}");
        assert!(
            !json.contains("hunter2") && !debug.contains("hunter2"),
            "{json} {debug}"
        );
        let (u, c) = redact_url("http://127.0.0.1/x");
        assert_eq!((u.as_str(), c), ("http://127.0.0.1/x", None));
        // A user without a password: nothing to hide, the URL stays as it was.
        let (u, c) = redact_url("http://bob@127.0.0.1/x");
        assert_eq!(u, "http://bob@127.0.0.1/x");
        let c = c.unwrap();
        assert_eq!((c.secret, c.raw_url), (None, None));
    }

    #[test]
    fn token_in_the_query_is_a_credential() {
        let raw = "http://127.0.0.1:8081/x/@v/list?token=abc&x=1&sig=s1";
        let (u, c) = redact_url(raw);
        assert_eq!(u, "http://127.0.0.1:8081/x/@v/list?token=***&x=1&sig=***");
        let c = c.unwrap();
        assert_eq!((c.scheme.as_str(), c.source.as_str()), ("token", "query"));
        assert_eq!(c.secret.as_deref(), Some("token=abc&sig=s1"));
        assert_eq!(c.raw_url.as_deref(), Some(raw));
        assert!(!serde_json::to_string(&c).unwrap().contains("abc"));
    }

    #[test]
    fn basic_auth_user_without_secret() {
        // "mirror:lab-secret" in base64
        let c = parse_authorization("Basic bWlycm9yOmxhYi1zZWNyZXQ=", "authorization");
        assert_eq!(c.scheme, "Basic");
        assert_eq!(c.user.as_deref(), Some("mirror"));
        assert_eq!(c.secret.as_deref(), Some("Basic bWlycm9yOmxhYi1zZWNyZXQ="));
        assert!(!serde_json::to_string(&c).unwrap().contains("bWlycm9y"));
        let b = parse_authorization("Bearer abc.def", "authorization");
        assert_eq!((b.scheme.as_str(), b.user), ("Bearer", None));
    }
}
