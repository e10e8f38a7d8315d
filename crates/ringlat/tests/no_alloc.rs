//! `record` and `record_at` allocate nothing after the first call on a thread, in every mode:
//! written (break and overwrite, multi- and single-producer), sampled out (random and trace-id
//! decisions), dropped while the breaker is open, rejected. A counting global allocator (this
//! test binary only) counts the allocations of the calling thread.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use ringlat::{Decision, Outcome, Overflow, Ring, SingleProducerRing};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

struct Counting;

thread_local! {
    // const-initialised: reading it never allocates (no lazy init), so the allocator may use it.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counter only observes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

const CALLS: u64 = 20_000;

/// Calls `record` once and `record_at` once to warm the thread up, then counts the
/// allocations of CALLS more calls of each; returns them with the outcomes seen.
/// Allocations counted, and the outcomes seen while counting.
type Counted = (u64, Vec<Outcome>);

fn count<R: Fn(u64) -> Outcome, A: Fn(u64, u64) -> Outcome>(record: R, record_at: A) -> Counted {
    record(0);
    record_at(0, unix_now());
    let mut seen = [false; 4];
    let before = allocations();
    for trace in 1..=CALLS {
        let now = unix_now();
        for outcome in [record(trace), record_at(trace, now)] {
            seen[outcome as usize % 4] = true;
        }
    }
    let allocated = allocations() - before;
    let outcomes = [
        Outcome::Written,
        Outcome::SampledOut,
        Outcome::Dropped,
        Outcome::Rejected,
    ]
    .into_iter()
    .filter(|o| seen[*o as usize % 4])
    .collect();
    (allocated, outcomes)
}

fn on_new_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(f).join().unwrap()
}

fn multi(ring: Ring, kind: u8) -> Counted {
    on_new_thread(move || {
        let d = Duration::from_micros(3);
        trip_if_small(
            ring.capacity(),
            || ring.record(kind, 0, 0, d),
            || ring.breaker_open(),
        );
        count(
            |t| ring.record(kind, t, 0, d),
            |t, now| ring.record_at(kind, t, 0, d, now),
        )
    })
}

fn single(ring: SingleProducerRing, kind: u8) -> Counted {
    on_new_thread(move || {
        let d = Duration::from_micros(3);
        trip_if_small(
            ring.capacity(),
            || ring.record(kind, 0, 0, d),
            || ring.breaker_open(),
        );
        count(
            |t| ring.record(kind, t, 0, d),
            |t, now| ring.record_at(kind, t, 0, d, now),
        )
    })
}

/// Rings of capacity 128 (break mode) are filled until the breaker opens before counting.
fn trip_if_small(capacity: u32, record: impl Fn() -> Outcome, open: impl Fn() -> bool) {
    if capacity == 128 {
        while !open() {
            record();
        }
    }
}

fn builder(dir: &tempfile::TempDir, name: &str) -> ringlat::Builder {
    Ring::builder(dir.path().join(name))
        .kind(0, "op")
        .tick(Duration::from_secs(3600))
        // `record_at` gets a timestamp read before the two calls: a thread descheduled for
        // more than the default 50 ms skew on a loaded machine would see Rejected, not the
        // mode under test (seen once under load 7 on 2 cores).
        .max_skew(Duration::from_secs(3600))
}

#[test]
fn the_counter_sees_allocations() {
    let before = allocations();
    let v: Vec<u8> = Vec::with_capacity(std::hint::black_box(16));
    drop(std::hint::black_box(v));
    assert_eq!(allocations() - before, 1);
}

#[test]
fn record_allocates_nothing_after_the_first_call_in_every_mode() {
    let dir = tempfile::tempdir().unwrap();
    let big = 1 << 17; // 2 * CALLS + 2 fit: break mode writes every call
    let cases: Vec<(&str, Counted, Vec<Outcome>)> = vec![
        (
            "break, multi producer",
            multi(builder(&dir, "b.ring").capacity(big).create().unwrap(), 0),
            vec![Outcome::Written],
        ),
        (
            "overwrite, multi producer (laps)",
            multi(
                builder(&dir, "o.ring")
                    .capacity(64)
                    .overflow(Overflow::Overwrite)
                    .create()
                    .unwrap(),
                0,
            ),
            vec![Outcome::Written],
        ),
        (
            "break, single producer",
            single(
                builder(&dir, "s.ring")
                    .capacity(big)
                    .create_single_producer()
                    .unwrap(),
                0,
            ),
            vec![Outcome::Written],
        ),
        (
            "overwrite, single producer (laps)",
            single(
                builder(&dir, "so.ring")
                    .capacity(64)
                    .overflow(Overflow::Overwrite)
                    .create_single_producer()
                    .unwrap(),
                0,
            ),
            vec![Outcome::Written],
        ),
        (
            "sampled out, random",
            multi(builder(&dir, "r.ring").rate(0, 1e-9).create().unwrap(), 0),
            vec![Outcome::SampledOut],
        ),
        (
            "sampled out, trace id",
            multi(
                builder(&dir, "t.ring")
                    .rate(0, 1e-9)
                    .decision(Decision::TraceId)
                    .create()
                    .unwrap(),
                0,
            ),
            vec![Outcome::SampledOut],
        ),
        (
            "sampled out, single producer",
            single(
                builder(&dir, "st.ring")
                    .rate(0, 1e-9)
                    .create_single_producer()
                    .unwrap(),
                0,
            ),
            vec![Outcome::SampledOut],
        ),
        (
            "breaker open",
            multi(builder(&dir, "x.ring").capacity(128).create().unwrap(), 0),
            vec![Outcome::Dropped],
        ),
        (
            "breaker open, single producer",
            single(
                builder(&dir, "sx.ring")
                    .capacity(128)
                    .create_single_producer()
                    .unwrap(),
                0,
            ),
            vec![Outcome::Dropped],
        ),
        (
            "rejected (undeclared kind)",
            multi(builder(&dir, "u.ring").create().unwrap(), 9),
            vec![Outcome::Rejected],
        ),
    ];
    for (mode, (allocated, seen), expected) in cases {
        assert_eq!(seen, expected, "{mode}: the mode was not the one exercised");
        assert_eq!(
            allocated,
            0,
            "{mode}: {allocated} allocations in {} calls",
            2 * CALLS
        );
    }
}
