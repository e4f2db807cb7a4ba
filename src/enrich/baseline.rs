//! A deliberately simple enricher: capitalised word runs as `MISC` entities and a tiny
//! sentiment lexicon. It is honest about what it is (`pipeline.models` names it
//! "baseline"); `pipeline.enricher = "baseline"` selects it, for comparison and tiny images.

use std::collections::HashMap;

use super::local::MAX_MENTIONS;
use super::{
    Document, Enricher, Enrichment, Entity, EntityType, Field, Mention, ModelInfo, Sentiment,
    SentimentLabel, Source,
};

const POSITIVE: &[&str] = &[
    "good", "great", "agree", "agreed", "success", "win", "peace", "growth",
];
const NEGATIVE: &[&str] = &[
    "killed",
    "war",
    "bomb",
    "concern",
    "concerned",
    "attack",
    "crisis",
    "death",
];

/// Capitalised-span entities and lexicon sentiment.
#[derive(Debug, Default, Clone)]
pub struct BaselineEnricher;

impl Enricher for BaselineEnricher {
    fn enrich(&self, doc: &Document<'_>) -> Enrichment {
        let mut entities: Vec<Entity> = Vec::new();
        // Entity index by text: one lookup per mention, not a scan of every entity.
        let mut by_text: HashMap<String, usize> = HashMap::new();
        for (field, text) in [(Field::Title, doc.title), (Field::Body, doc.body)] {
            let text = super::local::truncate(text);
            for mention in capitalised_spans(field, text)
                .into_iter()
                .take(MAX_MENTIONS)
            {
                match by_text.get(&mention.text) {
                    Some(&i) => entities[i].mentions.push(mention),
                    None => {
                        by_text.insert(mention.text.clone(), entities.len());
                        entities.push(Entity {
                            text: mention.text.clone(),
                            kind: EntityType::Misc,
                            mentions: vec![mention],
                            salience: 0.0,
                            sentiment: None,
                            normalized: None,
                            source: Source::Local,
                        })
                    }
                }
            }
        }
        let total: usize = entities
            .iter()
            .map(|e| e.mentions.len())
            .sum::<usize>()
            .max(1);
        for e in &mut entities {
            e.salience = e.mentions.len() as f32 / total as f32;
        }
        Enrichment {
            entities,
            sentiment: lexicon_sentiment(doc),
            warnings: Vec::new(),
        }
    }

    fn models(&self) -> Vec<ModelInfo> {
        vec![ModelInfo {
            task: "ner+sentiment".into(),
            name: "baseline-capitalised-spans-lexicon".into(),
            version: "0".into(),
        }]
    }
}

fn capitalised_spans(field: Field, text: &str) -> Vec<Mention> {
    let mut out = Vec::new();
    let mut run: Option<(usize, usize)> = None; // char offsets
    let mut word_start: Option<usize> = None;
    let mut first_upper = false;
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().chain(std::iter::once(&' ')).enumerate() {
        if c.is_alphanumeric() || c == '-' {
            if word_start.is_none() {
                word_start = Some(i);
                first_upper = c.is_uppercase();
            }
            continue;
        }
        if let Some(ws) = word_start.take()
            && first_upper
            && i - ws > 1
        {
            run = Some(run.map_or((ws, i), |(s, _)| (s, i)));
            if c == ' ' {
                continue;
            }
        }
        if let Some((s, e)) = run.take() {
            out.push(Mention {
                field,
                start: s,
                end: e,
                text: chars[s..e].iter().collect(),
            });
        }
    }
    out
}

fn lexicon_sentiment(doc: &Document<'_>) -> Sentiment {
    let (mut pos, mut neg, mut words) = (0usize, 0usize, 0usize);
    for word in doc
        .title
        .split_whitespace()
        .chain(doc.body.split_whitespace())
    {
        let w = word
            .trim_matches(|c: char| !c.is_alphanumeric())
            .to_lowercase();
        if w.is_empty() {
            continue;
        }
        words += 1;
        pos += usize::from(POSITIVE.contains(&w.as_str()));
        neg += usize::from(NEGATIVE.contains(&w.as_str()));
    }
    let score = if pos + neg == 0 {
        0.0
    } else {
        (pos as f32 - neg as f32) / (pos + neg) as f32
    };
    let pct = |n: usize| {
        if words == 0 {
            0.0
        } else {
            100.0 * n as f32 / words as f32
        }
    };
    let label = if score > 0.05 {
        SentimentLabel::Positive
    } else if score < -0.05 {
        SentimentLabel::Negative
    } else {
        SentimentLabel::Neutral
    };
    Sentiment {
        label,
        score,
        positive: pct(pos),
        negative: pct(neg),
        polarity: pct(pos) + pct(neg),
        word_count: words,
        source: Source::Local,
    }
}
