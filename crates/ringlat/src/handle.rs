use crate::background::Writer;
use crate::shared::{Call, Counting, Shared};
use crate::stripes::thread_stripe;
use crate::{Builder, Error, Outcome};
use ringlat_ring::SingleProducer;
use std::cell::RefCell;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The multi-producer handle: `Clone + Send + Sync`; clones share one ring file. The file is
/// flushed and marked closed, and its background thread joined, when the last clone drops.
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
    writer: Arc<Writer>,
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

    pub(crate) fn from_shared(shared: Shared) -> Result<Self, Error> {
        Ok(Ring {
            writer: Arc::new(Writer::start(shared)?),
        })
    }

    pub(crate) fn shared(&self) -> &Shared {
        self.writer.shared()
    }

    /// Records one latency sample of operation `kind` for request `trace_id`, timestamped now.
    ///
    /// Decides whether to keep it (the kind's rate in force, keep-if-slow), then writes it,
    /// unless the breaker is open or the ring is full. Never blocks, allocates, makes a system
    /// call or takes a lock. Every call lands in exactly one counter of the file header.
    #[inline]
    pub fn record(&self, kind: u8, trace_id: u64, status: u8, delta: Duration) -> Outcome {
        self.record_inner(kind, trace_id, status, delta, None)
    }

    /// [`Ring::record`] with the caller's timestamp (UNIX-epoch nanoseconds, e.g. taken when
    /// the request arrived). A timestamp further from now than the ring's maximum skew
    /// (default 50 ms) is rejected and counted, never written.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # use std::time::{Duration, SystemTime, UNIX_EPOCH};
    /// let ring = ringlat::Ring::builder(dir.path().join("at.ring")).kind(0, "op").create().unwrap();
    /// let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
    /// assert_eq!(ring.record_at(0, 1, 0, Duration::from_micros(5), now), ringlat::Outcome::Written);
    /// let an_hour_ago = now - 3_600_000_000_000;
    /// assert_eq!(ring.record_at(0, 2, 0, Duration::from_micros(5), an_hour_ago), ringlat::Outcome::Rejected);
    /// ```
    #[inline]
    pub fn record_at(
        &self,
        kind: u8,
        trace_id: u64,
        status: u8,
        delta: Duration,
        nanotime: u64,
    ) -> Outcome {
        self.record_inner(kind, trace_id, status, delta, Some(nanotime))
    }

    #[inline]
    fn record_inner(
        &self,
        kind: u8,
        trace_id: u64,
        status: u8,
        delta: Duration,
        nanotime: Option<u64>,
    ) -> Outcome {
        self.record_call(Call {
            kind,
            trace_id,
            status,
            delta,
            nanotime,
            from_clock: false,
        })
    }

    /// One call, every field given (also the timer guard's clock-stamped records).
    #[inline]
    pub(crate) fn record_call(&self, call: Call) -> Outcome {
        let kind = call.kind;
        self.shared().record(
            Counting::Stripe(thread_stripe()),
            call,
            |ring, class, record| {
                ring.push_with_fill(kind, class, record)
                    .map(|(_, fill)| fill)
            },
        )
    }

    /// `record_inner` through the ring's test hook (the same push code, plus the hook calls).
    fn record_hooked(
        &self,
        kind: u8,
        trace_id: u64,
        status: u8,
        delta: Duration,
        nanotime: Option<u64>,
        mut hook: impl FnMut(ringlat_ring::PushStage, u32),
    ) -> Outcome {
        let shared = self.shared();
        let call = Call {
            kind,
            trace_id,
            status,
            delta,
            nanotime,
            from_clock: false,
        };
        let counting = Counting::Stripe(thread_stripe());
        // One of the two paths (break: `push`; overwrite: the shared hook) calls the hook.
        let hook = RefCell::new(&mut hook);
        let call_hook = |stage, position| {
            if let Ok(mut hook) = hook.try_borrow_mut() {
                (*hook)(stage, position);
            }
        };
        shared.record_hooked(
            counting,
            call,
            |ring, class, record| {
                ring.push_hooked(kind, class, record, call_hook)
                    .map(|(_, fill)| fill)
            },
            call_hook,
        )
    }

    /// Test hook: [`Ring::record`] that calls `park` with the reserved position after the
    /// record bytes are stored and before the commit, on the calling thread; a `park` that
    /// blocks makes a producer stuck between reserve and commit. Not part of the API.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # use std::time::Duration;
    /// let ring = ringlat::Ring::builder(dir.path().join("p.ring")).kind(0, "op").create().unwrap();
    /// let mut parked_at = None;
    /// ring.record_parked(0, 1, 0, Duration::from_micros(5), |position| parked_at = Some(position));
    /// assert!(parked_at.is_some());
    /// ```
    #[doc(hidden)]
    pub fn record_parked(
        &self,
        kind: u8,
        trace_id: u64,
        status: u8,
        delta: Duration,
        mut park: impl FnMut(u32),
    ) -> Outcome {
        self.record_hooked(kind, trace_id, status, delta, None, |stage, position| {
            if stage == ringlat_ring::PushStage::Written {
                park(position);
            }
        })
    }

    /// Publishes the counters to the header and flushes synchronously (`msync(MS_SYNC)`);
    /// afterwards the header's counters account for every call that happened before, and its
    /// durable position covers every committed record.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # use std::time::Duration;
    /// let ring = ringlat::Ring::builder(dir.path().join("fl.ring")).kind(0, "op").create().unwrap();
    /// ring.record(0, 1, 0, Duration::from_micros(5));
    /// ring.flush().unwrap();
    /// ```
    pub fn flush(&self) -> Result<(), Error> {
        self.shared().flush_now()
    }

    /// Closes this handle; when it is the last one, stops the background thread, flushes,
    /// marks the file closed and reports any error of that final flush (dropping does the same
    /// silently).
    pub fn close(self) -> Result<(), Error> {
        match Arc::try_unwrap(self.writer) {
            Ok(mut writer) => writer.shutdown(),
            Err(_) => Ok(()),
        }
    }

    /// Number of slots.
    pub fn capacity(&self) -> u32 {
        self.shared().ring.capacity()
    }

    /// Whether the circuit breaker is open (records are being dropped).
    pub fn breaker_open(&self) -> bool {
        self.shared().breaker_is_open()
    }

    /// Runs one period of the background thread's work now, on the calling thread (tests
    /// that need the breaker or the rates to move at a known instant).
    #[doc(hidden)]
    pub fn run_background_tick(&self) -> Result<(), Error> {
        self.shared()
            .tick()
            .map_err(self.shared().io_error("flushing (msync)"))
    }
}

/// The single-producer handle: one thread records, without CAS contention with other
/// producers and with thread-exclusive counters. `Send` (it may move to the producing
/// thread) but neither `Clone` nor `Sync`.
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
    producer: RefCell<SingleProducer>,
    writer: Writer,
}

impl std::fmt::Debug for SingleProducerRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SingleProducerRing")
            .field("capacity", &self.capacity())
            .finish()
    }
}

impl SingleProducerRing {
    pub(crate) fn from_shared(shared: Shared) -> Result<Self, Error> {
        let producer = RefCell::new(SingleProducer::attach(&shared.ring));
        Ok(SingleProducerRing {
            producer,
            writer: Writer::start(shared)?,
        })
    }

    /// Records one latency sample; same contract as [`Ring::record`].
    #[inline]
    pub fn record(&self, kind: u8, trace_id: u64, status: u8, delta: Duration) -> Outcome {
        self.record_inner(kind, trace_id, status, delta, None)
    }

    /// Records with the caller's timestamp; same contract as [`Ring::record_at`].
    #[inline]
    pub fn record_at(
        &self,
        kind: u8,
        trace_id: u64,
        status: u8,
        delta: Duration,
        nanotime: u64,
    ) -> Outcome {
        self.record_inner(kind, trace_id, status, delta, Some(nanotime))
    }

    #[inline]
    fn record_inner(
        &self,
        kind: u8,
        trace_id: u64,
        status: u8,
        delta: Duration,
        nanotime: Option<u64>,
    ) -> Outcome {
        self.record_call(Call {
            kind,
            trace_id,
            status,
            delta,
            nanotime,
            from_clock: false,
        })
    }

    pub(crate) fn shared(&self) -> &Shared {
        self.writer.shared()
    }

    /// One call, every field given; see [`Ring::record_call`].
    #[inline]
    pub(crate) fn record_call(&self, call: Call) -> Outcome {
        let kind = call.kind;
        self.writer
            .shared()
            .record(Counting::Exclusive, call, |ring, class, record| {
                // The handle is not Sync and `record` does not re-enter itself, so the borrow
                // cannot be held already; if it somehow were, the record is dropped, not panicked.
                match self.producer.try_borrow_mut() {
                    Ok(mut producer) => producer
                        .push_with_fill(ring, kind, class, record)
                        .map(|(_, fill)| fill),
                    Err(_) => Err(ringlat_ring::PushError::NotSingle),
                }
            })
    }

    /// Publishes the counters and flushes synchronously; see [`Ring::flush`].
    pub fn flush(&self) -> Result<(), Error> {
        self.writer.shared().flush_now()
    }

    /// Stops the background thread, flushes and marks the file closed, reporting errors.
    pub fn close(mut self) -> Result<(), Error> {
        self.writer.shutdown()
    }

    /// Number of slots.
    pub fn capacity(&self) -> u32 {
        self.writer.shared().ring.capacity()
    }

    /// Whether the circuit breaker is open.
    pub fn breaker_open(&self) -> bool {
        self.writer.shared().breaker_is_open()
    }
}
