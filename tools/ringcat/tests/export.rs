//! `ringcat export` as users run it: rings and archives into Parquet, read back with the
//! parquet crate's own reader (values, types, row groups, order, filters, labels, failures).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use parquet::basic::{Encoding, LogicalType, TimeUnit};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use ringlat::{Decision, Ring};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const T0: u64 = 1_795_276_800_000_000_000; // 2026-11-21T16:00:00Z

fn ringcat(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ringcat"))
        .args(args)
        .output()
        .expect("run ringcat")
}

fn ok(args: &[&str]) {
    let output = ringcat(args);
    assert!(
        output.status.success(),
        "ringcat {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A closed ring: `n` records from `offset` (ns after T0) every 10 ms, market at 100% and
/// limit at `limit_rate` by trace id.
fn ring(dir: &Path, name: &str, offset: u64, limit_rate: f64, n: u64) -> PathBuf {
    let path = dir.join(name);
    let ring = Ring::builder(&path)
        .capacity(1024)
        .kind(0, "market")
        .kind(1, "limit")
        .rate(1, limit_rate)
        .decision(Decision::TraceId)
        .max_skew(Duration::from_secs(100 * 365 * 86_400))
        .create()
        .unwrap();
    for i in 0..n {
        ring.record_at(
            (i % 2) as u8,
            offset + i,
            u8::from(i % 5 == 4),
            Duration::from_micros(10 + i % 90),
            T0 + offset + i * 10_000_000,
        );
    }
    ring.close().unwrap();
    path
}

#[derive(Debug, Clone, PartialEq)]
struct Row {
    time: i64,
    host: String,
    kind: String,
    trace_id: u64,
    status: u8,
    latency_ns: i64,
    probability: f64,
    weight: f64,
}

fn read(path: &Path) -> (Vec<Row>, SerializedFileReader<std::fs::File>) {
    let reader = SerializedFileReader::try_from(std::fs::File::open(path).unwrap()).unwrap();
    let mut rows = Vec::new();
    for row in reader.get_row_iter(None).unwrap() {
        let row = row.unwrap();
        let fields: Vec<&Field> = row.get_column_iter().map(|(_, f)| f).collect();
        let text = |f: &Field| match f {
            Field::Str(s) => s.clone(),
            other => panic!("not a string: {other:?}"),
        };
        let long = |f: &Field| match f {
            Field::Long(v) => *v,
            other => panic!("not an i64: {other:?}"),
        };
        let double = |f: &Field| match f {
            Field::Double(v) => *v,
            other => panic!("not a double: {other:?}"),
        };
        rows.push(Row {
            time: long(fields[0]),
            host: text(fields[1]),
            kind: text(fields[2]),
            trace_id: match fields[3] {
                Field::ULong(v) => *v,
                other => panic!("not a u64: {other:?}"),
            },
            status: match fields[4] {
                Field::UByte(v) => *v,
                other => panic!("not a u8: {other:?}"),
            },
            latency_ns: long(fields[5]),
            probability: double(fields[6]),
            weight: double(fields[7]),
        });
    }
    (rows, reader)
}

#[test]
fn rings_and_archives_merge_by_time_with_documented_columns() {
    let dir = tempfile::tempdir().unwrap();
    let a = ring(dir.path(), "gw-a.ring", 0, 0.5, 300);
    let b = ring(dir.path(), "gw-b.ring", 5_000_000, 0.25, 300);
    let archive = dir.path().join("gw-b.archive");
    ok(&[
        "drain",
        b.to_str().unwrap(),
        "-o",
        archive.to_str().unwrap(),
    ]);
    let out = dir.path().join("out.parquet");
    ok(&[
        "export",
        a.to_str().unwrap(),
        archive.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--row-group-rows",
        "64",
    ]);
    let (rows, reader) = read(&out);
    // Every record of both files, each once.
    let mut expected = Vec::new();
    for (file, offset, rate) in [(&a, 0u64, 0.5), (&archive, 5_000_000, 0.25)] {
        let source = ringlat_read::Source::open(file).unwrap();
        source
            .for_each(|s| {
                let p = if s.kind == 0 { 1.0 } else { rate };
                assert_eq!(s.probability, p);
                expected.push(Row {
                    time: (T0 + offset + (s.trace_id - offset) * 10_000_000) as i64,
                    host: if offset == 0 { "gw-a" } else { "gw-b" }.to_string(),
                    kind: if s.kind == 0 { "market" } else { "limit" }.to_string(),
                    trace_id: s.trace_id,
                    status: u8::from((s.trace_id - offset) % 5 == 4),
                    latency_ns: (10 + (s.trace_id - offset) % 90) as i64 * 1_000,
                    probability: p,
                    weight: 1.0 / p,
                });
            })
            .unwrap();
    }
    expected.sort_by_key(|r| r.time);
    assert!(expected.len() > 400);
    assert!(
        rows.windows(2).all(|w| w[0].time <= w[1].time),
        "not by time"
    );
    assert_eq!(rows, expected);
    // Row groups of the size asked; the documented types; kind dictionary-encoded.
    let metadata = reader.metadata();
    assert_eq!(
        metadata.num_row_groups(),
        expected.len().div_ceil(64),
        "row groups"
    );
    let schema = metadata.file_metadata().schema_descr();
    let logical = |i: usize| schema.column(i).logical_type_ref().cloned();
    assert_eq!(
        logical(0),
        Some(LogicalType::Timestamp {
            is_adjusted_to_u_t_c: true,
            unit: TimeUnit::NANOS,
        })
    );
    assert_eq!(logical(2), Some(LogicalType::String));
    assert_eq!(
        logical(3),
        Some(LogicalType::Integer {
            bit_width: 64,
            is_signed: false
        })
    );
    assert_eq!(
        logical(4),
        Some(LogicalType::Integer {
            bit_width: 8,
            is_signed: false
        })
    );
    let kind_chunk = metadata.row_group(0).column(2);
    assert!(
        kind_chunk
            .encodings()
            .any(|e| e == Encoding::RLE_DICTIONARY || e == Encoding::PLAIN_DICTIONARY),
        "kind is not dictionary-encoded"
    );
}

#[test]
fn filters_and_labels() {
    let dir = tempfile::tempdir().unwrap();
    let a = ring(dir.path(), "a.ring", 0, 1.0, 100);
    let b = ring(dir.path(), "b.ring", 1, 1.0, 100);
    let out = dir.path().join("f.parquet");
    let since = "2026-11-21T16:00:00.5Z"; // T0 + 500 ms: records 50.. of each file
    ok(&[
        "export",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--label",
        "host1,host2",
        "--kind",
        "limit",
        "--since",
        since,
    ]);
    let (rows, _) = read(&out);
    assert_eq!(rows.len(), 50);
    assert!(rows.iter().all(|r| r.kind == "limit"));
    assert!(rows.iter().all(|r| r.time >= (T0 + 500_000_000) as i64));
    assert_eq!(rows.iter().filter(|r| r.host == "host1").count(), 25);
    assert_eq!(rows.iter().filter(|r| r.host == "host2").count(), 25);
    // --last N: the newest N, by time.
    ok(&[
        "export",
        a.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--last",
        "3",
    ]);
    let (rows, _) = read(&out);
    let traces: Vec<u64> = rows.iter().map(|r| r.trace_id).collect();
    assert_eq!(traces, [97, 98, 99]);
}

#[test]
fn failures_have_their_exit_codes_and_leave_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let a = ring(dir.path(), "a.ring", 0, 1.0, 10);
    let out = dir.path().join("x.parquet");
    let labels = ringcat(&[
        "export",
        a.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--label",
        "x,y",
    ]);
    assert_eq!(labels.status.code(), Some(1));
    let garbage = dir.path().join("garbage.ring");
    std::fs::write(&garbage, vec![7u8; 10_000]).unwrap();
    let bad = ringcat(&[
        "export",
        garbage.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(bad.status.code(), Some(2));
    let unwritable = ringcat(&[
        "export",
        a.to_str().unwrap(),
        "-o",
        dir.path().join("no/such/dir/x.parquet").to_str().unwrap(),
    ]);
    assert_eq!(unwritable.status.code(), Some(4));
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
}

#[test]
fn records_out_of_order_within_a_file_come_out_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("late.ring");
    let ring = Ring::builder(&path)
        .capacity(1024)
        .kind(0, "market")
        .max_skew(Duration::from_secs(100 * 365 * 86_400))
        .create()
        .unwrap();
    // Guards of long requests commit late with their start time: blocks of 10 in reverse.
    for block in 0..30u64 {
        for i in (0..10u64).rev() {
            let n = block * 10 + i;
            ring.record_at(0, n, 0, Duration::from_micros(5), T0 + n * 1_000);
        }
    }
    ring.close().unwrap();
    let out = dir.path().join("late.parquet");
    ok(&[
        "export",
        path.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    let (rows, _) = read(&out);
    let traces: Vec<u64> = rows.iter().map(|r| r.trace_id).collect();
    assert_eq!(traces, (0..300).collect::<Vec<u64>>());
}

/// The snapshot table's rows as (kind, column name -> value) with integers only.
fn read_snapshots(path: &Path) -> Vec<(String, std::collections::BTreeMap<String, Option<i64>>)> {
    let reader = SerializedFileReader::try_from(std::fs::File::open(path).unwrap()).unwrap();
    let mut rows = Vec::new();
    for row in reader.get_row_iter(None).unwrap() {
        let row = row.unwrap();
        let mut kind = String::new();
        let mut values = std::collections::BTreeMap::new();
        for (name, field) in row.get_column_iter() {
            match field {
                Field::Str(s) if name == "kind" => kind = s.clone(),
                Field::Long(v) => {
                    values.insert(name.clone(), Some(*v));
                }
                Field::Null => {
                    values.insert(name.clone(), None);
                }
                _ => {}
            }
        }
        rows.push((kind, values));
    }
    rows
}

#[test]
fn snapshots_go_to_a_second_table_and_add_up_to_the_counters() {
    let dir = tempfile::tempdir().unwrap();
    let ring = ring(dir.path(), "gw.ring", 0, 0.5, 500);
    let archive = dir.path().join("gw.archive");
    let (r, a) = (ring.to_str().unwrap(), archive.to_str().unwrap());
    ok(&["drain", r, "-o", a]);
    let out = dir.path().join("records.parquet");
    let snaps = dir.path().join("snapshots.parquet");
    ok(&[
        "export",
        a,
        "-o",
        out.to_str().unwrap(),
        "--snapshots",
        snaps.to_str().unwrap(),
    ]);
    let rows = read_snapshots(&snaps);
    assert!(
        !rows.is_empty(),
        "the drain wrote at least its final snapshot"
    );
    let total = |kind: &str, column: &str| -> i64 {
        rows.iter()
            .filter(|(k, _)| k == kind)
            .map(|(_, v)| v[column].unwrap())
            .sum()
    };
    for kind in ["market", "limit"] {
        assert_eq!(total(kind, "calls"), 250, "{kind}");
        assert_eq!(total(kind, "histogram_count"), 250, "{kind}");
        assert_eq!(
            total(kind, "written") + total(kind, "sampled_out"),
            250,
            "{kind}: every call written or sampled out"
        );
    }
    assert_eq!(total("market", "written"), 250);
    assert!(total("limit", "sampled_out") > 0, "limit is sampled at 50%");
    // Latencies 10..100 us: the interval's population p50 is inside that range.
    for (_, values) in &rows {
        if let Some(p50) = values["p50_ns"] {
            assert!((10_000..100_000).contains(&p50), "{p50}");
        }
    }
    // The records table is the same as without --snapshots.
    assert_eq!(read(&out).0.len(), 250 + total("limit", "written") as usize);

    // A ring has no snapshots: an empty table; --kind selects.
    let only_ring = dir.path().join("ring-snapshots.parquet");
    ok(&[
        "export",
        r,
        "-o",
        dir.path().join("r.parquet").to_str().unwrap(),
        "--snapshots",
        only_ring.to_str().unwrap(),
    ]);
    assert!(read_snapshots(&only_ring).is_empty());
    let market_only = dir.path().join("market-snapshots.parquet");
    ok(&[
        "export",
        a,
        "--kind",
        "market",
        "-o",
        dir.path().join("m.parquet").to_str().unwrap(),
        "--snapshots",
        market_only.to_str().unwrap(),
    ]);
    assert!(
        read_snapshots(&market_only)
            .iter()
            .all(|(kind, _)| kind == "market")
    );
}
