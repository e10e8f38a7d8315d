//! Prometheus text exposition (format 0.0.4) of ring files, shared by `stat --format prom` and
//! `serve` (HTTP `/metrics` and the node_exporter textfile).
//!
//! Several files go into one exposition: every metric family is written once (one `# HELP`
//! and `# TYPE`), with one series per file told apart by the `file` label, as the format
//! requires.

use crate::duration::parse_duration;
use crate::time::now_unix_ns;
use ringlat_format::{GlobalCounter, KindCounter};
use ringlat_read::RingFile;

/// The `Content-Type` of the exposition.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The default `le` boundaries of `ringlat_latency_seconds`, in nanoseconds: 1, 2.5 and 5 per
/// decade from 1 us to 10 s (`+Inf` is always added).
pub(crate) const DEFAULT_BUCKETS_NS: [u64; 22] = [
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// The `le` boundaries of the latency histogram, in nanoseconds, ascending, `+Inf` implied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Buckets(Vec<u64>);

impl Default for Buckets {
    fn default() -> Self {
        Buckets(DEFAULT_BUCKETS_NS.to_vec())
    }
}

impl Buckets {
    /// Parses `--buckets`: boundaries separated by commas, each a latency with a unit (`5ms`)
    /// or a bare number of seconds (`0.005`, as Prometheus prints `le`); strictly ascending,
    /// above zero, at most one nanosecond precision.
    pub(crate) fn parse(text: &str) -> Result<Buckets, String> {
        let mut bounds = Vec::new();
        for part in text.split(',').map(str::trim) {
            if part.eq_ignore_ascii_case("+inf") || part.eq_ignore_ascii_case("inf") {
                continue; // always there
            }
            let duration = parse_duration(part).map_err(|e| format!("--buckets: {e}"))?;
            let ns = u64::try_from(duration.as_nanos())
                .map_err(|_| format!("--buckets: '{part}' is too large"))?;
            if ns == 0 {
                return Err(format!("--buckets: '{part}' must be above zero"));
            }
            if bounds.last().is_some_and(|last| *last >= ns) {
                return Err(format!(
                    "--buckets: '{part}' is not above the boundary before it (they must ascend)"
                ));
            }
            bounds.push(ns);
        }
        if bounds.is_empty() {
            return Err("--buckets: no boundary given".into());
        }
        Ok(Buckets(bounds))
    }

    /// The boundaries in nanoseconds.
    pub(crate) fn bounds_ns(&self) -> &[u64] {
        &self.0
    }
}

impl std::fmt::Display for Buckets {
    /// The boundaries in seconds, comma-separated, as `--buckets` reads them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let texts: Vec<String> = self.0.iter().map(|ns| seconds_text(*ns)).collect();
        f.write_str(&texts.join(","))
    }
}

/// One bucket of a population histogram: calls whose latency is at most `upper_ns`
/// (inclusive) and above the previous bucket's upper bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PopulationBucket {
    /// The lowest latency the bucket holds, in nanoseconds.
    pub lower_ns: u64,
    /// The highest latency the bucket holds, in nanoseconds (inclusive).
    pub upper_ns: u64,
    /// Calls counted in it.
    pub count: u64,
}

/// Cumulative counts per `le` boundary (then `+Inf`) from the population buckets, plus the
/// calls counted apart: `below_zero` (negative deltas: at most every boundary) and `overflow`
/// (beyond the histogram's range: only in `+Inf`).
///
/// A population bucket that straddles a boundary (`lower <= le < upper`) is counted in the
/// first boundary at or above its upper bound: a `le` count never includes a call that could
/// be above `le`. The count at `le` is then between the true count of calls `<= le` minus the
/// one straddling bucket and the true count, and `histogram_quantile` can only read a quantile
/// high, by at most the width of one population bucket (1%), never low.
pub(crate) fn cumulative(
    bounds_ns: &[u64],
    population: &[PopulationBucket],
    below_zero: u64,
    overflow: u64,
) -> Vec<u64> {
    let mut per_bound = vec![0u64; bounds_ns.len() + 1];
    for bucket in population {
        let slot = bounds_ns.partition_point(|le| *le < bucket.upper_ns);
        per_bound[slot] = per_bound[slot].saturating_add(bucket.count);
    }
    per_bound[0] = per_bound[0].saturating_add(below_zero);
    let last = per_bound.len() - 1;
    per_bound[last] = per_bound[last].saturating_add(overflow);
    let mut running = 0u64;
    per_bound
        .into_iter()
        .map(|count| {
            running = running.saturating_add(count);
            running
        })
        .collect()
}

/// Nanoseconds as decimal seconds, exactly: `2500` is `0.0000025`, `10^10` is `10`.
pub(crate) fn seconds_text(ns: u64) -> String {
    let whole = ns / 1_000_000_000;
    let fraction = ns % 1_000_000_000;
    if fraction == 0 {
        return whole.to_string();
    }
    let digits = format!("{fraction:09}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// A label value escaped as the exposition format requires (backslash, quote, newline).
pub(crate) fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

struct Series {
    /// The sample's name (the family's, or with `_bucket`, `_sum`, `_count`).
    name: String,
    /// Escaped `file` label value.
    file: String,
    /// Further labels, already rendered (`kind="x",le="0.5"`), or empty.
    labels: String,
    value: String,
}

struct Family {
    name: String,
    kind: &'static str,
    help: String,
    series: Vec<Series>,
}

/// An exposition being built: families in the order first added, each written once.
#[derive(Default)]
pub(crate) struct Exposition {
    families: Vec<Family>,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &'static str, help: &str) -> &mut Family {
        let index = match self.families.iter().position(|f| f.name == name) {
            Some(index) => index,
            None => {
                self.families.push(Family {
                    name: name.to_string(),
                    kind,
                    help: help.to_string(),
                    series: Vec::new(),
                });
                self.families.len() - 1
            }
        };
        &mut self.families[index]
    }

    /// Adds samples named like their family, one per `(labels, value)`.
    fn add(
        &mut self,
        name: &str,
        kind: &'static str,
        help: &str,
        file: &str,
        samples: Vec<(String, String)>,
    ) {
        let family = self.family(name, kind, help);
        for (labels, value) in samples {
            family.series.push(Series {
                name: name.to_string(),
                file: file.to_string(),
                labels,
                value,
            });
        }
    }

    /// `ringlat_up{file}`: 1 when the file was read, else 0, and the reason in
    /// `ringlat_read_error_info{file,error}`.
    pub(crate) fn add_up(&mut self, file_label: &str, error: Option<&str>) {
        let file = escape_label(file_label);
        self.add(
            "ringlat_up",
            "gauge",
            "1 when the ring file was read at this scrape, 0 when it could not be (see ringlat_read_error_info).",
            &file,
            vec![(String::new(), u8::from(error.is_none()).to_string())],
        );
        if let Some(error) = error {
            self.add(
                "ringlat_read_error_info",
                "gauge",
                "Why the ring file could not be read at this scrape (the error label).",
                &file,
                vec![(format!("error=\"{}\"", escape_label(error)), "1".into())],
            );
        }
    }

    /// The metrics of one ring file, labelled `file="<file_label>"`.
    pub(crate) fn add_ring(&mut self, file: &RingFile, file_label: &str, buckets: &Buckets) {
        let path = escape_label(file_label);
        let path = path.as_str();
        let (head, tail) = file.positions();
        let kinds: Vec<(u8, String, [u64; 6])> = file
            .configured_kinds()
            .into_iter()
            .map(|kind| {
                (
                    kind,
                    escape_label(&file.kind_label(kind)),
                    file.counters().of_kind(kind),
                )
            })
            .collect();
        self.add(
            "ringlat_calls_total",
            "counter",
            "record() calls per kind.",
            path,
            kinds
                .iter()
                .map(|(_, k, v)| {
                    (
                        format!("kind=\"{k}\""),
                        KindCounter::calls_of(v).to_string(),
                    )
                })
                .collect(),
        );
        self.add(
            "ringlat_outcomes_total",
            "counter",
            "record() calls per kind and outcome (saturated is a subset of written).",
            path,
            kinds
                .iter()
                .flat_map(|(_, k, v)| {
                    KindCounter::ALL.iter().map(move |c| {
                        (
                            format!("kind=\"{k}\",outcome=\"{}\"", c.name()),
                            v[c.index()].to_string(),
                        )
                    })
                })
                .collect(),
        );
        self.add(
            "ringlat_sampling_rate",
            "gauge",
            "Sampling rate in force per kind.",
            path,
            kinds
                .iter()
                .map(|(kind, k, _)| {
                    (
                        format!("kind=\"{k}\""),
                        file.kind_rates(*kind).current.to_string(),
                    )
                })
                .collect(),
        );
        self.add(
            "ringlat_calls_per_second",
            "gauge",
            "Calls per second over the writer's last rate window.",
            path,
            kinds
                .iter()
                .map(|(kind, k, _)| {
                    (
                        format!("kind=\"{k}\""),
                        file.kind_rates(*kind).calls_per_second.to_string(),
                    )
                })
                .collect(),
        );
        self.add_latency_histogram(file, path, &kinds, buckets);
        for counter in GlobalCounter::ALL {
            self.add(
                &format!("ringlat_{}_total", counter.name()),
                "counter",
                "Global counter of the ring file.",
                path,
                vec![(String::new(), file.global(counter).to_string())],
            );
        }
        let gauge = |value: u64| vec![(String::new(), value.to_string())];
        self.add(
            "ringlat_capacity_slots",
            "gauge",
            "Ring capacity.",
            path,
            gauge(file.geometry().capacity.into()),
        );
        self.add(
            "ringlat_fill_slots",
            "gauge",
            "Records in the ring (tail - head).",
            path,
            gauge(tail.wrapping_sub(head).into()),
        );
        self.add(
            "ringlat_breaker_open",
            "gauge",
            "1 while the circuit breaker drops records.",
            path,
            gauge(file.breaker().is_some_and(|b| b.open).into()),
        );
        self.add(
            "ringlat_writer_alive",
            "gauge",
            "1 while the writer process holds the file.",
            path,
            gauge((file.writer_state() == ringlat_read::WriterState::Alive).into()),
        );
        if let Some(beat) = file.heartbeat_unix_ns() {
            let age = now_unix_ns().saturating_sub(beat) as f64 / 1e9;
            self.add(
                "ringlat_heartbeat_age_seconds",
                "gauge",
                "Seconds since the writer's last heartbeat.",
                path,
                vec![(String::new(), format!("{age:.3}"))],
            );
        }
        let stuck = file.stuck_position();
        self.add(
            "ringlat_stuck_seconds",
            "gauge",
            "Seconds the oldest unfinished position has been stuck between reserve and commit (0: none).",
            path,
            vec![(
                String::new(),
                format!(
                    "{:.3}",
                    stuck.map_or(0.0, |s| s.stuck_for(now_unix_ns()).as_secs_f64())
                ),
            )],
        );
        if let Some(stuck) = stuck {
            self.add(
                "ringlat_stuck_position",
                "gauge",
                "The position stuck between reserve and commit.",
                path,
                gauge(stuck.position.into()),
            );
        }
        if let Some(durable) = file.durable_position() {
            self.add(
                "ringlat_durable_position",
                "gauge",
                "Position before which records are on stable storage.",
                path,
                gauge(durable.into()),
            );
        }
    }

    /// `ringlat_latency_seconds` per kind from the population histograms (every call that was
    /// not rejected, whatever sampling and the breaker kept).
    fn add_latency_histogram(
        &mut self,
        file: &RingFile,
        path: &str,
        kinds: &[(u8, String, [u64; 6])],
        buckets: &Buckets,
    ) {
        let bounds = buckets.bounds_ns();
        let mut series = Vec::new();
        for population in file.population() {
            let Some(histogram) = population.histogram else {
                continue; // the writer turned histograms off: no series rather than zeros
            };
            let Some((_, kind, _)) = kinds.iter().find(|(k, _, _)| *k == population.kind) else {
                continue;
            };
            let cells: Vec<PopulationBucket> = histogram
                .buckets()
                .map(|(low_ns, high_ns, count)| PopulationBucket {
                    lower_ns: low_ns,
                    upper_ns: high_ns.saturating_sub(1),
                    count,
                })
                .collect();
            let counts = cumulative(bounds, &cells, histogram.negative(), histogram.overflow());
            let les = bounds
                .iter()
                .map(|ns| seconds_text(*ns))
                .chain(std::iter::once("+Inf".to_string()));
            for (le, count) in les.zip(&counts) {
                series.push(Series {
                    name: "ringlat_latency_seconds_bucket".into(),
                    file: path.to_string(),
                    labels: format!("kind=\"{kind}\",le=\"{le}\""),
                    value: count.to_string(),
                });
            }
            series.push(Series {
                name: "ringlat_latency_seconds_sum".into(),
                file: path.to_string(),
                labels: format!("kind=\"{kind}\""),
                value: format!("{}", histogram.sum_ns() as f64 / 1e9),
            });
            series.push(Series {
                name: "ringlat_latency_seconds_count".into(),
                file: path.to_string(),
                labels: format!("kind=\"{kind}\""),
                value: histogram.count().to_string(),
            });
        }
        if series.is_empty() {
            return;
        }
        self.family(
            "ringlat_latency_seconds",
            "histogram",
            "Latency of every call that was not rejected (population histogram, whatever sampling and the breaker kept); a population bucket straddling an le boundary counts at the next boundary up.",
        )
        .series
        .extend(series);
    }

    /// Moves `other`'s series into this exposition, family by family.
    pub(crate) fn append(&mut self, other: Exposition) {
        for family in other.families {
            let name = family.name.clone();
            self.family(&name, family.kind, &family.help)
                .series
                .extend(family.series);
        }
    }

    /// The exposition text, ending in a newline.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        for family in &self.families {
            out.push_str(&format!(
                "# HELP {} {}\n# TYPE {} {}\n",
                family.name, family.help, family.name, family.kind
            ));
            for series in &family.series {
                let extra = if series.labels.is_empty() {
                    String::new()
                } else {
                    format!(",{}", series.labels)
                };
                out.push_str(&format!(
                    "{}{{file=\"{}\"{extra}}} {}\n",
                    series.name, series.file, series.value
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(lower_ns: u64, upper_ns: u64, count: u64) -> PopulationBucket {
        PopulationBucket {
            lower_ns,
            upper_ns,
            count,
        }
    }

    #[test]
    fn seconds_text_is_exact() {
        assert_eq!(seconds_text(1_000), "0.000001");
        assert_eq!(seconds_text(2_500), "0.0000025");
        assert_eq!(seconds_text(5_000_000), "0.005");
        assert_eq!(seconds_text(10_000_000_000), "10");
        assert_eq!(seconds_text(1_500_000_000), "1.5");
    }

    #[test]
    fn buckets_parse_units_and_seconds_and_refuse_disorder() {
        assert_eq!(
            Buckets::parse("0.001, 5ms,10ms,+Inf").unwrap().bounds_ns(),
            &[1_000_000, 5_000_000, 10_000_000]
        );
        assert!(Buckets::parse("5ms,1ms").is_err());
        assert!(Buckets::parse("1ms,1ms").is_err());
        assert!(Buckets::parse("0").is_err());
        assert!(Buckets::parse("+Inf").is_err());
        assert!(Buckets::parse("x").is_err());
        assert_eq!(Buckets::default().bounds_ns().len(), 22);
    }

    #[test]
    fn cumulative_counts_a_straddling_bucket_above_the_boundary() {
        let bounds = [1_000, 10_000];
        let population = [
            bucket(500, 900, 3),       // below 1 us
            bucket(990, 1_000, 4),     // ends exactly on 1 us: counted there
            bucket(995, 1_005, 5),     // straddles 1 us: counted at 10 us
            bucket(9_990, 10_010, 6),  // straddles 10 us: only in +Inf
            bucket(20_000, 20_100, 7), // above the last boundary
        ];
        assert_eq!(
            cumulative(&bounds, &population, 2, 1),
            vec![2 + 3 + 4, 2 + 3 + 4 + 5, 2 + 3 + 4 + 5 + 6 + 7 + 1]
        );
    }

    #[test]
    fn render_writes_each_family_once_across_files() {
        let mut exposition = Exposition::default();
        exposition.add_up("a\"b", None);
        exposition.add_up("c", Some("truncated"));
        exposition.add_up("d", Some("gone"));
        let text = exposition.render();
        assert_eq!(text.matches("# TYPE ringlat_up gauge").count(), 1, "{text}");
        assert_eq!(
            text.matches("# TYPE ringlat_read_error_info gauge").count(),
            1
        );
        assert!(text.contains("ringlat_up{file=\"a\\\"b\"} 1\n"), "{text}");
        assert!(text.contains("ringlat_up{file=\"c\"} 0\n"), "{text}");
        assert!(text.contains("ringlat_read_error_info{file=\"d\",error=\"gone\"} 1\n"));
    }
}
