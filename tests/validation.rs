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
