//! Byte offsets of the header fields (all little-endian) and a read-only view over them.

use crate::{DeltaUnit, FormatError, Geometry};

/// Page size the layout is aligned to.
pub const PAGE_SIZE: u64 = 4096;
/// Bytes before the record area: fixed header page, class table, kind table.
pub const HEADER_SIZE: u64 = 40_960;
/// The 8 magic bytes at offset 0.
pub const MAGIC: [u8; 8] = *b"RINGLAT\0";
/// The format version this code writes. Version 2 added the skipped and abandoned slot
/// states (docs/FORMAT.md, "Slot metadata"); a version-1 file is still read (it never holds
/// them), a version-2 file is refused by version-1 readers.
pub const VERSION: u32 = 2;
/// The oldest format version this code reads.
pub const OLDEST_READABLE_VERSION: u32 = 1;

/// `[u8; 8]` magic.
pub const MAGIC_FIELD: usize = 0;
/// `u32` version; written last at creation, 0 = not initialised.
pub const VERSION_FIELD: usize = 8;
/// `u32` header size, always [`HEADER_SIZE`] in version 1.
pub const HEADER_SIZE_FIELD: usize = 12;
/// `u32` slot count, a power of two.
pub const CAPACITY: usize = 16;
/// `u32` record size, 21.
pub const RECORD_SIZE_FIELD: usize = 20;
/// `u32` slot metadata size, 8.
pub const META_SIZE_FIELD: usize = 24;
/// `u32` creation flags, see [`FLAG_MULTI_PRODUCER`].
pub const CREATION_FLAGS: usize = 28;
/// `u64` offset of the record area.
pub const RECORDS_OFFSET: usize = 32;
/// `u64` offset of the slot metadata area.
pub const META_OFFSET: usize = 40;
/// `u64` total file size.
pub const FILE_SIZE: usize = 48;
/// `u8` delta unit code, see [`DeltaUnit`].
pub const DELTA_UNIT: usize = 56;
/// `u8` overflow policy: [`OVERFLOW_BREAK`] or [`OVERFLOW_OVERWRITE`].
pub const OVERFLOW_POLICY: usize = 57;
/// Overflow policy: a circuit breaker drops records while the ring is nearly full.
pub const OVERFLOW_BREAK: u8 = 0;
/// Overflow policy: when full, the newest record overwrites the oldest (flight recorder).
pub const OVERFLOW_OVERWRITE: u8 = 1;
/// `u32` process id of the writer that created the file.
pub const WRITER_PID: usize = 60;
/// `u64` UNIX-epoch nanoseconds read from the realtime clock at creation.
pub const ANCHOR_UNIX_NS: usize = 64;
/// `u64` monotonic-clock nanoseconds read at the same instant as [`ANCHOR_UNIX_NS`].
pub const ANCHOR_MONO_NS: usize = 72;
/// `u32` the position head and tail started at.
pub const START_POSITION: usize = 80;
/// `u32` (atomic) writer state: [`STATE_OPEN`] or [`STATE_CLOSED`].
pub const STATE: usize = 84;
/// `u64` (atomic) UNIX-epoch nanoseconds of the writer's last heartbeat, 0 = none yet.
pub const HEARTBEAT_UNIX_NS: usize = 88;
/// `u64` (atomic) bit 32 set: positions before the low 32 bits are known durable.
pub const DURABLE_POSITION: usize = 96;
/// `u64` (atomic, version 2) bit 32 set: the writer's watchdog sees the position in the low
/// 32 bits reserved but not finished since [`STUCK_SINCE_UNIX_NS`]; 0 = nothing stuck.
pub const STUCK_POSITION: usize = 104;
/// `u64` (atomic, version 2) UNIX-epoch nanoseconds at which the watchdog first saw
/// [`STUCK_POSITION`] unfinished.
pub const STUCK_SINCE_UNIX_NS: usize = 112;
/// Bit set in [`STUCK_POSITION`] while a position is stuck.
pub const STUCK_VALID: u64 = 1 << 32;
/// `u64` (atomic) the ring word: head in the high 32 bits, tail in the low 32 bits.
pub const RING_WORD: usize = 128;
/// Start of the global `u64` counters, see [`GlobalCounter`].
pub const GLOBAL_COUNTERS: usize = 256;
/// Number of global counter slots (the unused ones are reserved, 0).
pub const GLOBAL_COUNTER_COUNT: usize = 16;
/// `u32` (atomic) circuit breaker state: 0 closed, 1 open (alone on its cache line).
pub const BREAKER_STATE: usize = 384;
/// `u32` the breaker trips when free slots fall below this many.
pub const BREAKER_LOW_WATER: usize = 448;
/// `u32` the open breaker closes when free slots rise above this many.
pub const BREAKER_HIGH_WATER: usize = 452;
/// `u32` sampling decision source: [`DECISION_RANDOM`] or [`DECISION_TRACE_ID`].
pub const DECISION: usize = 456;
/// `u32` flush mode: [`FLUSH_ASYNC`] or [`FLUSH_EVERY`].
pub const FLUSH_MODE: usize = 460;
/// `u64` latencies at or above this many nanoseconds are always kept; 0 = off.
pub const KEEP_IF_SLOW_NS: usize = 464;
/// `u64` interval of synchronous flushes in nanoseconds ([`FLUSH_EVERY`] only).
pub const FLUSH_INTERVAL_NS: usize = 472;
/// `u64` `record_at` rejects timestamps further than this many nanoseconds from now.
pub const MAX_SKEW_NS: usize = 480;
/// `f64` load degradation multiplies a kind's rate by this factor per step.
pub const DEGRADE_FACTOR: usize = 488;
/// `f64` load degradation never cuts a rate below this.
pub const DEGRADE_FLOOR: usize = 496;
/// `u64` the background thread's period in nanoseconds (heartbeat, counters, breaker).
pub const TICK_NS: usize = 504;
/// Decision source: a per-thread pseudo-random generator.
pub const DECISION_RANDOM: u32 = 0;
/// Decision source: a hash of the trace id, the same in every process.
pub const DECISION_TRACE_ID: u32 = 1;
/// Flush mode: `msync(MS_ASYNC)` of the dirty range every tick (a hint on Linux).
pub const FLUSH_ASYNC: u32 = 0;
/// Flush mode: `msync(MS_SYNC)` of the dirty range every interval; durable position recorded.
pub const FLUSH_EVERY: u32 = 1;
/// Bit set in [`DURABLE_POSITION`] once a synchronous flush has completed.
pub const DURABLE_VALID: u64 = 1 << 32;
/// Start of the class table: 256 `f64` inclusion probabilities.
pub const CLASS_TABLE: usize = 4096;
/// Entries in the class table.
pub const CLASS_TABLE_ENTRIES: usize = 256;

/// Creation flag bit: the file was created for several producers.
pub const FLAG_MULTI_PRODUCER: u32 = 1;
/// Creation flag bit (informational): the writer reads its monotonic nanoseconds from the
/// invariant TSC calibrated against CLOCK_MONOTONIC, not from CLOCK_MONOTONIC itself.
pub const FLAG_TSC_CLOCK: u32 = 2;
/// Writer state: a writer has the file open (or died without closing it).
pub const STATE_OPEN: u32 = 0;
/// Writer state: the writer closed the file cleanly; nothing is in flight.
pub const STATE_CLOSED: u32 = 1;

/// The global counters, each a `u64` at `GLOBAL_COUNTERS + 8 * index`.
///
/// ```
/// use ringlat_format::GlobalCounter;
/// assert_eq!(GlobalCounter::Abandoned.offset(), 256);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GlobalCounter {
    /// Slots a consumer skipped because their producer died between reserving and committing.
    Abandoned,
    /// Times the circuit breaker opened.
    BreakerTrips,
    /// Records overwritten before anyone consumed them (overwrite mode).
    Overwritten,
    /// `msync` calls made by the background thread (never by `record`).
    Msyncs,
}

impl GlobalCounter {
    /// Every global counter, in index order.
    pub const ALL: [GlobalCounter; 4] = [
        GlobalCounter::Abandoned,
        GlobalCounter::BreakerTrips,
        GlobalCounter::Overwritten,
        GlobalCounter::Msyncs,
    ];

    /// Index in the counter block.
    pub const fn index(self) -> usize {
        match self {
            GlobalCounter::Abandoned => 0,
            GlobalCounter::BreakerTrips => 1,
            GlobalCounter::Overwritten => 2,
            GlobalCounter::Msyncs => 3,
        }
    }

    /// Byte offset in the file.
    pub const fn offset(self) -> usize {
        GLOBAL_COUNTERS + 8 * self.index()
    }

    /// The name tools print.
    pub const fn name(self) -> &'static str {
        match self {
            GlobalCounter::Abandoned => "abandoned",
            GlobalCounter::BreakerTrips => "breaker_trips",
            GlobalCounter::Overwritten => "overwritten",
            GlobalCounter::Msyncs => "msyncs",
        }
    }
}

/// A read-only view of a header held in memory (a copy read from the file, or a mapping).
///
/// Values that a live writer changes (the ring word, counters) are a snapshot when read
/// through this view; the reader crate reads them atomically from the mapping instead.
///
/// ```
/// use ringlat_format::{HeaderView, Geometry, DeltaUnit};
/// let mut bytes = vec![0u8; 40_960];
/// Geometry::for_capacity(8).unwrap().write_fixed_fields(&mut bytes, DeltaUnit::Micros, 0);
/// let view = HeaderView::new(&bytes);
/// assert_eq!(view.u32_at(ringlat_format::CAPACITY), 8);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct HeaderView<'a> {
    bytes: &'a [u8],
}

impl<'a> HeaderView<'a> {
    /// Wraps header bytes. Reads past the end return 0; validate first with [`HeaderView::validate`].
    pub fn new(bytes: &'a [u8]) -> Self {
        HeaderView { bytes }
    }

    /// The underlying bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Little-endian `u32` at `offset` (0 when out of bounds).
    pub fn u32_at(&self, offset: usize) -> u32 {
        self.array_at::<4>(offset).map_or(0, u32::from_le_bytes)
    }

    /// Little-endian `u64` at `offset` (0 when out of bounds).
    pub fn u64_at(&self, offset: usize) -> u64 {
        self.array_at::<8>(offset).map_or(0, u64::from_le_bytes)
    }

    /// Byte at `offset` (0 when out of bounds).
    pub fn u8_at(&self, offset: usize) -> u8 {
        self.bytes.get(offset).copied().unwrap_or(0)
    }

    /// `N` bytes at `offset`, `None` when out of bounds.
    pub fn array_at<const N: usize>(&self, offset: usize) -> Option<[u8; N]> {
        let end = offset.checked_add(N)?;
        self.bytes.get(offset..end)?.try_into().ok()
    }

    /// The delta unit, if the code is known.
    pub fn delta_unit(&self) -> Result<DeltaUnit, FormatError> {
        let code = self.u8_at(DELTA_UNIT);
        DeltaUnit::from_code(code).ok_or(FormatError::UnknownDeltaUnit(code))
    }

    /// Checks the header against the format and the real file length, returning the geometry.
    ///
    /// The checks run in this order, so that the first error is the most useful one:
    /// length of the fixed fields, initialisation (version 0), magic, version, header size,
    /// record and meta sizes, capacity, offsets, declared file size, real file length, unit.
    pub fn validate(&self, file_len: u64) -> Result<Geometry, FormatError> {
        const FIXED: u64 = 128;
        if (self.bytes.len() as u64) < FIXED || file_len < FIXED {
            return Err(FormatError::Truncated {
                actual: file_len.min(self.bytes.len() as u64),
                needed: FIXED,
            });
        }
        let magic = self.array_at::<8>(MAGIC_FIELD).unwrap_or_default();
        let version = self.u32_at(VERSION_FIELD);
        if version == 0 && (magic == MAGIC || magic == [0; 8]) {
            return Err(FormatError::NotInitialised);
        }
        if magic != MAGIC {
            return Err(FormatError::BadMagic(magic));
        }
        if !(OLDEST_READABLE_VERSION..=VERSION).contains(&version) {
            return Err(FormatError::UnsupportedVersion {
                found: version,
                supported: VERSION,
            });
        }
        expect_field(
            "header_size",
            self.u32_at(HEADER_SIZE_FIELD).into(),
            HEADER_SIZE,
        )?;
        expect_field(
            "record_size",
            self.u32_at(RECORD_SIZE_FIELD).into(),
            crate::RECORD_SIZE as u64,
        )?;
        expect_field(
            "meta_size",
            self.u32_at(META_SIZE_FIELD).into(),
            crate::META_SIZE as u64,
        )?;
        let geometry = Geometry::for_capacity(self.u32_at(CAPACITY).into())?;
        let geometry = crate::population::validate_area(self, geometry)?;
        expect_field(
            "records_offset",
            self.u64_at(RECORDS_OFFSET),
            geometry.records_offset,
        )?;
        expect_field(
            "meta_offset",
            self.u64_at(META_OFFSET),
            geometry.meta_offset,
        )?;
        let declared = self.u64_at(FILE_SIZE);
        if declared != geometry.file_size {
            return Err(FormatError::SizeMismatch {
                actual: declared,
                expected: geometry.file_size,
            });
        }
        if file_len < geometry.file_size {
            return Err(FormatError::Truncated {
                actual: file_len,
                needed: geometry.file_size,
            });
        }
        if file_len > geometry.file_size {
            return Err(FormatError::SizeMismatch {
                actual: file_len,
                expected: geometry.file_size,
            });
        }
        self.delta_unit()?;
        Ok(geometry)
    }
}

fn expect_field(field: &'static str, found: u64, expected: u64) -> Result<(), FormatError> {
    if found == expected {
        Ok(())
    } else {
        Err(FormatError::FieldMismatch {
            field,
            found,
            expected,
        })
    }
}
