//! Writes a synthetic archive of N records (3 kinds at 100% / 10% / 50%, a long tail) for
//! measuring `ringcat pct` at scale:
//! `cargo run --release -p ringcat --example synth_archive -- big.archive 100000000`
//! then `/usr/bin/time -v ringcat pct big.archive --by kind`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ringlat_format::Record;
use ringlat_read::Decoded;
use ringlat_read::archive::{ArchiveWriter, RingInfo};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: synth_archive PATH COUNT")?;
    let count: u64 = args
        .next()
        .ok_or("usage: synth_archive PATH COUNT")?
        .parse()?;
    let mut writer = ArchiveWriter::open(&path, 1_795_276_800_000_000_000)?;
    let names = ["market", "limit", "cancel"];
    // A synthetic ring as big as the positions used, so that none is taken for a repeat.
    let ring = RingInfo::synthetic(1_795_276_800_000_000_000, 1 << 31, 1_000, &names);
    let mut state = 1u64;
    let mut batch = Vec::with_capacity(1 << 16);
    for i in 0..count {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let uniform = (state >> 11) as f64 / (1u64 << 53) as f64;
        let kind = (i % 3) as u8;
        let micros = [40.0, 65.0, 25.0][kind as usize] * (1.0 + 3.0 * -(1.0 - uniform).ln());
        batch.push(Decoded {
            position: i as u32,
            kind,
            class: 0,
            probability: [1.0, 0.1, 0.5][kind as usize],
            record: Record::new(
                i,
                1_795_276_800_000_000_000 + i * 10_000,
                (state >> 60) as u8 & 3,
                micros as i32,
            ),
        });
        if batch.len() == batch.capacity() {
            writer.append(&ring, &batch)?;
            batch.clear();
        }
    }
    writer.append(&ring, &batch)?;
    println!("wrote {count} records to {path}");
    Ok(())
}
