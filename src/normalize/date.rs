//! Publication dates in any common format → UTC, within the years 1000–9999.

use std::ops::RangeInclusive;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeZone, Utc, Weekday};

use crate::parse::RawDate;

/// Years a publication date may have. chrono accepts years up to ±262142 (`%Y` takes a sign
/// and any number of digits), and dates that far out overflow later date arithmetic
/// (relative dates in the body are resolved against this one); outside this range a date is
/// taken as unrecognised, which the caller reports as a warning.
pub const YEARS: RangeInclusive<i32> = 1000..=9999;

/// Epoch values above this are milliseconds (1e11 s is the year 5138).
const MILLIS_THRESHOLD: f64 = 1e11;

const DATETIME_FORMATS: &[&str] = &[
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
];

const DATE_FORMATS: &[&str] = &[
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%B %d, %Y",
    "%B %d %Y",
    "%b %d, %Y",
    "%b %d %Y",
    "%b. %d, %Y",
    "%d %B %Y",
    "%d %b %Y",
    "%d %B, %Y",
    "%A, %B %d, %Y",
    "%a, %d %b %Y",
    "%Y%m%d",
];

const TZ_DATETIME_FORMATS: &[&str] = &[
    "%Y-%m-%dT%H:%M:%S%.f%z",
    "%Y-%m-%d %H:%M:%S%.f%z",
    "%Y-%m-%d %H:%M:%S %z",
    "%a, %d %b %Y %H:%M:%S %z",
    "%d %b %Y %H:%M:%S %z",
];

/// The month (1–12) a capitalised month name or abbreviation names ("March", "Sept.",
/// "DEC").
pub fn month_name(word: &str) -> Option<u32> {
    let w = word.trim_end_matches('.');
    if !w.starts_with(|c: char| c.is_uppercase()) {
        return None;
    }
    // ASCII case-insensitive, without a lower-cased copy (this runs for every capitalised
    // token): no non-ASCII word lower-cases to a month name.
    let is = |m: &&str| w.eq_ignore_ascii_case(m);
    const FULL: [&str; 12] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    const ABBR: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    FULL.iter()
        .position(is)
        .or_else(|| ABBR.iter().position(is))
        .or_else(|| is(&"sept").then_some(8))
        .map(|i| i as u32 + 1)
}

/// The year a four-digit word names, in the years news text writes out (1800–2199).
pub fn year_number(word: &str) -> Option<i32> {
    if word.len() == 4 && word.bytes().all(|b| b.is_ascii_digit()) {
        word.parse().ok().filter(|y| (1800..=2199).contains(y))
    } else {
        None
    }
}

/// The weekday a capitalised full weekday name names ("Thursday").
pub fn weekday_name(word: &str) -> Option<Weekday> {
    Some(match word {
        "Monday" => Weekday::Mon,
        "Tuesday" => Weekday::Tue,
        "Wednesday" => Weekday::Wed,
        "Thursday" => Weekday::Thu,
        "Friday" => Weekday::Fri,
        "Saturday" => Weekday::Sat,
        "Sunday" => Weekday::Sun,
        _ => return None,
    })
}

/// Parses a publication date; `None` when no known format matches or the year is outside
/// [`YEARS`].
pub fn parse_date(raw: &RawDate) -> Option<DateTime<Utc>> {
    let parsed = match raw {
        RawDate::Epoch(n) => from_epoch(*n),
        RawDate::Text(s) => parse_text(s.trim()),
    };
    parsed.filter(|d| YEARS.contains(&d.year()))
}

fn from_epoch(n: f64) -> Option<DateTime<Utc>> {
    if !n.is_finite() || n < 0.0 {
        return None;
    }
    let millis = if n >= MILLIS_THRESHOLD { n } else { n * 1000.0 };
    if millis > 253_402_300_799_000.0 {
        return None; // after 9999-12-31
    }
    Utc.timestamp_millis_opt(millis as i64).single()
}

fn parse_text(s: &str) -> Option<DateTime<Utc>> {
    if s.is_empty() {
        return None;
    }
    if s.bytes().all(|b| b.is_ascii_digit()) && s.len() >= 9 {
        return s.parse::<f64>().ok().and_then(from_epoch);
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.with_timezone(&Utc));
    }
    if let Ok(d) = DateTime::parse_from_rfc2822(s) {
        return Some(d.with_timezone(&Utc));
    }
    let s = s
        .strip_suffix(" UTC")
        .or_else(|| s.strip_suffix(" GMT"))
        .unwrap_or(s);
    let s = s.strip_suffix('Z').unwrap_or(s);
    for f in TZ_DATETIME_FORMATS {
        if let Ok(d) = DateTime::parse_from_str(s, f) {
            return Some(d.with_timezone(&Utc));
        }
    }
    for f in DATETIME_FORMATS {
        if let Ok(d) = NaiveDateTime::parse_from_str(s, f) {
            return Some(Utc.from_utc_datetime(&d));
        }
    }
    let cleaned = strip_ordinals(s);
    for f in DATE_FORMATS {
        if let Ok(d) = NaiveDate::parse_from_str(&cleaned, f) {
            return d.and_hms_opt(0, 0, 0).map(|d| Utc.from_utc_datetime(&d));
        }
    }
    None
}

/// "November 8th, 2022" → "November 8, 2022".
fn strip_ordinals(s: &str) -> String {
    s.split(' ')
        .map(|w| {
            let (num, rest) = w.split_at(w.find(|c: char| !c.is_ascii_digit()).unwrap_or(w.len()));
            match rest.trim_end_matches(',') {
                "st" | "nd" | "rd" | "th" if !num.is_empty() => {
                    format!("{num}{}", if rest.ends_with(',') { "," } else { "" })
                }
                _ => w.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iso(s: &str) -> String {
        parse_date(&RawDate::Text(s.into()))
            .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_else(|| "none".into())
    }

    #[test]
    fn common_formats_become_utc() {
        assert_eq!(iso("2022-11-03T10:00:00+05:30"), "2022-11-03T04:30:00Z");
        assert_eq!(
            iso("Thu, 03 Nov 2022 10:00:00 +0000"),
            "2022-11-03T10:00:00Z"
        );
        assert_eq!(iso("2022-11-03"), "2022-11-03T00:00:00Z");
        assert_eq!(iso("November 8, 2022"), "2022-11-08T00:00:00Z");
        assert_eq!(iso("November 8th, 2022"), "2022-11-08T00:00:00Z");
        assert_eq!(iso("8 November 2022"), "2022-11-08T00:00:00Z");
        assert_eq!(iso("2022-11-03 10:00:00"), "2022-11-03T10:00:00Z");
        assert_eq!(iso("1667469600"), "2022-11-03T10:00:00Z");
        assert_eq!(iso("not a date"), "none");
    }

    #[test]
    fn epoch_seconds_and_millis_are_told_apart() {
        let s = parse_date(&RawDate::Epoch(1_667_469_600.0)).unwrap();
        let ms = parse_date(&RawDate::Epoch(1_667_469_600_000.0)).unwrap();
        assert_eq!(s, ms);
        assert!(parse_date(&RawDate::Epoch(-1.0)).is_none());
        assert!(parse_date(&RawDate::Epoch(1e300)).is_none());
    }

    #[test]
    fn years_outside_1000_to_9999_are_unrecognised() {
        assert_eq!(iso("+262142-12-31"), "none");
        assert_eq!(iso("-262143-01-01"), "none");
        assert_eq!(iso("+10000-01-01T00:00:00"), "none");
        assert_eq!(iso("0999-12-31"), "none");
        assert_eq!(iso("1000-01-01"), "1000-01-01T00:00:00Z");
        assert_eq!(iso("9999-12-31T23:59:59Z"), "9999-12-31T23:59:59Z");
    }
}
