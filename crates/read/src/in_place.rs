//! Reading a ring in place: each pass reads the committed slots straight from the mapped
//! file, validated one by one (as a seqlock reader), instead of a copy of them (a
//! [`RingSnapshot`](crate::RingSnapshot)).
//!
//! Why passes agree without a copy: a committed slot changes only when a producer writes it
//! again, and a producer writes only a position it reserved, after a consumer (or, in
//! overwrite mode, the producer itself) freed the slot; a consumer that drains moves head but
//! leaves the slots as they are. The positions read are fixed at the first pass (head to tail
//! then), whatever a consumer does later. Two cases:
//!
//! * No writer is left (closed, or dead with every witness agreeing: no lock holder, and
//!   neither its pid nor its heartbeat says otherwise; a writer judged dead while alive could
//!   still commit a slot it reserved before the read began, without moving tail). After each
//!   pass ([`InPlace::end_pass`]) tail must be where it was and no writer alive.
//! * A live writer, a ring that is not in overwrite mode and no consumer holding the consumer
//!   lock (else a snapshot: a drain frees slots that a busy writer then rewrites under the
//!   passes). Slots reserved before the read began may still be committed during it: so a
//!   position whose slot does not hold its committed record when a pass first reads it (in
//!   flight, or given up: its stamp says so) is a hole that every later pass passes over
//!   too (a snapshot passes over such slots). The first pass finds them itself, from the
//!   stamps it loads anyway, rather than a pass over the stamps before it (128 MiB for 2^24
//!   slots). A later pass cannot find a new one where an earlier pass read: a committed
//!   stamp changes only to a later lap's. Any other position whose slot no longer holds its
//!   record when a pass reads it was freed and written again meanwhile (a consumer came
//!   after all): a record missed if the first pass over every position found it so (a
//!   rewritten slot stays rewritten: the later passes miss it too, and must find as many
//!   records), else the pass fails (the command may then read a copy instead).
//!
//! Either way, after each pass the file must be intact, and a pass over every position must
//! have found as many records as the first one did: else the command fails
//! ([`ReadError::Rewritten`]) rather than combine passes that may disagree.

use crate::locks::consumer_lock_held;
use crate::sample::{RingRecord, RingTables};
use crate::{ReadError, RingFile, Sample, WriterState};
use ringlat_ring::{Fields, Missing, RegionStorage, Ring};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// The positions a ring read in place covers, and the tables that turn a slot into a
/// [`Sample`] and its weight (see [`RingView`](crate::RingView)).
///
/// ```
/// fn in_place(view: &ringlat_read::RingView) -> Option<&ringlat_read::InPlace> {
///     match view {
///         ringlat_read::RingView::InPlace(in_place) => Some(in_place),
///         ringlat_read::RingView::Snapshot(_) => None,
///     }
/// }
/// ```
#[derive(Debug)]
pub struct InPlace {
    /// The first position read (head when the first pass began).
    head: u32,
    /// Tail then: a writer that reserved a position since has moved it.
    tail: u32,
    /// Positions from `head`: at most the capacity.
    len: u32,
    tables: RingTables,
    /// Per kind: declared; per class: in use (a committed slot of an undeclared kind or an
    /// unused class is damage).
    kind_ok: Box<[bool; 256]>,
    class_ok: Box<[bool; 256]>,
    /// Whether a writer was alive when the view was made.
    live: bool,
    /// Of a live ring: the holes found so far (offsets from head, ascending), which every
    /// later pass passes over; and how many of them were in flight (the others were given
    /// up).
    holes: Mutex<Vec<u32>>,
    in_flight: AtomicU64,
    /// Set when the first pass over every position has ended: no hole is found after it
    /// (every position was read), a slot missing its record is then a rewritten one.
    holes_settled: AtomicBool,
    /// This pass so far: positions scanned, records visited, damaged slots passed over,
    /// slots of a live ring rewritten since the view was made.
    covered: AtomicU64,
    visited: AtomicU64,
    damaged: AtomicU64,
    rewritten: AtomicU64,
    /// The records the first pass over every position visited (`u64::MAX`: none yet), and
    /// the slots of a live ring it found rewritten.
    first_visited: AtomicU64,
    missed: AtomicU64,
}

impl InPlace {
    /// The ring as it is now, read in place if no writer is left to write to it (closed, or
    /// dead with every witness agreeing) or if its live writer cannot rewrite a slot under
    /// the passes unless a consumer comes (not in overwrite mode, no consumer now); else
    /// `None`: the passes read a snapshot.
    pub(crate) fn of(file: &RingFile) -> Option<Self> {
        let live = if file.closed_by_writer() {
            false
        } else if file.writer_seems_alive() {
            // Taken as alive without the writer lock's lookup (about 10 ms, see
            // `writer_state`): were the writer dead, reading its ring as live is the careful
            // side.
            true
        } else {
            let liveness = file.liveness();
            match liveness.state {
                WriterState::Closed => false,
                WriterState::Dead if liveness.disagreement.is_none() => false,
                // The witnesses disagree: whether slots may still be committed is unclear.
                WriterState::Dead => return None,
                WriterState::Alive => true,
            }
        };
        // A failed look at the lock counts as a consumer.
        if live && (file.overwrite || consumer_lock_held(&file.file).unwrap_or(true)) {
            return None;
        }
        let (head, tail) = file.positions();
        let len = tail.wrapping_sub(head).min(file.geometry().capacity);
        Some(InPlace {
            head,
            tail,
            len,
            tables: RingTables::of(file),
            kind_ok: Box::new(std::array::from_fn(|k| file.kind_name(k as u8).is_some())),
            class_ok: Box::new(std::array::from_fn(|c| {
                file.class_probability(c as u8) != 0.0
            })),
            live,
            holes: Mutex::new(Vec::new()),
            in_flight: AtomicU64::new(0),
            holes_settled: AtomicBool::new(false),
            covered: AtomicU64::new(0),
            visited: AtomicU64::new(0),
            damaged: AtomicU64::new(0),
            rewritten: AtomicU64::new(0),
            first_visited: AtomicU64::new(u64::MAX),
            missed: AtomicU64::new(0),
        })
    }

    /// Whether a writer was alive when the view was made (its slots are then read as a
    /// seqlock reader reads them).
    #[cfg(test)]
    pub(crate) fn is_live(&self) -> bool {
        self.live
    }

    /// Slots passed over because they were being written when a pass first read them, and
    /// by every pass after it (a live ring; 0 with no writer left: an unfinished slot is
    /// then abandoned).
    pub(crate) fn in_flight(&self) -> u64 {
        // Relaxed: counted by the passes' scans, read after their threads are joined.
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Starts a pass: its counts from zero.
    pub(crate) fn begin_pass(&self) {
        // Relaxed: the pass's scans start after this (thread spawn or program order).
        for count in [&self.covered, &self.visited, &self.damaged, &self.rewritten] {
            count.store(0, Ordering::Relaxed);
        }
    }

    /// Positions a pass covers (its units; in-flight, given-up and damaged slots among them
    /// are passed over).
    pub(crate) fn len(&self) -> u64 {
        u64::from(self.len)
    }

    /// Visits the records at positions `head + range` (clamped to [`len`](Self::len)), each
    /// with its unit (position less `head`) and weight. A slot that does not hold its
    /// position's committed record (the writer died while writing it, or gave it up; of a
    /// live ring: in flight when a pass first read it) is passed over, as a snapshot passes
    /// over it; so is one whose kind is undeclared or class unused (damage: counted in
    /// [`RingFile::invalid_slots`] by the first pass over every position, once). Of a live
    /// ring, a slot in flight or given up when first read is a hole, passed over by every
    /// later pass; any other slot that does not hold its record was rewritten: counted, and
    /// judged by [`end_pass`](Self::end_pass). Of each record, `fields` (the others are 0).
    #[inline]
    pub(crate) fn scan(
        &self,
        file: &RingFile,
        range: Range<u64>,
        fields: Fields,
        mut visit: impl FnMut(u64, &Sample, u128),
    ) {
        let ring = file.ring();
        let end = range.end.min(self.len());
        let start = range.start.min(end);
        let mut counts = Counts::default();
        if self.live {
            // The holes found so far in the range (few: a copy, so that no lock is held while
            // the range is read), and the runs of positions between them.
            let known = {
                let holes = self.holes.lock().unwrap_or_else(PoisonError::into_inner);
                let first = holes.partition_point(|&hole| u64::from(hole) < start);
                let last = holes.partition_point(|&hole| u64::from(hole) < end);
                holes[first..last].to_vec()
            };
            let mut runs = Vec::with_capacity(known.len() + 1);
            let mut from = start;
            for hole in known {
                let hole = u64::from(hole).max(from);
                runs.push(from..hole);
                from = hole + 1;
            }
            runs.push(from..end);
            let mut found = Holes::default();
            // A loop of its own for each choice of fields, with them a constant there: the
            // pieces left out are then known where a group is loaded.
            let mut scan_runs = |fields| {
                for run in &runs {
                    self.scan_live(
                        ring,
                        run.clone(),
                        fields,
                        &mut counts,
                        &mut found,
                        &mut visit,
                    );
                }
            };
            match fields {
                Fields::All => scan_runs(Fields::All),
                Fields::StatusAndDelta => scan_runs(Fields::StatusAndDelta),
            }
            if !found.offsets.is_empty() {
                // Relaxed: a count read after the passes' threads are joined.
                self.in_flight.fetch_add(found.in_flight, Ordering::Relaxed);
                let mut holes = self.holes.lock().unwrap_or_else(PoisonError::into_inner);
                holes.extend(found.offsets);
                holes.sort_unstable();
                // Scans of a pass cover disjoint ranges, so none is found twice; were one
                // found twice, the runs between holes in `scan` must not go backwards.
                holes.dedup();
            }
        } else {
            // Plain copies: a field not read costs no load, whatever `fields` says; those
            // left out are made 0 all the same (a loop for each).
            let mut scan_closed =
                |fields| self.scan_closed(ring, start..end, fields, &mut counts, &mut visit);
            match fields {
                Fields::All => scan_closed(Fields::All),
                Fields::StatusAndDelta => scan_closed(Fields::StatusAndDelta),
            }
        }
        // Relaxed: statistics of the pass, read by `end_pass` after its threads are joined.
        self.covered.fetch_add(end - start, Ordering::Relaxed);
        self.visited.fetch_add(counts.visited, Ordering::Relaxed);
        self.damaged.fetch_add(counts.damaged, Ordering::Relaxed);
        self.rewritten
            .fetch_add(counts.rewritten, Ordering::Relaxed);
    }

    /// The slots at offsets `range` of a live ring, none of them a hole found earlier: a slot
    /// that does not hold its record is a new hole if in flight or given up (until the holes
    /// are settled), else rewritten. Of each record, `fields` (the others are 0): where the
    /// call is inlined with `fields` a constant, the pieces of the others are not loaded.
    ///
    /// Its checks are written out again in `scan_closed`: a function for both loops
    /// (inlined) cost both 5-10% more instructions (a live ring of 2^24 slots 2.26G ->
    /// 2.47G, a closed one of 2^21 206M -> 217M, `pct --by kind`, cachegrind).
    #[inline(always)]
    fn scan_live(
        &self,
        ring: &Ring<RegionStorage>,
        range: Range<u64>,
        fields: Fields,
        counts: &mut Counts,
        found: &mut Holes,
        visit: &mut impl FnMut(u64, &Sample, u128),
    ) {
        // Held in locals: read through `self` they were loaded again for every slot.
        let (kind_ok, class_ok, tables) = (&*self.kind_ok, &*self.class_ok, &self.tables);
        // Relaxed: stored by `end_pass`, before this pass began (program order or spawn).
        let settled = self.holes_settled.load(Ordering::Relaxed);
        let (mut visited, mut damaged, mut rewritten) = (0, 0, 0);
        let first = self.head.wrapping_add(range.start as u32);
        let count = (range.end - range.start) as u32;
        // Always inlined: a call per slot, and the slot's trip through memory, cost more
        // than the work.
        ring.for_each_committed_fields(
            first,
            count,
            fields,
            #[inline(always)]
            |offset, slot| {
                let slot = match slot {
                    Ok(slot) => slot,
                    Err(missing @ (Missing::InFlight | Missing::GivenUp)) if !settled => {
                        found.offsets.push(range.start as u32 + offset);
                        found.in_flight += u64::from(missing == Missing::InFlight);
                        return;
                    }
                    Err(_) => {
                        rewritten += 1;
                        return;
                    }
                };
                // As in `scan_closed`.
                let (kind, class) = (slot.meta.kind, slot.meta.class);
                if !(class_ok[usize::from(class)] & kind_ok[usize::from(kind)]) {
                    damaged += 1;
                    return;
                }
                visited += 1;
                let record = RingRecord::from_slot(&slot.record, kind, class);
                let offset = range.start + u64::from(offset);
                visit(offset, &tables.sample(&record), tables.weight(class));
            },
        );
        counts.visited += visited;
        counts.damaged += damaged;
        counts.rewritten += rewritten;
    }

    /// The slots at offsets `range` of a ring with no writer left: a slot that does not hold
    /// its record was abandoned (its writer died while writing it) or given up. Of each
    /// record, `fields` (the others are made 0: read with plain copies, a field not read costs
    /// no load anyway).
    #[inline(always)]
    fn scan_closed(
        &self,
        ring: &Ring<RegionStorage>,
        range: Range<u64>,
        fields: Fields,
        counts: &mut Counts,
        visit: &mut impl FnMut(u64, &Sample, u128),
    ) {
        let (kind_ok, class_ok, tables) = (&*self.kind_ok, &*self.class_ok, &self.tables);
        let (mut visited, mut damaged) = (0, 0);
        let first = self.head.wrapping_add(range.start as u32);
        let count = (range.end - range.start) as u32;
        // SAFETY: no producer is left (see `of`: the writer closed the file, or died with
        // every witness agreeing), and none can come: a writer only ever creates a new file,
        // and a consumer writes stamps and the ring word, never records. (A writer judged
        // gone wrongly is still caught after the pass, by tail; the walk reads the records
        // of its unfinished slots too, and throws them away.) Walked as pointers over at
        // most two runs of slots rather than slot by slot: 215.8M -> 206.2M instructions for
        // `pct --by kind` over 2^21 slots (cachegrind).
        unsafe {
            ring.for_each_committed_unshared(first, count, |offset, slot| {
                let Some(slot) = slot else {
                    return;
                };
                // As in `scan_live` (written twice: see there).
                let (kind, class) = (slot.meta.kind, slot.meta.class);
                if !(class_ok[usize::from(class)] & kind_ok[usize::from(kind)]) {
                    damaged += 1;
                    return;
                }
                visited += 1;
                let record = RingRecord::from_slot(&fields.of(slot.record), kind, class);
                let offset = range.start + u64::from(offset);
                visit(offset, &tables.sample(&record), tables.weight(class));
            })
        };
        counts.visited += visited;
        counts.damaged += damaged;
    }

    /// Ends a pass: fails when the passes so far may not have read what the first one read
    /// (the file shrank; with no writer left, a writer came back: tail moved or a writer is
    /// alive now; a pass over every position found another number of records than the first
    /// did; of a live ring, a pass over some positions found one rewritten).
    ///
    /// Of a live ring, the slots that the first pass over every position found rewritten
    /// (a consumer came and freed them, and the writer wrote there again) are records missed,
    /// counted in [`missed`](Self::missed): a slot rewritten stays so, so a later pass over
    /// every position that finds as many records finds the same ones.
    pub(crate) fn end_pass(&self, file: &RingFile) -> Result<(), ReadError> {
        file.check_intact()?;
        let rewritten = || ReadError::Rewritten {
            path: file.path().to_path_buf(),
        };
        if !self.live
            && (file.positions().1 != self.tail || file.writer_state() == WriterState::Alive)
        {
            return Err(rewritten());
        }
        // Relaxed (every load below): the pass's threads are joined (their counts happen
        // before this).
        if self.covered.load(Ordering::Relaxed) != self.len() {
            // Which positions the first pass missed is not known: none may be missing.
            if self.rewritten.load(Ordering::Relaxed) != 0 {
                return Err(rewritten());
            }
            return Ok(());
        }
        let visited = self.visited.load(Ordering::Relaxed);
        let first = self.first_visited.load(Ordering::Relaxed);
        if first == u64::MAX {
            self.first_visited.store(visited, Ordering::Relaxed);
            self.holes_settled.store(true, Ordering::Relaxed);
            self.missed
                .store(self.rewritten.load(Ordering::Relaxed), Ordering::Relaxed);
            file.count_invalid(self.damaged.load(Ordering::Relaxed));
        } else if first != visited {
            return Err(rewritten());
        }
        Ok(())
    }

    /// Records of a live ring that the first pass over every position found rewritten
    /// (consumed, and their slots written again by the writer) and passed over, as every
    /// later pass does.
    pub(crate) fn missed(&self) -> u64 {
        // Relaxed: a count stored by `end_pass`, read after it.
        self.missed.load(Ordering::Relaxed)
    }
}

/// What one scan counted.
#[derive(Default)]
struct Counts {
    visited: u64,
    damaged: u64,
    rewritten: u64,
}

/// Holes one scan found: offsets from head, ascending, and how many of them were in flight
/// (the others were given up).
#[derive(Default)]
struct Holes {
    offsets: Vec<u32>,
    in_flight: u64,
}
