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

/// `field -> allowed values` from the "Allowed values" table: rows whose second cell is a
/// comma-separated list of integers.
fn allowed_values_from_format_md() -> HashMap<String, Vec<u64>> {
    let text = include_str!("../docs/FORMAT.md");
    let section = text
        .split("### Allowed values")
        .nth(1)
        .expect("FORMAT.md has an Allowed values section");
    let mut allowed = HashMap::new();
    for line in section.lines().take_while(|l| !l.starts_with("##")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 {
            continue;
        }
        let values: Result<Vec<u64>, _> = cells[2].split(',').map(|v| v.trim().parse()).collect();
        if let Ok(values) = values {
            allowed.insert(cells[1].to_string(), values);
        }
    }
    allowed
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
            .kind(5, "a-name-of-exactly-32-bytes-long!")
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

    // Every enumerated field holds one of the values the document allows.
    let allowed = allowed_values_from_format_md();
    assert!(allowed.len() >= 9, "{allowed:?}");
    let kind_table = at("kind_table").0;
    for (field, values) in &allowed {
        let found: Vec<u64> = if field.starts_with("kind_") {
            let (offset, size) = at(field);
            (0..256)
                .map(|k| le(&bytes, kind_table + 128 * k + offset, size))
                .collect()
        } else {
            vec![get(field)]
        };
        for value in found {
            assert!(
                values.contains(&value),
                "{field} = {value}, allowed {values:?}"
            );
        }
    }
    // The ring-word invariant, durable_position's high bits, the class table's rules.
    assert!(tail.wrapping_sub(head) as u64 <= capacity);
    assert_eq!(get("durable_position") >> 33, 0);
    let class_table = at("class_table").0;
    assert_eq!(
        le(&bytes, class_table, 8),
        0x3FF0_0000_0000_0000,
        "class 0 is 1.0"
    );
    for class in 1..256 {
        let p = f64::from_bits(le(&bytes, class_table + 8 * class, 8));
        assert!(p == 0.0 || (p > 0.0 && p <= 1.0), "class {class}: {p}");
    }
    // A name may fill all 32 bytes, without a NUL.
    let entry5 = kind_table + 128 * 5;
    let name5 = &bytes[entry5 + at("name").0..entry5 + at("name").0 + at("name").1];
    assert_eq!(name5, b"a-name-of-exactly-32-bytes-long!");
    // Counters: sum all 256 entries (kind 7 is undeclared and still counts its rejection).
    let calls: u64 = (0..256)
        .map(|k| {
            [
                "written",
                "sampled_out",
                "dropped_full",
                "dropped_breaker",
                "rejected",
            ]
            .iter()
            .map(|c| le(&bytes, kind_table + 128 * k + at(c).0, 8))
            .sum::<u64>()
        })
        .sum();
    assert_eq!(calls, 4, "3 written + 1 rejected, over all 256 entries");

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

    let records = get("records_offset") as usize;
    let meta = get("meta_offset") as usize;
    let anchor = get("anchor_unix_ns");
    let mut position = head;
    let mut previous_nanotime = 0;
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
        let nanotime = le(&bytes, record + at("nanotime").0, 8);
        assert!(nanotime >= anchor);
        // One thread's `record` calls: nanotime never decreases in position order.
        assert!(nanotime >= previous_nanotime);
        previous_nanotime = nanotime;
        assert_eq!(le(&bytes, record + at("status").0, 1), trace);
        assert_eq!(
            le(&bytes, record + at("delta").0, 4) as u32 as i32,
            500 + trace as i32
        );
        position = position.wrapping_add(1);
    }
}

#[test]
fn overwritten_counts_positions_pushed_out_of_an_overwrite_ring() {
    let f = fields_from_format_md();
    let at = |name: &str| f[name];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ow.ring");
    {
        let ring = ringlat::Ring::builder(&path)
            .capacity(4)
            .kind(0, "k")
            .overflow(ringlat::Overflow::Overwrite)
            .create()
            .unwrap();
        for trace in 0..10 {
            ring.record(0, trace, 0, Duration::from_micros(1));
        }
    }
    let bytes = std::fs::read(&path).unwrap();
    let get = |name: &str| {
        let (offset, size) = at(name);
        le(&bytes, offset, size)
    };
    assert_eq!(get("overflow_policy"), 1);
    let word = get("ring_word");
    let (head, tail) = ((word >> 32) as u32, word as u32);
    assert_eq!(tail.wrapping_sub(head), 4, "full, never more than capacity");
    assert_eq!(get("overwritten"), 6, "10 positions, 4 still in the ring");
}

/// The population histogram area, decoded and turned into percentiles with nothing but
/// FORMAT.md ("Population histograms"): equal to the true percentiles of every call within
/// 1%, and to what `ringlat-read` reports.
#[test]
fn population_percentiles_from_the_document_alone() {
    let f = fields_from_format_md();
    let at = |name: &str| {
        *f.get(name)
            .unwrap_or_else(|| panic!("FORMAT.md has no field {name}"))
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pop.ring");
    // (kind, calls' latencies in ns): kind 1 is sampled at 1%, so the records say little.
    let mut truth: Vec<(u8, Vec<u64>)> = vec![
        (
            1,
            (0..20_000u64)
                .map(|i| 150 + (i * 7_919) % 4_000_000)
                .collect(),
        ),
        (4, (0..500u64).map(|i| 90 + i * i * 1_000).collect()),
    ];
    {
        let ring = ringlat::Ring::builder(&path)
            .capacity(64)
            .kind(1, "sampled")
            .rate(1, 0.01)
            .kind(4, "whole")
            .overflow(ringlat::Overflow::Overwrite)
            .create()
            .unwrap();
        for (kind, values) in &truth {
            for (i, ns) in values.iter().enumerate() {
                ring.record(*kind, i as u64, 0, Duration::from_nanos(*ns));
            }
        }
        ring.close().unwrap();
    }
    let bytes = std::fs::read(&path).unwrap();
    let get = |name: &str| {
        let (offset, size) = at(name);
        le(&bytes, offset, size)
    };
    assert_eq!(get("hist_scheme"), 1);
    assert_eq!(get("hist_kinds"), 2);
    let area = get("hist_offset") as usize;
    let block_size = 36_928;
    assert_eq!(
        get("hist_size"),
        (2 * block_size as u64).div_ceil(4096) * 4096
    );
    assert_eq!(area as u64 + get("hist_size"), bytes.len() as u64);
    let file = ringlat_read::RingFile::open(&path).unwrap();
    let library = file.population();
    for (index, (kind, values)) in truth.iter_mut().enumerate() {
        let block = area + block_size * index;
        assert_eq!(
            le(&bytes, block + at("hist_block_kind").0, 4),
            u64::from(*kind)
        );
        let (buckets_at, buckets_size) = at("hist_buckets");
        let buckets: Vec<u64> = (0..buckets_size / 8)
            .map(|b| le(&bytes, block + buckets_at + 8 * b, 8))
            .collect();
        let overflow = le(&bytes, block + at("hist_overflow").0, 8);
        let negative = le(&bytes, block + at("hist_negative").0, 8);
        let count = buckets.iter().sum::<u64>() + overflow + negative;
        assert_eq!(count, values.len() as u64, "every call of kind {kind}");
        assert_eq!(
            le(&bytes, block + at("hist_sum_ns").0, 8),
            values.iter().sum::<u64>()
        );
        // The bounds of bucket b, from the document.
        let bounds = |b: u64| {
            if b < 256 {
                (b, b + 1)
            } else {
                let e = 8 + (b - 256) / 128;
                let m = 128 + (b - 256) % 128;
                (m << (e - 7), (m + 1) << (e - 7))
            }
        };
        let percentile = |q: f64| -> u64 {
            let rank = ((q * count as f64) - 1e-7).ceil().max(1.0) as u64;
            if rank <= negative {
                return 0;
            }
            let mut seen = negative;
            for (b, c) in buckets.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    let (low, high) = bounds(b as u64);
                    return if high - low == 1 {
                        low
                    } else {
                        low + (high - low) / 2
                    };
                }
            }
            1 << 42
        };
        values.sort_unstable();
        let histogram = library[index].histogram.as_ref().unwrap();
        for q in [0.5, 0.9, 0.99, 0.999] {
            let rank = ((q * values.len() as f64) - 1e-7).ceil() as usize;
            let exact = values[rank - 1] as f64;
            let decoded = percentile(q);
            assert!(
                (decoded as f64 - exact).abs() <= exact * 0.01,
                "kind {kind} p{q}: {decoded} vs {exact}"
            );
            assert_eq!(histogram.percentile(q).unwrap().value_ns, decoded);
        }
    }
}
