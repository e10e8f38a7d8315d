//! Interval snapshots in an archive (version 2): the counters and population histograms of
//! the drained ring, as differences since the previous snapshot of the same ring in the same
//! archive. The base of each difference is what the archive's own snapshots of that ring add
//! up to (read back from the file on the first snapshot of a session), so a snapshot lost to
//! a crash is contained in the next one and nothing is counted twice after a restart.
//!
//! A snapshot is a run of entries whose `source` byte is [`SNAPSHOT_SOURCE`] (never a source
//! row), written in one write: kind entries, bucket entries, then the end entry, which says
//! how many snapshot entries before it belong to it (the commit mark: a run without its end,
//! cut short by a crash, is ignored). docs/ARCHIVE.md, "Snapshot entries", is the normative
//! text.

use super::layout::{ENTRY_SIZE, VERSION_1};
use super::{ArchiveReader, ArchiveWriter, RingIdentity, RingInfo};
use crate::ReadError;
use crate::population::{Histogram, KindPopulation};
use ringlat_format::KindCounter;
use ringlat_format::population::BUCKETS;
use std::collections::BTreeMap;

/// The `source` byte (offset 27) of every snapshot entry.
pub const SNAPSHOT_SOURCE: u8 = 0xFF;
/// Entry type (offset 24): the end of a snapshot.
pub const SNAPSHOT_END: u8 = 1;
/// Entry type: three words of a kind's counters (chunk 0..3 at offset 28).
pub const SNAPSHOT_KIND: u8 = 2;
/// Entry type: three bucket counts of a kind, from the bucket index at offset 28.
pub const SNAPSHOT_BUCKETS: u8 = 3;
/// Flag (offset 26) of a kind entry: the ring has a histogram for the kind.
pub const SNAPSHOT_HAS_HISTOGRAM: u8 = 1;

/// One snapshot read back: the differences since the previous snapshot of its ring.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// UNIX-epoch ns at which the drainer read the ring's counters.
    pub time_unix_ns: u64,
    /// The ring's creation anchor `(anchor_unix_ns, anchor_mono_ns)`.
    pub ring: (u64, u64),
    /// Per archive kind with any change: the counter and histogram differences.
    pub kinds: Vec<KindPopulation>,
}

/// A kind's cumulative values: the counters, then overflow, negative, sum_ns.
#[derive(Debug, Clone, Default)]
pub(crate) struct Cumulative {
    words: [u64; 9],
    histogram: Option<Histogram>,
}

fn words_of(population: &KindPopulation) -> [u64; 9] {
    let mut words = [0u64; 9];
    words[..6].copy_from_slice(&population.counters);
    if let Some(h) = &population.histogram {
        words[6] = h.overflow();
        words[7] = h.negative();
        words[8] = h.sum_ns();
    }
    words
}

fn u64_at(bytes: &[u8], offset: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[offset..offset + 8]);
    u64::from_le_bytes(word)
}

fn u32_at(bytes: &[u8], offset: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[offset..offset + 4]);
    u32::from_le_bytes(word)
}

fn entry(kind_of_entry: u8, kind: u8, flags: u8, words: [u64; 3], at: u32) -> [u8; ENTRY_SIZE] {
    let mut bytes = [0u8; ENTRY_SIZE];
    for (i, word) in words.iter().enumerate() {
        bytes[8 * i..8 * i + 8].copy_from_slice(&word.to_le_bytes());
    }
    bytes[24] = kind_of_entry;
    bytes[25] = kind;
    bytes[26] = flags;
    bytes[27] = SNAPSHOT_SOURCE;
    bytes[28..32].copy_from_slice(&at.to_le_bytes());
    bytes
}

/// Decodes the snapshot entries `run` (the entries of one snapshot, end entry last).
fn decode(run: &[[u8; ENTRY_SIZE]]) -> Option<Snapshot> {
    let (end, body) = run.split_last()?;
    let mut kinds: BTreeMap<u8, (KindPopulation, [u64; 9], Vec<u64>)> = BTreeMap::new();
    for bytes in body {
        let kind = bytes[25];
        let slot = kinds.entry(kind).or_insert_with(|| {
            (
                KindPopulation {
                    kind,
                    counters: [0; 6],
                    histogram: None,
                },
                [0; 9],
                vec![0; BUCKETS],
            )
        });
        let at = u32_at(bytes, 28) as usize;
        let words = [u64_at(bytes, 0), u64_at(bytes, 8), u64_at(bytes, 16)];
        match bytes[24] {
            SNAPSHOT_KIND if at < 3 => {
                slot.1[3 * at..3 * at + 3].copy_from_slice(&words);
                if bytes[26] & SNAPSHOT_HAS_HISTOGRAM != 0 {
                    slot.0.histogram = Some(Histogram::default());
                }
            }
            SNAPSHOT_BUCKETS => {
                for (i, word) in words.iter().enumerate() {
                    if let Some(cell) = slot.2.get_mut(at + i) {
                        *cell = *word;
                    }
                }
            }
            _ => {}
        }
    }
    let kinds = kinds
        .into_values()
        .map(|(mut population, words, buckets)| {
            population.counters.copy_from_slice(&words[..6]);
            if population.histogram.is_some() {
                population.histogram = Some(Histogram::from_parts(
                    &buckets, words[6], words[7], words[8],
                ));
            }
            population
        })
        .collect();
    Some(Snapshot {
        time_unix_ns: u64_at(end, 0),
        ring: (u64_at(end, 8), u64_at(end, 16)),
        kinds,
    })
}

/// Snapshot runs met entry by entry: a snapshot is decoded at its end entry from the run of
/// snapshot entries before it; anything else between two snapshot entries breaks the run.
#[derive(Default)]
struct Runs {
    run: Vec<[u8; ENTRY_SIZE]>,
}

impl Runs {
    /// The next entry of the file.
    fn entry(&mut self, bytes: &[u8; ENTRY_SIZE], visit: &mut impl FnMut(Snapshot)) {
        if bytes[27] != SNAPSHOT_SOURCE {
            self.run.clear();
            return;
        }
        self.run.push(*bytes);
        if bytes[24] == SNAPSHOT_END {
            let belong = u32_at(bytes, 28) as usize;
            if belong < self.run.len()
                && let Some(snapshot) = decode(&self.run[self.run.len() - 1 - belong..])
            {
                visit(snapshot);
            }
            self.run.clear();
        }
    }

    /// Entries that are not snapshot entries came here (not seen).
    fn gap(&mut self) {
        self.run.clear();
    }
}

/// Visits every committed snapshot of the archive file, in file order.
fn each_snapshot(
    file: &std::fs::File,
    path: &std::path::Path,
    entries: u64,
    mut visit: impl FnMut(Snapshot),
) -> Result<(), ReadError> {
    let mut runs = Runs::default();
    // Read in place from a mapping (module `scan`): only byte 27 of most entries is looked at.
    super::scan::read_entries(file, path, 0..entries, &mut Vec::new(), &mut |_, chunk| {
        for bytes in chunk.as_chunks::<ENTRY_SIZE>().0 {
            runs.entry(bytes, &mut visit);
        }
    })
}

/// Visits the committed snapshots among `entries`, the snapshot entries of a whole archive
/// with their indices in file order (what a pass kept: module `stash`), as
/// [`each_snapshot`] would read them from the file.
fn each_stashed_snapshot(entries: &[(u64, [u8; ENTRY_SIZE])], mut visit: impl FnMut(Snapshot)) {
    let mut runs = Runs::default();
    let mut next = None;
    for (index, bytes) in entries {
        if next != Some(*index) {
            runs.gap();
        }
        runs.entry(bytes, &mut visit);
        next = Some(index + 1);
    }
}

impl ArchiveReader {
    /// Every interval snapshot the drains wrote, in file order: per snapshot, the counter
    /// and histogram differences of each archive kind that changed since the previous
    /// snapshot of its ring. Empty for an archive drained without snapshots. After a pass
    /// that kept them ([`keep_snapshots`](Self::keep_snapshots)) and scanned every entry,
    /// decoded from what it kept, without reading the file again.
    pub fn snapshot_deltas(&self) -> Result<Vec<Snapshot>, ReadError> {
        let mut snapshots = Vec::new();
        if self.header.version != VERSION_1
            && let Some(entries) = self.take_stash()
        {
            each_stashed_snapshot(&entries, |s| snapshots.push(s));
            return Ok(snapshots);
        }
        each_snapshot(self.file(), self.path(), self.len(), |s| snapshots.push(s))?;
        Ok(snapshots)
    }
}

/// What the archive's snapshots of one ring add up to, per archive kind.
pub(crate) type Bases = BTreeMap<(u64, u64), BTreeMap<u8, Cumulative>>;

impl ArchiveWriter {
    /// Appends a snapshot of `ring`'s population (cumulative, as [`RingFile::population`]
    /// reads it) taken at `time_unix_ns`: the differences since what the archive's snapshots
    /// of that ring add up to. Returns the entries written.
    ///
    /// [`RingFile::population`]: crate::RingFile::population
    pub fn append_snapshot(
        &mut self,
        ring: &RingInfo,
        time_unix_ns: u64,
        population: &[KindPopulation],
    ) -> Result<u64, ReadError> {
        let key = identity_key(&ring.identity);
        if !self.snapshot_bases().contains_key(&key) {
            let mut bases: BTreeMap<u8, Cumulative> = BTreeMap::new();
            let (file, path, entries) = self.file_parts();
            each_snapshot(file, path, entries, |snapshot| {
                if snapshot.ring != key {
                    return;
                }
                for kind in snapshot.kinds {
                    let base = bases.entry(kind.kind).or_default();
                    for (total, word) in base.words.iter_mut().zip(words_of(&kind)) {
                        *total = total.wrapping_add(word);
                    }
                    if let Some(h) = &kind.histogram {
                        base.histogram
                            .get_or_insert_with(Histogram::default)
                            .merge(h);
                    }
                }
            })?;
            self.snapshot_bases().insert(key, bases);
        }
        let mut bytes: Vec<u8> = Vec::new();
        let mut tables_changed = false;
        let mut updates = Vec::new();
        for kind in population {
            let name = ring.kind_names[kind.kind as usize]
                .clone()
                .filter(|name| !name.is_empty())
                .unwrap_or_else(|| kind.kind.to_string());
            let (archive_kind, added) = self
                .header_mut()
                .kind_of(kind.kind, &name)
                .ok_or_else(|| self.archive_error("more than 256 distinct kind names"))?;
            tables_changed |= added;
            let base = self
                .snapshot_bases()
                .get(&key)
                .and_then(|b| b.get(&archive_kind))
                .cloned()
                .unwrap_or_default();
            let now = words_of(kind);
            let mut delta = [0u64; 9];
            for (i, d) in delta.iter_mut().enumerate() {
                *d = if i == 8 {
                    now[i].wrapping_sub(base.words[i])
                } else {
                    now[i].saturating_sub(base.words[i])
                };
            }
            let histogram_delta = kind.histogram.as_ref().map(|h| match &base.histogram {
                Some(before) => h.delta_since(before),
                None => h.clone(),
            });
            let changed = delta[..8].iter().any(|d| *d != 0)
                || histogram_delta.as_ref().is_some_and(|h| h.count() > 0);
            if !changed {
                continue;
            }
            let flags = if kind.histogram.is_some() {
                SNAPSHOT_HAS_HISTOGRAM
            } else {
                0
            };
            for chunk in 0..3 {
                let words = [delta[3 * chunk], delta[3 * chunk + 1], delta[3 * chunk + 2]];
                bytes.extend_from_slice(&entry(
                    SNAPSHOT_KIND,
                    archive_kind,
                    flags,
                    words,
                    chunk as u32,
                ));
            }
            if let Some(h) = &histogram_delta {
                for (chunk, counts) in h.counts().chunks(3).enumerate() {
                    if counts.iter().all(|c| *c == 0) {
                        continue;
                    }
                    let mut words = [0u64; 3];
                    words[..counts.len()].copy_from_slice(counts);
                    bytes.extend_from_slice(&entry(
                        SNAPSHOT_BUCKETS,
                        archive_kind,
                        0,
                        words,
                        (3 * chunk) as u32,
                    ));
                }
            }
            updates.push((
                archive_kind,
                Cumulative {
                    words: now,
                    histogram: kind.histogram.clone(),
                },
            ));
        }
        let belong = (bytes.len() / ENTRY_SIZE) as u32;
        bytes.extend_from_slice(&entry(
            SNAPSHOT_END,
            0,
            0,
            [time_unix_ns, key.0, key.1],
            belong,
        ));
        if tables_changed {
            self.rewrite_header()?;
        }
        let written = self.append_raw(&bytes)?;
        if let Some(bases) = self.snapshot_bases().get_mut(&key) {
            for (kind, cumulative) in updates {
                bases.insert(kind, cumulative);
            }
        }
        Ok(written)
    }
}

fn identity_key(identity: &RingIdentity) -> (u64, u64) {
    (identity.anchor_unix_ns, identity.anchor_mono_ns)
}

/// Counter names of the 9 words of a kind's snapshot entries, in order (for documentation
/// and tests).
pub const SNAPSHOT_WORDS: [&str; 9] = [
    KindCounter::Written.name(),
    KindCounter::SampledOut.name(),
    KindCounter::DroppedFull.name(),
    KindCounter::DroppedBreaker.name(),
    KindCounter::Rejected.name(),
    KindCounter::Saturated.name(),
    "overflow",
    "negative",
    "sum_ns",
];
