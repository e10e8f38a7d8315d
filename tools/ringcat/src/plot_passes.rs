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
//! So 3 passes (2 with `--window`), against 6 before. Only when the undecided records exceed
//! [`candidate_limit`] are the points taken again in the last pass (one more with `--window`).

use crate::Failure;
use crate::band::{Band, BinWeights, Side, candidate_limit};
use crate::fold::{self, Fold};
use crate::progress::Progress;
use crate::select::{Filter, Sources};
use ringlat_read::Sample;
use ringlat_read::percentile::{Histograms, Quantile, Selection, Summary, weight_of};
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
    let weight = |sample: &Sample| weight_of(sample.probability, raw);
    let kind_of = |source: usize, sample: &Sample| sources.label_index(source, sample.kind);
    let window_of = |w: u64, sample: &Sample| sample.nanotime - sample.nanotime % w;

    // Pass 1.
    let mut spectra1 = Histograms::new(with_p99.clone());
    let mut windows1 = Histograms::new(vec![p99.clone()]);
    let first = fold::serial(
        sources,
        filter,
        progress,
        label(1),
        &FirstPass { sources, raw },
        |source, s| {
            let kind = kind_of(source, s);
            spectra1.add(kind, s.delta_ns, weight(s));
            if let Some(w) = given_window {
                windows1.add((window_of(w, s), kind), s.delta_ns, weight(s));
            }
        },
    )?;
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
    let mut spectra2 = spectra1.plan();
    let mut windows2: Option<Selection<(u64, u16)>> = given_window.map(|_| windows1.plan());
    let mut windows1 = Histograms::new(vec![p99.clone()]);
    let points_pass = PointsPass {
        sources,
        stride,
        bands,
        limit: candidate_limit::<Point>(),
    };
    let points = fold::serial(
        sources,
        filter,
        progress,
        label(2),
        &points_pass,
        |source, s| {
            let kind = kind_of(source, s);
            spectra2.add(&kind, s.delta_ns, weight(s));
            let key = (window_of(window_ns, s), kind);
            match &mut windows2 {
                Some(windows2) => windows2.add(&key, s.delta_ns, weight(s)),
                None => windows1.add(key, s.delta_ns, weight(s)),
            }
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
    // The points again, exactly, when pass 2 kept too many undecided records.
    let exact_points = points.overflowed.then(|| PointsPass {
        sources,
        stride,
        bands: kind_p99
            .iter()
            .map(|(kind, p99)| (*kind, Band::above(*p99)))
            .collect(),
        limit: usize::MAX,
    });

    // Pass 3: without `--window`, the windows' pass 2 (and the points if they need it).
    let (windows, points) = match windows2 {
        Some(windows2) => {
            let points = match &exact_points {
                Some(pass) => fold::serial(sources, filter, progress, "points", pass, |_, _| {})?,
                None => points,
            };
            (windows2, points)
        }
        None => {
            let mut windows2 = windows1.plan();
            let feed = |source: usize, s: &Sample| {
                windows2.add(
                    &(window_of(window_ns, s), kind_of(source, s)),
                    s.delta_ns,
                    weight(s),
                );
            };
            let points = match &exact_points {
                Some(pass) => fold::serial(sources, filter, progress, label(3), pass, feed)?,
                None => {
                    fold::serial(sources, filter, progress, label(3), &fold::Nothing, feed)?;
                    points
                }
            };
            (windows2, points)
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
        points: points.resolve(&kind_p99),
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

#[derive(Debug, Default)]
struct FirstAcc {
    span: Span,
    /// Per kind label (an index into [`Sources::labels`]): its weight per engine bin.
    bins: Vec<BinWeights>,
}

impl Fold for FirstPass<'_> {
    type Acc = FirstAcc;

    /// Ignores `first`: nothing here depends on order.
    fn init(&self, _first: u64) -> FirstAcc {
        FirstAcc {
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
            bins.add(s.delta_ns, weight_of(s.probability, self.raw));
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
    /// Above its kind's P99: drawn while the plot holds fewer than [`MAX_WITH_TAIL`] points.
    Tail,
    /// Maybe above its kind's P99: decided once the P99 is known.
    Maybe,
}

/// The points: every `stride`-th record, and the records above their kind's P99 (known by a
/// band: records it cannot decide are kept, at most `limit` of them).
struct PointsPass<'a> {
    sources: &'a Sources,
    stride: u64,
    /// Per kind label.
    bands: BTreeMap<u16, Band>,
    limit: usize,
}

#[derive(Debug, Default)]
struct PointsAcc {
    /// The position of the next record.
    next: u64,
    points: Vec<Point>,
    /// Stride and tail points kept: once they reach [`MAX_WITH_TAIL`], the plot is full before
    /// any later tail point whatever the undecided ones turn out to be, so none is kept.
    sure: u64,
    maybe: usize,
    /// More than `limit` undecided records: `points` was dropped, another pass takes them.
    overflowed: bool,
}

impl PointsAcc {
    /// The points drawn, given each kind's exact P99: the same as one walk that knew it.
    fn resolve(self, kind_p99: &BTreeMap<u16, i64>) -> Vec<(u64, i64, u16)> {
        let mut drawn = Vec::new();
        for (t, ns, kind, why) in self.points {
            let tail = match why {
                Why::Stride => true,
                Why::Tail => (drawn.len() as u64) < MAX_WITH_TAIL,
                Why::Maybe => {
                    (drawn.len() as u64) < MAX_WITH_TAIL
                        && kind_p99.get(&kind).is_some_and(|p| ns > *p)
                }
            };
            if tail {
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
        if acc.sure >= MAX_WITH_TAIL || acc.overflowed {
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
