//! Fast tests against librdkafka's in-process mock cluster (no broker needed): static
//! membership, which the test broker (Tansu 0.6.0) does not support.

use std::sync::Arc;
use std::time::{Duration, Instant};

use newsflow::enrich::baseline::BaselineEnricher;
use newsflow::metrics::Metrics;

use crate::helpers::{InProcessWorker, articles, mock_cluster, mock_config, produce, read_topic};

#[tokio::test(flavor = "multi_thread")]
async fn static_membership_worker_processes_everything_and_commits() {
    let cluster = mock_cluster(2);
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

/// A group member left without partitions (here: two members, one partition) turns
/// `/readyz` red after `kafka.unassigned_timeout_ms`, and green again once it gets one.
#[tokio::test(flavor = "multi_thread")]
async fn a_member_without_partitions_is_not_ready_until_it_gets_one() {
    let cluster = mock_cluster(1);
    let brokers = cluster.bootstrap_servers();
    let mut config = mock_config(&brokers, "unassigned", "");
    config.kafka.statistics_interval_ms = 200;
    config.kafka.unassigned_timeout_ms = 2000;
    let a = InProcessWorker::start(&config, Arc::new(BaselineEnricher));
    let b = InProcessWorker::start(&config, Arc::new(BaselineEnricher));
    let split = |a: &InProcessWorker, b: &InProcessWorker| {
        let (na, nb) = (
            a.metrics.assigned_partitions.get(),
            b.metrics.assigned_partitions.get(),
        );
        match (na, nb) {
            (1, 0) => Some(true),
            (0, 1) => Some(false),
            _ => None,
        }
    };
    // Past the timeout with the single partition settled on one member.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut settled = None;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Some(a_holds) = split(&a, &b) {
            tokio::time::sleep(Duration::from_millis(2500)).await;
            if split(&a, &b) == Some(a_holds) {
                settled = Some(a_holds);
                break;
            }
        }
    }
    let a_holds = settled.expect("the partition never settled on one member");
    let (holder, idle) = if a_holds { (a, b) } else { (b, a) };
    assert!(
        holder.health.is_ready(),
        "the member with the partition is ready"
    );
    assert!(
        !idle.health.is_ready(),
        "a member without partitions past the timeout must not be ready"
    );
    // The holder leaves: the idle member takes the partition and turns ready.
    holder.stop().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline && !idle.health.is_ready() {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(idle.health.is_ready(), "ready again once assigned");
    assert_eq!(idle.metrics.assigned_partitions.get(), 1);
    idle.stop().await.unwrap();
}
