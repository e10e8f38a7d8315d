//! Writes a closed ring file of CAPACITY slots (a power of two), filled to the brim with
//! synthetic records (3 kinds kept at 100% / 10% / 50%, a long tail, µs deltas), for timing
//! the readers on a ring as big as a live one: `scripts/bench-readers.sh` makes one of 2^24.
//! `cargo run --release -p ringcat --example synth_ring -- big.ring 16777216`
//!
//! With a third argument SECONDS, the ring stays open that long after it is full (its writer
//! alive: readers read it in place, passing over slots in flight, as they do any live ring
//! with no consumer), and "full" is printed once it is: `synth_ring live.ring 16777216 60 &`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ringlat::{DeltaUnit, Outcome, Ring};
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: synth_ring PATH CAPACITY [SECONDS]";
    let path = args.next().ok_or(usage)?;
    let capacity: u32 = args.next().ok_or(usage)?.parse()?;
    let hold: Option<u64> = args.next().map(|s| s.parse()).transpose()?;
    if !capacity.is_power_of_two() {
        return Err("CAPACITY must be a power of two".into());
    }
    let ring = Ring::builder(&path)
        .capacity(u64::from(capacity))
        .kind(0, "market")
        .kind(1, "limit")
        .kind(2, "cancel")
        .rate(1, 0.1)
        .rate(2, 0.5)
        .delta_unit(DeltaUnit::Micros)
        // Never trip the breaker before the ring is full: the point is a full ring.
        .breaker_water_marks(0, 1)
        .population_histograms(false)
        .seed(7)
        .replace(true)
        .create()?;
    let mut state = 1u64;
    let mut written = 0u32;
    let mut call = 0u64;
    while written < capacity {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let uniform = (state >> 11) as f64 / (1u64 << 53) as f64;
        let kind = (call % 3) as u8;
        let micros = [40.0, 65.0, 25.0][kind as usize] * (1.0 + 3.0 * -(1.0 - uniform).ln());
        let delta = Duration::from_micros(micros as u64);
        match ring.record(kind, call, (state >> 60) as u8 & 3, delta) {
            Outcome::Written => written += 1,
            Outcome::Dropped => break,
            Outcome::SampledOut | Outcome::Rejected => {}
        }
        call += 1;
    }
    if let Some(seconds) = hold {
        println!("full");
        std::thread::sleep(Duration::from_secs(seconds));
    }
    ring.close()?;
    println!("wrote {written} records to {path} ({call} calls)");
    Ok(())
}
