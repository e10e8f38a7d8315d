//! The stuck position the writer's watchdog publishes in the header (format version 2).

use crate::RingFile;
use ringlat_format::{STUCK_POSITION, STUCK_SINCE_UNIX_NS, STUCK_VALID};
use std::time::Duration;

/// A position reserved by a producer and not finished (committed or given up) for at least
/// one of the writer's background ticks: a producer stuck between reserve and commit, or one
/// that is just slow. A consumer unblocks it after its timeout (`ringcat drain
/// --unblock-after`, default 1 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StuckPosition {
    /// The ring position.
    pub position: u32,
    /// UNIX-epoch nanoseconds at which the watchdog first saw it unfinished.
    pub since_unix_ns: u64,
}

impl StuckPosition {
    /// How long it has been stuck at `now_unix_ns` (0 if the clocks disagree).
    ///
    /// ```
    /// let stuck = ringlat_read::StuckPosition { position: 7, since_unix_ns: 1_000 };
    /// assert_eq!(stuck.stuck_for(3_000_001_000).as_secs(), 3);
    /// ```
    pub fn stuck_for(&self, now_unix_ns: u64) -> Duration {
        Duration::from_nanos(now_unix_ns.saturating_sub(self.since_unix_ns))
    }
}

impl RingFile {
    /// The stuck position the writer's watchdog reports, if any (always `None` for a
    /// version-1 file, whose header has no such field, and once the writer is gone).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("s.ring");
    /// let ring = ringlat::Ring::builder(&path).kind(0, "k").create().unwrap();
    /// let file = ringlat_read::RingFile::open(&path).unwrap();
    /// assert_eq!(file.stuck_position(), None);
    /// ```
    pub fn stuck_position(&self) -> Option<StuckPosition> {
        if self.writer_state() != crate::WriterState::Alive {
            return None;
        }
        let word = self.header_u64(STUCK_POSITION);
        (word & STUCK_VALID != 0 && word >> 33 == 0).then(|| StuckPosition {
            position: word as u32,
            since_unix_ns: self.header_u64(STUCK_SINCE_UNIX_NS),
        })
    }
}
