//! Creating the ring file safely: built under a temporary name beside the final path
//! (exclusive creation, no symlinks, mode 0600, space reserved up front, pages faulted in,
//! writer lock held, header written), then renamed into place. Nothing at the final path is
//! destroyed before the new ring is complete, and never while its writer lives.

use crate::Error;
use memmap2::{MmapMut, MmapOptions};
use ringlat_format::{Geometry, HeaderView, PAGE_SIZE, WRITER_PID};
use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

fn io_error<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(io::Error) -> Error + 'a {
    move |source| Error::Io {
        path: path.to_path_buf(),
        what,
        source,
    }
}

/// One non-blocking `flock` attempt: Ok(false) when another open file description holds a
/// conflicting lock.
fn try_flock(file: &File, operation: libc::c_int) -> io::Result<bool> {
    // SAFETY: flock on a file descriptor we own; no memory is passed.
    let rc = unsafe { libc::flock(file.as_raw_fd(), operation | libc::LOCK_NB) };
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

fn unlock(file: &File) {
    // SAFETY: flock on a file descriptor we own; releasing a lock cannot harm anyone.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
}

/// Takes the writer lock (`flock(LOCK_EX | LOCK_NB)`); false when another process holds it.
fn try_lock_exclusive(file: &File) -> io::Result<bool> {
    try_flock(file, libc::LOCK_EX)
}

/// Whether a process with this pid exists (`kill(pid, 0)`; EPERM means it exists but belongs
/// to another user). Pid 0 (unknown) and pids that do not fit a `pid_t` count as alive: the
/// caller then refuses rather than destroys.
fn process_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return true;
    };
    if pid <= 0 {
        return true;
    }
    // SAFETY: signal 0 only checks that the process exists; nothing is delivered.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Refuses when a live writer holds the ring file now at `path`.
///
/// Only an exclusive holder can be a writer, and only if the pid the header records is still
/// alive: so the probe is a shared lock, which only an exclusive holder refuses. A reader's
/// shared lock (FORMAT.md, "Locks"), or an exclusive lock on a dead writer's file, does not
/// stop `.replace(true)`; nor does another replacer's probe (an exclusive probe, tried first
/// once, made concurrent replacers refuse each other, every one of them at times).
fn refuse_live_writer(path: &Path) -> Result<(), Error> {
    let existing = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        // A symlink (ELOOP) or something we cannot open: renaming over it replaces the name
        // only, never what it points to.
        Err(_) => return Ok(()),
    };
    if try_flock(&existing, libc::LOCK_SH).map_err(io_error(path, "checking the writer lock"))? {
        // No exclusive holder: no writer.
        unlock(&existing);
        return Ok(());
    }
    let mut pid = [0u8; 4];
    let pid = match existing.read_exact_at(&mut pid, WRITER_PID as u64) {
        Ok(()) => u32::from_le_bytes(pid),
        Err(_) => 0,
    };
    if process_exists(pid) {
        return Err(Error::WriterActive {
            path: path.to_path_buf(),
            pid,
        });
    }
    Ok(())
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

/// The temporary name a new ring is built under; removed again unless [`Pending::publish`]
/// moved it into place (a failed creation leaves nothing behind).
pub(crate) struct Pending {
    temp: PathBuf,
    published: bool,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.published {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

fn c_path(path: &Path) -> Result<CString, Error> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::Io {
        path: path.to_path_buf(),
        what: "naming the file",
        source: io::Error::new(io::ErrorKind::InvalidInput, "the path contains a NUL byte"),
    })
}

/// `renameat2(RENAME_NOREPLACE)`, or `link` + `unlink` where the filesystem lacks it: both
/// fail with EEXIST instead of replacing an existing name.
fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    let (Ok(from_c), Ok(to_c)) = (
        CString::new(from.as_os_str().as_bytes()),
        CString::new(to.as_os_str().as_bytes()),
    ) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the path contains a NUL byte",
        ));
    };
    // SAFETY: both pointers are NUL-terminated strings that live across the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from_c.as_ptr(),
            libc::AT_FDCWD,
            to_c.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let error = io::Error::last_os_error();
    match error.raw_os_error() {
        Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP) => {
            std::fs::hard_link(from, to)?;
            std::fs::remove_file(from)
        }
        _ => Err(error),
    }
}

impl Pending {
    /// Moves the finished ring to `path`. With `replace`, renames over what is there (checked
    /// again just before: never while a live writer holds it); without, fails with
    /// [`Error::AlreadyExists`] if the name exists (also as a dangling symlink).
    pub(crate) fn publish(mut self, path: &Path, replace: bool) -> Result<(), Error> {
        // Serialises the check and the rename with every other ringlat writer publishing in
        // this directory: without it, two replacers could both find the old ring's writer
        // gone, and the second would rename over the first one's live ring.
        let _directory = lock_directory(path)?;
        if replace {
            refuse_live_writer(path)?;
            std::fs::rename(&self.temp, path)
                .map_err(io_error(path, "renaming the new ring over the old one"))?;
        } else {
            rename_no_replace(&self.temp, path).map_err(|e| {
                if e.kind() == io::ErrorKind::AlreadyExists {
                    Error::AlreadyExists {
                        path: path.to_path_buf(),
                    }
                } else {
                    io_error(path, "moving the new ring into place")(e)
                }
            })?;
        }
        self.published = true;
        Ok(())
    }
}

/// How long [`lock_directory`] waits for another writer's publication (a rename: microseconds).
const DIRECTORY_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Takes `flock(LOCK_EX)` on `path`'s directory, released when the returned file drops.
/// Waits at most [`DIRECTORY_LOCK_WAIT`], never forever, for whoever holds it. A directory
/// we may write but not read (mode 0300) cannot be locked: then no lock (`None`).
fn lock_directory(path: &Path) -> Result<Option<File>, Error> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let what = "locking the directory to publish the ring";
    let handle = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
    {
        Ok(handle) => handle,
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => return Ok(None),
        Err(e) => return Err(io_error(path, what)(e)),
    };
    let began = std::time::Instant::now();
    while !try_flock(&handle, libc::LOCK_EX).map_err(io_error(path, what))? {
        if began.elapsed() > DIRECTORY_LOCK_WAIT {
            return Err(Error::Io {
                path: path.to_path_buf(),
                what,
                source: io::Error::from_raw_os_error(libc::EWOULDBLOCK),
            });
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    Ok(Some(handle))
}

/// A freshly created, locked, preallocated and mapped ring file under its temporary name
/// (header not written yet).
pub(crate) struct CreatedFile {
    pub file: File,
    pub map: MmapMut,
    pub pending: Pending,
}

/// Opens a new, empty file with a fresh name in `path`'s directory (`O_EXCL`, mode 0600).
fn create_temp(path: &Path) -> Result<(File, PathBuf), Error> {
    let Some(name) = path.file_name() else {
        return Err(Error::Io {
            path: path.to_path_buf(),
            what: "naming the file",
            source: io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name"),
        });
    };
    c_path(path)?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut attempt = 0u32;
    loop {
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(".{}-{attempt}.tmp", std::process::id()));
        let temp = dir.join(temp_name);
        match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true) // O_CREAT | O_EXCL: never reuse an existing file or follow a link
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&temp)
        {
            Ok(file) => return Ok((file, temp)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 1000 => attempt += 1,
            Err(e) => return Err(io_error(path, "creating the file")(e)),
        }
    }
}

/// Creates the file for `geometry` under a temporary name beside `path`. Refuses early what
/// publishing would refuse (an existing name without `replace`, a live writer with it), so
/// that no space is reserved for nothing; the caller writes the header, then publishes.
pub(crate) fn create(path: &Path, geometry: Geometry, replace: bool) -> Result<CreatedFile, Error> {
    if replace {
        refuse_live_writer(path)?;
    } else if std::fs::symlink_metadata(path).is_ok() {
        return Err(Error::AlreadyExists {
            path: path.to_path_buf(),
        });
    }
    let (file, temp) = create_temp(path)?;
    let pending = Pending {
        temp,
        published: false,
    };
    let map = map_new_file(&file, path, geometry)?;
    Ok(CreatedFile { file, map, pending })
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
