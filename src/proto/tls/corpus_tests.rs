//! The peer corpus' TLS captures through TlsConn.
