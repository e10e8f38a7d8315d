//! The damaged-file harness (issue 9): damages a real ring and a real archive in every way
//! it is told to, runs every reading subcommand of `ringcat` on each damaged file under a
//! timeout, and checks the outcome from outside:
//!
//! * exit 0 with output that keeps the invariants (fill <= capacity, 0 < p <= 1, no NaN or
//!   infinity, declared kinds only), or
//! * exit 2 with exactly one line on stderr;
//! * never a signal, a panic (101), a hang (killed after the timeout) or any other exit.
//!
//! `ringlat-damage --ringcat PATH [--flips N] [--seed S] [--truncate-step N]
//!  [--all-commands] [--timeout-secs N] [--jobs N] [--seeds DIR]`
//!
//! With `--seeds DIR` it only writes the undamaged ring and archive into DIR (the fuzzer's
//! seed corpus) and exits.
//!
//! Prints the counts; exits 1 if any run broke a rule (each one is printed).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ringlat_format::{CLASS_TABLE, HEADER_SIZE, KIND_TABLE};
use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The fixed header fields of a ring (offset, size), from FORMAT.md's table.
const RING_FIELDS: &[(usize, usize)] = &[
    (0, 8),
    (8, 4),
    (12, 4),
    (16, 4),
    (20, 4),
    (24, 4),
    (28, 4),
    (32, 8),
    (40, 8),
    (48, 8),
    (56, 1),
    (57, 1),
    (60, 4),
    (64, 8),
    (72, 8),
    (80, 4),
    (84, 4),
    (88, 8),
    (96, 8),
    (128, 8),
    (256, 32),
    (384, 4),
    (448, 4),
    (452, 4),
    (456, 4),
    (460, 4),
    (464, 8),
    (472, 8),
    (480, 8),
    (488, 8),
    (496, 8),
    (504, 8),
];

/// The archive header fields (offset, size) before its tables (docs/ARCHIVE.md; the fields at
/// 20 and 32 are reserved in version 1 and hold `skipped_invalid` in version 2).
const ARCHIVE_FIELDS: &[(usize, usize)] =
    &[(0, 8), (8, 4), (12, 4), (16, 4), (20, 4), (24, 8), (32, 8)];
const ARCHIVE_HEADER: usize = 16_384;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Base {
    Ring,
    Archive,
}

#[derive(Clone, Debug)]
enum Damage {
    Truncate(usize),
    FlipBit(usize, u8),
    /// Random byte flips in `start..end`.
    Random {
        seed: u64,
        start: usize,
        end: usize,
    },
}

struct Case {
    base: Base,
    damage: Damage,
    commands: Vec<&'static str>,
}

const COMMANDS: [&str; 6] = ["stat", "cat", "pct", "slice", "plot", "drain"];

struct Options {
    ringcat: PathBuf,
    flips: usize,
    seed: u64,
    truncate_step: usize,
    all_commands: bool,
    timeout: Duration,
    jobs: usize,
    seeds: Option<PathBuf>,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        ringcat: PathBuf::new(),
        flips: 2000,
        seed: 1,
        truncate_step: 1,
        all_commands: false,
        timeout: Duration::from_secs(10),
        jobs: 2,
        seeds: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--ringcat" => options.ringcat = PathBuf::from(value()?),
            "--flips" => options.flips = value()?.parse().map_err(|e| format!("{e}"))?,
            "--seed" => options.seed = value()?.parse().map_err(|e| format!("{e}"))?,
            "--truncate-step" => {
                options.truncate_step = value()?.parse().map_err(|e| format!("{e}"))?
            }
            "--all-commands" => options.all_commands = true,
            "--timeout-secs" => {
                options.timeout = Duration::from_secs(value()?.parse().map_err(|e| format!("{e}"))?)
            }
            "--jobs" => options.jobs = value()?.parse().map_err(|e| format!("{e}"))?,
            "--seeds" => options.seeds = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if options.ringcat.as_os_str().is_empty() {
        return Err("--ringcat PATH is required".into());
    }
    options.truncate_step = options.truncate_step.max(1);
    Ok(options)
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// A closed ring with three kinds at three rates (trace-id decisions), wrapped positions and
/// some rejections; and the archive `ringcat drain` makes of a copy of it.
fn fixtures(dir: &Path, ringcat: &Path) -> (Vec<u8>, Vec<u8>) {
    let ring = dir.join("base.ring");
    {
        let writer = ringlat::Ring::builder(&ring)
            .capacity(128)
            .kind(0, "market")
            .kind(1, "limit")
            .kind(2, "cancel")
            .rate(1, 0.5)
            .rate(2, 0.1)
            .decision(ringlat::Decision::TraceId)
            .start_position(u32::MAX - 40)
            .create()
            .unwrap();
        for trace in 0..400u64 {
            let kind = (trace % 3) as u8;
            writer.record(
                kind,
                trace,
                (trace % 5) as u8,
                Duration::from_micros(1 + trace * 7),
            );
        }
        writer.record(9, 1, 0, Duration::from_micros(1));
    }
    let ring_bytes = std::fs::read(&ring).unwrap();
    let copy = dir.join("for-archive.ring");
    std::fs::write(&copy, &ring_bytes).unwrap();
    let archive = dir.join("base.rla");
    let status = Command::new(ringcat)
        .arg("drain")
        .arg(&copy)
        .arg("-o")
        .arg(&archive)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "drain into the fixture archive failed");
    (ring_bytes, std::fs::read(&archive).unwrap())
}

fn cases(options: &Options, ring_len: usize, archive_len: usize) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut rotation = 0usize;
    let mut commands = |all: bool| -> Vec<&'static str> {
        if all {
            return COMMANDS.to_vec();
        }
        // stat, plus one other subcommand in turn.
        rotation += 1;
        vec!["stat", COMMANDS[1 + rotation % (COMMANDS.len() - 1)]]
    };
    let all = options.all_commands;
    for len in (0..=HEADER_SIZE as usize).step_by(options.truncate_step) {
        cases.push(Case {
            base: Base::Ring,
            damage: Damage::Truncate(len),
            commands: commands(all),
        });
    }
    for (offset, size) in RING_FIELDS {
        for byte in *offset..offset + size {
            for bit in 0..8 {
                cases.push(Case {
                    base: Base::Ring,
                    damage: Damage::FlipBit(byte, bit),
                    commands: commands(all),
                });
            }
        }
    }
    for len in (0..=ARCHIVE_HEADER + 64).step_by(options.truncate_step.max(16)) {
        cases.push(Case {
            base: Base::Archive,
            damage: Damage::Truncate(len),
            commands: commands(all),
        });
    }
    for (offset, size) in ARCHIVE_FIELDS {
        for byte in *offset..offset + size {
            for bit in 0..8 {
                cases.push(Case {
                    base: Base::Archive,
                    damage: Damage::FlipBit(byte, bit),
                    commands: commands(all),
                });
            }
        }
    }
    // Random flips: in the ring's class and kind tables, its metadata and records, and in the
    // archive's tables and entries.
    let ring_regions = [
        (CLASS_TABLE, KIND_TABLE + 256 * 128),
        (HEADER_SIZE as usize, ring_len),
    ];
    // The archive's tables: its source table (version 2), class table and kind names.
    let archive_regions = [(256, ARCHIVE_HEADER), (ARCHIVE_HEADER, archive_len)];
    let mut rng = Rng(options.seed | 1);
    for i in 0..options.flips {
        let (base, (start, end)) = match i % 4 {
            0 => (Base::Ring, ring_regions[0]),
            1 => (Base::Ring, ring_regions[1]),
            2 => (Base::Archive, archive_regions[0]),
            _ => (Base::Archive, archive_regions[1]),
        };
        cases.push(Case {
            base,
            damage: Damage::Random {
                seed: rng.next() | 1,
                start,
                end: end.max(start + 1),
            },
            commands: commands(all),
        });
    }
    cases
}

fn damaged(bytes: &[u8], damage: &Damage) -> Vec<u8> {
    let mut out = bytes.to_vec();
    match *damage {
        Damage::Truncate(len) => out.truncate(len),
        Damage::FlipBit(byte, bit) => {
            if let Some(b) = out.get_mut(byte) {
                *b ^= 1 << bit;
            }
        }
        Damage::Random { seed, start, end } => {
            let mut rng = Rng(seed);
            let count = 1 + rng.next() % 8;
            for _ in 0..count {
                let at = start + (rng.next() as usize) % (end - start);
                if let Some(b) = out.get_mut(at) {
                    *b ^= (rng.next() as u8) | 1;
                }
            }
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Ok,
    Refused,
    BadOutput,
    NotOneLine,
    Panic,
    Signal,
    Hang,
    OtherExit,
}

impl Outcome {
    fn is_failure(self) -> bool {
        !matches!(self, Outcome::Ok | Outcome::Refused)
    }
}

/// Runs `ringcat command file` and classifies the result.
fn run(options: &Options, command: &str, file: &Path, scratch: &Path) -> (Outcome, String) {
    let mut cmd = Command::new(&options.ringcat);
    cmd.env("NO_COLOR", "1").arg(command);
    match command {
        "stat" => cmd.args(["--format", "json"]).arg(file),
        "cat" => cmd.args(["--format", "json"]).arg(file),
        "pct" => cmd.args(["--by", "kind"]).arg(file),
        "slice" => cmd.args(["--above", "p90"]).arg(file),
        "plot" => cmd.arg(file).arg("-o").arg(scratch.join("plot.svg")),
        _ => cmd.arg(file),
    };
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read the pipes on threads so that a large output cannot block the child.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut text);
        text
    });
    let err_reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stderr, &mut text);
        text
    });
    let deadline = Instant::now() + options.timeout;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let stdout = String::from_utf8_lossy(&out_reader.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned();
    let Some(status) = status else {
        return (Outcome::Hang, "hung".into());
    };
    if let Some(signal) = status.signal() {
        return (Outcome::Signal, format!("signal {signal}"));
    }
    match status.code() {
        Some(0) => match check_output(command, &stdout) {
            Ok(()) => (Outcome::Ok, String::new()),
            Err(why) => (Outcome::BadOutput, why),
        },
        Some(2) if stderr.lines().count() == 1 => (Outcome::Refused, String::new()),
        Some(2) => (Outcome::NotOneLine, format!("stderr: {stderr:?}")),
        Some(101) => (Outcome::Panic, format!("stderr: {stderr:?}")),
        Some(code) => (
            Outcome::OtherExit,
            format!("exit {code}, stderr: {stderr:?}"),
        ),
        None => (Outcome::Signal, "no exit code".into()),
    }
}

fn probability_ok(p: &serde_json::Value) -> bool {
    p.as_f64().is_some_and(|p| p > 0.0 && p <= 1.0)
}

/// The invariants of an exit-0 output.
fn check_output(command: &str, stdout: &str) -> Result<(), String> {
    let non_finite = stdout
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|word| matches!(word, "NaN" | "nan" | "inf" | "Infinity" | "infinity"));
    if non_finite {
        return Err(format!("NaN or infinity in the output: {stdout:.300}"));
    }
    match command {
        "stat" => {
            let v: serde_json::Value =
                serde_json::from_str(stdout).map_err(|e| format!("stat json: {e}"))?;
            let (fill, capacity) = (v["fill"].as_u64(), v["capacity"].as_u64());
            if fill.zip(capacity).is_none_or(|(f, c)| f > c) {
                return Err(format!("fill {fill:?} > capacity {capacity:?}"));
            }
            for kind in v["kinds"].as_array().into_iter().flatten() {
                if !probability_ok(&kind["rate"]["current"])
                    || !probability_ok(&kind["rate"]["base"])
                {
                    return Err(format!("kind rate outside (0, 1]: {kind}"));
                }
            }
        }
        "cat" | "drain" => {
            for line in stdout.lines() {
                let v: serde_json::Value =
                    serde_json::from_str(line).map_err(|e| format!("{command} json: {e}"))?;
                if !probability_ok(&v["p"]) {
                    return Err(format!("p outside (0, 1]: {line}"));
                }
                // A declared kind has a name; an undeclared one would show its number.
                let label = v["kind"].as_str().unwrap_or("");
                if label.parse::<u64>().is_ok() || label.is_empty() {
                    return Err(format!("record of an undeclared kind: {line}"));
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(options) => options,
        Err(error) => {
            eprintln!("ringlat-damage: {error}");
            return ExitCode::from(1);
        }
    };
    let dir = tempfile_dir();
    let (ring, archive) = fixtures(&dir, &options.ringcat);
    if let Some(seeds) = &options.seeds {
        std::fs::create_dir_all(seeds).unwrap();
        std::fs::write(seeds.join("ring"), &ring).unwrap();
        std::fs::write(seeds.join("archive"), &archive).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        println!("damage: seeds written to {}", seeds.display());
        return ExitCode::SUCCESS;
    }
    let cases = cases(&options, ring.len(), archive.len());
    let next = AtomicUsize::new(0);
    let counts: Mutex<BTreeMap<(Base, Outcome), u64>> = Mutex::new(BTreeMap::new());
    let runs = AtomicUsize::new(0);
    let failures: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for job in 0..options.jobs.max(1) {
            let (cases, next, counts, runs, failures) = (&cases, &next, &counts, &runs, &failures);
            let (options, ring, archive, dir) = (&options, &ring, &archive, &dir);
            scope.spawn(move || {
                let scratch = dir.join(format!("job{job}"));
                std::fs::create_dir_all(&scratch).unwrap();
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(case) = cases.get(index) else { break };
                    let bytes = damaged(
                        if case.base == Base::Ring {
                            ring
                        } else {
                            archive
                        },
                        &case.damage,
                    );
                    for command in &case.commands {
                        // Every run gets a fresh copy: drain consumes, and must not see
                        // another run's leftovers.
                        let file = scratch.join(if case.base == Base::Ring {
                            "damaged.ring"
                        } else {
                            "damaged.rla"
                        });
                        std::fs::write(&file, &bytes).unwrap();
                        let (outcome, why) = run(options, command, &file, &scratch);
                        runs.fetch_add(1, Ordering::Relaxed);
                        *counts
                            .lock()
                            .unwrap()
                            .entry((case.base, outcome))
                            .or_default() += 1;
                        if outcome.is_failure() {
                            let kept = scratch.join(format!("failure-{index}-{command}"));
                            let _ = std::fs::copy(&file, &kept);
                            failures.lock().unwrap().push(format!(
                                "{:?} {:?} {command}: {outcome:?} {why:.400} (file kept: {})",
                                case.base,
                                case.damage,
                                kept.display()
                            ));
                        }
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    for failure in &failures {
        println!("FAIL {failure}");
    }
    let ring_cases = cases.iter().filter(|c| c.base == Base::Ring).count();
    println!(
        "damage: {} damaged files ({} ring, {} archive), {} random-flip files, {} runs in {:.0} s",
        cases.len(),
        ring_cases,
        cases.len() - ring_cases,
        options.flips,
        runs.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    );
    for ((base, outcome), count) in counts.into_inner().unwrap() {
        println!("  {base:?} {outcome:?}: {count}");
    }
    if failures.is_empty() {
        println!("damage: no signal, panic, hang, bad output or multi-line error");
        let _ = std::fs::remove_dir_all(&dir);
        ExitCode::SUCCESS
    } else {
        println!(
            "damage: {} runs broke a rule (files kept in {})",
            failures.len(),
            dir.display()
        );
        ExitCode::from(1)
    }
}

fn tempfile_dir() -> PathBuf {
    let base = std::env::var_os("DAMAGE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("ringlat-damage-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
