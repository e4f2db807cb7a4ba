//! Exactly-once mode (`delivery.guarantee = "exactly-once"`) on librdkafka's mock cluster,
//! which runs the transactional protocol (InitProducerId, AddPartitionsToTxn,
//! TxnOffsetCommit, EndTxn) with two gaps (librdkafka 2.12.1's `rdkafka_mock_handlers.c`):
//! its `read_committed` readers see aborted records, and TxnOffsetCommit answers without
//! storing the offsets, so the group's committed offsets never move through a transaction.
//! These tests therefore check the positions each committed transaction carried (the
//! `newsflow_transaction_committed_offset` gauge), that nothing is committed outside the
//! transactions (the group's offsets stay unset), what the worker reads again after an
//! abort, and how it ends. The real broker the suite installs (Tansu 0.6.0) has no
//! transactions: the last test checks that the worker refuses to start on it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use newsflow::app::App;
use newsflow::config::Config;
use newsflow::enrich::baseline::BaselineEnricher;
use newsflow::metrics::Metrics;
use newsflow::worker::RunOptions;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use tokio_util::sync::CancellationToken;

use crate::helpers::{
    InProcessWorker, Topics, WorkerProcess, articles, brokers, committed, create_topics,
    high_watermarks, mock_cluster, mock_config, produce, read_all, unique,
};

/// The mock cluster's worker config in exactly-once mode.
fn eos_config(brokers: &str, group: &str) -> Config {
    mock_config(
        brokers,
        group,
        "[pipeline]\nenricher = \"baseline\"\nworkers = 2\n\
         [delivery]\nguarantee = \"exactly-once\"\ntransaction_timeout_ms = 10000",
    )
}

/// Produces `n` keyed articles spread over the partitions of `in`.
async fn produce_inputs(brokers: &str, prefix: &str, n: usize) {
    produce(brokers, "in", &articles(prefix, 0..n)).await;
}

async fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn offsets(
    brokers: &str,
    group: &str,
    partitions: i32,
) -> (HashMap<i32, i64>, HashMap<i32, i64>) {
    let (b, g) = (brokers.to_string(), group.to_string());
    tokio::task::spawn_blocking(move || {
        (
            committed(&b, &g, "in", partitions),
            high_watermarks(&b, "in", partitions),
        )
    })
    .await
    .unwrap()
}

fn committed_transactions(m: &Metrics) -> u64 {
    m.transactions.with_label_values(&["committed"]).get()
}

/// The input positions the worker's committed transactions carried, per partition of `in`.
fn transaction_positions(m: &Metrics, partitions: i32) -> HashMap<i32, i64> {
    (0..partitions)
        .filter_map(|p| {
            let g = m
                .transaction_committed_offset
                .get_metric_with_label_values(&["in", &p.to_string()])
                .ok()?;
            Some((p, g.get()))
        })
        .collect()
}

/// Waits until the committed transactions carried exactly the end offsets of `in`.
async fn wait_for_transaction_positions(m: &Metrics, ends: &HashMap<i32, i64>, partitions: i32) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut got = transaction_positions(m, partitions);
    while &got != ends && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        got = transaction_positions(m, partitions);
    }
    assert_eq!(
        &got, ends,
        "the transactions must carry the produced positions"
    );
}

/// Nothing was committed outside the transactions: the mock stores no transactional
/// offsets, so any committed offset came from the consumer itself.
fn assert_no_consumer_commits(group_offsets: &HashMap<i32, i64>) {
    assert!(
        group_offsets.values().all(|&o| o < 0),
        "offsets were committed outside a transaction: {group_offsets:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_committed_transaction_moves_the_group_to_exactly_the_produced_positions() {
    let cluster = mock_cluster(3);
    let brokers = cluster.bootstrap_servers();
    produce_inputs(&brokers, "a", 30).await;
    let config = eos_config(&brokers, "eos-commit");
    let worker = InProcessWorker::start(&config, Arc::new(BaselineEnricher));
    let metrics = worker.metrics.clone();
    wait_for("30 events", Duration::from_secs(30), || {
        Metrics::total(&metrics.events_produced) >= 30
    })
    .await;
    let (_, ends) = offsets(&brokers, "eos-commit", 3).await;
    wait_for_transaction_positions(&metrics, &ends, 3).await;
    assert!(committed_transactions(&metrics) >= 1);
    assert_eq!(
        metrics.transactions.with_label_values(&["aborted"]).get(),
        0
    );
    // Longer than the consumer's auto-commit interval (1 s).
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_no_consumer_commits(&offsets(&brokers, "eos-commit", 3).await.0);
    let summary = worker.stop().await.unwrap();
    assert_eq!(summary.produced, 30, "{summary:?}");
    assert_eq!(summary.consumed, 30, "{summary:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_abortable_error_aborts_rewinds_and_redoes_the_work() {
    let cluster = mock_cluster(2);
    let brokers = cluster.bootstrap_servers();
    produce_inputs(&brokers, "b", 20).await;
    // The first produce requests are refused (no permission on the topic): librdkafka fails
    // those records, so the transaction must be aborted and its input read again.
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED; 3],
    );
    let config = eos_config(&brokers, "eos-abort");
    let worker = InProcessWorker::start(&config, Arc::new(BaselineEnricher));
    let metrics = worker.metrics.clone();
    wait_for("an aborted transaction", Duration::from_secs(30), || {
        metrics.transactions.with_label_values(&["aborted"]).get() >= 1
    })
    .await;
    let (group_offsets, ends) = offsets(&brokers, "eos-abort", 2).await;
    wait_for_transaction_positions(&metrics, &ends, 2).await;
    assert_no_consumer_commits(&group_offsets);
    let summary = worker.stop().await.unwrap();
    assert!(
        summary.consumed > 20,
        "the aborted work must be read again: {summary:?}"
    );
    assert_eq!(summary.dead_lettered, 0, "{summary:?}");
    // Events of the aborted transaction do not count as produced; their redo does, once.
    assert_eq!(summary.produced, 20, "{summary:?}");
    // Every input has an event (the mock shows aborted ones too, so at least one each).
    let events = read_all(&brokers, "out").await;
    let keys: HashSet<String> = events
        .iter()
        .filter_map(|m| rdkafka::Message::key(m).map(|k| String::from_utf8_lossy(k).into_owned()))
        .collect();
    assert_eq!(keys.len(), 20, "one key per input article");
}

/// A record the broker refuses for good (INVALID_RECORD) fails its transaction, which must
/// abort; redone, the same record would be refused again, forever. The worker remembers it:
/// the redo dead-letters it instead, the partition moves on, and the aborts stop.
#[tokio::test(flavor = "multi_thread")]
async fn a_record_refused_inside_a_transaction_is_dead_lettered_on_the_redo() {
    let cluster = mock_cluster(1);
    let brokers = cluster.bootstrap_servers();
    produce_inputs(&brokers, "r", 1).await;
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_INVALID_RECORD; 1],
    );
    let config = eos_config(&brokers, "eos-refused");
    let worker = InProcessWorker::start(&config, Arc::new(BaselineEnricher));
    let metrics = worker.metrics.clone();
    let (_, ends) = offsets(&brokers, "eos-refused", 1).await;
    wait_for_transaction_positions(&metrics, &ends, 1).await;
    let aborted = metrics.transactions.with_label_values(&["aborted"]).get();
    let summary = worker.stop().await.unwrap();
    assert_eq!(summary.dead_lettered, 1, "{summary:?}");
    assert_eq!(summary.produced, 0, "{summary:?}");
    assert_eq!(
        aborted, 1,
        "one abort, then the redo dead-letters the record"
    );
}

/// A producer fenced by a newer one with the same `transactional.id` is a zombie: it must
/// stop, non-zero, without committing. The mock cluster gives every InitProducerId a new
/// producer id instead of bumping the epoch of the one with the same `transactional.id`, so
/// a second worker cannot fence the first there; the broker's answer to a fenced producer
/// (PRODUCER_FENCED on EndTxn) is injected instead.
#[tokio::test(flavor = "multi_thread")]
async fn a_fenced_worker_stops_with_an_error() {
    let cluster = mock_cluster(1);
    let brokers = cluster.bootstrap_servers();
    let config = eos_config(&brokers, "eos-fence");
    let worker = InProcessWorker::start(&config, Arc::new(BaselineEnricher));
    let metrics = worker.metrics.clone();
    let health = worker.health.clone();
    produce_inputs(&brokers, "c", 5).await;
    wait_for("a committed transaction", Duration::from_secs(30), || {
        committed_transactions(&metrics) >= 1
    })
    .await;
    let committed_before = committed_transactions(&metrics);
    cluster.request_errors(
        RDKafkaApiKey::EndTxn,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_PRODUCER_FENCED],
    );
    produce_inputs(&brokers, "c-more", 5).await;
    let result = tokio::time::timeout(Duration::from_secs(30), worker.run)
        .await
        .expect("the fenced worker kept running")
        .unwrap();
    let err = result.expect_err("a fenced worker must fail");
    assert!(err.to_string().contains("stopped after"), "{err:#}");
    assert!(!health.is_live(0), "liveness must fail after a fatal error");
    assert_eq!(
        committed_transactions(&metrics),
        committed_before,
        "a fenced producer commits nothing more"
    );
}

/// A worker killed (SIGKILL) with a transaction open commits nothing of it: the group's
/// offsets stay where they were, and the replacement (same transactional id: it aborts the
/// zombie's transaction) reads that input again and commits it in its own transactions.
/// Fails if offsets are committed outside the transaction (the consumer's own commits would
/// have moved them).
#[tokio::test(flavor = "multi_thread")]
async fn a_worker_killed_mid_transaction_leaves_the_offsets_and_its_replacement_redoes_them() {
    let cluster = mock_cluster(2);
    let brokers = cluster.bootstrap_servers();
    let topics = Topics {
        input: "in".into(),
        output: "out".into(),
        dead_letter: "dlq".into(),
    };
    let group = unique("eos-kill");
    let env = |interval: &'static str| {
        vec![
            ("NEWSFLOW__DELIVERY__GUARANTEE", "exactly-once"),
            ("NEWSFLOW__DELIVERY__TRANSACTION_INTERVAL_MS", interval),
            ("NEWSFLOW__DELIVERY__TRANSACTIONAL_ID", "newsflow-kill-test"),
            ("NEWSFLOW__PIPELINE__ENRICHER", "baseline"),
        ]
    };
    produce_inputs(&brokers, "d", 10).await;
    // Its transaction stays open (30-second interval) until it is killed.
    let mut w = WorkerProcess::start(&brokers, &topics, &group, &env("30000"));
    w.wait_ready(Duration::from_secs(30)).await;
    w.wait_for_metric(
        "newsflow_events_produced_total",
        10.0,
        Duration::from_secs(30),
    )
    .await;
    assert!(w.metric("newsflow_events_produced_total").await >= 10.0);
    // Longer than the consumer's auto-commit interval (1 s): any commit outside the
    // transaction would have happened by now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    w.signal("KILL");
    w.wait_exit(Duration::from_secs(10));
    drop(w);
    let (after_kill, ends) = offsets(&brokers, &group, 2).await;
    assert_no_consumer_commits(&after_kill);

    let w = WorkerProcess::start(&brokers, &topics, &group, &env("100"));
    w.wait_ready(Duration::from_secs(30)).await;
    let total: i64 = ends.values().sum();
    w.wait_for_metric(
        "newsflow_transaction_committed_offset",
        total as f64,
        Duration::from_secs(40),
    )
    .await;
    assert_eq!(
        w.metric("newsflow_transaction_committed_offset").await,
        total as f64,
        "the replacement must commit every input in its transactions"
    );
    assert_eq!(
        w.metric("newsflow_messages_consumed_total").await,
        10.0,
        "the replacement must read exactly the uncommitted input"
    );
}

/// Tansu 0.6.0 (the broker the suite installs) has no transactions: the worker must refuse
/// to start in exactly-once mode, saying why, instead of running without the guarantee.
#[tokio::test(flavor = "multi_thread")]
async fn exactly_once_refuses_to_start_on_a_broker_without_transactions() {
    let Some(brokers) = brokers() else { return };
    let topics = create_topics(&brokers, 1).await;
    let config = Config::from_toml_str(
        &format!(
            r#"
            [kafka]
            bootstrap_servers = "{brokers}"
            group_id = "{group}"
            [topics]
            input = "{input}"
            output = "{output}"
            dead_letter = "{dlq}"
            [pipeline]
            enricher = "baseline"
            [delivery]
            guarantee = "exactly-once"
            transaction_timeout_ms = 10000
            "#,
            group = unique("eos-tansu"),
            input = topics.input,
            output = topics.output,
            dlq = topics.dead_letter,
        ),
        "test",
        Vec::new(),
    )
    .unwrap();
    let app = App::without_server().unwrap();
    let result = tokio::time::timeout(
        Duration::from_secs(60),
        app.run(
            config.clone(),
            RunOptions::live(&config),
            Some(Arc::new(BaselineEnricher)),
            CancellationToken::new(),
        ),
    )
    .await
    .expect("the worker must not hang on a broker without transactions");
    let err = format!("{:#}", result.expect_err("exactly-once must be refused"));
    assert!(err.contains("needs a broker with transactions"), "{err}");
}
