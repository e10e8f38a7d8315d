//! Kind handles: look a kind up by name once (`ring.kind_handle("market")?`), then record
//! without repeating its id. An unknown name fails at lookup, never on the hot path.

use crate::guard::{Recorder, Timer};
use crate::{Outcome, Ring, SingleProducerRing};
use ringlat_format::{KIND_NAME_MAX, KindField};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// No configured kind of the ring has this name.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// let ring = ringlat::Ring::builder(dir.path().join("k.ring")).kind(0, "market").create().unwrap();
/// let err = ring.kind_handle("markte").unwrap_err();
/// assert_eq!(err.name, "markte");
/// assert!(err.to_string().contains("market"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no kind named '{name}' in this ring (configured: {configured})")]
pub struct UnknownKind {
    /// The name asked for.
    pub name: String,
    /// The configured names, comma-separated, for the message.
    pub configured: String,
}

/// One operation kind of a ring, found by name: `record` and `start` without a kind id.
///
/// From [`Ring::kind_handle`] it owns a clone of the ring (`Clone + Send + Sync`, to keep in a
/// service's state); from [`SingleProducerRing::kind_handle`] it borrows the ring.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// use std::time::Duration;
/// let ring = ringlat::Ring::builder(dir.path().join("k.ring")).kind(0, "market").create()?;
/// let market = ring.kind_handle("market")?;
/// market.record(7, 0, Duration::from_micros(30));
/// let t = market.start(8);
/// t.finish(0);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct KindHandle<R: Recorder> {
    ring: R,
    kind: u8,
}

impl<R: Recorder> KindHandle<R> {
    /// The kind id.
    pub fn kind(&self) -> u8 {
        self.kind
    }

    /// [`Ring::record`] of this kind.
    #[inline]
    pub fn record(&self, trace_id: u64, status: u8, delta: Duration) -> Outcome {
        self.ring.record_now(self.kind, trace_id, status, delta)
    }

    /// [`Ring::start`] of this kind.
    #[inline]
    pub fn start(&self, trace_id: u64) -> Timer<&R> {
        Timer::new(&self.ring, self.kind, trace_id)
    }
}

/// The configured kinds and their names, read from the file's kind table.
fn names(
    ring: &ringlat_ring::Ring<ringlat_ring::RegionStorage>,
    kinds: &[u8],
) -> Vec<(u8, String)> {
    let name_of = |kind: u8| -> String {
        let mut bytes = [0u8; KIND_NAME_MAX];
        for (word, chunk) in bytes.chunks_exact_mut(8).enumerate() {
            if let Some(cell) = ring
                .storage()
                .u64_at(KindField::Name.offset(kind) + 8 * word)
            {
                // Relaxed: the name was written before the file was published and never
                // changes; the atomic load only avoids a plain read of shared memory.
                chunk.copy_from_slice(&cell.load(Ordering::Relaxed).to_le_bytes());
            }
        }
        let end = bytes.iter().position(|b| *b == 0).unwrap_or(KIND_NAME_MAX);
        String::from_utf8_lossy(&bytes[..end]).into_owned()
    };
    kinds.iter().map(|k| (*k, name_of(*k))).collect()
}

/// The configured kind named `name`.
fn find(names: &[(u8, String)], name: &str) -> Result<u8, UnknownKind> {
    names
        .iter()
        .find(|(_, n)| n == name)
        .map(|(k, _)| *k)
        .ok_or_else(|| UnknownKind {
            name: name.to_owned(),
            configured: names
                .iter()
                .map(|(_, n)| n.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

impl Ring {
    /// The configured kind named `name` as a [`KindHandle`] (owning a clone of this handle).
    /// Unknown names are an [`UnknownKind`] error here, so the hot path has none.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let ring = ringlat::Ring::builder(dir.path().join("k.ring")).kind(2, "cancel").create().unwrap();
    /// assert_eq!(ring.kind_handle("cancel").unwrap().kind(), 2);
    /// ```
    pub fn kind_handle(&self, name: &str) -> Result<KindHandle<Ring>, UnknownKind> {
        let kind = find(&self.kind_names(), name)?;
        Ok(KindHandle {
            ring: self.clone(),
            kind,
        })
    }

    /// The configured kinds, `(id, name)` in id order.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let ring = ringlat::Ring::builder(dir.path().join("n.ring")).kind(3, "b").kind(1, "a").create().unwrap();
    /// assert_eq!(ring.kind_names(), [(1, "a".to_string()), (3, "b".to_string())]);
    /// ```
    pub fn kind_names(&self) -> Vec<(u8, String)> {
        let shared = self.shared();
        let kinds: Vec<u8> = shared.kinds.iter().map(|k| k.kind).collect();
        names(&shared.ring, &kinds)
    }
}

impl SingleProducerRing {
    /// The configured kind named `name`, borrowing this handle; see [`Ring::kind_handle`].
    pub fn kind_handle(&self, name: &str) -> Result<KindHandle<&SingleProducerRing>, UnknownKind> {
        let kind = find(&self.kind_names(), name)?;
        Ok(KindHandle { ring: self, kind })
    }

    /// The configured kinds, `(id, name)` in id order; see [`Ring::kind_names`].
    pub fn kind_names(&self) -> Vec<(u8, String)> {
        let shared = self.shared();
        let kinds: Vec<u8> = shared.kinds.iter().map(|k| k.kind).collect();
        names(&shared.ring, &kinds)
    }
}
