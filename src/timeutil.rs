//! Timestamps: the API speaks RFC 3339 in UTC; the checkpoint compares them as epoch milliseconds.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Parses an RFC 3339 timestamp (`2026-11-01T00:00:00Z`, offsets and fractions allowed).
pub fn parse(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s.trim(), &Rfc3339).ok()
}

/// Epoch milliseconds of an RFC 3339 timestamp.
pub fn parse_ms(s: &str) -> Option<i64> {
    parse(s).map(to_ms)
}

pub fn to_ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

pub fn from_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Formats as RFC 3339 in UTC with `Z`, with milliseconds only when they are not zero.
pub fn format_ms(ms: i64) -> String {
    let t = from_ms(ms);
    match t.millisecond() {
        0 => format!("{}Z", to_seconds(t)),
        m => format!("{}.{m:03}Z", to_seconds(t)),
    }
}

/// RFC 3339 in UTC with microseconds, as TAXII servers write `date_added`.
pub fn format_us(t: OffsetDateTime) -> String {
    format!("{}.{:06}Z", to_seconds(t), t.microsecond())
}

/// `YYYY-MM-DDTHH:MM:SS` in UTC.
fn to_seconds(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

pub fn now_ms() -> i64 {
    to_ms(OffsetDateTime::now_utc())
}

/// The UTC day of a time, `YYYY-MM-DD`, for the daily request budget.
pub fn utc_day(ms: i64) -> String {
    format_ms(ms)[..10].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_offsets() {
        let ms = parse_ms("2026-05-16T10:20:30Z").unwrap();
        assert_eq!(format_ms(ms), "2026-05-16T10:20:30Z");
        assert_eq!(format_ms(ms + 5), "2026-05-16T10:20:30.005Z");
        assert_eq!(parse_ms("2026-05-16T12:20:30+02:00"), Some(ms));
        assert_eq!(parse_ms("2026-05-16"), None);
        assert_eq!(utc_day(ms), "2026-05-16");
        let t = parse("2026-05-16T12:20:30.000042+02:00").unwrap();
        assert_eq!(format_us(t), "2026-05-16T10:20:30.000042Z");
    }
}
