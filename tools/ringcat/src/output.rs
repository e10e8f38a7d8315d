//! Rendering one record as a text line or an NDJSON object.

use crate::time::rfc3339_nanos;
use ringlat_read::{Decoded, RingFile};
use serde_json::json;

/// The aligned text line of a record.
pub(crate) fn text_line(file: &RingFile, record: &Decoded) -> String {
    format!(
        "{}  {:<12} {:>20}  status {:>3}  {:>11} {}",
        rfc3339_nanos(record.record.nanotime()),
        file.kind_label(record.kind),
        record.record.trace_id(),
        record.record.status(),
        record.record.delta(),
        file.delta_unit().suffix(),
    )
}

/// The NDJSON object of a record.
pub(crate) fn json_line(file: &RingFile, record: &Decoded) -> String {
    json!({
        "nanotime": record.record.nanotime(),
        "kind": file.kind_label(record.kind),
        "kind_id": record.kind,
        "trace_id": record.record.trace_id(),
        "status": record.record.status(),
        "delta": record.record.delta(),
        "unit": file.delta_unit().suffix(),
    })
    .to_string()
}
