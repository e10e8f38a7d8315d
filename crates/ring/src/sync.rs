//! The atomics the ring uses: loom's under `--cfg loom`, the standard library's otherwise.

#[cfg(loom)]
pub use loom::sync::atomic::{AtomicU8, AtomicU64, Ordering, fence};

#[cfg(not(loom))]
pub use core::sync::atomic::{AtomicU8, AtomicU64, Ordering, fence};
