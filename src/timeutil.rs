//! Timestamps: the API speaks RFC 3339 in UTC; the checkpoint compares them as epoch
//! milliseconds. The one clock of the program is [`now_ms`].

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// How far a timestamp from the feed may be ahead of this host's clock before it is treated
/// as being in the future: NTP-synchronised clocks differ by far less.
pub const FUTURE_SKEW_MS: i64 = 5 * 60 * 1000;

/// Parses an RFC 3339 timestamp (`2026-11-01T00:00:00Z`, offsets and fractions allowed).
pub fn parse(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s.trim(), &Rfc3339).ok()
}

/// Epoch milliseconds of an RFC 3339 timestamp.
pub fn parse_ms(s: &str) -> Option<i64> {
    utc_seconds_ms(s).or_else(|| parse(s).map(to_ms))
}

/// The shape the API sends, `YYYY-MM-DDTHH:MM:SSZ`, read without the general parser: it is
/// read for every record of a page, and the general one was a twentieth of the decoding.
/// Anything else (fractions, offsets, lowercase, a leap second) is left to it.
fn utc_seconds_ms(s: &str) -> Option<i64> {
    let b: &[u8; 20] = s.as_bytes().try_into().ok()?;
    if [b[4], b[7], b[10], b[13], b[16], b[19]] != *b"--T::Z" {
        return None;
    }
    let num = |at: usize, len: usize| {
        b[at..at + len].iter().try_fold(0i64, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
        })
    };
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let month = time::Month::try_from(u8::try_from(month).ok()?).ok()?;
    let date = time::Date::from_calendar_date(year as i32, month, day as u8).ok()?;
    // Julian day 2,440,588 is 1970-01-01.
    let days = i64::from(date.to_julian_day()) - 2_440_588;
    Some((((days * 24 + hour) * 60 + minute) * 60 + second) * 1000)
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

/// The time now, epoch ms. Debug builds (the tests' binary) read `SOCDEFENDERS_TEST_NOW`
/// (RFC 3339) instead, so no test depends on the wall clock; release builds have no such hook.
pub fn now_ms() -> i64 {
    #[cfg(debug_assertions)]
    if let Some(t) = std::env::var("SOCDEFENDERS_TEST_NOW")
        .ok()
        .and_then(|v| parse_ms(&v))
    {
        return t;
    }
    to_ms(OffsetDateTime::now_utc())
}

pub fn now() -> OffsetDateTime {
    from_ms(now_ms())
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

    #[test]
    fn the_shortcut_agrees_with_the_general_parser() {
        let general = |s: &str| parse(s).map(to_ms);
        // Every day from 1900 to 2100 (leap years, month ends), its time drifting by whole
        // seconds.
        let mut ms = general("1900-01-01T00:00:00Z").unwrap();
        let end = general("2100-12-31T23:59:59Z").unwrap();
        let mut step = 0i64;
        while ms <= end {
            let s = format_ms(ms);
            assert_eq!(utc_seconds_ms(&s), Some(ms), "{s}");
            step += 1;
            ms += 86_400_000 + (step * 7_919) % 3_600 * 1000;
        }
        for s in [
            "2026-02-29T00:00:00Z",
            "2024-02-30T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-00-10T00:00:00Z",
            "2026-01-00T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T23:60:00Z",
            "2016-12-31T23:59:60Z",
            "2026-01-01t00:00:00z",
            "2026-01-01T00:00:00+00:00",
            "2026-01-01T00:00:00.5Z",
            "2026-01-01T0a:00:00Z",
            "+026-01-01T00:00:00Z",
            "2026-01-01 00:00:00Z",
        ] {
            let fast = utc_seconds_ms(s);
            assert!(fast.is_none() || fast == general(s), "{s}");
            assert_eq!(parse_ms(s), general(s), "{s}");
        }
    }
}
