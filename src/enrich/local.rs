//! [`LocalEnricher`]: the in-process engine (tokenizer, NER tagger, rules, clustering,
//! sentiment) with the shipped model embedded in the binary.

use super::ner::{ModelError, NerModel};

/// The shipped NER model (see `src/enrich/model/README.md`).
static DEFAULT_NER: &[u8] = include_bytes!("model/ner.bin");

/// Load the shipped NER model.
pub fn default_ner_model() -> Result<NerModel, ModelError> {
    NerModel::from_bytes(DEFAULT_NER)
}
