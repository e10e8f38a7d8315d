//! Command-line arguments.

use crate::duration::parse_duration;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// Tail, drain and slice ringlat latency records by percentile.
///
/// Exit codes: 0 ok, 1 usage error, 2 unreadable or invalid file, 3 SLO broken (pct
/// --fail-if), 4 output error. A closed pipe (`| head`) is not an error.
#[derive(Debug, Parser)]
#[command(name = "ringcat", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print records (ring files or archives, merged by time), or follow a live ring.
    Cat(CatArgs),
    /// The live header view: geometry, fill, writer, breaker, rates, counters.
    Stat(StatArgs),
    /// Consume records (freeing the writer's ring) into an archive, or NDJSON on stdout.
    Drain(DrainArgs),
    /// Percentiles per kind and status, over time windows, weighted by 1/p.
    Pct(PctArgs),
    /// The tail itself: the records above a threshold, and their counts by cause.
    Slice(SliceArgs),
    /// An SVG of latency over time (with each window's P99) and the percentile spectrum.
    Plot(PlotArgs),
    /// A simulated trading gateway recorded, drained and sliced: the tour of ringcat.
    Demo(DemoArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RecordFormat {
    /// One aligned line per record.
    Text,
    /// NDJSON: one object per record.
    Json,
    /// Comma-separated values with a header row.
    Csv,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatFormat {
    /// Aligned text.
    Text,
    /// One JSON object.
    Json,
    /// Prometheus text exposition (for a node-exporter textfile collector or a sidecar).
    Prom,
}

/// Record filters shared by cat, pct, slice and plot.
#[derive(Debug, Clone, Default, Args)]
pub struct FilterArgs {
    /// Only these kinds (names or ids; repeat or separate with commas).
    #[arg(long, value_delimiter = ',')]
    pub kind: Vec<String>,
    /// Only these statuses (repeat or separate with commas).
    #[arg(long, value_delimiter = ',')]
    pub status: Vec<u8>,
    /// Only this trace id.
    #[arg(long)]
    pub trace: Option<u64>,
    /// Only records at or after this time: RFC 3339 (2026-11-21T15:00:00Z) or relative (5m, 1h).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only records before this time: RFC 3339 or relative (ago).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Only the last N records (by time) that pass the other filters.
    #[arg(long, value_name = "N")]
    pub last: Option<usize>,
    /// Only records at least this slow (5ms, 250us; a bare number is microseconds).
    #[arg(long, value_name = "LATENCY", allow_hyphen_values = true)]
    pub min: Option<String>,
    /// Only records at most this slow.
    #[arg(long, value_name = "LATENCY", allow_hyphen_values = true)]
    pub max: Option<String>,
}

#[derive(Debug, Args)]
pub struct CatArgs {
    /// Ring files or archives (glob patterns allowed); several are merged by time.
    #[arg(required = true)]
    pub files: Vec<String>,
    /// Follow a live ring: print new records as they are committed, until the writer exits.
    #[arg(short, long)]
    pub follow: bool,
    /// With --follow: also stop when this process exits.
    #[arg(long)]
    pub pid: Option<u32>,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Output format (json adds `p`, the record's inclusion probability).
    #[arg(long, value_enum, default_value_t = RecordFormat::Text)]
    pub format: RecordFormat,
}

#[derive(Debug, Args)]
pub struct StatArgs {
    /// The ring file.
    pub file: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = StatFormat::Text)]
    pub format: StatFormat,
    /// Redraw every DUR (e.g. 1s, 500ms) until interrupted.
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub watch: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct DrainArgs {
    /// The ring file.
    pub file: PathBuf,
    /// Append to this archive (created if missing) instead of printing NDJSON.
    #[arg(short, long, value_name = "ARCHIVE")]
    pub output: Option<PathBuf>,
    /// Keep draining until the writer exits.
    #[arg(short, long)]
    pub follow: bool,
    /// fsync the archive after every batch (slower; survives an OS crash).
    #[arg(long)]
    pub sync: bool,
    /// Unblock a slot that a live producer reserved and has not committed for this long:
    /// it is skipped and counted as abandoned (the producer's late commit loses).
    #[arg(long, value_name = "DUR", value_parser = parse_duration, default_value = "1s")]
    pub unblock_after: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Unit {
    Ns,
    Us,
    Ms,
    S,
}

impl Unit {
    /// Nanoseconds per unit.
    pub fn nanos(self) -> f64 {
        match self {
            Unit::Ns => 1.0,
            Unit::Us => 1e3,
            Unit::Ms => 1e6,
            Unit::S => 1e9,
        }
    }

    /// Decimals worth printing.
    pub fn decimals(self) -> usize {
        match self {
            Unit::Ns => 0,
            Unit::Us => 1,
            Unit::Ms => 3,
            Unit::S => 6,
        }
    }

    /// The suffix.
    pub fn suffix(self) -> &'static str {
        match self {
            Unit::Ns => "ns",
            Unit::Us => "us",
            Unit::Ms => "ms",
            Unit::S => "s",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PctFormat {
    /// Aligned table.
    Table,
    /// A JSON array, one object per row, latencies in integer nanoseconds.
    Json,
    /// Comma-separated values in --unit.
    Csv,
    /// HdrHistogram's percentile distribution (the HdrHistogram plotter reads it).
    Hgrm,
}

/// Grouping of rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct By {
    pub kind: bool,
    pub status: bool,
}

fn parse_by(text: &str) -> Result<By, String> {
    let mut by = By::default();
    for part in text.split(',').map(str::trim) {
        match part {
            "kind" => by.kind = true,
            "status" => by.status = true,
            "" | "none" => {}
            other => return Err(format!("cannot group by '{other}' (kind, status)")),
        }
    }
    Ok(by)
}

#[derive(Debug, Args)]
pub struct PctArgs {
    /// Ring files or archives (glob patterns allowed).
    #[arg(required = true)]
    pub files: Vec<String>,
    /// Group rows by kind, status, or kind,status.
    #[arg(long, value_parser = parse_by, default_value = "none")]
    pub by: By,
    /// One row per time bucket of this length, each computed from its own records.
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub window: Option<Duration>,
    /// Percentiles to report.
    #[arg(long, value_delimiter = ',', default_value = "50,90,99,99.9,99.99")]
    pub percentiles: Vec<String>,
    /// The plain sample: every record weighs 1 (default: weighted by 1/p, an estimate for
    /// the whole population).
    #[arg(long)]
    pub raw: bool,
    /// Unit of the latencies printed (table, csv, hgrm).
    #[arg(long, value_enum, default_value_t = Unit::Us)]
    pub unit: Unit,
    /// Output format.
    #[arg(long, value_enum, default_value_t = PctFormat::Table)]
    pub format: PctFormat,
    /// An SLO: exit with code 3 when it is broken. `p99>5ms`, `limit:p99.9>=2ms`,
    /// `max>50ms`, `mean>1ms`. Repeatable.
    #[arg(long = "fail-if", value_name = "RULE")]
    pub fail_if: Vec<String>,
    #[command(flatten)]
    pub filter: FilterArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SliceOrder {
    /// Slowest first.
    Slowest,
    /// Most recent first.
    Recent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SliceFormat {
    /// Aligned text.
    Text,
    /// One JSON object.
    Json,
}

#[derive(Debug, Args)]
pub struct SliceArgs {
    /// Ring files or archives (glob patterns allowed).
    #[arg(required = true)]
    pub files: Vec<String>,
    /// The threshold: a percentile of the selected records (p99, p99.9) or a latency (5ms).
    #[arg(long, value_name = "pQ|LATENCY")]
    pub above: String,
    /// Count the tail by status, kind, or kind,status.
    #[arg(long, value_parser = parse_by, default_value = "kind,status")]
    pub by: By,
    /// List at most N records.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Which records to list first.
    #[arg(long, value_enum, default_value_t = SliceOrder::Slowest)]
    pub order: SliceOrder,
    /// Percentiles over the plain sample instead of weighted by 1/p.
    #[arg(long)]
    pub raw: bool,
    /// Unit of the latencies printed.
    #[arg(long, value_enum, default_value_t = Unit::Us)]
    pub unit: Unit,
    /// Output format.
    #[arg(long, value_enum, default_value_t = SliceFormat::Text)]
    pub format: SliceFormat,
    #[command(flatten)]
    pub filter: FilterArgs,
}

#[derive(Debug, Args)]
pub struct PlotArgs {
    /// Ring files or archives (glob patterns allowed).
    #[arg(required = true)]
    pub files: Vec<String>,
    /// The SVG file to write.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Window of the P99 line (default: the span / 60).
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub window: Option<Duration>,
    /// Percentiles over the plain sample instead of weighted by 1/p.
    #[arg(long)]
    pub raw: bool,
    #[command(flatten)]
    pub filter: FilterArgs,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How long the gateway runs.
    #[arg(long, default_value_t = 6)]
    pub seconds: u64,
    /// Where the ring, archive and plot go (default: a fresh directory, printed).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Seed of the simulated traffic and the sampling decisions.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}
