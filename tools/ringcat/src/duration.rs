//! Durations as people type them: `500ms`, `5s`, `5m`, `1h`, `2d`, `1m30s`, `250us`, `10ns`.

use std::time::Duration;

/// Parses a duration; a bare number is seconds.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(seconds) = text.parse::<f64>() {
        return seconds_to_duration(seconds, text);
    }
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("'{text}': missing unit (ns, us, ms, s, m, h, d)"))?;
        let (number, after) = rest.split_at(number_end);
        let unit_end = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_end);
        let value: f64 = number
            .parse()
            .map_err(|_| format!("'{text}': '{number}' is not a number"))?;
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            other => return Err(format!("'{text}': unknown unit '{other}'")),
        };
        total += value * scale;
        rest = next;
    }
    seconds_to_duration(total, text)
}

/// Parses a duration that must be longer than zero (an interval or a window: zero would
/// busy-loop or divide by zero).
pub(crate) fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text.trim().trim_start_matches('-'))?;
    if duration.is_zero() || text.trim().starts_with('-') {
        return Err(format!("'{text}': must be longer than zero"));
    }
    Ok(duration)
}

fn seconds_to_duration(seconds: f64, text: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("'{text}': not a valid duration"))
}

/// Parses a latency into nanoseconds: `5ms`, `250us`, `1.5s`; a bare number is in `default_unit_ns`.
pub(crate) fn parse_latency_ns(text: &str, default_unit_ns: f64) -> Result<i64, String> {
    let text = text.trim();
    let (negative, body) = match text.strip_prefix('-') {
        Some(body) => (true, body),
        None => (false, text),
    };
    let magnitude = match body.parse::<f64>() {
        Ok(value) => value * default_unit_ns,
        Err(_) => parse_duration(body)?.as_nanos() as f64,
    };
    let ns = magnitude.round() as i64;
    Ok(if negative { -ns } else { ns })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_compounds() {
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_positive_duration("0").is_err());
        assert!(parse_positive_duration("0ms").is_err());
        assert!(parse_positive_duration("-1s").is_err());
        assert_eq!(parse_positive_duration("1ns"), Ok(Duration::from_nanos(1)));
        assert_eq!(parse_latency_ns("5ms", 1e3), Ok(5_000_000));
        assert_eq!(parse_latency_ns("7", 1e3), Ok(7_000));
        assert_eq!(parse_latency_ns("-2us", 1.0), Ok(-2_000));
    }
}
