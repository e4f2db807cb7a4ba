//! The worker process with `[enrich.remote]` against the fake server, through the broker,
//! and the ignored throughput benchmark.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::message::Message;
use serde_json::Value;

use crate::helpers::*;

use super::server::*;

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
