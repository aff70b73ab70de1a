//! Go proxy and checksum-database semantics: classify exchanges, decode module paths, build
//! module journeys.
