//! Short lines around the article that are page chrome, not its text: the headline repeated
//! above the body, a dateline, a byline, a copyright notice. Checked on each block as the
//! output is joined (the chosen content's, or the whole page's when extraction falls back).
//!
//! Bounds: a block is only examined when it has at most [`MAX_CHROME_CHARS`] characters,
//! so each check costs a constant; the headline check compares with a title of at most
//! [`MAX_TITLE_CHARS`] characters.

use crate::normalize::date::{month_name, weekday_name, year_number};
use crate::normalize::html::meta::byline_name;
use crate::normalize::text::is_copyright;

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
    is_copyright(text)
        || (index < HEAD_BLOCKS
            && (is_dateline(text)
                || is_byline(text)
                || titles.iter().any(|t| repeats_title(text, *t))))
}

fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
}

/// Lower-case words a dateline may hold besides its date ("updated at 6:43 pm on").
const DATELINE_WORDS: &[&str] = &[
    "am", "pm", "at", "on", "of", "the", "and", "th", "st", "nd", "rd",
];

/// A short line that is a date: "Saturday, January 5th 2008, 6:43 PM", "Published: Friday,
/// January 18, 2008", "28/12/2007 11:27". A year with a capitalised month or weekday name,
/// or a day/month/year of digits; and besides the date at most one other lower-case word, so
/// a sentence that mentions a date ("In March 2008 he joined the board.") is not one.
fn is_dateline(text: &str) -> bool {
    if text.chars().count() > 70 || words(text).count() > 12 {
        return false;
    }
    let year = words(text).any(|w| year_number(w).is_some());
    let named = words(text).any(|w| month_name(w).is_some() || weekday_name(w).is_some());
    let numeric_date = text.split_whitespace().any(|w| {
        let parts: Vec<&str> = w
            .trim_matches(|c: char| !c.is_ascii_digit())
            .split(['/', '.', '-'])
            .collect();
        parts.len() == 3
            && parts
                .iter()
                .all(|p| (1..=4).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
    });
    let other_words = words(text)
        .filter(|w| w.starts_with(|c: char| c.is_lowercase()))
        .filter(|w| !DATELINE_WORDS.contains(w))
        .count();
    ((year && named) || numeric_date) && other_words <= 1
}

/// "By Kurt Orzeck", "By the Associated Press": "By" and a name (the byline rule of the page's
/// metadata), its words capitalised but for small connecting words.
fn is_byline(text: &str) -> bool {
    let Some(rest) = ["By ", "BY ", "by "]
        .iter()
        .find_map(|p| text.strip_prefix(p))
    else {
        return false;
    };
    text.chars().count() <= 60
        && byline_name(text).is_some()
        && rest.split_whitespace().all(|w| {
            w.starts_with(|c: char| c.is_uppercase())
                || matches!(w, "the" | "and" | "of" | "de" | "van" | "von")
        })
}

/// The headline above the body: the title itself, or three words or more found as a run of
/// words in it (the title with the site's name around it).
fn repeats_title(text: &str, title: Option<&str>) -> bool {
    let Some(title) = title.filter(|t| t.chars().count() <= MAX_TITLE_CHARS) else {
        return false;
    };
    if text == title {
        return true;
    }
    let lower = text.to_lowercase();
    let line: Vec<&str> = words(&lower).collect();
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
            "Growth slowed to 2.1 percent.",
            "Shares rose 3.5% to 12.40 euros.",
            "She may run again in 2012.",
            "In 2008 he sat on the board.",
            "In March 2008 he joined the board.",
            "The Sun, 2008",
            "By the numbers",
            "By noon the fire had spread.",
            "(c) any person who sells a firearm to a minor;",
            "Copyright lawsuits rose sharply last year, the report said.",
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
        assert!(
            is_chrome("Eagles", 0, &[Some("Eagles")]),
            "a title of one word"
        );
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
