use std::path::PathBuf;
use thiserror::Error;

/// Why a ring file could not be created.
///
/// ```
/// let err = ringlat::Error::AlreadyExists { path: "/tmp/x.ring".into() };
/// assert!(err.to_string().contains("/tmp/x.ring"));
/// ```
#[derive(Debug, Error)]
pub enum Error {
    /// The path exists and the builder was not told to replace it.
    #[error("{path}: already exists (use .replace(true) to overwrite it)")]
    AlreadyExists {
        /// The ring file path.
        path: PathBuf,
    },
    /// Another process holds the writer lock on the file being replaced.
    #[error("{path}: another writer (pid {pid}) has this ring open")]
    WriterActive {
        /// The ring file path.
        path: PathBuf,
        /// The pid recorded in the file, 0 if unknown.
        pid: u32,
    },
    /// The disk has no room for the file.
    #[error("{path}: no space left for a {needed}-byte ring file")]
    NoSpace {
        /// The ring file path.
        path: PathBuf,
        /// The file size that was needed.
        needed: u64,
    },
    /// The builder's settings do not describe a valid file.
    #[error("invalid ring settings: {0}")]
    Format(#[from] ringlat_format::FormatError),
    /// A kind id is declared twice, or its name is empty, longer than 32 bytes, contains a
    /// control character or a comma, or is the name of another kind.
    #[error("kind {kind}: {reason}")]
    BadKind {
        /// The kind id.
        kind: u8,
        /// What is wrong.
        reason: &'static str,
    },
    /// No kind was declared: every record would be rejected.
    #[error("no kinds declared: declare at least one with .kind(id, name)")]
    NoKinds,
    /// The sampling or policy settings are inconsistent.
    #[error("invalid sampling settings: {reason}")]
    BadSampling {
        /// What is wrong.
        reason: String,
    },
    /// An operating-system call failed.
    #[error("{path}: {what}: {source}")]
    Io {
        /// The ring file path.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
}
