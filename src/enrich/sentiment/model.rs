//! The hot path: VADER measurements of a sentence, its dense and learned word features, and
//! the predicted news rating of [`SentimentModel`].

use std::collections::HashSet;
use std::hash::BuildHasherDefault;

use super::IdMap;
use super::lexicon::{
    ALPHA, B_INCR, BOOST_DOWN, BOOST_UP, NEGATION_SCALAR, NEGATIONS, NEWS_WEIGHTS, VALENCES,
    WordEntry, parse_valences, word_key,
};
use crate::enrich::ner::IdHasher;

/// VADER-style measurements of one sentence.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Vader {
    /// Normalized compound score in [-1, 1].
    pub compound: f32,
    /// Sum of positive valences (VADER's, +1 each).
    pub pos: f32,
    /// Sum of negative valences (VADER's, -1 each; positive number).
    pub neg: f32,
    /// Words with positive / negative lexicon valence (for GDELT-style tone).
    pub pos_words: usize,
    pub neg_words: usize,
    /// Words counted.
    pub words: usize,
}

/// Learned news adaptation: rating = bias + a·compound + b·pos + c·neg + dense · weights
/// + Σ learned word and stem weights (those live in [`SentimentModel`]'s word table).
#[derive(Debug, Clone, Default)]
pub struct NewsWeights {
    pub bias: f32,
    pub compound: f32,
    pub pos: f32,
    pub neg: f32,
    /// Weights of [`dense_features`] (empty: not used).
    pub dense: Vec<f32>,
}

/// Sentence-level features: compound·|compound|, VADER valence sums per √words, negation
/// count, then for each of the two table valences (linear, nearest-neighbour) six aggregates.
pub const N_DENSE: usize = 4 + 2 * N_VALENCE_AGG;
const N_VALENCE_AGG: usize = 6;

/// Running aggregate of one table valence over a sentence (negated words flipped).
#[derive(Debug, Clone, Copy)]
struct ValenceAgg {
    n: usize,
    sum: f32,
    pos: f32,
    neg: f32,
    max: f32,
    min: f32,
}

impl Default for ValenceAgg {
    fn default() -> Self {
        ValenceAgg {
            n: 0,
            sum: 0.0,
            pos: 0.0,
            neg: 0.0,
            max: f32::NEG_INFINITY,
            min: f32::INFINITY,
        }
    }
}

impl ValenceAgg {
    fn add(&mut self, x: f32) {
        self.n += 1;
        self.sum += x;
        if x > 0.0 {
            self.pos += x;
        } else {
            self.neg += x;
        }
        self.max = self.max.max(x);
        self.min = self.min.min(x);
    }

    /// sum/√n, positive sum, negative sum, mean, max, min (zeros for no words).
    fn features(&self) -> [f64; N_VALENCE_AGG] {
        if self.n == 0 {
            return [0.0; N_VALENCE_AGG];
        }
        let n = self.n as f64;
        [
            f64::from(self.sum) / n.sqrt(),
            f64::from(self.pos),
            f64::from(self.neg),
            f64::from(self.sum) / n,
            f64::from(self.max),
            f64::from(self.min),
        ]
    }
}

fn dense_features(v: &Vader, negations: usize, val: &[ValenceAgg; 2]) -> [f64; N_DENSE] {
    let c = f64::from(v.compound);
    let n = (v.words.max(1) as f64).sqrt();
    let mut out = [0.0; N_DENSE];
    out[..4].copy_from_slice(&[
        c * c.abs(),
        f64::from(v.pos) / n,
        f64::from(v.neg) / n,
        negations as f64,
    ]);
    out[4..4 + N_VALENCE_AGG].copy_from_slice(&val[0].features());
    out[4 + N_VALENCE_AGG..].copy_from_slice(&val[1].features());
    out
}

/// Crude suffix-stripping stem, for features that generalise across inflections.
fn stem(w: &str) -> &str {
    for suf in ["ings", "ing", "edly", "ed", "ies", "es", "ly", "s"] {
        if let Some(b) = w.strip_suffix(suf)
            && b.len() >= 3
        {
            return b;
        }
    }
    w
}

/// Calls `f(key, name)` for the learned features of one word: its `~stem` and the lower-case
/// word, for words of at least two letters (apostrophes allowed). `buf` is scratch space, so
/// the hot path allocates nothing per word.
fn word_features(w: &str, buf: &mut String, mut f: impl FnMut(u64, &str)) {
    let mut chars = 0;
    for c in w.chars() {
        if !(c.is_alphabetic() || c == '\'' || c == '’') {
            return;
        }
        chars += 1;
    }
    if chars < 2 {
        return;
    }
    buf.clear();
    buf.push('~');
    for c in w.chars().flat_map(char::to_lowercase) {
        buf.push(if c == '’' { '\'' } else { c });
    }
    let stem_end = 1 + stem(&buf[1..]).len();
    f(word_key(&buf[..stem_end]), &buf[..stem_end]);
    f(word_key(&buf[1..]), &buf[1..]);
}

/// The sentiment model: VADER lexicon, the embedding-derived valence table and learned news
/// weights.
#[derive(Debug, Clone)]
pub struct SentimentModel {
    lexicon: IdMap<f32>,
    negations: HashSet<u64, BuildHasherDefault<IdHasher>>,
    boosters: IdMap<f32>,
    but: u64,
    words: IdMap<WordEntry>,
    pub news: NewsWeights,
}

impl SentimentModel {
    /// VADER lexicon and valence table with the shipped news weights.
    pub fn load_default() -> SentimentModel {
        let mut m = Self::vader_only();
        m.set_news(NEWS_WEIGHTS);
        m
    }

    /// VADER alone (news weights zero, compound weight 4 so ratings are on the human scale);
    /// the valence table is loaded, as the base of a news fit.
    pub fn vader_only() -> SentimentModel {
        let mut lexicon = IdMap::default();
        for (k, v) in vader_sentiment::LEXICON.iter() {
            lexicon.insert(word_key(k.as_ref()), *v as f32);
        }
        let negations = NEGATIONS.iter().map(|w| word_key(w)).collect();
        let mut boosters = IdMap::default();
        for w in BOOST_UP {
            boosters.insert(word_key(w), B_INCR);
        }
        for w in BOOST_DOWN {
            boosters.insert(word_key(w), -B_INCR);
        }
        SentimentModel {
            lexicon,
            negations,
            boosters,
            but: word_key("but"),
            words: parse_valences(VALENCES),
            news: NewsWeights {
                compound: 4.0,
                ..Default::default()
            },
        }
    }

    /// Replace the news weights by those of a `sentiment_news.tsv` text.
    pub(super) fn set_news(&mut self, text: &str) {
        for e in self.words.values_mut() {
            e.weight = 0.0;
        }
        self.words.retain(|_, e| e.valence.is_some());
        let mut n = NewsWeights::default();
        for line in text.lines() {
            let mut parts = line.split('\t');
            let (Some(k), Some(v)) = (parts.next(), parts.next()) else {
                continue;
            };
            let Ok(v) = v.trim().parse::<f32>() else {
                continue;
            };
            match k {
                "#bias" => n.bias = v,
                "#compound" => n.compound = v,
                "#pos" => n.pos = v,
                "#neg" => n.neg = v,
                d if d.starts_with("#d") => {
                    let i: usize = d[2..].parse().unwrap_or(usize::MAX);
                    if i < N_DENSE {
                        n.dense.resize(N_DENSE, 0.0);
                        n.dense[i] = v;
                    }
                }
                w if !w.starts_with('#') => {
                    self.words.entry(word_key(w)).or_default().weight = v;
                }
                _ => {}
            }
        }
        self.news = n;
    }

    /// VADER measurements over a sentence's words.
    pub fn vader(&self, words: &[&str]) -> Vader {
        let keys: Vec<u64> = words.iter().map(|w| word_key(w)).collect();
        self.vader_keyed(words, &keys)
    }

    fn negated(&self, keys: &[u64], i: usize) -> bool {
        (1..=3).any(|d| i >= d && self.negations.contains(&keys[i - d]))
    }

    fn vader_keyed(&self, words: &[&str], keys: &[u64]) -> Vader {
        let letters_upper =
            |w: &str| w.chars().any(char::is_alphabetic) && !w.chars().any(char::is_lowercase);
        let mixed = words.iter().any(|w| letters_upper(w))
            && words.iter().any(|w| w.chars().any(char::is_lowercase));
        let mut vals: Vec<f32> = Vec::with_capacity(words.len());
        let mut out = Vader::default();
        let mut but_at = None;
        for (i, &k) in keys.iter().enumerate() {
            let w = words[i];
            if w.chars().any(char::is_alphanumeric) {
                out.words += 1;
            }
            if k == self.but {
                but_at = Some(i);
            }
            let Some(&base) = self.lexicon.get(&k) else {
                vals.push(0.0);
                continue;
            };
            if self.boosters.contains_key(&k) {
                vals.push(0.0);
                continue;
            }
            let mut v = base;
            if mixed && letters_upper(w) {
                v += if v > 0.0 { 0.733 } else { -0.733 };
            }
            for (dist, decay) in [(1usize, 1.0f32), (2, 0.95), (3, 0.9)] {
                if i < dist {
                    break;
                }
                if let Some(&b) = self.boosters.get(&keys[i - dist]) {
                    let b = if v < 0.0 { -b } else { b };
                    v += b * decay;
                }
            }
            if self.negated(keys, i) {
                v *= NEGATION_SCALAR;
            }
            if base > 0.0 {
                out.pos_words += 1;
            } else if base < 0.0 {
                out.neg_words += 1;
            }
            vals.push(v);
        }
        if let Some(b) = but_at {
            for (i, v) in vals.iter_mut().enumerate() {
                if i < b {
                    *v *= 0.5;
                } else if i > b {
                    *v *= 1.5;
                }
            }
        }
        let mut sum: f32 = vals.iter().sum();
        let excl = words.iter().filter(|w| w.contains('!')).count().min(4) as f32 * 0.292;
        if sum > 0.0 {
            sum += excl;
        } else if sum < 0.0 {
            sum -= excl;
        }
        out.compound = (sum / (sum * sum + ALPHA).sqrt()).clamp(-1.0, 1.0);
        for &v in &vals {
            if v > 0.0 {
                out.pos += v + 1.0;
            } else if v < 0.0 {
                out.neg += -v + 1.0;
            }
        }
        out
    }

    /// One pass over a sentence: VADER, the dense features, and `f(key, name)` for each
    /// learned-feature occurrence (not deduplicated).
    pub(super) fn scan(
        &self,
        words: &[&str],
        mut f: impl FnMut(u64, &str),
    ) -> (Vader, [f64; N_DENSE]) {
        let keys: Vec<u64> = words.iter().map(|w| word_key(w)).collect();
        let v = self.vader_keyed(words, &keys);
        let mut negations = 0;
        let mut val = [ValenceAgg::default(); 2];
        let mut buf = String::with_capacity(32);
        for (i, (&w, k)) in words.iter().zip(&keys).enumerate() {
            if self.negations.contains(k) {
                negations += 1;
            }
            if let Some(WordEntry {
                valence: Some(x), ..
            }) = self.words.get(k)
            {
                let s = if self.negated(&keys, i) {
                    NEGATION_SCALAR
                } else {
                    1.0
                };
                val[0].add(s * x[0]);
                val[1].add(s * x[1]);
            }
            word_features(w, &mut buf, &mut f);
        }
        (v, dense_features(&v, negations, &val))
    }

    /// Predicted human rating (-4..4) of one sentence, and its VADER measurements.
    pub fn rate(&self, words: &[&str]) -> (f32, Vader) {
        // Each weighted word or stem counts once per sentence; only weighted keys are
        // tracked, so the duplicate check stays short.
        let mut seen: Vec<u64> = Vec::new();
        let mut lexical = 0.0f32;
        let (v, dense) = self.scan(words, |key, _| {
            if let Some(e) = self.words.get(&key)
                && e.weight != 0.0
                && !seen.contains(&key)
            {
                seen.push(key);
                lexical += e.weight;
            }
        });
        let n = &self.news;
        let mut r = n.bias + n.compound * v.compound + n.pos * v.pos + n.neg * v.neg + lexical;
        for (w, x) in n.dense.iter().zip(dense) {
            r += w * x as f32;
        }
        (r.clamp(-4.0, 4.0), v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<&str> {
        s.split(' ').collect()
    }

    #[test]
    fn vader_rules_follow_the_paper() {
        let m = SentimentModel::vader_only();
        let good = m.vader(&words("The food is good")).compound;
        let very = m.vader(&words("The food is very good")).compound;
        let not = m.vader(&words("The food is not good")).compound;
        assert!(
            good > 0.3 && very > good && not < 0.0,
            "{good} {very} {not}"
        );
        assert!(
            m.vader(&words("civilians were killed in the attack"))
                .compound
                < -0.5
        );
        assert_eq!(m.vader(&[]).compound, 0.0);
    }

    #[test]
    fn shipped_news_model_rates_war_news_negative() {
        let m = SentimentModel::load_default();
        let (r, _) = m.rate(&words("missiles killed at least 11 civilians in Kyiv"));
        assert!(r < -0.5, "{r}");
    }

    #[test]
    fn shipped_news_model_rates_good_news_positive_and_uses_the_valence_table() {
        let m = SentimentModel::load_default();
        let (r, _) = m.rate(&words(
            "the agreement brought peace and prosperity to the grateful region",
        ));
        assert!(r > 0.5, "{r}");
        // Words outside VADER's lexicon still carry a valence from the embedding table.
        assert!(m.words.len() > 90_000, "{}", m.words.len());
        let val = |w: &str| m.words.get(&word_key(w)).and_then(|e| e.valence);
        assert!(val("massacre").is_some_and(|v| v[0] < 0.0 && v[1] < 0.0));
        assert!(val("prosperity").is_some_and(|v| v[0] > 0.0 && v[1] > 0.0));
        assert!(!m.lexicon.contains_key(&word_key("famine")));
        assert!(val("famine").is_some_and(|v| v[0] < -0.5 && v[1] < -0.5));
    }

    #[test]
    fn word_features_are_the_lowercase_word_and_its_stem_hashed_like_their_names() {
        let mut buf = String::new();
        let mut got = Vec::new();
        word_features("Killings", &mut buf, |k, name| {
            got.push((k, name.to_string()))
        });
        assert_eq!(
            got,
            vec![
                (word_key("~kill"), "~kill".to_string()),
                (word_key("killings"), "killings".to_string())
            ]
        );
        got.clear();
        word_features("U.S.", &mut buf, |k, name| got.push((k, name.to_string())));
        word_features("a", &mut buf, |k, name| got.push((k, name.to_string())));
        assert!(got.is_empty());
    }
}
