//! The ring under real threads: several laps across the 2^32 wrap, MPSC conservation, and a
//! peeker racing producers and the consumer.
#![cfg(not(loom))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{record_of, tagged, value_of};
use ringlat_ring::{Consumer, HeapStorage, InFlight, Peeker, Ring, SingleProducer};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;

fn ring_near_wrap(capacity: u32) -> Arc<Ring<HeapStorage>> {
    let ring = Ring::new(HeapStorage::new(capacity)).unwrap();
    ring.set_start_position(u32::MAX - 2 * capacity + 3);
    Arc::new(ring)
}

#[test]
fn single_producer_laps_across_the_wrap_in_order() {
    let ring = ring_near_wrap(8);
    let total = if cfg!(miri) { 8 * 4 } else { 8 * 50 };
    let producer_ring = Arc::clone(&ring);
    let producer = thread::spawn(move || {
        let mut producer = SingleProducer::attach(&*producer_ring);
        let mut sequence = 0;
        while sequence < total {
            if producer
                .push(&producer_ring, 1, 0, &record_of(sequence))
                .is_ok()
            {
                sequence += 1;
            } else {
                thread::yield_now();
            }
        }
    });
    let mut consumer = Consumer::attach(&*ring).unwrap();
    let mut expected = 0;
    while expected < total {
        let stats = consumer.consume(&ring, 3, &mut || false, |slot| {
            assert_eq!(
                value_of(&slot.record),
                Some(expected),
                "torn or out of order"
            );
            assert_eq!(slot.meta.kind, 1);
            expected += 1;
        });
        if stats.taken == 0 {
            thread::yield_now();
        }
    }
    producer.join().unwrap();
    let (head, tail) = ring.positions();
    assert_eq!(head, tail);
    assert!(head < 1000, "positions wrapped past 2^32: {head}");
}

#[test]
fn multi_producer_conserves_every_record_and_per_producer_order() {
    const PRODUCERS: u64 = 4;
    const PER_PRODUCER: u64 = if cfg!(miri) { 100 } else { 20_000 };
    let ring = ring_near_wrap(64);
    let dropped = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|producer| {
            let (ring, dropped, done) =
                (Arc::clone(&ring), Arc::clone(&dropped), Arc::clone(&done));
            thread::spawn(move || {
                for sequence in 0..PER_PRODUCER {
                    if ring
                        .push(producer as u8, 0, &record_of(tagged(producer, sequence)))
                        .is_err()
                    {
                        dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                done.fetch_add(1, Ordering::Release);
            })
        })
        .collect();
    let mut consumer = Consumer::attach(&*ring).unwrap();
    // Conservation only: no unblocking of a producer this shared machine deschedules.
    consumer.set_unblock_after(None);
    let mut last = vec![None::<u64>; PRODUCERS as usize];
    let mut consumed = 0u64;
    loop {
        let finished = done.load(Ordering::Acquire) == PRODUCERS;
        let stats = consumer.consume(&ring, 16, &mut || false, |slot| {
            let value = value_of(&slot.record).expect("torn record");
            let (producer, sequence) = (value >> 32, value & 0xFFFF_FFFF);
            assert_eq!(u64::from(slot.meta.kind), producer);
            if let Some(previous) = last[producer as usize] {
                assert!(sequence > previous, "producer {producer} out of order");
            }
            last[producer as usize] = Some(sequence);
            consumed += 1;
        });
        assert_eq!(stats.abandoned, 0);
        if finished && stats.taken == 0 && !stats.blocked {
            let (head, tail) = ring.positions();
            if head == tail {
                break;
            }
        }
        if stats.taken == 0 {
            thread::yield_now();
        }
    }
    for producer in producers {
        producer.join().unwrap();
    }
    assert_eq!(
        consumed + dropped.load(Ordering::Relaxed),
        PRODUCERS * PER_PRODUCER
    );
    assert!(consumed > 0);
}

#[test]
fn peeker_never_returns_a_torn_or_recycled_record() {
    let ring = ring_near_wrap(4);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (ring, stop) = (Arc::clone(&ring), Arc::clone(&stop));
        thread::spawn(move || {
            let mut producer = SingleProducer::attach(&*ring);
            let mut consumer = Consumer::attach(&*ring).unwrap();
            let mut value = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if producer.push(&ring, 0, 0, &record_of(value)).is_ok() {
                    value += 1;
                } else {
                    consumer.consume(&ring, 2, &mut || false, |_| {});
                }
            }
        })
    };
    let mut peeker = Peeker::at_head(&*ring);
    let mut returned = 0u64;
    let mut missed = 0u64;
    let mut last = None;
    // At least this many peeks; more while nothing came back yet (the writer thread may not
    // have been scheduled at all on a busy 2-core machine), up to a generous deadline.
    let rounds = if cfg!(miri) { 300 } else { 200_000 };
    let began = std::time::Instant::now();
    let mut round = 0;
    while round < rounds || (returned == 0 && began.elapsed() < std::time::Duration::from_secs(30))
    {
        round += 1;
        let stats = peeker.peek(&ring, 4, InFlight::Wait, &mut || false, |slot| {
            let value = value_of(&slot.record).expect("peek returned a torn record");
            assert_eq!(
                slot.position.wrapping_sub(value as u32),
                ring_start(),
                "record from another lap"
            );
            if let Some(previous) = last {
                assert!(value > previous);
            }
            last = Some(value);
        });
        returned += stats.returned;
        missed += stats.missed;
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert!(returned > 0, "peeker saw nothing (missed {missed})");
}

/// Position of value 0 in `ring_near_wrap(4)`.
fn ring_start() -> u32 {
    u32::MAX - 2 * 4 + 3
}
