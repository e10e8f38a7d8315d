use crate::Failure;
use crate::cli::{CatArgs, RecordFormat};
use crate::output::{json_line, text_line};
use ringlat_read::{Decoded, Follower, RingFile, WriterState};
use std::io::{BufWriter, Write};

pub(crate) fn run(args: &CatArgs) -> Result<(), Failure> {
    let file = RingFile::open(&args.file)?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let print = |out: &mut BufWriter<_>, record: &Decoded| -> std::io::Result<()> {
        let line = match args.format {
            RecordFormat::Text => text_line(&file, record),
            RecordFormat::Json => json_line(&file, record),
        };
        writeln!(out, "{line}")
    };
    if !args.follow {
        let (records, stats) = file.snapshot();
        for record in &records {
            print(&mut out, record)?;
        }
        out.flush()?;
        if stats.in_flight > 0 {
            eprintln!(
                "ringcat: {} slot(s) were being written and were skipped",
                stats.in_flight
            );
        }
        return Ok(());
    }
    let mut follower = Follower::from_head(&file);
    loop {
        let batch = follower.next_batch(&file, 4096);
        for record in &batch {
            print(&mut out, record)?;
        }
        if batch.is_empty() {
            out.flush()?;
            if file.writer_state() != WriterState::Alive {
                // The writer is gone: take what it committed last, then stop.
                for record in &follower.poll(&file, u64::MAX) {
                    print(&mut out, record)?;
                }
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
