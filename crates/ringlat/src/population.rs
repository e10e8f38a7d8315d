//! Population histograms: every call that is not rejected adds its latency to its kind's
//! log-linear histogram (the bucket scheme of `ringlat_format::population`), whatever sampling
//! or the breaker did with it. Thread-owned like the counters of `stripes`: the single
//! producer owns stripe 0 and each multi-producer thread its own stripe (relaxed load + store,
//! no locked instruction); only threads past the 31st share a stripe, with a relaxed `fetch_add`. The background thread (and `flush`,
//! close) sums the stripes into the file's histogram area.
//!
//! The storage is allocated zeroed at creation for the declared kinds (the kernel hands the
//! pages over lazily: a stripe no thread uses costs no memory), so `record` never allocates.

use crate::shared::Counting;
use crate::stripes::stripes_in_use;
use ringlat_format::population::{self as scheme, BUCKETS};
use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

/// Cells per kind in one stripe: the buckets, then overflow, negative and the sum.
const OVERFLOW: usize = BUCKETS;
const NEGATIVE: usize = BUCKETS + 1;
const SUM: usize = BUCKETS + 2;
const PER_KIND: usize = BUCKETS + 3;

/// Zeroed `AtomicU64` cells, allocated with `alloc_zeroed` (lazily backed by the kernel).
struct ZeroedCells {
    ptr: NonNull<AtomicU64>,
    len: usize,
}

// SAFETY: the cells are atomics; sharing references to them between threads is what they
// are for, and the allocation is owned (freed once, in Drop).
unsafe impl Send for ZeroedCells {}
// SAFETY: as above: every access goes through `&AtomicU64`.
unsafe impl Sync for ZeroedCells {}

impl ZeroedCells {
    fn new(len: usize) -> Self {
        let Some(layout) = Layout::array::<AtomicU64>(len.max(1)).ok() else {
            std::alloc::handle_alloc_error(Layout::new::<AtomicU64>());
        };
        // SAFETY: the layout has a non-zero size (len.max(1) cells of 8 bytes).
        let raw = unsafe { alloc_zeroed(layout) }.cast::<AtomicU64>();
        let Some(ptr) = NonNull::new(raw) else {
            std::alloc::handle_alloc_error(layout);
        };
        ZeroedCells { ptr, len }
    }

    /// The `N` cells from `start`, or `None` when they do not all lie in the allocation: one
    /// bounds check for a whole histogram block.
    #[inline]
    fn block<const N: usize>(&self, start: usize) -> Option<&[AtomicU64; N]> {
        if start <= self.len && N <= self.len - start {
            // SAFETY: `start + N <= len`, so the N cells are in bounds of the allocation of
            // `len` zeroed cells (a valid `[AtomicU64; N]`, AtomicU64 being 8-aligned like the
            // allocation), alive as long as `self`.
            Some(unsafe { &*self.ptr.as_ptr().add(start).cast::<[AtomicU64; N]>() })
        } else {
            None
        }
    }

    #[inline]
    fn get(&self, index: usize) -> Option<&AtomicU64> {
        if index < self.len {
            // SAFETY: in bounds of an allocation of `len` zeroed cells (all-zero bytes are a
            // valid AtomicU64), alive as long as `self`.
            Some(unsafe { &*self.ptr.as_ptr().add(index) })
        } else {
            None
        }
    }
}

impl Drop for ZeroedCells {
    fn drop(&mut self) {
        if let Ok(layout) = Layout::array::<AtomicU64>(self.len.max(1)) {
            // SAFETY: allocated in `new` with this very layout, freed once.
            unsafe { dealloc(self.ptr.as_ptr().cast(), layout) }
        }
    }
}

/// The per-kind histograms of one ring, striped by thread.
pub(crate) struct Histograms {
    cells: ZeroedCells,
    kinds: usize,
}

impl std::fmt::Debug for Histograms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histograms")
            .field("kinds", &self.kinds)
            .finish()
    }
}

/// One kind's histogram summed over the stripes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Summed {
    pub buckets: Vec<u64>,
    pub overflow: u64,
    pub negative: u64,
    pub sum_ns: u64,
}

impl Histograms {
    /// Histograms for `kinds` declared kinds (0 = turned off: nothing is allocated).
    pub(crate) fn new(kinds: usize) -> Self {
        Histograms {
            cells: ZeroedCells::new(kinds * PER_KIND * crate::stripes::STRIPES),
            kinds,
        }
    }

    /// Kinds histogrammed (0 when turned off).
    pub(crate) fn kinds(&self) -> usize {
        self.kinds
    }

    #[inline]
    fn base(stripe: usize, kinds: usize, kind: usize) -> usize {
        (stripe * kinds + kind) * PER_KIND
    }

    /// Adds one call of dense kind `kind` that took `nanos` nanoseconds.
    #[inline]
    pub(crate) fn add(&self, counting: Counting, kind: usize, nanos: u64) {
        if kind >= self.kinds {
            return;
        }
        let (stripe, owned) = match counting {
            // An owned stripe has one writer, its thread (stripes::claim); only the shared
            // stripe of the threads past the 31st needs the locked add.
            Counting::Stripe(stripe) => (stripe, stripe != crate::stripes::SHARED_STRIPE),
            Counting::Exclusive => (0, true),
        };
        let Some(block) = self
            .cells
            .block::<PER_KIND>(Self::base(stripe, self.kinds, kind))
        else {
            return;
        };
        match scheme::bucket_of(nanos) {
            Some(bucket) => {
                bump(block.get(bucket), 1, owned);
                bump(Some(&block[SUM]), nanos, owned);
            }
            None => bump(Some(&block[OVERFLOW]), 1, owned),
        }
    }

    /// Kind `kind` summed over every stripe.
    pub(crate) fn sum(&self, kind: usize) -> Summed {
        let mut buckets = vec![0u64; BUCKETS];
        let mut extra = [0u64; 3];
        for stripe in 0..stripes_in_use() {
            let base = Self::base(stripe, self.kinds, kind);
            for (index, total) in buckets.iter_mut().enumerate() {
                *total = total.wrapping_add(load(self.cells.get(base + index)));
            }
            for (offset, total) in extra.iter_mut().enumerate() {
                *total = total.wrapping_add(load(self.cells.get(base + OVERFLOW + offset)));
            }
        }
        debug_assert_eq!(NEGATIVE, OVERFLOW + 1);
        debug_assert_eq!(SUM, OVERFLOW + 2);
        Summed {
            buckets,
            overflow: extra[0],
            negative: extra[1],
            sum_ns: extra[2],
        }
    }
}

impl crate::shared::Shared {
    /// Copies the summed histograms into the file's area (background tick, flush, close):
    /// exact for every call that happened before. Cells already equal are not stored, so an
    /// idle kind dirties no page.
    pub(crate) fn publish_histograms(&self) {
        let geometry = self.ring.storage().geometry();
        for dense in 0..self.histograms().kinds() {
            let Some(block) = geometry.hist_block_offset(dense as u32) else {
                continue;
            };
            let block = block as usize;
            let summed = self.histograms().sum(dense);
            let cells = summed
                .buckets
                .iter()
                .enumerate()
                .map(|(index, value)| (scheme::BLOCK_BUCKETS + 8 * index, *value))
                .chain([
                    (scheme::BLOCK_OVERFLOW, summed.overflow),
                    (scheme::BLOCK_NEGATIVE, summed.negative),
                    (scheme::BLOCK_SUM_NS, summed.sum_ns),
                ]);
            for (offset, value) in cells {
                if let Some(cell) = self.ring.storage().u64_at(block + offset) {
                    // Relaxed: statistics published before the heartbeat's Release store,
                    // which readers load with Acquire (as the counters).
                    if cell.load(Ordering::Relaxed) != value {
                        cell.store(value, Ordering::Relaxed);
                    }
                }
            }
        }
    }
}

#[inline]
fn bump(cell: Option<&AtomicU64>, by: u64, owned: bool) {
    if let Some(cell) = cell {
        if owned {
            // Relaxed: this thread is the stripe's only writer; the aggregator only loads.
            cell.store(
                cell.load(Ordering::Relaxed).wrapping_add(by),
                Ordering::Relaxed,
            );
        } else {
            // Relaxed: a statistic; exactness after a flush comes from the happens-before the
            // caller establishes before flushing, as for the counters.
            cell.fetch_add(by, Ordering::Relaxed);
        }
    }
}

fn load(cell: Option<&AtomicU64>) -> u64 {
    // Relaxed: statistics, see `bump`.
    cell.map_or(0, |cell| cell.load(Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn counts_by_bucket_per_kind_across_stripes() {
        let h = Histograms::new(2);
        h.add(Counting::Exclusive, 1, 300);
        let stripe = Counting::Stripe(crate::stripes::thread_stripe());
        h.add(stripe, 1, 300);
        h.add(stripe, 0, Duration::from_secs(5 * 3600).as_nanos() as u64);
        h.add(stripe, 2, 1); // undeclared: ignored
        let one = h.sum(1);
        let bucket = scheme::bucket_of(300).unwrap();
        assert_eq!(one.buckets[bucket], 2);
        assert_eq!(one.buckets.iter().sum::<u64>(), 2);
        assert_eq!(one.sum_ns, 600);
        let zero = h.sum(0);
        assert_eq!(zero.overflow, 1);
        assert_eq!(zero.buckets.iter().sum::<u64>(), 0);
        assert_eq!(Histograms::new(0).kinds(), 0);
    }
}
