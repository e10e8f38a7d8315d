//! ringlat: a lock-free latency sampler for hot paths.
//!
//! A [`Ring`] is a memory-mapped file holding a lock-free ring of 21-byte records
//! (trace id, UNIX-epoch nanotime, status, latency). Hot-path code calls [`Ring::record`];
//! the call never blocks, never allocates, never makes a system call and never takes a lock.
//! Another process (the `ringcat` tool, or the `ringlat-read` crate) reads the file while
//! it is being written.
//!
//! ```
//! # fn main() -> Result<(), ringlat::Error> {
//! # let dir = tempfile::tempdir().unwrap();
//! # let path = dir.path().join("latency.ring");
//! use std::time::Duration;
//! let ring = ringlat::Ring::builder(&path)
//!     .capacity(1 << 12)
//!     .kind(0, "market").kind(1, "limit").kind(2, "cancel")
//!     .delta_unit(ringlat::DeltaUnit::Micros)
//!     .create()?;
//! let outcome = ring.record(0, 0xC0FFEE, 0, Duration::from_micros(42));
//! assert_eq!(outcome, ringlat::Outcome::Written);
//! assert_eq!(ring.record(9, 1, 0, Duration::ZERO), ringlat::Outcome::Rejected); // kind 9 unknown
//! # Ok(()) }
//! ```
#![warn(clippy::undocumented_unsafe_blocks)]

mod background;
mod builder;
mod clock;
mod error;
mod file;
mod guard;
mod handle;
mod kind_handle;
mod outcome;
mod policy;
mod population;
mod sampler;
mod shared;
mod stripes;

pub use builder::Builder;
pub use error::Error;
pub use guard::{Recorder, STATUS_ABANDONED, Timer};
pub use handle::{Ring, SingleProducerRing};
pub use kind_handle::{KindHandle, UnknownKind};
pub use outcome::Outcome;
pub use policy::{Decision, Flush, Overflow};
pub use ringlat_format::DeltaUnit;
pub use sampler::{seed_thread_rng, trace_hash};
