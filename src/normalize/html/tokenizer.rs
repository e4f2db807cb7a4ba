//! A small HTML tokenizer: one forward pass over the input, no tree, no allocation per token.
//!
//! It follows the WHATWG tokenizer where it matters for text extraction (tag and attribute
//! syntax with quoted values, comments, bogus comments, doctype) and simplifies the rest:
//! character references are left in the text for the caller to decode, and raw-text elements
//! (`<script>`, `<style>`, `<title>`...) are read on request by [`Tokenizer::raw_text`].
//!
//! Bound: every method only moves `pos` forward and looks at each byte a constant number of
//! times (a tag's bytes twice: once to find its end, once if its attributes are read), so a
//! whole document costs time linear in its length and no memory beyond the tokens' slices.

/// An element name: ASCII-lowercased, at most [`Name::MAX`] bytes (longer names are cut and
/// marked, so they never equal a known element).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Name {
    buf: [u8; Name::MAX],
    len: u8,
}

impl Name {
    /// Longest name kept in full; every HTML, SVG and MathML name of interest is shorter.
    pub const MAX: usize = 15;

    fn new(raw: &[u8]) -> Name {
        let mut buf = [0u8; Name::MAX];
        let n = raw.len().min(Name::MAX);
        for (b, r) in buf.iter_mut().zip(&raw[..n]) {
            *b = r.to_ascii_lowercase();
        }
        // A cut name gets an impossible length so it cannot collide with a real one.
        let len = if raw.len() > Name::MAX {
            u8::MAX
        } else {
            n as u8
        };
        Name { buf, len }
    }

    /// The lowercased name (cut to [`Name::MAX`] bytes).
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len).min(Name::MAX)]
    }

    /// Whether this is the element `name` (given in lowercase).
    pub fn is(&self, name: &str) -> bool {
        usize::from(self.len) == name.len() && self.as_bytes() == name.as_bytes()
    }
}

impl std::fmt::Debug for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", String::from_utf8_lossy(self.as_bytes()))
    }
}

/// A start tag.
#[derive(Debug, Clone, Copy)]
pub struct Tag<'a> {
    pub name: Name,
    /// The attribute source between the name and `>` (undecoded); read with [`Tag::attrs`].
    pub attrs: &'a str,
    /// Ended with `/>` (meaningful only in SVG and MathML).
    pub self_closing: bool,
}

impl<'a> Tag<'a> {
    /// The attributes in source order, values undecoded (entities left in).
    pub fn attrs(&self) -> Attrs<'a> {
        Attrs {
            src: self.attrs,
            pos: 0,
        }
    }

    /// The first attribute called `name` (lowercase), its value undecoded.
    pub fn attr(&self, name: &str) -> Option<&'a str> {
        self.attrs()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}

/// One token.
#[derive(Debug, Clone, Copy)]
pub enum Token<'a> {
    /// Text between tags, character references not decoded.
    Text(&'a str),
    Start(Tag<'a>),
    End(Name),
}

/// The tokenizer: call [`Tokenizer::next_token`] until it returns `None`.
pub struct Tokenizer<'a> {
    src: &'a str,
    pos: usize,
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c')
}

impl<'a> Tokenizer<'a> {
    pub fn new(src: &'a str) -> Tokenizer<'a> {
        Tokenizer { src, pos: 0 }
    }

    fn bytes(&self) -> &'a [u8] {
        self.src.as_bytes()
    }

    /// Position of the next `b` at or after `from`, or the end.
    fn find(&self, from: usize, b: u8) -> usize {
        self.bytes()[from..]
            .iter()
            .position(|&c| c == b)
            .map_or(self.src.len(), |i| from + i)
    }

    /// The next token, skipping comments, doctypes and processing instructions.
    pub fn next_token(&mut self) -> Option<Token<'a>> {
        let bytes = self.bytes();
        loop {
            if self.pos >= bytes.len() {
                return None;
            }
            if bytes[self.pos] != b'<' || !self.opens_markup(self.pos) {
                // Text runs to the next `<` that opens markup; a lone `<` is text.
                let start = self.pos;
                let mut end = self.find(self.pos + 1, b'<');
                while end < bytes.len() && !self.opens_markup(end) {
                    end = self.find(end + 1, b'<');
                }
                self.pos = end;
                return Some(Token::Text(&self.src[start..end]));
            }
            let next = bytes[self.pos + 1];
            if next.is_ascii_alphabetic() {
                return self.start_tag();
            }
            if next == b'/' {
                let after = bytes.get(self.pos + 2).copied();
                match after {
                    Some(c) if c.is_ascii_alphabetic() => return self.end_tag(),
                    Some(b'>') => self.pos += 3,
                    _ => self.skip_bogus_comment(),
                }
                continue;
            }
            if bytes[self.pos + 1..].starts_with(b"!--") {
                self.skip_comment();
            } else {
                // `<!DOCTYPE>`, `<![CDATA[...]]>` outside foreign content, `<?...>`.
                self.skip_bogus_comment();
            }
        }
    }

    /// Whether the `<` at `at` starts a tag, end tag, comment or bogus comment.
    fn opens_markup(&self, at: usize) -> bool {
        match self.bytes().get(at + 1) {
            Some(c) if c.is_ascii_alphabetic() => true,
            Some(b'/' | b'!' | b'?') => true,
            _ => false,
        }
    }

    /// Skips to just after the next `>` (or the end).
    fn skip_bogus_comment(&mut self) {
        self.pos = (self.find(self.pos + 1, b'>') + 1).min(self.src.len());
    }

    /// Skips `<!-- ... -->` (also ended by `--!>`; `<!-->` and `<!--->` are empty comments).
    fn skip_comment(&mut self) {
        let bytes = self.bytes();
        let body = self.pos + 4;
        for empty in [&b">"[..], b"->"] {
            if bytes[body.min(bytes.len())..].starts_with(empty) {
                self.pos = body + empty.len();
                return;
            }
        }
        let mut p = body;
        loop {
            let gt = self.find(p, b'>');
            if gt >= bytes.len() {
                self.pos = bytes.len();
                return;
            }
            let ends = (gt >= body + 2 && &bytes[gt - 2..gt] == b"--")
                || (gt >= body + 3 && &bytes[gt - 3..gt] == b"--!");
            if ends {
                self.pos = gt + 1;
                return;
            }
            p = gt + 1;
        }
    }

    /// Reads a tag name starting at `from`; returns it and the index after it.
    fn name_at(&self, from: usize) -> (Name, usize) {
        let bytes = self.bytes();
        let end = bytes[from..]
            .iter()
            .position(|&b| is_space(b) || b == b'/' || b == b'>')
            .map_or(bytes.len(), |i| from + i);
        (Name::new(&bytes[from..end]), end)
    }

    /// Finds the `>` closing a tag whose attributes start at `from`, honouring quoted values.
    /// Returns the index of `>` and whether the tag is self-closing, or `None` at the end of
    /// input (an unterminated tag is dropped, as browsers do).
    fn tag_end(&self, from: usize) -> Option<(usize, bool)> {
        #[derive(Clone, Copy, PartialEq)]
        enum S {
            Between,
            Name,
            AfterName,
            BeforeValue,
            Quoted(u8),
            Unquoted,
        }
        let bytes = self.bytes();
        let mut state = S::Between;
        let mut i = from;
        while i < bytes.len() {
            let b = bytes[i];
            state = match state {
                S::Quoted(q) => {
                    if b == q {
                        S::Between
                    } else {
                        state
                    }
                }
                _ if b == b'>' => {
                    let self_closing = i > from
                        && bytes[i - 1] == b'/'
                        && matches!(state, S::Between | S::Name | S::AfterName);
                    return Some((i, self_closing));
                }
                S::Between | S::AfterName if is_space(b) || b == b'/' => state,
                S::Between => S::Name,
                S::AfterName if b == b'=' => S::BeforeValue,
                S::AfterName => S::Name,
                S::Name if is_space(b) => S::AfterName,
                S::Name if b == b'=' => S::BeforeValue,
                S::Name if b == b'/' => S::Between,
                S::Name => S::Name,
                S::BeforeValue if is_space(b) => state,
                S::BeforeValue if b == b'"' || b == b'\'' => S::Quoted(b),
                S::BeforeValue => S::Unquoted,
                S::Unquoted if is_space(b) => S::Between,
                S::Unquoted => S::Unquoted,
            };
            i += 1;
        }
        None
    }

    fn start_tag(&mut self) -> Option<Token<'a>> {
        let (name, after_name) = self.name_at(self.pos + 1);
        let Some((gt, self_closing)) = self.tag_end(after_name) else {
            self.pos = self.src.len();
            return None;
        };
        let attrs_end = if self_closing { gt - 1 } else { gt };
        let attrs = &self.src[after_name..attrs_end.max(after_name)];
        self.pos = gt + 1;
        Some(Token::Start(Tag {
            name,
            attrs,
            self_closing,
        }))
    }

    fn end_tag(&mut self) -> Option<Token<'a>> {
        let (name, after_name) = self.name_at(self.pos + 2);
        let Some((gt, _)) = self.tag_end(after_name) else {
            self.pos = self.src.len();
            return None;
        };
        self.pos = gt + 1;
        Some(Token::End(name))
    }

    /// The content of a raw-text element whose start tag was just read, up to its end tag
    /// `</name` (which is consumed too); the rest of the input when there is none.
    pub fn raw_text(&mut self, name: Name) -> &'a str {
        let bytes = self.bytes();
        let start = self.pos;
        let n = name.as_bytes();
        let mut p = start;
        loop {
            let lt = self.find(p, b'<');
            if lt >= bytes.len() {
                self.pos = bytes.len();
                return &self.src[start..];
            }
            let tail = &bytes[lt + 1..];
            let is_end = tail.first() == Some(&b'/')
                && tail.len() > n.len()
                && tail[1..=n.len()].eq_ignore_ascii_case(n)
                && matches!(tail.get(n.len() + 1), Some(&b) if is_space(b) || b == b'/' || b == b'>');
            if is_end {
                let content = &self.src[start..lt];
                self.pos = match self.tag_end(lt + 2 + n.len()) {
                    Some((gt, _)) => gt + 1,
                    None => bytes.len(),
                };
                return content;
            }
            p = lt + 1;
        }
    }

    /// Everything left (for `<plaintext>`).
    pub fn rest(&mut self) -> &'a str {
        let rest = &self.src[self.pos..];
        self.pos = self.src.len();
        rest
    }
}

/// Attributes of a tag, as `(name, raw value)`; a value-less attribute has value `""`.
pub struct Attrs<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Iterator for Attrs<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let bytes = self.src.as_bytes();
        let mut i = self.pos;
        while i < bytes.len() && (is_space(bytes[i]) || bytes[i] == b'/') {
            i += 1;
        }
        if i >= bytes.len() {
            self.pos = i;
            return None;
        }
        let name_start = i;
        // The first character may be `=` (then it is part of the name, as in the spec).
        i += 1;
        while i < bytes.len() && !is_space(bytes[i]) && !matches!(bytes[i], b'/' | b'=') {
            i += 1;
        }
        let name = &self.src[name_start..i];
        while i < bytes.len() && is_space(bytes[i]) {
            i += 1;
        }
        if i >= bytes.len() || bytes[i] != b'=' {
            self.pos = i;
            return Some((name, ""));
        }
        i += 1;
        while i < bytes.len() && is_space(bytes[i]) {
            i += 1;
        }
        let value = match bytes.get(i) {
            Some(&q) if q == b'"' || q == b'\'' => {
                let start = i + 1;
                let end = bytes[start..]
                    .iter()
                    .position(|&b| b == q)
                    .map_or(bytes.len(), |k| start + k);
                i = (end + 1).min(bytes.len());
                &self.src[start..end]
            }
            _ => {
                let start = i;
                while i < bytes.len() && !is_space(bytes[i]) {
                    i += 1;
                }
                &self.src[start..i]
            }
        };
        self.pos = i;
        Some((name, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(html: &str) -> Vec<String> {
        let mut t = Tokenizer::new(html);
        let mut out = Vec::new();
        while let Some(tok) = t.next_token() {
            out.push(match tok {
                Token::Text(s) => format!("T{s}"),
                Token::Start(tag) => format!(
                    "S{:?}{}{}",
                    tag.name,
                    if tag.self_closing { "/" } else { "" },
                    tag.attrs()
                        .map(|(n, v)| format!(" {n}={v}"))
                        .collect::<String>()
                ),
                Token::End(name) => format!("E{name:?}"),
            });
        }
        out
    }

    #[test]
    fn tags_text_and_comments() {
        assert_eq!(
            tokens("<!DOCTYPE html><P class=\"a>b\" id='x' hidden>1 < 2<!-- <p> -->3</p ><br/>"),
            ["Sp class=a>b id=x hidden=", "T1 < 2", "T3", "Ep", "Sbr/"]
        );
        assert_eq!(
            tokens("a<!-->b<!--->c<!-- x --!>d</>e<?php x ?>f"),
            ["Ta", "Tb", "Tc", "Td", "Te", "Tf"]
        );
        assert_eq!(tokens("a<b"), ["Ta"]);
        assert_eq!(tokens("x<3 and <"), ["Tx<3 and <"]);
        assert_eq!(tokens("<img src=a.png alt=x/>"), ["Simg src=a.png alt=x/"]);
    }

    #[test]
    fn raw_text_runs_to_its_end_tag() {
        let mut t = Tokenizer::new("<script>if (a</b) x = '</scr';</SCRIPT >after");
        let Some(Token::Start(tag)) = t.next_token() else {
            panic!()
        };
        assert_eq!(t.raw_text(tag.name), "if (a</b) x = '</scr';");
        assert!(matches!(t.next_token(), Some(Token::Text("after"))));
        let mut t = Tokenizer::new("<style>never closed");
        let Some(Token::Start(tag)) = t.next_token() else {
            panic!()
        };
        assert_eq!(t.raw_text(tag.name), "never closed");
        assert!(t.next_token().is_none());
    }

    #[test]
    fn long_names_never_match_short_ones() {
        let long = Name::new(b"pppppppppppppppppppp");
        assert!(!long.is("ppppppppppppppp"));
        assert!(Name::new(b"DIV").is("div"));
    }
}
