//! (Implementation owned by the source+decode work item.)

use super::{DecodeStats, DefragLimits, Transport};
use crate::source::Frame;

pub struct Decoder {
    stats: DecodeStats,
    _limits: DefragLimits,
}

impl Decoder {
    pub fn new(limits: DefragLimits) -> Decoder {
        Decoder { stats: DecodeStats::default(), _limits: limits }
    }

    /// Decodes one frame down to TCP or UDP. `None` when the frame carries neither or cannot be
    /// decoded (counted in `stats`), or is a fragment still waiting for the rest of its set.
    pub fn decode<'a>(&mut self, frame: &'a Frame) -> Option<Transport<'a>> {
        let _ = frame;
        None
    }

    pub fn stats(&self) -> &DecodeStats {
        &self.stats
    }
}
