//! The bytes on disk of a ringlat ring file, version 2 (version 1 is still read).
//!
//! Everything here is plain data: offsets, the 21-byte [`Record`], the per-slot
//! [`SlotMeta`] word, and [`HeaderView::validate`], which checks a header and
//! refuses, with a typed [`FormatError`], anything it does not understand.
//! The normative description is `docs/FORMAT.md`; this crate is its twin in code.
//!
//! ```
//! use ringlat_format::{Geometry, Record};
//! let geometry = Geometry::for_capacity(1024).unwrap();
//! assert_eq!(geometry.records_offset, 40_960);
//! let record = Record::new(42, 1_700_000_000_000_000_000, 0, -5);
//! assert_eq!(bytemuck::bytes_of(&record).len(), 21);
//! ```
#![forbid(unsafe_code)]

mod error;
mod fields;
mod geometry;
mod header;
mod kind;
mod meta;
pub mod population;
mod record;
mod unit;

pub use error::FormatError;
pub use fields::{check_ring_word, is_probability};
pub use geometry::{Geometry, MAX_CAPACITY, MIN_CAPACITY};
pub use header::{
    ANCHOR_MONO_NS, ANCHOR_UNIX_NS, CAPACITY, CLASS_TABLE, CLASS_TABLE_ENTRIES, CREATION_FLAGS,
    DELTA_UNIT, DURABLE_POSITION, FILE_SIZE, FLAG_MULTI_PRODUCER, FLAG_TSC_CLOCK,
    GLOBAL_COUNTER_COUNT, GLOBAL_COUNTERS, GlobalCounter, HEADER_SIZE, HEADER_SIZE_FIELD,
    HEARTBEAT_UNIX_NS, HeaderView, MAGIC, MAGIC_FIELD, META_OFFSET, META_SIZE_FIELD,
    OVERFLOW_POLICY, PAGE_SIZE, RECORD_SIZE_FIELD, RECORDS_OFFSET, RING_WORD, START_POSITION,
    STATE, STATE_CLOSED, STATE_OPEN, VERSION, VERSION_FIELD, WRITER_PID,
};
pub use header::{
    BREAKER_HIGH_WATER, BREAKER_LOW_WATER, BREAKER_STATE, DECISION, DECISION_RANDOM,
    DECISION_TRACE_ID, DEGRADE_FACTOR, DEGRADE_FLOOR, DURABLE_VALID, FLUSH_ASYNC, FLUSH_EVERY,
    FLUSH_INTERVAL_NS, FLUSH_MODE, KEEP_IF_SLOW_NS, MAX_SKEW_NS, OVERFLOW_BREAK,
    OVERFLOW_OVERWRITE, TICK_NS,
};
pub use header::{OLDEST_READABLE_VERSION, STUCK_POSITION, STUCK_SINCE_UNIX_NS, STUCK_VALID};
pub use kind::{KIND_COUNT, KIND_ENTRY_SIZE, KIND_NAME_MAX, KIND_TABLE, KindCounter, KindField};
pub use meta::{Lap, META_SIZE, SlotMeta, SlotState, lap_of};
pub use record::{RECORD_SIZE, Record};
pub use unit::DeltaUnit;

/// Splits the packed ring word into `(head, tail)`: head in the high 32 bits, tail in the low 32.
///
/// ```
/// let word = ringlat_format::pack_positions(7, 9);
/// assert_eq!(ringlat_format::unpack_positions(word), (7, 9));
/// ```
#[inline]
pub const fn unpack_positions(word: u64) -> (u32, u32) {
    ((word >> 32) as u32, word as u32)
}

/// Packs `head` (high 32 bits) and `tail` (low 32 bits) into one ring word.
///
/// ```
/// assert_eq!(ringlat_format::pack_positions(1, 2), (1u64 << 32) | 2);
/// ```
#[inline]
pub const fn pack_positions(head: u32, tail: u32) -> u64 {
    ((head as u64) << 32) | tail as u64
}
