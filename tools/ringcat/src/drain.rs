//! `ringcat drain`: consume a ring (so the writer's breaker can close) into an archive or as
//! NDJSON on stdout. A batch is consumed only after it has been written out; into an archive
//! it is exactly once (the archive leaves out ring positions it already holds, so a drain
//! restarted after a crash or a full disk consumes them without archiving them twice).

use crate::Failure;
use crate::cli::DrainArgs;
use crate::time::now_unix_ns;
use ringlat_read::archive::{ArchiveWriter, RingInfo};
use ringlat_read::{Decoded, Drainer, ReadError, RingFile, Sample, WriterState};
use std::io::Write;
use std::time::Duration;

const BATCH: usize = 8192;

/// What a drain did.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DrainTotals {
    /// Records written out (archived or printed).
    pub records: u64,
    /// Records consumed without being archived because the archive already held them.
    pub already_archived: u64,
    /// Slots left out because they cannot be trusted (undeclared kind, unused class).
    pub invalid: u64,
    pub abandoned: u64,
}

pub(crate) fn run(args: &DrainArgs) -> Result<(), Failure> {
    let mut drainer =
        Drainer::open(&args.file).map_err(|e| crate::select::explain_archive(&args.file, e))?;
    drainer.set_unblock_after(Some(args.unblock_after));
    match &args.output {
        Some(archive) => {
            let mut writer =
                ArchiveWriter::open(archive, now_unix_ns())?.sync_each_batch(args.sync);
            let totals = drain_into_archive(
                &mut drainer,
                &mut writer,
                args.follow,
                args.interval,
                &|| false,
            )?;
            eprintln!(
                "ringcat: drained {} records into {}{}",
                totals.records,
                archive.display(),
                notes(&totals)
            );
        }
        None => {
            let totals = drain_to_stdout(&mut drainer, args.follow)?;
            let notes = notes(&totals);
            if !notes.is_empty() {
                eprintln!("ringcat:{notes}");
            }
        }
    }
    Ok(())
}

fn notes(totals: &DrainTotals) -> String {
    let mut notes = String::new();
    if totals.already_archived > 0 {
        notes += &format!(
            " ({} records already in the archive were consumed without being appended again)",
            totals.already_archived
        );
    }
    if totals.invalid > 0 {
        notes += &format!(
            " ({} invalid slots (undeclared kind or unused sampling class) were skipped)",
            totals.invalid
        );
    }
    if totals.abandoned > 0 {
        notes += &format!(
            " ({} slots abandoned by a dead or stuck producer were skipped)",
            totals.abandoned
        );
    }
    notes
}

/// Drains until the ring is empty (or, following, until the writer is gone and the ring is
/// empty, or `stop()` says so), writing a snapshot of the ring's counters and population
/// histograms into the archive every `interval`, and a last one at the end.
pub(crate) fn drain_into_archive(
    drainer: &mut Drainer,
    writer: &mut ArchiveWriter,
    follow: bool,
    interval: Duration,
    stop: &dyn Fn() -> bool,
) -> Result<DrainTotals, Failure> {
    let ring = RingInfo::of(drainer.file());
    let writer = std::cell::RefCell::new(writer);
    // The first snapshot one interval in (or at the end): a one-shot drain appends its
    // records, then one snapshot.
    let mut last_snapshot = std::time::Instant::now();
    let mut snapshot = |file: &RingFile, last: bool| -> Result<(), DrainError> {
        if last || last_snapshot.elapsed() >= interval {
            writer
                .borrow_mut()
                .append_snapshot(&ring, now_unix_ns(), &file.population())?;
            last_snapshot = std::time::Instant::now();
        }
        Ok(())
    };
    drain_loop(drainer, follow, stop, &mut snapshot, |batch, totals| {
        let stats = writer.borrow_mut().append(&ring, batch)?;
        totals.records += stats.appended;
        totals.already_archived += stats.already_archived;
        totals.invalid += stats.invalid;
        Ok(())
    })
}

fn drain_to_stdout(drainer: &mut Drainer, follow: bool) -> Result<DrainTotals, Failure> {
    let ring = RingInfo::of(drainer.file());
    let unit_ns = ring.unit_ns;
    let names: Vec<String> = (0..=255u8).map(|k| drainer.file().kind_label(k)).collect();
    let stdout = std::io::stdout();
    let mut no_snapshots = |_: &RingFile, _: bool| Ok(());
    drain_loop(
        drainer,
        follow,
        &|| false,
        &mut no_snapshots,
        |batch, totals| {
            let mut text = String::with_capacity(batch.len() * 160);
            let mut printed = 0;
            for decoded in batch {
                if ring.defect(decoded).is_some() {
                    continue;
                }
                printed += 1;
                let sample = Sample::from_decoded(decoded, unit_ns);
                text.push_str(
                    &crate::output::record_json(
                        &sample,
                        &names[sample.kind as usize],
                        i64::from(decoded.record.delta()),
                        unit_ns,
                        None,
                    )
                    .to_string(),
                );
                text.push('\n');
            }
            let mut out = stdout.lock();
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .map_err(DrainError::Output)?;
            totals.records += printed;
            totals.invalid += batch.len() as u64 - printed;
            Ok(())
        },
    )
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

/// Called every turn of the drain loop (`false`) and once at its end (`true`).
type SnapshotHook<'a> = dyn FnMut(&RingFile, bool) -> Result<(), DrainError> + 'a;

fn drain_loop(
    drainer: &mut Drainer,
    follow: bool,
    stop: &dyn Fn() -> bool,
    snapshot: &mut SnapshotHook<'_>,
    mut write_out: impl FnMut(&[Decoded], &mut DrainTotals) -> Result<(), DrainError>,
) -> Result<DrainTotals, Failure> {
    let mut totals = DrainTotals::default();
    let mut idle = 0u32;
    loop {
        drainer.file().check_intact()?;
        snapshot(drainer.file(), false)?;
        let stats = drainer.drain_batch(BATCH, |batch| write_out(batch, &mut totals))?;
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
            let stats = drainer.drain_batch(usize::MAX, |batch| write_out(batch, &mut totals))?;
            totals.abandoned += stats.abandoned as u64;
            drainer.file().check_intact()?;
            snapshot(drainer.file(), true)?;
            return Ok(totals);
        }
        idle = (idle + 1).min(20);
        std::thread::sleep(Duration::from_micros(50 << idle.min(8)));
    }
}
