//! What every handle of one ring shares: the ring over the mapping, the sampling tables, the
//! breaker, the striped counters, and the cold state the background thread works on.

use crate::clock::Anchor;
use crate::policy::{Decision, Overflow, Policy};
use crate::sampler::{Classes, random_draw, trace_hash};
use crate::stripes::{EXTRA_OVERWRITTEN, Stripes};
use crate::{Error, Outcome};
use crossbeam_utils::CachePadded;
use memmap2::MmapMut;
use ringlat_format::{DeltaUnit, GlobalCounter, KindCounter, Record};
use ringlat_ring::{PushError, PushStage, RegionStorage};
use std::fs::File;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

/// Dense index of an unconfigured kind.
const UNCONFIGURED: u16 = u16::MAX;

/// Whose counters a call adds to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Counting {
    /// A multi-producer thread's stripe (owned by the thread, or the shared one).
    Stripe(usize),
    /// The single producer's own stripe.
    Exclusive,
}

/// The arguments of one `record`/`record_at` call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Call {
    pub kind: u8,
    pub trace_id: u64,
    pub status: u8,
    pub delta: Duration,
    /// The caller's timestamp (`record_at`), or `None`: read the clock.
    pub nanotime: Option<u64>,
    /// `nanotime` was read from this ring's own clock (a timer guard's start), so it is not
    /// checked against the maximum skew: a request may take longer than the skew.
    pub from_clock: bool,
}

/// What the write path needs of a call that survived the decisions (built only then).
#[derive(Debug, Clone, Copy)]
struct Stamp {
    trace_id: u64,
    status: u8,
    kind: u8,
    class: u8,
    nanotime: Option<u64>,
}

/// One configured kind, for the background thread.
#[derive(Debug, Clone)]
pub(crate) struct ConfiguredKind {
    pub kind: u8,
    pub dense: usize,
    /// Calls per second above which the rate is degraded, 0 = never.
    pub load_threshold: u64,
    /// Class of each degradation level.
    pub levels: Vec<u8>,
}

pub(crate) struct Shared {
    // Hot: read by every `record`. Declared before `map`: the storage points into the mapping,
    // so it must drop first.
    pub(crate) ring: ringlat_ring::Ring<RegionStorage>,
    dense: [u16; 256],
    class_now: [AtomicU8; 256],
    thresholds: [u64; 256],
    /// Keep-if-slow bound in nanoseconds (`u64::MAX`: none, as is a bound past 584 years),
    /// compared with each call's delta.
    keep_if_slower_ns: u64,
    decision: Decision,
    overflow: Overflow,
    low_water: u32,
    breaker_open: CachePadded<AtomicBool>,
    stripes: Stripes,
    histograms: crate::population::Histograms,
    unit: DeltaUnit,
    anchor: Anchor,
    max_skew_ns: u64,
    // Cold: background thread, flush, close.
    pub(crate) high_water: u32,
    pub(crate) kinds: Vec<ConfiguredKind>,
    pub(crate) policy: Policy,
    pub(crate) path: PathBuf,
    pub(crate) cold: Mutex<crate::background::ColdState>,
    pub(crate) map: MmapMut,
    _file: File, // holds the writer lock (flock) until the last handle is gone
}

/// Everything `Shared::new` needs, gathered by the builder.
pub(crate) struct SharedParts {
    pub ring: ringlat_ring::Ring<RegionStorage>,
    pub configured: Vec<u8>,
    pub classes: Classes,
    pub load_thresholds: [u64; 256],
    pub policy: Policy,
    pub unit: DeltaUnit,
    pub anchor: Anchor,
    pub map: MmapMut,
    pub file: File,
    pub path: PathBuf,
    /// Population histograms on (the builder's option).
    pub histograms: bool,
}

impl Shared {
    pub(crate) fn new(parts: SharedParts) -> Self {
        let mut dense = [UNCONFIGURED; 256];
        let class_now = std::array::from_fn(|_| AtomicU8::new(0));
        let mut kinds = Vec::new();
        for (index, kind) in parts.configured.iter().enumerate() {
            dense[*kind as usize] = index as u16;
            let levels = parts.classes.levels[*kind as usize].clone();
            if let Some(base) = levels.first() {
                // Relaxed: not shared yet.
                class_now[*kind as usize].store(*base, Ordering::Relaxed);
            }
            kinds.push(ConfiguredKind {
                kind: *kind,
                dense: index,
                load_threshold: parts.load_thresholds[*kind as usize],
                levels,
            });
        }
        let capacity = parts.ring.capacity();
        let (low_water, high_water) = parts.policy.water_marks_for(capacity);
        let start = parts.ring.positions().1;
        Shared {
            ring: parts.ring,
            dense,
            class_now,
            thresholds: parts.classes.thresholds,
            keep_if_slower_ns: parts.policy.keep_if_slower.map_or(u64::MAX, nanos_of),
            decision: parts.policy.decision,
            overflow: parts.policy.overflow,
            low_water,
            breaker_open: CachePadded::new(AtomicBool::new(false)),
            stripes: Stripes::new(parts.configured.len()),
            histograms: crate::population::Histograms::new(if parts.histograms {
                parts.configured.len()
            } else {
                0
            }),
            unit: parts.unit,
            anchor: parts.anchor,
            max_skew_ns: u64::try_from(parts.policy.max_skew.as_nanos()).unwrap_or(u64::MAX),
            high_water,
            cold: Mutex::new(crate::background::ColdState::new(
                start,
                parts.configured.len(),
            )),
            kinds,
            policy: parts.policy,
            path: parts.path,
            map: parts.map,
            _file: parts.file,
        }
    }

    pub(crate) fn stripes(&self) -> &Stripes {
        &self.stripes
    }

    pub(crate) fn histograms(&self) -> &crate::population::Histograms {
        &self.histograms
    }

    pub(crate) fn anchor(&self) -> &Anchor {
        &self.anchor
    }

    #[inline]
    fn count(&self, counting: Counting, dense: usize, counter: KindCounter) {
        match counting {
            Counting::Stripe(stripe) => self.stripes.add(stripe, dense, counter),
            Counting::Exclusive => self.stripes.add(0, dense, counter),
        }
    }

    #[inline]
    fn count_overwritten(&self, counting: Counting) {
        match counting {
            Counting::Stripe(stripe) => self.stripes.add_extra(stripe, EXTRA_OVERWRITTEN),
            Counting::Exclusive => self.stripes.add_extra(0, EXTRA_OVERWRITTEN),
        }
    }

    /// Counts a call of a kind nobody configured, straight into the header (bad input is rare
    /// and has no stripe).
    #[cold]
    fn reject_unconfigured(&self, kind: u8) -> Outcome {
        if let Some(cell) = self
            .ring
            .storage()
            .u64_at(KindCounter::Rejected.offset(kind))
        {
            // Relaxed: a statistic; the background thread never writes unconfigured kinds.
            cell.fetch_add(1, Ordering::Relaxed);
        }
        Outcome::Rejected
    }

    /// Converts a latency (`nanos`, saturated at `u64::MAX` by [`nanos_of`]) to the file's
    /// unit, rounded to nearest (half up: a 400 ns call is 0 us, a 500 ns one 1 us, where
    /// truncation made every sub-unit call 0), saturating; the flag says it saturated.
    #[inline]
    fn to_units(&self, nanos: u64) -> (i32, bool) {
        // In u64 (a multiply by a constant, no 128-bit division): `nanos + 500` cannot wrap
        // to a small value because anything near u64::MAX saturates i32 anyway.
        let units = match self.unit {
            DeltaUnit::Nanos => nanos,
            DeltaUnit::Micros => nanos.saturating_add(500) / 1_000,
            DeltaUnit::Millis => nanos.saturating_add(500_000) / 1_000_000,
        };
        match i32::try_from(units) {
            Ok(units) => (units, false),
            Err(_) => (i32::MAX, true),
        }
    }

    /// The sampling class to record under, or `None` when the call is sampled out.
    #[inline]
    fn sample(&self, kind: u8, trace_id: u64, nanos: u64) -> Option<u8> {
        // `u64::MAX` means no keep-if-slow bound (tested second: the first test is rarely true).
        if nanos >= self.keep_if_slower_ns && self.keep_if_slower_ns != u64::MAX {
            return Some(0);
        }
        // Relaxed: the background thread changes the class; any recent value is fine, and the
        // class stored with the record is the one the decision used.
        let class = self.class_now[kind as usize].load(Ordering::Relaxed);
        let threshold = self.thresholds[class as usize];
        if threshold == u64::MAX {
            return Some(class);
        }
        let draw = match self.decision {
            Decision::Random => random_draw(),
            Decision::TraceId => trace_hash(trace_id),
        };
        (draw <= threshold).then_some(class)
    }

    /// Opens the breaker if it was closed; counts the trip.
    #[cold]
    fn trip(&self) {
        // Relaxed: the flag only gates producers; the header mirror is for readers.
        if !self.breaker_open.swap(true, Ordering::Relaxed) {
            self.store_breaker_state(true);
            if let Some(trips) = self
                .ring
                .storage()
                .u64_at(GlobalCounter::BreakerTrips.offset())
            {
                // Relaxed: a statistic.
                trips.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub(crate) fn breaker_is_open(&self) -> bool {
        // Relaxed: a status read.
        self.breaker_open.load(Ordering::Relaxed)
    }

    pub(crate) fn close_breaker(&self) {
        // Relaxed: see `trip`.
        self.breaker_open.store(false, Ordering::Relaxed);
        self.store_breaker_state(false);
    }

    /// Re-stores the header's breaker mirror from the flag (each background tick), so that a
    /// trip racing a close cannot leave the mirror saying the opposite of the breaker.
    pub(crate) fn mirror_breaker(&self) {
        self.store_breaker_state(self.breaker_is_open());
    }

    fn store_breaker_state(&self, open: bool) {
        if let Some(state) = self.ring.storage().u32_at(ringlat_format::BREAKER_STATE) {
            // Relaxed: a status for readers.
            state.store(u32::from(open), Ordering::Relaxed);
        }
    }

    /// Sets the class in force for `kind` (background thread).
    pub(crate) fn set_class(&self, kind: u8, class: u8) {
        // Relaxed: see `sample`.
        self.class_now[kind as usize].store(class, Ordering::Relaxed);
    }

    /// Everything `record` does. `push` pushes in break mode and returns the fill after it.
    #[inline]
    pub(crate) fn record(
        &self,
        counting: Counting,
        call: Call,
        push: impl FnOnce(&ringlat_ring::Ring<RegionStorage>, u8, &Record) -> Result<u32, PushError>,
    ) -> Outcome {
        self.record_hooked(counting, call, push, |_, _| {})
    }

    /// [`Shared::record`] with the ring's test hook (called after the reservation and before
    /// the commit; overwrite mode only, as break mode goes through `push`).
    ///
    /// The front, inlined into every caller: the decisions that end most calls that write
    /// nothing (sampled out, breaker open, rejected) stay in the caller's frame, without the
    /// register saves of the write path, which is [`Shared::write`].
    #[inline(always)]
    pub(crate) fn record_hooked(
        &self,
        counting: Counting,
        call: Call,
        push: impl FnOnce(&ringlat_ring::Ring<RegionStorage>, u8, &Record) -> Result<u32, PushError>,
        hook: impl FnMut(PushStage, u32),
    ) -> Outcome {
        let dense = self.dense[call.kind as usize];
        if dense == UNCONFIGURED {
            return self.reject_unconfigured(call.kind);
        }
        let dense = usize::from(dense);
        if let Some(nanotime) = call.nanotime
            && !call.from_clock
            && nanotime.abs_diff(self.anchor.unix_now()) > self.max_skew_ns
        {
            self.count(counting, dense, KindCounter::Rejected);
            return Outcome::Rejected;
        }
        let nanos = nanos_of(call.delta);
        self.histograms.add(counting, dense, nanos);
        let Some(class) = self.sample(call.kind, call.trace_id, nanos) else {
            self.count(counting, dense, KindCounter::SampledOut);
            return Outcome::SampledOut;
        };
        // Relaxed: the one load an open breaker costs; see `trip`. (Only break mode trips it.)
        if self.overflow == Overflow::Break && self.breaker_open.load(Ordering::Relaxed) {
            self.count(counting, dense, KindCounter::DroppedBreaker);
            return Outcome::Dropped;
        }
        let stamp = Stamp {
            trace_id: call.trace_id,
            status: call.status,
            kind: call.kind,
            class,
            nanotime: call.nanotime,
        };
        self.write(counting, dense, nanos, stamp, push, hook)
    }

    /// The write path of [`Shared::record_hooked`]: timestamp, push (or overwrite), count.
    #[inline]
    fn write(
        &self,
        counting: Counting,
        dense: usize,
        nanos: u64,
        call: Stamp,
        push: impl FnOnce(&ringlat_ring::Ring<RegionStorage>, u8, &Record) -> Result<u32, PushError>,
        hook: impl FnMut(PushStage, u32),
    ) -> Outcome {
        let (units, saturated) = self.to_units(nanos);
        let nanotime = call.nanotime.unwrap_or_else(|| self.anchor.unix_now());
        let record = Record::new(call.trace_id, nanotime, call.status, units);
        let class = call.class;
        let written = match self.overflow {
            Overflow::Break => match push(&self.ring, class, &record) {
                Ok(fill) => {
                    if self.ring.capacity() - fill < self.low_water {
                        self.trip();
                    }
                    true
                }
                Err(PushError::Full) => {
                    self.trip();
                    false
                }
                // Given up (the consumer unblocked us while we were stuck, or the slot was
                // held by a stuck producer), or a single producer misused: dropped.
                Err(PushError::Lost { .. } | PushError::NotSingle) => false,
            },
            Overflow::Overwrite => {
                let pushed = self
                    .ring
                    .push_overwriting_hooked(call.kind, class, &record, hook);
                let (written, overwrote) = match pushed {
                    Ok(done) => (true, done.overwrote),
                    Err(busy) => (false, busy.overwrote),
                };
                if overwrote {
                    self.count_overwritten(counting);
                }
                written
            }
        };
        if written {
            self.count(counting, dense, KindCounter::Written);
            if saturated {
                self.count(counting, dense, KindCounter::Saturated);
            }
            Outcome::Written
        } else {
            self.count(counting, dense, KindCounter::DroppedFull);
            Outcome::Dropped
        }
    }

    pub(crate) fn io_error(
        &self,
        what: &'static str,
    ) -> impl FnOnce(std::io::Error) -> Error + use<> {
        let path = self.path.clone();
        move |source| Error::Io { path, what, source }
    }
}

/// A latency in nanoseconds, saturated at `u64::MAX` (584 years): computed once per call for
/// the histogram, the keep-if-slow test and the unit conversion.
#[inline]
pub(crate) fn nanos_of(delta: Duration) -> u64 {
    u64::try_from(delta.as_nanos()).unwrap_or(u64::MAX)
}
