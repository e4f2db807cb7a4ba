//! Short lines around the article that are page chrome, not its text: the headline repeated
//! above the body, a dateline, a byline, a copyright notice. Checked on each kept block as
//! the output is joined, so only the chosen content is looked at.
//!
//! Bounds: a block is only examined when it has at most [`MAX_CHROME_CHARS`] characters,
//! so each check costs a constant; the headline check compares with a title of at most
//! [`MAX_TITLE_CHARS`] characters.

/// Longest block that can be a chrome line; article sentences are longer.
pub const MAX_CHROME_CHARS: usize = 200;
/// Longest title compared with the leading blocks.
pub const MAX_TITLE_CHARS: usize = 400;
/// The headline, dateline and byline are looked for among this many leading blocks.
pub const HEAD_BLOCKS: usize = 4;

/// Whether the `index`-th kept block (0-based) is chrome, given the page's titles.
pub(super) fn is_chrome(text: &str, index: usize, titles: &[Option<&str>]) -> bool {
    if text.len() > 4 * MAX_CHROME_CHARS || text.chars().count() > MAX_CHROME_CHARS {
        return false;
    }
    let lower = text.to_lowercase();
    is_copyright(&lower)
        || (index < HEAD_BLOCKS
            && (is_dateline(&lower)
                || is_byline(&lower)
                || titles.iter().any(|t| repeats_title(&lower, *t))))
}

/// "© 2008 AAP", "Copyright 2007 The Associated Press. All rights reserved."
fn is_copyright(lower: &str) -> bool {
    lower.starts_with('©')
        || lower.starts_with("(c)")
        || lower.starts_with("copyright")
        || lower.contains("all rights reserved")
}

fn words(lower: &str) -> impl Iterator<Item = &str> {
    lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
}

const MONTHS_AND_DAYS: &[&str] = &[
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
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "mon",
    "tue",
    "wed",
    "thu",
    "fri",
    "sat",
    "sun",
];

/// A short line that is mostly a date: "Saturday, January 5th 2008, 6:43 PM",
/// "Published: Friday, January 18, 2008", "28/12/2007 11:27".
fn is_dateline(lower: &str) -> bool {
    if lower.chars().count() > 70 || words(lower).count() > 12 {
        return false;
    }
    let year = words(lower).any(|w| {
        w.len() == 4 && (w.starts_with("19") || w.starts_with("20")) && w.parse::<u16>().is_ok()
    });
    let numeric_date = lower
        .as_bytes()
        .windows(3)
        .any(|w| w[0].is_ascii_digit() && (w[1] == b'/' || w[1] == b'.') && w[2].is_ascii_digit());
    let named = words(lower).any(|w| MONTHS_AND_DAYS.contains(&w));
    (year && (named || numeric_date)) || (numeric_date && lower.matches(['/', '.']).count() >= 2)
}

/// "By Kurt Orzeck", "By the Associated Press".
fn is_byline(lower: &str) -> bool {
    lower.chars().count() <= 60 && lower.starts_with("by ") && words(lower).count() <= 7
}

/// The headline above the body: three words or more, all found in order in the title.
fn repeats_title(lower: &str, title: Option<&str>) -> bool {
    let Some(title) = title.filter(|t| t.chars().count() <= MAX_TITLE_CHARS) else {
        return false;
    };
    let line: Vec<&str> = words(lower).collect();
    if line.len() < 3 {
        return false;
    }
    let title = title.to_lowercase();
    let title: Vec<&str> = words(&title).collect();
    title.windows(line.len()).any(|w| w == line.as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::html::extract;

    #[test]
    fn datelines_bylines_and_copyright_lines_are_chrome() {
        for line in [
            "Saturday, January 5th 2008, 6:43 PM",
            "Published: Friday, January 18, 2008",
            "POSTED: 2:35 pm PST December 30, 2007",
            "28/12/2007 11:27 -(SA)",
            "By the Associated Press",
            "© 2008 AAP",
            "Copyright 2007 The Associated Press. All rights reserved.",
        ] {
            assert!(is_chrome(line, 0, &[]), "{line}");
        }
        // Dates and bylines only at the head; sentences never.
        assert!(!is_chrome("By the Associated Press", HEAD_BLOCKS, &[]));
        for line in [
            "The vote is set for March 4, 2008, and the count will take a week or more.",
            "By the end of the year the company had hired 2008 people.",
            "Sales rose in 2007.",
        ] {
            assert!(!is_chrome(line, 0, &[]), "{line}");
        }
    }

    #[test]
    fn a_leading_line_found_in_the_title_is_the_headline() {
        let title = &[
            None,
            Some("Halifax, The Daily News: Sports | Rocket down Eagles"),
        ];
        assert!(is_chrome("Rocket down Eagles", 1, title));
        assert!(!is_chrome("Rocket down Eagles", HEAD_BLOCKS, title));
        assert!(!is_chrome("Eagles", 0, title));
        assert!(!is_chrome("Rocket down the Eagles", 0, title));
    }

    #[test]
    fn chrome_around_the_article_is_left_out() {
        let para = "<p>Words of the article, with a comma, and enough of them to count.</p>";
        let html = format!(
            "<title>Site | Rocket down Eagles</title><body><div><p>Rocket down Eagles</p>\
             <p>By Staff Writer</p><p>Saturday, January 5th 2008, 6:43 PM</p>{}\
             <p>© 2008 The Daily News. All rights reserved.</p></div></body>",
            para.repeat(8)
        );
        let e = extract(&html);
        assert!(e.text.starts_with("Words of the article"), "{}", e.text);
        assert!(e.text.ends_with("to count."), "{}", e.text);
    }
}
