/// The unit of a record's `delta` field, stored once in the header.
///
/// ```
/// use ringlat_format::DeltaUnit;
/// assert_eq!(DeltaUnit::Micros.nanos(), 1_000);
/// assert_eq!(DeltaUnit::from_code(2), Some(DeltaUnit::Millis));
/// assert_eq!(DeltaUnit::Nanos.suffix(), "ns");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DeltaUnit {
    /// Nanoseconds: an `i32` covers about ±2.1 s.
    Nanos,
    /// Microseconds: about ±35 minutes (the default).
    #[default]
    Micros,
    /// Milliseconds: about ±24 days.
    Millis,
}

impl DeltaUnit {
    /// The code stored in the header byte.
    pub const fn code(self) -> u8 {
        match self {
            DeltaUnit::Nanos => 0,
            DeltaUnit::Micros => 1,
            DeltaUnit::Millis => 2,
        }
    }

    /// The unit for a header code, `None` for codes this version does not know.
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(DeltaUnit::Nanos),
            1 => Some(DeltaUnit::Micros),
            2 => Some(DeltaUnit::Millis),
            _ => None,
        }
    }

    /// Nanoseconds in one unit.
    pub const fn nanos(self) -> u64 {
        match self {
            DeltaUnit::Nanos => 1,
            DeltaUnit::Micros => 1_000,
            DeltaUnit::Millis => 1_000_000,
        }
    }

    /// The short suffix tools print: `ns`, `us` or `ms`.
    pub const fn suffix(self) -> &'static str {
        match self {
            DeltaUnit::Nanos => "ns",
            DeltaUnit::Micros => "us",
            DeltaUnit::Millis => "ms",
        }
    }
}
