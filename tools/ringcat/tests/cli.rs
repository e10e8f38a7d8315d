//! ringcat as users run it: a separate process over rings the library wrote (some live),
//! archives, corrupt files. Golden files for every output format live in tests/golden
//! (regenerate with `UPDATE_GOLDEN=1 cargo test -p ringcat --test cli`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use common::ringcat;
use ringlat::{Decision, Ring};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A 64-bit field of the JSON schema, emitted as a decimal string.
fn u64_of(value: &Value) -> u64 {
    value
        .as_str()
        .unwrap_or_else(|| panic!("{value} is not a string"))
        .parse()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

fn ok(args: &[&str]) -> String {
    let output = ringcat(args);
    assert!(
        output.status.success(),
        "ringcat {args:?} failed: {}",
        stderr(&output)
    );
    stdout(&output)
}

const T0: u64 = 1_795_276_800_000_000_000; // 2026-11-21T16:00:00Z

/// A closed ring with fixed timestamps, trace ids and latencies: market 100%, limit 50% by
/// trace id, keep-if-slow 5 ms. Deterministic, so its outputs can be golden.
fn fixed_ring(dir: &Path) -> PathBuf {
    let path = dir.join("fixed.ring");
    let ring = Ring::builder(&path)
        .capacity(1024)
        .kind(0, "market")
        .kind(1, "limit")
        .rate(1, 0.5)
        .decision(Decision::TraceId)
        .keep_if_slower_than(Duration::from_millis(5))
        .max_skew(Duration::from_secs(100 * 365 * 86_400))
        .create()
        .unwrap();
    for i in 0..200u64 {
        let kind = (i % 2) as u8;
        let micros = 20 + (i * 37) % 180 + if i % 50 == 7 { 8_000 } else { 0 };
        let status = u8::from(i % 10 == 3);
        ring.record_at(
            kind,
            1_000 + i,
            status,
            Duration::from_micros(micros),
            T0 + i * 50_000_000, // 20 per second over 10 s
        );
    }
    ring.close().unwrap();
    path
}

fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("missing golden file {}", path.display()));
    assert_eq!(actual, expected, "output differs from {}", path.display());
}

#[test]
fn golden_outputs_of_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let ring = fixed_ring(dir.path());
    let ring = ring.to_str().unwrap();
    let archive = dir.path().join("fixed.archive");
    let archive = archive.to_str().unwrap();
    // The archive reads exactly like the ring.
    let before = ok(&["cat", ring, "--format", "json"]);
    ok(&["drain", ring, "-o", archive]);
    assert_eq!(
        ok(&["cat", archive, "--format", "json"]).lines().count(),
        before.lines().count()
    );
    for (name, args) in [
        ("cat.txt", vec!["cat", archive, "--last", "5"]),
        (
            "cat.json",
            vec!["cat", archive, "--format", "json", "--last", "3"],
        ),
        (
            "cat.csv",
            vec![
                "cat", archive, "--format", "csv", "--kind", "limit", "--last", "3",
            ],
        ),
        ("pct.txt", vec!["pct", archive, "--by", "kind"]),
        (
            "pct_window.txt",
            vec![
                "pct",
                archive,
                "--window",
                "5s",
                "--by",
                "kind,status",
                "--unit",
                "ms",
            ],
        ),
        (
            "pct.json",
            // --sampled: the population's windows follow the drain's snapshot times (now).
            vec![
                "pct",
                archive,
                "--by",
                "kind",
                "--window",
                "5s",
                "--sampled",
            ],
        ),
        (
            "pct.csv",
            vec![
                "pct",
                archive,
                "--by",
                "status",
                "--format",
                "csv",
                "--percentiles",
                "50,99",
            ],
        ),
        ("pct.hgrm", vec!["pct", archive, "--format", "hgrm"]),
        ("pct_raw.txt", vec!["pct", archive, "--raw"]),
        (
            "slice.txt",
            vec!["slice", archive, "--above", "p95", "--limit", "5"],
        ),
        (
            "slice.json",
            vec![
                "slice", archive, "--above", "1ms", "--by", "status", "--format", "json",
                "--limit", "2",
            ],
        ),
    ] {
        let mut args = args;
        if name == "pct.json" {
            args.extend(["--format", "json"]);
        }
        golden(name, &ok(&args));
    }
}

#[test]
fn weighted_percentiles_match_the_population_and_raw_ones_are_biased() {
    // Market (100%) is fast, limit (10%) is slow and common, cancel (50%) in between; calls
    // over 3 ms are always kept. The true population percentiles are known here.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.ring");
    let ring = Ring::builder(&path)
        .capacity(1 << 20)
        .kind(0, "market")
        .kind(1, "limit")
        .rate(1, 0.1)
        .kind(2, "cancel")
        .rate(2, 0.5)
        .decision(Decision::TraceId)
        .keep_if_slower_than(Duration::from_millis(3))
        .delta_unit(ringlat::DeltaUnit::Nanos)
        .create()
        .unwrap();
    let mut population = Vec::new();
    let mut state = 7u64;
    for trace in 0..400_000u64 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        let uniform = (state >> 11) as f64 / (1u64 << 53) as f64;
        let kind = [0u8, 1, 1, 1, 2, 2][(trace % 6) as usize];
        let base = [40_000.0, 400_000.0, 90_000.0][kind as usize];
        // Exponential tail: a few calls above 3 ms.
        let ns = (base * (1.0 + 4.0 * -(1.0 - uniform).ln())) as u64;
        population.push(ns as i64);
        ring.record(kind, trace, 0, Duration::from_nanos(ns));
    }
    ring.close().unwrap();
    population.sort_unstable();
    let truth = |q: f64| population[((q * population.len() as f64).ceil() as usize).max(1) - 1];
    let path = path.to_str().unwrap();
    let estimate = |raw: bool| -> Value {
        let mut args = vec![
            "pct",
            path,
            "--format",
            "json",
            "--percentiles",
            "50,90,99,99.9",
        ];
        if raw {
            args.push("--raw");
        }
        serde_json::from_str(&ok(&args)).unwrap()
    };
    let weighted = estimate(false);
    let raw = estimate(true);
    let events = weighted[0]["events"].as_f64().unwrap();
    assert!(
        (events - 400_000.0).abs() / 400_000.0 < 0.01,
        "events {events}"
    );
    for (label, q) in [("50", 0.5), ("90", 0.9), ("99", 0.99), ("99.9", 0.999)] {
        let true_value = truth(q) as f64;
        let w = weighted[0]["percentiles"][label].as_f64().unwrap();
        let r = raw[0]["percentiles"][label].as_f64().unwrap();
        let w_error = (w - true_value).abs() / true_value;
        let r_error = (r - true_value).abs() / true_value;
        println!(
            "p{label}: true {true_value:.0} weighted {w:.0} ({:.2}%) raw {r:.0} ({:.2}%)",
            100.0 * w_error,
            100.0 * r_error
        );
        assert!(
            w_error < 0.05,
            "p{label}: weighted estimate off by {:.1}%",
            100.0 * w_error
        );
        if label != "99.9" {
            assert!(r_error > 0.10, "p{label}: the raw sample should be biased");
        }
    }
}

#[test]
fn exit_codes_and_corrupt_files() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(ringcat(&[]).status.code(), Some(1));
    assert_eq!(ringcat(&["pct"]).status.code(), Some(1));
    let missing = ringcat(&["cat", "/nonexistent/x.ring"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("/nonexistent/x.ring"));
    let garbage = dir.path().join("garbage");
    std::fs::write(&garbage, vec![0xA5u8; 100_000]).unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    let ring = fixed_ring(dir.path());
    let truncated = dir.path().join("truncated.ring");
    let bytes = std::fs::read(&ring).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let archive = dir.path().join("a.archive");
    ok(&[
        "drain",
        ring.to_str().unwrap(),
        "-o",
        archive.to_str().unwrap(),
    ]);
    let archive_bytes = std::fs::read(&archive).unwrap();
    let broken_archive = dir.path().join("broken.archive");
    let mut broken = archive_bytes.clone();
    broken[16] = 99; // entry size
    std::fs::write(&broken_archive, &broken).unwrap();
    let cut_archive = dir.path().join("cut.archive");
    // Cut inside the last record entry (the drain's population snapshot follows it).
    let whole = (archive_bytes.len() - 16_384) / 32;
    let last_record = (0..whole)
        .rev()
        .find(|i| archive_bytes[16_384 + 32 * i + 27] != 0xFF)
        .unwrap();
    std::fs::write(
        &cut_archive,
        &archive_bytes[..16_384 + 32 * last_record + 25],
    )
    .unwrap();
    for file in [&garbage, &empty, &truncated, &broken_archive] {
        for command in [
            vec!["cat"],
            vec!["stat"],
            vec!["pct"],
            vec!["slice", "--above", "p99"],
            vec!["drain"],
        ] {
            let mut args = command.clone();
            args.insert(1, file.to_str().unwrap());
            let output = ringcat(&args);
            assert_eq!(
                output.status.code(),
                Some(2),
                "{args:?}: {}",
                stderr(&output)
            );
            let message = stderr(&output);
            assert_eq!(message.lines().count(), 1, "one line: {message}");
            assert!(!message.contains("panicked"));
        }
    }
    // An archive cut mid-entry (an append in progress) reads its whole entries.
    let lines = ok(&["cat", cut_archive.to_str().unwrap()]).lines().count();
    assert_eq!(
        lines,
        ok(&["cat", archive.to_str().unwrap()]).lines().count() - 1
    );
    // SLOs.
    let path = ring.to_str().unwrap();
    let archive = archive.to_str().unwrap();
    assert_eq!(
        ringcat(&["pct", archive, "--fail-if", "p99>100ms"])
            .status
            .code(),
        Some(0)
    );
    let broken = ringcat(&[
        "pct",
        archive,
        "--fail-if",
        "p99>1ms",
        "--fail-if",
        "limit:max>=1s",
    ]);
    assert_eq!(broken.status.code(), Some(3));
    assert!(stderr(&broken).contains("SLO broken: p99>1ms"));
    assert!(stderr(&broken).contains("SLO passed: limit:max>=1s"));
    assert_eq!(
        ringcat(&["pct", archive, "--fail-if", "limit:p50>10us"])
            .status
            .code(),
        Some(3)
    );
    assert_eq!(
        ringcat(&["pct", archive, "--fail-if", "p99>>1"])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        ringcat(&["stat", path, "--format", "prom"]).status.code(),
        Some(0)
    );
}

#[test]
fn filters_select_what_they_say() {
    let dir = tempfile::tempdir().unwrap();
    let ring = fixed_ring(dir.path());
    let path = ring.to_str().unwrap();
    let records = |extra: &[&str]| -> Vec<Value> {
        let mut args = vec!["cat", path, "--format", "json"];
        args.extend(extra);
        ok(&args)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let all = records(&[]);
    assert!(all.iter().all(|r| r["p"].as_f64().unwrap() > 0.0));
    let limit = records(&["--kind", "limit"]);
    assert!(!limit.is_empty() && limit.iter().all(|r| r["kind"] == "limit"));
    assert_eq!(records(&["--kind", "1"]).len(), limit.len());
    assert!(records(&["--status", "1"]).iter().all(|r| r["status"] == 1));
    assert_eq!(records(&["--trace", "1010"]).len(), 1);
    let slow = records(&["--min", "5ms"]);
    assert!(
        !slow.is_empty()
            && slow
                .iter()
                .all(|r| r["latency_ns"].as_i64().unwrap() >= 5_000_000)
    );
    assert!(
        records(&["--max", "50us"])
            .iter()
            .all(|r| r["latency_ns"].as_i64().unwrap() <= 50_000)
    );
    let last = records(&["--last", "4"]);
    assert_eq!(last.len(), 4);
    assert_eq!(last[3]["nanotime"], all.last().unwrap()["nanotime"]);
    let since = records(&[
        "--since",
        "2026-11-21T16:00:05Z",
        "--until",
        "2026-11-21T16:00:06Z",
    ]);
    assert!(!since.is_empty());
    assert!(since.iter().all(|r| {
        let t = u64_of(&r["nanotime"]);
        (T0 + 5_000_000_000..T0 + 6_000_000_000).contains(&t)
    }));
    // Relative times mean "that long before now".
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let hour_ago = now - 3_600_000_000_000;
    let expected = all
        .iter()
        .filter(|r| u64_of(&r["nanotime"]) >= hour_ago)
        .count();
    assert_eq!(records(&["--since", "1h"]).len(), expected);
    // Windows: 10 s of records in 2 s windows give 5 rows, each from its own records.
    let rows: Value =
        serde_json::from_str(&ok(&["pct", path, "--window", "2s", "--format", "json"])).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 5);
    let total: u64 = rows.iter().map(|r| r["records"].as_u64().unwrap()).sum();
    assert_eq!(total as usize, all.len());
    assert_eq!(u64_of(&rows[1]["window_start"]), T0 + 2_000_000_000);
    // Two files merged by time.
    let second = dir.path().join("second");
    std::fs::create_dir(&second).unwrap();
    let other = fixed_ring(&second);
    let pattern = format!("{}/*.ring", dir.path().display());
    let merged = ok(&["cat", &pattern, other.to_str().unwrap(), "--format", "json"]);
    let times: Vec<u64> = merged
        .lines()
        .map(|l| u64_of(&serde_json::from_str::<Value>(l).unwrap()["nanotime"]))
        .collect();
    assert_eq!(times.len(), 2 * all.len());
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "merged by time");
}

#[test]
fn follow_a_live_writer_until_it_exits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.ring");
    let ring = Ring::builder(&path)
        .capacity(1 << 16)
        .kind(0, "op")
        .create()
        .unwrap();
    ring.record(0, 0, 0, Duration::from_micros(1));
    let mut follower = Command::new(env!("CARGO_BIN_EXE_ringcat"))
        .args([
            "cat",
            "-f",
            "-n",
            "1000000",
            path.to_str().unwrap(),
            "--format",
            "json",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    for trace in 1..5_000u64 {
        ring.record(0, trace, 0, Duration::from_micros(trace % 100));
        if trace % 500 == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    ring.close().unwrap();
    let mut pipe = follower.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut pipe, &mut text).unwrap();
        text
    });
    let began = Instant::now();
    while follower.try_wait().unwrap().is_none() {
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "follow did not stop"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let text = reader.join().unwrap();
    let traces: Vec<u64> = text
        .lines()
        .map(|l| u64_of(&serde_json::from_str::<Value>(l).unwrap()["trace_id"]))
        .collect();
    assert_eq!(traces, (0..5_000).collect::<Vec<_>>());
}

#[test]
fn drain_frees_space_so_the_breaker_closes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("full.ring");
    let ring = Ring::builder(&path)
        .capacity(256)
        .kind(0, "op")
        .tick(Duration::from_millis(5))
        .create()
        .unwrap();
    let mut trace = 0;
    while !ring.breaker_open() {
        ring.record(0, trace, 0, Duration::from_micros(3));
        trace += 1;
    }
    let archive = dir.path().join("out.archive");
    let drained = ringcat(&[
        "drain",
        path.to_str().unwrap(),
        "-o",
        archive.to_str().unwrap(),
    ]);
    assert!(drained.status.success());
    assert!(stderr(&drained).contains(&format!("drained {trace} records")));
    let began = Instant::now();
    while ring.breaker_open() {
        assert!(
            began.elapsed() < Duration::from_secs(10),
            "breaker stayed open"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let stat: Value =
        serde_json::from_str(&ok(&["stat", path.to_str().unwrap(), "--format", "json"])).unwrap();
    assert_eq!(stat["fill"], 0);
    assert_eq!(stat["breaker"]["open"], false);
    // Nothing drained twice; the archive holds exactly what was written.
    let lines = ok(&["cat", archive.to_str().unwrap(), "--format", "json"])
        .lines()
        .count();
    assert_eq!(lines as u64, trace);
    let again = ringcat(&["drain", path.to_str().unwrap()]);
    assert!(stdout(&again).is_empty());
}
