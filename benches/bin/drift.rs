//! How far the nanotime `record` stamps drifts from CLOCK_MONOTONIC (mapped to UNIX time by
//! the same anchor the header stores) over a long run: the TSC clock's drift, measured from
//! outside the library through the records themselves.
//!
//! `cargo run --release -p ringlat-benches --bin drift [-- --seconds 600]`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use ringlat::Ring;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec that lives across the call.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn header_u64(file: &std::fs::File, offset: usize) -> u64 {
    let mut bytes = [0u8; 8];
    file.read_exact_at(&mut bytes, offset as u64).unwrap();
    u64::from_le_bytes(bytes)
}

fn main() {
    let mut seconds = 60u64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next().and_then(|v| v.parse().ok())) {
            ("--seconds", Some(n)) => seconds = n,
            _ => {
                eprintln!("usage: drift [--seconds N]");
                std::process::exit(1);
            }
        }
    }
    let (dir, note) = ringlat_benches::live_ring_dir();
    if let Some(note) = note {
        println!("note: {note}");
    }
    let temp = tempfile::tempdir_in(dir).unwrap();
    let path = temp.path().join("drift.ring");
    let ring = Ring::builder(&path)
        .capacity(64)
        .kind(0, "op")
        .create()
        .unwrap();
    let header = std::fs::File::open(&path).unwrap();
    let anchor_unix = header_u64(&header, ringlat_format::ANCHOR_UNIX_NS);
    let anchor_mono = header_u64(&header, ringlat_format::ANCHOR_MONO_NS);
    let clock = if ringlat_read::RingFile::open(&path).unwrap().tsc_clock() {
        "TSC"
    } else {
        "CLOCK_MONOTONIC (vDSO)"
    };
    let mut drainer = ringlat_read::Drainer::open(&path).unwrap();
    let began = Instant::now();
    let (mut worst, mut samples, mut skipped) = (0i64, 0u64, 0u64);
    let mut last_report = Instant::now();
    while began.elapsed() < Duration::from_secs(seconds) {
        let before = monotonic_ns();
        ring.record(0, samples, 0, Duration::ZERO);
        let after = monotonic_ns();
        let mut stamped = 0;
        drainer
            .drain(1, |d| {
                stamped = d.record.nanotime();
                Ok::<(), ()>(())
            })
            .unwrap();
        if after - before > 20_000 {
            skipped += 1; // descheduled between the reads: the bracket says nothing
        } else {
            let low = anchor_unix + (before - anchor_mono);
            let high = anchor_unix + (after - anchor_mono);
            let off = if stamped < low {
                stamped as i64 - low as i64
            } else if stamped > high {
                stamped as i64 - high as i64
            } else {
                0
            };
            if off.abs() > worst.abs() {
                worst = off;
            }
            samples += 1;
        }
        if last_report.elapsed() >= Duration::from_secs(60) {
            println!(
                "{:>5} s: worst offset so far {worst} ns over {samples} samples",
                began.elapsed().as_secs()
            );
            last_report = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    println!(
        "clock {clock}: over {seconds} s, {samples} samples ({skipped} skipped, descheduled), \
         worst offset of a record's nanotime from CLOCK_MONOTONIC + anchor: {worst} ns"
    );
}
