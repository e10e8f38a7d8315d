//! The soak: two producer threads and a drainer push more than 2^33 positions (several laps of
//! the 32-bit position space) through a real ring file, with exact reconciliation.
//!
//! `ringlat-soak PATH POSITIONS [START_POSITION] [STALL_EVERY]`: the whole stack (the
//! `ringlat` handle over a mapped file, `ringlat_read::Drainer`, header counters).
//! `ringlat-soak --core POSITIONS [START_POSITION] [STALL_EVERY]`: the lock-free core alone
//! (`ringlat_ring::Ring` over heap storage, `Consumer`), about three times cheaper per position,
//! for the runs past 2^33 positions.
//!
//! * Producer `p` records kind `p` with trace ids `(p << 56) | sequence`; status and latency
//!   derive from the trace id, so a torn record is detected.
//! * The drainer (`ringlat_read::Drainer`, what `ringcat drain` uses) unblocks stuck slots after
//!   50 ms. With `STALL_EVERY` > 0, producer 0 parks every STALL_EVERY-th call between reserve
//!   and commit for 200 ms (the test hook): the drainer must unblock it, and its late commit
//!   must lose (the call reports `Dropped`).
//! * Checks, exactly: per producer, drained trace ids strictly increase (no duplicate, no
//!   reordering), their count and sum equal those of the calls that reported `Written` (no
//!   loss); the header's counters reconcile (calls = written + sampled out + dropped +
//!   rejected, header written = drained); drained + abandoned = positions, and the final tail
//!   agrees with that count modulo 2^32.
//!
//! Exit 0 and one summary line on success; a line starting with `FAIL` and exit 1 otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ringlat::Outcome;
use ringlat_format::KindCounter;
use ringlat_read::Drainer;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const PRODUCERS: u64 = 2;
const UNBLOCK_AFTER: Duration = Duration::from_millis(50);
const PARK_FOR: Duration = Duration::from_millis(200);

#[derive(Debug, Default, Clone, Copy)]
struct Produced {
    calls: u64,
    written: u64,
    written_sum: u64,
    dropped: u64,
    parked: u64,
    parked_lost: u64,
}

#[derive(Debug, Default, Clone, Copy)]
struct Drained {
    count: u64,
    sum: u64,
    last: Option<u64>,
}

fn status_of(trace: u64) -> u8 {
    (trace ^ (trace >> 13)) as u8
}

fn delta_of(trace: u64) -> Duration {
    Duration::from_nanos(trace.wrapping_mul(0x9E37_79B9) % 1_000_000)
}

fn fail(message: String) -> ExitCode {
    println!("FAIL {message}");
    ExitCode::from(1)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).is_some_and(|a| a == "--core") {
        return core_soak(&args[2..]);
    }
    if !(3..=5).contains(&args.len()) {
        eprintln!("usage: ringlat-soak PATH POSITIONS [START_POSITION] [STALL_EVERY]");
        return ExitCode::from(2);
    }
    let path = std::path::PathBuf::from(&args[1]);
    let target: u64 = args[2].parse().expect("POSITIONS");
    let start: u32 = args
        .get(3)
        .map_or(u32::MAX - 1_000_000, |s| s.parse().expect("START"));
    let stall_every: u64 = args.get(4).map_or(0, |s| s.parse().expect("STALL_EVERY"));
    let _ = std::fs::remove_file(&path);
    let mut builder = ringlat::Ring::builder(&path)
        .capacity(1 << 16)
        .start_position(start);
    for producer in 0..PRODUCERS {
        builder = builder.kind(producer as u8, &format!("producer{producer}"));
    }
    let ring = builder.create().expect("create the ring");
    let mut drainer = Drainer::open(&path).expect("open the drainer");
    drainer.set_unblock_after(Some(UNBLOCK_AFTER));
    let stop = Arc::new(AtomicBool::new(false));
    let began = Instant::now();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|producer| {
            let ring = ring.clone();
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut produced = Produced::default();
                let mut sequence = 0u64;
                // Relaxed: a stop request; exactness comes from the counts, not from timing.
                while !stop.load(Ordering::Relaxed) {
                    let trace = (producer << 56) | sequence;
                    let parks = producer == 0
                        && stall_every > 0
                        && sequence % stall_every == stall_every - 1;
                    let outcome = if parks {
                        produced.parked += 1;
                        ring.record_parked(
                            producer as u8,
                            trace,
                            status_of(trace),
                            delta_of(trace),
                            |_| std::thread::sleep(PARK_FOR),
                        )
                    } else {
                        ring.record(producer as u8, trace, status_of(trace), delta_of(trace))
                    };
                    produced.calls += 1;
                    match outcome {
                        Outcome::Written => {
                            produced.written += 1;
                            produced.written_sum = produced.written_sum.wrapping_add(trace);
                        }
                        Outcome::Dropped => {
                            produced.dropped += 1;
                            produced.parked_lost += u64::from(parks);
                            // Full or breaker open: let the drainer catch up.
                            std::thread::yield_now();
                        }
                        other => panic!("unexpected outcome {other:?}"),
                    }
                    sequence += 1;
                }
                produced
            })
        })
        .collect();

    let mut drained = [Drained::default(); PRODUCERS as usize];
    let mut abandoned = 0u64;
    let mut bad: Option<String> = None;
    let mut check = |record: ringlat_read::Decoded| {
        let trace = record.record.trace_id();
        let producer = trace >> 56;
        let ok = producer < PRODUCERS
            && u64::from(record.kind) == producer
            && record.record.status() == status_of(trace);
        if !ok {
            bad.get_or_insert(format!("torn or foreign record {record:?}"));
            return Ok::<(), ()>(());
        }
        let state = &mut drained[producer as usize];
        if state.last.is_some_and(|last| trace <= last) {
            bad.get_or_insert(format!(
                "producer {producer}: {trace:#x} after {:?} (duplicate or reordered)",
                state.last
            ));
        }
        state.last = Some(trace);
        state.count += 1;
        state.sum = state.sum.wrapping_add(trace);
        Ok(())
    };
    let mut passed = 0u64;
    let mut last_report = Instant::now();
    while passed < target {
        let stats = drainer
            .drain(1 << 16, &mut check)
            .expect("infallible handler");
        passed += (stats.taken + stats.abandoned) as u64;
        abandoned += stats.abandoned as u64;
        if stats.taken + stats.abandoned == 0 {
            std::thread::yield_now();
        }
        if last_report.elapsed() > Duration::from_secs(30) {
            eprintln!(
                "soak: {passed} positions ({:.1} M/s)",
                passed as f64 / began.elapsed().as_secs_f64() / 1e6
            );
            last_report = Instant::now();
        }
    }
    // Relaxed: see the producers' loop.
    stop.store(true, Ordering::Relaxed);
    let produced: Vec<Produced> = producers.into_iter().map(|p| p.join().unwrap()).collect();
    ring.close().expect("close the ring");
    // The writer closed: nothing is in flight; drain the rest.
    loop {
        let stats = drainer
            .drain(1 << 16, &mut check)
            .expect("infallible handler");
        passed += (stats.taken + stats.abandoned) as u64;
        abandoned += stats.abandoned as u64;
        let (head, tail) = drainer.file().positions();
        if head == tail && stats.taken + stats.abandoned == 0 {
            break;
        }
    }
    let elapsed = began.elapsed().as_secs_f64();
    if let Some(message) = bad {
        return fail(message);
    }
    let (_, tail) = drainer.file().positions();
    let counters = drainer.file().counters();
    let header_abandoned = counters.abandoned;
    let total = |f: fn(&Produced) -> u64| produced.iter().map(f).sum::<u64>();
    let drained_total: u64 = drained.iter().map(|d| d.count).sum();
    for (producer, (made, got)) in produced.iter().zip(&drained).enumerate() {
        if made.written != got.count || made.written_sum != got.sum {
            return fail(format!(
                "producer {producer}: {} written (sum {:#x}) but {} drained (sum {:#x})",
                made.written, made.written_sum, got.count, got.sum
            ));
        }
    }
    let checks = [
        (
            "calls (header) == calls (producers)",
            counters.calls(),
            total(|p| p.calls),
        ),
        (
            "written + dropped (header) == calls",
            counters.get(KindCounter::Written)
                + counters.get(KindCounter::DroppedFull)
                + counters.get(KindCounter::DroppedBreaker),
            total(|p| p.calls),
        ),
        (
            "written (header) == drained",
            counters.get(KindCounter::Written),
            drained_total,
        ),
        (
            "dropped (header) == dropped (producers)",
            counters.get(KindCounter::DroppedFull) + counters.get(KindCounter::DroppedBreaker),
            total(|p| p.dropped),
        ),
        (
            "abandoned (header) == abandoned (drainer)",
            header_abandoned,
            abandoned,
        ),
        (
            "drained + abandoned == positions",
            drained_total + abandoned,
            passed,
        ),
        (
            "positions mod 2^32 == tail - start",
            passed & 0xFFFF_FFFF,
            u64::from(tail.wrapping_sub(start)),
        ),
        (
            "parked calls that lost == parked calls",
            total(|p| p.parked_lost),
            total(|p| p.parked),
        ),
    ];
    for (name, left, right) in checks {
        if left != right {
            return fail(format!("{name}: {left} != {right}"));
        }
    }
    if abandoned < total(|p| p.parked_lost) {
        return fail(format!(
            "abandoned {abandoned} < parked and lost {}",
            total(|p| p.parked_lost)
        ));
    }
    println!(
        "soak ok: {passed} positions ({:.2} x 2^32 wraps) from start {start} in {elapsed:.1} s ({:.1} M/s); drained {drained_total}, abandoned {abandoned} (parked {}), dropped {}; exact reconciliation",
        passed as f64 / 4_294_967_296.0,
        passed as f64 / elapsed / 1e6,
        total(|p| p.parked),
        total(|p| p.dropped),
    );
    let _ = std::fs::remove_file(&path);
    ExitCode::SUCCESS
}

/// The core soak: the same producers, parking and checks over `ringlat_ring` directly.
fn core_soak(args: &[String]) -> ExitCode {
    use ringlat_ring::{Consumer, HeapStorage, PushError, PushStage, Ring};
    if args.is_empty() || args.len() > 3 {
        eprintln!("usage: ringlat-soak --core POSITIONS [START_POSITION] [STALL_EVERY]");
        return ExitCode::from(2);
    }
    let target: u64 = args[0].parse().expect("POSITIONS");
    let start: u32 = args
        .get(1)
        .map_or(u32::MAX - 1_000_000, |s| s.parse().expect("START"));
    let stall_every: u64 = args.get(2).map_or(0, |s| s.parse().expect("STALL_EVERY"));
    let ring = Arc::new(Ring::new(HeapStorage::new(1 << 16)).expect("ring"));
    ring.set_start_position(start);
    let stop = Arc::new(AtomicBool::new(false));
    let began = Instant::now();
    let record_of = |trace: u64| {
        ringlat_format::Record::new(trace, trace.rotate_left(17), status_of(trace), trace as i32)
    };
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|producer| {
            let ring = Arc::clone(&ring);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut produced = Produced::default();
                let mut sequence = 0u64;
                // Relaxed: a stop request; exactness comes from the counts, not from timing.
                while !stop.load(Ordering::Relaxed) {
                    let trace = (producer << 56) | sequence;
                    let parks = producer == 0
                        && stall_every > 0
                        && sequence % stall_every == stall_every - 1;
                    let result =
                        ring.push_hooked(producer as u8, 0, &record_of(trace), |stage, _| {
                            if parks && stage == PushStage::Written {
                                std::thread::sleep(PARK_FOR);
                            }
                        });
                    match result {
                        Err(PushError::Full) => {
                            std::thread::yield_now();
                            continue; // nothing reserved: retry the same record
                        }
                        Ok(_) => {
                            produced.written += 1;
                            produced.written_sum = produced.written_sum.wrapping_add(trace);
                        }
                        Err(_) => {
                            produced.dropped += 1;
                            produced.parked_lost += u64::from(parks);
                        }
                    }
                    produced.calls += 1;
                    produced.parked += u64::from(parks);
                    sequence += 1;
                }
                produced
            })
        })
        .collect();
    let mut consumer = Consumer::attach(&*ring).expect("consumer");
    consumer.set_unblock_after(Some(UNBLOCK_AFTER));
    let mut drained = [Drained::default(); PRODUCERS as usize];
    let mut bad: Option<String> = None;
    let mut passed = 0u64;
    let mut abandoned = 0u64;
    let mut last_report = Instant::now();
    let mut step = |consumer: &mut Consumer, dead: bool| {
        let stats = consumer.consume(&ring, 1 << 16, &mut || dead, |slot| {
            let trace = slot.record.trace_id();
            let producer = trace >> 56;
            if producer >= PRODUCERS
                || u64::from(slot.meta.kind) != producer
                || slot.record != record_of(trace)
            {
                bad.get_or_insert(format!("torn or foreign record {slot:?}"));
                return;
            }
            let state = &mut drained[producer as usize];
            if state.last.is_some_and(|last| trace <= last) {
                bad.get_or_insert(format!(
                    "producer {producer}: {trace:#x} after {:?}",
                    state.last
                ));
            }
            state.last = Some(trace);
            state.count += 1;
            state.sum = state.sum.wrapping_add(trace);
        });
        (stats.taken as u64, stats.abandoned as u64)
    };
    while passed < target {
        let (taken, skipped) = step(&mut consumer, false);
        passed += taken + skipped;
        abandoned += skipped;
        if taken + skipped == 0 {
            std::thread::yield_now();
        }
        if last_report.elapsed() > Duration::from_secs(30) {
            eprintln!(
                "soak --core: {passed} positions ({:.1} M/s)",
                passed as f64 / began.elapsed().as_secs_f64() / 1e6
            );
            last_report = Instant::now();
        }
    }
    // Relaxed: see the producers' loop.
    stop.store(true, Ordering::Relaxed);
    let produced: Vec<Produced> = producers.into_iter().map(|p| p.join().unwrap()).collect();
    // Every producer returned: nothing is in flight.
    loop {
        let (taken, skipped) = step(&mut consumer, true);
        passed += taken + skipped;
        abandoned += skipped;
        if taken + skipped == 0 {
            break;
        }
    }
    let elapsed = began.elapsed().as_secs_f64();
    if let Some(message) = bad {
        return fail(message);
    }
    let (head, tail) = ring.positions();
    let total = |f: fn(&Produced) -> u64| produced.iter().map(f).sum::<u64>();
    let drained_total: u64 = drained.iter().map(|d| d.count).sum();
    for (producer, (made, got)) in produced.iter().zip(&drained).enumerate() {
        if made.written != got.count || made.written_sum != got.sum {
            return fail(format!(
                "producer {producer}: {} written (sum {:#x}) but {} drained (sum {:#x})",
                made.written, made.written_sum, got.count, got.sum
            ));
        }
    }
    let checks = [
        ("head == tail at the end", u64::from(head), u64::from(tail)),
        (
            "calls == written + lost",
            total(|p| p.calls),
            total(|p| p.written) + total(|p| p.dropped),
        ),
        ("drained == written", drained_total, total(|p| p.written)),
        ("abandoned == lost", abandoned, total(|p| p.dropped)),
        (
            "drained + abandoned == positions",
            drained_total + abandoned,
            passed,
        ),
        (
            "positions mod 2^32 == tail - start",
            passed & 0xFFFF_FFFF,
            u64::from(tail.wrapping_sub(start)),
        ),
        (
            "parked calls that lost == parked calls",
            total(|p| p.parked_lost),
            total(|p| p.parked),
        ),
    ];
    for (name, left, right) in checks {
        if left != right {
            return fail(format!("{name}: {left} != {right}"));
        }
    }
    println!(
        "soak --core ok: {passed} positions ({:.2} x 2^32) from start {start} in {elapsed:.1} s ({:.1} M/s); drained {drained_total}, abandoned {abandoned} = lost (parked {}); exact reconciliation",
        passed as f64 / 4_294_967_296.0,
        passed as f64 / elapsed / 1e6,
        total(|p| p.parked),
    );
    ExitCode::SUCCESS
}
