//! The archive: what `ringcat drain -o` appends consumed records to, and what every reader
//! reads like a ring file. Append-only, so it can grow past any ring's capacity.
//!
//! Layout (little-endian): a 16384-byte header, then 32-byte entries.
//!
//! | offset | size | field |
//! |--------|------|-------|
//! | 0      | 8    | magic `RLARCHV\0` |
//! | 8      | 4    | version (1) |
//! | 12     | 4    | header size (16384) |
//! | 16     | 4    | entry size (32) |
//! | 24     | 8    | created, UNIX-epoch ns |
//! | 2048   | 2048 | class table: 256 f64 inclusion probabilities (0 = unused) |
//! | 4096   | 8192 | kind names: 256 x 32 bytes UTF-8, NUL-padded (empty = unnamed) |
//!
//! Entry: trace_id u64 @0, nanotime u64 @8, delta in ns i64 @16, status u8 @24, kind u8 @25,
//! class u8 @26 (index into the class table), 5 reserved bytes. A trailing partial entry (an
//! append in progress) is not read.

use crate::{Decoded, ReadError};
use ringlat_format::KIND_NAME_MAX;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The archive magic.
pub const ARCHIVE_MAGIC: [u8; 8] = *b"RLARCHV\0";
const VERSION: u32 = 1;
const HEADER_SIZE: usize = 16_384;
/// Bytes per archived record.
pub const ENTRY_SIZE: usize = 32;
const CLASS_TABLE: usize = 2048;
const KIND_NAMES: usize = 4096;

/// One archived record, with its latency already in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArchivedRecord {
    /// Request id.
    pub trace_id: u64,
    /// UNIX-epoch ns.
    pub nanotime: u64,
    /// Latency in ns.
    pub delta_ns: i64,
    /// Caller's status.
    pub status: u8,
    /// Operation kind.
    pub kind: u8,
    /// Inclusion probability.
    pub probability: f64,
}

/// The decoded header of an archive.
#[derive(Debug, Clone)]
struct ArchiveHeader {
    classes: [f64; 256],
    names: Vec<Option<String>>,
}

impl ArchiveHeader {
    fn empty() -> Self {
        ArchiveHeader {
            classes: [0.0; 256],
            names: vec![None; 256],
        }
    }

    fn parse(path: &Path, bytes: &[u8]) -> Result<Self, ReadError> {
        let bad = |what: String| ReadError::Archive {
            path: path.to_path_buf(),
            what,
        };
        if bytes.len() < HEADER_SIZE {
            return Err(bad(format!(
                "truncated header ({} of {HEADER_SIZE} bytes)",
                bytes.len()
            )));
        }
        if bytes[..8] != ARCHIVE_MAGIC {
            return Err(bad("not an archive (bad magic)".into()));
        }
        let u32_at = |offset: usize| {
            let mut word = [0u8; 4];
            word.copy_from_slice(&bytes[offset..offset + 4]);
            u32::from_le_bytes(word)
        };
        if u32_at(8) != VERSION {
            return Err(bad(format!(
                "unsupported archive version {} (this reader knows {VERSION})",
                u32_at(8)
            )));
        }
        if u32_at(12) as usize != HEADER_SIZE || u32_at(16) as usize != ENTRY_SIZE {
            return Err(bad("header or entry size mismatch".into()));
        }
        let mut header = ArchiveHeader::empty();
        for (class, slot) in header.classes.iter_mut().enumerate() {
            let offset = CLASS_TABLE + 8 * class;
            let mut word = [0u8; 8];
            word.copy_from_slice(&bytes[offset..offset + 8]);
            *slot = f64::from_le_bytes(word);
        }
        for (kind, name) in header.names.iter_mut().enumerate() {
            let offset = KIND_NAMES + KIND_NAME_MAX * kind;
            let raw = &bytes[offset..offset + KIND_NAME_MAX];
            let end = raw.iter().position(|b| *b == 0).unwrap_or(KIND_NAME_MAX);
            if end > 0 {
                *name = Some(String::from_utf8_lossy(&raw[..end]).into_owned());
            }
        }
        Ok(header)
    }

    fn to_bytes(&self, created_unix_ns: u64) -> Vec<u8> {
        let mut bytes = vec![0u8; HEADER_SIZE];
        bytes[..8].copy_from_slice(&ARCHIVE_MAGIC);
        bytes[8..12].copy_from_slice(&VERSION.to_le_bytes());
        bytes[12..16].copy_from_slice(&(HEADER_SIZE as u32).to_le_bytes());
        bytes[16..20].copy_from_slice(&(ENTRY_SIZE as u32).to_le_bytes());
        bytes[24..32].copy_from_slice(&created_unix_ns.to_le_bytes());
        for (class, p) in self.classes.iter().enumerate() {
            let offset = CLASS_TABLE + 8 * class;
            bytes[offset..offset + 8].copy_from_slice(&p.to_le_bytes());
        }
        for (kind, name) in self.names.iter().enumerate() {
            if let Some(name) = name {
                let offset = KIND_NAMES + KIND_NAME_MAX * kind;
                let len = name.len().min(KIND_NAME_MAX);
                bytes[offset..offset + len].copy_from_slice(&name.as_bytes()[..len]);
            }
        }
        bytes
    }

    /// The class of probability `p`, adding it if new.
    fn class_of(&mut self, p: f64) -> Option<u8> {
        if let Some(class) = self.classes.iter().position(|q| *q == p) {
            return u8::try_from(class).ok();
        }
        let free = self.classes.iter().position(|q| *q == 0.0)?;
        self.classes[free] = p;
        u8::try_from(free).ok()
    }
}

/// Appends consumed records to an archive file (created if missing).
#[derive(Debug)]
pub struct ArchiveWriter {
    path: PathBuf,
    file: File,
    header: ArchiveHeader,
    created_unix_ns: u64,
}

impl ArchiveWriter {
    /// Opens `path` for appending, creating it (mode 0600) with an empty header if missing.
    pub fn open(path: impl AsRef<Path>, now_unix_ns: u64) -> Result<Self, ReadError> {
        let path = path.as_ref();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(ReadError::io(path, "opening the archive"))?;
        let len = file
            .metadata()
            .map_err(ReadError::io(path, "reading the archive's metadata"))?
            .len();
        let (header, created_unix_ns) = if len == 0 {
            let header = ArchiveHeader::empty();
            file.write_all_at(&header.to_bytes(now_unix_ns), 0)
                .map_err(ReadError::io(path, "writing the archive header"))?;
            (header, now_unix_ns)
        } else {
            let mut bytes = vec![0u8; HEADER_SIZE.min(len as usize)];
            file.read_exact_at(&mut bytes, 0)
                .map_err(ReadError::io(path, "reading the archive header"))?;
            let header = ArchiveHeader::parse(path, &bytes)?;
            let mut created = [0u8; 8];
            created.copy_from_slice(&bytes[24..32]);
            (header, u64::from_le_bytes(created))
        };
        Ok(ArchiveWriter {
            path: path.to_path_buf(),
            file,
            header,
            created_unix_ns,
        })
    }

    /// Appends records of a ring whose kind names `name_of` gives; one write for the batch.
    /// Returns once the bytes are handed to the OS (they survive a crash of this process).
    pub fn append(
        &mut self,
        records: &[Decoded],
        unit_ns: i64,
        name_of: impl Fn(u8) -> Option<String>,
    ) -> Result<(), ReadError> {
        let mut header_changed = false;
        let mut bytes = Vec::with_capacity(records.len() * ENTRY_SIZE);
        for record in records {
            let kind = record.kind as usize;
            if self.header.names[kind].is_none()
                && let Some(name) = name_of(record.kind)
            {
                self.header.names[kind] = Some(name);
                header_changed = true;
            }
            let known = self.header.classes.contains(&record.probability);
            let class =
                self.header
                    .class_of(record.probability)
                    .ok_or_else(|| ReadError::Archive {
                        path: self.path.clone(),
                        what: "more than 256 distinct sampling rates".into(),
                    })?;
            header_changed |= !known;
            let mut entry = [0u8; ENTRY_SIZE];
            entry[0..8].copy_from_slice(&record.record.trace_id().to_le_bytes());
            entry[8..16].copy_from_slice(&record.record.nanotime().to_le_bytes());
            let delta_ns = i64::from(record.record.delta()).saturating_mul(unit_ns);
            entry[16..24].copy_from_slice(&delta_ns.to_le_bytes());
            entry[24] = record.record.status();
            entry[25] = record.kind;
            entry[26] = class;
            bytes.extend_from_slice(&entry);
        }
        if header_changed {
            // The header first: an entry never refers to a class the header lacks.
            self.file
                .write_all_at(&self.header.to_bytes(self.created_unix_ns), 0)
                .map_err(ReadError::io(&self.path, "writing the archive header"))?;
        }
        let end = self
            .file
            .metadata()
            .map_err(ReadError::io(&self.path, "reading the archive's metadata"))?
            .len();
        // Whole entries only: a partial entry left by an earlier crash is overwritten.
        let aligned = HEADER_SIZE as u64
            + (end.saturating_sub(HEADER_SIZE as u64) / ENTRY_SIZE as u64) * ENTRY_SIZE as u64;
        self.file
            .write_all_at(&bytes, aligned)
            .map_err(ReadError::io(&self.path, "appending to the archive"))?;
        Ok(())
    }

    /// fsync: the appended records are on stable storage.
    pub fn sync(&mut self) -> Result<(), ReadError> {
        self.file
            .flush()
            .and_then(|()| self.file.sync_data())
            .map_err(ReadError::io(&self.path, "syncing the archive"))
    }
}

/// Reads an archive, streaming.
#[derive(Debug)]
pub struct ArchiveReader {
    path: PathBuf,
    header: ArchiveHeader,
    entries: u64,
}

impl ArchiveReader {
    /// Opens and validates an archive.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, ReadError> {
        let path = path.as_ref();
        let mut file = File::open(path).map_err(ReadError::io(path, "opening"))?;
        let len = file
            .metadata()
            .map_err(ReadError::io(path, "reading metadata"))?
            .len();
        let mut bytes = vec![0u8; HEADER_SIZE.min(len as usize)];
        file.read_exact(&mut bytes)
            .map_err(ReadError::io(path, "reading the archive header"))?;
        let header = ArchiveHeader::parse(path, &bytes)?;
        Ok(ArchiveReader {
            path: path.to_path_buf(),
            header,
            entries: len.saturating_sub(HEADER_SIZE as u64) / ENTRY_SIZE as u64,
        })
    }

    /// Whole entries in the file when it was opened.
    pub fn len(&self) -> u64 {
        self.entries
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// The name of `kind`, if the archive has one.
    pub fn kind_name(&self, kind: u8) -> Option<String> {
        self.header.names.get(kind as usize).cloned().flatten()
    }

    /// Visits every entry in file order (streaming; memory does not grow with the file).
    /// Entries whose class is unknown are reported as a format error.
    pub fn for_each(&self, mut visit: impl FnMut(ArchivedRecord)) -> Result<(), ReadError> {
        let file = File::open(&self.path).map_err(ReadError::io(&self.path, "opening"))?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut skip = vec![0u8; HEADER_SIZE];
        reader
            .read_exact(&mut skip)
            .map_err(ReadError::io(&self.path, "reading the archive header"))?;
        let mut entry = [0u8; ENTRY_SIZE];
        for _ in 0..self.entries {
            reader
                .read_exact(&mut entry)
                .map_err(ReadError::io(&self.path, "reading an archive entry"))?;
            let u64_at = |offset: usize| {
                let mut word = [0u8; 8];
                word.copy_from_slice(&entry[offset..offset + 8]);
                u64::from_le_bytes(word)
            };
            let probability = self.header.classes[entry[26] as usize];
            if !(probability > 0.0 && probability <= 1.0) {
                return Err(ReadError::Archive {
                    path: self.path.clone(),
                    what: format!("an entry refers to unknown sampling class {}", entry[26]),
                });
            }
            visit(ArchivedRecord {
                trace_id: u64_at(0),
                nanotime: u64_at(8),
                delta_ns: u64_at(16) as i64,
                status: entry[24],
                kind: entry[25],
                probability,
            });
        }
        Ok(())
    }
}
