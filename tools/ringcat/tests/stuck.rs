//! `ringcat stat` shows a producer stuck between reserve and commit (text, JSON, Prometheus);
//! `ringcat drain --unblock-after` skips it after the timeout and counts it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use common::ringcat;
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[test]
fn stat_shows_a_stuck_producer_and_drain_unblocks_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stuck.ring");
    let file = path.to_str().unwrap();
    let ring = ringlat::Ring::builder(&path)
        .capacity(16)
        .kind(0, "op")
        .tick(Duration::from_millis(5))
        .create()
        .unwrap();
    let us = Duration::from_micros(2);
    ring.record(0, 1, 0, us);
    let (parked_tx, parked_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let stuck_ring = ring.clone();
    let stuck = std::thread::spawn(move || {
        stuck_ring.record_parked(0, 2, 0, us, |position| {
            parked_tx.send(position).unwrap();
            go_rx.recv().unwrap();
        })
    });
    let position = parked_rx.recv().unwrap();
    ring.record(0, 3, 0, us);
    let deadline = Instant::now() + Duration::from_secs(10);
    let json = loop {
        let output = ringcat(&["stat", file, "--format", "json"]);
        assert_eq!(output.status.code(), Some(0));
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        if !json["stuck"].is_null() {
            break json;
        }
        assert!(
            Instant::now() < deadline,
            "stat never showed the stuck position"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(json["stuck"]["position"], u64::from(position));
    assert!(json["stuck"]["for_ms"].as_f64().unwrap() >= 0.0);
    let text = String::from_utf8(ringcat(&["stat", file]).stdout).unwrap();
    assert!(
        text.contains(&format!("stuck       position {position} unfinished for")),
        "{text}"
    );
    let prom = String::from_utf8(ringcat(&["stat", file, "--format", "prom"]).stdout).unwrap();
    assert!(
        prom.lines()
            .any(|l| l.starts_with("ringlat_stuck_position{")
                && l.ends_with(&format!(" {position}"))),
        "{prom}"
    );
    assert!(prom.contains("\nringlat_stuck_seconds{"), "{prom}");

    let began = Instant::now();
    let drained = ringcat(&["drain", file, "--unblock-after", "300ms"]);
    assert_eq!(drained.status.code(), Some(0));
    assert!(
        began.elapsed() >= Duration::from_millis(300),
        "unblocked before the timeout"
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(drained.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let traces: Vec<u64> = lines
        .iter()
        .map(|l| l["trace_id"].as_str().unwrap().parse::<u64>().unwrap())
        .collect();
    assert_eq!(
        traces,
        [1, 3],
        "the records around the stuck slot are drained"
    );
    let note = String::from_utf8(drained.stderr).unwrap();
    assert!(note.contains("1 slots abandoned"), "{note}");

    go_tx.send(()).unwrap();
    assert_eq!(
        stuck.join().unwrap(),
        ringlat::Outcome::Dropped,
        "the late commit lost"
    );
    ring.close().unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&ringcat(&["stat", file, "--format", "json"]).stdout).unwrap();
    assert!(json["stuck"].is_null());
}
