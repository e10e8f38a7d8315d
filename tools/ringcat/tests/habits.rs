//! ringcat with the habits of journalctl, k6 and HdrHistogram's tools (issue 14): loud
//! failures, times, tails, output schemas, plots and the conventions of a finished CLI. Each
//! test runs the real binary over files the library wrote.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use ringlat::Ring;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const T0: u64 = 1_795_276_800_000_000_000; // 2026-11-21T16:00:00Z

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ringcat"));
    command.args(args).env("NO_COLOR", "1").env("TZ", "UTC");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("run ringcat")
}

fn ringcat(args: &[&str]) -> Output {
    run(args, &[])
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

/// Exit code and stderr of a run expected to fail.
fn fails(args: &[&str], code: i32) -> String {
    let output = ringcat(args);
    assert_eq!(
        output.status.code(),
        Some(code),
        "ringcat {args:?}: {}{}",
        stdout(&output),
        stderr(&output)
    );
    let message = stderr(&output);
    assert!(!message.contains("panicked"), "{message}");
    message
}

/// 200 records over 10 s, every one kept: market (id 0, even traces) and limit (id 1, odd
/// ones); status 1 on every tenth (all limit); 8 ms on four (all limit, status 0).
fn fixed_ring(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let ring = Ring::builder(&path)
        .capacity(1024)
        .kind(0, "market")
        .kind(1, "limit")
        .max_skew(Duration::from_secs(100 * 365 * 86_400))
        .create()
        .unwrap();
    for i in 0..200u64 {
        let micros = 20 + (i * 37) % 180 + if i % 50 == 7 { 8_000 } else { 0 };
        ring.record_at(
            (i % 2) as u8,
            1_000 + i,
            u8::from(i % 10 == 3),
            Duration::from_micros(micros),
            T0 + i * 50_000_000,
        );
    }
    ring.close().unwrap();
    path
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

fn u64_of(value: &Value) -> u64 {
    value.as_str().unwrap().parse().unwrap()
}

#[test]
fn unknown_kinds_fail_naming_the_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    let ring = fixed_ring(dir.path(), "a.ring");
    let ring = ring.to_str().unwrap();
    for args in [
        vec!["cat", ring, "--kind", "nosuch"],
        vec!["cat", ring, "--kind", "market,nosuch"],
        vec!["cat", ring, "--kind", "7"],
        vec!["pct", ring, "--kind", "nosuch"],
        vec!["slice", ring, "--above", "p99", "--kind", "nosuch"],
        vec!["plot", ring, "-o", "-", "--kind", "nosuch"],
        vec!["pct", ring, "--fail-if", "nosuch:p99>5ms"],
        vec!["pct", ring, "--fail-if", "kind=nosuch,status=1:p99>5ms"],
    ] {
        let message = fails(&args, 1);
        assert!(
            message.contains("unknown kind")
                && message.contains("market")
                && message.contains("limit"),
            "{args:?}: {message}"
        );
    }
    // Names and ids of declared kinds still select.
    assert!(!ok(&["cat", ring, "--kind", "1", "--format", "json"]).is_empty());
    assert!(!ok(&["cat", ring, "--kind", "limit", "--format", "json"]).is_empty());
}

#[test]
fn fail_if_selects_by_kind_and_status_and_reports_every_rule() {
    let dir = tempfile::tempdir().unwrap();
    let ring = fixed_ring(dir.path(), "a.ring");
    let ring = ring.to_str().unwrap();
    // Every rule gets a line, in its own unit. k6's p(99) spelling is a threshold that must
    // hold: p(99)<5ms is broken by a P99 of 8 ms, p(99)<50ms passes.
    let output = ringcat(&[
        "pct",
        ring,
        "--fail-if",
        "p(99)<5ms",
        "--fail-if",
        "p99>500us",
        "--fail-if",
        "p(99)<50ms",
    ]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let message = stderr(&output);
    let lines: Vec<&str> = message.lines().collect();
    assert_eq!(lines.len(), 3, "{message}");
    assert!(
        lines[0].starts_with("ringcat: SLO broken: p(99)<5ms (measured 8.")
            && lines[0].contains("ms, 200 records)"),
        "{message}"
    );
    assert!(
        lines[1].starts_with("ringcat: SLO broken: p99>500us (measured 8")
            && lines[1].contains(".00us, 200 records)"),
        "{message}"
    );
    assert!(
        lines[2].starts_with("ringcat: SLO passed: p(99)<50ms (measured 8."),
        "{message}"
    );
    let output = ringcat(&["pct", ring, "--fail-if", "p99>50ms", "--fail-if", "max>=1s"]);
    assert_eq!(output.status.code(), Some(0));
    assert!(stderr(&output).contains("SLO passed: p99>50ms (measured 8."));
    assert!(stderr(&output).contains("SLO passed: max>=1s (measured 0.01s"));
    // Status selectors: status 1 is every tenth record (i % 10 == 3: odd, so all limit),
    // none slower than 5 ms (i % 50 == 7 never has i % 10 == 3).
    let by_status = ringcat(&["pct", ring, "--fail-if", "status=1:max>1ms"]);
    assert_eq!(by_status.status.code(), Some(0), "{}", stderr(&by_status));
    assert!(
        stderr(&by_status).contains("(measured 0."),
        "{}",
        stderr(&by_status)
    );
    let both = ringcat(&["pct", ring, "--fail-if", "kind=limit,status=0:max>1ms"]);
    assert_eq!(both.status.code(), Some(3), "{}", stderr(&both));
    // 100 limit records, 20 of them status 1.
    assert!(stderr(&both).contains("SLO broken: kind=limit,status=0:max>1ms (measured 8."));
    assert!(stderr(&both).contains(", 80 records)"), "{}", stderr(&both));
    // A rule that matches nothing is a usage error, not a pass.
    let message = fails(
        &["pct", ring, "--fail-if", "kind=market,status=1:p99>1ms"],
        1,
    );
    assert!(message.contains("no records match"), "{message}");
    let message = fails(
        &[
            "pct",
            ring,
            "--kind",
            "market",
            "--fail-if",
            "limit:p99>1ms",
        ],
        1,
    );
    assert!(message.contains("no records match"), "{message}");
    for bad in [
        "status=x:p99>1ms",
        "status=300:p99>1ms",
        "colour=red:p99>1ms",
        "p(99<1ms",
    ] {
        fails(&["pct", ring, "--fail-if", bad], 1);
    }
}

#[test]
fn zero_and_negative_durations_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ring = fixed_ring(dir.path(), "a.ring");
    let ring = ring.to_str().unwrap();
    for args in [
        vec!["stat", ring, "--watch", "0"],
        vec!["stat", ring, "--watch", "0ms"],
        vec!["stat", ring, "--watch", "-1s"],
        vec!["pct", ring, "--window", "0"],
        vec!["plot", ring, "-o", "-", "--window", "0s"],
    ] {
        let message = fails(&args, 1);
        assert!(
            message.contains("0") || message.contains("-1s"),
            "{message}"
        );
    }
}

#[test]
fn drain_on_an_archive_says_what_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let ring = fixed_ring(dir.path(), "a.ring");
    let archive = dir.path().join("a.archive");
    ok(&[
        "drain",
        ring.to_str().unwrap(),
        "-o",
        archive.to_str().unwrap(),
    ]);
    let message = fails(&["drain", archive.to_str().unwrap()], 2);
    assert!(
        message.contains("this is an archive, not a ring"),
        "{message}"
    );
    assert_eq!(message.lines().count(), 1);
}

#[test]
fn times_the_journalctl_way() {
    let dir = tempfile::tempdir().unwrap();
    let ring = fixed_ring(dir.path(), "a.ring");
    let ring = ring.to_str().unwrap();
    let count = |args: &[&str], env: &[(&str, &str)]| -> usize {
        let mut all = vec!["cat", ring, "--format", "json"];
        all.extend(args);
        let output = run(&all, env);
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        stdout(&output).lines().count()
    };
    let paris = [("TZ", "Europe/Paris")];
    // Records 100..120: 16:00:05 to 16:00:06 UTC, 17:00:05 in Paris.
    let utc = count(
        &[
            "--since",
            "2026-11-21T16:00:05Z",
            "--until",
            "2026-11-21T16:00:06Z",
        ],
        &[],
    );
    assert_eq!(utc, 20);
    let local = &[
        "--since",
        "2026-11-21 17:00:05",
        "--until",
        "2026-11-21 17:00:06",
    ];
    assert_eq!(count(local, &paris), 20);
    // --utc reads the same civil time as UTC: an hour later, after every record.
    let mut forced = local.to_vec();
    forced.push("--utc");
    assert_eq!(count(&forced, &paris), 0);
    assert_eq!(
        count(
            &[
                "--since",
                "2026-11-21 16:00:05",
                "--until",
                "2026-11-21 16:00:06",
                "--utc"
            ],
            &paris
        ),
        20
    );
    assert_eq!(
        count(
            &[
                "--since",
                "2026-11-21T17:00:05+01:00",
                "--until",
                "2026-11-21T16:00:06Z"
            ],
            &[]
        ),
        20
    );
    // The records are in 2026-11-21; these relative forms are all after or before them.
    for since in ["now", "today", "yesterday", "1h ago", "-1h", "1h", "+1h"] {
        assert_eq!(count(&["--since", since], &[]), 0, "--since {since}");
        assert_eq!(count(&["--until", since], &[]), 200, "--until {since}");
    }
    assert_eq!(count(&["--since", "2026-11-21"], &paris), 200);
    assert_eq!(count(&["--until", "2026-11-21"], &paris), 0);
    let message = fails(&["cat", ring, "--since", "soon"], 1);
    assert!(
        message.contains("RFC 3339") && message.contains("yesterday"),
        "{message}"
    );
    // Text shows the local zone with its offset, or UTC with --utc; JSON stays UTC.
    let text = stdout(&run(&["cat", ring, "-n", "1"], &paris));
    assert!(
        text.contains("2026-11-21T17:00:09.950000000+01:00"),
        "{text}"
    );
    let text = stdout(&run(&["cat", ring, "-n", "1", "--utc"], &paris));
    assert!(text.contains("2026-11-21T16:00:09.950000000Z"), "{text}");
    let json = stdout(&run(&["cat", ring, "-n", "1", "--format", "json"], &paris));
    assert!(
        json.contains("\"time\":\"2026-11-21T16:00:09.950000000Z\""),
        "{json}"
    );
    let table = stdout(&run(&["pct", ring, "--window", "5s"], &paris));
    assert!(
        table.contains("2026-11-21T17:00:05.000000000+01:00"),
        "{table}"
    );
}

#[test]
fn cat_lines_reverse_and_a_header() {
    let dir = tempfile::tempdir().unwrap();
    let ring = fixed_ring(dir.path(), "a.ring");
    let ring = ring.to_str().unwrap();
    let traces = |args: &[&str]| -> Vec<u64> {
        let mut all = vec!["cat", ring, "--format", "json"];
        all.extend(args);
        json_lines(&ok(&all))
            .iter()
            .map(|r| u64_of(&r["trace_id"]))
            .collect()
    };
    assert_eq!(traces(&["-n", "3"]), [1197, 1198, 1199]);
    assert_eq!(traces(&["--lines", "3", "--reverse"]), [1199, 1198, 1197]);
    assert_eq!(traces(&["--reverse"]).first(), Some(&1199));
    assert_eq!(traces(&["--reverse"]).len(), traces(&[]).len());
    let text = ok(&["cat", ring, "-n", "2", "--unit", "ms"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(
        lines[0].starts_with("time") && lines[0].contains("latency(ms)"),
        "{text}"
    );
    // One unit per column: no suffix in the cells.
    assert!(
        !lines[1].contains("us") && !lines[1].contains("ms"),
        "{text}"
    );
    // The unit is chosen from the data when not given.
    assert!(
        ok(&["cat", ring, "-n", "5"])
            .lines()
            .next()
            .unwrap()
            .contains("latency(us)")
    );
}

#[test]
fn follow_starts_at_the_tail() {
    let dir = tempfile::tempdir().unwrap();
    let ring = fixed_ring(dir.path(), "a.ring");
    let ring = ring.to_str().unwrap();
    // A closed ring: -f prints the last 10 (or -n N) and stops, as the writer is gone.
    let last: Vec<u64> = json_lines(&ok(&["cat", "-f", ring, "--format", "json"]))
        .iter()
        .map(|r| u64_of(&r["trace_id"]))
        .collect();
    assert_eq!(last, (1190..1200).collect::<Vec<_>>());
    let three = json_lines(&ok(&["cat", "-f", "-n", "3", ring, "--format", "json"]));
    assert_eq!(three.len(), 3);
    let limit = json_lines(&ok(&[
        "cat", "-f", "-n", "2", ring, "--format", "json", "--kind", "limit",
    ]));
    assert_eq!(limit.len(), 2);
    assert!(limit.iter().all(|r| r["kind"] == "limit"));
}

/// Waits for `child` to exit (it must within 60 s), reading its pipes meanwhile, and
/// returns its stdout and stderr.
fn finish(child: std::process::Child) -> (String, String) {
    let (done, outcome) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(child.wait_with_output()));
    let output = outcome
        .recv_timeout(Duration::from_secs(60))
        .expect("ringcat did not stop")
        .unwrap();
    (stdout(&output), stderr(&output))
}

#[test]
fn follow_a_growing_archive() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("grow.archive");
    let archive = archive.to_str().unwrap();
    let first = fixed_ring(dir.path(), "first.ring");
    ok(&["drain", first.to_str().unwrap(), "-o", archive]);
    // cat -f stops when this process exits.
    let mut sleeper = Command::new("sleep").arg("3").spawn().unwrap();
    let follower = Command::new(env!("CARGO_BIN_EXE_ringcat"))
        .args([
            "cat",
            "-f",
            archive,
            "--format",
            "json",
            "--pid",
            &sleeper.id().to_string(),
        ])
        .env("TZ", "UTC")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let second = fixed_ring(dir.path(), "second.ring");
    ok(&["drain", second.to_str().unwrap(), "-o", archive]);
    sleeper.wait().unwrap();
    let (out, err) = finish(follower);
    let records = json_lines(&out);
    // The last 10 of the first drain, then all 200 of the second.
    assert_eq!(records.len(), 210, "{err}");
    let traces: Vec<u64> = records.iter().map(|r| u64_of(&r["trace_id"])).collect();
    assert_eq!(traces[..10], (1190..1200).collect::<Vec<_>>()[..]);
    assert_eq!(traces[10..], (1000..1200).collect::<Vec<_>>()[..]);
}

#[test]
fn follow_on_a_drained_ring_names_the_lossless_way() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.ring");
    let ring = Ring::builder(&path)
        .capacity(1 << 18)
        .kind(0, "op")
        .create()
        .unwrap();
    let follower = Command::new(env!("CARGO_BIN_EXE_ringcat"))
        .args(["cat", "-f", path.to_str().unwrap(), "--format", "json"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let archive = dir.path().join("live.archive");
    // Bursts drained at once: the drainer consumes records before cat can show them (the
    // first bursts may still be seen whole, so repeat a few times).
    let mut trace = 0;
    for _ in 0..20 {
        for _ in 0..100_000 {
            ring.record(0, trace, 0, Duration::from_micros(3));
            trace += 1;
        }
        ok(&[
            "drain",
            path.to_str().unwrap(),
            "-o",
            archive.to_str().unwrap(),
        ]);
    }
    ring.close().unwrap();
    let (_, err) = finish(follower);
    assert!(
        err.contains("this ring is being drained") && err.contains("ringcat cat -f ARCHIVE"),
        "{err}"
    );
}

#[test]
fn one_json_schema_for_rings_archives_and_drain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ids.ring");
    let big = u64::MAX - 1; // jq 1.6 would print 18446744073709552000 for this number
    let ring = Ring::builder(&path)
        .kind(4, "order")
        .delta_unit(ringlat::DeltaUnit::Micros)
        .create()
        .unwrap();
    ring.record(4, big, 2, Duration::from_micros(1234));
    ring.close().unwrap();
    let path = path.to_str().unwrap();
    let archive = dir.path().join("ids.archive");
    let archive = archive.to_str().unwrap();
    let from_ring = json_lines(&ok(&["cat", path, "--format", "json"]));
    let copy = dir.path().join("copy.ring");
    std::fs::copy(path, &copy).unwrap();
    let kept = dir.path().join("kept.ring");
    std::fs::copy(path, &kept).unwrap();
    let from_drain = json_lines(&ok(&["drain", copy.to_str().unwrap()]));
    ok(&["drain", path, "-o", archive]);
    let from_archive = json_lines(&ok(&["cat", archive, "--format", "json"]));
    let keys: BTreeSet<&str> = [
        "time",
        "nanotime",
        "kind",
        "kind_id",
        "trace_id",
        "status",
        "latency_ns",
        "delta",
        "unit",
        "p",
    ]
    .into();
    for (source, records) in [
        ("ring", &from_ring),
        ("drain", &from_drain),
        ("archive", &from_archive),
    ] {
        assert_eq!(records.len(), 1, "{source}");
        let record = &records[0];
        let found: BTreeSet<&str> = record
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(found, keys, "{source}");
        assert_eq!(
            record["trace_id"],
            Value::String(big.to_string()),
            "{source}"
        );
        assert!(record["nanotime"].is_string(), "{source}");
        assert!(record["time"].as_str().unwrap().ends_with('Z'), "{source}");
        assert_eq!(record["kind"], "order");
        assert_eq!(record["kind_id"], 4);
        assert_eq!(record["status"], 2);
        assert_eq!(record["latency_ns"], 1_234_000);
        assert_eq!(record["p"], 1.0);
    }
    // The file's own unit: micros in the ring and its drain, ns in an archive.
    assert_eq!(
        (&from_ring[0]["delta"], &from_ring[0]["unit"]),
        (&1234.into(), &"us".into())
    );
    assert_eq!(from_drain[0]["delta"], 1234);
    assert_eq!(
        (&from_archive[0]["delta"], &from_archive[0]["unit"]),
        (&1_234_000.into(), &"ns".into())
    );
    // Several files: each record names its file.
    let kept = kept.to_str().unwrap();
    let both = json_lines(&ok(&["cat", archive, kept, "--format", "json"]));
    assert_eq!(both.len(), 2);
    assert!(both.iter().any(|r| r["file"] == archive), "{both:?}");
    assert!(both.iter().any(|r| r["file"] == kept), "{both:?}");
}

fn tick_labels(svg: &str) -> Vec<String> {
    svg.lines()
        .filter_map(|line| {
            let at = line.find("class=\"xtick\"")?;
            let text = &line[at..];
            let start = text.find('>')? + 1;
            let end = text[start..].find('<')? + start;
            Some(text[start..end].to_string())
        })
        .collect()
}

#[test]
fn the_demo_plot_renders_to_png_with_distinct_round_ticks() {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    ok(&["demo", "--seconds", "1", "--dir", demo.to_str().unwrap()]);
    let archive = demo.join("gateway.archive");
    let archive = archive.to_str().unwrap();
    let png = dir.path().join("gateway.png");
    if cfg!(feature = "png") {
        ok(&["plot", archive, "-o", png.to_str().unwrap()]);
        let bytes = std::fs::read(&png).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
        let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
        assert_eq!((width, height), (1000, 1010));
        // `--format png` on stdout.
        let output = ringcat(&["plot", archive, "-o", "-", "--format", "png"]);
        assert_eq!(&output.stdout[..4], b"\x89PNG");
    } else {
        let message = fails(&["plot", archive, "-o", png.to_str().unwrap()], 1);
        assert!(message.contains("without PNG support"), "{message}");
    }
    // The same plot as SVG on stdout: round, distinct ticks; titles; the date and zone.
    let svg = ok(&["plot", archive, "-o", "-"]);
    assert!(svg.starts_with("<svg"));
    let labels = tick_labels(&svg);
    assert!(labels.len() >= 2, "{labels:?}");
    let distinct: BTreeSet<&String> = labels.iter().collect();
    assert_eq!(distinct.len(), labels.len(), "{labels:?}");
    assert!(svg.contains("latency (log scale)") && svg.contains("class=\"xtitle\""));
    assert!(svg.contains("time (UTC), 20"), "the zone and the date");
    // Colour by kind id: limit (id 1) keeps its colour when plotted alone.
    let alone = ok(&["plot", archive, "-o", "-", "--kind", "limit"]);
    assert!(alone.contains("fill=\"#d62728\"") && svg.contains("fill=\"#d62728\""));
    // Every point and line is drawn inside a clipped group.
    assert!(
        svg.contains("clip-path=\"url(#panel1)\"") && svg.contains("clip-path=\"url(#panel2)\"")
    );
    // A write failure is an output error.
    let message = fails(&["plot", archive, "-o", "/nonexistent/dir/x.svg"], 4);
    assert!(message.contains("/nonexistent/dir/x.svg"), "{message}");
}

#[test]
fn plot_without_a_positive_latency_does_not_panic() {
    // Issue 9 item 4: exit 101 when no selected record had a positive latency.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zero.ring");
    let ring = Ring::builder(&path).kind(0, "op").create().unwrap();
    ring.record(0, 1, 0, Duration::ZERO);
    ring.record(0, 2, 0, Duration::from_micros(40));
    ring.close().unwrap();
    let path = path.to_str().unwrap();
    let svg = ok(&["plot", path, "--max", "0", "-o", "-"]);
    assert!(svg.contains("</svg>"));
    // A 1-record archive.
    let one = dir.path().join("one.ring");
    let ring = Ring::builder(&one).kind(0, "op").create().unwrap();
    ring.record(0, 1, 0, Duration::from_micros(40));
    ring.close().unwrap();
    let archive = dir.path().join("one.archive");
    ok(&[
        "drain",
        one.to_str().unwrap(),
        "-o",
        archive.to_str().unwrap(),
    ]);
    let svg = ok(&["plot", archive.to_str().unwrap(), "-o", "-"]);
    assert!(svg.contains("</svg>"));
    if cfg!(feature = "png") {
        let png = dir.path().join("one.png");
        ok(&[
            "plot",
            archive.to_str().unwrap(),
            "-o",
            png.to_str().unwrap(),
        ]);
    }
}

#[test]
fn completions_man_page_and_colour() {
    let bash = ok(&["completions", "bash"]);
    assert!(
        bash.contains("_ringcat") && bash.contains("--since"),
        "bash completion"
    );
    let zsh = ok(&["completions", "zsh"]);
    assert!(zsh.contains("#compdef ringcat"));
    let man = ok(&["man"]);
    assert!(
        man.contains(".TH ringcat") && man.contains("RINGCAT PCT") && man.contains("fail\\-if")
    );
    fails(&["completions", "tcsh"], 1);
    let dir = tempfile::tempdir().unwrap();
    let ring = fixed_ring(dir.path(), "a.ring");
    let ring = ring.to_str().unwrap();
    // NO_COLOR is set by these helpers; --color always wins over it, never and auto (into a
    // pipe) stay plain.
    assert!(ok(&["pct", ring, "--color", "always"]).contains("\x1b["));
    assert!(!ok(&["pct", ring, "--color", "never"]).contains("\x1b["));
    assert!(!ok(&["pct", ring]).contains("\x1b["));
    fails(&["pct", ring, "--color", "sometimes"], 1);
}

#[test]
fn hgrm_per_group_with_exact_cumulative_counts() {
    let dir = tempfile::tempdir().unwrap();
    let ring = fixed_ring(dir.path(), "a.ring");
    let ring = ring.to_str().unwrap();
    let out = dir.path().join("hgrm");
    let output = ringcat(&[
        "pct",
        ring,
        "--format",
        "hgrm",
        "--by",
        "kind",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).is_empty());
    for kind in ["market", "limit"] {
        let text = std::fs::read_to_string(out.join(format!("kind={kind}.hgrm"))).unwrap();
        let rows: Vec<(f64, u64)> = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty() && !l.contains("Value"))
            .map(|l| {
                let cells: Vec<&str> = l.split_whitespace().collect();
                (cells[0].parse().unwrap(), cells[2].parse().unwrap())
            })
            .collect();
        // TotalCount is the exact number of records at or below the value: 100 per kind,
        // the smallest value counted once at least, never decreasing.
        assert!(rows[0].1 >= 1, "{kind}: {text}");
        assert!(rows.windows(2).all(|w| w[0].1 <= w[1].1), "{kind}: {text}");
        assert_eq!(rows.last().unwrap().1, 100, "{kind}: {text}");
        assert!(text.contains("Total count    =          100"), "{kind}");
    }
    fails(
        &["pct", ring, "-o", out.to_str().unwrap(), "--format", "csv"],
        1,
    );
}

#[test]
fn format_names_agree_across_subcommands() {
    let dir = tempfile::tempdir().unwrap();
    let ring = fixed_ring(dir.path(), "a.ring");
    let ring = ring.to_str().unwrap();
    // text and table name the same aligned output everywhere.
    assert_eq!(
        ok(&["pct", ring, "--format", "text"]),
        ok(&["pct", ring, "--format", "table"])
    );
    assert_eq!(
        ok(&["slice", ring, "--above", "p90", "--format", "table"]),
        ok(&["slice", ring, "--above", "p90", "--format", "text"])
    );
    // slice --format csv lists the tail with cat's CSV columns.
    let csv = ok(&["slice", ring, "--above", "5ms", "--format", "csv"]);
    let cat = ok(&["cat", ring, "--format", "csv", "-n", "0"]);
    assert_eq!(csv.lines().next(), cat.lines().next());
    assert_eq!(csv.lines().count(), 1 + 4, "{csv}");
    // slice --format json lists records in the record schema; pct's window start is a
    // decimal string like every 64-bit time.
    let slice: Value =
        serde_json::from_str(&ok(&["slice", ring, "--above", "5ms", "--format", "json"])).unwrap();
    let cat = json_lines(&ok(&["cat", ring, "--format", "json", "-n", "1"]));
    let keys = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    assert_eq!(keys(&slice["listed"][0]), keys(&cat[0]));
    let rows: Value =
        serde_json::from_str(&ok(&["pct", ring, "--window", "5s", "--format", "json"])).unwrap();
    assert_eq!(rows[1]["window_start"], "1795276805000000000");
    assert_eq!(rows[1]["window"], "2026-11-21T16:00:05.000000000Z");
}

#[test]
fn stat_shows_local_time_unless_utc() {
    let dir = tempfile::tempdir().unwrap();
    let ring = fixed_ring(dir.path(), "s.ring");
    let ring = ring.to_str().unwrap();
    let created = |args: &[&str]| -> String {
        let mut all = vec!["stat", ring];
        all.extend(args);
        let output = run(&all, &[("TZ", "Europe/Paris")]);
        assert!(output.status.success(), "{}", stderr(&output));
        stdout(&output)
            .lines()
            .find(|l| l.starts_with("created"))
            .unwrap_or_default()
            .to_string()
    };
    let local = created(&[]);
    let utc = created(&["--utc"]);
    assert!(
        local.contains("+01:00") || local.contains("+02:00"),
        "local time with its offset: {local}"
    );
    assert!(!utc.contains("+01:00") && !utc.contains("+02:00"), "{utc}");
    assert_ne!(local, utc);
}
