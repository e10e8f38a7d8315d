//! Records whose every field derives from one value, so that a torn record is detectable.
#![allow(dead_code)]

use ringlat_format::Record;

/// The record that stands for `value`.
pub fn record_of(value: u64) -> Record {
    Record::new(
        value,
        value.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        (value % 251) as u8,
        (value as i32) ^ 0x5A5A_5A5A,
    )
}

/// The value a record stands for, or `None` if its fields disagree (a torn record).
pub fn value_of(record: &Record) -> Option<u64> {
    let value = record.trace_id();
    (record_of(value) == *record).then_some(value)
}

/// `producer` in the high 32 bits, `sequence` in the low 32.
pub fn tagged(producer: u64, sequence: u64) -> u64 {
    (producer << 32) | sequence
}
