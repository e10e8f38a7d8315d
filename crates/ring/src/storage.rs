use crate::sync::{AtomicU64, Ordering};
use core::ops::Range;
use ringlat_format::Record;

/// The slots a reader reads at a time while producers may write
/// ([`Ring::for_each_committed`](crate::Ring::for_each_committed)): 8, the records of 8
/// slots being 168 bytes, 21 whole 8-byte words (a group that starts on an 8-aligned offset
/// has its records' pieces at the same places as every other such group).
pub const GROUP: usize = 8;

/// The fields of its records a reader needs from a pass over a ring
/// ([`Ring::for_each_committed_fields`](crate::Ring::for_each_committed_fields)). A reader
/// of latencies alone (percentiles by kind and status) asks for [`Fields::StatusAndDelta`]:
/// where records are read as atomic pieces, loads that cannot be left out where a field goes
/// unused, the pieces of the trace id and the nanotime alone are then not loaded (about half
/// of a record's pieces).
///
/// ```
/// use ringlat_ring::Fields;
/// use ringlat_format::Record;
/// // Bytes 8..16 are the nanotime, 11..19 a piece across nanotime and status.
/// assert!(Fields::All.covers(8, 8) && !Fields::StatusAndDelta.covers(8, 8));
/// assert!(Fields::StatusAndDelta.covers(11, 8));
/// let kept = Fields::StatusAndDelta.of(Record::new(7, 1_000, 3, -12));
/// assert_eq!(kept, Record::new(0, 0, 3, -12));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fields {
    /// Every field of the record.
    All,
    /// The status and the delta; the trace id and the nanotime read as 0.
    StatusAndDelta,
}

/// Where a record's status begins (its delta follows): docs/FORMAT.md, "Record".
const STATUS_AT: usize = 16;

impl Fields {
    /// Whether bytes `at..at + len` of a record hold any of these fields.
    #[inline(always)]
    pub const fn covers(self, at: usize, len: usize) -> bool {
        match self {
            Fields::All => len > 0,
            Fields::StatusAndDelta => at + len > STATUS_AT && len > 0,
        }
    }

    /// The fields of both: what a reader needs when two readers' needs are joined (a fold's
    /// and its filter's).
    ///
    /// ```
    /// use ringlat_ring::Fields;
    /// assert_eq!(Fields::StatusAndDelta.union(Fields::StatusAndDelta), Fields::StatusAndDelta);
    /// assert_eq!(Fields::StatusAndDelta.union(Fields::All), Fields::All);
    /// ```
    #[inline]
    pub const fn union(self, other: Fields) -> Fields {
        match (self, other) {
            (Fields::StatusAndDelta, Fields::StatusAndDelta) => Fields::StatusAndDelta,
            (Fields::All, _) | (_, Fields::All) => Fields::All,
        }
    }

    /// `record` with the fields not among these set to 0.
    #[inline(always)]
    pub const fn of(self, record: Record) -> Record {
        match self {
            Fields::All => record,
            Fields::StatusAndDelta => Record::new(0, 0, record.status(), record.delta()),
        }
    }
}

/// Where the ring's shared state lives: the packed ring word, one metadata word per slot,
/// and one 21-byte record per slot.
///
/// Implementations must give every index `< capacity()` its own cells, and must make record
/// accesses atomic (relaxed is enough): a peeker may read a slot while a producer of the next
/// lap writes it, and the ring's stamps detect that only if neither access is undefined
/// behaviour.
///
/// ```
/// use ringlat_ring::{HeapStorage, Storage};
/// use ringlat_format::Record;
/// let storage = HeapStorage::new(2);
/// storage.store_record(1, &Record::new(9, 0, 0, 0));
/// assert_eq!(storage.load_record(1).trace_id(), 9);
/// let _as_an_object: &dyn Storage = &storage;
/// ```
pub trait Storage {
    /// Number of slots; a power of two, at least 2.
    fn capacity(&self) -> u32;
    /// The packed head/tail word.
    fn ring_word(&self) -> &AtomicU64;
    /// The metadata word of slot `index` (`index < capacity()`).
    fn meta(&self, index: u32) -> &AtomicU64;
    /// Stores the record of slot `index` with relaxed atomic writes.
    fn store_record(&self, index: u32, record: &Record);
    /// Loads the record of slot `index` with relaxed atomic reads.
    fn load_record(&self, index: u32) -> Record;
    /// Loads the record of slot `index` (as [`load_record`](Self::load_record)) where nothing
    /// can write it meanwhile, with the cheapest loads the storage has: a plain copy where its
    /// cells allow one.
    ///
    /// # Safety
    ///
    /// No thread or process may write the record of slot `index` while it is read: no
    /// producer may be left (only producers write records; a consumer writes stamps and the
    /// ring word).
    #[inline(always)]
    unsafe fn load_record_unshared(&self, index: u32) -> Record {
        self.load_record(index)
    }
    /// Loads the records of the `count` slots from `first` (`count` at most [`GROUP`],
    /// `first + count <= capacity()`) whose bit is set in `wanted` (bit `k` for slot
    /// `first + k`), as [`load_record`](Self::load_record) loads each, into their places of
    /// `into`; the other places keep what they held, or get the records of their slots: for
    /// a reader that reads slots a group at a time
    /// ([`Ring::for_each_committed`](crate::Ring::for_each_committed)). Of each record, at
    /// least the bytes of `fields` are loaded; the others may keep what they held (the
    /// default loads every field). Where the cells allow, a whole group laid out as the
    /// storage lays out every group is read with its loads known in advance (every slot, the
    /// pieces of `fields`: loads cost less there than a choice per slot). Into the caller's
    /// group, not a new one: a group returned was copied once more.
    #[inline(always)]
    fn load_group(
        &self,
        first: u32,
        count: u32,
        wanted: u8,
        fields: Fields,
        into: &mut [Record; GROUP],
    ) {
        // Every field, whichever were asked for.
        _ = fields;
        load_wanted(self, first, count, wanted, into)
    }
    /// For each slot of `indices` in order, its metadata word (an acquire load) and its
    /// record (as [`load_record_unshared`](Self::load_record_unshared) loads it, whatever the
    /// word says), handed to `each` with the index: where the cells allow, by walking
    /// pointers rather than working out every slot's place (a pass over a whole ring).
    /// Every slot's record is read, committed or not (the contract below makes each a read
    /// that no write races with). Not for a `dyn Storage` (`Self: Sized`), which keeps the
    /// trait usable as one.
    ///
    /// # Safety
    ///
    /// As for [`load_record_unshared`](Self::load_record_unshared), for every slot of
    /// `indices`; and `indices.end <= capacity()`.
    #[inline(always)]
    unsafe fn for_each_unshared(&self, indices: Range<u32>, mut each: impl FnMut(u32, u64, Record))
    where
        Self: Sized,
    {
        for index in indices {
            // Acquire: pairs with the producers' Release commits (made before they left).
            let word = self.meta(index).load(Ordering::Acquire);
            // SAFETY: the caller's contract.
            each(index, word, unsafe { self.load_record_unshared(index) });
        }
    }
    /// Whether the ring is in overwrite mode (producers move head; no consumer may attach).
    fn overwrite_mode(&self) -> bool {
        false
    }
}

/// [`Storage::load_group`] slot by slot: the records wanted, each with
/// [`Storage::load_record`]; the other places untouched. The default, and a storage's way
/// for the groups it has no faster way for.
#[inline(always)]
pub(crate) fn load_wanted<S: Storage + ?Sized>(
    storage: &S,
    first: u32,
    count: u32,
    wanted: u8,
    into: &mut [Record; GROUP],
) {
    for (k, record) in (0..count).zip(into) {
        if wanted & (1 << k) != 0 {
            *record = storage.load_record(first + k);
        }
    }
}

impl<S: Storage + ?Sized> Storage for &S {
    #[inline]
    fn capacity(&self) -> u32 {
        (**self).capacity()
    }
    #[inline]
    fn ring_word(&self) -> &AtomicU64 {
        (**self).ring_word()
    }
    #[inline]
    fn meta(&self, index: u32) -> &AtomicU64 {
        (**self).meta(index)
    }
    #[inline]
    fn store_record(&self, index: u32, record: &Record) {
        (**self).store_record(index, record)
    }
    #[inline]
    fn load_record(&self, index: u32) -> Record {
        (**self).load_record(index)
    }
    #[inline(always)]
    unsafe fn load_record_unshared(&self, index: u32) -> Record {
        // SAFETY: the caller's contract is the same.
        unsafe { (**self).load_record_unshared(index) }
    }
    #[inline(always)]
    fn load_group(
        &self,
        first: u32,
        count: u32,
        wanted: u8,
        fields: Fields,
        into: &mut [Record; GROUP],
    ) {
        (**self).load_group(first, count, wanted, fields, into)
    }
    #[inline]
    fn overwrite_mode(&self) -> bool {
        (**self).overwrite_mode()
    }
}
