//! `ringcat plot`: one SVG with latency over time (sampled points, every record above its
//! kind's P99, and each window's P99 as a line, per kind) and the percentile spectrum per kind
//! on a logarithmic 1/(1-p) axis.

use crate::Failure;
use crate::cli::{PlotArgs, PlotFormat};
use crate::pct::spectrum;
use crate::plot_passes::{Gathered, gather};
use crate::progress::Progress;
use crate::select::{Filter, Sources};
use crate::time::{civil, offset_seconds, zone_caption};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

const WIDTH: f64 = 1000.0;
const PANEL: f64 = 400.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 160.0;
const TOP: f64 = 40.0;
const GAP: f64 = 110.0;
/// One colour per kind id (id modulo 8), so a kind keeps its colour across plots.
const COLORS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];
/// Fonts for labels: DejaVu is on most Linux systems, the others elsewhere.
const FONTS: &str = "DejaVu Sans, Helvetica, Arial, sans-serif";

pub(crate) fn run(args: &PlotArgs) -> Result<(), Failure> {
    let sources = Sources::open(&args.files)?;
    let filter = Filter::parse(&args.filter)?;
    let mut progress = Progress::new("reading", sources.len_hint());
    let svg = render_svg(&sources, &filter, args.window, args.raw, &mut progress)?;
    let to_stdout = args.output.as_os_str() == "-";
    let format = args.format.unwrap_or_else(|| {
        let png = args
            .output
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("png"));
        if png && !to_stdout {
            PlotFormat::Png
        } else {
            PlotFormat::Svg
        }
    });
    let bytes = match format {
        PlotFormat::Svg => svg.into_bytes(),
        PlotFormat::Png => svg_to_png(&svg)?,
    };
    if to_stdout {
        let mut out = std::io::stdout().lock();
        out.write_all(&bytes)?;
        out.flush()?;
    } else {
        write_file(&args.output, &bytes)?;
        eprintln!("ringcat: wrote {}", args.output.display());
    }
    Ok(())
}

/// Writes the plot as an SVG file (the demo's).
pub(crate) fn write_svg(
    sources: &Sources,
    filter: &Filter,
    window: Option<std::time::Duration>,
    raw: bool,
    output: &Path,
    progress: &mut Progress,
) -> Result<(), Failure> {
    let svg = render_svg(sources, filter, window, raw, progress)?;
    write_file(output, svg.as_bytes())
}

/// Writes the image; a failure is an output error (exit 4) naming the file.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    std::fs::write(path, bytes).map_err(|e| {
        Failure::Output(std::io::Error::new(
            e.kind(),
            format!("{}: {e}", path.display()),
        ))
    })
}

/// Without the `png` feature: a usage error that says how to get it.
#[cfg(not(feature = "png"))]
pub(crate) fn svg_to_png(_svg: &str) -> Result<Vec<u8>, Failure> {
    Err(Failure::Usage(
        "this ringcat was built without PNG support (cargo feature `png`): write an .svg".into(),
    ))
}

/// Renders the SVG to a PNG with resvg (system fonts for the labels).
#[cfg(feature = "png")]
pub(crate) fn svg_to_png(svg: &str) -> Result<Vec<u8>, Failure> {
    use resvg::{tiny_skia, usvg};
    let mut options = usvg::Options::default();
    options.fontdb_mut().load_system_fonts();
    let tree = usvg::Tree::from_str(svg, &options)
        .map_err(|e| Failure::Output(std::io::Error::other(format!("rendering the plot: {e}"))))?;
    let size = tree.size().to_int_size();
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or_else(|| Failure::Output(std::io::Error::other("rendering the plot: empty image")))?;
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    pixmap
        .encode_png()
        .map_err(|e| Failure::Output(std::io::Error::other(format!("encoding the PNG: {e}"))))
}

struct Scale {
    t0: u64,
    t1: u64,
    /// Decades of the latency axis (log10 of ns), lo < hi always.
    lo: f64,
    hi: f64,
}

impl Scale {
    fn x(&self, t: u64) -> f64 {
        let span = (self.t1 - self.t0).max(1) as f64;
        LEFT + (t.saturating_sub(self.t0)) as f64 / span * (WIDTH - LEFT - RIGHT)
    }

    /// Non-positive latencies sit on the bottom edge (a log axis has no place for them).
    fn y(&self, ns: i64, top: f64) -> f64 {
        let v = (ns.max(1) as f64).log10().clamp(self.lo, self.hi);
        top + PANEL - (v - self.lo) / (self.hi - self.lo) * PANEL
    }
}

/// The latency decades shown: from the smallest positive latency to the largest, at least
/// one decade, whatever the records (none positive, one record, all equal).
fn decades(min_positive: Option<i64>, max: i64) -> (f64, f64) {
    let lo = (min_positive.unwrap_or(1).max(1) as f64).log10().floor();
    let hi = (max.max(1) as f64).log10().ceil();
    (lo, hi.max(lo + 1.0))
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
    format!("{}{unit}", 10u64.pow((exponent - base).clamp(0, 18) as u32))
}

const NS: u64 = 1;
const SECOND: u64 = 1_000_000_000;
const MINUTE: u64 = 60 * SECOND;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;

/// Round tick steps: 1-2-5 below a second, then what clocks and calendars use.
fn tick_steps() -> Vec<u64> {
    let mut steps = Vec::new();
    let mut decade = NS;
    while decade < SECOND {
        steps.extend([decade, 2 * decade, 5 * decade]);
        decade *= 10;
    }
    steps.extend([
        SECOND,
        2 * SECOND,
        5 * SECOND,
        10 * SECOND,
        15 * SECOND,
        30 * SECOND,
        MINUTE,
        2 * MINUTE,
        5 * MINUTE,
        10 * MINUTE,
        15 * MINUTE,
        30 * MINUTE,
        HOUR,
        2 * HOUR,
        3 * HOUR,
        6 * HOUR,
        12 * HOUR,
        DAY,
        2 * DAY,
        7 * DAY,
        14 * DAY,
        28 * DAY,
    ]);
    steps
}

/// Time-axis ticks: round instants of the display zone (at most 8), each labelled as
/// precisely as the step needs, so that no two labels are equal.
pub(crate) fn time_ticks(t0: u64, t1: u64) -> Vec<(u64, String)> {
    let span = t1.saturating_sub(t0).max(1);
    let steps = tick_steps();
    let step = steps
        .iter()
        .copied()
        .find(|step| span / step <= 7)
        .unwrap_or_else(|| span.div_ceil(7).max(1));
    let offset = offset_seconds(t0);
    // Round in the zone's wall-clock time (a tick at 15:00 local, not UTC).
    let local = |t: u64| t as i128 + i128::from(offset) * SECOND as i128;
    let step_i = step as i128;
    let first = (local(t0) + step_i - 1).div_euclid(step_i) * step_i;
    let several_days = civil(t0).date() != civil(t1).date();
    let mut ticks = Vec::new();
    let mut tick = first;
    while tick <= local(t1) && ticks.len() < 16 {
        let t = tick - i128::from(offset) * SECOND as i128;
        if let Ok(t) = u64::try_from(t) {
            ticks.push((t, tick_label(t, step, several_days)));
        }
        tick += step_i;
    }
    ticks
}

fn tick_label(t: u64, step: u64, several_days: bool) -> String {
    let when = civil(t);
    let nanos = when.subsec_nanosecond();
    if step >= DAY {
        return when.strftime("%Y-%m-%d").to_string();
    }
    if step >= HOUR && several_days {
        return when.strftime("%m-%d %H:%M").to_string();
    }
    if step >= MINUTE {
        return when.strftime("%H:%M").to_string();
    }
    let clock = when.strftime("%H:%M:%S").to_string();
    if step >= SECOND {
        clock
    } else if step >= 1_000_000 {
        format!("{clock}.{:03}", nanos / 1_000_000)
    } else if step >= 1_000 {
        format!("{clock}.{:06}", nanos / 1_000)
    } else {
        format!("{clock}.{nanos:09}")
    }
}

/// The caption of the time axis: the zone and the date(s).
fn time_caption(t0: u64, t1: u64) -> String {
    let (d0, d1) = (civil(t0).date(), civil(t1).date());
    let dates = if d0 == d1 {
        d0.to_string()
    } else {
        format!("{d0} to {d1}")
    };
    format!("time ({}), {dates}", zone_caption(t0))
}

/// The plot as SVG text.
pub(crate) fn render_svg(
    sources: &Sources,
    filter: &Filter,
    window: Option<std::time::Duration>,
    raw: bool,
    progress: &mut Progress,
) -> Result<String, Failure> {
    let quantiles = spectrum();
    let Gathered {
        t0,
        t1,
        min_positive,
        max,
        window_ns,
        windows,
        spectra,
        points,
    } = gather(sources, filter, window, &quantiles, raw, progress)?;
    let kinds: Vec<u16> = spectra.iter().map(|(kind, _)| *kind).collect();
    let color = |kind: u16| COLORS[usize::from(sources.kind_id_of(kind)) % COLORS.len()];
    let (lo, hi) = decades(min_positive, max);
    let scale = Scale {
        t0,
        t1: t1.max(t0 + 1),
        lo,
        hi,
    };
    let height = TOP + 2.0 * PANEL + GAP + 60.0;
    let plot_width = WIDTH - LEFT - RIGHT;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="{FONTS}" font-size="12">"##
    );
    let _ = writeln!(svg, r##"<rect width="100%" height="100%" fill="white"/>"##);
    let top1 = TOP;
    let top2 = TOP + PANEL + GAP;
    // Everything drawn inside a panel is clipped to its frame.
    let _ = writeln!(
        svg,
        r##"<defs><clipPath id="panel1"><rect x="{LEFT}" y="{top1}" width="{plot_width}" height="{PANEL}"/></clipPath><clipPath id="panel2"><rect x="{LEFT}" y="{top2}" width="{plot_width}" height="{PANEL}"/></clipPath></defs>"##
    );
    let _ = writeln!(
        svg,
        r##"<text x="{LEFT}" y="24" font-size="15" font-weight="bold">Latency over time (points; line = P99 per {} window){}</text>"##,
        crate::output::human_latency(i64::try_from(window_ns).unwrap_or(i64::MAX)),
        if raw { ", raw" } else { "" }
    );
    // Panel 1 axes.
    axes_log_y(&mut svg, &scale, top1);
    for (t, label) in time_ticks(t0, t1) {
        let x = scale.x(t);
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" y1="{top1}" x2="{x:.1}" y2="{:.1}" stroke="#eee"/><text class="xtick" x="{x:.1}" y="{:.1}" text-anchor="middle" fill="#444">{label}</text>"##,
            top1 + PANEL,
            top1 + PANEL + 16.0,
        );
    }
    let _ = writeln!(
        svg,
        r##"<text class="xtitle" x="{:.1}" y="{:.1}" text-anchor="middle" fill="#222">{}</text>"##,
        LEFT + plot_width / 2.0,
        top1 + PANEL + 36.0,
        xml_escape(&time_caption(t0, t1))
    );
    let _ = writeln!(svg, r##"<g clip-path="url(#panel1)">"##);
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
            .filter(|((_, k), _)| k == kind)
            .map(|((w, _), p99)| {
                format!(
                    "{:.1},{:.1}",
                    scale.x(w.saturating_add(window_ns / 2)),
                    scale.y(*p99, top1)
                )
            })
            .collect();
        let _ = writeln!(
            svg,
            r##"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>"##,
            line.join(" "),
            color(*kind)
        );
    }
    let _ = writeln!(svg, "</g>");
    // Panel 2: spectrum.
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
        LEFT + v / max_x * plot_width
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
    let _ = writeln!(
        svg,
        r##"<text class="xtitle" x="{:.1}" y="{:.1}" text-anchor="middle" fill="#222">percentile (log scale of 1/(1-p))</text>"##,
        LEFT + plot_width / 2.0,
        top2 + PANEL + 36.0,
    );
    let _ = writeln!(svg, r##"<g clip-path="url(#panel2)">"##);
    for (kind, values) in &spectra {
        let kind = *kind;
        let line: Vec<String> = quantiles
            .iter()
            .zip(values)
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
    let _ = writeln!(svg, "</g>");
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
    Ok(svg)
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
    let middle = top + PANEL / 2.0;
    let _ = writeln!(
        svg,
        r##"<text class="ytitle" x="20" y="{middle:.1}" text-anchor="middle" fill="#222" transform="rotate(-90 20 {middle:.1})">latency (log scale)</text>"##
    );
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decades_never_invert() {
        assert_eq!(decades(None, -5), (0.0, 1.0));
        assert_eq!(decades(None, 0), (0.0, 1.0));
        assert_eq!(decades(Some(1000), 1000), (3.0, 4.0));
        assert_eq!(decades(Some(20_000), 8_000_000), (4.0, 7.0));
    }

    #[test]
    fn ticks_are_round_distinct_and_in_range() {
        crate::time::set_utc(true);
        let t0 = 1_795_276_800_123_000_000; // 2026-11-21T16:00:00.123Z
        for span in [
            1,
            999,
            1_000_000,
            2 * SECOND,
            6 * SECOND,
            90 * MINUTE,
            3 * DAY,
            400 * DAY,
        ] {
            let ticks = time_ticks(t0, t0 + span);
            let mut labels: Vec<&String> = ticks.iter().map(|(_, l)| l).collect();
            labels.sort();
            labels.dedup();
            assert_eq!(labels.len(), ticks.len(), "span {span}: {ticks:?}");
            assert!(ticks.iter().all(|(t, _)| (t0..=t0 + span).contains(t)));
            assert!(ticks.len() <= 8, "span {span}: {ticks:?}");
        }
        let ticks = time_ticks(t0, t0 + 6 * SECOND);
        assert_eq!(ticks[0].1, "16:00:01");
        assert_eq!(ticks.len(), 6);
    }
}
