//! Rendering one record as a text line, an NDJSON object or a CSV row.

use crate::cli::Unit;
use crate::select::Sources;
use crate::table::latency;
use crate::time::{display_time, rfc3339_nanos};
use ringlat_read::Sample;
use serde_json::json;
use std::io::Write;

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

/// The unit a column of these latencies reads best in: from their median magnitude.
pub(crate) fn unit_for(latencies_ns: impl Iterator<Item = i64>) -> Unit {
    let mut magnitudes: Vec<u64> = latencies_ns.map(i64::unsigned_abs).collect();
    if magnitudes.is_empty() {
        return Unit::Us;
    }
    let middle = magnitudes.len() / 2;
    let median = *magnitudes.select_nth_unstable(middle).1;
    match median {
        0..10_000 => Unit::Ns,
        10_000..10_000_000 => Unit::Us,
        10_000_000..10_000_000_000 => Unit::Ms,
        _ => Unit::S,
    }
}

/// The header row of [`text_line`].
pub(crate) fn text_header(sources: &Sources, unit: Unit) -> String {
    let file = if sources.sources.len() > 1 {
        format!("{:<width$}  ", "file", width = file_width(sources))
    } else {
        String::new()
    };
    let time_width = display_time(0).len();
    format!(
        "{file}{:<time_width$}  {:<12} {:>20}  {:>6}  {:>12}  p",
        "time",
        "kind",
        "trace_id",
        "status",
        format!("latency({})", unit.suffix()),
    )
}

fn file_width(sources: &Sources) -> usize {
    (0..sources.sources.len())
        .map(|i| file_name(sources, i).chars().count())
        .max()
        .unwrap_or(0)
}

/// The aligned text line of a record, its time in the display zone and its latency in
/// `unit` (the file name first when several files are read).
pub(crate) fn text_line(sources: &Sources, source: usize, sample: &Sample, unit: Unit) -> String {
    let file = if sources.sources.len() > 1 {
        format!(
            "{:<width$}  ",
            file_name(sources, source),
            width = file_width(sources)
        )
    } else {
        String::new()
    };
    format!(
        "{file}{}  {:<12} {:>20}  {:>6}  {:>12}  {}",
        display_time(sample.nanotime),
        sources.label(sources.label_index(source, sample.kind)),
        sample.trace_id,
        sample.status,
        latency(sample.delta_ns, unit),
        sample.probability,
    )
}

fn file_name(sources: &Sources, source: usize) -> String {
    sources.paths.get(source).cloned().unwrap_or_default()
}

/// The name of a file's delta unit, from its nanoseconds per unit.
pub(crate) fn unit_name(unit_ns: i64) -> &'static str {
    match unit_ns {
        1 => "ns",
        1_000 => "us",
        1_000_000 => "ms",
        _ => "s",
    }
}

/// One record as JSON, the same keys for every source (ring, archive, drain NDJSON):
/// `time` (RFC 3339, UTC), `nanotime` and `trace_id` as decimal strings (64-bit values
/// that jq and JavaScript would round as numbers), `kind`, `kind_id`, `status`,
/// `latency_ns`, the file's own `delta` and `unit`, `p` (the inclusion probability), and
/// `file` when several files are read.
pub(crate) fn record_json(
    sample: &Sample,
    kind: &str,
    delta: i64,
    unit_ns: i64,
    file: Option<&str>,
) -> serde_json::Value {
    let mut object = json!({
        "time": rfc3339_nanos(sample.nanotime),
        "nanotime": sample.nanotime.to_string(),
        "kind": kind,
        "kind_id": sample.kind,
        "trace_id": sample.trace_id.to_string(),
        "status": sample.status,
        "latency_ns": sample.delta_ns,
        "delta": delta,
        "unit": unit_name(unit_ns),
        "p": sample.probability,
    });
    if let (Some(file), serde_json::Value::Object(map)) = (file, &mut object) {
        map.insert("file".into(), file.into());
    }
    object
}

/// The JSON object of a record of `sources` ([`record_json`]); [`JsonLines`] writes the same
/// bytes faster.
pub(crate) fn json_value(sources: &Sources, source: usize, sample: &Sample) -> serde_json::Value {
    let unit_ns = sources.unit_ns[source];
    let file = (sources.sources.len() > 1).then(|| file_name(sources, source));
    record_json(
        sample,
        sources.label(sources.label_index(source, sample.kind)),
        sample.delta_ns / unit_ns.max(1),
        unit_ns,
        file.as_deref(),
    )
}

/// Writes NDJSON lines byte-identical to [`record_json`]'s (serde_json's sorted keys and
/// number forms) without building a JSON value: the kind and file names are escaped once,
/// the date-time part of `time` once per second, and the line goes out in one write.
pub(crate) struct JsonLines {
    /// Per label index: the label as a JSON string.
    labels: Vec<Vec<u8>>,
    /// Per source: `"file":"…",` when several files are read.
    files: Vec<Vec<u8>>,
    /// The second `prefix` renders, and `YYYY-MM-DDTHH:MM:SS` of it.
    second: Option<u64>,
    prefix: Vec<u8>,
    /// Probabilities as serde_json writes them (a file has a few distinct ones).
    probabilities: Vec<(u64, Vec<u8>)>,
    line: Vec<u8>,
}

impl JsonLines {
    pub(crate) fn new(sources: &Sources) -> Self {
        let quoted = |text: &str| serde_json::to_vec(text).unwrap_or_else(|_| b"\"\"".to_vec());
        let several = sources.sources.len() > 1;
        JsonLines {
            labels: sources.labels.iter().map(|l| quoted(l)).collect(),
            files: (0..sources.sources.len())
                .map(|index| {
                    if several {
                        let mut field = b"\"file\":".to_vec();
                        field.extend(quoted(&file_name(sources, index)));
                        field.push(b',');
                        field
                    } else {
                        Vec::new()
                    }
                })
                .collect(),
            second: None,
            prefix: Vec::new(),
            probabilities: Vec::new(),
            line: Vec::with_capacity(256),
        }
    }

    /// The index in `probabilities` of `p` as serde_json writes an f64 (remembered for the
    /// next records).
    fn probability(&mut self, p: f64) -> std::io::Result<usize> {
        let bits = p.to_bits();
        let index = match self.probabilities.iter().position(|(b, _)| *b == bits) {
            Some(index) => index,
            None => {
                if self.probabilities.len() >= 64 {
                    self.probabilities.clear();
                }
                let text = serde_json::to_vec(&p).map_err(std::io::Error::other)?;
                self.probabilities.push((bits, text));
                self.probabilities.len() - 1
            }
        };
        Ok(index)
    }

    /// Writes the line of a record of `sources` (the same `sources` as [`JsonLines::new`]).
    pub(crate) fn write(
        &mut self,
        out: &mut impl Write,
        sources: &Sources,
        source: usize,
        sample: &Sample,
    ) -> std::io::Result<()> {
        let unit_ns = sources.unit_ns[source];
        let second = sample.nanotime / 1_000_000_000;
        if self.second != Some(second) {
            let text = rfc3339_nanos(second * 1_000_000_000);
            let date_time = text.split('.').next().unwrap_or_default();
            self.prefix = date_time.as_bytes().to_vec();
            self.second = Some(second);
        }
        let label = usize::from(sources.label_index(source, sample.kind));
        let probability = self.probability(sample.probability)?;
        let mut digits = itoa::Buffer::new();
        let line = &mut self.line;
        line.clear();
        // Keys in serde_json's (sorted) order; numbers as serde_json writes them (itoa).
        line.extend_from_slice(b"{\"delta\":");
        line.extend_from_slice(digits.format(sample.delta_ns / unit_ns.max(1)).as_bytes());
        line.push(b',');
        line.extend_from_slice(self.files.get(source).map_or(&[][..], Vec::as_slice));
        line.extend_from_slice(b"\"kind\":");
        line.extend_from_slice(self.labels.get(label).map_or(&b"\"?\""[..], Vec::as_slice));
        line.extend_from_slice(b",\"kind_id\":");
        line.extend_from_slice(digits.format(sample.kind).as_bytes());
        line.extend_from_slice(b",\"latency_ns\":");
        line.extend_from_slice(digits.format(sample.delta_ns).as_bytes());
        line.extend_from_slice(b",\"nanotime\":\"");
        line.extend_from_slice(digits.format(sample.nanotime).as_bytes());
        line.extend_from_slice(b"\",\"p\":");
        line.extend_from_slice(&self.probabilities[probability].1);
        line.extend_from_slice(b",\"status\":");
        line.extend_from_slice(digits.format(sample.status).as_bytes());
        line.extend_from_slice(b",\"time\":\"");
        line.extend_from_slice(&self.prefix);
        let mut nanos = [b'.', b'0', b'0', b'0', b'0', b'0', b'0', b'0', b'0', b'0'];
        let mut rest = sample.nanotime % 1_000_000_000;
        for digit in nanos[1..].iter_mut().rev() {
            *digit = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        line.extend_from_slice(&nanos);
        line.extend_from_slice(b"Z\",\"trace_id\":\"");
        line.extend_from_slice(digits.format(sample.trace_id).as_bytes());
        line.extend_from_slice(b"\",\"unit\":\"");
        line.extend_from_slice(unit_name(unit_ns).as_bytes());
        line.extend_from_slice(b"\"}\n");
        out.write_all(line)
    }
}

/// The CSV header matching [`csv_line`] (the JSON keys, in the same order).
pub(crate) fn csv_header(sources: &Sources) -> String {
    let file = if sources.sources.len() > 1 {
        ",file"
    } else {
        ""
    };
    format!("time,nanotime,kind,kind_id,trace_id,status,latency_ns,delta,unit,p{file}")
}

/// One CSV row.
pub(crate) fn csv_line(sources: &Sources, source: usize, sample: &Sample) -> String {
    let unit_ns = sources.unit_ns[source];
    let file = if sources.sources.len() > 1 {
        format!(",{}", csv_field(&file_name(sources, source)))
    } else {
        String::new()
    };
    format!(
        "{},{},{},{},{},{},{},{},{},{}{file}",
        rfc3339_nanos(sample.nanotime),
        sample.nanotime,
        csv_field(sources.label(sources.label_index(source, sample.kind))),
        sample.kind,
        sample.trace_id,
        sample.status,
        sample.delta_ns,
        sample.delta_ns / unit_ns.max(1),
        unit_name(unit_ns),
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ringlat_read::archive::{ArchiveWriter, RingInfo};

    fn archive(path: &std::path::Path, names: &[&str]) {
        let ring = RingInfo::synthetic(1, 8, 1, names);
        let records: Vec<ringlat_read::Decoded> = (0..names.len())
            .map(|kind| ringlat_read::Decoded {
                position: kind as u32,
                kind: kind as u8,
                class: 0,
                probability: 1.0,
                record: ringlat_format::Record::new(0, 0, 0, 0),
            })
            .collect();
        ArchiveWriter::open(path, 1)
            .unwrap()
            .append(&ring, &records)
            .unwrap();
    }

    /// JsonLines writes exactly what serde_json writes for record_json, for one file and for
    /// several (the "file" key), odd names, probabilities, latencies and times.
    #[test]
    fn direct_json_is_byte_identical_to_serde_json() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (
            dir.path().join("a \"q\".archive"),
            dir.path().join("b.archive"),
        );
        archive(&a, &["market", "li\"m\\it", "é ünï", "tab\there"]);
        archive(&b, &["x"]);
        let samples = [
            (0u64, 0u64, 0i64, 0u8, 0u8, 1.0f64),
            (1_795_276_800_000_000_001, u64::MAX, -5, 255, 1, 0.1),
            (999_999_999, 7, i64::MIN, 3, 2, 1e-7),
            (1_000_000_000, 8, i64::MAX, 1, 3, 1.0 / 3.0),
            (1_795_276_859_999_999_999, 9, 12_345, 0, 0, 0.5),
        ];
        for paths in [vec![&a], vec![&a, &b]] {
            let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
            let sources = Sources::open(&names).unwrap();
            assert!(sources.labels.iter().any(|l| l == "li\"m\\it"));
            let mut lines = JsonLines::new(&sources);
            for source in 0..paths.len() {
                for (nanotime, trace_id, delta_ns, status, kind, probability) in samples {
                    let sample = Sample {
                        nanotime,
                        trace_id,
                        delta_ns,
                        status,
                        kind,
                        probability,
                    };
                    let mut direct = Vec::new();
                    lines.write(&mut direct, &sources, source, &sample).unwrap();
                    let serde = json_value(&sources, source, &sample).to_string() + "\n";
                    assert_eq!(String::from_utf8(direct).unwrap(), serde);
                }
            }
        }
    }
}
