//! `ringcat demo`: a simulated trading gateway records market/limit/cancel orders through the
//! library (gateway sampling preset) with injected glitches, while a drainer archives the ring
//! concurrently; then the percentile table by kind, the slice of the tail and a plot.

use crate::Failure;
use crate::cli::{By, DemoArgs, SliceOrder, Unit};
use crate::drain::drain_into_archive;

/// The demo's drain writes a population snapshot this often.
const SNAPSHOT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);
use crate::pct::{Grouping, compute, parse_quantiles, table};
use crate::progress::Progress;
use crate::select::{Filter, Sources};
use crate::slice::{SliceQuery, slice, text as slice_text};
use crate::style::Style;
use crate::time::now_unix_ns;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use ringlat_format::{GlobalCounter, KindCounter};
use ringlat_read::archive::ArchiveWriter;
use ringlat_read::{Drainer, RingFile};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Orders per second each kind is sent at (limit and cancel run above their degradation
/// thresholds of 2000/s and 1000/s, so their rates are cut while the demo runs).
const RATES: [u64; 3] = [2_000, 5_000, 2_500];
/// Typical latency of each kind in microseconds.
const BASE_US: [f64; 3] = [40.0, 65.0, 25.0];
/// A stall (every kind slows by milliseconds) starts every this many ms and lasts STALL_MS.
const STALL_EVERY_MS: u64 = 2_500;
const STALL_MS: u64 = 120;
/// A burst of market orders as fast as possible (trips the breaker) every this many ms.
const BURST_EVERY_MS: u64 = 3_000;
const BURST_ORDERS: u64 = 150_000;

/// Where the demo's files go: the live ring on tmpfs (/dev/shm), where the hot path never
/// waits on a filesystem journal (README, "Where to put the live ring"), and the archive and
/// plot on disk. `--dir` puts everything in one directory.
struct DemoDirs {
    ring: PathBuf,
    data: PathBuf,
}

fn create_dir(dir: &Path) -> Result<(), Failure> {
    std::fs::create_dir_all(dir).map_err(|e| {
        Failure::File(format!(
            "{}: creating the demo directory: {e}",
            dir.display()
        ))
    })
}

fn demo_dirs(args: &DemoArgs) -> Result<DemoDirs, Failure> {
    let dirs = match &args.dir {
        Some(dir) => DemoDirs {
            ring: dir.clone(),
            data: dir.clone(),
        },
        None => {
            let name = format!(
                "ringlat-demo-{}-{}",
                std::process::id(),
                now_unix_ns() / 1_000_000
            );
            let data = std::env::temp_dir().join(&name);
            let shm = Path::new("/dev/shm");
            let ring = if shm.is_dir() {
                shm.join(&name)
            } else {
                println!(
                    "note: /dev/shm is missing, so the live ring goes to {} (a disk \
                     filesystem may stall the hot path after each flush)",
                    data.display()
                );
                data.clone()
            };
            DemoDirs { ring, data }
        }
    };
    create_dir(&dirs.ring)?;
    create_dir(&dirs.data)?;
    Ok(dirs)
}

/// The simulated latency of one order.
fn latency_us(rng: &mut SmallRng, kind: usize, stalled: bool) -> (f64, u8) {
    // Roughly log-normal: the sum of uniforms is close to normal.
    let z: f64 = (0..4).map(|_| rng.random::<f64>()).sum::<f64>() - 2.0;
    let mut us = BASE_US[kind] * (0.6 * z).exp();
    if rng.random::<f64>() < 0.01 {
        us *= 8.0; // the slow path: cache miss, retransmit
    }
    let mut status = u8::from(kind == 1 && rng.random::<f64>() < 0.02); // 1 = rejected
    if stalled {
        us += 2_000.0 + rng.random::<f64>() * 10_000.0;
        if us > 5_000.0 {
            status = 2; // timeout
        }
    }
    (us, status)
}

fn simulate(ring: &ringlat::Ring, seconds: u64, seed: u64) {
    let start = Instant::now();
    let until = start + Duration::from_secs(seconds);
    let stalled = |now: Instant| {
        let ms = now.duration_since(start).as_millis() as u64;
        ms >= 1_000 && ms % STALL_EVERY_MS < STALL_MS
    };
    std::thread::scope(|scope| {
        for (kind, rate) in RATES.iter().enumerate() {
            let ring = ring.clone();
            scope.spawn(move || {
                ringlat::seed_thread_rng(seed.wrapping_mul(31).wrapping_add(kind as u64));
                let mut rng = SmallRng::seed_from_u64(seed ^ (kind as u64) << 32);
                let mut trace = (kind as u64) << 56;
                let per_ms = rate.div_ceil(1000);
                let mut next = Instant::now();
                while Instant::now() < until {
                    let stall = stalled(Instant::now());
                    for _ in 0..per_ms {
                        let (us, status) = latency_us(&mut rng, kind, stall);
                        ring.record(
                            kind as u8,
                            trace,
                            status,
                            Duration::from_nanos((us * 1e3) as u64),
                        );
                        trace += 1;
                    }
                    next += Duration::from_millis(1);
                    if let Some(wait) = next.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                }
            });
        }
        let ring = ring.clone();
        scope.spawn(move || {
            ringlat::seed_thread_rng(seed.wrapping_add(99));
            let mut rng = SmallRng::seed_from_u64(seed ^ 0xB0257);
            let mut trace = 9u64 << 56;
            let mut next_burst = start + Duration::from_millis(BURST_EVERY_MS / 2);
            while next_burst < until {
                if let Some(wait) = next_burst.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                for _ in 0..BURST_ORDERS {
                    let (us, status) = latency_us(&mut rng, 0, false);
                    ring.record(0, trace, status, Duration::from_nanos((us * 1e3) as u64));
                    trace += 1;
                }
                next_burst += Duration::from_millis(BURST_EVERY_MS);
            }
        });
    });
}

pub(crate) fn run(args: &DemoArgs) -> Result<(), Failure> {
    let dirs = demo_dirs(args)?;
    let ring_path = dirs.ring.join("gateway.ring");
    let archive_path = dirs.data.join("gateway.archive");
    let svg_path = dirs.data.join("gateway.svg");
    for stale in [&archive_path, &svg_path] {
        if stale.exists() {
            std::fs::remove_file(stale)
                .map_err(|e| Failure::File(format!("{}: removing: {e}", stale.display())))?;
        }
    }
    let style = Style::stdout();
    println!(
        "{}",
        style.bold(&format!(
            "ringcat demo: a simulated trading gateway for {} s (seed {})",
            args.seconds, args.seed,
        ))
    );
    println!(
        "  live ring {}, archive and plot in {}",
        ring_path.display(),
        dirs.data.display()
    );
    println!(
        "  market {}/s at 100%, limit {}/s at 10% (degraded above 2000/s), cancel {}/s at 50% (above 1000/s);",
        RATES[0], RATES[1], RATES[2]
    );
    println!(
        "  calls over 1 ms always kept; a {STALL_MS} ms stall every {:.1} s; a burst of {BURST_ORDERS} market orders every {:.1} s",
        STALL_EVERY_MS as f64 / 1000.0,
        BURST_EVERY_MS as f64 / 1000.0
    );
    let ring = ringlat::Ring::builder(&ring_path)
        .capacity(1 << 12)
        .gateway_preset()
        .delta_unit(ringlat::DeltaUnit::Micros)
        .replace(true)
        .create()
        .map_err(|e| Failure::File(e.to_string()))?;
    let mut drainer = Drainer::open(&ring_path)?;
    let mut archive = ArchiveWriter::open(&archive_path, now_unix_ns())?;
    let finished = AtomicBool::new(false);
    let drained = std::thread::scope(|scope| {
        let drain = scope.spawn(|| {
            drain_into_archive(&mut drainer, &mut archive, true, SNAPSHOT_INTERVAL, &|| {
                finished.load(Ordering::Acquire)
            })
        });
        simulate(&ring, args.seconds, args.seed);
        // Release: pairs with the drainer's Acquire load: it stops after a last full pass.
        finished.store(true, Ordering::Release);
        drain.join()
    });
    let totals = match drained {
        Ok(result) => result?,
        Err(_) => return Err(Failure::File("the drainer thread panicked".into())),
    };
    ring.close().map_err(|e| Failure::File(e.to_string()))?;
    // Whatever was committed between the drainer's last pass and the close.
    let rest = drain_into_archive(
        &mut drainer,
        &mut archive,
        false,
        SNAPSHOT_INTERVAL,
        &|| true,
    )?;
    archive.sync()?;
    drop(drainer);
    summary(&ring_path, totals.records + rest.records, &archive_path)?;
    report(&archive_path, &svg_path, &style)?;
    println!();
    println!("{}", style.bold("next:"));
    println!("  ringcat stat {}", ring_path.display());
    println!(
        "  ringcat pct {} --by kind --window 1s       # where did P99 jump?",
        archive_path.display()
    );
    println!(
        "  ringcat slice {} --above p99.9 --by status --kind limit",
        archive_path.display()
    );
    println!("  open {}", svg_path.display());
    println!(
        "{}",
        style.bold("the P99.9 glitch, in three steps (README \"Three-step attribution\"):")
    );
    println!(
        "  1 alert   ringcat serve {} + docs/alerts.yml: P99.9 above 8 ms per kind",
        ring_path.display()
    );
    println!(
        "  2 cause   ringcat slice {} --above 5ms --by status --since '<alert start - 1m>'",
        archive_path.display()
    );
    println!("  3 system  perf sched latency / perf trace -s on the host, in the same window");
    Ok(())
}

fn summary(ring_path: &Path, archived: u64, archive_path: &Path) -> Result<(), Failure> {
    let file = RingFile::open(ring_path)?;
    let counters = file.counters();
    let get = |c: KindCounter| counters.get(c);
    println!();
    println!(
        "calls {}: written {}, sampled out {}, dropped {} (breaker open {}, full {}; {} trips), rejected {}",
        counters.calls(),
        get(KindCounter::Written),
        get(KindCounter::SampledOut),
        get(KindCounter::DroppedBreaker) + get(KindCounter::DroppedFull),
        get(KindCounter::DroppedBreaker),
        get(KindCounter::DroppedFull),
        file.global(GlobalCounter::BreakerTrips),
        get(KindCounter::Rejected),
    );
    println!(
        "archived {archived} records into {} (every written record: {})",
        archive_path.display(),
        if archived == get(KindCounter::Written) {
            "yes"
        } else {
            "NO"
        }
    );
    Ok(())
}

fn report(archive_path: &Path, svg_path: &Path, style: &Style) -> Result<(), Failure> {
    let sources = Sources::open(&[archive_path.display().to_string()])?;
    let filter = Filter::default();
    let mut progress = Progress::new("reading", sources.len_hint());
    let quantiles = parse_quantiles(&["50", "90", "99", "99.9", "99.99"].map(String::from))?;
    let grouping = Grouping {
        by: By {
            kind: true,
            status: false,
        },
        window_ns: None,
        raw: false,
    };
    let rows = compute(&sources, &filter, grouping, &quantiles, &mut progress)?;
    println!();
    println!(
        "{}",
        style.bold(&format!(
            "$ ringcat pct {} --by kind",
            archive_path.display()
        ))
    );
    // Population (every call, from the drain's snapshots) beside the sampled records, and
    // the coverage warning where the breaker dropped calls.
    match crate::population::collect(&sources, &filter, grouping)? {
        Some(populations) => {
            print!(
                "{}",
                crate::population::table(
                    &sources,
                    &rows,
                    &populations,
                    &quantiles,
                    grouping,
                    Unit::Us,
                    crate::population::Show::Both,
                )
            );
            crate::population::warn_low_coverage(&sources, &populations, grouping, 0.99);
        }
        None => print!("{}", table(&sources, &rows, &quantiles, grouping, Unit::Us)),
    }
    let query = SliceQuery {
        above: "p99",
        by: By {
            kind: true,
            status: true,
        },
        limit: 10,
        order: SliceOrder::Slowest,
        raw: false,
    };
    let tail = slice(&sources, &filter, &query, &mut progress)?;
    println!();
    println!(
        "{}",
        style.bold(&format!(
            "$ ringcat slice {} --above p99 --limit 10",
            archive_path.display()
        ))
    );
    print!(
        "{}",
        slice_text(&sources, &tail, query.by, query.order, Unit::Us)
    );
    crate::plot::write_svg(&sources, &filter, None, false, svg_path, &mut progress)?;
    println!();
    println!("plot: {}", svg_path.display());
    Ok(())
}
