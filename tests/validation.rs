//! The reader refuses every class of bad file with a typed error, and never panics.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::zombie_processes,
    missing_docs
)]

use ringlat_format::{FormatError, HEADER_SIZE};
use ringlat_read::{ReadError, RingFile};
use std::path::Path;

fn good_file(dir: &Path) -> (std::path::PathBuf, Vec<u8>) {
    let path = dir.join("good.ring");
    drop(
        ringlat::Ring::builder(&path)
            .capacity(64)
            .kind(0, "k")
            .replace(true)
            .create()
            .unwrap(),
    );
    let bytes = std::fs::read(&path).unwrap();
    (path, bytes)
}

fn open_edited(dir: &Path, edit: impl FnOnce(&mut Vec<u8>)) -> FormatError {
    let (_, mut bytes) = good_file(dir);
    edit(&mut bytes);
    let path = dir.join("edited.ring");
    std::fs::write(&path, &bytes).unwrap();
    match RingFile::open(&path).unwrap_err() {
        ReadError::Format {
            source,
            path: reported,
        } => {
            assert_eq!(reported, path, "the error names the file");
            source
        }
        other => panic!("expected a format error, got {other}"),
    }
}

#[test]
fn every_validation_error_class() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(matches!(
        open_edited(d, |b| b.truncate(0)),
        FormatError::Truncated { .. }
    ));
    assert!(matches!(
        open_edited(d, |b| b.truncate(100)),
        FormatError::Truncated { .. }
    ));
    assert!(matches!(
        open_edited(d, |b| b[0] = b'X'),
        FormatError::BadMagic(_)
    ));
    assert_eq!(
        open_edited(d, |b| b[8..12].fill(0)),
        FormatError::NotInitialised
    );
    assert!(matches!(
        open_edited(d, |b| b[8] = 3),
        FormatError::UnsupportedVersion {
            found: 3,
            supported: 2
        }
    ));
    assert_eq!(
        open_edited(d, |b| b[16..20].fill(0)),
        FormatError::CapacityZero
    );
    assert_eq!(
        open_edited(d, |b| b[16] = 63),
        FormatError::CapacityNotPowerOfTwo(63)
    );
    assert_eq!(
        open_edited(d, |b| b[16..20]
            .copy_from_slice(&(1u32 << 30).to_le_bytes())),
        FormatError::CapacityOutOfRange(1 << 30)
    );
    assert!(matches!(
        open_edited(d, |b| b[40] ^= 8),
        FormatError::FieldMismatch {
            field: "meta_offset",
            ..
        }
    ));
    assert!(matches!(
        open_edited(d, |b| b.truncate(b.len() - 4096)),
        FormatError::Truncated { .. }
    ));
    assert!(matches!(
        open_edited(d, |b| b.extend_from_slice(&[0; 4096])),
        FormatError::SizeMismatch { .. }
    ));
    assert!(matches!(
        open_edited(d, |b| b[20] = 24),
        FormatError::FieldMismatch {
            field: "record_size",
            ..
        }
    ));
    assert_eq!(
        open_edited(d, |b| b[56] = 9),
        FormatError::UnknownDeltaUnit(9)
    );
}

#[test]
fn every_field_readers_trust_is_checked() {
    use ringlat_format::{
        CLASS_TABLE, CREATION_FLAGS, DURABLE_POSITION, FLUSH_MODE, KindField, OVERFLOW_POLICY,
        RING_WORD, pack_positions,
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let field_of = |error: FormatError| match error {
        FormatError::BadField { field, .. } | FormatError::BadProbability { field, .. } => field,
        FormatError::BadRingWord { .. } => "ring_word".to_string(),
        other => panic!("unexpected {other}"),
    };
    let cases: Vec<(usize, Vec<u8>, &str)> = vec![
        (OVERFLOW_POLICY, [2].to_vec(), "overflow_policy"),
        (FLUSH_MODE, [3].to_vec(), "flush_mode"),
        (CREATION_FLAGS, [4].to_vec(), "flags"),
        (DURABLE_POSITION + 4, [2].to_vec(), "durable_position"),
        (
            RING_WORD,
            pack_positions(5, 5 + 65).to_le_bytes().to_vec(),
            "ring_word",
        ),
        (CLASS_TABLE, 0.9f64.to_le_bytes().to_vec(), "class_table[0]"),
        (
            CLASS_TABLE + 8 * 9,
            (-0.5f64).to_le_bytes().to_vec(),
            "class_table[9]",
        ),
        (
            CLASS_TABLE + 8 * 9,
            f64::INFINITY.to_le_bytes().to_vec(),
            "class_table[9]",
        ),
        (
            KindField::Flags.offset(4),
            [3].to_vec(),
            "kind_table[4].kind_flags",
        ),
        (
            KindField::BaseProbability.offset(0),
            0f64.to_le_bytes().to_vec(),
            "kind_table[0].base_probability",
        ),
        (
            KindField::CurrentClass.offset(0),
            [17].to_vec(),
            "kind_table[0].current_class",
        ),
    ];
    for (offset, value, field) in cases {
        let edit = |b: &mut Vec<u8>| b[offset..offset + value.len()].copy_from_slice(&value);
        assert_eq!(field_of(open_edited(d, edit)), field);
    }
    // The ring word at the wrap: tail - head is computed wrapping, so this one is fine.
    let (_, mut bytes) = good_file(d);
    bytes[RING_WORD..RING_WORD + 8]
        .copy_from_slice(&pack_positions(u32::MAX - 3, 60).to_le_bytes());
    let path = d.join("wrap.ring");
    std::fs::write(&path, &bytes).unwrap();
    assert!(RingFile::open(&path).is_ok());
}

#[test]
fn non_regular_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    for path in [fifo.as_path(), Path::new("/dev/null"), dir.path()] {
        assert!(
            matches!(RingFile::open(path), Err(ReadError::NotRegular { .. })),
            "{path:?}"
        );
        assert!(matches!(
            ringlat_read::Source::open(path),
            Err(ReadError::NotRegular { .. })
        ));
    }
}

#[test]
fn random_garbage_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let (_, good) = good_file(dir.path());
    let path = dir.path().join("garbage.ring");
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for round in 0..300 {
        let mut bytes = good.clone();
        for _ in 0..(1 + round % 8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let at = (state as usize) % (HEADER_SIZE as usize + 64 * 29);
            bytes[at] = (state >> 32) as u8;
        }
        std::fs::write(&path, &bytes).unwrap();
        if let Ok(file) = RingFile::open(&path) {
            let _ = file.snapshot();
            let _ = file.counters();
        }
    }
}

#[test]
fn missing_file_is_an_io_error_naming_it() {
    let err = RingFile::open("/nonexistent/dir/x.ring").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("/nonexistent/dir/x.ring: opening"),
        "{err}"
    );
}

/// Found by the fuzzer (fuzz/fuzz_targets/decode.rs): counters near u64::MAX in two kinds
/// overflowed the totals (a panic in debug builds, nonsense in release). They saturate.
#[test]
fn huge_counters_saturate_instead_of_overflowing() {
    use ringlat_format::KindCounter;
    let dir = tempfile::tempdir().unwrap();
    let (_, mut bytes) = good_file(dir.path());
    for kind in [0u8, 200] {
        for counter in [KindCounter::Written, KindCounter::Rejected] {
            let at = counter.offset(kind);
            bytes[at..at + 8].copy_from_slice(&(u64::MAX - 1).to_le_bytes());
        }
    }
    let path = dir.path().join("huge.ring");
    std::fs::write(&path, &bytes).unwrap();
    let counters = RingFile::open(&path).unwrap().counters();
    assert_eq!(counters.get(KindCounter::Written), u64::MAX);
    assert_eq!(counters.calls(), u64::MAX);
}

/// Found by the cross-process truncation test under load: a drain's last, unbounded pass
/// after the ring was truncated under it (its pages now zeros: tail 0) walked from its head
/// towards 0, up to 2^32 positions. A drain pass never scans more than the capacity.
#[test]
fn a_drain_pass_over_a_truncated_ring_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.ring");
    {
        let ring = ringlat::Ring::builder(&path)
            .capacity(64)
            .kind(0, "k")
            .start_position(1 << 31)
            .create()
            .unwrap();
        for trace in 0..10 {
            ring.record(0, trace, 0, std::time::Duration::from_micros(1));
        }
    }
    let mut drainer = ringlat_read::Drainer::open(&path).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = 0;
        let stats = drainer.drain_batch(usize::MAX, |batch| {
            seen += batch.len();
            Ok::<(), ()>(())
        });
        let intact = drainer.file().check_intact();
        let _ = done.send((stats.map(|s| s.taken + s.abandoned), seen, intact.is_err()));
    });
    let (scanned, seen, reported) = finished
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("the drain pass over a truncated ring did not end");
    assert!(scanned.unwrap() <= 64, "{scanned:?}");
    assert_eq!(seen, 0, "zeros are never handed on");
    assert!(reported, "check_intact reports the truncation");
}
