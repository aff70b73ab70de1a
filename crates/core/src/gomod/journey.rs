//! Module journeys: for each module@version, every attempt of every operation in order, with
//! fallbacks (an error from one GOPROXY entry, then the same operation on the next) and
//! redirects (3xx Location, then the request to it) linked, and hops a server made upstream
//! while answering nested under the hop they served.
//!
//! Go's list rules (cmd/go/internal/modfetch/proxy.go): after an entry followed by `,` the
//! next one is tried only on 404 or 410; after `|`, on any error, a failed connection
//! included. A connection that failed before any request (refused, reset, a failed TLS
//! handshake, no answer) carries no module path, so it joins the journey of the request the
//! same client made next to another server: inferred from order, process and time, and from
//! the GOPROXY list when the Go environment is known.

use super::classify::Op;
use super::goenv::{host_only, port_of, ProxyEntry};
use super::path::{resolve_location, split_url};
use super::Exchange;
use crate::time::Ts;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};

/// How a hop follows an earlier one of the same journey.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum HopLink {
    /// The earlier hop (`from`, an index into the journey's hops) failed and the go command
    /// went on to the next GOPROXY entry. `cause`: the status (`404`, `410`, `500`, ...),
    /// `no-response`, or how the connection failed (`refused`, `reset`, `closed`,
    /// `tls-failed`, `no-answer`).
    Fallback { from: usize, cause: String },
    /// The earlier hop answered a redirect to this URL.
    Redirect { from: usize },
}

/// How a connection failed before any request was sent on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttemptFailure {
    /// The server answered the SYN with a RST: nothing listens there.
    Refused,
    /// Connected, then reset before a request.
    Reset,
    /// Connected, then closed (FIN) before a request.
    Closed,
    /// The TLS handshake did not complete, or the client refused the certificate.
    TlsFailed,
    /// No answer to the SYN until the capture or the flow timed out.
    NoAnswer,
}

impl AttemptFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptFailure::Refused => "refused",
            AttemptFailure::Reset => "reset",
            AttemptFailure::Closed => "closed",
            AttemptFailure::TlsFailed => "tls-failed",
            AttemptFailure::NoAnswer => "no-answer",
        }
    }

    /// For messages: "the connection to X was refused".
    pub fn describe(self) -> &'static str {
        match self {
            AttemptFailure::Refused => "was refused",
            AttemptFailure::Reset => "was reset before any request",
            AttemptFailure::Closed => "was closed before any request",
            AttemptFailure::TlsFailed => "failed its TLS handshake",
            AttemptFailure::NoAnswer => "got no answer",
        }
    }
}

/// A connection the client opened towards a server that failed before any request (the
/// pipeline's view of it; the tracker pairs it with the request that followed).
#[derive(Clone, Debug)]
pub struct Attempt {
    pub flow: u64,
    pub client: SocketAddr,
    pub server: SocketAddr,
    /// The server's name, when the capture tells it (TLS SNI, DNS).
    pub server_name: Option<String>,
    pub start: Ts,
    /// The flow's last packet.
    pub last: Ts,
    /// The flow's first packet number.
    pub packet: u64,
    pub failure: AttemptFailure,
    /// A TLS ClientHello was seen: the entry was https.
    pub tls: bool,
    pub process: Option<String>,
    /// What the capture says beyond the kind, e.g. the TLS alert.
    pub detail: Option<String>,
}

/// The failed connection a hop stands for. Its op, module and URL are the go command's next
/// request's (inferred); with the Go environment the URL is the GOPROXY entry's.
#[derive(Clone, Debug, Serialize)]
pub struct FailedHop {
    pub failure: AttemptFailure,
    pub flow: u64,
    pub detail: Option<String>,
    /// Always true: the pairing is inferred, never seen.
    pub inferred: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Hop {
    /// The exchange; null for a connection that failed before any request.
    pub exchange: Option<u64>,
    pub op: Op,
    pub url: String,
    #[serde(serialize_with = "super::ser_addr")]
    pub server: std::net::SocketAddr,
    pub status: Option<u16>,
    pub scheme: String,
    pub via: Option<String>,
    pub after: Option<HopLink>,
    /// Requests the server made itself, for this module, while answering this hop.
    pub upstream: Vec<Hop>,
    /// Set when this hop is a connection that failed before any request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<FailedHop>,
    #[serde(skip)]
    pub base: String,
    #[serde(skip)]
    start: Ts,
    #[serde(skip)]
    end: Ts,
    #[serde(skip)]
    client_ip: IpAddr,
}

impl Hop {
    /// When its request (or its failed connection) started.
    pub fn start(&self) -> Ts {
        self.start
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Journey {
    pub module: String,
    pub version: Option<String>,
    pub journey: Vec<Hop>,
    /// h1: hash of the module zip (integrity checking, a later stage).
    pub h1: Option<String>,
    pub mod_h1: Option<String>,
    /// The local processes whose connections made this journey's requests (live capture on
    /// Linux), comma-separated in order of first appearance, e.g. `go`; null when unknown.
    pub process: Option<String>,
}

/// A redirect chain: the exchanges it went through and the URLs they asked for.
#[derive(Clone, Debug)]
pub struct Chain {
    pub exchanges: Vec<u64>,
    pub urls: Vec<String>,
    /// Responses in the chain that were redirects.
    pub redirects: u32,
    /// Set once a Location pointed back at a URL the chain had already asked for.
    pub revisits: bool,
    pub from_https_to_http: Vec<(u64, String)>,
    pub op: Op,
    pub module: Option<String>,
    pub version: Option<String>,
}

impl Chain {
    /// Distinct GOPROXY-style bases (scheme://authority) the chain bounced between.
    pub fn origins(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for u in &self.urls {
            if let Some(p) = split_url(u) {
                let o = format!("{}://{}", p.scheme, p.authority);
                if !v.contains(&o) {
                    v.push(o);
                }
            }
        }
        v
    }
}

/// What a fallback came after.
#[derive(Clone, Debug, PartialEq)]
pub enum FallbackFrom {
    /// An exchange that answered an error (or nothing).
    Exchange {
        id: u64,
        base: String,
        status: Option<u16>,
    },
    /// A connection that failed before any request.
    Failed {
        flow: u64,
        packet: u64,
        time: Ts,
        /// The entry's URL when the Go environment names it, else the server's address.
        target: String,
        failure: AttemptFailure,
    },
}

/// The go command went on to the next GOPROXY entry: the request on that entry and what
/// failed before it.
#[derive(Clone, Debug, PartialEq)]
pub struct Fallback {
    pub module: Option<String>,
    pub version: Option<String>,
    pub op: Op,
    pub exchange: u64,
    pub base: String,
    pub flow: u64,
    pub packet: u64,
    pub time: Ts,
    pub from: FallbackFrom,
    /// The GOPROXY list (from the Go environment) has `|` between the two entries: Some(true);
    /// `,`: Some(false); unknown: None.
    pub pipe: Option<bool>,
}

impl Fallback {
    /// The fallback whose request is `ex`, in the journey of `version` (a go-get discovery
    /// has no version of its own).
    fn to(
        ex: &Exchange,
        version: Option<String>,
        from: FallbackFrom,
        pipe: Option<bool>,
    ) -> Fallback {
        Fallback {
            module: ex.module.clone(),
            version,
            op: ex.op,
            exchange: ex.id,
            base: ex.base.clone(),
            flow: ex.flow,
            packet: ex.packet,
            time: ex.start,
            from,
            pipe,
        }
    }

    /// 404 and 410 are the only errors after which `,` goes on; anything else proves `|`.
    pub fn after_not_found(&self) -> bool {
        matches!(
            self.from,
            FallbackFrom::Exchange {
                status: Some(404 | 410),
                ..
            }
        )
    }
}

/// What one exchange changed, for the detectors.
#[derive(Clone, Debug, Default)]
pub struct TrackOutcome {
    /// Index of the journey the exchange joined.
    pub journey: Option<usize>,
    /// Set when this exchange is a fallback.
    pub fallback: Option<Fallback>,
    /// Index of the redirect chain this exchange belongs to.
    pub chain: Option<usize>,
}

/// Bound on redirect targets waiting for their request (a redirect nobody followed is dropped
/// oldest-first so a hostile capture cannot grow it).
const MAX_PENDING_REDIRECTS: usize = 4096;
/// Bound on failed connections waiting for the request that followed them (oldest forgotten
/// first).
const MAX_PENDING_FAILURES: usize = 1024;
/// Recent hops a late-reported failure may still precede. Every such failure scans them, and
/// a SYN flood idles out as a failure per SYN: kept small.
const MAX_RECENT_HOPS: usize = 64;
/// A failed connection and the next request are one walk of the list only this close in
/// time: a refusal is followed within milliseconds; an unanswered SYN after the go command's
/// dial timeout (30 s).
const FALLBACK_WINDOW_NS: i64 = 60_000_000_000;

#[derive(Default)]
pub struct Tracker {
    journeys: Vec<Journey>,
    by_key: HashMap<(String, Option<String>), usize>,
    /// module path -> its journeys (any version), for `direct` after proxies.
    by_module: HashMap<String, Vec<usize>>,
    chains: Vec<Chain>,
    /// (client ip, absolute URL) -> chain index, waiting for the follow-up request.
    pending: HashMap<(std::net::IpAddr, String), usize>,
    pending_order: VecDeque<(std::net::IpAddr, String)>,
    /// exchange id -> (journey, hop index), for linking redirects within a journey.
    hop_of: HashMap<u64, (usize, usize)>,
    /// The GOPROXY list, when the Go environment is known; empty otherwise.
    goproxy: Vec<ProxyEntry>,
    /// Failed connections not yet paired with the request that followed them.
    failed: VecDeque<Attempt>,
    /// Recent proxy hops with no link before them, with their flow and first packet: a
    /// failure reported after its follower completed (an unanswered SYN closes late) still
    /// finds it.
    recent: VecDeque<(usize, usize, u64, u64)>,
}

impl Tracker {
    pub fn new() -> Tracker {
        Tracker::default()
    }

    /// The GOPROXY list the go command was given (`--go-env`): pairing a failed connection
    /// then needs it to be an entry before the next request's, with `|` between them.
    pub fn set_goproxy(&mut self, list: Vec<ProxyEntry>) {
        self.goproxy = list;
    }

    /// The entry of the list a base URL is (scheme, authority and path), if any.
    fn entry_of_base(&self, base: &str) -> Option<usize> {
        let norm = |u: &str| u.trim_end_matches('/').to_ascii_lowercase();
        let b = norm(base);
        self.goproxy.iter().position(|e| norm(&e.url) == b)
    }

    /// The entry of the list a failed connection went to: the host an IP literal of the
    /// server's address or its name, and the port.
    fn entry_of_attempt(&self, a: &Attempt) -> Option<usize> {
        self.goproxy.iter().position(|e| {
            let Some(u) = split_url(&e.url) else {
                return false;
            };
            let default = if u.scheme.eq_ignore_ascii_case("http") {
                80
            } else {
                443
            };
            if port_of(u.authority).unwrap_or(default) != a.server.port() {
                return false;
            }
            let host = host_only(u.authority);
            match host.parse::<IpAddr>() {
                Ok(ip) => ip == a.server.ip(),
                Err(_) => a
                    .server_name
                    .as_deref()
                    .is_none_or(|n| n.eq_ignore_ascii_case(&host)),
            }
        })
    }

    /// Whether the request to `base` can be the go command's next step after attempt `a`:
    /// without the list, any other server; with it, a later entry with only `|` between.
    /// Returns the list's verdict on the separator (None without the list).
    fn follows(&self, a: &Attempt, base: &str) -> Result<Option<bool>, ()> {
        if self.goproxy.is_empty() {
            return Ok(None);
        }
        match (self.entry_of_attempt(a), self.entry_of_base(base)) {
            (Some(f), Some(b)) if f < b && self.only_pipes(f, b) => Ok(Some(true)),
            _ => Err(()),
        }
    }

    /// Entries `from..to` of the list are each followed by `|`: the walk goes on after any
    /// error there.
    fn only_pipes(&self, from: usize, to: usize) -> bool {
        self.goproxy[from..to]
            .iter()
            .all(|e| e.fallback_on_any_error)
    }

    fn fits(
        a: &Attempt,
        client: IpAddr,
        server: SocketAddr,
        start: Ts,
        process: Option<&str>,
    ) -> bool {
        same_host(a.client.ip(), client)
            && a.server != server
            && a.last <= start
            && start.0 - a.last.0 <= FALLBACK_WINDOW_NS
            && match (a.process.as_deref(), process) {
                (Some(x), Some(y)) => x == y,
                _ => true,
            }
    }

    /// What a failed hop's URL is: the GOPROXY entry, else the scheme TLS implies and the
    /// address.
    fn attempt_url(&self, a: &Attempt) -> (String, String) {
        if let Some(e) = self.entry_of_attempt(a).map(|i| &self.goproxy[i]) {
            let scheme = e.url.split("://").next().unwrap_or("").to_ascii_lowercase();
            return (e.url.trim_end_matches('/').to_string(), scheme);
        }
        if a.tls {
            (format!("https://{}", a.server), "https".into())
        } else {
            // A refused connection says nothing of the scheme it would have spoken.
            (a.server.to_string(), String::new())
        }
    }

    fn failed_hop(&self, a: &Attempt, op: Op) -> Hop {
        let (url, scheme) = self.attempt_url(a);
        Hop {
            exchange: None,
            op,
            url,
            server: a.server,
            status: None,
            scheme,
            via: None,
            after: None,
            upstream: Vec::new(),
            failed: Some(FailedHop {
                failure: a.failure,
                flow: a.flow,
                detail: a.detail.clone(),
                inferred: true,
            }),
            base: String::new(),
            start: a.start,
            end: a.last,
            client_ip: a.client.ip(),
        }
    }

    fn fallback_from_attempt(&self, a: &Attempt) -> FallbackFrom {
        FallbackFrom::Failed {
            flow: a.flow,
            packet: a.packet,
            time: a.start,
            target: self.attempt_url(a).0,
            failure: a.failure,
        }
    }

    /// A connection that failed before any request. It joins the journey of the request the
    /// same client made next to another server: now, when that request already completed
    /// (returned: the fallback, for the detector), or when it comes.
    pub fn on_failed_attempt(&mut self, a: Attempt) -> Option<(usize, Fallback)> {
        // Already filed: the earliest recent hop that can follow it.
        let mut best: Option<(usize, Option<bool>)> = None;
        for (k, &(ji, hi, _, _)) in self.recent.iter().enumerate() {
            let h = &self.journeys[ji].journey[hi];
            if h.after.is_some() || !Self::fits(&a, h.client_ip, h.server, h.start, None) {
                continue;
            }
            let Ok(pipe) = self.follows(&a, &h.base) else {
                continue;
            };
            if best.is_none_or(|(b, _)| {
                let (bj, bh, _, _) = self.recent[b];
                self.journeys[bj].journey[bh].start > h.start
            }) {
                best = Some((k, pipe));
            }
        }
        let Some((k, pipe)) = best else {
            self.failed.push_back(a);
            while self.failed.len() > MAX_PENDING_FAILURES {
                self.failed.pop_front();
            }
            return None;
        };
        let (ji, hi, flow, packet) = self.recent.remove(k)?;
        let hop = self.failed_hop(&a, self.journeys[ji].journey[hi].op);
        let from = self.fallback_from_attempt(&a);
        let journey = &mut self.journeys[ji];
        journey.journey.push(hop);
        let fi = journey.journey.len() - 1;
        let h = &mut journey.journey[hi];
        h.after = Some(HopLink::Fallback {
            from: fi,
            cause: a.failure.as_str().into(),
        });
        Some((
            ji,
            Fallback {
                module: Some(journey.module.clone()),
                version: journey.version.clone(),
                op: h.op,
                exchange: h.exchange.unwrap_or(0),
                base: h.base.clone(),
                flow,
                packet,
                time: h.start,
                from,
                pipe,
            },
        ))
    }

    /// Annotates `ex` (redirect inheritance) and files it into its journey.
    pub fn on_exchange(&mut self, ex: &mut Exchange) -> TrackOutcome {
        let mut out = TrackOutcome::default();
        let key = (ex.client.ip(), ex.url.clone());
        if let Some(ci) = self.pending.remove(&key) {
            let chain = &mut self.chains[ci];
            ex.redirect_from = chain.exchanges.last().copied();
            if ex.op == Op::Other {
                // A redirect to a URL that is not proxy-shaped (e.g. a blob store) still
                // carries the operation that started the chain.
                ex.op = chain.op;
                ex.module.clone_from(&chain.module);
                ex.version.clone_from(&chain.version);
            }
            chain.exchanges.push(ex.id);
            chain.urls.push(ex.url.clone());
            out.chain = Some(ci);
        }
        if let (Some(status), Some(loc)) = (ex.status, ex.location.as_deref()) {
            if (300..400).contains(&status) && status != 304 {
                let target = resolve_location(&ex.url, loc);
                let ci = match out.chain {
                    Some(ci) => ci,
                    None => {
                        self.chains.push(Chain {
                            exchanges: vec![ex.id],
                            urls: vec![ex.url.clone()],
                            redirects: 0,
                            revisits: false,
                            from_https_to_http: Vec::new(),
                            op: ex.op,
                            module: ex.module.clone(),
                            version: ex.version.clone(),
                        });
                        self.chains.len() - 1
                    }
                };
                let chain = &mut self.chains[ci];
                chain.redirects += 1;
                if chain.urls.contains(&target) {
                    chain.revisits = true;
                }
                if ex.url.starts_with("https://") && target.starts_with("http://") {
                    chain.from_https_to_http.push((ex.id, target.clone()));
                }
                out.chain = Some(ci);
                let k = (ex.client.ip(), target);
                if self.pending.insert(k.clone(), ci).is_none() {
                    self.pending_order.push_back(k);
                }
                while self.pending_order.len() > MAX_PENDING_REDIRECTS {
                    if let Some(old) = self.pending_order.pop_front() {
                        self.pending.remove(&old);
                    }
                }
            }
        }
        if let Some(module) = ex.module.clone() {
            if ex.op.is_module_fetch() || ex.op == Op::Lookup {
                out.journey = Some(self.add_hop(module, ex, &mut out));
            }
        }
        out
    }

    /// `direct` after proxies: a go-get discovery for a module whose journey at some version
    /// ends in a failed proxy attempt of the same client is the go command's next step in
    /// that journey (the journey, the failed hop and its cause). Alone (GOPROXY=direct), a
    /// discovery keeps a journey of its own.
    fn direct_after(&self, module: &str, ex: &Exchange) -> Option<(usize, usize, String)> {
        let js = self.by_module.get(module)?;
        for &ji in js.iter().rev() {
            let j = &self.journeys[ji];
            if j.version.is_none() {
                continue;
            }
            let Some((hi, h)) = j
                .journey
                .iter()
                .enumerate()
                .rev()
                .find(|(_, h)| same_host(h.client_ip, ex.client.ip()) && h.op.is_proxy())
            else {
                continue;
            };
            let cause = match (&h.failed, h.status) {
                (Some(f), _) => f.failure.as_str().to_string(),
                (None, Some(s)) if s >= 400 => s.to_string(),
                (None, None) => "no-response".to_string(),
                _ => continue,
            };
            if h.end <= ex.start && ex.start.0 - h.end.0 <= FALLBACK_WINDOW_NS {
                return Some((ji, hi, cause));
            }
        }
        None
    }

    fn add_hop(&mut self, module: String, ex: &Exchange, out: &mut TrackOutcome) -> usize {
        if ex.op == Op::GoGet && ex.version.is_none() {
            if let Some((ji, hi, cause)) = self.direct_after(&module, ex) {
                let h = &self.journeys[ji].journey[hi];
                let from = match (&h.failed, h.exchange) {
                    (Some(f), _) => FallbackFrom::Failed {
                        flow: f.flow,
                        packet: ex.packet,
                        time: h.start,
                        target: h.url.clone(),
                        failure: f.failure,
                    },
                    (None, id) => FallbackFrom::Exchange {
                        id: id.unwrap_or(0),
                        base: h.base.clone(),
                        status: h.status,
                    },
                };
                let version = self.journeys[ji].version.clone();
                out.fallback = Some(Fallback::to(ex, version, from, None));
                return self.push_hop(ji, ex, Some(HopLink::Fallback { from: hi, cause }), out);
            }
        }
        let key = (module, ex.version.clone());
        let ji = match self.by_key.get(&key) {
            Some(&ji) => ji,
            None => {
                self.by_module
                    .entry(key.0.clone())
                    .or_default()
                    .push(self.journeys.len());
                self.journeys.push(Journey {
                    module: key.0.clone(),
                    version: key.1.clone(),
                    journey: Vec::new(),
                    h1: None,
                    mod_h1: None,
                    process: None,
                });
                self.by_key.insert(key, self.journeys.len() - 1);
                self.journeys.len() - 1
            }
        };
        self.push_hop(ji, ex, None, out)
    }

    fn push_hop(
        &mut self,
        ji: usize,
        ex: &Exchange,
        preset: Option<HopLink>,
        out: &mut TrackOutcome,
    ) -> usize {
        let mut after = preset;
        if let Some((fj, fh)) = ex.redirect_from.and_then(|r| self.hop_of.get(&r).copied()) {
            if fj == ji && after.is_none() {
                after = Some(HopLink::Redirect { from: fh });
            }
        }
        if after.is_none() && ex.op.is_proxy() {
            // GOPROXY list walk: the latest attempt of this operation failed on another base
            // (404/410 for `,`; any error for `|`).
            let prev = self.journeys[ji]
                .journey
                .iter()
                .enumerate()
                .rev()
                .find(|(_, h)| h.op == ex.op && h.failed.is_none())
                .map(|(i, h)| (i, h.clone()));
            if let Some((i, h)) = prev {
                let failed = !matches!(h.status, Some(s) if s < 400);
                if failed
                    && h.base != ex.base
                    && same_host(h.client_ip, ex.client.ip())
                    && h.end <= ex.start
                {
                    let cause = h.status.map_or("no-response".into(), |s| s.to_string());
                    after = Some(HopLink::Fallback { from: i, cause });
                    let pipe = match (self.entry_of_base(&h.base), self.entry_of_base(&ex.base)) {
                        (Some(f), Some(b)) if f < b => Some(self.only_pipes(f, b)),
                        _ => None,
                    };
                    let from = FallbackFrom::Exchange {
                        id: h.exchange.unwrap_or(0),
                        base: h.base.clone(),
                        status: h.status,
                    };
                    out.fallback = Some(Fallback::to(ex, ex.version.clone(), from, pipe));
                }
            }
        }
        if after.is_none() && ex.op.is_proxy() {
            // A connection of this client that failed just before, to another server.
            let process = ex.process.as_deref();
            let found = self.failed.iter().position(|a| {
                Self::fits(a, ex.client.ip(), ex.server, ex.start, process)
                    && self.follows(a, &ex.base).is_ok()
            });
            if let Some(a) = found.and_then(|i| self.failed.remove(i)) {
                let pipe = self.follows(&a, &ex.base).ok().flatten();
                let hop = self.failed_hop(&a, ex.op);
                let from = self.fallback_from_attempt(&a);
                let journey = &mut self.journeys[ji];
                journey.journey.push(hop);
                after = Some(HopLink::Fallback {
                    from: journey.journey.len() - 1,
                    cause: a.failure.as_str().into(),
                });
                out.fallback = Some(Fallback::to(ex, ex.version.clone(), from, pipe));
            }
        }
        let journey = &mut self.journeys[ji];
        journey.journey.push(Hop {
            exchange: Some(ex.id),
            op: ex.op,
            url: ex.url.clone(),
            server: ex.server,
            status: ex.status,
            scheme: ex.scheme.clone(),
            via: ex.via.clone(),
            after,
            upstream: Vec::new(),
            failed: None,
            base: ex.base.clone(),
            start: ex.start,
            end: ex.end,
            client_ip: ex.client.ip(),
        });
        let hi = journey.journey.len() - 1;
        let unlinked = journey.journey[hi].after.is_none();
        self.hop_of.insert(ex.id, (ji, hi));
        if unlinked && ex.op.is_proxy() {
            self.recent.push_back((ji, hi, ex.flow, ex.packet));
            while self.recent.len() > MAX_RECENT_HOPS {
                self.recent.pop_front();
            }
        }
        ji
    }

    /// Records the h1 an exchange's body hashed to on its module's journey (the first one
    /// seen; a different one from another server is a finding, not an overwrite).
    pub fn note_hashes(&mut self, ex: &Exchange) {
        let (Some(h1), Some(m)) = (&ex.h1, &ex.module) else {
            return;
        };
        let Some(&ji) = self.by_key.get(&(m.clone(), ex.version.clone())) else {
            return;
        };
        let j = &mut self.journeys[ji];
        match ex.op {
            Op::Zip | Op::Toolchain => {
                j.h1.get_or_insert_with(|| h1.clone());
            }
            Op::Mod => {
                j.mod_h1.get_or_insert_with(|| h1.clone());
            }
            _ => {}
        }
    }

    /// Adds `process` to journey `ji`'s processes (live capture: the owner of an exchange's
    /// connection); a name already listed is not repeated.
    pub fn note_process(&mut self, ji: usize, process: &str) {
        let Some(j) = self.journeys.get_mut(ji) else {
            return;
        };
        match &mut j.process {
            None => j.process = Some(process.to_string()),
            Some(p) => {
                if !p.split(", ").any(|n| n == process) {
                    p.push_str(", ");
                    p.push_str(process);
                }
            }
        }
    }

    pub fn journeys(&self) -> &[Journey] {
        &self.journeys
    }

    pub fn chain(&self, i: usize) -> &Chain {
        &self.chains[i]
    }

    pub fn chains(&self) -> &[Chain] {
        &self.chains
    }

    /// Final journeys: hops that a server made while answering another hop of the same
    /// operation (a mirror asking its upstream) are moved under that hop as `upstream`.
    /// Hops stay in time order; link indices are renumbered.
    pub fn into_journeys(self) -> Vec<Journey> {
        let mut journeys = self.journeys;
        for j in &mut journeys {
            nest_upstream(j);
        }
        journeys
    }
}

/// Two client addresses of one walk of the list. A loopback address is the capturing host's
/// own: its connection to a local proxy comes from 127.0.0.1 while the same go command reaches
/// the next entry from its interface's address.
fn same_host(a: IpAddr, b: IpAddr) -> bool {
    a == b || a.is_loopback() || b.is_loopback()
}

/// Hops are filed as their exchanges complete; reports show them in the order they started.
fn sort_by_start(hops: Vec<Hop>) -> Vec<Hop> {
    let mut order: Vec<usize> = (0..hops.len()).collect();
    order.sort_by_key(|&i| (hops[i].start, hops[i].exchange));
    let mut new_pos = vec![0; hops.len()];
    for (pos, &i) in order.iter().enumerate() {
        new_pos[i] = pos;
    }
    let mut slots: Vec<Option<Hop>> = hops.into_iter().map(Some).collect();
    order
        .iter()
        .filter_map(|&i| slots[i].take())
        .map(|mut h| {
            h.after = match h.after {
                Some(HopLink::Fallback { from, cause }) => Some(HopLink::Fallback {
                    from: new_pos[from],
                    cause,
                }),
                Some(HopLink::Redirect { from }) => Some(HopLink::Redirect {
                    from: new_pos[from],
                }),
                None => None,
            };
            h
        })
        .collect()
}

/// A hop B is upstream of hop A when A's server (by IP) is B's client, B asked another server
/// for the same operation, and B happened within A's time span.
fn nest_upstream(j: &mut Journey) {
    let hops = sort_by_start(std::mem::take(&mut j.journey));
    let n = hops.len();
    let mut parent: Vec<Option<usize>> = vec![None; n];
    for b in 0..n {
        if hops[b].after.is_some() {
            continue;
        }
        // Innermost enclosing candidate: the latest-starting one.
        let mut best: Option<usize> = None;
        for a in 0..n {
            let (ha, hb) = (&hops[a], &hops[b]);
            if a != b
                && ha.op == hb.op
                && ha.server.ip() == hb.client_ip
                && ha.server != hb.server
                && ha.start <= hb.start
                && hb.end <= ha.end
                && best.is_none_or(|x| hops[x].start < ha.start)
            {
                best = Some(a);
            }
        }
        parent[b] = best;
    }
    if parent.iter().all(Option::is_none) {
        j.journey = hops;
        return;
    }
    // Renumber: top-level hops keep their order; link indices point at top-level positions.
    let mut new_index: Vec<Option<usize>> = vec![None; n];
    let mut next = 0;
    for i in 0..n {
        if parent[i].is_none() {
            new_index[i] = Some(next);
            next += 1;
        }
    }
    let mut slots: Vec<Option<Hop>> = hops.into_iter().map(Some).collect();
    // Attach children deepest-first so grandchildren land inside their parents.
    let depth = |mut i: usize| {
        let mut d = 0;
        while let Some(p) = parent[i] {
            d += 1;
            i = p;
            if d > n {
                break;
            }
        }
        d
    };
    let mut order: Vec<usize> = (0..n).filter(|&i| parent[i].is_some()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse((depth(i), i)));
    let mut children: Vec<Vec<Hop>> = vec![Vec::new(); n];
    for i in order {
        if let Some(mut h) = slots[i].take() {
            let mut kids = std::mem::take(&mut children[i]);
            kids.reverse();
            h.upstream.extend(kids);
            children[parent[i].unwrap_or(i)].push(h);
        }
    }
    for (i, slot) in slots.into_iter().enumerate() {
        if let Some(mut h) = slot {
            let mut kids = std::mem::take(&mut children[i]);
            kids.reverse();
            h.upstream.extend(kids);
            h.after = match h.after {
                Some(HopLink::Fallback { from, cause }) => {
                    new_index[from].map(|f| HopLink::Fallback { from: f, cause })
                }
                Some(HopLink::Redirect { from }) => {
                    new_index[from].map(|f| HopLink::Redirect { from: f })
                }
                None => None,
            };
            j.journey.push(h);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::gomod::classify;
    use crate::time::Ts;

    /// A synthetic exchange as the pipeline would build it.
    pub(crate) fn ex(
        id: u64,
        client: &str,
        server: &str,
        url: &str,
        status: u16,
        start_ms: i64,
        end_ms: i64,
    ) -> Exchange {
        let c = classify("GET", url);
        Exchange {
            id,
            method: "GET".into(),
            url: url.into(),
            status: Some(status),
            client: client.parse().unwrap(),
            server: server.parse().unwrap(),
            server_name: None,
            host: None,
            scheme: url.split("://").next().unwrap().into(),
            op: c.op,
            module: c.module,
            version: c.version,
            bytes: 0,
            location: None,
            start: Ts(start_ms * 1_000_000),
            duration_ms: Some((end_ms - start_ms) as f64),
            flow: id,
            packet: id * 10,
            base: c.base,
            credential: None,
            redirect_from: None,
            via: None,
            complete: true,
            h1: None,
            sha256: None,
            process: None,
            end: Ts(end_ms * 1_000_000),
            request_headers: Vec::new(),
            response_headers: Vec::new(),
            http_version: "HTTP/1.1",
        }
    }

    #[test]
    fn fallback_410_then_200_is_linked() {
        let mut t = Tracker::new();
        let mut a = ex(
            1,
            "127.0.0.1:40000",
            "127.0.0.1:8082",
            "http://127.0.0.1:8082/example.test/%21util/@v/v0.2.0.info",
            410,
            0,
            1,
        );
        let mut b = ex(
            2,
            "127.0.0.1:40001",
            "127.0.0.1:8083",
            "http://127.0.0.1:8083/example.test/%21util/@v/v0.2.0.info",
            200,
            2,
            3,
        );
        assert_eq!(t.on_exchange(&mut a).fallback, None);
        let o = t.on_exchange(&mut b);
        let fb = o.fallback.expect("a fallback");
        assert!(fb.after_not_found());
        assert_eq!(
            fb.from,
            FallbackFrom::Exchange {
                id: 1,
                base: "http://127.0.0.1:8082".into(),
                status: Some(410)
            }
        );
        let j = t.into_journeys();
        assert_eq!(j.len(), 1);
        assert_eq!(j[0].module, "example.test/Util");
        assert_eq!(j[0].version.as_deref(), Some("v0.2.0"));
        assert_eq!(
            j[0].journey[1].after,
            Some(HopLink::Fallback {
                from: 0,
                cause: "410".into()
            })
        );
    }

    #[test]
    fn same_base_retry_is_not_a_fallback() {
        let mut t = Tracker::new();
        let mut a = ex(
            1,
            "127.0.0.1:40000",
            "127.0.0.1:8082",
            "https://h/example.test/x/@v/v1.0.0.mod",
            404,
            0,
            1,
        );
        let mut b = ex(
            2,
            "127.0.0.1:40000",
            "127.0.0.1:8082",
            "https://h/example.test/x/@v/v1.0.0.mod",
            404,
            2,
            3,
        );
        t.on_exchange(&mut a);
        assert_eq!(t.on_exchange(&mut b).fallback, None);
    }

    #[test]
    fn redirect_loop_revisits_and_counts() {
        let mut t = Tracker::new();
        let a_url = "http://127.0.0.1:8084/example.test/%21util/@v/v0.2.0.info";
        let b_url = "http://127.0.0.1:8085/example.test/%21util/@v/v0.2.0.info";
        let mut last_chain = None;
        for i in 0..10u64 {
            let (url, srv, loc) = if i % 2 == 0 {
                (a_url, "127.0.0.1:8084", b_url)
            } else {
                (b_url, "127.0.0.1:8085", a_url)
            };
            let mut e = ex(i + 1, "127.0.0.1:40000", srv, url, 302, i as i64, i as i64);
            e.location = Some(loc.into());
            let o = t.on_exchange(&mut e);
            if i > 0 {
                assert_eq!(
                    e.redirect_from,
                    Some(i),
                    "request {i} follows the redirect before it"
                );
            }
            last_chain = o.chain;
        }
        let c = t.chain(last_chain.unwrap());
        assert_eq!(c.redirects, 10);
        assert!(c.revisits);
        assert_eq!(c.origins().len(), 2);
        let j = t.into_journeys();
        assert_eq!(j.len(), 1);
        assert_eq!(j[0].journey.len(), 10);
        assert_eq!(j[0].journey[3].after, Some(HopLink::Redirect { from: 2 }));
    }

    #[test]
    fn redirect_to_blob_inherits_the_operation() {
        let mut t = Tracker::new();
        let mut a = ex(
            1,
            "10.0.0.1:40000",
            "10.0.0.2:80",
            "http://m.test/example.test/x/@v/v1.0.0.zip",
            302,
            0,
            1,
        );
        a.location = Some("/blobs/abc123".into());
        t.on_exchange(&mut a);
        let mut b = ex(
            2,
            "10.0.0.1:40001",
            "10.0.0.2:80",
            "http://m.test/blobs/abc123",
            200,
            2,
            3,
        );
        assert_eq!(b.op, Op::Other);
        let o = t.on_exchange(&mut b);
        assert_eq!(b.op, Op::Zip);
        assert_eq!(b.module.as_deref(), Some("example.test/x"));
        assert!(o.journey.is_some());
    }

    #[test]
    fn mirror_upstream_hops_nest_under_the_client_hop() {
        let mut t = Tracker::new();
        // client -> mirror (8086), spanning 0..10 ms; mirror -> upstream (8087) at 2..5 ms.
        let mut up = ex(
            1,
            "127.0.0.1:50000",
            "127.0.0.1:8087",
            "http://127.0.0.1:8087/example.test/%21util/@v/v0.2.0.zip",
            200,
            2,
            5,
        );
        let mut down = ex(
            2,
            "127.0.0.1:40000",
            "127.0.0.1:8086",
            "http://127.0.0.1:8086/example.test/%21util/@v/v0.2.0.zip",
            200,
            0,
            10,
        );
        // The upstream exchange completes first, so it is tracked first.
        t.on_exchange(&mut up);
        t.on_exchange(&mut down);
        let j = t.into_journeys();
        assert_eq!(j[0].journey.len(), 1, "{:#?}", j[0].journey);
        assert_eq!(j[0].journey[0].exchange, Some(2));
        assert_eq!(j[0].journey[0].upstream.len(), 1);
        assert_eq!(j[0].journey[0].upstream[0].exchange, Some(1));
    }

    const A: &str = "http://127.0.0.1:8120/example.test/%21util/@v/v0.2.0.info";
    const B: &str = "http://127.0.0.1:8121/example.test/%21util/@v/v0.2.0.info";

    fn attempt(flow: u64, server: &str, failure: AttemptFailure, ms: i64) -> Attempt {
        Attempt {
            flow,
            client: "127.0.0.1:40000".parse().unwrap(),
            server: server.parse().unwrap(),
            server_name: None,
            start: Ts(ms * 1_000_000),
            last: Ts(ms * 1_000_000),
            packet: flow * 10,
            failure,
            tls: false,
            process: None,
            detail: None,
        }
    }

    fn list(text: &str) -> Vec<ProxyEntry> {
        crate::gomod::goenv::parse_goproxy(text)
    }

    #[test]
    fn fallback_after_500_proves_a_pipe() {
        let mut t = Tracker::new();
        let mut a = ex(1, "127.0.0.1:40000", "127.0.0.1:8120", A, 500, 0, 1);
        let mut b = ex(2, "127.0.0.1:40001", "127.0.0.1:8121", B, 200, 2, 3);
        t.on_exchange(&mut a);
        let fb = t
            .on_exchange(&mut b)
            .fallback
            .expect("a fallback after 500");
        assert!(!fb.after_not_found());
        assert_eq!(
            fb.pipe, None,
            "without the list the separator is inferred, not known"
        );
        let j = t.into_journeys();
        assert_eq!(
            j[0].journey[1].after,
            Some(HopLink::Fallback {
                from: 0,
                cause: "500".into()
            })
        );
    }

    #[test]
    fn the_list_says_which_separator_was_there() {
        let mut t = Tracker::new();
        t.set_goproxy(list("http://127.0.0.1:8120|http://127.0.0.1:8121"));
        let mut a = ex(1, "127.0.0.1:40000", "127.0.0.1:8120", A, 500, 0, 1);
        let mut b = ex(2, "127.0.0.1:40001", "127.0.0.1:8121", B, 200, 2, 3);
        t.on_exchange(&mut a);
        assert_eq!(t.on_exchange(&mut b).fallback.unwrap().pipe, Some(true));
        let mut t = Tracker::new();
        t.set_goproxy(list("http://127.0.0.1:8120,http://127.0.0.1:8121"));
        let mut a = ex(1, "127.0.0.1:40000", "127.0.0.1:8120", A, 404, 0, 1);
        let mut b = ex(2, "127.0.0.1:40001", "127.0.0.1:8121", B, 200, 2, 3);
        t.on_exchange(&mut a);
        assert_eq!(t.on_exchange(&mut b).fallback.unwrap().pipe, Some(false));
    }

    #[test]
    fn a_success_is_no_fallback_and_the_same_base_is_a_retry() {
        let mut t = Tracker::new();
        let mut a = ex(1, "127.0.0.1:40000", "127.0.0.1:8120", A, 200, 0, 1);
        let mut b = ex(2, "127.0.0.1:40001", "127.0.0.1:8121", B, 200, 2, 3);
        t.on_exchange(&mut a);
        assert_eq!(t.on_exchange(&mut b).fallback, None);
        let mut c = ex(3, "127.0.0.1:40002", "127.0.0.1:8121", B, 502, 4, 5);
        let mut d = ex(4, "127.0.0.1:40003", "127.0.0.1:8121", B, 200, 6, 7);
        t.on_exchange(&mut c);
        assert_eq!(t.on_exchange(&mut d).fallback, None);
    }

    #[test]
    fn a_refused_connection_becomes_the_attempt_before_the_next_request() {
        let mut t = Tracker::new();
        assert!(t
            .on_failed_attempt(attempt(1, "127.0.0.1:8120", AttemptFailure::Refused, 0))
            .is_none());
        let mut b = ex(2, "127.0.0.1:40001", "127.0.0.1:8121", B, 200, 1, 2);
        let fb = t
            .on_exchange(&mut b)
            .fallback
            .expect("fallback after refused");
        assert!(matches!(
            fb.from,
            FallbackFrom::Failed {
                failure: AttemptFailure::Refused,
                flow: 1,
                ..
            }
        ));
        let j = t.into_journeys();
        assert_eq!(j[0].journey.len(), 2);
        let failed = &j[0].journey[0];
        assert_eq!(failed.exchange, None);
        assert_eq!(failed.op, Op::Info, "the op of the request that followed");
        assert_eq!(
            failed.url, "127.0.0.1:8120",
            "no scheme is known without the list"
        );
        assert!(failed.failed.as_ref().unwrap().inferred);
        assert_eq!(
            j[0].journey[1].after,
            Some(HopLink::Fallback {
                from: 0,
                cause: "refused".into()
            })
        );
    }

    #[test]
    fn one_failure_pairs_with_one_request_in_order() {
        let mut t = Tracker::new();
        t.on_failed_attempt(attempt(1, "127.0.0.1:8120", AttemptFailure::Refused, 0));
        t.on_failed_attempt(attempt(2, "127.0.0.1:8120", AttemptFailure::Refused, 1));
        let mut b = ex(3, "127.0.0.1:40001", "127.0.0.1:8121", B, 200, 2, 3);
        let mut c = ex(
            4,
            "127.0.0.1:40002",
            "127.0.0.1:8121",
            "http://127.0.0.1:8121/example.test/%21util/@v/v0.2.0.mod",
            200,
            4,
            5,
        );
        let mut d = ex(
            5,
            "127.0.0.1:40003",
            "127.0.0.1:8121",
            "http://127.0.0.1:8121/example.test/%21util/@v/v0.2.0.zip",
            200,
            6,
            7,
        );
        let flow_of = |o: TrackOutcome| match o.fallback.map(|f| f.from) {
            Some(FallbackFrom::Failed { flow, .. }) => Some(flow),
            _ => None,
        };
        assert_eq!(flow_of(t.on_exchange(&mut b)), Some(1));
        assert_eq!(flow_of(t.on_exchange(&mut c)), Some(2));
        assert_eq!(flow_of(t.on_exchange(&mut d)), None, "no failure left");
    }

    #[test]
    fn failures_of_other_clients_or_long_ago_are_not_paired() {
        let mut t = Tracker::new();
        let mut other = attempt(1, "127.0.0.1:8120", AttemptFailure::Refused, 0);
        other.client = "10.0.0.9:40000".parse().unwrap();
        t.on_failed_attempt(other);
        t.on_failed_attempt(attempt(2, "127.0.0.1:8120", AttemptFailure::Refused, 0));
        let mut late = ex(
            3,
            "127.0.0.1:40001",
            "127.0.0.1:8121",
            B,
            200,
            61_000,
            61_001,
        );
        assert_eq!(t.on_exchange(&mut late).fallback, None);
    }

    #[test]
    fn with_the_list_a_failure_pairs_only_across_a_pipe() {
        let mut t = Tracker::new();
        t.set_goproxy(list("http://127.0.0.1:8120,http://127.0.0.1:8121"));
        t.on_failed_attempt(attempt(1, "127.0.0.1:8120", AttemptFailure::Refused, 0));
        let mut b = ex(2, "127.0.0.1:40001", "127.0.0.1:8121", B, 200, 1, 2);
        assert_eq!(
            t.on_exchange(&mut b).fallback,
            None,
            "`,` does not go on after a refused connection: something else asked B"
        );
        let mut t = Tracker::new();
        t.set_goproxy(list("http://127.0.0.1:8120|http://127.0.0.1:8121"));
        t.on_failed_attempt(attempt(1, "127.0.0.1:8120", AttemptFailure::Refused, 0));
        let mut b = ex(2, "127.0.0.1:40001", "127.0.0.1:8121", B, 200, 1, 2);
        let fb = t.on_exchange(&mut b).fallback.unwrap();
        assert_eq!(fb.pipe, Some(true));
        let j = t.into_journeys();
        assert_eq!(
            j[0].journey[0].url, "http://127.0.0.1:8120",
            "the entry, from the list"
        );
        assert_eq!(j[0].journey[0].scheme, "http");
    }

    #[test]
    fn a_failure_reported_after_its_follower_still_links() {
        let mut t = Tracker::new();
        let mut b = ex(
            2,
            "127.0.0.1:40001",
            "127.0.0.1:8121",
            B,
            200,
            31_000,
            31_001,
        );
        assert_eq!(t.on_exchange(&mut b).fallback, None);
        // An unanswered SYN at 1 s: its flow closes (idle) after the request completed.
        let (ji, fb) = t
            .on_failed_attempt(attempt(
                1,
                "127.0.0.1:8120",
                AttemptFailure::NoAnswer,
                1_000,
            ))
            .expect("linked to the request that followed");
        assert_eq!(ji, 0);
        assert_eq!(fb.exchange, 2);
        let j = t.into_journeys();
        assert_eq!(
            j[0].journey[0].exchange, None,
            "sorted by start: the failure first"
        );
        assert_eq!(
            j[0].journey[1].after,
            Some(HopLink::Fallback {
                from: 0,
                cause: "no-answer".into()
            })
        );
    }

    #[test]
    fn direct_after_a_proxy_joins_the_journey() {
        let mut t = Tracker::new();
        let mut a = ex(
            1,
            "127.0.0.1:40000",
            "127.0.0.1:8120",
            "http://127.0.0.1:8120/lab.test/%21hello/@v/v1.1.0.info",
            404,
            0,
            1,
        );
        let mut g = ex(
            2,
            "127.0.0.1:40001",
            "127.0.0.1:443",
            "https://lab.test/Hello?go-get=1",
            200,
            2,
            3,
        );
        assert_eq!(g.op, Op::GoGet);
        let mut i = ex(
            3,
            "127.0.0.1:40002",
            "127.0.0.1:80",
            "http://lab.test/lab.test/%21hello/@v/v1.1.0.info",
            200,
            4,
            5,
        );
        t.on_exchange(&mut a);
        let o = t.on_exchange(&mut g);
        assert!(o.fallback.is_some(), "direct is the next entry");
        assert!(t.on_exchange(&mut i).fallback.is_some());
        let j = t.into_journeys();
        assert_eq!(j.len(), 1, "{j:#?}");
        assert_eq!(j[0].version.as_deref(), Some("v1.1.0"));
        let ops: Vec<Op> = j[0].journey.iter().map(|h| h.op).collect();
        assert_eq!(ops, [Op::Info, Op::GoGet, Op::Info]);
        assert_eq!(
            j[0].journey[1].after,
            Some(HopLink::Fallback {
                from: 0,
                cause: "404".into()
            })
        );
        // GOPROXY=direct alone: the discovery keeps a journey of its own.
        let mut t = Tracker::new();
        let mut g = ex(
            2,
            "127.0.0.1:40001",
            "127.0.0.1:443",
            "https://lab.test/Hello?go-get=1",
            200,
            2,
            3,
        );
        assert!(t.on_exchange(&mut g).fallback.is_none());
        assert_eq!(t.into_journeys()[0].version, None);
    }

    #[test]
    fn a_local_entry_refused_then_a_remote_one_is_one_walk() {
        let mut t = Tracker::new();
        t.on_failed_attempt(attempt(1, "127.0.0.1:8125", AttemptFailure::Refused, 0));
        let mut b = ex(
            2,
            "192.0.2.2:40001",
            "203.0.113.80:443",
            "https://proxy.test/example.test/x/@v/v1.0.0.info",
            200,
            1,
            2,
        );
        assert!(t.on_exchange(&mut b).fallback.is_some());
        // Two other hosts are not one walk.
        let mut t = Tracker::new();
        let mut other = attempt(1, "198.51.100.7:8125", AttemptFailure::Refused, 0);
        other.client = "198.51.100.9:40000".parse().unwrap();
        t.on_failed_attempt(other);
        let mut b = ex(
            2,
            "192.0.2.2:40001",
            "203.0.113.80:443",
            "https://proxy.test/example.test/x/@v/v1.0.0.info",
            200,
            1,
            2,
        );
        assert!(t.on_exchange(&mut b).fallback.is_none());
    }
}
