//! One TCP socket looked up by its exact address pair through NETLINK_SOCK_DIAG (sock_diag(7),
//! include/uapi/linux/inet_diag.h): a `SOCK_DIAG_BY_FAMILY` request carrying an
//! `inet_diag_req_v2` without `NLM_F_DUMP` makes the kernel look the pair up in its hash
//! tables (net/ipv4/inet_diag.c inet_diag_find_one_icsk) and answer with one `inet_diag_msg`
//! (its `idiag_uid` and `idiag_inode`) or an `NLMSG_ERROR` of -ENOENT: microseconds, where
//! reading /proc/net/tcp walks every connection (about a millisecond), long enough for a short
//! loopback connection to be closed before its owner is looked for.
//!
//! Building the request and reading the answer are pure functions on bytes; only
//! [`DiagClient`] (Linux, feature `live`) owns a socket.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::Range;

/// `struct nlmsghdr` (include/uapi/linux/netlink.h); its fields are in host byte order.
mod nlmsghdr {
    use std::ops::Range;
    pub const LEN: Range<usize> = 0..4;
    pub const TYPE: Range<usize> = 4..6;
    pub const FLAGS: Range<usize> = 6..8;
    pub const SEQ: Range<usize> = 8..12;
    pub const PORT: Range<usize> = 12..16;
    pub const SIZE: usize = 16;
}

/// `struct inet_diag_sockid`, relative to its start: ports and addresses in network byte
/// order, the interface and cookie in host order.
mod sockid {
    use std::ops::Range;
    pub const SPORT: Range<usize> = 0..2;
    pub const DPORT: Range<usize> = 2..4;
    pub const SRC: Range<usize> = 4..20;
    pub const DST: Range<usize> = 20..36;
    pub const IF: Range<usize> = 36..40;
    pub const COOKIE: Range<usize> = 40..48;
    pub const SIZE: usize = 48;
}

/// `struct inet_diag_req_v2`, relative to the end of the netlink header.
mod req_v2 {
    use std::ops::Range;
    pub const FAMILY: usize = 0;
    pub const PROTOCOL: usize = 1;
    pub const EXT: usize = 2;
    pub const STATES: Range<usize> = 4..8;
    pub const ID: usize = 8;
    pub const SIZE: usize = 8 + super::sockid::SIZE;
}

/// `struct inet_diag_msg`, relative to the end of the netlink header; netlink attributes
/// (none asked for) may follow it.
mod diag_msg {
    use std::ops::Range;
    pub const FAMILY: usize = 0;
    pub const STATE: usize = 1;
    pub const ID: usize = 4;
    pub const UID: Range<usize> = 64..68;
    pub const INODE: Range<usize> = 68..72;
    pub const SIZE: usize = 72;
}

/// Bytes of a request: a netlink header and an `inet_diag_req_v2`.
pub const REQUEST_LEN: usize = nlmsghdr::SIZE + req_v2::SIZE;

// include/uapi/linux/netlink.h, sock_diag.h, inet_diag.h; Linux socket.h and in.h.
pub const NLMSG_NOOP: u16 = 1;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLMSG_OVERRUN: u16 = 4;
pub const SOCK_DIAG_BY_FAMILY: u16 = 20;
pub const NLM_F_REQUEST: u16 = 1;
pub const NLM_F_MULTI: u16 = 2;
pub const AF_INET: u8 = 2;
pub const AF_INET6: u8 = 10;
pub const IPPROTO_TCP: u8 = 6;
/// A cookie of all ones: "any socket with this address pair" (sock_diag_check_cookie).
const INET_DIAG_NOCOOKIE: u32 = u32::MAX;
/// The kernel's -ENOENT: no socket with that address pair.
pub const ENOENT: i32 = 2;

/// The request asking for the TCP socket whose own end is `local` and whose peer is
/// `remote` (the kernel's `idiag_src` is the socket's local end). IPv4-mapped IPv6 addresses
/// are asked as IPv4: the kernel hashes a dual-stack socket's IPv4 connection there. None
/// when the two ends are of different families (no TCP connection joins them).
pub fn request(seq: u32, local: SocketAddr, remote: SocketAddr) -> Option<[u8; REQUEST_LEN]> {
    let (local, remote) = (canonical(local), canonical(remote));
    let family = match (local.ip(), remote.ip()) {
        (IpAddr::V4(_), IpAddr::V4(_)) => AF_INET,
        (IpAddr::V6(_), IpAddr::V6(_)) => AF_INET6,
        _ => return None,
    };
    let mut b = [0u8; REQUEST_LEN];
    let len = u32::try_from(REQUEST_LEN).ok()?;
    put(&mut b, nlmsghdr::LEN, &len.to_ne_bytes());
    put(&mut b, nlmsghdr::TYPE, &SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    // No NLM_F_DUMP: the exact lookup. No NLM_F_ACK: the answer or an error ends it.
    put(&mut b, nlmsghdr::FLAGS, &NLM_F_REQUEST.to_ne_bytes());
    put(&mut b, nlmsghdr::SEQ, &seq.to_ne_bytes());
    // nlmsg_pid 0: the kernel fills in this socket's port.
    let r = nlmsghdr::SIZE;
    put(
        &mut b,
        r + req_v2::FAMILY..r + req_v2::FAMILY + 1,
        &[family],
    );
    put(
        &mut b,
        r + req_v2::PROTOCOL..r + req_v2::PROTOCOL + 1,
        &[IPPROTO_TCP],
    );
    put(&mut b, r + req_v2::EXT..r + req_v2::EXT + 1, &[0]);
    // Every state; the exact lookup does not filter on them anyway.
    put(&mut b, shift(req_v2::STATES, r), &u32::MAX.to_ne_bytes());
    let id = r + req_v2::ID;
    put(
        &mut b,
        shift(sockid::SPORT, id),
        &local.port().to_be_bytes(),
    );
    put(
        &mut b,
        shift(sockid::DPORT, id),
        &remote.port().to_be_bytes(),
    );
    put(&mut b, shift(sockid::SRC, id), &addr_bytes(local.ip()));
    put(&mut b, shift(sockid::DST, id), &addr_bytes(remote.ip()));
    // idiag_if 0: any interface (see [`exact_lookup_fits`] for the ones that need one).
    put(&mut b, shift(sockid::IF, id), &0u32.to_ne_bytes());
    let cookie = [
        INET_DIAG_NOCOOKIE.to_ne_bytes(),
        INET_DIAG_NOCOOKIE.to_ne_bytes(),
    ]
    .concat();
    put(&mut b, shift(sockid::COOKIE, id), &cookie);
    Some(b)
}

/// Whether an exact lookup without an interface can find the pair: a connection between
/// IPv6 link-local addresses is bound to its interface, which a captured packet does not
/// name, and the kernel's lookup with `idiag_if` 0 would miss it.
pub fn exact_lookup_fits(local: SocketAddr, remote: SocketAddr) -> bool {
    let link_local = |a: SocketAddr| match canonical(a).ip() {
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
        IpAddr::V4(_) => false,
    };
    !link_local(local) && !link_local(remote)
}

fn put(b: &mut [u8], at: Range<usize>, v: &[u8]) {
    if let Some(dst) = b.get_mut(at) {
        if dst.len() == v.len() {
            dst.copy_from_slice(v);
        }
    }
}

fn shift(r: Range<usize>, by: usize) -> Range<usize> {
    r.start + by..r.end + by
}

/// An address as `inet_diag_sockid` holds it: IPv4 in the first four of 16 bytes.
fn addr_bytes(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V6(v6) => v6.octets(),
        IpAddr::V4(v4) => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&v4.octets());
            b
        }
    }
}

/// IPv4-mapped IPv6 addresses (a dual-stack socket talking IPv4) compare as IPv4.
fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

/// Why a buffer is not a well-formed netlink answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("truncated: {need} bytes needed, {have} present")]
    Truncated { need: usize, have: usize },
    #[error("bad {name}")]
    BadField { name: &'static str },
}

/// One netlink message of a received datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    pub kind: u16,
    pub flags: u16,
    pub seq: u32,
    pub port: u32,
    /// The bytes after the header, up to the message's own length.
    pub payload: &'a [u8],
}

/// The netlink messages of a datagram, in order; the first malformed one ends the walk
/// with its error (the rest cannot be framed).
pub fn messages(buf: &[u8]) -> Messages<'_> {
    Messages {
        rest: buf,
        failed: false,
    }
}

pub struct Messages<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<Message<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let m = frame(self.rest);
        match &m {
            Ok((_, consumed)) => {
                self.rest = self.rest.get(*consumed..).unwrap_or_default();
            }
            Err(_) => self.failed = true,
        }
        Some(m.map(|(m, _)| m))
    }
}

/// The message at the start of `buf` and the bytes it takes with its padding
/// (NLMSG_ALIGN: messages start on 4-byte boundaries).
fn frame(buf: &[u8]) -> Result<(Message<'_>, usize), ParseError> {
    let have = buf.len();
    if have < nlmsghdr::SIZE {
        return Err(ParseError::Truncated {
            need: nlmsghdr::SIZE,
            have,
        });
    }
    let len = usize::try_from(u32_at(buf, nlmsghdr::LEN)?)
        .map_err(|_| ParseError::BadField { name: "nlmsg_len" })?;
    // A length shorter than the header would never advance.
    if len < nlmsghdr::SIZE {
        return Err(ParseError::BadField { name: "nlmsg_len" });
    }
    let payload = buf
        .get(nlmsghdr::SIZE..len)
        .ok_or(ParseError::Truncated { need: len, have })?;
    let m = Message {
        kind: u16_at(buf, nlmsghdr::TYPE)?,
        flags: u16_at(buf, nlmsghdr::FLAGS)?,
        seq: u32_at(buf, nlmsghdr::SEQ)?,
        port: u32_at(buf, nlmsghdr::PORT)?,
        payload,
    };
    // The last message of a datagram may lack its padding.
    let aligned = len.checked_add(3).map_or(len, |l| l & !3).min(have);
    Ok((m, aligned))
}

fn u16_at(b: &[u8], r: Range<usize>) -> Result<u16, ParseError> {
    let need = r.end;
    b.get(r)
        .and_then(|s| s.try_into().ok())
        .map(u16::from_ne_bytes)
        .ok_or(ParseError::Truncated {
            need,
            have: b.len(),
        })
}

fn u32_at(b: &[u8], r: Range<usize>) -> Result<u32, ParseError> {
    let need = r.end;
    b.get(r)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_ne_bytes)
        .ok_or(ParseError::Truncated {
            need,
            have: b.len(),
        })
}

/// A socket as an `inet_diag_msg` describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiagSocket {
    /// The socket's own end (`idiag_src`) and its peer (`idiag_dst`).
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// Kernel TCP state (include/net/tcp_states.h: 1 ESTABLISHED, 6 TIME_WAIT, 12
    /// NEW_SYN_RECV...).
    pub state: u8,
    pub uid: u32,
    /// 0 for sockets no file refers to (TIME_WAIT, a connection not accepted yet).
    pub inode: u64,
}

/// What one message says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Socket(DiagSocket),
    /// `NLMSG_ERROR`: a negative errno, or 0 for an acknowledgement.
    Error(i32),
    /// The end of a multi-part (dump) answer.
    Done,
    Noop,
    /// The kernel dropped messages of this answer.
    Overrun,
    Other(u16),
}

/// Reads one message's payload by its type.
pub fn reply(m: &Message<'_>) -> Result<Reply, ParseError> {
    Ok(match m.kind {
        NLMSG_NOOP => Reply::Noop,
        NLMSG_DONE => Reply::Done,
        NLMSG_OVERRUN => Reply::Overrun,
        // struct nlmsgerr: int error, then the request's header.
        NLMSG_ERROR => Reply::Error(i32::from_ne_bytes(
            m.payload
                .get(0..4)
                .and_then(|s| s.try_into().ok())
                .ok_or(ParseError::Truncated {
                    need: 4,
                    have: m.payload.len(),
                })?,
        )),
        SOCK_DIAG_BY_FAMILY => Reply::Socket(diag_socket(m.payload)?),
        other => Reply::Other(other),
    })
}

fn diag_socket(p: &[u8]) -> Result<DiagSocket, ParseError> {
    if p.len() < diag_msg::SIZE {
        return Err(ParseError::Truncated {
            need: diag_msg::SIZE,
            have: p.len(),
        });
    }
    let family = *p
        .get(diag_msg::FAMILY)
        .ok_or(ParseError::BadField { name: "family" })?;
    let id = diag_msg::ID;
    let addr = |r: Range<usize>, port: Range<usize>| -> Result<SocketAddr, ParseError> {
        let port = p
            .get(shift(port, id))
            .and_then(|s| s.try_into().ok())
            .map(u16::from_be_bytes)
            .ok_or(ParseError::BadField { name: "port" })?;
        let raw: [u8; 16] = p
            .get(shift(r, id))
            .and_then(|s| s.try_into().ok())
            .ok_or(ParseError::BadField { name: "address" })?;
        let ip = match family {
            AF_INET => IpAddr::V4(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3])),
            AF_INET6 => IpAddr::V6(Ipv6Addr::from(raw)),
            _ => return Err(ParseError::BadField { name: "family" }),
        };
        Ok(SocketAddr::new(ip, port))
    };
    Ok(DiagSocket {
        local: addr(sockid::SRC, sockid::SPORT)?,
        remote: addr(sockid::DST, sockid::DPORT)?,
        state: *p
            .get(diag_msg::STATE)
            .ok_or(ParseError::BadField { name: "state" })?,
        uid: u32_at(p, diag_msg::UID)?,
        inode: u64::from(u32_at(p, diag_msg::INODE)?),
    })
}

/// What a received datagram says about request `seq` for `local` -> `remote`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The socket (its inode may be 0: TIME_WAIT).
    Socket(DiagSocket),
    /// No such socket (-ENOENT, or an answer that ended without it).
    NoSocket,
    /// The kernel refused: a negative errno (-EINVAL on kernels without the request).
    Failed(i32),
    /// Nothing about this request yet: read the next datagram.
    Pending,
}

/// Looks through a datagram for the answer to request `seq`. Messages of other requests
/// (a late answer to one that timed out) are skipped; so are sockets of other address
/// pairs, which a multi-part answer may hold.
pub fn answer(
    buf: &[u8],
    seq: u32,
    local: SocketAddr,
    remote: SocketAddr,
) -> Result<Answer, ParseError> {
    let (local, remote) = (canonical(local), canonical(remote));
    for m in messages(buf) {
        let m = m?;
        if m.seq != seq {
            continue;
        }
        match reply(&m)? {
            Reply::Socket(s) => {
                if canonical(s.local) == local && canonical(s.remote) == remote {
                    return Ok(Answer::Socket(s));
                }
            }
            Reply::Error(0) | Reply::Done => return Ok(Answer::NoSocket),
            Reply::Error(e) if e == -ENOENT => return Ok(Answer::NoSocket),
            Reply::Error(e) => return Ok(Answer::Failed(e)),
            // Part of the answer is lost; whatever it held is unknown.
            Reply::Overrun => return Ok(Answer::Failed(0)),
            Reply::Noop | Reply::Other(_) => {}
        }
    }
    Ok(Answer::Pending)
}

#[cfg(all(target_os = "linux", feature = "live"))]
pub use client::DiagClient;

#[cfg(all(target_os = "linux", feature = "live"))]
mod client {
    use super::{answer, request, Answer, DiagSocket};
    use nix::sys::socket::{
        recv, sendto, setsockopt, socket, sockopt::ReceiveTimeout, AddressFamily, MsgFlags,
        NetlinkAddr, SockFlag, SockProtocol, SockType,
    };
    use nix::sys::time::TimeVal;
    use std::io;
    use std::net::SocketAddr;
    use std::os::fd::{AsRawFd, OwnedFd};

    /// How long one answer may take: the kernel answers in microseconds, and the thread
    /// asking is the one reading packets.
    const ANSWER_TIMEOUT_MS: i64 = 100;
    /// Datagrams read for one answer before giving up (stale answers to requests that
    /// timed out come first).
    const MAX_DATAGRAMS: usize = 16;
    /// An exact answer is one `inet_diag_msg` (88 bytes with its header); a page is room
    /// for any attributes a kernel might add.
    const RECV_BUF: usize = 8192;

    /// A NETLINK_SOCK_DIAG socket kept open for lookups.
    pub struct DiagClient {
        fd: OwnedFd,
        seq: u32,
        buf: Vec<u8>,
    }

    impl DiagClient {
        pub fn open() -> io::Result<DiagClient> {
            let fd = socket(
                AddressFamily::Netlink,
                SockType::Datagram,
                SockFlag::SOCK_CLOEXEC,
                SockProtocol::NetlinkSockDiag,
            )?;
            setsockopt(
                &fd,
                ReceiveTimeout,
                &TimeVal::new(0, ANSWER_TIMEOUT_MS * 1000),
            )?;
            Ok(DiagClient {
                fd,
                seq: 0,
                buf: vec![0; RECV_BUF],
            })
        }

        /// The TCP socket whose own end is `local` and whose peer is `remote`; None when
        /// the kernel has none. An error when the kernel could not be asked.
        pub fn lookup(
            &mut self,
            local: SocketAddr,
            remote: SocketAddr,
        ) -> io::Result<Option<DiagSocket>> {
            self.seq = self.seq.wrapping_add(1);
            let seq = self.seq;
            let Some(req) = request(seq, local, remote) else {
                return Ok(None);
            };
            let kernel = NetlinkAddr::new(0, 0);
            let fd = self.fd.as_raw_fd();
            retry_eintr(|| sendto(fd, &req, &kernel, MsgFlags::empty()))?;
            for _ in 0..MAX_DATAGRAMS {
                let n = retry_eintr(|| recv(fd, &mut self.buf, MsgFlags::empty()))?;
                let got = self.buf.get(..n).unwrap_or_default();
                match answer(got, seq, local, remote) {
                    Ok(Answer::Socket(s)) => return Ok(Some(s)),
                    Ok(Answer::NoSocket) => return Ok(None),
                    Ok(Answer::Failed(e)) => {
                        return Err(io::Error::other(format!("sock_diag: error {e}")))
                    }
                    Ok(Answer::Pending) => {}
                    Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
                }
            }
            Err(io::Error::other("sock_diag: no answer"))
        }
    }

    /// A signal handler without SA_RESTART interrupts the call; a few retries suffice.
    fn retry_eintr<T>(mut f: impl FnMut() -> nix::Result<T>) -> io::Result<T> {
        let mut tries = 0;
        loop {
            match f() {
                Err(nix::errno::Errno::EINTR) if tries < 3 => tries += 1,
                r => return r.map_err(io::Error::from),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// A netlink message: header (host order) and payload, padded to 4 bytes.
    fn nlmsg(kind: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let len = (16 + payload.len()) as u32;
        let mut b = Vec::new();
        b.extend_from_slice(&len.to_ne_bytes());
        b.extend_from_slice(&kind.to_ne_bytes());
        b.extend_from_slice(&flags.to_ne_bytes());
        b.extend_from_slice(&seq.to_ne_bytes());
        b.extend_from_slice(&4242u32.to_ne_bytes());
        b.extend_from_slice(payload);
        while b.len() % 4 != 0 {
            b.push(0);
        }
        b
    }

    /// An `inet_diag_msg` for an IPv4 socket.
    fn diag_v4(
        state: u8,
        l: [u8; 4],
        lp: u16,
        r: [u8; 4],
        rp: u16,
        uid: u32,
        inode: u32,
    ) -> Vec<u8> {
        let mut p = vec![AF_INET, state, 0, 0];
        p.extend_from_slice(&lp.to_be_bytes());
        p.extend_from_slice(&rp.to_be_bytes());
        p.extend_from_slice(&l);
        p.extend_from_slice(&[0; 12]);
        p.extend_from_slice(&r);
        p.extend_from_slice(&[0; 12]);
        p.extend_from_slice(&[0; 4]); // if
        p.extend_from_slice(&[0x11; 8]); // cookie
        p.extend_from_slice(&[0; 12]); // expires, rqueue, wqueue
        p.extend_from_slice(&uid.to_ne_bytes());
        p.extend_from_slice(&inode.to_ne_bytes());
        p
    }

    #[test]
    fn ipv4_request_bytes() {
        let b = request(7, sa("127.0.0.1:40000"), sa("127.0.0.1:8081")).unwrap();
        // Header: length 72, type 20, flags NLM_F_REQUEST, seq 7, port 0 (host order).
        let mut want = Vec::new();
        want.extend_from_slice(&72u32.to_ne_bytes());
        want.extend_from_slice(&20u16.to_ne_bytes());
        want.extend_from_slice(&1u16.to_ne_bytes());
        want.extend_from_slice(&7u32.to_ne_bytes());
        want.extend_from_slice(&[0, 0, 0, 0]);
        // inet_diag_req_v2: AF_INET, IPPROTO_TCP, no extensions, pad, every state.
        want.extend_from_slice(&[2, 6, 0, 0, 0xff, 0xff, 0xff, 0xff]);
        // sockid: ports 40000 (0x9c40) and 8081 (0x1f91) big-endian, addresses, if 0,
        // the no-cookie cookie.
        want.extend_from_slice(&[0x9c, 0x40, 0x1f, 0x91]);
        want.extend_from_slice(&[127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        want.extend_from_slice(&[127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        want.extend_from_slice(&[0, 0, 0, 0]);
        want.extend_from_slice(&[0xff; 8]);
        assert_eq!(b.len(), 72);
        assert_eq!(&b[..], &want[..]);
        if cfg!(target_endian = "little") {
            // As strace shows it on x86-64.
            assert_eq!(&b[..8], b"\x48\x00\x00\x00\x14\x00\x01\x00");
            assert_eq!(&b[8..12], b"\x07\x00\x00\x00");
        }
    }

    #[test]
    fn ipv6_and_mapped_requests() {
        let b = request(1, sa("[::1]:443"), sa("[::1]:50000")).unwrap();
        assert_eq!(b[16], AF_INET6);
        assert_eq!(&b[24..28], &[0x01, 0xbb, 0xc3, 0x50]);
        assert_eq!(&b[28..44], &Ipv6Addr::LOCALHOST.octets());
        assert_eq!(&b[44..60], &Ipv6Addr::LOCALHOST.octets());
        // A dual-stack socket's IPv4 connection is asked for as IPv4.
        let m = request(1, sa("[::ffff:127.0.0.1]:80"), sa("127.0.0.1:9")).unwrap();
        assert_eq!(m[16], AF_INET);
        assert_eq!(&m[28..32], &[127, 0, 0, 1]);
        assert_eq!(&m[32..44], &[0; 12]);
        // No connection joins an IPv4 and an IPv6 end.
        assert_eq!(request(1, sa("127.0.0.1:1"), sa("[::1]:2")), None);
    }

    #[test]
    fn link_local_pairs_need_an_interface() {
        assert!(exact_lookup_fits(sa("127.0.0.1:1"), sa("10.0.0.1:2")));
        assert!(exact_lookup_fits(sa("[::1]:1"), sa("[2001:db8::1]:2")));
        assert!(!exact_lookup_fits(sa("[fe80::1]:1"), sa("[fe80::2]:2")));
        assert!(!exact_lookup_fits(sa("[::1]:1"), sa("[febf::2]:2")));
        assert!(exact_lookup_fits(sa("[fec0::1]:1"), sa("[::1]:2")));
    }

    /// An answer as this machine's kernel (x86-64, Linux 6.18) sent it to request 7 for
    /// 127.0.0.1:39584 -> 127.0.0.1:49389: ESTABLISHED, uid 0, inode 377881 (0x5c419), then
    /// the attributes it adds unasked (INET_DIAG_SHUTDOWN, _MARK, _CGROUP_ID, _SOCKOPT).
    #[test]
    fn real_answer_bytes() {
        if !cfg!(target_endian = "little") {
            return;
        }
        let parts: &[&[u8]] = &[
            b"\x7c\x00\x00\x00\x14\x00\x00\x00\x07\x00\x00\x00\xfc\x20\x00\x00",
            b"\x02\x01\x00\x00\x9a\xa0\xc0\xed\x7f\x00\x00\x01\x00\x00\x00\x00",
            b"\x00\x00\x00\x00\x00\x00\x00\x00\x7f\x00\x00\x01\x00\x00\x00\x00",
            b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x07\x00\x00\x00",
            b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
            b"\x00\x00\x00\x00\x19\xc4\x05\x00\x05\x00\x08\x00\x00\x00\x00\x00",
            b"\x08\x00\x0f\x00\x00\x00\x00\x00\x0c\x00\x15\x00\x01\x00\x00\x00",
            b"\x00\x00\x00\x00\x06\x00\x16\x00\x52\x00\x00\x00",
        ];
        let bytes: &[u8] = &parts.concat();
        let ms: Vec<Message> = messages(bytes).map(|m| m.unwrap()).collect();
        assert_eq!(ms.len(), 1);
        assert_eq!((ms[0].kind, ms[0].seq), (SOCK_DIAG_BY_FAMILY, 7));
        let want = DiagSocket {
            local: sa("127.0.0.1:39584"),
            remote: sa("127.0.0.1:49389"),
            state: 1,
            uid: 0,
            inode: 377881,
        };
        assert_eq!(reply(&ms[0]), Ok(Reply::Socket(want.clone())));
        assert_eq!(
            answer(bytes, 7, sa("127.0.0.1:39584"), sa("127.0.0.1:49389")),
            Ok(Answer::Socket(want))
        );
        // The same bytes answer neither another request nor another pair.
        assert_eq!(
            answer(bytes, 8, sa("127.0.0.1:39584"), sa("127.0.0.1:49389")),
            Ok(Answer::Pending)
        );
        assert_eq!(
            answer(bytes, 7, sa("127.0.0.1:49389"), sa("127.0.0.1:39584")),
            Ok(Answer::Pending)
        );
    }

    /// The same kernel's answer to request 9 for 127.0.0.1:1 -> 127.0.0.1:2 (no such
    /// socket): NLMSG_ERROR -ENOENT, echoing the request, which is the one [`request`] builds.
    #[test]
    fn real_enoent_answer_bytes() {
        if !cfg!(target_endian = "little") {
            return;
        }
        let parts: &[&[u8]] = &[
            b"\x5c\x00\x00\x00\x02\x00\x00\x00\x09\x00\x00\x00\xac\x22\x00\x00",
            b"\xfe\xff\xff\xff\x48\x00\x00\x00\x14\x00\x01\x00\x09\x00\x00\x00",
            b"\x00\x00\x00\x00\x02\x06\x00\x00\xff\xff\xff\xff\x00\x01\x00\x02",
            b"\x7f\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
            b"\x7f\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
            b"\x00\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff",
        ];
        let bytes: &[u8] = &parts.concat();
        let (l, r) = (sa("127.0.0.1:1"), sa("127.0.0.1:2"));
        let ms: Vec<Message> = messages(bytes).map(|m| m.unwrap()).collect();
        assert_eq!(ms.len(), 1);
        assert_eq!(reply(&ms[0]), Ok(Reply::Error(-ENOENT)));
        assert_eq!(&ms[0].payload[4..], &request(9, l, r).unwrap()[..]);
        assert_eq!(answer(bytes, 9, l, r), Ok(Answer::NoSocket));
    }

    #[test]
    fn socket_answer_with_uid_and_inode() {
        let lo = [127, 0, 0, 1];
        let buf = nlmsg(
            SOCK_DIAG_BY_FAMILY,
            0,
            9,
            &diag_v4(1, lo, 40000, lo, 8081, 1000, 99123),
        );
        let got = answer(&buf, 9, sa("127.0.0.1:40000"), sa("127.0.0.1:8081")).unwrap();
        assert_eq!(
            got,
            Answer::Socket(DiagSocket {
                local: sa("127.0.0.1:40000"),
                remote: sa("127.0.0.1:8081"),
                state: 1,
                uid: 1000,
                inode: 99123,
            })
        );
        // Asked as a mapped address (a dual-stack capture's view), still the same socket.
        assert!(matches!(
            answer(
                &buf,
                9,
                sa("[::ffff:127.0.0.1]:40000"),
                sa("127.0.0.1:8081")
            ),
            Ok(Answer::Socket(_))
        ));
        // A socket in TIME_WAIT is answered with inode 0.
        let tw = nlmsg(
            SOCK_DIAG_BY_FAMILY,
            0,
            9,
            &diag_v4(6, lo, 40000, lo, 8081, 0, 0),
        );
        match answer(&tw, 9, sa("127.0.0.1:40000"), sa("127.0.0.1:8081")) {
            Ok(Answer::Socket(s)) => assert_eq!((s.state, s.inode), (6, 0)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_acks_and_done() {
        let pair = (sa("127.0.0.1:1"), sa("127.0.0.1:2"));
        let err = |e: i32| {
            let mut p = e.to_ne_bytes().to_vec();
            p.extend_from_slice(&[0; 16]); // the request's header
            nlmsg(NLMSG_ERROR, 0, 3, &p)
        };
        assert_eq!(answer(&err(-2), 3, pair.0, pair.1), Ok(Answer::NoSocket));
        assert_eq!(answer(&err(0), 3, pair.0, pair.1), Ok(Answer::NoSocket));
        assert_eq!(
            answer(&err(-22), 3, pair.0, pair.1),
            Ok(Answer::Failed(-22))
        );
        assert_eq!(
            answer(
                &nlmsg(NLMSG_DONE, NLM_F_MULTI, 3, &[0; 4]),
                3,
                pair.0,
                pair.1
            ),
            Ok(Answer::NoSocket)
        );
        assert_eq!(
            answer(&nlmsg(NLMSG_OVERRUN, 0, 3, &[]), 3, pair.0, pair.1),
            Ok(Answer::Failed(0))
        );
        // An error without its errno.
        assert_eq!(
            answer(&nlmsg(NLMSG_ERROR, 0, 3, &[0xfe, 0xff]), 3, pair.0, pair.1),
            Err(ParseError::Truncated { need: 4, have: 2 })
        );
        // Noops and unknown types are passed over.
        let mut buf = nlmsg(NLMSG_NOOP, 0, 3, &[]);
        buf.extend(nlmsg(99, 0, 3, &[1, 2, 3]));
        assert_eq!(answer(&buf, 3, pair.0, pair.1), Ok(Answer::Pending));
        buf.extend(err(-2));
        assert_eq!(answer(&buf, 3, pair.0, pair.1), Ok(Answer::NoSocket));
    }

    #[test]
    fn multi_part_answer_and_stale_messages() {
        let lo = [127, 0, 0, 1];
        let pair = (sa("127.0.0.1:40001"), sa("127.0.0.1:8081"));
        // A stale answer (seq 4) first, then seq 5's parts: another pair, ours, done.
        let mut buf = nlmsg(
            SOCK_DIAG_BY_FAMILY,
            0,
            4,
            &diag_v4(1, lo, 40001, lo, 8081, 0, 1),
        );
        buf.extend(nlmsg(
            SOCK_DIAG_BY_FAMILY,
            NLM_F_MULTI,
            5,
            &diag_v4(1, lo, 40000, lo, 8081, 0, 2),
        ));
        let first_two = buf.len();
        buf.extend(nlmsg(
            SOCK_DIAG_BY_FAMILY,
            NLM_F_MULTI,
            5,
            &diag_v4(1, lo, 40001, lo, 8081, 0, 3),
        ));
        buf.extend(nlmsg(NLMSG_DONE, NLM_F_MULTI, 5, &[0; 4]));
        let all: Vec<_> = messages(&buf).collect();
        assert_eq!(all.len(), 4);
        assert!(all.iter().all(|m| m.is_ok()));
        match answer(&buf, 5, pair.0, pair.1) {
            Ok(Answer::Socket(s)) => assert_eq!(s.inode, 3),
            other => panic!("{other:?}"),
        }
        // The first datagram of the answer alone: read on.
        assert_eq!(
            answer(&buf[..first_two], 5, pair.0, pair.1),
            Ok(Answer::Pending)
        );
        // An answer without our pair ends with DONE.
        let mut none = buf[..first_two].to_vec();
        none.extend(nlmsg(NLMSG_DONE, NLM_F_MULTI, 5, &[0; 4]));
        assert_eq!(answer(&none, 5, pair.0, pair.1), Ok(Answer::NoSocket));
    }

    #[test]
    fn truncated_and_hostile_buffers() {
        let lo = [127, 0, 0, 1];
        let good = nlmsg(SOCK_DIAG_BY_FAMILY, 0, 1, &diag_v4(1, lo, 1, lo, 2, 0, 5));
        let pair = (sa("127.0.0.1:1"), sa("127.0.0.1:2"));
        // Every prefix of a good answer: an error or nothing, never a panic, never a socket.
        for n in 0..good.len() {
            let got = answer(&good[..n], 1, pair.0, pair.1);
            assert!(
                matches!(got, Err(_) | Ok(Answer::Pending)),
                "{n} bytes: {got:?}"
            );
        }
        assert_eq!(
            answer(&good[..20], 1, pair.0, pair.1),
            Err(ParseError::Truncated { need: 88, have: 20 })
        );
        // A length below the header's would never advance.
        let mut zero = good.clone();
        zero[..4].copy_from_slice(&0u32.to_ne_bytes());
        assert_eq!(
            messages(&zero).collect::<Vec<_>>(),
            vec![Err(ParseError::BadField { name: "nlmsg_len" })]
        );
        // A length past the buffer.
        let mut long = good.clone();
        long[..4].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert!(matches!(
            answer(&long, 1, pair.0, pair.1),
            Err(ParseError::Truncated { .. })
        ));
        // A socket message too short for an inet_diag_msg, and one of an unknown family.
        let short = nlmsg(SOCK_DIAG_BY_FAMILY, 0, 1, &[2, 1, 0, 0]);
        assert_eq!(
            answer(&short, 1, pair.0, pair.1),
            Err(ParseError::Truncated { need: 72, have: 4 })
        );
        let mut odd = diag_v4(1, lo, 1, lo, 2, 0, 5);
        odd[0] = 77;
        assert_eq!(
            answer(&nlmsg(SOCK_DIAG_BY_FAMILY, 0, 1, &odd), 1, pair.0, pair.1),
            Err(ParseError::BadField { name: "family" })
        );
        // After a malformed message the walk stops.
        let mut two = zero.clone();
        two.extend(good.clone());
        assert_eq!(messages(&two).count(), 1);
        // Junk of every length up to a few headers: no panic.
        let junk: Vec<u8> = (0..200u32).map(|i| (i * 37 % 251) as u8).collect();
        for n in 0..junk.len() {
            let _ = answer(&junk[..n], 0, pair.0, pair.1);
            let _ = messages(&junk[..n]).count();
        }
        // A final message without its padding is still read.
        let unpadded = nlmsg(99, 0, 1, &[1]);
        assert_eq!(messages(&unpadded[..17]).count(), 1);
    }
}
