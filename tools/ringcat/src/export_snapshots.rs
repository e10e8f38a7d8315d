//! `ringcat export --snapshots FILE`: the archives' interval snapshots (what `ringcat drain
//! --interval` wrote: per kind, the counter and population-histogram differences of each
//! interval) as a second Parquet table, one row per snapshot and kind.
//!
//! | column          | Parquet type                    | meaning |
//! |-----------------|---------------------------------|---------|
//! | time            | INT64 TIMESTAMP(NANOS, UTC)     | when the drainer read the ring's counters (the interval's end) |
//! | host            | BYTE_ARRAY STRING (dictionary)  | `--label`, default the file stem (as in the records table) |
//! | kind            | BYTE_ARRAY STRING (dictionary)  | the kind's name |
//! | calls           | INT64                           | calls in the interval: written + sampled_out + dropped_full + dropped_breaker + rejected |
//! | written, sampled_out, dropped_breaker, dropped_full, rejected | INT64 | the outcome counters' differences |
//! | histogram_count | INT64                           | calls in the population histogram (every call not rejected, overflow included) |
//! | sum_ns          | INT64                           | sum of their latencies (bucketed calls) |
//! | overflow        | INT64                           | calls beyond the histogram's range |
//! | p50_ns, p90_ns, p99_ns, p999_ns | INT64, optional | population percentiles of the interval (bucket midpoints, within 0.4%); null when the interval has no histogram or no call |
//!
//! Rings have no snapshots (their population is cumulative: `ringcat pct` reads it); an
//! archive without snapshots adds no rows. `--since/--until` select snapshots by time and
//! `--kind` by kind; the record filters (status, trace, latency) do not apply to counts.

use crate::Failure;
use crate::export::output_error as error;
use crate::select::{Filter, Sources};
use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use ringlat_format::KindCounter;
use ringlat_read::Source;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::sync::Arc;

const SCHEMA: &str = "
message ringlat_snapshot {
  REQUIRED INT64 time (TIMESTAMP(NANOS,true));
  REQUIRED BYTE_ARRAY host (STRING);
  REQUIRED BYTE_ARRAY kind (STRING);
  REQUIRED INT64 calls;
  REQUIRED INT64 written;
  REQUIRED INT64 sampled_out;
  REQUIRED INT64 dropped_breaker;
  REQUIRED INT64 dropped_full;
  REQUIRED INT64 rejected;
  REQUIRED INT64 histogram_count;
  REQUIRED INT64 sum_ns;
  REQUIRED INT64 overflow;
  OPTIONAL INT64 p50_ns;
  OPTIONAL INT64 p90_ns;
  OPTIONAL INT64 p99_ns;
  OPTIONAL INT64 p999_ns;
}";

/// The required integer columns after time, host and kind, in schema order.
const COUNTS: usize = 9;
/// The percentiles of the optional columns, in schema order.
const PERCENTILES: [f64; 4] = [0.50, 0.90, 0.99, 0.999];
/// Rows per row group (snapshots are few: one per interval and kind).
const ROWS_PER_GROUP: usize = 1 << 16;

/// Columns of one row group.
#[derive(Default)]
struct Columns {
    time: Vec<i64>,
    host: Vec<ByteArray>,
    kind: Vec<ByteArray>,
    counts: [Vec<i64>; COUNTS],
    percentiles: [Vec<Option<i64>>; PERCENTILES.len()],
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Writes the snapshots of every archive in `sources` to `output` (written beside it and
/// renamed into place); returns the rows written.
pub(crate) fn export(
    sources: &Sources,
    filter: &Filter,
    hosts: &[ByteArray],
    kinds: &[ByteArray],
    output: &Path,
) -> Result<u64, Failure> {
    let temporary = crate::export::temporary_path(output);
    let result = (|| {
        let schema = Arc::new(parse_message_type(SCHEMA).map_err(error)?);
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_created_by(format!("ringcat {}", env!("CARGO_PKG_VERSION")))
            .build();
        let out = BufWriter::new(File::create(&temporary)?);
        let mut writer =
            SerializedFileWriter::new(out, schema, Arc::new(properties)).map_err(error)?;
        let mut columns = Columns::default();
        let mut rows = 0u64;
        for (index, source) in sources.sources.iter().enumerate() {
            let Source::Archive(archive) = source else {
                continue;
            };
            let selected = filter.kinds_for(sources, index);
            for snapshot in archive.snapshot_deltas()? {
                if !filter.keeps_time(snapshot.time_unix_ns) {
                    continue;
                }
                for population in &snapshot.kinds {
                    if !selected[usize::from(population.kind)] {
                        continue;
                    }
                    let label = sources.label_index(index, population.kind);
                    columns.time.push(saturating_i64(snapshot.time_unix_ns));
                    columns.host.push(hosts[index].clone());
                    columns.kind.push(kinds[usize::from(label)].clone());
                    let histogram = population.histogram.as_ref();
                    let values = [
                        population.calls(),
                        population.get(KindCounter::Written),
                        population.get(KindCounter::SampledOut),
                        population.get(KindCounter::DroppedBreaker),
                        population.get(KindCounter::DroppedFull),
                        population.get(KindCounter::Rejected),
                        histogram.map_or(0, |h| h.count()),
                        histogram.map_or(0, |h| h.sum_ns()),
                        histogram.map_or(0, |h| h.overflow()),
                    ];
                    for (column, value) in columns.counts.iter_mut().zip(values) {
                        column.push(saturating_i64(value));
                    }
                    for (column, fraction) in columns.percentiles.iter_mut().zip(PERCENTILES) {
                        column.push(
                            histogram
                                .and_then(|h| h.percentile(fraction))
                                .map(|e| saturating_i64(e.value_ns)),
                        );
                    }
                    if columns.time.len() >= ROWS_PER_GROUP {
                        rows += write_group(&mut writer, &mut columns)?;
                    }
                }
            }
        }
        rows += write_group(&mut writer, &mut columns)?;
        let out = writer.into_inner().map_err(error)?;
        let file = out
            .into_inner()
            .map_err(|e| Failure::Output(e.into_error()))?;
        file.sync_all()?;
        std::fs::rename(&temporary, output)?;
        Ok(rows)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

fn write_group(
    writer: &mut SerializedFileWriter<BufWriter<File>>,
    columns: &mut Columns,
) -> Result<u64, Failure> {
    let rows = columns.time.len();
    if rows == 0 {
        return Ok(0);
    }
    let mut group = writer.next_row_group().map_err(error)?;
    let mut index = 0;
    while let Some(mut column) = group.next_column().map_err(error)? {
        let written = match index {
            0 => column
                .typed::<Int64Type>()
                .write_batch(&columns.time, None, None),
            1 => column
                .typed::<ByteArrayType>()
                .write_batch(&columns.host, None, None),
            2 => column
                .typed::<ByteArrayType>()
                .write_batch(&columns.kind, None, None),
            i if i < 3 + COUNTS => {
                column
                    .typed::<Int64Type>()
                    .write_batch(&columns.counts[i - 3], None, None)
            }
            i => {
                // An optional column: a definition level per row, values only where present.
                let optional = &columns.percentiles[i - 3 - COUNTS];
                let levels: Vec<i16> = optional.iter().map(|v| i16::from(v.is_some())).collect();
                let values: Vec<i64> = optional.iter().flatten().copied().collect();
                column
                    .typed::<Int64Type>()
                    .write_batch(&values, Some(&levels), None)
            }
        };
        written.map_err(error)?;
        column.close().map_err(error)?;
        index += 1;
    }
    group.close().map_err(error)?;
    columns.time.clear();
    columns.host.clear();
    columns.kind.clear();
    columns.counts.iter_mut().for_each(Vec::clear);
    columns.percentiles.iter_mut().for_each(Vec::clear);
    Ok(rows as u64)
}
