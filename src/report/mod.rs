//! Report sinks: text and JSON.
