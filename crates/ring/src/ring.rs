use crate::producer::Full;
use crate::storage::{Fields, GROUP, Storage};
use crate::sync::{AtomicU64, Ordering, fence};
use ringlat_format::{Lap, Record, SlotMeta, SlotState, lap_of, pack_positions, unpack_positions};
use thiserror::Error;

/// The largest capacity a ring accepts: 2^30 slots. With 2^31 a full ring's `tail - head`
/// would be 2^31, which the 32-bit lap arithmetic cannot tell from "behind".
pub const MAX_CAPACITY: u32 = 1 << 30;

/// Why a storage cannot carry a ring, or a ring refuses a role.
///
/// ```
/// use ringlat_ring::{HeapStorage, Ring, RingError};
/// assert_eq!(Ring::new(HeapStorage::new(3)).unwrap_err(), RingError::BadCapacity(3));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RingError {
    /// Capacity must be a power of two between 2 and 2^30.
    #[error("ring capacity {0} is not a power of two between 2 and 2^30")]
    BadCapacity(u32),
    /// A consumer was attached to an overwrite-mode ring, whose producers move head
    /// themselves: a consumer would move it backwards. Read such rings with a `Peeker`.
    #[error("an overwrite-mode ring has no consumer (its producers move head); peek instead")]
    OverwriteRing,
}

/// Why a push wrote nothing. Every variant is a dropped record for the caller's counters.
///
/// ```
/// use ringlat_ring::{HeapStorage, PushError, Ring};
/// use ringlat_format::Record;
/// let ring = Ring::new(HeapStorage::new(2)).unwrap();
/// let record = Record::new(0, 0, 0, 0);
/// ring.push(0, 0, &record).unwrap();
/// ring.push(0, 0, &record).unwrap();
/// assert_eq!(ring.push(0, 0, &record), Err(PushError::Full));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum PushError {
    /// The ring had no free slot; nothing was reserved.
    #[error("the ring is full")]
    Full,
    /// The position was reserved but its record given up: the consumer unblocked the slot
    /// before the commit (the producer was stuck longer than the unblock timeout), or the
    /// slot was still held by a producer stuck since an earlier lap.
    #[error("position {position} was given up before its commit")]
    Lost {
        /// The position that has no record.
        position: u32,
    },
    /// A [`crate::SingleProducer`] found that something else moved the tail (two single
    /// producers, e.g. after `fork`, or a multi-producer push on its ring). It refuses every
    /// later push instead of spinning.
    #[error("another producer moved the tail of this single-producer ring")]
    NotSingle,
}

impl From<Full> for PushError {
    fn from(_: Full) -> Self {
        PushError::Full
    }
}

/// Where a producer is inside a push, for [`Ring::push_hooked`] (tests that park a producer
/// between reserving and committing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushStage {
    /// The position is reserved; the slot is not claimed yet.
    Reserved,
    /// The slot is claimed and the record bytes are stored; the commit comes next.
    Written,
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
    overwrite: bool,
}

impl<S: Storage> Ring<S> {
    /// Wraps a storage; its capacity must be a power of two between 2 and 2^30 (so that the
    /// distance between two 32-bit positions is never ambiguous).
    pub fn new(storage: S) -> Result<Self, RingError> {
        let capacity = storage.capacity();
        if !capacity.is_power_of_two() || !(2..=MAX_CAPACITY).contains(&capacity) {
            return Err(RingError::BadCapacity(capacity));
        }
        let overwrite = storage.overwrite_mode();
        Ok(Ring {
            storage,
            mask: capacity - 1,
            overwrite,
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

    /// Whether the storage says this is an overwrite-mode ring (no consumer allowed).
    pub fn overwrite_mode(&self) -> bool {
        self.overwrite
    }

    pub(crate) fn index(&self, position: u32) -> u32 {
        position & self.mask
    }

    pub(crate) fn meta_of(&self, position: u32) -> &AtomicU64 {
        self.storage.meta(self.index(position))
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

    /// Multi-producer push: reserve a position, claim its slot, write the record, commit.
    /// Returns the position.
    ///
    /// Never blocks: when the ring is full it returns [`PushError::Full`] at once; when the
    /// position was given up (see [`PushError::Lost`]) it returns that.
    #[inline]
    pub fn push(&self, kind: u8, class: u8, record: &Record) -> Result<u32, PushError> {
        self.push_with_fill(kind, class, record)
            .map(|(position, _)| position)
    }

    /// [`Ring::push`], returning `(position, fill after the reservation)`.
    #[inline]
    pub fn push_with_fill(
        &self,
        kind: u8,
        class: u8,
        record: &Record,
    ) -> Result<(u32, u32), PushError> {
        self.push_hooked(kind, class, record, |_, _| {})
    }

    /// [`Ring::push_with_fill`] that calls `hook` after the reservation and again between the
    /// record stores and the commit: the test hook that parks a producer there (the same
    /// code as `push`, which passes a hook that does nothing).
    ///
    /// ```
    /// use ringlat_ring::{HeapStorage, PushStage, Ring};
    /// use ringlat_format::Record;
    /// let ring = Ring::new(HeapStorage::new(2)).unwrap();
    /// let mut stages = Vec::new();
    /// ring.push_hooked(0, 0, &Record::new(1, 0, 0, 0), |stage, _| stages.push(stage)).unwrap();
    /// assert_eq!(stages, [PushStage::Reserved, PushStage::Written]);
    /// ```
    #[inline]
    pub fn push_hooked(
        &self,
        kind: u8,
        class: u8,
        record: &Record,
        mut hook: impl FnMut(PushStage, u32),
    ) -> Result<(u32, u32), PushError> {
        let (position, fill) = self.reserve_with_fill()?;
        hook(PushStage::Reserved, position);
        self.claim_write_commit(position, kind, class, record, &mut hook)?;
        Ok((position, fill))
    }

    /// Overwrite-mode push (flight recorder): never full. When the ring is full, head and tail
    /// advance together in the one CAS of the packed word, dropping the oldest record.
    ///
    /// Because the slot may still be held by a producer of an earlier lap (one that stalled
    /// for a whole lap), the slot is claimed by a CAS on its stamp; if it is held, the record
    /// is given up (never torn), and the give-up is written into the slot (abandoned state)
    /// so that readers count the position as missed instead of waiting for it.
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
        self.push_overwriting_hooked(kind, class, record, |_, _| {})
    }

    /// [`Ring::push_overwriting`] with the test hook of [`Ring::push_hooked`].
    #[inline]
    pub fn push_overwriting_hooked(
        &self,
        kind: u8,
        class: u8,
        record: &Record,
        mut hook: impl FnMut(PushStage, u32),
    ) -> Result<Overwritten, SlotBusy> {
        let (position, overwrote) = self.reserve_overwriting();
        hook(PushStage::Reserved, position);
        match self.claim_write_commit(position, kind, class, record, &mut hook) {
            Ok(()) => Ok(Overwritten {
                position,
                overwrote,
            }),
            Err(_) => Err(SlotBusy {
                position,
                overwrote,
            }),
        }
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
            // Acquire on success: as in `reserve_with_fill`.
            match word.compare_exchange(current, next, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return (tail, full),
                Err(seen) => current = seen,
            }
        }
    }

    /// The multi-producer slot protocol for a reserved `position`: claim, store, commit.
    #[inline]
    fn claim_write_commit(
        &self,
        position: u32,
        kind: u8,
        class: u8,
        record: &Record,
        hook: &mut impl FnMut(PushStage, u32),
    ) -> Result<(), PushError> {
        let index = self.index(position);
        let meta = self.storage.meta(index);
        self.claim(meta, position, kind, class)?;
        // Release fence: orders the writing stamp (the claim above) before the record stores
        // below; pairs with the peeker's Acquire fence before its stamp re-check (seqlock).
        fence(Ordering::Release);
        self.storage.store_record(index, record);
        hook(PushStage::Written, position);
        self.commit(meta, position, kind, class)
    }

    /// Claims the slot for `position`: a CAS from a free stamp of an earlier lap to the
    /// writing stamp. A slot still held (writing or abandoned, of an earlier lap) is not
    /// written: the position is given up with a CAS to `abandoned(position)`, the
    /// read-modify-write that confirms the slot really was held (a plain load may be stale).
    /// A slot that already says our position has no record (the consumer unblocked it before
    /// we got here), or that holds a later lap, is left alone.
    #[inline]
    fn claim(&self, meta: &AtomicU64, position: u32, kind: u8, class: u8) -> Result<(), PushError> {
        let writing = SlotMeta::writing(position, kind, class).to_word();
        // Relaxed: a guess for the CAS below, which reads the latest stamp.
        let mut current = meta.load(Ordering::Relaxed);
        loop {
            let seen = SlotMeta::from_word(current);
            let next = match (
                SlotMeta::state_of_word(current),
                lap_of(seen.position, position),
            ) {
                (Some(SlotState::Empty) | None, _) => writing,
                (Some(state), Lap::Earlier) if state.is_free() => writing,
                (Some(SlotState::Writing | SlotState::Abandoned), Lap::Earlier) => {
                    SlotMeta::abandoned(position).to_word()
                }
                _ => return Err(PushError::Lost { position }),
            };
            // Success Acquire: pairs with the Release commit (or release) of the slot's
            // previous holder, so its record stores come before ours in every byte's
            // modification order (the last writer's bytes are the ones that stay). The
            // consumer's reads of the slot are ordered by the reserving CAS (see crate docs).
            match meta.compare_exchange(current, next, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) if next == writing => return Ok(()),
                Ok(_) => return Err(PushError::Lost { position }),
                Err(now) => current = now,
            }
        }
    }

    /// Commits the claimed slot of `position`: a CAS from our writing stamp to the committed
    /// stamp. If it fails, a consumer unblocked the slot (we were stuck past its timeout):
    /// we still hold the slot, so we release it (abandoned → skipped) and report the record
    /// lost. Nobody else writes a held slot, so our record stores, late as they are, tear
    /// nothing.
    #[inline]
    fn commit(
        &self,
        meta: &AtomicU64,
        position: u32,
        kind: u8,
        class: u8,
    ) -> Result<(), PushError> {
        let writing = SlotMeta::writing(position, kind, class).to_word();
        let committed = SlotMeta::committed(position, kind, class).to_word();
        // Success Release: pairs with the Acquire stamp load of consumers and peekers, making
        // the record bytes visible to whoever sees this stamp.
        let Err(mut current) =
            meta.compare_exchange(writing, committed, Ordering::Release, Ordering::Relaxed)
        else {
            return Ok(());
        };
        while SlotMeta::state_of_word(current) == Some(SlotState::Abandoned) {
            let skipped = SlotMeta::skipped(SlotMeta::from_word(current).position).to_word();
            // Release: pairs with the Acquire claim of the slot's next producer, so our late
            // record stores come before its stores (its bytes are the ones that stay).
            match meta.compare_exchange(current, skipped, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => break,
                Err(now) => current = now,
            }
        }
        Err(PushError::Lost { position })
    }

    /// Writes and commits the record of `position` for the single producer, which publishes
    /// tail only afterwards: no consumer or producer can touch this slot meanwhile, so plain
    /// stores do (no claim or commit CAS).
    #[inline]
    pub(crate) fn write_single(&self, position: u32, kind: u8, class: u8, record: &Record) {
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

    /// Reads the slot of `position` as the consumer: the stamp (Acquire), and the record if
    /// the stamp is the committed stamp of exactly that position.
    ///
    /// The caller must know that no producer can be rewriting the slot (it lies between head
    /// and tail and the caller is the consumer); peekers use [`Ring::read_validated`].
    pub(crate) fn read_for_consumer(&self, position: u32) -> Result<Slot, u64> {
        let index = self.index(position);
        // Acquire: pairs with the producer's Release commit CAS (or store, single producer).
        let word = self.storage.meta(index).load(Ordering::Acquire);
        if !SlotMeta::word_is_committed_at(word, position) {
            return Err(word);
        }
        Ok(Slot {
            position,
            meta: SlotMeta::from_word(word),
            record: self.storage.load_record(index),
        })
    }

    /// The committed record of `position`, read as a peeker reads it (stamp, bytes, stamp
    /// again: never torn, never another lap's), or `None` when the slot does not hold it
    /// (in flight, given up, overwritten or never written). For a reader that visits a range
    /// of positions itself, e.g. several threads each reading a part of a ring no producer
    /// writes to any more.
    ///
    /// ```
    /// use ringlat_ring::{HeapStorage, Ring};
    /// use ringlat_format::Record;
    /// let ring = Ring::new(HeapStorage::new(4)).unwrap();
    /// ring.push(0, 0, &Record::new(7, 0, 0, 0)).unwrap();
    /// assert_eq!(ring.read_committed(0).map(|slot| slot.record.trace_id()), Some(7));
    /// assert!(ring.read_committed(1).is_none()); // never written
    /// assert!(ring.read_committed(4).is_none()); // the same slot, a later lap
    /// ```
    #[inline]
    pub fn read_committed(&self, position: u32) -> Option<Slot> {
        match self.read_validated(position) {
            Validated::Ok(slot) => Some(slot),
            _ => None,
        }
    }

    /// [`read_committed`](Self::read_committed) over the `count` positions from `first`
    /// (`count` at most the capacity; more is cut to it), in order, for a ring that no
    /// producer writes to any more: `each(offset, slot)` with the position's distance from
    /// `first`, and the slot if it holds the position's committed record. Each stamp is an
    /// acquire load; the records are read with the storage's cheapest loads
    /// ([`Storage::for_each_unshared`]), with no fence and no second look at the stamp
    /// (nothing can change the bytes); the slots are walked in at most two runs (before and
    /// after the storage's end), not found one by one.
    ///
    /// # Safety
    ///
    /// No producer may be left to write the ring (see [`Storage::load_record_unshared`]).
    ///
    /// ```
    /// use ringlat_ring::{HeapStorage, Ring};
    /// use ringlat_format::Record;
    /// let ring = Ring::new(HeapStorage::new(4)).unwrap();
    /// // Positions 2^32 - 2, 2^32 - 1, 0: slots 2, 3, 0 (past the storage's end, and the
    /// // positions' wrap).
    /// ring.set_start_position(u32::MAX - 1);
    /// for trace_id in 0..3 {
    ///     ring.push(0, 0, &Record::new(trace_id, 0, 0, 0)).unwrap();
    /// }
    /// let mut read = Vec::new();
    /// // SAFETY: no producer is left: this thread pushed every record and stopped.
    /// unsafe {
    ///     ring.for_each_committed_unshared(u32::MAX - 1, 4, |offset, slot| {
    ///         read.push((offset, slot.map(|slot| (slot.position, slot.record.trace_id()))));
    ///     })
    /// };
    /// let positions = [u32::MAX - 1, u32::MAX, 0];
    /// assert_eq!(read[..3], [0, 1, 2].map(|i| (i, Some((positions[i as usize], u64::from(i))))));
    /// assert_eq!(read[3], (3, None), "position 1 holds nothing");
    /// ```
    #[inline(always)]
    pub unsafe fn for_each_committed_unshared(
        &self,
        first: u32,
        count: u32,
        mut each: impl FnMut(u32, Option<Slot>),
    ) {
        for (indices, offset_of_first) in self.runs(first, count) {
            let (run_start, run_first) = (indices.start, first.wrapping_add(offset_of_first));
            // SAFETY: the caller's contract; both runs end at or before the capacity.
            unsafe {
                self.storage
                    .for_each_unshared(indices, |index, word, record| {
                        let offset = index - run_start;
                        let position = run_first.wrapping_add(offset);
                        let slot = SlotMeta::word_is_committed_at(word, position).then(|| Slot {
                            position,
                            meta: SlotMeta::from_word(word),
                            record,
                        });
                        each(offset_of_first + offset, slot);
                    })
            };
        }
    }

    /// [`read_committed`](Self::read_committed) over the `count` positions from `first`
    /// (`count` at most the capacity; more is cut to it), in order, while producers may
    /// write: `each(offset, slot)` with the position's distance from `first`, and the slot
    /// if it holds the position's committed record, else why not (a record read while a
    /// later lap wrote the slot is [`Missing::Overwritten`], never handed out torn).
    ///
    /// The slots are read as a seqlock reader reads them, [`GROUP`] at a time: the group's
    /// stamps, one fence, its records, one fence, its stamps again; a slot is the position's
    /// record if its first stamp is the position's committed stamp and its second the same.
    /// The same guarantee as slot by slot, for two fences a group instead of one a slot (a
    /// fence is no instruction on x86, but no load may move across it). The second look at
    /// the stamps is needed only once head has passed the group (a consumer freed its slots):
    /// before that, no producer can have written them again, and one load of the ring word
    /// stands for the group's eight.
    ///
    /// ```
    /// use ringlat_ring::{HeapStorage, Missing, Ring};
    /// use ringlat_format::Record;
    /// let ring = Ring::new(HeapStorage::new(4)).unwrap();
    /// ring.set_start_position(u32::MAX - 1); // positions wrap past 2^32 at the third
    /// for trace_id in 0..3 {
    ///     ring.push(0, 0, &Record::new(trace_id, 0, 0, 0)).unwrap();
    /// }
    /// let in_flight = ring.reserve().unwrap();
    /// let mut read = Vec::new();
    /// ring.for_each_committed(u32::MAX - 1, 4, |offset, slot| {
    ///     read.push((offset, slot.map(|slot| slot.record.trace_id())));
    /// });
    /// assert_eq!(read, [(0, Ok(0)), (1, Ok(1)), (2, Ok(2)), (3, Err(Missing::InFlight))]);
    /// assert_eq!(in_flight, 1);
    /// ```
    #[inline(always)]
    pub fn for_each_committed(
        &self,
        first: u32,
        count: u32,
        each: impl FnMut(u32, Result<Slot, Missing>),
    ) {
        self.for_each_committed_fields(first, count, Fields::All, each);
    }

    /// [`for_each_committed`](Self::for_each_committed) loading only `fields` of each record:
    /// the others read as 0 in the slots handed out (see [`Fields::of`]). The stamps are
    /// read and checked as for every field.
    ///
    /// ```
    /// use ringlat_ring::{Fields, HeapStorage, Ring};
    /// use ringlat_format::Record;
    /// let ring = Ring::new(HeapStorage::new(4)).unwrap();
    /// ring.push(0, 0, &Record::new(7, 1_000, 3, -12)).unwrap();
    /// let mut read = Vec::new();
    /// ring.for_each_committed_fields(0, 1, Fields::StatusAndDelta, |_, slot| {
    ///     read.push(slot.map(|slot| slot.record));
    /// });
    /// assert_eq!(read, [Ok(Record::new(0, 0, 3, -12))]);
    /// ```
    #[inline(always)]
    pub fn for_each_committed_fields(
        &self,
        first: u32,
        count: u32,
        fields: Fields,
        mut each: impl FnMut(u32, Result<Slot, Missing>),
    ) {
        // One group's records, reused by every group (loaded into, not returned: a group
        // returned was copied once more).
        let mut records = [Record::new(0, 0, 0, 0); GROUP];
        for (indices, offset_of_first) in self.runs(first, count) {
            let mut index = indices.start;
            while index < indices.end {
                // Groups end on multiples of GROUP: a whole group then starts on one, where
                // the storage knows its layout.
                let end = ((index / GROUP as u32 + 1) * GROUP as u32).min(indices.end);
                let offset = offset_of_first + (index - indices.start);
                let position = first.wrapping_add(offset);
                // A whole group with its length a constant (its loops unrolled), the at most
                // two part groups of a run with theirs counted.
                if end - index == GROUP as u32 {
                    self.read_group(
                        index,
                        position,
                        GROUP,
                        fields,
                        &mut records,
                        #[inline(always)]
                        |k, slot| each(offset + k, slot),
                    );
                } else {
                    self.read_group(
                        index,
                        position,
                        (end - index) as usize,
                        fields,
                        &mut records,
                        #[inline(always)]
                        |k, slot| each(offset + k, slot),
                    );
                }
                index = end;
            }
        }
    }

    /// The `count` slots (at most [`GROUP`], in one group) from storage index `index`,
    /// holding positions from `position`, read as [`for_each_committed`] reads a group, into
    /// `records`: `each(k, slot)` for the `k`-th, its record's `fields`.
    ///
    /// [`for_each_committed`]: Self::for_each_committed
    #[inline(always)]
    fn read_group(
        &self,
        index: u32,
        position: u32,
        count: usize,
        fields: Fields,
        records: &mut [Record; GROUP],
        mut each: impl FnMut(u32, Result<Slot, Missing>),
    ) {
        // At most GROUP (said so the indexing below needs no bounds checks).
        let count = count.min(GROUP);
        // The stamps, and which of them say committed (bit k for the k-th slot: only those
        // records are needed).
        let (mut before, mut committed) = ([0u64; GROUP], 0u8);
        for (k, word) in before.iter_mut().enumerate().take(count) {
            // Relaxed: made Acquire by the fence below.
            *word = self.storage.meta(index + k as u32).load(Ordering::Relaxed);
            let position = position.wrapping_add(k as u32);
            committed |= u8::from(SlotMeta::word_is_committed_at(*word, position)) << k;
        }
        // Acquire fence: pairs with the producers' Release commits (`commit`,
        // `write_single`) that the loads above read: every record whose stamp said committed
        // is visible below.
        fence(Ordering::Acquire);
        self.storage
            .load_group(index, count as u32, committed, fields, records);
        // Acquire fence: pairs with a producer's Release fence after its writing stamp
        // (`claim_write_commit`, `write_single`): if any byte above came from a later lap,
        // the loads below see that lap's stamp (or a later one), and the ring word as that
        // producer saw it when it took the slot (or later).
        fence(Ordering::Acquire);
        // Relaxed: ordered by the fence above. A producer writes the slot of a later lap
        // only once it has seen head past this lap's position (its reserving CAS, or the
        // single producer's look at head, both before its Release fence); head never goes
        // back. So while head is not past the group's first position, no byte above is a
        // later lap's, and the stamps need no second look.
        let head = unpack_positions(self.storage.ring_word().load(Ordering::Relaxed)).0;
        let freed = position.wrapping_sub(head) >= self.mask.wrapping_add(1);
        // The k-th slot, its record's fields (the others, which the storage may have left as
        // they were, zeros).
        let slot = |k: u32, word| Slot {
            position: position.wrapping_add(k),
            meta: SlotMeta::from_word(word),
            record: fields.of(records[k as usize]),
        };
        // The common case, a group whose every slot says committed and that head has not
        // passed, without a choice per slot (the visits' other arms are then left out).
        if !freed && u32::from(committed) == (1 << count) - 1 {
            for (k, &word) in before.iter().enumerate().take(count) {
                each(k as u32, Ok(slot(k as u32, word)));
            }
            return;
        }
        for (k, &word) in before.iter().enumerate().take(count) {
            let k = k as u32;
            let read = if committed & (1 << k) == 0 {
                Err(classify_missing(word, position.wrapping_add(k)))
            } else if freed
                // Relaxed: ordered by the fence above.
                && self.storage.meta(index + k).load(Ordering::Relaxed) != word
            {
                Err(Missing::Overwritten)
            } else {
                Ok(slot(k, word))
            };
            each(k, read);
        }
    }

    /// The storage indices of the `count` positions from `first` (cut to the capacity), as
    /// at most two runs (before and after the storage's end), each with the distance of its
    /// first position from `first`.
    #[inline(always)]
    fn runs(&self, first: u32, count: u32) -> [(core::ops::Range<u32>, u32); 2] {
        let capacity = self.mask.wrapping_add(1);
        let count = count.min(capacity);
        let start = self.index(first);
        let before_end = count.min(capacity - start);
        [
            (start..start + before_end, 0),
            (0..count - before_end, before_end),
        ]
    }

    /// Reads the slot of `position` as a seqlock reader: stamp, bytes, fence, stamp again.
    /// Always inlined: readers call it once per slot of a pass.
    #[inline(always)]
    pub(crate) fn read_validated(&self, position: u32) -> Validated {
        let index = self.index(position);
        let meta = self.storage.meta(index);
        // Acquire: pairs with the producer's Release commit in `commit` / `write_single`.
        let before = meta.load(Ordering::Acquire);
        if !SlotMeta::word_is_committed_at(before, position) {
            return Validated::NotCommitted(before);
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

/// Why the slot of a position does not hold that position's committed record (what its
/// stamp says, for readers: see [`Ring::for_each_committed`]).
///
/// ```
/// let ring = ringlat_ring::Ring::new(ringlat_ring::HeapStorage::new(4)).unwrap();
/// let position = ring.reserve().unwrap();
/// let mut why = None;
/// ring.for_each_committed(position, 1, |_, slot| why = slot.err());
/// assert_eq!(why, Some(ringlat_ring::Missing::InFlight));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// Given up (skipped, or abandoned for exactly this position): never coming.
    GivenUp,
    /// The slot holds a later lap: the position's record (if any) was overwritten.
    Overwritten,
    /// Reserved and not finished: writing, not claimed yet, or waiting behind a slot an
    /// earlier lap's producer still holds.
    InFlight,
}

/// Classifies a stamp that is not the committed stamp of `position`.
pub(crate) fn classify_missing(word: u64, position: u32) -> Missing {
    let seen = SlotMeta::from_word(word);
    match (
        SlotMeta::state_of_word(word),
        lap_of(seen.position, position),
    ) {
        (Some(SlotState::Empty), _) => Missing::InFlight,
        (Some(state), Lap::Same) if state.is_given_up() => Missing::GivenUp,
        (Some(_), Lap::Later) => Missing::Overwritten,
        _ => Missing::InFlight,
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

/// [`Ring::push_overwriting`] gave the record up: its slot was still held by a producer of
/// an earlier lap, or already held a later lap. The slot says so (readers count the position
/// as missed).
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
    /// The stamp (the raw word) is not the committed stamp of the position.
    NotCommitted(u64),
    /// The stamp changed while the record was read: a later lap overwrote it.
    Overwritten,
}
