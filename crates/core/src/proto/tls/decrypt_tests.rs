//! Record decryption on published vectors (RFC 8448 3, Simple 1-RTT Handshake) and on records
//! sealed here for the cases the RFC does not show (AES-256-GCM, ChaCha20, TLS 1.2, KeyUpdate,
//! 0-RTT, padding, a changed byte, random input).

use super::*;
use crate::proto::tls::keylog::decode_hex;
use crate::proto::tls::keys::{tls12_key_block, tls12_suite, HashAlg};
use crate::proto::tls::{ClientHello, ServerHello, TlsSession};

fn h(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    decode_hex(&s).unwrap()
}

/// Splits a whole record into (type, version, body).
fn split(record: &[u8]) -> (u8, u16, &[u8]) {
    let len = u16::from_be_bytes([record[3], record[4]]) as usize;
    assert_eq!(record.len(), 5 + len);
    (
        record[0],
        u16::from_be_bytes([record[1], record[2]]),
        &record[5..],
    )
}

// RFC 8448 3: secrets.
const S_HS: &str = "b6 7b 7d 69 0c c1 6c 4e 75 e5 42 13 cb 2d 37 b4 e9 c9 12 bc de d9 10 5d 42 be fd 59 d3 91 ad 38";
const C_HS: &str = "b3 ed db 12 6e 06 7f 35 a7 80 b3 ab f4 5e 2d 8f 3b 1a 95 07 38 f5 2e 96 00 74 6a 0e 27 a5 5a 21";
const S_AP: &str = "a1 1a f9 f0 55 31 f8 56 ad 47 11 6b 45 a9 50 32 82 04 b4 f4 4b fb 6b 3a 4b 4f 1f 3f cb 63 16 43";
const C_AP: &str = "9e 40 64 6c e7 9a 7f 9d c0 5a f8 88 9b ce 65 52 87 5a fa 0b 06 df 00 87 f7 92 eb b7 c1 75 04 a5";

// RFC 8448 3: "{server} send handshake record", complete record (679 octets).
const RFC8448_SERVER_HS_RECORD: &str = "
    17 03 03 02 a2 d1 ff 33 4a 56 f5 bf f6 59 4a 07 cc 87 b5 80 23 3f 50 0f
    45 e4 89 e7 f3 3a f3 5e df 78 69 fc f4 0a a4 0a a2 b8 ea 73 f8 48 a7 ca
    07 61 2e f9 f9 45 cb 96 0b 40 68 90 51 23 ea 78 b1 11 b4 29 ba 91 91 cd
    05 d2 a3 89 28 0f 52 61 34 aa dc 7f c7 8c 4b 72 9d f8 28 b5 ec f7 b1 3b
    d9 ae fb 0e 57 f2 71 58 5b 8e a9 bb 35 5c 7c 79 02 07 16 cf b9 b1 18 3e
    f3 ab 20 e3 7d 57 a6 b9 d7 47 76 09 ae e6 e1 22 a4 cf 51 42 73 25 25 0c
    7d 0e 50 92 89 44 4c 9b 3a 64 8f 1d 71 03 5d 2e d6 5b 0e 3c dd 0c ba e8
    bf 2d 0b 22 78 12 cb b3 60 98 72 55 cc 74 41 10 c4 53 ba a4 fc d6 10 92
    8d 80 98 10 e4 b7 ed 1a 8f d9 91 f0 6a a6 24 82 04 79 7e 36 a6 a7 3b 70
    a2 55 9c 09 ea d6 86 94 5b a2 46 ab 66 e5 ed d8 04 4b 4c 6d e3 fc f2 a8
    94 41 ac 66 27 2f d8 fb 33 0e f8 19 05 79 b3 68 45 96 c9 60 bd 59 6e ea
    52 0a 56 a8 d6 50 f5 63 aa d2 74 09 96 0d ca 63 d3 e6 88 61 1e a5 e2 2f
    44 15 cf 95 38 d5 1a 20 0c 27 03 42 72 96 8a 26 4e d6 54 0c 84 83 8d 89
    f7 2c 24 46 1a ad 6d 26 f5 9e ca ba 9a cb bb 31 7b 66 d9 02 f4 f2 92 a3
    6a c1 b6 39 c6 37 ce 34 31 17 b6 59 62 22 45 31 7b 49 ee da 0c 62 58 f1
    00 d7 d9 61 ff b1 38 64 7e 92 ea 33 0f ae ea 6d fa 31 c7 a8 4d c3 bd 7e
    1b 7a 6c 71 78 af 36 87 90 18 e3 f2 52 10 7f 24 3d 24 3d c7 33 9d 56 84
    c8 b0 37 8b f3 02 44 da 8c 87 c8 43 f5 e5 6e b4 c5 e8 28 0a 2b 48 05 2c
    f9 3b 16 49 9a 66 db 7c ca 71 e4 59 94 26 f7 d4 61 e6 6f 99 88 2b d8 9f
    c5 08 00 be cc a6 2d 6c 74 11 6d bd 29 72 fd a1 fa 80 f8 5d f8 81 ed be
    5a 37 66 89 36 b3 35 58 3b 59 91 86 dc 5c 69 18 a3 96 fa 48 a1 81 d6 b6
    fa 4f 9d 62 d5 13 af bb 99 2f 2b 99 2f 67 f8 af e6 7f 76 91 3f a3 88 cb
    56 30 c8 ca 01 e0 c6 5d 11 c6 6a 1e 2a c4 c8 59 77 b7 c7 a6 99 9b bf 10
    dc 35 ae 69 f5 51 56 14 63 6c 0b 9b 68 c1 9e d2 e3 1c 0b 3b 66 76 30 38
    eb ba 42 f3 b3 8e dc 03 99 f3 a9 f2 3f aa 63 97 8c 31 7f c9 fa 66 a7 3f
    60 f0 50 4d e9 3b 5b 84 5e 27 55 92 c1 23 35 ee 34 0b bc 4f dd d5 02 78
    40 16 e4 b3 be 7e f0 4d da 49 f4 b4 40 a3 0c b5 d2 af 93 98 28 fd 4a e3
    79 4e 44 f9 4d f5 a6 31 ed e4 2c 17 19 bf da bf 02 53 fe 51 75 be 89 8e
    75 0e dc 53 37 0d 2b
";
const RFC8448_SERVER_HS_PLAIN: &str = "
    08 00 00 24 00 22 00 0a 00 14 00 12 00 1d 00 17 00 18 00 19 01 00 01 01
    01 02 01 03 01 04 00 1c 00 02 40 01 00 00 00 00 0b 00 01 b9 00 00 01 b5
    00 01 b0 30 82 01 ac 30 82 01 15 a0 03 02 01 02 02 01 02 30 0d 06 09 2a
    86 48 86 f7 0d 01 01 0b 05 00 30 0e 31 0c 30 0a 06 03 55 04 03 13 03 72
    73 61 30 1e 17 0d 31 36 30 37 33 30 30 31 32 33 35 39 5a 17 0d 32 36 30
    37 33 30 30 31 32 33 35 39 5a 30 0e 31 0c 30 0a 06 03 55 04 03 13 03 72
    73 61 30 81 9f 30 0d 06 09 2a 86 48 86 f7 0d 01 01 01 05 00 03 81 8d 00
    30 81 89 02 81 81 00 b4 bb 49 8f 82 79 30 3d 98 08 36 39 9b 36 c6 98 8c
    0c 68 de 55 e1 bd b8 26 d3 90 1a 24 61 ea fd 2d e4 9a 91 d0 15 ab bc 9a
    95 13 7a ce 6c 1a f1 9e aa 6a f9 8c 7c ed 43 12 09 98 e1 87 a8 0e e0 cc
    b0 52 4b 1b 01 8c 3e 0b 63 26 4d 44 9a 6d 38 e2 2a 5f da 43 08 46 74 80
    30 53 0e f0 46 1c 8c a9 d9 ef bf ae 8e a6 d1 d0 3e 2b d1 93 ef f0 ab 9a
    80 02 c4 74 28 a6 d3 5a 8d 88 d7 9f 7f 1e 3f 02 03 01 00 01 a3 1a 30 18
    30 09 06 03 55 1d 13 04 02 30 00 30 0b 06 03 55 1d 0f 04 04 03 02 05 a0
    30 0d 06 09 2a 86 48 86 f7 0d 01 01 0b 05 00 03 81 81 00 85 aa d2 a0 e5
    b9 27 6b 90 8c 65 f7 3a 72 67 17 06 18 a5 4c 5f 8a 7b 33 7d 2d f7 a5 94
    36 54 17 f2 ea e8 f8 a5 8c 8f 81 72 f9 31 9c f3 6b 7f d6 c5 5b 80 f2 1a
    03 01 51 56 72 60 96 fd 33 5e 5e 67 f2 db f1 02 70 2e 60 8c ca e6 be c1
    fc 63 a4 2a 99 be 5c 3e b7 10 7c 3c 54 e9 b9 eb 2b d5 20 3b 1c 3b 84 e0
    a8 b2 f7 59 40 9b a3 ea c9 d9 1d 40 2d cc 0c c8 f8 96 12 29 ac 91 87 b4
    2b 4d e1 00 00 0f 00 00 84 08 04 00 80 5a 74 7c 5d 88 fa 9b d2 e5 5a b0
    85 a6 10 15 b7 21 1f 82 4c d4 84 14 5a b3 ff 52 f1 fd a8 47 7b 0b 7a bc
    90 db 78 e2 d3 3a 5c 14 1a 07 86 53 fa 6b ef 78 0c 5e a2 48 ee aa a7 85
    c4 f3 94 ca b6 d3 0b be 8d 48 59 ee 51 1f 60 29 57 b1 54 11 ac 02 76 71
    45 9e 46 44 5c 9e a5 8c 18 1e 81 8e 95 b8 c3 fb 0b f3 27 84 09 d3 be 15
    2a 3d a5 04 3e 06 3d da 65 cd f5 ae a2 0d 53 df ac d4 2f 74 f3 14 00 00
    20 9b 9b 14 1d 90 63 37 fb d2 cb dc e7 1d f4 de da 4a b4 2c 30 95 72 cb
    7f ff ee 54 54 b7 8f 07 18
";

// RFC 8448 3: "{client} send handshake record" (the client's Finished), 58 octets, and its
// plaintext (the Finished message).
const RFC8448_CLIENT_FINISHED_RECORD: &str = "
    17 03 03 00 35 75 ec 4d c2 38 cc e6 0b 29 80 44 a7 1e 21 9c 56 cc 77 b0 51 7f e9 b9
    3c 7a 4b fc 44 d8 7f 38 f8 03 38 ac 98 fc 46 de b3 84 bd 1c ae ac ab 68 67 d7 26 c4
    05 46";
const RFC8448_CLIENT_FINISHED: &str = "
    14 00 00 20 a8 ec 43 6d 67 76 34 ae 52 5a c1 fc eb e1 1a 03 9e c1 76 94 fa c6 e9 85
    27 b6 42 f2 ed d5 ce 61";

// RFC 8448 3: "{client} send application_data record" (sequence 0 under the client's
// application keys) and "{server} send application_data record" (sequence 1: the server's
// NewSessionTicket record was number 0). Both carry the 50 bytes 00 01 .. 31.
const RFC8448_CLIENT_APP_RECORD: &str = "
    17 03 03 00 43 a2 3f 70 54 b6 2c 94 d0 af fa fe 82 28 ba 55 cb ef ac ea 42 f9 14 aa
    66 bc ab 3f 2b 98 19 a8 a5 b4 6b 39 5b d5 4a 9a 20 44 1e 2b 62 97 4e 1f 5a 62 92 a2
    97 70 14 bd 1e 3d ea e6 3a ee bb 21 69 49 15 e4";
const RFC8448_SERVER_APP_RECORD: &str = "
    17 03 03 00 43 2e 93 7e 11 ef 4a c7 40 e5 38 ad 36 00 5f c4 a4 69 32 fc 32 25 d0 5f
    82 aa 1b 36 e3 0e fa f9 7d 90 e6 df fc 60 2d cb 50 1a 59 a8 fc c4 9c 4b f2 e5 f0 a2
    1c 00 47 c2 ab f3 32 54 0d d0 32 e1 67 c2 95 5d";

fn app_payload() -> Vec<u8> {
    (0u8..=0x31).collect()
}

#[test]
fn rfc8448_server_handshake_record_decrypts_to_encrypted_extensions() {
    let mut d = RecordDecryptor::tls13(0x0304, 0x1301, &h(S_HS)).unwrap();
    let record = h(RFC8448_SERVER_HS_RECORD);
    let (t, v, body) = split(&record);
    let plain = d.decrypt(t, v, body).unwrap();
    assert_eq!(plain.content_type, 22);
    // EncryptedExtensions (8), Certificate, CertificateVerify, Finished: exactly the RFC's.
    assert_eq!(plain.data[0], 8);
    assert_eq!(plain.data, h(RFC8448_SERVER_HS_PLAIN));
    assert_eq!(plain.data.len(), 657);
    assert_eq!(d.sequence(), Some(1));
}

#[test]
fn rfc8448_client_finished_record() {
    let mut d = RecordDecryptor::tls13(0x0304, 0x1301, &h(C_HS)).unwrap();
    let record = h(RFC8448_CLIENT_FINISHED_RECORD);
    let (t, v, body) = split(&record);
    assert_eq!(
        d.decrypt(t, v, body).unwrap(),
        Plain {
            content_type: 22,
            data: h(RFC8448_CLIENT_FINISHED)
        }
    );
}

#[test]
fn rfc8448_application_records() {
    let mut client = RecordDecryptor::tls13(0x0304, 0x1301, &h(C_AP)).unwrap();
    let record = h(RFC8448_CLIENT_APP_RECORD);
    let (t, v, body) = split(&record);
    assert_eq!(
        client.decrypt(t, v, body).unwrap(),
        Plain {
            content_type: 23,
            data: app_payload()
        }
    );
    // The server's record is its second under these keys: at sequence 0 it fails...
    let mut server = RecordDecryptor::tls13(0x0304, 0x1301, &h(S_AP)).unwrap();
    let record = h(RFC8448_SERVER_APP_RECORD);
    let (t, v, body) = split(&record);
    assert_eq!(
        server.decrypt(t, v, body),
        Err(DecryptError::AuthenticationFailed { seq: 0 })
    );
    // ...and the failure used sequence number 0, so the same record now decrypts at 1, as
    // it would after the (unreadable) NewSessionTicket record.
    assert_eq!(server.sequence(), Some(1));
    assert_eq!(server.decrypt(t, v, body).unwrap().data, app_payload());
}

#[test]
fn one_flipped_byte_fails_and_never_yields_plaintext() {
    let record = h(RFC8448_SERVER_HS_RECORD);
    // (The length bytes 3-4 are not an input: the body's length is.)
    for at in [0usize, 1, 2, 5, 100, record.len() - 17, record.len() - 1] {
        let mut bad = record.clone();
        bad[at] ^= 0x01;
        let mut d = RecordDecryptor::tls13(0x0304, 0x1301, &h(S_HS)).unwrap();
        let (t, v, body) = (bad[0], u16::from_be_bytes([bad[1], bad[2]]), &bad[5..]);
        let got = d.decrypt(t, v, body);
        if at == 0 {
            // 0x17 -> 0x16: a handshake record, in the clear in TLS 1.3.
            assert_eq!(got, Err(DecryptError::NotProtected { content_type: 0x16 }));
        } else {
            // Header bytes are the additional data; body bytes are ciphertext or tag.
            assert_eq!(
                got,
                Err(DecryptError::AuthenticationFailed { seq: 0 }),
                "byte {at}"
            );
            assert!(got.unwrap_err().is_failure());
        }
    }
}

#[test]
fn direction_follows_the_server_flight_to_application_keys() {
    let mut dir = DirectionDecryptor::tls13(
        None,
        Some(RecordDecryptor::tls13(0x0304, 0x1301, &h(S_HS)).unwrap()),
        Some(RecordDecryptor::tls13(0x0304, 0x1301, &h(S_AP)).unwrap()),
    );
    assert_eq!(dir.phase(), Phase::Handshake);
    // ServerHello and a compatibility ChangeCipherSpec are in the clear.
    assert_eq!(dir.decrypt(22, 0x0303, &[2, 0, 0, 0]), Ok(None));
    assert_eq!(dir.decrypt(20, 0x0303, &[1]), Ok(None));
    let record = h(RFC8448_SERVER_HS_RECORD);
    let (t, v, body) = split(&record);
    let plain = dir.decrypt(t, v, body).unwrap().unwrap();
    assert_eq!(plain.data, h(RFC8448_SERVER_HS_PLAIN));
    // Its Finished ended the server's handshake flight.
    assert_eq!(dir.phase(), Phase::Application);
    // The NewSessionTicket record (not reproduced here) fails, taking number 0...
    assert!(dir
        .decrypt(23, 0x0303, &[0x55; 40])
        .unwrap_err()
        .is_failure());
    // ...and the application record decrypts at number 1.
    let record = h(RFC8448_SERVER_APP_RECORD);
    let (t, v, body) = split(&record);
    assert_eq!(
        dir.decrypt(t, v, body).unwrap().unwrap().data,
        app_payload()
    );
    assert_eq!(
        dir.stats(),
        &DirectionStats {
            decrypted: 2,
            failed: 1,
            clear: 2,
            no_keys: 0,
            key_updates: 0
        }
    );
}

#[test]
fn direction_without_handshake_secret_finds_application_keys() {
    // Only CLIENT_TRAFFIC_SECRET_0 logged: the client's Finished cannot be read (NoKeys),
    // then the first application record authenticates under the traffic keys.
    let mut dir = DirectionDecryptor::tls13(
        None,
        None,
        Some(RecordDecryptor::tls13(0x0304, 0x1301, &h(C_AP)).unwrap()),
    );
    let fin = h(RFC8448_CLIENT_FINISHED_RECORD);
    let (t, v, body) = split(&fin);
    assert_eq!(dir.decrypt(t, v, body), Err(DecryptError::NoKeys));
    let app = h(RFC8448_CLIENT_APP_RECORD);
    let (t, v, body) = split(&app);
    assert_eq!(
        dir.decrypt(t, v, body).unwrap().unwrap().data,
        app_payload()
    );
    assert_eq!(dir.phase(), Phase::Application);
    assert_eq!((dir.stats().no_keys, dir.stats().failed), (1, 0));
}

/// A sealed TLS 1.3 record (header + body) from `enc`.
fn seal13(enc: &mut RecordDecryptor, content_type: u8, plain: &[u8]) -> Vec<u8> {
    let body = enc.seal(content_type, 0x0303, plain);
    let mut rec = vec![23, 3, 3];
    rec.extend_from_slice(&(body.len() as u16).to_be_bytes());
    rec.extend(body);
    rec
}

#[test]
fn aes256_gcm_sha384_key_update_is_followed() {
    let secret = [0x5au8; 48];
    let mut enc = RecordDecryptor::tls13(0x0304, 0x1302, &secret).unwrap();
    assert_eq!(enc.suite().hash, HashAlg::Sha384);
    let mut dir = DirectionDecryptor::tls13(None, None, Some(enc.clone()));
    let mut records = vec![seal13(&mut enc, 23, b"GET /one HTTP/1.1\r\n\r\n")];
    // KeyUpdate(update_not_requested), RFC 8446 4.6.3, then the sender's new keys.
    records.push(seal13(&mut enc, 22, &[24, 0, 0, 1, 0]));
    enc.update_keys().unwrap();
    assert_eq!((enc.sequence(), enc.key_updates()), (Some(0), 1));
    records.push(seal13(&mut enc, 23, b"GET /two HTTP/1.1\r\n\r\n"));
    // A second update, the message split across two records.
    records.push(seal13(&mut enc, 22, &[24, 0]));
    records.push(seal13(&mut enc, 22, &[0, 1, 1]));
    enc.update_keys().unwrap();
    records.push(seal13(&mut enc, 23, b"three"));
    let mut out = vec![];
    for rec in &records {
        let (t, v, body) = split(rec);
        out.push(dir.decrypt(t, v, body).unwrap().unwrap());
    }
    assert_eq!(out[0].data, b"GET /one HTTP/1.1\r\n\r\n");
    assert_eq!(
        (out[1].content_type, out[1].data.as_slice()),
        (22, &[24, 0, 0, 1, 0][..])
    );
    assert_eq!(out[2].data, b"GET /two HTTP/1.1\r\n\r\n");
    assert_eq!(out[5].data, b"three");
    assert_eq!(dir.stats().key_updates, 2);
    assert_eq!(dir.application().unwrap().key_updates(), 2);
    // The new secret is HKDF-Expand-Label(secret, "traffic upd", "", 48): a decryptor built
    // from it directly reads the third record as its first.
    let next =
        crate::proto::tls::keys::tls13_next_traffic_secret(HashAlg::Sha384, &secret).unwrap();
    let mut direct = RecordDecryptor::tls13(0x0304, 0x1302, &next).unwrap();
    let (t, v, body) = split(&records[2]);
    assert_eq!(
        direct.decrypt(t, v, body).unwrap().data,
        b"GET /two HTTP/1.1\r\n\r\n"
    );
}

#[test]
fn chacha20_tls13_with_padding_and_zero_plaintext() {
    let mut enc = RecordDecryptor::tls13(0x0304, 0x1303, &[9u8; 32]).unwrap();
    let mut dec = enc.clone();
    // Seal an inner plaintext by hand: "hi", type 23, five bytes of padding (RFC 8446 5.4).
    let seal_inner = |enc: &mut RecordDecryptor, inner: &[u8]| -> Vec<u8> {
        let seq = enc.seq.unwrap();
        enc.seq = Some(seq + 1);
        let Framing::Tls13 { iv, .. } = &enc.framing else {
            unreachable!()
        };
        let len = (inner.len() + TAG_LEN) as u16;
        let mut aad = vec![23, 3, 3];
        aad.extend_from_slice(&len.to_be_bytes());
        enc.cipher.seal(xor_nonce(iv, seq), &aad, inner)
    };
    let body = seal_inner(&mut enc, b"hi\x17\0\0\0\0\0");
    assert_eq!(
        dec.decrypt(23, 0x0303, &body),
        Ok(Plain {
            content_type: 23,
            data: b"hi".to_vec()
        })
    );
    // All zeros: no content type (RFC 8446 5.4: unexpected_message).
    let body = seal_inner(&mut enc, &[0, 0, 0]);
    assert_eq!(
        dec.decrypt(23, 0x0303, &body),
        Err(DecryptError::MissingContentType { seq: 1 })
    );
    // Alert inside (close_notify): the inner type says so.
    let body = seal_inner(&mut enc, &[1, 0, 21]);
    assert_eq!(
        dec.decrypt(23, 0x0303, &body).unwrap(),
        Plain {
            content_type: 21,
            data: vec![1, 0]
        }
    );
}

#[test]
fn tls13_clear_records_use_no_sequence_number() {
    let mut d = RecordDecryptor::tls13(0x0304, 0x1301, &h(S_HS)).unwrap();
    assert_eq!(
        d.decrypt(20, 0x0303, &[1]),
        Err(DecryptError::NotProtected { content_type: 20 })
    );
    assert_eq!(
        d.decrypt(21, 0x0303, &[2, 40]),
        Err(DecryptError::NotProtected { content_type: 21 })
    );
    assert!(!DecryptError::NotProtected { content_type: 21 }.is_failure());
    assert_eq!(d.sequence(), Some(0));
    let record = h(RFC8448_SERVER_HS_RECORD);
    let (t, v, body) = split(&record);
    assert!(d.decrypt(t, v, body).is_ok());
}

#[test]
fn short_and_oversized_records_are_errors_that_use_a_number() {
    let mut d = RecordDecryptor::tls13(0x0304, 0x1301, &h(S_HS)).unwrap();
    assert_eq!(
        d.decrypt(23, 0x0303, &[0; 16]),
        Err(DecryptError::TooShort { need: 17, have: 16 })
    );
    let big = vec![0u8; TLS13_MAX_CIPHERTEXT + 1];
    assert_eq!(
        d.decrypt(23, 0x0303, &big),
        Err(DecryptError::RecordOverflow {
            len: TLS13_MAX_CIPHERTEXT + 1,
            max: TLS13_MAX_CIPHERTEXT
        })
    );
    assert_eq!(d.sequence(), Some(2));
    let kb = tls12_key_block(tls12_suite(0xc02f).unwrap(), &[1; 48], &[2; 32], &[3; 32]).unwrap();
    let mut gcm = RecordDecryptor::tls12(0xc02f, &kb.client_write).unwrap();
    assert_eq!(
        gcm.decrypt(23, 0x0303, &[0; 23]),
        Err(DecryptError::TooShort { need: 24, have: 23 })
    );
    assert_eq!(
        gcm.decrypt(23, 0x0303, &[0; 24]),
        Err(DecryptError::AuthenticationFailed { seq: 1 })
    );
}

#[test]
fn draft_versions_before_25_authenticate_no_header() {
    let secret = [3u8; 32];
    for (version, header_aad) in [
        (0x7f14u16, false),
        (0x7f17, false),
        (0x7f1c, true),
        (0x0304, true),
    ] {
        let mut enc = RecordDecryptor::tls13(version, 0x1303, &secret).unwrap();
        let mut dec = enc.clone();
        let body = enc.seal(23, 0x0301, b"x");
        // Another record version in the header: only matters when the header is the AAD.
        let got = dec.decrypt(23, 0x0303, &body);
        assert_eq!(got.is_ok(), !header_aad, "version {version:04x}");
    }
    assert_eq!(
        RecordDecryptor::tls13(0x7f13, 0x1301, &secret).unwrap_err(),
        KeyError::UnsupportedVersion(0x7f13)
    );
    assert_eq!(
        RecordDecryptor::tls13(0x0304, 0x1304, &secret).unwrap_err(),
        KeyError::UnsupportedSuite(0x1304)
    );
}

#[test]
fn tls12_aes256_gcm_and_chacha20_directions() {
    let (ms, sr, cr) = ([0x11u8; 48], [0x22u8; 32], [0x33u8; 32]);
    for suite in [0xc030u16, 0x009d, 0xc02b, 0xcca8, 0xccab] {
        let kb = tls12_key_block(tls12_suite(suite).unwrap(), &ms, &sr, &cr).unwrap();
        let mut client_enc = RecordDecryptor::tls12(suite, &kb.client_write).unwrap();
        let mut server_enc = RecordDecryptor::tls12(suite, &kb.server_write).unwrap();
        let mut to_server = DirectionDecryptor::tls12(client_enc.clone());
        let mut to_client = DirectionDecryptor::tls12(server_enc.clone());
        // Before ChangeCipherSpec: in the clear.
        assert_eq!(to_server.decrypt(22, 0x0303, b"client hello"), Ok(None));
        assert_eq!(to_server.decrypt(20, 0x0303, &[1]), Ok(None));
        assert_eq!(to_server.phase(), Phase::Application);
        let fin = client_enc.seal(
            22,
            0x0303,
            &[20, 0, 0, 12, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
        );
        assert_eq!(
            to_server
                .decrypt(22, 0x0303, &fin)
                .unwrap()
                .unwrap()
                .content_type,
            22
        );
        let req = client_enc.seal(23, 0x0303, b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n");
        assert_eq!(
            to_server.decrypt(23, 0x0303, &req).unwrap().unwrap().data,
            b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"
        );
        // The server direction uses the server keys: the client's record fails there.
        assert_eq!(to_client.decrypt(20, 0x0303, &[1]), Ok(None));
        assert!(to_client
            .decrypt(23, 0x0303, &req)
            .unwrap_err()
            .is_failure());
        let _lost = server_enc.seal(23, 0x0303, b"HTTP/1.1 200 OK\r\n");
        let resp2 = server_enc.seal(23, 0x0303, b"second");
        // The failed record used number 0, so the server's record 1 decrypts next: numbers
        // follow records, not successes.
        assert_eq!(
            to_client.decrypt(23, 0x0303, &resp2).unwrap().unwrap().data,
            b"second"
        );
        assert_eq!(to_client.stats().failed, 1);
        // The AAD holds type and version: a changed header fails.
        let next = client_enc.seal(23, 0x0303, b"x");
        let mut copy = to_server.clone();
        assert!(copy.decrypt(21, 0x0303, &next).is_err());
        assert!(to_server.decrypt(23, 0x0303, &next).is_ok());
        // Key updates are TLS 1.3 only.
        assert_eq!(client_enc.update_keys(), Err(KeyError::NotTls13));
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let kb = |s| tls12_key_block(tls12_suite(s).unwrap(), &[1; 48], &[2; 32], &[3; 32]).unwrap();
    let mut decryptors = [
        RecordDecryptor::tls13(0x0304, 0x1301, &[1; 32]).unwrap(),
        RecordDecryptor::tls13(0x0304, 0x1302, &[1; 48]).unwrap(),
        RecordDecryptor::tls13(0x7f14, 0x1303, &[1; 32]).unwrap(),
        RecordDecryptor::tls12(0xc02f, &kb(0xc02f).client_write).unwrap(),
        RecordDecryptor::tls12(0xc030, &kb(0xc030).client_write).unwrap(),
        RecordDecryptor::tls12(0xcca9, &kb(0xcca9).client_write).unwrap(),
    ];
    let mut directions: Vec<DirectionDecryptor> = decryptors
        .iter()
        .map(|d| {
            if d.is_tls13() {
                DirectionDecryptor::tls13(Some(d.clone()), Some(d.clone()), Some(d.clone()))
            } else {
                DirectionDecryptor::tls12(d.clone())
            }
        })
        .collect();
    for _ in 0..3000 {
        let len = match next() % 4 {
            0 => (next() % 40) as usize,
            1 => (next() % 300) as usize,
            2 => TLS12_MAX_CIPHERTEXT + (next() % 3) as usize - 1,
            _ => (next() % 20000) as usize,
        };
        let payload: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let content_type = [20u8, 21, 22, 23, 23, 23, next() as u8][(next() % 7) as usize];
        let version = next() as u16;
        for d in decryptors.iter_mut() {
            let r = d.decrypt(content_type, version, &payload);
            assert!(r.is_err(), "random bytes authenticated");
        }
        for d in directions.iter_mut() {
            assert!(!matches!(
                d.decrypt(content_type, version, &payload),
                Ok(Some(_))
            ));
        }
    }
    let mut scanner = HandshakeScanner::default();
    for _ in 0..2000 {
        let data: Vec<u8> = (0..next() % 64).map(|_| next() as u8).collect();
        scanner.push(&data, |_| {});
    }
}

#[test]
fn handshake_scanner_reports_messages_across_records() {
    let mut s = HandshakeScanner::default();
    let mut seen = vec![];
    // EncryptedExtensions (2-byte body) split mid-header, then a Finished of 3 bytes and a
    // zero-length message in one piece.
    s.push(&[8, 0], |t| seen.push(t));
    s.push(&[0, 2, 0xaa], |t| seen.push(t));
    assert!(seen.is_empty());
    s.push(&[0xbb, 20, 0, 0, 3, 1, 2, 3, 5, 0, 0, 0], |t| seen.push(t));
    assert_eq!(seen, vec![8, 20, 5]);
}

fn client_hello(random: Vec<u8>) -> ClientHello {
    ClientHello {
        record_version: 0x0301,
        legacy_version: 0x0303,
        supported_versions: vec![],
        sni: None,
        alpn: vec![],
        cipher_suites: vec![],
        compression_methods: vec![0],
        extensions: vec![],
        signature_algorithms: vec![],
        supported_groups: vec![],
        random,
        session_id: vec![],
        malformed_extensions: vec![],
        sslv2_format: false,
        ja4: String::new(),
        ja4_r: String::new(),
    }
}

fn server_hello(version: u16, cipher_suite: u16, random: Vec<u8>) -> ServerHello {
    ServerHello {
        record_version: 0x0303,
        legacy_version: 0x0303,
        version,
        cipher_suite,
        compression_method: 0,
        alpn: None,
        random,
        session_id: vec![],
        extensions: vec![],
        hello_retry_request: false,
        downgrade_sentinel: false,
        malformed_extensions: vec![],
    }
}

fn session(version: u16, suite: u16, cr: &[u8], sr: &[u8]) -> TlsSession {
    TlsSession {
        client_hello: Some(client_hello(cr.to_vec())),
        server_hello: Some(server_hello(version, suite, sr.to_vec())),
        ..TlsSession::default()
    }
}

#[test]
fn session_decryptors_from_key_log() {
    let cr = [0xc1u8; 32];
    let sr = [0x5eu8; 32];
    let hexs = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let log = KeyLog::parse(&format!(
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET {r} {c_hs}\nSERVER_HANDSHAKE_TRAFFIC_SECRET {r} {s_hs}\n\
         CLIENT_TRAFFIC_SECRET_0 {r} {c_ap}\nSERVER_TRAFFIC_SECRET_0 {r} {s_ap}\n",
        r = hexs(&cr),
        c_hs = hexs(&h(C_HS)),
        s_hs = hexs(&h(S_HS)),
        c_ap = hexs(&h(C_AP)),
        s_ap = hexs(&h(S_AP)),
    ));
    // TLS 1.3: the RFC 8448 records through the session's decryptors.
    let mut sd = session_decryptors(&session(0x0304, 0x1301, &cr, &sr), &log).unwrap();
    assert_eq!((sd.version, sd.cipher_suite), (0x0304, 0x1301));
    let rec = h(RFC8448_SERVER_HS_RECORD);
    let (t, v, body) = split(&rec);
    let plain = sd
        .get_mut(Dir::ToClient)
        .decrypt(t, v, body)
        .unwrap()
        .unwrap();
    assert_eq!(plain.data, h(RFC8448_SERVER_HS_PLAIN));
    for rec in [RFC8448_CLIENT_FINISHED_RECORD, RFC8448_CLIENT_APP_RECORD] {
        let rec = h(rec);
        let (t, v, body) = split(&rec);
        assert!(sd.to_server.decrypt(t, v, body).unwrap().is_some());
    }
    assert_eq!(sd.to_server.phase(), Phase::Application);
    assert!(sd.to_server.handshake().is_some() && sd.to_server.early().is_none());

    // TLS 1.2: the key block's client half.
    let ms = [0x4du8; 48];
    let log12 = KeyLog::parse(&format!("CLIENT_RANDOM {} {}", hexs(&cr), hexs(&ms)));
    let mut sd = session_decryptors(&session(0x0303, 0xc030, &cr, &sr), &log12).unwrap();
    let kb = tls12_key_block(tls12_suite(0xc030).unwrap(), &ms, &sr, &cr).unwrap();
    let mut enc = RecordDecryptor::tls12(0xc030, &kb.client_write).unwrap();
    let body = enc.seal(23, 0x0303, b"ping");
    sd.to_server.decrypt(20, 0x0303, &[1]).unwrap();
    assert_eq!(
        sd.to_server
            .decrypt(23, 0x0303, &body)
            .unwrap()
            .unwrap()
            .data,
        b"ping"
    );

    // Why not, each time.
    let no_random = TlsSession {
        server_hello: Some(server_hello(0x0303, 0xc030, sr.to_vec())),
        ..TlsSession::default()
    };
    assert_eq!(
        session_decryptors(&no_random, &log12).unwrap_err(),
        NoDecryption::NoClientHello
    );
    let mut no_sh = session(0x0303, 0xc030, &cr, &sr);
    no_sh.server_hello = None;
    assert_eq!(
        session_decryptors(&no_sh, &log12).unwrap_err(),
        NoDecryption::NoServerHello
    );
    assert_eq!(
        session_decryptors(&session(0x0303, 0xc030, &[7; 32], &sr), &log12).unwrap_err(),
        NoDecryption::NotInKeyLog
    );
    assert_eq!(
        session_decryptors(&session(0x0303, 0xc030, &cr, &sr), &log).unwrap_err(),
        NoDecryption::MissingSecret("CLIENT_RANDOM master secret")
    );
    assert_eq!(
        session_decryptors(&session(0x0304, 0x1301, &cr, &sr), &log12).unwrap_err(),
        NoDecryption::MissingSecret("TLS 1.3 traffic secret")
    );
    assert_eq!(
        session_decryptors(&session(0x0303, 0xc013, &cr, &sr), &log12).unwrap_err(),
        NoDecryption::Keys(KeyError::UnsupportedSuite(0xc013))
    );
    assert_eq!(
        session_decryptors(&session(0x0301, 0xc02f, &cr, &sr), &log12).unwrap_err(),
        NoDecryption::Keys(KeyError::UnsupportedVersion(0x0301))
    );
    // A SHA-256 secret for a SHA-384 suite is refused, not stretched.
    assert_eq!(
        session_decryptors(&session(0x0304, 0x1302, &cr, &sr), &log).unwrap_err(),
        NoDecryption::Keys(KeyError::BadLength {
            what: "traffic secret",
            need: 48,
            have: 32
        })
    );
}

#[test]
fn zero_rtt_then_handshake_then_application() {
    let (early_s, hs_s, ap_s) = ([1u8; 32], [2u8; 32], [3u8; 32]);
    let mk = |s: &[u8]| RecordDecryptor::tls13(0x0304, 0x1301, s).unwrap();
    let (mut e, mut hs, mut ap) = (mk(&early_s), mk(&hs_s), mk(&ap_s));
    let mut dir = DirectionDecryptor::tls13(Some(mk(&early_s)), Some(mk(&hs_s)), Some(mk(&ap_s)));
    assert_eq!(dir.phase(), Phase::Early);
    let records = [
        seal13(&mut e, 23, b"GET /early HTTP/1.1\r\n\r\n"),
        seal13(&mut e, 22, &[5, 0, 0, 0]), // EndOfEarlyData
        seal13(&mut hs, 22, &[20, 0, 0, 2, 0xf1, 0xf2]), // Finished
        seal13(&mut ap, 23, b"GET /second HTTP/1.1\r\n\r\n"),
    ];
    let phases = [
        Phase::Early,
        Phase::Handshake,
        Phase::Application,
        Phase::Application,
    ];
    let mut data = vec![];
    for (rec, phase) in records.iter().zip(phases) {
        let (t, v, body) = split(rec);
        data.push(dir.decrypt(t, v, body).unwrap().unwrap().data);
        assert_eq!(dir.phase(), phase);
    }
    assert_eq!(data[0], b"GET /early HTTP/1.1\r\n\r\n");
    assert_eq!(data[3], b"GET /second HTTP/1.1\r\n\r\n");

    // The server refused 0-RTT: no EndOfEarlyData; the client's Finished under the
    // handshake keys is recognised by its tag and ends the early phase.
    let (mut e, mut hs) = (mk(&early_s), mk(&hs_s));
    let mut dir = DirectionDecryptor::tls13(Some(mk(&early_s)), Some(mk(&hs_s)), Some(mk(&ap_s)));
    let early = seal13(&mut e, 23, b"early");
    let fin = seal13(&mut hs, 22, &[20, 0, 0, 1, 0]);
    for rec in [&early, &fin] {
        let (t, v, body) = split(rec);
        dir.decrypt(t, v, body).unwrap().unwrap();
    }
    assert_eq!(dir.phase(), Phase::Application);
    assert_eq!(dir.stats().failed, 0);
}
