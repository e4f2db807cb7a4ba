//! The order task: results in input order, handed to the producer in that order.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::dead_letter::{self, DeadLetterForm};
use super::refusals::{Next, Refusal};
use super::{Job, Outcome, Pending, Processed, ProcessedEvent, RunOptions, Sent, Shared};
use crate::event::{CONTENT_TYPE, SCHEMA_VERSION};
use crate::pipeline::{RejectReason, Rejection, StageTimings};
use crate::sink::{OutRecord, SinkError};

/// The output record for an event; takes the event so its JSON moves, not copies.
fn event_record(options: &RunOptions, event: ProcessedEvent) -> (OutRecord, Outcome) {
    let mut headers = vec![
        ("content-type".to_string(), CONTENT_TYPE.as_bytes().to_vec()),
        (
            "newsflow.schema.version".to_string(),
            SCHEMA_VERSION.as_bytes().to_vec(),
        ),
        (
            "newsflow.event.id".to_string(),
            event.event_id.as_bytes().to_vec(),
        ),
    ];
    headers.extend(options.extra_headers.iter().cloned());
    let record = OutRecord {
        topic: options.output_topic.clone(),
        key: Some(event.key.into_bytes()),
        payload: event.json,
        headers,
    };
    let outcome = Outcome::Event {
        entity_counts: event.entity_counts,
        sentiment: event.sentiment,
    };
    (record, outcome)
}

/// The order task: routes each record to its partition's lane. Lanes run concurrently, so
/// a slow record holds back only the later records of its own partition.
pub(super) async fn order_task(shared: Arc<Shared>, mut rx: mpsc::Receiver<Job>) {
    // Lane queues need no bound of their own: every job in them holds a share of the
    // in-flight budget, which bounds them all together.
    // Topic, then partition: a record's lane is found without allocating its key.
    let mut lanes: HashMap<String, HashMap<i32, mpsc::UnboundedSender<Job>>> = HashMap::new();
    let mut tasks = JoinSet::new();
    while let Some(job) = rx.recv().await {
        if !lanes.contains_key(job.input.topic.as_str()) {
            lanes.insert(job.input.topic.clone(), HashMap::new());
        }
        let Some(partitions) = lanes.get_mut(job.input.topic.as_str()) else {
            break; // Inserted just above.
        };
        let lane = partitions.entry(job.input.partition).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tasks.spawn(lane(shared.clone(), rx));
            tx
        });
        if lane.send(job).is_err() {
            break;
        }
    }
    drop(lanes);
    while tasks.join_next().await.is_some() {}
}

/// Waits for a record's result, at most `pipeline.record_timeout_ms` from when a pool thread
/// started on it; past that the record is rejected as `timeout` and its partition moves on
/// (the thread's late result is dropped).
async fn await_result(job: &mut Job, timeout: Duration) -> Processed {
    let failed = |reason: RejectReason, message: String| Processed {
        outcome: Err(Rejection { reason, message }),
        timings: StageTimings::default(),
    };
    let Ok(started) = (&mut job.started).await else {
        return failed(RejectReason::Internal, "processing thread failed".into());
    };
    let deadline = tokio::time::Instant::from_std(started + timeout);
    match tokio::time::timeout_at(deadline, &mut job.result).await {
        Ok(Ok(processed)) => processed,
        Ok(Err(_)) => failed(RejectReason::Internal, "processing thread failed".into()),
        Err(_) => failed(
            RejectReason::Timeout,
            format!(
                "processing took longer than pipeline.record_timeout_ms ({} ms)",
                timeout.as_millis()
            ),
        ),
    }
}

/// One partition's lane: its order side and its ack lane, side by side.
async fn lane(shared: Arc<Shared>, rx: mpsc::UnboundedReceiver<Job>) {
    // Unbounded: every pending record holds a share of the in-flight budget.
    let (ack_tx, ack_rx) = mpsc::unbounded_channel();
    let enqueues = Arc::new(tokio::sync::Mutex::new(()));
    tokio::join!(
        lane_task(shared.clone(), rx, ack_tx, enqueues.clone()),
        super::ack::ack_lane(shared, ack_rx, enqueues),
    );
}

/// One partition's order side: results in input order → producer queue in the same order.
/// Each enqueue and its hand-over to the ack lane happen under `enqueues`, which the ack lane
/// holds while it re-sends after a failure.
async fn lane_task(
    shared: Arc<Shared>,
    mut rx: mpsc::UnboundedReceiver<Job>,
    ack_tx: mpsc::UnboundedSender<Pending>,
    enqueues: Arc<tokio::sync::Mutex<()>>,
) {
    let timeout = Duration::from_millis(shared.config.pipeline.record_timeout_ms);
    loop {
        let mut job = tokio::select! {
            // Past the drain deadline nothing more is queued: it could not be committed.
            _ = shared.hard_stop.cancelled() => return,
            job = rx.recv() => match job { Some(job) => job, None => return },
        };
        let processed = tokio::select! {
            _ = shared.hard_stop.cancelled() => return,
            p = await_result(&mut job, timeout) => p,
        };
        let m = &shared.metrics;
        m.stage_duration
            .with_label_values(&["parse"])
            .observe(processed.timings.parse.as_secs_f64());
        if processed.outcome.is_ok() {
            m.stage_duration
                .with_label_values(&["normalize"])
                .observe(processed.timings.normalize.as_secs_f64());
            m.stage_duration
                .with_label_values(&["enrich"])
                .observe(processed.timings.enrich.as_secs_f64());
        }
        let (record, kind) = match processed.outcome {
            Ok(event) => event_record(&shared.options, event),
            Err(rejection) => (
                dead_letter::for_run(&shared, &job.input, &rejection, DeadLetterForm::Full),
                Outcome::DeadLetter {
                    reason: rejection.reason,
                    message: rejection.message,
                },
            ),
        };
        // Exactly-once mode: a record the broker refused in an aborted pass of this
        // transaction is dead-lettered now (see `refusals`).
        let input = &job.input;
        let (record, kind) = match shared
            .txn
            .as_ref()
            .and_then(|t| t.refusal(&input.topic, input.partition, input.offset))
        {
            None => (record, kind),
            // Loud already (see `ack`): not handed over, so its partition's commits stop
            // at it, as in at-least-once mode.
            Some(Refusal {
                next: Next::Stuck, ..
            }) => continue,
            Some(Refusal {
                reason,
                message,
                next: Next::DeadLetter(form),
            }) => {
                let rejection = Rejection { reason, message };
                let record = dead_letter::for_run(&shared, &job.input, &rejection, form);
                let kind = Outcome::DeadLetter {
                    reason,
                    message: rejection.message,
                };
                (record, kind)
            }
        };
        // Exactly-once mode: no hand-over while a transaction commits.
        let admitted = match &shared.txn {
            Some(txn) => match txn.admit(&shared.hard_stop).await {
                Some(guard) => Some(guard),
                None => return,
            },
            None => None,
        };
        let held = enqueues.lock().await;
        let enqueued_at = Instant::now();
        let sent = match shared.sink.enqueue(&record, &shared.hard_stop).await {
            Ok(d) => Sent::Enqueued(d),
            // Refused for good (e.g. too large): the ack lane dead-letters it, in order.
            Err(SinkError::Rejected(e)) => Sent::Refused(e),
            Err(SinkError::Cancelled(_)) => continue,
            // The worker stops (see `worker::run`); this record stays uncommitted.
            Err(SinkError::Fatal(_)) => return,
            // The transaction failed: it is aborted and this pass of the pipeline rewound.
            Err(SinkError::InTransaction(_)) => {
                if let Some(txn) = &shared.txn {
                    txn.abandon();
                }
                return;
            }
        };
        let ticket = shared.txn.as_ref().map(|txn| txn.ticket());
        drop(admitted);
        let pending = Pending {
            input: job.input,
            record,
            sent,
            kind,
            enqueued_at,
            _slot: job.slot,
            ticket,
        };
        if ack_tx.send(pending).is_err() {
            break;
        }
        drop(held);
    }
}
