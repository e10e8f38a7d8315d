//! Opening many files (glob patterns), naming their kinds consistently, and filtering records.

use crate::Failure;
use crate::budget::ring_window_limit;
use crate::cli::FilterArgs;
use crate::duration::parse_latency_ns;
use crate::merge::{Merger, Stream, WINDOW, Window};
use crate::newest::Newest;
use crate::progress::Progress;
use crate::ring_order;
use crate::time::{now_unix_ns, parse_time};
use ringlat_read::archive::{ArchiveReader, ArchivedRecord};
use ringlat_read::{Fields, Sample, Source};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// The files of one command, with one label table across them (kind names are matched by
/// name, so rings and archives from several hosts group together).
pub(crate) struct Sources {
    pub sources: Vec<Source>,
    /// The path of each source (patterns expanded).
    pub paths: Vec<String>,
    /// Distinct kind labels across files.
    pub labels: Vec<String>,
    /// Per source, per kind id: index into `labels`.
    label_of: Vec<[u16; 256]>,
    /// Per source: ns per unit of its records' deltas as stored (1 for archives).
    pub unit_ns: Vec<i64>,
    /// Kind names declared by some file, and the ids they were declared with.
    declared: Vec<(String, u8)>,
}

thread_local! {
    /// Set while a command runs again because its passes over a ring read in place failed
    /// (see [`again_from_copies_if_rewritten`]): every ring the thread opens is read from a
    /// copy. Per thread: a command opens its files on the thread that runs it.
    static READ_RINGS_FROM_A_COPY: Cell<bool> = const { Cell::new(false) };
}

/// Runs a reading command (`run`) once more if its passes over a ring read in place failed
/// because the ring was written to under them (a writer came back, or a consumer freed slots
/// that the writer wrote again), every ring then read from a copy taken when it is opened
/// ([`Source::read_from_a_copy`]); one line on stderr says so. For the readers only: they
/// fail so before writing anything (cat measures its rings' lateness in a pass before its
/// first line, and a failure of the pass it prints from is not retried: `end_printed_pass`;
/// the others print or rename their output once their passes are done).
pub(crate) fn again_from_copies_if_rewritten(
    run: impl Fn() -> Result<(), Failure>,
) -> Result<(), Failure> {
    match run() {
        Err(Failure::Rewritten(message)) => {
            eprintln!("ringcat: {message}: reading it again from a copy");
            READ_RINGS_FROM_A_COPY.set(true);
            let result = run();
            READ_RINGS_FROM_A_COPY.set(false);
            result
        }
        result => result,
    }
}

/// The error of a command that needs a ring, given `path`: "this is an archive, not a
/// ring" when it is one, else `error` as it is.
pub(crate) fn explain_archive(path: &std::path::Path, error: ringlat_read::ReadError) -> Failure {
    match Source::open(path) {
        Ok(Source::Archive(_)) => Failure::File(format!(
            "{}: this is an archive, not a ring (drain reads rings; read an archive with cat, \
             pct, slice or plot)",
            path.display()
        )),
        _ => error.into(),
    }
}

/// Expands glob patterns (a pattern that matches nothing is an error naming it).
pub(crate) fn expand(patterns: &[String]) -> Result<Vec<String>, Failure> {
    let mut files = Vec::new();
    for pattern in patterns {
        let is_pattern = pattern.contains(['*', '?', '[']);
        if !is_pattern {
            files.push(pattern.clone());
            continue;
        }
        let matches: Vec<String> = glob::glob(pattern)
            .map_err(|e| Failure::Usage(format!("bad pattern '{pattern}': {e}")))?
            .filter_map(Result::ok)
            .map(|p| p.display().to_string())
            .collect();
        if matches.is_empty() {
            return Err(Failure::File(format!("{pattern}: no file matches")));
        }
        files.extend(matches);
    }
    Ok(files)
}

impl Sources {
    pub(crate) fn open(patterns: &[String]) -> Result<Self, Failure> {
        let mut sources = Vec::new();
        let paths = expand(patterns)?;
        for path in &paths {
            let source = Source::open(path)?;
            if READ_RINGS_FROM_A_COPY.get() {
                source.read_from_a_copy();
            }
            sources.push(source);
        }
        let mut labels: Vec<String> = Vec::new();
        let mut label_of = Vec::new();
        let mut unit_ns = Vec::new();
        let mut declared: Vec<(String, u8)> = Vec::new();
        for source in &sources {
            for kind in 0..=255u8 {
                let name = match source {
                    Source::Ring { file, .. } => file.kind_name(kind),
                    Source::Archive(archive) => archive.kind_name(kind),
                };
                if let Some(name) = name
                    && !declared.contains(&(name.clone(), kind))
                {
                    declared.push((name, kind));
                }
            }
            let mut table = [0u16; 256];
            for (kind, slot) in table.iter_mut().enumerate() {
                let label = source.kind_label(kind as u8);
                *slot = match labels.iter().position(|l| *l == label) {
                    Some(index) => index as u16,
                    None => {
                        labels.push(label);
                        (labels.len() - 1) as u16
                    }
                };
            }
            label_of.push(table);
            unit_ns.push(source.ring().map_or(1, |r| r.delta_unit().nanos() as i64));
        }
        Ok(Sources {
            sources,
            paths,
            labels,
            label_of,
            unit_ns,
            declared,
        })
    }

    /// Says on stderr how many slots of the rings read were passed over: in flight when
    /// they were read, or consumed and overwritten as they were read (nothing when none).
    pub(crate) fn report_ring_slots_skipped(&self) {
        let in_flight: u64 = self.sources.iter().map(Source::in_flight_skipped).sum();
        if in_flight > 0 {
            eprintln!("ringcat: {in_flight} slot(s) were being written and were skipped");
        }
        let rewritten: u64 = self.sources.iter().map(Source::rewritten_skipped).sum();
        if rewritten > 0 {
            eprintln!(
                "ringcat: {rewritten} record(s) were consumed and overwritten as the ring was read, and were skipped"
            );
        }
    }

    /// Refuses a kind selector that names no declared kind (by name or id), naming the
    /// known kinds: a typo must not select nothing and pass.
    pub(crate) fn check_kind(&self, selector: &str) -> Result<(), Failure> {
        let known = self
            .declared
            .iter()
            .any(|(name, id)| name == selector || selector.parse::<u8>().ok() == Some(*id));
        if known {
            return Ok(());
        }
        let mut names: Vec<String> = self
            .declared
            .iter()
            .map(|(name, id)| format!("{name} ({id})"))
            .collect();
        names.dedup();
        Err(Failure::Usage(format!(
            "unknown kind '{selector}': the files declare {}",
            if names.is_empty() {
                "no kinds".to_string()
            } else {
                names.join(", ")
            }
        )))
    }

    /// The label index of `kind` in source `source`.
    pub(crate) fn label_index(&self, source: usize, kind: u8) -> u16 {
        self.label_of[source][kind as usize]
    }

    /// The kind id a label stands for: the first file's id of that name (a stable colour
    /// per kind across plots).
    pub(crate) fn kind_id_of(&self, index: u16) -> u8 {
        self.label_of
            .iter()
            .find_map(|table| table.iter().position(|l| *l == index))
            .map_or(0, |kind| kind as u8)
    }

    pub(crate) fn label(&self, index: u16) -> &str {
        self.labels.get(index as usize).map_or("?", String::as_str)
    }

    /// Total records the sources hold (for progress).
    pub(crate) fn len_hint(&self) -> u64 {
        self.sources.iter().map(Source::len_hint).sum()
    }

    /// Visits every record that passes `filter`, source by source (not time-ordered; see
    /// [`Sources::collect_by_time`]). `--last` needs [`Sources::selected`].
    pub(crate) fn for_each(
        &self,
        filter: &Filter,
        progress: &mut Progress,
        mut visit: impl FnMut(usize, &Sample),
    ) -> Result<(), Failure> {
        filter.check_kinds(self)?;
        for (index, source) in self.sources.iter().enumerate() {
            let kinds = filter.kinds_for(self, index);
            source.for_each(|sample| {
                progress.tick();
                if filter.keeps(&sample, &kinds) {
                    visit(index, &sample);
                }
            })?;
        }
        Ok(())
    }

    /// Every selected record, oldest first (honours `--last`). Ties in time keep file order
    /// (the files in the order given, then each file's order). With `--last N` it holds at
    /// most N records per file: an archive with a lateness bound is read backwards from the
    /// end of the `--since/--until` range only as far as needed
    /// ([`ArchiveReader::last_records`]). Without `--last` everything is loaded (for
    /// `--reverse`); a forward pass streams instead ([`Sources::merger`]).
    pub(crate) fn collect_by_time(
        &self,
        filter: &Filter,
        progress: &mut Progress,
    ) -> Result<Vec<(usize, Sample)>, Failure> {
        let Some(n) = filter.last else {
            let mut all = Vec::new();
            self.for_each(filter, progress, |source, s| all.push((source, *s)))?;
            all.sort_by_key(|(_, s)| s.nanotime);
            return Ok(all);
        };
        filter.check_kinds(self)?;
        // Per file its newest n, keyed (time, file, order in the file); then the newest n.
        let mut candidates: Vec<(u64, usize, u64, Sample)> = Vec::new();
        for (index, source) in self.sources.iter().enumerate() {
            let kinds = filter.kinds_for(self, index);
            match source {
                Source::Archive(archive) => {
                    let range = archive.entry_range(filter.since, filter.until)?;
                    let newest = archive.last_records(range, n, |record| {
                        progress.tick();
                        filter.keeps(&sample_of(record), &kinds)
                    })?;
                    candidates.extend(
                        newest
                            .into_iter()
                            .map(|(order, r)| (r.nanotime, index, order, sample_of(&r))),
                    );
                }
                Source::Ring { .. } => {
                    // Backwards from the end, as an archive is read, once a first pass
                    // measured the ring's lateness bound (which a ring does not carry).
                    if n == 0 {
                        continue;
                    }
                    let lateness = ring_order::measure(source, filter, &kinds)?.lateness;
                    let mut high = source.begin_scan()?;
                    let mut newest = Newest::new(n);
                    let mut oldest_read = u64::MAX;
                    while high > 0 {
                        let low = high.saturating_sub(FEED_CHUNK);
                        source.scan_fields(
                            low..high,
                            &mut Vec::new(),
                            Fields::All,
                            |unit, sample, _| {
                                progress.tick();
                                if filter.keeps(sample, &kinds) {
                                    oldest_read = oldest_read.min(sample.nanotime);
                                    newest.offer(unit, sample, |sample| *sample);
                                }
                            },
                        )?;
                        high = low;
                        // No record before is newer than the oldest read by more than the
                        // bound: none is newer than the oldest kept.
                        if newest.full_at().is_some_and(|oldest_kept| {
                            oldest_read.saturating_add(lateness) < oldest_kept
                        }) {
                            break;
                        }
                    }
                    source.end_scan()?;
                    candidates.extend(
                        newest
                            .into_sorted()
                            .into_iter()
                            .map(|(time, order, sample)| (time, index, order, sample)),
                    );
                }
            }
        }
        candidates.sort_by_key(|(time, index, order, _)| (*time, *index, *order));
        let first = candidates.len().saturating_sub(n);
        Ok(candidates
            .into_iter()
            .skip(first)
            .map(|(_, index, _, sample)| (index, sample))
            .collect())
    }

    /// The selected records of every file, merged by time as they stream (see
    /// [`crate::merge`]): an archive is read from the start of its `--since/--until` range
    /// ([`ArchiveReader::entry_range`]) through a reorder window (exact with the archive's
    /// lateness bound, else [`WINDOW`] records); a ring likewise through an exact window of
    /// the bound a first pass measures ([`ring_order::measure`]; read whole and sorted where
    /// that window would hold too many records).
    /// Memory does not grow with archive size. `--last` is not applied (see
    /// [`Sources::collect_by_time`]).
    /// `read` counts the records read (archive entries, ring records) as the merge goes,
    /// out of the total returned beside the merger (for a progress bar).
    pub(crate) fn merger<'a>(
        &'a self,
        filter: &'a Filter,
        read: &'a AtomicU64,
    ) -> Result<(Merger<FileFeed<'a>>, u64), Failure> {
        filter.check_kinds(self)?;
        let mut streams = Vec::new();
        let mut total = 0;
        for index in 0..self.sources.len() {
            let (mut feed, window) = self.feed(index, filter)?;
            total += match &feed.feed {
                Feed::Archive { next, end, .. } | Feed::Ring { next, end, .. } => end - next,
                Feed::Sorted(samples) => samples.len() as u64,
            };
            feed.read = Some(read);
            feed.printed = true;
            streams.push(Stream::new(feed, window));
        }
        Ok((Merger::new(streams), total))
    }

    /// The selected records of file `index` in file order, for a streaming pass, and the
    /// window that puts them in time order (see [`Sources::merger`]).
    pub(crate) fn feed<'a>(
        &'a self,
        index: usize,
        filter: &'a Filter,
    ) -> Result<(FileFeed<'a>, Window), Failure> {
        let kinds = filter.kinds_for(self, index);
        let source = &self.sources[index];
        let (feed, window) = match source {
            Source::Archive(archive) => {
                let range = archive.entry_range(filter.since, filter.until)?;
                let window = archive
                    .lateness_bound()?
                    .map_or(Window::Fixed(WINDOW), Window::Exact);
                let feed = Feed::Archive {
                    archive,
                    next: range.start,
                    end: range.end,
                };
                (feed, window)
            }
            Source::Ring { .. } => {
                // A first pass measures how far out of time order the selected records lie;
                // the second streams them through a window of exactly that much, unless that
                // window would hold more records than an exact window may (a long request's
                // guard record carries its start time): then they are read whole and sorted.
                let measured = ring_order::measure(source, filter, &kinds)?;
                if measured.records_in_window > ring_window_limit() {
                    let mut samples = Vec::new();
                    source.for_each(|sample| {
                        if filter.keeps(&sample, &kinds) {
                            samples.push(sample);
                        }
                    })?;
                    // Stable: ties keep ring order.
                    samples.sort_by_key(|s| s.nanotime);
                    (Feed::Sorted(samples.into_iter()), Window::Exact(0))
                } else {
                    let end = source.begin_scan()?;
                    let feed = Feed::Ring {
                        source,
                        next: 0,
                        end,
                        ended: false,
                    };
                    (feed, Window::Exact(measured.lateness))
                }
            }
        };
        Ok((
            FileFeed {
                feed,
                filter,
                kinds,
                read: None,
                printed: false,
            },
            window,
        ))
    }

    /// The selected records with `--last` applied, in no particular order unless `--last`
    /// (then by time); streams when there is no `--last`.
    pub(crate) fn selected(
        &self,
        filter: &Filter,
        progress: &mut Progress,
        mut visit: impl FnMut(usize, &Sample),
    ) -> Result<(), Failure> {
        if filter.last.is_some() {
            for (source, sample) in self.collect_by_time(filter, progress)? {
                visit(source, &sample);
            }
            Ok(())
        } else {
            self.for_each(filter, progress, visit)
        }
    }
}

/// An archived record as a sample.
pub(crate) fn sample_of(record: &ArchivedRecord) -> Sample {
    Sample {
        nanotime: record.nanotime,
        trace_id: record.trace_id,
        delta_ns: record.delta_ns,
        status: record.status,
        kind: record.kind,
        probability: record.probability,
    }
}

/// Units (archive entries, ring positions) per read of a streaming pass.
const FEED_CHUNK: u64 = 16_384;

/// Where one file's records come from in a streaming pass.
pub(crate) enum Feed<'a> {
    /// The entries `next..end` of an archive, read a chunk at a time.
    Archive {
        archive: &'a ArchiveReader,
        next: u64,
        end: u64,
    },
    /// The units `next..end` of a pass over a ring (begun; `ended` once `next` reached
    /// `end`), read a chunk at a time.
    Ring {
        source: &'a Source,
        next: u64,
        end: u64,
        ended: bool,
    },
    /// A ring's records read first and sorted by time: a ring too far out of time order for
    /// an exact window ([`ring_order::measure`]).
    Sorted(std::vec::IntoIter<Sample>),
}

/// One file's selected records, in file order, for [`Merger`].
pub(crate) struct FileFeed<'a> {
    feed: Feed<'a>,
    filter: &'a Filter,
    kinds: [bool; 256],
    /// Counts the records read, if set.
    read: Option<&'a AtomicU64>,
    /// The records go to the output as they are read (`cat`), not to a file renamed into
    /// place once complete (`export`, which may run again from a copy).
    printed: bool,
}

impl crate::merge::Feed for FileFeed<'_> {
    fn refill(&mut self, into: &mut Vec<Sample>) -> Result<bool, Failure> {
        let before = into.len();
        let read = self.read;
        match &mut self.feed {
            Feed::Archive { archive, next, end } => {
                while into.len() == before && *next < *end {
                    let to = (*next + FEED_CHUNK).min(*end);
                    let (filter, kinds) = (self.filter, &self.kinds);
                    archive.for_each_in(*next..to, |record| {
                        let sample = sample_of(&record);
                        if filter.keeps(&sample, kinds) {
                            into.push(sample);
                        }
                    })?;
                    if let Some(read) = read {
                        // Relaxed: a progress count, read on the same thread.
                        read.fetch_add(to - *next, Ordering::Relaxed);
                    }
                    *next = to;
                }
            }
            Feed::Ring {
                source,
                next,
                end,
                ended,
            } => {
                while into.len() == before && *next < *end {
                    let to = (*next + FEED_CHUNK).min(*end);
                    let (filter, kinds) = (self.filter, &self.kinds);
                    source.scan_fields(
                        *next..to,
                        &mut Vec::new(),
                        Fields::All,
                        |_, sample, _| {
                            if filter.keeps(sample, kinds) {
                                into.push(*sample);
                            }
                        },
                    )?;
                    if let Some(read) = read {
                        // Relaxed: a progress count, read on the same thread.
                        read.fetch_add(to - *next, Ordering::Relaxed);
                    }
                    *next = to;
                }
                if *next == *end && !*ended {
                    *ended = true;
                    if self.printed {
                        end_printed_pass(source)?;
                    } else {
                        source.end_scan()?;
                    }
                }
            }
            Feed::Sorted(samples) => {
                into.extend(samples.by_ref().take(FEED_CHUNK as usize));
                if let Some(read) = read {
                    // Relaxed: a progress count, read on the same thread.
                    read.fetch_add((into.len() - before) as u64, Ordering::Relaxed);
                }
            }
        }
        Ok(into.len() > before)
    }
}

/// Ends a pass whose records were printed as they were read: a ring written to under it (a
/// consumer came, and the writer wrote again where it freed) is not read again from a copy,
/// which would print them twice, but fails the command, saying so: what was printed is in
/// time order, but may lack records.
fn end_printed_pass(source: &Source) -> Result<(), Failure> {
    source
        .end_scan()
        .map_err(|error| match Failure::from(error) {
            Failure::Rewritten(message) => Failure::File(format!(
                "{message} while its records were printed: the output may lack some; read it again"
            )),
            failure => failure,
        })
}

/// The filters, parsed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filter {
    kinds: Vec<String>,
    statuses: Vec<u8>,
    trace: Option<u64>,
    since: Option<u64>,
    until: Option<u64>,
    pub last: Option<usize>,
    min_ns: Option<i64>,
    max_ns: Option<i64>,
    /// A `--fail-if` rule's own selector, on top of the command's filters.
    rule_kind: Option<String>,
    rule_status: Option<u8>,
}

impl Filter {
    pub(crate) fn parse(args: &FilterArgs) -> Result<Self, Failure> {
        let now = now_unix_ns();
        let time = |text: &Option<String>| -> Result<Option<u64>, Failure> {
            text.as_deref()
                .map(|t| parse_time(t, now).map_err(Failure::Usage))
                .transpose()
        };
        let latency = |text: &Option<String>| -> Result<Option<i64>, Failure> {
            text.as_deref()
                .map(|t| parse_latency_ns(t, 1e3).map_err(Failure::Usage))
                .transpose()
        };
        Ok(Filter {
            kinds: args.kind.clone(),
            statuses: args.status.clone(),
            trace: args.trace,
            since: time(&args.since)?,
            until: time(&args.until)?,
            last: args.last,
            min_ns: latency(&args.min)?,
            max_ns: latency(&args.max)?,
            rule_kind: None,
            rule_status: None,
        })
    }

    /// True when the filter selects by kind at most (no status, trace, time or latency
    /// bound): only then do population histograms, which know kinds only, match it.
    pub(crate) fn kinds_only(&self) -> bool {
        self.statuses.is_empty()
            && self.trace.is_none()
            && self.since.is_none()
            && self.until.is_none()
            && self.last.is_none()
            && self.min_ns.is_none()
            && self.max_ns.is_none()
            && self.rule_status.is_none()
    }

    /// The fields of a record [`keeps`](Self::keeps) reads: the trace id and the nanotime
    /// only when it selects by them.
    pub(crate) fn fields_read(&self) -> Fields {
        if self.trace.is_some() || self.since.is_some() || self.until.is_some() {
            Fields::All
        } else {
            Fields::StatusAndDelta
        }
    }

    /// True when the filter selects every record.
    pub(crate) fn is_everything(&self) -> bool {
        self.kinds_only() && self.kinds.is_empty() && self.rule_kind.is_none()
    }

    /// This filter narrowed to a rule's kind and status.
    pub(crate) fn narrowed(&self, kind: Option<&str>, status: Option<u8>) -> Filter {
        Filter {
            rule_kind: kind.map(str::to_string),
            rule_status: status,
            ..self.clone()
        }
    }

    /// Every kind selector (`--kind`, a rule's) names a declared kind.
    pub(crate) fn check_kinds(&self, sources: &Sources) -> Result<(), Failure> {
        self.kinds
            .iter()
            .chain(&self.rule_kind)
            .try_for_each(|k| sources.check_kind(k))
    }

    /// Which kind ids of source `index` pass `--kind` (by name or id).
    pub(crate) fn kinds_for(&self, sources: &Sources, index: usize) -> [bool; 256] {
        let mut allowed = [true; 256];
        for (kind, slot) in allowed.iter_mut().enumerate() {
            let label = sources.label(sources.label_index(index, kind as u8));
            let selects = |k: &String| k == label || k.parse::<usize>().ok() == Some(kind);
            *slot = (self.kinds.is_empty() || self.kinds.iter().any(selects))
                && self.rule_kind.as_ref().is_none_or(selects);
        }
        allowed
    }

    /// `--since` and `--until` as UNIX-epoch ns (an archive seeks to them).
    pub(crate) fn time_bounds(&self) -> (Option<u64>, Option<u64>) {
        (self.since, self.until)
    }

    /// Whether `--since`/`--until` keep the instant `unix_ns` (for interval snapshots, which
    /// carry a time but no status, trace or latency).
    pub(crate) fn keeps_time(&self, unix_ns: u64) -> bool {
        self.since.is_none_or(|t| unix_ns >= t) && self.until.is_none_or(|t| unix_ns < t)
    }

    #[inline]
    pub(crate) fn keeps(&self, sample: &Sample, kinds: &[bool; 256]) -> bool {
        kinds[sample.kind as usize]
            && (self.statuses.is_empty() || self.statuses.contains(&sample.status))
            && self.rule_status.is_none_or(|s| s == sample.status)
            && self.trace.is_none_or(|t| t == sample.trace_id)
            && self.since.is_none_or(|t| sample.nanotime >= t)
            && self.until.is_none_or(|t| sample.nanotime < t)
            && self.min_ns.is_none_or(|m| sample.delta_ns >= m)
            && self.max_ns.is_none_or(|m| sample.delta_ns <= m)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use ringlat_read::RingView;

    /// A filter that says it reads status and delta alone keeps a sample exactly when it
    /// keeps the sample with its trace id and time made 0; one that selects by trace id or
    /// time says it reads every field (and would not keep the same samples so).
    #[test]
    fn a_filter_reads_the_fields_it_says_it_reads() {
        let every = FilterArgs::default;
        let filters = [
            every(),
            FilterArgs {
                status: vec![1, 3],
                ..every()
            },
            FilterArgs {
                min: Some("20us".into()),
                max: Some("90us".into()),
                ..every()
            },
            FilterArgs {
                trace: Some(7),
                ..every()
            },
            FilterArgs {
                since: Some("1970-01-01T00:00:01Z".into()),
                ..every()
            },
            FilterArgs {
                until: Some("1970-01-01T00:00:01Z".into()),
                ..every()
            },
        ];
        let samples: Vec<Sample> = (0..200u64)
            .map(|i| Sample {
                nanotime: i * 10_000_000,
                trace_id: i % 9,
                delta_ns: (i as i64 % 11) * 10_000,
                status: (i % 4) as u8,
                kind: 0,
                probability: 1.0,
            })
            .collect();
        let kinds = [true; 256];
        for (n, args) in filters.iter().enumerate() {
            let filter = Filter::parse(args).unwrap();
            let differ = samples.iter().any(|s| {
                filter.keeps(s, &kinds)
                    != filter.keeps(&s.with_only(Fields::StatusAndDelta), &kinds)
            });
            let says = filter.fields_read();
            assert_eq!(
                says == Fields::All,
                differ,
                "filter {n} says it reads {says:?}"
            );
        }
    }

    /// A reader whose passes fail because the ring was rewritten under them runs once more,
    /// its rings read from copies; other failures are not run again, and the next command
    /// reads rings in place again.
    #[test]
    fn a_reader_whose_passes_fail_rewritten_runs_again_from_copies() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("live.ring");
        let ring = ringlat::Ring::builder(&path)
            .kind(0, "op")
            .create()
            .unwrap();
        ring.record(0, 1, 0, std::time::Duration::from_micros(5));
        let files = [path.display().to_string()];
        let in_place = || {
            let sources = Sources::open(&files).unwrap();
            sources.sources[0].begin_scan().unwrap();
            let Source::Ring { view, .. } = &sources.sources[0] else {
                panic!("a ring")
            };
            matches!(view.get(), Some(RingView::InPlace(_)))
        };
        let runs = std::cell::RefCell::new(Vec::new());
        let result = again_from_copies_if_rewritten(|| {
            let read_in_place = in_place();
            runs.borrow_mut().push(read_in_place);
            if read_in_place {
                return Err(Failure::Rewritten("rewritten".into()));
            }
            Ok(())
        });
        assert!(result.is_ok());
        assert_eq!(*runs.borrow(), [true, false]);
        let calls = Cell::new(0);
        let result = again_from_copies_if_rewritten(|| {
            calls.set(calls.get() + 1);
            Err(Failure::File("damaged".into()))
        });
        assert!(matches!(result, Err(Failure::File(_))));
        assert_eq!(calls.get(), 1);
        assert!(in_place());
        drop(ring);
    }
}
