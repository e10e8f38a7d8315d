//! `slice` and `plot` in fewer passes (issue 11): their output equals an independent
//! computation over the records (`cat --format json`, `pct`), and the fallback taken when the
//! undecided records exceed the candidate bound (`RINGCAT_CANDIDATE_LIMIT`, set tiny here), and
//! the bins' passes taken when the one-pass tally is not exact (`RINGCAT_DISTINCT_BUDGET` 0),
//! print exactly what the normal path prints.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use ringlat_format::Record;
use ringlat_read::Decoded;
use ringlat_read::archive::{ArchiveWriter, RingInfo};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const T0: u64 = 1_795_276_800_000_000_000; // 2026-11-21T16:00:00Z
const WEIGHT_ONE: f64 = 4_294_967_296.0;

fn lcg(state: &mut u64) -> u64 {
    *state = state
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    *state >> 11
}

/// An archive of `count` records: three kinds sampled at 100%, 12.5% and 25% (exact in any
/// float, as `cat` prints them), four statuses,
/// latencies in ns with a long tail, half of them on a 1 us grid (ties), 5 records per us.
fn archive(path: &Path, count: u64) {
    let mut writer = ArchiveWriter::open(path, T0).unwrap();
    let ring = RingInfo::synthetic(T0, 1 << 31, 1, &["market", "limit", "cancel"]);
    let mut state = 11u64;
    let batch: Vec<Decoded> = (0..count)
        .map(|i| {
            let kind = (lcg(&mut state) % 3) as u8;
            let uniform = lcg(&mut state) as f64 / (1u64 << 53) as f64;
            let mut nanos = (20_000.0 * (1.0 + 3.0 * -(1.0 - uniform).ln())) as i32;
            if lcg(&mut state).is_multiple_of(2) {
                nanos -= nanos % 1_000;
            }
            Decoded {
                position: i as u32,
                kind,
                class: 0,
                probability: [1.0, 0.125, 0.25][kind as usize],
                record: Record::new(i, T0 + (i / 5) * 1_000, (lcg(&mut state) % 4) as u8, nanos),
            }
        })
        .collect();
    writer.append(&ring, &batch).unwrap();
}

/// Runs ringcat; with `limit`, the candidate bound is `limit` and the tally's budget of
/// distinct values 0 (so that the tally is never exact and the bins' passes run).
fn ringcat(args: &[&str], limit: Option<&str>) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ringcat"));
    command.args(args).env("NO_COLOR", "1").env("TZ", "UTC");
    match limit {
        Some(limit) => command
            .env("RINGCAT_CANDIDATE_LIMIT", limit)
            .env("RINGCAT_DISTINCT_BUDGET", "0"),
        None => command
            .env_remove("RINGCAT_CANDIDATE_LIMIT")
            .env_remove("RINGCAT_DISTINCT_BUDGET"),
    };
    let output = command.output().expect("run ringcat");
    assert!(
        output.status.success(),
        "ringcat {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The same output with the normal bound and with bounds that force the fallback pass.
fn same_with_fallback(args: &[&str]) -> String {
    let normal = ringcat(args, None);
    for limit in ["0", "3", "1000000"] {
        let fallback = ringcat(args, Some(limit));
        // Not the whole outputs on a failure: an SVG is long.
        let differs = normal
            .lines()
            .zip(fallback.lines())
            .position(|(a, b)| a != b);
        assert!(
            fallback == normal,
            "{args:?} with RINGCAT_CANDIDATE_LIMIT={limit}: line {differs:?} differs"
        );
    }
    normal
}

/// One record of `cat --format json`.
struct Rec {
    trace: u64,
    nanotime: u64,
    ns: i64,
    kind: String,
    status: u64,
    weight: u128,
}

fn records(path: &str) -> Vec<Rec> {
    ringcat(&["cat", path, "--format", "json"], None)
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            let p = v["p"].as_f64().unwrap();
            Rec {
                trace: v["trace_id"].as_str().unwrap().parse().unwrap(),
                nanotime: v["nanotime"].as_str().unwrap().parse().unwrap(),
                ns: v["latency_ns"].as_i64().unwrap(),
                kind: v["kind"].as_str().unwrap().to_string(),
                status: v["status"].as_u64().unwrap(),
                weight: if p < 1.0 {
                    (WEIGHT_ONE / p).round() as u128
                } else {
                    WEIGHT_ONE as u128
                },
            }
        })
        .collect()
}

/// Nearest-rank weighted percentile `numerator / denominator` by sorting.
fn percentile(records: &[Rec], numerator: u128, denominator: u128) -> i64 {
    let mut sorted: Vec<(i64, u128)> = records.iter().map(|r| (r.ns, r.weight)).collect();
    sorted.sort();
    let total: u128 = sorted.iter().map(|r| r.1).sum();
    let target = (total * numerator).div_ceil(denominator).max(1);
    let mut cumulative = 0;
    for (ns, weight) in sorted {
        cumulative += weight;
        if cumulative >= target {
            return ns;
        }
    }
    panic!("no records")
}

/// `slice --format json` against the records above `threshold`, the slowest first (the later
/// record first among equals), grouped by kind and status.
fn check_slice(json: &str, records: &[Rec], threshold: i64, limit: usize, what: &str) {
    let v: Value = serde_json::from_str(json).unwrap();
    assert_eq!(v["threshold"]["ns"].as_i64(), Some(threshold), "{what}");
    let mut above: Vec<(i64, u64, usize)> = records
        .iter()
        .enumerate()
        .filter(|(_, r)| r.ns > threshold)
        .map(|(i, r)| (r.ns, r.nanotime, i))
        .collect();
    assert_eq!(
        v["tail"]["records"].as_u64(),
        Some(above.len() as u64),
        "{what}"
    );
    let weight: u128 = above.iter().map(|a| records[a.2].weight).sum();
    assert_eq!(
        v["tail"]["events"].as_f64(),
        Some(weight as f64 / WEIGHT_ONE),
        "{what}"
    );
    let mut groups: BTreeMap<(String, u64), u64> = BTreeMap::new();
    for (_, _, i) in &above {
        *groups
            .entry((records[*i].kind.clone(), records[*i].status))
            .or_default() += 1;
    }
    let printed: BTreeMap<(String, u64), u64> = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let key = (
                g["kind"].as_str().unwrap().to_string(),
                g["status"].as_u64().unwrap(),
            );
            (key, g["records"].as_u64().unwrap())
        })
        .collect();
    assert_eq!(printed, groups, "{what}");
    above.sort_by(|a, b| b.cmp(a));
    above.truncate(limit);
    let expected: Vec<u64> = above.iter().map(|a| records[a.2].trace).collect();
    let listed: Vec<u64> = v["listed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["trace_id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(listed, expected, "{what}");
}

#[test]
fn slice_in_fewer_passes_lists_what_a_brute_force_lists() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.archive");
    archive(&path, 20_000);
    let path = path.to_str().unwrap();
    let records = records(path);
    assert_eq!(records.len(), 20_000);
    // A percentile: two passes (the fallback: three), the threshold the brute force's.
    for (label, numerator, denominator) in [
        ("p0", 0, 100),
        ("p50", 50, 100),
        ("p90", 90, 100),
        ("p99", 99, 100),
        ("p99.9", 999, 1000),
        ("p100", 100, 100),
    ] {
        let threshold = percentile(&records, numerator, denominator);
        for limit in ["7", "100000"] {
            let args = [
                "slice",
                path,
                "--above",
                label,
                "--by",
                "kind,status",
                "--limit",
                limit,
            ];
            let json = same_with_fallback(&[&args[..], &["--format", "json"]].concat());
            let what = format!("{label} --limit {limit}");
            check_slice(&json, &records, threshold, limit.parse().unwrap(), &what);
        }
        let args = ["slice", path, "--above", label, "--by", "kind"];
        same_with_fallback(&args);
        same_with_fallback(&[&args[..], &["--order", "recent", "--format", "csv"]].concat());
    }
    // A latency: one pass.
    for (above, threshold) in [("50us", 50_000), ("1ms", 1_000_000), ("0ns", 0)] {
        let args = [
            "slice",
            path,
            "--above",
            above,
            "--by",
            "kind,status",
            "--limit",
            "25",
            "--format",
            "json",
        ];
        check_slice(&ringcat(&args, None), &records, threshold, 25, above);
    }
}

/// The y of a latency in a panel, as the plot computes it.
fn y(ns: i64, top: f64, lo: f64, hi: f64) -> String {
    let v = (ns.max(1) as f64).log10().clamp(lo, hi);
    format!("{:.1}", top + 400.0 - (v - lo) / (hi - lo) * 400.0)
}

#[test]
fn plot_in_fewer_passes_draws_what_the_records_say() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.archive");
    archive(&path, 40_000);
    let path = path.to_str().unwrap();
    let records = records(path);
    for window in [None, Some("10ms")] {
        let mut args = vec!["plot", path, "-o", "-"];
        args.extend(window.map(|w| ["--window", w]).iter().flatten());
        let svg = same_with_fallback(&args);
        // The P99 of each kind, and of each window and kind, from `pct`.
        let window = window.unwrap_or("1ms"); // 40,000 records 0.2 ns apart: 8 ms / 60 < 1 ms
        let pct = |extra: &[&str]| -> Vec<Value> {
            let mut args = vec!["pct", path, "--by", "kind", "--percentiles", "99"];
            args.extend(extra);
            args.extend(["--format", "json"]);
            let text = ringcat(&args, None);
            serde_json::from_str::<Value>(&text)
                .unwrap()
                .as_array()
                .unwrap()
                .clone()
        };
        let p99_of = |row: &Value| row["percentiles"]["99"].as_i64().unwrap();
        let kind_p99: BTreeMap<String, i64> = pct(&[])
            .iter()
            .map(|row| {
                (
                    row["group"]["kind"].as_str().unwrap().to_string(),
                    p99_of(row),
                )
            })
            .collect();
        let kinds = ["market", "limit", "cancel"];
        // The points: every stride-th record and those above their kind's P99.
        let stride = (records.len() as u64).div_ceil(2500) as usize;
        let mut points: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, r) in records.iter().enumerate() {
            if i % stride == 0 || r.ns > kind_p99[&r.kind] {
                *points.entry(r.kind.as_str()).or_default() += 1;
            }
        }
        let groups: Vec<&str> = svg.split("<g fill=").skip(1).collect();
        for (kind, group) in kinds.iter().zip(&groups) {
            let drawn = group
                .split("</g>")
                .next()
                .unwrap()
                .matches("<circle")
                .count();
            assert_eq!(drawn, points[kind], "points of {kind}, window {window}");
        }
        // The lines: each window's P99, in time order, per kind.
        let min_positive = records
            .iter()
            .map(|r| r.ns)
            .filter(|ns| *ns > 0)
            .min()
            .unwrap();
        let max = records.iter().map(|r| r.ns).max().unwrap();
        let lo = (min_positive as f64).log10().floor();
        let hi = (max as f64).log10().ceil().max(lo + 1.0);
        let lines: Vec<&str> = svg
            .lines()
            .filter(|line| line.starts_with("<polyline"))
            .collect();
        let windows = pct(&["--window", window]);
        for (kind, line) in kinds.iter().zip(&lines) {
            let expected: Vec<String> = windows
                .iter()
                .filter(|row| row["group"]["kind"] == *kind)
                .map(|row| y(p99_of(row), 40.0, lo, hi))
                .collect();
            let drawn: Vec<String> = line
                .split('"')
                .nth(1)
                .unwrap()
                .split(' ')
                .map(|xy| xy.split(',').nth(1).unwrap().to_string())
                .collect();
            assert_eq!(drawn, expected, "P99 line of {kind}, window {window}");
        }
        // The spectrum: its vertices 0, 5 and 10 are P0, P50 and P75.
        let spectrum = pct(&["--percentiles", "0,50,75"]);
        for (kind, line) in kinds.iter().zip(&lines[3..]) {
            let row = spectrum
                .iter()
                .find(|r| r["group"]["kind"] == *kind)
                .unwrap();
            let vertices: Vec<&str> = line.split('"').nth(1).unwrap().split(' ').collect();
            for (at, q) in [(0, "0"), (5, "50"), (10, "75")] {
                let ns = row["percentiles"][q].as_i64().unwrap();
                let drawn = vertices[at].split(',').nth(1).unwrap();
                assert_eq!(drawn, y(ns, 550.0, lo, hi), "p{q} of {kind}");
            }
        }
    }
}

/// An archive of `count` records 200 ns apart whose times come up to `jitter` ns late (its
/// lateness bound, which the writer records, is up to `jitter`): 3 kinds, 4 statuses, µs
/// latencies with a tail.
fn late_archive(path: &Path, count: u64, jitter: u64) {
    late_archive_part(path, 0..count, jitter);
}

/// The records `part` of [`late_archive`]'s sequence (the same records whatever the part).
fn late_archive_part(path: &Path, part: std::ops::Range<u64>, jitter: u64) {
    let mut writer = ArchiveWriter::open(path, T0).unwrap();
    let ring = RingInfo::synthetic(T0, 1 << 31, 1, &["market", "limit", "cancel"]);
    let mut state = 5u64;
    let batch: Vec<Decoded> = (0..part.end)
        .map(|i| {
            let kind = (lcg(&mut state) % 3) as u8;
            let late = lcg(&mut state) % (jitter + 1);
            let tail = if lcg(&mut state).is_multiple_of(50) {
                40
            } else {
                1
            };
            let micros = (lcg(&mut state) % 300 + 10) as i32 * tail;
            Decoded {
                position: i as u32,
                kind,
                class: 0,
                probability: [1.0, 0.125, 0.25][kind as usize],
                record: Record::new(
                    i,
                    (T0 + i * 200).saturating_sub(late),
                    (lcg(&mut state) % 4) as u8,
                    micros * 1_000,
                ),
            }
        })
        .collect::<Vec<_>>()
        .into_iter()
        .skip(part.start as usize)
        .collect();
    writer.append(&ring, &batch).unwrap();
}

/// `pct --window`'s rows without the mean (the two-pass path sums it in another order, up to
/// float rounding).
fn window_rows(args: &[&str], budget: &str) -> (Vec<Value>, String) {
    let (stdout, stderr) = ringcat_within(args, Some(budget));
    let mut rows: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    for row in &mut rows {
        row.as_object_mut().unwrap().remove("mean");
    }
    (rows, stderr)
}

/// Runs ringcat (which must succeed) with a tally budget of `budget` distinct values (`None`:
/// the default): its stdout and stderr.
fn ringcat_within(args: &[&str], budget: Option<&str>) -> (String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ringcat"));
    command.args(args).env("TZ", "UTC");
    match budget {
        Some(budget) => command.env("RINGCAT_DISTINCT_BUDGET", budget),
        None => command.env_remove("RINGCAT_DISTINCT_BUDGET"),
    };
    let output = command.output().expect("run ringcat");
    assert!(output.status.success(), "ringcat {args:?} failed");
    (
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A copy of the archive at `path` whose header claims that no record is late (bound 0),
/// though the writer recorded a lateness: a file that lies about its bound.
fn lying_copy(path: &Path, liar: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    assert_ne!(bytes[48..56], [0; 8], "the writer recorded the lateness");
    bytes[48..56].copy_from_slice(&0u64.to_le_bytes());
    std::fs::write(liar, bytes).unwrap();
}

/// `pct --window` on one archive closes each window once the records are past it by the
/// archive's lateness bound, so a budget far below the values of all windows stays exact in
/// one pass: its rows equal the two-pass path's (budget 0), for records in time order and
/// records up to 30 µs late. A header that lies about the bound (0 while records come late)
/// is caught: counted again, said on stderr, the same rows.
#[test]
fn pct_windows_closed_as_they_end_equal_the_bins_passes() {
    let dir = tempfile::tempdir().unwrap();
    for jitter in [0u64, 30_000] {
        let path = dir.path().join(format!("late-{jitter}.archive"));
        late_archive(&path, 300_000, jitter);
        let file = path.to_str().unwrap();
        let args = [
            "pct",
            file,
            "--by",
            "kind,status",
            "--window",
            "2ms",
            "--format",
            "json",
        ];
        let (reference, _) = window_rows(&args, "0");
        assert!(
            reference.len() >= 30 * 3 * 4,
            "jitter {jitter}: {} rows",
            reference.len()
        );
        // 300 distinct values a group, 360 groups: about 10^5 in all, 4000 per window.
        let (closed, stderr) = window_rows(&args, "5000");
        assert!(closed == reference, "jitter {jitter}: the rows differ");
        assert!(stderr.is_empty(), "{stderr}");
        if jitter > 0 {
            // The same file claiming that no record is late.
            let liar = dir.path().join("liar.archive");
            lying_copy(&path, &liar);
            let mut args = args;
            args[1] = liar.to_str().unwrap();
            let (again, stderr) = window_rows(&args, "5000");
            assert!(again == reference, "the lying file's rows differ");
            assert!(stderr.contains("lateness bound"), "{stderr}");
        }
    }
}

/// `plot` of a whole archive guesses its window from the archive's time span and counts the
/// windows in its first pass, closing them on the lateness bound: the SVG equals the one
/// drawn without the guess (a filter that keeps every record: the window known after pass
/// 1), the one of the bins' passes (budget 0), and the one of a copy whose header lies about
/// the bound (counted again, said on stderr).
#[test]
fn plot_windows_guessed_or_not_draw_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("late.archive");
    late_archive(&path, 200_000, 30_000);
    let plot = |file: &Path, extra: &[&str], budget: Option<&str>| {
        let mut args = vec!["plot", file.to_str().unwrap(), "-o", "-"];
        args.extend(extra);
        ringcat_within(&args, budget)
    };
    // The window is guessed (the archive's span settles in its first entries).
    let reader = ringlat_read::archive::ArchiveReader::open(&path).unwrap();
    assert!(reader.time_span_hint().unwrap().is_some());
    let (guessed, stderr) = plot(&path, &[], None);
    assert!(stderr.is_empty(), "{stderr}");
    assert!(guessed.contains("<polyline"));
    let (unguessed, _) = plot(&path, &["--status", "0,1,2,3"], None);
    assert!(unguessed == guessed, "the guessed window drew otherwise");
    let (binned, _) = plot(&path, &[], Some("0"));
    assert!(binned == guessed, "the bins' passes drew otherwise");
    let liar = dir.path().join("liar.archive");
    lying_copy(&path, &liar);
    let (lied, stderr) = plot(&liar, &[], Some("5000"));
    assert!(lied == guessed, "the lying file drew otherwise");
    assert!(stderr.contains("lateness bound"), "{stderr}");
}

/// `pct --window` over a day's archives read in turn closes windows on the stream's bound: two
/// files of one sequence of late records give the rows of the single file, in order and
/// reversed (a larger bound: windows close later), exactly in one pass (a budget far below
/// all windows' values) and by the bins' passes alike.
#[test]
fn pct_windows_over_several_archives_equal_one_archive() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole.archive");
    let (first, second) = (dir.path().join("a.archive"), dir.path().join("b.archive"));
    late_archive_part(&whole, 0..300_000, 30_000);
    late_archive_part(&first, 0..150_000, 30_000);
    late_archive_part(&second, 150_000..300_000, 30_000);
    let args = |files: &[&Path]| {
        let mut args: Vec<String> = vec!["pct".into()];
        args.extend(files.iter().map(|f| f.to_str().unwrap().to_string()));
        args.extend(
            ["--by", "kind,status", "--window", "2ms", "--format", "json"].map(String::from),
        );
        args
    };
    let rows = |files: &[&Path], budget: &str| {
        let args = args(files);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (rows, stderr) = window_rows(&args, budget);
        assert!(stderr.is_empty(), "{stderr}");
        rows
    };
    let reference = rows(&[&whole], "0");
    for files in [[&first, &second], [&second, &first]] {
        let files: Vec<&Path> = files.iter().map(|f| f.as_path()).collect();
        assert!(rows(&files, "5000") == reference, "{files:?}: one pass");
        assert!(
            rows(&files, "0") == reference,
            "{files:?}: the bins' passes"
        );
    }
}

/// `pct --format hgrm` by window counts the records at or below each value the same whether
/// the tally knew every value or a pass over the records counts them (budget 0): that pass
/// groups the records by window, so it reads their times though its fold needs only the
/// latency otherwise.
#[test]
fn hgrm_by_window_counts_the_same_through_the_counting_pass() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.archive");
    archive(&path, 20_000);
    let written = |budget: Option<&str>, out: &str| {
        let out = dir.path().join(out);
        let args = [
            "pct",
            path.to_str().unwrap(),
            "--by",
            "kind",
            "--window",
            "1ms",
        ];
        let out_args = ["--format", "hgrm", "-o", out.to_str().unwrap()];
        ringcat(&[&args[..], &out_args[..]].concat(), budget);
        let mut files = BTreeMap::new();
        for entry in std::fs::read_dir(&out).unwrap() {
            let entry = entry.unwrap();
            let text = std::fs::read_to_string(entry.path()).unwrap();
            files.insert(entry.file_name().into_string().unwrap(), text);
        }
        files
    };
    let exact = written(None, "exact");
    // 20_000 records 0.2 us apart: 4 windows of 1 ms, 3 kinds in each.
    assert_eq!(exact.len(), 12, "{:?}", exact.keys());
    assert!(written(Some("0"), "counted") == exact);
}

/// A ring of `count` records 1.2 ms apart (a minute) whose writer stays alive until it is
/// dropped, 3 kinds, µs latencies with a tail, and `late` (index, ns behind its place) records
/// out of time order.
fn late_ring(path: &Path, count: u64, late: &[(u64, u64)]) -> ringlat::Ring {
    let ring = ringlat::Ring::builder(path)
        .capacity(1 << 16)
        .kind(0, "market")
        .kind(1, "limit")
        .kind(2, "cancel")
        .max_skew(std::time::Duration::from_secs(100 * 365 * 86_400))
        .create()
        .unwrap();
    let mut state = 9u64;
    for i in 0..count {
        let behind = late
            .iter()
            .find(|(at, _)| *at == i)
            .map_or(0, |(_, by)| *by);
        let tail = if lcg(&mut state).is_multiple_of(50) {
            40
        } else {
            1
        };
        let micros = (lcg(&mut state) % 300 + 10) * tail;
        ring.record_at(
            (lcg(&mut state) % 3) as u8,
            i,
            (lcg(&mut state) % 4) as u8,
            std::time::Duration::from_micros(micros),
            T0 + 10_000_000_000 + i * 1_200_000 - behind,
        );
    }
    ring
}

/// `plot` of one ring guesses its span from its first and last records and a lateness bound
/// (a ring carries none), so that it counts the windows in its first pass and closes them:
/// the SVG equals the one drawn without the guesses (a filter that keeps every record) and
/// the bins' passes' (budget 0), whether the guesses hold, the bound does not (a record 5 s
/// late: counted again, quietly: the bound was a guess), or the span does not (the oldest
/// record in the middle of the ring); the writer alive, and gone.
#[test]
fn plot_of_a_ring_guesses_its_span_and_bound_and_draws_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[(u64, u64)]); 3] = [
        ("in order", &[]),
        ("a record 5 s late", &[(30_000, 5_000_000_000)]),
        ("the oldest in the middle", &[(25_000, 40_000_000_000)]),
    ];
    for (what, late) in cases {
        let path = dir.path().join("late.ring");
        let _ = std::fs::remove_file(&path);
        let mut ring = Some(late_ring(&path, 50_000, late));
        let file = path.to_str().unwrap();
        let plot = |extra: &[&str], budget: Option<&str>| {
            let mut args = vec!["plot", file, "-o", "-"];
            args.extend(extra);
            ringcat_within(&args, budget)
        };
        for writer in ["alive", "gone"] {
            let (guessed, stderr) = plot(&[], Some("5000"));
            assert!(stderr.is_empty(), "{what}, writer {writer}: {stderr}");
            assert!(guessed.contains("<polyline"));
            let (unguessed, _) = plot(&["--status", "0,1,2,3"], None);
            assert!(
                unguessed == guessed,
                "{what}, writer {writer}: the guesses drew otherwise"
            );
            let (binned, _) = plot(&[], Some("0"));
            assert!(
                binned == guessed,
                "{what}, writer {writer}: the bins' passes drew otherwise"
            );
            if let Some(ring) = ring.take() {
                ring.close().unwrap();
            }
        }
    }
}

/// `slice --above pNN` over a ring reads status and delta alone in its pass (a live ring's
/// other pieces cost a tenth of it) and the listed records' trace id and time after it, at
/// their units: it lists what a brute force over `cat`'s records lists, the writer alive and
/// gone, for a tail of a few records and one of half the ring.
#[test]
fn slice_of_a_ring_lists_what_a_brute_force_lists() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.ring");
    let mut ring = Some(late_ring(&path, 50_000, &[(20_000, 3_000_000)]));
    let file = path.to_str().unwrap();
    for writer in ["alive", "gone"] {
        let records = records(file);
        assert_eq!(records.len(), 50_000);
        for (label, numerator, denominator) in [("p99.9", 999, 1000), ("p50", 50, 100)] {
            let threshold = percentile(&records, numerator, denominator);
            let args = [
                "slice",
                file,
                "--above",
                label,
                "--by",
                "kind,status",
                "--limit",
                "100000",
                "--format",
                "json",
            ];
            let json = ringcat(&args, None);
            check_slice(
                &json,
                &records,
                threshold,
                100_000,
                &format!("{label}, writer {writer}"),
            );
        }
        if let Some(ring) = ring.take() {
            ring.close().unwrap();
        }
    }
}
