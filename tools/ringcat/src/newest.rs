//! The newest N of the records offered, by time, in memory for N records: what `--last N`
//! keeps of a ring as it reads it backwards (see [`crate::select`]).

use ringlat_read::Sample;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// A record kept, ordered by time, then by the order it was offered in (ties: the later
/// offered is the newer, as in a stable sort by time).
struct Kept<T> {
    nanotime: u64,
    order: u64,
    item: T,
}

impl<T> Kept<T> {
    fn key(&self) -> (u64, u64) {
        (self.nanotime, self.order)
    }
}

impl<T> PartialEq for Kept<T> {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl<T> Eq for Kept<T> {}
impl<T> PartialOrd for Kept<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Kept<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

/// The newest `n` samples offered (each with an item of the caller's), by (time, order):
/// a heap of at most `n`, its oldest on top, so a record older than all of them costs one
/// comparison.
pub(crate) struct Newest<T> {
    n: usize,
    heap: BinaryHeap<Reverse<Kept<T>>>,
}

impl<T> Newest<T> {
    pub(crate) fn new(n: usize) -> Self {
        Newest {
            n,
            heap: BinaryHeap::with_capacity(n.min(1 << 20) + 1),
        }
    }

    /// Offers a record, `order` its place in the file (of two records of the same time, the
    /// greater order is the newer); `item` is made only if it is kept.
    #[inline]
    pub(crate) fn offer(&mut self, order: u64, sample: &Sample, item: impl FnOnce(&Sample) -> T) {
        if self.heap.len() < self.n {
            let item = item(sample);
            self.heap.push(Reverse(Kept {
                nanotime: sample.nanotime,
                order,
                item,
            }));
        } else if let Some(mut oldest) = self.heap.peek_mut()
            && (sample.nanotime, order) > oldest.0.key()
        {
            *oldest = Reverse(Kept {
                nanotime: sample.nanotime,
                order,
                item: item(sample),
            });
        }
    }

    /// The time of the oldest record kept, once `n` are kept.
    pub(crate) fn full_at(&self) -> Option<u64> {
        self.heap
            .peek()
            .filter(|_| self.heap.len() == self.n)
            .map(|Reverse(kept)| kept.nanotime)
    }

    /// The kept records, oldest first, each as (time, order offered, item).
    pub(crate) fn into_sorted(self) -> Vec<(u64, u64, T)> {
        let mut kept: Vec<Kept<T>> = self.heap.into_iter().map(|Reverse(k)| k).collect();
        kept.sort_unstable();
        kept.into_iter()
            .map(|k| (k.nanotime, k.order, k.item))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(nanotime: u64, trace_id: u64) -> Sample {
        Sample {
            nanotime,
            trace_id,
            delta_ns: 1,
            status: 0,
            kind: 0,
            probability: 1.0,
        }
    }

    /// Against a stable sort of everything by time, its last n: the same records in the
    /// same order, ties included, for every n, whatever the order they are offered in.
    #[test]
    fn keeps_what_a_stable_sort_keeps_last() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let samples: Vec<Sample> = (0..300)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                sample(state % 50, i)
            })
            .collect();
        let mut sorted = samples.clone();
        sorted.sort_by_key(|s| s.nanotime);
        for n in [0, 1, 2, 7, 50, 299, 300, 301] {
            let expected: Vec<u64> = sorted[sorted.len().saturating_sub(n)..]
                .iter()
                .map(|s| s.trace_id)
                .collect();
            // Forwards, then backwards (as a ring is read for --last).
            let mut newest = Newest::new(n);
            for (order, s) in samples.iter().enumerate() {
                newest.offer(order as u64, s, |s| s.trace_id);
            }
            let kept: Vec<u64> = newest.into_sorted().into_iter().map(|k| k.2).collect();
            assert_eq!(kept, expected, "n = {n}");
            let mut newest = Newest::new(n);
            for (order, s) in samples.iter().enumerate().rev() {
                newest.offer(order as u64, s, |s| s.trace_id);
            }
            let full = newest.full_at();
            assert_eq!(full.is_some(), n > 0 && n <= samples.len(), "n = {n}");
            if let Some(oldest_kept) = full {
                assert_eq!(oldest_kept, sorted[sorted.len() - n].nanotime, "n = {n}");
            }
            let kept: Vec<u64> = newest.into_sorted().into_iter().map(|k| k.2).collect();
            assert_eq!(kept, expected, "n = {n} backwards");
        }
    }
}
