//! pcap / pcapng / gzip file reading and the time-ordered merge of several files.
//! (Implementation owned by the source+decode work item.)

use super::{Frame, SourceError, SourceStats};
use std::path::Path;

/// Reads one capture file, streaming (bounded memory whatever the file size).
pub struct CaptureReader {
    stats: SourceStats,
}

impl CaptureReader {
    /// Opens `path`; detects pcap vs pcapng and gzip by magic bytes, not by name.
    pub fn open(path: &Path, file_index: usize) -> Result<CaptureReader, SourceError> {
        let _ = file_index;
        Err(SourceError::NotACapture { path: path.to_path_buf() })
    }

    /// Next frame, or `Ok(None)` at the end (or at a cut-short end: see `stats().truncated_file`).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
        Ok(None)
    }

    pub fn stats(&self) -> &SourceStats {
        &self.stats
    }

    /// Bytes of the (possibly compressed) file consumed so far, for progress bars.
    pub fn file_position(&self) -> u64 {
        0
    }
}

/// Several capture files merged into one stream ordered by timestamp (stable: ties go to the
/// earlier file).
pub struct MergedSource {
    readers: Vec<CaptureReader>,
}

impl MergedSource {
    pub fn open(paths: &[impl AsRef<Path>]) -> Result<MergedSource, SourceError> {
        let mut readers = Vec::new();
        for (i, p) in paths.iter().enumerate() {
            readers.push(CaptureReader::open(p.as_ref(), i)?);
        }
        Ok(MergedSource { readers })
    }

    pub fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
        Ok(None)
    }

    pub fn stats(&self) -> Vec<&SourceStats> {
        self.readers.iter().map(|r| r.stats()).collect()
    }

    /// Sum of `file_position()` over the readers.
    pub fn position(&self) -> u64 {
        self.readers.iter().map(|r| r.file_position()).sum()
    }
}
