//! The crash harness (issue 8): real writer and drainer processes killed with SIGKILL at
//! random instants, every invariant checked from outside afterwards.
//!
//! ```text
//! ringlat-crash DIR writer-kills ROUNDS          # kill -9 the writer; drain --follow finishes
//! ringlat-crash DIR drainer-kills KILLS [sync]   # kill -9 and restart `ringcat drain --follow -o`
//! ringlat-crash DIR full-disk                    # archive on a small tmpfs: ENOSPC at creation
//!                                                # and mid-batch, then space freed
//! ```
//!
//! `ringcat` and `ringlat-crash-writer` are taken from beside this binary (or `$RINGCAT`).
//! `CRASH_SEED` fixes the random instants. Prints the counts; exits 1 on any violation: a
//! torn record, a duplicate, a loss (a record written but in no archive, beyond counted
//! abandoned slots), archive entries != records written, or a drain that failed or hung.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ringlat_read::archive::ArchiveReader;
use ringlat_read::{RingFile, WriterState};
use ringlat_tests::{kind_of, micros_of, status_of};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

#[derive(Debug, Default)]
struct Totals {
    rounds: u64,
    kills: u64,
    entries: u64,
    written: u64,
    torn: u64,
    duplicated: u64,
    lost: u64,
    abandoned: u64,
    enospc: u64,
    /// ENOSPC while appending entries (a batch cut short).
    enospc_mid_batch: u64,
    failures: Vec<String>,
}

struct Harness {
    dir: PathBuf,
    ringcat: PathBuf,
    writer: PathBuf,
    rng: Rng,
    totals: Totals,
}

/// What one archive holds, checked record by record.
struct Check {
    entries: u64,
    torn: u64,
    duplicated: u64,
    /// Gaps in a thread's sequence numbers.
    gaps: u64,
}

fn check_archive(archive: &Path) -> Result<Check, String> {
    let reader = ArchiveReader::open(archive).map_err(|e| e.to_string())?;
    let mut check = Check {
        entries: 0,
        torn: 0,
        duplicated: 0,
        gaps: 0,
    };
    let mut next: HashMap<u64, u64> = HashMap::new();
    let mut names = Vec::new();
    for kind in 0..=255u8 {
        names.push(reader.kind_name(kind));
    }
    reader
        .for_each(|r| {
            check.entries += 1;
            let trace = r.trace_id;
            let whole = names[r.kind as usize].as_deref() == Some(&format!("k{}", kind_of(trace)))
                && r.status == status_of(trace)
                && r.delta_ns == micros_of(trace) as i64 * 1000
                && r.probability == 1.0;
            if !whole {
                check.torn += 1;
                return;
            }
            let (thread, sequence) = (trace >> 40, trace & ((1 << 40) - 1));
            let expected = next.entry(thread).or_insert(0);
            if sequence < *expected {
                check.duplicated += 1;
            } else {
                check.gaps += sequence - *expected;
                *expected = sequence + 1;
            }
        })
        .map_err(|e| e.to_string())?;
    if reader.bad_entries() > 0 || reader.skipped_invalid_at_drain() > 0 {
        return Err(format!(
            "{} bad entries, {} invalid slots",
            reader.bad_entries(),
            reader.skipped_invalid_at_drain()
        ));
    }
    Ok(check)
}

fn wait_for(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let began = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if began.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn stderr_of(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .trim()
        .to_string()
}

impl Harness {
    fn fail(&mut self, what: String) {
        eprintln!("crash: FAILED: {what}");
        self.totals.failures.push(what);
    }

    fn spawn_writer(&self, ring: &Path, per_ms: u64, per_thread: u64) -> Child {
        let _ = std::fs::remove_file(ring.with_extension("stop"));
        let start = u32::MAX - (self.totals.rounds * 7919 % 50_000) as u32;
        Command::new(&self.writer)
            .arg(ring)
            .args(["2", "4096", &start.to_string(), &per_ms.to_string()])
            .arg(per_thread.to_string())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the crash writer")
    }

    fn wait_ready(&mut self, ring: &Path) -> bool {
        let began = Instant::now();
        while began.elapsed() < Duration::from_secs(20) {
            if RingFile::open(ring).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        self.fail(format!("{}: the writer never created it", ring.display()));
        false
    }

    fn spawn_drain(&self, ring: &Path, archive: &Path, follow: bool, sync: bool) -> Child {
        let mut command = Command::new(&self.ringcat);
        command.arg("drain").arg(ring).arg("-o").arg(archive);
        if follow {
            command.arg("--follow");
        }
        if sync {
            command.arg("--sync");
        }
        let log = std::fs::File::create(self.dir.join("drain.stderr")).unwrap();
        command
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn ringcat drain")
    }

    /// Checks a finished round from outside. `exact`: the writer closed its ring cleanly,
    /// so its counters are exact.
    fn check_round(&mut self, label: &str, ring: &Path, archive: &Path, exact: bool) {
        self.totals.rounds += 1;
        let file = match RingFile::open(ring) {
            Ok(file) => file,
            Err(error) => return self.fail(format!("{label}: {error}")),
        };
        let check = match check_archive(archive) {
            Ok(check) => check,
            Err(error) => return self.fail(format!("{label}: archive: {error}")),
        };
        let counters = file.counters();
        let written = counters.get(ringlat_format::KindCounter::Written);
        let (head, tail) = file.positions();
        let reserved = u64::from(tail.wrapping_sub(file.start_position()));
        let t = &mut self.totals;
        t.entries += check.entries;
        t.written += written;
        t.torn += check.torn;
        t.duplicated += check.duplicated;
        t.lost += check.gaps;
        t.abandoned += counters.abandoned;
        let mut problems = Vec::new();
        if check.torn + check.duplicated + check.gaps > 0 {
            problems.push(format!(
                "torn {} duplicated {} lost {}",
                check.torn, check.duplicated, check.gaps
            ));
        }
        if head != tail {
            problems.push(format!("not drained: head {head} tail {tail}"));
        }
        if check.entries + counters.abandoned != reserved {
            problems.push(format!(
                "archive entries {} + abandoned {} != positions reserved {reserved}",
                check.entries, counters.abandoned
            ));
        }
        if exact && (check.entries != written || counters.abandoned != 0) {
            problems.push(format!(
                "archive entries {} != records written {written} (abandoned {})",
                check.entries, counters.abandoned
            ));
        }
        if !exact && check.entries < written {
            problems.push(format!(
                "archive entries {} < records written {written}",
                check.entries
            ));
        }
        if file.writer_state() == WriterState::Alive {
            problems.push("the writer is still alive".into());
        }
        if !problems.is_empty() {
            self.fail(format!("{label}: {}", problems.join("; ")));
        }
    }

    fn cleanup(&self, files: &[&Path]) {
        for file in files {
            let _ = std::fs::remove_file(file);
        }
    }

    /// Writer kill -9 at a random instant while `drain --follow` runs; the drain must then
    /// finish by itself (dead writer) with everything committed archived once.
    fn writer_kills(&mut self, rounds: u64) {
        let ring = self.dir.join("wk.ring");
        let archive = self.dir.join("wk.archive");
        for round in 0..rounds {
            self.cleanup(&[&ring, &archive]);
            let mut writer = self.spawn_writer(&ring, 100, 0);
            if !self.wait_ready(&ring) {
                let _ = writer.kill();
                let _ = writer.wait();
                continue;
            }
            let mut drain = self.spawn_drain(&ring, &archive, true, round % 2 == 1);
            std::thread::sleep(Duration::from_micros(self.rng.below(40_000)));
            let _ = writer.kill();
            let _ = writer.wait();
            self.totals.kills += 1;
            match wait_for(&mut drain, Duration::from_secs(30)) {
                Some(status) if status.success() => {
                    self.check_round(&format!("writer kill {round}"), &ring, &archive, false);
                }
                Some(status) => {
                    let log = stderr_of(&self.dir.join("drain.stderr"));
                    self.fail(format!("writer kill {round}: drain exited {status}: {log}"));
                }
                None => self.fail(format!(
                    "writer kill {round}: drain hung after the writer died"
                )),
            }
        }
        self.cleanup(&[&ring, &archive]);
    }

    /// `drain --follow -o A` killed at random instants and restarted while a writer runs;
    /// then the writer closes, one last drain runs, and the archive must equal what was
    /// written, exactly once.
    fn drainer_kills(&mut self, kills: u64, sync: bool) {
        let ring = self.dir.join("dk.ring");
        let archive = self.dir.join("dk.archive");
        let mut done = 0;
        let mut session = 0;
        while done < kills {
            self.cleanup(&[&ring, &archive]);
            let mut writer = self.spawn_writer(&ring, 2_000, 0);
            if !self.wait_ready(&ring) {
                let _ = writer.kill();
                let _ = writer.wait();
                return;
            }
            for _ in 0..25.min(kills - done) {
                let mut drain = self.spawn_drain(&ring, &archive, true, sync);
                std::thread::sleep(Duration::from_micros(1_000 + self.rng.below(30_000)));
                if let Ok(Some(status)) = drain.try_wait() {
                    let log = stderr_of(&self.dir.join("drain.stderr"));
                    self.fail(format!(
                        "session {session}: drain exited early {status}: {log}"
                    ));
                }
                let _ = drain.kill();
                let _ = drain.wait();
                self.totals.kills += 1;
                done += 1;
            }
            std::fs::write(ring.with_extension("stop"), b"").unwrap();
            match wait_for(&mut writer, Duration::from_secs(60)) {
                Some(status) if status.success() => {}
                other => self.fail(format!("session {session}: writer ended {other:?}")),
            }
            let mut last = self.spawn_drain(&ring, &archive, false, sync);
            match wait_for(&mut last, Duration::from_secs(60)) {
                Some(status) if status.success() => {
                    let label = format!("drainer session {session} (sync {sync})");
                    self.check_round(&label, &ring, &archive, true);
                }
                other => {
                    let log = stderr_of(&self.dir.join("drain.stderr"));
                    self.fail(format!("session {session}: last drain {other:?}: {log}"));
                }
            }
            session += 1;
        }
        self.cleanup(&[&ring, &archive, &ring.with_extension("stop")]);
    }

    /// The archive on a 16 MiB tmpfs filled by chunks of 1 MiB: creation fails cleanly on a
    /// full disk, then the drain hits ENOSPC mid-batch again and again; each time a chunk is
    /// freed and the drain restarted. At the end: the archive equals what was written.
    fn full_disk(&mut self) {
        let disk = self.dir.join("disk");
        std::fs::create_dir_all(&disk).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=16m", "tmpfs"])
            .arg(&disk)
            .stderr(Stdio::null())
            .status();
        if !matches!(mounted, Ok(s) if s.success()) {
            println!("full-disk: skipped: mounting a tmpfs was refused (needs root and mount(8))");
            return;
        }
        self.full_disk_rounds(&disk);
        let _ = Command::new("umount").arg(&disk).status();
    }

    fn full_disk_rounds(&mut self, disk: &Path) {
        let mut chunks = Vec::new();
        let block = vec![0x5Au8; 1 << 20];
        for i in 0.. {
            let chunk = disk.join(format!("filler{i}"));
            let written = std::fs::write(&chunk, &block);
            chunks.push(chunk);
            if written.is_err() {
                break;
            }
        }
        let ring = self.dir.join("fd.ring");
        let archive = disk.join("fd.archive");
        self.cleanup(&[&ring]);
        // 2 threads x 160k records = 10 MiB of entries.
        let mut writer = self.spawn_writer(&ring, 400, 160_000);
        if !self.wait_ready(&ring) {
            let _ = writer.kill();
            let _ = writer.wait();
            return;
        }
        let mut create = self.spawn_drain(&ring, &archive, false, false);
        let status = wait_for(&mut create, Duration::from_secs(30));
        let leftovers = std::fs::read_dir(disk).unwrap().count() - chunks.len();
        if status.is_some_and(|s| s.code() == Some(2)) && !archive.exists() && leftovers == 0 {
            self.totals.enospc += 1;
            println!(
                "full-disk: creation on a full disk: {}",
                stderr_of(&self.dir.join("drain.stderr"))
            );
        } else {
            self.fail(format!(
                "creating on a full disk: {status:?}, archive exists {}, {leftovers} stray files",
                archive.exists()
            ));
        }
        // Two chunks free: room for the header and part of the records.
        for chunk in chunks.drain(..2.min(chunks.len())) {
            let _ = std::fs::remove_file(chunk);
        }
        let began = Instant::now();
        let mut failure = None;
        loop {
            let mut drain = self.spawn_drain(&ring, &archive, true, self.totals.enospc & 1 == 0);
            let status = wait_for(&mut drain, Duration::from_secs(120));
            let log = stderr_of(&self.dir.join("drain.stderr"));
            match status {
                Some(status) if status.success() => break,
                Some(status) if status.code() == Some(2) && log.contains("No space") => {
                    self.totals.enospc += 1;
                    if log.contains("appending to the archive") {
                        self.totals.enospc_mid_batch += 1;
                    }
                    match chunks.pop() {
                        Some(chunk) => std::fs::remove_file(chunk).unwrap(),
                        None => {
                            failure = Some("full disk: out of chunks to free".to_string());
                            break;
                        }
                    }
                }
                other => {
                    failure = Some(format!("full disk: drain {other:?}: {log}"));
                    break;
                }
            }
            if began.elapsed() > Duration::from_secs(180) {
                failure = Some("full disk: no progress".into());
                break;
            }
        }
        if let Some(failure) = failure {
            let _ = writer.kill();
            let _ = writer.wait();
            return self.fail(failure);
        }
        match wait_for(&mut writer, Duration::from_secs(60)) {
            Some(status) if status.success() => {}
            other => self.fail(format!("full disk: writer ended {other:?}")),
        }
        let mut last = self.spawn_drain(&ring, &archive, false, false);
        if !wait_for(&mut last, Duration::from_secs(60)).is_some_and(|s| s.success()) {
            return self.fail("full disk: the last drain failed".into());
        }
        self.check_round("full disk", &ring, &archive, true);
        println!(
            "full-disk: {} ENOSPC events (1 at creation, {} mid-batch), archive == written",
            self.totals.enospc, self.totals.enospc_mid_batch
        );
        self.cleanup(&[&ring]);
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: ringlat-crash DIR (writer-kills N | drainer-kills N [sync] | full-disk)");
        return ExitCode::from(1);
    }
    let dir = PathBuf::from(&args[1]);
    std::fs::create_dir_all(&dir).unwrap();
    let me = std::env::current_exe().unwrap();
    let ringcat =
        std::env::var_os("RINGCAT").map_or_else(|| me.with_file_name("ringcat"), PathBuf::from);
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    let mut harness = Harness {
        dir,
        ringcat,
        writer: me.with_file_name("ringlat-crash-writer"),
        rng: Rng(seed),
        totals: Totals::default(),
    };
    let count = |i: usize| args.get(i).and_then(|n| n.parse().ok()).unwrap_or(10);
    let began = Instant::now();
    let mode = args[2].as_str();
    match mode {
        "writer-kills" => harness.writer_kills(count(3)),
        "drainer-kills" => {
            harness.drainer_kills(count(3), args.get(4).is_some_and(|a| a == "sync"))
        }
        "full-disk" => harness.full_disk(),
        other => {
            eprintln!("unknown mode {other}");
            return ExitCode::from(1);
        }
    }
    let t = &harness.totals;
    println!(
        "crash {mode}{}: seed {seed}, {} rounds, {} kills, {} entries, {} written, torn {}, duplicated {}, lost {}, abandoned {}, ENOSPC {}, failures {} ({:.1} s)",
        if args.get(4).is_some_and(|a| a == "sync") {
            " sync"
        } else {
            ""
        },
        t.rounds,
        t.kills,
        t.entries,
        t.written,
        t.torn,
        t.duplicated,
        t.lost,
        t.abandoned,
        t.enospc,
        t.failures.len(),
        began.elapsed().as_secs_f64()
    );
    if t.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
