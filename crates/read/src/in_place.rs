//! Reading a ring that no writer writes to any more (closed, or its writer dead) in place:
//! each pass reads the committed slots straight from the mapped file, validated one by one,
//! instead of a copy of them (a [`RingSnapshot`](crate::RingSnapshot)).
//!
//! Why passes agree without a copy: a slot changes only when a producer writes it, and a
//! producer writes only a position it reserved, which moved tail; a consumer that drains
//! meanwhile moves head but leaves the slots as they are. So a ring is read in place only when
//! no producer can be left: the writer closed the file, or it is dead and every witness agrees
//! (no lock holder, and neither its pid nor its heartbeat says otherwise: a writer judged dead
//! while alive could still commit a slot it reserved before the read began, without moving
//! tail). After each pass ([`InPlace::end_pass`]) the file must be intact, tail where it was,
//! no writer alive, and a pass over every position must have found as many records as the
//! first one did: else the command fails ([`ReadError::Rewritten`]) rather than combine passes
//! that may disagree. The positions read are fixed at the first pass (head to tail then),
//! whatever a consumer does later.

use crate::sample::{RingRecord, RingTables};
use crate::{ReadError, RingFile, Sample, WriterState};
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
    /// This pass so far: positions scanned, records visited, damaged slots passed over.
    covered: AtomicU64,
    visited: AtomicU64,
    damaged: AtomicU64,
    /// The records the first pass over every position visited (`u64::MAX`: none yet).
    first_visited: AtomicU64,
}

impl InPlace {
    /// The ring as it is now, if no writer is left to write to it: closed, or dead with every
    /// witness agreeing (else `None`: the passes read a snapshot).
    pub(crate) fn of(file: &RingFile) -> Option<Self> {
        let liveness = file.liveness();
        let no_writer = match liveness.state {
            WriterState::Closed => true,
            WriterState::Dead => liveness.disagreement.is_none(),
            WriterState::Alive => false,
        };
        if !no_writer {
            return None;
        }
        let (head, tail) = file.positions();
        Some(InPlace {
            head,
            tail,
            len: tail.wrapping_sub(head).min(file.geometry().capacity),
            tables: RingTables::of(file),
            kind_ok: Box::new(std::array::from_fn(|k| file.kind_name(k as u8).is_some())),
            class_ok: Box::new(std::array::from_fn(|c| {
                file.class_probability(c as u8) != 0.0
            })),
            covered: AtomicU64::new(0),
            visited: AtomicU64::new(0),
            damaged: AtomicU64::new(0),
            first_visited: AtomicU64::new(u64::MAX),
        })
    }

    /// Starts a pass: its counts from zero.
    pub(crate) fn begin_pass(&self) {
        // Relaxed: the pass's scans start after this (thread spawn or program order).
        for count in [&self.covered, &self.visited, &self.damaged] {
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
    /// position's committed record (the writer died while writing it, or gave it up) is
    /// passed over, as a snapshot passes over it; so is one whose kind is undeclared or class unused (damage: counted in
    /// [`RingFile::invalid_slots`] by the first pass over every position, once).
    #[inline]
    pub(crate) fn scan(
        &self,
        file: &RingFile,
        range: std::ops::Range<u64>,
        mut visit: impl FnMut(u64, &Sample, u128),
    ) {
        let ring = file.ring();
        let end = range.end.min(self.len());
        let start = range.start.min(end);
        let (mut visited, mut damaged) = (0u64, 0u64);
        for offset in start..end {
            let Some(slot) = ring.read_committed(self.head.wrapping_add(offset as u32)) else {
                continue;
            };
            let (kind, class) = (slot.meta.kind, slot.meta.class);
            // Both looked up, one branch (`&`, not `&&`): the usual slot is sound.
            if !(self.class_ok[usize::from(class)] & self.kind_ok[usize::from(kind)]) {
                damaged += 1;
                continue;
            }
            visited += 1;
            let record = RingRecord::from_slot(&slot.record, kind, class);
            visit(
                offset,
                &self.tables.sample(&record),
                self.tables.weight(class),
            );
        }
        // Relaxed: statistics of the pass, read by `end_pass` after its threads are joined.
        self.covered.fetch_add(end - start, Ordering::Relaxed);
        self.visited.fetch_add(visited, Ordering::Relaxed);
        self.damaged.fetch_add(damaged, Ordering::Relaxed);
    }

    /// Ends a pass: fails when the passes so far may not have read what the first one read
    /// (the file shrank; a writer came back: tail moved, a writer is alive now, or a pass
    /// over every position found another number of records than the first).
    pub(crate) fn end_pass(&self, file: &RingFile) -> Result<(), ReadError> {
        file.check_intact()?;
        let rewritten = || ReadError::Rewritten {
            path: file.path().to_path_buf(),
        };
        if file.positions().1 != self.tail || file.writer_state() == WriterState::Alive {
            return Err(rewritten());
        }
        // Relaxed: the pass's threads are joined (their counts happen before this).
        if self.covered.load(Ordering::Relaxed) == self.len() {
            let visited = self.visited.load(Ordering::Relaxed);
            let first = self.first_visited.load(Ordering::Relaxed);
            if first == u64::MAX {
                self.first_visited.store(visited, Ordering::Relaxed);
                file.count_invalid(self.damaged.load(Ordering::Relaxed));
            } else if first != visited {
                return Err(rewritten());
            }
        }
        Ok(())
    }
}
