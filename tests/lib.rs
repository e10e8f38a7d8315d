//! Helpers shared by the cross-process tests: records whose fields derive from the trace id,
//! so that a reader in another process can tell a torn record from a whole one.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::zombie_processes,
    missing_docs
)]

use ringlat_read::archive::{ArchiveReader, ArchiveWriter, RingInfo};
use ringlat_read::{Drainer, ReadError};
use std::path::Path;
use std::time::Duration;

/// The trace id of sequence number `sequence` of writer thread `thread`.
pub fn trace_of(thread: u64, sequence: u64) -> u64 {
    (thread << 40) | sequence
}

/// The status a record of `trace` carries.
pub fn status_of(trace: u64) -> u8 {
    (trace.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8
}

/// The latency a record of `trace` carries, in microseconds.
pub fn micros_of(trace: u64) -> u64 {
    trace.wrapping_mul(0xC2B2_AE3D_27D4_EB4F) % 1_000_000
}

/// The latency to record for `trace`.
pub fn delta_of(trace: u64) -> Duration {
    Duration::from_micros(micros_of(trace))
}

/// Checks that a record read back is whole; returns `(thread, sequence)`.
pub fn check_record(record: &ringlat_format::Record) -> Result<(u64, u64), String> {
    let trace = record.trace_id();
    if record.status() != status_of(trace) || record.delta() as u64 != micros_of(trace) {
        return Err(format!("torn record: {record:?}"));
    }
    Ok((trace >> 40, trace & ((1 << 40) - 1)))
}

/// Checks per-thread order over a sequence of records, returning how many each thread had.
#[derive(Debug, Default)]
pub struct OrderCheck {
    last: Vec<Option<u64>>,
    pub per_thread: Vec<u64>,
}

impl OrderCheck {
    pub fn push(&mut self, record: &ringlat_format::Record) -> Result<(), String> {
        let (thread, sequence) = check_record(record)?;
        let thread = thread as usize;
        if self.last.len() <= thread {
            self.last.resize(thread + 1, None);
            self.per_thread.resize(thread + 1, 0);
        }
        if let Some(previous) = self.last[thread]
            && sequence <= previous
        {
            return Err(format!(
                "thread {thread}: sequence {sequence} after {previous}"
            ));
        }
        self.last[thread] = Some(sequence);
        self.per_thread[thread] += 1;
        Ok(())
    }
}

/// The kind (0, 1 or 2, named `k0`..`k2`) a crash-harness record of `trace` carries.
pub fn kind_of(trace: u64) -> u8 {
    (trace.wrapping_mul(0xD6E8_FEB8_6659_FD93) >> 62) as u8 % 3
}

/// The trace ids an archive holds, in file order.
pub fn archived_traces(path: &Path) -> Vec<u64> {
    let reader = ArchiveReader::open(path).unwrap();
    let mut traces = Vec::new();
    reader.for_each(|r| traces.push(r.trace_id)).unwrap();
    traces
}

/// Drains the ring at `ring_path` into the archive at `archive_path` until it is empty;
/// returns how many records the archive already held.
pub fn drain_all(ring_path: &Path, archive_path: &Path) -> u64 {
    let mut drainer = Drainer::open(ring_path).unwrap();
    let mut archive = ArchiveWriter::open(archive_path, 1).unwrap();
    let info = RingInfo::of(drainer.file());
    let mut already = 0;
    loop {
        let stats = drainer
            .drain_batch(64, |batch| {
                already += archive.append(&info, batch)?.already_archived;
                Ok::<(), ReadError>(())
            })
            .unwrap();
        if stats.taken == 0 {
            return already;
        }
    }
}
