use crate::Error;
use crate::clock::Anchor;
use crate::file;
use crate::handle::{Ring, Shared, SingleProducerRing};
use ringlat_format::{
    ANCHOR_MONO_NS, ANCHOR_UNIX_NS, CREATION_FLAGS, DeltaUnit, FLAG_MULTI_PRODUCER, Geometry,
    HEADER_SIZE, KIND_NAME_MAX, KindField, VERSION, VERSION_FIELD, WRITER_PID,
};
use ringlat_ring::{RegionStorage, Storage};
use std::path::{Path, PathBuf};

/// Settings for a new ring file; [`Builder::create`] makes it.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// let ring = ringlat::Ring::builder(dir.path().join("x.ring"))
///     .capacity(1024)
///     .kind(0, "market")
///     .create()
///     .unwrap();
/// assert_eq!(ring.capacity(), 1024);
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    path: PathBuf,
    capacity: u64,
    kinds: Vec<(u8, String)>,
    unit: DeltaUnit,
    replace: bool,
    start_position: u32,
}

impl Builder {
    pub(crate) fn new(path: impl AsRef<Path>) -> Self {
        Builder {
            path: path.as_ref().to_path_buf(),
            capacity: 1 << 16,
            kinds: Vec::new(),
            unit: DeltaUnit::Micros,
            replace: false,
            start_position: 0,
        }
    }

    /// Number of slots, a power of two between 2 and 2^28 (default 65536).
    pub fn capacity(mut self, capacity: u64) -> Self {
        self.capacity = capacity;
        self
    }

    /// Declares operation kind `id` with a printable name (at most 32 bytes of UTF-8).
    /// Records of undeclared kinds are rejected and counted.
    pub fn kind(mut self, id: u8, name: &str) -> Self {
        self.kinds.push((id, name.to_owned()));
        self
    }

    /// The unit of the stored latency (default microseconds).
    pub fn delta_unit(mut self, unit: DeltaUnit) -> Self {
        self.unit = unit;
        self
    }

    /// Replace an existing file at the path (refused while a live writer holds it).
    pub fn replace(mut self, replace: bool) -> Self {
        self.replace = replace;
        self
    }

    /// The position head and tail start at (default 0). Tests start just below 2^32 to
    /// exercise the wrap of the 32-bit positions in milliseconds.
    pub fn start_position(mut self, position: u32) -> Self {
        self.start_position = position;
        self
    }

    /// Creates the file and returns the multi-producer handle (`Clone + Send + Sync`).
    pub fn create(self) -> Result<Ring, Error> {
        Ok(Ring::from_shared(self.create_shared(true)?))
    }

    /// Creates the file and returns the single-producer handle (`Send`, not `Clone`, not `Sync`).
    pub fn create_single_producer(self) -> Result<SingleProducerRing, Error> {
        Ok(SingleProducerRing::from_shared(self.create_shared(false)?))
    }

    fn checked_kinds(&self) -> Result<[Option<&str>; 256], Error> {
        let mut names = [None; 256];
        for (id, name) in &self.kinds {
            let reason = if name.is_empty() {
                Some("name is empty")
            } else if name.len() > KIND_NAME_MAX {
                Some("name is longer than 32 bytes")
            } else if name.contains('\0') {
                Some("name contains a NUL byte")
            } else if names[*id as usize].is_some() {
                Some("declared twice")
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(Error::BadKind { kind: *id, reason });
            }
            names[*id as usize] = Some(name.as_str());
        }
        Ok(names)
    }

    fn create_shared(self, multi_producer: bool) -> Result<Shared, Error> {
        let geometry = Geometry::for_capacity(self.capacity)?;
        let names = self.checked_kinds()?;
        let created = file::create(&self.path, geometry, self.replace)?;
        let mut map = created.map;
        let anchor = Anchor::now();
        let header = &mut map[..HEADER_SIZE as usize];
        geometry.write_fixed_fields(header, self.unit, self.start_position);
        let mut put = |offset: usize, bytes: &[u8]| {
            header[offset..offset + bytes.len()].copy_from_slice(bytes);
        };
        put(
            CREATION_FLAGS,
            &(if multi_producer {
                FLAG_MULTI_PRODUCER
            } else {
                0
            })
            .to_le_bytes(),
        );
        put(WRITER_PID, &std::process::id().to_le_bytes());
        put(ANCHOR_UNIX_NS, &anchor.unix_ns.to_le_bytes());
        put(ANCHOR_MONO_NS, &anchor.mono_ns.to_le_bytes());
        let mut configured = [false; 256];
        for (id, name) in names.iter().enumerate() {
            if let Some(name) = name {
                let kind = id as u8;
                configured[id] = true;
                put(KindField::Name.offset(kind), name.as_bytes());
                put(
                    KindField::Flags.offset(kind),
                    &KindField::CONFIGURED.to_le_bytes(),
                );
                put(
                    KindField::BaseProbability.offset(kind),
                    &1.0f64.to_le_bytes(),
                );
            }
        }
        // SAFETY: the mapping lives in `Shared` beside the ring and is dropped after it (field
        // order); it is file_size bytes long, page-aligned, and every other process touches
        // the ring word, metadata and records only atomically (FORMAT.md).
        let storage = unsafe { RegionStorage::new(map.as_mut_ptr(), map.len(), geometry) }
            .map_err(|_| {
                Error::Format(ringlat_format::FormatError::SizeMismatch {
                    actual: map.len() as u64,
                    expected: geometry.file_size,
                })
            })?;
        let ring = ringlat_ring::Ring::new(storage).map_err(|_| {
            Error::Format(ringlat_format::FormatError::CapacityOutOfRange(
                self.capacity,
            ))
        })?;
        ring.set_start_position(self.start_position);
        if let Some(version) = ring.storage().u32_at(VERSION_FIELD) {
            // Release: everything written above is visible to a reader whose Acquire load of
            // the version (ringlat-read's open) sees 1.
            version.store(VERSION, std::sync::atomic::Ordering::Release);
        }
        debug_assert_eq!(ring.storage().capacity(), geometry.capacity);
        Ok(Shared::new(
            ring,
            configured,
            self.unit,
            anchor,
            map,
            created.file,
        ))
    }
}
