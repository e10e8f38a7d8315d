//! The cost of `record` on its paths, interleaved with the anchors in the same run so that the
//! ratios survive a noisy machine:
//!
//! * sampled out (random decision, and by trace id): the cheapest path;
//! * written: overwrite mode (never full, so every call writes), multi- and single-producer;
//! * dropped while the breaker is open;
//! * anchors: rtrb push+pop (SPSC), crossbeam ArrayQueue push+pop (MPMC), hdrhistogram record.
//!
//! `cargo bench -p ringlat-benches`
//! Criterion benches of `record` on its paths, beside the anchors, in the same run:
//!
//! * sampled out (random decision, and by trace id): the cheapest path;
//! * written: overwrite mode (never full, so every call writes, with no consumer), multi- and
//!   single-producer, with the library clock and with `record_at`;
//! * dropped while the breaker is open;
//! * anchors: rtrb push+pop (SPSC), crossbeam ArrayQueue push+pop (MPMC), each one push and
//!   one pop per iteration, exactly as named; hdrhistogram record.
//!
//! Before timing, each bench checks once that its call takes the path its name says.
//! `cargo bench -p ringlat-benches`; the interleaved comparison with medians and ratios is
//! `cargo run --release -p ringlat-benches --bin compare`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use ringlat::{Decision, Outcome, Overflow, Ring};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Runs `call` a few times and fails the bench if any call leaves the path it is named for.
fn check_path(name: &str, expected: Outcome, mut call: impl FnMut(u64) -> Outcome) {
    for trace in 1..=1000 {
        let outcome = call(trace);
        assert_eq!(outcome, expected, "bench {name} took another path");
    }
}

fn hot_path(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let delta = Duration::from_micros(42);
    let mut group = c.benchmark_group("record");

    let sampled = Ring::builder(dir.path().join("sampled.ring"))
        .kind(0, "op")
        .rate(0, 1e-6)
        .create()
        .unwrap();
    // Rate 1e-6: about one call in a million is kept; the check runs 1000 calls.
    check_path("sampled_out_random", Outcome::SampledOut, |t| {
        sampled.record(0, t, 0, delta)
    });
    let mut trace = 0u64;
    group.bench_function("sampled_out_random", |b| {
        b.iter(|| {
            trace += 1;
            black_box(sampled.record(0, trace, 0, delta))
        })
    });
    let by_trace = Ring::builder(dir.path().join("by_trace.ring"))
        .kind(0, "op")
        .rate(0, 1e-6)
        .decision(Decision::TraceId)
        .create()
        .unwrap();
    check_path("sampled_out_trace_id", Outcome::SampledOut, |t| {
        by_trace.record(0, t, 0, delta)
    });
    group.bench_function("sampled_out_trace_id", |b| {
        b.iter(|| {
            trace += 1;
            black_box(by_trace.record(0, trace, 0, delta))
        })
    });

    let flight = Ring::builder(dir.path().join("flight.ring"))
        .capacity(1 << 16)
        .kind(0, "op")
        .overflow(Overflow::Overwrite)
        .max_skew(Duration::from_secs(3600)) // record_at's `now` is taken once
        .create()
        .unwrap();
    check_path("written_multi_producer", Outcome::Written, |t| {
        flight.record(0, t, 0, delta)
    });
    group.bench_function("written_multi_producer", |b| {
        b.iter(|| {
            trace += 1;
            black_box(flight.record(0, trace, 0, delta))
        })
    });
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    group.bench_function("written_multi_producer_record_at", |b| {
        b.iter(|| {
            trace += 1;
            black_box(flight.record_at(0, trace, 0, delta, now))
        })
    });
    let single = Ring::builder(dir.path().join("single.ring"))
        .capacity(1 << 16)
        .kind(0, "op")
        .overflow(Overflow::Overwrite)
        .create_single_producer()
        .unwrap();
    check_path("written_single_producer", Outcome::Written, |t| {
        single.record(0, t, 0, delta)
    });
    group.bench_function("written_single_producer", |b| {
        b.iter(|| {
            trace += 1;
            black_box(single.record(0, trace, 0, delta))
        })
    });

    let tripped = Ring::builder(dir.path().join("tripped.ring"))
        .capacity(64)
        .kind(0, "op")
        .tick(Duration::from_secs(3600))
        .create()
        .unwrap();
    while !tripped.breaker_open() {
        tripped.record(0, 0, 0, delta);
    }
    check_path("dropped_breaker_open", Outcome::Dropped, |t| {
        tripped.record(0, t, 0, delta)
    });
    group.bench_function("dropped_breaker_open", |b| {
        b.iter(|| {
            trace += 1;
            black_box(tripped.record(0, trace, 0, delta))
        })
    });

    let (mut producer, mut consumer) = rtrb::RingBuffer::<[u8; 21]>::new(1 << 16);
    group.bench_function("anchor_rtrb_push_pop", |b| {
        b.iter(|| {
            trace += 1;
            let mut item = [0u8; 21];
            item[..8].copy_from_slice(&trace.to_le_bytes());
            producer.push(black_box(item)).unwrap();
            black_box(consumer.pop().unwrap())
        })
    });
    let queue = crossbeam_queue::ArrayQueue::<[u8; 21]>::new(1 << 16);
    group.bench_function("anchor_arrayqueue_push_pop", |b| {
        b.iter(|| {
            trace += 1;
            let mut item = [0u8; 21];
            item[..8].copy_from_slice(&trace.to_le_bytes());
            queue.push(black_box(item)).unwrap();
            black_box(queue.pop().unwrap())
        })
    });
    let mut histogram = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    group.bench_function("anchor_hdrhistogram_record", |b| {
        b.iter(|| {
            trace += 1;
            histogram.record(black_box(1 + trace % 50_000)).unwrap();
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = hot_path
}
criterion_main!(benches);
