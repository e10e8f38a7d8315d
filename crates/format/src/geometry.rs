use crate::header::{
    CAPACITY, CLASS_TABLE, DELTA_UNIT, FILE_SIZE, HEADER_SIZE, HEADER_SIZE_FIELD, MAGIC,
    MAGIC_FIELD, META_OFFSET, META_SIZE_FIELD, PAGE_SIZE, RECORD_SIZE_FIELD, RECORDS_OFFSET,
    START_POSITION,
};
use crate::{DeltaUnit, FormatError, META_SIZE, RECORD_SIZE};

/// Smallest capacity a file may have.
pub const MIN_CAPACITY: u32 = 2;
/// Largest capacity a file may have (2^28 slots, a file of about 7.3 GiB).
pub const MAX_CAPACITY: u32 = 1 << 28;

/// Where everything lies in a file of a given capacity.
///
/// ```
/// use ringlat_format::Geometry;
/// let g = Geometry::for_capacity(4096).unwrap();
/// assert_eq!(g.records_offset, 40_960);
/// assert_eq!(g.meta_offset, 40_960 + 86_016);  // 4096 * 21 rounded up to a page
/// assert_eq!(g.file_size, g.meta_offset + 32_768);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Geometry {
    /// Number of slots, a power of two.
    pub capacity: u32,
    /// Offset of the record area (capacity × 21 bytes).
    pub records_offset: u64,
    /// Offset of the slot metadata area (capacity × 8 bytes).
    pub meta_offset: u64,
    /// Total file size.
    pub file_size: u64,
    /// Offset of the population histogram area (version 2), 0 = none; it follows the
    /// metadata area (see [`crate::population`]).
    pub hist_offset: u64,
    /// Kind blocks in the histogram area (0 = none).
    pub hist_kinds: u32,
}

const fn round_up_to_page(len: u64) -> u64 {
    len.div_ceil(PAGE_SIZE) * PAGE_SIZE
}

impl Geometry {
    /// Computes the layout for `capacity` slots, refusing capacities the format does not allow.
    pub fn for_capacity(capacity: u64) -> Result<Geometry, FormatError> {
        if capacity == 0 {
            return Err(FormatError::CapacityZero);
        }
        if !capacity.is_power_of_two() {
            return Err(FormatError::CapacityNotPowerOfTwo(capacity));
        }
        if capacity < MIN_CAPACITY as u64 || capacity > MAX_CAPACITY as u64 {
            return Err(FormatError::CapacityOutOfRange(capacity));
        }
        let records_offset = HEADER_SIZE;
        let meta_offset = records_offset + round_up_to_page(capacity * RECORD_SIZE as u64);
        let file_size = meta_offset + round_up_to_page(capacity * META_SIZE as u64);
        Ok(Geometry {
            capacity: capacity as u32,
            records_offset,
            meta_offset,
            file_size,
            hist_offset: 0,
            hist_kinds: 0,
        })
    }

    /// The same layout with a population histogram area of `kinds` blocks (0: none) appended
    /// after the metadata area.
    ///
    /// ```
    /// use ringlat_format::Geometry;
    /// let ring = Geometry::for_capacity(64).unwrap();
    /// let g = ring.with_histograms(2);
    /// assert_eq!(g.hist_offset, ring.file_size);
    /// assert_eq!(g.file_size, ring.file_size + ringlat_format::population::area_size(2));
    /// ```
    pub const fn with_histograms(self, kinds: u32) -> Geometry {
        let ring_end = self.file_size - crate::population::area_size(self.hist_kinds);
        if kinds == 0 {
            return Geometry {
                file_size: ring_end,
                hist_offset: 0,
                hist_kinds: 0,
                ..self
            };
        }
        Geometry {
            file_size: ring_end + crate::population::area_size(kinds),
            hist_offset: ring_end,
            hist_kinds: kinds,
            ..self
        }
    }

    /// Offset of the histogram block `index` (0 ..< `hist_kinds`), `None` past the last.
    pub const fn hist_block_offset(&self, index: u32) -> Option<u64> {
        if index >= self.hist_kinds {
            return None;
        }
        Some(self.hist_offset + index as u64 * crate::population::BLOCK_SIZE as u64)
    }

    /// Offset of the record in slot `index`.
    pub const fn record_offset(&self, index: u32) -> u64 {
        self.records_offset + index as u64 * RECORD_SIZE as u64
    }

    /// Offset of the metadata word of slot `index`.
    pub const fn meta_word_offset(&self, index: u32) -> u64 {
        self.meta_offset + index as u64 * META_SIZE as u64
    }

    /// Writes the fields fixed at creation (everything but the version, the writer's pid and
    /// clock anchor, and the live fields) into `header`, which must be at least
    /// [`HEADER_SIZE`] bytes long and zeroed. Class 0 of the class table is set to 1.0.
    ///
    /// Short buffers are left untouched past their end, so the caller's validation catches them.
    pub fn write_fixed_fields(&self, header: &mut [u8], unit: DeltaUnit, start_position: u32) {
        let mut put = |offset: usize, bytes: &[u8]| {
            if let Some(dst) = header.get_mut(offset..offset + bytes.len()) {
                dst.copy_from_slice(bytes);
            }
        };
        put(MAGIC_FIELD, &MAGIC);
        put(HEADER_SIZE_FIELD, &(HEADER_SIZE as u32).to_le_bytes());
        put(CAPACITY, &self.capacity.to_le_bytes());
        put(RECORD_SIZE_FIELD, &(RECORD_SIZE as u32).to_le_bytes());
        put(META_SIZE_FIELD, &(META_SIZE as u32).to_le_bytes());
        put(RECORDS_OFFSET, &self.records_offset.to_le_bytes());
        put(META_OFFSET, &self.meta_offset.to_le_bytes());
        put(FILE_SIZE, &self.file_size.to_le_bytes());
        put(DELTA_UNIT, &[unit.code()]);
        put(START_POSITION, &start_position.to_le_bytes());
        put(CLASS_TABLE, &1.0f64.to_le_bytes());
        if self.hist_kinds > 0 {
            use crate::population as p;
            put(p::HIST_OFFSET, &self.hist_offset.to_le_bytes());
            put(p::HIST_SIZE, &p::area_size(self.hist_kinds).to_le_bytes());
            put(p::HIST_KINDS, &self.hist_kinds.to_le_bytes());
            put(p::HIST_SCHEME, &p::SCHEME_LOG_LINEAR_NS.to_le_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{HeaderView, VERSION, VERSION_FIELD};

    fn valid_header(capacity: u64) -> (Vec<u8>, Geometry) {
        let geometry = Geometry::for_capacity(capacity).unwrap();
        let mut bytes = vec![0u8; HEADER_SIZE as usize];
        geometry.write_fixed_fields(&mut bytes, DeltaUnit::Nanos, 0);
        bytes[VERSION_FIELD..VERSION_FIELD + 4].copy_from_slice(&VERSION.to_le_bytes());
        (bytes, geometry)
    }

    #[test]
    fn capacity_rules() {
        assert_eq!(Geometry::for_capacity(0), Err(FormatError::CapacityZero));
        assert_eq!(
            Geometry::for_capacity(6),
            Err(FormatError::CapacityNotPowerOfTwo(6))
        );
        assert_eq!(
            Geometry::for_capacity(1),
            Err(FormatError::CapacityOutOfRange(1))
        );
        assert_eq!(
            Geometry::for_capacity(1 << 29),
            Err(FormatError::CapacityOutOfRange(1 << 29))
        );
        assert!(Geometry::for_capacity(2).is_ok());
        assert!(Geometry::for_capacity(1 << 28).is_ok());
    }

    #[test]
    fn validate_accepts_what_write_fixed_fields_wrote() {
        let (bytes, geometry) = valid_header(64);
        assert_eq!(
            HeaderView::new(&bytes).validate(geometry.file_size),
            Ok(geometry)
        );
    }

    #[test]
    fn validate_names_each_error_class() {
        let (good, geometry) = valid_header(64);
        let len = geometry.file_size;
        let check = |edit: &dyn Fn(&mut Vec<u8>), file_len: u64| {
            let mut bytes = good.clone();
            edit(&mut bytes);
            HeaderView::new(&bytes).validate(file_len).unwrap_err()
        };
        assert!(matches!(
            check(&|b| b.truncate(10), 10),
            FormatError::Truncated { .. }
        ));
        assert_eq!(
            check(&|b| b[0] = b'X', len),
            FormatError::BadMagic(*b"XINGLAT\0")
        );
        assert_eq!(
            check(&|b| b[8..12].fill(0), len),
            FormatError::NotInitialised
        );
        assert_eq!(
            check(&|b| b[8] = 9, len),
            FormatError::UnsupportedVersion {
                found: 9,
                supported: crate::VERSION
            }
        );
        assert_eq!(
            check(&|b| b[16..20].fill(0), len),
            FormatError::CapacityZero
        );
        assert_eq!(
            check(&|b| b[16] = 65, len),
            FormatError::CapacityNotPowerOfTwo(65)
        );
        assert!(matches!(
            check(&|b| b[20] = 22, len),
            FormatError::FieldMismatch {
                field: "record_size",
                ..
            }
        ));
        assert!(matches!(
            check(&|b| b[48] ^= 1, len),
            FormatError::SizeMismatch { .. }
        ));
        assert!(matches!(
            check(&|_| {}, len - 1),
            FormatError::Truncated { .. }
        ));
        assert!(matches!(
            check(&|_| {}, len + 1),
            FormatError::SizeMismatch { .. }
        ));
        assert_eq!(check(&|b| b[56] = 7, len), FormatError::UnknownDeltaUnit(7));
    }
}
