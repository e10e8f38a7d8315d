use crate::clock::Anchor;
use crate::{Builder, Outcome};
use memmap2::MmapMut;
use ringlat_format::{DeltaUnit, KindCounter, Record, STATE, STATE_CLOSED};
use ringlat_ring::{RegionStorage, SingleProducer};
use std::cell::RefCell;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// What both handles share: the ring over the mapping, and what `record` needs to know.
pub(crate) struct Shared {
    // Declared before `map`: the storage points into the mapping, so it must drop first.
    ring: ringlat_ring::Ring<RegionStorage>,
    configured: [bool; 256],
    unit: DeltaUnit,
    anchor: Anchor,
    map: MmapMut,
    _file: File, // holds the writer lock (flock) until the handle is dropped
}

impl Shared {
    pub(crate) fn new(
        ring: ringlat_ring::Ring<RegionStorage>,
        configured: [bool; 256],
        unit: DeltaUnit,
        anchor: Anchor,
        map: MmapMut,
        file: File,
    ) -> Self {
        Shared {
            ring,
            configured,
            unit,
            anchor,
            map,
            _file: file,
        }
    }

    #[inline]
    fn count(&self, kind: u8, counter: KindCounter) {
        if let Some(cell) = self.ring.storage().u64_at(counter.offset(kind)) {
            // Relaxed: a statistic; readers reconcile it after the writer closes (the close
            // stores STATE with Release).
            cell.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Converts a latency to the file's unit, saturating; the flag says it saturated.
    #[inline]
    fn to_units(&self, delta: Duration) -> (i32, bool) {
        let units = match self.unit {
            DeltaUnit::Nanos => delta.as_nanos(),
            DeltaUnit::Micros => delta.as_micros(),
            DeltaUnit::Millis => delta.as_millis(),
        };
        match i32::try_from(units) {
            Ok(units) => (units, false),
            Err(_) => (i32::MAX, true),
        }
    }

    /// Everything `record` does before and after the push; the push itself is the caller's.
    #[inline]
    fn record_with(
        &self,
        kind: u8,
        trace_id: u64,
        status: u8,
        delta: Duration,
        push: impl FnOnce(&ringlat_ring::Ring<RegionStorage>, &Record) -> bool,
    ) -> Outcome {
        if !self.configured[kind as usize] {
            self.count(kind, KindCounter::Rejected);
            return Outcome::Rejected;
        }
        let (units, saturated) = self.to_units(delta);
        let record = Record::new(trace_id, self.anchor.unix_now(), status, units);
        if push(&self.ring, &record) {
            self.count(kind, KindCounter::Written);
            if saturated {
                self.count(kind, KindCounter::Saturated);
            }
            Outcome::Written
        } else {
            self.count(kind, KindCounter::DroppedFull);
            Outcome::Dropped
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(state) = self.ring.storage().u32_at(STATE) {
            // Release: pairs with a reader's Acquire load of STATE; once it sees "closed",
            // every record and counter written before is visible.
            state.store(STATE_CLOSED, Ordering::Release);
        }
        // A synchronous flush on close: the file is complete on disk once the handle is gone.
        let _ = self.map.flush();
    }
}

/// The multi-producer handle: `Clone + Send + Sync`; clones share one ring file.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// use std::time::Duration;
/// let ring = ringlat::Ring::builder(dir.path().join("gw.ring")).kind(0, "market").create().unwrap();
/// let worker = ring.clone();
/// std::thread::spawn(move || worker.record(0, 7, 0, Duration::from_micros(3))).join().unwrap();
/// ```
#[derive(Clone)]
pub struct Ring {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("capacity", &self.capacity())
            .finish()
    }
}

impl Ring {
    /// Starts the settings for a new ring file at `path`.
    pub fn builder(path: impl AsRef<Path>) -> Builder {
        Builder::new(path)
    }

    pub(crate) fn from_shared(shared: Shared) -> Self {
        Ring {
            shared: Arc::new(shared),
        }
    }

    /// Records one latency sample of operation `kind` for request `trace_id`.
    ///
    /// Never blocks, allocates, makes a system call or takes a lock. Every call lands in
    /// exactly one counter of the file header.
    #[inline]
    pub fn record(&self, kind: u8, trace_id: u64, status: u8, delta: Duration) -> Outcome {
        self.shared
            .record_with(kind, trace_id, status, delta, |ring, record| {
                ring.push(kind, 0, record).is_ok()
            })
    }

    /// Number of slots.
    pub fn capacity(&self) -> u32 {
        self.shared.ring.capacity()
    }
}

/// The single-producer handle: one thread records, without CAS contention with other
/// producers. `Send` (it may move to the producing thread) but neither `Clone` nor `Sync`.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// use std::time::Duration;
/// let ring = ringlat::Ring::builder(dir.path().join("sp.ring"))
///     .kind(1, "limit")
///     .create_single_producer()
///     .unwrap();
/// assert_eq!(ring.record(1, 42, 0, Duration::from_micros(8)), ringlat::Outcome::Written);
/// ```
///
/// ```compile_fail
/// fn needs_sync<T: Sync>(_: &T) {}
/// # let dir = tempfile::tempdir().unwrap();
/// let ring = ringlat::Ring::builder(dir.path().join("sp.ring")).create_single_producer().unwrap();
/// needs_sync(&ring); // a single producer cannot be shared between threads
/// ```
///
/// ```compile_fail
/// # let dir = tempfile::tempdir().unwrap();
/// let ring = ringlat::Ring::builder(dir.path().join("sp.ring")).create_single_producer().unwrap();
/// let copy = ring.clone(); // nor cloned
/// ```
pub struct SingleProducerRing {
    shared: Shared,
    producer: RefCell<SingleProducer>,
}

impl std::fmt::Debug for SingleProducerRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SingleProducerRing")
            .field("capacity", &self.capacity())
            .finish()
    }
}

impl SingleProducerRing {
    pub(crate) fn from_shared(shared: Shared) -> Self {
        let producer = RefCell::new(SingleProducer::attach(&shared.ring));
        SingleProducerRing { shared, producer }
    }

    /// Records one latency sample; same contract as [`Ring::record`].
    #[inline]
    pub fn record(&self, kind: u8, trace_id: u64, status: u8, delta: Duration) -> Outcome {
        self.shared
            .record_with(kind, trace_id, status, delta, |ring, record| {
                // The handle is not Sync and `record` does not re-enter itself, so the borrow
                // cannot be held already; if it somehow were, the record is dropped, not panicked.
                match self.producer.try_borrow_mut() {
                    Ok(mut producer) => producer.push(ring, kind, 0, record).is_ok(),
                    Err(_) => false,
                }
            })
    }

    /// Number of slots.
    pub fn capacity(&self) -> u32 {
        self.shared.ring.capacity()
    }
}
