//! `go env -json` output and go.env-style files (`--go-env`): parsed, then GOPROXY, GOSUMDB,
//! the trusted hosts and a policy's view of them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modtrace::gomod::goenv::{self, GoEnv};
use modtrace::policy::Policy;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(env) = GoEnv::parse(text) {
        let _ = env.goproxy();
        let _ = env.gosumdb();
        for (host, _port) in env.trusted_hosts() {
            let _ = goenv::host_only(&host);
        }
        let mut p = Policy::default();
        p.add_go_env(&env);
        let scope = p.scope();
        let _ = scope.private_for_proxy("corp.example/m");
        let _ = scope.in_env_goproxy("https://proxy.golang.org");
    }
    let _ = goenv::parse_goproxy(text);
    let _ = goenv::parse_gosumdb(text);
    let _ = goenv::port_of(text);
});
