//! Population histograms: the percentiles of every call, not only of the records kept.
//!
//! Stable read API (other tools build on it):
//!
//! * [`Histogram`]: one kind's log-linear histogram in nanoseconds (bucket scheme:
//!   [`ringlat_format::population`], docs/FORMAT.md "Population histograms"):
//!   [`Histogram::count`], [`Histogram::percentile`] (nearest rank, the bucket's midpoint, so
//!   within 1/256 of the true value), [`Histogram::count_above`], [`Histogram::buckets`]
//!   (`(low_ns, high_ns, count)` of every non-empty bucket, for Prometheus `le` series or an
//!   HdrHistogram export), [`Histogram::sum_ns`], [`Histogram::overflow`],
//!   [`Histogram::negative`]; [`Histogram::merge`] and [`Histogram::delta_since`] for
//!   intervals.
//! * [`KindPopulation`]: a kind's outcome counters beside its histogram, with
//!   [`KindPopulation::coverage`] (the share of calls the records represent).
//! * [`RingFile::population`]: every configured kind of a ring file, read live from its
//!   histogram area (`histogram` is `None` when the writer turned histograms off).
//!
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! # let path = dir.path().join("r.ring");
//! use std::time::Duration;
//! let ring = ringlat::Ring::builder(&path).kind(0, "op").rate(0, 0.5).create().unwrap();
//! for micros in 1..=1000 {
//!     ring.record(0, micros, 0, Duration::from_micros(micros));
//! }
//! ring.flush().unwrap();
//! let file = ringlat_read::RingFile::open(&path).unwrap();
//! let population = file.population();
//! let histogram = population[0].histogram.as_ref().unwrap();
//! assert_eq!(histogram.count(), 1000);
//! let p99 = histogram.percentile(0.99).unwrap();
//! assert!((p99.value_ns as f64 - 990_000.0).abs() <= 990_000.0 * 0.01);
//! assert_eq!(population[0].calls(), 1000);
//! ```

use crate::RingFile;
use ringlat_format::KindCounter;
use ringlat_format::population::{
    BLOCK_BUCKETS, BLOCK_KIND, BLOCK_NEGATIVE, BLOCK_OVERFLOW, BLOCK_SUM_NS, BUCKETS,
    MAX_TRACKED_NS, bucket_bounds, bucket_of, bucket_value,
};

/// A percentile read from a histogram: the bucket it falls in and the value reported.
///
/// Negative latencies report `0` with bounds `(0, 0)`; the overflow bucket reports its lower
/// bound 2^42 ns with `high_ns = u64::MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    /// The value reported: the bucket's midpoint (exact below 256 ns).
    pub value_ns: u64,
    /// Lower bound of the bucket (inclusive).
    pub low_ns: u64,
    /// Upper bound of the bucket (exclusive).
    pub high_ns: u64,
}

/// One kind's population histogram (nanoseconds).
///
/// ```
/// let mut h = ringlat_read::population::Histogram::default();
/// h.add_ns(1_000, 3);
/// assert_eq!(h.count(), 3);
/// assert_eq!(h.count_above(500), 3);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Histogram {
    counts: Vec<u64>,
    overflow: u64,
    negative: u64,
    sum_ns: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            overflow: 0,
            negative: 0,
            sum_ns: 0,
        }
    }
}

impl Histogram {
    /// A histogram from its parts: `counts` per bucket (missing buckets are 0, extra ones
    /// are ignored), the overflow and negative counts, and the sum of the bucketed values.
    pub fn from_parts(counts: &[u64], overflow: u64, negative: u64, sum_ns: u64) -> Self {
        let mut histogram = Histogram {
            overflow,
            negative,
            sum_ns,
            ..Histogram::default()
        };
        for (dst, src) in histogram.counts.iter_mut().zip(counts) {
            *dst = *src;
        }
        histogram
    }

    /// Adds `count` calls of `nanos` nanoseconds.
    pub fn add_ns(&mut self, nanos: u64, count: u64) {
        match bucket_of(nanos) {
            Some(bucket) => {
                self.counts[bucket] = self.counts[bucket].saturating_add(count);
                self.sum_ns = self.sum_ns.wrapping_add(nanos.wrapping_mul(count));
            }
            None => self.overflow = self.overflow.saturating_add(count),
        }
    }

    /// Calls counted: every bucket, overflow and negative.
    pub fn count(&self) -> u64 {
        self.counts
            .iter()
            .fold(self.overflow.saturating_add(self.negative), |a, b| {
                a.saturating_add(*b)
            })
    }

    /// Calls of 2^42 ns (about 73 minutes) or more.
    pub fn overflow(&self) -> u64 {
        self.overflow
    }

    /// Calls with a negative latency.
    pub fn negative(&self) -> u64 {
        self.negative
    }

    /// Sum in nanoseconds of the calls in buckets (not overflow, not negative), wrapping.
    pub fn sum_ns(&self) -> u64 {
        self.sum_ns
    }

    /// The raw count of every bucket, indexed like [`ringlat_format::population::bucket_of`].
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// `(low_ns, high_ns, count)` of each non-empty bucket, in increasing order (high
    /// exclusive); overflow and negative calls are not included.
    pub fn buckets(&self) -> impl Iterator<Item = (u64, u64, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, count)| **count > 0)
            .map(|(index, count)| {
                let (low, high) = bucket_bounds(index);
                (low, high, *count)
            })
    }

    /// The nearest-rank percentile `fraction` (0.0..=1.0): the smallest bucket whose cumulative
    /// count reaches `fraction` of the calls; `None` when empty.
    pub fn percentile(&self, fraction: f64) -> Option<Estimate> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        // A small tolerance so that 0.999 * 1000 is rank 999, not 1000.
        let rank = ((fraction.clamp(0.0, 1.0) * total as f64) - 1e-7)
            .ceil()
            .max(1.0) as u64;
        if rank <= self.negative {
            return Some(Estimate {
                value_ns: 0,
                low_ns: 0,
                high_ns: 0,
            });
        }
        let mut seen = self.negative;
        for (index, count) in self.counts.iter().enumerate() {
            seen = seen.saturating_add(*count);
            if seen >= rank {
                let (low_ns, high_ns) = bucket_bounds(index);
                return Some(Estimate {
                    value_ns: bucket_value(index),
                    low_ns,
                    high_ns,
                });
            }
        }
        Some(Estimate {
            value_ns: MAX_TRACKED_NS + 1,
            low_ns: MAX_TRACKED_NS + 1,
            high_ns: u64::MAX,
        })
    }

    /// Calls above `nanos`: the buckets whose lower bound is above it, plus overflow, plus
    /// the share of the bucket holding `nanos` that lies above it (rounded): exact to within
    /// one bucket.
    pub fn count_above(&self, nanos: u64) -> u64 {
        let Some(at) = bucket_of(nanos) else {
            return self.overflow;
        };
        let (low, high) = bucket_bounds(at);
        let partial = (self.counts[at] as u128 * u128::from(high - 1 - nanos)
            / u128::from(high - low)) as u64;
        self.counts[at + 1..]
            .iter()
            .fold(self.overflow.saturating_add(partial), |a, b| {
                a.saturating_add(*b)
            })
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Histogram) {
        for (dst, src) in self.counts.iter_mut().zip(&other.counts) {
            *dst = dst.saturating_add(*src);
        }
        self.overflow = self.overflow.saturating_add(other.overflow);
        self.negative = self.negative.saturating_add(other.negative);
        self.sum_ns = self.sum_ns.wrapping_add(other.sum_ns);
    }

    /// The calls counted since `earlier` (a cumulative histogram read before this one):
    /// each cell's difference, saturating at 0 (a cell that went down means another ring).
    pub fn delta_since(&self, earlier: &Histogram) -> Histogram {
        let mut delta = Histogram::default();
        for ((dst, now), before) in delta
            .counts
            .iter_mut()
            .zip(&self.counts)
            .zip(&earlier.counts)
        {
            *dst = now.saturating_sub(*before);
        }
        delta.overflow = self.overflow.saturating_sub(earlier.overflow);
        delta.negative = self.negative.saturating_sub(earlier.negative);
        delta.sum_ns = self.sum_ns.wrapping_sub(earlier.sum_ns);
        delta
    }
}

/// One kind's counters and population histogram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindPopulation {
    /// The kind id.
    pub kind: u8,
    /// Outcome counters, indexed like [`KindCounter::ALL`].
    pub counters: [u64; 6],
    /// The histogram of every call that was not rejected; `None` when the writer turned
    /// histograms off.
    pub histogram: Option<Histogram>,
}

impl KindPopulation {
    /// Every call: written + sampled out + dropped + rejected.
    pub fn calls(&self) -> u64 {
        KindCounter::calls_of(&self.counters)
    }

    /// One counter.
    pub fn get(&self, counter: KindCounter) -> u64 {
        self.counters[counter.index()]
    }

    /// Calls the breaker or a full ring dropped (given-up positions included).
    pub fn dropped(&self) -> u64 {
        self.get(KindCounter::DroppedBreaker)
            .saturating_add(self.get(KindCounter::DroppedFull))
    }

    /// The share of the (non-rejected) calls the records represent: written and sampled-out
    /// calls, over every call that was not rejected. 1.0 when there were none.
    pub fn coverage(&self) -> f64 {
        coverage(
            self.calls().saturating_sub(self.get(KindCounter::Rejected)),
            self.dropped(),
        )
    }
}

/// The share of `accepted` calls not `dropped`: `1 - dropped / accepted` (1.0 when none).
///
/// ```
/// assert_eq!(ringlat_read::population::coverage(200, 50), 0.75);
/// assert_eq!(ringlat_read::population::coverage(0, 0), 1.0);
/// ```
pub fn coverage(accepted: u64, dropped: u64) -> f64 {
    if accepted == 0 {
        1.0
    } else {
        1.0 - dropped.min(accepted) as f64 / accepted as f64
    }
}

impl RingFile {
    /// Counters and population histogram of every configured kind, read now (published by
    /// the writer every tick, exact after its `flush()` or close).
    pub fn population(&self) -> Vec<KindPopulation> {
        let geometry = self.geometry();
        let kinds = self.configured_kinds();
        kinds
            .iter()
            .map(|kind| {
                let counters = KindCounter::ALL.map(|c| self.header_u64(c.offset(*kind)));
                let histogram = (0..geometry.hist_kinds)
                    .filter_map(|index| geometry.hist_block_offset(index))
                    .map(|offset| offset as usize)
                    .find(|block| self.header_u32(block + BLOCK_KIND) == u32::from(*kind))
                    .map(|block| self.read_histogram(block));
                KindPopulation {
                    kind: *kind,
                    counters,
                    histogram,
                }
            })
            .collect()
    }

    fn read_histogram(&self, block: usize) -> Histogram {
        let counts: Vec<u64> = (0..BUCKETS)
            .map(|index| self.header_u64(block + BLOCK_BUCKETS + 8 * index))
            .collect();
        Histogram::from_parts(
            &counts,
            self.header_u64(block + BLOCK_OVERFLOW),
            self.header_u64(block + BLOCK_NEGATIVE),
            self.header_u64(block + BLOCK_SUM_NS),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_and_deltas() {
        let mut h = Histogram::default();
        for v in 1..=1000u64 {
            h.add_ns(v * 1000, 1);
        }
        for (q, truth) in [(0.5, 500_000.0), (0.99, 990_000.0), (0.999, 999_000.0)] {
            let e = h.percentile(q).unwrap();
            assert!(e.low_ns as f64 <= truth && truth < e.high_ns as f64, "{q}");
            assert!((e.value_ns as f64 - truth).abs() <= truth / 256.0 + 1.0);
        }
        assert_eq!(
            h.percentile(1.0).unwrap().low_ns,
            bucket_bounds(bucket_of(1_000_000).unwrap()).0
        );
        let before = h.clone();
        h.add_ns(u64::MAX, 2);
        let delta = h.delta_since(&before);
        assert_eq!(delta.count(), 2);
        assert_eq!(delta.overflow(), 2);
        assert_eq!(h.count_above(2_000_000), 2);
        assert_eq!(Histogram::default().percentile(0.5), None);
        let mut merged = before.clone();
        merged.merge(&delta);
        assert_eq!(merged, h);
    }
}
