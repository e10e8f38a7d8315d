//! The README's usage snippet: a kind handle, timer guards, and a plain `record`.
use ringlat::{DeltaUnit, Ring};
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ring = Ring::builder("/dev/shm/gw-latency.ring") // a tmpfs: no page fault waits on a disk
        .capacity(1 << 20) // slots, a power of two
        .kind(0, "market")
        .kind(1, "limit")
        .kind(2, "cancel")
        .delta_unit(DeltaUnit::Micros) // deltas round to the nearest microsecond
        .replace(true)
        .create()?; // a Ring: Clone + Send + Sync, one per process
    let market = ring.kind_handle("market")?; // an unknown name fails here, never on the hot path

    for trace_id in 1..=1_000u64 {
        let timer = market.start(trace_id); // one clock read
        let status = place_order(trace_id);
        timer.finish(status); // one clock read: nanotime = start, delta = elapsed
    }
    // A latency measured by the caller: kind id, trace id, status, delta.
    ring.record(1, 7, 0, Duration::from_micros(42)); // Written | SampledOut | Dropped | Rejected
    Ok(())
}

fn place_order(trace_id: u64) -> u8 {
    u8::from(trace_id.is_multiple_of(100)) // 0 = ok
}
