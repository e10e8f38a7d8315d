//! `.replace(true)`: never destroys before it succeeds (full disk), never while the old
//! file's writer lives, and is not fooled by other users' locks on the old file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use ringlat::{Error, Outcome, Ring};
use ringlat_read::RingFile;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Offset of the writer pid in the header (FORMAT.md).
const WRITER_PID: u64 = ringlat_format::WRITER_PID as u64;

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A ring with `n` records, closed by its writer (and its lock let go everywhere: see
/// [`wait_until_unlocked`]).
fn closed_ring(path: &Path, capacity: u64, n: u64) {
    let ring = Ring::builder(path)
        .capacity(capacity)
        .kind(0, "op")
        .create()
        .unwrap();
    for trace in 0..n {
        assert_eq!(
            ring.record(0, trace, 0, Duration::from_micros(trace)),
            Outcome::Written
        );
    }
    ring.close().unwrap();
    wait_until_unlocked(path);
}

fn assert_intact(path: &Path, capacity: u32, n: u64) {
    let file = RingFile::open(path).unwrap();
    assert_eq!(file.geometry().capacity, capacity);
    let (records, _) = file.snapshot();
    let traces: Vec<u64> = records.iter().map(|r| r.record.trace_id()).collect();
    assert_eq!(traces, (0..n).collect::<Vec<_>>(), "the old ring's records");
}

fn flock(file: &File, operation: libc::c_int) {
    // SAFETY: flock on a descriptor the test owns.
    let rc = unsafe { libc::flock(file.as_raw_fd(), operation | libc::LOCK_NB) };
    assert_eq!(rc, 0, "flock: {}", std::io::Error::last_os_error());
}

/// Waits (10 s at most) until no one holds an exclusive lock on the file at `path`, if any.
///
/// A ring dropped here may keep its writer lock a moment longer: a process that another test
/// of this binary spawns meanwhile holds a copy of this process's descriptors until it execs
/// (with a thread spawning `true` in a loop beside it, the test below failed within 130
/// rounds, every replacer refused by the dropped ring's lock). Once the lock is free, no
/// descriptor of the dropped ring is left to hand it on.
fn wait_until_unlocked(path: &Path) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while let Ok(file) = File::open(path) {
        // SAFETY: flock on a descriptor the test owns (closing it releases the probe).
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) };
        if rc == 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} stayed locked",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A small tmpfs mounted for the test, unmounted when dropped (also on panic).
struct SmallTmpfs {
    mount: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallTmpfs {
    fn mount(size: &str) -> Option<SmallTmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let mount = dir.path().join("small");
        std::fs::create_dir(&mount).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={size}"))
            .arg("tmpfs")
            .arg(&mount)
            .stderr(std::process::Stdio::null())
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            println!("skipped: mounting a {size} tmpfs was refused (needs root and mount(8))");
            return None;
        }
        Some(SmallTmpfs { mount, _dir: dir })
    }
}

impl Drop for SmallTmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(&self.mount)
            .status();
    }
}

#[test]
fn a_full_disk_fails_cleanly_and_replace_leaves_the_old_ring_intact() {
    let Some(fs) = SmallTmpfs::mount("1m") else {
        return;
    };
    let path = fs.mount.join("live.ring");
    // Capacity 1024: 40 KiB header + 29 KiB of records and stamps, well under 1 MiB.
    closed_ring(&path, 1024, 100);

    // create on a full disk: typed error, nothing left behind.
    match Ring::builder(fs.mount.join("big.ring"))
        .capacity(1 << 16)
        .kind(0, "op")
        .create()
    {
        Err(Error::NoSpace { needed, .. }) => assert!(needed > 1 << 20),
        other => panic!("expected NoSpace, got {other:?}"),
    }
    assert_eq!(entries(&fs.mount), ["live.ring"]);

    // replace on a full disk: typed error, the old ring and its records untouched.
    match Ring::builder(&path)
        .capacity(1 << 16)
        .kind(0, "op")
        .replace(true)
        .create()
    {
        Err(Error::NoSpace { .. }) => {}
        other => panic!("expected NoSpace, got {other:?}"),
    }
    assert_eq!(entries(&fs.mount), ["live.ring"]);
    assert_intact(&path, 1024, 100);

    // A replacement that fits takes the name.
    Ring::builder(&path)
        .capacity(2048)
        .kind(0, "op")
        .replace(true)
        .create()
        .unwrap()
        .close()
        .unwrap();
    assert_eq!(entries(&fs.mount), ["live.ring"]);
    assert_eq!(RingFile::open(&path).unwrap().geometry().capacity, 2048);
}

#[test]
fn readers_shared_locks_do_not_block_replace() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.ring");
    closed_ring(&path, 64, 5);
    // A read-only user (or ringcat) holds a shared lock on the old file, and keeps reading it.
    let reader = File::open(&path).unwrap();
    flock(&reader, libc::LOCK_SH);
    let old = RingFile::open(&path).unwrap();
    Ring::builder(&path)
        .capacity(128)
        .kind(0, "op")
        .replace(true)
        .create()
        .unwrap()
        .close()
        .unwrap();
    assert_eq!(RingFile::open(&path).unwrap().geometry().capacity, 128);
    assert_eq!(old.geometry().capacity, 64, "the old inode stays readable");
    assert_eq!(entries(dir.path()), ["r.ring"]);
}

#[test]
fn an_exclusive_lock_on_a_dead_writers_file_does_not_block_replace() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.ring");
    closed_ring(&path, 64, 5);
    // The header names a writer that has exited; someone else holds the exclusive lock.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = child.id();
    child.wait().unwrap();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    file.write_all_at(&dead_pid.to_le_bytes(), WRITER_PID)
        .unwrap();
    flock(&file, libc::LOCK_EX);
    Ring::builder(&path)
        .capacity(128)
        .kind(0, "op")
        .replace(true)
        .create()
        .unwrap()
        .close()
        .unwrap();
    assert_eq!(RingFile::open(&path).unwrap().geometry().capacity, 128);
}

#[test]
fn a_live_writer_is_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.ring");
    let writer = Ring::builder(&path)
        .capacity(64)
        .kind(0, "op")
        .create()
        .unwrap();
    writer.record(0, 7, 0, Duration::from_micros(1));
    writer.flush().unwrap();
    let _reader = RingFile::open(&path).unwrap(); // someone reading it changes nothing
    match Ring::builder(&path)
        .capacity(128)
        .kind(0, "op")
        .replace(true)
        .create()
    {
        Err(Error::WriterActive { pid, .. }) => assert_eq!(pid, std::process::id()),
        other => panic!("a live writer's file was replaced: {other:?}"),
    }
    assert_eq!(entries(dir.path()), ["w.ring"]);
    assert_eq!(RingFile::open(&path).unwrap().geometry().capacity, 64);
    assert_eq!(
        writer.record(0, 8, 0, Duration::from_micros(1)),
        Outcome::Written,
        "the writer goes on"
    );
}

#[test]
fn concurrent_replacers_never_replace_each_others_live_ring() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.ring");
    for round in 0..300 {
        wait_until_unlocked(&path);
        let barrier = std::sync::Barrier::new(8);
        let rings: Vec<Result<Ring, Error>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| {
                        barrier.wait();
                        Ring::builder(&path)
                            .capacity(64)
                            .kind(0, "op")
                            .replace(true)
                            .create()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let live = rings.iter().filter(|r| r.is_ok()).count();
        for ring in &rings {
            if let Err(e) = ring {
                assert!(matches!(e, Error::WriterActive { .. }), "{e}");
            }
        }
        assert_eq!(live, 1, "round {round}: {live} live writers, one path");
        assert_eq!(entries(dir.path()), ["c.ring"]);
    }
}
