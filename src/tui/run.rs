//! The terminal loop (placeholder; see mod.rs).
