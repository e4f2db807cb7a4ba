//! Kafka out: events to the output topic, poison records to the dead-letter topic.
//!
//! Transient failures (queue full, broker down, timeouts) are retried with exponential
//! back-off and never skipped; a record the broker refuses for good (too large, invalid)
//! is reported as [`SinkError::Rejected`] so the caller can dead-letter it instead.

use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use tokio_util::sync::CancellationToken;

use crate::events::ProduceFailed;
use crate::kafka::KafkaContext;
use crate::metrics::Metrics;
use crate::retry::Backoff;

/// Pause before re-trying an enqueue while librdkafka's local queue is full.
const QUEUE_FULL_WAIT: Duration = Duration::from_millis(20);

/// A record ready to produce.
#[derive(Debug, Clone)]
pub struct OutRecord {
    pub topic: String,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
}

/// Why a record was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The broker refuses this record for good; retrying cannot help.
    #[error("broker rejected the record: {0}")]
    Rejected(KafkaError),
    /// Shutdown's hard deadline arrived while retrying a transient failure.
    #[error("gave up at shutdown deadline after: {0}")]
    Cancelled(KafkaError),
    /// The producer hit a fatal error: nothing it is given will be delivered any more.
    #[error("producer failed fatally: {0}")]
    Fatal(KafkaError),
    /// A transactional producer's delivery failed: the transaction aborts and its work is
    /// redone, so the record is not sent again on its own.
    #[error("delivery failed inside a transaction: {0}")]
    InTransaction(KafkaError),
}

fn is_fatal(e: &KafkaError) -> bool {
    matches!(e.rdkafka_error_code(), Some(RDKafkaErrorCode::Fatal))
}

/// Errors that no retry can fix for this record.
fn is_permanent(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidMessageSize
                | RDKafkaErrorCode::InvalidMessage
                | RDKafkaErrorCode::InvalidRecord
                | RDKafkaErrorCode::MessageBatchTooLarge
        )
    )
}

/// How one delivery attempt ended.
#[derive(Debug)]
pub enum Attempt {
    Delivered,
    /// A transient failure: send it again (after a back-off).
    Retry(KafkaError),
    /// Refused for good, fatal, in a failed transaction, or the hard stop.
    Failed(SinkError),
}

/// The producer side of the worker.
#[derive(Clone)]
pub struct Sink {
    producer: FutureProducer<KafkaContext>,
    backoff: Backoff,
    metrics: Metrics,
    /// Exactly-once mode: a failed delivery aborts the transaction instead of a re-send.
    transactional: bool,
}

impl Sink {
    pub fn new(
        producer: FutureProducer<KafkaContext>,
        backoff: Backoff,
        metrics: Metrics,
        transactional: bool,
    ) -> Self {
        Sink {
            producer,
            backoff,
            metrics,
            transactional,
        }
    }

    /// The producer (exactly-once mode drives its transactions).
    pub fn producer(&self) -> &FutureProducer<KafkaContext> {
        &self.producer
    }

    /// Hands one record to librdkafka's queue, waiting while the queue is full. Records
    /// enqueued in order are delivered in order per partition (idempotent producer).
    pub async fn enqueue(
        &self,
        record: &OutRecord,
        hard_stop: &CancellationToken,
    ) -> Result<DeliveryFuture, SinkError> {
        loop {
            let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
            for (k, v) in &record.headers {
                headers = headers.insert(Header {
                    key: k,
                    value: Some(v),
                });
            }
            let mut fr = FutureRecord::<[u8], [u8]>::to(&record.topic)
                .payload(&record.payload)
                .headers(headers);
            if let Some(key) = &record.key {
                fr = fr.key(key);
            }
            let error = match self.producer.send_result(fr) {
                Ok(delivery) => return Ok(delivery),
                Err((e, _)) => e,
            };
            if is_fatal(&error) {
                return Err(SinkError::Fatal(error));
            }
            if is_permanent(&error) {
                return Err(SinkError::Rejected(error));
            }
            let queue_full = matches!(
                error.rdkafka_error_code(),
                Some(RDKafkaErrorCode::QueueFull)
            );
            // A transactional producer refuses records once its transaction failed: the
            // transaction is aborted and redone instead.
            if self.transactional && !queue_full {
                return Err(SinkError::InTransaction(error));
            }
            if !queue_full {
                ProduceFailed {
                    topic: &record.topic,
                    error: &error,
                    retry: None,
                }
                .emit(&self.metrics);
            }
            tokio::select! {
                _ = tokio::time::sleep(QUEUE_FULL_WAIT) => {}
                _ = hard_stop.cancelled() => return Err(SinkError::Cancelled(error)),
            }
        }
    }

    /// Waits for the broker's answer to one delivery attempt.
    pub async fn attempt(
        &self,
        delivery: &mut DeliveryFuture,
        hard_stop: &CancellationToken,
    ) -> Attempt {
        let outcome = tokio::select! {
            r = delivery => r,
            _ = hard_stop.cancelled() => {
                return Attempt::Failed(SinkError::Cancelled(KafkaError::Canceled));
            }
        };
        let error = match outcome {
            Ok(Ok(_)) => return Attempt::Delivered,
            Ok(Err((e, _))) => e,
            Err(_) => KafkaError::Canceled,
        };
        if is_fatal(&error) {
            Attempt::Failed(SinkError::Fatal(error))
        } else if is_permanent(&error) {
            Attempt::Failed(SinkError::Rejected(error))
        } else if self.transactional {
            Attempt::Failed(SinkError::InTransaction(error))
        } else {
            Attempt::Retry(error)
        }
    }

    /// Sleeps before retry number `attempt` (0-based) of `record`, counting and logging the
    /// failure; `Err` at the hard stop.
    pub async fn back_off(
        &self,
        record: &OutRecord,
        error: KafkaError,
        attempt: u32,
        hard_stop: &CancellationToken,
    ) -> Result<(), SinkError> {
        let delay = self.backoff.delay(attempt);
        ProduceFailed {
            topic: &record.topic,
            error: &error,
            retry: Some((attempt.saturating_add(1), delay)),
        }
        .emit(&self.metrics);
        tokio::select! {
            _ = tokio::time::sleep(delay) => Ok(()),
            _ = hard_stop.cancelled() => Err(SinkError::Cancelled(error)),
        }
    }

    /// Waits for the broker's acknowledgement of an enqueued record; on a transient
    /// failure re-sends it with exponential back-off until acknowledged or `hard_stop`.
    /// For a record on its own (a dead-letter record): records whose order matters are
    /// retried by their partition's ack lane, which re-sends the later ones too.
    pub async fn confirm(
        &self,
        record: &OutRecord,
        mut delivery: DeliveryFuture,
        hard_stop: &CancellationToken,
    ) -> Result<(), SinkError> {
        let mut attempt = 0u32;
        loop {
            match self.attempt(&mut delivery, hard_stop).await {
                Attempt::Delivered => return Ok(()),
                Attempt::Failed(e) => return Err(e),
                Attempt::Retry(error) => {
                    self.back_off(record, error, attempt, hard_stop).await?;
                    attempt = attempt.saturating_add(1);
                    delivery = self.enqueue(record, hard_stop).await?;
                }
            }
        }
    }

    /// Enqueues and confirms one record.
    pub async fn deliver(
        &self,
        record: &OutRecord,
        hard_stop: &CancellationToken,
    ) -> Result<(), SinkError> {
        let delivery = self.enqueue(record, hard_stop).await?;
        self.confirm(record, delivery, hard_stop).await
    }

    /// Waits for every queued record to be delivered, up to `timeout`.
    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.producer.flush(timeout)
    }
}
