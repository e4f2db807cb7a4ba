//! [`LocalEnricher`]: the in-process engine (tokenizer, NER tagger, DATE/MONEY/PERCENT rules,
//! clustering, sentiment) with the shipped model embedded in the binary.
//!
//! Work and output per article are bounded whatever the text: each field is enriched up to
//! [`MAX_TEXT_BYTES`] and [`MAX_TOKENS`], sentences longer than [`MAX_SENTENCE_TOKENS`] are
//! tagged in pieces, at most [`MAX_MENTIONS`] mentions are clustered and at most
//! [`MAX_ENTITIES`] entities (and an output budget of entity bytes) are returned; every loop
//! is linear or n·log n in those bounds. Each cut is named in [`Enrichment::warnings`].
//!
//! [`Enrichment::warnings`]: crate::enrich::Enrichment::warnings

mod bounds;
mod engine;
mod spans;

use std::path::Path;

use super::ner::{ModelError, NerModel};
use super::sentiment::SentimentModel;

pub(super) use bounds::truncate;

/// The shipped NER model (see `src/enrich/model/README.md`).
static DEFAULT_NER: &[u8] = include_bytes!("../model/ner.bin");

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
