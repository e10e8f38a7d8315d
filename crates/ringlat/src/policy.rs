//! The settings that make the ring a sampler: per-kind rates, load degradation, keep-if-slow,
//! decision source, overflow policy and flushing.

use std::time::Duration;

/// Where the keep/drop decision of a sampled kind comes from.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// use ringlat::Decision;
/// let ring = ringlat::Ring::builder(dir.path().join("d.ring"))
///     .kind(1, "limit").rate(1, 0.1)
///     .decision(Decision::TraceId) // every process keeps the same traces
///     .create().unwrap();
/// # drop(ring);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Decision {
    /// A fast per-thread pseudo-random generator (SplitMix64: one add and the
    /// [`trace_hash`](crate::trace_hash) mix), seeded without a system call. The default.
    #[default]
    Random,
    /// A hash of the trace id against the rate's threshold: every process sampling the same
    /// trace decides the same way, and a higher rate keeps a superset of what a lower one
    /// keeps. The hash is the SplitMix64 finalizer (see [`trace_hash`](crate::trace_hash)).
    TraceId,
}

/// What `record` does when the ring is (nearly) full.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// use ringlat::Overflow;
/// let recorder = ringlat::Ring::builder(dir.path().join("flight.ring"))
///     .capacity(1024).kind(0, "op")
///     .overflow(Overflow::Overwrite) // the newest 1024 records survive, no consumer needed
///     .create().unwrap();
/// # drop(recorder);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// A circuit breaker (the default): it trips when free slots fall below the low-water mark;
    /// while open, `record` returns `Dropped` after one relaxed load; the background thread
    /// closes it once free slots rise above the high-water mark.
    #[default]
    Break,
    /// Flight recorder: when full, the newest record overwrites the oldest. Readers detect
    /// overwritten slots by their stamps and count them.
    Overwrite,
}

/// How the mapped file is flushed by the background thread (never by `record`).
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// use ringlat::Flush;
/// use std::time::Duration;
/// let ring = ringlat::Ring::builder(dir.path().join("f.ring"))
///     .kind(0, "op")
///     .flush(Flush::Every(Duration::from_millis(100))) // the header says what is on disk
///     .create().unwrap();
/// # drop(ring);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Flush {
    /// `msync(MS_ASYNC)` of the dirty range each tick. On Linux this is only a hint (it has
    /// written nothing by itself since 2.6.19): records reach the file through the page cache
    /// anyway, so they survive a crash of the writer process, but not an OS crash or power
    /// loss. The default.
    #[default]
    Async,
    /// `msync(MS_SYNC)` of the dirty range every interval; once it returns, the header's
    /// durable position says which records are on stable storage.
    Every(Duration),
}

/// Per-kind sampling settings, as the builder collects them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct KindSettings {
    pub rate: f64,
    /// Calls per second above which the rate is degraded; `None` = never.
    pub degrade_above: Option<u64>,
}

impl Default for KindSettings {
    fn default() -> Self {
        KindSettings {
            rate: 1.0,
            degrade_above: None,
        }
    }
}

/// Global policy settings, as the builder collects them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Policy {
    pub decision: Decision,
    pub keep_if_slower: Option<Duration>,
    pub degrade_factor: f64,
    pub degrade_floor: f64,
    pub overflow: Overflow,
    /// `(low, high)` free-slot marks; `None` = capacity/16 and capacity/2.
    pub water_marks: Option<(u32, u32)>,
    pub flush: Flush,
    pub tick: Duration,
    pub rate_window: Duration,
    pub max_skew: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            decision: Decision::Random,
            keep_if_slower: None,
            degrade_factor: 0.5,
            degrade_floor: 0.001,
            overflow: Overflow::Break,
            water_marks: None,
            flush: Flush::Async,
            tick: Duration::from_millis(10),
            rate_window: Duration::from_secs(1),
            max_skew: Duration::from_millis(50),
        }
    }
}

impl Policy {
    /// The breaker's `(low, high)` free-slot marks for a ring of `capacity` slots.
    pub(crate) fn water_marks_for(&self, capacity: u32) -> (u32, u32) {
        self.water_marks
            .unwrap_or(((capacity / 16).max(1), capacity / 2))
    }
}
