//! `ringcat serve` and `stat --format prom`: the exposition Prometheus reads (checked by
//! promtool when installed), the latency histogram from the population, files that go
//! missing, get damaged or come back while the server runs, and the textfile.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use common::{get, promtool_check_metrics, ringcat, sample, serve};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A closed ring: market 1..=1000 us (every call written), limit 1..=1000 us at rate 10%
/// (most calls sampled out, all in the population histogram).
fn known_ring(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let ring = ringlat::Ring::builder(&path)
        .capacity(4096)
        .kind(0, "market")
        .kind(1, "limit")
        .rate(1, 0.1)
        .create()
        .unwrap();
    for micros in 1..=1000u64 {
        ring.record(0, micros, 0, Duration::from_micros(micros));
        ring.record(1, micros, 0, Duration::from_micros(micros));
    }
    ring.close().unwrap();
    path
}

fn metrics(address: &str) -> String {
    let (status, head, body) = get(address, "/metrics");
    assert_eq!(status, 200, "{head}\n{body}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    body
}

fn up(text: &str, label: &str) -> Option<String> {
    sample(text, &format!("ringlat_up{{file=\"{label}\"}}"))
}

#[test]
fn serve_goes_on_through_missing_damaged_and_replaced_files() {
    let dir = tempfile::tempdir().unwrap();
    let ring = known_ring(dir.path(), "a.ring");
    let later = dir.path().join("b.ring");
    let garbage = dir.path().join("c.ring");
    std::fs::write(&garbage, vec![0xAB; 8192]).unwrap();
    let (mut server, address) = serve(&[
        ring.to_str().unwrap(),
        later.to_str().unwrap(),
        garbage.to_str().unwrap(),
        "--label",
        "gw-a",
        "--label",
        "gw-b",
        "--label",
        "gw-c",
    ]);

    let first = metrics(&address);
    assert_eq!(up(&first, "gw-a").as_deref(), Some("1"), "{first}");
    assert_eq!(up(&first, "gw-b").as_deref(), Some("0"), "{first}");
    assert_eq!(up(&first, "gw-c").as_deref(), Some("0"), "{first}");
    assert!(
        first.contains("ringlat_read_error_info{file=\"gw-b\",error=\""),
        "{first}"
    );
    assert!(first.contains("not a ringlat file"), "{first}");
    assert_eq!(
        sample(
            &first,
            "ringlat_latency_seconds_count{file=\"gw-a\",kind=\"limit\"}"
        )
        .as_deref(),
        Some("1000"),
        "{first}"
    );
    if let Some((passed, report)) = promtool_check_metrics(&first, dir.path()) {
        assert!(passed, "promtool check metrics: {report}\n{first}");
    }

    // The missing file appears, the good one is truncated under the server.
    std::fs::copy(&ring, &later).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&ring)
        .unwrap()
        .set_len(100)
        .unwrap();
    let second = metrics(&address);
    assert_eq!(up(&second, "gw-a").as_deref(), Some("0"), "{second}");
    assert_eq!(up(&second, "gw-b").as_deref(), Some("1"), "{second}");
    assert!(
        !second.contains("ringlat_calls_total{file=\"gw-a\""),
        "an unreadable file has no series but ringlat_up: {second}"
    );
    assert!(second.contains("ringlat_calls_total{file=\"gw-b\",kind=\"market\"} 1000"));
    if let Some((passed, report)) = promtool_check_metrics(&second, dir.path()) {
        assert!(passed, "promtool check metrics: {report}\n{second}");
    }

    // Removed, and a directory in its place.
    std::fs::remove_file(&later).unwrap();
    std::fs::create_dir(&later).unwrap();
    let third = metrics(&address);
    assert_eq!(up(&third, "gw-b").as_deref(), Some("0"), "{third}");

    assert_eq!(get(&address, "/nothing").0, 404);
    assert_eq!(get(&address, "/metrics?x=1").0, 200);
    assert!(
        server.0.try_wait().unwrap().is_none(),
        "the server ended on a damaged file"
    );
}

#[test]
fn latency_histogram_counts_every_call_with_straddling_buckets_counted_up() {
    let dir = tempfile::tempdir().unwrap();
    let ring = known_ring(dir.path(), "h.ring");
    let file = ring.to_str().unwrap();
    let output = ringcat(&["stat", file, "--format", "prom"]);
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8(output.stdout).unwrap();
    if let Some((passed, report)) = promtool_check_metrics(&text, dir.path()) {
        assert!(passed, "promtool check metrics: {report}\n{text}");
    }
    assert_eq!(
        text.matches("# TYPE ringlat_latency_seconds histogram")
            .count(),
        1
    );
    for kind in ["market", "limit"] {
        let bucket = |le: &str| -> u64 {
            sample(
                &text,
                &format!(
                    "ringlat_latency_seconds_bucket{{file=\"{file}\",kind=\"{kind}\",le=\"{le}\"}}"
                ),
            )
            .unwrap_or_else(|| panic!("no le={le} for {kind}:\n{text}"))
            .parse()
            .unwrap()
        };
        // 1..=1000 us, one call each: at a boundary at most the true count, short of it by no
        // more than one population bucket (1/256 wide; 1 us itself sits in [1000, 1002) ns,
        // which straddles le=0.000001 and is counted at the next boundary).
        for (le, truth) in [
            ("0.000001", 1u64),
            ("0.00001", 10),
            ("0.0001", 100),
            ("0.0005", 500),
            ("0.001", 1000),
        ] {
            let counted = bucket(le);
            assert!(
                counted <= truth && counted + truth / 128 + 1 >= truth,
                "{kind} le={le}: {counted} for {truth} calls"
            );
        }
        assert_eq!(bucket("0.0025"), 1000);
        assert_eq!(bucket("+Inf"), 1000);
        let count = sample(
            &text,
            &format!("ringlat_latency_seconds_count{{file=\"{file}\",kind=\"{kind}\"}}"),
        );
        assert_eq!(count.as_deref(), Some("1000"));
        let sum: f64 = sample(
            &text,
            &format!("ringlat_latency_seconds_sum{{file=\"{file}\",kind=\"{kind}\"}}"),
        )
        .unwrap()
        .parse()
        .unwrap();
        assert!((sum - 0.5005).abs() < 1e-9, "{kind}: sum {sum}");
    }

    let custom = ringcat(&[
        "stat",
        file,
        "--format",
        "prom",
        "--buckets",
        "100us,0.0005,+Inf",
    ]);
    assert_eq!(custom.status.code(), Some(0));
    let custom = String::from_utf8(custom.stdout).unwrap();
    assert_eq!(
        custom
            .lines()
            .filter(|line| line.starts_with("ringlat_latency_seconds_bucket{")
                && line.contains("kind=\"market\""))
            .map(|line| line
                .split(",le=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap())
            .collect::<Vec<_>>(),
        ["0.0001", "0.0005", "+Inf"]
    );
    for bad in ["5ms,1ms", "0", "5xs", ""] {
        let output = ringcat(&["stat", file, "--format", "prom", "--buckets", bad]);
        assert_eq!(output.status.code(), Some(1), "--buckets {bad:?}");
    }
}

#[test]
fn textfile_is_written_whole_and_labels_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let ring = known_ring(dir.path(), "t.ring");
    let file = ring.to_str().unwrap();
    let out = dir.path().join("collector");
    std::fs::create_dir(&out).unwrap();
    let output = ringcat(&[
        "serve",
        file,
        "--label",
        "gw",
        "--textfile",
        out.to_str().unwrap(),
        "--once",
    ]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["ringlat.prom"], "a temporary file was left behind");
    let text = std::fs::read_to_string(out.join("ringlat.prom")).unwrap();
    assert!(text.starts_with("# HELP ringlat_up "), "{text}");
    assert!(text.ends_with('\n'));
    assert!(text.contains("ringlat_latency_seconds_count{file=\"gw\",kind=\"market\"} 1000"));
    if let Some((passed, report)) = promtool_check_metrics(&text, dir.path()) {
        assert!(passed, "promtool check metrics: {report}\n{text}");
    }

    let missing_dir = dir.path().join("no-such-dir");
    let output = ringcat(&[
        "serve",
        file,
        "--textfile",
        missing_dir.to_str().unwrap(),
        "--once",
    ]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    for args in [
        vec!["serve", file, file],
        vec!["serve", file, file, "--label", "x"],
        vec!["serve", file, "--once"],
    ] {
        assert_eq!(ringcat(&args).status.code(), Some(1), "{args:?}");
    }
}

#[test]
fn textfile_is_rewritten_every_interval_without_a_port() {
    let dir = tempfile::tempdir().unwrap();
    let ring = known_ring(dir.path(), "i.ring");
    let out = dir.path().join("collector");
    std::fs::create_dir(&out).unwrap();
    let textfile = out.join("ringlat.prom");
    let _server = common::Running(
        Command::new(env!("CARGO_BIN_EXE_ringcat"))
            .args(["serve", ring.to_str().unwrap(), "--label", "gw"])
            .args(["--textfile", out.to_str().unwrap(), "--interval", "100ms"])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let wait_for = |what: &str, check: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !check() {
            assert!(std::time::Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for("the first textfile", &|| textfile.exists());
    // Damaged under the writer of the textfile: the next round says so, and it goes on.
    std::fs::write(&ring, b"damaged").unwrap();
    wait_for("ringlat_up 0 in the textfile", &|| {
        std::fs::read_to_string(&textfile)
            .is_ok_and(|text| text.contains("ringlat_up{file=\"gw\"} 0\n"))
    });
    std::fs::remove_file(&textfile).unwrap();
    wait_for("the textfile rewritten", &|| textfile.exists());
}
