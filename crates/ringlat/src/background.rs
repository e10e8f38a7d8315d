//! The background thread and everything off the hot path: heartbeat, publishing the striped
//! counters into the header, load degradation, closing the breaker, flushing, and shutdown.

use crate::Error;
use crate::policy::{Flush, Overflow};
use crate::sampler::level_for;
use crate::shared::Shared;
use crate::stripes::EXTRA_OVERWRITTEN;
use ringlat_format::{
    DURABLE_POSITION, DURABLE_VALID, GlobalCounter, HEADER_SIZE, HEARTBEAT_UNIX_NS, KindCounter,
    KindField, META_SIZE, RECORD_SIZE, STATE, STATE_CLOSED, STUCK_POSITION, STUCK_SINCE_UNIX_NS,
    STUCK_VALID, SlotMeta,
};
use ringlat_ring::Storage;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

/// State only the background thread, `flush` and close touch (under `Shared::cold`).
#[derive(Debug)]
pub(crate) struct ColdState {
    /// Positions before this were handed to msync already (async flush).
    flushed_to: u32,
    /// Positions before this are durable (synchronous flush), if one completed.
    durable_to: Option<u32>,
    last_sync: Instant,
    rate_window_start: Instant,
    calls_at_window_start: Vec<u64>,
    /// The watchdog's cursor: positions before it (and at or after head) are finished.
    watch: u32,
    /// The unfinished position the watchdog stopped at, since when (monotonic, UNIX ns).
    stuck: Option<(u32, Instant, u64)>,
}

impl ColdState {
    pub(crate) fn new(start_position: u32, kinds: usize) -> Self {
        let now = Instant::now();
        ColdState {
            flushed_to: start_position,
            durable_to: None,
            last_sync: now,
            rate_window_start: now,
            calls_at_window_start: vec![0; kinds],
            watch: start_position,
            stuck: None,
        }
    }
}

impl Shared {
    fn header_u64_store(&self, offset: usize, value: u64) {
        if let Some(cell) = self.ring.storage().u64_at(offset) {
            // Relaxed: statistics and status; a reader that needs them complete reads after
            // the Release store of STATE on close (or the heartbeat's Release below).
            cell.store(value, Ordering::Relaxed);
        }
    }

    fn header_u32_store(&self, offset: usize, value: u32) {
        if let Some(cell) = self.ring.storage().u32_at(offset) {
            // Relaxed: as in `header_u64_store`. A `u32` field is stored with a `u32` access,
            // the size FORMAT.md gives it and readers load it with (no mixed-size access).
            cell.store(value, Ordering::Relaxed);
        }
    }

    fn count_msync(&self) {
        if let Some(cell) = self.ring.storage().u64_at(GlobalCounter::Msyncs.offset()) {
            // Relaxed: a statistic, written by the flushing side only.
            cell.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Copies the striped counters into the header: exact for every call that happened before.
    fn publish_counters(&self) {
        for kind in &self.kinds {
            for counter in KindCounter::ALL {
                let sum = self.stripes().sum(kind.dense, counter);
                self.header_u64_store(counter.offset(kind.kind), sum);
            }
        }
        self.header_u64_store(
            GlobalCounter::Overwritten.offset(),
            self.stripes().sum_extra(EXTRA_OVERWRITTEN),
        );
    }

    fn heartbeat(&self) {
        if let Some(cell) = self.ring.storage().u64_at(HEARTBEAT_UNIX_NS) {
            // Release: pairs with a reader's Acquire load of the heartbeat; the counters
            // published just before are visible with it.
            cell.store(self.anchor().unix_now(), Ordering::Release);
        }
    }

    /// Measures each degradable kind's call rate over the window and sets its class.
    fn adjust_rates(&self, cold: &mut ColdState, now: Instant) {
        let elapsed = now.duration_since(cold.rate_window_start);
        if elapsed < self.policy.rate_window {
            return;
        }
        for kind in &self.kinds {
            let calls = self.stripes().calls(kind.dense);
            let before = cold
                .calls_at_window_start
                .get(kind.dense)
                .copied()
                .unwrap_or(0);
            let per_second = (calls - before) as f64 / elapsed.as_secs_f64();
            self.header_u64_store(
                KindField::CallsPerSecond.offset(kind.kind),
                per_second as u64,
            );
            if kind.load_threshold > 0 && !kind.levels.is_empty() {
                let level = level_for(
                    per_second,
                    kind.load_threshold,
                    self.policy.degrade_factor,
                    kind.levels.len() - 1,
                );
                let class = kind.levels[level];
                self.set_class(kind.kind, class);
                self.header_u32_store(KindField::CurrentClass.offset(kind.kind), u32::from(class));
            }
            if let Some(slot) = cold.calls_at_window_start.get_mut(kind.dense) {
                *slot = calls;
            }
        }
        cold.rate_window_start = now;
    }

    fn maybe_close_breaker(&self) {
        if self.policy.overflow == Overflow::Break && self.breaker_is_open() {
            let (head, tail) = self.ring.positions();
            let free = self.ring.capacity() - tail.wrapping_sub(head);
            if free > self.high_water {
                self.close_breaker();
            }
        }
    }

    /// Byte ranges `(offset, len)` of the records and stamps of positions `from..to`.
    fn dirty_ranges(&self, from: u32, to: u32) -> Vec<(usize, usize)> {
        let capacity = self.ring.capacity();
        let count = to.wrapping_sub(from).min(capacity);
        if count == 0 {
            return Vec::new();
        }
        let geometry = self.ring.storage().geometry();
        let first = to.wrapping_sub(count) & (capacity - 1);
        let split = (capacity - first).min(count);
        let mut ranges = Vec::with_capacity(4);
        for (area, size) in [
            (geometry.records_offset as usize, RECORD_SIZE),
            (geometry.meta_offset as usize, META_SIZE),
        ] {
            ranges.push((area + first as usize * size, split as usize * size));
            if split < count {
                ranges.push((area, (count - split) as usize * size));
            }
        }
        ranges
    }

    /// Where the finished prefix starting at `from` ends (stops at `tail` or at the first
    /// position not finished yet; a given-up position has no record and does not stop it).
    fn committed_prefix_end(&self, from: u32, tail: u32) -> u32 {
        let mut position = from;
        while position != tail {
            let index = position & (self.ring.capacity() - 1);
            // Acquire: pairs with the producer's Release commit store; the record bytes it
            // covers are in the mapping before we ask msync to write them.
            let word = self.ring.storage().meta(index).load(Ordering::Acquire);
            if !SlotMeta::word_is_finished_at(word, position) {
                break;
            }
            position = position.wrapping_add(1);
        }
        position
    }

    fn flush_async(&self, cold: &mut ColdState) -> std::io::Result<()> {
        let (_, tail) = self.ring.positions();
        if tail == cold.flushed_to {
            return Ok(());
        }
        for (offset, len) in self.dirty_ranges(cold.flushed_to, tail) {
            self.count_msync();
            self.map.flush_async_range(offset, len)?;
        }
        self.count_msync();
        self.map.flush_async_range(0, HEADER_SIZE as usize)?;
        cold.flushed_to = tail;
        Ok(())
    }

    /// `msync(MS_SYNC)` of everything committed since the last durable position, then
    /// records the new durable position in the header.
    fn flush_sync(&self, cold: &mut ColdState) -> std::io::Result<()> {
        let (head, tail) = self.ring.positions();
        // Positions before head left the ring (consumed or overwritten): start at head if the
        // durable position fell behind it.
        let from = match cold.durable_to {
            Some(durable) if tail.wrapping_sub(durable) <= tail.wrapping_sub(head) => durable,
            _ => head,
        };
        let to = self.committed_prefix_end(from, tail);
        for (offset, len) in self.dirty_ranges(from, to) {
            self.count_msync();
            self.map.flush_range(offset, len)?;
        }
        self.header_u64_store(DURABLE_POSITION, DURABLE_VALID | u64::from(to));
        self.count_msync();
        self.map.flush_range(0, HEADER_SIZE as usize)?;
        cold.durable_to = Some(to);
        cold.flushed_to = to;
        cold.last_sync = Instant::now();
        Ok(())
    }

    /// The watchdog (LTTng's anchor): walks a cursor over finished positions (committed,
    /// given up, or overwritten) towards tail, at most one lap per tick. A position the cursor
    /// stops at on two ticks in a row is published in the header as stuck, with the instant
    /// it was first seen, so that `ringcat stat` can say which position and for how long; the
    /// mark goes once the position is finished (committed, or unblocked by a consumer).
    fn watch_stuck(&self, cold: &mut ColdState, now: Instant) {
        let (head, tail) = self.ring.positions();
        if tail.wrapping_sub(cold.watch) > tail.wrapping_sub(head) {
            // Consumed or overwritten past the cursor (or the cursor is nonsense): restart.
            cold.watch = head;
        }
        let mask = self.ring.capacity() - 1;
        let mut steps = 0;
        while cold.watch != tail && steps <= mask {
            let index = cold.watch & mask;
            // Acquire: pairs with the producer's Release commit, like any reader of a stamp.
            let word = self.ring.storage().meta(index).load(Ordering::Acquire);
            let finished = SlotMeta::word_is_finished_at(word, cold.watch);
            if !finished {
                break;
            }
            cold.watch = cold.watch.wrapping_add(1);
            steps += 1;
        }
        if cold.watch == tail {
            if cold.stuck.take().is_some() {
                self.header_u64_store(STUCK_POSITION, 0);
            }
            return;
        }
        match cold.stuck {
            Some((position, first_seen, since_unix))
                if position == cold.watch && now > first_seen =>
            {
                self.header_u64_store(STUCK_SINCE_UNIX_NS, since_unix);
                self.header_u64_store(STUCK_POSITION, STUCK_VALID | u64::from(position));
            }
            Some((position, ..)) if position == cold.watch => {}
            _ => {
                if cold.stuck.is_some() {
                    self.header_u64_store(STUCK_POSITION, 0);
                }
                cold.stuck = Some((cold.watch, now, self.anchor().unix_now()));
            }
        }
    }

    /// One period of the background thread.
    pub(crate) fn tick(&self) -> std::io::Result<()> {
        let mut cold = self.cold.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        self.publish_counters();
        self.publish_histograms();
        self.adjust_rates(&mut cold, now);
        self.maybe_close_breaker();
        self.mirror_breaker();
        self.watch_stuck(&mut cold, now);
        self.heartbeat();
        match self.policy.flush {
            Flush::Async => self.flush_async(&mut cold),
            Flush::Every(interval) if now.duration_since(cold.last_sync) >= interval => {
                self.flush_sync(&mut cold)
            }
            Flush::Every(_) => Ok(()),
        }
    }

    /// Publishes the counters and flushes synchronously (`Ring::flush`).
    pub(crate) fn flush_now(&self) -> Result<(), Error> {
        let mut cold = self.cold.lock().unwrap_or_else(PoisonError::into_inner);
        self.publish_counters();
        self.publish_histograms();
        self.heartbeat();
        self.flush_sync(&mut cold)
            .map_err(self.io_error("flushing (msync)"))
    }

    /// Final flush and the closed mark; called once, after the background thread stopped.
    pub(crate) fn close(&self) -> Result<(), Error> {
        self.flush_now()?;
        if let Some(state) = self.ring.storage().u32_at(STATE) {
            // Release: pairs with a reader's Acquire load of STATE; once it sees "closed",
            // every record and counter written before is visible.
            state.store(STATE_CLOSED, Ordering::Release);
        }
        self.count_msync();
        self.map
            .flush_range(0, HEADER_SIZE as usize)
            .map_err(self.io_error("flushing the header (msync)"))
    }
}

/// The running background thread of one ring.
#[derive(Debug)]
struct Background {
    stop: Arc<(Mutex<bool>, Condvar)>,
    handle: JoinHandle<()>,
}

impl Background {
    fn start(shared: Arc<Shared>) -> Result<Self, Error> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let tick = shared.policy.tick;
        let thread_stop = Arc::clone(&stop);
        let io = shared.io_error("starting the background thread");
        let handle = std::thread::Builder::new()
            .name("ringlat-background".into())
            .spawn(move || {
                let (stopped, wake) = &*thread_stop;
                let mut guard = stopped.lock().unwrap_or_else(PoisonError::into_inner);
                loop {
                    let (next, _) = wake
                        .wait_timeout_while(guard, tick, |stopped| !*stopped)
                        .unwrap_or_else(PoisonError::into_inner);
                    guard = next;
                    if *guard {
                        return;
                    }
                    // An msync error is retried next tick; close reports the final one.
                    let _ = shared.tick();
                }
            })
            .map_err(io)?;
        Ok(Background { stop, handle })
    }

    fn stop(self) {
        let (stopped, wake) = &*self.stop;
        *stopped.lock().unwrap_or_else(PoisonError::into_inner) = true;
        wake.notify_all();
        // A panic in the thread is not ours to re-raise during drop; close still runs.
        let _ = self.handle.join();
    }
}

/// Owns the shared state and its background thread; closing happens when it drops.
pub(crate) struct Writer {
    shared: Arc<Shared>,
    background: Option<Background>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("path", &self.shared.path)
            .finish()
    }
}

impl Writer {
    pub(crate) fn start(shared: Shared) -> Result<Self, Error> {
        let shared = Arc::new(shared);
        let background = Background::start(Arc::clone(&shared))?;
        Ok(Writer {
            shared,
            background: Some(background),
        })
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Stops the thread, flushes and marks the file closed.
    pub(crate) fn shutdown(&mut self) -> Result<(), Error> {
        match self.background.take() {
            Some(background) => {
                background.stop();
                self.shared.close()
            }
            None => Ok(()),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Errors cannot leave a destructor; `close()` is the way to see them.
        let _ = self.shutdown();
    }
}
