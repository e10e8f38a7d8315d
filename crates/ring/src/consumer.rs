use crate::ring::{Ring, RingError, Slot};
use crate::storage::Storage;
use crate::sync::{AtomicU64, Ordering};
use core::convert::Infallible;
use core::time::Duration;
use ringlat_format::{Lap, SlotMeta, SlotState, lap_of, pack_positions, unpack_positions};
use std::time::Instant;

/// How long a consumer waits at a reserved but unfinished slot before it unblocks it, unless
/// told otherwise ([`Consumer::set_unblock_after`]).
pub const DEFAULT_UNBLOCK_AFTER: Duration = Duration::from_secs(1);

/// What one [`Consumer::consume`] call did.
///
/// Every position the consumer passed is either `taken` or `abandoned`.
///
/// ```
/// let stats = ringlat_ring::ConsumeStats::default();
/// assert_eq!(stats.taken + stats.abandoned, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsumeStats {
    /// Records handed to the callback and consumed.
    pub taken: usize,
    /// Positions passed without a record: their producer died or stayed stuck past the
    /// unblock timeout (this consumer unblocked them), or gave them up itself.
    pub abandoned: usize,
    /// Of `abandoned`, the positions this call unblocked (marked abandoned or skipped).
    pub unblocked: usize,
    /// True when the call stopped at a slot a live producer has reserved but not committed.
    pub blocked: bool,
}

/// The one consumer of a ring: takes committed records in position order and gives their
/// slots back to the producers by advancing head, one CAS per batch.
///
/// A position a producer reserved but has not committed stops the consumer, for at most the
/// unblock timeout ([`DEFAULT_UNBLOCK_AFTER`], or [`Consumer::set_unblock_after`]), or not at
/// all when `writer_dead` says the producers are gone. Then the slot is unblocked: marked
/// abandoned by a CAS on its stamp (the producer's commit is a CAS too, so exactly one of
/// them wins), counted, and passed over (docs/FORMAT.md, "Unblocking a stuck slot").
///
/// ```
/// use ringlat_ring::{Consumer, HeapStorage, Ring};
/// use ringlat_format::Record;
/// let ring = Ring::new(HeapStorage::new(8)).unwrap();
/// for id in 0..5 {
///     ring.push(0, 0, &Record::new(id, 0, 0, 0)).unwrap();
/// }
/// let mut consumer = Consumer::attach(&ring).unwrap();
/// let mut ids = Vec::new();
/// let stats = consumer.consume(&ring, 3, &mut || false, |slot| ids.push(slot.record.trace_id()));
/// assert_eq!((stats.taken, ids), (3, vec![0, 1, 2]));
/// assert_eq!(ring.positions(), (3, 5));
/// ```
#[derive(Debug)]
pub struct Consumer {
    head: u32,
    unblock_after: Option<Duration>,
    /// The position this consumer stopped at, and since when (for the unblock timeout).
    waiting: Option<(u32, Instant)>,
    /// Abandoned positions passed by a call whose handler failed, reported by the next call.
    pending_abandoned: usize,
}

/// How the consumer may resolve an unfinished position now.
enum Unblock {
    /// Not yet: stop here.
    No,
    /// The CAS that gives the position up, from the stamp seen to this one.
    To(u64),
}

impl Consumer {
    /// Starts consuming at the ring's current head. Refuses an overwrite-mode ring, whose
    /// producers move head themselves.
    pub fn attach<S: Storage>(ring: &Ring<S>) -> Result<Self, RingError> {
        if ring.overwrite_mode() {
            return Err(RingError::OverwriteRing);
        }
        Ok(Consumer {
            head: ring.positions().0,
            unblock_after: Some(DEFAULT_UNBLOCK_AFTER),
            waiting: None,
            pending_abandoned: 0,
        })
    }

    /// How long a reserved but unfinished slot may stop this consumer before it is unblocked;
    /// `None`: only when `writer_dead` says so. `Some(Duration::ZERO)` unblocks at once.
    ///
    /// ```
    /// # use ringlat_ring::{Consumer, HeapStorage, Ring};
    /// # let ring = Ring::new(HeapStorage::new(2)).unwrap();
    /// let mut consumer = Consumer::attach(&ring).unwrap();
    /// consumer.set_unblock_after(Some(std::time::Duration::from_millis(250)));
    /// ```
    pub fn set_unblock_after(&mut self, after: Option<Duration>) {
        self.unblock_after = after;
    }

    /// The position of the next record this consumer will take.
    pub fn position(&self) -> u32 {
        self.head
    }

    /// The position this consumer is stopped at (reserved, not committed) and for how long
    /// it has been, if it is.
    pub fn waiting(&self) -> Option<(u32, Duration)> {
        self.waiting
            .filter(|(position, _)| *position == self.head)
            .map(|(position, since)| (position, since.elapsed()))
    }

    /// Takes up to `max` committed records, in order, then advances head past them.
    ///
    /// Stops early at a slot that is reserved but not committed, until the unblock timeout
    /// passed or `writer_dead` says the producers are gone; then the slot is unblocked,
    /// skipped and counted as abandoned.
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
    /// handler fails stays in the ring, as does everything after it; the abandoned positions
    /// passed before it are reported by the next successful call.
    pub fn try_consume<S: Storage, E>(
        &mut self,
        ring: &Ring<S>,
        max: usize,
        writer_dead: &mut dyn FnMut() -> bool,
        on_slot: impl FnMut(Slot) -> Result<(), E>,
    ) -> Result<ConsumeStats, E> {
        let (position, mut stats, failure) = self.scan(ring, max, writer_dead, on_slot);
        self.advance_head(ring, position);
        match failure {
            Some(error) => {
                self.pending_abandoned += stats.abandoned;
                Err(error)
            }
            None => {
                stats.abandoned += core::mem::take(&mut self.pending_abandoned);
                Ok(stats)
            }
        }
    }

    /// Reads up to `max` records and hands them to `on_batch` all at once; only if it
    /// succeeds are they consumed (one CAS). Nothing is consumed that the handler did not
    /// accept, so a handler that writes the batch out loses nothing if it fails. (Slots the
    /// call unblocked stay marked; the next call passes and counts them.)
    ///
    /// ```
    /// use ringlat_ring::{Consumer, HeapStorage, Ring};
    /// use ringlat_format::Record;
    /// let ring = Ring::new(HeapStorage::new(4)).unwrap();
    /// ring.push(0, 0, &Record::new(1, 0, 0, 0)).unwrap();
    /// let mut consumer = Consumer::attach(&ring).unwrap();
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
        let (position, mut stats, _) = self.scan(ring, max, writer_dead, |slot| {
            batch.push(slot);
            Ok::<(), Infallible>(())
        });
        on_batch(&batch)?;
        self.advance_head(ring, position);
        stats.abandoned += core::mem::take(&mut self.pending_abandoned);
        Ok(stats)
    }

    /// Walks from head over committed slots (and given-up ones), handing each record to
    /// `on_slot`; returns where it stopped, the stats, and the handler's failure if any.
    fn scan<S: Storage, E>(
        &mut self,
        ring: &Ring<S>,
        max: usize,
        writer_dead: &mut dyn FnMut() -> bool,
        mut on_slot: impl FnMut(Slot) -> Result<(), E>,
    ) -> (u32, ConsumeStats, Option<E>) {
        let (_, tail) = ring.positions();
        let mut stats = ConsumeStats::default();
        let mut position = self.head;
        'positions: while position != tail && stats.taken + stats.abandoned < max {
            let meta = ring.meta_of(position);
            loop {
                let word = match ring.read_for_consumer(position) {
                    Ok(slot) => {
                        if let Err(error) = on_slot(slot) {
                            return (position, stats, Some(error));
                        }
                        stats.taken += 1;
                        break;
                    }
                    Err(word) => word,
                };
                let seen = SlotMeta::from_word(word);
                let unblock = match (
                    SlotMeta::state_of_word(word),
                    lap_of(seen.position, position),
                ) {
                    // Given up already (by its producer, or by us in a batch not accepted).
                    (Some(state), Lap::Same) if state.is_given_up() => {
                        stats.abandoned += 1;
                        break;
                    }
                    // Held by a producer stuck since an earlier lap: this position's producer
                    // can only give it up, so we do it for it, at once.
                    (Some(SlotState::Abandoned), Lap::Earlier) => {
                        Unblock::To(SlotMeta::abandoned(position).to_word())
                    }
                    // Reserved and being written (or in a slot an earlier producer still
                    // writes): unblocking keeps the slot held, so the late commit fails.
                    (Some(SlotState::Writing), Lap::Same | Lap::Earlier) => {
                        self.unblock_if_due(position, writer_dead, SlotMeta::abandoned(position))
                    }
                    // Reserved, slot never used: the producer has not claimed it yet.
                    (Some(SlotState::Empty), _) => {
                        self.unblock_if_due(position, writer_dead, SlotMeta::skipped(position))
                    }
                    // A later lap in a slot we have not passed: cannot happen in a ring whose
                    // producers wait for head (a damaged stamp); the position has no record.
                    (Some(_), Lap::Later) => {
                        stats.abandoned += 1;
                        break;
                    }
                    // Reserved, slot not claimed yet (still free from an earlier lap), or a
                    // damaged stamp: nobody holds the slot, so it becomes free and skipped;
                    // the producer's claim will see that its position was given up.
                    _ => self.unblock_if_due(position, writer_dead, SlotMeta::skipped(position)),
                };
                match unblock {
                    Unblock::No => {
                        stats.blocked = true;
                        break 'positions;
                    }
                    Unblock::To(next) => {
                        if give_up(meta, word, next) {
                            stats.abandoned += 1;
                            stats.unblocked += 1;
                            break;
                        }
                        // The stamp moved (the producer claimed or committed meanwhile):
                        // look again.
                    }
                }
            }
            position = position.wrapping_add(1);
        }
        (position, stats, None)
    }

    /// Whether the unfinished `position` may be unblocked now: its producers are dead, or the
    /// consumer has been stopped there for the unblock timeout.
    fn unblock_if_due(
        &mut self,
        position: u32,
        writer_dead: &mut dyn FnMut() -> bool,
        to: SlotMeta,
    ) -> Unblock {
        let due = match self.unblock_after {
            Some(after) if after.is_zero() => true,
            Some(after) => match self.waiting {
                Some((at, since)) if at == position => since.elapsed() >= after,
                _ => {
                    self.waiting = Some((position, Instant::now()));
                    false
                }
            },
            None => false,
        };
        if due || writer_dead() {
            Unblock::To(to.to_word())
        } else {
            Unblock::No
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
            let (head, tail) = unpack_positions(current);
            if head != self.head {
                // Someone else moves head (an overwrite-mode producer, or a second consumer):
                // never move it backwards; start again from where it is.
                self.head = head;
                return;
            }
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

/// The unblocking CAS: from the stamp seen to the given-up stamp. Fails if the stamp moved
/// (the producer claimed, committed, or gave the position up first).
fn give_up(meta: &AtomicU64, seen: u64, to: u64) -> bool {
    // Success Relaxed: the given-up stamp publishes no data; it only has to win against the
    // producer's claim or commit CAS, which the single modification order of the stamp
    // decides. Failure Relaxed: the caller re-reads with Acquire.
    meta.compare_exchange(seen, to, Ordering::Relaxed, Ordering::Relaxed)
        .is_ok()
}
