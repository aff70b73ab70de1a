//! Module journeys: for each module@version, every attempt of every operation in order, with
//! fallbacks (404/410 from one GOPROXY base, then the same operation on the next base) and
//! redirects (3xx Location, then the request to it) linked, and hops a server made upstream
//! while answering nested under the hop they served.

use super::classify::Op;
use super::path::{resolve_location, split_url};
use super::Exchange;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};

/// How a hop follows an earlier one of the same journey.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum HopLink {
    /// The earlier hop (`from`, an index into the journey's hops) answered 404/410 and the go
    /// command went on to the next GOPROXY entry.
    Fallback { from: usize },
    /// The earlier hop answered a redirect to this URL.
    Redirect { from: usize },
}

#[derive(Clone, Debug, Serialize)]
pub struct Hop {
    pub exchange: u64,
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
    #[serde(skip)]
    pub base: String,
    #[serde(skip)]
    start: crate::time::Ts,
    #[serde(skip)]
    end: crate::time::Ts,
    #[serde(skip)]
    client_ip: std::net::IpAddr,
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

/// What one exchange changed, for the detectors.
#[derive(Clone, Debug, Default)]
pub struct TrackOutcome {
    /// Index of the journey the exchange joined.
    pub journey: Option<usize>,
    /// Set when this exchange is a fallback: the exchange id of the failed attempt before it.
    pub fallback_from: Option<u64>,
    /// Index of the redirect chain this exchange belongs to.
    pub chain: Option<usize>,
}

/// Bound on redirect targets waiting for their request (a redirect nobody followed is dropped
/// oldest-first so a hostile capture cannot grow it).
const MAX_PENDING_REDIRECTS: usize = 4096;

#[derive(Default)]
pub struct Tracker {
    journeys: Vec<Journey>,
    by_key: HashMap<(String, Option<String>), usize>,
    chains: Vec<Chain>,
    /// (client ip, absolute URL) -> chain index, waiting for the follow-up request.
    pending: HashMap<(std::net::IpAddr, String), usize>,
    pending_order: VecDeque<(std::net::IpAddr, String)>,
    /// exchange id -> (journey, hop index), for linking redirects within a journey.
    hop_of: HashMap<u64, (usize, usize)>,
}

impl Tracker {
    pub fn new() -> Tracker {
        Tracker::default()
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

    fn add_hop(&mut self, module: String, ex: &Exchange, out: &mut TrackOutcome) -> usize {
        let key = (module, ex.version.clone());
        let ji = match self.by_key.get(&key) {
            Some(&ji) => ji,
            None => {
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
        let journey = &mut self.journeys[ji];
        let mut after = None;
        if let Some((fj, fh)) = ex.redirect_from.and_then(|r| self.hop_of.get(&r).copied()) {
            if fj == ji {
                after = Some(HopLink::Redirect { from: fh });
            }
        }
        if after.is_none() && ex.op.is_proxy() {
            // GOPROXY list walk: the latest attempt of this operation failed with 404/410 on
            // another base.
            let prev = journey
                .journey
                .iter()
                .enumerate()
                .rev()
                .find(|(_, h)| h.op == ex.op);
            if let Some((i, h)) = prev {
                if matches!(h.status, Some(404 | 410))
                    && h.base != ex.base
                    && h.client_ip == ex.client.ip()
                {
                    after = Some(HopLink::Fallback { from: i });
                    out.fallback_from = Some(h.exchange);
                }
            }
        }
        journey.journey.push(Hop {
            exchange: ex.id,
            op: ex.op,
            url: ex.url.clone(),
            server: ex.server,
            status: ex.status,
            scheme: ex.scheme.clone(),
            via: ex.via.clone(),
            after,
            upstream: Vec::new(),
            base: ex.base.clone(),
            start: ex.start,
            end: ex.end,
            client_ip: ex.client.ip(),
        });
        self.hop_of.insert(ex.id, (ji, journey.journey.len() - 1));
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
                Some(HopLink::Fallback { from }) => Some(HopLink::Fallback {
                    from: new_pos[from],
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
                Some(HopLink::Fallback { from }) => {
                    new_index[from].map(|f| HopLink::Fallback { from: f })
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
        assert_eq!(t.on_exchange(&mut a).fallback_from, None);
        let o = t.on_exchange(&mut b);
        assert_eq!(o.fallback_from, Some(1));
        let j = t.into_journeys();
        assert_eq!(j.len(), 1);
        assert_eq!(j[0].module, "example.test/Util");
        assert_eq!(j[0].version.as_deref(), Some("v0.2.0"));
        assert_eq!(j[0].journey[1].after, Some(HopLink::Fallback { from: 0 }));
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
        assert_eq!(t.on_exchange(&mut b).fallback_from, None);
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
        assert_eq!(j[0].journey[0].exchange, 2);
        assert_eq!(j[0].journey[0].upstream.len(), 1);
        assert_eq!(j[0].journey[0].upstream[0].exchange, 1);
    }
}
