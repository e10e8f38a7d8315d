//! `ringcat`: read ringlat ring files from outside the writer.
//!
//! Exit codes: 0 ok, 1 usage, 2 unreadable or invalid file, 4 output error.

mod cat;
mod cli;
mod duration;
mod output;
mod stat;
mod time;

use clap::Parser;
use std::process::ExitCode;

/// A failure that ends the command, with the exit code it maps to.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The file cannot be read or is not a valid ring file (exit 2).
    File(String),
    /// Writing the output failed (exit 4); a closed pipe is not a failure.
    Output(std::io::Error),
}

impl From<ringlat_read::ReadError> for Failure {
    fn from(error: ringlat_read::ReadError) -> Self {
        Failure::File(error.to_string())
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
    let result = match cli.command {
        cli::Command::Cat(args) => cat::run(&args),
        cli::Command::Stat(args) => stat::run(&args),
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
        Err(Failure::File(message)) => {
            eprintln!("ringcat: {message}");
            ExitCode::from(2)
        }
    }
}
