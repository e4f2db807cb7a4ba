//! Tokenizer with character offsets, and a sentence splitter, for news prose.
//!
//! Tokens follow the CoNLL-2003 (Reuters) conventions the tagger was trained on: punctuation
//! is split off, possessive `'s` is its own token, hyphenated words and numbers such as
//! `1,000.5` stay whole, and abbreviations (`Dr.`, `U.S.`, initials such as `S.`) keep their
//! period. Offsets are Unicode scalar values (chars), as [`super::Mention`] wants, plus byte
//! offsets for slicing.

/// One token: `text[byte_start..byte_end]`, chars `start..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    pub start: usize,
    pub end: usize,
    pub byte_start: usize,
    pub byte_end: usize,
}

impl Token {
    /// The token's text in `src` (the string it was cut from).
    pub fn text<'a>(&self, src: &'a str) -> &'a str {
        src.get(self.byte_start..self.byte_end).unwrap_or("")
    }
}

/// Words that keep a following period (case-insensitive, without the period).
const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "gen", "sen", "rep", "gov", "lt", "col",
    "capt", "cmdr", "adm", "sgt", "maj", "rev", "hon", "pres", "inc", "corp", "ltd", "co", "bros",
    "no", "vs", "etc", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct",
    "nov", "dec", "mon", "tue", "tues", "wed", "thu", "thur", "thurs", "fri", "sat", "sun", "mt",
    "ft", "approx", "dept", "est", "fig", "govt", "av", "ave", "blvd", "e.g", "i.e",
];

fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '’' | 'ʼ')
}

/// Split `text` into tokens. Never panics; whitespace and control characters separate.
pub fn tokenize(text: &str) -> Vec<Token> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let n = chars.len();
    let byte_at = |i: usize| if i < n { chars[i].0 } else { text.len() };
    let ch = |i: usize| if i < n { chars[i].1 } else { ' ' };
    let mut out = Vec::with_capacity(n / 5 + 1);
    let mut i = 0;
    while i < n {
        let c = chars[i].1;
        if c.is_whitespace() || c.is_control() {
            i += 1;
            continue;
        }
        let start = i;
        if c.is_alphanumeric() {
            let mut j = i + 1;
            while j < n {
                let d = chars[j].1;
                if d.is_alphanumeric() || is_mark(d) {
                    j += 1;
                    continue;
                }
                let prev = ch(j - 1);
                let next = ch(j + 1);
                let joins = match d {
                    // U.S, e.g, 3.5
                    '.' => next.is_alphanumeric() && (prev.is_numeric() == next.is_numeric()),
                    // 1,000
                    ',' => {
                        prev.is_ascii_digit() && next.is_ascii_digit() && {
                            // exactly three digits follow
                            let k = j + 1;
                            (k..k + 3).all(|x| ch(x).is_ascii_digit())
                                && !ch(k + 3).is_ascii_digit()
                        }
                    }
                    '-' | '‐' | '‑' | '/' => prev.is_alphanumeric() && next.is_alphanumeric(),
                    // O'Brien, don't — but not the possessive 's
                    _ if is_apostrophe(d) => {
                        prev.is_alphabetic()
                            && next.is_alphabetic()
                            && (!matches!(next, 's' | 'S') || ch(j + 2).is_alphanumeric())
                    }
                    // AT&T
                    '&' => prev.is_uppercase() && next.is_uppercase(),
                    _ => false,
                };
                if !joins {
                    break;
                }
                j += 1;
            }
            // A following period belongs to abbreviations and initials.
            if ch(j) == '.' {
                let word = &text[byte_at(i)..byte_at(j)];
                let single_upper = j == i + 1 && c.is_uppercase();
                let dotted = word.contains('.') && word.chars().any(char::is_alphabetic);
                let listed =
                    word.len() <= 6 && ABBREVIATIONS.iter().any(|a| a.eq_ignore_ascii_case(word));
                if single_upper || dotted || listed {
                    j += 1;
                }
            }
            out.push(Token {
                start,
                end: j,
                byte_start: byte_at(start),
                byte_end: byte_at(j),
            });
            i = j;
            continue;
        }
        // Possessive 's after a word.
        if is_apostrophe(c)
            && i > 0
            && ch(i - 1).is_alphanumeric()
            && matches!(ch(i + 1), 's' | 'S')
            && !ch(i + 2).is_alphanumeric()
        {
            out.push(Token {
                start,
                end: i + 2,
                byte_start: byte_at(i),
                byte_end: byte_at(i + 2),
            });
            i += 2;
            continue;
        }
        // Runs of the same punctuation ("...", "--", "''") stay together.
        let mut j = i + 1;
        if matches!(c, '.' | '-' | '\'' | '`' | '!' | '?' | '*' | '=' | '_') {
            while j < n && chars[j].1 == c {
                j += 1;
            }
        }
        out.push(Token {
            start,
            end: j,
            byte_start: byte_at(i),
            byte_end: byte_at(j),
        });
        i = j;
    }
    out
}

fn is_mark(c: char) -> bool {
    // Combining marks (accents written as separate code points) stay inside words.
    ('\u{0300}'..='\u{036F}').contains(&c) || c == '\u{200D}'
}

fn is_closing(t: &str) -> bool {
    matches!(t, "\"" | "”" | "’" | "'" | "''" | ")" | "]" | "»" | "’’")
}

/// Split tokens into sentences: returns token index ranges. Ends at `.`, `!`, `?` (plus closing
/// quotes and brackets) before a capital, digit or opening quote, and always at blank lines.
pub fn sentences(text: &str, tokens: &[Token]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < tokens.len() {
        let t = tokens[i].text(text);
        let mut end_here = false;
        let mut last = i;
        if matches!(t.chars().next(), Some('.' | '!' | '?' | '…')) {
            while last + 1 < tokens.len() && is_closing(tokens[last + 1].text(text)) {
                last += 1;
            }
            match tokens.get(last + 1) {
                None => end_here = true,
                Some(next) => {
                    let nt = next.text(text);
                    let c = nt.chars().next().unwrap_or(' ');
                    end_here = c.is_uppercase()
                        || c.is_numeric()
                        || matches!(c, '"' | '“' | '‘' | '\'' | '(' | '[' | '«' | '-' | '—')
                        || gap_has_newline(text, &tokens[last], next);
                }
            }
        } else if let Some(next) = tokens.get(i + 1) {
            end_here = gap_has_blank_line(text, &tokens[i], next);
        }
        if end_here {
            out.push(start..last + 1);
            start = last + 1;
        }
        i = last + 1;
    }
    if start < tokens.len() {
        out.push(start..tokens.len());
    }
    out
}

fn gap<'a>(text: &'a str, a: &Token, b: &Token) -> &'a str {
    text.get(a.byte_end..b.byte_start).unwrap_or("")
}

fn gap_has_newline(text: &str, a: &Token, b: &Token) -> bool {
    gap(text, a, b).contains('\n')
}

fn gap_has_blank_line(text: &str, a: &Token, b: &Token) -> bool {
    gap(text, a, b).matches('\n').count() >= 2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<&str> {
        tokenize(text).iter().map(|t| t.text(text)).collect()
    }

    #[test]
    fn splits_punctuation_and_possessives_with_curly_quotes() {
        assert_eq!(
            words("convey Moscow’s concern about a “dirty bomb”, repeating"),
            [
                "convey",
                "Moscow",
                "’s",
                "concern",
                "about",
                "a",
                "“",
                "dirty",
                "bomb",
                "”",
                ",",
                "repeating"
            ]
        );
        assert_eq!(words("India's PM"), ["India", "'s", "PM"]);
    }

    #[test]
    fn keeps_initials_abbreviations_hyphens_and_numbers_whole() {
        assert_eq!(
            words("Dr. S. Jaishankar met U.S. officials in the India-Russia summit."),
            [
                "Dr.",
                "S.",
                "Jaishankar",
                "met",
                "U.S.",
                "officials",
                "in",
                "the",
                "India-Russia",
                "summit",
                "."
            ]
        );
        assert_eq!(
            words("rose 9.5% to $1,000.50 bn"),
            ["rose", "9.5", "%", "to", "$", "1,000.50", "bn"]
        );
        assert_eq!(words("O'Brien don't"), ["O'Brien", "don't"]);
        assert_eq!(words("S Jaishankar"), ["S", "Jaishankar"]);
    }

    #[test]
    fn offsets_are_characters_not_bytes() {
        let text = "“Ünïcode” café";
        let toks = tokenize(text);
        let chars: Vec<char> = text.chars().collect();
        for t in &toks {
            let by_chars: String = chars[t.start..t.end].iter().collect();
            assert_eq!(by_chars, t.text(text));
        }
        assert_eq!(toks[1].start, 1);
        assert_eq!(toks[3].start, 10);
    }

    #[test]
    fn handles_datelines_and_all_caps_headlines() {
        assert_eq!(
            words("MOSCOW (Reuters) - RUSSIA SAYS NO"),
            ["MOSCOW", "(", "Reuters", ")", "-", "RUSSIA", "SAYS", "NO"]
        );
    }

    #[test]
    fn never_panics_on_odd_input() {
        for text in [
            "",
            " ",
            "'",
            "’s",
            "a.",
            ".",
            "1,",
            "1,00",
            "\u{0301}x",
            "🙂🙂",
            "x\u{0}y",
            "...!",
        ] {
            let toks = tokenize(text);
            let _ = sentences(text, &toks);
        }
    }

    #[test]
    fn splits_sentences_but_not_after_abbreviations() {
        let text =
            "Dr. S. Jaishankar met Mr. Lavrov. They talked. “Good,” he said! Then\n\nnew para";
        let toks = tokenize(text);
        let sents: Vec<String> = sentences(text, &toks)
            .into_iter()
            .map(|r| {
                toks[r]
                    .iter()
                    .map(|t| t.text(text))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        assert_eq!(
            sents,
            [
                "Dr. S. Jaishankar met Mr. Lavrov .",
                "They talked .",
                "“ Good , ” he said !",
                "Then",
                "new para"
            ]
        );
    }
}
