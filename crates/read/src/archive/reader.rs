//! Reading an archive, streaming, with every field it trusts checked.

use super::RingIdentity;
use super::layout::{ARCHIVE_HEADER_SIZE, Bound, ENTRY_SIZE, Header, RawEntry, VERSION_1};
use super::stash::SnapshotStash;
use crate::ReadError;
use std::fs::{File, OpenOptions};
use std::ops::Range;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// One archived record, with its latency already in nanoseconds.
///
/// ```
/// let r = ringlat_read::archive::ArchivedRecord {
///     trace_id: 1, nanotime: 2, delta_ns: 3, status: 0, kind: 0, probability: 0.5,
/// };
/// assert_eq!(1.0 / r.probability, 2.0); // its weight
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArchivedRecord {
    /// Request id.
    pub trace_id: u64,
    /// UNIX-epoch ns.
    pub nanotime: u64,
    /// Latency in ns.
    pub delta_ns: i64,
    /// Caller's status.
    pub status: u8,
    /// Operation kind (the archive's kind id; see [`ArchiveReader::kind_name`]).
    pub kind: u8,
    /// Inclusion probability.
    pub probability: f64,
}

/// A ring the archive holds records of, as its source table records it.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # let (ring_path, archive_path) = (dir.path().join("s.ring"), dir.path().join("s.archive"));
/// use ringlat_read::archive::{ArchiveReader, ArchiveWriter, RingInfo};
/// let ring = ringlat::Ring::builder(&ring_path).kind(0, "op").start_position(7).create().unwrap();
/// ring.record(0, 1, 0, std::time::Duration::from_micros(1));
/// let mut drainer = ringlat_read::Drainer::open(&ring_path).unwrap();
/// let info = RingInfo::of(drainer.file());
/// let mut archive = ArchiveWriter::open(&archive_path, 0).unwrap();
/// drainer.drain_batch(10, |batch| archive.append(&info, batch).map(drop)).unwrap();
/// let sources = ArchiveReader::open(&archive_path).unwrap().sources();
/// assert_eq!(sources[0].next_position, Some(8));
/// assert_eq!(sources[0].identity.start_position, 7);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceRecord {
    /// Which ring.
    pub identity: RingIdentity,
    /// The ring position after the last one the archive holds (`None`: none yet).
    pub next_position: Option<u32>,
    /// Entries appended from this ring, as of its last checkpoint.
    pub entries: u64,
    /// Slots of this ring the drain left out as untrustworthy.
    pub skipped_invalid: u64,
}

/// Reads an archive, streaming.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("empty.archive");
/// ringlat_read::archive::ArchiveWriter::open(&path, 0).unwrap();
/// let reader = ringlat_read::archive::ArchiveReader::open(&path).unwrap();
/// assert!(reader.is_empty());
/// assert_eq!(reader.version(), 3);
/// ```
#[derive(Debug)]
pub struct ArchiveReader {
    path: PathBuf,
    file: File,
    pub(super) header: Header,
    entries: u64,
    bad_entries: AtomicU64,
    /// Version 3: the header's lateness bound extended over the entries it does not cover
    /// (computed on first use).
    pub(super) bound: OnceLock<Bound>,
    /// Scans keep the snapshot entries they meet (module `stash`).
    pub(super) keeping_snapshots: AtomicBool,
    /// The snapshot entries kept by the current pass (module `stash`).
    pub(super) stash: Mutex<SnapshotStash>,
}

impl ArchiveReader {
    /// Opens an archive and validates its header (magic, version 1 to 3, sizes, class
    /// probabilities in (0, 1] or unused, class 0 = 1 from version 2, the source table).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, ReadError> {
        let path = path.as_ref();
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .map_err(ReadError::io(path, "opening"))?;
        let metadata = file
            .metadata()
            .map_err(ReadError::io(path, "reading metadata"))?;
        let bad = |what: String| ReadError::Archive {
            path: path.to_path_buf(),
            what,
        };
        if !metadata.is_file() {
            return Err(bad("not a regular file".into()));
        }
        let len = metadata.len();
        // A drain may be rewriting the header's first page (one pwrite) as we read it, and a
        // read is not atomic against a write: read until two reads agree, so the lateness
        // bound and the counts it covers come from the same checkpoint.
        let size = ARCHIVE_HEADER_SIZE.min(len as usize);
        let read = |bytes: &mut Vec<u8>| {
            bytes.resize(size, 0);
            file.read_exact_at(bytes, 0)
                .map_err(ReadError::io(path, "reading the archive header"))
        };
        let (mut bytes, mut again) = (Vec::new(), Vec::new());
        read(&mut bytes)?;
        for _ in 0..100 {
            read(&mut again)?;
            if again == bytes {
                break;
            }
            std::mem::swap(&mut bytes, &mut again);
        }
        let header = Header::parse(&bytes).map_err(bad)?;
        Ok(ArchiveReader {
            path: path.to_path_buf(),
            file,
            header,
            entries: (len - ARCHIVE_HEADER_SIZE as u64) / ENTRY_SIZE as u64,
            bad_entries: AtomicU64::new(0),
            bound: OnceLock::new(),
            keeping_snapshots: AtomicBool::new(false),
            stash: Mutex::new(SnapshotStash::default()),
        })
    }

    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The format version of the file (1, 2 or 3).
    pub fn version(&self) -> u32 {
        self.header.version
    }

    /// Whole entries in the file when it was opened (a partial trailing entry, an append in
    /// progress or cut short, is not counted and never read).
    pub fn len(&self) -> u64 {
        self.entries
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// The name of `kind`, if the archive has one.
    pub fn kind_name(&self, kind: u8) -> Option<String> {
        self.header.names.get(kind as usize).cloned().flatten()
    }

    /// Slots the drains into this archive left out as untrustworthy (header counter).
    pub fn skipped_invalid_at_drain(&self) -> u64 {
        self.header.skipped_invalid
    }

    /// The rings whose drain position the archive records (version 2).
    pub fn sources(&self) -> Vec<SourceRecord> {
        self.header
            .sources
            .iter()
            .filter(|s| s.in_use())
            .map(|s| SourceRecord {
                identity: s.identity,
                next_position: (s.flags & super::layout::SOURCE_HAS_POSITION != 0)
                    .then_some(s.next_position),
                entries: s.entries,
                skipped_invalid: s.skipped_invalid,
            })
            .collect()
    }

    /// Entries the last [`for_each`](Self::for_each) pass skipped because they cannot be
    /// trusted (an unused sampling class, or from version 2 a kind without a name), plus
    /// those of the [`for_each_in`](Self::for_each_in) passes since.
    pub fn bad_entries(&self) -> u64 {
        // Relaxed: a statistic of a finished pass on this thread.
        self.bad_entries.load(Ordering::Relaxed)
    }

    /// Visits every whole entry in file order (streaming; memory does not grow with the
    /// file). A bad entry is skipped and counted ([`bad_entries`](Self::bad_entries)), never
    /// an error for the whole file.
    pub fn for_each(&self, visit: impl FnMut(ArchivedRecord)) -> Result<(), ReadError> {
        // Relaxed: a statistic read back by the same caller after the pass.
        self.bad_entries.store(0, Ordering::Relaxed);
        self.for_each_in(0..self.entries, visit)
    }

    /// Visits the records of the entries in `range` (entry indexes, clamped to
    /// [`len`](Self::len)) in file order, like [`for_each`](Self::for_each); bad entries
    /// skipped are added to [`bad_entries`](Self::bad_entries). With
    /// [`entry_range`](Self::entry_range), a pass reads only what a time range needs.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("r.archive");
    /// ringlat_read::archive::ArchiveWriter::open(&path, 0).unwrap();
    /// let reader = ringlat_read::archive::ArchiveReader::open(&path).unwrap();
    /// let mut seen = 0;
    /// reader.for_each_in(0..10, |_| seen += 1).unwrap();
    /// assert_eq!(seen, 0);
    /// ```
    pub fn for_each_in(
        &self,
        range: Range<u64>,
        mut visit: impl FnMut(ArchivedRecord),
    ) -> Result<(), ReadError> {
        const CHUNK: u64 = 32_768;
        let end = range.end.min(self.entries);
        let mut buffer =
            vec![0u8; CHUNK.min(end.saturating_sub(range.start)) as usize * ENTRY_SIZE];
        let mut bad = 0u64;
        let mut entry = range.start;
        while entry < end {
            let count = (end - entry).min(CHUNK);
            let chunk = &mut buffer[..count as usize * ENTRY_SIZE];
            let offset = ARCHIVE_HEADER_SIZE as u64 + entry * ENTRY_SIZE as u64;
            if let Err(error) = self.file.read_exact_at(chunk, offset) {
                if error.kind() == std::io::ErrorKind::UnexpectedEof {
                    return Err(ReadError::Archive {
                        path: self.path.clone(),
                        what: "the archive was truncated while being read".into(),
                    });
                }
                return Err(ReadError::io(&self.path, "reading an archive entry")(error));
            }
            for bytes in chunk.as_chunks::<ENTRY_SIZE>().0 {
                let raw = RawEntry::parse(bytes);
                if raw.source == super::snapshot::SNAPSHOT_SOURCE && self.header.version != 1 {
                    // A snapshot entry (counters and histograms), not a record.
                    continue;
                }
                let probability = self.header.classes[raw.class as usize];
                let named = self.header.version == VERSION_1
                    || self.header.names[raw.kind as usize].is_some();
                if probability == 0.0 || !named {
                    bad += 1;
                    continue;
                }
                visit(ArchivedRecord {
                    trace_id: raw.trace_id,
                    nanotime: raw.nanotime,
                    delta_ns: raw.delta_ns,
                    status: raw.status,
                    kind: raw.kind,
                    probability,
                });
            }
            entry += count;
        }
        // Relaxed: read back by the same caller after the pass.
        self.bad_entries.fetch_add(bad, Ordering::Relaxed);
        Ok(())
    }

    /// The parsed header (for the chunk scanner, module `scan`).
    pub(crate) fn header(&self) -> &Header {
        &self.header
    }

    /// The counter [`bad_entries`](Self::bad_entries) reads (for the chunk scanner, whose
    /// pieces add to it, possibly from several threads).
    pub(crate) fn bad_entries_counter(&self) -> &AtomicU64 {
        &self.bad_entries
    }
}
