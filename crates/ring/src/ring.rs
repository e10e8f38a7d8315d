use crate::producer::Full;
use crate::storage::Storage;
use crate::sync::{Ordering, fence};
use ringlat_format::{Record, SlotMeta, SlotState, pack_positions, unpack_positions};
use thiserror::Error;

/// Why a storage cannot carry a ring.
///
/// ```
/// use ringlat_ring::{HeapStorage, Ring, RingError};
/// assert_eq!(Ring::new(HeapStorage::new(3)).unwrap_err(), RingError::BadCapacity(3));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RingError {
    /// Capacity must be a power of two between 2 and 2^31.
    #[error("ring capacity {0} is not a power of two between 2 and 2^31")]
    BadCapacity(u32),
}

/// One record read from the ring, with the slot metadata it was committed with.
///
/// ```
/// use ringlat_ring::{HeapStorage, Peeker, Ring, InFlight};
/// use ringlat_format::Record;
/// let ring = Ring::new(HeapStorage::new(2)).unwrap();
/// ring.push(4, 0, &Record::new(1, 2, 3, 4)).unwrap();
/// let mut slots = Vec::new();
/// Peeker::at_head(&ring).peek(&ring, 8, InFlight::Skip, &mut || false, |slot| slots.push(slot));
/// assert_eq!((slots[0].position, slots[0].meta.kind, slots[0].record.delta()), (0, 4, 4));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// The ring position of the record.
    pub position: u32,
    /// Its metadata (kind, sampling class).
    pub meta: SlotMeta,
    /// The 21-byte record.
    pub record: Record,
}

/// The lock-free ring over a storage `S`.
///
/// Producers call [`Ring::push`] (any number, concurrently) or go through a
/// [`crate::SingleProducer`]; one [`crate::Consumer`] drains; any number of
/// [`crate::Peeker`]s read without consuming.
///
/// ```
/// use ringlat_ring::{HeapStorage, Ring};
/// use ringlat_format::Record;
/// let ring = Ring::new(HeapStorage::new(2)).unwrap();
/// ring.set_start_position(u32::MAX);
/// assert!(ring.push(0, 0, &Record::new(1, 0, 0, 0)).is_ok());
/// assert!(ring.push(0, 0, &Record::new(2, 0, 0, 0)).is_ok());
/// assert!(ring.push(0, 0, &Record::new(3, 0, 0, 0)).is_err()); // full
/// assert_eq!(ring.positions(), (u32::MAX, 1));                  // tail wrapped
/// ```
#[derive(Debug)]
pub struct Ring<S> {
    storage: S,
    mask: u32,
}

impl<S: Storage> Ring<S> {
    /// Wraps a storage; its capacity must be a power of two between 2 and 2^31 (so that the
    /// distance between two 32-bit positions is never ambiguous).
    pub fn new(storage: S) -> Result<Self, RingError> {
        let capacity = storage.capacity();
        if !capacity.is_power_of_two() || !(2..=1 << 31).contains(&capacity) {
            return Err(RingError::BadCapacity(capacity));
        }
        Ok(Ring {
            storage,
            mask: capacity - 1,
        })
    }

    /// The storage.
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// Number of slots.
    pub fn capacity(&self) -> u32 {
        self.mask + 1
    }

    pub(crate) fn index(&self, position: u32) -> u32 {
        position & self.mask
    }

    /// Places head and tail at `position`. Only for a ring nobody uses yet (file creation,
    /// tests that start near the 2^32 wrap).
    pub fn set_start_position(&self, position: u32) {
        // Relaxed: the ring is not shared yet; publication of the whole file is the caller's
        // version store (Release).
        self.storage
            .ring_word()
            .store(pack_positions(position, position), Ordering::Relaxed);
    }

    /// `(head, tail)` now. `Acquire`: pairs with the single producer's `Release` publication
    /// of tail and the consumer's `Release` advance of head.
    pub fn positions(&self) -> (u32, u32) {
        unpack_positions(self.storage.ring_word().load(Ordering::Acquire))
    }

    /// Reserves the next position for a producer that may race with others, or `Full`.
    ///
    /// One `compare_exchange` in the common case; retries only when another producer (or the
    /// consumer) changed the word in between.
    #[inline]
    pub fn reserve(&self) -> Result<u32, Full> {
        self.reserve_with_fill().map(|(position, _)| position)
    }

    /// [`Ring::reserve`], also returning the fill (tail - head) right after the reservation,
    /// which the caller's circuit breaker compares with its low-water mark.
    #[inline]
    pub fn reserve_with_fill(&self) -> Result<(u32, u32), Full> {
        let word = self.storage.ring_word();
        // Relaxed: only a guess for the CAS below, which re-reads the word atomically.
        let mut current = word.load(Ordering::Relaxed);
        loop {
            let (head, tail) = unpack_positions(current);
            let fill = tail.wrapping_sub(head);
            if fill >= self.capacity() {
                return Err(Full);
            }
            let next = pack_positions(head, tail.wrapping_add(1));
            // Success Acquire: pairs with the consumer's Release CAS that advanced head, so
            // its reads of the slot we are about to overwrite happen before our writes.
            match word.compare_exchange(current, next, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return Ok((tail, fill + 1)),
                Err(seen) => current = seen,
            }
        }
    }

    /// Multi-producer push: reserve a position, write the record, commit. Returns the position.
    ///
    /// Never blocks: when the ring is full it returns `Full` at once.
    #[inline]
    pub fn push(&self, kind: u8, class: u8, record: &Record) -> Result<u32, Full> {
        let position = self.reserve()?;
        self.write_slot(position, kind, class, record);
        Ok(position)
    }

    /// [`Ring::push`], returning `(position, fill after the reservation)`.
    #[inline]
    pub fn push_with_fill(&self, kind: u8, class: u8, record: &Record) -> Result<(u32, u32), Full> {
        let (position, fill) = self.reserve_with_fill()?;
        self.write_slot(position, kind, class, record);
        Ok((position, fill))
    }

    /// Overwrite-mode push (flight recorder): never full. When the ring is full, head and tail
    /// advance together in the one CAS of the packed word, dropping the oldest record.
    ///
    /// Because the slot may still belong to a producer of an earlier lap, the slot is claimed
    /// by a CAS on its stamp; if it is being written by another producer (one that stalled for
    /// a whole lap) or already holds a later lap, the record is given up, never torn.
    ///
    /// ```
    /// use ringlat_ring::{HeapStorage, Ring, Overwritten};
    /// use ringlat_format::Record;
    /// let ring = Ring::new(HeapStorage::new(2)).unwrap();
    /// for trace in 1..=3 {
    ///     ring.push_overwriting(0, 0, &Record::new(trace, 0, 0, 0)).unwrap();
    /// }
    /// assert_eq!(ring.positions(), (1, 3)); // record 1 was overwritten by record 3
    /// ```
    #[inline]
    pub fn push_overwriting(
        &self,
        kind: u8,
        class: u8,
        record: &Record,
    ) -> Result<Overwritten, SlotBusy> {
        let (position, overwrote) = self.reserve_overwriting();
        let index = self.index(position);
        let meta = self.storage.meta(index);
        // Relaxed: a guess for the CAS below.
        let mut current = meta.load(Ordering::Relaxed);
        loop {
            let seen = SlotMeta::from_word(current);
            let later_lap = seen.state() != Some(SlotState::Empty)
                && (1..=1u32 << 31).contains(&seen.position.wrapping_sub(position));
            if seen.state() == Some(SlotState::Writing) || later_lap {
                return Err(SlotBusy {
                    position,
                    overwrote,
                });
            }
            // Success Acquire: pairs with the Release commit store of the slot's previous
            // writer, so its record stores come before ours in every byte's modification order
            // (the last writer's bytes are the ones that stay). Then the Release fence orders
            // our writing stamp before our record stores, as in `write_slot` (seqlock pair).
            match meta.compare_exchange(
                current,
                SlotMeta::writing(position, kind, class).to_word(),
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => current = now,
            }
        }
        fence(Ordering::Release);
        self.storage.store_record(index, record);
        // Release: pairs with the Acquire stamp load of peekers (as in `write_slot`).
        meta.store(
            SlotMeta::committed(position, kind, class).to_word(),
            Ordering::Release,
        );
        Ok(Overwritten {
            position,
            overwrote,
        })
    }

    /// Reserves the next position, advancing head too when the ring is full.
    #[inline]
    fn reserve_overwriting(&self) -> (u32, bool) {
        let word = self.storage.ring_word();
        // Relaxed: only a guess for the CAS below.
        let mut current = word.load(Ordering::Relaxed);
        loop {
            let (head, tail) = unpack_positions(current);
            let full = tail.wrapping_sub(head) >= self.capacity();
            let head = if full { head.wrapping_add(1) } else { head };
            let next = pack_positions(head, tail.wrapping_add(1));
            // Acquire on success: as in `reserve_with_fill` (no consumer is expected in this
            // mode, but one that drains an overwrite ring must still not race our writes).
            match word.compare_exchange(current, next, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return (tail, full),
                Err(seen) => current = seen,
            }
        }
    }

    /// Writes and commits the record of a reserved `position`.
    #[inline]
    pub fn write_slot(&self, position: u32, kind: u8, class: u8, record: &Record) {
        let index = self.index(position);
        let meta = self.storage.meta(index);
        // Relaxed store then Release fence: the fence orders this stamp before the record
        // stores below; pairs with the peeker's Acquire fence before its re-check.
        meta.store(
            SlotMeta::writing(position, kind, class).to_word(),
            Ordering::Relaxed,
        );
        fence(Ordering::Release);
        self.storage.store_record(index, record);
        // Release: pairs with the Acquire stamp load of consumers and peekers, making the
        // record bytes visible to whoever sees this stamp.
        meta.store(
            SlotMeta::committed(position, kind, class).to_word(),
            Ordering::Release,
        );
    }

    /// Reads the slot of `position` if it is committed for exactly that position.
    ///
    /// The caller must know that no producer can be rewriting the slot (it lies between head
    /// and tail and the caller is the consumer); peekers use [`Ring::read_validated`].
    pub(crate) fn read_committed(&self, position: u32) -> Option<Slot> {
        let index = self.index(position);
        // Acquire: pairs with the producer's Release commit store in `write_slot`.
        let word = self.storage.meta(index).load(Ordering::Acquire);
        if !SlotMeta::word_is_committed_at(word, position) {
            return None;
        }
        Some(Slot {
            position,
            meta: SlotMeta::from_word(word),
            record: self.storage.load_record(index),
        })
    }

    /// Reads the slot of `position` as a seqlock reader: stamp, bytes, fence, stamp again.
    pub(crate) fn read_validated(&self, position: u32) -> Validated {
        let index = self.index(position);
        let meta = self.storage.meta(index);
        // Acquire: pairs with the producer's Release commit store in `write_slot`.
        let before = meta.load(Ordering::Acquire);
        if !SlotMeta::word_is_committed_at(before, position) {
            return Validated::NotCommitted(SlotMeta::from_word(before));
        }
        let record = self.storage.load_record(index);
        // Acquire fence: pairs with the producer's Release fence after its writing stamp; if
        // any byte above came from a later lap, the load below sees that lap's stamp.
        fence(Ordering::Acquire);
        // Relaxed: ordered by the fence above.
        let after = meta.load(Ordering::Relaxed);
        if after != before {
            return Validated::Overwritten;
        }
        Validated::Ok(Slot {
            position,
            meta: SlotMeta::from_word(before),
            record,
        })
    }
}

/// A record written by [`Ring::push_overwriting`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overwritten {
    /// Its position.
    pub position: u32,
    /// Whether the reservation pushed the oldest record out of the ring.
    pub overwrote: bool,
}

/// [`Ring::push_overwriting`] gave the record up: its slot was still being written by a
/// producer of an earlier lap, or already held a later lap. The position stays unfilled;
/// readers count it as missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotBusy {
    /// The position that was reserved and given up.
    pub position: u32,
    /// Whether the reservation pushed the oldest record out of the ring.
    pub overwrote: bool,
}

/// What a seqlock read of one slot found.
pub(crate) enum Validated {
    Ok(Slot),
    /// The stamp is not the committed stamp of the position: empty, in flight, or another lap.
    NotCommitted(SlotMeta),
    /// The stamp changed while the record was read: a later lap overwrote it.
    Overwritten,
}
