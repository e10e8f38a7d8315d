//! Seeking in archives (docs/ARCHIVE.md, "Seeking"): `entry_range` and `last_records` give
//! the same records as a full scan, on archives whose entries are out of time order within
//! the lateness bound (several rings interleaved by batch, jitter within a batch), with
//! snapshot entries between batches, on version-2 archives (no bound: scanned), on a
//! version-2 archive upgraded by an append, and when the header's bound does not cover the
//! last entries (a drain killed before its checkpoint).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use ringlat_format::Record;
use ringlat_read::Decoded;
use ringlat_read::archive::{ArchiveReader, ArchiveWriter, RingInfo};
use std::path::Path;

const BASE: u64 = 1_795_276_800_000_000_000;

fn ring(anchor: u64) -> RingInfo {
    // Small anchors: a snapshot entry's time field holds the anchor, so a reader
    // that took snapshot entries for records would see very old "records".
    RingInfo::synthetic(anchor, 1 << 31, 1, &["market", "limit"])
}

struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

fn decoded(position: u32, trace: u64, time: u64) -> Decoded {
    Decoded {
        position,
        kind: (trace % 2) as u8,
        class: 0,
        probability: 1.0,
        record: Record::new(trace, time, 0, 7),
    }
}

/// Appends `batches` batches from three rings in random turns, each record 1000 ns after
/// the one before plus a jitter below 5000 ns (out of order within a batch), and a
/// snapshot every few batches. With `lag`, each ring keeps its own clock (ring r's i-th
/// record at `1000 i`) and ring 2 advances a third as fast: its records come far behind.
fn write_archive(path: &Path, batches: usize, seed: u64, lag: bool) {
    let mut writer = ArchiveWriter::open(path, 1).unwrap();
    let rings = [ring(7), ring(8), ring(9)];
    let mut next = [0u64; 3];
    let mut random = Lcg(seed);
    let mut trace = 0u64;
    for batch in 0..batches {
        let r = random.below(3) as usize;
        // Ring 2 advances a third as fast: its records come late against the others.
        let size = 1 + random.below(if r == 2 && lag { 100 } else { 300 });
        let mut records = Vec::new();
        for _ in 0..size {
            let i = next[r];
            // Pacing rings follow one clock (the archive's order); otherwise each its own.
            let step = if lag { i } else { trace };
            let time = BASE + 1000 * step + random.below(5000);
            records.push(decoded(i as u32, trace, time));
            trace += 1;
            next[r] += 1;
        }
        writer.append(&rings[r], &records).unwrap();
        if batch % 7 == 3 {
            writer
                .append_snapshot(&rings[r], BASE + 1000 * next[r], &[])
                .unwrap();
        }
    }
}

/// Every record, in file order: (time, trace id, kind).
fn scan(reader: &ArchiveReader) -> Vec<(u64, u64, u8)> {
    let mut all = Vec::new();
    reader
        .for_each(|r| all.push((r.nanotime, r.trace_id, r.kind)))
        .unwrap();
    all
}

fn in_window(all: &[(u64, u64, u8)], since: Option<u64>, until: Option<u64>) -> Vec<u64> {
    let mut traces: Vec<u64> = all
        .iter()
        .filter(|(t, _, _)| since.is_none_or(|s| *t >= s) && until.is_none_or(|u| *t < u))
        .map(|(_, trace, _)| *trace)
        .collect();
    traces.sort_unstable();
    traces
}

/// The newest n of `all` by (time, file order) passing `keep`, oldest first: trace ids.
fn newest(all: &[(u64, u64, u8)], n: usize, keep: impl Fn(&(u64, u64, u8)) -> bool) -> Vec<u64> {
    let mut kept: Vec<(u64, usize, u64)> = all
        .iter()
        .enumerate()
        .filter(|(_, r)| keep(r))
        .map(|(i, (t, trace, _))| (*t, i, *trace))
        .collect();
    kept.sort_unstable();
    kept.iter()
        .skip(kept.len().saturating_sub(n))
        .map(|(_, _, trace)| *trace)
        .collect()
}

fn check_against_scan(reader: &ArchiveReader, seed: u64) {
    let all = scan(reader);
    let (first, last) = (
        all.iter().map(|r| r.0).min().unwrap(),
        all.iter().map(|r| r.0).max().unwrap(),
    );
    // The span hint, when it settles, is the records' span.
    if let Some(span) = reader.time_span_hint().unwrap() {
        assert_eq!(span, (first, last));
    }
    let mut random = Lcg(seed);
    let pick = |random: &mut Lcg| {
        (random.below(5) != 0).then(|| first - 10_000 + random.below(last - first + 20_000))
    };
    for _ in 0..60 {
        let since = pick(&mut random);
        let until = pick(&mut random);
        let range = reader.entry_range(since, until).unwrap();
        let mut got = Vec::new();
        reader
            .for_each_in(range.clone(), |r| {
                if since.is_none_or(|s| r.nanotime >= s) && until.is_none_or(|u| r.nanotime < u) {
                    got.push(r.trace_id);
                }
            })
            .unwrap();
        got.sort_unstable();
        assert_eq!(
            got,
            in_window(&all, since, until),
            "since {since:?} until {until:?}, range {range:?}"
        );
        let n = 1 + random.below(700) as usize;
        let kind = random.below(3) as u8; // 2: every kind
        let keep = |(t, _, k): &(u64, u64, u8)| {
            (kind == 2 || *k == kind)
                && since.is_none_or(|s| *t >= s)
                && until.is_none_or(|u| *t < u)
        };
        let last_n: Vec<u64> = reader
            .last_records(range, n, |r| keep(&(r.nanotime, r.trace_id, r.kind)))
            .unwrap()
            .iter()
            .map(|(_, r)| r.trace_id)
            .collect();
        assert_eq!(
            last_n,
            newest(&all, n, keep),
            "last {n} of kind {kind}, {since:?}..{until:?}"
        );
    }
}

#[test]
fn seeking_gives_what_a_full_scan_gives() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seek.archive");
    write_archive(&path, 600, 1, true);
    let reader = ArchiveReader::open(&path).unwrap();
    assert_eq!(reader.version(), 3);
    let bound = reader.lateness_bound().unwrap().unwrap();
    // The lagging ring makes records late by far more than the jitter.
    assert!(bound > 1_000_000, "lateness bound {bound}");
    assert!(!reader.snapshot_deltas().unwrap().is_empty());
    check_against_scan(&reader, 2);
    // Rings that keep pace: late by about a batch. Longer than a backward read (32768
    // entries), so --last stops early; seeking narrows to the end of the file.
    let paced = dir.path().join("paced.archive");
    write_archive(&paced, 800, 3, false);
    let reader = ArchiveReader::open(&paced).unwrap();
    assert!(reader.len() > 100_000);
    let bound = reader.lateness_bound().unwrap().unwrap();
    assert!((1_000..100_000).contains(&bound), "lateness bound {bound}");
    check_against_scan(&reader, 4);
    assert!(reader.time_span_hint().unwrap().is_some(), "settles early");
    let all = scan(&reader);
    let last = all.iter().map(|r| r.0).max().unwrap();
    let range = reader.entry_range(Some(last - 1000), None).unwrap();
    assert!(
        range.start > reader.len() - 5_000,
        "{range:?} of {}",
        reader.len()
    );
}

/// Rewrites an archive's header as version 2 (which had no bound: bytes 40..256 reserved).
fn make_version_2(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[8..12].copy_from_slice(&2u32.to_le_bytes());
    bytes[40..64].fill(0);
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn version_2_archives_are_scanned_and_upgraded_on_append() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.archive");
    write_archive(&path, 300, 5, true);
    let bound = ArchiveReader::open(&path)
        .unwrap()
        .lateness_bound()
        .unwrap();
    make_version_2(&path);
    let reader = ArchiveReader::open(&path).unwrap();
    assert_eq!(reader.version(), 2);
    assert_eq!(reader.lateness_bound().unwrap(), None);
    assert_eq!(
        reader.entry_range(Some(BASE), Some(BASE + 1)).unwrap(),
        0..reader.len()
    );
    check_against_scan(&reader, 6);
    // An append upgrades it: the bound is computed by one scan, then written.
    let mut writer = ArchiveWriter::open(&path, 0).unwrap();
    let reader = ArchiveReader::open(&path).unwrap();
    assert_eq!(reader.version(), 3);
    assert_eq!(reader.lateness_bound().unwrap(), bound);
    // A record far in the past is appended: the bound grows to cover it.
    let old = decoded(5_000_000, 99_999_999, BASE - 1_000_000);
    writer.append(&ring(42), &[old]).unwrap();
    drop(writer);
    let reader = ArchiveReader::open(&path).unwrap();
    assert!(reader.lateness_bound().unwrap().unwrap() >= 1_000_000);
    check_against_scan(&reader, 7);
}

#[test]
fn entries_after_the_checkpointed_bound_are_taken_into_account() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tail.archive");
    write_archive(&path, 200, 8, true);
    let bound = ArchiveReader::open(&path)
        .unwrap()
        .lateness_bound()
        .unwrap();
    // As if the drain was killed before checkpointing anything: the header's bound covers
    // no entry (max time 0, lateness 0, 0 entries covered).
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[40..64].fill(0);
    std::fs::write(&path, bytes).unwrap();
    let reader = ArchiveReader::open(&path).unwrap();
    assert_eq!(reader.lateness_bound().unwrap(), bound);
    check_against_scan(&reader, 9);
    // The next drain brings the header up to date.
    let mut writer = ArchiveWriter::open(&path, 0).unwrap();
    writer
        .append(&ring(7), &[decoded(4_000_000, 88_888_888, BASE + 1)])
        .unwrap();
    drop(writer);
    let bytes = std::fs::read(&path).unwrap();
    let covered = u64::from_le_bytes(bytes[56..64].try_into().unwrap());
    assert_eq!(covered, ArchiveReader::open(&path).unwrap().len());
}

/// One batch with a record late by 150 ns: a search that ignored the bound would probe it,
/// take it for proof that everything before it is older than `since`, and miss 200.
#[test]
fn a_record_older_than_its_predecessors_is_not_missed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("late.archive");
    let mut writer = ArchiveWriter::open(&path, 0).unwrap();
    let times = [100, 200, 50, 300, 400];
    let records: Vec<Decoded> = times
        .iter()
        .enumerate()
        .map(|(i, t)| decoded(i as u32, i as u64, BASE + t))
        .collect();
    writer.append(&ring(1), &records).unwrap();
    drop(writer);
    let reader = ArchiveReader::open(&path).unwrap();
    assert_eq!(reader.lateness_bound().unwrap(), Some(150));
    let range = reader.entry_range(Some(BASE + 150), None).unwrap();
    assert!(range.start <= 1, "{range:?} leaves out the record at 200");
    let range = reader.entry_range(None, Some(BASE + 60)).unwrap();
    assert!(range.end >= 3, "{range:?} leaves out the record at 50");
    let newest = reader.last_records(0..reader.len(), 4, |_| true).unwrap();
    let times: Vec<u64> = newest.iter().map(|(_, r)| r.nanotime - BASE).collect();
    assert_eq!(times, [100, 200, 300, 400]);
}
