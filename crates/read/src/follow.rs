use crate::{Decoded, RingFile};
use ringlat_ring::{InFlight, PeekStats, Peeker};
use std::time::Duration;

/// Follows a ring as records arrive, without consuming them and without burning a core:
/// it spins briefly, then yields, then sleeps up to 20 ms between empty polls.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("f.ring");
/// let ring = ringlat::Ring::builder(&path).capacity(16).kind(0, "k").create().unwrap();
/// let file = ringlat_read::RingFile::open(&path).unwrap();
/// let mut follower = ringlat_read::Follower::from_head(&file);
/// ring.record(0, 5, 0, std::time::Duration::from_micros(1));
/// let batch = follower.poll(&file, 100);
/// assert_eq!(batch.len(), 1);
/// ```
#[derive(Debug)]
pub struct Follower {
    peeker: Peeker,
    idle_polls: u32,
    stats: PeekStats,
}

const MAX_SLEEP: Duration = Duration::from_millis(20);

impl Follower {
    /// Starts with the oldest record in the ring.
    pub fn from_head(file: &RingFile) -> Self {
        Follower {
            peeker: Peeker::at_head(file.ring()),
            idle_polls: 0,
            stats: PeekStats::default(),
        }
    }

    /// Starts with the next record to be written.
    pub fn from_tail(file: &RingFile) -> Self {
        Follower {
            peeker: Peeker::at_tail(file.ring()),
            idle_polls: 0,
            stats: PeekStats::default(),
        }
    }

    /// Totals so far: returned, missed (consumed, overwritten or given up before we saw them;
    /// `given_up` says how many were given up), abandoned (unfinished when the writer died or
    /// closed the file).
    pub fn stats(&self) -> PeekStats {
        self.stats
    }

    /// Returns what arrived since the last poll (up to `max`), without waiting.
    pub fn poll(&mut self, file: &RingFile, max: u64) -> Vec<Decoded> {
        let mut out = Vec::new();
        let mut writer_dead = file.writer_dead_probe();
        let stats = self
            .peeker
            .peek(file.ring(), max, InFlight::Wait, &mut writer_dead, |slot| {
                out.extend(file.decode(slot))
            });
        if file.truncated() {
            // Read after the file shrank: possibly zeros (`RingFile::check_intact` reports it).
            out.clear();
        }
        self.stats.returned += stats.returned;
        self.stats.missed += stats.missed;
        self.stats.given_up += stats.given_up;
        self.stats.abandoned += stats.abandoned;
        out
    }

    /// Like [`Follower::poll`], but when nothing arrived, backs off before returning: spin,
    /// then yield, then sleep (doubling up to 20 ms). Returns an empty batch after a back-off
    /// step so that the caller can check its own stop conditions.
    pub fn next_batch(&mut self, file: &RingFile, max: u64) -> Vec<Decoded> {
        let batch = self.poll(file, max);
        if batch.is_empty() {
            self.back_off();
        } else {
            self.idle_polls = 0;
        }
        batch
    }

    fn back_off(&mut self) {
        self.idle_polls = self.idle_polls.saturating_add(1);
        match self.idle_polls {
            0..=16 => std::hint::spin_loop(),
            17..=32 => std::thread::yield_now(),
            n => {
                let exponent = (n - 32).min(16);
                let sleep = Duration::from_micros(50u64 << exponent).min(MAX_SLEEP);
                std::thread::sleep(sleep);
            }
        }
    }
}
