//! Statistical acceptance of the population histograms, with a known truth: a simulated
//! population of three kinds (rates 100%, 10%, 50%, keep-if-slow) and a burst that trips the
//! breaker and drops most of one kind's calls. The population percentiles must match the true
//! percentiles of every call within 1%; the sampled (weighted) ones are visibly off for the
//! burst kind, and `ringcat pct` says so (coverage warning, `--fail-if coverage<99%`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use common::ringcat;
use ringlat::{Decision, Ring};
use ringlat_format::KindCounter;
use ringlat_read::{Drainer, RingFile};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const KINDS: [(u8, &str, f64); 3] = [(0, "market", 1.0), (1, "limit", 0.1), (2, "cancel", 0.5)];
const QUANTILES: [f64; 5] = [0.5, 0.9, 0.99, 0.995, 0.999];

/// splitmix64: a deterministic stream of draws.
struct Draws(u64);

impl Draws {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A heavy-tailed latency: Pareto from `base_ns`, capped at 500 ms.
    fn latency(&mut self, base_ns: f64) -> Duration {
        let u = self.unit().min(0.999_999);
        let ns = base_ns * (1.0 - u).powf(-1.0 / 2.5);
        Duration::from_nanos(ns.min(5e8) as u64)
    }
}

/// The nearest-rank percentile of sorted `values`.
fn true_percentile(sorted: &[u64], q: f64) -> u64 {
    let rank = ((q * sorted.len() as f64) - 1e-7).ceil().max(1.0) as usize;
    sorted[rank - 1]
}

/// The weighted nearest-rank percentile of `(value, weight)` records.
fn weighted_percentile(records: &mut [(u64, f64)], q: f64) -> u64 {
    records.sort_by_key(|r| r.0);
    let total: f64 = records.iter().map(|r| r.1).sum();
    let mut seen = 0.0;
    for (value, weight) in records.iter() {
        seen += weight;
        if seen >= q * total - 1e-6 {
            return *value;
        }
    }
    records.last().map_or(0, |r| r.0)
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

struct Simulated {
    /// Per kind: every non-rejected call's latency in ns.
    truth: Vec<Vec<u64>>,
    /// Per kind: (value ns, weight 1/p) of every record drained.
    sampled: Vec<Vec<(u64, f64)>>,
    rejected: Vec<u64>,
}

/// Writes the simulated population into a ring at `path` (and drains it as it goes, except
/// during the burst), returning the truth.
fn simulate(path: &Path) -> Simulated {
    let mut builder = Ring::builder(path)
        .capacity(4096)
        .delta_unit(ringlat::DeltaUnit::Nanos)
        .keep_if_slower_than(Duration::from_millis(100))
        .decision(Decision::Random)
        .seed(7);
    for (id, name, rate) in KINDS {
        builder = builder.kind(id, name).rate(id, rate);
    }
    let ring = builder.create().unwrap();
    let mut drainer = Drainer::open(path).unwrap();
    let mut sim = Simulated {
        truth: vec![Vec::new(); 3],
        sampled: vec![Vec::new(); 3],
        rejected: vec![0; 3],
    };
    let drain = |drainer: &mut Drainer, sampled: &mut Vec<Vec<(u64, f64)>>| {
        drainer
            .drain(usize::MAX, |d| {
                sampled[d.kind as usize].push((d.record.delta() as u64, 1.0 / d.probability));
                Ok::<_, ()>(())
            })
            .unwrap();
    };
    let mut draws = Draws(42);
    let call = |sim: &mut Simulated, kind: u8, delta: Duration, trace: u64| {
        ring.record(kind, trace, 0, delta);
        sim.truth[kind as usize].push(delta.as_nanos() as u64);
    };
    // Normal traffic, drained often enough that the ring never fills.
    for i in 0..60_000u64 {
        let kind = (i % 3) as u8;
        let delta = draws.latency(20_000.0 * f64::from(kind + 1));
        call(&mut sim, kind, delta, i);
        if i % 500 == 0 {
            drain(&mut drainer, &mut sim.sampled);
        }
        if i % 10_000 == 0 {
            // Bad input: a timestamp an hour away is rejected, never histogrammed.
            ring.record_at(kind, i, 0, delta, now_ns() - 3_600_000_000_000);
            sim.rejected[kind as usize] += 1;
        }
    }
    drain(&mut drainer, &mut sim.sampled);
    // The burst: slow market calls with nobody draining; the breaker trips and drops most.
    for i in 0..40_000u64 {
        let delta = draws.latency(2_000_000.0);
        call(&mut sim, 0, delta, 1_000_000 + i);
    }
    drain(&mut drainer, &mut sim.sampled);
    // A background tick closes the breaker now that the ring is empty: wait for it (a loaded
    // machine may run the tick late), so the calls below are not dropped.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while ring.breaker_open() {
        assert!(
            std::time::Instant::now() < deadline,
            "the breaker never closed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    for i in 0..3_000u64 {
        let kind = (i % 3) as u8;
        call(&mut sim, kind, draws.latency(20_000.0), 2_000_000 + i);
    }
    drain(&mut drainer, &mut sim.sampled);
    ring.close().unwrap();
    for values in &mut sim.truth {
        values.sort_unstable();
    }
    sim
}

#[test]
fn population_matches_the_truth_and_the_loss_is_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sim.ring");
    let sim = simulate(&path);
    let file = RingFile::open(&path).unwrap();
    let population = file.population();
    assert_eq!(population.len(), 3);
    for (index, kind) in population.iter().enumerate() {
        let histogram = kind
            .histogram
            .as_ref()
            .expect("histograms are on by default");
        // Every call is counted: calls = histogram count + rejected.
        assert_eq!(
            kind.calls(),
            histogram.count() + kind.get(KindCounter::Rejected),
            "kind {}",
            kind.kind
        );
        assert_eq!(histogram.count(), sim.truth[index].len() as u64);
        assert_eq!(kind.get(KindCounter::Rejected), sim.rejected[index]);
        for q in QUANTILES {
            let truth = true_percentile(&sim.truth[index], q) as f64;
            let estimate = histogram.percentile(q).unwrap().value_ns as f64;
            let error = (estimate - truth).abs() / truth;
            eprintln!(
                "kind {} p{}: truth {truth:.0} ns, population {estimate:.0} ns, error {:.3}%",
                kind.kind,
                q * 100.0,
                error * 100.0
            );
            assert!(
                error <= 0.01,
                "kind {} p{q}: {estimate} vs {truth}",
                kind.kind
            );
        }
    }
    // The burst kind lost at least 30% of its calls, and its sampled percentiles show it.
    let market = &population[0];
    let dropped = market.dropped() as f64 / market.calls() as f64;
    eprintln!(
        "market: {} calls, {} dropped ({:.1}%), coverage {:.4}",
        market.calls(),
        market.dropped(),
        dropped * 100.0,
        market.coverage()
    );
    assert!(dropped >= 0.30, "the burst dropped only {dropped}");
    assert!(market.coverage() < 0.99);
    let mut sampled = sim.sampled[0].clone();
    for q in [0.5, 0.9] {
        let truth = true_percentile(&sim.truth[0], q) as f64;
        let weighted = weighted_percentile(&mut sampled, q) as f64;
        eprintln!(
            "market p{}: truth {truth:.0} ns, sampled {weighted:.0} ns",
            q * 100.0
        );
        assert!(
            (weighted - truth).abs() / truth > 0.3,
            "sampled p{q} {weighted} should be visibly off the truth {truth}"
        );
    }
    // The other kinds lost nothing: full coverage, and their weighted sample is unbiased.
    for kind in &population[1..] {
        assert_eq!(kind.dropped(), 0);
        assert_eq!(kind.coverage(), 1.0);
    }

    // ringcat pct: both kinds of percentiles, the coverage, and the warning.
    let path_arg = path.to_str().unwrap();
    let output = ringcat(&["pct", path_arg, "--by", "kind", "--format", "json"]);
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("coverage") && stderr.contains("market"),
        "no coverage warning: {stderr}"
    );
    assert!(!stderr.contains("limit"), "limit lost nothing: {stderr}");
    let rows: Value = serde_json::from_slice(&output.stdout).unwrap();
    let market_row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["group"]["kind"] == "market")
        .unwrap();
    let truth_p99 = true_percentile(&sim.truth[0], 0.99) as f64;
    let pop_p99 = market_row["population"]["percentiles"]["99"]
        .as_f64()
        .unwrap();
    assert!(
        (pop_p99 - truth_p99).abs() <= truth_p99 * 0.01,
        "{market_row}"
    );
    let coverage = market_row["coverage"].as_f64().unwrap();
    assert!((coverage - market.coverage()).abs() < 1e-9);
    assert_eq!(
        market_row["dropped_breaker"].as_u64().unwrap(),
        market.get(KindCounter::DroppedBreaker)
    );
    // --fail-if tests the coverage: broken for market, fine for limit.
    let broken = ringcat(&["pct", path_arg, "--fail-if", "market:coverage<99%"]);
    assert_eq!(broken.status.code(), Some(3), "{broken:?}");
    let held = ringcat(&["pct", path_arg, "--fail-if", "limit:coverage<99%"]);
    assert_eq!(held.status.code(), Some(0), "{held:?}");
    // slice: how many calls above its threshold the population counts.
    let output = ringcat(&["slice", path_arg, "--above", "5ms", "--format", "json"]);
    assert!(output.status.success(), "{output:?}");
    let value: Value = serde_json::from_slice(&output.stdout).unwrap();
    let above = value["calls_above"]["above"].as_u64().unwrap() as f64;
    let truth_above = sim
        .truth
        .iter()
        .flatten()
        .filter(|ns| **ns > 5_000_000)
        .count() as f64;
    assert!(
        (above - truth_above).abs() <= truth_above * 0.01,
        "{above} vs {truth_above}"
    );
    let text = ringcat(&["slice", path_arg, "--above", "5ms"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("calls above it"));
    // stat: the population p50/p99/p99.9 per kind.
    let output = ringcat(&["stat", path_arg, "--format", "json"]);
    let value: Value = serde_json::from_slice(&output.stdout).unwrap();
    let market_stat = &value["population"][0];
    assert_eq!(market_stat["kind"], "market");
    let p999 = market_stat["p99.9"].as_f64().unwrap();
    let truth_p999 = true_percentile(&sim.truth[0], 0.999) as f64;
    assert!((p999 - truth_p999).abs() <= truth_p999 * 0.01);
    let text = ringcat(&["stat", path_arg]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("population (every call"));
    // The table names both kinds of rows.
    let table = ringcat(&["pct", path_arg, "--by", "kind"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("population") && text.contains("sampled"),
        "{text}"
    );
    let only = ringcat(&["pct", path_arg, "--by", "kind", "--population"]);
    let text = String::from_utf8_lossy(&only.stdout);
    let from = |l: &str| l.split_whitespace().nth(1).map(str::to_string);
    assert!(
        text.lines()
            .any(|l| from(l).as_deref() == Some("population")),
        "{text}"
    );
    assert!(
        !text.lines().any(|l| from(l).as_deref() == Some("sampled")),
        "{text}"
    );
}

#[test]
fn histograms_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("off.ring");
    let ring = Ring::builder(&path)
        .kind(0, "op")
        .population_histograms(false)
        .create()
        .unwrap();
    ring.record(0, 1, 0, Duration::from_micros(5));
    ring.close().unwrap();
    let file = RingFile::open(&path).unwrap();
    assert_eq!(file.geometry().hist_kinds, 0);
    assert!(file.population()[0].histogram.is_none());
    assert_eq!(file.population()[0].calls(), 1);
}

/// Sums an archive's snapshot differences per archive kind.
fn summed_snapshots(
    path: &Path,
) -> std::collections::BTreeMap<u8, ([u64; 6], ringlat_read::population::Histogram)> {
    let reader = ringlat_read::archive::ArchiveReader::open(path).unwrap();
    let mut sums = std::collections::BTreeMap::new();
    for snapshot in reader.snapshot_deltas().unwrap() {
        for kind in snapshot.kinds {
            let (counters, histogram): &mut ([u64; 6], ringlat_read::population::Histogram) =
                sums.entry(kind.kind).or_default();
            for (total, value) in counters.iter_mut().zip(kind.counters) {
                *total += value;
            }
            histogram.merge(kind.histogram.as_ref().unwrap());
        }
    }
    sums
}

#[test]
fn archive_snapshots_add_up_across_restarts_and_torn_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let ring_path = dir.path().join("r.ring");
    let archive = dir.path().join("r.archive");
    let ring = Ring::builder(&ring_path)
        .kind(0, "market")
        .kind(3, "cancel")
        .rate(3, 0.5)
        .create()
        .unwrap();
    let mut draws = Draws(5);
    let (ring_arg, archive_arg) = (ring_path.to_str().unwrap(), archive.to_str().unwrap());
    let drain = || {
        let output = ringcat(&["drain", ring_arg, "-o", archive_arg, "--interval", "1ms"]);
        assert!(output.status.success(), "{output:?}");
    };
    for round in 0..3u64 {
        for i in 0..3000u64 {
            let kind = if i % 2 == 0 { 0 } else { 3 };
            ring.record(kind, round * 10_000 + i, 0, draws.latency(30_000.0));
        }
        ring.flush().unwrap();
        drain();
        if round == 1 {
            // A snapshot cut short by a crash: entries without their end entry.
            use std::io::Write;
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(&archive)
                .unwrap();
            let mut torn = [0u8; 32];
            torn[0] = 99;
            torn[24] = ringlat_read::archive::SNAPSHOT_KIND;
            torn[27] = ringlat_read::archive::SNAPSHOT_SOURCE;
            file.write_all(&torn).unwrap();
            file.write_all(&torn).unwrap();
        }
    }
    ring.close().unwrap();
    drain();
    let file = RingFile::open(&ring_path).unwrap();
    let sums = summed_snapshots(&archive);
    for kind in file.population() {
        let (counters, histogram) = &sums[&kind.kind];
        assert_eq!(*counters, kind.counters, "kind {}", kind.kind);
        assert_eq!(
            Some(histogram),
            kind.histogram.as_ref(),
            "kind {}",
            kind.kind
        );
    }
    // Records are read as before: snapshot entries are never records.
    let records = ringcat(&["cat", archive_arg, "--format", "csv"]);
    assert!(records.status.success(), "{records:?}");
    let lines = String::from_utf8_lossy(&records.stdout).lines().count() as u64 - 1;
    let written: u64 = file
        .population()
        .iter()
        .map(|k| k.get(KindCounter::Written))
        .sum();
    assert_eq!(lines, written);
    // pct over the archive: the population of every call, from the snapshots.
    let output = ringcat(&["pct", archive_arg, "--by", "kind", "--format", "json"]);
    assert!(output.status.success(), "{output:?}");
    let rows: Value = serde_json::from_slice(&output.stdout).unwrap();
    for row in rows.as_array().unwrap() {
        assert_eq!(row["population"]["calls"].as_u64(), Some(4500), "{row}");
        assert_eq!(row["coverage"].as_f64(), Some(1.0));
    }
    // Windows over an archive come from the snapshot times.
    let output = ringcat(&["pct", archive_arg, "--window", "1h", "--format", "json"]);
    assert!(output.status.success(), "{output:?}");
    let rows: Value = serde_json::from_slice(&output.stdout).unwrap();
    let calls: u64 = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["population"]["calls"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(calls, 9000);
}

#[test]
fn every_thread_and_the_single_producer_are_counted_exactly() {
    let dir = tempfile::tempdir().unwrap();
    // Many threads: more than the 32 stripes, so stripes are shared (fetch_add) and all used.
    let path = dir.path().join("threads.ring");
    let ring = Ring::builder(&path)
        .capacity(1 << 10)
        .kind(0, "a")
        .rate(0, 0.25)
        .kind(1, "b")
        .create()
        .unwrap();
    std::thread::scope(|scope| {
        for thread in 0..40u64 {
            let ring = ring.clone();
            scope.spawn(move || {
                for i in 0..2_000u64 {
                    let kind = (i % 2) as u8;
                    ring.record(
                        kind,
                        thread << 32 | i,
                        0,
                        Duration::from_nanos(100 + i * 37),
                    );
                }
            });
        }
    });
    ring.flush().unwrap();
    let file = RingFile::open(&path).unwrap();
    for kind in file.population() {
        let histogram = kind.histogram.as_ref().unwrap();
        assert_eq!(histogram.count(), 40_000, "kind {}", kind.kind);
        assert_eq!(
            kind.calls(),
            histogram.count() + kind.get(KindCounter::Rejected)
        );
        assert!(kind.dropped() > 0, "a 1024-slot ring nobody drains drops");
    }
    drop(file);
    ring.close().unwrap();
    // The single producer (its own stripe, load + store).
    let path = dir.path().join("single.ring");
    let single = Ring::builder(&path)
        .kind(3, "c")
        .create_single_producer()
        .unwrap();
    for i in 0..5_000u64 {
        single.record(3, i, 0, Duration::from_micros(i));
    }
    single.close().unwrap();
    let file = RingFile::open(&path).unwrap();
    let c = &file.population()[0];
    assert_eq!(c.histogram.as_ref().unwrap().count(), 5_000);
    let p50 = c
        .histogram
        .as_ref()
        .unwrap()
        .percentile(0.5)
        .unwrap()
        .value_ns as f64;
    assert!((p50 - 2_499_000.0).abs() <= 2_499_000.0 * 0.01, "{p50}");
}

#[test]
fn pct_hlog_is_an_hdrhistogram_interval_log_of_the_population() {
    use hdrhistogram::serialization::Deserializer;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    let dir = tempfile::tempdir().unwrap();
    let ring_path = dir.path().join("h.ring");
    let ring = Ring::builder(&ring_path)
        .capacity(1 << 14)
        .delta_unit(ringlat::DeltaUnit::Nanos)
        .kind(0, "market")
        .kind(1, "limit")
        .rate(1, 0.1)
        .create()
        .unwrap();
    // market: 1..=1000 us, limit: 2000 calls at 5 ms (sampled at 10%, all in the population).
    for i in 1..=1000u64 {
        ring.record(0, i, 0, Duration::from_micros(i));
    }
    for i in 0..2000u64 {
        ring.record(1, i, 0, Duration::from_millis(5));
    }
    ring.flush().unwrap();
    let archive = dir.path().join("h.archive");
    let (r, a) = (ring_path.to_str().unwrap(), archive.to_str().unwrap());
    let drained = ringcat(&["drain", r, "-o", a]);
    assert!(drained.status.success(), "{drained:?}");
    for file in [r, a] {
        let output = ringcat(&["pct", file, "--format", "hlog"]);
        assert!(output.status.success(), "{output:?}");
        let mut totals: std::collections::BTreeMap<String, hdrhistogram::Histogram<u64>> =
            std::collections::BTreeMap::new();
        let mut deserializer = Deserializer::new();
        for entry in IntervalLogIterator::new(&output.stdout) {
            if let LogEntry::Interval(interval) = entry.unwrap() {
                use base64::Engine as _;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(interval.encoded_histogram())
                    .unwrap();
                let histogram: hdrhistogram::Histogram<u64> =
                    deserializer.deserialize(&mut bytes.as_slice()).unwrap();
                let tag = interval.tag().unwrap().as_str().to_string();
                totals
                    .entry(tag)
                    .or_insert_with(|| hdrhistogram::Histogram::new(3).unwrap())
                    .add(&histogram)
                    .unwrap();
            }
        }
        assert_eq!(totals["market"].len(), 1000, "{file}: every market call");
        assert_eq!(
            totals["limit"].len(),
            2000,
            "{file}: every limit call, not the 10%"
        );
        let p99 = totals["market"].value_at_quantile(0.99) as f64;
        assert!(
            (p99 - 990_000.0).abs() / 990_000.0 < 0.01,
            "{file}: p99 {p99}"
        );
        let limit = totals["limit"].value_at_quantile(0.5) as f64;
        assert!(
            (limit - 5e6).abs() / 5e6 < 0.01,
            "{file}: limit p50 {limit}"
        );
    }
}
