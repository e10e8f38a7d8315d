//! Snapshots decoded from what a pass kept (`ArchiveReader::keep_snapshots`) equal the
//! snapshots read from the file: pieces of every small size (so that snapshot runs straddle
//! pieces), scanned by two threads in any order; a pass that missed entries, and an archive
//! whose snapshot runs were cut by a crash, fall back to or agree with the file.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use ringlat_format::Record;
use ringlat_read::Decoded;
use ringlat_read::archive::{ArchiveReader, ArchiveWriter, EntryTables, RingInfo};
use ringlat_read::population::{Histogram, KindPopulation};
use std::path::Path;

const BASE: u64 = 1_795_276_800_000_000_000;

/// An archive of two rings, records in batches, a snapshot of the written ring's growing
/// population (two kinds, histograms with a few buckets) after every other batch.
fn write_archive(path: &Path) {
    let mut writer = ArchiveWriter::open(path, 1).unwrap();
    let rings = [
        RingInfo::synthetic(7, 1 << 31, 1, &["market", "limit"]),
        RingInfo::synthetic(8, 1 << 31, 1, &["market", "limit"]),
    ];
    let mut histograms = [Histogram::default(), Histogram::default()];
    let mut position = [0u32; 2];
    for batch in 0..40u64 {
        let r = (batch % 2) as usize;
        let records: Vec<Decoded> = (0..1 + batch % 5)
            .map(|i| {
                position[r] += 1;
                let trace = batch * 10 + i;
                Decoded {
                    position: position[r] - 1,
                    kind: (trace % 2) as u8,
                    class: 0,
                    probability: 1.0,
                    record: Record::new(trace, BASE + trace * 1_000, 0, 7),
                }
            })
            .collect();
        writer.append(&rings[r], &records).unwrap();
        if batch % 2 == 1 {
            for (kind, histogram) in histograms.iter_mut().enumerate() {
                histogram.add_ns(1_000 * (batch + 1) * (kind as u64 + 1), batch + 1);
            }
            let population: Vec<KindPopulation> = (0..2u8)
                .map(|kind| KindPopulation {
                    kind,
                    counters: [batch + u64::from(kind), batch, 0, 0, 0, 0],
                    histogram: Some(histograms[kind as usize].clone()),
                })
                .collect();
            writer
                .append_snapshot(&rings[r], BASE + batch * 1_000_000, &population)
                .unwrap();
        }
    }
}

/// Scans `pieces` of `reader` (each thread takes every other piece, in reverse order).
fn scan_pieces(reader: &ArchiveReader, pieces: &[std::ops::Range<u64>]) {
    let tables = EntryTables::of(reader);
    std::thread::scope(|scope| {
        for thread in 0..2 {
            let tables = &tables;
            scope.spawn(move || {
                let mut buffer = Vec::new();
                for piece in pieces.iter().rev().skip(thread).step_by(2) {
                    reader
                        .scan(tables, piece.clone(), &mut buffer, |_, _| {})
                        .unwrap();
                }
            });
        }
    });
}

fn pieces_of(len: u64, size: u64) -> Vec<std::ops::Range<u64>> {
    (0..len.div_ceil(size))
        .map(|i| i * size..((i + 1) * size).min(len))
        .collect()
}

#[test]
fn kept_snapshots_equal_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stash.archive");
    write_archive(&path);
    let from_file = ArchiveReader::open(&path)
        .unwrap()
        .snapshot_deltas()
        .unwrap();
    assert_eq!(from_file.len(), 20);
    assert!(from_file.iter().all(|s| s.kinds.len() == 2));

    let reader = ArchiveReader::open(&path).unwrap();
    let len = reader.len();
    reader.keep_snapshots(true);
    for size in (1..12).chain([len]) {
        reader.begin_scan();
        scan_pieces(&reader, &pieces_of(len, size));
        assert_eq!(
            reader.snapshot_deltas().unwrap(),
            from_file,
            "pieces of {size}"
        );
    }

    // A pass that skipped an entry: the file is read instead (same answer).
    reader.begin_scan();
    let mut pieces = pieces_of(len, 5);
    pieces[3].start += 1;
    scan_pieces(&reader, &pieces);
    assert_eq!(reader.snapshot_deltas().unwrap(), from_file);

    // Overlapping pieces count each entry once.
    reader.begin_scan();
    scan_pieces(&reader, &[0..len / 2 + 7, len / 2..len]);
    assert_eq!(reader.snapshot_deltas().unwrap(), from_file);

    // The kept entries are what answers, not the file: wiped after the pass, it is not read.
    reader.begin_scan();
    scan_pieces(&reader, &pieces_of(len, 4));
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    let wiped = vec![0u8; (len as usize) * ringlat_read::archive::ENTRY_SIZE];
    std::os::unix::fs::FileExt::write_all_at(
        &file,
        &wiped,
        ringlat_read::archive::ARCHIVE_HEADER_SIZE as u64,
    )
    .unwrap();
    assert_eq!(reader.snapshot_deltas().unwrap(), from_file);
    // Taken: a second call reads the (wiped) file.
    assert!(reader.snapshot_deltas().unwrap().is_empty());
}

/// Snapshot runs cut short (their end entries damaged into records) are ignored alike.
#[test]
fn kept_snapshots_skip_cut_runs_like_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.archive");
    write_archive(&path);
    // Runs of snapshot entries (index of the first, entries), in file order.
    let mut bytes = std::fs::read(&path).unwrap();
    let header = ringlat_read::archive::ARCHIVE_HEADER_SIZE;
    let size = ringlat_read::archive::ENTRY_SIZE;
    let mut runs: Vec<(usize, usize)> = Vec::new();
    let mut previous = false;
    for (index, entry) in bytes[header..].chunks_exact(size).enumerate() {
        let snapshot = entry[27] == 0xFF;
        match runs.last_mut() {
            Some((_, len)) if snapshot && previous => *len += 1,
            _ if snapshot => runs.push((index, 1)),
            _ => {}
        }
        previous = snapshot;
    }
    assert_eq!(runs.len(), 20);
    // Damage into record-looking entries (source byte 0): the end of run 3 and a middle
    // entry of run 4 (run 3's leftovers must not complete run 4: records lie between them),
    // the first entry of run 8, the last two of run 12.
    let mut damage = |index: usize| bytes[header + index * size + 27] = 0;
    damage(runs[3].0 + runs[3].1 - 1);
    damage(runs[4].0 + runs[4].1 / 2);
    damage(runs[8].0);
    damage(runs[12].0 + runs[12].1 - 1);
    damage(runs[12].0 + runs[12].1 - 2);
    std::fs::write(&path, &bytes).unwrap();
    let from_file = ArchiveReader::open(&path)
        .unwrap()
        .snapshot_deltas()
        .unwrap();
    assert_eq!(from_file.len(), 16);
    let reader = ArchiveReader::open(&path).unwrap();
    reader.keep_snapshots(true);
    reader.begin_scan();
    scan_pieces(&reader, &pieces_of(reader.len(), 3));
    assert_eq!(reader.snapshot_deltas().unwrap(), from_file);
}
