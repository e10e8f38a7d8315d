//! A pass over the selected records written as a fold: an empty accumulator, one record folded
//! in at a time, and a merge of two accumulators, so that a pass can run over chunks of the
//! files in parallel and end with the same result as one serial walk.
//!
//! Today every pass runs serially through [`Sources::selected`]; the percentile engine's state
//! (`Histograms`, `Selection`) is fed beside the fold by the same walk (see [`serial`]) because
//! its public API has no merge yet: the parallel engine pairs with these folds.

use crate::Failure;
use crate::progress::Progress;
use crate::select::{Filter, Sources};
use ringlat_read::Sample;

/// One pass's work over the records, as a fold.
///
/// Merges are exact: integer (fixed-point) weights and counts, never a float sum whose result
/// depends on the order of the records.
pub(crate) trait Fold {
    /// What the pass accumulates.
    type Acc;

    /// An empty accumulator whose first record will be the `first`-th selected record (0-based,
    /// in the order [`Sources::selected`] visits them): 0 for a serial pass, a chunk's start
    /// when chunks run in parallel (a fold that ignores it says so).
    fn init(&self, first: u64) -> Self::Acc;

    /// Folds in the next record of `acc`'s run (`source` indexes [`Sources::sources`]).
    fn fold(&self, acc: &mut Self::Acc, source: usize, sample: &Sample);

    /// The accumulator of `earlier`'s records followed by `later`'s (`later` starts where
    /// `earlier` ends).
    #[cfg_attr(
        not(test),
        allow(
            dead_code,
            reason = "called by the parallel scan once merged; tests check it"
        )
    )]
    fn merge(&self, earlier: Self::Acc, later: Self::Acc) -> Self::Acc;
}

/// A pass with nothing of its own to fold (only the engine's feed beside it).
pub(crate) struct Nothing;

impl Fold for Nothing {
    type Acc = ();

    fn init(&self, _first: u64) {}

    fn fold(&self, _acc: &mut (), _source: usize, _sample: &Sample) {}

    fn merge(&self, _earlier: (), _later: ()) {}
}

/// Runs `pass` over the selected records in one serial walk, calling `beside` on every record
/// too (the percentile engine's serial feed; `|_, _| {}` when there is none).
pub(crate) fn serial<F: Fold>(
    sources: &Sources,
    filter: &Filter,
    progress: &mut Progress,
    label: &'static str,
    pass: &F,
    mut beside: impl FnMut(usize, &Sample),
) -> Result<F::Acc, Failure> {
    let mut acc = pass.init(0);
    progress.next_pass(label);
    sources.selected(filter, progress, |source, sample| {
        pass.fold(&mut acc, source, sample);
        beside(source, sample);
    })?;
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
