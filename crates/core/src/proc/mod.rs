//! Process attribution for live capture (Linux): which local process owns a TCP connection.
//! The kernel names a connection's socket inode and owner uid in a NETLINK_SOCK_DIAG answer
//! ([`diag`]: one socket, microseconds) and in /proc/net/tcp and /proc/net/tcp6 (proc(5),
//! "/proc/net/tcp": every socket, a millisecond or so; the fallback); each process's
//! /proc/<pid>/fd/N links read `socket:[INODE]` for its sockets. A connection's owner is
//! resolved once, when it starts (its socket exists then), and socket inodes seen on the way
//! are cached.
//!
//! The parsers below take text or bytes and return values; only [`Attributor`] reads /proc
//! and asks the kernel. Reading another user's /proc/<pid>/fd needs privileges: after
//! `capture` drops root, the processes of the user it runs as are the ones it can name.

pub mod diag;

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

#[cfg(all(target_os = "linux", feature = "live"))]
use diag::DiagClient;

/// Without netlink (other systems, or a build without the `live` feature) every lookup
/// reads the /proc/net tables.
#[cfg(not(all(target_os = "linux", feature = "live")))]
enum DiagClient {}

#[cfg(not(all(target_os = "linux", feature = "live")))]
impl DiagClient {
    fn open() -> std::io::Result<DiagClient> {
        Err(std::io::ErrorKind::Unsupported.into())
    }

    fn lookup(
        &mut self,
        _: SocketAddr,
        _: SocketAddr,
    ) -> std::io::Result<Option<diag::DiagSocket>> {
        match *self {}
    }
}

/// One socket line of /proc/net/tcp{,6}.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpSocket {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// Kernel TCP state (include/net/tcp_states.h: 1 ESTABLISHED, 2 SYN_SENT, 10 LISTEN...).
    pub state: u8,
    pub uid: u32,
    /// 0 for sockets no file refers to any more (TIME_WAIT, orphans).
    pub inode: u64,
}

/// An address as /proc/net/tcp prints it: `0100007F:1F91` (IPv4) or 32 hex digits (IPv6),
/// then the port. The address is the kernel's `__be32` words printed with `%08X` as host
/// integers (net/ipv4/tcp_ipv4.c get_tcp4_sock, net/ipv6/tcp_ipv6.c get_tcp6_sock), so each
/// 32-bit word is read as a host-order integer and its native bytes are the network bytes.
/// The port is printed already in host order.
pub fn parse_proc_addr(s: &str) -> Option<SocketAddr> {
    let (addr, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        let hex = addr.get(i * 8..i * 8 + 8)?;
        Some(u32::from_str_radix(hex, 16).ok()?.to_ne_bytes())
    };
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b.get_mut(i * 4..i * 4 + 4)?.copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// One line of /proc/net/tcp or /proc/net/tcp6; None for the header and malformed lines.
/// Columns: sl, local_address, rem_address, st, tx_queue:rx_queue, tr:tm->when, retrnsmt,
/// uid, timeout, inode, ...
pub fn parse_tcp_line(line: &str) -> Option<TcpSocket> {
    let mut cols = line.split_whitespace();
    let sl = cols.next()?;
    if !sl.ends_with(':') {
        return None; // the header line ("sl local_address ...")
    }
    let local = parse_proc_addr(cols.next()?)?;
    let remote = parse_proc_addr(cols.next()?)?;
    let state = u8::from_str_radix(cols.next()?, 16).ok()?;
    let mut cols = cols.skip(3); // tx:rx, tr:when, retrnsmt
    let uid = cols.next()?.parse().ok()?;
    let _timeout = cols.next()?;
    let inode = cols.next()?.parse().ok()?;
    Some(TcpSocket {
        local,
        remote,
        state,
        uid,
        inode,
    })
}

/// The inode of a `/proc/<pid>/fd/N` link target `socket:[12345]`; None for other files.
pub fn parse_socket_link(target: &str) -> Option<u64> {
    target
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The command name and parent pid from /proc/<pid>/stat: `pid (comm) state ppid ...`. The
/// name may hold spaces and parentheses, so it ends at the last `)` (proc(5)).
pub fn parse_stat(stat: &str) -> Option<(String, u32)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_string();
    let mut rest = stat.get(close + 1..)?.split_whitespace();
    let _state = rest.next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((comm, ppid))
}

/// IPv4-mapped IPv6 addresses (a dual-stack socket talking IPv4) compare as IPv4.
fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

/// The socket whose local and remote ends are `local` and `remote`, among `text`'s lines.
pub fn find_socket(text: &str, local: SocketAddr, remote: SocketAddr) -> Option<TcpSocket> {
    let (local, remote) = (canonical(local), canonical(remote));
    text.lines()
        .filter_map(parse_tcp_line)
        .find(|s| canonical(s.local) == local && canonical(s.remote) == remote && s.inode != 0)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessInfo {
    pub pid: u32,
    /// The command name (/proc/<pid>/comm, at most 15 bytes), e.g. `go`.
    pub name: String,
    /// Names of the process and its ancestors when it was first seen (comm and the file name
    /// of argv[0] of each), so `--process go` still knows git's parent after both exited.
    pub lineage: Vec<String>,
    /// The process's pid and its ancestors' when it was first seen, nearest first (`run`
    /// keeps the connections of one process tree).
    pub ancestors: Vec<u32>,
}

impl ProcessInfo {
    /// Whether the process or one of its ancestors is named `name`.
    pub fn descends_from(&self, name: &str) -> bool {
        self.lineage.iter().any(|n| n == name)
    }
}

/// Limits on what the attributor remembers and walks.
#[derive(Clone, Debug)]
pub struct AttributionLimits {
    /// Socket inodes remembered with their owner. A scan of every process's fds records all
    /// sockets it passes; past this many the cache is emptied and refilled by later scans (one
    /// entry is a few dozen bytes: 65536 is a few MiB at most).
    pub max_cached_sockets: usize,
    /// Parent links followed when looking for an ancestor by name (process trees are shallow;
    /// this stops a loop through a recycled pid).
    pub max_ancestors: usize,
    /// Connections remembered with their owner (by [`Attributor::prefetch`] and lookups),
    /// for connections that are gone by the time their first packet is analysed; the oldest
    /// are forgotten first (one entry is ~100 bytes).
    pub max_recent_connections: usize,
}

impl Default for AttributionLimits {
    fn default() -> Self {
        AttributionLimits {
            max_cached_sockets: 65_536,
            max_ancestors: 64,
            max_recent_connections: 65_536,
        }
    }
}

/// Owners whose processes are looked at first on the next lookup.
const HOT_PIDS: usize = 8;

/// Failed NETLINK_SOCK_DIAG lookups in a row after which the /proc/net tables are used for
/// the rest of the capture (a kernel or sandbox that refuses it keeps refusing).
const MAX_DIAG_FAILURES: u32 = 3;

/// The netlink socket for lookups, opened on first use.
enum Diag {
    /// Not opened yet, or closed after `failures` failed lookups in a row.
    Closed {
        failures: u32,
    },
    Open {
        client: DiagClient,
        failures: u32,
    },
    /// Refused too often, or the procfs root is not this system's /proc (a test's fake
    /// tree, whose tables the kernel does not know).
    Off,
}

/// An open socket found for a connection: its inode and the uid that owns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct OpenSocket {
    inode: u64,
    uid: u32,
}

/// What the kernel said about an address pair.
enum DiagAnswer {
    Open(OpenSocket),
    /// No socket, or one no file refers to any more (TIME_WAIT).
    Closed,
    /// It could not be asked: read the tables.
    Unknown,
}

/// Resolves connection owners through a procfs root (normally `/proc`).
pub struct Attributor {
    root: PathBuf,
    owners: HashMap<u64, ProcessInfo>,
    /// (local, remote) -> owner, resolved while the connection existed.
    recent: HashMap<(SocketAddr, SocketAddr), ProcessInfo>,
    recent_order: VecDeque<(SocketAddr, SocketAddr)>,
    /// Pids of the latest owners found, most recent first: looked at before all others.
    hot_pids: VecDeque<u32>,
    limits: AttributionLimits,
    diag: Diag,
    /// Connections whose owner [`Attributor::connection_owner`] found, and did not.
    pub resolved: u64,
    pub unresolved: u64,
    /// Connections whose socket was already closed when their SYN was looked up (a
    /// connection shorter than the lookup: on loopback, a millisecond or so).
    pub ended_before_lookup: u64,
}

impl Attributor {
    pub fn new(root: impl Into<PathBuf>) -> Attributor {
        let root = root.into();
        // The kernel's answers describe this system's sockets, which only the real /proc
        // lists.
        let diag = if root == Path::new("/proc") {
            Diag::Closed { failures: 0 }
        } else {
            Diag::Off
        };
        Attributor {
            root,
            diag,
            owners: HashMap::new(),
            recent: HashMap::new(),
            recent_order: VecDeque::new(),
            hot_pids: VecDeque::new(),
            limits: AttributionLimits::default(),
            resolved: 0,
            unresolved: 0,
            ended_before_lookup: 0,
        }
    }

    /// The process owning the local socket of the connection `local` <-> `remote`, if it is
    /// a local socket this user may see.
    pub fn owner(&mut self, local: SocketAddr, remote: SocketAddr) -> Option<ProcessInfo> {
        let key = (canonical(local), canonical(remote));
        if let Some(p) = self.recent.get(&key) {
            return Some(p.clone());
        }
        let found = self.lookup_live(local, remote)?;
        self.remember(key, found.clone());
        Some(found)
    }

    /// The owner of a connection between `client` and `server`: the client's process when the
    /// client is local (the go command dialling out), else the server's.
    pub fn connection_owner(
        &mut self,
        client: SocketAddr,
        server: SocketAddr,
    ) -> Option<ProcessInfo> {
        let found = self
            .owner(client, server)
            .or_else(|| self.owner(server, client));
        if found.is_some() {
            self.resolved += 1;
        } else {
            self.unresolved += 1;
        }
        found
    }

    /// The owner [`Attributor::prefetch`] found for the connection `client` -> `server` (either
    /// side local), without looking again: for connections whose SYN was seen. Counted like
    /// [`Attributor::connection_owner`].
    pub fn prefetched_owner(
        &mut self,
        client: SocketAddr,
        server: SocketAddr,
    ) -> Option<ProcessInfo> {
        let (c, s) = (canonical(client), canonical(server));
        let found = self
            .recent
            .get(&(c, s))
            .or_else(|| self.recent.get(&(s, c)))
            .cloned();
        if found.is_some() {
            self.resolved += 1;
        } else {
            self.unresolved += 1;
        }
        found
    }

    /// Resolves and remembers the owner of a connection whose SYN was just captured, while
    /// its socket surely exists (a short connection can be gone by the time the analysis
    /// reaches it). The capture's reading thread calls this; lookups later find the answer.
    pub fn prefetch(&mut self, client: SocketAddr, server: SocketAddr) {
        let Some((l, r, sock)) = self.open_socket(&[(client, server), (server, client)]) else {
            self.ended_before_lookup += 1;
            return;
        };
        match self.owner_of_inode(sock) {
            Some(p) => self.remember((canonical(l), canonical(r)), p),
            // Closed while its owner was being looked for.
            None if self.socket_inode(l, r) != Some(sock.inode) => self.ended_before_lookup += 1,
            // Open, but its process is not readable (another user's).
            None => {}
        }
    }

    fn remember(&mut self, key: (SocketAddr, SocketAddr), p: ProcessInfo) {
        // A new connection on a reused address pair replaces the old answer.
        if self.recent.insert(key, p).is_none() {
            self.recent_order.push_back(key);
            if self.recent_order.len() > self.limits.max_recent_connections {
                if let Some(old) = self.recent_order.pop_front() {
                    self.recent.remove(&old);
                }
            }
        }
    }

    /// The inode of the open socket `local` -> `remote` (None when it is closed or not
    /// local).
    fn socket_inode(&mut self, local: SocketAddr, remote: SocketAddr) -> Option<u64> {
        self.open_socket(&[(local, remote)])
            .map(|(_, _, s)| s.inode)
    }

    /// The first of `pairs` (local end, remote end) that is an open local socket, with it.
    /// The kernel is asked for each pair (NETLINK_SOCK_DIAG); when it cannot be asked, the
    /// /proc/net tables are read, each once for all pairs (a read walks the kernel's whole
    /// connection table: about a millisecond).
    fn open_socket(
        &mut self,
        pairs: &[(SocketAddr, SocketAddr)],
    ) -> Option<(SocketAddr, SocketAddr, OpenSocket)> {
        let mut asked = true;
        for &(l, r) in pairs {
            match self.ask_kernel(l, r) {
                DiagAnswer::Open(s) => return Some((l, r, s)),
                DiagAnswer::Closed => {}
                DiagAnswer::Unknown => asked = false,
            }
        }
        if asked {
            return None;
        }
        let first = pairs.first()?.0;
        self.tables(first).iter().find_map(|t| {
            let text = std::fs::read_to_string(self.root.join(t)).ok()?;
            pairs.iter().find_map(|&(l, r)| {
                find_socket(&text, l, r).map(|s| {
                    let sock = OpenSocket {
                        inode: s.inode,
                        uid: s.uid,
                    };
                    (l, r, sock)
                })
            })
        })
    }

    /// One NETLINK_SOCK_DIAG lookup, opening the socket for it on first use.
    fn ask_kernel(&mut self, local: SocketAddr, remote: SocketAddr) -> DiagAnswer {
        if !diag::exact_lookup_fits(local, remote) {
            return DiagAnswer::Unknown;
        }
        let (mut client, failures) = match std::mem::replace(&mut self.diag, Diag::Off) {
            Diag::Off => return DiagAnswer::Unknown,
            Diag::Open { client, failures } => (client, failures),
            Diag::Closed { failures } => match DiagClient::open() {
                Ok(c) => (c, failures),
                // No netlink here (a sandbox, another system): it will not appear later.
                Err(_) => return DiagAnswer::Unknown,
            },
        };
        match client.lookup(local, remote) {
            Ok(found) => {
                self.diag = Diag::Open {
                    client,
                    failures: 0,
                };
                match found {
                    Some(s) if s.inode != 0 => DiagAnswer::Open(OpenSocket {
                        inode: s.inode,
                        uid: s.uid,
                    }),
                    _ => DiagAnswer::Closed,
                }
            }
            Err(_) => {
                // A new socket next time: a timed-out answer could still arrive on this one.
                let failures = failures.saturating_add(1);
                self.diag = if failures >= MAX_DIAG_FAILURES {
                    Diag::Off
                } else {
                    Diag::Closed { failures }
                };
                DiagAnswer::Unknown
            }
        }
    }

    /// The tables to read for an address, likeliest first.
    fn tables(&self, addr: SocketAddr) -> [&'static str; 2] {
        if canonical(addr).is_ipv4() {
            // A dual-stack socket lists an IPv4 connection in tcp6 as ::ffff:a.b.c.d.
            ["net/tcp", "net/tcp6"]
        } else {
            ["net/tcp6", "net/tcp"]
        }
    }

    fn lookup_live(&mut self, local: SocketAddr, remote: SocketAddr) -> Option<ProcessInfo> {
        let (_, _, sock) = self.open_socket(&[(local, remote)])?;
        self.owner_of_inode(sock)
    }

    fn owner_of_inode(&mut self, sock: OpenSocket) -> Option<ProcessInfo> {
        if let Some(p) = self.owners.get(&sock.inode) {
            return Some(p.clone());
        }
        // Once more on a miss: a process that was just forked can be missing from the first
        // listing of /proc or still unreadable while it changes its ids.
        self.scan(sock).or_else(|| self.scan(sock))
    }

    /// Finds the process holding socket `sock`: first the processes that owned recent
    /// connections (a go command opening its next connection: one directory to read, so the
    /// answer comes before a short connection is gone), then the processes running as the
    /// socket's uid, then every other process; highest pids first. Every socket passed on
    /// the way is cached.
    fn scan(&mut self, sock: OpenSocket) -> Option<ProcessInfo> {
        if self.owners.len() >= self.limits.max_cached_sockets {
            self.owners.clear();
        }
        let hot: Vec<u32> = self.hot_pids.iter().copied().collect();
        for pid in &hot {
            if let Some(p) = self.scan_pid(*pid, sock.inode) {
                return Some(self.hot(p));
            }
        }
        // A socket's uid is its creator's (or its listener's), so its owner is most likely
        // among that uid's processes (/proc/<pid> belongs to the process's effective uid).
        // A process that changed uid since, or passed the socket on, is found in the rest.
        let mut pids: Vec<(bool, u32)> = std::fs::read_dir(&self.root)
            .ok()?
            .filter_map(|e| {
                let e = e.ok()?;
                let pid: u32 = e.file_name().to_str()?.parse().ok()?;
                let other_uid = e.metadata().map_or(true, |m| m.uid() != sock.uid);
                Some((other_uid, pid))
            })
            .filter(|(_, p)| !hot.contains(p))
            .collect();
        pids.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        for (_, pid) in pids {
            if let Some(p) = self.scan_pid(pid, sock.inode) {
                return Some(self.hot(p));
            }
        }
        None
    }

    /// Moves an owner's pid to the front of the processes checked first.
    fn hot(&mut self, p: ProcessInfo) -> ProcessInfo {
        self.hot_pids.retain(|h| *h != p.pid);
        self.hot_pids.push_front(p.pid);
        self.hot_pids.truncate(HOT_PIDS);
        p
    }

    /// Reads /proc/<pid>/fd, caching its sockets; the owner when it holds `inode`.
    fn scan_pid(&mut self, pid: u32, inode: u64) -> Option<ProcessInfo> {
        // Gone, or another user's: an error, nothing to cache.
        let fds = std::fs::read_dir(self.root.join(pid.to_string()).join("fd")).ok()?;
        // The links first, the names after: while a short connection's fd still exists,
        // only readlink stands between it and its owner (a process's name and ancestors
        // outlive its connection; reading them takes longer than the fds).
        let sockets: Vec<u64> = fds
            .flatten()
            .filter_map(|fd| parse_socket_link(std::fs::read_link(fd.path()).ok()?.to_str()?))
            .collect();
        if sockets.is_empty() {
            return None;
        }
        let (ancestors, lineage) = self.ancestry(pid);
        let info = ProcessInfo {
            pid,
            name: self.name_of(pid),
            lineage,
            ancestors,
        };
        for sock in &sockets {
            if self.owners.len() < self.limits.max_cached_sockets {
                self.owners.insert(*sock, info.clone());
            }
        }
        sockets.contains(&inode).then_some(info)
    }

    /// The command name of `pid` (`?` when it is gone).
    pub fn name_of(&self, pid: u32) -> String {
        std::fs::read_to_string(self.root.join(pid.to_string()).join("comm"))
            .map(|s| s.trim_end_matches('\n').to_string())
            .unwrap_or_else(|_| "?".into())
    }

    /// Whether `pid` or one of its ancestors is named `name` (its comm, or the file name of
    /// its argv[0] for names longer than comm's 15 bytes).
    pub fn descends_from(&self, pid: u32, name: &str) -> bool {
        self.lineage_of(pid).iter().any(|n| n == name)
    }

    /// `pid` and the pids of its ancestors, nearest first.
    pub fn ancestors_of(&self, pid: u32) -> Vec<u32> {
        self.ancestry(pid).0
    }

    /// The names (comm, then argv[0]'s file name when it differs) of `pid` and its
    /// ancestors, nearest first.
    pub fn lineage_of(&self, pid: u32) -> Vec<String> {
        self.ancestry(pid).1
    }

    /// The pids and the names of `pid` and its ancestors, nearest first, in one walk up
    /// /proc/<pid>/stat.
    fn ancestry(&self, pid: u32) -> (Vec<u32>, Vec<String>) {
        let (mut pids, mut names) = (Vec::new(), Vec::new());
        let mut pid = pid;
        for _ in 0..self.limits.max_ancestors {
            if pid == 0 {
                break;
            }
            let dir = self.root.join(pid.to_string());
            let Some((comm, ppid)) = std::fs::read_to_string(dir.join("stat"))
                .ok()
                .and_then(|s| parse_stat(&s))
            else {
                break;
            };
            let argv0 = argv0_name(&dir).filter(|a| *a != comm && !a.is_empty());
            pids.push(pid);
            names.push(comm);
            names.extend(argv0);
            if ppid == pid {
                break;
            }
            pid = ppid;
        }
        (pids, names)
    }
}

/// The file name of argv[0] from /proc/<pid>/cmdline (NUL-separated).
fn argv0_name(dir: &Path) -> Option<String> {
    let cmdline = std::fs::read(dir.join("cmdline")).ok()?;
    let argv0 = cmdline.split(|b| *b == 0).next()?;
    let argv0 = std::str::from_utf8(argv0).ok()?;
    Some(argv0.rsplit('/').next()?.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An address word as the running kernel would print it (`%08X` of the network-order
    /// bytes read as a host integer), so the tests hold on either byte order.
    fn hex4(b: [u8; 4]) -> String {
        format!("{:08X}", u32::from_ne_bytes(b))
    }

    #[test]
    fn ipv4_line_with_header() {
        let text = format!(
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
             \x20  0: {}:1F91 {}:0000 0A 00000000:00000000 00:00000000 00000000     0        0 23811 1 0000000000000000 100 0 0 10 0\n\
             \x20  1: {}:9C40 {}:1F91 01 00000000:00000000 00:00000000 00000000  1000        0 99123 1 0000000000000000 20 4 30 10 -1\n",
            hex4([127, 0, 0, 1]),
            hex4([0, 0, 0, 0]),
            hex4([127, 0, 0, 1]),
            hex4([127, 0, 0, 1]),
        );
        let lines: Vec<TcpSocket> = text.lines().filter_map(parse_tcp_line).collect();
        assert_eq!(lines.len(), 2, "the header is skipped");
        assert_eq!(lines[0].local, "127.0.0.1:8081".parse().unwrap());
        assert_eq!(lines[0].state, 0x0A);
        assert_eq!(lines[1].remote, "127.0.0.1:8081".parse().unwrap());
        assert_eq!(lines[1].local.port(), 40000);
        assert_eq!(
            (lines[1].uid, lines[1].inode, lines[1].state),
            (1000, 99123, 1)
        );
        let s = find_socket(
            &text,
            "127.0.0.1:40000".parse().unwrap(),
            "127.0.0.1:8081".parse().unwrap(),
        )
        .unwrap();
        assert_eq!(s.inode, 99123);
        assert!(find_socket(
            &text,
            "127.0.0.1:8081".parse().unwrap(),
            "127.0.0.1:40000".parse().unwrap()
        )
        .is_none());
    }

    #[test]
    fn little_endian_literal_as_on_x86() {
        // Straight from an x86-64 /proc/net/tcp: 127.0.0.1:8081.
        if cfg!(target_endian = "little") {
            assert_eq!(
                parse_proc_addr("0100007F:1F91"),
                Some("127.0.0.1:8081".parse().unwrap())
            );
            // ::1 port 443 from /proc/net/tcp6 on x86-64.
            assert_eq!(
                parse_proc_addr("00000000000000000000000001000000:01BB"),
                Some("[::1]:443".parse().unwrap())
            );
            // ::ffff:127.0.0.1 (a dual-stack socket).
            assert_eq!(
                parse_proc_addr("0000000000000000FFFF00000100007F:0050"),
                Some("[::ffff:127.0.0.1]:80".parse().unwrap())
            );
        }
    }

    #[test]
    fn mapped_ipv6_socket_matches_an_ipv4_connection() {
        let mapped = format!(
            "{}{}{}{}",
            hex4([0, 0, 0, 0]),
            hex4([0, 0, 0, 0]),
            hex4([0, 0, 0xff, 0xff]),
            hex4([127, 0, 0, 1])
        );
        let text = format!(
            "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
             \x20  0: {mapped}:A000 {mapped}:1F91 01 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 20 4 1 10 -1\n"
        );
        let s = find_socket(
            &text,
            "127.0.0.1:40960".parse().unwrap(),
            "127.0.0.1:8081".parse().unwrap(),
        )
        .unwrap();
        assert_eq!(s.inode, 4242);
    }

    #[test]
    fn malformed_lines_are_none() {
        for line in [
            "",
            "garbage",
            "0: 0100007F:1F91",
            "0: 0100007F 00000000:0000 0A 0:0 0:0 0 0 0 1",
            "0: 0100007:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1",
            "0: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 notanumber",
            "0: 0100007F:FFFFF 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1",
            "0: é100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1",
        ] {
            assert_eq!(parse_tcp_line(line), None, "{line:?}");
        }
        // TIME_WAIT sockets have inode 0 and never match.
        let text = format!(
            "0: {}:9C40 {}:1F91 06 00000000:00000000 03:00001770 00000000 0 0 0 3 0000000000000000\n",
            hex4([127, 0, 0, 1]),
            hex4([127, 0, 0, 1])
        );
        assert!(parse_tcp_line(&text).is_some());
        assert!(find_socket(
            &text,
            "127.0.0.1:40000".parse().unwrap(),
            "127.0.0.1:8081".parse().unwrap()
        )
        .is_none());
    }

    #[test]
    fn socket_links_and_stat_lines() {
        assert_eq!(parse_socket_link("socket:[99123]"), Some(99123));
        assert_eq!(parse_socket_link("pipe:[5]"), None);
        assert_eq!(parse_socket_link("/dev/null"), None);
        assert_eq!(parse_socket_link("socket:[]"), None);
        assert_eq!(
            parse_stat("4242 (go) S 4000 4242 4000 34816 4242 4194560 ..."),
            Some(("go".into(), 4000))
        );
        // A name with spaces and parentheses ends at the last ')'.
        assert_eq!(
            parse_stat("7 (a (b) c) R 1 7 7 0 -1"),
            Some(("a (b) c".into(), 1))
        );
        assert_eq!(parse_stat("7 (x"), None);
        assert_eq!(parse_stat("7 (x) R"), None);
    }

    /// A fake procfs: go (pid 200, child of bash 100) owns socket 555; git (pid 300, child of
    /// go) owns 777.
    #[test]
    fn attributor_on_a_fake_proc_tree() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        let line = |sl: u32, l: [u8; 4], lp: u16, r: [u8; 4], rp: u16, inode: u64| {
            format!(
                "{sl:4}: {}:{lp:04X} {}:{rp:04X} 01 00000000:00000000 00:00000000 00000000  1000        0 {inode} 1 0000000000000000 20 4 30 10 -1\n",
                hex4(l),
                hex4(r)
            )
        };
        std::fs::create_dir_all(root.join("net")).unwrap();
        let lo = [127, 0, 0, 1];
        std::fs::write(
            root.join("net/tcp"),
            format!(
                "  sl  local_address rem_address   st\n{}{}",
                line(0, lo, 40000, lo, 8081, 555),
                line(1, lo, 40001, lo, 8081, 777)
            ),
        )
        .unwrap();
        std::fs::write(root.join("net/tcp6"), "  sl  local_address\n").unwrap();
        for (pid, comm, ppid, sockets) in [
            (100u32, "bash", 1u32, vec![]),
            (200, "go", 100, vec![555u64]),
            (300, "git", 200, vec![777]),
        ] {
            let dir = root.join(pid.to_string());
            std::fs::create_dir_all(dir.join("fd")).unwrap();
            std::fs::write(dir.join("comm"), format!("{comm}\n")).unwrap();
            std::fs::write(
                dir.join("stat"),
                format!("{pid} ({comm}) S {ppid} 1 1 0 -1"),
            )
            .unwrap();
            std::fs::write(dir.join("cmdline"), format!("/usr/bin/{comm}\0arg\0")).unwrap();
            std::os::unix::fs::symlink("/dev/null", dir.join("fd/0")).unwrap();
            for (i, s) in sockets.iter().enumerate() {
                std::os::unix::fs::symlink(
                    format!("socket:[{s}]"),
                    dir.join(format!("fd/{}", i + 3)),
                )
                .unwrap();
            }
        }
        let mut a = Attributor::new(root);
        let go = a
            .connection_owner(
                "127.0.0.1:40000".parse().unwrap(),
                "127.0.0.1:8081".parse().unwrap(),
            )
            .unwrap();
        assert_eq!((go.pid, go.name.as_str()), (200, "go"));
        assert_eq!(go.lineage, ["go", "bash"]);
        assert!(go.descends_from("go") && !go.descends_from("git"));
        // Found from the server's side too (a remote client, a local server).
        let git = a
            .connection_owner(
                "127.0.0.1:8081".parse().unwrap(),
                "127.0.0.1:40001".parse().unwrap(),
            )
            .unwrap();
        assert_eq!(git.name, "git");
        assert!(git.descends_from("go"), "{:?}", git.lineage);
        assert!(a.descends_from(300, "go"), "git is go's child");
        assert!(a.descends_from(200, "go"));
        assert!(!a.descends_from(100, "go"), "bash is not");
        assert!(!a.descends_from(999, "go"), "no such process");
        assert!(a
            .connection_owner(
                "127.0.0.1:1".parse().unwrap(),
                "127.0.0.1:2".parse().unwrap()
            )
            .is_none());
        assert_eq!((a.resolved, a.unresolved), (2, 1));
        // Cached: the owner is still known after the process's fd is gone.
        std::fs::remove_file(root.join("200/fd/3")).unwrap();
        assert_eq!(
            a.owner(
                "127.0.0.1:40000".parse().unwrap(),
                "127.0.0.1:8081".parse().unwrap()
            )
            .map(|p| p.pid),
            Some(200)
        );

        // A connection prefetched at its SYN is still named after it is gone from the tables.
        let mut b = Attributor::new(root);
        b.prefetch(
            "127.0.0.1:40001".parse().unwrap(),
            "127.0.0.1:8081".parse().unwrap(),
        );
        std::fs::write(
            root.join("net/tcp"),
            "  sl  local_address rem_address   st\n",
        )
        .unwrap();
        std::fs::remove_file(root.join("300/fd/3")).unwrap();
        let gone = b
            .prefetched_owner(
                "127.0.0.1:40001".parse().unwrap(),
                "127.0.0.1:8081".parse().unwrap(),
            )
            .unwrap();
        assert!(gone.name == "git" && gone.descends_from("go"));
        // Nothing is known of a connection never seen.
        assert!(b
            .prefetched_owner(
                "127.0.0.1:40002".parse().unwrap(),
                "127.0.0.1:8081".parse().unwrap()
            )
            .is_none());
        assert_eq!((b.resolved, b.unresolved), (1, 1));
        // A SYN seen after its connection closed (the tables are empty now).
        b.prefetch(
            "127.0.0.1:40003".parse().unwrap(),
            "127.0.0.1:8081".parse().unwrap(),
        );
        assert_eq!(b.ended_before_lookup, 1);
    }

    /// The inode /proc/self/fd names for `fd`'s socket.
    #[cfg(all(target_os = "linux", feature = "live"))]
    fn fd_inode(fd: &impl std::os::fd::AsRawFd) -> u64 {
        let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
        parse_socket_link(link.to_str().unwrap()).unwrap()
    }

    /// The running kernel, both ways: a loopback connection's sockets as NETLINK_SOCK_DIAG
    /// and /proc/net/tcp name them are the ones /proc/self/fd holds, and the attributor
    /// names this process as their owner.
    #[cfg(all(target_os = "linux", feature = "live"))]
    #[test]
    fn kernel_lookups_agree_with_proc_self_fd() {
        use std::net::{TcpListener, TcpStream};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let (c, s) = (client.local_addr().unwrap(), client.peer_addr().unwrap());
        let uid = nix::unistd::geteuid().as_raw();

        let mut d = DiagClient::open().expect("a NETLINK_SOCK_DIAG socket");
        let got = d.lookup(c, s).unwrap().expect("the client socket");
        assert_eq!((got.local, got.remote, got.state), (c, s, 1));
        assert_eq!((got.inode, got.uid), (fd_inode(&client), uid));
        let got = d.lookup(s, c).unwrap().expect("the accepted socket");
        assert_eq!(got.inode, fd_inode(&server));
        // A dual-stack view of the same pair.
        let mapped = |a: SocketAddr| match a {
            SocketAddr::V4(v4) => SocketAddr::new(IpAddr::V6(v4.ip().to_ipv6_mapped()), a.port()),
            v6 => v6,
        };
        assert_eq!(
            d.lookup(mapped(c), mapped(s)).unwrap().map(|s| s.inode),
            Some(fd_inode(&client))
        );
        // No such connection: the listener's port from a port nobody uses here.
        let nobody = SocketAddr::new(c.ip(), 1);
        assert_eq!(d.lookup(nobody, s).unwrap(), None);

        let text = std::fs::read_to_string("/proc/net/tcp").unwrap();
        let row = find_socket(&text, c, s).expect("the client in /proc/net/tcp");
        assert_eq!((row.inode, row.uid), (fd_inode(&client), uid));

        let mut a = Attributor::new("/proc");
        a.prefetch(c, s);
        let me = a.prefetched_owner(c, s).expect("this process");
        assert_eq!(me.pid, std::process::id());
        assert_eq!(a.ended_before_lookup, 0);
        // The same through the tables.
        let mut t = Attributor::new("/proc");
        t.diag = Diag::Off;
        assert_eq!(
            t.open_socket(&[(c, s)]).map(|(_, _, s)| s),
            Some(OpenSocket {
                inode: fd_inode(&client),
                uid
            })
        );

        // The client closes first: its socket waits in TIME_WAIT without an inode, and
        // both lookups call the connection ended.
        drop(client);
        let mut buf = [0u8; 1];
        assert_eq!(std::io::Read::read(&mut &server, &mut buf).unwrap(), 0);
        drop(server);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let tw = d.lookup(c, s).unwrap().expect("the TIME_WAIT socket");
        assert_eq!((tw.state, tw.inode), (6, 0));
        a.prefetch(c, s);
        t.prefetch(c, s);
        assert_eq!((a.ended_before_lookup, t.ended_before_lookup), (1, 1));
    }

    /// Time per lookup, NETLINK_SOCK_DIAG against /proc/net/tcp:
    /// `cargo test --release --features live --lib proc::tests::lookup_timing -- --ignored
    /// --nocapture`.
    #[cfg(all(target_os = "linux", feature = "live"))]
    #[test]
    #[ignore = "a measurement, not a check"]
    fn lookup_timing() {
        use std::net::{TcpListener, TcpStream};
        use std::time::Instant;
        const N: u32 = 2000;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let _server = listener.accept().unwrap();
        let (c, s) = (client.local_addr().unwrap(), client.peer_addr().unwrap());
        let rows = std::fs::read_to_string("/proc/net/tcp")
            .unwrap()
            .lines()
            .count()
            + std::fs::read_to_string("/proc/net/tcp6")
                .unwrap()
                .lines()
                .count()
            - 2;

        let mut d = DiagClient::open().unwrap();
        let t0 = Instant::now();
        for _ in 0..N {
            assert!(d.lookup(c, s).unwrap().is_some());
        }
        let diag = t0.elapsed() / N;
        let t0 = Instant::now();
        for _ in 0..N {
            let text = std::fs::read_to_string("/proc/net/tcp").unwrap();
            assert!(find_socket(&text, c, s).is_some());
        }
        let tables = t0.elapsed() / N;
        println!("socket lookup ({rows} sockets in /proc/net/tcp{{,6}}): sock_diag {diag:?}, /proc/net/tcp {tables:?}");

        let a = Attributor::new("/proc");
        let t0 = Instant::now();
        for _ in 0..200 {
            assert!(!a.lineage_of(std::process::id()).is_empty());
        }
        println!(
            "name and ancestors of this process ({} names): {:?}",
            a.lineage_of(std::process::id()).len(),
            t0.elapsed() / 200
        );

        // A whole prefetch of a new connection (the owner's fds read: this process is hot
        // after the first), each way.
        for use_diag in [true, false] {
            let mut a = Attributor::new("/proc");
            if !use_diag {
                a.diag = Diag::Off;
            }
            let mut total = std::time::Duration::ZERO;
            let n = 300;
            for _ in 0..n {
                let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
                let _server = listener.accept().unwrap();
                let (c, s) = (client.local_addr().unwrap(), client.peer_addr().unwrap());
                let t0 = Instant::now();
                a.prefetch(c, s);
                total += t0.elapsed();
                assert!(a.prefetched_owner(c, s).is_some());
            }
            println!(
                "prefetch of a new connection, {}: {:?}",
                if use_diag {
                    "sock_diag"
                } else {
                    "/proc/net/tcp"
                },
                total / n
            );
        }
    }
}
