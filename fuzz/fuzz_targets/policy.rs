//! The policy TOML (`--policy`): any text parses or gives one error; a parsed policy's scope
//! answers for a few module paths and proxy bases, and its patterns match without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modtrace::gomod::pattern::{path_match, ProxyBase};
use modtrace::policy::Policy;
use modtrace::time::Date;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = Policy::from_toml(text, "fuzz.toml") {
        let scope = p.scope();
        for module in ["example.com/m", "corp.example/x/y", "github.com/a/b"] {
            let _ = scope.private_for_proxy(module);
            let _ = scope.private_for_sumdb(module);
        }
        for base in ["https://proxy.golang.org", "http://127.0.0.1:8080/mirror"] {
            let _ = scope.is_private_proxy(base);
            let _ = scope.is_allowed(base);
            let _ = scope.in_env_goproxy(base);
        }
        let _ = p.is_passive();
        let today = Date::parse("2026-01-01").unwrap();
        let _ = p.expired(today);
        let mut findings = Vec::new();
        let _ = p.apply(&mut findings, today);
    }
    // The text's lines as pattern and name.
    let mut lines = text.lines();
    if let (Some(pattern), Some(name)) = (lines.next(), lines.next()) {
        let _ = path_match(pattern, name);
        let _ = modtrace::gomod::pattern::match_prefix_patterns(pattern, name);
        if let Some(b) = ProxyBase::parse(pattern) {
            let _ = b.covers(name);
        }
    }
    let _ = Date::parse(text);
});
