//! Wires the stages together: frames in, events out. The same `Analyzer` serves file analysis,
//! replay and live capture; sinks (reports, TUI) consume the `Event`s it produces.

use crate::decode::{DecodeStats, Decoder, DefragLimits, Transport};
use crate::detect::tls::{summarize, TlsPolicy, TlsRecord};
use crate::detect::{Detector, Finding};
use crate::flow::{Dir, FlowEvent, FlowId, FlowInfo, FlowStats, FlowTable, Limits};
use crate::gomod::integrity::Integrity;
use crate::gomod::note::Verifier;
use crate::gomod::sumdb::GoSumLine;
use crate::gomod::{self, path::split_url, Credential, Exchange, Journey, Tracker};
use crate::proto::dns::{self, DnsTcpConn, RData};
use crate::proto::http1::{looks_like_request, Http1Conn};
use crate::proto::tls::{looks_like_tls_client, TlsConn, TlsEvent};
use crate::proto::{header, HttpEvent, HttpExchange, HttpLimits};
use crate::source::spill::Spill;
use crate::source::{Frame, LinkType};
use crate::time::Ts;
use base64::Engine;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::IpAddr;

/// What sinks see, in order.
#[derive(Clone, Debug)]
pub enum Event {
    Exchange(Box<Exchange>),
    /// A TLS flow ended (index into the TLS sessions).
    Tls(Box<TlsRecord>),
    /// A finding was raised or gained evidence (index into the detector's findings).
    Finding(usize),
    /// A module journey gained a hop (index into [`Analyzer::journeys`]).
    Journey(usize),
}

/// Who owns a new TCP connection, as a live source can tell (process attribution), and
/// whether to analyse it at all (`capture --process`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowOwner {
    /// The owning process's name, e.g. `go`.
    pub process: Option<String>,
    /// False: the flow's bytes are not parsed (it belongs to a process not asked for).
    pub keep: bool,
}

/// Called once per new TCP flow, when the flow table first sees it.
pub type FlowOwnerLookup = Box<dyn FnMut(&FlowInfo) -> FlowOwner>;

/// Bound on remembered flow owners (flow id -> process, for findings whose evidence names flows
/// that have closed); the oldest are forgotten first.
const MAX_FLOW_OWNERS: usize = 65_536;

pub struct Config {
    pub flow: Limits,
    pub http: HttpLimits,
    pub defrag: DefragLimits,
    pub tls: TlsPolicy,
    /// Checksum-database verifier keys: Go's built-in one plus `--sumdb-key` and GOSUMDB's.
    pub sumdb_keys: Vec<Verifier>,
    /// go.sum lines given with `--go-sum`, with their file.
    pub go_sum: Vec<(GoSumLine, String)>,
    /// Compute the h1 of every module zip (`--no-zip-hashes` turns it off).
    pub hash_zips: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            flow: Limits::default(),
            // Large bodies (module zips) are passed on and spilled to a file, to be hashed
            // whole without holding them in memory.
            http: HttpLimits {
                overflow_events: true,
                ..HttpLimits::default()
            },
            defrag: DefragLimits::default(),
            tls: TlsPolicy::default(),
            sumdb_keys: vec![Verifier::go_sumdb()],
            go_sum: Vec::new(),
            hash_zips: true,
        }
    }
}

/// Everything an analysis produced, for the reports.
pub struct Outcome {
    pub exchanges: Vec<Exchange>,
    pub journeys: Vec<Journey>,
    pub findings: Vec<Finding>,
    pub tls: Vec<TlsRecord>,
    pub stats: PipelineStats,
    pub decode: DecodeStats,
    pub flow: FlowStats,
}

/// Per-flow application state, chosen from the first bytes.
enum Conn {
    Unknown,
    Http(Box<Http1Conn>),
    DnsTcp(DnsTcpConn),
    Tls {
        conn: Box<TlsConn>,
        /// Time and packet of the server's Certificate message (validation time).
        cert_at: Option<(Ts, u64)>,
    },
    /// Not a protocol modtrace parses (yet): bytes are counted only.
    Opaque,
    Tunnel,
}

struct FlowCtx {
    info: FlowInfo,
    conn: Conn,
    process: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct PipelineStats {
    pub packets: u64,
    pub bytes: u64,
    pub truncated_packets: u64,
    pub first: Option<Ts>,
    pub last: Option<Ts>,
    pub link_types: BTreeSet<LinkType>,
    pub http_anomalies: u64,
    pub dns_messages: u64,
    pub injections: u64,
    pub exchanges: u64,
    pub tls_sessions: u64,
}

/// Bound on remembered DNS names (address -> name); the oldest are forgotten first.
const MAX_DNS_NAMES: usize = 65_536;

pub struct Analyzer {
    cfg: Config,
    decoder: Decoder,
    flows: FlowTable,
    ctx: HashMap<FlowId, FlowCtx>,
    names: HashMap<IpAddr, String>,
    name_order: VecDeque<IpAddr>,
    tracker: Tracker,
    detector: Detector,
    exchanges: Vec<Exchange>,
    tls_sessions: Vec<TlsRecord>,
    tls_events: Vec<TlsEvent>,
    /// Response-body bytes past the parser's keep limit, per flow, for the response in
    /// progress.
    spills: HashMap<FlowId, Spill>,
    integrity: Integrity,
    keep_exchanges: bool,
    next_exchange: u64,
    stats: PipelineStats,
    flow_events: Vec<FlowEvent>,
    http_events: Vec<HttpEvent>,
    events: Vec<Event>,
    owner_lookup: Option<FlowOwnerLookup>,
    /// Flow id -> owning process, for findings (bounded by MAX_FLOW_OWNERS).
    flow_owners: HashMap<FlowId, String>,
    flow_owner_order: VecDeque<FlowId>,
}

impl Analyzer {
    pub fn new(cfg: Config) -> Analyzer {
        let mut integrity = Integrity::new(cfg.sumdb_keys.clone(), cfg.go_sum.clone());
        integrity.hash_zips = cfg.hash_zips;
        let mut detector = Detector::new();
        detector.set_go_sum(
            cfg.go_sum
                .iter()
                .map(|(l, _)| (l.module.clone(), l.version.clone()))
                .collect(),
        );
        Analyzer {
            decoder: Decoder::new(cfg.defrag.clone()),
            flows: FlowTable::new(cfg.flow.clone()),
            cfg,
            ctx: HashMap::new(),
            names: HashMap::new(),
            name_order: VecDeque::new(),
            tracker: Tracker::new(),
            detector,
            exchanges: Vec::new(),
            tls_sessions: Vec::new(),
            tls_events: Vec::new(),
            spills: HashMap::new(),
            integrity,
            keep_exchanges: true,
            next_exchange: 1,
            stats: PipelineStats::default(),
            flow_events: Vec::new(),
            http_events: Vec::new(),
            events: Vec::new(),
            owner_lookup: None,
            flow_owners: HashMap::new(),
            flow_owner_order: VecDeque::new(),
        }
    }

    /// Live capture: asks `lookup` who owns each new TCP flow. The answer fills the `process`
    /// of exchanges, journeys and findings; flows it does not keep are counted, not parsed.
    pub fn set_flow_owner_lookup(&mut self, lookup: FlowOwnerLookup) {
        self.owner_lookup = Some(lookup);
    }

    /// Live capture: the kernel has dropped `dropped` of `received` packets so far (pcap
    /// statistics). Raises or updates the capture-drops finding; no-op for 0.
    pub fn on_capture_drops(&mut self, dropped: u64, received: u64) {
        if dropped == 0 {
            return;
        }
        let ts = self.stats.last.unwrap_or_default();
        self.detector
            .on_capture_drops(dropped, received, self.stats.packets, ts);
        self.push_touched_findings();
    }

    /// Finding events for what the detector changed, with their processes filled in.
    fn push_touched_findings(&mut self) {
        for i in self.detector.take_touched() {
            if !self.flow_owners.is_empty() {
                let process = self.detector.findings().get(i).and_then(|f| {
                    let mut names: Vec<&str> = Vec::new();
                    for flow in &f.evidence.flows {
                        if let Some(p) = self.flow_owners.get(flow) {
                            if !names.contains(&p.as_str()) {
                                names.push(p);
                            }
                        }
                    }
                    (!names.is_empty()).then(|| names.join(", "))
                });
                self.detector.set_process(i, process);
            }
            self.events.push(Event::Finding(i));
        }
    }

    fn remember_owner(&mut self, flow: FlowId, process: &str) {
        if self.flow_owners.insert(flow, process.to_string()).is_none() {
            self.flow_owner_order.push_back(flow);
            if self.flow_owner_order.len() > MAX_FLOW_OWNERS {
                if let Some(old) = self.flow_owner_order.pop_front() {
                    self.flow_owners.remove(&old);
                }
            }
        }
    }

    /// Keep every exchange for the final report (JSON needs them; a text summary does not).
    pub fn keep_exchanges(&mut self, keep: bool) {
        self.keep_exchanges = keep;
    }

    /// Events produced since the last call.
    pub fn drain_events(&mut self) -> std::vec::Drain<'_, Event> {
        self.events.drain(..)
    }

    pub fn stats(&self) -> &PipelineStats {
        &self.stats
    }
    pub fn decode_stats(&self) -> &DecodeStats {
        self.decoder.stats()
    }
    pub fn flow_stats(&self) -> &FlowStats {
        self.flows.stats()
    }
    pub fn findings(&self) -> &[Finding] {
        self.detector.findings()
    }
    pub fn journeys(&self) -> &[Journey] {
        self.tracker.journeys()
    }

    pub fn on_frame(&mut self, frame: &Frame) {
        self.stats.packets += 1;
        let packet = self.stats.packets;
        self.stats.bytes += frame.data.len() as u64;
        if frame.is_truncated() {
            self.stats.truncated_packets += 1;
        }
        self.stats.first = Some(self.stats.first.map_or(frame.ts, |f| f.min(frame.ts)));
        self.stats.last = Some(self.stats.last.map_or(frame.ts, |l| l.max(frame.ts)));
        self.stats.link_types.insert(frame.link);
        let mut fe = std::mem::take(&mut self.flow_events);
        match self.decoder.decode(frame) {
            Some(Transport::Tcp(seg)) => self.flows.on_tcp(frame.ts, packet, &seg, &mut fe),
            Some(Transport::Udp(d))
                if [d.src.port(), d.dst.port()]
                    .iter()
                    .any(|p| *p == 53 || *p == 5353) =>
            {
                if let Ok(msg) = dns::parse_message(&d.payload) {
                    self.on_dns(&msg);
                }
            }
            Some(Transport::Udp(_)) | None => {}
        }
        self.on_flow_events(&mut fe);
        self.flow_events = fe;
    }

    /// End of input: flushes every flow and runs the end-of-capture rules.
    pub fn finish(&mut self) {
        let ts = self.stats.last.unwrap_or_default();
        let mut fe = std::mem::take(&mut self.flow_events);
        self.flows.finish(ts, &mut fe);
        self.on_flow_events(&mut fe);
        self.detector.finish();
        self.push_touched_findings();
    }

    /// The final state, for reports.
    pub fn into_outcome(self) -> Outcome {
        let mut exchanges = self.exchanges;
        exchanges.sort_by_key(|e| (e.start, e.id));
        let mut tls = self.tls_sessions;
        tls.sort_by_key(|t| (t.start, t.flow));
        Outcome {
            exchanges,
            journeys: self.tracker.into_journeys(),
            findings: self.detector.into_findings(),
            tls,
            stats: self.stats,
            decode: self.decoder.stats().clone(),
            flow: self.flows.stats().clone(),
        }
    }

    fn on_dns(&mut self, msg: &dns::DnsMessage) {
        self.stats.dns_messages += 1;
        if !msg.response {
            return;
        }
        for a in &msg.answers {
            let ip = match &a.data {
                RData::A(v4) => IpAddr::V4(*v4),
                RData::Aaaa(v6) => IpAddr::V6(*v6),
                _ => continue,
            };
            // The name asked for (first question) is what the client used; CNAME targets are
            // an implementation detail of the resolver.
            let name = msg
                .questions
                .first()
                .map(|q| q.name.clone())
                .unwrap_or_else(|| a.name.clone());
            if self.names.insert(ip, name).is_none() {
                self.name_order.push_back(ip);
                if self.name_order.len() > MAX_DNS_NAMES {
                    if let Some(old) = self.name_order.pop_front() {
                        self.names.remove(&old);
                    }
                }
            }
        }
    }

    fn on_flow_events(&mut self, fe: &mut Vec<FlowEvent>) {
        let mut he = std::mem::take(&mut self.http_events);
        for ev in fe.drain(..) {
            match ev {
                FlowEvent::Opened(info) => {
                    let owner = self.owner_lookup.as_mut().map(|f| f(&info));
                    let (process, keep) = match owner {
                        Some(o) => (o.process, o.keep),
                        None => (None, true),
                    };
                    if let Some(p) = &process {
                        self.remember_owner(info.id, p);
                    }
                    self.ctx.insert(
                        info.id,
                        FlowCtx {
                            info,
                            // A flow of a process not asked for: its bytes are not parsed.
                            conn: if keep { Conn::Unknown } else { Conn::Opaque },
                            process,
                        },
                    );
                }
                FlowEvent::Data {
                    flow,
                    dir,
                    ts,
                    packet,
                    data,
                } => {
                    let Some(c) = self.ctx.get_mut(&flow) else {
                        continue;
                    };
                    if let Conn::Unknown = c.conn {
                        c.conn = pick_protocol(&c.info, dir, &data, &self.cfg.http, flow);
                    }
                    match &mut c.conn {
                        Conn::Http(h) => h.on_data(dir, ts, packet, &data, &mut he),
                        Conn::DnsTcp(d) => {
                            let mut msgs = Vec::new();
                            d.on_data(dir, &data, &mut msgs);
                            for m in &msgs {
                                self.on_dns(m);
                            }
                        }
                        Conn::Tls { conn, cert_at } => {
                            self.tls_events.clear();
                            conn.on_data(dir, ts, packet, &data, &mut self.tls_events);
                            for ev in &self.tls_events {
                                if let TlsEvent::Certificates {
                                    dir: Dir::ToClient,
                                    ts,
                                    packet,
                                    ..
                                } = ev
                                {
                                    cert_at.get_or_insert((*ts, *packet));
                                }
                            }
                        }
                        Conn::Unknown | Conn::Opaque | Conn::Tunnel => {}
                    }
                }
                FlowEvent::Gap { flow, dir, ts, len } => match self.ctx.get_mut(&flow) {
                    Some(FlowCtx {
                        conn: Conn::Http(h),
                        ..
                    }) => h.on_gap(dir, ts, len, &mut he),
                    Some(FlowCtx {
                        conn: Conn::DnsTcp(d),
                        ..
                    }) => d.on_gap(dir),
                    Some(FlowCtx {
                        conn: Conn::Tls { conn, .. },
                        ..
                    }) => conn.on_gap(dir, len),
                    _ => {}
                },
                FlowEvent::Fin {
                    flow,
                    dir,
                    ts,
                    packet,
                } => self.on_end(flow, dir, ts, packet, false, &mut he),
                FlowEvent::Reset {
                    flow,
                    dir,
                    ts,
                    packet,
                } => self.on_end(flow, dir, ts, packet, true, &mut he),
                FlowEvent::Injection {
                    flow,
                    dir,
                    ts,
                    packet,
                    seq,
                    len,
                } => {
                    self.stats.injections += 1;
                    let what = match self.ctx.get(&flow) {
                        Some(c) => format!(
                            "TCP {} -> {}: a retransmission of {len} bytes at seq {seq} carried different bytes than the original (packet {packet})",
                            if dir == Dir::ToServer { c.info.client } else { c.info.server },
                            if dir == Dir::ToServer { c.info.server } else { c.info.client },
                        ),
                        None => format!("TCP flow {flow}: a retransmission carried different bytes (packet {packet})"),
                    };
                    self.detector.on_injection(flow, packet, ts, what);
                }
                FlowEvent::Closed { flow, ts, .. } => {
                    if let Some(mut c) = self.ctx.remove(&flow) {
                        if let Conn::Http(h) = &mut c.conn {
                            h.finish(ts, &mut he);
                        }
                        if let Conn::Tls { conn, cert_at } = &c.conn {
                            self.on_tls_end(&c.info, conn, *cert_at);
                        }
                        self.ctx.insert(flow, c);
                        self.on_http_events(&mut he);
                        self.ctx.remove(&flow);
                        self.spills.remove(&flow);
                    }
                }
            }
            self.on_http_events(&mut he);
        }
        self.http_events = he;
        self.push_touched_findings();
    }

    fn on_end(
        &mut self,
        flow: FlowId,
        dir: Dir,
        ts: Ts,
        packet: u64,
        reset: bool,
        he: &mut Vec<HttpEvent>,
    ) {
        match self.ctx.get_mut(&flow) {
            Some(FlowCtx {
                conn: Conn::Http(h),
                ..
            }) => h.on_end(dir, ts, packet, he),
            Some(FlowCtx {
                conn: Conn::Tls { conn, .. },
                ..
            }) => {
                self.tls_events.clear();
                conn.on_end(dir, ts, packet, reset, &mut self.tls_events);
            }
            _ => {}
        }
    }

    fn on_tls_end(&mut self, info: &FlowInfo, conn: &TlsConn, cert_at: Option<(Ts, u64)>) {
        let record = summarize(info, conn.session(), cert_at, &self.cfg.tls);
        self.detector.on_tls(&record);
        self.events.push(Event::Tls(Box::new(record.clone())));
        // A text report lists the first sessions only; memory stays flat without --format json.
        if self.keep_exchanges || self.tls_sessions.len() < crate::report::TEXT_TLS_SESSIONS {
            self.tls_sessions.push(record);
        }
        self.stats.tls_sessions += 1;
    }

    fn on_http_events(&mut self, he: &mut Vec<HttpEvent>) {
        for ev in he.drain(..) {
            match ev {
                HttpEvent::Exchange(mut x) => {
                    let Some((info, process)) = self
                        .ctx
                        .get(&x.flow)
                        .map(|c| (c.info.clone(), c.process.clone()))
                    else {
                        continue;
                    };
                    // The body: what the parser kept, then the spilled tail when it overflowed.
                    let spill = x
                        .response
                        .as_ref()
                        .is_some_and(|r| r.body.overflow > 0)
                        .then(|| self.spills.remove(&x.flow))
                        .flatten();
                    let body = x.response.as_mut().map(|r| {
                        let whole = r.body.len == r.body.data.len() as u64 + r.body.overflow
                            && spill.as_ref().map_or(0, Spill::len) == r.body.overflow;
                        (std::mem::take(&mut r.body.data), whole)
                    });
                    let mut ex = self.exchange_record(&info, x);
                    ex.process = process;
                    self.stats.exchanges += 1;
                    let outcome = self.tracker.on_exchange(&mut ex);
                    if let Some(ji) = outcome.journey {
                        if let Some(p) = &ex.process {
                            self.tracker.note_process(ji, p);
                        }
                    }
                    let mut found = Vec::new();
                    if let Some((head, true)) = &body {
                        let mut spill = spill.unwrap_or_default();
                        if let Some(mut reader) = spill.reader(head) {
                            self.integrity
                                .on_exchange(&mut ex, Some(&mut reader), &mut found);
                        }
                    }
                    self.tracker.note_hashes(&ex);
                    self.detector.on_exchange(&ex, &outcome, &self.tracker);
                    for ev in found {
                        self.detector.on_integrity(ev, &ex);
                    }
                    self.events.push(Event::Exchange(Box::new(ex.clone())));
                    if let Some(ji) = outcome.journey {
                        self.events.push(Event::Journey(ji));
                    }
                    if self.keep_exchanges {
                        self.exchanges.push(ex);
                    }
                }
                HttpEvent::TunnelOpened { flow, .. } => {
                    if let Some(c) = self.ctx.get_mut(&flow) {
                        // Keep the HTTP machine: it passes tunnel bytes through as TunnelData,
                        // which a TLS layer will consume.
                        let _ = c;
                    }
                }
                HttpEvent::TunnelData { .. } => {}
                HttpEvent::BodyOverflow { flow, data } => {
                    self.spills.entry(flow).or_default().write(&data);
                }
                HttpEvent::Anomaly { .. } => self.stats.http_anomalies += 1,
            }
        }
    }

    fn exchange_record(&mut self, info: &FlowInfo, x: HttpExchange) -> Exchange {
        let id = self.next_exchange;
        self.next_exchange += 1;
        let req = &x.request;
        let host = header(&req.headers, "host").map(str::to_string);
        let scheme = "http";
        let is_connect = req.method.eq_ignore_ascii_case("CONNECT");
        let raw_url = if is_connect {
            req.target.clone()
        } else if req.target.contains("://") {
            // absolute-form through a forward proxy (RFC 9112 3.2.2)
            req.target.clone()
        } else {
            let authority = host.clone().unwrap_or_else(|| info.server.to_string());
            format!("{scheme}://{authority}{}", req.target)
        };
        let (url, mut credential) = redact_userinfo(&raw_url);
        for (name, source) in [
            ("authorization", "authorization"),
            ("proxy-authorization", "proxy-authorization"),
        ] {
            if let Some(v) = header(&req.headers, name) {
                credential = Some(parse_authorization(v, source));
                break;
            }
        }
        let class = if is_connect {
            gomod::classify("CONNECT", &format!("{scheme}://{url}"))
        } else {
            gomod::classify(&req.method, &url)
        };
        let resp = x.response.as_ref();
        let location = resp
            .and_then(|r| header(&r.headers, "location"))
            .map(|l| gomod::path::resolve_location(&url, l));
        let end = resp.map_or(req.ts, |r| r.end_ts);
        Exchange {
            id,
            method: req.method.clone(),
            url,
            status: resp.map(|r| r.status),
            client: info.client,
            server: info.server,
            server_name: self.names.get(&info.server.ip()).cloned(),
            host,
            scheme: scheme.to_string(),
            op: class.op,
            module: class.module,
            version: class.version,
            bytes: resp.map_or(0, |r| r.body.wire_len),
            location,
            start: req.ts,
            duration_ms: resp.map(|r| req.ts.millis_until(r.end_ts)),
            flow: x.flow,
            packet: req.packet,
            base: class.base,
            credential,
            redirect_from: None,
            via: None,
            complete: resp.is_some_and(|r| r.body.complete && !r.body.decode_error),
            h1: None,
            sha256: None,
            process: None,
            end,
        }
    }
}

fn pick_protocol(
    info: &FlowInfo,
    dir: Dir,
    data: &[u8],
    limits: &HttpLimits,
    flow: FlowId,
) -> Conn {
    if info.server.port() == 53 || info.client.port() == 53 {
        return Conn::DnsTcp(DnsTcpConn::default());
    }
    if dir == Dir::ToServer && looks_like_tls_client(data).is_some() {
        return Conn::Tls {
            conn: Box::new(TlsConn::new(flow)),
            cert_at: None,
        };
    }
    let http = match dir {
        Dir::ToServer => looks_like_request(data),
        // Picked up midstream with the server talking first.
        Dir::ToClient => data.starts_with(b"HTTP/1."),
    };
    if http {
        Conn::Http(Box::new(Http1Conn::new(flow, limits.clone())))
    } else {
        let _ = Conn::Tunnel;
        Conn::Opaque
    }
}

/// Removes the password from URL userinfo (`http://user:secret@h/` -> `http://user:***@h/`)
/// and reports the credential without its secret.
pub fn redact_userinfo(url: &str) -> (String, Option<Credential>) {
    let Some(parts) = split_url(url) else {
        return (url.to_string(), None);
    };
    let Some(ui) = parts.userinfo else {
        return (url.to_string(), None);
    };
    let (user, has_secret) = match ui.split_once(':') {
        Some((u, _)) => (u, true),
        None => (ui, false),
    };
    let shown = if has_secret {
        format!("{user}:***")
    } else {
        user.to_string()
    };
    let redacted = url.replacen(&format!("{ui}@"), &format!("{shown}@"), 1);
    let cred = Credential {
        scheme: "userinfo".into(),
        user: Some(gomod::path::percent_decode(user).unwrap_or_else(|| user.to_string())),
        source: "url".into(),
    };
    (redacted, Some(cred))
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_redacted_and_user_kept() {
        let (u, c) = redact_userinfo("http://bob:hunter2@127.0.0.1:8081/x/@v/list");
        assert_eq!(u, "http://bob:***@127.0.0.1:8081/x/@v/list");
        assert!(!u.contains("hunter2"));
        assert_eq!(c.unwrap().user.as_deref(), Some("bob"));
        let (u, c) = redact_userinfo("http://127.0.0.1/x");
        assert_eq!((u.as_str(), c), ("http://127.0.0.1/x", None));
    }

    #[test]
    fn basic_auth_user_without_secret() {
        // "mirror:lab-secret" in base64
        let c = parse_authorization("Basic bWlycm9yOmxhYi1zZWNyZXQ=", "authorization");
        assert_eq!(c.scheme, "Basic");
        assert_eq!(c.user.as_deref(), Some("mirror"));
        let b = parse_authorization("Bearer abc.def", "authorization");
        assert_eq!((b.scheme.as_str(), b.user), ("Bearer", None));
    }
}
