//! Rule-based DATE, MONEY and PERCENT mentions over tokens, with normalization:
//! dates to ISO 8601 relative to the publication date where resolvable ("November 8" in an
//! article published 2022-11-03 is "2022-11-08"; "Thursday" is the Thursday of the
//! publication week), money to "<ISO currency> <amount>", percentages to "<number>%".
//!
//! Date arithmetic is checked: the publication date is input, and chrono's operators panic
//! at the ends of its calendar (±262,143). Normalized dates have four-digit years, so a
//! publication date outside 1000–9999, or a result outside it, leaves the date unresolved.

// Dates the rules resolve are held to the same years as input dates.
use crate::normalize::date::{YEARS, month_name, weekday_name, year_number};

use chrono::{Datelike, Days, Duration, NaiveDate};

use super::EntityType;

/// A rule match: tokens `start..end` of the sentence passed in.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpan {
    pub start: usize,
    pub end: usize,
    pub kind: EntityType,
    pub normalized: Option<String>,
}

fn day(word: &str) -> Option<u32> {
    let w = word.trim_end_matches(|c: char| c.is_alphabetic() || c == ',');
    if w.is_empty() || w.len() > 2 || !w.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let rest = &word[w.len()..].trim_end_matches(',');
    if !rest.is_empty() && !matches!(*rest, "st" | "nd" | "rd" | "th") {
        return None;
    }
    w.parse().ok().filter(|d| (1..=31).contains(d))
}

/// Parse "1,000.50", "3.5", "12".
pub fn number(word: &str) -> Option<f64> {
    if word.is_empty() || !word.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    if !word
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b',' || b == b'.')
    {
        return None;
    }
    word.replace(',', "").parse().ok()
}

fn scale(word: &str) -> Option<f64> {
    Some(match word.to_lowercase().as_str() {
        "thousand" | "k" => 1e3,
        "million" | "mln" | "mn" | "m" => 1e6,
        "billion" | "bln" | "bn" | "b" => 1e9,
        "trillion" | "tn" => 1e12,
        "lakh" | "lakhs" => 1e5,
        "crore" | "crores" => 1e7,
        _ => return None,
    })
}

fn currency_symbol(word: &str) -> Option<&'static str> {
    Some(match word {
        "$" | "US$" | "USD" => "USD",
        "€" | "EUR" => "EUR",
        "£" | "GBP" => "GBP",
        "¥" | "JPY" => "JPY",
        "₹" | "Rs" | "Rs." | "INR" => "INR",
        "₽" | "RUB" => "RUB",
        "CNY" | "RMB" => "CNY",
        "C$" | "CAD" => "CAD",
        "A$" | "AUD" => "AUD",
        "CHF" => "CHF",
        _ => return None,
    })
}

fn currency_word(word: &str) -> Option<&'static str> {
    Some(match word.to_lowercase().as_str() {
        "dollar" | "dollars" => "USD",
        "euro" | "euros" => "EUR",
        "pound" | "pounds" | "sterling" => "GBP",
        "yen" => "JPY",
        "rupee" | "rupees" => "INR",
        "rouble" | "roubles" | "ruble" | "rubles" => "RUB",
        "yuan" | "renminbi" => "CNY",
        "franc" | "francs" => "CHF",
        _ => return None,
    })
}

fn fmt_amount(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e18 {
        format!("{}", x as i64)
    } else {
        let s = format!("{x:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// The year that puts month `m` nearest the publication date (same year unless more than
/// eight months away, as when a January article mentions "December").
fn infer_year(m: u32, published: NaiveDate) -> i32 {
    let y = published.year();
    let diff = m as i32 - published.month() as i32;
    if diff > 8 {
        y - 1
    } else if diff < -8 {
        y + 1
    } else {
        y
    }
}

fn iso(y: i32, m: u32, d: u32) -> Option<String> {
    NaiveDate::from_ymd_opt(y, m, d).and_then(ymd)
}

/// `YYYY-MM-DD`, or nothing for a year outside [`YEARS`].
fn ymd(d: NaiveDate) -> Option<String> {
    YEARS
        .contains(&d.year())
        .then(|| d.format("%Y-%m-%d").to_string())
}

/// `p + days`, checked.
fn add_days(p: NaiveDate, days: i64) -> Option<NaiveDate> {
    p.checked_add_signed(Duration::try_days(days)?)
}

/// `word` lower-cased in `buf` when it is short ASCII, else empty: the relative-date words
/// are, and this runs for every token, so it must not allocate.
fn ascii_lower<'b>(word: &str, buf: &'b mut [u8; 12]) -> &'b str {
    let Some(out) = buf.get_mut(..word.len()).filter(|_| word.is_ascii()) else {
        return "";
    };
    out.copy_from_slice(word.as_bytes());
    out.make_ascii_lowercase();
    std::str::from_utf8(out).unwrap_or("")
}

/// Find DATE, MONEY and PERCENT spans in one sentence.
pub fn find(words: &[&str], published: Option<NaiveDate>) -> Vec<RuleSpan> {
    let published = published.filter(|p| YEARS.contains(&p.year()));
    let mut out = Vec::new();
    let n = words.len();
    let w = |i: usize| words.get(i).copied().unwrap_or("");
    let mut i = 0;
    while i < n {
        let span = |end: usize, kind, normalized: Option<String>| RuleSpan {
            start: i,
            end,
            kind,
            normalized,
        };
        // PERCENT: 9.5 % | 9.5 percent | 9.5 per cent | 2 percentage points
        if let Some(x) = number(w(i)) {
            let lw = w(i + 1).to_lowercase();
            let end = match lw.as_str() {
                "%" | "percent" | "pct" => Some(i + 2),
                "per" if w(i + 2).eq_ignore_ascii_case("cent") => Some(i + 3),
                "percentage" if w(i + 2).to_lowercase().starts_with("point") => Some(i + 3),
                _ => None,
            };
            if let Some(end) = end {
                out.push(span(
                    end,
                    EntityType::Percent,
                    Some(format!("{}%", fmt_amount(x))),
                ));
                i = end;
                continue;
            }
        }
        // MONEY: $ 5 million | 5 million dollars | USD 5
        if let Some(cur) = currency_symbol(w(i))
            && let Some(x) = number(w(i + 1))
        {
            let (mult, end) = scale(w(i + 2)).map_or((1.0, i + 2), |s| (s, i + 3));
            out.push(span(
                end,
                EntityType::Money,
                Some(format!("{cur} {}", fmt_amount(x * mult))),
            ));
            i = end;
            continue;
        }
        if let Some(x) = number(w(i)) {
            let (mult, j) = scale(w(i + 1)).map_or((1.0, i + 1), |s| (s, i + 2));
            if let Some(cur) =
                currency_word(w(j)).or_else(|| currency_symbol(w(j)).filter(|_| w(j).len() == 3))
            {
                out.push(span(
                    j + 1,
                    EntityType::Money,
                    Some(format!("{cur} {}", fmt_amount(x * mult))),
                ));
                i = j + 1;
                continue;
            }
        }
        // DATE: ISO 2022-11-08
        if w(i).len() == 10
            && let Ok(d) = NaiveDate::parse_from_str(w(i), "%Y-%m-%d")
        {
            out.push(span(
                i + 1,
                EntityType::Date,
                Some(d.format("%Y-%m-%d").to_string()),
            ));
            i += 1;
            continue;
        }
        // Month [day] [,] [year]  |  day Month [year]
        let (m, d, mut end) = if let Some(m) = month_name(w(i)) {
            match day(w(i + 1)) {
                Some(d) => (Some(m), Some(d), i + 2),
                None => (Some(m), None, i + 1),
            }
        } else if let (Some(d), Some(m)) = (day(w(i)), month_name(w(i + 1))) {
            (Some(m), Some(d), i + 2)
        } else {
            (None, None, i)
        };
        if let Some(m) = m {
            let mut y = None;
            let comma = usize::from(w(end) == ",");
            if let Some(yy) = year_number(w(end + comma)) {
                y = Some(yy);
                end += comma + 1;
            } else if matches!(w(end), "last" | "this" | "next") && w(end + 1) == "year" {
                y = published.map(|p| match w(end) {
                    "last" => p.year() - 1,
                    "next" => p.year() + 1,
                    _ => p.year(),
                });
                end += 2;
            }
            // A bare month needs a date-like context ("in April"); "May" alone is too ambiguous.
            let bare = d.is_none() && y.is_none();
            let prev = if i > 0 {
                w(i - 1).to_lowercase()
            } else {
                String::new()
            };
            let ok = !bare
                || (w(i) != "May"
                    && matches!(
                        prev.as_str(),
                        "in" | "since"
                            | "until"
                            | "by"
                            | "from"
                            | "early"
                            | "late"
                            | "mid"
                            | "during"
                            | "last"
                            | "next"
                            | "this"
                            | "of"
                            | "before"
                            | "after"
                            | "through"
                    ));
            if ok {
                let y = y
                    .or_else(|| published.map(|p| infer_year(m, p)))
                    .filter(|y| YEARS.contains(y));
                let norm = match (y, d) {
                    (Some(y), Some(d)) => iso(y, m, d),
                    (Some(y), None) => Some(format!("{y:04}-{m:02}")),
                    _ => None,
                };
                out.push(span(end, EntityType::Date, norm));
                i = end;
                continue;
            }
        }
        // Weekdays: the day of the publication week (ISO week, Monday first).
        if let Some(wd) = weekday_name(w(i)) {
            let norm = published.and_then(|p| {
                let monday =
                    p.checked_sub_days(Days::new(u64::from(p.weekday().num_days_from_monday())))?;
                ymd(monday.checked_add_days(Days::new(u64::from(wd.num_days_from_monday())))?)
            });
            out.push(span(i + 1, EntityType::Date, norm));
            i += 1;
            continue;
        }
        let mut buf = [0u8; 12];
        let lw = ascii_lower(w(i), &mut buf);
        if let Some(off) = match lw {
            "today" => Some(0),
            "yesterday" => Some(-1),
            "tomorrow" => Some(1),
            _ => None,
        } {
            let norm = published.and_then(|p| ymd(add_days(p, off)?));
            out.push(span(i + 1, EntityType::Date, norm));
            i += 1;
            continue;
        }
        if matches!(lw, "last" | "this" | "next") && matches!(w(i + 1), "year" | "week" | "month") {
            let delta = match lw {
                "last" => -1,
                "next" => 1,
                _ => 0,
            };
            let norm = published.and_then(|p| match w(i + 1) {
                "year" => {
                    let y = p.year() + delta;
                    YEARS.contains(&y).then(|| format!("{y:04}"))
                }
                "month" => {
                    let idx = p.year() * 12 + p.month0() as i32 + delta;
                    let y = idx.div_euclid(12);
                    YEARS
                        .contains(&y)
                        .then(|| format!("{y:04}-{:02}", idx.rem_euclid(12) + 1))
                }
                _ => {
                    let iw = add_days(p, 7 * i64::from(delta))?.iso_week();
                    YEARS
                        .contains(&iw.year())
                        .then(|| format!("{:04}-W{:02}", iw.year(), iw.week()))
                }
            });
            out.push(span(i + 2, EntityType::Date, norm));
            i += 2;
            continue;
        }
        // A year after a preposition: "in 2019".
        if let Some(y) = year_number(w(i))
            && i > 0
            && matches!(
                w(i - 1).to_lowercase().as_str(),
                "in" | "since" | "until" | "by" | "from" | "during" | "before" | "after" | "of"
            )
        {
            out.push(span(i + 1, EntityType::Date, Some(format!("{y:04}"))));
            i += 1;
            continue;
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str, published: &str) -> Vec<(String, EntityType, Option<String>)> {
        let words: Vec<&str> = text.split(' ').collect();
        let p = NaiveDate::parse_from_str(published, "%Y-%m-%d").ok();
        find(&words, p)
            .into_iter()
            .map(|s| (words[s.start..s.end].join(" "), s.kind, s.normalized))
            .collect()
    }

    fn d(s: &str) -> Option<String> {
        Some(s.to_string())
    }

    #[test]
    fn month_day_resolves_against_publication_year() {
        assert_eq!(
            run("talks in Moscow on November 8 .", "2022-11-03"),
            vec![("November 8".into(), EntityType::Date, d("2022-11-08"))]
        );
        assert_eq!(
            run("On October 10 , within", "2022-11-03")[0].2,
            d("2022-10-10")
        );
        assert_eq!(
            run("on 8th November 2021", "2022-11-03")[0].2,
            d("2021-11-08")
        );
        assert_eq!(
            run("since Nov. 8 , 2020 ,", "2022-11-03")[0].2,
            d("2020-11-08")
        );
        // A January article talking about December means last December.
        assert_eq!(run("on December 30", "2023-01-04")[0].2, d("2022-12-30"));
    }

    #[test]
    fn weekdays_resolve_to_the_publication_week() {
        // 2022-11-03 was a Thursday.
        assert_eq!(
            run("Ministry on Thursday said", "2022-11-03")[0].2,
            d("2022-11-03")
        );
        assert_eq!(
            run("On Wednesday , Russian", "2022-11-03")[0].2,
            d("2022-11-02")
        );
        assert_eq!(run("yesterday", "2022-11-03")[0].2, d("2022-11-02"));
    }

    #[test]
    fn bare_months_need_context_and_relative_years_resolve() {
        assert_eq!(
            run("visited India in April during", "2022-11-03")[0].2,
            d("2022-04")
        );
        assert!(run("May I ask", "2022-11-03").is_empty());
        assert!(run("troops march on", "2022-11-03").is_empty());
        assert_eq!(
            run("in December last year to", "2022-11-03"),
            vec![("December last year".into(), EntityType::Date, d("2021-12"))]
        );
        assert_eq!(run("to travel this year .", "2022-11-03")[0].2, d("2022"));
        assert_eq!(run("founded in 1996 by", "2022-11-03")[0].2, d("1996"));
        // Without a publication date, only explicit years normalize.
        assert_eq!(run("on November 8", "")[0].2, None);
        assert_eq!(run("on November 8 , 2022", "")[0].2, d("2022-11-08"));
    }

    #[test]
    fn money_and_percent_normalize() {
        assert_eq!(
            run("paid $ 1.5 billion and 20 million euros", "2022-11-03"),
            vec![
                (
                    "$ 1.5 billion".into(),
                    EntityType::Money,
                    d("USD 1500000000")
                ),
                (
                    "20 million euros".into(),
                    EntityType::Money,
                    d("EUR 20000000")
                )
            ]
        );
        assert_eq!(run("Rs 500 crore", "")[0].2, d("INR 5000000000"));
        assert_eq!(
            run("rose 9.5 % and 3 per cent , 2 percentage points", ""),
            vec![
                ("9.5 %".into(), EntityType::Percent, d("9.5%")),
                ("3 per cent".into(), EntityType::Percent, d("3%")),
                ("2 percentage points".into(), EntityType::Percent, d("2%"))
            ]
        );
    }

    #[test]
    fn relative_dates_at_the_ends_of_the_calendar_neither_panic_nor_leave_four_digit_years() {
        let words: Vec<&str> = "today tomorrow yesterday Friday Monday next week last week \
                                next month last month next year last year in April"
            .split(' ')
            .collect();
        for p in [NaiveDate::MAX, NaiveDate::MIN] {
            let spans = find(&words, Some(p));
            assert!(!spans.is_empty());
            assert!(spans.iter().all(|s| s.normalized.is_none()), "{spans:?}");
        }
        // The last day of year 9999: "tomorrow" would be in year 10000, so it stays unresolved.
        let last = NaiveDate::from_ymd_opt(9999, 12, 31);
        assert_eq!(find(&["tomorrow"], last)[0].normalized, None);
        assert_eq!(find(&["today"], last)[0].normalized, d("9999-12-31"));
    }

    #[test]
    fn odd_input_does_not_panic() {
        for t in [
            "",
            "$",
            "November",
            "31 February",
            "9999-99-99 %",
            "on 99 November",
            "0000-01-01",
        ] {
            let _ = run(t, "2022-11-03");
            let _ = run(t, "");
        }
    }
}
