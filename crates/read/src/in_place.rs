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
//!   passes). Slots reserved before the read began may still be committed during it: so the
//!   positions whose slot did not hold their committed record when the view was made (in
//!   flight, given up) are found first, from the stamps alone, and every pass passes over
//!   them (a snapshot passes over the same slots). Any other position whose slot no longer
//!   holds its record when a pass reads it was freed and written again meanwhile (a consumer
//!   came after all): a record missed if the first pass over every position found it so
//!   (a rewritten slot stays rewritten: the later passes miss it too, and must find as many
//!   records), else the pass fails (the command may then read a copy instead).
//!
//! Either way, after each pass the file must be intact, and a pass over every position must
//! have found as many records as the first one did: else the command fails
//! ([`ReadError::Rewritten`]) rather than combine passes that may disagree.

use crate::locks::consumer_lock_held;
use crate::sample::{RingRecord, RingTables};
use crate::{ReadError, RingFile, Sample, WriterState};
use ringlat_ring::{Missing, RegionStorage, Ring};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};

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
    /// A live writer's ring: the positions every pass passes over (`None`: no writer left).
    holes: Option<Holes>,
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
        let liveness = file.liveness();
        let live = match liveness.state {
            WriterState::Closed => false,
            WriterState::Dead if liveness.disagreement.is_none() => false,
            // The witnesses disagree: whether slots may still be committed is unclear.
            WriterState::Dead => return None,
            WriterState::Alive => true,
        };
        // A failed look at the lock counts as a consumer.
        if live && (file.overwrite || consumer_lock_held(&file.file).unwrap_or(true)) {
            return None;
        }
        let (head, tail) = file.positions();
        let len = tail.wrapping_sub(head).min(file.geometry().capacity);
        let holes = live.then(|| Holes::find(file.ring(), head, len));
        let freed = holes.as_ref().is_some_and(|holes| holes.overwritten > 0);
        if freed || (live && file.positions().0 != head) {
            // A consumer came since the look at its lock and freed slots, and the writer
            // rewrote some of them before their stamps were looked at (a later lap's stamp),
            // or may have (head moved): those records would be missed without a word.
            return None;
        }
        Some(InPlace {
            head,
            tail,
            len,
            tables: RingTables::of(file),
            kind_ok: Box::new(std::array::from_fn(|k| file.kind_name(k as u8).is_some())),
            class_ok: Box::new(std::array::from_fn(|c| {
                file.class_probability(c as u8) != 0.0
            })),
            holes,
            covered: AtomicU64::new(0),
            visited: AtomicU64::new(0),
            damaged: AtomicU64::new(0),
            rewritten: AtomicU64::new(0),
            first_visited: AtomicU64::new(u64::MAX),
            missed: AtomicU64::new(0),
        })
    }

    /// Slots every pass passes over because they were being written when the view was made
    /// (a live ring; 0 with no writer left: an unfinished slot is then abandoned).
    pub(crate) fn in_flight(&self) -> u64 {
        self.holes.as_ref().map_or(0, |holes| holes.in_flight)
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
    /// live ring: in flight when the view was made) is passed over, as a snapshot passes
    /// over it; so is one whose kind is undeclared or class unused (damage: counted in
    /// [`RingFile::invalid_slots`] by the first pass over every position, once). Of a live
    /// ring, any other slot that does not hold its record was rewritten: counted, and judged
    /// by [`end_pass`](Self::end_pass).
    #[inline]
    pub(crate) fn scan(
        &self,
        file: &RingFile,
        range: Range<u64>,
        mut visit: impl FnMut(u64, &Sample, u128),
    ) {
        let ring = file.ring();
        let end = range.end.min(self.len());
        let start = range.start.min(end);
        let mut counts = Counts::default();
        match &self.holes {
            None => self.scan_closed(ring, start..end, &mut counts, &mut visit),
            Some(holes) => {
                // The runs of positions between the holes.
                let mut from = start;
                let first = holes
                    .offsets
                    .partition_point(|&hole| u64::from(hole) < start);
                for &hole in &holes.offsets[first..] {
                    let hole = u64::from(hole);
                    if hole >= end {
                        break;
                    }
                    self.scan_live(ring, from..hole, &mut counts, &mut visit);
                    from = hole + 1;
                }
                self.scan_live(ring, from..end, &mut counts, &mut visit);
            }
        }
        // Relaxed: statistics of the pass, read by `end_pass` after its threads are joined.
        self.covered.fetch_add(end - start, Ordering::Relaxed);
        self.visited.fetch_add(counts.visited, Ordering::Relaxed);
        self.damaged.fetch_add(counts.damaged, Ordering::Relaxed);
        self.rewritten
            .fetch_add(counts.rewritten, Ordering::Relaxed);
    }

    /// The slots at offsets `range` of a live ring, none of them a hole: a slot that does not
    /// hold its record now was rewritten.
    ///
    /// Its checks are written out again in `scan_closed`: a function for both loops
    /// (inlined) cost both 5-10% more instructions (a live ring of 2^24 slots 2.26G ->
    /// 2.47G, a closed one of 2^21 206M -> 217M, `pct --by kind`, cachegrind).
    #[inline(always)]
    fn scan_live(
        &self,
        ring: &Ring<RegionStorage>,
        range: Range<u64>,
        counts: &mut Counts,
        visit: &mut impl FnMut(u64, &Sample, u128),
    ) {
        // Held in locals: read through `self` they were loaded again for every slot.
        let (head, kind_ok, class_ok, tables) =
            (self.head, &*self.kind_ok, &*self.class_ok, &self.tables);
        let (mut visited, mut damaged, mut rewritten) = (0, 0, 0);
        for offset in range {
            let Some(slot) = ring.read_committed(head.wrapping_add(offset as u32)) else {
                rewritten += 1;
                continue;
            };
            let (kind, class) = (slot.meta.kind, slot.meta.class);
            // Both looked up, one branch (`&`, not `&&`): the usual slot is sound.
            if !(class_ok[usize::from(class)] & kind_ok[usize::from(kind)]) {
                damaged += 1;
                continue;
            }
            visited += 1;
            let record = RingRecord::from_slot(&slot.record, kind, class);
            visit(offset, &tables.sample(&record), tables.weight(class));
        }
        counts.visited += visited;
        counts.damaged += damaged;
        counts.rewritten += rewritten;
    }

    /// The slots at offsets `range` of a ring with no writer left: a slot that does not hold
    /// its record was abandoned (its writer died while writing it) or given up.
    #[inline(always)]
    fn scan_closed(
        &self,
        ring: &Ring<RegionStorage>,
        range: Range<u64>,
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
                // As in `scan_live`.
                let (kind, class) = (slot.meta.kind, slot.meta.class);
                if !(class_ok[usize::from(class)] & kind_ok[usize::from(kind)]) {
                    damaged += 1;
                    return;
                }
                visited += 1;
                let record = RingRecord::from_slot(&slot.record, kind, class);
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
        if self.holes.is_none()
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

/// The positions of a live ring that did not hold their committed record when the view was
/// made, as offsets from head, ascending.
#[derive(Debug)]
struct Holes {
    offsets: Vec<u32>,
    /// How many of them were in flight, and how many held a later lap's stamp (a consumer
    /// freed them, and the writer wrote them again); the others were given up.
    in_flight: u64,
    overwritten: u64,
}

impl Holes {
    /// Looks at the stamps of the `len` positions from `head` (no record is read), in a part
    /// per core when there are many: a pass over 2^24 stamps reads 128 MiB.
    fn find(ring: &Ring<RegionStorage>, head: u32, len: u32) -> Holes {
        let Some(parts) = crate::parts::on_every_core(len, |part| Holes::find_in(ring, head, part))
        else {
            return Holes::find_in(ring, head, 0..len);
        };
        Holes {
            in_flight: parts.iter().map(|part| part.in_flight).sum(),
            overwritten: parts.iter().map(|part| part.overwritten).sum(),
            offsets: parts.into_iter().flat_map(|part| part.offsets).collect(),
        }
    }

    fn find_in(ring: &Ring<RegionStorage>, head: u32, offsets: Range<u32>) -> Holes {
        let mut holes = Holes {
            offsets: Vec::new(),
            in_flight: 0,
            overwritten: 0,
        };
        for offset in offsets {
            if let Some(missing) = ring.missing_at(head.wrapping_add(offset)) {
                holes.offsets.push(offset);
                holes.in_flight += u64::from(missing == Missing::InFlight);
                holes.overwritten += u64::from(missing == Missing::Overwritten);
            }
        }
        holes
    }
}
