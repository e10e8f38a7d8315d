use crate::locks::writer_holds_lock;
use crate::{Decoded, ReadError};
use memmap2::{MmapMut, MmapOptions};
use ringlat_format::{
    ANCHOR_UNIX_NS, CLASS_TABLE, CREATION_FLAGS, DeltaUnit, FLAG_MULTI_PRODUCER, FormatError,
    Geometry, GlobalCounter, HEADER_SIZE, HeaderView, KIND_NAME_MAX, KindCounter, KindField,
    OLDEST_READABLE_VERSION, OVERFLOW_OVERWRITE, OVERFLOW_POLICY, START_POSITION, STATE,
    STATE_CLOSED, VERSION, VERSION_FIELD, WRITER_PID,
};
use ringlat_ring::{InFlight, PeekStats, Peeker, RegionStorage, Ring, Slot};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

/// Whether the process that writes a ring is still there.
///
/// ```
/// assert_ne!(ringlat_read::WriterState::Closed, ringlat_read::WriterState::Alive);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriterState {
    /// A writer holds the file's lock.
    Alive,
    /// The file was not closed, and nobody holds the writer lock: the writer died.
    Dead,
    /// The writer closed the file cleanly.
    Closed,
}

impl WriterState {
    /// The word tools print.
    pub fn as_str(self) -> &'static str {
        match self {
            WriterState::Alive => "alive",
            WriterState::Dead => "dead",
            WriterState::Closed => "closed",
        }
    }
}

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
}

pub(crate) enum Mapping {
    Private(MmapMut),
    Shared(MmapMut),
}

impl Mapping {
    fn base(&mut self) -> (*mut u8, usize) {
        match self {
            Mapping::Private(map) | Mapping::Shared(map) => (map.as_mut_ptr(), map.len()),
        }
    }
}

/// An open, validated ring file.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("r.ring");
/// let _ring = ringlat::Ring::builder(&path).capacity(16).create().unwrap();
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
    _map: Mapping,
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
        let file = OpenOptions::new()
            .read(true)
            .write(writable)
            .open(path)
            .map_err(ReadError::io(path, "opening"))?;
        let len = file
            .metadata()
            .map_err(ReadError::io(path, "reading metadata"))?
            .len();
        let format_error = |source| ReadError::Format {
            path: path.to_path_buf(),
            source,
        };
        let mut header = vec![0u8; len.min(HEADER_SIZE) as usize];
        file.read_exact_at(&mut header, 0)
            .map_err(ReadError::io(path, "reading the header"))?;
        let view = HeaderView::new(&header);
        let geometry = view.validate(len).map_err(format_error)?;
        let unit = view.delta_unit().map_err(format_error)?;
        let overwrite = view.u8_at(OVERFLOW_POLICY) == OVERFLOW_OVERWRITE;
        let kind_names = (0..=255u8)
            .map(|kind| kind_name_from(&view, kind))
            .collect();
        let mut map = if writable {
            // SAFETY: a shared mapping of a validated ring file of exactly this length; every
            // access to its live parts goes through atomics (RegionStorage).
            Mapping::Shared(
                unsafe {
                    MmapOptions::new()
                        .len(geometry.file_size as usize)
                        .map_mut(&file)
                }
                .map_err(ReadError::io(path, "mapping"))?,
            )
        } else {
            // SAFETY: a private copy-on-write mapping: we never write it, so it keeps showing
            // the page cache the writer's shared mapping updates; accesses are atomic.
            Mapping::Private(
                unsafe {
                    MmapOptions::new()
                        .len(geometry.file_size as usize)
                        .map_copy(&file)
                }
                .map_err(ReadError::io(path, "mapping"))?,
            )
        };
        let (base, mapped) = map.base();
        // SAFETY: the mapping lives in the RingFile beside the ring and is dropped after it
        // (field order); it is valid for reads and writes (private or shared) and all other
        // accesses to the live fields are atomic.
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
        Ok(RingFile {
            ring,
            path: path.to_path_buf(),
            geometry,
            unit,
            overwrite,
            kind_names,
            _map: map,
            file,
        })
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

    /// UNIX-epoch nanoseconds at creation.
    pub fn created_unix_ns(&self) -> u64 {
        self.header_u64(ANCHOR_UNIX_NS)
    }

    /// The position head and tail started at.
    pub fn start_position(&self) -> u32 {
        self.header_u32(START_POSITION)
    }

    /// Whether the writer is alive, dead, or closed the file.
    pub fn writer_state(&self) -> WriterState {
        // Acquire: pairs with the writer's Release store of STATE on close.
        let state = self
            .ring
            .storage()
            .u32_at(STATE)
            .map_or(0, |v| v.load(Ordering::Acquire));
        if state == STATE_CLOSED {
            WriterState::Closed
        } else if writer_holds_lock(&self.file).unwrap_or(true) {
            WriterState::Alive
        } else {
            WriterState::Dead
        }
    }

    /// A "are the producers gone?" check for the ring's readers (the writer died, or closed
    /// the file: nothing is in flight after a clean close): asked only when a slot is found
    /// unfinished, and answered once per call site (the lock probe is a system call).
    pub(crate) fn writer_dead_probe(&self) -> impl FnMut() -> bool + '_ {
        let mut dead = None;
        move || *dead.get_or_insert_with(|| self.writer_state() != WriterState::Alive)
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
                    *total += value;
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

    /// Inclusion probability of sampling class `class`.
    pub fn class_probability(&self, class: u8) -> f64 {
        f64::from_bits(self.header_u64(CLASS_TABLE + 8 * class as usize))
    }

    pub(crate) fn decode(&self, slot: Slot) -> Decoded {
        Decoded {
            position: slot.position,
            kind: slot.meta.kind,
            class: slot.meta.class,
            probability: self.class_probability(slot.meta.class),
            record: slot.record,
        }
    }

    /// Every record committed in the ring now, oldest first, without consuming anything.
    /// In-flight slots are passed over (and counted in the stats).
    pub fn snapshot(&self) -> (Vec<Decoded>, PeekStats) {
        let mut peeker = Peeker::at_head(&self.ring);
        let mut records = Vec::new();
        // Closed counts as gone: nothing is in flight after a clean close (FORMAT.md).
        let dead = self.writer_state() != WriterState::Alive;
        let stats = peeker.peek(
            &self.ring,
            u64::from(self.geometry.capacity),
            InFlight::Skip,
            &mut || dead,
            |slot| records.push(self.decode(slot)),
        );
        (records, stats)
    }
}

fn kind_name_from(view: &HeaderView<'_>, kind: u8) -> Option<String> {
    if view.u32_at(KindField::Flags.offset(kind)) & KindField::CONFIGURED == 0 {
        return None;
    }
    let raw = view.array_at::<KIND_NAME_MAX>(KindField::Name.offset(kind))?;
    let end = raw.iter().position(|b| *b == 0).unwrap_or(KIND_NAME_MAX);
    Some(String::from_utf8_lossy(&raw[..end]).into_owned())
}
