//! The fake Hugging Face model server (switchable failure modes) and the in-process helpers
//! the remote tests share: configs, a `RemoteEnricher` under test, metrics and sample text.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use newsflow::config::RemoteConfig;
use newsflow::enrich::baseline::BaselineEnricher;
use newsflow::enrich::{
    Document, EnrichFailure, Enricher, Enrichment, Entity, EntityType, Field, Mention, ModelInfo,
    Source, Traced,
};
use newsflow::metrics::Metrics;
use newsflow::remote::RemoteEnricher;

// ---------------------------------------------------------------------------------------
// The fake model server.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Mode {
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

pub(super) const HUGE_ANSWER_BYTES: usize = 200_000;

#[derive(Default)]
pub(super) struct ServerState {
    pub(super) mode: AtomicU8,
    pub(super) delay_ms: AtomicU64,
    pub(super) retry_after_secs: AtomicU64,
    pub(super) requests: AtomicUsize,
    pub(super) texts: AtomicUsize,
    pub(super) in_flight: AtomicUsize,
    pub(super) max_in_flight: AtomicUsize,
    pub(super) last_auth: Mutex<Option<String>>,
    pub(super) redirect_to: Mutex<String>,
}

/// Names the fake NER model knows, with their groups.
pub(super) const NAMES: [(&str, &str); 6] = [
    ("Anna Berg", "PER"),
    ("Émilie Dubois", "PER"),
    ("Nordic Council", "ORG"),
    ("Oslo", "LOC"),
    ("Zürich", "LOC"),
    ("Genève", "LOC"),
];

/// Every occurrence of every known name, with code point offsets (as Python reports them).
pub(super) fn fake_ner(text: &str) -> Value {
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

pub(super) fn fake_sentiment(text: &str) -> Value {
    if text.contains("constructive") {
        json!([{"label": "POSITIVE", "score": 0.9}, {"label": "NEGATIVE", "score": 0.1}])
    } else {
        json!([{"label": "NEGATIVE", "score": 0.7}, {"label": "POSITIVE", "score": 0.3}])
    }
}

/// Decrements the server's in-flight count however the handler ends.
pub(super) struct Busy(Arc<ServerState>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

pub(super) async fn handle(
    s: Arc<ServerState>,
    headers: HeaderMap,
    body: Bytes,
    ner: bool,
) -> Response {
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

pub(super) struct FakeModel {
    pub(super) addr: SocketAddr,
    pub(super) state: Arc<ServerState>,
    pub(super) task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeModel {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeModel {
    pub(super) async fn start() -> FakeModel {
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

    pub(super) fn url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.addr)
    }

    pub(super) fn set(&self, mode: Mode) {
        self.state.mode.store(mode as u8, Ordering::SeqCst);
    }

    pub(super) fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    pub(super) fn max_in_flight(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }
}

// ---------------------------------------------------------------------------------------
// In-process helpers.

/// A remote config from TOML (so defaults apply), with `extra` lines.
pub(super) fn remote_config(url: &str, task: &str, extra: &str) -> RemoteConfig {
    toml::from_str(&format!("url = \"{url}\"\ntask = \"{task}\"\n{extra}")).unwrap()
}

pub(super) fn remote(
    config: RemoteConfig,
    fallback: Arc<dyn Enricher>,
) -> (Arc<RemoteEnricher>, Metrics) {
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
pub(super) async fn enrich(
    e: &Arc<RemoteEnricher>,
    title: &str,
    body: &str,
) -> Result<Traced, EnrichFailure> {
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

pub(super) fn outcome(m: &Metrics, outcome: &str) -> u64 {
    m.remote_requests.with_label_values(&[outcome]).get()
}

pub(super) fn fallbacks(m: &Metrics, reason: &str) -> u64 {
    m.remote_fallbacks.with_label_values(&[reason]).get()
}

pub(super) fn chars(s: &str, start: usize, end: usize) -> String {
    s.chars().skip(start).take(end - start).collect()
}

pub(super) const TITLE: &str = "Anna Berg visits Oslo";
pub(super) const BODY: &str = "Foreign Minister Anna Berg met the Nordic Council in Oslo. \
                    The talks were described as constructive.";

/// A body long enough for several chunks, with non-ASCII names in the later ones.
pub(super) fn long_body() -> String {
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
pub(super) struct StubLocal;

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
