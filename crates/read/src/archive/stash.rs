//! The snapshot entries a pass's scans met, kept so that the interval snapshots can be decoded
//! without reading the archive again.
//!
//! `ringcat pct --by kind` reads every entry once for the sampled percentiles and would then
//! read the whole file a second time, serially, to find the snapshot entries the population
//! line comes from (module `snapshot`): on a 640 MB archive that second read cost about a
//! fifth of the command's CPU. A caller that will want [`ArchiveReader::snapshot_deltas`]
//! after a pass says so with [`ArchiveReader::keep_snapshots`]; the pass's scans, on any
//! number of threads, then hand the snapshot entries they skip to the stash with the ranges
//! they covered. When those ranges cover every entry, the snapshots are decoded from the
//! stash; otherwise (a pass narrowed by time, an archive that grew) the file is read as before.
//! Keeping is opt-in because snapshot entries can be many (a day of one-second snapshots), and
//! bounded: past [`STASH_LIMIT`] entries an archive's stash gives up and the file is read.

use super::layout::ENTRY_SIZE;
use super::reader::ArchiveReader;
use std::ops::Range;
use std::sync::atomic::Ordering;

/// At most this many snapshot entries are kept per archive and pass (8 MiB): a day of
/// one-minute snapshots of a few kinds fits; past it (one-second snapshots over days, or a
/// damaged or hostile file whose entries all look like snapshot entries) the stash gives up
/// and the snapshots are read from the file, so that keeping never costs more memory than this.
pub(crate) const STASH_LIMIT: usize = 1 << 18;

/// Snapshot entries of one pass, with their entry indices, and the ranges scanned.
#[derive(Debug, Default)]
pub(crate) struct SnapshotStash {
    scanned: Vec<Range<u64>>,
    entries: Vec<(u64, [u8; ENTRY_SIZE])>,
    /// More than [`STASH_LIMIT`] entries were met: nothing is kept.
    overflowed: bool,
}

impl SnapshotStash {
    /// Adds what one scan of `range` met (a scan hands over at most [`STASH_LIMIT`] + 1
    /// entries: enough to tell that the limit was passed).
    pub(crate) fn add(&mut self, range: Range<u64>, entries: Vec<(u64, [u8; ENTRY_SIZE])>) {
        self.scanned.push(range);
        if self.overflowed || self.entries.len() + entries.len() > STASH_LIMIT {
            self.overflowed = true;
            self.entries = Vec::new();
            return;
        }
        self.entries.extend(entries);
    }

    /// The snapshot entries in file order (index, bytes), when the scans covered entries
    /// `0..len` entirely and kept every snapshot entry; `None` otherwise.
    fn complete(mut self, len: u64) -> Option<Vec<(u64, [u8; ENTRY_SIZE])>> {
        if self.overflowed {
            return None;
        }
        self.scanned.sort_unstable_by_key(|range| range.start);
        let mut covered = 0;
        for range in &self.scanned {
            if range.start > covered {
                return None;
            }
            covered = covered.max(range.end);
        }
        if covered < len {
            return None;
        }
        // Pieces may overlap (a caller's choice): an entry met twice is one entry.
        self.entries.sort_unstable_by_key(|(index, _)| *index);
        self.entries.dedup_by_key(|(index, _)| *index);
        Some(self.entries)
    }
}

impl ArchiveReader {
    /// Keeps (or stops keeping) the snapshot entries the scans of the next passes meet, so
    /// that [`snapshot_deltas`](Self::snapshot_deltas) after a pass that scanned every entry
    /// decodes them without reading the file again. [`begin_scan`](Self::begin_scan) empties
    /// what an earlier pass kept.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("k.archive");
    /// # ringlat_read::archive::ArchiveWriter::open(&path, 0).unwrap();
    /// use ringlat_read::archive::{ArchiveReader, EntryTables};
    /// let reader = ArchiveReader::open(&path).unwrap();
    /// reader.keep_snapshots(true);
    /// reader.begin_scan();
    /// let tables = EntryTables::of(&reader);
    /// reader.scan(&tables, 0..reader.len(), &mut Vec::new(), |_, _| {}).unwrap();
    /// assert!(reader.snapshot_deltas().unwrap().is_empty()); // from what the scan kept
    /// ```
    pub fn keep_snapshots(&self, keep: bool) {
        // Relaxed: set before the pass's threads are spawned (or in program order).
        self.keeping_snapshots.store(keep, Ordering::Relaxed);
    }

    /// True while scans keep snapshot entries.
    pub(crate) fn keeps_snapshots(&self) -> bool {
        // Relaxed: see keep_snapshots.
        self.keeping_snapshots.load(Ordering::Relaxed)
    }

    /// Empties the stash (the start of a pass).
    pub(crate) fn clear_stash(&self) {
        *self.lock_stash() = SnapshotStash::default();
    }

    /// What one scan of `range` met, added to the stash.
    pub(crate) fn stash(&self, range: Range<u64>, entries: Vec<(u64, [u8; ENTRY_SIZE])>) {
        self.lock_stash().add(range, entries);
    }

    /// The stashed snapshot entries in file order, taken, when the last pass kept them and
    /// scanned every entry of the archive.
    pub(crate) fn take_stash(&self) -> Option<Vec<(u64, [u8; ENTRY_SIZE])>> {
        if !self.keeps_snapshots() {
            return None;
        }
        std::mem::take(&mut *self.lock_stash()).complete(self.len())
    }

    fn lock_stash(&self) -> std::sync::MutexGuard<'_, SnapshotStash> {
        // A panic while holding the lock left at worst a partial stash: `complete` then
        // finds a range missing and the file is read again.
        self.stash
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(byte: u8) -> [u8; ENTRY_SIZE] {
        [byte; ENTRY_SIZE]
    }

    #[test]
    fn complete_only_when_the_ranges_cover_every_entry() {
        let mut stash = SnapshotStash::default();
        stash.add(5..10, vec![(7, entry(7))]);
        stash.add(0..5, vec![(1, entry(1)), (2, entry(2))]);
        let entries = stash.complete(10).unwrap();
        assert_eq!(
            entries.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            [1, 2, 7]
        );

        let mut gap = SnapshotStash::default();
        gap.add(0..4, vec![]);
        gap.add(5..10, vec![]);
        assert!(gap.complete(10).is_none());

        let mut short = SnapshotStash::default();
        short.add(0..9, vec![]);
        assert!(short.complete(10).is_none());

        let mut overlapping = SnapshotStash::default();
        overlapping.add(0..6, vec![(5, entry(5))]);
        overlapping.add(4..10, vec![(5, entry(5))]);
        assert_eq!(overlapping.complete(10).unwrap().len(), 1);

        // Past the limit, in one scan or over several, nothing is kept.
        let mut one = SnapshotStash::default();
        let over: Vec<_> = (0..=STASH_LIMIT as u64).map(|i| (i, entry(1))).collect();
        one.add(0..10, over);
        assert!(one.complete(10).is_none());
        let mut many = SnapshotStash::default();
        let half: Vec<_> = (0..STASH_LIMIT as u64 / 2 + 1)
            .map(|i| (i, entry(1)))
            .collect();
        many.add(0..5, half.clone());
        many.add(5..10, half);
        assert!(many.entries.is_empty());
        assert!(many.complete(10).is_none());
    }
}
