use crate::storage::{Fields, GROUP, Storage, load_wanted};
use crate::sync::{AtomicU8, AtomicU64, Ordering};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU16, AtomicU32};
use ringlat_format::{
    Geometry, META_SIZE, OVERFLOW_OVERWRITE, OVERFLOW_POLICY, RECORD_SIZE, RING_WORD, Record,
};
use thiserror::Error;

/// Why a memory region cannot hold a ring of the given geometry.
///
/// ```
/// use ringlat_ring::RegionError;
/// let err = RegionError::TooShort { len: 10, needed: 20 };
/// assert!(err.to_string().contains("20"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RegionError {
    /// The region is shorter than the file size the geometry implies.
    #[error("region of {len} bytes is shorter than the {needed} bytes the geometry needs")]
    TooShort {
        /// Bytes available.
        len: usize,
        /// Bytes the geometry needs.
        needed: u64,
    },
    /// The region is null or does not start on an 8-byte boundary.
    #[error("region is null or not 8-byte aligned")]
    Misaligned,
}

/// Storage over a region of memory laid out as a ring file (normally a shared file mapping).
///
/// The record area has a 21-byte stride, so a record starts at any offset modulo 8. It is
/// written and read as the widest naturally aligned pieces its offset allows (see
/// [`RECORD_SPLITS`]: 4 to 6 pieces of 8, 4, 2 or 1 bytes instead of 21 byte accesses), each a
/// relaxed atomic access: plain moves on x86-64, and no data race with a peeker in another
/// thread or process. Writer and readers use the same split (it depends only on the offset),
/// so no byte is ever accessed by atomics of two different sizes.
///
/// ```
/// use ringlat_format::{Geometry, Record};
/// use ringlat_ring::{RegionStorage, Ring};
/// let geometry = Geometry::for_capacity(4).unwrap();
/// let mut memory = vec![0u64; geometry.file_size as usize / 8];
/// // SAFETY: `memory` outlives `storage` and is only accessed through it.
/// let storage = unsafe {
///     RegionStorage::new(memory.as_mut_ptr().cast(), memory.len() * 8, geometry)
/// }.unwrap();
/// let ring = Ring::new(storage).unwrap();
/// ring.push(1, 0, &Record::new(5, 0, 0, 0)).unwrap();
/// ```
#[derive(Debug)]
pub struct RegionStorage {
    base: NonNull<u8>,
    geometry: Geometry,
}

// SAFETY: every access through `base` is atomic, so sharing the pointer across threads is
// sound; `new`'s contract keeps the region alive for as long as the storage.
unsafe impl Send for RegionStorage {}
// SAFETY: as for `Send`: the storage hands out only atomic views of the region.
unsafe impl Sync for RegionStorage {}

impl RegionStorage {
    /// Wraps `len` bytes at `base`, laid out by `geometry`.
    ///
    /// # Safety
    ///
    /// For as long as the returned storage (or anything borrowed from it) lives, the region
    /// `base..base + len` must stay allocated, readable and writable (a shared mapping, or a
    /// private copy-on-write one for a reader), and every other access to the ring word, the
    /// metadata words and the record bytes (in this or another process) must be atomic.
    pub unsafe fn new(base: *mut u8, len: usize, geometry: Geometry) -> Result<Self, RegionError> {
        let base = NonNull::new(base).ok_or(RegionError::Misaligned)?;
        if (len as u64) < geometry.file_size {
            return Err(RegionError::TooShort {
                len,
                needed: geometry.file_size,
            });
        }
        if base.as_ptr().align_offset(8) != 0 {
            return Err(RegionError::Misaligned);
        }
        Ok(RegionStorage { base, geometry })
    }

    /// The geometry the region is laid out by.
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// An atomic `u64` at `offset` from the start of the region.
    ///
    /// Returns `None` when the 8 bytes are out of bounds or misaligned.
    pub fn u64_at(&self, offset: usize) -> Option<&AtomicU64> {
        if !offset.is_multiple_of(8) || offset as u64 + 8 > self.geometry.file_size {
            return None;
        }
        // SAFETY: in bounds and 8-aligned (checked above; the base is 8-aligned); `new`'s
        // contract keeps the region alive and atomically accessed for `&self`'s lifetime.
        Some(unsafe { AtomicU64::from_ptr(self.base.as_ptr().add(offset).cast()) })
    }

    /// An atomic `u32` at `offset` from the start of the region.
    ///
    /// Returns `None` when the 4 bytes are out of bounds or misaligned.
    pub fn u32_at(&self, offset: usize) -> Option<&core::sync::atomic::AtomicU32> {
        if !offset.is_multiple_of(4) || offset as u64 + 4 > self.geometry.file_size {
            return None;
        }
        // SAFETY: in bounds and 4-aligned (checked above); region alive and atomically
        // accessed per `new`'s contract.
        Some(unsafe {
            core::sync::atomic::AtomicU32::from_ptr(self.base.as_ptr().add(offset).cast())
        })
    }

    /// The record of slot `index`: its first byte and the offset's phase (offset mod 8).
    #[inline]
    fn record_start(&self, index: u32) -> (*mut u8, usize) {
        debug_assert!(index < self.geometry.capacity);
        let offset = self.geometry.record_offset(index) as usize;
        // SAFETY: `index < capacity` (the ring masks every position), so the 21 bytes at
        // `offset` lie in the record area, inside the region `new` checked.
        let start = unsafe { self.base.as_ptr().add(offset) };
        (start, offset % 8)
    }
}

/// Most pieces a record is split into (phase 1: 1 + 2 + 4 + 8 + 4 + 2 bytes).
const MAX_PIECES: usize = 6;

/// The split of a 21-byte record that starts at an offset `o` with `o % 8 == phase`: up to
/// six `(start, size)` pieces, each of 8, 4, 2 or 1 bytes and aligned to its size
/// (the greedy choice: at each byte, the widest size that is aligned there and still fits),
/// and how many there are. The region's base is 8-aligned, so the phase of the offset is the
/// phase of the address.
///
/// ```
/// use ringlat_ring::RECORD_SPLITS;
/// assert_eq!(RECORD_SPLITS[0].1, 4); // 8 + 8 + 4 + 1
/// assert_eq!(&RECORD_SPLITS[0].0[..4], &[(0, 8), (8, 8), (16, 4), (20, 1)]);
/// assert_eq!(&RECORD_SPLITS[5].0[..5], &[(0, 1), (1, 2), (3, 8), (11, 8), (19, 2)]);
/// ```
pub const RECORD_SPLITS: [([(u8, u8); MAX_PIECES], usize); 8] = {
    let mut splits = [([(0u8, 0u8); MAX_PIECES], 0usize); 8];
    let mut phase = 0;
    while phase < 8 {
        let mut at = 0;
        let mut count = 0;
        while at < RECORD_SIZE {
            let mut size = 8;
            while (phase + at) % size != 0 || at + size > RECORD_SIZE {
                size /= 2;
            }
            splits[phase].0[count] = (at as u8, size as u8);
            count += 1;
            at += size;
        }
        splits[phase].1 = count;
        phase += 1;
    }
    splits
};

/// Stores `bytes` at `start`, whose address is `PHASE` modulo 8, piece by piece.
///
/// # Safety
///
/// `start..start + 21` lies in a live region accessed only atomically, with this split.
#[inline(always)]
unsafe fn store_split<const PHASE: usize>(start: *mut u8, bytes: &[u8; RECORD_SIZE]) {
    let (pieces, count) = RECORD_SPLITS[PHASE];
    for &(at, size) in &pieces[..count] {
        let at = at as usize;
        // SAFETY: for every arm, the piece lies inside the record (the split covers 0..21) and
        // its address is aligned to its size (the split's rule, with `start` at `PHASE`).
        // Relaxed: ordered by the slot's stamps (writing stamp + fence before, committed
        // stamp with Release after).
        unsafe {
            let ptr = start.add(at);
            match size {
                8 => AtomicU64::from_ptr(ptr.cast())
                    .store(u64::from_le_bytes(piece::<8>(bytes, at)), Ordering::Relaxed),
                4 => AtomicU32::from_ptr(ptr.cast())
                    .store(u32::from_le_bytes(piece::<4>(bytes, at)), Ordering::Relaxed),
                2 => AtomicU16::from_ptr(ptr.cast())
                    .store(u16::from_le_bytes(piece::<2>(bytes, at)), Ordering::Relaxed),
                _ => AtomicU8::from_ptr(ptr).store(bytes[at], Ordering::Relaxed),
            }
        }
    }
}

/// Loads the record at `start`, whose address is `PHASE` modulo 8, with the same split, as
/// its bytes 0..8, 8..16 and 16..21 (little-endian words, the last one's top 3 bytes zero).
///
/// The pieces are put together in registers: gathered into a byte array instead, the
/// record's fields were then read across several of the pieces' stores, a failed store
/// forwarding (a stall of about a dozen cycles) per record in a pass over a ring.
///
/// # Safety
///
/// As for [`store_split`].
#[inline(always)]
unsafe fn load_split<const PHASE: usize>(start: *mut u8) -> [u64; 3] {
    let mut words = [0u64; 3];
    let (pieces, count) = RECORD_SPLITS[PHASE];
    for &(at, size) in &pieces[..count] {
        let at = at as usize;
        // SAFETY: the piece as in `store_split`.
        let value = unsafe { load_piece(start.add(at), size) };
        // Byte `at` of the record is byte `at % 8` of word `at / 8`; a piece may run on into
        // the next word (never past the third: the record ends at byte 21).
        let (word, shift) = (at / 8, 8 * (at % 8));
        words[word] |= value << shift;
        if shift + 8 * usize::from(size) > 64 {
            words[word + 1] |= value >> (64 - shift);
        }
    }
    words
}

/// The `size`-byte piece (8, 4, 2 or 1) at `ptr`, loaded with one relaxed atomic load of
/// that size (the writer's: see [`store_split`]), widened to a `u64`.
///
/// # Safety
///
/// `ptr..ptr + size` lies in a live region accessed only atomically, with the record
/// splits, and `ptr` is aligned to `size`.
#[inline(always)]
unsafe fn load_piece(ptr: *mut u8, size: u8) -> u64 {
    // SAFETY: the caller's contract, for every arm. Relaxed: ordered by the slot's stamps
    // (a load or fence with Acquire before, a fence and a second look after).
    unsafe {
        match size {
            8 => AtomicU64::from_ptr(ptr.cast()).load(Ordering::Relaxed),
            4 => u64::from(AtomicU32::from_ptr(ptr.cast()).load(Ordering::Relaxed)),
            2 => u64::from(AtomicU16::from_ptr(ptr.cast()).load(Ordering::Relaxed)),
            _ => u64::from(AtomicU8::from_ptr(ptr).load(Ordering::Relaxed)),
        }
    }
}

/// Copies the record at `start`, whose address is `PHASE` modulo 8, to `out` with the same
/// split: each piece that holds any of `fields` an atomic load from the region and a plain
/// store of the same size to the same place of `out` (no shifting pieces together: a reader
/// of the copy then loads only the fields it uses, as from any record in memory). The bytes
/// of the pieces left out keep what they held.
///
/// # Safety
///
/// As for [`store_split`]; and `out..out + 21` is valid for writes.
#[inline(always)]
unsafe fn copy_split<const PHASE: usize>(start: *mut u8, out: *mut u8, fields: Fields) {
    let (pieces, count) = RECORD_SPLITS[PHASE];
    for &(at, size) in &pieces[..count] {
        let at = at as usize;
        // Known when inlined (`fields` a constant there): no choice is left in the loop.
        if !fields.covers(at, usize::from(size)) {
            continue;
        }
        // SAFETY: the piece as in `store_split`; the store is inside `out`'s 21 bytes (the
        // split covers 0..21), an unaligned write of a plain integer of the piece's size (the
        // value truncated back to it: its bytes as loaded).
        unsafe {
            let (value, to) = (load_piece(start.add(at), size), out.add(at));
            match size {
                8 => to.cast::<u64>().write_unaligned(value),
                4 => to.cast::<u32>().write_unaligned(value as u32),
                2 => to.cast::<u16>().write_unaligned(value as u16),
                _ => to.write(value as u8),
            }
        }
    }
}

/// `N` bytes of `bytes` from `at` (the split keeps `at + N <= 21`).
#[inline(always)]
fn piece<const N: usize>(bytes: &[u8; RECORD_SIZE], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes[at..at + N]);
    out
}

impl Storage for RegionStorage {
    #[inline]
    fn capacity(&self) -> u32 {
        self.geometry.capacity
    }

    #[inline]
    fn ring_word(&self) -> &AtomicU64 {
        // SAFETY: RING_WORD (128) is 8-aligned and inside the header, which `new` checked is
        // part of the region.
        unsafe { AtomicU64::from_ptr(self.base.as_ptr().add(RING_WORD).cast()) }
    }

    #[inline]
    fn meta(&self, index: u32) -> &AtomicU64 {
        debug_assert!(index < self.geometry.capacity);
        let offset = self.geometry.meta_word_offset(index) as usize;
        debug_assert!(offset.is_multiple_of(META_SIZE));
        // SAFETY: the meta area starts on a page boundary and has 8 bytes per slot; the ring
        // masks positions, so `index < capacity` and the word is in bounds and aligned.
        unsafe { AtomicU64::from_ptr(self.base.as_ptr().add(offset).cast()) }
    }

    #[inline]
    fn store_record(&self, index: u32, record: &Record) {
        let (start, phase) = self.record_start(index);
        let bytes = record.to_bytes();
        // SAFETY: `record_start` gives the record's 21 bytes inside the region and their
        // phase; `new`'s contract makes every access to them atomic, and every access in this
        // crate uses `RECORD_SPLITS` (load_record too).
        unsafe {
            match phase {
                0 => store_split::<0>(start, &bytes),
                1 => store_split::<1>(start, &bytes),
                2 => store_split::<2>(start, &bytes),
                3 => store_split::<3>(start, &bytes),
                4 => store_split::<4>(start, &bytes),
                5 => store_split::<5>(start, &bytes),
                6 => store_split::<6>(start, &bytes),
                _ => store_split::<7>(start, &bytes),
            }
        }
    }

    #[inline]
    fn overwrite_mode(&self) -> bool {
        // SAFETY: OVERFLOW_POLICY (57) is inside the header, which `new` checked is part of
        // the region; u8 needs no alignment.
        let policy = unsafe { AtomicU8::from_ptr(self.base.as_ptr().add(OVERFLOW_POLICY)) };
        // Relaxed: written once at creation, before the version store that publishes the file.
        policy.load(Ordering::Relaxed) == OVERFLOW_OVERWRITE
    }

    // Always: a pass over a ring reads a record per slot, and the call and the record's
    // trip through memory cost more than the load.
    #[inline(always)]
    fn load_record(&self, index: u32) -> Record {
        let (start, phase) = self.record_start(index);
        // SAFETY: as in `store_record`.
        let words = unsafe {
            match phase {
                0 => load_split::<0>(start),
                1 => load_split::<1>(start),
                2 => load_split::<2>(start),
                3 => load_split::<3>(start),
                4 => load_split::<4>(start),
                5 => load_split::<5>(start),
                6 => load_split::<6>(start),
                _ => load_split::<7>(start),
            }
        };
        // Each field lies within one word: trace id, nanotime, then status and delta.
        Record::new(
            words[0],
            words[1],
            words[2] as u8,
            (words[2] >> 8) as u32 as i32,
        )
    }

    // A whole group from an 8-aligned offset: slot k's record starts at phase 5k mod 8
    // (21 = 5 mod 8), so each slot's split is known here and no jump per slot picks it.
    #[inline(always)]
    fn load_group(
        &self,
        first: u32,
        count: u32,
        wanted: u8,
        fields: Fields,
        into: &mut [Record; GROUP],
    ) {
        // Cut to the storage (a safe method must not read past it, whatever its caller
        // passes; `Ring` never passes more): one compare a group.
        let count = count.min(self.geometry.capacity.saturating_sub(first));
        if count as usize != GROUP {
            return load_wanted(self, first, count, wanted, into);
        }
        let (start, phase) = self.record_start(first);
        if phase != 0 {
            return load_wanted(self, first, count, wanted, into);
        }
        let out = into.as_mut_ptr().cast::<u8>();
        // SAFETY: as in `store_record`, for each of the group's slots: slot `first + k`'s
        // record starts `21 * k` bytes after slot `first`'s (the record area is contiguous)
        // at phase `5k mod 8`, the phase its split is chosen for here; `first + 7 < capacity`
        // (`count` was cut to the storage above), so all of them lie in the record area.
        // `into` is `GROUP` records of 21 bytes, the same layout (`Record` is 21 plain bytes,
        // alignment 1: any bytes are one), so each copy writes its own place of it.
        unsafe {
            copy_split::<0>(start, out, fields);
            copy_split::<5>(start.add(RECORD_SIZE), out.add(RECORD_SIZE), fields);
            copy_split::<2>(start.add(2 * RECORD_SIZE), out.add(2 * RECORD_SIZE), fields);
            copy_split::<7>(start.add(3 * RECORD_SIZE), out.add(3 * RECORD_SIZE), fields);
            copy_split::<4>(start.add(4 * RECORD_SIZE), out.add(4 * RECORD_SIZE), fields);
            copy_split::<1>(start.add(5 * RECORD_SIZE), out.add(5 * RECORD_SIZE), fields);
            copy_split::<6>(start.add(6 * RECORD_SIZE), out.add(6 * RECORD_SIZE), fields);
            copy_split::<3>(start.add(7 * RECORD_SIZE), out.add(7 * RECORD_SIZE), fields);
        }
    }

    // A plain copy of the 21 bytes: a pass over a ring no producer writes to any more reads
    // a third faster so than through the atomic pieces (whose loads cannot be dropped where
    // a field goes unused, and whose phase is a jump per slot).
    #[inline(always)]
    unsafe fn load_record_unshared(&self, index: u32) -> Record {
        let (start, _) = self.record_start(index);
        // SAFETY: `record_start` gives the record's 21 bytes inside the region; the caller
        // guarantees that nothing writes them while they are read, so this plain read races
        // with no access (`new`'s contract asks atomic accesses of concurrent users only).
        let bytes = unsafe { core::ptr::read_unaligned(start.cast::<[u8; RECORD_SIZE]>()) };
        Record::from_bytes(bytes)
    }

    #[inline(always)]
    unsafe fn for_each_unshared(
        &self,
        indices: core::ops::Range<u32>,
        mut each: impl FnMut(u32, u64, Record),
    ) {
        if indices.is_empty() {
            return;
        }
        debug_assert!(indices.end <= self.geometry.capacity);
        // From the region's base, not from `meta()`'s reference: the walk needs the
        // provenance of the whole region (a reference covers its own 8 bytes only).
        let offset = self.geometry.meta_word_offset(indices.start) as usize;
        // SAFETY: the stamp area lies inside the region (`new` checked it), and
        // `indices.start < capacity`.
        let mut meta = unsafe { self.base.as_ptr().add(offset) }.cast::<AtomicU64>();
        let (mut record, _) = self.record_start(indices.start);
        for index in indices {
            // SAFETY: `meta` is slot `index`'s word (8 bytes a slot from the first one, and
            // `index < capacity` by the caller's contract), aligned and inside the region.
            // Acquire: pairs with the producers' Release commits (made before they left).
            let word = unsafe { (*meta).load(Ordering::Acquire) };
            // SAFETY: `record` is slot `index`'s 21 bytes (RECORD_SIZE a slot from the first),
            // inside the region; nothing writes them meanwhile (the caller's contract), so
            // this plain read races with no access.
            let bytes = unsafe { core::ptr::read_unaligned(record.cast::<[u8; RECORD_SIZE]>()) };
            each(index, word, Record::from_bytes(bytes));
            // Wrapping: after the last slot the pointers may point past the region (never
            // dereferenced).
            meta = meta.wrapping_add(1);
            record = record.wrapping_add(RECORD_SIZE);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_split_covers_the_record_with_aligned_pieces() {
        for (phase, (pieces, count)) in RECORD_SPLITS.iter().enumerate() {
            let mut next = 0;
            for &(at, size) in &pieces[..*count] {
                let (at, size) = (usize::from(at), usize::from(size));
                assert_eq!(at, next, "phase {phase}: pieces are contiguous");
                assert!([1, 2, 4, 8].contains(&size));
                assert_eq!(
                    (phase + at) % size,
                    0,
                    "phase {phase}: piece at {at} aligned"
                );
                next = at + size;
            }
            assert_eq!(next, RECORD_SIZE, "phase {phase}: covers 21 bytes");
        }
    }

    #[test]
    fn records_round_trip_at_every_phase_and_keep_their_neighbours() {
        let geometry = Geometry::for_capacity(16).unwrap();
        let mut memory = vec![0u64; geometry.file_size as usize / 8];
        // SAFETY: `memory` outlives `storage` and is only accessed through it.
        let storage =
            unsafe { RegionStorage::new(memory.as_mut_ptr().cast(), memory.len() * 8, geometry) }
                .unwrap();
        let record = |i: u32| {
            let i = u64::from(i);
            Record::new(
                0x0102_0304_0506_0708 * (i + 1),
                u64::MAX - i,
                i as u8,
                -(i as i32) * 1000,
            )
        };
        for index in (0..16).step_by(2) {
            storage.store_record(index, &record(index));
        }
        for index in 0..16 {
            let expected = if index % 2 == 0 {
                record(index)
            } else {
                Record::from_bytes([0; RECORD_SIZE])
            };
            assert_eq!(storage.load_record(index), expected, "slot {index}");
        }
        let bytes: &[u8] = bytemuck_bytes(&memory);
        let at = geometry.record_offset(5) as usize;
        assert_eq!(bytes[at..at + RECORD_SIZE], [0; RECORD_SIZE]);
        let at = geometry.record_offset(6) as usize;
        assert_eq!(bytes[at..at + RECORD_SIZE], record(6).to_bytes());
        // Then every slot, so that every phase (odd ones too) loads a record of its own.
        for index in (1..16).step_by(2) {
            storage.store_record(index, &record(index));
        }
        for index in 0..16 {
            assert_eq!(storage.load_record(index), record(index), "slot {index}");
            // SAFETY: nothing else writes `memory` (this thread stored every record above).
            let unshared = unsafe { storage.load_record_unshared(index) };
            assert_eq!(unshared, record(index), "slot {index}, a plain copy");
        }
        // Groups of every length from every slot: whole ones from a multiple of GROUP take
        // the unrolled loads (of every slot), the others slot by slot (of the slots wanted);
        // the other places are zeros. Asked for status and delta alone, a whole group loads
        // only the pieces that hold them: none of bytes 0..9 (the latest such piece starts at
        // byte 9), so its trace ids stay zeros.
        for fields in [Fields::All, Fields::StatusAndDelta] {
            for first in 0..16 {
                for count in 0..=(GROUP as u32).min(16 - first) {
                    // Every other slot wanted: a part group loads only those.
                    let wanted = 0b0101_0101;
                    let mut group = [Record::from_bytes([0; RECORD_SIZE]); GROUP];
                    storage.load_group(first, count, wanted, fields, &mut group);
                    for (k, loaded) in (0..).zip(group) {
                        let whole = count as usize == GROUP && first % GROUP as u32 == 0;
                        let expected = if k < count && (whole || wanted & (1 << k) != 0) {
                            record(first + k)
                        } else {
                            Record::from_bytes([0; RECORD_SIZE])
                        };
                        let at = format!("{fields:?}: group of {count} from {first}, place {k}");
                        assert_eq!(fields.of(loaded), fields.of(expected), "{at}");
                        if fields == Fields::All || !whole {
                            assert_eq!(loaded, expected, "{at}");
                        } else {
                            assert_eq!(loaded.to_bytes()[..9], [0; 9], "{at}: loaded anyway");
                        }
                    }
                }
            }
        }
        // A group asked past the storage's end is cut to it (a safe method reads nothing
        // outside the region, whatever it is asked).
        let zero = Record::from_bytes([0; RECORD_SIZE]);
        let mut cut = [zero; GROUP];
        storage.load_group(14, 8, 0xff, Fields::All, &mut cut);
        assert_eq!(cut[..3], [record(14), record(15), zero]);
        let mut past = [zero; GROUP];
        storage.load_group(16, 8, 0xff, Fields::All, &mut past);
        assert_eq!(past, [zero; GROUP]);
        for index in 0..16 {
            storage
                .meta(index)
                .store(u64::from(index) * 3 + 1, Ordering::Relaxed);
        }
        // Runs that start and end at every phase, walked as pointers: each slot's word and
        // record, in order.
        for start in 0..16 {
            for end in start..=16 {
                let mut seen = Vec::new();
                // SAFETY: as above; `end <= capacity`.
                unsafe {
                    storage.for_each_unshared(start..end, |index, word, loaded| {
                        seen.push((index, word, loaded));
                    })
                };
                let expected: Vec<_> = (start..end)
                    .map(|index| (index, u64::from(index) * 3 + 1, record(index)))
                    .collect();
                assert_eq!(seen, expected, "slots {start}..{end}");
            }
        }
    }

    fn bytemuck_bytes(words: &[u64]) -> &[u8] {
        // SAFETY: u64s are 8 initialised bytes each; u8 needs no alignment.
        unsafe { core::slice::from_raw_parts(words.as_ptr().cast(), words.len() * 8) }
    }
}
