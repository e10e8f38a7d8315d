//! `ringcat slice`: the records above a threshold (a percentile or a latency), most recent or
//! slowest first, and their counts grouped by kind and status: find the window with `pct
//! --window`, then list its outliers and group them by cause here.

use crate::Failure;
use crate::cli::{By, SliceArgs, SliceFormat, SliceOrder, Unit};
use crate::duration::parse_latency_ns;
use crate::pct::{Grouping, compute};
use crate::progress::Progress;
use crate::select::{Filter, Sources};
use crate::style::Style;
use crate::table::{latency, render};
use crate::time::display_time;
use ringlat_read::Sample;
use ringlat_read::percentile::{Quantile, WEIGHT_ONE, weight_of};
use serde_json::json;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::io::Write;

/// The slice of the tail.
pub(crate) struct Tail {
    pub threshold_ns: i64,
    pub threshold_label: String,
    pub population_records: u64,
    pub population_events: f64,
    pub records: u64,
    pub events: f64,
    /// Listed records, in the requested order.
    pub listed: Vec<(usize, Sample)>,
    /// (kind label, status) -> (records, weight).
    pub groups: BTreeMap<(Option<u16>, Option<u8>), (u64, u128)>,
}

pub(crate) struct SliceQuery<'a> {
    pub above: &'a str,
    pub by: By,
    pub limit: usize,
    pub order: SliceOrder,
    pub raw: bool,
}

pub(crate) fn slice(
    sources: &Sources,
    filter: &Filter,
    query: &SliceQuery<'_>,
    progress: &mut Progress,
) -> Result<Tail, Failure> {
    let grouping = Grouping {
        by: By::default(),
        window_ns: None,
        raw: query.raw,
    };
    let above = query.above.trim();
    let (threshold_ns, label, population_records, population_events) =
        if let Some(q) = above.strip_prefix(['p', 'P']) {
            let quantile = Quantile::parse(q).map_err(Failure::Usage)?;
            let rows = compute(
                sources,
                filter,
                grouping,
                std::slice::from_ref(&quantile),
                progress,
            )?;
            let Some(row) = rows.first() else {
                return Err(Failure::File("no records match".into()));
            };
            (
                row.values[0],
                format!("p{}", quantile.label()),
                row.summary.records,
                row.summary.events(),
            )
        } else {
            let ns = parse_latency_ns(above, 1e3).map_err(|e| {
                Failure::Usage(format!(
                    "--above '{above}': {e} (use p99, p99.9 or a latency such as 5ms)"
                ))
            })?;
            (ns, above.to_string(), 0, 0.0)
        };
    let mut tail = Tail {
        threshold_ns,
        threshold_label: label,
        population_records,
        population_events,
        records: 0,
        events: 0.0,
        listed: Vec::new(),
        groups: BTreeMap::new(),
    };
    // The `limit` first records in the requested order: a bounded heap.
    let mut heap: BinaryHeap<Reverse<(i64, u64, u64, usize)>> = BinaryHeap::new();
    let mut kept: BTreeMap<u64, (usize, Sample)> = BTreeMap::new();
    let mut sequence = 0u64;
    let mut population = (0u64, 0u128);
    progress.next_pass("slicing");
    sources.selected(filter, progress, |source, sample| {
        let weight = weight_of(sample.probability, query.raw);
        population.0 += 1;
        population.1 += weight;
        if sample.delta_ns <= threshold_ns {
            return;
        }
        tail.records += 1;
        tail.events += weight as f64 / WEIGHT_ONE as f64;
        let key = (
            query
                .by
                .kind
                .then(|| sources.label_index(source, sample.kind)),
            query.by.status.then_some(sample.status),
        );
        let group = tail.groups.entry(key).or_insert((0, 0));
        group.0 += 1;
        group.1 += weight;
        let rank = match query.order {
            SliceOrder::Slowest => sample.delta_ns,
            SliceOrder::Recent => sample.nanotime as i64,
        };
        sequence += 1;
        heap.push(Reverse((rank, sample.nanotime, sequence, source)));
        kept.insert(sequence, (source, *sample));
        if heap.len() > query.limit
            && let Some(Reverse((_, _, dropped, _))) = heap.pop()
        {
            kept.remove(&dropped);
        }
    })?;
    progress.finish();
    if tail.population_records == 0 {
        tail.population_records = population.0;
        tail.population_events = population.1 as f64 / WEIGHT_ONE as f64;
    }
    let mut order: Vec<_> = heap.into_vec().into_iter().map(|Reverse(e)| e).collect();
    order.sort_by(|a, b| b.cmp(a));
    tail.listed = order
        .into_iter()
        .filter_map(|(_, _, sequence, _)| kept.get(&sequence).copied())
        .collect();
    Ok(tail)
}

pub(crate) fn run(args: &SliceArgs) -> Result<(), Failure> {
    let sources = Sources::open(&args.files)?;
    let filter = Filter::parse(&args.filter)?;
    let mut progress = Progress::new("reading", sources.len_hint());
    let query = SliceQuery {
        above: &args.above,
        by: args.by,
        limit: args.limit,
        order: args.order,
        raw: args.raw,
    };
    let tail = slice(&sources, &filter, &query, &mut progress)?;
    let counted = crate::population::calls_above(&sources, &filter, tail.threshold_ns)?;
    let text = match args.format {
        SliceFormat::Text => {
            let line = crate::population::slice_line(tail.listed.len(), tail.records, counted);
            let mut text = text(&sources, &tail, args.by, args.order, args.unit);
            // After the threshold and tail lines.
            let at = text.find("\n\n").map_or(0, |i| i + 1);
            text.insert_str(at, &line);
            text
        }
        SliceFormat::Json => {
            let mut value = json(&sources, &tail);
            if let serde_json::Value::Object(map) = &mut value {
                map.insert(
                    "calls_above".into(),
                    counted.map_or(
                        serde_json::Value::Null,
                        |(above, calls)| json!({"above": above, "calls": calls}),
                    ),
                );
            }
            value.to_string() + "\n"
        }
        SliceFormat::Csv => {
            let mut text = crate::output::csv_header(&sources) + "\n";
            for (source, sample) in &tail.listed {
                text.push_str(&crate::output::csv_line(&sources, *source, sample));
                text.push('\n');
            }
            text
        }
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

pub(crate) fn text(
    sources: &Sources,
    tail: &Tail,
    by: By,
    order: SliceOrder,
    unit: Unit,
) -> String {
    let style = Style::stdout();
    let share = |part: f64, whole: f64| {
        if whole > 0.0 {
            100.0 * part / whole
        } else {
            0.0
        }
    };
    let mut text = format!(
        "threshold  {} = {} {}  (over {} records, {:.0} events)\n",
        tail.threshold_label,
        latency(tail.threshold_ns, unit),
        unit.suffix(),
        tail.population_records,
        tail.population_events
    );
    text.push_str(&format!(
        "tail       {} records above it, {:.0} events ({:.2}% of events)\n\n",
        tail.records,
        tail.events,
        share(tail.events, tail.population_events)
    ));
    let heading = match order {
        SliceOrder::Slowest => "slowest",
        SliceOrder::Recent => "most recent",
    };
    text.push_str(&style.bold(&format!("{heading} {}:", tail.listed.len())));
    text.push('\n');
    let mut rows = vec![
        [
            "time",
            "kind",
            "trace_id",
            "status",
            &format!("latency ({})", unit.suffix()),
            "p",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for (source, sample) in &tail.listed {
        rows.push(vec![
            display_time(sample.nanotime),
            sources
                .label(sources.label_index(*source, sample.kind))
                .to_string(),
            sample.trace_id.to_string(),
            sample.status.to_string(),
            latency(sample.delta_ns, unit),
            sample.probability.to_string(),
        ]);
    }
    text.push_str(&render(&rows, |h| style.dim(h)));
    let by_label = match (by.kind, by.status) {
        (true, true) => "kind and status",
        (true, false) => "kind",
        (false, true) => "status",
        (false, false) => "nothing",
    };
    text.push('\n');
    text.push_str(&style.bold(&format!("tail by {by_label}:")));
    text.push('\n');
    let mut header = Vec::new();
    if by.kind {
        header.push("kind".to_string());
    }
    if by.status {
        header.push("status".to_string());
    }
    if header.is_empty() {
        header.push(String::new());
    }
    header.extend(["records", "events", "share"].map(String::from));
    let mut groups: Vec<_> = tail.groups.iter().collect();
    groups.sort_by_key(|group| Reverse(group.1.1));
    let mut rows = vec![header];
    for ((kind, status), (records, weight)) in groups {
        let mut row = Vec::new();
        if let Some(kind) = kind {
            row.push(sources.label(*kind).to_string());
        }
        if let Some(status) = status {
            row.push(status.to_string());
        }
        if row.is_empty() {
            row.push("all".into());
        }
        let events = *weight as f64 / WEIGHT_ONE as f64;
        row.push(records.to_string());
        row.push(format!("{events:.0}"));
        row.push(format!("{:.1}%", share(events, tail.events)));
        rows.push(row);
    }
    text.push_str(&render(&rows, |h| style.dim(h)));
    text
}

fn json(sources: &Sources, tail: &Tail) -> serde_json::Value {
    json!({
        "threshold": {"label": tail.threshold_label, "ns": tail.threshold_ns},
        "population": {"records": tail.population_records, "events": tail.population_events},
        "tail": {"records": tail.records, "events": tail.events},
        "listed": tail
            .listed
            .iter()
            .map(|(source, s)| crate::output::json_value(sources, *source, s))
            .collect::<Vec<_>>(),
        "groups": tail.groups.iter().map(|((kind, status), (records, weight))| json!({
            "kind": kind.map(|k| sources.label(k).to_string()),
            "status": status,
            "records": records,
            "events": *weight as f64 / WEIGHT_ONE as f64,
        })).collect::<Vec<_>>(),
    })
}
