//! `RemoteEnricher` called directly against the fake server: offsets, retries, the breaker,
//! throttling, budgets, concurrency, fallbacks and the credential.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use newsflow::config::RemoteFallback;
use newsflow::enrich::baseline::BaselineEnricher;
use newsflow::enrich::{Document, Enricher, EntityType, Field, SentimentLabel, Source};
use newsflow::metrics::Metrics;
use newsflow::remote::RemoteEnricher;

use super::server::*;

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

/// A model server that answers every request with `[[]]` after `padding` bytes of spaces,
/// chunked and without a Content-Length, so only the client's streaming cap can refuse it.
async fn chunked_server(padding: usize) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                // Read the request: headers, then the body its Content-Length announces.
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                let body_start = loop {
                    let Ok(n) = socket.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    if let Some(i) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&request[..body_start]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                while request.len() < body_start + length {
                    let Ok(n) = socket.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                }
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                            transfer-encoding: chunked\r\nconnection: close\r\n\r\n";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let mut body = " ".repeat(padding);
                body.push_str("[[]]");
                for chunk in body.as_bytes().chunks(4096) {
                    let frame = format!("{:x}\r\n", chunk.len());
                    if socket.write_all(frame.as_bytes()).await.is_err()
                        || socket.write_all(chunk).await.is_err()
                        || socket.write_all(b"\r\n").await.is_err()
                    {
                        return;
                    }
                }
                let _ = socket.write_all(b"0\r\n\r\n").await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_answer_without_a_length_is_cut_off_at_the_cap_while_it_streams() {
    let addr = chunked_server(HUGE_ANSWER_BYTES).await;
    let url = format!("http://{addr}/ner");
    // 64 KiB per answer, below the 200 KB streamed: refused although no length was declared.
    let config = remote_config(
        &url,
        "token-classification",
        "response_budget_bytes = 131072\nmax_concurrency = 2",
    );
    let (e, metrics) = remote(config, Arc::new(BaselineEnricher));
    let t = enrich(&e, "", "Oslo").await.unwrap();
    assert_eq!(t.fallback.as_deref(), Some("error"));
    assert_eq!(outcome(&metrics, "invalid_response"), 1);
    // The same stream fits a larger budget: the server itself is sound.
    let config = remote_config(
        &url,
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
