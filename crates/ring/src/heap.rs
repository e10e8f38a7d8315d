use crate::storage::Storage;
use crate::sync::{AtomicU64, Ordering};
use ringlat_format::{RECORD_SIZE, Record};

/// Storage on the heap, for tests, loom and miri.
///
/// Each record is held in three `AtomicU64` cells (24 bytes, the last 3 unused), so that a
/// record is written in several steps and a torn read is possible to observe if the ring's
/// protocol were wrong.
///
/// ```
/// use ringlat_ring::{HeapStorage, Ring};
/// let ring = Ring::new(HeapStorage::new(8)).unwrap();
/// assert_eq!(ring.capacity(), 8);
/// ```
#[derive(Debug)]
pub struct HeapStorage {
    word: AtomicU64,
    meta: Box<[AtomicU64]>,
    records: Box<[[AtomicU64; 3]]>,
    overwrite: bool,
}

impl HeapStorage {
    /// Zeroed storage for `capacity` slots. `Ring::new` checks the capacity.
    pub fn new(capacity: u32) -> Self {
        HeapStorage {
            word: AtomicU64::new(0),
            meta: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
            records: (0..capacity)
                .map(|_| [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)])
                .collect(),
            overwrite: false,
        }
    }

    /// Zeroed storage for an overwrite-mode ring (no consumer may attach to it).
    ///
    /// ```
    /// use ringlat_ring::{Consumer, HeapStorage, Ring, RingError};
    /// let ring = Ring::new(HeapStorage::new_overwrite(4)).unwrap();
    /// assert_eq!(Consumer::attach(&ring).unwrap_err(), RingError::OverwriteRing);
    /// ```
    pub fn new_overwrite(capacity: u32) -> Self {
        HeapStorage {
            overwrite: true,
            ..HeapStorage::new(capacity)
        }
    }
}

impl Storage for HeapStorage {
    fn capacity(&self) -> u32 {
        self.meta.len() as u32
    }

    fn ring_word(&self) -> &AtomicU64 {
        &self.word
    }

    fn meta(&self, index: u32) -> &AtomicU64 {
        &self.meta[index as usize]
    }

    fn store_record(&self, index: u32, record: &Record) {
        let mut padded = [0u8; 24];
        padded[..RECORD_SIZE].copy_from_slice(&record.to_bytes());
        for (cell, chunk) in self.records[index as usize]
            .iter()
            .zip(padded.chunks_exact(8))
        {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            // Relaxed: the slot's stamps (see the crate docs) order these stores.
            cell.store(u64::from_le_bytes(word), Ordering::Relaxed);
        }
    }

    fn overwrite_mode(&self) -> bool {
        self.overwrite
    }

    fn load_record(&self, index: u32) -> Record {
        let mut padded = [0u8; 24];
        for (cell, chunk) in self.records[index as usize]
            .iter()
            .zip(padded.chunks_exact_mut(8))
        {
            // Relaxed: the slot's stamps (see the crate docs) order these loads.
            chunk.copy_from_slice(&cell.load(Ordering::Relaxed).to_le_bytes());
        }
        let mut bytes = [0u8; RECORD_SIZE];
        bytes.copy_from_slice(&padded[..RECORD_SIZE]);
        Record::from_bytes(bytes)
    }
}
