//! Readers never crash and never hang (DESIGN invariant 11), tried from outside: a ring
//! truncated under every following reader by another process, FIFOs and other non-regular
//! files, damaged header fields, hostile kind names, and other users' locks.
//!
//! The writer of the truncation tests is this test binary itself, re-run as a child process
//! (`writer_process`, ignored unless called so): the writer dies of SIGBUS when its own file
//! is truncated, which is documented and must not take the test runner with it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::zombie_processes,
    missing_docs
)]

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const WRITER_ENV: &str = "RINGLAT_TEST_WRITER_PATH";

fn ringcat() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ringcat"));
    command.env("NO_COLOR", "1");
    command
}

fn run(args: &[&str]) -> Output {
    let mut child = ringcat()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_bounded(&mut child, Duration::from_secs(20), args);
    child.wait_with_output().unwrap()
}

/// Waits for `child`, killing it and failing the test if it hangs.
fn wait_bounded(child: &mut Child, limit: Duration, what: &[&str]) {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("ringcat {what:?} hung for {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Exit 2 with exactly one stderr line containing `needle`.
fn assert_clean_failure(output: &Output, needle: &str, what: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{what}: {stderr}");
    assert_eq!(
        stderr.lines().count(),
        1,
        "{what}: one line, got {stderr:?}"
    );
    assert!(stderr.contains(needle), "{what}: {stderr:?}");
}

/// Not a test: the writer process of the truncation tests (see the module docs).
#[test]
#[ignore = "helper process, run by the truncation tests"]
fn writer_process() {
    let Some(path) = std::env::var_os(WRITER_ENV) else {
        return;
    };
    let ring = ringlat::Ring::builder(&path)
        .capacity(1 << 12)
        .kind(0, "op")
        .create()
        .unwrap();
    for trace in 0.. {
        ring.record(0, trace, 0, Duration::from_micros(trace % 1000));
        if trace % 64 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

fn spawn_writer(path: &Path) -> Child {
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "writer_process", "--nocapture"])
        .env(WRITER_ENV, path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while ringlat_read::RingFile::open(path).is_err() {
        assert!(
            Instant::now() < deadline,
            "the writer never created {path:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child
}

/// Starts `args` (a following reader), truncates the ring from this process while it runs,
/// and checks that the reader ends with exit 2 and the one-line truncation message.
fn truncated_under(reader: &[&str], dir: &Path, round: u32, cut_to: u64) {
    let path = dir.join(format!("t{round}.ring"));
    let mut writer = spawn_writer(&path);
    let mut args: Vec<String> = reader.iter().map(|a| a.to_string()).collect();
    for arg in &mut args {
        if arg == "RING" {
            *arg = path.display().to_string();
        } else if arg == "ARCHIVE" {
            *arg = dir.join(format!("t{round}.rla")).display().to_string();
        }
    }
    let mut child = ringcat()
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Let the reader map the file and start following (a few rounds of its loop).
    std::thread::sleep(Duration::from_millis(150 + 37 * u64::from(round % 5)));
    if child.try_wait().unwrap().is_some() {
        let output = child.wait_with_output().unwrap();
        let writer_status = writer.try_wait();
        let liveness = ringlat_read::RingFile::open(&path).map(|f| f.liveness());
        let locks = std::fs::read_to_string("/proc/locks").unwrap_or_default();
        let _ = writer.kill();
        panic!(
            "{args:?} ended before the truncation: {:?} {}; writer {writer_status:?} pid {}; {liveness:?}\n{locks}",
            output.status,
            String::from_utf8_lossy(&output.stderr),
            writer.id()
        );
    }
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(cut_to)
        .unwrap();
    wait_bounded(&mut child, Duration::from_secs(20), reader);
    let output = child.wait_with_output().unwrap();
    let _ = writer.kill();
    let _ = writer.wait();
    assert_clean_failure(
        &output,
        &format!("{} was truncated while being read", path.display()),
        &format!("{args:?} cut to {cut_to}"),
    );
}

#[test]
fn every_following_reader_survives_truncation_by_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let readers: [&[&str]; 4] = [
        &["cat", "-f", "RING"],
        &["drain", "--follow", "RING", "-o", "ARCHIVE"],
        &["drain", "--follow", "RING"],
        &["stat", "--watch", "10ms", "RING"],
    ];
    let mut round = 0;
    for reader in readers {
        // To nothing, to inside the header, and to just past the header (records gone).
        for cut_to in [0, 200, 40_960] {
            truncated_under(reader, dir.path(), round, cut_to);
            round += 1;
        }
    }
}

/// The SIGBUS guard itself: the file shrinks after the length check, and the reader touches
/// the vanished pages. Without the guard this test process dies of SIGBUS.
#[test]
fn a_fault_in_a_reader_mapping_becomes_a_truncation_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.ring");
    {
        let ring = ringlat::Ring::builder(&path)
            .capacity(64)
            .kind(0, "op")
            .create()
            .unwrap();
        for trace in 0..10 {
            ring.record(0, trace, 0, Duration::from_micros(5));
        }
    }
    let file = ringlat_read::RingFile::open(&path).unwrap();
    assert_eq!(file.snapshot().0.len(), 10);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    let (records, _) = file.snapshot(); // touches every vanished page
    assert!(records.is_empty(), "zeros are never handed on as records");
    assert!(matches!(
        file.check_intact(),
        Err(ringlat_read::ReadError::Truncated { .. })
    ));
    // Another reader's mapping elsewhere is unaffected, and a new open refuses the file.
    assert!(ringlat_read::RingFile::open(&path).is_err());
}

fn closed_ring(dir: &Path, name: &str, kind_name: &str) -> PathBuf {
    let path = dir.join(name);
    // The builder refuses control characters in names; a hostile file has them anyway: write a
    // placeholder of the same length and patch the name table after the close.
    let placeholder = "x".repeat(kind_name.len());
    let ring = ringlat::Ring::builder(&path)
        .capacity(64)
        .kind(3, &placeholder)
        .create()
        .unwrap();
    for trace in 0..5 {
        ring.record(3, trace, 0, Duration::from_micros(7 + trace));
    }
    drop(ring);
    if placeholder != kind_name {
        let mut data = std::fs::read(&path).unwrap();
        let at = ringlat_format::KindField::Name.offset(3);
        data[at..at + kind_name.len()].copy_from_slice(kind_name.as_bytes());
        std::fs::write(&path, data).unwrap();
    }
    path
}

#[test]
fn non_regular_files_are_refused_without_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("f");
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let dir_path = dir.path().display().to_string();
    for target in [fifo.to_str().unwrap(), "/dev/null", "/dev/zero", &dir_path] {
        for args in [
            vec!["stat", target],
            vec!["cat", target],
            vec!["pct", target],
            vec!["slice", "--above", "p50", target],
            vec!["plot", target, "-o", "/dev/null"],
            vec!["drain", target],
            vec!["cat", "-f", target],
        ] {
            let output = run(&args);
            assert_clean_failure(&output, target, &format!("{args:?}"));
        }
    }
}

fn edit(path: &Path, offset: usize, bytes: &[u8]) -> PathBuf {
    let mut data = std::fs::read(path).unwrap();
    data[offset..offset + bytes.len()].copy_from_slice(bytes);
    let edited = path.with_extension(format!("e{offset}"));
    std::fs::write(&edited, data).unwrap();
    edited
}

#[test]
fn fields_readers_trust_are_checked() {
    use ringlat_format::{CLASS_TABLE, KindField, OVERFLOW_POLICY, RING_WORD, pack_positions};
    let dir = tempfile::tempdir().unwrap();
    let ring = closed_ring(dir.path(), "v.ring", "op");
    let cases: Vec<(usize, Vec<u8>, &str)> = vec![
        (
            RING_WORD,
            pack_positions(0, 1000).to_le_bytes().to_vec(),
            "ring word is broken",
        ),
        (OVERFLOW_POLICY, vec![7], "overflow_policy is 7"),
        (CLASS_TABLE, 0.5f64.to_le_bytes().to_vec(), "class_table[0]"),
        (
            CLASS_TABLE + 8,
            1.5f64.to_le_bytes().to_vec(),
            "class_table[1]",
        ),
        (
            CLASS_TABLE + 16,
            f64::NAN.to_le_bytes().to_vec(),
            "class_table[2]",
        ),
        (
            KindField::BaseProbability.offset(3),
            (-1.0f64).to_le_bytes().to_vec(),
            "base_probability",
        ),
        (
            KindField::CurrentClass.offset(3),
            200u32.to_le_bytes().to_vec(),
            "current_class",
        ),
        (ringlat_format::DECISION, vec![9], "decision is 9"),
        (ringlat_format::STATE, vec![5], "state is 5"),
        (
            ringlat_format::DURABLE_POSITION + 5,
            vec![0x80],
            "durable_position",
        ),
    ];
    for (offset, bytes, needle) in cases {
        let edited = edit(&ring, offset, &bytes);
        let target = edited.to_str().unwrap();
        for command in ["stat", "cat", "pct", "slice", "drain"] {
            let output = if command == "slice" {
                run(&[command, "--above", "p50", target])
            } else {
                run(&[command, target])
            };
            assert_clean_failure(&output, needle, &format!("{command} with {needle}"));
        }
    }
}

fn meta_word_offset(path: &Path, slot: u32) -> usize {
    let file = ringlat_read::RingFile::open(path).unwrap();
    file.geometry().meta_word_offset(slot) as usize
}

#[test]
fn slots_of_undeclared_kinds_or_unused_classes_are_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let ring = closed_ring(dir.path(), "s.ring", "op");
    // Slot 1: kind 9 (undeclared); slot 2: class 77 (unused).
    let slot1 = meta_word_offset(&ring, 1);
    let mut data = std::fs::read(&ring).unwrap();
    data[slot1 + 5] = 9;
    let slot2 = meta_word_offset(&ring, 2);
    data[slot2 + 6] = 77;
    std::fs::write(&ring, &data).unwrap();
    let file = ringlat_read::RingFile::open(&ring).unwrap();
    let (records, _) = file.snapshot();
    let traces: Vec<u64> = records.iter().map(|d| d.record.trace_id()).collect();
    assert_eq!(traces, [0, 3, 4]);
    assert!(records.iter().all(|d| d.probability > 0.0 && d.kind == 3));
    assert_eq!(file.invalid_slots(), 2);
    let text = String::from_utf8(run(&["cat", ring.to_str().unwrap(), "--format", "json"]).stdout)
        .unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(!text.contains("p=0"), "{text}");
    // Draining skips them too, and the archive stays readable with every good record.
    let archive = dir.path().join("s.rla");
    let output = run(&[
        "drain",
        ring.to_str().unwrap(),
        "-o",
        archive.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{output:?}");
    let back =
        String::from_utf8(run(&["cat", archive.to_str().unwrap(), "--format", "json"]).stdout)
            .unwrap();
    assert_eq!(back.lines().count(), 3, "{back}");
}

#[test]
fn kind_names_with_control_characters_are_escaped_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let ring = closed_ring(dir.path(), "k.ring", "op\x1b[2J\x07");
    let target = ring.to_str().unwrap();
    for args in [
        vec!["stat", target],
        vec!["stat", "--format", "prom", target],
        vec!["cat", target],
        vec!["cat", "--format", "csv", target],
        vec!["pct", "--by", "kind", target],
        vec!["slice", "--above", "p50", target],
    ] {
        let output = run(&args);
        assert!(output.status.success(), "{args:?}: {output:?}");
        let text = String::from_utf8(output.stdout).unwrap();
        assert!(
            !text.contains('\x1b') && !text.contains('\x07'),
            "{args:?}: {text:?}"
        );
        assert!(text.contains("\\x1b[2J"), "{args:?}: {text:?}");
    }
}

fn flock(path: &Path, operation: libc::c_int) -> std::fs::File {
    let file = std::fs::File::open(path).unwrap();
    // SAFETY: flock on a descriptor we own.
    assert_eq!(unsafe { libc::flock(file.as_raw_fd(), operation) }, 0);
    file
}

#[test]
fn another_users_exclusive_lock_does_not_make_a_dead_writer_look_alive() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.ring");
    let mut writer = spawn_writer(&path);
    writer.kill().unwrap();
    writer.wait().unwrap();
    // The writer died without closing: its heartbeat stops (make it an hour old rather than
    // wait for it to go stale). Someone else locks the file.
    let hour_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        - 3_600_000_000_000;
    let edited = {
        use std::os::unix::fs::FileExt;
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.write_at(
            &hour_ago.to_le_bytes(),
            ringlat_format::HEARTBEAT_UNIX_NS as u64,
        )
    };
    edited.unwrap();
    let _squatter = flock(&path, libc::LOCK_EX | libc::LOCK_NB);
    let file = ringlat_read::RingFile::open(&path).unwrap();
    let liveness = file.liveness();
    assert_eq!(
        liveness.lock,
        ringlat_read::LockHolder::Pid(std::process::id())
    );
    assert_eq!(liveness.pid_alive, Some(false));
    assert_eq!(
        liveness.state,
        ringlat_read::WriterState::Dead,
        "{liveness:?}"
    );
    let output = run(&["stat", path.to_str().unwrap()]);
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("(dead)"), "{text}");
    assert!(text.contains("witnesses disagree"), "{text}");
    let json = run(&["stat", "--format", "json", path.to_str().unwrap()]);
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(value["writer"], "dead");
    assert!(value["writer_disagreement"].is_string(), "{value}");
}

#[test]
fn readers_never_take_the_writer_lock_they_test() {
    // A reader probing liveness must not hold even a shared lock for an instant: the
    // writer's `replace(true)` takes an exclusive one on the old file.
    let dir = tempfile::tempdir().unwrap();
    let path = closed_ring(dir.path(), "p.ring", "op");
    // Re-open as "open" (state 0) so that liveness consults the lock.
    let mut data = std::fs::read(&path).unwrap();
    data[ringlat_format::STATE] = 0;
    std::fs::write(&path, &data).unwrap();
    let file = ringlat_read::RingFile::open(&path).unwrap();
    // The closed writer's lock may outlive its close for a moment: a process that another
    // test spawns meanwhile holds a copy of this process's descriptors until it execs.
    let other = std::fs::File::open(&path).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let try_exclusive = || {
        // SAFETY: flock on a descriptor we own.
        unsafe { libc::flock(other.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
    };
    while !try_exclusive() {
        assert!(
            std::time::Instant::now() < deadline,
            "the closed ring stayed locked"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    // SAFETY: as above.
    unsafe { libc::flock(other.as_raw_fd(), libc::LOCK_UN) };
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            // (What it answers depends on the lock this test takes meanwhile: not checked.)
            for _ in 0..2000 {
                let _ = file.writer_state();
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        let mut refused = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            // SAFETY: flock on a descriptor we own.
            if unsafe { libc::flock(other.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                // SAFETY: as above.
                unsafe { libc::flock(other.as_raw_fd(), libc::LOCK_UN) };
            } else {
                refused += 1;
            }
        }
        assert_eq!(refused, 0, "the reader's probe blocked an exclusive lock");
    });
}

#[test]
fn stat_json_includes_undeclared_kinds_counters() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("u.ring");
    {
        let ring = ringlat::Ring::builder(&path)
            .capacity(64)
            .kind(0, "op")
            .create()
            .unwrap();
        ring.record(0, 1, 0, Duration::from_micros(5));
        for _ in 0..3 {
            ring.record(7, 1, 0, Duration::from_micros(5)); // undeclared: rejected
        }
    }
    let output = run(&["stat", "--format", "json", path.to_str().unwrap()]);
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let undeclared = value["undeclared_kinds"].as_array().unwrap();
    assert_eq!(undeclared.len(), 1, "{value}");
    assert_eq!(undeclared[0]["id"], 7);
    assert_eq!(undeclared[0]["counters"]["rejected"], 3);
    assert_eq!(value["counters"]["calls"], 4, "totals over all 256 entries");
}
