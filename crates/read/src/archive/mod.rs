//! The archive: what `ringcat drain -o` appends consumed records to, and what every reader
//! reads like a ring file. Append-only, so it can grow past any ring's capacity.
//!
//! The format (every byte, the drain position record, how a partial trailing entry is
//! treated) is specified in
//! [docs/ARCHIVE.md](https://github.com/ringlat/ringlat/blob/main/docs/ARCHIVE.md).
//!
//! Drain is exactly once: every entry carries the ring position it came from, and the
//! archive remembers per ring (its creation anchor, start position and capacity) the
//! position after the last one it holds. [`ArchiveWriter::append`] leaves out records the
//! archive already holds, so a drainer that crashed after appending a batch but before
//! consuming it (or that failed on a full disk half-way) consumes that batch again without
//! archiving it twice.
//!
//! Seeking by time (version 3): entries are only roughly in time order, so the header keeps
//! a *lateness bound* (how far a record's time may fall behind the newest record before
//! it). With it, [`ArchiveReader::entry_range`] finds the entries a `--since/--until` pass
//! must read by binary search, and [`ArchiveReader::last_records`] reads the newest records
//! backwards from the end; versions 1 and 2 are read whole. Appending to a version-2
//! archive upgrades it.
//!
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! # let ring_path = dir.path().join("r.ring");
//! # let archive_path = dir.path().join("r.archive");
//! use ringlat_read::archive::{ArchiveReader, ArchiveWriter, RingInfo};
//! let ring = ringlat::Ring::builder(&ring_path).kind(0, "market").create().unwrap();
//! ring.record(0, 7, 0, std::time::Duration::from_micros(3));
//! let mut drainer = ringlat_read::Drainer::open(&ring_path).unwrap();
//! let info = RingInfo::of(drainer.file());
//! let mut archive = ArchiveWriter::open(&archive_path, 0).unwrap();
//! drainer.drain_batch(100, |batch| archive.append(&info, batch).map(drop)).unwrap();
//! let reader = ArchiveReader::open(&archive_path).unwrap();
//! assert_eq!(reader.len(), 1);
//! assert_eq!(reader.kind_name(0).as_deref(), Some("market"));
//! ```

mod create;
mod layout;
mod reader;
mod scan;
mod seek;
mod snapshot;
mod stash;
mod writer;

pub use layout::{ARCHIVE_HEADER_SIZE, ARCHIVE_MAGIC, ARCHIVE_VERSION, ENTRY_SIZE, MAX_SOURCES};
pub use reader::{ArchiveReader, ArchivedRecord, SourceRecord};
pub use scan::EntryTables;
pub use snapshot::{
    SNAPSHOT_BUCKETS, SNAPSHOT_END, SNAPSHOT_HAS_HISTOGRAM, SNAPSHOT_KIND, SNAPSHOT_SOURCE,
    SNAPSHOT_WORDS, Snapshot,
};
pub use writer::{AppendStats, ArchiveWriter};

use crate::{Decoded, RingFile};
use ringlat_format::ANCHOR_MONO_NS;

/// What identifies one ring file for the archive's drain position record: a ring created
/// again at the same path is a different ring.
///
/// ```
/// let id = ringlat_read::archive::RingIdentity::default();
/// assert_eq!(id.capacity, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RingIdentity {
    /// The ring header's `anchor_unix_ns` (CLOCK_REALTIME at creation).
    pub anchor_unix_ns: u64,
    /// The ring header's `anchor_mono_ns` (CLOCK_MONOTONIC at creation).
    pub anchor_mono_ns: u64,
    /// The position head and tail started at.
    pub start_position: u32,
    /// The ring's capacity in slots.
    pub capacity: u32,
}

/// What the archive needs to know about the ring a batch comes from.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("i.ring");
/// let _ring = ringlat::Ring::builder(&path).kind(2, "limit").create().unwrap();
/// let file = ringlat_read::RingFile::open(&path).unwrap();
/// let info = ringlat_read::archive::RingInfo::of(&file);
/// assert_eq!(info.kind_names[2].as_deref(), Some("limit"));
/// assert!(info.kind_names[3].is_none());
/// ```
#[derive(Debug, Clone)]
pub struct RingInfo {
    /// Which ring.
    pub identity: RingIdentity,
    /// Nanoseconds per unit of the ring's `delta`.
    pub unit_ns: i64,
    /// The name of every declared kind (`None`: undeclared).
    pub kind_names: Vec<Option<String>>,
}

impl RingInfo {
    /// A ring that exists only on paper (synthetic archives, tests): created at
    /// `anchor_unix_ns` (monotonic anchor 1), positions from 0, kinds 0.. named `names` in
    /// order.
    ///
    /// ```
    /// let info = ringlat_read::archive::RingInfo::synthetic(7, 1 << 20, 1_000, &["a", "b"]);
    /// assert_eq!(info.identity.capacity, 1 << 20);
    /// assert_eq!(info.kind_names[1].as_deref(), Some("b"));
    /// assert!(info.kind_names[2].is_none());
    /// ```
    pub fn synthetic(anchor_unix_ns: u64, capacity: u32, unit_ns: i64, names: &[&str]) -> Self {
        let mut kind_names = vec![None; 256];
        for (slot, name) in kind_names.iter_mut().zip(names) {
            *slot = Some(name.to_string());
        }
        RingInfo {
            identity: RingIdentity {
                anchor_unix_ns,
                anchor_mono_ns: 1,
                start_position: 0,
                capacity,
            },
            unit_ns,
            kind_names,
        }
    }

    /// The description of an open ring file.
    pub fn of(file: &RingFile) -> Self {
        RingInfo {
            identity: RingIdentity {
                anchor_unix_ns: file.created_unix_ns(),
                anchor_mono_ns: file.header_u64(ANCHOR_MONO_NS),
                start_position: file.start_position(),
                capacity: file.geometry().capacity,
            },
            unit_ns: file.delta_unit().nanos() as i64,
            kind_names: (0..=255u8).map(|kind| file.kind_name(kind)).collect(),
        }
    }

    /// Why a record of this ring cannot be archived (or trusted by any reader): its kind was
    /// never declared, or its inclusion probability is not in (0, 1] (an unused class).
    /// `None` for a good record.
    pub fn defect(&self, record: &Decoded) -> Option<&'static str> {
        if self.kind_names[record.kind as usize].is_none() {
            Some("undeclared kind")
        } else if !(record.probability > 0.0 && record.probability <= 1.0) {
            Some("unused sampling class")
        } else {
            None
        }
    }
}
