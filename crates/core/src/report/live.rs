//! The live text stream of `modtrace capture` without a terminal UI: one line per exchange,
//! finding and TLS session, as they happen (the JSON Lines stream is `jsonl.rs`).
use crate::detect::tls::TlsRecord;
use crate::detect::Finding;
use crate::gomod::Exchange;
use crate::time::Ts;

fn clock(t: Ts) -> String {
    // hh:mm:ss.mmm of the RFC 3339 form (UTC).
    let s = t.rfc3339();
    s.get(11..23).unwrap_or(&s).to_string()
}

fn owner(p: &Option<String>) -> String {
    p.as_ref().map(|p| format!(" [{p}]")).unwrap_or_default()
}

pub fn exchange(x: &Exchange) -> String {
    let what = crate::gomod::label_of(&x.module, &x.version)
        .map_or(String::new(), |mv| format!(" {} {mv}", x.op.as_str()));
    format!(
        "{} {} {} {}{} ({} B{}){}",
        clock(x.start),
        x.status.map_or("---".into(), |s| s.to_string()),
        x.method,
        x.url,
        what,
        x.bytes,
        x.duration_ms
            .map(|d| format!(", {d:.1} ms"))
            .unwrap_or_default(),
        owner(&x.process)
    )
}

pub fn finding(f: &Finding) -> String {
    format!(
        "{} !! {} {}: {}{}",
        clock(f.evidence.time),
        f.severity.as_str().to_uppercase(),
        f.rule.id(),
        f.message,
        owner(&f.process)
    )
}

pub fn tls(t: &TlsRecord) -> String {
    let check = t.certificate_check().short();
    format!(
        "{} tls {} -> {} sni={} {}: {check}",
        clock(t.start),
        t.client,
        t.server,
        t.sni.as_deref().unwrap_or("-"),
        t.version.as_deref().unwrap_or("?"),
    )
}
