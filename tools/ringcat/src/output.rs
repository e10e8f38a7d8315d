//! Rendering one record as a text line, an NDJSON object or a CSV row.

use crate::select::Sources;
use crate::time::rfc3339_nanos;
use ringlat_read::Sample;
use serde_json::json;

/// A latency in ns, in the most readable unit.
pub(crate) fn human_latency(ns: i64) -> String {
    let magnitude = ns.unsigned_abs();
    if magnitude < 10_000 {
        format!("{ns}ns")
    } else if magnitude < 10_000_000 {
        format!("{:.1}us", ns as f64 / 1e3)
    } else if magnitude < 10_000_000_000 {
        format!("{:.1}ms", ns as f64 / 1e6)
    } else {
        format!("{:.2}s", ns as f64 / 1e9)
    }
}

/// The aligned text line of a record (the file name first when several files are read).
pub(crate) fn text_line(sources: &Sources, source: usize, sample: &Sample) -> String {
    let file = if sources.sources.len() > 1 {
        format!("{}  ", file_name(sources, source))
    } else {
        String::new()
    };
    format!(
        "{file}{}  {:<12} {:>20}  status {:>3}  {:>10}  p={}",
        rfc3339_nanos(sample.nanotime),
        sources.label(sources.label_index(source, sample.kind)),
        sample.trace_id,
        sample.status,
        human_latency(sample.delta_ns),
        sample.probability,
    )
}

fn file_name(sources: &Sources, source: usize) -> String {
    match &sources.sources[source] {
        ringlat_read::Source::Ring { file, .. } => file.path().display().to_string(),
        ringlat_read::Source::Archive(_) => format!("archive#{source}"),
    }
}

/// The NDJSON object of a record: the foundation's keys (delta in the file's unit) plus
/// `delta_ns` and `p`, the inclusion probability.
pub(crate) fn json_line(sources: &Sources, source: usize, sample: &Sample) -> String {
    let unit_ns = sources.unit_ns[source];
    let unit = match unit_ns {
        1 => "ns",
        1_000 => "us",
        _ => "ms",
    };
    json!({
        "nanotime": sample.nanotime,
        "kind": sources.label(sources.label_index(source, sample.kind)),
        "kind_id": sample.kind,
        "trace_id": sample.trace_id,
        "status": sample.status,
        "delta": sample.delta_ns / unit_ns,
        "unit": unit,
        "delta_ns": sample.delta_ns,
        "p": sample.probability,
    })
    .to_string()
}

/// The CSV header matching [`csv_line`].
pub(crate) const CSV_HEADER: &str = "time,nanotime,kind,kind_id,trace_id,status,delta_ns,p";

/// One CSV row.
pub(crate) fn csv_line(sources: &Sources, source: usize, sample: &Sample) -> String {
    format!(
        "{},{},{},{},{},{},{},{}",
        rfc3339_nanos(sample.nanotime),
        sample.nanotime,
        csv_field(sources.label(sources.label_index(source, sample.kind))),
        sample.kind,
        sample.trace_id,
        sample.status,
        sample.delta_ns,
        sample.probability
    )
}

/// Quotes a CSV field when it needs it.
pub(crate) fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}
