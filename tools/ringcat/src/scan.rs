//! One pass over the selected records of many files, folded on every core.
//!
//! [`fold`] splits the files into pieces (4 MiB of archive entries, or as many records of a
//! ring's snapshot), and each thread folds the pieces it takes into an accumulator of its own
//! (`init`, `fold`); the accumulators are then merged (`merge`) into one. Nothing is shared
//! while records are folded, so an accumulator needs no lock; a caller whose merge is exact
//! (integer weights, as in [`ringlat_read::percentile::Tally`]) gets the result of a serial
//! pass, whatever the number of threads. Threads are `std::thread::scope` threads taking
//! pieces from an atomic cursor: no thread pool to configure, no dependency, and a piece costs
//! one atomic increment.
//!
//! Records come in no particular order (file order within a piece). `--last` (the newest N
//! records, by time) is the exception: it needs every record first, and is folded serially
//! through [`Sources::selected`].
//!
//! ```ignore
//! // The records and events of the selection, in one parallel pass.
//! let (records, weight) = scan::fold(
//!     &sources, &filter, &mut progress, Fields::StatusAndDelta,
//!     || (0u64, 0u128),
//!     |acc, _source, _sample, weight| { acc.0 += 1; acc.1 += weight; },
//!     |acc, other| { acc.0 += other.0; acc.1 += other.1; },
//! )?;
//! ```

use crate::Failure;
use crate::progress::Progress;
use crate::select::{Filter, Sources};
use ringlat_read::percentile::weight_of;
use ringlat_read::{Fields, ReadError, Sample, Source};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// Units (archive entries, ring records) per piece: 4 MiB of archive.
const PIECE: u64 = 1 << 17;

/// Folds every record that passes `filter` into an accumulator: `fold(acc, source index,
/// sample, weight)` where `weight` is the record's fixed-point weight 1/p
/// ([`ringlat_read::percentile::weight_of`], not raw: use `WEIGHT_ONE` for a raw sample),
/// with one accumulator per thread made by `init` and merged with `merge(into, other)`.
/// Advances `progress` by the records read (not only the selected ones), like a serial pass.
/// `fold` reads only `fields` of the samples: the others are 0, unless the filter reads them
/// ([`Filter::fields_read`]); a live ring is read faster with fewer ([`Source::scan_fields`]).
pub(crate) fn fold<A: Send>(
    sources: &Sources,
    filter: &Filter,
    progress: &mut Progress,
    fields: Fields,
    init: impl Fn() -> A + Sync,
    fold: impl Fn(&mut A, usize, &Sample, u128) + Sync,
    merge: impl Fn(&mut A, A),
) -> Result<A, Failure> {
    fold_order_free(
        sources,
        filter,
        progress,
        Lanes::Shared,
        fields,
        |_| init(),
        fold,
        merge,
    )
}

/// [`fold`] where each thread folds one run of consecutive pieces, in the records' order
/// (file order), rather than taking whichever piece is next: run `lane` (0, 1, ...; 0 holds
/// the first records) goes to the accumulator made by `init(lane)`, and the accumulators are
/// merged in lane order, `merge(earlier, later)`. For a fold that needs to see the records in
/// file order (closing time windows as the records leave them behind); the runs are even in
/// pieces, so the cores share the work as long as the records cost alike.
pub(crate) fn fold_in_lanes<A: Send>(
    sources: &Sources,
    filter: &Filter,
    progress: &mut Progress,
    init: impl Fn(usize) -> A + Sync,
    fold: impl Fn(&mut A, usize, &Sample, u128) + Sync,
    merge: impl Fn(&mut A, A),
) -> Result<A, Failure> {
    fold_order_free(
        sources,
        filter,
        progress,
        Lanes::Runs,
        Fields::All,
        init,
        fold,
        merge,
    )
}

/// [`fold_pieces`] without an ordered accumulator: what [`fold`] and [`fold_in_lanes`] share.
#[allow(
    clippy::too_many_arguments,
    reason = "the parts of a fold, how pieces are taken, and which fields it reads"
)]
fn fold_order_free<A: Send>(
    sources: &Sources,
    filter: &Filter,
    progress: &mut Progress,
    lanes: Lanes,
    fields: Fields,
    init: impl Fn(usize) -> A + Sync,
    fold: impl Fn(&mut A, usize, &Sample, u128) + Sync,
    merge: impl Fn(&mut A, A),
) -> Result<A, Failure> {
    let (acc, ()) = fold_pieces(
        sources,
        filter,
        progress,
        lanes,
        fields,
        init,
        |_| (),
        #[inline(always)]
        |acc, (), source, _, sample, weight| fold(acc, source, sample, weight),
        merge,
        |(), ()| (),
    )?;
    Ok(acc)
}

/// How threads take pieces.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lanes {
    /// Each takes the next piece nobody took (a shared cursor): the fastest finish.
    Shared,
    /// Thread `i` of `n` takes the `i`-th of `n` runs of consecutive pieces, in order.
    Runs,
}

/// [`fold`] with, beside the order-free accumulator `A` (one per thread, merged in any
/// order), an ordered one `P`: one per piece, made by `start(first)` where `first` is an
/// order-preserving position for the piece's first selected record (the piece's index times
/// 2^32: positions grow with the order of [`Sources::selected`], with gaps between pieces;
/// 0, 1, 2... on `--last`'s serial path), and joined earlier-then-later by
/// `join(earlier, later)` in the order of the records.
/// The threads take pieces as `lanes` says, and `init(lane)` makes each thread's order-free
/// accumulator (lane 0 holds the first records with [`Lanes::Runs`]);
/// `fold` is told each record's unit too (see [`Source::scan_indexed`]; [`UNKNOWN_UNIT`] on
/// `--last`'s serial path, which reads records sorted by time), and reads only `fields` of
/// the samples (see [`fold`]).
#[allow(
    clippy::too_many_arguments,
    reason = "two folds, each with its own parts, how pieces are taken and the fields read"
)]
pub(crate) fn fold_pieces<A: Send, P: Send>(
    sources: &Sources,
    filter: &Filter,
    progress: &mut Progress,
    lanes: Lanes,
    fields: Fields,
    init: impl Fn(usize) -> A + Sync,
    start: impl Fn(u64) -> P + Sync,
    fold: impl Fn(&mut A, &mut P, usize, u64, &Sample, u128) + Sync,
    merge: impl Fn(&mut A, A),
    join: impl Fn(P, P) -> P,
) -> Result<(A, P), Failure> {
    if filter.last.is_some() {
        let mut acc = init(0);
        let mut piece = start(0);
        let mut last = (f64::NAN, 0u128);
        sources.selected(filter, progress, |source, sample| {
            if sample.probability.to_bits() != last.0.to_bits() {
                last = (sample.probability, weight_of(sample.probability, false));
            }
            // Selected already: the fields not asked for are made 0 as on the other path.
            let sample = &sample.with_only(fields);
            fold(&mut acc, &mut piece, source, UNKNOWN_UNIT, sample, last.1);
        })?;
        return Ok((acc, piece));
    }
    let pieces = pieces(sources, filter)?;
    let folded = fold_listed(
        sources, filter, progress, lanes, fields, &pieces, init, start, fold, merge, join,
    )?;
    end_pass(sources)?;
    Ok(folded)
}

/// The unit a fold is told when the pass does not know units (`--last`'s serial path).
pub(crate) const UNKNOWN_UNIT: u64 = u64::MAX;

/// A piece of a pass: units `units` of source `source`, the `index`-th piece of the pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Piece {
    pub index: usize,
    pub source: usize,
    pub units: Range<u64>,
}

/// Begins a pass over `sources` ([`Source::begin_scan`]) and cuts it into pieces, in the
/// records' order: the same pieces for every pass over the same sources and filter. An
/// archive that carries a lateness bound is seeked to the entries `--since` and `--until` can
/// select (docs/ARCHIVE.md, "Seeking"); the filter still checks each one. End the pass with
/// [`end_pass`].
pub(crate) fn pieces(sources: &Sources, filter: &Filter) -> Result<Vec<Piece>, Failure> {
    filter.check_kinds(sources)?;
    let mut pieces = Vec::new();
    let (since, until) = filter.time_bounds();
    for (index, source) in sources.sources.iter().enumerate() {
        let units = source.begin_scan()?;
        let (mut start, units) = match source {
            Source::Archive(archive) if since.is_some() || until.is_some() => {
                let range = archive.entry_range(since, until)?;
                (range.start.min(units), range.end.min(units))
            }
            _ => (0, units),
        };
        while start < units {
            let end = units.min(start + PIECE);
            pieces.push(Piece {
                index: pieces.len(),
                source: index,
                units: start..end,
            });
            start = end;
        }
    }
    Ok(pieces)
}

/// Ends a pass begun by [`pieces`] ([`Source::end_scan`]: fails if a ring changed under it).
pub(crate) fn end_pass(sources: &Sources) -> Result<(), Failure> {
    for source in &sources.sources {
        source.end_scan()?;
    }
    Ok(())
}

/// [`fold_pieces`] over `pieces` (some or all of those [`pieces`] cut, in their order) of a
/// pass begun and not yet ended: each piece's ordered accumulator starts at `start(index <<
/// 32)`, `index` its [`Piece::index`].
#[allow(
    clippy::too_many_arguments,
    reason = "two folds, each with its own parts, how pieces are taken and the fields read"
)]
pub(crate) fn fold_listed<A: Send, P: Send>(
    sources: &Sources,
    filter: &Filter,
    progress: &mut Progress,
    lanes: Lanes,
    fields: Fields,
    pieces: &[Piece],
    init: impl Fn(usize) -> A + Sync,
    start: impl Fn(u64) -> P + Sync,
    fold: impl Fn(&mut A, &mut P, usize, u64, &Sample, u128) + Sync,
    merge: impl Fn(&mut A, A),
    join: impl Fn(P, P) -> P,
) -> Result<(A, P), Failure> {
    let (everything, kinds_only) = (filter.is_everything(), filter.kinds_only());
    // The fold's fields and the filter's.
    let fields = fields.union(filter.fields_read());
    let kinds: Vec<[bool; 256]> = (0..sources.sources.len())
        .map(|index| filter.kinds_for(sources, index))
        .collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(pieces.len())
        .max(1);
    let cursor = Cursor::new(pieces, lanes, threads);
    // Folds the pieces of `lane` until none is left; with `progress`, shows what all threads
    // did so far after each piece, and adds to `shown` what it showed.
    let work = |lane: usize,
                acc: &mut A,
                ordered: &mut Vec<(usize, P)>,
                mut progress: Option<(&mut Progress, &mut u64)>| {
        let mut buffer = Vec::new();
        while let Some(piece) = cursor.take(lane) {
            let (index, source, range) = (piece.index, piece.source, piece.units.clone());
            let count = range.end - range.start;
            let kinds = &kinds[source];
            let mut ordered_acc = start((index as u64) << 32);
            // Inlined: a call per record (its prologue, epilogue and the sample spilled to
            // the stack) cost about 30 instructions of the 180 a record takes in `pct`.
            let scanned = &sources.sources[source];
            let result = if everything {
                // No filter (the usual pass): a loop of its own without the checks.
                scanned.scan_fields(
                    range,
                    &mut buffer,
                    fields,
                    #[inline(always)]
                    |unit, sample, weight| {
                        fold(acc, &mut ordered_acc, source, unit, sample, weight);
                    },
                )
            } else {
                scanned.scan_fields(
                    range,
                    &mut buffer,
                    fields,
                    #[inline(always)]
                    |unit, sample, weight| {
                        // A filter on kinds alone checks the kind only.
                        let kept = if kinds_only {
                            kinds[sample.kind as usize]
                        } else {
                            filter.keeps(sample, kinds)
                        };
                        if kept {
                            fold(acc, &mut ordered_acc, source, unit, sample, weight);
                        }
                    },
                )
            };
            if let Err(error) = result {
                // Relaxed: only tells the other threads to stop taking pieces early.
                cursor.stop.store(true, Ordering::Relaxed);
                return Err(error);
            }
            ordered.push((index, ordered_acc));
            // Relaxed: a progress statistic.
            let done = cursor.done.fetch_add(count, Ordering::Relaxed) + count;
            if let Some((progress, shown)) = progress.as_mut() {
                progress.advance(done.saturating_sub(**shown));
                **shown = done.max(**shown);
            }
        }
        Ok::<(), ReadError>(())
    };
    let (mut acc, mut result, mut shown) = (init(0), Ok(()), 0u64);
    let mut ordered = Vec::new();
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads)
            .map(|lane| {
                let (work, init) = (&work, &init);
                scope.spawn(move || {
                    let mut acc = init(lane);
                    let mut ordered = Vec::new();
                    let result = work(lane, &mut acc, &mut ordered, None);
                    (acc, ordered, result)
                })
            })
            .collect();
        // This thread works too, and keeps the progress bar.
        result = work(
            0,
            &mut acc,
            &mut ordered,
            Some((&mut *progress, &mut shown)),
        );
        // Its own pieces done (its run, with `Lanes::Runs`), it keeps a drawn bar moving with
        // the others' until they finish.
        while progress.is_shown() && helpers.iter().any(|helper| !helper.is_finished()) {
            // Relaxed: a progress statistic.
            let done = cursor.done.load(Ordering::Relaxed);
            progress.advance(done.saturating_sub(shown));
            shown = done.max(shown);
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        for helper in helpers {
            match helper.join() {
                Ok((other, other_ordered, other_result)) => {
                    merge(&mut acc, other);
                    ordered.extend(other_ordered);
                    if result.is_ok() {
                        result = other_result;
                    }
                }
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    // Relaxed: the helpers are joined; their pieces are all counted.
    progress.advance(cursor.done.load(Ordering::Relaxed) - shown);
    result?;
    // Each piece index was taken once: sorting by it puts the pieces in the records' order.
    ordered.sort_unstable_by_key(|(index, _)| *index);
    let mut joined = ordered.into_iter().map(|(_, piece)| piece);
    let first = joined.next().unwrap_or_else(|| start(0));
    Ok((acc, joined.fold(first, join)))
}

/// The pieces of a pass and which one is next, per lane (one lane for all threads, or one
/// run of consecutive pieces per thread: [`Lanes`]).
struct Cursor<'a> {
    pieces: &'a [Piece],
    /// Per lane: the next piece index and the end of its run.
    next: Vec<(AtomicUsize, usize)>,
    done: AtomicU64,
    stop: AtomicBool,
}

impl<'a> Cursor<'a> {
    fn new(pieces: &'a [Piece], lanes: Lanes, threads: usize) -> Self {
        let runs = match lanes {
            Lanes::Shared => 1,
            Lanes::Runs => threads.max(1),
        };
        let bound = |lane: usize| pieces.len() * lane / runs;
        Cursor {
            pieces,
            next: (0..runs)
                .map(|lane| (AtomicUsize::new(bound(lane)), bound(lane + 1)))
                .collect(),
            done: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        }
    }

    /// The next piece of `lane` nobody took, if any (none once a thread failed). With one
    /// lane for all, every thread takes from it.
    fn take(&self, lane: usize) -> Option<&'a Piece> {
        // Relaxed: the stop flag only shortens the pass after an error.
        if self.stop.load(Ordering::Relaxed) {
            return None;
        }
        let (next, end) = self.next.get(lane).or_else(|| self.next.first())?;
        // Relaxed: each index is handed out once (the RMW is atomic); the pieces themselves
        // were written before the threads were spawned.
        let index = next.fetch_add(1, Ordering::Relaxed);
        if index >= *end {
            return None;
        }
        self.pieces.get(index)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cli::FilterArgs;
    use ringlat_format::Record;
    use ringlat_read::Decoded;
    use ringlat_read::archive::{ArchiveWriter, RingInfo};

    /// An archive of `count` records over several pieces: 3 kinds at p = 1, 0.1, 0.5,
    /// statuses 0-3, µs latencies with a tail.
    pub(crate) fn archive(path: &std::path::Path, count: u64) {
        let mut writer = ArchiveWriter::open(path, 1).unwrap();
        let ring = RingInfo::synthetic(1, 1 << 30, 1_000, &["market", "limit", "cancel"]);
        let mut state = 1u64;
        let batch: Vec<Decoded> = (0..count)
            .map(|i| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let kind = (i % 3) as u8;
                Decoded {
                    position: i as u32,
                    kind,
                    class: 0,
                    probability: [1.0, 0.1, 0.5][kind as usize],
                    record: Record::new(
                        i,
                        1_000_000 + i * 10_000,
                        (state >> 60) as u8 & 3,
                        ((state >> 33) % 3_000) as i32 + 10,
                    ),
                }
            })
            .collect();
        writer.append(&ring, &batch).unwrap();
    }

    /// The parallel fold over pieces sees exactly what a serial pass sees: per kind and
    /// status, the records, the weight and the sum of latencies; the progress counts every
    /// record read.
    #[test]
    fn fold_equals_a_serial_pass() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fold.archive");
        archive(&path, 3 * PIECE + 12_345);
        let sources = Sources::open(&[path.display().to_string()]).unwrap();
        let filter = Filter::parse(&FilterArgs {
            status: vec![0, 2, 3],
            ..FilterArgs::default()
        })
        .unwrap();
        type Totals = std::collections::BTreeMap<(u8, u8), (u64, u128, i64)>;
        let mut serial = Totals::new();
        sources.sources[0]
            .for_each(|s| {
                if s.status != 1 {
                    let entry = serial.entry((s.kind, s.status)).or_default();
                    entry.0 += 1;
                    entry.1 += weight_of(s.probability, false);
                    entry.2 += s.delta_ns;
                }
            })
            .unwrap();
        let mut progress = Progress::new("test", sources.len_hint());
        let folded = fold(
            &sources,
            &filter,
            &mut progress,
            Fields::StatusAndDelta,
            Totals::new,
            |totals, source, s, weight| {
                assert_eq!(source, 0);
                let entry = totals.entry((s.kind, s.status)).or_default();
                entry.0 += 1;
                entry.1 += weight;
                entry.2 += s.delta_ns;
            },
            |totals, other| {
                for (key, (n, w, sum)) in other {
                    let entry = totals.entry(key).or_default();
                    entry.0 += n;
                    entry.1 += w;
                    entry.2 += sum;
                }
            },
        )
        .unwrap();
        assert_eq!(folded, serial);
        assert_eq!(progress.done(), 3 * PIECE + 12_345);
    }

    /// A fold that reads status and delta alone still selects by trace id and time: the
    /// filter's fields are read for it (else every sample's would be 0, and none kept).
    #[test]
    fn a_fold_of_fewer_fields_keeps_the_fields_its_filter_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fields.archive");
        archive(&path, 3 * PIECE + 12_345);
        let sources = Sources::open(&[path.display().to_string()]).unwrap();
        let by_trace = FilterArgs {
            trace: Some(12_345),
            ..FilterArgs::default()
        };
        // The records are 10 us apart from 1 ms after the epoch: a second in, the 99_900th.
        let by_time = FilterArgs {
            since: Some("1970-01-01T00:00:01Z".into()),
            ..FilterArgs::default()
        };
        let before_time = FilterArgs {
            until: Some("1970-01-01T00:00:01Z".into()),
            ..FilterArgs::default()
        };
        let cases = [
            (by_trace, 1),
            (by_time, 3 * PIECE + 12_345 - 99_900),
            (before_time, 99_900),
        ];
        for (args, kept) in cases {
            let filter = Filter::parse(&args).unwrap();
            let mut progress = Progress::new("test", sources.len_hint());
            let folded = fold(
                &sources,
                &filter,
                &mut progress,
                Fields::StatusAndDelta,
                || 0u64,
                |count, _, _, _| *count += 1,
                |count, other| *count += other,
            )
            .unwrap();
            assert_eq!(folded, kept, "{args:?}");
        }
    }
}
