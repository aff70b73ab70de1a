//! The TLS record layer and handshake parser: one reassembled connection in the chunk format
//! through `TlsConn` with the key log of the bundled captures (so sessions seeded from them
//! decrypt and their mutations reach the decrypted side too), then the certificates read
//! through `cert_details` and chain validation. Each data chunk also goes to the message
//! parsers directly, whatever the connection's state.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modtrace::proto::tls::keylog::KeyLog;
use modtrace::proto::tls::{cert_details, parser, ServerNameInput, TlsConn, TrustStore};
use modtrace::time::Ts;
use modtrace_fuzz::Chunk;
use std::sync::OnceLock;

fn keys() -> &'static KeyLog {
    static K: OnceLock<KeyLog> = OnceLock::new();
    K.get_or_init(|| KeyLog::parse(modtrace_fuzz::CAPTURE_KEYS))
}

fn trust() -> &'static TrustStore {
    static T: OnceLock<TrustStore> = OnceLock::new();
    T.get_or_init(TrustStore::bundled)
}

fuzz_target!(|data: &[u8]| {
    let mut conn = TlsConn::new(1);
    let mut out = Vec::new();
    for (i, c) in modtrace_fuzz::chunks(data).into_iter().enumerate() {
        let (ts, packet) = (Ts(i as i64 * 1000), i as u64 + 1);
        match c {
            Chunk::Data(dir, bytes) => {
                conn.on_data_keyed(dir, ts, packet, bytes, Some(keys()), &mut out);
                let _ = parser::looks_like_tls_client(bytes);
                let _ = parser::parse_client_hello(bytes, 0x0303);
                let _ = parser::parse_server_hello(bytes, 0x0303);
                let _ = parser::parse_sslv2_client_hello(bytes);
                let _ = parser::parse_encrypted_extensions_alpn(bytes);
                let _ = parser::parse_certificate_list(bytes, i % 2 == 0, 4);
            }
            Chunk::Gap(dir, len) => conn.on_gap(dir, len),
            Chunk::End(dir) => conn.on_end(dir, ts, packet, i % 2 == 1, &mut out),
        }
    }
    let session = conn.session();
    for der in session
        .certificates
        .iter()
        .chain(&session.client_certificates)
    {
        let _ = cert_details(der);
    }
    if !session.certificates.is_empty() {
        let name = ServerNameInput::Dns("proxy.golang.org".into());
        let _ = trust().validate(&session.certificates, &name, Ts(1_700_000_000_000_000_000));
    }
});
