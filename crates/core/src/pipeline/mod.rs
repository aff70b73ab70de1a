//! Wires the stages together: frames in, events out. The same `Analyzer` serves file analysis,
//! replay and live capture; sinks (reports, TUI) consume the `Event`s it produces. The layer
//! stack inside a TCP flow (TLS, CONNECT tunnel, HTTP/1 or HTTP/2) is in `layers.rs`.

mod hashing;
mod layers;

use crate::decode::{DecodeStats, Decoder, DefragLimits, Transport};
use crate::detect::tls::{summarize, TlsPolicy, TlsRecord};
use crate::detect::{Detector, Finding};
use crate::flow::{CloseReason, Dir, FlowEvent, FlowId, FlowInfo, FlowStats, FlowTable, Limits};
use crate::gomod::classify::Op;
use crate::gomod::integrity::Integrity;
use crate::gomod::journey::{Attempt, AttemptFailure};
use crate::gomod::note::Verifier;
use crate::gomod::sumdb::GoSumLine;
use crate::gomod::{self, Exchange, Journey, Tracker};
use crate::proto::dns::{self, RData};
use crate::proto::tls::keylog::KeyLog;
use crate::proto::tls::{looks_like_tls_client, TlsConn, TlsEvent};
use crate::proto::{header, HttpEvent, HttpExchange, HttpLimits};
use crate::source::spill::Spill;
use crate::source::{Frame, LinkType};
use crate::time::Ts;
use hashing::{Body, HashPool, PendingDigest};
use layers::{pick_protocol, Conn, FlowCtx, Layer, SecureConn, Tunnel};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};

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
    /// Worker threads that hash module zips while packets go on (`--threads`); 0 hashes them
    /// on the packet path. Reports are the same either way.
    pub threads: usize,
    /// TLS secrets (`--keylog`); pcapng Decryption Secrets Blocks add to them
    /// ([`Analyzer::add_keylog`]).
    pub keylog: KeyLog,
    /// Live capture: the key log grows while packets arrive, so a session without secrets
    /// keeps its records for a while (`TlsLimits::wait_for_keys`).
    pub wait_for_keys: bool,
    /// Keep each exchange's (redacted) headers, for the TUI's detail view; reports do not
    /// need them, and a JSON report holds every exchange in memory.
    pub keep_headers: bool,
    /// TLS sessions kept for the report when exchanges are not kept (`keep_exchanges`): a
    /// text report lists the first ones only (`report::TEXT_TLS_SESSIONS`), and memory stays
    /// flat without `--format json`.
    pub keep_tls_sessions: usize,
    /// The GOPROXY list of `--go-env` (empty without it): failed connections join journeys
    /// only as an entry before the next request's, with `|` between.
    pub goproxy: Vec<gomod::goenv::ProxyEntry>,
    /// `--policy`, `--private` and `--go-env` merged: private module paths and allowed proxies
    /// for the detector; severity overrides and ignores for the reports
    /// ([`crate::policy::Policy::apply`]).
    pub policy: crate::policy::Policy,
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
            threads: 0,
            keylog: KeyLog::new(),
            wait_for_keys: false,
            keep_headers: false,
            keep_tls_sessions: 50,
            goproxy: Vec::new(),
            policy: crate::policy::Policy::default(),
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
    /// TLS sessions whose records a key log opened.
    pub tls_decrypted: u64,
    /// TLS sessions seen a second time on another flow (the other leg of a tunnel or relay),
    /// analysed once.
    pub tls_duplicates: u64,
}

/// Bound on remembered TLS client randoms (to find one session seen on two flows).
const MAX_TLS_RANDOMS: usize = 65_536;

/// Bound on remembered DNS names (address -> name); the oldest are forgotten first.
const MAX_DNS_NAMES: usize = 65_536;

pub struct Analyzer {
    cfg: Config,
    decoder: Decoder,
    flows: FlowTable,
    /// Boxed: the table holds up to `Limits::max_flows` entries (and grows to twice that in
    /// buckets as flows come and go), most of them flows that never carry data.
    ctx: HashMap<FlowId, Box<FlowCtx>>,
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
    keylog: KeyLog,
    /// Client random -> the first flow that carried it.
    tls_randoms: HashMap<Vec<u8>, FlowId>,
    tls_random_order: VecDeque<Vec<u8>>,
    inner_http_events: Vec<HttpEvent>,
    /// Live: closed flows kept open for their TLS secrets, with when they closed.
    parked: Vec<(FlowId, Ts)>,
    /// What comes after the protocol layers (journeys, integrity, detection, events), in the
    /// order it arose; run as soon as the zip hash it waits for is in.
    downstream: VecDeque<Downstream>,
    /// Body bytes in memory held by zips being hashed (`MAX_HASHING_MEMORY`).
    hashing_memory: usize,
    pool: Option<HashPool>,
}

/// Work after the protocol layers, in the order it arose. Only an exchange may wait (for its
/// zip's digest); everything behind it waits with it, so the tracker, the integrity checks and
/// the detector see what they always saw, in the same order.
enum Downstream {
    Exchange(Box<Exchange>, Work),
    Tls(Box<TlsRecord>),
    Injection {
        flow: FlowId,
        packet: u64,
        ts: Ts,
        what: String,
    },
    CaptureDrops {
        dropped: u64,
        received: u64,
        packets: u64,
        ts: Ts,
    },
    /// A connection that failed before any request (for the journeys).
    Attempt(Box<Attempt>),
    /// The findings the detector changed become events here.
    Findings,
}

/// An exchange's body, as the integrity checks will want it.
enum Work {
    None,
    /// Read in order (sumdb lookups and tiles, small module files, a zip hashed in order).
    Body(Body),
    /// A zip or .mod file on a worker, and its body's bytes in memory meanwhile.
    Hashing {
        digest: PendingDigest,
        memory: usize,
    },
}

/// Module file bodies held in memory while workers hash them: past this the packet path waits for the
/// oldest (spilled parts are on disk and do not count). 8 MiB keeps peak memory near what one
/// thread needs while several zips are in flight.
const MAX_HASHING_MEMORY: usize = 8 << 20;
/// Items waiting behind an exchange whose zip is being hashed.
const MAX_DOWNSTREAM: usize = 4096;

/// Live: how long (capture time) a closed flow waits for its TLS secrets to reach the key log.
const KEY_WAIT_AFTER_CLOSE_NS: i64 = 2_000_000_000;

impl Analyzer {
    pub fn new(mut cfg: Config) -> Analyzer {
        let mut cfg_keylog = std::mem::take(&mut cfg.keylog);
        let mut integrity = Integrity::new(cfg.sumdb_keys.clone(), cfg.go_sum.clone());
        integrity.hash_zips = cfg.hash_zips;
        let pool = (cfg.threads > 0 && cfg.hash_zips).then(|| HashPool::new(cfg.threads));
        let mut detector = Detector::new();
        detector.set_go_sum(
            cfg.go_sum
                .iter()
                .map(|(l, _)| (l.module.clone(), l.version.clone()))
                .collect(),
        );
        detector.set_scope(cfg.policy.scope());
        let mut tracker = Tracker::new();
        tracker.set_goproxy(cfg.goproxy.clone());
        Analyzer {
            decoder: Decoder::new(cfg.defrag.clone()),
            flows: FlowTable::new(cfg.flow.clone()),
            cfg,
            ctx: HashMap::new(),
            names: HashMap::new(),
            name_order: VecDeque::new(),
            tracker,
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
            keylog: std::mem::take(&mut cfg_keylog),
            tls_randoms: HashMap::new(),
            tls_random_order: VecDeque::new(),
            inner_http_events: Vec::new(),
            parked: Vec::new(),
            downstream: VecDeque::new(),
            hashing_memory: 0,
            pool,
        }
    }

    /// Adds TLS secrets (NSS key log text, e.g. from a pcapng Decryption Secrets Block). They
    /// open the sessions whose ServerHello comes after.
    pub fn add_keylog(&mut self, text: &[u8]) {
        let before = self.keylog.len();
        self.keylog.add_text(text);
        if self.cfg.wait_for_keys && self.keylog.len() > before {
            self.retry_waiting_sessions();
        }
    }

    /// Sessions waiting for their secrets (live capture) look again.
    fn retry_waiting_sessions(&mut self) {
        let flows: Vec<FlowId> = self.ctx.keys().copied().collect();
        for flow in flows {
            let mut plain = Vec::new();
            let mut tunneled = Vec::new();
            if let Some(c) = self.ctx.get_mut(&flow) {
                if let Conn::Tls(sc) = &mut c.conn {
                    sc.retry_keys(
                        &self.keylog,
                        false,
                        &self.cfg.http,
                        &mut self.tls_events,
                        &mut plain,
                    );
                }
                if let Some(sc) = c.tunnel.as_mut().and_then(|t| t.secure.as_mut()) {
                    sc.retry_keys(
                        &self.keylog,
                        false,
                        &self.cfg.http,
                        &mut self.tls_events,
                        &mut tunneled,
                    );
                }
            }
            self.on_http_events(&mut plain, Layer::Tls);
            self.on_http_events(&mut tunneled, Layer::Tunnel);
        }
        let now = self.stats.last.unwrap_or_default();
        self.close_parked(now, false);
        self.defer(Downstream::Findings);
    }

    /// The key log so far (its statistics: lines read, bad lines).
    pub fn keylog(&self) -> &KeyLog {
        &self.keylog
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
        let packets = self.stats.packets;
        self.defer(Downstream::CaptureDrops {
            dropped,
            received,
            packets,
            ts,
        });
        self.defer(Downstream::Findings);
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

    /// Waits for the module files being hashed, so that the events so far are all that the
    /// packets so far produce: a replay that pauses on what each frame produced (the TUI's
    /// training mode, stepping) calls it after each frame. Nothing else needs it: results come
    /// in order anyway, and `finish` waits for them.
    pub fn settle(&mut self) {
        self.run_downstream(true);
    }

    /// Events produced since the last call.
    pub fn drain_events(&mut self) -> std::vec::Drain<'_, Event> {
        // What the workers finished since the last packet.
        self.run_downstream(false);
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
    /// The policy the analysis was configured with, for applying its severity overrides and
    /// ignores to the final report.
    pub fn policy(&self) -> &crate::policy::Policy {
        &self.cfg.policy
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
        self.close_parked(frame.ts, false);
    }

    /// End of input: flushes every flow and runs the end-of-capture rules.
    pub fn finish(&mut self) {
        let ts = self.stats.last.unwrap_or_default();
        let mut fe = std::mem::take(&mut self.flow_events);
        self.flows.finish(ts, &mut fe);
        self.on_flow_events(&mut fe);
        self.close_parked(ts, true);
        self.run_downstream(true);
        self.detector.finish();
        self.push_touched_findings();
    }

    /// A copy of the state so far, for a report written mid-run (the TUI's `w`).
    pub fn snapshot_outcome(&self) -> Outcome {
        let mut exchanges = self.exchanges.clone();
        exchanges.sort_by_key(|e| (e.start, e.id));
        let mut tls = self.tls_sessions.clone();
        tls.sort_by_key(|t| (t.start, t.flow));
        Outcome {
            exchanges,
            journeys: self.tracker.journeys().to_vec(),
            findings: self.detector.findings().to_vec(),
            tls,
            stats: self.stats.clone(),
            decode: self.decoder.stats().clone(),
            flow: self.flows.stats().clone(),
        }
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
                        Box::new(FlowCtx {
                            info,
                            // A flow of a process not asked for: its bytes are not parsed.
                            conn: if keep { Conn::Unknown } else { Conn::Opaque },
                            process,
                            tunnel: None,
                            ended_by_server: None,
                        }),
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
                        c.conn = pick_protocol(&c.info, dir, &data, &self.cfg, flow);
                    }
                    let keys = (!self.keylog.is_empty()).then_some(&self.keylog);
                    match &mut c.conn {
                        Conn::Http(h) => h.on_data(dir, ts, packet, &data, &mut he),
                        Conn::DnsTcp(d) => {
                            let mut msgs = Vec::new();
                            d.on_data(dir, &data, &mut msgs);
                            for m in &msgs {
                                self.on_dns(m);
                            }
                        }
                        Conn::Tls(sc) if sc.duplicate_of.is_none() => {
                            let random = sc.on_data(
                                keys,
                                dir,
                                ts,
                                packet,
                                &data,
                                &self.cfg.http,
                                &mut self.tls_events,
                                &mut he,
                            );
                            if let Some(r) = random {
                                self.on_client_random(flow, r);
                            }
                            self.on_http_events(&mut he, Layer::Tls);
                        }
                        Conn::Tls(_) | Conn::Unknown | Conn::Opaque => {}
                    }
                }
                FlowEvent::Gap { flow, dir, ts, len } => {
                    if let Some(c) = self.ctx.get_mut(&flow) {
                        match &mut c.conn {
                            Conn::Http(h) => h.on_gap(dir, ts, len, &mut he),
                            Conn::DnsTcp(d) => d.on_gap(dir),
                            Conn::Tls(sc) => {
                                sc.on_gap(dir, ts, len, &mut he);
                                self.on_http_events(&mut he, Layer::Tls);
                            }
                            Conn::Unknown | Conn::Opaque => {}
                        }
                        // The tunnel's bytes came through the HTTP/1 machine, which saw the
                        // gap; the TLS inside lost them too.
                        if let Some(sc) = self
                            .ctx
                            .get_mut(&flow)
                            .and_then(|c| c.tunnel.as_mut())
                            .and_then(|t| t.secure.as_mut())
                        {
                            let mut inner = std::mem::take(&mut self.inner_http_events);
                            sc.on_gap(dir, ts, len, &mut inner);
                            self.on_http_events(&mut inner, Layer::Tunnel);
                            self.inner_http_events = inner;
                        }
                    }
                }
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
                    self.defer(Downstream::Injection {
                        flow,
                        packet,
                        ts,
                        what,
                    });
                }
                FlowEvent::Closed {
                    flow,
                    ts,
                    reason,
                    answered,
                    last_seen,
                } => {
                    self.on_http_events(&mut he, Layer::Plain);
                    if let Some(a) = self
                        .ctx
                        .get(&flow)
                        .and_then(|c| failed_before_request(c, reason, answered, last_seen))
                    {
                        self.defer(Downstream::Attempt(Box::new(a)));
                    }
                    let waiting = self.cfg.wait_for_keys
                        && self.ctx.get(&flow).is_some_and(|c| c.waits_for_keys());
                    if waiting {
                        // Live: its secrets may be a moment behind; closed when they come
                        // (or after KEY_WAIT_AFTER_CLOSE, or at the end).
                        self.parked.push((flow, ts));
                    } else {
                        self.close_flow(flow, ts);
                    }
                }
            }
            self.on_http_events(&mut he, Layer::Plain);
        }
        self.http_events = he;
        self.defer(Downstream::Findings);
    }

    /// The flow ended: the last exchanges, then its TLS sessions are summarised.
    fn close_flow(&mut self, flow: FlowId, ts: Ts) {
        if let Some(mut c) = self.ctx.remove(&flow) {
            let mut he = Vec::new();
            let mut inner = std::mem::take(&mut self.inner_http_events);
            if let Conn::Http(h) = &mut c.conn {
                h.finish(ts, &mut he);
            }
            if let Some(sc) = c.tunnel.as_mut().and_then(|t| t.secure.as_mut()) {
                sc.retry_keys(
                    &self.keylog,
                    true,
                    &self.cfg.http,
                    &mut self.tls_events,
                    &mut inner,
                );
                sc.finish(ts, &mut inner);
            }
            let mut tls_inner = Vec::new();
            if let Conn::Tls(sc) = &mut c.conn {
                sc.retry_keys(
                    &self.keylog,
                    true,
                    &self.cfg.http,
                    &mut self.tls_events,
                    &mut tls_inner,
                );
                sc.finish(ts, &mut tls_inner);
            }
            // The exchanges still need the flow's context.
            let tls = match &c.conn {
                Conn::Tls(sc) if sc.duplicate_of.is_none() => Some((c.info.clone(), None)),
                _ => None,
            };
            let tunnel_tls = c.tunnel.as_ref().and_then(|t| {
                t.secure
                    .as_ref()
                    .filter(|sc| sc.duplicate_of.is_none())
                    .map(|_| {
                        let mut info = c.info.clone();
                        let via = info.server;
                        if let Some(o) = t.outbound {
                            info.server = o;
                        }
                        (info, Some(via))
                    })
            });
            self.ctx.insert(flow, c);
            self.on_http_events(&mut he, Layer::Plain);
            self.on_http_events(&mut tls_inner, Layer::Tls);
            self.on_http_events(&mut inner, Layer::Tunnel);
            self.inner_http_events = inner;
            if let Some(c) = self.ctx.remove(&flow) {
                if let (Some((info, via)), Conn::Tls(sc)) = (&tls, &c.conn) {
                    self.on_tls_end(info, &sc.tls, sc.cert_at, *via);
                }
                if let (Some((info, via)), Some(sc)) = (
                    &tunnel_tls,
                    c.tunnel.as_ref().and_then(|t| t.secure.as_ref()),
                ) {
                    self.on_tls_end(info, &sc.tls, sc.cert_at, *via);
                }
            }
            self.spills.remove(&flow);
        }
    }

    /// Live: closed flows whose TLS session still waits for its secrets are closed once the
    /// secrets came (`keys_came`), after KEY_WAIT_AFTER_CLOSE of capture time, or at the end
    /// (`all`).
    fn close_parked(&mut self, now: Ts, all: bool) {
        if self.parked.is_empty() {
            return;
        }
        let parked = std::mem::take(&mut self.parked);
        for (flow, closed_at) in parked {
            let still_waiting = self.ctx.get(&flow).is_some_and(|c| c.waits_for_keys());
            let expired = now.0.saturating_sub(closed_at.0) > KEY_WAIT_AFTER_CLOSE_NS;
            if all || expired || !still_waiting {
                self.close_flow(flow, closed_at);
            } else {
                self.parked.push((flow, closed_at));
            }
        }
        self.defer(Downstream::Findings);
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
        let Some(c) = self.ctx.get_mut(&flow) else {
            return;
        };
        c.ended_by_server.get_or_insert(dir == Dir::ToClient);
        match &mut c.conn {
            Conn::Http(h) => h.on_end(dir, ts, packet, he),
            Conn::Tls(sc) => {
                let mut inner = Vec::new();
                sc.on_end(dir, ts, packet, reset, &mut self.tls_events, &mut inner);
                self.on_http_events(&mut inner, Layer::Tls);
            }
            _ => {}
        }
        if let Some(sc) = self
            .ctx
            .get_mut(&flow)
            .and_then(|c| c.tunnel.as_mut())
            .and_then(|t| t.secure.as_mut())
        {
            let mut inner = std::mem::take(&mut self.inner_http_events);
            sc.on_end(dir, ts, packet, reset, &mut self.tls_events, &mut inner);
            self.on_http_events(&mut inner, Layer::Tunnel);
            self.inner_http_events = inner;
        }
    }

    /// A ClientHello went by on `flow`. The same client random on a second flow is the same
    /// session relayed (the two legs of a CONNECT tunnel, or a TCP relay): it is analysed
    /// once, on the first flow, and a tunnel learns where its outbound leg went.
    fn on_client_random(&mut self, flow: FlowId, random: Vec<u8>) {
        match self.tls_randoms.get(&random) {
            Some(&first) if first != flow => {
                let Some(server) = self.ctx.get(&flow).map(|c| c.info.server) else {
                    return;
                };
                if let Some(c) = self.ctx.get_mut(&flow) {
                    let sc = match &mut c.conn {
                        Conn::Tls(sc) => Some(sc),
                        _ => c.tunnel.as_mut().and_then(|t| t.secure.as_mut()),
                    };
                    if let Some(sc) = sc {
                        sc.duplicate_of = Some(first);
                        self.stats.tls_duplicates += 1;
                    }
                }
                if let Some(t) = self.ctx.get_mut(&first).and_then(|c| c.tunnel.as_mut()) {
                    t.outbound.get_or_insert(server);
                }
            }
            Some(_) => {}
            None => {
                self.tls_randoms.insert(random.clone(), flow);
                self.tls_random_order.push_back(random);
                if self.tls_random_order.len() > MAX_TLS_RANDOMS {
                    if let Some(old) = self.tls_random_order.pop_front() {
                        self.tls_randoms.remove(&old);
                    }
                }
            }
        }
    }

    /// Bytes inside an open CONNECT tunnel: TLS (decrypted with keys) or opaque.
    fn on_tunnel_data(&mut self, flow: FlowId, dir: Dir, ts: Ts, packet: u64, data: &[u8]) {
        let keys = (!self.keylog.is_empty()).then_some(&self.keylog);
        let Some(t) = self.ctx.get_mut(&flow).and_then(|c| c.tunnel.as_mut()) else {
            return;
        };
        if t.secure.is_none() && !t.opaque {
            if dir == Dir::ToServer && looks_like_tls_client(data).is_some() {
                t.secure = Some(Box::new(SecureConn::new(flow, self.cfg.wait_for_keys)));
            } else {
                t.opaque = true;
            }
        }
        let Some(sc) = t.secure.as_mut().filter(|sc| sc.duplicate_of.is_none()) else {
            return;
        };
        let mut inner = std::mem::take(&mut self.inner_http_events);
        let random = sc.on_data(
            keys,
            dir,
            ts,
            packet,
            data,
            &self.cfg.http,
            &mut self.tls_events,
            &mut inner,
        );
        if let Some(r) = random {
            self.on_client_random(flow, r);
        }
        self.on_http_events(&mut inner, Layer::Tunnel);
        self.inner_http_events = inner;
    }

    fn on_tls_end(
        &mut self,
        info: &FlowInfo,
        conn: &TlsConn,
        cert_at: Option<(Ts, u64)>,
        via: Option<SocketAddr>,
    ) {
        let mut record = summarize(info, conn.session(), cert_at, &self.cfg.tls);
        record.via = via.map(|v| v.to_string());
        if conn.session().decryption.active() {
            self.stats.tls_decrypted += 1;
        }
        self.defer(Downstream::Tls(Box::new(record)));
    }

    fn on_http_events(&mut self, he: &mut Vec<HttpEvent>, layer: Layer) {
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
                    let mut ex = self.exchange_record(&info, x, layer);
                    ex.process = process;
                    self.stats.exchanges += 1;
                    let work = match body {
                        Some((head, true)) => {
                            let body = Body::new(head, spill.unwrap_or_default());
                            match &self.pool {
                                // A zip's or .mod's operation is final here (only
                                // `Op::Other` takes one from a redirect chain), so whether
                                // it is hashed is too.
                                Some(pool)
                                    if matches!(ex.op, Op::Zip | Op::Toolchain | Op::Mod)
                                        && self.integrity.wants_digest(&ex) =>
                                {
                                    let memory = body.memory();
                                    self.hashing_memory += memory;
                                    let digest =
                                        pool.submit(ex.op, body, self.integrity.h1_limits());
                                    Work::Hashing { digest, memory }
                                }
                                _ => Work::Body(body),
                            }
                        }
                        _ => Work::None,
                    };
                    self.defer(Downstream::Exchange(Box::new(ex), work));
                }
                // The HTTP machine stays: it passes the tunnel's bytes on as TunnelData.
                HttpEvent::TunnelOpened {
                    flow, authority, ..
                } if layer == Layer::Plain => {
                    if let Some(c) = self.ctx.get_mut(&flow) {
                        c.tunnel = Some(Box::new(Tunnel {
                            authority,
                            secure: None,
                            opaque: false,
                            outbound: None,
                        }));
                    }
                }
                HttpEvent::TunnelData {
                    flow,
                    dir,
                    ts,
                    packet,
                    data,
                } if layer == Layer::Plain => self.on_tunnel_data(flow, dir, ts, packet, &data),
                // A tunnel inside a tunnel is not followed.
                HttpEvent::TunnelOpened { .. } | HttpEvent::TunnelData { .. } => {}
                HttpEvent::BodyOverflow { flow, data } => {
                    self.spills.entry(flow).or_default().write(&data);
                }
                HttpEvent::Anomaly { .. } => self.stats.http_anomalies += 1,
            }
        }
    }

    /// Queues work after the protocol layers and runs what is ready.
    fn defer(&mut self, d: Downstream) {
        // Two findings points in a row are one: nothing between them touched the detector.
        // (Every packet adds one; behind a zip being hashed they would fill the queue.)
        let repeated = matches!(
            (&d, self.downstream.back()),
            (Downstream::Findings, Some(Downstream::Findings))
        );
        if !repeated {
            self.downstream.push_back(d);
        }
        self.run_downstream(false);
    }

    /// Runs queued work in order while it is ready; with `all`, waits for every zip digest.
    /// Past the memory or queue bound it waits for the oldest, so the packet path cannot run
    /// away from the workers.
    fn run_downstream(&mut self, all: bool) {
        loop {
            let must_wait = all
                || self.hashing_memory > MAX_HASHING_MEMORY
                || self.downstream.len() > MAX_DOWNSTREAM;
            let Some(front) = self.downstream.front_mut() else {
                return;
            };
            if let Downstream::Exchange(_, Work::Hashing { digest, .. }) = front {
                if !must_wait && !digest.poll() {
                    return;
                }
            }
            let Some(d) = self.downstream.pop_front() else {
                return;
            };
            self.run(d);
        }
    }

    fn run(&mut self, d: Downstream) {
        match d {
            Downstream::Exchange(ex, work) => self.on_exchange(*ex, work),
            Downstream::Tls(record) => {
                let refused = record.accepted == Some(false)
                    || (!record.handshake_complete && record.accepted != Some(true));
                if refused && record.via.is_none() {
                    let detail = record
                        .alerts
                        .iter()
                        .find(|a| a.starts_with("client"))
                        .or(record.alerts.first())
                        .map(|a| format!("alert {a}"));
                    self.on_attempt(Attempt {
                        flow: record.flow,
                        client: record.client,
                        server: record.server,
                        server_name: record.sni.clone(),
                        start: record.start,
                        last: record.start,
                        packet: record.packet,
                        failure: AttemptFailure::TlsFailed,
                        tls: true,
                        process: self.flow_owners.get(&record.flow).cloned(),
                        detail,
                    });
                }
                self.detector.on_tls(&record);
                self.events.push(Event::Tls(record.clone()));
                if self.keep_exchanges || self.tls_sessions.len() < self.cfg.keep_tls_sessions {
                    self.tls_sessions.push(*record);
                }
                self.stats.tls_sessions += 1;
            }
            Downstream::Injection {
                flow,
                packet,
                ts,
                what,
            } => self.detector.on_injection(flow, packet, ts, what),
            Downstream::CaptureDrops {
                dropped,
                received,
                packets,
                ts,
            } => self
                .detector
                .on_capture_drops(dropped, received, packets, ts),
            Downstream::Attempt(a) => self.on_attempt(*a),
            Downstream::Findings => self.push_touched_findings(),
        }
    }

    /// A failed connection joins the journey of the request it preceded, now or when that
    /// request comes.
    fn on_attempt(&mut self, a: Attempt) {
        if let Some((ji, fb)) = self.tracker.on_failed_attempt(a) {
            self.detector.on_fallback(&fb);
            self.events.push(Event::Journey(ji));
        }
    }

    /// An exchange after the protocol layers: its journey, its integrity checks (with its
    /// zip's digest), the detector, the events.
    fn on_exchange(&mut self, mut ex: Exchange, work: Work) {
        let outcome = self.tracker.on_exchange(&mut ex);
        if let Some(ji) = outcome.journey {
            if let Some(p) = &ex.process {
                self.tracker.note_process(ji, p);
            }
        }
        let mut found = Vec::new();
        match work {
            Work::None => {}
            Work::Body(mut body) => {
                if let Some(mut reader) = body.reader() {
                    self.integrity
                        .on_exchange(&mut ex, Some(&mut reader), &mut found);
                }
            }
            Work::Hashing { digest, memory } => {
                self.hashing_memory = self.hashing_memory.saturating_sub(memory);
                let digest = digest.wait();
                self.integrity
                    .on_digested(&mut ex, digest, None, &mut found);
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

    fn exchange_record(&mut self, info: &FlowInfo, x: HttpExchange, layer: Layer) -> Exchange {
        let id = self.next_exchange;
        self.next_exchange += 1;
        let req = &x.request;
        let host = header(&req.headers, "host").map(str::to_string);
        let scheme = if layer == Layer::Plain {
            "http"
        } else {
            "https"
        };
        // Inside a tunnel the server is the tunnel's destination: the proxy's outbound
        // address when the capture shows that leg (else the proxy's own, with `via` saying
        // so), named by the CONNECT authority.
        let tunnel = (layer == Layer::Tunnel)
            .then(|| self.ctx.get(&x.flow).and_then(|c| c.tunnel.as_ref()))
            .flatten();
        let (server, via, tunnel_name) = match tunnel {
            Some(t) => (
                t.outbound.unwrap_or(info.server),
                Some(info.server.to_string()),
                Some(authority_host(&t.authority)),
            ),
            None => (info.server, None, None),
        };
        let is_connect = req.method.eq_ignore_ascii_case("CONNECT");
        let authority = host.clone().unwrap_or_else(|| info.server.to_string());
        let raw_url = request_url(scheme, &authority, &req.target, is_connect);
        // What an asterisk-form request is about (RFC 9112 3.3: the origin, empty path), to
        // classify it and resolve a Location against.
        let asked = (req.target == "*").then(|| format!("{scheme}://{authority}"));
        let (url, mut credential) = crate::redact::redact_url(&raw_url);
        for (name, source) in [
            ("authorization", "authorization"),
            ("proxy-authorization", "proxy-authorization"),
        ] {
            if let Some(v) = header(&req.headers, name) {
                // The header names the credential; the URL as sent stays for --show-secrets.
                let raw = credential.and_then(|c| c.raw_url);
                let mut c = crate::redact::parse_authorization(v, source);
                c.raw_url = raw;
                credential = Some(c);
                break;
            }
        }
        let class = if is_connect {
            gomod::classify("CONNECT", &format!("{scheme}://{url}"))
        } else {
            gomod::classify(&req.method, asked.as_deref().unwrap_or(&url))
        };
        let resp = x.response.as_ref();
        let location = resp.and_then(|r| header(&r.headers, "location")).map(|l| {
            let base = asked.as_deref().unwrap_or(&url);
            crate::redact::url(&gomod::path::resolve_location(base, l))
        });
        let end = resp.map_or(req.ts, |r| r.end_ts);
        Exchange {
            id,
            method: req.method.clone(),
            url,
            status: resp.map(|r| r.status),
            client: info.client,
            server,
            server_name: tunnel_name.or_else(|| self.names.get(&server.ip()).cloned()),
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
            via,
            complete: resp.is_some_and(|r| r.body.complete && !r.body.decode_error),
            h1: None,
            sha256: None,
            process: None,
            end,
            request_headers: if self.cfg.keep_headers {
                crate::redact::headers(&req.headers)
            } else {
                Vec::new()
            },
            response_headers: match resp {
                Some(r) if self.cfg.keep_headers => crate::redact::headers(&r.headers),
                _ => Vec::new(),
            },
            http_version: match req.version {
                crate::proto::http2::HTTP2_VERSION => "HTTP/2",
                0 => "HTTP/1.0",
                _ => "HTTP/1.1",
            },
        }
    }
}

/// An exchange's `url` from its request target (RFC 9112 3.2). Origin-form is joined to the
/// scheme and authority (the Host header, else the server's address); absolute-form is kept as
/// sent. So are authority-form (CONNECT `host:port`) and asterisk-form (`OPTIONS *`, 3.2.4),
/// which no URL can hold: 3.3 gives `*` the target URI `http://host` with an empty path, and
/// that reads as `/`, a resource, while `*` asks about the server itself.
fn request_url(scheme: &str, authority: &str, target: &str, is_connect: bool) -> String {
    if is_connect || target == "*" || target.contains("://") {
        target.to_string()
    } else {
        format!("{scheme}://{authority}{target}")
    }
}

/// The host of a CONNECT authority (`host:port`, `[v6]:port`).
fn authority_host(authority: &str) -> String {
    let host = match authority.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => authority,
    };
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_string()
}

/// A connection the client opened with a SYN that ended before any byte of a request: how it
/// failed, if it did (a connection that was answered and then idled out unused is not a
/// failure: clients keep spare connections).
fn failed_before_request(
    c: &FlowCtx,
    reason: CloseReason,
    answered: bool,
    last_seen: Ts,
) -> Option<Attempt> {
    if !c.info.saw_syn || !matches!(c.conn, Conn::Unknown) || c.ended_by_server == Some(false) {
        return None;
    }
    let failure = match (answered, reason) {
        (false, CloseReason::Reset) => AttemptFailure::Refused,
        (false, CloseReason::Idle | CloseReason::End) => AttemptFailure::NoAnswer,
        (true, CloseReason::Reset) => AttemptFailure::Reset,
        (true, CloseReason::Fin) => AttemptFailure::Closed,
        _ => return None,
    };
    Some(Attempt {
        flow: c.info.id,
        client: c.info.client,
        server: c.info.server,
        server_name: None,
        start: c.info.first_ts,
        last: last_seen,
        packet: c.info.first_packet,
        failure,
        tls: false,
        process: c.process.clone(),
        detail: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_target_forms_give_the_url() {
        let url = |target: &str, connect: bool| request_url("http", "h:8080", target, connect);
        // RFC 9112 3.2.1 origin-form, 3.2.2 absolute-form, 3.2.3 authority-form.
        assert_eq!(url("/m/@v/list?x=1", false), "http://h:8080/m/@v/list?x=1");
        assert_eq!(
            url("http://p.example/m/@v/list", false),
            "http://p.example/m/@v/list"
        );
        assert_eq!(url("proxy.golang.org:443", true), "proxy.golang.org:443");
        // 3.2.4 asterisk-form: `*` kept, not glued to the host (it once read `http://h:8080*`).
        assert_eq!(url("*", false), "*");
        assert_eq!(request_url("https", "h", "*", false), "*");
        // Only a lone `*` is asterisk-form; an empty target (`OPTIONS  HTTP/1.1`) is the origin.
        assert_eq!(url("*x", false), "http://h:8080*x");
        assert_eq!(url("", false), "http://h:8080");
    }
}
