//! `ringcat stat`: the live header view, as text, JSON or Prometheus text exposition.

use crate::Failure;
use crate::cli::{StatArgs, StatFormat};
use crate::time::{display_time, now_unix_ns, rfc3339_nanos};
use ringlat_format::{GlobalCounter, KindCounter};
use ringlat_read::{FlushMode, LockHolder, RingFile};
use serde_json::{Map, Value, json};
use std::io::{IsTerminal, Write};

pub(crate) fn run(args: &StatArgs) -> Result<(), Failure> {
    let file = RingFile::open(&args.file)?;
    let mut out = std::io::stdout().lock();
    let clear = out.is_terminal() && args.watch.is_some();
    loop {
        // Before touching the mapping: the file may have shrunk since the last round.
        file.check_intact()?;
        let text = match args.format {
            StatFormat::Text => text(&file),
            StatFormat::Json => json(&file).to_string(),
            StatFormat::Prom => prom(&file, args),
        };
        // What was read while the file shrank may be zeros: report that instead.
        file.check_intact()?;
        if clear {
            write!(out, "\x1b[H\x1b[2J")?;
        }
        writeln!(out, "{text}")?;
        out.flush()?;
        match args.watch {
            Some(period) => std::thread::sleep(period),
            None => return Ok(()),
        }
    }
}

fn dropped_of(values: &[u64; 6]) -> u64 {
    values[KindCounter::DroppedFull.index()]
        .saturating_add(values[KindCounter::DroppedBreaker.index()])
}

fn counter_object(values: &[u64; 6]) -> Map<String, Value> {
    let mut object = Map::new();
    object.insert("calls".into(), KindCounter::calls_of(values).into());
    for counter in KindCounter::ALL {
        object.insert(counter.name().into(), values[counter.index()].into());
    }
    object.insert("dropped".into(), dropped_of(values).into());
    object
}

fn heartbeat_age_ms(file: &RingFile) -> Option<f64> {
    file.heartbeat_unix_ns()
        .map(|beat| now_unix_ns().saturating_sub(beat) as f64 / 1e6)
}

fn json(file: &RingFile) -> Value {
    let geometry = file.geometry();
    let (head, tail) = file.positions();
    let counters = file.counters();
    let mut totals = counter_object(&counters.total);
    for counter in GlobalCounter::ALL {
        totals.insert(counter.name().into(), file.global(counter).into());
    }
    let kinds: Vec<Value> = file
        .configured_kinds()
        .into_iter()
        .map(|kind| {
            let rates = file.kind_rates(kind);
            json!({
                "id": kind,
                "name": file.kind_label(kind),
                "rate": {"base": rates.base, "current": rates.current,
                         "calls_per_second": rates.calls_per_second,
                         "degrade_above": rates.degrade_above},
                "counters": counter_object(&file.counters().of_kind(kind)),
            })
        })
        .collect();
    let undeclared: Vec<Value> = counters
        .per_kind
        .iter()
        .filter(|(kind, _)| file.kind_name(*kind).is_none())
        .map(|(kind, values)| json!({"id": kind, "counters": counter_object(values)}))
        .collect();
    let policy = file.policy();
    let liveness = file.liveness();
    json!({
        "population": crate::population::stat_json(file),
        "path": file.path().display().to_string(),
        "version": ringlat_format::VERSION,
        "capacity": geometry.capacity,
        "file_size": geometry.file_size,
        "head": head,
        "tail": tail,
        "fill": tail.wrapping_sub(head),
        "unit": file.delta_unit().suffix(),
        "multi_producer": file.multi_producer(),
        "clock": if file.tsc_clock() { "tsc" } else { "vdso" },
        "created": rfc3339_nanos(file.created_unix_ns()),
        "writer_pid": file.writer_pid(),
        "writer": liveness.state.as_str(),
        "writer_lock": match liveness.lock {
            LockHolder::Nobody => Value::Null,
            LockHolder::Pid(pid) => json!({"pid": pid}),
            LockHolder::Unknown => json!({"pid": null}),
        },
        "writer_pid_alive": liveness.pid_alive,
        "writer_disagreement": liveness.disagreement,
        "heartbeat": file.heartbeat_unix_ns().map(rfc3339_nanos),
        "heartbeat_age_ms": heartbeat_age_ms(file),
        "stuck": file.stuck_position().map(|stuck| json!({
            "position": stuck.position,
            "since": rfc3339_nanos(stuck.since_unix_ns),
            "for_ms": stuck.stuck_for(now_unix_ns()).as_secs_f64() * 1e3,
        })),
        "durable_position": file.durable_position(),
        "overflow": if policy.overwrite { "overwrite" } else { "break" },
        "breaker": file.breaker().map(|b| json!({
            "open": b.open, "low_water": b.low_water, "high_water": b.high_water, "trips": b.trips,
        })),
        "sampling": {
            "decision": if policy.trace_id_decision { "trace_id" } else { "random" },
            "keep_if_slow_ns": policy.keep_if_slow_ns,
            "degrade_factor": policy.degrade_factor,
            "degrade_floor": policy.degrade_floor,
        },
        "flush": match policy.flush {
            FlushMode::Async => json!({"mode": "async"}),
            FlushMode::Every(ns) => json!({"mode": "every", "interval_ns": ns}),
        },
        "counters": totals,
        "kinds": kinds,
        "undeclared_kinds": undeclared,
    })
}

fn text(file: &RingFile) -> String {
    let geometry = file.geometry();
    let (head, tail) = file.positions();
    let fill = tail.wrapping_sub(head);
    let counters = file.counters();
    let policy = file.policy();
    let heartbeat = match heartbeat_age_ms(file) {
        Some(age) => format!("last heartbeat {age:.0} ms ago"),
        None => "no heartbeat yet".into(),
    };
    let breaker = match file.breaker() {
        Some(b) => format!(
            "{} (trips below {} free, closes above {} free; {} trips)",
            if b.open {
                crate::style::Style::stdout().red("OPEN, dropping")
            } else {
                "closed".to_string()
            },
            b.low_water,
            b.high_water,
            b.trips
        ),
        None => "none: overwrite mode (the newest records overwrite the oldest)".into(),
    };
    let flush = match policy.flush {
        FlushMode::Async => {
            "async (msync MS_ASYNC: survives a writer crash, not an OS crash)".into()
        }
        FlushMode::Every(ns) => format!("every {} ms (msync MS_SYNC)", ns / 1_000_000),
    };
    let durable = match file.durable_position() {
        Some(position) => format!(
            "{position} ({} records not yet known durable)",
            tail.wrapping_sub(position)
        ),
        None => "none (no synchronous flush has completed)".into(),
    };
    let liveness = file.liveness();
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
        format!(
            "clock       {}",
            if file.tsc_clock() {
                "TSC, calibrated against CLOCK_MONOTONIC"
            } else {
                "CLOCK_MONOTONIC (vDSO)"
            }
        ),
        format!("head/tail   {head} / {tail}"),
        format!(
            "fill        {fill} ({:.1}%)",
            100.0 * f64::from(fill) / f64::from(geometry.capacity)
        ),
        format!("created     {}", display_time(file.created_unix_ns())),
        format!(
            "writer      pid {} ({}), {heartbeat}{}",
            file.writer_pid(),
            liveness.state.as_str(),
            liveness
                .disagreement
                .as_ref()
                .map_or(String::new(), |note| format!(
                    "\nwarning     the liveness witnesses disagree: {note}"
                ))
        ),
        format!("breaker     {breaker}"),
        match file.stuck_position() {
            Some(stuck) => format!(
                "stuck       position {} unfinished for {:.1} s (a producer between reserve and commit; a drain unblocks it after --unblock-after)",
                stuck.position,
                stuck.stuck_for(now_unix_ns()).as_secs_f64()
            ),
            None => "stuck       none".into(),
        },
        format!(
            "sampling    decision {}, keep if slower than {}, degrade x{} down to {}",
            if policy.trace_id_decision {
                "by trace id"
            } else {
                "random"
            },
            policy
                .keep_if_slow_ns
                .map_or("(off)".to_string(), |ns| format!("{} us", ns / 1000)),
            policy.degrade_factor,
            policy.degrade_floor
        ),
        format!("flush       {flush}"),
        format!("durable     {durable}"),
        String::new(),
        format!(
            "{:<12}{:>8}{:>8}{:>10}{:>12}{:>12}{:>12}{:>10}{:>10}{:>10}{:>10}",
            "kind",
            "rate",
            "base",
            "calls/s",
            "calls",
            "written",
            "sampled_out",
            "drop_full",
            "drop_brk",
            "rejected",
            "saturated"
        ),
    ];
    let row = |label: String, rate: String, base: String, per_second: String, v: &[u64; 6]| {
        format!(
            "{label:<12}{rate:>8}{base:>8}{per_second:>10}{:>12}{:>12}{:>12}{:>10}{:>10}{:>10}{:>10}",
            KindCounter::calls_of(v),
            v[KindCounter::Written.index()],
            v[KindCounter::SampledOut.index()],
            v[KindCounter::DroppedFull.index()],
            v[KindCounter::DroppedBreaker.index()],
            v[KindCounter::Rejected.index()],
            v[KindCounter::Saturated.index()],
        )
    };
    let mut shown = Vec::new();
    for kind in file.configured_kinds() {
        let rates = file.kind_rates(kind);
        lines.push(row(
            file.kind_label(kind),
            percent(rates.current),
            percent(rates.base),
            rates.calls_per_second.to_string(),
            &file.counters().of_kind(kind),
        ));
        shown.push(kind);
    }
    for (kind, values) in &counters.per_kind {
        if !shown.contains(kind) {
            let label = format!("{kind} (undeclared)");
            lines.push(row(label, "-".into(), "-".into(), "-".into(), values));
        }
    }
    lines.push(row(
        "total".into(),
        String::new(),
        String::new(),
        String::new(),
        &counters.total,
    ));
    lines.push(String::new());
    lines.push(
        GlobalCounter::ALL
            .iter()
            .map(|c| format!("{} {}", c.name(), file.global(*c)))
            .collect::<Vec<_>>()
            .join(", "),
    );
    lines.extend(crate::population::stat_lines(file));
    lines.join("\n")
}

fn percent(rate: f64) -> String {
    let percent = rate * 100.0;
    if percent >= 1.0 {
        format!("{percent:.0}%")
    } else {
        format!("{percent:.2}%")
    }
}

/// Prometheus text exposition: what `serve` gives for this one file.
fn prom(file: &RingFile, args: &StatArgs) -> String {
    let label = file.path().display().to_string();
    let mut exposition = crate::prom::Exposition::default();
    exposition.add_up(&label, None);
    exposition.add_ring(file, &label, &args.buckets);
    exposition.render().trim_end().to_string()
}
