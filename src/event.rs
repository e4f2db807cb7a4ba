//! Stage 4: the output event, one per article, and its deterministic id.
//!
//! The JSON Schema in `schemas/event.schema.json` describes exactly this type; a test keeps
//! the two in step.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::enrich::{Enrichment, Entity, ModelInfo, Sentiment};
use std::collections::BTreeMap;

use crate::normalize::{Article, ExtractionInfo, Origin};

/// Version of the event schema; bumped on incompatible changes.
pub const SCHEMA_VERSION: &str = "1.0";
/// Content type of the event value, also sent as a header.
pub const CONTENT_TYPE: &str = "application/json";

/// Where the input record came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Provenance {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// Record timestamp, RFC 3339 UTC, when the record had one.
    pub timestamp: Option<String>,
}

/// The worker and models that produced the event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PipelineInfo {
    pub name: &'static str,
    pub version: &'static str,
    pub models: Vec<ModelInfo>,
    /// Set when a fallback model replaced the configured one, with the reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
}

/// One enriched article.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub schema_version: &'static str,
    /// Deterministic: the same input always yields the same id, on replay too.
    pub event_id: String,
    pub article_id: String,
    pub source: Option<String>,
    pub url: Option<String>,
    pub title: String,
    pub body: String,
    pub published_at: Option<String>,
    pub language: Option<String>,
    pub authors: Vec<String>,
    /// The page's description, when the input was a page (`html`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The page's main image URL, when the input was a page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Where each metadata field came from: `record`, `page` or `body`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata_sources: BTreeMap<&'static str, Origin>,
    /// How the body was extracted from the page, when the input was `html` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extraction: Option<ExtractionInfo>,
    pub word_count: usize,
    pub entities: Vec<Entity>,
    pub sentiment: Sentiment,
    pub provenance: Provenance,
    pub processed_at: String,
    pub pipeline: PipelineInfo,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// The event id: a digest of the article id and its cleaned content.
pub fn event_id(article: &Article) -> String {
    let mut h = Sha256::new();
    h.update(article.article_id.as_bytes());
    h.update([0u8]);
    h.update(article.content_digest().as_bytes());
    hex::encode(&h.finalize()[..16])
}

/// Formats a timestamp as RFC 3339 UTC with millisecond precision.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Assembles the event. `processed_at` is passed in so this stays pure.
pub fn build_event(
    article: Article,
    enrichment: Enrichment,
    models: Vec<ModelInfo>,
    provenance: Provenance,
    processed_at: DateTime<Utc>,
) -> Event {
    let event_id = event_id(&article);
    let word_count = article.word_count();
    // Moved, not copied: every event pays for this.
    let mut warnings = article.warnings;
    warnings.extend(enrichment.warnings);
    Event {
        schema_version: SCHEMA_VERSION,
        event_id,
        word_count,
        article_id: article.article_id,
        source: article.source,
        url: article.url,
        title: article.title,
        body: article.body,
        published_at: article
            .published_at
            .map(|d| d.to_rfc3339_opts(SecondsFormat::Secs, true)),
        language: article.language,
        authors: article.authors,
        description: article.description,
        image: article.image,
        metadata_sources: article.origins,
        extraction: article.extraction,
        entities: enrichment.entities,
        sentiment: enrichment.sentiment,
        provenance,
        processed_at: rfc3339(processed_at),
        pipeline: PipelineInfo {
            name: "newsflow",
            version: env!("CARGO_PKG_VERSION"),
            models,
            fallback: None,
        },
        warnings,
        extra: article.extra,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrich::baseline::BaselineEnricher;
    use crate::pipeline::Processor;
    use std::sync::Arc;

    #[test]
    fn events_match_the_published_json_schema() {
        let schema: Value =
            serde_json::from_str(include_str!("../docs/event.schema.json")).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let p = Processor::new(Arc::new(BaselineEnricher), 1 << 20);
        let inputs: Vec<&[u8]> = vec![
            include_bytes!("../samples/seed-article.txt"),
            br#"{"id": "x", "url": "https://e.com/a", "title": "T", "body": "Paris is big.", "published_at": "2022-11-03", "authors": ["A"], "other": 1}"#,
            br#"{"title": "T", "published_at": "bad date"}"#,
            br#"{"html": "<html lang=en-GB><head><title>Big news | Site</title><meta property=og:site_name content=Site><meta property=og:image content=https://e.com/i.png><meta name=description content=D><link rel=canonical href=https://e.com/a><script type=application/ld+json>{\"@type\": \"NewsArticle\", \"datePublished\": \"2022-11-03T10:00:00Z\", \"author\": {\"name\": \"Jane Doe\"}}</script></head><body><nav><a href=/>Home</a></nav><article><p>Paris is big, and it is getting bigger every year, the mayor said on Friday.</p><p>Second paragraph, with more words, so the scoring has something to work on.</p></article></body></html>"}"#,
            br#"{"html": "<p>short page</p>"}"#,
        ];
        for value in inputs {
            let provenance = Provenance {
                topic: "t".into(),
                partition: 0,
                offset: 3,
                timestamp: None,
            };
            let (event, _) = p.process(value, provenance, Utc::now());
            let json = serde_json::to_value(event.unwrap()).unwrap();
            let errors: Vec<String> = validator
                .iter_errors(&json)
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "{errors:?}");
        }
        // The schema can fail: a wrong type is reported.
        let bad = serde_json::json!({"schema_version": "1.0"});
        assert!(!validator.is_valid(&bad));
    }
}
