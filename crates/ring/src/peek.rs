use crate::ring::{Missing, Ring, Slot, Validated, classify_missing};
use crate::storage::Storage;

/// What a [`Peeker`] does at a slot that is reserved but not committed yet.
///
/// ```
/// let mode = ringlat_ring::InFlight::Wait;
/// assert_ne!(mode, ringlat_ring::InFlight::Skip);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InFlight {
    /// Stop there and resume from it next time (follow mode: nothing is missed).
    Wait,
    /// Count it and go on (a one-shot snapshot).
    Skip,
}

/// What one [`Peeker::peek`] call saw.
///
/// ```
/// let stats = ringlat_ring::PeekStats::default();
/// assert!(!stats.waiting);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeekStats {
    /// Records returned.
    pub returned: u64,
    /// Positions whose record this peeker will never see: consumed or overwritten before it
    /// could read them, or given up (the slot says so: a producer gave the position up, or
    /// a consumer unblocked a stuck producer).
    pub missed: u64,
    /// Of `missed`, the positions the slot says were given up (skipped or abandoned).
    pub given_up: u64,
    /// Slots found unfinished while the writer is dead or has closed the file: never coming.
    pub abandoned: u64,
    /// In-flight slots passed over ([`InFlight::Skip`]).
    pub in_flight: u64,
    /// True when the call stopped at an in-flight slot ([`InFlight::Wait`]).
    pub waiting: bool,
}

/// A non-destructive reader: returns committed records without moving head, validating every
/// slot it reads (stamp, bytes, stamp again) so that it never returns a torn record or one
/// from another lap.
///
/// ```
/// use ringlat_ring::{HeapStorage, InFlight, Peeker, Ring};
/// use ringlat_format::Record;
/// let ring = Ring::new(HeapStorage::new(4)).unwrap();
/// let mut peeker = Peeker::at_head(&ring);
/// ring.push(0, 0, &Record::new(1, 0, 0, 0)).unwrap();
/// let mut ids = Vec::new();
/// peeker.peek(&ring, 10, InFlight::Wait, &mut || false, |s| ids.push(s.record.trace_id()));
/// ring.push(0, 0, &Record::new(2, 0, 0, 0)).unwrap();
/// peeker.peek(&ring, 10, InFlight::Wait, &mut || false, |s| ids.push(s.record.trace_id()));
/// assert_eq!(ids, [1, 2]);
/// ```
#[derive(Debug, Clone)]
pub struct Peeker {
    next: u32,
}

impl Peeker {
    /// Starts at the oldest record still in the ring.
    pub fn at_head<S: Storage>(ring: &Ring<S>) -> Self {
        Peeker {
            next: ring.positions().0,
        }
    }

    /// Starts after the newest record (only what comes next).
    pub fn at_tail<S: Storage>(ring: &Ring<S>) -> Self {
        Peeker {
            next: ring.positions().1,
        }
    }

    /// Starts at `position`: for one of several peekers that read parts of a snapshot on
    /// several threads (the part that starts there; `peek`'s `max` bounds where it ends).
    /// A position no longer between head and tail when [`peek`](Self::peek) runs is treated
    /// as at `at_head` (and what was consumed counted missed).
    ///
    /// ```
    /// use ringlat_ring::{HeapStorage, InFlight, Peeker, Ring};
    /// use ringlat_format::Record;
    /// let ring = Ring::new(HeapStorage::new(8)).unwrap();
    /// for id in 0..6 { ring.push(0, 0, &Record::new(id, 0, 0, 0)).unwrap(); }
    /// let mut ids = Vec::new();
    /// Peeker::at(3).peek(&ring, 2, InFlight::Skip, &mut || false, |s| ids.push(s.record.trace_id()));
    /// assert_eq!(ids, [3, 4]);
    /// ```
    pub fn at(position: u32) -> Self {
        Peeker { next: position }
    }

    /// The position of the next record this peeker will look at.
    pub fn position(&self) -> u32 {
        self.next
    }

    /// Reads up to `max` slots from the current position towards tail.
    ///
    /// `writer_dead` is asked at an unfinished slot: when the producers are gone (the writer
    /// died, or closed the file: nothing is in flight after a clean close) the slot is
    /// counted as abandoned instead of waited for.
    pub fn peek<S: Storage>(
        &mut self,
        ring: &Ring<S>,
        max: u64,
        in_flight: InFlight,
        writer_dead: &mut dyn FnMut() -> bool,
        mut on_slot: impl FnMut(Slot),
    ) -> PeekStats {
        let mut stats = PeekStats::default();
        let (head, tail) = ring.positions();
        let behind_head = head.wrapping_sub(self.next);
        let before_tail = tail.wrapping_sub(self.next);
        if before_tail > tail.wrapping_sub(head) {
            // `next` is not in head..=tail: the consumer took records we had not seen (or the
            // position is nonsense, e.g. the file was re-created; then nothing is counted).
            if behind_head < 1 << 31 {
                stats.missed += u64::from(behind_head);
            }
            self.next = head;
        }
        let mut looked = 0;
        while self.next != tail && looked < max {
            looked += 1;
            match ring.read_validated(self.next) {
                Validated::Ok(slot) => {
                    on_slot(slot);
                    stats.returned += 1;
                }
                Validated::Overwritten => stats.missed += 1,
                Validated::NotCommitted(word) => match classify_missing(word, self.next) {
                    Missing::GivenUp => {
                        stats.missed += 1;
                        stats.given_up += 1;
                    }
                    Missing::Overwritten => stats.missed += 1,
                    Missing::InFlight if writer_dead() => match ring.read_validated(self.next) {
                        // Committed between our two looks, just before the writer went.
                        Validated::Ok(slot) => {
                            on_slot(slot);
                            stats.returned += 1;
                        }
                        _ => stats.abandoned += 1,
                    },
                    Missing::InFlight if in_flight == InFlight::Skip => stats.in_flight += 1,
                    Missing::InFlight => {
                        stats.waiting = true;
                        break;
                    }
                },
            }
            self.next = self.next.wrapping_add(1);
        }
        stats
    }
}
