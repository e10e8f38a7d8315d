use crate::ring::PushError;
use crate::ring::Ring;
use crate::storage::Storage;
use crate::sync::Ordering;
use ringlat_format::{Lap, Record, SlotMeta, SlotState, lap_of, pack_positions, unpack_positions};

/// The ring had no free slot; nothing was reserved.
///
/// ```
/// use ringlat_ring::{Full, HeapStorage, Ring};
/// let ring = Ring::new(HeapStorage::new(2)).unwrap();
/// ring.reserve().unwrap();
/// ring.reserve().unwrap();
/// assert_eq!(ring.reserve(), Err(Full));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// The producer side for a ring with exactly one producer.
///
/// It writes the slot first and then publishes the new tail with one `Release` CAS, so that
/// everything below tail is always committed. It keeps tail and a cached head to itself and
/// re-reads the ring word only when the cached head says the ring is full.
///
/// Only one `SingleProducer` may push into a ring, and nothing may call [`Ring::push`] on it
/// meanwhile. Breaking that (two single producers, e.g. in the two processes after `fork`)
/// is detected, not spun on: a slot already stamped with our position or a later one, or a
/// tail moved by someone else, makes the push fail with [`PushError::NotSingle`], and every
/// later push too. The `ringlat` crate prevents it within a process with a handle that is
/// neither `Clone` nor `Sync`.
///
/// ```
/// use ringlat_ring::{Consumer, HeapStorage, PushError, Ring, SingleProducer};
/// use ringlat_format::Record;
/// let ring = Ring::new(HeapStorage::new(4)).unwrap();
/// let mut producer = SingleProducer::attach(&ring);
/// for id in 0..4 {
///     producer.push(&ring, 0, 0, &Record::new(id, 0, 0, 0)).unwrap();
/// }
/// assert_eq!(producer.push(&ring, 0, 0, &Record::new(9, 0, 0, 0)), Err(PushError::Full));
/// assert_eq!(ring.positions(), (0, 4));
/// ```
#[derive(Debug)]
pub struct SingleProducer {
    cached_head: u32,
    tail: u32,
    not_single: bool,
}

impl SingleProducer {
    /// Starts producing at the ring's current tail.
    pub fn attach<S: Storage>(ring: &Ring<S>) -> Self {
        let (head, tail) = ring.positions();
        SingleProducer {
            cached_head: head,
            tail,
            not_single: false,
        }
    }

    /// Writes and publishes one record, or returns why not without publishing anything.
    #[inline]
    pub fn push<S: Storage>(
        &mut self,
        ring: &Ring<S>,
        kind: u8,
        class: u8,
        record: &Record,
    ) -> Result<u32, PushError> {
        self.push_with_fill(ring, kind, class, record)
            .map(|(position, _)| position)
    }

    /// [`SingleProducer::push`], returning `(position, fill after the push)`; the fill uses the
    /// head learnt by the publishing CAS, so it is exact at that instant.
    #[inline]
    pub fn push_with_fill<S: Storage>(
        &mut self,
        ring: &Ring<S>,
        kind: u8,
        class: u8,
        record: &Record,
    ) -> Result<(u32, u32), PushError> {
        if self.not_single {
            return Err(PushError::NotSingle);
        }
        if self.tail.wrapping_sub(self.cached_head) >= ring.capacity() {
            // Acquire (in `positions`): pairs with the consumer's Release head advance, so its
            // reads of the slot we will reuse happen before our writes.
            self.cached_head = ring.positions().0;
            if self.tail.wrapping_sub(self.cached_head) >= ring.capacity() {
                return Err(PushError::Full);
            }
        }
        let position = self.tail;
        // Relaxed: a misuse check only (the slot is ours alone when the ring is used as
        // documented). A stamp of our position or a later one means another producer wrote
        // here: writing would destroy its record.
        let stamp = ring.meta_of(position).load(Ordering::Relaxed);
        let holder = SlotMeta::from_word(stamp);
        if SlotMeta::state_of_word(stamp) != Some(SlotState::Empty)
            && lap_of(holder.position, position) != Lap::Earlier
        {
            self.not_single = true;
            return Err(PushError::NotSingle);
        }
        ring.write_single(position, kind, class, record);
        let next_tail = position.wrapping_add(1);
        let mut expected = pack_positions(self.cached_head, position);
        loop {
            let (head, _) = unpack_positions(expected);
            // Success Release: pairs with the consumer's Acquire load of the ring word, which
            // then sees the record written above. Acquire on both sides: the head we learn here
            // pairs with the consumer's Release advance (as above).
            match ring.storage().ring_word().compare_exchange(
                expected,
                pack_positions(head, next_tail),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    self.cached_head = head;
                    break;
                }
                Err(seen) => {
                    let (seen_head, seen_tail) = unpack_positions(seen);
                    if seen_tail != position {
                        // Only we move tail: someone else pushes into this ring.
                        self.not_single = true;
                        return Err(PushError::NotSingle);
                    }
                    expected = pack_positions(seen_head, position);
                }
            }
        }
        self.tail = next_tail;
        Ok((position, next_tail.wrapping_sub(self.cached_head)))
    }
}
