//! Striped call counters: each thread owns a stripe (its own cache lines), so the hot path
//! counts with a plain load and store, never a locked instruction, on a line no other thread
//! writes. The background thread (and `flush`/close) sums the stripes into the header.
//!
//! Ownership is process-wide: a thread claims one of [`OWNED_STRIPES`] stripe numbers on its
//! first call (a bit in [`OWNED`]) and gives it back when it exits (its thread-local's
//! destructor), so the next thread that claims it continues the counts. Threads past that many
//! alive at once share the one [`SHARED_STRIPE`], which counts with `fetch_add`. Stripe 0
//! belongs to a single producer (its handle is the only writer).

use ringlat_format::KindCounter;
use std::cell::Cell;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// Stripe numbers a multi-producer thread can own: 1..=OWNED_STRIPES.
pub(crate) const OWNED_STRIPES: usize = 31;
/// The stripe of threads that found every owned stripe taken: counted with `fetch_add`.
pub(crate) const SHARED_STRIPE: usize = OWNED_STRIPES + 1;
/// Stripes per ring: the single producer's, the owned ones, the shared one.
pub(crate) const STRIPES: usize = SHARED_STRIPE + 1;
/// Counters per configured kind in a stripe.
const PER_KIND: usize = KindCounter::ALL.len();
/// Extra (not per-kind) counters at the end of a stripe.
pub(crate) const EXTRA_OVERWRITTEN: usize = 0;
const EXTRAS: usize = 1;
/// u64s per line of [`Line`].
const LINE: usize = 16;

/// 16 counters on their own pair of cache lines (128 bytes: the adjacent-line prefetcher of
/// x86-64 pairs lines), so stripes never share a line. Exactly 128 bytes, no padding, so an
/// array of lines is also an array of counters.
#[repr(C, align(128))]
struct Line([AtomicU64; LINE]);

const _: () = assert!(size_of::<Line>() == LINE * size_of::<AtomicU64>());

/// Bit `s` set: stripe `s` is owned by a live thread (bits 1..=OWNED_STRIPES).
static OWNED: AtomicU32 = AtomicU32::new(0);
const OWNABLE: u32 = ((1u64 << (OWNED_STRIPES + 1)) - 2) as u32;
/// One past the highest stripe ever handed out (0: none yet), for [`stripes_in_use`].
static HANDED_OUT: AtomicUsize = AtomicUsize::new(0);

/// Gives the thread's owned stripe back when the thread exits.
struct GiveBack(Cell<usize>);

impl Drop for GiveBack {
    fn drop(&mut self) {
        let stripe = self.0.get();
        // Calls made later by other thread-locals' destructors count on the shared stripe.
        // (`STRIPE` has no destructor, so it is still there.)
        let _ = STRIPE.try_with(|chosen| chosen.set(SHARED_STRIPE));
        if (1..=OWNED_STRIPES).contains(&stripe) {
            // Release: pairs with the Acquire claim of the stripe's next owner, so this
            // thread's counter stores happen before its loads (it continues our counts).
            OWNED.fetch_and(!(1u32 << stripe), Ordering::Release);
        }
    }
}

thread_local! {
    /// This thread's stripe, 0 = not claimed yet. No destructor: the hot path reads it with
    /// one load (a thread-local with a destructor would check its state on every access).
    static STRIPE: Cell<usize> = const { Cell::new(0) };
    /// Registered on the claim, to give the stripe back at thread exit.
    static GIVE_BACK: GiveBack = const { GiveBack(Cell::new(0)) };
}

/// Claims a free owned stripe, or returns [`SHARED_STRIPE`] when all are taken (or when
/// the thread is exiting and can no longer register the give-back).
#[cold]
fn claim() -> usize {
    // Relaxed: a guess for the CAS below.
    let mut owned = OWNED.load(Ordering::Relaxed);
    loop {
        let free = !owned & OWNABLE;
        if free == 0 {
            return SHARED_STRIPE;
        }
        let stripe = free.trailing_zeros();
        // Acquire: pairs with the Release give-back of the stripe's previous owner.
        match OWNED.compare_exchange_weak(
            owned,
            owned | (1 << stripe),
            Ordering::Acquire,
            Ordering::Relaxed,
        ) {
            Ok(_) => {
                let stripe = stripe as usize;
                if GIVE_BACK.try_with(|give| give.0.set(stripe)).is_ok() {
                    return stripe;
                }
                // Too late to register the give-back: do not keep the stripe.
                // Release: as in `GiveBack::drop`.
                OWNED.fetch_and(!(1u32 << stripe), Ordering::Release);
                return SHARED_STRIPE;
            }
            Err(now) => owned = now,
        }
    }
}

/// Which stripe the calling thread of a multi-producer ring uses: its own (1..=31), or
/// [`SHARED_STRIPE`] when 31 other threads own one each (or once this thread's
/// thread-locals are being destroyed).
#[inline]
pub(crate) fn thread_stripe() -> usize {
    STRIPE.with(|chosen| {
        let stripe = chosen.get();
        if stripe != 0 {
            return stripe;
        }
        let stripe = claim();
        // Relaxed: a bound for the aggregator, which sums stripes below it; this thread's
        // adds to the stripe come after (and the aggregator's sums are exact only after the
        // flush or close that joins them anyway).
        HANDED_OUT.fetch_max(stripe + 1, Ordering::Relaxed);
        chosen.set(stripe);
        stripe
    })
}

/// The stripes of one ring.
pub(crate) struct Stripes {
    lines: Box<[Line]>,
    /// Counters in `lines`: `lines.len() * 16`.
    cells: usize,
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

/// Stripes handed out so far (stripe 0 and every stripe a thread claimed, the shared one
/// included), an upper bound on the stripes anyone wrote: summing beyond it would only add zeros.
pub(crate) fn stripes_in_use() -> usize {
    // Relaxed: a bound read by the aggregator; a thread's claim happens before its first add.
    HANDED_OUT.load(Ordering::Relaxed).max(1)
}

impl Stripes {
    /// Stripes for `kinds` configured kinds (dense indices 0..kinds).
    pub(crate) fn new(kinds: usize) -> Self {
        let used = kinds * PER_KIND + EXTRAS;
        let stride = used.div_ceil(LINE) * LINE;
        let lines: Box<[Line]> = (0..stride / LINE * STRIPES)
            .map(|_| Line(std::array::from_fn(|_| AtomicU64::new(0))))
            .collect();
        Stripes {
            cells: lines.len() * LINE,
            lines,
            stride,
            kinds,
        }
    }

    #[inline]
    fn cell(&self, stripe: usize, index: usize) -> Option<&AtomicU64> {
        let at = stripe * self.stride + index;
        if at >= self.cells {
            return None;
        }
        // SAFETY: a `Line` is 16 `AtomicU64`s with no padding (asserted above) and the lines
        // are contiguous, so `lines` holds `cells` initialised counters in a row, owned by
        // `self`; `at < cells`.
        Some(unsafe { &*self.lines.as_ptr().cast::<AtomicU64>().add(at) })
    }

    /// Adds one to `cell`: a plain load and store on an owned stripe, `fetch_add` on the
    /// shared one.
    #[inline]
    fn bump(cell: &AtomicU64, stripe: usize) {
        if stripe == SHARED_STRIPE {
            // Relaxed: a statistic, read by the aggregator; exactness after a flush comes
            // from the happens-before the caller establishes (join, channel) before flushing.
            cell.fetch_add(1, Ordering::Relaxed);
        } else {
            // Relaxed: this thread is the stripe's only writer (ownership, see the module
            // docs); the aggregator only loads.
            cell.store(cell.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        }
    }

    /// Adds one to `counter` of dense kind `kind` in `stripe`: the calling thread's
    /// [`thread_stripe`], or 0 for the single producer.
    #[inline]
    pub(crate) fn add(&self, stripe: usize, kind: usize, counter: KindCounter) {
        if let Some(cell) = self.cell(stripe, kind * PER_KIND + counter.index()) {
            Self::bump(cell, stripe);
        }
    }

    /// Adds one to an extra counter of `stripe` (as in [`Stripes::add`]).
    #[inline]
    pub(crate) fn add_extra(&self, stripe: usize, extra: usize) {
        if let Some(cell) = self.cell(stripe, self.kinds * PER_KIND + extra) {
            Self::bump(cell, stripe);
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
    use std::sync::{Arc, Barrier, Mutex};

    /// Tests that need to know how many stripes are owned run one at a time.
    static OWNERSHIP: Mutex<()> = Mutex::new(());

    #[test]
    fn sums_every_stripe_and_keeps_kinds_apart() {
        let stripes = Stripes::new(3);
        for stripe in 0..STRIPES {
            stripes.add(stripe, 2, KindCounter::Written);
        }
        stripes.add(0, 1, KindCounter::SampledOut);
        stripes.add_extra(5, EXTRA_OVERWRITTEN);
        assert_eq!(stripes.sum(2, KindCounter::Written), STRIPES as u64);
        assert_eq!(stripes.sum(1, KindCounter::SampledOut), 1);
        assert_eq!(stripes.sum(0, KindCounter::Written), 0);
        assert_eq!(stripes.calls(2), STRIPES as u64);
        assert_eq!(stripes.sum_extra(EXTRA_OVERWRITTEN), 1);
        assert!((1..STRIPES).contains(&thread_stripe()));
    }

    #[test]
    fn stripes_start_on_their_own_cache_lines() {
        let stripes = Stripes::new(5);
        for stripe in 0..STRIPES {
            let first = stripes.cell(stripe, 0).unwrap() as *const AtomicU64 as usize;
            assert_eq!(first % 128, 0, "stripe {stripe}");
        }
    }

    #[test]
    fn an_exited_thread_gives_its_stripe_back_and_the_next_owner_continues_its_counts() {
        let _one_at_a_time = OWNERSHIP.lock().unwrap_or_else(|e| e.into_inner());
        let stripes = Arc::new(Stripes::new(1));
        // Twice as many threads, one after another, as there are owned stripes: without
        // the give-back on exit, the later ones would find none free.
        let threads = 2 * OWNED_STRIPES;
        for _ in 0..threads {
            let stripes = Arc::clone(&stripes);
            let stripe = std::thread::spawn(move || {
                let stripe = thread_stripe();
                for _ in 0..1000 {
                    stripes.add(stripe, 0, KindCounter::Written);
                }
                stripe
            })
            .join()
            .unwrap();
            assert_ne!(stripe, SHARED_STRIPE, "a stripe was free");
        }
        assert_eq!(stripes.sum(0, KindCounter::Written), threads as u64 * 1000);
    }

    #[test]
    fn more_threads_than_stripes_share_one_and_count_exactly() {
        let _one_at_a_time = OWNERSHIP.lock().unwrap_or_else(|e| e.into_inner());
        let stripes = Arc::new(Stripes::new(2));
        let threads = OWNED_STRIPES + 9;
        let barrier = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (stripes, barrier) = (Arc::clone(&stripes), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    let stripe = thread_stripe();
                    // Every thread holds its stripe until all have one.
                    barrier.wait();
                    for _ in 0..10_000 {
                        stripes.add(stripe, 1, KindCounter::SampledOut);
                        stripes.add_extra(stripe, EXTRA_OVERWRITTEN);
                    }
                    stripe
                })
            })
            .collect();
        let chosen: Vec<usize> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let shared = chosen.iter().filter(|s| **s == SHARED_STRIPE).count();
        assert!(shared >= 9, "{shared} threads shared");
        let mut owned: Vec<usize> = chosen
            .iter()
            .copied()
            .filter(|s| *s != SHARED_STRIPE)
            .collect();
        let all = owned.len();
        owned.sort_unstable();
        owned.dedup();
        assert_eq!(owned.len(), all, "no owned stripe has two live owners");
        assert_eq!(
            stripes.sum(1, KindCounter::SampledOut),
            threads as u64 * 10_000
        );
        assert_eq!(
            stripes.sum_extra(EXTRA_OVERWRITTEN),
            threads as u64 * 10_000
        );
    }
}
