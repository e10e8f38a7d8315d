//! Opening an archive for appending without following links, and creating one atomically:
//! the header is written and synced in an unnamed file (`O_TMPFILE`, or a private temporary
//! name where the filesystem lacks it), which is then linked into place only if nothing is
//! there yet. A half-made archive is never visible under its name.

use crate::ReadError;
use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

fn archive_error(path: &Path, what: impl Into<String>) -> ReadError {
    ReadError::Archive {
        path: path.to_path_buf(),
        what: what.into(),
    }
}

/// Opens an existing file at `path` read-write, refusing a symbolic link and anything that
/// is not a regular file. `Ok(None)` when nothing is there.
pub(crate) fn open_existing(path: &Path) -> Result<Option<File>, ReadError> {
    let opened = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path);
    let file = match opened {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) if error.raw_os_error() == Some(libc::ELOOP) => {
            return Err(archive_error(
                path,
                "is a symbolic link; refusing to append through it",
            ));
        }
        Err(error) => return Err(ReadError::io(path, "opening the archive")(error)),
    };
    let kind = file
        .metadata()
        .map_err(ReadError::io(path, "reading the archive's metadata"))?
        .file_type();
    if !kind.is_file() {
        let what = if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_dir() {
            "a directory"
        } else {
            "not a regular file"
        };
        return Err(archive_error(path, format!("is {what}, not an archive")));
    }
    Ok(Some(file))
}

/// Takes the archive's append lock (`flock`, exclusive, non-blocking): one drain appends to
/// an archive at a time.
pub(crate) fn lock_for_append(path: &Path, file: &File) -> Result<(), ReadError> {
    // SAFETY: flock on a descriptor we own; no memory is passed.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(());
    }
    let error = io::Error::last_os_error();
    if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Err(archive_error(
            path,
            "another process is appending to this archive",
        ))
    } else {
        Err(ReadError::io(path, "locking the archive")(error))
    }
}

/// What `create_new` did.
pub(crate) enum Created {
    /// The new archive, locked, its header on stable storage and its name in place.
    Made(File),
    /// Someone else created a file at the path first.
    Exists,
}

fn directory_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn c_path(path: &Path) -> Result<CString, ReadError> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| archive_error(path, "the path contains a NUL byte"))
}

/// Creates an archive whose first bytes are `header`: written, synced, then given its name
/// (never replacing anything), then the directory synced. Mode 0600.
pub(crate) fn create_new(path: &Path, header: &[u8]) -> Result<Created, ReadError> {
    let directory = directory_of(path);
    let unnamed = OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_TMPFILE)
        .open(&directory);
    let made = match unnamed {
        Ok(file) => {
            prepare(path, &file, header)?;
            let source = c_path(Path::new(&format!("/proc/self/fd/{}", file.as_raw_fd())))?;
            let target = c_path(path)?;
            // SAFETY: both paths are NUL-terminated strings that live across the call.
            let rc = unsafe {
                libc::linkat(
                    libc::AT_FDCWD,
                    source.as_ptr(),
                    libc::AT_FDCWD,
                    target.as_ptr(),
                    libc::AT_SYMLINK_FOLLOW,
                )
            };
            if rc == 0 {
                Some(file)
            } else {
                let error = io::Error::last_os_error();
                match error.raw_os_error() {
                    Some(libc::EEXIST) => return Ok(Created::Exists),
                    // No /proc: fall back to a named temporary file.
                    Some(libc::ENOENT) => None,
                    _ => return Err(ReadError::io(path, "linking the new archive")(error)),
                }
            }
        }
        Err(error)
            if matches!(
                error.raw_os_error(),
                Some(libc::EOPNOTSUPP) | Some(libc::EISDIR) | Some(libc::EINVAL)
            ) =>
        {
            None
        }
        Err(error) => return Err(ReadError::io(path, "creating the archive")(error)),
    };
    let file = match made {
        Some(file) => file,
        None => match create_named(path, &directory, header)? {
            Some(file) => file,
            None => return Ok(Created::Exists),
        },
    };
    File::open(&directory)
        .and_then(|dir| dir.sync_all())
        .map_err(ReadError::io(path, "syncing the archive's directory"))?;
    Ok(Created::Made(file))
}

/// Locks, writes and syncs the not-yet-named file.
fn prepare(path: &Path, file: &File, header: &[u8]) -> Result<(), ReadError> {
    lock_for_append(path, file)?;
    file.write_all_at(header, 0)
        .map_err(ReadError::io(path, "writing the archive header"))?;
    file.sync_all()
        .map_err(ReadError::io(path, "syncing the new archive"))
}

/// The fallback: a temporary name beside the archive, linked to the final name (which fails
/// if that exists) and removed. A crash may leave the temporary file; never the archive.
fn create_named(path: &Path, directory: &Path, header: &[u8]) -> Result<Option<File>, ReadError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "archive".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let temporary = directory.join(format!(".{name}.{}.{nanos}.tmp", std::process::id()));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&temporary)
        .map_err(ReadError::io(path, "creating a temporary archive"))?;
    let linked = prepare(path, &file, header).and_then(|()| {
        std::fs::hard_link(&temporary, path).map_err(ReadError::io(path, "linking the new archive"))
    });
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Ok(()) => Ok(Some(file)),
        Err(ReadError::Io { source, .. }) if source.kind() == io::ErrorKind::AlreadyExists => {
            Ok(None)
        }
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn the_named_fallback_never_replaces_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.archive");
        let file = create_named(&path, dir.path(), b"header").unwrap();
        assert!(file.is_some());
        assert_eq!(std::fs::read(&path).unwrap(), b"header");
        drop(file);
        assert!(create_named(&path, dir.path(), b"other").unwrap().is_none());
        assert_eq!(std::fs::read(&path).unwrap(), b"header", "not replaced");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn the_unnamed_file_is_linked_only_where_nothing_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.archive");
        std::fs::write(&path, b"someone else's").unwrap();
        assert!(matches!(create_new(&path, b"header"), Ok(Created::Exists)));
        assert_eq!(std::fs::read(&path).unwrap(), b"someone else's");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
