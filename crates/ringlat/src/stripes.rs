//! Striped call counters: each thread adds to its own stripe (its own cache lines), so the
//! hot path never does a read-modify-write on a line another thread is writing. The
//! background thread (and `flush`/close) sums the stripes into the header.

use ringlat_format::KindCounter;
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Stripes per ring: enough that threads rarely share one on the machines we target.
pub(crate) const STRIPES: usize = 32;
/// Counters per configured kind in a stripe.
const PER_KIND: usize = KindCounter::ALL.len();
/// Extra (not per-kind) counters at the end of a stripe.
pub(crate) const EXTRA_OVERWRITTEN: usize = 0;
const EXTRAS: usize = 1;
/// u64s per cache-line pair (128 bytes): stripes start on their own lines.
const LINE: usize = 16;

static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(1);

thread_local! {
    /// This thread's stripe, 0 = not chosen yet (stripe 0 belongs to single producers).
    static STRIPE: Cell<usize> = const { Cell::new(0) };
}

/// The stripes of one ring.
pub(crate) struct Stripes {
    cells: Box<[AtomicU64]>,
    stride: usize,
    kinds: usize,
}

impl std::fmt::Debug for Stripes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stripes")
            .field("kinds", &self.kinds)
            .finish()
    }
}

/// Which stripe the calling thread of a multi-producer ring uses (1..STRIPES).
#[inline]
pub(crate) fn thread_stripe() -> usize {
    STRIPE.with(|stripe| {
        let mut chosen = stripe.get();
        if chosen == 0 {
            // Relaxed: only spreads threads over stripes.
            chosen = 1 + NEXT_STRIPE.fetch_add(1, Ordering::Relaxed) % (STRIPES - 1);
            stripe.set(chosen);
        }
        chosen
    })
}

/// Stripes handed out so far (stripe 0 and the thread stripes), an upper bound on the stripes
/// anyone wrote: summing beyond it would only add zeros.
pub(crate) fn stripes_in_use() -> usize {
    // Relaxed: a bound read by the aggregator; a thread's choice happens before its first add.
    (NEXT_STRIPE.load(Ordering::Relaxed) + 1).min(STRIPES)
}

impl Stripes {
    /// Stripes for `kinds` configured kinds (dense indices 0..kinds).
    pub(crate) fn new(kinds: usize) -> Self {
        let used = kinds * PER_KIND + EXTRAS;
        let stride = used.div_ceil(LINE) * LINE;
        // One line of padding before the first stripe's counters would need an aligned
        // allocation; instead stripe 0 (single producer) absorbs any sharing of its first line.
        let cells = (0..stride * STRIPES).map(|_| AtomicU64::new(0)).collect();
        Stripes {
            cells,
            stride,
            kinds,
        }
    }

    fn cell(&self, stripe: usize, index: usize) -> Option<&AtomicU64> {
        self.cells.get(stripe * self.stride + index)
    }

    /// Adds one to `counter` of dense kind `kind` in `stripe`, which other threads may share.
    #[inline]
    pub(crate) fn add_shared(&self, stripe: usize, kind: usize, counter: KindCounter) {
        if let Some(cell) = self.cell(stripe, kind * PER_KIND + counter.index()) {
            // Relaxed: a statistic, read by the aggregator; exactness after a flush comes
            // from the happens-before the caller establishes (join, channel) before flushing.
            cell.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Adds one where only the calling thread ever writes (the single producer's stripe 0):
    /// a plain load and store, no locked instruction.
    #[inline]
    pub(crate) fn add_exclusive(&self, kind: usize, counter: KindCounter) {
        if let Some(cell) = self.cell(0, kind * PER_KIND + counter.index()) {
            // Relaxed: this thread is the only writer; the aggregator only loads.
            cell.store(cell.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        }
    }

    /// Adds one to an extra counter.
    #[inline]
    pub(crate) fn add_extra(&self, stripe: usize, extra: usize, exclusive: bool) {
        if let Some(cell) = self.cell(stripe, self.kinds * PER_KIND + extra) {
            if exclusive {
                // Relaxed: single writer, as in `add_exclusive`.
                cell.store(cell.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
            } else {
                // Relaxed: a statistic.
                cell.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Sum over stripes of `counter` of dense kind `kind`.
    pub(crate) fn sum(&self, kind: usize, counter: KindCounter) -> u64 {
        self.sum_index(kind * PER_KIND + counter.index())
    }

    /// Sum over stripes of an extra counter.
    pub(crate) fn sum_extra(&self, extra: usize) -> u64 {
        self.sum_index(self.kinds * PER_KIND + extra)
    }

    fn sum_index(&self, index: usize) -> u64 {
        (0..STRIPES)
            .filter_map(|stripe| self.cell(stripe, index))
            // Relaxed: statistics; see `add_shared`.
            .map(|cell| cell.load(Ordering::Relaxed))
            .sum()
    }

    /// Calls of dense kind `kind` so far: the sum of the outcome counters.
    pub(crate) fn calls(&self, kind: usize) -> u64 {
        KindCounter::OUTCOMES
            .iter()
            .map(|c| self.sum(kind, *c))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_every_stripe_and_keeps_kinds_apart() {
        let stripes = Stripes::new(3);
        for stripe in 0..STRIPES {
            stripes.add_shared(stripe, 2, KindCounter::Written);
        }
        stripes.add_exclusive(1, KindCounter::SampledOut);
        stripes.add_extra(5, EXTRA_OVERWRITTEN, false);
        assert_eq!(stripes.sum(2, KindCounter::Written), STRIPES as u64);
        assert_eq!(stripes.sum(1, KindCounter::SampledOut), 1);
        assert_eq!(stripes.sum(0, KindCounter::Written), 0);
        assert_eq!(stripes.calls(2), STRIPES as u64);
        assert_eq!(stripes.sum_extra(EXTRA_OVERWRITTEN), 1);
        assert!((1..STRIPES).contains(&thread_stripe()));
    }
}
