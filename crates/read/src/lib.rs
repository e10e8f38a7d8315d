//! Reading ringlat ring files, normally from another process than the writer.
//!
//! * [`RingFile::open`] maps a file read-only (a private mapping that still sees the writer's
//!   updates), validates it, and offers [`RingFile::snapshot`] and [`Follower`] (peek: nothing
//!   is consumed).
//! * Every reader refuses non-regular files (a FIFO would hang it), checks every header field
//!   it trusts, skips (and counts) slots that name an undeclared kind or unused class, and
//!   survives the file shrinking under it: `check_intact` reports it, and a `SIGBUS` in a
//!   reader's mapping is turned into zero pages plus a flag (module `mapping`) instead of
//!   killing the process. That handler is installed once per process, only acts on faults
//!   inside reader mappings and hands every other `SIGBUS` to the previous handler.
//! * [`Drainer::open`] maps it writable, takes the consumer lock, and consumes records,
//!   advancing head so that the writer gets its space back.
//!
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! # let path = dir.path().join("r.ring");
//! let ring = ringlat::Ring::builder(&path).capacity(64).kind(0, "market").create().unwrap();
//! ring.record(0, 11, 0, std::time::Duration::from_micros(5));
//! let file = ringlat_read::RingFile::open(&path).unwrap();
//! let (records, _) = file.snapshot();
//! assert_eq!(records[0].record.trace_id(), 11);
//! assert_eq!(file.kind_name(0).as_deref(), Some("market"));
//! ```
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod archive;
mod decoded;
mod drain;
mod error;
mod escape;
mod follow;
mod in_place;
mod liveness;
mod locks;
mod mapping;
mod open;
mod parts;
pub mod percentile;
pub mod population;
mod sample;
mod status;
mod stuck;

pub use decoded::Decoded;
pub use drain::Drainer;
pub use error::ReadError;
pub use escape::escape_control;
pub use follow::Follower;
pub use in_place::InPlace;
pub use liveness::{Liveness, WriterState};
pub use locks::LockHolder;
pub use open::{Counters, RingFile};
pub use ringlat_ring::{Fields, InFlight, PeekStats};
pub use sample::{RingSnapshot, RingView, Sample, Source};
pub use status::{BreakerStatus, FlushMode, KindRates, WriterPolicy};
pub use stuck::StuckPosition;
