//! The comparison harness of issue 13: `record` on each of its paths, interleaved with the
//! structures a user would otherwise pick, in one process, run after run; medians, ratios,
//! JSON.
//!
//! `cargo run --release -p ringlat-benches --bin compare [-- --quick] [--rounds N]
//!  [--batch N] [--dir DIR] [--json FILE] [--consumer spin|ringcat] [--only 'TEXT|TEXT']`
//!
//! Every row pushes the same workload: a 21-byte record (trace id, nanotime, status, delta)
//! per call. Rows with a consumer (ringlat written, rtrb, ArrayQueue, `Mutex<VecDeque>`, the
//! stamped floors) run it on its own thread while the producers are timed; after each batch
//! the harness waits, untimed, until the consumer has taken everything, so the ring never fills
//! and the breaker never opens during a written measurement (each row reports the calls that
//! were not written). Every consumer polls by the same rule (`--consumer`): `spin` (default:
//! poll again at once, `yield_now` after an empty poll) or `ringcat` (as `ringcat drain`: sleep
//! 100 us doubling to 12.8 ms after an empty poll); the table shows how many items a consumer
//! poll took and how often it found nothing. Rows "no concurrent consumer" drain after the
//! timed batch: what the producer costs when no other core touches its lines. `--only` keeps
//! the rows whose names contain one of the `|`-separated texts. Timings on a shared machine
//! are noisy: read the ratios of rows measured in the same round, and their medians.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use crossbeam_queue::ArrayQueue;
use memmap2::MmapMut;
use ringlat::{Decision, Outcome, Ring, SingleProducerRing};
use ringlat_benches::{live_ring_dir, machine, median, tsc};
use std::collections::VecDeque;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Slots of every ring and queue: 2^20, as in the measurements.
const CAPACITY: usize = 1 << 20;

type Item = [u8; 21];

/// The 21-byte record the anchors push (same layout as ringlat's record).
#[inline(always)]
fn item(trace: u64, nanotime: u64, delta: Duration) -> Item {
    let mut bytes = [0u8; 21];
    bytes[..8].copy_from_slice(&trace.to_le_bytes());
    bytes[8..16].copy_from_slice(&nanotime.to_le_bytes());
    bytes[16] = 0;
    let micros = i32::try_from(delta.as_micros()).unwrap_or(i32::MAX);
    bytes[17..21].copy_from_slice(&micros.to_le_bytes());
    bytes
}

#[inline(always)]
fn delta(trace: u64) -> Duration {
    Duration::from_nanos(1_000 + (trace & 1023))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// What one batch of one row measured.
#[derive(Default, Clone, Copy)]
struct Batch {
    /// Nanoseconds per call, timed on the calling thread(s) (averaged over threads).
    ns_per_call: f64,
    /// Calls that did not end as intended (not written, or not dropped for breaker rows).
    off_path: u64,
    /// Consumer polls during the timed batch that took something, and the items they took
    /// (rows with a concurrent consumer only).
    busy_polls: u64,
    taken: u64,
    /// Consumer polls during the timed batch that found nothing (spinning on the ring's
    /// position word or index).
    empty_polls: u64,
}

impl Batch {
    /// A timed batch of `calls` calls of which `on_path` took the row's path (consumer
    /// statistics are filled in by the consumer's runner).
    fn timed(ns_per_call: f64, calls: u64, on_path: u64) -> Batch {
        Batch {
            ns_per_call,
            off_path: calls - on_path,
            ..Batch::default()
        }
    }
}

/// How every consumer of the harness polls (the same rule for ringlat and the anchors).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Polling {
    /// Poll again at once; `yield_now` after an empty poll (the strictest case: the consumer
    /// chases the producer record by record).
    Spin,
    /// As `ringcat drain` polls: after an empty poll, sleep 100 us, doubling up to 12.8 ms;
    /// back to 100 us after a poll that took something.
    Ringcat,
}

impl Polling {
    fn name(self) -> &'static str {
        match self {
            Polling::Spin => "spin",
            Polling::Ringcat => "ringcat",
        }
    }
}

/// Runs `produce` (which returns the batch and the number of items it pushed) while a
/// consumer thread calls `pop` (items taken, 0 when empty) by the `polling` rule; returns once
/// the consumer has taken everything pushed. The wait after `produce` is not timed.
fn with_consumer<P, F>(
    polling: Polling,
    pop_factory: F,
    produce: impl FnOnce() -> (Batch, u64),
) -> Batch
where
    F: FnOnce() -> P + Send,
    P: FnMut() -> u64,
{
    let done = AtomicBool::new(false);
    let target = AtomicU64::new(0);
    let ready = Barrier::new(2);
    std::thread::scope(|scope| {
        let consumer = scope.spawn(|| {
            let mut pop = pop_factory();
            ready.wait();
            let (mut taken, mut busy_polls, mut empty_polls, mut idle) = (0u64, 0u64, 0u64, 0u32);
            // Polls counted until the producer is done (the timed part).
            let mut timed = None;
            loop {
                let n = pop();
                taken += n;
                if n > 0 {
                    busy_polls += 1;
                    idle = 0;
                    continue;
                }
                // Acquire: pairs with the Release store of `done`, after `target` was set.
                if done.load(Ordering::Acquire) {
                    timed.get_or_insert((busy_polls, taken, empty_polls));
                    if taken >= target.load(Ordering::Relaxed) {
                        break;
                    }
                }
                empty_polls += 1;
                match polling {
                    Polling::Spin => std::thread::yield_now(),
                    Polling::Ringcat => {
                        idle = (idle + 1).min(20);
                        std::thread::sleep(Duration::from_micros(50 << idle.min(8)));
                    }
                }
            }
            timed.unwrap_or((busy_polls, taken, empty_polls))
        });
        ready.wait();
        let (batch, pushed) = produce();
        target.store(pushed, Ordering::Relaxed);
        // Release: pairs with the consumer's Acquire load; makes `target` visible first.
        done.store(true, Ordering::Release);
        let (busy_polls, taken, empty_polls) = consumer.join().unwrap();
        Batch {
            busy_polls,
            taken,
            empty_polls,
            ..batch
        }
    })
}

/// Runs `produce` with no consumer, then drains everything it pushed (untimed): what the
/// producer costs when no other core touches the ring's lines meanwhile.
fn drained_after<P, F>(pop_factory: F, produce: impl FnOnce() -> (Batch, u64)) -> Batch
where
    F: FnOnce() -> P,
    P: FnMut() -> u64,
{
    let (batch, pushed) = produce();
    let mut pop = pop_factory();
    let mut taken = 0;
    while taken < pushed {
        taken += pop();
    }
    batch
}

/// A second producer thread that lives for the whole run (warm thread-locals, a registered
/// counter stripe), so that two-producer rows do not time thread start-up.
struct Worker {
    jobs: mpsc::Sender<Box<dyn FnOnce() -> (f64, u64) + Send>>,
    results: mpsc::Receiver<(f64, u64)>,
}

impl Worker {
    fn start() -> Worker {
        let (jobs, job_rx) = mpsc::channel::<Box<dyn FnOnce() -> (f64, u64) + Send>>();
        let (result_tx, results) = mpsc::channel();
        std::thread::spawn(move || {
            while let Ok(job) = job_rx.recv() {
                if result_tx.send(job()).is_err() {
                    break;
                }
            }
        });
        Worker { jobs, results }
    }

    /// Runs `job` here and on the worker at the same instant (a barrier); returns the mean
    /// ns per call of the two threads and the sum of their counts.
    fn both<J>(&self, job: J) -> (f64, u64)
    where
        J: Fn(&Barrier) -> (f64, u64) + Send + Sync + Clone + 'static,
    {
        let barrier = Arc::new(Barrier::new(2));
        let theirs = job.clone();
        let their_barrier = Arc::clone(&barrier);
        self.jobs
            .send(Box::new(move || theirs(&their_barrier)))
            .unwrap();
        let (ns_a, count_a) = job(&barrier);
        let (ns_b, count_b) = self.results.recv().unwrap();
        ((ns_a + ns_b) / 2.0, count_a + count_b)
    }
}

/// Times `n` calls of `call`, returning ns per call and how many returned true.
#[inline(always)]
fn time_calls(n: u64, first: u64, mut call: impl FnMut(u64) -> bool) -> (f64, u64) {
    let began = Instant::now();
    let mut hits = 0u64;
    for trace in first..first + n {
        hits += u64::from(call(trace));
    }
    (began.elapsed().as_nanos() as f64 / n as f64, hits)
}

fn ringlat_pop(path: PathBuf) -> impl FnOnce() -> Box<dyn FnMut() -> u64> + Send {
    move || {
        let mut drainer = ringlat_read::Drainer::open(&path).unwrap();
        Box::new(move || {
            drainer
                .drain(4096, |d| {
                    black_box(d);
                    Ok::<(), ()>(())
                })
                .map_or(0, |stats| stats.taken as u64)
        })
    }
}

/// One row of the table.
struct Row<'a> {
    name: &'static str,
    run: Box<dyn FnMut(u64, u64) -> Batch + 'a>,
    samples: Vec<f64>,
    off_path: u64,
    busy_polls: u64,
    taken: u64,
    empty_polls: u64,
}

fn row<'a>(name: &'static str, run: impl FnMut(u64, u64) -> Batch + 'a) -> Row<'a> {
    Row {
        name,
        run: Box::new(run),
        samples: Vec::new(),
        off_path: 0,
        busy_polls: 0,
        taken: 0,
        empty_polls: 0,
    }
}

/// A file mapped like a ring: a u64 position word on the first page, 21-byte records after.
struct FloorFile {
    map: MmapMut,
    _file: std::fs::File,
}

impl FloorFile {
    fn create(path: &Path) -> FloorFile {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .unwrap();
        let len = 4096 + 21 * CAPACITY as u64;
        file.set_len(len).unwrap();
        // SAFETY: a private temporary file of `len` bytes that only this process maps.
        let mut map = unsafe { MmapMut::map_mut(&file) }.unwrap();
        for offset in (0..map.len()).step_by(4096) {
            map[offset] = 0; // fault every page in now, as ringlat does at creation
        }
        FloorFile { map, _file: file }
    }

    /// The physical floor of a written record: a TSC read, one CAS on the position word, and
    /// the 21 bytes stored into the mapping.
    #[inline(always)]
    fn push(&self, trace: u64) -> bool {
        let now = tsc();
        let base = self.map.as_ptr().cast_mut();
        // SAFETY: offset 0 of a page-aligned mapping: aligned for u64 and inside it.
        let word = unsafe { &*(base.cast::<AtomicU64>()) };
        let mut position = word.load(Ordering::Relaxed);
        // AcqRel/Relaxed: the orderings a ring's reservation needs (no reader here).
        while let Err(seen) =
            word.compare_exchange_weak(position, position + 1, Ordering::AcqRel, Ordering::Relaxed)
        {
            position = seen;
        }
        let record = item(trace, now, delta(trace));
        let offset = 4096 + 21 * (position as usize & (CAPACITY - 1));
        // SAFETY: offset + 21 <= 4096 + 21 * CAPACITY = the mapping's length; the slot is
        // ours by the CAS above and nothing else reads or writes the mapping concurrently.
        unsafe {
            std::ptr::copy_nonoverlapping(record.as_ptr(), base.add(offset), 21);
        }
        true
    }
}

/// Where a stamped floor keeps a slot's commit stamp and record.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SlotLayout {
    /// The ring format of today (version 1): a stamp area of 8-byte stamps (8 slots per cache
    /// line) and a record area of 21-byte records (a record straddles lines).
    Split,
    /// The layout a format change would bring: one 32-byte slot, stamp then record, so a
    /// record and its stamp share one cache line and no slot shares a line with more than one
    /// neighbour.
    Line32,
}

/// The floor with the protocol a consumer needs: a packed head/tail word reserved by CAS,
/// the 21 bytes, and a commit stamp stored with Release; a consumer loads the word, checks each
/// stamp (Acquire), reads the record and advances head by CAS. No sampling, counters, claim
/// or stuck-producer handling: what any ring in a mapped file with these lines costs.
struct StampedFloor {
    map: MmapMut,
    layout: SlotLayout,
    _file: std::fs::File,
}

impl StampedFloor {
    const STAMPS: usize = 4096;
    const MASK: u32 = CAPACITY as u32 - 1;

    fn create(path: &Path, layout: SlotLayout) -> StampedFloor {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .unwrap();
        let len = Self::STAMPS as u64 + 32 * CAPACITY as u64;
        file.set_len(len).unwrap();
        // SAFETY: a private temporary file of `len` bytes that only this process maps.
        let mut map = unsafe { MmapMut::map_mut(&file) }.unwrap();
        for offset in (0..map.len()).step_by(4096) {
            map[offset] = 0;
        }
        StampedFloor {
            map,
            layout,
            _file: file,
        }
    }

    fn word(&self) -> &AtomicU64 {
        // SAFETY: offset 0 of a page-aligned mapping: aligned for u64 and inside it; only
        // ever accessed atomically.
        unsafe { &*(self.map.as_ptr().cast::<AtomicU64>()) }
    }

    /// The stamp and the record's first byte of the slot of `position`.
    #[inline(always)]
    fn slot(&self, position: u32) -> (&AtomicU64, *mut u8) {
        let index = (position & Self::MASK) as usize;
        let base = self.map.as_ptr().cast_mut();
        let (stamp, record) = match self.layout {
            SlotLayout::Split => (
                Self::STAMPS + 8 * index,
                Self::STAMPS + 8 * CAPACITY + 21 * index,
            ),
            SlotLayout::Line32 => (Self::STAMPS + 32 * index, Self::STAMPS + 32 * index + 8),
        };
        // SAFETY: both offsets lie inside the mapping (Split: 8 + 21 <= 32 bytes per slot);
        // the stamp offset is 8-aligned, and stamps are only accessed atomically.
        unsafe { (&*(base.add(stamp).cast::<AtomicU64>()), base.add(record)) }
    }

    #[inline(always)]
    fn push(&self, trace: u64) -> bool {
        let now = tsc();
        let word = self.word();
        let mut current = word.load(Ordering::Relaxed);
        let position = loop {
            let (head, tail) = ((current >> 32) as u32, current as u32);
            if tail.wrapping_sub(head) > Self::MASK {
                return false;
            }
            let next = (current & !0xFFFF_FFFF) | u64::from(tail.wrapping_add(1));
            // Acquire: pairs with the consumer's Release head advance (its reads of the slot
            // come before our writes).
            match word.compare_exchange(current, next, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => break tail,
                Err(seen) => current = seen,
            }
        };
        let (stamp, at) = self.slot(position);
        let record = item(trace, now, delta(trace));
        // SAFETY: the 21 bytes are this slot's, reserved by the CAS above: the consumer reads
        // them only after the Release stamp below and before it frees the slot.
        unsafe { std::ptr::copy_nonoverlapping(record.as_ptr(), at, 21) };
        // Release: pairs with the consumer's Acquire stamp load.
        stamp.store(u64::from(position) | 1 << 32, Ordering::Release);
        true
    }

    /// Takes up to 4096 committed records; the consumer of the stamped floor rows.
    fn pop(&self) -> u64 {
        let word = self.word();
        // Acquire: pairs with nothing the producer publishes through the word (the stamps do
        // that); the head we compare with is ours.
        let current = word.load(Ordering::Acquire);
        let head = (current >> 32) as u32;
        let tail = current as u32;
        let mut position = head;
        let mut taken = 0;
        while position != tail && taken < 4096 {
            let (stamp, at) = self.slot(position);
            // Acquire: pairs with the producer's Release stamp store.
            if stamp.load(Ordering::Acquire) != u64::from(position) | 1 << 32 {
                break;
            }
            let mut record = [0u8; 21];
            // SAFETY: committed (stamp above) and not freed yet (head is still below it).
            unsafe { std::ptr::copy_nonoverlapping(at, record.as_mut_ptr(), 21) };
            black_box(record);
            position = position.wrapping_add(1);
            taken += 1;
        }
        if taken > 0 {
            let mut current = current;
            // Release: pairs with the producers' Acquire reserve (our reads come first).
            while let Err(seen) = word.compare_exchange(
                current,
                (u64::from(position) << 32) | (current & 0xFFFF_FFFF),
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                current = seen;
            }
        }
        taken
    }
}

/// A thread-owned histogram stripe and counter, as ringlat's hot path keeps them: bucket of the
/// population scheme, the sum, one counter, each a relaxed load + store.
struct OwnedStripe {
    cells: Vec<AtomicU64>,
}

impl OwnedStripe {
    const SUM: usize = ringlat_format::population::BUCKETS;
    const COUNTER: usize = Self::SUM + 16;

    fn new() -> OwnedStripe {
        OwnedStripe {
            cells: (0..Self::COUNTER + 1).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    #[inline(always)]
    fn bump(&self, index: usize, by: u64) {
        let cell = &self.cells[index];
        // Relaxed: one writer (this thread).
        cell.store(
            cell.load(Ordering::Relaxed).wrapping_add(by),
            Ordering::Relaxed,
        );
    }

    #[inline(always)]
    fn add(&self, delta: Duration) -> bool {
        let nanos = delta.as_nanos() as u64;
        if let Some(bucket) = ringlat_format::population::bucket_of(nanos) {
            self.bump(bucket, 1);
            self.bump(Self::SUM, nanos);
        }
        self.bump(Self::COUNTER, 1);
        true
    }
}

struct Args {
    rounds: usize,
    batch: u64,
    dir: Option<PathBuf>,
    json: PathBuf,
    quick: bool,
    polling: Polling,
    only: Vec<String>,
}

fn parse_args() -> Args {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = manifest.parent().unwrap_or(manifest);
    let mut args = Args {
        rounds: 31,
        batch: 1 << 16,
        dir: None,
        json: workspace.join("target").join("compare.json"),
        quick: false,
        polling: Polling::Spin,
        only: Vec::new(),
    };
    let usage = || -> ! {
        eprintln!(
            "usage: compare [--quick] [--rounds N] [--batch N] [--dir DIR] [--json FILE] \
             [--consumer spin|ringcat] [--only TEXT[|TEXT...]]"
        );
        std::process::exit(1)
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => {
                args.quick = true;
                args.rounds = 11;
                args.batch = 1 << 14;
            }
            "--rounds" => {
                args.rounds = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| usage())
            }
            "--batch" => {
                args.batch = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| usage())
            }
            "--dir" => args.dir = Some(it.next().unwrap_or_else(|| usage()).into()),
            "--json" => args.json = it.next().unwrap_or_else(|| usage()).into(),
            "--consumer" => {
                args.polling = match it.next().as_deref() {
                    Some("spin") => Polling::Spin,
                    Some("ringcat") => Polling::Ringcat,
                    _ => usage(),
                }
            }
            "--only" => {
                args.only = it
                    .next()
                    .unwrap_or_else(|| usage())
                    .split('|')
                    .map(str::to_owned)
                    .collect()
            }
            _ => usage(),
        }
    }
    if args.rounds == 0 || args.batch < 2 || args.batch > CAPACITY as u64 / 2 {
        usage();
    }
    args
}

fn main() {
    let args = parse_args();
    let polling = args.polling;
    let base = args.dir.clone().unwrap_or_else(|| {
        let (dir, note) = live_ring_dir();
        if let Some(note) = note {
            println!("note: {note}");
        }
        dir
    });
    let temp = tempfile::tempdir_in(&base).unwrap();
    let dir = temp.path();
    let rings = |name: &str| dir.join(name);
    let written_ring = |name: &str| {
        Ring::builder(rings(name))
            .capacity(CAPACITY as u64)
            .kind(0, "op")
            .max_skew(Duration::from_secs(60))
    };

    let sp = written_ring("sp.ring").create_single_producer().unwrap();
    // Population histograms are on by default; the `histograms off` rows measure their cost.
    let sp_off = written_ring("sp_off.ring")
        .population_histograms(false)
        .create_single_producer()
        .unwrap();
    let mp1_off = written_ring("mp1_off.ring")
        .population_histograms(false)
        .create()
        .unwrap();
    let sampled_random_off = Ring::builder(rings("sampled_off.ring"))
        .capacity(CAPACITY as u64)
        .kind(0, "op")
        .rate(0, 1e-6)
        .population_histograms(false)
        .create()
        .unwrap();
    let sp_at = written_ring("sp_at.ring").create_single_producer().unwrap();
    let mp1 = written_ring("mp1.ring").create().unwrap();
    let mp1_at = written_ring("mp1_at.ring").create().unwrap();
    let mp2 = written_ring("mp2.ring").create().unwrap();
    let mp2_at = written_ring("mp2_at.ring").create().unwrap();
    let sampled_random = Ring::builder(rings("sampled.ring"))
        .capacity(CAPACITY as u64)
        .kind(0, "op")
        .rate(0, 1e-6)
        .create()
        .unwrap();
    let sampled_trace = Ring::builder(rings("sampled_trace.ring"))
        .capacity(CAPACITY as u64)
        .kind(0, "op")
        .rate(0, 1e-6)
        .decision(Decision::TraceId)
        .create()
        .unwrap();
    let tripped = Ring::builder(rings("tripped.ring"))
        .capacity(64)
        .kind(0, "op")
        .tick(Duration::from_secs(3600)) // the breaker stays open: no tick closes it
        .create()
        .unwrap();
    while !tripped.breaker_open() {
        tripped.record(0, 0, 0, delta(0));
    }
    let (mut rtrb_tx, mut rtrb_rx) = rtrb::RingBuffer::<Item>::new(CAPACITY);
    let (mut rtrb_tsc_tx, mut rtrb_tsc_rx) = rtrb::RingBuffer::<Item>::new(CAPACITY);
    let (mut rtrb_alone_tx, mut rtrb_alone_rx) = rtrb::RingBuffer::<Item>::new(CAPACITY);
    let queue = Arc::new(ArrayQueue::<Item>::new(CAPACITY));
    let queue_tsc = Arc::new(ArrayQueue::<Item>::new(CAPACITY));
    let queue2 = Arc::new(ArrayQueue::<Item>::new(CAPACITY));
    let locked = Mutex::new(VecDeque::<Item>::with_capacity(CAPACITY));
    let mut histogram =
        hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    let floor = FloorFile::create(&dir.join("floor.map"));
    let stamped_split = StampedFloor::create(&dir.join("split.map"), SlotLayout::Split);
    let stamped_line = StampedFloor::create(&dir.join("line32.map"), SlotLayout::Line32);
    let stamped_split_alone = StampedFloor::create(&dir.join("split1.map"), SlotLayout::Split);
    let stamped_line_alone = StampedFloor::create(&dir.join("line1.map"), SlotLayout::Line32);
    let owned_stripe = OwnedStripe::new();
    let sp_alone = written_ring("sp_alone.ring")
        .create_single_producer()
        .unwrap();
    let mp1_alone = written_ring("mp1_alone.ring").create().unwrap();
    let worker = Worker::start();
    let epoch = Instant::now();

    let sp_written = |ring: &SingleProducerRing, at: bool, n: u64, first: u64| {
        let now = unix_now();
        let (ns, written) = time_calls(n, first, |t| {
            let outcome = if at {
                ring.record_at(0, t, 0, delta(t), now)
            } else {
                ring.record(0, t, 0, delta(t))
            };
            outcome == Outcome::Written
        });
        (Batch::timed(ns, n, written), written)
    };
    let mp_written = |ring: &Ring, at: bool, n: u64, first: u64| {
        let now = unix_now();
        let (ns, written) = time_calls(n, first, |t| {
            let outcome = if at {
                ring.record_at(0, t, 0, delta(t), now)
            } else {
                ring.record(0, t, 0, delta(t))
            };
            outcome == Outcome::Written
        });
        (Batch::timed(ns, n, written), written)
    };
    let mp_two = |ring: &Ring, at: bool, n: u64, first: u64| {
        let ring = ring.clone();
        let (ns, written) = worker.both(move |barrier: &Barrier| {
            let now = unix_now();
            barrier.wait();
            time_calls(n / 2, first, |t| {
                let outcome = if at {
                    ring.record_at(0, t, 0, delta(t), now)
                } else {
                    ring.record(0, t, 0, delta(t))
                };
                outcome == Outcome::Written
            })
        });
        let total = 2 * (n / 2);
        (Batch::timed(ns, total, written), written)
    };
    let dropped_rows = |ring: &Ring, expect: Outcome, n: u64, first: u64| {
        let (ns, hits) = time_calls(n, first, |t| ring.record(0, t, 0, delta(t)) == expect);
        Batch::timed(ns, n, hits)
    };
    let queue_pop = |q: Arc<ArrayQueue<Item>>| {
        move || {
            move || {
                let mut n = 0;
                while n < 4096 && q.pop().map(black_box).is_some() {
                    n += 1;
                }
                n
            }
        }
    };

    let stamped_run = |floor: &StampedFloor, n: u64, first: u64| {
        let (ns, pushed) = time_calls(n, first, |t| floor.push(t));
        (Batch::timed(ns, n, pushed), pushed)
    };
    let mut table: Vec<Row> = vec![
        row("ringlat single producer", |n, first| {
            with_consumer(polling, ringlat_pop(rings("sp.ring")), || {
                sp_written(&sp, false, n, first)
            })
        }),
        row("ringlat single producer, histograms off", |n, first| {
            with_consumer(polling, ringlat_pop(rings("sp_off.ring")), || {
                sp_written(&sp_off, false, n, first)
            })
        }),
        row(
            "ringlat multi producer, 1 thread, histograms off",
            |n, first| {
                with_consumer(polling, ringlat_pop(rings("mp1_off.ring")), || {
                    mp_written(&mp1_off, false, n, first)
                })
            },
        ),
        row("ringlat single producer, record_at", |n, first| {
            with_consumer(polling, ringlat_pop(rings("sp_at.ring")), || {
                sp_written(&sp_at, true, n, first)
            })
        }),
        row("ringlat multi producer, 1 thread", |n, first| {
            with_consumer(polling, ringlat_pop(rings("mp1.ring")), || {
                mp_written(&mp1, false, n, first)
            })
        }),
        row("ringlat multi producer, 1 thread, record_at", |n, first| {
            with_consumer(polling, ringlat_pop(rings("mp1_at.ring")), || {
                mp_written(&mp1_at, true, n, first)
            })
        }),
        row("ringlat multi producer, 2 threads", |n, first| {
            with_consumer(polling, ringlat_pop(rings("mp2.ring")), || {
                mp_two(&mp2, false, n, first)
            })
        }),
        row(
            "ringlat multi producer, 2 threads, record_at",
            |n, first| {
                with_consumer(polling, ringlat_pop(rings("mp2_at.ring")), || {
                    mp_two(&mp2_at, true, n, first)
                })
            },
        ),
        row(
            "ringlat single producer, no concurrent consumer",
            |n, first| {
                drained_after(ringlat_pop(rings("sp_alone.ring")), || {
                    sp_written(&sp_alone, false, n, first)
                })
            },
        ),
        row(
            "ringlat multi producer, 1 thread, no concurrent consumer",
            |n, first| {
                drained_after(ringlat_pop(rings("mp1_alone.ring")), || {
                    mp_written(&mp1_alone, false, n, first)
                })
            },
        ),
        row("rtrb push + Instant::now", |n, first| {
            let tx = &mut rtrb_tx;
            let rx = &mut rtrb_rx;
            with_consumer(
                polling,
                move || {
                    move || {
                        let n = rx.slots().min(4096);
                        for _ in 0..n {
                            black_box(rx.pop().ok());
                        }
                        n as u64
                    }
                },
                || {
                    let (ns, pushed) = time_calls(n, first, |t| {
                        let now = epoch.elapsed().as_nanos() as u64;
                        tx.push(item(t, now, delta(t))).is_ok()
                    });
                    (Batch::timed(ns, n, pushed), pushed)
                },
            )
        }),
        row(
            "rtrb push + Instant::now, no concurrent consumer",
            |n, first| {
                let tx = &mut rtrb_alone_tx;
                let rx = &mut rtrb_alone_rx;
                drained_after(
                    move || {
                        move || {
                            let n = rx.slots().min(4096);
                            for _ in 0..n {
                                black_box(rx.pop().ok());
                            }
                            n as u64
                        }
                    },
                    || {
                        let (ns, pushed) = time_calls(n, first, |t| {
                            let now = epoch.elapsed().as_nanos() as u64;
                            tx.push(item(t, now, delta(t))).is_ok()
                        });
                        (Batch::timed(ns, n, pushed), pushed)
                    },
                )
            },
        ),
        row("rtrb push + TSC read", |n, first| {
            let tx = &mut rtrb_tsc_tx;
            let rx = &mut rtrb_tsc_rx;
            with_consumer(
                polling,
                move || {
                    move || {
                        let n = rx.slots().min(4096);
                        for _ in 0..n {
                            black_box(rx.pop().ok());
                        }
                        n as u64
                    }
                },
                || {
                    let (ns, pushed) =
                        time_calls(n, first, |t| tx.push(item(t, tsc(), delta(t))).is_ok());
                    (Batch::timed(ns, n, pushed), pushed)
                },
            )
        }),
        row("ArrayQueue push + Instant::now", |n, first| {
            with_consumer(polling, queue_pop(Arc::clone(&queue)), || {
                let (ns, pushed) = time_calls(n, first, |t| {
                    let now = epoch.elapsed().as_nanos() as u64;
                    queue.push(item(t, now, delta(t))).is_ok()
                });
                (Batch::timed(ns, n, pushed), pushed)
            })
        }),
        row("ArrayQueue push + TSC read", |n, first| {
            with_consumer(polling, queue_pop(Arc::clone(&queue_tsc)), || {
                let (ns, pushed) = time_calls(n, first, |t| {
                    queue_tsc.push(item(t, tsc(), delta(t))).is_ok()
                });
                (Batch::timed(ns, n, pushed), pushed)
            })
        }),
        row("ArrayQueue push + Instant::now, 2 threads", |n, first| {
            with_consumer(polling, queue_pop(Arc::clone(&queue2)), || {
                let q = Arc::clone(&queue2);
                let (ns, pushed) = worker.both(move |barrier: &Barrier| {
                    barrier.wait();
                    time_calls(n / 2, first, |t| {
                        let now = epoch.elapsed().as_nanos() as u64;
                        q.push(item(t, now, delta(t))).is_ok()
                    })
                });
                (Batch::timed(ns, 2 * (n / 2), pushed), pushed)
            })
        }),
        row("Mutex<VecDeque> push + Instant::now", |n, first| {
            let locked = &locked;
            with_consumer(
                polling,
                move || {
                    move || {
                        let Ok(mut deque) = locked.lock() else {
                            return 0;
                        };
                        let n = deque.len().min(4096);
                        for item in deque.drain(..n) {
                            black_box(item);
                        }
                        n as u64
                    }
                },
                || {
                    let (ns, pushed) = time_calls(n, first, |t| {
                        let now = epoch.elapsed().as_nanos() as u64;
                        let record = item(t, now, delta(t));
                        match locked.lock() {
                            Ok(mut deque) if deque.len() < CAPACITY => {
                                deque.push_back(record);
                                true
                            }
                            _ => false,
                        }
                    });
                    (Batch::timed(ns, n, pushed), pushed)
                },
            )
        }),
        row("hdrhistogram record", |n, first| {
            let (ns, ok) = time_calls(n, first, |t| histogram.record(1_000 + (t & 1023)).is_ok());
            Batch::timed(ns, n, ok)
        }),
        row("ringlat sampled out, random", |n, first| {
            dropped_rows(&sampled_random, Outcome::SampledOut, n, first)
        }),
        row("ringlat sampled out, random, histograms off", |n, first| {
            dropped_rows(&sampled_random_off, Outcome::SampledOut, n, first)
        }),
        row("ringlat sampled out, trace id", |n, first| {
            dropped_rows(&sampled_trace, Outcome::SampledOut, n, first)
        }),
        row("ringlat breaker open", |n, first| {
            dropped_rows(&tripped, Outcome::Dropped, n, first)
        }),
        row(
            "floor: TSC read + CAS + 21-byte store (mapped)",
            |n, first| {
                let (ns, _) = time_calls(n, first, |t| floor.push(t));
                Batch {
                    ns_per_call: ns,
                    off_path: 0,
                    ..Batch::default()
                }
            },
        ),
        row(
            "floor + commit stamp, v1 lines (stamp area + 21-byte stride), consumer",
            |n, first| {
                with_consumer(
                    polling,
                    || || stamped_split.pop(),
                    || stamped_run(&stamped_split, n, first),
                )
            },
        ),
        row(
            "floor + commit stamp, one 32-byte slot per record, consumer",
            |n, first| {
                with_consumer(
                    polling,
                    || || stamped_line.pop(),
                    || stamped_run(&stamped_line, n, first),
                )
            },
        ),
        row(
            "floor + commit stamp, v1 lines, no concurrent consumer",
            |n, first| {
                drained_after(
                    || || stamped_split_alone.pop(),
                    || stamped_run(&stamped_split_alone, n, first),
                )
            },
        ),
        row(
            "floor + commit stamp, one 32-byte slot, no concurrent consumer",
            |n, first| {
                drained_after(
                    || || stamped_line_alone.pop(),
                    || stamped_run(&stamped_line_alone, n, first),
                )
            },
        ),
        row("owned-stripe histogram add + counter add", |n, first| {
            let (ns, ok) = time_calls(n, first, |t| owned_stripe.add(delta(t)));
            Batch::timed(ns, n, ok)
        }),
        row("clock: Instant::now", |n, first| {
            let (ns, _) = time_calls(n, first, |_| {
                black_box(Instant::now());
                true
            });
            Batch {
                ns_per_call: ns,
                off_path: 0,
                ..Batch::default()
            }
        }),
        row("clock: TSC read", |n, first| {
            let (ns, _) = time_calls(n, first, |_| {
                black_box(tsc());
                true
            });
            Batch {
                ns_per_call: ns,
                off_path: 0,
                ..Batch::default()
            }
        }),
    ];

    if !args.only.is_empty() {
        table.retain(|row| {
            args.only
                .iter()
                .any(|only| row.name.contains(only.as_str()))
        });
    }
    let started = Instant::now();
    let mut trace = 1u64 << 40;
    // Round 0 warms everything up and is not kept; then every round runs every row once,
    // starting at a different row each round so that no row always follows the same one.
    for round in 0..=args.rounds {
        let rows = table.len();
        for k in 0..rows {
            let index = (k + round) % rows;
            let row = &mut table[index];
            let batch = (row.run)(args.batch, trace);
            trace += args.batch;
            if round > 0 {
                row.samples.push(batch.ns_per_call);
                row.off_path += batch.off_path;
                row.busy_polls += batch.busy_polls;
                row.taken += batch.taken;
                row.empty_polls += batch.empty_polls;
            }
        }
    }
    let elapsed = started.elapsed();

    let medians: Vec<f64> = table.iter_mut().map(|r| median(&mut r.samples)).collect();
    let find = |name: &str| {
        table
            .iter()
            .position(|r| r.name == name)
            .map_or(f64::NAN, |i| medians[i])
    };
    let reference = find("ringlat single producer");
    let date = String::from_utf8(
        std::process::Command::new("date")
            .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
            .output()
            .map(|o| o.stdout)
            .unwrap_or_default(),
    )
    .unwrap_or_default()
    .trim()
    .to_owned();
    let consumer = format!(
        "rows with a consumer (ringlat written rows: a ringlat-read Drainer, 4096 at most \
        per poll; rtrb, ArrayQueue, Mutex<VecDeque>, stamped floors: pop, 4096 at most) run it \
        on its own thread during the timed batch, every one by the same rule: '{}' ({}); \
        after each batch the harness waits, untimed, until it has taken everything, so the \
        ring never fills; 'per poll' = items a consumer poll that found any took during the \
        timed batch (1 = it chased the producer record by record); 'empty/1k' = polls that \
        found nothing per 1000 items taken (a consumer spinning on the position word); rows 'no concurrent \
        consumer' drain after the timed batch; 'off path' counts calls that did not take the \
        row's path",
        polling.name(),
        match polling {
            Polling::Spin => "poll again at once, yield_now after an empty poll",
            Polling::Ringcat => {
                "as ringcat drain: after an empty poll sleep 100 us doubling to 12.8 ms"
            }
        }
    );
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    println!("ringlat comparison harness, {date}");
    println!("machine: {} (load average {load} at the end)", machine());
    println!(
        "{} rounds x {} calls per row, interleaved; rings in {} (capacity {CAPACITY}); {:.1} s",
        args.rounds,
        args.batch,
        base.display(),
        elapsed.as_secs_f64()
    );
    println!("consumer: {consumer}");
    println!();
    println!(
        "{:<72} {:>9} {:>9} {:>9} {:>12} {:>8} {:>9} {:>9}",
        "row", "median ns", "min ns", "max ns", "x ringlat sp", "per poll", "empty/1k", "off path"
    );
    let mut rows_json = Vec::new();
    for (row, med) in table.iter().zip(&medians) {
        let min = row.samples.first().copied().unwrap_or(f64::NAN);
        let max = row.samples.last().copied().unwrap_or(f64::NAN);
        let (per_poll, empty) = if row.busy_polls > 0 {
            (
                format!("{:.1}", row.taken as f64 / row.busy_polls as f64),
                format!("{:.0}", 1000.0 * row.empty_polls as f64 / row.taken as f64),
            )
        } else {
            ("-".to_owned(), "-".to_owned())
        };
        println!(
            "{:<72} {:>9.1} {:>9.1} {:>9.1} {:>12.2} {:>8} {:>9} {:>9}",
            row.name,
            med,
            min,
            max,
            med / reference,
            per_poll,
            empty,
            row.off_path
        );
        rows_json.push(serde_json::json!({
            "row": row.name, "median_ns": med, "min_ns": min, "max_ns": max,
            "ratio_to_ringlat_single_producer": med / reference, "off_path_calls": row.off_path,
            "consumer_polls_taking": row.busy_polls, "consumer_taken": row.taken,
            "consumer_polls_empty": row.empty_polls,
        }));
    }
    let targets = [
        (
            "record written, single producer / rtrb push + Instant::now",
            "ringlat single producer",
            "rtrb push + Instant::now",
            0.7,
        ),
        (
            "record written, 2 producers / ArrayQueue push + Instant::now, 2 threads",
            "ringlat multi producer, 2 threads",
            "ArrayQueue push + Instant::now, 2 threads",
            0.8,
        ),
        (
            "record written, single producer / floor",
            "ringlat single producer",
            "floor: TSC read + CAS + 21-byte store (mapped)",
            1.3,
        ),
        (
            "record sampled out (random) / hdrhistogram record",
            "ringlat sampled out, random",
            "hdrhistogram record",
            1.0,
        ),
        (
            "record breaker open / hdrhistogram record",
            "ringlat breaker open",
            "hdrhistogram record",
            0.5,
        ),
    ];
    println!();
    println!(
        "{:<72} {:>7} {:>7}  issue 13 target (measured, not asserted)",
        "ratio", "now", "target"
    );
    let mut targets_json = Vec::new();
    for (label, ours, theirs, target) in targets {
        let ratio = find(ours) / find(theirs);
        let verdict = if ratio <= target { "met" } else { "not met" };
        println!("{label:<72} {ratio:>7.2} {target:>7.2}  {verdict}");
        targets_json.push(serde_json::json!({
            "ratio": label, "numerator": ours, "denominator": theirs,
            "value": ratio, "target": target, "met": ratio <= target,
        }));
    }
    let json = serde_json::json!({
        "date": date, "machine": machine(), "load_average": load, "rounds": args.rounds, "batch": args.batch,
        "quick": args.quick, "capacity": CAPACITY, "dir": base, "consumer": consumer,
        "consumer_rule": polling.name(),
        "seconds": elapsed.as_secs_f64(), "rows": rows_json, "targets": targets_json,
    });
    if let Some(parent) = args.json.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    match std::fs::write(&args.json, serde_json::to_string_pretty(&json).unwrap()) {
        Ok(()) => println!("\nJSON: {}", args.json.display()),
        Err(e) => {
            eprintln!("compare: writing {}: {e}", args.json.display());
            std::process::exit(2);
        }
    }
}
