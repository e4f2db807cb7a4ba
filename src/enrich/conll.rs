//! CoNLL-format data (one token per line, tag in the last column, blank line between
//! sentences, `-DOCSTART-` between documents) and a scorer that counts exactly as the
//! `conlleval` script does: a chunk is correct when its span and type both match.

use std::collections::BTreeMap;

/// One document: sentences of `(token, tag)`.
#[derive(Debug, Clone, Default)]
pub struct ConllDoc {
    pub sentences: Vec<Vec<(String, String)>>,
}

/// Parse CoNLL text. Any number of columns; the first is the token, the last the tag.
pub fn parse(text: &str) -> Vec<ConllDoc> {
    let mut docs = Vec::new();
    let mut doc = ConllDoc::default();
    let mut sent: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            if !sent.is_empty() {
                doc.sentences.push(std::mem::take(&mut sent));
            }
            continue;
        }
        let mut cols = line.split_whitespace();
        let Some(word) = cols.next() else { continue };
        if word == "-DOCSTART-" {
            if !sent.is_empty() {
                doc.sentences.push(std::mem::take(&mut sent));
            }
            if !doc.sentences.is_empty() {
                docs.push(std::mem::take(&mut doc));
            }
            continue;
        }
        let tag = cols.next_back().unwrap_or("O");
        sent.push((word.to_string(), tag.to_string()));
    }
    if !sent.is_empty() {
        doc.sentences.push(sent);
    }
    if !doc.sentences.is_empty() {
        docs.push(doc);
    }
    docs
}

fn split_tag(tag: &str) -> (char, &str) {
    if tag == "O" || tag.is_empty() {
        return ('O', "");
    }
    match tag.split_once('-') {
        Some((p, t)) => (p.chars().next().unwrap_or('O'), t),
        None => ('I', tag),
    }
}

// The two predicates below are conlleval's `endOfChunk` and `startOfChunk`.
fn end_of_chunk(prev: char, tag: char, prev_type: &str, ty: &str) -> bool {
    matches!(
        (prev, tag),
        ('B', 'B')
            | ('B', 'O')
            | ('I', 'B')
            | ('I', 'O')
            | ('E', _)
            | ('S', _)
            | ('B', 'S')
            | ('I', 'S')
    ) || (prev != 'O' && prev != '.' && prev_type != ty)
}

fn start_of_chunk(prev: char, tag: char, prev_type: &str, ty: &str) -> bool {
    matches!(
        (prev, tag),
        ('B', 'B')
            | ('I', 'B')
            | ('O', 'B')
            | ('O', 'I')
            | ('E', 'E')
            | ('E', 'I')
            | ('O', 'E')
            | ('S', 'E')
            | ('S', 'I')
            | (_, 'S')
    ) || (tag != 'O' && tag != '.' && prev_type != ty)
}

/// Chunks `(start, end_exclusive, type)` of one sentence's tags (IOB1, IOB2 or IOBES).
pub fn chunks<S: AsRef<str>>(tags: &[S]) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let (mut prev, mut prev_type) = ('O', "");
    let mut open: Option<usize> = None;
    for (i, tag) in tags.iter().enumerate() {
        let (t, ty) = split_tag(tag.as_ref());
        if let Some(s) = open
            && end_of_chunk(prev, t, prev_type, ty)
        {
            out.push((s, i, prev_type.to_string()));
            open = None;
        }
        if start_of_chunk(prev, t, prev_type, ty) {
            open = Some(i);
        }
        if t == 'O' {
            open = None;
        }
        prev = t;
        prev_type = ty;
    }
    if let Some(s) = open {
        out.push((s, tags.len(), prev_type.to_string()));
    }
    out
}

/// Counts for one type (or overall).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counts {
    pub correct: usize,
    pub predicted: usize,
    pub gold: usize,
}

impl Counts {
    pub fn precision(&self) -> f64 {
        if self.predicted == 0 {
            0.0
        } else {
            self.correct as f64 / self.predicted as f64
        }
    }
    pub fn recall(&self) -> f64 {
        if self.gold == 0 {
            0.0
        } else {
            self.correct as f64 / self.gold as f64
        }
    }
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

/// Accumulates conlleval counts sentence by sentence.
#[derive(Debug, Clone, Default)]
pub struct Scorer {
    pub overall: Counts,
    pub per_type: BTreeMap<String, Counts>,
    pub tokens: usize,
    pub tokens_correct: usize,
}

impl Scorer {
    /// Add one sentence: gold and predicted tags, same length.
    pub fn add<S: AsRef<str>, T: AsRef<str>>(&mut self, gold: &[S], pred: &[T]) {
        let g = chunks(gold);
        let p = chunks(pred);
        for (_, _, ty) in &g {
            self.overall.gold += 1;
            self.per_type.entry(ty.clone()).or_default().gold += 1;
        }
        for c in &p {
            self.overall.predicted += 1;
            let e = self.per_type.entry(c.2.clone()).or_default();
            e.predicted += 1;
            if g.contains(c) {
                e.correct += 1;
                self.overall.correct += 1;
            }
        }
        self.tokens += gold.len();
        self.tokens_correct += gold
            .iter()
            .zip(pred)
            .filter(|(a, b)| split_tag(a.as_ref()).1 == split_tag(b.as_ref()).1)
            .count();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iob1_chunks_split_only_on_b_or_type_change() {
        let tags = [
            "I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG", "O", "I-MISC",
        ];
        assert_eq!(
            chunks(&tags),
            vec![
                (0, 2, "PER".into()),
                (2, 3, "PER".into()),
                (4, 5, "LOC".into()),
                (5, 6, "ORG".into()),
                (7, 8, "MISC".into())
            ]
        );
        // IOB2 form of the same.
        let iob2 = [
            "B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-ORG", "O", "B-MISC",
        ];
        assert_eq!(chunks(&iob2), chunks(&tags));
        // conlleval starts a chunk at a stray I- after O.
        assert_eq!(chunks(&["O", "I-ORG"]), vec![(1, 2, "ORG".into())]);
    }

    #[test]
    fn scorer_counts_exact_span_and_type_like_conlleval() {
        // Hand-checked: gold has 3 chunks (PER 0-2, LOC 3-4, ORG 5-7).
        // Predicted: PER 0-1 (wrong span), LOC 3-4 (right), MISC 5-7 (wrong type), PER 8-9 (spurious).
        let gold = [
            "I-PER", "I-PER", "O", "I-LOC", "O", "I-ORG", "I-ORG", "O", "O",
        ];
        let pred = [
            "B-PER", "O", "O", "B-LOC", "O", "B-MISC", "I-MISC", "O", "B-PER",
        ];
        let mut s = Scorer::default();
        s.add(&gold, &pred);
        assert_eq!(
            s.overall,
            Counts {
                correct: 1,
                predicted: 4,
                gold: 3
            }
        );
        assert!((s.overall.precision() - 0.25).abs() < 1e-12);
        assert!((s.overall.recall() - 1.0 / 3.0).abs() < 1e-12);
        assert!((s.overall.f1() - 2.0 * 0.25 * (1.0 / 3.0) / (0.25 + 1.0 / 3.0)).abs() < 1e-12);
        assert_eq!(
            s.per_type["PER"],
            Counts {
                correct: 0,
                predicted: 2,
                gold: 1
            }
        );
        assert_eq!(
            s.per_type["LOC"],
            Counts {
                correct: 1,
                predicted: 1,
                gold: 1
            }
        );
        assert_eq!(
            s.per_type["MISC"],
            Counts {
                correct: 0,
                predicted: 1,
                gold: 0
            }
        );
        assert_eq!(
            s.per_type["ORG"],
            Counts {
                correct: 0,
                predicted: 0,
                gold: 1
            }
        );
        assert_eq!(s.tokens, 9);
        assert_eq!(s.tokens_correct, 5);
    }

    #[test]
    fn parses_documents_and_sentences() {
        let text = "-DOCSTART- -X- O O\n\nEU NNP I-NP I-ORG\nrejects VBZ I-VP O\n\nPeter NNP I-NP I-PER\n\n-DOCSTART- -X- O O\n\nX NN O O\n";
        let docs = parse(text);
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].sentences.len(), 2);
        assert_eq!(
            docs[0].sentences[0][0],
            ("EU".to_string(), "I-ORG".to_string())
        );
        assert_eq!(docs[1].sentences[0].len(), 1);
    }
}
