//! What `ringcat plot` draws, gathered in as few passes as the plot allows.
//!
//! The plot needs: the span, count and extremes of the records (the axes, the window, the
//! sampling stride); each kind's percentile spectrum and P99 (the spectrum panel, and which
//! records are drawn as tail points); each window's P99 per kind (the lines); and the points.
//!
//! - pass 1: span and extremes; the engine's pass 1 by kind; the weight per engine bin by kind
//!   (the band of each kind's P99); with `--window`, the engine's pass 1 by window and kind.
//! - pass 2: the engine's pass 2 by kind; by window and kind, pass 1 (the window follows from
//!   the span) or, with `--window`, pass 2; the points, with the records the P99 band cannot
//!   decide kept until the P99 is known.
//! - pass 3, without `--window` only: the engine's pass 2 by window and kind.
//!
//! Every pass runs on every core ([`fold::parallel`]); pass 1 also counts each piece's records
//! ([`PieceCounts`]), so that pass 2's points (every `stride`-th record) start each piece at
//! its exact position among the selected records.
//!
//! So 3 passes (2 with `--window`), against 6 before. Only when the undecided records exceed
//! [`candidate_limit`] are the points taken again in the last pass (one more with `--window`).

use crate::Failure;
use crate::band::{Band, BinWeights, Side, candidate_limit};
use crate::fold::{self, Fold, PieceCounts};
use crate::progress::Progress;
use crate::select::{Filter, Sources};
use crate::weight::Weights;
use ringlat_read::Sample;
use ringlat_read::percentile::{Histograms, Quantile, Selection, Summary, WEIGHT_ONE};
use std::collections::BTreeMap;

/// At most this many points are sampled at an even stride; tail points are added while the
/// plot holds fewer than twice as many.
pub(crate) const MAX_POINTS: u64 = 2500;
const MAX_WITH_TAIL: u64 = 2 * MAX_POINTS;

/// Everything the plot draws from the records.
pub(crate) struct Gathered {
    pub t0: u64,
    pub t1: u64,
    pub min_positive: Option<i64>,
    pub max: i64,
    pub window_ns: u64,
    /// Per (window start, kind label): the P99.
    pub windows: Vec<((u64, u16), i64)>,
    /// Per kind label, in label order: the spectrum's values.
    pub spectra: Vec<(u16, Vec<i64>)>,
    /// (time, latency, kind label), in the order the records were visited.
    pub points: Vec<(u64, i64, u16)>,
}

/// Reads what the plot needs (see the module documentation for the passes).
pub(crate) fn gather(
    sources: &Sources,
    filter: &Filter,
    window: Option<std::time::Duration>,
    quantiles: &[Quantile],
    raw: bool,
    progress: &mut Progress,
) -> Result<Gathered, Failure> {
    let p99 = Quantile::parse("99").map_err(Failure::Usage)?;
    // The spectrum's percentiles and, last, each kind's P99, in one computation.
    let mut with_p99 = quantiles.to_vec();
    with_p99.push(p99.clone());
    let given_window = window.map(|w| u64::try_from(w.as_nanos()).unwrap_or(u64::MAX).max(1));
    let passes = if given_window.is_some() { 2 } else { 3 };
    let label = |pass: usize| match (pass, passes) {
        (1, 2) => "pass 1/2",
        (2, 2) => "pass 2/2",
        (1, _) => "pass 1/3",
        (2, _) => "pass 2/3",
        _ => "pass 3/3",
    };
    let kind_of = |source: usize, sample: &Sample| sources.label_index(source, sample.kind);
    let window_of = |w: u64, sample: &Sample| sample.nanotime - sample.nanotime % w;
    let weight = |weight: u128| if raw { WEIGHT_ONE } else { weight };

    // Pass 1 (and the records of each piece, counted: the points' exact positions).
    let first_pass = FirstPass { sources, raw };
    let (counts, (first, spectra1, windows1)) = fold::parallel(
        sources,
        filter,
        progress,
        label(1),
        &PieceCounts,
        None,
        || {
            (
                first_pass.init(0),
                Histograms::new(with_p99.clone()),
                Histograms::new(vec![p99.clone()]),
            )
        },
        |(first, spectra1, windows1), source, s, w| {
            first_pass.fold(first, source, s);
            let (kind, weight) = (kind_of(source, s), weight(w));
            spectra1.add(kind, s.delta_ns, weight);
            if let Some(w) = given_window {
                windows1.add((window_of(w, s), kind), s.delta_ns, weight);
            }
        },
        |acc, (first, spectra1, windows1)| {
            let mine = std::mem::replace(&mut acc.0, first_pass.init(0));
            acc.0 = first_pass.merge(mine, first);
            acc.1.merge(spectra1);
            acc.2.merge(windows1);
        },
    )?;
    let starts = PieceCounts::starts(counts);
    let span = first.span;
    if span.count == 0 {
        progress.finish();
        return Err(Failure::File("no records match: nothing to plot".into()));
    }
    let window_ns = given_window.unwrap_or(((span.t1 - span.t0) / 60).max(1_000_000));
    let stride = span.count.div_ceil(MAX_POINTS).max(1);
    let bands: BTreeMap<u16, Band> = (0u16..)
        .zip(&first.bins)
        .filter(|(_, bins)| !bins.is_empty())
        .map(|(kind, bins)| (kind, bins.band(&p99)))
        .collect();

    // Pass 2.
    let spectra_plan = spectra1.plan();
    let windows_plan: Option<Selection<(u64, u16)>> = given_window.map(|_| windows1.plan());
    let points_pass = PointsPass {
        sources,
        stride,
        cap: MAX_WITH_TAIL,
        bands,
        limit: candidate_limit::<Point>(),
    };
    let (points, (spectra2, windows2, windows1)) = fold::parallel(
        sources,
        filter,
        progress,
        label(2),
        &points_pass,
        Some(&starts),
        || {
            (
                spectra_plan.clone(),
                windows_plan.clone(),
                Histograms::new(vec![p99.clone()]),
            )
        },
        |(spectra2, windows2, windows1), source, s, w| {
            let (kind, weight) = (kind_of(source, s), weight(w));
            spectra2.add(&kind, s.delta_ns, weight);
            let key = (window_of(window_ns, s), kind);
            match windows2 {
                Some(windows2) => windows2.add(&key, s.delta_ns, weight),
                None => windows1.add(key, s.delta_ns, weight),
            }
        },
        |acc, (spectra2, windows2, windows1)| {
            acc.0.merge(spectra2);
            if let (Some(mine), Some(theirs)) = (acc.1.as_mut(), windows2) {
                mine.merge(theirs);
            }
            acc.2.merge(windows1);
        },
    )?;
    let spectra: Vec<(u16, Vec<i64>)> = spectra2
        .finish()
        .into_iter()
        .map(|(kind, values, _): (u16, Vec<i64>, Summary)| (kind, values))
        .collect();
    let kind_p99: BTreeMap<u16, i64> = spectra
        .iter()
        .filter_map(|(kind, values)| Some((*kind, *values.last()?)))
        .collect();
    let drawn = points_pass.resolve(points, &kind_p99);
    // When pass 2 kept too many undecided records: the points again, the P99s known.
    let exact = PointsPass {
        bands: kind_p99
            .iter()
            .map(|(kind, p99)| (*kind, Band::above(*p99)))
            .collect(),
        limit: usize::MAX,
        ..points_pass
    };
    let points_again = |progress: &mut Progress| {
        let (acc, ()) = fold::parallel(
            sources,
            filter,
            progress,
            "points",
            &exact,
            Some(&starts),
            || (),
            |_, _, _, _| {},
            |_, _| {},
        )?;
        Ok::<_, Failure>(exact.resolve(acc, &kind_p99).unwrap_or_default())
    };

    // Pass 3: without `--window`, the windows' pass 2 (and the points if they need it).
    let (windows, points) = match windows2 {
        Some(windows2) => {
            let points = match drawn {
                Some(points) => points,
                None => points_again(progress)?,
            };
            (windows2, points)
        }
        None => {
            let plan = windows1.plan();
            let feed = |windows2: &mut Selection<(u64, u16)>, source: usize, s: &Sample, w| {
                let key = (window_of(window_ns, s), kind_of(source, s));
                windows2.add(&key, s.delta_ns, weight(w));
            };
            match drawn {
                Some(points) => {
                    progress.next_pass(label(3));
                    let windows2 = crate::scan::fold(
                        sources,
                        filter,
                        progress,
                        || plan.clone(),
                        feed,
                        Selection::merge,
                    )?;
                    (windows2, points)
                }
                None => {
                    let (acc, windows2) = fold::parallel(
                        sources,
                        filter,
                        progress,
                        label(3),
                        &exact,
                        Some(&starts),
                        || plan.clone(),
                        feed,
                        Selection::merge,
                    )?;
                    (windows2, exact.resolve(acc, &kind_p99).unwrap_or_default())
                }
            }
        }
    };
    progress.finish();
    Ok(Gathered {
        t0: span.t0,
        t1: span.t1,
        min_positive: span.min_positive,
        max: span.max,
        window_ns,
        windows: windows
            .finish()
            .into_iter()
            .map(|(key, values, _)| (key, values[0]))
            .collect(),
        spectra,
        points,
    })
}

/// The span, count and extremes of the records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub t0: u64,
    pub t1: u64,
    pub count: u64,
    pub min_positive: Option<i64>,
    pub max: i64,
}

impl Default for Span {
    fn default() -> Self {
        Span {
            t0: u64::MAX,
            t1: 0,
            count: 0,
            min_positive: None,
            max: i64::MIN,
        }
    }
}

/// Pass 1's fold: the span, and each kind's weight per engine bin.
struct FirstPass<'a> {
    sources: &'a Sources,
    raw: bool,
}

#[derive(Debug)]
struct FirstAcc {
    weights: Weights,
    span: Span,
    /// Per kind label (an index into [`Sources::labels`]): its weight per engine bin.
    bins: Vec<BinWeights>,
}

impl Fold for FirstPass<'_> {
    type Acc = FirstAcc;

    /// Ignores `first`: nothing here depends on order.
    fn init(&self, _first: u64) -> FirstAcc {
        FirstAcc {
            weights: Weights::new(self.raw),
            span: Span::default(),
            bins: vec![BinWeights::default(); self.sources.labels.len()],
        }
    }

    #[inline]
    fn fold(&self, acc: &mut FirstAcc, source: usize, s: &Sample) {
        let span = &mut acc.span;
        span.t0 = span.t0.min(s.nanotime);
        span.t1 = span.t1.max(s.nanotime);
        span.count += 1;
        if s.delta_ns > 0 {
            span.min_positive = Some(span.min_positive.map_or(s.delta_ns, |m| m.min(s.delta_ns)));
        }
        span.max = span.max.max(s.delta_ns);
        let kind = self.sources.label_index(source, s.kind);
        if let Some(bins) = acc.bins.get_mut(usize::from(kind)) {
            bins.add(s.delta_ns, acc.weights.of(s.probability));
        }
    }

    fn merge(&self, mut earlier: FirstAcc, later: FirstAcc) -> FirstAcc {
        let (a, b) = (&mut earlier.span, later.span);
        a.t0 = a.t0.min(b.t0);
        a.t1 = a.t1.max(b.t1);
        a.count += b.count;
        a.min_positive = match (a.min_positive, b.min_positive) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        };
        a.max = a.max.max(b.max);
        for (mine, theirs) in earlier.bins.iter_mut().zip(later.bins) {
            mine.merge(theirs);
        }
        earlier
    }
}

/// A point of the plot: (time, latency, kind label, why it is there).
type Point = (u64, i64, u16, Why);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    /// Every `stride`-th record: always drawn.
    Stride,
    /// Above its kind's P99: drawn while the plot holds fewer points than the cap.
    Tail,
    /// Maybe above its kind's P99: decided once the P99 is known.
    Maybe,
}

/// The points: every `stride`-th record, and the records above their kind's P99 (known by a
/// band: records it cannot decide are kept, at most `limit` of them).
struct PointsPass<'a> {
    sources: &'a Sources,
    stride: u64,
    /// Tail points are drawn while the plot holds fewer points than this.
    cap: u64,
    /// Per kind label.
    bands: BTreeMap<u16, Band>,
    limit: usize,
}

#[derive(Debug, Default)]
struct PointsAcc {
    /// The position of the next record.
    next: u64,
    points: Vec<Point>,
    /// Stride and tail points kept: once they reach the cap, the plot is full before
    /// any later tail point whatever the undecided ones turn out to be, so none is kept.
    sure: u64,
    maybe: usize,
    /// More than `limit` undecided records: `points` was dropped, another pass takes them.
    overflowed: bool,
}

impl PointsPass<'_> {
    /// The points drawn, given each kind's exact P99 (which must lie in its band): the same
    /// as one walk that knew them. `None` when the pass kept too many undecided records.
    fn resolve(
        &self,
        acc: PointsAcc,
        kind_p99: &BTreeMap<u16, i64>,
    ) -> Option<Vec<(u64, i64, u16)>> {
        if acc.overflowed {
            return None;
        }
        let mut drawn = Vec::new();
        for (t, ns, kind, why) in acc.points {
            let room = (drawn.len() as u64) < self.cap;
            let keep = match why {
                Why::Stride => true,
                Why::Tail => room,
                Why::Maybe => room && kind_p99.get(&kind).is_some_and(|p| ns > *p),
            };
            if keep {
                drawn.push((t, ns, kind));
            }
        }
        Some(drawn)
    }
}

impl Fold for PointsPass<'_> {
    type Acc = PointsAcc;

    fn init(&self, first: u64) -> PointsAcc {
        PointsAcc {
            next: first,
            ..PointsAcc::default()
        }
    }

    #[inline]
    fn fold(&self, acc: &mut PointsAcc, source: usize, s: &Sample) {
        let position = acc.next;
        acc.next += 1;
        let kind = self.sources.label_index(source, s.kind);
        if position.is_multiple_of(self.stride) {
            if !acc.overflowed {
                acc.points.push((s.nanotime, s.delta_ns, kind, Why::Stride));
            }
            acc.sure += 1;
            return;
        }
        if acc.sure >= self.cap || acc.overflowed {
            return;
        }
        let side = self
            .bands
            .get(&kind)
            .map_or(Side::AtOrBelow, |band| band.side(s.delta_ns));
        match side {
            Side::AtOrBelow => {}
            Side::Above => {
                acc.points.push((s.nanotime, s.delta_ns, kind, Why::Tail));
                acc.sure += 1;
            }
            Side::Maybe if acc.maybe >= self.limit => {
                acc.overflowed = true;
                acc.points = Vec::new();
            }
            Side::Maybe => {
                acc.points.push((s.nanotime, s.delta_ns, kind, Why::Maybe));
                acc.maybe += 1;
            }
        }
    }

    fn merge(&self, mut earlier: PointsAcc, later: PointsAcc) -> PointsAcc {
        earlier.next = later.next;
        earlier.sure += later.sure;
        earlier.maybe += later.maybe;
        earlier.overflowed |= later.overflowed || earlier.maybe > self.limit;
        if earlier.overflowed {
            earlier.points = Vec::new();
        } else {
            earlier.points.extend(later.points);
        }
        earlier
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::fold::chunked;
    use crate::fold::testdata::{archives, cuts};
    use ringlat_read::percentile::weight_of;

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

    #[test]
    fn the_first_pass_matches_a_brute_force_and_merges_exactly() {
        let (_dir, sources, records) = archives(&[700, 300], 30, 4);
        let pass = FirstPass {
            sources: &sources,
            raw: false,
        };
        let serial = chunked(&pass, &records, &[]);
        let span = serial.span;
        assert_eq!(span.count, 1000);
        assert_eq!(span.t0, records.iter().map(|r| r.1.nanotime).min().unwrap());
        assert_eq!(span.t1, records.iter().map(|r| r.1.nanotime).max().unwrap());
        assert_eq!(
            span.max,
            records.iter().map(|r| r.1.delta_ns).max().unwrap()
        );
        let positive = records
            .iter()
            .map(|r| r.1.delta_ns)
            .filter(|d| *d > 0)
            .min();
        assert_eq!(span.min_positive, positive);
        for cut in cuts(records.len()) {
            let merged = chunked(&pass, &records, &cut);
            assert_eq!(merged.span, serial.span, "cut {cut:?}");
            assert_eq!(merged.bins, serial.bins, "cut {cut:?}");
        }
    }

    /// Points kept in pass 2 from each kind's P99 band, then cut at the exact P99, equal the
    /// walk that knew the P99s (stride, tail and the cap on tail points), chunked and merged
    /// too; a pass with too many undecided records says so.
    #[test]
    fn points_from_the_band_equal_the_walk_that_knew_the_p99() {
        let (_dir, sources, records) = archives(&[3000, 1000], 80, 5);
        let p99 = Quantile::parse("99").unwrap();
        for raw in [false, true] {
            let first = chunked(
                &FirstPass {
                    sources: &sources,
                    raw,
                },
                &records,
                &[],
            );
            let mut pass1 = Histograms::new(vec![p99.clone()]);
            for (source, s) in &records {
                let kind = sources.label_index(*source, s.kind);
                pass1.add(kind, s.delta_ns, weight_of(s.probability, raw));
            }
            let mut pass2 = pass1.plan();
            for (source, s) in &records {
                let kind = sources.label_index(*source, s.kind);
                pass2.add(&kind, s.delta_ns, weight_of(s.probability, raw));
            }
            let kind_p99: BTreeMap<u16, i64> = pass2
                .finish()
                .into_iter()
                .map(|(kind, values, _)| (kind, values[0]))
                .collect();
            let bands: BTreeMap<u16, Band> = (0u16..)
                .zip(&first.bins)
                .filter(|(_, bins)| !bins.is_empty())
                .map(|(kind, bins)| (kind, bins.band(&p99)))
                .collect();
            assert_eq!(bands.len(), kind_p99.len());
            for stride in [1, 3, 50, 10_000] {
                for cap in [0, 10, 25, 100_000] {
                    let what = format!("raw {raw} stride {stride} cap {cap}");
                    let expected = walk_knowing_the_p99(&sources, &records, stride, cap, &kind_p99);
                    let pass = PointsPass {
                        sources: &sources,
                        stride,
                        cap,
                        bands: bands.clone(),
                        limit: usize::MAX,
                    };
                    for cut in cuts(records.len()) {
                        let acc = chunked(&pass, &records, &cut);
                        let points = pass.resolve(acc, &kind_p99);
                        assert_eq!(points.as_ref(), Some(&expected), "{what} cut {cut:?}");
                    }
                    let exact = PointsPass {
                        bands: kind_p99
                            .iter()
                            .map(|(k, p)| (*k, Band::above(*p)))
                            .collect(),
                        ..pass
                    };
                    let acc = chunked(&exact, &records, &[]);
                    assert_eq!(exact.resolve(acc, &kind_p99), Some(expected), "{what}");
                    let maybe = chunked(&exact, &records, &[]).maybe;
                    assert_eq!(maybe, 0, "{what}: the exact P99s leave nothing undecided");
                    let maybe = chunked(&pass, &records, &[]).maybe;
                    if stride == 10_000 && cap == 100_000 {
                        assert!(maybe > 0, "{what}: the bands decided everything");
                    }
                    if maybe > 0 {
                        let bounded = PointsPass {
                            limit: maybe - 1,
                            ..pass
                        };
                        for cut in [vec![], vec![records.len() / 2]] {
                            let acc = chunked(&bounded, &records, &cut);
                            assert!(acc.overflowed && acc.points.is_empty(), "{what}");
                            assert!(bounded.resolve(acc, &kind_p99).is_none(), "{what}");
                        }
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
            &PieceCounts,
            None,
            Span::default,
            |span, _, s, _| {
                span.count += 1;
                span.t0 = span.t0.min(s.nanotime);
            },
            |span, other| {
                span.count += other.count;
                span.t0 = span.t0.min(other.t0);
            },
        )
        .unwrap();
        assert_eq!(span.count, records.len() as u64);
        assert!(counts.len() >= 3, "{} pieces", counts.len());
        let starts = PieceCounts::starts(counts);
        let mut pass1 = Histograms::new(vec![Quantile::parse("99").unwrap()]);
        for (source, s) in &records {
            let kind = sources.label_index(*source, s.kind);
            pass1.add(kind, s.delta_ns, weight_of(s.probability, false));
        }
        let mut pass2 = pass1.plan();
        for (source, s) in &records {
            let kind = sources.label_index(*source, s.kind);
            pass2.add(&kind, s.delta_ns, weight_of(s.probability, false));
        }
        let kind_p99: BTreeMap<u16, i64> = pass2
            .finish()
            .into_iter()
            .map(|(kind, values, _)| (kind, values[0]))
            .collect();
        for (stride, cap) in [(7, 100_000), (1_000, 500), (131_073, 100_000)] {
            let expected = walk_knowing_the_p99(&sources, &records, stride, cap, &kind_p99);
            let pass = PointsPass {
                sources: &sources,
                stride,
                cap,
                bands: kind_p99
                    .iter()
                    .map(|(k, p)| (*k, Band::above(*p)))
                    .collect(),
                limit: usize::MAX,
            };
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
                pass.resolve(acc, &kind_p99).unwrap()
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
}
