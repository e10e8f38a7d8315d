//! A tokio service instrumented with `tracing`: the ring holds exactly one record per selected
//! span closed, with its kind, trace id, status and a duration that includes its awaits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ringlat_read::Source;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::Instrument;
use tracing::field::Empty;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// Errors the service's handlers return.
#[derive(Debug)]
struct Rejected;

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("rejected")
    }
}

impl std::error::Error for Rejected {}

/// `place_order`: configured by name; status recorded on the span; a nested span not selected.
#[tracing::instrument(fields(status = Empty))]
async fn place_order(trace_id: u64) {
    tracing::info_span!("validate").in_scope(|| {});
    tokio::time::sleep(Duration::from_millis(2)).await;
    check_risk(trace_id).await;
    tracing::Span::current().record("status", trace_id % 3);
}

/// Not selected (no name mapping, no kind field).
#[tracing::instrument]
async fn check_risk(trace_id: u64) {
    tokio::time::sleep(Duration::from_micros(100 + trace_id % 7)).await;
}

/// `cancel`: selected by its `kind` field; an `error` field recorded on failure; the trace id
/// given as a hex string.
async fn cancel(trace_id: u64) -> Result<(), Rejected> {
    let span = tracing::info_span!(
        "cancel_request",
        kind = "cancel",
        trace_id = format!("0x{trace_id:x}").as_str(),
        error = Empty
    );
    async {
        tokio::time::sleep(Duration::from_millis(1)).await;
        if trace_id.is_multiple_of(4) {
            tracing::Span::current().record("error", tracing::field::display(&Rejected));
            return Err(Rejected);
        }
        Ok(())
    }
    .instrument(span)
    .await
}

/// Counts the spans closed whose name the ring layer selects.
#[derive(Clone, Default)]
struct CloseCounter(Arc<Mutex<u64>>);

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for CloseCounter {
    fn on_close(&self, id: tracing::span::Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(&id)
            && ["place_order", "cancel_request"].contains(&span.name())
        {
            *self.0.lock().unwrap() += 1;
        }
    }
}

#[test]
fn records_equal_the_selected_spans_closed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("service.ring");
    let ring = ringlat::Ring::builder(&path)
        .capacity(1 << 12)
        .kind(0, "market")
        .kind(1, "cancel")
        .create()
        .unwrap();
    let layer = ringlat_tracing::RingLayer::new(ring.clone())
        .span("place_order", "market")
        .unwrap();
    assert!(
        ringlat_tracing::RingLayer::new(ring.clone())
            .span("place_order", "nope")
            .is_err()
    );
    let closes = CloseCounter::default();
    let subscriber = tracing_subscriber::registry()
        .with(layer)
        .with(closes.clone());
    // The only test of this binary: the global default reaches every runtime thread.
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    const ORDERS: u64 = 120;
    const CANCELS: u64 = 80;
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for trace_id in 0..ORDERS {
            tasks.push(tokio::spawn(place_order(trace_id)));
        }
        for trace_id in 1000..1000 + CANCELS {
            tasks.push(tokio::spawn(async move {
                let _ = cancel(trace_id).await;
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    });
    ring.flush().unwrap();
    let mut records = BTreeSet::new();
    let mut count = 0u64;
    Source::open(&path)
        .unwrap()
        .for_each(|s| {
            count += 1;
            let min_ns = if s.kind == 0 { 2_000_000 } else { 1_000_000 };
            assert!(s.delta_ns >= min_ns, "{s:?} shorter than its awaits");
            records.insert((s.kind, s.trace_id, s.status));
        })
        .unwrap();
    let mut expected = BTreeSet::new();
    for trace_id in 0..ORDERS {
        expected.insert((0u8, trace_id, (trace_id % 3) as u8));
    }
    for trace_id in 1000..1000 + CANCELS {
        expected.insert((1u8, trace_id, u8::from(trace_id.is_multiple_of(4))));
    }
    assert_eq!(count, ORDERS + CANCELS);
    assert_eq!(*closes.0.lock().unwrap(), count);
    assert_eq!(records, expected);
}
