//! The writer's policies and live status as the header states them: breaker, rates in
//! force, heartbeat, durable position, flush mode.

use crate::RingFile;
use ringlat_format::{
    BREAKER_HIGH_WATER, BREAKER_LOW_WATER, BREAKER_STATE, DECISION, DECISION_TRACE_ID,
    DEGRADE_FACTOR, DEGRADE_FLOOR, DURABLE_POSITION, DURABLE_VALID, FLUSH_EVERY, FLUSH_INTERVAL_NS,
    FLUSH_MODE, GlobalCounter, HEARTBEAT_UNIX_NS, KEEP_IF_SLOW_NS, KindField, MAX_SKEW_NS, TICK_NS,
};

/// The circuit breaker as the header shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerStatus {
    /// Open: the writer is dropping records.
    pub open: bool,
    /// Trips when free slots fall below this.
    pub low_water: u32,
    /// Closes when free slots rise above this.
    pub high_water: u32,
    /// Times it opened.
    pub trips: u64,
}

/// The sampling rates of one kind.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KindRates {
    /// Configured rate.
    pub base: f64,
    /// Rate in force now (lower than `base` while degraded).
    pub current: f64,
    /// Calls per second over the writer's last rate window.
    pub calls_per_second: u64,
    /// Load above which the rate is degraded, if any.
    pub degrade_above: Option<u64>,
}

/// How the writer flushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushMode {
    /// `msync(MS_ASYNC)` each tick: survives a writer crash, not an OS crash.
    Async,
    /// `msync(MS_SYNC)` every this many nanoseconds; the durable position is kept.
    Every(u64),
}

/// The writer's global settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WriterPolicy {
    /// Flight-recorder mode: the newest records overwrite the oldest.
    pub overwrite: bool,
    /// Sampling decisions come from the trace id (consistent across processes).
    pub trace_id_decision: bool,
    /// Calls at least this slow (ns) are always kept.
    pub keep_if_slow_ns: Option<u64>,
    /// Degradation factor and floor.
    pub degrade_factor: f64,
    /// Lowest rate degradation goes to.
    pub degrade_floor: f64,
    /// Flush mode.
    pub flush: FlushMode,
    /// Background period (ns).
    pub tick_ns: u64,
    /// Skew `record_at` accepts (ns).
    pub max_skew_ns: u64,
}

impl RingFile {
    /// A global counter.
    ///
    /// ```no_run
    /// # let file = ringlat_read::RingFile::open("x.ring").unwrap();
    /// let trips = file.global(ringlat_format::GlobalCounter::BreakerTrips);
    /// ```
    pub fn global(&self, counter: GlobalCounter) -> u64 {
        self.header_u64(counter.offset())
    }

    /// UNIX-epoch nanoseconds of the writer's last heartbeat, if it has beaten.
    pub fn heartbeat_unix_ns(&self) -> Option<u64> {
        Some(self.header_u64(HEARTBEAT_UNIX_NS)).filter(|ns| *ns != 0)
    }

    /// Records before this position that are still in the ring are on stable storage (the
    /// last completed synchronous flush), if one completed.
    pub fn durable_position(&self) -> Option<u32> {
        let word = self.header_u64(DURABLE_POSITION);
        (word & DURABLE_VALID != 0).then_some(word as u32)
    }

    /// The writer's settings.
    pub fn policy(&self) -> WriterPolicy {
        let f64_at = |offset| f64::from_bits(self.header_u64(offset));
        WriterPolicy {
            overwrite: self.overwrite,
            trace_id_decision: self.header_u32(DECISION) == DECISION_TRACE_ID,
            keep_if_slow_ns: Some(self.header_u64(KEEP_IF_SLOW_NS)).filter(|ns| *ns != 0),
            degrade_factor: f64_at(DEGRADE_FACTOR),
            degrade_floor: f64_at(DEGRADE_FLOOR),
            flush: if self.header_u32(FLUSH_MODE) == FLUSH_EVERY {
                FlushMode::Every(self.header_u64(FLUSH_INTERVAL_NS))
            } else {
                FlushMode::Async
            },
            tick_ns: self.header_u64(TICK_NS),
            max_skew_ns: self.header_u64(MAX_SKEW_NS),
        }
    }

    /// The circuit breaker, or `None` for an overwrite-mode ring (which has none).
    pub fn breaker(&self) -> Option<BreakerStatus> {
        if self.overwrite {
            return None;
        }
        Some(BreakerStatus {
            open: self.header_u32(BREAKER_STATE) != 0,
            low_water: self.header_u32(BREAKER_LOW_WATER),
            high_water: self.header_u32(BREAKER_HIGH_WATER),
            trips: self.global(GlobalCounter::BreakerTrips),
        })
    }

    /// The rates of `kind`.
    pub fn kind_rates(&self, kind: u8) -> KindRates {
        let class = self.header_u32(KindField::CurrentClass.offset(kind));
        KindRates {
            base: f64::from_bits(self.header_u64(KindField::BaseProbability.offset(kind))),
            // Checked at open: a configured kind's class is in use (an unused one reads 0).
            current: u8::try_from(class).map_or(0.0, |c| self.class_probability(c)),
            calls_per_second: self.header_u64(KindField::CallsPerSecond.offset(kind)),
            degrade_above: Some(self.header_u64(KindField::LoadThreshold.offset(kind)))
                .filter(|n| *n != 0),
        }
    }
}
