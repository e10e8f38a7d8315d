use bytemuck::{Pod, Zeroable};

/// Size of one record on disk, in bytes.
pub const RECORD_SIZE: usize = 21;

/// One latency sample as it lies on disk: 21 bytes, packed, little-endian.
///
/// The fields are byte arrays so that the layout is the same on every host;
/// the accessors convert.
///
/// ```
/// use ringlat_format::Record;
/// let record = Record::new(7, 1_000, 3, -12);
/// let bytes: [u8; 21] = bytemuck::cast(record);
/// let back: Record = bytemuck::cast(bytes);
/// assert_eq!((back.trace_id(), back.nanotime(), back.status(), back.delta()), (7, 1_000, 3, -12));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct Record {
    trace_id: [u8; 8],
    nanotime: [u8; 8],
    status: u8,
    delta: [u8; 4],
}

const _: () = assert!(size_of::<Record>() == RECORD_SIZE);
const _: () = assert!(align_of::<Record>() == 1);

impl Record {
    /// Builds a record from its four fields.
    #[inline]
    pub const fn new(trace_id: u64, nanotime: u64, status: u8, delta: i32) -> Self {
        Record {
            trace_id: trace_id.to_le_bytes(),
            nanotime: nanotime.to_le_bytes(),
            status,
            delta: delta.to_le_bytes(),
        }
    }

    /// Reinterprets 21 bytes as a record.
    #[inline]
    pub fn from_bytes(bytes: [u8; RECORD_SIZE]) -> Self {
        bytemuck::cast(bytes)
    }

    /// The record's 21 bytes.
    #[inline]
    pub fn to_bytes(self) -> [u8; RECORD_SIZE] {
        bytemuck::cast(self)
    }

    /// Request / order id.
    #[inline]
    pub const fn trace_id(&self) -> u64 {
        u64::from_le_bytes(self.trace_id)
    }

    /// UNIX-epoch nanoseconds when the record was taken.
    #[inline]
    pub const fn nanotime(&self) -> u64 {
        u64::from_le_bytes(self.nanotime)
    }

    /// The caller's status code.
    #[inline]
    pub const fn status(&self) -> u8 {
        self.status
    }

    /// Latency in the file's delta unit.
    #[inline]
    pub const fn delta(&self) -> i32 {
        i32::from_le_bytes(self.delta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_the_documented_one() {
        let record = Record::new(0x0102_0304_0506_0708, 0x1112_1314_1516_1718, 0x21, -2);
        let bytes = record.to_bytes();
        assert_eq!(&bytes[0..8], &[8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(
            &bytes[8..16],
            &[0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11]
        );
        assert_eq!(bytes[16], 0x21);
        assert_eq!(&bytes[17..21], &[0xfe, 0xff, 0xff, 0xff]);
    }
}
