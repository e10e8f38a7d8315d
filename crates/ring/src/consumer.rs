use crate::ring::{Ring, Slot};
use crate::storage::Storage;
use crate::sync::Ordering;
use core::convert::Infallible;
use ringlat_format::{pack_positions, unpack_positions};

/// What one [`Consumer::consume`] call did.
///
/// ```
/// let stats = ringlat_ring::ConsumeStats::default();
/// assert_eq!(stats.taken + stats.abandoned, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsumeStats {
    /// Records handed to the callback and consumed.
    pub taken: usize,
    /// Slots skipped because their producer died before committing them.
    pub abandoned: usize,
    /// True when the call stopped at a slot a live producer has reserved but not committed.
    pub blocked: bool,
}

/// The one consumer of a ring: takes committed records in position order and gives their
/// slots back to the producers by advancing head, one CAS per batch.
///
/// ```
/// use ringlat_ring::{Consumer, HeapStorage, Ring};
/// use ringlat_format::Record;
/// let ring = Ring::new(HeapStorage::new(8)).unwrap();
/// for id in 0..5 {
///     ring.push(0, 0, &Record::new(id, 0, 0, 0)).unwrap();
/// }
/// let mut consumer = Consumer::attach(&ring);
/// let mut ids = Vec::new();
/// let stats = consumer.consume(&ring, 3, &mut || false, |slot| ids.push(slot.record.trace_id()));
/// assert_eq!((stats.taken, ids), (3, vec![0, 1, 2]));
/// assert_eq!(ring.positions(), (3, 5));
/// ```
#[derive(Debug)]
pub struct Consumer {
    head: u32,
}

impl Consumer {
    /// Starts consuming at the ring's current head.
    pub fn attach<S: Storage>(ring: &Ring<S>) -> Self {
        Consumer {
            head: ring.positions().0,
        }
    }

    /// The position of the next record this consumer will take.
    pub fn position(&self) -> u32 {
        self.head
    }

    /// Takes up to `max` committed records, in order, then advances head past them.
    ///
    /// Stops early at a slot that is reserved but not committed, unless `writer_dead` says the
    /// producers are gone, in which case the slot is skipped and counted as abandoned.
    pub fn consume<S: Storage>(
        &mut self,
        ring: &Ring<S>,
        max: usize,
        writer_dead: &mut dyn FnMut() -> bool,
        mut on_slot: impl FnMut(Slot),
    ) -> ConsumeStats {
        let result: Result<ConsumeStats, Infallible> =
            self.try_consume(ring, max, writer_dead, |slot| {
                on_slot(slot);
                Ok(())
            });
        match result {
            Ok(stats) => stats,
            Err(never) => match never {},
        }
    }

    /// Consumes up to `max` records in order, handing each to `on_slot`. A record whose
    /// handler fails stays in the ring, as does everything after it. Slots a dead writer
    /// left uncommitted (`writer_dead()` says so) are skipped and counted as abandoned.
    pub fn try_consume<S: Storage, E>(
        &mut self,
        ring: &Ring<S>,
        max: usize,
        writer_dead: &mut dyn FnMut() -> bool,
        on_slot: impl FnMut(Slot) -> Result<(), E>,
    ) -> Result<ConsumeStats, E> {
        let (position, stats, failure) = self.scan(ring, max, writer_dead, on_slot);
        self.advance_head(ring, position);
        match failure {
            Some(error) => Err(error),
            None => Ok(stats),
        }
    }

    /// Reads up to `max` records and hands them to `on_batch` all at once; only if it
    /// succeeds are they consumed (one CAS). Nothing is consumed that the handler did not
    /// accept, so a handler that writes the batch out loses nothing if it fails.
    ///
    /// ```
    /// use ringlat_ring::{Consumer, HeapStorage, Ring};
    /// use ringlat_format::Record;
    /// let ring = Ring::new(HeapStorage::new(4)).unwrap();
    /// ring.push(0, 0, &Record::new(1, 0, 0, 0)).unwrap();
    /// let mut consumer = Consumer::attach(&ring);
    /// let refused = consumer.try_consume_batch(&ring, 8, &mut || false, |_| Err("disk full"));
    /// assert_eq!(refused, Err("disk full"));
    /// assert_eq!(ring.positions(), (0, 1)); // still there
    /// let taken = consumer.try_consume_batch(&ring, 8, &mut || false, |_| Ok::<_, ()>(()));
    /// assert_eq!(taken.unwrap().taken, 1);
    /// assert_eq!(ring.positions(), (1, 1));
    /// ```
    pub fn try_consume_batch<S: Storage, E>(
        &mut self,
        ring: &Ring<S>,
        max: usize,
        writer_dead: &mut dyn FnMut() -> bool,
        on_batch: impl FnOnce(&[Slot]) -> Result<(), E>,
    ) -> Result<ConsumeStats, E> {
        let mut batch = Vec::new();
        let (position, stats, _) = self.scan(ring, max, writer_dead, |slot| {
            batch.push(slot);
            Ok::<(), core::convert::Infallible>(())
        });
        on_batch(&batch)?;
        self.advance_head(ring, position);
        Ok(stats)
    }

    /// Walks from head over committed slots (and abandoned ones), handing each to `on_slot`;
    /// returns where it stopped, the stats, and the handler's failure if any.
    fn scan<S: Storage, E>(
        &self,
        ring: &Ring<S>,
        max: usize,
        writer_dead: &mut dyn FnMut() -> bool,
        mut on_slot: impl FnMut(Slot) -> Result<(), E>,
    ) -> (u32, ConsumeStats, Option<E>) {
        let (_, tail) = ring.positions();
        let mut stats = ConsumeStats::default();
        let mut position = self.head;
        while position != tail && stats.taken + stats.abandoned < max {
            let slot = match ring.read_committed(position) {
                Some(slot) => Some(slot),
                None if writer_dead() => ring.read_committed(position),
                None => {
                    stats.blocked = true;
                    break;
                }
            };
            match slot {
                Some(slot) => {
                    if let Err(error) = on_slot(slot) {
                        return (position, stats, Some(error));
                    }
                    stats.taken += 1;
                }
                None => stats.abandoned += 1,
            }
            position = position.wrapping_add(1);
        }
        (position, stats, None)
    }

    fn advance_head<S: Storage>(&mut self, ring: &Ring<S>, new_head: u32) {
        if new_head == self.head {
            return;
        }
        let word = ring.storage().ring_word();
        // Relaxed: only a guess for the CAS, which re-reads the word.
        let mut current = word.load(Ordering::Relaxed);
        loop {
            let (_, tail) = unpack_positions(current);
            // Success Release: pairs with the producers' Acquire reserving CAS (and the single
            // producer's Acquire refresh), so our reads of the freed slots happen before they
            // are overwritten.
            match word.compare_exchange(
                current,
                pack_positions(new_head, tail),
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(seen) => current = seen,
            }
        }
        self.head = new_head;
    }
}
