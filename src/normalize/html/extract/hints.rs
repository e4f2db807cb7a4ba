//! Class and id hints: the patterns that mark an element as an unlikely candidate or weigh
//! it as content or boilerplate.

use super::MAX_HINT_BYTES;
use crate::normalize::html::tokenizer::Tag;

/// Lowercased class and id, at most [`MAX_HINT_BYTES`].
pub(super) fn hint_string(tag: &Tag<'_>) -> (String, String) {
    let mut class = String::new();
    let mut id = String::new();
    for (name, value) in tag.attrs() {
        let target = if name.eq_ignore_ascii_case("class") {
            &mut class
        } else if name.eq_ignore_ascii_case("id") {
            &mut id
        } else {
            continue;
        };
        if target.is_empty() {
            let cut = value.len().min(MAX_HINT_BYTES);
            let cut = (0..=cut)
                .rev()
                .find(|&i| value.is_char_boundary(i))
                .unwrap_or(0);
            *target = value[..cut].to_ascii_lowercase();
        }
    }
    (class, id)
}

pub(super) const UNLIKELY: &[&str] = &[
    "-ad-",
    "ai2html",
    "banner",
    "breadcrumb",
    "combx",
    "comment",
    "community",
    "cover-wrap",
    "disqus",
    "extra",
    "footer",
    "gdpr",
    "header",
    "legends",
    "menu",
    "related",
    "remark",
    "replies",
    "rss",
    "shoutbox",
    "sidebar",
    "skyscraper",
    "social",
    "sponsor",
    "supplemental",
    "ad-break",
    "agegate",
    "pagination",
    "pager",
    "popup",
    "yom-remote",
    "cookie",
    "consent",
    "newsletter",
    "share",
    "sharing",
    "subscribe",
    "promo",
    "navbar",
    "nav-",
    "outbrain",
    "taboola",
    "recommend",
    "most-popular",
    "trending",
    "paywall",
];
pub(super) const MAYBE: &[&str] = &[
    "and", "article", "body", "column", "content", "main", "mathjax", "shadow",
];
const POSITIVE: &[&str] = &[
    "article",
    "body",
    "content",
    "entry",
    "hentry",
    "h-entry",
    "main",
    "page",
    "pagination",
    "post",
    "text",
    "blog",
    "story",
];
const NEGATIVE: &[&str] = &[
    "-ad-",
    "hidden",
    "banner",
    "combx",
    "comment",
    "com-",
    "contact",
    "footer",
    "gdpr",
    "masthead",
    "media",
    "meta",
    "outbrain",
    "promo",
    "related",
    "scroll",
    "share",
    "shoutbox",
    "sidebar",
    "skyscraper",
    "sponsor",
    "shopping",
    "tags",
    "widget",
    "cookie",
    "newsletter",
    "byline",
    "author",
    "caption",
    // Left out when the page is printed: never the article.
    "noprint",
    "no-print",
    "no_print",
    "hide-print",
    "print-hide",
    "d-print-none",
];

/// A comment section or a comment: a class or id word that starts with `comment` but not
/// `commentar` (`comments`, `comment-content`, `commentbody`; not `commentary`, an opinion
/// section) or has `comment(s)` as a part (`epoch-comment-body`, `page-comments`), other
/// than a state such as `comments-closed`. Unlike the other unlikely hints, "maybe" words
/// such as `body` or `content` do not save it: `comments-body` is the comments' body.
pub(super) fn is_comment_section(hints: &str) -> bool {
    hints.split_whitespace().any(|w| {
        let state = ["-closed", "-open", "-off", "-disabled", "-count"]
            .iter()
            .any(|s| w.ends_with(s));
        let comment_word = w.starts_with("comment") && !w.starts_with("commentar");
        let comment_part = w
            .split(['-', '_'])
            .any(|p| p == "comment" || p == "comments");
        !state && (comment_word || comment_part)
    })
}

pub(super) fn matches_any(s: &str, patterns: &[&str]) -> bool {
    !s.is_empty() && patterns.iter().any(|p| s.contains(p))
}

pub(super) fn class_weight(s: &str) -> i16 {
    let mut w = 0;
    if matches_any(s, NEGATIVE)
        || s.split([' ', '-', '_'])
            .any(|w| w == "hid" || w == "ad" || w == "ads")
    {
        w -= 25;
    }
    if matches_any(s, POSITIVE) {
        w += 25;
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::html::extract;

    #[test]
    fn comment_words_mark_a_comment_section_even_beside_maybe_words() {
        for hints in [
            "comments-body ",
            "x comment-content",
            " commentbody",
            "epoch-comment-body",
        ] {
            assert!(is_comment_section(hints), "{hints}");
        }
        for hints in ["article-body main", "recommend", "uncommented", " "] {
            assert!(!is_comment_section(hints), "{hints}");
        }
    }

    #[test]
    fn what_the_page_does_not_print_is_not_the_article() {
        let para = "<p>Words of the article, with a comma, and enough of them to count.</p>";
        let html = format!(
            "<body><div>{}<div class=noprint><p>Tell a friend about this story today</p></div></div></body>",
            para.repeat(8)
        );
        let e = extract(&html);
        assert!(e.text.starts_with("Words of the article"), "{}", e.text);
        assert!(!e.text.contains("Tell a friend"), "{}", e.text);
        assert!(class_weight("nav noprint") < 0);
    }

    #[test]
    fn commentary_and_comment_states_are_not_comment_sections() {
        assert!(is_comment_section("comments-body"));
        assert!(is_comment_section("post epoch-comment-body"));
        assert!(!is_comment_section("commentary article-body"));
        assert!(!is_comment_section("entry-content comments-closed"));
    }

    #[test]
    fn a_short_article_keeps_out_its_comments_and_what_is_not_printed() {
        // Under the retry threshold every pass runs; the looser ones bring the comments and
        // the print-hidden box back, which must not win on length alone.
        let para = "<p>Words of the article, with a comma, and enough of them to count.</p>";
        let comment = "<p>A reader's comment, quite long, with commas, and opinions, too.</p>";
        let html = format!(
            "<body><div class=blog>{}<div class=noprint><p>Tell a friend about this story \
             today</p></div><div class=comments-body>{}</div></div></body>",
            para.repeat(3),
            comment.repeat(2)
        );
        let e = extract(&html);
        assert!(e.text.starts_with("Words of the article"), "{}", e.text);
        assert!(!e.text.contains("reader's comment"), "{}", e.text);
        assert!(!e.text.contains("Tell a friend"), "{}", e.text);
    }

    #[test]
    fn a_comments_body_is_left_out_of_the_article() {
        let para = "<p>Words of the article, with a comma, and enough of them to count.</p>";
        let comment = "<p>A reader's comment, quite long, with commas, and opinions, too.</p>";
        let html = format!(
            "<body><div class=blog>{}<div class=comments-body>{}</div></div></body>",
            para.repeat(8),
            comment.repeat(6)
        );
        let e = extract(&html);
        assert!(e.text.starts_with("Words of the article"), "{}", e.text);
        assert!(!e.text.contains("reader's comment"), "{}", e.text);
    }
}
