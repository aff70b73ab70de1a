//! The lab: loopback HTTP servers (GOPROXY, fallback, redirecting mirrors, a mirror with an
//! upstream) used to record captures of the real go command. Binds 127.0.0.1 only.
//! (Owned by the lab work item.)

/// Entry point of `modtrace lab ...` (arguments after `lab`). Returns the process exit code.
pub fn cli(args: &[String]) -> i32 {
    let _ = args;
    eprintln!("modtrace: lab: not built yet");
    2
}
