//! Secrets never leave modtrace: what is redacted in headers before any sink sees them.
//! The scheme and the user stay (they say what kind of credential went where); the secret
//! does not.

use crate::proto::Header;
use base64::Engine;

/// Headers whose values carry a credential (RFC 9110 11.6.2, 11.7.2; RFC 6265 4.1, 4.2).
const CREDENTIAL_HEADERS: &[&str] = &["authorization", "proxy-authorization"];
const COOKIE_HEADERS: &[&str] = &["cookie", "set-cookie"];

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
    }
}
