//! `ringcat cat`: records from rings and archives, merged by time (`-n` the last N,
//! `--reverse` newest first); or follow a live ring or a growing archive, starting with the
//! last N, like `tail -f` and `journalctl -f`.

use crate::Failure;
use crate::cli::{CatArgs, RecordFormat, Unit};
use crate::merge::{EXACT_WINDOW_CAP, WINDOW};
use crate::output::{JsonLines, csv_header, csv_line, text_header, text_line, unit_for};
use crate::progress::Progress;
use crate::select::{Filter, Sources, sample_of};
use ringlat_read::archive::ArchiveReader;
use ringlat_read::{Follower, RingFile, Sample, WriterState};
use std::collections::VecDeque;
use std::io::{BufWriter, IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Records `-f` starts with when `-n` is not given (as `tail -f` and `journalctl -f`).
const FOLLOW_LINES: usize = 10;

pub(crate) fn run(args: &CatArgs) -> Result<(), Failure> {
    let sources = Sources::open(&args.files)?;
    let mut filter_args = args.filter.clone();
    if args.lines.is_some() {
        filter_args.last = args.lines;
    }
    let filter = Filter::parse(&filter_args)?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    if args.follow {
        return follow(args, &sources, &filter, &mut out);
    }
    if filter.last.is_some() || args.reverse {
        print_collected(args, &sources, &filter, &mut out)?;
    } else {
        print_streaming(args, &sources, &filter, &mut out)?;
    }
    sources.report_ring_slots_skipped();
    Ok(())
}

/// `--last` (at most N records) and `--reverse`: the records are collected, then printed.
fn print_collected(
    args: &CatArgs,
    sources: &Sources,
    filter: &Filter,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let mut progress = Progress::new("reading", sources.len_hint());
    let mut records = sources.collect_by_time(filter, &mut progress)?;
    progress.finish();
    if args.reverse {
        records.reverse();
    }
    let unit = args
        .unit
        .unwrap_or_else(|| unit_for(records.iter().map(|(_, s)| s.delta_ns)));
    let mut printer = Printer::new(sources, args.format, unit);
    printer.header(out)?;
    for (source, sample) in &records {
        printer.line(out, *source, sample)?;
    }
    out.flush()?;
    Ok(())
}

/// Records whose latencies choose the text unit when `--unit` is not given and the output
/// streams: the first this many printed.
const UNIT_SAMPLE: usize = 65_536;

/// Everything selected, oldest first, streaming: a k-way merge of the files through their
/// reorder windows ([`crate::merge`]); the first line goes out before the files are read.
fn print_streaming(
    args: &CatArgs,
    sources: &Sources,
    filter: &Filter,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let read = AtomicU64::new(0);
    let (mut merger, total) = sources.merger(filter, &read)?;
    // A bar on stderr while the output goes to a file or a pipe (on a terminal the lines
    // themselves show progress, and a bar would mix with them).
    let mut progress = (!std::io::stdout().is_terminal()).then(|| Progress::new("reading", total));
    let mut shown = 0u64;
    let advance = |progress: &mut Option<Progress>, shown: &mut u64| {
        // Relaxed: counted on this thread by the feeds.
        let now = read.load(Ordering::Relaxed);
        if let Some(progress) = progress {
            for _ in *shown..now {
                progress.tick();
            }
        }
        *shown = now;
    };
    let mut first = Vec::new();
    let unit = match (args.unit, args.format) {
        (Some(unit), _) => unit,
        (None, RecordFormat::Text) => {
            while first.len() < UNIT_SAMPLE {
                match merger.next()? {
                    Some(record) => first.push(record),
                    None => break,
                }
            }
            unit_for(first.iter().map(|(_, s)| s.delta_ns))
        }
        // Only text has a latency column in a chosen unit.
        (None, _) => Unit::Us,
    };
    let mut printer = Printer::new(sources, args.format, unit);
    printer.header(out)?;
    for (source, sample) in &first {
        printer.line(out, *source, sample)?;
    }
    drop(first);
    while let Some((source, sample)) = merger.next()? {
        printer.line(out, source, &sample)?;
        // Relaxed: counted on this thread by the feeds.
        if read.load(Ordering::Relaxed) >= shown + (1 << 16) {
            advance(&mut progress, &mut shown);
        }
    }
    if let Some(progress) = &mut progress {
        progress.finish();
    }
    out.flush()?;
    let late = merger.late();
    if late > 0 {
        eprintln!(
            "ringcat: {late} record(s) came later than their file's reorder window allows \
             ({WINDOW} records for archives of version 1 or 2, which carry no lateness bound; \
             {EXACT_WINDOW_CAP} for other files) and were printed out of time order"
        );
    }
    Ok(())
}

/// One output format, with its unit and header.
struct Printer<'a> {
    sources: &'a Sources,
    format: RecordFormat,
    unit: Unit,
    json: JsonLines,
}

impl<'a> Printer<'a> {
    fn new(sources: &'a Sources, format: RecordFormat, unit: Unit) -> Self {
        Printer {
            sources,
            format,
            unit,
            json: JsonLines::new(sources),
        }
    }

    fn header(&self, out: &mut impl Write) -> std::io::Result<()> {
        match self.format {
            RecordFormat::Text => writeln!(out, "{}", text_header(self.sources, self.unit)),
            RecordFormat::Csv => writeln!(out, "{}", csv_header(self.sources)),
            RecordFormat::Json => Ok(()),
        }
    }

    fn line(
        &mut self,
        out: &mut impl Write,
        source: usize,
        sample: &Sample,
    ) -> std::io::Result<()> {
        let line = match self.format {
            RecordFormat::Json => return self.json.write(out, self.sources, source, sample),
            RecordFormat::Text => text_line(self.sources, source, sample, self.unit),
            RecordFormat::Csv => csv_line(self.sources, source, sample),
        };
        writeln!(out, "{line}")
    }
}

fn process_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

fn follow(
    args: &CatArgs,
    sources: &Sources,
    filter: &Filter,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let [source] = sources.sources.as_slice() else {
        return Err(Failure::Usage(
            "--follow reads exactly one ring file or archive".into(),
        ));
    };
    filter.check_kinds(sources)?;
    let mut printer = Printer::new(sources, args.format, args.unit.unwrap_or(Unit::Us));
    printer.header(out)?;
    let lines = args.lines.or(args.filter.last).unwrap_or(FOLLOW_LINES);
    match source.ring() {
        Some(file) => follow_ring(args, file, sources, filter, lines, &mut printer, out),
        None => follow_archive(args, sources, filter, lines, &mut printer, out),
    }
}

/// The last `lines` records that pass the filter, from a batch of decoded records.
fn keep_last(
    tail: &mut VecDeque<Sample>,
    lines: usize,
    samples: impl Iterator<Item = Sample>,
    keeps: impl Fn(&Sample) -> bool,
) {
    for sample in samples.filter(|s| keeps(s)) {
        tail.push_back(sample);
        if tail.len() > lines {
            tail.pop_front();
        }
    }
}

fn follow_ring(
    args: &CatArgs,
    file: &RingFile,
    sources: &Sources,
    filter: &Filter,
    lines: usize,
    printer: &mut Printer<'_>,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let kinds = filter.kinds_for(sources, 0);
    let unit_ns = sources.unit_ns[0];
    let keeps = |sample: &Sample| filter.keeps(sample, &kinds);
    // Read what the ring holds now (no record is skipped between this and following: the
    // same follower goes on), and start by printing its last `lines`.
    let mut follower = Follower::from_head(file);
    let (head, tail) = file.positions();
    let mut pending = u64::from(tail.wrapping_sub(head));
    let mut last = VecDeque::new();
    while pending > 0 {
        let batch = follower.poll(file, pending.min(1 << 16));
        if batch.is_empty() {
            break;
        }
        pending = pending.saturating_sub(batch.len() as u64);
        let samples = batch.iter().map(|d| Sample::from_decoded(d, unit_ns));
        keep_last(&mut last, lines, samples, keeps);
    }
    for sample in &last {
        printer.line(out, 0, sample)?;
    }
    out.flush()?;
    let overwrite = file.policy().overwrite;
    let mut told_drained = false;
    loop {
        file.check_intact()?;
        let batch = follower.next_batch(file, 4096);
        for decoded in &batch {
            let sample = Sample::from_decoded(decoded, unit_ns);
            if keeps(&sample) {
                printer.line(out, 0, &sample)?;
            }
        }
        let missed = follower.stats().missed;
        if missed > 0 && !overwrite && !told_drained {
            // Positions missed because the file shrank are a truncation, not a drainer.
            file.check_intact()?;
            told_drained = true;
            out.flush()?;
            eprintln!(
                "ringcat: {}: this ring is being drained: records consumed before cat could \
                 show them are missed; to see every record, follow the drain's archive \
                 instead (ringcat drain --follow RING -o ARCHIVE, then ringcat cat -f ARCHIVE)",
                file.path().display()
            );
        }
        if batch.is_empty() {
            out.flush()?;
            let pid_gone = args.pid.is_some_and(|pid| !process_alive(pid));
            if file.writer_state() != WriterState::Alive || pid_gone {
                // The writer is gone: take what it committed last, then stop.
                std::thread::sleep(Duration::from_millis(5));
                let last = follower.poll(file, u64::MAX);
                file.check_intact()?;
                for decoded in last {
                    let sample = Sample::from_decoded(&decoded, unit_ns);
                    if keeps(&sample) {
                        printer.line(out, 0, &sample)?;
                    }
                }
                out.flush()?;
                break;
            }
        }
    }
    let stats = follower.stats();
    if stats.missed > 0 || stats.abandoned > 0 {
        let why = if overwrite {
            "overwritten by the writer"
        } else {
            "consumed by a drain"
        };
        eprintln!(
            "ringcat: {} record(s) were {why} before they could be shown, {} abandoned by a dead writer",
            stats.missed, stats.abandoned
        );
    }
    Ok(())
}

/// Follows a growing archive (`drain --follow -o ARCHIVE` appends whole entries): prints
/// the last `lines` records, then every entry appended after, until interrupted or until
/// `--pid` exits.
fn follow_archive(
    args: &CatArgs,
    sources: &Sources,
    filter: &Filter,
    lines: usize,
    printer: &mut Printer<'_>,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let path = sources
        .paths
        .first()
        .map(String::as_str)
        .unwrap_or_default();
    let kinds = filter.kinds_for(sources, 0);
    let keeps = |sample: &Sample| filter.keeps(sample, &kinds);
    // Entries read so far: each poll reads only the entries appended since.
    let mut seen_entries = 0u64;
    let mut first = true;
    let mut idle = 0u32;
    loop {
        let archive = ArchiveReader::open(path)?;
        let len = archive.len();
        if len > seen_entries || first {
            let fresh: Vec<Sample> = if first {
                // The last `lines` by time (seeking backwards in a version-3 archive).
                archive
                    .last_records(0..len, lines, |record| keeps(&sample_of(record)))?
                    .iter()
                    .map(|(_, record)| sample_of(record))
                    .collect()
            } else {
                let mut fresh = Vec::new();
                archive.for_each_in(seen_entries..len, |record| {
                    let sample = sample_of(&record);
                    if keeps(&sample) {
                        fresh.push(sample);
                    }
                })?;
                fresh
            };
            seen_entries = len;
            for sample in &fresh {
                printer.line(out, 0, sample)?;
            }
            out.flush()?;
            idle = 0;
        } else {
            idle = (idle + 1).min(4);
        }
        first = false;
        if args.pid.is_some_and(|pid| !process_alive(pid)) {
            return Ok(());
        }
        // Poll the file's length: 25 ms after a change, up to 400 ms when it is quiet.
        std::thread::sleep(Duration::from_millis(25 << idle));
    }
}
