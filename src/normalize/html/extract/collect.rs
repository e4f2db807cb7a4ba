//! The one pass over the page: a [`walk`] handler that records elements, text blocks and
//! metadata.

use super::hints::{MAYBE, UNLIKELY, class_weight, hint_string, is_comment_section, matches_any};
use super::nodes::{Block, C_EMBED, C_IMG, C_INPUT, C_LI, C_P, NONE, Node, Tag8};
use crate::normalize::html::meta::MetaCollector;
use crate::normalize::html::tokenizer::{Name, Tag};
use crate::normalize::html::walk::{self, Break, Handler};

/// The walk handler that records elements, blocks and metadata.
pub(super) struct Collector<'a> {
    pub(super) nodes: Vec<Node>,
    pub(super) blocks: Vec<Block>,
    /// Indices of open elements (parallel to the walker's stack).
    pub(super) stack: Vec<u32>,
    pub(super) buf: String,
    pub(super) decoded: String,
    pub(super) block_start: usize,
    pub(super) chars: u32,
    pub(super) link_chars: u32,
    pub(super) byline_chars: u32,
    pub(super) commas: u32,
    pub(super) space: bool,
    pub(super) counts: [u32; 5],
    pub(super) meta: MetaCollector<'a>,
}

impl<'a> Collector<'a> {
    pub(super) fn flush(&mut self) {
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
        let class_unlikely = is_comment_section(&hints)
            || (matches_any(&hints, UNLIKELY) && !matches_any(&hints, MAYBE));
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
