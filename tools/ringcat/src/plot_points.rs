//! The points of `ringcat plot`: every `stride`-th selected record (by its exact position
//! among them), and the records above their kind's P99 while the plot holds fewer points than
//! a cap, in the records' order ([`PointsPass`], a fold beside a pass that counts something
//! else).
//!
//! When nothing but the points is left to read, [`take`] reads far less than a pass: the tail
//! points can only come from the records before the plot fills up (a prefix of pieces, read
//! in rounds that double), and each later stride point is read alone, at the unit where the
//! first pass found its record ([`PieceMap`](crate::fold::PieceMap)); only a piece whose
//! records the first pass could not map (more than a few runs of units: a filter that keeps
//! every other record) is read whole. The points are the same as a whole pass's. Tail points
//! are usually dense (a hundredth of the records), so the prefix is a few pieces; where they
//! are rare the rounds grow to the whole selection, and the points cost about the pass they
//! would have cost.

use crate::Failure;
use crate::fold::{self, Fold, PieceRecords, Starts};
use crate::progress::Progress;
use crate::scan::{self, Piece};
use crate::select::{Filter, Sources};
use ringlat_read::Sample;
use std::collections::BTreeMap;

/// A point of the plot: (time, latency, kind label, why it is there).
type Point = (u64, i64, u16, Why);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    /// Every `stride`-th record: always drawn.
    Stride,
    /// Above its kind's P99: drawn while the plot holds fewer points than the cap.
    Tail,
}

/// The points: every `stride`-th record, and the records above their kind's P99.
pub(crate) struct PointsPass<'a> {
    sources: &'a Sources,
    stride: u64,
    /// Tail points are drawn while the plot holds fewer points than this.
    cap: u64,
    /// Per kind label: its P99 (`i64::MAX` for a kind without one: nothing is above).
    p99: Vec<i64>,
}

impl<'a> PointsPass<'a> {
    pub(crate) fn new(
        sources: &'a Sources,
        stride: u64,
        cap: u64,
        kind_p99: &BTreeMap<u16, i64>,
    ) -> Self {
        let mut p99 = vec![i64::MAX; sources.labels.len()];
        for (kind, value) in kind_p99 {
            if let Some(slot) = p99.get_mut(usize::from(*kind)) {
                *slot = *value;
            }
        }
        PointsPass {
            sources,
            stride: stride.max(1),
            cap,
            p99,
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct PointsAcc {
    /// Records until the next stride point (0: the next record is one). A countdown rather
    /// than the position modulo the stride: a division per record cost a fifth of the pass.
    to_stride: u64,
    points: Vec<Point>,
    /// Stride and tail points kept: once they reach the cap, the plot is full before any
    /// later tail point, so none is kept.
    sure: u64,
    /// Records folded (checked against the first pass's counts by [`take`]).
    records: u64,
}

impl PointsPass<'_> {
    /// The same pass without tail points (a cap of 0): the stride points alone, for records
    /// after the plot is full.
    fn stride_only(&self) -> Self {
        PointsPass {
            sources: self.sources,
            stride: self.stride,
            cap: 0,
            p99: Vec::new(),
        }
    }

    /// The points drawn: stride points, and tail points while the plot holds fewer than the
    /// cap, in the records' order (the same as one serial walk).
    pub(crate) fn resolve(&self, acc: PointsAcc) -> Vec<(u64, i64, u16)> {
        let mut drawn = Vec::new();
        for (t, ns, kind, why) in acc.points {
            if why == Why::Stride || (drawn.len() as u64) < self.cap {
                drawn.push((t, ns, kind));
            }
        }
        drawn
    }
}

impl Fold for PointsPass<'_> {
    type Acc = PointsAcc;

    fn init(&self, first: u64) -> PointsAcc {
        PointsAcc {
            to_stride: (self.stride - first % self.stride) % self.stride,
            ..PointsAcc::default()
        }
    }

    #[inline(always)]
    fn fold(&self, acc: &mut PointsAcc, source: usize, s: &Sample) {
        acc.records += 1;
        let kind = self.sources.label_index(source, s.kind);
        if acc.to_stride == 0 {
            acc.to_stride = self.stride - 1;
            acc.points.push((s.nanotime, s.delta_ns, kind, Why::Stride));
            acc.sure += 1;
            return;
        }
        acc.to_stride -= 1;
        if acc.sure >= self.cap {
            return;
        }
        let p99 = self.p99.get(usize::from(kind)).copied().unwrap_or(i64::MAX);
        if s.delta_ns > p99 {
            acc.points.push((s.nanotime, s.delta_ns, kind, Why::Tail));
            acc.sure += 1;
        }
    }

    fn merge(&self, mut earlier: PointsAcc, later: PointsAcc) -> PointsAcc {
        earlier.to_stride = later.to_stride;
        earlier.sure += later.sure;
        earlier.records += later.records;
        earlier.points.extend(later.points);
        earlier
    }
}

/// The points of `pass` read apart from any other work: the same as a whole pass of `pass`
/// with exact starts, read as the module documentation says. `map` is the first pass's
/// [`PieceMap`](crate::fold::PieceMap) over the same sources and filter (its pieces, in
/// order), `starts` made from it; not for `--last` (no pieces).
pub(crate) fn take(
    sources: &Sources,
    filter: &Filter,
    progress: &mut Progress,
    pass: &PointsPass,
    map: &[PieceRecords],
    starts: &Starts,
) -> Result<Vec<(u64, i64, u16)>, Failure> {
    // The first round as many pieces as cores (no core idle), then twice as many each round.
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    take_in_rounds(sources, filter, progress, pass, (map, starts), threads)
}

/// [`take`] with a first round of `first_round` pieces.
fn take_in_rounds(
    sources: &Sources,
    filter: &Filter,
    progress: &mut Progress,
    pass: &PointsPass,
    (map, starts): (&[PieceRecords], &Starts),
    first_round: usize,
) -> Result<Vec<(u64, i64, u16)>, Failure> {
    progress.next_pass("points");
    let changed = || Failure::File("the records changed while the plot read them".into());
    let pieces = scan::pieces(sources, filter)?;
    if pieces.len() != map.len() {
        return Err(changed());
    }
    let start_of = |piece: &Piece| starts.of((piece.index as u64) << 32);
    // The prefix: rounds of pieces in order, each twice the last, until the plot is full.
    let (mut acc, mut next, mut round) = (pass.init(0), 0, first_round.max(1));
    while acc.sure < pass.cap && next < pieces.len() {
        let batch = &pieces[next..pieces.len().min(next + round)];
        let part = fold::listed(sources, filter, progress, pass, batch, |index| {
            pieces.get(index).map_or(0, start_of)
        })?;
        acc = pass.merge(acc, part);
        next += batch.len();
        round *= 2;
    }
    // The prefix's records are those pass 1 found there (a ring read in place that a writer
    // came back to could hold more: its passes would disagree).
    let prefix: u64 = map[..next].iter().map(|piece| piece.records).sum();
    if acc.records != prefix {
        return Err(changed());
    }
    // The rest: each stride point alone where its piece is mapped, else the piece whole.
    let (mut rest, mut positions, mut expected) = (Vec::new(), Vec::new(), 0u64);
    for (piece, records) in pieces[next..].iter().zip(&map[next..]) {
        let start = start_of(piece);
        let first = start.next_multiple_of(pass.stride);
        let units: Option<Vec<(u64, u64)>> = (first..start + records.records)
            .step_by(usize::try_from(pass.stride).unwrap_or(usize::MAX))
            .map(|position| Some((position, records.unit_of(position - start)?)))
            .collect();
        match units {
            Some(units) => {
                for (position, unit) in units {
                    rest.push(Piece {
                        index: rest.len(),
                        source: piece.source,
                        units: unit..unit + 1,
                    });
                    positions.push(position);
                    expected += 1;
                }
            }
            None => {
                rest.push(Piece {
                    index: rest.len(),
                    ..piece.clone()
                });
                positions.push(start);
                expected += records.records;
            }
        }
    }
    let later = fold::listed(
        sources,
        filter,
        progress,
        &pass.stride_only(),
        &rest,
        |index| positions.get(index).copied().unwrap_or(0),
    )?;
    scan::end_pass(sources)?;
    if later.records != expected {
        return Err(changed());
    }
    acc.points.extend(later.points);
    Ok(pass.resolve(acc))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::fold::testdata::{archives, archives_with_snapshots, cuts};
    use crate::fold::{PieceMap, chunked};
    use crate::plot_passes::{Span, p99_per_kind};
    use ringlat_read::percentile::{Quantile, Tally, weight_of};

    /// The points as the plot took them when each kind's P99 was known before the walk.
    fn walk_knowing_the_p99(
        sources: &Sources,
        records: &[(usize, Sample)],
        stride: u64,
        cap: u64,
        kind_p99: &BTreeMap<u16, i64>,
    ) -> Vec<(u64, i64, u16)> {
        let mut points = Vec::new();
        for (index, (source, s)) in records.iter().enumerate() {
            let kind = sources.label_index(*source, s.kind);
            let tail = kind_p99.get(&kind).is_some_and(|p| s.delta_ns > *p);
            if (index as u64).is_multiple_of(stride) || (tail && (points.len() as u64) < cap) {
                points.push((s.nanotime, s.delta_ns, kind));
            }
        }
        points
    }

    /// Each kind's exact P99 (a tally over every record).
    fn p99s(sources: &Sources, records: &[(usize, Sample)], raw: bool) -> BTreeMap<u16, i64> {
        let mut tally = Tally::new(vec![Quantile::parse("99").unwrap()]);
        for (source, s) in records {
            let kind = sources.label_index(*source, s.kind);
            tally.add(kind, s.delta_ns, weight_of(s.probability, raw));
        }
        p99_per_kind(&tally.finish())
    }

    /// The points pass with the exact P99s equals the walk that knew them (stride, tail and
    /// the cap on tail points), chunked and merged too (the stride countdown carried across
    /// pieces), raw and weighted.
    #[test]
    fn points_equal_the_walk_that_knew_the_p99() {
        let (_dir, sources, records) = archives(&[3000, 1000], 80, 5);
        for raw in [false, true] {
            let kind_p99 = p99s(&sources, &records, raw);
            assert!(kind_p99.len() > 1);
            for stride in [1, 3, 50, 10_000] {
                for cap in [0, 10, 25, 100_000] {
                    let what = format!("raw {raw} stride {stride} cap {cap}");
                    let expected = walk_knowing_the_p99(&sources, &records, stride, cap, &kind_p99);
                    let pass = PointsPass::new(&sources, stride, cap, &kind_p99);
                    for cut in cuts(records.len()) {
                        let acc = chunked(&pass, &records, &cut);
                        assert_eq!(pass.resolve(acc), expected, "{what} cut {cut:?}");
                    }
                }
            }
        }
    }

    /// On both cores over several pieces of two files: pass 1 counts each piece's records,
    /// and the points taken from those exact starts equal the walk that knew the P99s (a
    /// stride point off by one position, or pieces joined out of order, fails here); without
    /// the counted starts they would not.
    #[test]
    fn points_on_both_cores_start_at_their_exact_positions() {
        let (_dir, sources, records) = archives(&[150_000, 20_000], 200, 6);
        let filter = Filter::default();
        let mut progress = Progress::new("test", 0);
        let (counts, span) = fold::parallel(
            &sources,
            &filter,
            &mut progress,
            "test",
            &PieceMap,
            None,
            Span::default,
            |span, _, s, _| span.add(s),
            Span::merge,
        )
        .unwrap();
        assert_eq!(span.count, records.len() as u64);
        assert!(counts.len() >= 3, "{} pieces", counts.len());
        let starts = PieceMap::starts(&counts);
        let kind_p99 = p99s(&sources, &records, false);
        for (stride, cap) in [(7, 100_000), (1_000, 500), (131_073, 100_000)] {
            let expected = walk_knowing_the_p99(&sources, &records, stride, cap, &kind_p99);
            let pass = PointsPass::new(&sources, stride, cap, &kind_p99);
            let on_both = |starts| {
                let mut progress = Progress::new("test", 0);
                let (acc, ()) = fold::parallel(
                    &sources,
                    &filter,
                    &mut progress,
                    "test",
                    &pass,
                    starts,
                    || (),
                    |_, _, _, _| {},
                    |_, _| {},
                )
                .unwrap();
                pass.resolve(acc)
            };
            let points = on_both(Some(&starts));
            assert!(
                points == expected,
                "stride {stride} cap {cap}: the points differ"
            );
            assert!(
                on_both(None) != expected,
                "stride {stride}: gaps went unnoticed"
            );
        }
    }

    /// The records `filter` selects, in the order a pass visits them, with their source.
    fn selected(sources: &Sources, filter: &Filter) -> Vec<(usize, Sample)> {
        let mut records = Vec::new();
        let mut progress = Progress::new("test", 0);
        sources
            .selected(filter, &mut progress, |source, s| {
                records.push((source, *s))
            })
            .unwrap();
        records
    }

    /// Each piece's records mapped to their units by a pass over the sources.
    fn mapped(sources: &Sources, filter: &Filter) -> Vec<PieceRecords> {
        let mut progress = Progress::new("test", 0);
        let (map, ()) = fold::parallel(
            sources,
            filter,
            &mut progress,
            "test",
            &PieceMap,
            None,
            || (),
            |_, _, _, _| {},
            |_, _| {},
        )
        .unwrap();
        map
    }

    /// `take` equals the walk that knew the P99s (the points a whole pass takes) on files
    /// whose records snapshot entries break into runs, over several pieces: the prefix short
    /// or whole, later stride points read alone or, with a filter that keeps records apart
    /// (pieces not mapped), their pieces read whole. A unit off by one, a run misplaced or a
    /// piece out of order fails here.
    #[test]
    fn take_equals_a_whole_pass() {
        let (_dir, sources, _) = archives_with_snapshots(&[300_000, 40_000], 300, 9, 9_973);
        let market = Filter::parse(&crate::cli::FilterArgs {
            kind: vec!["market".into()],
            ..crate::cli::FilterArgs::default()
        })
        .unwrap();
        for (name, filter) in [("all", Filter::default()), ("market", market)] {
            let records = selected(&sources, &filter);
            let map = mapped(&sources, &filter);
            assert_eq!(map.len(), 4, "{name}: pieces");
            let unmapped = map
                .iter()
                .filter(|piece| piece.unit_of(0).is_none())
                .count();
            assert_eq!(unmapped, if name == "all" { 0 } else { 4 }, "{name}");
            let starts = PieceMap::starts(&map);
            let kind_p99 = p99s(&sources, &records, false);
            for (stride, cap) in [
                (1_000, 10),
                (97, 0),
                (131_071, 0),
                (2_001, 3_000),
                (7, 1 << 40),
            ] {
                let expected = walk_knowing_the_p99(&sources, &records, stride, cap, &kind_p99);
                let pass = PointsPass::new(&sources, stride, cap, &kind_p99);
                // First rounds of one piece (later stride points read alone after a short
                // prefix), two and more than there are pieces (no rest).
                for first_round in [1, 2, 64] {
                    let mut progress = Progress::new("test", 0);
                    let taken = take_in_rounds(
                        &sources,
                        &filter,
                        &mut progress,
                        &pass,
                        (&map, &starts),
                        first_round,
                    )
                    .unwrap();
                    assert!(
                        taken == expected,
                        "{name} stride {stride} cap {cap} round {first_round}: the points differ"
                    );
                }
            }
        }
    }

    /// On a closed ring read in place over several pieces (units are positions from head),
    /// `take` equals the walk that knew the P99s; and a prefix that holds another number of
    /// records than pass 1 found (a writer back on the ring) fails rather than draw.
    #[test]
    fn take_on_a_ring_equals_a_whole_pass_and_checks_the_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("points.ring");
        let ring = ringlat::Ring::builder(&path)
            .kind(0, "market")
            .kind(1, "limit")
            .capacity(1 << 19)
            .create()
            .unwrap();
        let mut state = 5u64;
        for trace in 0..300_000u64 {
            let micros = crate::fold::testdata::lcg(&mut state) % 5_000;
            let delta = std::time::Duration::from_micros(micros);
            ring.record((trace % 2) as u8, trace, 0, delta);
        }
        drop(ring);
        let sources = Sources::open(&[path.display().to_string()]).unwrap();
        let filter = Filter::default();
        let records = selected(&sources, &filter);
        assert!(records.len() > 2 * 131_072, "{} records", records.len());
        let mut map = mapped(&sources, &filter);
        assert!(map.len() >= 3 && map.iter().all(|piece| piece.unit_of(0).is_some()));
        let starts = PieceMap::starts(&map);
        let kind_p99 = p99s(&sources, &records, false);
        for (stride, cap) in [(1_000, 10), (4_099, 0), (13, 50_000)] {
            let expected = walk_knowing_the_p99(&sources, &records, stride, cap, &kind_p99);
            let pass = PointsPass::new(&sources, stride, cap, &kind_p99);
            let mut progress = Progress::new("test", 0);
            let taken = take_in_rounds(&sources, &filter, &mut progress, &pass, (&map, &starts), 1)
                .unwrap();
            assert!(
                taken == expected,
                "stride {stride} cap {cap}: the points differ"
            );
        }
        map[0].records += 1;
        let pass = PointsPass::new(&sources, 1_000, 10, &kind_p99);
        let mut progress = Progress::new("test", 0);
        let taken = take_in_rounds(&sources, &filter, &mut progress, &pass, (&map, &starts), 1);
        assert!(taken.is_err(), "a prefix of other records was drawn");
    }

    /// A map that no longer fits the files (another filter's pieces) is refused, not read.
    #[test]
    fn take_refuses_a_map_of_other_pieces() {
        let (_dir, sources, records) = archives(&[140_000], 50, 3);
        let map = mapped(&sources, &Filter::default());
        let starts = PieceMap::starts(&map);
        let kind_p99 = p99s(&sources, &records, false);
        let pass = PointsPass::new(&sources, 10, 0, &kind_p99);
        let mut progress = Progress::new("test", 0);
        assert!(
            take(
                &sources,
                &Filter::default(),
                &mut progress,
                &pass,
                &map[..1],
                &starts
            )
            .is_err()
        );
    }
}
