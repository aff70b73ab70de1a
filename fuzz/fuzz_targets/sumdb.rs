//! Checksum-database answers as the go command's client meets them: pairs of (request path,
//! body) in the items format. `/lookup/` bodies are parsed as records with their signed tree
//! notes, `/latest` bodies as signed tree heads, `tile/` bodies as tiles (hash tiles kept in a
//! `TileSet`), `go.sum` bodies as go.sum files. At the end every record, tile and tree head is
//! checked against the tiles at hand (Merkle proofs), with a small hash-operation budget.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modtrace::gomod::note::NoteLimits;
use modtrace::gomod::sumdb::{self, GoSumLimits};
use modtrace::gomod::tlog::{self, TileLevel, TileLimits, TileSet, SUMDB_TILE_HEIGHT};

fuzz_target!(|data: &[u8]| {
    let limits = TileLimits {
        max_tiles: 64,
        max_hash_ops: 1 << 14,
    };
    let mut set = TileSet::new(limits);
    let mut trees = Vec::new();
    let mut records = Vec::new();
    let mut tiles = Vec::new();
    let items = modtrace_fuzz::items(data);
    for pair in items.chunks(2) {
        let [path, body] = pair else {
            break;
        };
        let path = String::from_utf8_lossy(path);
        if let Some((_, what)) = path.split_once("/lookup/") {
            let (module, version) = what.split_once('@').unwrap_or((what, ""));
            let _ = sumdb::lines_outside_record(body, module, version);
            if let Ok(l) = sumdb::parse_lookup(body) {
                let _ = l.hash_for(module, version, false);
                if let Ok(head) = sumdb::open_tree_head(
                    &l.tree_note,
                    modtrace_fuzz::sumdb_verifiers(),
                    &NoteLimits::default(),
                ) {
                    trees.push(head.tree);
                }
                records.push((l.record_id, l.record_text));
            }
        } else if path.ends_with("/latest") {
            if let Ok(head) = sumdb::open_tree_head(
                body,
                modtrace_fuzz::sumdb_verifiers(),
                &NoteLimits::default(),
            ) {
                trees.push(head.tree);
            }
        } else if path.contains("tile/") {
            if let Ok((tile, bytes)) = sumdb::tile_response(&path, body) {
                let _ = tile.path();
                let _ = sumdb::cut_full_tile(bytes, tile.full_width(), tile.width);
                for r in 0..4u64 {
                    let _ = tlog::leaf_in_tile(bytes, &tile, r);
                }
                if matches!(tile.level, TileLevel::Hashes(_)) {
                    let _ = set.insert(tile.clone(), bytes);
                    tiles.push((tile, bytes.to_vec()));
                }
            }
        } else if path.ends_with("go.sum") {
            let g = sumdb::parse_go_sum(body, &GoSumLimits { max_lines: 16 });
            assert!(g.lines.len() <= 16);
        }
    }
    let h = SUMDB_TILE_HEIGHT;
    for tree in &trees {
        let _ = set.check_tree(h, tree);
        for (id, text) in &records {
            if let Ok(id) = u64::try_from(*id) {
                let _ = set.check_record(h, tree, id, text.as_bytes());
            }
        }
        for (tile, bytes) in &tiles {
            let _ = set.check_tile(tree, tile, bytes);
        }
    }
});
