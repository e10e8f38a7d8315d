//! File creation rules and the writer handles, seen from the outside.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::zombie_processes,
    missing_docs
)]

use ringlat::{Error, Outcome, Ring};
use ringlat_format::{GlobalCounter, KindCounter};
use ringlat_read::{Drainer, RingFile};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

#[test]
fn creation_is_exclusive_private_and_never_follows_links() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.ring");
    let first = Ring::builder(&path)
        .capacity(16)
        .kind(0, "op")
        .create()
        .unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(matches!(
        Ring::builder(&path).kind(0, "op").create(),
        Err(Error::AlreadyExists { .. })
    ));
    match Ring::builder(&path).kind(0, "op").replace(true).create() {
        Err(Error::WriterActive { pid, .. }) => assert_eq!(pid, std::process::id()),
        other => panic!("a live writer's file was replaced: {other:?}"),
    }
    assert_eq!(RingFile::open(&path).unwrap().geometry().capacity, 16);
    assert_eq!(entries(dir.path()), ["a.ring"], "no temporary file is left");
    drop(first);
    Ring::builder(&path)
        .replace(true)
        .capacity(32)
        .kind(0, "op")
        .create()
        .unwrap();
    assert_eq!(RingFile::open(&path).unwrap().geometry().capacity, 32);

    let target = dir.path().join("target");
    std::fs::write(&target, b"precious").unwrap();
    let link = dir.path().join("link.ring");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    assert!(matches!(
        Ring::builder(&link).kind(0, "op").create(),
        Err(Error::AlreadyExists { .. })
    ));
    assert_eq!(
        std::fs::read(&target).unwrap(),
        b"precious",
        "the link target is untouched"
    );
}

/// The names in `dir`, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn kind_names_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.ring");
    for bad in [
        "\x1b[31mred",
        "a\nb",
        "tab\there",
        "c1\u{9b}31m",
        "del\u{7f}",
        "a,b",
    ] {
        assert!(
            matches!(
                Ring::builder(&path).kind(3, bad).create(),
                Err(Error::BadKind { kind: 3, .. })
            ),
            "{bad:?} was accepted"
        );
    }
    assert!(matches!(
        Ring::builder(&path)
            .kind(0, "same")
            .kind(1, "same")
            .create(),
        Err(Error::BadKind { kind: 1, .. })
    ));
    assert!(matches!(Ring::builder(&path).create(), Err(Error::NoKinds)));
    assert!(matches!(
        Ring::builder(&path).create_single_producer(),
        Err(Error::NoKinds)
    ));
    assert!(
        entries(dir.path()).is_empty(),
        "a refused builder leaves nothing"
    );
    Ring::builder(&path)
        .kind(0, "order:new")
        .kind(1, "réponse ok")
        .create()
        .unwrap();
}

#[test]
fn bad_settings_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.ring");
    assert!(matches!(
        Ring::builder(&path).capacity(100).create(),
        Err(Error::Format(_))
    ));
    assert!(matches!(
        Ring::builder(&path).capacity(0).create(),
        Err(Error::Format(_))
    ));
    assert!(matches!(
        Ring::builder(&path).kind(1, "a").kind(1, "b").create(),
        Err(Error::BadKind { kind: 1, .. })
    ));
    assert!(matches!(
        Ring::builder(&path).kind(1, &"x".repeat(33)).create(),
        Err(Error::BadKind { .. })
    ));
    assert!(!path.exists(), "a refused builder leaves no file behind");
}

#[test]
fn outcomes_land_in_the_header_counters() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.ring");
    let ring = Ring::builder(&path)
        .capacity(4)
        .kind(0, "market")
        .delta_unit(ringlat::DeltaUnit::Nanos)
        .create()
        .unwrap();
    let mut outcomes = Vec::new();
    for trace in 0..6 {
        outcomes.push(ring.record(0, trace, 0, Duration::from_nanos(trace)));
    }
    outcomes.push(ring.record(5, 9, 0, Duration::ZERO));
    // Capacity 4: the breaker trips when free slots fall below 1 (the 4th write) and closes
    // only once more than 2 are free again.
    assert!(ring.breaker_open());
    let mut drainer = Drainer::open(&path).unwrap();
    drainer.drain(1, |_| Ok::<(), ()>(())).unwrap();
    outcomes.push(ring.record(0, 10, 0, Duration::ZERO)); // 1 free: still open (hysteresis)
    drainer.drain(2, |_| Ok::<(), ()>(())).unwrap();
    let began = std::time::Instant::now();
    while ring.breaker_open() {
        assert!(
            began.elapsed() < Duration::from_secs(10),
            "breaker never closed"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    outcomes.push(ring.record(0, 11, 0, Duration::from_secs(10))); // 10 s in ns > i32::MAX
    assert_eq!(&outcomes[..4], &[Outcome::Written; 4]);
    assert_eq!(&outcomes[4..6], &[Outcome::Dropped; 2]);
    assert_eq!(outcomes[6], Outcome::Rejected);
    assert_eq!(outcomes[7], Outcome::Dropped);
    assert_eq!(outcomes[8], Outcome::Written);
    ring.flush().unwrap();
    let file = RingFile::open(&path).unwrap();
    let counters = file.counters();
    assert_eq!(counters.get(KindCounter::Written), 5);
    assert_eq!(counters.get(KindCounter::DroppedBreaker), 3);
    assert_eq!(counters.get(KindCounter::DroppedFull), 0);
    assert_eq!(counters.get(KindCounter::Rejected), 1);
    assert_eq!(counters.get(KindCounter::Saturated), 1);
    assert_eq!(counters.calls(), 9);
    assert_eq!(file.global(GlobalCounter::BreakerTrips), 1);
    let (records, _) = file.snapshot();
    assert_eq!(records.last().unwrap().record.delta(), i32::MAX);
}

#[test]
fn single_producer_laps_across_the_wrap_with_a_concurrent_drainer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wrap.ring");
    let start = u32::MAX - 100;
    let ring = Ring::builder(&path)
        .capacity(64)
        .kind(1, "limit")
        .start_position(start)
        .create_single_producer()
        .unwrap();
    let reader_path = path.clone();
    let reader = std::thread::spawn(move || {
        let mut drainer = Drainer::open(&reader_path).unwrap();
        let mut expected = 0u64;
        while expected < 64 * 40 {
            drainer
                .drain(16, |d| {
                    assert_eq!(
                        d.record.trace_id(),
                        expected,
                        "lost, duplicated or reordered"
                    );
                    expected += 1;
                    Ok::<(), ()>(())
                })
                .unwrap();
        }
    });
    let mut trace = 0;
    while trace < 64 * 40 {
        if ring.record(1, trace, 0, Duration::from_micros(trace)) == Outcome::Written {
            trace += 1;
        } else {
            std::thread::yield_now();
        }
    }
    reader.join().unwrap();
    let (head, tail) = RingFile::open(&path).unwrap().positions();
    assert_eq!(head, tail);
    assert_eq!(tail, start.wrapping_add(64 * 40), "40 laps, across 2^32");
}

#[test]
fn the_header_says_which_clock_stamps_the_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clock.ring");
    let ring = Ring::builder(&path).kind(0, "op").create().unwrap();
    let flags = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("flags"))
        .map(str::to_owned)
        .unwrap_or_default();
    let invariant = cfg!(target_arch = "x86_64")
        && flags.split_whitespace().any(|f| f == "constant_tsc")
        && flags.split_whitespace().any(|f| f == "nonstop_tsc")
        && std::env::var_os("RINGLAT_CLOCK").is_none_or(|v| v != "vdso");
    assert_eq!(RingFile::open(&path).unwrap().tsc_clock(), invariant);
    // Whatever the clock, a record's time is close to the realtime clock.
    ring.record(0, 1, 0, Duration::from_micros(1));
    ring.flush().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let (records, _) = RingFile::open(&path).unwrap().snapshot();
    let stamped = records[0].record.nanotime();
    assert!(now.abs_diff(stamped) < 1_000_000_000, "{stamped} vs {now}");
}
