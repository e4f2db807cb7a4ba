//! The live worker against the real broker.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use rdkafka::message::Message;

use crate::helpers::*;

const PARTITIONS: i32 = 3;
/// The worker's `pipeline.max_message_bytes` in these tests (the broker's own limit is 1 MB).
const LIMIT: usize = 64 * 1024;

fn schema_validator() -> jsonschema::Validator {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../../docs/event.schema.json")).unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

/// The "done when" scenario: 1,000 articles and a handful of poison messages; exactly the
/// valid ones come out (schema-valid, keyed by article id), the poison ones are
/// dead-lettered, counters match, and after SIGTERM the committed offsets are the end
/// offsets of every partition.
#[tokio::test(flavor = "multi_thread")]
async fn thousand_articles_and_poison_come_out_right_and_offsets_are_committed_on_sigterm() {
    let Some(brokers) = brokers() else { return };
    let topics = create_topics(&brokers, PARTITIONS).await;
    let group = unique("group");
    let mut records = articles("a", 0..1000);
    let poison: Vec<(String, Vec<u8>)> = vec![
        ("p-empty".into(), Vec::new()),
        ("p-utf8".into(), b"\xff\xfe\xfd not text".to_vec()),
        ("p-trunc".into(), br#"{"id": "p", "title": "cut"#.to_vec()),
        ("p-array".into(), b"[1, 2, 3]".to_vec()),
        ("p-type".into(), br#"{"id": "p", "title": 12}"#.to_vec()),
        ("p-large".into(), vec![b'x'; LIMIT + 10]),
        (
            "p-chrome".into(),
            b"Leave a Reply\n\nBack to top button".to_vec(),
        ),
    ];
    // Poison spread through the stream, so partitions must move on past it.
    for (i, p) in poison.iter().enumerate() {
        records.insert(i * 120 + 7, p.clone());
    }
    produce(&brokers, &topics.input, &records).await;

    let limit = LIMIT.to_string();
    let env = [("NEWSFLOW__PIPELINE__MAX_MESSAGE_BYTES", limit.as_str())];
    let mut worker = WorkerProcess::start(&brokers, &topics, &group, &env);
    worker.wait_ready(Duration::from_secs(30)).await;
    let events = read_topic(&brokers, &topics.output, 1000, Duration::from_secs(120));
    let dead = read_topic(
        &brokers,
        &topics.dead_letter,
        poison.len(),
        Duration::from_secs(30),
    );

    let validator = schema_validator();
    let mut ids = HashSet::new();
    for m in &events {
        let v: serde_json::Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
        let errors: Vec<String> = validator.iter_errors(&v).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            m.key().unwrap(),
            v["article_id"].as_str().unwrap().as_bytes()
        );
        assert_eq!(header(m, "newsflow.schema.version").as_deref(), Some("1.0"));
        assert_eq!(
            header(m, "content-type").as_deref(),
            Some("application/json")
        );
        ids.insert(v["article_id"].as_str().unwrap().to_string());
    }
    let expected: HashSet<String> = (0..1000).map(|n| format!("a{n}")).collect();
    assert_eq!(ids, expected);

    let mut classes: Vec<String> = dead
        .iter()
        .map(|m| header(m, "newsflow.error.class").unwrap())
        .collect();
    classes.sort();
    assert_eq!(
        classes,
        [
            "empty",
            "invalid_article",
            "invalid_article",
            "invalid_json",
            "invalid_utf8",
            "normalize",
            "too_large"
        ]
    );
    for m in &dead {
        let key = String::from_utf8_lossy(m.key().unwrap()).into_owned();
        let original = &poison.iter().find(|(k, _)| *k == key).unwrap().1;
        assert_eq!(
            header(m, "newsflow.source.topic").as_deref(),
            Some(topics.input.as_str())
        );
        assert!(header(m, "newsflow.source.offset").is_some());
        assert!(header(m, "newsflow.error.message").is_some());
        if key == "p-large" {
            assert_eq!(header(m, "newsflow.truncated").as_deref(), Some("true"));
            assert_eq!(m.payload().unwrap().len(), LIMIT);
        } else {
            assert_eq!(m.payload().unwrap_or_default(), &original[..]);
        }
    }

    // Counters agree with what came out (they are updated on acknowledgement).
    worker
        .wait_for_metric(
            "newsflow_events_produced_total",
            1000.0,
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(
        worker.metric("newsflow_messages_consumed_total").await,
        1007.0
    );
    assert_eq!(
        worker.metric("newsflow_events_produced_total").await,
        1000.0
    );
    assert_eq!(
        worker.metric("newsflow_messages_dead_lettered_total").await,
        7.0
    );
    assert!(worker.metric("newsflow_entities_extracted_total").await > 0.0);

    worker.signal("TERM");
    assert_eq!(worker.wait_exit(Duration::from_secs(30)), Some(0));
    let committed = committed(&brokers, &group, &topics.input, PARTITIONS);
    let ends = high_watermarks(&brokers, &topics.input, PARTITIONS);
    assert_eq!(committed, ends);
}

/// SIGKILL in the middle of the stream, then a restart: every article comes out.
#[tokio::test(flavor = "multi_thread")]
async fn worker_killed_mid_stream_and_restarted_loses_no_article() {
    let Some(brokers) = brokers() else { return };
    let topics = create_topics(&brokers, PARTITIONS).await;
    let group = unique("group");
    let records = articles("k", 0..600);
    produce(&brokers, &topics.input, &records).await;

    let slow = [
        ("NEWSFLOW__PIPELINE__WORKERS", "1"),
        ("NEWSFLOW__PIPELINE__MAX_IN_FLIGHT", "8"),
    ];
    let mut worker = WorkerProcess::start(&brokers, &topics, &group, &slow);
    worker.wait_ready(Duration::from_secs(30)).await;
    worker
        .wait_for_metric(
            "newsflow_events_produced_total",
            50.0,
            Duration::from_secs(60),
        )
        .await;
    worker.signal("KILL");
    worker.wait_exit(Duration::from_secs(10));
    drop(worker);
    // Let the killed member's session (6 s) expire first: Tansu 0.6.0 does not rebalance
    // again when a member expires while a newer one already joined with no partitions (the
    // newcomer stays unassigned; see README, known limitations).
    tokio::time::sleep(Duration::from_secs(8)).await;

    let restarted = WorkerProcess::start(&brokers, &topics, &group, &[]);
    restarted.wait_ready(Duration::from_secs(30)).await;
    let expected: HashSet<String> = (0..600).map(|n| format!("k{n}")).collect();
    let ids = read_article_ids(
        &brokers,
        &topics.output,
        &expected,
        Duration::from_secs(120),
    );
    let missing: Vec<&String> = expected.difference(&ids).collect();
    assert!(missing.is_empty(), "lost articles: {missing:?}");
}

/// `/healthz` is 200 while alive; `/readyz` is 503 while the brokers are unreachable and
/// 200 once connected; `/metrics` is Prometheus text.
#[tokio::test(flavor = "multi_thread")]
async fn http_endpoints_answer_as_specified() {
    let Some(brokers) = brokers() else { return };
    let topics = create_topics(&brokers, 1).await;
    let dead_broker = format!("127.0.0.1:{}", free_port());
    let unreachable = WorkerProcess::start(&dead_broker, &topics, &unique("group"), &[]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut health = None;
    while health.is_none() && Instant::now() < deadline {
        health = unreachable.get("/healthz").await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(health.map(|h| h.0), Some(200));
    assert_eq!(unreachable.get("/readyz").await.map(|r| r.0), Some(503));
    drop(unreachable);

    let worker = WorkerProcess::start(&brokers, &topics, &unique("group"), &[]);
    worker.wait_ready(Duration::from_secs(30)).await;
    assert_eq!(worker.get("/healthz").await.map(|r| r.0), Some(200));
    let (status, text) = worker.get("/metrics").await.unwrap();
    assert_eq!(status, 200);
    for name in [
        "newsflow_build_info",
        "newsflow_messages_dead_lettered_total",
        "newsflow_ready 1",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics");
    }
    assert_eq!(worker.get("/nope").await.map(|r| r.0), Some(404));
}

/// An unknown input topic stops the worker at start-up with a clear error.
#[tokio::test(flavor = "multi_thread")]
async fn unknown_input_topic_fails_with_a_clear_error() {
    let Some(brokers) = brokers() else { return };
    let topics = Topics {
        input: unique("missing"),
        output: unique("out"),
        dead_letter: unique("dlq"),
    };
    let mut worker = WorkerProcess::start(&brokers, &topics, &unique("group"), &[]);
    assert_eq!(worker.wait_exit(Duration::from_secs(30)), Some(1));
}

/// The broker goes away mid-stream and comes back: the worker keeps running (not ready
/// meanwhile), resumes by itself, and no article is lost.
#[tokio::test(flavor = "multi_thread")]
async fn worker_rides_out_a_broker_outage_and_loses_nothing() {
    if brokers().is_none() {
        return;
    }
    let Some(mut broker) = OwnBroker::start() else {
        assert!(
            std::env::var("NEWSFLOW_REQUIRE_BROKER").is_err(),
            "NEWSFLOW_TEST_TANSU unset"
        );
        return;
    };
    let addr = broker.addr.clone();
    let topics = create_topics(&addr, PARTITIONS).await;
    let group = unique("group");
    let first = articles("o", 0..300);
    produce(&addr, &topics.input, &first).await;
    let slow = [
        ("NEWSFLOW__PIPELINE__WORKERS", "1"),
        ("NEWSFLOW__PIPELINE__MAX_IN_FLIGHT", "16"),
    ];
    let mut worker = WorkerProcess::start(&addr, &topics, &group, &slow);
    worker.wait_ready(Duration::from_secs(30)).await;
    worker
        .wait_for_metric(
            "newsflow_events_produced_total",
            30.0,
            Duration::from_secs(60),
        )
        .await;
    broker.down();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        worker.child.try_wait().unwrap().is_none(),
        "worker exited during the outage"
    );
    assert_eq!(worker.get("/healthz").await.map(|r| r.0), Some(200));
    broker.up();
    let more = articles("o", 300..350);
    produce(&addr, &topics.input, &more).await;
    let expected: HashSet<String> = (0..350).map(|n| format!("o{n}")).collect();
    let ids = read_article_ids(&addr, &topics.output, &expected, Duration::from_secs(120));
    let missing: Vec<&String> = expected.difference(&ids).collect();
    assert!(missing.is_empty(), "lost across the outage: {missing:?}");
    worker.wait_ready(Duration::from_secs(30)).await;
    worker.signal("TERM");
    assert_eq!(worker.wait_exit(Duration::from_secs(30)), Some(0));
}

/// A second worker joins the group mid-stream (cooperative-sticky): partitions are shared,
/// revoked partitions are drained and committed, and every article comes out.
#[tokio::test(flavor = "multi_thread")]
async fn second_worker_joining_shares_partitions_and_nothing_is_lost() {
    let Some(brokers) = brokers() else { return };
    let partitions = 6;
    let topics = create_topics(&brokers, partitions).await;
    let group = unique("group");
    let records = articles("j", 0..600);
    produce(&brokers, &topics.input, &records).await;
    let slow = [
        ("NEWSFLOW__PIPELINE__WORKERS", "1"),
        ("NEWSFLOW__PIPELINE__MAX_IN_FLIGHT", "8"),
    ];
    let mut a = WorkerProcess::start(&brokers, &topics, &group, &slow);
    a.wait_ready(Duration::from_secs(30)).await;
    a.wait_for_metric(
        "newsflow_events_produced_total",
        20.0,
        Duration::from_secs(30),
    )
    .await;
    let mut b = WorkerProcess::start(&brokers, &topics, &group, &slow);
    b.wait_ready(Duration::from_secs(30)).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut split = (0.0, 0.0);
    while Instant::now() < deadline {
        split = (
            a.metric("newsflow_assigned_partitions").await,
            b.metric("newsflow_assigned_partitions").await,
        );
        if split.0 > 0.0 && split.1 > 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        split.0 + split.1,
        f64::from(partitions),
        "assignment {split:?}"
    );
    assert!(
        split.0 > 0.0 && split.1 > 0.0,
        "the second worker got no partitions: {split:?}"
    );
    let expected: HashSet<String> = (0..600).map(|n| format!("j{n}")).collect();
    let ids = read_article_ids(
        &brokers,
        &topics.output,
        &expected,
        Duration::from_secs(120),
    );
    let missing: Vec<&String> = expected.difference(&ids).collect();
    assert!(missing.is_empty(), "lost in the rebalance: {missing:?}");
    assert!(
        a.metric("newsflow_rebalances_total{event=\"revoke\"}")
            .await
            >= 1.0
    );
    for w in [&mut a, &mut b] {
        w.signal("TERM");
        assert_eq!(w.wait_exit(Duration::from_secs(30)), Some(0));
    }
    let committed = committed(&brokers, &group, &topics.input, partitions);
    let ends = high_watermarks(&brokers, &topics.input, partitions);
    assert_eq!(committed, ends);
}

/// Updates of one article (same key, same partition) come out in input order, although
/// they are enriched in parallel.
#[tokio::test(flavor = "multi_thread")]
async fn events_with_the_same_key_keep_input_order() {
    let Some(brokers) = brokers() else { return };
    let topics = create_topics(&brokers, 2).await;
    let records: Vec<(String, Vec<u8>)> = (0..300)
        .map(|n| {
            let key = format!("story-{}", n % 3);
            let value = serde_json::json!({
                "id": key, "title": format!("Update {n} on the Oslo talks"),
                "body": "OSLO - Talks continued on Monday.".repeat(1 + (n * 7) % 40), "seq": n,
            });
            (key, value.to_string().into_bytes())
        })
        .collect();
    produce(&brokers, &topics.input, &records).await;
    let worker = WorkerProcess::start(&brokers, &topics, &unique("group"), &[]);
    worker.wait_ready(Duration::from_secs(30)).await;
    let events = read_topic(&brokers, &topics.output, 300, Duration::from_secs(60));
    assert_eq!(events.len(), 300);
    let mut by_key: std::collections::HashMap<String, Vec<i64>> = Default::default();
    for m in &events {
        let v: serde_json::Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
        let key = String::from_utf8_lossy(m.key().unwrap()).into_owned();
        by_key
            .entry(key)
            .or_default()
            .push(v["extra"]["seq"].as_i64().unwrap());
    }
    assert_eq!(by_key.len(), 3);
    for (key, seqs) in by_key {
        let mut sorted = seqs.clone();
        sorted.sort_unstable();
        assert_eq!(seqs, sorted, "{key} out of order");
    }
}

/// The output topic's `max.message.bytes` (read with DescribeConfigs at start-up) bounds
/// every event and batch: an event too large for the topic is dead-lettered by itself as
/// `output_rejected`, and the good events around it come out.
#[tokio::test(flavor = "multi_thread")]
async fn an_event_too_large_for_the_output_topic_is_dead_lettered_alone() {
    use rdkafka::ClientConfig;
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;

    let Some(brokers) = brokers() else { return };
    let topics = Topics {
        input: unique("in"),
        output: unique("out"),
        dead_letter: unique("dlq"),
    };
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .unwrap();
    let new = [
        NewTopic::new(&topics.input, 1, TopicReplication::Fixed(1)),
        NewTopic::new(&topics.output, 1, TopicReplication::Fixed(1))
            .set("max.message.bytes", "20000"),
        NewTopic::new(&topics.dead_letter, 1, TopicReplication::Fixed(1)),
    ];
    for r in admin
        .create_topics(&new, &AdminOptions::new())
        .await
        .unwrap()
    {
        r.unwrap();
    }
    let big_body = "The talks in Oslo were described as constructive. ".repeat(600);
    let big = serde_json::json!({"id": "big", "title": "Talks in Oslo", "body": big_body});
    let mut records = articles("s", 0..20);
    records.insert(10, ("big".into(), big.to_string().into_bytes()));
    produce(&brokers, &topics.input, &records).await;

    let group = unique("group");
    let mut worker = WorkerProcess::start(&brokers, &topics, &group, &[]);
    worker.wait_ready(Duration::from_secs(30)).await;
    let events = read_topic(&brokers, &topics.output, 20, Duration::from_secs(60));
    let dead = read_topic(&brokers, &topics.dead_letter, 1, Duration::from_secs(30));
    worker.signal("TERM");
    assert!(worker.wait_exit(Duration::from_secs(30)).is_some());
    let ids: HashSet<String> = events
        .iter()
        .map(|m| String::from_utf8_lossy(m.key().unwrap()).into_owned())
        .collect();
    assert_eq!(ids.len(), 20, "every small event comes out: {ids:?}");
    assert!(!ids.contains("big"));
    assert!(
        events
            .iter()
            .all(|m| m.payload().map_or(0, <[u8]>::len) <= 20_000)
    );
    assert_eq!(dead.len(), 1);
    assert_eq!(
        header(&dead[0], "newsflow.source.offset").as_deref(),
        Some("10")
    );
    assert_eq!(
        header(&dead[0], "newsflow.error.class").as_deref(),
        Some("output_rejected")
    );
}
