//! The remote model's configuration (`[enrich.remote]`) and its defaults. The rest of the
//! configuration, and the cross-field checks, are in [`crate::config`], which re-exports these
//! types.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::secret::SecretUrl;

/// What the remote model does (Hugging Face inference task names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RemoteTask {
    /// Named entities: answers `[{entity_group, word, start, end, score}]` per input.
    TokenClassification,
    /// Sentiment: answers `[{label, score}]` per input.
    TextClassification,
}

/// What to do with an article when the remote model cannot answer in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RemoteFallback {
    /// Use the in-process models and mark the event (`pipeline.fallback`).
    Local,
    /// Send the article to the dead-letter topic (reason `remote_unavailable`).
    DeadLetter,
}

/// A remote NER or sentiment model over HTTP (Hugging Face inference wire format).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteConfig {
    /// Endpoint receiving `POST {"inputs": [text, ...]}`. Shown with any `user:pass@` and
    /// secret query parameters (`api_key=`, `token=`) masked.
    pub url: SecretUrl,
    pub task: RemoteTask,
    /// Name of the remote model, reported in `pipeline.models`.
    #[serde(default = "defaults::remote_model")]
    pub model: String,
    /// Per request.
    #[serde(default = "defaults::remote_timeout_ms")]
    pub timeout_ms: u64,
    /// Retries after the first attempt (timeouts, connection errors, 429, 5xx).
    #[serde(default = "defaults::remote_max_retries")]
    pub max_retries: u32,
    /// Requests in flight at once; more articles wait (back-pressure).
    #[serde(default = "defaults::remote_max_concurrency")]
    pub max_concurrency: usize,
    /// Texts per request (a long body is split into chunks of `max_chunk_chars`).
    #[serde(default = "defaults::remote_batch_size")]
    pub batch_size: usize,
    #[serde(default = "defaults::remote_max_chunk_chars")]
    pub max_chunk_chars: usize,
    /// Total time one article may spend on the remote model before the fallback is used.
    #[serde(default = "defaults::remote_article_budget_ms")]
    pub article_budget_ms: u64,
    /// Consecutive failed articles that open the circuit breaker.
    #[serde(default = "defaults::remote_breaker_failures")]
    pub breaker_failures: u32,
    /// How long the breaker stays open before a half-open probe.
    #[serde(default = "defaults::remote_breaker_open_ms")]
    pub breaker_open_ms: u64,
    #[serde(default = "defaults::remote_fallback")]
    pub fallback: RemoteFallback,
    /// Header carrying the credential, e.g. `Authorization`.
    #[serde(default = "defaults::remote_auth_header")]
    pub auth_header: String,
    /// Environment variable holding the header's value (e.g. `Bearer hf_...`); never logged.
    #[serde(default)]
    pub auth_env: Option<String>,
    /// Memory for answers being read, across all requests in flight: each answer may be
    /// at most `response_budget_bytes / max_concurrency` bytes (see
    /// [`RemoteConfig::max_response_bytes`]); a larger one is refused unread.
    #[serde(default = "defaults::remote_response_budget_bytes")]
    pub response_budget_bytes: usize,
    /// Remote label → newsflow type (`PER`, `ORG`, `LOC`, `MISC`) or sentiment label
    /// (`positive`, `negative`, `neutral`). Unmapped labels are dropped.
    #[serde(default = "defaults::remote_label_map")]
    pub label_map: BTreeMap<String, String>,
}

impl RemoteConfig {
    /// The largest answer read from the server: the response budget shared by the requests
    /// that may be in flight at once, so all of them together stay within it.
    pub fn max_response_bytes(&self) -> usize {
        self.response_budget_bytes / self.max_concurrency.max(1)
    }
}

/// The remote model's defaults, in one place.
mod defaults {
    pub fn remote_model() -> String {
        "remote".into()
    }
    pub fn remote_timeout_ms() -> u64 {
        2_000
    }
    pub fn remote_max_retries() -> u32 {
        2
    }
    pub fn remote_max_concurrency() -> usize {
        16
    }
    pub fn remote_batch_size() -> usize {
        8
    }
    pub fn remote_max_chunk_chars() -> usize {
        1_500
    }
    pub fn remote_article_budget_ms() -> u64 {
        5_000
    }
    pub fn remote_breaker_failures() -> u32 {
        5
    }
    pub fn remote_breaker_open_ms() -> u64 {
        10_000
    }
    pub fn remote_fallback() -> super::RemoteFallback {
        super::RemoteFallback::Local
    }
    pub fn remote_auth_header() -> String {
        "Authorization".into()
    }
    /// 1 MiB per answer at the default 16 requests in flight.
    pub fn remote_response_budget_bytes() -> usize {
        16 << 20
    }
    pub fn remote_label_map() -> std::collections::BTreeMap<String, String> {
        [
            ("PER", "PER"),
            ("ORG", "ORG"),
            ("LOC", "LOC"),
            ("MISC", "MISC"),
            ("POSITIVE", "positive"),
            ("NEGATIVE", "negative"),
            ("NEUTRAL", "neutral"),
            ("positive", "positive"),
            ("negative", "negative"),
            ("neutral", "neutral"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }
}
