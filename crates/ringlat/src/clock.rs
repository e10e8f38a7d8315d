//! The clock behind each record's nanotime: CLOCK_MONOTONIC (read through the vDSO, no system
//! call) mapped to UNIX-epoch nanoseconds by an anchor taken once at creation.

/// A pair of readings of the realtime and monotonic clocks taken at the same instant.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Anchor {
    pub unix_ns: u64,
    pub mono_ns: u64,
}

fn read(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; clock_gettime only writes it. With a valid
    // clock id it cannot fail, and on failure `ts` stays 0, which is harmless.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

/// Monotonic nanoseconds now.
#[inline]
pub(crate) fn monotonic_ns() -> u64 {
    read(libc::CLOCK_MONOTONIC)
}

impl Anchor {
    /// Takes the anchor: realtime read between two monotonic reads, paired with their midpoint.
    pub(crate) fn now() -> Anchor {
        let before = monotonic_ns();
        let unix_ns = read(libc::CLOCK_REALTIME);
        let after = monotonic_ns();
        Anchor {
            unix_ns,
            mono_ns: before + (after - before) / 2,
        }
    }

    /// UNIX-epoch nanoseconds now, derived from the monotonic clock (never goes back).
    #[inline]
    pub(crate) fn unix_now(&self) -> u64 {
        self.unix_ns
            .wrapping_add(monotonic_ns().wrapping_sub(self.mono_ns))
    }
}
