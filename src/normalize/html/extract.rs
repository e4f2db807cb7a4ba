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
//! read up to [`MAX_HINT_BYTES`]; every other pass is a loop over the elements or blocks.

use super::meta::{MetaCollector, PageMeta};
use super::tokenizer::{Name, Tag};
use super::walk::{self, Break, Handler};

/// How many ancestors of a paragraph receive its score (readability's default).
pub const SCORED_ANCESTORS: usize = 5;
/// Longest class + id string matched against the hint patterns.
pub const MAX_HINT_BYTES: usize = 256;
/// Below this many characters the extracted content is not trusted and the whole page's
/// text is used instead.
pub const MIN_CONTENT_CHARS: usize = 140;
/// Below this many characters, extraction is tried again with unlikely candidates kept.
pub const RETRY_BELOW_CHARS: usize = 500;

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

/// Element categories the scoring cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag8 {
    P,
    Div,
    Section,
    Article,
    Pre,
    Td,
    Blockquote,
    List,
    Li,
    Heading(u8),
    Form,
    Table,
    A,
    Body,
    Other,
    OtherBlock,
}

impl Node {
    /// Left out of scoring and output: hidden, or (`strict`) an unlikely candidate.
    fn dropped(&self, strict: bool) -> bool {
        self.hidden || (strict && self.unlikely)
    }
}

impl Tag8 {
    fn of(name: &Name) -> Tag8 {
        match name.as_bytes() {
            b"p" => Tag8::P,
            b"div" => Tag8::Div,
            b"section" => Tag8::Section,
            b"article" | b"main" => Tag8::Article,
            b"pre" => Tag8::Pre,
            b"td" => Tag8::Td,
            b"blockquote" => Tag8::Blockquote,
            b"ul" | b"ol" | b"dl" => Tag8::List,
            b"li" | b"dd" | b"dt" => Tag8::Li,
            b"h1" => Tag8::Heading(1),
            b"h2" => Tag8::Heading(2),
            b"h3" => Tag8::Heading(3),
            b"h4" => Tag8::Heading(4),
            b"h5" => Tag8::Heading(5),
            b"h6" => Tag8::Heading(6),
            b"form" | b"fieldset" => Tag8::Form,
            b"table" => Tag8::Table,
            b"a" => Tag8::A,
            b"body" => Tag8::Body,
            _ if walk::is_block(name) => Tag8::OtherBlock,
            _ => Tag8::Other,
        }
    }

    /// Readability's initial score of a candidate container.
    fn base_score(self) -> f32 {
        match self {
            Tag8::Div | Tag8::Article => 5.0,
            Tag8::Pre | Tag8::Td | Tag8::Blockquote => 3.0,
            Tag8::List | Tag8::Li | Tag8::Form => -3.0,
            Tag8::Heading(_) => -5.0,
            _ => 0.0,
        }
    }

    /// Paragraph-like: a block directly in it is scored.
    fn scores_text(self) -> bool {
        matches!(
            self,
            Tag8::P
                | Tag8::Div
                | Tag8::Section
                | Tag8::Article
                | Tag8::Pre
                | Tag8::Td
                | Tag8::Blockquote
                | Tag8::Heading(2..=6)
                | Tag8::Body
                | Tag8::OtherBlock
        )
    }
}

const NONE: u32 = u32::MAX;

#[derive(Debug, Clone)]
struct Node {
    parent: u32,
    tag: Tag8,
    /// Class/id weight: +25 for a content hint, -25 for a boilerplate hint, each.
    weight: i16,
    /// Hidden (`hidden`, `aria-hidden`, `display:none`), or inside a hidden element.
    hidden: bool,
    /// An unlikely candidate (navigation, comments, share bar...), or inside one.
    unlikely: bool,
    /// In a byline element (`class="author"`, `rel="author"`, `itemprop="author"`).
    byline: bool,
    /// First element after this one that is not inside it.
    end_node: u32,
    first_block: u32,
    end_block: u32,
    /// Counts inside it: `<p>`, `<img>`, `<li>`, `<input>`, embeds (snapshot at open,
    /// replaced by the difference at close).
    counts: [u32; 5],
    /// Nearest ancestor-or-self that is a block element.
    block_owner: u32,
    in_link: bool,
    children: u32,
    /// Hash of the class attribute (0 when none), to spot siblings styled like the content.
    class_hash: u64,
}

#[derive(Debug, Clone)]
struct Block {
    start: u32,
    end: u32,
    /// The block element the text is in.
    owner: u32,
    chars: u32,
    link_chars: u32,
    /// Characters inside a byline element.
    byline_chars: u32,
    commas: u32,
}

const C_P: usize = 0;
const C_IMG: usize = 1;
const C_LI: usize = 2;
const C_INPUT: usize = 3;
const C_EMBED: usize = 4;

/// The walk handler that records elements, blocks and metadata.
struct Collector<'a> {
    nodes: Vec<Node>,
    blocks: Vec<Block>,
    /// Indices of open elements (parallel to the walker's stack).
    stack: Vec<u32>,
    buf: String,
    decoded: String,
    block_start: usize,
    chars: u32,
    link_chars: u32,
    byline_chars: u32,
    commas: u32,
    space: bool,
    counts: [u32; 5],
    meta: MetaCollector<'a>,
}

/// Lowercased class and id, at most [`MAX_HINT_BYTES`].
fn hint_string(tag: &Tag<'_>) -> (String, String) {
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

const UNLIKELY: &[&str] = &[
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
const MAYBE: &[&str] = &[
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

fn matches_any(s: &str, patterns: &[&str]) -> bool {
    !s.is_empty() && patterns.iter().any(|p| s.contains(p))
}

fn class_weight(s: &str) -> i16 {
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

impl<'a> Collector<'a> {
    fn flush(&mut self) {
        if self.buf.len() > self.block_start {
            let owner = self.top_owner();
            self.blocks.push(Block {
                start: self.block_start as u32,
                end: self.buf.len() as u32,
                owner,
                chars: self.chars,
                link_chars: self.link_chars,
                byline_chars: self.byline_chars,
                commas: self.commas,
            });
            self.block_start = self.buf.len();
        }
        self.chars = 0;
        self.link_chars = 0;
        self.byline_chars = 0;
        self.commas = 0;
        self.space = false;
    }

    fn top(&self) -> u32 {
        self.stack.last().copied().unwrap_or(NONE)
    }

    fn top_owner(&self) -> u32 {
        match self.top() {
            NONE => NONE,
            t => self.nodes[t as usize].block_owner,
        }
    }
}

impl<'a> Handler<'a> for Collector<'a> {
    fn text(&mut self, raw: &'a str, pre: bool) {
        let top = self.top();
        let in_link = top != NONE && self.nodes[top as usize].in_link;
        let in_byline = top != NONE && self.nodes[top as usize].byline;
        let mut decoded = std::mem::take(&mut self.decoded);
        decoded.clear();
        let text = if raw.contains('&') {
            html_escape::decode_html_entities_to_string(raw, &mut decoded)
        } else {
            raw
        };
        for c in text.chars() {
            if pre && c == '\n' {
                self.brk(Break::Line);
            } else if c.is_whitespace() || c.is_control() || c == '\u{200b}' {
                self.space = true;
            } else {
                if self.space && self.buf.len() > self.block_start {
                    self.buf.push(' ');
                }
                self.space = false;
                self.buf.push(c);
                self.chars += 1;
                if in_link {
                    self.link_chars += 1;
                }
                if in_byline {
                    self.byline_chars += 1;
                }
                if c == ',' || c == '，' || c == '、' {
                    self.commas += 1;
                }
            }
        }
        self.decoded = decoded;
    }

    fn brk(&mut self, _kind: Break) {
        self.flush();
    }

    fn open(&mut self, tag: &Tag<'a>, _depth: usize) {
        // Text before the element belongs to the block it was in.
        let kind = Tag8::of(&tag.name);
        let parent = self.top();
        let index = self.nodes.len() as u32;
        let p = (parent != NONE).then(|| &self.nodes[parent as usize]);
        let (class, id) = hint_string(tag);
        let hints = format!("{class} {id}");
        let role = tag.attr("role").unwrap_or("").to_ascii_lowercase();
        let hidden = tag.attr("hidden").is_some()
            || tag
                .attr("aria-hidden")
                .is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || tag.attr("style").is_some_and(|s| {
                let s: String = s
                    .chars()
                    .filter(|c| !c.is_whitespace())
                    .collect::<String>()
                    .to_ascii_lowercase();
                s.contains("display:none") || s.contains("visibility:hidden")
            });
        let tag_unlikely = matches!(
            tag.name.as_bytes(),
            b"nav" | b"footer" | b"aside" | b"button" | b"dialog" | b"menu" | b"header"
        );
        let role_unlikely = matches!(
            role.as_str(),
            "navigation"
                | "menu"
                | "menubar"
                | "complementary"
                | "contentinfo"
                | "banner"
                | "dialog"
                | "alertdialog"
                | "search"
        );
        let protected = matches!(kind, Tag8::Body | Tag8::Article | Tag8::A) || tag.name.is("html");
        let class_unlikely = matches_any(&hints, UNLIKELY) && !matches_any(&hints, MAYBE);
        let itemprop = tag.attr("itemprop").unwrap_or("");
        let article_body = itemprop.eq_ignore_ascii_case("articleBody");
        let hidden = hidden || p.is_some_and(|p| p.hidden);
        let unlikely = p.is_some_and(|p| p.unlikely)
            || (!protected && !article_body && (tag_unlikely || role_unlikely || class_unlikely));
        let byline = p.is_some_and(|p| p.byline)
            || itemprop.eq_ignore_ascii_case("author")
            || tag
                .attr("rel")
                .is_some_and(|r| r.eq_ignore_ascii_case("author"))
            || class.contains("byline")
            || class
                .split([' '])
                .any(|c| c == "author" || c.ends_with("-author") || c.ends_with("__author"));
        let weight = class_weight(&class) + class_weight(&id) + if article_body { 50 } else { 0 };
        let block_owner = if walk::is_block(&tag.name) {
            index
        } else {
            p.map_or(index, |p| p.block_owner)
        };
        let in_link = kind == Tag8::A || p.is_some_and(|p| p.in_link);
        if parent != NONE {
            self.nodes[parent as usize].children += 1;
        }
        match kind {
            Tag8::P => self.counts[C_P] += 1,
            Tag8::Li => self.counts[C_LI] += 1,
            _ => {}
        }
        if matches!(
            tag.name.as_bytes(),
            b"iframe" | b"object" | b"embed" | b"video"
        ) {
            self.counts[C_EMBED] += 1;
        }
        self.meta.open(tag);
        self.nodes.push(Node {
            parent,
            tag: kind,
            weight,
            hidden,
            unlikely,
            byline,
            end_node: index + 1,
            first_block: self.blocks.len() as u32,
            end_block: self.blocks.len() as u32,
            counts: self.counts,
            block_owner,
            in_link,
            children: 0,
            class_hash: if class.is_empty() {
                0
            } else {
                let mut h = std::hash::DefaultHasher::new();
                std::hash::Hash::hash(&class, &mut h);
                std::hash::Hasher::finish(&h)
            },
        });
        self.stack.push(index);
    }

    fn close(&mut self, _name: Name) {
        if let Some(index) = self.stack.last().copied() {
            if walk::is_block(&_name) {
                self.flush();
            }
            let end_node = self.nodes.len() as u32;
            let end_block = self.blocks.len() as u32;
            let counts = self.counts;
            let node = &mut self.nodes[index as usize];
            node.end_node = end_node;
            node.end_block = end_block;
            for (c, now) in node.counts.iter_mut().zip(counts) {
                *c = now - *c;
            }
            self.stack.pop();
        }
    }

    fn void(&mut self, tag: &Tag<'a>) {
        match tag.name.as_bytes() {
            b"img" => self.counts[C_IMG] += 1,
            b"input" => self.counts[C_INPUT] += 1,
            b"embed" => self.counts[C_EMBED] += 1,
            _ => {}
        }
        self.meta.void(tag);
    }

    fn raw(&mut self, tag: &Tag<'a>, content: &'a str) {
        if tag.name.is("iframe") {
            self.counts[C_EMBED] += 1;
        }
        self.meta.raw(tag, content);
    }
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
    let meta = meta.finish(h1, &bylines);
    // As readability: first without unlikely candidates; if that gives too little, again
    // with them (a page whose article sits in a `class="...sidebar..."` layout wrapper).
    let mut best: Option<(String, f32)> = None;
    for strict in [true, false] {
        if let Some((keep, confidence)) = choose(&nodes, &blocks, strict) {
            let text = join(&buf, &blocks, &keep, meta.title.as_deref());
            let chars = text.chars().count();
            if best.as_ref().is_none_or(|(b, _)| chars > b.chars().count()) {
                best = Some((text, confidence));
            }
            if chars >= RETRY_BELOW_CHARS {
                break;
            }
        }
    }
    match best {
        Some((text, confidence)) if text.chars().count() >= MIN_CONTENT_CHARS => Extraction {
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

/// No main content in the markup: the JSON-LD `articleBody` when there is one of some
/// length (pages rendered by scripts often carry it), else the whole page's text.
fn fallback(buf: &str, blocks: &[Block], mut meta: PageMeta, reason: &'static str) -> Extraction {
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
        text: join(buf, blocks, &keep, None),
        method: Method::WholePage,
        confidence: None,
        fallback_reason: Some(reason),
        meta,
    }
}

/// The kept blocks, one paragraph each; a leading block equal to the title is left out.
fn join(buf: &str, blocks: &[Block], keep: &[bool], title: Option<&str>) -> String {
    let mut out = String::new();
    for (b, _) in blocks.iter().zip(keep).filter(|(_, k)| **k) {
        let text = &buf[b.start as usize..b.end as usize];
        if out.is_empty() && title.is_some_and(|t| t == text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str("\n\n");
        }
        out.push_str(text);
    }
    out
}

/// Link density of an element: link characters over characters, in its kept blocks.
struct Density {
    chars: Vec<u64>,
    links: Vec<u64>,
    commas: Vec<u64>,
}

impl Density {
    fn new(blocks: &[Block], nodes: &[Node], strict: bool) -> Density {
        let mut chars = vec![0u64; blocks.len() + 1];
        let mut links = vec![0u64; blocks.len() + 1];
        let mut commas = vec![0u64; blocks.len() + 1];
        for (i, b) in blocks.iter().enumerate() {
            let live = b.owner != NONE && !nodes[b.owner as usize].dropped(strict);
            chars[i + 1] = chars[i] + if live { u64::from(b.chars) } else { 0 };
            links[i + 1] = links[i] + if live { u64::from(b.link_chars) } else { 0 };
            commas[i + 1] = commas[i] + if live { u64::from(b.commas) } else { 0 };
        }
        Density {
            chars,
            links,
            commas,
        }
    }

    fn chars(&self, n: &Node) -> u64 {
        self.chars[n.end_block as usize] - self.chars[n.first_block as usize]
    }

    fn commas(&self, n: &Node) -> u64 {
        self.commas[n.end_block as usize] - self.commas[n.first_block as usize]
    }

    fn of(&self, n: &Node) -> f32 {
        let chars = self.chars(n);
        if chars == 0 {
            return 0.0;
        }
        let links = self.links[n.end_block as usize] - self.links[n.first_block as usize];
        links as f32 / chars as f32
    }
}

fn contains(nodes: &[Node], outer: u32, inner: u32) -> bool {
    outer <= inner && inner < nodes[outer as usize].end_node
}

/// Scores the page and returns which blocks to keep and a confidence, or `None` when no
/// paragraph was worth scoring.
fn choose(nodes: &[Node], blocks: &[Block], strict: bool) -> Option<(Vec<bool>, f32)> {
    let density = Density::new(blocks, nodes, strict);
    let mut score: Vec<Option<f32>> = vec![None; nodes.len()];
    let init = |i: usize| nodes[i].tag.base_score() + f32::from(nodes[i].weight);
    for b in blocks {
        if b.owner == NONE || b.chars < 25 {
            continue;
        }
        let owner = &nodes[b.owner as usize];
        if owner.dropped(strict) || !owner.tag.scores_text() {
            continue;
        }
        let points = 1.0 + b.commas.min(100) as f32 + (b.chars / 100).min(3) as f32;
        let mut a = owner.parent;
        // The block's own container counts as level 0 when the text sits directly in a
        // div or similar (readability turns such divs into paragraphs).
        for level in 0..SCORED_ANCESTORS {
            if a == NONE {
                break;
            }
            let i = a as usize;
            let divider = match level {
                0 => 1.0,
                1 => 2.0,
                l => l as f32 * 3.0,
            };
            *score[i].get_or_insert_with(|| init(i)) += points / divider;
            a = nodes[i].parent;
        }
    }
    let finals: Vec<(u32, f32)> = score
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.map(|s| (i as u32, s * (1.0 - density.of(&nodes[i])))))
        .filter(|&(i, _)| !nodes[i as usize].dropped(strict))
        .collect();
    let &(mut top, mut top_score) = finals
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))?;
    let final_of = |i: u32| -> Option<f32> {
        score[i as usize].map(|s| s * (1.0 - density.of(&nodes[i as usize])))
    };
    // Several near-best candidates under one ancestor: that ancestor is the content.
    let mut best: Vec<(u32, f32)> = finals.clone();
    best.sort_by(|a, b| b.1.total_cmp(&a.1));
    let alternatives: Vec<u32> = best
        .iter()
        .skip(1)
        .take(4)
        .filter(|(_, s)| *s >= 0.75 * top_score)
        .map(|(i, _)| *i)
        .collect();
    if alternatives.len() >= 3 {
        let mut p = nodes[top as usize].parent;
        while p != NONE && nodes[p as usize].tag != Tag8::Body {
            let inside = alternatives
                .iter()
                .filter(|&&a| contains(nodes, p, a))
                .count();
            if inside >= 3 {
                top = p;
                break;
            }
            p = nodes[p as usize].parent;
        }
    }
    // Climb while the parent scores about as well (bounded by the depth cap).
    let mut last = final_of(top).unwrap_or(top_score);
    let mut p = nodes[top as usize].parent;
    while p != NONE && nodes[p as usize].tag != Tag8::Body {
        match final_of(p) {
            None => {}
            Some(s) if s < last / 3.0 => break,
            Some(s) if s > last => {
                top = p;
                break;
            }
            Some(s) => last = s,
        }
        p = nodes[p as usize].parent;
    }
    // An only child stands for its parent.
    while let Some(parent) = Some(nodes[top as usize].parent).filter(|&p| p != NONE) {
        if nodes[parent as usize].children != 1 || nodes[parent as usize].tag == Tag8::Body {
            break;
        }
        top = parent;
    }
    top_score = final_of(top).unwrap_or(top_score).max(top_score);
    // The content: the top candidate and its worthy siblings.
    let mut include = vec![top];
    let parent = nodes[top as usize].parent;
    if parent != NONE {
        let threshold = (top_score * 0.2).max(10.0);
        let mut s = parent + 1;
        while s < nodes[parent as usize].end_node {
            let sib = &nodes[s as usize];
            if s != top && !sib.dropped(strict) {
                let ld = density.of(sib);
                let len = density.chars(sib);
                // Readability's bonus for a sibling with the content's class.
                let top_class = nodes[top as usize].class_hash;
                let bonus = if top_class != 0 && sib.class_hash == top_class {
                    top_score * 0.2
                } else {
                    0.0
                };
                let worthy = final_of(s).is_some_and(|v| v + bonus >= threshold)
                    || (sib.tag == Tag8::P && ((len > 80 && ld < 0.25) || (len > 0 && ld == 0.0)));
                if worthy {
                    include.push(s);
                }
            }
            s = sib.end_node;
        }
    }
    include.sort_unstable();
    // Inside the content, drop what readability's conditional clean-up drops.
    let mut removed_until = 0u32;
    // `include` holds disjoint subtrees, so marking their elements is one pass over at
    // most all elements, and a block is then kept or not by its owner alone.
    let mut keep_node = vec![false; nodes.len()];
    for &root in &include {
        for i in root..nodes[root as usize].end_node {
            let n = &nodes[i as usize];
            if i < removed_until {
                continue;
            }
            if n.dropped(strict) || (i != root && remove_conditionally(n, &density)) {
                removed_until = n.end_node;
            } else {
                keep_node[i as usize] = true;
            }
        }
    }
    let mut keep = vec![false; blocks.len()];
    for (k, b) in keep.iter_mut().zip(blocks) {
        if b.owner == NONE {
            continue;
        }
        let owner = &nodes[b.owner as usize];
        // Link lines straight in a container (menus, "read more" rows) go; links that
        // are a paragraph or a list item of the article stay.
        let linky = b.chars > 0
            && b.link_chars * 2 > b.chars
            && matches!(
                owner.tag,
                Tag8::Div | Tag8::Section | Tag8::Td | Tag8::OtherBlock
            );
        *k = keep_node[b.owner as usize] && !linky;
    }
    let confidence = (top_score / (top_score + 20.0)).clamp(0.0, 1.0);
    Some((keep, (confidence * 100.0).round() / 100.0))
}

/// Readability's `_cleanConditionally`, on an element inside the chosen content.
fn remove_conditionally(n: &Node, density: &Density) -> bool {
    if !matches!(
        n.tag,
        Tag8::Form | Tag8::Table | Tag8::List | Tag8::Div | Tag8::Section | Tag8::OtherBlock
    ) {
        return false;
    }
    // Readability checks the class weight alone here (its content score counts as 0).
    let weight = f32::from(n.weight);
    if weight < 0.0 {
        return true;
    }
    if density.commas(n) >= 10 {
        return false;
    }
    let [p, img, li, input, embeds] = n.counts;
    let is_list = n.tag == Tag8::List;
    let len = density.chars(n);
    let ld = density.of(n);
    let li = li.saturating_sub(100);
    (img > 1 && (p as f32) / (img as f32) < 0.5 && !is_list)
        || (!is_list && li > p)
        || (input > p / 3 && input > 0)
        || (!is_list && len < 25 && (img == 0 || img > 2) && embeds == 0 && len > 0)
        || (!is_list && weight < 25.0 && ld > 0.2)
        || (weight >= 25.0 && ld > 0.5)
        || ((embeds == 1 && len < 75) || embeds > 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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

#[cfg(test)]
mod fallback_tests {
    use super::*;

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
