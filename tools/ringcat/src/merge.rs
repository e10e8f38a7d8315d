//! Merging many files' records by time, streaming: per file a reorder window that puts its
//! records in time order, and a heap over the files' next records (a k-way merge).
//!
//! A file's window is either exact or fixed:
//! * **exact** (an archive of version 3, whose header bounds how late a record can be, or a
//!   ring, whose bound a first pass measures: [`crate::ring_order`]): a record leaves the window once no record still to come can
//!   be older. The window holds the records of one lateness bound of time, at most
//!   [`EXACT_WINDOW_CAP`] records (past that it behaves as a fixed window of that size).
//! * **fixed** ([`WINDOW`] records; archives of versions 1 and 2): a record that arrives
//!   after a newer one already left the window is written where it arrived, out of time
//!   order, and counted in [`Merger::late`].
//!
//! Ties in time keep file order (the files in the order given, then each file's order), as a
//! stable sort of everything by time would.

use crate::Failure;
use ringlat_read::Sample;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// Records per file held back to put a file without a lateness bound in time order.
pub(crate) const WINDOW: usize = 8192;

/// The most records an exact window holds (about 56 MiB a file): a file whose lateness bound
/// spans more records (a damaged header, or callers' clocks far apart) is merged as with a
/// fixed window of this size, records later than it counted, rather than held in memory.
pub(crate) const EXACT_WINDOW_CAP: usize = 1 << 20;

/// Where a file's records come from, in file order.
pub(crate) trait Feed {
    /// Appends the next records (at least one unless the file is done) to `into`, which
    /// may hold records already; `false` when nothing was appended: the file is done.
    fn refill(&mut self, into: &mut Vec<Sample>) -> Result<bool, Failure>;
}

/// How a file's records are put in time order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Window {
    /// No record comes later than this many ns behind the newest one before it.
    Exact(u64),
    /// Hold this many records; later ones are counted as late.
    Fixed(usize),
}

/// A record in a reorder window, ordered by time then arrival.
struct Pending {
    nanotime: u64,
    order: u64,
    sample: Sample,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.nanotime, self.order).cmp(&(other.nanotime, other.order))
    }
}

/// One file's records in time order (as far as its window allows).
pub(crate) struct Stream<F> {
    feed: F,
    batch: Vec<Sample>,
    /// Next unread record of `batch`.
    at: usize,
    done: bool,
    window: BinaryHeap<Reverse<Pending>>,
    mode: Window,
    order: u64,
    /// The newest time read so far.
    newest_read: u64,
    /// The time of the last record that left the window.
    last_out: Option<u64>,
    late: u64,
}

impl<F: Feed> Stream<F> {
    pub(crate) fn new(feed: F, mode: Window) -> Self {
        Stream {
            feed,
            batch: Vec::new(),
            at: 0,
            done: false,
            window: BinaryHeap::new(),
            mode,
            order: 0,
            newest_read: 0,
            last_out: None,
            late: 0,
        }
    }

    /// Reads one more record into the window; `false` at the end of the file.
    fn read_one(&mut self) -> Result<bool, Failure> {
        while self.at == self.batch.len() {
            if self.done {
                return Ok(false);
            }
            self.batch.clear();
            self.at = 0;
            self.done = !self.feed.refill(&mut self.batch)?;
        }
        let sample = self.batch[self.at];
        self.at += 1;
        self.order += 1;
        self.newest_read = self.newest_read.max(sample.nanotime);
        self.window.push(Reverse(Pending {
            nanotime: sample.nanotime,
            order: self.order,
            sample,
        }));
        Ok(true)
    }

    /// True when the window's oldest record can leave: nothing still to come is older.
    fn ready(&self) -> bool {
        let Some(Reverse(oldest)) = self.window.peek() else {
            return false;
        };
        match self.mode {
            // Every record still to come is at or after newest_read - bound; a tie comes
            // later in file order.
            Window::Exact(bound) => {
                oldest.nanotime <= self.newest_read.saturating_sub(bound)
                    || self.window.len() > EXACT_WINDOW_CAP
            }
            Window::Fixed(size) => self.window.len() > size,
        }
    }

    /// Fills the window until its oldest record may leave (or the file ends); that record's
    /// time.
    fn head(&mut self) -> Result<Option<u64>, Failure> {
        while !self.ready() {
            if !self.read_one()? {
                break;
            }
        }
        Ok(self.window.peek().map(|Reverse(p)| p.nanotime))
    }

    /// Takes the window's oldest record (after [`head`](Self::head)).
    fn pop(&mut self) -> Option<Sample> {
        let Reverse(pending) = self.window.pop()?;
        if self.last_out.is_some_and(|last| pending.nanotime < last) {
            self.late += 1;
        } else {
            self.last_out = Some(pending.nanotime);
        }
        Some(pending.sample)
    }
}

/// A k-way merge by time over streams (the index of a stream is its place in the order of
/// files given).
pub(crate) struct Merger<F> {
    streams: Vec<Stream<F>>,
    heads: BinaryHeap<Reverse<(u64, usize)>>,
    started: bool,
}

impl<F: Feed> Merger<F> {
    pub(crate) fn new(streams: Vec<Stream<F>>) -> Self {
        Merger {
            streams,
            heads: BinaryHeap::new(),
            started: false,
        }
    }

    /// The next record by time, with the index of its stream.
    pub(crate) fn next(&mut self) -> Result<Option<(usize, Sample)>, Failure> {
        if !self.started {
            self.started = true;
            for index in 0..self.streams.len() {
                if let Some(time) = self.streams[index].head()? {
                    self.heads.push(Reverse((time, index)));
                }
            }
        }
        let Some(Reverse((_, index))) = self.heads.pop() else {
            return Ok(None);
        };
        let stream = &mut self.streams[index];
        let sample = stream.pop();
        if let Some(time) = stream.head()? {
            self.heads.push(Reverse((time, index)));
        }
        Ok(sample.map(|s| (index, s)))
    }

    /// Records written out of time order because they came later than a fixed window.
    pub(crate) fn late(&self) -> u64 {
        self.streams.iter().map(|s| s.late).sum()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A feed over a vector, a few records per refill.
    struct Listed(std::vec::IntoIter<Sample>);

    impl Feed for Listed {
        fn refill(&mut self, into: &mut Vec<Sample>) -> Result<bool, Failure> {
            let before = into.len();
            into.extend(self.0.by_ref().take(3));
            Ok(into.len() > before)
        }
    }

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

    fn merged(files: Vec<(Vec<u64>, Window)>) -> (Vec<(usize, u64, u64)>, u64) {
        let streams = files
            .into_iter()
            .map(|(times, mode)| {
                let samples: Vec<Sample> = times
                    .iter()
                    .enumerate()
                    .map(|(i, t)| sample(*t, i as u64))
                    .collect();
                Stream::new(Listed(samples.into_iter()), mode)
            })
            .collect();
        let mut merger = Merger::new(streams);
        let mut out = Vec::new();
        while let Some((index, s)) = merger.next().unwrap() {
            out.push((index, s.nanotime, s.trace_id));
        }
        (out, merger.late())
    }

    #[test]
    fn files_interleave_by_time_and_ties_keep_file_order() {
        let (out, late) = merged(vec![
            (vec![1, 3, 3, 5], Window::Exact(0)),
            (vec![2, 3, 4], Window::Fixed(WINDOW)),
        ]);
        assert_eq!(
            out,
            [
                (0, 1, 0),
                (1, 2, 0),
                (0, 3, 1),
                (0, 3, 2),
                (1, 3, 1),
                (1, 4, 2),
                (0, 5, 3)
            ]
        );
        assert_eq!(late, 0);
    }

    #[test]
    fn an_exact_window_sorts_records_within_the_bound() {
        let times = vec![10, 7, 12, 9, 15, 13, 20, 18, 18, 25];
        let (out, late) = merged(vec![(times.clone(), Window::Exact(3))]);
        let mut sorted: Vec<(u64, u64)> = times
            .iter()
            .enumerate()
            .map(|(i, t)| (*t, i as u64))
            .collect();
        sorted.sort();
        let got: Vec<(u64, u64)> = out.iter().map(|(_, t, i)| (*t, *i)).collect();
        assert_eq!(got, sorted);
        assert_eq!(late, 0);
    }

    #[test]
    fn an_exact_window_narrower_than_the_lateness_misorders() {
        // A window that ignored the bound would misorder: with 1 where 3 is needed, 9 comes
        // out after 10 (and is counted late); with 3, in order.
        let (out, late) = merged(vec![(vec![10, 12, 9], Window::Exact(1))]);
        let times: Vec<u64> = out.iter().map(|(_, t, _)| *t).collect();
        assert_eq!((times, late), (vec![10, 9, 12], 1));
        let (out, late) = merged(vec![(vec![10, 12, 9], Window::Exact(3))]);
        let times: Vec<u64> = out.iter().map(|(_, t, _)| *t).collect();
        assert_eq!((times, late), (vec![9, 10, 12], 0));
    }

    #[test]
    fn an_exact_window_holds_at_most_its_cap() {
        // A bound of u64::MAX (a damaged header) would hold the whole file: the window
        // releases its oldest record once it holds more than the cap.
        let count = EXACT_WINDOW_CAP as u64 + 10;
        let samples: Vec<Sample> = (1..=count).map(|i| sample(i, i)).collect();
        let mut stream = Stream::new(Listed(samples.into_iter()), Window::Exact(u64::MAX));
        assert_eq!(stream.head().unwrap(), Some(1));
        assert_eq!(stream.window.len(), EXACT_WINDOW_CAP + 1);
        let mut merger = Merger::new(vec![stream]);
        let mut seen = 0u64;
        while let Some((_, s)) = merger.next().unwrap() {
            seen += 1;
            assert_eq!(s.nanotime, seen);
        }
        assert_eq!((seen, merger.late()), (count, 0));
    }

    #[test]
    fn records_later_than_a_fixed_window_are_counted() {
        let (out, late) = merged(vec![(vec![5, 6, 7, 8, 1, 9], Window::Fixed(2))]);
        let times: Vec<u64> = out.iter().map(|(_, t, _)| *t).collect();
        assert_eq!(times, [5, 6, 1, 7, 8, 9]);
        assert_eq!(late, 1);
    }
}
