use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Tail and inspect ringlat latency ring files.
///
/// Exit codes: 0 ok, 1 usage error, 2 unreadable or invalid file, 4 output error.
#[derive(Debug, Parser)]
#[command(name = "ringcat", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the records in a ring (oldest first) without consuming them.
    Cat(CatArgs),
    /// Print the header: geometry, positions, writer, counters.
    Stat(StatArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RecordFormat {
    /// One aligned line per record.
    Text,
    /// NDJSON: one object per record.
    Json,
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

#[derive(Debug, Args)]
pub struct CatArgs {
    /// The ring file.
    pub file: PathBuf,
    /// Keep printing records as they are committed, until the writer closes or dies.
    #[arg(short, long)]
    pub follow: bool,
    /// Output format.
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
    #[arg(long, value_name = "DUR", value_parser = crate::duration::parse_duration)]
    pub watch: Option<std::time::Duration>,
}
