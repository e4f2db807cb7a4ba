//! Remote enrichment over HTTP (Hugging Face inference wire format), with the local engine
//! as the fallback.
//!
//! Work in progress: this first version only delegates to the fallback.

use std::sync::Arc;

use crate::config::RemoteConfig;
use crate::enrich::{Document, Enricher, Enrichment, ModelInfo};
use crate::metrics::Metrics;

/// Calls a remote model; falls back to the local engine.
pub struct RemoteEnricher {
    fallback: Arc<dyn Enricher>,
}

impl RemoteEnricher {
    /// `runtime` drives the HTTP client; `enrich` is called from the enrichment pool's
    /// (non-async) threads and blocks on it.
    pub fn new(
        config: RemoteConfig,
        fallback: Arc<dyn Enricher>,
        metrics: Metrics,
        runtime: tokio::runtime::Handle,
    ) -> anyhow::Result<Self> {
        let _ = (config, metrics, runtime);
        Ok(RemoteEnricher { fallback })
    }
}

impl Enricher for RemoteEnricher {
    fn enrich(&self, doc: &Document<'_>) -> Enrichment {
        self.fallback.enrich(doc)
    }

    fn models(&self) -> Vec<ModelInfo> {
        self.fallback.models()
    }
}
