//! Minor page faults taken by the hot path after a synchronous flush, ring on a disk
//! filesystem vs on tmpfs (issue 8, item 8).
//!
//! `msync(MS_SYNC)` writes the dirty pages back and write-protects them again; on a disk
//! filesystem the next store to each page faults into `page_mkwrite`, which may wait on the
//! filesystem journal. On tmpfs nothing is written back, so nothing faults.
//!
//! `cargo run --release -p ringlat-benches --bin faults [-- --disk DIR --tmpfs DIR --rounds N]`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use ringlat::{Outcome, Overflow, Ring};
use ringlat_benches::{filesystem_type, median, thread_minor_faults};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The records measured after each flush: one full lap of a 65,536-slot ring.
const RECORDS: u64 = 1 << 16;

struct Location {
    label: &'static str,
    dir: PathBuf,
    ring: Ring,
    _temp: tempfile::TempDir,
    after_flush: Vec<f64>,
    after_flush_ns: Vec<f64>,
    steady: Vec<f64>,
    steady_ns: Vec<f64>,
}

/// Writes RECORDS records; returns (minor faults, ns per record).
fn write_lap(ring: &Ring, trace: &mut u64) -> (f64, f64) {
    let faults = thread_minor_faults();
    let began = Instant::now();
    for _ in 0..RECORDS {
        *trace += 1;
        let outcome = ring.record(0, *trace, 0, Duration::from_nanos(*trace & 0xffff));
        debug_assert_eq!(outcome, Outcome::Written);
    }
    let ns = began.elapsed().as_nanos() as f64 / RECORDS as f64;
    ((thread_minor_faults() - faults) as f64, ns)
}

fn usage() -> ! {
    eprintln!("usage: faults [--disk DIR] [--tmpfs DIR] [--rounds N]");
    std::process::exit(1)
}

fn main() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = manifest.parent().unwrap_or(manifest);
    let mut disk = workspace.join("target");
    let mut tmpfs = PathBuf::from("/dev/shm");
    let mut rounds = 9usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--disk" => disk = value.into(),
            "--tmpfs" => tmpfs = value.into(),
            "--rounds" => rounds = value.parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    let mut locations = Vec::new();
    for (label, dir) in [("disk", disk), ("tmpfs", tmpfs)] {
        if !dir.is_dir() {
            println!("{label}: {} is not a directory, skipped", dir.display());
            continue;
        }
        let temp = tempfile::tempdir_in(&dir).unwrap();
        let ring = Ring::builder(temp.path().join("faults.ring"))
            .capacity(RECORDS)
            .kind(0, "op")
            .overflow(Overflow::Overwrite)
            // No background msync between the measured laps: only the flush under test.
            .tick(Duration::from_secs(3600))
            .create()
            .unwrap();
        locations.push(Location {
            label,
            dir,
            ring,
            _temp: temp,
            after_flush: Vec::new(),
            after_flush_ns: Vec::new(),
            steady: Vec::new(),
            steady_ns: Vec::new(),
        });
    }
    let mut trace = 0u64;
    for location in &mut locations {
        write_lap(&location.ring, &mut trace); // warm: every page written once
    }
    // Interleaved: each round measures every location, a steady lap then a lap after flush.
    for _ in 0..rounds {
        for location in &mut locations {
            let (faults, ns) = write_lap(&location.ring, &mut trace);
            location.steady.push(faults);
            location.steady_ns.push(ns);
            location.ring.flush().unwrap();
            let (faults, ns) = write_lap(&location.ring, &mut trace);
            location.after_flush.push(faults);
            location.after_flush_ns.push(ns);
        }
    }
    println!(
        "minor faults of {RECORDS} records (one lap of a {RECORDS}-slot ring, {} record pages \
         + {} stamp pages), median of {rounds} rounds, interleaved:",
        (RECORDS * 21).div_ceil(4096),
        (RECORDS * 8).div_ceil(4096)
    );
    println!(
        "{:<6} {:<10} {:>16} {:>16} {:>14} {:>14}  dir",
        "where", "fs", "faults/lap", "faults/lap", "ns/record", "ns/record"
    );
    println!(
        "{:<6} {:<10} {:>16} {:>16} {:>14} {:>14}",
        "", "", "after msync", "steady", "after msync", "steady"
    );
    let mut json = Vec::new();
    for location in &mut locations {
        let fs = filesystem_type(&location.dir);
        let row = (
            median(&mut location.after_flush),
            median(&mut location.steady),
            median(&mut location.after_flush_ns),
            median(&mut location.steady_ns),
        );
        println!(
            "{:<6} {:<10} {:>16} {:>16} {:>14.1} {:>14.1}  {}",
            location.label,
            fs,
            row.0,
            row.1,
            row.2,
            row.3,
            location.dir.display()
        );
        json.push(serde_json::json!({
            "location": location.label, "filesystem": fs, "dir": location.dir,
            "records": RECORDS, "rounds": rounds,
            "faults_after_sync_flush": row.0, "faults_steady": row.1,
            "ns_per_record_after_sync_flush": row.2, "ns_per_record_steady": row.3,
        }));
    }
    println!("{}", serde_json::Value::Array(json));
}
