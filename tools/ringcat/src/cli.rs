//! Command-line arguments.

use crate::Failure;
use crate::duration::parse_positive_duration;
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use std::io::Write;
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
    /// Show and read times in UTC instead of the local time zone.
    #[arg(long, global = true)]
    pub utc: bool,
    /// Colour: auto (on a terminal, unless NO_COLOR is set), always or never.
    #[arg(long, value_enum, global = true, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless NO_COLOR is set.
    Auto,
    /// Always (even into a pipe, and despite NO_COLOR).
    Always,
    /// Never.
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print records (ring files or archives, merged by time), or follow a live ring.
    ///
    /// Records stream out oldest first as the files are read: several files are merged by
    /// time (a k-way merge; equal times keep the order of the files given, then file
    /// order), and memory does not grow with the files. Each file is put in time order
    /// through a reorder window: exact for an archive of format version 3, whose header
    /// bounds how late a record can come (there --since, --until and --last also seek
    /// instead of reading the whole file), and for a ring, whose bound a first pass measures
    /// (then --last reads it backwards, as far as the bound asks); an exact window holds at
    /// most 1048576 records. Archives of versions 1 and 2 get a window of 8192 records. A
    /// record that comes later than its window allows is printed where it arrives, out of
    /// time order, and counted on stderr. In text without --unit, the latency unit is chosen
    /// from the first 65536 records printed. --last and --reverse collect what they print
    /// before printing it.
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
    /// Write records (rings and archives, merged by time) to Parquet for DuckDB, ClickHouse, Spark.
    Export(crate::export::ExportArgs),
    /// Serve the rings' metrics to Prometheus: HTTP /metrics, or a node_exporter textfile.
    Serve(crate::serve::ServeArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    Completions(CompletionsArgs),
    /// Print the man page (roff) on stdout: `ringcat man > ringcat.1`.
    Man,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
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
    /// Only these kinds (names or ids; repeat or separate with commas). An unknown kind is
    /// an error that names the known ones.
    #[arg(long, value_delimiter = ',')]
    pub kind: Vec<String>,
    /// Only these statuses (repeat or separate with commas).
    #[arg(long, value_delimiter = ',')]
    pub status: Vec<u8>,
    /// Only this trace id.
    #[arg(long)]
    pub trace: Option<u64>,
    /// Only records at or after this time: RFC 3339 (2026-11-21T15:00:00Z), a local time
    /// ("2026-11-21 15:00", "15:00"; --utc reads it as UTC), now, today, yesterday,
    /// tomorrow, or relative: 5m, -5m and "5m ago" are in the past, +5m in the future.
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub since: Option<String>,
    /// Only records before this time (same forms as --since).
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
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
    /// Follow: print the last --lines records (default 10), then new ones as they are
    /// committed, until the writer exits (a ring) or until interrupted (a growing archive).
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N records (with --follow: start with the last N; default 10 there).
    #[arg(short = 'n', long = "lines", value_name = "N")]
    pub lines: Option<usize>,
    /// Newest first.
    #[arg(short, long, conflicts_with = "follow")]
    pub reverse: bool,
    /// With --follow: also stop when this process exits.
    #[arg(long)]
    pub pid: Option<u32>,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Output format: text (a header row, then aligned rows), json (NDJSON, one documented
    /// object per record) or csv (a header row).
    #[arg(long, value_enum, default_value_t = RecordFormat::Text)]
    pub format: RecordFormat,
    /// Unit of the latency column in text (default: chosen from the records shown, the
    /// first 65536 of them when streaming; us when following).
    #[arg(long, value_enum)]
    pub unit: Option<Unit>,
}

#[derive(Debug, Args)]
pub struct StatArgs {
    /// The ring file.
    pub file: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = StatFormat::Text)]
    pub format: StatFormat,
    /// Redraw every DUR (e.g. 1s, 500ms) until interrupted.
    #[arg(long, value_name = "DUR", value_parser = parse_positive_duration, allow_hyphen_values = true)]
    pub watch: Option<Duration>,
    /// With --format prom: the `le` boundaries of ringlat_latency_seconds (5ms, or bare
    /// seconds as Prometheus prints them: 0.005), ascending, comma-separated; +Inf is
    /// always added. Default: 1, 2.5 and 5 per decade from 1us to 10s.
    #[arg(long, value_name = "LE,...", value_parser = crate::prom::Buckets::parse, default_value_t = crate::prom::Buckets::default())]
    pub buckets: crate::prom::Buckets,
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
    #[arg(long, value_name = "DUR", value_parser = parse_positive_duration, allow_hyphen_values = true, default_value = "1s")]
    pub unblock_after: Duration,
    /// Into an archive: write a snapshot of the ring's counters and population histograms
    /// (the differences since the previous one) this often, and at the end.
    #[arg(long, value_name = "DUR", value_parser = parse_positive_duration, allow_hyphen_values = true, default_value = "1s")]
    pub interval: Duration,
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
    /// Aligned table (`text` is the same, the name the other subcommands use).
    #[value(alias = "text")]
    Table,
    /// A JSON array, one object per row, latencies in integer nanoseconds.
    Json,
    /// Comma-separated values in --unit.
    Csv,
    /// HdrHistogram's percentile distribution (the HdrHistogram plotter reads it).
    Hgrm,
    /// The population histograms as an HdrHistogram interval log (V2 compressed; one tagged
    /// line per kind and drain snapshot of an archive, or the ring's whole life): for
    /// HistogramLogProcessor and the HdrHistogram tools. Latencies in ns.
    Hlog,
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
    /// One row per time bucket of this length, each computed from its own records. On
    /// archives (one, or several in time order), a window is finished as soon as the records
    /// are past its end by the archives' lateness bound: one pass, holding the values of the
    /// open windows only.
    #[arg(long, value_name = "DUR", value_parser = parse_positive_duration, allow_hyphen_values = true)]
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
    /// An SLO: exit with code 3 when it is broken. `p99>5ms` (broken when p99 is above 5ms),
    /// `limit:p99.9>=2ms`, `kind=limit,status=2:p99>1ms`, `status=2:max>50ms`, `mean>1ms`.
    /// In k6's spelling a rule is a threshold that must hold: `p(99)<5ms` is `p99>=5ms`.
    /// Repeatable; every rule is reported (passed or broken) on stderr, and a rule that
    /// matches no records is a usage error (exit 1).
    #[arg(long = "fail-if", value_name = "RULE")]
    pub fail_if: Vec<String>,
    /// Only the population percentiles (from the writers' histograms: every call).
    #[arg(long, conflicts_with = "sampled")]
    pub population: bool,
    /// Only the sampled percentiles (from the records, weighted by 1/p).
    #[arg(long)]
    pub sampled: bool,
    /// Warn on stderr when a group's coverage (the share of calls its records represent) is
    /// below this percentage.
    #[arg(long, value_name = "PCT", default_value_t = 99.0)]
    pub coverage_warn: f64,
    /// With --format hgrm: write one .hgrm file per group into this directory
    /// (`kind=limit.hgrm`, `all.hgrm`) instead of one stream on stdout.
    #[arg(short, long, value_name = "DIR", requires = "format")]
    pub output: Option<PathBuf>,
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
    /// Aligned text (`table` is the same).
    #[value(alias = "table")]
    Text,
    /// One JSON object.
    Json,
    /// The listed records as CSV, with the columns of `cat --format csv`.
    Csv,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlotFormat {
    /// Scalable vector graphics.
    Svg,
    /// A PNG image (the SVG rendered by resvg).
    Png,
}

#[derive(Debug, Args)]
pub struct PlotArgs {
    /// Ring files or archives (glob patterns allowed).
    #[arg(required = true)]
    pub files: Vec<String>,
    /// The file to write: SVG, or PNG when the name ends in .png; `-` writes the SVG to
    /// stdout.
    #[arg(short, long)]
    pub output: PathBuf,
    /// The image format (default: png when the file name ends in .png, else svg).
    #[arg(long, value_enum)]
    pub format: Option<PlotFormat>,
    /// Window of the P99 line (default: the span / 60).
    #[arg(long, value_name = "DUR", value_parser = parse_positive_duration, allow_hyphen_values = true)]
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
    /// Where the ring, archive and plot go (default: the live ring in a fresh directory
    /// under /dev/shm, the archive and plot in one under the temp directory, printed).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Seed of the simulated traffic and the sampling decisions.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// `ringcat completions SHELL`: the completion script, generated from these definitions.
pub(crate) fn completions(shell: clap_complete::Shell) -> Result<(), Failure> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "ringcat", &mut script);
    let mut out = std::io::stdout().lock();
    out.write_all(&script)?;
    out.flush()?;
    Ok(())
}

/// `ringcat man`: the man page (roff), generated from these definitions, subcommands
/// included.
pub(crate) fn man_page() -> Result<(), Failure> {
    let command = Cli::command();
    let mut page = Vec::new();
    clap_mangen::Man::new(command.clone()).render(&mut page)?;
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = sub.get_name().to_string();
        let man = clap_mangen::Man::new(sub.clone().bin_name(format!("ringcat {name}")));
        page.extend_from_slice(format!(".SH \"RINGCAT {}\"\n", name.to_uppercase()).as_bytes());
        let mut section = Vec::new();
        man.render_description_section(&mut section)?;
        man.render_synopsis_section(&mut section)?;
        man.render_options_section(&mut section)?;
        // Its sections become sub-sections of this subcommand's.
        let text = String::from_utf8_lossy(&section).replace(".SH ", ".SS ");
        page.extend_from_slice(text.as_bytes());
    }
    let mut out = std::io::stdout().lock();
    out.write_all(&page)?;
    out.flush()?;
    Ok(())
}
