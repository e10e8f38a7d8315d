use crate::storage::Storage;
use crate::sync::{AtomicU8, AtomicU64, Ordering};
use core::ptr::NonNull;
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
/// The record area has a 21-byte stride, so records are written and read one byte at a time
/// with relaxed atomic accesses: plain stores on x86-64, and no data race with a peeker in
/// another thread or process.
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

    fn record_byte(&self, index: u32, byte: usize) -> &AtomicU8 {
        debug_assert!(index < self.geometry.capacity && byte < RECORD_SIZE);
        let offset = self.geometry.record_offset(index) as usize + byte;
        // SAFETY: `index < capacity` (the ring masks every position) and `byte < 21`, so the
        // byte lies in the record area, inside the region; u8 needs no alignment.
        unsafe { AtomicU8::from_ptr(self.base.as_ptr().add(offset)) }
    }
}

impl Storage for RegionStorage {
    fn capacity(&self) -> u32 {
        self.geometry.capacity
    }

    fn ring_word(&self) -> &AtomicU64 {
        // SAFETY: RING_WORD (128) is 8-aligned and inside the header, which `new` checked is
        // part of the region.
        unsafe { AtomicU64::from_ptr(self.base.as_ptr().add(RING_WORD).cast()) }
    }

    fn meta(&self, index: u32) -> &AtomicU64 {
        debug_assert!(index < self.geometry.capacity);
        let offset = self.geometry.meta_word_offset(index) as usize;
        debug_assert!(offset.is_multiple_of(META_SIZE));
        // SAFETY: the meta area starts on a page boundary and has 8 bytes per slot; the ring
        // masks positions, so `index < capacity` and the word is in bounds and aligned.
        unsafe { AtomicU64::from_ptr(self.base.as_ptr().add(offset).cast()) }
    }

    fn store_record(&self, index: u32, record: &Record) {
        for (byte, value) in record.to_bytes().into_iter().enumerate() {
            // Relaxed: ordered by the slot's stamps (writing stamp + fence before, committed
            // stamp with Release after).
            self.record_byte(index, byte)
                .store(value, Ordering::Relaxed);
        }
    }

    fn overwrite_mode(&self) -> bool {
        // SAFETY: OVERFLOW_POLICY (57) is inside the header, which `new` checked is part of
        // the region; u8 needs no alignment.
        let policy = unsafe { AtomicU8::from_ptr(self.base.as_ptr().add(OVERFLOW_POLICY)) };
        // Relaxed: written once at creation, before the version store that publishes the file.
        policy.load(Ordering::Relaxed) == OVERFLOW_OVERWRITE
    }

    fn load_record(&self, index: u32) -> Record {
        let mut bytes = [0u8; RECORD_SIZE];
        for (byte, value) in bytes.iter_mut().enumerate() {
            // Relaxed: ordered by the slot's stamps (Acquire load before, fence + re-check after).
            *value = self.record_byte(index, byte).load(Ordering::Relaxed);
        }
        Record::from_bytes(bytes)
    }
}
