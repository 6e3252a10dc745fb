//! Durations (`90s`, `2h`, `1h30m`, via `humantime`) and log time bounds: an RFC 3339 time
//! or a duration before now, as Unix nanoseconds.

use std::time::Duration;

use crate::error::{Error, Result, shown};

const NANOS_PER_SEC: i64 = 1_000_000_000;

/// Parses a duration such as `90s`, `15m`, `2h`, `1h30m` or `7d`.
pub fn parse_duration(s: &str) -> Result<Duration> {
    humantime::parse_duration(s.trim()).map_err(|e| Error::Duration {
        value: shown(s),
        reason: e.to_string(),
    })
}

/// Formats a duration so that [`parse_duration`] reads it back (`1h 30m`, `90ms`).
pub fn format_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// Parses a `--since`/`--until` bound: an RFC 3339 time, or a duration before
/// `now_unix_nanos`; returns Unix nanoseconds.
pub fn parse_time_bound(s: &str, now_unix_nanos: i64) -> Result<i64> {
    let bad = |reason: String| Error::Time {
        value: shown(s),
        reason,
    };
    let t = s.trim();
    if looks_like_date(t) {
        return parse_rfc3339_nanos(t).map_err(|e| match e {
            Error::Time { reason, .. } => bad(reason),
            other => other,
        });
    }
    let d = humantime::parse_duration(t).map_err(|e| bad(e.to_string()))?;
    let d = i64::try_from(d.as_nanos())
        .map_err(|_| bad("the duration is longer than 292 years".into()))?;
    Ok(now_unix_nanos.saturating_sub(d))
}

/// `YYYY-`: a date, not a duration (no duration starts with four digits and a dash).
fn looks_like_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 5 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-'
}

/// Parses an RFC 3339 time (`2016-10-06T00:17:09.669794202Z`, `... +02:00`) to Unix
/// nanoseconds. `t` or a space may separate date and time, `z` may stand for `Z`; digits past
/// nanoseconds are ignored; a leap second `:60` counts as the next second.
///
/// Hand-written because `humantime::parse_rfc3339` accepts only UTC (`Z`) and RFC 3339's
/// numeric offsets are what other tools print.
pub fn parse_rfc3339_nanos(s: &str) -> Result<i64> {
    let bad = |reason: &str| Error::Time {
        value: shown(s),
        reason: reason.to_string(),
    };
    const SHAPE: &str = "want YYYY-MM-DDThh:mm:ss[.fraction](Z|+hh:mm|-hh:mm)";
    let b = s.as_bytes();
    let num = |at: usize, len: usize| -> Option<i64> {
        let d = b.get(at..at + len)?;
        d.iter()
            .all(u8::is_ascii_digit)
            .then(|| d.iter().fold(0, |n, c| n * 10 + i64::from(c - b'0')))
    };
    let sep = |at: usize, ok: &[u8]| b.get(at).is_some_and(|c| ok.contains(c));
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = (
        num(0, 4),
        num(5, 2),
        num(8, 2),
        num(11, 2),
        num(14, 2),
        num(17, 2),
    ) else {
        return Err(bad(SHAPE));
    };
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return Err(bad(SHAPE));
    }
    let mut i = 19;
    let mut nanos = 0;
    if sep(i, b".") {
        let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(bad(SHAPE));
        }
        for k in 0..9 {
            let d = if k < digits {
                i64::from(b[i + 1 + k] - b'0')
            } else {
                0
            };
            nanos = nanos * 10 + d;
        }
        i += 1 + digits;
    }
    let offset_secs = match b.get(i) {
        Some(b'Z' | b'z') if b.len() == i + 1 => 0,
        Some(&sign @ (b'+' | b'-')) if b.len() == i + 6 && sep(i + 3, b":") => {
            let (Some(h), Some(m)) = (num(i + 1, 2), num(i + 4, 2)) else {
                return Err(bad(SHAPE));
            };
            if h > 23 || m > 59 {
                return Err(bad("the offset is out of range"));
            }
            let o = h * 3600 + m * 60;
            if sign == b'-' { -o } else { o }
        }
        _ => return Err(bad(SHAPE)),
    };
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return Err(bad("no such date"));
    }
    if hour > 23 || minute > 59 || second > 60 {
        return Err(bad("no such time of day"));
    }
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        - offset_secs;
    // In i128, as the earliest representable second times 10^9 alone is below i64::MIN.
    let n = i128::from(secs) * i128::from(NANOS_PER_SEC) + i128::from(nanos);
    i64::try_from(n).map_err(|_| bad("out of range (1677-09-21 to 2262-04-11)"))
}

/// Formats Unix nanoseconds as RFC 3339 UTC with nanoseconds (`2016-10-06T00:17:09.669794202Z`).
pub fn format_rfc3339_nanos(nanos: i64) -> String {
    let secs = nanos.div_euclid(NANOS_PER_SEC);
    let frac = nanos.rem_euclid(NANOS_PER_SEC);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:09}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
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

    const NOW: i64 = 10_000 * NANOS_PER_SEC;

    #[test]
    fn durations() {
        for (s, secs) in [
            ("90s", 90),
            ("2h", 7200),
            ("1h30m", 5400),
            ("1h 30m", 5400),
            ("7d", 604_800),
            (" 15m ", 900),
        ] {
            assert_eq!(parse_duration(s).unwrap(), Duration::from_secs(secs), "{s}");
        }
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h 30m");
        for (bad, msg) in [
            ("", "invalid duration \"\": value was empty"),
            ("h", "invalid duration \"h\": expected number at 0"),
            ("-2h", "invalid duration \"-2h\": expected number at 0"),
        ] {
            assert_eq!(parse_duration(bad).unwrap_err().to_string(), msg);
        }
        assert!(
            parse_duration("2x")
                .unwrap_err()
                .to_string()
                .starts_with("invalid duration \"2x\": unknown time unit \"x\"")
        );
    }

    #[test]
    fn time_bounds() {
        let table = [
            ("2h", NOW - 7200 * NANOS_PER_SEC),
            ("90s", NOW - 90 * NANOS_PER_SEC),
            ("1h30m", NOW - 5400 * NANOS_PER_SEC),
            ("0s", NOW),
            ("1970-01-01T00:00:01Z", NANOS_PER_SEC),
            (" 1970-01-01T00:00:01Z ", NANOS_PER_SEC),
            ("1970-01-01t00:00:01z", NANOS_PER_SEC),
            ("1970-01-01 00:00:01Z", NANOS_PER_SEC),
            ("1970-01-01T02:00:01+02:00", NANOS_PER_SEC),
            ("1969-12-31T23:00:01-01:00", NANOS_PER_SEC),
            ("1970-01-01T00:00:01.5Z", NANOS_PER_SEC + 500_000_000),
            ("1970-01-01T00:00:00.0000000019Z", 1),
            ("1970-01-01T00:00:59.1Z", 59 * NANOS_PER_SEC + 100_000_000),
            ("1970-01-01T00:00:60Z", 60 * NANOS_PER_SEC),
            ("2016-10-06T00:17:09.669794202Z", 1_475_713_029_669_794_202),
            ("2024-02-29T00:00:00Z", 1_709_164_800 * NANOS_PER_SEC),
        ];
        for (s, want) in table {
            assert_eq!(parse_time_bound(s, NOW).unwrap(), want, "{s}");
        }
        let date_shape = "want YYYY-MM-DDThh:mm:ss[.fraction](Z|+hh:mm|-hh:mm)";
        let table = [
            ("", "value was empty".to_string()),
            ("2x", "unknown time unit \"x\", supported units: ns, us/µs, ms, sec, min, hours, days, weeks, months, years (and few variations)".to_string()),
            ("-2h", "expected number at 0".to_string()),
            ("99999999999999999d", "number is too large or cannot be represented without a lack of precision (values below 1ns are not supported)".to_string()),
            ("300y", "the duration is longer than 292 years".to_string()),
            ("2024-01-01", date_shape.to_string()),
            ("2024-01-01T00:00:00", date_shape.to_string()),
            ("2024-01-01T00:00:00.Z", date_shape.to_string()),
            ("2024-01-01T00:00:00Zjunk", date_shape.to_string()),
            ("2024-01-01T00:00:00+0100", date_shape.to_string()),
            ("2023-02-29T00:00:00Z", "no such date".to_string()),
            ("2024-13-01T00:00:00Z", "no such date".to_string()),
            ("2024-01-01T24:00:00Z", "no such time of day".to_string()),
            ("2024-01-01T00:00:00+24:00", "the offset is out of range".to_string()),
            ("0001-01-01T00:00:00Z", "out of range (1677-09-21 to 2262-04-11)".to_string()),
            ("9999-12-31T23:59:59Z", "out of range (1677-09-21 to 2262-04-11)".to_string()),
        ];
        for (s, reason) in table {
            assert_eq!(
                parse_time_bound(s, NOW).unwrap_err().to_string(),
                format!(
                    "invalid time {s:?} (want e.g. 30s, 15m, 2h, 1h30m, 7d or 2024-01-02T15:04:05Z): {reason}"
                ),
                "{s}"
            );
        }
    }

    #[test]
    fn formats_rfc3339() {
        for n in [0, 1, -1, 1_475_713_029_669_794_202, i64::MAX, i64::MIN] {
            let s = format_rfc3339_nanos(n);
            assert_eq!(parse_rfc3339_nanos(&s).unwrap(), n, "{s}");
        }
        assert_eq!(
            format_rfc3339_nanos(1_475_713_029_669_794_202),
            "2016-10-06T00:17:09.669794202Z"
        );
    }
}
