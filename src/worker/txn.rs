//! Exactly-once delivery: events, dead-letter records and input positions are committed
//! together in Kafka transactions (KIP-98, with KIP-447's consumer-group fencing).
//!
//! One transaction is open at a time. Every `delivery.transaction_interval_ms`, on a revoke
//! and at shutdown, [`Transactions::commit`]:
//! 1. closes the gate, so no lane hands another record to the producer;
//! 2. waits until every record handed over is acknowledged and finished in the tracker, so
//!    the tracker's contiguous finished prefix is exactly what the transaction produced;
//! 3. adds those positions with the consumer's group metadata, commits, begins the next
//!    transaction, and opens the gate.
//!
//! A record handed over but not acknowledged (a delivery failure, the drain deadline) makes
//! the transaction abort instead: its positions are not committed, so its work is redone.
//! After an abort the worker rewinds: the pipeline is rebuilt and every assigned partition
//! is read again from the group's committed position (see `worker::run`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer as _;
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, Producer as _};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tokio::sync::{OwnedRwLockReadGuard, RwLock};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::events::CommitCause;
use crate::health::Health;
use crate::kafka::{KafkaContext, RevokeCommitter};
use crate::metrics::Metrics;
use crate::offsets::{SharedTracker, TopicPartition};
use crate::source::Consumer;

use super::refusals::{Refusal, Refusals, Refused};

/// What to do about a failed transactional call (librdkafka's classification).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// Call it again (a timeout; the call is idempotent).
    Retry,
    /// Abort the transaction and redo its work from the committed positions.
    Abort,
    /// The producer is fenced or broken: stop the process.
    Fatal,
}

impl Recovery {
    pub fn of(e: &KafkaError) -> Recovery {
        match e {
            KafkaError::Transaction(t) if t.is_fatal() => Recovery::Fatal,
            KafkaError::Transaction(t) if t.txn_requires_abort() => Recovery::Abort,
            KafkaError::Transaction(t) if t.is_retriable() => Recovery::Retry,
            // Anything else (a local state error): the transaction cannot be trusted.
            _ => Recovery::Abort,
        }
    }
}

/// How a commit ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Committed {
    /// Nothing was produced since the last commit.
    Nothing,
    /// Committed `records` records.
    Records(u64),
    /// Aborted: the work since the last commit is redone after the rewind.
    Aborted,
    /// A fatal error; the worker stops.
    Fatal,
}

/// The state of the open transaction: a small pure machine, so its rules are testable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// A transaction is open; lanes may produce into it.
    Open,
    /// Aborted: nothing may be produced until the worker has rewound and begun again.
    Aborted,
    /// Fenced or fatal: nothing more happens.
    Failed,
}

impl Phase {
    /// The phase after a commit or abort attempt ends with `recovery` (`None`: success).
    pub fn after(self, failure: Option<Recovery>) -> Phase {
        match (self, failure) {
            (Phase::Failed, _) | (_, Some(Recovery::Fatal)) => Phase::Failed,
            (_, Some(Recovery::Abort | Recovery::Retry)) => Phase::Aborted,
            (_, None) => Phase::Open,
        }
    }

    pub fn accepts_records(self) -> bool {
        self == Phase::Open
    }
}

/// Records handed to the producer in the open transaction and not yet settled.
#[derive(Debug, Default)]
struct Handed {
    count: Mutex<usize>,
    settled: Condvar,
}

/// A record handed to the producer inside the open transaction. [`Ticket::settle`] it once
/// its outcome is in the tracker; dropping it unsettled makes the transaction abort.
pub struct Ticket {
    txn: Arc<Transactions>,
    settled: bool,
}

impl Ticket {
    /// The record was an event acknowledged on `topic`: it counts as produced if and when
    /// the transaction commits.
    pub fn produced(&self, topic: &str) {
        let mut produced = self.txn.produced.lock().unwrap_or_else(|p| p.into_inner());
        match produced.get_mut(topic) {
            Some(n) => *n += 1,
            None => {
                produced.insert(topic.to_string(), 1);
            }
        }
    }

    pub fn settle(mut self) {
        self.settled = true;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.settled {
            self.txn.abandon();
        }
        let mut n = self
            .txn
            .handed
            .count
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *n = n.saturating_sub(1);
        self.txn.handed.settled.notify_all();
    }
}

/// The worker's transactional producer and the state of its open transaction.
pub struct Transactions {
    producer: FutureProducer<KafkaContext>,
    consumer: Arc<Consumer>,
    tracker: Arc<SharedTracker>,
    metrics: Metrics,
    health: Arc<Health>,
    /// Timeout of each transactional call, and of the wait for acknowledgements.
    timeout: Duration,
    /// Lanes hold it shared while handing a record over; a commit holds it exclusively.
    gate: Arc<RwLock<()>>,
    handed: Handed,
    /// Records handed over in the open transaction.
    records: AtomicU64,
    /// Events acknowledged in the open transaction, per output topic: they count in
    /// `newsflow_events_produced_total` only once it commits (an aborted one's never do).
    produced: Mutex<HashMap<String, u64>>,
    /// A ticket was dropped unsettled: the open transaction must abort.
    unsettled: AtomicBool,
    /// Records the broker refused for good: their redo is dead-lettered (see `refusals`).
    refusals: Mutex<Refusals>,
    phase: Mutex<Phase>,
    /// One commit at a time (the interval task and a revoke may both ask).
    committing: Mutex<OpenSince>,
    /// Positions sent in committed transactions.
    sent: Mutex<HashMap<TopicPartition, i64>>,
    /// Cancelled after an abort: the running pipeline stops and the worker rewinds.
    rewind: Mutex<CancellationToken>,
}

#[derive(Debug)]
struct OpenSince(Instant);

impl Transactions {
    /// Initialises the transactional producer (fencing any earlier producer with the same
    /// `transactional.id`) and begins the first transaction.
    /// `probe_topic` (an input topic) names the partition of the aborted probe transaction.
    pub fn init(
        producer: FutureProducer<KafkaContext>,
        consumer: Arc<Consumer>,
        probe_topic: &str,
        tracker: Arc<SharedTracker>,
        metrics: Metrics,
        health: Arc<Health>,
        timeout: Duration,
    ) -> anyhow::Result<Arc<Transactions>> {
        let refuse = |e: KafkaError| {
            anyhow::anyhow!(
                "delivery.guarantee = \"exactly-once\" needs a broker with transactions \
                 (Apache Kafka 2.5 or later, or a compatible broker): {e}"
            )
        };
        producer.init_transactions(timeout).map_err(refuse)?;
        // Some brokers answer InitProducerId but not the rest of the protocol (Tansu 0.6.0
        // has no EndTxn). A transaction that adds offsets and is aborted uses every request
        // a commit needs, and leaves nothing behind.
        producer.begin_transaction().map_err(refuse)?;
        let probe = (|| {
            let group = consumer.group_metadata().ok_or(KafkaError::Canceled)?;
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(probe_topic, 0, Offset::Offset(0))?;
            producer.send_offsets_to_transaction(&tpl, &group, timeout)?;
            producer.abort_transaction(timeout)
        })();
        probe.map_err(refuse)?;
        producer.begin_transaction().map_err(refuse)?;
        info!("Exactly-once delivery: transactional producer ready");
        Ok(Arc::new(Transactions {
            producer,
            consumer,
            tracker,
            metrics,
            health,
            timeout,
            gate: Arc::new(RwLock::new(())),
            handed: Handed::default(),
            records: AtomicU64::new(0),
            produced: Mutex::new(HashMap::new()),
            unsettled: AtomicBool::new(false),
            refusals: Mutex::new(Refusals::default()),
            phase: Mutex::new(Phase::Open),
            committing: Mutex::new(OpenSince(Instant::now())),
            sent: Mutex::new(HashMap::new()),
            rewind: Mutex::new(CancellationToken::new()),
        }))
    }

    /// The token cancelled when the pipeline must stop and rewind; a fresh one after each
    /// rewind.
    pub fn rewind_token(&self) -> CancellationToken {
        self.rewind
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn phase(&self) -> Phase {
        *self.phase.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until a record may be handed to the producer; the guard keeps a commit from
    /// starting until the hand-over is done. `None` when the transaction is aborted (the
    /// pipeline is about to be rebuilt) or `stop` is cancelled.
    pub async fn admit(&self, stop: &CancellationToken) -> Option<OwnedRwLockReadGuard<()>> {
        let guard = tokio::select! {
            g = self.gate.clone().read_owned() => g,
            _ = stop.cancelled() => return None,
        };
        if self.phase().accepts_records() {
            return Some(guard);
        }
        drop(guard);
        stop.cancelled().await;
        None
    }

    /// Counts a record just handed to the producer (call while holding [`Self::admit`]'s
    /// guard).
    pub fn ticket(self: &Arc<Self>) -> Ticket {
        *self.handed.count.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.records.fetch_add(1, Ordering::Relaxed);
        Ticket {
            txn: self.clone(),
            settled: false,
        }
    }

    /// What the redo sends for the record at `offset` of `topic`/`partition`, if the broker
    /// refused it in an earlier pass.
    pub(super) fn refusal(&self, topic: &str, partition: i32, offset: i64) -> Option<Refusal> {
        self.refusals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(topic, partition, offset)
            .cloned()
    }

    /// The broker refused what was `sent` for the record at `offset` of `tp`: the open
    /// transaction aborts (its ticket is dropped unsettled) and the redo sends the returned
    /// refusal's dead-letter form instead.
    pub(super) fn refused(
        &self,
        tp: TopicPartition,
        offset: i64,
        sent: Refused<'_>,
        error: &str,
    ) -> Refusal {
        self.refusals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .refused(tp, offset, sent, error)
            .clone()
    }

    /// A record of the open transaction could not be handed over: the transaction aborts.
    pub fn abandon(&self) {
        self.unsettled.store(true, Ordering::Relaxed);
    }

    /// Waits (blocking) until every handed-over record is settled, up to `timeout`.
    fn wait_settled(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut n = self.handed.count.lock().unwrap_or_else(|p| p.into_inner());
        while *n > 0 {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            n = self
                .handed
                .settled
                .wait_timeout(n, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        true
    }

    /// Commits the open transaction with the positions of everything it produced, then
    /// begins the next one. Blocking: call it on a blocking thread, or through
    /// `runtime::blocking` (the rebalance callback).
    pub fn commit(&self, cause: CommitCause) -> Committed {
        let mut open = self.committing.lock().unwrap_or_else(|p| p.into_inner());
        if self.phase() != Phase::Open {
            return Committed::Nothing;
        }
        let _gate = self.gate.blocking_write();
        let settled = self.wait_settled(self.timeout);
        let positions = self.tracker.lock().commit_positions();
        let records = self.records.load(Ordering::Relaxed);
        let changed = {
            let sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
            positions.iter().any(|(tp, pos)| sent.get(tp) != Some(pos))
        };
        if settled && records == 0 && !changed && !self.unsettled.load(Ordering::Relaxed) {
            return Committed::Nothing;
        }
        let result = if !settled || self.unsettled.load(Ordering::Relaxed) {
            warn!(
                records,
                "A record of the open transaction was not acknowledged; aborting it"
            );
            Err(Recovery::Abort)
        } else {
            self.send_and_commit(&positions)
        };
        let outcome = match result {
            Ok(()) => {
                self.metrics
                    .transactions
                    .with_label_values(&["committed"])
                    .inc();
                self.metrics
                    .transaction_duration
                    .observe(open.0.elapsed().as_secs_f64());
                self.metrics.transaction_records.observe(records as f64);
                for (topic, n) in self.take_produced() {
                    self.metrics
                        .events_produced
                        .with_label_values(&[&topic])
                        .inc_by(n);
                }
                for ((topic, partition), pos) in &positions {
                    self.metrics
                        .transaction_committed_offset
                        .with_label_values(&[topic.as_str(), &partition.to_string()])
                        .set(*pos);
                }
                self.refusals
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .committed(&positions);
                self.sent
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend(positions);
                Committed::Records(records)
            }
            Err(Recovery::Fatal) => Committed::Fatal,
            Err(_) => self.abort(),
        };
        let next = self.phase().after(match outcome {
            Committed::Records(_) | Committed::Nothing => None,
            Committed::Aborted => Some(Recovery::Abort),
            Committed::Fatal => Some(Recovery::Fatal),
        });
        if next == Phase::Open {
            if let Err(e) = self.producer.begin_transaction() {
                error!(error = %e, "Cannot begin the next transaction; stopping");
                self.fail(&e);
                return Committed::Fatal;
            }
            *open = OpenSince(Instant::now());
            self.records.store(0, Ordering::Relaxed);
        }
        self.set_phase(next);
        if outcome == Committed::Fatal {
            self.health
                .set_fatal("transactional producer failed (fenced or fatal error)".into());
        }
        if cause != CommitCause::Interval {
            info!(?cause, ?outcome, "Transaction ended");
        }
        outcome
    }

    /// The events acknowledged in the open transaction, forgotten.
    fn take_produced(&self) -> HashMap<String, u64> {
        std::mem::take(&mut *self.produced.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn set_phase(&self, phase: Phase) {
        *self.phase.lock().unwrap_or_else(|p| p.into_inner()) = phase;
    }

    fn fail(&self, e: &KafkaError) {
        error!(error = %e, "Transactional producer failed; stopping");
        self.set_phase(Phase::Failed);
        self.health.set_fatal(format!("transaction error: {e}"));
    }

    /// Adds the positions to the transaction and commits it, retrying what librdkafka calls
    /// retriable.
    fn send_and_commit(&self, positions: &[(TopicPartition, i64)]) -> Result<(), Recovery> {
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), pos) in positions {
            let _ = tpl.add_partition_offset(topic, *partition, Offset::Offset(*pos));
        }
        if tpl.count() > 0 {
            let Some(group) = self.consumer.group_metadata() else {
                warn!("No consumer group metadata; aborting the transaction");
                return Err(Recovery::Abort);
            };
            self.retrying("adding offsets to the transaction", || {
                self.producer
                    .send_offsets_to_transaction(&tpl, &group, self.timeout)
            })?;
        }
        self.retrying("committing the transaction", || {
            self.producer.commit_transaction(self.timeout)
        })
    }

    fn retrying(
        &self,
        what: &str,
        mut call: impl FnMut() -> Result<(), KafkaError>,
    ) -> Result<(), Recovery> {
        for _ in 0..3 {
            match call() {
                Ok(()) => return Ok(()),
                Err(e) => match Recovery::of(&e) {
                    Recovery::Retry => warn!(error = %e, "{what} failed; retrying"),
                    Recovery::Abort => {
                        warn!(error = %e, "{what} failed; aborting the transaction");
                        return Err(Recovery::Abort);
                    }
                    Recovery::Fatal => {
                        self.fail(&e);
                        return Err(Recovery::Fatal);
                    }
                },
            }
        }
        Err(Recovery::Abort)
    }

    /// Aborts the open transaction and asks the pipeline to rewind.
    fn abort(&self) -> Committed {
        match self.producer.abort_transaction(self.timeout) {
            Ok(()) => {
                self.take_produced();
                self.metrics
                    .transactions
                    .with_label_values(&["aborted"])
                    .inc();
                warn!("Transaction aborted; rewinding to the committed positions");
                self.rewind_token().cancel();
                Committed::Aborted
            }
            Err(e) => {
                self.fail(&e);
                Committed::Fatal
            }
        }
    }

    /// After the pipeline stopped for a rewind: forgets what was in flight, moves every
    /// assigned partition back to its committed position (the one this worker's last
    /// committed transaction sent, else the group's), and begins a new transaction.
    /// Blocking.
    pub fn rewind(&self) -> anyhow::Result<()> {
        let _open = self.committing.lock().unwrap_or_else(|p| p.into_inner());
        self.tracker.lock().clear();
        self.unsettled.store(false, Ordering::Relaxed);
        self.records.store(0, Ordering::Relaxed);
        self.take_produced();
        let assignment = self.consumer.assignment()?;
        let mut seek = TopicPartitionList::new();
        let mut unknown = TopicPartitionList::new();
        {
            let sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
            for e in assignment.elements() {
                match sent.get(&(e.topic().to_string(), e.partition())) {
                    Some(pos) => {
                        seek.add_partition_offset(e.topic(), e.partition(), Offset::Offset(*pos))?
                    }
                    None => {
                        unknown.add_partition(e.topic(), e.partition());
                    }
                }
            }
        }
        if unknown.count() > 0 {
            for e in self
                .consumer
                .committed_offsets(unknown, self.timeout)?
                .elements()
            {
                let offset = match e.offset() {
                    Offset::Offset(o) => Offset::Offset(o),
                    // Never committed: where `auto.offset.reset` (earliest) starts.
                    _ => Offset::Beginning,
                };
                seek.add_partition_offset(e.topic(), e.partition(), offset)?;
            }
        }
        // Paused by the old pipeline's back-pressure: the new one starts unpaused.
        self.consumer.resume(&assignment)?;
        if seek.count() > 0 {
            for e in self
                .consumer
                .seek_partitions(seek, self.timeout)?
                .elements()
            {
                if let Err(err) = e.error() {
                    anyhow::bail!("cannot rewind {}/{}: {err}", e.topic(), e.partition());
                }
            }
        }
        self.producer.begin_transaction()?;
        *self.rewind.lock().unwrap_or_else(|p| p.into_inner()) = CancellationToken::new();
        self.set_phase(Phase::Open);
        info!(
            partitions = assignment.count(),
            "Rewound to the committed positions"
        );
        Ok(())
    }

    /// Forgets the positions sent for partitions this worker no longer owns.
    pub fn forget(&self, partitions: &[TopicPartition]) {
        let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        for (topic, partition) in partitions {
            sent.remove(&(topic.clone(), *partition));
            let _ = self
                .metrics
                .transaction_committed_offset
                .remove_label_values(&[topic.as_str(), &partition.to_string()]);
        }
    }

    /// Commits every `interval` until `stop`; an abort cancels the rewind token.
    pub async fn commit_every(self: Arc<Self>, interval: Duration, stop: CancellationToken) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let txn = self.clone();
            let outcome = tokio::task::spawn_blocking(move || txn.commit(CommitCause::Interval))
                .await
                .unwrap_or(Committed::Fatal);
            if matches!(outcome, Committed::Aborted | Committed::Fatal) {
                return;
            }
        }
    }
}

impl RevokeCommitter for Transactions {
    fn commit_for_revoke(&self, revoked: &[TopicPartition]) {
        self.commit(CommitCause::Revoke);
        self.forget(revoked);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_keeps_the_transaction_open_an_abort_closes_it_until_the_rewind() {
        let open = Phase::Open;
        assert_eq!(open.after(None), Phase::Open);
        assert!(open.after(None).accepts_records());
        let aborted = open.after(Some(Recovery::Abort));
        assert_eq!(aborted, Phase::Aborted);
        assert!(
            !aborted.accepts_records(),
            "no records between abort and rewind"
        );
        // A retriable error that kept failing ends as an abort too.
        assert_eq!(open.after(Some(Recovery::Retry)), Phase::Aborted);
    }

    #[test]
    fn fatal_is_final() {
        let failed = Phase::Open.after(Some(Recovery::Fatal));
        assert_eq!(failed, Phase::Failed);
        assert_eq!(failed.after(None), Phase::Failed);
        assert!(!failed.accepts_records());
    }

    #[test]
    fn errors_outside_the_transaction_api_abort() {
        assert_eq!(Recovery::of(&KafkaError::Canceled), Recovery::Abort);
    }
}
