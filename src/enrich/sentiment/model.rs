//! The hot path: VADER measurements of a sentence, its dense and learned word features, and
//! the predicted news rating of [`SentimentModel`].

use super::IdMap;
use super::lexicon::{
    ALPHA, B_INCR, BOOST_DOWN, BOOST_UP, NEGATION_SCALAR, NEGATIONS, NEWS_WEIGHTS, VALENCES,
    WordEntry, parse_valences, word_key,
};

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

/// The learned features of one word, for words of at least two letters (apostrophes allowed):
/// its `~stem` and the lower-case word. Writes `~` and the lower-case word to `buf` (scratch
/// space, so the hot path allocates nothing per word) and returns the length of `~stem` in it.
/// The lower-case word's key is the word's own `word_key`, as lower-casing is idempotent.
fn word_features(w: &str, buf: &mut String) -> Option<usize> {
    buf.clear();
    buf.push('~');
    if w.is_ascii() {
        // Most words: byte by byte, without the per-character case tables.
        if w.len() < 2 || !w.bytes().all(|b| b.is_ascii_alphabetic() || b == b'\'') {
            return None;
        }
        buf.extend(w.bytes().map(|b| char::from(b.to_ascii_lowercase())));
        return Some(1 + stem(&buf[1..]).len());
    }
    let mut chars = 0;
    for c in w.chars() {
        if !(c.is_alphabetic() || c == '\'' || c == '’') {
            return None;
        }
        chars += 1;
    }
    if chars < 2 {
        return None;
    }
    for c in w.chars().flat_map(char::to_lowercase) {
        buf.push(if c == '’' { '\'' } else { c });
    }
    Some(1 + stem(&buf[1..]).len())
}

/// A word's key and what the tables hold for it.
type Looked<'m> = (u64, Option<&'m WordEntry>);

/// The sentiment model: VADER lexicon, the embedding-derived valence table and learned news
/// weights.
#[derive(Debug, Clone)]
pub struct SentimentModel {
    /// Every table, by word key: one look-up per word.
    words: IdMap<WordEntry>,
    but: u64,
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
        let mut words: IdMap<WordEntry> = IdMap::default();
        for (k, v) in vader_sentiment::LEXICON.iter() {
            words.entry(word_key(k.as_ref())).or_default().vader = Some(*v as f32);
        }
        for w in NEGATIONS {
            words.entry(word_key(w)).or_default().negation = true;
        }
        for (list, b) in [(BOOST_UP, B_INCR), (BOOST_DOWN, -B_INCR)] {
            for w in list {
                words.entry(word_key(w)).or_default().booster = Some(b);
            }
        }
        parse_valences(VALENCES, &mut words);
        SentimentModel {
            words,
            but: word_key("but"),
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
        self.words.retain(|_, e| e.is_lexical());
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
        self.vader_looked(words, &self.look_up(words))
    }

    /// Each word's key and entry.
    fn look_up(&self, words: &[&str]) -> Vec<Looked<'_>> {
        words
            .iter()
            .map(|w| {
                let k = word_key(w);
                (k, self.words.get(&k))
            })
            .collect()
    }

    /// True when one of the three words before word `i` is a negation.
    fn negated(looked: &[Looked<'_>], i: usize) -> bool {
        looked[i.saturating_sub(3)..i]
            .iter()
            .any(|(_, e)| e.is_some_and(|e| e.negation))
    }

    fn vader_looked(&self, words: &[&str], looked: &[Looked<'_>]) -> Vader {
        let letters_upper =
            |w: &str| w.chars().any(char::is_alphabetic) && !w.chars().any(char::is_lowercase);
        let mixed = words.iter().any(|w| letters_upper(w))
            && words.iter().any(|w| w.chars().any(char::is_lowercase));
        let mut vals: Vec<f32> = Vec::with_capacity(words.len());
        let mut out = Vader::default();
        let mut but_at = None;
        for (i, &(k, entry)) in looked.iter().enumerate() {
            let w = words[i];
            if w.chars().any(char::is_alphanumeric) {
                out.words += 1;
            }
            if k == self.but {
                but_at = Some(i);
            }
            let Some(WordEntry {
                vader: Some(base),
                booster: None,
                ..
            }) = entry.copied()
            else {
                vals.push(0.0);
                continue;
            };
            let mut v = base;
            if mixed && letters_upper(w) {
                v += if v > 0.0 { 0.733 } else { -0.733 };
            }
            for (dist, decay) in [(1usize, 1.0f32), (2, 0.95), (3, 0.9)] {
                if i < dist {
                    break;
                }
                if let Some(b) = looked[i - dist].1.and_then(|e| e.booster) {
                    let b = if v < 0.0 { -b } else { b };
                    v += b * decay;
                }
            }
            if Self::negated(looked, i) {
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

    /// One pass over a sentence: VADER, the dense features, and `f(key, name, entry)` for
    /// each learned-feature occurrence (not deduplicated).
    pub(super) fn scan(
        &self,
        words: &[&str],
        mut f: impl FnMut(u64, &str, Option<&WordEntry>),
    ) -> (Vader, [f64; N_DENSE]) {
        let looked = self.look_up(words);
        let v = self.vader_looked(words, &looked);
        let mut negations = 0;
        let mut val = [ValenceAgg::default(); 2];
        let mut buf = String::with_capacity(32);
        for (i, (&w, &(key, entry))) in words.iter().zip(&looked).enumerate() {
            if let Some(e) = entry {
                negations += usize::from(e.negation);
                if let Some(x) = e.valence {
                    let s = if Self::negated(&looked, i) {
                        NEGATION_SCALAR
                    } else {
                        1.0
                    };
                    val[0].add(s * x[0]);
                    val[1].add(s * x[1]);
                }
            }
            if let Some(stem_end) = word_features(w, &mut buf) {
                let stem = &buf[..stem_end];
                let stem_key = word_key(stem);
                f(stem_key, stem, self.words.get(&stem_key));
                f(key, &buf[1..], entry);
            }
        }
        (v, dense_features(&v, negations, &val))
    }

    /// Predicted human rating (-4..4) of one sentence, and its VADER measurements.
    pub fn rate(&self, words: &[&str]) -> (f32, Vader) {
        // Each weighted word or stem counts once per sentence; only weighted keys are
        // tracked, so the duplicate check stays short.
        let mut seen: Vec<u64> = Vec::new();
        let mut lexical = 0.0f32;
        let (v, dense) = self.scan(words, |key, _, entry| {
            if let Some(e) = entry
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
    fn the_news_weights_keep_every_vader_fact_in_the_one_table() {
        // set_news rebuilds the learned weights in the shared table: the lexicon, booster
        // and negation entries must survive it (it drops only weight-only entries).
        let m = SentimentModel::load_default();
        for (k, v) in vader_sentiment::LEXICON.iter() {
            let e = m
                .words
                .get(&word_key(k.as_ref()))
                .copied()
                .unwrap_or_default();
            assert_eq!(e.vader, Some(*v as f32), "{k}");
        }
        for w in NEGATIONS {
            assert!(m.words.get(&word_key(w)).is_some_and(|e| e.negation), "{w}");
        }
        for (list, b) in [(BOOST_UP, B_INCR), (BOOST_DOWN, -B_INCR)] {
            for w in list {
                let e = m.words.get(&word_key(w)).copied().unwrap_or_default();
                assert_eq!(e.booster, Some(b), "{w}");
            }
        }
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
        assert!(val("famine").is_some() && m.words[&word_key("famine")].vader.is_none());
        assert!(val("famine").is_some_and(|v| v[0] < -0.5 && v[1] < -0.5));
    }

    #[test]
    fn word_features_are_the_lowercase_word_and_its_stem_keyed_like_their_names() {
        let m = SentimentModel::vader_only();
        let mut got = Vec::new();
        m.scan(&words("Killings U.S. a Don’t Ärger"), |k, name, _| {
            got.push((k, name.to_string()))
        });
        let want: Vec<(u64, String)> = ["~kill", "killings", "~don't", "don't", "~ärger", "ärger"]
            .iter()
            .map(|n| (word_key(n), n.to_string()))
            .collect();
        assert_eq!(got, want);
    }
}
