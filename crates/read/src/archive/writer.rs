//! Appending drained batches to an archive, exactly once per ring position.

use super::create::{Created, create_new, lock_for_append, open_existing};
use super::layout::{
    ARCHIVE_HEADER_SIZE, ARCHIVE_VERSION, CHECKPOINT_PAGE, ENTRY_SIZE, Header, MAX_SOURCES,
    RawEntry, SOURCE_HAS_POSITION, SOURCE_IN_USE, SourceSlot, VERSION_1, VERSION_2,
};
use super::seek::scan_bound;
use super::{RingIdentity, RingInfo};
use crate::{Decoded, ReadError};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// What one [`ArchiveWriter::append`] did with a batch.
///
/// ```
/// let stats = ringlat_read::archive::AppendStats::default();
/// assert_eq!(stats.appended + stats.already_archived + stats.invalid, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppendStats {
    /// Records written to the archive.
    pub appended: u64,
    /// Records left out because the archive already held their ring position (a batch
    /// appended before a crash or a failure, then drained again).
    pub already_archived: u64,
    /// Records left out because they cannot be trusted (undeclared kind, unused class);
    /// counted in the archive's header.
    pub invalid: u64,
}

/// Appends drained records to an archive, which it creates atomically if missing.
///
/// One writer appends to an archive at a time (it holds an exclusive `flock`). Opening
/// refuses a symbolic link, a non-regular file, a file that is not a valid archive, and a
/// version-1 archive (which has no drain position record; it can still be read). A
/// version-2 archive is upgraded to version 3: one pass over its entries computes the
/// lateness bound, then the header's first page is rewritten in one write.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("w.archive");
/// use ringlat_read::archive::ArchiveWriter;
/// let writer = ArchiveWriter::open(&path, 1_795_276_800_000_000_000).unwrap();
/// assert!(writer.is_empty());
/// assert!(ArchiveWriter::open(&path, 0).is_err()); // one appender at a time
/// drop(writer);
/// let writer = ArchiveWriter::open(&path, 0).unwrap().sync_each_batch(true);
/// assert_eq!(writer.len(), 0);
/// ```
#[derive(Debug)]
pub struct ArchiveWriter {
    path: PathBuf,
    file: File,
    header: Header,
    /// Whole entries in the file.
    entries: u64,
    /// Sources whose trailing entries (after their last checkpoint) were scanned this session.
    recovered: [bool; MAX_SOURCES],
    /// The ring the kind map below was built for, and ring kind -> archive kind.
    kind_map: Option<(RingIdentity, Box<[Option<u8>; 256]>)>,
    sync: bool,
    /// Per ring, what the archive's snapshots of it add up to (read on first use).
    snapshot_bases: super::snapshot::Bases,
}

impl ArchiveWriter {
    /// Opens `path` for appending, creating it (mode 0600, atomically) if missing.
    /// `now_unix_ns` is the creation time recorded in a new archive.
    pub fn open(path: impl AsRef<Path>, now_unix_ns: u64) -> Result<Self, ReadError> {
        let path = path.as_ref();
        // Two rounds: if another process creates the file between our look and our link, we
        // open theirs.
        for _ in 0..2 {
            if let Some(file) = open_existing(path)? {
                return ArchiveWriter::from_existing(path, file);
            }
            let header = Header::new(now_unix_ns);
            if let Created::Made(file) = create_new(path, &header.to_bytes())? {
                return Ok(ArchiveWriter::with(path, file, header, 0));
            }
        }
        Err(ReadError::Archive {
            path: path.to_path_buf(),
            what: "the archive keeps appearing and disappearing".into(),
        })
    }

    /// With `true`, every batch is on stable storage (fdatasync) before
    /// [`append`](Self::append) returns, so it survives an OS crash once the ring is consumed.
    pub fn sync_each_batch(mut self, sync: bool) -> Self {
        self.sync = sync;
        self
    }

    fn with(path: &Path, file: File, header: Header, entries: u64) -> Self {
        ArchiveWriter {
            path: path.to_path_buf(),
            file,
            header,
            entries,
            recovered: [false; MAX_SOURCES],
            kind_map: None,
            sync: false,
            snapshot_bases: Default::default(),
        }
    }

    fn from_existing(path: &Path, file: File) -> Result<Self, ReadError> {
        lock_for_append(path, &file)?;
        let len = file
            .metadata()
            .map_err(ReadError::io(path, "reading the archive's metadata"))?
            .len();
        let bad = |what: String| ReadError::Archive {
            path: path.to_path_buf(),
            what: format!("exists but {what}; refusing to append to it"),
        };
        if len < ARCHIVE_HEADER_SIZE as u64 {
            return Err(bad(format!("is not an archive ({len} bytes)")));
        }
        let mut bytes = vec![0u8; ARCHIVE_HEADER_SIZE];
        file.read_exact_at(&mut bytes, 0)
            .map_err(ReadError::io(path, "reading the archive header"))?;
        let header = Header::parse(&bytes).map_err(|what| bad(format!("is invalid: {what}")))?;
        if header.version == VERSION_1 {
            return Err(ReadError::Archive {
                path: path.to_path_buf(),
                what: "is a version-1 archive: it can be read, but not appended to (it has no \
                       drain position record); drain into a new archive"
                    .into(),
            });
        }
        let entries = (len - ARCHIVE_HEADER_SIZE as u64) / ENTRY_SIZE as u64;
        let whole = ARCHIVE_HEADER_SIZE as u64 + entries * ENTRY_SIZE as u64;
        if whole != len {
            // A partial entry: an append cut short by a crash or a full disk.
            file.set_len(whole)
                .map_err(ReadError::io(path, "truncating a partial trailing entry"))?;
        }
        let mut writer = ArchiveWriter::with(path, file, header, entries);
        writer.bring_bound_up_to_date()?;
        Ok(writer)
    }

    /// Makes the header's lateness bound cover every entry: a version-2 archive is scanned
    /// whole and upgraded to version 3; in version 3, entries appended after the last
    /// checkpoint (a drain killed before it) are scanned. An upgrade is written at once, in
    /// the one write of the header's first page (a kill leaves version 2 or version 3, both
    /// whole); an extension goes out with the next checkpoint.
    fn bring_bound_up_to_date(&mut self) -> Result<(), ReadError> {
        let header = &mut self.header;
        if header.version == VERSION_2 {
            header.bound = scan_bound(
                &self.file,
                &self.path,
                VERSION_2,
                0..self.entries,
                Default::default(),
            )?;
            header.bound_entries = self.entries;
            header.version = ARCHIVE_VERSION;
            let bytes = self.header.to_bytes();
            self.write_header(0, bytes[..CHECKPOINT_PAGE].to_vec())?;
            return self.sync_if_asked();
        }
        if header.bound_entries < self.entries {
            header.bound = scan_bound(
                &self.file,
                &self.path,
                ARCHIVE_VERSION,
                header.bound_entries..self.entries,
                header.bound,
            )?;
        }
        // More than the file has: the checkpoint reached the disk but entries did not. The
        // bound stays an upper bound of what is left.
        header.bound_entries = self.entries;
        Ok(())
    }

    /// Whole entries in the archive.
    pub fn len(&self) -> u64 {
        self.entries
    }

    /// True when the archive has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Appends the records of one batch drained from the ring `ring` (in position order, as
    /// [`Drainer::drain_batch`](crate::Drainer::drain_batch) hands them over).
    ///
    /// Records whose ring position the archive already holds are left out; records that
    /// cannot be trusted (see [`RingInfo::defect`]) are left out and counted. When this
    /// returns `Ok` the records are in the archive (handed to the OS, or on stable storage
    /// with [`sync_each_batch`](Self::sync_each_batch)); only then may the batch be consumed.
    /// On an error nothing of the batch is counted as held, and at worst whole entries of it
    /// remain, which a later append recognises by their positions.
    pub fn append(
        &mut self,
        ring: &RingInfo,
        records: &[Decoded],
    ) -> Result<AppendStats, ReadError> {
        let source = self.source_for(&ring.identity)?;
        let mut kinds_for = self.kinds_for(ring);
        let mut slot = self.header.sources[source];
        let mut stats = AppendStats::default();
        let mut tables_changed = false;
        let mut bound = self.header.bound;
        let mut bytes = Vec::with_capacity(records.len() * ENTRY_SIZE);
        for record in records {
            if slot.holds(record.position) {
                stats.already_archived += 1;
                continue;
            }
            slot.next_position = record.position.wrapping_add(1);
            slot.flags |= SOURCE_HAS_POSITION;
            if ring.defect(record).is_some() {
                stats.invalid += 1;
                continue;
            }
            let kind = match kinds_for[record.kind as usize] {
                Some(kind) => kind,
                None => {
                    let name = ring.kind_names[record.kind as usize]
                        .clone()
                        .filter(|name| !name.is_empty())
                        .unwrap_or_else(|| record.kind.to_string());
                    let (kind, added) = self
                        .header
                        .kind_of(record.kind, &name)
                        .ok_or_else(|| self.error("more than 256 distinct kind names".into()))?;
                    tables_changed |= added;
                    kinds_for[record.kind as usize] = Some(kind);
                    kind
                }
            };
            let (class, added) = self
                .header
                .class_of(record.probability)
                .ok_or_else(|| self.error("more than 256 distinct sampling rates".into()))?;
            tables_changed |= added;
            let entry = RawEntry {
                trace_id: record.record.trace_id(),
                nanotime: record.record.nanotime(),
                delta_ns: i64::from(record.record.delta()).saturating_mul(ring.unit_ns),
                status: record.record.status(),
                kind,
                class,
                source: source as u8,
                position: record.position,
            };
            bytes.extend_from_slice(&entry.to_bytes());
            bound.add(entry.nanotime);
            stats.appended += 1;
        }
        if let Some((_, map)) = &mut self.kind_map {
            **map = *kinds_for;
        }
        if stats.appended == 0 && stats.invalid == 0 {
            return Ok(stats);
        }
        if tables_changed {
            // The tables first (with the sources as they were): an entry never refers to a
            // kind or class the header lacks.
            self.write_header(0, self.header.to_bytes())?;
            self.sync_if_asked()?;
        }
        let end = ARCHIVE_HEADER_SIZE as u64 + self.entries * ENTRY_SIZE as u64;
        if let Err(error) = self.file.write_all_at(&bytes, end) {
            // Give back what a short write left (a full disk); if even that fails, the whole
            // entries left are recognised by position and the partial one is cut at open.
            let _ = self.file.set_len(end);
            return Err(ReadError::io(&self.path, "appending to the archive")(error));
        }
        self.sync_if_asked()?;
        self.entries += stats.appended;
        slot.covered = self.entries;
        slot.entries += stats.appended;
        slot.skipped_invalid += stats.invalid;
        self.header.sources[source] = slot;
        self.header.skipped_invalid += stats.invalid;
        self.header.bound = bound;
        self.header.bound_entries = self.entries;
        // The checkpoint: one write inside the first page, so a kill leaves the old or the new.
        let header = self.header.to_bytes();
        self.write_header(0, header[..CHECKPOINT_PAGE].to_vec())?;
        Ok(stats)
    }

    pub(crate) fn snapshot_bases(&mut self) -> &mut super::snapshot::Bases {
        &mut self.snapshot_bases
    }

    pub(crate) fn file_parts(&self) -> (&File, &Path, u64) {
        (&self.file, &self.path, self.entries)
    }

    pub(crate) fn header_mut(&mut self) -> &mut Header {
        &mut self.header
    }

    pub(crate) fn archive_error(&self, what: &str) -> ReadError {
        self.error(what.to_string())
    }

    /// Writes the whole header (new kind names) before entries refer to them.
    pub(crate) fn rewrite_header(&mut self) -> Result<(), ReadError> {
        self.write_header(0, self.header.to_bytes())?;
        self.sync_if_asked()
    }

    /// Appends whole entries that belong to no source (snapshots) in one write, then the
    /// checkpoint; returns the entries written.
    pub(crate) fn append_raw(&mut self, bytes: &[u8]) -> Result<u64, ReadError> {
        let end = ARCHIVE_HEADER_SIZE as u64 + self.entries * ENTRY_SIZE as u64;
        if let Err(error) = self.file.write_all_at(bytes, end) {
            let _ = self.file.set_len(end);
            return Err(ReadError::io(&self.path, "appending to the archive")(error));
        }
        self.sync_if_asked()?;
        let written = (bytes.len() / ENTRY_SIZE) as u64;
        self.entries += written;
        // Snapshot entries do not change the lateness bound: it now covers them too, so that
        // readers need not scan them (the rest of the first page is as last checkpointed).
        self.header.bound_entries = self.entries;
        let header = self.header.to_bytes();
        self.write_header(0, header[..CHECKPOINT_PAGE].to_vec())?;
        Ok(written)
    }

    /// Puts everything appended so far on stable storage (fdatasync).
    pub fn sync(&mut self) -> Result<(), ReadError> {
        self.file
            .sync_data()
            .map_err(ReadError::io(&self.path, "syncing the archive"))
    }

    fn error(&self, what: String) -> ReadError {
        ReadError::Archive {
            path: self.path.clone(),
            what,
        }
    }

    fn write_header(&self, offset: u64, bytes: Vec<u8>) -> Result<(), ReadError> {
        self.file
            .write_all_at(&bytes, offset)
            .map_err(ReadError::io(&self.path, "writing the archive header"))
    }

    fn sync_if_asked(&self) -> Result<(), ReadError> {
        if self.sync {
            self.file
                .sync_data()
                .map_err(ReadError::io(&self.path, "syncing the archive"))?;
        }
        Ok(())
    }

    /// The ring kind -> archive kind map for `ring` (reset when the ring changes).
    fn kinds_for(&mut self, ring: &RingInfo) -> Box<[Option<u8>; 256]> {
        match &self.kind_map {
            Some((identity, map)) if *identity == ring.identity => map.clone(),
            _ => {
                let map = Box::new([None; 256]);
                self.kind_map = Some((ring.identity, map.clone()));
                map
            }
        }
    }

    /// The source-table slot of `identity`: found (and its entries after the last checkpoint
    /// scanned once), or taken (a free one, else the least recently appended).
    fn source_for(&mut self, identity: &RingIdentity) -> Result<usize, ReadError> {
        if identity.capacity == 0 || !identity.capacity.is_power_of_two() {
            return Err(self.error(format!(
                "a ring of capacity {} cannot be archived",
                identity.capacity
            )));
        }
        if let Some(index) = self
            .header
            .sources
            .iter()
            .position(|s| s.in_use() && s.identity == *identity)
        {
            if !self.recovered[index] {
                self.recover(index)?;
                self.recovered[index] = true;
            }
            return Ok(index);
        }
        let index = self
            .header
            .sources
            .iter()
            .position(|s| !s.in_use())
            .or_else(|| (0..MAX_SOURCES).min_by_key(|i| self.header.sources[*i].covered))
            .unwrap_or(0);
        self.header.sources[index] = SourceSlot {
            identity: *identity,
            flags: SOURCE_IN_USE,
            first_entry: self.entries,
            covered: self.entries,
            ..SourceSlot::default()
        };
        self.recovered[index] = true;
        // Registered before any entry refers to the slot.
        let header = self.header.to_bytes();
        self.write_header(0, header[..CHECKPOINT_PAGE].to_vec())?;
        self.sync_if_asked()?;
        Ok(index)
    }

    /// Brings a source's position up to date with entries appended after its checkpoint (a
    /// drain killed between its append and its checkpoint). If the checkpoint claims more
    /// entries than the file has, the position is rebuilt from the source's first entry.
    fn recover(&mut self, index: usize) -> Result<(), ReadError> {
        let mut slot = self.header.sources[index];
        let from = if slot.covered <= self.entries {
            slot.covered
        } else {
            slot.flags &= !SOURCE_HAS_POSITION;
            slot.entries = 0;
            slot.first_entry.min(self.entries)
        };
        let mut buffer = vec![0u8; ENTRY_SIZE * 32_768];
        let mut entry = from;
        while entry < self.entries {
            let count = (self.entries - entry).min(32_768) as usize;
            let chunk = &mut buffer[..count * ENTRY_SIZE];
            self.file
                .read_exact_at(
                    chunk,
                    ARCHIVE_HEADER_SIZE as u64 + entry * ENTRY_SIZE as u64,
                )
                .map_err(ReadError::io(
                    &self.path,
                    "reading the archive's last entries",
                ))?;
            for bytes in chunk.as_chunks::<ENTRY_SIZE>().0 {
                let raw = RawEntry::parse(bytes);
                if raw.source as usize == index {
                    slot.next_position = raw.position.wrapping_add(1);
                    slot.flags |= SOURCE_HAS_POSITION;
                    slot.entries += 1;
                }
            }
            entry += count as u64;
        }
        slot.covered = self.entries;
        self.header.sources[index] = slot;
        Ok(())
    }
}
