//! The bytes of an archive (docs/ARCHIVE.md): constants, and the header parsed and written.

use super::RingIdentity;
use ringlat_format::KIND_NAME_MAX;

/// The archive magic, `RLARCHV\0`.
pub const ARCHIVE_MAGIC: [u8; 8] = *b"RLARCHV\0";
/// The version this library writes: 3 adds the lateness bound (docs/ARCHIVE.md, "Seeking").
pub const ARCHIVE_VERSION: u32 = 3;
/// The previous version: read by scanning; appending upgrades it to version 3.
pub(crate) const VERSION_2: u32 = 2;
/// The oldest version it still reads (never appends to).
pub(crate) const VERSION_1: u32 = 1;
/// Bytes before the first entry.
pub const ARCHIVE_HEADER_SIZE: usize = 16_384;
/// Bytes per archived record.
pub const ENTRY_SIZE: usize = 32;
/// The page a checkpoint rewrites: fixed fields, source table and class table.
pub(crate) const CHECKPOINT_PAGE: usize = 4096;

const VERSION_FIELD: usize = 8;
const HEADER_SIZE_FIELD: usize = 12;
const ENTRY_SIZE_FIELD: usize = 16;
const CREATED: usize = 24;
const SKIPPED_INVALID: usize = 32;
const MAX_RECORD_TIME: usize = 40;
const LATENESS_BOUND: usize = 48;
const BOUND_ENTRIES: usize = 56;
const SOURCE_TABLE: usize = 256;
const SOURCE_SIZE: usize = 64;
/// Rings whose drain position an archive remembers at once.
pub const MAX_SOURCES: usize = 28;
const CLASS_TABLE: usize = 2048;
const KIND_NAMES: usize = 4096;

/// Source flag: the slot describes a ring.
pub(crate) const SOURCE_IN_USE: u32 = 1;
/// Source flag: `next_position` is meaningful (a position of this ring was archived).
pub(crate) const SOURCE_HAS_POSITION: u32 = 2;

/// Entry fields.
pub(crate) const ENTRY_KIND: usize = 25;
pub(crate) const ENTRY_CLASS: usize = 26;
pub(crate) const ENTRY_SOURCE: usize = 27;
pub(crate) const ENTRY_POSITION: usize = 28;

/// One row of the source table: a ring and how far the archive holds it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SourceSlot {
    pub identity: RingIdentity,
    pub next_position: u32,
    pub flags: u32,
    pub first_entry: u64,
    pub covered: u64,
    pub entries: u64,
    pub skipped_invalid: u64,
}

impl SourceSlot {
    pub fn in_use(&self) -> bool {
        self.flags & SOURCE_IN_USE != 0
    }

    /// True when the archive already holds ring position `position` of this source: it lies
    /// within one ring capacity before `next_position`.
    pub fn holds(&self, position: u32) -> bool {
        self.flags & SOURCE_HAS_POSITION != 0 && {
            let behind = self.next_position.wrapping_sub(position);
            behind >= 1 && behind <= self.identity.capacity
        }
    }
}

/// The lateness bound of a run of entries (version 3): `max_time` is the largest record
/// time among them, `lateness` the largest amount by which a record's time fell behind the
/// largest time of the records before it (itself included). So for every record entry `i`,
/// `time_i >= max(time_0..=time_i) - lateness`: no record is older than a later one by more
/// than `lateness` after the running maximum. Snapshot entries take no part.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Bound {
    pub max_time: u64,
    pub lateness: u64,
}

impl Bound {
    /// Takes one more record time into account (in file order).
    #[inline]
    pub fn add(&mut self, time: u64) {
        if time > self.max_time {
            self.max_time = time;
        } else {
            self.lateness = self.lateness.max(self.max_time - time);
        }
    }
}

/// The decoded header of an archive.
#[derive(Debug, Clone)]
pub(crate) struct Header {
    pub version: u32,
    pub created_unix_ns: u64,
    pub skipped_invalid: u64,
    /// Version 3: the lateness bound of entries `0..bound_entries`.
    pub bound: Bound,
    /// Version 3: how many leading entries `bound` covers (entries after them, an append
    /// not yet checkpointed, are not covered).
    pub bound_entries: u64,
    pub sources: [SourceSlot; MAX_SOURCES],
    pub classes: [f64; 256],
    pub names: Vec<Option<String>>,
}

#[inline]
fn u32_at(bytes: &[u8], offset: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[offset..offset + 4]);
    u32::from_le_bytes(word)
}

#[inline]
fn u64_at(bytes: &[u8], offset: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[offset..offset + 8]);
    u64::from_le_bytes(word)
}

fn put(bytes: &mut [u8], offset: usize, value: &[u8]) {
    bytes[offset..offset + value.len()].copy_from_slice(value);
}

impl Header {
    /// A new, empty version-2 header: class 0 is 1.0, no kinds, no sources.
    pub fn new(created_unix_ns: u64) -> Self {
        let mut classes = [0.0; 256];
        classes[0] = 1.0;
        Header {
            version: ARCHIVE_VERSION,
            created_unix_ns,
            skipped_invalid: 0,
            bound: Bound::default(),
            bound_entries: 0,
            sources: [SourceSlot::default(); MAX_SOURCES],
            classes,
            names: vec![None; 256],
        }
    }

    /// Parses and validates a header; the error says what is wrong.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() < ARCHIVE_HEADER_SIZE {
            return Err(format!(
                "not an archive: truncated header ({} of {ARCHIVE_HEADER_SIZE} bytes)",
                bytes.len()
            ));
        }
        if bytes[..8] != ARCHIVE_MAGIC {
            return Err("not an archive (bad magic)".into());
        }
        let version = u32_at(bytes, VERSION_FIELD);
        if !(VERSION_1..=ARCHIVE_VERSION).contains(&version) {
            return Err(format!(
                "unsupported archive version {version} (this reader knows 1 to {ARCHIVE_VERSION})"
            ));
        }
        let header_size = u32_at(bytes, HEADER_SIZE_FIELD);
        let entry_size = u32_at(bytes, ENTRY_SIZE_FIELD);
        if header_size as usize != ARCHIVE_HEADER_SIZE || entry_size as usize != ENTRY_SIZE {
            return Err(format!(
                "bad header: header size {header_size} / entry size {entry_size} (expected {ARCHIVE_HEADER_SIZE} / {ENTRY_SIZE})"
            ));
        }
        let mut header = Header::new(u64_at(bytes, CREATED));
        header.version = version;
        for (class, slot) in header.classes.iter_mut().enumerate() {
            let p = f64::from_le_bytes(
                bytes[CLASS_TABLE + 8 * class..][..8]
                    .try_into()
                    .map_err(|_| "bad header: class table".to_string())?,
            );
            if p != 0.0 && !(p > 0.0 && p <= 1.0) {
                return Err(format!(
                    "bad header: sampling class {class} has probability {p} (must be 0 = unused, or in (0, 1])"
                ));
            }
            *slot = p;
        }
        if version >= VERSION_2 && header.classes[0] != 1.0 {
            return Err(format!(
                "bad header: sampling class 0 has probability {} (must be 1)",
                header.classes[0]
            ));
        }
        for (kind, name) in header.names.iter_mut().enumerate() {
            let raw = &bytes[KIND_NAMES + KIND_NAME_MAX * kind..][..KIND_NAME_MAX];
            let end = raw.iter().position(|b| *b == 0).unwrap_or(KIND_NAME_MAX);
            *name = (end > 0).then(|| String::from_utf8_lossy(&raw[..end]).into_owned());
        }
        if version == ARCHIVE_VERSION {
            header.bound = Bound {
                max_time: u64_at(bytes, MAX_RECORD_TIME),
                lateness: u64_at(bytes, LATENESS_BOUND),
            };
            header.bound_entries = u64_at(bytes, BOUND_ENTRIES);
        }
        if version >= VERSION_2 {
            header.skipped_invalid = u64_at(bytes, SKIPPED_INVALID);
            for (index, source) in header.sources.iter_mut().enumerate() {
                let at = SOURCE_TABLE + SOURCE_SIZE * index;
                *source = SourceSlot {
                    identity: RingIdentity {
                        anchor_unix_ns: u64_at(bytes, at),
                        anchor_mono_ns: u64_at(bytes, at + 8),
                        start_position: u32_at(bytes, at + 16),
                        capacity: u32_at(bytes, at + 20),
                    },
                    next_position: u32_at(bytes, at + 24),
                    flags: u32_at(bytes, at + 28),
                    first_entry: u64_at(bytes, at + 32),
                    covered: u64_at(bytes, at + 40),
                    entries: u64_at(bytes, at + 48),
                    skipped_invalid: u64_at(bytes, at + 56),
                };
                let valid = source.flags == 0
                    || (source.in_use()
                        && source.flags & !(SOURCE_IN_USE | SOURCE_HAS_POSITION) == 0
                        && source.first_entry <= source.covered
                        && source.identity.capacity.is_power_of_two());
                if !valid {
                    return Err(format!("bad header: source {index} is inconsistent"));
                }
            }
        }
        Ok(header)
    }

    /// The whole header as it goes on disk.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = vec![0u8; ARCHIVE_HEADER_SIZE];
        put(&mut bytes, 0, &ARCHIVE_MAGIC);
        put(&mut bytes, VERSION_FIELD, &self.version.to_le_bytes());
        put(
            &mut bytes,
            HEADER_SIZE_FIELD,
            &(ARCHIVE_HEADER_SIZE as u32).to_le_bytes(),
        );
        put(
            &mut bytes,
            ENTRY_SIZE_FIELD,
            &(ENTRY_SIZE as u32).to_le_bytes(),
        );
        put(&mut bytes, CREATED, &self.created_unix_ns.to_le_bytes());
        put(
            &mut bytes,
            SKIPPED_INVALID,
            &self.skipped_invalid.to_le_bytes(),
        );
        if self.version == ARCHIVE_VERSION {
            put(
                &mut bytes,
                MAX_RECORD_TIME,
                &self.bound.max_time.to_le_bytes(),
            );
            put(
                &mut bytes,
                LATENESS_BOUND,
                &self.bound.lateness.to_le_bytes(),
            );
            put(&mut bytes, BOUND_ENTRIES, &self.bound_entries.to_le_bytes());
        }
        for (index, source) in self.sources.iter().enumerate() {
            let at = SOURCE_TABLE + SOURCE_SIZE * index;
            put(
                &mut bytes,
                at,
                &source.identity.anchor_unix_ns.to_le_bytes(),
            );
            put(
                &mut bytes,
                at + 8,
                &source.identity.anchor_mono_ns.to_le_bytes(),
            );
            put(
                &mut bytes,
                at + 16,
                &source.identity.start_position.to_le_bytes(),
            );
            put(&mut bytes, at + 20, &source.identity.capacity.to_le_bytes());
            put(&mut bytes, at + 24, &source.next_position.to_le_bytes());
            put(&mut bytes, at + 28, &source.flags.to_le_bytes());
            put(&mut bytes, at + 32, &source.first_entry.to_le_bytes());
            put(&mut bytes, at + 40, &source.covered.to_le_bytes());
            put(&mut bytes, at + 48, &source.entries.to_le_bytes());
            put(&mut bytes, at + 56, &source.skipped_invalid.to_le_bytes());
        }
        for (class, p) in self.classes.iter().enumerate() {
            put(&mut bytes, CLASS_TABLE + 8 * class, &p.to_le_bytes());
        }
        for (kind, name) in self.names.iter().enumerate() {
            if let Some(name) = name {
                let len = name.len().min(KIND_NAME_MAX);
                put(
                    &mut bytes,
                    KIND_NAMES + KIND_NAME_MAX * kind,
                    &name.as_bytes()[..len],
                );
            }
        }
        bytes
    }

    /// The class of probability `p` (in (0, 1]), adding it if new; `None` when all 256 are
    /// taken.
    pub fn class_of(&mut self, p: f64) -> Option<(u8, bool)> {
        if let Some(class) = self.classes.iter().position(|q| *q == p) {
            return Some((u8::try_from(class).ok()?, false));
        }
        let free = self.classes.iter().position(|q| *q == 0.0)?;
        self.classes[free] = p;
        Some((u8::try_from(free).ok()?, true))
    }

    /// The archive kind id of the ring kind `ring_kind` called `name`: the id already
    /// carrying that name, else `ring_kind` itself if free, else the first free id. The bool
    /// says whether a name was added.
    pub fn kind_of(&mut self, ring_kind: u8, name: &str) -> Option<(u8, bool)> {
        if let Some(id) = self.names.iter().position(|n| n.as_deref() == Some(name)) {
            return Some((u8::try_from(id).ok()?, false));
        }
        let id = if self.names[ring_kind as usize].is_none() {
            ring_kind as usize
        } else {
            self.names.iter().position(Option::is_none)?
        };
        self.names[id] = Some(name.to_string());
        Some((u8::try_from(id).ok()?, true))
    }
}

/// One entry's fields, as read from its 32 bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawEntry {
    pub trace_id: u64,
    pub nanotime: u64,
    pub delta_ns: i64,
    pub status: u8,
    pub kind: u8,
    pub class: u8,
    pub source: u8,
    pub position: u32,
}

impl RawEntry {
    /// The record time of the entry at `bytes` (an entry's 32 bytes), or `None` for a
    /// snapshot entry (versions 2 and 3), which is not a record.
    #[inline]
    pub fn record_time(version: u32, entry: &[u8]) -> Option<u64> {
        if version >= VERSION_2 && entry[ENTRY_SOURCE] == super::snapshot::SNAPSHOT_SOURCE {
            None
        } else {
            Some(u64_at(entry, 8))
        }
    }

    /// Reads the fields of one entry. Inlined into the scanners' loops (they live in other
    /// crates' instantiations of generic folds, where a plain function call per record cost
    /// 9% of a `pct` profile); with a fixed-size entry the field reads need no bounds check.
    #[inline(always)]
    pub fn parse(entry: &[u8; ENTRY_SIZE]) -> Self {
        RawEntry {
            trace_id: u64_at(entry, 0),
            nanotime: u64_at(entry, 8),
            delta_ns: u64_at(entry, 16) as i64,
            status: entry[24],
            kind: entry[ENTRY_KIND],
            class: entry[ENTRY_CLASS],
            source: entry[ENTRY_SOURCE],
            position: u32_at(entry, ENTRY_POSITION),
        }
    }

    pub fn to_bytes(self) -> [u8; ENTRY_SIZE] {
        let mut entry = [0u8; ENTRY_SIZE];
        put(&mut entry, 0, &self.trace_id.to_le_bytes());
        put(&mut entry, 8, &self.nanotime.to_le_bytes());
        put(&mut entry, 16, &self.delta_ns.to_le_bytes());
        entry[24] = self.status;
        entry[ENTRY_KIND] = self.kind;
        entry[ENTRY_CLASS] = self.class;
        entry[ENTRY_SOURCE] = self.source;
        put(&mut entry, ENTRY_POSITION, &self.position.to_le_bytes());
        entry
    }
}
