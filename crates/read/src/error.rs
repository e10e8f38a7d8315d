use std::path::PathBuf;
use thiserror::Error;

/// Why a ring file could not be read.
///
/// ```
/// let err = ringlat_read::ReadError::ConsumerActive { path: "a.ring".into() };
/// assert_eq!(err.to_string(), "a.ring: another process is already draining this ring");
/// ```
#[derive(Debug, Error)]
pub enum ReadError {
    /// The file is not a valid ring file of a supported version.
    #[error("{path}: {source}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        source: ringlat_format::FormatError,
    },
    /// Another consumer holds the consumer lock.
    #[error("{path}: another process is already draining this ring")]
    ConsumerActive {
        /// The file.
        path: PathBuf,
    },
    /// An archive file is invalid.
    #[error("{path}: {what}")]
    Archive {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// The ring is in overwrite (flight recorder) mode and cannot be drained, only read.
    #[error("{path}: an overwrite-mode ring cannot be drained; read it with cat instead")]
    OverwriteRing {
        /// The file.
        path: PathBuf,
    },
    /// The file is not a regular file (a FIFO, device, directory or socket).
    #[error("{path}: {what}, not a ring file or archive")]
    NotRegular {
        /// The file.
        path: PathBuf,
        /// What it is instead.
        what: &'static str,
    },
    /// The file shrank while it was being read (someone truncated it).
    #[error("{path} was truncated while being read")]
    Truncated {
        /// The file.
        path: PathBuf,
    },
    /// A ring read in place was written to under the passes that read it: they may have
    /// seen different records (a writer came back to a ring read as closed, or a consumer
    /// freed slots of a live ring that its writer then wrote again). Read it again, or from
    /// a copy ([`Source::read_from_a_copy`](crate::Source::read_from_a_copy)).
    #[error(
        "{path}: the ring was written to under the passes that read it in place (a writer came \
         back, or a consumer freed slots that the writer wrote again)"
    )]
    Rewritten {
        /// The file.
        path: PathBuf,
    },
    /// An operating-system call failed.
    #[error("{path}: {what}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
}

impl ReadError {
    pub(crate) fn io<'a>(
        path: &'a std::path::Path,
        what: &'static str,
    ) -> impl FnOnce(std::io::Error) -> ReadError + 'a {
        move |source| ReadError::Io {
            path: path.to_path_buf(),
            what,
            source,
        }
    }
}
