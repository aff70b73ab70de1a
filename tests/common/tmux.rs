//! A terminal for TUI tests: a tmux session on a socket of its own, 120x40.

use std::process::Command;
use std::time::{Duration, Instant};

pub fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux").args(args).output().expect("run tmux");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn tmux_available() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A tmux session of its own (own socket: never the user's server) running `cmd`.
pub struct Session {
    socket: String,
}

impl Session {
    pub fn start(name: &str, cmd: &str) -> Session {
        let socket = format!("modtrace-test-{name}-{}", std::process::id());
        let s = Session { socket };
        let st = Command::new("tmux")
            .args([
                "-L",
                &s.socket,
                "new-session",
                "-d",
                "-x",
                "120",
                "-y",
                "40",
            ])
            .arg(cmd)
            .status()
            .unwrap();
        assert!(st.success(), "tmux new-session");
        s
    }
    pub fn pane(&self) -> String {
        tmux(&["-L", &self.socket, "capture-pane", "-p"])
    }
    pub fn keys(&self, keys: &str) {
        tmux(&["-L", &self.socket, "send-keys", keys]);
    }
    /// Waits until the pane shows `text`.
    pub fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let p = self.pane();
            if p.contains(text) {
                return p;
            }
            assert!(Instant::now() < deadline, "no {text:?} on screen:\n{p}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}
