//! Fast tests against librdkafka's in-process mock cluster (no broker needed): static
//! membership, which the test broker (Tansu 0.6.0) does not support.

use std::sync::Arc;
use std::time::{Duration, Instant};

use newsflow::enrich::baseline::BaselineEnricher;
use newsflow::metrics::Metrics;
use rdkafka::mocking::MockCluster;

use crate::helpers::{InProcessWorker, articles, mock_config, produce, read_topic};

#[tokio::test(flavor = "multi_thread")]
async fn static_membership_worker_processes_everything_and_commits() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic("in", 2, 1).unwrap();
    cluster.create_topic("out", 2, 1).unwrap();
    cluster.create_topic("dlq", 1, 1).unwrap();
    let brokers = cluster.bootstrap_servers();
    let records = articles("s", 0..40);
    produce(&brokers, "in", &records).await;

    let mut config = mock_config(&brokers, "static", "");
    config.kafka.group_instance_id = Some("newsflow-0".into());
    let worker = InProcessWorker::start(&config, Arc::new(BaselineEnricher));
    let metrics = worker.metrics.clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Metrics::total(&metrics.events_produced) < 40 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let summary = worker.stop().await.unwrap();
    assert_eq!(summary.produced, 40);
    assert_eq!(summary.unfinished, 0);
    let b = brokers.clone();
    let events =
        tokio::task::spawn_blocking(move || read_topic(&b, "out", 40, Duration::from_secs(10)))
            .await
            .unwrap();
    assert_eq!(events.len(), 40);
}
