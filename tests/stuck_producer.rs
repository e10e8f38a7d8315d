//! A producer stuck between reserve and commit, end to end through the library and the reader:
//! the header shows it (what `ringcat stat` prints), the drainer unblocks it after its timeout, the late commit
//! loses (counted as dropped), counters reconcile. And a closed ring with an uncommitted slot
//! (issue 9 item 2): `cat` and `drain` skip and count it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use ringlat::Outcome;
use ringlat_format::{KindCounter, SlotMeta};
use ringlat_read::{Drainer, RingFile};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const US: Duration = Duration::from_micros(3);

#[test]
fn a_parked_producer_is_shown_unblocked_and_loses_its_late_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stuck.ring");
    let ring = ringlat::Ring::builder(&path)
        .capacity(16)
        .kind(0, "op")
        .tick(Duration::from_millis(5))
        .create()
        .unwrap();
    ring.record(0, 1, 0, US);
    let (parked_tx, parked_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let stuck_ring = ring.clone();
    let stuck = std::thread::spawn(move || {
        stuck_ring.record_parked(0, 2, 0, US, |position| {
            parked_tx.send(position).unwrap();
            go_rx.recv().unwrap();
        })
    });
    let stuck_at = parked_rx.recv().unwrap();
    for trace in 3..=5 {
        assert_eq!(ring.record(0, trace, 0, US), Outcome::Written);
    }
    // The watchdog publishes the stuck position within a few ticks.
    let file = RingFile::open(&path).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let shown = loop {
        if let Some(stuck) = file.stuck_position() {
            break stuck;
        }
        assert!(
            Instant::now() < deadline,
            "stat never showed the stuck position"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(shown.position, stuck_at);
    // The drainer waits for the timeout, then unblocks it and goes on.
    let mut drainer = Drainer::open(&path).unwrap();
    drainer.set_unblock_after(Some(Duration::from_millis(100)));
    let began = Instant::now();
    let mut traces = Vec::new();
    let mut abandoned = 0;
    while traces.len() + abandoned < 5 {
        assert!(
            began.elapsed() < Duration::from_secs(10),
            "drain stopped for good"
        );
        let stats = drainer
            .drain(64, |d| {
                traces.push(d.record.trace_id());
                Ok::<(), ()>(())
            })
            .unwrap();
        abandoned += stats.abandoned;
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(began.elapsed() >= Duration::from_millis(90));
    assert_eq!((traces, abandoned), (vec![1, 3, 4, 5], 1));
    // The late commit loses cleanly.
    go_tx.send(()).unwrap();
    assert_eq!(stuck.join().unwrap(), Outcome::Dropped);
    let deadline = Instant::now() + Duration::from_secs(10);
    while file.stuck_position().is_some() {
        assert!(
            Instant::now() < deadline,
            "the stuck mark stayed after the unblock"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // The slot is free again: the ring keeps working through it.
    for trace in 6..40 {
        assert_eq!(ring.record(0, trace, 0, US), Outcome::Written);
        drainer.drain(64, |_| Ok::<(), ()>(())).unwrap();
    }
    ring.close().unwrap();
    let counters = file.counters();
    assert_eq!(counters.calls(), 39);
    assert_eq!(counters.get(KindCounter::Written), 38);
    assert_eq!(
        counters.get(KindCounter::DroppedFull),
        1,
        "the late commit is a drop"
    );
    assert_eq!(counters.abandoned, 1);
    let (head, tail) = file.positions();
    assert_eq!(head, tail);
    assert_eq!(
        u64::from(tail.wrapping_sub(file.start_position())),
        counters.get(KindCounter::Written) + counters.abandoned,
        "drained + abandoned == positions"
    );
}

/// Writes the metadata word of `position` in a closed file (as a writer that stopped between
/// reserve and commit would have left it).
fn set_word(path: &std::path::Path, position: u32, word: u64) {
    use std::io::{Seek, SeekFrom, Write};
    let file = RingFile::open(path).unwrap();
    let geometry = file.geometry();
    let offset = geometry.meta_word_offset(position & (geometry.capacity - 1));
    drop(file);
    let mut raw = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    raw.seek(SeekFrom::Start(offset)).unwrap();
    raw.write_all(&word.to_le_bytes()).unwrap();
}

#[test]
fn a_closed_ring_with_an_uncommitted_slot_is_read_past() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("closed.ring");
    let ring = ringlat::Ring::builder(&path)
        .capacity(8)
        .kind(0, "op")
        .create()
        .unwrap();
    for trace in 1..=4 {
        ring.record(0, trace, 0, US);
    }
    ring.close().unwrap();
    let start = RingFile::open(&path).unwrap().start_position();
    let second = start.wrapping_add(1);
    set_word(&path, second, SlotMeta::writing(second, 0, 0).to_word());
    // cat: the slot is abandoned, not "being written".
    let file = RingFile::open(&path).unwrap();
    let (records, stats) = file.snapshot();
    let traces: Vec<u64> = records.iter().map(|d| d.record.trace_id()).collect();
    assert_eq!(traces, [1, 3, 4]);
    assert_eq!((stats.abandoned, stats.in_flight), (1, 0));
    // drain: skips and counts it, and does not stop there.
    let mut drainer = Drainer::open(&path).unwrap();
    drainer.set_unblock_after(None); // no timeout: the closed state alone unblocks it
    let mut drained = Vec::new();
    let stats = drainer
        .drain(64, |d| {
            drained.push(d.record.trace_id());
            Ok::<(), ()>(())
        })
        .unwrap();
    assert_eq!((drained, stats.abandoned), (vec![1, 3, 4], 1));
    assert_eq!(file.counters().abandoned, 1);
    let (head, tail) = file.positions();
    assert_eq!(head, tail);
}

#[test]
fn a_version_1_file_is_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.ring");
    let ring = ringlat::Ring::builder(&path)
        .capacity(8)
        .kind(0, "op")
        .create()
        .unwrap();
    ring.record(0, 7, 0, US);
    ring.close().unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[ringlat_format::VERSION_FIELD..ringlat_format::VERSION_FIELD + 4]
        .copy_from_slice(&1u32.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let (records, _) = RingFile::open(&path).unwrap().snapshot();
    assert_eq!(
        records.len(),
        1,
        "version 1 (states 0..2 only) is a subset of version 2"
    );
}

/// The header's breaker mirror is re-stored from the breaker's flag every background tick, so
/// a mirror that disagrees (a trip racing a close) does not stay wrong (issue 9 item 5).
#[test]
fn the_breaker_mirror_is_restored_every_tick() {
    use std::io::{Seek, SeekFrom, Write};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mirror.ring");
    let ring = ringlat::Ring::builder(&path)
        .capacity(8)
        .kind(0, "op")
        .tick(Duration::from_secs(3600))
        .create()
        .unwrap();
    let file = RingFile::open(&path).unwrap();
    let mut raw = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    raw.seek(SeekFrom::Start(ringlat_format::BREAKER_STATE as u64))
        .unwrap();
    raw.write_all(&1u32.to_le_bytes()).unwrap();
    assert!(
        file.breaker().unwrap().open,
        "the planted disagreement is visible"
    );
    assert!(!ring.breaker_open());
    ring.run_background_tick().unwrap();
    assert!(
        !file.breaker().unwrap().open,
        "the tick re-stored the mirror"
    );
}
