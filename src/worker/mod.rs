//! The worker: reads records, runs the pure pipeline on a thread pool, produces events in
//! input order, stores offsets only for the contiguous prefix of acknowledged records, and
//! drains, flushes and commits on shutdown.
//!
//! Concurrent tasks joined by channels (a "stage" is a pipeline stage, never one of these):
//! 1. **read** ([`read`]): consume, register the offset, hand the record to the pool;
//! 2. **order** ([`order`]): one lane per input partition awaits results in input order and
//!    enqueues them to the producer in order;
//! 3. **ack** ([`ack`]): beside each order lane, an ack lane awaits the broker's
//!    acknowledgements in order, re-sends from a failed record on (no reordering), stores
//!    offsets.
//!
//! [`bounded`] tracks end offsets for replays; [`dead_letter`] builds dead-letter records.
//!
//! At most `pipeline.max_in_flight` records and `pipeline.max_in_flight_bytes` bytes
//! ([`budget`]) are between the read task and acknowledgement; when either is used up the
//! read task pauses its partitions and keeps polling.

mod ack;
mod bounded;
mod budget;
mod dead_letter;
mod order;
mod read;
mod refusals;
pub mod txn;

pub use dead_letter::dead_letter_record;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::consumer::{CommitMode, Consumer as _};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::DeliveryFuture;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use self::budget::{Admission, Budget};
use self::txn::{Committed as TxnCommitted, Ticket, Transactions};
use crate::config::Config;
use crate::enrich::{Enricher, EntityType};
use crate::events::{CommitCause, Committed};
use crate::health::Health;
use crate::kafka::{ClientRole, KafkaContext, producer_config, topic_max_message_bytes};
use crate::metrics::Metrics;
use crate::offsets::SharedTracker;
use crate::pipeline::{Processor, RejectReason, Rejection, StageTimings};
use crate::retry::Backoff;
use crate::sink::{OutRecord, Sink};
use crate::source::{Consumer, InputRecord, create_consumer};

/// Where the worker reads from and how it stops.
#[derive(Debug, Clone)]
pub enum Subscription {
    /// Join `group_id` and subscribe to the input topics (the live worker).
    Group,
    /// Manually assigned partitions from start offsets up to (excluding) end offsets; the
    /// run ends by itself when every partition reached its end (replay).
    Bounded {
        starts: Vec<(String, i32, i64)>,
        ends: HashMap<(String, i32), i64>,
    },
}

/// What a run does beyond the config.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub group_id: String,
    pub output_topic: String,
    pub subscription: Subscription,
    /// Added to every produced event (e.g. the replay marker).
    pub extra_headers: Vec<(String, Vec<u8>)>,
    /// Articles per second, when limited.
    pub rate_limit: Option<f64>,
}

impl RunOptions {
    /// The live worker's options.
    pub fn live(config: &Config) -> Self {
        RunOptions {
            group_id: config.kafka.group_id.clone(),
            output_topic: config.topics.output.clone(),
            subscription: Subscription::Group,
            extra_headers: Vec::new(),
            rate_limit: None,
        }
    }
}

/// Counts at the end of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunSummary {
    pub consumed: u64,
    pub produced: u64,
    pub dead_lettered: u64,
    /// Records read but not finished by the drain deadline (redelivered on restart).
    pub unfinished: usize,
}

/// A record on its way through the order and ack tasks.
struct Job {
    input: Arc<InputRecord>,
    /// When a pool thread started on the record: its deadline counts from then, so time
    /// spent queued behind other records is never charged to it.
    started: oneshot::Receiver<Instant>,
    result: oneshot::Receiver<Processed>,
    slot: Slot,
}

/// What the pool returns for one record.
struct Processed {
    outcome: Result<ProcessedEvent, Rejection>,
    timings: StageTimings,
}

struct ProcessedEvent {
    key: String,
    event_id: String,
    json: Vec<u8>,
    entity_counts: Vec<(EntityType, u64)>,
    sentiment: f64,
}

/// A record enqueued to the producer, awaiting acknowledgement.
struct Pending {
    input: Arc<InputRecord>,
    record: OutRecord,
    sent: Sent,
    kind: Outcome,
    enqueued_at: Instant,
    _slot: Slot,
    /// Exactly-once mode: the record's place in the open transaction.
    ticket: Option<Ticket>,
}

/// What the producer did with a record handed to it.
enum Sent {
    /// Queued; the future resolves with the broker's answer.
    Enqueued(DeliveryFuture),
    /// Refused for good before sending (too large for the producer, invalid): the ack lane
    /// dead-letters it.
    Refused(rdkafka::error::KafkaError),
}

/// One of the `max_in_flight` places a record holds from read to acknowledgement (or to
/// being abandoned at the shutdown deadline); keeps `newsflow_inflight_messages` true on
/// every path.
struct Slot {
    _admission: Admission,
    gauge: prometheus::IntGauge,
}

impl Slot {
    fn new(admission: Admission, gauge: &prometheus::IntGauge) -> Self {
        gauge.inc();
        Slot {
            _admission: admission,
            gauge: gauge.clone(),
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

enum Outcome {
    Event {
        entity_counts: Vec<(EntityType, u64)>,
        sentiment: f64,
    },
    DeadLetter {
        reason: RejectReason,
        /// The rejection's message, for the log line when the record is acknowledged.
        message: String,
    },
}

/// Everything the tasks share.
struct Shared {
    config: Config,
    options: RunOptions,
    metrics: Metrics,
    tracker: Arc<SharedTracker>,
    consumer: Arc<Consumer>,
    sink: Sink,
    health: Arc<Health>,
    /// Past the drain deadline, a fatal error or a rewind: stop at once.
    hard_stop: CancellationToken,
    /// Exactly-once mode's transactions.
    txn: Option<Arc<Transactions>>,
}

/// Runs the worker until `shutdown` is cancelled (or, for a bounded subscription, until
/// every partition reached its end), then drains, flushes and commits.
pub async fn run(
    config: Config,
    options: RunOptions,
    enricher: Arc<dyn Enricher>,
    metrics: Metrics,
    health: Arc<Health>,
    shutdown: CancellationToken,
) -> anyhow::Result<RunSummary> {
    let tracker = Arc::new(SharedTracker::default());
    let consumer = Arc::new(
        create_consumer(
            &config,
            &options.group_id,
            matches!(options.subscription, Subscription::Bounded { .. }),
            &metrics,
            &health,
            &tracker,
        )
        .map_err(|e| anyhow::anyhow!(config.redact(&e.to_string())))
        .context("creating the Kafka consumer")?,
    );
    // This member's name: the static membership id, else the pod's host name.
    let member = config
        .kafka
        .group_instance_id
        .clone()
        .or_else(|| std::env::var("HOSTNAME").ok());
    let transactional_id = config.delivery.exactly_once().then(|| {
        config.delivery.transactional_id(
            &options.group_id,
            &config.kafka.group_id,
            member.as_deref(),
        )
    });
    // Which process wrote a record: for operators, and for the chaos run's check that no
    // event comes from a worker that no longer owned its input partition.
    let mut options = options;
    options.extra_headers.push((
        "newsflow.worker".to_string(),
        format!(
            "{}/{}",
            member.as_deref().unwrap_or("newsflow"),
            std::process::id()
        )
        .into_bytes(),
    ));
    check_topics(&consumer, &config, &options, &shutdown).await?;
    let output_limit = topic_max_message_bytes(&config, &options.output_topic).await;
    if let Some(limit) = output_limit {
        info!(topic = %options.output_topic, max_message_bytes = limit, "Events and batches sized for the output topic");
    }
    let producer = producer_config(&config, transactional_id.as_deref(), output_limit)
        .create_with_context(KafkaContext::new(
            ClientRole::Producer,
            metrics.clone(),
            health.clone(),
            tracker.clone(),
            Duration::from_millis(config.shutdown.drain_timeout_ms),
        ))
        // librdkafka quotes a refused property's value: it may be a secret.
        .map_err(|e| anyhow::anyhow!(config.redact(&e.to_string())))
        .context("creating the Kafka producer")?;
    let sink = Sink::new(
        producer,
        Backoff::from_config(&config.pipeline),
        metrics.clone(),
        transactional_id.is_some(),
    );
    let txn = match &transactional_id {
        None => None,
        Some(id) => {
            info!(transactional_id = %id, "Exactly-once delivery");
            let (producer, c, t, m, h) = (
                sink.producer().clone(),
                consumer.clone(),
                tracker.clone(),
                metrics.clone(),
                health.clone(),
            );
            let timeout = Duration::from_millis(config.delivery.transaction_timeout_ms);
            let probe_topic = input_topics(&config, &options)
                .into_iter()
                .next()
                .unwrap_or_default();
            let txn = tokio::task::spawn_blocking(move || {
                Transactions::init(producer, c, &probe_topic, t, m, h, timeout)
            })
            .await
            .context("transaction set-up task failed")??;
            let weak: std::sync::Weak<dyn crate::kafka::RevokeCommitter> =
                Arc::downgrade(&txn) as _;
            consumer.context().set_revoke_committer(weak);
            Some(txn)
        }
    };
    match &options.subscription {
        Subscription::Group => {
            // 0 leaves the check off.
            health
                .set_unassigned_timeout(Duration::from_millis(config.kafka.unassigned_timeout_ms));
            consumer
                .subscribe(&config.topics.inputs())
                .context("subscribing to input topics")?;
        }
        Subscription::Bounded { starts, .. } => {
            let mut tpl = TopicPartitionList::new();
            for (topic, partition, offset) in starts {
                tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset))
                    .context("building the assignment")?;
            }
            consumer.assign(&tpl).context("assigning partitions")?;
            metrics.assigned_partitions.set(tpl.count() as i64);
        }
    }
    health.set_connected(true);
    metrics.ready.set(i64::from(health.is_ready()));

    let pool = rayon::ThreadPoolBuilder::new()
        // Remote enrichment blocks pool threads on HTTP: add one per allowed request.
        .num_threads(
            config.pipeline.worker_threads()
                + config
                    .enrich
                    .remote
                    .as_ref()
                    .map_or(0, |r| r.max_concurrency),
        )
        .thread_name(|i| format!("newsflow-enrich-{i}"))
        // Records are processed under catch_unwind; this catches anything outside it, which
        // would otherwise abort the process. The record's result channel closes, so the order
        // task dead-letters it as `internal`.
        .panic_handler(|_| error!("Panic on an enrichment thread outside a record"))
        .build()
        .context("starting the enrichment pool")?;
    let processor = Processor::new(enricher, config.pipeline.max_message_bytes);
    health.set_stall_timeout(Duration::from_millis(config.pipeline.stall_timeout_ms));
    // A fatal client error stops reading and gives up on unacknowledged records at once:
    // the producer will deliver nothing more, so there is nothing to drain.
    let stop = shutdown.child_token();
    let hard_stop = CancellationToken::new();
    let fatal_watch = tokio::spawn({
        let (health, stop, hard_stop) = (health.clone(), stop.clone(), hard_stop.clone());
        async move {
            health.fatal().await;
            stop.cancel();
            hard_stop.cancel();
        }
    });

    // One pass of the pipeline per loop; exactly-once mode starts another after an aborted
    // transaction, from the committed positions.
    let mut consumed = 0;
    let shared = loop {
        let shared = Arc::new(Shared {
            config: config.clone(),
            options: options.clone(),
            metrics: metrics.clone(),
            tracker: tracker.clone(),
            consumer: consumer.clone(),
            sink: sink.clone(),
            health: health.clone(),
            hard_stop: hard_stop.child_token(),
            txn: txn.clone(),
        });
        let pass = stop.child_token();
        let rewind = txn.as_ref().map(|t| t.rewind_token());
        let rewind_watch = rewind.clone().map(|rewind| {
            let pass = pass.clone();
            tokio::spawn(async move {
                rewind.cancelled().await;
                pass.cancel();
            })
        });
        let committer = txn.clone().map(|t| {
            let every = Duration::from_millis(config.delivery.transaction_interval_ms);
            tokio::spawn(t.commit_every(every, pass.clone()))
        });
        let (order_tx, order_rx) = mpsc::channel::<Job>(config.pipeline.max_in_flight);
        let order = tokio::spawn(order::order_task(shared.clone(), order_rx));
        consumed += read::read_task(
            &shared,
            &pool,
            &processor,
            order_tx,
            Budget::new(
                config.pipeline.max_in_flight,
                config.pipeline.max_in_flight_bytes,
            ),
            &pass,
        )
        .await;
        if let Some(w) = rewind_watch {
            w.abort();
        }
        let rewinding = rewind.is_some_and(|r| r.is_cancelled()) && !stop.is_cancelled();
        if rewinding && let Some(t) = &txn {
            // Everything in flight belongs to the aborted transaction: drop it and read
            // again from the committed positions.
            shared.hard_stop.cancel();
            let _ = order.await;
            if let Some(c) = committer {
                let _ = c.await;
            }
            let t = t.clone();
            tokio::task::spawn_blocking(move || t.rewind())
                .await
                .context("rewind task failed")?
                .context("rewinding after an aborted transaction")?;
            continue;
        }

        // Drain: the read task has stopped and dropped its sender; wait for the rest.
        health.set_shutting_down();
        metrics.ready.set(0);
        let drain = Duration::from_millis(config.shutdown.drain_timeout_ms);
        let started = Instant::now();
        let drained = tokio::time::timeout(drain, order).await;
        if drained.is_err() {
            warn!("Drain deadline passed; unfinished records will be redelivered");
            shared.hard_stop.cancel();
        }
        if let Some(c) = committer {
            let _ = c.await;
        }
        let flush_for = drain
            .saturating_sub(started.elapsed())
            .max(Duration::from_millis(500));
        if health.fatal_reason().is_none()
            && txn.is_none()
            && let Err(e) = shared.sink.flush(flush_for)
        {
            warn!(error = %e, "Producer flush incomplete");
        }
        break shared;
    };
    let fatal = health.fatal_reason();
    fatal_watch.abort();
    let unfinished = shared.tracker.lock().pending_in(None);
    match &txn {
        None => commit_finished(&shared),
        Some(t) if fatal.is_none() => {
            let t = t.clone();
            let outcome = tokio::task::spawn_blocking(move || t.commit(CommitCause::Stop))
                .await
                .unwrap_or(TxnCommitted::Fatal);
            info!(?outcome, "Final transaction");
        }
        // Fenced or failed: the open transaction is aborted by the broker.
        Some(_) => {}
    }
    // Closing the consumer revokes its partitions: nothing is left for that revoke to drain.
    shared.tracker.lock().clear();
    let summary = RunSummary {
        consumed,
        produced: Metrics::total(&metrics.events_produced),
        dead_lettered: Metrics::total(&metrics.dead_lettered),
        unfinished,
    };
    info!(
        consumed = summary.consumed,
        produced = summary.produced,
        dead_lettered = summary.dead_lettered,
        unfinished,
        "Worker stopped"
    );
    if let Some(reason) = fatal {
        // Only acknowledged records were committed; the rest is redone after the restart.
        anyhow::bail!("stopped after a {reason}");
    }
    Ok(summary)
}

/// The topics this run reads: the configured inputs for a group member, the assigned
/// partitions' topics for a bounded run (replay).
fn input_topics(config: &Config, options: &RunOptions) -> Vec<String> {
    match &options.subscription {
        Subscription::Group => config
            .topics
            .inputs()
            .into_iter()
            .map(String::from)
            .collect(),
        Subscription::Bounded { starts, .. } => {
            let mut topics: Vec<String> = starts.iter().map(|(t, _, _)| t.clone()).collect();
            topics.dedup();
            topics
        }
    }
}

/// Waits for the brokers (retrying with back-off; `/readyz` stays 503 meanwhile), then
/// fails fast, with a clear message naming the topic, when an input, the output or the
/// dead-letter topic does not exist or the broker refuses to describe it (no permission):
/// any of them missing would stall every partition later.
async fn check_topics(
    consumer: &Arc<Consumer>,
    config: &Config,
    options: &RunOptions,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let inputs = input_topics(config, options);
    let mut topics: Vec<(&str, &str)> = inputs.iter().map(|t| ("input", t.as_str())).collect();
    topics.push(("output", &options.output_topic));
    topics.push(("dead-letter", &config.topics.dead_letter));
    let mut attempt = 0u32;
    loop {
        let c = consumer.clone();
        let metadata =
            tokio::task::spawn_blocking(move || c.fetch_metadata(None, Duration::from_secs(10)))
                .await
                .context("metadata task failed")?;
        match metadata {
            Ok(metadata) => {
                for (role, topic) in &topics {
                    let found = metadata.topics().iter().find(|t| t.name() == *topic);
                    match found.map(|t| (t.error(), t.partitions().is_empty())) {
                        Some((None, false)) => {}
                        Some((Some(e), _)) => anyhow::bail!(
                            "{role} topic `{topic}` cannot be used: {}",
                            RDKafkaErrorCode::from(e)
                        ),
                        _ => anyhow::bail!("{role} topic `{topic}` does not exist"),
                    }
                }
                return Ok(());
            }
            Err(e) => {
                let delay = Backoff::from_config(&config.pipeline).delay(attempt);
                attempt = attempt.saturating_add(1);
                warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "Brokers unreachable; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => anyhow::bail!("shut down before the brokers were reachable"),
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

/// Commits the contiguous finished prefix of every tracked partition.
fn commit_finished(shared: &Shared) {
    let positions = shared.tracker.lock().commit_positions();
    let mut tpl = TopicPartitionList::new();
    for ((topic, partition), pos) in positions {
        let _ = tpl.add_partition_offset(&topic, partition, Offset::Offset(pos));
    }
    if tpl.count() == 0 {
        return;
    }
    Committed {
        cause: CommitCause::Stop,
        partitions: tpl.count(),
        result: shared
            .consumer
            .commit(&tpl, CommitMode::Sync)
            .as_ref()
            .map(|_| ()),
    }
    .emit(&shared.metrics);
}
