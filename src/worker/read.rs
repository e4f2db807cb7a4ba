//! The read task: consume, register the offset, hand the record to the enrichment pool.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use rdkafka::consumer::Consumer as _;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::topic_partition_list::TopicPartitionList;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::bounded::{drop_finished_partitions, set_remaining};
use super::{Job, Processed, ProcessedEvent, Shared, Slot, Subscription};
use crate::enrich::EntityType;
use crate::event::{Provenance, rfc3339};
use crate::pipeline::{Processor, Rejection};
use crate::source::InputRecord;

/// The read task. Returns the number of records read.
pub(super) async fn read_task(
    shared: &Arc<Shared>,
    pool: &rayon::ThreadPool,
    processor: &Processor,
    order_tx: mpsc::Sender<Job>,
    permits: Arc<Semaphore>,
    shutdown: &CancellationToken,
) -> u64 {
    let mut consumed = 0u64;
    let mut errors = 0u32;
    let mut remaining: Option<HashMap<(String, i32), i64>> = match &shared.options.subscription {
        Subscription::Group => None,
        Subscription::Bounded { ends, .. } => Some(ends.clone()),
    };
    let rate_started = Instant::now();
    loop {
        if remaining.as_ref().is_some_and(|ends| ends.is_empty()) {
            info!("Every partition reached its end offset");
            break;
        }
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let message = tokio::select! {
            _ = shutdown.cancelled() => break,
            m = shared.consumer.recv() => m,
        };
        let message = match message {
            Ok(m) => m.detach(),
            Err(KafkaError::PartitionEOF(partition)) => {
                if let Some(ends) = remaining.as_mut() {
                    drop_finished_partitions(&shared.consumer, partition, ends, &shared.metrics);
                }
                continue;
            }
            Err(e) => {
                shared
                    .metrics
                    .processing_errors
                    .with_label_values(&["consume"])
                    .inc();
                let delay = Duration::from_millis(shared.config.pipeline.retry_backoff_initial_ms)
                    .saturating_mul(1 << errors.min(6));
                errors = errors.saturating_add(1);
                warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "Consume failed; retrying");
                tokio::select! { _ = shutdown.cancelled() => break, _ = tokio::time::sleep(delay) => {} }
                continue;
            }
        };
        errors = 0;
        if let Some(ends) = remaining.as_mut() {
            let tp = (message.topic().to_string(), message.partition());
            match ends.get(&tp) {
                Some(&end) if message.offset() < end => {
                    set_remaining(&shared.metrics, &tp, end - message.offset() - 1);
                    if message.offset() + 1 >= end {
                        ends.remove(&tp);
                    }
                }
                _ => {
                    // Past the end (or not part of the plan): stop reading this partition.
                    if ends.remove(&tp).is_some() {
                        set_remaining(&shared.metrics, &tp, 0);
                    }
                    let mut tpl = TopicPartitionList::new();
                    let _ = tpl.add_partition(&tp.0, tp.1);
                    let _ = shared.consumer.pause(&tpl);
                    continue;
                }
            }
        }
        let input = Arc::new(InputRecord::from_message(&message));
        consumed += 1;
        shared
            .metrics
            .messages_consumed
            .with_label_values(&[&input.topic])
            .inc();
        shared.tracker.lock().begin(
            &input.topic,
            input.partition,
            input.offset,
            input.timestamp_ms,
        );
        let (tx, rx) = oneshot::channel();
        let job_input = input.clone();
        let job_processor = processor.clone();
        pool.spawn(move || {
            let _ = tx.send(process(&job_processor, &job_input));
        });
        if order_tx
            .send(Job {
                input,
                result: rx,
                slot: Slot::new(permit, &shared.metrics.inflight),
            })
            .await
            .is_err()
        {
            error!("Order task stopped unexpectedly");
            break;
        }
        if let Some(rate) = shared.options.rate_limit {
            let due = Duration::from_secs_f64(consumed as f64 / rate);
            let elapsed = rate_started.elapsed();
            if due > elapsed {
                tokio::select! { _ = shutdown.cancelled() => break, _ = tokio::time::sleep(due - elapsed) => {} }
            }
        }
    }
    consumed
}

/// Runs on the pool: the pure pipeline, then serialization.
fn process(processor: &Processor, input: &InputRecord) -> Processed {
    let provenance = Provenance {
        topic: input.topic.clone(),
        partition: input.partition,
        offset: input.offset,
        timestamp: input
            .timestamp_ms
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
            .map(rfc3339),
    };
    let (result, timings) = processor.process(&input.value, provenance, Utc::now());
    let outcome = result.and_then(|event| {
        let mut counts: HashMap<EntityType, u64> = HashMap::new();
        for e in &event.entities {
            *counts.entry(e.kind).or_default() += 1;
        }
        let json = serde_json::to_vec(&event).map_err(|e| Rejection {
            reason: "internal",
            message: format!("cannot serialize event: {e}"),
        })?;
        Ok(ProcessedEvent {
            key: event.article_id.clone(),
            event_id: event.event_id.clone(),
            json,
            entity_counts: counts.into_iter().collect(),
            sentiment: f64::from(event.sentiment.score),
        })
    });
    Processed { outcome, timings }
}
