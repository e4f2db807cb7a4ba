//! The records the scoring works on: elements (with their category, hints and the range of
//! elements and blocks they contain) and text blocks, both numbered in document order.

use crate::normalize::html::tokenizer::Name;
use crate::normalize::html::walk;

/// Element categories the scoring cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tag8 {
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
    /// `tr`, `tbody`, `thead`, `tfoot`: the rows of a table, judged with their table.
    TableRows,
}

impl Node {
    /// Left out of scoring and output: hidden, or (`strict`) an unlikely candidate.
    pub(super) fn dropped(&self, strict: bool) -> bool {
        self.hidden || (strict && self.unlikely)
    }
}

impl Tag8 {
    pub(super) fn of(name: &Name) -> Tag8 {
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
            b"tr" | b"tbody" | b"thead" | b"tfoot" => Tag8::TableRows,
            _ if walk::is_block(name) => Tag8::OtherBlock,
            _ => Tag8::Other,
        }
    }

    /// Readability's initial score of a candidate container.
    pub(super) fn base_score(self) -> f32 {
        match self {
            Tag8::Div | Tag8::Article => 5.0,
            Tag8::Pre | Tag8::Td | Tag8::Blockquote => 3.0,
            Tag8::List | Tag8::Li | Tag8::Form => -3.0,
            Tag8::Heading(_) => -5.0,
            _ => 0.0,
        }
    }

    /// Paragraph-like: a block directly in it is scored.
    pub(super) fn scores_text(self) -> bool {
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
                | Tag8::TableRows
        )
    }
}

pub(super) const NONE: u32 = u32::MAX;

#[derive(Debug, Clone)]
pub(super) struct Node {
    pub(super) parent: u32,
    pub(super) tag: Tag8,
    /// Class/id weight: +25 for a content hint, -25 for a boilerplate hint, each.
    pub(super) weight: i16,
    /// Hidden (`hidden`, `aria-hidden`, `display:none`), or inside a hidden element.
    pub(super) hidden: bool,
    /// An unlikely candidate (navigation, comments, share bar...), or inside one.
    pub(super) unlikely: bool,
    /// In a byline element (`class="author"`, `rel="author"`, `itemprop="author"`).
    pub(super) byline: bool,
    /// First element after this one that is not inside it.
    pub(super) end_node: u32,
    pub(super) first_block: u32,
    pub(super) end_block: u32,
    /// Counts inside it: `<p>`, `<img>`, `<li>`, `<input>`, embeds (snapshot at open,
    /// replaced by the difference at close).
    pub(super) counts: [u32; 5],
    /// Nearest ancestor-or-self that is a block element.
    pub(super) block_owner: u32,
    pub(super) in_link: bool,
    pub(super) children: u32,
    /// Hash of the class attribute (0 when none), to spot siblings styled like the content.
    pub(super) class_hash: u64,
}

#[derive(Debug, Clone)]
pub(super) struct Block {
    pub(super) start: u32,
    pub(super) end: u32,
    /// The block element the text is in.
    pub(super) owner: u32,
    pub(super) chars: u32,
    pub(super) link_chars: u32,
    /// Characters inside a byline element.
    pub(super) byline_chars: u32,
    pub(super) commas: u32,
}

pub(super) const C_P: usize = 0;
pub(super) const C_IMG: usize = 1;
pub(super) const C_LI: usize = 2;
pub(super) const C_INPUT: usize = 3;
pub(super) const C_EMBED: usize = 4;
