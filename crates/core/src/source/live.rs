//! Live capture through libpcap (the pcap crate; cargo feature `live`). Opened in immediate
//! mode with a large kernel buffer: without immediate mode packets wait in the kernel ring up
//! to a second, and a small buffer lost segments of large loopback responses
//! (docs: the lab notes). A short read timeout lets the caller check for Ctrl-C and flush
//! between packets.

use super::{Frame, LinkType};
use crate::time::Ts;

#[derive(Clone, Debug)]
pub struct LiveOptions {
    /// Interface name, or `any` (Linux: all interfaces, Linux cooked v2 framing).
    pub interface: String,
    /// BPF filter, as tcpdump takes it.
    pub filter: String,
    /// Bytes kept per packet; 0 means the whole packet (262144, as tcpdump -s 0).
    pub snaplen: u32,
    /// Kernel buffer size in bytes.
    pub buffer_bytes: u32,
    /// Longest wait for a packet before `next_frame` returns `Ok(None)`.
    pub poll_ms: u32,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            interface: "any".into(),
            filter: "tcp or port 53".into(),
            snaplen: 262_144,
            // 64 MiB, as tcpdump -B 65536: a ~600 KB loopback response lost segments with the
            // default 2 MiB (lab notes).
            buffer_bytes: 64 << 20,
            poll_ms: 100,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// The process may not capture (not root, no cap_net_raw).
    #[error("capture on {interface}: no permission to capture ({detail}); run it with sudo, or give the binary the capabilities once: sudo setcap cap_net_raw,cap_net_admin=eip {binary}")]
    NoPermission {
        interface: String,
        detail: String,
        binary: String,
    },
    #[error("capture on {interface}: {detail}")]
    Open { interface: String, detail: String },
    #[error("capture filter {filter:?}: {detail}")]
    Filter { filter: String, detail: String },
    #[error("reading packets: {0}")]
    Read(String),
}

/// Kernel counters of the capture (pcap_stats(3PCAP)), since it was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct KernelStats {
    pub received: u64,
    /// Dropped because modtrace did not read fast enough (buffer full).
    pub dropped: u64,
    /// Dropped by the interface or its driver.
    pub if_dropped: u64,
}

pub struct LiveSource {
    cap: pcap::Capture<pcap::Active>,
    link: LinkType,
    interface: String,
    poll_ms: u16,
}

fn looks_like_permission(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    m.contains("permission") || m.contains("not permitted")
}

impl LiveSource {
    /// Opens and activates the capture and sets the filter. Needs the rights to capture.
    pub fn open(o: &LiveOptions) -> Result<LiveSource, LiveError> {
        let open_err = |detail: String| {
            if looks_like_permission(&detail) {
                LiveError::NoPermission {
                    interface: o.interface.clone(),
                    detail,
                    binary: std::env::current_exe()
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|_| "$(command -v modtrace)".into()),
                }
            } else {
                LiveError::Open {
                    interface: o.interface.clone(),
                    detail,
                }
            }
        };
        let snaplen = if o.snaplen == 0 { 262_144 } else { o.snaplen };
        let cap = pcap::Capture::from_device(o.interface.as_str())
            .map_err(|e| open_err(e.to_string()))?
            .snaplen(i32::try_from(snaplen).unwrap_or(i32::MAX))
            .immediate_mode(true)
            .buffer_size(i32::try_from(o.buffer_bytes).unwrap_or(i32::MAX))
            .timeout(i32::try_from(o.poll_ms).unwrap_or(100))
            .open()
            .map_err(|e| open_err(e.to_string()))?;
        let mut cap = cap.setnonblock().map_err(|e| open_err(e.to_string()))?;
        cap.filter(&o.filter, true).map_err(|e| LiveError::Filter {
            filter: o.filter.clone(),
            detail: e.to_string(),
        })?;
        let dl = cap.get_datalink().0;
        Ok(LiveSource {
            cap,
            link: LinkType(u16::try_from(dl).unwrap_or(u16::MAX)),
            interface: o.interface.clone(),
            poll_ms: u16::try_from(o.poll_ms).unwrap_or(u16::MAX),
        })
    }

    pub fn link(&self) -> LinkType {
        self.link
    }

    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// The next packet, or `Ok(None)` when none came within the poll time (or a signal
    /// interrupted the wait). The handle is non-blocking and waited on with poll(2): libpcap's
    /// own read timeout does not apply in immediate mode on Linux (a blocking read waits
    /// forever on a quiet interface, and Ctrl-C would never be noticed).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, LiveError> {
        for attempt in 0..2 {
            let link = self.link;
            match self.cap.next_packet() {
                Ok(p) => {
                    // Microsecond timestamps (libpcap's default precision, available
                    // everywhere).
                    let tv = &p.header.ts;
                    let usec = u32::try_from(tv.tv_usec).unwrap_or(0).min(999_999);
                    return Ok(Some(Frame {
                        // time_t is i32 on 32-bit targets: the cast is needed there.
                        #[allow(clippy::unnecessary_cast)]
                        ts: Ts::from_secs_nanos(tv.tv_sec as i64, usec * 1000),
                        link,
                        data: p.data.to_vec(),
                        orig_len: p.header.len,
                        file: 0,
                    }));
                }
                Err(pcap::Error::TimeoutExpired) if attempt == 0 => self.wait(),
                Err(pcap::Error::TimeoutExpired) => return Ok(None),
                Err(e) => return Err(LiveError::Read(e.to_string())),
            }
        }
        Ok(None)
    }

    /// Waits up to the poll time for the handle to become readable.
    fn wait(&self) {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use std::os::fd::AsFd;
        let mut fds = [PollFd::new(self.cap.as_fd(), PollFlags::POLLIN)];
        // EINTR (a signal) and errors alike: return, the caller checks its stop flag.
        let _ = poll(&mut fds, PollTimeout::from(self.poll_ms));
    }

    pub fn stats(&mut self) -> Option<KernelStats> {
        self.cap.stats().ok().map(|s| KernelStats {
            received: s.received as u64,
            dropped: s.dropped as u64,
            if_dropped: s.if_dropped as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_errors_are_recognised() {
        assert!(looks_like_permission(
            "any: You don't have permission to perform this capture on that device (socket: Operation not permitted)"
        ));
        assert!(looks_like_permission("socket: Operation not permitted"));
        assert!(!looks_like_permission("nosuch: No such device exists"));
    }

    #[test]
    fn no_permission_message_names_both_ways() {
        let e = LiveError::NoPermission {
            interface: "any".into(),
            detail: "Operation not permitted".into(),
            binary: "/usr/local/bin/modtrace".into(),
        }
        .to_string();
        assert!(e.contains("sudo"), "{e}");
        assert!(
            e.contains("setcap cap_net_raw,cap_net_admin=eip /usr/local/bin/modtrace"),
            "{e}"
        );
    }

    #[test]
    fn unknown_interface_is_an_open_error() {
        let o = LiveOptions {
            interface: "modtrace-no-such-if0".into(),
            ..LiveOptions::default()
        };
        match LiveSource::open(&o) {
            Err(LiveError::Open { detail, .. }) => assert!(!detail.is_empty()),
            // Without the rights to capture, libpcap may refuse before looking at the name.
            Err(LiveError::NoPermission { .. }) => {}
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("opened a missing interface"),
        }
    }
}
