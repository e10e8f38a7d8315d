//! The archive and the drain pipeline (issue 8 items 1, 2, 6; issue 9 items 1, 3, 5): each
//! test is the regression test of one fix.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::zombie_processes,
    missing_docs
)]

use ringlat::Ring;
use ringlat_format::Geometry;
use ringlat_read::archive::{ArchiveReader, ArchiveWriter, RingInfo};
use ringlat_read::{Drainer, RingFile};
use ringlat_tests::{archived_traces, drain_all};
use std::collections::HashSet;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

fn ring_with(path: &Path, records: u64) -> Ring {
    let ring = Ring::builder(path)
        .capacity(1024)
        .kind(0, "market")
        .start_position(u32::MAX - 10)
        .create()
        .unwrap();
    for trace in 0..records {
        ring.record(0, trace, 0, Duration::from_micros(trace + 1));
    }
    ring
}

/// Appends one batch to the archive, then fails as a killed drainer would before consuming.
fn append_then_crash(drainer: &mut Drainer, archive: &mut ArchiveWriter, max: usize) {
    let info = RingInfo::of(drainer.file());
    let result = drainer.drain_batch(max, |batch| {
        archive.append(&info, batch).unwrap();
        Err::<(), &str>("killed before consuming")
    });
    assert!(result.is_err());
}

#[test]
fn a_drain_killed_between_append_and_consume_archives_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let ring_path = dir.path().join("r.ring");
    let archive_path = dir.path().join("r.archive");
    let _ring = ring_with(&ring_path, 100);
    {
        let mut drainer = Drainer::open(&ring_path).unwrap();
        let mut archive = ArchiveWriter::open(&archive_path, 1).unwrap();
        append_then_crash(&mut drainer, &mut archive, 40);
        assert_eq!(
            RingFile::open(&ring_path).unwrap().positions().0,
            u32::MAX - 10
        );
    }
    let already = drain_all(&ring_path, &archive_path);
    assert_eq!(already, 40, "the re-drained batch was recognised");
    assert_eq!(archived_traces(&archive_path), (0..100).collect::<Vec<_>>());
}

#[test]
fn a_drain_killed_between_its_entries_and_its_checkpoint_archives_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let ring_path = dir.path().join("r.ring");
    let archive_path = dir.path().join("r.archive");
    let _ring = ring_with(&ring_path, 100);
    {
        let mut drainer = Drainer::open(&ring_path).unwrap();
        let mut archive = ArchiveWriter::open(&archive_path, 1).unwrap();
        let info = RingInfo::of(drainer.file());
        drainer
            .drain_batch(10, |batch| archive.append(&info, batch).map(drop))
            .unwrap();
        // The header as it was before the next batch's checkpoint: the kill came after the
        // entries were written and before the header said so.
        let file = std::fs::File::open(&archive_path).unwrap();
        let mut page = vec![0u8; 4096];
        file.read_exact_at(&mut page, 0).unwrap();
        append_then_crash(&mut drainer, &mut archive, 30);
        drop(archive);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&archive_path)
            .unwrap();
        file.write_all_at(&page, 0).unwrap();
    }
    assert_eq!(drain_all(&ring_path, &archive_path), 30);
    assert_eq!(archived_traces(&archive_path), (0..100).collect::<Vec<_>>());
}

#[test]
fn a_trailing_partial_entry_is_not_read_and_is_cut_before_the_next_append() {
    let dir = tempfile::tempdir().unwrap();
    let ring_path = dir.path().join("r.ring");
    let archive_path = dir.path().join("r.archive");
    let ring = ring_with(&ring_path, 10);
    drain_all(&ring_path, &archive_path);
    let len = std::fs::metadata(&archive_path).unwrap().len();
    let file = std::fs::OpenOptions::new()
        .append(true)
        .open(&archive_path)
        .unwrap();
    file.write_all_at(&[0xAB; 7], len).unwrap();
    let reader = ArchiveReader::open(&archive_path).unwrap();
    assert_eq!(reader.len(), 10);
    assert_eq!(archived_traces(&archive_path), (0..10).collect::<Vec<_>>());
    for trace in 10..20 {
        ring.record(0, trace, 0, Duration::from_micros(1));
    }
    drain_all(&ring_path, &archive_path);
    assert_eq!(archived_traces(&archive_path), (0..20).collect::<Vec<_>>());
    assert_eq!(
        std::fs::metadata(&archive_path).unwrap().len(),
        16_384 + 20 * 32
    );
}

#[test]
fn archives_are_created_private_and_whole_and_never_through_a_link() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.archive");
    ArchiveWriter::open(&path, 1).unwrap();
    let metadata = std::fs::metadata(&path).unwrap();
    assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
    assert_eq!(metadata.len(), 16_384);
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1, "no temporary file is left behind");

    // A symlink planted at the archive path is refused, its target untouched.
    let target = dir.path().join("precious");
    std::fs::write(&target, b"").unwrap();
    let link = dir.path().join("link.archive");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let error = ArchiveWriter::open(&link, 1).unwrap_err().to_string();
    assert!(error.contains("symbolic link"), "{error}");
    assert_eq!(std::fs::read(&target).unwrap(), b"");
    // A dangling one too: nothing is created at its target.
    let dangling = dir.path().join("dangling.archive");
    std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
    assert!(ArchiveWriter::open(&dangling, 1).is_err());
    assert!(!dir.path().join("nowhere").exists());

    // A pre-existing file that is not an archive, empty or not, is refused and untouched.
    for content in [&b""[..], b"some log\n"] {
        let other = dir.path().join("other");
        std::fs::write(&other, content).unwrap();
        let error = ArchiveWriter::open(&other, 1).unwrap_err().to_string();
        assert!(error.contains("refusing to append"), "{error}");
        assert_eq!(std::fs::read(&other).unwrap(), content);
    }
    // A FIFO is refused, not waited on.
    let fifo = dir.path().join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path that lives across the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    assert!(ArchiveWriter::open(&fifo, 1).is_err());
    assert!(ArchiveReader::open(&fifo).is_err());
    // One appender at a time.
    let _first = ArchiveWriter::open(&path, 1).unwrap();
    let error = ArchiveWriter::open(&path, 1).unwrap_err().to_string();
    assert!(error.contains("another process is appending"), "{error}");
}

fn ring_of_kinds(path: &Path, kinds: &[(u8, &str, f64)], records: u64) {
    let mut builder = Ring::builder(path).capacity(256);
    for (id, name, rate) in kinds {
        builder = builder.kind(*id, name).rate(*id, *rate);
    }
    let ring = builder
        .decision(ringlat::Decision::TraceId)
        .create()
        .unwrap();
    let mut trace = 0;
    let mut written = 0;
    while written < records {
        for (id, _, _) in kinds {
            if ring.record(*id, trace, *id, Duration::from_micros(u64::from(*id) + 1))
                == ringlat::Outcome::Written
            {
                written += 1;
            }
            trace += 1;
        }
    }
    ring.close().unwrap();
}

#[test]
fn appending_a_ring_with_other_kinds_matches_them_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("a.ring");
    let second = dir.path().join("b.ring");
    let archive = dir.path().join("kinds.archive");
    ring_of_kinds(
        &first,
        &[(0, "market", 1.0), (1, "limit", 0.5), (2, "cancel", 1.0)],
        30,
    );
    ring_of_kinds(
        &second,
        &[(0, "alpha", 1.0), (1, "beta", 0.25), (5, "limit", 0.5)],
        30,
    );
    drain_all(&first, &archive);
    drain_all(&second, &archive);
    let reader = ArchiveReader::open(&archive).unwrap();
    let mut seen = HashSet::new();
    reader
        .for_each(|r| {
            let name = reader.kind_name(r.kind).unwrap();
            // Each ring recorded status = its kind id and delta = id + 1 us.
            let ring_kind = r.status;
            assert_eq!(r.delta_ns, (i64::from(ring_kind) + 1) * 1000);
            let expected_p = match name.as_str() {
                "limit" => 0.5,
                "beta" => 0.25,
                _ => 1.0,
            };
            assert_eq!(r.probability, expected_p, "{name}");
            seen.insert((name, ring_kind));
        })
        .unwrap();
    let expected: HashSet<(String, u8)> = [
        ("market", 0),
        ("limit", 1),
        ("cancel", 2),
        ("alpha", 0),
        ("beta", 1),
        ("limit", 5),
    ]
    .into_iter()
    .map(|(n, k)| (n.to_string(), k))
    .collect();
    assert_eq!(seen, expected, "no record of one ring wears another's name");
    assert_eq!(reader.kind_name(1).as_deref(), Some("limit"));
    assert_eq!(reader.sources().len(), 2);
}

/// Sets the kind and class bits of the metadata word of ring position `position`.
fn relabel_slot(path: &Path, position: u32, kind: u8, class: u8) {
    let file = RingFile::open(path).unwrap();
    let geometry: Geometry = file.geometry();
    drop(file);
    let offset = geometry.meta_word_offset(position & (geometry.capacity - 1));
    let handle = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut word = [0u8; 8];
    handle.read_exact_at(&mut word, offset).unwrap();
    let mut word = u64::from_le_bytes(word);
    word &= !(0xFFFF << 40);
    word |= (u64::from(kind) << 40) | (u64::from(class) << 48);
    handle.write_all_at(&word.to_le_bytes(), offset).unwrap();
}

#[test]
fn a_bad_slot_is_skipped_and_counted_and_never_poisons_the_archive() {
    let dir = tempfile::tempdir().unwrap();
    let ring_path = dir.path().join("bad.ring");
    let archive_path = dir.path().join("bad.archive");
    let ring = ring_with(&ring_path, 10);
    ring.close().unwrap();
    let start = u32::MAX - 10;
    relabel_slot(&ring_path, start + 3, 77, 0); // undeclared kind
    relabel_slot(&ring_path, start + 6, 0, 200); // unused class
    drain_all(&ring_path, &archive_path);
    let reader = ArchiveReader::open(&archive_path).unwrap();
    assert_eq!(reader.skipped_invalid_at_drain(), 2);
    assert_eq!(reader.sources()[0].skipped_invalid, 2);
    assert_eq!(
        archived_traces(&archive_path),
        [0, 1, 2, 4, 5, 7, 8, 9],
        "every good record, before and after the bad ones"
    );
}

#[test]
fn a_bad_entry_is_skipped_and_a_bad_header_is_a_clean_error() {
    let dir = tempfile::tempdir().unwrap();
    let ring_path = dir.path().join("r.ring");
    let archive_path = dir.path().join("r.archive");
    let _ring = ring_with(&ring_path, 10);
    drain_all(&ring_path, &archive_path);
    let pristine = std::fs::read(&archive_path).unwrap();

    // Entry 4 refers to an unused class, entry 7 to a kind without a name.
    let mut bytes = pristine.clone();
    bytes[16_384 + 4 * 32 + 26] = 9;
    bytes[16_384 + 7 * 32 + 25] = 99;
    std::fs::write(&archive_path, &bytes).unwrap();
    let reader = ArchiveReader::open(&archive_path).unwrap();
    let mut traces = Vec::new();
    reader.for_each(|r| traces.push(r.trace_id)).unwrap();
    assert_eq!(traces, [0, 1, 2, 3, 5, 6, 8, 9]);
    assert_eq!(reader.bad_entries(), 2);

    // Bad headers: a class probability out of (0, 1], class 0 != 1, NaN, sizes.
    let class = |c: usize| 2048 + 8 * c;
    for (offset, value) in [
        (class(3), 2.0f64.to_le_bytes().to_vec()),
        (class(3), (-0.5f64).to_le_bytes().to_vec()),
        (class(3), f64::NAN.to_le_bytes().to_vec()),
        (class(0), 0.5f64.to_le_bytes().to_vec()),
        (16, 33u32.to_le_bytes().to_vec()),
        (12, 4096u32.to_le_bytes().to_vec()),
        (8, 4u32.to_le_bytes().to_vec()),
    ] {
        let mut bytes = pristine.clone();
        bytes[offset..offset + value.len()].copy_from_slice(&value);
        std::fs::write(&archive_path, &bytes).unwrap();
        assert!(
            ArchiveReader::open(&archive_path).is_err(),
            "offset {offset}"
        );
        assert!(
            ArchiveWriter::open(&archive_path, 1).is_err(),
            "offset {offset}"
        );
    }
}

#[test]
fn version_1_archives_are_read_but_not_appended_to() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.archive");
    let mut bytes = vec![0u8; 16_384];
    bytes[..8].copy_from_slice(b"RLARCHV\0");
    bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
    bytes[12..16].copy_from_slice(&16_384u32.to_le_bytes());
    bytes[16..20].copy_from_slice(&32u32.to_le_bytes());
    bytes[2048..2056].copy_from_slice(&0.5f64.to_le_bytes()); // v1: class 0 was the first rate seen
    bytes[4096 + 32 * 3..4096 + 32 * 3 + 5].copy_from_slice(b"limit");
    for trace in 0..3u64 {
        let mut entry = [0u8; 32];
        entry[0..8].copy_from_slice(&trace.to_le_bytes());
        entry[8..16].copy_from_slice(&(1_000 + trace).to_le_bytes());
        entry[16..24].copy_from_slice(&(-5i64).to_le_bytes());
        entry[24] = 1;
        entry[25] = 3;
        bytes.extend_from_slice(&entry);
    }
    std::fs::write(&path, &bytes).unwrap();
    let reader = ArchiveReader::open(&path).unwrap();
    assert_eq!(reader.version(), 1);
    let mut seen = Vec::new();
    reader
        .for_each(|r| seen.push((r.trace_id, r.kind, r.probability, r.delta_ns)))
        .unwrap();
    assert_eq!(seen, [(0, 3, 0.5, -5), (1, 3, 0.5, -5), (2, 3, 0.5, -5)]);
    let error = ArchiveWriter::open(&path, 1).unwrap_err().to_string();
    assert!(error.contains("version-1"), "{error}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "untouched");
}

#[test]
fn the_abandoned_count_survives_a_failing_drain_handler() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dead.ring");
    let ring = ring_with(&path, 3);
    ring.close().unwrap();
    let start = u32::MAX - 10;
    // Position start+1 was reserved and never committed by a writer that then died: its
    // metadata word is empty, and the file says open (state 0) with nobody holding the lock.
    let geometry = RingFile::open(&path).unwrap().geometry();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.write_all_at(
        &0u64.to_le_bytes(),
        geometry.meta_word_offset((start + 1) & 1023),
    )
    .unwrap();
    file.write_all_at(&0u32.to_le_bytes(), 84).unwrap();
    let mut drainer = Drainer::open(&path).unwrap();
    let result = drainer.drain(10, |d| {
        if d.record.trace_id() == 2 {
            Err("output failed")
        } else {
            Ok(())
        }
    });
    assert_eq!(result, Err("output failed"));
    assert_eq!(drainer.file().counters().abandoned, 1);
    assert_eq!(drainer.file().positions().0, start.wrapping_add(2));
}
