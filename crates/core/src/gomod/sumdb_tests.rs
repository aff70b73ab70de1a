use super::*;
use crate::gomod::note::{SigStatus, Verdict};
use crate::gomod::tlog::{tree_hash_from_leaves, TileSet};
use ed25519_dalek::{Signer, SigningKey};

/// A real sum.golang.org `/lookup` response (github.com/libp2p/go-libp2p-blankhost@v0.2.0,
/// quoted in forage's docs/go.md); its tree note verifies under the go command's key.
const REAL_LOOKUP: &str = "1354545\n\
github.com/libp2p/go-libp2p-blankhost v0.2.0 h1:3EsGAi0CBGcZ33GwRuXEYJLLPoVWyXJ1bcJzAJjINkk=\n\
github.com/libp2p/go-libp2p-blankhost v0.2.0/go.mod h1:eduNKXGTioTuQAUcZ5epXi9vMl+t4d8ugUBRQ4SqaNQ=\n\
\n\
go.sum database tree\n\
3784599\n\
7uvxIZ67TZygcq/AehTD8iHYt81Ih+Zl2Y7vXZbfszQ=\n\
\n\
— sum.golang.org Az3grn972wXskjQrsZhVGc93fTU2uOsmSTiId1Wn1lxDCup5z4ggl1/4gaUqOkMa6cMbYvjB7hn7yemNr7Zqanol/go=\n";

/// sum.golang.org `/latest` of 2024-09-23 (quoted in a transparency-log witness's tests).
const REAL_LATEST: &str = "go.sum database tree\n\
30055305\n\
mXfgRcJ0bG0j3CPdKwgGWtUzBUbX67saZGRmFuJGGsM=\n\
\n\
— sum.golang.org Az3grpgEild5qw7+5dtV13Kf1C2Xurm8q4fhdxvcsDHnqNTaxL2AFjBY+2TyGKevucFcAAlWFJJYle3EJlDCrQ+y3A8=\n";

fn lim() -> NoteLimits {
    NoteLimits::default()
}

#[test]
fn real_lookup_body_parses_and_its_tree_note_verifies() {
    let l = parse_lookup(REAL_LOOKUP.as_bytes()).unwrap();
    assert_eq!(l.record_id, 1354545);
    assert_eq!(l.lines.len(), 2);
    assert_eq!(l.malformed_lines, 0);
    let m = "github.com/libp2p/go-libp2p-blankhost";
    assert_eq!(
        l.hash_for(m, "v0.2.0", false),
        Some("h1:3EsGAi0CBGcZ33GwRuXEYJLLPoVWyXJ1bcJzAJjINkk=")
    );
    assert_eq!(
        l.hash_for(m, "v0.2.0", true),
        Some("h1:eduNKXGTioTuQAUcZ5epXi9vMl+t4d8ugUBRQ4SqaNQ=")
    );
    assert_eq!(l.hash_for(m, "v0.2.1", false), None);
    assert_eq!(l.lines[1].to_string(), REAL_LOOKUP.lines().nth(2).unwrap());
    assert!(l.record_text.ends_with("=\n") && !l.record_text.contains("tree"));
    assert_eq!(l.leaf_hash(), tlog::record_hash(l.record_text.as_bytes()));

    let head = open_tree_head(&l.tree_note, &[Verifier::go_sumdb()], &lim()).unwrap();
    assert_eq!(head.tree.size, 3784599);
    assert_eq!(
        note::base64_encode(&head.tree.hash),
        "7uvxIZ67TZygcq/AehTD8iHYt81Ih+Zl2Y7vXZbfszQ="
    );
    assert_eq!(
        head.note.verdict(),
        Verdict::Verified {
            by: vec![("sum.golang.org".into(), 0x033de0ae)]
        }
    );
    assert!(lines_outside_record(REAL_LOOKUP.as_bytes(), m, "v0.2.0").is_empty());
}

#[test]
fn real_latest_verifies_and_a_changed_size_does_not() {
    let head = open_tree_head(REAL_LATEST.as_bytes(), &[Verifier::go_sumdb()], &lim()).unwrap();
    assert_eq!(head.tree.size, 30055305);
    assert_eq!(head.note.status, [SigStatus::Verified]);
    let forged = REAL_LATEST.replace("30055305", "30055306");
    let head = open_tree_head(forged.as_bytes(), &[Verifier::go_sumdb()], &lim()).unwrap();
    assert_eq!(head.tree.size, 30055306);
    assert!(matches!(
        head.note.verdict(),
        Verdict::SignatureInvalid { .. }
    ));
    // Without the key: the tree is still read, the verdict is unknown-key.
    let head = open_tree_head(REAL_LATEST.as_bytes(), &[], &lim()).unwrap();
    assert!(matches!(head.note.verdict(), Verdict::UnknownKey { .. }));
    // Not a tree note.
    let msg = "hello\n\n— sum.golang.org Az3grpgEild5qw7+5dtV13Kf1C2Xurm8q4fhdxvcsDHnqNTaxL2AFjBY+2TyGKevucFcAAlWFJJYle3EJlDCrQ+y3A8=\n";
    assert!(matches!(
        open_tree_head(msg.as_bytes(), &[], &lim()),
        Err(TreeHeadError::Tree(_))
    ));
}

#[test]
fn lookup_parsing_follows_x_mod_parse_record() {
    // x/mod sumdb/tlog note_test.go TestParseRecord.
    let l = parse_lookup(b"123456789012\nhello, world\n\njunk on end\x01\xff").unwrap();
    assert_eq!(l.record_id, 123456789012);
    assert_eq!(l.record_text, "hello, world\n");
    assert_eq!(l.tree_note, b"junk on end\x01\xff");
    assert_eq!((l.lines.len(), l.malformed_lines), (0, 1));
    let l = parse_lookup(b"123456789012\nhello, world\n\n").unwrap();
    assert!(l.tree_note.is_empty());
    for bad in [
        &b"not-123456789012\nhello, world\n\n"[..],
        b"123\nhello\x01world\n\n",
        b"123\nhello\xffworld\n\n",
        b"123\nhello world\n",
        b"0x123\nhello world\n\n",
        b"",
        b"\n\n\n",
        b"123",
    ] {
        assert!(
            parse_lookup(bad).is_err(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

/// Signs `text` as a note with a key made from `seed`.
fn signed(text: &str, name: &str, seed: &[u8; 32]) -> (String, Verifier) {
    let sk = SigningKey::from_bytes(seed);
    let v = Verifier::from_ed25519(name, sk.verifying_key().to_bytes()).unwrap();
    let mut raw = v.key_hash.to_be_bytes().to_vec();
    raw.extend_from_slice(&sk.sign(text.as_bytes()).to_bytes());
    (
        format!("{text}\n— {name} {}\n", note::base64_encode(&raw)),
        v,
    )
}

#[test]
fn lines_after_the_record_are_not_record_lines() {
    // A signed tree note whose text carries a go.sum-looking line after the tree (ParseTree
    // ignores extra lines): the pre-2026 client would have taken it.
    let text = "go.sum database tree\n5\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n\
                example.test/Hello v1.1.0 h1:EVILEVILEVILEVILEVILEVILEVILEVILEVILEVILEVI=\n";
    let (note, v) = signed(text, "sum.lab.test", &[3; 32]);
    let body = format!(
        "4\nexample.test/Hello v1.1.0 h1:hN/VGKYrHSCNtaxK2rqHGjUJjwQpKok0ukbrR/AycQk=\n\
         example.test/Hello v1.1.0/go.mod h1:+QYzkm9a7NM+kajY6P3eW6uevRCSPwOaLtKHakx9v4s=\n\n{note}"
    );
    let l = parse_lookup(body.as_bytes()).unwrap();
    assert_eq!(
        l.hash_for("example.test/Hello", "v1.1.0", false),
        Some("h1:hN/VGKYrHSCNtaxK2rqHGjUJjwQpKok0ukbrR/AycQk=")
    );
    assert_eq!(l.lines.len(), 2);
    assert_eq!(
        lines_outside_record(body.as_bytes(), "example.test/Hello", "v1.1.0"),
        ["example.test/Hello v1.1.0 h1:EVILEVILEVILEVILEVILEVILEVILEVILEVILEVILEVI="]
    );
    let head = open_tree_head(&l.tree_note, &[v], &lim()).unwrap();
    assert_eq!(head.tree.size, 5);
    assert!(matches!(head.note.verdict(), Verdict::Verified { .. }));
}

/// The whole check the go command makes on a lookup, from bytes: parse the body, open the
/// tree note, authenticate the record with the tiles.
#[test]
fn lookup_record_is_proven_by_tiles_under_a_signed_head() {
    let records: Vec<String> = (0..300)
        .map(|i| format!("example.test/m{i} v1.0.0 h1:AAAA{i}=\nexample.test/m{i} v1.0.0/go.mod h1:BBBB{i}=\n"))
        .collect();
    let leaves: Vec<Hash> = records
        .iter()
        .map(|r| tlog::record_hash(r.as_bytes()))
        .collect();
    let tree = Tree {
        size: 300,
        hash: tree_hash_from_leaves(&leaves),
    };
    let (note, v) = signed(&note::format_tree(&tree), "sum.lab.test", &[5; 32]);
    let id = 261usize;
    let body = format!("{id}\n{}\n{note}", records[id]);

    // Tiles as the server would serve them for size 300, height 8, through tile_response.
    let mut served: Vec<(String, Vec<u8>)> = vec![
        ("tile/8/0/000".into(), leaves[..256].concat()),
        ("tile/8/0/001.p/44".into(), leaves[256..].concat()),
        (
            "tile/8/1/000.p/1".into(),
            tree_hash_from_leaves(&leaves[..256]).to_vec(),
        ),
    ];
    let mut tiles = TileSet::default();
    for (path, data) in &served {
        let (t, d) = tile_response(&format!("/sumdb/sum.lab.test/{path}"), data).unwrap();
        tiles.insert(t, d).unwrap();
    }
    let l = parse_lookup(body.as_bytes()).unwrap();
    let head = open_tree_head(&l.tree_note, std::slice::from_ref(&v), &lim()).unwrap();
    assert!(matches!(head.note.verdict(), Verdict::Verified { .. }));
    assert_eq!(head.tree, tree);
    tiles
        .check_record(8, &head.tree, l.record_id as u64, l.record_text.as_bytes())
        .unwrap();
    tiles.check_tree(8, &head.tree).unwrap();
    let t1 = tlog::parse_tile_path("tile/8/0/001.p/44").unwrap();
    assert_eq!(
        tlog::leaf_in_tile(&served[1].1, &t1, id as u64),
        Some(l.leaf_hash())
    );

    // A record changed in transit no longer matches its leaf.
    let evil = body.replace("h1:AAAA261=", "h1:EVIL261=");
    let l = parse_lookup(evil.as_bytes()).unwrap();
    assert!(tiles
        .check_record(8, &head.tree, l.record_id as u64, l.record_text.as_bytes())
        .is_err());

    // A mirror serving another log's tile: the insert conflicts with the copy seen before.
    served[1].1[0] ^= 1;
    let (t, d) = tile_response(&served[1].0, &served[1].1).unwrap();
    assert!(matches!(
        tiles.insert(t, d),
        Err(TileError::Conflict { .. })
    ));
}

#[test]
fn supported_statuses() {
    assert_eq!(supported_answer(200), SupportedAnswer::ProxiesSumdb);
    assert_eq!(supported_answer(404), SupportedAnswer::TryNext);
    assert_eq!(supported_answer(410), SupportedAnswer::TryNext);
    assert_eq!(supported_answer(500), SupportedAnswer::Unavailable);
    assert_eq!(supported_answer(302), SupportedAnswer::Unavailable);
    assert_eq!(supported_answer(204), SupportedAnswer::Unavailable);
}

#[test]
fn tile_responses_are_typed_and_length_checked() {
    let full = vec![7u8; 8192];
    let (t, d) = tile_response("/sumdb/sum.golang.org/tile/8/0/x001/x234/567", &full).unwrap();
    assert_eq!((t.n, t.width, d.len()), (1234567, 256, 8192));
    let (t, _) = tile_response("https://sum.golang.org/tile/8/1/000.p/5", &full[..160]).unwrap();
    assert_eq!((t.level, t.width), (TileLevel::Hashes(1), 5));
    assert!(matches!(
        tile_response("tile/8/0/000.p/5", &full[..161]),
        Err(TileError::WrongLength {
            have: 161,
            want: 160,
            ..
        })
    ));
    assert!(matches!(
        tile_response("tile/8/0/000", &full[..8191]),
        Err(TileError::WrongLength { .. })
    ));
    // Data tiles are records, any length.
    let (t, d) = tile_response("tile/8/data/000.p/2", b"1\na\n\n").unwrap();
    assert_eq!((t.level, d.len()), (TileLevel::Data, 5));
    assert!(tile_response("/lookup/x@v1", b"").is_err());
    assert!(tile_response("tile/8/0/1", &full).is_err());
    // A full tile cut to the partial width the client asked for.
    let cut = cut_full_tile(&full, 256, 5).unwrap();
    assert_eq!(cut.len(), 160);
    assert_eq!(cut_full_tile(&full[..100], 256, 5), None);
}

#[test]
fn go_sum_files_parse_like_read_go_sum() {
    let text = "example.test/Hello v1.1.0 h1:hN/VGKYrHSCNtaxK2rqHGjUJjwQpKok0ukbrR/AycQk=\n\
                example.test/Hello v1.1.0/go.mod h1:+QYzkm9a7NM+kajY6P3eW6uevRCSPwOaLtKHakx9v4s=\n\
                \n\
                \t  \r\n\
                example.test/Util\tv0.2.0/go.mod\th1:5o9bMNbiHgK2G6gB5Om4QCcY9HwKMU8qG2pCt7YQMgQ=\r\n\
                old.test/x v1.0.0/go.mod h1:G7mAYYxgmS0lVkHyy2hEOLQCFB0DlQFTMLWggykrydY=\n\
                too few\n\
                a b c d\n\
                example.test/Util v0.2.0 h1:be5MhvjQb2tDq8e2ogEUAKrozTz4B6lNS0hJ/N8ZyVI=";
    let s = parse_go_sum(text.as_bytes(), &GoSumLimits::default());
    assert_eq!(s.lines.len(), 4);
    assert_eq!(s.malformed, [7, 8]);
    assert_eq!(s.dropped_empty_go_mod, 1);
    assert!(s.contains("example.test/Hello", "v1.1.0", false));
    assert!(s.contains("example.test/Util", "v0.2.0", true));
    assert!(!s.contains("old.test/x", "v1.0.0", true));
    assert_eq!(
        s.hashes_for("example.test/Util", "v0.2.0", false)
            .collect::<Vec<_>>(),
        ["h1:be5MhvjQb2tDq8e2ogEUAKrozTz4B6lNS0hJ/N8ZyVI="]
    );
    assert_eq!(s.lines[2].version_field(), "v0.2.0/go.mod");
    // U+00A0 is white space for strings.Fields too.
    let nbsp = parse_go_sum("m\u{a0}v1.0.0 h1:x=".as_bytes(), &GoSumLimits::default());
    assert_eq!(nbsp.lines[0].module, "m");
    let small = parse_go_sum(text.as_bytes(), &GoSumLimits { max_lines: 2 });
    assert_eq!((small.lines.len(), small.truncated), (2, 2));
}

#[test]
fn random_bodies_never_panic() {
    let mut x: u64 = 0xd1b54a32d192ed03;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let seeds = [REAL_LOOKUP.as_bytes(), REAL_LATEST.as_bytes()];
    for round in 0..3000 {
        let mut b = seeds[round % 2].to_vec();
        if round % 3 == 0 {
            b = (0..next() % 300).map(|_| (next() % 128) as u8).collect();
        } else {
            for _ in 0..(next() % 4 + 1) {
                let i = (next() % b.len() as u64) as usize;
                b[i] = next() as u8;
            }
        }
        let _ = parse_lookup(&b);
        let _ = lines_outside_record(&b, "github.com/libp2p/go-libp2p-blankhost", "v0.2.0");
        let _ = open_tree_head(&b, &[Verifier::go_sumdb()], &lim());
        let _ = parse_go_sum(&b, &GoSumLimits::default());
        let _ = tile_response(&String::from_utf8_lossy(&b), &b);
    }
}
