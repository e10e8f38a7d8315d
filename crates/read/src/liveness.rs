//! Is the writer alive? Three witnesses, weighed: the writer lock, the writer's pid and its
//! heartbeat. The lock alone can lie: anyone who can open the file can take an exclusive
//! `flock` on a dead writer's file and make it look alive.

use crate::RingFile;
use crate::locks::{LockHolder, pid_exists, writer_lock_holder};
use ringlat_format::{HEARTBEAT_UNIX_NS, STATE, STATE_CLOSED, TICK_NS};
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Whether the process that writes a ring is still there.
///
/// ```
/// assert_ne!(ringlat_read::WriterState::Closed, ringlat_read::WriterState::Alive);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriterState {
    /// The writer holds the file's lock (or, if someone else does, its pid exists and its
    /// heartbeat is fresh).
    Alive,
    /// The file was not closed and the writer is gone: nobody holds the writer lock, or the
    /// one holding it is not the writer, whose pid is gone or whose heartbeat is stale.
    Dead,
    /// The writer closed the file cleanly.
    Closed,
}

impl WriterState {
    /// The word tools print.
    pub fn as_str(self) -> &'static str {
        match self {
            WriterState::Alive => "alive",
            WriterState::Dead => "dead",
            WriterState::Closed => "closed",
        }
    }
}

/// What each witness of writer liveness says, and the verdict.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("l.ring");
/// let ring = ringlat::Ring::builder(&path).capacity(16).kind(0, "op").create().unwrap();
/// let file = ringlat_read::RingFile::open(&path).unwrap();
/// let liveness = file.liveness();
/// assert_eq!(liveness.state, ringlat_read::WriterState::Alive);
/// assert_eq!(liveness.lock, ringlat_read::LockHolder::Pid(std::process::id()));
/// assert!(liveness.disagreement.is_none());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Liveness {
    /// The verdict.
    pub state: WriterState,
    /// Who holds the writer lock.
    pub lock: LockHolder,
    /// Whether the writer pid stored in the header exists (`None`: no pid stored).
    pub pid_alive: Option<bool>,
    /// Age of the last heartbeat (`None`: no heartbeat yet).
    pub heartbeat_age: Option<Duration>,
    /// When the witnesses disagree, what they say, in one sentence.
    pub disagreement: Option<String>,
}

/// A heartbeat older than this many ticks (and at least [`STALE_MIN`]) is stale.
const STALE_TICKS: u64 = 100;
/// The shortest heartbeat age called stale: a loaded machine can deschedule the writer's
/// background thread for a while.
const STALE_MIN: Duration = Duration::from_secs(5);

impl RingFile {
    /// Whether the writer is alive, dead, or closed the file.
    ///
    /// A file its writer closed is closed whatever the other witnesses say, so they are not
    /// asked: the writer lock's lookup reads `/proc/locks`, and the kernel makes the first
    /// read of it in a while wait for an RCU grace period (about 10 ms here).
    pub fn writer_state(&self) -> WriterState {
        if self.closed_by_writer() {
            return WriterState::Closed;
        }
        self.liveness().state
    }

    /// True when the writer may be alive by the witnesses that cost no lock lookup: the file
    /// is not closed, the writer pid exists, and the heartbeat is fresh. For a reader to whom
    /// taking a dead writer for a live one is the careful side (it then reads every slot as
    /// a seqlock reader and passes over unfinished ones), saving the lookup of
    /// [`writer_state`](Self::writer_state).
    pub(crate) fn writer_seems_alive(&self) -> bool {
        !self.closed_by_writer()
            && pid_exists(self.writer_pid()) == Some(true)
            && self.heartbeat_is_fresh(self.heartbeat_age())
    }

    /// True when the writer closed the file cleanly (the header says so).
    pub(crate) fn closed_by_writer(&self) -> bool {
        // Acquire: pairs with the writer's Release store of STATE on close.
        self.ring()
            .storage()
            .u32_at(STATE)
            .is_some_and(|v| v.load(Ordering::Acquire) == STATE_CLOSED)
    }

    /// A heartbeat at most `STALE_TICKS` ticks (and at least `STALE_MIN`) old.
    fn heartbeat_is_fresh(&self, age: Option<Duration>) -> bool {
        let stale_after =
            Duration::from_nanos(self.header_u64(TICK_NS).saturating_mul(STALE_TICKS))
                .max(STALE_MIN);
        age.is_some_and(|age| age <= stale_after)
    }

    /// The witnesses of writer liveness and the verdict (see [`Liveness`]).
    pub fn liveness(&self) -> Liveness {
        let closed = self.closed_by_writer();
        let lock = writer_lock_holder(&self.file).unwrap_or(LockHolder::Unknown);
        let pid = self.writer_pid();
        let pid_alive = pid_exists(pid);
        let heartbeat_age = self.heartbeat_age();
        let mut liveness = Liveness {
            state: WriterState::Alive,
            lock,
            pid_alive,
            heartbeat_age,
            disagreement: None,
        };
        if closed {
            liveness.state = WriterState::Closed;
            return liveness;
        }
        let fresh = self.heartbeat_is_fresh(heartbeat_age);
        let age_text = heartbeat_age.map_or("no heartbeat".to_string(), |age| {
            format!("last heartbeat {:.1} s ago", age.as_secs_f64())
        });
        match lock {
            LockHolder::Nobody => {
                liveness.state = WriterState::Dead;
                if fresh && pid_alive == Some(true) {
                    liveness.disagreement = Some(format!(
                        "nobody holds the writer lock, but pid {pid} exists and the {age_text}"
                    ));
                }
            }
            LockHolder::Pid(holder) if holder == pid && pid_alive != Some(false) => {}
            LockHolder::Unknown if pid_alive != Some(false) => {}
            holder => {
                // Someone holds the lock, but not the writer (or the writer pid is gone):
                // believe the heartbeat.
                let who = match holder {
                    LockHolder::Pid(other) => format!("pid {other}"),
                    _ => "an unknown process".to_string(),
                };
                let writer = match pid_alive {
                    Some(false) => format!("writer pid {pid} is gone"),
                    None => "the header names no writer pid".to_string(),
                    Some(true) => format!("writer pid {pid} does not hold it"),
                };
                if fresh {
                    liveness.disagreement = Some(format!(
                        "the writer lock is held by {who} and {writer}, but the {age_text}: taken as alive"
                    ));
                } else {
                    liveness.state = WriterState::Dead;
                    liveness.disagreement = Some(format!(
                        "the writer lock is held by {who}, but {writer} and the {age_text}: taken as dead"
                    ));
                }
            }
        }
        liveness
    }

    fn heartbeat_age(&self) -> Option<Duration> {
        let beat = self.header_u64(HEARTBEAT_UNIX_NS);
        if beat == 0 {
            return None;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        Some(Duration::from_nanos(now.saturating_sub(beat)))
    }

    /// A "has the writer died?" check for the ring's readers: asked only when a slot is found
    /// uncommitted, and answered once per call site (the lock lookup reads `/proc/locks`).
    pub(crate) fn writer_dead_probe(&self) -> impl FnMut() -> bool + '_ {
        let mut dead = None;
        move || *dead.get_or_insert_with(|| self.writer_state() != WriterState::Alive)
    }
}

#[cfg(test)]
mod tests {
    use crate::{RingFile, WriterState};
    use std::os::unix::fs::FileExt;

    /// The witnesses that need no lock lookup: the pid and the heartbeat of a file not
    /// closed; either one against the writer makes it not seem alive.
    #[test]
    fn a_writer_seems_alive_by_its_pid_and_heartbeat_until_either_says_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.ring");
        // A tick of an hour: the background thread beats no more during the test (it would
        // write over the heartbeat made stale below); one flush beats once.
        let ring = ringlat::Ring::builder(&path)
            .capacity(16)
            .kind(0, "op")
            .tick(std::time::Duration::from_secs(3600))
            .create()
            .unwrap();
        ring.flush().unwrap();
        assert!(RingFile::open(&path).unwrap().writer_seems_alive());
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let at = |field: usize| field as u64;
        let stale = 1u64.to_le_bytes(); // 1 ns after the epoch
        let beat = RingFile::open(&path)
            .unwrap()
            .header_u64(ringlat_format::HEARTBEAT_UNIX_NS);
        file.write_at(&stale, at(ringlat_format::HEARTBEAT_UNIX_NS))
            .unwrap();
        assert!(!RingFile::open(&path).unwrap().writer_seems_alive());
        file.write_at(&beat.to_le_bytes(), at(ringlat_format::HEARTBEAT_UNIX_NS))
            .unwrap();
        assert!(RingFile::open(&path).unwrap().writer_seems_alive());
        let gone = (i32::MAX as u32).to_le_bytes();
        file.write_at(&gone, at(ringlat_format::WRITER_PID))
            .unwrap();
        assert!(!RingFile::open(&path).unwrap().writer_seems_alive());
        file.write_at(
            &std::process::id().to_le_bytes(),
            at(ringlat_format::WRITER_PID),
        )
        .unwrap();
        drop(ring);
        let closed = RingFile::open(&path).unwrap();
        assert!(!closed.writer_seems_alive());
        assert_eq!(closed.writer_state(), WriterState::Closed);
    }
}
