//! Element semantics on top of the tokenizer: which elements are dropped, which are blocks,
//! which are implicitly closed, and a bounded stack of open elements.
//!
//! [`walk`] drives a [`Handler`] through a document in one pass. Bounds, whatever the markup:
//! - the stack of open elements holds at most [`MAX_DEPTH`] entries; deeper elements still
//!   break blocks but are not tracked (and get no `open`/`close` calls);
//! - an implicit close (`<p>` closing an open `<p>`, `<li>` closing an `<li>`...) looks at
//!   most [`SCOPE_WINDOW`] entries down the stack;
//! - an end tag pops only when its element is known to be open (a per-name count answers
//!   that in O(1)); each pop undoes one push, so pops cost no more than pushes overall;
//! - dropped subtrees (`<svg>`, `<template>`...) are skipped with a nesting counter.
//!
//! So the work per token is bounded by a constant and the whole walk is linear in the input.

use std::collections::HashMap;

use super::tokenizer::{Name, Tag, Token, Tokenizer};

/// Deepest stack of open elements tracked.
pub const MAX_DEPTH: usize = 256;
/// How far down the stack an implicit close looks for the element it closes.
pub const SCOPE_WINDOW: usize = 16;

/// A break in the text flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Break {
    /// `<br>`: a new line.
    Line,
    /// A block element starts or ends: a new paragraph.
    Paragraph,
}

/// Receives the document's content in order. Every `open` is matched by one `close`.
pub trait Handler<'a> {
    /// Text outside dropped elements, character references not yet decoded. `pre` is true
    /// inside `<pre>`, where line breaks are content.
    fn text(&mut self, raw: &'a str, pre: bool);
    /// A paragraph or line break.
    fn brk(&mut self, kind: Break);
    /// An element was pushed on the stack (`depth` is its index, 0 for the root).
    fn open(&mut self, _tag: &Tag<'a>, _depth: usize) {}
    /// The element on top of the stack was popped.
    fn close(&mut self, _name: Name) {}
    /// A void element (`<meta>`, `<link>`, `<img>`, `<br>`...), outside dropped content.
    fn void(&mut self, _tag: &Tag<'a>) {}
    /// The content of a raw-text element whose text is not part of the page's text
    /// (`<title>`, `<script>`, `<style>`, `<noscript>`, `<textarea>`, `<iframe>`...).
    fn raw(&mut self, _tag: &Tag<'a>, _content: &'a str) {}
}

fn one_of(name: &Name, set: &[&str]) -> bool {
    set.iter().any(|s| name.is(s))
}

/// What an element is, as a set of the flags below (one `match` per tag).
#[derive(Clone, Copy)]
struct Kind(u16);

impl Kind {
    /// Content read raw up to the end tag and not shown as text.
    const RAW_TEXT: u16 = 1;
    /// Whole subtree dropped (nesting counted).
    const DROPPED: u16 = 1 << 1;
    /// No content, no end tag.
    const VOID: u16 = 1 << 2;
    /// Starts and ends a paragraph.
    const BLOCK: u16 = 1 << 3;
    /// Its start tag closes an open `<p>`.
    const CLOSES_P: u16 = 1 << 4;
    /// Its start tag ends SVG or MathML content (the spec's "breakout" list).
    const BREAKS_FOREIGN: u16 = 1 << 5;
    /// `<h1>`...`<h6>`.
    const HEADING: u16 = 1 << 6;

    fn of(name: &Name) -> Kind {
        const B: u16 = Kind::BLOCK;
        const BP: u16 = Kind::BLOCK | Kind::CLOSES_P;
        const BPF: u16 = BP | Kind::BREAKS_FOREIGN;
        const F: u16 = Kind::BREAKS_FOREIGN;
        const H: u16 = BPF | Kind::HEADING;
        const R: u16 = Kind::RAW_TEXT;
        const D: u16 = Kind::DROPPED;
        const V: u16 = Kind::VOID;
        Kind(match name.as_bytes() {
            b"script" | b"style" | b"title" | b"textarea" | b"noscript" | b"iframe" | b"xmp"
            | b"noembed" | b"noframes" => R,
            b"template" | b"svg" | b"math" | b"select" | b"datalist" | b"video" | b"audio"
            | b"canvas" | b"object" => D,
            b"br" => V | F,
            b"hr" => V | BPF,
            b"embed" | b"img" | b"meta" => V | F,
            b"area" | b"base" | b"col" | b"input" | b"link" | b"param" | b"source" | b"track"
            | b"wbr" | b"keygen" | b"basefont" | b"bgsound" | b"frame" | b"image" => V,
            b"h1" | b"h2" | b"h3" | b"h4" | b"h5" | b"h6" => H,
            b"blockquote" | b"center" | b"dd" | b"div" | b"dl" | b"dt" | b"li" | b"listing"
            | b"menu" | b"ol" | b"p" | b"pre" | b"ul" | b"table" => BPF,
            b"address" | b"article" | b"aside" | b"details" | b"dialog" | b"dir" | b"fieldset"
            | b"figcaption" | b"figure" | b"footer" | b"form" | b"header" | b"hgroup" | b"main"
            | b"nav" | b"section" | b"summary" | b"plaintext" | b"search" => BP,
            b"body" => B | F,
            b"caption" | b"html" | b"legend" | b"tbody" | b"td" | b"tfoot" | b"th" | b"thead"
            | b"tr" | b"frameset" => B,
            b"b" | b"big" | b"code" | b"em" | b"head" | b"i" | b"nobr" | b"ruby" | b"s"
            | b"small" | b"span" | b"strong" | b"strike" | b"sub" | b"sup" | b"tt" | b"u"
            | b"var" => F,
            _ => 0,
        })
    }

    fn has(self, flag: u16) -> bool {
        self.0 & flag != 0
    }
}

/// Whether an element starts and ends a paragraph.
pub fn is_block(name: &Name) -> bool {
    Kind::of(name).has(Kind::BLOCK)
}

/// A subtree being skipped.
struct Skip {
    name: Name,
    nesting: usize,
    foreign: bool,
}

struct Walker<'h, H> {
    handler: &'h mut H,
    stack: Vec<Name>,
    /// How many times each name is on the stack.
    open: HashMap<Name, usize>,
    /// Open `<pre>` elements.
    pre: usize,
    /// The dropped subtree being skipped, if any.
    skip: Option<Skip>,
    /// Text up to the next tag is dropped (an `<option>`'s text outside a `<select>`).
    drop_text: bool,
}

impl<'a, H: Handler<'a>> Walker<'_, H> {
    fn push(&mut self, tag: &Tag<'a>) {
        if self.stack.len() >= MAX_DEPTH {
            return;
        }
        self.handler.open(tag, self.stack.len());
        self.stack.push(tag.name);
        *self.open.entry(tag.name).or_insert(0) += 1;
        if tag.name.is("pre") || tag.name.is("listing") {
            self.pre += 1;
        }
    }

    fn pop(&mut self) {
        if let Some(name) = self.stack.pop() {
            if let Some(n) = self.open.get_mut(&name) {
                *n -= 1;
                if *n == 0 {
                    self.open.remove(&name);
                }
            }
            if name.is("pre") || name.is("listing") {
                self.pre -= 1;
            }
            self.handler.close(name);
        }
    }

    /// Pops up to and including the nearest `targets` element within [`SCOPE_WINDOW`]
    /// entries, unless a `stop` element comes first.
    fn close_within(&mut self, targets: &[&str], stop: &[&str]) {
        let found = self
            .stack
            .iter()
            .rev()
            .take(SCOPE_WINDOW)
            .position(|n| one_of(n, targets) || one_of(n, stop))
            .filter(|&i| one_of(&self.stack[self.stack.len() - 1 - i], targets));
        if let Some(i) = found {
            for _ in 0..=i {
                self.pop();
            }
        }
    }

    /// Pops up to and including the innermost open `name`, if it is open.
    fn close_named(&mut self, name: Name) -> bool {
        if !self.open.contains_key(&name) {
            return false;
        }
        while let Some(top) = self.stack.last().copied() {
            self.pop();
            if top == name {
                break;
            }
        }
        true
    }

    /// A start tag outside dropped content: raw text is read (and handed over, not shown),
    /// a dropped subtree starts being skipped, anything else goes on the stack.
    fn start_tag(&mut self, tok: &mut Tokenizer<'a>, tag: &Tag<'a>) {
        self.drop_text = false;
        let name = tag.name;
        let kind = Kind::of(&name);
        if name.is("plaintext") {
            self.start(tag);
            self.handler.text(tok.rest(), true);
        } else if kind.has(Kind::RAW_TEXT) {
            let content = tok.raw_text(name);
            self.handler.raw(tag, content);
        } else if kind.has(Kind::DROPPED) {
            let foreign = name.is("svg") || name.is("math");
            if !(foreign && tag.self_closing) {
                self.skip = Some(Skip {
                    name,
                    nesting: 1,
                    foreign,
                });
            }
        } else {
            self.start(tag);
            if name.is("option") || name.is("optgroup") {
                self.drop_text = true;
            }
        }
    }

    fn start(&mut self, tag: &Tag<'a>) {
        let name = &tag.name;
        let kind = Kind::of(name);
        if kind.has(Kind::CLOSES_P) {
            self.close_within(&["p"], &["button", "table", "td", "th", "caption"]);
        }
        if name.is("li") {
            self.close_within(&["li"], &["ul", "ol", "menu", "dir", "table", "td", "th"]);
        } else if name.is("dd") || name.is("dt") {
            self.close_within(&["dd", "dt"], &["dl", "table", "td", "th"]);
        } else if name.is("tr") {
            self.close_within(&["tr"], &["table", "thead", "tbody", "tfoot"]);
        } else if name.is("td") || name.is("th") {
            self.close_within(&["td", "th"], &["tr", "table"]);
        } else if name.is("thead") || name.is("tbody") || name.is("tfoot") {
            self.close_within(&["thead", "tbody", "tfoot"], &["table"]);
        } else if kind.has(Kind::HEADING) {
            self.close_within(&["h1", "h2", "h3", "h4", "h5", "h6"], &[]);
        }
        if kind.has(Kind::BLOCK) {
            self.handler.brk(Break::Paragraph);
        }
        if kind.has(Kind::VOID) {
            if name.is("br") {
                self.handler.brk(Break::Line);
            }
            self.handler.void(tag);
            return;
        }
        if (name.is("html") || name.is("body")) && self.open.contains_key(name) {
            return;
        }
        self.push(tag);
    }

    fn end(&mut self, name: Name) {
        if name.is("br") {
            self.handler.brk(Break::Line);
            return;
        }
        if is_block(&name) {
            self.handler.brk(Break::Paragraph);
        }
        // `</body>` and `</html>` are ignored, as browsers do: content may follow them.
        if !(name.is("body") || name.is("html")) {
            self.close_named(name);
        }
    }
}

/// Walks `html`, calling `handler` for its content.
pub fn walk<'a, H: Handler<'a>>(html: &'a str, handler: &mut H) {
    let mut tok = Tokenizer::new(html);
    let mut w = Walker {
        handler,
        stack: Vec::new(),
        open: HashMap::new(),
        pre: 0,
        skip: None,
        drop_text: false,
    };
    while let Some(token) = tok.next_token() {
        match token {
            Token::Text(text) => {
                if w.skip.is_none() && !w.drop_text {
                    w.handler.text(text, w.pre > 0);
                }
            }
            Token::Start(tag) => match w.skip.as_mut() {
                None => w.start_tag(&mut tok, &tag),
                Some(s) if s.foreign => {
                    if breaks_foreign(&tag) {
                        w.skip = None;
                        w.start_tag(&mut tok, &tag);
                    } else if tag.name == s.name && !tag.self_closing {
                        s.nesting += 1;
                    }
                }
                Some(s) => {
                    if tag.name == s.name {
                        s.nesting += 1;
                    } else if Kind::of(&tag.name).has(Kind::RAW_TEXT) {
                        tok.raw_text(tag.name);
                    }
                    let closes_select = s.name.is("select")
                        && one_of(&tag.name, &["select", "input", "textarea", "keygen"]);
                    if closes_select {
                        // As in browsers: these end a select (an inner `<select>` too).
                        w.skip = None;
                        if !tag.name.is("select") {
                            w.start_tag(&mut tok, &tag);
                        }
                    }
                }
            },
            Token::End(name) => match w.skip.as_mut() {
                None => {
                    w.drop_text = false;
                    w.end(name);
                }
                Some(s) => {
                    if name == s.name {
                        s.nesting -= 1;
                        if s.nesting == 0 {
                            w.skip = None;
                        }
                    }
                }
            },
        }
    }
    while !w.stack.is_empty() {
        w.pop();
    }
}

/// Whether an HTML start tag ends SVG or MathML content.
fn breaks_foreign(tag: &Tag<'_>) -> bool {
    Kind::of(&tag.name).has(Kind::BREAKS_FOREIGN)
        || (tag.name.is("font")
            && tag.attrs().any(|(n, _)| {
                ["color", "face", "size"]
                    .iter()
                    .any(|a| n.eq_ignore_ascii_case(a))
            }))
}
