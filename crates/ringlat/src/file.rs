//! Creating the ring file safely: exclusive creation, no symlinks, mode 0600, space reserved
//! up front, pages faulted in, writer lock held.

use crate::Error;
use memmap2::{MmapMut, MmapOptions};
use ringlat_format::{Geometry, HeaderView, PAGE_SIZE, WRITER_PID};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

fn io_error<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(io::Error) -> Error + 'a {
    move |source| Error::Io {
        path: path.to_path_buf(),
        what,
        source,
    }
}

/// Takes the writer lock (`flock(LOCK_EX | LOCK_NB)`); false when another process holds it.
pub(crate) fn try_lock_exclusive(file: &File) -> io::Result<bool> {
    // SAFETY: flock on a file descriptor we own; no memory is passed.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let error = io::Error::last_os_error();
    if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(error)
    }
}

/// Removes an existing ring file at `path`, refusing if a live writer holds its lock.
fn remove_existing(path: &Path) -> Result<(), Error> {
    let existing = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(file) => Some(file),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        // A symlink (ELOOP) or something we cannot open: unlinking it removes the name only.
        Err(_) => None,
    };
    if let Some(file) = existing
        && !try_lock_exclusive(&file).map_err(io_error(path, "checking the writer lock"))?
    {
        let mut pid = [0u8; 4];
        let _ = file.read_exact_at(&mut pid, WRITER_PID as u64);
        return Err(Error::WriterActive {
            path: path.to_path_buf(),
            pid: u32::from_le_bytes(pid),
        });
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error(path, "removing the old file")(e)),
    }
}

/// Reserves `len` bytes of disk so that a full disk fails here, not as SIGBUS later.
fn reserve_space(file: &File, path: &Path, len: u64) -> Result<(), Error> {
    // SAFETY: posix_fallocate on a file descriptor we own; no memory is passed.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len as libc::off_t) };
    match rc {
        0 => Ok(()),
        libc::ENOSPC | libc::EFBIG | libc::EDQUOT => Err(Error::NoSpace {
            path: path.to_path_buf(),
            needed: len,
        }),
        // Filesystems without fallocate: write the zeros ourselves (glibc's emulation does the
        // same, one block at a time).
        libc::EOPNOTSUPP | libc::EINVAL => write_zeros(file, path, len),
        code => Err(io_error(path, "reserving disk space")(
            io::Error::from_raw_os_error(code),
        )),
    }
}

fn write_zeros(file: &File, path: &Path, len: u64) -> Result<(), Error> {
    const CHUNK: u64 = 1 << 20;
    let zeros = vec![0u8; CHUNK as usize];
    let mut offset = 0;
    while offset < len {
        let n = CHUNK.min(len - offset) as usize;
        file.write_all_at(&zeros[..n], offset).map_err(|e| {
            if e.raw_os_error() == Some(libc::ENOSPC) {
                Error::NoSpace {
                    path: path.to_path_buf(),
                    needed: len,
                }
            } else {
                io_error(path, "writing zeros")(e)
            }
        })?;
        offset += n as u64;
    }
    Ok(())
}

/// A freshly created, locked, preallocated and mapped ring file (header not written yet).
pub(crate) struct CreatedFile {
    pub file: File,
    pub map: MmapMut,
}

/// Creates the file at `path` for `geometry`. On any failure after the file exists, the file
/// is removed again so that no half-made ring is left behind.
pub(crate) fn create(path: &Path, geometry: Geometry, replace: bool) -> Result<CreatedFile, Error> {
    if replace {
        remove_existing(path)?;
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true) // O_CREAT | O_EXCL: never reuse an existing file or follow a link
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                Error::AlreadyExists {
                    path: path.to_path_buf(),
                }
            } else {
                io_error(path, "creating the file")(e)
            }
        })?;
    let result = map_new_file(&file, path, geometry);
    match result {
        Ok(map) => Ok(CreatedFile { file, map }),
        Err(error) => {
            let _ = std::fs::remove_file(path);
            Err(error)
        }
    }
}

fn map_new_file(file: &File, path: &Path, geometry: Geometry) -> Result<MmapMut, Error> {
    if !try_lock_exclusive(file).map_err(io_error(path, "taking the writer lock"))? {
        return Err(Error::WriterActive {
            path: path.to_path_buf(),
            pid: 0,
        });
    }
    reserve_space(file, path, geometry.file_size)?;
    // SAFETY: the file is ours (created with O_EXCL, mode 0600, writer lock held) and
    // preallocated to the mapped length; other processes only ever touch the mapping through
    // atomic accesses, as FORMAT.md requires.
    let mut map = unsafe {
        MmapOptions::new()
            .len(geometry.file_size as usize)
            .populate()
            .map_mut(file)
    }
    .map_err(io_error(path, "mapping the file"))?;
    // MAP_POPULATE read-faults a shared mapping; write one byte per page so that the hot path
    // never takes the first write fault either.
    for offset in (0..map.len()).step_by(PAGE_SIZE as usize) {
        map[offset] = 0;
    }
    debug_assert!(HeaderView::new(&map).u32_at(ringlat_format::VERSION_FIELD) == 0);
    Ok(map)
}
