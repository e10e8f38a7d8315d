//! What the convenient recording paths cost, interleaved with their anchors in one run so the
//! ratios survive a noisy machine:
//!
//! * `guard`: `record` with a caller-measured delta (the anchor), `start`+`finish` of a timer
//!   guard, and of a kind handle's guard; all written (overwrite mode: never full).
//! * `span`: one span created, entered, exited and closed with no layer (a bare registry), a
//!   `tracing_subscriber::fmt` layer writing to `io::sink`, and the ring layer.
//!
//! `cargo bench -p ringlat-tracing --bench layer`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use ringlat::{Overflow, Ring};
use std::time::Duration;
use tracing_subscriber::layer::SubscriberExt;

fn flight_ring(dir: &tempfile::TempDir, name: &str) -> Ring {
    Ring::builder(dir.path().join(name))
        .capacity(1 << 16)
        .kind(0, "market")
        .overflow(Overflow::Overwrite)
        .create()
        .unwrap()
}

fn guard(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let ring = flight_ring(&dir, "guard.ring");
    let market = ring.kind_handle("market").unwrap();
    let delta = Duration::from_micros(42);
    let mut trace = 0u64;
    let mut group = c.benchmark_group("guard");
    group.bench_function("record_written", |b| {
        b.iter(|| {
            trace += 1;
            black_box(ring.record(0, trace, 0, delta))
        })
    });
    group.bench_function("start_finish_written", |b| {
        b.iter(|| {
            trace += 1;
            black_box(ring.start(0, trace).finish(0))
        })
    });
    group.bench_function("kind_handle_start_finish_written", |b| {
        b.iter(|| {
            trace += 1;
            black_box(market.start(trace).finish(0))
        })
    });
    group.finish();
}

fn one_span(trace: u64) {
    let span = tracing::info_span!("place_order", trace_id = trace);
    let entered = span.enter();
    black_box(&entered);
    drop(entered);
}

fn span(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let ring = flight_ring(&dir, "layer.ring");
    let mut group = c.benchmark_group("span");
    let mut trace = 0u64;
    let bare = tracing_subscriber::registry();
    tracing::subscriber::with_default(bare, || {
        group.bench_function("no_layer", |b| {
            b.iter(|| {
                trace += 1;
                one_span(trace)
            })
        });
    });
    let fmt = tracing_subscriber::registry().with(
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::sink)
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE),
    );
    tracing::subscriber::with_default(fmt, || {
        group.bench_function("fmt_layer_to_sink", |b| {
            b.iter(|| {
                trace += 1;
                one_span(trace)
            })
        });
    });
    let layer = ringlat_tracing::RingLayer::new(ring.clone())
        .span("place_order", "market")
        .unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        group.bench_function("ring_layer", |b| {
            b.iter(|| {
                trace += 1;
                one_span(trace)
            })
        });
    });
    group.finish();
}

criterion_group!(benches, guard, span);
criterion_main!(benches);
