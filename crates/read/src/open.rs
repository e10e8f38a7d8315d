use crate::mapping::GuardedMapping;
use crate::{Decoded, ReadError, WriterState, escape_control};
use ringlat_format::{
    ANCHOR_UNIX_NS, CLASS_TABLE, CREATION_FLAGS, DeltaUnit, FLAG_MULTI_PRODUCER, FormatError,
    Geometry, GlobalCounter, HEADER_SIZE, HeaderView, KIND_NAME_MAX, KindCounter, KindField,
    OLDEST_READABLE_VERSION, OVERFLOW_OVERWRITE, OVERFLOW_POLICY, RING_WORD, START_POSITION,
    VERSION, VERSION_FIELD, WRITER_PID, check_ring_word, is_probability,
};
use ringlat_ring::{InFlight, PeekStats, Peeker, RegionStorage, Ring, Slot};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The header counters, summed over kinds and per kind.
///
/// ```
/// let c = ringlat_read::Counters::default();
/// assert_eq!(c.calls(), 0);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Totals over every kind, indexed like [`KindCounter::ALL`].
    pub total: [u64; 6],
    /// Per kind with any non-zero counter: `(kind, counters)`.
    pub per_kind: Vec<(u8, [u64; 6])>,
    /// Slots consumers skipped because their producer died mid-write.
    pub abandoned: u64,
}

impl Counters {
    /// The total of one counter.
    pub fn get(&self, counter: KindCounter) -> u64 {
        self.total[counter.index()]
    }

    /// Every `record` call: written + sampled out + dropped + rejected.
    pub fn calls(&self) -> u64 {
        KindCounter::calls_of(&self.total)
    }

    /// The counters of one kind (zeros for a kind that has none).
    ///
    /// ```
    /// let c = ringlat_read::Counters { per_kind: vec![(3, [1; 6])], ..Default::default() };
    /// assert_eq!(c.of_kind(3), [1; 6]);
    /// assert_eq!(c.of_kind(4), [0; 6]);
    /// ```
    pub fn of_kind(&self, kind: u8) -> [u64; 6] {
        self.per_kind
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, values)| *values)
            .unwrap_or_default()
    }
}

/// An open, validated ring file.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("r.ring");
/// let _ring = ringlat::Ring::builder(&path).capacity(16).kind(0, "op").create().unwrap();
/// let file = ringlat_read::RingFile::open(&path).unwrap();
/// assert_eq!(file.geometry().capacity, 16);
/// assert_eq!(file.writer_state(), ringlat_read::WriterState::Alive);
/// ```
pub struct RingFile {
    // Declared before `_map`: the storage points into the mapping, so it must drop first.
    ring: Ring<RegionStorage>,
    path: PathBuf,
    geometry: Geometry,
    unit: DeltaUnit,
    /// Overflow policy (fixed at creation): the newest records overwrite the oldest.
    pub(crate) overwrite: bool,
    kind_names: Vec<Option<String>>,
    /// The class table (fixed at creation); 0.0 marks an unused class.
    classes: Vec<f64>,
    /// Slots skipped because their kind is undeclared or their class unused.
    invalid_slots: AtomicU64,
    map: GuardedMapping,
    pub(crate) file: File,
}

impl std::fmt::Debug for RingFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingFile")
            .field("path", &self.path)
            .field("geometry", &self.geometry)
            .finish()
    }
}

impl RingFile {
    /// Opens and validates a ring file for reading. Nothing is ever written to it.
    pub fn open(path: impl AsRef<Path>) -> Result<RingFile, ReadError> {
        RingFile::open_mode(path.as_ref(), false)
    }

    pub(crate) fn open_mode(path: &Path, writable: bool) -> Result<RingFile, ReadError> {
        let file = open_regular(path, writable)?;
        let len = file
            .metadata()
            .map_err(ReadError::io(path, "reading metadata"))?
            .len();
        let format_error = |source| ReadError::Format {
            path: path.to_path_buf(),
            source,
        };
        let read_header = || {
            let mut header = vec![0u8; len.min(HEADER_SIZE) as usize];
            file.read_exact_at(&mut header, 0)
                .map_err(ReadError::io(path, "reading the header"))?;
            Ok::<_, ReadError>(header)
        };
        let first = read_header()?;
        let geometry = HeaderView::new(&first)
            .validate(len)
            .map_err(format_error)?;
        let mut map = GuardedMapping::map(&file, geometry.file_size as usize, writable)
            .map_err(ReadError::io(path, "mapping"))?;
        let (base, mapped) = map.base();
        // SAFETY: the mapping lives in the RingFile beside the ring and is dropped after it
        // (field order); it is valid for reads and writes (private or shared; replaced by
        // zero pages, never unmapped, if the file shrinks) and all other accesses to the live
        // fields are atomic.
        let storage = unsafe { RegionStorage::new(base, mapped, geometry) }.map_err(|_| {
            format_error(FormatError::SizeMismatch {
                actual: mapped as u64,
                expected: geometry.file_size,
            })
        })?;
        let ring = Ring::new(storage)
            .map_err(|_| format_error(FormatError::CapacityOutOfRange(geometry.capacity.into())))?;
        // Acquire: pairs with the writer's Release store of the version, written last.
        let version = ring
            .storage()
            .u32_at(VERSION_FIELD)
            .map(|v| v.load(Ordering::Acquire));
        if !version.is_some_and(|v| (OLDEST_READABLE_VERSION..=VERSION).contains(&v)) {
            return Err(format_error(FormatError::NotInitialised));
        }
        // Everything the reader keeps comes from a copy made after that Acquire load, so it
        // sees what the writer wrote before publishing the version.
        let header = read_header()?;
        let view = HeaderView::new(&header);
        if view.validate(len).map_err(format_error)? != geometry {
            return Err(format_error(FormatError::SizeMismatch {
                actual: view.u64_at(ringlat_format::FILE_SIZE),
                expected: geometry.file_size,
            }));
        }
        view.validate_fields(&geometry).map_err(format_error)?;
        if map.truncated() {
            return Err(ReadError::Truncated {
                path: path.to_path_buf(),
            });
        }
        let unit = view.delta_unit().map_err(format_error)?;
        let overwrite = view.u8_at(OVERFLOW_POLICY) == OVERFLOW_OVERWRITE;
        let kind_names = (0..=255u8)
            .map(|kind| kind_name_from(&view, kind))
            .collect();
        let classes = (0..ringlat_format::CLASS_TABLE_ENTRIES)
            .map(|class| {
                let bits = view.u64_at(CLASS_TABLE + 8 * class);
                if is_probability(bits) {
                    f64::from_bits(bits)
                } else {
                    0.0
                }
            })
            .collect();
        Ok(RingFile {
            ring,
            path: path.to_path_buf(),
            geometry,
            unit,
            overwrite,
            kind_names,
            classes,
            invalid_slots: AtomicU64::new(0),
            map,
            file,
        })
    }

    /// Checks that the file is still whole and its ring word sane: call it before every
    /// iteration of a follow loop, and after reading, before handing on what was read.
    ///
    /// Fails with [`ReadError::Truncated`] when the file is shorter than its geometry, or a
    /// page of it vanished while it was read (the `SIGBUS` guard, see the crate docs), and
    /// with a format error when the ring word breaks `tail - head <= capacity`.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("c.ring");
    /// let ring = ringlat::Ring::builder(&path).capacity(16).kind(0, "op").create().unwrap();
    /// ring.close().unwrap(); // a writer whose own file shrinks under it dies of SIGBUS
    /// let file = ringlat_read::RingFile::open(&path).unwrap();
    /// assert!(file.check_intact().is_ok());
    /// std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(4096).unwrap();
    /// assert!(matches!(file.check_intact(), Err(ringlat_read::ReadError::Truncated { .. })));
    /// ```
    pub fn check_intact(&self) -> Result<(), ReadError> {
        let truncated = || ReadError::Truncated {
            path: self.path.clone(),
        };
        if self.map.truncated() {
            return Err(truncated());
        }
        let len = self
            .file
            .metadata()
            .map_err(ReadError::io(&self.path, "reading metadata"))?
            .len();
        if len < self.geometry.file_size {
            return Err(truncated());
        }
        check_ring_word(self.header_u64(RING_WORD), self.geometry.capacity).map_err(|source| {
            ReadError::Format {
                path: self.path.clone(),
                source,
            }
        })?;
        if self.map.truncated() {
            return Err(truncated());
        }
        Ok(())
    }

    /// `max` capped at the capacity: a ring never holds more, and a consumer's scan trusts
    /// `tail` from the ring word, so an unbounded scan over a ring word that went bad under it
    /// (the file truncated, its pages now zeros) could walk up to 2^32 positions.
    pub(crate) fn bounded_batch(&self, max: usize) -> usize {
        max.min(self.geometry.capacity as usize)
    }

    /// True once a page of the mapping vanished under the reader (the file shrank): what was
    /// read since may be zeros and must not be handed on.
    pub(crate) fn truncated(&self) -> bool {
        self.map.truncated()
    }

    /// The path it was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's geometry.
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// The unit of `delta`.
    pub fn delta_unit(&self) -> DeltaUnit {
        self.unit
    }

    /// The lock-free ring over the mapping.
    pub fn ring(&self) -> &Ring<RegionStorage> {
        &self.ring
    }

    pub(crate) fn header_u64(&self, offset: usize) -> u64 {
        // Relaxed: fields fixed at creation (published by the version) or plain statistics.
        self.ring
            .storage()
            .u64_at(offset)
            .map_or(0, |v| v.load(Ordering::Relaxed))
    }

    pub(crate) fn header_u32(&self, offset: usize) -> u32 {
        self.ring
            .storage()
            .u32_at(offset)
            .map_or(0, |v| v.load(Ordering::Relaxed))
    }

    /// The name of `kind`, `None` when the writer did not configure it.
    pub fn kind_name(&self, kind: u8) -> Option<String> {
        self.kind_names.get(kind as usize).cloned().flatten()
    }

    /// The name of `kind`, or its number when it has none.
    pub fn kind_label(&self, kind: u8) -> String {
        self.kind_name(kind).unwrap_or_else(|| kind.to_string())
    }

    /// `(head, tail)` now.
    pub fn positions(&self) -> (u32, u32) {
        self.ring.positions()
    }

    /// Pid of the process that created the file.
    pub fn writer_pid(&self) -> u32 {
        self.header_u32(WRITER_PID)
    }

    /// True when the file was created for several producers.
    pub fn multi_producer(&self) -> bool {
        self.header_u32(CREATION_FLAGS) & FLAG_MULTI_PRODUCER != 0
    }

    /// True when the writer stamps records from the TSC calibrated against CLOCK_MONOTONIC
    /// (false: CLOCK_MONOTONIC read through the vDSO).
    pub fn tsc_clock(&self) -> bool {
        self.header_u32(CREATION_FLAGS) & ringlat_format::FLAG_TSC_CLOCK != 0
    }

    /// UNIX-epoch nanoseconds at creation.
    pub fn created_unix_ns(&self) -> u64 {
        self.header_u64(ANCHOR_UNIX_NS)
    }

    /// The position head and tail started at.
    pub fn start_position(&self) -> u32 {
        self.header_u32(START_POSITION)
    }

    /// The header counters now.
    pub fn counters(&self) -> Counters {
        let mut counters = Counters {
            abandoned: self.header_u64(GlobalCounter::Abandoned.offset()),
            ..Counters::default()
        };
        for kind in 0..=255u8 {
            let values = KindCounter::ALL.map(|c| self.header_u64(c.offset(kind)));
            if values.iter().any(|v| *v != 0) {
                for (total, value) in counters.total.iter_mut().zip(values) {
                    // Saturating: a damaged file's counters must not overflow the sum.
                    *total = total.saturating_add(value);
                }
                counters.per_kind.push((kind, values));
            }
        }
        counters
    }

    /// Kinds the writer configured, in id order.
    pub fn configured_kinds(&self) -> Vec<u8> {
        (0..=255u8)
            .filter(|kind| {
                self.header_u32(KindField::Flags.offset(*kind)) & KindField::CONFIGURED != 0
            })
            .collect()
    }

    /// Inclusion probability of sampling class `class` (0.0 for a class the writer does
    /// not use).
    pub fn class_probability(&self, class: u8) -> f64 {
        self.classes.get(usize::from(class)).copied().unwrap_or(0.0)
    }

    /// The record of a committed slot, or `None` (counted in [`RingFile::invalid_slots`])
    /// when its kind is undeclared or its class unused: a writer never commits such a slot,
    /// so the file is damaged there, and a record with no valid weight is never handed on.
    pub(crate) fn decode(&self, slot: Slot) -> Option<Decoded> {
        let decoded = self.decode_unchecked(slot);
        if decoded.probability == 0.0 || self.kind_names[usize::from(decoded.kind)].is_none() {
            // Relaxed: a statistic.
            self.invalid_slots.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(decoded)
    }

    /// The record of a committed slot as the slot says, probability 0.0 for an unused class
    /// and the kind even when undeclared: for a batch drain, whose handler checks (and counts
    /// in its archive) what it skips, so the count survives in the evidence.
    pub(crate) fn decode_unchecked(&self, slot: Slot) -> Decoded {
        Decoded {
            position: slot.position,
            kind: slot.meta.kind,
            class: slot.meta.class,
            probability: self.class_probability(slot.meta.class),
            record: slot.record,
        }
    }

    /// Adds `count` damaged slots to [`invalid_slots`](Self::invalid_slots) (found by a
    /// reader that checks slots itself).
    pub(crate) fn count_invalid(&self, count: u64) {
        // Relaxed: a statistic.
        self.invalid_slots.fetch_add(count, Ordering::Relaxed);
    }

    /// Committed slots skipped so far because their kind is undeclared or their sampling
    /// class unused (damage: the writer never commits such a slot).
    pub fn invalid_slots(&self) -> u64 {
        self.invalid_slots.load(Ordering::Relaxed)
    }

    /// Every record committed in the ring now, oldest first, without consuming anything.
    /// In-flight slots are passed over (and counted in the stats).
    pub fn snapshot(&self) -> (Vec<Decoded>, PeekStats) {
        let mut records = Vec::new();
        let stats = self.snapshot_each(|record| records.push(record));
        if self.truncated() {
            // What was read after the file shrank may be zeros: hand nothing on.
            records.clear();
        }
        (records, stats)
    }

    /// [`snapshot`](Self::snapshot) handing each record to `visit` rather than collecting
    /// them (so that a caller can keep them in a smaller shape). When the file shrank
    /// meanwhile ([`check_intact`](Self::check_intact) fails), what was visited may be zeros
    /// and must be dropped.
    pub fn snapshot_each(&self, visit: impl FnMut(Decoded)) -> PeekStats {
        let head = self.ring.positions().0;
        self.snapshot_part(head, u64::from(self.geometry.capacity), visit)
    }

    /// [`snapshot_each`](Self::snapshot_each) over at most `max` positions from `start`: one
    /// part of a snapshot read by several threads (the caller checks afterwards that head did
    /// not move, else parts may overlap: see [`Peeker::at`]).
    pub(crate) fn snapshot_part(
        &self,
        start: u32,
        max: u64,
        mut visit: impl FnMut(Decoded),
    ) -> PeekStats {
        let mut peeker = Peeker::at(start);
        // Closed counts as gone: nothing is in flight after a clean close (FORMAT.md).
        let dead = self.writer_state() != WriterState::Alive;
        peeker.peek(&self.ring, max, InFlight::Skip, &mut || dead, |slot| {
            if let Some(record) = self.decode(slot) {
                visit(record);
            }
        })
    }
}

fn kind_name_from(view: &HeaderView<'_>, kind: u8) -> Option<String> {
    if view.u32_at(KindField::Flags.offset(kind)) & KindField::CONFIGURED == 0 {
        return None;
    }
    let raw = view.array_at::<KIND_NAME_MAX>(KindField::Name.offset(kind))?;
    let end = raw.iter().position(|b| *b == 0).unwrap_or(KIND_NAME_MAX);
    Some(escape_control(&String::from_utf8_lossy(&raw[..end])))
}

/// Opens `path` for reading (and writing), refusing anything but a regular file: a FIFO
/// would block the open or the first read forever, a device or directory is not a ring.
/// The open is non-blocking so that a FIFO without a writer cannot hang it.
pub(crate) fn open_regular(path: &Path, writable: bool) -> Result<File, ReadError> {
    let file = OpenOptions::new()
        .read(true)
        .write(writable)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(ReadError::io(path, "opening"))?;
    let file_type = file
        .metadata()
        .map_err(ReadError::io(path, "reading metadata"))?
        .file_type();
    if file_type.is_file() {
        return Ok(file);
    }
    let what = if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_dir() {
        "a directory"
    } else if file_type.is_char_device() || file_type.is_block_device() {
        "a device"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    };
    Err(ReadError::NotRegular {
        path: path.to_path_buf(),
        what,
    })
}
