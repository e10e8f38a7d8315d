//! Time windows closed as the records leave them behind, so that `pct --window` counts every
//! window exactly in one pass, holding only the windows still open.
//!
//! An archive of version 3 carries a lateness bound `S` (docs/ARCHIVE.md, "Seeking"): with
//! `M_i` the newest record time up to entry `i`, every record has `M_i - S <= t_i <= M_i`.
//! A pass that reads the entries in file order and has seen a record at time `N` knows every
//! record still to come is at or after `N - S`: a window `[s, e)` with `e + S <= N` is
//! complete, and [`Tally::close`] finishes it and frees its values. Only the windows within
//! `S` of the newest record stay open, instead of every window of the file, which is what kept
//! a day of 1-second windows from fitting the tally's budget (a second pass over everything).
//!
//! Each core reads one run of consecutive pieces ([`crate::scan::fold_in_lanes`]). A
//! lane after the first closes only windows that start after `f + S`, where `f` is the time of
//! a record it read: every record of the lanes before it is at most `M <= f + S`. The windows
//! around the start of its run stay open, and the lanes' tallies merge them at the end.
//!
//! What stays in memory: the open windows' values, and per closed group its answer (a few
//! hundred bytes: the rows to print). [`Tally::close`] looks only at the groups still open.
//!
//! The bound is the file's word. If it lies (a record later than `S`), a record lands in a
//! closed group; the tally says so ([`Tally::added_after_close`]) and the caller counts again
//! without closing. So a wrong bound costs a pass, never a wrong answer.

use crate::Failure;
use crate::select::{Filter, Sources};
use ringlat_read::Source;
use ringlat_read::percentile::Tally;

/// The lateness bound of the records a pass reads in file order (the files one after the
/// other, as given), when windows can be closed on it: archives of version 3 only (a ring has
/// no bound), no `--last` (read in another order). `None` otherwise.
///
/// Over several files the bound is the stream's: with `N` the newest record of the files
/// before a file and `O` that file's oldest, its records fall behind the running maximum by at
/// most `max(S_file, N - O)`. Files given in time order (a day of archives) keep it near the
/// files' own bounds; files out of order only make it larger (windows close later or not at
/// all), never wrong. A file whose oldest record is not known from a short read
/// (`ArchiveReader::time_span_hint`) leaves the bound unknown: `None`.
pub(crate) fn lateness(sources: &Sources, filter: &Filter) -> Result<Option<u64>, Failure> {
    if filter.last.is_some() {
        return Ok(None);
    }
    // One file: its own bound, whether or not its span settles in a short read (the loop
    // below needs each file's oldest record only for the files after it).
    if let [Source::Archive(archive)] = sources.sources.as_slice() {
        return Ok(archive.lateness_bound()?);
    }
    let mut bound = 0u64;
    let mut newest_before: Option<u64> = None;
    for source in &sources.sources {
        let Source::Archive(archive) = source else {
            return Ok(None);
        };
        let Some(own) = archive.lateness_bound()? else {
            return Ok(None);
        };
        if archive.is_empty() {
            continue;
        }
        let Some((oldest, newest)) = archive.time_span_hint()? else {
            return Ok(None);
        };
        let across = newest_before.map_or(0, |before| before.saturating_sub(oldest));
        bound = bound.max(own).max(across);
        newest_before = Some(newest_before.map_or(newest, |before| before.max(newest)));
    }
    Ok(Some(bound))
}

/// One lane's tally, closing windows as the lane's records pass their end.
///
/// ```ignore
/// let mut lane = Closing::new(Tally::new(quantiles), 0, window_ns, lateness, |k: &u64| Some(*k));
/// lane.tally.add(window_start, latency, weight);
/// lane.saw(record_time);
/// ```
pub(crate) struct Closing<K> {
    pub tally: Tally<K>,
    /// 0 for the lane that reads the first records.
    lane: usize,
    lateness: u64,
    /// The time of a record of this lane (the first that raised `newest`; `u64::MAX` before).
    first: u64,
    /// The newest record time seen by this lane.
    newest: u64,
    /// `newest` at or past this closes windows again: the next window end plus the bound.
    next_close: u64,
    /// The window start of a key (`None`: not windowed, never closed).
    window_of: fn(&K) -> Option<u64>,
    /// The window length, and the window of the last record asked about.
    windows: WindowStart,
    /// More groups than this (closed ones included) and the lane gives up ([`Closing::gave_up`]).
    max_groups: usize,
    gave_up: bool,
}

/// Says on stderr that a record came later than the lateness bound allows (the file's header
/// lied): what was counted with windows closed on it is counted again.
pub(crate) fn warn_bound_broken() {
    eprintln!("ringcat: a record is later than the archive's lateness bound: counting again");
}

/// The start of the window that holds a time, for records that come in time order (mostly):
/// the last answer while it holds, so that most records cost a subtraction and a comparison
/// instead of a division.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WindowStart {
    length: u64,
    last: u64,
}

impl WindowStart {
    /// For windows of `length` ns (at least 1) starting at multiples of it.
    pub(crate) fn new(length: u64) -> Self {
        // [0, length) is a window: a valid first answer.
        WindowStart {
            length: length.max(1),
            last: 0,
        }
    }

    /// The start of the window that holds `time`.
    #[inline(always)]
    pub(crate) fn of(&mut self, time: u64) -> u64 {
        // Not `wrapping_sub` alone: the last window of the u64 range is cut short, and
        // times just above 0 would wrap into it.
        if time < self.last || time - self.last >= self.length {
            self.last = time - time % self.length;
        }
        self.last
    }
}

impl<K: Ord + Clone> Closing<K> {
    pub(crate) fn new(
        tally: Tally<K>,
        lane: usize,
        window_ns: u64,
        lateness: u64,
        window_of: fn(&K) -> Option<u64>,
    ) -> Self {
        Closing {
            tally,
            lane,
            lateness,
            first: u64::MAX,
            newest: 0,
            next_close: 0,
            window_of,
            windows: WindowStart::new(window_ns),
            max_groups: usize::MAX,
            gave_up: false,
        }
    }

    /// Gives up once the tally holds more than `max_groups` groups, checked as windows close:
    /// for windows whose length was guessed from a span that may be wrong (a file whose
    /// records lie far outside it would make a window for each), whose count a caller then
    /// drops and makes again with the length the pass measured.
    pub(crate) fn with_max_groups(mut self, max_groups: usize) -> Self {
        self.max_groups = max_groups;
        self
    }

    /// True once the tally passed its `max_groups`: it takes no more records and is
    /// incomplete.
    pub(crate) fn gave_up(&self) -> bool {
        self.gave_up
    }

    /// The start of the window that holds `time` ([`WindowStart`]).
    #[inline(always)]
    pub(crate) fn window_start(&mut self, time: u64) -> u64 {
        self.windows.of(time)
    }

    /// Takes a record's time into account, after its value was added to the tally.
    #[inline(always)]
    pub(crate) fn saw(&mut self, time: u64) {
        self.saw_with(time, |_, _, _| {});
    }

    /// [`Closing::saw`], handing each window it closes to `closed` (see
    /// `Tally::close_with`).
    #[inline(always)]
    pub(crate) fn saw_with(&mut self, time: u64, closed: impl FnMut(&K, u64, &[(i64, u128)])) {
        if time > self.newest {
            self.newest = time;
            if time >= self.next_close {
                self.close(closed);
            }
        }
    }

    /// Closes the windows that ended at least the bound before the newest record.
    #[cold]
    #[inline(never)]
    fn close(&mut self, closed: impl FnMut(&K, u64, &[(i64, u128)])) {
        if self.first == u64::MAX {
            self.first = self.newest;
        }
        let (newest, lateness, window) = (self.newest, self.lateness, self.windows.length);
        // Every record of an earlier lane is at or before `after` (see the module doc).
        let after = (self.lane > 0).then(|| self.first.saturating_add(lateness));
        let window_of = self.window_of;
        let ended = |key: &K| {
            window_of(key).is_some_and(|start| {
                let ended = start
                    .checked_add(window)
                    .and_then(|end| end.checked_add(lateness))
                    .is_some_and(|limit| limit <= newest);
                ended && after.is_none_or(|after| start > after)
            })
        };
        self.tally.close_with(ended, closed);
        if self.tally.len() > self.max_groups {
            self.gave_up = true;
        }
        // The next window end past `newest - lateness`, plus the bound.
        let past = newest.saturating_sub(lateness) / window;
        self.next_close = past
            .checked_add(1)
            .and_then(|n| n.checked_mul(window))
            .and_then(|end| end.checked_add(lateness))
            .unwrap_or(u64::MAX);
    }

    /// Merges a later lane into this one (the tallies; closing is over).
    pub(crate) fn merge(&mut self, later: Closing<K>) {
        self.tally.merge(later.tally);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ringlat_read::percentile::{Quantile, WEIGHT_ONE};

    fn quantiles() -> Vec<Quantile> {
        ["50", "99", "100"]
            .iter()
            .map(|q| Quantile::parse(q).unwrap())
            .collect()
    }

    /// A lane of window length 10 and bound 0 that read these times, a value of 1 each.
    fn lane_of(number: usize, times: &[u64]) -> Closing<u64> {
        let mut lane = Closing::new(Tally::new(quantiles()), number, 10, 0, |k: &u64| Some(*k));
        for t in times {
            lane.tally.add(t - t % 10, 1, WEIGHT_ONE);
            lane.saw(*t);
        }
        lane
    }

    /// Records (time, value) with times late by up to `lateness` behind the newest, cut into
    /// two lanes at many positions: the closing lanes, merged, equal one tally that never
    /// closes, with a budget far below the values of all windows (so closing is what keeps
    /// the tally exact).
    #[test]
    fn closing_lanes_equal_a_tally_that_never_closes() {
        let window = 1_000u64;
        for lateness in [0u64, 1, 999, 1_000, 2_500] {
            let mut state = 7u64;
            let mut newest = 0u64;
            let records: Vec<(u64, i64)> = (0..3_000u64)
                .map(|i| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1);
                    let late = (state >> 40) % (lateness + 1);
                    let time = (i * 37)
                        .saturating_sub(late)
                        .max(newest.saturating_sub(lateness));
                    newest = newest.max(time);
                    (time, ((state >> 20) % 500) as i64)
                })
                .collect();
            let key = |t: u64| t - t % window;
            let mut whole = Tally::new(quantiles());
            for (t, v) in &records {
                whole.add(key(*t), *v, WEIGHT_ONE);
            }
            let expected = whole.finish().finish();
            for cut in [0, 1, 500, 1_777, 2_999, 3_000] {
                let lane = |number: usize, part: &[(u64, i64)]| {
                    let tally = Tally::with_budget(quantiles(), 600);
                    let mut lane = Closing::new(tally, number, window, lateness, |k| Some(*k));
                    for (t, v) in part {
                        lane.tally.add(key(*t), *v, WEIGHT_ONE);
                        lane.saw(*t);
                    }
                    lane
                };
                let mut first = lane(0, &records[..cut]);
                first.merge(lane(1, &records[cut..]));
                let what = format!("bound {lateness} cut {cut}");
                assert!(!first.tally.added_after_close(), "{what}");
                assert!(
                    first.tally.is_exact(),
                    "{what}: closing kept it within budget"
                );
                let selection = first.tally.finish();
                assert!(selection.is_complete(), "{what}");
                assert_eq!(selection.finish(), expected, "{what}");
            }
        }
    }

    /// The cached window start equals the division's, for times in and out of order.
    #[test]
    fn window_starts_equal_the_division() {
        for length in [1u64, 7, 1_000] {
            let mut windows = WindowStart::new(length);
            for time in [
                0u64,
                5,
                6,
                7,
                13,
                2,
                999,
                1_000,
                1_001,
                20,
                u64::MAX,
                3,
                u64::MAX - 1,
            ] {
                assert_eq!(windows.of(time), time - time % length, "{length} {time}");
            }
        }
    }

    /// Archives of records `first..first + count`, 1000 ns apart less `i % 3` times 1100 ns:
    /// records late by 100 and 200 ns (own bound 200 ns).
    fn archive_of(path: &std::path::Path, first: u64, count: u64) {
        use ringlat_format::Record;
        use ringlat_read::Decoded;
        use ringlat_read::archive::{ArchiveWriter, RingInfo};
        let mut writer = ArchiveWriter::open(path, 1).unwrap();
        let ring = RingInfo::synthetic(1, 1 << 30, 1, &["op"]);
        let batch: Vec<Decoded> = (first..first + count)
            .map(|i| Decoded {
                position: i as u32,
                kind: 0,
                class: 0,
                probability: 1.0,
                record: Record::new(i, 1_000_000 + i * 1_000 - (i % 3) * 1_100, 0, 5),
            })
            .collect();
        writer.append(&ring, &batch).unwrap();
    }

    /// The bound over several archives: their own in time order; the gap back in time when
    /// a file comes before an older one; unknown with a ring among them or with `--last`.
    #[test]
    fn the_bound_of_several_files_read_in_turn() {
        let dir = tempfile::tempdir().unwrap();
        let (early, late) = (dir.path().join("early"), dir.path().join("late"));
        archive_of(&early, 0, 1_000);
        archive_of(&late, 1_000, 1_000);
        let bound = |paths: &[&std::path::Path], filter: &Filter| {
            let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
            lateness(&Sources::open(&names).unwrap(), filter).unwrap()
        };
        let all = Filter::default();
        assert_eq!(bound(&[&early], &all), Some(200));
        assert_eq!(bound(&[&early, &late], &all), Some(200));
        // In order: the late file's oldest (record 1001, 1,998,800) is 200 behind the early
        // file's newest (record 999, 1,999,000). Reversed: the early file's oldest (record 2,
        // 999,800) is behind the late file's newest (record 1998, 2,998,000).
        assert_eq!(bound(&[&late, &early], &all), Some(2_998_000 - 999_800));
        let last = Filter::parse(&crate::cli::FilterArgs {
            last: Some(5),
            ..crate::cli::FilterArgs::default()
        })
        .unwrap();
        assert_eq!(bound(&[&early, &late], &last), None);
        let ring = dir.path().join("r.ring");
        ringlat::Ring::builder(&ring)
            .kind(0, "op")
            .create()
            .unwrap();
        assert_eq!(bound(&[&early, &ring], &all), None);
    }

    /// A file that lies about its bound: a record older than the bound allows lands in a
    /// window already closed, and the tally says so (the caller then counts again).
    #[test]
    fn a_record_later_than_the_bound_is_caught() {
        let mut lane = lane_of(0, &[1, 5, 12, 25]);
        assert!(!lane.tally.added_after_close());
        lane.tally.add(0, 1, WEIGHT_ONE); // time 3: its window closed at 12
        lane.saw(3);
        assert!(lane.tally.added_after_close());

        // A lie seen only when the lanes merge: the first lane closed window 20 at 35; the
        // second began at 38, so it kept window 20 open, and its record at 24 (after 50,
        // bound 0) lands there.
        let (mut early, late) = (lane_of(0, &[21, 35]), lane_of(1, &[38, 50, 24]));
        assert!(!early.tally.added_after_close() && !late.tally.added_after_close());
        early.merge(late);
        assert!(early.tally.added_after_close());
        // Without the lie, the same lanes merge cleanly.
        let mut early = lane_of(0, &[21, 35]);
        early.merge(lane_of(1, &[38, 50, 44]));
        assert!(!early.tally.added_after_close());
    }
}
