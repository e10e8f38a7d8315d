//! A real writer process for the cross-process tests.
//!
//! `ringlat-test-writer PATH THREADS PER_THREAD CAPACITY START_POSITION [sampled|parked]`
//! Each thread records PER_THREAD records (0 = until killed) with trace ids, statuses and
//! latencies derived from (thread, sequence), then the ring is closed.
//!
//! With `sampled`, thread `t` records kind `t` at rate 1, 0.1 or 0.5 (`t % 3`), calls of
//! 900 ms or more are always kept, and every 1000th call goes to the unconfigured kind 200
//! (rejected).
//!
//! With `parked`, thread 0 holds every 100th of its slots reserved and not committed for
//! 20 ms (`record_parked`): a reader finds a slot in flight at many instants.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ringlat_tests::{delta_of, status_of, trace_of};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 6 && args.len() != 7 {
        eprintln!(
            "usage: ringlat-test-writer PATH THREADS PER_THREAD CAPACITY START_POSITION \
             [sampled|parked]"
        );
        return ExitCode::from(1);
    }
    let threads: u64 = args[2].parse().unwrap();
    let per_thread: u64 = args[3].parse().unwrap();
    let capacity: u64 = args[4].parse().unwrap();
    let start: u32 = args[5].parse().unwrap();
    let mut builder = ringlat::Ring::builder(&args[1])
        .capacity(capacity)
        .start_position(start);
    let sampled = args.get(6).is_some_and(|mode| mode == "sampled");
    let parked = args.get(6).is_some_and(|mode| mode == "parked");
    for thread in 0..threads {
        builder = builder.kind(thread as u8, &format!("thread{thread}"));
        if sampled {
            builder = builder.rate(thread as u8, [1.0, 0.1, 0.5][thread as usize % 3]);
        }
    }
    if sampled {
        builder = builder.keep_if_slower_than(std::time::Duration::from_millis(900));
    }
    let ring = match builder.create() {
        Ok(ring) => ring,
        Err(error) => {
            eprintln!("writer: {error}");
            return ExitCode::from(2);
        }
    };
    std::thread::scope(|scope| {
        for thread in 0..threads {
            let ring = ring.clone();
            scope.spawn(move || {
                let mut sequence = 0;
                while per_thread == 0 || sequence < per_thread {
                    let trace = trace_of(thread, sequence);
                    let kind = if sampled && sequence % 1000 == 999 {
                        200
                    } else {
                        thread as u8
                    };
                    if parked && thread == 0 && sequence % 100 == 99 {
                        ring.record_parked(kind, trace, status_of(trace), delta_of(trace), |_| {
                            std::thread::sleep(std::time::Duration::from_millis(20));
                        });
                    } else {
                        ring.record(kind, trace, status_of(trace), delta_of(trace));
                    }
                    sequence += 1;
                }
            });
        }
    });
    ExitCode::SUCCESS
}
