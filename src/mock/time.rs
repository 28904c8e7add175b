//! The date-times of the contracts (`yyyy-MM-dd'T'HH:mm:ss'Z'`), without a date crate.

/// Now, in seconds since the epoch (0 before 1970).
pub(crate) fn now() -> i64 {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    d.map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Seconds since the epoch as `2024-05-01T10:00:00Z`.
pub(crate) fn format(epoch: i64) -> String {
    let (days, secs) = (epoch.div_euclid(86_400), epoch.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Parses `yyyy-MM-dd`, or `yyyy-MM-ddTHH:mm:ss` with optional fraction and a `Z` or
/// `±HH:MM` offset, into epoch seconds.
pub(crate) fn parse(s: &str) -> Option<i64> {
    let num = |a: usize, b: usize| {
        s.get(a..b)
            .filter(|t| t.bytes().all(|c| c.is_ascii_digit()))?
            .parse::<i64>()
            .ok()
    };
    let (y, mo, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    if s.get(4..5) != Some("-")
        || s.get(7..8) != Some("-")
        || !(1..=12).contains(&mo)
        || !(1..=31).contains(&d)
    {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    if s.len() == 10 {
        return Some(days * 86_400);
    }
    let (h, mi, sec) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !matches!(s.get(10..11), Some("T" | " ")) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let rest = s.get(19..)?;
    let rest = rest
        .strip_prefix('.')
        .map_or(rest, |f| f.trim_start_matches(|c: char| c.is_ascii_digit()));
    let offset = match rest {
        "Z" | "" => 0,
        _ => parse_offset(rest)?,
    };
    Some(days * 86_400 + h * 3600 + mi * 60 + sec - offset)
}

fn parse_offset(s: &str) -> Option<i64> {
    let sign = match s.get(0..1)? {
        "+" => 1,
        "-" => -1,
        _ => return None,
    };
    let (h, m) = s.get(1..)?.split_once(':')?;
    Some(sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60))
}

// Howard Hinnant's civil-calendar algorithms.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_parses_variants() {
        for t in [0, 951_782_400, 1_714_557_600, 1_709_164_799] {
            assert_eq!(parse(&format(t)), Some(t), "{}", format(t));
        }
        assert_eq!(format(1_714_557_600), "2024-05-01T10:00:00Z");
        assert_eq!(parse("2024-05-01"), Some(1_714_521_600));
        assert_eq!(parse("2024-05-01T12:00:00.123+02:00"), Some(1_714_557_600));
        for bad in [
            "",
            "2024-13-01",
            "2024-05-01T25:00:00Z",
            "yesterday",
            "2024-05-01T10:00:00X",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
