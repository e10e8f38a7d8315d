/// What became of one `record` call. Every call lands in exactly one of these, and in the
/// matching counter of the file header.
///
/// ```
/// assert_ne!(ringlat::Outcome::Written, ringlat::Outcome::Dropped);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The record is committed in the ring.
    Written,
    /// The sampler decided not to keep it.
    SampledOut,
    /// The ring had no room (or the breaker was open); counted, not written.
    Dropped,
    /// Bad input (an unconfigured kind); counted, not written.
    Rejected,
}
