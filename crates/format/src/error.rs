use thiserror::Error;

/// Why a file is not a ring file this version of ringlat can read.
///
/// ```
/// use ringlat_format::{FormatError, Geometry};
/// assert_eq!(Geometry::for_capacity(3), Err(FormatError::CapacityNotPowerOfTwo(3)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FormatError {
    /// The first 8 bytes are not `RINGLAT\0`.
    #[error("not a ringlat file (bad magic {0:02x?})")]
    BadMagic([u8; 8]),
    /// The version field is a version this reader does not implement.
    #[error("unsupported format version {found} (this reader understands version {supported})")]
    UnsupportedVersion {
        /// The version found in the file.
        found: u32,
        /// The version this code implements.
        supported: u32,
    },
    /// The version field is still 0: the writer has not finished creating the file.
    #[error(
        "file is not initialised yet (version field is 0): its writer is still creating it or died doing so"
    )]
    NotInitialised,
    /// The file is shorter than its header or its declared size.
    #[error("file is truncated: {actual} bytes, at least {needed} needed")]
    Truncated {
        /// Bytes present.
        actual: u64,
        /// Bytes required.
        needed: u64,
    },
    /// The capacity field is zero.
    #[error("capacity is zero")]
    CapacityZero,
    /// The capacity is not a power of two.
    #[error("capacity {0} is not a power of two")]
    CapacityNotPowerOfTwo(u64),
    /// The capacity is a power of two outside the supported range.
    #[error("capacity {0} is out of range ({min}..={max})", min = crate::MIN_CAPACITY, max = crate::MAX_CAPACITY)]
    CapacityOutOfRange(u64),
    /// A fixed-size field (header size, record size, meta size) has an unexpected value.
    #[error("header field {field} is {found}, expected {expected}")]
    FieldMismatch {
        /// Which field.
        field: &'static str,
        /// What the file says.
        found: u64,
        /// What the format requires.
        expected: u64,
    },
    /// The file's size does not match the size its geometry implies.
    #[error("file size {actual} does not match the geometry (expected {expected} bytes)")]
    SizeMismatch {
        /// Size on disk (or declared in the header).
        actual: u64,
        /// Size the capacity implies.
        expected: u64,
    },
    /// The delta unit byte is not one of the known units.
    #[error("unknown delta unit code {0}")]
    UnknownDeltaUnit(u8),
    /// An enumerated or bit-field header field holds a value this version does not define.
    #[error("header field {field} is {found}, allowed: {allowed}")]
    BadField {
        /// Which field.
        field: String,
        /// What the file says.
        found: u64,
        /// The values FORMAT.md allows.
        allowed: &'static str,
    },
    /// A probability (class table entry, base rate) outside (0, 1], or class 0 not 1.
    #[error("header field {field} is {}, allowed: {allowed}", f64::from_bits(*bits))]
    BadProbability {
        /// Which field.
        field: String,
        /// The f64 bits the file holds.
        bits: u64,
        /// What FORMAT.md allows.
        allowed: &'static str,
    },
    /// The ring word says more records are in the ring than it has slots.
    #[error(
        "ring word is broken: tail - head = {fill} exceeds the capacity {capacity} (head {head}, tail {tail})"
    )]
    BadRingWord {
        /// Head position.
        head: u32,
        /// Tail position.
        tail: u32,
        /// `tail - head`, wrapping.
        fill: u32,
        /// Slots in the ring.
        capacity: u32,
    },
}
