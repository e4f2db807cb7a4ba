//! The read task: consume, register the offset, hand the record to the enrichment pool.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use rdkafka::consumer::Consumer as _;
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{BorrowedMessage, Message, OwnedMessage};
use rdkafka::topic_partition_list::TopicPartitionList;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info};

use super::bounded::{drop_finished_partitions, set_remaining};
use super::budget::{Admission, Budget};
use super::{Job, Processed, ProcessedEvent, Shared, Slot, Subscription};
use crate::enrich::EntityType;
use crate::event::{Provenance, rfc3339};
use crate::events::ConsumeFailed;
use crate::pipeline::{Processor, RejectReason, Rejection};
use crate::source::InputRecord;

/// How long the read task waits for a share of the in-flight budget before it pauses its
/// partitions. A pause is not free: librdkafka drops what it had prefetched for them, and
/// after the resume the next records arrived ~0.5 s later on every cycle (measured with
/// `cargo bench --bench pipeline` on the mock cluster), which capped the worker at
/// `max_in_flight` records per half second. Not polling for this long delays a rebalance
/// callback by as much, far inside `max.poll.interval.ms`.
const PAUSE_AFTER: Duration = Duration::from_millis(250);

/// What the read task does with one poll result.
enum Polled {
    /// A record to process.
    Record(OwnedMessage),
    /// Nothing to process (an end-of-partition event, a record past a replay's end, a
    /// consume error, which librdkafka recovers from by itself).
    Nothing,
}

/// The read task's state between polls.
struct Reader<'a> {
    shared: &'a Arc<Shared>,
    shutdown: &'a CancellationToken,
    /// Bounded runs: the partitions still to read, with their end offsets.
    remaining: Option<HashMap<(String, i32), i64>>,
    /// Whether the assignment is paused because the in-flight budget is used up.
    paused: bool,
    /// Records that arrived from a partition that was not paused yet (assigned while the
    /// others were): at most one per partition, since each is paused on arrival.
    held: VecDeque<OwnedMessage>,
}

impl Reader<'_> {
    /// Turns one poll result into a record to process, or handles it.
    async fn accept(&mut self, polled: KafkaResult<BorrowedMessage<'_>>) -> Polled {
        let shared = self.shared;
        let message = match polled {
            Ok(m) => m.detach(),
            Err(KafkaError::PartitionEOF(partition)) => {
                if let Some(ends) = self.remaining.as_mut() {
                    drop_finished_partitions(&shared.consumer, partition, ends, &shared.metrics);
                }
                return Polled::Nothing;
            }
            // Informational: librdkafka reports each failed (re)connect and fetch here and
            // recovers by itself, at its own back-off. Sleeping on them as well made a worker
            // sleep out the errors queued during an outage one by one (up to 10 s each)
            // after the broker was back; polling on is what recovers soonest.
            Err(e) => {
                ConsumeFailed { error: &e }.emit(&shared.metrics);
                return Polled::Nothing;
            }
        };
        if let Some(ends) = self.remaining.as_mut() {
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
                    self.pause_partition(&tp.0, tp.1);
                    return Polled::Nothing;
                }
            }
        }
        Polled::Record(message)
    }

    fn pause_partition(&self, topic: &str, partition: i32) {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(topic, partition);
        let _ = self.shared.consumer.pause(&tpl);
    }

    /// The partitions this worker reads now: the assignment, or a replay's unfinished ones
    /// (finished ones stay paused for good).
    fn reading(&self) -> TopicPartitionList {
        match &self.remaining {
            Some(ends) => {
                let mut tpl = TopicPartitionList::new();
                for (topic, partition) in ends.keys() {
                    tpl.add_partition(topic, *partition);
                }
                tpl
            }
            None => self.shared.consumer.assignment().unwrap_or_default(),
        }
    }

    /// Budget used up: stop fetching but keep polling, so rebalances and the group session
    /// are served and `max.poll.interval.ms` never expires. librdkafka purges what it had
    /// prefetched for a paused partition and resumes after the last record delivered.
    fn pause_all(&mut self) {
        if self.paused {
            return;
        }
        let _ = self.shared.consumer.pause(&self.reading());
        self.paused = true;
        self.shared.metrics.backpressure_paused.set(1);
        debug!("In-flight budget used up; partitions paused");
    }

    fn resume_all(&mut self) {
        if !self.paused || !self.held.is_empty() {
            return;
        }
        let _ = self.shared.consumer.resume(&self.reading());
        self.paused = false;
        self.shared.metrics.backpressure_paused.set(0);
        debug!("In-flight budget available; partitions resumed");
    }

    /// Waits for `cost` of the budget while polling: records that still arrive (from a
    /// partition assigned after the pause) are held and their partition paused.
    async fn wait_for_budget(&mut self, budget: &Budget, cost: u32) -> Option<Admission> {
        if !self.paused {
            // Most waits are short (the lanes settle a batch within milliseconds): served
            // without pausing, since a pause costs a refetch (see `PAUSE_AFTER`).
            tokio::select! {
                _ = self.shutdown.cancelled() => return None,
                a = tokio::time::timeout(PAUSE_AFTER, budget.admit(cost)) => {
                    if let Ok(a) = a {
                        return a;
                    }
                }
            }
        }
        self.pause_all();
        let shared = self.shared;
        let admission = budget.admit(cost);
        tokio::pin!(admission);
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return None,
                a = &mut admission => return a,
                m = shared.consumer.recv() => match self.accept(m).await {
                    Polled::Record(m) => {
                        self.pause_partition(m.topic(), m.partition());
                        self.held.push_back(m);
                    }
                    Polled::Nothing => {}
                },
            }
        }
    }
}

/// The read task. Returns the number of records read.
///
/// Admission control: a record is handed on only with its share of the in-flight budget
/// (records and bytes). When the budget is used up the task pauses its partitions and keeps
/// polling until a share frees, then resumes them.
pub(super) async fn read_task(
    shared: &Arc<Shared>,
    pool: &rayon::ThreadPool,
    processor: &Processor,
    order_tx: mpsc::Sender<Job>,
    budget: Budget,
    shutdown: &CancellationToken,
) -> u64 {
    let mut consumed = 0u64;
    let mut reader = Reader {
        shared,
        shutdown,
        remaining: match &shared.options.subscription {
            Subscription::Group => None,
            Subscription::Bounded { ends, .. } => Some(ends.clone()),
        },
        paused: false,
        held: VecDeque::new(),
    };
    let rate_started = Instant::now();
    loop {
        if reader.held.is_empty() && reader.remaining.as_ref().is_some_and(|e| e.is_empty()) {
            info!("Every partition reached its end offset");
            break;
        }
        let message = match reader.held.pop_front() {
            Some(m) => m,
            None => {
                let polled = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    m = shared.consumer.recv() => reader.accept(m).await,
                };
                match polled {
                    Polled::Record(m) => m,
                    Polled::Nothing => continue,
                }
            }
        };
        let cost = budget.cost(message.payload().map_or(0, <[u8]>::len));
        let admission = match budget.try_admit(cost) {
            Some(a) => a,
            None => match reader.wait_for_budget(&budget, cost).await {
                Some(a) => a,
                None => break,
            },
        };
        reader.resume_all();
        let input = Arc::new(InputRecord::from_message(&message));
        drop(message);
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
        let (started_tx, started) = oneshot::channel();
        let (tx, result) = oneshot::channel();
        let job_input = input.clone();
        let job_processor = processor.clone();
        pool.spawn(move || {
            let _ = started_tx.send(Instant::now());
            let _ = tx.send(process(&job_processor, &job_input));
        });
        if order_tx
            .send(Job {
                input,
                started,
                result,
                slot: Slot::new(admission, &shared.metrics.inflight),
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
            reason: RejectReason::Internal,
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
