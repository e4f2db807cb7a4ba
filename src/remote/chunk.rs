//! Splitting an article into the inputs a model server accepts: the title, then the body in
//! chunks of at most `max_chars` characters, cut at sentence ends where possible, else at
//! whitespace. Each chunk remembers its character offset so answers map back to the field.

use crate::enrich::{Document, Field};

/// At most this many chunks of one article are sent (192,000 characters at the default
/// chunk size); text beyond them is not analysed remotely.
pub const MAX_CHUNKS: usize = 128;

/// One input sent to the model: a piece of a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub field: Field,
    /// Offset of the chunk's first character in the field, in chars.
    pub start: usize,
    pub text: String,
}

/// The title's and the body's chunks, title first, empty pieces left out.
pub fn chunks(doc: &Document<'_>, max_chars: usize) -> Vec<Chunk> {
    [(Field::Title, doc.title), (Field::Body, doc.body)]
        .into_iter()
        .flat_map(|(field, text)| {
            split(text, max_chars)
                .into_iter()
                .map(move |(start, piece)| Chunk {
                    field,
                    start,
                    text: piece.to_string(),
                })
        })
        .take(MAX_CHUNKS)
        .collect()
}

/// Pieces of `text` of at most `max_chars` chars each, as (char offset, piece). Leading and
/// trailing whitespace of a piece is left out; nothing else is.
pub fn split(text: &str, max_chars: usize) -> Vec<(usize, &str)> {
    let max_chars = max_chars.max(1);
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let n = chars.len();
    let byte_at = |i: usize| chars.get(i).map_or(text.len(), |c| c.0);
    let mut out = Vec::new();
    let mut start = 0;
    while start < n {
        while start < n && chars[start].1.is_whitespace() {
            start += 1;
        }
        if start == n {
            break;
        }
        let hard_end = (start + max_chars).min(n);
        let end = if hard_end == n {
            n
        } else {
            cut(&chars, start, hard_end)
        };
        let piece = text[byte_at(start)..byte_at(end)].trim_end();
        if !piece.is_empty() {
            out.push((start, piece));
        }
        start = end;
    }
    out
}

/// Where to end a chunk that starts at `start` and may not reach past `hard_end`:
/// after a sentence end in the second half of the window, else after the last whitespace,
/// else at `hard_end` (a word longer than a chunk is cut).
fn cut(chars: &[(usize, char)], start: usize, hard_end: usize) -> usize {
    let c = |i: usize| chars[i].1;
    let terminal = |ch: char| matches!(ch, '.' | '!' | '?' | '…' | '。');
    let closing = |ch: char| matches!(ch, '"' | '\'' | '”' | '’' | ')' | '»');
    let half = start + (hard_end - start) / 2;
    for e in (half.max(start + 2)..=hard_end).rev() {
        let before = c(e - 1);
        if before == '\n' {
            return e;
        }
        if before.is_whitespace()
            && (terminal(c(e - 2)) || (e >= start + 3 && closing(c(e - 2)) && terminal(c(e - 3))))
        {
            return e;
        }
    }
    (start + 1..=hard_end)
        .rev()
        .find(|&e| c(e - 1).is_whitespace())
        .unwrap_or(hard_end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn char_slice(text: &str, start: usize, len: usize) -> String {
        text.chars().skip(start).take(len).collect()
    }

    #[test]
    fn short_text_is_one_piece_without_surrounding_whitespace() {
        assert_eq!(split("  Hello there. ", 100), vec![(2, "Hello there.")]);
        assert!(split("   ", 100).is_empty());
        assert!(split("", 100).is_empty());
    }

    #[test]
    fn long_text_is_cut_at_sentence_ends_with_offsets_into_the_original() {
        let text = "Zürich is calm and quiet today. Émilie Dubois spoke in Genève today. Then the talks ended. \
                    Nobody left early.";
        let pieces = split(text, 40);
        assert!(pieces.len() > 1);
        for (start, piece) in &pieces {
            assert!(piece.chars().count() <= 40, "{piece:?}");
            assert_eq!(&char_slice(text, *start, piece.chars().count()), piece);
        }
        assert_eq!(pieces[0].1, "Zürich is calm and quiet today.");
        assert!(pieces[1].1.starts_with("Émilie"));
        // Nothing but whitespace is lost.
        let joined: String = pieces.iter().map(|p| p.1).collect::<Vec<_>>().join(" ");
        assert_eq!(
            joined.split_whitespace().collect::<Vec<_>>(),
            text.split_whitespace().collect::<Vec<_>>()
        );
    }

    #[test]
    fn falls_back_to_whitespace_then_to_a_hard_cut() {
        let pieces = split("aaaa bbbb cccc dddd", 10);
        assert_eq!(pieces, vec![(0, "aaaa bbbb"), (10, "cccc dddd")]);
        let pieces = split("abcdefghijkl", 5);
        assert_eq!(pieces, vec![(0, "abcde"), (5, "fghij"), (10, "kl")]);
    }

    #[test]
    fn chunks_put_the_title_first_and_cap_their_number() {
        let body = "word ".repeat(10_000);
        let doc = Document {
            title: "A title",
            body: &body,
            published: None,
            language: None,
        };
        let cs = chunks(&doc, 100);
        assert_eq!(cs[0].field, Field::Title);
        assert_eq!(cs[1].field, Field::Body);
        assert_eq!(cs[1].start, 0);
        assert_eq!(cs.len(), MAX_CHUNKS);
    }
}
