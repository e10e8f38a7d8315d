//! `ringcat cat`: records from rings and archives, merged by time; or follow a live ring.

use crate::Failure;
use crate::cli::{CatArgs, RecordFormat};
use crate::output::{CSV_HEADER, csv_line, json_line, text_line};
use crate::progress::Progress;
use crate::select::{Filter, Sources};
use ringlat_read::{Follower, Sample, WriterState};
use std::io::{BufWriter, Write};
use std::time::Duration;

pub(crate) fn run(args: &CatArgs) -> Result<(), Failure> {
    let sources = Sources::open(&args.files)?;
    let filter = Filter::parse(&args.filter)?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let line = |source: usize, sample: &Sample| match args.format {
        RecordFormat::Text => text_line(&sources, source, sample),
        RecordFormat::Json => json_line(&sources, source, sample),
        RecordFormat::Csv => csv_line(&sources, source, sample),
    };
    if args.format == RecordFormat::Csv {
        writeln!(out, "{CSV_HEADER}")?;
    }
    if args.follow {
        return follow(args, &sources, &filter, &mut out, &line);
    }
    let mut progress = Progress::new("reading", sources.len_hint());
    let records = sources.collect_by_time(&filter, &mut progress)?;
    progress.finish();
    for (source, sample) in &records {
        writeln!(out, "{}", line(*source, sample))?;
    }
    out.flush()?;
    let in_flight: u64 = sources.sources.iter().map(|s| s.in_flight_skipped()).sum();
    if in_flight > 0 {
        eprintln!("ringcat: {in_flight} slot(s) were being written and were skipped");
    }
    Ok(())
}

fn process_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

fn follow(
    args: &CatArgs,
    sources: &Sources,
    filter: &Filter,
    out: &mut impl Write,
    line: &dyn Fn(usize, &Sample) -> String,
) -> Result<(), Failure> {
    let [source] = sources.sources.as_slice() else {
        return Err(Failure::Usage(
            "--follow reads exactly one ring file".into(),
        ));
    };
    let Some(file) = source.ring() else {
        return Err(Failure::Usage(
            "--follow needs a ring file, not an archive".into(),
        ));
    };
    let kinds = filter.kinds_for(sources, 0);
    let unit_ns = sources.unit_ns[0];
    let mut follower = Follower::from_head(file);
    let emit = |out: &mut dyn Write, batch: &[ringlat_read::Decoded]| -> std::io::Result<()> {
        for decoded in batch {
            let sample = Sample::from_decoded(decoded, unit_ns);
            if filter.keeps(&sample, &kinds) {
                writeln!(out, "{}", line(0, &sample))?;
            }
        }
        Ok(())
    };
    loop {
        file.check_intact()?;
        let batch = follower.next_batch(file, 4096);
        emit(out, &batch)?;
        if batch.is_empty() {
            out.flush()?;
            let pid_gone = args.pid.is_some_and(|pid| !process_alive(pid));
            if file.writer_state() != WriterState::Alive || pid_gone {
                // The writer is gone: take what it committed last, then stop.
                std::thread::sleep(Duration::from_millis(5));
                let last = follower.poll(file, u64::MAX);
                file.check_intact()?;
                emit(out, &last)?;
                out.flush()?;
                break;
            }
        }
    }
    let stats = follower.stats();
    if stats.missed > 0 || stats.abandoned > 0 {
        eprintln!(
            "ringcat: {} record(s) were consumed or overwritten before they could be shown, {} abandoned by a dead writer",
            stats.missed, stats.abandoned
        );
    }
    Ok(())
}
