//! A pass over the selected records written as a fold: an empty accumulator, one record folded
//! in at a time, and a merge of two accumulators, so that a pass can run over chunks of the
//! files in parallel and end with the same result as one serial walk.
//!
//! Every pass runs on every core through [`parallel`]: the pieces' accumulators are merged in
//! the records' order, the percentile engine's state (`Tally`, `Histograms`, `Selection`) is
//! folded beside them per thread and merged in any order (its weights are integers).

use crate::Failure;
use crate::progress::Progress;
pub(crate) use crate::scan::Lanes;
use crate::select::{Filter, Sources};
use ringlat_read::{Fields, Sample};

/// One pass's work over the records, as a fold.
///
/// Merges are exact: integer (fixed-point) weights and counts, never a float sum whose result
/// depends on the order of the records.
pub(crate) trait Fold {
    /// What the pass accumulates.
    type Acc;

    /// An empty accumulator whose first record is at position `first` among the selected
    /// records (in the order [`Sources::selected`] visits them): an order-preserving position
    /// with gaps between pieces, or the exact 0-based one when [`parallel`] is given [`Starts`]
    /// (a fold that ignores it says so).
    fn init(&self, first: u64) -> Self::Acc;

    /// Folds in the next record of `acc`'s run (`source` indexes [`Sources::sources`]).
    fn fold(&self, acc: &mut Self::Acc, source: usize, sample: &Sample);

    /// [`fold`](Self::fold) told the record's unit in its source too (see
    /// [`crate::scan::fold_pieces`]), for a fold that maps records to units.
    #[inline(always)]
    fn fold_at(&self, acc: &mut Self::Acc, source: usize, _unit: u64, sample: &Sample) {
        self.fold(acc, source, sample);
    }

    /// The accumulator of `earlier`'s records followed by `later`'s (`later` starts where
    /// `earlier` ends).
    fn merge(&self, earlier: Self::Acc, later: Self::Acc) -> Self::Acc;
}

/// A pass with nothing of its own to fold (only the engine's feed beside it).
#[cfg(test)]
pub(crate) struct Nothing;

#[cfg(test)]
impl Fold for Nothing {
    type Acc = ();

    fn init(&self, _first: u64) {}

    fn fold(&self, _acc: &mut (), _source: usize, _sample: &Sample) {}

    fn merge(&self, _earlier: (), _later: ()) {}
}

/// Runs `pass` over the selected records on every core ([`crate::scan::fold_pieces`]: a
/// piece's accumulator starts at an order-preserving position, the pieces' accumulators are
/// merged in the records' order), with an order-free accumulator beside it (the percentile
/// engine's state: `init_beside`, `beside(acc, source, sample, weight)`, `merge_beside`).
/// `--last` runs serially, positions 0, 1, 2... With `starts` (counted by an earlier pass
/// with [`PieceMap`]), a piece starts at its exact position among the selected records.
#[allow(
    clippy::too_many_arguments,
    reason = "a fold and the engine's fold beside it"
)]
pub(crate) fn parallel<F, B>(
    sources: &Sources,
    filter: &Filter,
    progress: &mut Progress,
    label: &'static str,
    pass: &F,
    starts: Option<&Starts>,
    init_beside: impl Fn() -> B + Sync,
    beside: impl Fn(&mut B, usize, &Sample, u128) + Sync,
    merge_beside: impl Fn(&mut B, B),
) -> Result<(F::Acc, B), Failure>
where
    F: Fold + Sync,
    F::Acc: Send,
    B: Send,
{
    parallel_in(
        sources,
        filter,
        progress,
        label,
        pass,
        starts,
        Lanes::Shared,
        |_| init_beside(),
        beside,
        merge_beside,
    )
}

/// [`parallel`] with the threads taking pieces as `lanes` says ([`Lanes::Runs`]: each thread
/// one run of consecutive pieces, in file order) and `init_beside(lane)` making each thread's
/// order-free accumulator (lane 0 holds the first records; merged in lane order).
#[allow(
    clippy::too_many_arguments,
    reason = "a fold and the engine's fold beside it"
)]
pub(crate) fn parallel_in<F, B>(
    sources: &Sources,
    filter: &Filter,
    progress: &mut Progress,
    label: &'static str,
    pass: &F,
    starts: Option<&Starts>,
    lanes: Lanes,
    init_beside: impl Fn(usize) -> B + Sync,
    beside: impl Fn(&mut B, usize, &Sample, u128) + Sync,
    merge_beside: impl Fn(&mut B, B),
) -> Result<(F::Acc, B), Failure>
where
    F: Fold + Sync,
    F::Acc: Send,
    B: Send,
{
    progress.next_pass(label);
    let (beside, acc) = crate::scan::fold_pieces(
        sources,
        filter,
        progress,
        lanes,
        Fields::All,
        init_beside,
        |first| pass.init(starts.map_or(first, |starts| starts.of(first))),
        // Inlined into the scan's loop: a call per record costs more than many folds.
        #[inline(always)]
        |engine, acc, source, unit, sample, weight| {
            pass.fold_at(acc, source, unit, sample);
            beside(engine, source, sample, weight);
        },
        merge_beside,
        |earlier, later| pass.merge(earlier, later),
    )?;
    Ok((acc, beside))
}

/// Where each piece's selected records start among all the selected records (by the piece's
/// order-preserving position): the exact positions a fold that counts records needs.
#[derive(Debug, Default)]
pub(crate) struct Starts(std::collections::BTreeMap<u64, u64>);

impl Starts {
    /// The exact position of the piece that starts at order-preserving position `first`: the
    /// same pieces as the pass that counted them (the same open sources), so it is there;
    /// `first` itself otherwise (a serial walk's positions are exact).
    pub(crate) fn of(&self, first: u64) -> u64 {
        self.0.get(&first).copied().unwrap_or(first)
    }
}

/// A fold that counts the selected records of each piece and maps them to the piece's units:
/// one [`PieceRecords`] per piece, in order; [`PieceMap::starts`] turns them into [`Starts`].
pub(crate) struct PieceMap;

/// At most this many runs of consecutive units are kept per piece: a piece whose records
/// break into more (a filter that keeps every other record) is not mapped.
const MAX_RUNS: usize = 64;

/// A piece's selected records: how many, and which units hold them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PieceRecords {
    /// The order-preserving position of the piece's first record (see [`Fold::init`]).
    pub first: u64,
    pub records: u64,
    /// Where the records lie: runs of records in consecutive units, each as (the run's first
    /// record, 0-based in the piece; its unit), in order. `None` when unknown (more than
    /// [`MAX_RUNS`] runs, or a serial walk that tells [`crate::scan::UNKNOWN_UNIT`]).
    runs: Option<Vec<(u64, u64)>>,
    /// The unit after the last record's (`u64::MAX` before the first).
    next_unit: u64,
}

impl PieceRecords {
    /// The unit of the piece's `record`-th record (0-based), if the piece is mapped.
    pub(crate) fn unit_of(&self, record: u64) -> Option<u64> {
        let runs = self.runs.as_ref()?;
        if record >= self.records {
            return None;
        }
        let run = runs
            .partition_point(|(first, _)| *first <= record)
            .checked_sub(1)?;
        let (first, unit) = runs.get(run)?;
        Some(unit + (record - first))
    }

    /// The next record starts a run at `unit` (out of line: a few per piece); a unit not
    /// known ([`crate::scan::UNKNOWN_UNIT`]) unmaps the piece.
    #[inline(never)]
    fn new_run(&mut self, unit: u64) {
        if let Some(runs) = &mut self.runs {
            if runs.len() < MAX_RUNS && unit != crate::scan::UNKNOWN_UNIT {
                runs.push((self.records, unit));
            } else {
                self.runs = None;
            }
        }
    }
}

impl PieceMap {
    pub(crate) fn starts(pieces: &[PieceRecords]) -> Starts {
        let mut at = 0;
        Starts(
            pieces
                .iter()
                .map(|piece| {
                    let start = at;
                    at += piece.records;
                    (piece.first, start)
                })
                .collect(),
        )
    }
}

impl Fold for PieceMap {
    type Acc = Vec<PieceRecords>;

    fn init(&self, first: u64) -> Vec<PieceRecords> {
        vec![PieceRecords {
            first,
            records: 0,
            runs: Some(Vec::new()),
            next_unit: u64::MAX,
        }]
    }

    /// Without units, only counts.
    #[inline]
    fn fold(&self, acc: &mut Vec<PieceRecords>, _source: usize, _sample: &Sample) {
        if let Some(last) = acc.last_mut() {
            last.records += 1;
            last.runs = None;
        }
    }

    #[inline(always)]
    fn fold_at(&self, acc: &mut Vec<PieceRecords>, _source: usize, unit: u64, _sample: &Sample) {
        if let Some(last) = acc.last_mut() {
            if unit != last.next_unit {
                last.new_run(unit);
            }
            last.next_unit = unit.wrapping_add(1);
            last.records += 1;
        }
    }

    fn merge(&self, mut earlier: Vec<PieceRecords>, later: Vec<PieceRecords>) -> Vec<PieceRecords> {
        earlier.extend(later);
        earlier
    }
}

/// Runs `pass` over `pieces` (some of the pieces of a pass begun by [`crate::scan::pieces`],
/// in their order, each given its own `index`), a piece's accumulator starting at
/// `position(index)`, on every core; the accumulators merged in the pieces' order.
pub(crate) fn listed<F>(
    sources: &Sources,
    filter: &Filter,
    progress: &mut Progress,
    pass: &F,
    pieces: &[crate::scan::Piece],
    position: impl Fn(usize) -> u64 + Sync,
) -> Result<F::Acc, Failure>
where
    F: Fold + Sync,
    F::Acc: Send,
{
    let ((), acc) = crate::scan::fold_listed(
        sources,
        filter,
        progress,
        Lanes::Shared,
        Fields::All,
        pieces,
        |_| (),
        |first| pass.init(position((first >> 32) as usize)),
        #[inline(always)]
        |(), acc, source, unit, sample, _| pass.fold_at(acc, source, unit, sample),
        |(), ()| (),
        |earlier, later| pass.merge(earlier, later),
    )?;
    Ok(acc)
}

/// Folds `records` as chunks cut at `cuts` (ascending positions), merged left to right: the
/// shape a parallel scan gives, for tests that check a merge against the serial fold.
#[cfg(test)]
pub(crate) fn chunked<F: Fold>(pass: &F, records: &[(usize, Sample)], cuts: &[usize]) -> F::Acc {
    let mut bounds = vec![0];
    bounds.extend(cuts.iter().map(|c| (*c).min(records.len())));
    bounds.push(records.len());
    let mut total: Option<F::Acc> = None;
    for pair in bounds.windows(2) {
        let (start, end) = (pair[0], pair[1].max(pair[0]));
        let mut acc = pass.init(start as u64);
        for (source, sample) in &records[start..end] {
            pass.fold(&mut acc, *source, sample);
        }
        total = Some(match total {
            None => acc,
            Some(earlier) => pass.merge(earlier, acc),
        });
    }
    total.unwrap_or_else(|| pass.init(0))
}

/// Small archives for the folds' tests: records with many ties in latency and time, several
/// kinds, statuses and sampling rates, over two files.
#[cfg(test)]
pub(crate) mod testdata {
    #![allow(clippy::unwrap_used)]
    use crate::progress::Progress;
    use crate::select::{Filter, Sources};
    use ringlat_format::Record;
    use ringlat_read::archive::{ArchiveWriter, RingIdentity, RingInfo};
    use ringlat_read::{Decoded, Sample};

    const ANCHOR: u64 = 1_795_276_800_000_000_000;

    /// A small deterministic generator.
    pub(crate) fn lcg(state: &mut u64) -> u64 {
        *state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        *state >> 11
    }

    /// Writes `counts[i]` records to file i (latencies below `distinct` µs, half of them whole
    /// µs) and
    /// returns the directory, the sources and every record as `Sources::selected` visits it.
    pub(crate) fn archives(
        counts: &[u64],
        distinct: u64,
        seed: u64,
    ) -> (tempfile::TempDir, Sources, Vec<(usize, Sample)>) {
        archives_with_snapshots(counts, distinct, seed, u64::MAX)
    }

    /// [`archives`] with a snapshot (one entry: no kind) after every `every` records of a
    /// file: units that hold no record, as `ringcat drain -o` writes them.
    pub(crate) fn archives_with_snapshots(
        counts: &[u64],
        distinct: u64,
        seed: u64,
        every: u64,
    ) -> (tempfile::TempDir, Sources, Vec<(usize, Sample)>) {
        let dir = tempfile::tempdir().unwrap();
        let mut state = seed;
        let mut paths = Vec::new();
        for (file, count) in counts.iter().enumerate() {
            let path = dir.path().join(format!("{file}.archive"));
            let mut writer = ArchiveWriter::open(&path, ANCHOR).unwrap();
            let mut kind_names = vec![None; 256];
            for (kind, name) in ["market", "limit", "cancel"].iter().enumerate() {
                kind_names[kind + file] = Some(name.to_string());
            }
            let ring = RingInfo {
                identity: RingIdentity {
                    anchor_unix_ns: ANCHOR,
                    anchor_mono_ns: 1,
                    start_position: 0,
                    capacity: 1 << 31,
                },
                unit_ns: 1,
                kind_names,
            };
            let batch: Vec<Decoded> = (0..*count)
                .map(|i| {
                    let kind = (lcg(&mut state) % 3) as u8 + file as u8;
                    // Half on a coarse grid (ties), half anywhere (bins of many values).
                    let spread = lcg(&mut state) % (distinct * 1_000);
                    let nanos = if lcg(&mut state).is_multiple_of(2) {
                        spread - spread % 1_000
                    } else {
                        spread
                    } as i32
                        - 2_000;
                    Decoded {
                        position: i as u32,
                        kind,
                        class: 0,
                        probability: [1.0, 0.5, 0.1, 0.3][(lcg(&mut state) % 4) as usize],
                        record: Record::new(
                            lcg(&mut state) % 50,
                            ANCHOR + (i / 7) * 1_000,
                            (lcg(&mut state) % 3) as u8,
                            nanos,
                        ),
                    }
                })
                .collect();
            for (at, chunk) in batch
                .chunks(usize::try_from(every).unwrap_or(usize::MAX))
                .enumerate()
            {
                if at > 0 {
                    writer.append_snapshot(&ring, ANCHOR, &[]).unwrap();
                }
                writer.append(&ring, chunk).unwrap();
            }
            paths.push(path.display().to_string());
        }
        let sources = Sources::open(&paths).unwrap();
        let mut records = Vec::new();
        let mut progress = Progress::new("test", 0);
        sources
            .selected(&Filter::default(), &mut progress, |source, sample| {
                records.push((source, *sample));
            })
            .unwrap();
        (dir, sources, records)
    }

    /// Chunk boundaries to try: none, every record, and a few odd cuts.
    pub(crate) fn cuts(len: usize) -> Vec<Vec<usize>> {
        vec![
            vec![],
            vec![1],
            vec![len / 3, len / 2, len / 2, len - 1],
            (0..len).step_by(97).collect(),
            (1..len).collect(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Folds records at `units` into one piece's map.
    fn map_of(units: impl IntoIterator<Item = u64>) -> PieceRecords {
        let sample = Sample {
            nanotime: 0,
            trace_id: 0,
            delta_ns: 0,
            status: 0,
            kind: 0,
            probability: 1.0,
        };
        let mut acc = PieceMap.init(0);
        for unit in units {
            PieceMap.fold_at(&mut acc, 0, unit, &sample);
        }
        acc.remove(0)
    }

    /// Records in up to [`MAX_RUNS`] runs of consecutive units map back to their units;
    /// one run more, or a walk that does not know units, leaves the piece unmapped.
    #[test]
    fn pieces_map_records_to_units_up_to_max_runs() {
        // Runs of 3 records, each 2 units after the last run: a gap before every run.
        let runs = |count: u64| (0..count).flat_map(|run| (0..3).map(move |i| 10 + run * 5 + i));
        let mapped = map_of(runs(MAX_RUNS as u64));
        assert_eq!(mapped.records, 3 * MAX_RUNS as u64);
        for (record, unit) in runs(MAX_RUNS as u64).enumerate() {
            assert_eq!(mapped.unit_of(record as u64), Some(unit), "record {record}");
        }
        assert_eq!(mapped.unit_of(mapped.records), None);
        let over = map_of(runs(MAX_RUNS as u64 + 1));
        assert_eq!(
            (over.records, over.unit_of(0)),
            (3 * MAX_RUNS as u64 + 3, None)
        );
        let unknown = map_of([crate::scan::UNKNOWN_UNIT; 5]);
        assert_eq!((unknown.records, unknown.unit_of(0)), (5, None));
        let one_unknown = map_of([crate::scan::UNKNOWN_UNIT]);
        assert_eq!(one_unknown.unit_of(0), None);
    }
}
