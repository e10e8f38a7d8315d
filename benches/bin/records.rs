//! Writes N records on one path, for instruction counting (scripts/instructions.sh runs it
//! under callgrind, collecting only inside `record_loop`).
//!
//! `records MODE N` with MODE one of `mp` (multi producer, written), `mp-at` (`record_at`),
//! `sp` (single producer, written), `sampled` (sampled out, random), `breaker` (breaker open).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use ringlat::{Outcome, Ring};
use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Every call of the measured loop; callgrind's `--toggle-collect` names this function.
#[inline(never)]
fn record_loop(n: u64, mut call: impl FnMut(u64) -> Outcome) -> u64 {
    let mut hits = 0;
    for trace in 1..=n {
        hits += u64::from(black_box(call(trace)) == Outcome::Written);
    }
    hits
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(mode), Some(n)) = (args.next(), args.next().and_then(|n| n.parse::<u64>().ok()))
    else {
        eprintln!("usage: records mp|mp-at|sp|sampled|breaker N");
        std::process::exit(1);
    };
    let (dir, note) = ringlat_benches::live_ring_dir();
    if let Some(note) = note {
        eprintln!("note: {note}");
    }
    let temp = tempfile::tempdir_in(dir).unwrap();
    // Twice N slots: a written run never comes near the breaker's low-water mark.
    let capacity = (2 * n).next_power_of_two().max(64);
    let builder = Ring::builder(temp.path().join("records.ring"))
        .capacity(capacity)
        .kind(0, "op")
        .max_skew(Duration::from_secs(3600));
    let delta = |t: u64| Duration::from_nanos(1_000 + (t & 1023));
    let written = match mode.as_str() {
        "mp" => {
            let ring = builder.create().unwrap();
            record_loop(n, |t| ring.record(0, t, 0, delta(t)))
        }
        "mp-at" => {
            let ring = builder.create().unwrap();
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64;
            record_loop(n, |t| ring.record_at(0, t, 0, delta(t), now))
        }
        "sp" => {
            let ring = builder.create_single_producer().unwrap();
            record_loop(n, |t| ring.record(0, t, 0, delta(t)))
        }
        "sampled" => {
            let ring = builder.rate(0, 1e-9).create().unwrap();
            record_loop(n, |t| ring.record(0, t, 0, delta(t)))
        }
        "breaker" => {
            let ring = Ring::builder(temp.path().join("tripped.ring"))
                .capacity(64)
                .kind(0, "op")
                .tick(Duration::from_secs(3600))
                .create()
                .unwrap();
            while !ring.breaker_open() {
                ring.record(0, 0, 0, delta(0));
            }
            record_loop(n, |t| ring.record(0, t, 0, delta(t)))
        }
        _ => {
            eprintln!("records: unknown mode {mode}");
            std::process::exit(1);
        }
    };
    println!("{mode}: {n} calls, {written} written");
}
