//! `ringcat cat` streams: a k-way merge of many files by time (ties keep file order), an
//! exact reorder window for archives with a lateness bound (version 3), a fixed window for
//! version-2 archives with late records counted on stderr, `--last` and `--since` seeking
//! to the same answer as a full scan, and JSON written directly with several files.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use ringlat_format::Record;
use ringlat_read::Decoded;
use ringlat_read::archive::{ArchiveWriter, RingInfo};
use std::path::Path;
use std::process::Command;

const BASE: u64 = 1_795_276_800_000_000_000;

fn ring(anchor: u64) -> RingInfo {
    RingInfo::synthetic(anchor, 1 << 31, 1_000, &["market", "li\"mit"])
}

/// Writes an archive of records at `times` (ns after BASE), in that file order, in batches
/// of 1000; trace id = `first_trace` + index.
fn write(path: &Path, times: &[u64], first_trace: u64) {
    let mut writer = ArchiveWriter::open(path, 1).unwrap();
    let records: Vec<Decoded> = times
        .iter()
        .enumerate()
        .map(|(i, t)| Decoded {
            position: i as u32,
            kind: (i % 2) as u8,
            class: 0,
            probability: if i % 2 == 0 { 1.0 } else { 0.25 },
            record: Record::new(first_trace + i as u64, BASE + t, 0, 3 + i as i32 % 50),
        })
        .collect();
    for batch in records.chunks(1000) {
        writer.append(&ring(first_trace + 1), batch).unwrap();
    }
}

/// Rewrites an archive's header as version 2 (no lateness bound).
fn make_version_2(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[8..12].copy_from_slice(&2u32.to_le_bytes());
    bytes[40..64].fill(0);
    std::fs::write(path, bytes).unwrap();
}

fn ringcat(args: &[&str]) -> (String, String) {
    ringcat_with(args, None)
}

/// [`ringcat`] with `RINGCAT_RING_WINDOW_LIMIT` set to `ring_window_limit`, if given.
fn ringcat_with(args: &[&str], ring_window_limit: Option<&str>) -> (String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ringcat"));
    command.args(args).env("TZ", "UTC").env("NO_COLOR", "1");
    if let Some(limit) = ring_window_limit {
        command.env("RINGCAT_RING_WINDOW_LIMIT", limit);
    }
    let output = command.output().unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "{args:?}: {stderr}");
    (String::from_utf8(output.stdout).unwrap(), stderr)
}

/// (nanotime, trace id) of each CSV row.
fn rows(csv: &str) -> Vec<(u64, u64)> {
    csv.lines()
        .skip(1)
        .map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            (cells[1].parse().unwrap(), cells[4].parse().unwrap())
        })
        .collect()
}

/// What a stable sort by time of every file's records (files in order) gives.
fn sorted(files: &[(&[u64], u64)]) -> Vec<(u64, u64)> {
    let mut all: Vec<(u64, u64)> = files
        .iter()
        .flat_map(|(times, first)| {
            times
                .iter()
                .enumerate()
                .map(move |(i, t)| (BASE + t, first + i as u64))
        })
        .collect();
    all.sort_by_key(|(t, _)| *t);
    all
}

#[test]
fn many_files_merge_by_time_with_ties_in_file_order() {
    let dir = tempfile::tempdir().unwrap();
    // Four files interleaved in time, each out of order within a few records, with equal
    // times across files.
    let mut files = Vec::new();
    for f in 0..4u64 {
        let times: Vec<u64> = (0..5000u64)
            .map(|i| 10 * (i - i % 2) + [0, 3, 7, 0][f as usize] + 25 * ((i * 7 + f) % 3))
            .collect();
        files.push((times, 1_000_000 * (f + 1)));
    }
    let mut paths = Vec::new();
    for (f, (times, first)) in files.iter().enumerate() {
        let path = dir.path().join(format!("f{f}.archive"));
        write(&path, times, *first);
        paths.push(path.display().to_string());
    }
    let mut args = vec!["cat", "--format", "csv"];
    args.extend(paths.iter().map(String::as_str));
    let (out, err) = ringcat(&args);
    let want = sorted(
        &files
            .iter()
            .map(|(t, f)| (t.as_slice(), *f))
            .collect::<Vec<_>>(),
    );
    assert_eq!(rows(&out), want);
    assert!(err.is_empty(), "{err}");
    // --since/--until seek and keep the same order.
    let (out, _) = ringcat(
        &[
            &args[..],
            &[
                "--since",
                "2026-11-21T16:00:00.000020Z",
                "--until",
                "2026-11-21T16:00:00.000030Z",
            ],
        ]
        .concat(),
    );
    let window: Vec<(u64, u64)> = want
        .iter()
        .copied()
        .filter(|(t, _)| (BASE + 20_000..BASE + 30_000).contains(t))
        .collect();
    assert!(!window.is_empty());
    assert_eq!(rows(&out), window);
    // --last N across files: the newest N of the same order.
    let (out, _) = ringcat(&[&args[..], &["--last", "777"]].concat());
    assert_eq!(rows(&out), want[want.len() - 777..]);
    // JSON with several files: a "file" key, names escaped, the same order.
    let mut json_args = vec!["cat", "--format", "json"];
    json_args.extend(paths.iter().map(String::as_str));
    let (out, _) = ringcat(&json_args);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), want.len());
    for (line, (time, trace)) in lines.iter().zip(&want) {
        assert_eq!(line["nanotime"], time.to_string());
        assert_eq!(line["trace_id"], trace.to_string());
        let kind = ["market", "li\"mit"][(trace % 2) as usize];
        assert_eq!(line["kind"], kind);
        let file = line["file"].as_str().unwrap();
        assert_eq!(paths[(trace / 1_000_000 - 1) as usize], file);
    }
}

#[test]
fn a_late_record_is_exact_with_a_bound_and_counted_without() {
    let dir = tempfile::tempdir().unwrap();
    // 20000 records in order, and one 15000 records late (beyond the 8192-record window).
    let mut times: Vec<u64> = (0..20_000u64).map(|i| 1000 * i + 500).collect();
    times.insert(18_000, 1000 * 3000);
    let path = dir.path().join("late.archive");
    write(&path, &times, 0);
    let p = path.to_str().unwrap();
    let want = sorted(&[(&times, 0)]);
    let (out, err) = ringcat(&["cat", p, "--format", "csv"]);
    assert_eq!(rows(&out), want, "version 3: exact");
    assert!(err.is_empty(), "{err}");
    // The late record is found by --since (the bound keeps the search from skipping it) and
    // by --last.
    let (out, _) = ringcat(&[
        "cat",
        p,
        "--format",
        "csv",
        "--since",
        "2026-11-21T16:00:00.0029995Z",
        "--until",
        "2026-11-21T16:00:00.0030015Z",
    ]);
    let rows_found = rows(&out);
    assert_eq!(rows_found.len(), 3, "{out}");
    assert!(rows_found.contains(&(BASE + 3_000_000, 18_000)));
    make_version_2(&path);
    let (out, err) = ringcat(&["cat", p, "--format", "csv"]);
    let got = rows(&out);
    assert_eq!(got.len(), want.len());
    let mut resorted = got.clone();
    resorted.sort_by_key(|(t, _)| *t);
    assert_eq!(resorted, want, "every record, once");
    assert_ne!(got, want, "the late record keeps its place");
    assert!(
        err.contains("1 record(s) came later than their file's reorder window allows (8192"),
        "{err}"
    );
}

/// A ring whose records are out of time order (`record_at`): one early slot holds one of the
/// newest times, a late slot (read by the lateness pass's second thread) the oldest, which
/// only the join of the threads' runs measures, every 97th record falls 5 µs behind, and pairs
/// share a time. `cat` streams it in time order, ties in ring order, as a stable sort
/// of everything would; `--last N` (read backwards once the ring's lateness is measured)
/// gives that order's last N; with a filter, and merged with an archive; with the writer
/// alive (read in place) and after it closed; and read whole and sorted, where the window
/// would hold more records than the limit.
#[test]
fn a_rings_records_out_of_order_come_out_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.ring");
    let ring = ringlat::Ring::builder(&path)
        .capacity(1 << 18)
        .kind(0, "market")
        .kind(1, "li\"mit")
        .max_skew(std::time::Duration::from_secs(100 * 365 * 86_400))
        .create()
        .unwrap();
    // More than two threads' minimum: the lateness pass's runs are joined.
    let count = 140_000u64;
    let times: Vec<u64> = (0..count)
        .map(|i| match i {
            50 => 10 * (count - 8) + 5,
            100_000 => 0,
            _ => 10 * (i - i % 2) + 5_000 - if i.is_multiple_of(97) { 5_000 } else { 0 },
        })
        .collect();
    for (i, time) in times.iter().enumerate() {
        let i = i as u64;
        ring.record_at(
            (i % 2) as u8,
            i,
            u8::from(i.is_multiple_of(3)),
            std::time::Duration::from_nanos(1_000 + i % 700),
            BASE + time,
        );
    }
    let archive = dir.path().join("a.archive");
    let archive_times: Vec<u64> = (0..5_000u64).map(|i| 80 * i + 3).collect();
    write(&archive, &archive_times, 1_000_000);
    let ring_path = path.display().to_string();
    let archive_path = archive.display().to_string();
    let want = sorted(&[(&times, 0)]);
    let want_merged = sorted(&[(&times, 0), (&archive_times, 1_000_000)]);
    let with_status: Vec<(u64, u64)> = want.iter().copied().filter(|(_, t)| t % 3 == 0).collect();
    let check = |when: &str, limit: Option<&str>| {
        let ringcat = |args: &[&str]| ringcat_with(args, limit);
        let (out, err) = ringcat(&["cat", "--format", "csv", &ring_path]);
        assert_eq!(rows(&out), want, "{when}");
        assert!(err.is_empty(), "{when}: {err}");
        let (out, _) = ringcat(&["cat", "--format", "csv", &ring_path, &archive_path]);
        assert_eq!(rows(&out), want_merged, "{when}");
        let (out, _) = ringcat(&["cat", "--format", "csv", "--status", "1", &ring_path]);
        assert_eq!(rows(&out), with_status, "{when}");
        for n in [1usize, 9, 10, 5_000, 139_999, 140_000, 150_000] {
            let n_text = n.to_string();
            let (out, _) = ringcat(&["cat", "--format", "csv", "--last", &n_text, &ring_path]);
            assert_eq!(
                rows(&out),
                want[want.len().saturating_sub(n)..],
                "{when}: --last {n}"
            );
        }
        let (out, _) = ringcat(&[
            "cat", "--format", "csv", "-n", "3", "--status", "1", &ring_path,
        ]);
        assert_eq!(rows(&out), with_status[with_status.len() - 3..], "{when}");
        let (out, _) = ringcat(&[
            "cat",
            "--format",
            "csv",
            "-n",
            "700",
            &ring_path,
            &archive_path,
        ]);
        assert_eq!(rows(&out), want_merged[want_merged.len() - 700..], "{when}");
    };
    check("writer alive", None);
    // A window expected to hold more than the limit: the ring read whole and sorted.
    check("writer alive, sorted whole", Some("1000"));
    ring.close().unwrap();
    check("writer gone", None);
}
