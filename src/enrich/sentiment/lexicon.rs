//! VADER's tables (negations, boosters, constants), the word key every table is hashed by, and
//! the shipped data files: the embedding-derived valence table and the learned news weights.

use super::IdMap;
use crate::enrich::hash::{SEED, step};

pub(super) static NEWS_WEIGHTS: &str = include_str!("../model/sentiment_news.tsv");
pub(super) static VALENCES: &str = include_str!("../model/sentiment_valence.tsv");

pub(super) const B_INCR: f32 = 0.293;
pub(super) const NEGATION_SCALAR: f32 = -0.74;
pub(super) const ALPHA: f32 = 15.0;

pub(super) const NEGATIONS: &[&str] = &[
    "aint",
    "arent",
    "cannot",
    "cant",
    "couldnt",
    "darent",
    "didnt",
    "doesnt",
    "ain't",
    "aren't",
    "can't",
    "couldn't",
    "daren't",
    "didn't",
    "doesn't",
    "dont",
    "hadnt",
    "hasnt",
    "havent",
    "isnt",
    "mightnt",
    "mustnt",
    "neither",
    "don't",
    "hadn't",
    "hasn't",
    "haven't",
    "isn't",
    "mightn't",
    "mustn't",
    "neednt",
    "needn't",
    "never",
    "none",
    "nope",
    "nor",
    "not",
    "nothing",
    "nowhere",
    "oughtnt",
    "shant",
    "shouldnt",
    "uhuh",
    "wasnt",
    "werent",
    "oughtn't",
    "shan't",
    "shouldn't",
    "wasn't",
    "weren't",
    "without",
    "wont",
    "wouldnt",
    "won't",
    "wouldn't",
    "rarely",
    "seldom",
    "despite",
    "n't",
    "no",
];

pub(super) const BOOST_UP: &[&str] = &[
    "absolutely",
    "amazingly",
    "awfully",
    "completely",
    "considerably",
    "decidedly",
    "deeply",
    "effing",
    "enormously",
    "entirely",
    "especially",
    "exceptionally",
    "extremely",
    "fabulously",
    "flipping",
    "flippin",
    "fricking",
    "frickin",
    "frigging",
    "friggin",
    "fully",
    "fucking",
    "greatly",
    "hella",
    "highly",
    "hugely",
    "incredibly",
    "intensely",
    "majorly",
    "more",
    "most",
    "particularly",
    "purely",
    "quite",
    "really",
    "remarkably",
    "so",
    "substantially",
    "thoroughly",
    "totally",
    "tremendously",
    "uber",
    "unbelievably",
    "unusually",
    "utterly",
    "very",
];
pub(super) const BOOST_DOWN: &[&str] = &[
    "almost",
    "barely",
    "hardly",
    "just",
    "kind",
    "less",
    "little",
    "marginally",
    "occasionally",
    "partly",
    "scarcely",
    "slightly",
    "somewhat",
    "sort",
];

pub(super) fn word_key(word: &str) -> u64 {
    let mix = |h: u64, c: char| step(h, c as u64);
    let mut h = SEED;
    // Most words are ASCII: lower-case them byte by byte (the same key as the general path,
    // without its per-character case tables).
    if word.is_ascii() {
        for b in word.bytes() {
            h = mix(h, char::from(b.to_ascii_lowercase()));
        }
        return h;
    }
    for c in word.chars().flat_map(char::to_lowercase) {
        let c = if matches!(c, '’' | '‘') { '\'' } else { c };
        h = mix(h, c);
    }
    h
}

/// What the hot path knows of one word key, from every table: its VADER valence, booster
/// increment and negation flag, its learned news weight (words and `~stems`) and, for words of
/// the valence table, their two embedding-derived valences. One look-up per word finds all.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct WordEntry {
    pub(super) weight: f32,
    pub(super) valence: Option<[f32; 2]>,
    pub(super) vader: Option<f32>,
    pub(super) booster: Option<f32>,
    pub(super) negation: bool,
}

impl WordEntry {
    /// True when the entry holds something besides a news weight.
    pub(super) fn is_lexical(&self) -> bool {
        self.valence.is_some() || self.vader.is_some() || self.booster.is_some() || self.negation
    }
}

/// Adds the valence table (`word<TAB>linear<TAB>knn` lines; `#` lines are comments) to `out`.
pub(super) fn parse_valences(text: &str, out: &mut IdMap<WordEntry>) {
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let mut p = line.split('\t');
        let (Some(w), Some(a), Some(b)) = (p.next(), p.next(), p.next()) else {
            continue;
        };
        let (Ok(a), Ok(b)) = (a.trim().parse::<f32>(), b.trim().parse::<f32>()) else {
            continue;
        };
        out.entry(word_key(w)).or_default().valence = Some([a, b]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_keys_take_the_ascii_path_and_the_unicode_path_alike() {
        let slow = |w: &str| {
            let mut h = 0xcbf2_9ce4_8422_2325u64;
            for c in w.chars().flat_map(char::to_lowercase) {
                let c = if matches!(c, '’' | '‘') { '\'' } else { c };
                h = (h.rotate_left(5) ^ c as u64).wrapping_mul(0x517c_c1b7_2722_0a95);
            }
            h
        };
        for w in [
            "Killings",
            "U.S.",
            "don't",
            "",
            "ABC-12",
            "Don’t",
            "Ärger",
            "İstanbul",
        ] {
            assert_eq!(word_key(w), slow(w), "{w}");
        }
        assert_eq!(word_key("Don’t"), word_key("don't"));
    }

    /// The hot path keys a word's lower-case form by the word's own key (`word_key` lower-cases
    /// again): true only because lower-casing is idempotent, checked here for every char.
    #[test]
    fn lower_casing_is_idempotent_so_a_lower_cased_word_keeps_its_key() {
        for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
            let once: String = c.to_lowercase().collect();
            let twice: String = once.chars().flat_map(char::to_lowercase).collect();
            assert_eq!(once, twice, "{c:?}");
        }
    }
}
