//! TLS on the wire. (Owned by the TLS work item.)
