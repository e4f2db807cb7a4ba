//! Slow records and back-pressure on librdkafka's mock cluster (no broker needed): a record
//! that takes too long is dead-lettered as `timeout` without holding other partitions, and a
//! worker whose in-flight budget is used up keeps polling (pauses) instead of dropping out of
//! its group.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use newsflow::app::App;
use newsflow::enrich::baseline::BaselineEnricher;
use newsflow::enrich::{Document, Enricher, Enrichment, ModelInfo};
use newsflow::metrics::Metrics;
use newsflow::worker::RunOptions;
use rdkafka::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use tokio_util::sync::CancellationToken;

use crate::helpers::{
    InProcessWorker, article, committed, header, high_watermarks, mock_cluster, mock_config,
    read_all, read_topic,
};

/// The baseline enricher, except that an article whose body contains `SLOW` sleeps first.
struct SlowOnMarker {
    sleep: Duration,
}

impl Enricher for SlowOnMarker {
    fn enrich(&self, doc: &Document<'_>) -> Enrichment {
        if doc.body.contains("SLOW") {
            std::thread::sleep(self.sleep);
        }
        BaselineEnricher.enrich(doc)
    }
    fn models(&self) -> Vec<ModelInfo> {
        BaselineEnricher.models()
    }
}

fn slow_article(id: &str) -> Vec<u8> {
    serde_json::json!({"id": id, "title": "A slow one", "body": "This article is SLOW to enrich."})
        .to_string()
        .into_bytes()
}

/// Articles `a{n}` (keyed by their id) for partition 0 of the input, `n` in `ids`.
fn on_partition_0(ids: std::ops::Range<usize>) -> Vec<(i32, String, Vec<u8>)> {
    ids.map(|n| (0, format!("a{n}"), article(&format!("a{n}"), n)))
        .collect()
}

/// Produces `(partition, key, value)` records, each to its given partition.
async fn produce_to(brokers: &str, topic: &str, records: &[(i32, String, Vec<u8>)]) {
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    for (partition, key, value) in records {
        p.send(
            FutureRecord::to(topic)
                .partition(*partition)
                .key(key)
                .payload(value),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)
        .unwrap();
    }
}

async fn wait_until(metrics: &Metrics, done: u64, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let n = Metrics::total(&metrics.events_produced) + Metrics::total(&metrics.dead_lettered);
        if n >= done {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_record_is_dead_lettered_as_timeout_and_other_partitions_keep_flowing() {
    let cluster = mock_cluster(2);
    let brokers = cluster.bootstrap_servers();
    // Partition 0: the slow record first, then two good ones; partition 1: five good ones.
    let mut records = vec![(0, "slow".to_string(), slow_article("slow"))];
    records.extend(on_partition_0(0..2));
    records.extend((0..5).map(|n| (1, format!("b{n}"), article(&format!("b{n}"), n))));
    produce_to(&brokers, "in", &records).await;

    let config = mock_config(
        &brokers,
        "slow",
        "[pipeline]\nworkers = 2\nrecord_timeout_ms = 1000",
    );
    // Far longer than the test waits: without the deadline nothing of partition 0 comes out.
    let enricher = Arc::new(SlowOnMarker {
        sleep: Duration::from_secs(60),
    });
    let worker = InProcessWorker::start(&config, enricher);
    let metrics = worker.metrics.clone();
    let finished = wait_until(&metrics, 8, Duration::from_secs(20)).await;
    let summary = worker.stop().await.unwrap();
    assert!(finished, "not every record came out: {summary:?}");
    assert_eq!(summary.produced, 7, "{summary:?}");
    assert_eq!(summary.dead_lettered, 1, "{summary:?}");
    let b = brokers.clone();
    let dead =
        tokio::task::spawn_blocking(move || read_topic(&b, "dlq", 1, Duration::from_secs(10)))
            .await
            .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        header(&dead[0], "newsflow.error.class").as_deref(),
        Some("timeout")
    );
    let b = brokers.clone();
    let (committed, ends) = tokio::task::spawn_blocking(move || {
        (committed(&b, "slow", "in", 2), high_watermarks(&b, "in", 2))
    })
    .await
    .unwrap();
    assert_eq!(
        committed, ends,
        "offsets must be committed past the slow record"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn worker_with_its_budget_used_up_keeps_polling_and_stays_in_its_group() {
    let cluster = mock_cluster(1);
    let brokers = cluster.bootstrap_servers();
    // The slow record holds the only in-flight slot for longer than max.poll.interval.ms.
    let mut records = vec![(0, "slow".to_string(), slow_article("slow"))];
    records.extend(on_partition_0(0..5));
    produce_to(&brokers, "in", &records).await;

    let config = mock_config(
        &brokers,
        "budget",
        "[kafka.consumer_properties]\n\"max.poll.interval.ms\" = \"6500\"\n\
         [pipeline]\nworkers = 2\nmax_in_flight = 1\nrecord_timeout_ms = 30000",
    );
    let enricher = Arc::new(SlowOnMarker {
        sleep: Duration::from_secs(10),
    });
    let worker = InProcessWorker::start(&config, enricher);
    let metrics = worker.metrics.clone();
    // While the slow record is processing, the partition is paused, not abandoned (the
    // mock cluster never answers DescribeConfigs: the start waits 3 s for it).
    let deadline = Instant::now() + Duration::from_secs(12);
    let mut saw_pause = false;
    while Instant::now() < deadline && !saw_pause {
        saw_pause = metrics.backpressure_paused.get() == 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let finished = wait_until(&metrics, 6, Duration::from_secs(30)).await;
    let revokes = metrics.rebalances.with_label_values(&["revoke"]).get();
    let summary = worker.stop().await.unwrap();
    assert_eq!(
        revokes, 0,
        "the worker stopped polling and was thrown out of its group"
    );
    assert!(saw_pause, "the partition was never paused");
    assert!(finished, "not every record came out: {summary:?}");
    assert_eq!(summary.produced, 6, "{summary:?}");
    let b = brokers.clone();
    let events =
        tokio::task::spawn_blocking(move || read_topic(&b, "out", 6, Duration::from_secs(10)))
            .await
            .unwrap();
    let order: Vec<i64> = events
        .iter()
        .map(|m| {
            let v: serde_json::Value =
                serde_json::from_slice(rdkafka::Message::payload(m).unwrap()).unwrap();
            v["provenance"]["offset"].as_i64().unwrap()
        })
        .collect();
    assert_eq!(
        order,
        vec![0, 1, 2, 3, 4, 5],
        "events must keep input order"
    );
    let b = brokers.clone();
    let committed = tokio::task::spawn_blocking(move || committed(&b, "budget", "in", 1))
        .await
        .unwrap();
    assert_eq!(committed, HashMap::from([(0, 6)]));
}

/// A budget used up for a moment (the lanes settle their records within milliseconds) is
/// waited out without pausing the partitions: every pause made librdkafka drop its prefetched
/// records and refetch them ~0.5 s later, which capped throughput at `max_in_flight` records
/// per half second.
#[tokio::test(flavor = "multi_thread")]
async fn a_budget_used_up_for_a_moment_does_not_pause_the_partitions() {
    let cluster = mock_cluster(1);
    let brokers = cluster.bootstrap_servers();
    let records: Vec<_> = on_partition_0(0..60);
    produce_to(&brokers, "in", &records).await;
    let config = mock_config(&brokers, "brief-budget", "[pipeline]\nmax_in_flight = 2");
    let worker = InProcessWorker::start(&config, Arc::new(BaselineEnricher));
    let metrics = worker.metrics.clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut pauses_seen = 0;
    while Instant::now() < deadline && Metrics::total(&metrics.events_produced) < 60 {
        pauses_seen += metrics.backpressure_paused.get();
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let summary = worker.stop().await.unwrap();
    assert_eq!(summary.produced, 60, "{summary:?}");
    assert_eq!(
        pauses_seen, 0,
        "the partition was paused for a brief shortage"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn worker_refuses_to_start_when_the_dead_letter_or_output_topic_is_missing() {
    for (missing, present) in [("dlq", ["in", "out"]), ("out", ["in", "dlq"])] {
        let cluster = MockCluster::new(1).unwrap();
        for topic in present {
            cluster.create_topic(topic, 1, 1).unwrap();
        }
        let brokers = cluster.bootstrap_servers();
        let config = mock_config(&brokers, "missing", "");
        let app = App::without_server().unwrap();
        let started = Instant::now();
        let result = tokio::time::timeout(
            Duration::from_secs(30),
            app.run(
                config.clone(),
                RunOptions::live(&config),
                Some(Arc::new(BaselineEnricher)),
                CancellationToken::new(),
            ),
        )
        .await
        .expect("the worker must not wait for a missing topic");
        let err = result
            .expect_err("the worker must refuse to start")
            .to_string();
        assert!(
            err.contains(&format!("topic `{missing}` does not exist")),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(15));
    }
}

/// A poison record whose dead-letter record the broker refuses, full and bare (injected
/// INVALID_RECORD answers to Produce), cannot be committed past: that must be loud — counted,
/// and readiness fails naming the record — while later records still come out.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_dead_letter_record_is_loud_not_a_silent_freeze() {
    let cluster = mock_cluster(1);
    let brokers = cluster.bootstrap_servers();
    produce_to(
        &brokers,
        "in",
        &[(0, "p".into(), b"\xff\xfe not json".to_vec())],
    )
    .await;
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_INVALID_RECORD; 2],
    );
    let mut config = mock_config(&brokers, "refused-dlq", "");
    config.kafka.statistics_interval_ms = 200;
    let worker = InProcessWorker::start(&config, Arc::new(BaselineEnricher));
    let refused = || {
        worker
            .metrics
            .processing_errors
            .with_label_values(&["dead_letter_refused"])
            .get()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while refused() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(refused(), 1, "the refusal must be counted");
    let stuck = worker
        .health
        .stuck()
        .expect("readiness must name the stuck record");
    assert!(stuck.contains("in/0/0"), "{stuck}");
    assert!(!worker.health.is_ready());
    // Later records still come out.
    let good: Vec<_> = (0..3)
        .map(|n| (0, format!("g{n}"), article(&format!("g{n}"), n)))
        .collect();
    produce_to(&brokers, "in", &good).await;
    assert!(wait_until(&worker.metrics, 3, Duration::from_secs(20)).await);
    let summary = worker.stop().await.unwrap();
    assert_eq!(summary.produced, 3, "{summary:?}");
    let b = brokers.clone();
    let committed = tokio::task::spawn_blocking(move || committed(&b, "refused-dlq", "in", 1))
        .await
        .unwrap();
    assert!(
        committed.get(&0).is_none_or(|&o| o <= 0),
        "nothing may be committed past the refused record: {committed:?}"
    );
}

/// A delivery that fails transiently (here: the first Produce answered with
/// TOPIC_AUTHORIZATION_FAILED, as during an ACL change) is retried without reordering the
/// key: every later record of its partition is sent again after it, so the last event out
/// for each key is its last version in.
#[tokio::test(flavor = "multi_thread")]
async fn a_retried_delivery_keeps_the_last_version_of_each_key_last() {
    let cluster = mock_cluster(1);
    let brokers = cluster.bootstrap_servers();
    // Versions 0..12 of three keys, in order, one input partition.
    let records: Vec<_> = (0..12)
        .map(|v| {
            let key = format!("k{}", v % 3);
            let body = serde_json::json!({"id": key, "title": format!("version {v}"), "body": format!("Version {v} of the story.")});
            (0, key, body.to_string().into_bytes())
        })
        .collect();
    produce_to(&brokers, "in", &records).await;
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED],
    );
    // One record per produce request, so the refused one is followed by accepted ones.
    let config = mock_config(
        &brokers,
        "retry-order",
        "[pipeline]\nretry_backoff_initial_ms = 300\n\
         [kafka.producer_properties]\n\"linger.ms\" = \"0\"\n\"batch.num.messages\" = \"1\"",
    );
    let worker = InProcessWorker::start(&config, Arc::new(BaselineEnricher));
    assert!(wait_until(&worker.metrics, 12, Duration::from_secs(30)).await);
    let summary = worker.stop().await.unwrap();
    assert_eq!(summary.dead_lettered, 0, "{summary:?}");
    let events = read_all(&brokers, "out").await;
    let mut last: HashMap<String, String> = HashMap::new();
    for m in &events {
        let event: serde_json::Value =
            serde_json::from_slice(rdkafka::Message::payload(m).unwrap()).unwrap();
        let key = String::from_utf8_lossy(rdkafka::Message::key(m).unwrap()).into_owned();
        last.insert(key, event["title"].as_str().unwrap_or_default().to_string());
    }
    for (key, version) in [("k0", 9), ("k1", 10), ("k2", 11)] {
        assert_eq!(
            last.get(key).map(String::as_str),
            Some(format!("version {version}").as_str()),
            "last event of {key} out of {} events",
            events.len()
        );
    }
}

/// An event the producer refuses before sending (larger than its `message.max.bytes`) is
/// dead-lettered as `output_rejected` — in the bare form when the full one (carrying the
/// input) is refused too — and its partition moves on.
#[tokio::test(flavor = "multi_thread")]
async fn an_event_refused_at_enqueue_is_dead_lettered_and_its_partition_moves_on() {
    let cluster = mock_cluster(1);
    let brokers = cluster.bootstrap_servers();
    let body = "The talks in Oslo were described as constructive. ".repeat(30);
    let input = serde_json::json!({"id": "a0", "title": "Talks in Oslo", "body": body});
    produce_to(
        &brokers,
        "in",
        &[(0, "a0".into(), input.to_string().into_bytes())],
    )
    .await;
    // Smaller than the event and than the input (so the full dead-letter record is refused
    // too), larger than the bare one.
    let config = mock_config(
        &brokers,
        "refused-event",
        "[kafka.producer_properties]\n\"message.max.bytes\" = \"1000\"",
    );
    let worker = InProcessWorker::start(&config, Arc::new(BaselineEnricher));
    assert!(wait_until(&worker.metrics, 1, Duration::from_secs(20)).await);
    let rejected = worker
        .metrics
        .dead_lettered
        .with_label_values(&["output_rejected"])
        .get();
    let summary = worker.stop().await.unwrap();
    assert_eq!(rejected, 1, "{summary:?}");
    assert_eq!(summary.produced, 0, "{summary:?}");
    let dead = read_all(&brokers, "dlq").await;
    assert_eq!(dead.len(), 1);
    assert_eq!(
        header(&dead[0], "newsflow.error.class").as_deref(),
        Some("output_rejected")
    );
    assert!(
        rdkafka::Message::payload(&dead[0]).is_none_or(<[u8]>::is_empty),
        "the bare form carries no payload"
    );
    let b = brokers.clone();
    let committed = tokio::task::spawn_blocking(move || committed(&b, "refused-event", "in", 1))
        .await
        .unwrap();
    assert_eq!(committed.get(&0), Some(&1), "the partition moves on");
}

/// The lag gauges are there from the first statistics after assignment, even while the
/// partition's first record is still being processed (nothing stored, nothing committed):
/// an alert on `newsflow_consumer_lag_messages` sees a worker stuck from its start.
#[tokio::test(flavor = "multi_thread")]
async fn lag_is_reported_before_the_first_record_finishes() {
    let cluster = mock_cluster(1);
    let brokers = cluster.bootstrap_servers();
    let mut records = vec![(0, "s".to_string(), slow_article("s"))];
    records.extend(on_partition_0(0..4));
    produce_to(&brokers, "in", &records).await;
    let mut config = mock_config(&brokers, "lag-from-start", "");
    config.kafka.statistics_interval_ms = 200;
    config.pipeline.record_timeout_ms = 60_000;
    let enricher = SlowOnMarker {
        sleep: Duration::from_secs(8),
    };
    let worker = InProcessWorker::start(&config, Arc::new(enricher));
    // Read from what the registry exports: looking the series up by label would create it.
    let lag = || {
        worker
            .metrics
            .registry
            .gather()
            .iter()
            .filter(|f| f.name() == "newsflow_consumer_lag_messages")
            .flat_map(|f| f.get_metric().iter())
            .find(|m| {
                m.get_label()
                    .iter()
                    .any(|l| l.name() == "partition" && l.value() == "0")
            })
            .map(|m| m.get_gauge().value())
    };
    // The mock cluster never answers DescribeConfigs: the start waits 3 s for it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while lag().is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        lag(),
        Some(5.0),
        "five records unfinished, none stored or committed"
    );
    worker.stop().await.unwrap();
}

/// librdkafka reports every failed reconnect during a broker outage as a consume error and
/// recovers by itself. The worker used to sleep a growing back-off (up to 10 s) on each of
/// them, so after the broker came back it slept out the queued errors one by one before
/// reading again (a chaos run saw a worker idle for minutes after a broker restart).
#[tokio::test(flavor = "multi_thread")]
async fn records_flow_again_soon_after_a_broker_outage() {
    let cluster = mock_cluster(1);
    let brokers = cluster.bootstrap_servers();
    let first: Vec<_> = on_partition_0(0..3);
    produce_to(&brokers, "in", &first).await;
    let config = mock_config(&brokers, "outage", "");
    let worker = InProcessWorker::start(&config, Arc::new(BaselineEnricher));
    assert!(wait_until(&worker.metrics, 3, Duration::from_secs(20)).await);
    cluster.broker_down(1).unwrap();
    tokio::time::sleep(Duration::from_secs(20)).await;
    cluster.broker_up(1).unwrap();
    let back = Instant::now();
    let later: Vec<_> = on_partition_0(3..6);
    produce_to(&brokers, "in", &later).await;
    // librdkafka's own reconnect back-off is at most 10 s (reconnect.backoff.max.ms).
    let flowed = wait_until(&worker.metrics, 6, Duration::from_secs(20)).await;
    let took = back.elapsed();
    let errors = worker
        .metrics
        .processing_errors
        .with_label_values(&["consume"])
        .get();
    let summary = worker.stop().await.unwrap();
    assert!(
        flowed,
        "records did not flow within {took:?} of the broker's return ({errors} consume errors): {summary:?}"
    );
}
