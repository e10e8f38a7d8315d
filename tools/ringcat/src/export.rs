//! `ringcat export`: rings and archives, merged by time, into one Parquet file for query
//! engines (DuckDB, ClickHouse, Spark, Polars).
//!
//! Columns (docs in the README, "Query engines"):
//!
//! | column      | Parquet type                               | meaning |
//! |-------------|--------------------------------------------|---------|
//! | time        | INT64 TIMESTAMP(NANOS, UTC)                | the record's nanotime |
//! | host        | BYTE_ARRAY STRING (dictionary)             | `--label`, default the file stem |
//! | kind        | BYTE_ARRAY STRING (dictionary)             | the kind's name (its id if unnamed) |
//! | trace_id    | INT64 INTEGER(64, unsigned)                | request id |
//! | status      | INT32 INTEGER(8, unsigned)                 | caller's status |
//! | latency_ns  | INT64                                      | latency in ns |
//! | probability | DOUBLE                                     | inclusion probability p |
//! | weight      | DOUBLE                                     | 1/p (1 when p is not in (0, 1)) |
//!
//! Memory is bounded whatever the input size: one row group of columns (`--row-group-rows`),
//! plus per file a reorder window and two batches in flight. Each file is read on its own
//! thread; the records are merged by time through the files' windows ([`crate::merge`]):
//! exact for an archive with a lateness bound (version 3) and for a ring (whose bound a first
//! pass measures: [`crate::ring_order`]), else [`WINDOW`] records, and a record further than
//! that from its place in time keeps its file order (counted on stderr). A ring is read as
//! `ringcat cat` reads it. The file is written beside its destination and renamed
//! into place when complete, so a failed export leaves no half-made file.

use crate::Failure;
use crate::cli::FilterArgs;
use crate::merge::{EXACT_WINDOW_CAP, Feed, Merger, Stream, WINDOW};
use crate::progress::Progress;
use crate::select::{Filter, Sources, expand};
use clap::Args;
use parquet::basic::{Compression, Encoding};
use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int32Type, Int64Type};
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use parquet::schema::types::ColumnPath;
use ringlat_read::Sample;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

/// Records per batch sent from a file's reader thread.
const BATCH: usize = 4096;

/// The schema, in Parquet's message syntax.
const SCHEMA: &str = "
message ringlat_record {
  REQUIRED INT64 time (TIMESTAMP(NANOS,true));
  REQUIRED BYTE_ARRAY host (STRING);
  REQUIRED BYTE_ARRAY kind (STRING);
  REQUIRED INT64 trace_id (INTEGER(64,false));
  REQUIRED INT32 status (INTEGER(8,false));
  REQUIRED INT64 latency_ns;
  REQUIRED DOUBLE probability;
  REQUIRED DOUBLE weight;
}";

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Ring files or archives (glob patterns allowed); several are merged by time.
    #[arg(required = true)]
    pub files: Vec<String>,
    /// The Parquet file to write (replaced if it exists).
    #[arg(short, long)]
    pub output: PathBuf,
    /// The `host` column: one label for every file, or one per file in the order given
    /// (default: each file's stem, e.g. `gw-07` for archives/gw-07.archive).
    #[arg(long, value_delimiter = ',')]
    pub label: Vec<String>,
    /// Rows per row group (the unit a query engine reads in parallel, and the memory bound).
    #[arg(long, value_name = "N", default_value_t = 1 << 19)]
    pub row_group_rows: usize,
    /// Also write the archives' interval snapshots (per interval and kind: counters and
    /// population percentiles; see `ringcat drain --interval`) to this second Parquet file.
    #[arg(long, value_name = "FILE")]
    pub snapshots: Option<PathBuf>,
    #[command(flatten)]
    pub filter: FilterArgs,
}

pub(crate) fn output_error(error: ParquetError) -> Failure {
    match error {
        ParquetError::External(inner) => match inner.downcast::<std::io::Error>() {
            Ok(io) => Failure::Output(*io),
            Err(other) => Failure::Output(std::io::Error::other(other)),
        },
        other => Failure::Output(std::io::Error::other(other)),
    }
}

pub(crate) fn run(args: &ExportArgs) -> Result<(), Failure> {
    if args.row_group_rows == 0 {
        return Err(Failure::Usage("--row-group-rows must be at least 1".into()));
    }
    let files = expand(&args.files)?;
    let hosts: Vec<String> = match args.label.len() {
        0 => files
            .iter()
            .map(|f| {
                Path::new(f)
                    .file_stem()
                    .map_or_else(|| f.clone(), |s| s.to_string_lossy().into_owned())
            })
            .collect(),
        1 => vec![args.label[0].clone(); files.len()],
        n if n == files.len() => args.label.clone(),
        n => {
            return Err(Failure::Usage(format!(
                "--label: {n} labels for {} files (give one, or one per file)",
                files.len()
            )));
        }
    };
    let sources = Sources::open(&files)?;
    let filter = Filter::parse(&args.filter)?;
    let host_bytes: Vec<ByteArray> = hosts.iter().map(|h| ByteArray::from(h.as_str())).collect();
    let kind_bytes: Vec<ByteArray> = sources
        .labels
        .iter()
        .map(|l| ByteArray::from(l.as_str()))
        .collect();
    let temporary = temporary_path(&args.output);
    let result = (|| {
        let file = File::create(&temporary)?;
        let mut sink = ParquetSink::new(BufWriter::new(file), args.row_group_rows)?;
        let mut progress = Progress::new("exporting", sources.len_hint());
        let mut push = |source: usize, sample: &Sample| {
            progress.tick();
            let kind = sources.label_index(source, sample.kind);
            sink.push(sample, &host_bytes[source], &kind_bytes[usize::from(kind)])
        };
        if filter.last.is_some() {
            // --last keeps only N records: they are collected (at most N), already by time.
            let mut collecting = Progress::new("reading", 0);
            for (source, sample) in sources.collect_by_time(&filter, &mut collecting)? {
                push(source, &sample)?;
            }
        } else {
            merge_by_time(&sources, &filter, &mut push)?;
        }
        progress.finish();
        let rows = sink.finish()?;
        std::fs::rename(&temporary, &args.output)?;
        Ok(rows)
    })();
    let result = result.and_then(|written| match &args.snapshots {
        Some(path) => {
            let rows =
                crate::export_snapshots::export(&sources, &filter, &host_bytes, &kind_bytes, path)?;
            eprintln!(
                "ringcat: exported {rows} snapshot rows to {}",
                path.display()
            );
            Ok(written)
        }
        None => Ok(written),
    });
    match result {
        Ok((rows, groups)) => {
            sources.report_ring_slots_skipped();
            eprintln!(
                "ringcat: exported {rows} records in {groups} row group(s) to {}",
                args.output.display()
            );
            Ok(())
        }
        Err(error) => {
            let _ = std::fs::remove_file(&temporary);
            Err(error)
        }
    }
}

pub(crate) fn temporary_path(output: &Path) -> PathBuf {
    let mut name = output.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.tmp", std::process::id()));
    output.with_file_name(name)
}

/// A file's records as they arrive from its reader thread.
struct Batches(Receiver<Vec<Sample>>);

impl Feed for Batches {
    fn refill(&mut self, into: &mut Vec<Sample>) -> Result<bool, Failure> {
        match self.0.recv() {
            Ok(batch) if into.is_empty() => {
                *into = batch;
                Ok(true)
            }
            Ok(batch) => {
                into.extend(batch);
                Ok(true)
            }
            Err(_) => Ok(false),
        }
    }
}

/// Reads one file on this thread, sending batches of the records that pass `filter` (an
/// archive from the start of its `--since/--until` range).
fn read_file(mut feed: impl Feed, sender: SyncSender<Vec<Sample>>) -> Result<(), Failure> {
    loop {
        let mut batch = Vec::with_capacity(BATCH);
        while batch.len() < BATCH {
            if !feed.refill(&mut batch)? {
                break;
            }
        }
        if batch.is_empty() || sender.send(batch).is_err() {
            return Ok(());
        }
    }
}

/// Visits every selected record of every file, merged by time ([`crate::merge`]); each
/// file is read on its own thread.
fn merge_by_time(
    sources: &Sources,
    filter: &Filter,
    visit: &mut dyn FnMut(usize, &Sample) -> Result<(), Failure>,
) -> Result<(), Failure> {
    std::thread::scope(|scope| {
        let mut readers = Vec::new();
        let mut streams = Vec::new();
        for index in 0..sources.sources.len() {
            let (feed, window) = sources.feed(index, filter)?;
            let (sender, receiver) = sync_channel(2);
            readers.push(scope.spawn(move || read_file(feed, sender)));
            streams.push(Stream::new(Batches(receiver), window));
        }
        let mut merger = Merger::new(streams);
        let mut written = Ok(());
        loop {
            match merger.next() {
                Ok(Some((index, sample))) => {
                    written = visit(index, &sample);
                    if written.is_err() {
                        break;
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    written = Err(error);
                    break;
                }
            }
        }
        let late = merger.late();
        // Hang up, so readers still sending stop; then report the first read error.
        drop(merger);
        for reader in readers {
            match reader.join() {
                Ok(result) => result?,
                Err(_) => return Err(Failure::File("a reader thread failed".into())),
            }
        }
        if late > 0 && written.is_ok() {
            eprintln!(
                "ringcat: {late} record(s) came later than their file's reorder window allows \
                 ({WINDOW} records for archives of version 1 or 2, which carry no lateness \
                 bound; {EXACT_WINDOW_CAP} for other files) and were exported out of time order"
            );
        }
        written
    })
}

/// The columns of the row group being filled, and the file writer.
struct ParquetSink {
    writer: SerializedFileWriter<BufWriter<File>>,
    rows_per_group: usize,
    time: Vec<i64>,
    host: Vec<ByteArray>,
    kind: Vec<ByteArray>,
    trace_id: Vec<i64>,
    status: Vec<i32>,
    latency_ns: Vec<i64>,
    probability: Vec<f64>,
    weight: Vec<f64>,
    rows: u64,
    groups: u64,
}

impl ParquetSink {
    fn new(out: BufWriter<File>, rows_per_group: usize) -> Result<Self, Failure> {
        let schema = Arc::new(parse_message_type(SCHEMA).map_err(output_error)?);
        let plain = |name: &str| ColumnPath::from(name);
        let properties = WriterProperties::builder()
            .set_max_row_group_size(rows_per_group)
            .set_compression(Compression::SNAPPY)
            .set_created_by(format!("ringcat {}", env!("CARGO_PKG_VERSION")))
            // Dictionaries for the few-valued columns (host, kind, status, probability,
            // weight); the time stamps, ids and latencies are nearly all distinct.
            .set_column_dictionary_enabled(plain("time"), false)
            .set_column_encoding(plain("time"), Encoding::DELTA_BINARY_PACKED)
            .set_column_dictionary_enabled(plain("trace_id"), false)
            .set_column_dictionary_enabled(plain("latency_ns"), false)
            .build();
        let writer =
            SerializedFileWriter::new(out, schema, Arc::new(properties)).map_err(output_error)?;
        let capacity = rows_per_group.min(1 << 20);
        Ok(ParquetSink {
            writer,
            rows_per_group,
            time: Vec::with_capacity(capacity),
            host: Vec::with_capacity(capacity),
            kind: Vec::with_capacity(capacity),
            trace_id: Vec::with_capacity(capacity),
            status: Vec::with_capacity(capacity),
            latency_ns: Vec::with_capacity(capacity),
            probability: Vec::with_capacity(capacity),
            weight: Vec::with_capacity(capacity),
            rows: 0,
            groups: 0,
        })
    }

    fn push(&mut self, sample: &Sample, host: &ByteArray, kind: &ByteArray) -> Result<(), Failure> {
        let p = sample.probability;
        // Timestamps after 2262 do not fit Parquet's signed nanoseconds: clamped.
        self.time
            .push(i64::try_from(sample.nanotime).unwrap_or(i64::MAX));
        self.host.push(host.clone());
        self.kind.push(kind.clone());
        // UINT64 is stored as INT64 bits.
        self.trace_id.push(sample.trace_id as i64);
        self.status.push(i32::from(sample.status));
        self.latency_ns.push(sample.delta_ns);
        self.probability.push(p);
        self.weight
            .push(if p > 0.0 && p < 1.0 { 1.0 / p } else { 1.0 });
        if self.time.len() >= self.rows_per_group {
            self.flush_group()?;
        }
        Ok(())
    }

    fn flush_group(&mut self) -> Result<(), Failure> {
        if self.time.is_empty() {
            return Ok(());
        }
        let mut group = self.writer.next_row_group().map_err(output_error)?;
        let mut index = 0;
        while let Some(mut column) = group.next_column().map_err(output_error)? {
            let written = match index {
                0 => column
                    .typed::<Int64Type>()
                    .write_batch(&self.time, None, None),
                1 => column
                    .typed::<ByteArrayType>()
                    .write_batch(&self.host, None, None),
                2 => column
                    .typed::<ByteArrayType>()
                    .write_batch(&self.kind, None, None),
                3 => column
                    .typed::<Int64Type>()
                    .write_batch(&self.trace_id, None, None),
                4 => column
                    .typed::<Int32Type>()
                    .write_batch(&self.status, None, None),
                5 => column
                    .typed::<Int64Type>()
                    .write_batch(&self.latency_ns, None, None),
                6 => column
                    .typed::<DoubleType>()
                    .write_batch(&self.probability, None, None),
                _ => column
                    .typed::<DoubleType>()
                    .write_batch(&self.weight, None, None),
            };
            written.map_err(output_error)?;
            column.close().map_err(output_error)?;
            index += 1;
        }
        group.close().map_err(output_error)?;
        self.rows += self.time.len() as u64;
        self.groups += 1;
        self.time.clear();
        self.host.clear();
        self.kind.clear();
        self.trace_id.clear();
        self.status.clear();
        self.latency_ns.clear();
        self.probability.clear();
        self.weight.clear();
        Ok(())
    }

    /// Writes the last row group and the footer; rows and row groups written.
    fn finish(mut self) -> Result<(u64, u64), Failure> {
        self.flush_group()?;
        let out = self.writer.into_inner().map_err(output_error)?;
        let file = out
            .into_inner()
            .map_err(|e| Failure::Output(e.into_error()))?;
        file.sync_all()?;
        Ok((self.rows, self.groups))
    }
}
