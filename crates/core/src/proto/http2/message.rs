//! From a decoded header block to the head of a request or a response (RFC 9113 8.3): the
//! pseudo-header fields apart from the regular ones, the checks on them, and the content facts
//! a body needs. Pure: a header list in, a head and the problems found out; the connection
//! (conn.rs) decides what a problem does to its stream, and reports it.

use super::hpack::HeaderList;
use crate::proto::{escape_bytes, Header};

/// A request's head as HTTP/1 would have carried it: the method, the request target and the
/// fields, `host` first when only `:authority` named it.
pub(super) struct RequestHead {
    pub method: String,
    pub target: String,
    pub headers: Vec<Header>,
    /// What breaks RFC 9113 8.3 (empty when nothing does), in the order found.
    pub problems: Vec<String>,
}

/// A response's head: its status (0 when `:status` is missing or not three digits) and fields.
pub(super) struct ResponseHead {
    pub status: u16,
    pub headers: Vec<Header>,
    pub problems: Vec<String>,
}

pub(super) fn request_head(list: &HeaderList) -> RequestHead {
    let f = split_fields(list);
    let mut problems = f.problems;
    if f.status.is_some() {
        problems.push(":status in a request".into());
    }
    let method = f.method.unwrap_or_else(|| {
        problems.push("no :method".into());
        String::new()
    });
    let is_connect = method.eq_ignore_ascii_case("CONNECT");
    // RFC 9113 8.5: CONNECT names only the authority (authority-form, as HTTP/1 puts it in
    // the request target); extended CONNECT (RFC 8441) has a :path.
    let target = match (&f.path, is_connect && f.protocol.is_none()) {
        (_, true) => f.authority.clone().unwrap_or_default(),
        (Some(p), false) => p.clone(),
        (None, false) => {
            problems.push("no :path".into());
            String::new()
        }
    };
    if !is_connect && f.scheme.is_none() {
        problems.push("no :scheme".into());
    }
    let mut headers = f.headers;
    match (&f.authority, crate::proto::header(&headers, "host")) {
        (Some(a), Some(h)) if !a.eq_ignore_ascii_case(h) => problems.push(format!(
            "Host {h} differs from :authority {a} (RFC 9113 8.3.1)"
        )),
        (Some(a), None) => headers.insert(
            0,
            Header {
                name: "host".into(),
                value: a.clone(),
            },
        ),
        _ => {}
    }
    RequestHead {
        method,
        target,
        headers,
        problems,
    }
}

pub(super) fn response_head(list: &HeaderList) -> ResponseHead {
    let f = split_fields(list);
    let mut problems = f.problems;
    if f.method.is_some() || f.path.is_some() || f.scheme.is_some() || f.authority.is_some() {
        problems.push("request pseudo-header in a response".into());
    }
    let status = match f.status.as_deref().map(|s| (s.len(), s.parse::<u16>())) {
        Some((3, Ok(code))) if (100..1000).contains(&code) => code,
        _ => {
            problems.push(format!(
                "no valid :status ({})",
                f.status.as_deref().unwrap_or("missing")
            ));
            0
        }
    };
    ResponseHead {
        status,
        headers: f.headers,
        problems,
    }
}

pub(super) fn content_length(headers: &[Header]) -> Option<u64> {
    let v = crate::proto::header(headers, "content-length")?;
    v.trim().parse().ok()
}

/// Pseudo-header fields and regular fields of a decoded block (RFC 9113 8.3).
#[derive(Default)]
pub(super) struct Fields {
    pub method: Option<String>,
    pub scheme: Option<String>,
    pub authority: Option<String>,
    pub path: Option<String>,
    pub status: Option<String>,
    pub protocol: Option<String>,
    pub headers: Vec<Header>,
    pub problems: Vec<String>,
}

pub(super) fn split_fields(list: &HeaderList) -> Fields {
    let mut f = Fields::default();
    let mut regular_seen = false;
    for (name, value) in &list.fields {
        let value = escape_bytes(value);
        if name.first() == Some(&b':') {
            if regular_seen {
                f.problems
                    .push("pseudo-header after a regular field (RFC 9113 8.3)".into());
            }
            let slot = match name.as_slice() {
                b":method" => &mut f.method,
                b":scheme" => &mut f.scheme,
                b":authority" => &mut f.authority,
                b":path" => &mut f.path,
                b":status" => &mut f.status,
                // RFC 8441 extended CONNECT.
                b":protocol" => &mut f.protocol,
                other => {
                    f.problems
                        .push(format!("unknown pseudo-header {}", escape_bytes(other)));
                    continue;
                }
            };
            if slot.is_some() {
                f.problems
                    .push(format!("repeated pseudo-header {}", escape_bytes(name)));
            } else {
                *slot = Some(value);
            }
        } else {
            regular_seen = true;
            if name.iter().any(|b| b.is_ascii_uppercase()) {
                f.problems.push(format!(
                    "upper-case field name {} (RFC 9113 8.2.1)",
                    escape_bytes(name)
                ));
            }
            f.headers.push(Header {
                name: escape_bytes(name),
                value,
            });
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(fields: &[(&str, &str)]) -> HeaderList {
        HeaderList {
            fields: fields
                .iter()
                .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
                .collect(),
            ..HeaderList::default()
        }
    }

    #[test]
    fn a_request_takes_host_from_authority_and_says_what_is_wrong() {
        let ok = request_head(&list(&[
            (":method", "GET"),
            (":scheme", "https"),
            (":authority", "proxy.test"),
            (":path", "/m/@v/list"),
            ("accept", "*/*"),
        ]));
        assert_eq!(
            (ok.method.as_str(), ok.target.as_str()),
            ("GET", "/m/@v/list")
        );
        assert_eq!(ok.headers[0].name, "host");
        assert_eq!(ok.headers[0].value, "proxy.test");
        assert!(ok.problems.is_empty(), "{:?}", ok.problems);

        let bad = request_head(&list(&[
            (":authority", "a.test"),
            ("host", "b.test"),
            (":path", "/x"),
        ]));
        assert_eq!(
            bad.problems,
            [
                "pseudo-header after a regular field (RFC 9113 8.3)",
                "no :method",
                "no :scheme",
                "Host b.test differs from :authority a.test (RFC 9113 8.3.1)"
            ]
        );
    }

    #[test]
    fn connect_names_the_authority_and_extended_connect_the_path() {
        let c = request_head(&list(&[
            (":method", "CONNECT"),
            (":authority", "m.test:443"),
        ]));
        assert_eq!(c.target, "m.test:443");
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        let ws = request_head(&list(&[
            (":method", "CONNECT"),
            (":protocol", "websocket"),
            (":scheme", "https"),
            (":authority", "m.test"),
            (":path", "/chat"),
        ]));
        assert_eq!(ws.target, "/chat");
    }

    #[test]
    fn a_response_needs_three_digits_of_status_and_no_request_fields() {
        let ok = response_head(&list(&[(":status", "200"), ("content-length", "5")]));
        assert_eq!(ok.status, 200);
        assert_eq!(content_length(&ok.headers), Some(5));
        for (status, why) in [
            ("20", "no valid :status (20)"),
            ("0200", "no valid :status (0200)"),
        ] {
            let r = response_head(&list(&[(":status", status)]));
            assert_eq!((r.status, r.problems), (0, vec![why.to_string()]));
        }
        let r = response_head(&list(&[(":status", "204"), (":path", "/")]));
        assert_eq!(r.problems, ["request pseudo-header in a response"]);
    }
}
