//! Scanning an archive's entries at memory speed: large positioned reads into a reused buffer,
//! each entry decoded straight from its 32 bytes ([`RawEntry`]), its weight and validity looked
//! up in tables made once per scan (no float division, no allocation, no dynamic dispatch per
//! record). A scan covers a range of entries, so that a pass can be split into pieces folded by
//! several threads (and narrowed to a time range by a caller that knows where it starts).
//!
//! Entries are read in place from a private mapping of the piece, populated in one system call
//! (no copy, no page fault per page), registered with the reader's `SIGBUS` guard (module
//! `mapping`): a file truncated under the scan turns into zero pages and an error, never a
//! signal. When the guard has no free slot left, the scan reads by `pread` instead.

use super::layout::{ARCHIVE_HEADER_SIZE, ENTRY_SIZE, RawEntry, VERSION_1};
use super::reader::ArchiveReader;
use super::snapshot::SNAPSHOT_SOURCE;
use crate::mapping::GuardedPiece;
use crate::percentile::weight_of;
use crate::{ReadError, Sample};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;

/// Entries per mapping: 4 MiB, mapped and populated in one system call.
const MAP_ENTRIES: u64 = 1 << 17;

/// Entries per read when reading by `pread`: 256 KiB, small enough to stay in a core's cache
/// between the copy and the decode, large enough that the system call costs nothing per record.
const READ_ENTRIES: u64 = 8_192;

/// What a scan needs to know about an archive's header to decode an entry, as tables indexed
/// by the entry's class and kind bytes.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("t.archive");
/// ringlat_read::archive::ArchiveWriter::open(&path, 0).unwrap();
/// let reader = ringlat_read::archive::ArchiveReader::open(&path).unwrap();
/// let tables = ringlat_read::archive::EntryTables::of(&reader);
/// assert_eq!(tables.weight(0), ringlat_read::percentile::WEIGHT_ONE); // class 0 is p = 1
/// ```
#[derive(Debug, Clone)]
pub struct EntryTables {
    /// Version 2 and later mark snapshot entries with source byte 255; version 1 has none.
    skip_snapshots: bool,
    probability: [f64; 256],
    weight: [u128; 256],
    /// A class in use (probability in (0, 1]).
    class_ok: [bool; 256],
    /// A kind with a name (version 2), or any kind (version 1).
    kind_ok: [bool; 256],
}

impl EntryTables {
    /// The tables of an open archive.
    pub fn of(reader: &ArchiveReader) -> Self {
        let header = reader.header();
        let mut tables = EntryTables {
            skip_snapshots: header.version != 1,
            probability: header.classes,
            weight: [0; 256],
            class_ok: [false; 256],
            kind_ok: [false; 256],
        };
        for class in 0..256 {
            let p = header.classes[class];
            tables.class_ok[class] = p != 0.0;
            tables.weight[class] = weight_of(p, false);
        }
        for kind in 0..256 {
            tables.kind_ok[kind] = header.version == VERSION_1 || header.names[kind].is_some();
        }
        tables
    }

    /// The fixed-point weight (1/p) of a record of sampling class `class`.
    pub fn weight(&self, class: u8) -> u128 {
        self.weight[class as usize]
    }

    /// Decodes one entry: `Ok(Some)` a record and its weight, `Ok(None)` a snapshot entry (not
    /// a record), `Err(())` a bad entry (an unused class, or a kind without a name).
    #[inline(always)]
    fn decode(&self, bytes: &[u8; ENTRY_SIZE]) -> Result<Option<(Sample, u128)>, ()> {
        let raw = RawEntry::parse(bytes);
        if raw.source == SNAPSHOT_SOURCE && self.skip_snapshots {
            return Ok(None);
        }
        let (class, kind) = (raw.class as usize, raw.kind as usize);
        if !(self.class_ok[class] & self.kind_ok[kind]) {
            return Err(());
        }
        Ok(Some((
            Sample {
                nanotime: raw.nanotime,
                trace_id: raw.trace_id,
                delta_ns: raw.delta_ns,
                status: raw.status,
                kind: raw.kind,
                probability: self.probability[class],
            },
            self.weight[class],
        )))
    }
}

impl ArchiveReader {
    /// Visits the records among entries `range` (entry indices, clamped to [`len`](Self::len))
    /// in file order, each with its fixed-point weight 1/p (see [`crate::percentile`]).
    /// Snapshot entries are passed over; bad entries are skipped and added to
    /// [`bad_entries`](Self::bad_entries) (reset it with [`begin_scan`](Self::begin_scan)
    /// before the first piece of a pass). `buffer` is reused between calls; pieces of one
    /// pass may be scanned by several threads at once. Returns the entries the range held.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let (ring_path, archive_path) = (dir.path().join("s.ring"), dir.path().join("s.archive"));
    /// use ringlat_read::archive::{ArchiveReader, ArchiveWriter, EntryTables, RingInfo};
    /// let ring = ringlat::Ring::builder(&ring_path).kind(0, "op").create().unwrap();
    /// for trace in 0..10 { ring.record(0, trace, 0, std::time::Duration::from_micros(trace)); }
    /// let mut drainer = ringlat_read::Drainer::open(&ring_path).unwrap();
    /// let info = RingInfo::of(drainer.file());
    /// let mut archive = ArchiveWriter::open(&archive_path, 0).unwrap();
    /// drainer.drain_batch(100, |batch| archive.append(&info, batch).map(drop)).unwrap();
    /// let reader = ArchiveReader::open(&archive_path).unwrap();
    /// let tables = EntryTables::of(&reader);
    /// let (mut buffer, mut seen) = (Vec::new(), Vec::new());
    /// reader.begin_scan();
    /// reader.scan(&tables, 2..5, &mut buffer, |sample, _weight| seen.push(sample.trace_id)).unwrap();
    /// assert_eq!(seen, [2, 3, 4]);
    /// assert_eq!(reader.bad_entries(), 0);
    /// ```
    pub fn scan(
        &self,
        tables: &EntryTables,
        range: Range<u64>,
        buffer: &mut Vec<u8>,
        mut visit: impl FnMut(&Sample, u128),
    ) -> Result<u64, ReadError> {
        self.scan_indexed(
            tables,
            range,
            buffer,
            #[inline(always)]
            |_, sample, weight| visit(sample, weight),
        )
    }

    /// [`scan`](Self::scan) telling `visit` each record's entry index first: where a pass
    /// that found a record once can read it again alone (`scan` of that index alone).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("i.archive");
    /// use ringlat_read::archive::{ArchiveReader, ArchiveWriter, EntryTables, RingInfo};
    /// use ringlat_read::Decoded;
    /// let mut writer = ArchiveWriter::open(&path, 0).unwrap();
    /// let ring = RingInfo::synthetic(0, 1 << 20, 1, &["op"]);
    /// let batch: Vec<Decoded> = (0..4u64)
    ///     .map(|i| Decoded {
    ///         position: i as u32,
    ///         kind: 0,
    ///         class: 0,
    ///         probability: 1.0,
    ///         record: ringlat_format::Record::new(i, 100 + i, 0, 7),
    ///     })
    ///     .collect();
    /// writer.append(&ring, &batch).unwrap();
    /// let reader = ArchiveReader::open(&path).unwrap();
    /// let tables = EntryTables::of(&reader);
    /// let mut seen = Vec::new();
    /// reader.begin_scan();
    /// reader
    ///     .scan_indexed(&tables, 1..3, &mut Vec::new(), |entry, s, _| seen.push((entry, s.trace_id)))
    ///     .unwrap();
    /// assert_eq!(seen, [(1, 1), (2, 2)]);
    /// ```
    pub fn scan_indexed(
        &self,
        tables: &EntryTables,
        range: Range<u64>,
        buffer: &mut Vec<u8>,
        mut visit: impl FnMut(u64, &Sample, u128),
    ) -> Result<u64, ReadError> {
        let end = range.end.min(self.len());
        let start = range.start.min(end);
        let mut bad = 0u64;
        // Snapshot entries met, with their indices, when the caller keeps them (module `stash`).
        let keep = self.keeps_snapshots();
        let mut snapshots = Vec::new();
        // The index from the chunk's first, not a counter the closure keeps: a counter it
        // captured lived in memory (a load and a store per entry).
        let mut decode = |first: u64, entries: &[u8]| {
            for (at, bytes) in entries.as_chunks::<ENTRY_SIZE>().0.iter().enumerate() {
                let index = first + at as u64;
                match tables.decode(bytes) {
                    Ok(Some((sample, weight))) => visit(index, &sample, weight),
                    Ok(None) => {
                        // One past the limit tells the stash it was passed.
                        if keep && snapshots.len() <= super::stash::STASH_LIMIT {
                            snapshots.push((index, *bytes));
                        }
                    }
                    Err(()) => bad += 1,
                }
            }
        };
        let mut entry = start;
        while entry < end {
            let count = (end - entry).min(MAP_ENTRIES);
            read_entries(
                self.file(),
                self.path(),
                entry..entry + count,
                buffer,
                &mut decode,
            )?;
            entry += count;
        }
        // Relaxed: a statistic, read after the pass's threads are joined.
        self.bad_entries_counter().fetch_add(bad, Ordering::Relaxed);
        if keep {
            self.stash(start..end, snapshots);
        }
        Ok(end - start)
    }

    /// Starts a pass made of [`scan`](Self::scan)s: [`bad_entries`](Self::bad_entries) counts
    /// from zero again.
    pub fn begin_scan(&self) {
        // Relaxed: pieces of the pass start after this (thread spawn or program order).
        self.bad_entries_counter().store(0, Ordering::Relaxed);
        self.clear_stash();
    }
}

/// Tests read by `pread` too (the way taken when the guard has no free slot).
#[cfg(test)]
static PREAD_ONLY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[cfg(test)]
fn pread_only() -> bool {
    // Relaxed: a test switch; either way reads the same bytes.
    PREAD_ONLY.load(Ordering::Relaxed)
}

#[cfg(not(test))]
#[inline]
fn pread_only() -> bool {
    false
}

/// Hands the bytes of whole entries `range` of the archive `file` to `decode(first entry's
/// index, bytes)`, a piece at a time: straight from a populated read-only mapping (no copy), or through `buffer` by
/// `pread` when the mapping cannot be guarded against a truncation.
pub(crate) fn read_entries(
    file: &std::fs::File,
    path: &std::path::Path,
    range: Range<u64>,
    buffer: &mut Vec<u8>,
    decode: &mut impl FnMut(u64, &[u8]),
) -> Result<(), ReadError> {
    let truncated = || ReadError::Archive {
        path: path.to_path_buf(),
        what: "the archive was truncated while being read".into(),
    };
    let mut entry = range.start;
    while entry < range.end {
        let count = (range.end - entry).min(MAP_ENTRIES);
        let offset = ARCHIVE_HEADER_SIZE as u64 + entry * ENTRY_SIZE as u64;
        let len = count as usize * ENTRY_SIZE;
        if !pread_only()
            && let Ok(map) = GuardedPiece::map(file, offset, len)
            && map.guarded()
        {
            decode(entry, map.bytes());
            if map.truncated() {
                // What was read after the file shrank were zeros: the caller drops it all.
                return Err(truncated());
            }
            entry += count;
            continue;
        }
        buffer.resize(READ_ENTRIES as usize * ENTRY_SIZE, 0);
        let end = entry + count;
        while entry < end {
            let count = (end - entry).min(READ_ENTRIES);
            let chunk = &mut buffer[..count as usize * ENTRY_SIZE];
            let offset = ARCHIVE_HEADER_SIZE as u64 + entry * ENTRY_SIZE as u64;
            if let Err(error) = file.read_exact_at(chunk, offset) {
                if error.kind() == std::io::ErrorKind::UnexpectedEof {
                    return Err(truncated());
                }
                return Err(ReadError::io(path, "reading an archive entry")(error));
            }
            decode(entry, chunk);
            entry += count;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Decoded;
    use crate::archive::{ArchiveWriter, RingInfo};
    use ringlat_format::Record;

    fn archive(dir: &std::path::Path, count: u64) -> std::path::PathBuf {
        let path = dir.join("scan.archive");
        let mut writer = ArchiveWriter::open(&path, 1).unwrap();
        let ring = RingInfo::synthetic(1, 1 << 30, 1_000, &["a", "b"]);
        let batch: Vec<Decoded> = (0..count)
            .map(|i| Decoded {
                position: i as u32,
                kind: (i % 2) as u8,
                class: 0,
                probability: [1.0, 0.25][(i % 2) as usize],
                record: Record::new(i, 1_000 + i, (i % 3) as u8, (i % 1000) as i32),
            })
            .collect();
        writer.append(&ring, &batch).unwrap();
        path
    }

    /// Pieces of any size visit exactly what `for_each` visits, in order, with the weight of
    /// their probability; bad entries are counted the same way.
    #[test]
    fn pieces_match_for_each() {
        for version in [3u32, 2] {
            pieces_match_for_each_in_version(version);
        }
    }

    fn pieces_match_for_each_in_version(version: u32) {
        let dir = tempfile::tempdir().unwrap();
        let path = archive(dir.path(), 20_000);
        // Damage two entries: an unused class, a kind without a name.
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let at = |entry: u64, field: u64| ARCHIVE_HEADER_SIZE as u64 + entry * 32 + field;
        file.write_all_at(&[200], at(10, 26)).unwrap();
        file.write_all_at(&[77], at(12_345, 25)).unwrap();
        if version == 2 {
            // A version-2 header: no lateness bound (bytes 40..64 were reserved).
            file.write_all_at(&2u32.to_le_bytes(), 8).unwrap();
            file.write_all_at(&[0; 24], 40).unwrap();
        }
        let reader = ArchiveReader::open(&path).unwrap();
        assert_eq!(reader.version(), version);
        let mut expected = Vec::new();
        reader.for_each(|r| expected.push(r)).unwrap();
        let bad = reader.bad_entries();
        assert_eq!(bad, 2);
        let tables = EntryTables::of(&reader);
        for (piece, pread) in [
            (1u64, false),
            (7, false),
            (8_192, true),
            (8_193, true),
            (100_000, false),
            (100_000, true),
        ] {
            PREAD_ONLY.store(pread, Ordering::Relaxed);
            let mut seen = Vec::new();
            let mut buffer = Vec::new();
            reader.begin_scan();
            let mut start = 0;
            while start < reader.len() {
                let held = reader
                    .scan(&tables, start..start + piece, &mut buffer, |s, w| {
                        assert_eq!(w, weight_of(s.probability, false));
                        seen.push((s.trace_id, s.nanotime, s.delta_ns, s.status, s.kind));
                    })
                    .unwrap();
                assert_eq!(held, piece.min(reader.len() - start));
                start += piece;
            }
            let want: Vec<_> = expected
                .iter()
                .map(|r| (r.trace_id, r.nanotime, r.delta_ns, r.status, r.kind))
                .collect();
            assert_eq!(seen, want, "v{version}, pieces of {piece}, pread {pread}");
            assert_eq!(reader.bad_entries(), bad);
        }
        PREAD_ONLY.store(false, Ordering::Relaxed);
    }

    #[test]
    fn truncation_under_the_scan_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = archive(dir.path(), 10_000);
        let reader = ArchiveReader::open(&path).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(ARCHIVE_HEADER_SIZE as u64 + 32 * 100)
            .unwrap();
        let tables = EntryTables::of(&reader);
        // Mapped (the pages past the end turn into zeros, and an error), then by pread.
        let error = reader
            .scan(&tables, 0..reader.len(), &mut Vec::new(), |_, _| {})
            .unwrap_err();
        assert!(error.to_string().contains("truncated"), "{error}");
        PREAD_ONLY.store(true, Ordering::Relaxed);
        let by_pread = reader
            .scan(&tables, 0..reader.len(), &mut Vec::new(), |_, _| {})
            .unwrap_err();
        PREAD_ONLY.store(false, Ordering::Relaxed);
        assert!(by_pread.to_string().contains("truncated"), "{by_pread}");
    }
}
