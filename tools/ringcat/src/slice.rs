//! `ringcat slice`: the records above a threshold (a percentile or a latency), most recent or
//! slowest first, and their counts grouped by kind and status: find the window with `pct
//! --window`, then list its outliers and group them by cause here.

use crate::Failure;
use crate::budget::{candidate_limit, distinct_budget};
use crate::cli::{By, SliceArgs, SliceFormat, SliceOrder, Unit};
use crate::duration::parse_latency_ns;
use crate::fold::{self, Fold};
use crate::progress::Progress;
use crate::select::{Filter, Sources};
use crate::style::Style;
use crate::table::{latency, render};
use crate::time::display_time;
use crate::weight::Weights;
use ringlat_read::percentile::{Quantile, Tally, WEIGHT_ONE, weight_of};
use ringlat_read::{Fields, Sample, Source};
use serde_json::json;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::io::Write;

/// The slice of the tail.
pub(crate) struct Tail {
    pub threshold_ns: i64,
    pub threshold_label: String,
    pub population_records: u64,
    pub population_events: f64,
    pub records: u64,
    pub events: f64,
    /// Listed records, in the requested order.
    pub listed: Vec<(usize, Sample)>,
    /// (kind label, status) -> (records, weight).
    pub groups: BTreeMap<(Option<u16>, Option<u8>), (u64, u128)>,
}

pub(crate) struct SliceQuery<'a> {
    pub above: &'a str,
    pub by: By,
    pub limit: usize,
    pub order: SliceOrder,
    pub raw: bool,
}

/// Slices the tail, every pass on every core: one pass with a latency threshold; with a
/// percentile, one pass too when the tally is exact (the distinct values fit its budget): it
/// tallies the values and keeps the records of greatest latency ([`Highest`], within
/// [`candidate_limit`]), among which the tail is listed once the percentile is known. A tally
/// that is not exact takes a second pass for the exact values in the percentile's bins; more
/// tail records than the bound take a pass that lists the tail.
pub(crate) fn slice(
    sources: &Sources,
    filter: &Filter,
    query: &SliceQuery<'_>,
    progress: &mut Progress,
) -> Result<Tail, Failure> {
    let above = query.above.trim();
    let listing = |threshold_ns| TailPass {
        sources,
        by: query.by,
        limit: query.limit,
        order: query.order,
        raw: query.raw,
        threshold_ns,
    };
    let Some(q) = above.strip_prefix(['p', 'P']) else {
        let threshold_ns = parse_latency_ns(above, 1e3).map_err(|e| {
            Failure::Usage(format!(
                "--above '{above}': {e} (use p99, p99.9 or a latency such as 5ms)"
            ))
        })?;
        let acc = list_tail(sources, filter, progress, &listing(threshold_ns))?;
        progress.finish();
        let (records, weight) = acc.population;
        return Ok(acc.tail.into_tail(
            threshold_ns,
            above.to_string(),
            records,
            weight as f64 / WEIGHT_ONE as f64,
        ));
    };
    let quantile = Quantile::parse(q).map_err(Failure::Usage)?;
    let raw = query.raw;
    let weight = |weight: u128| if raw { WEIGHT_ONE } else { weight };
    let budget = distinct_budget();
    // Per thread: between trims, at most twice this many records in `Highest` (all threads
    // together within the candidate bound).
    let limit = candidate_limit::<Candidate>() / 4;
    // Pass 1: the engine's tally (exact when the distinct values fit its budget), and the
    // records of greatest latency, the tail among them unless they overflowed.
    progress.next_pass("reading");
    let fields = pass_fields(sources, filter, &quantile);
    let ((tally, highest), _) = crate::scan::fold_pieces(
        sources,
        filter,
        progress,
        crate::scan::Lanes::Shared,
        fields,
        |_| {
            (
                Tally::with_budget(vec![quantile.clone()], budget),
                Highest::new(&quantile, limit),
            )
        },
        |first| first,
        #[inline(always)]
        |(tally, highest), next, source, unit, s, w| {
            // One group: its packed key is a constant (the direct table's first slot, not
            // a search for the key per record).
            tally.add_packed(0, || (), s.delta_ns, weight(w));
            highest.add(*next, source, unit, s, weight(w));
            *next += 1;
        },
        |(tally, highest), (other_tally, other_highest)| {
            tally.merge(other_tally);
            highest.merge(other_highest);
        },
        |_, later| later,
    )?;
    if tally.is_empty() {
        progress.finish();
        return Err(Failure::File("no records match".into()));
    }
    let selection = crate::pct::complete(
        tally.finish(),
        sources,
        filter,
        progress,
        ringlat_read::Fields::StatusAndDelta,
        |selection, _, s, w| selection.add_packed(0, || (), s.delta_ns, weight(w)),
    )?;
    let rows = selection.finish();
    let Some((_, values, summary)) = rows.first() else {
        progress.finish();
        return Err(Failure::File("no records match".into()));
    };
    let threshold_ns = values[0];
    let pass = listing(threshold_ns);
    let tail = match highest.above(threshold_ns) {
        Some(mut above) => {
            if fields != Fields::All {
                read_other_fields(sources, &mut above)?;
            }
            let mut tail = TailSoFar::default();
            for (position, source, sample, _) in above {
                let source = source as usize;
                let weight = weight_of(sample.probability, raw);
                pass.take(&mut tail, position, source, &sample, weight);
            }
            tail
        }
        None => {
            // More records of great latency than the bound: a pass lists the tail.
            list_tail(sources, filter, progress, &pass)?.tail
        }
    };
    progress.finish();
    Ok(tail.into_tail(
        threshold_ns,
        format!("p{}", quantile.label()),
        summary.records,
        summary.events(),
    ))
}

/// The fields the pass of `slice --above pNN` reads: status and delta alone when every file
/// is a ring and the tail is thin (at most a thousandth of the weight above `quantile`), the
/// listed records' others read after the pass ([`read_other_fields`]): a live ring is read
/// field by field, and the trace id and time of every record cost about a tenth of the pass
/// (0.96x the wall time, p99.9 over a live 2^24-slot ring), while reading a record alone
/// costs about 150 ns (p99 and p98: 1.08x and 1.17x). Every field otherwise: an archive's
/// fields cost nothing unread, and `--last`'s path does not know units.
fn pass_fields(sources: &Sources, filter: &Filter, quantile: &Quantile) -> Fields {
    let all_rings = sources
        .sources
        .iter()
        .all(|source| matches!(source, Source::Ring { .. }));
    // (A hair above a thousandth: 1 - 0.999 is not 0.001 in floats.)
    let thin = 1.0 - quantile.fraction() <= 1.000_001e-3;
    if all_rings && thin && filter.last.is_none() {
        Fields::StatusAndDelta
    } else {
        Fields::All
    }
}

/// Reads the fields of the records `candidates` that their pass did not read (trace id,
/// time), each at its unit, a file at a time in unit order: a later scan of a unit visits the
/// sample the pass visited ([`Source::scan_indexed`]). A record found otherwise (a ring
/// rewritten under the passes) fails as `Rewritten`: the command runs again from a copy.
fn read_other_fields(sources: &Sources, candidates: &mut [Candidate]) -> Result<(), Failure> {
    // (source, unit, place in `candidates`), in unit order a file at a time.
    let mut order: Vec<(usize, u64, usize)> = candidates
        .iter()
        .enumerate()
        .map(|(at, candidate)| (candidate.1 as usize, u64::from(candidate.3), at))
        .collect();
    order.sort_unstable();
    let mut buffer = Vec::new();
    for run in order.chunk_by(|a, b| a.0 == b.0) {
        let index = run[0].0;
        let source = &sources.sources[index];
        source.begin_scan()?;
        for &(_, unit, at) in run {
            let sample = &mut candidates[at].2;
            let mut found = None;
            source.scan_fields(unit..unit + 1, &mut buffer, Fields::All, |_, full, _| {
                found = Some(*full);
            })?;
            match found {
                Some(full)
                    if (full.delta_ns, full.status, full.kind)
                        == (sample.delta_ns, sample.status, sample.kind) =>
                {
                    *sample = full;
                }
                _ => {
                    return Err(Failure::Rewritten(format!(
                        "{}: a record changed between two reads",
                        sources.paths[index]
                    )));
                }
            }
        }
        source.end_scan()?;
    }
    Ok(())
}

/// A pass on every core that lists the tail `pass` describes.
fn list_tail(
    sources: &Sources,
    filter: &Filter,
    progress: &mut Progress,
    pass: &TailPass<'_>,
) -> Result<TailAcc, Failure> {
    let (acc, ()) = fold::parallel(
        sources,
        filter,
        progress,
        "slicing",
        pass,
        None,
        || (),
        |_, _, _, _| {},
        |_, _| {},
    )?;
    Ok(acc)
}

/// The records above `threshold_ns`: counted, grouped, and the `limit` first in `order`.
struct TailPass<'a> {
    sources: &'a Sources,
    by: By,
    limit: usize,
    order: SliceOrder,
    raw: bool,
    threshold_ns: i64,
}

/// A group of the tail: (kind label, status), each when grouped by it.
type GroupOf = (Option<u16>, Option<u8>);

/// A listed record's place in the order: (rank, time, position, source); the greatest first.
type Rank = (i64, u64, u64, usize);

/// The tail records seen so far.
#[derive(Debug, Default)]
struct TailSoFar {
    records: u64,
    weight: u128,
    groups: BTreeMap<GroupOf, (u64, u128)>,
    /// The `limit` greatest ranks (a min-heap: its top is the one to drop next).
    heap: BinaryHeap<Reverse<Rank>>,
    /// The records of the ranks in `heap`, by position.
    kept: BTreeMap<u64, (usize, Sample)>,
}

impl TailSoFar {
    fn merge(&mut self, later: TailSoFar, limit: usize) {
        self.records += later.records;
        self.weight += later.weight;
        for (key, (records, weight)) in later.groups {
            let group = self.groups.entry(key).or_insert((0, 0));
            group.0 += records;
            group.1 += weight;
        }
        self.kept.extend(later.kept);
        for entry in later.heap {
            self.heap.push(entry);
        }
        while self.heap.len() > limit {
            if let Some(Reverse((_, _, dropped, _))) = self.heap.pop() {
                self.kept.remove(&dropped);
            }
        }
    }

    fn into_tail(
        self,
        threshold_ns: i64,
        threshold_label: String,
        population_records: u64,
        population_events: f64,
    ) -> Tail {
        let mut order: Vec<Rank> = self.heap.into_iter().map(|Reverse(e)| e).collect();
        order.sort_by(|a, b| b.cmp(a));
        let listed = order
            .into_iter()
            .filter_map(|(_, _, position, _)| self.kept.get(&position).copied())
            .collect();
        Tail {
            threshold_ns,
            threshold_label,
            population_records,
            population_events,
            records: self.records,
            events: self.weight as f64 / WEIGHT_ONE as f64,
            listed,
            groups: self.groups,
        }
    }
}

/// A [`TailPass`]'s accumulator.
#[derive(Debug)]
struct TailAcc {
    weights: Weights,
    /// The position of the next record.
    next: u64,
    /// Records and weight of every record folded.
    population: (u64, u128),
    tail: TailSoFar,
}

impl TailPass<'_> {
    /// Adds a record known to be above the threshold, found at `position`, of `weight`.
    fn take(
        &self,
        tail: &mut TailSoFar,
        position: u64,
        source: usize,
        sample: &Sample,
        weight: u128,
    ) {
        tail.records += 1;
        tail.weight += weight;
        let key = (
            self.by
                .kind
                .then(|| self.sources.label_index(source, sample.kind)),
            self.by.status.then_some(sample.status),
        );
        let group = tail.groups.entry(key).or_insert((0, 0));
        group.0 += 1;
        group.1 += weight;
        let rank = match self.order {
            SliceOrder::Slowest => sample.delta_ns,
            SliceOrder::Recent => sample.nanotime as i64,
        };
        tail.heap
            .push(Reverse((rank, sample.nanotime, position, source)));
        tail.kept.insert(position, (source, *sample));
        if tail.heap.len() > self.limit
            && let Some(Reverse((_, _, dropped, _))) = tail.heap.pop()
        {
            tail.kept.remove(&dropped);
        }
    }
}

impl Fold for TailPass<'_> {
    type Acc = TailAcc;

    fn init(&self, first: u64) -> TailAcc {
        TailAcc {
            weights: Weights::new(self.raw),
            next: first,
            population: (0, 0),
            tail: TailSoFar::default(),
        }
    }

    #[inline]
    fn fold(&self, acc: &mut TailAcc, source: usize, sample: &Sample) {
        let position = acc.next;
        acc.next += 1;
        acc.population.0 += 1;
        let weight = acc.weights.of(sample.probability);
        acc.population.1 += weight;
        if sample.delta_ns > self.threshold_ns {
            self.take(&mut acc.tail, position, source, sample, weight);
        }
    }

    fn merge(&self, mut earlier: TailAcc, later: TailAcc) -> TailAcc {
        earlier.next = later.next;
        earlier.population.0 += later.population.0;
        earlier.population.1 += later.population.1;
        earlier.tail.merge(later.tail, self.limit);
        earlier
    }
}

/// A record that may be in the tail: (position, source, record).
/// A record kept: (position in the pass's order, source, sample, unit). The source and the
/// unit in 32 bits each, so that a candidate takes 56 bytes, not 64 (`slice --above p99` over
/// a live 2^24-slot ring: 1.04x the time with 64): a unit is read back only of a ring (at most
/// 2^30 slots: [`read_other_fields`]); an archive's unit past 2^32 is kept as `u32::MAX`.
type Candidate = (u64, u32, Sample, u32);

/// The records of greatest latency one thread saw (at most `2 * keep` between trims), and the
/// greatest latency it dropped: every record above that `floor` is kept, so that once the
/// percentile is known, the tail is all here when the floor is not above the percentile.
/// Records carry their position: merges in any order give the same tail.
///
/// `keep` starts small and grows with the weight seen, up to `limit`: the records above a
/// percentile q hold a share 1 - q of the weight, each at least [`WEIGHT_ONE`], so a thread
/// that has seen weight W needs about (1 - q) W / WEIGHT_ONE of them times the threads (its
/// part of the file is about one thread's share). A buffer as large as the bound from the
/// start cost `slice --above p99.9` 8% of its time over 100M records (a buffer of 33 MB a
/// thread filled by every record at first, and trims over all of it). Too small a guess
/// costs only speed: a floor above the percentile sends the listing to another pass.
#[derive(Debug)]
struct Highest {
    keep: usize,
    limit: usize,
    /// Records to keep per unit of weight seen: (1 - q) times the threads, over WEIGHT_ONE.
    per_weight: f64,
    weight_seen: u128,
    kept: Vec<Candidate>,
    /// The greatest latency dropped, if any was.
    floor: Option<i64>,
}

impl Highest {
    /// The fewest records kept after a trim (trims of fewer cost more than they save).
    const FIRST_KEEP: usize = 4096;

    /// For the tail above `quantile`, keeping at most `limit` records after a trim.
    fn new(quantile: &Quantile, limit: usize) -> Self {
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let share = (1.0 - quantile.fraction()).max(0.0);
        Highest {
            keep: Self::FIRST_KEEP.min(limit),
            limit,
            per_weight: share * threads as f64 / WEIGHT_ONE as f64,
            weight_seen: 0,
            kept: Vec::new(),
            floor: None,
        }
    }

    /// Keeping `keep` records after a trim, whatever the weight seen (for tests).
    #[cfg(test)]
    fn fixed(keep: usize) -> Self {
        Highest {
            keep,
            limit: keep,
            per_weight: 0.0,
            weight_seen: 0,
            kept: Vec::new(),
            floor: None,
        }
    }

    #[inline]
    fn add(&mut self, position: u64, source: usize, unit: u64, sample: &Sample, weight: u128) {
        self.weight_seen = self.weight_seen.saturating_add(weight);
        if self.floor.is_some_and(|floor| sample.delta_ns <= floor) {
            return;
        }
        let (source, unit) = (
            u32::try_from(source).unwrap_or(u32::MAX),
            u32::try_from(unit).unwrap_or(u32::MAX),
        );
        self.kept.push((position, source, *sample, unit));
        if self.kept.len() > 2 * self.keep {
            self.trim();
        }
    }

    /// Grows `keep` with the weight seen; then, if more than twice as many records are
    /// held, keeps the `keep` greatest latencies, raising the floor to the greatest one
    /// dropped.
    #[cold]
    fn trim(&mut self) {
        let wanted = (self.weight_seen as f64 * self.per_weight).ceil();
        // A float beyond usize saturates: the limit then holds. Never smaller than before.
        self.keep = (wanted as usize).min(self.limit).max(self.keep);
        if self.kept.len() <= 2 * self.keep {
            return;
        }
        self.kept
            .select_nth_unstable_by_key(self.keep, |c| Reverse(c.2.delta_ns));
        // The greatest of those from `keep` on (the order puts it first).
        let dropped = self.kept[self.keep].2.delta_ns;
        self.floor = Some(self.floor.map_or(dropped, |floor| floor.max(dropped)));
        self.kept.truncate(self.keep);
    }

    fn merge(&mut self, other: Highest) {
        self.floor = match (self.floor, other.floor) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.keep = self.keep.max(other.keep);
        self.weight_seen = self.weight_seen.saturating_add(other.weight_seen);
        self.kept.extend(other.kept);
        if self.kept.len() > 2 * self.keep {
            self.trim();
        }
    }

    /// The records above `threshold_ns`, or `None` when some may have been dropped.
    fn above(self, threshold_ns: i64) -> Option<Vec<Candidate>> {
        if self.floor.is_some_and(|floor| floor > threshold_ns) {
            return None;
        }
        Some(
            self.kept
                .into_iter()
                .filter(|c| c.2.delta_ns > threshold_ns)
                .collect(),
        )
    }
}

pub(crate) fn run(args: &SliceArgs) -> Result<(), Failure> {
    let sources = Sources::open(&args.files)?;
    let filter = Filter::parse(&args.filter)?;
    let mut progress = Progress::new("reading", sources.len_hint());
    let query = SliceQuery {
        above: &args.above,
        by: args.by,
        limit: args.limit,
        order: args.order,
        raw: args.raw,
    };
    crate::population::keep_snapshots_for_slice(&sources, &filter);
    let tail = slice(&sources, &filter, &query, &mut progress)?;
    let counted = crate::population::calls_above(&sources, &filter, tail.threshold_ns)?;
    let text = match args.format {
        SliceFormat::Text => {
            let line = crate::population::slice_line(tail.listed.len(), tail.records, counted);
            let mut text = text(&sources, &tail, args.by, args.order, args.unit);
            // After the threshold and tail lines.
            let at = text.find("\n\n").map_or(0, |i| i + 1);
            text.insert_str(at, &line);
            text
        }
        SliceFormat::Json => {
            let mut value = json(&sources, &tail);
            if let serde_json::Value::Object(map) = &mut value {
                map.insert(
                    "calls_above".into(),
                    counted.map_or(
                        serde_json::Value::Null,
                        |(above, calls)| json!({"above": above, "calls": calls}),
                    ),
                );
            }
            value.to_string() + "\n"
        }
        SliceFormat::Csv => {
            let mut text = crate::output::csv_header(&sources) + "\n";
            for (source, sample) in &tail.listed {
                text.push_str(&crate::output::csv_line(&sources, *source, sample));
                text.push('\n');
            }
            text
        }
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

pub(crate) fn text(
    sources: &Sources,
    tail: &Tail,
    by: By,
    order: SliceOrder,
    unit: Unit,
) -> String {
    let style = Style::stdout();
    let share = |part: f64, whole: f64| {
        if whole > 0.0 {
            100.0 * part / whole
        } else {
            0.0
        }
    };
    let mut text = format!(
        "threshold  {} = {} {}  (over {} records, {:.0} events)\n",
        tail.threshold_label,
        latency(tail.threshold_ns, unit),
        unit.suffix(),
        tail.population_records,
        tail.population_events
    );
    text.push_str(&format!(
        "tail       {} records above it, {:.0} events ({:.2}% of events)\n\n",
        tail.records,
        tail.events,
        share(tail.events, tail.population_events)
    ));
    let heading = match order {
        SliceOrder::Slowest => "slowest",
        SliceOrder::Recent => "most recent",
    };
    text.push_str(&style.bold(&format!("{heading} {}:", tail.listed.len())));
    text.push('\n');
    let mut rows = vec![
        [
            "time",
            "kind",
            "trace_id",
            "status",
            &format!("latency ({})", unit.suffix()),
            "p",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for (source, sample) in &tail.listed {
        rows.push(vec![
            display_time(sample.nanotime),
            sources
                .label(sources.label_index(*source, sample.kind))
                .to_string(),
            sample.trace_id.to_string(),
            sample.status.to_string(),
            latency(sample.delta_ns, unit),
            sample.probability.to_string(),
        ]);
    }
    text.push_str(&render(&rows, |h| style.dim(h)));
    let by_label = match (by.kind, by.status) {
        (true, true) => "kind and status",
        (true, false) => "kind",
        (false, true) => "status",
        (false, false) => "nothing",
    };
    text.push('\n');
    text.push_str(&style.bold(&format!("tail by {by_label}:")));
    text.push('\n');
    let mut header = Vec::new();
    if by.kind {
        header.push("kind".to_string());
    }
    if by.status {
        header.push("status".to_string());
    }
    if header.is_empty() {
        header.push(String::new());
    }
    header.extend(["records", "events", "share"].map(String::from));
    let mut groups: Vec<_> = tail.groups.iter().collect();
    groups.sort_by_key(|group| Reverse(group.1.1));
    let mut rows = vec![header];
    for ((kind, status), (records, weight)) in groups {
        let mut row = Vec::new();
        if let Some(kind) = kind {
            row.push(sources.label(*kind).to_string());
        }
        if let Some(status) = status {
            row.push(status.to_string());
        }
        if row.is_empty() {
            row.push("all".into());
        }
        let events = *weight as f64 / WEIGHT_ONE as f64;
        row.push(records.to_string());
        row.push(format!("{events:.0}"));
        row.push(format!("{:.1}%", share(events, tail.events)));
        rows.push(row);
    }
    text.push_str(&render(&rows, |h| style.dim(h)));
    text
}

fn json(sources: &Sources, tail: &Tail) -> serde_json::Value {
    json!({
        "threshold": {"label": tail.threshold_label, "ns": tail.threshold_ns},
        "population": {"records": tail.population_records, "events": tail.population_events},
        "tail": {"records": tail.records, "events": tail.events},
        "listed": tail
            .listed
            .iter()
            .map(|(source, s)| crate::output::json_value(sources, *source, s))
            .collect::<Vec<_>>(),
        "groups": tail.groups.iter().map(|((kind, status), (records, weight))| json!({
            "kind": kind.map(|k| sources.label(k).to_string()),
            "status": status,
            "records": records,
            "events": *weight as f64 / WEIGHT_ONE as f64,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::fold::chunked;
    use crate::fold::testdata::{archives, cuts};
    use ringlat_read::percentile::{DISTINCT_BUDGET, Histograms};

    fn assert_same(a: &TailSoFar, b: &TailSoFar, what: &str) {
        assert_eq!(a.records, b.records, "{what}");
        assert_eq!(a.weight, b.weight, "{what}");
        assert_eq!(a.groups, b.groups, "{what}");
        let listed = |t: &TailSoFar| {
            let mut ranks: Vec<Rank> = t.heap.iter().map(|Reverse(r)| *r).collect();
            ranks.sort();
            let records: Vec<(usize, Sample)> = ranks.iter().map(|r| t.kept[&r.2]).collect();
            (ranks, records, t.kept.len())
        };
        assert_eq!(listed(a), listed(b), "{what}");
    }

    fn passes(sources: &Sources) -> Vec<TailPass<'_>> {
        let mut passes = Vec::new();
        for order in [SliceOrder::Slowest, SliceOrder::Recent] {
            for (kind, status) in [(false, false), (true, true), (false, true)] {
                for limit in [0, 1, 7, 100_000] {
                    passes.push(TailPass {
                        sources,
                        by: By { kind, status },
                        limit,
                        order,
                        raw: limit == 7,
                        threshold_ns: 0,
                    });
                }
            }
        }
        passes
    }

    /// A scrambled run of `n` records, latencies 0..n ns, weight one each, into `highest`.
    /// A candidate takes 56 bytes (64 cost `slice --above p99` 1.04x the time).
    #[test]
    fn a_candidate_takes_56_bytes() {
        assert!(std::mem::size_of::<Candidate>() <= 56);
    }

    fn add_scrambled(highest: &mut Highest, n: u64) {
        for position in 0..n {
            let sample = Sample {
                nanotime: position,
                trace_id: position,
                // 7919 is prime, so prime to n: every latency once.
                delta_ns: ((position * 7919) % n) as i64,
                status: 0,
                kind: 0,
                probability: 1.0,
            };
            highest.add(position, 0, position, &sample, WEIGHT_ONE);
        }
    }

    #[test]
    fn highest_grows_what_it_keeps_with_the_weight_and_keeps_the_tail() {
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let n = 1_000_000;
        let mut highest = Highest::new(&Quantile::parse("99").unwrap(), 1 << 30);
        add_scrambled(&mut highest, n);
        // Grown at trims towards 1% of the weight seen, times the threads: at most 10,000
        // a thread after all of it.
        assert!(highest.keep > Highest::FIRST_KEEP, "keep {}", highest.keep);
        assert!(highest.keep <= 10_000 * threads, "keep {}", highest.keep);
        assert!(highest.floor.is_some(), "records were dropped");
        // The 1% of greatest latency (p99 of 0..n is 989,999: above it 10,000 records).
        let threshold = 989_999;
        let above = highest.above(threshold).expect("the whole tail kept");
        let mut latencies: Vec<i64> = above.iter().map(|c| c.2.delta_ns).collect();
        latencies.sort_unstable();
        assert_eq!(latencies, (threshold + 1..n as i64).collect::<Vec<_>>());
    }

    #[test]
    fn highest_at_its_limit_says_the_tail_may_be_incomplete() {
        let mut highest = Highest::new(&Quantile::parse("99").unwrap(), 1_000);
        add_scrambled(&mut highest, 1_000_000);
        assert_eq!(highest.keep, 1_000, "never past the limit");
        assert!(
            highest.above(989_999).is_none(),
            "10,000 records above, 2,000 at most kept"
        );
    }

    /// The listing, grouping and counts of one serial walk equal a brute force over all the
    /// records (ties in latency and time broken by position: the later record first), and a
    /// walk cut into chunks and merged gives the same.
    #[test]
    fn the_tail_pass_matches_a_brute_force_and_merges_exactly() {
        let (_dir, sources, records) = archives(&[900, 700], 40, 1);
        for threshold_ns in [-5_000, 10_000, 30_000, 40_000] {
            for mut pass in passes(&sources) {
                pass.threshold_ns = threshold_ns;
                let what = format!(
                    "{threshold_ns} {:?} {:?} {}",
                    pass.order, pass.by, pass.limit
                );
                let serial = chunked(&pass, &records, &[]);
                // Brute force.
                let mut above: Vec<(Rank, usize, Sample)> = Vec::new();
                let mut groups: BTreeMap<GroupOf, (u64, u128)> = BTreeMap::new();
                let mut weight = 0u128;
                for (position, (source, s)) in records.iter().enumerate() {
                    if s.delta_ns <= threshold_ns {
                        continue;
                    }
                    let w = weight_of(s.probability, pass.raw);
                    weight += w;
                    let key = (
                        pass.by.kind.then(|| sources.label_index(*source, s.kind)),
                        pass.by.status.then_some(s.status),
                    );
                    let group = groups.entry(key).or_insert((0, 0));
                    group.0 += 1;
                    group.1 += w;
                    let rank = match pass.order {
                        SliceOrder::Slowest => s.delta_ns,
                        SliceOrder::Recent => s.nanotime as i64,
                    };
                    above.push(((rank, s.nanotime, position as u64, *source), *source, *s));
                }
                assert_eq!(serial.tail.records, above.len() as u64, "{what}");
                assert_eq!(serial.tail.weight, weight, "{what}");
                assert_eq!(serial.tail.groups, groups, "{what}");
                assert_eq!(serial.population.0, records.len() as u64);
                above.sort_by_key(|entry| Reverse(entry.0));
                above.truncate(pass.limit);
                let expected: Vec<(usize, Sample)> =
                    above.iter().map(|(_, source, s)| (*source, *s)).collect();
                let tail = chunked(&pass, &records, &[])
                    .tail
                    .into_tail(0, String::new(), 0, 0.0);
                assert_eq!(tail.listed, expected, "{what}");
                for cut in cuts(records.len()) {
                    let merged = chunked(&pass, &records, &cut);
                    assert_eq!(merged.population, serial.population, "{what}");
                    assert_eq!(merged.next, records.len() as u64);
                    assert_same(&merged.tail, &serial.tail, &format!("{what} cut {cut:?}"));
                }
            }
        }
    }

    /// On both cores over several pieces of two files (`fold::parallel`, positions with gaps
    /// between pieces), the listing and candidate passes list, count and group exactly what
    /// one serial walk does, and the tally's percentile equals the two-pass engine's: a merge
    /// out of order or a position that breaks the records' order fails here.
    #[test]
    fn the_passes_on_both_cores_equal_a_serial_walk() {
        let (_dir, sources, records) = archives(&[150_000, 20_000], 3_000, 3);
        let filter = Filter::default();
        let mut progress = Progress::new("test", 0);
        // p10: most records are in the tail, among them ties in time across pieces (the records
        // are 7 to an instant, and a piece holds 2^17 of them).
        let quantile = Quantile::parse("10").unwrap();
        let mut pass1 = Histograms::new(vec![quantile.clone()]);
        for (_, s) in &records {
            pass1.add((), s.delta_ns, weight_of(s.probability, false));
        }
        let mut pass2 = pass1.plan();
        for (_, s) in &records {
            pass2.add(&(), s.delta_ns, weight_of(s.probability, false));
        }
        let threshold_ns = pass2.finish()[0].1[0];
        for budget in [usize::MAX, DISTINCT_BUDGET, 10] {
            let (_, tally) = fold::parallel(
                &sources,
                &filter,
                &mut progress,
                "test",
                &fold::Nothing,
                None,
                || Tally::with_budget(vec![quantile.clone()], budget),
                |tally, _, s, w| tally.add((), s.delta_ns, w),
                Tally::merge,
            )
            .unwrap();
            let mut selection = tally.finish();
            assert!(budget > 10 || !selection.is_complete());
            assert!(budget < usize::MAX || selection.is_complete());
            if !selection.is_complete() {
                for (_, s) in &records {
                    selection.add(&(), s.delta_ns, weight_of(s.probability, false));
                }
            }
            assert_eq!(selection.finish()[0].1[0], threshold_ns, "budget {budget}");
        }
        for listing in passes(&sources) {
            let what = format!("{:?} {:?} {}", listing.order, listing.by, listing.limit);
            let pass = TailPass {
                threshold_ns,
                ..listing
            };
            let serial = chunked(&pass, &records, &[]);
            let (on_both, ()) = fold::parallel(
                &sources,
                &filter,
                &mut progress,
                "test",
                &pass,
                None,
                || (),
                |_, _, _, _| {},
                |_, _| {},
            )
            .unwrap();
            assert_eq!(on_both.population, serial.population, "{what}");
            let expected = serial.tail.into_tail(0, String::new(), 0, 0.0);
            let tail = on_both.tail.into_tail(0, String::new(), 0, 0.0);
            assert!(
                tail.listed == expected.listed,
                "{what}: the listings differ"
            );
            assert_eq!(tail.groups, expected.groups, "{what}");
            assert_eq!(
                (tail.records, tail.events),
                (expected.records, expected.events)
            );
            // The greatest latencies kept by each thread, merged: the tail unless a floor
            // rose above the threshold.
            for keep in [0, 10, 1_000, 200_000] {
                let ((highest, ()), _) = crate::scan::fold_pieces(
                    &sources,
                    &filter,
                    &mut progress,
                    crate::scan::Lanes::Shared,
                    Fields::All,
                    |_| (Highest::fixed(keep), ()),
                    |first| first,
                    |(highest, ()), next, source, unit, s, w| {
                        highest.add(*next, source, unit, s, w);
                        *next += 1;
                    },
                    |(highest, ()), (other, ())| highest.merge(other),
                    |_, later| later,
                )
                .unwrap();
                let Some(above) = highest.above(threshold_ns) else {
                    assert!(keep < expected.records as usize, "{what}: keep {keep}");
                    continue;
                };
                assert!(keep > 0, "{what}: nothing kept, yet complete");
                let mut tail = TailSoFar::default();
                for (position, source, sample, _) in above {
                    let source = source as usize;
                    let weight = weight_of(sample.probability, pass.raw);
                    pass.take(&mut tail, position, source, &sample, weight);
                }
                let tail = tail.into_tail(0, String::new(), 0, 0.0);
                assert!(
                    tail.listed == expected.listed,
                    "{what}: keep {keep} lists otherwise"
                );
                assert_eq!(tail.groups, expected.groups, "{what}: keep {keep}");
            }
        }
    }
}
