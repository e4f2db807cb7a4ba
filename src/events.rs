//! Operational events: each log line and the counter that goes with it, emitted together by
//! one method, so the two never drift and every metric update has one home (the way
//! Vector's `internal_events` pair them).

use std::fmt::Display;
use std::time::Duration;

use tracing::{error, info, warn};

use crate::health::Health;
use crate::metrics::Metrics;
use crate::offsets::TopicPartition;
use crate::pipeline::RejectReason;

/// Polling the consumer reported an error; librdkafka recovers by itself, the read task
/// polls on.
pub struct ConsumeFailed<'a, E: Display> {
    pub error: &'a E,
}

impl<E: Display> ConsumeFailed<'_, E> {
    pub fn emit(&self, metrics: &Metrics) {
        metrics
            .processing_errors
            .with_label_values(&["consume"])
            .inc();
        warn!(error = %self.error, "Consume failed; librdkafka retries");
    }
}

/// Handing a record to the producer, or its delivery, failed transiently; retried.
pub struct ProduceFailed<'a, E: Display> {
    pub topic: &'a str,
    pub error: &'a E,
    /// Retry number and wait for a failed delivery; `None` for a refused enqueue.
    pub retry: Option<(u32, Duration)>,
}

impl<E: Display> ProduceFailed<'_, E> {
    pub fn emit(&self, metrics: &Metrics) {
        metrics
            .processing_errors
            .with_label_values(&["produce"])
            .inc();
        match self.retry {
            None => warn!(topic = %self.topic, error = %self.error, "Enqueue failed; retrying"),
            Some((attempt, delay)) => warn!(
                topic = %self.topic,
                error = %self.error,
                attempt,
                retry_in_ms = delay.as_millis() as u64,
                "Delivery failed; retrying"
            ),
        }
    }
}

/// Why offsets were being committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitCause {
    /// The worker stopping (shutdown or the end of a replay).
    Stop,
    /// Partitions being revoked in a rebalance.
    Revoke,
    /// The periodic transaction commit of exactly-once mode.
    Interval,
}

/// A synchronous commit finished, or failed (the records are redelivered, never skipped).
pub struct Committed<'a, E: Display> {
    pub cause: CommitCause,
    pub partitions: usize,
    pub result: Result<(), &'a E>,
}

impl<E: Display> Committed<'_, E> {
    pub fn emit(&self, metrics: &Metrics) {
        match (self.result, self.cause) {
            (Ok(()), CommitCause::Stop) => info!(partitions = self.partitions, "Committed offsets"),
            (Ok(()), CommitCause::Revoke) => {
                info!(partitions = self.partitions, "Committed revoked partitions")
            }
            (Ok(()), CommitCause::Interval) => {}
            (Err(e), cause) => {
                metrics
                    .processing_errors
                    .with_label_values(&["commit"])
                    .inc();
                match cause {
                    CommitCause::Stop => {
                        warn!(error = %e, "Final commit failed; records may be redelivered")
                    }
                    CommitCause::Revoke => {
                        warn!(error = %e, "Commit on revoke failed; records may be redelivered")
                    }
                    CommitCause::Interval => {
                        warn!(error = %e, "Periodic commit failed; records may be redelivered")
                    }
                }
            }
        }
    }
}

/// A record's dead-letter record was acknowledged by the broker.
pub struct DeadLettered<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub reason: RejectReason,
    pub message: &'a str,
}

impl DeadLettered<'_> {
    pub fn emit(&self, metrics: &Metrics) {
        metrics
            .dead_lettered
            .with_label_values(&[self.reason.as_str()])
            .inc();
        warn!(
            topic = %self.topic,
            partition = self.partition,
            offset = self.offset,
            reason = self.reason.as_str(),
            error = %self.message,
            "Dead-lettered record"
        );
    }
}

/// The broker refused a record's dead-letter record in every form: its partition's commits
/// cannot pass it. Counted, logged with the coordinates, and readiness fails.
pub struct DeadLetterRefused<'a, E: Display> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub error: &'a E,
}

impl<E: Display> DeadLetterRefused<'_, E> {
    pub fn emit(&self, metrics: &Metrics, health: &Health) {
        metrics
            .processing_errors
            .with_label_values(&["dead_letter_refused"])
            .inc();
        error!(
            topic = %self.topic,
            partition = self.partition,
            offset = self.offset,
            error = %self.error,
            "The broker refused the dead-letter record, full and bare; this partition's \
             commits stop at this record until the dead-letter topic accepts it (restart to retry)"
        );
        health.set_stuck(format!(
            "dead-letter record refused for {}/{}/{}",
            self.topic, self.partition, self.offset
        ));
    }
}

/// A rebalance assigned or revoked partitions.
pub enum Rebalanced {
    Assigned,
    Revoked,
}

impl Rebalanced {
    pub fn emit(&self, metrics: &Metrics, partitions: &[TopicPartition]) {
        let event = match self {
            Rebalanced::Assigned => "assign",
            Rebalanced::Revoked => "revoke",
        };
        metrics.rebalances.with_label_values(&[event]).inc();
        match self {
            Rebalanced::Assigned => info!(?partitions, "Partitions assigned"),
            Rebalanced::Revoked => info!(?partitions, "Partitions revoked"),
        }
    }
}
