//! The timer guard, kind handles and delta rounding, read back from the file by ringlat-read.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ringlat::{DeltaUnit, Outcome, Ring, STATUS_ABANDONED, UnknownKind};
use ringlat_read::{RingFile, Sample, Source};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

/// Counts the allocations of the threads that armed it (the background thread is not armed).
struct CountingAlloc;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ARMED.with(Cell::get) {
            ALLOCATIONS.with(|a| a.set(a.get() + 1));
        }
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn allocations_during(work: impl FnOnce()) -> u64 {
    ALLOCATIONS.with(|a| a.set(0));
    ARMED.with(|a| a.set(true));
    work();
    ARMED.with(|a| a.set(false));
    ALLOCATIONS.with(Cell::get)
}

fn ring(dir: &tempfile::TempDir, unit: DeltaUnit) -> (Ring, std::path::PathBuf) {
    let path = dir.path().join("t.ring");
    let ring = Ring::builder(&path)
        .capacity(1 << 12)
        .kind(0, "market")
        .kind(1, "limit")
        .delta_unit(unit)
        .create()
        .unwrap();
    (ring, path)
}

fn samples(path: &std::path::Path) -> Vec<Sample> {
    let mut all = Vec::new();
    Source::open(path)
        .unwrap()
        .for_each(|s| all.push(s))
        .unwrap();
    all
}

#[test]
fn guard_records_its_start_time_and_the_elapsed_time() {
    let dir = tempfile::tempdir().unwrap();
    let (ring, path) = ring(&dir, DeltaUnit::Nanos);
    ring.record(1, 1, 0, Duration::ZERO); // stamped before the guard starts
    let timer = ring.start(0, 77);
    ring.record(1, 2, 0, Duration::ZERO); // stamped after it started
    // Longer than the ring's maximum skew (50 ms): a guard's own start is never rejected.
    std::thread::sleep(Duration::from_millis(80));
    ring.record(1, 3, 0, Duration::ZERO); // stamped before it finishes
    assert_eq!(timer.finish(4), Outcome::Written);
    ring.record(1, 5, 0, Duration::ZERO); // stamped after it finished
    let all = samples(&path);
    let time_of = |trace: u64| all.iter().find(|s| s.trace_id == trace).unwrap().nanotime;
    let guard = all.iter().find(|s| s.trace_id == 77).unwrap();
    assert_eq!((guard.kind, guard.status), (0, 4));
    assert!(time_of(1) <= guard.nanotime && guard.nanotime <= time_of(2));
    assert!(guard.delta_ns >= 80_000_000);
    assert!(guard.delta_ns >= (time_of(3) - time_of(2)) as i64);
    assert!(guard.delta_ns <= (time_of(5) - time_of(1)) as i64);
}

#[test]
fn a_dropped_guard_records_abandoned_and_a_discarded_one_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (ring, path) = ring(&dir, DeltaUnit::Micros);
    drop(ring.start(0, 10));
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _timer = ring.start(0, 11);
        panic!("the request failed");
    }));
    assert!(unwound.is_err());
    ring.start(0, 12).discard();
    ring.flush().unwrap();
    let mut seen: Vec<(u64, u8)> = samples(&path)
        .iter()
        .map(|s| (s.trace_id, s.status))
        .collect();
    seen.sort();
    assert_eq!(seen, [(10, STATUS_ABANDONED), (11, STATUS_ABANDONED)]);
    // The discarded guard is no call at all: two calls, both written.
    let counters = RingFile::open(&path).unwrap().counters();
    assert_eq!(counters.calls(), 2);
}

#[test]
fn kind_handles_record_under_their_kind_and_unknown_names_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (ring, path) = ring(&dir, DeltaUnit::Micros);
    let limit = ring.kind_handle("limit").unwrap();
    assert_eq!(limit.kind(), 1);
    assert_eq!(
        limit.record(5, 0, Duration::from_micros(9)),
        Outcome::Written
    );
    assert_eq!(limit.start(6).finish(2), Outcome::Written);
    let error: UnknownKind = ring.kind_handle("limt").unwrap_err();
    assert_eq!(error.name, "limt");
    assert_eq!(error.configured, "market, limit");
    let single = Ring::builder(dir.path().join("sp.ring"))
        .kind(9, "cancel")
        .create_single_producer()
        .unwrap();
    assert_eq!(single.kind_handle("cancel").unwrap().kind(), 9);
    assert!(single.kind_handle("market").is_err());
    let mut seen: Vec<(u64, u8, u8, i64)> = samples(&path)
        .iter()
        .map(|s| (s.trace_id, s.kind, s.status, s.delta_ns))
        .collect();
    seen.sort();
    assert_eq!(seen[0], (5, 1, 0, 9_000));
    assert_eq!((seen[1].0, seen[1].1, seen[1].2), (6, 1, 2));
}

#[test]
fn sub_unit_latencies_round_to_nearest() {
    for (unit, cases) in [
        (
            DeltaUnit::Micros,
            &[
                (400, 0),
                (499, 0),
                (500, 1_000),
                (1_499, 1_000),
                (1_500, 2_000),
            ][..],
        ),
        (
            DeltaUnit::Millis,
            &[(400_000, 0), (500_000, 1_000_000), (2_600_000, 3_000_000)][..],
        ),
        (DeltaUnit::Nanos, &[(1, 1), (400, 400)][..]),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (ring, path) = ring(&dir, unit);
        for (trace, (nanos, _)) in cases.iter().enumerate() {
            ring.record(0, trace as u64, 0, Duration::from_nanos(*nanos));
        }
        let mut seen: Vec<(u64, i64)> = samples(&path)
            .iter()
            .map(|s| (s.trace_id, s.delta_ns))
            .collect();
        seen.sort();
        let expected: Vec<(u64, i64)> = cases
            .iter()
            .enumerate()
            .map(|(trace, (_, ns))| (trace as u64, *ns))
            .collect();
        assert_eq!(seen, expected, "{unit:?}");
    }
}

#[test]
fn guards_and_kind_handles_allocate_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (ring, _path) = ring(&dir, DeltaUnit::Micros);
    let market = ring.kind_handle("market").unwrap();
    // Warm up: the thread's stripe and random state are set up on first use.
    ring.start(0, 0).finish(0);
    let allocations = allocations_during(|| {
        for trace in 0..1_000 {
            ring.start(0, trace).finish(0);
            market.start(trace).finish(1);
            market.record(trace, 0, Duration::from_micros(3));
            drop(ring.start(1, trace));
        }
    });
    assert_eq!(allocations, 0);
}

#[test]
fn latencies_past_the_units_range_saturate_and_are_counted() {
    use ringlat_format::KindCounter;
    let max_units = i64::from(i32::MAX);
    for (unit, unit_ns, fits, too_long) in [
        (
            DeltaUnit::Nanos,
            1,
            Duration::from_secs(2),
            Duration::from_secs(3),
        ),
        (
            DeltaUnit::Micros,
            1_000,
            Duration::from_secs(2_000),
            Duration::from_secs(3_000),
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (ring, path) = ring(&dir, unit);
        // Duration::MAX is past u64 nanoseconds too (584 years): it saturates as well.
        for (trace, delta) in [(0, fits), (1, too_long), (2, Duration::MAX)] {
            assert_eq!(ring.record(0, trace, 0, delta), Outcome::Written);
        }
        ring.flush().unwrap();
        let mut seen: Vec<(u64, i64)> = samples(&path)
            .iter()
            .map(|s| (s.trace_id, s.delta_ns))
            .collect();
        seen.sort();
        let fits_ns = i64::try_from(fits.as_nanos()).unwrap();
        assert_eq!(
            seen,
            [
                (0, fits_ns),
                (1, max_units * unit_ns),
                (2, max_units * unit_ns)
            ],
            "{unit:?}"
        );
        let counters = RingFile::open(&path).unwrap().counters();
        assert_eq!(counters.get(KindCounter::Written), 3, "{unit:?}");
        assert_eq!(counters.get(KindCounter::Saturated), 2, "{unit:?}");
    }
}
