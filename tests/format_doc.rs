//! docs/FORMAT.md is precise enough to decode a file: this test reads the offsets out of the
//! page's tables (not from the format crate) and decodes a file the library wrote with them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::zombie_processes,
    missing_docs
)]

use std::collections::HashMap;
use std::time::Duration;

/// `name -> (offset, size)` for every table row whose first two cells are numbers.
fn fields_from_format_md() -> HashMap<String, (usize, usize)> {
    let text = include_str!("../docs/FORMAT.md");
    let mut fields = HashMap::new();
    for line in text.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 6 {
            continue;
        }
        if let (Ok(offset), Ok(size)) = (cells[1].parse::<usize>(), cells[2].parse::<usize>()) {
            fields.insert(cells[4].to_string(), (offset, size));
        }
    }
    fields
}

fn le(bytes: &[u8], offset: usize, size: usize) -> u64 {
    let mut value = 0u64;
    for (i, byte) in bytes[offset..offset + size].iter().enumerate() {
        value |= u64::from(*byte) << (8 * i);
    }
    value
}

#[test]
fn a_decoder_written_from_format_md_reads_the_library_file() {
    let f = fields_from_format_md();
    let at = |name: &str| {
        *f.get(name)
            .unwrap_or_else(|| panic!("FORMAT.md has no field {name}"))
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("doc.ring");
    // Kind 2 is sampled at 50% by trace id: these traces are the ones the documented hash keeps.
    let kept: Vec<u64> = (1000..)
        .filter(|t| ringlat::trace_hash(*t) < 1 << 63)
        .take(3)
        .collect();
    {
        let ring = ringlat::Ring::builder(&path)
            .capacity(8)
            .kind(2, "limit")
            .rate(2, 0.5)
            .decision(ringlat::Decision::TraceId)
            .delta_unit(ringlat::DeltaUnit::Nanos)
            .start_position(u32::MAX - 1)
            .create()
            .unwrap();
        for (i, trace) in kept.iter().enumerate() {
            let outcome = ring.record(2, *trace, i as u8, Duration::from_nanos(500 + i as u64));
            assert_eq!(outcome, ringlat::Outcome::Written);
        }
        ring.record(7, 1, 0, Duration::ZERO); // unconfigured kind: rejected
    }
    let bytes = std::fs::read(&path).unwrap();
    let get = |name: &str| {
        let (offset, size) = at(name);
        le(&bytes, offset, size)
    };
    assert_eq!(&bytes[at("magic").0..8], b"RINGLAT\0");
    assert_eq!(get("version"), 2);
    assert_eq!(get("header_size"), 40960);
    assert_eq!(get("record_size"), 21);
    let capacity = get("capacity");
    assert_eq!(capacity, 8);
    assert_eq!(get("file_size"), bytes.len() as u64);
    assert_eq!(get("delta_unit"), 0);
    assert_eq!(get("state"), 1, "closed cleanly");
    let word = get("ring_word");
    let (head, tail) = ((word >> 32) as u32, word as u32);
    assert_eq!(
        (head, tail),
        (u32::MAX - 1, 1),
        "three records, tail wrapped"
    );

    let kind_table = at("kind_table").0;
    let entry = kind_table + 128 * 2;
    let name = &bytes[entry + at("name").0..entry + at("name").0 + at("name").1];
    assert_eq!(name.split(|b| *b == 0).next().unwrap(), b"limit");
    assert_eq!(le(&bytes, entry + at("kind_flags").0, 4) & 1, 1);
    assert_eq!(le(&bytes, entry + at("written").0, 8), 3);
    assert_eq!(le(&bytes, kind_table + 128 * 7 + at("rejected").0, 8), 1);
    assert_eq!(
        f64::from_bits(le(&bytes, entry + at("base_probability").0, 8)),
        0.5
    );
    assert_eq!(get("decision"), 1);
    assert_eq!(get("overflow_policy"), 0);
    assert_eq!(
        (get("breaker_low_water"), get("breaker_high_water")),
        (1, 4)
    );
    assert!(get("heartbeat_unix_ns") >= get("anchor_unix_ns"));
    assert_eq!(
        get("durable_position"),
        (1 << 32) | 1,
        "closing flushed everything"
    );
    assert!(get("msyncs") > 0);
    let class_table = at("class_table").0;

    let records = get("records_offset") as usize;
    let meta = get("meta_offset") as usize;
    let anchor = get("anchor_unix_ns");
    let mut position = head;
    for trace in 0..3u64 {
        let slot = (position as u64 & (capacity - 1)) as usize;
        let word = le(&bytes, meta + 8 * slot, 8);
        assert_eq!(word as u32, position, "metadata position");
        assert_eq!((word >> 32) & 7, 2, "committed");
        assert_eq!((word >> 40) & 0xFF, 2, "kind");
        let class = ((word >> 48) & 0xFF) as usize;
        assert_eq!(f64::from_bits(le(&bytes, class_table + 8 * class, 8)), 0.5);
        let record = records + 21 * slot;
        assert_eq!(
            le(&bytes, record + at("trace_id").0, 8),
            kept[trace as usize]
        );
        assert!(le(&bytes, record + at("nanotime").0, 8) >= anchor);
        assert_eq!(le(&bytes, record + at("status").0, 1), trace);
        assert_eq!(
            le(&bytes, record + at("delta").0, 4) as u32 as i32,
            500 + trace as i32
        );
        position = position.wrapping_add(1);
    }
}
