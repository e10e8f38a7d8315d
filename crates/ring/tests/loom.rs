//! Loom models of the ring: run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 CARGO_TARGET_DIR=target-loom cargo test -p ringlat-ring --test loom --release`.
//!
//! Every model starts the ring just below the 2^32 wrap, uses records whose fields all derive
//! from one value (so a torn read is detectable), and checks conservation: every record a
//! producer managed to push is consumed exactly once, in order per producer.
#![cfg(loom)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{record_of, tagged, value_of};
use loom::sync::Arc;
use loom::thread;
use ringlat_ring::{
    Consumer, HeapStorage, InFlight, Missing, Peeker, PushError, Ring, SingleProducer,
};

/// Interleavings explored by the running model, printed so a reader can see loom did work.
static ITERATIONS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Runs a model at `LOOM_MAX_PREEMPTIONS` (default 2).
fn model(test: impl Fn() + Sync + Send + 'static) {
    model_capped(usize::MAX, test);
}

/// [`model`] with the preemption bound capped at `max` (the 3-thread overwrite model takes
/// 15 s at bound 2 and minutes at 3).
fn model_capped(max: usize, test: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(builder.preemption_bound.unwrap_or(2).min(max));
    let began = std::time::Instant::now();
    builder.check(move || {
        ITERATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        test()
    });
    eprintln!(
        "loom explored {} interleavings in {:.1} s (preemption bound {:?})",
        ITERATIONS.swap(0, std::sync::atomic::Ordering::Relaxed),
        began.elapsed().as_secs_f64(),
        builder.preemption_bound
    );
}

/// A consumer that never unblocks on a timeout (no wall clock in a model): only the models
/// of unblocking ask for it, with a zero timeout.
fn consumer_of(ring: &Ring<HeapStorage>) -> Consumer {
    let mut consumer = Consumer::attach(ring).unwrap();
    consumer.set_unblock_after(None);
    consumer
}

fn ring_near_wrap(capacity: u32) -> Arc<Ring<HeapStorage>> {
    let ring = Ring::new(HeapStorage::new(capacity)).unwrap();
    ring.set_start_position(u32::MAX - 1);
    Arc::new(ring)
}

/// A ring of 2 slots near the wrap, full: the records of values 0 and 1 at its first two
/// positions, pushed by the single producer returned with it and its start position.
fn full_ring_of_two() -> (Arc<Ring<HeapStorage>>, u32, SingleProducer) {
    let ring = ring_near_wrap(2);
    let start = ring.positions().0;
    let mut producer = SingleProducer::attach(&*ring);
    for value in 0..2 {
        producer.push(&ring, 0, 0, &record_of(value)).unwrap();
    }
    (ring, start, producer)
}

/// Drains whatever is left once every producer has finished (nothing can be in flight).
fn drain_rest(ring: &Ring<HeapStorage>, consumer: &mut Consumer, got: &mut Vec<u64>) {
    let stats = consumer.consume(ring, usize::MAX, &mut || false, |slot| {
        got.push(value_of(&slot.record).expect("torn record"));
    });
    assert!(
        !stats.blocked,
        "a finished producer left a slot uncommitted"
    );
    let (head, tail) = ring.positions();
    assert_eq!(head, tail);
}

#[test]
fn spsc_crosses_the_wrap_in_order() {
    model(|| {
        let ring = ring_near_wrap(2);
        let consumer_ring = Arc::clone(&ring);
        let consumer = thread::spawn(move || {
            let mut consumer = consumer_of(&consumer_ring);
            let mut got = Vec::new();
            for _ in 0..2 {
                consumer.consume(&consumer_ring, 1, &mut || false, |slot| {
                    got.push(value_of(&slot.record).expect("torn record"));
                });
            }
            (consumer, got)
        });
        let mut producer = SingleProducer::attach(&*ring);
        let mut pushed = Vec::new();
        for value in 0..3 {
            if producer.push(&ring, 0, 0, &record_of(value)).is_ok() {
                pushed.push(value);
            }
        }
        let (mut consumer, mut got) = consumer.join().unwrap();
        drain_rest(&ring, &mut consumer, &mut got);
        assert_eq!(got, pushed);
        assert!(pushed.len() >= 2);
    });
}

#[test]
fn mpsc_two_producers_one_consumer_conserve_records() {
    model(|| {
        let ring = ring_near_wrap(2);
        let producers: Vec<_> = (0..2u64)
            .map(|producer| {
                let ring = Arc::clone(&ring);
                thread::spawn(move || {
                    let mut pushed = Vec::new();
                    for sequence in 0..2 {
                        let value = tagged(producer, sequence);
                        if ring.push(producer as u8, 0, &record_of(value)).is_ok() {
                            pushed.push(value);
                        }
                    }
                    pushed
                })
            })
            .collect();
        let consumer_ring = Arc::clone(&ring);
        let consumer = thread::spawn(move || {
            let mut consumer = consumer_of(&consumer_ring);
            let mut got = Vec::new();
            consumer.consume(&consumer_ring, 2, &mut || false, |slot| {
                let value = value_of(&slot.record).expect("torn record");
                assert_eq!(
                    u64::from(slot.meta.kind),
                    value >> 32,
                    "meta of another record"
                );
                got.push(value);
            });
            (consumer, got)
        });
        let pushed: Vec<Vec<u64>> = producers.into_iter().map(|p| p.join().unwrap()).collect();
        let (mut consumer, mut got) = consumer.join().unwrap();
        drain_rest(&ring, &mut consumer, &mut got);
        for (producer, pushed) in pushed.iter().enumerate() {
            let seen: Vec<u64> = got
                .iter()
                .copied()
                .filter(|v| v >> 32 == producer as u64)
                .collect();
            assert_eq!(
                &seen, pushed,
                "producer {producer}: lost, duplicated or reordered"
            );
        }
        assert_eq!(got.len(), pushed.iter().map(Vec::len).sum::<usize>());
    });
}

#[test]
fn peek_races_producer_and_consumer_without_tearing() {
    model(|| {
        let ring = ring_near_wrap(2);
        let start = ring.positions().0;
        let consumer_ring = Arc::clone(&ring);
        let consumer = thread::spawn(move || {
            let mut consumer = consumer_of(&consumer_ring);
            let mut got = Vec::new();
            consumer.consume(&consumer_ring, 2, &mut || false, |slot| {
                got.push(value_of(&slot.record).expect("torn record"));
            });
            (consumer, got)
        });
        let peeker_ring = Arc::clone(&ring);
        let peeker = thread::spawn(move || {
            let mut peeker = Peeker::at_head(&*peeker_ring);
            let mut peeked = Vec::new();
            peeker.peek(&peeker_ring, 3, InFlight::Wait, &mut || false, |slot| {
                let value = value_of(&slot.record).expect("peek returned a torn record");
                assert_eq!(
                    slot.position,
                    start.wrapping_add(value as u32),
                    "record of another lap"
                );
                peeked.push(value);
            });
            peeked
        });
        let mut producer = SingleProducer::attach(&*ring);
        let mut pushed = Vec::new();
        for value in 0..3 {
            if producer.push(&ring, 0, 0, &record_of(value)).is_ok() {
                pushed.push(value);
            }
        }
        let peeked = peeker.join().unwrap();
        let (mut consumer, mut got) = consumer.join().unwrap();
        drain_rest(&ring, &mut consumer, &mut got);
        assert_eq!(got, pushed);
        assert!(peeked.windows(2).all(|w| w[0] < w[1]));
        assert!(peeked.iter().all(|v| pushed.contains(v)));
    });
}

#[test]
fn mpsc_peek_never_sees_an_in_flight_slot_as_data() {
    model(|| {
        let ring = ring_near_wrap(4);
        let start = ring.positions().0;
        let peeker_ring = Arc::clone(&ring);
        let peeker = thread::spawn(move || {
            let mut peeker = Peeker::at_head(&*peeker_ring);
            let mut peeked = Vec::new();
            peeker.peek(&peeker_ring, 4, InFlight::Skip, &mut || false, |slot| {
                peeked.push((slot.position, value_of(&slot.record).expect("torn record")));
            });
            peeked
        });
        let other_ring = Arc::clone(&ring);
        let other = thread::spawn(move || {
            let value = tagged(1, 0);
            (other_ring.push(1, 0, &record_of(value)).unwrap(), value)
        });
        let value = tagged(0, 0);
        let mine = (ring.push(0, 0, &record_of(value)).unwrap(), value);
        let theirs = other.join().unwrap();
        for entry in peeker.join().unwrap() {
            assert!(
                entry == mine || entry == theirs,
                "peek returned {entry:?}, never pushed there"
            );
            assert!(entry.0.wrapping_sub(start) < 2);
        }
    });
}

#[test]
fn peek_detects_a_slot_recycled_while_it_reads() {
    model(|| {
        // Full ring; the main thread frees the oldest slot and writes the next lap into it
        // while a peeker thread reads that very slot.
        let (ring, start, mut producer) = full_ring_of_two();
        let peeker_ring = Arc::clone(&ring);
        let peeker = thread::spawn(move || {
            let mut peeker = Peeker::at_head(&*peeker_ring);
            let mut returned = 0;
            peeker.peek(&peeker_ring, 2, InFlight::Wait, &mut || false, |slot| {
                let value = value_of(&slot.record).expect("peek returned a torn record");
                assert_eq!(
                    slot.position,
                    start.wrapping_add(value as u32),
                    "record of another lap"
                );
                returned += 1;
            });
            returned
        });
        let mut consumer = consumer_of(&ring);
        consumer.consume(&ring, 1, &mut || false, |_| {});
        producer.push(&ring, 0, 0, &record_of(2)).unwrap();
        peeker.join().unwrap();
    });
}

/// Overwrite mode (flight recorder): two producers (two records and one) lap a 2-slot ring
/// while a peeker reads.
/// No torn record is ever returned; at the end, each position of the last lap holds its own
/// record exactly when its producer reported success, and the overwrites are counted.
#[test]
fn overwrite_two_producers_never_tear_and_keep_the_newest() {
    use ringlat_format::{SlotMeta, SlotState};
    use ringlat_ring::Storage;
    model_capped(2, || {
        let ring = Arc::new(Ring::new(HeapStorage::new_overwrite(2)).unwrap());
        ring.set_start_position(u32::MAX - 1);
        let (start, _) = ring.positions();
        let peek_ring = Arc::clone(&ring);
        let peeker = thread::spawn(move || {
            let mut peeker = Peeker::at_head(&*peek_ring);
            let mut seen = 0;
            peeker.peek(&peek_ring, 3, InFlight::Skip, &mut || false, |slot| {
                value_of(&slot.record).expect("torn record");
                seen += 1;
            });
            seen
        });
        let producers: Vec<_> = (0..2u64)
            .map(|producer| {
                let ring = Arc::clone(&ring);
                thread::spawn(move || {
                    (0..2 - producer)
                        .map(|sequence| {
                            let value = tagged(producer, sequence);
                            match ring.push_overwriting(0, 0, &record_of(value)) {
                                Ok(done) => (done.position, value, true, done.overwrote),
                                Err(busy) => (busy.position, value, false, busy.overwrote),
                            }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let outcomes: Vec<_> = producers
            .into_iter()
            .flat_map(|p| p.join().unwrap())
            .collect();
        assert!(peeker.join().unwrap() <= 3);
        let (head, tail) = ring.positions();
        assert_eq!(tail, start.wrapping_add(3));
        assert_eq!(tail.wrapping_sub(head), 2, "head moved with tail when full");
        let overwrites = outcomes.iter().filter(|o| o.3).count();
        assert_eq!(
            overwrites, 1,
            "each reservation past capacity overwrote one"
        );
        for offset in 0..2u32 {
            let position = head.wrapping_add(offset);
            let &(_, value, ok, _) = outcomes
                .iter()
                .find(|o| o.0 == position)
                .expect("every position was reserved once");
            let index = position & 1;
            let stamp = SlotMeta::from_word(
                ring.storage()
                    .meta(index)
                    .load(ringlat_ring::Ordering::Acquire),
            );
            let holds_it =
                stamp.state() == Some(SlotState::Committed) && stamp.position == position;
            assert_eq!(holds_it, ok, "slot of {position} vs its producer's outcome");
            if ok {
                assert_eq!(ring.storage().load_record(index), record_of(value));
            }
        }
        // Every producer has finished (the writer is alive but idle): a follower must not
        // wait at a given-up position, it counts it as missed (issue 8 item 5: fails when a
        // give-up leaves the slot's word unchanged).
        let mut follower = Peeker::at_head(&*ring);
        let stats = follower.peek(&ring, 8, InFlight::Wait, &mut || false, |_| {});
        assert!(
            !stats.waiting,
            "a follower waits forever at a given-up position"
        );
        assert_eq!(stats.returned + stats.missed, 2);
        let given_up = outcomes.iter().filter(|o| !o.2).count() as u64;
        assert!(stats.given_up <= given_up);
    });
}

/// Overwrite mode: producer A pushes two records, then B pushes one. If B's reservation
/// comes after A's second one, A's commit of the first record (same slot) came before it,
/// so B must never give up: the "busy" decision is confirmed by a read-modify-write, never
/// taken from a plain load that may be stale (fails with a give-up on a relaxed load).
#[test]
fn overwrite_never_gives_up_on_a_stale_read() {
    model(|| {
        let ring = Arc::new(Ring::new(HeapStorage::new_overwrite(2)).unwrap());
        ring.set_start_position(u32::MAX - 1);
        let (start, _) = ring.positions();
        let first_ring = Arc::clone(&ring);
        let first = thread::spawn(move || {
            for sequence in 0..2 {
                // May be given up legitimately: B may hold the slot when A laps into it.
                let _ = first_ring.push_overwriting(0, 0, &record_of(tagged(0, sequence)));
            }
        });
        let outcome = ring.push_overwriting(1, 0, &record_of(tagged(1, 0)));
        first.join().unwrap();
        match outcome {
            Ok(done) => assert!(done.position.wrapping_sub(start) < 3),
            Err(busy) => assert_ne!(
                busy.position,
                start.wrapping_add(2),
                "gave up a slot whose previous record was committed before it reserved"
            ),
        }
    });
}

/// A producer stuck between reserve and commit, a consumer that unblocks at once (timeout
/// zero), and a second producer that laps into the same slot. Exactly one of the commit and
/// the unblock wins: every record whose push succeeded is consumed once and untorn, every lost
/// one is one abandoned position, and taken + abandoned == positions (fails with a commit
/// that is a plain store, or a claim that is not a CAS).
#[test]
fn unblock_races_the_commit_and_the_late_commit_loses_cleanly() {
    model(|| {
        let ring = ring_near_wrap(2);
        let (start, _) = ring.positions();
        let stuck_ring = Arc::clone(&ring);
        let stuck = thread::spawn(move || {
            let value = tagged(0, 0);
            (stuck_ring.push(0, 0, &record_of(value)), value)
        });
        let consumer_ring = Arc::clone(&ring);
        let consumer = thread::spawn(move || {
            let mut consumer = Consumer::attach(&*consumer_ring).unwrap();
            consumer.set_unblock_after(Some(std::time::Duration::ZERO));
            let mut got = Vec::new();
            let stats = consumer.consume(&consumer_ring, 2, &mut || false, |slot| {
                got.push(value_of(&slot.record).expect("torn record"));
            });
            (consumer, got, stats.abandoned)
        });
        let mut mine = Vec::new();
        for sequence in 0..2 {
            let value = tagged(1, sequence);
            mine.push((ring.push(1, 0, &record_of(value)), value));
        }
        let mut outcomes = vec![stuck.join().unwrap()];
        outcomes.extend(mine);
        let (mut consumer, mut got, mut abandoned) = consumer.join().unwrap();
        let stats = consumer.consume(&ring, usize::MAX, &mut || true, |slot| {
            got.push(value_of(&slot.record).expect("torn record"));
        });
        abandoned += stats.abandoned;
        let (head, tail) = ring.positions();
        assert_eq!(head, tail);
        let mut written: Vec<u64> = outcomes
            .iter()
            .filter(|(result, _)| result.is_ok())
            .map(|(_, value)| *value)
            .collect();
        let lost = outcomes
            .iter()
            .filter(|(result, _)| matches!(result, Err(PushError::Lost { .. })))
            .count();
        written.sort_unstable();
        got.sort_unstable();
        assert_eq!(got, written, "committed records consumed exactly once");
        assert_eq!(
            abandoned, lost,
            "each lost record is one abandoned position"
        );
        assert_eq!(
            got.len() + abandoned,
            tail.wrapping_sub(start) as usize,
            "taken + abandoned == positions"
        );
    });
}

/// What a reader in place (ringlat-read's `InPlace` over a live ring) does, on the ring's own
/// API: fix the positions head..tail and read them a group at a time (`for_each_committed`:
/// stamps, fence, records, fence, the ring word, and the stamps again once head has passed
/// the group). A position the first pass finds in flight or given
/// up is a hole that every later pass passes over (its slot is read here, but not looked at);
/// any other slot not holding its record was rewritten. Each pass returns the positions and
/// values read and how many slots it found rewritten.
fn passes_in_place(ring: &Ring<HeapStorage>, passes: usize) -> Vec<(Vec<(u32, u64)>, usize)> {
    let (head, tail) = ring.positions();
    let mut holes: Vec<u32> = Vec::new();
    (0..passes)
        .map(|pass| {
            let (mut values, mut rewritten, mut found) = (Vec::new(), 0, Vec::new());
            ring.for_each_committed(head, tail.wrapping_sub(head), |offset, slot| {
                if holes.contains(&offset) {
                    return;
                }
                match slot {
                    Ok(slot) => {
                        values.push((slot.position, value_of(&slot.record).expect("torn record")))
                    }
                    Err(Missing::InFlight | Missing::GivenUp) if pass == 0 => found.push(offset),
                    Err(_) => rewritten += 1,
                }
            });
            holes.extend(found);
            (values, rewritten)
        })
        .collect()
}

/// Two producers push while a reader makes its view and reads it twice in place, with no
/// consumer: a slot in flight when the first pass read it is passed over by both passes
/// (though committed in between), no slot is found rewritten, and the passes agree, untorn.
#[test]
fn passes_in_place_over_a_live_ring_agree() {
    model(|| {
        let ring = ring_near_wrap(4);
        ring.push(0, 0, &record_of(tagged(0, 0))).unwrap();
        let reader_ring = Arc::clone(&ring);
        let reader = thread::spawn(move || passes_in_place(&reader_ring, 2));
        let other_ring = Arc::clone(&ring);
        let other = thread::spawn(move || {
            other_ring.push(1, 0, &record_of(tagged(1, 0))).unwrap();
        });
        ring.push(0, 0, &record_of(tagged(0, 1))).unwrap();
        other.join().unwrap();
        let passes = reader.join().unwrap();
        assert_eq!(passes[0], passes[1], "the passes disagree");
        assert_eq!(passes[0].1, 0, "a slot rewritten with no consumer");
        assert!(passes[0].0.iter().any(|(_, value)| *value == tagged(0, 0)));
    });
}

/// A consumer comes after the view was made and frees a slot that a producer writes again:
/// a second pass that does not find what the first found has found a rewritten slot (the
/// reader then fails, or reads a copy), and no record read is torn or another lap's.
#[test]
fn passes_in_place_see_a_slot_rewritten_under_them() {
    model(|| {
        let (ring, start, mut producer) = full_ring_of_two();
        let reader_ring = Arc::clone(&ring);
        let reader = thread::spawn(move || passes_in_place(&reader_ring, 2));
        let mut consumer = consumer_of(&ring);
        consumer.consume(&ring, 1, &mut || false, |_| {});
        producer.push(&ring, 0, 0, &record_of(2)).unwrap();
        let passes = reader.join().unwrap();
        for (values, _) in &passes {
            for (position, value) in values {
                assert_eq!(
                    *position,
                    start.wrapping_add(*value as u32),
                    "another lap's"
                );
            }
        }
        if passes[0].0 != passes[1].0 {
            assert!(
                passes[1].1 > passes[0].1,
                "passes differ unseen: {passes:?}"
            );
        }
    });
}
