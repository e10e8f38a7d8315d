//! The kind table: one 128-byte entry per operation kind, at [`KIND_TABLE`].

/// Offset of the kind table.
pub const KIND_TABLE: usize = 8192;
/// Number of kinds (every `u8`).
pub const KIND_COUNT: usize = 256;
/// Size of one kind entry.
pub const KIND_ENTRY_SIZE: usize = 128;
/// Longest kind name in bytes (UTF-8, NUL-padded to 32 bytes).
pub const KIND_NAME_MAX: usize = 32;

/// Fixed fields of a kind entry, as offsets inside the entry.
///
/// ```
/// use ringlat_format::KindField;
/// assert_eq!(KindField::Flags.offset_in_entry(), 32);
/// assert_eq!(KindField::Flags.offset(1), 8192 + 128 + 32);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KindField {
    /// `[u8; 32]` name, UTF-8, NUL-padded.
    Name,
    /// `u32` flags: bit 0 = configured.
    Flags,
    /// `f64` base inclusion probability configured for the kind.
    BaseProbability,
    /// `u32` (live) the sampling class in force, i.e. the current effective rate.
    CurrentClass,
    /// `u64` calls per second above which the rate is degraded; 0 = never.
    LoadThreshold,
    /// `u64` (live) calls per second measured over the last rate window.
    CallsPerSecond,
}

impl KindField {
    /// Flag bit: the kind was configured by the writer; records of other kinds are rejected.
    pub const CONFIGURED: u32 = 1;

    /// Offset of the field inside one entry.
    pub const fn offset_in_entry(self) -> usize {
        match self {
            KindField::Name => 0,
            KindField::Flags => 32,
            KindField::BaseProbability => 40,
            KindField::CurrentClass => 48,
            KindField::LoadThreshold => 56,
            KindField::CallsPerSecond => 112,
        }
    }

    /// Offset of the field of `kind` in the file.
    pub const fn offset(self, kind: u8) -> usize {
        KIND_TABLE + KIND_ENTRY_SIZE * kind as usize + self.offset_in_entry()
    }
}

/// Per-kind `u64` counters; every `record` call of a kind adds one to exactly one of
/// `Written`, `SampledOut`, `DroppedFull`, `DroppedBreaker`, `Rejected`. `Saturated` counts
/// written records whose delta was clamped, so it is not part of that partition.
///
/// ```
/// use ringlat_format::KindCounter;
/// assert_eq!(KindCounter::Written.offset(0), 8192 + 64);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KindCounter {
    /// Records committed to the ring.
    Written,
    /// Calls the sampler decided not to keep.
    SampledOut,
    /// Calls dropped because the ring was full.
    DroppedFull,
    /// Calls dropped while the circuit breaker was open.
    DroppedBreaker,
    /// Calls refused for bad input (unconfigured kind, timestamp out of range).
    Rejected,
    /// Written records whose delta did not fit the unit and was clamped.
    Saturated,
}

impl KindCounter {
    /// Every counter, in index order.
    pub const ALL: [KindCounter; 6] = [
        KindCounter::Written,
        KindCounter::SampledOut,
        KindCounter::DroppedFull,
        KindCounter::DroppedBreaker,
        KindCounter::Rejected,
        KindCounter::Saturated,
    ];

    /// Index of the counter (offset `64 + 8 * index` in the entry).
    pub const fn index(self) -> usize {
        match self {
            KindCounter::Written => 0,
            KindCounter::SampledOut => 1,
            KindCounter::DroppedFull => 2,
            KindCounter::DroppedBreaker => 3,
            KindCounter::Rejected => 4,
            KindCounter::Saturated => 5,
        }
    }

    /// Offset of this counter of `kind` in the file.
    pub const fn offset(self, kind: u8) -> usize {
        KIND_TABLE + KIND_ENTRY_SIZE * kind as usize + 64 + 8 * self.index()
    }

    /// The counters that partition `record` calls: each call lands in exactly one of these
    /// (`Saturated` is not one: it counts written records whose delta was clamped).
    pub const OUTCOMES: [KindCounter; 5] = [
        KindCounter::Written,
        KindCounter::SampledOut,
        KindCounter::DroppedFull,
        KindCounter::DroppedBreaker,
        KindCounter::Rejected,
    ];

    /// Calls of a kind from its counter values (indexed by [`KindCounter::index`]): the sum of
    /// the [`KindCounter::OUTCOMES`], saturating at `u64::MAX` (a damaged file's counters can
    /// hold anything).
    ///
    /// ```
    /// use ringlat_format::KindCounter;
    /// // written 3, sampled out 4, dropped 1 + 1, rejected 2, saturated 3 (part of written)
    /// assert_eq!(KindCounter::calls_of(&[3, 4, 1, 1, 2, 3]), 11);
    /// assert_eq!(KindCounter::calls_of(&[u64::MAX, 4, 1, 1, 2, 3]), u64::MAX);
    /// ```
    pub fn calls_of(values: &[u64; 6]) -> u64 {
        KindCounter::OUTCOMES
            .iter()
            .map(|c| values[c.index()])
            .fold(0u64, u64::saturating_add)
    }

    /// The name tools print (and the json key).
    pub const fn name(self) -> &'static str {
        match self {
            KindCounter::Written => "written",
            KindCounter::SampledOut => "sampled_out",
            KindCounter::DroppedFull => "dropped_full",
            KindCounter::DroppedBreaker => "dropped_breaker",
            KindCounter::Rejected => "rejected",
            KindCounter::Saturated => "saturated",
        }
    }
}
