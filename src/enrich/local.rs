//! [`LocalEnricher`]: the in-process engine (tokenizer, NER tagger, DATE/MONEY/PERCENT rules,
//! clustering, sentiment) with the shipped model embedded in the binary.

use std::path::Path;

use super::cluster::{self, RawMention};
use super::ner::{self, ModelError, NerModel};
use super::sentiment::SentimentModel;
use super::tokenize::{self, Token};
use super::{
    Document, Enricher, Enrichment, EntityType, Field, Mention, ModelInfo, Sentiment,
    SentimentLabel, Source,
};

/// The shipped NER model (see `src/enrich/model/README.md`).
static DEFAULT_NER: &[u8] = include_bytes!("model/ner.bin");

/// Texts longer than this (in bytes) are enriched on their first part only, so one huge
/// input cannot hold a worker for long.
pub const MAX_TEXT_BYTES: usize = 1 << 20;

/// Errors loading the enrichment models.
#[derive(Debug, thiserror::Error)]
pub enum EnrichError {
    #[error("reading model file {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid NER model")]
    Model(#[from] ModelError),
}

/// Load the shipped NER model.
pub fn default_ner_model() -> Result<NerModel, ModelError> {
    NerModel::from_bytes(DEFAULT_NER)
}

/// Statistical NER + rules + clustering + news sentiment, all in process.
#[derive(Debug, Clone)]
pub struct LocalEnricher {
    ner: NerModel,
    sentiment: SentimentModel,
}

/// Last words of organisation names that a preceding nationality belongs to.
const GOV_HEADS: &[&str] = &[
    "Ministry",
    "Office",
    "Embassy",
    "Army",
    "Navy",
    "Parliament",
    "Government",
    "Council",
    "Agency",
    "Police",
    "Force",
    "Guard",
    "Cabinet",
    "Senate",
    "Assembly",
    "Court",
];

/// "S" or "S.": a single capital letter, possibly with a period.
fn is_initial(word: &str) -> bool {
    let mut c = word.trim_end_matches('.').chars();
    matches!((c.next(), c.next()), (Some(x), None) if x.is_uppercase())
}

/// Document-level sentiment is labelled positive or negative beyond this score.
const LABEL_THRESHOLD: f32 = 0.1;

fn truncate(text: &str) -> &str {
    if text.len() <= MAX_TEXT_BYTES {
        return text;
    }
    let mut end = MAX_TEXT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

struct FieldText<'a> {
    field: Field,
    text: &'a str,
    tokens: Vec<Token>,
    sentences: Vec<std::ops::Range<usize>>,
}

impl LocalEnricher {
    /// The shipped model, embedded in the binary.
    pub fn load_default() -> Result<LocalEnricher, EnrichError> {
        Ok(LocalEnricher {
            ner: default_ner_model()?,
            sentiment: SentimentModel::load_default(),
        })
    }

    /// A retrained NER model from a file written by `newsflow train ner`.
    pub fn load(path: &Path) -> Result<LocalEnricher, EnrichError> {
        let bytes = std::fs::read(path).map_err(|source| EnrichError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Ok(LocalEnricher {
            ner: NerModel::from_bytes(&bytes)?,
            sentiment: SentimentModel::load_default(),
        })
    }
}

impl Enricher for LocalEnricher {
    fn enrich(&self, doc: &Document<'_>) -> Enrichment {
        let fields: Vec<FieldText<'_>> = [(Field::Body, doc.body), (Field::Title, doc.title)]
            .into_iter()
            .map(|(field, text)| {
                let text = truncate(text);
                let tokens = tokenize::tokenize(text);
                let sentences = tokenize::sentences(text, &tokens);
                FieldText {
                    field,
                    text,
                    tokens,
                    sentences,
                }
            })
            .collect();
        // Sentences of the article as word lists: body first, so the title (often ALL CAPS or
        // telegraphic) benefits from how its words were tagged in the body.
        let mut words: Vec<Vec<&str>> = Vec::new();
        let mut where_: Vec<(usize, std::ops::Range<usize>)> = Vec::new();
        for (fi, f) in fields.iter().enumerate() {
            for r in &f.sentences {
                words.push(f.tokens[r.clone()].iter().map(|t| t.text(f.text)).collect());
                where_.push((fi, r.clone()));
            }
        }
        let labels = self.ner.tag_document(&words);
        let body_tokens = fields[0].tokens.len().max(1) as f32;

        let mut mentions = Vec::new();
        let mut sentence_scores = Vec::with_capacity(words.len());
        let (mut pos_words, mut neg_words, mut word_count) = (0usize, 0usize, 0usize);
        let (mut rating_sum, mut rating_weight) = (0f32, 0f32);
        for (si, (ws, (fi, range))) in words.iter().zip(&where_).enumerate() {
            let f = &fields[*fi];
            let toks = &f.tokens[range.clone()];
            let (rating, v) = self.sentiment.rate(ws);
            let score = (rating / 4.0).clamp(-1.0, 1.0);
            sentence_scores.push(score);
            pos_words += v.pos_words;
            neg_words += v.neg_words;
            word_count += v.words;
            let weight = if f.field == Field::Title { 2.0 } else { 1.0 };
            rating_sum += weight * rating;
            rating_weight += weight;

            let mut spans: Vec<(usize, usize, EntityType, Option<String>)> = Vec::new();
            let labs = labels.get(si).map(Vec::as_slice).unwrap_or(&[]);
            let mut i = 0;
            while i < labs.len() {
                let Some(t) = ner::label_type(labs[i]) else {
                    i += 1;
                    continue;
                };
                let mut j = i + 1;
                while j < labs.len() && labs[j] == 5 + t as u8 {
                    j += 1;
                }
                let mut start = i;
                let kind = ner::TYPES[t];
                // An initial left outside a person's name ("S Jaishankar") joins it.
                if kind == EntityType::Per
                    && start > 0
                    && labs[start - 1] == 0
                    && is_initial(ws[start - 1])
                {
                    start -= 1;
                }
                // "Russian" + "Foreign Ministry": a nationality before a government body is
                // part of the organisation's name.
                if kind == EntityType::Org
                    && GOV_HEADS.contains(&ws[j - 1])
                    && let Some(prev) = spans.last()
                    && prev.1 == start
                    && prev.2 == EntityType::Misc
                    && prev.1 - prev.0 == 1
                {
                    start = prev.0;
                    spans.pop();
                }
                spans.push((start, j, kind, None));
                i = j;
            }
            for r in super::rules::find(ws, doc.published) {
                let overlaps =
                    |s: &(usize, usize, EntityType, Option<String>)| s.0 < r.end && r.start < s.1;
                // Rules win over MISC (CoNLL has no dates); names win over rules.
                if spans.iter().any(|s| overlaps(s) && s.2 != EntityType::Misc) {
                    continue;
                }
                spans.retain(|s| !overlaps(s));
                spans.push((r.start, r.end, r.kind, r.normalized));
            }
            for (a, b, kind, normalized) in spans {
                let (Some(first), Some(last)) = (toks.get(a), toks.get(b.wrapping_sub(1))) else {
                    continue;
                };
                let text = f
                    .text
                    .get(first.byte_start..last.byte_end)
                    .unwrap_or("")
                    .to_string();
                let position = if f.field == Field::Title {
                    0.0
                } else {
                    (range.start + a) as f32 / body_tokens
                };
                mentions.push(RawMention {
                    mention: Mention {
                        field: f.field,
                        start: first.start,
                        end: last.end,
                        text,
                    },
                    kind,
                    sentence: si,
                    position,
                    normalized,
                });
            }
        }
        let entities = cluster::cluster(mentions, &sentence_scores);
        let mean = if rating_weight > 0.0 {
            rating_sum / rating_weight
        } else {
            0.0
        };
        let score = (mean / 2.0).tanh().clamp(-1.0, 1.0);
        let pct = |n: usize| {
            if word_count == 0 {
                0.0
            } else {
                100.0 * n as f32 / word_count as f32
            }
        };
        let label = if score > LABEL_THRESHOLD {
            SentimentLabel::Positive
        } else if score < -LABEL_THRESHOLD {
            SentimentLabel::Negative
        } else {
            SentimentLabel::Neutral
        };
        Enrichment {
            entities,
            sentiment: Sentiment {
                label,
                score: if score.is_finite() { score } else { 0.0 },
                positive: pct(pos_words),
                negative: pct(neg_words),
                polarity: pct(pos_words) + pct(neg_words),
                word_count,
                source: Source::Local,
            },
        }
    }

    fn models(&self) -> Vec<ModelInfo> {
        vec![
            ModelInfo {
                task: "ner".into(),
                name: "newsflow-perceptron-conll2003".into(),
                version: "2".into(),
            },
            ModelInfo {
                task: "dates".into(),
                name: "newsflow-rules".into(),
                version: "1".into(),
            },
            ModelInfo {
                task: "sentiment".into(),
                name: "newsflow-vader-news".into(),
                version: "1".into(),
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    /// The scraped seed article: title line, then body (page chrome removed).
    pub(crate) fn seed() -> (String, String) {
        let raw = include_str!("testdata/seed-article.txt");
        let (title, rest) = raw.split_once('\n').unwrap_or((raw, ""));
        let body = rest.split("Leave a Reply").next().unwrap_or(rest).trim();
        (title.trim().to_string(), body.to_string())
    }

    #[test]
    fn seed_article_yields_every_key_entity_clustered() {
        let e = LocalEnricher::load_default().expect("shipped model loads");
        let (title, body) = seed();
        let doc = Document {
            title: &title,
            body: &body,
            published: NaiveDate::from_ymd_opt(2022, 11, 3),
            language: Some("en"),
        };
        let out = e.enrich(&doc);
        let dump: Vec<String> = out
            .entities
            .iter()
            .map(|e| format!("{} {:?} x{}", e.text, e.kind, e.mentions.len()))
            .collect();
        let find = |text: &str, kind: EntityType| {
            out.entities
                .iter()
                .find(|e| e.text == text && e.kind == kind)
                .unwrap_or_else(|| panic!("missing {text} {kind:?} in {dump:#?}"))
        };
        use EntityType::*;
        assert!(find("Sergey Lavrov", Per).mentions.len() >= 4);
        assert!(find("S Jaishankar", Per).mentions.len() >= 4);
        assert!(find("Narendra Modi", Per).mentions.len() >= 3);
        assert!(find("Sergei Shoigu", Per).mentions.len() >= 4);
        assert!(find("Rajnath Singh", Per).mentions.len() >= 2);
        for p in ["Vladimir Putin", "Maria Zakharova"] {
            find(p, Per);
        }
        assert!(find("Moscow", Loc).mentions.len() >= 4);
        for l in [
            "India",
            "Russia",
            "Ukraine",
            "Kyiv",
            "Samarkand",
            "Uzbekistan",
            "China",
            "New Delhi",
        ] {
            find(l, Loc);
        }
        for o in [
            "Shanghai Cooperation Organisation",
            "Russian Foreign Ministry",
            "Ministry of Defence",
        ] {
            find(o, Org);
        }
        let date = find("November 8", Date);
        assert_eq!(date.normalized.as_deref(), Some("2022-11-08"));
        assert!(date.mentions.iter().any(|m| m.field == Field::Title));
        // Offsets are characters into the cleaned fields.
        for ent in &out.entities {
            for m in &ent.mentions {
                let src = if m.field == Field::Title {
                    &title
                } else {
                    &body
                };
                let s: String = src.chars().skip(m.start).take(m.end - m.start).collect();
                assert_eq!(s, m.text);
            }
        }
        assert_eq!(
            out.sentiment.label,
            SentimentLabel::Negative,
            "{:?}",
            out.sentiment
        );
    }

    #[test]
    fn enrich_never_panics_on_odd_input() {
        let e = LocalEnricher::load_default().expect("shipped model loads");
        let huge = "Word Another. ".repeat(200_000);
        for (t, b) in [
            ("", ""),
            ("🙂", "\u{301}\u{0}"),
            ("ALL CAPS HEADLINE", "’s ’ “”"),
            ("x", huge.as_str()),
        ] {
            let _ = e.enrich(&Document {
                title: t,
                body: b,
                published: None,
                language: None,
            });
        }
    }
}
