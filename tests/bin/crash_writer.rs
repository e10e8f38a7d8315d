//! The crash harness's writer: every field of every record derives from its trace id, so a
//! reader in another process can tell a whole record from a torn one, and no record is ever
//! given up (a dropped call is retried), so every gap is a loss.
//!
//! `ringlat-crash-writer PATH THREADS CAPACITY START_POSITION PER_MS [PER_THREAD]`
//!
//! Thread `t` records trace ids `(t << 40) | sequence` with kind `kind_of`, status
//! `status_of` and latency `micros_of` of the trace, at most PER_MS records per millisecond
//! (0 = unthrottled), until PER_THREAD records (0 = unbounded) or until `PATH.stop` exists;
//! then the ring is closed cleanly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ringlat_tests::{delta_of, kind_of, status_of, trace_of};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 6 && args.len() != 7 {
        eprintln!(
            "usage: ringlat-crash-writer PATH THREADS CAPACITY START_POSITION PER_MS [PER_THREAD]"
        );
        return ExitCode::from(1);
    }
    let path = std::path::PathBuf::from(&args[1]);
    let threads: u64 = args[2].parse().unwrap();
    let capacity: u64 = args[3].parse().unwrap();
    let start: u32 = args[4].parse().unwrap();
    let per_ms: u64 = args[5].parse().unwrap();
    let per_thread: u64 = args.get(6).map_or(0, |n| n.parse().unwrap());
    let ring = match ringlat::Ring::builder(&path)
        .capacity(capacity)
        .start_position(start)
        .kind(0, "k0")
        .kind(1, "k1")
        .kind(2, "k2")
        .tick(Duration::from_millis(5))
        .create()
    {
        Ok(ring) => ring,
        Err(error) => {
            eprintln!("crash-writer: {error}");
            return ExitCode::from(2);
        }
    };
    let stop_file = path.with_extension("stop");
    let stop = AtomicBool::new(false);
    let finished = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for thread in 0..threads {
            let ring = ring.clone();
            let stop = &stop;
            let finished = &finished;
            scope.spawn(move || {
                let began = Instant::now();
                let mut sequence = 0;
                // Acquire: pairs with the Release store of the watcher below.
                while (per_thread == 0 || sequence < per_thread) && !stop.load(Ordering::Acquire) {
                    let trace = trace_of(thread, sequence);
                    while ring.record(kind_of(trace), trace, status_of(trace), delta_of(trace))
                        != ringlat::Outcome::Written
                    {
                        // Acquire: as above. A record given up when stopping was never
                        // written: it is the thread's last, so no gap.
                        if stop.load(Ordering::Acquire) {
                            break;
                        }
                        std::thread::sleep(Duration::from_micros(50));
                    }
                    sequence += 1;
                    if per_ms > 0 && sequence % per_ms == 0 {
                        let due = Duration::from_millis(sequence / per_ms);
                        if let Some(ahead) = due.checked_sub(began.elapsed()) {
                            std::thread::sleep(ahead);
                        }
                    }
                }
                // Relaxed: only counts, read by the watcher to know when to leave.
                finished.fetch_add(1, Ordering::Relaxed);
            });
        }
        scope.spawn(|| {
            // Release: pairs with the producers' Acquire loads.
            while !stop.load(Ordering::Acquire) && finished.load(Ordering::Relaxed) < threads {
                if stop_file.exists() {
                    stop.store(true, Ordering::Release);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        });
    });
    match ring.close() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("crash-writer: closing: {error}");
            ExitCode::from(2)
        }
    }
}
