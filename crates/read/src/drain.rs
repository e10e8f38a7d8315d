use crate::locks::try_lock_consumer;
use crate::{Decoded, ReadError, RingFile};
use ringlat_format::GlobalCounter;
use ringlat_ring::{ConsumeStats, Consumer};

use std::path::Path;
use std::sync::atomic::Ordering;

/// The one consumer of a ring file: takes records in order and gives their slots back to the
/// writer. Holds the consumer lock (FORMAT.md) for as long as it lives.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("d.ring");
/// let ring = ringlat::Ring::builder(&path).capacity(16).kind(0, "k").create().unwrap();
/// for id in 0..3 { ring.record(0, id, 0, std::time::Duration::from_micros(1)); }
/// let mut drainer = ringlat_read::Drainer::open(&path).unwrap();
/// let mut ids = Vec::new();
/// drainer.drain(100, |d| { ids.push(d.record.trace_id()); Ok::<(), ()>(()) }).unwrap();
/// assert_eq!(ids, [0, 1, 2]);
/// assert!(ringlat_read::Drainer::open(&path).is_err()); // one consumer at a time
/// ```
#[derive(Debug)]
pub struct Drainer {
    file: RingFile,
    consumer: Consumer,
}

impl Drainer {
    /// Opens `path` for consuming; fails if another consumer is active.
    pub fn open(path: impl AsRef<Path>) -> Result<Drainer, ReadError> {
        let path = path.as_ref();
        let file = RingFile::open_mode(path, true)?;
        if file.overwrite {
            // Producers of an overwrite ring move head themselves; a consumer would race them
            // for the same slots. Such rings are read by peeking (`cat`, `snapshot`).
            return Err(ReadError::OverwriteRing {
                path: path.to_path_buf(),
            });
        }
        if !try_lock_consumer(&file.file)
            .map_err(ReadError::io(path, "taking the consumer lock"))?
        {
            return Err(ReadError::ConsumerActive {
                path: path.to_path_buf(),
            });
        }
        let consumer = Consumer::attach(file.ring()).map_err(|_| ReadError::OverwriteRing {
            path: path.to_path_buf(),
        })?;
        Ok(Drainer { file, consumer })
    }

    /// How long a slot reserved but not committed by a live producer may stop the drain
    /// before it is unblocked (skipped and counted as abandoned); default
    /// [`ringlat_ring::DEFAULT_UNBLOCK_AFTER`] (1 s). `None`: only once the writer is gone.
    pub fn set_unblock_after(&mut self, after: Option<std::time::Duration>) {
        self.consumer.set_unblock_after(after);
    }

    /// The underlying file (header, counters, kind names).
    pub fn file(&self) -> &RingFile {
        &self.file
    }

    /// Reads up to `max` records and hands them to `on_batch` together; they are consumed
    /// only if it succeeds (e.g. once the batch is written to an archive), so nothing is
    /// consumed that was not handled.
    pub fn drain_batch<E>(
        &mut self,
        max: usize,
        on_batch: impl FnOnce(&[Decoded]) -> Result<(), E>,
    ) -> Result<ConsumeStats, E> {
        let file = &self.file;
        let max = file.bounded_batch(max);
        let mut writer_dead = file.writer_dead_probe();
        let result = self
            .consumer
            .try_consume_batch(file.ring(), max, &mut writer_dead, |slots| {
                // Unchecked: the batch handler skips and counts untrustworthy slots itself
                // (the archive keeps that count), so they are handed on as they are.
                let mut decoded: Vec<Decoded> = slots
                    .iter()
                    .map(|slot| file.decode_unchecked(*slot))
                    .collect();
                if file.truncated() {
                    // Read after the file shrank: possibly zeros, never handed on (the
                    // caller's `check_intact` reports the truncation).
                    decoded.clear();
                }
                on_batch(&decoded)
            });
        if let Ok(stats) = &result {
            self.count_abandoned(stats.abandoned);
        }
        result
    }

    /// Consumes up to `max` records in order, handing each to `on_record` first. A record
    /// whose handler fails stays in the ring, as does everything after it: nothing is
    /// consumed that was not handled. Slots a dead writer left half-written are skipped and
    /// added to the file's `abandoned` counter.
    pub fn drain<E>(
        &mut self,
        max: usize,
        mut on_record: impl FnMut(Decoded) -> Result<(), E>,
    ) -> Result<ConsumeStats, E> {
        let file = &self.file;
        let max = file.bounded_batch(max);
        let mut writer_dead = file.writer_dead_probe();
        let before = self.consumer.position();
        let mut handled = 0usize;
        let result = self
            .consumer
            .try_consume(file.ring(), max, &mut writer_dead, |slot| {
                // A slot that cannot be trusted (undeclared kind, unused class) or read after
                // a truncation is skipped (counted by the file), not handed on.
                if let Some(decoded) = file.decode(slot).filter(|_| !file.truncated()) {
                    on_record(decoded)?;
                }
                handled += 1;
                Ok(())
            });
        // On a handler failure head has still moved past the abandoned slots before the
        // failing record: they are counted from the distance moved, not from the lost stats.
        let moved = self.consumer.position().wrapping_sub(before) as usize;
        self.count_abandoned(moved.saturating_sub(handled));
        result
    }

    fn count_abandoned(&self, abandoned: usize) {
        if abandoned > 0
            && let Some(counter) = self
                .file
                .ring()
                .storage()
                .u64_at(GlobalCounter::Abandoned.offset())
        {
            // Relaxed: a statistic, read by `ringcat stat`.
            counter.fetch_add(abandoned as u64, Ordering::Relaxed);
        }
    }
}
