//! Helpers for integration tests: synthetic captures and running the modtrace binary.
#![allow(dead_code)]

pub mod root;
pub mod tmux;

use etherparse::PacketBuilder;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn modtrace() -> Command {
    Command::new(env!("CARGO_BIN_EXE_modtrace"))
}

pub fn run(args: &[&str]) -> Output {
    modtrace().args(args).output().expect("run modtrace")
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The bundled lab checksum database's verifier key (for `--sumdb-key`).
pub fn lab_sumdb_vkey() -> String {
    std::fs::read_to_string(repo().join("captures/lab-sumdb.vkey"))
        .unwrap()
        .trim()
        .to_string()
}

/// Writes a classic little-endian microsecond pcap with Ethernet frames.
pub fn write_pcap(path: &Path, frames: &[(u64, Vec<u8>)]) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for (us, f) in frames {
        out.extend_from_slice(&((us / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((us % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(f);
    }
    std::fs::write(path, out).unwrap();
}

/// Builds the frames of one TCP connection: handshake, the client's bytes, the server's
/// bytes, FIN both ways. Times in microseconds from `t0`.
pub struct Conn {
    pub client: ([u8; 4], u16),
    pub server: ([u8; 4], u16),
    cseq: u32,
    sseq: u32,
    pub frames: Vec<(u64, Vec<u8>)>,
    t: u64,
}

impl Conn {
    pub fn new(client: ([u8; 4], u16), server: ([u8; 4], u16), t0: u64) -> Conn {
        let mut c = Conn {
            client,
            server,
            cseq: 1000,
            sseq: 5000,
            frames: Vec::new(),
            t: t0,
        };
        c.seg(true, true, false, false, &[]);
        c.cseq = c.cseq.wrapping_add(1);
        c.seg(false, true, true, false, &[]);
        c.sseq = c.sseq.wrapping_add(1);
        c.seg(true, false, true, false, &[]);
        c
    }

    fn seg(&mut self, from_client: bool, syn: bool, ack: bool, fin: bool, payload: &[u8]) {
        let (src, dst) = if from_client {
            (self.client, self.server)
        } else {
            (self.server, self.client)
        };
        let (seq, ackn) = if from_client {
            (self.cseq, self.sseq)
        } else {
            (self.sseq, self.cseq)
        };
        let mut b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(src.0, dst.0, 64)
            .tcp(src.1, dst.1, seq, 65535);
        if syn {
            b = b.syn();
        }
        if ack {
            b = b.ack(ackn);
        }
        if fin {
            b = b.fin();
        }
        let mut buf = Vec::new();
        b.write(&mut buf, payload).unwrap();
        self.frames.push((self.t, buf));
        self.t += 100;
    }

    /// Sends `data` from one side in segments of at most 1400 bytes.
    pub fn send(&mut self, from_client: bool, data: &[u8]) -> &mut Self {
        for chunk in data.chunks(1400) {
            self.seg(from_client, false, true, false, chunk);
            if from_client {
                self.cseq = self.cseq.wrapping_add(chunk.len() as u32);
            } else {
                self.sseq = self.sseq.wrapping_add(chunk.len() as u32);
            }
        }
        self
    }

    /// Sends `payload` from one side again at the sequence number `back` bytes before the
    /// next one, as an on-path device racing a forged segment would: the stream does not
    /// advance.
    pub fn resend(&mut self, from_client: bool, back: u32, payload: &[u8]) -> &mut Self {
        let seq = if from_client {
            &mut self.cseq
        } else {
            &mut self.sseq
        };
        let next = *seq;
        *seq = next.wrapping_sub(back);
        self.seg(from_client, false, true, false, payload);
        let seq = if from_client {
            &mut self.cseq
        } else {
            &mut self.sseq
        };
        *seq = next;
        self
    }

    pub fn close(&mut self) -> &mut Self {
        self.seg(true, false, true, true, &[]);
        self.cseq = self.cseq.wrapping_add(1);
        self.seg(false, false, true, true, &[]);
        self.sseq = self.sseq.wrapping_add(1);
        self
    }
}

/// A plain-HTTP GET and its response on a new connection.
#[allow(clippy::too_many_arguments)]
pub fn http_get(
    t0: u64,
    cport: u16,
    server: ([u8; 4], u16),
    host: &str,
    target: &str,
    extra_req: &str,
    status: &str,
    resp_headers: &str,
    body: &[u8],
) -> Vec<(u64, Vec<u8>)> {
    let mut c = Conn::new(([127, 0, 0, 1], cport), server, t0);
    let req = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Go-http-client/1.1\r\n{extra_req}Accept-Encoding: gzip\r\n\r\n");
    c.send(true, req.as_bytes());
    let mut resp = format!(
        "HTTP/1.1 {status}\r\n{resp_headers}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    resp.extend_from_slice(body);
    c.send(false, &resp);
    c.close();
    c.frames
}

/// A fallback chain like GOPROXY=http://127.0.0.1:8082,http://127.0.0.1:8083 produces.
pub fn fallback_capture(dir: &Path) -> PathBuf {
    let p = dir.join("fallback.pcap");
    let mut frames = Vec::new();
    frames.extend(http_get(
        1_000_000,
        40001,
        ([127, 0, 0, 1], 8082),
        "127.0.0.1:8082",
        "/example.test/%21util/@v/v0.2.0.zip",
        "",
        "410 Gone",
        "",
        b"gone\n",
    ));
    frames.extend(http_get(
        2_000_000,
        40002,
        ([127, 0, 0, 1], 8083),
        "127.0.0.1:8083",
        "/example.test/%21util/@v/v0.2.0.zip",
        "Authorization: Basic bWlycm9yOmxhYi1zZWNyZXQtWnE3\r\n",
        "200 OK",
        "Content-Type: application/zip\r\n",
        &[0x50; 3000],
    ));
    write_pcap(&p, &frames);
    p
}

/// What a bundled (or re-recorded) capture must give. `findings` are `"rule subject"` strings,
/// subject = `module@version`, `module`, or `-`, one per finding, order free.
pub struct Expect {
    pub name: &'static str,
    /// Options of the main list (`{dir}` and `{vkey}`, the lab checksum database's key, are
    /// filled in); most captures have none.
    pub args: &'static [&'static str],
    pub modules: &'static [&'static str],
    pub findings: &'static [&'static str],
    /// Ports of lab servers that spoke TLS: the requests they logged travelled inside TLS and
    /// are not visible without keys.
    pub tls_ports: &'static [u16],
    /// Further analyze options (`{dir}` stands for the capture's folder) and the findings they
    /// give.
    pub variants: &'static [Variant],
    /// Analyses with the key log (`--keylog {dir}/NAME.keys`, or keys embedded in a pcapng):
    /// every request the lab logged, over TLS too, must then be an exchange, every module's
    /// h1 must be the go command's `Sum`, and the findings are these. The first one is what
    /// captures/README.md lists under "Expected findings with the key log".
    pub keyed: &'static [Variant],
}

pub struct Variant {
    pub args: &'static [&'static str],
    pub findings: &'static [&'static str],
}

/// The captures and their findings; captures/README.md documents the same lists (a test
/// checks that it does).
/// fallback-410 and fallback-410-any are the same traffic in two link types.
const FALLBACK_FINDINGS: &[&str] = &[
    "plaintext-module-fetch example.test/Hello@v1.1.0",
    "plaintext-module-fetch example.test/Hello@v1.1.0",
    "plaintext-module-fetch example.test/Util@v0.2.0",
    "plaintext-module-fetch example.test/Util@v0.2.0",
    "proxy-fallback example.test/Hello@v1.1.0",
    "proxy-fallback example.test/Hello@v1.1.0",
    "proxy-fallback example.test/Hello@v1.1.0",
    "proxy-fallback example.test/Util@v0.2.0",
    "proxy-fallback example.test/Util@v0.2.0",
    "proxy-fallback example.test/Util@v0.2.0",
    "no-checksum-verification example.test/Hello@v1.1.0",
    "no-checksum-verification example.test/Util@v0.2.0",
];

/// pipe-after-500: every operation of both modules falls back after a 500 (a `|` list).
const PIPE_AFTER_500_FINDINGS: &[&str] = &[
    "plaintext-module-fetch example.test/Hello@v1.1.0",
    "plaintext-module-fetch example.test/Hello@v1.1.0",
    "plaintext-module-fetch example.test/Util@v0.2.0",
    "plaintext-module-fetch example.test/Util@v0.2.0",
    "no-checksum-verification example.test/Hello@v1.1.0",
    "no-checksum-verification example.test/Util@v0.2.0",
    "proxy-fallback example.test/Hello@v1.1.0",
    "proxy-fallback example.test/Hello@v1.1.0",
    "proxy-fallback example.test/Hello@v1.1.0",
    "proxy-fallback example.test/Util@v0.2.0",
    "proxy-fallback example.test/Util@v0.2.0",
    "proxy-fallback example.test/Util@v0.2.0",
];

/// pipe-after-refused: nothing on the first entry; the second serves, over plain HTTP.
const PIPE_AFTER_REFUSED_FINDINGS: &[&str] = &[
    "plaintext-module-fetch example.test/Hello@v1.1.0",
    "plaintext-module-fetch example.test/Util@v0.2.0",
    "no-checksum-verification example.test/Hello@v1.1.0",
    "no-checksum-verification example.test/Util@v0.2.0",
    "proxy-fallback example.test/Hello@v1.1.0",
    "proxy-fallback example.test/Hello@v1.1.0",
    "proxy-fallback example.test/Hello@v1.1.0",
    "proxy-fallback example.test/Util@v0.2.0",
    "proxy-fallback example.test/Util@v0.2.0",
    "proxy-fallback example.test/Util@v0.2.0",
];

/// proxies-then-direct without keys: the go-get discovery is inside TLS.
const PROXIES_THEN_DIRECT_FINDINGS: &[&str] = &[
    "plaintext-module-fetch lab.test/Hello@v1.1.0",
    "plaintext-module-fetch lab.test/Hello@v1.1.0",
    "plaintext-module-fetch lab.test/Util@v0.2.0",
    "plaintext-module-fetch lab.test/Util@v0.2.0",
    "no-checksum-verification lab.test/Hello@v1.1.0",
    "no-checksum-verification lab.test/Util@v0.2.0",
    "unverified-tls -",
    "proxy-fallback lab.test/Hello@v1.1.0",
    "proxy-fallback lab.test/Hello@v1.1.0",
    "proxy-fallback lab.test/Hello@v1.1.0",
    "proxy-fallback lab.test/Util@v0.2.0",
    "proxy-fallback lab.test/Util@v0.2.0",
    "proxy-fallback lab.test/Util@v0.2.0",
];

pub const EXPECTED: &[Expect] = &[
    Expect {
        name: "plaintext-proxy",
        args: &[],
        modules: &["example.test/Hello@v1.1.0", "example.test/Util@v0.2.0"],
        findings: &[
            "plaintext-module-fetch example.test/Hello@v1.1.0",
            "plaintext-module-fetch example.test/Util@v0.2.0",
            "no-checksum-verification example.test/Hello@v1.1.0",
            "no-checksum-verification example.test/Util@v0.2.0",
        ],
        tls_ports: &[],
        variants: &[],
        keyed: &[],
    },
    Expect {
        name: "fallback-410",
        args: &[],
        modules: &["example.test/Hello@v1.1.0", "example.test/Util@v0.2.0"],
        findings: FALLBACK_FINDINGS,
        tls_ports: &[],
        variants: &[],
        keyed: &[],
    },
    Expect {
        name: "fallback-410-any",
        args: &[],
        modules: &["example.test/Hello@v1.1.0", "example.test/Util@v0.2.0"],
        findings: FALLBACK_FINDINGS,
        tls_ports: &[],
        variants: &[],
        keyed: &[],
    },
    Expect {
        name: "redirect-loop",
        args: &[],
        modules: &["example.test/Hello@v1.1.0", "example.test/Util@v0.2.0"],
        findings: &[
            "plaintext-module-fetch example.test/Hello@v1.1.0",
            "plaintext-module-fetch example.test/Hello@v1.1.0",
            "plaintext-module-fetch example.test/Util@v0.2.0",
            "plaintext-module-fetch example.test/Util@v0.2.0",
            "redirect-loop example.test/Hello@v1.1.0",
            "redirect-loop example.test/Util@v0.2.0",
            "redirect-limit example.test/Hello@v1.1.0",
            "redirect-limit example.test/Util@v0.2.0",
        ],
        tls_ports: &[],
        variants: &[],
        keyed: &[],
    },
    Expect {
        name: "mirror-basic-auth",
        args: &[],
        modules: &["example.test/Hello@v1.1.0", "example.test/Util@v0.2.0"],
        findings: &[
            "plaintext-module-fetch example.test/Hello@v1.1.0",
            "plaintext-module-fetch example.test/Hello@v1.1.0",
            "plaintext-module-fetch example.test/Util@v0.2.0",
            "plaintext-module-fetch example.test/Util@v0.2.0",
            "credentials-in-plaintext -",
            "no-checksum-verification example.test/Hello@v1.1.0",
            "no-checksum-verification example.test/Util@v0.2.0",
        ],
        tls_ports: &[],
        variants: &[],
        keyed: &[],
    },
    Expect {
        name: "tls-mirror-selfsigned",
        args: &[],
        modules: &["example.test/Hello@v1.1.0", "example.test/Util@v0.2.0"],
        findings: &[
            "plaintext-module-fetch example.test/Hello@v1.1.0",
            "plaintext-module-fetch example.test/Util@v0.2.0",
            "no-checksum-verification example.test/Hello@v1.1.0",
            "no-checksum-verification example.test/Util@v0.2.0",
            "unverified-tls -",
        ],
        tls_ports: &[8089],
        variants: &[
            Variant {
                args: &["--go-env", "{dir}/tls-mirror-selfsigned.go-env.json"],
                findings: &[
                    "plaintext-module-fetch example.test/Hello@v1.1.0",
                    "plaintext-module-fetch example.test/Util@v0.2.0",
                    "no-checksum-verification example.test/Hello@v1.1.0",
                    "no-checksum-verification example.test/Util@v0.2.0",
                    "unverified-tls -",
                ],
            },
            Variant {
                args: &["--ca-file", "{dir}/lab-pki/lab-ca.pem"],
                findings: &[
                    "plaintext-module-fetch example.test/Hello@v1.1.0",
                    "plaintext-module-fetch example.test/Util@v0.2.0",
                    "no-checksum-verification example.test/Hello@v1.1.0",
                    "no-checksum-verification example.test/Util@v0.2.0",
                    "unverified-tls -",
                ],
            },
        ],
        keyed: &[Variant {
            args: &["--keylog", "{dir}/tls-mirror-selfsigned.keys"],
            findings: &[
                "plaintext-module-fetch example.test/Hello@v1.1.0",
                "plaintext-module-fetch example.test/Util@v0.2.0",
                "no-checksum-verification example.test/Hello@v1.1.0",
                "no-checksum-verification example.test/Util@v0.2.0",
                "unverified-tls -",
            ],
        }],
    },
    Expect {
        name: "tls-mirror-expired",
        args: &[],
        modules: &["example.test/Hello@v1.1.0", "example.test/Util@v0.2.0"],
        findings: &[
            "plaintext-module-fetch example.test/Hello@v1.1.0",
            "plaintext-module-fetch example.test/Util@v0.2.0",
            "no-checksum-verification example.test/Hello@v1.1.0",
            "no-checksum-verification example.test/Util@v0.2.0",
            "unverified-tls -",
        ],
        tls_ports: &[8091],
        variants: &[
            Variant {
                args: &["--go-env", "{dir}/tls-mirror-expired.go-env.json"],
                findings: &[
                    "plaintext-module-fetch example.test/Hello@v1.1.0",
                    "plaintext-module-fetch example.test/Util@v0.2.0",
                    "no-checksum-verification example.test/Hello@v1.1.0",
                    "no-checksum-verification example.test/Util@v0.2.0",
                    "unverified-tls -",
                ],
            },
            Variant {
                args: &["--ca-file", "{dir}/lab-pki/lab-ca.pem"],
                findings: &[
                    "plaintext-module-fetch example.test/Hello@v1.1.0",
                    "plaintext-module-fetch example.test/Util@v0.2.0",
                    "no-checksum-verification example.test/Hello@v1.1.0",
                    "no-checksum-verification example.test/Util@v0.2.0",
                    "unverified-tls -",
                ],
            },
        ],
        keyed: &[Variant {
            args: &["--keylog", "{dir}/tls-mirror-expired.keys"],
            findings: &[
                "plaintext-module-fetch example.test/Hello@v1.1.0",
                "plaintext-module-fetch example.test/Util@v0.2.0",
                "no-checksum-verification example.test/Hello@v1.1.0",
                "no-checksum-verification example.test/Util@v0.2.0",
                "unverified-tls -",
            ],
        }],
    },
    Expect {
        name: "goinsecure-goget",
        args: &[],
        modules: &["lab.test/Hello@v1.1.0", "lab.test/Util@v0.2.0"],
        findings: &[
            "plaintext-module-fetch lab.test/Hello@v1.1.0",
            "plaintext-module-fetch lab.test/Util@v0.2.0",
            "no-checksum-verification lab.test/Hello@v1.1.0",
            "no-checksum-verification lab.test/Util@v0.2.0",
            "unverified-tls -",
        ],
        tls_ports: &[443],
        variants: &[Variant {
            args: &["--go-env", "{dir}/goinsecure-goget.go-env.json"],
            findings: &[
                "plaintext-module-fetch lab.test/Hello@v1.1.0",
                "plaintext-module-fetch lab.test/Util@v0.2.0",
                "no-checksum-verification lab.test/Hello@v1.1.0",
                "no-checksum-verification lab.test/Util@v0.2.0",
                "unverified-tls -",
            ],
        }],
        keyed: &[Variant {
            args: &["--keylog", "{dir}/goinsecure-goget.keys"],
            findings: &[
                "plaintext-module-fetch lab.test/Hello@v1.1.0",
                "plaintext-module-fetch lab.test/Util@v0.2.0",
                "no-checksum-verification lab.test/Hello@v1.1.0",
                "no-checksum-verification lab.test/Util@v0.2.0",
                "unverified-tls -",
            ],
        }],
    },
    Expect {
        name: "tls-proxy-rejected",
        args: &[],
        modules: &[],
        findings: &["tls-rejected -"],
        tls_ports: &[8092],
        variants: &[Variant {
            args: &["--go-env", "{dir}/tls-proxy-rejected.go-env.json"],
            findings: &["tls-rejected -", "tls-interception -"],
        }],
        keyed: &[],
    },
    Expect {
        name: "tls13-verified",
        args: &[],
        modules: &[],
        findings: &["tls-certificate-hidden -"],
        tls_ports: &[8093],
        variants: &[Variant {
            args: &["--go-env", "{dir}/tls13-verified.go-env.json"],
            findings: &["tls-certificate-hidden -"],
        }],
        keyed: &[
            Variant {
                args: &[
                    "--keylog",
                    "{dir}/tls13-verified.keys",
                    "--ca-file",
                    "{dir}/lab-pki/lab-ca.pem",
                ],
                findings: &[
                    "no-checksum-verification example.test/Hello@v1.1.0",
                    "no-checksum-verification example.test/Util@v0.2.0",
                ],
            },
            Variant {
                args: &["--keylog", "{dir}/tls13-verified.keys"],
                findings: &[
                    "no-checksum-verification example.test/Hello@v1.1.0",
                    "no-checksum-verification example.test/Util@v0.2.0",
                    "unverified-tls -",
                ],
            },
        ],
    },
    Expect {
        name: "h2-proxy-tls13",
        args: &[],
        modules: &[],
        findings: &["tls-certificate-hidden -"],
        tls_ports: &[8108],
        variants: &[Variant {
            args: &["--go-env", "{dir}/h2-proxy-tls13.go-env.json"],
            findings: &["tls-certificate-hidden -"],
        }],
        keyed: &[
            Variant {
                args: &[
                    "--keylog",
                    "{dir}/h2-proxy-tls13.keys",
                    "--ca-file",
                    "{dir}/lab-pki/lab-ca.pem",
                ],
                findings: &[
                    "no-checksum-verification example.test/Hello@v1.1.0",
                    "no-checksum-verification example.test/Util@v0.2.0",
                ],
            },
            Variant {
                args: &["--keylog", "{dir}/h2-proxy-tls13.keys"],
                findings: &[
                    "no-checksum-verification example.test/Hello@v1.1.0",
                    "no-checksum-verification example.test/Util@v0.2.0",
                    "unverified-tls -",
                ],
            },
        ],
    },
    // A pcapng with its key log embedded: every analysis decrypts.
    Expect {
        name: "connect-proxy-h2",
        args: &[],
        modules: &["example.test/Hello@v1.1.0", "example.test/Util@v0.2.0"],
        findings: &[
            "no-checksum-verification example.test/Hello@v1.1.0",
            "no-checksum-verification example.test/Util@v0.2.0",
            "unverified-tls -",
        ],
        tls_ports: &[8109],
        variants: &[Variant {
            args: &["--go-env", "{dir}/connect-proxy-h2.go-env.json"],
            findings: &[
                "no-checksum-verification example.test/Hello@v1.1.0",
                "no-checksum-verification example.test/Util@v0.2.0",
                "unverified-tls -",
                "tls-interception -",
            ],
        }],
        keyed: &[Variant {
            args: &["--ca-file", "{dir}/lab-pki/lab-ca.pem"],
            findings: &[
                "no-checksum-verification example.test/Hello@v1.1.0",
                "no-checksum-verification example.test/Util@v0.2.0",
            ],
        }],
    },
    Expect {
        name: "sumdb-via-proxy",
        args: &["--sumdb-key", "{vkey}"],
        modules: &["example.test/Hello@v1.1.0", "example.test/Util@v0.2.0"],
        findings: &[
            "plaintext-module-fetch example.test/Hello@v1.1.0",
            "plaintext-module-fetch example.test/Util@v0.2.0",
            "plaintext-sumdb -",
        ],
        tls_ports: &[],
        variants: &[Variant {
            args: &[],
            findings: &[
                "plaintext-module-fetch example.test/Hello@v1.1.0",
                "plaintext-module-fetch example.test/Util@v0.2.0",
                "plaintext-sumdb -",
                "sumdb-unknown-key -",
            ],
        }],
        keyed: &[],
    },
    Expect {
        name: "sumdb-direct",
        args: &["--sumdb-key", "{vkey}"],
        modules: &["example.test/Hello@v1.1.0", "example.test/Util@v0.2.0"],
        findings: &[
            "plaintext-module-fetch example.test/Hello@v1.1.0",
            "plaintext-module-fetch example.test/Util@v0.2.0",
            "plaintext-sumdb -",
        ],
        tls_ports: &[],
        variants: &[Variant {
            args: &[],
            findings: &[
                "plaintext-module-fetch example.test/Hello@v1.1.0",
                "plaintext-module-fetch example.test/Util@v0.2.0",
                "plaintext-sumdb -",
                "sumdb-unknown-key -",
            ],
        }],
        keyed: &[],
    },
    Expect {
        name: "tamper-sumdb-on",
        args: &["--sumdb-key", "{vkey}"],
        modules: &["example.test/Hello@v1.1.0", "example.test/Util@v0.2.0"],
        findings: &[
            "plaintext-module-fetch example.test/Hello@v1.1.0",
            "plaintext-module-fetch example.test/Util@v0.2.0",
            "plaintext-sumdb -",
            "checksum-mismatch example.test/Hello@v1.1.0",
            "checksum-mismatch example.test/Util@v0.2.0",
        ],
        tls_ports: &[],
        variants: &[
            Variant {
                args: &[],
                findings: &[
                    "plaintext-module-fetch example.test/Hello@v1.1.0",
                    "plaintext-module-fetch example.test/Util@v0.2.0",
                    "plaintext-sumdb -",
                    "sumdb-unknown-key -",
                    "checksum-mismatch example.test/Hello@v1.1.0",
                    "checksum-mismatch example.test/Util@v0.2.0",
                ],
            },
            Variant {
                args: &[
                    "--sumdb-key",
                    "{vkey}",
                    "--go-sum",
                    "{dir}/tamper-sumdb-on.true.go.sum",
                ],
                findings: &[
                    "plaintext-module-fetch example.test/Hello@v1.1.0",
                    "plaintext-module-fetch example.test/Util@v0.2.0",
                    "plaintext-sumdb -",
                    "checksum-mismatch example.test/Hello@v1.1.0",
                    "checksum-mismatch example.test/Util@v0.2.0",
                ],
            },
        ],
        keyed: &[],
    },
    Expect {
        name: "tamper-sumdb-off",
        args: &[],
        modules: &["example.test/Hello@v1.1.0", "example.test/Util@v0.2.0"],
        findings: &[
            "plaintext-module-fetch example.test/Hello@v1.1.0",
            "plaintext-module-fetch example.test/Util@v0.2.0",
            "no-checksum-verification example.test/Hello@v1.1.0",
            "no-checksum-verification example.test/Util@v0.2.0",
        ],
        tls_ports: &[],
        variants: &[Variant {
            args: &["--go-sum", "{dir}/tamper-sumdb-off.true.go.sum"],
            findings: &[
                "plaintext-module-fetch example.test/Hello@v1.1.0",
                "plaintext-module-fetch example.test/Util@v0.2.0",
                "checksum-mismatch example.test/Hello@v1.1.0",
                "checksum-mismatch example.test/Util@v0.2.0",
            ],
        }],
        keyed: &[],
    },
    Expect {
        name: "mirrors-disagree",
        args: &[],
        modules: &["example.test/Hello@v1.1.0", "example.test/Util@v0.2.0"],
        findings: &[
            "plaintext-module-fetch example.test/Hello@v1.1.0",
            "plaintext-module-fetch example.test/Util@v0.2.0",
            "plaintext-module-fetch example.test/Hello@v1.1.0",
            "plaintext-module-fetch example.test/Util@v0.2.0",
            "mirror-inconsistency example.test/Hello@v1.1.0",
            "mirror-inconsistency example.test/Hello@v1.1.0",
            "mirror-inconsistency example.test/Util@v0.2.0",
            "checksum-mismatch example.test/Hello@v1.1.0",
            "no-checksum-verification example.test/Hello@v1.1.0",
            "no-checksum-verification example.test/Util@v0.2.0",
        ],
        tls_ports: &[],
        variants: &[Variant {
            args: &["--go-sum", "{dir}/mirrors-disagree.true.go.sum"],
            findings: &[
                "plaintext-module-fetch example.test/Hello@v1.1.0",
                "plaintext-module-fetch example.test/Util@v0.2.0",
                "plaintext-module-fetch example.test/Hello@v1.1.0",
                "plaintext-module-fetch example.test/Util@v0.2.0",
                "mirror-inconsistency example.test/Hello@v1.1.0",
                "mirror-inconsistency example.test/Hello@v1.1.0",
                "mirror-inconsistency example.test/Util@v0.2.0",
                "checksum-mismatch example.test/Hello@v1.1.0",
            ],
        }],
        keyed: &[],
    },
    Expect {
        name: "pipe-after-500",
        args: &[],
        modules: &["example.test/Hello@v1.1.0", "example.test/Util@v0.2.0"],
        findings: PIPE_AFTER_500_FINDINGS,
        tls_ports: &[],
        variants: &[Variant {
            args: &["--go-env", "{dir}/pipe-after-500.go-env.json"],
            findings: PIPE_AFTER_500_FINDINGS,
        }],
        keyed: &[],
    },
    Expect {
        name: "pipe-after-refused",
        args: &[],
        modules: &["example.test/Hello@v1.1.0", "example.test/Util@v0.2.0"],
        findings: PIPE_AFTER_REFUSED_FINDINGS,
        tls_ports: &[],
        variants: &[Variant {
            args: &["--go-env", "{dir}/pipe-after-refused.go-env.json"],
            findings: PIPE_AFTER_REFUSED_FINDINGS,
        }],
        keyed: &[],
    },
    Expect {
        name: "comma-after-500",
        args: &[],
        modules: &["example.test/Hello@v1.1.0", "example.test/Util@v0.2.0"],
        findings: &[
            "plaintext-module-fetch example.test/Hello@v1.1.0",
            "plaintext-module-fetch example.test/Util@v0.2.0",
        ],
        tls_ports: &[],
        variants: &[],
        keyed: &[],
    },
    Expect {
        name: "proxies-then-direct",
        args: &[],
        modules: &["lab.test/Hello@v1.1.0", "lab.test/Util@v0.2.0"],
        findings: PROXIES_THEN_DIRECT_FINDINGS,
        tls_ports: &[443],
        variants: &[],
        keyed: &[Variant {
            args: &["--keylog", "{dir}/proxies-then-direct.keys"],
            findings: &[
                "plaintext-module-fetch lab.test/Hello@v1.1.0",
                "plaintext-module-fetch lab.test/Hello@v1.1.0",
                "plaintext-module-fetch lab.test/Util@v0.2.0",
                "plaintext-module-fetch lab.test/Util@v0.2.0",
                "no-checksum-verification lab.test/Hello@v1.1.0",
                "no-checksum-verification lab.test/Util@v0.2.0",
                "unverified-tls -",
                "proxy-fallback lab.test/Hello@v1.1.0",
                "proxy-fallback lab.test/Hello@v1.1.0",
                "proxy-fallback lab.test/Hello@v1.1.0",
                "proxy-fallback lab.test/Hello@v1.1.0",
                "proxy-fallback lab.test/Util@v0.2.0",
                "proxy-fallback lab.test/Util@v0.2.0",
                "proxy-fallback lab.test/Util@v0.2.0",
                "proxy-fallback lab.test/Util@v0.2.0",
            ],
        }],
    },
];

pub fn analyze_json(path: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "analyze",
        path.to_str().unwrap(),
        "--format",
        "json",
        "--fail-on",
        "never",
    ];
    args.extend_from_slice(extra);
    let out = run(&args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "analyze {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON report")
}

fn subject(f: &serde_json::Value) -> String {
    match (f["module"].as_str(), f["version"].as_str()) {
        (Some(m), Some(v)) => format!("{m}@{v}"),
        (Some(m), None) => m.to_string(),
        _ => "-".to_string(),
    }
}

/// Checks one capture in `dir` against its expectation: every request the lab servers logged
/// is an exchange with the same server, target and status; the modules are decoded; the
/// findings are exactly the expected ones (ignoring none: info findings count too).
/// Both modules' info, mod and zip, each first failing on the first entry (`$a`) and then
/// answered 200 by the second.
macro_rules! walk {
    ($a:literal) => {
        [
            concat!("example.test/Hello@v1.1.0 #0 info ", $a),
            concat!("example.test/Hello@v1.1.0 #1 info 200 <- #0 ", $a),
            concat!("example.test/Hello@v1.1.0 #2 mod ", $a),
            concat!("example.test/Hello@v1.1.0 #3 mod 200 <- #2 ", $a),
            concat!("example.test/Hello@v1.1.0 #4 zip ", $a),
            concat!("example.test/Hello@v1.1.0 #5 zip 200 <- #4 ", $a),
            concat!("example.test/Util@v0.2.0 #0 info ", $a),
            concat!("example.test/Util@v0.2.0 #1 info 200 <- #0 ", $a),
            concat!("example.test/Util@v0.2.0 #2 mod ", $a),
            concat!("example.test/Util@v0.2.0 #3 mod 200 <- #2 ", $a),
            concat!("example.test/Util@v0.2.0 #4 zip ", $a),
            concat!("example.test/Util@v0.2.0 #5 zip 200 <- #4 ", $a),
        ]
    };
}

/// The journeys of captures that show the walk of a GOPROXY list, attempt by attempt: one
/// line per hop, `module@version #i op status-or-failure`, then `<- #j cause` for a fallback
/// link. Checked on the bundled capture and on every re-recording (no options).
pub const JOURNEYS: &[(&str, &[&str])] = &[
    ("pipe-after-500", &walk!("500")),
    ("pipe-after-refused", &walk!("refused")),
    (
        "comma-after-500",
        &[
            "example.test/Hello@v1.1.0 #0 info 500",
            "example.test/Util@v0.2.0 #0 info 500",
        ],
    ),
    (
        "proxies-then-direct",
        &[
            "lab.test/Hello@v1.1.0 #0 info 404",
            "lab.test/Hello@v1.1.0 #1 info 200 <- #0 404",
            "lab.test/Hello@v1.1.0 #2 mod 404",
            "lab.test/Hello@v1.1.0 #3 mod 200 <- #2 404",
            "lab.test/Hello@v1.1.0 #4 zip 404",
            "lab.test/Hello@v1.1.0 #5 zip 200 <- #4 404",
            "lab.test/Util@v0.2.0 #0 info 404",
            "lab.test/Util@v0.2.0 #1 info 200 <- #0 404",
            "lab.test/Util@v0.2.0 #2 mod 404",
            "lab.test/Util@v0.2.0 #3 mod 200 <- #2 404",
            "lab.test/Util@v0.2.0 #4 zip 404",
            "lab.test/Util@v0.2.0 #5 zip 200 <- #4 404",
        ],
    ),
];

/// The JOURNEYS lines of a JSON report.
pub fn journey_lines(j: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    for m in j["modules"].as_array().unwrap() {
        let label = format!(
            "{}@{}",
            m["module"].as_str().unwrap_or("-"),
            m["version"].as_str().unwrap_or("-")
        );
        for (i, h) in m["journey"].as_array().unwrap().iter().enumerate() {
            let what = match (h["failed"]["failure"].as_str(), h["status"].as_u64()) {
                (Some(f), _) => f.to_string(),
                (None, Some(s)) => s.to_string(),
                (None, None) => "---".to_string(),
            };
            let mut line = format!("{label} #{i} {} {what}", h["op"].as_str().unwrap());
            if h["after"]["kind"] == "fallback" {
                line += &format!(
                    " <- #{} {}",
                    h["after"]["from"],
                    h["after"]["cause"].as_str().unwrap()
                );
            }
            out.push(line);
        }
    }
    out
}

pub fn check_capture(dir: &Path, e: &Expect) {
    let pcap = ["pcap", "pcapng"]
        .iter()
        .map(|x| dir.join(format!("{}.{x}", e.name)))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("{}: no capture in {}", e.name, dir.display()));
    let fill = |args: &[&str]| -> Vec<String> {
        let vkey = std::fs::read_to_string(dir.join("lab-sumdb.vkey")).unwrap_or_default();
        args.iter()
            .map(|a| {
                a.replace("{dir}", dir.to_str().unwrap())
                    .replace("{vkey}", vkey.trim())
            })
            .collect()
    };
    let main_args = fill(e.args);
    let j = analyze_json(
        &pcap,
        &main_args.iter().map(String::as_str).collect::<Vec<_>>(),
    );

    // 1. Each request the lab logged outside TLS is in the capture's exchanges.
    let log = dir.join(format!("{}.lab.jsonl", e.name));
    let logged = check_logged_requests(&log, e.name, &j, e.tls_ports, "no options");
    assert!(
        logged > 0 || e.modules.is_empty(),
        "{}: no plaintext request in the lab log",
        e.name
    );

    // 2. Modules, and the walk of the GOPROXY list where it is the point of the capture.
    check_modules(e, &j, "no options");
    if let Some((_, want)) = JOURNEYS.iter().find(|(n, _)| *n == e.name) {
        assert_eq!(journey_lines(&j), *want, "{}: journeys", e.name);
    }

    // 3. Findings, exactly, with no options and with each variant's.
    assert_findings(&j, e.findings, &format!("{} (no options)", e.name));
    for v in e.variants {
        let args = fill(v.args);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let j = analyze_json(&pcap, &args);
        assert_findings(&j, v.findings, &format!("{} {}", e.name, v.args.join(" ")));
    }

    // 4. With the key log: everything, TLS included.
    for v in e.keyed {
        let args = fill(v.args);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let j = analyze_json(&pcap, &args);
        let what = format!("{} {}", e.name, v.args.join(" "));
        let logged = check_logged_requests(&log, e.name, &j, &[], &what);
        assert!(logged > 0, "{what}: nothing in the lab log");
        let undecrypted: Vec<&serde_json::Value> = j["tls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["decryption"]["records_decrypted"].as_u64().unwrap_or(0) == 0)
            .filter(|t| t["accepted"] == serde_json::Value::Bool(true))
            .collect();
        assert!(
            undecrypted.is_empty(),
            "{what}: accepted TLS sessions not decrypted: {undecrypted:?}"
        );
        check_sums_match_go(dir, e, &j, &what);
        assert_findings(&j, v.findings, &what);
    }
}

/// Every request in the lab's log `log` (but those to `skip_ports`) is an exchange with the
/// same server, path, status and method. Returns how many were checked.
fn check_logged_requests(
    log: &Path,
    name: &str,
    j: &serde_json::Value,
    skip_ports: &[u16],
    what: &str,
) -> usize {
    let exchanges = j["exchanges"].as_array().unwrap();
    let log = std::fs::read_to_string(log).expect("lab log");
    let mut unmatched: Vec<&serde_json::Value> = exchanges.iter().collect();
    let mut logged = 0;
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        let port: u16 = r["listen"]
            .as_str()
            .unwrap()
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        if skip_ports.contains(&port) {
            continue;
        }
        logged += 1;
        let pos = unmatched.iter().position(|x| {
            let path = if x["method"] == "CONNECT" {
                x["url"].as_str().unwrap_or("").to_string()
            } else {
                let url = x["url"].as_str().unwrap_or("");
                url.splitn(4, '/')
                    .nth(3)
                    .map(|p| format!("/{p}"))
                    .unwrap_or_default()
            };
            x["server"] == r["listen"]
                && path == r["target"].as_str().unwrap()
                && x["status"] == r["status"]
                && x["method"] == r["method"]
        });
        match pos {
            Some(i) => {
                unmatched.remove(i);
            }
            None => panic!("{name} ({what}): logged request not among the exchanges: {line}"),
        }
    }
    logged
}

fn check_modules(e: &Expect, j: &serde_json::Value, what: &str) {
    let mut mods: Vec<String> = j["modules"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| {
            m["version"]
                .as_str()
                .map(|v| format!("{}@{v}", m["module"].as_str().unwrap()))
        })
        .collect();
    mods.sort();
    mods.dedup();
    let mut want: Vec<String> = e.modules.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(mods, want, "{} ({what}): modules", e.name);
}

/// The report's modules are exactly those the go command downloaded (NAME.go.json), with the
/// same h1 values (`Sum`, `GoModSum`).
fn check_sums_match_go(dir: &Path, e: &Expect, j: &serde_json::Value, what: &str) {
    let text = std::fs::read_to_string(dir.join(format!("{}.go.json", e.name))).unwrap();
    let mut checked = 0;
    let mut go_modules = Vec::new();
    for g in serde_json::Deserializer::from_str(&text).into_iter::<serde_json::Value>() {
        let g = g.unwrap();
        let (Some(path), Some(version), Some(sum)) =
            (g["Path"].as_str(), g["Version"].as_str(), g["Sum"].as_str())
        else {
            continue;
        };
        go_modules.push(format!("{path}@{version}"));
        let m = j["modules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["module"] == path && m["version"] == version)
            .unwrap_or_else(|| panic!("{} ({what}): no module {path}@{version}", e.name));
        assert_eq!(m["h1"], sum, "{} ({what}): h1 of {path}@{version}", e.name);
        assert_eq!(
            m["mod_h1"], g["GoModSum"],
            "{} ({what}): go.mod h1 of {path}@{version}",
            e.name
        );
        checked += 1;
    }
    let mut mods: Vec<String> = j["modules"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| {
            m["version"]
                .as_str()
                .map(|v| format!("{}@{v}", m["module"].as_str().unwrap()))
        })
        .collect();
    mods.sort();
    mods.dedup();
    go_modules.sort();
    assert_eq!(mods, go_modules, "{} ({what}): modules", e.name);
    assert!(checked > 0, "{} ({what}): no go sums", e.name);
}

fn assert_findings(j: &serde_json::Value, want: &[&str], what: &str) {
    let mut got: Vec<String> = j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| format!("{} {}", f["rule"].as_str().unwrap(), subject(f)))
        .collect();
    got.sort();
    let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(got, want, "{what}: findings");
}

/// A training lesson half (captures/training/LESSON.HALF.pcapng, recorded by `modtrace lab run
/// LESSON --record`): its findings with the lessons' analysis flags ([`training_args`]) and
/// what the go command said.
pub struct TrainingExpect {
    pub lesson: &'static str,
    pub half: &'static str,
    pub findings: &'static [&'static str],
    /// go exits 0 (else non-zero).
    pub go_succeeds: bool,
    /// Text in go's output when it fails.
    pub go_error: Option<&'static str>,
}

impl TrainingExpect {
    pub fn file_stem(&self) -> String {
        format!("{}.{}", self.lesson, self.half)
    }
}

pub const TRAINING: &[TrainingExpect] = &[
    TrainingExpect {
        lesson: "sumdb-off",
        half: "unsafe",
        findings: &[
            "checksum-mismatch example.test/Hello@v1.1.0",
            "checksum-mismatch example.test/Util@v0.2.0",
            "plaintext-module-fetch example.test/Hello@v1.1.0",
            "plaintext-module-fetch example.test/Util@v0.2.0",
        ],
        go_succeeds: true,
        go_error: None,
    },
    TrainingExpect {
        lesson: "sumdb-off",
        half: "safe",
        findings: &[
            "checksum-mismatch example.test/Hello@v1.1.0",
            "checksum-mismatch example.test/Util@v0.2.0",
            "plaintext-module-fetch example.test/Hello@v1.1.0",
            "plaintext-module-fetch example.test/Util@v0.2.0",
            "plaintext-sumdb -",
        ],
        go_succeeds: false,
        go_error: Some("SECURITY ERROR"),
    },
    TrainingExpect {
        lesson: "mitm-legs",
        half: "unsafe",
        findings: &[
            "plaintext-module-fetch example.test/Hello@v1.1.0",
            "plaintext-module-fetch example.test/Util@v0.2.0",
            "unverified-tls -",
        ],
        go_succeeds: true,
        go_error: None,
    },
    TrainingExpect {
        lesson: "mitm-legs",
        half: "safe",
        findings: &[],
        go_succeeds: true,
        go_error: None,
    },
    TrainingExpect {
        lesson: "proxy-order",
        half: "unsafe",
        findings: &[
            "plaintext-module-fetch corp.lab.test/Billing@v1.0.0",
            "plaintext-module-fetch corp.lab.test/Billing@v1.0.0",
            "plaintext-module-fetch example.test/Hello@v1.1.0",
            "private-module-leak corp.lab.test/Billing@v1.0.0",
            "proxy-fallback corp.lab.test/Billing@v1.0.0",
            "proxy-fallback corp.lab.test/Billing@v1.0.0",
            "proxy-fallback corp.lab.test/Billing@v1.0.0",
        ],
        go_succeeds: true,
        go_error: None,
    },
    TrainingExpect {
        lesson: "proxy-order",
        half: "safe",
        findings: &[
            "plaintext-module-fetch corp.lab.test/Billing@v1.0.0",
            "plaintext-module-fetch example.test/Hello@v1.1.0",
            "plaintext-module-fetch example.test/Hello@v1.1.0",
            "proxy-fallback example.test/Hello@v1.1.0",
            "proxy-fallback example.test/Hello@v1.1.0",
            "proxy-fallback example.test/Hello@v1.1.0",
        ],
        go_succeeds: true,
        go_error: None,
    },
    TrainingExpect {
        lesson: "redirect-loop",
        half: "unsafe",
        findings: &[
            "plaintext-module-fetch example.test/Hello@v1.1.0",
            "plaintext-module-fetch example.test/Hello@v1.1.0",
            "plaintext-module-fetch example.test/Util@v0.2.0",
            "plaintext-module-fetch example.test/Util@v0.2.0",
            "redirect-limit example.test/Hello@v1.1.0",
            "redirect-limit example.test/Util@v0.2.0",
            "redirect-loop example.test/Hello@v1.1.0",
            "redirect-loop example.test/Util@v0.2.0",
        ],
        go_succeeds: false,
        go_error: Some("stopped after 10 redirects"),
    },
    TrainingExpect {
        lesson: "redirect-loop",
        half: "safe",
        findings: &[
            "plaintext-module-fetch example.test/Hello@v1.1.0",
            "plaintext-module-fetch example.test/Hello@v1.1.0",
            "plaintext-module-fetch example.test/Util@v0.2.0",
            "plaintext-module-fetch example.test/Util@v0.2.0",
        ],
        go_succeeds: true,
        go_error: None,
    },
    TrainingExpect {
        lesson: "creds-on-wire",
        half: "unsafe",
        findings: &[
            "credentials-in-plaintext -",
            "plaintext-module-fetch example.test/Hello@v1.1.0",
            "plaintext-module-fetch example.test/Hello@v1.1.0",
            "plaintext-module-fetch example.test/Util@v0.2.0",
            "plaintext-module-fetch example.test/Util@v0.2.0",
        ],
        go_succeeds: true,
        go_error: None,
    },
    TrainingExpect {
        lesson: "creds-on-wire",
        half: "safe",
        findings: &[],
        go_succeeds: true,
        go_error: None,
    },
];

/// The flags every lesson recording is analysed with (`modtrace::lesson::analysis_args`),
/// from a folder laid out like captures/: the lab CA, the lab checksum database's key, the
/// go.sum a team would have committed, the lab policy.
pub fn training_args(captures: &Path) -> Vec<String> {
    modtrace::lesson::analysis_args(captures)
}

/// Checks one lesson half recorded in `dir` (LESSON.HALF.pcapng and its .lab.jsonl, .go.json,
/// .go.stderr, .go.exit), analysed with `args`: every request the lab logged is an exchange
/// (TLS ones too: the secrets are embedded), the findings are exactly the expected ones, the
/// modules and their h1 are what go reported, and go's exit and error text are the lesson's.
pub fn check_training(dir: &Path, args: &[String], e: &TrainingExpect) {
    let stem = e.file_stem();
    let pcap = dir.join(format!("{stem}.pcapng"));
    let what = format!("training {stem}");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let j = analyze_json(&pcap, &args);
    let logged = check_logged_requests(
        &dir.join(format!("{stem}.lab.jsonl")),
        &stem,
        &j,
        &[],
        &what,
    );
    assert!(logged > 0, "{what}: nothing in the lab log");
    assert_findings(&j, e.findings, &what);
    let exit = std::fs::read_to_string(dir.join(format!("{stem}.go.exit"))).unwrap();
    assert_eq!(
        exit.trim() == "0",
        e.go_succeeds,
        "{what}: go exited {exit}"
    );
    let out = std::fs::read_to_string(dir.join(format!("{stem}.go.json"))).unwrap()
        + &std::fs::read_to_string(dir.join(format!("{stem}.go.stderr"))).unwrap();
    for text in ["SECURITY ERROR", "stopped after 10 redirects"] {
        assert_eq!(
            out.contains(text),
            e.go_error == Some(text),
            "{what}: {text:?} in go's output: {out}"
        );
    }
    // What go downloaded is what the report says (when it downloaded anything).
    if e.go_succeeds {
        for g in serde_json::Deserializer::from_str(&out).into_iter::<serde_json::Value>() {
            let Ok(g) = g else { break };
            let (Some(path), Some(version)) = (g["Path"].as_str(), g["Version"].as_str()) else {
                continue;
            };
            let m = j["modules"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["module"] == path && m["version"] == version)
                .unwrap_or_else(|| panic!("{what}: no module {path}@{version}"));
            assert_eq!(m["h1"], g["Sum"], "{what}: h1 of {path}@{version}");
        }
    }
}

/// tshark's request URIs in a capture, HTTP/1.1 and HTTP/2 (`decode`: its `-d` arguments for
/// the lab's ports), decrypting with `keylog` and what the file itself carries.
pub fn tshark_uris(
    capture: &Path,
    keylog: Option<&Path>,
    decode: &[String],
) -> std::collections::BTreeSet<String> {
    let mut uris = std::collections::BTreeSet::new();
    for (filter, field) in [
        ("http.request", "http.request.uri"),
        ("http2.type == 1", "http2.headers.path"),
    ] {
        let mut cmd = std::process::Command::new("tshark");
        cmd.arg("-n").arg("-r").arg(capture);
        if let Some(k) = keylog {
            cmd.arg("-o")
                .arg(format!("tls.keylog_file:{}", k.display()));
        }
        cmd.args(decode)
            .args(["-Y", filter, "-T", "fields", "-E", "occurrence=a"])
            .args(["-E", "aggregator=\t", "-e", field]);
        let out = cmd.output().expect("run tshark");
        assert!(
            out.status.success(),
            "tshark on {}: {}",
            capture.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            for uri in line.split('\t').filter(|u| !u.is_empty()) {
                uris.insert(uri.to_string());
            }
        }
    }
    uris
}
