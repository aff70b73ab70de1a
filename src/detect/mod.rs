//! Findings with stable rule ids.
