//! Samples from any source (live ring, closed ring, archive) in one shape, latency in ns.

use crate::archive::{ARCHIVE_MAGIC, ArchiveReader, EntryTables};
use crate::percentile::weight_of;
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

    /// Starts a pass made of [`scan`](Self::scan)s and returns how many units it covers (the
    /// entries of an archive, the records of a ring's snapshot, taken now if this is the first
    /// pass). Pieces `a..b` of `0..units` may then be scanned in any order, by several threads;
    /// call [`end_scan`](Self::end_scan) after the last.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("p.ring");
    /// let ring = ringlat::Ring::builder(&path).kind(0, "op").create().unwrap();
    /// for trace in 0..5 { ring.record(0, trace, 0, std::time::Duration::from_micros(3)); }
    /// let source = ringlat_read::Source::open(&path).unwrap();
    /// let units = source.begin_scan().unwrap();
    /// let mut buffer = Vec::new();
    /// let mut weights = 0u128;
    /// source.scan(0..units, &mut buffer, |_sample, weight| weights += weight).unwrap();
    /// source.end_scan().unwrap();
    /// assert_eq!(weights, 5 * ringlat_read::percentile::WEIGHT_ONE);
    /// ```
    pub fn begin_scan(&self) -> Result<u64, ReadError> {
        match self {
            Source::Ring { file, .. } => {
                file.check_intact()?;
                Ok(self.frozen_samples().len() as u64)
            }
            Source::Archive(archive) => {
                archive.begin_scan();
                Ok(archive.len())
            }
        }
    }

    /// Visits the samples of units `range` of a pass begun with
    /// [`begin_scan`](Self::begin_scan), each with its fixed-point weight 1/p (see
    /// [`crate::percentile`]); `buffer` is scratch space reused between calls.
    pub fn scan(
        &self,
        range: std::ops::Range<u64>,
        buffer: &mut Vec<u8>,
        mut visit: impl FnMut(&Sample, u128),
    ) -> Result<(), ReadError> {
        match self {
            Source::Ring { .. } => {
                let samples = self.frozen_samples();
                let end = (range.end as usize).min(samples.len());
                let start = (range.start as usize).min(end);
                let mut last = (f64::NAN, 0u128);
                for sample in &samples[start..end] {
                    if sample.probability.to_bits() != last.0.to_bits() {
                        last = (sample.probability, weight_of(sample.probability, false));
                    }
                    visit(sample, last.1);
                }
                Ok(())
            }
            Source::Archive(archive) => {
                let tables = EntryTables::of(archive);
                archive.scan(&tables, range, buffer, visit).map(drop)
            }
        }
    }

    /// Ends a pass made of [`scan`](Self::scan)s: fails if a ring shrank while its snapshot
    /// was taken (what was read may be zeros).
    pub fn end_scan(&self) -> Result<(), ReadError> {
        match self {
            Source::Ring { file, .. } => file.check_intact(),
            Source::Archive(_) => Ok(()),
        }
    }

    /// The ring's snapshot, taken on first use (empty for an archive).
    fn frozen_samples(&self) -> &[Sample] {
        match self {
            Source::Ring { file, frozen } => {
                &frozen
                    .get_or_init(|| {
                        let unit_ns = file.delta_unit().nanos() as i64;
                        let (records, stats) = file.snapshot();
                        let samples = records
                            .iter()
                            .map(|d| Sample::from_decoded(d, unit_ns))
                            .collect();
                        (samples, stats.in_flight)
                    })
                    .0
            }
            Source::Archive(_) => &[],
        }
    }

    /// Visits every sample. A ring is read once (a snapshot, in-flight slots skipped) and
    /// every later pass sees the same samples; an archive is streamed from disk each pass.
    pub fn for_each(&self, mut visit: impl FnMut(Sample)) -> Result<(), ReadError> {
        match self {
            Source::Ring { file, .. } => {
                file.check_intact()?;
                let samples = self.frozen_samples();
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
