//! docs/ARCHIVE.md is precise enough to decode an archive: this test reads the offsets out of
//! the page's tables (not from the read crate), checks that each table describes every byte,
//! and decodes an archive that `ringcat drain` wrote from two rings with them.
//!
//! It is built by ringcat's package (tools/ringcat/Cargo.toml), which provides the binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use ringlat::{Decision, DeltaUnit, Ring};
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The tables of ARCHIVE.md: `table -> [(offset, size, name)]` for every table that follows a
/// `<!-- table: NAME` comment, in row order.
fn tables_from_archive_md() -> HashMap<String, Vec<(usize, usize, String)>> {
    let text = include_str!("../docs/ARCHIVE.md");
    let mut tables: HashMap<String, Vec<(usize, usize, String)>> = HashMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("<!-- table: ") {
            let name = rest.split(['.', ' ']).next().unwrap();
            let name = if name == "source" { "source row" } else { name };
            current = Some(name.to_string());
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if let Some(table) = &current {
            if cells.len() < 6 {
                if line.trim().is_empty() && tables.contains_key(table) {
                    current = None;
                }
                continue;
            }
            if let (Ok(offset), Ok(size)) = (cells[1].parse(), cells[2].parse()) {
                tables
                    .entry(table.clone())
                    .or_default()
                    .push((offset, size, cells[4].to_string()));
            }
        }
    }
    tables
}

struct Fields(HashMap<String, (usize, usize)>);

impl Fields {
    fn at(&self, name: &str) -> (usize, usize) {
        *self
            .0
            .get(name)
            .unwrap_or_else(|| panic!("ARCHIVE.md has no field {name}"))
    }
}

fn le(bytes: &[u8], offset: usize, size: usize) -> u64 {
    let mut value = 0u64;
    for (i, byte) in bytes[offset..offset + size].iter().enumerate() {
        value |= u64::from(*byte) << (8 * i);
    }
    value
}

fn ring_header_u64(path: &Path, offset: usize, size: usize) -> u64 {
    le(&std::fs::read(path).unwrap(), offset, size)
}

#[test]
fn a_decoder_written_from_archive_md_reads_what_ringcat_drain_wrote() {
    let tables = tables_from_archive_md();
    // Every table describes every byte of what it lays out, in order.
    let mut fields = HashMap::new();
    for (table, total) in [
        ("header", 16_384),
        ("source row", 64),
        ("entry", 32),
        ("snapshot", 32),
    ] {
        let rows = tables
            .get(table)
            .unwrap_or_else(|| panic!("ARCHIVE.md has no {table} table"));
        let mut end = 0;
        for (offset, size, name) in rows {
            assert_eq!(*offset, end, "{table}: a gap or overlap before {name}");
            end = offset + size;
            assert!(
                fields.insert(name.clone(), (*offset, *size)).is_none(),
                "{name} twice"
            );
        }
        assert_eq!(end, total, "{table} covers {end} bytes, not {total}");
    }
    let f = Fields(fields);
    let (_, header_size) = (0, f.at("reserved_12288").0 + f.at("reserved_12288").1);
    let entry_size = f.at("position").0 + f.at("position").1;
    let (row_size, rows) = (64, f.at("source_table").1 / 64);

    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("doc.archive");
    let first = dir.path().join("first.ring");
    let second = dir.path().join("second.ring");
    // First ring: market (100%) and limit (50% by trace id), in us, across the 2^32 wrap.
    let kept: Vec<u64> = (1000..)
        .filter(|t| ringlat::trace_hash(*t) < 1 << 63)
        .take(3)
        .collect();
    {
        let ring = Ring::builder(&first)
            .capacity(8)
            .kind(0, "market")
            .kind(1, "limit")
            .rate(1, 0.5)
            .decision(Decision::TraceId)
            .delta_unit(DeltaUnit::Micros)
            .start_position(u32::MAX - 1)
            .create()
            .unwrap();
        for (i, trace) in kept.iter().enumerate() {
            ring.record(1, *trace, i as u8, Duration::from_micros(7 + i as u64));
        }
        ring.record(0, 42, 9, Duration::from_micros(100));
        ring.close().unwrap();
    }
    // Second ring: other names at the same ids, and limit again at another id, in ns.
    {
        let ring = Ring::builder(&second)
            .capacity(4)
            .kind(0, "alpha")
            .kind(3, "limit")
            .delta_unit(DeltaUnit::Nanos)
            .create()
            .unwrap();
        ring.record(0, 77, 1, Duration::from_nanos(5));
        ring.record(3, 78, 2, Duration::from_nanos(6));
        ring.close().unwrap();
    }
    for ring in [&first, &second] {
        let output = Command::new(env!("CARGO_BIN_EXE_ringcat"))
            .arg("drain")
            .arg(ring)
            .arg("-o")
            .arg(&archive)
            .output()
            .unwrap();
        assert!(output.status.success());
    }

    let bytes = std::fs::read(&archive).unwrap();
    let get = |name: &str| {
        let (offset, size) = f.at(name);
        le(&bytes, offset, size)
    };
    assert_eq!(&bytes[f.at("magic").0..8], b"RLARCHV\0");
    assert_eq!(get("version"), 3);
    assert_eq!(get("header_size") as usize, header_size);
    assert_eq!(get("entry_size") as usize, entry_size);
    assert!(get("created_unix_ns") > 0);
    assert_eq!(get("skipped_invalid"), 0);
    assert_eq!((bytes.len() - header_size) % entry_size, 0, "whole entries");
    let entries = (bytes.len() - header_size) / entry_size;
    let marker = f.at("marker").0;
    let is_snapshot = |i: usize| bytes[header_size + entry_size * i + marker] == 255;
    let records: Vec<usize> = (0..entries).filter(|i| !is_snapshot(*i)).collect();
    assert_eq!(records.len(), 6);

    let class_table = f.at("class_table").0;
    let probability = |class: u64| f64::from_bits(le(&bytes, class_table + 8 * class as usize, 8));
    assert_eq!(probability(0), 1.0);
    let names = f.at("kind_names").0;
    let name = |kind: u64| {
        let raw = &bytes[names + 32 * kind as usize..names + 32 * kind as usize + 32];
        String::from_utf8(raw.split(|b| *b == 0).next().unwrap().to_vec()).unwrap()
    };

    // Source rows: the two rings, identified by their headers (FORMAT.md offsets 64, 72, 80).
    let table = f.at("source_table").0;
    let row = |index: usize, field: &str| {
        let (offset, size) = f.at(field);
        le(&bytes, table + row_size * index + offset, size)
    };
    let in_use: Vec<usize> = (0..rows)
        .filter(|r| row(*r, "source_flags") & 1 == 1)
        .collect();
    assert_eq!(in_use, [0, 1]);
    for (index, ring, count, next) in [(0, &first, 4, u32::MAX.wrapping_add(3)), (1, &second, 2, 2)]
    {
        assert_eq!(row(index, "anchor_unix_ns"), ring_header_u64(ring, 64, 8));
        assert_eq!(row(index, "anchor_mono_ns"), ring_header_u64(ring, 72, 8));
        assert_eq!(row(index, "start_position"), ring_header_u64(ring, 80, 4));
        assert_eq!(row(index, "capacity"), ring_header_u64(ring, 16, 4));
        assert_eq!(row(index, "source_flags"), 3);
        assert_eq!(row(index, "next_position"), u64::from(next));
        assert_eq!(row(index, "source_entries"), count);
        assert_eq!(row(index, "source_skipped_invalid"), 0);
    }
    assert_eq!(row(0, "first_entry"), 0);
    assert_eq!(row(1, "first_entry"), records[4] as u64);
    assert_eq!(row(1, "covered"), records[5] as u64 + 1);

    // (trace, status, delta_ns, kind name, probability, source row, position)
    let expected = [
        (kept[0], 0, 7_000, "limit", 0.5, 0, u32::MAX - 1),
        (kept[1], 1, 8_000, "limit", 0.5, 0, u32::MAX),
        (kept[2], 2, 9_000, "limit", 0.5, 0, 0),
        (42, 9, 100_000, "market", 1.0, 0, 1),
        (77, 1, 5, "alpha", 1.0, 1, 0),
        (78, 2, 6, "limit", 1.0, 1, 1),
    ];
    let mut alpha_kind = None;
    for (i, want) in expected.iter().enumerate() {
        let entry = header_size + entry_size * records[i];
        let field = |name: &str| {
            let (offset, size) = f.at(name);
            le(&bytes, entry + offset, size)
        };
        let kind = field("kind");
        if want.3 == "alpha" {
            alpha_kind = Some(kind);
        }
        assert_eq!(field("trace_id"), want.0, "entry {i}");
        assert_eq!(field("status"), want.1, "entry {i}");
        assert_eq!(field("delta_ns") as i64, want.2, "entry {i}");
        assert_eq!(name(kind), want.3, "entry {i}");
        assert_eq!(probability(field("class")), want.4, "entry {i}");
        assert_eq!(field("source"), want.5, "entry {i}");
        assert_eq!(field("position") as u32, want.6, "entry {i}");
        assert!(field("nanotime") > 1_600_000_000_000_000_000, "entry {i}");
    }
    // The lateness bound ("Seeking"), computed from the record entries' times in file order:
    // the running maximum and the largest amount a time fell behind it. The drain's last
    // snapshot was followed by a header write, so the bound covers every entry.
    let (mut max_time, mut lateness) = (0u64, 0u64);
    for &i in &records {
        let (offset, size) = f.at("nanotime");
        let time = le(&bytes, header_size + entry_size * i + offset, size);
        max_time = max_time.max(time);
        lateness = lateness.max(max_time - time);
    }
    assert_eq!(get("max_record_time"), max_time);
    assert_eq!(get("lateness_bound"), lateness);
    assert_eq!(get("bound_entries"), entries as u64);

    // alpha has the second ring's id 0, which market took: it gets the lowest free kind.
    assert_eq!(name(0), "market");
    assert_eq!(name(1), "limit");
    assert_eq!(alpha_kind, Some(2));

    // Snapshots, decoded from the snapshot table: per (ring anchor, kind name) the 9 words of
    // the kind entries and the bucket counts, summed over the snapshots.
    let snap = |i: usize, field: &str| {
        let (offset, size) = f.at(field);
        le(&bytes, header_size + entry_size * i + offset, size)
    };
    type Sums = HashMap<(u64, String), ([u64; 9], HashMap<u64, u64>)>;
    let mut sums: Sums = HashMap::new();
    let mut run: Vec<usize> = Vec::new();
    for i in 0..entries {
        if !is_snapshot(i) {
            run.clear();
            continue;
        }
        if snap(i, "entry_type") != 1 {
            run.push(i);
            continue;
        }
        let n = snap(i, "snap_index") as usize;
        let anchor = snap(i, "word_1");
        for &e in &run[run.len() - n..] {
            let words = [snap(e, "word_0"), snap(e, "word_1"), snap(e, "word_2")];
            let sum = sums
                .entry((anchor, name(snap(e, "snap_kind"))))
                .or_default();
            let index = snap(e, "snap_index");
            match snap(e, "entry_type") {
                2 => sum.0[3 * index as usize..3 * index as usize + 3].copy_from_slice(&words),
                3 => {
                    for (k, count) in words.iter().enumerate().filter(|(_, c)| **c > 0) {
                        *sum.1.entry(index + k as u64).or_default() += count;
                    }
                }
                other => panic!("snapshot entry type {other}"),
            }
        }
        run.clear();
    }
    // The bucket of a latency, from FORMAT.md's bucket scheme.
    let bucket = |ns: u64| {
        if ns < 256 {
            ns
        } else {
            let e = 63 - u64::from(ns.leading_zeros());
            256 + (e - 8) * 128 + (ns >> (e - 7)) - 128
        }
    };
    let first_anchor = ring_header_u64(&first, 64, 8);
    let second_anchor = ring_header_u64(&second, 64, 8);
    for (anchor, kind, written, latencies) in [
        (first_anchor, "limit", 3, vec![7_000, 8_000, 9_000]),
        (first_anchor, "market", 1, vec![100_000]),
        (second_anchor, "alpha", 1, vec![5]),
        (second_anchor, "limit", 1, vec![6]),
    ] {
        let (words, buckets) = &sums[&(anchor, kind.to_string())];
        assert_eq!(words[0], written, "{kind}: written");
        assert_eq!(words[1..8], [0; 7], "{kind}: nothing else happened");
        assert_eq!(words[8], latencies.iter().sum::<u64>(), "{kind}: sum_ns");
        let mut want: HashMap<u64, u64> = HashMap::new();
        for ns in latencies {
            *want.entry(bucket(ns)).or_default() += 1;
        }
        assert_eq!(*buckets, want, "{kind}: buckets");
    }
}
