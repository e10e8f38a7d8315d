//! A producer parked between reserve and commit (through `push_hooked`, the test hook) never
//! stops the consumer: it is unblocked after the timeout, its late commit loses cleanly, and
//! the counts reconcile. Also the smaller misuse checks of the core.
#![cfg(not(loom))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{record_of, value_of};
use ringlat_format::{Record, SlotMeta, SlotState};
use ringlat_ring::{
    Consumer, HeapStorage, InFlight, Peeker, PushError, PushStage, Ring, RingError, SingleProducer,
    Storage,
};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

fn ring_near_wrap(capacity: u32) -> Arc<Ring<HeapStorage>> {
    let ring = Ring::new(HeapStorage::new(capacity)).unwrap();
    ring.set_start_position(u32::MAX - 1);
    Arc::new(ring)
}

/// Pushes `value` on another thread, parked at `stage` until `go` is sent; `parked` is
/// sent the position when it parks. Returns the push's result on join.
fn parked_push(
    ring: &Arc<Ring<HeapStorage>>,
    value: u64,
    stage: PushStage,
) -> (
    mpsc::Receiver<u32>,
    mpsc::Sender<()>,
    thread::JoinHandle<Result<u32, PushError>>,
) {
    let (parked_tx, parked_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let ring = Arc::clone(ring);
    let handle = thread::spawn(move || {
        ring.push_hooked(1, 0, &record_of(value), |at, position| {
            if at == stage {
                parked_tx.send(position).unwrap();
                go_rx.recv().unwrap();
            }
        })
        .map(|(position, _)| position)
    });
    (parked_rx, go_tx, handle)
}

fn stamp(ring: &Ring<HeapStorage>, position: u32) -> SlotMeta {
    let index = position & (ring.capacity() - 1);
    SlotMeta::from_word(
        ring.storage()
            .meta(index)
            .load(ringlat_ring::Ordering::Acquire),
    )
}

/// Drains until `positions` positions were passed, returning (values taken, abandoned).
fn drain_positions(
    ring: &Ring<HeapStorage>,
    consumer: &mut Consumer,
    positions: usize,
) -> (Vec<u64>, usize) {
    let mut got = Vec::new();
    let mut abandoned = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.len() + abandoned < positions {
        assert!(
            Instant::now() < deadline,
            "the consumer never got past the stuck slot"
        );
        let stats = consumer.consume(ring, usize::MAX, &mut || false, |slot| {
            got.push(value_of(&slot.record).expect("torn record"));
        });
        abandoned += stats.abandoned;
        if stats.taken + stats.abandoned == 0 {
            thread::sleep(Duration::from_millis(5));
        }
    }
    (got, abandoned)
}

#[test]
fn a_producer_stuck_after_its_writes_is_unblocked_and_its_late_commit_loses() {
    let ring = ring_near_wrap(4);
    let start = ring.positions().1;
    let (parked, go, stuck) = parked_push(&ring, 100, PushStage::Written);
    let stuck_at = parked.recv().unwrap();
    assert_eq!(stuck_at, start);
    for value in 1..=3 {
        ring.push(0, 0, &record_of(value)).unwrap();
    }
    let mut consumer = Consumer::attach(&*ring).unwrap();
    consumer.set_unblock_after(Some(Duration::from_millis(100)));
    let first = consumer.consume(&ring, usize::MAX, &mut || false, |_| {});
    assert!(
        first.blocked && first.taken == 0,
        "stops at the stuck slot first: {first:?}"
    );
    assert!(consumer.waiting().is_some_and(|(p, _)| p == stuck_at));
    let began = Instant::now();
    let (got, abandoned) = drain_positions(&ring, &mut consumer, 4);
    assert!(
        began.elapsed() >= Duration::from_millis(90),
        "unblocked before the timeout"
    );
    assert_eq!((got, abandoned), (vec![1, 2, 3], 1));
    assert_eq!(stamp(&ring, stuck_at).state(), Some(SlotState::Abandoned));
    // The slot is still held: a producer of the next lap gives its position up, visibly.
    let next_lap = ring.push(0, 0, &record_of(4));
    assert_eq!(
        next_lap,
        Err(PushError::Lost {
            position: stuck_at.wrapping_add(4)
        })
    );
    // The late commit loses, releases the slot, and the next lap can use it again.
    go.send(()).unwrap();
    assert_eq!(
        stuck.join().unwrap(),
        Err(PushError::Lost { position: stuck_at })
    );
    assert_eq!(stamp(&ring, stuck_at).state(), Some(SlotState::Skipped));
    for value in 5..=7 {
        ring.push(0, 0, &record_of(value)).unwrap();
    }
    let (got, abandoned) = drain_positions(&ring, &mut consumer, 4);
    assert_eq!(
        (got, abandoned),
        (vec![5, 6, 7], 1),
        "the given-up position is passed and counted"
    );
    let reused = ring.push(0, 0, &record_of(8)).unwrap();
    assert_eq!(
        reused & 3,
        stuck_at & 3,
        "the released slot carries records again"
    );
    let (got, _) = drain_positions(&ring, &mut consumer, 1);
    assert_eq!(
        got,
        [8],
        "and its record is not torn by the late producer's bytes"
    );
}

#[test]
fn a_producer_stuck_before_its_claim_is_skipped_and_writes_nothing() {
    let ring = ring_near_wrap(2);
    let (parked, go, stuck) = parked_push(&ring, 100, PushStage::Reserved);
    let stuck_at = parked.recv().unwrap();
    ring.push(0, 0, &record_of(1)).unwrap();
    let mut consumer = Consumer::attach(&*ring).unwrap();
    consumer.set_unblock_after(Some(Duration::from_millis(20)));
    let (got, abandoned) = drain_positions(&ring, &mut consumer, 2);
    assert_eq!((got, abandoned), (vec![1], 1));
    assert_eq!(stamp(&ring, stuck_at), SlotMeta::skipped(stuck_at));
    // The slot was free: the next lap uses it at once.
    ring.push(0, 0, &record_of(2)).unwrap();
    go.send(()).unwrap();
    assert_eq!(
        stuck.join().unwrap(),
        Err(PushError::Lost { position: stuck_at })
    );
    let (got, abandoned) = drain_positions(&ring, &mut consumer, 1);
    assert_eq!(
        (got, abandoned),
        (vec![2], 0),
        "the late producer wrote nothing"
    );
}

#[test]
fn many_producers_with_one_stuck_reconcile() {
    let ring = ring_near_wrap(64);
    let (parked, go, stuck) = parked_push(&ring, u64::MAX >> 1, PushStage::Written);
    parked.recv().unwrap();
    let per_producer = if cfg!(miri) { 50 } else { 20_000 };
    let start = Arc::new(Barrier::new(3));
    let producers: Vec<_> = (0..2u64)
        .map(|producer| {
            let ring = Arc::clone(&ring);
            let start = Arc::clone(&start);
            thread::spawn(move || {
                start.wait();
                let (mut written, mut lost, mut full) = (0u64, 0u64, 0u64);
                let mut sequence = 0;
                while written + lost < per_producer {
                    match ring.push(0, 0, &record_of((producer << 32) | sequence)) {
                        Ok(_) => written += 1,
                        Err(PushError::Lost { .. }) => lost += 1,
                        Err(_) => {
                            full += 1;
                            thread::yield_now();
                            continue;
                        }
                    }
                    sequence += 1;
                }
                (written, lost, full)
            })
        })
        .collect();
    let mut consumer = Consumer::attach(&*ring).unwrap();
    consumer.set_unblock_after(Some(Duration::from_millis(10)));
    start.wait();
    let mut taken = 0u64;
    let mut abandoned = 0u64;
    let mut released = false;
    while producers.iter().any(|p| !p.is_finished()) || !released {
        let stats = consumer.consume(&ring, 1024, &mut || false, |slot| {
            value_of(&slot.record).expect("torn record");
            taken += 1;
        });
        abandoned += stats.abandoned as u64;
        if !released && abandoned > 0 && taken >= per_producer {
            go.send(()).unwrap();
            released = true;
        }
        if stats.taken == 0 {
            thread::yield_now();
        }
    }
    let late = stuck.join().unwrap();
    let outcomes: Vec<_> = producers.into_iter().map(|p| p.join().unwrap()).collect();
    let (_, tail) = ring.positions();
    loop {
        let stats = consumer.consume(&ring, usize::MAX, &mut || true, |slot| {
            value_of(&slot.record).expect("torn record");
            taken += 1;
        });
        abandoned += stats.abandoned as u64;
        if consumer.position() == tail {
            break;
        }
    }
    let written: u64 = outcomes.iter().map(|o| o.0).sum::<u64>() + u64::from(late.is_ok());
    let lost: u64 = outcomes.iter().map(|o| o.1).sum::<u64>() + u64::from(late.is_err());
    let positions = u64::from(tail.wrapping_sub(u32::MAX - 1));
    assert_eq!(
        late,
        Err(PushError::Lost {
            position: u32::MAX - 1
        })
    );
    assert_eq!(taken, written, "every committed record drained once");
    assert_eq!(
        abandoned, lost,
        "every lost record is an abandoned position"
    );
    assert_eq!(
        taken + abandoned,
        positions,
        "drained + abandoned == positions"
    );
}

#[test]
fn overwrite_give_ups_are_visible_to_readers() {
    let ring = Arc::new(Ring::new(HeapStorage::new_overwrite(2)).unwrap());
    let (parked_tx, parked_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let stalled_ring = Arc::clone(&ring);
    let stalled = thread::spawn(move || {
        stalled_ring
            .push_overwriting_hooked(0, 0, &record_of(100), |at, _| {
                if at == PushStage::Written {
                    parked_tx.send(()).unwrap();
                    go_rx.recv().unwrap();
                }
            })
            .is_ok()
    });
    parked_rx.recv().unwrap();
    assert!(ring.push_overwriting(0, 0, &record_of(1)).is_ok());
    let busy = ring.push_overwriting(0, 0, &record_of(2)).unwrap_err();
    assert_eq!(busy.position, 2);
    assert!(ring.push_overwriting(0, 0, &record_of(3)).is_ok());
    let mut peeker = Peeker::at_head(&*ring);
    let mut seen = Vec::new();
    let stats = peeker.peek(&ring, 8, InFlight::Wait, &mut || false, |slot| {
        seen.push(value_of(&slot.record).unwrap());
    });
    assert!(
        !stats.waiting,
        "a given-up position is not in flight: {stats:?}"
    );
    assert_eq!((seen, stats.given_up), (vec![3], 1));
    go_tx.send(()).unwrap();
    assert!(
        !stalled.join().unwrap(),
        "lapped while stalled: its record is given up too"
    );
    assert_eq!(stamp(&ring, 2), SlotMeta::skipped(2));
    assert!(
        ring.push_overwriting(0, 0, &record_of(4)).is_ok(),
        "released slot is used again"
    );
}

#[test]
fn two_single_producers_fail_instead_of_spinning() {
    let ring = Ring::new(HeapStorage::new(8)).unwrap();
    let mut first = SingleProducer::attach(&ring);
    let mut second = SingleProducer::attach(&ring); // e.g. the copy a fork left
    first.push(&ring, 0, 0, &Record::new(1, 0, 0, 0)).unwrap();
    assert_eq!(
        second.push(&ring, 0, 0, &Record::new(2, 0, 0, 0)),
        Err(PushError::NotSingle),
        "the slot already holds the other producer's record"
    );
    assert_eq!(
        second.push(&ring, 0, 0, &Record::new(3, 0, 0, 0)),
        Err(PushError::NotSingle),
        "and stays refused"
    );
    // A multi-producer push into a single producer's ring: the tail moved under it.
    let mut third = SingleProducer::attach(&ring);
    ring.reserve().unwrap();
    assert_eq!(
        third.push(&ring, 0, 0, &Record::new(4, 0, 0, 0)),
        Err(PushError::NotSingle)
    );
    assert_eq!(ring.positions(), (0, 2));
    let mut got = Vec::new();
    Consumer::attach(&ring)
        .unwrap()
        .consume(&ring, 1, &mut || false, |slot| {
            got.push(slot.record.trace_id())
        });
    assert_eq!(got, [1]);
}

/// A storage that only claims a capacity (the ring refuses it before touching anything).
#[derive(Debug)]
struct Claims(u32, ringlat_ring::AtomicU64);

impl Storage for Claims {
    fn capacity(&self) -> u32 {
        self.0
    }
    fn ring_word(&self) -> &ringlat_ring::AtomicU64 {
        &self.1
    }
    fn meta(&self, _: u32) -> &ringlat_ring::AtomicU64 {
        &self.1
    }
    fn store_record(&self, _: u32, _: &Record) {}
    fn load_record(&self, _: u32) -> Record {
        Record::new(0, 0, 0, 0)
    }
}

#[test]
fn capacity_is_capped_at_two_to_the_thirty() {
    let word = || ringlat_ring::AtomicU64::new(0);
    assert!(Ring::new(Claims(1 << 30, word())).is_ok());
    assert_eq!(
        Ring::new(Claims(1 << 31, word())).unwrap_err(),
        RingError::BadCapacity(1 << 31)
    );
}

#[test]
fn a_consumer_is_refused_on_an_overwrite_ring() {
    let ring = Ring::new(HeapStorage::new_overwrite(4)).unwrap();
    assert_eq!(
        Consumer::attach(&ring).unwrap_err(),
        RingError::OverwriteRing
    );
}
