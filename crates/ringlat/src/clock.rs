//! The clock behind each record's nanotime: CLOCK_MONOTONIC nanoseconds, mapped to UNIX-epoch
//! nanoseconds by an anchor taken once at creation.
//!
//! Where the CPU's time-stamp counter is invariant (`constant_tsc` and `nonstop_tsc` in
//! /proc/cpuinfo, x86-64), the monotonic nanoseconds come from `rdtsc` mapped onto
//! CLOCK_MONOTONIC: about a third of the cost of the vDSO's `clock_gettime` here. The mapping is
//! calibrated once per process (10 ms, at the first ring's creation) and re-steered every
//! [`RECALIBRATE_EVERY`] by a small process-wide thread (`ringlat-clock`), which reads both
//! clocks and adjusts the slope so that the mapping converges on CLOCK_MONOTONIC without ever
//! stepping back. Elsewhere, or with `RINGLAT_CLOCK=vdso` in the environment, the vDSO clock is
//! read directly.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering, fence};
use std::sync::{Mutex, Once, OnceLock};
use std::time::Duration;

/// How often the TSC mapping is re-steered onto CLOCK_MONOTONIC.
pub(crate) const RECALIBRATE_EVERY: Duration = Duration::from_millis(500);
/// The largest slope correction one recalibration applies (parts per million).
const MAX_STEER_PPM: i128 = 500;

/// Which clock `monotonic_ns` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClockSource {
    /// `clock_gettime(CLOCK_MONOTONIC)` through the vDSO.
    Vdso,
    /// The invariant TSC, calibrated against CLOCK_MONOTONIC.
    Tsc,
}

const SOURCE_VDSO: u8 = 0;
const SOURCE_TSC: u8 = 1;

/// The TSC -> nanoseconds mapping, published under a sequence lock: `ns(t) = base_ns +
/// (t - base_tsc) * mult / 2^32`.
struct Mapping {
    seq: AtomicU64,
    base_tsc: AtomicU64,
    base_ns: AtomicU64,
    mult: AtomicU64,
}

static SOURCE: AtomicU8 = AtomicU8::new(SOURCE_VDSO);
static MAPPING: Mapping = Mapping {
    seq: AtomicU64::new(0),
    base_tsc: AtomicU64::new(0),
    base_ns: AtomicU64::new(0),
    mult: AtomicU64::new(0),
};
static INIT: Once = Once::new();
/// The first paired (TSC, CLOCK_MONOTONIC) reading: the slope is measured from it, over a
/// baseline that grows with the process's age.
static FIRST: OnceLock<(u64, u64)> = OnceLock::new();
/// One publisher at a time (the sequence lock has a single-writer protocol).
static PUBLISHER: Mutex<()> = Mutex::new(());

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

/// CLOCK_MONOTONIC through the vDSO.
fn vdso_ns() -> u64 {
    read(libc::CLOCK_MONOTONIC)
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn rdtsc() -> u64 {
    // SAFETY: rdtsc has no preconditions on x86-64; it only reads the time-stamp counter.
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn rdtsc() -> u64 {
    vdso_ns() // never called: the TSC source is only chosen on x86-64
}

/// Monotonic nanoseconds now, from the process's clock source.
#[inline]
pub(crate) fn monotonic_ns() -> u64 {
    // Relaxed: SOURCE only ever goes from vDSO to TSC, once, after the mapping is published
    // under its own sequence lock (whose Acquire below orders the mapping's reads).
    if SOURCE.load(Ordering::Relaxed) == SOURCE_TSC {
        tsc_ns()
    } else {
        vdso_ns()
    }
}

/// The TSC read through the current mapping.
#[inline]
fn tsc_ns() -> u64 {
    loop {
        // Acquire: pairs with the Release store of the even sequence number that closes a
        // publication; the fields read after it are at least that publication's.
        let before = MAPPING.seq.load(Ordering::Acquire);
        let base_tsc = MAPPING.base_tsc.load(Ordering::Relaxed);
        let base_ns = MAPPING.base_ns.load(Ordering::Relaxed);
        let mult = MAPPING.mult.load(Ordering::Relaxed);
        // Acquire fence: the field loads above are ordered before the re-check; pairs with the
        // writer's Release fence after it made the sequence odd.
        fence(Ordering::Acquire);
        if before & 1 == 0 && MAPPING.seq.load(Ordering::Relaxed) == before {
            return map(rdtsc(), base_tsc, base_ns, mult);
        }
        std::hint::spin_loop();
    }
}

#[inline(always)]
fn map(tsc: u64, base_tsc: u64, base_ns: u64, mult: u64) -> u64 {
    // Signed: another core's counter may read a few cycles behind the base.
    let ticks = tsc.wrapping_sub(base_tsc) as i64 as i128;
    let ns = (ticks * i128::from(mult)) >> 32;
    (i128::from(base_ns) + ns) as u64
}

/// Which source this process's records are stamped from (initialises it on first use).
pub(crate) fn source() -> ClockSource {
    init();
    if SOURCE.load(Ordering::Relaxed) == SOURCE_TSC {
        ClockSource::Tsc
    } else {
        ClockSource::Vdso
    }
}

fn tsc_is_invariant() -> bool {
    if !cfg!(target_arch = "x86_64") {
        return false;
    }
    if std::env::var_os("RINGLAT_CLOCK").is_some_and(|v| v == "vdso") {
        return false;
    }
    let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") else {
        return false;
    };
    info.lines()
        .find(|line| line.starts_with("flags"))
        .is_some_and(|flags| {
            let has = |flag: &str| flags.split_whitespace().any(|w| w == flag);
            has("constant_tsc") && has("nonstop_tsc")
        })
}

/// A TSC reading and the CLOCK_MONOTONIC reading taken between two TSC reads, from the
/// tightest of a few tries (a try interrupted between the reads is discarded).
fn paired_reading() -> (u64, u64) {
    let mut best = (u64::MAX, 0, 0);
    for _ in 0..7 {
        let before = rdtsc();
        let mono = vdso_ns();
        let after = rdtsc();
        let width = after.wrapping_sub(before);
        if width < best.0 {
            best = (width, before.wrapping_add(width / 2), mono);
        }
    }
    (best.1, best.2)
}

/// Publishes a new mapping under the sequence lock; the caller holds PUBLISHER.
fn publish(base_tsc: u64, base_ns: u64, mult: u64) {
    let seq = MAPPING.seq.load(Ordering::Relaxed);
    MAPPING.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
    // Release fence: the odd sequence number is visible before any new field; pairs with the
    // readers' Acquire fence.
    fence(Ordering::Release);
    MAPPING.base_tsc.store(base_tsc, Ordering::Relaxed);
    MAPPING.base_ns.store(base_ns, Ordering::Relaxed);
    MAPPING.mult.store(mult, Ordering::Relaxed);
    // Release: pairs with the readers' Acquire load of the sequence.
    MAPPING.seq.store(seq.wrapping_add(2), Ordering::Release);
}

/// The slope (ns per tick, 32.32 fixed point) between two paired readings.
fn slope(from: (u64, u64), to: (u64, u64)) -> Option<u64> {
    let ticks = to.0.checked_sub(from.0).filter(|t| *t > 0)?;
    let ns = to.1.checked_sub(from.1)?;
    u64::try_from((u128::from(ns) << 32) / u128::from(ticks))
        .ok()
        .filter(|m| *m > 0)
}

/// The steering loop of the `ringlat-clock` thread.
fn recalibrate_forever() {
    loop {
        std::thread::sleep(RECALIBRATE_EVERY);
        recalibrate();
    }
}

/// One recalibration: continue the current mapping from now (so it never steps back), and
/// pick the slope that brings it onto CLOCK_MONOTONIC by the next period.
pub(crate) fn recalibrate() {
    let Some(first) = FIRST.get().copied() else {
        return;
    };
    let _publisher = PUBLISHER
        .lock()
        .unwrap_or_else(|poison| poison.into_inner());
    let (tsc, mono) = paired_reading();
    let Some(measured) = slope(first, (tsc, mono)) else {
        return;
    };
    let current = map(
        tsc,
        MAPPING.base_tsc.load(Ordering::Relaxed),
        MAPPING.base_ns.load(Ordering::Relaxed),
        MAPPING.mult.load(Ordering::Relaxed),
    );
    // Ahead of CLOCK_MONOTONIC: keep the mapping's value (never step back) and run slower;
    // behind: step up to CLOCK_MONOTONIC (forward only).
    let base_ns = current.max(mono);
    let ahead = i128::from(base_ns - mono);
    let period = RECALIBRATE_EVERY.as_nanos() as i128;
    let steer = (-ahead * 1_000_000 / period).clamp(-MAX_STEER_PPM, MAX_STEER_PPM);
    let mult = i128::from(measured) * (1_000_000 + steer) / 1_000_000;
    publish(tsc, base_ns, u64::try_from(mult).unwrap_or(measured));
}

/// Chooses the clock source once per process; with an invariant TSC, calibrates it over
/// 10 ms and starts the recalibration thread.
pub(crate) fn init() {
    INIT.call_once(|| {
        if !tsc_is_invariant() {
            return;
        }
        let first = paired_reading();
        std::thread::sleep(Duration::from_millis(10));
        let second = paired_reading();
        let Some(mult) = slope(first, second) else {
            return;
        };
        let _ = FIRST.set(first);
        {
            let _publisher = PUBLISHER
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            // Start at the latest vDSO read, so that nothing steps back at the switch.
            publish(second.0, vdso_ns().max(second.1), mult);
        }
        let spawned = std::thread::Builder::new()
            .name("ringlat-clock".into())
            .spawn(recalibrate_forever);
        if spawned.is_ok() {
            // Relaxed: see `monotonic_ns`.
            SOURCE.store(SOURCE_TSC, Ordering::Relaxed);
        }
    });
}

impl Anchor {
    /// Takes the anchor: realtime read between two monotonic reads, paired with their midpoint.
    pub(crate) fn now() -> Anchor {
        init();
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

#[cfg(test)]
mod tests {
    use super::*;

    /// |TSC mapping - CLOCK_MONOTONIC| now, in ns, read between two vDSO reads (retried when
    /// the reads are far apart: the thread was descheduled between them).
    fn offset() -> u64 {
        loop {
            let before = vdso_ns();
            let mapped = monotonic_ns();
            let after = vdso_ns();
            if after - before < 20_000 {
                return if mapped < before {
                    before - mapped
                } else {
                    mapped.saturating_sub(after)
                };
            }
        }
    }

    #[test]
    fn the_tsc_mapping_stays_within_50us_of_clock_monotonic_and_never_steps_back() {
        if source() != ClockSource::Tsc {
            println!("skipped: the TSC is not invariant here (or RINGLAT_CLOCK=vdso)");
            return;
        }
        let began = std::time::Instant::now();
        let mut worst = 0;
        let mut last = monotonic_ns();
        // Across several recalibrations.
        while began.elapsed() < RECALIBRATE_EVERY * 5 {
            worst = worst.max(offset());
            for _ in 0..1000 {
                let now = monotonic_ns();
                assert!(now >= last, "the clock stepped back by {} ns", last - now);
                last = now;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        println!("worst offset from CLOCK_MONOTONIC: {worst} ns");
        assert!(worst < 50_000, "the TSC mapping drifted {worst} ns away");
    }

    #[test]
    fn a_recalibration_never_steps_the_clock_back() {
        if source() != ClockSource::Tsc {
            println!("skipped: the TSC is not invariant here (or RINGLAT_CLOCK=vdso)");
            return;
        }
        for _ in 0..200 {
            let before = monotonic_ns();
            recalibrate();
            let after = monotonic_ns();
            assert!(after >= before, "stepped back by {} ns", before - after);
        }
    }
}
