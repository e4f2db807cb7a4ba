//! Fast tests against librdkafka's in-process mock cluster (no broker needed): static
//! membership, which the test broker (Tansu 0.6.0) does not support.

use std::sync::Arc;
use std::time::{Duration, Instant};

use newsflow::app::App;
use newsflow::config::Config;
use newsflow::enrich::baseline::BaselineEnricher;
use newsflow::metrics::Metrics;
use newsflow::worker::RunOptions;
use rdkafka::mocking::MockCluster;
use tokio_util::sync::CancellationToken;

use crate::helpers::{articles, produce, read_topic};

#[tokio::test(flavor = "multi_thread")]
async fn static_membership_worker_processes_everything_and_commits() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic("in", 2, 1).unwrap();
    cluster.create_topic("out", 2, 1).unwrap();
    cluster.create_topic("dlq", 1, 1).unwrap();
    let brokers = cluster.bootstrap_servers();
    let records = articles("s", 0..40);
    produce(&brokers, "in", &records).await;

    let config = Config::from_toml_str(
        &format!(
            r#"
            [kafka]
            bootstrap_servers = "{brokers}"
            group_id = "static"
            group_instance_id = "newsflow-0"
            session_timeout_ms = 6000
            [topics]
            input = "in"
            output = "out"
            dead_letter = "dlq"
            [shutdown]
            drain_timeout_ms = 3000
            "#
        ),
        "test",
        Vec::new(),
    )
    .unwrap();
    let app = App::without_server().unwrap();
    let metrics = app.metrics.clone();
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(app.run(
        config.clone(),
        RunOptions::live(&config),
        Some(Arc::new(BaselineEnricher)),
        shutdown.clone(),
    ));
    let deadline = Instant::now() + Duration::from_secs(30);
    while Metrics::total(&metrics.events_produced) < 40 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shutdown.cancel();
    let summary = run.await.unwrap().unwrap();
    assert_eq!(summary.produced, 40);
    assert_eq!(summary.unfinished, 0);
    let b = brokers.clone();
    let events =
        tokio::task::spawn_blocking(move || read_topic(&b, "out", 40, Duration::from_secs(10)))
            .await
            .unwrap();
    assert_eq!(events.len(), 40);
}
