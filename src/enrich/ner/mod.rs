//! Named-entity tagger: a greedy left-to-right averaged perceptron over hashed features.
//!
//! Features per token: the word, its lower-case form, shapes, prefixes and suffixes, the two
//! words either side, the two previously predicted labels, gazetteer matches (entity strings
//! from the training data, matched case-insensitively), matches in three openly licensed
//! external lists (places, countries, person names; longest match per list), distributional
//! word clusters at three granularities learned without labels from the training text, GloVe
//! word clusters at four granularities (k-means over pre-trained vectors, embedded), and
//! document-level features: how the same word was labelled earlier in the article, how a
//! first pass labelled it across the whole article, and whether it appears capitalised away
//! from a sentence start anywhere in the article (which makes ALL-CAPS headlines and
//! sentence-initial words tractable). The perceptron predicts BILOU classes (begin, inside,
//! last, unit) over PER, ORG, LOC, MISC, which [`NerModel::tag_document`] returns as IOB2
//! labels. The weights are the sum of three averaged-perceptron runs over different document
//! orders.
//!
//! Weights live in one flat table of `2^bits` rows of 17 BILOU-class `i16`s (quantized
//! averaged perceptron weights), so tagging a token is ~65 hashed row reads and integer adds.
//!
//! Layout: [`labels`] (types, BILOU classes, IOB2 labels), [`features`] (per-token
//! information and feature templates), [`lexicons`] (gazetteers), [`word_clusters`],
//! [`decode`] (greedy decoding over the weights), [`format`] (the `ner.bin` format), [`train`];
//! this file holds the model and tagging.

mod decode;
mod features;
mod format;
mod labels;
mod lexicons;
mod train;
mod word_clusters;

pub use crate::enrich::hash::IdHasher;
pub use format::ModelError;
pub use labels::{N_LABELS, TYPES, label_tag, label_type};
pub use lexicons::{ExtGazetteer, Gazetteer};
pub use train::train;
pub use word_clusters::Clusters;

use crate::enrich::hash::IdMap;
use decode::{Quantized, decode_doc};
use features::{Tok, make_tok};
use labels::{drop_lowercase_spans, to_iob2};
use word_clusters::GloveClusters;

/// A trained tagger: quantized weights and the gazetteer.
#[derive(Clone)]
pub struct NerModel {
    bits: u32,
    weights: Vec<i16>,
    gazetteer: Gazetteer,
    clusters: Clusters,
    ext: ExtGazetteer,
    glove: GloveClusters,
}

impl std::fmt::Debug for NerModel {
    fn fmt(&self, fm: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fm.debug_struct("NerModel")
            .field("bits", &self.bits)
            .field("gazetteer", &self.gazetteer.len())
            .field("clusters", &self.clusters.map.len())
            .field("external", &self.ext.map.len())
            .finish()
    }
}

/// Why tokens are prepared.
#[derive(Clone, Copy)]
enum Pass<'a> {
    /// Tagging an article: bare initials are read as initials (`is_bare_initial`).
    Tagging,
    /// Training on a document whose own entities are left out of the gazetteer counts.
    Training { own: &'a IdMap<[u8; 4]> },
}

fn prepare(
    sentences: &[Vec<&str>],
    gaz: &Gazetteer,
    clusters: &Clusters,
    ext: &ExtGazetteer,
    glove: &GloveClusters,
    pass: Pass<'_>,
) -> Vec<Vec<Tok>> {
    let (exclude, tagging) = match pass {
        Pass::Tagging => (None, true),
        Pass::Training { own } => (Some(own), false),
    };
    let mut buf = Vec::with_capacity(32);
    sentences
        .iter()
        .map(|s| {
            let mut toks: Vec<Tok> = s
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    if tagging && is_bare_initial(w, s.get(i + 1).copied()) {
                        make_tok(&format!("{w}."), &mut buf)
                    } else {
                        make_tok(w, &mut buf)
                    }
                })
                .collect();
            gaz.mark(&mut toks, exclude);
            clusters.mark(&mut toks);
            ext.mark(&mut toks);
            glove.mark(&mut toks);
            toks
        })
        .collect()
}

/// An initial written without its period ("S Jaishankar", Indian and some wire styles): a
/// single capital letter other than the words "A" and "I", before a title-case word. When
/// tagging, the tagger sees it as "S.", the Reuters convention it was trained on (training
/// keeps the data's own forms: normalising them there cost 0.3 dev F1).
fn is_bare_initial(word: &str, next: Option<&str>) -> bool {
    let mut chars = word.chars();
    let (Some(c), None) = (chars.next(), chars.next()) else {
        return false;
    };
    let title_case_next = next.is_some_and(|n| {
        let mut n = n.chars();
        n.next().is_some_and(char::is_uppercase) && n.next().is_some_and(char::is_lowercase)
    });
    c.is_ascii_uppercase() && c != 'A' && c != 'I' && title_case_next
}

impl NerModel {
    /// Tokens of a document prepared for tagging.
    fn prepared(&self, sentences: &[Vec<&str>]) -> Vec<Vec<Tok>> {
        prepare(
            sentences,
            &self.gazetteer,
            &self.clusters,
            &self.ext,
            &self.glove,
            Pass::Tagging,
        )
    }

    /// Tag one document given as sentences of tokens. Returns one label per token.
    pub fn tag_document(&self, sentences: &[Vec<&str>]) -> Vec<Vec<u8>> {
        let toks = self.prepared(sentences);
        let ext = !self.ext.map.is_empty();
        let mut w = Quantized::new(&self.weights, self.bits);
        let first = decode_doc(ext, &toks, None, &mut w, None);
        decode_doc(ext, &toks, None, &mut w, Some(&first))
            .iter()
            .zip(sentences)
            .map(|(classes, words)| {
                let mut labels = to_iob2(classes);
                drop_lowercase_spans(words, &mut labels);
                labels
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_initials_are_recognised_before_title_case_names_only() {
        assert!(is_bare_initial("S", Some("Jaishankar")));
        assert!(is_bare_initial("W", Some("Bush")));
        assert!(!is_bare_initial("A", Some("Russian")));
        assert!(!is_bare_initial("I", Some("Think")));
        assert!(!is_bare_initial("S", Some("JAISHANKAR")));
        assert!(!is_bare_initial("S", Some("and")));
        assert!(!is_bare_initial("S", None));
        assert!(!is_bare_initial("St", Some("Petersburg")));
        assert!(!is_bare_initial("S.", Some("Jaishankar")));
    }

    #[test]
    fn model_round_trips_through_bytes_and_tags_what_it_learned() {
        let text = "-DOCSTART- -X- O O\n\nPeter NNP I-NP I-PER\nvisited VBD O O\nParis NNP O I-LOC\n. . O O\n\n\
                    -DOCSTART- -X- O O\n\nAnna NNP I-NP I-PER\nleft VBD O O\nBerlin NNP O I-LOC\n. . O O\n";
        let docs = crate::enrich::conll::parse(text);
        let m = train(&docs, 10, 12, |_, _| {});
        let bytes = m.to_bytes();
        let m2 = NerModel::from_bytes(&bytes).expect("round trip");
        assert_eq!(
            m2.to_bytes(),
            bytes,
            "every section survives the round trip"
        );
        let tags = m2.tag_document(&[vec!["Peter", "visited", "Paris", "."]]);
        assert_eq!(
            tags[0].iter().map(|&l| label_tag(l)).collect::<Vec<_>>(),
            ["B-PER", "O", "B-LOC", "O"]
        );
        assert!(NerModel::from_bytes(&bytes[..bytes.len() - 3]).is_err());
        assert!(NerModel::from_bytes(b"garbage").is_err());
    }

    #[test]
    fn tagging_odd_tokens_does_not_panic() {
        let m = train(&[], 1, 8, |_, _| {});
        let _ = m.tag_document(&[vec![], vec!["", "🙂", "\u{301}", "ÀÉ"]]);
    }
}
