//! The lab's scenarios, as data in one place: which servers on which fixed ports, the GOPROXY
//! the go command gets, what it downloads, how the capture is taken, and what go should say.
//! `captures/record.sh` reads these through `modtrace lab env NAME`; trainers start them with
//! `modtrace lab serve --scenario NAME`.

use super::goproxy::ModuleScope;
use super::server::{Credentials, LabOptions, ServerKind, ServerSpec, Target};
use super::sumdb::LabSigner;
use super::tamper::TamperPlan;
use super::tls::{CertKind, TlsServerOptions, TlsVersions, UpstreamVerify, LAB_HOST};
use super::LAB_IP;
use std::net::SocketAddr;

/// What kind of server a scenario runs (the data form of [`ServerKind`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerDef {
    /// A GOPROXY serving lab/modules.
    Proxy,
    /// A GOPROXY serving lab/modules that requires the lab's Basic credentials.
    ProxyWithAuth,
    /// Answers this status (404, 410 or 500) to everything.
    Gone(u16),
    /// 302 to the named server, same path.
    RedirectTo(&'static str),
    /// Relays from the named server with the lab's Basic credentials (an https:// upstream
    /// verified against the lab CA).
    MirrorOf(&'static str),
    /// The same, but an https:// upstream's certificate is not checked at all.
    MirrorOfUnverified(&'static str),
    /// Go-get discovery pages pointing (vcs `mod`) at this repo root URL.
    GoGet(&'static str),
    /// A GOPROXY that also serves the lab checksum database under `/sumdb/sum.lab.test/`.
    ProxyWithSumdb,
    /// The lab checksum database at the root.
    SumDb,
    /// A tampering GOPROXY.
    Tamper(TamperDef),
    /// A GOPROXY serving only the lab modules under this path prefix (404 for the others):
    /// a company's private proxy.
    ProxyOnly(&'static str),
    /// A GOPROXY serving the lab modules except those under this path prefix: a public-style
    /// mirror, which has never heard of the company's private modules.
    ProxyExcept(&'static str),
    /// A CONNECT proxy (plain HTTP) tunnelling to `lab.test:<port of another server>`, always
    /// at 127.0.0.1: the scenario's HTTPS_PROXY.
    ConnectProxy,
    /// A GOPROXY entry whose port nothing listens on: connections are refused (SYN, then RST
    /// from the kernel). The lab starts nothing there and logs no request for it; the port
    /// must be free while the scenario runs (record.sh checks it like every other port, and
    /// expects a refused connection on it in the capture).
    Closed,
}

/// The data form of a tampering server ([`TamperPlan`] plus where it gets the modules).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TamperDef {
    /// Relay this server of the scenario (fetched without credentials) instead of serving the
    /// lab modules.
    pub upstream: Option<&'static str>,
    pub zip: bool,
    pub go_mod: bool,
    pub info_time: Option<&'static str>,
    pub only_module: Option<&'static str>,
}

impl TamperDef {
    /// Serves the lab modules with one byte changed in every zip.
    pub const ZIPS: TamperDef = TamperDef {
        upstream: None,
        zip: true,
        go_mod: false,
        info_time: None,
        only_module: None,
    };

    pub fn plan(&self) -> TamperPlan {
        TamperPlan {
            zip: self.zip,
            go_mod: self.go_mod,
            info_time: self.info_time.map(str::to_string),
            only_module: self.only_module.map(str::to_string),
        }
    }
}

/// Placeholder in [`Scenario::gosumdb`] for the lab checksum database's verifier key.
pub const LAB_KEY: &str = "{lab-key}";

/// One server of a scenario.
#[derive(Clone, Copy, Debug)]
pub struct ScenarioServer {
    pub name: &'static str,
    pub port: u16,
    pub def: ServerDef,
    /// Served over TLS with these options.
    pub tls: Option<TlsServerOptions>,
    /// Its TLS offers HTTP/2 too (ALPN `h2` before `http/1.1`).
    pub http2: bool,
}

/// A plain-HTTP scenario server.
pub const fn plain(name: &'static str, port: u16, def: ServerDef) -> ScenarioServer {
    ScenarioServer {
        name,
        port,
        def,
        tls: None,
        http2: false,
    }
}

/// A scenario server over TLS.
pub const fn tls(
    name: &'static str,
    port: u16,
    def: ServerDef,
    versions: TlsVersions,
    cert: CertKind,
) -> ScenarioServer {
    ScenarioServer {
        name,
        port,
        def,
        tls: Some(TlsServerOptions { cert, versions }),
        http2: false,
    }
}

/// A scenario server over TLS that offers HTTP/2 (ALPN `h2`, then `http/1.1`).
pub const fn tls_h2(
    name: &'static str,
    port: u16,
    def: ServerDef,
    versions: TlsVersions,
    cert: CertKind,
) -> ScenarioServer {
    ScenarioServer {
        http2: true,
        ..tls(name, port, def, versions, cert)
    }
}

/// What the go command should report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GoOutcome {
    /// Exit 0, no `Error` in the JSON.
    Success,
    /// Exit non-zero and go's stdout/stderr contain this text.
    ErrorContains(&'static str),
}

#[derive(Clone, Copy, Debug)]
pub struct Scenario {
    pub name: &'static str,
    pub summary: &'static str,
    pub servers: &'static [ScenarioServer],
    /// Server names joined with `,` into GOPROXY (`direct` and `off` are taken literally),
    /// or with `|` after the entries named in [`Scenario::goproxy_pipe_after`].
    pub goproxy: &'static [&'static str],
    /// Entries of [`Scenario::goproxy`] followed by `|` instead of `,`: after such an entry the
    /// go command falls back to the next one on any error (a 500, a refused connection), not
    /// only on 404 and 410. Empty: every separator is `,`.
    pub goproxy_pipe_after: &'static [&'static str],
    /// GOSUMDB; `{lab-key}` stands for the lab checksum database's verifier key (see
    /// [`Scenario::gosumdb_value`]).
    pub gosumdb: &'static str,
    /// GOINSECURE for the go command (empty: unset).
    pub goinsecure: &'static str,
    /// GOPRIVATE for the go command (empty: unset).
    pub goprivate: &'static str,
    /// GONOPROXY for the go command (empty: unset, i.e. GOPRIVATE's value).
    pub gonoproxy: &'static str,
    /// Run the go command with SSL_CERT_FILE = the lab CA (its only trusted root).
    pub trust_lab_ca: bool,
    /// Host names the recording resolves to 127.0.0.1. Non-empty: servers, tcpdump and go run
    /// in a network namespace of their own with a hosts file naming these (direct mode needs a
    /// host name and ports 443/80, which import paths imply).
    pub netns_hosts: &'static [&'static str],
    /// Whether the servers must log at least one request (false when go refuses every
    /// connection during the TLS handshake).
    pub expect_requests: bool,
    /// `module@version` arguments of `go mod download -json`.
    pub downloads: &'static [&'static str],
    /// tcpdump interface: `lo` (Ethernet framing) or `any` (Linux cooked v2).
    pub interface: &'static str,
    pub expect: GoOutcome,
    /// The server (a [`ServerDef::ConnectProxy`]) the go command gets as HTTPS_PROXY. The go
    /// command bypasses HTTPS_PROXY for loopback addresses, so GOPROXY then names its servers
    /// `lab.test` ([`LAB_HOST`]), which only the proxy maps to 127.0.0.1: no name resolution
    /// and no network namespace needed.
    pub https_proxy: Option<&'static str>,
    /// Keep the capture as `NAME.pcapng` with the key log embedded as a Decryption Secrets
    /// Block (`modtrace lab embed-keys`), instead of `NAME.pcap`.
    pub embed_keys: bool,
}

/// The two modules every scenario downloads; upper case in both paths, so the wire shows
/// `%21`-escaped `!` forms.
pub const BOTH_MODULES: &[&str] = &["example.test/Hello@v1.1.0", "example.test/Util@v0.2.0"];

/// The same two modules under the host the netns scenarios resolve (`lab.test`, see
/// [`super::tls::LAB_HOST`]): direct mode derives the server from the module path.
pub const LAB_HOST_MODULES: &[&str] = &["lab.test/Hello@v1.1.0", "lab.test/Util@v0.2.0"];

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "plaintext-proxy",
        summary: "one plain-HTTP GOPROXY serves both modules; GOSUMDB=off",
        servers: &[plain("proxy", 8081, ServerDef::Proxy)],
        goproxy: &["proxy"],
        goproxy_pipe_after: &[],
        gosumdb: "off",
        goinsecure: "",
        goprivate: "",
        gonoproxy: "",
        trust_lab_ca: false,
        netns_hosts: &[],
        expect_requests: true,
        downloads: BOTH_MODULES,
        interface: "lo",
        expect: GoOutcome::Success,
        https_proxy: None,
        embed_keys: false,
    },
    Scenario {
        name: "fallback-410",
        summary: "GOPROXY=gone,proxy: the first answers 410 to everything, the go command falls back to the second",
        servers: &[
            plain("gone", 8082, ServerDef::Gone(410)),
            plain("proxy", 8083, ServerDef::Proxy),
        ],
        goproxy: &["gone", "proxy"],
        goproxy_pipe_after: &[],
        gosumdb: "off",
        goinsecure: "",
        goprivate: "",
        gonoproxy: "",
        trust_lab_ca: false,
        netns_hosts: &[],
        expect_requests: true,
        downloads: BOTH_MODULES,
        interface: "lo",
        expect: GoOutcome::Success,
        https_proxy: None,
        embed_keys: false,
    },
    Scenario {
        name: "redirect-loop",
        summary: "GOPROXY=redirect-a, which 302s to redirect-b, which 302s back: go stops after 10 redirects",
        servers: &[
            plain("redirect-a", 8084, ServerDef::RedirectTo("redirect-b")),
            plain("redirect-b", 8085, ServerDef::RedirectTo("redirect-a")),
        ],
        goproxy: &["redirect-a"],
        goproxy_pipe_after: &[],
        gosumdb: "off",
        goinsecure: "",
        goprivate: "",
        gonoproxy: "",
        trust_lab_ca: false,
        netns_hosts: &[],
        expect_requests: true,
        downloads: BOTH_MODULES,
        interface: "lo",
        expect: GoOutcome::ErrorContains("stopped after 10 redirects"),
        https_proxy: None,
        embed_keys: false,
    },
    Scenario {
        name: "mirror-basic-auth",
        summary: "GOPROXY=mirror, which fetches each path from upstream over plain HTTP with Basic auth",
        servers: &[
            plain("mirror", 8086, ServerDef::MirrorOf("upstream")),
            plain("upstream", 8087, ServerDef::ProxyWithAuth),
        ],
        goproxy: &["mirror"],
        goproxy_pipe_after: &[],
        gosumdb: "off",
        goinsecure: "",
        goprivate: "",
        gonoproxy: "",
        trust_lab_ca: false,
        netns_hosts: &[],
        expect_requests: true,
        downloads: BOTH_MODULES,
        interface: "lo",
        expect: GoOutcome::Success,
        https_proxy: None,
        embed_keys: false,
    },
    Scenario {
        name: "fallback-410-any",
        summary: "fallback-410 (same servers and ports) captured on -i any: Linux cooked v2 (SLL2) framing",
        servers: &[
            plain("gone", 8082, ServerDef::Gone(410)),
            plain("proxy", 8083, ServerDef::Proxy),
        ],
        goproxy: &["gone", "proxy"],
        goproxy_pipe_after: &[],
        gosumdb: "off",
        goinsecure: "",
        goprivate: "",
        gonoproxy: "",
        trust_lab_ca: false,
        netns_hosts: &[],
        expect_requests: true,
        downloads: BOTH_MODULES,
        interface: "any",
        expect: GoOutcome::Success,
        https_proxy: None,
        embed_keys: false,
    },
    Scenario {
        name: "tls-mirror-selfsigned",
        summary: "GOPROXY=plain-HTTP mirror, whose upstream is an HTTPS proxy with a self-signed TLS 1.2 certificate the mirror does not verify",
        servers: &[
            plain("mirror", 8088, ServerDef::MirrorOfUnverified("upstream")),
            tls("upstream", 8089, ServerDef::ProxyWithAuth, TlsVersions::Tls12, CertKind::SelfSigned),
        ],
        goproxy: &["mirror"],
        goproxy_pipe_after: &[],
        gosumdb: "off",
        goinsecure: "",
        goprivate: "",
        gonoproxy: "",
        trust_lab_ca: false,
        netns_hosts: &[],
        expect_requests: true,
        downloads: BOTH_MODULES,
        interface: "lo",
        expect: GoOutcome::Success,
        https_proxy: None,
        embed_keys: false,
    },
    Scenario {
        name: "tls-mirror-expired",
        summary: "tls-mirror-selfsigned with an expired (lab-CA-signed, 2020) TLS 1.2 certificate upstream",
        servers: &[
            plain("mirror", 8090, ServerDef::MirrorOfUnverified("upstream")),
            tls("upstream", 8091, ServerDef::ProxyWithAuth, TlsVersions::Tls12, CertKind::Expired),
        ],
        goproxy: &["mirror"],
        goproxy_pipe_after: &[],
        gosumdb: "off",
        goinsecure: "",
        goprivate: "",
        gonoproxy: "",
        trust_lab_ca: false,
        netns_hosts: &[],
        expect_requests: true,
        downloads: BOTH_MODULES,
        interface: "lo",
        expect: GoOutcome::Success,
        https_proxy: None,
        embed_keys: false,
    },
    Scenario {
        name: "goinsecure-goget",
        summary: "GOPROXY=direct, GOINSECURE=lab.test: go-get page over TLS 1.2 with a self-signed certificate (port 443), module fetched from the plain-HTTP repo root it names (port 80); in a netns",
        servers: &[
            tls("goget", 443, ServerDef::GoGet("http://lab.test"), TlsVersions::Tls12, CertKind::SelfSigned),
            plain("repo", 80, ServerDef::Proxy),
        ],
        goproxy: &["direct"],
        goproxy_pipe_after: &[],
        gosumdb: "off",
        goinsecure: "lab.test",
        goprivate: "",
        gonoproxy: "",
        trust_lab_ca: false,
        netns_hosts: &["lab.test"],
        expect_requests: true,
        downloads: LAB_HOST_MODULES,
        interface: "lo",
        expect: GoOutcome::Success,
        https_proxy: None,
        embed_keys: false,
    },
    Scenario {
        name: "tls-proxy-rejected",
        summary: "GOPROXY=https proxy with a self-signed TLS 1.2 certificate, nothing trusts it: go refuses the handshake",
        servers: &[tls("proxy", 8092, ServerDef::Proxy, TlsVersions::Tls12, CertKind::SelfSigned)],
        goproxy: &["proxy"],
        goproxy_pipe_after: &[],
        gosumdb: "off",
        goinsecure: "",
        goprivate: "",
        gonoproxy: "",
        trust_lab_ca: false,
        netns_hosts: &[],
        expect_requests: false,
        downloads: BOTH_MODULES,
        interface: "lo",
        expect: GoOutcome::ErrorContains("x509: certificate signed by unknown authority"),
        https_proxy: None,
        embed_keys: false,
    },
    Scenario {
        name: "tls13-verified",
        summary: "GOPROXY=https proxy over TLS 1.3 with a lab-CA certificate, SSL_CERT_FILE=the lab CA: go verifies and succeeds",
        servers: &[tls("proxy", 8093, ServerDef::Proxy, TlsVersions::Tls13, CertKind::Valid)],
        goproxy: &["proxy"],
        goproxy_pipe_after: &[],
        gosumdb: "off",
        goinsecure: "",
        goprivate: "",
        gonoproxy: "",
        trust_lab_ca: true,
        netns_hosts: &[],
        expect_requests: true,
        downloads: BOTH_MODULES,
        interface: "lo",
        expect: GoOutcome::Success,
        https_proxy: None,
        embed_keys: false,
    },
    Scenario {
        name: "sumdb-via-proxy",
        summary: "GOPROXY=plain-HTTP proxy that also serves the lab checksum database under /sumdb/sum.lab.test/; GOSUMDB=<lab key> without URL: go asks the proxy's /supported, verifies through it and succeeds",
        servers: &[plain("proxy", 8100, ServerDef::ProxyWithSumdb)],
        goproxy: &["proxy"],
        goproxy_pipe_after: &[],
        gosumdb: LAB_KEY,
        goinsecure: "",
        goprivate: "",
        gonoproxy: "",
        trust_lab_ca: false,
        netns_hosts: &[],
        expect_requests: true,
        downloads: BOTH_MODULES,
        interface: "lo",
        expect: GoOutcome::Success,
        https_proxy: None,
        embed_keys: false,
    },
    Scenario {
        name: "sumdb-direct",
        summary: "GOPROXY=plain-HTTP proxy, GOSUMDB=\"<lab key> http://127.0.0.1:8102\": go verifies against the lab checksum database directly and succeeds",
        servers: &[
            plain("proxy", 8101, ServerDef::Proxy),
            plain("sumdb", 8102, ServerDef::SumDb),
        ],
        goproxy: &["proxy"],
        goproxy_pipe_after: &[],
        gosumdb: "{lab-key} http://127.0.0.1:8102",
        goinsecure: "",
        goprivate: "",
        gonoproxy: "",
        trust_lab_ca: false,
        netns_hosts: &[],
        expect_requests: true,
        downloads: BOTH_MODULES,
        interface: "lo",
        expect: GoOutcome::Success,
        https_proxy: None,
        embed_keys: false,
    },
    Scenario {
        name: "tamper-sumdb-on",
        summary: "GOPROXY=tampering proxy (one byte changed in every zip), GOSUMDB=\"<lab key> http://127.0.0.1:8104\": go refuses both zips (checksum mismatch, SECURITY ERROR)",
        servers: &[
            plain("tamper", 8103, ServerDef::Tamper(TamperDef::ZIPS)),
            plain("sumdb", 8104, ServerDef::SumDb),
        ],
        goproxy: &["tamper"],
        goproxy_pipe_after: &[],
        gosumdb: "{lab-key} http://127.0.0.1:8104",
        goinsecure: "",
        goprivate: "",
        gonoproxy: "",
        trust_lab_ca: false,
        netns_hosts: &[],
        expect_requests: true,
        downloads: BOTH_MODULES,
        interface: "lo",
        expect: GoOutcome::ErrorContains("SECURITY ERROR"),
        https_proxy: None,
        embed_keys: false,
    },
    Scenario {
        name: "tamper-sumdb-off",
        summary: "GOPROXY=tampering proxy (one byte changed in every zip), GOSUMDB=off: go accepts the tampered zips",
        servers: &[plain("tamper", 8105, ServerDef::Tamper(TamperDef::ZIPS))],
        goproxy: &["tamper"],
        goproxy_pipe_after: &[],
        gosumdb: "off",
        goinsecure: "",
        goprivate: "",
        gonoproxy: "",
        trust_lab_ca: false,
        netns_hosts: &[],
        expect_requests: true,
        downloads: BOTH_MODULES,
        interface: "lo",
        expect: GoOutcome::Success,
        https_proxy: None,
        embed_keys: false,
    },
    Scenario {
        name: "mirrors-disagree",
        summary: "GOPROXY=mirror relaying an honest upstream proxy without credentials, but with every .info Time rewritten and one byte changed in Hello's zip; GOSUMDB=off: go accepts",
        servers: &[
            plain(
                "mirror",
                8106,
                ServerDef::Tamper(TamperDef {
                    upstream: Some("upstream"),
                    zip: true,
                    go_mod: false,
                    info_time: Some(MIRROR_INFO_TIME),
                    only_module: Some("example.test/Hello"),
                }),
            ),
            plain("upstream", 8107, ServerDef::Proxy),
        ],
        goproxy: &["mirror"],
        goproxy_pipe_after: &[],
        gosumdb: "off",
        goinsecure: "",
        goprivate: "",
        gonoproxy: "",
        trust_lab_ca: false,
        netns_hosts: &[],
        expect_requests: true,
        downloads: BOTH_MODULES,
        interface: "lo",
        expect: GoOutcome::Success,
        https_proxy: None,
        embed_keys: false,
    },
    Scenario {
        name: "h2-proxy-tls13",
        summary: "GOPROXY=https proxy over TLS 1.3 offering ALPN h2 (then http/1.1), lab-CA certificate, SSL_CERT_FILE=the lab CA: go speaks HTTP/2 and succeeds",
        servers: &[tls_h2("proxy", 8108, ServerDef::Proxy, TlsVersions::Tls13, CertKind::Valid)],
        goproxy: &["proxy"],
        goproxy_pipe_after: &[],
        gosumdb: "off",
        goinsecure: "",
        goprivate: "",
        gonoproxy: "",
        trust_lab_ca: true,
        netns_hosts: &[],
        expect_requests: true,
        downloads: BOTH_MODULES,
        interface: "lo",
        expect: GoOutcome::Success,
        https_proxy: None,
        embed_keys: false,
    },
    Scenario {
        name: "connect-proxy-h2",
        summary: "HTTPS_PROXY=plain-HTTP CONNECT proxy, GOPROXY=https://lab.test:8109 (TLS 1.3, ALPN h2, lab CA trusted): go tunnels HTTP/2 through the proxy; kept as pcapng with the key log embedded",
        servers: &[
            tls_h2("proxy", 8109, ServerDef::Proxy, TlsVersions::Tls13, CertKind::Valid),
            plain("connect", 8110, ServerDef::ConnectProxy),
        ],
        goproxy: &["proxy"],
        goproxy_pipe_after: &[],
        gosumdb: "off",
        goinsecure: "",
        goprivate: "",
        gonoproxy: "",
        trust_lab_ca: true,
        netns_hosts: &[],
        expect_requests: true,
        downloads: BOTH_MODULES,
        interface: "lo",
        expect: GoOutcome::Success,
        https_proxy: Some("connect"),
        embed_keys: true,
    },
    Scenario {
        name: "pipe-after-500",
        summary: "GOPROXY=fails|proxy: the first answers 500 to everything; after `|` the go command falls back on any error, so every operation gets 500, then 200 from the second",
        servers: &[
            plain("fails", 8120, ServerDef::Gone(500)),
            plain("proxy", 8124, ServerDef::Proxy),
        ],
        goproxy: &["fails", "proxy"],
        goproxy_pipe_after: &["fails"],
        gosumdb: "off",
        goinsecure: "",
        goprivate: "",
        gonoproxy: "",
        trust_lab_ca: false,
        netns_hosts: &[],
        expect_requests: true,
        downloads: BOTH_MODULES,
        interface: "lo",
        expect: GoOutcome::Success,
        https_proxy: None,
        embed_keys: false,
    },
    Scenario {
        name: "pipe-after-refused",
        summary: "GOPROXY=closed|proxy: nothing listens on the first (connection refused); after `|` the go command falls back to the second for every operation",
        servers: &[
            plain("closed", 8125, ServerDef::Closed),
            plain("proxy", 8126, ServerDef::Proxy),
        ],
        goproxy: &["closed", "proxy"],
        goproxy_pipe_after: &["closed"],
        gosumdb: "off",
        goinsecure: "",
        goprivate: "",
        gonoproxy: "",
        trust_lab_ca: false,
        netns_hosts: &[],
        expect_requests: true,
        downloads: BOTH_MODULES,
        interface: "lo",
        expect: GoOutcome::Success,
        https_proxy: None,
        embed_keys: false,
    },
    Scenario {
        name: "comma-after-500",
        summary: "pipe-after-500's servers (same ports) with GOPROXY=fails,proxy: after `,` a 500 is no reason to fall back, go fails and the second is never asked",
        servers: &[
            plain("fails", 8120, ServerDef::Gone(500)),
            plain("proxy", 8124, ServerDef::Proxy),
        ],
        goproxy: &["fails", "proxy"],
        goproxy_pipe_after: &[],
        gosumdb: "off",
        goinsecure: "",
        goprivate: "",
        gonoproxy: "",
        trust_lab_ca: false,
        netns_hosts: &[],
        expect_requests: true,
        downloads: BOTH_MODULES,
        interface: "lo",
        expect: GoOutcome::ErrorContains(COMMA_AFTER_500_ERROR),
        https_proxy: None,
        embed_keys: false,
    },
    Scenario {
        name: "proxies-then-direct",
        summary: "GOPROXY=notfound,direct, GOINSECURE=lab.test: the proxy answers 404, the go command goes direct: go-get page over TLS 1.2 with a self-signed certificate (port 443), module from the plain-HTTP repo root it names (port 80); in a netns",
        servers: &[
            plain("notfound", 8127, ServerDef::Gone(404)),
            tls("goget", 443, ServerDef::GoGet("http://lab.test"), TlsVersions::Tls12, CertKind::SelfSigned),
            plain("repo", 80, ServerDef::Proxy),
        ],
        goproxy: &["notfound", "direct"],
        goproxy_pipe_after: &[],
        gosumdb: "off",
        goinsecure: "lab.test",
        goprivate: "",
        gonoproxy: "",
        trust_lab_ca: false,
        netns_hosts: &["lab.test"],
        expect_requests: true,
        downloads: LAB_HOST_MODULES,
        interface: "lo",
        expect: GoOutcome::Success,
        https_proxy: None,
        embed_keys: false,
    },
];

/// What the go command (1.26) says when the first GOPROXY entry of `comma-after-500` answers
/// 500 to Hello's `.info` (it stops there: no fallback after `,`).
pub const COMMA_AFTER_500_ERROR: &str =
    "reading http://127.0.0.1:8120/example.test/%21hello/@v/v1.1.0.info: 500 Internal Server Error";

/// The `.info` Time the disagreeing mirror of `mirrors-disagree` announces (the lab proxy says
/// [`super::modules::INFO_TIME`]).
pub const MIRROR_INFO_TIME: &str = "2024-06-01T12:00:00Z";

/// Scenarios that only the training lessons run ([`super::lesson`]): the safe halves the
/// recorded scenarios lack, and the proxy-order pair. Recorded by `modtrace lab run --record`
/// into captures/training/, not by captures/record.sh (`lab scenarios` lists [`SCENARIOS`]).
/// What the training scenarios share unless they say otherwise: plain HTTP on lo, GOSUMDB=off,
/// no GOINSECURE/GOPRIVATE/GONOPROXY, the go command succeeds.
const LESSON_DEFAULTS: Scenario = Scenario {
    name: "",
    summary: "",
    servers: &[],
    goproxy: &[],
    goproxy_pipe_after: &[],
    gosumdb: "off",
    goinsecure: "",
    goprivate: "",
    gonoproxy: "",
    trust_lab_ca: false,
    netns_hosts: &[],
    expect_requests: true,
    downloads: BOTH_MODULES,
    interface: "lo",
    expect: GoOutcome::Success,
    https_proxy: None,
    embed_keys: false,
};

pub const TRAINING: &[Scenario] = &[
    Scenario {
        name: "mirror-tls-verified",
        summary: "GOPROXY=https mirror (TLS 1.2, lab-CA certificate, SSL_CERT_FILE=the lab CA), which logs in to its https upstream (TLS 1.2, lab-CA certificate) with Basic auth and verifies it",
        servers: &[
            tls("mirror", 8111, ServerDef::MirrorOf("upstream"), TlsVersions::Tls12, CertKind::Valid),
            tls("upstream", 8112, ServerDef::ProxyWithAuth, TlsVersions::Tls12, CertKind::Valid),
        ],
        goproxy: &["mirror"],
        trust_lab_ca: true,
        downloads: BOTH_MODULES,
        embed_keys: true,
        ..LESSON_DEFAULTS
    },
    Scenario {
        name: "proxy-order-unsafe",
        summary: "GOPROXY=public,private with GOPRIVATE unset: the public-style mirror (no corp.lab.test modules) is asked for the private module first, answers 404, and go falls back to the private proxy",
        servers: &[
            plain("public", 8113, ServerDef::ProxyExcept(PRIVATE_PREFIX)),
            plain("private", 8114, ServerDef::ProxyOnly(PRIVATE_PREFIX)),
        ],
        goproxy: &["public", "private"],
        downloads: PRIVATE_AND_PUBLIC,
        ..LESSON_DEFAULTS
    },
    Scenario {
        name: "proxy-order-safe",
        summary: "GOPROXY=private,public with GOPRIVATE=corp.lab.test and GONOPROXY=none: the private proxy answers the private module, the public module falls back to the public mirror",
        servers: &[
            plain("public", 8115, ServerDef::ProxyExcept(PRIVATE_PREFIX)),
            plain("private", 8116, ServerDef::ProxyOnly(PRIVATE_PREFIX)),
        ],
        goproxy: &["private", "public"],
        goprivate: PRIVATE_PREFIX,
        gonoproxy: "none",
        downloads: PRIVATE_AND_PUBLIC,
        ..LESSON_DEFAULTS
    },
    Scenario {
        name: "redirect-once",
        summary: "GOPROXY=redirect, which 302s once to the proxy that serves the modules",
        servers: &[
            plain("redirect", 8117, ServerDef::RedirectTo("proxy")),
            plain("proxy", 8118, ServerDef::Proxy),
        ],
        goproxy: &["redirect"],
        downloads: BOTH_MODULES,
        ..LESSON_DEFAULTS
    },
];

/// Scenarios of the go process key source's tests (tests/gokeys.rs): the go command's own
/// HTTPS, read with the secrets of the go process and no server key log. Not recorded into
/// captures/ (the tests record them with `modtrace run`); ports 8121-8123 and 8128-8129 (8120
/// and 8124-8127 are the GOPROXY-fallback scenarios' of [`SCENARIOS`]).
pub const GO_KEYS: &[Scenario] = &[
    Scenario {
        name: "tls12-verified",
        summary: "GOPROXY=https proxy that speaks TLS 1.2 only, lab-CA certificate, SSL_CERT_FILE=the lab CA: go verifies and succeeds over HTTP/1.1",
        servers: &[tls("proxy", 8121, ServerDef::Proxy, TlsVersions::Tls12, CertKind::Valid)],
        goproxy: &["proxy"],
        trust_lab_ca: true,
        ..LESSON_DEFAULTS
    },
    Scenario {
        name: "sumdb-https",
        summary: "GOPROXY=https proxy (TLS 1.3, h2) and GOSUMDB=\"<lab key> https://127.0.0.1:8123\" (TLS 1.3): go verifies both modules against the lab checksum database over HTTPS and succeeds",
        servers: &[
            tls_h2("proxy", 8122, ServerDef::Proxy, TlsVersions::Tls13, CertKind::Valid),
            tls("sumdb", 8123, ServerDef::SumDb, TlsVersions::Tls13, CertKind::Valid),
        ],
        goproxy: &["proxy"],
        gosumdb: "{lab-key} https://127.0.0.1:8123",
        trust_lab_ca: true,
        ..LESSON_DEFAULTS
    },
];

/// The lab's private module path prefix (the company's code in the proxy-order lesson).
pub const PRIVATE_PREFIX: &str = "corp.lab.test";

/// A private module and a public one.
pub const PRIVATE_AND_PUBLIC: &[&str] =
    &["corp.lab.test/Billing@v1.0.0", "example.test/Hello@v1.1.0"];

/// A recorded scenario ([`SCENARIOS`]), a training one ([`TRAINING`]) or a go-keys one
/// ([`GO_KEYS`]).
pub fn find(name: &str) -> Option<&'static Scenario> {
    SCENARIOS
        .iter()
        .chain(TRAINING)
        .chain(GO_KEYS)
        .find(|s| s.name == name)
}

/// The scenario a training lesson's half runs ([`modtrace_core::lesson`] names it).
pub fn of_half(half: &modtrace_core::lesson::Half) -> &'static Scenario {
    find(half.scenario).expect("lesson names a known scenario")
}

impl Scenario {
    /// The server specs on their fixed ports (`ephemeral_ports` puts port 0 everywhere, for tests
    /// that must not collide with a running lab).
    /// [`ServerDef::Closed`] entries have no spec: nothing is started on their port.
    pub fn specs(&self, ephemeral_ports: bool) -> Vec<ServerSpec> {
        self.servers
            .iter()
            .filter_map(|s| {
                Some(ServerSpec {
                    name: s.name.to_string(),
                    addr: SocketAddr::new(LAB_IP, if ephemeral_ports { 0 } else { s.port }),
                    kind: match s.def {
                        ServerDef::Closed => return None,
                        ServerDef::Proxy => ServerKind::Proxy {
                            prefix: String::new(),
                            auth: None,
                        },
                        ServerDef::ProxyWithAuth => ServerKind::Proxy {
                            prefix: String::new(),
                            auth: Some(Credentials::lab_default()),
                        },
                        ServerDef::Gone(status) => ServerKind::Gone { status },
                        ServerDef::RedirectTo(n) => ServerKind::Redirect {
                            to: Target::Server(n.to_string()),
                            status: 302,
                        },
                        ServerDef::MirrorOf(n) => ServerKind::Mirror {
                            upstream: Target::Server(n.to_string()),
                            credentials: Credentials::lab_default(),
                            verify: UpstreamVerify::LabCa,
                        },
                        ServerDef::MirrorOfUnverified(n) => ServerKind::Mirror {
                            upstream: Target::Server(n.to_string()),
                            credentials: Credentials::lab_default(),
                            verify: UpstreamVerify::Nothing,
                        },
                        ServerDef::GoGet(root) => ServerKind::GoGet {
                            repo_root: root.to_string(),
                        },
                        ServerDef::ProxyWithSumdb => ServerKind::ProxyWithSumdb {
                            prefix: String::new(),
                        },
                        ServerDef::SumDb => ServerKind::SumDb,
                        ServerDef::Tamper(t) => ServerKind::Tamper {
                            upstream: t.upstream.map(|n| Target::Server(n.to_string())),
                            plan: t.plan(),
                        },
                        ServerDef::ConnectProxy => ServerKind::Connect,
                        ServerDef::ProxyOnly(p) => ServerKind::ScopedProxy {
                            scope: ModuleScope::Only(p.to_string()),
                        },
                        ServerDef::ProxyExcept(p) => ServerKind::ScopedProxy {
                            scope: ModuleScope::Except(p.to_string()),
                        },
                    },
                    tls: s.tls,
                })
            })
            .collect()
    }

    /// Ports of the [`ServerDef::Closed`] entries (nothing listens there), sorted.
    pub fn closed_ports(&self) -> Vec<u16> {
        let mut p: Vec<u16> = self
            .servers
            .iter()
            .filter(|s| s.def == ServerDef::Closed)
            .map(|s| s.port)
            .collect();
        p.sort_unstable();
        p
    }

    /// What the specs cannot say: which TLS servers offer HTTP/2.
    pub fn lab_options(&self) -> LabOptions {
        LabOptions {
            http2: self
                .servers
                .iter()
                .filter(|s| s.http2)
                .map(|s| s.name.to_string())
                .collect(),
        }
    }

    /// GOPROXY for the fixed ports: `127.0.0.1`, or `lab.test` when the go command goes
    /// through [`Scenario::https_proxy`].
    pub fn goproxy_value(&self) -> String {
        let host = if self.https_proxy.is_some() {
            LAB_HOST.to_string()
        } else {
            LAB_IP.to_string()
        };
        let mut value = String::new();
        let entries = self.goproxy.iter().filter_map(|n| match *n {
            "direct" | "off" => Some((*n, n.to_string())),
            _ => self.servers.iter().find(|s| s.name == *n).map(|s| {
                let scheme = if s.tls.is_some() { "https" } else { "http" };
                (*n, format!("{scheme}://{host}:{}", s.port))
            }),
        });
        let mut sep = "";
        for (name, url) in entries {
            value.push_str(sep);
            value.push_str(&url);
            sep = if self.goproxy_pipe_after.contains(&name) {
                "|"
            } else {
                ","
            };
        }
        value
    }

    /// HTTPS_PROXY for the go command (empty: none).
    pub fn https_proxy_value(&self) -> String {
        self.https_proxy
            .and_then(|n| self.servers.iter().find(|s| s.name == n))
            .map(|s| format!("http://{LAB_IP}:{}", s.port))
            .unwrap_or_default()
    }

    /// Ports of the CONNECT proxies, sorted.
    pub fn connect_ports(&self) -> Vec<u16> {
        let mut p: Vec<u16> = self
            .servers
            .iter()
            .filter(|s| s.def == ServerDef::ConnectProxy)
            .map(|s| s.port)
            .collect();
        p.sort_unstable();
        p
    }

    /// Whether a TLS server offers HTTP/2.
    pub fn uses_http2(&self) -> bool {
        self.servers.iter().any(|s| s.http2)
    }

    /// GOSUMDB with `{lab-key}` replaced by the lab checksum database's verifier key.
    pub fn gosumdb_value(&self) -> String {
        self.gosumdb
            .replace(LAB_KEY, &LabSigner::lab().verifier_key())
    }

    /// Whether GOSUMDB names the lab checksum database.
    pub fn uses_lab_sumdb(&self) -> bool {
        self.gosumdb.contains(LAB_KEY)
    }

    /// Whether a server changes what it serves (a true go.sum is written beside the capture).
    pub fn tampers(&self) -> bool {
        self.servers
            .iter()
            .any(|s| matches!(s.def, ServerDef::Tamper(_)))
    }

    /// Ports served over TLS, sorted.
    pub fn tls_ports(&self) -> Vec<u16> {
        let mut p: Vec<u16> = self
            .servers
            .iter()
            .filter(|s| s.tls.is_some())
            .map(|s| s.port)
            .collect();
        p.sort_unstable();
        p.dedup();
        p
    }

    /// Whether a TLS server or the mirror's TLS client takes part (a key log is written).
    pub fn uses_tls(&self) -> bool {
        self.servers.iter().any(|s| s.tls.is_some())
    }

    pub fn ports(&self) -> Vec<u16> {
        let mut p: Vec<u16> = self.servers.iter().map(|s| s.port).collect();
        p.sort_unstable();
        p.dedup();
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use modtrace_core::lesson::{find as find_lesson, HalfKind, LESSONS};

    #[test]
    fn lessons_name_known_scenarios_that_need_no_netns() {
        for l in LESSONS {
            for k in HalfKind::BOTH {
                let sc = of_half(l.half(k));
                assert!(
                    sc.netns_hosts.is_empty(),
                    "{}: lab run needs no netns",
                    sc.name
                );
            }
        }
    }

    /// Exactly one half of lesson 1 expects SECURITY ERROR: the one with the sumdb on.
    #[test]
    fn lesson_one_fails_only_with_the_sumdb_on() {
        let l = find_lesson("sumdb-off").unwrap();
        assert_eq!(of_half(&l.unsafe_half).expect, GoOutcome::Success);
        assert_eq!(of_half(&l.unsafe_half).gosumdb, "off");
        assert_eq!(
            of_half(&l.safe_half).expect,
            GoOutcome::ErrorContains("SECURITY ERROR")
        );
    }

    /// The lessons' analysis flags name the lab checksum database's key.
    #[test]
    fn lesson_sumdb_key_is_the_lab_key() {
        assert_eq!(
            modtrace_core::lesson::LAB_SUMDB_KEY,
            super::super::LabSigner::lab().verifier_key()
        );
    }

    #[test]
    fn scenarios_are_consistent() {
        let mut names = std::collections::HashSet::new();
        for s in SCENARIOS {
            assert!(names.insert(s.name), "duplicate scenario {}", s.name);
            let mut ports = std::collections::HashSet::new();
            for sv in s.servers {
                assert!(ports.insert(sv.port), "{}: port {} twice", s.name, sv.port);
                let netns_port = !s.netns_hosts.is_empty() && matches!(sv.port, 80 | 443);
                assert!(
                    (8081..=8127).contains(&sv.port) || netns_port,
                    "{}: port {} outside 8081-8127 (80/443 only in a netns scenario)",
                    s.name,
                    sv.port
                );
                if let ServerDef::RedirectTo(t)
                | ServerDef::MirrorOf(t)
                | ServerDef::MirrorOfUnverified(t)
                | ServerDef::Tamper(TamperDef {
                    upstream: Some(t), ..
                }) = sv.def
                {
                    assert!(
                        s.servers.iter().any(|o| o.name == t),
                        "{}: {} names unknown {t}",
                        s.name,
                        sv.name
                    );
                }
            }
            for g in s.goproxy {
                assert!(
                    matches!(*g, "direct" | "off") || s.servers.iter().any(|o| o.name == *g),
                    "{}: GOPROXY names unknown {g}",
                    s.name
                );
            }
            // `|` only between two entries: after a named one, never after the last.
            for g in s.goproxy_pipe_after {
                let i = s.goproxy.iter().position(|o| o == g);
                assert!(
                    i.is_some_and(|i| i + 1 < s.goproxy.len()),
                    "{}: `|` after {g}, which is no GOPROXY entry followed by another",
                    s.name
                );
            }
            // Nothing listens on a closed entry: it is a GOPROXY entry, plain, with nothing
            // pointing at it and no request expected of it.
            for sv in s.servers.iter().filter(|sv| sv.def == ServerDef::Closed) {
                assert!(s.goproxy.contains(&sv.name), "{}: {}", s.name, sv.name);
                assert!(sv.tls.is_none() && !sv.http2, "{}: {}", s.name, sv.name);
                assert!(
                    s.specs(false).iter().all(|sp| sp.name != sv.name),
                    "{}: {} is started",
                    s.name,
                    sv.name
                );
                assert!(
                    s.servers.iter().any(|o| o.def != ServerDef::Closed),
                    "{}: only closed servers",
                    s.name
                );
            }
            // GOSUMDB: off, or the lab key, alone (through a proxy-sumdb in GOPROXY) or with
            // the URL of the scenario's sumdb server.
            let sumdb_ports: Vec<u16> = s
                .servers
                .iter()
                .filter(|sv| sv.def == ServerDef::SumDb)
                .map(|sv| sv.port)
                .collect();
            match s.gosumdb.split_once(' ') {
                _ if s.gosumdb == "off" => assert!(sumdb_ports.is_empty(), "{}", s.name),
                None => {
                    assert_eq!(s.gosumdb, LAB_KEY, "{}", s.name);
                    assert!(
                        s.goproxy.iter().any(|g| s
                            .servers
                            .iter()
                            .any(|o| o.name == *g && o.def == ServerDef::ProxyWithSumdb)),
                        "{}: GOSUMDB without URL needs a proxy-sumdb in GOPROXY",
                        s.name
                    );
                }
                Some((key, url)) => {
                    assert_eq!(key, LAB_KEY, "{}", s.name);
                    assert_eq!(
                        sumdb_ports
                            .iter()
                            .map(|p| format!("http://127.0.0.1:{p}"))
                            .collect::<Vec<_>>(),
                        vec![url.to_string()],
                        "{}: GOSUMDB URL is its sumdb server",
                        s.name
                    );
                }
            }
            if !s.expect_requests {
                assert!(
                    matches!(s.expect, GoOutcome::ErrorContains(_)),
                    "{}: no request and yet success?",
                    s.name
                );
            }
            assert!(matches!(s.interface, "lo" | "any"));
            for sv in s.servers {
                assert!(
                    !sv.http2 || sv.tls.is_some(),
                    "{}: {} offers h2 without TLS",
                    s.name,
                    sv.name
                );
                if sv.def == ServerDef::ConnectProxy {
                    assert!(sv.tls.is_none(), "{}: the connect proxy is plain", s.name);
                    assert!(
                        !s.goproxy.contains(&sv.name),
                        "{}: a connect proxy is no GOPROXY",
                        s.name
                    );
                }
            }
            if let Some(p) = s.https_proxy {
                assert!(
                    s.servers
                        .iter()
                        .any(|o| o.name == p && o.def == ServerDef::ConnectProxy),
                    "{}: HTTPS_PROXY names no connect proxy of the scenario",
                    s.name
                );
                // GOPROXY then names lab.test, which only the proxy resolves: every entry
                // must be an https:// server reached through it.
                for g in s.goproxy {
                    assert!(
                        s.servers.iter().any(|o| o.name == *g && o.tls.is_some()),
                        "{}: GOPROXY entry {g} is not reached through HTTPS_PROXY",
                        s.name
                    );
                }
                assert!(s.netns_hosts.is_empty(), "{}", s.name);
            } else {
                assert!(
                    !s.servers.iter().any(|o| o.def == ServerDef::ConnectProxy),
                    "{}: a connect proxy nobody uses",
                    s.name
                );
            }
            assert!(
                !s.embed_keys || s.uses_tls(),
                "{}: keys to embed need TLS",
                s.name
            );
        }
        assert_eq!(
            find("fallback-410").unwrap().goproxy_value(),
            "http://127.0.0.1:8082,http://127.0.0.1:8083"
        );
        assert!(find("nope").is_none());
        assert_eq!(
            find("tls13-verified").unwrap().goproxy_value(),
            "https://127.0.0.1:8093"
        );
        assert_eq!(find("goinsecure-goget").unwrap().goproxy_value(), "direct");
        assert_eq!(
            find("pipe-after-500").unwrap().goproxy_value(),
            "http://127.0.0.1:8120|http://127.0.0.1:8124"
        );
        assert_eq!(
            find("comma-after-500").unwrap().goproxy_value(),
            "http://127.0.0.1:8120,http://127.0.0.1:8124"
        );
        assert_eq!(
            find("proxies-then-direct").unwrap().goproxy_value(),
            "http://127.0.0.1:8127,direct"
        );
        let refused = find("pipe-after-refused").unwrap();
        assert_eq!(
            refused.goproxy_value(),
            "http://127.0.0.1:8125|http://127.0.0.1:8126"
        );
        assert_eq!(refused.ports(), vec![8125, 8126]);
        assert_eq!(refused.closed_ports(), vec![8125]);
        assert_eq!(refused.specs(false).len(), 1);
        assert_eq!(refused.specs(false)[0].name, "proxy");
        assert!(SCENARIOS
            .iter()
            .filter(|s| s.name != "pipe-after-refused")
            .all(|s| s.closed_ports().is_empty()));
        let direct = find("sumdb-direct").unwrap().gosumdb_value();
        assert!(
            direct.starts_with("sum.lab.test+") && direct.ends_with(" http://127.0.0.1:8102"),
            "{direct}"
        );
        assert!(find("tamper-sumdb-off").unwrap().tampers());
        assert!(!find("sumdb-direct").unwrap().tampers());
        assert!(find("sumdb-via-proxy").unwrap().uses_lab_sumdb());
        assert!(!find("mirrors-disagree").unwrap().uses_lab_sumdb());
        let h2 = find("h2-proxy-tls13").unwrap();
        assert_eq!(h2.goproxy_value(), "https://127.0.0.1:8108");
        assert_eq!(h2.https_proxy_value(), "");
        assert!(h2.uses_http2() && h2.trust_lab_ca && !h2.embed_keys);
        assert_eq!(h2.lab_options().http2, vec!["proxy".to_string()]);
        let c = find("connect-proxy-h2").unwrap();
        assert_eq!(c.goproxy_value(), "https://lab.test:8109");
        assert_eq!(c.https_proxy_value(), "http://127.0.0.1:8110");
        assert_eq!(c.tls_ports(), vec![8109]);
        assert_eq!(c.connect_ports(), vec![8110]);
        assert!(h2.connect_ports().is_empty());
        assert_eq!(c.ports(), vec![8109, 8110]);
        assert!(c.embed_keys && c.trust_lab_ca);
        assert_eq!(c.specs(false)[1].kind, ServerKind::Connect);
        assert!(find("tls13-verified")
            .unwrap()
            .lab_options()
            .http2
            .is_empty());
        assert!(SCENARIOS
            .iter()
            .filter(|s| !matches!(s.name, "h2-proxy-tls13" | "connect-proxy-h2"))
            .all(|s| !s.uses_http2() && s.https_proxy.is_none() && !s.embed_keys));
    }

    /// The new scenarios' ports are not used by any other scenario (each capture's ports
    /// identify it).
    #[test]
    fn integrity_scenarios_use_their_own_ports() {
        for name in [
            "sumdb-via-proxy",
            "sumdb-direct",
            "tamper-sumdb-on",
            "tamper-sumdb-off",
            "mirrors-disagree",
        ] {
            let s = find(name).unwrap();
            for p in s.ports() {
                assert!((8100..=8119).contains(&p), "{name}: {p}");
                for o in SCENARIOS.iter().filter(|o| o.name != name) {
                    assert!(
                        !o.ports().contains(&p),
                        "{name}: port {p} also in {}",
                        o.name
                    );
                }
            }
        }
    }

    /// Ports of scenarios that can run at the same time (all but the netns one, which has its
    /// own port space) are disjoint, except scenarios that are the same servers re-captured.
    #[test]
    fn tls_scenarios_use_their_own_ports() {
        let old: Vec<u16> = SCENARIOS
            .iter()
            .filter(|s| !s.uses_tls())
            .flat_map(|s| s.ports())
            .collect();
        let mut seen = std::collections::HashSet::new();
        for s in SCENARIOS
            .iter()
            .filter(|s| s.uses_tls() && s.netns_hosts.is_empty())
        {
            for p in s.ports() {
                assert!(
                    !old.contains(&p),
                    "{}: port {p} used by an older scenario",
                    s.name
                );
                assert!(seen.insert(p), "{}: port {p} used twice", s.name);
            }
        }
        assert_eq!(find("tls-mirror-expired").unwrap().tls_ports(), vec![8091]);
    }

    /// Training scenarios run beside any recorded one: ports of their own, and lesson halves
    /// that differ in the setting the lesson is about.
    #[test]
    fn training_scenarios_use_their_own_ports() {
        let recorded: Vec<u16> = SCENARIOS.iter().flat_map(|s| s.ports()).collect();
        let mut seen = std::collections::HashSet::new();
        for s in TRAINING {
            assert!(s.netns_hosts.is_empty(), "{}", s.name);
            for p in s.ports() {
                assert!((8111..=8119).contains(&p), "{}: {p}", s.name);
                assert!(!recorded.contains(&p), "{}: port {p} recorded too", s.name);
                assert!(seen.insert(p), "{}: port {p} twice", s.name);
            }
            assert_eq!(find(s.name).unwrap().name, s.name);
        }
        let (u, s) = (
            find("proxy-order-unsafe").unwrap(),
            find("proxy-order-safe").unwrap(),
        );
        assert_eq!((u.goprivate, u.gonoproxy), ("", ""));
        assert_eq!((s.goprivate, s.gonoproxy), (PRIVATE_PREFIX, "none"));
        assert_eq!(u.goproxy, ["public", "private"]);
        assert_eq!(s.goproxy, ["private", "public"]);
        assert_eq!(
            u.specs(false)[0].kind,
            ServerKind::ScopedProxy {
                scope: ModuleScope::Except(PRIVATE_PREFIX.into())
            }
        );
    }

    #[test]
    fn go_keys_scenarios_use_their_own_ports() {
        let others: Vec<u16> = SCENARIOS
            .iter()
            .chain(TRAINING)
            .flat_map(|s| s.ports())
            .collect();
        let mut seen = std::collections::HashSet::new();
        for s in GO_KEYS {
            assert!(s.uses_tls() && s.trust_lab_ca, "{}", s.name);
            for p in s.ports() {
                assert!(matches!(p, 8121..=8123 | 8128..=8129), "{}: {p}", s.name);
                assert!(!others.contains(&p), "{}: port {p} taken", s.name);
                assert!(seen.insert(p), "{}: port {p} twice", s.name);
            }
            assert_eq!(find(s.name).unwrap().name, s.name);
        }
        assert!(find("sumdb-https").unwrap().uses_lab_sumdb());
    }

    /// `|` after the entries `goproxy_pipe_after` names, `,` elsewhere; `direct` and `off`
    /// taken literally either way.
    #[test]
    fn goproxy_value_joins_with_pipe_where_asked() {
        const SERVERS: &[ScenarioServer] = &[
            plain("a", 8120, ServerDef::Gone(500)),
            plain("b", 8124, ServerDef::Proxy),
            tls(
                "c",
                8125,
                ServerDef::Proxy,
                TlsVersions::Tls13,
                CertKind::Valid,
            ),
        ];
        let with = |goproxy, goproxy_pipe_after| Scenario {
            servers: SERVERS,
            goproxy,
            goproxy_pipe_after,
            ..LESSON_DEFAULTS
        };
        assert_eq!(
            with(&["a", "b"], &["a"]).goproxy_value(),
            "http://127.0.0.1:8120|http://127.0.0.1:8124"
        );
        assert_eq!(
            with(&["a", "b", "c"], &["b"]).goproxy_value(),
            "http://127.0.0.1:8120,http://127.0.0.1:8124|https://127.0.0.1:8125"
        );
        assert_eq!(
            with(&["a", "b", "direct"], &["a", "b"]).goproxy_value(),
            "http://127.0.0.1:8120|http://127.0.0.1:8124|direct"
        );
        assert_eq!(
            with(&["a", "direct", "off"], &["direct"]).goproxy_value(),
            "http://127.0.0.1:8120,direct|off"
        );
        assert_eq!(
            with(&["a", "b"], &[]).goproxy_value(),
            "http://127.0.0.1:8120,http://127.0.0.1:8124"
        );
    }

    /// The GOPROXY-fallback scenarios (pipe-after-500, pipe-after-refused, comma-after-500,
    /// proxies-then-direct) sit on 8120-8127, apart from every other scenario (the go-keys
    /// ones use 8121-8123): pipe-after-500 and comma-after-500 are the same servers with
    /// another separator, so they share 8120/8124; proxies-then-direct runs in a netns of its
    /// own but its proxy port is unique too.
    #[test]
    fn fallback_scenarios_use_their_own_ports() {
        let names = [
            "pipe-after-500",
            "pipe-after-refused",
            "comma-after-500",
            "proxies-then-direct",
        ];
        let others: Vec<u16> = SCENARIOS
            .iter()
            .chain(TRAINING)
            .chain(GO_KEYS)
            .filter(|s| !names.contains(&s.name))
            .flat_map(|s| s.ports())
            .collect();
        let mut owner = std::collections::HashMap::new();
        for name in names {
            let s = find(name).unwrap();
            for p in s.ports() {
                if s.netns_hosts.is_empty() || !matches!(p, 80 | 443) {
                    assert!((8120..=8127).contains(&p), "{name}: {p}");
                    assert!(!others.contains(&p), "{name}: port {p} taken");
                    let first = *owner.entry(p).or_insert(name);
                    assert!(
                        first == name || (first, name) == ("pipe-after-500", "comma-after-500"),
                        "{name}: port {p} also in {first}"
                    );
                }
            }
        }
        let (pipe, comma) = (
            find("pipe-after-500").unwrap(),
            find("comma-after-500").unwrap(),
        );
        assert_eq!(pipe.ports(), comma.ports());
        assert_eq!(pipe.goproxy, comma.goproxy);
        assert_eq!(
            (pipe.goproxy_pipe_after, comma.goproxy_pipe_after),
            (&["fails"][..], &[][..])
        );
        assert_eq!(
            comma.expect,
            GoOutcome::ErrorContains(COMMA_AFTER_500_ERROR)
        );
        let direct = find("proxies-then-direct").unwrap();
        assert_eq!(direct.goproxy, ["notfound", "direct"]);
        assert_eq!(direct.netns_hosts, ["lab.test"]);
        assert_eq!(direct.ports(), vec![80, 443, 8127]);
        assert_eq!(direct.tls_ports(), vec![443]);
    }

    #[test]
    fn specs_resolve_kinds_and_ports() {
        let s = find("mirror-basic-auth").unwrap();
        let specs = s.specs(false);
        assert_eq!(specs[0].addr, "127.0.0.1:8086".parse().unwrap());
        assert_eq!(
            specs[1].kind,
            ServerKind::Proxy {
                prefix: String::new(),
                auth: Some(Credentials::lab_default())
            }
        );
        assert!(s.specs(true).iter().all(|sp| sp.addr.port() == 0));
    }
}
