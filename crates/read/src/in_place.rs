//! Reading a ring that no writer writes to any more (closed, or its writer dead) in place:
//! each pass reads the committed slots straight from the mapped file, validated one by one,
//! instead of a copy of them (a [`RingSnapshot`](crate::RingSnapshot)).
//!
//! Why passes agree without a copy: a slot changes only when a producer reserves its
//! position's next lap, and every reservation moves tail; a consumer that drains meanwhile
//! moves head but leaves the slots as they are. So as long as tail stays where it was when
//! the first pass began and no writer came back (checked after each pass,
//! [`InPlace::check_unchanged`]), every pass reads the same slots and finds the same
//! records. The positions read are fixed at the first pass (head to tail then), whatever a
//! consumer does later.

use crate::percentile::weight_of;
use crate::{ReadError, RingFile, Sample, WriterState};

/// The positions a ring read in place covers, and the tables that turn a slot into a
/// [`Sample`] and its weight.
#[derive(Debug)]
pub struct InPlace {
    /// The first position read (head when the first pass began).
    head: u32,
    /// Tail then: a writer that reserved a position since has moved it.
    tail: u32,
    /// Positions from `head`: at most the capacity.
    len: u32,
    unit_ns: i64,
    /// Per class (indexing a `u8` into these arrays needs no bounds check).
    probability: Box<[f64; 256]>,
    weight: Box<[u128; 256]>,
    /// Per kind: declared (a committed slot of an undeclared kind is damage).
    kind_ok: Box<[bool; 256]>,
}

impl InPlace {
    /// The ring as it is now, if no writer is alive to write to it (else `None`: the passes
    /// read a snapshot).
    pub(crate) fn of(file: &RingFile) -> Option<Self> {
        if file.writer_state() == WriterState::Alive {
            return None;
        }
        let (head, tail) = file.positions();
        let probability: Box<[f64; 256]> =
            Box::new(std::array::from_fn(|c| file.class_probability(c as u8)));
        Some(InPlace {
            head,
            tail,
            len: tail.wrapping_sub(head).min(file.geometry().capacity),
            unit_ns: file.delta_unit().nanos() as i64,
            weight: Box::new(std::array::from_fn(|c| weight_of(probability[c], false))),
            probability,
            kind_ok: Box::new(std::array::from_fn(|k| file.kind_name(k as u8).is_some())),
        })
    }

    /// Positions a pass covers (its units; in-flight, given-up and damaged slots among them
    /// are passed over).
    pub(crate) fn len(&self) -> u64 {
        u64::from(self.len)
    }

    /// Visits the records at positions `head + range` (clamped to [`len`](Self::len)), each
    /// with its weight. A slot that does not hold its position's committed record (the
    /// writer died while writing it, or gave it up) is passed over, as a snapshot passes over
    /// it; so is one whose kind is undeclared or class unused (damage, counted by a snapshot
    /// in [`RingFile::invalid_slots`], not here: the passes would count it again each time).
    #[inline]
    pub(crate) fn scan(
        &self,
        file: &RingFile,
        range: std::ops::Range<u64>,
        mut visit: impl FnMut(&Sample, u128),
    ) {
        let ring = file.ring();
        let end = range.end.min(self.len());
        for offset in range.start.min(end)..end {
            let Some(slot) = ring.read_committed(self.head.wrapping_add(offset as u32)) else {
                continue;
            };
            let (kind, class) = (slot.meta.kind, slot.meta.class);
            let probability = self.probability[usize::from(class)];
            if probability == 0.0 || !self.kind_ok[usize::from(kind)] {
                continue;
            }
            visit(
                &Sample {
                    nanotime: slot.record.nanotime(),
                    trace_id: slot.record.trace_id(),
                    delta_ns: i64::from(slot.record.delta()).saturating_mul(self.unit_ns),
                    status: slot.record.status(),
                    kind,
                    probability,
                },
                self.weight[usize::from(class)],
            );
        }
    }

    /// Fails when the passes so far may not have read what the first one read: the file
    /// shrank, or a writer came back (tail moved, or a writer is alive now).
    pub(crate) fn check_unchanged(&self, file: &RingFile) -> Result<(), ReadError> {
        file.check_intact()?;
        if file.positions().1 != self.tail || file.writer_state() == WriterState::Alive {
            return Err(ReadError::Rewritten {
                path: file.path().to_path_buf(),
            });
        }
        Ok(())
    }
}
