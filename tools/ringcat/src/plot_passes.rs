//! What `ringcat plot` draws, gathered in as few passes as the plot allows.
//!
//! The plot needs: the span, count and extremes of the records (the axes, the window, the
//! sampling stride); each kind's percentile spectrum and P99 (the spectrum panel, and which
//! records are drawn as tail points); each window's P99 per kind (the lines); and the points.
//!
//! - pass 1: span and extremes, each piece's records counted and mapped to their units
//!   ([`PieceMap`]); each kind's spectrum in a one-pass [`Tally`]; each window's P99 per kind in a [`Closing`] tally when
//!   the window is known before the span is: given (`--window`), or guessed from the
//!   archive's time span (`ArchiveReader::time_span_hint`: right for a plot of a whole
//!   archive), or from a whole ring's first and last records ([`ring_span_guess`]); the guess
//!   is checked against the span the pass measures, and dropped if wrong. One ring, which
//!   carries no lateness bound, is given a guessed one ([`RING_LATENESS_GUESS_NS`]) so that
//!   its windows close too: a record later than it costs a pass, as an archive's lie does.
//!   Where windows close (a lateness bound), the spectra are not fed record by record: each
//!   window's values go into its kind's spectrum when it closes, and those of the windows
//!   still open at the end after the pass ([`Part::Absorbing`]; whatever the window length,
//!   so a wrong guess loses nothing); if the windows' tally could not keep every value, or a
//!   record came after its window closed, the spectra are counted in the next pass.
//! - pass 2: the points (every `stride`-th record from each piece's exact start, and the
//!   records above their kind's P99, known exactly by now) and whatever pass 1 left: the
//!   windows when the window was not known, the bins' second pass of a tally that passed its
//!   budget of distinct values. When pass 1 left nothing, the points are read apart
//!   ([`plot_points::take`]): the prefix of pieces that holds the tail points, then each later
//!   stride point alone, where pass 1 found its record ([`PieceMap`]): a few MB, not a pass.
//! - pass 3, only when a tally passed its budget (its bins' second pass; a spectrum that took
//!   it in pass 2 delays the points to here) or the archive's lateness bound lied (the windows
//!   counted again without closing); pass 4 when both happen.
//!
//! So 1 pass and the points as a rule for one archive read whole (2 passes with a filter: the
//! windows are then counted in pass 2, beside the points), against 2 before, 3 before that
//! and 6 at first. Every pass runs on every core ([`fold::parallel_in`]); where windows are
//! closed, each core reads one run of consecutive pieces ([`Lanes::Runs`], see
//! [`crate::closing`]).

use crate::Failure;
use crate::budget::distinct_budget;
use crate::closing::{self, Closing, WindowStart};
use crate::fold::{self, Fold, Lanes, PieceMap, Starts};
use crate::plot_points::{self, PointsPass};
use crate::progress::Progress;
use crate::select::{Filter, Sources};
use ringlat_read::percentile::{Quantile, Selection, Tally, WEIGHT_ONE};
use ringlat_read::{Fields, Sample, Source};
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

/// The window when none is given: a sixtieth of the span, at least 1 ms.
fn window_for(t0: u64, t1: u64) -> u64 {
    (t1.saturating_sub(t0) / 60).max(1_000_000)
}

/// The span of the records a plot reads, if known (or well guessed) before reading them: one
/// archive read whole (no filter), with a span hint that settles; one ring read whole, guessed
/// from its first and last records ([`ring_span_guess`]). Pass 1 checks the guess.
fn span_hint(sources: &Sources, filter: &Filter) -> Result<Option<(u64, u64)>, Failure> {
    if !filter.is_everything() {
        return Ok(None);
    }
    match sources.sources.as_slice() {
        [Source::Archive(archive)] => Ok(archive.time_span_hint()?),
        [ring @ Source::Ring { .. }] => ring_span_guess(ring),
        _ => Ok(None),
    }
}

/// The lateness bound guessed for one ring (at least; a window's length if longer), which
/// carries none ([`crate::ring_order`]): how far behind the newest record before it a
/// record may come, a producer held up between taking its time and its slot. A record later
/// than the guess lands in a window already closed, and the windows are counted again in the
/// next pass without closing (a pass lost, never a wrong answer: [`crate::closing`]); the
/// windows open meanwhile hold the values of this much time.
const RING_LATENESS_GUESS_NS: u64 = 100_000_000;

/// Records read at each end of a ring to guess its span.
const RING_SPAN_PROBE: u64 = 4096;

/// A ring's span as its first and last [`RING_SPAN_PROBE`] records give it: its records lie
/// in the order their producers took their slots, each a moment after taking its time, so
/// the oldest record is among the first ones and the newest among the last ones unless a
/// producer was held up for longer than those records took (then pass 1 finds another span
/// and the windows are counted in pass 2, as without a guess). A partial pass (a ring read in
/// place allows it: [`Source::end_scan`]).
fn ring_span_guess(ring: &Source) -> Result<Option<(u64, u64)>, Failure> {
    let units = ring.begin_scan()?;
    let (mut oldest, mut newest) = (u64::MAX, 0);
    for range in [
        0..units.min(RING_SPAN_PROBE),
        units.saturating_sub(RING_SPAN_PROBE)..units,
    ] {
        ring.scan_fields(range, &mut Vec::new(), Fields::All, |_, sample, _| {
            oldest = oldest.min(sample.nanotime);
            newest = newest.max(sample.nanotime);
        })?;
    }
    ring.end_scan()?;
    Ok((oldest <= newest).then_some((oldest, newest)))
}

/// A window's key: (window start, kind label).
type WindowKey = (u64, u16);

/// The pack of a window key for the engine's group cache (window start high, label low).
#[inline(always)]
fn packed((start, kind): WindowKey) -> u128 {
    (u128::from(start) << 64) | u128::from(kind)
}

/// What a pass does for a part of the plot (the spectra by kind, or the windows).
#[derive(Clone)]
enum Plan<K> {
    /// Nothing (known already, or not yet computable).
    Nothing,
    /// Count in a one-pass tally (the windows: of the pass's window length).
    Count,
    /// The bins' second pass of a tally that passed its budget.
    Select(Box<Selection<K>>),
}

/// One lane's state for a part of the plot during a pass.
enum Part<K> {
    Idle,
    Counting(Closing<K>),
    Selecting(Selection<K>),
    /// Counted from the windows' values as the windows close, and from the windows still
    /// open at the end ([`absorbed_spectra`]), not record by record: the spectra beside
    /// windows that close.
    Absorbing(Tally<K>),
}

impl<K: Ord + Clone> Part<K> {
    fn merge(&mut self, later: Part<K>) {
        match (self, later) {
            (Part::Counting(mine), Part::Counting(theirs)) => mine.merge(theirs),
            (Part::Selecting(mine), Part::Selecting(theirs)) => mine.merge(theirs),
            (Part::Absorbing(mine), Part::Absorbing(theirs)) => mine.merge(theirs),
            _ => {}
        }
    }

    /// Adds a record whose key `key` makes (packed, then whole: see `Tally::add_packed`),
    /// only called when the part counts something this pass; a counting part hands the
    /// groups the record's time closes to `closed` (see `Closing::saw_with`).
    #[inline(always)]
    fn add(
        &mut self,
        key: impl FnOnce() -> (u128, K),
        value: i64,
        weight: u128,
        time: u64,
        closed: impl FnMut(&K, u64, &[(i64, u128)]),
    ) {
        match self {
            Part::Counting(lane) if !lane.gave_up() => {
                let (packed, key) = key();
                lane.tally.add_packed(packed, || key, value, weight);
                lane.saw_with(time, closed);
            }
            Part::Selecting(selection) => {
                let (packed, key) = key();
                selection.add_packed(packed, || key, value, weight);
            }
            Part::Idle | Part::Absorbing(_) | Part::Counting(_) => {}
        }
    }

    /// True when the part counted windows closed on a bound that a record broke.
    fn lied_to(&self) -> bool {
        matches!(self, Part::Counting(lane) if lane.tally.added_after_close())
    }
}

/// The spectra a pass made, settled: spectra absorbed from the windows are complete when the
/// windows' tally kept every value and no record came after its window closed (then the
/// windows still open add theirs now); else they are dropped, and counted record by record
/// in the next pass.
fn absorbed_spectra(spectra: Part<u16>, windows: &Part<WindowKey>) -> Part<u16> {
    match (spectra, windows) {
        (Part::Absorbing(mut whole), Part::Counting(lane))
            if lane.tally.is_exact() && !lane.tally.added_after_close() && !lane.gave_up() =>
        {
            lane.tally
                .for_each_open(|key, records, values| whole.absorb(key.1, records, values));
            Part::Counting(Closing::new(whole, 0, 1, u64::MAX, |_| None))
        }
        (Part::Absorbing(_), _) => Part::Idle,
        (spectra, _) => spectra,
    }
}

/// What each lane of a pass counts beside the pass's ordered fold.
struct Beside {
    span: Span,
    spectra: Part<u16>,
    windows: Part<WindowKey>,
    /// The windows' starts, by the window length of this pass.
    window: WindowStart,
}

impl Beside {
    fn merge(&mut self, later: Beside) {
        self.span.merge(later.span);
        self.spectra.merge(later.spectra);
        self.windows.merge(later.windows);
    }
}

/// A part's plan and, once known, its answer.
struct Progressing<K> {
    plan: Plan<K>,
    done: Option<Selection<K>>,
}

impl<K: Ord + Clone> Progressing<K> {
    /// Takes what a pass made of the part: a complete tally or a second pass is the answer;
    /// a tally past its budget plans the second pass. A tally whose closing was lied to
    /// (`added_after_close`) is dropped: `Err(())`, count again without closing.
    fn settle(&mut self, part: Part<K>) -> Result<(), ()> {
        match part {
            // Absorbed spectra not made complete (`absorbed_spectra`): counted again.
            Part::Idle | Part::Absorbing(_) => {}
            Part::Counting(lane) => {
                if lane.tally.added_after_close() {
                    return Err(());
                }
                // Incomplete: counted again.
                if lane.gave_up() {
                    return Ok(());
                }
                let selection = lane.tally.finish();
                if selection.is_complete() {
                    (self.plan, self.done) = (Plan::Nothing, Some(selection));
                } else {
                    self.plan = Plan::Select(Box::new(selection));
                }
            }
            Part::Selecting(selection) => (self.plan, self.done) = (Plan::Nothing, Some(selection)),
        }
        Ok(())
    }
}

/// What every pass of a plot shares.
struct Passes<'a> {
    sources: &'a Sources,
    filter: &'a Filter,
    raw: bool,
    budget: usize,
    /// The spectrum's percentiles, and P99 last.
    with_p99: Vec<Quantile>,
    /// The windows' length was guessed (not given): pass 1's windows give up past
    /// [`MAX_GUESSED_WINDOW_GROUPS`].
    window_guessed: bool,
    p99: Quantile,
}

impl Passes<'_> {
    /// One pass: `pass` folded in the records' order, the spectra and the windows as planned
    /// beside it; windows closed on `bound` when there is one (each core then reads one run).
    /// The span is measured by the first pass (the one without starts).
    #[allow(clippy::too_many_arguments, reason = "the parts of one pass")]
    fn run<F>(
        &self,
        progress: &mut Progress,
        label: &'static str,
        pass: &F,
        starts: Option<&Starts>,
        spectra: &Plan<u16>,
        windows: &Plan<WindowKey>,
        window_ns: u64,
        bound: Option<u64>,
    ) -> Result<(F::Acc, Beside), Failure>
    where
        F: Fold + Sync,
        F::Acc: Send,
    {
        let lanes = match (windows, bound) {
            (Plan::Count, Some(_)) => Lanes::Runs,
            _ => Lanes::Shared,
        };
        // Windows that close carry the spectra: each value goes into one tally, not two.
        let absorb = lanes == Lanes::Runs && matches!(spectra, Plan::Count);
        let layout = Layout {
            lanes,
            absorb,
            spectra,
            windows,
            window_ns,
            bound,
            // Pass 1 is the one without starts.
            max_window_groups: if starts.is_none() && self.window_guessed {
                MAX_GUESSED_WINDOW_GROUPS
            } else {
                usize::MAX
            },
        };
        // Which parts take each record, chosen once per pass: one instance of the pass's loop
        // each, without a check of the parts per record.
        let spectra_fed = !absorb && !matches!(spectra, Plan::Nothing);
        let windows_fed = !matches!(windows, Plan::Nothing);
        let run = match (starts.is_none(), spectra_fed, windows_fed) {
            (true, true, true) => Self::run_as::<F, true, true, true>,
            (true, true, false) => Self::run_as::<F, true, true, false>,
            (true, false, true) => Self::run_as::<F, true, false, true>,
            (true, false, false) => Self::run_as::<F, true, false, false>,
            (false, true, true) => Self::run_as::<F, false, true, true>,
            (false, true, false) => Self::run_as::<F, false, true, false>,
            (false, false, true) => Self::run_as::<F, false, false, true>,
            (false, false, false) => Self::run_as::<F, false, false, false>,
        };
        run(self, progress, label, pass, starts, &layout)
    }

    /// [`Passes::run`] measuring the span (`SPAN`), feeding each record to the spectra
    /// (`SPECTRA`) and to the windows (`WINDOWS`) as the layout's plans say.
    fn run_as<F, const SPAN: bool, const SPECTRA: bool, const WINDOWS: bool>(
        &self,
        progress: &mut Progress,
        label: &'static str,
        pass: &F,
        starts: Option<&Starts>,
        layout: &Layout<'_>,
    ) -> Result<(F::Acc, Beside), Failure>
    where
        F: Fold + Sync,
        F::Acc: Send,
    {
        let sources = self.sources;
        let raw = self.raw;
        fold::parallel_in(
            sources,
            self.filter,
            progress,
            label,
            pass,
            starts,
            layout.lanes,
            |lane| Beside {
                span: Span::default(),
                spectra: match layout.spectra {
                    Plan::Nothing => Part::Idle,
                    Plan::Count if layout.absorb => {
                        Part::Absorbing(Tally::with_budget(self.with_p99.clone(), self.budget))
                    }
                    // Kinds are never closed: no window.
                    Plan::Count => {
                        let tally = Tally::with_budget(self.with_p99.clone(), self.budget);
                        Part::Counting(Closing::new(tally, lane, 1, u64::MAX, |_| None))
                    }
                    Plan::Select(selection) => Part::Selecting((**selection).clone()),
                },
                windows: match layout.windows {
                    Plan::Nothing => Part::Idle,
                    Plan::Count => {
                        let tally = Tally::with_budget(vec![self.p99.clone()], self.budget);
                        // Without a bound (several files, a ring), nothing closes.
                        let bound = layout.bound.unwrap_or(u64::MAX);
                        let window_of = |key: &WindowKey| Some(key.0);
                        let window_ns = layout.window_ns;
                        Part::Counting(
                            Closing::new(tally, lane, window_ns, bound, window_of)
                                .with_max_groups(layout.max_window_groups),
                        )
                    }
                    Plan::Select(selection) => Part::Selecting((**selection).clone()),
                },
                window: WindowStart::new(layout.window_ns),
            },
            #[inline(always)]
            |beside, source, s, w| {
                if SPAN {
                    beside.span.add(s);
                }
                let kind = sources.label_index(source, s.kind);
                let weight = if raw { WEIGHT_ONE } else { w };
                if SPECTRA {
                    let spectrum = || (u128::from(kind), kind);
                    beside
                        .spectra
                        .add(spectrum, s.delta_ns, weight, 0, |_, _, _| {});
                }
                if WINDOWS {
                    let key = (beside.window.of(s.nanotime), kind);
                    let window = || (packed(key), key);
                    let spectra = &mut beside.spectra;
                    // A window closed goes into its kind's spectrum when the spectra absorb.
                    let closed = |key: &WindowKey, records, values: &[(i64, u128)]| {
                        if let Part::Absorbing(whole) = spectra {
                            whole.absorb(key.1, records, values);
                        }
                    };
                    beside
                        .windows
                        .add(window, s.delta_ns, weight, s.nanotime, closed);
                }
            },
            Beside::merge,
        )
    }
}

/// How a pass lays out its parts: how cores take pieces, whether the spectra are absorbed
/// from closing windows, the plans, the window length and the lateness bound.
struct Layout<'a> {
    lanes: Lanes,
    absorb: bool,
    spectra: &'a Plan<u16>,
    windows: &'a Plan<WindowKey>,
    window_ns: u64,
    bound: Option<u64>,
    max_window_groups: usize,
}

/// The most window groups pass 1 counts with a guessed window length: a right guess makes at
/// most 62 windows (a sixtieth of the span, cut at multiples of the length) of at most 256
/// kinds; more says the guess was wrong, and the windows are counted in pass 2.
const MAX_GUESSED_WINDOW_GROUPS: usize = 62 * 256;

/// Each kind's P99 (the last value of its spectrum).
pub(crate) fn p99_per_kind(spectra: &Selection<u16>) -> BTreeMap<u16, i64> {
    spectra
        .clone()
        .finish()
        .into_iter()
        .filter_map(|(kind, values, _)| Some((kind, *values.last()?)))
        .collect()
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
    let mut bound = closing::lateness(sources, filter)?;
    let given_window = window.map(|w| u64::try_from(w.as_nanos()).unwrap_or(u64::MAX).max(1));
    let guessed_window = match given_window {
        Some(window) => Some(window),
        None => span_hint(sources, filter)?.map(|(t0, t1)| window_for(t0, t1)),
    };
    let passes = Passes {
        sources,
        filter,
        raw,
        budget: distinct_budget(),
        with_p99,
        p99,
        window_guessed: given_window.is_none() && guessed_window.is_some(),
    };
    // One ring carries no bound: one is guessed, so that its windows close too.
    let bound_guessed = bound.is_none()
        && filter.last.is_none()
        && matches!(sources.sources.as_slice(), [Source::Ring { .. }]);
    if bound_guessed {
        bound = guessed_window.map(|window| window.max(RING_LATENESS_GUESS_NS));
    }
    let mut spectra = Progressing {
        plan: Plan::Count,
        done: None,
    };
    let mut windows = Progressing {
        plan: guessed_window.map_or(Plan::Nothing, |_| Plan::Count),
        done: None,
    };

    // Pass 1: the span, the pieces' counts, the spectra, and the windows if known.
    let (map, first) = passes.run(
        progress,
        "pass 1",
        &PieceMap,
        None,
        &spectra.plan,
        &windows.plan,
        guessed_window.unwrap_or(1),
        bound,
    )?;
    let starts = PieceMap::starts(&map);
    let span = first.span;
    if span.count == 0 {
        progress.finish();
        return Err(Failure::File("no records match: nothing to plot".into()));
    }
    let window_ns = given_window.unwrap_or_else(|| window_for(span.t0, span.t1));
    let stride = span.count.div_ceil(MAX_POINTS).max(1);
    let _ = spectra.settle(absorbed_spectra(first.spectra, &first.windows));
    // The windows of pass 1 count only when the guess was right; a bound they found broken
    // is broken either way.
    if guessed_window == Some(window_ns) {
        if windows.settle(first.windows).is_err() {
            lied(&mut bound, bound_guessed);
        }
    } else if first.windows.lied_to() {
        lied(&mut bound, bound_guessed);
    }
    // Counted again, by the window now known, unless pass 1 counted them: a wrong guess or a
    // lie leaves the plan at counting, and no guess at nothing.
    if windows.done.is_none() && matches!(windows.plan, Plan::Nothing) {
        windows.plan = Plan::Count;
    }

    // Then the points once the P99s are known, and what the parts still need.
    let mut points = None;
    for label in ["pass 2", "pass 3", "pass 4", "pass 5"] {
        let kind_p99 = spectra.done.as_ref().map(p99_per_kind);
        if points.is_some() && windows.done.is_some() {
            break;
        }
        // Only the points left: read apart, they cost far less than a pass.
        if let (Some(kind_p99), Some(_), None) = (&kind_p99, &windows.done, filter.last) {
            let pass = PointsPass::new(sources, stride, MAX_WITH_TAIL, kind_p99);
            points = Some(plot_points::take(
                sources, filter, progress, &pass, &map, &starts,
            )?);
            break;
        }
        let take_points = points.is_none() && kind_p99.is_some();
        let points_pass = PointsPass::new(
            sources,
            stride,
            MAX_WITH_TAIL,
            kind_p99.as_ref().unwrap_or(&BTreeMap::new()),
        );
        let (acc, after) = passes.run(
            progress,
            label,
            &points_pass,
            Some(&starts),
            &spectra.plan,
            &windows.plan,
            window_ns,
            bound,
        )?;
        if take_points {
            points = Some(points_pass.resolve(acc));
        }
        let _ = spectra.settle(absorbed_spectra(after.spectra, &after.windows));
        // A lie leaves the plan at counting: counted again without the bound.
        if windows.settle(after.windows).is_err() {
            lied(&mut bound, bound_guessed);
        }
    }
    progress.finish();
    let (Some(spectra), Some(windows), Some(points)) = (spectra.done, windows.done, points) else {
        return Err(Failure::File(
            "the plot's passes did not settle (a file changing while read?)".into(),
        ));
    };
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
        spectra: spectra
            .finish()
            .into_iter()
            .map(|(kind, values, _)| (kind, values))
            .collect(),
        points,
    })
}

/// A record came later than the lateness bound: said once (unless the bound was only
/// guessed), and windows are no longer closed on the bound.
fn lied(bound: &mut Option<u64>, guessed: bool) {
    if bound.take().is_some() && !guessed {
        closing::warn_bound_broken();
    }
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

impl Span {
    #[inline(always)]
    pub(crate) fn add(&mut self, s: &Sample) {
        self.t0 = self.t0.min(s.nanotime);
        self.t1 = self.t1.max(s.nanotime);
        self.count += 1;
        if s.delta_ns > 0 {
            self.min_positive = Some(self.min_positive.map_or(s.delta_ns, |m| m.min(s.delta_ns)));
        }
        self.max = self.max.max(s.delta_ns);
    }

    pub(crate) fn merge(&mut self, other: Span) {
        self.t0 = self.t0.min(other.t0);
        self.t1 = self.t1.max(other.t1);
        self.count += other.count;
        self.min_positive = match (self.min_positive, other.min_positive) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        };
        self.max = self.max.max(other.max);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::fold::testdata::archives;

    /// The span of any split of the records, merged, is the span of one walk, and the walk's
    /// is the brute force's.
    #[test]
    fn spans_merge_exactly() {
        let (_dir, _sources, records) = archives(&[700, 300], 30, 4);
        let span_of = |part: &[(usize, Sample)]| {
            let mut span = Span::default();
            for (_, s) in part {
                span.add(s);
            }
            span
        };
        let serial = span_of(&records);
        assert_eq!(serial.count, 1000);
        assert_eq!(
            serial.t0,
            records.iter().map(|r| r.1.nanotime).min().unwrap()
        );
        assert_eq!(
            serial.t1,
            records.iter().map(|r| r.1.nanotime).max().unwrap()
        );
        let deltas = || records.iter().map(|r| r.1.delta_ns);
        assert_eq!(serial.max, deltas().max().unwrap());
        assert_eq!(serial.min_positive, deltas().filter(|d| *d > 0).min());
        for cut in [0, 1, 499, 999, 1000] {
            let mut merged = span_of(&records[..cut]);
            merged.merge(span_of(&records[cut..]));
            assert_eq!(merged, serial, "cut {cut}");
        }
    }
}
