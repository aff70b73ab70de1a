//! Elastic Common Schema NDJSON output (`analyze --format ecs`): one document per finding
//! (`event.kind: alert`) and, with `--ecs-events`, one per HTTP exchange (`event.kind:
//! event`), merged in time order, ECS field names as nested objects, so Filebeat's or Elastic
//! Agent's ndjson parser ships them as they are. Every field is documented in docs/ci.md.
//! Credentials never appear: exchanges carry the redacted URL and the credential's scheme and
//! user only.

use super::Report;
use crate::detect::tls::TlsRecord;
use crate::detect::{Finding, Severity};
use crate::gomod::Exchange;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::io::{self, Write};
use std::net::SocketAddr;

pub struct EcsOptions {
    /// Also one document per exchange.
    pub events: bool,
}

pub const ECS_VERSION: &str = "8.11.0";

/// `event.severity` (and `event.risk_score`): Elastic's detection-rule scale, where 21, 47,
/// 73 and 99 are the low, medium, high and critical defaults.
pub fn severity_number(s: Severity) -> u8 {
    match s {
        Severity::Critical => 99,
        Severity::High => 73,
        Severity::Medium => 47,
        Severity::Low => 21,
        Severity::Info => 1,
    }
}

/// Sets a dotted ECS field (`url.path`) as nested objects; null values are left out so a
/// document carries only what is known.
fn put(doc: &mut Map<String, Value>, field: &str, value: impl Into<Value>) {
    let value = value.into();
    if value.is_null() {
        return;
    }
    let mut parts = field.split('.').peekable();
    let mut cur = doc;
    while let Some(p) = parts.next() {
        if parts.peek().is_none() {
            cur.insert(p.to_string(), value);
            return;
        }
        let next = cur
            .entry(p.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !next.is_object() {
            *next = Value::Object(Map::new());
        }
        let Value::Object(m) = next else { return };
        cur = m;
    }
}

/// The parts of an absolute URL as ECS names them.
#[derive(Debug, Default, PartialEq, Eq)]
struct UrlParts<'a> {
    scheme: Option<&'a str>,
    domain: Option<&'a str>,
    port: Option<u16>,
    path: Option<&'a str>,
    query: Option<&'a str>,
}

fn url_parts(url: &str) -> UrlParts<'_> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return UrlParts::default();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    // Userinfo (its password already `***`) is not a field of ours.
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (domain, port) = if let Some(v6) = hostport.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, p)) => (h, p.strip_prefix(':').and_then(|p| p.parse().ok())),
            None => (v6, None),
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().ok()),
            None => (hostport, None),
        }
    };
    let tail = tail.split('#').next().unwrap_or("");
    let (path, query) = match tail.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (tail, None),
    };
    UrlParts {
        scheme: Some(scheme),
        domain: (!domain.is_empty()).then_some(domain),
        port,
        path: (!path.is_empty()).then_some(path),
        query,
    }
}

/// `TLSv1.3` -> (`tls`, `1.3`), `SSLv3` -> (`ssl`, `3.0`).
fn tls_version(v: &str) -> (Option<&'static str>, String) {
    if let Some(n) = v.strip_prefix("TLSv") {
        (Some("tls"), n.to_string())
    } else if let Some(n) = v.strip_prefix("SSLv") {
        (Some("ssl"), format!("{n}.0"))
    } else {
        (None, v.to_string())
    }
}

fn network_type(a: &SocketAddr) -> &'static str {
    if a.is_ipv4() {
        "ipv4"
    } else {
        "ipv6"
    }
}

fn endpoints(doc: &mut Map<String, Value>, client: &SocketAddr, server: &SocketAddr) {
    put(doc, "source.ip", client.ip().to_string());
    put(doc, "source.port", client.port());
    put(doc, "destination.ip", server.ip().to_string());
    put(doc, "destination.port", server.port());
    put(doc, "network.transport", "tcp");
    put(doc, "network.type", network_type(server));
}

fn tls_fields(doc: &mut Map<String, Value>, t: &TlsRecord) {
    if let Some(v) = &t.version {
        let (proto, num) = tls_version(v);
        put(doc, "tls.version", num);
        put(doc, "tls.version_protocol", proto);
    }
    put(doc, "tls.cipher", t.cipher.clone());
    put(doc, "tls.established", t.handshake_complete);
    put(doc, "tls.next_protocol", t.alpn_selected.clone());
    put(doc, "tls.client.server_name", t.sni.clone());
    if let Some(leaf) = t.leaf() {
        put(doc, "tls.server.subject", leaf.subject.clone());
        put(doc, "tls.server.issuer", leaf.issuer.clone());
        put(doc, "tls.server.not_before", leaf.not_before.clone());
        put(doc, "tls.server.not_after", leaf.not_after.clone());
        put(
            doc,
            "tls.server.hash.sha256",
            leaf.sha256.to_ascii_uppercase(),
        );
    }
    put(doc, "modtrace.tls.flow", t.flow);
    put(doc, "modtrace.tls.ja4", t.ja4.clone());
    put(
        doc,
        "modtrace.tls.certificates_hidden",
        t.certificates_hidden,
    );
    put(doc, "modtrace.tls.accepted", t.accepted);
    if let Some(v) = &t.validation {
        put(
            doc,
            "modtrace.tls.validation",
            serde_json::to_value(v).unwrap_or(Value::Null),
        );
    }
    let has_domain = doc
        .get("destination")
        .and_then(|d| d.get("domain"))
        .is_some();
    if !has_domain {
        put(doc, "destination.domain", t.sni.clone());
    }
}

/// url.*, http.*, destination.domain and user_agent.original of an exchange.
fn exchange_fields(doc: &mut Map<String, Value>, e: &Exchange) {
    endpoints(doc, &e.client, &e.server);
    let host_name = e
        .host
        .as_deref()
        .and_then(|h| url_parts(&format!("x://{h}")).domain.map(str::to_string));
    let domain = e.server_name.clone().or_else(|| {
        // The Host header names the server unless it is an address.
        host_name.filter(|h| h.parse::<std::net::IpAddr>().is_err())
    });
    put(doc, "destination.domain", domain);
    put(doc, "network.protocol", "http");
    put(doc, "url.original", e.url.clone());
    let u = url_parts(&e.url);
    put(doc, "url.scheme", u.scheme);
    put(doc, "url.domain", u.domain);
    put(doc, "url.port", u.port);
    put(doc, "url.path", u.path);
    put(doc, "url.query", u.query);
    put(doc, "http.request.method", e.method.clone());
    put(doc, "http.response.status_code", e.status);
    put(doc, "http.response.body.bytes", e.bytes);
    if let Some(v) = e.http_version.strip_prefix("HTTP/") {
        put(doc, "http.version", v);
    }
    put(
        doc,
        "user_agent.original",
        crate::proto::header(&e.request_headers, "user-agent"),
    );
}

fn base(kind: &str, dataset: &str, ts: String) -> Map<String, Value> {
    let mut d = Map::new();
    put(&mut d, "@timestamp", ts);
    put(&mut d, "ecs.version", ECS_VERSION);
    put(&mut d, "event.kind", kind);
    put(&mut d, "event.dataset", dataset);
    put(&mut d, "event.module", "modtrace");
    put(&mut d, "observer.product", "modtrace");
    put(&mut d, "observer.type", "sensor");
    put(&mut d, "observer.version", env!("CARGO_PKG_VERSION"));
    d
}

fn exchange_doc(e: &Exchange, tls: &HashMap<u64, &TlsRecord>) -> Map<String, Value> {
    let mut d = base("event", "modtrace.exchange", e.start.rfc3339());
    put(&mut d, "event.category", json!(["network", "web"]));
    put(&mut d, "event.type", json!(["access"]));
    put(&mut d, "event.start", e.start.rfc3339());
    if let Some(ms) = e.duration_ms {
        // ECS durations are nanoseconds.
        let ns = (ms * 1e6).round().max(0.0) as i64;
        put(&mut d, "event.duration", ns);
        put(
            &mut d,
            "event.end",
            crate::time::Ts(e.start.0.saturating_add(ns)).rfc3339(),
        );
    }
    let outcome = match e.status {
        Some(s) if s < 400 => "success",
        Some(_) => "failure",
        None => "unknown",
    };
    put(&mut d, "event.outcome", outcome);
    exchange_fields(&mut d, e);
    if let Some(t) = tls.get(&e.flow) {
        tls_fields(&mut d, t);
    }
    let what = match crate::gomod::label_of(&e.module, &e.version) {
        Some(mv) => format!(" ({} {mv})", e.op.as_str()),
        None => format!(" ({})", e.op.as_str()),
    };
    let status = e
        .status
        .map_or("no response".to_string(), |s| s.to_string());
    put(
        &mut d,
        "message",
        format!("{} {} -> {status}{what}", e.method, e.url),
    );
    put(&mut d, "modtrace.exchange_id", e.id);
    put(&mut d, "modtrace.exchange_ids", json!([e.id]));
    put(&mut d, "modtrace.flow_ids", json!([e.flow]));
    put(&mut d, "modtrace.packet", e.packet);
    put(&mut d, "modtrace.op", e.op.as_str());
    put(&mut d, "modtrace.module", e.module.clone());
    put(&mut d, "modtrace.version", e.version.clone());
    put(&mut d, "modtrace.scheme", e.scheme.clone());
    put(&mut d, "modtrace.base", e.base.clone());
    put(&mut d, "modtrace.via", e.via.clone());
    put(&mut d, "modtrace.redirect_from", e.redirect_from);
    put(&mut d, "modtrace.location", e.location.clone());
    put(&mut d, "modtrace.complete", e.complete);
    put(&mut d, "modtrace.h1", e.h1.clone());
    put(&mut d, "modtrace.sha256", e.sha256.clone());
    put(&mut d, "modtrace.process", e.process.clone());
    if let Some(c) = &e.credential {
        // What kind of credential went where; never the secret.
        put(&mut d, "modtrace.credential.scheme", c.scheme.clone());
        put(&mut d, "modtrace.credential.user", c.user.clone());
        put(&mut d, "modtrace.credential.source", c.source.clone());
    }
    d
}

fn finding_doc(
    index: usize,
    f: &Finding,
    id: &str,
    exchanges: &HashMap<u64, &Exchange>,
    tls: &HashMap<u64, &TlsRecord>,
) -> Map<String, Value> {
    let mut d = base("alert", "modtrace.finding", f.evidence.time.rfc3339());
    let text = f.rule.text();
    let sev = severity_number(f.severity);
    put(
        &mut d,
        "event.category",
        json!(["network", "intrusion_detection"]),
    );
    put(&mut d, "event.type", json!(["info"]));
    put(&mut d, "event.severity", sev);
    put(&mut d, "event.risk_score", f64::from(sev));
    put(&mut d, "rule.id", text.id);
    put(&mut d, "rule.name", text.title);
    put(&mut d, "rule.description", text.meaning);
    put(&mut d, "rule.category", "supply-chain");
    put(&mut d, "rule.ruleset", "modtrace");
    put(&mut d, "message", f.message.clone());
    // Where it happened: the evidence exchange that carried its first packet (exchanges are
    // kept with --ecs-events), else the TLS session of the first evidence flow that has one.
    let evidence: Vec<&Exchange> = f
        .evidence
        .exchanges
        .iter()
        .filter_map(|i| exchanges.get(i).copied())
        .collect();
    let first_ex = evidence
        .iter()
        .find(|e| e.packet == f.evidence.packet)
        .or(evidence.first())
        .copied();
    if let Some(e) = first_ex {
        exchange_fields(&mut d, e);
        put(&mut d, "modtrace.op", e.op.as_str());
    }
    let first_tls = first_ex
        .and_then(|e| tls.get(&e.flow))
        .or_else(|| f.evidence.flows.iter().find_map(|fl| tls.get(fl)));
    if let Some(t) = first_tls {
        if first_ex.is_none() {
            endpoints(&mut d, &t.client, &t.server);
            put(&mut d, "network.protocol", "tls");
        }
        tls_fields(&mut d, t);
    }
    put(&mut d, "modtrace.finding_id", id);
    put(&mut d, "modtrace.finding_index", index);
    put(&mut d, "modtrace.severity", f.severity.as_str());
    put(&mut d, "modtrace.module", f.module.clone());
    put(&mut d, "modtrace.version", f.version.clone());
    put(&mut d, "modtrace.exchange_ids", json!(f.evidence.exchanges));
    put(&mut d, "modtrace.flow_ids", json!(f.evidence.flows));
    put(&mut d, "modtrace.packet", f.evidence.packet);
    put(&mut d, "modtrace.process", f.process.clone());
    put(&mut d, "modtrace.fix", text.fix);
    d
}

pub fn write(report: &Report, opts: &EcsOptions, out: &mut dyn Write) -> io::Result<()> {
    let mut tls: HashMap<u64, &TlsRecord> = HashMap::new();
    for t in &report.tls {
        tls.entry(t.flow).or_insert(t);
    }
    let exchanges: HashMap<u64, &Exchange> = report.exchanges.iter().map(|e| (e.id, e)).collect();
    let ids = super::sarif::fingerprints(&report.findings);
    // Time order, an exchange before a finding of the same instant (as --format jsonl).
    let mut order: Vec<(crate::time::Ts, u8, usize)> = report
        .findings
        .iter()
        .enumerate()
        .map(|(i, f)| (f.evidence.time, 1, i))
        .collect();
    if opts.events {
        order.extend(
            report
                .exchanges
                .iter()
                .enumerate()
                .map(|(i, e)| (e.start, 0, i)),
        );
    }
    order.sort();
    let mut line = Vec::new();
    for (_, kind, i) in order {
        let doc = if kind == 0 {
            exchange_doc(&report.exchanges[i], &tls)
        } else {
            finding_doc(i, &report.findings[i], &ids[i], &exchanges, &tls)
        };
        line.clear();
        serde_json::to_writer(&mut line, &Value::Object(doc)).map_err(io::Error::other)?;
        line.push(b'\n');
        out.write_all(&line)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_nests_dotted_names_and_skips_nulls() {
        let mut d = Map::new();
        put(&mut d, "tls.server.hash.sha256", "AB");
        put(&mut d, "tls.server.subject", "CN=x");
        put(&mut d, "tls.cipher", Value::Null);
        put(&mut d, "@timestamp", "t");
        assert_eq!(
            Value::Object(d),
            json!({"tls": {"server": {"hash": {"sha256": "AB"}, "subject": "CN=x"}}, "@timestamp": "t"})
        );
    }

    #[test]
    fn url_parts_of_proxy_urls() {
        let u = url_parts("http://127.0.0.1:8081/example.test/%21hello/@v/list?x=1#f");
        assert_eq!(
            u,
            UrlParts {
                scheme: Some("http"),
                domain: Some("127.0.0.1"),
                port: Some(8081),
                path: Some("/example.test/%21hello/@v/list"),
                query: Some("x=1"),
            }
        );
        let u = url_parts("https://mirror:***@[::1]:8443/sumdb/x");
        assert_eq!(u.domain, Some("::1"));
        assert_eq!(u.port, Some(8443));
        let u = url_parts("https://lab.test/?go-get=1");
        assert_eq!(
            (u.domain, u.port, u.path),
            (Some("lab.test"), None, Some("/"))
        );
        assert_eq!(url_parts("lab.test:8109"), UrlParts::default(), "CONNECT");
        assert_eq!(
            url_parts("http://"),
            UrlParts {
                scheme: Some("http"),
                ..Default::default()
            }
        );
    }

    #[test]
    fn tls_versions_and_severities() {
        assert_eq!(tls_version("TLSv1.3"), (Some("tls"), "1.3".into()));
        assert_eq!(tls_version("SSLv3"), (Some("ssl"), "3.0".into()));
        assert_eq!(tls_version("0x7a7a"), (None, "0x7a7a".into()));
        let n: Vec<u8> = Severity::ALL.iter().map(|s| severity_number(*s)).collect();
        assert_eq!(n, [1, 21, 47, 73, 99]);
    }
}
