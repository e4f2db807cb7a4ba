//! The worker: reads records, runs the pure pipeline on a thread pool, produces events in
//! input order, stores offsets only for the contiguous prefix of acknowledged records, and
//! drains, flushes and commits on shutdown.
//!
//! Three stages joined by bounded channels:
//! 1. **read** (this task): consume, register the offset, hand the record to the pool;
//! 2. **order**: await results in input order, enqueue to the producer in that order;
//! 3. **ack**: await broker acknowledgements, retry transient failures, store offsets.
//!
//! At most `pipeline.max_in_flight` records are between stage 1 and the end of stage 3.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{TimeZone, Utc};
use rdkafka::consumer::{CommitMode, Consumer as _};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::DeliveryFuture;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::enrich::{Enricher, EntityType};
use crate::event::{CONTENT_TYPE, Provenance, SCHEMA_VERSION, rfc3339};
use crate::kafka::{ClientRole, Health, KafkaContext, SharedTracker, producer_config};
use crate::metrics::Metrics;
use crate::pipeline::{Processor, Rejection, StageTimings};
use crate::sink::{Backoff, OutRecord, Sink, SinkError};
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

/// A record on its way through stages 2 and 3.
struct Job {
    input: Arc<InputRecord>,
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
    delivery: DeliveryFuture,
    kind: Outcome,
    enqueued_at: Instant,
    _slot: Slot,
}

/// One of the `max_in_flight` places a record holds from read to acknowledgement (or to
/// being abandoned at the shutdown deadline); keeps `newsflow_inflight_messages` true on
/// every path.
struct Slot {
    _permit: OwnedSemaphorePermit,
    gauge: prometheus::IntGauge,
}

impl Slot {
    fn new(permit: OwnedSemaphorePermit, gauge: &prometheus::IntGauge) -> Self {
        gauge.inc();
        Slot {
            _permit: permit,
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
        reason: &'static str,
    },
}

/// Everything the stages share.
struct Shared {
    config: Config,
    options: RunOptions,
    metrics: Metrics,
    tracker: Arc<SharedTracker>,
    consumer: Arc<Consumer>,
    sink: Sink,
    hard_stop: CancellationToken,
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
        .context("creating the Kafka consumer")?,
    );
    let producer = producer_config(&config)
        .create_with_context(KafkaContext::new(
            ClientRole::Producer,
            metrics.clone(),
            health.clone(),
            tracker.clone(),
            Duration::from_millis(config.shutdown.drain_timeout_ms),
        ))
        .context("creating the Kafka producer")?;
    let backoff = Backoff {
        initial: Duration::from_millis(config.pipeline.retry_backoff_initial_ms),
        max: Duration::from_millis(config.pipeline.retry_backoff_max_ms),
    };
    let sink = Sink::new(producer, backoff, metrics.clone());
    check_topics(&consumer, &config, &options, &shutdown).await?;
    match &options.subscription {
        Subscription::Group => {
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
        .build()
        .context("starting the enrichment pool")?;
    let processor = Processor::new(enricher, config.pipeline.max_message_bytes);
    let max_in_flight = config.pipeline.max_in_flight;
    let shared = Arc::new(Shared {
        config,
        options,
        metrics: metrics.clone(),
        tracker,
        consumer,
        sink,
        hard_stop: CancellationToken::new(),
    });

    let (order_tx, order_rx) = mpsc::channel::<Job>(max_in_flight);
    let (ack_tx, ack_rx) = mpsc::channel::<Pending>(max_in_flight);
    let order = tokio::spawn(order_stage(shared.clone(), order_rx, ack_tx));
    let ack = tokio::spawn(ack_stage(shared.clone(), ack_rx));

    let consumed = read_stage(
        &shared,
        &pool,
        &processor,
        order_tx,
        Arc::new(Semaphore::new(max_in_flight)),
        &shutdown,
    )
    .await;

    // Drain: the read stage has stopped and dropped its sender; wait for the rest.
    health.set_shutting_down();
    metrics.ready.set(0);
    let drain = Duration::from_millis(shared.config.shutdown.drain_timeout_ms);
    let started = Instant::now();
    let drained = tokio::time::timeout(drain, async {
        let _ = order.await;
        let _ = ack.await;
    })
    .await;
    if drained.is_err() {
        warn!("Drain deadline passed; unfinished records will be redelivered");
        shared.hard_stop.cancel();
    }
    let flush_for = drain
        .saturating_sub(started.elapsed())
        .max(Duration::from_millis(500));
    if let Err(e) = shared.sink.flush(flush_for) {
        warn!(error = %e, "Producer flush incomplete");
    }
    let unfinished = shared.tracker.lock().pending_in(None);
    commit_finished(&shared);
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
    Ok(summary)
}

/// Waits for the brokers (retrying with back-off; `/readyz` stays 503 meanwhile), then
/// fails fast, with a clear message, when an input topic does not exist.
async fn check_topics(
    consumer: &Arc<Consumer>,
    config: &Config,
    options: &RunOptions,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let mut topics: Vec<String> = config
        .topics
        .inputs()
        .into_iter()
        .map(String::from)
        .collect();
    if let Subscription::Bounded { starts, .. } = &options.subscription {
        topics = starts.iter().map(|(t, _, _)| t.clone()).collect();
        topics.dedup();
    }
    let mut attempt = 0u32;
    loop {
        let c = consumer.clone();
        let metadata =
            tokio::task::spawn_blocking(move || c.fetch_metadata(None, Duration::from_secs(10)))
                .await
                .context("metadata task failed")?;
        match metadata {
            Ok(metadata) => {
                for topic in &topics {
                    let found = metadata.topics().iter().find(|t| t.name() == topic);
                    match found {
                        Some(t) if t.error().is_none() && !t.partitions().is_empty() => {}
                        _ => anyhow::bail!("input topic `{topic}` does not exist"),
                    }
                }
                return Ok(());
            }
            Err(e) => {
                let delay = Duration::from_millis(config.pipeline.retry_backoff_initial_ms)
                    .saturating_mul(1 << attempt.min(6))
                    .min(Duration::from_millis(config.pipeline.retry_backoff_max_ms));
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

/// Stage 1. Returns the number of records read.
async fn read_stage(
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
            error!("Order stage stopped unexpectedly");
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

fn set_remaining(metrics: &Metrics, (topic, partition): &(String, i32), n: i64) {
    metrics
        .replay_remaining
        .with_label_values(&[topic, &partition.to_string()])
        .set(n);
}

/// At an end-of-partition event for `partition`: the planned partitions of that number whose
/// position reached their end are done.
fn drop_finished_partitions(
    consumer: &Consumer,
    partition: i32,
    ends: &mut HashMap<(String, i32), i64>,
    metrics: &Metrics,
) {
    let Ok(positions) = consumer.position() else {
        return;
    };
    for e in positions.elements() {
        if e.partition() != partition {
            continue;
        }
        let key = (e.topic().to_string(), e.partition());
        let Some(&end) = ends.get(&key) else {
            continue;
        };
        // EOF short of the end (or with no position) means retention deleted part of the
        // planned range after planning: only then (rarely) ask the broker where the log
        // starts now.
        let log_start = match e.offset() {
            Offset::Offset(pos) if pos >= end => None,
            _ => crate::runtime::blocking(|| {
                consumer.fetch_watermarks(&key.0, key.1, Duration::from_secs(5))
            })
            .ok()
            .map(|(low, _)| low),
        };
        if partition_done(e.offset(), log_start, end) {
            ends.remove(&key);
            set_remaining(metrics, &key, 0);
        }
    }
}

/// Whether a bounded partition has nothing left below `end`: its position reached the end,
/// or the log now starts at or past it (`log_start`, when the broker was asked).
fn partition_done(position: Offset, log_start: Option<i64>, end: i64) -> bool {
    match position {
        Offset::Offset(pos) if pos >= end => true,
        _ => log_start.is_some_and(|low| low >= 0 && low >= end),
    }
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

/// How much of the input a dead-letter record carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DeadLetterForm {
    /// The original bytes (truncated to `pipeline.max_message_bytes`) and headers.
    Full,
    /// No payload and only newsflow's headers: for a broker that refused the full form.
    Bare,
}

/// The dead-letter record for a rejected input: original bytes (truncated to the limit if
/// needed), original key and headers, and the error and origin in `newsflow.*` headers.
pub fn dead_letter_record(
    config: &Config,
    input: &InputRecord,
    rejection: &Rejection,
) -> OutRecord {
    dead_letter_in_form(config, input, rejection, DeadLetterForm::Full)
}

fn dead_letter_in_form(
    config: &Config,
    input: &InputRecord,
    rejection: &Rejection,
    form: DeadLetterForm,
) -> OutRecord {
    let (limit, mut headers) = match form {
        DeadLetterForm::Full => (config.pipeline.max_message_bytes, input.headers.clone()),
        DeadLetterForm::Bare => (0, Vec::new()),
    };
    let truncated = input.value.len() > limit;
    let payload = if truncated {
        input.value[..limit].to_vec()
    } else {
        input.value.clone()
    };
    let mut add = |k: &str, v: String| headers.push((k.to_string(), v.into_bytes()));
    add("newsflow.error.class", rejection.reason.to_string());
    add("newsflow.error.message", rejection.message.clone());
    add("newsflow.source.topic", input.topic.clone());
    add("newsflow.source.partition", input.partition.to_string());
    add("newsflow.source.offset", input.offset.to_string());
    if let Some(ts) = input.timestamp_ms {
        add("newsflow.source.timestamp", ts.to_string());
    }
    if truncated {
        add("newsflow.truncated", "true".into());
        add("newsflow.original.size", input.value.len().to_string());
    }
    OutRecord {
        topic: config.topics.dead_letter.clone(),
        key: input.key.clone(),
        payload,
        headers,
    }
}

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

/// Stage 2: results in input order → producer queue in the same order.
async fn order_stage(
    shared: Arc<Shared>,
    mut rx: mpsc::Receiver<Job>,
    ack_tx: mpsc::Sender<Pending>,
) {
    while let Some(job) = rx.recv().await {
        let processed = job.result.await.unwrap_or_else(|_| Processed {
            outcome: Err(Rejection {
                reason: "internal",
                message: "processing thread failed".into(),
            }),
            timings: StageTimings::default(),
        });
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
            Err(rejection) => {
                warn!(topic = %job.input.topic, partition = job.input.partition, offset = job.input.offset, reason = rejection.reason, error = %rejection.message, "Dead-lettering record");
                (
                    dead_letter_record(&shared.config, &job.input, &rejection),
                    Outcome::DeadLetter {
                        reason: rejection.reason,
                    },
                )
            }
        };
        let enqueued_at = Instant::now();
        let (record, kind, delivery) = match shared.sink.enqueue(&record, &shared.hard_stop).await {
            Ok(d) => (record, kind, d),
            Err(SinkError::Rejected(e)) => {
                let rejection = Rejection {
                    reason: "output_rejected",
                    message: format!("broker refused the event: {e}"),
                };
                let dlq = dead_letter_record(&shared.config, &job.input, &rejection);
                match shared.sink.enqueue(&dlq, &shared.hard_stop).await {
                    Ok(d) => (
                        dlq,
                        Outcome::DeadLetter {
                            reason: "output_rejected",
                        },
                        d,
                    ),
                    Err(e) => {
                        error!(error = %e, offset = job.input.offset, "Cannot dead-letter record; it stays uncommitted");
                        continue;
                    }
                }
            }
            Err(SinkError::Cancelled(_)) => continue,
        };
        let pending = Pending {
            input: job.input,
            record,
            delivery,
            kind,
            enqueued_at,
            _slot: job.slot,
        };
        if ack_tx.send(pending).await.is_err() {
            break;
        }
    }
}

/// Stage 3: acknowledgements (concurrently), retries, offset storing.
async fn ack_stage(shared: Arc<Shared>, mut rx: mpsc::Receiver<Pending>) {
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            next = rx.recv() => match next {
                Some(p) => { tasks.spawn(confirm(shared.clone(), p)); }
                None => break,
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    while tasks.join_next().await.is_some() {}
}

async fn confirm(shared: Arc<Shared>, pending: Pending) {
    let Pending {
        input,
        record,
        delivery,
        kind,
        enqueued_at,
        _slot,
    } = pending;
    let m = &shared.metrics;
    let result = shared
        .sink
        .confirm(&record, delivery, &shared.hard_stop)
        .await;
    let kind = match result {
        Ok(()) => kind,
        Err(SinkError::Rejected(e)) => {
            // Refused for good after enqueue (e.g. too large for the topic): dead-letter it;
            // a refused dead-letter record is sent again without its payload.
            let reason = match kind {
                Outcome::DeadLetter { reason } => reason,
                Outcome::Event { .. } => "output_rejected",
            };
            let rejection = Rejection {
                reason,
                message: format!("broker refused the record: {e}"),
            };
            // A refused dead-letter record would be refused again in the same form.
            let form = match kind {
                Outcome::DeadLetter { .. } => DeadLetterForm::Bare,
                Outcome::Event { .. } => DeadLetterForm::Full,
            };
            if let Err(e) = deliver_dead_letter(&shared, &input, &rejection, form).await {
                error!(error = %e, offset = input.offset, "Cannot dead-letter record; it stays uncommitted");
                return;
            }
            Outcome::DeadLetter { reason }
        }
        Err(SinkError::Cancelled(_)) => {
            return; // Not finished: the offset is not stored, the record will be redelivered.
        }
    };
    m.stage_duration
        .with_label_values(&["produce"])
        .observe(enqueued_at.elapsed().as_secs_f64());
    match kind {
        Outcome::Event {
            entity_counts,
            sentiment,
        } => {
            m.events_produced.with_label_values(&[&record.topic]).inc();
            for (t, n) in entity_counts {
                m.entities_extracted
                    .with_label_values(&[t.as_str()])
                    .inc_by(n);
            }
            m.sentiment_score.observe(sentiment);
        }
        Outcome::DeadLetter { reason } => {
            m.dead_lettered.with_label_values(&[reason]).inc();
        }
    }
    // Replays read old records on purpose: their age is not a latency.
    if let Some(ts) = input.timestamp_ms
        && matches!(shared.options.subscription, Subscription::Group)
    {
        let age = (Utc::now().timestamp_millis() - ts).max(0) as f64 / 1000.0;
        m.end_to_end_latency.observe(age);
    }
    {
        // Stored under the lock, so two completions can never store positions out of order.
        let mut tracker = shared.tracker.lock();
        if let Some(position) = tracker.finish(&input.topic, input.partition, input.offset) {
            let mut tpl = TopicPartitionList::new();
            if tpl
                .add_partition_offset(&input.topic, input.partition, Offset::Offset(position))
                .is_ok()
            {
                // Fails only if the partition was revoked meanwhile; its new owner re-reads.
                let _ = shared.consumer.store_offsets(&tpl);
            }
        }
    }
    shared.tracker.notify();
}

/// Delivers the dead-letter record for `input`, starting in `form`. If the broker refuses the
/// full form for good (the original headers plus ours can push a truncated value over its
/// limit), the bare form follows, so the partition can move on.
async fn deliver_dead_letter(
    shared: &Shared,
    input: &InputRecord,
    rejection: &Rejection,
    form: DeadLetterForm,
) -> Result<(), SinkError> {
    let record = dead_letter_in_form(&shared.config, input, rejection, form);
    match shared.sink.deliver(&record, &shared.hard_stop).await {
        Err(SinkError::Rejected(e)) if form == DeadLetterForm::Full => {
            warn!(error = %e, offset = input.offset, "Dead-letter record refused; sending it without its payload");
            let bare = dead_letter_in_form(&shared.config, input, rejection, DeadLetterForm::Bare);
            shared.sink.deliver(&bare, &shared.hard_stop).await
        }
        other => other,
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
    match shared.consumer.commit(&tpl, CommitMode::Sync) {
        Ok(()) => info!(partitions = tpl.count(), "Committed offsets"),
        Err(e) => {
            shared
                .metrics
                .processing_errors
                .with_label_values(&["commit"])
                .inc();
            warn!(error = %e, "Final commit failed; records may be redelivered")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letter_forms_full_keeps_the_input_bare_keeps_only_newsflow_headers() {
        let toml = "[kafka]\nbootstrap_servers = \"b:9092\"\ngroup_id = \"g\"\n\
                    [topics]\ninput = \"in\"\noutput = \"out\"\ndead_letter = \"dlq\"\n\
                    [pipeline]\nmax_message_bytes = 4096\n";
        let config = Config::from_toml_str(toml, "t", Vec::new()).unwrap();
        let input = InputRecord {
            topic: "in".into(),
            partition: 2,
            offset: 7,
            timestamp_ms: None,
            key: Some(b"k".to_vec()),
            value: vec![b'x'; 5000],
            headers: vec![("trace".into(), b"1".to_vec())],
        };
        let rejection = Rejection {
            reason: "invalid_json",
            message: "bad".into(),
        };
        let header = |r: &OutRecord, k: &str| {
            r.headers
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        };
        let full = dead_letter_in_form(&config, &input, &rejection, DeadLetterForm::Full);
        assert_eq!(full.payload.len(), 4096);
        assert_eq!(header(&full, "trace").as_deref(), Some("1"));
        assert_eq!(
            header(&full, "newsflow.original.size").as_deref(),
            Some("5000")
        );
        let bare = dead_letter_in_form(&config, &input, &rejection, DeadLetterForm::Bare);
        assert!(bare.payload.is_empty());
        assert!(bare.headers.iter().all(|(k, _)| k.starts_with("newsflow.")));
        assert_eq!(header(&bare, "newsflow.truncated").as_deref(), Some("true"));
        assert_eq!(
            header(&bare, "newsflow.original.size").as_deref(),
            Some("5000")
        );
        assert_eq!(
            header(&bare, "newsflow.error.class").as_deref(),
            Some("invalid_json")
        );
        assert_eq!(bare.key, full.key);
    }

    #[test]
    fn bounded_partition_is_done_at_its_end_or_when_retention_deleted_the_rest() {
        // Read up to the end.
        assert!(partition_done(Offset::Offset(10), Some(0), 10));
        assert!(!partition_done(Offset::Offset(9), Some(0), 10));
        // Nothing read (no position): done only if the log now starts at or past the end.
        assert!(partition_done(Offset::Invalid, Some(12), 10));
        assert!(partition_done(Offset::Invalid, Some(10), 10));
        assert!(!partition_done(Offset::Invalid, Some(3), 10));
        // The broker could not be asked (an error) or answered no offset (negative).
        assert!(!partition_done(Offset::Invalid, None, 10));
        assert!(!partition_done(Offset::Invalid, Some(-1001), 10));
        // Behind the end but the rest was deleted.
        assert!(partition_done(Offset::Offset(4), Some(10), 10));
    }
}
