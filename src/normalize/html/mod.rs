//! HTML to plain text, in one linear pass: block elements become paragraphs; scripts,
//! styles, SVG, forms' option lists and other non-text content vanish.
//!
//! [`tokenizer`] splits the input into tags and text, [`walk`] gives the elements their
//! meaning (dropped, raw text, block, implicitly closed) with a bounded stack, and
//! [`html_to_text`] writes the text. Bounds, whatever the markup: time linear in the input
//! (a constant amount of work per byte and per tag, see [`walk`]); memory the input plus the
//! output, plus [`walk::MAX_DEPTH`] stack entries; output at most [`MAX_EXPANSION`] times the
//! input (separators are only written before text and replace at least one byte of markup
//! or whitespace; the longest expansion is a character reference such as `&nGt;`, 5 bytes
//! decoding to 6).

pub mod eval;
pub mod extract;
pub mod meta;
pub mod tokenizer;
pub mod walk;

pub use extract::{Extraction, Method, extract};
pub use meta::PageMeta;

use walk::{Break, Handler};

/// The output is never longer than this many times the input, plus one byte.
pub const MAX_EXPANSION: usize = 2;

/// Converts an HTML document or fragment to text: one paragraph per block, separated by a
/// blank line; `<br>` starts a new line; whitespace collapsed; character references decoded.
pub fn html_to_text(html: &str) -> String {
    let mut out = TextWriter::new(html.len());
    walk::walk(html, &mut out);
    out.finish()
}

/// Writes text with collapsed whitespace and at most one separator between two pieces.
pub(crate) struct TextWriter {
    out: String,
    /// Reused buffer for decoding character references.
    decoded: String,
    /// A space is due before the next character.
    space: bool,
    /// A break is due before the next character.
    pending: Option<Break>,
}

impl TextWriter {
    pub(crate) fn new(capacity: usize) -> TextWriter {
        TextWriter {
            out: String::with_capacity(capacity.min(1 << 20)),
            decoded: String::new(),
            space: false,
            pending: None,
        }
    }

    /// Appends raw (undecoded) text.
    pub(crate) fn push_raw(&mut self, raw: &str, pre: bool) {
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
                self.push_char(c);
            }
        }
        self.decoded = decoded;
    }

    fn push_char(&mut self, c: char) {
        if !self.out.is_empty() {
            match self.pending {
                Some(Break::Paragraph) => self.out.push_str("\n\n"),
                Some(Break::Line) => self.out.push('\n'),
                None if self.space => self.out.push(' '),
                None => {}
            }
        }
        self.pending = None;
        self.space = false;
        self.out.push(c);
    }

    pub(crate) fn brk(&mut self, kind: Break) {
        self.pending = self.pending.max(Some(kind));
        self.space = false;
    }

    pub(crate) fn finish(self) -> String {
        self.out
    }
}

impl<'a> Handler<'a> for TextWriter {
    fn text(&mut self, raw: &'a str, pre: bool) {
        self.push_raw(raw, pre);
    }

    fn brk(&mut self, kind: Break) {
        TextWriter::brk(self, kind);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn paragraphs_survive_and_scripts_do_not() {
        let text = html_to_text(
            "<html><head><script>var x=1;</script><style>p{}</style></head><body>\
             <h1>Title</h1><p>One &amp; <b>two</b>.</p><p>Three.</p></body></html>",
        );
        assert_eq!(text, "Title\n\nOne & two.\n\nThree.");
    }

    #[test]
    fn blocks_breaks_and_whitespace() {
        assert_eq!(
            html_to_text("a<br>b<div> c <span>d</span>\n e</div><ul><li>f<li>g</ul>h"),
            "a\nb\n\nc d e\n\nf\n\ng\n\nh"
        );
        assert_eq!(html_to_text("<pre>x\n  y</pre>z"), "x\ny\n\nz");
        assert_eq!(html_to_text("  <p> </p> <p></p>"), "");
    }

    #[test]
    fn hidden_content_is_dropped() {
        let html = "<head><title>Page title</title><meta name=x content=y></head><body>\
            <p>keep 1</p><noscript>enable js</noscript><title>body title</title>\
            <textarea>typed</textarea><iframe>frame</iframe><select><option>opt 1<option>opt 2</select>\
            <option>stray option</option><math><mi>x</mi></math><svg><text>svg</text><svg/></svg>\
            <template><p>tpl</p></template><video>no video</video><!-- comment -->\
            <table><tr><td>cell 1</td><td>cell 2</td></tr></table>\
            <a href=x>link</a> <img alt=alt src=y><p>keep 2</p>";
        assert_eq!(
            html_to_text(html),
            "keep 1\n\ncell 1\n\ncell 2\n\nlink\n\nkeep 2"
        );
    }

    #[test]
    fn unclosed_foreign_content_ends_at_html() {
        assert_eq!(html_to_text("<svg><g>icon<p>text</p>"), "text");
        assert_eq!(html_to_text("<select><option>a<input>after"), "after");
    }

    #[test]
    fn entities_are_decoded_once() {
        assert_eq!(
            html_to_text("<p>Tom &amp; Jerry&#8217;s &lt;b&gt; &amp;lt; &nbsp;x</p>"),
            "Tom & Jerry’s <b> &lt; x"
        );
    }

    /// The inputs of issue 15 that took minutes and gigabytes through html2text, at sizes
    /// a little under the 1 MiB record limit. Their output stays within the bound (and the
    /// test finishing at all shows the walk is not super-linear).
    #[test]
    fn adversarial_inputs_give_bounded_output() {
        let mib = 1_000_000;
        let fill = |prefix: String, unit: &str| {
            let n = (mib - prefix.len()) / unit.len();
            prefix + &unit.repeat(n)
        };
        let nested: String = (0..500).map(|i| format!("<b id={i}>")).collect();
        let wide = (mib - 15) / 10;
        let cases = [
            fill(format!("<p>{nested}"), "<p>x"),
            format!(
                "<table><tr><td>{}{}",
                "x".repeat(wide),
                "<tr><td>a".repeat(wide)
            ),
            fill(String::new(), "<blockquote>x"),
            fill(String::new(), "<ul><li>x"),
            fill(String::new(), "<div>"),
            fill(String::new(), "<svg><math>"),
            fill(String::new(), "<a><table><td><select><option>"),
            fill(String::new(), "<p><b><i><u><s>x"),
            fill(String::new(), "</p></b></div>"),
            fill(String::new(), "<!--"),
            fill(String::new(), "<script>"),
            fill(String::from("<div "), "a='b' "),
            fill(String::new(), "&nGt;"),
            fill(String::new(), "<br>"),
            fill(String::new(), "<pre>\n"),
        ];
        for html in &cases {
            let text = html_to_text(html);
            assert!(
                text.len() <= MAX_EXPANSION * html.len() + 1,
                "{} bytes out of {}",
                text.len(),
                html.len()
            );
        }
        // The text itself is kept: one paragraph per `<li>`.
        let lists = html_to_text(&cases[3]);
        assert_eq!(lists.matches('x').count(), mib / "<ul><li>x".len());
    }

    proptest! {
        #[test]
        fn any_string_gives_bounded_output(s in "\\PC{0,400}") {
            let text = html_to_text(&s);
            prop_assert!(text.len() <= MAX_EXPANSION * s.len() + 1);
            prop_assert!(!text.contains("\n\n\n"));
        }

        #[test]
        fn any_markup_soup_gives_bounded_output(
            parts in proptest::collection::vec(
                "<[a-zA-Z/!?]{0,3}[a-z]{0,8}( [a-z]{1,4}(=('[^']{0,5}'|\"[^\"]{0,5}\"|[a-z>/]{0,4}))?)*/?>|[^<]{0,10}|&[a-zA-Z#0-9]{0,8};?|<!--|-->|</(script|style|title|svg|select)>",
                0..80,
            )
        ) {
            let s: String = parts.concat();
            let text = html_to_text(&s);
            prop_assert!(text.len() <= MAX_EXPANSION * s.len() + 1);
        }
    }
}
