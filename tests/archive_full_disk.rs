//! A full disk under the archive (issue 8 item 2): its own test binary, because it runs
//! mount(8) and umount(8): between fork and exec a child holds copies of every descriptor of
//! the process, with their OFD locks, so a test that spawns must not share a process with tests
//! that take and release the archive's and the ring's locks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use ringlat::Ring;
use ringlat_read::Drainer;
use ringlat_read::archive::{ArchiveWriter, RingInfo};
use ringlat_tests::{archived_traces, drain_all};
use std::path::PathBuf;
use std::time::Duration;

/// A 1 MiB tmpfs mounted for the test, unmounted on drop; `None` where mount is refused.
struct SmallDisk {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk");
        std::fs::create_dir(&path).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .stderr(std::process::Stdio::null())
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            println!("skipped: cannot mount a tmpfs here (needs root and mount(8))");
            return None;
        }
        Some(SmallDisk { path, _dir: dir })
    }

    /// Fills the disk, leaving about `leave` bytes free; returns the filler's path.
    fn fill(&self, leave: u64) -> PathBuf {
        let filler = self.path.join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![0x55u8; 4096];
        loop {
            // SAFETY: statvfs fills the struct we pass; the path is NUL-terminated.
            let free = unsafe {
                let mut stat: libc::statvfs = std::mem::zeroed();
                let c = std::ffi::CString::new(self.path.to_str().unwrap()).unwrap();
                assert_eq!(libc::statvfs(c.as_ptr(), &mut stat), 0);
                stat.f_bavail * stat.f_frsize
            };
            if free <= leave {
                return filler;
            }
            if std::io::Write::write_all(&mut file, &block).is_err() {
                return filler;
            }
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(&self.path)
            .status();
    }
}

#[test]
fn a_full_disk_never_half_creates_an_archive_nor_duplicates_a_batch() {
    let Some(disk) = SmallDisk::mount("1m") else {
        return;
    };
    // Creation on a full disk fails and leaves nothing (no half-made archive, no temp file).
    let filler = disk.fill(0);
    let archive_path = disk.path.join("full.archive");
    assert!(ArchiveWriter::open(&archive_path, 1).is_err());
    assert!(!archive_path.exists());
    assert_eq!(
        std::fs::read_dir(&disk.path).unwrap().count(),
        1,
        "only the filler"
    );
    std::fs::remove_file(&filler).unwrap();

    // Mid-batch: the ring lives elsewhere; the archive's disk has room for part of a batch.
    let dir = tempfile::tempdir().unwrap();
    let ring_path = dir.path().join("r.ring");
    let ring = Ring::builder(&ring_path)
        .capacity(1 << 14)
        .kind(0, "market")
        .create()
        .unwrap();
    for trace in 0..10_000 {
        ring.record(0, trace, 0, Duration::from_micros(1));
    }
    ArchiveWriter::open(&archive_path, 1).unwrap();
    let filler = disk.fill(64 * 1024);
    let mut failures = 0;
    {
        let mut drainer = Drainer::open(&ring_path).unwrap();
        let mut archive = ArchiveWriter::open(&archive_path, 1).unwrap();
        let info = RingInfo::of(drainer.file());
        loop {
            match drainer.drain_batch(4096, |batch| archive.append(&info, batch).map(drop)) {
                Ok(stats) if stats.taken == 0 => break,
                Ok(_) => {}
                Err(error) => {
                    assert!(error.to_string().contains("No space"), "{error}");
                    failures += 1;
                    break;
                }
            }
        }
    }
    assert_eq!(failures, 1, "the disk filled mid-drain");
    std::fs::remove_file(&filler).unwrap();
    drain_all(&ring_path, &archive_path);
    assert_eq!(
        archived_traces(&archive_path),
        (0..10_000).collect::<Vec<_>>()
    );
}
