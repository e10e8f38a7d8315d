/// Size of one slot's metadata word on disk, in bytes.
pub const META_SIZE: usize = 8;

/// What a slot's metadata word says about the slot.
///
/// A slot is *free* (a producer of a later position may claim it) when it is `Empty`,
/// `Committed` or `Skipped`; it is *held* while `Writing` or `Abandoned` (a producer that
/// claimed it may still be storing record bytes). See docs/FORMAT.md, "Slot metadata".
///
/// ```
/// use ringlat_format::SlotState;
/// assert_eq!(SlotState::from_bits(2), Some(SlotState::Committed));
/// assert!(SlotState::Skipped.is_free() && !SlotState::Abandoned.is_free());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SlotState {
    /// Never written since the file was created (the whole word is 0).
    Empty,
    /// A producer has claimed the slot for `position` and is writing it.
    Writing,
    /// The record for `position` is complete and visible.
    Committed,
    /// `position` has no record (its producer gave it up, or a consumer unblocked it before
    /// its producer claimed the slot); the slot is free. Version 2.
    Skipped,
    /// `position` has no record, and the slot is still held by a producer that claimed it
    /// (for `position` or an earlier lap) and has not finished: a consumer unblocked it, or
    /// later producers gave their positions up because it was held. Version 2.
    Abandoned,
}

impl SlotState {
    /// Decodes the three state bits; `None` for the reserved values 5..=7.
    pub const fn from_bits(bits: u64) -> Option<Self> {
        match bits {
            0 => Some(SlotState::Empty),
            1 => Some(SlotState::Writing),
            2 => Some(SlotState::Committed),
            3 => Some(SlotState::Skipped),
            4 => Some(SlotState::Abandoned),
            _ => None,
        }
    }

    const fn bits(self) -> u64 {
        match self {
            SlotState::Empty => 0,
            SlotState::Writing => 1,
            SlotState::Committed => 2,
            SlotState::Skipped => 3,
            SlotState::Abandoned => 4,
        }
    }

    /// True for the states a producer of a later position may claim the slot from.
    pub const fn is_free(self) -> bool {
        matches!(
            self,
            SlotState::Empty | SlotState::Committed | SlotState::Skipped
        )
    }

    /// True for the states that say "this position has no record, move on".
    pub const fn is_given_up(self) -> bool {
        matches!(self, SlotState::Skipped | SlotState::Abandoned)
    }
}

/// How the lap a slot holds compares with the position a reader or producer asks about.
///
/// Both positions index the same slot, so they differ by a multiple of the capacity
/// (at most 2^30): a difference below 2^31 one way is "earlier", the other way "later".
///
/// ```
/// use ringlat_format::{Lap, lap_of};
/// assert_eq!(lap_of(5, 5), Lap::Same);
/// assert_eq!(lap_of(1, 5), Lap::Earlier);
/// assert_eq!(lap_of(u32::MAX, 3), Lap::Earlier); // across the 2^32 wrap
/// assert_eq!(lap_of(9, 5), Lap::Later);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lap {
    /// The slot holds an earlier position (an earlier lap).
    Earlier,
    /// The slot holds exactly this position.
    Same,
    /// The slot holds a later position (a later lap).
    Later,
}

/// Compares the position `held` that a slot's word carries with `position`.
pub const fn lap_of(held: u32, position: u32) -> Lap {
    let behind = position.wrapping_sub(held);
    if behind == 0 {
        Lap::Same
    } else if behind < 1 << 31 {
        Lap::Earlier
    } else {
        Lap::Later
    }
}

/// A slot's 64-bit metadata word: the commit stamp and what the 21-byte record does not carry.
///
/// | bits   | field |
/// |--------|-------|
/// | 0..32  | position (u32) of the lap the slot holds |
/// | 32..35 | state: 0 empty, 1 writing, 2 committed, 3 skipped, 4 abandoned (5..7 reserved) |
/// | 35..40 | reserved, 0 |
/// | 40..48 | operation kind |
/// | 48..56 | sampling class (index into the header's class table) |
/// | 56..64 | reserved, 0 |
///
/// Version 1 files use only states 0..=2 (bits 34..40 were reserved, and state 3 too).
///
/// ```
/// use ringlat_format::{SlotMeta, SlotState};
/// let meta = SlotMeta::committed(u32::MAX, 3, 1);
/// let word = meta.to_word();
/// let back = SlotMeta::from_word(word);
/// assert_eq!(back.position, u32::MAX);
/// assert_eq!(back.state(), Some(SlotState::Committed));
/// assert!(back.is_committed_at(u32::MAX));
/// assert!(!back.is_committed_at(u32::MAX - 4));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SlotMeta {
    /// The ring position this slot content belongs to.
    pub position: u32,
    state_bits: u8,
    /// Operation kind (0..=255).
    pub kind: u8,
    /// Sampling class, an index into the class table (0 = inclusion probability 1).
    pub class: u8,
}

const POSITION_MASK: u64 = 0xFFFF_FFFF;
const STATE_SHIFT: u32 = 32;
const STATE_MASK: u64 = 0b111;
const KIND_SHIFT: u32 = 40;
const CLASS_SHIFT: u32 = 48;
const RESERVED_BITS: u64 =
    !(POSITION_MASK | (STATE_MASK << STATE_SHIFT) | (0xFF << KIND_SHIFT) | (0xFF << CLASS_SHIFT));

impl SlotMeta {
    /// The stamp a producer stores before it writes the record of `position`.
    #[inline]
    pub const fn writing(position: u32, kind: u8, class: u8) -> Self {
        SlotMeta {
            position,
            state_bits: SlotState::Writing.bits() as u8,
            kind,
            class,
        }
    }

    /// The stamp a producer stores (with release) once the record of `position` is complete.
    #[inline]
    pub const fn committed(position: u32, kind: u8, class: u8) -> Self {
        SlotMeta {
            position,
            state_bits: SlotState::Committed.bits() as u8,
            kind,
            class,
        }
    }

    /// The stamp of a position that has no record, in a free slot.
    #[inline]
    pub const fn skipped(position: u32) -> Self {
        SlotMeta {
            position,
            state_bits: SlotState::Skipped.bits() as u8,
            kind: 0,
            class: 0,
        }
    }

    /// The stamp of a position that has no record, in a slot a producer still holds.
    #[inline]
    pub const fn abandoned(position: u32) -> Self {
        SlotMeta {
            position,
            state_bits: SlotState::Abandoned.bits() as u8,
            kind: 0,
            class: 0,
        }
    }

    /// Decodes a metadata word. Reserved bits are ignored here; see [`SlotMeta::state`].
    #[inline]
    pub const fn from_word(word: u64) -> Self {
        SlotMeta {
            position: (word & POSITION_MASK) as u32,
            state_bits: ((word >> STATE_SHIFT) & STATE_MASK) as u8,
            kind: (word >> KIND_SHIFT) as u8,
            class: (word >> CLASS_SHIFT) as u8,
        }
    }

    /// Encodes the metadata word.
    #[inline]
    pub const fn to_word(self) -> u64 {
        (self.position as u64)
            | ((self.state_bits as u64) << STATE_SHIFT)
            | ((self.kind as u64) << KIND_SHIFT)
            | ((self.class as u64) << CLASS_SHIFT)
    }

    /// The slot state, `None` for a reserved state value.
    #[inline]
    pub const fn state(self) -> Option<SlotState> {
        SlotState::from_bits(self.state_bits as u64)
    }

    /// The state of a raw word, `None` when its state value or any reserved bit is not one
    /// this version defines (a damaged word, or one written by a later version).
    ///
    /// ```
    /// use ringlat_format::{SlotMeta, SlotState};
    /// assert_eq!(SlotMeta::state_of_word(SlotMeta::skipped(3).to_word()), Some(SlotState::Skipped));
    /// assert_eq!(SlotMeta::state_of_word(1 << 63), None);
    /// ```
    #[inline]
    pub const fn state_of_word(word: u64) -> Option<SlotState> {
        if word & RESERVED_BITS != 0 {
            return None;
        }
        SlotMeta::from_word(word).state()
    }

    /// True when the slot holds the complete record of exactly `position` (this lap, not another).
    #[inline]
    pub const fn is_committed_at(self, position: u32) -> bool {
        self.position == position && self.state_bits == SlotState::Committed.bits() as u8
    }

    /// True when position `position` is finished as far as `word`, the stamp of its slot,
    /// says: its record is committed, or it was given up (skipped or abandoned), or the slot
    /// holds a later lap already. False while it is reserved and not finished (writing, not
    /// claimed yet, or waiting behind a slot an earlier lap still holds), and for a damaged
    /// word.
    ///
    /// ```
    /// use ringlat_format::SlotMeta;
    /// assert!(SlotMeta::word_is_finished_at(SlotMeta::skipped(7).to_word(), 7));
    /// assert!(!SlotMeta::word_is_finished_at(SlotMeta::writing(7, 0, 0).to_word(), 7));
    /// assert!(!SlotMeta::word_is_finished_at(SlotMeta::committed(3, 0, 0).to_word(), 7));
    /// ```
    #[inline]
    pub const fn word_is_finished_at(word: u64, position: u32) -> bool {
        let held = SlotMeta::from_word(word).position;
        match SlotMeta::state_of_word(word) {
            None | Some(SlotState::Empty) => false,
            Some(state) => match lap_of(held, position) {
                Lap::Same => matches!(
                    state,
                    SlotState::Committed | SlotState::Skipped | SlotState::Abandoned
                ),
                Lap::Later => true,
                Lap::Earlier => false,
            },
        }
    }

    /// True when `word` is exactly the committed stamp of `position`, reserved bits included.
    ///
    /// Readers use this on the raw word so that a word with reserved bits set (written by a
    /// future version, or damaged) is never taken for a committed record.
    ///
    /// ```
    /// use ringlat_format::SlotMeta;
    /// let word = SlotMeta::committed(5, 1, 0).to_word();
    /// assert!(SlotMeta::word_is_committed_at(word, 5));
    /// assert!(!SlotMeta::word_is_committed_at(word | (1 << 63), 5));
    /// ```
    #[inline]
    pub const fn word_is_committed_at(word: u64, position: u32) -> bool {
        // One masked compare (readers call this per slot): the reserved bits zero, the state
        // committed and the position equal, the kind and class anything.
        const CHECKED: u64 = RESERVED_BITS | POSITION_MASK | (STATE_MASK << STATE_SHIFT);
        let committed = SlotState::Committed.bits() << STATE_SHIFT;
        word & CHECKED == committed | position as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_field() {
        for (position, kind, class) in [(0, 0, 0), (u32::MAX, 255, 255), (0x8000_0001, 7, 9)] {
            for meta in [
                SlotMeta::writing(position, kind, class),
                SlotMeta::committed(position, kind, class),
                SlotMeta::skipped(position),
                SlotMeta::abandoned(position),
            ] {
                assert_eq!(SlotMeta::from_word(meta.to_word()), meta);
            }
        }
        assert_eq!(SlotMeta::from_word(0).state(), Some(SlotState::Empty));
    }

    #[test]
    fn writing_is_not_committed() {
        let writing = SlotMeta::writing(9, 1, 1).to_word();
        assert!(!SlotMeta::word_is_committed_at(writing, 9));
        assert!(!SlotMeta::word_is_committed_at(0, 0));
        for given_up in [SlotMeta::skipped(9), SlotMeta::abandoned(9)] {
            assert!(!SlotMeta::word_is_committed_at(given_up.to_word(), 9));
            assert!(given_up.state().is_some_and(SlotState::is_given_up));
        }
    }

    #[test]
    fn every_state_value_decodes_or_is_refused() {
        for bits in 0..8u64 {
            let word = 7 | (bits << STATE_SHIFT);
            assert_eq!(SlotMeta::state_of_word(word).is_some(), bits <= 4);
        }
        assert_eq!(SlotMeta::state_of_word(1 << 35), None, "bit 35 is reserved");
    }

    /// The one masked compare says what the fields say: reserved bits clear, committed, at
    /// the position asked; whatever the kind and class, for words with one bit flipped from
    /// a committed stamp and for words drawn at random.
    #[test]
    fn committed_at_is_the_fields_check() {
        let by_fields = |word: u64, position: u32| {
            word & RESERVED_BITS == 0 && SlotMeta::from_word(word).is_committed_at(position)
        };
        let mut state = 7u64;
        for round in 0..200_000u64 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let position = (state >> 17) as u32;
            let committed = SlotMeta::committed(position, (state >> 3) as u8, (state >> 9) as u8);
            let word = match round % 3 {
                0 => committed.to_word(),
                1 => committed.to_word() ^ (1 << (state >> 58)),
                _ => state,
            };
            for asked in [position, position ^ 1, word as u32] {
                assert_eq!(
                    SlotMeta::word_is_committed_at(word, asked),
                    by_fields(word, asked),
                    "word {word:#x} position {asked}"
                );
            }
        }
    }
}
