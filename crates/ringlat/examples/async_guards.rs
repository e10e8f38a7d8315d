//! Timer guards across `.await` points in a tokio service: each request's guard starts when
//! the request arrives, lives across its awaits (and across worker threads: `Timer` is `Send`),
//! and records once it finishes. A request cancelled by a timeout drops its guard, which
//! records it with `STATUS_ABANDONED`, so the slowest requests are not lost from the tail.
//!
//! Usage: `cargo run -p ringlat --example async_guards [-- PATH]`; it checks what it wrote and
//! exits non-zero if the ring does not hold one record per request.

use ringlat::{DeltaUnit, Ring, STATUS_ABANDONED};
use std::time::Duration;

const REQUESTS: u64 = 200;

/// A request handler: two awaits (a "database" and a "downstream" call), the guard held
/// across both. Every 50th request is slow and will be cancelled by the caller's timeout.
async fn handle(ring: Ring, trace_id: u64) -> u8 {
    let market = match ring.kind_handle("market") {
        Ok(market) => market,
        Err(_) => return 2,
    };
    let timer = market.start(trace_id);
    tokio::time::sleep(Duration::from_micros(200 + trace_id % 300)).await;
    let slow = trace_id.is_multiple_of(50);
    tokio::time::sleep(if slow {
        Duration::from_secs(5)
    } else {
        Duration::from_micros(100)
    })
    .await;
    let status = u8::from(trace_id.is_multiple_of(17));
    timer.finish(status);
    status
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = std::env::args()
        .nth(1)
        .map_or_else(|| dir.path().join("async.ring"), Into::into);
    let ring = Ring::builder(&path)
        .capacity(1 << 12)
        .kind(0, "market")
        .delta_unit(DeltaUnit::Micros)
        .replace(true)
        .create()?;
    let mut tasks = Vec::new();
    for trace_id in 1..=REQUESTS {
        let ring = ring.clone();
        tasks.push(tokio::spawn(async move {
            // A timeout drops the handler's future, and with it the guard, at its await.
            tokio::time::timeout(Duration::from_millis(50), handle(ring, trace_id)).await
        }));
    }
    let mut timed_out = 0;
    for task in tasks {
        if task.await?.is_err() {
            timed_out += 1;
        }
    }
    ring.flush()?;
    let mut records = 0u64;
    let mut abandoned = 0u64;
    ringlat_read::Source::open(&path)?.for_each(|sample| {
        records += 1;
        if sample.status == STATUS_ABANDONED {
            abandoned += 1;
        }
    })?;
    println!(
        "{REQUESTS} requests, {timed_out} cancelled by their timeout: {records} records, \
         {abandoned} of them abandoned ({})",
        path.display()
    );
    if records != REQUESTS || abandoned != timed_out {
        return Err("the ring does not hold one record per request".into());
    }
    Ok(())
}
