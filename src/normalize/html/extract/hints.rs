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
];

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
