//! When the markup has no main content: the JSON-LD `articleBody`, else the whole page.

use super::nodes::Block;
use super::{Extraction, MIN_CONTENT_CHARS, Method, join};
use crate::normalize::html::meta::PageMeta;

/// No main content in the markup: the JSON-LD `articleBody` when there is one of some
/// length (pages rendered by scripts often carry it), else the whole page's text.
pub(super) fn fallback(
    buf: &str,
    blocks: &[Block],
    mut meta: PageMeta,
    reason: &'static str,
) -> Extraction {
    match meta.article_body.take() {
        Some(body) if body.chars().count() >= MIN_CONTENT_CHARS => Extraction {
            text: body,
            method: Method::StructuredData,
            confidence: None,
            fallback_reason: Some(reason),
            meta,
        },
        _ => whole_page(buf, blocks, meta, reason),
    }
}

fn whole_page(buf: &str, blocks: &[Block], meta: PageMeta, reason: &'static str) -> Extraction {
    let keep = vec![true; blocks.len()];
    Extraction {
        text: join(buf, blocks, &keep, [None, None]),
        method: Method::WholePage,
        confidence: None,
        fallback_reason: Some(reason),
        meta,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::html::extract;

    #[test]
    fn a_script_rendered_page_falls_back_to_its_json_ld_body() {
        let body = "The article text, long enough to count as an article body. ".repeat(4);
        let html = format!(
            r#"<script type="application/ld+json">{{"@type": "NewsArticle", "articleBody": "{body}"}}</script>
            <div id="root">Loading...</div>"#
        );
        let e = extract(&html);
        assert_eq!(e.method, Method::StructuredData);
        assert_eq!(e.text, body.trim());
        assert_eq!(e.fallback_reason, Some("no scored paragraphs"));
        let e = extract("<div id=root>Loading...</div>");
        assert_eq!(e.method, Method::WholePage);
        assert_eq!(e.text, "Loading...");
    }
}
