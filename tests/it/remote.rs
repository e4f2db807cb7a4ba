//! Remote enrichment against a real HTTP model server started in the test (axum on port 0)
//! that speaks the Hugging Face inference wire format and can be switched to be slow, fail
//! with 500, throttle with 429 and `Retry-After`, answer malformed JSON, refuse with 400, or
//! drop connections. In-process tests call `RemoteEnricher` directly; the broker tests run
//! the worker against both.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use rdkafka::message::Message;
use serde_json::{Value, json};

use newsflow::config::{RemoteConfig, RemoteFallback};
use newsflow::enrich::baseline::BaselineEnricher;
use newsflow::enrich::{
    Document, EnrichFailure, Enricher, Enrichment, Entity, EntityType, Field, Mention, ModelInfo,
    SentimentLabel, Source, Traced,
};
use newsflow::metrics::Metrics;
use newsflow::remote::RemoteEnricher;

use crate::helpers::*;

// ---------------------------------------------------------------------------------------
// The fake model server.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Mode {
    Healthy = 0,
    Slow = 1,
    Error500 = 2,
    TooMany = 3,
    Malformed = 4,
    Drop = 5,
    BadRequest = 6,
    /// 307 to `redirect_to`.
    Redirect = 7,
    /// A valid answer padded to `HUGE_ANSWER_BYTES`.
    Huge = 8,
}

const HUGE_ANSWER_BYTES: usize = 200_000;

#[derive(Default)]
struct ServerState {
    mode: AtomicU8,
    delay_ms: AtomicU64,
    retry_after_secs: AtomicU64,
    requests: AtomicUsize,
    texts: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    last_auth: Mutex<Option<String>>,
    redirect_to: Mutex<String>,
}

/// Names the fake NER model knows, with their groups.
const NAMES: [(&str, &str); 6] = [
    ("Anna Berg", "PER"),
    ("Émilie Dubois", "PER"),
    ("Nordic Council", "ORG"),
    ("Oslo", "LOC"),
    ("Zürich", "LOC"),
    ("Genève", "LOC"),
];

/// Every occurrence of every known name, with code point offsets (as Python reports them).
fn fake_ner(text: &str) -> Value {
    let mut found = Vec::new();
    for (name, group) in NAMES {
        for (byte, _) in text.match_indices(name) {
            let start = text[..byte].chars().count();
            found.push((start, name, group));
        }
    }
    found.sort();
    Value::Array(
        found
            .into_iter()
            .map(|(start, name, group)| {
                json!({"entity_group": group, "word": name, "start": start,
                       "end": start + name.chars().count(), "score": 0.99})
            })
            .collect(),
    )
}

fn fake_sentiment(text: &str) -> Value {
    if text.contains("constructive") {
        json!([{"label": "POSITIVE", "score": 0.9}, {"label": "NEGATIVE", "score": 0.1}])
    } else {
        json!([{"label": "NEGATIVE", "score": 0.7}, {"label": "POSITIVE", "score": 0.3}])
    }
}

/// Decrements the server's in-flight count however the handler ends.
struct Busy(Arc<ServerState>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn handle(s: Arc<ServerState>, headers: HeaderMap, body: Bytes, ner: bool) -> Response {
    s.requests.fetch_add(1, Ordering::SeqCst);
    let now = s.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    s.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let _busy = Busy(s.clone());
    *s.last_auth.lock().unwrap() = headers
        .get("authorization")
        .map(|v| v.to_str().unwrap_or_default().to_string());
    let mode = s.mode.load(Ordering::SeqCst);
    match mode {
        m if m == Mode::Error500 as u8 => {
            return (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response();
        }
        m if m == Mode::TooMany as u8 => {
            let after = s.retry_after_secs.load(Ordering::SeqCst).to_string();
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", after)],
                "slow down",
            )
                .into_response();
        }
        m if m == Mode::Malformed as u8 => {
            return (
                StatusCode::OK,
                [("content-type", "application/json")],
                "[[{\"entity_gr",
            )
                .into_response();
        }
        m if m == Mode::BadRequest as u8 => {
            return (StatusCode::BAD_REQUEST, "bad input").into_response();
        }
        m if m == Mode::Redirect as u8 => {
            let to = s.redirect_to.lock().unwrap().clone();
            return (StatusCode::TEMPORARY_REDIRECT, [("location", to)], "").into_response();
        }
        m if m == Mode::Huge as u8 => {
            let json = format!("{}[[]]", " ".repeat(HUGE_ANSWER_BYTES));
            return (StatusCode::OK, [("content-type", "application/json")], json).into_response();
        }
        m if m == Mode::Drop as u8 => {
            // Unwinding the connection task closes the socket mid-request (no panic hook).
            std::panic::resume_unwind(Box::new("dropping the connection"));
        }
        m if m == Mode::Slow as u8 => {
            tokio::time::sleep(Duration::from_millis(s.delay_ms.load(Ordering::SeqCst))).await;
        }
        _ => {}
    }
    let request: Value = serde_json::from_slice(&body).unwrap();
    let inputs = request["inputs"].as_array().unwrap();
    s.texts.fetch_add(inputs.len(), Ordering::SeqCst);
    let answer: Vec<Value> = inputs
        .iter()
        .map(|t| {
            let t = t.as_str().unwrap();
            if ner { fake_ner(t) } else { fake_sentiment(t) }
        })
        .collect();
    let json = Value::Array(answer).to_string();
    (StatusCode::OK, [("content-type", "application/json")], json).into_response()
}

struct FakeModel {
    addr: SocketAddr,
    state: Arc<ServerState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeModel {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeModel {
    async fn start() -> FakeModel {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(ServerState::default());
        let app = Router::new()
            .route("/ner", post(|State(s), h, b| handle(s, h, b, true)))
            .route("/sentiment", post(|State(s), h, b| handle(s, h, b, false)))
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeModel { addr, state, task }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.addr)
    }

    fn set(&self, mode: Mode) {
        self.state.mode.store(mode as u8, Ordering::SeqCst);
    }

    fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    fn max_in_flight(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }
}

// ---------------------------------------------------------------------------------------
// In-process helpers.

/// A remote config from TOML (so defaults apply), with `extra` lines.
fn remote_config(url: &str, task: &str, extra: &str) -> RemoteConfig {
    toml::from_str(&format!("url = \"{url}\"\ntask = \"{task}\"\n{extra}")).unwrap()
}

fn remote(config: RemoteConfig, fallback: Arc<dyn Enricher>) -> (Arc<RemoteEnricher>, Metrics) {
    let metrics = Metrics::new().unwrap();
    let e = RemoteEnricher::new(
        config,
        fallback,
        metrics.clone(),
        tokio::runtime::Handle::current(),
    )
    .unwrap();
    (Arc::new(e), metrics)
}

/// Calls the enricher as the worker does: from a thread that is not a runtime worker.
async fn enrich(e: &Arc<RemoteEnricher>, title: &str, body: &str) -> Result<Traced, EnrichFailure> {
    let (e, title, body) = (e.clone(), title.to_string(), body.to_string());
    tokio::task::spawn_blocking(move || {
        e.enrich_traced(&Document {
            title: &title,
            body: &body,
            published: None,
            language: Some("en"),
        })
    })
    .await
    .unwrap()
}

fn outcome(m: &Metrics, outcome: &str) -> u64 {
    m.remote_requests.with_label_values(&[outcome]).get()
}

fn fallbacks(m: &Metrics, reason: &str) -> u64 {
    m.remote_fallbacks.with_label_values(&[reason]).get()
}

fn chars(s: &str, start: usize, end: usize) -> String {
    s.chars().skip(start).take(end - start).collect()
}

const TITLE: &str = "Anna Berg visits Oslo";
const BODY: &str = "Foreign Minister Anna Berg met the Nordic Council in Oslo. \
                    The talks were described as constructive.";

/// A body long enough for several chunks, with non-ASCII names in the later ones.
fn long_body() -> String {
    let mut body = String::new();
    for i in 0..12 {
        body.push_str(&format!(
            "Paragraph {i}: Émilie Dubois met Anna Berg in Zürich — “a fine day”, said a \
             spokesman in Genève. "
        ));
    }
    body
}

/// A local engine with separate NER, dates and sentiment models, like the real one.
struct StubLocal;

impl Enricher for StubLocal {
    fn enrich(&self, doc: &Document<'_>) -> Enrichment {
        let mut e = BaselineEnricher.enrich(doc);
        let mention = |text: &str| Mention {
            field: Field::Title,
            start: 0,
            end: text.chars().count(),
            text: text.into(),
        };
        let entity = |text: &str, kind| Entity {
            text: text.into(),
            kind,
            mentions: vec![mention(text)],
            salience: 0.5,
            sentiment: None,
            normalized: None,
            source: Source::Local,
        };
        e.entities = vec![
            entity("Anna", EntityType::Per),
            entity("Anna", EntityType::Date),
        ];
        e
    }

    fn models(&self) -> Vec<ModelInfo> {
        ["ner", "dates", "sentiment"]
            .into_iter()
            .map(|task| ModelInfo {
                task: task.into(),
                name: format!("local-{task}"),
                version: "1".into(),
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------
// In-process tests.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_server_gives_remote_entities_at_character_offsets_across_chunks() {
    let server = FakeModel::start().await;
    let local: Arc<dyn Enricher> = Arc::new(StubLocal);
    let config = remote_config(
        &server.url("ner"),
        "token-classification",
        "max_chunk_chars = 150\nbatch_size = 3\nmodel = \"dslim/bert-base-NER\"",
    );
    let (e, metrics) = remote(config, local);
    let body = long_body();
    let t = enrich(&e, TITLE, &body).await.unwrap();
    assert_eq!(t.fallback, None);
    let texts = server.state.texts.load(Ordering::SeqCst);
    assert!(texts > 8, "the body should be chunked, got {texts} inputs");
    assert_eq!(
        server.requests(),
        texts.div_ceil(3),
        "batch_size texts per request"
    );
    assert_eq!(outcome(&metrics, "ok"), server.requests() as u64);

    let remote: Vec<_> = t
        .enrichment
        .entities
        .iter()
        .filter(|e| e.source == Source::Remote)
        .collect();
    assert!(remote.iter().all(|e| e.kind != EntityType::Date));
    // Local dates stay; local names give way to the remote model's.
    let local: Vec<_> = t
        .enrichment
        .entities
        .iter()
        .filter(|e| e.source == Source::Local)
        .collect();
    assert_eq!(local.len(), 1);
    assert_eq!(local[0].kind, EntityType::Date);
    for name in ["Anna Berg", "Émilie Dubois", "Zürich", "Genève", "Oslo"] {
        let ent = remote
            .iter()
            .find(|e| e.text == name)
            .unwrap_or_else(|| panic!("{name}"));
        let in_title = ["Anna Berg", "Oslo"].contains(&name);
        let expected = if name == "Oslo" { 0 } else { 12 };
        let in_body = ent
            .mentions
            .iter()
            .filter(|m| m.field == Field::Body)
            .count();
        assert_eq!(in_body, expected, "{name} mentions in the body");
        assert_eq!(
            ent.mentions.len(),
            expected + usize::from(in_title),
            "{name}"
        );
    }
    for ent in &remote {
        for m in &ent.mentions {
            let field = if m.field == Field::Title {
                TITLE
            } else {
                &body
            };
            assert_eq!(chars(field, m.start, m.end), m.text, "{m:?}");
        }
    }
    // Sentiment and dates stay local; the local NER model is not used.
    assert_eq!(t.enrichment.sentiment.source, Source::Local);
    let models: Vec<(String, String)> = t
        .models
        .iter()
        .map(|m| (m.task.clone(), m.version.clone()))
        .collect();
    assert_eq!(models[0], ("ner".to_string(), "remote".to_string()));
    assert_eq!(t.models[0].name, "dslim/bert-base-NER");
    assert_eq!(
        models[1..].iter().map(|m| m.0.as_str()).collect::<Vec<_>>(),
        ["dates", "sentiment"]
    );
    assert_eq!(metrics.remote_inflight.get(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_classification_gives_remote_sentiment_and_keeps_local_entities() {
    let server = FakeModel::start().await;
    let config = remote_config(&server.url("sentiment"), "text-classification", "");
    let (e, _) = remote(config, Arc::new(BaselineEnricher));
    let t = enrich(&e, "Talks in Oslo", BODY).await.unwrap();
    let s = &t.enrichment.sentiment;
    assert_eq!(s.source, Source::Remote);
    // Title: 0.3 - 0.7 = -0.4 (weight 2); body: 0.9 - 0.1 = 0.8 (weight 1).
    assert!((s.score - 0.0).abs() < 1e-5, "{}", s.score);
    assert_eq!(s.label, SentimentLabel::Positive, "most weighted mass");
    assert!(
        t.enrichment
            .entities
            .iter()
            .all(|e| e.source == Source::Local)
    );
    assert_eq!(t.models[0].task, "sentiment");
    assert_eq!(t.models[0].version, "remote");
    assert_eq!(t.models.len(), 2, "remote sentiment plus the local engine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_then_the_breaker_opens_and_a_recovered_server_closes_it() {
    let server = FakeModel::start().await;
    server.set(Mode::Error500);
    let config = remote_config(
        &server.url("ner"),
        "token-classification",
        "max_retries = 2\nbreaker_failures = 3\nbreaker_open_ms = 400",
    );
    let (e, metrics) = remote(config, Arc::new(BaselineEnricher));
    for i in 0..3 {
        let t = enrich(&e, TITLE, BODY).await.unwrap();
        assert_eq!(t.fallback.as_deref(), Some("error"), "article {i}");
        assert_eq!(t.models[0].name, "baseline-capitalised-spans-lexicon");
        assert!(
            t.enrichment
                .entities
                .iter()
                .all(|e| e.source == Source::Local)
        );
    }
    assert_eq!(server.requests(), 9, "one try and two retries per article");
    assert_eq!(outcome(&metrics, "http_5xx"), 9);
    assert_eq!(metrics.remote_circuit_state.get(), 1, "open");
    // Open: straight to the fallback, no request.
    let t = enrich(&e, TITLE, BODY).await.unwrap();
    assert_eq!(t.fallback.as_deref(), Some("circuit_open"));
    assert_eq!(server.requests(), 9);
    assert_eq!(fallbacks(&metrics, "error"), 3);
    assert_eq!(fallbacks(&metrics, "circuit_open"), 1);

    // Still failing after the open period: the probe fails and the breaker opens again.
    tokio::time::sleep(Duration::from_millis(450)).await;
    let t = enrich(&e, TITLE, BODY).await.unwrap();
    assert_eq!(t.fallback.as_deref(), Some("error"));
    assert_eq!(server.requests(), 12);
    assert_eq!(metrics.remote_circuit_state.get(), 1);

    // Recovered: the next probe closes it and remote results return.
    server.set(Mode::Healthy);
    tokio::time::sleep(Duration::from_millis(450)).await;
    let t = enrich(&e, TITLE, BODY).await.unwrap();
    assert_eq!(t.fallback, None);
    assert_eq!(metrics.remote_circuit_state.get(), 0, "closed");
    assert!(
        t.enrichment
            .entities
            .iter()
            .any(|e| e.source == Source::Remote && e.text == "Anna Berg")
    );
    let t = enrich(&e, TITLE, BODY).await.unwrap();
    assert_eq!(t.fallback, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_429_is_retried_after_retry_after_unless_that_exceeds_the_budget() {
    let server = FakeModel::start().await;
    server.set(Mode::TooMany);
    server.state.retry_after_secs.store(1, Ordering::SeqCst);
    let config = remote_config(
        &server.url("ner"),
        "token-classification",
        "max_retries = 1",
    );
    let (e, metrics) = remote(config, Arc::new(BaselineEnricher));
    let started = Instant::now();
    let t = enrich(&e, TITLE, BODY).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.requests(), 2);
    assert_eq!(outcome(&metrics, "http_429"), 2);
    assert_eq!(t.fallback.as_deref(), Some("error"));

    // A Retry-After beyond the article budget gives up at once.
    server.state.retry_after_secs.store(30, Ordering::SeqCst);
    let started = Instant::now();
    let t = enrich(&e, TITLE, BODY).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(t.fallback.as_deref(), Some("budget_exhausted"));
    assert_eq!(server.requests(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_of_u64_max_neither_panics_nor_leaves_the_breaker_half_open() {
    let server = FakeModel::start().await;
    server.set(Mode::TooMany);
    server
        .state
        .retry_after_secs
        .store(u64::MAX, Ordering::SeqCst);
    let config = remote_config(
        &server.url("ner"),
        "token-classification",
        "max_retries = 1\nbreaker_failures = 1\nbreaker_open_ms = 50",
    );
    let (e, metrics) = remote(config, Arc::new(BaselineEnricher));
    let t = enrich(&e, TITLE, BODY).await.unwrap();
    assert_eq!(t.fallback.as_deref(), Some("budget_exhausted"));
    assert_eq!(metrics.remote_circuit_state.get(), 1, "open");
    // The half-open probe meets the same answer: it fails, and the breaker opens again.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t = enrich(&e, TITLE, BODY).await.unwrap();
    assert_eq!(t.fallback.as_deref(), Some("budget_exhausted"));
    assert_eq!(
        metrics.remote_circuit_state.get(),
        1,
        "open again, not half-open"
    );
    assert_eq!(server.requests(), 2);
    // Recovered: the next probe closes it.
    server.set(Mode::Healthy);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t = enrich(&e, TITLE, BODY).await.unwrap();
    assert_eq!(t.fallback, None);
    assert_eq!(metrics.remote_circuit_state.get(), 0, "closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_not_followed_so_text_and_credential_stay_with_the_configured_host() {
    let server = FakeModel::start().await;
    let elsewhere = FakeModel::start().await;
    server.set(Mode::Redirect);
    *server.state.redirect_to.lock().unwrap() = elsewhere.url("ner");
    // HOME is set in every test environment; its value stands in for a token.
    let config = remote_config(
        &server.url("ner"),
        "token-classification",
        "max_retries = 2\nauth_env = \"HOME\"",
    );
    let (e, metrics) = remote(config, Arc::new(BaselineEnricher));
    let t = enrich(&e, TITLE, BODY).await.unwrap();
    assert_eq!(t.fallback.as_deref(), Some("error"));
    assert_eq!(server.requests(), 1, "a redirect is not retried");
    assert_eq!(outcome(&metrics, "invalid_response"), 1);
    assert_eq!(elsewhere.requests(), 0);
    assert_eq!(*elsewhere.state.last_auth.lock().unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_over_the_per_request_share_of_the_response_budget_is_refused() {
    let server = FakeModel::start().await;
    server.set(Mode::Huge);
    // 128 KiB shared by 2 requests: 64 KiB per answer, below the 200 KB the server sends.
    let config = remote_config(
        &server.url("ner"),
        "token-classification",
        "response_budget_bytes = 131072\nmax_concurrency = 2",
    );
    assert_eq!(config.max_response_bytes(), 65_536);
    let (e, metrics) = remote(config, Arc::new(BaselineEnricher));
    // One input, so the answer `[[]]` is well-formed: only its size is wrong.
    let t = enrich(&e, "", "Oslo").await.unwrap();
    assert_eq!(t.fallback.as_deref(), Some("error"));
    assert_eq!(outcome(&metrics, "invalid_response"), 1);
    // The same answer fits a larger budget.
    let config = remote_config(
        &server.url("ner"),
        "token-classification",
        "response_budget_bytes = 1048576\nmax_concurrency = 2",
    );
    let (e, metrics) = remote(config, Arc::new(BaselineEnricher));
    let t = enrich(&e, "", "Oslo").await.unwrap();
    assert_eq!(t.fallback, None);
    assert_eq!(outcome(&metrics, "invalid_response"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_and_client_errors_are_not_retried() {
    let server = FakeModel::start().await;
    let config = remote_config(
        &server.url("ner"),
        "token-classification",
        "max_retries = 3",
    );
    let (e, metrics) = remote(config, Arc::new(BaselineEnricher));
    server.set(Mode::Malformed);
    let t = enrich(&e, TITLE, BODY).await.unwrap();
    assert_eq!(t.fallback.as_deref(), Some("error"));
    assert_eq!(server.requests(), 1);
    assert_eq!(outcome(&metrics, "invalid_response"), 1);
    server.set(Mode::BadRequest);
    let t = enrich(&e, TITLE, BODY).await.unwrap();
    assert_eq!(t.fallback.as_deref(), Some("error"));
    assert_eq!(server.requests(), 2);
    assert_eq!(outcome(&metrics, "http_4xx"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_are_retried_as_connection_errors() {
    let server = FakeModel::start().await;
    server.set(Mode::Drop);
    let config = remote_config(
        &server.url("ner"),
        "token-classification",
        "max_retries = 2",
    );
    let (e, metrics) = remote(config, Arc::new(BaselineEnricher));
    let t = enrich(&e, TITLE, BODY).await.unwrap();
    assert_eq!(t.fallback.as_deref(), Some("error"));
    assert_eq!(server.requests(), 3);
    assert_eq!(outcome(&metrics, "connect"), 3);
    // Connections come back once the server behaves.
    server.set(Mode::Healthy);
    let t = enrich(&e, TITLE, BODY).await.unwrap();
    assert_eq!(t.fallback, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_server_times_out_and_the_article_budget_bounds_the_retries() {
    let server = FakeModel::start().await;
    server.set(Mode::Slow);
    server.state.delay_ms.store(2_000, Ordering::SeqCst);
    let config = remote_config(
        &server.url("ner"),
        "token-classification",
        "timeout_ms = 150\nmax_retries = 0",
    );
    let (e, metrics) = remote(config, Arc::new(BaselineEnricher));
    let t = enrich(&e, TITLE, BODY).await.unwrap();
    assert_eq!(t.fallback.as_deref(), Some("timeout"));
    assert_eq!(outcome(&metrics, "timeout"), 1);

    let config = remote_config(
        &server.url("ner"),
        "token-classification",
        "timeout_ms = 150\nmax_retries = 10\narticle_budget_ms = 500",
    );
    let (e, metrics) = remote(config, Arc::new(BaselineEnricher));
    let started = Instant::now();
    let t = enrich(&e, TITLE, BODY).await.unwrap();
    let took = started.elapsed();
    assert_eq!(t.fallback.as_deref(), Some("budget_exhausted"));
    assert!(took < Duration::from_millis(900), "{took:?}");
    assert!(outcome(&metrics, "timeout") >= 2);
    assert_eq!(fallbacks(&metrics, "budget_exhausted"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_server_never_sees_more_requests_in_flight_than_max_concurrency() {
    let server = FakeModel::start().await;
    server.set(Mode::Slow);
    server.state.delay_ms.store(100, Ordering::SeqCst);
    let config = remote_config(
        &server.url("ner"),
        "token-classification",
        "max_concurrency = 3\narticle_budget_ms = 30000",
    );
    let (e, metrics) = remote(config, Arc::new(BaselineEnricher));
    let peak = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (g, peak) = (metrics.remote_inflight.clone(), peak.clone());
        tokio::spawn(async move {
            loop {
                peak.fetch_max(g.get().max(0) as usize, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let calls: Vec<_> = (0..24)
        .map(|_| {
            let e = e.clone();
            tokio::spawn(async move { enrich(&e, TITLE, BODY).await })
        })
        .collect();
    let mut remote_ok = 0;
    for c in calls {
        if c.await.unwrap().unwrap().fallback.is_none() {
            remote_ok += 1;
        }
    }
    sampler.abort();
    assert_eq!(remote_ok, 24);
    assert_eq!(server.requests(), 24);
    assert_eq!(
        server.max_in_flight(),
        3,
        "the bound is reached and never exceeded"
    );
    assert!(peak.load(Ordering::SeqCst) <= 3);
    assert_eq!(metrics.remote_inflight.get(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letter_fallback_fails_the_article_as_remote_unavailable() {
    let server = FakeModel::start().await;
    server.set(Mode::Error500);
    let mut config = remote_config(
        &server.url("ner"),
        "token-classification",
        "max_retries = 0\nbreaker_failures = 1",
    );
    config.fallback = RemoteFallback::DeadLetter;
    let (e, metrics) = remote(config, Arc::new(BaselineEnricher));
    let err = enrich(&e, TITLE, BODY).await.unwrap_err();
    assert_eq!(err.reason, "remote_unavailable");
    assert!(err.message.contains("error"), "{}", err.message);
    let err = enrich(&e, TITLE, BODY).await.unwrap_err();
    assert!(err.message.contains("circuit_open"), "{}", err.message);
    assert_eq!(server.requests(), 1);
    assert_eq!(fallbacks(&metrics, "circuit_open"), 1);
    // `enrich` (no tracing) always falls back to the local engine.
    let doc = Document {
        title: TITLE,
        body: BODY,
        published: None,
        language: None,
    };
    let e2 = e.clone();
    let plain = tokio::task::spawn_blocking(move || e2.enrich(&doc))
        .await
        .unwrap();
    assert!(plain.entities.iter().all(|e| e.source == Source::Local));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_article_without_text_sends_no_request_and_leaves_the_breaker_alone() {
    let server = FakeModel::start().await;
    server.set(Mode::Error500);
    let config = remote_config(
        &server.url("ner"),
        "token-classification",
        "breaker_failures = 1",
    );
    let (e, metrics) = remote(config, Arc::new(BaselineEnricher));
    let t = enrich(&e, " ", "\n").await.unwrap();
    assert_eq!(t.fallback, None);
    assert_eq!(server.requests(), 0);
    assert_eq!(metrics.remote_circuit_state.get(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_comes_from_the_environment_and_a_missing_one_stops_start_up() {
    let server = FakeModel::start().await;
    // HOME is set in every test environment; its value stands in for a token.
    let home = std::env::var("HOME").unwrap();
    let config = remote_config(
        &server.url("ner"),
        "token-classification",
        "auth_env = \"HOME\"",
    );
    let (e, _) = remote(config, Arc::new(BaselineEnricher));
    enrich(&e, TITLE, BODY).await.unwrap();
    assert_eq!(
        server.state.last_auth.lock().unwrap().as_deref(),
        Some(home.as_str())
    );

    let config = remote_config(
        &server.url("ner"),
        "token-classification",
        "auth_env = \"NEWSFLOW_TEST_SURELY_UNSET_TOKEN\"",
    );
    let err = RemoteEnricher::new(
        config,
        Arc::new(BaselineEnricher),
        Metrics::new().unwrap(),
        tokio::runtime::Handle::current(),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("NEWSFLOW_TEST_SURELY_UNSET_TOKEN"), "{err}");
}

// ---------------------------------------------------------------------------------------
// Through the broker: the worker process with `[enrich.remote]` from the environment.

/// The remote model at `url` in front of `enricher` (the local engine behind it); the
/// tests use the quick `baseline`, which keeps start-up short.
fn remote_env(
    url: &str,
    enricher: &str,
    extra: &[(&'static str, &'static str)],
) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("NEWSFLOW__ENRICH__REMOTE__URL", url.to_string()),
        (
            "NEWSFLOW__ENRICH__REMOTE__TASK",
            "token-classification".to_string(),
        ),
        (
            "NEWSFLOW__ENRICH__REMOTE__MODEL",
            "test/fake-ner".to_string(),
        ),
        ("NEWSFLOW__ENRICH__REMOTE__MAX_CONCURRENCY", "4".to_string()),
        ("NEWSFLOW__PIPELINE__ENRICHER", enricher.to_string()),
    ];
    env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    env
}

fn start_worker(brokers: &str, topics: &Topics, env: &[(&'static str, String)]) -> WorkerProcess {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    WorkerProcess::start(brokers, topics, &unique("remote"), &env)
}

/// Events from the output topic by article id (the last one seen wins).
fn events(brokers: &str, topic: &str, count: usize) -> Vec<Value> {
    read_topic(brokers, topic, count, Duration::from_secs(60))
        .iter()
        .map(|m| serde_json::from_slice(m.payload().unwrap()).unwrap())
        .collect()
}

fn remote_entities(event: &Value) -> Vec<&Value> {
    event["entities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["source"] == "remote")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_with_a_healthy_model_server_emits_remote_entities_at_the_right_offsets() {
    let Some(brokers) = brokers() else { return };
    let server = FakeModel::start().await;
    let topics = create_topics(&brokers, 2).await;
    let worker = start_worker(
        &brokers,
        &topics,
        &remote_env(&server.url("ner"), "baseline", &[]),
    );
    worker.wait_ready(Duration::from_secs(30)).await;
    produce(&brokers, &topics.input, &articles("healthy-", 0..8)).await;
    let evs = events(&brokers, &topics.output, 8);
    assert_eq!(evs.len(), 8);
    for ev in &evs {
        assert!(
            ev["pipeline"].get("fallback").is_none(),
            "{}",
            ev["pipeline"]
        );
        let models = ev["pipeline"]["models"].as_array().unwrap();
        assert!(models.iter().any(|m| m["task"] == "ner"
            && m["name"] == "test/fake-ner"
            && m["version"] == "remote"));
        let remote = remote_entities(ev);
        let kinds: HashSet<(&str, &str)> = remote
            .iter()
            .map(|e| (e["text"].as_str().unwrap(), e["type"].as_str().unwrap()))
            .collect();
        assert!(kinds.contains(&("Anna Berg", "PER")), "{kinds:?}");
        assert!(kinds.contains(&("Nordic Council", "ORG")), "{kinds:?}");
        assert!(kinds.contains(&("Oslo", "LOC")), "{kinds:?}");
        for e in remote {
            for m in e["mentions"].as_array().unwrap() {
                let field = ev[m["field"].as_str().unwrap()].as_str().unwrap();
                let (s, t) = (
                    m["start"].as_u64().unwrap() as usize,
                    m["end"].as_u64().unwrap() as usize,
                );
                assert_eq!(chars(field, s, t), m["text"].as_str().unwrap());
            }
        }
    }
    assert!(server.max_in_flight() <= 4);
    assert!(
        worker
            .metric("newsflow_remote_requests_total{outcome=\"ok\"}")
            .await
            >= 1.0
    );
    assert_eq!(worker.metric("newsflow_remote_fallbacks_total").await, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_with_a_failing_model_server_retries_falls_back_opens_the_breaker_and_recovers() {
    let Some(brokers) = brokers() else { return };
    let server = FakeModel::start().await;
    server.set(Mode::Error500);
    let topics = create_topics(&brokers, 2).await;
    let env = remote_env(
        &server.url("ner"),
        "baseline",
        &[
            ("NEWSFLOW__ENRICH__REMOTE__MAX_RETRIES", "1"),
            ("NEWSFLOW__ENRICH__REMOTE__BREAKER_FAILURES", "2"),
            ("NEWSFLOW__ENRICH__REMOTE__BREAKER_OPEN_MS", "2000"),
        ],
    );
    let worker = start_worker(&brokers, &topics, &env);
    worker.wait_ready(Duration::from_secs(30)).await;
    let failing = articles("failing-", 0..10);
    produce(&brokers, &topics.input, &failing).await;
    let evs = events(&brokers, &topics.output, 10);
    let ids: HashSet<&str> = evs
        .iter()
        .map(|e| e["article_id"].as_str().unwrap())
        .collect();
    let expected: HashSet<String> = failing.iter().map(|r| r.0.clone()).collect();
    assert_eq!(
        ids,
        expected.iter().map(String::as_str).collect(),
        "every article comes out"
    );
    let reasons: Vec<&str> = evs
        .iter()
        .map(|e| e["pipeline"]["fallback"].as_str().unwrap_or("none"))
        .collect();
    let errors = reasons.iter().filter(|r| **r == "error").count();
    let open = reasons.iter().filter(|r| **r == "circuit_open").count();
    assert_eq!(errors + open, 10, "{reasons:?}");
    assert!(errors >= 2 && open >= 1, "{reasons:?}");
    assert_eq!(
        server.requests(),
        2 * errors,
        "one try and one retry per failed article"
    );
    assert!(evs.iter().all(|e| remote_entities(e).is_empty()));
    assert!(evs.iter().all(|e| {
        e["entities"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["source"] == "local")
    }));
    assert_eq!(worker.metric("newsflow_remote_circuit_state").await, 1.0);
    assert_eq!(worker.metric("newsflow_remote_fallbacks_total").await, 10.0);
    assert!(read_topic(&brokers, &topics.dead_letter, 1, Duration::from_secs(2)).is_empty());

    // The server recovers: after the open period a probe closes the breaker.
    server.set(Mode::Healthy);
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let recovered = articles("recovered-", 10..16);
    produce(&brokers, &topics.input, &recovered).await;
    let evs = events(&brokers, &topics.output, 16);
    let later: Vec<&Value> = evs
        .iter()
        .filter(|e| e["article_id"].as_str().unwrap().starts_with("recovered"))
        .collect();
    assert_eq!(later.len(), 6);
    // The probe goes first; articles racing it may still see the half-open breaker.
    let remote = later
        .iter()
        .filter(|e| e["pipeline"].get("fallback").is_none())
        .count();
    assert!(remote >= 1, "remote results return");
    assert!(
        later
            .iter()
            .filter(|e| e["pipeline"].get("fallback").is_none())
            .all(|e| !remote_entities(e).is_empty())
    );
    assert_eq!(worker.metric("newsflow_remote_circuit_state").await, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_with_dead_letter_fallback_sends_articles_to_the_dead_letter_topic() {
    let Some(brokers) = brokers() else { return };
    let server = FakeModel::start().await;
    server.set(Mode::Error500);
    let topics = create_topics(&brokers, 1).await;
    let env = remote_env(
        &server.url("ner"),
        "baseline",
        &[
            ("NEWSFLOW__ENRICH__REMOTE__MAX_RETRIES", "0"),
            ("NEWSFLOW__ENRICH__REMOTE__FALLBACK", "dead-letter"),
        ],
    );
    let worker = start_worker(&brokers, &topics, &env);
    worker.wait_ready(Duration::from_secs(30)).await;
    let recs = articles("dead-", 0..5);
    produce(&brokers, &topics.input, &recs).await;
    let dead = read_topic(&brokers, &topics.dead_letter, 5, Duration::from_secs(60));
    assert_eq!(dead.len(), 5);
    for m in &dead {
        assert_eq!(
            header(m, "newsflow.error.class").as_deref(),
            Some("remote_unavailable")
        );
    }
    let keys: HashSet<String> = dead
        .iter()
        .map(|m| String::from_utf8_lossy(m.key().unwrap()).into_owned())
        .collect();
    assert_eq!(keys, recs.iter().map(|r| r.0.clone()).collect());
    assert!(read_topic(&brokers, &topics.output, 1, Duration::from_secs(2)).is_empty());
    // Every input offset is committed: nothing is stuck or skipped.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let c = committed(&brokers, &worker.group, &topics.input, 1);
        if c.get(&0) == Some(&5) {
            break;
        }
        assert!(Instant::now() < deadline, "committed {c:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

// ---------------------------------------------------------------------------------------
// Throughput (prints figures, asserts no time). Run in release against a broker:
//   NEWSFLOW_TEST_BROKERS=127.0.0.1:PORT cargo test --release --test it \
//     remote_throughput -- --ignored --nocapture
// NEWSFLOW_BENCH_REMOTE_ARTICLES sets the article count (default 2000).

/// Produces the articles first, then starts the worker (local engine as configured by
/// default) and times it from ready until every article is out.
async fn measure(
    brokers: &str,
    server: &FakeModel,
    label: &str,
    extra: &[(&'static str, &'static str)],
) {
    let n: usize = std::env::var("NEWSFLOW_BENCH_REMOTE_ARTICLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let topics = create_topics(brokers, 3).await;
    produce(
        brokers,
        &topics.input,
        &articles(&format!("{label}-"), 0..n),
    )
    .await;
    let mut env = remote_env(&server.url("ner"), "local", extra);
    env.push(("NEWSFLOW__KAFKA__SESSION_TIMEOUT_MS", "30000".into()));
    let requests_before = server.requests();
    let worker = start_worker(brokers, &topics, &env);
    worker.wait_ready(Duration::from_secs(60)).await;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(600);
    loop {
        let done = worker.metric("newsflow_events_produced_total").await
            + worker.metric("newsflow_messages_dead_lettered_total").await;
        if done >= n as f64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{label}: only {done} of {n} done"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    let fallbacks = worker.metric("newsflow_remote_fallbacks_total").await;
    println!(
        "{label}: {n} articles in {secs:.2} s = {:.0} articles/s; {} HTTP requests, {fallbacks} fallbacks, server peak concurrency {}",
        n as f64 / secs,
        server.requests() - requests_before,
        server.max_in_flight(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run in release with --ignored --nocapture"]
async fn remote_throughput_with_healthy_and_failing_servers() {
    let Some(brokers) = brokers() else { return };
    let server = FakeModel::start().await;
    measure(&brokers, &server, "healthy, no added latency", &[]).await;
    let server = FakeModel::start().await;
    server.set(Mode::Slow);
    server.state.delay_ms.store(20, Ordering::SeqCst);
    measure(&brokers, &server, "healthy, 20 ms per request", &[]).await;
    let server = FakeModel::start().await;
    server.set(Mode::Error500);
    measure(&brokers, &server, "failing (500), local fallback", &[]).await;
}
