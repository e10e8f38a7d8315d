//! One host of a fleet, for the query-engine check (scripts/ci-duckdb.sh): writes a closed
//! ring of N records of market / limit / cancel with the sampling rates given, long-tailed
//! latencies, deterministic from the seed.
//!
//! Usage: `cargo run -p ringlat --example fleet_host -- PATH N LIMIT_RATE CANCEL_RATE SEED`

use ringlat::{Decision, DeltaUnit, Ring};
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    const USAGE: &str = "usage: fleet_host PATH N LIMIT_RATE CANCEL_RATE SEED";
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path, count, limit_rate, cancel_rate, seed] = args.as_slice() else {
        return Err(USAGE.into());
    };
    let count: u64 = count.parse()?;
    let seed: u64 = seed.parse()?;
    let ring = Ring::builder(path)
        .capacity(count.next_power_of_two().max(1024))
        .kind(0, "market")
        .kind(1, "limit")
        .kind(2, "cancel")
        .rate(1, limit_rate.parse()?)
        .rate(2, cancel_rate.parse()?)
        .decision(Decision::TraceId)
        .delta_unit(DeltaUnit::Nanos)
        .replace(true)
        .create()?;
    let mut state = seed;
    for i in 0..count {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let uniform = (state >> 11) as f64 / (1u64 << 53) as f64;
        let kind = (i % 3) as u8;
        let base = [40_000.0, 65_000.0, 25_000.0][kind as usize];
        // Exponential body, and one call in 500 a hundred times slower.
        let tail = if (state >> 3).is_multiple_of(500) {
            100.0
        } else {
            1.0
        };
        let nanos = base * (1.0 + 3.0 * -(1.0 - uniform).ln()) * tail;
        ring.record(
            kind,
            seed.wrapping_mul(1 << 32).wrapping_add(i),
            u8::from(i % 97 == 0),
            Duration::from_nanos(nanos as u64),
        );
    }
    ring.close()?;
    println!("{path}: {count} calls");
    Ok(())
}
