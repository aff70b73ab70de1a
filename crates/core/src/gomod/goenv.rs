//! The Go environment that matters to module traffic: which proxies and checksum database the
//! go command was told to use (GOPROXY, GOSUMDB), and which paths it treats as private or
//! insecure. Parsed from `go env -json` output or from a `go.env`-style file (KEY=VALUE lines,
//! as in `$GOROOT/go.env`). Pure: the caller reads the file.

use super::path::split_url;
use std::collections::BTreeMap;

/// Go's defaults when the environment says nothing ($GOROOT/go.env ships these).
pub const DEFAULT_GOPROXY: &str = "https://proxy.golang.org,direct";
pub const DEFAULT_GOSUMDB: &str = "sum.golang.org";

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GoEnv {
    pub vars: BTreeMap<String, String>,
}

/// One GOPROXY entry and the separator that follows it (`,`: next entry only on 404/410;
/// `|`: next entry on any error).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyEntry {
    pub url: String,
    pub fallback_on_any_error: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SumDb {
    Off,
    /// `name`, optional verifier key (`name+hash+key`), optional URL.
    On {
        name: String,
        key: Option<String>,
        url: Option<String>,
    },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GoEnvError {
    #[error("not `go env -json` output or KEY=VALUE lines")]
    Unrecognised,
}

impl GoEnv {
    /// Parses `go env -json` output, or KEY=VALUE lines (`#` comments, optional quotes).
    pub fn parse(text: &str) -> Result<GoEnv, GoEnvError> {
        let t = text.trim_start();
        if t.starts_with('{') {
            let v: serde_json::Value =
                serde_json::from_str(t).map_err(|_| GoEnvError::Unrecognised)?;
            let obj = v.as_object().ok_or(GoEnvError::Unrecognised)?;
            let vars = obj
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect();
            return Ok(GoEnv { vars });
        }
        let mut vars = BTreeMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (k, v) = line.split_once('=').ok_or(GoEnvError::Unrecognised)?;
            let k = k.trim().trim_start_matches("export ").trim();
            if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(GoEnvError::Unrecognised);
            }
            let v = v.trim();
            let v = v
                .strip_prefix('\'')
                .and_then(|x| x.strip_suffix('\''))
                .or_else(|| v.strip_prefix('"').and_then(|x| x.strip_suffix('"')))
                .unwrap_or(v);
            vars.insert(k.to_string(), v.to_string());
        }
        Ok(GoEnv { vars })
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.vars.get(k).map(String::as_str)
    }

    /// The GOPROXY list; Go's default when unset or empty.
    pub fn goproxy(&self) -> Vec<ProxyEntry> {
        parse_goproxy(
            self.get("GOPROXY")
                .filter(|s| !s.is_empty())
                .unwrap_or(DEFAULT_GOPROXY),
        )
    }

    pub fn gosumdb(&self) -> SumDb {
        parse_gosumdb(
            self.get("GOSUMDB")
                .filter(|s| !s.is_empty())
                .unwrap_or(DEFAULT_GOSUMDB),
        )
    }

    /// Host names (or IP literals) and ports of the proxies and the checksum database this
    /// environment names, plus Go's public defaults: TLS to any of them that does not validate
    /// against the public roots means someone is in the middle (or a private CA is in use).
    /// The port matters: on one host a plain-HTTP proxy and some other TLS server can differ
    /// only by port.
    pub fn trusted_hosts(&self) -> Vec<(String, u16)> {
        let mut hosts: Vec<(String, u16)> = Vec::new();
        let mut add = |url: &str| {
            if let Some(u) = split_url(url) {
                let default = if u.scheme.eq_ignore_ascii_case("http") {
                    80
                } else {
                    443
                };
                let h = (
                    host_only(u.authority),
                    port_of(u.authority).unwrap_or(default),
                );
                if !h.0.is_empty() && !hosts.contains(&h) {
                    hosts.push(h);
                }
            }
        };
        for p in self
            .goproxy()
            .iter()
            .chain(parse_goproxy(DEFAULT_GOPROXY).iter())
        {
            add(&p.url);
        }
        for db in [self.gosumdb(), parse_gosumdb(DEFAULT_GOSUMDB)] {
            if let SumDb::On { name, url, .. } = db {
                // Without a URL the go command reaches https://<name>.
                add(&url.unwrap_or_else(|| format!("https://{name}")));
            }
        }
        hosts
    }
}

/// The explicit port of an authority, if any.
pub fn port_of(authority: &str) -> Option<u16> {
    let a = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let tail = match a.strip_prefix('[') {
        Some(rest) => rest.split_once(']').map(|(_, t)| t)?,
        None => a,
    };
    let (_, p) = tail.rsplit_once(':')?;
    p.parse().ok()
}

pub fn parse_goproxy(v: &str) -> Vec<ProxyEntry> {
    let mut out = Vec::new();
    let mut rest = v;
    while !rest.is_empty() {
        let end = rest.find([',', '|']).unwrap_or(rest.len());
        let url = rest[..end].trim();
        let sep = rest[end..].chars().next();
        if !url.is_empty() && url != "direct" && url != "off" {
            // GOPROXY entries without a scheme mean https (go help goproxy).
            let url = if url.contains("://") {
                url.to_string()
            } else {
                format!("https://{url}")
            };
            out.push(ProxyEntry {
                url,
                fallback_on_any_error: sep == Some('|'),
            });
        }
        rest = rest.get(end + 1..).unwrap_or("");
    }
    out
}

pub fn parse_gosumdb(v: &str) -> SumDb {
    let v = v.trim();
    if v == "off" {
        return SumDb::Off;
    }
    let mut parts = v.split_whitespace();
    let first = parts.next().unwrap_or("");
    let url = parts.next().map(|u| {
        if u.contains("://") {
            u.to_string()
        } else {
            format!("https://{u}")
        }
    });
    // A verifier key is `name+hash+base64key`: split only at the first two `+`.
    let (name, key) = match first.split_once('+') {
        Some((n, _)) => (n.to_string(), Some(first.to_string())),
        None => (first.to_string(), None),
    };
    SumDb::On { name, key, url }
}

/// `host:port`, `[v6]:port` or `host` -> host (brackets removed).
pub fn host_only(authority: &str) -> String {
    let a = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(rest) = a.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("").to_ascii_lowercase();
    }
    match a.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h.to_ascii_lowercase(),
        _ => a.to_ascii_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goproxy_list_and_separators() {
        let l = parse_goproxy("http://127.0.0.1:8082,corp.example/goproxy|direct");
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].url, "http://127.0.0.1:8082");
        assert!(!l[0].fallback_on_any_error);
        assert_eq!(l[1].url, "https://corp.example/goproxy");
        assert!(l[1].fallback_on_any_error);
        assert!(parse_goproxy("off").is_empty());
    }

    #[test]
    fn gosumdb_forms() {
        assert_eq!(parse_gosumdb("off"), SumDb::Off);
        assert_eq!(
            parse_gosumdb("sum.lab.test"),
            SumDb::On {
                name: "sum.lab.test".into(),
                key: None,
                url: None
            }
        );
        let k = "sum.lab.test+abcd1234+AQID";
        assert_eq!(
            parse_gosumdb(&format!("{k} http://127.0.0.1:8090")),
            SumDb::On {
                name: "sum.lab.test".into(),
                key: Some(k.into()),
                url: Some("http://127.0.0.1:8090".into())
            }
        );
    }

    #[test]
    fn json_and_env_file_and_hosts() {
        let j = GoEnv::parse(r#"{"GOPROXY":"https://mirror.lab.test:8443,direct","GOSUMDB":"sum.lab.test","GOFLAGS":""}"#).unwrap();
        let h = j.trusted_hosts();
        assert!(h.contains(&("mirror.lab.test".to_string(), 8443)), "{h:?}");
        assert!(h.contains(&("sum.lab.test".to_string(), 443)));
        assert!(
            h.contains(&("proxy.golang.org".to_string(), 443))
                && h.contains(&("sum.golang.org".to_string(), 443)),
            "public defaults"
        );
        let plain = GoEnv::parse(r#"{"GOPROXY":"http://127.0.0.1:8088","GOSUMDB":"off"}"#).unwrap();
        assert!(plain
            .trusted_hosts()
            .contains(&("127.0.0.1".to_string(), 8088)));
        assert!(!plain.trusted_hosts().iter().any(|h| h.1 == 8089));
        assert_eq!(port_of("[::1]:8443"), Some(8443));
        assert_eq!(port_of("h"), None);
        let f = GoEnv::parse("# go.env\nGOPROXY=https://proxy.golang.org,direct\nGOSUMDB='sum.golang.org'\nGOTOOLCHAIN=auto\n").unwrap();
        assert_eq!(f.get("GOSUMDB"), Some("sum.golang.org"));
        assert_eq!(
            GoEnv::parse("this is not an env file"),
            Err(GoEnvError::Unrecognised)
        );
        assert_eq!(host_only("[::1]:8443"), "::1");
        assert_eq!(host_only("user@Proxy.Lab.Test:443"), "proxy.lab.test");
    }
}
