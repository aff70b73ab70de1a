use super::*;
use crate::gomod::tlog::record_hash;
use ed25519_dalek::{Signer, SigningKey};

// Vectors from golang.org/x/mod sumdb/note note.go and note_test.go.
const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const PETER_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                    then you don't know what your problem is.\n";
const PETER_SIG: &str = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const ENOCH_SIG: &str = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

fn lim() -> NoteLimits {
    NoteLimits::default()
}

fn peter() -> Verifier {
    Verifier::parse(PETER_VKEY).unwrap()
}

fn enoch() -> Verifier {
    Verifier::parse(ENOCH_VKEY).unwrap()
}

/// Signs `text` as x/mod note `Sign` does, with an Ed25519 seed.
fn sign_line(name: &str, key_hash: u32, seed: &[u8; 32], text: &str) -> String {
    let sk = SigningKey::from_bytes(seed);
    let sig = sk.sign(text.as_bytes());
    let mut raw = key_hash.to_be_bytes().to_vec();
    raw.extend_from_slice(&sig.to_bytes());
    format!("— {name} {}\n", base64_encode(&raw))
}

fn verifier_for_seed(name: &str, seed: &[u8; 32]) -> Verifier {
    let pk = SigningKey::from_bytes(seed).verifying_key().to_bytes();
    Verifier::from_ed25519(name, pk).unwrap()
}

#[test]
fn verifier_key_parses_and_round_trips() {
    let v = peter();
    assert_eq!(v.name, "PeterNeumann");
    assert_eq!(v.key_hash, 0xc74f20a3);
    assert_eq!(v.encode(), PETER_VKEY);
    let go = Verifier::go_sumdb();
    assert_eq!(go.name, "sum.golang.org");
    assert_eq!(go.key_hash, 0x033de0ae);
    assert_eq!(go.encode(), GO_SUMDB_KEY);
}

#[test]
fn verifier_key_manglings_are_refused_like_x_mod() {
    // note_test.go TestNewVerifier: every proper substring and every byte+1 fails.
    let b = PETER_VKEY.as_bytes();
    for i in 0..=b.len() {
        for j in i + 1..=b.len() {
            if i != 0 || j != b.len() {
                let k = std::str::from_utf8(&b[i..j]).unwrap();
                assert!(Verifier::parse(k).is_err(), "{k:?} accepted");
            }
        }
    }
    let mut m = b.to_vec();
    for i in 0..m.len() {
        m[i] += 1;
        let k = std::str::from_utf8(&m).unwrap();
        assert!(Verifier::parse(k).is_err(), "{k:?} accepted");
        m[i] -= 1;
    }
    // Wrong key length with an adjusted hash; unknown algorithm with an adjusted hash.
    assert_eq!(
        Verifier::parse(
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
        ),
        Err(KeyError::Malformed("Ed25519 key is not 32 bytes"))
    );
    assert_eq!(
        Verifier::parse("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
        Err(KeyError::UnknownAlgorithm(0x65))
    );
    assert!(matches!(
        Verifier::parse("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
        Err(KeyError::BadHash {
            claimed: 0xc74f20a4,
            computed: 0xc74f20a3
        })
    ));
    assert!(
        Verifier::parse("Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
            .is_err()
    );
    assert!(Verifier::parse("").is_err());
    assert!(Verifier::parse("a+b+c+d").is_err());
}

#[test]
fn ed25519_signing_reproduces_x_mod_signature() {
    // Ed25519 is deterministic: signing TEXT with PeterNeumann's seed gives note.go's line.
    let skey = go_base64_decode(PETER_SKEY.splitn(5, '+').last().unwrap()).unwrap();
    assert_eq!(skey[0], ALG_ED25519);
    let seed: [u8; 32] = skey[1..].try_into().unwrap();
    assert_eq!(verifier_for_seed("PeterNeumann", &seed), peter());
    assert_eq!(
        sign_line("PeterNeumann", 0xc74f20a3, &seed, TEXT),
        PETER_SIG
    );
}

#[test]
fn open_one_verified_one_unknown() {
    let msg = format!("{TEXT}\n{PETER_SIG}{ENOCH_SIG}");
    let o = open(msg.as_bytes(), &[peter()], &lim()).unwrap();
    assert_eq!(o.note.text, TEXT);
    assert_eq!(o.status, [SigStatus::Verified, SigStatus::UnknownKey]);
    assert_eq!(
        o.verdict(),
        Verdict::Verified {
            by: vec![("PeterNeumann".into(), 0xc74f20a3)]
        }
    );
    assert_eq!(o.verified_text(), Some(TEXT));
    assert_eq!(o.note.signatures[1].name, "EnochRoot");
    assert_eq!(o.note.signatures[1].key_hash, 0xaf0cfe78);
    assert_eq!(o.note.signatures[1].sig.len(), 64);

    let both = open(msg.as_bytes(), &[peter(), enoch()], &lim()).unwrap();
    assert_eq!(both.status, [SigStatus::Verified, SigStatus::Verified]);

    let none = open(msg.as_bytes(), &[], &lim()).unwrap();
    assert_eq!(
        none.verdict(),
        Verdict::UnknownKey {
            keys: vec![
                ("PeterNeumann".into(), 0xc74f20a3),
                ("EnochRoot".into(), 0xaf0cfe78)
            ]
        }
    );
    assert_eq!(none.verified_text(), None);
}

#[test]
fn open_ambiguous_and_duplicate_verifiers() {
    let enoch_only = format!("{TEXT}\n{ENOCH_SIG}");
    assert_eq!(
        open(enoch_only.as_bytes(), &[enoch(), peter(), enoch()], &lim()),
        Err(NoteError::AmbiguousKey {
            name: "EnochRoot".into(),
            key_hash: 0xaf0cfe78
        })
    );
    // An unused duplicated verifier does not matter.
    let peter_only = format!("{TEXT}\n{PETER_SIG}");
    assert!(open(peter_only.as_bytes(), &[enoch(), peter(), enoch()], &lim()).is_ok());
}

#[test]
fn open_too_many_signatures() {
    let msg = format!("{TEXT}\n{}", PETER_SIG.repeat(101));
    assert_eq!(
        open(msg.as_bytes(), &[peter()], &lim()),
        Err(NoteError::TooManySignatures(100))
    );
    let msg = format!("{TEXT}\n{}", PETER_SIG.repeat(100));
    let o = open(msg.as_bytes(), &[peter()], &lim()).unwrap();
    assert_eq!(o.status[0], SigStatus::Verified);
    assert!(o.status[1..].iter().all(|s| *s == SigStatus::Duplicate));
}

#[test]
fn open_invalid_signature_and_duplicates() {
    let bad_peter = format!("{}ABCD{}", &PETER_SIG[..60], &PETER_SIG[60..]);
    let msg = format!("{TEXT}\n{bad_peter}");
    let o = open(msg.as_bytes(), &[peter()], &lim()).unwrap();
    assert_eq!(o.status, [SigStatus::Invalid]);
    assert_eq!(
        o.verdict(),
        Verdict::SignatureInvalid {
            name: "PeterNeumann".into(),
            key_hash: 0xc74f20a3
        }
    );
    // x/mod: repeated verified signatures and identical unknown lines are dropped; a
    // different unknown signature by the same key is kept.
    let bad_enoch = format!("{}ABCD{}", &ENOCH_SIG[..60], &ENOCH_SIG[60..]);
    let msg = format!("{TEXT}\n{PETER_SIG}{PETER_SIG}{ENOCH_SIG}{ENOCH_SIG}{bad_enoch}");
    let o = open(msg.as_bytes(), &[peter()], &lim()).unwrap();
    assert_eq!(
        o.status,
        [
            SigStatus::Verified,
            SigStatus::Duplicate,
            SigStatus::UnknownKey,
            SigStatus::Duplicate,
            SigStatus::UnknownKey
        ]
    );
    assert!(matches!(o.verdict(), Verdict::Verified { .. }));
}

#[test]
fn malformed_notes_are_refused() {
    let bad = [
        TEXT.to_string(),
        format!("{TEXT}\n"),
        format!("{TEXT}\n{}", &PETER_SIG[..PETER_SIG.len() - 1]),
        format!("\x01{TEXT}\n{PETER_SIG}"),
        format!("{TEXT}\n— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"),
        format!("{TEXT}\n{PETER_SIG}Unexpected line.\n"),
        // An ASCII dash (or two) instead of U+2014.
        format!("{TEXT}\n{}", PETER_SIG.replacen('—', "-", 1)),
        format!("{TEXT}\n{}", PETER_SIG.replacen('—', "--", 1)),
        // U+2013 EN DASH.
        format!("{TEXT}\n{}", PETER_SIG.replacen('—', "–", 1)),
        // No space after the dash; no base64; bad base64; too short.
        format!("{TEXT}\n{}", PETER_SIG.replacen("— ", "—", 1)),
        format!("{TEXT}\n— PeterNeumann\n"),
        format!("{TEXT}\n— PeterNeumann \n"),
        format!("{TEXT}\n— PeterNeumann x08go/ZJ!uBS9UG\n"),
        format!("{TEXT}\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM\n"),
        format!("{TEXT}\n— PeterNeumann AAAA\n"),
        format!("{TEXT}\n— Peter+Neumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"),
        format!("{TEXT}\r\n{PETER_SIG}"),
    ];
    for msg in bad.iter() {
        assert!(
            matches!(
                open(msg.as_bytes(), &[peter()], &lim()),
                Err(NoteError::Malformed(_))
            ),
            "accepted {msg:?}"
        );
    }
    let mut invalid_utf8 = b"\xff".to_vec();
    invalid_utf8.extend_from_slice(format!("{TEXT}\n{PETER_SIG}").as_bytes());
    assert_eq!(
        open(&invalid_utf8, &[peter()], &lim()),
        Err(NoteError::Malformed("not UTF-8"))
    );
}

/// A tree note signed by a key made in the test (fixed seed: reproducible).
fn lab_tree_note(seed: &[u8; 32], line_name: &str, line_hash: u32) -> (String, Tree) {
    let tree = Tree {
        size: 42,
        hash: record_hash(b"lab tree"),
    };
    let text = format_tree(&tree);
    let sig = sign_line(line_name, line_hash, seed, &text);
    (format!("{text}\n{sig}"), tree)
}

#[test]
fn generated_key_signs_tree_note_that_verifies_and_parses() {
    let seed = [7u8; 32];
    let v = verifier_for_seed("sum.lab.test", &seed);
    let reparsed = Verifier::parse(&v.encode()).unwrap();
    assert_eq!(reparsed, v);
    let (msg, tree) = lab_tree_note(&seed, "sum.lab.test", v.key_hash);
    let o = open(msg.as_bytes(), &[v.clone(), Verifier::go_sumdb()], &lim()).unwrap();
    assert_eq!(
        o.verdict(),
        Verdict::Verified {
            by: vec![("sum.lab.test".into(), v.key_hash)]
        }
    );
    assert_eq!(parse_tree(o.verified_text().unwrap()), Ok(tree));
    // Not signed by sum.golang.org: unknown key when only Go's key is given.
    let go_only = open(msg.as_bytes(), &[Verifier::go_sumdb()], &lim()).unwrap();
    assert!(matches!(go_only.verdict(), Verdict::UnknownKey { .. }));

    // One byte of the signed text changed: the known key's signature is invalid.
    let tampered = msg.replacen("42", "43", 1);
    let o = open(tampered.as_bytes(), std::slice::from_ref(&v), &lim()).unwrap();
    assert_eq!(o.status, [SigStatus::Invalid]);

    // Signed by another key under the same name and the known key's hash (an impostor):
    // signature invalid, not unknown.
    let (forged, _) = lab_tree_note(&[9u8; 32], "sum.lab.test", v.key_hash);
    let o = open(forged.as_bytes(), std::slice::from_ref(&v), &lim()).unwrap();
    assert_eq!(
        o.verdict(),
        Verdict::SignatureInvalid {
            name: "sum.lab.test".into(),
            key_hash: v.key_hash
        }
    );
    // The impostor's own key hash under the same name: unknown key.
    let other = verifier_for_seed("sum.lab.test", &[9u8; 32]);
    assert_ne!(other.key_hash, v.key_hash);
    let (own, _) = lab_tree_note(&[9u8; 32], "sum.lab.test", other.key_hash);
    let o = open(own.as_bytes(), &[v], &lim()).unwrap();
    assert!(matches!(o.verdict(), Verdict::UnknownKey { .. }));
}

#[test]
fn tree_note_text_like_x_mod() {
    // x/mod sumdb/tlog note_test.go TestParseTree / TestFormatTree.
    let good = "go.sum database tree\n123456789012\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n";
    let want = Tree {
        size: 123456789012,
        hash: record_hash(b"hello world"),
    };
    assert_eq!(parse_tree(good), Ok(want));
    assert_eq!(format_tree(&want), good);
    for bad in [
        format!("not-{good}"),
        "go.sum database tree\n0xabcdef\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n".into(),
        "go.sum database tree\n123456789012\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBTOOBIG=\n"
            .into(),
        "go.sum database tree\n-1\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n".into(),
        "go.sum database tree\n1\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=".into(),
        "go.sum database tree\n\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n".into(),
    ] {
        assert!(parse_tree(&bad).is_err(), "{bad:?}");
    }
    for junk in ["JOE", "JOE\n", &"JOE\n".repeat(1000)] {
        assert_eq!(parse_tree(&format!("{good}{junk}")), Ok(want));
    }
    // strconv.ParseInt accepts a sign.
    assert_eq!(
        parse_tree("go.sum database tree\n+5\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n")
            .map(|t| t.size),
        Ok(5)
    );
}

#[test]
fn go_base64_rules() {
    assert_eq!(go_base64_decode("QQ=="), Some(b"A".to_vec()));
    assert_eq!(go_base64_decode("QQ"), None, "padding is required");
    assert_eq!(
        go_base64_decode("QR=="),
        Some(b"A".to_vec()),
        "trailing bits accepted"
    );
    assert_eq!(
        go_base64_decode("Q\nQ=\r="),
        Some(b"A".to_vec()),
        "CR/LF skipped"
    );
    assert_eq!(go_base64_decode("QQ== "), None);
    assert_eq!(go_base64_decode(""), Some(vec![]));
    assert_eq!(go_parse_int64("007"), Some(7));
    assert_eq!(go_parse_int64("9223372036854775808"), None);
    assert_eq!(go_parse_int64("+"), None);
    assert_eq!(go_parse_int64(" 1"), None);
}

#[test]
fn random_and_mutated_notes_never_panic() {
    let mut x: u64 = 0x2545f4914f6cdd1d;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let base = format!("{TEXT}\n{PETER_SIG}{ENOCH_SIG}").into_bytes();
    let vs = [peter(), enoch()];
    let mut verified = 0;
    for round in 0..2000 {
        let mut m = base.clone();
        for _ in 0..(next() % 4 + 1) {
            let i = (next() % m.len() as u64) as usize;
            match next() % 3 {
                0 => m[i] = next() as u8,
                1 => {
                    m.remove(i);
                }
                _ => m.insert(i, next() as u8),
            }
        }
        if round % 3 == 0 {
            m = (0..next() % 200).map(|_| next() as u8).collect();
        }
        if let Ok(o) = open(&m, &vs, &lim()) {
            if matches!(o.verdict(), Verdict::Verified { .. }) {
                // A verified note's text is byte for byte the original text.
                assert_eq!(o.note.text, TEXT);
                verified += 1;
            }
        }
        let s = String::from_utf8_lossy(&m);
        let _ = Verifier::parse(&s);
        let _ = parse_tree(&s);
    }
    assert!(
        verified > 0,
        "some mutations only touch the unknown or a dropped line"
    );
}
