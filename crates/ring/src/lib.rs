//! The lock-free ring of ringlat, written once over an abstract [`Storage`].
//!
//! The same code runs over a memory-mapped file in production ([`RegionStorage`]) and over
//! heap cells ([`HeapStorage`]) under loom and miri (DESIGN.md invariant 5).
//!
//! Head and tail are 32-bit positions packed into one `AtomicU64` (head high, tail low) and
//! changed by compare-and-swap. Each slot carries a 64-bit metadata word (the commit stamp,
//! see [`ringlat_format::SlotMeta`]) so that a reader can tell a committed record of the lap
//! it expects from an empty, in-flight or recycled slot.
//!
//! Memory orderings, in pairs:
//!
//! * **commit → read**: a producer stores the committed stamp with `Release` after the record
//!   bytes; consumers and peekers load the stamp with `Acquire` before reading the bytes.
//! * **publish tail (single producer) → consumer**: the single producer's CAS of the ring word
//!   is `Release`; consumers load the ring word with `Acquire`.
//! * **free slot → reuse**: the consumer's CAS that advances head is `Release` after its reads
//!   of the slots; a producer's reserving CAS is `Acquire`, so those reads happen before the
//!   producer overwrites the slot.
//! * **seqlock re-check**: a producer stores the writing stamp, then `fence(Release)`, then the
//!   bytes; a peeker reads the bytes, then `fence(Acquire)`, then the stamp again. If the peeker
//!   saw any byte of the new lap, it sees the writing stamp and discards the read.
//!
//! ```
//! use ringlat_ring::{Consumer, HeapStorage, Ring};
//! use ringlat_format::Record;
//!
//! let ring = Ring::new(HeapStorage::new(4)).unwrap();
//! ring.push(0, 0, &Record::new(1, 10, 0, 5)).unwrap();
//! let mut consumer = Consumer::attach(&ring);
//! let mut seen = Vec::new();
//! consumer.consume(&ring, 16, &mut || false, |slot| seen.push(slot.record.trace_id()));
//! assert_eq!(seen, [1]);
//! ```
#![cfg_attr(not(loom), warn(clippy::undocumented_unsafe_blocks))]

mod consumer;
mod heap;
mod peek;
mod producer;
#[cfg(not(loom))]
mod region;
mod ring;
mod storage;
mod sync;

pub use consumer::{ConsumeStats, Consumer};
pub use heap::HeapStorage;
pub use peek::{InFlight, PeekStats, Peeker};
pub use producer::{Full, SingleProducer};
#[cfg(not(loom))]
pub use region::{RegionError, RegionStorage};
pub use ring::{Overwritten, Ring, RingError, Slot, SlotBusy};
pub use storage::Storage;
pub use sync::{AtomicU8, AtomicU64, Ordering};
