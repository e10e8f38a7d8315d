//! A real Prometheus server scrapes `ringcat serve` every second; its
//! `histogram_quantile(0.99, ...)` must agree with the population p99 within the `le` bucket
//! boundaries, it must see a damaged file as `ringlat_up 0`, and it must load docs/alerts.yml.
//!
//! Ignored by default (it needs the `prometheus` binary: Debian's `prometheus` package);
//! `scripts/ci-prometheus.sh` installs it and runs this test with `--ignored`. Without the
//! binary the test prints why and passes, unless RINGLAT_REQUIRE_PROMETHEUS=1 (the CI script
//! sets it) makes that a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use common::{Running, encode, get, serve};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A closed ring of three kinds with different tails (log-uniform latencies from a fixed
/// generator), one sampled at 10%: the population histogram holds every call.
fn gateway(dir: &Path) -> PathBuf {
    let path = dir.join("gw.ring");
    let ring = ringlat::Ring::builder(&path)
        .capacity(1 << 16)
        .kind(0, "market")
        .kind(1, "limit")
        .kind(2, "cancel")
        .rate(1, 0.1)
        .create()
        .unwrap();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    // (kind, lowest us, highest us, calls): log-uniform between the two.
    for (kind, low, high, calls) in [
        (0u8, 8.0f64, 3_000.0, 40_000),
        (1, 20.0, 40_000.0, 30_000),
        (2, 3.0, 700.0, 20_000),
    ] {
        for call in 0..calls {
            let micros = low * (high / low).powf(uniform());
            let latency = Duration::from_nanos((micros * 1e3) as u64);
            ring.record(kind, call, 0, latency);
        }
    }
    ring.close().unwrap();
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn query(prometheus: &str, promql: &str) -> Vec<Value> {
    let (status, _, body) = get(
        prometheus,
        &format!("/api/v1/query?query={}", encode(promql)),
    );
    assert_eq!(status, 200, "{promql}: {body}");
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["status"], "success", "{body}");
    json["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn value_of(sample: &Value) -> f64 {
    sample["value"][1].as_str().unwrap().parse().unwrap()
}

/// Polls `check` every 200 ms until it returns Some, for at most `limit`.
fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
#[ignore = "starts a real Prometheus server: run by scripts/ci-prometheus.sh"]
fn real_prometheus_histogram_quantile_matches_the_population_p99() {
    if Command::new("prometheus")
        .arg("--version")
        .output()
        .is_err()
    {
        let reason = "prometheus is not installed (Debian package `prometheus`)";
        assert!(
            std::env::var("RINGLAT_REQUIRE_PROMETHEUS").as_deref() != Ok("1"),
            "{reason}"
        );
        eprintln!("skipped: {reason}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ring = gateway(dir.path());
    let broken = dir.path().join("broken.ring");
    std::fs::write(&broken, b"not a ring").unwrap();
    // Boundaries 10% apart from 1 us to about 120 ms: the check below is then that tight.
    let buckets: Vec<String> = (0..=122)
        .map(|i| format!("{}ns", (1_000.0 * 1.1f64.powi(i)).round()))
        .collect();
    let buckets = buckets.join(",");
    let (_serve, target) = serve(&[
        "--buckets",
        &buckets,
        ring.to_str().unwrap(),
        broken.to_str().unwrap(),
        "--label",
        "gw",
        "--label",
        "broken",
    ]);

    let alerts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/alerts.yml");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {}\n\
             scrape_configs:\n  - job_name: ringlat\n    static_configs:\n      - targets: ['{target}']\n",
            alerts.canonicalize().unwrap().display()
        ),
    )
    .unwrap();
    let prometheus = format!("127.0.0.1:{}", free_port());
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let started = Instant::now();
    let _prometheus = Running(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={prometheus}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus"),
    );
    let log_text =
        || std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();

    // Samples of every kind, scraped from ringcat serve.
    wait_for("the first scrapes", Duration::from_secs(60), || {
        let ready = std::net::TcpStream::connect(&prometheus).is_ok()
            && get(&prometheus, "/-/ready").0 == 200
            && query(&prometheus, "ringlat_latency_seconds_count{file=\"gw\"}").len() == 3;
        ready.then_some(())
    });
    eprintln!(
        "first samples after {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // The le boundaries served, in nanoseconds.
    let exposition = get(&target, "/metrics").2;
    let le_ns: Vec<u64> = exposition
        .lines()
        .filter(|line| {
            line.starts_with("ringlat_latency_seconds_bucket{") && line.contains("kind=\"market\"")
        })
        .filter_map(|line| {
            line.split(",le=\"")
                .nth(1)?
                .split('"')
                .next()?
                .parse::<f64>()
                .ok()
        })
        .filter(|le| le.is_finite())
        .map(|le| (le * 1e9).round() as u64)
        .collect();
    assert_eq!(le_ns.len(), 123, "{exposition}");
    let file = ringlat_read::RingFile::open(&ring).unwrap();
    let populations = file.population();
    let results = query(
        &prometheus,
        "histogram_quantile(0.99, sum by (le, kind) (ringlat_latency_seconds_bucket{file=\"gw\"}))",
    );
    assert_eq!(results.len(), 3, "{results:?}\n{}", log_text());
    for population in &populations {
        let kind = file.kind_label(population.kind);
        let histogram = population.histogram.as_ref().unwrap();
        assert_eq!(histogram.count(), population.calls());
        let p99 = histogram.percentile(0.99).unwrap();
        let answer = results
            .iter()
            .find(|sample| sample["metric"]["kind"] == kind.as_str())
            .map(value_of)
            .unwrap_or_else(|| panic!("no answer for {kind}: {results:?}"));
        // The population bucket [low, high) holding the p99 is counted at the first boundary
        // at or above high - 1; Prometheus interpolates inside the le bucket that ends there.
        let below = le_ns
            .iter()
            .rev()
            .find(|le| **le <= p99.low_ns)
            .copied()
            .unwrap_or(0);
        let above = *le_ns.iter().find(|le| **le >= p99.high_ns - 1).unwrap();
        let answer_ns = answer * 1e9;
        eprintln!(
            "{kind}: Prometheus histogram_quantile(0.99) {:.1} us, population p99 {:.1} us (bucket {}..{} ns), le bounds {}..{} ns",
            answer_ns / 1e3,
            p99.value_ns as f64 / 1e3,
            p99.low_ns,
            p99.high_ns,
            below,
            above
        );
        assert!(
            below as f64 - 1.0 <= answer_ns && answer_ns <= above as f64 + 1.0,
            "{kind}: Prometheus says {answer_ns} ns, the population p99 is in [{}, {}) ns: outside le {below}..{above}",
            p99.low_ns,
            p99.high_ns
        );
    }

    let up = query(&prometheus, "ringlat_up");
    let up_of = |label: &str| {
        up.iter()
            .find(|sample| sample["metric"]["file"] == label)
            .map(value_of)
    };
    assert_eq!(up_of("gw"), Some(1.0), "{up:?}");
    assert_eq!(up_of("broken"), Some(0.0), "{up:?}");
    assert_eq!(query(&prometheus, "up{job=\"ringlat\"}").len(), 1);

    // The alert rules load and evaluate (health ok) against the live series.
    wait_for(
        "the alert rules to evaluate",
        Duration::from_secs(30),
        || {
            let (_, _, body) = get(&prometheus, "/api/v1/rules");
            let json: Value = serde_json::from_str(&body).ok()?;
            let rules: Vec<Value> = json["data"]["groups"]
                .as_array()?
                .iter()
                .flat_map(|group| group["rules"].as_array().cloned().unwrap_or_default())
                .collect();
            (rules.len() == 3 && rules.iter().all(|rule| rule["health"] == "ok")).then_some(())
        },
    );
    // The unreadable file's alert goes pending (its `for:` is 5m).
    wait_for(
        "the unreadable file's alert",
        Duration::from_secs(30),
        || {
            let alerts = query(&prometheus, "ALERTS{alertname=\"RinglatRingUnreadable\"}");
            alerts
                .iter()
                .any(|a| a["metric"]["file"] == "broken" && a["metric"]["alertstate"] == "pending")
                .then_some(())
        },
    );
    eprintln!("done after {:.1} s", started.elapsed().as_secs_f64());
}
