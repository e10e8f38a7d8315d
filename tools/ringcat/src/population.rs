//! Loss-aware reading: the population percentiles (from the writers' histograms: every call,
//! within the bucket error) beside the sampled ones (from the records: exact, weighted by
//! 1/p), and the coverage (the share of calls the records represent; what the breaker or a
//! full ring dropped is not represented). `pct`, `stat` and `slice` call this module.
//!
//! Population comes from a ring's histogram area (the whole life of the ring) or an archive's
//! snapshots (per snapshot interval, so windows are possible). It is known per kind only:
//! groups by status, or filters on status, trace, time or latency have no population.

use crate::Failure;
use crate::cli::Unit;
use crate::pct::{GroupKey, Grouping, Row};
use crate::select::{Filter, Sources};
use crate::table::latency;
use ringlat_format::KindCounter;
use ringlat_read::Source;
use ringlat_read::percentile::Quantile;
use ringlat_read::population::{Histogram, coverage};
use std::collections::BTreeMap;

/// The population of one group.
#[derive(Debug, Clone, Default)]
pub(crate) struct Population {
    /// Every non-rejected call, by latency; `None` when a source has no histograms.
    pub histogram: Option<Histogram>,
    /// Outcome counters summed over the group, indexed like [`KindCounter::ALL`].
    pub counters: [u64; 6],
}

impl Population {
    fn get(&self, counter: KindCounter) -> u64 {
        self.counters[counter.index()]
    }

    /// Calls dropped by the breaker or a full ring.
    pub(crate) fn dropped(&self) -> u64 {
        self.get(KindCounter::DroppedBreaker)
            .saturating_add(self.get(KindCounter::DroppedFull))
    }

    /// Calls that were not rejected.
    pub(crate) fn accepted(&self) -> u64 {
        KindCounter::calls_of(&self.counters).saturating_sub(self.get(KindCounter::Rejected))
    }

    /// The share of accepted calls the records represent.
    pub(crate) fn coverage(&self) -> f64 {
        coverage(self.accepted(), self.dropped())
    }

    fn add(&mut self, counters: &[u64; 6], histogram: Option<&Histogram>, first: bool) {
        for (total, value) in self.counters.iter_mut().zip(counters) {
            *total = total.saturating_add(*value);
        }
        self.histogram = match (first, self.histogram.take(), histogram) {
            (true, _, Some(h)) => Some(h.clone()),
            (false, Some(mut mine), Some(h)) => {
                mine.merge(h);
                Some(mine)
            }
            _ => None,
        };
    }
}

/// True when the population histograms know the groups and filter (kinds and windows only):
/// [`collect`] will read the archives' snapshots.
pub(crate) fn applies(filter: &Filter, grouping: Grouping) -> bool {
    !grouping.by.status && filter.kinds_only()
}

/// Asks the archives to keep the snapshot entries the next pass meets when [`collect`] will
/// want them after it: that pass then spares [`collect`] a second read of every file.
pub(crate) fn keep_snapshots(sources: &Sources, filter: &Filter, grouping: Grouping) {
    if applies(filter, grouping) {
        sources
            .sources
            .iter()
            .for_each(|source| source.keep_snapshots());
    }
}

/// The population of every group the sources know, keyed like the sampled rows; `None` when
/// the filter or grouping is finer than what histograms know (status, trace, time, latency).
pub(crate) fn collect(
    sources: &Sources,
    filter: &Filter,
    grouping: Grouping,
) -> Result<Option<BTreeMap<GroupKey, Population>>, Failure> {
    if !applies(filter, grouping) {
        return Ok(None);
    }
    filter.check_kinds(sources)?;
    let mut groups: BTreeMap<GroupKey, Population> = BTreeMap::new();
    for (index, source) in sources.sources.iter().enumerate() {
        let kinds = filter.kinds_for(sources, index);
        let key_of = |window: Option<u64>, kind: u8| GroupKey {
            window,
            kind: grouping.by.kind.then(|| sources.label_index(index, kind)),
            status: None,
        };
        match source {
            Source::Ring { file, .. } => {
                if grouping.window_ns.is_some() {
                    // A ring's histograms cover its whole life: no windows.
                    return Ok(None);
                }
                for kind in file.population() {
                    if !kinds[kind.kind as usize] {
                        continue;
                    }
                    let key = key_of(None, kind.kind);
                    let first = !groups.contains_key(&key);
                    groups.entry(key).or_default().add(
                        &kind.counters,
                        kind.histogram.as_ref(),
                        first,
                    );
                }
            }
            Source::Archive(archive) => {
                let snapshots = archive.snapshot_deltas().map_err(Failure::from)?;
                if snapshots.is_empty() {
                    // An archive without snapshots (drained before they existed) has no
                    // population.
                    return Ok(None);
                }
                for snapshot in snapshots {
                    let window = grouping
                        .window_ns
                        .map(|w| snapshot.time_unix_ns - snapshot.time_unix_ns % w.max(1));
                    for kind in &snapshot.kinds {
                        if !kinds[kind.kind as usize] {
                            continue;
                        }
                        let key = key_of(window, kind.kind);
                        let first = !groups.contains_key(&key);
                        groups.entry(key).or_default().add(
                            &kind.counters,
                            kind.histogram.as_ref(),
                            first,
                        );
                    }
                }
            }
        }
    }
    Ok(Some(groups))
}

/// Which percentiles `pct` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Show {
    Both,
    Population,
    Sampled,
}

/// The table cells of a population row: records `-`, events = calls counted, min, the
/// percentiles, max, mean (bucket values, so within the bucket error).
fn cells(population: &Population, quantiles: &[Quantile], unit: Unit) -> Vec<String> {
    let dash = || "-".to_string();
    let Some(h) = population.histogram.as_ref().filter(|h| h.count() > 0) else {
        let mut cells = vec![dash(), population.accepted().to_string()];
        cells.extend((0..quantiles.len() + 3).map(|_| dash()));
        return cells;
    };
    let value = |fraction: f64| {
        h.percentile(fraction)
            .map_or_else(dash, |e| latency(e.value_ns as i64, unit))
    };
    let mut cells = vec![dash(), h.count().to_string(), value(0.0)];
    cells.extend(quantiles.iter().map(|q| value(q.fraction())));
    cells.push(value(1.0));
    let bucketed = h.count() - h.overflow() - h.negative();
    cells.push(if bucketed == 0 {
        dash()
    } else {
        format!(
            "{:.*}",
            unit.decimals(),
            h.sum_ns() as f64 / bucketed as f64 / unit.nanos()
        )
    });
    cells
}

fn coverage_cells(population: Option<&Population>) -> [String; 2] {
    match population {
        Some(p) => [
            format!("{:.2}%", p.coverage() * 100.0),
            p.dropped().to_string(),
        ],
        None => ["-".to_string(), "-".to_string()],
    }
}

/// `pct`'s table with population and sampled rows per group (`from` column) and the
/// coverage; `rows` are the sampled rows.
pub(crate) fn table(
    sources: &Sources,
    rows: &[Row],
    populations: &BTreeMap<GroupKey, Population>,
    quantiles: &[Quantile],
    grouping: Grouping,
    unit: Unit,
    show: Show,
) -> String {
    let mut header = crate::pct::key_headers(grouping);
    if header.is_empty() {
        header.push(String::new());
    }
    header.push("from".into());
    header.extend(crate::pct::value_headers(quantiles));
    header.extend(["coverage", "dropped"].map(String::from));
    let mut lines = vec![header];
    let sampled: BTreeMap<GroupKey, &Row> = rows.iter().map(|r| (r.key, r)).collect();
    let mut keys: Vec<GroupKey> = sampled.keys().chain(populations.keys()).copied().collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let mut label = crate::pct::key_cells(sources, &key, grouping);
        if label.is_empty() {
            label.push("all".to_string());
        }
        let population = populations.get(&key);
        if show != Show::Sampled
            && let Some(population) = population
        {
            let mut line = label.clone();
            line.push("population".into());
            line.extend(cells(population, quantiles, unit));
            line.extend(coverage_cells(Some(population)));
            lines.push(line);
        }
        if show != Show::Population
            && let Some(row) = sampled.get(&key)
        {
            let mut line = label;
            line.push("sampled".into());
            line.extend(crate::pct::value_cells(row, unit, 0));
            line.extend(coverage_cells(population));
            lines.push(line);
        }
    }
    let style = crate::style::Style::stdout();
    let mut text = crate::table::render(&lines, |h| style.bold(h));
    text.push_str(&style.dim(&format!(
        "latencies in {}; population: every call, from the writers' histograms (within 0.4%); \
         sampled: the records, {}; coverage: share of calls the records represent\n",
        unit.suffix(),
        if grouping.raw {
            "raw (every record weighs 1)"
        } else {
            "weighted by 1/p"
        }
    )));
    text
}

/// The json keys of a group's population: `population` (`calls` counted, `percentiles` in
/// ns keyed like the sampled ones, `min`, `max`, `mean`, `overflow`), `coverage` (0..1),
/// `calls`, `dropped_breaker`, `dropped_full`, `rejected`; null when unknown.
pub(crate) fn json_fields(
    population: Option<&Population>,
    quantiles: &[Quantile],
) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::{Value, json};
    let mut map = serde_json::Map::new();
    let Some(p) = population else {
        map.insert("population".into(), Value::Null);
        map.insert("coverage".into(), Value::Null);
        return map;
    };
    let histogram = p.histogram.as_ref().filter(|h| h.count() > 0).map(|h| {
        let at = |f: f64| h.percentile(f).map(|e| e.value_ns);
        let percentiles: serde_json::Map<String, Value> = quantiles
            .iter()
            .map(|q| (q.label().to_string(), at(q.fraction()).into()))
            .collect();
        let bucketed = h.count() - h.overflow() - h.negative();
        json!({
            "calls": h.count(),
            "percentiles": percentiles,
            "min": at(0.0),
            "max": at(1.0),
            "mean": (bucketed > 0).then(|| (h.sum_ns() as f64 / bucketed as f64).round() as u64),
            "overflow": h.overflow(),
        })
    });
    map.insert("population".into(), histogram.unwrap_or(Value::Null));
    map.insert("coverage".into(), p.coverage().into());
    map.insert("calls".into(), KindCounter::calls_of(&p.counters).into());
    for counter in [
        KindCounter::DroppedBreaker,
        KindCounter::DroppedFull,
        KindCounter::Rejected,
    ] {
        map.insert(counter.name().into(), p.get(counter).into());
    }
    map
}

/// The csv columns added after the sampled ones.
pub(crate) fn csv_headers(quantiles: &[Quantile]) -> Vec<String> {
    let mut cells = vec!["population_calls".to_string()];
    cells.extend(
        quantiles
            .iter()
            .map(|q| format!("population_p{}", q.label())),
    );
    cells.extend(["coverage", "dropped_breaker", "dropped_full"].map(String::from));
    cells
}

/// The csv cells of [`csv_headers`] (empty when unknown), latencies in `unit`.
pub(crate) fn csv_cells(
    population: Option<&Population>,
    quantiles: &[Quantile],
    unit: Unit,
) -> Vec<String> {
    let Some(p) = population else {
        return vec![String::new(); quantiles.len() + 4];
    };
    let h = p.histogram.as_ref().filter(|h| h.count() > 0);
    let mut cells = vec![h.map_or_else(String::new, |h| h.count().to_string())];
    cells.extend(quantiles.iter().map(|q| {
        h.and_then(|h| h.percentile(q.fraction()))
            .map_or_else(String::new, |e| latency(e.value_ns as i64, unit))
    }));
    cells.push(format!("{:.6}", p.coverage()));
    cells.push(p.get(KindCounter::DroppedBreaker).to_string());
    cells.push(p.get(KindCounter::DroppedFull).to_string());
    cells
}

/// Warns on stderr about every group whose coverage is below `threshold` (a fraction).
pub(crate) fn warn_low_coverage(
    sources: &Sources,
    populations: &BTreeMap<GroupKey, Population>,
    grouping: Grouping,
    threshold: f64,
) {
    let style = crate::style::Style::stderr();
    for (key, population) in populations {
        if population.coverage() >= threshold {
            continue;
        }
        let mut label = crate::pct::key_cells(sources, key, grouping).join(" ");
        if label.is_empty() {
            label = "all".into();
        }
        eprintln!(
            "ringcat: {}: coverage of {label} is {:.2}% (below {:.2}%): {} of {} calls were \
             dropped (breaker {}, full {}); the sampled percentiles miss them, the population \
             ones count them",
            style.red("warning"),
            population.coverage() * 100.0,
            threshold * 100.0,
            population.dropped(),
            population.accepted(),
            population.get(KindCounter::DroppedBreaker),
            population.get(KindCounter::DroppedFull),
        );
    }
}

/// A `--fail-if` rule on the coverage: `[KIND:]coverage<99%` (also `<=`, `>`, `>=`; the
/// percent sign is optional). Broken when the comparison holds.
#[derive(Debug, Clone)]
pub(crate) struct CoverageRule {
    text: String,
    kind: Option<String>,
    below: bool,
    inclusive: bool,
    limit: f64,
}

impl CoverageRule {
    /// `None` when `text` is not a coverage rule (another `--fail-if` rule).
    pub(crate) fn parse(text: &str) -> Option<Result<Self, Failure>> {
        let (selector, rule) = match text.split_once(':') {
            Some((selector, rule)) => (Some(selector.trim()), rule.trim()),
            None => (None, text.trim()),
        };
        let rest = rule.strip_prefix("coverage")?;
        let bad = |why: &str| {
            Failure::Usage(format!(
                "--fail-if '{text}': {why} (e.g. 'coverage<99%', 'market:coverage<=95%')"
            ))
        };
        let kind = match selector {
            None => None,
            Some(s) if s.is_empty() || s.contains("status") => {
                return Some(Err(bad("coverage is known per kind only")));
            }
            Some(s) => Some(s.strip_prefix("kind=").unwrap_or(s).to_string()),
        };
        let rest = rest.trim();
        let (below, inclusive, number) = if let Some(n) = rest.strip_prefix("<=") {
            (true, true, n)
        } else if let Some(n) = rest.strip_prefix(">=") {
            (false, true, n)
        } else if let Some(n) = rest.strip_prefix('<') {
            (true, false, n)
        } else if let Some(n) = rest.strip_prefix('>') {
            (false, false, n)
        } else {
            return Some(Err(bad("no comparison")));
        };
        let number = number.trim().trim_end_matches('%').trim();
        let limit = match number.parse::<f64>() {
            Ok(v) if (0.0..=100.0).contains(&v) => v / 100.0,
            _ => return Some(Err(bad("the limit is a percentage, 0..100"))),
        };
        Some(Ok(CoverageRule {
            text: text.to_string(),
            kind,
            below,
            inclusive,
            limit,
        }))
    }

    /// The kind the rule selects, if any.
    pub(crate) fn kind(&self) -> Option<&str> {
        self.kind.as_deref()
    }

    /// Evaluates the rule over the population of its selection; prints the verdict on stderr.
    /// True when broken.
    pub(crate) fn check(&self, sources: &Sources, filter: &Filter) -> Result<bool, Failure> {
        let selection = filter.narrowed(self.kind.as_deref(), None);
        let grouping = Grouping {
            by: crate::cli::By::default(),
            window_ns: None,
            raw: false,
        };
        let total = collect(sources, &selection, grouping)?
            .and_then(|groups| groups.into_values().next())
            .ok_or_else(|| {
                Failure::Usage(format!(
                    "--fail-if '{}': the files have no population for this selection \
                     (coverage needs whole kinds of a ring, or an archive with snapshots)",
                    self.text
                ))
            })?;
        let value = total.coverage();
        let holds = match (self.below, self.inclusive) {
            (true, false) => value < self.limit,
            (true, true) => value <= self.limit,
            (false, false) => value > self.limit,
            (false, true) => value >= self.limit,
        };
        let style = crate::style::Style::stderr();
        eprintln!(
            "ringcat: SLO {}: {} (measured {:.2}%, {} of {} calls dropped)",
            if holds {
                style.red("broken")
            } else {
                "passed".to_string()
            },
            self.text,
            value * 100.0,
            total.dropped(),
            total.accepted()
        );
        Ok(holds)
    }
}

/// Splits `--fail-if` rules into coverage rules and the others (kept as text).
pub(crate) fn split_rules(rules: &[String]) -> Result<(Vec<CoverageRule>, Vec<String>), Failure> {
    let mut coverage = Vec::new();
    let mut others = Vec::new();
    for rule in rules {
        match CoverageRule::parse(rule) {
            Some(parsed) => coverage.push(parsed?),
            None => others.push(rule.clone()),
        }
    }
    Ok((coverage, others))
}

/// `pct`'s output (table, json or csv) with the population beside the sampled rows.
pub(crate) fn render(
    sources: &Sources,
    rows: &[Row],
    populations: Option<&BTreeMap<GroupKey, Population>>,
    quantiles: &[Quantile],
    grouping: Grouping,
    args: &crate::cli::PctArgs,
) -> String {
    use crate::cli::PctFormat;
    let show = if args.population {
        Show::Population
    } else if args.sampled {
        Show::Sampled
    } else {
        Show::Both
    };
    let populations = populations.filter(|_| !args.sampled);
    let Some(populations) = populations else {
        if args.population {
            eprintln!(
                "ringcat: no population for this selection (histograms know whole kinds of a \
                 ring, or an archive's snapshot intervals; not statuses, traces or latency \
                 bounds): showing the sampled percentiles"
            );
        }
        return match args.format {
            PctFormat::Json => crate::pct::json(sources, rows, quantiles).to_string() + "\n",
            PctFormat::Csv => crate::pct::csv(sources, rows, quantiles, grouping, args.unit),
            _ => crate::pct::table(sources, rows, quantiles, grouping, args.unit),
        };
    };
    match args.format {
        PctFormat::Json => {
            let serde_json::Value::Array(mut objects) = crate::pct::json(sources, rows, quantiles)
            else {
                return String::new();
            };
            for (object, row) in objects.iter_mut().zip(rows) {
                if let serde_json::Value::Object(map) = object {
                    map.extend(json_fields(populations.get(&row.key), quantiles));
                }
            }
            let sampled: std::collections::BTreeSet<GroupKey> =
                rows.iter().map(|r| r.key).collect();
            for (key, population) in populations.iter().filter(|(k, _)| !sampled.contains(k)) {
                let mut group = serde_json::Map::new();
                if let Some(kind) = key.kind {
                    group.insert("kind".into(), sources.label(kind).into());
                }
                let mut map = serde_json::Map::new();
                map.insert("group".into(), group.into());
                map.insert("records".into(), 0.into());
                if let Some(window) = key.window {
                    map.insert("window_start".into(), window.to_string().into());
                    map.insert("window".into(), crate::time::rfc3339_nanos(window).into());
                }
                map.extend(json_fields(Some(population), quantiles));
                objects.push(map.into());
            }
            serde_json::Value::Array(objects).to_string() + "\n"
        }
        PctFormat::Csv => {
            let text = crate::pct::csv(sources, rows, quantiles, grouping, args.unit);
            let mut lines = text.lines();
            let mut out = String::new();
            if let Some(header) = lines.next() {
                out.push_str(header);
                out.push(',');
                out.push_str(&csv_headers(quantiles).join(","));
                out.push('\n');
            }
            for (line, row) in lines.zip(rows) {
                out.push_str(line);
                out.push(',');
                let cells = csv_cells(populations.get(&row.key), quantiles, args.unit);
                out.push_str(&cells.join(","));
                out.push('\n');
            }
            let sampled: std::collections::BTreeSet<GroupKey> =
                rows.iter().map(|r| r.key).collect();
            let empty = crate::pct::value_headers(quantiles).len();
            for (key, population) in populations.iter().filter(|(k, _)| !sampled.contains(k)) {
                let mut cells: Vec<String> = crate::pct::key_cells(sources, key, grouping)
                    .iter()
                    .map(|c| crate::output::csv_field(c))
                    .collect();
                if grouping.window_ns.is_some() {
                    cells[0] = key.window.unwrap_or(0).to_string();
                }
                cells.push("0".into());
                cells.extend((1..empty).map(|_| String::new()));
                cells.extend(csv_cells(Some(population), quantiles, args.unit));
                out.push_str(&cells.join(","));
                out.push('\n');
            }
            out
        }
        _ => table(
            sources,
            rows,
            populations,
            quantiles,
            grouping,
            args.unit,
            show,
        ),
    }
}

/// `stat`'s text lines: per kind, the population p50/p99/p99.9 of every call and the
/// coverage (nothing when the ring has no histograms).
pub(crate) fn stat_lines(file: &ringlat_read::RingFile) -> Vec<String> {
    let population = file.population();
    if population.iter().all(|k| k.histogram.is_none()) {
        return vec!["population: no histograms (the writer turned them off)".into()];
    }
    let mut lines = vec![
        String::new(),
        "population (every call, from the histograms):".into(),
    ];
    for kind in population {
        let Some(h) = &kind.histogram else { continue };
        let at = |q: f64| {
            h.percentile(q)
                .map_or_else(|| "-".to_string(), |e| latency_text(e.value_ns))
        };
        lines.push(format!(
            "  {:<12} {:>10} calls  p50 {}  p99 {}  p99.9 {}  coverage {:.2}%",
            file.kind_label(kind.kind),
            h.count(),
            at(0.5),
            at(0.99),
            at(0.999),
            kind.coverage() * 100.0
        ));
    }
    lines
}

/// A latency in the unit that reads best: `850ns`, `12.3us`, `4.56ms`, `1.20s`.
fn latency_text(ns: u64) -> String {
    match ns {
        0..1_000 => format!("{ns}ns"),
        1_000..1_000_000 => format!("{:.1}us", ns as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.2}ms", ns as f64 / 1e6),
        _ => format!("{:.2}s", ns as f64 / 1e9),
    }
}

/// `stat`'s json `population` array: per kind `{"kind", "calls", "p50", "p99", "p99.9"` (ns,
/// null when empty), `"coverage"}`; empty when the ring has no histograms.
pub(crate) fn stat_json(file: &ringlat_read::RingFile) -> serde_json::Value {
    file.population()
        .iter()
        .filter_map(|kind| {
            let h = kind.histogram.as_ref()?;
            let at = |q: f64| h.percentile(q).map(|e| e.value_ns);
            Some(serde_json::json!({
                "kind": file.kind_label(kind.kind),
                "calls": h.count(),
                "p50": at(0.5),
                "p99": at(0.99),
                "p99.9": at(0.999),
                "coverage": kind.coverage(),
            }))
        })
        .collect()
}

/// The one group [`calls_above`] collects: every selected call.
const SLICE_GROUPING: Grouping = Grouping {
    by: crate::cli::By {
        kind: false,
        status: false,
    },
    window_ns: None,
    raw: false,
};

/// For `slice`, before its passes: [`keep_snapshots`] for [`calls_above`].
pub(crate) fn keep_snapshots_for_slice(sources: &Sources, filter: &Filter) {
    keep_snapshots(sources, filter, SLICE_GROUPING);
}

/// For `slice`: the calls above `threshold_ns` that the population histograms count, and all
/// calls they count, over the selection; `None` when the selection has no population.
pub(crate) fn calls_above(
    sources: &Sources,
    filter: &Filter,
    threshold_ns: i64,
) -> Result<Option<(u64, u64)>, Failure> {
    let Some(groups) = collect(sources, filter, SLICE_GROUPING)? else {
        return Ok(None);
    };
    let mut above = 0u64;
    let mut calls = 0u64;
    for population in groups.values() {
        let Some(h) = &population.histogram else {
            return Ok(None);
        };
        above += h.count_above(u64::try_from(threshold_ns).unwrap_or(0));
        calls += h.count();
    }
    Ok(Some((above, calls)))
}

/// `slice`'s line about the population: `N records listed of about M calls above the
/// threshold (the population histograms count every call)`.
pub(crate) fn slice_line(listed: usize, records: u64, counted: Option<(u64, u64)>) -> String {
    match counted {
        Some((above, calls)) => format!(
            "population {listed} records shown ({records} records above it) out of about {above} \
             calls above it of {calls} calls (the writers' histograms count every call)\n"
        ),
        None => "population not known for this selection (histograms count whole kinds)\n".into(),
    }
}
