//! Main-content extraction: the article's paragraphs and headings, without navigation,
//! footers, related links, share bars, cookie banners or comments.
//!
//! Readability-style scoring, built on the bounded [`walk`](super::walk) rather than a DOM:
//! one pass records the elements (parent, tag, class/id weight, whether hidden or an
//! unlikely candidate such as `nav` or `class="comments"`) and the text blocks (one per
//! paragraph, with its length, link length and commas), then a few linear passes score
//! paragraphs into their ancestors, pick the best container with its worthy siblings, and
//! drop link-heavy or negatively weighted parts inside it. Elements are numbered in
//! document order and each knows the range of elements and blocks it contains, so "is this
//! inside that" is two comparisons and no pass ever walks a tree.
//!
//! Bounds: elements and blocks are at most one per tag, so memory is linear in the input;
//! ancestors scored per paragraph are at most [`SCORED_ANCESTORS`]; class and id values are
//! read up to [`MAX_HINT_BYTES`]; every other pass is a loop over the elements or blocks,
//! and scoring and joining run at most once per pass of the ladder (four), keeping at most
//! two joined texts.

mod chrome;
mod collect;
mod fallback;
mod hints;
mod nodes;
mod score;

use super::meta::{MetaCollector, PageMeta};
use super::walk;
use collect::Collector;
use fallback::fallback;
use nodes::{Block, NONE, Tag8};
use score::{Pass, choose};

/// How many ancestors of a paragraph receive its score (readability's default).
pub const SCORED_ANCESTORS: usize = 5;
/// Longest class + id string matched against the hint patterns.
pub const MAX_HINT_BYTES: usize = 256;
/// Below this many characters the extracted content is not trusted and the whole page's
/// text is used instead.
pub const MIN_CONTENT_CHARS: usize = 140;
/// Below this many characters, extraction is tried again by a looser pass
/// ([`score::Pass::LADDER`]: unlikely candidates kept, then class weights off, then the
/// clean-up off).
pub const RETRY_BELOW_CHARS: usize = 500;
/// A looser pass's text replaces a stricter one's only when it is this many times longer.
pub const LOOSER_PASS_FACTOR: usize = 2;

/// How the body was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// The main content block of the page.
    MainContent,
    /// The page's JSON-LD `articleBody` (no main content in the markup).
    StructuredData,
    /// The text of the whole page (no main content was found).
    WholePage,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::MainContent => "main_content",
            Method::StructuredData => "structured_data",
            Method::WholePage => "whole_page",
        }
    }
}

/// The result of extracting a page.
#[derive(Debug, Clone, PartialEq)]
pub struct Extraction {
    /// Paragraphs separated by a blank line.
    pub text: String,
    pub method: Method,
    /// For [`Method::MainContent`]: how clearly the chosen block won, 0 to 1.
    pub confidence: Option<f32>,
    /// For [`Method::StructuredData`] and [`Method::WholePage`]: why the markup's main
    /// content was not used.
    pub fallback_reason: Option<&'static str>,
    pub meta: PageMeta,
}

/// Extracts the main content and metadata of an HTML page.
pub fn extract(html: &str) -> Extraction {
    let mut c = Collector {
        nodes: Vec::new(),
        blocks: Vec::new(),
        stack: Vec::new(),
        buf: String::with_capacity(html.len().min(1 << 20) / 4),
        decoded: String::new(),
        block_start: 0,
        chars: 0,
        link_chars: 0,
        byline_chars: 0,
        commas: 0,
        space: false,
        counts: [0; 5],
        meta: MetaCollector::default(),
    };
    walk::walk(html, &mut c);
    c.flush();
    let Collector {
        nodes,
        blocks,
        buf,
        meta,
        ..
    } = c;
    let h1 = blocks
        .iter()
        .find(|b| b.owner != NONE && nodes[b.owner as usize].tag == Tag8::Heading(1))
        .map(|b| &buf[b.start as usize..b.end as usize]);
    // Mostly byline text, short, and not in a comment section or other unlikely part.
    let bylines: Vec<&str> = blocks
        .iter()
        .filter(|b| {
            b.owner != NONE
                && b.chars <= 100
                && b.byline_chars * 2 >= b.chars
                && !nodes[b.owner as usize].dropped(true)
        })
        .map(|b| &buf[b.start as usize..b.end as usize])
        .take(8)
        .collect();
    let title_tag = meta.title_tag();
    let meta = meta.finish(h1, &bylines);
    let titles = [meta.title.as_deref(), title_tag.as_deref()];
    // As readability: first without unlikely candidates; if that gives too little, again
    // with them (a page whose article sits in a `class="...sidebar..."` layout wrapper),
    // then without class weights, then without the conditional clean-up (a 2000s table
    // layout whose text runs between `<br>`s in a cell full of spacer images). A looser
    // pass replaces a stricter one's text only when it finds [`LOOSER_PASS_FACTOR`] times
    // as much: a short article plus the comments or print-hidden boxes the stricter pass
    // left out is not a better answer.
    // (text, confidence, characters)
    let mut best: Option<(String, f32, usize)> = None;
    for pass in Pass::LADDER {
        let Some((keep, confidence)) = choose(&nodes, &blocks, pass) else {
            continue;
        };
        let text = join(&buf, &blocks, &keep, titles);
        let chars = text.chars().count();
        if best
            .as_ref()
            .is_none_or(|b| chars >= LOOSER_PASS_FACTOR * b.2.max(1))
        {
            best = Some((text, confidence, chars));
        }
        if best.as_ref().is_some_and(|b| b.2 >= RETRY_BELOW_CHARS) {
            break;
        }
    }
    match best {
        Some((text, confidence, chars)) if chars >= MIN_CONTENT_CHARS => Extraction {
            text,
            method: Method::MainContent,
            confidence: Some(confidence),
            fallback_reason: None,
            meta,
        },
        Some(_) => fallback(&buf, &blocks, meta, "main content too short"),
        None => fallback(&buf, &blocks, meta, "no scored paragraphs"),
    }
}

/// The kept blocks, one paragraph each, without the chrome lines around the article (see
/// [`chrome`]: a leading headline, dateline or byline, a copyright line).
fn join(buf: &str, blocks: &[Block], keep: &[bool], titles: [Option<&str>; 2]) -> String {
    let mut out = String::new();
    let kept = blocks.iter().zip(keep).filter(|(_, k)| **k);
    for (index, (b, _)) in kept.enumerate() {
        let text = &buf[b.start as usize..b.end as usize];
        if chrome::is_chrome(text, index, &titles) {
            continue;
        }
        if !out.is_empty() {
            out.push_str("\n\n");
        }
        out.push_str(text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn content_the_clean_up_would_empty_is_found_by_a_later_pass() {
        // Text between `<br>`s beside spacer images: readability's clean-up removes the
        // cell (more images than paragraphs), so only the pass without it finds the article.
        // No commas: ten or more would exempt the cell from the clean-up.
        let para = "Words of the article and enough of them to count. ";
        let html = format!(
            "<body><nav><a href=/a>Home</a> <a href=/b>News</a></nav>\
             <div><div>{a}<br><br>{a}<br><br>{a}<img src=s.gif><img src=t.gif></div></div>\
             <footer>Contact us at the newsroom</footer></body>",
            a = para.repeat(3)
        );
        let e = extract(&html);
        assert_eq!(e.method, Method::MainContent, "{}", e.text);
        assert!(e.text.starts_with("Words of the article"), "{}", e.text);
        assert!(!e.text.contains("Contact us"), "{}", e.text);
    }

    #[test]
    fn rows_of_a_layout_table_are_judged_with_their_table() {
        // Each row holds the text between two spacer images: judged alone, a row has more
        // images than paragraphs and would go; the sponsor cell still goes.
        let para = "Words of the article, with a comma, and enough of them to count. ";
        let row = format!(
            "<tr><td><img src=s.gif></td><td>{}</td><td><img src=t.gif></td></tr>",
            para.repeat(3)
        );
        let html = format!(
            "<body><div><table>{}<tr><td><div>Sponsored message</div></td></tr></table></div></body>",
            row.repeat(4)
        );
        let e = extract(&html);
        assert_eq!(e.method, Method::MainContent, "{}", e.text);
        assert_eq!(
            e.text.matches("Words of the article").count(),
            12,
            "{}",
            e.text
        );
        assert!(!e.text.contains("Sponsored"), "{}", e.text);
    }

    #[test]
    fn adversarial_pages_give_bounded_output() {
        let mib = 1_000_000;
        let fill = |prefix: String, unit: &str| {
            let n = (mib - prefix.len()) / unit.len();
            prefix + &unit.repeat(n)
        };
        let nested: String = (0..500).map(|i| format!("<b id={i}>")).collect();
        let cases = [
            fill(format!("<p>{nested}"), "<p>x"),
            fill(String::new(), "<blockquote>x"),
            fill(String::new(), "<ul><li>x"),
            fill(String::new(), "<div>"),
            fill(
                String::new(),
                "<div class=content><p>a, b, c, d, e, f, g, h, i, j, k, l, m",
            ),
            fill(String::new(), "<article><p>word, "),
            fill(String::new(), "<div class='comment share'><a>x</a>"),
            fill(
                String::new(),
                "<script type=application/ld+json>[[[[[[[[[[</script>",
            ),
            fill(String::new(), "<meta property=og:title content=x>"),
            // Hundreds of thousands of worthy siblings of the top candidate.
            fill(
                format!(
                    "<div><div><p>{}</p></div>",
                    "long text, with commas, ".repeat(10)
                ),
                "<p>x</p>",
            ),
        ];
        for html in &cases {
            let e = extract(html);
            assert!(e.text.len() <= super::super::MAX_EXPANSION * html.len() + 1);
        }
    }

    proptest! {
        #[test]
        fn any_markup_extracts_without_panic(
            parts in proptest::collection::vec(
                "<(p|div|a|article|nav|li|ul|h1|meta|title|script|section)( (class|id|role|content|property)=('[a-z ,:]{0,12}'|[a-z]{0,5}))*/?>|</[a-z1]{1,7}>|[^<]{0,40}",
                0..80,
            )
        ) {
            let s: String = parts.concat();
            let e = extract(&s);
            prop_assert!(e.text.len() <= super::super::MAX_EXPANSION * s.len() + 1);
        }
    }
}
