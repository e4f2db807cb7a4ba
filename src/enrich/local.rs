//! [`LocalEnricher`]: the in-process engine (tokenizer, NER tagger, DATE/MONEY/PERCENT rules,
//! clustering, sentiment) with the shipped model embedded in the binary.
//!
//! Work and output per article are bounded whatever the text: each field is enriched up to
//! [`MAX_TEXT_BYTES`] and [`MAX_TOKENS`], sentences longer than [`MAX_SENTENCE_TOKENS`] are
//! tagged in pieces, at most [`MAX_MENTIONS`] mentions are clustered and at most
//! [`MAX_ENTITIES`] entities (and an output budget of entity bytes) are returned; every loop
//! is linear or n·log n in those bounds. Each cut is named in [`Enrichment::warnings`].

use std::path::Path;

use super::cluster::{self, RawMention};
use super::ner::{self, ModelError, NerModel};
use super::sentiment::SentimentModel;
use super::tokenize::{self, Token};
use super::{
    Document, Enricher, Enrichment, Entity, EntityType, Field, Mention, ModelInfo, Sentiment,
    SentimentLabel, Source,
};

/// The shipped NER model (see `src/enrich/model/README.md`).
static DEFAULT_NER: &[u8] = include_bytes!("model/ner.bin");

/// Bytes of each field enriched; the rest of a longer text is left out of entities and
/// sentiment. Whole articles fit (a 20,000-word long read is about 120 KB), while a record
/// at the 1 MiB input limit costs at most a quarter of its size in tagging time and entity
/// output: the time a hostile record can take and the event it can produce scale with this
/// cap, not with the input limit.
pub const MAX_TEXT_BYTES: usize = 256 * 1024;
/// Tokens enriched per field: an ordinary 256 KB text has about 45,000, text made of
/// one-letter words twice as many.
pub const MAX_TOKENS: usize = 65_536;
/// Longer sentences are tagged in pieces of this many tokens. News sentences rarely pass 100
/// tokens (CoNLL-2003's longest has 124); text without sentence ends would otherwise make
/// one sentence of the whole article.
pub const MAX_SENTENCE_TOKENS: usize = 256;
/// Mentions clustered per article: the title's, then the body's in reading order (salience
/// favours both).
pub const MAX_MENTIONS: usize = 4096;
/// Entities returned per article, most salient first.
pub const MAX_ENTITIES: usize = 1024;
/// Output budget for entities, in approximate JSON bytes: this allowance plus twice the
/// bytes enriched, so the event stays within a small factor of its input.
const ENTITY_BUDGET_BYTES: usize = 16 * 1024;

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

/// Approximate JSON bytes of a mention and of an entity without its mentions.
fn mention_cost(m: &Mention) -> usize {
    m.text.len() + 64
}
fn entity_cost(e: &Entity) -> usize {
    e.text.len() + e.normalized.as_ref().map_or(0, String::len) + 128
}

/// Keeps the first (most salient) entities, and the first mentions of each, that fit in
/// `max_entities` and `budget` bytes. Returns whether anything was cut.
fn fit_budget(entities: &mut Vec<Entity>, max_entities: usize, mut budget: usize) -> bool {
    let mut cut = entities.len() > max_entities;
    entities.truncate(max_entities);
    let mut kept = entities.len();
    for (k, e) in entities.iter_mut().enumerate() {
        let first = e.mentions.first().map_or(0, mention_cost);
        if entity_cost(e) + first > budget {
            kept = k;
            break;
        }
        budget -= entity_cost(e);
        let mut keep = 0;
        for m in &e.mentions {
            let c = mention_cost(m);
            if c > budget {
                break;
            }
            budget -= c;
            keep += 1;
        }
        if keep < e.mentions.len() {
            e.mentions.truncate(keep);
            cut = true;
        }
    }
    if kept < entities.len() {
        entities.truncate(kept);
        cut = true;
    }
    cut
}

/// Keeps the title's mentions, then the body's in reading order, up to `max`; the relative
/// order of those kept is unchanged.
fn cap_mentions(mentions: &mut Vec<RawMention>, max: usize) {
    let titles = mentions
        .iter()
        .filter(|m| m.mention.field == Field::Title)
        .count()
        .min(max);
    let (mut title_left, mut body_left) = (titles, max - titles);
    mentions.retain(|m| {
        let left = if m.mention.field == Field::Title {
            &mut title_left
        } else {
            &mut body_left
        };
        let keep = *left > 0;
        *left = left.saturating_sub(1);
        keep
    });
}

/// Splits sentences longer than `max` tokens into pieces of `max`; returns how many were.
fn split_long(sentences: &mut Vec<std::ops::Range<usize>>, max: usize) -> usize {
    let long = sentences.iter().filter(|r| r.len() > max).count();
    if long > 0 {
        *sentences = sentences
            .iter()
            .flat_map(|r| {
                r.clone()
                    .step_by(max)
                    .map(move |start| start..(start + max).min(r.end))
            })
            .collect();
    }
    long
}

/// A span of one sentence's tokens: start, end, type, normalized value.
type Span = (usize, usize, EntityType, Option<String>);

/// Merges rule matches into the tagger's spans: rules win over MISC (CoNLL has no dates),
/// names win over rules. Both lists are sorted and non-overlapping, so one forward walk
/// finds the overlaps. The tagger's kept spans come first, then the rules', as before.
fn merge_rules(spans: Vec<Span>, rules: Vec<super::rules::RuleSpan>) -> Vec<Span> {
    if rules.is_empty() {
        return spans;
    }
    let mut removed = vec![false; spans.len()];
    let mut accepted = Vec::new();
    let mut k = 0;
    for r in rules {
        while k < spans.len() && spans[k].1 <= r.start {
            k += 1;
        }
        let overlapping = k..spans[k..]
            .iter()
            .position(|s| s.0 >= r.end)
            .map_or(spans.len(), |p| k + p);
        if spans[overlapping.clone()]
            .iter()
            .any(|s| s.2 != EntityType::Misc)
        {
            continue;
        }
        removed[overlapping].fill(true);
        accepted.push((r.start, r.end, r.kind, r.normalized));
    }
    let mut out: Vec<Span> = spans
        .into_iter()
        .zip(removed)
        .filter(|(_, gone)| !gone)
        .map(|(s, _)| s)
        .collect();
    out.extend(accepted);
    out
}

/// The first [`MAX_TEXT_BYTES`] of `text`, cut at a character boundary.
pub(super) fn truncate(text: &str) -> &str {
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
        let mut warnings = Vec::new();
        let fields: Vec<FieldText<'_>> = [(Field::Body, doc.body), (Field::Title, doc.title)]
            .into_iter()
            .map(|(field, text)| {
                let name = if field == Field::Body { "body" } else { "title" };
                let full = text;
                let text = truncate(text);
                if text.len() < full.len() {
                    warnings.push(format!(
                        "enrich: {name} over {MAX_TEXT_BYTES} bytes; enriched the first {MAX_TEXT_BYTES}"
                    ));
                }
                let mut tokens = tokenize::tokenize(text);
                if tokens.len() > MAX_TOKENS {
                    tokens.truncate(MAX_TOKENS);
                    warnings.push(format!(
                        "enrich: {name} over {MAX_TOKENS} tokens; enriched the first {MAX_TOKENS}"
                    ));
                }
                let mut sentences = tokenize::sentences(text, &tokens);
                let long = split_long(&mut sentences, MAX_SENTENCE_TOKENS);
                if long > 0 {
                    warnings.push(format!(
                        "enrich: {name} has {long} sentences over {MAX_SENTENCE_TOKENS} tokens; tagged in pieces"
                    ));
                }
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

            let mut spans: Vec<Span> = Vec::new();
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
            let spans = merge_rules(spans, super::rules::find(ws, doc.published));
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
        if mentions.len() > MAX_MENTIONS {
            warnings.push(format!(
                "enrich: {} mentions over {MAX_MENTIONS}; kept the title's and the earliest",
                mentions.len()
            ));
            cap_mentions(&mut mentions, MAX_MENTIONS);
        }
        let mut entities = cluster::cluster(mentions, &sentence_scores);
        let enriched: usize = fields.iter().map(|f| f.text.len()).sum();
        let found = entities.len();
        if fit_budget(
            &mut entities,
            MAX_ENTITIES,
            ENTITY_BUDGET_BYTES + 2 * enriched,
        ) {
            warnings.push(format!(
                "enrich: entities cut to fit the output bounds; kept the {} most salient of {found}",
                entities.len()
            ));
        }
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
            warnings,
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

    fn enricher() -> &'static LocalEnricher {
        static E: std::sync::OnceLock<LocalEnricher> = std::sync::OnceLock::new();
        E.get_or_init(|| LocalEnricher::load_default().expect("shipped model loads"))
    }

    fn body(text: &str) -> Document<'_> {
        Document {
            title: "Hostile input",
            body: text,
            published: NaiveDate::from_ymd_opt(2022, 11, 3),
            language: Some("en"),
        }
    }

    /// The bounds every enrichment keeps, and mention offsets that point at their text.
    fn assert_bounded(doc: &Document<'_>, out: &Enrichment) {
        let mentions: usize = out.entities.iter().map(|e| e.mentions.len()).sum();
        assert!(out.entities.len() <= MAX_ENTITIES, "{}", out.entities.len());
        assert!(mentions <= MAX_MENTIONS, "{mentions}");
        let enriched = truncate(doc.title).len() + truncate(doc.body).len();
        let json = serde_json::to_string(&out.entities).expect("serializes");
        assert!(
            json.len() <= ENTITY_BUDGET_BYTES + 2 * enriched,
            "{} entity bytes for {enriched} text bytes",
            json.len()
        );
        for m in out.entities.iter().flat_map(|e| &e.mentions) {
            let src = if m.field == Field::Title {
                doc.title
            } else {
                doc.body
            };
            let s: String = src.chars().skip(m.start).take(m.end - m.start).collect();
            assert_eq!(s, m.text);
        }
    }

    #[test]
    fn a_run_of_initials_is_enriched_within_the_token_and_sentence_caps() {
        // "S S S …": every token an initial, one sentence; the features once walked back
        // over the run for every token.
        let text = "S ".repeat(100_000);
        let doc = body(&text);
        let out = enricher().enrich(&doc);
        assert_bounded(&doc, &out);
        assert!(
            out.warnings.iter().any(|w| w.contains("tokens; enriched")),
            "{:?}",
            out.warnings
        );
        assert!(out.warnings.iter().any(|w| w.contains("tagged in pieces")));
        assert!(out.sentiment.word_count <= MAX_TOKENS + 2);
    }

    #[test]
    fn thousands_of_distinct_percentages_are_capped_and_the_event_stays_small() {
        // Rule/entity merge and clustering were quadratic here, and the entities were 22×
        // the input.
        let text: String = (100_000..140_000).map(|i| format!("{i} % ")).collect();
        let doc = body(&text);
        let out = enricher().enrich(&doc);
        assert_bounded(&doc, &out);
        assert!(
            out.warnings.iter().any(|w| w.contains("mentions over")),
            "{:?}",
            out.warnings
        );
        assert!(out.warnings.iter().any(|w| w.contains("entities cut")));
        assert!(out.entities.len() <= MAX_ENTITIES);
        // The most salient come first: the earliest percentages.
        assert_eq!(
            out.entities[0].normalized.as_deref(),
            Some("100000%"),
            "{:?}",
            out.entities[0]
        );
    }

    #[test]
    fn one_name_repeated_everywhere_keeps_one_entity_with_capped_mentions() {
        let text = "Sergey Lavrov met Lavrov . ".repeat(20_000);
        let doc = body(&text);
        let out = enricher().enrich(&doc);
        assert_bounded(&doc, &out);
        assert!(out.entities.len() < 10, "{}", out.entities.len());
    }

    #[test]
    fn text_past_the_byte_cap_is_left_out_with_a_warning() {
        let text = "Moscow is big. ".repeat(MAX_TEXT_BYTES / 15 + 100);
        let doc = body(&text);
        let out = enricher().enrich(&doc);
        assert_bounded(&doc, &out);
        assert!(
            out.warnings
                .iter()
                .any(|w| w.starts_with("enrich: body over")),
            "{:?}",
            out.warnings
        );
        let last = out
            .entities
            .iter()
            .flat_map(|e| &e.mentions)
            .map(|m| m.end)
            .max()
            .unwrap_or(0);
        assert!(last <= MAX_TEXT_BYTES);
    }

    #[test]
    fn ordinary_articles_get_no_warnings() {
        let (title, body) = seed();
        let out = enricher().enrich(&Document {
            title: &title,
            body: &body,
            published: None,
            language: Some("en"),
        });
        assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    }

    #[test]
    fn rules_merge_like_the_pairwise_check_they_replace() {
        use super::super::rules::RuleSpan;
        // The former quadratic merge, as the reference.
        fn reference(mut spans: Vec<Span>, rules: Vec<RuleSpan>) -> Vec<Span> {
            for r in rules {
                let overlaps = |s: &Span| s.0 < r.end && r.start < s.1;
                if spans.iter().any(|s| overlaps(s) && s.2 != EntityType::Misc) {
                    continue;
                }
                spans.retain(|s| !overlaps(s));
                spans.push((r.start, r.end, r.kind, r.normalized));
            }
            spans
        }
        // Sorted, non-overlapping spans from a pseudo-random walk.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % m) as usize
        };
        for _ in 0..500 {
            let (mut spans, mut rules) = (Vec::new(), Vec::new());
            let mut at = 0;
            for _ in 0..next(6) {
                at += next(3);
                let end = at + 1 + next(3);
                let kind = [EntityType::Misc, EntityType::Per, EntityType::Org][next(3)];
                spans.push((at, end, kind, None));
                at = end;
            }
            let mut at = 0;
            for _ in 0..next(6) {
                at += next(3);
                let end = at + 1 + next(3);
                rules.push(RuleSpan {
                    start: at,
                    end,
                    kind: EntityType::Date,
                    normalized: Some(format!("{at}")),
                });
                at = end;
            }
            assert_eq!(
                merge_rules(spans.clone(), rules.clone()),
                reference(spans, rules)
            );
        }
    }

    #[test]
    fn the_output_budget_keeps_the_first_entities_and_their_first_mentions() {
        let mention = |i: usize| Mention {
            field: Field::Body,
            start: i,
            end: i + 1,
            text: "x".into(),
        };
        let entity = |n: usize| Entity {
            text: "e".into(),
            kind: EntityType::Misc,
            mentions: (0..n).map(mention).collect(),
            salience: 0.5,
            sentiment: None,
            normalized: None,
            source: Source::Local,
        };
        let (e, m) = (entity_cost(&entity(0)), mention_cost(&mention(0)));
        let mut ents = vec![entity(3), entity(3), entity(3)];
        assert!(!fit_budget(&mut ents, 3, 3 * (e + 3 * m)));
        assert_eq!(ents.len(), 3);
        // Room for the first entity whole and two mentions of the second.
        let mut ents = vec![entity(3), entity(3), entity(3)];
        assert!(fit_budget(&mut ents, 3, 2 * e + 5 * m));
        let kept: Vec<usize> = ents.iter().map(|e| e.mentions.len()).collect();
        assert_eq!(kept, [3, 2]);
        let mut ents = vec![entity(1), entity(1), entity(1)];
        assert!(fit_budget(&mut ents, 2, usize::MAX));
        assert_eq!(ents.len(), 2);
    }

    #[test]
    fn the_mention_cap_keeps_the_title_and_the_earliest_body_mentions_in_order() {
        let raw = |field, start| RawMention {
            mention: Mention {
                field,
                start,
                end: start + 1,
                text: "x".into(),
            },
            kind: EntityType::Misc,
            sentence: 0,
            position: 0.0,
            normalized: None,
        };
        let mut ms: Vec<RawMention> = (0..10).map(|i| raw(Field::Body, i)).collect();
        ms.extend((0..3).map(|i| raw(Field::Title, i)));
        cap_mentions(&mut ms, 5);
        let kept: Vec<(Field, usize)> = ms
            .iter()
            .map(|m| (m.mention.field, m.mention.start))
            .collect();
        assert_eq!(
            kept,
            [
                (Field::Body, 0),
                (Field::Body, 1),
                (Field::Title, 0),
                (Field::Title, 1),
                (Field::Title, 2)
            ]
        );
    }

    #[test]
    fn long_sentences_split_into_pieces_and_others_stay_whole() {
        let mut s = vec![0..3, 3..10, 10..11];
        assert_eq!(split_long(&mut s, 3), 1);
        assert_eq!(s, [0..3, 3..6, 6..9, 9..10, 10..11]);
        let mut s = vec![0..3, 3..4];
        assert_eq!(split_long(&mut s, 3), 0);
        assert_eq!(s, [0..3, 3..4]);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        #[test]
        fn arbitrary_text_never_panics_and_stays_within_the_caps(
            title in "\\PC{0,40}",
            text in "(\\PC|[ .\n%$SA-Z0-9]){0,600}",
        ) {
            let doc = Document {
                title: &title,
                body: &text,
                published: NaiveDate::from_ymd_opt(2022, 11, 3),
                language: None,
            };
            let out = enricher().enrich(&doc);
            assert_bounded(&doc, &out);
        }
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
