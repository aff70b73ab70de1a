use super::*;
use crate::flow::Dir;

/// Query `example.com IN A`, id 0x1a2b, RD set: the bytes `dig example.com` sends.
const QUERY: &[u8] = &[
    0x1a, 0x2b, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // header
    0x07, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 0x03, b'c', b'o', b'm', 0x00, // name
    0x00, 0x01, 0x00, 0x01, // A, IN
];

/// Its answer: QR RD RA, one A record whose owner is a pointer to offset 12 (0xc00c),
/// TTL 3600, 93.184.216.34.
const RESPONSE: &[u8] = &[
    0x1a, 0x2b, 0x81, 0x80, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, // header
    0x07, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 0x03, b'c', b'o', b'm', 0x00, 0x00, 0x01, 0x00,
    0x01, 0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x0e, 0x10, 0x00, 0x04, 93, 184, 216, 34,
];

/// A small message builder for the cases below.
struct B(Vec<u8>);
impl B {
    fn new(id: u16, flags: u16, qd: u16, an: u16) -> B {
        let mut v = Vec::new();
        for x in [id, flags, qd, an, 0, 0] {
            v.extend_from_slice(&x.to_be_bytes());
        }
        B(v)
    }
    /// Labels, then a pointer (if any) or the root. Returns the name's offset.
    fn name(&mut self, labels: &[&str], ptr: Option<u16>) -> u16 {
        let at = self.0.len() as u16;
        for l in labels {
            self.0.push(l.len() as u8);
            self.0.extend_from_slice(l.as_bytes());
        }
        match ptr {
            Some(p) => self.0.extend_from_slice(&(0xc000 | p).to_be_bytes()),
            None => self.0.push(0),
        }
        at
    }
    fn u16(&mut self, x: u16) {
        self.0.extend_from_slice(&x.to_be_bytes());
    }
    /// type, class IN, ttl, rdlength; the caller writes the rdata.
    fn rr_head(&mut self, rtype: u16, ttl: u32, rdlength: u16) {
        self.u16(rtype);
        self.u16(1);
        self.0.extend_from_slice(&ttl.to_be_bytes());
        self.u16(rdlength);
    }
}

fn tcp(msg: &[u8]) -> Vec<u8> {
    let mut v = (msg.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(msg);
    v
}

#[test]
fn query_and_answer_with_compression_pointer() {
    let q = parse_message(QUERY).unwrap();
    assert_eq!((q.id, q.response, q.rcode), (0x1a2b, false, 0));
    assert_eq!(
        q.questions,
        vec![DnsQuestion {
            name: "example.com".into(),
            qtype: TYPE_A
        }]
    );
    assert!(q.answers.is_empty());
    let r = parse_message(RESPONSE).unwrap();
    assert_eq!((r.id, r.response, r.rcode), (0x1a2b, true, 0));
    assert_eq!(
        r.answers,
        vec![DnsRecord {
            name: "example.com".into(),
            ttl: 3600,
            data: RData::A(Ipv4Addr::new(93, 184, 216, 34))
        }]
    );
}

#[test]
fn aaaa_answer() {
    let mut b = B::new(7, 0x8180, 1, 1);
    let q = b.name(&["proxy", "golang", "org"], None);
    b.u16(TYPE_AAAA);
    b.u16(1);
    b.name(&[], Some(q));
    b.rr_head(TYPE_AAAA, 300, 16);
    let ip: Ipv6Addr = "2607:f8b0:4004:c1b::8d".parse().unwrap();
    b.0.extend_from_slice(&ip.octets());
    let m = parse_message(&b.0).unwrap();
    assert_eq!(m.questions[0].qtype, TYPE_AAAA);
    assert_eq!(
        m.answers,
        vec![DnsRecord {
            name: "proxy.golang.org".into(),
            ttl: 300,
            data: RData::Aaaa(ip)
        }]
    );
}

#[test]
fn cname_chain_with_pointers_into_rdata() {
    let mut b = B::new(9, 0x8180, 1, 3);
    let q = b.name(&["proxy", "golang", "org"], None);
    b.u16(TYPE_A);
    b.u16(1);
    // proxy.golang.org CNAME www.l.google.com
    b.name(&[], Some(q));
    b.rr_head(TYPE_CNAME, 60, 18);
    let target = b.name(&["www", "l", "google", "com"], None);
    // www.l.google.com CNAME cdn.l.google.com (the target compressed into the first one)
    b.name(&[], Some(target));
    b.rr_head(TYPE_CNAME, 60, 6);
    b.name(&["cdn"], Some(target + 4));
    // cdn.l.google.com A 142.250.1.1
    let cdn = b.0.len() as u16 - 6;
    b.name(&[], Some(cdn));
    b.rr_head(TYPE_A, 30, 4);
    b.0.extend_from_slice(&[142, 250, 1, 1]);
    let m = parse_message(&b.0).unwrap();
    let data: Vec<(&str, &RData)> = m
        .answers
        .iter()
        .map(|a| (a.name.as_str(), &a.data))
        .collect();
    assert_eq!(
        data,
        vec![
            ("proxy.golang.org", &RData::Cname("www.l.google.com".into())),
            ("www.l.google.com", &RData::Cname("cdn.l.google.com".into())),
            ("cdn.l.google.com", &RData::A(Ipv4Addr::new(142, 250, 1, 1))),
        ]
    );
}

#[test]
fn other_types_and_odd_labels() {
    let mut b = B::new(1, 0x8183, 1, 1);
    b.name(&["a.b", "x y"], None);
    b.u16(16);
    b.u16(1);
    b.name(&[], Some(12));
    b.rr_head(16, 5, 3);
    b.0.extend_from_slice(b"\x02hi");
    let m = parse_message(&b.0).unwrap();
    assert_eq!(m.rcode, 3);
    assert_eq!(m.questions[0].name, "a\\.b.x\\032y");
    assert_eq!(m.answers[0].data, RData::Other { rtype: 16 });
}

#[test]
fn root_name() {
    let mut b = B::new(1, 0, 1, 0);
    b.name(&[], None);
    b.u16(2);
    b.u16(1);
    assert_eq!(parse_message(&b.0).unwrap().questions[0].name, ".");
}

#[test]
fn pointer_loops_rejected() {
    // A name that points at itself.
    let mut b = B::new(1, 0, 1, 0);
    b.name(&[], Some(12));
    b.u16(1);
    b.u16(1);
    assert_eq!(
        parse_message(&b.0),
        Err(DnsError::BadField {
            name: "name pointer loop"
        })
    );
    // Two names pointing at each other, with labels on the way.
    let mut b = B::new(1, 0, 1, 0);
    b.name(&["a"], Some(16));
    b.name(&["b"], Some(12));
    assert!(matches!(
        parse_message(&b.0),
        Err(DnsError::BadField { .. })
    ));
    // A pointer past the end.
    let mut b = B::new(1, 0, 1, 0);
    b.name(&[], Some(0x3fff));
    assert!(matches!(
        parse_message(&b.0),
        Err(DnsError::Truncated { .. })
    ));
}

#[test]
fn overlong_name_rejected() {
    let mut b = B::new(1, 0, 1, 0);
    let label = "a".repeat(63);
    b.name(&[&label, &label, &label, &label], None);
    b.u16(1);
    b.u16(1);
    assert_eq!(
        parse_message(&b.0),
        Err(DnsError::BadField {
            name: "name length"
        })
    );
    // Reserved label type 0x80.
    let mut v = B::new(1, 0, 1, 0).0;
    v.extend_from_slice(&[0x80, 0, 0, 1, 0, 1]);
    assert_eq!(
        parse_message(&v),
        Err(DnsError::BadField {
            name: "name label type"
        })
    );
}

#[test]
fn truncated_messages_say_what_they_need() {
    assert_eq!(
        parse_message(&QUERY[..5]),
        Err(DnsError::Truncated { need: 12, have: 5 })
    );
    assert_eq!(
        parse_message(&QUERY[..20]),
        Err(DnsError::Truncated { need: 21, have: 20 })
    );
    let cut = &RESPONSE[..RESPONSE.len() - 2];
    assert_eq!(
        parse_message(cut),
        Err(DnsError::Truncated {
            need: RESPONSE.len(),
            have: cut.len()
        })
    );
    // A record with the wrong length.
    let mut bad = RESPONSE.to_vec();
    let at = bad.len() - 5;
    bad[at] = 3;
    bad.pop();
    assert_eq!(
        parse_message(&bad),
        Err(DnsError::BadField { name: "A rdlength" })
    );
}

#[test]
fn tcp_framing_across_chunks_and_two_in_one() {
    let mut c = DnsTcpConn::default();
    let mut out = Vec::new();
    for b in tcp(QUERY) {
        c.on_data(Dir::ToServer, &[b], &mut out);
    }
    assert_eq!(out.len(), 1);
    let mut both = tcp(RESPONSE);
    both.extend(tcp(RESPONSE));
    both.extend(&tcp(QUERY)[..3]);
    c.on_data(Dir::ToClient, &both, &mut out);
    assert_eq!(out.len(), 3);
    assert!(out[1].response && out[2].response);
    // The 3 stray bytes are the start of a message in the other direction's buffer only.
    c.on_data(Dir::ToServer, &tcp(QUERY), &mut out);
    assert_eq!(out.len(), 4);
    c.on_data(Dir::ToClient, &tcp(QUERY)[3..], &mut out);
    assert_eq!(out.len(), 5);
    assert!(!out[4].response);
}

#[test]
fn tcp_gap_drops_partial_and_resyncs_at_next_chunk() {
    let mut c = DnsTcpConn::default();
    let mut out = Vec::new();
    let msg = tcp(RESPONSE);
    c.on_data(Dir::ToClient, &msg[..10], &mut out);
    c.on_gap(Dir::ToClient);
    // The rest of the lost message: garbage to the framer, dropped with its chunk.
    c.on_data(Dir::ToClient, &msg[20..], &mut out);
    assert!(out.is_empty());
    c.on_data(Dir::ToClient, &msg, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].answers.len(), 1);
}

#[test]
fn random_bytes_never_panic() {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..20_000 {
        let len = (next() % 80) as usize;
        let mut buf: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        // Often start from a real message so the parser gets deep.
        if next() % 2 == 0 {
            buf = RESPONSE.to_vec();
            for _ in 0..1 + next() % 4 {
                let i = (next() as usize) % buf.len();
                buf[i] = next() as u8;
            }
        }
        let _ = parse_message(&buf);
        let mut c = DnsTcpConn::default();
        let mut out = Vec::new();
        c.on_data(Dir::ToServer, &buf, &mut out);
        c.on_gap(Dir::ToServer);
        c.on_data(Dir::ToServer, &buf, &mut out);
        assert!(c.dirs.iter().all(|d| d.partial.len() <= 2 + 65_535));
    }
}
