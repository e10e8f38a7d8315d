//! How far out of time order a ring's records lie, found in one pass on every core: what
//! lets `cat` stream a ring through an exact reorder window (see [`crate::merge`]) instead of
//! loading and sorting it whole.
//!
//! A ring holds its records in the order producers took their slots; each took its time a
//! moment before (or was handed one, `record_at`), so a record can be older than records in
//! slots before it. Unlike a version-3 archive, whose header carries that lateness bound (the
//! drain measures it as it writes), a ring keeps no such bound: the hot path would pay for it.
//! It is measured here instead, exactly, over the records a filter selects.

use crate::Failure;
use crate::select::Filter;
use ringlat_read::{Fields, Source};
use std::ops::Range;

/// The times of a run of consecutive records (in ring order): their oldest and newest, and
/// how far behind the newest before it a record came at most (as in an archive's bound).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TimeOrder {
    oldest: u64,
    newest: u64,
    lateness: u64,
}

impl TimeOrder {
    /// No record yet.
    const EMPTY: TimeOrder = TimeOrder {
        oldest: u64::MAX,
        newest: 0,
        lateness: 0,
    };

    /// Takes one more record's time into account, after those already taken.
    #[inline(always)]
    fn add(&mut self, time: u64) {
        self.oldest = self.oldest.min(time);
        if time > self.newest {
            self.newest = time;
        } else {
            self.lateness = self.lateness.max(self.newest - time);
        }
    }

    /// This run followed by `later`: a record of `later` falls behind its own run's newest
    /// before it, or behind this run's newest (by at most the newest minus later's oldest).
    fn then(self, later: TimeOrder) -> TimeOrder {
        if later.oldest > later.newest {
            return self;
        }
        TimeOrder {
            oldest: self.oldest.min(later.oldest),
            newest: self.newest.max(later.newest),
            lateness: self
                .lateness
                .max(later.lateness)
                .max(self.newest.saturating_sub(later.oldest)),
        }
    }
}

/// Records a thread reads at least (fewer are read on one thread: starting one costs more).
const MIN_PER_THREAD: u64 = 1 << 16;

/// What [`measure`] found of a ring's selected records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Measured {
    /// No selected record is older, by more than this, than a selected record before it.
    pub lateness: u64,
    /// How many records a window of `lateness` holds, were the records spread evenly over
    /// their span (at least 1 with any record; 0 with none).
    pub records_in_window: u64,
}

/// A pass over `source` (a ring: [`Source::begin_scan`] to [`Source::end_scan`]) that
/// measures the lateness bound of the records `filter` keeps (`kinds` their kinds), in ring
/// order: no kept record is older, by more than the bound, than a kept record before it.
pub(crate) fn measure(
    source: &Source,
    filter: &Filter,
    kinds: &[bool; 256],
) -> Result<Measured, Failure> {
    let units = source.begin_scan()?;
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(usize::try_from(units / MIN_PER_THREAD).unwrap_or(usize::MAX))
        .max(1) as u64;
    // Consecutive runs, one a thread, joined in their order.
    let runs: Vec<Range<u64>> = (0..threads)
        .map(|i| units * i / threads..units * (i + 1) / threads)
        .collect();
    let measure = |range: Range<u64>| {
        let mut order = TimeOrder::EMPTY;
        let mut kept = 0u64;
        source
            .scan_fields(range, &mut Vec::new(), Fields::All, |_, sample, _| {
                if filter.keeps(sample, kinds) {
                    order.add(sample.nanotime);
                    kept += 1;
                }
            })
            .map(|()| (order, kept))
    };
    let measured: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = runs[1..]
            .iter()
            .map(|range| {
                let range = range.clone();
                scope.spawn(move || measure(range))
            })
            .collect();
        let mut measured = vec![measure(runs[0].clone())];
        for handle in handles {
            // A thread that panicked: its panic goes on here (never from input).
            measured.push(
                handle
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p)),
            );
        }
        measured
    });
    source.end_scan()?;
    let (mut whole, mut kept) = (TimeOrder::EMPTY, 0u64);
    for run in measured {
        let (order, count) = run?;
        whole = whole.then(order);
        kept += count;
    }
    let span = u128::from(whole.newest.saturating_sub(whole.oldest)) + 1;
    let in_window = (u128::from(kept) * u128::from(whole.lateness)).div_ceil(span);
    Ok(Measured {
        lateness: whole.lateness,
        records_in_window: u64::try_from(in_window.max(u128::from(kept.min(1))))
            .unwrap_or(u64::MAX),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lateness of `times` read one by one.
    fn serial(times: &[u64]) -> TimeOrder {
        let mut order = TimeOrder::EMPTY;
        for &time in times {
            order.add(time);
        }
        order
    }

    /// Runs measured apart and joined give what one run over all of them gives, wherever
    /// the cuts fall (among them: before a record later than the other run's newest, and
    /// around empty runs).
    #[test]
    fn runs_joined_measure_what_one_run_measures() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..200 {
            let len = (state % 40) as usize;
            let times: Vec<u64> = (0..len)
                .map(|i| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    // Mostly rising, some behind by up to 50.
                    (i as u64 * 10).saturating_sub(state % 60)
                })
                .collect();
            for a in 0..=len {
                for b in a..=len {
                    let joined = serial(&times[..a])
                        .then(serial(&times[a..b]))
                        .then(serial(&times[b..]));
                    assert_eq!(joined, serial(&times), "{times:?} cut at {a} and {b}");
                }
            }
        }
    }

    #[test]
    fn a_record_behind_the_newest_before_it_sets_the_bound() {
        assert_eq!(serial(&[10, 30, 20, 40, 5]).lateness, 35);
        assert_eq!(serial(&[10, 20, 30]).lateness, 0);
        assert_eq!(serial(&[]).then(serial(&[7, 3])).lateness, 4);
        assert_eq!(
            serial(&[50]).then(serial(&[])).then(serial(&[45])).lateness,
            5
        );
    }
}
