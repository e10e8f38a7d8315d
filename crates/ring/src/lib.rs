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
//! A multi-producer push reserves a position (CAS on the ring word), *claims* the slot (CAS
//! of its stamp from a free state to `writing`), stores the record, and *commits* (CAS from
//! `writing` to `committed`). Because the commit is a CAS, a consumer can unblock a producer
//! stuck between reserve and commit (CAS to `abandoned`): exactly one of the two wins, and a
//! producer that lost releases the slot it still holds (`abandoned` → `skipped`) and reports
//! its record lost. docs/FORMAT.md, "Slot metadata", has the whole state machine.
//!
//! Memory orderings, in pairs:
//!
//! * **commit → read**: a producer's committing CAS (or the single producer's store) is
//!   `Release` after the record bytes; consumers and peekers load the stamp with `Acquire`
//!   before reading the bytes.
//! * **publish tail (single producer) → consumer**: the single producer's CAS of the ring word
//!   is `Release`; consumers load the ring word with `Acquire`.
//! * **free slot → reuse**: the consumer's CAS that advances head is `Release` after its reads
//!   of the slots; a producer's reserving CAS is `Acquire`, so those reads happen before the
//!   producer overwrites the slot. Loom cannot see load buffering (a load reading a store
//!   that comes later in the other thread), which is exactly what this pair forbids: a model
//!   with both sides `Relaxed` still passes. The written argument: the consumer's byte loads
//!   of position `p` are sequenced before its head CAS past `p`; the producer of `p + capacity`
//!   can only reserve after reading that CAS (or a later RMW of the ring word, which continues
//!   its release sequence); Release/Acquire makes the loads happen before every store of the
//!   new lap, so no load can read one (coherence). The claim CAS adds nothing here: the
//!   consumer never reads the bytes of a slot it passes as given up.
//! * **late producer → next claimer**: a producer that lost its slot releases it with a
//!   `Release` CAS after its (late) record stores; the next claim is an `Acquire` CAS, so
//!   the late bytes come first in every byte's modification order and cannot tear the new
//!   record. Until the release the slot is held, and no producer claims it.
//! * **seqlock re-check**: a producer claims (writing stamp), then `fence(Release)`, then the
//!   bytes; a peeker reads the bytes, then `fence(Acquire)`, then the stamp again. If the
//!   peeker saw any byte of the new lap, it sees the writing stamp and discards the read.
//!   [`Ring::for_each_committed`] makes the same pairs a group of slots at a time: all the
//!   group's stamps (`Relaxed`), one `fence(Acquire)` (each stamp that read a committing
//!   `Release` CAS now synchronizes with it: the pair **commit → read**), all the bytes, one
//!   `fence(Acquire)`, then the ring word, and all the stamps again only if head has passed
//!   the group. A fence pairs with every `Release` store or fence whose effect a load before
//!   it read, so one fence for eight slots orders as much as one for each.
//! * **taken slot → head seen by a reader**: a producer writes the slot of position
//!   `p + capacity` only after an access to the ring word that saw head past `p` (its
//!   reserving CAS; the single producer's load of head, or the CAS that taught it that
//!   head), and that access is sequenced before its `fence(Release)` and the bytes. If a
//!   reader's byte load read one of those bytes, the producer's fence synchronizes with the
//!   reader's `fence(Acquire)` after its loads, so the producer's access to the ring word
//!   happens before the reader's later load of it, which (coherence) reads that value or a
//!   later one: head past `p`, since head never goes back. Contrapositive: a reader that
//!   sees head at or before `p` after its fence read no later lap's byte of `p`'s slot, and
//!   needs no second look at its stamp. (Head would have to wrap 2^32 positions during one
//!   read to fool this.)
//!
//! ```
//! use ringlat_ring::{Consumer, HeapStorage, Ring};
//! use ringlat_format::Record;
//!
//! let ring = Ring::new(HeapStorage::new(4)).unwrap();
//! ring.push(0, 0, &Record::new(1, 10, 0, 5)).unwrap();
//! let mut consumer = Consumer::attach(&ring).unwrap();
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

pub use consumer::{ConsumeStats, Consumer, DEFAULT_UNBLOCK_AFTER};
pub use heap::HeapStorage;
pub use peek::{InFlight, PeekStats, Peeker};
pub use producer::{Full, SingleProducer};
#[cfg(not(loom))]
pub use region::{RECORD_SPLITS, RegionError, RegionStorage};
pub use ring::{
    MAX_CAPACITY, Missing, Overwritten, PushError, PushStage, Ring, RingError, Slot, SlotBusy,
};
pub use storage::{Fields, GROUP, Storage};
pub use sync::{AtomicU8, AtomicU64, Ordering};
