use crate::Failure;
use crate::cli::{StatArgs, StatFormat};
use crate::time::rfc3339_nanos;
use ringlat_format::KindCounter;
use ringlat_read::RingFile;
use serde_json::{Map, Value, json};
use std::io::Write;

pub(crate) fn run(args: &StatArgs) -> Result<(), Failure> {
    let file = RingFile::open(&args.file)?;
    let text = match args.format {
        StatFormat::Text => text(&file),
        StatFormat::Json => json(&file).to_string(),
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    Ok(())
}

fn counter_object(values: &[u64; 6], calls: u64) -> Value {
    let mut object = Map::new();
    object.insert("calls".into(), calls.into());
    for counter in KindCounter::ALL {
        object.insert(counter.name().into(), values[counter.index()].into());
    }
    let dropped =
        values[KindCounter::DroppedFull.index()] + values[KindCounter::DroppedBreaker.index()];
    object.insert("dropped".into(), dropped.into());
    Value::Object(object)
}

fn calls_of(values: &[u64; 6]) -> u64 {
    values.iter().take(5).sum()
}

fn json(file: &RingFile) -> Value {
    let geometry = file.geometry();
    let (head, tail) = file.positions();
    let counters = file.counters();
    let mut totals = counter_object(&counters.total, counters.calls());
    if let Value::Object(map) = &mut totals {
        map.insert("abandoned".into(), counters.abandoned.into());
    }
    let kinds: Vec<Value> = file
        .configured_kinds()
        .into_iter()
        .map(|kind| {
            let values = counters.per_kind.iter().find(|(k, _)| *k == kind).map(|(_, v)| *v).unwrap_or_default();
            json!({"id": kind, "name": file.kind_label(kind), "counters": counter_object(&values, calls_of(&values))})
        })
        .collect();
    json!({
        "path": file.path().display().to_string(),
        "version": ringlat_format::VERSION,
        "capacity": geometry.capacity,
        "file_size": geometry.file_size,
        "head": head,
        "tail": tail,
        "fill": tail.wrapping_sub(head),
        "unit": file.delta_unit().suffix(),
        "multi_producer": file.multi_producer(),
        "created": rfc3339_nanos(file.created_unix_ns()),
        "writer_pid": file.writer_pid(),
        "writer": file.writer_state().as_str(),
        "counters": totals,
        "kinds": kinds,
    })
}

fn text(file: &RingFile) -> String {
    let geometry = file.geometry();
    let (head, tail) = file.positions();
    let fill = tail.wrapping_sub(head);
    let counters = file.counters();
    let mut lines = vec![
        format!("file        {}", file.path().display()),
        format!(
            "format      version {}, {} bytes, delta unit {}",
            ringlat_format::VERSION,
            geometry.file_size,
            file.delta_unit().suffix()
        ),
        format!(
            "capacity    {} slots ({})",
            geometry.capacity,
            if file.multi_producer() {
                "multi-producer"
            } else {
                "single-producer"
            }
        ),
        format!("head/tail   {head} / {tail}"),
        format!(
            "fill        {fill} ({:.1}%)",
            100.0 * f64::from(fill) / f64::from(geometry.capacity)
        ),
        format!("created     {}", rfc3339_nanos(file.created_unix_ns())),
        format!(
            "writer      pid {} ({})",
            file.writer_pid(),
            file.writer_state().as_str()
        ),
        String::new(),
        format!(
            "{:<14}{:>13}{:>13}{:>13}{:>13}{:>13}{:>13}{:>13}",
            "kind",
            "calls",
            "written",
            "sampled_out",
            "dropped_full",
            "dropped_brk",
            "rejected",
            "saturated"
        ),
    ];
    let row = |label: String, values: &[u64; 6]| {
        let mut line = format!("{label:<14}{:>13}", calls_of(values));
        for value in values {
            line.push_str(&format!("{value:>13}"));
        }
        line
    };
    for (kind, values) in &counters.per_kind {
        lines.push(row(file.kind_label(*kind), values));
    }
    lines.push(row("total".into(), &counters.total));
    lines.push(format!(
        "abandoned slots (writer died mid-write): {}",
        counters.abandoned
    ));
    lines.join("\n")
}
