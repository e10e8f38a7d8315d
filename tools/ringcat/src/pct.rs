//! `ringcat pct`: percentiles per group and time window, weighted by 1/p, exact, streaming.

use crate::Failure;
use crate::cli::{By, PctArgs, PctFormat, Unit};
use crate::closing::Closing;
use crate::duration::parse_latency_ns;
use crate::output::csv_field;
use crate::progress::Progress;
use crate::select::{Filter, Sources};
use crate::style::Style;
use crate::table::{latency, render};
use ringlat_read::Fields;
use ringlat_read::percentile::{Quantile, Selection, Summary, Tally, WEIGHT_ONE};
use serde_json::{Map, Value, json};
use std::io::Write;

/// What a row is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct GroupKey {
    pub window: Option<u64>,
    pub kind: Option<u16>,
    pub status: Option<u8>,
}

impl GroupKey {
    /// The start of the key's window (for [`crate::closing`]).
    fn window_start(&self) -> Option<u64> {
        self.window
    }

    /// The key of a grouping's [`packed_key`] (the fields the grouping leaves out are `None`).
    fn unpack(packed: u128, grouping: Grouping) -> Self {
        GroupKey {
            window: grouping.window_ns.map(|_| (packed >> 64) as u64),
            kind: grouping.by.kind.then_some((packed >> 8) as u16),
            status: grouping.by.status.then_some(packed as u8),
        }
    }
}

/// One computed row.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub key: GroupKey,
    pub values: Vec<i64>,
    pub summary: Summary,
    /// Per value: the weight of the records at or below it, when the one-pass tally knew it.
    pub at_or_below: Option<Vec<u128>>,
}

/// How rows are formed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grouping {
    pub by: By,
    pub window_ns: Option<u64>,
    pub raw: bool,
}

/// Exact weighted percentiles of the selected records: one parallel pass when the groups'
/// distinct values fit the [`Tally`]'s budget (the usual case: latencies in µs units), else a
/// second pass over the records that fall in the bins of the percentiles.
pub(crate) fn compute(
    sources: &Sources,
    filter: &Filter,
    grouping: Grouping,
    quantiles: &[Quantile],
    progress: &mut Progress,
) -> Result<Vec<Row>, Failure> {
    // Raw or weighted and the grouping's shape chosen once here, not per record: one
    // instance of the pass each (a key built from flags read per record cost a third of
    // `pct --by kind`'s instructions: the flags, and the registers they took).
    let rows = match shape_of(grouping) {
        0 => by_shape::<0>(sources, filter, grouping, quantiles, progress)?,
        1 => by_shape::<1>(sources, filter, grouping, quantiles, progress)?,
        2 => by_shape::<2>(sources, filter, grouping, quantiles, progress)?,
        3 => by_shape::<3>(sources, filter, grouping, quantiles, progress)?,
        4 => by_shape::<4>(sources, filter, grouping, quantiles, progress)?,
        5 => by_shape::<5>(sources, filter, grouping, quantiles, progress)?,
        6 => by_shape::<6>(sources, filter, grouping, quantiles, progress)?,
        _ => by_shape::<7>(sources, filter, grouping, quantiles, progress)?,
    };
    let (rows, mut counts) = rows;
    Ok(rows
        .into_iter()
        .map(|(key, values, summary)| Row {
            key,
            values,
            summary,
            at_or_below: counts.as_mut().and_then(|c| c.next()),
        })
        .collect())
}

/// A grouping's shape: which fields its key holds ([`BY_KIND`], [`BY_STATUS`], [`BY_WINDOW`]).
fn shape_of(grouping: Grouping) -> u8 {
    [
        (grouping.by.kind, BY_KIND),
        (grouping.by.status, BY_STATUS),
        (grouping.window_ns.is_some(), BY_WINDOW),
    ]
    .into_iter()
    .filter(|(holds, _)| *holds)
    .fold(0, |shape, (_, bit)| shape | bit)
}

/// Bits of a grouping's shape.
const BY_KIND: u8 = 1;
const BY_STATUS: u8 = 2;
const BY_WINDOW: u8 = 4;

/// [`compute`]'s pass for a grouping of shape `SHAPE` ([`shape_of`]), raw or weighted.
fn by_shape<const SHAPE: u8>(
    sources: &Sources,
    filter: &Filter,
    grouping: Grouping,
    quantiles: &[Quantile],
    progress: &mut Progress,
) -> Result<PercentileRows<GroupKey>, Failure> {
    if grouping.raw {
        grouped_percentiles::<SHAPE>(sources, filter, grouping, quantiles, progress, |_| {
            WEIGHT_ONE
        })
    } else {
        grouped_percentiles::<SHAPE>(sources, filter, grouping, quantiles, progress, |w| w)
    }
}

/// [`compute`]'s pass, with `weight` turning a record's weight into the one counted, for a
/// grouping of shape `SHAPE`.
fn grouped_percentiles<const SHAPE: u8>(
    sources: &Sources,
    filter: &Filter,
    grouping: Grouping,
    quantiles: &[Quantile],
    progress: &mut Progress,
    weight: impl Fn(u128) -> u128 + Sync,
) -> Result<PercentileRows<GroupKey>, Failure> {
    exact_percentiles(
        sources,
        filter,
        quantiles,
        progress,
        grouping
            .window_ns
            .map(|w| (w, GroupKey::window_start as WindowOf<GroupKey>)),
        #[inline(always)]
        |tally, window, source, sample, w| {
            let packed = packed_key(SHAPE, window, source, sample, sources);
            tally.add_packed(
                packed,
                || GroupKey::unpack(packed, grouping),
                sample.delta_ns,
                weight(w),
            );
        },
        #[inline(always)]
        |selection, source, sample, w| {
            let window = window_start(grouping, sample.nanotime);
            let packed = packed_key(SHAPE, window, source, sample, sources);
            selection.add_packed(
                packed,
                || GroupKey::unpack(packed, grouping),
                sample.delta_ns,
                weight(w),
            );
        },
    )
}

/// The percentile engine over the selected records: one parallel pass into a [`Tally`]
/// (`tally` adds a record to the group(s) it belongs to), and when the tally could not keep
/// every distinct value, a second pass into the plan it made (`select`, the same groups).
///
/// With `windows` (the window length, and a key's window start) and a file that bounds its
/// records' lateness, the pass closes each window once the records have left it behind
/// ([`crate::closing`]): only the open windows' values count against the budget.
fn exact_percentiles<K: Ord + Clone + Send + Sync>(
    sources: &Sources,
    filter: &Filter,
    quantiles: &[Quantile],
    progress: &mut Progress,
    windows: Option<(u64, WindowOf<K>)>,
    tally: impl Fn(&mut Tally<K>, u64, usize, &ringlat_read::Sample, u128) + Sync,
    select: impl Fn(&mut Selection<K>, usize, &ringlat_read::Sample, u128) + Sync,
) -> Result<PercentileRows<K>, Failure> {
    progress.next_pass("reading");
    let budget = crate::budget::distinct_budget();
    let mut closed = None;
    if let Some((window_ns, window_of)) = windows
        && let Some(lateness) = crate::closing::lateness(sources, filter)?
    {
        let lanes = crate::scan::fold_in_lanes(
            sources,
            filter,
            progress,
            |lane| {
                let tally = Tally::with_budget(quantiles.to_vec(), budget);
                Closing::new(tally, lane, window_ns, lateness, window_of)
            },
            #[inline(always)]
            |lane, source, sample, weight| {
                let window = lane.window_start(sample.nanotime);
                tally(&mut lane.tally, window, source, sample, weight);
                lane.saw(sample.nanotime);
            },
            Closing::merge,
        )?;
        if lanes.tally.added_after_close() {
            crate::closing::warn_bound_broken();
            progress.next_pass("again");
        } else {
            closed = Some(lanes.tally);
        }
    }
    let fields = fields_read(windows.map(|(window_ns, _)| window_ns));
    let counted = match closed {
        Some(counted) => counted,
        None => crate::scan::fold(
            sources,
            filter,
            progress,
            fields,
            || Tally::with_budget(quantiles.to_vec(), budget),
            #[inline(always)]
            |counted, source, sample, weight| {
                let time = sample.nanotime;
                let window = windows.map_or(0, |(w, _)| time - time % w.max(1));
                tally(counted, window, source, sample, weight);
            },
            Tally::merge,
        )?,
    };
    let selection = complete(counted.finish(), sources, filter, progress, fields, select)?;
    progress.finish();
    let counts = selection.at_or_below().map(Vec::into_iter);
    Ok((selection.finish(), counts))
}

/// The fields of a record that grouping it (by kind and status, and with `window_ns` by time
/// window) reads: without windows its trace id and time are not read (a live ring is read
/// faster so).
fn fields_read(window_ns: Option<u64>) -> Fields {
    match window_ns {
        Some(_) => Fields::All,
        None => Fields::StatusAndDelta,
    }
}

/// A tally's selection made exact: when the tally could not keep every distinct value, a
/// second parallel pass (`select`, which reads `fields` of the records) gathers the exact
/// values of the bins the percentiles fall in.
pub(crate) fn complete<K: Ord + Clone + Send + Sync>(
    selection: Selection<K>,
    sources: &Sources,
    filter: &Filter,
    progress: &mut Progress,
    fields: Fields,
    select: impl Fn(&mut Selection<K>, usize, &ringlat_read::Sample, u128) + Sync,
) -> Result<Selection<K>, Failure> {
    if selection.is_complete() {
        return Ok(selection);
    }
    progress.next_pass("pass 2/2");
    crate::scan::fold(
        sources,
        filter,
        progress,
        fields,
        || selection.clone(),
        select,
        Selection::merge,
    )
}

/// A key's window start (`None`: the grouping has no windows).
type WindowOf<K> = fn(&K) -> Option<u64>;

/// Per group (key order): its percentile values and summary; and, when the tally knew every
/// value, per group the weight at or below each value.
type PercentileRows<K> = (
    Vec<(K, Vec<i64>, Summary)>,
    Option<std::vec::IntoIter<Vec<u128>>>,
);

/// The row a record belongs to.
fn group_key(
    sources: &Sources,
    grouping: Grouping,
    source: usize,
    sample: &ringlat_read::Sample,
) -> GroupKey {
    let window = window_start(grouping, sample.nanotime);
    GroupKey::unpack(
        packed_key(shape_of(grouping), window, source, sample, sources),
        grouping,
    )
}

/// The start of the window of a record at `time` (0 without windows).
fn window_start(grouping: Grouping, time: u64) -> u64 {
    grouping.window_ns.map_or(0, |w| time - time % w.max(1))
}

/// [`group_key`] packed into a `u128`, the form the engine's group cache takes
/// ([`Tally::add_packed`]): the window's start (`window`: [`window_start`], which a pass in
/// time order may keep from the record before) in the high word, the kind's label and the
/// status in the low one (0 where the grouping leaves a field out, so one grouping never
/// packs two keys alike; the low word is below 2^24, never `NO_PACKED_KEY`).
///
/// `shape` ([`shape_of`]) says which fields the key holds: a constant for the passes (one
/// instance per shape), so that nothing is read from the grouping per record.
#[inline(always)]
fn packed_key(
    shape: u8,
    window: u64,
    source: usize,
    sample: &ringlat_read::Sample,
    sources: &Sources,
) -> u128 {
    let window = if shape & BY_WINDOW != 0 { window } else { 0 };
    let kind = if shape & BY_KIND != 0 {
        sources.label_index(source, sample.kind)
    } else {
        0
    };
    let status = if shape & BY_STATUS != 0 {
        sample.status
    } else {
        0
    };
    (u128::from(window) << 64) | (u128::from(kind) << 8) | u128::from(status)
}

/// Per row, per value of the row: the exact weighted count of records at or below that
/// value (HdrHistogram's TotalCount): from the tally when it knew every value, else in one
/// more pass.
fn cumulative_counts(
    sources: &Sources,
    filter: &Filter,
    grouping: Grouping,
    rows: &[Row],
    progress: &mut Progress,
) -> Result<Vec<Vec<f64>>, Failure> {
    if let Some(counts) = rows
        .iter()
        .map(|row| row.at_or_below.as_ref())
        .collect::<Option<Vec<_>>>()
    {
        // The tally knew every value: no pass.
        return Ok(counts
            .into_iter()
            .map(|weights| {
                weights
                    .iter()
                    .map(|weight| *weight as f64 / WEIGHT_ONE as f64)
                    .collect()
            })
            .collect());
    }
    let index: std::collections::BTreeMap<GroupKey, usize> =
        rows.iter().enumerate().map(|(i, r)| (r.key, i)).collect();
    // Per row: weight of the records falling at or below value i but above value i-1.
    let empty: Vec<Vec<u128>> = rows.iter().map(|r| vec![0; r.values.len()]).collect();
    progress.next_pass("counting");
    let fields = fields_read(grouping.window_ns);
    let buckets = crate::scan::fold(
        sources,
        filter,
        progress,
        fields,
        || empty.clone(),
        |buckets, source, sample, weight| {
            let Some(&row) = index.get(&group_key(sources, grouping, source, sample)) else {
                return;
            };
            let values = &rows[row].values;
            let at = values.partition_point(|v| *v < sample.delta_ns);
            if let Some(bucket) = buckets[row].get_mut(at) {
                *bucket += if grouping.raw { WEIGHT_ONE } else { weight };
            }
        },
        |buckets, other| {
            for (into, from) in buckets.iter_mut().zip(other) {
                for (a, b) in into.iter_mut().zip(from) {
                    *a += b;
                }
            }
        },
    )?;
    progress.finish();
    Ok(buckets
        .into_iter()
        .map(|bucket| {
            let mut total = 0u128;
            bucket
                .into_iter()
                .map(|weight| {
                    total += weight;
                    total as f64 / WEIGHT_ONE as f64
                })
                .collect()
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
    let (coverage_rules, rules) = crate::population::split_rules(&args.fail_if)?;
    let rules = rules
        .iter()
        .map(|r| SloRule::parse(r))
        .collect::<Result<Vec<_>, _>>()?;
    if args.output.is_some() && args.format != PctFormat::Hgrm {
        return Err(Failure::Usage(
            "-o DIR writes one .hgrm file per group: use it with --format hgrm".into(),
        ));
    }
    for kind in coverage_rules.iter().filter_map(|r| r.kind()) {
        sources.check_kind(kind)?;
    }
    for kind in rules.iter().filter_map(|r| r.kind.as_deref()) {
        sources.check_kind(kind)?;
    }
    if args.format == PctFormat::Hlog {
        let mut out = std::io::stdout().lock();
        let written = crate::hlog::write(&sources, &filter, &mut out)?;
        out.flush()?;
        if written == 0 {
            eprintln!(
                "ringcat: no population histograms to log (an archive without drain \
                 snapshots, or histograms turned off in the writer)"
            );
        }
        return Ok(());
    }
    let mut progress = Progress::new("reading", sources.len_hint());
    let grouping = Grouping {
        by: args.by,
        window_ns: args.window.map(|w| w.as_nanos().max(1) as u64),
        raw: args.raw,
    };
    let mut out = std::io::stdout().lock();
    let (quantiles, rows) = if args.format == PctFormat::Hgrm {
        let quantiles = spectrum();
        let rows = compute(&sources, &filter, grouping, &quantiles, &mut progress)?;
        let counts = cumulative_counts(&sources, &filter, grouping, &rows, &mut progress)?;
        match &args.output {
            None => write!(
                out,
                "{}",
                hgrm(&sources, &rows, &counts, &quantiles, args.unit)
            )?,
            Some(dir) => write_hgrm_files(&sources, &rows, &counts, &quantiles, args.unit, dir)?,
        }
        (quantiles, rows)
    } else {
        let quantiles = parse_quantiles(&args.percentiles)?;
        crate::population::keep_snapshots(&sources, &filter, grouping);
        let rows = compute(&sources, &filter, grouping, &quantiles, &mut progress)?;
        let populations = crate::population::collect(&sources, &filter, grouping)?;
        let text = crate::population::render(
            &sources,
            &rows,
            populations.as_ref(),
            &quantiles,
            grouping,
            args,
        );
        write!(out, "{text}")?;
        if let Some(populations) = &populations {
            crate::population::warn_low_coverage(
                &sources,
                populations,
                grouping,
                args.coverage_warn / 100.0,
            );
        }
        (quantiles, rows)
    };
    out.flush()?;
    let mut broken = false;
    for rule in &coverage_rules {
        broken |= rule.check(&sources, &filter)?;
    }
    if !rules.is_empty() {
        let computed = Computed {
            rows: &rows,
            grouping,
            quantiles: &quantiles,
        };
        broken |= check_slos(
            &sources,
            &filter,
            args.raw,
            &rules,
            Some(computed),
            &mut progress,
        )?;
    }
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
                .map_or_else(String::new, crate::time::display_time),
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

pub(crate) fn key_headers(grouping: Grouping) -> Vec<String> {
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
pub(crate) fn value_cells(row: &Row, unit: Unit, event_decimals: usize) -> Vec<String> {
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
pub(crate) fn value_headers(quantiles: &[Quantile]) -> Vec<String> {
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
    lines.extend(crate::table::cells_of_rows(rows, |row| {
        let mut cells = key_cells(sources, &row.key, grouping);
        if cells.is_empty() {
            cells.push("all".to_string());
        }
        cells.extend(value_cells(row, unit, 0));
        cells
    }));
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

pub(crate) fn json(sources: &Sources, rows: &[Row], quantiles: &[Quantile]) -> Value {
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
                    // As a decimal string, like the records' nanotime (jq rounds 64-bit numbers).
                    map.insert("window_start".into(), window.to_string().into());
                    map.insert("window".into(), crate::time::rfc3339_nanos(window).into());
                }
                object
            })
            .collect(),
    )
}

pub(crate) fn csv(
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

fn hgrm(
    sources: &Sources,
    rows: &[Row],
    counts: &[Vec<f64>],
    quantiles: &[Quantile],
    unit: Unit,
) -> String {
    let mut text = String::new();
    for (row, counts) in rows.iter().zip(counts) {
        if row.key.kind.is_some() || row.key.status.is_some() || row.key.window.is_some() {
            text.push_str(&format!("# {}\n", group_label(sources, &row.key).join(" ")));
        }
        text.push_str(&hgrm_table(row, counts, quantiles, unit));
    }
    text
}

/// `window=... kind=limit status=2`.
fn group_label(sources: &Sources, key: &GroupKey) -> Vec<String> {
    let mut label = Vec::new();
    if let Some(window) = key.window {
        label.push(format!("window={}", crate::time::rfc3339_nanos(window)));
    }
    if let Some(kind) = key.kind {
        label.push(format!("kind={}", sources.label(kind)));
    }
    if let Some(status) = key.status {
        label.push(format!("status={status}"));
    }
    label
}

/// `pct --format hgrm -o DIR`: one file per group, named after it (`kind=limit.hgrm`,
/// `kind=limit,status=2.hgrm`, `all.hgrm`), as HdrHistogram's plotter takes one file per
/// series.
fn write_hgrm_files(
    sources: &Sources,
    rows: &[Row],
    counts: &[Vec<f64>],
    quantiles: &[Quantile],
    unit: Unit,
    dir: &std::path::Path,
) -> Result<(), Failure> {
    let output = |e: std::io::Error| {
        Failure::Output(std::io::Error::new(
            e.kind(),
            format!("{}: {e}", dir.display()),
        ))
    };
    std::fs::create_dir_all(dir).map_err(output)?;
    for (row, counts) in rows.iter().zip(counts) {
        let label = group_label(sources, &row.key).join(",");
        let name = if label.is_empty() {
            "all".to_string()
        } else {
            label.replace(['/', '\\', '\0'], "_")
        };
        let path = dir.join(format!("{name}.hgrm"));
        std::fs::write(&path, hgrm_table(row, counts, quantiles, unit)).map_err(output)?;
        eprintln!("ringcat: wrote {}", path.display());
    }
    Ok(())
}

/// One group's percentile distribution, TotalCount exact (the weighted count of records at
/// or below the value).
fn hgrm_table(row: &Row, counts: &[f64], quantiles: &[Quantile], unit: Unit) -> String {
    let mut text = String::new();
    text.push_str("       Value     Percentile TotalCount 1/(1-Percentile)\n\n");
    let events = row.summary.events();
    let mut previous: Option<(i64, f64)> = None;
    for ((quantile, value), count) in quantiles.iter().zip(&row.values).zip(counts) {
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
        let count = count.round() as u64;
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
    text
}

/// One `--fail-if` rule: `[SELECTOR:]STATISTIC OP LIMIT`, where the selector is a kind name
/// (`limit:`) or `kind=NAME`, `status=N`, or both (`kind=limit,status=2:`), the statistic
/// `pNN`, `max`, `min` or `mean`: the rule is broken when the comparison holds. Written in
/// k6's spelling, `p(NN)<LIMIT`, it is a k6 threshold instead: a condition that must hold,
/// broken when it does not (`p(99)<5ms` is `p99>=5ms`), so k6 thresholds can be copied as
/// they are.
#[derive(Debug, Clone)]
pub(crate) struct SloRule {
    text: String,
    kind: Option<String>,
    status: Option<u8>,
    statistic: Statistic,
    op: Op,
    limit_ns: i64,
    /// k6's spelling: the comparison must hold (else it must not).
    must_hold: bool,
    /// The unit the limit was written in (ns per unit, suffix), for the measured value.
    unit: (f64, String),
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
                "--fail-if '{text}': {why} (e.g. 'p99>5ms', 'p(99)<5ms', 'limit:p99.9>=2ms', \
                 'kind=limit,status=2:p99>1ms', 'max>50ms')"
            ))
        };
        let (selector, rule) = match text.split_once(':') {
            Some((selector, rule)) => (Some(selector.trim()), rule),
            None => (None, text),
        };
        let (mut kind, mut status) = (None, None);
        if let Some(selector) = selector {
            if selector.contains('=') {
                for part in selector.split(',').map(str::trim) {
                    match part.split_once('=').map(|(k, v)| (k.trim(), v.trim())) {
                        Some(("kind", name)) if !name.is_empty() => kind = Some(name.to_string()),
                        Some(("status", code)) => {
                            status = Some(code.parse::<u8>().map_err(|_| {
                                bad(&format!("unknown status '{code}' (a number 0-255)"))
                            })?);
                        }
                        _ => return Err(bad(&format!("'{part}': expected kind=NAME or status=N"))),
                    }
                }
            } else if selector.is_empty() {
                return Err(bad("empty selector before ':'"));
            } else {
                kind = Some(selector.to_string());
            }
        }
        let (position, op, len) = [
            (">=", Op::AtLeast),
            ("<=", Op::AtMost),
            (">", Op::Above),
            ("<", Op::Below),
        ]
        .iter()
        .find_map(|(symbol, op)| rule.find(symbol).map(|i| (i, *op, symbol.len())))
        .ok_or_else(|| bad("no comparison"))?;
        let statistic_text = rule[..position].trim();
        let must_hold = statistic_text.starts_with("p(");
        let statistic = match statistic_text {
            "max" => Statistic::Max,
            "min" => Statistic::Min,
            "mean" | "avg" => Statistic::Mean,
            p if p.starts_with('p') => {
                let q = p[1..].trim();
                let q = q
                    .strip_prefix('(')
                    .and_then(|q| q.strip_suffix(')'))
                    .unwrap_or(q);
                Statistic::Percentile(Quantile::parse(q.trim()).map_err(|e| bad(&e))?)
            }
            _ => return Err(bad("expected pNN, p(NN), max, min or mean")),
        };
        let limit = rule[position + len..].trim();
        let limit_ns = parse_latency_ns(limit, 1e3).map_err(|e| bad(&e))?;
        Ok(SloRule {
            text: text.to_string(),
            kind,
            status,
            statistic,
            op,
            limit_ns,
            must_hold,
            unit: unit_of(limit),
        })
    }

    fn broken_by(&self, value: i64) -> bool {
        let holds = match self.op {
            Op::Above => value > self.limit_ns,
            Op::AtLeast => value >= self.limit_ns,
            Op::Below => value < self.limit_ns,
            Op::AtMost => value <= self.limit_ns,
        };
        holds != self.must_hold
    }

    /// A measured value in the unit the rule was written in: `6.30ms`.
    fn measured(&self, value_ns: i64) -> String {
        let (nanos, suffix) = &self.unit;
        format!("{:.2}{suffix}", value_ns as f64 / nanos)
    }
}

/// The unit a latency was written in: its trailing letters (a bare number is microseconds,
/// as `parse_latency_ns` reads it).
fn unit_of(limit: &str) -> (f64, String) {
    let suffix: String = limit
        .chars()
        .rev()
        .take_while(|c| c.is_alphabetic())
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let nanos = match suffix.as_str() {
        "ns" => 1.0,
        "ms" => 1e6,
        "s" => 1e9,
        "m" | "min" => 60e9,
        "h" => 3600e9,
        "d" => 86_400e9,
        _ => 1e3,
    };
    let suffix = if nanos == 1e3 && suffix != "µs" {
        "us".to_string()
    } else {
        suffix
    };
    (nanos, suffix)
}

/// Rows already computed for the output, to answer `--fail-if` rules from.
#[derive(Clone, Copy)]
struct Computed<'a> {
    rows: &'a [Row],
    grouping: Grouping,
    quantiles: &'a [Quantile],
}

/// Per rule: the records its selection holds and the value of its statistic (`None`: no
/// records match). A rule whose selection is one of the computed rows (same kind and status
/// grouping, no windows, its percentile among those computed) is answered from that row;
/// the others all together in one more pass (two when the values do not fit the tally).
fn slo_answers(
    sources: &Sources,
    filter: &Filter,
    raw: bool,
    rules: &[SloRule],
    computed: Option<Computed<'_>>,
    progress: &mut Progress,
) -> Result<Vec<Option<(u64, i64)>>, Failure> {
    let mut answers = vec![None; rules.len()];
    let mut pending = Vec::new();
    for (index, rule) in rules.iter().enumerate() {
        match computed.and_then(|c| answer_from_rows(sources, raw, rule, c)) {
            Some(answer) => answers[index] = answer,
            None => pending.push(index),
        }
    }
    if pending.is_empty() {
        return Ok(answers);
    }
    let mut quantiles: Vec<Quantile> = Vec::new();
    for index in &pending {
        if let Statistic::Percentile(q) = &rules[*index].statistic
            && !quantiles.contains(q)
        {
            quantiles.push(q.clone());
        }
    }
    // Per pending rule: which kinds of each source, and which status, it selects.
    let selections: Vec<(Vec<[bool; 256]>, Option<u8>)> = pending
        .iter()
        .map(|index| {
            let rule = &rules[*index];
            let narrowed = filter.narrowed(rule.kind.as_deref(), rule.status);
            let kinds = (0..sources.sources.len())
                .map(|source| narrowed.kinds_for(sources, source))
                .collect();
            (kinds, rule.status)
        })
        .collect();
    let matches = |rule: usize, source: usize, sample: &ringlat_read::Sample| {
        let (kinds, status) = &selections[rule];
        kinds[source][sample.kind as usize] && status.is_none_or(|s| s == sample.status)
    };
    let weight = |weight: u128| if raw { WEIGHT_ONE } else { weight };
    let rows = exact_percentiles(
        sources,
        filter,
        &quantiles,
        progress,
        None,
        |tally, _, source, sample, w| {
            for rule in 0..selections.len() {
                if matches(rule, source, sample) {
                    tally.add(rule, sample.delta_ns, weight(w));
                }
            }
        },
        |selection, source, sample, w| {
            for rule in 0..selections.len() {
                if matches(rule, source, sample) {
                    selection.add(&rule, sample.delta_ns, weight(w));
                }
            }
        },
    )?
    .0;
    for (rule, values, summary) in rows {
        let index = pending[rule];
        let value = match &rules[index].statistic {
            Statistic::Percentile(q) => quantiles
                .iter()
                .position(|x| x == q)
                .and_then(|at| values.get(at).copied())
                .unwrap_or(summary.max),
            statistic => summary_statistic(statistic, &summary),
        };
        answers[index] = Some((summary.records, value));
    }
    Ok(answers)
}

/// The value of `max`, `min` or `mean` (a percentile is not in the summary: the max).
fn summary_statistic(statistic: &Statistic, summary: &Summary) -> i64 {
    match statistic {
        Statistic::Max | Statistic::Percentile(_) => summary.max,
        Statistic::Min => summary.min,
        Statistic::Mean => summary.mean().round() as i64,
    }
}

/// A rule answered from the computed rows: `Some(answer)` when its selection is exactly one
/// row's group (`Some(None)`: that group has no records), `None` when the rows cannot tell.
fn answer_from_rows(
    sources: &Sources,
    raw: bool,
    rule: &SloRule,
    computed: Computed<'_>,
) -> Option<Option<(u64, i64)>> {
    let grouping = computed.grouping;
    if grouping.window_ns.is_some() || grouping.raw != raw {
        return None;
    }
    let kind = match rule.kind.as_deref() {
        // A number also selects kinds by id, which a row (grouped by label) cannot tell.
        Some(name) if name.parse::<u8>().is_ok() => return None,
        Some(name) if grouping.by.kind => {
            Some(sources.labels.iter().position(|l| l == name)? as u16)
        }
        None if !grouping.by.kind => None,
        _ => return None,
    };
    if rule.status.is_some() != grouping.by.status {
        return None;
    }
    let at = match &rule.statistic {
        Statistic::Percentile(q) => Some(computed.quantiles.iter().position(|x| x == q)?),
        _ => None,
    };
    let key = GroupKey {
        window: None,
        kind,
        status: rule.status,
    };
    let Some(row) = computed.rows.iter().find(|row| row.key == key) else {
        return Some(None);
    };
    let value = match at {
        Some(at) => *row.values.get(at)?,
        None => summary_statistic(&rule.statistic, &row.summary),
    };
    Some(Some((row.summary.records, value)))
}

/// Evaluates the rules, each over its own selection (the command's filters narrowed to the
/// rule's kind and status); prints one line per rule on stderr, passed or broken, like k6's
/// summary. A rule that matches no records is a usage error: it checks nothing and must not
/// pass a CI gate. True when any rule is broken.
fn check_slos(
    sources: &Sources,
    filter: &Filter,
    raw: bool,
    rules: &[SloRule],
    computed: Option<Computed<'_>>,
    progress: &mut Progress,
) -> Result<bool, Failure> {
    let answers = slo_answers(sources, filter, raw, rules, computed, progress)?;
    let mut broken = false;
    let mut unchecked = Vec::new();
    let style = Style::stderr();
    for (rule, answer) in rules.iter().zip(answers) {
        let Some((records, value)) = answer else {
            eprintln!(
                "ringcat: SLO {}: {}: no records match",
                style.red("unchecked"),
                rule.text
            );
            unchecked.push(rule.text.clone());
            continue;
        };
        let verdict = if rule.broken_by(value) {
            broken = true;
            style.red("broken")
        } else {
            "passed".to_string()
        };
        eprintln!(
            "ringcat: SLO {verdict}: {} (measured {}, {records} records)",
            rule.text,
            rule.measured(value),
        );
    }
    if !unchecked.is_empty() {
        return Err(Failure::Usage(format!(
            "--fail-if {}: no records match, so nothing was checked",
            unchecked
                .iter()
                .map(|r| format!("'{r}'"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(broken)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::FilterArgs;

    /// `--fail-if` rules answered from the computed rows give what the rules' own pass gives,
    /// for every grouping; and the rows do answer the rules whose selection is a row.
    #[test]
    fn slo_rules_from_rows_equal_rules_from_a_pass() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("slo.archive");
        crate::scan::tests::archive(&path, 60_000);
        let sources = Sources::open(&[path.display().to_string()]).unwrap();
        let filter = Filter::parse(&FilterArgs::default()).unwrap();
        let quantiles = parse_quantiles(&["50".to_string(), "99".to_string()]).unwrap();
        let rules: Vec<SloRule> = [
            "p99>1ms",
            "limit:p99>1ms",
            "kind=cancel,status=2:p50>=1ms",
            "max>1ms",
            "mean>1ms",
            "status=3:min<1ms",
            "market:p99.9>1ms",
            "kind=limit,status=9:max>1ms",
        ]
        .iter()
        .map(|r| SloRule::parse(r).unwrap())
        .collect();
        let mut progress = Progress::new("test", 0);
        let by_kind = By {
            kind: true,
            status: false,
        };
        let by_both = By {
            kind: true,
            status: true,
        };
        for (by, answered) in [
            (By::default(), vec![0, 3, 4]),
            (by_kind, vec![1]),
            (by_both, vec![2, 7]),
        ] {
            let grouping = Grouping {
                by,
                window_ns: None,
                raw: false,
            };
            let rows = compute(&sources, &filter, grouping, &quantiles, &mut progress).unwrap();
            let computed = Computed {
                rows: &rows,
                grouping,
                quantiles: &quantiles,
            };
            let from_rows = slo_answers(
                &sources,
                &filter,
                false,
                &rules,
                Some(computed),
                &mut progress,
            )
            .unwrap();
            let from_pass =
                slo_answers(&sources, &filter, false, &rules, None, &mut progress).unwrap();
            assert_eq!(from_rows, from_pass, "{by:?}");
            let by_rows: Vec<usize> = (0..rules.len())
                .filter(|i| answer_from_rows(&sources, false, &rules[*i], computed).is_some())
                .collect();
            assert_eq!(by_rows, answered, "{by:?}");
        }
        // A status no record has: no records match.
        assert_eq!(
            slo_answers(&sources, &filter, false, &rules[7..], None, &mut progress).unwrap(),
            vec![None]
        );
    }

    /// 400,000 distinct latencies, far past the tally's budget, in 10 ms windows of 1,000
    /// records: closing each window as the records leave it keeps the tally exact in one pass
    /// (the rows carry the counts only an exact tally knows); without windows the same
    /// records take the bins' second pass.
    #[test]
    fn windows_closed_as_they_end_keep_the_tally_exact() {
        use ringlat_format::Record;
        use ringlat_read::Decoded;
        use ringlat_read::archive::{ArchiveWriter, RingInfo};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("distinct.archive");
        let mut writer = ArchiveWriter::open(&path, 1).unwrap();
        let ring = RingInfo::synthetic(1, 1 << 30, 1_000, &["market"]);
        let count = 400_000u64;
        let batch: Vec<Decoded> = (0..count)
            .map(|i| Decoded {
                position: i as u32,
                kind: 0,
                class: 0,
                probability: 1.0,
                record: Record::new(i, 1_000_000 + i * 10_000, 0, (i * 7_919 % 1_000_003) as i32),
            })
            .collect();
        writer.append(&ring, &batch).unwrap();
        let sources = Sources::open(&[path.display().to_string()]).unwrap();
        let filter = Filter::parse(&FilterArgs::default()).unwrap();
        let quantiles = parse_quantiles(&["50".to_string(), "99".to_string()]).unwrap();
        let mut progress = Progress::new("test", 0);
        let mut grouping = Grouping {
            by: By::default(),
            window_ns: Some(10_000_000),
            raw: false,
        };
        let rows = compute(&sources, &filter, grouping, &quantiles, &mut progress).unwrap();
        assert_eq!(rows.len(), 401); // the first starts at 1 ms
        assert!(rows.iter().all(|row| row.at_or_below.is_some()));
        assert_eq!(rows.iter().map(|r| r.summary.records).sum::<u64>(), count);
        // The same answers as a tally of every record that never closes (no budget in reach).
        let mut whole = Tally::with_budget(quantiles.clone(), usize::MAX);
        sources.sources[0]
            .for_each(|s| whole.add(s.nanotime - s.nanotime % 10_000_000, s.delta_ns, WEIGHT_ONE))
            .unwrap();
        let expected = whole.finish().finish();
        assert_eq!(rows.len(), expected.len());
        for (row, (window, values, summary)) in rows.iter().zip(&expected) {
            assert_eq!(row.key.window, Some(*window));
            assert_eq!(
                (&row.values, row.summary.records),
                (values, summary.records)
            );
        }
        grouping.window_ns = None;
        let rows = compute(&sources, &filter, grouping, &quantiles, &mut progress).unwrap();
        assert!(rows[0].at_or_below.is_none(), "the budget was passed");
    }

    /// Every grouping's shape (kind, status, windows; raw and weighted) has a pass of its own
    /// (`by_shape`): each gives the rows a serial tally keyed by `group_key` (the key read from
    /// the grouping at run time) gives, over two files of several kinds and statuses.
    #[test]
    fn every_grouping_shape_equals_a_serial_tally() {
        let (_dir, sources, records) = crate::fold::testdata::archives(&[3_000, 1_000], 60, 11);
        let filter = Filter::default();
        let quantiles = parse_quantiles(&["50".into(), "99".into(), "100".into()]).unwrap();
        let mut progress = Progress::new("test", 0);
        for shape in 0..8u8 {
            for raw in [false, true] {
                let grouping = Grouping {
                    by: By {
                        kind: shape & BY_KIND != 0,
                        status: shape & BY_STATUS != 0,
                    },
                    window_ns: (shape & BY_WINDOW != 0).then_some(20_000),
                    raw,
                };
                assert_eq!(shape_of(grouping), shape);
                let rows = compute(&sources, &filter, grouping, &quantiles, &mut progress).unwrap();
                let mut serial = Tally::new(quantiles.clone());
                for (source, s) in &records {
                    let key = group_key(&sources, grouping, *source, s);
                    serial.add(
                        key,
                        s.delta_ns,
                        ringlat_read::percentile::weight_of(s.probability, raw),
                    );
                }
                let expected = serial.finish().finish();
                let got: Vec<_> = rows
                    .iter()
                    .map(|row| (row.key, row.values.clone(), row.summary.records))
                    .collect();
                let expected: Vec<_> = expected
                    .into_iter()
                    .map(|(key, values, summary)| (key, values, summary.records))
                    .collect();
                assert!(expected.len() > 1 || shape == 0, "shape {shape}: one row");
                assert!(got == expected, "shape {shape} raw {raw}: the rows differ");
            }
        }
    }
}
