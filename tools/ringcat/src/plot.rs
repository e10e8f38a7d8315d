//! `ringcat plot`: one SVG with latency over time (sampled points, every record above its
//! kind's P99, and each window's P99 as a line, per kind) and the percentile spectrum per kind
//! on a logarithmic 1/(1-p) axis.

use crate::Failure;
use crate::cli::{By, PlotArgs};
use crate::pct::{Grouping, compute, spectrum};
use crate::progress::Progress;
use crate::select::{Filter, Sources};
use crate::time::rfc3339_nanos;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

const WIDTH: f64 = 1000.0;
const PANEL: f64 = 400.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 160.0;
const TOP: f64 = 40.0;
const GAP: f64 = 90.0;
const MAX_POINTS: u64 = 2500;
const COLORS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

pub(crate) fn run(args: &PlotArgs) -> Result<(), Failure> {
    let sources = Sources::open(&args.files)?;
    let filter = Filter::parse(&args.filter)?;
    let mut progress = Progress::new("reading", sources.len_hint());
    write_svg(
        &sources,
        &filter,
        args.window,
        args.raw,
        &args.output,
        &mut progress,
    )?;
    eprintln!("ringcat: wrote {}", args.output.display());
    Ok(())
}

struct Scale {
    t0: u64,
    t1: u64,
    lo: f64,
    hi: f64,
}

impl Scale {
    fn x(&self, t: u64) -> f64 {
        let span = (self.t1 - self.t0).max(1) as f64;
        LEFT + (t.saturating_sub(self.t0)) as f64 / span * (WIDTH - LEFT - RIGHT)
    }

    fn y(&self, ns: i64, top: f64) -> f64 {
        let v = (ns.max(1) as f64).log10().clamp(self.lo, self.hi);
        top + PANEL - (v - self.lo) / (self.hi - self.lo).max(1e-9) * PANEL
    }
}

/// A decade's label: 1ns, 10ns, 100ns, 1us, ... 100s.
fn label_ns(ns: f64) -> String {
    let exponent = ns.log10().round() as i32;
    let (unit, base) = match exponent {
        i32::MIN..=2 => ("ns", 0),
        3..=5 => ("us", 3),
        6..=8 => ("ms", 6),
        _ => ("s", 9),
    };
    format!("{}{unit}", 10u64.pow((exponent - base).max(0) as u32))
}

pub(crate) fn write_svg(
    sources: &Sources,
    filter: &Filter,
    window: Option<std::time::Duration>,
    raw: bool,
    output: &Path,
    progress: &mut Progress,
) -> Result<(), Failure> {
    // Pass: the span, the count, the extremes.
    let (mut t0, mut t1, mut count, mut lo, mut hi) = (u64::MAX, 0u64, 0u64, i64::MAX, 1i64);
    sources.selected(filter, progress, |_, s| {
        t0 = t0.min(s.nanotime);
        t1 = t1.max(s.nanotime);
        count += 1;
        if s.delta_ns > 0 {
            lo = lo.min(s.delta_ns);
        }
        hi = hi.max(s.delta_ns);
    })?;
    if count == 0 {
        return Err(Failure::File("no records match: nothing to plot".into()));
    }
    let window_ns = window.map_or(((t1 - t0) / 60).max(1_000_000), |w| {
        w.as_nanos().max(1) as u64
    });
    let p99 = ringlat_read::percentile::Quantile::parse("99").map_err(Failure::Usage)?;
    let by_kind = Grouping {
        by: By {
            kind: true,
            status: false,
        },
        window_ns: None,
        raw,
    };
    let windows = compute(
        sources,
        filter,
        Grouping {
            window_ns: Some(window_ns),
            ..by_kind
        },
        std::slice::from_ref(&p99),
        progress,
    )?;
    // The spectrum's percentiles and, last, each kind's P99 (which decides the tail points
    // drawn), in one computation.
    let quantiles = spectrum();
    let mut with_p99 = quantiles.clone();
    with_p99.push(p99.clone());
    let spectra = compute(sources, filter, by_kind, &with_p99, progress)?;
    let kind_p99: BTreeMap<u16, i64> = spectra
        .iter()
        .filter_map(|row| Some((row.key.kind?, *row.values.last()?)))
        .collect();
    let stride = count.div_ceil(MAX_POINTS).max(1);
    let mut points: Vec<(u64, i64, u16)> = Vec::new();
    let mut index = 0u64;
    sources.selected(filter, progress, |source, s| {
        let kind = sources.label_index(source, s.kind);
        let tail = kind_p99.get(&kind).is_some_and(|p| s.delta_ns > *p);
        if index % stride == 0 || (tail && points.len() < 2 * MAX_POINTS as usize) {
            points.push((s.nanotime, s.delta_ns, kind));
        }
        index += 1;
    })?;
    progress.finish();
    let kinds: Vec<u16> = spectra.iter().filter_map(|r| r.key.kind).collect();
    let color = |kind: u16| {
        let i = kinds.iter().position(|k| *k == kind).unwrap_or(0);
        COLORS[i % COLORS.len()]
    };
    let scale = Scale {
        t0,
        t1: t1.max(t0 + 1),
        lo: (lo.max(1) as f64).log10().floor(),
        hi: (hi.max(10) as f64).log10().ceil(),
    };
    let height = TOP + 2.0 * PANEL + GAP + 60.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"##
    );
    let _ = writeln!(svg, r##"<rect width="100%" height="100%" fill="white"/>"##);
    let _ = writeln!(
        svg,
        r##"<text x="{LEFT}" y="24" font-size="15" font-weight="bold">Latency over time (points; line = P99 per {} window){}</text>"##,
        crate::output::human_latency(window_ns as i64),
        if raw { ", raw" } else { "" }
    );
    // Panel 1 axes.
    let top1 = TOP;
    axes_log_y(&mut svg, &scale, top1);
    for i in 0..=4 {
        let t = t0 + (scale.t1 - t0) / 4 * i;
        let x = scale.x(t);
        let stamp = rfc3339_nanos(t);
        let _ = writeln!(
            svg,
            r##"<text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="#444">{}</text>"##,
            top1 + PANEL + 16.0,
            stamp.get(11..19).unwrap_or(&stamp)
        );
    }
    for kind in &kinds {
        let _ = writeln!(svg, r##"<g fill="{}" fill-opacity="0.45">"##, color(*kind));
        for (t, ns, _) in points.iter().filter(|p| p.2 == *kind) {
            let _ = writeln!(
                svg,
                r##"<circle cx="{:.0}" cy="{:.0}" r="1.6"/>"##,
                scale.x(*t),
                scale.y(*ns, top1)
            );
        }
        let _ = writeln!(svg, "</g>");
    }
    for kind in &kinds {
        let line: Vec<String> = windows
            .iter()
            .filter(|r| r.key.kind == Some(*kind))
            .filter_map(|r| {
                r.key.window.map(|w| {
                    format!(
                        "{:.1},{:.1}",
                        scale.x(w + window_ns / 2),
                        scale.y(r.values[0], top1)
                    )
                })
            })
            .collect();
        let _ = writeln!(
            svg,
            r##"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>"##,
            line.join(" "),
            color(*kind)
        );
    }
    // Panel 2: spectrum.
    let top2 = TOP + PANEL + GAP;
    let _ = writeln!(
        svg,
        r##"<text x="{LEFT}" y="{:.1}" font-size="15" font-weight="bold">Percentile spectrum{}</text>"##,
        top2 - 16.0,
        if raw {
            " (raw sample)"
        } else {
            " (weighted by 1/p)"
        }
    );
    axes_log_y(&mut svg, &scale, top2);
    let max_x = 6.0;
    let sx = |q: f64| {
        let v = (1.0 / (1.0 - q).max(1e-6)).log10().min(max_x);
        LEFT + v / max_x * (WIDTH - LEFT - RIGHT)
    };
    for (label, q) in [
        ("0%", 0.0),
        ("90%", 0.9),
        ("99%", 0.99),
        ("99.9%", 0.999),
        ("99.99%", 0.9999),
        ("99.999%", 0.99999),
        ("99.9999%", 0.999999),
    ] {
        let x = sx(q);
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" y1="{top2}" x2="{x:.1}" y2="{:.1}" stroke="#eee"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="#444">{label}</text>"##,
            top2 + PANEL,
            top2 + PANEL + 16.0
        );
    }
    for row in &spectra {
        let Some(kind) = row.key.kind else { continue };
        let line: Vec<String> = quantiles
            .iter()
            .zip(&row.values)
            .filter(|(q, _)| q.fraction() < 1.0)
            .map(|(q, v)| format!("{:.1},{:.1}", sx(q.fraction()), scale.y(*v, top2)))
            .collect();
        let _ = writeln!(
            svg,
            r##"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>"##,
            line.join(" "),
            color(kind)
        );
    }
    // Legend.
    for (i, kind) in kinds.iter().enumerate() {
        let y = TOP + 20.0 + 20.0 * i as f64;
        let _ = writeln!(
            svg,
            r##"<rect x="{:.1}" y="{:.1}" width="12" height="12" fill="{}"/><text x="{:.1}" y="{:.1}">{}</text>"##,
            WIDTH - RIGHT + 20.0,
            y - 10.0,
            color(*kind),
            WIDTH - RIGHT + 38.0,
            y,
            xml_escape(sources.label(*kind))
        );
    }
    let _ = writeln!(svg, "</svg>");
    std::fs::write(output, svg)
        .map_err(|e| Failure::File(format!("{}: writing the plot: {e}", output.display())))
}

fn axes_log_y(svg: &mut String, scale: &Scale, top: f64) {
    let _ = writeln!(
        svg,
        r##"<rect x="{LEFT}" y="{top}" width="{:.1}" height="{PANEL}" fill="none" stroke="#888"/>"##,
        WIDTH - LEFT - RIGHT
    );
    let mut decade = scale.lo;
    while decade <= scale.hi {
        let ns = 10f64.powf(decade);
        let y = scale.y(ns as i64, top);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#eee"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#444">{}</text>"##,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            label_ns(ns)
        );
        decade += 1.0;
    }
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
