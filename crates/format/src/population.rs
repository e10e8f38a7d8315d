//! The population histogram area (version 2): one block per configured kind, after the
//! metadata area, counting every non-rejected `record` call by latency.
//!
//! The bucket scheme is log-linear (HdrHistogram-style), on nanoseconds, whatever the file's
//! delta unit: values below 256 ns have a bucket each; from 256 ns on, each power of two
//! `[2^e, 2^(e+1))` is cut into 128 equal buckets, so a bucket is at most 1/128 (0.79%) of its
//! lower bound wide. The last bucket ends at 2^42 ns (about 73 minutes); larger values go to
//! the block's overflow counter. docs/FORMAT.md ("Population histograms") is the normative text.
//!
//! ```
//! use ringlat_format::population::{bucket_of, bucket_bounds, BUCKETS};
//! assert_eq!(bucket_of(255), Some(255));
//! assert_eq!(bucket_of(256), Some(256));
//! let (low, high) = bucket_bounds(bucket_of(1_000_000).unwrap());
//! assert!(low <= 1_000_000 && 1_000_000 < high);
//! assert!((high - low) * 128 <= low);
//! assert_eq!(bucket_of(1 << 42), None); // overflow
//! assert_eq!(BUCKETS, 4608);
//! ```

use crate::PAGE_SIZE;

/// Scheme code of the area described here (header field `hist_scheme`); 0 = no area.
pub const SCHEME_LOG_LINEAR_NS: u32 = 1;
/// Bits of linear sub-buckets per power of two (128 sub-buckets).
pub const SUB_BUCKET_BITS: u32 = 7;
/// Values at or above `2^TOP_BITS` ns are counted as overflow.
pub const TOP_BITS: u32 = 42;
/// Values below this many nanoseconds have a bucket each.
pub const LINEAR_LIMIT: u64 = 1 << (SUB_BUCKET_BITS + 1);
/// Buckets per kind.
pub const BUCKETS: usize =
    LINEAR_LIMIT as usize + ((TOP_BITS - SUB_BUCKET_BITS - 1) as usize) * HALF;
const HALF: usize = 1 << SUB_BUCKET_BITS;
/// Largest value (ns) a bucket holds; larger values are overflow.
pub const MAX_TRACKED_NS: u64 = (1 << TOP_BITS) - 1;

/// Header field: `u64` offset of the histogram area (0 = none).
pub const HIST_OFFSET: usize = 512;
/// Header field: `u64` size of the histogram area in bytes (0 = none).
pub const HIST_SIZE: usize = 520;
/// Header field: `u32` number of kind blocks in the area.
pub const HIST_KINDS: usize = 528;
/// Header field: `u32` bucket scheme, [`SCHEME_LOG_LINEAR_NS`] or 0 (no area).
pub const HIST_SCHEME: usize = 532;

/// Offset in a block of the `u32` kind id the block counts.
pub const BLOCK_KIND: usize = 0;
/// Offset in a block of the `u64` overflow count (values of 2^42 ns or more).
pub const BLOCK_OVERFLOW: usize = 8;
/// Offset in a block of the `u64` count of negative latencies.
pub const BLOCK_NEGATIVE: usize = 16;
/// Offset in a block of the `u64` sum, in nanoseconds, of the values in buckets (wrapping).
pub const BLOCK_SUM_NS: usize = 24;
/// Offset in a block of the first of the [`BUCKETS`] `u64` bucket counts.
pub const BLOCK_BUCKETS: usize = 64;
/// Size of one kind block.
pub const BLOCK_SIZE: usize = BLOCK_BUCKETS + 8 * BUCKETS;

/// Size of an area of `kinds` blocks, rounded up to a page.
///
/// ```
/// assert_eq!(ringlat_format::population::area_size(1), 40_960);
/// assert_eq!(ringlat_format::population::area_size(0), 0);
/// ```
pub const fn area_size(kinds: u32) -> u64 {
    (kinds as u64 * BLOCK_SIZE as u64).div_ceil(PAGE_SIZE) * PAGE_SIZE
}

/// The bucket holding `nanos`, `None` when it is overflow (2^42 ns or more).
#[inline]
pub const fn bucket_of(nanos: u64) -> Option<usize> {
    if nanos < LINEAR_LIMIT {
        return Some(nanos as usize);
    }
    if nanos > MAX_TRACKED_NS {
        return None;
    }
    let exponent = 63 - nanos.leading_zeros(); // >= SUB_BUCKET_BITS + 1
    let shift = exponent - SUB_BUCKET_BITS;
    let sub = (nanos >> shift) as usize - HALF; // 0..HALF
    Some(LINEAR_LIMIT as usize + (exponent - SUB_BUCKET_BITS - 1) as usize * HALF + sub)
}

/// `[low, high)` in nanoseconds of bucket `index` (< [`BUCKETS`]).
pub const fn bucket_bounds(index: usize) -> (u64, u64) {
    if index < LINEAR_LIMIT as usize {
        return (index as u64, index as u64 + 1);
    }
    let above = index - LINEAR_LIMIT as usize;
    let exponent = SUB_BUCKET_BITS + 1 + (above / HALF) as u32;
    let shift = exponent - SUB_BUCKET_BITS;
    let low = ((HALF + above % HALF) as u64) << shift;
    (low, low + (1 << shift))
}

/// The value reported for bucket `index`: the midpoint of its bounds (for the linear
/// buckets, the value itself), so a reported percentile is within half a bucket of the truth.
pub const fn bucket_value(index: usize) -> u64 {
    let (low, high) = bucket_bounds(index);
    if high - low == 1 {
        low
    } else {
        low + (high - low) / 2
    }
}

/// Checks the histogram header fields against `geometry` (the ring part) and returns the
/// geometry with its area. No area: all four fields 0 (always so in version 1 files).
pub(crate) fn validate_area(
    header: &crate::HeaderView<'_>,
    geometry: crate::Geometry,
) -> Result<crate::Geometry, crate::FormatError> {
    let scheme = header.u32_at(HIST_SCHEME);
    let kinds = header.u32_at(HIST_KINDS);
    let (offset, size) = (header.u64_at(HIST_OFFSET), header.u64_at(HIST_SIZE));
    let expected = match scheme {
        0 => geometry.with_histograms(0),
        SCHEME_LOG_LINEAR_NS if (1..=256).contains(&kinds) => geometry.with_histograms(kinds),
        SCHEME_LOG_LINEAR_NS => {
            return Err(crate::FormatError::BadField {
                field: "hist_kinds".into(),
                found: kinds.into(),
                allowed: "1..=256 (0 when hist_scheme is 0)",
            });
        }
        other => {
            return Err(crate::FormatError::BadField {
                field: "hist_scheme".into(),
                found: other.into(),
                allowed: "0, 1",
            });
        }
    };
    let mismatch = |field, found, expected| crate::FormatError::FieldMismatch {
        field,
        found,
        expected,
    };
    if u64::from(kinds) != u64::from(expected.hist_kinds) {
        return Err(mismatch(
            "hist_kinds",
            kinds.into(),
            expected.hist_kinds.into(),
        ));
    }
    if offset != expected.hist_offset {
        return Err(mismatch("hist_offset", offset, expected.hist_offset));
    }
    let expected_size = area_size(expected.hist_kinds);
    if size != expected_size {
        return Err(mismatch("hist_size", size, expected_size));
    }
    Ok(expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_tile_the_range_without_gaps() {
        let mut next = 0;
        for index in 0..BUCKETS {
            let (low, high) = bucket_bounds(index);
            assert_eq!(low, next, "bucket {index}");
            assert_eq!(bucket_of(low), Some(index));
            assert_eq!(bucket_of(high - 1), Some(index));
            assert!(high - low == 1 || (high - low) * 128 <= low);
            next = high;
        }
        assert_eq!(next, MAX_TRACKED_NS + 1);
        const { assert!(MAX_TRACKED_NS > 3_600_000_000_000) };
        assert_eq!(bucket_of(MAX_TRACKED_NS + 1), None);
        assert_eq!(BLOCK_SIZE % 8, 0);
    }
}
