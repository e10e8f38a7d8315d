use ringlat_format::Record;

/// One record as a reader returns it: the 21 bytes plus what the slot metadata and the
/// header tell about it.
///
/// ```
/// use ringlat_read::Decoded;
/// use ringlat_format::Record;
/// let d = Decoded { position: 3, kind: 1, class: 0, probability: 1.0, record: Record::new(1, 2, 0, 4) };
/// assert_eq!(d.record.delta(), 4);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decoded {
    /// Ring position the record was committed at.
    pub position: u32,
    /// Operation kind.
    pub kind: u8,
    /// Sampling class (index into the header's class table).
    pub class: u8,
    /// Inclusion probability of the record (1.0 when every call was kept).
    pub probability: f64,
    /// The record itself.
    pub record: Record,
}
