use crate::ring::Ring;
use crate::storage::Storage;
use crate::sync::Ordering;
use ringlat_format::{Record, pack_positions, unpack_positions};

/// The ring had no free slot; the record was not written.
///
/// ```
/// use ringlat_ring::{Full, HeapStorage, Ring};
/// use ringlat_format::Record;
/// let ring = Ring::new(HeapStorage::new(2)).unwrap();
/// let record = Record::new(0, 0, 0, 0);
/// ring.push(0, 0, &record).unwrap();
/// ring.push(0, 0, &record).unwrap();
/// assert_eq!(ring.push(0, 0, &record), Err(Full));
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
/// meanwhile; breaking that is not undefined behaviour (every access is atomic) but loses
/// records. The `ringlat` crate enforces it with a handle that is neither `Clone` nor `Sync`.
///
/// ```
/// use ringlat_ring::{Consumer, HeapStorage, Ring, SingleProducer};
/// use ringlat_format::Record;
/// let ring = Ring::new(HeapStorage::new(4)).unwrap();
/// let mut producer = SingleProducer::attach(&ring);
/// for id in 0..4 {
///     producer.push(&ring, 0, 0, &Record::new(id, 0, 0, 0)).unwrap();
/// }
/// assert!(producer.push(&ring, 0, 0, &Record::new(9, 0, 0, 0)).is_err());
/// assert_eq!(ring.positions(), (0, 4));
/// ```
#[derive(Debug)]
pub struct SingleProducer {
    cached_head: u32,
    tail: u32,
}

impl SingleProducer {
    /// Starts producing at the ring's current tail.
    pub fn attach<S: Storage>(ring: &Ring<S>) -> Self {
        let (head, tail) = ring.positions();
        SingleProducer {
            cached_head: head,
            tail,
        }
    }

    /// Writes and publishes one record, or returns `Full` without touching the ring.
    #[inline]
    pub fn push<S: Storage>(
        &mut self,
        ring: &Ring<S>,
        kind: u8,
        class: u8,
        record: &Record,
    ) -> Result<u32, Full> {
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
    ) -> Result<(u32, u32), Full> {
        if self.tail.wrapping_sub(self.cached_head) >= ring.capacity() {
            // Acquire (in `positions`): pairs with the consumer's Release head advance, so its
            // reads of the slot we will reuse happen before our writes.
            self.cached_head = ring.positions().0;
            if self.tail.wrapping_sub(self.cached_head) >= ring.capacity() {
                return Err(Full);
            }
        }
        let position = self.tail;
        ring.write_slot(position, kind, class, record);
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
                Err(seen) => expected = pack_positions(unpack_positions(seen).0, position),
            }
        }
        self.tail = next_tail;
        Ok((position, next_tail.wrapping_sub(self.cached_head)))
    }
}
