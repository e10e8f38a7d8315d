//! `ringcat`: read ringlat ring files and archives from outside the writer.
//!
//! Exit codes: 0 ok, 1 usage, 2 unreadable or invalid file, 3 SLO broken, 4 output error.

mod budget;
mod cat;
mod cli;
mod closing;
mod demo;
mod drain;
mod duration;
mod export;
mod export_snapshots;
mod fold;
mod hlog;
mod merge;
mod newest;
mod output;
mod pct;
mod plot;
mod plot_passes;
mod plot_points;
mod population;
mod progress;
mod prom;
mod ring_order;
mod scan;
mod select;
mod serve;
mod slice;
mod stat;
mod style;
mod table;
mod time;
mod weight;

use clap::Parser;
use std::process::ExitCode;

#[derive(Debug)]
pub(crate) enum Failure {
    /// A file is unreadable or invalid (exit 2).
    File(String),
    /// A ring read in place was written to under the passes (exit 2, unless the command
    /// read it again from a copy).
    Rewritten(String),
    /// Arguments that parse but make no sense (exit 1).
    Usage(String),
    /// An SLO given with --fail-if is broken (exit 3); the report is already printed.
    SloBroken,
    /// Writing the output failed (exit 4).
    Output(std::io::Error),
}

impl From<ringlat_read::ReadError> for Failure {
    fn from(error: ringlat_read::ReadError) -> Self {
        match error {
            ringlat_read::ReadError::Rewritten { .. } => Failure::Rewritten(error.to_string()),
            _ => Failure::File(error.to_string()),
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(error: std::io::Error) -> Self {
        Failure::Output(error)
    }
}

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    time::set_utc(cli.utc);
    style::set_color(cli.color);
    let run = || match &cli.command {
        cli::Command::Cat(args) => cat::run(args),
        cli::Command::Stat(args) => stat::run(args),
        cli::Command::Drain(args) => drain::run(args),
        cli::Command::Pct(args) => pct::run(args),
        cli::Command::Slice(args) => slice::run(args),
        cli::Command::Plot(args) => plot::run(args),
        cli::Command::Demo(args) => demo::run(args),
        cli::Command::Export(args) => export::run(args),
        cli::Command::Serve(args) => serve::run(args),
        cli::Command::Completions(args) => cli::completions(args.shell),
        cli::Command::Man => cli::man_page(),
    };
    let reader = matches!(
        cli.command,
        cli::Command::Cat(_)
            | cli::Command::Pct(_)
            | cli::Command::Slice(_)
            | cli::Command::Plot(_)
            | cli::Command::Export(_)
    );
    let result = if reader {
        select::again_from_copies_if_rewritten(run)
    } else {
        run()
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Output(error)) if error.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(Failure::Output(error)) => {
            eprintln!("ringcat: writing output: {error}");
            ExitCode::from(4)
        }
        Err(Failure::File(message) | Failure::Rewritten(message)) => {
            eprintln!("ringcat: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Usage(message)) => {
            eprintln!("ringcat: {message}");
            ExitCode::from(1)
        }
        Err(Failure::SloBroken) => ExitCode::from(3),
    }
}
