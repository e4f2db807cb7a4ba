//! Remote enrichment over HTTP (Hugging Face inference wire format), with the local engine
//! as the fallback.
//!
//! [`RemoteEnricher`] sends an article's title and body chunks to a model server
//! (token-classification for entities, or text-classification for sentiment) and takes the
//! other half of the enrichment from the local engine, which it runs while the request is in
//! flight. When the server cannot answer (after retries, within the article's time budget,
//! or while the circuit breaker is open) the article gets the local enrichment marked with
//! the reason, or fails so the pipeline dead-letters it, as configured.
//!
//! - [`config`]: the `[enrich.remote]` settings and their defaults;
//! - [`chunk`]: splitting fields into inputs with their character offsets;
//! - [`wire`]: the request and answer format;
//! - [`map`]: labels, offsets, entities and sentiment from answers;
//! - [`breaker`]: the circuit breaker state machine;
//! - [`client`]: the shared HTTP client, bounded concurrency and retries.

pub mod breaker;
pub mod chunk;
pub mod client;
pub mod config;
pub mod map;
pub mod wire;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, anyhow};
use reqwest::header::{HeaderName, HeaderValue};
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use self::breaker::{Breaker, State, Ticket};
use self::chunk::Chunk;
use self::client::{CallError, Client};
use self::config::{RemoteConfig, RemoteFallback, RemoteTask};
use self::map::LabelMap;
use self::wire::{RemoteEntity, RemoteLabel};
use crate::enrich::{
    Document, EnrichFailure, Enricher, Enrichment, Entity, EntityType, ModelInfo, SentimentLabel,
    Source, Traced,
};
use crate::metrics::Metrics;

/// Every `outcome` of `newsflow_remote_requests_total`.
pub const OUTCOMES: [&str; 7] = [
    "ok",
    "timeout",
    "connect",
    "http_429",
    "http_5xx",
    "http_4xx",
    "invalid_response",
];
/// Every `reason` of `newsflow_remote_fallbacks_total` and `pipeline.fallback`.
pub const FALLBACK_REASONS: [&str; 4] = ["circuit_open", "timeout", "error", "budget_exhausted"];

/// What the remote model answered for one article, mapped.
#[derive(Debug)]
enum Answer {
    Entities(Vec<Entity>),
    /// `None` when the article had no text to send.
    Sentiment(Option<(SentimentLabel, f32)>),
}

/// Calls a remote model; falls back to the local engine.
pub struct RemoteEnricher {
    inner: Arc<Inner>,
    fallback: Arc<dyn Enricher>,
    runtime: tokio::runtime::Handle,
}

/// The part shared with the tasks that run the HTTP calls.
struct Inner {
    client: Client,
    task: RemoteTask,
    model: ModelInfo,
    labels: LabelMap,
    max_chunk_chars: usize,
    batch_size: usize,
    budget: Duration,
    mode: RemoteFallback,
    breaker: Mutex<Breaker>,
    metrics: Metrics,
}

impl RemoteEnricher {
    /// `runtime` drives the HTTP client; `enrich` is called from the enrichment pool's
    /// (non-async) threads and blocks on it. Reads the credential from `auth_env` now, and
    /// fails if that variable is named but unset.
    pub fn new(
        config: RemoteConfig,
        fallback: Arc<dyn Enricher>,
        metrics: Metrics,
        runtime: tokio::runtime::Handle,
    ) -> anyhow::Result<Self> {
        let auth = match &config.auth_env {
            None => None,
            Some(var) => {
                let value = std::env::var(var)
                    .ok()
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| {
                        anyhow!("enrich.remote.auth_env names {var}, which is unset or empty")
                    })?;
                let name =
                    HeaderName::from_bytes(config.auth_header.as_bytes()).with_context(|| {
                        format!(
                            "enrich.remote.auth_header {:?} is not a header name",
                            config.auth_header
                        )
                    })?;
                // The error names the variable, never its value.
                let value = HeaderValue::from_str(&value)
                    .map_err(|_| anyhow!("the value of {var} is not a valid HTTP header value"))?;
                Some((name, value))
            }
        };
        let client = Client::new(&config, auth, metrics.clone())?;
        for outcome in OUTCOMES {
            metrics.remote_requests.with_label_values(&[outcome]);
        }
        for reason in FALLBACK_REASONS {
            metrics.remote_fallbacks.with_label_values(&[reason]);
        }
        metrics.remote_circuit_state.set(State::Closed.gauge());
        let model = ModelInfo {
            task: match config.task {
                RemoteTask::TokenClassification => "ner",
                RemoteTask::TextClassification => "sentiment",
            }
            .into(),
            name: config.model.clone(),
            version: "remote".into(),
        };
        let host = reqwest::Url::parse(config.url.expose())
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_default();
        tracing::info!(
            host = %host,
            task = %model.task,
            model = %model.name,
            fallback = ?config.fallback,
            max_concurrency = config.max_concurrency,
            "Remote enrichment enabled"
        );
        Ok(RemoteEnricher {
            inner: Arc::new(Inner {
                client,
                task: config.task,
                labels: LabelMap::new(&config.label_map),
                model,
                max_chunk_chars: config.max_chunk_chars,
                batch_size: config.batch_size.max(1),
                budget: Duration::from_millis(config.article_budget_ms),
                mode: config.fallback,
                // A live probe reports within its budget (the remote side runs under
                // `timeout_at`); twice that is surely a lost one.
                breaker: Mutex::new(Breaker::new(
                    config.breaker_failures,
                    Duration::from_millis(config.breaker_open_ms),
                    Duration::from_millis(config.article_budget_ms).saturating_mul(2),
                )),
                metrics,
            }),
            fallback,
            runtime,
        })
    }

    /// The models behind a remote answer: the remote one, plus the local ones still used
    /// (all but local NER for token-classification; all of them for text-classification,
    /// whose entities and word-level tone stay local).
    fn remote_models(&self) -> Vec<ModelInfo> {
        let mut models = vec![self.inner.model.clone()];
        models.extend(
            self.fallback.models().into_iter().filter(|m| {
                !(self.inner.task == RemoteTask::TokenClassification && m.task == "ner")
            }),
        );
        models
    }

    fn combine(&self, local: Enrichment, answer: Answer) -> Traced {
        let enrichment = match answer {
            Answer::Entities(mut entities) => {
                // Dates, money and percentages stay with the local rules.
                entities.extend(local.entities.into_iter().filter(|e| {
                    matches!(
                        e.kind,
                        EntityType::Date | EntityType::Money | EntityType::Percent
                    )
                }));
                entities
                    .sort_by(|a, b| b.salience.total_cmp(&a.salience).then(a.text.cmp(&b.text)));
                Enrichment {
                    entities,
                    sentiment: local.sentiment,
                    warnings: local.warnings,
                }
            }
            Answer::Sentiment(remote) => {
                let mut sentiment = local.sentiment;
                if let Some((label, score)) = remote {
                    sentiment.label = label;
                    sentiment.score = score;
                    sentiment.source = Source::Remote;
                }
                Enrichment {
                    entities: local.entities,
                    sentiment,
                    warnings: local.warnings,
                }
            }
        };
        Traced {
            enrichment,
            models: self.remote_models(),
            fallback: None,
        }
    }

    /// The configured fallback for an article the remote model did not enrich.
    fn fall_back(
        &self,
        doc: &Document<'_>,
        local: Option<Enrichment>,
        reason: &'static str,
        detail: &str,
    ) -> Result<Traced, EnrichFailure> {
        self.inner
            .metrics
            .remote_fallbacks
            .with_label_values(&[reason])
            .inc();
        match self.inner.mode {
            RemoteFallback::Local => Ok(Traced {
                enrichment: local.unwrap_or_else(|| self.fallback.enrich(doc)),
                models: self.fallback.models(),
                fallback: Some(reason.to_string()),
            }),
            RemoteFallback::DeadLetter => Err(EnrichFailure {
                reason: "remote_unavailable",
                message: format!("{reason}: {detail}"),
            }),
        }
    }

    /// Runs `task` to completion from a synchronous caller (on a runtime thread, not the
    /// enrichment pool, the thread is given up to blocking first; nesting `block_on` in a
    /// current-thread runtime panics, as it must).
    fn wait<T>(&self, task: tokio::task::JoinHandle<T>) -> Result<T, tokio::task::JoinError> {
        crate::runtime::blocking(|| self.runtime.block_on(task))
    }
}

/// A breaker ticket on its way back: reported with the article's outcome, or as a failure
/// when the task carrying it ends without one (a panic, or the runtime dropping the task),
/// so that a half-open probe is never lost without a word.
struct Admission {
    inner: Arc<Inner>,
    ticket: Option<Ticket>,
}

impl Admission {
    fn report(mut self, ok: bool) {
        if let Some(ticket) = self.ticket.take() {
            self.inner.record(ticket, ok);
        }
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.inner.record(ticket, false);
        }
    }
}

impl Inner {
    fn set_state(&self, breaker: &Breaker, before: State) {
        let after = breaker.state();
        self.metrics.remote_circuit_state.set(after.gauge());
        if before != after {
            match after {
                State::Open => tracing::warn!("Remote model circuit opened; using the fallback"),
                State::HalfOpen => tracing::info!("Remote model circuit half-open; probing"),
                State::Closed => tracing::info!("Remote model circuit closed"),
            }
        }
    }

    fn admit(&self) -> Option<Ticket> {
        let mut b = self.breaker.lock().unwrap_or_else(|e| e.into_inner());
        let before = b.state();
        let ticket = b.admit(std::time::Instant::now());
        self.set_state(&b, before);
        ticket
    }

    fn record(&self, ticket: Ticket, ok: bool) {
        let mut b = self.breaker.lock().unwrap_or_else(|e| e.into_inner());
        let before = b.state();
        if ok {
            b.success(ticket);
        } else {
            b.failure(ticket, std::time::Instant::now());
        }
        self.set_state(&b, before);
    }

    /// The whole remote side of one article, within its budget; records the outcome with
    /// the breaker whoever waits for it.
    async fn run(
        self: Arc<Self>,
        admission: Admission,
        chunks: Vec<Chunk>,
        body_chars: usize,
    ) -> Result<Answer, CallError> {
        let now = Instant::now();
        // The budget is bounded at start-up; a clock that cannot add it gets no time at all.
        let deadline = now.checked_add(self.budget).unwrap_or(now);
        let result = tokio::time::timeout_at(deadline, self.answer(&chunks, body_chars, deadline))
            .await
            .unwrap_or(Err(CallError::Budget));
        admission.report(result.is_ok());
        result
    }

    async fn answer(
        &self,
        chunks: &[Chunk],
        body_chars: usize,
        deadline: Instant,
    ) -> Result<Answer, CallError> {
        match self.task {
            RemoteTask::TokenClassification => {
                let answers = self.answers::<RemoteEntity>(chunks, deadline).await?;
                Ok(Answer::Entities(map::entities(
                    chunks,
                    &answers,
                    &self.labels,
                    body_chars,
                )))
            }
            RemoteTask::TextClassification => {
                let answers = self.answers::<RemoteLabel>(chunks, deadline).await?;
                let sentiment = map::sentiment(chunks, &answers, &self.labels);
                if sentiment.is_none() {
                    return Err(CallError::Invalid(
                        "no answer carried a label of enrich.remote.label_map".into(),
                    ));
                }
                Ok(Answer::Sentiment(sentiment))
            }
        }
    }

    /// Answers for every chunk, `batch_size` chunks per request, one request at a time.
    async fn answers<T: DeserializeOwned>(
        &self,
        chunks: &[Chunk],
        deadline: Instant,
    ) -> Result<Vec<Vec<T>>, CallError> {
        let mut answers = Vec::with_capacity(chunks.len());
        for batch in chunks.chunks(self.batch_size) {
            let texts: Vec<&str> = batch.iter().map(|c| c.text.as_str()).collect();
            answers.extend(self.client.call::<T>(&texts, deadline).await?);
        }
        Ok(answers)
    }
}

impl Enricher for RemoteEnricher {
    /// The remote enrichment, or the local one whatever the fallback mode.
    fn enrich(&self, doc: &Document<'_>) -> Enrichment {
        match self.enrich_traced(doc) {
            Ok(traced) => traced.enrichment,
            Err(_) => self.fallback.enrich(doc),
        }
    }

    fn models(&self) -> Vec<ModelInfo> {
        self.remote_models()
    }

    fn enrich_traced(&self, doc: &Document<'_>) -> Result<Traced, EnrichFailure> {
        let chunks = chunk::chunks(doc, self.inner.max_chunk_chars);
        if chunks.is_empty() {
            // Nothing to send: no request, and nothing for the breaker to learn.
            let empty = match self.inner.task {
                RemoteTask::TokenClassification => Answer::Entities(Vec::new()),
                RemoteTask::TextClassification => Answer::Sentiment(None),
            };
            return Ok(self.combine(self.fallback.enrich(doc), empty));
        }
        let Some(ticket) = self.inner.admit() else {
            return self.fall_back(doc, None, "circuit_open", "circuit breaker open");
        };
        let admission = Admission {
            inner: self.inner.clone(),
            ticket: Some(ticket),
        };
        let body_chars = doc.body.chars().count();
        let task = self
            .runtime
            .spawn(self.inner.clone().run(admission, chunks, body_chars));
        // The local half runs on this thread while the request is in flight.
        let local = self.fallback.enrich(doc);
        let result = self
            .wait(task)
            .unwrap_or_else(|e| Err(CallError::Connect(format!("remote task failed: {e}"))));
        match result {
            Ok(answer) => Ok(self.combine(local, answer)),
            Err(e) => {
                tracing::debug!(error = %e, "Remote model failed for an article; using the fallback");
                self.fall_back(doc, Some(local), e.fallback_reason(), &e.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrich::baseline::BaselineEnricher;

    fn enricher(extra: &str) -> RemoteEnricher {
        let config: RemoteConfig = toml::from_str(&format!(
            "url = \"http://127.0.0.1:9/\"\ntask = \"token-classification\"\n{extra}"
        ))
        .unwrap();
        RemoteEnricher::new(
            config,
            Arc::new(BaselineEnricher),
            Metrics::new().unwrap(),
            tokio::runtime::Handle::current(),
        )
        .unwrap()
    }

    fn state(inner: &Inner) -> State {
        inner.breaker.lock().unwrap().state()
    }

    /// The task carrying a ticket may die (a panic, a dropped runtime) before it reports;
    /// the ticket then reports a failure itself, so a probe can never be lost silently.
    #[tokio::test]
    async fn a_ticket_dropped_without_an_outcome_counts_as_a_failure() {
        let e = enricher("breaker_failures = 1\nbreaker_open_ms = 0");
        let inner = e.inner.clone();
        let ticket = inner.admit().unwrap();
        drop(Admission {
            inner: inner.clone(),
            ticket: Some(ticket),
        });
        assert_eq!(state(&inner), State::Open);
        // The probe is lost the same way: the breaker opens again rather than staying
        // half-open.
        let probe = inner.admit().unwrap();
        assert_eq!((probe, state(&inner)), (Ticket::Probe, State::HalfOpen));
        drop(Admission {
            inner: inner.clone(),
            ticket: Some(probe),
        });
        assert_eq!(state(&inner), State::Open);
        // A reported outcome is not counted twice.
        let probe = inner.admit().unwrap();
        Admission {
            inner: inner.clone(),
            ticket: Some(probe),
        }
        .report(true);
        assert_eq!(state(&inner), State::Closed);
    }
}
