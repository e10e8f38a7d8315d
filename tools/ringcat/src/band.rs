//! Where a percentile can fall, known after the engine's first pass: the weight per engine bin
//! ([`bin_of`]) of a group gives a band of values that holds the exact percentile, so that the
//! second pass can already keep the records that may lie above it (and count those that surely
//! do) instead of walking the files a third time once the percentile is known.

use ringlat_read::percentile::DISTINCT_BUDGET;
use ringlat_read::percentile::{Quantile, bin_of};

/// The engine's bins: -3776..3776 (see [`bin_of`]).
const FIRST_BIN: i64 = -3776;
const BINS: usize = 7552;

/// A group's weight per engine bin (fixed-point weights: exact, in any order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct BinWeights {
    /// Empty until the first record; then one slot per bin.
    weights: Vec<u128>,
    total: u128,
}

impl BinWeights {
    #[inline]
    pub(crate) fn add(&mut self, value: i64, weight: u128) {
        if self.weights.is_empty() {
            self.weights = vec![0; BINS];
        }
        if let Some(slot) = self.weights.get_mut((bin_of(value) - FIRST_BIN) as usize) {
            *slot += weight;
        }
        self.total += weight;
    }

    pub(crate) fn merge(&mut self, other: BinWeights) {
        if self.weights.is_empty() {
            *self = other;
            return;
        }
        for (mine, theirs) in self.weights.iter_mut().zip(other.weights) {
            *mine += theirs;
        }
        self.total += other.total;
    }

    /// True when no record was added.
    pub(crate) fn is_empty(&self) -> bool {
        self.weights.is_empty()
    }

    /// The bin where the cumulative weight first reaches `target` (the last bin holding weight
    /// when it never does).
    fn bin_reaching(&self, target: u128) -> i64 {
        let mut cumulative = 0u128;
        let mut last = FIRST_BIN;
        for (index, weight) in self.weights.iter().enumerate() {
            if *weight == 0 {
                continue;
            }
            last = FIRST_BIN + index as i64;
            cumulative += weight;
            if cumulative >= target {
                return last;
            }
        }
        last
    }

    /// The band that holds `quantile` of these records. The engine's target weight is
    /// `ceil(total × q)`; it is bracketed here with a relative margin of 1e-9, far above the
    /// float error of `total × q` (about 1e-16), so the band's bins surely hold the engine's.
    pub(crate) fn band(&self, quantile: &Quantile) -> Band {
        let exact = self.total as f64 * quantile.fraction();
        let low_target = (exact * (1.0 - 1e-9)).floor() as u128;
        let high_target = ((exact * (1.0 + 1e-9)).ceil() as u128).saturating_add(1);
        let low_bin = self.bin_reaching(low_target);
        let high_bin = self.bin_reaching(high_target);
        Band {
            maybe_from: first_value_in(low_bin),
            sure_from: (high_bin + 1 < FIRST_BIN + BINS as i64)
                .then(|| first_value_in(high_bin + 1)),
        }
    }
}

/// The smallest value whose bin is at least `bin` ([`bin_of`] never decreases).
fn first_value_in(bin: i64) -> i64 {
    let (mut low, mut high) = (i64::MIN as i128, i64::MAX as i128);
    while low < high {
        let middle = low + (high - low) / 2;
        if bin_of(middle as i64) >= bin {
            high = middle;
        } else {
            low = middle + 1;
        }
    }
    low as i64
}

/// Values below `maybe_from` are at or below the percentile; values from `sure_from` on are
/// above it; the ones between may be either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Band {
    pub maybe_from: i64,
    pub sure_from: Option<i64>,
}

/// Where a value lies against a percentile known only by its [`Band`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// At or below the percentile.
    AtOrBelow,
    /// Either side: decided once the percentile is known.
    Maybe,
    /// Above it.
    Above,
}

impl Band {
    /// The band of a percentile known exactly: nothing undecided, except `i64::MAX` itself
    /// when the percentile is `i64::MAX` (nothing lies above it; the caller decides with the
    /// exact value).
    pub(crate) fn above(percentile: i64) -> Band {
        Band {
            maybe_from: percentile.saturating_add(1),
            sure_from: percentile.checked_add(1),
        }
    }

    #[inline]
    pub(crate) fn side(&self, value: i64) -> Side {
        if value < self.maybe_from {
            Side::AtOrBelow
        } else if self.sure_from.is_some_and(|sure| value >= sure) {
            Side::Above
        } else {
            Side::Maybe
        }
    }
}

/// How many undecided records a pass may keep before it gives up and leaves the listing to one
/// more pass: 64 MiB of `T`. `RINGCAT_CANDIDATE_LIMIT` (undocumented, for tests) overrides it,
/// so that tests can take the fallback path on small files.
pub(crate) fn candidate_limit<T>() -> usize {
    std::env::var("RINGCAT_CANDIDATE_LIMIT")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or((64 << 20) / std::mem::size_of::<T>().max(1))
}

/// How many distinct values the one-pass tally of `pct`, `slice` (and `plot`) keeps exactly before it
/// falls back to bins and a second pass: [`DISTINCT_BUDGET`]. `RINGCAT_DISTINCT_BUDGET`
/// (undocumented, for tests) overrides it, so that tests can take the fallback on small files.
pub(crate) fn distinct_budget() -> usize {
    std::env::var("RINGCAT_DISTINCT_BUDGET")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(DISTINCT_BUDGET)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringlat_read::percentile::{Histograms, WEIGHT_ONE, weight_of};

    fn lcg(state: &mut u64) -> u64 {
        *state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        *state >> 11
    }

    #[test]
    fn first_value_in_inverts_bin_of() {
        for value in [
            i64::MIN,
            -1_000_000,
            -129,
            -1,
            0,
            1,
            127,
            128,
            1 << 20,
            i64::MAX,
        ] {
            let bin = bin_of(value);
            let first = first_value_in(bin);
            assert_eq!(bin_of(first), bin);
            assert!(first == i64::MIN || bin_of(first - 1) < bin);
        }
    }

    /// The engine's exact percentile always lies in the band, on random weighted data, and the
    /// band is narrow (a bin or two).
    #[test]
    fn the_exact_percentile_lies_in_the_band() {
        let mut state = 3u64;
        for round in 0..200 {
            let label = ["0", "1", "50", "90", "99", "99.9", "99.99", "100"][round % 8];
            let quantile = Quantile::parse(label).unwrap();
            let n = 1 + (lcg(&mut state) % 3000) as usize;
            let spread = [5, 300, 1 << 20, 1 << 40][round % 4];
            let records: Vec<(i64, u128)> = (0..n)
                .map(|_| {
                    let value = (lcg(&mut state) % spread) as i64 - (spread / 10) as i64;
                    let p = [1.0, 0.5, 0.1, 0.3][(lcg(&mut state) % 4) as usize];
                    (value, weight_of(p, round % 5 == 0))
                })
                .collect();
            let mut bins = BinWeights::default();
            let mut pass1 = Histograms::new(vec![quantile.clone()]);
            for (value, weight) in &records {
                bins.add(*value, *weight);
                pass1.add((), *value, *weight);
            }
            let mut pass2 = pass1.plan();
            for (value, weight) in &records {
                pass2.add(&(), *value, *weight);
            }
            let exact = pass2.finish()[0].1[0];
            let band = bins.band(&quantile);
            assert_ne!(band.side(exact), Side::Above, "round {round} p{label}");
            for (value, _) in &records {
                let side = band.side(*value);
                if *value > exact {
                    assert_ne!(side, Side::AtOrBelow, "round {round} p{label}: {value}");
                } else {
                    assert_ne!(side, Side::Above, "round {round} p{label}: {value}");
                }
            }
        }
        assert_eq!(weight_of(1.0, false), WEIGHT_ONE);
    }

    #[test]
    fn merged_bins_equal_one_walk() {
        let mut state = 9u64;
        let records: Vec<i64> = (0..5000)
            .map(|_| (lcg(&mut state) % 100_000) as i64)
            .collect();
        let mut whole = BinWeights::default();
        let (mut left, mut right) = (BinWeights::default(), BinWeights::default());
        for (i, value) in records.iter().enumerate() {
            whole.add(*value, WEIGHT_ONE);
            if i < 1234 { &mut left } else { &mut right }.add(*value, WEIGHT_ONE);
        }
        left.merge(right);
        assert_eq!(left.weights, whole.weights);
        assert_eq!(left.total, whole.total);
        let mut empty = BinWeights::default();
        empty.merge(whole.clone());
        assert_eq!(empty.weights, whole.weights);
    }
}
