//! Samples from any source (live ring, closed ring, archive) in one shape, latency in ns.

use crate::archive::{ARCHIVE_MAGIC, ArchiveReader};
use crate::{Decoded, ReadError, RingFile};
use std::io::Read;
use std::path::Path;

/// One record as every reader sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// UNIX-epoch ns.
    pub nanotime: u64,
    /// Request id.
    pub trace_id: u64,
    /// Latency in ns.
    pub delta_ns: i64,
    /// Caller's status.
    pub status: u8,
    /// Operation kind.
    pub kind: u8,
    /// Inclusion probability (weight 1/p).
    pub probability: f64,
}

impl Sample {
    /// A ring record, its delta converted from the ring's unit (`unit_ns` ns per unit).
    pub fn from_decoded(decoded: &Decoded, unit_ns: i64) -> Self {
        Sample {
            nanotime: decoded.record.nanotime(),
            trace_id: decoded.record.trace_id(),
            delta_ns: i64::from(decoded.record.delta()).saturating_mul(unit_ns),
            status: decoded.record.status(),
            kind: decoded.kind,
            probability: decoded.probability,
        }
    }
}

/// A file to read samples from: a ring (live or not) or an archive.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("s.ring");
/// let ring = ringlat::Ring::builder(&path).kind(3, "op").create().unwrap();
/// ring.record(3, 9, 0, std::time::Duration::from_micros(5));
/// let source = ringlat_read::Source::open(&path).unwrap();
/// let mut seen = Vec::new();
/// source.for_each(|s| seen.push((s.kind, s.delta_ns))).unwrap();
/// assert_eq!(seen, [(3, 5_000)]);
/// assert_eq!(source.kind_label(3), "op");
/// ```
#[derive(Debug)]
pub enum Source {
    /// A ring file; its records are taken once (a snapshot) when first read.
    Ring {
        /// The open ring.
        file: Box<RingFile>,
        /// The snapshot every pass reads, so that passes agree on a live ring, and how many
        /// in-flight slots it passed over.
        frozen: std::sync::OnceLock<(Vec<Sample>, u64)>,
    },
    /// An archive written by `ringcat drain -o`.
    Archive(Box<ArchiveReader>),
}

impl Source {
    /// Opens a ring file or an archive, telling them apart by their magic.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, ReadError> {
        let path = path.as_ref();
        let mut magic = [0u8; 8];
        let mut file = crate::open::open_regular(path, false)?;
        let read = file
            .read(&mut magic)
            .map_err(ReadError::io(path, "reading"))?;
        if read == 8 && magic == ARCHIVE_MAGIC {
            return Ok(Source::Archive(Box::new(ArchiveReader::open(path)?)));
        }
        Ok(Source::Ring {
            file: Box::new(RingFile::open(path)?),
            frozen: std::sync::OnceLock::new(),
        })
    }

    /// The ring, if this is one.
    pub fn ring(&self) -> Option<&RingFile> {
        match self {
            Source::Ring { file, .. } => Some(file),
            Source::Archive(_) => None,
        }
    }

    /// The name of `kind`, or its number.
    pub fn kind_label(&self, kind: u8) -> String {
        match self {
            Source::Ring { file, .. } => file.kind_label(kind),
            Source::Archive(archive) => archive
                .kind_name(kind)
                .map_or_else(|| kind.to_string(), |name| crate::escape_control(&name)),
        }
    }

    /// Roughly how many samples a pass visits (for progress bars).
    pub fn len_hint(&self) -> u64 {
        match self {
            Source::Ring { file, frozen } => frozen.get().map_or_else(
                || {
                    let (head, tail) = file.positions();
                    u64::from(tail.wrapping_sub(head))
                },
                |(samples, _)| samples.len() as u64,
            ),
            Source::Archive(archive) => archive.len(),
        }
    }

    /// Slots the ring's snapshot passed over because they were being written (0 for an
    /// archive, or before the first pass).
    pub fn in_flight_skipped(&self) -> u64 {
        match self {
            Source::Ring { frozen, .. } => frozen.get().map_or(0, |(_, in_flight)| *in_flight),
            Source::Archive(_) => 0,
        }
    }

    /// Entries of an archive that the last pass skipped as damaged (an unused sampling class,
    /// a kind without a name); 0 for a ring.
    pub fn bad_entries_skipped(&self) -> u64 {
        match self {
            Source::Ring { .. } => 0,
            Source::Archive(archive) => archive.bad_entries(),
        }
    }

    /// Visits every sample. A ring is read once (a snapshot, in-flight slots skipped) and
    /// every later pass sees the same samples; an archive is streamed from disk each pass.
    pub fn for_each(&self, mut visit: impl FnMut(Sample)) -> Result<(), ReadError> {
        match self {
            Source::Ring { file, frozen } => {
                file.check_intact()?;
                let (samples, _) = frozen.get_or_init(|| {
                    let unit_ns = file.delta_unit().nanos() as i64;
                    let (records, stats) = file.snapshot();
                    let samples = records
                        .iter()
                        .map(|d| Sample::from_decoded(d, unit_ns))
                        .collect();
                    (samples, stats.in_flight)
                });
                // A snapshot taken while the file shrank is empty: report that, not "no records".
                file.check_intact()?;
                samples.iter().for_each(|s| visit(*s));
                Ok(())
            }
            Source::Archive(archive) => archive.for_each(|r| {
                visit(Sample {
                    nanotime: r.nanotime,
                    trace_id: r.trace_id,
                    delta_ns: r.delta_ns,
                    status: r.status,
                    kind: r.kind,
                    probability: r.probability,
                })
            }),
        }
    }
}
