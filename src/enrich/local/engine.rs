//! The [`Enricher`] impl of [`LocalEnricher`]: fields prepared within the caps, tagging,
//! rules, clustering and document sentiment, and its end-to-end tests.

use super::super::cluster::{self, RawMention};
use super::super::ner;
use super::super::tokenize::{self, Token};
use super::super::{
    Document, Enricher, Enrichment, EntityType, Field, Mention, ModelInfo, Sentiment,
    SentimentLabel, Source,
};
use super::bounds::{cap_mentions, fit_budget, split_long, truncate};
use super::spans::{GOV_HEADS, Span, is_initial, merge_rules};
use super::{
    ENTITY_BUDGET_BYTES, LocalEnricher, MAX_ENTITIES, MAX_MENTIONS, MAX_SENTENCE_TOKENS,
    MAX_TEXT_BYTES, MAX_TOKENS,
};

/// Document-level sentiment is labelled positive or negative beyond this score.
const LABEL_THRESHOLD: f32 = 0.1;

struct FieldText<'a> {
    field: Field,
    text: &'a str,
    tokens: Vec<Token>,
    sentences: Vec<std::ops::Range<usize>>,
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
            let spans = merge_rules(spans, super::super::rules::find(ws, doc.published));
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
        let raw = include_str!("../testdata/seed-article.txt");
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
        // Characters collected once: skipping from the start for every mention would make
        // this check quadratic on the large inputs below.
        let (title, body): (Vec<char>, Vec<char>) =
            (doc.title.chars().collect(), doc.body.chars().collect());
        for m in out.entities.iter().flat_map(|e| &e.mentions) {
            let src = if m.field == Field::Title {
                &title
            } else {
                &body
            };
            let s: String = src[m.start..m.end].iter().collect();
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
        // Few tokens per byte, so the byte cap cuts before the token cap could.
        let unit = "Moscow is a bigggggggggggggggggggg city. ";
        let text = unit.repeat(MAX_TEXT_BYTES / unit.len() + 100);
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
        assert!(
            !out.warnings.iter().any(|w| w.contains("tokens;")),
            "the token cap must not be what cut: {:?}",
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
    fn one_capitalised_word_repeated_to_the_token_cap_does_not_overflow_the_tagger_counts() {
        // Found by the repeated-units proptest: 65,536 tagged copies of one word overflowed
        // the second pass's per-word u16 label counts (a panic in debug builds, a wrapped
        // count in release).
        let text = "Eq ".repeat(MAX_TOKENS + 10);
        let doc = body(&text);
        let out = enricher().enrich(&doc);
        assert_bounded(&doc, &out);
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

    proptest::proptest! {
        // Large inputs: few cases, each one reaching the token, sentence, mention or
        // entity caps (the small cases above reach none of them).
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(6))]

        #[test]
        fn repeated_units_up_to_a_mebibyte_stay_within_the_caps(
            unit in "(S |[A-Z][a-z]{1,6} |[0-9]{1,6} % |Mr [A-Z][a-z]{2,5} |[a-z]{1,8}[.] )",
            len in 100_000usize..1_000_000,
        ) {
            let text = unit.repeat(len / unit.len() + 1);
            let doc = body(&text);
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
