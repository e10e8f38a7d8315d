//! Samples from any source (live ring, closed ring, archive) in one shape, latency in ns.

use crate::archive::{ARCHIVE_MAGIC, ArchiveReader, EntryTables};
use crate::in_place::InPlace;
use crate::percentile::weight_of;
use crate::{Decoded, ReadError, RingFile};
use ringlat_ring::Fields;
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
    /// This sample with the record fields not among `fields` set to 0 (its kind and
    /// probability, which are not the record's, kept).
    ///
    /// ```
    /// use ringlat_read::{Fields, Sample};
    /// let sample = Sample { nanotime: 5, trace_id: 7, delta_ns: 9, status: 1, kind: 2, probability: 0.5 };
    /// let kept = sample.with_only(Fields::StatusAndDelta);
    /// assert_eq!((kept.nanotime, kept.trace_id), (0, 0));
    /// assert_eq!((kept.delta_ns, kept.status, kept.kind, kept.probability), (9, 1, 2, 0.5));
    /// assert_eq!(sample.with_only(Fields::All), sample);
    /// ```
    #[inline(always)]
    pub fn with_only(&self, fields: Fields) -> Sample {
        match fields {
            Fields::All => *self,
            Fields::StatusAndDelta => Sample {
                nanotime: 0,
                trace_id: 0,
                ..*self
            },
        }
    }

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

/// A ring's records taken once, in a compact shape (24 bytes a record rather than a
/// [`Sample`]'s 48), with its delta unit and class tables: what every pass over a ring reads,
/// so that passes agree on a live ring.
#[derive(Debug)]
pub struct RingSnapshot {
    /// The records in ring order, in the parts the threads that took them read (joining
    /// them would hold every record twice for a moment).
    parts: Vec<Vec<RingRecord>>,
    /// Records in all parts.
    len: usize,
    /// In-flight slots the snapshot passed over.
    in_flight: u64,
    tables: RingTables,
}

/// What turns a ring record into a [`Sample`] and its weight: the ring's delta unit, and per
/// sampling class its probability and fixed-point weight (a `u8` indexes these arrays with no
/// bounds check). For a snapshot's records and for slots read in place alike.
#[derive(Debug)]
pub(crate) struct RingTables {
    unit_ns: i64,
    probability: Box<[f64; 256]>,
    weight: Box<[u128; 256]>,
}

impl RingTables {
    /// The tables of an open ring.
    pub(crate) fn of(file: &RingFile) -> Self {
        let probability: Box<[f64; 256]> =
            Box::new(std::array::from_fn(|c| file.class_probability(c as u8)));
        RingTables {
            unit_ns: file.delta_unit().nanos() as i64,
            weight: Box::new(std::array::from_fn(|c| weight_of(probability[c], false))),
            probability,
        }
    }

    /// The probability of sampling class `class` (0 for a class not in use).
    #[inline]
    pub(crate) fn probability(&self, class: u8) -> f64 {
        self.probability[usize::from(class)]
    }

    /// The fixed-point weight (1/p) of a record of sampling class `class`.
    #[inline]
    pub(crate) fn weight(&self, class: u8) -> u128 {
        self.weight[usize::from(class)]
    }

    /// A record as every reader sees it, its delta in ns.
    #[inline]
    pub(crate) fn sample(&self, record: &RingRecord) -> Sample {
        Sample {
            nanotime: record.nanotime,
            trace_id: record.trace_id,
            delta_ns: i64::from(record.delta).saturating_mul(self.unit_ns),
            status: record.status,
            kind: record.kind,
            probability: self.probability(record.class),
        }
    }
}

impl Default for RingTables {
    /// No class in use.
    fn default() -> Self {
        RingTables {
            unit_ns: 1,
            probability: Box::new([0.0; 256]),
            weight: Box::new([0; 256]),
        }
    }
}

/// One record of a ring: the 21 bytes' fields, kind and class (24 bytes: the shape a
/// [`RingSnapshot`] keeps them in).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RingRecord {
    trace_id: u64,
    nanotime: u64,
    delta: i32,
    status: u8,
    kind: u8,
    class: u8,
}

impl RingRecord {
    fn of(decoded: &Decoded) -> Self {
        RingRecord::from_slot(&decoded.record, decoded.kind, decoded.class)
    }

    /// A slot's record, kind and class.
    #[inline]
    pub(crate) fn from_slot(record: &ringlat_format::Record, kind: u8, class: u8) -> Self {
        RingRecord {
            trace_id: record.trace_id(),
            nanotime: record.nanotime(),
            delta: record.delta(),
            status: record.status(),
            kind,
            class,
        }
    }
}

impl Default for RingSnapshot {
    /// No records.
    fn default() -> Self {
        RingSnapshot {
            parts: Vec::new(),
            len: 0,
            in_flight: 0,
            tables: RingTables::default(),
        }
    }
}

impl RingSnapshot {
    fn take(file: &RingFile) -> Self {
        let (head, tail) = file.positions();
        // At most the capacity: the ring word is read again here, after the checks.
        let held = tail.wrapping_sub(head).min(file.geometry().capacity);
        let (mut parts, in_flight) = Self::take_in_parts(file, head, held).unwrap_or_else(|| {
            let mut records = Vec::with_capacity(held as usize);
            let stats = file.snapshot_each(|d| records.push(RingRecord::of(&d)));
            (vec![records], stats.in_flight)
        });
        if file.truncated() {
            // What was read after the file shrank may be zeros: hand nothing on.
            parts = Vec::new();
        }
        parts.iter_mut().for_each(Vec::shrink_to_fit);
        RingSnapshot {
            len: parts.iter().map(Vec::len).sum(),
            parts,
            in_flight,
            tables: RingTables::of(file),
        }
    }

    /// The `held` records from `head`, read in consecutive parts on every core (validating
    /// each slot costs more than the copy: a serial snapshot of 2^24 slots took half of a
    /// `pct` over the ring), in ring order; with the in-flight slots passed over. `None`
    /// when one core or few records make parts not worth it, or when head moved meanwhile (a
    /// consumer took records, or an overwriting writer lapped): then a part that started
    /// where head was may have read into the next part, and the caller takes the snapshot
    /// serially, as before.
    fn take_in_parts(file: &RingFile, head: u32, held: u32) -> Option<(Vec<Vec<RingRecord>>, u64)> {
        let parts = crate::parts::on_every_core(held, |range| {
            let mut records = Vec::with_capacity(range.len());
            let len = u64::from(range.end - range.start);
            let stats = file.snapshot_part(head.wrapping_add(range.start), len, |d| {
                records.push(RingRecord::of(&d))
            });
            (records, stats.in_flight)
        })?;
        if file.positions().0 != head {
            return None;
        }
        let in_flight = parts.iter().map(|(_, skipped)| skipped).sum();
        Some((
            parts.into_iter().map(|(records, _)| records).collect(),
            in_flight,
        ))
    }

    /// The records at positions `start..end` of the snapshot (`start <= end <= len`).
    fn range(&self, start: usize, end: usize) -> impl Iterator<Item = &RingRecord> {
        self.slices(start, end).flatten()
    }

    /// [`RingSnapshot::range`] as the slices of its parts (a loop over each slice costs less
    /// per record than the flattening iterator).
    fn slices(&self, start: usize, end: usize) -> impl Iterator<Item = &[RingRecord]> {
        let mut offset = 0;
        self.parts.iter().map(move |part| {
            let from = start.saturating_sub(offset).min(part.len());
            let to = end.saturating_sub(offset).min(part.len()).max(from);
            offset += part.len();
            &part[from..to]
        })
    }

    #[inline]
    fn sample(&self, record: &RingRecord) -> Sample {
        self.tables.sample(record)
    }
}

/// How the passes over a ring read it, chosen when the first pass begins.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("v.ring");
/// let ring = ringlat::Ring::builder(&path).kind(0, "op").create().unwrap();
/// ring.record(0, 1, 0, std::time::Duration::from_micros(3));
/// ring.close().unwrap(); // no writer left: read in place
/// let source = ringlat_read::Source::open(&path).unwrap();
/// source.begin_scan().unwrap();
/// let ringlat_read::Source::Ring { view, .. } = &source else { unreachable!() };
/// assert!(matches!(view.get(), Some(ringlat_read::RingView::InPlace(_))));
/// ```
#[derive(Debug)]
pub enum RingView {
    /// No writer was left (closed, or dead by every witness), or a live writer's slots could
    /// not be freed under the passes (no consumer held the consumer lock, not an overwrite
    /// ring): every pass reads the slots in place (see [`InPlace`]).
    InPlace(InPlace),
    /// Otherwise (a consumer, an overwrite ring, witnesses that disagree, or
    /// [`Source::read_from_a_copy`]): the records are copied once, and every pass reads the
    /// copy.
    Snapshot(RingSnapshot),
}

impl RingView {
    fn of(file: &RingFile) -> Self {
        InPlace::of(file).map_or_else(
            || RingView::Snapshot(RingSnapshot::take(file)),
            RingView::InPlace,
        )
    }

    /// The units of a pass: positions read in place, or the snapshot's records.
    fn units(&self) -> u64 {
        match self {
            RingView::InPlace(in_place) => in_place.len(),
            RingView::Snapshot(snapshot) => snapshot.len as u64,
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
    /// A ring file: read in place when no writer is left, or when its live writer's slots
    /// cannot be freed under the passes (no consumer, not an overwrite ring); else its
    /// records are taken once (a snapshot) when first read.
    Ring {
        /// The open ring.
        file: Box<RingFile>,
        /// How every pass reads it (chosen at the first), so that passes agree.
        view: std::sync::OnceLock<RingView>,
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
            view: std::sync::OnceLock::new(),
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
            Source::Ring { file, view } => view.get().map_or_else(
                || {
                    let (head, tail) = file.positions();
                    u64::from(tail.wrapping_sub(head))
                },
                RingView::units,
            ),
            Source::Archive(archive) => archive.len(),
        }
    }

    /// Slots of a live ring that every pass passes over because they were being written:
    /// when its snapshot was taken, or (read in place) when a pass first read them, counted
    /// as the passes find them; 0 for an archive, or before the first pass.
    pub fn in_flight_skipped(&self) -> u64 {
        match self {
            Source::Ring { view, .. } => match view.get() {
                Some(RingView::Snapshot(snapshot)) => snapshot.in_flight,
                Some(RingView::InPlace(in_place)) => in_place.in_flight(),
                None => 0,
            },
            Source::Archive(_) => 0,
        }
    }

    /// Records of a live ring read in place that a consumer took, and whose slots the writer
    /// wrote again, before the first pass over every position read them: passed over by
    /// every pass (0 for an archive, a snapshot, or before that pass ends).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("m.ring");
    /// let ring = ringlat::Ring::builder(&path).kind(0, "op").create().unwrap();
    /// ring.record(0, 1, 0, std::time::Duration::from_micros(3));
    /// let source = ringlat_read::Source::open(&path).unwrap();
    /// source.for_each(|_| {}).unwrap();
    /// assert_eq!(source.rewritten_skipped(), 0);
    /// ```
    pub fn rewritten_skipped(&self) -> u64 {
        match self {
            Source::Ring { view, .. } => match view.get() {
                Some(RingView::InPlace(in_place)) => in_place.missed(),
                Some(RingView::Snapshot(_)) | None => 0,
            },
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

    /// Makes every pass over this ring read a copy of its records taken now (a snapshot),
    /// whoever writes or consumes it: what a caller does after passes over a ring read in
    /// place failed with [`ReadError::Rewritten`], on a source opened again. Returns whether
    /// it took effect (not for an archive, nor once a pass has chosen how to read the ring).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("c.ring");
    /// let ring = ringlat::Ring::builder(&path).kind(0, "op").create().unwrap();
    /// ring.record(0, 1, 0, std::time::Duration::from_micros(3));
    /// let source = ringlat_read::Source::open(&path).unwrap();
    /// assert!(source.read_from_a_copy());
    /// let ringlat_read::Source::Ring { view, .. } = &source else { unreachable!() };
    /// assert!(matches!(view.get(), Some(ringlat_read::RingView::Snapshot(_))));
    /// ```
    pub fn read_from_a_copy(&self) -> bool {
        let Source::Ring { file, view } = self else {
            return false;
        };
        let mut taken = false;
        view.get_or_init(|| {
            taken = true;
            RingView::Snapshot(RingSnapshot::take(file))
        });
        taken
    }

    /// Starts a pass made of [`scan`](Self::scan)s and returns how many units it covers (the
    /// entries of an archive; the positions of a ring read in place, or the records of its
    /// snapshot, taken now if this is the first pass). Pieces `a..b` of `0..units` may then be
    /// scanned in any order, by several threads; call [`end_scan`](Self::end_scan) after the
    /// last.
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
            Source::Ring { file, view } => {
                file.check_intact()?;
                let view = view.get_or_init(|| RingView::of(file));
                if let RingView::InPlace(in_place) = view {
                    in_place.begin_pass();
                }
                Ok(view.units())
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
        self.scan_indexed(
            range,
            buffer,
            #[inline(always)]
            |_, sample, weight| visit(sample, weight),
        )
    }

    /// [`scan`](Self::scan) telling `visit` each sample's unit first (its index among the
    /// pass's units): a later scan of that unit alone, in the same pass or a later one of
    /// the same source, visits the same sample.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("u.ring");
    /// let ring = ringlat::Ring::builder(&path).kind(0, "op").create().unwrap();
    /// for trace in 0..5 { ring.record(0, trace, 0, std::time::Duration::from_micros(1)); }
    /// drop(ring);
    /// let source = ringlat_read::Source::open(&path).unwrap();
    /// let units = source.begin_scan().unwrap();
    /// let mut units_of = Vec::new();
    /// source.scan_indexed(0..units, &mut Vec::new(), |unit, s, _| units_of.push((unit, s.trace_id))).unwrap();
    /// let mut again = Vec::new();
    /// source.scan(3..4, &mut Vec::new(), |s, _| again.push(s.trace_id)).unwrap();
    /// source.end_scan().unwrap();
    /// assert_eq!(units_of[3], (3, again[0]));
    /// ```
    #[inline]
    pub fn scan_indexed(
        &self,
        range: std::ops::Range<u64>,
        buffer: &mut Vec<u8>,
        visit: impl FnMut(u64, &Sample, u128),
    ) -> Result<(), ReadError> {
        self.scan_fields(range, buffer, Fields::All, visit)
    }

    /// [`scan_indexed`](Self::scan_indexed) for a `visit` that reads only `fields` of the
    /// records: the others are 0 in every sample it is handed, from any source (see
    /// [`Sample::with_only`]). A ring a writer is writing to is read field by field (atomic
    /// loads that cannot be left out where a field goes unused): asked for
    /// [`Fields::StatusAndDelta`], a pass over it loads about half of the pieces of the
    /// records in whole groups of [`ringlat_ring::GROUP`] slots (the other slots are loaded
    /// whole).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("f.ring");
    /// let ring = ringlat::Ring::builder(&path).kind(0, "op").create().unwrap();
    /// ring.record(0, 42, 3, std::time::Duration::from_micros(2));
    /// let source = ringlat_read::Source::open(&path).unwrap(); // the writer still alive
    /// let units = source.begin_scan().unwrap();
    /// let mut seen = Vec::new();
    /// source
    ///     .scan_fields(0..units, &mut Vec::new(), ringlat_read::Fields::StatusAndDelta, |_, s, _| {
    ///         seen.push((s.trace_id, s.nanotime, s.status, s.delta_ns))
    ///     })
    ///     .unwrap();
    /// source.end_scan().unwrap();
    /// assert_eq!(seen, [(0, 0, 3, 2_000)]);
    /// ```
    pub fn scan_fields(
        &self,
        range: std::ops::Range<u64>,
        buffer: &mut Vec<u8>,
        fields: Fields,
        mut visit: impl FnMut(u64, &Sample, u128),
    ) -> Result<(), ReadError> {
        match self {
            Source::Ring { file, view } => {
                match view.get_or_init(|| RingView::of(file)) {
                    RingView::InPlace(in_place) => in_place.scan(file, range, fields, visit),
                    RingView::Snapshot(snapshot) => {
                        let end = (range.end as usize).min(snapshot.len);
                        let start = (range.start as usize).min(end);
                        let mut unit = start as u64;
                        for slice in snapshot.slices(start, end) {
                            for record in slice {
                                visit(
                                    unit,
                                    &snapshot.sample(record).with_only(fields),
                                    snapshot.tables.weight(record.class),
                                );
                                unit += 1;
                            }
                        }
                    }
                }
                Ok(())
            }
            Source::Archive(archive) => {
                let tables = EntryTables::of(archive);
                // Entries are read in place with plain loads: a field not read costs no
                // load; those left out are made 0 all the same (a loop for each).
                match fields {
                    Fields::All => archive.scan_indexed(&tables, range, buffer, visit),
                    Fields::StatusAndDelta => archive.scan_indexed(
                        &tables,
                        range,
                        buffer,
                        #[inline(always)]
                        |unit, sample: &Sample, weight| {
                            visit(unit, &sample.with_only(Fields::StatusAndDelta), weight)
                        },
                    ),
                }
                .map(drop)
            }
        }
    }

    /// Asks the next passes' scans to keep an archive's snapshot entries, so that
    /// [`ArchiveReader::snapshot_deltas`](crate::archive::ArchiveReader::snapshot_deltas) after
    /// a pass over every entry does not read the file again (nothing for a ring).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("k.archive");
    /// # ringlat_read::archive::ArchiveWriter::open(&path, 0).unwrap();
    /// let source = ringlat_read::Source::open(&path).unwrap();
    /// source.keep_snapshots();
    /// let entries = source.begin_scan().unwrap();
    /// source.scan(0..entries, &mut Vec::new(), |_, _| {}).unwrap();
    /// ```
    pub fn keep_snapshots(&self) {
        if let Source::Archive(archive) = self {
            archive.keep_snapshots(true);
        }
    }

    /// Ends a pass made of [`scan`](Self::scan)s: fails if a ring shrank while its snapshot
    /// was taken (what was read may be zeros), or, read in place, if it shrank or a writer
    /// wrote to it ([`ReadError::Rewritten`]: the passes may disagree).
    pub fn end_scan(&self) -> Result<(), ReadError> {
        match self {
            Source::Ring { file, view } => match view.get() {
                Some(RingView::InPlace(in_place)) => in_place.end_pass(file),
                _ => file.check_intact(),
            },
            Source::Archive(_) => Ok(()),
        }
    }

    /// Visits every sample. A ring is read in place when no writer is left or nothing can
    /// free its slots under the passes, else once (a snapshot); in-flight slots are skipped,
    /// and every later pass sees the same samples (a ring read in place is checked after its
    /// samples were visited: see [`end_scan`](Self::end_scan)); an archive is streamed from
    /// disk each pass.
    pub fn for_each(&self, mut visit: impl FnMut(Sample)) -> Result<(), ReadError> {
        match self {
            Source::Ring { file, view } => {
                file.check_intact()?;
                match view.get_or_init(|| RingView::of(file)) {
                    RingView::InPlace(in_place) => {
                        // Checked after the records were handed on (a copy would hold them
                        // all): a caller that prints them as they come may have printed some
                        // before the error.
                        in_place.begin_pass();
                        in_place.scan(file, 0..in_place.len(), Fields::All, |_, sample, _| {
                            visit(*sample)
                        });
                        in_place.end_pass(file)?;
                    }
                    RingView::Snapshot(snapshot) => {
                        // A snapshot taken while the file shrank is empty: report that, not
                        // "no records".
                        file.check_intact()?;
                        snapshot
                            .range(0, snapshot.len)
                            .for_each(|record| visit(snapshot.sample(record)));
                    }
                }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A closed ring of 2^17 slots holding `count` records (trace ids 0..count), with the
    /// oldest `consumed` of them taken by a consumer first (head not at 0).
    fn ring(dir: &Path, count: u64, consumed: u64) -> std::path::PathBuf {
        let path = dir.join("parts.ring");
        let ring = ringlat::Ring::builder(&path)
            .capacity(1 << 17)
            .kind(0, "op")
            .kind(1, "other")
            .create()
            .unwrap();
        for trace in 0..count {
            ring.record(
                (trace % 2) as u8,
                trace,
                0,
                std::time::Duration::from_micros(trace % 900),
            );
        }
        ring.close().unwrap();
        if consumed > 0 {
            drain(&path, consumed as usize);
        }
        path
    }

    /// Takes `count` records from the ring at `path` as a consumer, then lets go of it.
    fn drain(path: &Path, count: usize) {
        let mut drainer = crate::Drainer::open(path).unwrap();
        drainer
            .drain_batch(count, |_| Ok::<(), ReadError>(()))
            .unwrap();
    }

    /// A live ring of 1024 slots at `path` holding 900 records (trace ids 0..900: below the
    /// breaker's low-water mark, a sixteenth of the slots free).
    fn live_ring_of_900(path: &Path) -> ringlat::Ring {
        let ring = ringlat::Ring::builder(path)
            .capacity(1024)
            .kind(0, "op")
            .create()
            .unwrap();
        for trace in 0..900 {
            ring.record(0, trace, 0, std::time::Duration::from_micros(5));
        }
        ring
    }

    /// One pass over the units `part` of `source` (all of them: `None`): each record's trace
    /// id and weight, or what ended the pass.
    fn pass(
        source: &Source,
        part: Option<std::ops::Range<u64>>,
    ) -> Result<Vec<(u64, u128)>, ReadError> {
        let units = source.begin_scan().unwrap();
        let mut seen = Vec::new();
        source
            .scan(part.unwrap_or(0..units), &mut Vec::new(), |s, w| {
                seen.push((s.trace_id, w))
            })
            .unwrap();
        source.end_scan().map(|()| seen)
    }

    /// The trace ids of [`pass`]'s records.
    fn ids(seen: Vec<(u64, u128)>) -> Vec<u64> {
        seen.into_iter().map(|(id, _)| id).collect()
    }

    /// Pushes the record of trace `trace` into the ring at `path` through another handle,
    /// running `reserved` while its position is reserved and not yet committed.
    fn push_reserved(path: &std::path::Path, trace: u64, mut reserved: impl FnMut()) {
        let pusher = RingFile::open_mode(path, true).unwrap();
        let record = ringlat_format::Record::new(trace, 1, 0, 5);
        let hook = |stage, _| {
            if stage == ringlat_ring::PushStage::Reserved {
                reserved();
            }
        };
        pusher.ring().push_hooked(0, 0, &record, hook).unwrap();
    }

    /// The view the first scan of `source` (a ring) made.
    fn view_of(source: &Source) -> &RingView {
        let Source::Ring { view, .. } = source else {
            panic!("a ring")
        };
        view.get().unwrap()
    }

    /// Taken in parts on every core, a snapshot holds what a serial one holds, in order.
    #[test]
    fn a_snapshot_in_parts_equals_a_serial_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = ring(dir.path(), 120_000, 1_234);
        let file = RingFile::open(&path).unwrap();
        let (head, tail) = file.positions();
        let held = tail.wrapping_sub(head);
        assert_eq!(held, 120_000 - 1_234);
        let mut serial = Vec::new();
        file.snapshot_each(|d| serial.push(d.record.trace_id()));
        if std::thread::available_parallelism().map_or(1, usize::from) > 1 {
            let (parts, in_flight) = RingSnapshot::take_in_parts(&file, head, held).unwrap();
            assert_eq!(in_flight, 0);
            assert!(parts.len() > 1);
            let ids: Vec<u64> = parts.iter().flatten().map(|r| r.trace_id).collect();
            assert_eq!(ids, serial);
        }
        let source = Source::open(&path).unwrap();
        let mut ids = Vec::new();
        source.for_each(|s| ids.push(s.trace_id)).unwrap();
        assert_eq!(ids, serial);
        assert_eq!(ids.first(), Some(&1_234));
        // Scanned in pieces that straddle the parts, as ringcat's passes scan it.
        let len = source.begin_scan().unwrap();
        let mut pieces = Vec::new();
        for start in (0..len + 7_777).step_by(7_777) {
            source
                .scan(start..start + 7_777, &mut Vec::new(), |s, _| {
                    pieces.push(s.trace_id)
                })
                .unwrap();
        }
        assert_eq!(pieces, serial);
    }

    /// A ring with no writer is read in place, and every pass reads the positions the first
    /// one read: a consumer draining between passes changes nothing, a record written
    /// meanwhile fails the pass (the passes could disagree).
    #[test]
    fn a_ring_without_writer_is_read_in_place_the_same_by_every_pass() {
        let dir = tempfile::tempdir().unwrap();
        let path = ring(dir.path(), 5_000, 100);
        let source = Source::open(&path).unwrap();
        let pass = || pass(&source, None);
        let first = pass().unwrap();
        assert!(matches!(view_of(&source), RingView::InPlace(_)));
        assert_eq!(first.len(), 4_900);
        assert_eq!(first.first().map(|r| r.0), Some(100));
        drain(&path, 2_000);
        assert_eq!(pass().unwrap(), first);
        let mut all = Vec::new();
        source.for_each(|s| all.push(s.trace_id)).unwrap();
        assert_eq!(all, first.iter().map(|r| r.0).collect::<Vec<_>>());
        // A writer's record moves tail: the pass that saw it happen fails.
        let writer = RingFile::open_mode(&path, true).unwrap();
        writer
            .ring()
            .push(0, 0, &ringlat_format::Record::new(1, 2, 0, 3))
            .unwrap();
        assert!(matches!(pass(), Err(ReadError::Rewritten { .. })));
    }

    /// Read in place, a pass that finds another number of records than the first fails,
    /// though tail did not move (a writer judged gone that was not, committing a slot it had
    /// reserved); a damaged slot is counted once, however many passes pass over it.
    #[test]
    fn passes_in_place_that_disagree_fail_and_damage_is_counted_once() {
        use std::os::unix::fs::FileExt;
        let dir = tempfile::tempdir().unwrap();
        let path = ring(dir.path(), 1_000, 0);
        let meta = |slot: u32| {
            RingFile::open(&path)
                .unwrap()
                .geometry()
                .meta_word_offset(slot)
        };
        let (kind_byte, stamp_of_7) = (meta(3) + 5, meta(7));
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.write_at(&[9], kind_byte).unwrap(); // slot 3: kind 9, undeclared
        let source = Source::open(&path).unwrap();
        let pass = || pass(&source, None).map(|seen| seen.len());
        assert_eq!(pass().unwrap(), 999);
        assert_eq!(pass().unwrap(), 999);
        let Source::Ring {
            file: ring_file, ..
        } = &source
        else {
            panic!("a ring")
        };
        assert_eq!(ring_file.invalid_slots(), 1);
        // A pass over part of the positions is not compared.
        self::pass(&source, Some(0..10)).unwrap();
        file.write_at(&[0; 8], stamp_of_7).unwrap(); // slot 7 no longer committed
        assert!(matches!(pass(), Err(ReadError::Rewritten { .. })));
    }

    /// A ring whose writer is alive is read in place, the positions fixed when the first
    /// pass began: a record written later is not read, a record being written then is passed
    /// over by every pass (though committed before the second), as a snapshot passes over it;
    /// near the wrap of positions past 2^32.
    #[test]
    fn a_ring_with_a_live_writer_is_read_in_place_without_its_slots_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("live.ring");
        let ring = ringlat::Ring::builder(&path)
            .kind(0, "op")
            .start_position(u32::MAX - 4) // positions wrap past 2^32 among the records
            .create()
            .unwrap();
        for trace in 0..10 {
            ring.record(0, trace, 0, std::time::Duration::from_micros(5));
        }
        let source = Source::open(&path).unwrap();
        let pass = || pass(&source, None).map(ids);
        // Another handle pushes: position 10 is reserved while the first pass runs, and
        // committed before the second.
        let mut first = None;
        push_reserved(&path, 10, || first = Some(pass().unwrap()));
        ring.record(0, 11, 0, std::time::Duration::from_micros(5));
        assert_eq!(first, Some((0..10).collect::<Vec<_>>()));
        assert_eq!(pass().unwrap(), (0..10).collect::<Vec<_>>());
        assert_eq!(source.in_flight_skipped(), 1);
        assert!(matches!(view_of(&source), RingView::InPlace(_)));
        drop(ring);
    }

    /// Asked for status and delta alone, every source (a live ring read in place, whose
    /// whole groups then load only the pieces holding them; a closed ring; an archive) hands
    /// out the samples it hands out with every field, their trace ids and times 0.
    #[test]
    fn status_and_delta_alone_are_the_samples_with_the_other_fields_zero() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fields.ring");
        let ring = ringlat::Ring::builder(&path)
            .capacity(1024)
            .kind(0, "op")
            .kind(1, "other")
            .create()
            .unwrap();
        for trace in 0..900u64 {
            let latency = std::time::Duration::from_nanos(trace * 7_919 % 900_000 + 1);
            ring.record((trace % 2) as u8, trace + 1, (trace % 5) as u8, latency);
        }
        // Pieces of `units` (the first from a group's start, as a pass's pieces begin; the
        // others from anywhere) with the fields asked for.
        let scanned = |source: &Source, fields| {
            let units = source.begin_scan().unwrap();
            let mut seen = Vec::new();
            for start in (0..units).step_by(333) {
                let end = (start + 333).min(units);
                source
                    .scan_fields(start..end, &mut Vec::new(), fields, |unit, s, w| {
                        seen.push((unit, *s, w))
                    })
                    .unwrap();
            }
            source.end_scan().unwrap();
            seen
        };
        let compare = |source: &Source| {
            let all = scanned(source, Fields::All);
            assert_eq!(all.len(), 900);
            assert!(
                all.iter()
                    .all(|(_, s, _)| s.trace_id != 0 && s.nanotime != 0)
            );
            let alone = scanned(source, Fields::StatusAndDelta);
            let expected: Vec<_> = all
                .iter()
                .map(|&(unit, s, w)| (unit, s.with_only(Fields::StatusAndDelta), w))
                .collect();
            assert_eq!(alone, expected);
        };
        let live = Source::open(&path).unwrap();
        compare(&live);
        assert!(matches!(view_of(&live), RingView::InPlace(view) if view.is_live()));
        ring.close().unwrap();
        let closed = Source::open(&path).unwrap();
        compare(&closed);
        assert!(matches!(view_of(&closed), RingView::InPlace(view) if !view.is_live()));
        let archive_path = dir.path().join("fields.archive");
        let file = RingFile::open(&path).unwrap();
        let mut records = Vec::new();
        file.snapshot_each(|decoded| records.push(decoded));
        let mut writer = crate::archive::ArchiveWriter::open(&archive_path, 1).unwrap();
        writer
            .append(&crate::archive::RingInfo::of(&file), &records)
            .unwrap();
        drop(writer);
        compare(&Source::open(&archive_path).unwrap());
    }

    /// Of a live ring read in place, a slot in flight when a pass over part of the positions
    /// reads it is a hole for every later pass, the first pass over every position too
    /// (though committed by then); once that pass has ended, a slot found without its record
    /// is a rewritten one, never a new hole: a stamp zeroed (as a slot not yet claimed looks)
    /// fails the next pass.
    #[test]
    fn a_hole_found_by_a_pass_over_part_is_passed_over_by_every_later_pass() {
        use std::os::unix::fs::FileExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("holes.ring");
        let ring = ringlat::Ring::builder(&path)
            .kind(0, "op")
            .create()
            .unwrap();
        for trace in 0..10 {
            ring.record(0, trace, 0, std::time::Duration::from_micros(5));
        }
        let source = Source::open(&path).unwrap();
        // Position 10 is reserved (not committed) when the view is made and the pass over
        // positions 8..11 reads it.
        let mut part = None;
        push_reserved(&path, 10, || {
            part = Some(pass(&source, Some(8..11)).map(ids).unwrap());
        });
        assert_eq!(part, Some(vec![8, 9]));
        assert!(matches!(view_of(&source), RingView::InPlace(_)));
        assert_eq!(
            pass(&source, None).map(ids).unwrap(),
            (0..10).collect::<Vec<_>>()
        );
        assert_eq!(source.in_flight_skipped(), 1);
        let stamp_of_3 = RingFile::open(&path)
            .unwrap()
            .geometry()
            .meta_word_offset(3);
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.write_at(&[0; 8], stamp_of_3).unwrap();
        assert!(matches!(
            pass(&source, Some(0..5)),
            Err(ReadError::Rewritten { .. })
        ));
        drop(ring);
    }

    /// A live ring read in place fails a pass that finds a slot rewritten since the view was
    /// made (a consumer came, and the writer wrote into the slots it freed), even a pass over
    /// part of the positions, which compares no counts.
    #[test]
    fn a_live_ring_rewritten_under_the_passes_fails_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lapped.ring");
        let ring = live_ring_of_900(&path);
        let record = |trace| {
            ring.record(0, trace, 0, std::time::Duration::from_micros(5));
        };
        let source = Source::open(&path).unwrap();
        let part = |range| pass(&source, Some(range)).map(|seen| seen.len());
        assert_eq!(part(0..900).unwrap(), 900);
        drain(&path, 500);
        // Drained but not yet rewritten: the slots still hold their records.
        assert_eq!(part(0..900).unwrap(), 900);
        (900..1100).for_each(record); // positions 1024.. rewrite the slots of 0..76
        assert_eq!(part(100..200).unwrap(), 100);
        assert!(matches!(part(0..10), Err(ReadError::Rewritten { .. })));
        // A pass over every position finds fewer records than the first did.
        assert!(matches!(part(0..900), Err(ReadError::Rewritten { .. })));
        assert_eq!(source.rewritten_skipped(), 0);
        drop(ring);
    }

    /// Of a live ring read in place, the slots that the first pass over every position finds
    /// rewritten (consumed, and written again by the writer, after the view was made) are
    /// records missed, counted; a later pass misses the same ones and agrees.
    #[test]
    fn a_live_ring_rewritten_before_its_first_pass_misses_those_records_in_every_pass() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lapped.ring");
        let ring = live_ring_of_900(&path);
        let record = |trace| {
            ring.record(0, trace, 0, std::time::Duration::from_micros(5));
        };
        let source = Source::open(&path).unwrap();
        let units = source.begin_scan().unwrap(); // the view: positions 0..900, in place
        drain(&path, 500);
        (900..1100).for_each(record); // positions 1024..1100 rewrite the slots of 0..76
        let mut seen = Vec::new();
        source
            .scan(0..units, &mut Vec::new(), |s, _| seen.push(s.trace_id))
            .unwrap();
        source.end_scan().unwrap();
        assert_eq!(seen, (76..900).collect::<Vec<_>>());
        assert_eq!(source.rewritten_skipped(), 76);
        let mut again = Vec::new();
        source.for_each(|s| again.push(s.trace_id)).unwrap();
        assert_eq!(again, seen);
        drop(ring);
    }

    /// A live ring whose stamps, when first read, show a slot between head and tail written
    /// again by a later lap (a consumer came after the look at its lock, freed it, and the
    /// writer rewrote it) is still read in place: the first pass counts that record missed
    /// (said on stderr by the commands), and every pass passes over it.
    #[test]
    fn a_live_ring_found_rewritten_by_its_first_pass_counts_the_record_missed() {
        use std::os::unix::fs::FileExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("raced.ring");
        let ring = ringlat::Ring::builder(&path)
            .capacity(1024)
            .kind(0, "op")
            .create()
            .unwrap();
        for trace in 0..10 {
            ring.record(0, trace, 0, std::time::Duration::from_micros(5));
        }
        // Slot 3 as the writer leaves it for position 3 + 1024.
        let stamp_of_3 = RingFile::open(&path)
            .unwrap()
            .geometry()
            .meta_word_offset(3);
        let later = ringlat_format::SlotMeta::committed(3 + 1024, 0, 0).to_word();
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.write_at(&later.to_le_bytes(), stamp_of_3).unwrap();
        let source = Source::open(&path).unwrap();
        let expected: Vec<u64> = (0..10).filter(|trace| *trace != 3).collect();
        assert_eq!(pass(&source, None).map(ids).unwrap(), expected);
        assert!(matches!(view_of(&source), RingView::InPlace(_)));
        assert_eq!(source.rewritten_skipped(), 1);
        assert_eq!(pass(&source, None).map(ids).unwrap(), expected);
        drop(ring);
    }

    /// A live ring is copied (a snapshot) when a consumer holds the consumer lock, or when
    /// it overwrites its oldest records itself: its slots may be rewritten at any moment.
    #[test]
    fn a_live_ring_that_is_drained_or_overwritten_is_read_from_a_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let view_of = |path: &Path| {
            let source = Source::open(path).unwrap();
            source.begin_scan().unwrap();
            matches!(view_of(&source), RingView::Snapshot(_))
        };
        let drained = dir.path().join("drained.ring");
        let ring = ringlat::Ring::builder(&drained)
            .kind(0, "op")
            .create()
            .unwrap();
        ring.record(0, 1, 0, std::time::Duration::from_micros(5));
        assert!(!view_of(&drained));
        let drainer = crate::Drainer::open(&drained).unwrap();
        assert!(view_of(&drained));
        drop(drainer);
        assert!(!view_of(&drained));
        let flight = dir.path().join("flight.ring");
        let overwriting = ringlat::Ring::builder(&flight)
            .kind(0, "op")
            .overflow(ringlat::Overflow::Overwrite)
            .create()
            .unwrap();
        overwriting.record(0, 1, 0, std::time::Duration::from_micros(5));
        assert!(view_of(&flight));
        drop((ring, overwriting));
    }

    /// Parts are refused when head is not where they started (a consumer moved it): the
    /// first part may then have read into the next one.
    #[test]
    fn parts_are_refused_when_head_moved() {
        let dir = tempfile::tempdir().unwrap();
        let path = ring(dir.path(), 100_000, 0);
        let file = RingFile::open(&path).unwrap();
        let (head, tail) = file.positions();
        let stale = head.wrapping_sub(1);
        assert!(RingSnapshot::take_in_parts(&file, stale, tail.wrapping_sub(stale)).is_none());
    }
}
