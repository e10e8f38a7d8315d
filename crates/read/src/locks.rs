//! The two advisory locks of a ring file (FORMAT.md, "Locks"), and the writer-liveness
//! decision that weighs the writer lock against the writer's pid and heartbeat.
//!
//! Readers never take the writer lock to test it: they look it up in `/proc/locks` (which
//! also names the holder's pid), so a reader can never make a writer's `flock(LOCK_EX)`
//! fail. Only where `/proc/locks` cannot be read do they fall back to a shared,
//! non-blocking `flock` released at once.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;

/// Who holds the writer lock (an exclusive `flock`) of a ring file.
///
/// ```
/// assert_ne!(ringlat_read::LockHolder::Nobody, ringlat_read::LockHolder::Unknown);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockHolder {
    /// Nobody: the writer's descriptor is closed (it exited, cleanly or not).
    Nobody,
    /// Process `pid` took the lock (from `/proc/locks`).
    Pid(u32),
    /// Someone holds it, but `/proc/locks` could not say who.
    Unknown,
}

/// Reads of `/proc/locks` that must all miss the writer's lock before it is called gone.
const LOOKUPS: usize = 3;

/// The holder of the exclusive `flock` on `file`, if any.
pub(crate) fn writer_lock_holder(file: &File) -> io::Result<LockHolder> {
    let meta = file.metadata()?;
    for _ in 0..LOOKUPS {
        let Ok(table) = read_proc_locks() else {
            return Ok(if probe_with_shared_lock(file)? {
                LockHolder::Unknown
            } else {
                LockHolder::Nobody
            });
        };
        let holder = flock_writer_in(&table, meta.dev(), meta.ino());
        if holder != LockHolder::Nobody {
            return Ok(holder);
        }
    }
    Ok(LockHolder::Nobody)
}

/// The text of `/proc/locks`, read with as few `read` calls as possible. The kernel resumes
/// each `read` by line number, so a line can be skipped when other locks come and go between
/// two calls (a small first read, as `read_to_string` makes, made that happen under load):
/// one large read returns a page of lines taken consistently, and a miss is looked up again.
fn read_proc_locks() -> io::Result<String> {
    let mut file = File::open("/proc/locks")?;
    let mut bytes = vec![0u8; 1 << 16];
    let mut len = 0;
    loop {
        let read = std::io::Read::read(&mut file, &mut bytes[len..])?;
        if read == 0 {
            break;
        }
        len += read;
        if len == bytes.len() {
            bytes.resize(2 * len, 0);
        }
    }
    bytes.truncate(len);
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Finds the `FLOCK ... WRITE` lock on `(dev, ino)` in the text of `/proc/locks`, whose lines
/// read `1: FLOCK  ADVISORY  WRITE 1234 00:2a:5678 0 EOF` (device numbers in hex; blocked
/// waiters are marked `->` and skipped).
fn flock_writer_in(table: &str, dev: u64, ino: u64) -> LockHolder {
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    for line in table.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_, class, _, mode, pid, id, ..] = fields.as_slice() else {
            continue;
        };
        if *class != "FLOCK" || *mode != "WRITE" {
            continue;
        }
        let mut parts = id.split(':');
        let (Some(maj), Some(min), Some(inode)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let same = u32::from_str_radix(maj, 16).is_ok_and(|m| m == major)
            && u32::from_str_radix(min, 16).is_ok_and(|m| m == minor)
            && inode.parse::<u64>().is_ok_and(|i| i == ino);
        if same {
            return pid.parse().map_or(LockHolder::Unknown, LockHolder::Pid);
        }
    }
    LockHolder::Nobody
}

/// True when someone holds an exclusive `flock` (tested with a shared, non-blocking lock that
/// is released at once). Only used where `/proc/locks` is unavailable.
fn probe_with_shared_lock(file: &File) -> io::Result<bool> {
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

/// Whether process `pid` exists (`kill(pid, 0)`; EPERM means it exists but is not ours).
/// `None` for pid 0, which names no process.
pub(crate) fn pid_exists(pid: u32) -> Option<bool> {
    let pid = libc::pid_t::try_from(pid).ok().filter(|p| *p > 0)?;
    // SAFETY: signal 0 only checks that the process exists; nothing is delivered.
    let rc = unsafe { libc::kill(pid, 0) };
    Some(rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}

/// Byte whose open-file-description write lock marks the one consumer.
const CONSUMER_LOCK_BYTE: libc::off_t = 1;

/// The consumer lock as a request to `fcntl`: a write lock on [`CONSUMER_LOCK_BYTE`].
fn consumer_lock() -> libc::flock {
    // SAFETY: an all-zero `flock` is a valid value of this plain C struct (`l_pid` 0, as
    // F_OFD_GETLK and F_OFD_SETLK require).
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_start = CONSUMER_LOCK_BYTE;
    lock.l_len = 1;
    lock
}

/// Takes the consumer lock (`F_OFD_SETLK`, write lock on byte 1); false when another
/// consumer holds it. Released when the file is closed.
pub(crate) fn try_lock_consumer(file: &File) -> io::Result<bool> {
    let lock = consumer_lock();
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

/// Whether another open file description holds the consumer lock now, asked without taking
/// it (`F_OFD_GETLK`: a test that cannot make a consumer's `F_OFD_SETLK` fail).
pub(crate) fn consumer_lock_held(file: &File) -> io::Result<bool> {
    let mut lock = consumer_lock();
    // SAFETY: fcntl with F_OFD_GETLK reads and rewrites the `flock` we pass, which lives
    // across the call.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_GETLK, &mut lock) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(lock.l_type != libc::F_UNLCK as libc::c_short)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_consumer_lock_is_seen_without_being_taken() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c");
        std::fs::write(&path, [0u8; 8]).unwrap();
        let open = || {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .unwrap()
        };
        // Readers open ring files read-only.
        let (reader, consumer) = (File::open(&path).unwrap(), open());
        assert!(!consumer_lock_held(&reader).unwrap());
        assert!(try_lock_consumer(&consumer).unwrap());
        assert!(consumer_lock_held(&reader).unwrap());
        // The look took nothing: the consumer's lock is still the only one.
        assert!(!try_lock_consumer(&open()).unwrap());
        drop(consumer);
        assert!(!consumer_lock_held(&reader).unwrap());
    }

    #[test]
    fn parses_proc_locks_lines() {
        let dev = libc::makedev(0, 0x2a);
        let table = "1: POSIX  ADVISORY  WRITE 10 00:2a:99 0 EOF\n\
                     2: FLOCK  ADVISORY  READ 11 00:2a:99 0 EOF\n\
                     3: -> FLOCK  ADVISORY  WRITE 12 00:2a:99 0 EOF\n\
                     4: FLOCK  ADVISORY  WRITE 13 00:2a:98 0 EOF\n\
                     5: FLOCK  ADVISORY  WRITE 14 00:2a:99 0 EOF\n";
        assert_eq!(flock_writer_in(table, dev, 99), LockHolder::Pid(14));
        assert_eq!(flock_writer_in(table, dev, 97), LockHolder::Nobody);
        let other_dev = libc::makedev(8, 1);
        assert_eq!(flock_writer_in(table, other_dev, 99), LockHolder::Nobody);
    }

    /// Regression: other locks coming and going made a line-by-line read of `/proc/locks`
    /// skip the writer's lock, and a live writer looked dead (a follower stopped early).
    #[test]
    fn the_writer_lock_is_found_while_other_locks_churn() {
        let dir = tempfile::tempdir().unwrap();
        let held = File::create(dir.path().join("held")).unwrap();
        // SAFETY: flock on a descriptor we own.
        assert_eq!(unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_EX) }, 0);
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            for churner in 0..2 {
                let (dir, stop) = (dir.path(), &stop);
                scope.spawn(move || {
                    let files: Vec<File> = (0..8)
                        .map(|i| File::create(dir.join(format!("c{churner}-{i}"))).unwrap())
                        .collect();
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        for file in &files {
                            // SAFETY: flock on descriptors we own.
                            unsafe {
                                libc::flock(file.as_raw_fd(), libc::LOCK_EX);
                                libc::flock(file.as_raw_fd(), libc::LOCK_UN);
                            }
                        }
                    }
                });
            }
            let mut missed = 0;
            for _ in 0..3000 {
                if writer_lock_holder(&held).unwrap() != LockHolder::Pid(std::process::id()) {
                    missed += 1;
                }
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            assert_eq!(missed, 0, "the held lock was missed");
        });
    }

    #[test]
    fn pid_checks() {
        assert_eq!(pid_exists(std::process::id()), Some(true));
        assert_eq!(pid_exists(0), None);
        assert_eq!(pid_exists(i32::MAX as u32), Some(false));
    }
}
