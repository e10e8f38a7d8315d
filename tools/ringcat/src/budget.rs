//! How much a pass may hold in memory before it takes a slower path that holds less.

use crate::merge::EXACT_WINDOW_CAP;
use ringlat_read::percentile::DISTINCT_BUDGET;

/// How many undecided records a pass may keep before it gives up and leaves the listing to one
/// more pass: 64 MiB of `T`. `RINGCAT_CANDIDATE_LIMIT` (undocumented, for tests) overrides it,
/// so that tests can take the fallback path on small files.
pub(crate) fn candidate_limit<T>() -> usize {
    std::env::var("RINGCAT_CANDIDATE_LIMIT")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or((64 << 20) / std::mem::size_of::<T>().max(1))
}

/// How many distinct values the one-pass tallies of `pct`, `slice` and `plot` keep exactly
/// before they fall back to bins and a second pass: [`DISTINCT_BUDGET`].
/// `RINGCAT_DISTINCT_BUDGET` (undocumented, for tests) overrides it, so that tests can take
/// the fallback on small files.
pub(crate) fn distinct_budget() -> usize {
    std::env::var("RINGCAT_DISTINCT_BUDGET")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(DISTINCT_BUDGET)
}

/// How many records the exact reorder window of a ring streamed by time may be expected to
/// hold before the ring is read whole and sorted instead: half of [`EXACT_WINDOW_CAP`].
/// `RINGCAT_RING_WINDOW_LIMIT` (undocumented, for tests) overrides it, so that tests can take
/// the sorted path on small rings.
pub(crate) fn ring_window_limit() -> u64 {
    std::env::var("RINGCAT_RING_WINDOW_LIMIT")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(EXACT_WINDOW_CAP as u64 / 2)
}
