/// Size of one slot's metadata word on disk, in bytes.
pub const META_SIZE: usize = 8;

/// What a slot's metadata word says about the slot.
///
/// ```
/// use ringlat_format::SlotState;
/// assert_eq!(SlotState::from_bits(2), Some(SlotState::Committed));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SlotState {
    /// Never written since the file was created (the whole word is 0).
    Empty,
    /// A producer has reserved the slot for `position` and is writing it.
    Writing,
    /// The record for `position` is complete and visible.
    Committed,
}

impl SlotState {
    /// Decodes the two state bits; `None` for the reserved value 3.
    pub const fn from_bits(bits: u64) -> Option<Self> {
        match bits {
            0 => Some(SlotState::Empty),
            1 => Some(SlotState::Writing),
            2 => Some(SlotState::Committed),
            _ => None,
        }
    }

    const fn bits(self) -> u64 {
        match self {
            SlotState::Empty => 0,
            SlotState::Writing => 1,
            SlotState::Committed => 2,
        }
    }
}

/// A slot's 64-bit metadata word: the commit stamp and what the 21-byte record does not carry.
///
/// | bits   | field |
/// |--------|-------|
/// | 0..32  | position (u32) of the lap the slot holds |
/// | 32..34 | state: 0 empty, 1 writing, 2 committed |
/// | 34..40 | reserved, 0 |
/// | 40..48 | operation kind |
/// | 48..56 | sampling class (index into the header's class table) |
/// | 56..64 | reserved, 0 |
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
const KIND_SHIFT: u32 = 40;
const CLASS_SHIFT: u32 = 48;
const RESERVED_BITS: u64 =
    !(POSITION_MASK | (0b11 << STATE_SHIFT) | (0xFF << KIND_SHIFT) | (0xFF << CLASS_SHIFT));

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

    /// Decodes a metadata word. Reserved bits are ignored here; see [`SlotMeta::state`].
    #[inline]
    pub const fn from_word(word: u64) -> Self {
        SlotMeta {
            position: (word & POSITION_MASK) as u32,
            state_bits: ((word >> STATE_SHIFT) & 0b11) as u8,
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

    /// The slot state, `None` for the reserved state value.
    #[inline]
    pub const fn state(self) -> Option<SlotState> {
        SlotState::from_bits(self.state_bits as u64)
    }

    /// True when the slot holds the complete record of exactly `position` (this lap, not another).
    #[inline]
    pub const fn is_committed_at(self, position: u32) -> bool {
        self.position == position && self.state_bits == SlotState::Committed.bits() as u8
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
        word & RESERVED_BITS == 0 && SlotMeta::from_word(word).is_committed_at(position)
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
    }
}
