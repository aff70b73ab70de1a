use super::*;
use base64::Engine;

fn hex32(s: &str) -> Hash {
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// The Certificate Transparency reference leaves and roots (RFC 6962 test data used by every
/// CT implementation).
const CT_LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];
const CT_ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// Every hash tile of a tree of `leaves.len()` records, as a sumdb server would serve them
/// for that size (the last tile of each level partial).
fn build_tiles(leaves: &[Hash], h: u8) -> Vec<(Tile, Vec<u8>)> {
    let mut out = Vec::new();
    let mut row: Vec<Hash> = leaves.to_vec(); // hashes at level L*h
    let mut level = 0u8;
    while !row.is_empty() {
        let full = 1usize << h;
        for (n, chunk) in row.chunks(full).enumerate() {
            let tile = Tile {
                height: h,
                level: TileLevel::Hashes(level),
                n: n as u64,
                width: chunk.len() as u32,
            };
            out.push((tile, chunk.concat()));
        }
        // Next tile level: complete subtrees of 2^h entries of this row.
        row = row
            .chunks(full)
            .filter(|c| c.len() == full)
            .map(tree_hash_from_leaves)
            .collect();
        level += 1;
    }
    out
}

fn leaves_n(n: usize) -> Vec<Hash> {
    (0..n)
        .map(|i| record_hash(format!("leaf {i}").as_bytes()))
        .collect()
}

#[test]
fn record_hash_matches_x_mod_golden() {
    // x/mod sumdb/tlog note_test.go TestFormatTree: RecordHash("hello world").
    let h = record_hash(b"hello world");
    assert_eq!(
        base64::engine::general_purpose::STANDARD.encode(h),
        "TszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0="
    );
}

#[test]
fn tree_hash_matches_rfc6962_reference_roots() {
    let leaves: Vec<Hash> = CT_LEAVES.iter().map(|l| record_hash(&unhex(l))).collect();
    for n in 1..=8 {
        assert_eq!(
            tree_hash_from_leaves(&leaves[..n]),
            hex32(CT_ROOTS[n - 1]),
            "size {n}"
        );
    }
    assert_eq!(tree_hash_from_leaves(&[]), [0u8; 32]);
}

#[test]
fn record_root_reproduces_ct_inclusion_vectors() {
    // CT reference: the audit path of leaf 0 in the 8-leaf tree starts with leaf 1's hash.
    assert_eq!(
        record_hash(&[0x00]),
        hex32("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7")
    );
    let leaves: Vec<Hash> = CT_LEAVES.iter().map(|l| record_hash(&unhex(l))).collect();
    let mut set = TileSet::default();
    for (t, d) in build_tiles(&leaves, 2) {
        set.insert(t, &d).unwrap();
    }
    for size in 1..=8u64 {
        let tree = Tree {
            size,
            hash: hex32(CT_ROOTS[size as usize - 1]),
        };
        assert_eq!(set.tree_hash(2, size).unwrap(), tree.hash, "size {size}");
        for r in 0..size {
            set.check_record(2, &tree, r, &unhex(CT_LEAVES[r as usize]))
                .unwrap();
            assert!(set.check_record(2, &tree, r, b"not the record").is_err());
        }
    }
}

#[test]
fn tile_paths_match_x_mod_cases() {
    // x/mod sumdb/tlog tlog_test.go tilePaths.
    let t = |height, level, n, width| Tile {
        height,
        level,
        n,
        width,
    };
    let h = TileLevel::Hashes;
    let cases = [
        ("tile/4/0/001", t(4, h(0), 1, 16)),
        ("tile/4/0/001.p/5", t(4, h(0), 1, 5)),
        ("tile/3/5/x123/x456/078", t(3, h(5), 123456078, 8)),
        ("tile/3/5/x123/x456/078.p/2", t(3, h(5), 123456078, 2)),
        ("tile/1/0/x003/x057/500", t(1, h(0), 3057500, 2)),
        (
            "tile/1/data/x003/x057/500",
            t(1, TileLevel::Data, 3057500, 2),
        ),
        ("tile/8/0/x001/x234/567", t(8, h(0), 1234567, 256)),
        ("tile/8/1/000.p/1", t(8, h(1), 0, 1)),
        ("tile/8/0/000.p/255", t(8, h(0), 0, 255)),
    ];
    for (path, tile) in cases {
        assert_eq!(tile.path(), path);
        assert_eq!(parse_tile_path(path), Ok(tile), "{path}");
    }
    for bad in [
        "tile/3/5/123/456/078",                       // groups without x
        "tile/3/-1/123/456/078",                      // negative level
        "tile/8/0/000.p/256",                         // a full tile is not partial
        "tile/8/0/000.p/0",                           // zero width
        "tile/8/0/001.p/05",                          // not canonical
        "tile/8/0/1",                                 // not 3 digits
        "tile/0/0/001",                               // height 0
        "tile/31/0/001",                              // height > 30
        "tile/8/0/x000/001",                          // leading zero group
        "tile/8/0/x1000/001",                         // group too big
        "tile/8/0",                                   // too short
        "tiles/8/0/001",                              // wrong root
        "tile/8/0/001/",                              // trailing slash
        "tile/8/0/x009/x223/x372/x036/x854/x775/808", // over i64::MAX
        "tile/8/0/x018/x446/x744/x073/x709/x551/616", // overflows u64
        "tile/+8/0/001",
    ] {
        assert!(parse_tile_path(bad).is_err(), "{bad} accepted");
    }
    // Largest N that fits Go's int64.
    let t = parse_tile_path("tile/8/0/x009/x223/x372/x036/x854/x775/807").unwrap();
    assert_eq!(t.n, i64::MAX as u64);
}

#[test]
fn tile_covers_and_leaf_in_tile_on_partial_level0_tile() {
    let leaves = leaves_n(259);
    let tiles = build_tiles(&leaves, 8);
    let (t1, d1) = tiles
        .iter()
        .find(|(t, _)| t.level == TileLevel::Hashes(0) && t.n == 1)
        .unwrap();
    assert_eq!(t1.path(), "tile/8/0/001.p/3");
    assert_eq!(d1.len(), 3 * 32);
    assert!(!tile_covers(t1, 255));
    assert!(tile_covers(t1, 256));
    assert!(tile_covers(t1, 258));
    assert!(!tile_covers(t1, 259));
    assert_eq!(leaf_in_tile(d1, t1, 257), Some(leaves[257]));
    assert_eq!(leaf_in_tile(d1, t1, 259), None);
    assert_eq!(leaf_in_tile(&d1[..64], t1, 256), None, "short body");
    // Full tile 0: 8192 bytes, 256 hashes.
    let (t0, d0) = &tiles[0];
    assert_eq!(t0.path(), "tile/8/0/000");
    assert_eq!(d0.len(), 8192);
    assert_eq!(leaf_in_tile(d0, t0, 255), Some(leaves[255]));
    // Level-1 tiles never cover records directly.
    let level1 = Tile {
        height: 8,
        level: TileLevel::Hashes(1),
        n: 0,
        width: 1,
    };
    assert!(!tile_covers(&level1, 0));
}

#[test]
fn tiles_give_every_tree_hash_and_prove_every_record_h2() {
    // Like x/mod TestTree: height 2, 100 records, so levels 0..3 of tiles exist.
    let leaves = leaves_n(100);
    let mut set = TileSet::default();
    for (t, d) in build_tiles(&leaves, 2) {
        assert_eq!(set.insert(t, &d), Ok(Inserted::New), "{}", t.path());
    }
    for size in 1..=100u64 {
        let want = tree_hash_from_leaves(&leaves[..size as usize]);
        assert_eq!(set.tree_hash(2, size), Ok(want), "size {size}");
        let tree = Tree { size, hash: want };
        assert_eq!(set.check_tree(2, &tree), Ok(()));
        for r in (0..size).step_by(7) {
            set.check_record(2, &tree, r, format!("leaf {r}").as_bytes())
                .unwrap();
        }
    }
    let tree = Tree {
        size: 100,
        hash: tree_hash_from_leaves(&leaves),
    };
    assert!(matches!(
        set.check_record(2, &tree, 5, b"leaf 6"),
        Err(ProofError::Mismatch { .. })
    ));
    assert!(matches!(
        set.check_record(2, &tree, 100, b"leaf 100"),
        Err(ProofError::RecordOutOfRange { .. })
    ));
}

#[test]
fn level1_hashes_derive_from_level0_tiles_when_level1_tiles_are_missing() {
    let leaves = leaves_n(600);
    let tiles = build_tiles(&leaves, 8);
    let mut all = TileSet::default();
    let mut level0 = TileSet::default();
    for (t, d) in &tiles {
        all.insert(*t, d).unwrap();
        if t.level == TileLevel::Hashes(0) {
            level0.insert(*t, d).unwrap();
        }
    }
    assert!(tiles.iter().any(|(t, _)| t.path() == "tile/8/1/000.p/2"));
    let want = tree_hash_from_leaves(&leaves);
    assert_eq!(all.tree_hash(8, 600), Ok(want));
    assert_eq!(level0.tree_hash(8, 600), Ok(want));
    let tree = Tree {
        size: 600,
        hash: want,
    };
    level0.check_record(8, &tree, 599, b"leaf 599").unwrap();
    all.check_record(8, &tree, 3, b"leaf 3").unwrap();
    // The level-1 tile's first entry is the root of tile/8/0/000.
    let l1 = all.get(8, 1, 0).unwrap();
    assert_eq!(&l1[..32], &tree_hash_from_leaves(&leaves[..256])[..]);
}

#[test]
fn missing_tile_is_named() {
    let leaves = leaves_n(300);
    let mut set = TileSet::default();
    for (t, d) in build_tiles(&leaves, 8) {
        if t.path() != "tile/8/0/001.p/44" {
            set.insert(t, &d).unwrap();
        }
    }
    match set.tree_hash(8, 300) {
        Err(ProofError::Missing { tile, .. }) => assert_eq!(tile, "tile/8/0/001.p/32"),
        other => panic!("{other:?}"),
    }
    // Records in the full first tile still check against a tree of 256.
    let tree = Tree {
        size: 256,
        hash: tree_hash_from_leaves(&leaves[..256]),
    };
    set.check_record(8, &tree, 10, b"leaf 10").unwrap();
}

#[test]
fn tampered_tiles_fail_the_tree_head_or_the_tile_check() {
    let leaves = leaves_n(300);
    let tree = Tree {
        size: 300,
        hash: tree_hash_from_leaves(&leaves),
    };
    let tiles = build_tiles(&leaves, 8);
    let paths: Vec<String> = tiles.iter().map(|(t, _)| t.path()).collect();
    assert_eq!(
        paths,
        ["tile/8/0/000", "tile/8/0/001.p/44", "tile/8/1/000.p/1"]
    );
    let mut clean = TileSet::default();
    for (t, d) in &tiles {
        clean.insert(*t, d).unwrap();
    }
    for (t, d) in &tiles {
        assert_eq!(clean.check_tile(&tree, t, d), Ok(()), "{}", t.path());
    }
    for (victim, at) in [(0usize, 5usize), (0, 8191), (1, 40 * 32), (2, 0)] {
        let mut set = TileSet::default();
        let mut bad = tiles[victim].1.clone();
        bad[at] ^= 1;
        for (i, (t, d)) in tiles.iter().enumerate() {
            set.insert(*t, if i == victim { &bad } else { d }).unwrap();
        }
        let (t, _) = &tiles[victim];
        assert!(
            matches!(
                set.check_tile(&tree, t, &bad),
                Err(ProofError::Mismatch { .. })
            ),
            "{} byte {at}",
            t.path()
        );
        // The tree head reads the level-1 hash for records 0..256, so it alone does not
        // notice a change inside tile 000; every other tampering shows there too.
        assert_eq!(
            set.check_tree(8, &tree).is_ok(),
            victim == 0,
            "{}",
            t.path()
        );
    }
}

#[test]
fn insert_checks_length_and_conflicts() {
    let leaves = leaves_n(10);
    let t = Tile {
        height: 8,
        level: TileLevel::Hashes(0),
        n: 0,
        width: 5,
    };
    let body5 = leaves[..5].concat();
    let mut set = TileSet::default();
    assert_eq!(set.insert(t, &body5), Ok(Inserted::New));
    assert_eq!(set.insert(t, &body5), Ok(Inserted::Same));
    assert!(matches!(
        set.insert(t, &body5[..100]),
        Err(TileError::WrongLength {
            have: 100,
            want: 160,
            ..
        })
    ));
    let t10 = Tile { width: 10, ..t };
    assert_eq!(set.insert(t10, &leaves.concat()), Ok(Inserted::Extended));
    assert_eq!(set.get(8, 0, 0).unwrap().len(), 320);
    // A narrower copy that disagrees with the kept one: another log was served.
    let mut forked = body5.clone();
    forked[40] ^= 0xff;
    assert!(matches!(
        set.insert(t, &forked),
        Err(TileError::Conflict { .. })
    ));
    let data = Tile {
        level: TileLevel::Data,
        ..t
    };
    assert!(matches!(
        set.insert(data, &body5),
        Err(TileError::NotHashTile { .. })
    ));
    // The tile limit drops instead of growing.
    let mut small = TileSet::new(TileLimits {
        max_tiles: 1,
        ..TileLimits::default()
    });
    assert_eq!(small.insert(t, &body5), Ok(Inserted::New));
    assert_eq!(
        small.insert(Tile { n: 1, ..t }, &body5),
        Ok(Inserted::Dropped)
    );
}

#[test]
fn hash_work_is_bounded() {
    let leaves = leaves_n(1024);
    let mut set = TileSet::new(TileLimits {
        max_hash_ops: 100,
        ..TileLimits::default()
    });
    for (t, d) in build_tiles(&leaves, 8) {
        if t.level == TileLevel::Hashes(0) {
            set.insert(t, &d).unwrap();
        }
    }
    assert!(matches!(
        set.tree_hash(8, 1024),
        Err(ProofError::TooMuchWork(_))
    ));
}

#[test]
fn tile_for_hash_places_hashes_like_x_mod() {
    // Level 0 record 257 at H=8: tile 1, entry 1, width 2.
    let (t, s, e) = tile_for_hash(8, 0, 257).unwrap();
    assert_eq!((t.path().as_str(), s, e), ("tile/8/0/001.p/2", 1, 2));
    // Level 3 hash 5: entries 40..48 of tile 0 at level 0.
    let (t, s, e) = tile_for_hash(8, 3, 5).unwrap();
    assert_eq!((t.path().as_str(), s, e), ("tile/8/0/000.p/48", 40, 48));
    // Level 8 hash 0: tile level 1, entry 0.
    let (t, s, e) = tile_for_hash(8, 8, 0).unwrap();
    assert_eq!((t.path().as_str(), s, e), ("tile/8/1/000.p/1", 0, 1));
    assert!(tile_for_hash(8, 3, u64::MAX).is_none());
    assert!(tile_for_hash(0, 0, 0).is_none());
}

#[test]
fn random_paths_never_panic_and_valid_ones_round_trip() {
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let alphabet = b"tile/0123456789x.pdata";
    for _ in 0..20_000 {
        let len = (next() % 40) as usize;
        let s: String = (0..len)
            .map(|_| alphabet[(next() % alphabet.len() as u64) as usize] as char)
            .collect();
        let s = format!("tile/{s}");
        if let Ok(t) = parse_tile_path(&s) {
            assert_eq!(t.path(), s);
        }
    }
    for _ in 0..2_000 {
        let height = (next() % 30 + 1) as u8;
        let full = 1u64 << height;
        let t = Tile {
            height,
            level: if next() % 5 == 0 {
                TileLevel::Data
            } else {
                TileLevel::Hashes((next() % 64) as u8)
            },
            n: (next() >> 1) >> (next() % 64),
            width: (next() % full + 1) as u32,
        };
        assert_eq!(parse_tile_path(&t.path()), Ok(t), "{}", t.path());
    }
}
