//! `ringcat pct`: percentiles per group and time window, weighted by 1/p, exact, streaming.

use crate::Failure;
use crate::cli::{By, PctArgs, PctFormat, Unit};
use crate::duration::parse_latency_ns;
use crate::output::csv_field;
use crate::progress::Progress;
use crate::select::{Filter, Sources};
use crate::style::Style;
use crate::table::{latency, render};
use ringlat_read::percentile::{Histograms, Quantile, Summary, weight_of};
use serde_json::{Map, Value, json};
use std::io::Write;

/// What a row is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct GroupKey {
    pub window: Option<u64>,
    pub kind: Option<u16>,
    pub status: Option<u8>,
}

/// One computed row.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub key: GroupKey,
    pub values: Vec<i64>,
    pub summary: Summary,
}

/// How rows are formed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grouping {
    pub by: By,
    pub window_ns: Option<u64>,
    pub raw: bool,
}

/// Exact weighted percentiles of the selected records, in two passes.
pub(crate) fn compute(
    sources: &Sources,
    filter: &Filter,
    grouping: Grouping,
    quantiles: &[Quantile],
    progress: &mut Progress,
) -> Result<Vec<Row>, Failure> {
    let key_of = |source: usize, sample: &ringlat_read::Sample| GroupKey {
        window: grouping
            .window_ns
            .map(|w| sample.nanotime - sample.nanotime % w.max(1)),
        kind: grouping
            .by
            .kind
            .then(|| sources.label_index(source, sample.kind)),
        status: grouping.by.status.then_some(sample.status),
    };
    let mut pass1 = Histograms::new(quantiles.to_vec());
    progress.next_pass("pass 1/2");
    sources.selected(filter, progress, |source, sample| {
        pass1.add(
            key_of(source, sample),
            sample.delta_ns,
            weight_of(sample.probability, grouping.raw),
        );
    })?;
    let mut pass2 = pass1.plan();
    progress.next_pass("pass 2/2");
    sources.selected(filter, progress, |source, sample| {
        pass2.add(
            &key_of(source, sample),
            sample.delta_ns,
            weight_of(sample.probability, grouping.raw),
        );
    })?;
    progress.finish();
    Ok(pass2
        .finish()
        .into_iter()
        .map(|(key, values, summary)| Row {
            key,
            values,
            summary,
        })
        .collect())
}

pub(crate) fn parse_quantiles(list: &[String]) -> Result<Vec<Quantile>, Failure> {
    list.iter()
        .map(|q| Quantile::parse(q.trim_start_matches(['p', 'P'])).map_err(Failure::Usage))
        .collect()
}

pub(crate) fn run(args: &PctArgs) -> Result<(), Failure> {
    let sources = Sources::open(&args.files)?;
    let filter = Filter::parse(&args.filter)?;
    let rules = args
        .fail_if
        .iter()
        .map(|r| SloRule::parse(r))
        .collect::<Result<Vec<_>, _>>()?;
    let mut progress = Progress::new("reading", sources.len_hint());
    let grouping = Grouping {
        by: args.by,
        window_ns: args.window.map(|w| w.as_nanos().max(1) as u64),
        raw: args.raw,
    };
    let mut out = std::io::stdout().lock();
    if args.format == PctFormat::Hgrm {
        let quantiles = spectrum();
        let rows = compute(&sources, &filter, grouping, &quantiles, &mut progress)?;
        write!(out, "{}", hgrm(&sources, &rows, &quantiles, args.unit))?;
    } else {
        let quantiles = parse_quantiles(&args.percentiles)?;
        let rows = compute(&sources, &filter, grouping, &quantiles, &mut progress)?;
        let text = match args.format {
            PctFormat::Table => table(&sources, &rows, &quantiles, grouping, args.unit),
            PctFormat::Json => json(&sources, &rows, &quantiles).to_string() + "\n",
            PctFormat::Csv => csv(&sources, &rows, &quantiles, grouping, args.unit),
            PctFormat::Hgrm => String::new(),
        };
        write!(out, "{text}")?;
    }
    out.flush()?;
    if rules.is_empty() {
        return Ok(());
    }
    let broken = check_slos(&sources, &filter, args.raw, &rules, &mut progress)?;
    if broken {
        Err(Failure::SloBroken)
    } else {
        Ok(())
    }
}

/// The label cells of a row's key.
pub(crate) fn key_cells(sources: &Sources, key: &GroupKey, grouping: Grouping) -> Vec<String> {
    let mut cells = Vec::new();
    if grouping.window_ns.is_some() {
        cells.push(
            key.window
                .map_or_else(String::new, crate::time::rfc3339_nanos),
        );
    }
    if grouping.by.kind {
        cells.push(
            key.kind
                .map_or_else(String::new, |k| sources.label(k).to_string()),
        );
    }
    if grouping.by.status {
        cells.push(key.status.map_or_else(String::new, |s| s.to_string()));
    }
    cells
}

fn key_headers(grouping: Grouping) -> Vec<String> {
    let mut cells = Vec::new();
    if grouping.window_ns.is_some() {
        cells.push("window".to_string());
    }
    if grouping.by.kind {
        cells.push("kind".to_string());
    }
    if grouping.by.status {
        cells.push("status".to_string());
    }
    cells
}

/// records, events (with `event_decimals`), min, the percentiles, max, mean; in `unit`.
fn value_cells(row: &Row, unit: Unit, event_decimals: usize) -> Vec<String> {
    let mut cells = vec![
        row.summary.records.to_string(),
        format!("{:.*}", event_decimals, row.summary.events()),
        latency(row.summary.min, unit),
    ];
    cells.extend(row.values.iter().map(|v| latency(*v, unit)));
    cells.push(latency(row.summary.max, unit));
    cells.push(format!(
        "{:.*}",
        unit.decimals(),
        row.summary.mean() / unit.nanos()
    ));
    cells
}

/// The column names of [`value_cells`].
fn value_headers(quantiles: &[Quantile]) -> Vec<String> {
    let mut cells: Vec<String> = ["records", "events", "min"].map(String::from).to_vec();
    cells.extend(quantiles.iter().map(|q| format!("p{}", q.label())));
    cells.extend(["max", "mean"].map(String::from));
    cells
}

pub(crate) fn table(
    sources: &Sources,
    rows: &[Row],
    quantiles: &[Quantile],
    grouping: Grouping,
    unit: Unit,
) -> String {
    let mut header = key_headers(grouping);
    if header.is_empty() {
        header.push(String::new());
    }
    header.extend(value_headers(quantiles));
    let mut lines = vec![header];
    for row in rows {
        let mut cells = key_cells(sources, &row.key, grouping);
        if cells.is_empty() {
            cells.push("all".to_string());
        }
        cells.extend(value_cells(row, unit, 0));
        lines.push(cells);
    }
    let style = Style::stdout();
    let mut text = render(&lines, |h| style.bold(h));
    text.push_str(&style.dim(&format!(
        "latencies in {}; {}\n",
        unit.suffix(),
        if grouping.raw {
            "raw sample (every record weighs 1)"
        } else {
            "weighted by 1/p (events = the population the records represent)"
        }
    )));
    text
}

fn json(sources: &Sources, rows: &[Row], quantiles: &[Quantile]) -> Value {
    Value::Array(
        rows.iter()
            .map(|row| {
                let mut group = Map::new();
                if let Some(kind) = row.key.kind {
                    group.insert("kind".into(), sources.label(kind).into());
                }
                if let Some(status) = row.key.status {
                    group.insert("status".into(), status.into());
                }
                let percentiles: Map<String, Value> = quantiles
                    .iter()
                    .zip(&row.values)
                    .map(|(q, v)| (q.label().to_string(), (*v).into()))
                    .collect();
                let mut object = json!({
                    "group": group,
                    "records": row.summary.records,
                    "events": row.summary.events(),
                    "min": row.summary.min,
                    "max": row.summary.max,
                    "mean": row.summary.mean().round() as i64,
                    "percentiles": percentiles,
                });
                if let (Some(window), Value::Object(map)) = (row.key.window, &mut object) {
                    map.insert("window_start".into(), window.into());
                }
                object
            })
            .collect(),
    )
}

fn csv(
    sources: &Sources,
    rows: &[Row],
    quantiles: &[Quantile],
    grouping: Grouping,
    unit: Unit,
) -> String {
    let mut header = key_headers(grouping);
    header.extend(value_headers(quantiles));
    let mut text = header.join(",") + "\n";
    for row in rows {
        let mut cells: Vec<String> = key_cells(sources, &row.key, grouping)
            .iter()
            .map(|c| csv_field(c))
            .collect();
        if grouping.window_ns.is_some() {
            // Machine-readable: the window start in ns rather than RFC 3339.
            cells[0] = row.key.window.unwrap_or(0).to_string();
        }
        cells.extend(value_cells(row, unit, 3));
        text.push_str(&cells.join(","));
        text.push('\n');
    }
    text
}

/// HdrHistogram's percentile spectrum: 5 ticks per halving of the distance to 100%.
pub(crate) fn spectrum() -> Vec<Quantile> {
    let mut fractions = Vec::new();
    for level in 0..20 {
        let lower = 1.0 - 0.5f64.powi(level);
        let upper = 1.0 - 0.5f64.powi(level + 1);
        for tick in 0..5 {
            fractions.push(lower + (upper - lower) * f64::from(tick) / 5.0);
        }
    }
    fractions.push(1.0);
    fractions
        .iter()
        .filter_map(|f| Quantile::parse(&format!("{:.9}", f * 100.0)).ok())
        .collect()
}

fn hgrm(sources: &Sources, rows: &[Row], quantiles: &[Quantile], unit: Unit) -> String {
    let mut text = String::new();
    for row in rows {
        if row.key.kind.is_some() || row.key.status.is_some() || row.key.window.is_some() {
            let mut label = Vec::new();
            if let Some(window) = row.key.window {
                label.push(format!("window={}", crate::time::rfc3339_nanos(window)));
            }
            if let Some(kind) = row.key.kind {
                label.push(format!("kind={}", sources.label(kind)));
            }
            if let Some(status) = row.key.status {
                label.push(format!("status={status}"));
            }
            text.push_str(&format!("# {}\n", label.join(" ")));
        }
        text.push_str("       Value     Percentile TotalCount 1/(1-Percentile)\n\n");
        let events = row.summary.events();
        let mut previous: Option<(i64, f64)> = None;
        for (quantile, value) in quantiles.iter().zip(&row.values) {
            let q = quantile.fraction();
            // Like HdrHistogram, stop the spectrum once it passes the last record.
            if let Some((last, last_q)) = previous
                && last == row.summary.max
                && last_q >= 1.0 - 1.0 / events.max(1.0)
                && q < 1.0
            {
                continue;
            }
            previous = Some((*value, q));
            let value = *value as f64 / unit.nanos();
            let count = (q * events).round() as u64;
            if q < 1.0 {
                text.push_str(&format!(
                    "{value:12.3} {q:2.12} {count:10} {:14.2}\n",
                    1.0 / (1.0 - q)
                ));
            } else {
                text.push_str(&format!("{value:12.3} {q:2.12} {count:10}\n"));
            }
        }
        let s = &row.summary;
        text.push_str(&format!(
            "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]\n",
            s.mean() / unit.nanos(),
            s.std_dev() / unit.nanos()
        ));
        text.push_str(&format!(
            "#[Max     = {:12.3}, Total count    = {:12}]\n",
            s.max as f64 / unit.nanos(),
            events.round() as u64
        ));
        text.push_str(&format!(
            "#[Buckets = {:12}, SubBuckets     = {:12}]\n",
            54, 1024
        ));
    }
    text
}

/// One `--fail-if` rule.
#[derive(Debug, Clone)]
pub(crate) struct SloRule {
    text: String,
    kind: Option<String>,
    statistic: Statistic,
    op: Op,
    limit_ns: i64,
}

#[derive(Debug, Clone)]
enum Statistic {
    Percentile(Quantile),
    Max,
    Min,
    Mean,
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Above,
    AtLeast,
    Below,
    AtMost,
}

impl SloRule {
    pub(crate) fn parse(text: &str) -> Result<Self, Failure> {
        let bad = |why: &str| {
            Failure::Usage(format!(
                "--fail-if '{text}': {why} (e.g. 'p99>5ms', 'limit:p99.9>=2ms', 'max>50ms')"
            ))
        };
        let (kind, rule) = match text.split_once(':') {
            Some((kind, rule)) => (Some(kind.trim().to_string()), rule),
            None => (None, text),
        };
        let (position, op, len) = [
            (">=", Op::AtLeast),
            ("<=", Op::AtMost),
            (">", Op::Above),
            ("<", Op::Below),
        ]
        .iter()
        .find_map(|(symbol, op)| rule.find(symbol).map(|i| (i, *op, symbol.len())))
        .ok_or_else(|| bad("no comparison"))?;
        let statistic = match rule[..position].trim() {
            "max" => Statistic::Max,
            "min" => Statistic::Min,
            "mean" => Statistic::Mean,
            p if p.starts_with('p') => {
                Statistic::Percentile(Quantile::parse(&p[1..]).map_err(|e| bad(&e))?)
            }
            _ => return Err(bad("expected pNN, max, min or mean")),
        };
        let limit_ns = parse_latency_ns(&rule[position + len..], 1e3).map_err(|e| bad(&e))?;
        Ok(SloRule {
            text: text.to_string(),
            kind,
            statistic,
            op,
            limit_ns,
        })
    }

    fn broken_by(&self, value: i64) -> bool {
        match self.op {
            Op::Above => value > self.limit_ns,
            Op::AtLeast => value >= self.limit_ns,
            Op::Below => value < self.limit_ns,
            Op::AtMost => value <= self.limit_ns,
        }
    }
}

/// Evaluates the rules (each over its own population: one kind, or everything); prints one
/// line per broken rule on stderr; true when any is broken.
fn check_slos(
    sources: &Sources,
    filter: &Filter,
    raw: bool,
    rules: &[SloRule],
    progress: &mut Progress,
) -> Result<bool, Failure> {
    let quantiles: Vec<Quantile> = rules
        .iter()
        .filter_map(|r| match &r.statistic {
            Statistic::Percentile(q) => Some(q.clone()),
            _ => None,
        })
        .collect();
    let mut broken = false;
    for by_kind in [false, true] {
        if !rules.iter().any(|r| r.kind.is_some() == by_kind) {
            continue;
        }
        let grouping = Grouping {
            by: By {
                kind: by_kind,
                status: false,
            },
            window_ns: None,
            raw,
        };
        let rows = compute(sources, filter, grouping, &quantiles, progress)?;
        for rule in rules.iter().filter(|r| r.kind.is_some() == by_kind) {
            let row = rows.iter().find(|row| {
                rule.kind
                    .as_deref()
                    .is_none_or(|k| row.key.kind.is_some_and(|i| sources.label(i) == k))
            });
            let Some(row) = row else {
                eprintln!("ringcat: SLO '{}': no records to check", rule.text);
                continue;
            };
            let value = match &rule.statistic {
                Statistic::Max => row.summary.max,
                Statistic::Min => row.summary.min,
                Statistic::Mean => row.summary.mean().round() as i64,
                Statistic::Percentile(q) => quantiles
                    .iter()
                    .position(|x| x == q)
                    .map_or(row.summary.max, |i| row.values[i]),
            };
            if rule.broken_by(value) {
                broken = true;
                eprintln!(
                    "ringcat: SLO broken: {} (measured {})",
                    rule.text,
                    crate::output::human_latency(value)
                );
            }
        }
    }
    Ok(broken)
}
