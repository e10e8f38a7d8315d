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

    /// Like [`Consumer::consume`], but the callback may fail: the slot it failed on and every
    /// later one stay in the ring (nothing is consumed that was not handled), the slots before
    /// it are consumed, and the error is returned.
    pub fn try_consume<S: Storage, E>(
        &mut self,
        ring: &Ring<S>,
        max: usize,
        writer_dead: &mut dyn FnMut() -> bool,
        mut on_slot: impl FnMut(Slot) -> Result<(), E>,
    ) -> Result<ConsumeStats, E> {
        let (_, tail) = ring.positions();
        let mut stats = ConsumeStats::default();
        let mut position = self.head;
        let mut failure = None;
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
                        failure = Some(error);
                        break;
                    }
                    stats.taken += 1;
                }
                None => stats.abandoned += 1,
            }
            position = position.wrapping_add(1);
        }
        self.advance_head(ring, position);
        match failure {
            Some(error) => Err(error),
            None => Ok(stats),
        }
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
