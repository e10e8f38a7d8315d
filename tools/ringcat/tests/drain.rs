//! `ringcat drain` and archives as users run them: exactly once across restarts, links and
//! foreign files refused, bad slots and bad headers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use common::ringcat;
use ringlat::Ring;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn ring_with(path: &Path, from: u64, to: u64) -> Ring {
    // Another test's `ringcat` child, between its fork and its exec, briefly holds a copy of
    // every descriptor of this process, the old ring's writer lock included: a replace of a ring
    // this process just dropped can see that lock for a moment. Retry for a while.
    let mut tries = 0;
    let ring = loop {
        match Ring::builder(path)
            .capacity(4096)
            .kind(0, "market")
            .replace(true)
            .create()
        {
            Err(ringlat::Error::WriterActive { .. }) if tries < 200 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            other => break other.unwrap(),
        }
    };
    for trace in from..to {
        ring.record(0, trace, 0, Duration::from_micros(trace % 100 + 1));
    }
    ring
}

fn traces(archive: &Path) -> Vec<u64> {
    let output = ringcat(&["cat", archive.to_str().unwrap(), "--format", "json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["trace_id"]
                .as_str()
                .and_then(|t| t.parse::<u64>().ok())
                .unwrap()
        })
        .collect()
}

#[test]
fn drains_of_several_rings_into_one_archive_hold_each_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let ring_path = dir.path().join("r.ring");
    let archive = dir.path().join("a.archive");
    let (r, a) = (ring_path.to_str().unwrap(), archive.to_str().unwrap());
    let ring = ring_with(&ring_path, 0, 100);
    assert!(ringcat(&["drain", r, "-o", a, "--sync"]).status.success());
    for trace in 100..150 {
        ring.record(0, trace, 0, Duration::from_micros(1));
    }
    let output = ringcat(&["drain", r, "-o", a]);
    assert!(
        stderr(&output).contains("drained 50 records"),
        "{}",
        stderr(&output)
    );
    drop(ring);
    // The same path, a new ring: a new source, not mistaken for the old one.
    let _ring = ring_with(&ring_path, 150, 200);
    assert!(ringcat(&["drain", r, "-o", a]).status.success());
    assert_eq!(traces(&archive), (0..200).collect::<Vec<_>>());
}

#[test]
fn drain_refuses_a_link_or_a_foreign_file_at_the_archive_path() {
    let dir = tempfile::tempdir().unwrap();
    let ring_path = dir.path().join("r.ring");
    let _ring = ring_with(&ring_path, 0, 10);
    let target = dir.path().join("target");
    std::fs::write(&target, b"").unwrap();
    let link = dir.path().join("link.archive");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let foreign = dir.path().join("notes.txt");
    std::fs::write(&foreign, b"notes\n").unwrap();
    for path in [&link, &foreign] {
        let output = ringcat(&[
            "drain",
            ring_path.to_str().unwrap(),
            "-o",
            path.to_str().unwrap(),
        ]);
        assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
        assert_eq!(stderr(&output).lines().count(), 1, "{}", stderr(&output));
    }
    assert_eq!(std::fs::read(&target).unwrap(), b"");
    assert_eq!(std::fs::read(&foreign).unwrap(), b"notes\n");
    // Nothing was consumed.
    let output = ringcat(&["drain", ring_path.to_str().unwrap()]);
    assert_eq!(
        String::from_utf8(output.stdout).unwrap().lines().count(),
        10
    );
}

#[test]
fn a_damaged_archive_header_is_exit_2_and_a_damaged_entry_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let ring_path = dir.path().join("r.ring");
    let archive = dir.path().join("a.archive");
    let _ring = ring_with(&ring_path, 0, 10);
    let a = archive.to_str().unwrap();
    assert!(
        ringcat(&["drain", ring_path.to_str().unwrap(), "-o", a])
            .status
            .success()
    );
    let pristine = std::fs::read(&archive).unwrap();
    let mut bytes = pristine.clone();
    bytes[2048 + 8 * 5..2048 + 8 * 6].copy_from_slice(&1.5f64.to_le_bytes());
    std::fs::write(&archive, &bytes).unwrap();
    for command in [vec!["cat"], vec!["pct"], vec!["slice", "--above", "p99"]] {
        let mut args = command.clone();
        args.insert(1, a);
        let output = ringcat(&args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert_eq!(stderr(&output).lines().count(), 1, "{}", stderr(&output));
        assert!(stderr(&output).contains("class 5"), "{}", stderr(&output));
    }
    let mut bytes = pristine;
    bytes[16_384 + 3 * 32 + 26] = 42; // entry 3 refers to an unused class
    std::fs::write(&archive, &bytes).unwrap();
    assert_eq!(traces(&archive), [0, 1, 2, 4, 5, 6, 7, 8, 9]);
}

#[test]
fn drain_skips_and_reports_a_slot_of_an_undeclared_kind() {
    let dir = tempfile::tempdir().unwrap();
    let ring_path = dir.path().join("r.ring");
    let ring = ring_with(&ring_path, 0, 5);
    ring.close().unwrap();
    let file = ringlat_read::RingFile::open(&ring_path).unwrap();
    let geometry = file.geometry();
    let (head, _) = file.positions();
    drop(file);
    let offset = geometry.meta_word_offset(head.wrapping_add(2) & (geometry.capacity - 1));
    let handle = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&ring_path)
        .unwrap();
    let mut word = [0u8; 8];
    handle.read_exact_at(&mut word, offset).unwrap();
    let word = u64::from_le_bytes(word) | (200 << 40);
    handle.write_all_at(&word.to_le_bytes(), offset).unwrap();
    let output = ringcat(&["drain", ring_path.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 4);
    assert!(
        stderr(&output).contains("1 invalid slots"),
        "{}",
        stderr(&output)
    );
}
