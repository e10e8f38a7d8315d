//! The timer guard: `let t = ring.start(kind, trace_id); ...; t.finish(status)`.
//!
//! One clock read when the guard starts and one when it finishes; the record's `nanotime` is the
//! start (the request's arrival, as a timeline wants) and its `delta` the time in between.

use crate::clock::monotonic_ns;
use crate::shared::{Call, Shared};
use crate::{Outcome, Ring, SingleProducerRing};
use std::time::Duration;

/// The status a guard records when it is dropped without [`Timer::finish`]: an early return,
/// a `?`, a panic unwinding through it, or a future cancelled at an `.await` (a timeout, a
/// `select!` that lost). Those are the requests a latency tail must not lose, so they are
/// recorded, under a status of their own, rather than silently forgotten; call
/// [`Timer::discard`] to record nothing.
pub const STATUS_ABANDONED: u8 = u8::MAX;

pub(crate) mod sealed {
    use crate::Outcome;

    /// What a [`Recorder`](super::Recorder) can do; private, so the trait stays sealed.
    pub trait Sealed {
        /// The ring's clock anchor: (UNIX ns, monotonic ns) read at the same instant.
        fn anchor_pair(&self) -> (u64, u64);
        /// `record_at` with a nanotime read from this ring's own clock (no skew check).
        fn record_clocked(
            &self,
            kind: u8,
            trace_id: u64,
            status: u8,
            delta: std::time::Duration,
            nanotime: u64,
        ) -> Outcome;
        /// `record` (timestamped now).
        fn record_now(
            &self,
            kind: u8,
            trace_id: u64,
            status: u8,
            delta: std::time::Duration,
        ) -> Outcome;
    }
}

/// The ring handles a [`Timer`] or a [`KindHandle`](crate::KindHandle) records into: [`Ring`]
/// and [`SingleProducerRing`] (and references to them). Sealed.
pub trait Recorder: sealed::Sealed {}

fn clocked(kind: u8, trace_id: u64, status: u8, delta: Duration, nanotime: u64) -> Call {
    Call {
        kind,
        trace_id,
        status,
        delta,
        nanotime: Some(nanotime),
        from_clock: true,
    }
}

fn anchor_pair(shared: &Shared) -> (u64, u64) {
    let anchor = shared.anchor();
    (anchor.unix_ns, anchor.mono_ns)
}

impl sealed::Sealed for Ring {
    #[inline]
    fn anchor_pair(&self) -> (u64, u64) {
        anchor_pair(self.shared())
    }
    #[inline]
    fn record_clocked(
        &self,
        kind: u8,
        trace_id: u64,
        status: u8,
        delta: Duration,
        nanotime: u64,
    ) -> Outcome {
        self.record_call(clocked(kind, trace_id, status, delta, nanotime))
    }
    #[inline]
    fn record_now(&self, kind: u8, trace_id: u64, status: u8, delta: Duration) -> Outcome {
        self.record(kind, trace_id, status, delta)
    }
}
impl Recorder for Ring {}

impl sealed::Sealed for SingleProducerRing {
    #[inline]
    fn anchor_pair(&self) -> (u64, u64) {
        anchor_pair(self.shared())
    }
    #[inline]
    fn record_clocked(
        &self,
        kind: u8,
        trace_id: u64,
        status: u8,
        delta: Duration,
        nanotime: u64,
    ) -> Outcome {
        self.record_call(clocked(kind, trace_id, status, delta, nanotime))
    }
    #[inline]
    fn record_now(&self, kind: u8, trace_id: u64, status: u8, delta: Duration) -> Outcome {
        self.record(kind, trace_id, status, delta)
    }
}
impl Recorder for SingleProducerRing {}

impl<R: Recorder> sealed::Sealed for &R {
    #[inline]
    fn anchor_pair(&self) -> (u64, u64) {
        (**self).anchor_pair()
    }
    #[inline]
    fn record_clocked(
        &self,
        kind: u8,
        trace_id: u64,
        status: u8,
        delta: Duration,
        nanotime: u64,
    ) -> Outcome {
        (**self).record_clocked(kind, trace_id, status, delta, nanotime)
    }
    #[inline]
    fn record_now(&self, kind: u8, trace_id: u64, status: u8, delta: Duration) -> Outcome {
        (**self).record_now(kind, trace_id, status, delta)
    }
}
impl<R: Recorder> Recorder for &R {}

/// A running measurement of one operation, made by [`Ring::start`], [`Ring::start_owned`],
/// [`SingleProducerRing::start`] or [`KindHandle::start`](crate::KindHandle::start).
///
/// [`Timer::finish`] records it: `nanotime` = when the guard started, `delta` = the time since
/// (it is rounded to the ring's unit like every delta). Dropped without `finish`, it records
/// with [`STATUS_ABANDONED`]; [`Timer::discard`] records nothing. The guard holds a reference (or
/// a ring clone) and three integers: starting and finishing it allocates nothing, and reads the clock
/// (`CLOCK_MONOTONIC`, vDSO) once each. It may be held across `.await` points; it is `Send`
/// when the ring handle is `Sync` ([`Ring`]).
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// let ring = ringlat::Ring::builder(dir.path().join("t.ring")).kind(0, "market").create().unwrap();
/// let t = ring.start(0, 0xC0FFEE);
/// // ... the operation ...
/// assert_eq!(t.finish(0), ringlat::Outcome::Written);
/// ```
#[must_use = "a timer records when it is finished (or dropped: with STATUS_ABANDONED)"]
#[derive(Debug)]
pub struct Timer<R: Recorder> {
    ring: R,
    kind: u8,
    trace_id: u64,
    start_mono_ns: u64,
    done: bool,
}

impl<R: Recorder> Timer<R> {
    /// Starts timing now (one clock read).
    #[inline]
    pub(crate) fn new(ring: R, kind: u8, trace_id: u64) -> Self {
        Timer {
            ring,
            kind,
            trace_id,
            start_mono_ns: monotonic_ns(),
            done: false,
        }
    }

    /// Records the operation with `status` (one clock read): `nanotime` is the start, `delta`
    /// the time elapsed since. Same contract and counters as [`Ring::record`].
    #[inline]
    pub fn finish(mut self, status: u8) -> Outcome {
        self.done = true;
        self.record(status)
    }

    /// Drops the measurement without recording anything (e.g. a request that turned out not
    /// to be one). Nothing is counted either: the call never happened.
    #[inline]
    pub fn discard(mut self) {
        self.done = true;
    }

    /// The operation kind this guard records under.
    pub fn kind(&self) -> u8 {
        self.kind
    }

    /// The trace id this guard records under.
    pub fn trace_id(&self) -> u64 {
        self.trace_id
    }

    /// Replaces the trace id (known only once the request is parsed, say).
    pub fn set_trace_id(&mut self, trace_id: u64) {
        self.trace_id = trace_id;
    }

    /// Time since the guard started (reads the clock; `finish` does not use it).
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(monotonic_ns().saturating_sub(self.start_mono_ns))
    }

    #[inline]
    fn record(&self, status: u8) -> Outcome {
        let end_mono_ns = monotonic_ns();
        let (anchor_unix_ns, anchor_mono_ns) = self.ring.anchor_pair();
        // The same mapping as every record's nanotime (clock.rs), at the start instant.
        let nanotime = anchor_unix_ns.wrapping_add(self.start_mono_ns.wrapping_sub(anchor_mono_ns));
        let delta = Duration::from_nanos(end_mono_ns.saturating_sub(self.start_mono_ns));
        self.ring
            .record_clocked(self.kind, self.trace_id, status, delta, nanotime)
    }
}

impl<R: Recorder> Drop for Timer<R> {
    /// Records with [`STATUS_ABANDONED`] unless the guard was finished or discarded.
    fn drop(&mut self) {
        if !self.done {
            self.record(STATUS_ABANDONED);
        }
    }
}

impl Ring {
    /// Starts a [`Timer`] for one operation of `kind` for request `trace_id`.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let ring = ringlat::Ring::builder(dir.path().join("s.ring")).kind(1, "limit").create().unwrap();
    /// let t = ring.start(1, 42);
    /// t.finish(0);
    /// ```
    #[inline]
    pub fn start(&self, kind: u8, trace_id: u64) -> Timer<&Ring> {
        Timer::new(self, kind, trace_id)
    }

    /// [`Ring::start`] with a guard that owns a clone of this handle (`'static`, to keep in a
    /// struct or a span's extensions); the clone is one atomic increment, no allocation.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let ring = ringlat::Ring::builder(dir.path().join("o.ring")).kind(1, "limit").create().unwrap();
    /// let t: ringlat::Timer<ringlat::Ring> = ring.start_owned(1, 42);
    /// drop(ring);
    /// t.finish(0);
    /// ```
    #[inline]
    pub fn start_owned(&self, kind: u8, trace_id: u64) -> Timer<Ring> {
        Timer::new(self.clone(), kind, trace_id)
    }
}

impl SingleProducerRing {
    /// Starts a [`Timer`]; see [`Ring::start`].
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let ring = ringlat::Ring::builder(dir.path().join("s.ring")).kind(1, "limit")
    ///     .create_single_producer().unwrap();
    /// let t = ring.start(1, 42);
    /// t.finish(0);
    /// ```
    #[inline]
    pub fn start(&self, kind: u8, trace_id: u64) -> Timer<&SingleProducerRing> {
        Timer::new(self, kind, trace_id)
    }
}
