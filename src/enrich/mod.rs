//! Enrichment: named entities, dates and sentiment for one cleaned article.
//!
//! This module is a library with no Kafka in it. The pipeline calls it through the
//! [`Enricher`] seam. [`LocalEnricher`] is the in-process engine (tokenizer, NER tagger,
//! date/money/percent rules, clustering, news sentiment) and the default;
//! [`baseline::BaselineEnricher`] is a deliberately simple one, for comparison and tiny
//! images, labelled as such in `pipeline.models`. The remote model client (`crate::remote`)
//! implements the same seam with the local engine as its fallback.

pub mod baseline;
pub mod cluster;
pub mod conll;
pub mod hash;
pub mod local;
pub mod ner;
pub mod rules;
pub mod sentiment;
pub mod tokenize;

pub use local::{EnrichError, LocalEnricher};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// Which cleaned text field a mention points into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Field {
    Title,
    Body,
}

/// Entity types newsflow emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum EntityType {
    Per,
    Org,
    Loc,
    Misc,
    Date,
    Money,
    Percent,
}

impl EntityType {
    /// Every type, in a fixed order (used for metric labels).
    pub const ALL: [EntityType; 7] = [
        EntityType::Per,
        EntityType::Org,
        EntityType::Loc,
        EntityType::Misc,
        EntityType::Date,
        EntityType::Money,
        EntityType::Percent,
    ];

    /// The label as it appears in events and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            EntityType::Per => "PER",
            EntityType::Org => "ORG",
            EntityType::Loc => "LOC",
            EntityType::Misc => "MISC",
            EntityType::Date => "DATE",
            EntityType::Money => "MONEY",
            EntityType::Percent => "PERCENT",
        }
    }
}

/// Where an entity or sentiment came from: the in-process models or the remote model server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Local,
    Remote,
}

/// One occurrence of an entity: Unicode *character* offsets into the cleaned field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mention {
    pub field: Field,
    /// Start, in Unicode scalar values (chars), inclusive.
    pub start: usize,
    /// End, in Unicode scalar values (chars), exclusive.
    pub end: usize,
    /// The mention's surface text (`field[start..end]`).
    pub text: String,
}

/// An entity clustered over the article: one canonical text, all its mentions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    /// Canonical form (usually the longest full mention, e.g. "Sergey Lavrov").
    pub text: String,
    #[serde(rename = "type")]
    pub kind: EntityType,
    pub mentions: Vec<Mention>,
    /// Salience in [0, 1]: title presence, first position, frequency.
    pub salience: f32,
    /// Sentiment of the sentences that mention the entity, in [-1, 1].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sentiment: Option<f32>,
    /// ISO normalization for DATE (e.g. "2022-11-08"), MONEY or PERCENT where resolvable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub normalized: Option<String>,
    pub source: Source,
}

/// Document sentiment label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SentimentLabel {
    Positive,
    Negative,
    Neutral,
}

/// Document sentiment, with GDELT-style tone fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sentiment {
    pub label: SentimentLabel,
    /// Score in [-1, 1].
    pub score: f32,
    /// Percentage of words that are positive (GDELT "PositiveScore").
    pub positive: f32,
    /// Percentage of words that are negative (GDELT "NegativeScore").
    pub negative: f32,
    /// positive + negative (GDELT "Polarity").
    pub polarity: f32,
    /// Words counted.
    pub word_count: usize,
    pub source: Source,
}

/// A model used to enrich, named in the event's `pipeline.models`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// What it does: "ner", "sentiment", "dates".
    pub task: String,
    pub name: String,
    pub version: String,
}

/// The cleaned article an enricher sees.
#[derive(Debug, Clone, Copy)]
pub struct Document<'a> {
    pub title: &'a str,
    pub body: &'a str,
    /// Publication date, the anchor for relative dates ("Thursday", "November 8").
    pub published: Option<NaiveDate>,
    /// ISO 639-1 code when known.
    pub language: Option<&'a str>,
}

/// What an enricher returns for one document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Enrichment {
    pub entities: Vec<Entity>,
    pub sentiment: Sentiment,
    /// What the enricher left out or cut to stay bounded (appended to the event's warnings).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The seam the pipeline calls. Implementations are pure and CPU-bound: the pipeline runs
/// them on a blocking pool, many documents in parallel, so they must be `Send + Sync`.
pub trait Enricher: Send + Sync {
    fn enrich(&self, doc: &Document<'_>) -> Enrichment;
    /// Models behind this enricher, for `pipeline.models`.
    fn models(&self) -> Vec<ModelInfo>;

    /// Enriches and says which models were used for this document (they can differ per
    /// document, e.g. a remote model with a local fallback), or fails so the pipeline
    /// dead-letters the article. Local enrichers never fail; the default says so.
    fn enrich_traced(&self, doc: &Document<'_>) -> Result<Traced, EnrichFailure> {
        Ok(Traced {
            enrichment: self.enrich(doc),
            models: self.models(),
            fallback: None,
        })
    }
}

/// An enrichment with the models that produced it.
#[derive(Debug, Clone, PartialEq)]
pub struct Traced {
    pub enrichment: Enrichment,
    pub models: Vec<ModelInfo>,
    /// Why a fallback model was used instead of the configured one, if it was
    /// (`circuit_open`, `timeout`, `error`, `budget_exhausted`).
    pub fallback: Option<String>,
}

/// An enricher could not enrich the article and is configured to dead-letter it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct EnrichFailure {
    /// Short fixed label (e.g. `remote_unavailable`).
    pub reason: &'static str,
    pub message: String,
}
