//! Times the journalctl way, on `jiff`: parsing `--since/--until` (RFC 3339, now, today,
//! yesterday, relative, local civil times) and rendering UNIX-epoch nanoseconds, in the
//! local zone for people (with the offset) and in UTC for machines.

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ZonedDateTime as Zoned};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

/// `--utc`: read and show times in UTC instead of the local zone. Set once by `main` before
/// any command runs (Relaxed: no other data hangs on it).
static UTC: AtomicBool = AtomicBool::new(false);

/// Makes every later parse and display use UTC (`--utc`) or the local zone.
pub(crate) fn set_utc(utc: bool) {
    UTC.store(utc, Ordering::Relaxed);
}

/// The zone people's times are read and shown in: UTC with `--utc`, else the system's
/// (`TZ`, then /etc/localtime).
pub(crate) fn zone() -> TimeZone {
    if UTC.load(Ordering::Relaxed) {
        TimeZone::UTC
    } else {
        // Looked up once: cat prints the zone of every record.
        static SYSTEM: OnceLock<TimeZone> = OnceLock::new();
        SYSTEM.get_or_init(TimeZone::system).clone()
    }
}

/// UNIX-epoch nanoseconds now.
pub(crate) fn now_unix_ns() -> u64 {
    ns_of(Timestamp::now())
}

fn ns_of(timestamp: Timestamp) -> u64 {
    u64::try_from(timestamp.as_nanosecond()).unwrap_or(0)
}

fn timestamp_of(unix_ns: u64) -> Timestamp {
    Timestamp::from_nanosecond(i128::from(unix_ns)).unwrap_or(Timestamp::MAX)
}

/// RFC 3339 in UTC with nanoseconds, for machine formats (JSON, CSV):
/// `2026-11-21T16:02:01.500000000Z`.
pub(crate) fn rfc3339_nanos(unix_ns: u64) -> String {
    render(
        &timestamp_of(unix_ns).to_zoned_datetime(TimeZone::UTC),
        true,
    )
}

/// RFC 3339 in the display zone with its offset, for people: `2026-11-21T17:02:01.500000000+01:00`
/// (`Z` with `--utc`).
pub(crate) fn display_time(unix_ns: u64) -> String {
    let zone = zone();
    let utc = zone == TimeZone::UTC;
    render(&timestamp_of(unix_ns).to_zoned_datetime(zone), utc)
}

/// The display zone's name and offset at `unix_ns`, for captions: `UTC`, `Europe/Paris (+01:00)`.
pub(crate) fn zone_caption(unix_ns: u64) -> String {
    let zone = zone();
    if zone == TimeZone::UTC {
        return "UTC".to_string();
    }
    let zoned = timestamp_of(unix_ns).to_zoned_datetime(zone.clone());
    let name = zone.iana_name().unwrap_or("local time");
    format!("{name} ({})", offset_text(&zoned))
}

/// The civil date-time of `unix_ns` in the display zone.
pub(crate) fn civil(unix_ns: u64) -> DateTime {
    timestamp_of(unix_ns).to_zoned_datetime(zone()).datetime()
}

/// The display zone's offset from UTC at `unix_ns`, in seconds.
pub(crate) fn offset_seconds(unix_ns: u64) -> i64 {
    i64::from(
        timestamp_of(unix_ns)
            .to_zoned_datetime(zone())
            .offset()
            .seconds(),
    )
}

fn offset_text(zoned: &Zoned) -> String {
    let seconds = zoned.offset().seconds();
    let sign = if seconds < 0 { '-' } else { '+' };
    let minutes = seconds.unsigned_abs() / 60;
    format!("{sign}{:02}:{:02}", minutes / 60, minutes % 60)
}

fn render(zoned: &Zoned, utc: bool) -> String {
    let offset = if utc {
        "Z".to_string()
    } else {
        offset_text(zoned)
    };
    format!(
        "{}.{:09}{offset}",
        zoned.datetime().strftime("%Y-%m-%dT%H:%M:%S"),
        zoned.subsec_nanosecond()
    )
}

/// `--since/--until`: RFC 3339 (`2026-11-21T15:04:05Z`, offsets allowed), `now`, `today`,
/// `yesterday`, `tomorrow`, a relative time (`5m` and `-5m` and `5m ago` in the past, `+5m`
/// in the future), or a civil time without offset (`2026-11-21 15:00`, `2026-11-21`,
/// `15:00` today), read in the display zone.
pub(crate) fn parse_time(text: &str, now_ns: u64) -> Result<u64, String> {
    parse_time_in(text, now_ns, &zone())
}

fn parse_time_in(text: &str, now_ns: u64, zone: &TimeZone) -> Result<u64, String> {
    let trimmed = text.trim();
    let now = timestamp_of(now_ns);
    let today = now.to_zoned_datetime(zone.clone()).date();
    let start_of = |date: Option<Date>| -> Result<u64, String> {
        date.and_then(|d| d.to_zoned_datetime(zone.clone()).ok())
            .map(|z| ns_of(z.timestamp()))
            .ok_or_else(|| format!("'{text}': out of range"))
    };
    match trimmed.to_ascii_lowercase().as_str() {
        "now" => return Ok(now_ns),
        "today" => return start_of(Some(today)),
        "yesterday" => return start_of(today.yesterday().ok()),
        "tomorrow" => return start_of(today.tomorrow().ok()),
        _ => {}
    }
    let ago = |body: &str| {
        let compact: String = body.split_whitespace().collect();
        crate::duration::parse_duration(&compact).map(nanos_of)
    };
    if let Some(body) = trimmed.strip_suffix("ago") {
        return ago(body.trim()).map(|d| now_ns.saturating_sub(d));
    }
    if let Some(body) = trimmed.strip_prefix('+') {
        return ago(body).map(|d| now_ns.saturating_add(d));
    }
    if let Ok(d) = ago(trimmed.strip_prefix('-').unwrap_or(trimmed)) {
        return Ok(now_ns.saturating_sub(d));
    }
    if let Ok(timestamp) = trimmed.parse::<Timestamp>() {
        return u64::try_from(timestamp.as_nanosecond())
            .map_err(|_| format!("'{text}': before 1970"));
    }
    let civil = trimmed
        .parse::<DateTime>()
        .ok()
        .or_else(|| {
            trimmed
                .parse::<Date>()
                .ok()
                .map(|d| d.to_datetime(Time::MIN))
        })
        .or_else(|| trimmed.parse::<Time>().ok().map(|t| today.to_datetime(t)));
    let Some(civil) = civil else {
        return Err(format!(
            "'{text}' is not a time: use RFC 3339 (2026-11-21T15:04:05Z), a local time \
             (2026-11-21 15:04, 15:04), now, today, yesterday, or a relative time (5m, -5m, \
             '1h ago', +5m)"
        ));
    };
    let zoned = civil
        .to_zoned_datetime(zone.clone())
        .map_err(|e| format!("'{text}': {e}"))?;
    u64::try_from(zoned.timestamp().as_nanosecond()).map_err(|_| format!("'{text}': before 1970"))
}

fn nanos_of(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u64 = 1_795_276_921_500_000_000; // 2026-11-21T16:02:01.5Z

    #[test]
    fn renders_utc_for_machines() {
        assert_eq!(rfc3339_nanos(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339_nanos(951_782_400_000_000_001),
            "2000-02-29T00:00:00.000000001Z"
        );
        assert_eq!(rfc3339_nanos(T), "2026-11-21T16:02:01.500000000Z");
    }

    #[test]
    fn parses_every_form() {
        let utc = TimeZone::UTC;
        let paris = TimeZone::get("Europe/Paris").unwrap();
        let hour = 3_600_000_000_000;
        assert_eq!(parse_time_in(&rfc3339_nanos(T), 0, &utc), Ok(T));
        assert_eq!(parse_time_in("2026-11-21T17:02:01.5+01:00", 0, &utc), Ok(T));
        assert_eq!(parse_time_in("now", T, &utc), Ok(T));
        for text in ["5m", "-5m", "5m ago", "5 m ago"] {
            assert_eq!(
                parse_time_in(text, T, &utc),
                Ok(T - 300_000_000_000),
                "{text}"
            );
        }
        assert_eq!(parse_time_in("+1h", T, &utc), Ok(T + hour));
        let midnight = 1_795_219_200_000_000_000; // 2026-11-21T00:00:00Z
        assert_eq!(parse_time_in("today", T, &utc), Ok(midnight));
        assert_eq!(
            parse_time_in("yesterday", T, &utc),
            Ok(midnight - 24 * hour)
        );
        assert_eq!(parse_time_in("2026-11-21", T, &utc), Ok(midnight));
        // A local time without offset is read in the zone (Paris is UTC+1 in November).
        assert_eq!(parse_time_in("2026-11-21 17:02:01.5", 0, &paris), Ok(T));
        assert_eq!(parse_time_in("2026-11-21T16:02:01.5", 0, &utc), Ok(T));
        assert_eq!(parse_time_in("17:02:01.5", T, &paris), Ok(T));
        assert_eq!(parse_time_in("today", T, &paris), Ok(midnight - hour));
        assert!(parse_time_in("2026-13-01T00:00:00Z", 0, &utc).is_err());
        assert!(parse_time_in("soon", 0, &utc).is_err());
    }
}
