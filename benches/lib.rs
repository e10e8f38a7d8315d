//! Measuring instruments of the hot path, shared by the harness binaries:
//!
//! * `cargo run --release -p ringlat-benches --bin compare`: `record` interleaved with the
//!   anchors (rtrb, crossbeam ArrayQueue, `Mutex<VecDeque>`, hdrhistogram, a physical floor),
//!   run after run, medians and ratios, JSON (`--quick` for CI);
//! * `cargo run --release -p ringlat-benches --bin faults`: minor page faults of the records
//!   written after a synchronous flush, ring on a disk filesystem vs on tmpfs;
//! * `cargo bench -p ringlat-benches`: criterion benches of the same paths.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

/// A cycle-counter read (`rdtsc`): the cheapest clock the machine has. Elsewhere than x86-64,
/// nanoseconds since the first call (a vDSO read), so that the rows still run.
#[inline]
pub fn tsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: rdtsc has no preconditions on x86-64; it only reads the time-stamp counter.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        use std::sync::OnceLock;
        static BASE: OnceLock<std::time::Instant> = OnceLock::new();
        BASE.get_or_init(std::time::Instant::now)
            .elapsed()
            .as_nanos() as u64
    }
}

/// The median of `values` (sorted in place); NaN when empty.
pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// Minor page faults of the calling thread so far (`getrusage(RUSAGE_THREAD)`).
pub fn thread_minor_faults() -> u64 {
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes the struct we pass, which lives across the call.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    if rc != 0 {
        return 0;
    }
    usage.ru_minflt as u64
}

/// The filesystem type of `path` by its statfs magic, as `df -T` names it.
pub fn filesystem_type(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return "?".into();
    };
    // SAFETY: an all-zero statfs is a valid value of this plain C struct.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: the path is NUL-terminated and the struct lives across the call.
    if unsafe { libc::statfs(c_path.as_ptr(), &mut stat) } != 0 {
        return "?".into();
    }
    match stat.f_type as u64 {
        0xEF53 => "ext4".into(),
        0x0102_1994 => "tmpfs".into(),
        0x5846_5342 => "xfs".into(),
        0x9123_683E => "btrfs".into(),
        0x794C_7630 => "overlayfs".into(),
        other => format!("0x{other:x}"),
    }
}

/// Where the live ring belongs: /dev/shm (tmpfs) when it exists, else the temp directory
/// (with the reason, for the caller to print).
pub fn live_ring_dir() -> (PathBuf, Option<&'static str>) {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        (shm.to_path_buf(), None)
    } else {
        (
            std::env::temp_dir(),
            Some("/dev/shm is missing: rings go to the temp directory instead"),
        )
    }
}

/// One line describing the machine: CPU model and logical CPU count.
pub fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{model}, {cpus} logical CPUs")
}
