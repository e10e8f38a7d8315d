//! The two advisory locks of a ring file (FORMAT.md, "Locks").

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// True when a writer holds the file's `flock` (tested with a shared, non-blocking lock that
/// is released at once).
pub(crate) fn writer_holds_lock(file: &File) -> io::Result<bool> {
    let fd = file.as_raw_fd();
    // SAFETY: flock on a descriptor we own; no memory is passed.
    let rc = unsafe { libc::flock(fd, libc::LOCK_SH | libc::LOCK_NB) };
    if rc == 0 {
        // SAFETY: as above; releases the lock just taken.
        unsafe { libc::flock(fd, libc::LOCK_UN) };
        return Ok(false);
    }
    let error = io::Error::last_os_error();
    if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(true)
    } else {
        Err(error)
    }
}

/// Byte whose open-file-description write lock marks the one consumer.
const CONSUMER_LOCK_BYTE: libc::off_t = 1;

/// Takes the consumer lock (`F_OFD_SETLK`, write lock on byte 1); false when another
/// consumer holds it. Released when the file is closed.
pub(crate) fn try_lock_consumer(file: &File) -> io::Result<bool> {
    // SAFETY: an all-zero `flock` is a valid value of this plain C struct.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_start = CONSUMER_LOCK_BYTE;
    lock.l_len = 1;
    // SAFETY: fcntl with F_OFD_SETLK reads the `flock` we pass, which lives across the call.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &lock) };
    if rc == 0 {
        return Ok(true);
    }
    let error = io::Error::last_os_error();
    match error.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EACCES) => Ok(false),
        _ => Err(error),
    }
}
