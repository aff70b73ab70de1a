//! The events of the writeKeyLog uprobe as the tracefs instance's `trace_pipe` prints them,
//! turned into key-log lines: parsing, trimming to the lengths Go passed, and dropping the
//! duplicate an entry probe gives when the goroutine's stack grows.
//!
//! One event is one text line (kernel/trace/trace_output.c, trace_probe.c print_type_*):
//! ```text
//!   go-3360    [001] DBZff   172.997408: wkl_1: (0x70c3e0) lab={0x43,0x4c,...} labn=31 cr={...} crn=32 sec={...} secn=32
//!   go-3360 (   3358) [001] .....  ...                      (with options/record-tgid)
//!   <...>-3362 [001] ...                                    (comm not cached: `<...>`)
//! ```
//! The arrays are fixed-size fetches (the probe cannot know the lengths when it reads); the
//! `*n` fields are Go's slice and string lengths, read from the length registers at the same
//! moment. Reading past a short label or secret is harmless; a length longer than the fetch
//! means the secret was cut, and such an event is refused, never guessed at.

use std::collections::{HashSet, VecDeque};
use std::fmt;

/// Bytes fetched per argument (`x8[N]`); N < 64 is what kernels from 4.17 accept.
/// The longest label Go logs is CLIENT_HANDSHAKE_TRAFFIC_SECRET / SERVER_... (31 bytes).
pub const LABEL_FETCH: usize = 31;
/// TLS client randoms are 32 bytes (RFC 8446 4.1.2, RFC 5246 7.4.1.2).
pub const RANDOM_FETCH: usize = 32;
/// The longest secret: a TLS 1.2 master secret (48) or a TLS 1.3 secret with SHA-384 (48).
pub const SECRET_FETCH: usize = 48;

/// One secret as the probe saw it, trimmed to its real length.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct KeyEvent {
    /// The probe's event name (one per probed binary), e.g. `wkl_1`.
    pub event: String,
    /// The thread that called writeKeyLog (trace_pipe prints thread ids).
    pub tid: u32,
    /// Its process, when the line carries it (`options/record-tgid`).
    pub tgid: Option<u32>,
    /// The NSS key-log label, e.g. `CLIENT_TRAFFIC_SECRET_0`.
    pub label: String,
    pub client_random: [u8; RANDOM_FETCH],
    pub secret: Vec<u8>,
}

// Secrets are never printed: not even by a stray `{:?}`.
impl fmt::Debug for KeyEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyEvent")
            .field("event", &self.event)
            .field("tid", &self.tid)
            .field("tgid", &self.tgid)
            .field("label", &self.label)
            .field("secret_len", &self.secret.len())
            .finish_non_exhaustive()
    }
}

impl KeyEvent {
    /// The NSS key-log line (SSLKEYLOGFILE format), with its newline.
    pub fn keylog_line(&self) -> String {
        format!(
            "{} {} {}\n",
            self.label,
            hex::encode(self.client_random),
            hex::encode(&self.secret)
        )
    }
}

/// What a trace_pipe line is.
#[derive(Debug, PartialEq, Eq)]
pub enum TraceLine {
    Key(KeyEvent),
    /// The ring buffer overflowed (`CPU:1 [LOST 12 EVENTS]`): secrets were lost.
    Lost(u64),
    /// Not an event of ours (blank line, another event).
    Other,
}

/// Why an event line of ours could not be used.
#[derive(Debug, PartialEq, Eq)]
pub enum EventError {
    /// A field is missing or malformed.
    Malformed(&'static str),
    /// Go passed more bytes than the probe fetched: the secret was cut.
    TooLong {
        field: &'static str,
        len: u64,
        fetched: usize,
    },
    /// The label is not an NSS key-log label (upper case, digits and `_`).
    BadLabel,
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventError::Malformed(what) => write!(f, "malformed event ({what})"),
            EventError::TooLong {
                field,
                len,
                fetched,
            } => write!(f, "{field} of {len} bytes, only {fetched} fetched"),
            EventError::BadLabel => write!(f, "not a key-log label"),
        }
    }
}

/// Parses one line of trace_pipe. `ours` tells whether an event name is one of this run's
/// probes (other events in the instance are not ours to read).
pub fn parse_line(line: &str, ours: impl Fn(&str) -> bool) -> Result<TraceLine, EventError> {
    if let Some(n) = lost_events(line) {
        return Ok(TraceLine::Lost(n));
    }
    let Some(args_at) = line.find(" lab={") else {
        return Ok(TraceLine::Other);
    };
    let (head, args) = line.split_at(args_at);
    // head: `<comm>-<tid> [(<tgid>)] [<cpu>] <flags> <time>: <event>: (<ip>)`
    let mut parts = head.rsplitn(3, ": ");
    let _ip = parts.next();
    let event = parts.next().ok_or(EventError::Malformed("event name"))?;
    let task = parts.next().ok_or(EventError::Malformed("task"))?;
    if !ours(event) {
        return Ok(TraceLine::Other);
    }
    let (tid, tgid) = parse_task(task)?;
    let fields = parse_args(args)?;
    let label = fields.bytes("lab", "labn", LABEL_FETCH, "label")?;
    let random = fields.bytes("cr", "crn", RANDOM_FETCH, "client random")?;
    let secret = fields.bytes("sec", "secn", SECRET_FETCH, "secret")?;
    let client_random: [u8; RANDOM_FETCH] = random
        .try_into()
        .map_err(|_| EventError::Malformed("client random is not 32 bytes"))?;
    if label.is_empty()
        || !label
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_')
    {
        return Err(EventError::BadLabel);
    }
    if secret.is_empty() {
        return Err(EventError::Malformed("empty secret"));
    }
    Ok(TraceLine::Key(KeyEvent {
        event: event.to_string(),
        tid,
        tgid,
        label: String::from_utf8_lossy(&label).into_owned(),
        client_random,
        secret: secret.to_vec(),
    }))
}

/// `CPU:1 [LOST 12 EVENTS]` (kernel/trace/trace.c print_trace_line).
fn lost_events(line: &str) -> Option<u64> {
    let rest = line.trim().strip_prefix("CPU:")?;
    let (_, rest) = rest.split_once("[LOST ")?;
    rest.strip_suffix(" EVENTS]")?.parse().ok()
}

/// The thread id, and the process id when the line carries one, from the task column:
/// `go-3360`, `go-3360 (   3358)`, `<...>-3362`, `my prog-42 (-------)`.
fn parse_task(task: &str) -> Result<(u32, Option<u32>), EventError> {
    // The task column ends before the CPU column `[001]`.
    let task = task
        .rsplit_once(" [")
        .map(|(t, _)| t)
        .ok_or(EventError::Malformed("cpu column"))?
        .trim();
    let (task, tgid) = match task.rsplit_once(" (") {
        Some((t, g)) if g.ends_with(')') => {
            let g = g.trim_end_matches(')').trim();
            (t.trim_end(), g.parse().ok())
        }
        _ => (task, None),
    };
    let (_, tid) = task
        .rsplit_once('-')
        .ok_or(EventError::Malformed("thread id"))?;
    let tid = tid
        .parse()
        .map_err(|_| EventError::Malformed("thread id"))?;
    Ok((tid, tgid))
}

/// The `name=value` arguments: arrays `{0x43,0x4c,...}` and numbers.
struct Args<'a> {
    fields: Vec<(&'a str, &'a str)>,
}

fn parse_args(args: &str) -> Result<Args<'_>, EventError> {
    let mut fields = Vec::new();
    let mut rest = args.trim_start();
    while !rest.is_empty() {
        let (name, after) = rest
            .split_once('=')
            .ok_or(EventError::Malformed("argument"))?;
        let (value, after) = if after.starts_with('{') {
            let end = after.find('}').ok_or(EventError::Malformed("array"))?;
            (&after[..=end], &after[end + 1..])
        } else {
            after.split_once(' ').unwrap_or((after, ""))
        };
        fields.push((name, value));
        rest = after.trim_start();
    }
    Ok(Args { fields })
}

impl Args<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }

    /// The array `array` trimmed to the length in `len` (which must fit the fetch).
    fn bytes(
        &self,
        array: &str,
        len: &str,
        fetched: usize,
        what: &'static str,
    ) -> Result<Vec<u8>, EventError> {
        let n: u64 = self
            .get(len)
            .and_then(parse_number)
            .ok_or(EventError::Malformed(what))?;
        if n > fetched as u64 {
            return Err(EventError::TooLong {
                field: what,
                len: n,
                fetched,
            });
        }
        let body = self
            .get(array)
            .and_then(|v| v.strip_prefix('{'))
            .and_then(|v| v.strip_suffix('}'))
            .ok_or(EventError::Malformed(what))?;
        let mut out = Vec::with_capacity(fetched);
        for b in body.split(',') {
            let b = b.trim();
            let v = b
                .strip_prefix("0x")
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(EventError::Malformed(what))?;
            out.push(v);
        }
        if out.len() != fetched {
            return Err(EventError::Malformed(what));
        }
        out.truncate(n as usize);
        Ok(out)
    }
}

/// `%Lu` prints decimal; `x64` prints `0x...`.
fn parse_number(v: &str) -> Option<u64> {
    match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => v.parse().ok(),
    }
}

/// Drops events already seen. An entry uprobe fires a second time when the goroutine stack
/// grows in the function's prologue (runtime.morestack returns to the entry), with the same
/// arguments; the copy comes at once, so a short memory is enough and keeps memory bounded
/// on a capture that runs for days.
pub struct Dedupe {
    seen: HashSet<(String, [u8; RANDOM_FETCH], Vec<u8>)>,
    order: VecDeque<(String, [u8; RANDOM_FETCH], Vec<u8>)>,
    capacity: usize,
}

/// Secrets remembered for deduplication (four per TLS 1.3 connection).
pub const DEDUPE_MEMORY: usize = 4096;

impl Default for Dedupe {
    fn default() -> Self {
        Dedupe::new(DEDUPE_MEMORY)
    }
}

impl Dedupe {
    pub fn new(capacity: usize) -> Dedupe {
        Dedupe {
            seen: HashSet::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// True the first time (label, client random, secret) is offered.
    pub fn first(&mut self, e: &KeyEvent) -> bool {
        let key = (e.label.clone(), e.client_random, e.secret.clone());
        if self.seen.contains(&key) {
            return false;
        }
        if self.order.len() >= self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        self.seen.insert(key.clone());
        self.order.push_back(key);
        true
    }
}

#[cfg(test)]
#[path = "event_tests.rs"]
mod tests;
