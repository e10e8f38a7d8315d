//! `ringcat drain`: consume a ring (so the writer's breaker can close) into an archive or as
//! NDJSON on stdout. A batch is consumed only after it has been written out.

use crate::Failure;
use crate::cli::DrainArgs;
use crate::time::now_unix_ns;
use ringlat_read::archive::ArchiveWriter;
use ringlat_read::{Decoded, Drainer, ReadError, Sample, WriterState};
use serde_json::json;
use std::io::Write;
use std::time::Duration;

const BATCH: usize = 8192;

/// What a drain did.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DrainTotals {
    pub records: u64,
    pub abandoned: u64,
}

pub(crate) fn run(args: &DrainArgs) -> Result<(), Failure> {
    let mut drainer = Drainer::open(&args.file)?;
    drainer.set_unblock_after(Some(args.unblock_after));
    match &args.output {
        Some(archive) => {
            let mut writer = ArchiveWriter::open(archive, now_unix_ns())?;
            let totals =
                drain_into_archive(&mut drainer, &mut writer, args.sync, args.follow, &|| false)?;
            eprintln!(
                "ringcat: drained {} records into {}{}",
                totals.records,
                archive.display(),
                abandoned_note(totals.abandoned)
            );
        }
        None => {
            let totals = drain_to_stdout(&mut drainer, args.follow)?;
            if totals.abandoned > 0 {
                eprintln!("ringcat:{}", abandoned_note(totals.abandoned));
            }
        }
    }
    Ok(())
}

fn abandoned_note(abandoned: u64) -> String {
    if abandoned == 0 {
        String::new()
    } else {
        format!(" ({abandoned} slots abandoned by a dead or stuck producer were skipped)")
    }
}

/// Drains until the ring is empty (or, following, until the writer is gone and the ring is
/// empty, or `stop()` says so).
pub(crate) fn drain_into_archive(
    drainer: &mut Drainer,
    writer: &mut ArchiveWriter,
    sync: bool,
    follow: bool,
    stop: &dyn Fn() -> bool,
) -> Result<DrainTotals, Failure> {
    let unit_ns = drainer.file().delta_unit().nanos() as i64;
    let names: Vec<Option<String>> = (0..=255u8).map(|k| drainer.file().kind_name(k)).collect();
    drain_loop(drainer, follow, stop, |batch| {
        writer.append(batch, unit_ns, |kind| names[kind as usize].clone())?;
        if sync {
            writer.sync()?;
        }
        Ok(())
    })
}

fn drain_to_stdout(drainer: &mut Drainer, follow: bool) -> Result<DrainTotals, Failure> {
    let unit_ns = drainer.file().delta_unit().nanos() as i64;
    let names: Vec<String> = (0..=255u8).map(|k| drainer.file().kind_label(k)).collect();
    let stdout = std::io::stdout();
    drain_loop(drainer, follow, &|| false, |batch| {
        let mut text = String::with_capacity(batch.len() * 160);
        for decoded in batch {
            let sample = Sample::from_decoded(decoded, unit_ns);
            text.push_str(
                &json!({
                    "nanotime": sample.nanotime,
                    "kind": names[sample.kind as usize],
                    "kind_id": sample.kind,
                    "trace_id": sample.trace_id,
                    "status": sample.status,
                    "delta": decoded.record.delta(),
                    "delta_ns": sample.delta_ns,
                    "p": sample.probability,
                })
                .to_string(),
            );
            text.push('\n');
        }
        let mut out = stdout.lock();
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(DrainError::Output)
    })
}

/// Why a batch could not be written out (it then stays in the ring).
pub(crate) enum DrainError {
    Archive(ReadError),
    Output(std::io::Error),
}

impl From<ReadError> for DrainError {
    fn from(error: ReadError) -> Self {
        DrainError::Archive(error)
    }
}

impl From<DrainError> for Failure {
    fn from(error: DrainError) -> Self {
        match error {
            DrainError::Archive(error) => error.into(),
            DrainError::Output(error) => Failure::Output(error),
        }
    }
}

fn drain_loop(
    drainer: &mut Drainer,
    follow: bool,
    stop: &dyn Fn() -> bool,
    mut write_out: impl FnMut(&[Decoded]) -> Result<(), DrainError>,
) -> Result<DrainTotals, Failure> {
    let mut totals = DrainTotals::default();
    let mut idle = 0u32;
    loop {
        let stats = drainer.drain_batch(BATCH, &mut write_out)?;
        totals.records += stats.taken as u64;
        totals.abandoned += stats.abandoned as u64;
        if stats.taken + stats.abandoned > 0 {
            idle = 0;
            continue;
        }
        let writer_gone = drainer.file().writer_state() != WriterState::Alive;
        if stats.blocked && !writer_gone && !stop() {
            // A live producer has not committed the next slot yet: wait for it, at most the
            // unblock timeout (then the drainer skips it and counts it abandoned).
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        if !follow || writer_gone || stop() {
            // One more pass picks up what a dying or stopping writer committed last.
            let stats = drainer.drain_batch(usize::MAX, &mut write_out)?;
            totals.records += stats.taken as u64;
            totals.abandoned += stats.abandoned as u64;
            return Ok(totals);
        }
        idle = (idle + 1).min(20);
        std::thread::sleep(Duration::from_micros(50 << idle.min(8)));
    }
}
