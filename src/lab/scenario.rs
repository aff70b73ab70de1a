//! The lab's scenarios, as data in one place: which servers on which fixed ports, the GOPROXY
//! the go command gets, what it downloads, how the capture is taken, and what go should say.
//! `captures/record.sh` reads these through `modtrace lab env NAME`; trainers start them with
//! `modtrace lab serve --scenario NAME`.

use super::server::{Credentials, ServerKind, ServerSpec, Target, LAB_IP};
use std::net::SocketAddr;

/// What kind of server a scenario runs (the data form of [`ServerKind`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerDef {
    /// A GOPROXY serving lab/modules.
    Proxy,
    /// A GOPROXY serving lab/modules that requires the lab's Basic credentials.
    ProxyWithAuth,
    /// Answers this status (404 or 410) to everything.
    Gone(u16),
    /// 302 to the named server, same path.
    RedirectTo(&'static str),
    /// Relays from the named server with the lab's Basic credentials.
    MirrorOf(&'static str),
}

/// One server of a scenario.
#[derive(Clone, Copy, Debug)]
pub struct ScenarioServer {
    pub name: &'static str,
    pub port: u16,
    pub def: ServerDef,
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
    /// Server names joined with `,` into GOPROXY.
    pub goproxy: &'static [&'static str],
    pub gosumdb: &'static str,
    /// `module@version` arguments of `go mod download -json`.
    pub downloads: &'static [&'static str],
    /// tcpdump interface: `lo` (Ethernet framing) or `any` (Linux cooked v2).
    pub interface: &'static str,
    pub expect: GoOutcome,
}

/// The two modules every scenario downloads; upper case in both paths, so the wire shows
/// `%21`-escaped `!` forms.
pub const BOTH_MODULES: &[&str] = &["example.test/Hello@v1.1.0", "example.test/Util@v0.2.0"];

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "plaintext-proxy",
        summary: "one plain-HTTP GOPROXY serves both modules; GOSUMDB=off",
        servers: &[ScenarioServer { name: "proxy", port: 8081, def: ServerDef::Proxy }],
        goproxy: &["proxy"],
        gosumdb: "off",
        downloads: BOTH_MODULES,
        interface: "lo",
        expect: GoOutcome::Success,
    },
    Scenario {
        name: "fallback-410",
        summary: "GOPROXY=gone,proxy: the first answers 410 to everything, the go command falls back to the second",
        servers: &[
            ScenarioServer { name: "gone", port: 8082, def: ServerDef::Gone(410) },
            ScenarioServer { name: "proxy", port: 8083, def: ServerDef::Proxy },
        ],
        goproxy: &["gone", "proxy"],
        gosumdb: "off",
        downloads: BOTH_MODULES,
        interface: "lo",
        expect: GoOutcome::Success,
    },
    Scenario {
        name: "redirect-loop",
        summary: "GOPROXY=redirect-a, which 302s to redirect-b, which 302s back: go stops after 10 redirects",
        servers: &[
            ScenarioServer { name: "redirect-a", port: 8084, def: ServerDef::RedirectTo("redirect-b") },
            ScenarioServer { name: "redirect-b", port: 8085, def: ServerDef::RedirectTo("redirect-a") },
        ],
        goproxy: &["redirect-a"],
        gosumdb: "off",
        downloads: BOTH_MODULES,
        interface: "lo",
        expect: GoOutcome::ErrorContains("stopped after 10 redirects"),
    },
    Scenario {
        name: "mirror-basic-auth",
        summary: "GOPROXY=mirror, which fetches each path from upstream over plain HTTP with Basic auth",
        servers: &[
            ScenarioServer { name: "mirror", port: 8086, def: ServerDef::MirrorOf("upstream") },
            ScenarioServer { name: "upstream", port: 8087, def: ServerDef::ProxyWithAuth },
        ],
        goproxy: &["mirror"],
        gosumdb: "off",
        downloads: BOTH_MODULES,
        interface: "lo",
        expect: GoOutcome::Success,
    },
    Scenario {
        name: "fallback-410-any",
        summary: "fallback-410 (same servers and ports) captured on -i any: Linux cooked v2 (SLL2) framing",
        servers: &[
            ScenarioServer { name: "gone", port: 8082, def: ServerDef::Gone(410) },
            ScenarioServer { name: "proxy", port: 8083, def: ServerDef::Proxy },
        ],
        goproxy: &["gone", "proxy"],
        gosumdb: "off",
        downloads: BOTH_MODULES,
        interface: "any",
        expect: GoOutcome::Success,
    },
];

pub fn find(name: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.name == name)
}

impl Scenario {
    /// The server specs on their fixed ports (`ephemeral_ports` puts port 0 everywhere, for tests
    /// that must not collide with a running lab).
    pub fn specs(&self, ephemeral_ports: bool) -> Vec<ServerSpec> {
        self.servers
            .iter()
            .map(|s| ServerSpec {
                name: s.name.to_string(),
                addr: SocketAddr::new(LAB_IP, if ephemeral_ports { 0 } else { s.port }),
                kind: match s.def {
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
                    },
                },
            })
            .collect()
    }

    /// GOPROXY for the fixed ports.
    pub fn goproxy_value(&self) -> String {
        self.goproxy
            .iter()
            .filter_map(|n| self.servers.iter().find(|s| s.name == *n))
            .map(|s| format!("http://{}:{}", LAB_IP, s.port))
            .collect::<Vec<_>>()
            .join(",")
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

    #[test]
    fn scenarios_are_consistent() {
        let mut names = std::collections::HashSet::new();
        for s in SCENARIOS {
            assert!(names.insert(s.name), "duplicate scenario {}", s.name);
            for sv in s.servers {
                assert!(
                    (8081..=8099).contains(&sv.port),
                    "{}: port {} outside 8081-8099",
                    s.name,
                    sv.port
                );
                if let ServerDef::RedirectTo(t) | ServerDef::MirrorOf(t) = sv.def {
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
                    s.servers.iter().any(|o| o.name == *g),
                    "{}: GOPROXY names unknown {g}",
                    s.name
                );
            }
            assert!(matches!(s.interface, "lo" | "any"));
        }
        assert_eq!(
            find("fallback-410").unwrap().goproxy_value(),
            "http://127.0.0.1:8082,http://127.0.0.1:8083"
        );
        assert!(find("nope").is_none());
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
