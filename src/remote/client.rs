//! The HTTP side: one shared `reqwest` client (pooled connections, HTTP/1.1 and HTTP/2,
//! rustls), at most `max_concurrency` requests in flight, retries with exponential backoff
//! and jitter on timeouts, connection errors, 429 (honouring `Retry-After`) and 5xx.
//!
//! The server's answers are untrusted input: redirects are never followed (they would
//! re-send the article text and the credential header to wherever the server points), a
//! `Retry-After` of any size only ever ends the article's budget early, and an answer is
//! read into memory only up to [`RemoteConfig::max_response_bytes`].

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::Duration;

use prometheus::IntGauge;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::config::RemoteConfig;
use super::wire;
use crate::metrics::Metrics;

/// First retry delay; doubles per retry up to [`BACKOFF_MAX`], with jitter.
pub const BACKOFF_INITIAL: Duration = Duration::from_millis(100);
pub const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Why one request, or the whole call, failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("request timed out")]
    Timeout,
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("HTTP status {status}")]
    Status {
        status: u16,
        retry_after: Option<Duration>,
    },
    #[error("invalid response: {0}")]
    Invalid(String),
    #[error("article time budget exhausted")]
    Budget,
}

impl CallError {
    /// Timeouts, connection errors, 429 and 5xx are retried; other 4xx and bad answers are
    /// not (the same request would fail the same way).
    pub fn retryable(&self) -> bool {
        match self {
            CallError::Timeout | CallError::Connect(_) => true,
            CallError::Status { status, .. } => *status == 429 || *status >= 500,
            CallError::Invalid(_) | CallError::Budget => false,
        }
    }

    /// The `outcome` label of `newsflow_remote_requests_total`.
    pub fn outcome(&self) -> &'static str {
        match self {
            CallError::Timeout | CallError::Budget => "timeout",
            CallError::Connect(_) => "connect",
            CallError::Status { status: 429, .. } => "http_429",
            CallError::Status { status, .. } if *status >= 500 => "http_5xx",
            CallError::Status { .. } => "http_4xx",
            CallError::Invalid(_) => "invalid_response",
        }
    }

    /// The `reason` label of `newsflow_remote_fallbacks_total` (and `pipeline.fallback`).
    pub fn fallback_reason(&self) -> &'static str {
        match self {
            CallError::Timeout => "timeout",
            CallError::Budget => "budget_exhausted",
            _ => "error",
        }
    }
}

/// How long to wait before retry number `retry` (0-based), given the server's `Retry-After`
/// if any, or `None` when the wait would end at or past `deadline` (the article's budget is
/// spent either way, so it gives up now). Checked arithmetic: a `Retry-After` of
/// 18446744073709551615 seconds is simply past the deadline.
pub fn retry_delay(
    retry: u32,
    random: u64,
    retry_after: Option<Duration>,
    now: Instant,
    deadline: Instant,
) -> Option<Duration> {
    let delay = backoff(retry, random).max(retry_after.unwrap_or(Duration::ZERO));
    now.checked_add(delay)
        .is_some_and(|wake| wake < deadline)
        .then_some(delay)
}

/// The delay before retry number `retry` (0-based): `BACKOFF_INITIAL * 2^retry` capped at
/// `BACKOFF_MAX`, of which a random half (from `random`) is jitter.
pub fn backoff(retry: u32, random: u64) -> Duration {
    let base = BACKOFF_INITIAL
        .saturating_mul(1u32.checked_shl(retry.min(16)).unwrap_or(u32::MAX))
        .min(BACKOFF_MAX);
    let half = base / 2;
    let jitter_ms = random % (half.as_millis() as u64 + 1);
    half + Duration::from_millis(jitter_ms)
}

fn random() -> u64 {
    RandomState::new().hash_one(std::time::SystemTime::now())
}

/// Decrements the in-flight gauge when a request ends, however it ends.
struct InFlight(IntGauge);

impl InFlight {
    fn start(g: &IntGauge) -> Self {
        g.inc();
        InFlight(g.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Shared HTTP client for the remote model.
pub struct Client {
    http: reqwest::Client,
    url: reqwest::Url,
    timeout: Duration,
    max_response_bytes: usize,
    max_retries: u32,
    permits: Arc<Semaphore>,
    metrics: Metrics,
}

impl Client {
    /// `auth` is the credential header, already read from the environment; it is marked
    /// sensitive so it never shows in debug output.
    pub fn new(
        config: &RemoteConfig,
        auth: Option<(HeaderName, HeaderValue)>,
        metrics: Metrics,
    ) -> anyhow::Result<Self> {
        let url = reqwest::Url::parse(config.url.expose())
            .map_err(|e| anyhow::anyhow!("enrich.remote.url is not a URL: {e}"))?;
        let mut headers = HeaderMap::new();
        if let Some((name, mut value)) = auth {
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        let timeout = Duration::from_millis(config.timeout_ms);
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("newsflow/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(timeout)
            .pool_max_idle_per_host(config.max_concurrency)
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            // A redirect is answered as a refusal (see `exchange`), never followed.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| anyhow::anyhow!("building the HTTP client for enrich.remote: {e}"))?;
        Ok(Client {
            http,
            url,
            timeout,
            max_response_bytes: config.max_response_bytes(),
            max_retries: config.max_retries,
            permits: Arc::new(Semaphore::new(config.max_concurrency)),
            metrics,
        })
    }

    /// Sends `texts` as one request and parses one answer list per text, retrying as
    /// configured. Never sleeps past `deadline`: a retry that would is given up as
    /// [`CallError::Budget`].
    pub async fn call<T: DeserializeOwned>(
        &self,
        texts: &[&str],
        deadline: Instant,
    ) -> Result<Vec<Vec<T>>, CallError> {
        let body = wire::request_body(texts);
        let mut retry = 0;
        loop {
            let err = match self.attempt::<T>(&body, texts.len(), deadline).await {
                Ok(answers) => return Ok(answers),
                Err(e) => e,
            };
            if !err.retryable() || retry >= self.max_retries {
                return Err(err);
            }
            let retry_after = match err {
                CallError::Status { retry_after, .. } => retry_after,
                _ => None,
            };
            let Some(delay) = retry_delay(retry, random(), retry_after, Instant::now(), deadline)
            else {
                return Err(CallError::Budget);
            };
            tracing::debug!(error = %err, retry, delay_ms = delay.as_millis() as u64, "Retrying remote model request");
            tokio::time::sleep(delay).await;
            retry += 1;
        }
    }

    async fn attempt<T: DeserializeOwned>(
        &self,
        body: &[u8],
        inputs: usize,
        deadline: Instant,
    ) -> Result<Vec<Vec<T>>, CallError> {
        // Closed only if the enricher is dropped mid-call.
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| CallError::Connect("client shut down".into()))?;
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(CallError::Budget);
        }
        let _in_flight = InFlight::start(&self.metrics.remote_inflight);
        let started = Instant::now();
        let result = self.exchange(body, self.timeout.min(remaining)).await;
        let result =
            result.and_then(|bytes| wire::parse::<T>(&bytes, inputs).map_err(CallError::Invalid));
        self.metrics
            .remote_request_duration
            .observe(started.elapsed().as_secs_f64());
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.outcome(),
        };
        self.metrics
            .remote_requests
            .with_label_values(&[outcome])
            .inc();
        result
    }

    /// One POST and its whole answer body, within `timeout`.
    async fn exchange(&self, body: &[u8], timeout: Duration) -> Result<Vec<u8>, CallError> {
        let mut resp = self
            .http
            .post(self.url.clone())
            .timeout(timeout)
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_vec())
            .send()
            .await
            .map_err(transport)?;
        let status = resp.status();
        if status.is_redirection() {
            return Err(CallError::Invalid(format!(
                "redirect (HTTP {}) not followed; set enrich.remote.url to the final address",
                status.as_u16()
            )));
        }
        if !status.is_success() {
            let retry_after = resp
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| wire::retry_after_secs(v, chrono::Utc::now()))
                .map(Duration::from_secs);
            return Err(CallError::Status {
                status: status.as_u16(),
                retry_after,
            });
        }
        let cap = self.max_response_bytes;
        let too_large = || CallError::Invalid(format!("answer larger than {cap} bytes"));
        // A declared length over the cap is refused before reading a byte of it.
        if resp
            .content_length()
            .is_some_and(|n| n > u64::try_from(cap).unwrap_or(u64::MAX))
        {
            return Err(too_large());
        }
        // Read as it streams in; each chunk is checked before it is kept, so no more than
        // `cap` bytes are ever held, whatever the server sends.
        let mut bytes = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(transport)? {
            if chunk.len() > cap - bytes.len() {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }
}

/// Classifies a transport error; the URL is left out of the message.
fn transport(e: reqwest::Error) -> CallError {
    if e.is_timeout() {
        return CallError::Timeout;
    }
    let e = e.without_url();
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    CallError::Connect(message.chars().take(300).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_up_to_half_jitter_and_is_capped() {
        for (retry, base_ms) in [
            (0, 100),
            (1, 200),
            (2, 400),
            (4, 1600),
            (5, 2000),
            (40, 2000),
        ] {
            let low = backoff(retry, 0);
            let high = backoff(retry, u64::MAX - 1);
            assert_eq!(low, Duration::from_millis(base_ms / 2), "retry {retry}");
            assert!(
                high <= Duration::from_millis(base_ms),
                "retry {retry}: {high:?}"
            );
            for r in [1, 17, 12345, u64::MAX] {
                let d = backoff(retry, r);
                assert!(d >= low && d <= Duration::from_millis(base_ms));
            }
        }
    }

    #[test]
    fn only_transient_failures_are_retried() {
        let status = |s| CallError::Status {
            status: s,
            retry_after: None,
        };
        assert!(CallError::Timeout.retryable());
        assert!(CallError::Connect("reset".into()).retryable());
        assert!(status(429).retryable());
        assert!(status(503).retryable());
        assert!(!status(400).retryable());
        assert!(!status(401).retryable());
        assert!(!status(413).retryable());
        assert!(!CallError::Invalid("x".into()).retryable());
        assert!(!CallError::Budget.retryable());
    }

    #[test]
    fn outcomes_and_fallback_reasons_use_the_fixed_label_sets() {
        let status = |s| CallError::Status {
            status: s,
            retry_after: None,
        };
        assert_eq!(status(429).outcome(), "http_429");
        assert_eq!(status(502).outcome(), "http_5xx");
        assert_eq!(status(404).outcome(), "http_4xx");
        assert_eq!(CallError::Invalid("x".into()).outcome(), "invalid_response");
        assert_eq!(CallError::Connect("x".into()).outcome(), "connect");
        assert_eq!(CallError::Timeout.fallback_reason(), "timeout");
        assert_eq!(CallError::Budget.fallback_reason(), "budget_exhausted");
        assert_eq!(status(500).fallback_reason(), "error");
    }

    #[test]
    fn a_huge_retry_after_gives_up_the_budget_instead_of_overflowing_the_clock() {
        let now = Instant::now();
        let deadline = now + Duration::from_secs(5);
        let huge = Some(Duration::from_secs(u64::MAX));
        assert_eq!(retry_delay(0, 0, huge, now, deadline), None);
        assert_eq!(retry_delay(0, 0, Some(Duration::MAX), now, deadline), None);
        // A Retry-After within the budget is honoured, a short one never shortens backoff.
        let after = Some(Duration::from_secs(2));
        assert_eq!(
            retry_delay(0, 0, after, now, deadline),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            retry_delay(0, 0, Some(Duration::ZERO), now, deadline),
            Some(backoff(0, 0))
        );
        assert_eq!(retry_delay(0, 0, None, now, now), None);
    }
}
