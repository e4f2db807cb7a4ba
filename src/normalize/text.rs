//! Text clean-up: mojibake, HTML entities, whitespace, page chrome.

use super::date::year_number;

/// Windows-1252 code points for bytes 0x80..=0x9F (None where undefined).
const CP1252_HIGH: [Option<char>; 32] = [
    Some('€'),
    None,
    Some('‚'),
    Some('ƒ'),
    Some('„'),
    Some('…'),
    Some('†'),
    Some('‡'),
    Some('ˆ'),
    Some('‰'),
    Some('Š'),
    Some('‹'),
    Some('Œ'),
    None,
    Some('Ž'),
    None,
    None,
    Some('‘'),
    Some('’'),
    Some('“'),
    Some('”'),
    Some('•'),
    Some('–'),
    Some('—'),
    Some('˜'),
    Some('™'),
    Some('š'),
    Some('›'),
    Some('œ'),
    None,
    Some('ž'),
    None,
];

/// The byte a character had in Windows-1252 (or Latin-1), if any.
fn cp1252_byte(c: char) -> Option<u8> {
    let code = c as u32;
    if (0xA0..=0xFF).contains(&code) || (0x80..=0x9F).contains(&code) {
        return u8::try_from(code).ok();
    }
    CP1252_HIGH
        .iter()
        .position(|&m| m == Some(c))
        .and_then(|i| u8::try_from(0x80 + i).ok())
}

/// Repairs UTF-8 text that was decoded as Windows-1252 ("â€™" → "’", "Ã©" → "é"):
/// each run of non-ASCII characters that re-encodes to valid multi-byte UTF-8 is replaced.
pub fn fix_mojibake(text: &str) -> String {
    if !text
        .chars()
        .any(|c| matches!(c, 'Ã' | 'â' | 'Â' | 'Ð' | 'Ñ' | 'Å'))
    {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut run: Vec<u8> = Vec::new();
    let mut run_text = String::new();
    let flush = |run: &mut Vec<u8>, run_text: &mut String, out: &mut String| {
        match std::str::from_utf8(run) {
            Ok(fixed) if !run.is_empty() && fixed.chars().count() < run_text.chars().count() => {
                out.push_str(fixed)
            }
            _ => out.push_str(run_text),
        }
        run.clear();
        run_text.clear();
    };
    for c in text.chars() {
        match cp1252_byte(c) {
            Some(b) => {
                run.push(b);
                run_text.push(c);
            }
            None => {
                flush(&mut run, &mut run_text, &mut out);
                out.push(c);
            }
        }
    }
    flush(&mut run, &mut run_text, &mut out);
    out
}

/// Decodes HTML entities (`&amp;`, `&#8217;`, `&rsquo;`) left in text fields.
pub fn decode_entities(text: &str) -> String {
    if text.contains('&') {
        html_escape::decode_html_entities(text).into_owned()
    } else {
        text.to_string()
    }
}

/// Lines that are page chrome rather than article, matched case-insensitively at the start
/// of a short line.
const BOILERPLATE_PREFIXES: &[&str] = &[
    "leave a reply",
    "leave a comment",
    "your email address will not be published",
    "required fields are marked",
    "back to top",
    "share this",
    "share on ",
    "share via",
    "click to share",
    "subscribe to",
    "subscribe now",
    "sign up for our",
    "sign up to our",
    "follow us on",
    "related articles",
    "related posts",
    "read more:",
    "also read:",
    "advertisement",
    "skip to content",
    "cancel reply",
    "post comment",
    "we use cookies",
    "accept cookies",
];

/// Chrome lines are short; an article sentence that merely starts like one is longer.
const BOILERPLATE_MAX_CHARS: usize = 120;

/// Whether a (trimmed) line is page chrome.
pub fn is_boilerplate(line: &str) -> bool {
    if line.chars().count() > BOILERPLATE_MAX_CHARS {
        return false;
    }
    let lower = line.to_lowercase();
    BOILERPLATE_PREFIXES.iter().any(|p| lower.starts_with(p))
        || is_copyright_lower(&lower)
        || matches!(
            lower.as_str(),
            "share" | "tweet" | "email" | "print" | "subscribe" | "comments"
        )
}

/// Longest line taken for a copyright notice.
const COPYRIGHT_MAX_CHARS: usize = 200;

/// A copyright notice: "© 2008 AAP", "Copyright 2007 The Associated Press. All rights
/// reserved.", "(c) 2008 Reuters". A line that merely starts with "Copyright" or "(c)" (a
/// sentence about copyright, a lettered list item) needs a `©` or a year as well.
pub fn is_copyright(line: &str) -> bool {
    if line.len() > 4 * COPYRIGHT_MAX_CHARS || line.chars().count() > COPYRIGHT_MAX_CHARS {
        return false;
    }
    is_copyright_lower(&line.trim().to_lowercase())
}

/// [`is_copyright`] of a line already lower-cased and trimmed.
fn is_copyright_lower(lower: &str) -> bool {
    let has_year = lower
        .split(|c: char| !c.is_ascii_digit())
        .any(|w| year_number(w).is_some());
    lower.starts_with('©')
        || lower.contains("all rights reserved")
        || ((lower.starts_with("copyright") || lower.starts_with("(c)"))
            && (lower.contains('©') || has_year))
}

/// Collapses runs of whitespace inside a line to one space and trims it.
pub fn collapse_line(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    for word in line
        .split(|c: char| c.is_whitespace() || c == '\u{200b}')
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Cleans a body: mojibake and entities fixed, control characters dropped, whitespace
/// collapsed, chrome lines removed, paragraphs separated by one blank line.
pub fn clean_body(text: &str) -> String {
    clean_paragraphs(&decode_entities(&fix_mojibake(text)))
}

/// Cleans text whose entities are already decoded (HTML converted to text): mojibake fixed,
/// control characters dropped, whitespace collapsed, chrome lines removed, paragraphs
/// separated by one blank line. Decoding again would turn a literal `&amp;lt;` into `<`.
pub fn clean_decoded_body(text: &str) -> String {
    clean_paragraphs(&fix_mojibake(text))
}

fn clean_paragraphs(fixed: &str) -> String {
    let mut paragraphs: Vec<String> = Vec::new();
    for line in fixed.lines() {
        let line: String = line
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let line = collapse_line(&line);
        if !line.is_empty() && !is_boilerplate(&line) {
            paragraphs.push(line);
        }
    }
    paragraphs.join("\n\n")
}

/// Cleans a one-line field such as a title.
pub fn clean_line(text: &str) -> String {
    line_without_controls(&decode_entities(&fix_mojibake(text)))
}

/// [`clean_line`] for text whose entities are already decoded (page metadata): decoding
/// again would turn a literal `&amp;lt;` into `<`.
pub fn clean_decoded_line(text: &str) -> String {
    line_without_controls(&fix_mojibake(text))
}

fn line_without_controls(fixed: &str) -> String {
    let no_controls: String = fixed
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    collapse_line(&no_controls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copyright_notices_are_chrome_and_sentences_about_copyright_are_not() {
        for line in [
            "© 2022 Reuters",
            "Copyright 2007 The Associated Press. All rights reserved.",
            "(c) 2008 AAP",
            "Copyright © Example Media",
        ] {
            assert!(is_copyright(line) && is_boilerplate(line), "{line}");
        }
        for line in [
            "Copyright lawsuits rose sharply last year, the report said.",
            "(c) any person who sells a firearm to a minor;",
            "The case went to court in 2008.",
        ] {
            assert!(!is_copyright(line) && !is_boilerplate(line), "{line}");
        }
    }

    #[test]
    fn mojibake_is_repaired() {
        assert_eq!(fix_mojibake("Moscowâ€™s concern"), "Moscow’s concern");
        assert_eq!(
            fix_mojibake("cafÃ© â€œdirtyâ€\u{9d} bomb"),
            "café “dirty” bomb"
        );
        assert_eq!(
            fix_mojibake("plain café and naïve Â"),
            "plain café and naïve Â"
        );
    }

    #[test]
    fn entities_are_decoded() {
        assert_eq!(
            clean_line("Tom &amp; Jerry&#8217;s &rsquo;"),
            "Tom & Jerry’s ’"
        );
    }

    #[test]
    fn chrome_lines_are_stripped_but_sentences_kept() {
        let body = "First para.\n\nLeave a Reply\n\nYour email address will not be published. Required fields are marked *\n\nBack to top button\nShare this article with friends who subscribe to the paper, said the long sentence that goes on and on and on beyond any chrome line length.";
        let cleaned = clean_body(body);
        assert!(
            cleaned.starts_with("First para.\n\nShare this article"),
            "{cleaned}"
        );
        assert!(!cleaned.contains("Leave a Reply"));
    }

    #[test]
    fn whitespace_is_collapsed() {
        assert_eq!(clean_body("  a \t b  \r\n\n\n\n c\u{a0} d "), "a b\n\nc d");
    }
}
