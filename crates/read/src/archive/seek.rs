//! Seeking in an archive by time, without a scan (version 3; docs/ARCHIVE.md, "Seeking").
//!
//! Entries are only roughly in time order (sorted within a drained batch, but several
//! producers, several rings and snapshot entries mix), so a plain binary search over times
//! would be wrong. The header carries a *lateness bound* `S`: for every record entry `i`,
//! `time_i >= max(time_0..=time_i) - S`. From it, with `M_i` the running maximum:
//!
//! * `time_i + S < since` proves `M_i < since`: every record up to `i` is older than `since`.
//!   A binary search moves right past such an entry and left otherwise; it ends at a start
//!   before which every record is older than `since`.
//! * `time_i >= until + S` proves `M_i >= until + S`: every record from `i` on is at or after
//!   `until`. The same search gives an end from which nothing is before `until`.
//! * Walking backwards, once `time_k + S` of some entry read is below a time `T`, every
//!   entry before it is older than `T` (`time_j <= M_k <= time_k + S`).

use super::layout::{ARCHIVE_HEADER_SIZE, ARCHIVE_VERSION, Bound, ENTRY_SIZE, RawEntry};
use super::reader::{ArchiveReader, ArchivedRecord};
use crate::ReadError;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Entries per read of a pass.
const CHUNK: u64 = 32_768;
/// Entries per read of a probe (snapshot runs are short).
const PROBE: u64 = 16;

/// Reads the entries from index `first` into `buffer` (a whole number of entries).
fn read_entries(file: &File, path: &Path, first: u64, buffer: &mut [u8]) -> Result<(), ReadError> {
    let offset = ARCHIVE_HEADER_SIZE as u64 + first * ENTRY_SIZE as u64;
    file.read_exact_at(buffer, offset).map_err(|error| {
        if error.kind() == std::io::ErrorKind::UnexpectedEof {
            ReadError::Archive {
                path: path.to_path_buf(),
                what: "the archive was truncated while being read".into(),
            }
        } else {
            ReadError::io(path, "reading an archive entry")(error)
        }
    })
}

/// `bound` extended over the record entries of `range`, in file order.
pub(crate) fn scan_bound(
    file: &File,
    path: &Path,
    version: u32,
    range: Range<u64>,
    mut bound: Bound,
) -> Result<Bound, ReadError> {
    let mut buffer =
        vec![0u8; CHUNK.min(range.end.saturating_sub(range.start)) as usize * ENTRY_SIZE];
    let mut entry = range.start;
    while entry < range.end {
        let count = (range.end - entry).min(CHUNK);
        let chunk = &mut buffer[..count as usize * ENTRY_SIZE];
        read_entries(file, path, entry, chunk)?;
        for bytes in chunk.chunks_exact(ENTRY_SIZE) {
            if let Some(time) = RawEntry::record_time(version, bytes) {
                bound.add(time);
            }
        }
        entry += count;
    }
    Ok(bound)
}

/// A record kept by [`ArchiveReader::last_records`], ordered by time, then file order.
struct Kept {
    order: u64,
    record: ArchivedRecord,
}

impl Kept {
    fn key(&self) -> (u64, u64) {
        (self.record.nanotime, self.order)
    }
}

impl PartialEq for Kept {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for Kept {}
impl PartialOrd for Kept {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Kept {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

/// The newest `n` of the records offered, by (time, order).
struct Newest {
    n: usize,
    heap: BinaryHeap<Reverse<Kept>>,
}

impl Newest {
    fn offer(&mut self, order: u64, record: ArchivedRecord) {
        let kept = Kept { order, record };
        if self.heap.len() < self.n {
            self.heap.push(Reverse(kept));
        } else if self
            .heap
            .peek()
            .is_some_and(|Reverse(oldest)| kept > *oldest)
        {
            self.heap.pop();
            self.heap.push(Reverse(kept));
        }
    }

    /// The time of the oldest kept record once `n` are kept.
    fn full_at(&self) -> Option<u64> {
        (self.heap.len() == self.n)
            .then(|| self.heap.peek().map(|Reverse(k)| k.record.nanotime))
            .flatten()
    }

    fn into_sorted(self) -> Vec<(u64, ArchivedRecord)> {
        let mut kept: Vec<Kept> = self.heap.into_iter().map(|Reverse(k)| k).collect();
        kept.sort_unstable();
        kept.into_iter().map(|k| (k.order, k.record)).collect()
    }
}

impl ArchiveReader {
    /// The lateness bound `S` of the whole file (docs/ARCHIVE.md, "Seeking"): no record is
    /// older than the newest record before it by more than `S` ns. `None` for versions 1 and
    /// 2, which carry no bound (they are read by scanning). Entries appended after the
    /// header's last checkpoint are scanned once, on first use.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("b.archive");
    /// ringlat_read::archive::ArchiveWriter::open(&path, 0).unwrap();
    /// let reader = ringlat_read::archive::ArchiveReader::open(&path).unwrap();
    /// assert_eq!(reader.lateness_bound().unwrap(), Some(0));
    /// ```
    pub fn lateness_bound(&self) -> Result<Option<u64>, ReadError> {
        Ok(self.whole_bound()?.map(|bound| bound.lateness))
    }

    /// The bound over every entry: the header's, extended over the entries after it.
    fn whole_bound(&self) -> Result<Option<Bound>, ReadError> {
        if self.version() != ARCHIVE_VERSION {
            return Ok(None);
        }
        if let Some(bound) = self.bound.get() {
            return Ok(Some(*bound));
        }
        let covered = self.header.bound_entries.min(self.len());
        let bound = scan_bound(
            self.file(),
            self.path(),
            ARCHIVE_VERSION,
            covered..self.len(),
            self.header.bound,
        )?;
        Ok(Some(*self.bound.get_or_init(|| bound)))
    }

    /// The oldest and newest record times of the file (version 3), from a short read: the
    /// newest is the running maximum kept with the lateness bound `S`; the oldest lies among
    /// the records before the running maximum passes the oldest seen plus `S` (no record after
    /// that can be older), looked for among the first 65,536 entries. `None` for versions 1
    /// and 2, a file without records, or an oldest not settled within those entries.
    ///
    /// A hint, to be checked: it counts every record entry, also one a pass skips as bad (an
    /// unused class or kind), so the records a pass reads may span less. Readers use it to
    /// guess what depends on the span before the pass that measures it.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("s.archive");
    /// ringlat_read::archive::ArchiveWriter::open(&path, 0).unwrap();
    /// let reader = ringlat_read::archive::ArchiveReader::open(&path).unwrap();
    /// assert_eq!(reader.time_span_hint().unwrap(), None); // no records
    /// ```
    pub fn time_span_hint(&self) -> Result<Option<(u64, u64)>, ReadError> {
        const PROBE: u64 = 65_536;
        let Some(bound) = self.whole_bound()? else {
            return Ok(None);
        };
        let end = self.len().min(PROBE);
        let mut buffer = vec![0u8; CHUNK.min(end) as usize * ENTRY_SIZE];
        let (mut oldest, mut newest) = (u64::MAX, 0u64);
        let mut entry = 0;
        while entry < end {
            let count = (end - entry).min(CHUNK);
            let chunk = &mut buffer[..count as usize * ENTRY_SIZE];
            read_entries(self.file(), self.path(), entry, chunk)?;
            for bytes in chunk.chunks_exact(ENTRY_SIZE) {
                let Some(time) = RawEntry::record_time(ARCHIVE_VERSION, bytes) else {
                    continue;
                };
                oldest = oldest.min(time);
                newest = newest.max(time);
                // Every later record is at or after `newest - S`.
                if newest.saturating_sub(bound.lateness) > oldest {
                    return Ok(Some((oldest, bound.max_time)));
                }
            }
            entry += count;
        }
        // The whole file was read: its oldest is known (none: no record at all).
        Ok((end == self.len() && oldest != u64::MAX).then_some((oldest, bound.max_time)))
    }

    /// The entries a pass over the records with `since <= time < until` must read: every
    /// such record lies in the range (records outside it may too; filter them as usual).
    /// Found by binary search with the lateness bound, a few small reads; without a bound
    /// (versions 1 and 2) the whole file.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("e.archive");
    /// ringlat_read::archive::ArchiveWriter::open(&path, 0).unwrap();
    /// let reader = ringlat_read::archive::ArchiveReader::open(&path).unwrap();
    /// assert_eq!(reader.entry_range(Some(5), None).unwrap(), 0..0);
    /// ```
    pub fn entry_range(
        &self,
        since: Option<u64>,
        until: Option<u64>,
    ) -> Result<Range<u64>, ReadError> {
        let len = self.len();
        let Some(lateness) = self.lateness_bound()? else {
            return Ok(0..len);
        };
        let start = match since {
            // Right past an entry whose time proves every record up to it is before `since`.
            Some(since) => self.partition(0..len, |time| time.saturating_add(lateness) < since)?,
            None => 0,
        };
        let end = match until {
            // Left of an entry whose time proves every record from it on is at or after `until`.
            Some(until) => {
                self.partition(start..len, |time| time < until.saturating_add(lateness))?
            }
            None => len,
        };
        Ok(start..end)
    }

    /// The binary search of [`entry_range`](Self::entry_range): the index where it ends. It
    /// moves past a record entry whose time passes `go_right`, and left of one that fails
    /// (a probe on a snapshot entry looks at the next record entry).
    fn partition(
        &self,
        range: Range<u64>,
        go_right: impl Fn(u64) -> bool,
    ) -> Result<u64, ReadError> {
        let (mut low, mut high) = (range.start, range.end);
        while low < high {
            let middle = low + (high - low) / 2;
            match self.next_record_time(middle, high)? {
                Some((index, time)) if go_right(time) => low = index + 1,
                // No record in middle..high, or one that stops the search: look left.
                _ => high = middle,
            }
        }
        Ok(low)
    }

    /// The first record entry in `from..end`, with its time.
    fn next_record_time(&self, from: u64, end: u64) -> Result<Option<(u64, u64)>, ReadError> {
        let mut buffer = [0u8; PROBE as usize * ENTRY_SIZE];
        let mut entry = from;
        while entry < end {
            let count = (end - entry).min(PROBE);
            let chunk = &mut buffer[..count as usize * ENTRY_SIZE];
            read_entries(self.file(), self.path(), entry, chunk)?;
            for (offset, bytes) in chunk.chunks_exact(ENTRY_SIZE).enumerate() {
                if let Some(time) = RawEntry::record_time(self.version(), bytes) {
                    return Ok(Some((entry + offset as u64, time)));
                }
            }
            entry += count;
        }
        Ok(None)
    }

    /// The newest `n` records of the entries in `range` that pass `keep`, oldest first,
    /// each with a number that increases in file order (ties in time are ordered by it).
    ///
    /// With a lateness bound it walks backwards from the end of `range` and stops once it
    /// holds `n` records and an entry read is older, by more than the bound, than the oldest
    /// of them: nothing before can be newer. Without one (versions 1 and 2) it reads the
    /// whole range, keeping `n` records at most.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("l.archive");
    /// ringlat_read::archive::ArchiveWriter::open(&path, 0).unwrap();
    /// let reader = ringlat_read::archive::ArchiveReader::open(&path).unwrap();
    /// assert!(reader.last_records(0..reader.len(), 10, |_| true).unwrap().is_empty());
    /// ```
    pub fn last_records(
        &self,
        range: Range<u64>,
        n: usize,
        mut keep: impl FnMut(&ArchivedRecord) -> bool,
    ) -> Result<Vec<(u64, ArchivedRecord)>, ReadError> {
        let mut newest = Newest {
            n,
            heap: BinaryHeap::with_capacity(n.min(1 << 20) + 1),
        };
        if n == 0 {
            return Ok(Vec::new());
        }
        let end = range.end.min(self.len());
        let Some(lateness) = self.lateness_bound()? else {
            let mut order = 0u64;
            self.for_each_in(range.start..end, |record| {
                if keep(&record) {
                    newest.offer(order, record);
                }
                order += 1;
            })?;
            return Ok(newest.into_sorted());
        };
        let mut high = end;
        let mut oldest_read = u64::MAX;
        while high > range.start {
            let low = high.saturating_sub(CHUNK).max(range.start);
            // Orders in low..high: below those of any later chunk, increasing in file order.
            let mut order = low;
            self.for_each_in(low..high, |record| {
                oldest_read = oldest_read.min(record.nanotime);
                if keep(&record) {
                    newest.offer(order, record);
                }
                order += 1;
            })?;
            high = low;
            if newest
                .full_at()
                .is_some_and(|oldest_kept| oldest_read.saturating_add(lateness) < oldest_kept)
            {
                break;
            }
        }
        Ok(newest.into_sorted())
    }
}
