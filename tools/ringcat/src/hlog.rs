//! `ringcat pct --format hlog`: the population histograms as an HdrHistogram interval log (V2
//! compressed histograms, one tagged line per kind and interval), which HdrHistogram's own tools
//! read (HistogramLogProcessor, HdrHistogramVisualizer, the `hdrhistogram` crate).
//!
//! An archive gives one interval per drain snapshot (`ringcat drain --interval`): from the
//! previous snapshot of the same ring (the first one: the archive's first record of that time
//! or later, else the snapshot itself, with a zero duration). A ring gives one interval, its whole
//! life (creation to now). Each population bucket is recorded at its midpoint (exact below
//! 256 ns), so values keep the population's 0.4% resolution; calls beyond the histogram's range
//! (over 2^42 ns) and negative deltas are not in the log (their counts are in `pct`'s output).
//! Latencies are in nanoseconds; the log's MaxValueDivisor line says so for the tools
//! (`--outputValueUnitRatio 1e6` shows milliseconds in HistogramLogProcessor).

use crate::Failure;
use crate::select::{Filter, Sources};
use hdrhistogram::Histogram;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use ringlat_read::Source;
use ringlat_read::population::KindPopulation;
use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One interval of one kind.
struct Interval {
    start_unix_ns: u64,
    end_unix_ns: u64,
    tag: String,
    histogram: Histogram<u64>,
}

fn histogram_of(population: &KindPopulation) -> Result<Option<Histogram<u64>>, Failure> {
    let Some(source) = population.histogram.as_ref() else {
        return Ok(None);
    };
    let mut histogram = Histogram::<u64>::new(3)
        .map_err(|e| Failure::Output(std::io::Error::other(e.to_string())))?;
    for (low, high, count) in source.buckets() {
        let value = if high - low <= 1 {
            low
        } else {
            low + (high - low) / 2
        };
        histogram
            .record_n(value.max(1), count)
            .map_err(|e| Failure::Output(std::io::Error::other(e.to_string())))?;
    }
    Ok(Some(histogram))
}

/// The intervals of every selected kind of every source, by start time.
fn intervals(sources: &Sources, filter: &Filter) -> Result<Vec<Interval>, Failure> {
    let mut intervals = Vec::new();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    for (index, source) in sources.sources.iter().enumerate() {
        let selected = filter.kinds_for(sources, index);
        let mut push = |start: u64, end: u64, population: &KindPopulation| -> Result<(), Failure> {
            if !selected[usize::from(population.kind)] || !filter.keeps_time(end) {
                return Ok(());
            }
            if let Some(histogram) = histogram_of(population)? {
                let label = sources.label(sources.label_index(index, population.kind));
                intervals.push(Interval {
                    start_unix_ns: start.min(end),
                    end_unix_ns: end,
                    // HdrHistogram tags hold no spaces or commas.
                    tag: label.replace([' ', ',', '\t'], "_"),
                    histogram,
                });
            }
            Ok(())
        };
        match source {
            Source::Ring { file, .. } => {
                for population in file.population() {
                    push(file.created_unix_ns(), now, &population)?;
                }
            }
            Source::Archive(archive) => {
                let mut previous: BTreeMap<(u64, u64), u64> = BTreeMap::new();
                for snapshot in archive.snapshot_deltas()? {
                    let start = previous
                        .insert(snapshot.ring, snapshot.time_unix_ns)
                        .unwrap_or(snapshot.time_unix_ns);
                    for population in &snapshot.kinds {
                        push(start, snapshot.time_unix_ns, population)?;
                    }
                }
            }
        }
    }
    intervals.sort_by_key(|i| (i.start_unix_ns, i.end_unix_ns));
    Ok(intervals)
}

/// Writes the interval log of `sources` to `out`; returns the intervals written.
pub(crate) fn write(
    sources: &Sources,
    filter: &Filter,
    out: &mut impl Write,
) -> Result<usize, Failure> {
    let intervals = intervals(sources, filter)?;
    let start = intervals.first().map_or(0, |i| i.start_unix_ns);
    let start_time = UNIX_EPOCH + Duration::from_nanos(start);
    let mut serializer = V2DeflateSerializer::new();
    let mut builder = IntervalLogWriterBuilder::new();
    builder
        .add_comment("ringlat population histograms: latencies in ns, one tag per kind")
        .with_start_time(start_time)
        .with_base_time(start_time)
        .with_max_value_divisor(1e6);
    let mut log = builder.begin_log_with(&mut *out, &mut serializer)?;
    for interval in &intervals {
        let tag = Tag::new(&interval.tag);
        log.write_histogram(
            &interval.histogram,
            Duration::from_nanos(interval.start_unix_ns - start),
            Duration::from_nanos(interval.end_unix_ns - interval.start_unix_ns),
            tag,
        )
        .map_err(|e| Failure::Output(std::io::Error::other(format!("{e:?}"))))?;
    }
    Ok(intervals.len())
}
