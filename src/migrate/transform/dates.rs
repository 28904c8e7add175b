//! Zephyr timestamps in, qTest timestamps out.
//!
//! Uses the `time` crate (features `parsing` and `formatting` only; it is
//! already in the lockfile through `rcgen`): RFC 3339 parsing with offsets and
//! fractions is easy to get subtly wrong by hand, and Zephyr documents
//! `yyyy-MM-dd'T'HH:mm:ss'Z'` but a real service may add milliseconds or an
//! offset.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, Duration, OffsetDateTime, UtcOffset};

/// Parses an RFC 3339 timestamp such as `2018-05-20T13:15:13Z`.
pub(crate) fn parse(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text.trim(), &Rfc3339).ok()
}

/// Formats as `yyyy-MM-ddTHH:mm:ssZ` in UTC, dropping fractions of a second.
pub(crate) fn format(at: OffsetDateTime) -> String {
    let utc = at.to_offset(UtcOffset::UTC);
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    // A formatting failure needs a year beyond 9999 or before 0, which
    // `subtract_ms` and RFC 3339 parsing can't produce; fall back to RFC 3339.
    utc.format(&format)
        .or_else(|_| utc.format(&Rfc3339))
        .unwrap_or_default()
}

/// `at` minus `ms` milliseconds, or `None` when that leaves the range.
pub(crate) fn subtract_ms(at: OffsetDateTime, ms: u64) -> Option<OffsetDateTime> {
    let ms = i64::try_from(ms).ok()?;
    at.checked_sub(Duration::milliseconds(ms))
}

/// Reads a date for a qTest date field: `yyyy-MM-dd` (Zephyr's custom field
/// format) becomes midnight UTC; a full timestamp is normalised.
pub(crate) fn date_field(text: &str) -> Option<String> {
    if let Some(at) = parse(text) {
        return Some(format(at));
    }
    let date = Date::parse(text.trim(), format_description!("[year]-[month]-[day]")).ok()?;
    Some(format(date.midnight().assume_utc()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_format_and_subtract() {
        let end = parse("2018-05-20T13:15:13Z").unwrap();
        assert_eq!(format(end), "2018-05-20T13:15:13Z");
        let start = subtract_ms(end, 120_000).unwrap();
        assert_eq!(format(start), "2018-05-20T13:13:13Z");
        // Across midnight and a leap day.
        let leap = parse("2024-03-01T00:00:01Z").unwrap();
        assert_eq!(
            format(subtract_ms(leap, 2_000).unwrap()),
            "2024-02-29T23:59:59Z"
        );
        // A fraction is floored, so the start never moves after the truth.
        assert_eq!(
            format(subtract_ms(end, 500).unwrap()),
            "2018-05-20T13:15:12Z"
        );
        assert_eq!(
            format(parse("2018-05-20T15:15:13.250+02:00").unwrap()),
            "2018-05-20T13:15:13Z"
        );
        assert_eq!(subtract_ms(end, u64::MAX), None);
        for bad in ["", "2018-05-20", "20/05/2018 13:15", "2018-13-01T00:00:00Z"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn date_fields() {
        assert_eq!(
            date_field("2020-01-01").as_deref(),
            Some("2020-01-01T00:00:00Z")
        );
        assert_eq!(
            date_field("2020-01-01T10:00:00Z").as_deref(),
            Some("2020-01-01T10:00:00Z")
        );
        assert_eq!(date_field("01/02/2020"), None);
        assert_eq!(date_field("2020-02-30"), None);
    }
}
