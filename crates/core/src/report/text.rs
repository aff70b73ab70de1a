//! The human-readable report: a summary per module (where each piece came from), then findings.

use super::Report;
use crate::detect::{Finding, Severity};
use crate::gomod::{Credential, Hop, HopLink};
use base64::Engine;
use std::collections::HashMap;
use std::io::{self, Write};

/// How to write the text report.
#[derive(Clone, Copy, Debug, Default)]
pub struct TextOptions {
    /// ANSI colours.
    pub color: bool,
    /// `--show-secrets`: credentials and URLs as sent (from the exchanges' credentials, so the
    /// report must keep its exchanges). Text output only; every other format stays redacted.
    pub show_secrets: bool,
}

/// Exchange id -> its credential, for the exchanges that had something redacted.
type Reveals<'a> = HashMap<u64, &'a Credential>;

struct Style {
    color: bool,
}

impl Style {
    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn sev(&self, s: Severity) -> String {
        let code = match s {
            Severity::Critical => "1;35",
            Severity::High => "1;31",
            Severity::Medium => "33",
            Severity::Low => "36",
            Severity::Info => "2",
        };
        self.paint(code, &format!("{:<8}", s.as_str().to_uppercase()))
    }
}

pub fn write_text(r: &Report, w: &mut dyn Write, color: bool) -> io::Result<()> {
    write_text_with(
        r,
        w,
        &TextOptions {
            color,
            show_secrets: false,
        },
    )
}

pub fn write_text_with(r: &Report, w: &mut dyn Write, opts: &TextOptions) -> io::Result<()> {
    let st = Style { color: opts.color };
    let reveals: Reveals = if opts.show_secrets {
        r.exchanges
            .iter()
            .filter_map(|x| x.credential.as_ref().map(|c| (x.id, c)))
            .filter(|(_, c)| c.secret.is_some() || c.raw_url.is_some())
            .collect()
    } else {
        HashMap::new()
    };
    let c = &r.capture;
    let files: Vec<&str> = c.files.iter().map(|f| f.path.as_str()).collect();
    writeln!(
        w,
        "{}",
        st.paint("1", &format!("modtrace report: {}", files.join(", ")))
    )?;
    writeln!(
        w,
        "  {} packets, {} bytes, {} to {}; link types: {}",
        c.packets,
        c.bytes,
        c.first.as_deref().unwrap_or("-"),
        c.last.as_deref().unwrap_or("-"),
        if c.link_types.is_empty() {
            "-".to_string()
        } else {
            c.link_types.join(", ")
        }
    )?;
    writeln!(
        w,
        "  {} TCP flows, {} HTTP exchanges, {} modules",
        c.tcp.flows,
        c.http_exchanges,
        r.modules.len()
    )?;
    if let Some(cmd) = &c.command {
        writeln!(
            w,
            "  command: {} (pid {}, as {}) {}",
            cmd.argv.join(" "),
            cmd.pid,
            cmd.user,
            cmd.outcome()
        )?;
    }
    if let Some(k) = &c.go_keys {
        writeln!(w, "  {}", k.line())?;
    }
    let mut notes = Vec::new();
    if c.tcp.evicted > 0 {
        notes.push(format!(
            "{} flows evicted to stay within the flow table's limit (a SYN flood or a very busy capture)",
            c.tcp.evicted
        ));
    }
    if c.tls_decrypted > 0 {
        notes.push(format!(
            "{} of {} TLS sessions decrypted with the key log{}",
            c.tls_decrypted,
            c.tls_sessions,
            if c.go_keys.as_ref().is_some_and(|k| k.secrets > 0) {
                " and the go process's secrets"
            } else {
                ""
            }
        ));
    }
    if c.tls_duplicates > 0 {
        notes.push(format!(
            "{} TLS sessions seen on both legs of a tunnel, counted once",
            c.tls_duplicates
        ));
    }
    if c.truncated_packets > 0 {
        notes.push(format!(
            "{} packets cut by the snaplen",
            c.truncated_packets
        ));
    }
    if c.undecodable_packets > 0 {
        notes.push(format!("{} packets not decoded", c.undecodable_packets));
    }
    if c.tcp.gaps > 0 {
        notes.push(format!(
            "{} gaps in TCP streams ({} bytes missing)",
            c.tcp.gaps, c.tcp.gap_bytes
        ));
    }
    if c.files.iter().any(|f| f.truncated) {
        notes.push("capture file cut short: analysed as far as it goes".into());
    }
    if opts.show_secrets {
        notes.push(st.paint(
            "1;31",
            "--show-secrets: credentials and tokens are shown as sent",
        ));
    }
    if !notes.is_empty() {
        writeln!(w, "  note: {}", notes.join("; "))?;
    }

    writeln!(w)?;
    writeln!(w, "{}", st.paint("1", "Modules"))?;
    if r.modules.is_empty() {
        writeln!(w, "  (no Go module traffic seen)")?;
    }
    for m in &r.modules {
        let title = crate::gomod::module_label(&m.module, m.version.as_deref());
        writeln!(w, "  {}", st.paint("1", &title))?;
        if m.h1.is_some() || m.mod_h1.is_some() {
            writeln!(
                w,
                "    zip {}  go.mod {}",
                m.h1.as_deref().unwrap_or("-"),
                m.mod_h1.as_deref().unwrap_or("-")
            )?;
        }
        for (i, h) in m.journey.iter().enumerate() {
            write_hop(w, &st, &reveals, h, i, 4)?;
        }
    }

    if r.capture.tls_sessions > 0 {
        writeln!(w)?;
        writeln!(
            w,
            "{}",
            st.paint("1", &format!("TLS sessions ({})", r.capture.tls_sessions))
        )?;
        for t in r.tls.iter().take(super::TEXT_TLS_SESSIONS) {
            write_tls(w, &st, t)?;
        }
        let shown = r.tls.len().min(super::TEXT_TLS_SESSIONS) as u64;
        if r.capture.tls_sessions > shown {
            writeln!(
                w,
                "  ... {} more (see --format json)",
                r.capture.tls_sessions - shown
            )?;
        }
    }

    writeln!(w)?;
    let mut counts = [0usize; 5];
    for f in &r.findings {
        counts[f.severity as usize] += 1;
    }
    let summary: Vec<String> = Severity::ALL
        .iter()
        .rev()
        .filter(|s| counts[**s as usize] > 0)
        .map(|s| format!("{} {}", counts[*s as usize], s))
        .collect();
    writeln!(
        w,
        "{}",
        st.paint(
            "1",
            &format!(
                "Findings ({}{})",
                r.findings.len(),
                if summary.is_empty() {
                    String::new()
                } else {
                    format!(": {}", summary.join(", "))
                }
            )
        )
    )?;
    if r.findings.is_empty() {
        writeln!(w, "  none")?;
    }
    for f in &r.findings {
        let message = revealed_message(f, &reveals, r);
        writeln!(w, "  {} {}  {}", st.sev(f.severity), f.rule.id(), message)?;
        let ex: Vec<String> = f
            .evidence
            .exchanges
            .iter()
            .take(12)
            .map(|e| e.to_string())
            .collect();
        let more = f.evidence.exchanges.len().saturating_sub(12);
        writeln!(
            w,
            "  {:<8} evidence: packet {} at {}, exchanges [{}{}]",
            "",
            f.evidence.packet,
            f.evidence.time.rfc3339(),
            ex.join(", "),
            if more > 0 {
                format!(", +{more}")
            } else {
                String::new()
            }
        )?;
    }
    if opts.show_secrets {
        write_secrets(w, &st, r)?;
    }
    let ignored = &r.capture.ignored_findings;
    if !ignored.is_empty() {
        writeln!(w)?;
        writeln!(
            w,
            "{}",
            st.paint("1", &format!("Ignored by the policy ({})", ignored.len()))
        )?;
        for i in ignored {
            let what = crate::gomod::label_of(&i.module, &i.version)
                .map_or(String::new(), |mv| format!(" {mv}"));
            writeln!(
                w,
                "  {} {}{what}: {}{}",
                i.severity.as_str(),
                i.rule.id(),
                i.reason,
                i.until
                    .as_deref()
                    .map(|u| format!(" (until {u})"))
                    .unwrap_or_default()
            )?;
        }
    }
    Ok(())
}

/// The finding's message with its exchanges' redacted URLs replaced by the URLs as sent.
fn revealed_message(f: &Finding, reveals: &Reveals, r: &Report) -> String {
    let mut message = f.message.clone();
    if reveals.is_empty() {
        return message;
    }
    for id in &f.evidence.exchanges {
        let Some(raw) = reveals.get(id).and_then(|c| c.raw_url.as_deref()) else {
            continue;
        };
        if let Some(x) = r.exchanges.iter().find(|x| x.id == *id) {
            if x.url != raw {
                message = message.replace(&x.url, raw);
            }
        }
    }
    message
}

/// `--show-secrets`: every credential seen, once, with where it went: `authorization: Basic
/// bWly... (mirror:secret)`, `url: user:password`, `query: token=abc`.
fn write_secrets(w: &mut dyn Write, st: &Style, r: &Report) -> io::Result<()> {
    // (secret line, server) -> exchange ids, in order of first use.
    let mut seen: Vec<((String, String), Vec<u64>)> = Vec::new();
    for x in &r.exchanges {
        let Some(c) = &x.credential else { continue };
        let Some(secret) = c.secret.as_deref() else {
            continue;
        };
        let mut line = format!("{}: {secret}", c.source);
        if c.scheme.eq_ignore_ascii_case("basic") {
            let decoded = secret
                .trim()
                .split_once(' ')
                .and_then(|(_, b)| {
                    base64::engine::general_purpose::STANDARD
                        .decode(b.trim())
                        .ok()
                })
                .and_then(|b| String::from_utf8(b).ok());
            if let Some(d) = decoded {
                line.push_str(&format!(" ({d})"));
            }
        }
        let key = (line, x.server.to_string());
        match seen.iter_mut().find(|(k, _)| *k == key) {
            Some((_, ids)) => ids.push(x.id),
            None => seen.push((key, vec![x.id])),
        }
    }
    writeln!(w)?;
    writeln!(
        w,
        "{}",
        st.paint(
            "1",
            &format!("Secrets seen ({}, --show-secrets)", seen.len())
        )
    )?;
    if seen.is_empty() {
        writeln!(w, "  none")?;
    }
    for ((line, server), ids) in &seen {
        let shown: Vec<String> = ids.iter().take(12).map(u64::to_string).collect();
        let more = ids.len().saturating_sub(12);
        writeln!(
            w,
            "  {}  to {server}, exchanges [{}{}]",
            st.paint("31", line),
            shown.join(", "),
            if more > 0 {
                format!(", +{more}")
            } else {
                String::new()
            }
        )?;
    }
    Ok(())
}

fn write_tls(w: &mut dyn Write, st: &Style, t: &crate::detect::tls::TlsRecord) -> io::Result<()> {
    use crate::detect::tls::CertificateCheck;
    let c = t.certificate_check();
    let colour = match c {
        CertificateCheck::Valid => "32",
        CertificateCheck::Invalid(_) => "31",
        CertificateCheck::Hidden | CertificateCheck::NotSeen => "2",
    };
    let check = st.paint(colour, &c.short());
    let verdict = t.client_verdict();
    writeln!(
        w,
        "  {} -> {} sni={} {} {} alpn={}: {check}, {verdict}",
        t.client,
        t.server,
        t.sni.as_deref().unwrap_or("-"),
        t.version.as_deref().unwrap_or("?"),
        t.cipher.as_deref().unwrap_or("?"),
        if t.alpn.is_empty() {
            "-".to_string()
        } else {
            t.alpn.join(",")
        },
    )?;
    if let Some(leaf) = t.leaf() {
        writeln!(
            w,
            "      subject {}; issuer {}; valid {} to {}",
            leaf.subject, leaf.issuer, leaf.not_before, leaf.not_after
        )?;
    }
    if let Some(via) = &t.via {
        writeln!(w, "      through the forward proxy {via} (CONNECT)")?;
    }
    if let Some(d) = &t.decryption {
        match &d.unavailable {
            Some(why) => writeln!(w, "      not decrypted: {why}")?,
            None => {
                let failed = if d.records_failed > 0 {
                    st.paint(
                        "33",
                        &format!(
                            ", {} FAILED ({})",
                            d.records_failed,
                            d.first_failure.as_deref().unwrap_or("-")
                        ),
                    )
                } else {
                    String::new()
                };
                writeln!(
                    w,
                    "      decrypted: {} records, {} bytes to server, {} to client{failed}",
                    d.records_decrypted, d.plaintext_bytes_to_server, d.plaintext_bytes_to_client
                )?
            }
        }
    }
    if !t.alerts.is_empty() {
        writeln!(w, "      alerts: {}", t.alerts.join("; "))?;
    }
    Ok(())
}

fn write_hop(
    w: &mut dyn Write,
    st: &Style,
    reveals: &Reveals,
    h: &Hop,
    i: usize,
    indent: usize,
) -> io::Result<()> {
    let status = h.status.map_or("---".to_string(), |s| s.to_string());
    let status = match (&h.failed, h.status) {
        (Some(f), _) => st.paint("31", f.failure.as_str()),
        (None, Some(200..=299)) => st.paint("32", &status),
        (None, Some(300..=399)) => st.paint("36", &status),
        (None, Some(_)) => st.paint("33", &status),
        (None, None) => st.paint("2", &status),
    };
    let link = match &h.after {
        Some(HopLink::Fallback { from, cause }) if cause == "404" || cause == "410" => {
            format!("  (fallback after #{from})")
        }
        Some(HopLink::Fallback { from, cause }) => format!("  (fallback after #{from}: {cause})"),
        Some(HopLink::Redirect { from }) => format!("  (redirected from #{from})"),
        None => String::new(),
    };
    let link = match &h.via {
        Some(via) => format!("{link}  via {via}"),
        None => link,
    };
    let link = match &h.failed {
        Some(f) => {
            let detail = f
                .detail
                .as_deref()
                .map(|d| format!(", {d}"))
                .unwrap_or_default();
            format!("  (no request sent{detail}; inferred){link}")
        }
        None => link,
    };
    let scheme = if h.scheme == "http" {
        st.paint("31", "http")
    } else if h.scheme.is_empty() {
        "-".to_string()
    } else {
        h.scheme.clone()
    };
    let url = h
        .exchange
        .and_then(|x| reveals.get(&x))
        .and_then(|c| c.raw_url.as_deref())
        .unwrap_or(&h.url);
    writeln!(
        w,
        "{:indent$}#{i:<2} {:<7} {} {} {}{}",
        "",
        h.op.as_str(),
        status,
        scheme,
        url,
        link,
        indent = indent
    )?;
    for (j, u) in h.upstream.iter().enumerate() {
        writeln!(w, "{:indent$}   upstream:", "", indent = indent)?;
        write_hop(w, st, reveals, u, j, indent + 5)?;
    }
    Ok(())
}
